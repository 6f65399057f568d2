//! Uploading one file with `b2_upload_file`: the [`SimpleUpload`] machine and the
//! [`UploadUrlPool`] that lets uploads reuse upload URLs.
//!
//! Backblaze's checklist (<https://www.backblaze.com/docs/cloud-storage-integration-checklist>):
//! an upload URL and its token serve one upload at a time and may be reused for the next upload
//! until B2 refuses one; after a broken or refused connection, a timeout, 408 or any 5xx, get a
//! new URL and try again. [`SimpleUpload`] does exactly that, under a
//! [`RetryPolicy`]: at least five URLs, backoff between tries, `Retry-After` honoured.
//!
//! ```text
//!          pooled target
//!   start ───────────────────────────────┐
//!     │                                  ▼
//!     └──▶ GetTarget ─────────────────▶ Upload ──────────▶ Done(Ok)
//!          b2_get_upload_url             ▲  b2_upload_file
//!             ▲                          │    │
//!             │                          └────┤ 429: Wait(Retry-After), the same URL
//!             └──── Wait(backoff) ◀───────────┘ 408, 5xx, broken connection, refused upload
//!                                               token, bad SHA1 of bytes hashed here: new URL
//!
//!   GetTarget: 401 expired account token → Reauthorize (once); 408, 429, 5xx → Wait, again.
//!   Any other failure, or retries exhausted → Done(Err).
//! ```

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::error::{Error, ErrorCode, InvalidInput, TransportError};
use crate::machine::{Body, IdGen, Machine, RequestId, Step};
use crate::model::FileVersion;
use crate::ops::upload::{GetUploadUrl, UploadFile, UploadSha1, UploadTarget};
use crate::ops::{Operation, RetryClass};
use crate::retry::{Backoff, Refresh, Retrier, RetryPolicy, Verdict};
use crate::session::Session;
use crate::types::{BucketId, Sha1Digest};

/// How long B2 honours an upload URL: 24 hours
/// (<https://www.backblaze.com/apidocs/b2-get-upload-url>).
pub const UPLOAD_URL_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// An upload target and when it was obtained.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PooledTarget {
    /// The URL and token.
    pub target: UploadTarget,
    /// When B2 handed it out (its 24 hours run from here).
    pub obtained_at: Instant,
}

impl PooledTarget {
    /// Wraps a target obtained at `obtained_at`.
    pub fn new(target: UploadTarget, obtained_at: Instant) -> Self {
        Self {
            target,
            obtained_at,
        }
    }
}

/// Idle upload URLs, per bucket, for reuse by later uploads. Pure: no clock, no locks.
///
/// A URL serves one upload at a time, so [`take`](Self::take) hands a URL to exactly one
/// upload; the upload gives it back with [`put`](Self::put) when it succeeded with it, and
/// simply drops it when B2 refused it. URLs older than the maximum age (default 23 hours, an
/// hour short of B2's 24) are not handed out.
///
/// ```
/// # #![allow(clippy::disallowed_methods)]
/// use std::time::Instant;
/// use b2_proto::upload::{PooledTarget, UploadUrlPool};
/// use b2_proto::ops::UploadTarget;
/// use b2_proto::{AuthToken, BucketId};
///
/// let now = Instant::now();
/// let bucket = BucketId::new("b1");
/// let mut pool = UploadUrlPool::new(2);
/// let target = PooledTarget::new(UploadTarget::new("https://pod/1", AuthToken::new("t")), now);
/// assert!(pool.put(bucket.clone(), target, now));
/// let taken = pool.take(&bucket, now).unwrap();
/// assert_eq!(taken.target.url, "https://pod/1");
/// assert!(pool.take(&bucket, now).is_none(), "one upload per URL at a time");
/// ```
#[derive(Debug, Clone)]
pub struct UploadUrlPool {
    max_per_bucket: usize,
    max_age: Duration,
    idle: HashMap<BucketId, Vec<PooledTarget>>,
}

impl UploadUrlPool {
    /// A pool keeping at most `max_per_bucket` idle URLs per bucket.
    pub fn new(max_per_bucket: usize) -> Self {
        Self {
            max_per_bucket,
            max_age: UPLOAD_URL_LIFETIME - Duration::from_secs(60 * 60),
            idle: HashMap::new(),
        }
    }

    /// Sets the age after which a URL is no longer handed out.
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    fn fresh(&self, target: &PooledTarget, now: Instant) -> bool {
        now.saturating_duration_since(target.obtained_at) < self.max_age
    }

