//! File-version calls: listing, file info, hiding, deleting, copying, and Object Lock updates.
//!
//! Every call here is a JSON `POST` to `{apiUrl}/b2api/v4/<call>`; file names travel in the
//! JSON body as plain UTF-8, never percent-encoded
//! (<https://www.backblaze.com/docs/cloud-storage-native-api-string-encoding>).

use bytes::Bytes;
use http::{Request, Response};
use serde::{Deserialize, Serialize};

use crate::error::{Error, InvalidInput};
use crate::model::file::{CustomerKey, Encryption, FileRetention, FileVersion, LegalHold};
use crate::ops::download::ByteRange;
use crate::ops::{Operation, Paginated, RetryClass, json_request, parse_json};
use crate::session::Session;
use crate::types::{BucketId, FileId, FileInfo, FileName};

/// Most files one listing call may ask for (`maxFileCount`).
pub const MAX_LIST_FILE_COUNT: u32 = 10_000;

fn check_max_file_count(count: Option<u32>) -> Result<(), InvalidInput> {
    match count {
        Some(n) if !(1..=MAX_LIST_FILE_COUNT).contains(&n) => Err(InvalidInput::Argument {
            what: "maxFileCount",
            reason: format!("{n} is outside 1..={MAX_LIST_FILE_COUNT}"),
        }),
        _ => Ok(()),
    }
}

fn check_delimiter(delimiter: Option<&str>) -> Result<(), InvalidInput> {
    match delimiter {
        Some("") => Err(InvalidInput::Argument {
            what: "delimiter",
            reason: "is empty".into(),
        }),
        Some(d) if d.chars().any(char::is_control) => Err(InvalidInput::Argument {
            what: "delimiter",
            reason: "contains a control character".into(),
        }),
        _ => Ok(()),
    }
}

/// Fails with [`Error::InvalidResponse`] when a reply names another file than the request did.
fn expect_same<T: PartialEq + std::fmt::Debug>(
    op: &'static str,
    what: &str,
    asked: &T,
    got: &T,
) -> Result<(), Error> {
    if asked == got {
        Ok(())
    } else {
        Err(Error::InvalidResponse {
            op,
            reason: format!("asked for {what} {asked:?}, the reply is about {got:?}"),
        })
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListBody<'a> {
    bucket_id: &'a BucketId,
    #[serde(skip_serializing_if = "Option::is_none")]
    start_file_name: Option<&'a FileName>,
    #[serde(skip_serializing_if = "Option::is_none")]
    start_file_id: Option<&'a FileId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_file_count: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    prefix: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delimiter: Option<&'a str>,
}

/// `b2_list_file_names`: the current version of each file name in a bucket, in name order.
///
/// <https://www.backblaze.com/apidocs/b2-list-file-names>
///
/// Hidden files are left out. With a delimiter (usually `/`), the names below the next
/// delimiter after the prefix collapse into one entry whose action is
/// [`Action::Folder`](crate::model::Action::Folder). B2 bills one class C transaction per
/// 1000 names returned.
///
/// # Errors
///
/// `400 bad_request` (bad arguments), `400 invalid_bucket_id`, `400 out_of_range`
/// (`maxFileCount`), `401 unauthorized` (no `listFiles` capability, or outside the key's
/// bucket or name prefix), `401 bad_auth_token`, `401 expired_auth_token`,
/// `403 transaction_cap_exceeded`.
///
/// ```
/// use b2_proto::ops::ListFileNames;
/// use b2_proto::{BucketId, Operation, Session, AccountId, AuthToken};
///
/// let session = Session::new(AccountId::new("a"), AuthToken::new("t"), "https://api.example", "https://f.example");
/// let op = ListFileNames::new(BucketId::new("b1")).with_prefix("photos/").with_delimiter("/");
/// let request = op.request(&session).unwrap();
/// assert_eq!(request.uri(), "https://api.example/b2api/v4/b2_list_file_names");
/// assert!(ListFileNames::new(BucketId::new("b1")).with_max_file_count(10_001).request(&session).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListFileNames {
    bucket_id: BucketId,
    start_file_name: Option<FileName>,
    max_file_count: Option<u32>,
    prefix: Option<String>,
    delimiter: Option<String>,
}

