//! `b2_set_bucket_notification_rules` and `b2_get_bucket_notification_rules`.
//!
//! Event notifications must be enabled for the account by Backblaze support
//! (<https://www.backblaze.com/docs/cloud-storage-event-notifications-reference-guide>).

use bytes::Bytes;
use http::{Request, Response};
use serde::Serialize;

use crate::error::Error;
use crate::model::notification::{
    BucketNotificationRules, EventType, NotificationRule, TargetConfiguration,
    validate_notification_rules,
};
use crate::ops::{Operation, json_request, parse_secret_json};
use crate::session::Session;
use crate::types::BucketId;

/// `b2_set_bucket_notification_rules`: replaces all of a bucket's notification rules.
///
/// <https://www.backblaze.com/apidocs/b2-set-bucket-notification-rules>. Needs
/// `writeBucketNotifications`. The rules given replace every rule the bucket had; an empty
/// list removes them all. To change one rule, read the rules with
/// [`GetBucketNotificationRules`], edit them and send them all back. Checked before sending: at most 25 rules, unique names, at least one
/// event type each, `maxEventsPerBatch` 1 to 50, HTTPS webhooks, signing secrets of 32 letters
/// and digits. Returns the rules as B2 stored them.
///
/// # Errors
///
/// `400 event_type_categories` (a rule mixes event categories), `400 event_type_overlap`
/// (two rules overlap), `400 event_types_empty`, `400 event_type_invalid`, `400 bad_request`,
/// `401 unauthorized`, `401 bad_auth_token`, `401 expired_auth_token`.
///
/// ```
/// use b2_proto::{BucketId, ops::{SetBucketNotificationRules, Operation}};
/// use b2_proto::model::{EventType, NotificationRule, TargetConfiguration};
/// # let session = b2_proto::Session::new(b2_proto::AccountId::new("acct"), b2_proto::AuthToken::new("t"), "https://api", "https://f");
///
/// let rule = NotificationRule::new("uploads", [EventType::ObjectCreatedAll],
///     TargetConfiguration::webhook("https://hooks.example.com/b2"));
/// let op = SetBucketNotificationRules::new(BucketId::new("aea8c5bc362ae55070130333"), vec![rule]);
/// assert!(op.request(&session).is_ok());
/// let insecure = NotificationRule::new("plain", [EventType::ObjectCreatedAll],
///     TargetConfiguration::webhook("http://hooks.example.com/b2"));
/// assert!(SetBucketNotificationRules::new(BucketId::new("b"), vec![insecure]).request(&session).is_err());
/// ```
#[derive(Debug, Clone)]
pub struct SetBucketNotificationRules {
    bucket_id: BucketId,
    rules: Vec<NotificationRule>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SetBody<'a> {
    bucket_id: &'a BucketId,
    event_notification_rules: Vec<RuleRequest<'a>>,
}

/// A rule as sent: without the fields only B2 sets (`isSuspended`, `suspensionReason`), so
/// rules read with [`GetBucketNotificationRules`] can be edited and sent back as they are.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RuleRequest<'a> {
    name: &'a str,
    event_types: &'a [EventType],
    is_enabled: bool,
    object_name_prefix: &'a str,
    target_configuration: &'a TargetConfiguration,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_events_per_batch: Option<u8>,
}

impl<'a> From<&'a NotificationRule> for RuleRequest<'a> {
    fn from(rule: &'a NotificationRule) -> Self {
        Self {
            name: &rule.name,
            event_types: &rule.event_types,
            is_enabled: rule.is_enabled,
            object_name_prefix: &rule.object_name_prefix,
            target_configuration: &rule.target_configuration,
            max_events_per_batch: rule.max_events_per_batch,
        }
    }
}

impl SetBucketNotificationRules {
    /// Replaces the rules of `bucket_id` with `rules`.
    pub fn new(bucket_id: BucketId, rules: Vec<NotificationRule>) -> Self {
        Self { bucket_id, rules }
    }
}

impl Operation for SetBucketNotificationRules {
    type Output = BucketNotificationRules;
    const NAME: &'static str = "b2_set_bucket_notification_rules";

    fn request(&self, session: &Session) -> Result<Request<Bytes>, Error> {
        validate_notification_rules(&self.rules)?;
        json_request(
            session,
            Self::NAME,
            &SetBody {
                bucket_id: &self.bucket_id,
                event_notification_rules: self.rules.iter().map(RuleRequest::from).collect(),
            },
        )
    }

    /// Parses the stored rules; the reply may carry signing secrets, so a malformed one is
    /// never quoted in the error.
    fn parse(&self, response: Response<Bytes>) -> Result<BucketNotificationRules, Error> {
        parse_secret_json(Self::NAME, response)
    }
}

/// `b2_get_bucket_notification_rules`: reads a bucket's notification rules, sorted by name.
///
/// <https://www.backblaze.com/apidocs/b2-get-bucket-notification-rules>. Needs
/// `readBucketNotifications`.
///
/// # Errors
///
/// `400 bad_request` (for example no such bucket), `401 unauthorized`, `401 bad_auth_token`,
/// `401 expired_auth_token`.
#[derive(Debug, Clone)]
pub struct GetBucketNotificationRules {
    bucket_id: BucketId,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GetBody<'a> {
    bucket_id: &'a BucketId,
}

impl GetBucketNotificationRules {
    /// Reads the rules of `bucket_id`.
    pub fn new(bucket_id: BucketId) -> Self {
        Self { bucket_id }
    }
}

impl Operation for GetBucketNotificationRules {
    type Output = BucketNotificationRules;
    const NAME: &'static str = "b2_get_bucket_notification_rules";

    fn request(&self, session: &Session) -> Result<Request<Bytes>, Error> {
        json_request(
            session,
            Self::NAME,
            &GetBody {
                bucket_id: &self.bucket_id,
            },
        )
    }

    /// Parses the rules; the reply may carry signing secrets, so a malformed one is never
    /// quoted in the error.
    fn parse(&self, response: Response<Bytes>) -> Result<BucketNotificationRules, Error> {
        parse_secret_json(Self::NAME, response)
    }
}