    /// Takes an idle URL for `bucket`, newest first, dropping those too old to use.
    pub fn take(&mut self, bucket: &BucketId, now: Instant) -> Option<PooledTarget> {
        let max_age = self.max_age;
        let list = self.idle.get_mut(bucket)?;
        list.retain(|t| now.saturating_duration_since(t.obtained_at) < max_age);
        let taken = list.pop();
        if list.is_empty() {
            self.idle.remove(bucket);
        }
        taken
    }

    /// Gives back a URL that just served an upload successfully. Returns `false` (and drops
    /// it) when the pool is full for that bucket or the URL is too old.
    pub fn put(&mut self, bucket: BucketId, target: PooledTarget, now: Instant) -> bool {
        if !self.fresh(&target, now) {
            return false;
        }
        let list = self.idle.entry(bucket).or_default();
        if list.len() >= self.max_per_bucket {
            return false;
        }
        list.push(target);
        true
    }

    /// Drops every idle URL of `bucket` (e.g. after the account was re-authorized).
    pub fn discard(&mut self, bucket: &BucketId) {
        self.idle.remove(bucket);
    }

    /// Drops every idle URL.
    pub fn clear(&mut self) {
        self.idle.clear();
    }

    /// Idle URLs held for `bucket`.
    pub fn idle(&self, bucket: &BucketId) -> usize {
        self.idle.get(bucket).map_or(0, Vec::len)
    }
}

/// The result of a [`SimpleUpload`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Uploaded {
    /// The new file version.
    pub file: FileVersion,
    /// The upload URL that carried it, still good: give it back to an [`UploadUrlPool`].
    pub target: PooledTarget,
}

#[derive(Clone)]
enum Content {
    /// Bytes in memory; the SHA1 was computed here, so a SHA1 refusal means corruption in
    /// transit and the upload is retried.
    Memory { data: Bytes, sha1: Sha1Digest },
    /// A range of the driver's source, with the SHA1 the driver computed.
    Source { range: Range<u64>, sha1: Sha1Digest },
}

impl std::fmt::Debug for Content {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Show the size, not the bytes.
        match self {
            Self::Memory { data, sha1 } => write!(f, "Memory({} bytes, {sha1})", data.len()),
            Self::Source { range, sha1 } => write!(f, "Source({range:?}, {sha1})"),
        }
    }
}

impl Content {
    fn len(&self) -> u64 {
        match self {
            Self::Memory { data, .. } => data.len() as u64,
            Self::Source { range, .. } => range.end.saturating_sub(range.start),
        }
    }

    fn sha1(&self) -> UploadSha1 {
        match self {
            Self::Memory { sha1, .. } | Self::Source { sha1, .. } => UploadSha1::Digest(*sha1),
        }
    }

