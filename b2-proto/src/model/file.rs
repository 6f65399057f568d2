//! File versions, parts, encryption, retention and legal hold.

use serde::{Deserialize, Serialize};

use crate::macros::string_enum;
use crate::types::{AccountId, BucketId, ContentSha1, FileId, FileInfo, FileName, PartNumber};

string_enum! {
    /// What a file-version record is.
    ///
    /// <https://www.backblaze.com/apidocs/b2-list-file-versions>
    pub enum Action {
        /// An uploaded (or copied, or finished large) file.
        Upload = "upload",
        /// A large file started and not yet finished or cancelled.
        Start = "start",
        /// A hide marker: the file name is hidden from `b2_list_file_names`.
        Hide = "hide",
        /// A virtual folder, returned by listings with a delimiter.
        Folder = "folder",
    }
}

string_enum! {
    /// An encryption mode.
    pub enum EncryptionMode {
        /// Server-side encryption with keys B2 manages.
        SseB2 = "SSE-B2",
        /// Server-side encryption with a key the customer supplies on every request.
        SseC = "SSE-C",
    }
}

string_enum! {
    /// An encryption algorithm.
    pub enum EncryptionAlgorithm {
        /// AES-256, the only algorithm B2 offers.
        Aes256 = "AES256",
    }
}

/// How a file is encrypted, as B2 reports it (`serverSideEncryption`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct EncryptionInfo {
    /// The mode, or `None` for an unencrypted file.
    #[serde(default)]
    pub mode: Option<EncryptionMode>,
    /// The algorithm, when encrypted.
    #[serde(default)]
    pub algorithm: Option<EncryptionAlgorithm>,
    /// For SSE-C, the base64 MD5 of the customer key, when B2 reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_key_md5: Option<String>,
}

string_enum! {
    /// An Object Lock retention mode.
    ///
    /// <https://www.backblaze.com/docs/cloud-storage-object-lock>
    pub enum RetentionMode {
        /// Can be shortened or removed by a key with `bypassGovernance`.
        Governance = "governance",
        /// Cannot be shortened or removed until it expires.
        Compliance = "compliance",
    }
}

/// A file's retention setting.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct FileRetention {
    /// The mode, or `None` for no retention.
    #[serde(default)]
    pub mode: Option<RetentionMode>,
    /// Until when, in milliseconds since the epoch.
    #[serde(default)]
    pub retain_until_timestamp: Option<u64>,
}

impl FileRetention {
    /// Retention in `mode` until `retain_until_timestamp` (milliseconds since the epoch).
    pub fn new(mode: RetentionMode, retain_until_timestamp: u64) -> Self {
        Self {
            mode: Some(mode),
            retain_until_timestamp: Some(retain_until_timestamp),
        }
    }

    /// No retention.
    pub fn none() -> Self {
        Self::default()
    }
}

string_enum! {
    /// A legal hold setting.
    pub enum LegalHold {
        /// The file may not be deleted.
        On = "on",
        /// No legal hold.
        Off = "off",
    }
}

/// A setting B2 reports only to keys allowed to read it.
///
/// B2 wraps retention and legal hold as `{"isClientAuthorizedToRead": bool, "value": …}`;
/// `value` is `None` when the key may not read it or nothing is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", bound(deserialize = "T: Deserialize<'de>"))]
#[non_exhaustive]
pub struct Protected<T> {
    /// Whether the key may read the setting.
    pub is_client_authorized_to_read: bool,
    /// The setting, when readable and set.
    #[serde(default)]
    pub value: Option<T>,
}

impl<T> Default for Protected<T> {
    fn default() -> Self {
        Self {
            is_client_authorized_to_read: false,
            value: None,
        }
    }
}

/// One version of a file: an upload, a started large file, a hide marker, or a folder.
///
/// <https://www.backblaze.com/apidocs/b2-get-file-info> describes the fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct FileVersion {
    /// The account.
    #[serde(default)]
    pub account_id: Option<AccountId>,
    /// What this record is.
    pub action: Action,
    /// The bucket.
    #[serde(default)]
    pub bucket_id: Option<BucketId>,
    /// Size in bytes (0 for hide markers, folders and started large files).
    #[serde(default)]
    pub content_length: u64,
    /// The SHA1 B2 keeps for the content.
    #[serde(default = "content_sha1_none")]
    pub content_sha1: ContentSha1,
    /// The MD5 B2 keeps for the content, when it has one.
    #[serde(default)]
    pub content_md5: Option<String>,
    /// The MIME type.
    #[serde(default)]
    pub content_type: Option<String>,
    /// The version's id; `None` for folders.
    #[serde(default)]
    pub file_id: Option<FileId>,
    /// Custom file information.
    #[serde(default)]
    pub file_info: FileInfo,
    /// The file name (for folders: the prefix, ending with the delimiter).
    pub file_name: FileName,
    /// Object Lock retention.
    #[serde(default)]
    pub file_retention: Option<Protected<FileRetention>>,
    /// Object Lock legal hold.
    #[serde(default)]
    pub legal_hold: Option<Protected<LegalHold>>,
    /// Replication status, when replication is configured.
    #[serde(default)]
    pub replication_status: Option<String>,
    /// Encryption.
    #[serde(default)]
    pub server_side_encryption: Option<EncryptionInfo>,
    /// Upload time in milliseconds since the epoch (0 for folders).
    #[serde(default)]
    pub upload_timestamp: u64,
}

