//! Large files: `b2_start_large_file`, `b2_upload_part`, `b2_copy_part`, `b2_list_parts`,
//! `b2_finish_large_file`, `b2_cancel_large_file` and `b2_list_unfinished_large_files`.
//!
//! A large file is started, filled with 1 to 10,000 parts (uploaded or copied from other files,
//! in any mix), then finished with the SHA1 of every part in order, or cancelled.
//! Parts are 5 MB to 5 GB, the last one at least 1 byte
//! (<https://www.backblaze.com/docs/cloud-storage-create-large-files-with-the-native-api>).
//! [`LargeUpload`](crate::large_upload::LargeUpload) runs the whole flow.

use std::ops::Range;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, header};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::error::{Error, InvalidInput};
use crate::model::{CustomerKey, Encryption, FileRetention, FileVersion, LegalHold, Part};
use crate::ops::upload::{LARGE_FILE_SHA1, NewFile, UploadTarget, header_value, retention_parts};
use crate::ops::{Operation, Paginated, RetryClass, json_request, parse_json};
use crate::session::Session;
use crate::types::{AccountId, BucketId, FileId, FileInfo, FileName, PartNumber, Sha1Digest};
use crate::user_agent::UserAgent;

/// Largest part: 5 GB (decimal).
pub const MAX_PART_SIZE: u64 = 5_000_000_000;

/// Largest large file: 10 TB (decimal).
pub const MAX_LARGE_FILE_SIZE: u64 = 10_000_000_000_000;

/// Most parts `b2_list_parts` returns per page.
pub const MAX_LIST_PARTS: u32 = 1000;

/// Most files `b2_list_unfinished_large_files` returns per page.
pub const MAX_LIST_UNFINISHED: u32 = 100;

/// `b2_start_large_file`: starts a large file, whose parts are then uploaded or copied.
///
/// <https://www.backblaze.com/apidocs/b2-start-large-file>
///
/// File info goes in the JSON body as plain UTF-8 (never percent-encoded), and counts toward
/// the same limits as an upload's headers: 10 entries, and 7000 bytes (2048 with SSE or Object
/// Lock) for name and info. Backblaze recommends recording the whole file's SHA1 as
/// `large_file_sha1` ([`StartLargeFile::with_large_file_sha1`]), since B2 keeps none for large
/// files. Not repeated after an uncertain failure ([`RetryClass::NonIdempotent`]): a second
/// start would leave a second unfinished file.
///
/// # Errors
///
/// `400 bad_request`, `400 file_lock_conflict`, `401 unauthorized`, `401 bad_auth_token`,
/// `401 expired_auth_token`, `403 cap_exceeded`, `403 storage_cap_exceeded`,
/// `429 too_many_requests`, `503 service_unavailable`.
///
/// ```
/// use b2_proto::ops::{Operation, StartLargeFile};
/// use b2_proto::{AccountId, AuthToken, BucketId, FileName, Session, Sha1Digest};
///
/// let session = Session::new(AccountId::new("a"), AuthToken::new("t"), "https://api", "https://f");
/// let op = StartLargeFile::new(BucketId::new("b1"), FileName::new("big file.iso").unwrap())
///     .with_large_file_sha1(Sha1Digest::of(b"whole file"));
/// let body: serde_json::Value = serde_json::from_slice(op.request(&session).unwrap().body()).unwrap();
/// assert_eq!(body["fileName"], "big file.iso");
/// assert_eq!(body["contentType"], "b2/x-auto");
/// assert_eq!(body["fileInfo"]["large_file_sha1"], Sha1Digest::of(b"whole file").to_hex());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartLargeFile {
    bucket_id: BucketId,
    file_name: FileName,
    settings: NewFile,
    large_file_sha1: Option<Sha1Digest>,
}

impl StartLargeFile {
    /// Starts a large file named `file_name` in `bucket_id`.
    pub fn new(bucket_id: BucketId, file_name: FileName) -> Self {
        Self {
            bucket_id,
            file_name,
            settings: NewFile::default(),
            large_file_sha1: None,
        }
    }

