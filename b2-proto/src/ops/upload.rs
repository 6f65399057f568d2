//! Simple uploads: `b2_get_upload_url`, `b2_get_upload_part_url` and `b2_upload_file`.
//!
//! An upload does not go to the API URL: it goes to an *upload URL* with its own token, an
//! [`UploadTarget`] obtained from [`GetUploadUrl`] (files) or [`GetUploadPartUrl`] (parts of a
//! large file). A target serves one upload at a time; Backblaze asks for a new one after the
//! failures listed in its integration checklist
//! (<https://www.backblaze.com/docs/cloud-storage-integration-checklist>), which
//! [`retry`](crate::retry) encodes as [`RetryClass::Upload`].
//!
//! [`UploadFile`] builds the request *head* ([`UploadFile::request_head`]), so that a driver can
//! stream the body from a file, and parses the reply.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, header};
use serde::{Deserialize, Serialize};

use crate::encoding::encode;
use crate::error::{Error, InvalidInput};
use crate::model::{Encryption, FileRetention, FileVersion, LegalHold};
use crate::ops::{Operation, RetryClass, json_request, parse_json, parse_secret_json};
use crate::secret::AuthToken;
use crate::session::Session;
use crate::types::{BucketId, ContentSha1, FileId, FileInfo, FileName, Sha1Digest};
use crate::user_agent::UserAgent;

/// Largest file `b2_upload_file` accepts: 5 GB (decimal).
///
/// <https://www.backblaze.com/docs/cloud-storage-large-files>: "the maximum size of a file
/// uploaded with b2_upload_file is 5 GB"; larger files are uploaded in parts.
pub const MAX_UPLOAD_FILE_SIZE: u64 = 5_000_000_000;

/// The `Content-Type` that asks B2 to pick the type from the file name's extension.
pub const AUTO_CONTENT_TYPE: &str = "b2/x-auto";

/// The file-info key for the source's last modification time, in milliseconds since the epoch.
pub const SRC_LAST_MODIFIED_MILLIS: &str = "src_last_modified_millis";

/// The file-info key for a large file's whole-file SHA1.
pub const LARGE_FILE_SHA1: &str = "large_file_sha1";

/// An upload URL and the token that goes with it.
///
/// Returned by [`GetUploadUrl`] (with `bucket_id`) and [`GetUploadPartUrl`] (with `file_id`).
/// Valid for 24 hours or until B2 refuses an upload to it; one upload at a time.
/// The token is redacted from `Debug`.
///
/// <https://www.backblaze.com/apidocs/b2-get-upload-url>
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct UploadTarget {
    /// Where to send the upload.
    #[serde(rename = "uploadUrl")]
    pub url: String,
    /// The upload authorization token for this URL.
    #[serde(rename = "authorizationToken")]
    pub token: AuthToken,
    /// The bucket, for a `b2_get_upload_url` target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket_id: Option<BucketId>,
    /// The large file, for a `b2_get_upload_part_url` target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_id: Option<FileId>,
}

impl UploadTarget {
    /// A target built by hand (tests, servers).
    pub fn new(url: impl Into<String>, token: AuthToken) -> Self {
        Self {
            url: url.into(),
            token,
            bucket_id: None,
            file_id: None,
        }
    }

    /// Sets the bucket the target uploads into.
    pub fn with_bucket_id(mut self, bucket_id: BucketId) -> Self {
        self.bucket_id = Some(bucket_id);
        self
    }

    /// Sets the large file the target uploads parts of.
    pub fn with_file_id(mut self, file_id: FileId) -> Self {
        self.file_id = Some(file_id);
        self
    }
}

/// `b2_get_upload_url`: an upload URL and token for a bucket.
///
/// <https://www.backblaze.com/apidocs/b2-get-upload-url>
///
/// # Errors
///
/// `400 bad_request` (no such bucket), `401 unauthorized` (no `writeFiles`),
/// `401 bad_auth_token`, `401 expired_auth_token`, `403 storage_cap_exceeded`,
/// `503 service_unavailable`; [`Error::InvalidResponse`] for a URL of another bucket.
///
/// ```
/// use b2_proto::{ops::{GetUploadUrl, Operation}, AccountId, AuthToken, BucketId, Session};
///
/// let session = Session::new(AccountId::new("a"), AuthToken::new("t"), "https://api001.backblazeb2.com", "https://f001.backblazeb2.com");
/// let req = GetUploadUrl::new(BucketId::new("b1")).request(&session).unwrap();
/// assert_eq!(req.uri(), "https://api001.backblazeb2.com/b2api/v4/b2_get_upload_url");
/// assert_eq!(req.body().as_ref(), br#"{"bucketId":"b1"}"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GetUploadUrl {
    /// The bucket to upload into.
    pub bucket_id: BucketId,
}

