//! The one error type of every crate in this workspace.
//!
//! B2 answers every failed call with a JSON body `{"status", "code", "message"}`
//! (<https://www.backblaze.com/docs/cloud-storage-native-api-error-handling-and-status-codes>);
//! that becomes an [`ApiError`] whose [`ErrorCode`] names B2's code. Replies that are not JSON,
//! or are empty (as HEAD replies are), still become an `ApiError`, keyed by HTTP status.

use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use serde::Deserialize;

use crate::macros::string_enum;

/// Every way a B2 call can fail.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// B2 answered with an error status.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The request did not complete at the HTTP level.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// A reply with a success status whose body could not be parsed.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A reply that parsed but contradicts the request or B2's documented behaviour.
    #[error("invalid response to {op}: {reason}")]
    InvalidResponse {
        /// The B2 call, e.g. `b2_upload_part`.
        op: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// A value the caller gave breaks one of B2's rules; nothing was sent.
    #[error(transparent)]
    InvalidInput(#[from] InvalidInput),
    /// Downloaded or uploaded data does not match its checksum or length.
    #[error(transparent)]
    Integrity(#[from] IntegrityError),
    /// Reading the data to upload, or writing downloaded data, failed on the caller's side.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, e.g. `reading the upload source`.
        context: &'static str,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The call was retried as far as the retry policy allows.
    #[error("gave up after {attempts} attempts: {last}")]
    RetriesExhausted {
        /// Attempts made, the first included.
        attempts: u32,
        /// The error of the last attempt.
        last: Box<Self>,
    },
}

impl Error {
    /// The B2 error code, when B2 sent one (looking through [`Error::RetriesExhausted`]).
    pub fn code(&self) -> Option<&ErrorCode> {
        match self {
            Self::Api(e) => Some(&e.code),
            Self::RetriesExhausted { last, .. } => last.code(),
            _ => None,
        }
    }

    /// The HTTP status, when B2 answered (looking through [`Error::RetriesExhausted`]).
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Api(e) => Some(e.status),
            Self::RetriesExhausted { last, .. } => last.status(),
            _ => None,
        }
    }

    /// The [`ApiError`], if B2 answered with one.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Self::Api(e) => Some(e),
            Self::RetriesExhausted { last, .. } => last.api(),
            _ => None,
        }
    }

    /// True when the file, version, bucket or key does not exist
    /// (`404 not_found`, `400 file_not_present`, `400 no_such_file`).
    pub fn is_not_found(&self) -> bool {
        self.api().is_some_and(ApiError::is_not_found)
    }

    /// True when the key lacks the capability, bucket or prefix the call needs (`401 unauthorized`).
    pub fn is_unauthorized(&self) -> bool {
        self.code() == Some(&ErrorCode::Unauthorized)
    }
}

/// An error reply from B2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {message}")]
#[non_exhaustive]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// B2's error code; for bodies without one, the code B2 documents for the status.
    pub code: ErrorCode,
    /// B2's message, or a description of the body when it was not B2's JSON.
    pub message: String,
    /// The `Retry-After` header, in seconds, when present (B2 sends it with 429 and 503).
    pub retry_after: Option<Duration>,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

impl ApiError {
    /// Builds the error for a non-2xx reply: B2's JSON body when there is one, or a description
    /// of the body when it is empty (HEAD) or not JSON.
    pub fn from_response(parts: &http::response::Parts, body: &[u8]) -> Self {
        Self::build(parts, body, true)
    }

    /// Like [`ApiError::from_response`], for calls whose success reply carries a secret: a
    /// body that is not B2's JSON (a cut or garbled success body under an error status) is
    /// described by its length only, never quoted.
    pub(crate) fn from_secret_response(parts: &http::response::Parts, body: &[u8]) -> Self {
        Self::build(parts, body, false)
    }

    fn build(parts: &http::response::Parts, body: &[u8], quote: bool) -> Self {
        let retry_after = parts
            .headers
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let parsed = serde_json::from_slice::<ErrorBody>(body).ok();
        let (code, message) = match parsed {
            Some(ErrorBody {
                code: Some(code),
                message,
            }) => (ErrorCode::from(code.as_str()), message.unwrap_or_default()),
            Some(ErrorBody {
                code: None,
                message,
            }) => (
                ErrorCode::for_status(parts.status),
                message.unwrap_or_else(|| "error body without a code".to_owned()),
            ),
            None if body.is_empty() => {
                (ErrorCode::for_status(parts.status), "empty body".to_owned())
            }
            None if quote => (ErrorCode::for_status(parts.status), describe_non_json(body)),
            None => (
                ErrorCode::for_status(parts.status),
                format!("non-JSON body ({} bytes)", body.len()),
            ),
        };
        Self {
            status: parts.status,
            code,
            message,
            retry_after,
        }
    }

