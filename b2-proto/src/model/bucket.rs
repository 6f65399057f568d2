//! Buckets and their settings: type, CORS rules, lifecycle rules, Object Lock and default
//! encryption.
//!
//! Values returned by B2 parse leniently (unknown fields ignored, unknown enum values kept).
//! Values sent to B2 are checked against B2's documented rules by the operation that sends
//! them ([`CreateBucket`](crate::ops::CreateBucket), [`UpdateBucket`](crate::ops::UpdateBucket)),
//! before any request is built.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::InvalidInput;
use crate::macros::string_enum;
use crate::model::file::{EncryptionInfo, Protected, RetentionMode};
use crate::types::{AccountId, BucketId, BucketName};

/// Reads a field B2 may send as `null` as its default (an empty list, map or string, zero).
pub(crate) fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

string_enum! {
    /// Who may download a bucket's files, or what kind of bucket it is.
    ///
    /// Only `allPublic` and `allPrivate` can be given when creating or updating a bucket; B2
    /// reports the other kinds for buckets it made itself.
    /// <https://www.backblaze.com/apidocs/b2-create-bucket>
    pub enum BucketType {
        /// Anybody may download the files.
        AllPublic = "allPublic",
        /// Downloading needs an authorization token.
        AllPrivate = "allPrivate",
        /// A private bucket holding snapshots made on the B2 web site.
        Snapshot = "snapshot",
        /// A bucket B2 restricts (for example one shared with another account).
        Restricted = "restricted",
        /// A bucket shared with this account.
        Shared = "shared",
    }
}

impl BucketType {
    /// True for the types a caller may set: `allPublic`, `allPrivate`, and values this version
    /// does not know (B2 may accept new ones).
    pub fn is_settable(&self) -> bool {
        matches!(self, Self::AllPublic | Self::AllPrivate | Self::Other(_))
    }
}

string_enum! {
    /// An operation a CORS rule may allow.
    ///
    /// <https://www.backblaze.com/docs/cloud-storage-cross-origin-resource-sharing-rules>
    pub enum CorsOperation {
        /// Native API download by name.
        DownloadFileByName = "b2_download_file_by_name",
        /// Native API download by id.
        DownloadFileById = "b2_download_file_by_id",
        /// Native API upload.
        UploadFile = "b2_upload_file",
        /// Native API part upload.
        UploadPart = "b2_upload_part",
        /// S3-compatible DELETE.
        S3Delete = "s3_delete",
        /// S3-compatible GET.
        S3Get = "s3_get",
        /// S3-compatible HEAD.
        S3Head = "s3_head",
        /// S3-compatible POST.
        S3Post = "s3_post",
        /// S3-compatible PUT.
        S3Put = "s3_put",
    }
}

/// Most CORS rules a bucket may have.
pub const MAX_CORS_RULES: usize = 100;
/// Longest preflight cache time a CORS rule may set: one day.
pub const MAX_CORS_MAX_AGE_SECONDS: u32 = 86_400;
/// Most lifecycle rules a bucket may have.
pub const MAX_LIFECYCLE_RULES: usize = 100;
/// Most bucket-info entries a bucket may carry.
pub const MAX_BUCKET_INFO_ENTRIES: usize = 10;

/// A CORS rule: which web origins may call which operations on the bucket's files.
///
/// Rules: <https://www.backblaze.com/docs/cloud-storage-cross-origin-resource-sharing-rules>.
/// Names are 6 to 63 letters, digits and `-`, unique within the bucket, not starting with
/// `b2-`; at least one origin and one operation; `*` as an origin must be the only one;
/// `maxAgeSeconds` is at most 86,400. [`CorsRule::validate`] checks these.
///
/// ```
/// use b2_proto::model::{CorsOperation, CorsRule};
///
/// let rule = CorsRule::new("downloadFromAnyHttps", ["https"], [CorsOperation::DownloadFileByName], 3600)
///     .with_expose_headers(["x-bz-content-sha1"]);
/// assert!(rule.validate().is_ok());
/// assert!(CorsRule::new("b2-mine", ["*"], [CorsOperation::S3Get], 0).validate().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CorsRule {
    /// The rule's name.
    pub cors_rule_name: String,
    /// Origins the rule covers, e.g. `https://www.example.com`, `https://*.example.com`,
    /// `https` (any HTTPS origin) or `*`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub allowed_origins: Vec<String>,
    /// Operations the rule allows.
    #[serde(default, deserialize_with = "null_as_default")]
    pub allowed_operations: Vec<CorsOperation>,
    /// Headers a preflight request may ask for (`x-bz-info-*` style wildcards allowed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_headers: Option<Vec<String>>,
    /// Response headers exposed to the page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expose_headers: Option<Vec<String>>,
    /// How long a browser may cache the preflight reply, in seconds.
    #[serde(default, deserialize_with = "null_as_default")]
    pub max_age_seconds: u32,
}

