//! The emulator's state: keys, tokens, buckets, file versions. Serializable for `--data-dir`.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::store::{Blob, Segment};

/// An application key (the master key is one too).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Key {
    pub(crate) id: String,
    pub(crate) secret: String,
    pub(crate) name: String,
    pub(crate) capabilities: Vec<String>,
    /// `None`: all buckets.
    pub(crate) bucket_ids: Option<Vec<String>>,
    pub(crate) name_prefix: Option<String>,
    pub(crate) expires: Option<u64>,
    /// Created by v4 `b2_create_key`: usable only with API version 4.
    pub(crate) multi_bucket: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AccountToken {
    pub(crate) key_id: String,
    pub(crate) expires: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum UploadTarget {
    Bucket(String),
    LargeFile(String),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct UploadToken {
    pub(crate) target: UploadTarget,
    pub(crate) key_id: String,
    pub(crate) expires: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct DownloadToken {
    pub(crate) bucket_id: String,
    pub(crate) prefix: String,
    pub(crate) expires: u64,
    /// `b2ContentDisposition` etc. baked into the token.
    pub(crate) overrides: BTreeMap<String, String>,
}

/// Server-side encryption of a stored file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Sse {
    None,
    B2,
    /// SSE-C: only the key's MD5 (base64) is kept.
    C {
        key_md5: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Action {
    Upload,
    Hide,
    Start,
}

impl Action {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Upload => "upload",
            Self::Hide => "hide",
            Self::Start => "start",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Retention {
    /// "governance" or "compliance".
    pub(crate) mode: String,
    pub(crate) until: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Part {
    pub(crate) number: u16,
    pub(crate) sha1: String,
    pub(crate) len: u64,
    pub(crate) timestamp: u64,
    #[serde(with = "segments_serde")]
    pub(crate) segments: Vec<Segment>,
}

/// One file version: an upload, a hide marker, or an unfinished large file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct FileRec {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) bucket_id: String,
    pub(crate) seq: u64,
    pub(crate) action: Action,
    pub(crate) content_type: String,
    pub(crate) info: BTreeMap<String, String>,
    /// As returned: 40 hex digits, `unverified:<hex>` or `none`.
    pub(crate) sha1: String,
    pub(crate) md5: Option<String>,
    pub(crate) len: u64,
    pub(crate) timestamp: u64,
    pub(crate) retention: Option<Retention>,
    pub(crate) legal_hold: Option<bool>,
    pub(crate) sse: Sse,
    #[serde(with = "segments_serde")]
    pub(crate) segments: Vec<Segment>,
    /// Parts of an unfinished large file.
    pub(crate) parts: BTreeMap<u16, Part>,
}

/// Files of a bucket in listing order: name (UTF-8 bytes), then newest first.
pub(crate) type FileKey = (String, Reverse<u64>);

/// Not `Clone`: a copy would copy every file record. [`Bucket::settings`] copies the rest.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Bucket {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) kind: String,
    pub(crate) info: serde_json::Map<String, Value>,
    pub(crate) cors_rules: Value,
    pub(crate) lifecycle_rules: Value,
    /// When `lifecycle_rules` were last set: nothing they do is dated earlier.
    #[serde(default)]
    pub(crate) lifecycle_rules_since: u64,
    pub(crate) lock_enabled: bool,
    /// `{"mode": .., "period": ..}`.
    pub(crate) default_retention: Value,
    pub(crate) default_sse: Sse,
    pub(crate) replication: Value,
    pub(crate) revision: u64,
    pub(crate) notification_rules: Vec<Value>,
    /// Kept in files of their own in a data directory (see `Emulator::persist`).
    #[serde(skip)]
    pub(crate) files: BTreeMap<FileKey, FileRec>,
}

impl Bucket {
    /// A copy of the bucket's settings without its files: cloning those would cost time in
    /// proportion to the bucket's size on every call that only reads a setting.
    pub(crate) fn settings(&self) -> Self {
        Self {
            id: self.id.clone(),
            name: self.name.clone(),
            kind: self.kind.clone(),
            info: self.info.clone(),
            cors_rules: self.cors_rules.clone(),
            lifecycle_rules: self.lifecycle_rules.clone(),
            lifecycle_rules_since: self.lifecycle_rules_since,
            lock_enabled: self.lock_enabled,
            default_retention: self.default_retention.clone(),
            default_sse: self.default_sse.clone(),
            replication: self.replication.clone(),
            revision: self.revision,
            notification_rules: self.notification_rules.clone(),
            files: BTreeMap::new(),
        }
    }
}

/// Everything the emulator remembers.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct State {
    pub(crate) account_id: String,
    pub(crate) master_key_id: String,
    pub(crate) keys: BTreeMap<String, Key>,
    pub(crate) tokens: HashMap<String, AccountToken>,
    pub(crate) upload_tokens: HashMap<String, UploadToken>,
    pub(crate) download_tokens: HashMap<String, DownloadToken>,
    pub(crate) buckets: BTreeMap<String, Bucket>,
    pub(crate) next_seq: u64,
    pub(crate) next_blob: u64,
    /// Added to the injected time (advanced through the control surface).
    pub(crate) clock_offset_ms: u64,
    /// Where the id and token generator stood, so a restarted emulator does not repeat ids.
    #[serde(default)]
    pub(crate) rng_position: Option<u64>,
    /// File id → (bucket id, listing key). Rebuilt on load.
    #[serde(skip)]
    pub(crate) file_index: HashMap<String, (String, FileKey)>,
    /// Files added, changed or removed since the metadata was last written.
    #[serde(skip)]
    pub(crate) dirty_files: HashSet<String>,
    /// Names (bucket id, file name) whose versions changed since lifecycle rules were last
    /// applied to them.
    #[serde(skip)]
    pub(crate) lifecycle_touched: HashSet<(String, String)>,
}

impl State {
    pub(crate) fn rebuild_index(&mut self) {
        self.file_index.clear();
        for (bid, b) in &self.buckets {
            for (k, f) in &b.files {
                self.file_index
                    .insert(f.id.clone(), (bid.clone(), k.clone()));
            }
        }
    }

    pub(crate) fn file(&self, id: &str) -> Option<&FileRec> {
        let (bid, key) = self.file_index.get(id)?;
        self.buckets.get(bid)?.files.get(key)
    }

    pub(crate) fn file_mut(&mut self, id: &str) -> Option<&mut FileRec> {
        self.dirty_files.insert(id.to_owned());
        let (bid, key) = self.file_index.get(id)?;
        self.lifecycle_touched.insert((bid.clone(), key.0.clone()));
        self.buckets.get_mut(bid)?.files.get_mut(key)
    }

    pub(crate) fn insert_file(&mut self, f: FileRec) {
        self.dirty_files.insert(f.id.clone());
        self.lifecycle_touched
            .insert((f.bucket_id.clone(), f.name.clone()));
        let key = (f.name.clone(), Reverse(f.seq));
        self.file_index
            .insert(f.id.clone(), (f.bucket_id.clone(), key.clone()));
        if let Some(b) = self.buckets.get_mut(&f.bucket_id) {
            b.files.insert(key, f);
        }
    }

    pub(crate) fn remove_file(&mut self, id: &str) -> Option<FileRec> {
        self.dirty_files.insert(id.to_owned());
        let (bid, key) = self.file_index.remove(id)?;
        self.lifecycle_touched.insert((bid.clone(), key.0.clone()));
        self.buckets.get_mut(&bid)?.files.remove(&key)
    }
}

thread_local! {
    /// Blob handles available while metadata is being loaded.
    pub(crate) static LOADING: RefCell<HashMap<u64, Arc<Blob>>> = RefCell::new(HashMap::new());
}

mod segments_serde {
    use super::*;
    use serde::de::Error as _;
    use serde::{Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(segs: &[Segment], s: S) -> Result<S::Ok, S::Error> {
        let v: Vec<(u64, u64, u64)> = segs.iter().map(|g| (g.blob.id, g.offset, g.len)).collect();
        v.serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Segment>, D::Error> {
        let v: Vec<(u64, u64, u64)> = Vec::deserialize(d)?;
        v.into_iter()
            .map(|(id, offset, len)| {
                let blob = LOADING
                    .with(|m| m.borrow().get(&id).cloned())
                    .ok_or_else(|| D::Error::custom(format!("blob {id:016x} is missing")))?;
                if offset.saturating_add(len) > blob.len {
                    return Err(D::Error::custom(format!("blob {id:016x} is truncated")));
                }
                Ok(Segment { blob, offset, len })
            })
            .collect()
    }
}