impl GetUploadUrl {
    /// Asks for an upload URL for `bucket_id`.
    pub fn new(bucket_id: BucketId) -> Self {
        Self { bucket_id }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BucketIdBody<'a> {
    bucket_id: &'a BucketId,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FileIdBody<'a> {
    file_id: &'a FileId,
}

impl Operation for GetUploadUrl {
    type Output = UploadTarget;
    const NAME: &'static str = "b2_get_upload_url";

    fn request(&self, session: &Session) -> Result<Request<Bytes>, Error> {
        json_request(
            session,
            Self::NAME,
            &BucketIdBody {
                bucket_id: &self.bucket_id,
            },
        )
    }

    fn parse(&self, response: Response<Bytes>) -> Result<UploadTarget, Error> {
        let mut target: UploadTarget = parse_secret_json(Self::NAME, response)?;
        let bucket_id = target
            .bucket_id
            .get_or_insert_with(|| self.bucket_id.clone());
        // A URL for another bucket would store the upload there. (What came back is not
        // quoted: this reply carries a token.)
        if *bucket_id != self.bucket_id {
            return Err(Error::InvalidResponse {
                op: Self::NAME,
                reason: format!(
                    "asked for an upload URL for bucket {}, got one for another bucket",
                    self.bucket_id
                ),
            });
        }
        Ok(target)
    }
}

/// `b2_get_upload_part_url`: an upload URL and token for the parts of a large file.
///
/// <https://www.backblaze.com/apidocs/b2-get-upload-part-url>
///
/// # Errors
///
/// `400 bad_request` (no such unfinished large file), `401 unauthorized`,
/// `401 bad_auth_token`, `401 expired_auth_token`, `403 storage_cap_exceeded`,
/// `503 service_unavailable`; [`Error::InvalidResponse`] for a URL of another large file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GetUploadPartUrl {
    /// The large file, from `b2_start_large_file`.
    pub file_id: FileId,
}

impl GetUploadPartUrl {
    /// Asks for an upload URL for the parts of `file_id`.
    pub fn new(file_id: FileId) -> Self {
        Self { file_id }
    }
}

impl Operation for GetUploadPartUrl {
    type Output = UploadTarget;
    const NAME: &'static str = "b2_get_upload_part_url";

    fn request(&self, session: &Session) -> Result<Request<Bytes>, Error> {
        json_request(
            session,
            Self::NAME,
            &FileIdBody {
                file_id: &self.file_id,
            },
        )
    }

    fn parse(&self, response: Response<Bytes>) -> Result<UploadTarget, Error> {
        let mut target: UploadTarget = parse_secret_json(Self::NAME, response)?;
        let file_id = target.file_id.get_or_insert_with(|| self.file_id.clone());
        // A URL for another large file would add the parts to it. (What came back is not
        // quoted: this reply carries a token.)
        if *file_id != self.file_id {
            return Err(Error::InvalidResponse {
                op: Self::NAME,
                reason: format!(
                    "asked for an upload URL for large file {}, got one for another file",
                    self.file_id
                ),
            });
        }
        Ok(target)
    }
}

/// What the `X-Bz-Content-Sha1` header of an upload says.
///
/// <https://www.backblaze.com/apidocs/b2-upload-file> ("X-Bz-Content-Sha1"). Backblaze strongly
/// recommends sending the SHA1 up front: B2 then refuses a body that does not match it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UploadSha1 {
    /// The content's SHA1, checked by B2 (recommended).
    Digest(Sha1Digest),
    /// `hex_digits_at_end`: the body is the content followed by its SHA1 as 40 hex digits,
    /// which B2 checks. `Content-Length` then counts the 40 extra bytes.
    HexDigitsAtEnd,
    /// `unverified:<hex>`: a SHA1 that B2 stores without checking it.
    Unverified(Sha1Digest),
    /// `do_not_verify`: no SHA1 at all. Not recommended.
    DoNotVerify,
}

