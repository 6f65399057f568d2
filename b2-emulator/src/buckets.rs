//! Buckets, keys and event-notification rules.

use std::collections::BTreeMap;

use b2_proto::{BucketName, ErrorCode};
use serde_json::{Map, Value, json};

use crate::core::{Caller, Ctx, Emulator, Params, R, bad_request, err, sse_json, unauthorized};
use crate::model::{Bucket, Key, Sse};

const BUCKET_TYPES: [&str; 2] = ["allPublic", "allPrivate"];

/// Parses a `defaultServerSideEncryption` / `serverSideEncryption` value for SSE-B2 or none.
pub(crate) fn parse_bucket_sse(v: &Value) -> R<Sse> {
    match v.get("mode").and_then(Value::as_str) {
        None | Some("none") => Ok(Sse::None),
        Some("SSE-B2") => match v.get("algorithm").and_then(Value::as_str) {
            None | Some("AES256") => Ok(Sse::B2),
            Some(a) => Err(bad_request(format!("unsupported algorithm {a}"))),
        },
        Some(m) => Err(bad_request(format!("mode {m} cannot be a bucket default"))),
    }
}

fn check_bucket_info(info: &Map<String, Value>) -> R<()> {
    if info.len() > 10 {
        return Err(bad_request("bucketInfo may hold at most 10 entries"));
    }
    if info.values().any(|v| !v.is_string()) {
        return Err(bad_request("bucketInfo values must be strings"));
    }
    Ok(())
}

fn check_default_retention(v: &Value) -> R<()> {
    match v.get("mode").and_then(Value::as_str) {
        None => Ok(()),
        Some("governance" | "compliance") => {
            let period = v
                .get("period")
                .ok_or_else(|| bad_request("defaultRetention needs a period"))?;
            let dur = period.get("duration").and_then(Value::as_u64).unwrap_or(0);
            let unit = period.get("unit").and_then(Value::as_str).unwrap_or("");
            if dur == 0 || !matches!(unit, "days" | "years") {
                return Err(bad_request(
                    "defaultRetention period must have a positive duration in days or years",
                ));
            }
            Ok(())
        }
        Some(m) => Err(bad_request(format!("invalid retention mode {m}"))),
    }
}

impl Emulator {
    pub(crate) fn bucket_json(&self, b: &Bucket, caller: &Caller) -> Value {
        let sse = if caller.can("readBucketEncryption") {
            json!({"isClientAuthorizedToRead": true, "value": match &b.default_sse {
                Sse::B2 => sse_json(&Sse::B2),
                _ => json!({"algorithm": null, "mode": "none"}),
            }})
        } else {
            json!({"isClientAuthorizedToRead": false, "value": null})
        };
        let lock = if caller.can("readBucketRetentions") {
            json!({"isClientAuthorizedToRead": true, "value": {
                "defaultRetention": if b.default_retention.is_null() {
                    json!({"mode": null, "period": null})
                } else { b.default_retention.clone() },
                "isFileLockEnabled": b.lock_enabled,
            }})
        } else {
            json!({"isClientAuthorizedToRead": false, "value": null})
        };
        let replication = if caller.can("readBucketReplications") {
            json!({"isClientAuthorizedToRead": true, "value": b.replication})
        } else {
            json!({"isClientAuthorizedToRead": false, "value": null})
        };
        json!({
            "accountId": self.config.account_id,
            "bucketId": b.id,
            "bucketName": b.name,
            "bucketType": b.kind,
            "bucketInfo": b.info,
            "corsRules": b.cors_rules,
            "lifecycleRules": b.lifecycle_rules,
            "fileLockConfiguration": lock,
            "defaultServerSideEncryption": sse,
            "replicationConfiguration": replication,
            "options": ["s3"],
            "revision": b.revision,
        })
    }

