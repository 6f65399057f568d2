//! Uploads, file versions, listings, hiding, deleting, copying, Object Lock.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::io;

use b2_proto::{ErrorCode, FileInfo, FileName};
use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, Method, Response};
use md5::Digest as _;
use serde_json::{Value, json};
use sha1::Sha1;

use crate::core::{
    Caller, Ctx, Emulator, Params, R, api_path, bad_request, err, http_fault, sse_json,
    status_fault, test_mode, unauthorized,
};
use crate::faults::{FaultAction, HttpFault};
use crate::model::{Action, FileRec, Key, Part, Retention, Sse, UploadTarget, UploadToken};
use crate::store::{self, BlobWriter, ContentReader, Segment};

/// Largest part: 5 GB.
pub(crate) const MAX_PART_SIZE: u64 = 5_000_000_000;
/// Lifetime of upload URLs and their tokens (24 hours).
const UPLOAD_TOKEN_LIFETIME_MS: u64 = 24 * 60 * 60 * 1000;

/// How the uploader vouches for the content's SHA1.
#[derive(Debug, Clone)]
enum ShaMode {
    Hex(String),
    AtEnd,
    DoNotVerify,
    Unverified(String),
}

fn parse_sha_mode(v: Option<&str>) -> R<ShaMode> {
    let v = v.ok_or_else(|| bad_request("Missing header: X-Bz-Content-Sha1"))?;
    let is_hex = |s: &str| s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit());
    if v == "hex_digits_at_end" {
        Ok(ShaMode::AtEnd)
    } else if v == "do_not_verify" {
        Ok(ShaMode::DoNotVerify)
    } else if let Some(h) = v.strip_prefix("unverified:") {
        if is_hex(h) {
            Ok(ShaMode::Unverified(h.to_ascii_lowercase()))
        } else {
            Err(bad_request("Invalid X-Bz-Content-Sha1"))
        }
    } else if is_hex(v) {
        Ok(ShaMode::Hex(v.to_ascii_lowercase()))
    } else {
        Err(bad_request("Invalid X-Bz-Content-Sha1"))
    }
}

#[derive(Debug)]
enum UploadKind {
    File(Box<FileRec>),
    Part { file_id: String, number: u16 },
}

/// An upload whose head has been accepted and whose body is being received.
///
/// Feed the body to [`PendingUpload::write`] as it arrives, then hand it back to
/// [`Emulator::finish_upload`] (or [`Emulator::abort_upload`] if the connection fails).
#[derive(Debug)]
pub struct PendingUpload {
    token: String,
    kind: UploadKind,
    expected_len: u64,
    data_len: u64,
    sha_mode: ShaMode,
    writer: BlobWriter,
    hasher: Sha1,
    received: u64,
    tail: Vec<u8>,
    io_error: Option<String>,
    pub(crate) fault: Option<HttpFault>,
}

impl PendingUpload {
    /// The body length announced by `Content-Length`.
    pub fn expected_len(&self) -> u64 {
        self.expected_len
    }

    /// A fault the HTTP layer must carry out for this request, if one was injected.
    pub fn fault(&self) -> Option<HttpFault> {
        self.fault
    }

    /// Takes the next bytes of the body: hashes them and writes them to storage.
    ///
    /// # Errors
    ///
    /// An I/O error from the data directory. More bytes than announced are an error too.
    pub fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.write_bytes(Bytes::copy_from_slice(chunk))
    }

    /// Like [`PendingUpload::write`], keeping the buffer without copying when stored in memory.
    ///
    /// # Errors
    ///
    /// As [`PendingUpload::write`].
    pub fn write_bytes(&mut self, chunk: Bytes) -> io::Result<()> {
        let end = self.received.saturating_add(chunk.len() as u64);
        if end > self.expected_len {
            return Err(io::Error::other("more data than Content-Length"));
        }
        let data_part = if self.received >= self.data_len {
            0
        } else {
            usize::try_from((self.data_len - self.received).min(chunk.len() as u64)).unwrap_or(0)
        };
        let mut data = chunk;
        let tail = data.split_off(data_part.min(data.len()));
        if !data.is_empty() {
            if matches!(self.sha_mode, ShaMode::Hex(_) | ShaMode::AtEnd) {
                sha1::Digest::update(&mut self.hasher, &data);
            }
            if let Err(e) = self.writer.write_bytes(data) {
                self.io_error = Some(e.to_string());
                return Err(e);
            }
        }
        self.tail.extend_from_slice(&tail);
        self.received = end;
        Ok(())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Guesses a content type from a file name for `b2/x-auto`.
pub(crate) fn guess_content_type(name: &str) -> &'static str {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "txt" | "text" | "log" => "text/plain",
        "html" | "htm" => "text/html",
        "css" => "text/css",
        "csv" => "text/csv",
        "js" => "application/javascript",
        "json" => "application/json",
        "xml" => "application/xml",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        "tar" => "application/x-tar",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "webp" => "image/webp",
        "mp4" => "video/mp4",
        "mp3" => "audio/mpeg",
        _ => "application/octet-stream",
    }
}

/// Validates file info entries as B2 does.
pub(crate) fn check_info(info: &BTreeMap<String, String>) -> R<BTreeMap<String, String>> {
    let mut fi = FileInfo::new();
    for (k, v) in info {
        fi.insert(k, v.clone())
            .map_err(|e| bad_request(format!("Invalid fileInfo: {e}")))?;
    }
    Ok(fi.as_map().clone())
}

pub(crate) fn info_from_json(v: Option<&Value>) -> R<BTreeMap<String, String>> {
    match v {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(m)) => {
            let mut out = BTreeMap::new();
            for (k, v) in m {
                let s = v
                    .as_str()
                    .ok_or_else(|| bad_request("fileInfo values must be strings"))?;
                out.insert(k.clone(), s.to_owned());
            }
            check_info(&out)
        }
        Some(_) => Err(bad_request("fileInfo must be an object")),
    }
}

