//! Bucket event notification rules: which events, under which prefix, go to which webhook.
//!
//! <https://www.backblaze.com/docs/cloud-storage-event-notifications-reference-guide>.
//! A webhook's signing secret is a [`SigningSecret`], never shown by `Debug`.

use serde::{Deserialize, Serialize};

use crate::error::InvalidInput;
use crate::macros::string_enum;
use crate::model::bucket::null_as_default;
use crate::secret::SigningSecret;
use crate::types::BucketId;

string_enum! {
    /// An event a notification rule can fire on.
    ///
    /// A `*` type covers every event of its category. B2 adds types over time; unknown ones
    /// are kept as [`EventType::Other`].
    /// <https://www.backblaze.com/docs/cloud-storage-event-notifications-reference-guide>
    pub enum EventType {
        /// Any object creation.
        ObjectCreatedAll = "b2:ObjectCreated:*",
        /// An upload (not a copy, replica or large file).
        ObjectCreatedUpload = "b2:ObjectCreated:Upload",
        /// A finished large file (not a replica).
        ObjectCreatedMultipartUpload = "b2:ObjectCreated:MultipartUpload",
        /// A copy.
        ObjectCreatedCopy = "b2:ObjectCreated:Copy",
        /// A replica made by Cloud Replication (not a large file).
        ObjectCreatedReplica = "b2:ObjectCreated:Replica",
        /// A large-file replica made by Cloud Replication.
        ObjectCreatedMultipartReplica = "b2:ObjectCreated:MultipartReplica",
        /// Any object deletion.
        ObjectDeletedAll = "b2:ObjectDeleted:*",
        /// A deletion by a call.
        ObjectDeletedDelete = "b2:ObjectDeleted:Delete",
        /// A deletion by a lifecycle rule.
        ObjectDeletedLifecycleRule = "b2:ObjectDeleted:LifecycleRule",
        /// Any hide marker creation.
        HideMarkerCreatedAll = "b2:HideMarkerCreated:*",
        /// A hide marker made by a call.
        HideMarkerCreatedHide = "b2:HideMarkerCreated:Hide",
        /// A hide marker made by a lifecycle rule.
        HideMarkerCreatedLifecycleRule = "b2:HideMarkerCreated:LifecycleRule",
    }
}

string_enum! {
    /// Where a notification rule sends its events.
    pub enum TargetType {
        /// An HTTPS POST to a URL.
        Webhook = "webhook",
    }
}

/// Most notification rules a bucket may have.
pub const MAX_NOTIFICATION_RULES: usize = 25;
/// Most events B2 puts in one webhook call.
pub const MAX_EVENTS_PER_BATCH: u8 = 50;
/// Length of a webhook signing secret, in characters.
pub const SIGNING_SECRET_LEN: usize = 32;

/// A header B2 adds to every webhook call of a rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CustomHeader {
    /// The header name.
    pub name: String,
    /// The header value.
    pub value: String,
}

impl CustomHeader {
    /// A header `name: value`.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// Where and how a rule delivers events.
///
/// ```
/// use b2_proto::model::TargetConfiguration;
/// use b2_proto::SigningSecret;
///
/// let target = TargetConfiguration::webhook("https://hooks.example.com/b2")
///     .with_signing_secret(SigningSecret::new("MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0"))
///     .with_custom_header("X-Source", "b2");
/// assert!(!format!("{target:?}").contains("MTIz"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct TargetConfiguration {
    /// The kind of target; `webhook` is the only one B2 offers.
    pub target_type: TargetType,
    /// The webhook URL (HTTPS only).
    #[serde(default, deserialize_with = "null_as_default")]
    pub url: String,
    /// Headers added to every call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_headers: Option<Vec<CustomHeader>>,
    /// The secret B2 signs each call's body with (HMAC-SHA256).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hmac_sha256_signing_secret: Option<SigningSecret>,
}

impl TargetConfiguration {
    /// A webhook at `url`, which must be `https://`.
    pub fn webhook(url: impl Into<String>) -> Self {
        Self {
            target_type: TargetType::Webhook,
            url: url.into(),
            custom_headers: None,
            hmac_sha256_signing_secret: None,
        }
    }

    /// Signs every call with `secret` (32 letters and digits).
    pub fn with_signing_secret(mut self, secret: SigningSecret) -> Self {
        self.hmac_sha256_signing_secret = Some(secret);
        self
    }

    /// Adds a header to every call.
    pub fn with_custom_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.custom_headers
            .get_or_insert_with(Vec::new)
            .push(CustomHeader::new(name, value));
        self
    }

    fn validate(&self, rule: &str) -> Result<(), InvalidInput> {
        let fail = |reason: String| {
            Err(InvalidInput::Argument {
                what: "notification rule",
                reason: format!("{rule:?}: {reason}"),
            })
        };
        if self.target_type == TargetType::Webhook
            && !self
                .url
                .get(..8)
                .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
        {
            return fail("the webhook URL must use https".into());
        }
        if let Some(secret) = &self.hmac_sha256_signing_secret {
            let s = secret.expose_secret();
            if s.len() != SIGNING_SECRET_LEN || !s.chars().all(|c| c.is_ascii_alphanumeric()) {
                // The secret itself is never quoted.
                return fail(format!(
                    "the signing secret must be {SIGNING_SECRET_LEN} letters and digits"
                ));
            }
        }
        if let Some(headers) = &self.custom_headers {
            if headers.iter().any(|h| h.name.is_empty()) {
                return fail("a custom header has an empty name".into());
            }
        }
        Ok(())
    }
}