impl CorsRule {
    /// A rule allowing `operations` from `origins`, cached by browsers for `max_age_seconds`.
    pub fn new(
        name: impl Into<String>,
        origins: impl IntoIterator<Item = impl Into<String>>,
        operations: impl IntoIterator<Item = CorsOperation>,
        max_age_seconds: u32,
    ) -> Self {
        Self {
            cors_rule_name: name.into(),
            allowed_origins: origins.into_iter().map(Into::into).collect(),
            allowed_operations: operations.into_iter().collect(),
            allowed_headers: None,
            expose_headers: None,
            max_age_seconds,
        }
    }

    /// Sets the headers a preflight request may ask for.
    pub fn with_allowed_headers(
        mut self,
        headers: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.allowed_headers = Some(headers.into_iter().map(Into::into).collect());
        self
    }

    /// Sets the response headers exposed to the page.
    pub fn with_expose_headers(
        mut self,
        headers: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.expose_headers = Some(headers.into_iter().map(Into::into).collect());
        self
    }

    /// Checks the rule against B2's documented limits.
    ///
    /// # Errors
    ///
    /// [`InvalidInput::Argument`] naming the broken rule.
    pub fn validate(&self) -> Result<(), InvalidInput> {
        let fail = |reason: String| {
            Err(InvalidInput::Argument {
                what: "CORS rule",
                reason: format!("{:?} {reason}", self.cors_rule_name),
            })
        };
        let name = &self.cors_rule_name;
        if !(6..=63).contains(&name.len()) {
            return fail("name must be 6 to 63 characters long".into());
        }
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return fail("name may contain only letters, digits and '-'".into());
        }
        if name.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("b2-")) {
            return fail("name must not start with \"b2-\", which is reserved".into());
        }
        if self.allowed_origins.is_empty() {
            return fail("needs at least one allowed origin".into());
        }
        if self.allowed_origins.len() > 1 && self.allowed_origins.iter().any(|o| o == "*") {
            return fail("an origin of \"*\" must be the only one".into());
        }
        if self
            .allowed_origins
            .iter()
            .filter(|o| *o == "https")
            .count()
            > 1
        {
            return fail("may have at most one \"https\" origin".into());
        }
        if self.allowed_operations.is_empty() {
            return fail("needs at least one allowed operation".into());
        }
        if let Some(headers) = &self.allowed_headers {
            if headers.len() > 1 && headers.iter().any(|h| h == "*") {
                return fail("an allowed header of \"*\" must be the only one".into());
            }
        }
        if self.max_age_seconds > MAX_CORS_MAX_AGE_SECONDS {
            return fail(format!(
                "maxAgeSeconds {} is over the limit of {MAX_CORS_MAX_AGE_SECONDS}",
                self.max_age_seconds
            ));
        }
        Ok(())
    }
}

/// Checks a bucket's whole set of CORS rules: each rule, the count, and unique names.
pub(crate) fn validate_cors_rules(rules: &[CorsRule]) -> Result<(), InvalidInput> {
    if rules.len() > MAX_CORS_RULES {
        return Err(InvalidInput::Argument {
            what: "CORS rules",
            reason: format!("{} rules, over the limit of {MAX_CORS_RULES}", rules.len()),
        });
    }
    for (i, rule) in rules.iter().enumerate() {
        rule.validate()?;
        if rules[..i]
            .iter()
            .any(|r| r.cors_rule_name == rule.cors_rule_name)
        {
            return Err(InvalidInput::Argument {
                what: "CORS rules",
                reason: format!("name {:?} is used twice", rule.cors_rule_name),
            });
        }
    }
    Ok(())
}

