//! Part planning: when to use the large-file API, how to cut a source into parts, and how to
//! hash it in one pass.
//!
//! B2's rules (<https://www.backblaze.com/docs/cloud-storage-create-large-files-with-the-native-api>):
//! parts are 5 MB (the session's `absoluteMinimumPartSize`) to 5 GB, except the last, which may
//! be as small as 1 byte; a large file has at most 10,000 parts and at most 10 TB; Backblaze
//! recommends the session's `recommendedPartSize` (100 MB). B2 also refuses to finish a large
//! file of a single part ("large files must have at least 2 parts"), so a plan always has two
//! parts or more. The integration checklist asks for the large-file API above 200 MB
//! (<https://www.backblaze.com/docs/cloud-storage-integration-checklist>); `b2_upload_file`
//! stops at 5 GB.
//!
//! ```
//! use b2_proto::planner::PartPlan;
//!
//! // 250 MB with B2's defaults (100 MB recommended, 5 MB minimum): 100 + 100 + 50 MB.
//! let plan = PartPlan::with_sizes(250_000_000, 100_000_000, 5_000_000).unwrap();
//! let parts: Vec<_> = plan.iter().map(|(n, r)| (n.get(), r)).collect();
//! assert_eq!(parts, [(1, 0..100_000_000), (2, 100_000_000..200_000_000), (3, 200_000_000..250_000_000)]);
//! ```

use std::ops::Range;

use sha1::Digest as _;

use crate::error::InvalidInput;
use crate::ops::large_file::{MAX_LARGE_FILE_SIZE, MAX_PART_SIZE};
use crate::ops::upload::MAX_UPLOAD_FILE_SIZE;
use crate::session::Session;
use crate::types::{MAX_PART_NUMBER, PartNumber, Sha1Digest};

/// Size above which uploads use the large-file API by default: 200 MB, as Backblaze's
/// integration checklist asks.
pub const DEFAULT_LARGE_FILE_CUTOFF: u64 = 200_000_000;

const MAX_PARTS: u64 = MAX_PART_NUMBER as u64;

/// Decides between `b2_upload_file` and the large-file API by size.
///
/// ```
/// use b2_proto::planner::LargeFileCutoff;
///
/// let cutoff = LargeFileCutoff::default();
/// assert!(!cutoff.use_large_file(200_000_000));
/// assert!(cutoff.use_large_file(200_000_001));
/// // Over 5 GB there is no choice, whatever the cutoff.
/// assert!(LargeFileCutoff::new(u64::MAX).use_large_file(5_000_000_001));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LargeFileCutoff(u64);

impl LargeFileCutoff {
    /// Sources longer than `bytes` use the large-file API (and always those over 5 GB).
    pub fn new(bytes: u64) -> Self {
        Self(bytes.min(MAX_UPLOAD_FILE_SIZE))
    }

    /// The cutoff in bytes.
    pub fn get(self) -> u64 {
        self.0
    }

    /// True when a source of `len` bytes should be uploaded as a large file.
    pub fn use_large_file(self, len: u64) -> bool {
        len > self.0
    }
}

impl Default for LargeFileCutoff {
    fn default() -> Self {
        Self(DEFAULT_LARGE_FILE_CUTOFF)
    }
}

/// How a source of known length is cut into parts: all of `part_size` bytes but the last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PartPlan {
    total: u64,
    part_size: u64,
    count: u16,
}

impl PartPlan {
    /// Plans `total` bytes with the session's recommended and minimum part sizes.
    ///
    /// # Errors
    ///
    /// As [`PartPlan::with_sizes`].
    pub fn new(total: u64, session: &Session) -> Result<Self, InvalidInput> {
        Self::with_sizes(
            total,
            session.recommended_part_size,
            session.absolute_minimum_part_size,
        )
    }

