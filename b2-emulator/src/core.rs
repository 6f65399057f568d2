//! The sans-IO emulator: a request and the current time in, a response out.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::path::Path;

use b2_proto::ErrorCode;
use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use serde_json::{Map, Value, json};

use crate::faults::{FaultAction, FaultRule, Faults, HttpFault, Rng};
use crate::model::{AccountToken, Key, Sse, State};
use crate::store::Store;

/// Every capability a v4 key can hold (the master key holds them all).
pub const ALL_CAPABILITIES: [&str; 26] = [
    "listKeys",
    "writeKeys",
    "deleteKeys",
    "listBuckets",
    "listAllBucketNames",
    "readBuckets",
    "writeBuckets",
    "deleteBuckets",
    "readBucketEncryption",
    "writeBucketEncryption",
    "readBucketRetentions",
    "writeBucketRetentions",
    "readFileRetentions",
    "writeFileRetentions",
    "readFileLegalHolds",
    "writeFileLegalHolds",
    "readBucketReplications",
    "writeBucketReplications",
    "bypassGovernance",
    "listFiles",
    "readFiles",
    "shareFiles",
    "writeFiles",
    "deleteFiles",
    "readBucketNotifications",
    "writeBucketNotifications",
];

/// How long an account authorization token lives (24 hours).
pub const ACCOUNT_TOKEN_LIFETIME_MS: u64 = 24 * 60 * 60 * 1000;

/// Settings of an emulated account.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// The account id returned by `b2_authorize_account`.
    pub account_id: String,
    /// The master application key id.
    pub key_id: String,
    /// The master application key.
    pub key: String,
    /// Smallest part (except the last) `b2_finish_large_file` accepts; B2's is 5,000,000.
    pub min_part_size: u64,
    /// `recommendedPartSize` returned by `b2_authorize_account`.
    pub recommended_part_size: u64,
    /// Largest `b2_upload_file` body and `b2_copy_file` result: 5,000,000,000 bytes.
    pub max_small_file_size: u64,
    /// Base URL used for `apiUrl`, `downloadUrl` and upload URLs.
    pub base_url: String,
    /// Seed of every random choice (ids, tokens, faults).
    pub seed: u64,
    /// Most buckets an account may hold (B2's default is 100).
    pub max_buckets: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            account_id: "e0a1b2c3d4e5".into(),
            key_id: "e0a1b2c3d4e5".into(),
            key: "K000emulatorMasterApplicationKey00000".into(),
            min_part_size: 5_000_000,
            recommended_part_size: 100_000_000,
            max_small_file_size: 5_000_000_000,
            base_url: "http://127.0.0.1".into(),
            seed: 0,
            max_buckets: 100,
        }
    }
}

impl Config {
    /// The default account: fixed ids and key, B2's part sizes, seed 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the master key id and key.
    pub fn with_master_key(mut self, key_id: impl Into<String>, key: impl Into<String>) -> Self {
        self.key_id = key_id.into();
        self.key = key.into();
        self
    }

    /// Sets the account id.
    pub fn with_account_id(mut self, account_id: impl Into<String>) -> Self {
        self.account_id = account_id.into();
        self
    }

    /// Sets the smallest part size (and `absoluteMinimumPartSize`), so tests can use small parts.
    pub fn with_min_part_size(mut self, n: u64) -> Self {
        self.min_part_size = n;
        self
    }

    /// Sets `recommendedPartSize`.
    pub fn with_recommended_part_size(mut self, n: u64) -> Self {
        self.recommended_part_size = n;
        self
    }

    /// Sets the largest small-file upload (and copy) size.
    pub fn with_max_small_file_size(mut self, n: u64) -> Self {
        self.max_small_file_size = n;
        self
    }

    /// Sets the base URL returned as `apiUrl` and `downloadUrl`.
    pub fn with_base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// Sets the seed of random choices.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

/// An error reply: status, B2 code, message.
#[derive(Debug, Clone)]
pub(crate) struct ApiErr {
    pub(crate) status: StatusCode,
    pub(crate) code: String,
    pub(crate) message: String,
    pub(crate) retry_after: Option<u64>,
    /// `Content-Range: bytes */<length>` on a 416.
    pub(crate) content_range: Option<String>,
}

pub(crate) type R<T> = Result<T, ApiErr>;

pub(crate) fn err(status: u16, code: ErrorCode, message: impl Into<String>) -> ApiErr {
    ApiErr {
        status: StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        code: code.as_str().to_owned(),
        message: message.into(),
        retry_after: None,
        content_range: None,
    }
}

pub(crate) fn bad_request(message: impl Into<String>) -> ApiErr {
    err(400, ErrorCode::BadRequest, message)
}

pub(crate) fn unauthorized(message: impl Into<String>) -> ApiErr {
    err(401, ErrorCode::Unauthorized, message)
}

impl ApiErr {
    pub(crate) fn into_response(self, head_only: bool) -> Response<Bytes> {
        let body = if head_only {
            Bytes::new()
        } else {
            Bytes::from(
                serde_json::to_vec_pretty(&json!({
                    "status": self.status.as_u16(),
                    "code": self.code,
                    "message": self.message,
                }))
                .unwrap_or_default(),
            )
        };
        let mut r = Response::new(body);
        *r.status_mut() = self.status;
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json;charset=utf-8"),
        );
        r.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("max-age=0, no-cache, no-store"),
        );
        if let Some(v) = self
            .content_range
            .and_then(|c| HeaderValue::try_from(c).ok())
        {
            r.headers_mut().insert(header::CONTENT_RANGE, v);
        }
        if let Some(s) = self.retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        r
    }
}

