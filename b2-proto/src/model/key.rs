//! Application keys and download authorizations: what the key calls and
//! `b2_get_download_authorization` return.
//!
//! Secrets (a new key's `applicationKey`, a download authorization's token) are held in
//! redacting types, so `Debug` output of these values never shows them.

use serde::{Deserialize, Serialize};

use crate::model::bucket::null_as_default;
use crate::secret::{ApplicationKey, AuthToken};
use crate::session::Capability;
use crate::types::{AccountId, ApplicationKeyId, BucketId};

/// An application key's public description (never its secret).
///
/// <https://www.backblaze.com/apidocs/b2-list-keys>. Since API v4 a key may be restricted to
/// several buckets (`bucketIds`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Key {
    /// The key's name.
    #[serde(default, deserialize_with = "null_as_default")]
    pub key_name: String,
    /// The key id: the public half of the key.
    pub application_key_id: ApplicationKeyId,
    /// What the key may do.
    #[serde(default, deserialize_with = "null_as_default")]
    pub capabilities: Vec<Capability>,
    /// The account the key belongs to.
    pub account_id: AccountId,
    /// When the key expires, in milliseconds since the epoch; `None` if it never does.
    #[serde(default)]
    pub expiration_timestamp: Option<u64>,
    /// The buckets the key is restricted to; `None` for all buckets.
    #[serde(default)]
    pub bucket_ids: Option<Vec<BucketId>>,
    /// The file-name prefix the key is restricted to, if any.
    #[serde(default)]
    pub name_prefix: Option<String>,
    /// Options set on the key, such as `s3`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub options: Vec<String>,
}

/// A newly created key together with its secret.
///
/// `b2_create_key` is the only call that ever returns the secret: store it now, it cannot be
/// fetched again. `Debug` shows the key but not the secret; serializing it (to store it, or
/// to answer as a server) writes the secret.
///
/// <https://www.backblaze.com/apidocs/b2-create-key>
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CreatedKey {
    /// The key's public description.
    #[serde(flatten)]
    pub key: Key,
    /// The secret half of the key.
    pub application_key: ApplicationKey,
}

/// One page of `b2_list_keys`.
///
/// <https://www.backblaze.com/apidocs/b2-list-keys>
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct KeyList {
    /// The keys on this page.
    #[serde(default, deserialize_with = "null_as_default")]
    pub keys: Vec<Key>,
    /// Where the next page starts, or `None` when this is the last page.
    #[serde(default)]
    pub next_application_key_id: Option<ApplicationKeyId>,
}

/// A token that lets its holder download files whose names start with a prefix.
///
/// Use the token as the `Authorization` header or query parameter of
/// `b2_download_file_by_name` requests. `Debug` does not show it; serializing writes it.
///
/// <https://www.backblaze.com/apidocs/b2-get-download-authorization>
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct DownloadAuthorization {
    /// The bucket the token is valid for.
    pub bucket_id: BucketId,
    /// The prefix of the file names the token may download.
    #[serde(default, deserialize_with = "null_as_default")]
    pub file_name_prefix: String,
    /// The token.
    pub authorization_token: AuthToken,
}
