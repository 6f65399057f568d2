//! Large files: start, part URLs, parts (uploaded or copied), list, finish, cancel.

use std::collections::BTreeMap;

use b2_proto::ErrorCode;
use serde_json::{Value, json};

use crate::core::{Caller, Ctx, Emulator, Params, R, bad_request, err, sse_json};
use crate::files::{
    MAX_PART_SIZE, check_header_size, check_name, info_from_json, retention_from_json,
    sse_from_json,
};
use crate::model::{Action, FileRec, Part, UploadTarget};
use crate::store;

impl Emulator {
    fn unfinished(&self, id: &str) -> R<&FileRec> {
        self.state
            .file(id)
            .filter(|f| f.action == Action::Start)
            .ok_or_else(|| bad_request(format!("Invalid fileId: no unfinished large file {id}")))
    }

    pub(crate) fn start_large_file(
        &mut self,
        ctx: &Ctx<'_>,
        caller: &Caller,
        p: &Params,
    ) -> R<Value> {
        caller.require("writeFiles")?;
        let bucket_id = p.str("bucketId")?;
        caller.require_bucket(&bucket_id)?;
        let bucket = self.bucket(&bucket_id)?.settings();
        let name = p.str("fileName")?;
        check_name(&name)?;
        caller.require_name(&name)?;
        let ct = p.str("contentType")?;
        let ct = if ct == "b2/x-auto" {
            crate::files::guess_content_type(&name).to_owned()
        } else {
            ct
        };
        let info = info_from_json(p.get("fileInfo"))?;
        let sse = sse_from_json(p.get("serverSideEncryption"), &bucket.default_sse)?;
        let (mode, until) = retention_from_json(p.get("fileRetention"))?;
        let hold = p.opt_str("legalHold")?;
        let (retention, legal_hold) = self.lock_settings(
            &bucket_id,
            &caller.key,
            mode.as_deref(),
            until,
            hold.as_deref(),
            ctx.now,
        )?;
        check_header_size(
            &name,
            &info,
            sse != crate::model::Sse::None || bucket.lock_enabled,
        )?;
        let f = FileRec {
            id: self.new_file_id(&bucket_id, ctx.now),
            name,
            bucket_id,
            seq: self.next_seq(),
            action: Action::Start,
            content_type: ct,
            info,
            sha1: "none".into(),
            md5: None,
            len: 0,
            timestamp: ctx.now,
            retention,
            legal_hold,
            sse,
            segments: Vec::new(),
            parts: BTreeMap::new(),
        };
        let v = self.file_json(&f, Some(&caller.key));
        self.state.insert_file(f);
        self.dirty = true;
        Ok(v)
    }

    pub(crate) fn get_upload_part_url(
        &mut self,
        ctx: &Ctx<'_>,
        caller: &Caller,
        p: &Params,
    ) -> R<Value> {
        caller.require("writeFiles")?;
        let id = p.str("fileId")?;
        let f = self.unfinished(&id)?;
        caller.require_bucket(&f.bucket_id)?;
        caller.require_name(&f.name)?;
        let token =
            self.issue_upload_token(UploadTarget::LargeFile(id.clone()), &caller.key.id, ctx.now);
        let url = format!(
            "{}/b2api/v{}/b2_upload_part/{id}/c001_v0001000_t{}",
            self.config.base_url,
            ctx.version,
            self.rng.hex(4)
        );
        Ok(json!({"fileId": id, "uploadUrl": url, "authorizationToken": token}))
    }