impl UploadSha1 {
    /// The header value.
    pub fn header_value(&self) -> String {
        match self {
            Self::Digest(d) => d.to_hex(),
            Self::HexDigitsAtEnd => "hex_digits_at_end".to_owned(),
            Self::Unverified(d) => format!("unverified:{d}"),
            Self::DoNotVerify => "do_not_verify".to_owned(),
        }
    }

    /// Bytes the body carries beyond the content (40 for `hex_digits_at_end`).
    pub fn extra_body_bytes(&self) -> u64 {
        match self {
            Self::HexDigitsAtEnd => 40,
            _ => 0,
        }
    }
}

/// Settings shared by [`UploadFile`] and [`StartLargeFile`](crate::ops::StartLargeFile):
/// what B2 stores with a new file besides its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct NewFile {
    pub(crate) content_type: Option<String>,
    pub(crate) info: FileInfo,
    pub(crate) last_modified_millis: Option<u64>,
    pub(crate) legal_hold: Option<LegalHold>,
    pub(crate) retention: Option<FileRetention>,
    pub(crate) encryption: Encryption,
    pub(crate) lock_enabled_bucket: bool,
}

impl NewFile {
    pub(crate) fn content_type(&self) -> &str {
        self.content_type.as_deref().unwrap_or(AUTO_CONTENT_TYPE)
    }

    /// The file info to send: the caller's, plus `src_last_modified_millis` and `extra`.
    pub(crate) fn effective_info(
        &self,
        extra: &[(&str, String)],
    ) -> Result<FileInfo, InvalidInput> {
        let mut info = self.info.clone();
        if let Some(ms) = self.last_modified_millis {
            info.insert(SRC_LAST_MODIFIED_MILLIS, ms.to_string())?;
        }
        for (k, v) in extra {
            info.insert(k, v.clone())?;
        }
        Ok(info)
    }

    /// Checks everything B2 would refuse, returning the info to send.
    pub(crate) fn validate(
        &self,
        file_name: &FileName,
        extra: &[(&str, String)],
    ) -> Result<FileInfo, InvalidInput> {
        let info = self.effective_info(extra)?;
        // The 7000-byte limit drops to 2048 with server-side encryption or Object Lock.
        // https://www.backblaze.com/apidocs/b2-upload-file
        let strict = self.encryption.is_encrypted()
            || self.retention.is_some()
            || self.legal_hold.is_some()
            || self.lock_enabled_bucket;
        info.check_header_size(file_name, strict)?;
        let content_type = self.content_type();
        if content_type.is_empty() || HeaderValue::from_str(content_type).is_err() {
            return Err(InvalidInput::Argument {
                what: "content type",
                reason: format!("{content_type:?} is not a valid header value"),
            });
        }
        if let Some(retention) = &self.retention {
            retention_parts(retention)?;
        }
        Ok(info)
    }
}

/// The mode and timestamp of a retention setting, both required to set one.
pub(crate) fn retention_parts(
    retention: &FileRetention,
) -> Result<Option<(&str, u64)>, InvalidInput> {
    match (&retention.mode, retention.retain_until_timestamp) {
        (Some(mode), Some(until)) => Ok(Some((mode.as_str(), until))),
        (None, None) => Ok(None),
        _ => Err(InvalidInput::Argument {
            what: "file retention",
            reason: "mode and retain-until timestamp go together".into(),
        }),
    }
}

pub(crate) fn header_value(what: &'static str, value: &str) -> Result<HeaderValue, InvalidInput> {
    HeaderValue::from_str(value).map_err(|_| InvalidInput::Argument {
        what,
        reason: format!("{value:?} cannot be sent in a header"),
    })
}

fn request_error(e: http::Error) -> Error {
    InvalidInput::Argument {
        what: "upload URL",
        reason: e.to_string(),
    }
    .into()
}