impl ListFileNames {
    /// Lists the bucket from its first name.
    pub fn new(bucket_id: BucketId) -> Self {
        Self {
            bucket_id,
            start_file_name: None,
            max_file_count: None,
            prefix: None,
            delimiter: None,
        }
    }

    /// Starts at this name (included if it exists).
    pub fn with_start_file_name(mut self, name: FileName) -> Self {
        self.start_file_name = Some(name);
        self
    }

    /// Asks for at most `count` names (1 to 10,000; B2's default is 100).
    pub fn with_max_file_count(mut self, count: u32) -> Self {
        self.max_file_count = Some(count);
        self
    }

    /// Lists only names starting with `prefix`.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// Groups names into folders at `delimiter` (usually `/`).
    pub fn with_delimiter(mut self, delimiter: impl Into<String>) -> Self {
        self.delimiter = Some(delimiter.into());
        self
    }

    /// Where the listing starts.
    pub fn start_file_name(&self) -> Option<&FileName> {
        self.start_file_name.as_ref()
    }
}

/// One page of `b2_list_file_names`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct FileNamesPage {
    /// The files (and, with a delimiter, folders) of this page.
    #[serde(default)]
    pub files: Vec<FileVersion>,
    /// Where the next page starts, or `None` when the listing is complete. This may not be the
    /// name of an existing file.
    #[serde(default)]
    pub next_file_name: Option<FileName>,
}

impl Operation for ListFileNames {
    type Output = FileNamesPage;
    const NAME: &'static str = "b2_list_file_names";

    fn request(&self, session: &Session) -> Result<Request<Bytes>, Error> {
        check_max_file_count(self.max_file_count)?;
        check_delimiter(self.delimiter.as_deref())?;
        let body = ListBody {
            bucket_id: &self.bucket_id,
            start_file_name: self.start_file_name.as_ref(),
            start_file_id: None,
            max_file_count: self.max_file_count,
            prefix: self.prefix.as_deref(),
            delimiter: self.delimiter.as_deref(),
        };
        json_request(session, Self::NAME, &body)
    }

    fn parse(&self, response: Response<Bytes>) -> Result<FileNamesPage, Error> {
        parse_json(Self::NAME, response)
    }
}

impl Paginated for ListFileNames {
    type Item = FileVersion;
    type Cursor = FileName;

    fn set_cursor(&mut self, cursor: Option<FileName>) {
        self.start_file_name = cursor;
    }

    fn next_cursor(output: &FileNamesPage) -> Option<FileName> {
        output.next_file_name.clone()
    }

    fn into_items(output: FileNamesPage) -> Vec<FileVersion> {
        output.files
    }
}

/// Where a `b2_list_file_versions` page starts: a file name and, optionally, a file id.
///
/// Serializable, so a listing can be saved and resumed later.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct FileVersionsCursor {
    /// `startFileName`.
    pub file_name: FileName,
    /// `startFileId`: within versions of `file_name`, start at this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_id: Option<FileId>,
}

impl FileVersionsCursor {
    /// A cursor at `file_name`, optionally at one of its versions.
    pub fn new(file_name: FileName, file_id: Option<FileId>) -> Self {
        Self { file_name, file_id }
    }
}