pub(crate) fn json_response(v: &Value) -> Response<Bytes> {
    let mut r = Response::new(Bytes::from(
        serde_json::to_vec_pretty(v).unwrap_or_default(),
    ));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=utf-8"),
    );
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=0, no-cache, no-store"),
    );
    r
}

/// Parameters of a JSON call: the JSON body of a POST, or the query string of a GET.
#[derive(Debug)]
pub(crate) struct Params(pub(crate) Map<String, Value>);

impl Params {
    pub(crate) fn parse(method: &Method, query: Option<&str>, body: &[u8]) -> R<Self> {
        let mut map = Map::new();
        if let Some(q) = query {
            for pair in q.split('&').filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                let k = b2_proto::encoding::decode(k)
                    .map_err(|_| bad_request("invalid query string encoding"))?;
                let v = b2_proto::encoding::decode(v)
                    .map_err(|_| bad_request("invalid query string encoding"))?;
                map.insert(k, Value::String(v));
            }
        }
        if *method != Method::GET
            && *method != Method::HEAD
            && !body.iter().all(u8::is_ascii_whitespace)
        {
            let v: Value = serde_json::from_slice(body)
                .map_err(|e| err(400, ErrorCode::BadJson, format!("invalid JSON body: {e}")))?;
            let Value::Object(obj) = v else {
                return Err(err(
                    400,
                    ErrorCode::BadJson,
                    "the request body must be a JSON object",
                ));
            };
            map.extend(obj);
        }
        Ok(Self(map))
    }

    pub(crate) fn get(&self, k: &str) -> Option<&Value> {
        self.0.get(k).filter(|v| !v.is_null())
    }

    pub(crate) fn opt_str(&self, k: &str) -> R<Option<String>> {
        match self.get(k) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(bad_request(format!("{k} must be a string"))),
        }
    }

    pub(crate) fn str(&self, k: &str) -> R<String> {
        self.opt_str(k)?
            .ok_or_else(|| bad_request(format!("required field {k} is missing")))
    }

    pub(crate) fn opt_u64(&self, k: &str) -> R<Option<u64>> {
        match self.get(k) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_u64()
                .map(Some)
                .ok_or_else(|| err(400, ErrorCode::OutOfRange, format!("{k} out of range"))),
            Some(Value::String(s)) => s
                .parse()
                .map(Some)
                .map_err(|_| bad_request(format!("{k} must be a number"))),
            Some(_) => Err(bad_request(format!("{k} must be a number"))),
        }
    }

    pub(crate) fn opt_bool(&self, k: &str) -> R<Option<bool>> {
        match self.get(k) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if s == "true" => Ok(Some(true)),
            Some(Value::String(s)) if s == "false" => Ok(Some(false)),
            Some(_) => Err(bad_request(format!("{k} must be a boolean"))),
        }
    }

    /// A count with B2's default and maximum (0 means the default).
    pub(crate) fn count(&self, k: &str, default: u64, max: u64) -> R<usize> {
        let n = match self.opt_u64(k)? {
            None | Some(0) => default,
            Some(n) if n > max => {
                return Err(bad_request(format!("{k} must be at most {max}")));
            }
            Some(n) => n,
        };
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }
}

/// Who is calling: the key behind an account authorization token.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub(crate) key: Key,
}

impl Caller {
    pub(crate) fn can(&self, cap: &str) -> bool {
        self.key.capabilities.iter().any(|c| c == cap)
    }

    pub(crate) fn require(&self, cap: &str) -> R<()> {
        if self.can(cap) {
            Ok(())
        } else {
            Err(unauthorized(format!(
                "application key does not have capability {cap}"
            )))
        }
    }

    pub(crate) fn bucket_allowed(&self, bucket_id: &str) -> bool {
        self.key
            .bucket_ids
            .as_ref()
            .is_none_or(|ids| ids.iter().any(|b| b == bucket_id))
    }

    pub(crate) fn require_bucket(&self, bucket_id: &str) -> R<()> {
        if self.bucket_allowed(bucket_id) {
            Ok(())
        } else {
            Err(unauthorized(format!(
                "application key is not allowed to access bucket {bucket_id}"
            )))
        }
    }

    pub(crate) fn require_name(&self, name: &str) -> R<()> {
        match &self.key.name_prefix {
            Some(p) if !name.starts_with(p.as_str()) => Err(unauthorized(format!(
                "application key is restricted to names starting with {p:?}"
            ))),
            _ => Ok(()),
        }
    }
}