    /// Builds an error directly (useful in tests and servers).
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// True when the thing asked for does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self.code,
            ErrorCode::NotFound | ErrorCode::FileNotPresent | ErrorCode::NoSuchFile
        )
    }
}

/// A short, printable description of a body that is not B2's JSON.
fn describe_non_json(body: &[u8]) -> String {
    const MAX: usize = 200;
    let text = String::from_utf8_lossy(&body[..body.len().min(MAX)]);
    let text: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let more = if body.len() > MAX { "…" } else { "" };
    format!(
        "non-JSON body ({} bytes): {}{more}",
        body.len(),
        text.trim()
    )
}

string_enum! {
    /// B2's error codes (`code` in an error body).
    ///
    /// Listed at <https://www.backblaze.com/docs/cloud-storage-native-api-error-handling-and-status-codes>
    /// and on each call's page.
    pub enum ErrorCode {
        /// 400: a malformed or illegal request.
        BadRequest = "bad_request",
        /// 400: the JSON body could not be parsed.
        BadJson = "bad_json",
        /// 400: a bucket id that is malformed or does not exist.
        BadBucketId = "bad_bucket_id",
        /// 400: a bucket id that is malformed.
        InvalidBucketId = "invalid_bucket_id",
        /// 400: a file id that is malformed.
        InvalidFileId = "invalid_file_id",
        /// 400: a number out of its allowed range.
        OutOfRange = "out_of_range",
        /// 400: a part number outside 1..=10000.
        InvalidPartNumber = "invalid_part_number",
        /// 400: a bucket name B2 does not accept.
        BadBucketName = "bad_bucket_name",
        /// 400: file info B2 does not accept.
        InvalidFileInfo = "invalid_file_info",
        /// 400: a file name B2 does not accept.
        InvalidFileName = "invalid_file_name",
        /// 400: too many files in one request.
        TooManyFiles = "too_many_files",
        /// 400: the bucket name is already taken.
        DuplicateBucketName = "duplicate_bucket_name",
        /// 400: the account has as many buckets as it may.
        TooManyBuckets = "too_many_buckets",
        /// 400: the bucket still holds files.
        CannotDeleteNonEmptyBucket = "cannot_delete_non_empty_bucket",
        /// 400: the file version does not exist (`b2_delete_file_version`).
        FileNotPresent = "file_not_present",
        /// 400: no file by that name (`b2_hide_file`).
        NoSuchFile = "no_such_file",
        /// 400: the file is already hidden.
        AlreadyHidden = "already_hidden",
        /// 400: a part is missing when finishing a large file.
        MissingPart = "missing_part",
        /// 400: `partSha1Array` does not match the parts' SHA1s.
        PartSha1Mismatch = "part_sha1_mismatch",
        /// 400: `b2_copy_file` source over 5 GB; copy it by parts.
        SourceTooLarge = "source_too_large",
        /// 400: an Object Lock setting conflicts with the bucket or file.
        FileLockConflict = "file_lock_conflict",
        /// 400: the key is restricted to another bucket.
        RestrictedBucketConflict = "restricted_bucket_conflict",
        /// 400: replication settings conflict.
        SourceReplicationConflict = "source_replication_conflict",
        /// 400: two uploads used one upload token at once; get a new upload URL.
        AuthTokenLimit = "auth_token_limit",
        /// 400: a notification rule mixes event-type categories.
        EventTypeCategories = "event_type_categories",
        /// 400: notification rules overlap.
        EventTypeOverlap = "event_type_overlap",
        /// 400: a notification rule has no event types.
        EventTypesEmpty = "event_types_empty",
        /// 400: an unknown event type.
        EventTypeInvalid = "event_type_invalid",
        /// 401: the token is invalid.
        BadAuthToken = "bad_auth_token",
        /// 401: the token expired; authorize again.
        ExpiredAuthToken = "expired_auth_token",
        /// 401: no `Authorization` given for a private bucket (downloads).
        MissingAuthToken = "missing_auth_token",
        /// 401: the key lacks the capability, bucket or name prefix the call needs.
        Unauthorized = "unauthorized",
        /// 401: the key cannot be used with this API version.
        Unsupported = "unsupported",
        /// 401: the account's email address is not verified.
        EmailNotVerified = "email_not_verified",
        /// 401: the account has no payment history.
        NoPaymentHistory = "no_payment_history",
        /// 403: a usage cap was reached.
        CapExceeded = "cap_exceeded",
        /// 403: the storage cap was reached.
        StorageCapExceeded = "storage_cap_exceeded",
        /// 403: the transaction cap was reached.
        TransactionCapExceeded = "transaction_cap_exceeded",
        /// 403: the download bandwidth cap was reached.
        DownloadCapExceeded = "download_cap_exceeded",
        /// 403: access denied (for example a wrong SSE-C key).
        AccessDenied = "access_denied",
        /// 404: the file, bucket or URL does not exist.
        NotFound = "not_found",
        /// 405: the HTTP method is not allowed.
        MethodNotAllowed = "method_not_allowed",
        /// 408: the request timed out.
        RequestTimeout = "request_timeout",
        /// 409: the bucket revision moved (`ifRevisionIs`).
        Conflict = "conflict",
        /// 416: the requested range cannot be satisfied.
        RangeNotSatisfiable = "range_not_satisfiable",
        /// 429: too many requests; wait (honouring `Retry-After`) and retry.
        TooManyRequests = "too_many_requests",
        /// 500: B2 failed internally.
        InternalError = "internal_error",
        /// 503: B2 is busy; retry (uploads: with a new upload URL).
        ServiceUnavailable = "service_unavailable",
    }
}

