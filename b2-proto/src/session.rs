//! `b2_authorize_account` and the [`Session`] every other call runs in.
//!
//! <https://www.backblaze.com/apidocs/b2-authorize-account>

use std::fmt;

use base64::Engine as _;
use bytes::Bytes;
use http::{Method, Request, Response, header};
use serde::{Deserialize, Serialize};

use crate::error::{DecodeError, Error};
use crate::macros::string_enum;
use crate::secret::{ApplicationKey, AuthToken};
use crate::types::{AccountId, ApplicationKeyId, BucketId, BucketName};
use crate::{API_PREFIX, UserAgent};

/// Backblaze's production realm: where `b2_authorize_account` is sent.
pub const DEFAULT_REALM: &str = "https://api.backblazeb2.com";

string_enum! {
    /// A capability an application key may have.
    ///
    /// <https://www.backblaze.com/docs/cloud-storage-application-key-capabilities>
    pub enum Capability {
        /// List keys.
        ListKeys = "listKeys",
        /// Create keys.
        WriteKeys = "writeKeys",
        /// Delete keys.
        DeleteKeys = "deleteKeys",
        /// List buckets.
        ListBuckets = "listBuckets",
        /// List the names of all buckets, even those the key is not restricted to.
        ListAllBucketNames = "listAllBucketNames",
        /// Read bucket settings.
        ReadBuckets = "readBuckets",
        /// Create and update buckets.
        WriteBuckets = "writeBuckets",
        /// Delete buckets.
        DeleteBuckets = "deleteBuckets",
        /// Read a bucket's default encryption.
        ReadBucketEncryption = "readBucketEncryption",
        /// Change a bucket's default encryption.
        WriteBucketEncryption = "writeBucketEncryption",
        /// Read a bucket's default retention.
        ReadBucketRetentions = "readBucketRetentions",
        /// Change a bucket's default retention.
        WriteBucketRetentions = "writeBucketRetentions",
        /// Read file retention settings.
        ReadFileRetentions = "readFileRetentions",
        /// Change file retention settings.
        WriteFileRetentions = "writeFileRetentions",
        /// Read file legal holds.
        ReadFileLegalHolds = "readFileLegalHolds",
        /// Change file legal holds.
        WriteFileLegalHolds = "writeFileLegalHolds",
        /// Read replication settings.
        ReadBucketReplications = "readBucketReplications",
        /// Change replication settings.
        WriteBucketReplications = "writeBucketReplications",
        /// Delete or shorten governance-mode retention.
        BypassGovernance = "bypassGovernance",
        /// List files.
        ListFiles = "listFiles",
        /// Download files and read file info.
        ReadFiles = "readFiles",
        /// Create download authorizations.
        ShareFiles = "shareFiles",
        /// Upload, copy and hide files.
        WriteFiles = "writeFiles",
        /// Delete file versions.
        DeleteFiles = "deleteFiles",
        /// Read bucket notification rules.
        ReadBucketNotifications = "readBucketNotifications",
        /// Change bucket notification rules.
        WriteBucketNotifications = "writeBucketNotifications",
    }
}

/// A bucket an application key is restricted to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AllowedBucket {
    /// The bucket's id.
    pub id: BucketId,
    /// The bucket's name; `None` when the bucket no longer exists.
    #[serde(default)]
    pub name: Option<BucketName>,
}

/// What an application key may do (`apiInfo.storageApi.allowed`, v4).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Allowed {
    /// The buckets the key is restricted to; `None` for a key valid for all buckets.
    #[serde(default)]
    pub buckets: Option<Vec<AllowedBucket>>,
    /// The key's capabilities.
    #[serde(default)]
    pub capabilities: Vec<Capability>,
    /// The file-name prefix the key is restricted to, if any.
    #[serde(default)]
    pub name_prefix: Option<String>,
}

impl Allowed {
    /// True when the key has `capability`.
    pub fn has(&self, capability: &Capability) -> bool {
        self.capabilities.contains(capability)
    }
}