/// A request being handled: method, path, query, headers, body, API version.
#[derive(Debug)]
pub(crate) struct Ctx<'a> {
    pub(crate) headers: &'a HeaderMap,
    pub(crate) version: u8,
    pub(crate) now: u64,
    pub(crate) test_mode: Option<String>,
}

impl Ctx<'_> {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A local B2 account: buckets, files, keys and faults, driven one request at a time.
///
/// [`Emulator::handle`] takes a request and the current time in milliseconds since the epoch and
/// returns the response B2 would give. The HTTP server (see [`crate::Server`]) uses the streaming
/// halves instead: [`Emulator::begin_upload`] / [`Emulator::finish_upload`] and
/// [`Emulator::begin_download`].
///
/// ```
/// use b2_emulator::{Config, Emulator};
/// use base64::Engine as _;
///
/// let mut emu = Emulator::new(Config::new().with_master_key("id", "secret"));
/// let basic = base64::engine::general_purpose::STANDARD.encode("id:secret");
/// let req = http::Request::get("/b2api/v4/b2_authorize_account")
///     .header("Authorization", format!("Basic {basic}"))
///     .body(bytes::Bytes::new())
///     .unwrap();
/// let res = emu.handle(&req, 1_700_000_000_000);
/// assert_eq!(res.status(), 200);
/// ```
#[derive(Debug)]
pub struct Emulator {
    pub(crate) state: State,
    pub(crate) store: Store,
    pub(crate) config: Config,
    pub(crate) faults: Faults,
    pub(crate) rng: Rng,
    /// Upload tokens with an upload in progress.
    pub(crate) busy_upload_tokens: HashSet<String>,
    pub(crate) dirty: bool,
    /// Requests received per call name (including rejected ones).
    pub(crate) calls: BTreeMap<String, u64>,
    /// When lifecycle rules next act on which names.
    pub(crate) lifecycle: crate::lifecycle::Agenda,
}

const META_FILE: &str = "state.json";

impl Emulator {
    /// An emulator keeping everything in memory.
    pub fn new(config: Config) -> Self {
        let state = Self::fresh_state(&config);
        Self::with_state(config, state, Store::memory())
    }

    /// An emulator persisting contents and metadata in `dir` (created if missing), reloading
    /// what an earlier run left there.
    ///
    /// # Errors
    ///
    /// An I/O error creating or reading the directory, or metadata that cannot be read back.
    pub fn open(config: Config, dir: &Path) -> io::Result<Self> {
        let store = Store::open_dir(dir)?;
        let state = match store.read_meta(META_FILE)? {
            None => Self::fresh_state(&config),
            Some(bytes) => {
                let mut blobs = HashMap::new();
                if let Ok(entries) = std::fs::read_dir(dir.join("blobs")) {
                    for e in entries.flatten() {
                        if let Ok(id) = u64::from_str_radix(&e.file_name().to_string_lossy(), 16) {
                            if let Some(b) = store.existing(id) {
                                blobs.insert(id, b);
                            }
                        }
                    }
                }
                let records = store.read_records()?;
                crate::model::LOADING.with(|m| *m.borrow_mut() = blobs);
                let parsed = Self::load_state(&bytes, &records);
                let blobs = crate::model::LOADING.with(|m| std::mem::take(&mut *m.borrow_mut()));
                let mut state = parsed?;
                state.rebuild_index();
                // Ids must not repeat, even if the process died between writing a file record
                // and the state that counts them.
                let max_seq = state
                    .buckets
                    .values()
                    .flat_map(|b| b.files.values())
                    .map(|f| f.seq)
                    .max();
                state.next_seq = state.next_seq.max(max_seq.map_or(0, |s| s + 1));
                let max_blob = blobs.keys().copied().max();
                state.next_blob = state.next_blob.max(max_blob.map_or(0, |b| b + 1));
                let live: HashSet<u64> = blobs
                    .iter()
                    .filter(|(_, b)| std::sync::Arc::strong_count(b) > 1)
                    .map(|(id, _)| *id)
                    .collect();
                drop(blobs);
                store.collect_garbage();
                store.remove_unreferenced(&live);
                state
            }
        };
        let mut emu = Self::with_state(config, state, store);
        // The master key follows the configuration, whatever an earlier run used.
        emu.install_master_key();
        Ok(emu)
    }

    /// The state in `state.json` plus the file records of `files/`.
    fn load_state(state_json: &[u8], records: &[Vec<u8>]) -> io::Result<State> {
        let mut state: State = serde_json::from_slice(state_json).map_err(io::Error::other)?;
        for r in records {
            let f: crate::model::FileRec = serde_json::from_slice(r).map_err(io::Error::other)?;
            if let Some(b) = state.buckets.get_mut(&f.bucket_id) {
                b.files
                    .insert((f.name.clone(), std::cmp::Reverse(f.seq)), f);
            }
        }
        Ok(state)
    }

