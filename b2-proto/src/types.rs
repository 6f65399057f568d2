//! Identifiers, validated names, checksums and file info.
//!
//! Values a caller creates (a new file name, a new bucket name, file info) are validated by
//! their constructors against B2's documented rules, so a bad value is a typed
//! [`InvalidInput`] before any request is sent. Values B2 returns are taken as B2 sent them.

use std::collections::BTreeMap;
use std::fmt;
use std::num::NonZeroU16;

use serde::{Deserialize, Serialize};

use crate::error::InvalidInput;
use crate::macros::id_string;

id_string! {
    /// The account id returned by `b2_authorize_account` (not the key id).
    AccountId
}
id_string! {
    /// A bucket id.
    BucketId
}
id_string! {
    /// A file id: one version of one file.
    FileId
}
id_string! {
    /// An application key id: the public half of a key id / key pair.
    ApplicationKeyId
}

/// Longest file name B2 accepts, in UTF-8 bytes.
pub const MAX_FILE_NAME_BYTES: usize = 1024;

/// A file name: 1 to 1024 bytes of UTF-8 with no control characters.
///
/// Rules: <https://www.backblaze.com/docs/cloud-storage-files> ("Files"): names are UTF-8,
/// at most 1024 bytes, with no characters below U+0020 and no DEL (U+007F).
///
/// [`FileName::new`] validates; names parsed from B2 replies are kept as B2 sent them.
///
/// ```
/// use b2_proto::FileName;
///
/// assert!(FileName::new("photos/2024/cat.jpg").is_ok());
/// assert!(FileName::new("").is_err());
/// assert!(FileName::new("bad\nname").is_err());
/// assert!(FileName::new("x".repeat(1025)).is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FileName(String);

impl FileName {
    /// Validates a file name against B2's rules.
    ///
    /// # Errors
    ///
    /// [`InvalidInput::FileName`] when the name is empty, longer than 1024 bytes, or contains a
    /// control character.
    pub fn new(name: impl Into<String>) -> Result<Self, InvalidInput> {
        let name = name.into();
        let reason = if name.is_empty() {
            Some("is empty".to_owned())
        } else if name.len() > MAX_FILE_NAME_BYTES {
            Some(format!(
                "is {} bytes long, over the limit of {MAX_FILE_NAME_BYTES}",
                name.len()
            ))
        } else {
            name.char_indices()
                .find(|&(_, c)| c < ' ' || c == '\u{7f}')
                .map(|(i, c)| format!("has control character U+{:04X} at byte {i}", c as u32))
        };
        match reason {
            Some(reason) => Err(InvalidInput::FileName { reason }),
            None => Ok(Self(name)),
        }
    }

    /// Wraps a name B2 returned, without validation.
    pub fn from_server(name: impl Into<String>) -> Self {
        Self(name.into())
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for FileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FileName({:?})", self.0)
    }
}

impl AsRef<str> for FileName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for FileName {
    type Error = InvalidInput;
    fn try_from(s: &str) -> Result<Self, InvalidInput> {
        Self::new(s)
    }
}

impl TryFrom<String> for FileName {
    type Error = InvalidInput;
    fn try_from(s: String) -> Result<Self, InvalidInput> {
        Self::new(s)
    }
}

/// A bucket name: 6 to 63 characters of letters, digits and `-`, not starting with `b2-`.
///
/// Rules: <https://www.backblaze.com/docs/cloud-storage-buckets> (bucket names are globally
/// unique, compared without regard to case; names starting with `b2-` are reserved).
///
/// ```
/// use b2_proto::BucketName;
///
/// assert!(BucketName::new("my-photos-2024").is_ok());
/// assert!(BucketName::new("short").is_err());
/// assert!(BucketName::new("b2-reserved").is_err());
/// assert!(BucketName::new("under_score").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BucketName(String);

impl BucketName {
    /// Validates a bucket name against B2's rules.
    ///
    /// # Errors
    ///
    /// [`InvalidInput::BucketName`] describing the rule the name breaks.
    pub fn new(name: impl Into<String>) -> Result<Self, InvalidInput> {
        let name = name.into();
        let reason = if !(6..=63).contains(&name.len()) {
            Some(format!(
                "must be 6 to 63 characters long, not {}",
                name.len()
            ))
        } else if let Some(c) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            Some(format!(
                "may contain only letters, digits and '-', not {c:?}"
            ))
        } else if name.len() >= 3 && name[..3].eq_ignore_ascii_case("b2-") {
            Some("must not start with \"b2-\", which is reserved".to_owned())
        } else {
            None
        };
        match reason {
            Some(reason) => Err(InvalidInput::BucketName { name, reason }),
            None => Ok(Self(name)),
        }
    }

    /// Wraps a name B2 returned, without validation.
    pub fn from_server(name: impl Into<String>) -> Self {
        Self(name.into())
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BucketName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for BucketName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BucketName({:?})", self.0)
    }
}