    /// Plans `total` bytes: parts of `recommended` bytes, never below `minimum` nor above
    /// 5 GB, grown so that no more than 10,000 parts are needed, and shrunk (not below
    /// `minimum`) so that there are at least two.
    ///
    /// # Errors
    ///
    /// [`InvalidInput::Size`] for more than 10 TB, or too few bytes to make two parts
    /// (`minimum` + 1); such a source goes up with `b2_upload_file`.
    pub fn with_sizes(total: u64, recommended: u64, minimum: u64) -> Result<Self, InvalidInput> {
        let minimum = minimum.clamp(1, MAX_PART_SIZE);
        check_total(total, minimum)?;
        let mut part_size = recommended.clamp(minimum, MAX_PART_SIZE);
        // Grow so 10,000 parts hold the file; 10 TB / 10,000 = 1 GB, well under 5 GB.
        part_size = part_size.max(total.div_ceil(MAX_PARTS));
        // Shrink so there are at least two parts.
        if part_size >= total {
            part_size = minimum.max(total.div_ceil(2));
        }
        Self::build(total, part_size.min(MAX_PART_SIZE))
    }

    /// Plans `total` bytes in parts of exactly `part_size` bytes (the last one shorter).
    ///
    /// # Errors
    ///
    /// [`InvalidInput::Size`] when `part_size` is below `minimum` or above 5 GB, or the plan
    /// would need more than 10,000 parts or fewer than two, or `total` is over 10 TB.
    pub fn with_part_size(total: u64, part_size: u64, minimum: u64) -> Result<Self, InvalidInput> {
        check_part_size(part_size, minimum)?;
        check_total(total, minimum)?;
        Self::build(total, part_size)
    }

    fn build(total: u64, part_size: u64) -> Result<Self, InvalidInput> {
        let count = total.div_ceil(part_size);
        if !(2..=MAX_PARTS).contains(&count) {
            return Err(InvalidInput::Size {
                reason: format!(
                    "{total} bytes in parts of {part_size} make {count} parts; a large file has 2 to {MAX_PARTS}"
                ),
            });
        }
        Ok(Self {
            total,
            part_size,
            // `count` is at most 10,000.
            count: count as u16,
        })
    }

    /// Total length of the source.
    pub fn total_len(&self) -> u64 {
        self.total
    }

    /// Size of every part but the last.
    pub fn part_size(&self) -> u64 {
        self.part_size
    }

    /// Number of parts.
    pub fn part_count(&self) -> u16 {
        self.count
    }

    /// The last part's number.
    pub fn last_part(&self) -> PartNumber {
        PartNumber::new(u32::from(self.count)).unwrap_or(PartNumber::FIRST)
    }

    /// The byte range of part `n`, or `None` past the last part.
    pub fn range(&self, n: PartNumber) -> Option<Range<u64>> {
        let i = u64::from(n.get()) - 1;
        let start = i * self.part_size;
        (start < self.total).then(|| start..(start + self.part_size).min(self.total))
    }

    /// Every part with its byte range, in order.
    pub fn iter(&self) -> impl Iterator<Item = (PartNumber, Range<u64>)> + '_ {
        (1..=u32::from(self.count)).filter_map(move |n| {
            let n = PartNumber::new(n).ok()?;
            Some((n, self.range(n)?))
        })
    }
}

fn check_total(total: u64, minimum: u64) -> Result<(), InvalidInput> {
    if total > MAX_LARGE_FILE_SIZE {
        return Err(InvalidInput::Size {
            reason: format!("{total} bytes is over B2's {MAX_LARGE_FILE_SIZE}-byte limit"),
        });
    }
    if total <= minimum {
        return Err(InvalidInput::Size {
            reason: format!(
                "{total} bytes cannot make the two parts a large file needs (the first at least \
                 {minimum} bytes); upload it with b2_upload_file"
            ),
        });
    }
    Ok(())
}

fn check_part_size(part_size: u64, minimum: u64) -> Result<(), InvalidInput> {
    if part_size < minimum || part_size > MAX_PART_SIZE {
        Err(InvalidInput::Size {
            reason: format!("part size {part_size} is outside {minimum}..={MAX_PART_SIZE}"),
        })
    } else {
        Ok(())
    }
}