    fn fresh_state(config: &Config) -> State {
        State {
            account_id: config.account_id.clone(),
            master_key_id: config.key_id.clone(),
            keys: BTreeMap::new(),
            tokens: HashMap::new(),
            upload_tokens: HashMap::new(),
            download_tokens: HashMap::new(),
            buckets: BTreeMap::new(),
            next_seq: 1,
            next_blob: 1,
            clock_offset_ms: 0,
            rng_position: None,
            file_index: HashMap::new(),
            dirty_files: HashSet::new(),
            lifecycle_touched: HashSet::new(),
        }
    }

    fn with_state(config: Config, state: State, store: Store) -> Self {
        let mut emu = Self {
            rng: Rng::new(state.rng_position.unwrap_or(config.seed)),
            faults: Faults::new(config.seed),
            state,
            store,
            config,
            busy_upload_tokens: HashSet::new(),
            calls: BTreeMap::new(),
            dirty: false,
            lifecycle: crate::lifecycle::Agenda::new(),
        };
        emu.install_master_key();
        emu
    }

    fn install_master_key(&mut self) {
        let old = self.state.master_key_id.clone();
        if old != self.config.key_id {
            self.state.keys.remove(&old);
        }
        self.state.master_key_id = self.config.key_id.clone();
        self.state.account_id = self.config.account_id.clone();
        self.state.keys.insert(
            self.config.key_id.clone(),
            Key {
                id: self.config.key_id.clone(),
                secret: self.config.key.clone(),
                name: String::new(),
                capabilities: ALL_CAPABILITIES.iter().map(|s| (*s).to_owned()).collect(),
                bucket_ids: None,
                name_prefix: None,
                expires: None,
                multi_bucket: false,
            },
        );
    }

    /// The account id.
    pub fn account_id(&self) -> &str {
        &self.config.account_id
    }

    /// The master application key id.
    pub fn key_id(&self) -> &str {
        &self.config.key_id
    }