impl AsRef<str> for BucketName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for BucketName {
    type Error = InvalidInput;
    fn try_from(s: &str) -> Result<Self, InvalidInput> {
        Self::new(s)
    }
}

/// Highest part number of a large file.
pub const MAX_PART_NUMBER: u16 = 10_000;

/// A part number of a large file: 1 to 10,000.
///
/// ```
/// use b2_proto::PartNumber;
///
/// assert_eq!(PartNumber::new(1).unwrap().get(), 1);
/// assert!(PartNumber::new(0).is_err());
/// assert!(PartNumber::new(10_001).is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(try_from = "u16", into = "u16")]
pub struct PartNumber(NonZeroU16);

impl PartNumber {
    /// The first part.
    pub const FIRST: Self = Self(NonZeroU16::MIN);

    /// Validates a part number.
    ///
    /// # Errors
    ///
    /// [`InvalidInput::PartNumber`] outside 1..=10000.
    pub fn new(n: u32) -> Result<Self, InvalidInput> {
        u16::try_from(n)
            .ok()
            .filter(|&n| n <= MAX_PART_NUMBER)
            .and_then(NonZeroU16::new)
            .map(Self)
            .ok_or(InvalidInput::PartNumber { number: n })
    }

    /// The number.
    pub fn get(self) -> u16 {
        self.0.get()
    }

    /// Zero-based index of this part.
    pub fn index(self) -> usize {
        usize::from(self.0.get() - 1)
    }

    /// The part after this one, if there is one.
    pub fn next(self) -> Option<Self> {
        Self::new(u32::from(self.get()) + 1).ok()
    }
}

impl TryFrom<u16> for PartNumber {
    type Error = InvalidInput;
    fn try_from(n: u16) -> Result<Self, InvalidInput> {
        Self::new(u32::from(n))
    }
}

impl From<PartNumber> for u16 {
    fn from(p: PartNumber) -> Self {
        p.get()
    }
}

impl fmt::Display for PartNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A SHA1 digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sha1Digest([u8; 20]);

impl Sha1Digest {
    /// Wraps a raw digest.
    pub const fn from_bytes(bytes: [u8; 20]) -> Self {
        Self(bytes)
    }

    /// The raw digest.
    pub const fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }

    /// The SHA1 of `data`.
    ///
    /// ```
    /// use b2_proto::Sha1Digest;
    /// assert_eq!(Sha1Digest::of(b"abc").to_hex(), "a9993e364706816aba3e25717850c26c9cd0d89d");
    /// ```
    pub fn of(data: &[u8]) -> Self {
        use sha1::Digest as _;
        Self(sha1::Sha1::digest(data).into())
    }

    /// Parses 40 hexadecimal digits (either case).
    pub fn from_hex(hex: &str) -> Option<Self> {
        let hex = hex.as_bytes();
        if hex.len() != 40 {
            return None;
        }
        let mut out = [0u8; 20];
        for (i, pair) in hex.chunks_exact(2).enumerate() {
            let hi = (pair[0] as char).to_digit(16)?;
            let lo = (pair[1] as char).to_digit(16)?;
            out[i] = (hi << 4 | lo) as u8;
        }
        Some(Self(out))
    }

    /// The digest as 40 lowercase hexadecimal digits.
    pub fn to_hex(&self) -> String {
        let mut s = String::with_capacity(40);
        for b in self.0 {
            s.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
            s.push(char::from_digit(u32::from(b & 0xf), 16).unwrap_or('0'));
        }
        s
    }
}

impl fmt::Display for Sha1Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Sha1Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha1Digest({})", self.to_hex())
    }
}

impl Serialize for Sha1Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Sha1Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Self::from_hex(&s).ok_or_else(|| serde::de::Error::custom("expected 40 hex digits"))
    }
}

/// The `contentSha1` B2 keeps for a file or part.
///
/// B2 returns 40 hex digits when it verified the upload, `unverified:<hex>` when the uploader
/// supplied a checksum B2 did not check, and `none` for large files (whose whole-file SHA1, if
/// the uploader recorded one, is the `large_file_sha1` file info).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum ContentSha1 {
    /// A SHA1 B2 verified on upload.
    Verified(Sha1Digest),
    /// A SHA1 the uploader supplied and B2 did not check (`unverified:<hex>`).
    Unverified(Sha1Digest),
    /// No SHA1 (`none`): large files, and uploads made with `do_not_verify`.
    None,
    /// A value this version does not understand, kept as B2 sent it.
    Other(String),
}

