//! Downloads: `b2_download_file_by_id` and `b2_download_file_by_name`.
//!
//! <https://www.backblaze.com/apidocs/b2-download-file-by-id>,
//! <https://www.backblaze.com/apidocs/b2-download-file-by-name>
//!
//! A download's body is the file, so these two calls are streaming exceptions to the
//! [`Operation`] pattern:
//!
//! 1. Build the request with [`Operation::request`] (a `GET`, or a `HEAD` for metadata only).
//! 2. On a 2xx reply, read the head with `parse_head(&parts)`: a [`DownloadHead`] with the
//!    file's id, name, length, SHA1, info and Object Lock settings, already checked against the
//!    request. Stream the body through a [`Sha1Verifier`].
//! 3. On any other status, buffer the (small, JSON) body and call [`Operation::parse`], which
//!    returns B2's error. `parse` also serves small downloads whole: it returns the head, the
//!    body and the result of checking the body's SHA1.
//!
//! File names go in the URL path percent-encoded with `/` kept literal; the `b2*` override
//! parameters and an `Authorization` parameter go in the query string, percent-encoded
//! (<https://www.backblaze.com/docs/cloud-storage-native-api-string-encoding>).

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName};
use http::{Method, Request, Response, StatusCode};

use crate::API_PREFIX;
use crate::encoding::{decode, encode, encode_query};
use crate::error::{ApiError, Error, IntegrityError, InvalidInput};
use crate::model::file::{
    CustomerKey, EncryptionAlgorithm, EncryptionInfo, EncryptionMode, FileRetention, LegalHold,
    Protected, RetentionMode,
};
use crate::ops::Operation;
use crate::secret::AuthToken;
use crate::session::Session;
use crate::types::{BucketName, ContentSha1, FileId, FileInfo, FileName, Sha1Digest};
use crate::verify::{Sha1Verifier, Verification};

/// A byte range to read, as an HTTP `Range` header: `bytes=a-b`, `bytes=a-` or `bytes=-n`.
///
/// B2 supports one range per request. A range that covers the whole file, or that B2 finds
/// invalid, gets the whole file back with status 200 and no `Content-Range`
/// (<https://www.backblaze.com/apidocs/b2-download-file-by-id>, "Range"). Build ranges with
/// the constructors, which refuse empty ones.
///
/// ```
/// use b2_proto::ops::ByteRange;
///
/// assert_eq!(ByteRange::new(0, 99).unwrap().header_value(), "bytes=0-99");
/// assert_eq!(ByteRange::starting_at(100).header_value(), "bytes=100-");
/// assert_eq!(ByteRange::suffix(10).unwrap().header_value(), "bytes=-10");
/// assert!(ByteRange::new(5, 4).is_err());
/// // What B2 should return from a 1000-byte file, as inclusive bounds:
/// assert_eq!(ByteRange::suffix(10).unwrap().resolve(1000), Some((990, 999)));
/// assert_eq!(ByteRange::starting_at(1000).resolve(1000), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ByteRange {
    /// Bytes `start` to `end`, both included (`bytes=start-end`).
    #[non_exhaustive]
    Closed {
        /// First byte.
        start: u64,
        /// Last byte, included.
        end: u64,
    },
    /// From `start` to the end of the file (`bytes=start-`).
    #[non_exhaustive]
    From {
        /// First byte.
        start: u64,
    },
    /// The last `len` bytes of the file (`bytes=-len`).
    #[non_exhaustive]
    Suffix {
        /// How many bytes.
        len: u64,
    },
}

impl ByteRange {
    /// Bytes `start` to `end`, both included.
    ///
    /// # Errors
    ///
    /// [`InvalidInput::Argument`] when `end < start`.
    pub fn new(start: u64, end: u64) -> Result<Self, InvalidInput> {
        if end < start {
            return Err(InvalidInput::Argument {
                what: "range",
                reason: format!("ends ({end}) before it starts ({start})"),
            });
        }
        Ok(Self::Closed { start, end })
    }

    /// The bytes of a half-open range `start..end`.
    ///
    /// # Errors
    ///
    /// [`InvalidInput::Argument`] for an empty range.
    pub fn from_range(range: std::ops::Range<u64>) -> Result<Self, InvalidInput> {
        if range.end <= range.start {
            return Err(InvalidInput::Argument {
                what: "range",
                reason: format!("{}..{} is empty", range.start, range.end),
            });
        }
        Ok(Self::Closed {
            start: range.start,
            end: range.end - 1,
        })
    }

    /// From `start` to the end of the file.
    pub fn starting_at(start: u64) -> Self {
        Self::From { start }
    }

    /// The last `len` bytes.
    ///
    /// # Errors
    ///
    /// [`InvalidInput::Argument`] when `len` is 0.
    pub fn suffix(len: u64) -> Result<Self, InvalidInput> {
        if len == 0 {
            return Err(InvalidInput::Argument {
                what: "range",
                reason: "a suffix range needs at least one byte".into(),
            });
        }
        Ok(Self::Suffix { len })
    }