    /// The master application key.
    pub fn application_key(&self) -> &str {
        &self.config.key
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Sets the base URL used for `apiUrl`, `downloadUrl` and upload URLs.
    pub fn set_base_url(&mut self, url: impl Into<String>) {
        self.config.base_url = url.into();
    }

    /// How many requests each call received so far (rejected ones included), by call name;
    /// downloads by name count as `b2_download_file_by_name`.
    pub fn call_counts(&self) -> &BTreeMap<String, u64> {
        &self.calls
    }

    /// Forgets the call counts.
    pub fn reset_call_counts(&mut self) {
        self.calls.clear();
    }

    pub(crate) fn count_call(&mut self, name: &str) {
        match self.calls.get_mut(name) {
            Some(n) => *n += 1,
            None => {
                self.calls.insert(name.to_owned(), 1);
            }
        }
    }

    /// Adds a fault rule.
    pub fn add_fault(&mut self, rule: FaultRule) {
        self.faults.add(rule);
    }

    /// Removes every fault rule.
    pub fn clear_faults(&mut self) {
        self.faults.clear();
    }

    /// Moves the emulator's clock forward (tokens expire, retention ends, lifecycle rules act on
    /// the next request).
    pub fn advance_clock(&mut self, ms: u64) {
        self.state.clock_offset_ms = self.state.clock_offset_ms.saturating_add(ms);
        self.dirty = true;
    }

    /// Expires every account authorization token now: the next call with one gets 401
    /// `expired_auth_token`.
    pub fn expire_account_tokens(&mut self) {
        for t in self.state.tokens.values_mut() {
            t.expires = 0;
        }
        self.dirty = true;
    }

    pub(crate) fn next_seq(&mut self) -> u64 {
        let s = self.state.next_seq;
        self.state.next_seq += 1;
        s
    }

    pub(crate) fn next_blob_id(&mut self) -> u64 {
        let s = self.state.next_blob;
        self.state.next_blob += 1;
        s
    }

    /// Writes metadata if anything changed (data directory only), then deletes unreferenced blobs.
    ///
    /// Each file version is a record of its own (`files/<fileId>.json`), so a change costs the
    /// size of what changed; the rest (keys, tokens, buckets, counters) is `state.json`. Every
    /// write is atomic; blobs are written before the records naming them and deleted after.
    pub(crate) fn persist(&mut self) {
        if !self.dirty && self.state.dirty_files.is_empty() {
            return;
        }
        self.dirty = false;
        let changed = std::mem::take(&mut self.state.dirty_files);
        if self.store.dir().is_none() {
            return;
        }
        let mut ok = true;
        for id in &changed {
            let written = match self.state.file(id) {
                Some(f) => serde_json::to_vec(f)
                    .map_err(io::Error::other)
                    .and_then(|b| self.store.write_record(id, &b)),
                None => self.store.remove_record(id),
            };
            ok &= written.is_ok();
        }
        self.state.rng_position = Some(self.rng.position());
        ok &= serde_json::to_vec(&self.state)
            .map_err(io::Error::other)
            .and_then(|b| self.store.write_atomic(META_FILE, &b))
            .is_ok();
        if ok {
            self.store.collect_garbage();
        } else {
            // Try again after the next call.
            self.dirty = true;
            self.state.dirty_files.extend(changed);
        }
    }

    /// Handles one request completely (uploads and downloads in memory).
    ///
    /// `now` is the current time in milliseconds since the epoch. An [`HttpFault`] the caller
    /// should carry out (a reset connection, a delay) is put in the response's extensions.
    pub fn handle(&mut self, req: &Request<Bytes>, now: u64) -> Response<Bytes> {
        let (parts, body) = (req.clone().into_parts(), req.body());
        let head = parts.0;
        match classify(head.uri.path()) {
            Route::Upload => match self.begin_upload(&head, now) {
                Ok(mut up) => {
                    let fault = up.fault;
                    if let Err(e) = up.write_bytes(body.clone()) {
                        self.abort_upload(up);
                        return bad_request(format!("failed to store upload: {e}"))
                            .into_response(false);
                    }
                    let mut r = self.finish_upload(up, now);
                    if let Some(f) = fault {
                        r.extensions_mut().insert(f);
                    }
                    r
                }
                Err(r) => *r,
            },
            Route::Download if head.method == Method::POST => self.handle_call(&head, body, now),
            Route::Download => match self.begin_download(&head, now) {
                Ok(d) => {
                    let fault = d.fault;
                    let (mut parts, reader) = d.into_parts();
                    let body = if head.method == Method::HEAD {
                        Bytes::new()
                    } else {
                        match reader.read_all() {
                            Ok(b) => b,
                            Err(e) => {
                                return err(
                                    500,
                                    ErrorCode::InternalError,
                                    format!("read failed: {e}"),
                                )
                                .into_response(false);
                            }
                        }
                    };
                    if let Some(f) = fault {
                        parts.extensions.insert(f);
                    }
                    Response::from_parts(parts, body)
                }
                Err(r) => *r,
            },
            Route::Call => self.handle_call(&head, body, now),
        }
    }

    /// Handles a JSON call (or a control request) whose body has been read.
    pub fn handle_call(
        &mut self,
        head: &http::request::Parts,
        body: &[u8],
        now: u64,
    ) -> Response<Bytes> {
        let path = head.uri.path();
        if let Some(rest) = path.strip_prefix("/__emulator/") {
            let r = self.control(rest, &head.method, body);
            // After the clock moved, what fell due is done before anything else is seen.
            self.apply_lifecycle(now.saturating_add(self.state.clock_offset_ms));
            self.persist();
            return r;
        }
        let now = now.saturating_add(self.state.clock_offset_ms);
        self.apply_lifecycle(now);
        let Some((version, name)) = api_path(path) else {
            return err(404, ErrorCode::NotFound, format!("no such path: {path}"))
                .into_response(false);
        };
        if name == "b2_download_file_by_id" && head.method == Method::POST {
            // Counted by begin_download.
            return self.download_by_id_post(head, body, now);
        }
        self.count_call(name);
        let ctx = Ctx {
            headers: &head.headers,
            version,
            now,
            test_mode: test_mode(&head.headers),
        };
        let mut fault = None;
        let result = match self.faults.pick(name) {
            Some(FaultAction::Status {
                status,
                retry_after,
            }) => Err(status_fault(status, retry_after)),
            Some(FaultAction::ExpireToken) if name != "b2_authorize_account" => Err(err(
                401,
                ErrorCode::ExpiredAuthToken,
                "Authorization token has expired",
            )),
            Some(FaultAction::ResetRequestBody) => {
                // The connection is dropped before the call is carried out.
                fault = Some(HttpFault::ResetRequestBody);
                Err(status_fault(500, None))
            }
            Some(other) => {
                fault = http_fault(&other);
                Ok(())
            }
            None => Ok(()),
        }
        .and_then(|()| {
            if head.method != Method::GET && head.method != Method::POST {
                return Err(err(405, ErrorCode::MethodNotAllowed, "use GET or POST"));
            }
            let p = Params::parse(&head.method, head.uri.query(), body)?;
            self.call(name, &ctx, &p)
        });
        self.persist();
        let mut r = match result {
            Ok(v) => json_response(&v),
            Err(e) => e.into_response(false),
        };
        if let Some(f) = fault {
            r.extensions_mut().insert(f);
        }
        r
    }

    /// `b2_download_file_by_id` as a POST with `{"fileId": ...}`: served like the GET form.
    fn download_by_id_post(
        &mut self,
        head: &http::request::Parts,
        body: &[u8],
        now: u64,
    ) -> Response<Bytes> {
        // `now` already includes the clock offset; begin_download adds it again.
        let now = now.saturating_sub(self.state.clock_offset_ms);
        let file_id = match Params::parse(&head.method, None, body).and_then(|p| p.str("fileId")) {
            Ok(id) => id,
            Err(e) => return e.into_response(false),
        };
        let mut get = Request::get(format!(
            "{}?fileId={}",
            head.uri.path(),
            b2_proto::encoding::encode_query(&file_id)
        ))
        .body(())
        .map(|r| r.into_parts().0)
        .unwrap_or_else(|_| head.clone());
        get.headers = head.headers.clone();
        get.method = Method::GET;
        match self.begin_download(&get, now) {
            Ok(d) => {
                let (parts, reader) = d.into_parts();
                match reader.read_all() {
                    Ok(b) => Response::from_parts(parts, b),
                    Err(e) => err(500, ErrorCode::InternalError, format!("read failed: {e}"))
                        .into_response(false),
                }
            }
            Err(r) => *r,
        }
    }

    fn call(&mut self, name: &str, ctx: &Ctx<'_>, p: &Params) -> R<Value> {
        if name == "b2_authorize_account" {
            return self.authorize_account(ctx);
        }
        let caller = self.caller(ctx)?;
        if ctx.test_mode.as_deref() == Some("force_cap_exceeded")
            && matches!(
                name,
                "b2_get_upload_url"
                    | "b2_get_upload_part_url"
                    | "b2_start_large_file"
                    | "b2_copy_file"
                    | "b2_copy_part"
            )
        {
            return Err(err(403, ErrorCode::CapExceeded, "Cap exceeded."));
        }
        match name {
            "b2_create_bucket" => self.create_bucket(ctx, &caller, p),
            "b2_delete_bucket" => self.delete_bucket(&caller, p),
            "b2_list_buckets" => self.list_buckets(&caller, p),
            "b2_update_bucket" => self.update_bucket(ctx, &caller, p),
            "b2_get_upload_url" => self.get_upload_url(ctx, &caller, p),
            "b2_start_large_file" => self.start_large_file(ctx, &caller, p),
            "b2_get_upload_part_url" => self.get_upload_part_url(ctx, &caller, p),
            "b2_copy_part" => self.copy_part(ctx, &caller, p),
            "b2_list_parts" => self.list_parts(&caller, p),
            "b2_finish_large_file" => self.finish_large_file(ctx, &caller, p),
            "b2_cancel_large_file" => self.cancel_large_file(&caller, p),
            "b2_list_unfinished_large_files" => self.list_unfinished_large_files(&caller, p),
            "b2_list_file_names" => self.list_files(&caller, p, false),
            "b2_list_file_versions" => self.list_files(&caller, p, true),
            "b2_get_file_info" => self.get_file_info(&caller, p),
            "b2_hide_file" => self.hide_file(ctx, &caller, p),
            "b2_delete_file_version" => self.delete_file_version(ctx, &caller, p),
            "b2_copy_file" => self.copy_file(ctx, &caller, p),
            "b2_update_file_retention" => self.update_file_retention(ctx, &caller, p),
            "b2_update_file_legal_hold" => self.update_file_legal_hold(&caller, p),
            "b2_get_download_authorization" => self.get_download_authorization(ctx, &caller, p),
            "b2_create_key" => self.create_key(ctx, &caller, p),
            "b2_delete_key" => self.delete_key(ctx, &caller, p),
            "b2_list_keys" => self.list_keys(ctx, &caller, p),
            "b2_set_bucket_notification_rules" => self.set_notification_rules(&caller, p),
            "b2_get_bucket_notification_rules" => self.get_notification_rules(&caller, p),
            "b2_upload_file" | "b2_upload_part" | "b2_download_file_by_id" => Err(err(
                405,
                ErrorCode::MethodNotAllowed,
                "wrong method for this call",
            )),
            _ => Err(err(
                404,
                ErrorCode::NotFound,
                format!("unknown call {name}"),
            )),
        }
    }

    /// The key behind the account token in `Authorization`.
    pub(crate) fn caller(&mut self, ctx: &Ctx<'_>) -> R<Caller> {
        let token = ctx
            .header("authorization")
            .ok_or_else(|| err(401, ErrorCode::BadAuthToken, "missing Authorization header"))?;
        self.caller_for_token(token, ctx)
    }

    pub(crate) fn caller_for_token(&mut self, token: &str, ctx: &Ctx<'_>) -> R<Caller> {
        let t = self
            .state
            .tokens
            .get(token)
            .ok_or_else(|| err(401, ErrorCode::BadAuthToken, "Invalid authorization token"))?;
        if t.expires <= ctx.now {
            return Err(err(
                401,
                ErrorCode::ExpiredAuthToken,
                "Authorization token has expired",
            ));
        }
        if ctx.test_mode.as_deref() == Some("expire_some_account_authorization_tokens")
            && self.rng.chance(25)
        {
            return Err(err(
                401,
                ErrorCode::ExpiredAuthToken,
                "Authorization token has expired",
            ));
        }
        let key = self
            .state
            .keys
            .get(&t.key_id)
            .cloned()
            .ok_or_else(|| err(401, ErrorCode::BadAuthToken, "Invalid authorization token"))?;
        Ok(Caller { key })
    }

    fn authorize_account(&mut self, ctx: &Ctx<'_>) -> R<Value> {
        let invalid = || unauthorized("invalid application key id or application key");
        let auth = ctx.header("authorization").ok_or_else(invalid)?;
        let b64 = auth
            .strip_prefix("Basic ")
            .or_else(|| auth.strip_prefix("basic "))
            .ok_or_else(invalid)?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|_| invalid())?;
        let decoded = String::from_utf8(decoded).map_err(|_| invalid())?;
        let (id, secret) = decoded.split_once(':').ok_or_else(invalid)?;
        // The account id may stand in for the master key id.
        let id = if id == self.config.account_id {
            self.config.key_id.clone()
        } else {
            id.to_owned()
        };
        let key = self.state.keys.get(&id).cloned().ok_or_else(invalid)?;
        if key.secret != secret {
            return Err(invalid());
        }
        if key.expires.is_some_and(|e| e <= ctx.now) {
            return Err(unauthorized("application key has expired"));
        }
        if key.multi_bucket && ctx.version < 4 {
            return Err(err(
                401,
                ErrorCode::Unsupported,
                "This application key can only be used with API version 4 or later",
            ));
        }
        let token = format!("4_{}_{}", self.config.account_id, self.rng.alnum(48));
        let expires = ctx.now.saturating_add(ACCOUNT_TOKEN_LIFETIME_MS);
        self.state.tokens.insert(
            token.clone(),
            AccountToken {
                key_id: key.id.clone(),
                expires,
            },
        );
        self.dirty = true;
        let base = self.config.base_url.clone();
        let buckets = key.bucket_ids.as_ref().map(|ids| {
            ids.iter()
                .map(|id| json!({"id": id, "name": self.state.buckets.get(id).map(|b| b.name.clone())}))
                .collect::<Vec<_>>()
        });
        let s3 = format!("{base}/s3");
        let min = self.config.min_part_size;
        let rec = self.config.recommended_part_size;
        let key_expiry = key.expires;
        Ok(match ctx.version {
            4 => json!({
                "accountId": self.config.account_id,
                "authorizationToken": token,
                "applicationKeyExpirationTimestamp": key_expiry,
                "apiInfo": {
                    "storageApi": {
                        "infoType": "storageApi",
                        "apiUrl": base,
                        "downloadUrl": base,
                        "s3ApiUrl": s3,
                        "recommendedPartSize": rec,
                        "absoluteMinimumPartSize": min,
                        "allowed": {
                            "buckets": buckets,
                            "capabilities": key.capabilities,
                            "namePrefix": key.name_prefix,
                        },
                    },
                    "groupsApi": {
                        "infoType": "groupsApi",
                        "capabilities": [],
                        "groupsApiUrl": base,
                    },
                },
            }),
            3 => {
                let first = buckets.as_ref().and_then(|b| b.first().cloned());
                json!({
                    "accountId": self.config.account_id,
                    "authorizationToken": token,
                    "applicationKeyExpirationTimestamp": key_expiry,
                    "apiInfo": {
                        "storageApi": {
                            "infoType": "storageApi",
                            "apiUrl": base,
                            "downloadUrl": base,
                            "s3ApiUrl": s3,
                            "recommendedPartSize": rec,
                            "absoluteMinimumPartSize": min,
                            "bucketId": first.as_ref().and_then(|b| b.get("id").cloned()),
                            "bucketName": first.as_ref().and_then(|b| b.get("name").cloned()),
                            "capabilities": key.capabilities,
                            "namePrefix": key.name_prefix,
                        },
                    },
                })
            }
            _ => {
                let first = buckets.as_ref().and_then(|b| b.first().cloned());
                json!({
                    "accountId": self.config.account_id,
                    "authorizationToken": token,
                    "apiUrl": base,
                    "downloadUrl": base,
                    "s3ApiUrl": s3,
                    "recommendedPartSize": rec,
                    "absoluteMinimumPartSize": min,
                    "minimumPartSize": rec,
                    "allowed": {
                        "bucketId": first.as_ref().and_then(|b| b.get("id").cloned()),
                        "bucketName": first.as_ref().and_then(|b| b.get("name").cloned()),
                        "capabilities": key.capabilities,
                        "namePrefix": key.name_prefix,
                    },
                })
            }
        })
    }