fn content_sha1_none() -> ContentSha1 {
    ContentSha1::None
}

impl FileVersion {
    /// The whole-file SHA1 B2 can vouch for: the content SHA1 when B2 verified it, else the
    /// `large_file_sha1` file info the uploader recorded.
    pub fn whole_file_sha1(&self) -> Option<crate::Sha1Digest> {
        match &self.content_sha1 {
            ContentSha1::Verified(d) | ContentSha1::Unverified(d) => Some(*d),
            ContentSha1::None | ContentSha1::Other(_) => {
                self.file_info.get("large_file_sha1").and_then(|s| {
                    crate::Sha1Digest::from_hex(s.strip_prefix("unverified:").unwrap_or(s))
                })
            }
        }
    }
}

/// One uploaded part of a large file.
///
/// <https://www.backblaze.com/apidocs/b2-list-parts>
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Part {
    /// The large file.
    pub file_id: FileId,
    /// The part's number.
    pub part_number: PartNumber,
    /// Size in bytes.
    pub content_length: u64,
    /// The part's SHA1.
    pub content_sha1: ContentSha1,
    /// The part's MD5, when B2 reports it.
    #[serde(default)]
    pub content_md5: Option<String>,
    /// Encryption.
    #[serde(default)]
    pub server_side_encryption: Option<EncryptionInfo>,
    /// Upload time in milliseconds since the epoch.
    #[serde(default)]
    pub upload_timestamp: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_documented_file_version_with_unknown_fields() {
        let json = r#"{
          "accountId": "ACCOUNT", "action": "upload", "bucketId": "BUCKET",
          "contentLength": 7, "contentSha1": "unverified:a9993e364706816aba3e25717850c26c9cd0d89d",
          "contentMd5": null, "contentType": "text/plain", "fileId": "4_zID",
          "fileInfo": {"src_last_modified_millis": "1700000000000"},
          "fileName": "a b.txt",
          "fileRetention": {"isClientAuthorizedToRead": true, "value": {"mode": "governance", "retainUntilTimestamp": 1900000000000}},
          "legalHold": {"isClientAuthorizedToRead": false, "value": null},
          "replicationStatus": null,
          "serverSideEncryption": {"algorithm": "AES256", "mode": "SSE-B2"},
          "uploadTimestamp": 1700000000001,
          "someFutureField": {"x": 1}
        }"#;
        let v: FileVersion = serde_json::from_str(json).unwrap();
        assert_eq!(v.action, Action::Upload);
        assert_eq!(v.file_name.as_str(), "a b.txt");
        assert!(matches!(v.content_sha1, ContentSha1::Unverified(_)));
        assert_eq!(
            v.whole_file_sha1().unwrap().to_hex(),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        let retention = v.file_retention.unwrap().value.unwrap();
        assert_eq!(retention.mode, Some(RetentionMode::Governance));
        assert_eq!(v.legal_hold.unwrap().value, None);
        assert_eq!(
            v.server_side_encryption.unwrap().mode,
            Some(EncryptionMode::SseB2)
        );
    }

    #[test]
    fn folders_and_unknown_actions_parse() {
        let folder: FileVersion = serde_json::from_str(
            r#"{"action":"folder","fileId":null,"fileName":"photos/","contentLength":0,"contentSha1":null,"uploadTimestamp":0}"#,
        )
        .unwrap();
        assert_eq!(folder.action, Action::Folder);
        assert_eq!(folder.file_id, None);
        assert_eq!(folder.content_sha1, ContentSha1::None);
        let odd: FileVersion =
            serde_json::from_str(r#"{"action":"teleport","fileName":"x"}"#).unwrap();
        assert_eq!(odd.action, Action::Other("teleport".into()));
    }

    #[test]
    fn large_file_sha1_is_the_fallback() {
        let v: FileVersion = serde_json::from_str(
            r#"{"action":"upload","fileName":"big","contentSha1":"none",
                "fileInfo":{"large_file_sha1":"a9993e364706816aba3e25717850c26c9cd0d89d"}}"#,
        )
        .unwrap();
        assert_eq!(
            v.whole_file_sha1().unwrap().to_hex(),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
    }
}

/// A customer-supplied AES-256 key for SSE-C. Never shown in `Debug`.
///
/// B2 keeps only the key's MD5; the same key must accompany every read of the file.
/// <https://www.backblaze.com/docs/cloud-storage-server-side-encryption>
#[derive(Clone, PartialEq, Eq)]
pub struct CustomerKey([u8; 32]);

impl CustomerKey {
    /// Wraps a 256-bit key.
    pub fn new(key: [u8; 32]) -> Self {
        Self(key)
    }

    /// The key, base64-encoded, as B2 expects it.
    pub fn to_base64(&self) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(self.0)
    }

    /// The base64 MD5 of the key, by which B2 identifies it.
    pub fn md5_base64(&self) -> String {
        use base64::Engine as _;
        use md5::Digest as _;
        base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(self.0))
    }
}