/// `b2_list_file_versions`: every version of every file in a bucket, hide markers and
/// unfinished large files included.
///
/// <https://www.backblaze.com/apidocs/b2-list-file-versions>
///
/// Versions come in name order, newest first within a name. Prefix and delimiter work as in
/// [`ListFileNames`]. `startFileId` may only be given with `startFileName`; the builder makes
/// that the only way to set it.
///
/// # Errors
///
/// As [`ListFileNames`]: `400 bad_request`, `400 invalid_bucket_id`, `400 out_of_range`,
/// `401 unauthorized`, `401 bad_auth_token`, `401 expired_auth_token`,
/// `403 transaction_cap_exceeded`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListFileVersions {
    bucket_id: BucketId,
    start: Option<FileVersionsCursor>,
    max_file_count: Option<u32>,
    prefix: Option<String>,
    delimiter: Option<String>,
}

impl ListFileVersions {
    /// Lists the bucket from its first version.
    pub fn new(bucket_id: BucketId) -> Self {
        Self {
            bucket_id,
            start: None,
            max_file_count: None,
            prefix: None,
            delimiter: None,
        }
    }

    /// Starts at this name and, if given, this version of it (`startFileName`, `startFileId`).
    pub fn with_start(mut self, start: FileVersionsCursor) -> Self {
        self.start = Some(start);
        self
    }

    /// Asks for at most `count` versions (1 to 10,000; B2's default is 100).
    pub fn with_max_file_count(mut self, count: u32) -> Self {
        self.max_file_count = Some(count);
        self
    }

    /// Lists only names starting with `prefix`.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// Groups names into folders at `delimiter` (usually `/`).
    pub fn with_delimiter(mut self, delimiter: impl Into<String>) -> Self {
        self.delimiter = Some(delimiter.into());
        self
    }

    /// Where the listing starts.
    pub fn start(&self) -> Option<&FileVersionsCursor> {
        self.start.as_ref()
    }
}

/// One page of `b2_list_file_versions`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct FileVersionsPage {
    /// The versions (and, with a delimiter, folders) of this page.
    #[serde(default)]
    pub files: Vec<FileVersion>,
    /// The name the next page starts at, or `None` when the listing is complete.
    #[serde(default)]
    pub next_file_name: Option<FileName>,
    /// The version the next page starts at, within `next_file_name`.
    #[serde(default)]
    pub next_file_id: Option<FileId>,
}

impl FileVersionsPage {
    /// The cursor of the next page, or `None` when the listing is complete.
    pub fn next_cursor(&self) -> Option<FileVersionsCursor> {
        self.next_file_name
            .clone()
            .map(|name| FileVersionsCursor::new(name, self.next_file_id.clone()))
    }
}

impl Operation for ListFileVersions {
    type Output = FileVersionsPage;
    const NAME: &'static str = "b2_list_file_versions";

    fn request(&self, session: &Session) -> Result<Request<Bytes>, Error> {
        check_max_file_count(self.max_file_count)?;
        check_delimiter(self.delimiter.as_deref())?;
        let body = ListBody {
            bucket_id: &self.bucket_id,
            start_file_name: self.start.as_ref().map(|s| &s.file_name),
            start_file_id: self.start.as_ref().and_then(|s| s.file_id.as_ref()),
            max_file_count: self.max_file_count,
            prefix: self.prefix.as_deref(),
            delimiter: self.delimiter.as_deref(),
        };
        json_request(session, Self::NAME, &body)
    }

    fn parse(&self, response: Response<Bytes>) -> Result<FileVersionsPage, Error> {
        parse_json(Self::NAME, response)
    }
}

impl Paginated for ListFileVersions {
    type Item = FileVersion;
    type Cursor = FileVersionsCursor;

    fn set_cursor(&mut self, cursor: Option<FileVersionsCursor>) {
        self.start = cursor;
    }

    fn next_cursor(output: &FileVersionsPage) -> Option<FileVersionsCursor> {
        output.next_cursor()
    }

    fn into_items(output: FileVersionsPage) -> Vec<FileVersion> {
        output.files
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FileIdBody<'a> {
    file_id: &'a FileId,
}

/// `b2_get_file_info`: the record of one file version.
///
/// <https://www.backblaze.com/apidocs/b2-get-file-info>
///
/// A class B transaction. Unfinished large files are not found by this call (list them with
/// `b2_list_unfinished_large_files`).
///
/// # Errors
///
/// `400 bad_request` (malformed file id), `404 not_found` (no such version), `401 unauthorized`
/// (no `readFiles` capability), `401 bad_auth_token`, `401 expired_auth_token`,
/// `403 transaction_cap_exceeded`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetFileInfo {
    file_id: FileId,
}

