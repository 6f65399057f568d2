//! `b2_create_bucket`, `b2_delete_bucket`, `b2_list_buckets` and `b2_update_bucket`.
//!
//! Every call takes the account id from the [`Session`]. Bucket settings given to
//! [`CreateBucket`] and [`UpdateBucket`] are checked against B2's documented limits when the
//! request is built, so a bad setting fails with [`InvalidInput`] and nothing is sent.

use std::collections::BTreeMap;

use bytes::Bytes;
use http::{Request, Response};
use serde::{Deserialize, Serialize};

use crate::error::{Error, InvalidInput};
use crate::model::bucket::{
    Bucket, BucketEncryption, BucketType, CorsRule, DefaultRetention, LifecycleRule,
    validate_bucket_info, validate_cors_rules, validate_lifecycle_rules,
};
use crate::ops::{Operation, RetryClass, json_request, parse_json};
use crate::session::Session;
use crate::types::{AccountId, BucketId, BucketName};

/// The settings both `b2_create_bucket` and `b2_update_bucket` accept.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct Settings {
    #[serde(skip_serializing_if = "Option::is_none")]
    bucket_info: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cors_rules: Option<Vec<CorsRule>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lifecycle_rules: Option<Vec<LifecycleRule>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    file_lock_enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    default_server_side_encryption: Option<BucketEncryption>,
    #[serde(skip_serializing_if = "Option::is_none")]
    replication_configuration: Option<serde_json::Value>,
}

impl Settings {
    fn validate(&self) -> Result<(), InvalidInput> {
        if let Some(info) = &self.bucket_info {
            validate_bucket_info(info)?;
        }
        if let Some(rules) = &self.cors_rules {
            validate_cors_rules(rules)?;
        }
        if let Some(rules) = &self.lifecycle_rules {
            validate_lifecycle_rules(rules)?;
        }
        if let Some(config) = &self.replication_configuration {
            if !config.is_object() {
                return Err(InvalidInput::Argument {
                    what: "replication configuration",
                    reason: "must be a JSON object".into(),
                });
            }
        }
        Ok(())
    }
}

fn check_settable(bucket_type: &BucketType) -> Result<(), InvalidInput> {
    if bucket_type.is_settable() {
        Ok(())
    } else {
        Err(InvalidInput::Argument {
            what: "bucket type",
            reason: format!("{bucket_type} cannot be set; use allPublic or allPrivate"),
        })
    }
}

/// Generates the `with_*` setters shared by [`CreateBucket`] and [`UpdateBucket`].
macro_rules! settings_setters {
    () => {
        /// Sets the bucket's own information (at most 10 entries), replacing any it had.
        ///
        /// `Cache-Control` here sets a default for every file in the bucket.
        pub fn with_bucket_info(mut self, info: BTreeMap<String, String>) -> Self {
            self.settings.bucket_info = Some(info);
            self
        }

        /// Sets the CORS rules, replacing any the bucket had (an empty list removes them).
        pub fn with_cors_rules(mut self, rules: Vec<CorsRule>) -> Self {
            self.settings.cors_rules = Some(rules);
            self
        }

        /// Sets the lifecycle rules, replacing any the bucket had (an empty list removes them).
        pub fn with_lifecycle_rules(mut self, rules: Vec<LifecycleRule>) -> Self {
            self.settings.lifecycle_rules = Some(rules);
            self
        }

        /// Enables Object Lock (needs `writeBucketRetentions`; it cannot be disabled later).
        pub fn with_file_lock_enabled(mut self, enabled: bool) -> Self {
            self.settings.file_lock_enabled = Some(enabled);
            self
        }

        /// Sets the default encryption of new files (needs `writeBucketEncryption`).
        pub fn with_default_server_side_encryption(mut self, encryption: BucketEncryption) -> Self {
            self.settings.default_server_side_encryption = Some(encryption);
            self
        }

        /// Sets the Cloud Replication configuration, given as B2's JSON object
        /// (`asReplicationSource` and/or `asReplicationDestination`).
        /// <https://www.backblaze.com/docs/cloud-storage-create-a-cloud-replication-rule-with-the-native-api>
        pub fn with_replication_configuration(mut self, config: serde_json::Value) -> Self {
            self.settings.replication_configuration = Some(config);
            self
        }
    };
}