    /// The `Range` header value (also the form of `b2_copy_file`'s `range`).
    pub fn header_value(&self) -> String {
        match self {
            Self::Closed { start, end } => format!("bytes={start}-{end}"),
            Self::From { start } => format!("bytes={start}-"),
            Self::Suffix { len } => format!("bytes=-{len}"),
        }
    }

    /// The inclusive bounds a server returns for this range of a `total`-byte file, or `None`
    /// when no byte of the file is in the range.
    pub fn resolve(&self, total: u64) -> Option<(u64, u64)> {
        let last = total.checked_sub(1)?;
        match *self {
            Self::Closed { start, end } => (start <= last).then(|| (start, end.min(last))),
            Self::From { start } => (start <= last).then_some((start, last)),
            Self::Suffix { len } => (len > 0).then(|| (total.saturating_sub(len), last)),
        }
    }
}

/// A parsed `Content-Range: bytes start-end/total` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct ContentRange {
    /// First byte returned.
    pub start: u64,
    /// Last byte returned, included.
    pub end: u64,
    /// Size of the whole file.
    pub total: u64,
}

impl ContentRange {
    /// Parses `bytes start-end/total`; `None` unless `start <= end < total`.
    ///
    /// ```
    /// use b2_proto::ops::ContentRange;
    ///
    /// let r = ContentRange::parse("bytes 0-99/1000").unwrap();
    /// assert_eq!((r.start, r.end, r.total, r.len()), (0, 99, 1000, 100));
    /// assert!(ContentRange::parse("bytes 5-4/10").is_none());
    /// assert!(ContentRange::parse("bytes */10").is_none());
    /// ```
    pub fn parse(value: &str) -> Option<Self> {
        let rest = value.trim().strip_prefix("bytes")?.trim_start();
        let (range, total) = rest.split_once('/')?;
        let (start, end) = range.split_once('-')?;
        let number = |s: &str| {
            let s = s.trim();
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                None
            } else {
                s.parse::<u64>().ok()
            }
        };
        let (start, end, total) = (number(start)?, number(end)?, number(total)?);
        (start <= end && end < total).then_some(Self { start, end, total })
    }

    /// Number of bytes in the range.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u64 {
        self.end - self.start + 1
    }
}

/// How a download request is authorized.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum DownloadAuth {
    /// The session's account token, in the `Authorization` header.
    #[default]
    Session,
    /// Another token (for example from `b2_get_download_authorization`) in the
    /// `Authorization` header.
    Header(AuthToken),
    /// A token in the `Authorization` query parameter: the form for links handed to others.
    /// Only downloads by name accept it.
    Query(AuthToken),
    /// No authorization: files in public buckets.
    None,
}

/// Values that override response headers of one download (the `b2*` query parameters).
///
/// If the download authorization token was made with one of these values, the download must
/// give the same value (<https://www.backblaze.com/apidocs/b2-get-download-authorization>).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct DownloadOverrides {
    /// `b2ContentDisposition` → `Content-Disposition` (RFC 6266).
    pub content_disposition: Option<String>,
    /// `b2ContentLanguage` → `Content-Language`.
    pub content_language: Option<String>,
    /// `b2Expires` → `Expires`.
    pub expires: Option<String>,
    /// `b2CacheControl` → `Cache-Control`.
    pub cache_control: Option<String>,
    /// `b2ContentEncoding` → `Content-Encoding`.
    pub content_encoding: Option<String>,
    /// `b2ContentType` → `Content-Type`.
    pub content_type: Option<String>,
}

impl DownloadOverrides {
    /// No overrides.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `b2ContentDisposition`.
    pub fn with_content_disposition(mut self, value: impl Into<String>) -> Self {
        self.content_disposition = Some(value.into());
        self
    }

    /// Sets `b2ContentLanguage`.
    pub fn with_content_language(mut self, value: impl Into<String>) -> Self {
        self.content_language = Some(value.into());
        self
    }

    /// Sets `b2Expires`.
    pub fn with_expires(mut self, value: impl Into<String>) -> Self {
        self.expires = Some(value.into());
        self
    }

    /// Sets `b2CacheControl`.
    pub fn with_cache_control(mut self, value: impl Into<String>) -> Self {
        self.cache_control = Some(value.into());
        self
    }

    /// Sets `b2ContentEncoding`.
    pub fn with_content_encoding(mut self, value: impl Into<String>) -> Self {
        self.content_encoding = Some(value.into());
        self
    }

    /// Sets `b2ContentType`.
    pub fn with_content_type(mut self, value: impl Into<String>) -> Self {
        self.content_type = Some(value.into());
        self
    }

    /// True when no value is set.
    pub fn is_empty(&self) -> bool {
        self.pairs().next().is_none()
    }