    /// Sets the MIME type (default `b2/x-auto`).
    pub fn with_content_type(mut self, content_type: impl Into<String>) -> Self {
        self.settings.content_type = Some(content_type.into());
        self
    }

    /// Sets the custom file information.
    pub fn with_file_info(mut self, info: FileInfo) -> Self {
        self.settings.info = info;
        self
    }

    /// Records the source's last modification time (`src_last_modified_millis`).
    pub fn with_last_modified_millis(mut self, millis: u64) -> Self {
        self.settings.last_modified_millis = Some(millis);
        self
    }

    /// Records the whole file's SHA1 as `large_file_sha1`, as Backblaze recommends.
    pub fn with_large_file_sha1(mut self, sha1: Sha1Digest) -> Self {
        self.large_file_sha1 = Some(sha1);
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

    /// Sets server-side encryption. With SSE-C, every part must be uploaded with the same key.
    pub fn with_encryption(mut self, encryption: Encryption) -> Self {
        self.settings.encryption = encryption;
        self
    }

    /// Declares that the bucket has Object Lock enabled (2048-byte header limit).
    pub fn with_lock_enabled_bucket(mut self, enabled: bool) -> Self {
        self.settings.lock_enabled_bucket = enabled;
        self
    }

    /// The bucket.
    pub fn bucket_id(&self) -> &BucketId {
        &self.bucket_id
    }

    /// The file name.
    pub fn file_name(&self) -> &FileName {
        &self.file_name
    }

    /// The encryption asked for.
    pub fn encryption(&self) -> &Encryption {
        &self.settings.encryption
    }

    /// The whole-file SHA1 to record, if set.
    pub fn large_file_sha1(&self) -> Option<Sha1Digest> {
        self.large_file_sha1
    }

    /// Checks the file against B2's rules without building a request.
    ///
    /// # Errors
    ///
    /// [`InvalidInput`] for an eleventh file-info entry, name and info over the size limit,
    /// or an invalid content type or retention.
    pub fn validate(&self) -> Result<FileInfo, InvalidInput> {
        let extra: Vec<(&str, String)> = self
            .large_file_sha1
            .map(|d| (LARGE_FILE_SHA1, d.to_hex()))
            .into_iter()
            .collect();
        self.settings.validate(&self.file_name, &extra)
    }
}

impl Operation for StartLargeFile {
    type Output = FileVersion;
    const NAME: &'static str = "b2_start_large_file";

    fn request(&self, session: &Session) -> Result<Request<Bytes>, Error> {
        let info = self.validate()?;
        let mut body = Map::new();
        body.insert("bucketId".into(), json!(self.bucket_id));
        body.insert("fileName".into(), json!(self.file_name));
        body.insert("contentType".into(), json!(self.settings.content_type()));
        if !info.is_empty() {
            body.insert("fileInfo".into(), json!(info));
        }
        if let Some(hold) = &self.settings.legal_hold {
            body.insert("legalHold".into(), json!(hold));
        }
        if let Some(retention) = &self.settings.retention {
            if let Some((mode, until)) = retention_parts(retention)? {
                body.insert(
                    "fileRetention".into(),
                    json!({"mode": mode, "retainUntilTimestamp": until}),
                );
            }
        }
        if let Some(sse) = self.settings.encryption.to_json() {
            body.insert("serverSideEncryption".into(), sse);
        }
        json_request(session, Self::NAME, &Value::Object(body))
    }

    fn parse(&self, response: Response<Bytes>) -> Result<FileVersion, Error> {
        parse_json(Self::NAME, response)
    }

