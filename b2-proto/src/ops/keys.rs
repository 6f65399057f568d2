//! `b2_create_key`, `b2_delete_key` and `b2_list_keys`.
//!
//! These are the API v4 forms: a key may be restricted to several buckets (`bucketIds`), and
//! `b2_list_keys` on v4 lists only such multi-bucket keys
//! (<https://www.backblaze.com/apidocs/b2-list-keys>).

use bytes::Bytes;
use http::{Request, Response};
use serde::Serialize;

use crate::error::{Error, InvalidInput};
use crate::model::key::{CreatedKey, Key, KeyList};
use crate::ops::{Operation, Paginated, RetryClass, json_request, parse_json, parse_secret_json};
use crate::session::{Capability, Session};
use crate::types::{AccountId, ApplicationKeyId, BucketId};

/// Longest key name, in characters.
pub const MAX_KEY_NAME_LEN: usize = 100;
/// A key's lifetime must be under 1000 days, in seconds.
pub const KEY_DURATION_LIMIT_SECONDS: u64 = 1000 * 86_400;
/// Most keys one `b2_list_keys` call returns.
pub const MAX_KEY_COUNT: u32 = 10_000;

/// `b2_create_key`: creates an application key.
///
/// <https://www.backblaze.com/apidocs/b2-create-key>. Needs `writeKeys`. The reply is the only
/// time B2 reveals the new key's secret: it is returned in [`CreatedKey::application_key`],
/// which `Debug` never prints.
///
/// Rules checked before sending: the name is 1 to 100 letters, digits and `-` (no accented
/// letters); at least one capability; a lifetime of 1 second to under 1000 days
/// (86,400,000 seconds); a bucket restriction names at least one bucket.
///
/// Not idempotent: a lost reply is retried only when B2 certainly did not act (otherwise a
/// second key would be made).
///
/// # Errors
///
/// `400 bad_request` (for example a capability not allowed with a bucket restriction),
/// `401 unauthorized` (the key lacks `writeKeys`), `401 bad_auth_token`,
/// `401 expired_auth_token`.
///
/// ```
/// use b2_proto::{BucketId, Capability, ops::{CreateKey, Operation}};
/// # let session = b2_proto::Session::new(b2_proto::AccountId::new("acct"), b2_proto::AuthToken::new("t"), "https://api", "https://f");
///
/// let op = CreateKey::new("nightly-backup", [Capability::ListFiles, Capability::WriteFiles])
///     .with_bucket_ids([BucketId::new("4a48fe8875c6214145260818")])
///     .with_valid_duration_in_seconds(86_400);
/// assert!(op.request(&session).is_ok());
/// assert!(CreateKey::new("has space", [Capability::ListFiles]).request(&session).is_err());
/// ```
#[derive(Debug, Clone)]
pub struct CreateKey {
    key_name: String,
    capabilities: Vec<Capability>,
    valid_duration_in_seconds: Option<u64>,
    bucket_ids: Option<Vec<BucketId>>,
    name_prefix: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CreateKeyBody<'a> {
    account_id: &'a AccountId,
    capabilities: &'a [Capability],
    key_name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    valid_duration_in_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bucket_ids: Option<&'a [BucketId]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name_prefix: Option<&'a str>,
}

impl CreateKey {
    /// A key named `key_name` with `capabilities`, for all buckets, never expiring.
    pub fn new(
        key_name: impl Into<String>,
        capabilities: impl IntoIterator<Item = Capability>,
    ) -> Self {
        Self {
            key_name: key_name.into(),
            capabilities: capabilities.into_iter().collect(),
            valid_duration_in_seconds: None,
            bucket_ids: None,
            name_prefix: None,
        }
    }

    /// Makes the key expire after `seconds` (1 to 86,399,999).
    pub fn with_valid_duration_in_seconds(mut self, seconds: u64) -> Self {
        self.valid_duration_in_seconds = Some(seconds);
        self
    }

    /// Restricts the key to these buckets.
    pub fn with_bucket_ids(mut self, bucket_ids: impl IntoIterator<Item = BucketId>) -> Self {
        self.bucket_ids = Some(bucket_ids.into_iter().collect());
        self
    }

    /// Restricts the key to files whose names start with `prefix`.
    pub fn with_name_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.name_prefix = Some(prefix.into());
        self
    }

    fn validate(&self) -> Result<(), InvalidInput> {
        let fail =
            |what: &'static str, reason: String| Err(InvalidInput::Argument { what, reason });
        let name = &self.key_name;
        let len = name.chars().count();
        if len == 0 || len > MAX_KEY_NAME_LEN {
            return fail(
                "key name",
                format!("must be 1 to {MAX_KEY_NAME_LEN} characters long, not {len}"),
            );
        }
        if let Some(c) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            return fail(
                "key name",
                format!("may contain only letters, digits and '-', not {c:?}"),
            );
        }
        if self.capabilities.is_empty() {
            return fail("capabilities", "a key needs at least one capability".into());
        }
        if let Some(s) = self.valid_duration_in_seconds {
            if !(1..KEY_DURATION_LIMIT_SECONDS).contains(&s) {
                return fail(
                    "valid duration",
                    format!(
                        "{s} seconds is outside 1..{KEY_DURATION_LIMIT_SECONDS} (under 1000 days)"
                    ),
                );
            }
        }
        if self.bucket_ids.as_ref().is_some_and(Vec::is_empty) {
            return fail(
                "bucket ids",
                "a bucket restriction needs at least one bucket".into(),
            );
        }
        Ok(())
    }
}