/// An authorized session: the account token and the URLs and limits B2 returned.
///
/// Built by [`AuthorizeAccount::parse`]; every [`Operation`](crate::ops::Operation) builds its
/// request from one. The token is redacted from `Debug`.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Session {
    /// The account id B2 returned (store this, not the key id).
    pub account_id: AccountId,
    /// The account authorization token, valid for at most 24 hours.
    pub authorization_token: AuthToken,
    /// Base URL for API calls, e.g. `https://api001.backblazeb2.com`.
    pub api_url: String,
    /// Base URL for downloads, e.g. `https://f001.backblazeb2.com`.
    pub download_url: String,
    /// Base URL of the S3-compatible API.
    pub s3_api_url: Option<String>,
    /// The part size B2 recommends for large files, in bytes.
    pub recommended_part_size: u64,
    /// The smallest part B2 accepts (except a file's last part), in bytes.
    pub absolute_minimum_part_size: u64,
    /// What the key may do.
    pub allowed: Allowed,
    /// When the key expires, in milliseconds since the epoch, if it does.
    pub application_key_expiration_timestamp: Option<u64>,
    /// The User-Agent sent with every request of this session.
    pub user_agent: UserAgent,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("account_id", &self.account_id)
            .field("authorization_token", &self.authorization_token)
            .field("api_url", &self.api_url)
            .field("download_url", &self.download_url)
            .field("recommended_part_size", &self.recommended_part_size)
            .field(
                "absolute_minimum_part_size",
                &self.absolute_minimum_part_size,
            )
            .field("allowed", &self.allowed)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// The URL of a JSON call: `{apiUrl}/b2api/v4/{name}`.
    pub fn api_endpoint(&self, name: &str) -> String {
        format!("{}{API_PREFIX}{name}", self.api_url.trim_end_matches('/'))
    }

    /// A session built by hand, for servers and tests.
    pub fn new(
        account_id: AccountId,
        authorization_token: AuthToken,
        api_url: impl Into<String>,
        download_url: impl Into<String>,
    ) -> Self {
        Self {
            account_id,
            authorization_token,
            api_url: api_url.into(),
            download_url: download_url.into(),
            s3_api_url: None,
            recommended_part_size: 100_000_000,
            absolute_minimum_part_size: 5_000_000,
            allowed: Allowed::default(),
            application_key_expiration_timestamp: None,
            user_agent: UserAgent::default(),
        }
    }
}