    fn retry_class(&self) -> RetryClass {
        RetryClass::NonIdempotent
    }
}

/// `b2_upload_part`: uploads one part of a large file to an upload-part [`UploadTarget`].
///
/// <https://www.backblaze.com/apidocs/b2-upload-part>
///
/// Holds the part's number, length and SHA1 (needed again for `b2_finish_large_file`);
/// [`UploadPart::request_head`] builds the head so the driver can stream the body, and
/// [`UploadPart::parse`] checks that B2's reply names the same part, length and SHA1.
/// Uploading a part number again replaces the earlier part.
///
/// # Errors
///
/// `400 bad_request` (including "Sha1 did not match data received"), `400 auth_token_limit`,
/// `401 unauthorized`, `401 bad_auth_token`, `401 expired_auth_token` (get a new part URL),
/// `403 cap_exceeded`, `403 storage_cap_exceeded`, `405 method_not_allowed`,
/// `408 request_timeout`, `503 service_unavailable`.
///
/// ```
/// use b2_proto::ops::{UploadPart, UploadTarget};
/// use b2_proto::{AuthToken, PartNumber, Sha1Digest};
///
/// let target = UploadTarget::new("https://pod/b2api/v4/b2_upload_part/f1/c1", AuthToken::new("part-token"));
/// let op = UploadPart::new(PartNumber::new(2).unwrap(), 5_000_000, Sha1Digest::of(b"part"));
/// let head = op.request_head(&target).unwrap();
/// assert_eq!(head.headers()["x-bz-part-number"], "2");
/// assert_eq!(head.headers()["content-length"], "5000000");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadPart {
    part_number: PartNumber,
    content_length: u64,
    sha1: Sha1Digest,
    customer_key: Option<CustomerKey>,
    test_mode: Option<String>,
    user_agent: UserAgent,
}

impl UploadPart {
    /// B2's name for the call.
    pub const NAME: &'static str = "b2_upload_part";

    /// Part `part_number`: `content_length` bytes whose SHA1 is `sha1`.
    pub fn new(part_number: PartNumber, content_length: u64, sha1: Sha1Digest) -> Self {
        Self {
            part_number,
            content_length,
            sha1,
            customer_key: None,
            test_mode: None,
            user_agent: UserAgent::default(),
        }
    }

    /// The SSE-C key the large file was started with (required for SSE-C large files).
    pub fn with_customer_key(mut self, key: CustomerKey) -> Self {
        self.customer_key = Some(key);
        self
    }

    /// Sends `X-Bz-Test-Mode` (e.g. `fail_some_uploads`).
    pub fn with_test_mode(mut self, mode: impl Into<String>) -> Self {
        self.test_mode = Some(mode.into());
        self
    }

    /// Sets the User-Agent (machines copy the session's).
    pub fn with_user_agent(mut self, user_agent: UserAgent) -> Self {
        self.user_agent = user_agent;
        self
    }

    /// The part number.
    pub fn part_number(&self) -> PartNumber {
        self.part_number
    }

    /// The body's length.
    pub fn content_length(&self) -> u64 {
        self.content_length
    }

    /// The body's SHA1.
    pub fn sha1(&self) -> Sha1Digest {
        self.sha1
    }

    /// How the call may be retried: [`RetryClass::Upload`].
    pub fn retry_class(&self) -> RetryClass {
        RetryClass::Upload
    }