    fn pairs(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            ("b2ContentDisposition", &self.content_disposition),
            ("b2ContentLanguage", &self.content_language),
            ("b2Expires", &self.expires),
            ("b2CacheControl", &self.cache_control),
            ("b2ContentEncoding", &self.content_encoding),
            ("b2ContentType", &self.content_type),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.as_deref().map(|v| (name, v)))
    }
}

/// The options both download calls share.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct DownloadOptions {
    range: Option<ByteRange>,
    overrides: DownloadOverrides,
    customer_key: Option<CustomerKey>,
    auth: DownloadAuth,
    head: bool,
}

macro_rules! download_setters {
    () => {
        /// Reads only these bytes (a `Range` header).
        pub fn with_range(mut self, range: ByteRange) -> Self {
            self.options.range = Some(range);
            self
        }

        /// Overrides response headers (the `b2*` query parameters).
        pub fn with_overrides(mut self, overrides: DownloadOverrides) -> Self {
            self.options.overrides = overrides;
            self
        }

        /// The SSE-C key the file was encrypted with.
        pub fn with_customer_key(mut self, key: CustomerKey) -> Self {
            self.options.customer_key = Some(key);
            self
        }

        /// How the request is authorized (default: the session's token).
        pub fn with_auth(mut self, auth: DownloadAuth) -> Self {
            self.options.auth = auth;
            self
        }

        /// Sends `HEAD` instead of `GET`: the file's headers without its bytes.
        pub fn head_only(mut self) -> Self {
            self.options.head = true;
            self
        }

        /// The requested range, if any.
        pub fn range(&self) -> Option<ByteRange> {
            self.options.range
        }

        /// True for a `HEAD` request.
        pub fn is_head(&self) -> bool {
            self.options.head
        }
    };
}

/// What the reply must agree with.
struct Expect<'a> {
    op: &'static str,
    file_id: Option<&'a FileId>,
    file_name: Option<&'a FileName>,
    range: Option<ByteRange>,
}

impl DownloadOptions {
    /// Builds the request for `path` (everything after the download URL, without a query).
    fn build(
        &self,
        op: &'static str,
        session: &Session,
        path: &str,
        mut query: Vec<(&'static str, String)>,
        query_auth_allowed: bool,
    ) -> Result<Request<Bytes>, Error> {
        let mut auth_header = None;
        match &self.auth {
            DownloadAuth::Session => {
                auth_header = Some(session.authorization_token.expose_secret());
            }
            DownloadAuth::Header(token) => auth_header = Some(token.expose_secret()),
            DownloadAuth::Query(token) => {
                if !query_auth_allowed {
                    return Err(InvalidInput::Argument {
                        what: "authorization",
                        reason: format!("{op} takes its token only in the Authorization header"),
                    }
                    .into());
                }
                query.push(("Authorization", token.expose_secret().to_owned()));
            }
            DownloadAuth::None => {
                // The b2* overrides need an authorized request
                // (https://www.backblaze.com/apidocs/b2-download-file-by-name).
                if !self.overrides.is_empty() {
                    return Err(InvalidInput::Argument {
                        what: "overrides",
                        reason: "b2* response overrides need an authorization token".into(),
                    }
                    .into());
                }
            }
        }
        query.extend(
            self.overrides
                .pairs()
                .map(|(name, value)| (name, value.to_owned())),
        );
        let url = join_url(&session.download_url, path, &query);
        let mut builder = Request::builder()
            .method(if self.head { Method::HEAD } else { Method::GET })
            .uri(url)
            .header(header::USER_AGENT, session.user_agent.as_str());
        if let Some(token) = auth_header {
            builder = builder.header(header::AUTHORIZATION, token);
        }
        if let Some(range) = &self.range {
            builder = builder.header(header::RANGE, range.header_value());
        }
        let mut request = builder.body(Bytes::new()).map_err(|e| {
            Error::from(InvalidInput::Argument {
                what: "download request",
                reason: e.to_string(),
            })
        })?;
        if let Some(key) = &self.customer_key {
            key.write_headers(request.headers_mut());
        }
        Ok(crate::secret::hide_authorization(request))
    }
}

/// Joins the download URL, a path and a percent-encoded query string.
fn join_url(base: &str, path: &str, query: &[(&str, String)]) -> String {
    let mut url = format!("{}{path}", base.trim_end_matches('/'));
    for (i, (name, value)) in query.iter().enumerate() {
        url.push(if i == 0 { '?' } else { '&' });
        url.push_str(name);
        url.push('=');
        url.push_str(&encode_query(value));
    }
    url
}

/// `b2_download_file_by_id`: downloads one file version by its id.
///
/// <https://www.backblaze.com/apidocs/b2-download-file-by-id>
///
/// Sent to `{downloadUrl}/b2api/v4/b2_download_file_by_id?fileId=…`. A class B transaction.
/// Read the module documentation for the streaming contract.
///
/// # Errors
///
/// `400 bad_request`, `401 unauthorized` (no `readFiles` capability), `401 bad_auth_token`,
/// `401 expired_auth_token`, `401 missing_auth_token` (private bucket, no token),
/// `403 access_denied` (wrong or missing SSE-C key), `403 download_cap_exceeded`,
/// `403 transaction_cap_exceeded`, `404 not_found`, `416 range_not_satisfiable`,
/// `429 too_many_requests`; [`Error::InvalidResponse`] for a reply that contradicts the
/// request; from [`Operation::parse`] also [`Error::Integrity`] for a body that does not match
/// its length or SHA1.
///
/// ```
/// use b2_proto::ops::{ByteRange, DownloadFileById};
/// use b2_proto::{AccountId, AuthToken, FileId, Operation, Session};
///
/// let session = Session::new(AccountId::new("a"), AuthToken::new("t"), "https://api.example", "https://f001.example");
/// let op = DownloadFileById::new(FileId::new("4_z1_f2")).with_range(ByteRange::new(0, 9).unwrap());
/// let request = op.request(&session).unwrap();
/// assert_eq!(request.uri(), "https://f001.example/b2api/v4/b2_download_file_by_id?fileId=4_z1_f2");
/// assert_eq!(request.headers()["range"], "bytes=0-9");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadFileById {
    file_id: FileId,
    options: DownloadOptions,
}