/// `b2_create_bucket`: creates a bucket.
///
/// <https://www.backblaze.com/apidocs/b2-create-bucket>. Needs `writeBuckets` (and
/// `writeBucketEncryption` / `writeBucketRetentions` for those settings). Bucket names are
/// global across all B2 accounts; an account has at most 100 buckets unless raised.
///
/// Not idempotent: a lost reply is retried only when B2 certainly did not act.
///
/// # Errors
///
/// `400 duplicate_bucket_name` (the name is taken, by any account), `400 too_many_buckets`,
/// `400 bad_request` (an invalid setting), `401 unauthorized` (missing capability),
/// `401 bad_auth_token`, `401 expired_auth_token`.
///
/// ```
/// use b2_proto::{BucketName, ops::{CreateBucket, Operation}, model::{BucketType, LifecycleRule}};
/// # let session = b2_proto::Session::new(b2_proto::AccountId::new("acct"), b2_proto::AuthToken::new("t"), "https://api001.backblazeb2.com", "https://f001.backblazeb2.com");
///
/// let op = CreateBucket::new(BucketName::new("my-photos-2024")?, BucketType::AllPrivate)
///     .with_lifecycle_rules(vec![LifecycleRule::new("").with_days_from_hiding_to_deleting(30)]);
/// let request = op.request(&session)?;
/// assert_eq!(request.uri(), "https://api001.backblazeb2.com/b2api/v4/b2_create_bucket");
/// # Ok::<(), b2_proto::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct CreateBucket {
    bucket_name: BucketName,
    bucket_type: BucketType,
    settings: Settings,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CreateBucketBody<'a> {
    account_id: &'a AccountId,
    bucket_name: &'a BucketName,
    bucket_type: &'a BucketType,
    #[serde(flatten)]
    settings: &'a Settings,
}

impl CreateBucket {
    /// Creates `bucket_name` as `bucket_type` (`allPublic` or `allPrivate`).
    pub fn new(bucket_name: BucketName, bucket_type: BucketType) -> Self {
        Self {
            bucket_name,
            bucket_type,
            settings: Settings::default(),
        }
    }

    settings_setters!();
}

impl Operation for CreateBucket {
    type Output = Bucket;
    const NAME: &'static str = "b2_create_bucket";

    fn request(&self, session: &Session) -> Result<Request<Bytes>, Error> {
        check_settable(&self.bucket_type)?;
        self.settings.validate()?;
        json_request(
            session,
            Self::NAME,
            &CreateBucketBody {
                account_id: &session.account_id,
                bucket_name: &self.bucket_name,
                bucket_type: &self.bucket_type,
                settings: &self.settings,
            },
        )
    }

    fn parse(&self, response: Response<Bytes>) -> Result<Bucket, Error> {
        parse_json(Self::NAME, response)
    }

    fn retry_class(&self) -> RetryClass {
        RetryClass::NonIdempotent
    }
}

/// `b2_delete_bucket`: deletes an empty bucket.
///
/// <https://www.backblaze.com/apidocs/b2-delete-bucket>. Needs `deleteBuckets`. The bucket
/// must hold no file versions at all (hidden versions and unfinished large files included).
/// Returns the bucket as it was.
///
/// Retried like any idempotent call. When a reply is lost after B2 deleted the bucket, the
/// retry reports the bucket as missing (`400 bad_request`), although the deletion succeeded.
///
/// # Errors
///
/// `400 cannot_delete_non_empty_bucket`, `400 bad_request` (for example no such bucket),
/// `401 unauthorized`, `401 bad_auth_token`, `401 expired_auth_token`.
#[derive(Debug, Clone)]
pub struct DeleteBucket {
    bucket_id: BucketId,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DeleteBucketBody<'a> {
    account_id: &'a AccountId,
    bucket_id: &'a BucketId,
}

impl DeleteBucket {
    /// Deletes the bucket `bucket_id`.
    pub fn new(bucket_id: BucketId) -> Self {
        Self { bucket_id }
    }
}

impl Operation for DeleteBucket {
    type Output = Bucket;
    const NAME: &'static str = "b2_delete_bucket";

