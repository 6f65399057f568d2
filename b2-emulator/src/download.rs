//! Downloads by id and by name, and download authorizations.

use std::collections::BTreeMap;

use b2_proto::ErrorCode;
use b2_proto::encoding::{decode, encode};
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode, header};
use serde_json::{Value, json};

use crate::core::{
    Caller, Ctx, Emulator, Params, R, bad_request, err, http_fault, status_fault, unauthorized,
};
use crate::faults::{FaultAction, HttpFault};
use crate::files::{check_read_key, parse_range, sse_c_md5};
use crate::model::{Action, DownloadToken, FileRec, Sse};
use crate::store::{self, ContentReader};

/// Query parameters that override response headers, and the headers they set.
const OVERRIDES: [(&str, &str); 6] = [
    ("b2ContentDisposition", "content-disposition"),
    ("b2ContentLanguage", "content-language"),
    ("b2Expires", "expires"),
    ("b2CacheControl", "cache-control"),
    ("b2ContentEncoding", "content-encoding"),
    ("b2ContentType", "content-type"),
];

/// A download whose head is decided; its body is read from storage by range.
#[derive(Debug)]
pub struct Download {
    head: http::response::Parts,
    reader: ContentReader,
    pub(crate) fault: Option<HttpFault>,
}

impl Download {
    /// The response head and a reader of the body.
    pub fn into_parts(self) -> (http::response::Parts, ContentReader) {
        (self.head, self.reader)
    }

    /// A fault the HTTP layer must carry out for this request, if one was injected.
    pub fn fault(&self) -> Option<HttpFault> {
        self.fault
    }
}

enum Reader {
    Account(Caller),
    Token(DownloadToken),
    Public,
}

fn put(h: &mut HeaderMap, name: &str, value: &str) {
    if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
        h.insert(n, v);
    }
}

fn query_map(q: Option<&str>) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for pair in q.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if let (Ok(k), Ok(v)) = (decode(k), decode(v)) {
            m.insert(k, v);
        }
    }
    m
}

impl Emulator {
    pub(crate) fn get_download_authorization(
        &mut self,
        ctx: &Ctx<'_>,
        caller: &Caller,
        p: &Params,
    ) -> R<Value> {
        caller.require("shareFiles")?;
        let bucket_id = p.str("bucketId")?;
        caller.require_bucket(&bucket_id)?;
        self.bucket(&bucket_id)?;
        let prefix = p
            .opt_str("fileNamePrefix")?
            .ok_or_else(|| bad_request("required field fileNamePrefix is missing"))?;
        caller.require_name(&prefix)?;
        let secs = p
            .opt_u64("validDurationInSeconds")?
            .ok_or_else(|| bad_request("required field validDurationInSeconds is missing"))?;
        if !(1..=604_800).contains(&secs) {
            return Err(bad_request(
                "validDurationInSeconds must be between 1 and 604800",
            ));
        }
        let mut overrides = BTreeMap::new();
        for (q, _) in OVERRIDES {
            if let Some(v) = p.opt_str(q)? {
                overrides.insert(q.to_owned(), v);
            }
        }
        let token = format!("3_{}", self.rng.alnum(40));
        let now = ctx.now;
        self.state.download_tokens.retain(|_, t| t.expires > now);
        self.state.download_tokens.insert(
            token.clone(),
            DownloadToken {
                bucket_id: bucket_id.clone(),
                prefix: prefix.clone(),
                expires: now.saturating_add(secs * 1000),
                overrides,
            },
        );
        self.dirty = true;
        Ok(json!({"bucketId": bucket_id, "fileNamePrefix": prefix, "authorizationToken": token}))
    }

    /// Decides the response to a download (by id or by name) and prepares to read its body.
    ///
    /// # Errors
    ///
    /// The response B2 would give instead: 401 without a valid token, 404 for a missing file,
    /// 416 for an unsatisfiable range, 400/403 for a missing or wrong SSE-C key, and any
    /// injected fault.
    pub fn begin_download(
        &mut self,
        head: &http::request::Parts,
        now: u64,
    ) -> Result<Download, Box<Response<Bytes>>> {
        let now = now.saturating_add(self.state.clock_offset_ms);
        if self.apply_lifecycle(now) {
            self.persist();
        }
        let head_only = head.method == Method::HEAD;
        self.begin_download_inner(head, now)
            .map_err(|e| Box::new(e.into_response(head_only)))
    }

