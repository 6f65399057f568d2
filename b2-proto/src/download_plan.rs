//! Planning a parallel download of one file as ranged reads.
//!
//! Backblaze suggests a `HEAD` request to learn a file's size before fetching it in ranges
//! from several connections (<https://www.backblaze.com/docs/cloud-storage-download-files-with-the-native-api>).
//! A [`DownloadPlan`] turns that head into the ranges to fetch:
//!
//! 1. `HEAD` the file (by name or id) and parse the [`DownloadHead`].
//! 2. [`DownloadPlan::for_head`] with a part size and a concurrency limit.
//! 3. Fetch [`DownloadPlan::part_request`]`(i)` for each part, at most
//!    [`concurrency`](DownloadPlan::concurrency) at a time. The requests go **by file id**, so
//!    every part comes from the same version even if the name gets a new upload meanwhile.
//!    Check each part's head with [`DownloadPlan::check_part`].
//! 4. Assemble the parts in order, and hash the assembled bytes, in order, with
//!    [`DownloadPlan::verifier`]: the SHA1 B2 announced covers the whole file, never a part.
//!
//! A download into a file can skip the `HEAD`: with [`FileDownload`] the first `GET` (the first
//! part) doubles as the probe of the file's size and version.
//!
//! ```
//! use b2_proto::download_plan::DownloadPlan;
//!
//! let plan = DownloadPlan::new(250, 100, 8).unwrap();
//! assert_eq!(plan.ranges().collect::<Vec<_>>(), [0..100, 100..200, 200..250]);
//! assert_eq!(plan.concurrency(), 3);
//! ```

use std::ops::Range;

use crate::error::{Error, InvalidInput};
use crate::ops::download::{ByteRange, DownloadCall, DownloadFileById, DownloadHead};
use crate::types::{ContentSha1, FileId};
use crate::verify::Sha1Verifier;

/// The ranges of a parallel download, and the check of the assembled file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadPlan {
    file_id: Option<FileId>,
    file_size: u64,
    part_size: u64,
    max_concurrency: usize,
    content_sha1: ContentSha1,
    large_file_sha1: Option<String>,
}

impl DownloadPlan {
    /// Plans `file_size` bytes in parts of `part_size` bytes (the last may be shorter), with at
    /// most `max_concurrency` parts in flight. Without a head there is no SHA1 to check: prefer
    /// [`DownloadPlan::for_head`].
    ///
    /// # Errors
    ///
    /// [`InvalidInput::Argument`] when `part_size` or `max_concurrency` is 0.
    pub fn new(
        file_size: u64,
        part_size: u64,
        max_concurrency: usize,
    ) -> Result<Self, InvalidInput> {
        check_split(part_size, max_concurrency)?;
        Ok(Self {
            file_id: None,
            file_size,
            part_size,
            max_concurrency,
            content_sha1: ContentSha1::None,
            large_file_sha1: None,
        })
    }

    /// Plans the download of the file `head` describes (from a `HEAD` or a first ranged `GET`).
    ///
    /// # Errors
    ///
    /// As [`DownloadPlan::new`].
    pub fn for_head(
        head: &DownloadHead,
        part_size: u64,
        max_concurrency: usize,
    ) -> Result<Self, InvalidInput> {
        let mut plan = Self::new(head.file_size(), part_size, max_concurrency)?;
        plan.file_id = Some(head.file_id.clone());
        plan.content_sha1 = head.content_sha1.clone();
        plan.large_file_sha1 = head.file_info.get("large_file_sha1").map(str::to_owned);
        Ok(plan)
    }

    /// Size of the whole file.
    pub fn file_size(&self) -> u64 {
        self.file_size
    }

    /// The version every part is read from, when planned from a head.
    pub fn file_id(&self) -> Option<&FileId> {
        self.file_id.as_ref()
    }

    /// Number of parts (0 for an empty file).
    pub fn part_count(&self) -> u64 {
        self.file_size.div_ceil(self.part_size)
    }

    /// How many parts to fetch at once: the limit, or fewer when there are fewer parts.
    pub fn concurrency(&self) -> usize {
        usize::try_from(self.part_count())
            .map_or(self.max_concurrency, |n| n.min(self.max_concurrency))
    }

    /// Part `index` (from 0) as a half-open byte range, or `None` past the last part.
    pub fn range(&self, index: u64) -> Option<Range<u64>> {
        let start = index.checked_mul(self.part_size)?;
        if start >= self.file_size {
            return None;
        }
        let end = start.saturating_add(self.part_size).min(self.file_size);
        Some(start..end)
    }