/// `b2_upload_file`: uploads one file of up to 5 GB to an [`UploadTarget`].
///
/// <https://www.backblaze.com/apidocs/b2-upload-file>
///
/// The value holds what B2 stores with the file (name, content type, file info, Object Lock
/// and encryption settings); the body, its length and its SHA1 are given to
/// [`UploadFile::request_head`] (streamed bodies) or [`UploadFile::request`] (bytes in memory).
/// Everything is validated before a request is built: the 10 file-info entries, the
/// 7000-byte (2048 with SSE or Object Lock) limit on name and info headers, and the 5 GB size.
///
/// Retries follow [`RetryClass::Upload`]: a new upload URL after a broken connection,
/// 408, 5xx or a refused token. [`SimpleUpload`](crate::upload::SimpleUpload) does all that.
///
/// # Errors
///
/// `400 bad_request` (bad name or info; a body that does not match its SHA1, with the message
/// "Sha1 did not match data received"), `400 auth_token_limit` (the upload token is in use),
/// `401 unauthorized`, `401 bad_auth_token`, `401 expired_auth_token` (get a new upload URL),
/// `403 cap_exceeded`, `403 storage_cap_exceeded`, `405 method_not_allowed`,
/// `408 request_timeout`, `503 service_unavailable`.
///
/// ```
/// use b2_proto::ops::{UploadFile, UploadSha1, UploadTarget};
/// use b2_proto::{AuthToken, FileName, Sha1Digest};
///
/// let target = UploadTarget::new("https://pod-000-1007-13.backblaze.com/b2api/v4/b2_upload_file/b1/c001", AuthToken::new("upload-token"));
/// let op = UploadFile::new(FileName::new("photos/a cat.jpg").unwrap())
///     .with_content_type("image/jpeg")
///     .with_last_modified_millis(1_700_000_000_000);
/// let head = op.request_head(&target, 3, &UploadSha1::Digest(Sha1Digest::of(b"abc"))).unwrap();
/// assert_eq!(head.headers()["x-bz-file-name"], "photos/a%20cat.jpg");
/// assert_eq!(head.headers()["content-length"], "3");
/// assert_eq!(head.headers()["x-bz-info-src_last_modified_millis"], "1700000000000");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadFile {
    file_name: FileName,
    settings: NewFile,
    custom_upload_timestamp: Option<u64>,
    test_mode: Option<String>,
    user_agent: UserAgent,
}

impl UploadFile {
    /// B2's name for the call.
    pub const NAME: &'static str = "b2_upload_file";

    /// An upload of a file named `file_name`, with B2 picking the content type.
    pub fn new(file_name: FileName) -> Self {
        Self {
            file_name,
            settings: NewFile::default(),
            custom_upload_timestamp: None,
            test_mode: None,
            user_agent: UserAgent::default(),
        }
    }

    /// Sets the MIME type (default `b2/x-auto`: B2 picks one from the name's extension).
    pub fn with_content_type(mut self, content_type: impl Into<String>) -> Self {
        self.settings.content_type = Some(content_type.into());
        self
    }

    /// Sets the custom file information, `b2-*` response-header infos included.
    pub fn with_file_info(mut self, info: FileInfo) -> Self {
        self.settings.info = info;
        self
    }

    /// Records the source's last modification time (`src_last_modified_millis`), as Backblaze
    /// recommends for sync tools.
    pub fn with_last_modified_millis(mut self, millis: u64) -> Self {
        self.settings.last_modified_millis = Some(millis);
        self
    }

    /// Sets the upload timestamp (`X-Bz-Custom-Upload-Timestamp`, milliseconds since the epoch);
    /// B2 accepts it only on accounts where Backblaze enabled it.
    pub fn with_custom_upload_timestamp(mut self, millis: u64) -> Self {
        self.custom_upload_timestamp = Some(millis);
        self
    }

    /// Sets a legal hold (Object Lock).
    pub fn with_legal_hold(mut self, legal_hold: LegalHold) -> Self {
        self.settings.legal_hold = Some(legal_hold);
        self
    }

    /// Sets a retention (Object Lock).
    pub fn with_retention(mut self, retention: FileRetention) -> Self {
        self.settings.retention = Some(retention);
        self
    }

    /// Sets server-side encryption (default: the bucket's default).
    pub fn with_encryption(mut self, encryption: Encryption) -> Self {
        self.settings.encryption = encryption;
        self
    }

    /// Declares that the bucket has Object Lock enabled, which lowers the header limit to 2048
    /// bytes even without a retention or legal hold on this file.
    pub fn with_lock_enabled_bucket(mut self, enabled: bool) -> Self {
        self.settings.lock_enabled_bucket = enabled;
        self
    }

    /// Sends `X-Bz-Test-Mode` (e.g. `fail_some_uploads`), which makes B2 fail some uploads on
    /// purpose so retry code can be exercised.
    pub fn with_test_mode(mut self, mode: impl Into<String>) -> Self {
        self.test_mode = Some(mode.into());
        self
    }

    /// Sets the User-Agent (machines copy the session's).
    pub fn with_user_agent(mut self, user_agent: UserAgent) -> Self {
        self.user_agent = user_agent;
        self
    }