/// How a source of unknown length (a pipe) is cut: parts of a fixed size, read in order until
/// the source ends; at most 10,000 parts, so at most 10,000 × `part_size` bytes.
///
/// ```
/// use b2_proto::planner::StreamPlan;
/// use b2_proto::PartNumber;
///
/// let plan = StreamPlan::with_part_size(10_000_000, 5_000_000).unwrap();
/// assert_eq!(plan.range(PartNumber::new(2).unwrap()), 10_000_000..20_000_000);
/// assert_eq!(plan.max_total_len(), 100_000_000_000);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StreamPlan {
    part_size: u64,
}

impl StreamPlan {
    /// Parts of the session's recommended size (at least its minimum).
    pub fn new(session: &Session) -> Self {
        let minimum = session.absolute_minimum_part_size.clamp(1, MAX_PART_SIZE);
        Self {
            part_size: session.recommended_part_size.clamp(minimum, MAX_PART_SIZE),
        }
    }

    /// Parts of `part_size` bytes.
    ///
    /// # Errors
    ///
    /// [`InvalidInput::Size`] when `part_size` is below `minimum` or above 5 GB.
    pub fn with_part_size(part_size: u64, minimum: u64) -> Result<Self, InvalidInput> {
        check_part_size(part_size, minimum)?;
        Ok(Self { part_size })
    }

    /// The part size.
    pub fn part_size(&self) -> u64 {
        self.part_size
    }

    /// The most bytes the plan can hold (10,000 parts).
    pub fn max_total_len(&self) -> u64 {
        self.part_size.saturating_mul(MAX_PARTS)
    }

    /// The source bytes of part `n`, if the source is that long.
    pub fn range(&self, n: PartNumber) -> Range<u64> {
        let start = (u64::from(n.get()) - 1) * self.part_size;
        start..start + self.part_size
    }
}

/// The SHA1s of a source hashed by [`PartHasher`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HashedSource {
    /// Each part's SHA1, in part order.
    pub part_sha1s: Vec<Sha1Digest>,
    /// The whole source's SHA1 (for `large_file_sha1`).
    pub whole_sha1: Sha1Digest,
    /// Bytes hashed.
    pub total_len: u64,
}

/// Hashes a source in one pass, in bounded memory: each part's SHA1 and the whole SHA1.
///
/// Feed the source's bytes in order, in chunks of any size; chunks may straddle parts.
///
/// ```
/// use b2_proto::planner::{PartHasher, PartPlan};
/// use b2_proto::Sha1Digest;
///
/// let data = vec![7u8; 25];
/// let plan = PartPlan::with_part_size(25, 10, 10).unwrap();
/// let mut hasher = PartHasher::new(&plan);
/// for chunk in data.chunks(7) {
///     hasher.update(chunk);
/// }
/// let hashed = hasher.finish().unwrap();
/// assert_eq!(hashed.part_sha1s, [Sha1Digest::of(&data[..10]), Sha1Digest::of(&data[10..20]), Sha1Digest::of(&data[20..])]);
/// assert_eq!(hashed.whole_sha1, Sha1Digest::of(&data));
/// ```
#[derive(Debug, Clone)]
pub struct PartHasher {
    part_size: u64,
    expected: Option<u64>,
    part: sha1::Sha1,
    part_len: u64,
    whole: sha1::Sha1,
    total: u64,
    parts: Vec<Sha1Digest>,
}

impl PartHasher {
    /// A hasher for the parts of `plan`; [`PartHasher::finish`] checks the length.
    pub fn new(plan: &PartPlan) -> Self {
        let mut hasher = Self::with_part_size(plan.part_size());
        hasher.expected = Some(plan.total_len());
        hasher
    }

