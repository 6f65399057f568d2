//! The values B2 returns: buckets, file versions, parts, keys and the like.
//!
//! Every struct ignores fields it does not know and every enum keeps values it does not
//! know (`Other`), since B2 may add both at any time.

pub mod file;

pub use file::{
    Action, CustomerKey, Encryption, EncryptionAlgorithm, EncryptionInfo, EncryptionMode,
    FileRetention, FileVersion, LegalHold, Part, Protected, RetentionMode,
};