impl DownloadFileById {
    /// Downloads the whole of version `file_id` with the session's token.
    pub fn new(file_id: FileId) -> Self {
        Self {
            file_id,
            options: DownloadOptions::default(),
        }
    }

    download_setters!();

    /// The version asked for.
    pub fn file_id(&self) -> &FileId {
        &self.file_id
    }

    /// Reads the head of a 2xx reply and checks it against the request.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidResponse`] when a header B2 always sends is missing or malformed, or the
    /// reply contradicts the request (another file id, a range not asked for); [`Error::Api`]
    /// for a non-2xx status (call [`Operation::parse`] with the body instead to get B2's code).
    pub fn parse_head(&self, parts: &http::response::Parts) -> Result<DownloadHead, Error> {
        DownloadHead::parse(
            parts,
            &Expect {
                op: Self::NAME,
                file_id: Some(&self.file_id),
                file_name: None,
                range: self.options.range,
            },
        )
    }
}

impl Operation for DownloadFileById {
    type Output = Download;
    const NAME: &'static str = "b2_download_file_by_id";

    fn request(&self, session: &Session) -> Result<Request<Bytes>, Error> {
        let path = format!("{API_PREFIX}{}", Self::NAME);
        let query = vec![("fileId", self.file_id.as_str().to_owned())];
        self.options.build(Self::NAME, session, &path, query, false)
    }

    fn parse(&self, response: Response<Bytes>) -> Result<Download, Error> {
        Download::parse(response, self.options.head, self.options.range, |parts| {
            self.parse_head(parts)
        })
    }
}

/// `b2_download_file_by_name`: downloads the current version of a file by bucket and name.
///
/// <https://www.backblaze.com/apidocs/b2-download-file-by-name>
///
/// Sent to `{downloadUrl}/file/{bucketName}/{fileName}`, the name percent-encoded with `/`
/// kept literal. Accepts a download-authorization token in the header or the `Authorization`
/// query parameter ([`DownloadAuth`]). A class B transaction. Read the module documentation
/// for the streaming contract.
///
/// To download a large file in parallel, take the file id from a first `HEAD` and fetch the
/// ranges by id (see [`DownloadPlan`](crate::download_plan::DownloadPlan)): the current
/// version of a name may change between two requests.
///
/// # Errors
///
/// As [`DownloadFileById`]: `400 bad_request`, `401 unauthorized`, `401 bad_auth_token`,
/// `401 expired_auth_token`, `401 missing_auth_token`, `403 access_denied`,
/// `403 download_cap_exceeded`, `403 transaction_cap_exceeded`, `404 not_found` (no such
/// bucket or file, or the file is hidden), `416 range_not_satisfiable`,
/// `429 too_many_requests`; [`Error::InvalidResponse`]; [`Error::Integrity`] from
/// [`Operation::parse`].
///
/// ```
/// use b2_proto::ops::{DownloadAuth, DownloadFileByName};
/// use b2_proto::{AccountId, AuthToken, BucketName, FileName, Operation, Session};
///
/// let session = Session::new(AccountId::new("a"), AuthToken::new("t"), "https://api.example", "https://f001.example");
/// let op = DownloadFileByName::new(BucketName::new("photos").unwrap(), FileName::new("cute/kit ten+1.jpg").unwrap())
///     .with_auth(DownloadAuth::None);
/// let request = op.request(&session).unwrap();
/// assert_eq!(request.uri(), "https://f001.example/file/photos/cute/kit%20ten%2B1.jpg");
/// assert!(request.headers().get("authorization").is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadFileByName {
    bucket_name: BucketName,
    file_name: FileName,
    options: DownloadOptions,
}