    pub(crate) fn create_bucket(&mut self, ctx: &Ctx<'_>, caller: &Caller, p: &Params) -> R<Value> {
        caller.require("writeBuckets")?;
        self.check_account(p)?;
        if caller.key.bucket_ids.is_some() {
            return Err(unauthorized(
                "a key restricted to buckets cannot create buckets",
            ));
        }
        let name = p.str("bucketName")?;
        BucketName::new(name.clone())
            .map_err(|e| bad_request(format!("Invalid bucketName: {e}")))?;
        let kind = p.str("bucketType")?;
        if !BUCKET_TYPES.contains(&kind.as_str()) {
            return Err(bad_request(format!("Invalid bucketType: {kind}")));
        }
        if self
            .state
            .buckets
            .values()
            .any(|b| b.name.eq_ignore_ascii_case(&name))
        {
            return Err(err(
                400,
                ErrorCode::DuplicateBucketName,
                "Bucket name is already in use.",
            ));
        }
        if self.state.buckets.len() >= self.config.max_buckets {
            return Err(err(
                400,
                ErrorCode::TooManyBuckets,
                format!("Account already has {} buckets", self.config.max_buckets),
            ));
        }
        let info = match p.get("bucketInfo") {
            None => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(_) => return Err(bad_request("bucketInfo must be an object")),
        };
        check_bucket_info(&info)?;
        let default_sse = match p.get("defaultServerSideEncryption") {
            None => Sse::None,
            Some(v) => {
                caller.require("writeBucketEncryption")?;
                parse_bucket_sse(v)?
            }
        };
        if let Some(v) = p.get("lifecycleRules") {
            crate::lifecycle::parse_rules(v)?;
        }
        let lock_enabled = p.opt_bool("fileLockEnabled")?.unwrap_or(false);
        if lock_enabled {
            caller.require("writeBucketRetentions")?;
        }
        let mut id = self.rng.hex(24);
        while self.state.buckets.contains_key(&id) {
            id = self.rng.hex(24);
        }
        let bucket = Bucket {
            id: id.clone(),
            name,
            kind,
            info,
            cors_rules: p.get("corsRules").cloned().unwrap_or_else(|| json!([])),
            lifecycle_rules: p
                .get("lifecycleRules")
                .cloned()
                .unwrap_or_else(|| json!([])),
            lifecycle_rules_since: ctx.now,
            lock_enabled,
            default_retention: Value::Null,
            default_sse,
            replication: p
                .get("replicationConfiguration")
                .cloned()
                .unwrap_or(Value::Null),
            revision: 1,
            notification_rules: Vec::new(),
            files: BTreeMap::new(),
        };
        let v = self.bucket_json(&bucket, caller);
        self.state.buckets.insert(id, bucket);
        self.dirty = true;
        Ok(v)
    }

    pub(crate) fn delete_bucket(&mut self, caller: &Caller, p: &Params) -> R<Value> {
        caller.require("deleteBuckets")?;
        self.check_account(p)?;
        let id = p.str("bucketId")?;
        caller.require_bucket(&id)?;
        let b = self.bucket(&id)?;
        if !b.files.is_empty() {
            return Err(err(
                400,
                ErrorCode::CannotDeleteNonEmptyBucket,
                "Cannot delete non-empty bucket",
            ));
        }
        let v = self.bucket_json(b, caller);
        self.state.buckets.remove(&id);
        self.dirty = true;
        Ok(v)
    }