impl ContentSha1 {
    /// Parses B2's textual form.
    pub fn parse(s: &str) -> Self {
        if s == "none" {
            Self::None
        } else if let Some(hex) = s.strip_prefix("unverified:") {
            Sha1Digest::from_hex(hex).map_or_else(|| Self::Other(s.to_owned()), Self::Unverified)
        } else {
            Sha1Digest::from_hex(s).map_or_else(|| Self::Other(s.to_owned()), Self::Verified)
        }
    }

    /// The digest, verified or not.
    pub fn digest(&self) -> Option<Sha1Digest> {
        match self {
            Self::Verified(d) | Self::Unverified(d) => Some(*d),
            Self::None | Self::Other(_) => None,
        }
    }
}

impl fmt::Display for ContentSha1 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Verified(d) => write!(f, "{d}"),
            Self::Unverified(d) => write!(f, "unverified:{d}"),
            Self::None => f.write_str("none"),
            Self::Other(s) => f.write_str(s),
        }
    }
}

impl Serialize for ContentSha1 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ContentSha1 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Option::<std::borrow::Cow<'de, str>>::deserialize(d)?;
        Ok(s.map_or(Self::None, |s| Self::parse(&s)))
    }
}

/// Most file-info entries a file may carry (B2 accepts at most 10 `X-Bz-Info-*` headers).
pub const MAX_FILE_INFO_ENTRIES: usize = 10;
/// Longest file-info key, in UTF-8 bytes.
pub const MAX_FILE_INFO_KEY_BYTES: usize = 50;
/// Limit on the headers holding the file name and file info.
pub const FILE_INFO_HEADERS_LIMIT: usize = 7000;
/// The same limit for files with server-side encryption or in Object Lock-enabled buckets.
pub const FILE_INFO_HEADERS_LIMIT_SSE_OR_LOCK: usize = 2048;

/// The `b2-` file-info keys B2 serves back as standard response headers.
pub const RESERVED_INFO_KEYS: [&str; 5] = [
    "b2-content-disposition",
    "b2-content-language",
    "b2-expires",
    "b2-cache-control",
    "b2-content-encoding",
];

/// Custom file information: up to 10 key/value pairs stored with a file.
///
/// Rules: <https://www.backblaze.com/docs/cloud-storage-add-file-information-with-the-native-api>.
/// Keys are at most 50 bytes of letters, digits and ``- _ . ` ~ ! # $ % ^ & * ' | +``; B2 stores
/// them lowercased, so they are lowercased here too. Keys starting with `b2-` are reserved, except
/// the five in [`RESERVED_INFO_KEYS`]. The whole set, with the file name, must fit in 7000 bytes of
/// headers (2048 with server-side encryption or Object Lock): see [`FileInfo::check_header_size`].
///
/// ```
/// use b2_proto::FileInfo;
///
/// let mut info = FileInfo::new();
/// info.insert("src_last_modified_millis", "1700000000000").unwrap();
/// info.insert("Author", "Ada").unwrap();
/// assert_eq!(info.get("author"), Some("Ada"));
/// assert!(info.insert("b2-secret", "x").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Default, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FileInfo(BTreeMap<String, String>);

/// True for bytes allowed in a file-info key (besides letters and digits).
fn is_info_key_char(c: char) -> bool {
    c.is_alphanumeric() || "-_.`~!#$%^&*'|+".contains(c)
}

impl FileInfo {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Wraps info B2 returned, without validation.
    pub fn from_server(map: BTreeMap<String, String>) -> Self {
        Self(map)
    }

    /// Adds or replaces an entry, lowercasing the key.
    ///
    /// # Errors
    ///
    /// [`InvalidInput::FileInfo`] for an invalid or reserved key, or an eleventh entry.
    pub fn insert(
        &mut self,
        key: impl AsRef<str>,
        value: impl Into<String>,
    ) -> Result<&mut Self, InvalidInput> {
        let key = key.as_ref().to_lowercase();
        let fail = |reason: String| InvalidInput::FileInfo {
            key: key.clone(),
            reason,
        };
        if key.is_empty() {
            return Err(fail("key is empty".into()));
        }
        if key.len() > MAX_FILE_INFO_KEY_BYTES {
            return Err(fail(format!(
                "key is {} bytes, over the limit of {MAX_FILE_INFO_KEY_BYTES}",
                key.len()
            )));
        }
        if let Some(c) = key.chars().find(|&c| !is_info_key_char(c)) {
            return Err(fail(format!("key contains {c:?}")));
        }
        if key.starts_with("b2-") && !RESERVED_INFO_KEYS.contains(&key.as_str()) {
            return Err(fail("keys starting with \"b2-\" are reserved".into()));
        }
        let value = value.into();
        if !self.0.contains_key(&key) && self.0.len() >= MAX_FILE_INFO_ENTRIES {
            return Err(fail(format!(
                "a file may carry at most {MAX_FILE_INFO_ENTRIES} entries"
            )));
        }
        self.0.insert(key, value);
        Ok(self)
    }