/// A bucket event notification rule.
///
/// Rules: <https://www.backblaze.com/docs/cloud-storage-event-notifications-reference-guide>.
/// A bucket has at most 25; names are unique within the bucket; each rule needs at least one
/// event type; `maxEventsPerBatch` is 1 to 50 (B2's default is 1).
///
/// ```
/// use b2_proto::model::{EventType, NotificationRule, TargetConfiguration};
///
/// let rule = NotificationRule::new(
///     "uploads",
///     [EventType::ObjectCreatedAll],
///     TargetConfiguration::webhook("https://hooks.example.com/b2"),
/// )
/// .with_object_name_prefix("incoming/")
/// .with_max_events_per_batch(10);
/// assert!(rule.is_enabled);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct NotificationRule {
    /// The rule's name, unique within the bucket.
    pub name: String,
    /// The events the rule fires on.
    #[serde(default, deserialize_with = "null_as_default")]
    pub event_types: Vec<EventType>,
    /// Whether the rule is on.
    #[serde(default)]
    pub is_enabled: bool,
    /// The objects the rule covers: those whose names start with this.
    #[serde(default, deserialize_with = "null_as_default")]
    pub object_name_prefix: String,
    /// Where events go.
    pub target_configuration: TargetConfiguration,
    /// Most events per webhook call (1 to 50).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_events_per_batch: Option<u8>,
    /// Whether B2 suspended the rule (for example after failed deliveries). Reported by B2,
    /// never sent: [`SetBucketNotificationRules`](crate::ops::SetBucketNotificationRules)
    /// leaves it out of its request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_suspended: Option<bool>,
    /// Why B2 suspended the rule. Reported by B2, never sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspension_reason: Option<String>,
}

impl NotificationRule {
    /// An enabled rule named `name` sending `event_types` for every object to `target`.
    pub fn new(
        name: impl Into<String>,
        event_types: impl IntoIterator<Item = EventType>,
        target: TargetConfiguration,
    ) -> Self {
        Self {
            name: name.into(),
            event_types: event_types.into_iter().collect(),
            is_enabled: true,
            object_name_prefix: String::new(),
            target_configuration: target,
            max_events_per_batch: None,
            is_suspended: None,
            suspension_reason: None,
        }
    }

    /// Limits the rule to objects whose names start with `prefix`.
    pub fn with_object_name_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.object_name_prefix = prefix.into();
        self
    }

    /// Turns the rule on or off.
    pub fn with_enabled(mut self, enabled: bool) -> Self {
        self.is_enabled = enabled;
        self
    }

    /// Lets B2 batch up to `max` events (1 to 50) per webhook call.
    pub fn with_max_events_per_batch(mut self, max: u8) -> Self {
        self.max_events_per_batch = Some(max);
        self
    }

    /// Checks the rule on its own.
    ///
    /// # Errors
    ///
    /// [`InvalidInput::Argument`] for an empty name, no event types, a batch size outside
    /// 1..=50, a non-HTTPS webhook, or a signing secret that is not 32 letters and digits.
    pub fn validate(&self) -> Result<(), InvalidInput> {
        let fail = |reason: String| {
            Err(InvalidInput::Argument {
                what: "notification rule",
                reason: format!("{:?}: {reason}", self.name),
            })
        };
        if self.name.is_empty() {
            return fail("the name is empty".into());
        }
        if self.event_types.is_empty() {
            return fail("needs at least one event type".into());
        }
        if let Some(n) = self.max_events_per_batch {
            if !(1..=MAX_EVENTS_PER_BATCH).contains(&n) {
                return fail(format!(
                    "maxEventsPerBatch {n} is outside 1..={MAX_EVENTS_PER_BATCH}"
                ));
            }
        }
        self.target_configuration.validate(&self.name)
    }
}

/// Checks a bucket's whole set of rules: each rule, the count, and unique names.
pub(crate) fn validate_notification_rules(rules: &[NotificationRule]) -> Result<(), InvalidInput> {
    if rules.len() > MAX_NOTIFICATION_RULES {
        return Err(InvalidInput::Argument {
            what: "notification rules",
            reason: format!(
                "{} rules, over the limit of {MAX_NOTIFICATION_RULES}",
                rules.len()
            ),
        });
    }
    for (i, rule) in rules.iter().enumerate() {
        rule.validate()?;
        if rules[..i].iter().any(|r| r.name == rule.name) {
            return Err(InvalidInput::Argument {
                what: "notification rules",
                reason: format!("name {:?} is used twice", rule.name),
            });
        }
    }
    Ok(())
}

/// A bucket's notification rules, as B2 returns them (sorted by name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct BucketNotificationRules {
    /// The bucket.
    pub bucket_id: BucketId,
    /// Its rules.
    #[serde(default, deserialize_with = "null_as_default")]
    pub event_notification_rules: Vec<NotificationRule>,
}