impl ErrorCode {
    /// The code B2 uses for a status when a reply carries none (empty or non-JSON body).
    pub fn for_status(status: StatusCode) -> Self {
        match status.as_u16() {
            400 => Self::BadRequest,
            // An empty 401 (HEAD) is most often an expired token: callers re-authorize once.
            401 => Self::Other(String::new()),
            403 => Self::AccessDenied,
            404 => Self::NotFound,
            405 => Self::MethodNotAllowed,
            408 => Self::RequestTimeout,
            409 => Self::Conflict,
            416 => Self::RangeNotSatisfiable,
            429 => Self::TooManyRequests,
            503 => Self::ServiceUnavailable,
            500..=599 => Self::InternalError,
            _ => Self::Other(String::new()),
        }
    }
}

/// How a request failed below HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportErrorKind {
    /// The connection could not be made: nothing reached the server.
    Connect,
    /// No reply in time; the server may or may not have acted.
    Timeout,
    /// The connection broke while sending the request or reading the reply.
    Interrupted,
    /// The reply's body could not be read (truncated, reset).
    Body,
    /// Anything else.
    Other,
}

/// A request that failed below HTTP, as reported by an adapter.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
#[error("transport error ({kind:?}): {source}")]
pub struct TransportError {
    /// What kind of failure.
    pub kind: TransportErrorKind,
    /// The HTTP client's own error.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

impl TransportError {
    /// Wraps an HTTP client's error.
    pub fn new(
        kind: TransportErrorKind,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self {
            kind,
            source: source.into(),
        }
    }
}

/// A success reply whose body could not be parsed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
#[error("could not parse the reply to {op}: {source}{}", excerpt.as_deref().map(|e| format!("; body starts {e:?}")).unwrap_or_default())]
pub struct DecodeError {
    /// The B2 call, e.g. `b2_list_buckets`.
    pub op: &'static str,
    /// The parser's error.
    #[source]
    pub source: serde_json::Error,
    /// The start of the body, for diagnosis; `None` for replies that carry secrets.
    pub excerpt: Option<String>,
}

impl DecodeError {
    /// Describes a body that failed to parse. `secret_bearing` replies keep no excerpt.
    pub fn new(
        op: &'static str,
        source: serde_json::Error,
        body: &Bytes,
        secret_bearing: bool,
    ) -> Self {
        let excerpt = (!secret_bearing).then(|| {
            let end = body.len().min(256);
            String::from_utf8_lossy(&body[..end]).into_owned()
        });
        let source = if secret_bearing {
            without_values(&source)
        } else {
            source
        };
        Self {
            op,
            source,
            excerpt,
        }
    }
}

/// The parser's error without the values it quotes: serde's "invalid type: string \"…\""
/// would otherwise show a token that landed in the wrong field.
fn without_values(e: &serde_json::Error) -> serde_json::Error {
    let message = e.to_string();
    let kept = if e.is_data()
        && !message.starts_with("missing field")
        && !message.starts_with("duplicate field")
    {
        // "invalid type: string \"4_…\", expected u64" -> "invalid type".
        message.split([':', '`', '"']).next().unwrap_or_default()
    } else {
        // Syntax and end-of-input errors, and missing or duplicate fields, name no values.
        message.split(" at line ").next().unwrap_or_default()
    };
    <serde_json::Error as serde::de::Error>::custom(format_args!(
        "{} at line {} column {}",
        kept.trim(),
        e.line(),
        e.column()
    ))
}

/// Data that does not match its checksum or length.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IntegrityError {
    /// The SHA1 of the bytes received differs from the one B2 recorded.
    #[error("sha1 mismatch: expected {expected}, got {actual}")]
    Sha1Mismatch {
        /// SHA1 recorded by B2.
        expected: crate::Sha1Digest,
        /// SHA1 of the bytes received.
        actual: crate::Sha1Digest,
    },
    /// Fewer or more bytes than the reply announced.
    #[error("length mismatch: expected {expected} bytes, got {actual}")]
    LengthMismatch {
        /// Bytes announced.
        expected: u64,
        /// Bytes received.
        actual: u64,
    },
}