/// `b2_authorize_account`: trades a key id and key for a [`Session`].
///
/// The one call without a session. Sent to a realm (default [`DEFAULT_REALM`]) with HTTP Basic
/// authentication.
///
/// # Errors
///
/// `401 unauthorized` (wrong key id or key), `401 unsupported` (the key cannot use this API
/// version), `401 email_not_verified`, `401 no_payment_history`, `400 bad_request`,
/// `403 transaction_cap_exceeded`.
///
/// ```
/// use b2_proto::{AuthorizeAccount, ApplicationKey, ApplicationKeyId};
///
/// let op = AuthorizeAccount::new(ApplicationKeyId::new("0012ab"), ApplicationKey::new("K001xyz"));
/// let req = op.request().unwrap();
/// assert_eq!(req.uri(), "https://api.backblazeb2.com/b2api/v4/b2_authorize_account");
/// assert!(req.headers()["authorization"].to_str().unwrap().starts_with("Basic "));
/// ```
#[derive(Debug, Clone)]
pub struct AuthorizeAccount {
    realm: String,
    key_id: ApplicationKeyId,
    key: ApplicationKey,
    user_agent: UserAgent,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuthorizeReply {
    account_id: AccountId,
    authorization_token: AuthToken,
    api_info: ApiInfo,
    #[serde(default)]
    application_key_expiration_timestamp: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApiInfo {
    storage_api: StorageApi,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StorageApi {
    api_url: String,
    download_url: String,
    #[serde(default)]
    s3_api_url: Option<String>,
    recommended_part_size: u64,
    absolute_minimum_part_size: u64,
    #[serde(default)]
    allowed: Allowed,
}

impl AuthorizeAccount {
    /// The call's name.
    pub const NAME: &'static str = "b2_authorize_account";

    /// Authorizes against Backblaze's production realm.
    pub fn new(key_id: ApplicationKeyId, key: ApplicationKey) -> Self {
        Self {
            realm: DEFAULT_REALM.to_owned(),
            key_id,
            key,
            user_agent: UserAgent::default(),
        }
    }

    /// Authorizes against another realm: a B2-compatible server such as `b2-emulator`.
    pub fn with_realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = realm.into();
        self
    }

    /// Sets the User-Agent for this call and for the session it returns.
    pub fn with_user_agent(mut self, user_agent: UserAgent) -> Self {
        self.user_agent = user_agent;
        self
    }

    /// The realm this call goes to.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// The key id.
    pub fn key_id(&self) -> &ApplicationKeyId {
        &self.key_id
    }

    /// Builds `GET {realm}/b2api/v4/b2_authorize_account` with Basic authentication.
    ///
    /// # Errors
    ///
    /// [`InvalidInput`](crate::InvalidInput) when the realm is not a valid URL base.
    pub fn request(&self) -> Result<Request<Bytes>, Error> {
        let credentials = format!("{}:{}", self.key_id, self.key.expose_secret());
        let basic = base64::engine::general_purpose::STANDARD.encode(credentials);
        let uri = format!(
            "{}{API_PREFIX}{}",
            self.realm.trim_end_matches('/'),
            Self::NAME
        );
        Request::builder()
            .method(Method::GET)
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Basic {basic}"))
            .header(header::USER_AGENT, self.user_agent.as_str())
            .body(Bytes::new())
            .map_err(|e| {
                crate::InvalidInput::Argument {
                    what: "realm",
                    reason: e.to_string(),
                }
                .into()
            })
            .map(crate::secret::hide_authorization)
    }

    /// Parses the reply into a [`Session`].
    ///
    /// # Errors
    ///
    /// [`Error::Api`] for an error reply; [`Error::Decode`] for a malformed one (the body,
    /// which holds a token, is not kept); [`Error::InvalidResponse`] when `apiUrl` or
    /// `downloadUrl` is not an absolute `http` or `https` URL.
    pub fn parse(&self, response: Response<Bytes>) -> Result<Session, Error> {
        let (parts, body) = response.into_parts();
        if !parts.status.is_success() {
            return Err(crate::ApiError::from_secret_response(&parts, &body).into());
        }
        let reply: AuthorizeReply = serde_json::from_slice(&body)
            .map_err(|e| DecodeError::new(Self::NAME, e, &body, true))?;
        let storage = reply.api_info.storage_api;
        for (field, url) in [
            ("apiUrl", &storage.api_url),
            ("downloadUrl", &storage.download_url),
        ] {
            // Every later request is addressed from these: refuse them now if they cannot be.
            // (Not quoted: this reply carries the account token.)
            if !is_base_url(url) {
                return Err(Error::InvalidResponse {
                    op: Self::NAME,
                    reason: format!("{field} is not an absolute http or https URL"),
                });
            }
        }
        Ok(Session {
            account_id: reply.account_id,
            authorization_token: reply.authorization_token,
            api_url: storage.api_url,
            download_url: storage.download_url,
            s3_api_url: storage.s3_api_url,
            recommended_part_size: storage.recommended_part_size,
            absolute_minimum_part_size: storage.absolute_minimum_part_size,
            allowed: storage.allowed,
            application_key_expiration_timestamp: reply.application_key_expiration_timestamp,
            user_agent: self.user_agent.clone(),
        })
    }
}

/// True for an absolute `http` or `https` URL with a host, usable as the base of request URLs.
fn is_base_url(url: &str) -> bool {
    url.parse::<http::Uri>().is_ok_and(|uri| {
        matches!(uri.scheme_str(), Some("http" | "https"))
            && uri.host().is_some_and(|h| !h.is_empty())
    })
}