impl Operation for CreateKey {
    type Output = CreatedKey;
    const NAME: &'static str = "b2_create_key";

    fn request(&self, session: &Session) -> Result<Request<Bytes>, Error> {
        self.validate()?;
        json_request(
            session,
            Self::NAME,
            &CreateKeyBody {
                account_id: &session.account_id,
                capabilities: &self.capabilities,
                key_name: &self.key_name,
                valid_duration_in_seconds: self.valid_duration_in_seconds,
                bucket_ids: self.bucket_ids.as_deref(),
                name_prefix: self.name_prefix.as_deref(),
            },
        )
    }

    fn parse(&self, response: Response<Bytes>) -> Result<CreatedKey, Error> {
        parse_secret_json(Self::NAME, response)
    }

    fn retry_class(&self) -> RetryClass {
        RetryClass::NonIdempotent
    }
}

/// `b2_delete_key`: deletes an application key.
///
/// <https://www.backblaze.com/apidocs/b2-delete-key>. Needs `deleteKeys`. Returns the deleted
/// key's description.
///
/// Retried like any idempotent call. When a reply is lost after B2 deleted the key, the retry
/// reports the key as missing (`400 bad_request`), although the deletion succeeded.
///
/// # Errors
///
/// `400 bad_request` (for example no such key), `401 unauthorized`, `401 bad_auth_token`,
/// `401 expired_auth_token`.
#[derive(Debug, Clone)]
pub struct DeleteKey {
    application_key_id: ApplicationKeyId,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DeleteKeyBody<'a> {
    application_key_id: &'a ApplicationKeyId,
}

impl DeleteKey {
    /// Deletes the key `application_key_id`.
    pub fn new(application_key_id: ApplicationKeyId) -> Self {
        Self { application_key_id }
    }
}

impl Operation for DeleteKey {
    type Output = Key;
    const NAME: &'static str = "b2_delete_key";

    fn request(&self, session: &Session) -> Result<Request<Bytes>, Error> {
        json_request(
            session,
            Self::NAME,
            &DeleteKeyBody {
                application_key_id: &self.application_key_id,
            },
        )
    }

    fn parse(&self, response: Response<Bytes>) -> Result<Key, Error> {
        parse_json(Self::NAME, response)
    }
}

/// `b2_list_keys`: lists the account's application keys, a page at a time.
///
/// <https://www.backblaze.com/apidocs/b2-list-keys>. Needs `listKeys`. A page holds up to
/// `maxKeyCount` keys (1 to 10,000; B2's default is 100; billed per 1000 returned);
/// [`KeyList::next_application_key_id`] is where the next page starts. As a
/// [`Paginated`] operation it can be driven by a pager.
///
/// # Errors
///
/// `400 bad_request` (for example `maxKeyCount` out of range), `401 unauthorized`,
/// `401 bad_auth_token`, `401 expired_auth_token`.
///
/// ```
/// use b2_proto::{ApplicationKeyId, ops::{ListKeys, Operation, Paginated}};
/// # let session = b2_proto::Session::new(b2_proto::AccountId::new("acct"), b2_proto::AuthToken::new("t"), "https://api", "https://f");
///
/// let mut op = ListKeys::new().with_max_key_count(1000);
/// op.set_cursor(Some(ApplicationKeyId::new("0014ab")));
/// let body: serde_json::Value = serde_json::from_slice(op.request(&session)?.body()).unwrap();
/// assert_eq!(body["startApplicationKeyId"], "0014ab");
/// # Ok::<(), b2_proto::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct ListKeys {
    max_key_count: Option<u32>,
    start_application_key_id: Option<ApplicationKeyId>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListKeysBody<'a> {
    account_id: &'a AccountId,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_key_count: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    start_application_key_id: Option<&'a ApplicationKeyId>,
}

impl ListKeys {
    /// Lists from the first key, B2's default page size.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks for up to `count` keys per page (1 to 10,000).
    pub fn with_max_key_count(mut self, count: u32) -> Self {
        self.max_key_count = Some(count);
        self
    }

    /// Starts the listing at this key id (a `nextApplicationKeyId` from an earlier page).
    pub fn with_start_application_key_id(mut self, id: ApplicationKeyId) -> Self {
        self.start_application_key_id = Some(id);
        self
    }
}

impl Operation for ListKeys {
    type Output = KeyList;
    const NAME: &'static str = "b2_list_keys";

    fn request(&self, session: &Session) -> Result<Request<Bytes>, Error> {
        if let Some(n) = self.max_key_count {
            if !(1..=MAX_KEY_COUNT).contains(&n) {
                return Err(InvalidInput::Argument {
                    what: "max key count",
                    reason: format!("{n} is outside 1..={MAX_KEY_COUNT}"),
                }
                .into());
            }
        }
        json_request(
            session,
            Self::NAME,
            &ListKeysBody {
                account_id: &session.account_id,
                max_key_count: self.max_key_count,
                start_application_key_id: self.start_application_key_id.as_ref(),
            },
        )
    }

    fn parse(&self, response: Response<Bytes>) -> Result<KeyList, Error> {
        parse_json(Self::NAME, response)
    }
}

impl Paginated for ListKeys {
    type Item = Key;
    type Cursor = ApplicationKeyId;

    fn set_cursor(&mut self, cursor: Option<ApplicationKeyId>) {
        self.start_application_key_id = cursor;
    }

    fn next_cursor(output: &KeyList) -> Option<ApplicationKeyId> {
        output.next_application_key_id.clone()
    }

    fn into_items(output: KeyList) -> Vec<Key> {
        output.keys
    }
}
