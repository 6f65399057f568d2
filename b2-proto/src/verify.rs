//! Checking downloaded bytes against the SHA1 and length B2 announced.
//!
//! B2 sends the SHA1 of the whole file with every download (`X-Bz-Content-Sha1`) and asks
//! clients to check it, since errors can happen in transmission
//! (<https://www.backblaze.com/apidocs/b2-download-file-by-id>). Feed the body to a
//! [`Sha1Verifier`] as it streams in, then call [`Sha1Verifier::finish`]:
//!
//! - the file's SHA1 is 40 hex digits: checked, [`Sha1Source::Verified`];
//! - it is `unverified:<hex>`: checked, but B2 did not check it at upload, so it only proves
//!   the bytes are what the uploader described: [`Sha1Source::UnverifiedAtUpload`];
//! - it is `none` (large files): checked against the `large_file_sha1` file info when the
//!   uploader recorded one: [`Sha1Source::LargeFileInfo`];
//! - a range of the file, or a file without any SHA1, cannot be checked: the result says so
//!   plainly ([`Verification::Unverifiable`]);
//! - in every case the byte count must equal `Content-Length`, or the download was truncated.
//!
//! A mismatch is an [`Error::Integrity`]: discard the bytes.
//!
//! Feed the bytes exactly as B2 sent them. B2 hashes the stored bytes, so a file stored with
//! `b2-content-encoding: gzip` is served with `Content-Encoding: gzip` and must be hashed
//! before any decompression: turn off an HTTP client's automatic content decoding.
//!
//! ```
//! use b2_proto::verify::{Sha1Source, Sha1Verifier, Verification};
//! use b2_proto::{ContentSha1, Sha1Digest};
//!
//! let data = b"hello world";
//! let mut verifier = Sha1Verifier::expecting(ContentSha1::Verified(Sha1Digest::of(data)), None, data.len() as u64);
//! verifier.update(&data[..5]);
//! verifier.update(&data[5..]);
//! assert!(matches!(verifier.finish().unwrap(), Verification::Matched { source: Sha1Source::Verified, .. }));
//! ```

use std::fmt;

use sha1::Digest as _;

use crate::error::{Error, IntegrityError};
use crate::ops::download::DownloadHead;
use crate::types::{ContentSha1, Sha1Digest};

/// Where the SHA1 a download was checked against came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Sha1Source {
    /// The content SHA1, which B2 verified when the file was uploaded.
    Verified,
    /// An `unverified:` content SHA1: the uploader supplied it and B2 did not check it at
    /// upload. A match shows the bytes are what the uploader described.
    UnverifiedAtUpload,
    /// The `large_file_sha1` file info the uploader recorded for a large file (B2 keeps no
    /// whole-file SHA1 for large files and does not check this one).
    LargeFileInfo,
}

/// Why a download could not be checked against a SHA1.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Unverifiable {
    /// Only a range was read; B2's SHA1 covers the whole file.
    RangedRead,
    /// The file has no SHA1: content SHA1 `none` and no `large_file_sha1` info.
    NoSha1,
    /// The content SHA1 is in a form this version does not understand.
    UnrecognizedSha1(String),
    /// The `large_file_sha1` info is not 40 hexadecimal digits.
    InvalidLargeFileSha1(String),
}

impl fmt::Display for Unverifiable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RangedRead => {
                f.write_str("only a range was read; the SHA1 covers the whole file")
            }
            Self::NoSha1 => f.write_str("the file has no SHA1"),
            Self::UnrecognizedSha1(s) => write!(f, "unrecognized content SHA1 {s:?}"),
            Self::InvalidLargeFileSha1(s) => write!(f, "large_file_sha1 {s:?} is not a SHA1"),
        }
    }
}

/// The outcome of a successful check: the bytes matched, or no check was possible.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Verification {
    /// The bytes hash to the expected SHA1, and their count is the announced length.
    Matched {
        /// The SHA1 of the bytes.
        sha1: Sha1Digest,
        /// Where the expected SHA1 came from.
        source: Sha1Source,
    },
    /// The byte count is right, but no SHA1 could be checked.
    Unverifiable(Unverifiable),
}

impl Verification {
    /// True when a SHA1 was checked and matched.
    pub fn is_matched(&self) -> bool {
        matches!(self, Self::Matched { .. })
    }
}