    fn control(&mut self, rest: &str, method: &Method, body: &[u8]) -> Response<Bytes> {
        let v: Value = if body.is_empty() {
            Value::Null
        } else {
            match serde_json::from_slice(body) {
                Ok(v) => v,
                Err(e) => return bad_request(format!("invalid JSON: {e}")).into_response(false),
            }
        };
        match (method.as_str(), rest) {
            ("POST", "faults") => match FaultRule::from_json(&v) {
                Ok(rule) => {
                    self.add_fault(rule);
                    json_response(&json!({"rules": self.faults.to_json()}))
                }
                Err(e) => bad_request(e).into_response(false),
            },
            ("DELETE", "faults") => {
                self.clear_faults();
                json_response(&json!({"rules": 0}))
            }
            ("POST", "clock") => {
                let ms = v
                    .get("advanceMs")
                    .and_then(Value::as_u64)
                    .or_else(|| {
                        v.get("advanceSeconds")
                            .and_then(Value::as_u64)
                            .map(|s| s * 1000)
                    })
                    .unwrap_or(0);
                self.advance_clock(ms);
                json_response(&json!({"clockOffsetMs": self.state.clock_offset_ms}))
            }
            ("POST", "expire-tokens") => {
                self.expire_account_tokens();
                json_response(&json!({}))
            }
            ("GET", "calls") => json_response(&json!(self.calls)),
            ("DELETE", "calls") => {
                self.calls.clear();
                json_response(&json!({}))
            }
            ("GET", "info") => json_response(&json!({
                "accountId": self.config.account_id,
                "applicationKeyId": self.config.key_id,
                "baseUrl": self.config.base_url,
                "clockOffsetMs": self.state.clock_offset_ms,
            })),
            _ => err(404, ErrorCode::NotFound, "no such control endpoint").into_response(false),
        }
    }