    /// All parts in order: they cover `0..file_size` exactly once and none is empty.
    pub fn ranges(&self) -> impl Iterator<Item = Range<u64>> + '_ {
        (0..self.part_count()).filter_map(|i| self.range(i))
    }

    /// The `GET` for part `index`: by file id, with the part's range. Add the SSE-C key or other
    /// options as for any download. `None` past the last part or for a plan made without a head.
    pub fn part_request(&self, index: u64) -> Option<DownloadFileById> {
        let range = ByteRange::from_range(self.range(index)?).ok()?;
        Some(DownloadFileById::new(self.file_id.clone()?).with_range(range))
    }

    /// Checks that the head of part `index` is that part of the planned file version.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidResponse`] when the part is from another version, of another size, or
    /// covers other bytes.
    pub fn check_part(&self, index: u64, head: &DownloadHead) -> Result<(), Error> {
        let bad = |reason: String| Error::InvalidResponse {
            op: "b2_download_file_by_id",
            reason,
        };
        let Some(range) = self.range(index) else {
            return Err(bad(format!("part {index} is not in the plan")));
        };
        if let Some(id) = &self.file_id {
            if *id != head.file_id {
                return Err(bad(format!(
                    "part {index} is from version {}, not {id}",
                    head.file_id
                )));
            }
        }
        if head.file_size() != self.file_size {
            return Err(bad(format!(
                "part {index} belongs to a {}-byte file, not {} bytes",
                head.file_size(),
                self.file_size
            )));
        }
        let got = match head.content_range {
            Some(r) => r.start..r.end + 1,
            None => 0..head.content_length,
        };
        if got != range {
            return Err(bad(format!(
                "part {index} holds bytes {got:?}, not {range:?}"
            )));
        }
        Ok(())
    }

    /// A verifier for the assembled file: feed it every part's bytes in order, then `finish`.
    /// It checks the total length and the SHA1 B2 announced for the whole file.
    pub fn verifier(&self) -> Sha1Verifier {
        Sha1Verifier::expecting(
            self.content_sha1.clone(),
            self.large_file_sha1.clone(),
            self.file_size,
        )
    }
}

/// Refuses a zero part size or concurrency.
fn check_split(part_size: u64, max_concurrency: usize) -> Result<(), InvalidInput> {
    if part_size == 0 {
        return Err(InvalidInput::Argument {
            what: "part size",
            reason: "must be at least 1 byte".into(),
        });
    }
    if max_concurrency == 0 {
        return Err(InvalidInput::Argument {
            what: "concurrency",
            reason: "must be at least 1".into(),
        });
    }
    Ok(())
}

/// A download into a file whose first request doubles as the probe of the file's size and
/// version, so that no `HEAD` is needed.
///
/// 1. [`FileDownload::start`] gives the first request: the call itself when it asks for a range
///    (a range is fetched in one request), otherwise the call for the first part of the file.
/// 2. Write that reply's body at offset 0, and check it as it streams (a [`Sha1Verifier`] from
///    the head, as for any download).
/// 3. [`FileDownload::rest`] with that reply's head: `None` when the reply held all there is
///    (a range, or a whole file sent as such), otherwise the [`DownloadPlan`] of the whole
///    file, whose parts after the first ([`DownloadPlan::part_request`] from index 1) are still
///    to fetch, by file id so that all come from the probed version. Their bytes, with the
///    first part's, are then checked against the whole file's SHA1 with
///    [`DownloadPlan::verifier`].
///
/// ```
/// use b2_proto::download_plan::FileDownload;
/// use b2_proto::ops::download::{DownloadCall, DownloadFileByName};
/// use b2_proto::types::{BucketName, FileName};
///
/// let op = DownloadFileByName::new(BucketName::new("photos")?, FileName::new("cat.jpg")?);
/// let (download, first) = FileDownload::start(op, 100_000_000, 4)?;
/// // Without a range of its own, the first request asks for the first part only.
/// assert_eq!(first.byte_range().map(|r| r.header_value()), Some("bytes=0-99999999".into()));
/// # let _ = download;
/// # Ok::<(), b2_proto::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDownload {
    ranged: bool,
    part_size: u64,
    max_concurrency: usize,
}

impl FileDownload {
    /// Starts a download of `op` in parts of `part_size` bytes, at most `max_concurrency` at a
    /// time; returns the plan-to-be and the first request.
    ///
    /// # Errors
    ///
    /// [`InvalidInput::Argument`] when `part_size` or `max_concurrency` is 0.
    pub fn start<Op: DownloadCall>(
        op: Op,
        part_size: u64,
        max_concurrency: usize,
    ) -> Result<(Self, Op), InvalidInput> {
        check_split(part_size, max_concurrency)?;
        let ranged = op.byte_range().is_some();
        let first = if ranged {
            op
        } else {
            op.with_byte_range(ByteRange::new(0, part_size - 1)?)
        };
        let download = Self {
            ranged,
            part_size,
            max_concurrency,
        };
        Ok((download, first))
    }

    /// How many bytes the download writes in all, from the first reply's head: the range's
    /// length for a ranged call, the file's size otherwise.
    pub fn total_len(&self, first: &DownloadHead) -> u64 {
        if self.ranged {
            first.content_length
        } else {
            first.file_size()
        }
    }

    /// What is left after the first reply: `None` when it held everything, or the plan of the
    /// whole file, of which parts from index 1 on are still to fetch.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidResponse`] when the first reply, for the first part of a file, holds
    /// other bytes than that part.
    pub fn rest(&self, first: &DownloadHead) -> Result<Option<DownloadPlan>, Error> {
        if self.ranged || !first.is_partial() {
            return Ok(None);
        }
        let plan = DownloadPlan::for_head(first, self.part_size, self.max_concurrency)?;
        plan.check_part(0, first)?;
        Ok(Some(plan))
    }
}