    fn request(&self, session: &Session) -> Result<Request<Bytes>, Error> {
        json_request(
            session,
            Self::NAME,
            &DeleteBucketBody {
                account_id: &session.account_id,
                bucket_id: &self.bucket_id,
            },
        )
    }

    fn parse(&self, response: Response<Bytes>) -> Result<Bucket, Error> {
        parse_json(Self::NAME, response)
    }
}

/// `b2_list_buckets`: lists the account's buckets, optionally filtered.
///
/// <https://www.backblaze.com/apidocs/b2-list-buckets>. Needs `listBuckets`. A key restricted
/// to buckets must name one with [`with_bucket_id`](Self::with_bucket_id) or
/// [`with_bucket_name`](Self::with_bucket_name). Without a type filter B2 lists `allPublic`,
/// `allPrivate` and `snapshot` buckets; [`with_all_bucket_types`](Self::with_all_bucket_types)
/// lists every type. There is no paging: all matching buckets come in one reply.
///
/// # Errors
///
/// `400 bad_request` (for example an unknown bucket type), `401 unauthorized`,
/// `401 bad_auth_token`, `401 expired_auth_token`.
///
/// ```
/// use b2_proto::{BucketName, ops::{ListBuckets, Operation}};
/// # let session = b2_proto::Session::new(b2_proto::AccountId::new("acct"), b2_proto::AuthToken::new("t"), "https://api", "https://f");
///
/// let op = ListBuckets::new().with_bucket_name(BucketName::new("my-photos-2024")?);
/// let body: serde_json::Value = serde_json::from_slice(op.request(&session)?.body()).unwrap();
/// assert_eq!(body["bucketName"], "my-photos-2024");
/// # Ok::<(), b2_proto::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct ListBuckets {
    bucket_id: Option<BucketId>,
    bucket_name: Option<BucketName>,
    bucket_types: Option<Vec<String>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListBucketsBody<'a> {
    account_id: &'a AccountId,
    #[serde(skip_serializing_if = "Option::is_none")]
    bucket_id: Option<&'a BucketId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bucket_name: Option<&'a BucketName>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bucket_types: Option<&'a Vec<String>>,
}

#[derive(Deserialize)]
struct ListBucketsReply {
    #[serde(default)]
    buckets: Vec<Bucket>,
}

impl ListBuckets {
    /// Lists every bucket of the account that the key may see.
    pub fn new() -> Self {
        Self::default()
    }

    /// Lists only the bucket with this id (an empty list if there is none).
    pub fn with_bucket_id(mut self, bucket_id: BucketId) -> Self {
        self.bucket_id = Some(bucket_id);
        self
    }

    /// Lists only the bucket with this name (an empty list if there is none).
    pub fn with_bucket_name(mut self, bucket_name: BucketName) -> Self {
        self.bucket_name = Some(bucket_name);
        self
    }

    /// Lists only buckets of these types (at least one).
    pub fn with_bucket_types(mut self, types: impl IntoIterator<Item = BucketType>) -> Self {
        self.bucket_types = Some(types.into_iter().map(|t| t.as_str().to_owned()).collect());
        self
    }

    /// Lists buckets of every type (B2's `["all"]` filter).
    pub fn with_all_bucket_types(mut self) -> Self {
        self.bucket_types = Some(vec!["all".to_owned()]);
        self
    }
}

impl Operation for ListBuckets {
    type Output = Vec<Bucket>;
    const NAME: &'static str = "b2_list_buckets";

    fn request(&self, session: &Session) -> Result<Request<Bytes>, Error> {
        if let Some(types) = &self.bucket_types {
            let reason = if types.is_empty() {
                Some("the filter is empty; give at least one type")
            } else if types.len() > 1 && types.iter().any(|t| t == "all") {
                Some("\"all\" cannot be combined with other types")
            } else {
                None
            };
            if let Some(reason) = reason {
                return Err(InvalidInput::Argument {
                    what: "bucket types",
                    reason: reason.into(),
                }
                .into());
            }
        }
        json_request(
            session,
            Self::NAME,
            &ListBucketsBody {
                account_id: &session.account_id,
                bucket_id: self.bucket_id.as_ref(),
                bucket_name: self.bucket_name.as_ref(),
                bucket_types: self.bucket_types.as_ref(),
            },
        )
    }