    /// The file name.
    pub fn file_name(&self) -> &FileName {
        &self.file_name
    }

    /// The encryption asked for.
    pub fn encryption(&self) -> &Encryption {
        &self.settings.encryption
    }

    /// How the call may be retried: [`RetryClass::Upload`].
    pub fn retry_class(&self) -> RetryClass {
        RetryClass::Upload
    }

    /// Checks the upload against B2's rules without building a request.
    ///
    /// # Errors
    ///
    /// [`InvalidInput`] for an eleventh file-info entry, headers over the size limit, an
    /// invalid content type or retention, or content over 5 GB.
    pub fn validate(&self, content_length: u64) -> Result<(), InvalidInput> {
        check_upload_size(content_length)?;
        self.settings.validate(&self.file_name, &[]).map(drop)
    }

    /// Builds the request head: `POST {target.url}` with every header; the driver sends the
    /// body (`content_length` bytes of content, then the 40 hex digits of the SHA1 with
    /// [`UploadSha1::HexDigitsAtEnd`]).
    ///
    /// # Errors
    ///
    /// As [`UploadFile::validate`], and [`InvalidInput::Argument`] for a target URL or token
    /// that cannot form a request.
    pub fn request_head(
        &self,
        target: &UploadTarget,
        content_length: u64,
        sha1: &UploadSha1,
    ) -> Result<Request<()>, Error> {
        check_upload_size(content_length)?;
        let info = self.settings.validate(&self.file_name, &[])?;
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            crate::secret::sensitive_header(target.token.expose_secret()).map_err(|_| {
                InvalidInput::Argument {
                    what: "upload token",
                    reason: "cannot be sent in a header".into(),
                }
            })?,
        );
        headers.insert(
            "x-bz-file-name",
            header_value("file name", &encode(self.file_name.as_str()))?,
        );
        headers.insert(
            header::CONTENT_TYPE,
            header_value("content type", self.settings.content_type())?,
        );
        headers.insert(
            header::CONTENT_LENGTH,
            HeaderValue::from(content_length + sha1.extra_body_bytes()),
        );
        headers.insert(
            "x-bz-content-sha1",
            header_value("sha1", &sha1.header_value())?,
        );
        write_info_headers(&mut headers, &info)?;
        if let Some(ms) = self.custom_upload_timestamp {
            headers.insert("x-bz-custom-upload-timestamp", HeaderValue::from(ms));
        }
        write_lock_headers(
            &mut headers,
            self.settings.legal_hold.as_ref(),
            self.settings.retention.as_ref(),
        )?;
        self.settings.encryption.write_upload_headers(&mut headers);
        if let Some(mode) = &self.test_mode {
            headers.insert("x-bz-test-mode", header_value("test mode", mode)?);
        }
        headers.insert(
            header::USER_AGENT,
            header_value("user agent", self.user_agent.as_str())?,
        );
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(&target.url)
            .body(())
            .map_err(request_error)?;
        *request.headers_mut() = headers;
        Ok(request)
    }

    /// Builds the whole request for content held in memory, with its SHA1 in the header.
    ///
    /// # Errors
    ///
    /// As [`UploadFile::request_head`].
    pub fn request(&self, target: &UploadTarget, content: Bytes) -> Result<Request<Bytes>, Error> {
        let sha1 = UploadSha1::Digest(Sha1Digest::of(&content));
        let head = self.request_head(target, content.len() as u64, &sha1)?;
        Ok(head.map(|()| content))
    }

    /// Parses the reply: the new file's version.
    ///
    /// # Errors
    ///
    /// [`Error::Api`] for an error reply, [`Error::Decode`] for a malformed one.
    pub fn parse(&self, response: Response<Bytes>) -> Result<FileVersion, Error> {
        parse_json(Self::NAME, response)
    }

    /// Parses the reply and checks that B2 stored what was sent: the same name, length and,
    /// when one was sent, the same SHA1.
    ///
    /// # Errors
    ///
    /// As [`UploadFile::parse`], and [`Error::InvalidResponse`] when the reply contradicts the
    /// upload.
    pub fn parse_checked(
        &self,
        response: Response<Bytes>,
        content_length: u64,
        sha1: &UploadSha1,
    ) -> Result<FileVersion, Error> {
        let version = self.parse(response)?;
        let invalid = |reason: String| Error::InvalidResponse {
            op: Self::NAME,
            reason,
        };
        if version.content_length != content_length {
            return Err(invalid(format!(
                "B2 stored {} bytes, {content_length} were sent",
                version.content_length
            )));
        }
        if version.file_name != self.file_name {
            return Err(invalid(format!(
                "B2 stored the name {:?}, {:?} was sent",
                version.file_name.as_str(),
                self.file_name.as_str()
            )));
        }
        let sent = match sha1 {
            UploadSha1::Digest(d) | UploadSha1::Unverified(d) => Some(*d),
            UploadSha1::HexDigitsAtEnd | UploadSha1::DoNotVerify => None,
        };
        if let (Some(sent), Some(stored)) = (sent, version.content_sha1.digest()) {
            if sent != stored {
                return Err(invalid(format!("B2 stored SHA1 {stored}, {sent} was sent")));
            }
        } else if sent.is_some() && matches!(version.content_sha1, ContentSha1::Other(_)) {
            return Err(invalid(format!(
                "unrecognised contentSha1 {}",
                version.content_sha1
            )));
        }
        Ok(version)
    }
}