    // ----- helpers shared by the calls -----

    pub(crate) fn bucket(&self, id: &str) -> R<&crate::model::Bucket> {
        self.state.buckets.get(id).ok_or_else(|| {
            err(
                400,
                ErrorCode::BadBucketId,
                format!("Invalid bucketId: {id}"),
            )
        })
    }

    pub(crate) fn check_account(&self, p: &Params) -> R<()> {
        let id = p.str("accountId")?;
        if id == self.config.account_id {
            Ok(())
        } else {
            Err(unauthorized(
                "accountId does not match the authorization token",
            ))
        }
    }

    pub(crate) fn new_file_id(&mut self, bucket_id: &str, now: u64) -> String {
        let seq = self.state.next_seq;
        let (date, time) = ymd_hms(now);
        format!(
            "4_z{bucket_id}_f1{seq:014x}_d{date}_m{time}_c000_v0001{:03}_t{}",
            seq % 1000,
            self.rng.hex(4)
        )
    }
}

pub(crate) fn status_fault(status: u16, retry_after: Option<u64>) -> ApiErr {
    let code = ErrorCode::for_status(
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
    );
    let code = if code.as_str().is_empty() {
        ErrorCode::BadRequest
    } else {
        code
    };
    let message = match status {
        503 => "c001_v0001000_t0000 is too busy",
        429 => "Too many requests",
        500 => "internal error",
        _ => "injected failure",
    };
    let mut e = err(status, code, message);
    e.retry_after = retry_after.or(if status == 429 { Some(1) } else { None });
    e
}