    fn parse(&self, response: Response<Bytes>) -> Result<Vec<Bucket>, Error> {
        parse_json::<ListBucketsReply>(Self::NAME, response).map(|r| r.buckets)
    }
}

/// `b2_update_bucket`: changes a bucket's type or settings.
///
/// <https://www.backblaze.com/apidocs/b2-update-bucket>. Needs `writeBuckets` (and the
/// encryption / retention / replication capabilities for those settings). Only the settings
/// given are changed; each one given replaces the bucket's whole previous value.
/// [`with_if_revision_is`](Self::with_if_revision_is) makes the update conditional on the
/// bucket's `revision`, so two writers cannot silently overwrite each other.
///
/// # Errors
///
/// `409 conflict` (the revision moved on: re-read the bucket and try again),
/// `400 bad_request` (an invalid setting, or no such bucket), `401 unauthorized`,
/// `401 bad_auth_token`, `401 expired_auth_token`.
///
/// ```
/// use b2_proto::{BucketId, ops::{UpdateBucket, Operation}, model::BucketType};
/// # let session = b2_proto::Session::new(b2_proto::AccountId::new("acct"), b2_proto::AuthToken::new("t"), "https://api", "https://f");
///
/// let op = UpdateBucket::new(BucketId::new("4a48fe8875c6214145260818"))
///     .with_bucket_type(BucketType::AllPublic)
///     .with_if_revision_is(3);
/// let body: serde_json::Value = serde_json::from_slice(op.request(&session)?.body()).unwrap();
/// assert_eq!(body["ifRevisionIs"], 3);
/// # Ok::<(), b2_proto::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct UpdateBucket {
    bucket_id: BucketId,
    bucket_type: Option<BucketType>,
    default_retention: Option<DefaultRetention>,
    if_revision_is: Option<u64>,
    settings: Settings,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UpdateBucketBody<'a> {
    account_id: &'a AccountId,
    bucket_id: &'a BucketId,
    #[serde(skip_serializing_if = "Option::is_none")]
    bucket_type: Option<&'a BucketType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    default_retention: Option<&'a DefaultRetention>,
    #[serde(skip_serializing_if = "Option::is_none")]
    if_revision_is: Option<u64>,
    #[serde(flatten)]
    settings: &'a Settings,
}

impl UpdateBucket {
    /// Updates the bucket `bucket_id`; set what to change with the `with_*` methods.
    pub fn new(bucket_id: BucketId) -> Self {
        Self {
            bucket_id,
            bucket_type: None,
            default_retention: None,
            if_revision_is: None,
            settings: Settings::default(),
        }
    }

    /// Makes the bucket `allPublic` or `allPrivate`.
    pub fn with_bucket_type(mut self, bucket_type: BucketType) -> Self {
        self.bucket_type = Some(bucket_type);
        self
    }

    /// Sets the retention of new files (Object Lock-enabled buckets; needs
    /// `writeBucketRetentions`). [`DefaultRetention::none`] removes it.
    pub fn with_default_retention(mut self, retention: DefaultRetention) -> Self {
        self.default_retention = Some(retention);
        self
    }

    /// Applies the update only if the bucket's `revision` is still `revision`.
    pub fn with_if_revision_is(mut self, revision: u64) -> Self {
        self.if_revision_is = Some(revision);
        self
    }

    settings_setters!();
}

impl Operation for UpdateBucket {
    type Output = Bucket;
    const NAME: &'static str = "b2_update_bucket";

    fn request(&self, session: &Session) -> Result<Request<Bytes>, Error> {
        if let Some(t) = &self.bucket_type {
            check_settable(t)?;
        }
        if let Some(r) = &self.default_retention {
            r.validate()?;
        }
        self.settings.validate()?;
        json_request(
            session,
            Self::NAME,
            &UpdateBucketBody {
                account_id: &session.account_id,
                bucket_id: &self.bucket_id,
                bucket_type: self.bucket_type.as_ref(),
                default_retention: self.default_retention.as_ref(),
                if_revision_is: self.if_revision_is,
                settings: &self.settings,
            },
        )
    }

    fn parse(&self, response: Response<Bytes>) -> Result<Bucket, Error> {
        parse_json(Self::NAME, response)
    }
}