impl DownloadFileByName {
    /// Downloads the whole current version of `file_name` with the session's token.
    pub fn new(bucket_name: BucketName, file_name: FileName) -> Self {
        Self {
            bucket_name,
            file_name,
            options: DownloadOptions::default(),
        }
    }

    download_setters!();

    /// The file asked for.
    pub fn file_name(&self) -> &FileName {
        &self.file_name
    }

    fn path(&self) -> String {
        format!(
            "/file/{}/{}",
            encode(self.bucket_name.as_str()),
            encode(self.file_name.as_str())
        )
    }

    /// Reads the head of a 2xx reply and checks it against the request.
    ///
    /// # Errors
    ///
    /// As [`DownloadFileById::parse_head`]; the reply must also name the requested file.
    pub fn parse_head(&self, parts: &http::response::Parts) -> Result<DownloadHead, Error> {
        DownloadHead::parse(
            parts,
            &Expect {
                op: Self::NAME,
                file_id: None,
                file_name: Some(&self.file_name),
                range: self.options.range,
            },
        )
    }
}

impl Operation for DownloadFileByName {
    type Output = Download;
    const NAME: &'static str = "b2_download_file_by_name";

    fn request(&self, session: &Session) -> Result<Request<Bytes>, Error> {
        self.options
            .build(Self::NAME, session, &self.path(), Vec::new(), true)
    }

    fn parse(&self, response: Response<Bytes>) -> Result<Download, Error> {
        Download::parse(response, self.options.head, self.options.range, |parts| {
            self.parse_head(parts)
        })
    }
}

/// A link to a file that anyone holding it can download until `token` expires.
///
/// `token` is usually a download authorization token from `b2_get_download_authorization`
/// (scoped to a name prefix, at most a week long); it goes in the `Authorization` query
/// parameter, so **the link is a secret**. `download_url` is the session's download URL (or a
/// custom host serving the same `/file/...` paths). `overrides` become `b2*` query parameters
/// (for example a `Content-Disposition` that makes browsers save the file); if the token was
/// made with override values, the link must carry the same ones
/// (<https://www.backblaze.com/apidocs/b2-get-download-authorization>).
///
/// ```
/// use b2_proto::ops::{DownloadOverrides, share_url};
/// use b2_proto::{AuthToken, BucketName, FileName};
///
/// let url = share_url(
///     "https://f001.backblazeb2.com",
///     &BucketName::new("photos").unwrap(),
///     &FileName::new("pets/kitten 1.jpg").unwrap(),
///     &AuthToken::new("3_2016_abc/def"),
///     &DownloadOverrides::new().with_content_disposition("attachment"),
/// );
/// assert_eq!(
///     url,
///     "https://f001.backblazeb2.com/file/photos/pets/kitten%201.jpg?Authorization=3_2016_abc%2Fdef&b2ContentDisposition=attachment",
/// );
/// ```
pub fn share_url(
    download_url: &str,
    bucket_name: &BucketName,
    file_name: &FileName,
    token: &AuthToken,
    overrides: &DownloadOverrides,
) -> String {
    let path = format!(
        "/file/{}/{}",
        encode(bucket_name.as_str()),
        encode(file_name.as_str())
    );
    let mut query = vec![("Authorization", token.expose_secret().to_owned())];
    query.extend(
        overrides
            .pairs()
            .map(|(name, value)| (name, value.to_owned())),
    );
    join_url(download_url, &path, &query)
}

/// The headers of a successful download: what B2 knows about the file, and which bytes follow.
///
/// Built by `parse_head` of [`DownloadFileById`] or [`DownloadFileByName`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DownloadHead {
    /// 200 (the whole file) or 206 (a range).
    pub status: StatusCode,
    /// The version's id (`X-Bz-File-Id`).
    pub file_id: FileId,
    /// The file name, decoded (`X-Bz-File-Name`).
    pub file_name: FileName,
    /// Bytes in this reply's body (`Content-Length`): the range's length for a 206.
    pub content_length: u64,
    /// The MIME type.
    pub content_type: Option<String>,
    /// The SHA1 of the whole file (`X-Bz-Content-Sha1`), never of a range.
    pub content_sha1: ContentSha1,
    /// When the upload started, in milliseconds since the epoch (`X-Bz-Upload-Timestamp`).
    pub upload_timestamp: Option<u64>,
    /// The custom file info (`X-Bz-Info-*`, decoded).
    pub file_info: FileInfo,
    /// `Content-Disposition`, from `b2-content-disposition` or an override.
    pub content_disposition: Option<String>,
    /// `Content-Language`, from `b2-content-language` or an override.
    pub content_language: Option<String>,
    /// `Expires`, from `b2-expires` or an override.
    pub expires: Option<String>,
    /// `Cache-Control`, from an override, `b2-cache-control`, or the bucket.
    pub cache_control: Option<String>,
    /// `Content-Encoding`, from `b2-content-encoding` or an override.
    pub content_encoding: Option<String>,
    /// Object Lock retention (`X-Bz-File-Retention-*`).
    pub file_retention: Protected<FileRetention>,
    /// Object Lock legal hold (`X-Bz-File-Legal-Hold`).
    pub legal_hold: Protected<LegalHold>,
    /// Encryption (`X-Bz-Server-Side-Encryption*`), `None` for an unencrypted file.
    pub server_side_encryption: Option<EncryptionInfo>,
    /// The range returned (`Content-Range`), for a 206.
    pub content_range: Option<ContentRange>,
    /// Headers B2 withheld because the key may not read them (`X-Bz-Client-Unauthorized-To-Read`).
    pub unauthorized_to_read: Vec<String>,
}

