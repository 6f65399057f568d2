//! The values B2 returns: buckets, file versions, parts, keys and the like.
//!
//! Every struct ignores fields it does not know and every enum keeps values it does not
//! know (`Other`), since B2 may add both at any time.

pub mod bucket;
pub mod file;
pub mod key;
pub mod notification;

pub use bucket::{
    Bucket, BucketEncryption, BucketType, CorsOperation, CorsRule, DefaultRetention,
    FileLockConfiguration, LifecycleRule, PeriodUnit, RetentionPeriod,
};
pub use file::{
    Action, CustomerKey, Encryption, EncryptionAlgorithm, EncryptionInfo, EncryptionMode,
    FileRetention, FileVersion, LegalHold, Part, Protected, RetentionMode,
};
pub use key::{CreatedKey, DownloadAuthorization, Key, KeyList};
pub use notification::{
    BucketNotificationRules, CustomHeader, EventType, NotificationRule, TargetConfiguration,
    TargetType,
};
