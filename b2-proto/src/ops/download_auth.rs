//! `b2_get_download_authorization`: a token for downloading files under a prefix.

use bytes::Bytes;
use http::{Request, Response};
use serde::Serialize;

use crate::error::{Error, InvalidInput};
use crate::model::key::DownloadAuthorization;
use crate::ops::{Operation, json_request, parse_secret_json};
use crate::session::Session;
use crate::types::{BucketId, FileName};

/// Longest lifetime of a download authorization: one week, in seconds.
pub const MAX_DOWNLOAD_AUTH_SECONDS: u64 = 604_800;

/// `b2_get_download_authorization`: makes a token that downloads files of one bucket whose
/// names start with a prefix.
///
/// <https://www.backblaze.com/apidocs/b2-get-download-authorization>. Needs `shareFiles`. The
/// token lasts `validDurationInSeconds` (1 to 604,800, one week). When a `b2*` override is
/// set, every download made with the token must carry the same value for it.
/// The reply's token is an [`AuthToken`](crate::AuthToken), redacted from `Debug`, and a
/// malformed reply is never quoted in the error.
///
/// # Errors
///
/// `400 bad_request` (for example a duration out of range), `401 unauthorized` (the key
/// lacks `shareFiles`, or is restricted to another bucket or prefix), `401 bad_auth_token`,
/// `401 expired_auth_token`.
///
/// ```
/// use b2_proto::{BucketId, ops::{GetDownloadAuthorization, Operation}};
/// # let session = b2_proto::Session::new(b2_proto::AccountId::new("acct"), b2_proto::AuthToken::new("t"), "https://api", "https://f");
///
/// let op = GetDownloadAuthorization::new(BucketId::new("4a48fe8875c6214145260818"), "pets/", 3600)
///     .with_b2_content_disposition("attachment");
/// assert!(op.request(&session).is_ok());
/// assert!(GetDownloadAuthorization::new(BucketId::new("b"), "", 604_801).request(&session).is_err());
/// ```
#[derive(Debug, Clone)]
pub struct GetDownloadAuthorization {
    bucket_id: BucketId,
    file_name_prefix: String,
    valid_duration_in_seconds: u64,
    overrides: Overrides,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    b2_content_disposition: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    b2_content_language: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    b2_expires: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    b2_cache_control: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    b2_content_encoding: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    b2_content_type: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    bucket_id: &'a BucketId,
    file_name_prefix: &'a str,
    valid_duration_in_seconds: u64,
    #[serde(flatten)]
    overrides: &'a Overrides,
}

impl GetDownloadAuthorization {
    /// A token for files of `bucket_id` whose names start with `file_name_prefix` (empty: all
    /// files), valid for `valid_duration_in_seconds` (1 to 604,800).
    pub fn new(
        bucket_id: BucketId,
        file_name_prefix: impl Into<String>,
        valid_duration_in_seconds: u64,
    ) -> Self {
        Self {
            bucket_id,
            file_name_prefix: file_name_prefix.into(),
            valid_duration_in_seconds,
            overrides: Overrides::default(),
        }
    }

    /// Requires downloads with the token to ask for this `Content-Disposition` (RFC 6266).
    pub fn with_b2_content_disposition(mut self, value: impl Into<String>) -> Self {
        self.overrides.b2_content_disposition = Some(value.into());
        self
    }

    /// Requires downloads with the token to ask for this `Content-Language`.
    pub fn with_b2_content_language(mut self, value: impl Into<String>) -> Self {
        self.overrides.b2_content_language = Some(value.into());
        self
    }

    /// Requires downloads with the token to ask for this `Expires`.
    pub fn with_b2_expires(mut self, value: impl Into<String>) -> Self {
        self.overrides.b2_expires = Some(value.into());
        self
    }

    /// Requires downloads with the token to ask for this `Cache-Control`.
    pub fn with_b2_cache_control(mut self, value: impl Into<String>) -> Self {
        self.overrides.b2_cache_control = Some(value.into());
        self
    }

    /// Requires downloads with the token to ask for this `Content-Encoding`.
    pub fn with_b2_content_encoding(mut self, value: impl Into<String>) -> Self {
        self.overrides.b2_content_encoding = Some(value.into());
        self
    }

    /// Requires downloads with the token to ask for this `Content-Type`.
    pub fn with_b2_content_type(mut self, value: impl Into<String>) -> Self {
        self.overrides.b2_content_type = Some(value.into());
        self
    }
}

impl Operation for GetDownloadAuthorization {
    type Output = DownloadAuthorization;
    const NAME: &'static str = "b2_get_download_authorization";

    fn request(&self, session: &Session) -> Result<Request<Bytes>, Error> {
        let seconds = self.valid_duration_in_seconds;
        if !(1..=MAX_DOWNLOAD_AUTH_SECONDS).contains(&seconds) {
            return Err(InvalidInput::Argument {
                what: "valid duration",
                reason: format!(
                    "{seconds} seconds is outside 1..={MAX_DOWNLOAD_AUTH_SECONDS} (one week)"
                ),
            }
            .into());
        }
        // A prefix is the start of a file name, so it obeys the same rules (length, no
        // control characters); the empty prefix covers the whole bucket.
        if !self.file_name_prefix.is_empty() {
            FileName::new(self.file_name_prefix.as_str())?;
        }
        json_request(
            session,
            Self::NAME,
            &Body {
                bucket_id: &self.bucket_id,
                file_name_prefix: &self.file_name_prefix,
                valid_duration_in_seconds: seconds,
                overrides: &self.overrides,
            },
        )
    }

    fn parse(&self, response: Response<Bytes>) -> Result<DownloadAuthorization, Error> {
        parse_secret_json(Self::NAME, response)
    }
}