impl GetFileInfo {
    /// Asks for the version `file_id`.
    pub fn new(file_id: FileId) -> Self {
        Self { file_id }
    }
}

impl Operation for GetFileInfo {
    type Output = FileVersion;
    const NAME: &'static str = "b2_get_file_info";

    fn request(&self, session: &Session) -> Result<Request<Bytes>, Error> {
        json_request(
            session,
            Self::NAME,
            &FileIdBody {
                file_id: &self.file_id,
            },
        )
    }

    fn parse(&self, response: Response<Bytes>) -> Result<FileVersion, Error> {
        let version: FileVersion = parse_json(Self::NAME, response)?;
        expect_same(
            Self::NAME,
            "file id",
            &Some(&self.file_id),
            &version.file_id.as_ref(),
        )?;
        Ok(version)
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HideBody<'a> {
    bucket_id: &'a BucketId,
    file_name: &'a FileName,
}

/// `b2_hide_file`: uploads a hide marker, so the name no longer lists or downloads by name.
///
/// <https://www.backblaze.com/apidocs/b2-hide-file>
///
/// Earlier versions stay stored. To unhide, delete the hide marker with
/// [`DeleteFileVersion`]. Not idempotent: a repeat after a lost reply fails with
/// `already_hidden`, which then means the first call worked.
///
/// # Errors
///
/// `400 no_such_file` (no file by that name), `400 already_hidden`, `400 bad_request`,
/// `400 bad_bucket_id`, `401 unauthorized` (no `writeFiles` capability), `401 bad_auth_token`,
/// `401 expired_auth_token`, `403 transaction_cap_exceeded`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HideFile {
    bucket_id: BucketId,
    file_name: FileName,
}

impl HideFile {
    /// Hides `file_name` in the bucket.
    pub fn new(bucket_id: BucketId, file_name: FileName) -> Self {
        Self {
            bucket_id,
            file_name,
        }
    }
}

impl Operation for HideFile {
    type Output = FileVersion;
    const NAME: &'static str = "b2_hide_file";

    fn request(&self, session: &Session) -> Result<Request<Bytes>, Error> {
        json_request(
            session,
            Self::NAME,
            &HideBody {
                bucket_id: &self.bucket_id,
                file_name: &self.file_name,
            },
        )
    }

    fn parse(&self, response: Response<Bytes>) -> Result<FileVersion, Error> {
        let version: FileVersion = parse_json(Self::NAME, response)?;
        expect_same(Self::NAME, "file", &self.file_name, &version.file_name)?;
        Ok(version)
    }

    fn retry_class(&self) -> RetryClass {
        RetryClass::NonIdempotent
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DeleteBody<'a> {
    file_name: &'a FileName,
    file_id: &'a FileId,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    bypass_governance: bool,
}

/// `b2_delete_file_version`: deletes one version of a file.
///
/// <https://www.backblaze.com/apidocs/b2-delete-file-version>
///
/// If it was the newest version, the next older one becomes current. On an unfinished large
/// file it acts as `b2_cancel_large_file`. A repeat after a lost reply fails with
/// `file_not_present`, which then means the first call worked.
///
/// # Errors
///
/// `400 file_not_present` (no such name and id), `400 bad_request`, `400 bad_bucket_id`,
/// `401 unauthorized` (no `deleteFiles` capability, or `bypassGovernance` without that
/// capability), `401 bad_auth_token`, `401 expired_auth_token`, `403 access_denied` (the
/// version is protected by Object Lock), `403 transaction_cap_exceeded`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteFileVersion {
    file_name: FileName,
    file_id: FileId,
    bypass_governance: bool,
}