/// A lifecycle rule: hide, delete or cancel files under a prefix after some days.
///
/// Rules: <https://www.backblaze.com/docs/cloud-storage-lifecycle-rules>. A rule must set at
/// least one of its day counts, and each count it sets must be positive. No two rules of a
/// bucket may apply to the same file, so no rule's prefix may start with another's. An empty
/// prefix applies to every file in the bucket.
///
/// ```
/// use b2_proto::model::LifecycleRule;
///
/// // Keep old versions under backup/ for 30 days.
/// let rule = LifecycleRule::new("backup/").with_days_from_hiding_to_deleting(30);
/// assert!(rule.validate().is_ok());
/// assert!(LifecycleRule::new("logs/").validate().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct LifecycleRule {
    /// The files the rule applies to: those whose names start with this.
    #[serde(default, deserialize_with = "null_as_default")]
    pub file_name_prefix: String,
    /// Days after upload before a file version is hidden.
    #[serde(default)]
    pub days_from_uploading_to_hiding: Option<u32>,
    /// Days after a version is hidden (or superseded) before it is deleted.
    #[serde(default)]
    pub days_from_hiding_to_deleting: Option<u32>,
    /// Days after a large file was started before it is cancelled if still unfinished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days_from_starting_to_canceling_unfinished_large_files: Option<u32>,
}

impl LifecycleRule {
    /// A rule for files under `file_name_prefix`; set at least one day count.
    pub fn new(file_name_prefix: impl Into<String>) -> Self {
        Self {
            file_name_prefix: file_name_prefix.into(),
            days_from_uploading_to_hiding: None,
            days_from_hiding_to_deleting: None,
            days_from_starting_to_canceling_unfinished_large_files: None,
        }
    }

    /// Hides file versions this many days after upload.
    pub fn with_days_from_uploading_to_hiding(mut self, days: u32) -> Self {
        self.days_from_uploading_to_hiding = Some(days);
        self
    }

    /// Deletes file versions this many days after they are hidden.
    pub fn with_days_from_hiding_to_deleting(mut self, days: u32) -> Self {
        self.days_from_hiding_to_deleting = Some(days);
        self
    }

    /// Cancels large files left unfinished this many days after they were started.
    pub fn with_days_from_starting_to_canceling_unfinished_large_files(
        mut self,
        days: u32,
    ) -> Self {
        self.days_from_starting_to_canceling_unfinished_large_files = Some(days);
        self
    }

    /// Checks the rule on its own.
    ///
    /// # Errors
    ///
    /// [`InvalidInput::Argument`] when no day count is set or one is zero.
    pub fn validate(&self) -> Result<(), InvalidInput> {
        let counts = [
            self.days_from_uploading_to_hiding,
            self.days_from_hiding_to_deleting,
            self.days_from_starting_to_canceling_unfinished_large_files,
        ];
        let fail = |reason: &str| {
            Err(InvalidInput::Argument {
                what: "lifecycle rule",
                reason: format!("for prefix {:?} {reason}", self.file_name_prefix),
            })
        };
        if counts.iter().all(Option::is_none) {
            return fail("sets no day count, so it would do nothing");
        }
        if counts.contains(&Some(0)) {
            return fail("has a day count of 0; counts must be positive");
        }
        Ok(())
    }
}

/// Checks a bucket's whole set of lifecycle rules: each rule, the count, and that no two
/// rules apply to the same file.
pub(crate) fn validate_lifecycle_rules(rules: &[LifecycleRule]) -> Result<(), InvalidInput> {
    if rules.len() > MAX_LIFECYCLE_RULES {
        return Err(InvalidInput::Argument {
            what: "lifecycle rules",
            reason: format!(
                "{} rules, over the limit of {MAX_LIFECYCLE_RULES}",
                rules.len()
            ),
        });
    }
    for (i, rule) in rules.iter().enumerate() {
        rule.validate()?;
        let a = &rule.file_name_prefix;
        if let Some(other) = rules[..i].iter().find(|r| {
            let b = &r.file_name_prefix;
            a.starts_with(b.as_str()) || b.starts_with(a.as_str())
        }) {
            return Err(InvalidInput::Argument {
                what: "lifecycle rules",
                reason: format!(
                    "prefixes {:?} and {:?} overlap: two rules may not apply to the same file",
                    other.file_name_prefix, rule.file_name_prefix
                ),
            });
        }
    }
    Ok(())
}