    pub(crate) fn copy_part(&mut self, ctx: &Ctx<'_>, caller: &Caller, p: &Params) -> R<Value> {
        let (_src, segments, _) = self.copy_source(caller, p)?;
        caller.require("writeFiles")?;
        let large_id = p.str("largeFileId")?;
        let n = p
            .opt_u64("partNumber")?
            .ok_or_else(|| bad_request("required field partNumber is missing"))?;
        let number = u16::try_from(n)
            .ok()
            .filter(|n| (1..=10_000).contains(n))
            .ok_or_else(|| bad_request("partNumber must be from 1 to 10000"))?;
        let large = self.unfinished(&large_id)?;
        caller.require_bucket(&large.bucket_id)?;
        let dest_sse = sse_from_json(p.get("destinationServerSideEncryption"), &large.sse)?;
        if dest_sse != large.sse {
            return Err(bad_request(
                "destinationServerSideEncryption must match the large file's encryption",
            ));
        }
        let len = store::total_len(&segments);
        if len > MAX_PART_SIZE {
            return Err(bad_request("part is larger than 5000000000 bytes"));
        }
        let mut h = <sha1::Sha1 as sha1::Digest>::new();
        let mut r = store::ContentReader::new(segments.clone());
        loop {
            match r.next_chunk() {
                Ok(Some(c)) => sha1::Digest::update(&mut h, &c),
                Ok(None) => break,
                Err(e) => {
                    return Err(err(
                        500,
                        ErrorCode::InternalError,
                        format!("read failed: {e}"),
                    ));
                }
            }
        }
        let sha1: String = sha1::Digest::finalize(h)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let sse = sse_json(&large.sse);
        let part = Part {
            number,
            sha1: sha1.clone(),
            len,
            timestamp: ctx.now,
            segments,
        };
        if let Some(f) = self.state.file_mut(&large_id) {
            f.parts.insert(number, part);
        }
        self.dirty = true;
        Ok(json!({
            "fileId": large_id,
            "partNumber": number,
            "contentLength": len,
            "contentSha1": sha1,
            "serverSideEncryption": sse,
            "uploadTimestamp": ctx.now,
        }))
    }

    pub(crate) fn list_parts(&mut self, caller: &Caller, p: &Params) -> R<Value> {
        caller.require("writeFiles")?;
        let id = p.str("fileId")?;
        let f = self.unfinished(&id)?;
        caller.require_bucket(&f.bucket_id)?;
        let start = p.opt_u64("startPartNumber")?.unwrap_or(1);
        let start = u16::try_from(start)
            .ok()
            .filter(|n| (1..=10_000).contains(n))
            .ok_or_else(|| bad_request("startPartNumber must be from 1 to 10000"))?;
        let max = p.count("maxPartCount", 100, 1000)?;
        let sse = sse_json(&f.sse);
        let mut iter = f.parts.range(start..);
        let parts: Vec<Value> = iter
            .by_ref()
            .take(max)
            .map(|(_, part)| {
                json!({
                    "fileId": id,
                    "partNumber": part.number,
                    "contentLength": part.len,
                    "contentSha1": part.sha1,
                    "serverSideEncryption": sse,
                    "uploadTimestamp": part.timestamp,
                })
            })
            .collect();
        let next = iter.next().map(|(n, _)| *n);
        Ok(json!({"parts": parts, "nextPartNumber": next}))
    }