impl DeleteFileVersion {
    /// Deletes version `file_id` of `file_name`.
    pub fn new(file_name: FileName, file_id: FileId) -> Self {
        Self {
            file_name,
            file_id,
            bypass_governance: false,
        }
    }

    /// Deletes even under governance-mode retention (needs the `bypassGovernance` capability).
    pub fn with_bypass_governance(mut self, bypass: bool) -> Self {
        self.bypass_governance = bypass;
        self
    }
}

/// The version `b2_delete_file_version` deleted.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct DeletedFileVersion {
    /// The deleted version's id.
    pub file_id: FileId,
    /// Its name.
    pub file_name: FileName,
}

impl Operation for DeleteFileVersion {
    type Output = DeletedFileVersion;
    const NAME: &'static str = "b2_delete_file_version";

    fn request(&self, session: &Session) -> Result<Request<Bytes>, Error> {
        json_request(
            session,
            Self::NAME,
            &DeleteBody {
                file_name: &self.file_name,
                file_id: &self.file_id,
                bypass_governance: self.bypass_governance,
            },
        )
    }

    fn parse(&self, response: Response<Bytes>) -> Result<DeletedFileVersion, Error> {
        let deleted: DeletedFileVersion = parse_json(Self::NAME, response)?;
        expect_same(Self::NAME, "file id", &self.file_id, &deleted.file_id)?;
        Ok(deleted)
    }
}

/// Checks that a retention setting is either fully set or fully cleared.
fn check_retention(retention: &FileRetention) -> Result<(), InvalidInput> {
    if let Some(crate::model::file::RetentionMode::Other(mode)) = &retention.mode {
        return Err(InvalidInput::Argument {
            what: "fileRetention",
            reason: format!("mode must be \"governance\" or \"compliance\", not {mode:?}"),
        });
    }
    match (&retention.mode, retention.retain_until_timestamp) {
        (Some(_), Some(_)) | (None, None) => Ok(()),
        (Some(_), None) => Err(InvalidInput::Argument {
            what: "fileRetention",
            reason: "a retention mode needs a retain-until timestamp".into(),
        }),
        (None, Some(_)) => Err(InvalidInput::Argument {
            what: "fileRetention",
            reason: "a retain-until timestamp needs a retention mode".into(),
        }),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RetentionBody<'a> {
    file_name: &'a FileName,
    file_id: &'a FileId,
    file_retention: &'a FileRetention,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    bypass_governance: bool,
}

/// `b2_update_file_retention`: sets, extends, shortens or removes a version's Object Lock
/// retention.
///
/// <https://www.backblaze.com/apidocs/b2-update-file-retention>
///
/// Governance-mode retention can be shortened or removed only with `bypassGovernance` (and the
/// key capability of that name); compliance-mode retention can only be extended.
/// [`FileRetention::none`] removes retention.
///
/// # Errors
///
/// `400 bad_request` (for example a shorter compliance period, or a file whose name and info
/// exceed 2048 bytes of headers), `400 file_lock_conflict`, `400 file_not_present`,
/// `401 unauthorized` (no `writeFileRetentions` capability), `401 bad_auth_token`,
/// `401 expired_auth_token`, `403 access_denied`, `403 transaction_cap_exceeded`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateFileRetention {
    file_name: FileName,
    file_id: FileId,
    file_retention: FileRetention,
    bypass_governance: bool,
}

impl UpdateFileRetention {
    /// Sets the retention of version `file_id` of `file_name`.
    pub fn new(file_name: FileName, file_id: FileId, file_retention: FileRetention) -> Self {
        Self {
            file_name,
            file_id,
            file_retention,
            bypass_governance: false,
        }
    }

    /// Allows shortening or removing governance-mode retention.
    pub fn with_bypass_governance(mut self, bypass: bool) -> Self {
        self.bypass_governance = bypass;
        self
    }
}