impl DownloadHead {
    /// True when the body is a range of the file, not all of it.
    pub fn is_partial(&self) -> bool {
        self.status == StatusCode::PARTIAL_CONTENT
    }

    /// Size of the whole file.
    pub fn file_size(&self) -> u64 {
        self.content_range
            .map_or(self.content_length, |range| range.total)
    }

    /// The whole-file SHA1 to check against: the content SHA1, or for large files (whose content
    /// SHA1 is `none`) the `large_file_sha1` info the uploader recorded.
    pub fn whole_file_sha1(&self) -> Option<Sha1Digest> {
        match &self.content_sha1 {
            ContentSha1::Verified(d) | ContentSha1::Unverified(d) => Some(*d),
            _ => self
                .file_info
                .get("large_file_sha1")
                .and_then(|s| Sha1Digest::from_hex(s.strip_prefix("unverified:").unwrap_or(s))),
        }
    }

    fn parse(parts: &http::response::Parts, expect: &Expect<'_>) -> Result<Self, Error> {
        let op = expect.op;
        let bad = |reason: String| Error::InvalidResponse { op, reason };
        if !parts.status.is_success() {
            return Err(ApiError::from_response(parts, b"").into());
        }
        let status = parts.status;
        if status != StatusCode::OK && status != StatusCode::PARTIAL_CONTENT {
            return Err(bad(format!("unexpected status {status}")));
        }
        let headers = &parts.headers;
        let text = |name: &str| header_text(op, headers, name);

        let file_id =
            FileId::new(text("x-bz-file-id")?.ok_or_else(|| bad("no x-bz-file-id header".into()))?);
        if let Some(asked) = expect.file_id {
            if *asked != file_id {
                return Err(bad(format!("asked for file id {asked}, got {file_id}")));
            }
        }
        let raw_name =
            text("x-bz-file-name")?.ok_or_else(|| bad("no x-bz-file-name header".into()))?;
        let file_name = FileName::from_server(
            decode(raw_name).map_err(|e| bad(format!("x-bz-file-name: {e}")))?,
        );
        if let Some(asked) = expect.file_name {
            if *asked != file_name {
                return Err(bad(format!(
                    "asked for file {:?}, got {:?}",
                    asked.as_str(),
                    file_name.as_str()
                )));
            }
        }
        let content_length = parse_number(op, "content-length", text("content-length")?)?
            .ok_or_else(|| bad("no content-length header".into()))?;
        let content_sha1 =
            text("x-bz-content-sha1")?.map_or(ContentSha1::None, |s| ContentSha1::parse(s.trim()));
        let upload_timestamp =
            parse_number(op, "x-bz-upload-timestamp", text("x-bz-upload-timestamp")?)?;

        let mut info = std::collections::BTreeMap::new();
        for (name, value) in headers {
            if let Some(key) = name.as_str().strip_prefix("x-bz-info-") {
                let value = value
                    .to_str()
                    .map_err(|_| bad(format!("{name} is not visible ASCII")))?;
                let value = decode(value).map_err(|e| bad(format!("{name}: {e}")))?;
                info.insert(key.to_owned(), value);
            }
        }

        let unauthorized_to_read: Vec<String> = text("x-bz-client-unauthorized-to-read")?
            .map(|list| {
                list.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let may_read = |header: &str| {
            !unauthorized_to_read
                .iter()
                .any(|h| h.eq_ignore_ascii_case(header))
        };

        let retention_mode = text("x-bz-file-retention-mode")?.map(RetentionMode::from);
        let retain_until = parse_number(
            op,
            "x-bz-file-retention-retain-until-timestamp",
            text("x-bz-file-retention-retain-until-timestamp")?,
        )?;
        let file_retention = Protected {
            is_client_authorized_to_read: may_read("X-Bz-File-Retention-Mode"),
            value: (retention_mode.is_some() || retain_until.is_some()).then_some(FileRetention {
                mode: retention_mode,
                retain_until_timestamp: retain_until,
            }),
        };
        let legal_hold = Protected {
            is_client_authorized_to_read: may_read("X-Bz-File-Legal-Hold"),
            value: text("x-bz-file-legal-hold")?.map(LegalHold::from),
        };

        let server_side_encryption = if let Some(algorithm) = text("x-bz-server-side-encryption")? {
            Some(EncryptionInfo {
                mode: Some(EncryptionMode::SseB2),
                algorithm: Some(EncryptionAlgorithm::from(algorithm)),
                customer_key_md5: None,
            })
        } else if let Some(algorithm) = text("x-bz-server-side-encryption-customer-algorithm")? {
            Some(EncryptionInfo {
                mode: Some(EncryptionMode::SseC),
                algorithm: Some(EncryptionAlgorithm::from(algorithm)),
                customer_key_md5: text("x-bz-server-side-encryption-customer-key-md5")?
                    .map(str::to_owned),
            })
        } else {
            None
        };

        let content_range = check_range(op, status, headers, content_length, expect.range)?;

        Ok(Self {
            status,
            file_id,
            file_name,
            content_length,
            content_type: lossy(headers, header::CONTENT_TYPE),
            content_sha1,
            upload_timestamp,
            file_info: FileInfo::from_server(info),
            content_disposition: lossy(headers, header::CONTENT_DISPOSITION),
            content_language: lossy(headers, header::CONTENT_LANGUAGE),
            expires: lossy(headers, header::EXPIRES),
            cache_control: lossy(headers, header::CACHE_CONTROL),
            content_encoding: lossy(headers, header::CONTENT_ENCODING),
            file_retention,
            legal_hold,
            server_side_encryption,
            content_range,
            unauthorized_to_read,
        })
    }
}

/// Checks the status and `Content-Range` against the requested range.
fn check_range(
    op: &'static str,
    status: StatusCode,
    headers: &HeaderMap,
    content_length: u64,
    asked: Option<ByteRange>,
) -> Result<Option<ContentRange>, Error> {
    let bad = |reason: String| Error::InvalidResponse { op, reason };
    if status == StatusCode::OK {
        // The whole file: B2's answer to no range, a range covering the whole file, or a range
        // it finds invalid. Any Content-Range on a 200 is meaningless and ignored.
        return Ok(None);
    }
    let Some(asked) = asked else {
        return Err(bad(
            "206 partial content for a request without a range".into()
        ));
    };
    let raw = header_text(op, headers, "content-range")?
        .ok_or_else(|| bad("206 partial content without content-range".into()))?;
    let range =
        ContentRange::parse(raw).ok_or_else(|| bad(format!("malformed content-range {raw:?}")))?;
    if asked.resolve(range.total) != Some((range.start, range.end)) {
        return Err(bad(format!(
            "asked for {}, got content-range {raw:?}",
            asked.header_value()
        )));
    }
    if range.len() != content_length {
        return Err(bad(format!(
            "content-range {raw:?} holds {} bytes, content-length says {content_length}",
            range.len()
        )));
    }
    Ok(Some(range))
}

/// A header as text; `None` when absent; [`Error::InvalidResponse`] when not visible ASCII.
fn header_text<'h>(
    op: &'static str,
    headers: &'h HeaderMap,
    name: &str,
) -> Result<Option<&'h str>, Error> {
    headers
        .get(name)
        .map(|v| {
            v.to_str().map_err(|_| Error::InvalidResponse {
                op,
                reason: format!("{name} is not visible ASCII"),
            })
        })
        .transpose()
}