fn check_upload_size(content_length: u64) -> Result<(), InvalidInput> {
    if content_length > MAX_UPLOAD_FILE_SIZE {
        Err(InvalidInput::Size {
            reason: format!(
                "{content_length} bytes is over the {MAX_UPLOAD_FILE_SIZE}-byte limit of \
                 b2_upload_file; upload it as a large file"
            ),
        })
    } else {
        Ok(())
    }
}

/// Writes one `X-Bz-Info-<key>` header per entry, values percent-encoded.
pub(crate) fn write_info_headers(headers: &mut HeaderMap, info: &FileInfo) -> Result<(), Error> {
    for (key, value) in info.iter() {
        let name = HeaderName::from_bytes(format!("x-bz-info-{key}").as_bytes()).map_err(|_| {
            InvalidInput::FileInfo {
                key: key.to_owned(),
                reason: "cannot be sent as a header name".into(),
            }
        })?;
        headers.insert(name, header_value("file info value", &encode(value))?);
    }
    Ok(())
}

/// Writes the Object Lock headers of an upload.
pub(crate) fn write_lock_headers(
    headers: &mut HeaderMap,
    legal_hold: Option<&LegalHold>,
    retention: Option<&FileRetention>,
) -> Result<(), Error> {
    if let Some(hold) = legal_hold {
        headers.insert(
            "x-bz-file-legal-hold",
            header_value("legal hold", hold.as_str())?,
        );
    }
    if let Some((mode, until)) = retention.map(retention_parts).transpose()?.flatten() {
        headers.insert(
            "x-bz-file-retention-mode",
            header_value("retention mode", mode)?,
        );
        headers.insert(
            "x-bz-file-retention-retain-until-timestamp",
            HeaderValue::from(until),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> UploadTarget {
        UploadTarget::new("https://pod/upload", AuthToken::new("tok"))
    }

    #[test]
    fn hex_digits_at_end_adds_forty_bytes() {
        let op = UploadFile::new(FileName::new("a").unwrap());
        let head = op
            .request_head(&target(), 10, &UploadSha1::HexDigitsAtEnd)
            .unwrap();
        assert_eq!(head.headers()["content-length"], "50");
        assert_eq!(head.headers()["x-bz-content-sha1"], "hex_digits_at_end");
        assert_eq!(head.headers()["content-type"], "b2/x-auto");
    }

    #[test]
    fn rejects_oversize_and_bad_retention() {
        let op = UploadFile::new(FileName::new("a").unwrap());
        assert!(matches!(
            op.request_head(
                &target(),
                MAX_UPLOAD_FILE_SIZE + 1,
                &UploadSha1::DoNotVerify
            ),
            Err(Error::InvalidInput(InvalidInput::Size { .. }))
        ));
        assert!(op.validate(MAX_UPLOAD_FILE_SIZE).is_ok());
        let bad = op.with_retention(FileRetention {
            mode: Some(crate::model::RetentionMode::Governance),
            retain_until_timestamp: None,
        });
        assert!(bad.validate(1).is_err());
    }

    #[test]
    fn eleventh_info_entry_from_last_modified_is_refused() {
        let mut info = FileInfo::new();
        for i in 0..10 {
            info.insert(format!("k{i}"), "v").unwrap();
        }
        let op = UploadFile::new(FileName::new("a").unwrap())
            .with_file_info(info)
            .with_last_modified_millis(1);
        assert!(matches!(op.validate(1), Err(InvalidInput::FileInfo { .. })));
    }
}