pub(crate) fn check_name(name: &str) -> R<()> {
    FileName::new(name)
        .map(|_| ())
        .map_err(|e| bad_request(format!("Invalid fileName: {e}")))
}

pub(crate) fn check_header_size(
    name: &str,
    info: &BTreeMap<String, String>,
    sse_or_lock: bool,
) -> R<()> {
    FileInfo::from_server(info.clone())
        .check_header_size(&FileName::from_server(name), sse_or_lock)
        .map_err(|e| bad_request(format!("{e}")))
}

/// SSE-C key headers (or JSON fields): algorithm, base64 key, base64 MD5 of the key.
pub(crate) fn sse_c_md5(
    algorithm: Option<&str>,
    key: Option<&str>,
    md5: Option<&str>,
) -> R<Option<String>> {
    if algorithm.is_none() && key.is_none() && md5.is_none() {
        return Ok(None);
    }
    if algorithm != Some("AES256") {
        return Err(bad_request("SSE-C algorithm must be AES256"));
    }
    let key = key.ok_or_else(|| bad_request("SSE-C key is missing"))?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(key)
        .map_err(|_| bad_request("SSE-C key is not valid base64"))?;
    if raw.len() != 32 {
        return Err(bad_request("SSE-C key must be 256 bits"));
    }
    let computed = base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(&raw));
    if let Some(m) = md5 {
        if m != computed {
            return Err(bad_request("SSE-C key MD5 does not match the key"));
        }
    }
    Ok(Some(computed))
}

/// Checks a reader's SSE-C key against a stored file.
pub(crate) fn check_read_key(stored: &Sse, given: Option<&str>) -> R<()> {
    match (stored, given) {
        (Sse::C { key_md5 }, Some(g)) if g == key_md5 => Ok(()),
        (Sse::C { .. }, Some(_)) => Err(err(
            403,
            ErrorCode::AccessDenied,
            "The SSE-C key does not match the key used to encrypt the file",
        )),
        (Sse::C { .. }, None) => Err(bad_request(
            "The object was stored using a form of Server Side Encryption. The correct parameters must be provided to retrieve the object.",
        )),
        (_, Some(_)) => Err(bad_request("The file is not encrypted with SSE-C")),
        (_, None) => Ok(()),
    }
}

/// Parses an SSE JSON object (`serverSideEncryption`, `destinationServerSideEncryption`).
pub(crate) fn sse_from_json(v: Option<&Value>, default: &Sse) -> R<Sse> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(default.clone());
    };
    match v.get("mode").and_then(Value::as_str) {
        None | Some("none") => Ok(Sse::None),
        Some("SSE-B2") => Ok(Sse::B2),
        Some("SSE-C") => {
            let s = |k: &str| v.get(k).and_then(Value::as_str);
            let md5 = sse_c_md5(s("algorithm"), s("customerKey"), s("customerKeyMd5"))?
                .ok_or_else(|| bad_request("SSE-C key is missing"))?;
            Ok(Sse::C { key_md5: md5 })
        }
        Some(m) => Err(bad_request(format!("unknown encryption mode {m}"))),
    }
}

/// The MD5 of an SSE-C key given in JSON (`sourceServerSideEncryption`).
pub(crate) fn sse_c_key_from_json(v: Option<&Value>) -> R<Option<String>> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    if v.get("mode").and_then(Value::as_str) != Some("SSE-C") {
        return Ok(None);
    }
    let s = |k: &str| v.get(k).and_then(Value::as_str);
    sse_c_md5(s("algorithm"), s("customerKey"), s("customerKeyMd5"))
}

pub(crate) fn parse_range(spec: &str, len: u64) -> R<(u64, u64)> {
    let bad = || {
        err(
            416,
            ErrorCode::RangeNotSatisfiable,
            format!("invalid range {spec}"),
        )
    };
    let r = spec.trim().strip_prefix("bytes=").ok_or_else(bad)?;
    let r = r.split(',').next().unwrap_or("").trim();
    let (a, b) = r.split_once('-').ok_or_else(bad)?;
    let (start, end) = if a.is_empty() {
        let n: u64 = b.parse().map_err(|_| bad())?;
        if n == 0 {
            return Err(bad());
        }
        (len.saturating_sub(n), len.saturating_sub(1))
    } else {
        let s: u64 = a.parse().map_err(|_| bad())?;
        let e: u64 = if b.is_empty() {
            len.saturating_sub(1)
        } else {
            b.parse().map_err(|_| bad())?
        };
        (s, e.min(len.saturating_sub(1)))
    };
    if len == 0 || start >= len || end < start {
        return Err(bad());
    }
    Ok((start, end))
}

fn sha1_of(segments: &[Segment]) -> R<String> {
    let mut h = Sha1::default();
    let mut r = ContentReader::new(segments.to_vec());
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
    Ok(hex(&sha1::Digest::finalize(h)))
}