/// A version's retention after `b2_update_file_retention`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct FileRetentionUpdate {
    /// The version's id.
    pub file_id: FileId,
    /// Its name.
    pub file_name: FileName,
    /// The retention now in force.
    #[serde(default)]
    pub file_retention: FileRetention,
}

impl Operation for UpdateFileRetention {
    type Output = FileRetentionUpdate;
    const NAME: &'static str = "b2_update_file_retention";

    fn request(&self, session: &Session) -> Result<Request<Bytes>, Error> {
        check_retention(&self.file_retention)?;
        json_request(
            session,
            Self::NAME,
            &RetentionBody {
                file_name: &self.file_name,
                file_id: &self.file_id,
                file_retention: &self.file_retention,
                bypass_governance: self.bypass_governance,
            },
        )
    }

    fn parse(&self, response: Response<Bytes>) -> Result<FileRetentionUpdate, Error> {
        let update: FileRetentionUpdate = parse_json(Self::NAME, response)?;
        expect_same(Self::NAME, "file id", &self.file_id, &update.file_id)?;
        Ok(update)
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LegalHoldBody<'a> {
    file_name: &'a FileName,
    file_id: &'a FileId,
    legal_hold: &'a LegalHold,
}

/// `b2_update_file_legal_hold`: turns a version's Object Lock legal hold on or off.
///
/// <https://www.backblaze.com/apidocs/b2-update-file-legal-hold>
///
/// # Errors
///
/// `400 bad_request` (for example a file whose name and info exceed 2048 bytes of headers),
/// `400 file_lock_conflict` (the bucket does not have Object Lock enabled),
/// `400 file_not_present`, `401 unauthorized` (no `writeFileLegalHolds` capability),
/// `401 bad_auth_token`, `401 expired_auth_token`, `403 transaction_cap_exceeded`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateFileLegalHold {
    file_name: FileName,
    file_id: FileId,
    legal_hold: LegalHold,
}

impl UpdateFileLegalHold {
    /// Sets the legal hold of version `file_id` of `file_name`.
    pub fn new(file_name: FileName, file_id: FileId, legal_hold: LegalHold) -> Self {
        Self {
            file_name,
            file_id,
            legal_hold,
        }
    }
}

/// A version's legal hold after `b2_update_file_legal_hold`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct LegalHoldUpdate {
    /// The version's id.
    pub file_id: FileId,
    /// Its name.
    pub file_name: FileName,
    /// The legal hold now in force.
    #[serde(default)]
    pub legal_hold: Option<LegalHold>,
}

impl Operation for UpdateFileLegalHold {
    type Output = LegalHoldUpdate;
    const NAME: &'static str = "b2_update_file_legal_hold";

    fn request(&self, session: &Session) -> Result<Request<Bytes>, Error> {
        if let LegalHold::Other(value) = &self.legal_hold {
            return Err(InvalidInput::Argument {
                what: "legalHold",
                reason: format!("must be \"on\" or \"off\", not {value:?}"),
            }
            .into());
        }
        json_request(
            session,
            Self::NAME,
            &LegalHoldBody {
                file_name: &self.file_name,
                file_id: &self.file_id,
                legal_hold: &self.legal_hold,
            },
        )
    }

    fn parse(&self, response: Response<Bytes>) -> Result<LegalHoldUpdate, Error> {
        let update: LegalHoldUpdate = parse_json(Self::NAME, response)?;
        expect_same(Self::NAME, "file id", &self.file_id, &update.file_id)?;
        Ok(update)
    }
}

/// What `b2_copy_file` does with the source's content type and file info.
///
/// B2 answers 400 when `COPY` comes with a content type or `REPLACE` without one
/// (<https://www.backblaze.com/apidocs/b2-copy-file>, "File Metadata"); this type makes
/// both mistakes impossible to express.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum MetadataDirective {
    /// Keep the source's content type and file info.
    #[default]
    Copy,
    /// Set a new content type and file info (an empty [`FileInfo`] clears the info).
    Replace {
        /// The new MIME type (`b2/x-auto` lets B2 pick one from the name).
        content_type: String,
        /// The new file info.
        file_info: FileInfo,
    },
}