    pub(crate) fn finish_large_file(
        &mut self,
        _ctx: &Ctx<'_>,
        caller: &Caller,
        p: &Params,
    ) -> R<Value> {
        caller.require("writeFiles")?;
        let id = p.str("fileId")?;
        let shas: Vec<String> = match p.get("partSha1Array") {
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_ascii_lowercase)
                        .ok_or_else(|| bad_request("partSha1Array must hold strings"))
                })
                .collect::<R<_>>()?,
            Some(Value::String(s)) => s
                .trim_matches(|c| c == '[' || c == ']')
                .split(',')
                .map(|x| x.trim().trim_matches('"').to_ascii_lowercase())
                .filter(|x| !x.is_empty())
                .collect(),
            _ => return Err(bad_request("required field partSha1Array is missing")),
        };
        let f = self.unfinished(&id)?;
        caller.require_bucket(&f.bucket_id)?;
        if shas.is_empty() {
            return Err(bad_request("partSha1Array must not be empty"));
        }
        // Parts must be numbered 1..=n with no gaps, one SHA1 per part, in order.
        for (i, sha) in shas.iter().enumerate() {
            let n = u16::try_from(i + 1).map_err(|_| bad_request("too many parts"))?;
            let part = f.parts.get(&n).ok_or_else(|| {
                err(
                    400,
                    ErrorCode::MissingPart,
                    format!("Part number {n} has not been uploaded"),
                )
            })?;
            if part.sha1 != *sha {
                return Err(err(
                    400,
                    ErrorCode::PartSha1Mismatch,
                    format!(
                        "Part number {n} has SHA1 {} but partSha1Array gives {sha}",
                        part.sha1
                    ),
                ));
            }
        }
        if let Some((n, _)) = f.parts.iter().find(|(n, _)| usize::from(**n) > shas.len()) {
            return Err(bad_request(format!(
                "Part number {n} was uploaded but is not in partSha1Array"
            )));
        }
        let count = shas.len();
        for (n, part) in &f.parts {
            // https://www.backblaze.com/docs/cloud-storage-create-large-files-with-the-native-api:
            // parts are at least the minimum size, except the last, which is at least 1 byte.
            if part.len == 0 {
                return Err(bad_request(format!("Part number {n} is empty")));
            }
            if usize::from(*n) < count && part.len < self.config.min_part_size {
                return Err(bad_request(format!(
                    "Part number {n} is smaller than the minimum part size {}",
                    self.config.min_part_size
                )));
            }
        }
        let segments: Vec<_> = f
            .parts
            .values()
            .flat_map(|p| p.segments.iter().cloned())
            .collect();
        let len = store::total_len(&segments);
        let mut done = f.clone();
        done.action = Action::Upload;
        done.segments = segments;
        done.len = len;
        done.parts = BTreeMap::new();
        let v = self.file_json(&done, Some(&caller.key));
        if let Some(f) = self.state.file_mut(&id) {
            *f = done;
        }
        self.dirty = true;
        Ok(v)
    }

    pub(crate) fn cancel_large_file(&mut self, caller: &Caller, p: &Params) -> R<Value> {
        caller.require("writeFiles")?;
        let id = p.str("fileId")?;
        let f = self.unfinished(&id)?;
        caller.require_bucket(&f.bucket_id)?;
        let v = json!({
            "accountId": self.config.account_id,
            "bucketId": f.bucket_id,
            "fileId": id,
            "fileName": f.name,
        });
        self.state.remove_file(&id);
        self.dirty = true;
        Ok(v)
    }

    pub(crate) fn list_unfinished_large_files(&mut self, caller: &Caller, p: &Params) -> R<Value> {
        caller.require("listFiles")?;
        let bucket_id = p.str("bucketId")?;
        caller.require_bucket(&bucket_id)?;
        let prefix = p.opt_str("namePrefix")?.unwrap_or_default();
        if let Some(kp) = &caller.key.name_prefix {
            if !prefix.starts_with(kp.as_str()) {
                return Err(crate::core::unauthorized(format!(
                    "application key is restricted to names starting with {kp:?}: pass it as namePrefix"
                )));
            }
        }
        let max = p.count("maxFileCount", 100, 100)?;
        let start = p.opt_str("startFileId")?;
        let b = self.bucket(&bucket_id)?;
        let mut files: Vec<&FileRec> = b
            .files
            .values()
            .filter(|f| f.action == Action::Start && f.name.starts_with(prefix.as_str()))
            .collect();
        files.sort_by_key(|f| f.seq);
        let start_seq = match &start {
            None => 0,
            Some(s) => self
                .state
                .file(s)
                .map(|f| f.seq)
                .ok_or_else(|| bad_request(format!("Invalid startFileId: {s}")))?,
        };
        let mut iter = files.into_iter().filter(|f| f.seq >= start_seq);
        let page: Vec<Value> = iter
            .by_ref()
            .take(max)
            .map(|f| self.file_json(f, Some(&caller.key)))
            .collect();
        let next = iter.next().map(|f| f.id.clone());
        Ok(json!({"files": page, "nextFileId": next}))
    }
}
