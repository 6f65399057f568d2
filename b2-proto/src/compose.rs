//! Small B2 rules that span several calls: unhiding a file, deleting every version of a name,
//! resuming a large upload. Drivers run the calls; these functions say which ones.

use crate::error::InvalidInput;
use crate::model::file::{Action, FileVersion, Part};
use crate::ops::files::{DeleteFileVersion, FileVersionsCursor, ListFileVersions};
use crate::planner::PartPlan;
use crate::session::Session;
use crate::types::{BucketId, FileName};

/// The listing of every version of `name`, newest first: versions are listed by name, then
/// newest first, so they are the first entries from `name` on (stop at the first other name,
/// see [`is_version_of`]).
pub fn versions_of(bucket_id: BucketId, name: &FileName) -> ListFileVersions {
    ListFileVersions::new(bucket_id)
        .with_prefix(name.as_str())
        .with_start(FileVersionsCursor::new(name.clone(), None))
}

/// True when `version` is a version of exactly `name` (not a longer name sharing the prefix).
pub fn is_version_of(version: &FileVersion, name: &FileName) -> bool {
    version.file_name == *name
}

/// The call that unhides `name`, given its newest version: deleting the hide marker, as
/// B2 has no unhide call. `None` when the newest version is not a hide marker.
///
/// ```
/// use b2_proto::compose::unhide;
/// use b2_proto::model::FileVersion;
/// use b2_proto::FileName;
///
/// let marker: FileVersion = serde_json::from_str(
///     r#"{"action":"hide","fileId":"4_hide","fileName":"a.txt"}"#).unwrap();
/// assert!(unhide(&marker, &FileName::new("a.txt").unwrap()).is_some());
/// let upload: FileVersion = serde_json::from_str(
///     r#"{"action":"upload","fileId":"4_up","fileName":"a.txt"}"#).unwrap();
/// assert!(unhide(&upload, &FileName::new("a.txt").unwrap()).is_none());
/// ```
pub fn unhide(newest: &FileVersion, name: &FileName) -> Option<DeleteFileVersion> {
    if newest.action != Action::Hide || !is_version_of(newest, name) {
        return None;
    }
    let id = newest.file_id.clone()?;
    Some(DeleteFileVersion::new(name.clone(), id))
}

/// The call that deletes `version`, when it is a version of `name` (folders and other names
/// are skipped).
pub fn delete_version(version: &FileVersion, name: &FileName) -> Option<DeleteFileVersion> {
    if !is_version_of(version, name) || version.action == Action::Folder {
        return None;
    }
    Some(DeleteFileVersion::new(
        name.clone(),
        version.file_id.clone()?,
    ))
}

/// The part plan of an unfinished large file being resumed: the part size is the size of its
/// listed part 1, so the parts already uploaded line up; without a part 1, the session's
/// usual plan.
///
/// # Errors
///
/// [`InvalidInput::Size`] when the sizes do not make a valid plan for `total` bytes.
pub fn resume_plan(
    total: u64,
    listed: &[Part],
    session: &Session,
) -> Result<PartPlan, InvalidInput> {
    match listed.iter().find(|p| p.part_number.get() == 1) {
        Some(first) => PartPlan::with_part_size(
            total,
            first.content_length,
            session.absolute_minimum_part_size,
        ),
        None => PartPlan::new(total, session),
    }
}