    /// A hasher for parts of `part_size` bytes (at least 1), whatever the length.
    pub fn with_part_size(part_size: u64) -> Self {
        Self {
            part_size: part_size.max(1),
            expected: None,
            part: sha1::Sha1::new(),
            part_len: 0,
            whole: sha1::Sha1::new(),
            total: 0,
            parts: Vec::new(),
        }
    }

    /// Hashes the next bytes of the source.
    pub fn update(&mut self, mut data: &[u8]) {
        self.whole.update(data);
        self.total += data.len() as u64;
        while !data.is_empty() {
            let room = self.part_size - self.part_len;
            let take = usize::try_from(room).unwrap_or(usize::MAX).min(data.len());
            let (now, rest) = data.split_at(take);
            self.part.update(now);
            self.part_len += now.len() as u64;
            data = rest;
            if self.part_len == self.part_size {
                self.close_part();
            }
        }
    }

    fn close_part(&mut self) {
        let done = std::mem::replace(&mut self.part, sha1::Sha1::new());
        self.parts
            .push(Sha1Digest::from_bytes(done.finalize().into()));
        self.part_len = 0;
    }

    /// Bytes hashed so far.
    pub fn len(&self) -> u64 {
        self.total
    }

    /// True before any byte was hashed.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The SHA1s.
    ///
    /// # Errors
    ///
    /// [`InvalidInput::Size`] when the hasher was made for a plan and the source's length
    /// differs from the plan's (the source changed).
    pub fn finish(mut self) -> Result<HashedSource, InvalidInput> {
        if let Some(expected) = self.expected {
            if expected != self.total {
                return Err(InvalidInput::Size {
                    reason: format!(
                        "the source has {} bytes, the plan was made for {expected}",
                        self.total
                    ),
                });
            }
        }
        if self.part_len > 0 {
            self.close_part();
        }
        Ok(HashedSource {
            part_sha1s: self.parts,
            whole_sha1: Sha1Digest::from_bytes(self.whole.finalize().into()),
            total_len: self.total,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1_000_000;

    #[test]
    fn defaults_and_growth() {
        let plan = PartPlan::with_sizes(250 * MB, 100 * MB, 5 * MB).unwrap();
        assert_eq!((plan.part_size(), plan.part_count()), (100 * MB, 3));
        // 10 TB needs 1 GB parts to fit in 10,000.
        let plan = PartPlan::with_sizes(MAX_LARGE_FILE_SIZE, 100 * MB, 5 * MB).unwrap();
        assert_eq!((plan.part_size(), plan.part_count()), (1_000 * MB, 10_000));
        assert!(PartPlan::with_sizes(MAX_LARGE_FILE_SIZE + 1, 100 * MB, 5 * MB).is_err());
    }

    #[test]
    fn small_sources_get_two_parts() {
        let plan = PartPlan::with_sizes(80 * MB, 100 * MB, 5 * MB).unwrap();
        assert_eq!((plan.part_size(), plan.part_count()), (40 * MB, 2));
        let plan = PartPlan::with_sizes(5 * MB + 1, 100 * MB, 5 * MB).unwrap();
        assert_eq!((plan.part_size(), plan.part_count()), (5 * MB, 2));
        assert!(PartPlan::with_sizes(5 * MB, 100 * MB, 5 * MB).is_err());
        assert!(PartPlan::with_part_size(10 * MB, 10 * MB, 5 * MB).is_err());
        assert!(PartPlan::with_part_size(10 * MB, 4 * MB, 5 * MB).is_err());
    }

    #[test]
    fn hasher_without_plan_and_length_check() {
        let mut h = PartHasher::with_part_size(4);
        h.update(b"abcdefghij");
        let out = h.finish().unwrap();
        assert_eq!(
            out.part_sha1s,
            [
                Sha1Digest::of(b"abcd"),
                Sha1Digest::of(b"efgh"),
                Sha1Digest::of(b"ij")
            ]
        );
        let plan = PartPlan::with_part_size(10, 4, 4).unwrap();
        let mut h = PartHasher::new(&plan);
        h.update(b"abc");
        assert!(h.finish().is_err());
    }
}