    /// The value of `key` (give it in lowercase).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// Removes an entry.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        self.0.remove(key)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The underlying map.
    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    /// Size in bytes of the headers that carry `file_name` and this info, as B2 counts them
    /// toward its limit: each `X-Bz-File-Name` / `X-Bz-Info-<key>` header line with its
    /// percent-encoded value, `": "` and CRLF.
    pub fn header_size(&self, file_name: &FileName) -> usize {
        let line =
            |name_len: usize, value: &str| name_len + 2 + crate::encoding::encode(value).len() + 2;
        line("X-Bz-File-Name".len(), file_name.as_str())
            + self
                .iter()
                .map(|(k, v)| line("X-Bz-Info-".len() + k.len(), v))
                .sum::<usize>()
    }

    /// Checks the 7000-byte (or, with SSE or Object Lock, 2048-byte) header limit.
    ///
    /// # Errors
    ///
    /// [`InvalidInput::FileInfoTooLarge`] when the headers would exceed the limit.
    pub fn check_header_size(
        &self,
        file_name: &FileName,
        encrypted_or_locked: bool,
    ) -> Result<(), InvalidInput> {
        let limit = if encrypted_or_locked {
            FILE_INFO_HEADERS_LIMIT_SSE_OR_LOCK
        } else {
            FILE_INFO_HEADERS_LIMIT
        };
        let size = self.header_size(file_name);
        if size > limit {
            Err(InvalidInput::FileInfoTooLarge { size, limit })
        } else {
            Ok(())
        }
    }
}

impl<'a> IntoIterator for &'a FileInfo {
    type Item = (&'a String, &'a String);
    type IntoIter = std::collections::btree_map::Iter<'a, String, String>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_sha1_forms() {
        let hex = "a9993e364706816aba3e25717850c26c9cd0d89d";
        let d = Sha1Digest::from_hex(hex).unwrap();
        assert_eq!(ContentSha1::parse(hex), ContentSha1::Verified(d));
        assert_eq!(
            ContentSha1::parse(&format!("unverified:{hex}")),
            ContentSha1::Unverified(d)
        );
        assert_eq!(ContentSha1::parse("none"), ContentSha1::None);
        assert_eq!(
            ContentSha1::parse("garbage"),
            ContentSha1::Other("garbage".into())
        );
        assert_eq!(
            ContentSha1::parse(&format!("unverified:{hex}")).to_string(),
            format!("unverified:{hex}")
        );
        assert_eq!(Sha1Digest::from_hex(&hex.to_uppercase()), Some(d));
        assert_eq!(Sha1Digest::from_hex("zz"), None);
    }

    #[test]
    fn file_info_limits() {
        let mut info = FileInfo::new();
        for i in 0..10 {
            info.insert(format!("k{i}"), "v").unwrap();
        }
        assert!(matches!(
            info.insert("k10", "v"),
            Err(InvalidInput::FileInfo { .. })
        ));
        // Replacing an existing key is not an eleventh entry.
        info.insert("K1", "w").unwrap();
        assert_eq!(info.get("k1"), Some("w"));
        assert!(FileInfo::new().insert("a".repeat(51), "v").is_err());
        assert!(FileInfo::new().insert("a b", "v").is_err());
        assert!(
            FileInfo::new()
                .insert("b2-content-disposition", "inline")
                .is_ok()
        );
        assert!(FileInfo::new().insert("B2-Whatever", "v").is_err());
    }

    #[test]
    fn header_size_limits() {
        let name = FileName::new("a.txt").unwrap();
        let mut info = FileInfo::new();
        info.insert("big", "x".repeat(2100)).unwrap();
        assert!(info.check_header_size(&name, false).is_ok());
        assert_eq!(
            info.check_header_size(&name, true),
            Err(InvalidInput::FileInfoTooLarge {
                size: info.header_size(&name),
                limit: 2048
            })
        );
        // Percent-encoding counts: 2000 spaces become 6000 bytes.
        let mut info = FileInfo::new();
        info.insert("big", " ".repeat(2400)).unwrap();
        assert!(info.check_header_size(&name, false).is_err());
    }

    #[test]
    fn part_numbers() {
        assert!(PartNumber::new(10_000).is_ok());
        assert_eq!(PartNumber::new(10_000).unwrap().next(), None);
        assert_eq!(PartNumber::FIRST.index(), 0);
        assert!(serde_json::from_str::<PartNumber>("0").is_err());
        assert_eq!(serde_json::from_str::<PartNumber>("7").unwrap().get(), 7);
    }
}