/// A standard header as text, tolerating bytes that are not ASCII.
fn lossy(headers: &HeaderMap, name: HeaderName) -> Option<String> {
    headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

fn parse_number(op: &'static str, name: &str, value: Option<&str>) -> Result<Option<u64>, Error> {
    value
        .map(|v| {
            let v = v.trim();
            if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(Error::InvalidResponse {
                    op,
                    reason: format!("{name} is not a number: {v:?}"),
                });
            }
            v.parse::<u64>().map_err(|_| Error::InvalidResponse {
                op,
                reason: format!("{name} is out of range: {v:?}"),
            })
        })
        .transpose()
}

/// A whole, buffered download: the head, the body, and the check of the body's SHA1.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Download {
    /// The reply's headers.
    pub head: DownloadHead,
    /// The bytes (empty for `HEAD`).
    pub body: Bytes,
    /// The result of checking the body against B2's SHA1; `None` for `HEAD`.
    pub verification: Option<Verification>,
}

impl Download {
    fn parse(
        response: Response<Bytes>,
        head_only: bool,
        range: Option<ByteRange>,
        parse_head: impl FnOnce(&http::response::Parts) -> Result<DownloadHead, Error>,
    ) -> Result<Self, Error> {
        let (parts, body) = response.into_parts();
        if !parts.status.is_success() {
            return Err(ApiError::from_response(&parts, &body).into());
        }
        let head = parse_head(&parts)?;
        if head_only {
            return Ok(Self {
                head,
                body: Bytes::new(),
                verification: None,
            });
        }
        if body.len() as u64 != head.content_length {
            return Err(IntegrityError::LengthMismatch {
                expected: head.content_length,
                actual: body.len() as u64,
            }
            .into());
        }
        let mut verifier = Sha1Verifier::new(&head, range.is_none());
        verifier.update(&body);
        let verification = verifier.finish()?;
        Ok(Self {
            head,
            body,
            verification: Some(verification),
        })
    }
}