#[derive(Debug, Clone)]
enum Expected {
    Digest(Sha1Digest, Sha1Source),
    Nothing(Unverifiable),
    /// The reply contradicts the request; reported by `finish`.
    Contradiction(&'static str),
}

/// A streaming check of downloaded bytes against B2's SHA1 and `Content-Length`.
///
/// Create it from the [`DownloadHead`] with [`Sha1Verifier::new`], feed every body chunk in
/// order to [`update`](Self::update), then call [`finish`](Self::finish).
#[derive(Clone)]
pub struct Sha1Verifier {
    expected: Expected,
    expected_len: u64,
    seen: u64,
    hasher: Option<sha1::Sha1>,
}

impl fmt::Debug for Sha1Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sha1Verifier")
            .field("expected", &self.expected)
            .field("expected_len", &self.expected_len)
            .field("seen", &self.seen)
            .finish_non_exhaustive()
    }
}

impl Sha1Verifier {
    /// A verifier for the body that follows `head`.
    ///
    /// `whole_file_requested` is true when the request had no range. A 206 reply is a range,
    /// and only its length can be checked; a 200 reply holds the whole file even when a range
    /// was asked for (B2 sends the whole file for a range that covers it), and is checked in full.
    pub fn new(head: &DownloadHead, whole_file_requested: bool) -> Self {
        if head.is_partial() {
            let expected = if whole_file_requested {
                Expected::Contradiction("a range came back for a whole-file request")
            } else {
                Expected::Nothing(Unverifiable::RangedRead)
            };
            return Self::with_expected(expected, head.content_length);
        }
        let large = head.file_info.get("large_file_sha1").map(str::to_owned);
        Self::expecting(head.content_sha1.clone(), large, head.content_length)
    }

    /// A verifier for `length` bytes whose content SHA1 is `content_sha1` and whose
    /// `large_file_sha1` info (used when the content SHA1 is `none`) is `large_file_sha1`.
    pub fn expecting(
        content_sha1: ContentSha1,
        large_file_sha1: Option<String>,
        length: u64,
    ) -> Self {
        let expected = match content_sha1 {
            ContentSha1::Verified(d) => Expected::Digest(d, Sha1Source::Verified),
            ContentSha1::Unverified(d) => Expected::Digest(d, Sha1Source::UnverifiedAtUpload),
            ContentSha1::Other(s) => Expected::Nothing(Unverifiable::UnrecognizedSha1(s)),
            // `None`, and any form added later.
            _ => match large_file_sha1 {
                None => Expected::Nothing(Unverifiable::NoSha1),
                Some(s) => {
                    match Sha1Digest::from_hex(s.strip_prefix("unverified:").unwrap_or(&s)) {
                        Some(d) => Expected::Digest(d, Sha1Source::LargeFileInfo),
                        None => Expected::Nothing(Unverifiable::InvalidLargeFileSha1(s)),
                    }
                }
            },
        };
        Self::with_expected(expected, length)
    }

    fn with_expected(expected: Expected, expected_len: u64) -> Self {
        let hasher = matches!(expected, Expected::Digest(..)).then(sha1::Sha1::new);
        Self {
            expected,
            expected_len,
            seen: 0,
            hasher,
        }
    }

    /// Feeds the next bytes of the body.
    pub fn update(&mut self, data: &[u8]) {
        self.seen = self.seen.saturating_add(data.len() as u64);
        if let Some(hasher) = &mut self.hasher {
            hasher.update(data);
        }
    }

    /// Bytes fed so far.
    pub fn bytes_seen(&self) -> u64 {
        self.seen
    }

    /// Bytes expected in all.
    pub fn expected_len(&self) -> u64 {
        self.expected_len
    }

    /// Checks the bytes fed.
    ///
    /// # Errors
    ///
    /// [`IntegrityError::LengthMismatch`] when the byte count differs from the announced
    /// length (a truncated download), checked first; [`IntegrityError::Sha1Mismatch`] when
    /// the SHA1 differs; [`Error::InvalidResponse`] when the reply contradicted the request.
    pub fn finish(self) -> Result<Verification, Error> {
        if let Expected::Contradiction(reason) = self.expected {
            return Err(Error::InvalidResponse {
                op: "download",
                reason: reason.into(),
            });
        }
        if self.seen != self.expected_len {
            return Err(IntegrityError::LengthMismatch {
                expected: self.expected_len,
                actual: self.seen,
            }
            .into());
        }
        match (self.expected, self.hasher) {
            (Expected::Digest(expected, source), Some(hasher)) => {
                let actual = Sha1Digest::from_bytes(hasher.finalize().into());
                if actual == expected {
                    Ok(Verification::Matched {
                        sha1: actual,
                        source,
                    })
                } else {
                    Err(IntegrityError::Sha1Mismatch { expected, actual }.into())
                }
            }
            (Expected::Nothing(reason), _) => Ok(Verification::Unverifiable(reason)),
            // A digest always has a hasher, and contradictions returned above.
            (Expected::Digest(..) | Expected::Contradiction(_), _) => Err(Error::InvalidResponse {
                op: "download",
                reason: "verifier state is inconsistent".into(),
            }),
        }
    }
}