/// Checks bucket info: at most 10 entries, no empty key.
pub(crate) fn validate_bucket_info(info: &BTreeMap<String, String>) -> Result<(), InvalidInput> {
    if info.len() > MAX_BUCKET_INFO_ENTRIES {
        return Err(InvalidInput::Argument {
            what: "bucket info",
            reason: format!(
                "{} entries, over the limit of {MAX_BUCKET_INFO_ENTRIES}",
                info.len()
            ),
        });
    }
    if info.contains_key("") {
        return Err(InvalidInput::Argument {
            what: "bucket info",
            reason: "a key is empty".into(),
        });
    }
    Ok(())
}

string_enum! {
    /// The unit of a bucket's default retention period.
    pub enum PeriodUnit {
        /// Days.
        Days = "days",
        /// Years.
        Years = "years",
    }
}

/// A retention period: a number of days or years.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct RetentionPeriod {
    /// How many units.
    pub duration: u32,
    /// Days or years.
    pub unit: PeriodUnit,
}

impl RetentionPeriod {
    /// `duration` days.
    pub fn days(duration: u32) -> Self {
        Self {
            duration,
            unit: PeriodUnit::Days,
        }
    }

    /// `duration` years.
    pub fn years(duration: u32) -> Self {
        Self {
            duration,
            unit: PeriodUnit::Years,
        }
    }
}

/// The retention B2 applies to new files of an Object Lock-enabled bucket.
///
/// <https://www.backblaze.com/docs/cloud-storage-enable-object-lock-with-the-native-api>
///
/// ```
/// use b2_proto::model::{DefaultRetention, RetentionPeriod};
/// use b2_proto::model::RetentionMode;
///
/// let keep = DefaultRetention::new(RetentionMode::Governance, RetentionPeriod::days(30));
/// assert_eq!(serde_json::to_string(&keep).unwrap(),
///     r#"{"mode":"governance","period":{"duration":30,"unit":"days"}}"#);
/// assert_eq!(serde_json::to_string(&DefaultRetention::none()).unwrap(), r#"{"mode":null}"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct DefaultRetention {
    /// The mode, or `None` for no default retention.
    #[serde(default)]
    pub mode: Option<RetentionMode>,
    /// How long, when a mode is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<RetentionPeriod>,
}

impl DefaultRetention {
    /// Retain new files in `mode` for `period`.
    pub fn new(mode: RetentionMode, period: RetentionPeriod) -> Self {
        Self {
            mode: Some(mode),
            period: Some(period),
        }
    }

    /// No default retention.
    pub fn none() -> Self {
        Self::default()
    }

    pub(crate) fn validate(&self) -> Result<(), InvalidInput> {
        let reason = match (&self.mode, &self.period) {
            (Some(_), None) => Some("a retention mode needs a period"),
            (None, Some(_)) => Some("a period needs a retention mode"),
            (Some(_), Some(p)) if p.duration == 0 => Some("the period must be positive"),
            _ => None,
        };
        reason.map_or(Ok(()), |r| {
            Err(InvalidInput::Argument {
                what: "default retention",
                reason: r.into(),
            })
        })
    }
}

/// A bucket's Object Lock settings, as B2 reports them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct FileLockConfiguration {
    /// Whether Object Lock is enabled (it cannot be disabled once enabled).
    #[serde(default)]
    pub is_file_lock_enabled: bool,
    /// The retention applied to new files.
    #[serde(default)]
    pub default_retention: Option<DefaultRetention>,
}

/// The default encryption to set on a bucket: none, or SSE-B2.
///
/// Buckets cannot default to SSE-C, whose key B2 never keeps.
/// <https://www.backblaze.com/docs/cloud-storage-server-side-encryption>
///
/// ```
/// use b2_proto::model::BucketEncryption;
///
/// assert_eq!(serde_json::to_string(&BucketEncryption::SseB2).unwrap(),
///     r#"{"mode":"SSE-B2","algorithm":"AES256"}"#);
/// assert_eq!(serde_json::to_string(&BucketEncryption::None).unwrap(), r#"{"mode":null}"#);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BucketEncryption {
    /// New files are not encrypted unless the upload asks for it.
    None,
    /// New files are encrypted with SSE-B2 (AES-256, keys managed by B2).
    SseB2,
}