pub(crate) fn http_fault(a: &FaultAction) -> Option<HttpFault> {
    match a {
        FaultAction::ResetRequestBody => Some(HttpFault::ResetRequestBody),
        FaultAction::ResetResponseBody => Some(HttpFault::ResetResponseBody),
        FaultAction::TruncateResponse => Some(HttpFault::TruncateResponse),
        FaultAction::Delay { ms } => Some(HttpFault::Delay(*ms)),
        _ => None,
    }
}

pub(crate) fn test_mode(h: &HeaderMap) -> Option<String> {
    h.get("x-bz-test-mode")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// What kind of handling a path needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `b2_upload_file` / `b2_upload_part`: the body is file contents.
    Upload,
    /// A download by id or by name.
    Download,
    /// A JSON call or a control request.
    Call,
}

/// Which kind of handling a request path needs.
pub fn classify(path: &str) -> Route {
    if path.starts_with("/file/") {
        return Route::Download;
    }
    match api_path(path) {
        Some((_, "b2_download_file_by_id")) => Route::Download,
        Some((_, "b2_upload_file" | "b2_upload_part")) => Route::Upload,
        _ => Route::Call,
    }
}

/// `(version, call name)` of `/b2api/vN/<name>[/...]`.
pub(crate) fn api_path(path: &str) -> Option<(u8, &str)> {
    let rest = path.strip_prefix("/b2api/v")?;
    let (v, rest) = rest.split_once('/')?;
    let version: u8 = v.parse().ok().filter(|v| (1..=4).contains(v))?;
    let name = rest.split('/').next()?;
    Some((version, name))
}

/// `YYYYMMDD` and `HHMMSS` of a time in milliseconds (UTC).
pub(crate) fn ymd_hms(ms: u64) -> (String, String) {
    let secs = ms / 1000;
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        format!("{y:04}{m:02}{d:02}"),
        format!("{:02}{:02}{:02}", rem / 3600, rem % 3600 / 60, rem % 60),
    )
}

pub(crate) fn sse_json(sse: &Sse) -> Value {
    match sse {
        Sse::None => json!({"algorithm": null, "mode": null}),
        Sse::B2 => json!({"algorithm": "AES256", "mode": "SSE-B2"}),
        Sse::C { key_md5 } => {
            json!({"algorithm": "AES256", "customerKeyMd5": key_md5, "mode": "SSE-C"})
        }
    }
}