    pub(crate) fn list_buckets(&mut self, caller: &Caller, p: &Params) -> R<Value> {
        if !caller.can("listBuckets") && !caller.can("listAllBucketNames") {
            caller.require("listBuckets")?;
        }
        self.check_account(p)?;
        let by_id = p.opt_str("bucketId")?;
        let by_name = p.opt_str("bucketName")?;
        let types: Vec<String> = match p.get("bucketTypes") {
            None => vec!["all".into()],
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            Some(Value::String(s)) => {
                let s = s.trim_start_matches('[').trim_end_matches(']');
                s.split(',')
                    .map(|t| t.trim().trim_matches('"').to_owned())
                    .collect()
            }
            Some(_) => return Err(bad_request("bucketTypes must be a list")),
        };
        let mut out = Vec::new();
        for b in self.state.buckets.values() {
            if by_id.as_ref().is_some_and(|id| *id != b.id)
                || by_name.as_ref().is_some_and(|n| *n != b.name)
            {
                continue;
            }
            if !types.iter().any(|t| t == "all" || *t == b.kind) {
                continue;
            }
            if !caller.bucket_allowed(&b.id) {
                if by_id.is_some() || by_name.is_some() {
                    return Err(unauthorized(
                        "application key is not allowed to list this bucket",
                    ));
                }
                continue;
            }
            out.push(b);
        }
        if caller.key.bucket_ids.is_some() && by_id.is_none() && by_name.is_none() {
            // https://www.backblaze.com/apidocs/b2-list-buckets: with a token restricted to
            // buckets, the request must name one (v2 and later), or it is denied.
            return Err(unauthorized(
                "application key is restricted to a bucket: pass bucketId or bucketName",
            ));
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        let list: Vec<Value> = out
            .into_iter()
            .map(|b| self.bucket_json(b, caller))
            .collect();
        Ok(json!({"buckets": list}))
    }

    pub(crate) fn update_bucket(&mut self, ctx: &Ctx<'_>, caller: &Caller, p: &Params) -> R<Value> {
        caller.require("writeBuckets")?;
        self.check_account(p)?;
        let id = p.str("bucketId")?;
        caller.require_bucket(&id)?;
        let cur = self.bucket(&id)?.settings();
        if let Some(rev) = p.opt_u64("ifRevisionIs")? {
            if rev != cur.revision {
                return Err(err(
                    409,
                    ErrorCode::Conflict,
                    format!(
                        "revision {rev} does not match the current revision {}",
                        cur.revision
                    ),
                ));
            }
        }
        let mut b = cur;
        if let Some(kind) = p.opt_str("bucketType")? {
            if !BUCKET_TYPES.contains(&kind.as_str()) {
                return Err(bad_request(format!("Invalid bucketType: {kind}")));
            }
            b.kind = kind;
        }
        if let Some(v) = p.get("bucketInfo") {
            let Value::Object(m) = v else {
                return Err(bad_request("bucketInfo must be an object"));
            };
            check_bucket_info(m)?;
            b.info = m.clone();
        }
        if let Some(v) = p.get("corsRules") {
            b.cors_rules = v.clone();
        }
        let rules_changed = if let Some(v) = p.get("lifecycleRules") {
            crate::lifecycle::parse_rules(v)?;
            b.lifecycle_rules = v.clone();
            b.lifecycle_rules_since = ctx.now;
            true
        } else {
            false
        };
        if let Some(v) = p.get("defaultServerSideEncryption") {
            caller.require("writeBucketEncryption")?;
            b.default_sse = parse_bucket_sse(v)?;
        }
        if let Some(enable) = p.opt_bool("fileLockEnabled")? {
            caller.require("writeBucketRetentions")?;
            if !enable && b.lock_enabled {
                return Err(err(
                    400,
                    ErrorCode::FileLockConflict,
                    "file lock cannot be disabled once enabled",
                ));
            }
            b.lock_enabled |= enable;
        }
        if let Some(v) = p.get("defaultRetention") {
            caller.require("writeBucketRetentions")?;
            if !b.lock_enabled {
                return Err(err(
                    400,
                    ErrorCode::FileLockConflict,
                    "file lock is not enabled on this bucket",
                ));
            }
            check_default_retention(v)?;
            b.default_retention = if v.get("mode").is_some_and(Value::is_null) {
                json!({"mode": null, "period": null})
            } else {
                v.clone()
            };
        }
        if let Some(v) = p.get("replicationConfiguration") {
            caller.require("writeBucketReplications")?;
            b.replication = v.clone();
        }
        b.revision += 1;
        let v = self.bucket_json(&b, caller);
        if let Some(old) = self.state.buckets.get_mut(&id) {
            b.files = std::mem::take(&mut old.files);
        }
        self.state.buckets.insert(id.clone(), b);
        if rules_changed {
            self.lifecycle_rules_changed(&id);
        }
        self.dirty = true;
        Ok(v)
    }

    // ----- keys -----

    fn key_json(&self, k: &Key, version: u8) -> Value {
        let mut v = json!({
            "accountId": self.config.account_id,
            "applicationKeyId": k.id,
            "capabilities": k.capabilities,
            "expirationTimestamp": k.expires,
            "keyName": k.name,
            "namePrefix": k.name_prefix,
            "options": ["s3"],
        });
        if version >= 4 {
            v["bucketIds"] = json!(k.bucket_ids);
        } else {
            v["bucketId"] = json!(k.bucket_ids.as_ref().and_then(|b| b.first()));
        }
        v
    }

    pub(crate) fn create_key(&mut self, ctx: &Ctx<'_>, caller: &Caller, p: &Params) -> R<Value> {
        caller.require("writeKeys")?;
        self.check_account(p)?;
        let caps: Vec<String> = match p.get("capabilities") {
            Some(Value::Array(a)) => a
                .iter()
                .map(|c| {
                    c.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| bad_request("capabilities must be strings"))
                })
                .collect::<R<_>>()?,
            Some(Value::String(s)) => s
                .split(',')
                .map(|c| {
                    c.trim()
                        .trim_matches(|c| c == '[' || c == ']' || c == '"')
                        .to_owned()
                })
                .collect(),
            _ => return Err(bad_request("required field capabilities is missing")),
        };
        if caps.is_empty() {
            return Err(bad_request("capabilities must not be empty"));
        }
        if let Some(c) = caps
            .iter()
            .find(|c| !crate::core::ALL_CAPABILITIES.contains(&c.as_str()))
        {
            return Err(bad_request(format!("unknown capability: {c}")));
        }
        let name = p.str("keyName")?;
        if name.is_empty()
            || name.chars().count() > 100
            || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(bad_request(
                "keyName must be 1 to 100 letters, digits and '-'",
            ));
        }
        let expires = match p.opt_u64("validDurationInSeconds")? {
            None => None,
            Some(s) if s == 0 || s > 86_400_000 => {
                return Err(bad_request(
                    "validDurationInSeconds must be between 1 and 86400000",
                ));
            }
            Some(s) => Some(ctx.now.saturating_add(s.saturating_mul(1000))),
        };
        let bucket_ids: Option<Vec<String>> = if ctx.version >= 4 {
            match p.get("bucketIds") {
                None => None,
                Some(Value::Array(a)) => Some(
                    a.iter()
                        .map(|v| {
                            v.as_str()
                                .map(str::to_owned)
                                .ok_or_else(|| bad_request("bucketIds must be strings"))
                        })
                        .collect::<R<_>>()?,
                ),
                Some(Value::String(s)) => Some(
                    s.split(',')
                        .map(|s| s.trim().to_owned())
                        .filter(|s| !s.is_empty())
                        .collect(),
                ),
                Some(_) => return Err(bad_request("bucketIds must be a list")),
            }
        } else {
            p.opt_str("bucketId")?.map(|b| vec![b])
        };
        if let Some(ids) = &bucket_ids {
            for id in ids {
                self.bucket(id)?;
                caller.require_bucket(id)?;
            }
        }
        let name_prefix = p.opt_str("namePrefix")?;
        if name_prefix.is_some() && bucket_ids.is_none() && ctx.version < 4 {
            return Err(bad_request("namePrefix requires bucketId"));
        }
        if let Some(cp) = &caller.key.name_prefix {
            if !name_prefix
                .as_deref()
                .unwrap_or("")
                .starts_with(cp.as_str())
            {
                return Err(unauthorized(
                    "the new key must be within this key's name prefix",
                ));
            }
        }
        let prefix = if ctx.version >= 4 { "005" } else { "004" };
        let mut id = format!("{prefix}{}", self.rng.hex(21));
        while self.state.keys.contains_key(&id) {
            id = format!("{prefix}{}", self.rng.hex(21));
        }
        let secret = format!("K005{}", self.rng.alnum(27));
        let key = Key {
            id: id.clone(),
            secret: secret.clone(),
            name,
            capabilities: caps,
            bucket_ids,
            name_prefix,
            expires,
            multi_bucket: ctx.version >= 4,
        };
        let mut v = self.key_json(&key, ctx.version);
        v["applicationKey"] = json!(secret);
        self.state.keys.insert(id, key);
        self.dirty = true;
        Ok(v)
    }

    pub(crate) fn delete_key(&mut self, ctx: &Ctx<'_>, caller: &Caller, p: &Params) -> R<Value> {
        caller.require("deleteKeys")?;
        let id = p.str("applicationKeyId")?;
        if id == self.config.key_id {
            return Err(bad_request("the master application key cannot be deleted"));
        }
        let key = self
            .state
            .keys
            .remove(&id)
            .ok_or_else(|| bad_request(format!("application key does not exist: {id}")))?;
        self.state.tokens.retain(|_, t| t.key_id != id);
        self.dirty = true;
        Ok(self.key_json(&key, ctx.version))
    }

    pub(crate) fn list_keys(&mut self, ctx: &Ctx<'_>, caller: &Caller, p: &Params) -> R<Value> {
        caller.require("listKeys")?;
        self.check_account(p)?;
        let max = p.count("maxKeyCount", 100, 10_000)?;
        let start = p.opt_str("startApplicationKeyId")?;
        let master = self.config.key_id.clone();
        let mut iter = self
            .state
            .keys
            .range(start.unwrap_or_default()..)
            .filter(|(id, k)| **id != master && (k.multi_bucket == (ctx.version >= 4)));
        let page: Vec<Value> = iter
            .by_ref()
            .take(max)
            .map(|(_, k)| self.key_json(k, ctx.version))
            .collect();
        let next = iter.next().map(|(id, _)| id.clone());
        Ok(json!({"keys": page, "nextApplicationKeyId": next}))
    }

    // ----- event notification rules -----

    pub(crate) fn set_notification_rules(&mut self, caller: &Caller, p: &Params) -> R<Value> {
        caller.require("writeBucketNotifications")?;
        let id = p.str("bucketId")?;
        caller.require_bucket(&id)?;
        self.bucket(&id)?;
        let Some(Value::Array(rules)) = p.get("eventNotificationRules") else {
            return Err(bad_request(
                "required field eventNotificationRules is missing",
            ));
        };
        if rules.len() > 25 {
            return Err(bad_request(
                "a bucket may have at most 25 event notification rules",
            ));
        }
        let mut out: Vec<Value> = Vec::new();
        for r in rules {
            let name = r
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| bad_request("rule name is missing"))?;
            if name.is_empty()
                || name.len() > 63
                || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            {
                return Err(bad_request(format!("invalid rule name {name:?}")));
            }
            if out.iter().any(|o| o["name"] == name) {
                return Err(bad_request(format!("duplicate rule name {name}")));
            }
            let types: Vec<String> = r
                .get("eventTypes")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            if types.is_empty() {
                return Err(err(
                    400,
                    ErrorCode::EventTypesEmpty,
                    "eventTypes must not be empty",
                ));
            }
            for t in &types {
                if !valid_event_type(t) {
                    return Err(err(
                        400,
                        ErrorCode::EventTypeInvalid,
                        format!("invalid event type {t}"),
                    ));
                }
            }
            for (i, a) in types.iter().enumerate() {
                for b in types.iter().skip(i + 1) {
                    if event_types_overlap(a, b) {
                        return Err(err(
                            400,
                            ErrorCode::EventTypeCategories,
                            format!("event types {a} and {b} overlap"),
                        ));
                    }
                }
            }
            let target = r
                .get("targetConfiguration")
                .cloned()
                .ok_or_else(|| bad_request("targetConfiguration is missing"))?;
            let url = target.get("url").and_then(Value::as_str).unwrap_or("");
            if !url.starts_with("https://") {
                return Err(bad_request("the target url must use https"));
            }
            let mut target = target;
            if target
                .get("hmacSha256SigningSecret")
                .is_none_or(Value::is_null)
            {
                target["hmacSha256SigningSecret"] = json!(self.rng.alnum(32));
            }
            if target.get("customHeaders").is_none() {
                target["customHeaders"] = Value::Null;
            }
            let batch = r
                .get("maxEventsPerBatch")
                .and_then(Value::as_u64)
                .unwrap_or(1);
            if !(1..=50).contains(&batch) {
                return Err(bad_request("maxEventsPerBatch must be between 1 and 50"));
            }
            let prefix = r
                .get("objectNamePrefix")
                .and_then(Value::as_str)
                .unwrap_or("");
            for o in &out {
                let op = o["objectNamePrefix"].as_str().unwrap_or("");
                if (op.starts_with(prefix) || prefix.starts_with(op))
                    && o["eventTypes"].as_array().is_some_and(|ot| {
                        ot.iter()
                            .filter_map(Value::as_str)
                            .any(|x| types.iter().any(|t| event_types_overlap(t, x)))
                    })
                {
                    return Err(err(
                        400,
                        ErrorCode::EventTypeOverlap,
                        format!(
                            "rule {name} overlaps rule {} in event types and name prefix",
                            o["name"]
                        ),
                    ));
                }
            }
            out.push(json!({
                "name": name,
                "eventTypes": types,
                "isEnabled": r.get("isEnabled").and_then(Value::as_bool).unwrap_or(true),
                "objectNamePrefix": prefix,
                "targetConfiguration": target,
                "maxEventsPerBatch": batch,
                "isSuspended": false,
                "suspensionReason": "",
            }));
        }
        out.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
        if let Some(b) = self.state.buckets.get_mut(&id) {
            b.notification_rules = out.clone();
        }
        self.dirty = true;
        Ok(json!({"bucketId": id, "eventNotificationRules": out}))
    }

    pub(crate) fn get_notification_rules(&mut self, caller: &Caller, p: &Params) -> R<Value> {
        caller.require("readBucketNotifications")?;
        let id = p.str("bucketId")?;
        caller.require_bucket(&id)?;
        let b = self.bucket(&id)?;
        Ok(json!({"bucketId": id, "eventNotificationRules": b.notification_rules}))
    }
}

const EVENT_TYPES: [&str; 13] = [
    "b2:ObjectCreated:*",
    "b2:ObjectCreated:Upload",
    "b2:ObjectCreated:MultipartUpload",
    "b2:ObjectCreated:Copy",
    "b2:ObjectCreated:Replica",
    "b2:ObjectCreated:MultipartReplica",
    "b2:ObjectDeleted:*",
    "b2:ObjectDeleted:Delete",
    "b2:ObjectDeleted:LifecycleRule",
    "b2:HideMarkerCreated:*",
    "b2:HideMarkerCreated:Hide",
    "b2:HideMarkerCreated:LifecycleRule",
    "b2:MultipartUploadCreated:*",
];

fn valid_event_type(t: &str) -> bool {
    EVENT_TYPES.contains(&t) || t == "b2:MultipartUploadCreated:LiveRead"
}

fn event_types_overlap(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    let cat = |t: &str| t.rsplit_once(':').map(|(c, s)| (c.to_owned(), s == "*"));
    match (cat(a), cat(b)) {
        (Some((ca, wa)), Some((cb, wb))) => ca == cb && (wa || wb),
        _ => false,
    }
}