impl Emulator {
    pub(crate) fn file_json(&self, f: &FileRec, key: Option<&Key>) -> Value {
        let can = |cap: &str| key.is_none_or(|k| k.capabilities.iter().any(|c| c == cap));
        let retention = if can("readFileRetentions") {
            json!({"isClientAuthorizedToRead": true, "value": {
                "mode": f.retention.as_ref().map(|r| r.mode.clone()),
                "retainUntilTimestamp": f.retention.as_ref().map(|r| r.until),
            }})
        } else {
            json!({"isClientAuthorizedToRead": false, "value": null})
        };
        let hold = if can("readFileLegalHolds") {
            json!({"isClientAuthorizedToRead": true, "value": f.legal_hold.map(|h| if h { "on" } else { "off" })})
        } else {
            json!({"isClientAuthorizedToRead": false, "value": null})
        };
        let mut v = json!({
            "accountId": self.config.account_id,
            "action": f.action.as_str(),
            "bucketId": f.bucket_id,
            "contentLength": f.len,
            // The docs' file object: contentSha1 is null for hide markers (and folders).
            "contentSha1": if f.action == Action::Hide { Value::Null } else { json!(f.sha1) },
            "contentType": f.content_type,
            "fileId": f.id,
            "fileInfo": f.info,
            "fileName": f.name,
            "fileRetention": retention,
            "legalHold": hold,
            "replicationStatus": null,
            "serverSideEncryption": sse_json(&f.sse),
            "uploadTimestamp": f.timestamp,
        });
        if let Some(m) = &f.md5 {
            v["contentMd5"] = json!(m);
        }
        v
    }