    /// Builds the request head: `POST {target.url}`; the driver sends the `content_length`
    /// bytes of the part as the body.
    ///
    /// # Errors
    ///
    /// [`InvalidInput::Size`] for a part over 5 GB; [`InvalidInput::Argument`] for a target
    /// that cannot form a request.
    pub fn request_head(&self, target: &UploadTarget) -> Result<Request<()>, Error> {
        if self.content_length > MAX_PART_SIZE {
            return Err(InvalidInput::Size {
                reason: format!(
                    "part {} is {} bytes, over the {MAX_PART_SIZE}-byte limit",
                    self.part_number, self.content_length
                ),
            }
            .into());
        }
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
            "x-bz-part-number",
            HeaderValue::from(self.part_number.get()),
        );
        headers.insert(
            header::CONTENT_LENGTH,
            HeaderValue::from(self.content_length),
        );
        headers.insert(
            "x-bz-content-sha1",
            header_value("sha1", &self.sha1.to_hex())?,
        );
        if let Some(key) = &self.customer_key {
            key.write_headers(&mut headers);
        }
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
            .map_err(|e| InvalidInput::Argument {
                what: "upload URL",
                reason: e.to_string(),
            })?;
        *request.headers_mut() = headers;
        Ok(request)
    }

    /// Builds the whole request for a part held in memory.
    ///
    /// # Errors
    ///
    /// As [`UploadPart::request_head`], and [`InvalidInput::Argument`] when `data` does not
    /// have the length given to [`UploadPart::new`].
    pub fn request(&self, target: &UploadTarget, data: Bytes) -> Result<Request<Bytes>, Error> {
        if data.len() as u64 != self.content_length {
            return Err(InvalidInput::Argument {
                what: "part body",
                reason: format!(
                    "{} bytes given, {} declared",
                    data.len(),
                    self.content_length
                ),
            }
            .into());
        }
        Ok(self.request_head(target)?.map(|()| data))
    }

    /// Parses the reply and checks it describes the part that was sent.
    ///
    /// # Errors
    ///
    /// [`Error::Api`] for an error reply, [`Error::Decode`] for a malformed one,
    /// [`Error::InvalidResponse`] when the part number, length or SHA1 differ from what was sent.
    pub fn parse(&self, response: Response<Bytes>) -> Result<Part, Error> {
        let part: Part = parse_json(Self::NAME, response)?;
        check_part(
            Self::NAME,
            &part,
            self.part_number,
            Some(self.content_length),
        )?;
        if part.content_sha1.digest() != Some(self.sha1) {
            return Err(Error::InvalidResponse {
                op: Self::NAME,
                reason: format!(
                    "part {} stored with SHA1 {}, {} was sent",
                    self.part_number, part.content_sha1, self.sha1
                ),
            });
        }
        Ok(part)
    }
}

fn check_part(
    op: &'static str,
    part: &Part,
    number: PartNumber,
    length: Option<u64>,
) -> Result<(), Error> {
    if part.part_number != number {
        return Err(Error::InvalidResponse {
            op,
            reason: format!(
                "reply is for part {}, part {number} was sent",
                part.part_number
            ),
        });
    }
    if let Some(length) = length {
        if part.content_length != length {
            return Err(Error::InvalidResponse {
                op,
                reason: format!(
                    "part {number} stored with {} bytes, {length} were sent",
                    part.content_length
                ),
            });
        }
    }
    Ok(())
}

/// `b2_copy_part`: makes a part of a large file from a byte range of an existing file.
///
/// <https://www.backblaze.com/apidocs/b2-copy-part>
///
/// The server-side way to assemble large files (and to copy files over 5 GB): no bytes pass
/// through the client. Parts copied and uploaded may be mixed in one large file.
///
/// # Errors
///
/// `400 bad_request` (bad range, source not found), `400 range_not_satisfiable`,
/// `401 unauthorized` (needs `writeFiles`, and `readFiles` for a private source),
/// `401 bad_auth_token`, `401 expired_auth_token`, `403 cap_exceeded`,
/// `403 access_denied` (wrong SSE-C key), `429 too_many_requests`,
/// `503 service_unavailable`.
///
/// ```
/// use b2_proto::ops::{CopyPart, Operation};
/// use b2_proto::{AccountId, AuthToken, FileId, PartNumber, Session};
///
/// let session = Session::new(AccountId::new("a"), AuthToken::new("t"), "https://api", "https://f");
/// let op = CopyPart::new(FileId::new("src"), FileId::new("large"), PartNumber::FIRST)
///     .with_range(0..5_000_000);
/// let body: serde_json::Value = serde_json::from_slice(op.request(&session).unwrap().body()).unwrap();
/// assert_eq!(body["range"], "bytes=0-4999999");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyPart {
    source_file_id: FileId,
    large_file_id: FileId,
    part_number: PartNumber,
    range: Option<Range<u64>>,
    source_key: Option<CustomerKey>,
    destination_key: Option<CustomerKey>,
}

impl CopyPart {
    /// Copies the whole of `source_file_id` as part `part_number` of `large_file_id`.
    pub fn new(source_file_id: FileId, large_file_id: FileId, part_number: PartNumber) -> Self {
        Self {
            source_file_id,
            large_file_id,
            part_number,
            range: None,
            source_key: None,
            destination_key: None,
        }
    }