    fn body(&self) -> Body {
        match self {
            Self::Memory { data, .. } => Body::Bytes(data.clone()),
            Self::Source { range, .. } => Body::Source(range.clone()),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum State {
    GetTarget,
    GettingTarget(RequestId),
    Upload,
    Uploading(RequestId),
    Waiting { until: Instant, then: Then },
    NeedSession,
    Finished,
}

#[derive(Debug, Clone, Copy)]
enum Then {
    GetTarget,
    Upload,
}

/// True for B2's refusal of a body that does not match its SHA1
/// (`400 bad_request`, "Sha1 did not match data received").
pub(crate) fn is_sha1_mismatch(error: &Error) -> bool {
    error.api().is_some_and(|e| {
        e.status == http::StatusCode::BAD_REQUEST
            && e.code == ErrorCode::BadRequest
            && e.message
                .to_ascii_lowercase()
                .contains("did not match data received")
    })
}

/// Uploads one file with `b2_upload_file`, getting upload URLs and retrying as Backblaze asks.
///
/// The content is either bytes in memory ([`SimpleUpload::from_bytes`]; the machine computes
/// the SHA1, and retries if B2 reports the body arrived corrupted) or a range of the driver's
/// source ([`SimpleUpload::from_source`], [`Body::Source`]: the driver streams it, and computed
/// its SHA1 beforehand). Without a target from a pool, it first asks for one with
/// `b2_get_upload_url`.
///
/// See the [module documentation](self) for the state graph.
///
/// ```
/// # #![allow(clippy::disallowed_methods)]
/// use std::sync::Arc;
/// use std::time::Instant;
/// use b2_proto::ops::UploadFile;
/// use b2_proto::upload::SimpleUpload;
/// use b2_proto::{AccountId, AuthToken, BucketId, FileName, Machine, RetryPolicy, Session, Step};
/// use bytes::Bytes;
///
/// let session = Arc::new(Session::new(AccountId::new("a"), AuthToken::new("t"),
///     "https://api001.backblazeb2.com", "https://f001.backblazeb2.com"));
/// let op = UploadFile::new(FileName::new("hello.txt").unwrap()).with_content_type("text/plain");
/// let mut upload = SimpleUpload::from_bytes(op, BucketId::new("b1"), Bytes::from_static(b"hello"),
///     session, &RetryPolicy::default());
/// let now = Instant::now();
/// // First an upload URL…
/// let Step::Send(id, request) = upload.poll_step(now) else { panic!() };
/// assert_eq!(request.uri().path(), "/b2api/v4/b2_get_upload_url");
/// upload.handle_response(id, Ok(http::Response::new(Bytes::from_static(
///     br#"{"bucketId":"b1","uploadUrl":"https://pod-1/b2api/v4/b2_upload_file/b1/c1","authorizationToken":"up"}"#,
/// ))), now);
/// // …then the upload itself, to that URL, with the SHA1 of the bytes.
/// let Step::Send(id, request) = upload.poll_step(now) else { panic!() };
/// assert_eq!(request.headers()["authorization"], "up");
/// assert_eq!(request.headers()["x-bz-content-sha1"], "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d");
/// upload.handle_response(id, Ok(http::Response::new(Bytes::from_static(
///     br#"{"action":"upload","fileName":"hello.txt","contentLength":5,"contentSha1":"aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d","fileId":"4_f"}"#,
/// ))), now);
/// let Step::Done(Ok(uploaded)) = upload.poll_step(now) else { panic!() };
/// assert_eq!(uploaded.file.content_length, 5);
/// assert_eq!(uploaded.target.target.url, "https://pod-1/b2api/v4/b2_upload_file/b1/c1");
/// ```
#[derive(Debug)]
pub struct SimpleUpload {
    op: UploadFile,
    bucket_id: BucketId,
    content: Content,
    session: Arc<Session>,
    retrier: Retrier,
    url_retrier: Retrier,
    backoff: Backoff,
    max_attempts: u32,
    target: Option<PooledTarget>,
    ids: IdGen,
    state: State,
    outcome: Option<Result<Uploaded, Error>>,
}

impl SimpleUpload {
    /// Uploads `data` as described by `op` into `bucket_id`.
    pub fn from_bytes(
        op: UploadFile,
        bucket_id: BucketId,
        data: Bytes,
        session: Arc<Session>,
        policy: &RetryPolicy,
    ) -> Self {
        let sha1 = Sha1Digest::of(&data);
        Self::build(
            op,
            bucket_id,
            Content::Memory { data, sha1 },
            session,
            policy,
        )
    }

    /// Uploads `range` of the driver's source, whose SHA1 is `sha1`.
    pub fn from_source(
        op: UploadFile,
        bucket_id: BucketId,
        range: Range<u64>,
        sha1: Sha1Digest,
        session: Arc<Session>,
        policy: &RetryPolicy,
    ) -> Self {
        Self::build(
            op,
            bucket_id,
            Content::Source { range, sha1 },
            session,
            policy,
        )
    }

    fn build(
        op: UploadFile,
        bucket_id: BucketId,
        content: Content,
        session: Arc<Session>,
        policy: &RetryPolicy,
    ) -> Self {
        let op = op.with_user_agent(session.user_agent.clone());
        let mut upload = Self {
            op,
            bucket_id,
            content,
            session,
            retrier: Retrier::new(policy, 1),
            url_retrier: Retrier::new(policy, 2),
            backoff: Backoff::new(policy, 3),
            max_attempts: policy.max_attempts,
            target: None,
            ids: IdGen::default(),
            state: State::GetTarget,
            outcome: None,
        };
        // Bad input is refused before anything is sent.
        if let Err(e) = upload.op.validate(upload.content.len()) {
            upload.finish(Err(e.into()));
        }
        upload
    }

    /// Bytes this upload sends (the body, without any trailing SHA1).
    pub fn content_len(&self) -> u64 {
        self.content.len()
    }

    /// Uses `target` (from an [`UploadUrlPool`]) instead of asking for a new URL first.
    pub fn with_target(mut self, target: PooledTarget) -> Self {
        self.target = Some(target);
        if matches!(self.state, State::GetTarget) {
            self.state = State::Upload;
        }
        self
    }

    /// The bucket.
    pub fn bucket_id(&self) -> &BucketId {
        &self.bucket_id
    }

    /// Upload attempts so far.
    pub fn attempts(&self) -> u32 {
        self.retrier.attempts()
    }

    fn finish(&mut self, outcome: Result<Uploaded, Error>) {
        self.outcome = Some(outcome);
        self.state = State::Finished;
    }

    fn upload_failed(&mut self, error: Error, now: Instant) {
        // A body that arrived corrupted is worth another try when its SHA1 is ours; when the
        // driver computed it, the source itself may have changed.
        if is_sha1_mismatch(&error) && matches!(self.content, Content::Memory { .. }) {
            self.target = None;
            let until = now.checked_add(self.backoff.next_delay());
            let Some(until) = until.filter(|_| self.retrier.attempts() < self.max_attempts) else {
                return self.finish(Err(Error::RetriesExhausted {
                    attempts: self.retrier.attempts(),
                    last: Box::new(error),
                }));
            };
            self.state = State::Waiting {
                until,
                then: Then::GetTarget,
            };
            return;
        }
        match self.retrier.after_failure(error, RetryClass::Upload, now) {
            Verdict::Fail(e) => self.finish(Err(e)),
            Verdict::Retry {
                at,
                refresh: Refresh::None,
            } => {
                self.state = State::Waiting {
                    until: at,
                    then: Then::Upload,
                }
            }
            Verdict::Retry { at, .. } => {
                self.target = None;
                self.state = State::Waiting {
                    until: at,
                    then: Then::GetTarget,
                };
            }
        }
    }

    fn target_failed(&mut self, error: Error, now: Instant) {
        match self.url_retrier.after_failure(
            error,
            GetUploadUrl::new(self.bucket_id.clone()).retry_class(),
            now,
        ) {
            Verdict::Fail(e) => self.finish(Err(e)),
            Verdict::Retry {
                refresh: Refresh::Session,
                ..
            } => self.state = State::NeedSession,
            Verdict::Retry { at, .. } => {
                self.state = State::Waiting {
                    until: at,
                    then: Then::GetTarget,
                }
            }
        }
    }
}

impl Machine for SimpleUpload {
    type Output = Uploaded;

    fn poll_step(&mut self, now: Instant) -> Step<Uploaded> {
        loop {
            match self.state {
                State::GetTarget => {
                    let op = GetUploadUrl::new(self.bucket_id.clone());
                    match op.request(&self.session) {
                        Ok(request) => {
                            let id = self.ids.next();
                            self.url_retrier.start_attempt(now);
                            self.state = State::GettingTarget(id);
                            return Step::Send(id, request.map(Body::Bytes));
                        }
                        Err(e) => self.finish(Err(e)),
                    }
                }
                State::Upload => {
                    let Some(target) = &self.target else {
                        self.state = State::GetTarget;
                        continue;
                    };
                    let head = self.op.request_head(
                        &target.target,
                        self.content.len(),
                        &self.content.sha1(),
                    );
                    match head {
                        Ok(head) => {
                            let id = self.ids.next();
                            self.retrier.start_attempt(now);
                            self.state = State::Uploading(id);
                            return Step::Send(id, head.map(|()| self.content.body()));
                        }
                        Err(e) => self.finish(Err(e)),
                    }
                }
                State::GettingTarget(_) | State::Uploading(_) => return Step::Pending,
                State::Waiting { until, then } if now >= until => {
                    self.state = match then {
                        Then::GetTarget => State::GetTarget,
                        Then::Upload => State::Upload,
                    };
                }
                State::Waiting { until, .. } => return Step::Wait(until),
                State::NeedSession => {
                    return Step::Reauthorize {
                        stale: self.session.clone(),
                    };
                }
                State::Finished => {
                    return Step::Done(self.outcome.take().unwrap_or_else(|| {
                        Err(InvalidInput::Argument {
                            what: "machine",
                            reason: "polled again after it finished".into(),
                        }
                        .into())
                    }));
                }
            }
        }
    }

    fn handle_response(
        &mut self,
        id: RequestId,
        response: Result<http::Response<Bytes>, TransportError>,
        now: Instant,
    ) {
        match self.state {
            State::GettingTarget(current) if current == id => {
                let op = GetUploadUrl::new(self.bucket_id.clone());
                match response.map_err(Error::from).and_then(|r| op.parse(r)) {
                    Ok(target) => {
                        self.url_retrier.succeeded();
                        self.target = Some(PooledTarget::new(target, now));
                        self.state = State::Upload;
                    }
                    Err(e) => self.target_failed(e, now),
                }
            }
            State::Uploading(current) if current == id => {
                let len = self.content.len();
                let sha1 = self.content.sha1();
                match response
                    .map_err(Error::from)
                    .and_then(|r| self.op.parse_checked(r, len, &sha1))
                {
                    Ok(file) => match self.target.take() {
                        Some(target) => self.finish(Ok(Uploaded { file, target })),
                        None => self.finish(Err(Error::InvalidResponse {
                            op: UploadFile::NAME,
                            reason: "upload finished without a target".into(),
                        })),
                    },
                    Err(e) => self.upload_failed(e, now),
                }
            }
            _ => {}
        }
    }

    fn handle_session(&mut self, session: Arc<Session>) {
        self.session = session;
        if matches!(self.state, State::NeedSession) {
            self.state = State::GetTarget;
        }
    }
}