impl MetadataDirective {
    /// Replaces the metadata with `content_type` and `file_info`.
    pub fn replace(content_type: impl Into<String>, file_info: FileInfo) -> Self {
        Self::Replace {
            content_type: content_type.into(),
            file_info,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CopyBody<'a> {
    source_file_id: &'a FileId,
    file_name: &'a FileName,
    #[serde(skip_serializing_if = "Option::is_none")]
    destination_bucket_id: Option<&'a BucketId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    range: Option<String>,
    metadata_directive: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    file_info: Option<&'a FileInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    file_retention: Option<&'a FileRetention>,
    #[serde(skip_serializing_if = "Option::is_none")]
    legal_hold: Option<&'a LegalHold>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_server_side_encryption: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    destination_server_side_encryption: Option<serde_json::Value>,
}

/// `b2_copy_file`: creates a file from all or part of an existing one, on the server.
///
/// <https://www.backblaze.com/apidocs/b2-copy-file>
///
/// The result must be under 5 GB; copy larger files by parts (`b2_copy_part`). Source and
/// destination may be in different buckets of one account. An SSE-C source needs its key
/// ([`CopyFile::with_source_key`]). Not idempotent: a repeat makes a second copy.
///
/// # Errors
///
/// `400 bad_request` (bad arguments, or a metadata directive B2 refuses), `400 bad_bucket_id`,
/// `400 source_too_large` (the result would be 5 GB or more), `400 file_lock_conflict`,
/// `401 unauthorized` (no `writeFiles`, or no `readFiles` on a private source),
/// `401 bad_auth_token`, `401 expired_auth_token`, `403 access_denied` (wrong SSE-C key),
/// `403 storage_cap_exceeded`, `403 transaction_cap_exceeded`, `404 not_found` (no such
/// source), `416 range_not_satisfiable`.
///
/// ```
/// use b2_proto::ops::{ByteRange, CopyFile, MetadataDirective};
/// use b2_proto::{FileId, FileInfo, FileName, Operation, Session, AccountId, AuthToken};
///
/// let session = Session::new(AccountId::new("a"), AuthToken::new("t"), "https://api.example", "https://f.example");
/// let op = CopyFile::new(FileId::new("4_src"), FileName::new("copy.txt").unwrap())
///     .with_range(ByteRange::new(0, 99).unwrap())
///     .with_metadata(MetadataDirective::replace("text/plain", FileInfo::new()));
/// let body: serde_json::Value = serde_json::from_slice(op.request(&session).unwrap().body()).unwrap();
/// assert_eq!(body["range"], "bytes=0-99");
/// assert_eq!(body["metadataDirective"], "REPLACE");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyFile {
    source_file_id: FileId,
    file_name: FileName,
    destination_bucket_id: Option<BucketId>,
    range: Option<ByteRange>,
    metadata: MetadataDirective,
    file_retention: Option<FileRetention>,
    legal_hold: Option<LegalHold>,
    source_key: Option<CustomerKey>,
    destination_encryption: Encryption,
}

impl CopyFile {
    /// Copies the whole of `source_file_id` to `file_name` in the source's bucket, keeping its
    /// metadata.
    pub fn new(source_file_id: FileId, file_name: FileName) -> Self {
        Self {
            source_file_id,
            file_name,
            destination_bucket_id: None,
            range: None,
            metadata: MetadataDirective::Copy,
            file_retention: None,
            legal_hold: None,
            source_key: None,
            destination_encryption: Encryption::BucketDefault,
        }
    }

    /// Writes the copy to another bucket of the same account.
    pub fn with_destination_bucket(mut self, bucket_id: BucketId) -> Self {
        self.destination_bucket_id = Some(bucket_id);
        self
    }