    /// Copies only `range` (end exclusive) of the source.
    pub fn with_range(mut self, range: Range<u64>) -> Self {
        self.range = Some(range);
        self
    }

    /// The SSE-C key the source is encrypted with.
    pub fn with_source_key(mut self, key: CustomerKey) -> Self {
        self.source_key = Some(key);
        self
    }

    /// The SSE-C key the large file was started with.
    pub fn with_destination_key(mut self, key: CustomerKey) -> Self {
        self.destination_key = Some(key);
        self
    }

    /// The part number.
    pub fn part_number(&self) -> PartNumber {
        self.part_number
    }

    /// The range copied, if not the whole source.
    pub fn range(&self) -> Option<&Range<u64>> {
        self.range.as_ref()
    }
}

impl Operation for CopyPart {
    type Output = Part;
    const NAME: &'static str = "b2_copy_part";

    fn request(&self, session: &Session) -> Result<Request<Bytes>, Error> {
        let mut body = Map::new();
        body.insert("sourceFileId".into(), json!(self.source_file_id));
        body.insert("largeFileId".into(), json!(self.large_file_id));
        body.insert("partNumber".into(), json!(self.part_number));
        if let Some(range) = &self.range {
            let len = range.end.saturating_sub(range.start);
            if len == 0 || len > MAX_PART_SIZE {
                return Err(InvalidInput::Size {
                    reason: format!(
                        "copied range {}..{} must hold 1 to {MAX_PART_SIZE} bytes",
                        range.start, range.end
                    ),
                }
                .into());
            }
            body.insert(
                "range".into(),
                json!(format!("bytes={}-{}", range.start, range.end - 1)),
            );
        }
        if let Some(key) = &self.source_key {
            body.insert("sourceServerSideEncryption".into(), key.to_json());
        }
        if let Some(key) = &self.destination_key {
            body.insert("destinationServerSideEncryption".into(), key.to_json());
        }
        json_request(session, Self::NAME, &Value::Object(body))
    }

    fn parse(&self, response: Response<Bytes>) -> Result<Part, Error> {
        let part: Part = parse_json(Self::NAME, response)?;
        let length = self.range.as_ref().map(|r| r.end.saturating_sub(r.start));
        check_part(Self::NAME, &part, self.part_number, length)?;
        if part.file_id != self.large_file_id {
            return Err(Error::InvalidResponse {
                op: Self::NAME,
                reason: format!(
                    "part belongs to {}, not {}",
                    part.file_id, self.large_file_id
                ),
            });
        }
        Ok(part)
    }
}

/// `b2_list_parts`: one page of the parts uploaded so far for an unfinished large file.
///
/// <https://www.backblaze.com/apidocs/b2-list-parts>
///
/// # Errors
///
/// `400 bad_request` (not an unfinished large file), `400 out_of_range` (`maxPartCount`),
/// `401 unauthorized`, `401 bad_auth_token`, `401 expired_auth_token`,
/// `503 service_unavailable`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListParts {
    file_id: FileId,
    start_part_number: Option<PartNumber>,
    max_part_count: Option<u32>,
}

impl ListParts {
    /// Lists the parts of `file_id` from the first.
    pub fn new(file_id: FileId) -> Self {
        Self {
            file_id,
            start_part_number: None,
            max_part_count: None,
        }
    }

    /// Starts the page at `part` (or the first part after it).
    pub fn with_start_part_number(mut self, part: PartNumber) -> Self {
        self.start_part_number = Some(part);
        self
    }

    /// Sets the page size, 1 to 1000 (B2's default: 100).
    pub fn with_max_part_count(mut self, count: u32) -> Self {
        self.max_part_count = Some(count);
        self
    }
}

/// One page of [`ListParts`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct PartsPage {
    /// The parts, in part-number order.
    pub parts: Vec<Part>,
    /// Where the next page starts; `None` on the last page.
    #[serde(default)]
    pub next_part_number: Option<PartNumber>,
}

impl Operation for ListParts {
    type Output = PartsPage;
    const NAME: &'static str = "b2_list_parts";