impl std::fmt::Debug for CustomerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CustomerKey(<redacted>)")
    }
}

/// Encryption to ask for when writing, or the key to present when reading.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Encryption {
    /// Whatever the bucket's default is (no encryption headers or fields are sent).
    #[default]
    BucketDefault,
    /// SSE-B2: B2 manages the key.
    SseB2,
    /// SSE-C: the caller supplies the key.
    SseC(CustomerKey),
}

impl Encryption {
    /// True for SSE-B2 or SSE-C, which lower the file-info header limit to 2048 bytes.
    pub fn is_encrypted(&self) -> bool {
        !matches!(self, Self::BucketDefault)
    }

    /// Adds the upload headers: `X-Bz-Server-Side-Encryption` for SSE-B2, the three
    /// `X-Bz-Server-Side-Encryption-Customer-*` headers for SSE-C.
    pub fn write_upload_headers(&self, headers: &mut http::HeaderMap) {
        match self {
            Self::BucketDefault => {}
            Self::SseB2 => {
                headers.insert(
                    "x-bz-server-side-encryption",
                    http::HeaderValue::from_static("AES256"),
                );
            }
            Self::SseC(key) => key.write_headers(headers),
        }
    }

    /// The JSON form for request bodies (`serverSideEncryption`, `destinationServerSideEncryption`),
    /// or `None` for the bucket default.
    pub fn to_json(&self) -> Option<serde_json::Value> {
        match self {
            Self::BucketDefault => None,
            Self::SseB2 => Some(serde_json::json!({"mode": "SSE-B2", "algorithm": "AES256"})),
            Self::SseC(key) => Some(key.to_json()),
        }
    }
}

impl CustomerKey {
    /// Adds the three SSE-C headers needed to write or read a file encrypted with this key.
    pub fn write_headers(&self, headers: &mut http::HeaderMap) {
        let value = |s: String| {
            http::HeaderValue::from_str(&s).unwrap_or(http::HeaderValue::from_static(""))
        };
        headers.insert(
            "x-bz-server-side-encryption-customer-algorithm",
            http::HeaderValue::from_static("AES256"),
        );
        let mut key = value(self.to_base64());
        key.set_sensitive(true);
        headers.insert("x-bz-server-side-encryption-customer-key", key);
        headers.insert(
            "x-bz-server-side-encryption-customer-key-md5",
            value(self.md5_base64()),
        );
    }

    /// The JSON form used by copy calls (`sourceServerSideEncryption` and the like).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "mode": "SSE-C",
            "algorithm": "AES256",
            "customerKey": self.to_base64(),
            "customerKeyMd5": self.md5_base64(),
        })
    }
}

#[cfg(test)]
mod encryption_tests {
    use super::*;

    #[test]
    fn sse_c_headers_and_redaction() {
        let key = CustomerKey::new([7u8; 32]);
        assert_eq!(format!("{key:?}"), "CustomerKey(<redacted>)");
        assert!(!format!("{:?}", Encryption::SseC(key.clone())).contains(&key.to_base64()));
        let mut headers = http::HeaderMap::new();
        Encryption::SseC(key.clone()).write_upload_headers(&mut headers);
        assert_eq!(
            headers["x-bz-server-side-encryption-customer-algorithm"],
            "AES256"
        );
        assert_eq!(
            headers["x-bz-server-side-encryption-customer-key"],
            key.to_base64().as_str()
        );
        // MD5 of 32 bytes of 0x07, base64, computed independently with Python hashlib.
        assert_eq!(
            headers["x-bz-server-side-encryption-customer-key-md5"],
            "y4HAEFCYWuvAXWFTtA1Qpg=="
        );
        let mut headers = http::HeaderMap::new();
        Encryption::SseB2.write_upload_headers(&mut headers);
        assert_eq!(headers["x-bz-server-side-encryption"], "AES256");
        assert!(Encryption::BucketDefault.to_json().is_none());
    }
}
