//! One type per B2 call: each builds its `http::Request` and parses its `http::Response`.
//!
//! Both halves are public, so a program with its own HTTP stack can use them directly:
//! build with [`Operation::request`], send, then hand the whole reply to [`Operation::parse`],
//! which returns the output or the B2 error. To get retries, re-authorization and backoff,
//! wrap the operation in a [`Call`](crate::Call) and drive it as a [`Machine`](crate::Machine).

use bytes::Bytes;
use http::{Method, Request, Response, header};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, DecodeError, Error};
use crate::session::Session;

pub mod buckets;
pub mod download;
pub mod download_auth;
pub mod files;
pub mod keys;
pub mod large_file;
pub mod notifications;
pub mod upload;

pub use buckets::{CreateBucket, DeleteBucket, ListBuckets, UpdateBucket};
pub use download::{
    ByteRange, ContentRange, Download, DownloadAuth, DownloadCall, DownloadFileById,
    DownloadFileByName, DownloadHead, DownloadOverrides, StreamHead, share_url,
};
pub use download_auth::GetDownloadAuthorization;
pub use files::{
    CopyFile, DeleteFileVersion, DeletedFileVersion, FileNamesPage, FileRetentionUpdate,
    FileVersionsCursor, FileVersionsPage, GetFileInfo, HideFile, LegalHoldUpdate, ListFileNames,
    ListFileVersions, MetadataDirective, UpdateFileLegalHold, UpdateFileRetention,
};
pub use keys::{CreateKey, DeleteKey, ListKeys};
pub use large_file::{
    CancelLargeFile, CancelledLargeFile, CopyPart, FinishLargeFile, ListParts,
    ListUnfinishedLargeFiles, PartsPage, StartLargeFile, UnfinishedLargeFiles, UploadPart,
};
pub use notifications::{GetBucketNotificationRules, SetBucketNotificationRules};
pub use upload::{GetUploadPartUrl, GetUploadUrl, UploadFile, UploadSha1, UploadTarget};

/// How a call may be repeated after a failure whose outcome is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RetryClass {
    /// Repeating the call has the same effect as making it once: retried after any
    /// retryable failure.
    Idempotent,
    /// Repeating a call that already took effect would do it twice (create a bucket, a key,
    /// a large file): retried only when B2 certainly did not act on it (no connection, 408,
    /// 429, 503).
    NonIdempotent,
    /// An upload to an upload URL: retried with a new upload URL and token after the failures
    /// Backblaze lists (<https://www.backblaze.com/docs/cloud-storage-upload-files-with-the-native-api>).
    Upload,
}

/// One B2 call: a pure request builder and a pure reply parser.
pub trait Operation {
    /// What a successful reply parses into.
    type Output;

    /// B2's name for the call, e.g. `b2_list_buckets`.
    const NAME: &'static str;

    /// Builds the request. Pure: no clock, no randomness, no I/O.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] when an argument breaks one of B2's rules.
    fn request(&self, session: &Session) -> Result<Request<Bytes>, Error>;

    /// Parses a complete reply, success or B2 error alike.
    ///
    /// # Errors
    ///
    /// [`Error::Api`] for an error status, [`Error::Decode`] or [`Error::InvalidResponse`]
    /// for a success status with an unusable body.
    fn parse(&self, response: Response<Bytes>) -> Result<Self::Output, Error>;

    /// How the call may be repeated.
    fn retry_class(&self) -> RetryClass {
        RetryClass::Idempotent
    }
}

/// A listing call B2 pages through with a cursor.
///
/// B2's five cursor shapes: a file name (`b2_list_file_names`), a file name and file id
/// (`b2_list_file_versions`), a part number (`b2_list_parts`), a file id
/// (`b2_list_unfinished_large_files`) and a key id (`b2_list_keys`).
pub trait Paginated: Operation + Clone {
    /// One listed item.
    type Item;
    /// Where the next page starts. Serializable, so a listing can be persisted and resumed.
    type Cursor: Clone + std::fmt::Debug + PartialEq + Serialize + DeserializeOwned;

    /// Sets where the listing starts (`None`: from the beginning).
    fn set_cursor(&mut self, cursor: Option<Self::Cursor>);

    /// The cursor of the page after `output`, or `None` when the listing is complete.
    fn next_cursor(output: &Self::Output) -> Option<Self::Cursor>;

    /// The items of a page.
    fn into_items(output: Self::Output) -> Vec<Self::Item>;
}

/// Builds `POST {apiUrl}/b2api/v4/{name}` with a JSON body and the session's token.
///
/// # Errors
///
/// [`Error::InvalidInput`] when the session's URL cannot form a request.
pub fn json_request<T: Serialize + ?Sized>(
    session: &Session,
    name: &str,
    body: &T,
) -> Result<Request<Bytes>, Error> {
    let json = serde_json::to_vec(body).map_err(|e| crate::InvalidInput::Argument {
        what: "request body",
        reason: e.to_string(),
    })?;
    Request::builder()
        .method(Method::POST)
        .uri(session.api_endpoint(name))
        .header(
            header::AUTHORIZATION,
            session.authorization_token.expose_secret(),
        )
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::USER_AGENT, session.user_agent.as_str())
        .body(Bytes::from(json))
        .map_err(|e| {
            crate::InvalidInput::Argument {
                what: "request",
                reason: e.to_string(),
            }
            .into()
        })
        .map(crate::secret::hide_authorization)
}

/// Splits a reply into its head and body, turning an error status into [`Error::Api`].
///
/// # Errors
///
/// [`Error::Api`] for any non-2xx status.
pub fn check_status(response: Response<Bytes>) -> Result<(http::response::Parts, Bytes), Error> {
    let (parts, body) = response.into_parts();
    if parts.status.is_success() {
        Ok((parts, body))
    } else {
        Err(ApiError::from_response(&parts, &body).into())
    }
}

/// Parses a JSON reply: B2's error for a non-2xx status, `T` otherwise.
///
/// # Errors
///
/// [`Error::Api`] for an error status, [`Error::Decode`] when the body is not a `T`.
pub fn parse_json<T: DeserializeOwned>(
    name: &'static str,
    response: Response<Bytes>,
) -> Result<T, Error> {
    let (_, body) = check_status(response)?;
    serde_json::from_slice(&body).map_err(|e| DecodeError::new(name, e, &body, false).into())
}

/// Like [`parse_json`], for replies that carry a secret (tokens, keys): a malformed body is
/// not quoted in the error, whatever the status.
///
/// # Errors
///
/// As [`parse_json`].
pub fn parse_secret_json<T: DeserializeOwned>(
    name: &'static str,
    response: Response<Bytes>,
) -> Result<T, Error> {
    let (parts, body) = response.into_parts();
    if !parts.status.is_success() {
        return Err(ApiError::from_secret_response(&parts, &body).into());
    }
    serde_json::from_slice(&body).map_err(|e| DecodeError::new(name, e, &body, true).into())
}