    /// Copies only these bytes of the source. Only a closed range (`bytes=a-b`) is sent.
    pub fn with_range(mut self, range: ByteRange) -> Self {
        self.range = Some(range);
        self
    }

    /// Keeps or replaces the content type and file info.
    pub fn with_metadata(mut self, metadata: MetadataDirective) -> Self {
        self.metadata = metadata;
        self
    }

    /// Sets Object Lock retention on the copy.
    pub fn with_file_retention(mut self, retention: FileRetention) -> Self {
        self.file_retention = Some(retention);
        self
    }

    /// Sets an Object Lock legal hold on the copy.
    pub fn with_legal_hold(mut self, legal_hold: LegalHold) -> Self {
        self.legal_hold = Some(legal_hold);
        self
    }

    /// The SSE-C key the source was encrypted with.
    pub fn with_source_key(mut self, key: CustomerKey) -> Self {
        self.source_key = Some(key);
        self
    }

    /// Encrypts the copy (SSE-B2 or SSE-C) instead of using the bucket's default.
    pub fn with_destination_encryption(mut self, encryption: Encryption) -> Self {
        self.destination_encryption = encryption;
        self
    }

    fn check(&self) -> Result<(), InvalidInput> {
        if let Some(range) = &self.range {
            if !matches!(range, ByteRange::Closed { .. }) {
                return Err(InvalidInput::Argument {
                    what: "range",
                    reason: "b2_copy_file takes a closed range (bytes=a-b)".into(),
                });
            }
        }
        if let Some(retention) = &self.file_retention {
            check_retention(retention)?;
        }
        if let Some(LegalHold::Other(value)) = &self.legal_hold {
            return Err(InvalidInput::Argument {
                what: "legalHold",
                reason: format!("must be \"on\" or \"off\", not {value:?}"),
            });
        }
        if let MetadataDirective::Replace {
            content_type,
            file_info,
        } = &self.metadata
        {
            if content_type.is_empty() {
                return Err(InvalidInput::Argument {
                    what: "contentType",
                    reason: "REPLACE needs a content type".into(),
                });
            }
            // The 2048-byte limit applies to encrypted files and Object Lock settings
            // (https://www.backblaze.com/docs/cloud-storage-add-file-information-with-the-native-api).
            let strict = self.destination_encryption.is_encrypted()
                || self.file_retention.is_some()
                || self.legal_hold.is_some();
            file_info.check_header_size(&self.file_name, strict)?;
        }
        Ok(())
    }
}

impl Operation for CopyFile {
    type Output = FileVersion;
    const NAME: &'static str = "b2_copy_file";

    fn request(&self, session: &Session) -> Result<Request<Bytes>, Error> {
        self.check()?;
        let (directive, content_type, file_info) = match &self.metadata {
            MetadataDirective::Copy => ("COPY", None, None),
            MetadataDirective::Replace {
                content_type,
                file_info,
            } => ("REPLACE", Some(content_type.as_str()), Some(file_info)),
        };
        let body = CopyBody {
            source_file_id: &self.source_file_id,
            file_name: &self.file_name,
            destination_bucket_id: self.destination_bucket_id.as_ref(),
            range: self.range.as_ref().map(ByteRange::header_value),
            metadata_directive: directive,
            content_type,
            file_info,
            file_retention: self.file_retention.as_ref(),
            legal_hold: self.legal_hold.as_ref(),
            source_server_side_encryption: self.source_key.as_ref().map(CustomerKey::to_json),
            destination_server_side_encryption: self.destination_encryption.to_json(),
        };
        json_request(session, Self::NAME, &body)
    }

    fn parse(&self, response: Response<Bytes>) -> Result<FileVersion, Error> {
        let version: FileVersion = parse_json(Self::NAME, response)?;
        expect_same(Self::NAME, "file", &self.file_name, &version.file_name)?;
        Ok(version)
    }

    fn retry_class(&self) -> RetryClass {
        RetryClass::NonIdempotent
    }
}