/// A download call whose body a driver streams: [`DownloadFileById`] or [`DownloadFileByName`].
pub trait DownloadCall: Operation<Output = Download> + Clone {
    /// Reads the head of a 2xx reply, checked against the request.
    ///
    /// # Errors
    ///
    /// As the call's own `parse_head`.
    fn parse_head(&self, parts: &http::response::Parts) -> Result<DownloadHead, Error>;

    /// The same call for another range.
    fn with_byte_range(self, range: ByteRange) -> Self;

    /// The requested range, if any.
    fn byte_range(&self) -> Option<ByteRange>;

    /// The call that fetches the rest of a body cut off after `received` bytes, or `None` when
    /// nothing is missing. Check its reply with [`DownloadHead::check_continuation`].
    fn continuation(&self, head: &DownloadHead, received: u64) -> Option<Self> {
        let (start, end) = match head.content_range {
            Some(r) => (r.start, r.end),
            None if head.content_length == 0 => return None,
            None => (0, head.content_length - 1),
        };
        let next = start.checked_add(received)?;
        if next > end {
            return None;
        }
        ByteRange::new(next, end)
            .ok()
            .map(|range| self.clone().with_byte_range(range))
    }
}

impl DownloadCall for DownloadFileById {
    fn parse_head(&self, parts: &http::response::Parts) -> Result<DownloadHead, Error> {
        Self::parse_head(self, parts)
    }
    fn with_byte_range(self, range: ByteRange) -> Self {
        self.with_range(range)
    }
    fn byte_range(&self) -> Option<ByteRange> {
        self.range()
    }
}

impl DownloadCall for DownloadFileByName {
    fn parse_head(&self, parts: &http::response::Parts) -> Result<DownloadHead, Error> {
        Self::parse_head(self, parts)
    }
    fn with_byte_range(self, range: ByteRange) -> Self {
        self.with_range(range)
    }
    fn byte_range(&self) -> Option<ByteRange> {
        self.range()
    }
}

impl DownloadHead {
    /// Checks that the reply to a [`DownloadCall::continuation`] continues the same version
    /// of the file where the first reply stopped: the same file id and SHA1, and a range
    /// starting right after the bytes already received.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidResponse`] when the file changed (a new upload to the same name) or the
    /// range is not the one asked for.
    pub fn check_continuation(&self, next: &Self, received: u64) -> Result<(), Error> {
        let start = self
            .content_range
            .map_or(0, |r| r.start)
            .saturating_add(received);
        let reason = if next.file_id != self.file_id {
            Some(format!(
                "the file changed during the download: {} became {}",
                self.file_id, next.file_id
            ))
        } else if next.content_sha1 != self.content_sha1 {
            Some("the file's SHA1 changed during the download".to_owned())
        } else if next.content_range.map(|r| r.start) != Some(start) {
            Some(format!("the rest of the body should start at byte {start}"))
        } else {
            None
        };
        reason.map_or(Ok(()), |reason| {
            Err(Error::InvalidResponse {
                op: "download",
                reason,
            })
        })
    }
}

/// The head of a download as an [`Operation`], so a retrying [`Call`](crate::Call) can obtain
/// it while the driver keeps the body streaming.
///
/// `parse` reads only the head of a 2xx reply (the driver streams the body itself, and hands
/// `parse` a reply whose body is empty); for any other status the driver buffers the small
/// error body and `parse` returns B2's error.
#[derive(Debug, Clone)]
pub struct StreamHead<Op>(Op);

impl<Op: DownloadCall> StreamHead<Op> {
    /// Wraps a download call.
    pub fn new(op: Op) -> Self {
        Self(op)
    }

    /// The download call.
    pub fn call(&self) -> &Op {
        &self.0
    }
}

impl<Op: DownloadCall> Operation for StreamHead<Op> {
    type Output = DownloadHead;
    const NAME: &'static str = Op::NAME;

    fn request(&self, session: &Session) -> Result<Request<Bytes>, Error> {
        self.0.request(session)
    }

    fn parse(&self, response: Response<Bytes>) -> Result<DownloadHead, Error> {
        let (parts, body) = response.into_parts();
        if !parts.status.is_success() {
            return Err(ApiError::from_response(&parts, &body).into());
        }
        self.0.parse_head(&parts)
    }
}