    fn request(&self, session: &Session) -> Result<Request<Bytes>, Error> {
        let mut body = Map::new();
        body.insert("fileId".into(), json!(self.file_id));
        if let Some(start) = self.start_part_number {
            body.insert("startPartNumber".into(), json!(start));
        }
        if let Some(count) = self.max_part_count {
            if !(1..=MAX_LIST_PARTS).contains(&count) {
                return Err(InvalidInput::Argument {
                    what: "maxPartCount",
                    reason: format!("{count} is outside 1..={MAX_LIST_PARTS}"),
                }
                .into());
            }
            body.insert("maxPartCount".into(), json!(count));
        }
        json_request(session, Self::NAME, &Value::Object(body))
    }

    fn parse(&self, response: Response<Bytes>) -> Result<PartsPage, Error> {
        parse_json(Self::NAME, response)
    }
}

impl Paginated for ListParts {
    type Item = Part;
    type Cursor = PartNumber;

    fn set_cursor(&mut self, cursor: Option<PartNumber>) {
        self.start_part_number = cursor;
    }

    fn next_cursor(output: &PartsPage) -> Option<PartNumber> {
        output.next_part_number
    }

    fn into_items(output: PartsPage) -> Vec<Part> {
        output.parts
    }
}

/// `b2_finish_large_file`: assembles the uploaded parts into the finished file.
///
/// <https://www.backblaze.com/apidocs/b2-finish-large-file>
///
/// `partSha1Array` lists every part's SHA1 in part order. If a finish succeeded but its reply
/// was lost, repeating it is answered `400`: Backblaze recommends checking with
/// `b2_get_file_info` whether the file exists before reporting a failure;
/// [`LargeUpload`](crate::large_upload::LargeUpload) does.
///
/// # Errors
///
/// `400 bad_request` (including a file already finished), `400 missing_part`,
/// `400 part_sha1_mismatch`, `401 unauthorized`, `401 bad_auth_token`,
/// `401 expired_auth_token`, `503 service_unavailable`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishLargeFile {
    file_id: FileId,
    part_sha1s: Vec<Sha1Digest>,
}

impl FinishLargeFile {
    /// Finishes `file_id`, whose parts 1, 2, … have the SHA1s `part_sha1s`.
    pub fn new(file_id: FileId, part_sha1s: Vec<Sha1Digest>) -> Self {
        Self {
            file_id,
            part_sha1s,
        }
    }

    /// The large file.
    pub fn file_id(&self) -> &FileId {
        &self.file_id
    }
}

impl Operation for FinishLargeFile {
    type Output = FileVersion;
    const NAME: &'static str = "b2_finish_large_file";

    fn request(&self, session: &Session) -> Result<Request<Bytes>, Error> {
        if self.part_sha1s.is_empty()
            || self.part_sha1s.len() > usize::from(crate::types::MAX_PART_NUMBER)
        {
            return Err(InvalidInput::Argument {
                what: "partSha1Array",
                reason: format!(
                    "{} parts; a large file has 1 to 10000",
                    self.part_sha1s.len()
                ),
            }
            .into());
        }
        json_request(
            session,
            Self::NAME,
            &json!({"fileId": self.file_id, "partSha1Array": self.part_sha1s}),
        )
    }

    fn parse(&self, response: Response<Bytes>) -> Result<FileVersion, Error> {
        parse_json(Self::NAME, response)
    }
}

/// `b2_cancel_large_file`: cancels an unfinished large file and deletes its parts.
///
/// <https://www.backblaze.com/apidocs/b2-cancel-large-file>
///
/// # Errors
///
/// `400 bad_request` (not an unfinished large file), `401 unauthorized`,
/// `401 bad_auth_token`, `401 expired_auth_token`, `503 service_unavailable`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CancelLargeFile {
    /// The large file.
    pub file_id: FileId,
}

impl CancelLargeFile {
    /// Cancels `file_id`.
    pub fn new(file_id: FileId) -> Self {
        Self { file_id }
    }
}