    fn begin_download_inner(&mut self, head: &http::request::Parts, now: u64) -> R<Download> {
        let path = head.uri.path();
        let by_name = path.starts_with("/file/");
        let call = if by_name {
            "b2_download_file_by_name"
        } else {
            "b2_download_file_by_id"
        };
        self.count_call(call);
        let mut fault = None;
        match self.faults.pick(call) {
            Some(FaultAction::Status {
                status,
                retry_after,
            }) => return Err(status_fault(status, retry_after)),
            Some(FaultAction::ExpireToken) => {
                return Err(err(
                    401,
                    ErrorCode::ExpiredAuthToken,
                    "Authorization token has expired",
                ));
            }
            Some(other) => fault = http_fault(&other),
            None => {}
        }
        if head.method != Method::GET && head.method != Method::HEAD {
            return Err(err(
                405,
                ErrorCode::MethodNotAllowed,
                "downloads use GET or HEAD",
            ));
        }
        let query = query_map(head.uri.query());
        let file: FileRec = if by_name {
            let rest = path.strip_prefix("/file/").unwrap_or("");
            let (bucket_raw, name_raw) = rest
                .split_once('/')
                .ok_or_else(|| err(404, ErrorCode::NotFound, "no file name in path"))?;
            let bucket_name =
                decode(bucket_raw).map_err(|_| bad_request("invalid bucket name encoding"))?;
            let name = decode(name_raw).map_err(|_| bad_request("invalid file name encoding"))?;
            let bucket = self
                .state
                .buckets
                .values()
                .find(|b| b.name == bucket_name)
                .ok_or_else(|| {
                    err(
                        404,
                        ErrorCode::NotFound,
                        format!("Bucket name not found: {bucket_name}"),
                    )
                })?;
            bucket
                .files
                .range((name.clone(), std::cmp::Reverse(u64::MAX))..)
                .take_while(|((n, _), _)| *n == name)
                .map(|(_, f)| f)
                .find(|f| f.action != Action::Start)
                .filter(|f| f.action == Action::Upload)
                .cloned()
                .ok_or_else(|| {
                    err(
                        404,
                        ErrorCode::NotFound,
                        format!("File with such name does not exist: {name}"),
                    )
                })?
        } else {
            let id = query
                .get("fileId")
                .ok_or_else(|| bad_request("required field fileId is missing"))?;
            self.state
                .file(id)
                .filter(|f| f.action == Action::Upload)
                .cloned()
                .ok_or_else(|| err(404, ErrorCode::NotFound, format!("File not present: {id}")))?
        };
        let bucket = self.bucket(&file.bucket_id)?.settings();
        let token = head
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or_else(|| query.get("Authorization").cloned());
        let ctx = Ctx {
            headers: &head.headers,
            version: 4,
            now,
            test_mode: crate::core::test_mode(&head.headers),
        };
        let reader = match token {
            Some(t) if self.state.download_tokens.contains_key(&t) => {
                let dt = self
                    .state
                    .download_tokens
                    .get(&t)
                    .cloned()
                    .ok_or_else(|| unauthorized("bad token"))?;
                if dt.expires <= now {
                    return Err(err(
                        401,
                        ErrorCode::ExpiredAuthToken,
                        "download authorization has expired",
                    ));
                }
                if dt.bucket_id != file.bucket_id || !file.name.starts_with(dt.prefix.as_str()) {
                    return Err(unauthorized(
                        "download authorization does not cover this file",
                    ));
                }
                for (k, v) in &dt.overrides {
                    if query.get(k) != Some(v) {
                        return Err(unauthorized(format!(
                            "{k} must match the download authorization"
                        )));
                    }
                }
                Reader::Token(dt)
            }
            Some(t) => {
                let caller = self.caller_for_token(&t, &ctx)?;
                if bucket.kind != "allPublic" {
                    caller.require("readFiles")?;
                    caller.require_bucket(&file.bucket_id)?;
                    caller.require_name(&file.name)?;
                }
                Reader::Account(caller)
            }
            None if bucket.kind == "allPublic" => Reader::Public,
            None => {
                return Err(unauthorized(
                    "this bucket is private: an authorization token is required",
                ));
            }
        };
        let h = &head.headers;
        let hdr = |n: &str| h.get(n).and_then(|v| v.to_str().ok());
        let key_md5 = sse_c_md5(
            hdr("x-bz-server-side-encryption-customer-algorithm"),
            hdr("x-bz-server-side-encryption-customer-key"),
            hdr("x-bz-server-side-encryption-customer-key-md5"),
        )?;
        check_read_key(&file.sse, key_md5.as_deref())?;

        let total = file.len;
        let range = match hdr("range") {
            None => None,
            Some(r) => Some(parse_range(r, total).map_err(|mut e| {
                e.message = format!("range not satisfiable for a file of {total} bytes");
                e.content_range = Some(format!("bytes */{total}"));
                e
            })?),
        };
        let (status, start, len) = match range {
            None => (StatusCode::OK, 0, total),
            Some((a, b)) => (StatusCode::PARTIAL_CONTENT, a, b - a + 1),
        };
        let mut resp = Response::new(());
        *resp.status_mut() = status;
        let hm = resp.headers_mut();
        put(hm, "content-length", &len.to_string());
        put(hm, "content-type", &file.content_type);
        put(hm, "accept-ranges", "bytes");
        put(hm, "x-bz-file-id", &file.id);
        put(hm, "x-bz-file-name", &encode(&file.name));
        put(hm, "x-bz-content-sha1", &file.sha1);
        put(hm, "x-bz-upload-timestamp", &file.timestamp.to_string());
        for (k, v) in &file.info {
            match OVERRIDES
                .iter()
                .find(|(_, hname)| k.strip_prefix("b2-") == Some(hname))
            {
                Some((_, hname)) => put(hm, hname, v),
                None => put(hm, &format!("x-bz-info-{k}"), &encode(v)),
            }
        }
        let token_overrides = match &reader {
            Reader::Token(dt) => dt.overrides.clone(),
            _ => BTreeMap::new(),
        };
        for (q, hname) in OVERRIDES {
            if let Some(v) = query.get(q).or_else(|| token_overrides.get(q)) {
                put(hm, hname, v);
            }
        }
        match &file.sse {
            Sse::None => {}
            Sse::B2 => put(hm, "x-bz-server-side-encryption", "AES256"),
            Sse::C { key_md5 } => {
                put(
                    hm,
                    "x-bz-server-side-encryption-customer-algorithm",
                    "AES256",
                );
                put(hm, "x-bz-server-side-encryption-customer-key-md5", key_md5);
            }
        }
        if bucket.lock_enabled {
            let (read_ret, read_hold) = match &reader {
                Reader::Account(c) => (c.can("readFileRetentions"), c.can("readFileLegalHolds")),
                _ => (false, false),
            };
            let mut hidden = Vec::new();
            if read_ret {
                if let Some(r) = &file.retention {
                    put(hm, "x-bz-file-retention-mode", &r.mode);
                    put(
                        hm,
                        "x-bz-file-retention-retain-until-timestamp",
                        &r.until.to_string(),
                    );
                }
            } else {
                hidden.push("X-Bz-File-Retention-Mode");
                hidden.push("X-Bz-File-Retention-Retain-Until-Timestamp");
            }
            if read_hold {
                put(
                    hm,
                    "x-bz-file-legal-hold",
                    if file.legal_hold == Some(true) {
                        "on"
                    } else {
                        "off"
                    },
                );
            } else {
                hidden.push("X-Bz-File-Legal-Hold");
            }
            if !hidden.is_empty() {
                put(hm, "x-bz-client-unauthorized-to-read", &hidden.join(","));
            }
        }
        if status == StatusCode::PARTIAL_CONTENT {
            put(
                hm,
                "content-range",
                &format!("bytes {}-{}/{}", start, start + len - 1, total),
            );
        }
        let segments = if head.method == Method::HEAD {
            Vec::new()
        } else {
            store::slice(&file.segments, start, len)
        };
        let (head_parts, ()) = resp.into_parts();
        Ok(Download {
            head: head_parts,
            reader: ContentReader::new(segments),
            fault,
        })
    }
}
