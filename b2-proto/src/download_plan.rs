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
//! ```
//! use b2_proto::download_plan::DownloadPlan;
//!
//! let plan = DownloadPlan::new(250, 100, 8).unwrap();
//! assert_eq!(plan.ranges().collect::<Vec<_>>(), [0..100, 100..200, 200..250]);
//! assert_eq!(plan.concurrency(), 3);
//! ```

use std::ops::Range;

use crate::error::{Error, InvalidInput};
use crate::ops::download::{ByteRange, DownloadFileById, DownloadHead};
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