    /// Lock settings from upload headers or JSON, checked against the bucket and the key.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn lock_settings(
        &self,
        bucket_id: &str,
        key: &Key,
        mode: Option<&str>,
        until: Option<u64>,
        hold: Option<&str>,
        now: u64,
    ) -> R<(Option<Retention>, Option<bool>)> {
        let b = self.bucket(bucket_id)?;
        let can = |c: &str| key.capabilities.iter().any(|k| k == c);
        let mut retention = None;
        if let Some(m) = mode {
            if !b.lock_enabled {
                return Err(err(
                    400,
                    ErrorCode::FileLockConflict,
                    "file lock is not enabled on this bucket",
                ));
            }
            if !can("writeFileRetentions") {
                return Err(unauthorized(
                    "application key does not have capability writeFileRetentions",
                ));
            }
            match m {
                "governance" | "compliance" => {
                    let until =
                        until.ok_or_else(|| bad_request("retainUntilTimestamp is required"))?;
                    if until <= now {
                        return Err(bad_request("retainUntilTimestamp must be in the future"));
                    }
                    retention = Some(Retention {
                        mode: m.to_owned(),
                        until,
                    });
                }
                _ => return Err(bad_request(format!("invalid retention mode {m}"))),
            }
        } else if b.lock_enabled {
            let d = &b.default_retention;
            if let Some(m @ ("governance" | "compliance")) = d.get("mode").and_then(Value::as_str) {
                let dur = d
                    .pointer("/period/duration")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                let days = match d.pointer("/period/unit").and_then(Value::as_str) {
                    Some("years") => dur.saturating_mul(365),
                    _ => dur,
                };
                retention = Some(Retention {
                    mode: m.to_owned(),
                    until: now.saturating_add(days.saturating_mul(86_400_000)),
                });
            }
        }
        let legal_hold = match hold {
            None => None,
            Some(h) => {
                if !b.lock_enabled {
                    return Err(err(
                        400,
                        ErrorCode::FileLockConflict,
                        "file lock is not enabled on this bucket",
                    ));
                }
                if !can("writeFileLegalHolds") {
                    return Err(unauthorized(
                        "application key does not have capability writeFileLegalHolds",
                    ));
                }
                match h {
                    "on" => Some(true),
                    "off" => Some(false),
                    _ => return Err(bad_request("legalHold must be on or off")),
                }
            }
        };
        Ok((retention, legal_hold))
    }

    // ----- upload URLs -----

    pub(crate) fn issue_upload_token(
        &mut self,
        target: UploadTarget,
        key_id: &str,
        now: u64,
    ) -> String {
        let token = format!("2_{}", self.rng.alnum(40));
        self.state.upload_tokens.insert(
            token.clone(),
            UploadToken {
                target,
                key_id: key_id.to_owned(),
                expires: now.saturating_add(UPLOAD_TOKEN_LIFETIME_MS),
            },
        );
        // Forget expired upload tokens.
        self.state.upload_tokens.retain(|_, t| t.expires > now);
        self.dirty = true;
        token
    }

    pub(crate) fn get_upload_url(
        &mut self,
        ctx: &Ctx<'_>,
        caller: &Caller,
        p: &Params,
    ) -> R<Value> {
        caller.require("writeFiles")?;
        let id = p.str("bucketId")?;
        caller.require_bucket(&id)?;
        self.bucket(&id)?;
        let token =
            self.issue_upload_token(UploadTarget::Bucket(id.clone()), &caller.key.id, ctx.now);
        let url = format!(
            "{}/b2api/v{}/b2_upload_file/{id}/c001_v0001000_t{}",
            self.config.base_url,
            ctx.version,
            self.rng.hex(4)
        );
        Ok(json!({"bucketId": id, "uploadUrl": url, "authorizationToken": token}))
    }

    /// Accepts the head of a `b2_upload_file` or `b2_upload_part` request.
    ///
    /// On success the body is to be fed to the returned [`PendingUpload`]; otherwise the error
    /// response is returned (the body need not be read).
    ///
    /// # Errors
    ///
    /// The response B2 would give: 401 for a bad or expired upload token, 400
    /// `auth_token_limit` when the token is already uploading, 400 for invalid headers, and any
    /// injected fault.
    pub fn begin_upload(
        &mut self,
        head: &http::request::Parts,
        now: u64,
    ) -> Result<PendingUpload, Box<Response<Bytes>>> {
        let now = now.saturating_add(self.state.clock_offset_ms);
        if self.apply_lifecycle(now) {
            self.persist();
        }
        self.begin_upload_inner(head, now)
            .map_err(|e| Box::new(e.into_response(false)))
    }

    /// An upload URL and its token are valid "for 24 hours or until the endpoint rejects an
    /// upload" (https://www.backblaze.com/apidocs/b2-get-upload-url): after answering an upload
    /// with 5xx, 408 or an expired token, the token stops working, so clients must get a new URL
    /// as the integration checklist requires.
    fn reject_upload_target(&mut self, head: &http::request::Parts) {
        if let Some(t) = head
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        {
            if !self.busy_upload_tokens.contains(t) && self.state.upload_tokens.remove(t).is_some()
            {
                self.dirty = true;
            }
        }
    }

    fn begin_upload_inner(&mut self, head: &http::request::Parts, now: u64) -> R<PendingUpload> {
        let (_, call) = api_path(head.uri.path())
            .ok_or_else(|| err(404, ErrorCode::NotFound, "no such path"))?;
        let call = call.to_owned();
        self.count_call(&call);
        let mut fault = None;
        match self.faults.pick(&call) {
            Some(FaultAction::Status {
                status,
                retry_after,
            }) => {
                if status >= 500 || status == 408 {
                    self.reject_upload_target(head);
                }
                return Err(status_fault(status, retry_after));
            }
            Some(FaultAction::ExpireToken) => {
                self.reject_upload_target(head);
                return Err(err(
                    401,
                    ErrorCode::ExpiredAuthToken,
                    "Authorization token has expired",
                ));
            }
            Some(other) => fault = http_fault(&other),
            None => {}
        }
        if head.method != Method::POST {
            return Err(err(405, ErrorCode::MethodNotAllowed, "uploads use POST"));
        }
        let h = &head.headers;
        let hdr = |n: &str| h.get(n).and_then(|v| v.to_str().ok());
        let token = hdr("authorization")
            .ok_or_else(|| err(401, ErrorCode::BadAuthToken, "missing Authorization header"))?
            .to_owned();
        let ut = self
            .state
            .upload_tokens
            .get(&token)
            .cloned()
            .ok_or_else(|| {
                err(
                    401,
                    ErrorCode::BadAuthToken,
                    "Invalid upload authorization token",
                )
            })?;
        if ut.expires <= now {
            return Err(err(
                401,
                ErrorCode::ExpiredAuthToken,
                "Upload authorization token has expired",
            ));
        }
        let path_id = head.uri.path().split('/').nth(4).unwrap_or("");
        match (&ut.target, call.as_str()) {
            (UploadTarget::Bucket(b), "b2_upload_file") if path_id.is_empty() || path_id == b => {}
            (UploadTarget::LargeFile(f), "b2_upload_part")
                if path_id.is_empty() || path_id == f => {}
            _ => {
                return Err(err(
                    401,
                    ErrorCode::BadAuthToken,
                    "the authorization token is not valid for this upload URL",
                ));
            }
        }
        if self.busy_upload_tokens.contains(&token) {
            return Err(err(
                400,
                ErrorCode::AuthTokenLimit,
                // b2sdk recognises the error by this wording.
                format!("more than one upload using auth token {token}"),
            ));
        }
        match test_mode(h).as_deref() {
            Some("fail_some_uploads") if self.rng.chance(33) => {
                self.reject_upload_target(head);
                return Err(err(
                    503,
                    ErrorCode::ServiceUnavailable,
                    "c001_v0001000_t0000 is too busy",
                ));
            }
            Some("force_cap_exceeded") => {
                return Err(err(403, ErrorCode::CapExceeded, "Cap exceeded."));
            }
            _ => {}
        }
        let key = self.state.keys.get(&ut.key_id).cloned().ok_or_else(|| {
            err(
                401,
                ErrorCode::BadAuthToken,
                "the key behind this token was deleted",
            )
        })?;
        let expected_len: u64 = hdr("content-length")
            .ok_or_else(|| bad_request("Missing header: Content-Length"))?
            .parse()
            .map_err(|_| bad_request("Invalid Content-Length"))?;
        let sha_mode = parse_sha_mode(hdr("x-bz-content-sha1"))?;
        let data_len = match sha_mode {
            ShaMode::AtEnd => expected_len
                .checked_sub(40)
                .ok_or_else(|| bad_request("Content-Length too small for hex_digits_at_end"))?,
            _ => expected_len,
        };
        let sse_c = sse_c_md5(
            hdr("x-bz-server-side-encryption-customer-algorithm"),
            hdr("x-bz-server-side-encryption-customer-key"),
            hdr("x-bz-server-side-encryption-customer-key-md5"),
        )?;
        let kind = match &ut.target {
            UploadTarget::Bucket(bucket_id) => {
                if data_len > self.config.max_small_file_size {
                    return Err(bad_request(format!(
                        "file is larger than {} bytes: use the large file API",
                        self.config.max_small_file_size
                    )));
                }
                let bucket = self.bucket(bucket_id)?.settings();
                let raw = hdr("x-bz-file-name")
                    .ok_or_else(|| bad_request("Missing header: X-Bz-File-Name"))?;
                let name = b2_proto::encoding::decode(raw)
                    .map_err(|_| bad_request("Invalid X-Bz-File-Name encoding"))?;
                check_name(&name)?;
                if let Some(p) = &key.name_prefix {
                    if !name.starts_with(p.as_str()) {
                        return Err(unauthorized(format!(
                            "application key is restricted to names starting with {p:?}"
                        )));
                    }
                }
                let ct = hdr("content-type")
                    .ok_or_else(|| bad_request("Missing header: Content-Type"))?;
                let ct = if ct == "b2/x-auto" {
                    guess_content_type(&name).to_owned()
                } else {
                    ct.to_owned()
                };
                let info = info_from_headers(h)?;
                let sse = match (sse_c, hdr("x-bz-server-side-encryption")) {
                    (Some(md5), _) => Sse::C { key_md5: md5 },
                    (None, Some("AES256")) => Sse::B2,
                    (None, Some(a)) => {
                        return Err(bad_request(format!("unsupported encryption {a}")));
                    }
                    (None, None) => bucket.default_sse.clone(),
                };
                let until = match hdr("x-bz-file-retention-retain-until-timestamp") {
                    Some(t) => Some(t.parse().map_err(|_| {
                        bad_request("Invalid X-Bz-File-Retention-Retain-Until-Timestamp")
                    })?),
                    None => None,
                };
                let (retention, legal_hold) = self.lock_settings(
                    bucket_id,
                    &key,
                    hdr("x-bz-file-retention-mode"),
                    until,
                    hdr("x-bz-file-legal-hold"),
                    now,
                )?;
                check_header_size(&name, &info, sse != Sse::None || bucket.lock_enabled)?;
                let timestamp = match hdr("x-bz-custom-upload-timestamp") {
                    Some(t) => t
                        .parse()
                        .map_err(|_| bad_request("Invalid X-Bz-Custom-Upload-Timestamp"))?,
                    None => now,
                };
                UploadKind::File(Box::new(FileRec {
                    id: String::new(),
                    name,
                    bucket_id: bucket_id.clone(),
                    seq: 0,
                    action: Action::Upload,
                    content_type: ct,
                    info,
                    sha1: String::new(),
                    md5: None,
                    len: data_len,
                    timestamp,
                    retention,
                    legal_hold,
                    sse,
                    segments: Vec::new(),
                    parts: BTreeMap::new(),
                }))
            }
            UploadTarget::LargeFile(file_id) => {
                let n: u32 = hdr("x-bz-part-number")
                    .ok_or_else(|| bad_request("Missing header: X-Bz-Part-Number"))?
                    .parse()
                    .map_err(|_| bad_request("Invalid X-Bz-Part-Number"))?;
                let number = u16::try_from(n)
                    .ok()
                    .filter(|n| (1..=10_000).contains(n))
                    .ok_or_else(|| bad_request("X-Bz-Part-Number must be from 1 to 10000"))?;
                if data_len > MAX_PART_SIZE {
                    return Err(bad_request("part is larger than 5000000000 bytes"));
                }
                let f = self
                    .state
                    .file(file_id)
                    .filter(|f| f.action == Action::Start)
                    .ok_or_else(|| {
                        bad_request(format!("no such unfinished large file: {file_id}"))
                    })?;
                match (&f.sse, &sse_c) {
                    (Sse::C { key_md5 }, Some(m)) if key_md5 == m => {}
                    (Sse::C { .. }, _) => {
                        return Err(bad_request(
                            "parts of an SSE-C large file need the same SSE-C key",
                        ));
                    }
                    (_, Some(_)) => {
                        return Err(bad_request("the large file is not encrypted with SSE-C"));
                    }
                    _ => {}
                }
                UploadKind::Part {
                    file_id: file_id.clone(),
                    number,
                }
            }
        };
        let blob = self.next_blob_id();
        let writer = self.store.writer(blob, data_len).map_err(|e| {
            err(
                500,
                ErrorCode::InternalError,
                format!("storage failed: {e}"),
            )
        })?;
        self.busy_upload_tokens.insert(token.clone());
        Ok(PendingUpload {
            token,
            kind,
            expected_len,
            data_len,
            sha_mode,
            writer,
            hasher: Sha1::default(),
            received: 0,
            tail: Vec::new(),
            io_error: None,
            fault,
        })
    }

    /// Gives up on an upload whose body could not be received; frees its upload token.
    pub fn abort_upload(&mut self, upload: PendingUpload) {
        self.busy_upload_tokens.remove(&upload.token);
    }

    /// Completes an upload whose whole body was fed to [`PendingUpload::write`].
    pub fn finish_upload(&mut self, up: PendingUpload, now: u64) -> Response<Bytes> {
        let now = now.saturating_add(self.state.clock_offset_ms);
        self.busy_upload_tokens.remove(&up.token);
        let r = self.finish_upload_inner(up, now);
        self.persist();
        match r {
            Ok(v) => crate::core::json_response(&v),
            Err(e) => e.into_response(false),
        }
    }

    fn finish_upload_inner(&mut self, up: PendingUpload, now: u64) -> R<Value> {
        if let Some(e) = &up.io_error {
            return Err(err(
                500,
                ErrorCode::InternalError,
                format!("storage failed: {e}"),
            ));
        }
        if up.received != up.expected_len {
            return Err(bad_request(format!(
                "received {} bytes, Content-Length is {}",
                up.received, up.expected_len
            )));
        }
        let actual = hex(&sha1::Digest::finalize(up.hasher));
        let sha1 = match &up.sha_mode {
            ShaMode::Hex(h) => {
                if *h != actual {
                    return Err(bad_request("Sha1 did not match data received"));
                }
                actual
            }
            ShaMode::AtEnd => {
                let given = String::from_utf8_lossy(&up.tail).to_ascii_lowercase();
                if given != actual {
                    return Err(bad_request("Sha1 did not match data received"));
                }
                actual
            }
            ShaMode::DoNotVerify => "none".to_owned(),
            ShaMode::Unverified(h) => format!("unverified:{h}"),
        };
        let blob = up.writer.finish().map_err(|e| {
            err(
                500,
                ErrorCode::InternalError,
                format!("storage failed: {e}"),
            )
        })?;
        let segments = vec![Segment {
            offset: 0,
            len: up.data_len,
            blob,
        }];
        let key_id = self
            .state
            .upload_tokens
            .get(&up.token)
            .map(|t| t.key_id.clone());
        let key = key_id.and_then(|k| self.state.keys.get(&k).cloned());
        match up.kind {
            UploadKind::File(mut f) => {
                if !self.state.buckets.contains_key(&f.bucket_id) {
                    return Err(err(
                        400,
                        ErrorCode::BadBucketId,
                        "the bucket no longer exists",
                    ));
                }
                f.id = self.new_file_id(&f.bucket_id, now);
                f.seq = self.next_seq();
                f.sha1 = sha1;
                f.segments = segments;
                let v = self.file_json(&f, key.as_ref());
                self.state.insert_file(*f);
                self.dirty = true;
                Ok(v)
            }
            UploadKind::Part { file_id, number } => {
                let f = self
                    .state
                    .file_mut(&file_id)
                    .filter(|f| f.action == Action::Start)
                    .ok_or_else(|| {
                        bad_request(format!("no such unfinished large file: {file_id}"))
                    })?;
                let part = Part {
                    number,
                    sha1: sha1.clone(),
                    len: up.data_len,
                    timestamp: now,
                    segments,
                };
                f.parts.insert(number, part);
                let sse = sse_json(&f.sse);
                self.dirty = true;
                Ok(json!({
                    "fileId": file_id,
                    "partNumber": number,
                    "contentLength": up.data_len,
                    "contentSha1": sha1,
                    "serverSideEncryption": sse,
                    "uploadTimestamp": now,
                }))
            }
        }
    }

    // ----- listing -----

    pub(crate) fn list_files(&mut self, caller: &Caller, p: &Params, versions: bool) -> R<Value> {
        caller.require("listFiles")?;
        let bucket_id = p.str("bucketId")?;
        caller.require_bucket(&bucket_id)?;
        let prefix = p.opt_str("prefix")?.unwrap_or_default();
        if let Some(kp) = &caller.key.name_prefix {
            if !prefix.starts_with(kp.as_str()) {
                return Err(unauthorized(format!(
                    "application key is restricted to names starting with {kp:?}: pass it as prefix"
                )));
            }
        }
        let delimiter = p.opt_str("delimiter")?.filter(|d| !d.is_empty());
        let max = p.count("maxFileCount", 100, 10_000)?;
        let start_name = p.opt_str("startFileName")?;
        let start_id = if versions {
            p.opt_str("startFileId")?
        } else {
            None
        };
        let b = self.bucket(&bucket_id)?;
        let mut start_key = (
            start_name.clone().unwrap_or_default().max(prefix.clone()),
            Reverse(u64::MAX),
        );
        if let Some(id) = &start_id {
            let Some(sn) = &start_name else {
                return Err(bad_request("startFileId requires startFileName"));
            };
            let f = self
                .state
                .file(id)
                .ok_or_else(|| bad_request(format!("Invalid startFileId: {id}")))?;
            if *sn >= prefix {
                start_key = (sn.clone(), Reverse(f.seq));
            }
        }
        let mut out: Vec<Value> = Vec::new();
        let mut next: Option<(String, Option<String>)> = None;
        let mut skip_prefix: Option<String> = None;
        let mut last_name: Option<&str> = None;
        for ((name, _), f) in b.files.range(start_key..) {
            if !name.starts_with(prefix.as_str()) {
                break;
            }
            if let Some(sp) = &skip_prefix {
                if name.starts_with(sp.as_str()) {
                    continue;
                }
                skip_prefix = None;
            }
            if let Some(d) = &delimiter {
                let rest = name.get(prefix.len()..).unwrap_or("");
                if let Some(i) = rest.find(d.as_str()) {
                    let folder = name
                        .get(..prefix.len() + i + d.len())
                        .unwrap_or(name)
                        .to_owned();
                    if out.len() == max {
                        next = Some((folder, None));
                        break;
                    }
                    out.push(json!({
                        "accountId": self.config.account_id,
                        "action": "folder",
                        "bucketId": bucket_id,
                        "contentLength": 0,
                        "contentSha1": null,
                        "contentType": null,
                        "fileId": null,
                        "fileInfo": {},
                        "fileName": folder,
                        "uploadTimestamp": 0,
                    }));
                    skip_prefix = Some(folder);
                    continue;
                }
            }
            if !versions {
                if last_name == Some(name.as_str()) {
                    continue;
                }
                if f.action == Action::Start {
                    continue;
                }
                last_name = Some(name.as_str());
                if f.action == Action::Hide {
                    continue;
                }
            }
            if out.len() == max {
                next = Some((name.clone(), Some(f.id.clone())));
                break;
            }
            out.push(self.file_json(f, Some(&caller.key)));
        }
        let (next_name, next_id) = match next {
            Some((n, id)) => (Some(n), id),
            None => (None, None),
        };
        Ok(if versions {
            json!({"files": out, "nextFileName": next_name, "nextFileId": next_id})
        } else {
            json!({"files": out, "nextFileName": next_name})
        })
    }

    pub(crate) fn get_file_info(&mut self, caller: &Caller, p: &Params) -> R<Value> {
        caller.require("readFiles")?;
        let id = p.str("fileId")?;
        let f = self
            .state
            .file(&id)
            .ok_or_else(|| err(404, ErrorCode::NotFound, format!("File not present: {id}")))?;
        caller.require_bucket(&f.bucket_id)?;
        caller.require_name(&f.name)?;
        Ok(self.file_json(f, Some(&caller.key)))
    }

    pub(crate) fn hide_file(&mut self, ctx: &Ctx<'_>, caller: &Caller, p: &Params) -> R<Value> {
        caller.require("writeFiles")?;
        let bucket_id = p.str("bucketId")?;
        caller.require_bucket(&bucket_id)?;
        let name = p.str("fileName")?;
        caller.require_name(&name)?;
        let b = self.bucket(&bucket_id)?;
        let newest = b
            .files
            .range((name.clone(), Reverse(u64::MAX))..)
            .take_while(|((n, _), _)| *n == name)
            .map(|(_, f)| f)
            .find(|f| f.action != Action::Start);
        match newest {
            None => {
                return Err(err(
                    400,
                    ErrorCode::NoSuchFile,
                    format!("File not present: {name}"),
                ));
            }
            Some(f) if f.action == Action::Hide => {
                return Err(err(
                    400,
                    ErrorCode::AlreadyHidden,
                    format!("File already hidden: {name}"),
                ));
            }
            Some(_) => {}
        }
        let f = self.new_hide_marker(bucket_id, name, ctx.now);
        let v = self.file_json(&f, Some(&caller.key));
        self.state.insert_file(f);
        self.dirty = true;
        Ok(v)
    }

    /// A new hide marker for `name`, uploaded at `at` (not yet inserted).
    pub(crate) fn new_hide_marker(&mut self, bucket_id: String, name: String, at: u64) -> FileRec {
        let id = self.new_file_id(&bucket_id, at);
        let seq = self.next_seq();
        FileRec {
            id,
            name,
            bucket_id,
            seq,
            action: Action::Hide,
            content_type: "application/x-bz-hide-marker".into(),
            info: BTreeMap::new(),
            sha1: "none".into(),
            md5: None,
            len: 0,
            timestamp: at,
            retention: None,
            legal_hold: None,
            sse: Sse::None,
            segments: Vec::new(),
            parts: BTreeMap::new(),
        }
    }

    pub(crate) fn delete_file_version(
        &mut self,
        ctx: &Ctx<'_>,
        caller: &Caller,
        p: &Params,
    ) -> R<Value> {
        caller.require("deleteFiles")?;
        let name = p.str("fileName")?;
        let id = p.str("fileId")?;
        let bypass = p.opt_bool("bypassGovernance")?.unwrap_or(false);
        let f = self
            .state
            .file(&id)
            .filter(|f| f.name == name)
            .ok_or_else(|| {
                err(
                    400,
                    ErrorCode::FileNotPresent,
                    format!("File not present: {name} {id}"),
                )
            })?;
        caller.require_bucket(&f.bucket_id)?;
        caller.require_name(&f.name)?;
        if f.legal_hold == Some(true) {
            return Err(err(
                403,
                ErrorCode::AccessDenied,
                "file is under legal hold",
            ));
        }
        if let Some(r) = &f.retention {
            if r.until > ctx.now {
                if r.mode == "compliance" {
                    return Err(err(
                        403,
                        ErrorCode::AccessDenied,
                        "file is under compliance retention",
                    ));
                }
                if !(bypass && caller.can("bypassGovernance")) {
                    return Err(err(
                        403,
                        ErrorCode::AccessDenied,
                        "file is under governance retention: bypassGovernance is required",
                    ));
                }
            }
        }
        self.state.remove_file(&id);
        self.dirty = true;
        Ok(json!({"fileId": id, "fileName": name}))
    }

    // ----- copies -----

    /// The segments and record of a copy source, checked for access.
    pub(crate) fn copy_source(
        &self,
        caller: &Caller,
        p: &Params,
    ) -> R<(FileRec, Vec<Segment>, bool)> {
        let src_id = p.str("sourceFileId")?;
        let src = self
            .state
            .file(&src_id)
            .filter(|f| f.action == Action::Upload)
            .ok_or_else(|| bad_request(format!("Invalid sourceFileId: {src_id}")))?
            .clone();
        caller.require("readFiles")?;
        caller.require_bucket(&src.bucket_id)?;
        caller.require_name(&src.name)?;
        let key = sse_c_key_from_json(p.get("sourceServerSideEncryption"))?;
        check_read_key(&src.sse, key.as_deref())?;
        let (segments, ranged) = match p.opt_str("range")? {
            None => (src.segments.clone(), false),
            Some(r) => {
                let (a, b) = parse_range(&r, src.len)?;
                (store::slice(&src.segments, a, b - a + 1), true)
            }
        };
        Ok((src, segments, ranged))
    }

    pub(crate) fn copy_file(&mut self, ctx: &Ctx<'_>, caller: &Caller, p: &Params) -> R<Value> {
        let (src, segments, ranged) = self.copy_source(caller, p)?;
        let len = store::total_len(&segments);
        if len > self.config.max_small_file_size {
            return Err(err(
                400,
                ErrorCode::SourceTooLarge,
                // b2sdk parses the size out of this wording.
                format!("Copy source too big: {len}"),
            ));
        }
        let dest_bucket = p
            .opt_str("destinationBucketId")?
            .unwrap_or_else(|| src.bucket_id.clone());
        caller.require("writeFiles")?;
        caller.require_bucket(&dest_bucket)?;
        let bucket = self.bucket(&dest_bucket)?.settings();
        let name = p.str("fileName")?;
        check_name(&name)?;
        caller.require_name(&name)?;
        let (content_type, info) = match p
            .opt_str("metadataDirective")?
            .as_deref()
            .unwrap_or("COPY")
        {
            "COPY" => {
                if p.get("contentType").is_some() || p.get("fileInfo").is_some() {
                    return Err(bad_request(
                        "contentType and fileInfo are allowed only with metadataDirective REPLACE",
                    ));
                }
                (src.content_type.clone(), src.info.clone())
            }
            "REPLACE" => {
                let ct = p.str("contentType")?;
                let ct = if ct == "b2/x-auto" {
                    guess_content_type(&name).to_owned()
                } else {
                    ct
                };
                (ct, info_from_json(p.get("fileInfo"))?)
            }
            other => return Err(bad_request(format!("Invalid metadataDirective: {other}"))),
        };
        let sse = sse_from_json(
            p.get("destinationServerSideEncryption"),
            &bucket.default_sse,
        )?;
        let (mode, until) = retention_from_json(p.get("fileRetention"))?;
        let hold = p.opt_str("legalHold")?;
        let (retention, legal_hold) = self.lock_settings(
            &dest_bucket,
            &caller.key,
            mode.as_deref(),
            until,
            hold.as_deref(),
            ctx.now,
        )?;
        check_header_size(&name, &info, sse != Sse::None || bucket.lock_enabled)?;
        let sha1 = if ranged {
            sha1_of(&segments)?
        } else {
            src.sha1.clone()
        };
        let f = FileRec {
            id: self.new_file_id(&dest_bucket, ctx.now),
            name,
            bucket_id: dest_bucket,
            seq: self.next_seq(),
            action: Action::Upload,
            content_type,
            info,
            sha1,
            md5: None,
            len,
            timestamp: ctx.now,
            retention,
            legal_hold,
            sse,
            segments,
            parts: BTreeMap::new(),
        };
        let v = self.file_json(&f, Some(&caller.key));
        self.state.insert_file(f);
        self.dirty = true;
        Ok(v)
    }

    // ----- Object Lock -----

    pub(crate) fn update_file_retention(
        &mut self,
        ctx: &Ctx<'_>,
        caller: &Caller,
        p: &Params,
    ) -> R<Value> {
        caller.require("writeFileRetentions")?;
        let name = p.str("fileName")?;
        let id = p.str("fileId")?;
        let bypass = p.opt_bool("bypassGovernance")?.unwrap_or(false);
        let f = self
            .state
            .file(&id)
            .filter(|f| f.name == name)
            .ok_or_else(|| {
                err(
                    400,
                    ErrorCode::FileNotPresent,
                    format!("File not present: {name} {id}"),
                )
            })?;
        caller.require_bucket(&f.bucket_id)?;
        caller.require_name(&f.name)?;
        if !self.bucket(&f.bucket_id)?.lock_enabled {
            return Err(err(
                400,
                ErrorCode::FileLockConflict,
                "file lock is not enabled on this bucket",
            ));
        }
        let (mode, until) = retention_from_json(p.get("fileRetention"))?;
        let new = match mode {
            None => None,
            Some(m) => {
                let until = until.ok_or_else(|| bad_request("retainUntilTimestamp is required"))?;
                Some(Retention { mode: m, until })
            }
        };
        if let Some(cur) = f.retention.as_ref().filter(|r| r.until > ctx.now) {
            let weaker = match &new {
                None => true,
                Some(n) => {
                    n.until < cur.until || (cur.mode == "compliance" && n.mode != "compliance")
                }
            };
            if weaker {
                if cur.mode == "compliance" {
                    return Err(err(
                        403,
                        ErrorCode::AccessDenied,
                        "compliance retention cannot be shortened or removed",
                    ));
                }
                if !(bypass && caller.can("bypassGovernance")) {
                    return Err(err(
                        403,
                        ErrorCode::AccessDenied,
                        "governance retention can be shortened or removed only with bypassGovernance",
                    ));
                }
            }
        }
        let v = json!({
            "fileId": id,
            "fileName": name,
            "fileRetention": {
                "mode": new.as_ref().map(|r| r.mode.clone()),
                "retainUntilTimestamp": new.as_ref().map(|r| r.until),
            },
        });
        if let Some(f) = self.state.file_mut(&id) {
            f.retention = new;
        }
        self.dirty = true;
        Ok(v)
    }

    pub(crate) fn update_file_legal_hold(&mut self, caller: &Caller, p: &Params) -> R<Value> {
        caller.require("writeFileLegalHolds")?;
        let name = p.str("fileName")?;
        let id = p.str("fileId")?;
        let hold = p.str("legalHold")?;
        let on = match hold.as_str() {
            "on" => true,
            "off" => false,
            _ => return Err(bad_request("legalHold must be on or off")),
        };
        let f = self
            .state
            .file(&id)
            .filter(|f| f.name == name)
            .ok_or_else(|| {
                err(
                    400,
                    ErrorCode::FileNotPresent,
                    format!("File not present: {name} {id}"),
                )
            })?;
        caller.require_bucket(&f.bucket_id)?;
        caller.require_name(&f.name)?;
        if !self.bucket(&f.bucket_id)?.lock_enabled {
            return Err(err(
                400,
                ErrorCode::FileLockConflict,
                "file lock is not enabled on this bucket",
            ));
        }
        if let Some(f) = self.state.file_mut(&id) {
            f.legal_hold = Some(on);
        }
        self.dirty = true;
        Ok(json!({"fileId": id, "fileName": name, "legalHold": hold}))
    }
}