/// A value that breaks one of B2's documented rules; detected before any request is sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidInput {
    /// A file name B2 would reject.
    #[error("invalid file name: {reason}")]
    FileName {
        /// Which rule.
        reason: String,
    },
    /// A bucket name B2 would reject.
    #[error("invalid bucket name {name:?}: {reason}")]
    BucketName {
        /// The name given.
        name: String,
        /// Which rule.
        reason: String,
    },
    /// A file-info entry B2 would reject.
    #[error("invalid file info {key:?}: {reason}")]
    FileInfo {
        /// The key given.
        key: String,
        /// Which rule.
        reason: String,
    },
    /// The file name and info headers exceed B2's limit.
    #[error("file name and info take {size} bytes of headers, over the limit of {limit}")]
    FileInfoTooLarge {
        /// Bytes the headers would take.
        size: usize,
        /// The limit: 7000, or 2048 with server-side encryption or Object Lock.
        limit: usize,
    },
    /// A part number outside 1..=10000.
    #[error("part number {number} is outside 1..=10000")]
    PartNumber {
        /// The number given.
        number: u32,
    },
    /// A part or file size outside what B2 accepts.
    #[error("invalid size: {reason}")]
    Size {
        /// Which rule.
        reason: String,
    },
    /// Any other argument B2 would reject.
    #[error("invalid {what}: {reason}")]
    Argument {
        /// The argument.
        what: &'static str,
        /// Which rule.
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(status: u16, retry_after: Option<&str>) -> http::response::Parts {
        let mut b = http::Response::builder().status(status);
        if let Some(r) = retry_after {
            b = b.header("Retry-After", r);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn b2_error_body() {
        let body =
            br#"{"status":400,"code":"already_hidden","message":"File already hidden: a.txt"}"#;
        let e = ApiError::from_response(&parts(400, None), body);
        assert_eq!(e.code, ErrorCode::AlreadyHidden);
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(e.message, "File already hidden: a.txt");
        assert_eq!(
            e.to_string(),
            "400 Bad Request already_hidden: File already hidden: a.txt"
        );
    }

    #[test]
    fn every_code_of_the_error_table_is_known() {
        // B2's error-handling table (B2_PROTOCOL.md §2) and the codes on the calls' pages.
        let codes = [
            "bad_request",
            "bad_json",
            "invalid_bucket_id",
            "bad_bucket_id",
            "invalid_file_id",
            "out_of_range",
            "invalid_part_number",
            "bad_bucket_name",
            "invalid_file_info",
            "invalid_file_name",
            "too_many_files",
            "duplicate_bucket_name",
            "too_many_buckets",
            "cannot_delete_non_empty_bucket",
            "file_not_present",
            "no_such_file",
            "already_hidden",
            "missing_part",
            "part_sha1_mismatch",
            "source_too_large",
            "file_lock_conflict",
            "restricted_bucket_conflict",
            "source_replication_conflict",
            "auth_token_limit",
            "expired_auth_token",
            "bad_auth_token",
            "unauthorized",
            "unsupported",
            "email_not_verified",
            "no_payment_history",
            "cap_exceeded",
            "storage_cap_exceeded",
            "transaction_cap_exceeded",
            "download_cap_exceeded",
            "access_denied",
            "not_found",
            "method_not_allowed",
            "request_timeout",
            "conflict",
            "range_not_satisfiable",
            "too_many_requests",
            "internal_error",
            "service_unavailable",
            "missing_auth_token",
            "event_type_categories",
            "event_type_overlap",
            "event_types_empty",
            "event_type_invalid",
        ];
        for code in codes {
            let parsed = ErrorCode::from(code);
            assert!(
                !matches!(parsed, ErrorCode::Other(_)),
                "{code} is not a known code"
            );
            assert_eq!(parsed.as_str(), code);
        }
    }

    #[test]
    fn unknown_code_is_kept() {
        let body = br#"{"status":400,"code":"brand_new_code","message":"m"}"#;
        let e = ApiError::from_response(&parts(400, None), body);
        assert_eq!(e.code, ErrorCode::Other("brand_new_code".into()));
        assert_eq!(e.code.as_str(), "brand_new_code");
    }

    #[test]
    fn empty_and_non_json_bodies() {
        let e = ApiError::from_response(&parts(404, None), b"");
        assert_eq!(e.code, ErrorCode::NotFound);
        assert_eq!(e.message, "empty body");
        let e = ApiError::from_response(&parts(502, None), b"<html>Bad Gateway</html>");
        assert_eq!(e.code, ErrorCode::InternalError);
        assert!(
            e.message.contains("<html>Bad Gateway</html>"),
            "{}",
            e.message
        );
    }

    #[test]
    fn secret_replies_are_not_quoted_under_an_error_status() {
        let body = br#"{"authorizationToken": "4_0012secrettoken"#;
        let e = ApiError::from_secret_response(&parts(502, None), body);
        assert_eq!(e.message, format!("non-JSON body ({} bytes)", body.len()));
        assert!(!format!("{e} {e:?}").contains("secrettoken"));
        assert_eq!(e.code, ErrorCode::InternalError);
        // B2's own error JSON is read as usual.
        let body = br#"{"status":401,"code":"unauthorized","message":"m"}"#;
        let e = ApiError::from_secret_response(&parts(401, None), body);
        assert_eq!((e.code, e.message.as_str()), (ErrorCode::Unauthorized, "m"));
    }

    #[test]
    fn retry_after_is_read() {
        let body = br#"{"status":429,"code":"too_many_requests","message":"slow down"}"#;
        let e = ApiError::from_response(&parts(429, Some("7")), body);
        assert_eq!(e.retry_after, Some(Duration::from_secs(7)));
        let e = ApiError::from_response(&parts(503, Some("not a number")), b"");
        assert_eq!(e.retry_after, None);
    }

    #[test]
    fn decode_error_hides_secret_bodies() {
        let body = Bytes::from_static(br#"{"authorizationToken":"4_secret""#);
        let source = serde_json::from_slice::<serde_json::Value>(&body).unwrap_err();
        let e = DecodeError::new("b2_authorize_account", source, &body, true);
        assert!(!format!("{e} {e:?}").contains("4_secret"));
    }

    #[test]
    fn decode_error_hides_secrets_quoted_by_the_parser() {
        // A token in a field of another type: serde quotes the value it could not use.
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Reply {
            size: u64,
        }
        let body = Bytes::from_static(br#"{"size":"4_002secrettoken"}"#);
        let source = serde_json::from_slice::<Reply>(&body).unwrap_err();
        assert!(source.to_string().contains("4_002secrettoken"));
        let e = DecodeError::new("b2_get_upload_url", source, &body, true);
        let shown = format!("{e} {e:?} {}", e.source);
        assert!(!shown.contains("secrettoken"), "{shown}");
        assert_eq!(e.source.to_string(), "invalid type at line 1 column 26");
        // Missing fields and syntax errors keep their description.
        let body = Bytes::from_static(b"{}");
        let source = serde_json::from_slice::<Reply>(&body).unwrap_err();
        let e = DecodeError::new("b2_get_upload_url", source, &body, true);
        assert_eq!(
            e.source.to_string(),
            "missing field `size` at line 1 column 2"
        );
        let body = Bytes::from_static(br#"{"size":"4_0"#);
        let source = serde_json::from_slice::<Reply>(&body).unwrap_err();
        let e = DecodeError::new("b2_get_upload_url", source, &body, true);
        assert_eq!(
            e.source.to_string(),
            "EOF while parsing a string at line 1 column 12"
        );
        // Replies without secrets keep serde's full message.
        let body = Bytes::from_static(br#"{"size":"big"}"#);
        let source = serde_json::from_slice::<Reply>(&body).unwrap_err();
        let e = DecodeError::new("b2_list_buckets", source, &body, false);
        assert!(e.to_string().contains("\"big\""), "{e}");
    }
}