impl Serialize for BucketEncryption {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        match self {
            Self::None => {
                let mut map = s.serialize_map(Some(1))?;
                map.serialize_entry("mode", &())?;
                map.end()
            }
            Self::SseB2 => {
                let mut map = s.serialize_map(Some(2))?;
                map.serialize_entry("mode", "SSE-B2")?;
                map.serialize_entry("algorithm", "AES256")?;
                map.end()
            }
        }
    }
}

/// A bucket, as B2 returns it from the bucket calls.
///
/// <https://www.backblaze.com/apidocs/b2-create-bucket> describes the fields. Settings that
/// need a capability to read (`fileLockConfiguration`, `defaultServerSideEncryption`,
/// `replicationConfiguration`) are wrapped in [`Protected`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Bucket {
    /// The account that owns the bucket.
    pub account_id: AccountId,
    /// The bucket's id.
    pub bucket_id: BucketId,
    /// The bucket's name.
    pub bucket_name: BucketName,
    /// Who may download its files.
    pub bucket_type: BucketType,
    /// The bucket's own information.
    #[serde(default, deserialize_with = "null_as_default")]
    pub bucket_info: BTreeMap<String, String>,
    /// CORS rules.
    #[serde(default, deserialize_with = "null_as_default")]
    pub cors_rules: Vec<CorsRule>,
    /// Lifecycle rules.
    #[serde(default, deserialize_with = "null_as_default")]
    pub lifecycle_rules: Vec<LifecycleRule>,
    /// Object Lock settings (readable with `readBucketRetentions`).
    #[serde(default)]
    pub file_lock_configuration: Option<Protected<FileLockConfiguration>>,
    /// Default server-side encryption (readable with `readBucketEncryption`).
    #[serde(default)]
    pub default_server_side_encryption: Option<Protected<EncryptionInfo>>,
    /// Replication configuration, as B2 sent it (readable with `readBucketReplications`).
    #[serde(default)]
    pub replication_configuration: Option<serde_json::Value>,
    /// Counter bumped by every change; pass it to `ifRevisionIs` for a conditional update.
    #[serde(default, deserialize_with = "null_as_default")]
    pub revision: u64,
    /// Options, such as `s3` when the bucket is reachable through the S3-compatible API.
    #[serde(default, deserialize_with = "null_as_default")]
    pub options: Vec<String>,
}

impl Bucket {
    /// Whether Object Lock is enabled, when the key may read it.
    pub fn is_file_lock_enabled(&self) -> Option<bool> {
        self.file_lock_configuration
            .as_ref()
            .and_then(|p| p.value.as_ref())
            .map(|c| c.is_file_lock_enabled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_lifecycle_prefixes_are_rejected() {
        let rules = [
            LifecycleRule::new("photos/").with_days_from_hiding_to_deleting(1),
            LifecycleRule::new("photos/kittens/").with_days_from_hiding_to_deleting(1),
        ];
        assert!(validate_lifecycle_rules(&rules).is_err());
        let rules = [
            LifecycleRule::new("photos/").with_days_from_hiding_to_deleting(1),
            LifecycleRule::new("videos/").with_days_from_uploading_to_hiding(7),
        ];
        assert!(validate_lifecycle_rules(&rules).is_ok());
        let zero = LifecycleRule::new("x/").with_days_from_hiding_to_deleting(0);
        assert!(zero.validate().is_err());
    }

    #[test]
    fn cors_rule_rules() {
        let ok = CorsRule::new("allowAnyHttps", ["https"], [CorsOperation::S3Get], 86_400);
        assert!(ok.validate().is_ok());
        let mut bad = ok.clone();
        bad.max_age_seconds = 86_401;
        assert!(bad.validate().is_err());
        let star = CorsRule::new("allowAnything", ["*", "https"], [CorsOperation::S3Get], 1);
        assert!(star.validate().is_err());
        let short = CorsRule::new("abc", ["*"], [CorsOperation::S3Get], 1);
        assert!(short.validate().is_err());
        let no_ops = CorsRule::new("no-operations", ["*"], [], 1);
        assert!(no_ops.validate().is_err());
        assert!(validate_cors_rules(&[ok.clone(), ok]).is_err());
    }

    #[test]
    fn settable_bucket_types() {
        assert!(BucketType::AllPrivate.is_settable());
        assert!(!BucketType::Snapshot.is_settable());
        assert_eq!(
            BucketType::from("brandNew"),
            BucketType::Other("brandNew".into())
        );
    }
}