/// `(mode, retainUntilTimestamp)` of a `fileRetention` JSON object.
pub(crate) fn retention_from_json(v: Option<&Value>) -> R<(Option<String>, Option<u64>)> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok((None, None));
    };
    let mode = match v.get("mode") {
        None | Some(Value::Null) => None,
        Some(Value::String(m)) if m == "governance" || m == "compliance" => Some(m.clone()),
        Some(m) => return Err(bad_request(format!("invalid retention mode {m}"))),
    };
    let until = v.get("retainUntilTimestamp").and_then(Value::as_u64);
    Ok((mode, until))
}

fn info_from_headers(h: &HeaderMap) -> R<BTreeMap<String, String>> {
    let mut info = BTreeMap::new();
    for (k, v) in h {
        let Some(key) = k.as_str().strip_prefix("x-bz-info-") else {
            continue;
        };
        let raw = v
            .to_str()
            .map_err(|_| bad_request(format!("Invalid X-Bz-Info-{key} header")))?;
        let value = b2_proto::encoding::decode(raw)
            .map_err(|_| bad_request(format!("Invalid X-Bz-Info-{key} encoding")))?;
        info.insert(key.to_owned(), value);
    }
    if info.len() > b2_proto::types::MAX_FILE_INFO_ENTRIES {
        return Err(bad_request("too many file info headers: at most 10"));
    }
    check_info(&info)
}