/// What `b2_cancel_large_file` returns: the file that was cancelled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CancelledLargeFile {
    /// The large file.
    pub file_id: FileId,
    /// Its account.
    #[serde(default)]
    pub account_id: Option<AccountId>,
    /// Its bucket.
    #[serde(default)]
    pub bucket_id: Option<BucketId>,
    /// Its name.
    pub file_name: FileName,
}

impl Operation for CancelLargeFile {
    type Output = CancelledLargeFile;
    const NAME: &'static str = "b2_cancel_large_file";

    fn request(&self, session: &Session) -> Result<Request<Bytes>, Error> {
        json_request(session, Self::NAME, &json!({"fileId": self.file_id}))
    }

    fn parse(&self, response: Response<Bytes>) -> Result<CancelledLargeFile, Error> {
        parse_json(Self::NAME, response)
    }
}

/// `b2_list_unfinished_large_files`: one page of the large files started and not yet finished
/// or cancelled in a bucket, oldest first.
///
/// <https://www.backblaze.com/apidocs/b2-list-unfinished-large-files>
///
/// # Errors
///
/// `400 bad_request`, `400 out_of_range` (`maxFileCount`), `401 unauthorized`,
/// `401 bad_auth_token`, `401 expired_auth_token`, `503 service_unavailable`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListUnfinishedLargeFiles {
    bucket_id: BucketId,
    name_prefix: Option<String>,
    start_file_id: Option<FileId>,
    max_file_count: Option<u32>,
}

impl ListUnfinishedLargeFiles {
    /// Lists the unfinished large files of `bucket_id`.
    pub fn new(bucket_id: BucketId) -> Self {
        Self {
            bucket_id,
            name_prefix: None,
            start_file_id: None,
            max_file_count: None,
        }
    }

    /// Lists only files whose names start with `prefix`.
    pub fn with_name_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.name_prefix = Some(prefix.into());
        self
    }

    /// Starts the page at `file_id`.
    pub fn with_start_file_id(mut self, file_id: FileId) -> Self {
        self.start_file_id = Some(file_id);
        self
    }

    /// Sets the page size, 1 to 100 (B2's default and maximum: 100).
    pub fn with_max_file_count(mut self, count: u32) -> Self {
        self.max_file_count = Some(count);
        self
    }
}

/// One page of [`ListUnfinishedLargeFiles`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct UnfinishedLargeFiles {
    /// The files (action `start`).
    pub files: Vec<FileVersion>,
    /// Where the next page starts; `None` on the last page.
    #[serde(default)]
    pub next_file_id: Option<FileId>,
}

impl Operation for ListUnfinishedLargeFiles {
    type Output = UnfinishedLargeFiles;
    const NAME: &'static str = "b2_list_unfinished_large_files";

    fn request(&self, session: &Session) -> Result<Request<Bytes>, Error> {
        let mut body = Map::new();
        body.insert("bucketId".into(), json!(self.bucket_id));
        if let Some(prefix) = &self.name_prefix {
            body.insert("namePrefix".into(), json!(prefix));
        }
        if let Some(start) = &self.start_file_id {
            body.insert("startFileId".into(), json!(start));
        }
        if let Some(count) = self.max_file_count {
            if !(1..=MAX_LIST_UNFINISHED).contains(&count) {
                return Err(InvalidInput::Argument {
                    what: "maxFileCount",
                    reason: format!("{count} is outside 1..={MAX_LIST_UNFINISHED}"),
                }
                .into());
            }
            body.insert("maxFileCount".into(), json!(count));
        }
        json_request(session, Self::NAME, &Value::Object(body))
    }

    fn parse(&self, response: Response<Bytes>) -> Result<UnfinishedLargeFiles, Error> {
        parse_json(Self::NAME, response)
    }
}

impl Paginated for ListUnfinishedLargeFiles {
    type Item = FileVersion;
    type Cursor = FileId;

    fn set_cursor(&mut self, cursor: Option<FileId>) {
        self.start_file_id = cursor;
    }

    fn next_cursor(output: &UnfinishedLargeFiles) -> Option<FileId> {
        output.next_file_id.clone()
    }

    fn into_items(output: UnfinishedLargeFiles) -> Vec<FileVersion> {
        output.files
    }
}
