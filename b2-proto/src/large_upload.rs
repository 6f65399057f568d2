//! [`LargeUpload`]: a large file from start to finish, parts in parallel, as one [`Machine`].
//!
//! The flow (<https://www.backblaze.com/docs/cloud-storage-create-large-files-with-the-native-api>):
//! `b2_start_large_file`, then every part with `b2_upload_part` (each in-flight part on its own
//! upload-part URL from `b2_get_upload_part_url`) or `b2_copy_part`, then
//! `b2_finish_large_file` with the parts' SHA1s in part order.
//!
//! ```text
//!            resume(file_id, parts)
//!          ┌─────────────────────────────┐
//!          │                             ▼
//! start ─▶ Starting ──start ok──▶ Uploading ─────all parts done─────▶ Finishing ──ok──▶ Done(Ok)
//!            │               { ≤ max_in_flight parts,                 │     │
//!            │                 one part URL per part,                 │     │ 400 after a finish
//!            │                 new URL after 408/5xx/                 │     │ whose reply was lost
//!            │                 broken/refused token }                 │     ▼
//!            │                    │ fatal error                       │   Checking (b2_get_file_info)
//!            │                    ▼                                   │     │ finished ──▶ Done(Ok)
//!            │                 Cancelling ◀────── fatal error ────────┴─────┘ not finished
//!            │               (b2_cancel_large_file, unless kept for a resume)
//!            ▼                    ▼
//!       Done(Err) ◀──────────  Done(Err(the original error))
//! ```
//!
//! Parts come from one of three places:
//!
//! - a byte range of a source the driver can re-read (a file), with SHA1s computed beforehand
//!   by [`PartHasher`](crate::planner::PartHasher): the part is sent as [`Body::Source`], and
//!   no part is ever held in memory ([`LargeUpload::from_source`], [`PartSpec::Source`]);
//! - bytes asked for with [`Step::NeedPart`], in order, from a source that cannot be re-read (a
//!   pipe): the machine hashes each part and keeps at most `max_in_flight` parts in memory for
//!   retries ([`LargeUpload::from_reader`], [`LargeUpload::from_unsized_reader`]);
//! - a range of a file already in B2, copied server-side with `b2_copy_part`
//!   ([`PartSpec::Copy`], [`LargeUpload::copy_file`]); copied and uploaded parts may be mixed.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{Request, Response};

use crate::error::{Error, InvalidInput, TransportError, TransportErrorKind};
use crate::machine::{Body, IdGen, Machine, RequestId, Step};
use crate::model::{CustomerKey, Encryption, FileVersion, Part};
use crate::ops::large_file::{
    CancelLargeFile, CopyPart, FinishLargeFile, MAX_PART_SIZE, StartLargeFile, UploadPart,
};
use crate::ops::upload::{GetUploadPartUrl, UploadTarget};
use crate::ops::{GetFileInfo, Operation, RetryClass};
use crate::planner::{HashedSource, PartPlan, StreamPlan};
use crate::retry::{Backoff, Refresh, Retrier, RetryPolicy, Verdict};
use crate::session::Session;
use crate::types::{BucketId, FileId, MAX_PART_NUMBER, PartNumber, Sha1Digest};
use crate::upload::is_sha1_mismatch;

/// Default number of parts in flight at once.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 4;

/// One part of a large file, as planned.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PartSpec {
    /// `range` of the driver's source, whose SHA1 is `sha1`, sent as [`Body::Source`].
    Source {
        /// The bytes of the source.
        range: Range<u64>,
        /// Their SHA1.
        sha1: Sha1Digest,
    },
    /// `range` of a file already in B2, copied with `b2_copy_part`.
    Copy {
        /// The file to copy from.
        source_file_id: FileId,
        /// The bytes of that file (end exclusive).
        range: Range<u64>,
    },
}

impl PartSpec {
    /// A part read from the driver's source.
    pub fn source(range: Range<u64>, sha1: Sha1Digest) -> Self {
        Self::Source { range, sha1 }
    }

    /// A part copied from `source_file_id`.
    pub fn copy(source_file_id: FileId, range: Range<u64>) -> Self {
        Self::Copy {
            source_file_id,
            range,
        }
    }

    /// The part's length.
    pub fn len(&self) -> u64 {
        match self {
            Self::Source { range, .. } | Self::Copy { range, .. } => {
                range.end.saturating_sub(range.start)
            }
        }
    }

    /// True for an empty part (which B2 refuses).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Where parts come from.
#[derive(Debug)]
enum Parts {
    /// Parts known in advance (source ranges and copies).
    Listed {
        specs: Vec<PartSpec>,
        queue: VecDeque<usize>,
    },
    /// Parts read in order with `NeedPart`.
    Read(Reader),
}

#[derive(Debug)]
struct Reader {
    part_size: u64,
    /// The source's length when known (a [`PartPlan`]); `None` for a pipe of unknown length.
    total: Option<u64>,
    next: Option<PartNumber>,
    reading: bool,
    ended: bool,
}

#[derive(Clone)]
enum Content {
    /// Bytes read with `NeedPart` (SHA1 computed here).
    Memory(Bytes),
    /// A range of the source (SHA1 computed by the driver).
    Source(Range<u64>),
}

impl std::fmt::Debug for Content {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Parts are large: show their size, not their bytes.
        match self {
            Self::Memory(b) => write!(f, "Memory({} bytes)", b.len()),
            Self::Source(r) => write!(f, "Source({r:?})"),
        }
    }
}

#[derive(Debug)]
enum Work {
    Reading(RequestId, Range<u64>),
    Upload {
        content: Content,
        len: u64,
        sha1: Sha1Digest,
    },
    Copy(CopyPart),
}

impl Work {
    /// Bytes this part adds to the file (0 for a copy of a whole source of unknown length).
    fn len(&self) -> u64 {
        match self {
            Self::Reading(_, range) => range.end.saturating_sub(range.start),
            Self::Upload { len, .. } => *len,
            Self::Copy(copy) => copy.range().map_or(0, |r| r.end.saturating_sub(r.start)),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Then {
    GetTarget,
    Send,
}

#[derive(Debug, Clone, Copy)]
enum JobState {
    Idle,
    GettingTarget(RequestId),
    Ready,
    Sending(RequestId),
    Waiting(Instant, Then),
    NeedSession,
}

#[derive(Debug)]
struct Job {
    number: PartNumber,
    work: Work,
    retrier: Retrier,
    url_retrier: Retrier,
    target: Option<UploadTarget>,
    state: JobState,
    /// An unsized source's first part, held back until it is known not to be the only part.
    held: bool,
}

#[derive(Debug, Clone, Copy)]
enum Single {
    Ready,
    InFlight(RequestId),
    Waiting(Instant),
    NeedSession,
}

#[derive(Debug)]
enum Phase {
    Starting(Single),
    Uploading,
    Finishing(Single),
    Checking(Single),
    Cancelling(Single),
    Done,
}

/// A large-file upload (or server-side copy) as a [`Machine`]; see the
/// [module documentation](self) for the state graph.
///
/// Built by [`LargeUpload::from_source`], [`LargeUpload::from_reader`],
/// [`LargeUpload::from_unsized_reader`], [`LargeUpload::copy_file`] or [`LargeUpload::new`];
/// [`LargeUpload::resume`] continues an unfinished file instead of starting one. Invalid
/// plans end the machine with [`Error::InvalidInput`] before any request is sent.
///
/// ```
/// # #![allow(clippy::disallowed_methods)]
/// use std::sync::Arc;
/// use std::time::Instant;
/// use b2_proto::ops::StartLargeFile;
/// use b2_proto::planner::{PartHasher, PartPlan};
/// use b2_proto::{AccountId, AuthToken, Body, BucketId, FileName, LargeUpload, Machine, RetryPolicy, Session, Step};
///
/// let session = Arc::new(Session::new(AccountId::new("a"), AuthToken::new("t"), "https://api", "https://f"));
/// // A 12 MB file: plan it (two parts of 6 MB), hash it in one pass as an adapter would.
/// let plan = PartPlan::new(12_000_000, &session).unwrap();
/// assert_eq!(plan.part_count(), 2);
/// let mut hasher = PartHasher::new(&plan);
/// let chunk = vec![0u8; 1 << 20];
/// let mut left = plan.total_len();
/// while left > 0 {
///     let n = left.min(chunk.len() as u64);
///     hasher.update(&chunk[..n as usize]);
///     left -= n;
/// }
/// let hashed = hasher.finish().unwrap();
/// let start = StartLargeFile::new(BucketId::new("b1"), FileName::new("disk.img").unwrap());
/// let mut upload = LargeUpload::from_source(start, &plan, &hashed, session, &RetryPolicy::default())
///     .with_max_in_flight(4);
/// let Step::Send(_, request) = upload.poll_step(Instant::now()) else { panic!() };
/// assert_eq!(request.uri().path(), "/b2api/v4/b2_start_large_file");
/// // Parts then go out as `Body::Source(range)`: the driver streams each range from the file.
/// # let _ = Body::Source(0..1);
/// ```
#[derive(Debug)]
pub struct LargeUpload {
    start: StartLargeFile,
    session: Arc<Session>,
    policy: RetryPolicy,
    parts: Parts,
    max_in_flight: usize,
    keep_unfinished: bool,
    copy_source_key: Option<CustomerKey>,
    customer_key: Option<CustomerKey>,
    file_id: Option<FileId>,
    listed: HashMap<PartNumber, (u64, Option<Sha1Digest>)>,
    sha1s: BTreeMap<PartNumber, Sha1Digest>,
    bytes_done: u64,
    last_part: Option<PartNumber>,
    total_len: Option<u64>,
    jobs: Vec<Job>,
    idle_targets: Vec<UploadTarget>,
    ids: IdGen,
    phase: Phase,
    single_retrier: Retrier,
    backoff: Backoff,
    finish_uncertain: bool,
    pending_error: Option<Error>,
    reauth_requested: bool,
    outcome: Option<Result<FileVersion, Error>>,
}

impl LargeUpload {
    /// Uploads and copies `parts` (parts 1, 2, … in order) into the large file `start`
    /// describes.
    pub fn new(
        start: StartLargeFile,
        parts: Vec<PartSpec>,
        session: Arc<Session>,
        policy: &RetryPolicy,
    ) -> Self {
        let validation = validate_specs(&parts, session.absolute_minimum_part_size);
        let total = parts
            .iter()
            .fold(0u64, |sum, p| sum.saturating_add(p.len()));
        let queue = (0..parts.len()).collect();
        let last = u32::try_from(parts.len())
            .ok()
            .and_then(|n| PartNumber::new(n).ok());
        let mut upload = Self::build(
            start,
            Parts::Listed {
                specs: parts,
                queue,
            },
            session,
            policy,
        );
        upload.total_len = Some(total);
        upload.last_part = last;
        if let Err(e) = validation {
            upload.finish(Err(e.into()));
        }
        upload
    }

    /// Uploads a re-readable source cut by `plan`, whose SHA1s [`PartHasher`] computed: each
    /// part is a [`Body::Source`] range. Records the whole-file SHA1 as `large_file_sha1` unless
    /// `start` already has one.
    ///
    /// [`PartHasher`]: crate::planner::PartHasher
    pub fn from_source(
        start: StartLargeFile,
        plan: &PartPlan,
        hashed: &HashedSource,
        session: Arc<Session>,
        policy: &RetryPolicy,
    ) -> Self {
        let start = if start.large_file_sha1().is_none() {
            start.with_large_file_sha1(hashed.whole_sha1)
        } else {
            start
        };
        let specs: Vec<PartSpec> = plan
            .iter()
            .zip(&hashed.part_sha1s)
            .map(|((_, range), sha1)| PartSpec::source(range, *sha1))
            .collect();
        let mismatch = hashed.total_len != plan.total_len()
            || hashed.part_sha1s.len() != usize::from(plan.part_count());
        let mut upload = Self::new(start, specs, session, policy);
        if mismatch {
            upload.finish(Err(InvalidInput::Argument {
                what: "hashed source",
                reason: format!(
                    "{} part SHA1s over {} bytes do not match a plan of {} parts over {} bytes",
                    hashed.part_sha1s.len(),
                    hashed.total_len,
                    plan.part_count(),
                    plan.total_len()
                ),
            }
            .into()));
        }
        upload
    }

    /// Uploads a source of known length that can be read only once, in order: parts are
    /// asked for with [`Step::NeedPart`] and must be supplied in full.
    pub fn from_reader(
        start: StartLargeFile,
        plan: &PartPlan,
        session: Arc<Session>,
        policy: &RetryPolicy,
    ) -> Self {
        let mut upload = Self::build(
            start,
            Parts::Read(Reader {
                part_size: plan.part_size(),
                total: Some(plan.total_len()),
                next: Some(PartNumber::FIRST),
                reading: false,
                ended: false,
            }),
            session,
            policy,
        );
        upload.total_len = Some(plan.total_len());
        upload.last_part = Some(plan.last_part());
        upload.check_part_size(plan.part_size());
        upload
    }

    /// Uploads a source of unknown length (a pipe), read in order in parts of
    /// `plan.part_size()` bytes until it ends: supply fewer bytes than asked (or none) to
    /// [`Machine::provide_part`] at the end of the source.
    ///
    /// B2 refuses a large file of one part, so the first part is held back until the second is
    /// read; this keeps up to `max(max_in_flight, 2)` parts in memory. A source that ends within
    /// the first part is split in two if it is longer than the minimum part size, and refused
    /// otherwise (upload it with `b2_upload_file`). A source longer than 10,000 parts is refused.
    pub fn from_unsized_reader(
        start: StartLargeFile,
        plan: StreamPlan,
        session: Arc<Session>,
        policy: &RetryPolicy,
    ) -> Self {
        let mut upload = Self::build(
            start,
            Parts::Read(Reader {
                part_size: plan.part_size(),
                total: None,
                next: Some(PartNumber::FIRST),
                reading: false,
                ended: false,
            }),
            session,
            policy,
        );
        upload.max_in_flight = upload.max_in_flight.max(2);
        upload.check_part_size(plan.part_size());
        upload
    }

    /// Refuses a read plan whose parts B2 would refuse with this session.
    fn check_part_size(&mut self, part_size: u64) {
        let minimum = self.session.absolute_minimum_part_size;
        if part_size < minimum || part_size > MAX_PART_SIZE {
            self.finish(Err(InvalidInput::Size {
                reason: format!(
                    "part size {part_size} is outside the session's {minimum}..={MAX_PART_SIZE}"
                ),
            }
            .into()));
        }
    }

    /// Copies the whole of `source_file_id` (`source_len` bytes) server-side into the large
    /// file `start` describes, in parts planned from the session's part sizes: the way to copy
    /// a file over 5 GB, which `b2_copy_file` refuses.
    pub fn copy_file(
        start: StartLargeFile,
        source_file_id: FileId,
        source_len: u64,
        session: Arc<Session>,
        policy: &RetryPolicy,
    ) -> Self {
        match PartPlan::new(source_len, &session) {
            Ok(plan) => {
                let specs = plan
                    .iter()
                    .map(|(_, range)| PartSpec::copy(source_file_id.clone(), range))
                    .collect();
                Self::new(start, specs, session, policy)
            }
            Err(e) => {
                let mut upload = Self::new(start, Vec::new(), session, policy);
                upload.outcome = Some(Err(e.into()));
                upload
            }
        }
    }

    fn build(
        start: StartLargeFile,
        parts: Parts,
        session: Arc<Session>,
        policy: &RetryPolicy,
    ) -> Self {
        let customer_key = match start.encryption() {
            Encryption::SseC(key) => Some(key.clone()),
            _ => None,
        };
        let mut upload = Self {
            session,
            policy: policy.clone(),
            parts,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            keep_unfinished: false,
            copy_source_key: None,
            customer_key,
            file_id: None,
            listed: HashMap::new(),
            sha1s: BTreeMap::new(),
            bytes_done: 0,
            last_part: None,
            total_len: None,
            jobs: Vec::new(),
            idle_targets: Vec::new(),
            ids: IdGen::default(),
            phase: Phase::Starting(Single::Ready),
            single_retrier: Retrier::new(policy, 0),
            backoff: Backoff::new(policy, 0x5a),
            finish_uncertain: false,
            pending_error: None,
            reauth_requested: false,
            outcome: None,
            start,
        };
        if let Err(e) = upload.start.validate() {
            upload.finish(Err(e.into()));
        }
        upload
    }

    /// Sets how many parts may be in flight at once (at least 1; default 4).
    pub fn with_max_in_flight(mut self, parts: usize) -> Self {
        let floor = if matches!(&self.parts, Parts::Read(r) if r.total.is_none()) {
            2
        } else {
            1
        };
        self.max_in_flight = parts.max(floor);
        self
    }

    /// Leaves the large file unfinished after a fatal error, so that it can be resumed,
    /// instead of cancelling it (the default).
    pub fn keep_unfinished_on_error(mut self, keep: bool) -> Self {
        self.keep_unfinished = keep;
        self
    }

    /// The SSE-C key of the files copied from, for [`PartSpec::Copy`] parts.
    pub fn with_copy_source_key(mut self, key: CustomerKey) -> Self {
        self.copy_source_key = Some(key);
        self
    }

    /// Continues the unfinished large file `file_id` instead of starting one.
    ///
    /// `listed` are its parts as `b2_list_parts` returned them (all pages). A planned part
    /// whose number, length and SHA1 match a listed part is not sent again; any other part is
    /// uploaded (replacing a mismatching one). Parts read with [`Step::NeedPart`] are still
    /// read, to compare their SHA1; copied parts are always copied again.
    pub fn resume(mut self, file_id: FileId, listed: Vec<Part>) -> Self {
        self.listed = listed
            .into_iter()
            .map(|p| (p.part_number, (p.content_length, p.content_sha1.digest())))
            .collect();
        if let (Some(last), Some(stray)) = (self.last_part, self.listed.keys().max().copied()) {
            if stray > last && !matches!(self.phase, Phase::Done) {
                // Refused before anything is sent, and without cancelling the caller's file.
                self.finish(Err(InvalidInput::Argument {
                    what: "resumed large file",
                    reason: format!(
                        "{file_id} holds part {stray}, beyond the {last} parts planned; \
                         cancel it and start again"
                    ),
                }
                .into()));
            }
        }
        self.file_id = Some(file_id);
        if matches!(self.phase, Phase::Starting(_)) {
            self.phase = Phase::Uploading;
        }
        self
    }

    /// The large file's id, once started (persist it to resume after a crash).
    pub fn large_file_id(&self) -> Option<&FileId> {
        self.file_id.as_ref()
    }

    /// Bytes of the parts finished so far (uploaded, copied, or found already present).
    pub fn bytes_done(&self) -> u64 {
        self.bytes_done
    }

    /// Bytes in all, when known.
    pub fn total_len(&self) -> Option<u64> {
        self.total_len
    }

    /// Parts finished so far (uploaded, copied, or found already present).
    pub fn parts_done(&self) -> usize {
        self.sha1s.len()
    }

    /// Parts with an upload or copy request in flight right now.
    pub fn parts_in_flight(&self) -> usize {
        self.jobs
            .iter()
            .filter(|j| matches!(j.state, JobState::Sending(_)))
            .count()
    }

    /// Parts held in memory (read with `NeedPart` and not yet uploaded).
    pub fn parts_in_memory(&self) -> usize {
        self.jobs
            .iter()
            .filter(|j| {
                matches!(
                    j.work,
                    Work::Upload {
                        content: Content::Memory(_),
                        ..
                    }
                )
            })
            .count()
    }

    fn finish(&mut self, outcome: Result<FileVersion, Error>) {
        if self.outcome.is_none() {
            self.outcome = Some(outcome);
        }
        self.phase = Phase::Done;
        self.jobs.clear();
    }

    /// A fatal error: cancel the large file (if there is one and it is not kept), then report.
    fn fail(&mut self, error: Error) {
        self.jobs.clear();
        if let (Some(_), false) = (&self.file_id, self.keep_unfinished) {
            self.pending_error = Some(error);
            self.single_retrier = Retrier::new(&self.policy, 0xca);
            self.phase = Phase::Cancelling(Single::Ready);
        } else {
            self.finish(Err(error));
        }
    }

    fn new_job(&self, number: PartNumber, work: Work, state: JobState) -> Job {
        let salt = u64::from(number.get());
        Job {
            number,
            work,
            retrier: Retrier::new(&self.policy, salt << 1),
            url_retrier: Retrier::new(&self.policy, salt << 1 | 1),
            target: None,
            state,
            held: false,
        }
    }

    fn part_done(&mut self, number: PartNumber, sha1: Sha1Digest, len: u64) {
        if self.sha1s.insert(number, sha1).is_none() {
            self.bytes_done = self.bytes_done.saturating_add(len);
        }
    }

    /// True when a listed part already holds exactly these bytes.
    fn already_present(&self, number: PartNumber, len: u64, sha1: Sha1Digest) -> bool {
        self.listed.get(&number) == Some(&(len, Some(sha1)))
    }

    /// Starts the next part, if any; returns a `NeedPart` step when it must be read.
    fn spawn(&mut self) -> Option<Step<FileVersion>> {
        let large_file_id = self.file_id.clone()?;
        match &mut self.parts {
            Parts::Listed { specs, queue } => {
                let index = queue.pop_front()?;
                let spec = specs.get(index)?.clone();
                let number = u32::try_from(index + 1)
                    .ok()
                    .and_then(|n| PartNumber::new(n).ok())?;
                match spec {
                    PartSpec::Source { range, sha1 } => {
                        let len = range.end.saturating_sub(range.start);
                        if self.already_present(number, len, sha1) {
                            self.part_done(number, sha1, len);
                            return None;
                        }
                        let job = self.new_job(
                            number,
                            Work::Upload {
                                content: Content::Source(range),
                                len,
                                sha1,
                            },
                            JobState::Idle,
                        );
                        self.jobs.push(job);
                    }
                    PartSpec::Copy {
                        source_file_id,
                        range,
                    } => {
                        let mut op =
                            CopyPart::new(source_file_id, large_file_id, number).with_range(range);
                        if let Some(key) = &self.copy_source_key {
                            op = op.with_source_key(key.clone());
                        }
                        if let Some(key) = &self.customer_key {
                            op = op.with_destination_key(key.clone());
                        }
                        let job = self.new_job(number, Work::Copy(op), JobState::Ready);
                        self.jobs.push(job);
                    }
                }
                None
            }
            Parts::Read(reader) => {
                if reader.reading || reader.ended {
                    return None;
                }
                let number = reader.next?;
                let start = (u64::from(number.get()) - 1) * reader.part_size;
                let end = match reader.total {
                    Some(total) if start >= total => {
                        reader.ended = true;
                        return None;
                    }
                    Some(total) => (start + reader.part_size).min(total),
                    None => start + reader.part_size,
                };
                reader.reading = true;
                reader.next = number.next();
                let id = self.ids.next();
                let job = self.new_job(number, Work::Reading(id, start..end), JobState::Idle);
                self.jobs.push(job);
                Some(Step::NeedPart {
                    id,
                    part: number,
                    range: start..end,
                })
            }
        }
    }

    fn nothing_left_to_spawn(&self) -> bool {
        match &self.parts {
            Parts::Listed { queue, .. } => queue.is_empty(),
            Parts::Read(reader) => reader.ended || reader.next.is_none(),
        }
    }

    fn poll_uploading(&mut self, now: Instant) -> Option<Step<FileVersion>> {
        // New parts, up to the limit.
        while self.jobs.len() < self.max_in_flight && !self.nothing_left_to_spawn() {
            let before = (self.jobs.len(), self.sha1s.len());
            if let Some(step) = self.spawn() {
                return Some(step);
            }
            if (self.jobs.len(), self.sha1s.len()) == before {
                break;
            }
        }
        let mut earliest: Option<Instant> = None;
        let mut needs_session = false;
        for i in 0..self.jobs.len() {
            if let Some(step) = self.poll_job(i, now, &mut earliest, &mut needs_session) {
                return Some(step);
            }
            if matches!(self.phase, Phase::Done | Phase::Cancelling(_)) {
                return None;
            }
        }
        if self.jobs.is_empty() && self.nothing_left_to_spawn() {
            self.begin_finish();
            return None;
        }
        if needs_session && !self.reauth_requested {
            self.reauth_requested = true;
            return Some(Step::Reauthorize {
                stale: self.session.clone(),
            });
        }
        Some(earliest.map_or(Step::Pending, Step::Wait))
    }

    fn poll_job(
        &mut self,
        i: usize,
        now: Instant,
        earliest: &mut Option<Instant>,
        needs_session: &mut bool,
    ) -> Option<Step<FileVersion>> {
        let file_id = self.file_id.clone()?;
        let session = self.session.clone();
        let customer_key = self.customer_key.clone();
        let job = self.jobs.get_mut(i)?;
        if job.held || matches!(job.work, Work::Reading(..)) {
            return None;
        }
        loop {
            match job.state {
                JobState::Idle => {
                    job.state = match self.idle_targets.pop() {
                        Some(target) => {
                            job.target = Some(target);
                            JobState::Ready
                        }
                        None => {
                            let request = GetUploadPartUrl::new(file_id.clone()).request(&session);
                            match request {
                                Ok(request) => {
                                    let id = self.ids.next();
                                    job.url_retrier.start_attempt(now);
                                    job.state = JobState::GettingTarget(id);
                                    return Some(Step::Send(id, request.map(Body::Bytes)));
                                }
                                Err(e) => {
                                    self.fail(e);
                                    return None;
                                }
                            }
                        }
                    };
                }
                JobState::Ready => {
                    let request = match &job.work {
                        Work::Upload {
                            content, len, sha1, ..
                        } => {
                            let Some(target) = &job.target else {
                                job.state = JobState::Idle;
                                continue;
                            };
                            let mut op = UploadPart::new(job.number, *len, *sha1)
                                .with_user_agent(session.user_agent.clone());
                            if let Some(key) = &customer_key {
                                op = op.with_customer_key(key.clone());
                            }
                            op.request_head(target).map(|head| {
                                head.map(|()| match content {
                                    Content::Memory(bytes) => Body::Bytes(bytes.clone()),
                                    Content::Source(range) => Body::Source(range.clone()),
                                })
                            })
                        }
                        Work::Copy(op) => op.request(&session).map(|r| r.map(Body::Bytes)),
                        Work::Reading(..) => return None,
                    };
                    match request {
                        Ok(request) => {
                            let id = self.ids.next();
                            job.retrier.start_attempt(now);
                            job.state = JobState::Sending(id);
                            return Some(Step::Send(id, request));
                        }
                        Err(e) => {
                            self.fail(e);
                            return None;
                        }
                    }
                }
                JobState::Waiting(until, then) if now >= until => {
                    job.state = match then {
                        Then::GetTarget => JobState::Idle,
                        Then::Send => JobState::Ready,
                    };
                }
                JobState::Waiting(until, _) => {
                    *earliest = Some(earliest.map_or(until, |e| e.min(until)));
                    return None;
                }
                JobState::NeedSession => {
                    *needs_session = true;
                    return None;
                }
                JobState::GettingTarget(_) | JobState::Sending(_) => return None,
            }
        }
    }

    fn begin_finish(&mut self) {
        let Some(file_id) = &self.file_id else {
            return self.finish(Err(InvalidInput::Argument {
                what: "large file",
                reason: "no parts to finish".into(),
            }
            .into()));
        };
        // Parts 1..=n must all be present, and no stray part beyond them.
        let count = self.sha1s.len();
        let contiguous = self.sha1s.keys().enumerate().all(|(i, n)| n.index() == i);
        let stray = self
            .listed
            .keys()
            .filter(|n| n.index() >= count)
            .max()
            .copied();
        let expected = self.last_part.map_or(count, |last| usize::from(last.get()));
        if !contiguous || count < 2 || count != expected {
            return self.fail(Error::InvalidResponse {
                op: FinishLargeFile::NAME,
                reason: format!(
                    "{count} parts done of {expected}, not a contiguous run of at least 2"
                ),
            });
        }
        if let Some(stray) = stray {
            return self.fail(
                InvalidInput::Argument {
                    what: "resumed large file",
                    reason: format!(
                        "{file_id} holds part {stray}, beyond the {count} parts planned; cancel it and start again"
                    ),
                }
                .into(),
            );
        }
        self.single_retrier = Retrier::new(&self.policy, 0xf1);
        self.phase = Phase::Finishing(Single::Ready);
    }

    /// Checks that the finished file is the one this upload made: its id and, when known,
    /// its length.
    fn check_finished(&self, version: FileVersion) -> Result<FileVersion, Error> {
        let invalid = |reason: String| Error::InvalidResponse {
            op: FinishLargeFile::NAME,
            reason,
        };
        if version.file_id.is_some() && version.file_id != self.file_id {
            return Err(invalid(format!(
                "finished file {:?}, not {:?}",
                version.file_id, self.file_id
            )));
        }
        if let Some(total) = self.total_len {
            if version.content_length != total {
                return Err(invalid(format!(
                    "finished file has {} bytes, {total} were uploaded",
                    version.content_length
                )));
            }
        }
        Ok(version)
    }

    fn finish_op(&self) -> Option<FinishLargeFile> {
        Some(FinishLargeFile::new(
            self.file_id.clone()?,
            self.sha1s.values().copied().collect(),
        ))
    }

    /// The request of the current single-request phase.
    fn single_request(&self) -> Result<Request<Bytes>, Error> {
        let file_id = || self.file_id.clone().ok_or_else(missing_file_id);
        match &self.phase {
            Phase::Starting(_) => self.start.request(&self.session),
            Phase::Finishing(_) => self
                .finish_op()
                .ok_or_else(missing_file_id)
                .and_then(|op| op.request(&self.session)),
            Phase::Checking(_) => {
                file_id().and_then(|id| GetFileInfo::new(id).request(&self.session))
            }
            _ => file_id().and_then(|id| CancelLargeFile::new(id).request(&self.session)),
        }
    }

    /// Polls the single request of the current phase.
    fn poll_single(&mut self, now: Instant) -> Option<Step<FileVersion>> {
        let state = match &self.phase {
            Phase::Starting(s)
            | Phase::Finishing(s)
            | Phase::Checking(s)
            | Phase::Cancelling(s) => *s,
            Phase::Uploading | Phase::Done => return None,
        };
        let next = match state {
            Single::Ready => match self.single_request() {
                Ok(request) => {
                    let id = self.ids.next();
                    self.single_retrier.start_attempt(now);
                    self.set_single(Single::InFlight(id));
                    return Some(Step::Send(id, request.map(Body::Bytes)));
                }
                Err(e) => {
                    if matches!(self.phase, Phase::Cancelling(_)) {
                        self.report_pending();
                    } else {
                        self.fail(e);
                    }
                    return None;
                }
            },
            Single::InFlight(_) => return Some(Step::Pending),
            Single::Waiting(until) if now >= until => Single::Ready,
            Single::Waiting(until) => return Some(Step::Wait(until)),
            Single::NeedSession if self.reauth_requested => return Some(Step::Pending),
            Single::NeedSession => {
                self.reauth_requested = true;
                return Some(Step::Reauthorize {
                    stale: self.session.clone(),
                });
            }
        };
        self.set_single(next);
        None
    }

    fn set_single(&mut self, state: Single) {
        match &mut self.phase {
            Phase::Starting(s)
            | Phase::Finishing(s)
            | Phase::Checking(s)
            | Phase::Cancelling(s) => {
                *s = state;
            }
            _ => {}
        }
    }

    fn report_pending(&mut self) {
        let error = self.pending_error.take().unwrap_or_else(|| {
            InvalidInput::Argument {
                what: "large file",
                reason: "cancelled".into(),
            }
            .into()
        });
        self.finish(Err(error));
    }

    /// Retries the current single request after `error`, or returns the error to give up with.
    fn retry_single(&mut self, error: Error, class: RetryClass, now: Instant) -> Option<Error> {
        match self.single_retrier.after_failure(error, class, now) {
            Verdict::Fail(e) => Some(e),
            Verdict::Retry {
                refresh: Refresh::Session,
                ..
            } => {
                self.set_single(Single::NeedSession);
                None
            }
            Verdict::Retry { at, .. } => {
                self.set_single(Single::Waiting(at));
                None
            }
        }
    }

    fn handle_single(&mut self, response: Result<Response<Bytes>, Error>, now: Instant) {
        match self.phase {
            Phase::Starting(_) => {
                match response.and_then(|r| self.start.parse(r)) {
                    Ok(version) => match version.file_id {
                        Some(id) => {
                            self.file_id = Some(id);
                            self.phase = Phase::Uploading;
                            // The parts go into the file the reply names: it must be the one
                            // asked for. Another one is cancelled (unless kept) and reported.
                            let bucket = version.bucket_id.as_ref();
                            if version.file_name != *self.start.file_name()
                                || bucket.is_some_and(|b| b != self.start.bucket_id())
                            {
                                self.fail(Error::InvalidResponse {
                                    op: StartLargeFile::NAME,
                                    reason: format!(
                                        "asked to start {:?} in bucket {}, B2 started {:?} in {}",
                                        self.start.file_name().as_str(),
                                        self.start.bucket_id(),
                                        version.file_name.as_str(),
                                        bucket.map_or("an unnamed bucket", BucketId::as_str),
                                    ),
                                });
                            }
                        }
                        None => self.finish(Err(Error::InvalidResponse {
                            op: StartLargeFile::NAME,
                            reason: "no fileId in the reply".into(),
                        })),
                    },
                    Err(e) => {
                        if let Some(e) = self.retry_single(e, RetryClass::NonIdempotent, now) {
                            // Nothing was started that could be cancelled.
                            self.finish(Err(e));
                        }
                    }
                }
            }
            Phase::Finishing(_) => {
                let Some(op) = self.finish_op() else {
                    return self.finish(Err(missing_file_id()));
                };
                match response.and_then(|r| op.parse(r)) {
                    Ok(version) => {
                        let checked = self.check_finished(version);
                        self.finish(checked);
                    }
                    Err(e) => {
                        // A 400 after an attempt whose reply was lost may mean the file is
                        // already finished: check before reporting a failure.
                        // https://www.backblaze.com/apidocs/b2-finish-large-file
                        if self.finish_uncertain
                            && e.status() == Some(http::StatusCode::BAD_REQUEST)
                        {
                            self.pending_error = Some(e);
                            self.single_retrier = Retrier::new(&self.policy, 0xc4);
                            self.phase = Phase::Checking(Single::Ready);
                            return;
                        }
                        self.finish_uncertain |= outcome_unknown(&e);
                        if let Some(e) = self.retry_single(e, RetryClass::Idempotent, now) {
                            self.fail(e);
                        }
                    }
                }
            }
            Phase::Checking(_) => {
                let Some(id) = self.file_id.clone() else {
                    return self.finish(Err(missing_file_id()));
                };
                match response.and_then(|r| GetFileInfo::new(id).parse(r)) {
                    Ok(version)
                        if version.action == crate::model::Action::Upload
                            && self
                                .total_len
                                .is_none_or(|total| total == version.content_length) =>
                    {
                        self.pending_error = None;
                        self.finish(Ok(version));
                    }
                    Ok(_) => {
                        let e = self.pending_error.take().unwrap_or_else(missing_file_id);
                        self.fail(e);
                    }
                    Err(e) => {
                        if self.retry_single(e, RetryClass::Idempotent, now).is_some() {
                            // Not finished (B2 refuses file info for unfinished large files), or
                            // unknown: the finish's own error stands. Cancelling a file that
                            // was finished after all is refused by B2, so it is harmless.
                            let e = self.pending_error.take().unwrap_or_else(missing_file_id);
                            self.fail(e);
                        }
                    }
                }
            }
            Phase::Cancelling(_) => {
                let Some(id) = self.file_id.clone() else {
                    return self.report_pending();
                };
                match response.and_then(|r| CancelLargeFile::new(id).parse(r)) {
                    Ok(_) => self.report_pending(),
                    Err(e) => {
                        if self.retry_single(e, RetryClass::Idempotent, now).is_some() {
                            self.report_pending();
                        }
                    }
                }
            }
            Phase::Uploading | Phase::Done => {}
        }
    }

    fn handle_job(&mut self, i: usize, response: Result<Response<Bytes>, Error>, now: Instant) {
        let Some(job) = self.jobs.get_mut(i) else {
            return;
        };
        match job.state {
            JobState::GettingTarget(_) => {
                let Some(file_id) = self.file_id.clone() else {
                    return;
                };
                match response.and_then(|r| GetUploadPartUrl::new(file_id).parse(r)) {
                    Ok(target) => {
                        job.url_retrier.succeeded();
                        job.target = Some(target);
                        job.state = JobState::Ready;
                    }
                    Err(e) => match job
                        .url_retrier
                        .after_failure(e, RetryClass::Idempotent, now)
                    {
                        Verdict::Fail(e) => self.fail(e),
                        Verdict::Retry {
                            refresh: Refresh::Session,
                            ..
                        } => job.state = JobState::NeedSession,
                        Verdict::Retry { at, .. } => {
                            job.state = JobState::Waiting(at, Then::GetTarget);
                        }
                    },
                }
            }
            JobState::Sending(_) => {
                let result = match &job.work {
                    Work::Upload { len, sha1, .. } => {
                        let op = UploadPart::new(job.number, *len, *sha1);
                        response.and_then(|r| op.parse(r)).map(|_| *sha1)
                    }
                    Work::Copy(op) => response.and_then(|r| op.parse(r)).and_then(|part| {
                        part.content_sha1
                            .digest()
                            .ok_or_else(|| Error::InvalidResponse {
                                op: CopyPart::NAME,
                                reason: format!("part {} has no SHA1", part.part_number),
                            })
                    }),
                    Work::Reading(..) => return,
                };
                match result {
                    Ok(sha1) => {
                        let job = self.jobs.swap_remove(i);
                        if let Some(target) = job.target {
                            self.idle_targets.push(target);
                        }
                        self.part_done(job.number, sha1, job.work.len());
                    }
                    Err(e) => self.part_failed(i, e, now),
                }
            }
            _ => {}
        }
    }

    fn part_failed(&mut self, i: usize, error: Error, now: Instant) {
        let Some(job) = self.jobs.get_mut(i) else {
            return;
        };
        let (class, ours) = match &job.work {
            Work::Upload { content, .. } => {
                (RetryClass::Upload, matches!(content, Content::Memory(_)))
            }
            _ => (RetryClass::Idempotent, false),
        };
        if ours && is_sha1_mismatch(&error) {
            // Bytes hashed here arrived corrupted: send them again on a new URL.
            job.target = None;
            let until = now.checked_add(self.backoff.next_delay());
            let Some(until) = until.filter(|_| job.retrier.attempts() < self.policy.max_attempts)
            else {
                let attempts = job.retrier.attempts();
                return self.fail(Error::RetriesExhausted {
                    attempts,
                    last: Box::new(error),
                });
            };
            job.state = JobState::Waiting(until, Then::GetTarget);
            return;
        }
        match job.retrier.after_failure(error, class, now) {
            Verdict::Fail(e) => self.fail(e),
            Verdict::Retry {
                refresh: Refresh::Session,
                ..
            } => job.state = JobState::NeedSession,
            Verdict::Retry {
                at,
                refresh: Refresh::UploadTarget,
            } => {
                job.target = None;
                job.state = JobState::Waiting(at, Then::GetTarget);
            }
            Verdict::Retry { at, .. } => job.state = JobState::Waiting(at, Then::Send),
        }
    }

    /// Takes the bytes of a part read with `NeedPart`.
    fn part_read(&mut self, i: usize, data: Bytes) {
        let Some(job) = self.jobs.get(i) else {
            return;
        };
        let (number, range) = match &job.work {
            Work::Reading(_, range) => (job.number, range.clone()),
            _ => return,
        };
        let Parts::Read(reader) = &mut self.parts else {
            return;
        };
        reader.reading = false;
        let asked = range.end - range.start;
        let got = data.len() as u64;
        let sized = reader.total.is_some();
        if got > asked || (sized && got != asked) {
            return self.fail(
                InvalidInput::Size {
                    reason: format!("part {number}: {got} bytes supplied for a range of {asked}"),
                }
                .into(),
            );
        }
        if !sized && got < asked {
            reader.ended = true;
        }
        if !sized && got == asked && number.get() == MAX_PART_NUMBER {
            return self.fail(
                InvalidInput::Size {
                    reason: format!(
                        "the source fills all {MAX_PART_NUMBER} parts of {asked} bytes; use larger parts"
                    ),
                }
                .into(),
            );
        }
        let minimum = self.session.absolute_minimum_part_size;
        if got == 0 && number == PartNumber::FIRST {
            return self.fail(
                InvalidInput::Size {
                    reason: "the source is empty; upload it with b2_upload_file".into(),
                }
                .into(),
            );
        }
        if got == 0 {
            // The source ended exactly at the end of the previous part.
            self.jobs.swap_remove(i);
            self.last_part = PartNumber::new(u32::from(number.get()) - 1).ok();
            self.total_len = Some(range.start);
            return self.release_first_part(minimum);
        }
        let ended = reader.ended;
        let sha1 = Sha1Digest::of(&data);
        if let Some(job) = self.jobs.get_mut(i) {
            job.work = Work::Upload {
                content: Content::Memory(data),
                len: got,
                sha1,
            };
            job.held = !sized && number == PartNumber::FIRST;
        }
        if ended {
            self.last_part = Some(number);
            self.total_len = Some(range.start + got);
        }
        if number != PartNumber::FIRST || ended {
            self.release_first_part(minimum);
        }
        // A resume skips a part already present (found by number: releasing the first part
        // may have moved jobs around).
        let present = self.already_present(number, got, sha1);
        if let Some(j) = self.jobs.iter().position(|j| j.number == number) {
            let unchanged = matches!(self.jobs[j].work, Work::Upload { len, .. } if len == got);
            if present && unchanged && !self.jobs[j].held {
                self.jobs.swap_remove(j);
                self.part_done(number, sha1, got);
            }
        }
    }

    /// Lets an unsized source's first part go, splitting it in two if it is the only one.
    fn release_first_part(&mut self, minimum: u64) {
        let Some(i) = self.jobs.iter().position(|j| j.held) else {
            return;
        };
        let only_part = self.last_part == Some(PartNumber::FIRST);
        let job = &mut self.jobs[i];
        job.held = false;
        if !only_part {
            // A resume skips it if it is already present.
            if let Work::Upload { len, sha1, .. } = job.work {
                let number = job.number;
                if self.already_present(number, len, sha1) {
                    self.jobs.swap_remove(i);
                    self.part_done(number, sha1, len);
                }
            }
            return;
        }
        let Work::Upload {
            content: Content::Memory(data),
            len,
            ..
        } = &job.work
        else {
            return;
        };
        let len = *len;
        if len <= minimum {
            return self.fail(
                InvalidInput::Size {
                    reason: format!(
                        "the source holds {len} bytes, too few for the two parts a large file \
                         needs (the first at least {minimum} bytes); upload it with b2_upload_file"
                    ),
                }
                .into(),
            );
        }
        let cut = minimum.max(len.div_ceil(2));
        let (first, second) = (data.slice(..cut as usize), data.slice(cut as usize..));
        let second_number = PartNumber::FIRST.next().unwrap_or(PartNumber::FIRST);
        let first_sha1 = Sha1Digest::of(&first);
        let second_sha1 = Sha1Digest::of(&second);
        job.work = Work::Upload {
            content: Content::Memory(first),
            len: cut,
            sha1: first_sha1,
        };
        let second_len = len - cut;
        let mut second_job = self.new_job(
            second_number,
            Work::Upload {
                content: Content::Memory(second),
                len: second_len,
                sha1: second_sha1,
            },
            JobState::Idle,
        );
        second_job.held = false;
        self.last_part = Some(second_number);
        self.jobs.push(second_job);
        // Parts already present (a resume) are not sent again.
        for (number, len, sha1) in [
            (PartNumber::FIRST, cut, first_sha1),
            (second_number, second_len, second_sha1),
        ] {
            if self.already_present(number, len, sha1) {
                if let Some(j) = self.jobs.iter().position(|j| j.number == number) {
                    self.jobs.swap_remove(j);
                }
                self.part_done(number, sha1, len);
            }
        }
    }
}

fn missing_file_id() -> Error {
    InvalidInput::Argument {
        what: "large file",
        reason: "no file id".into(),
    }
    .into()
}

/// True when a failed request may nevertheless have taken effect.
fn outcome_unknown(error: &Error) -> bool {
    match error {
        Error::Transport(t) => t.kind != TransportErrorKind::Connect,
        Error::Api(e) => {
            e.status.is_server_error() || e.status == http::StatusCode::REQUEST_TIMEOUT
        }
        _ => false,
    }
}

fn validate_specs(specs: &[PartSpec], minimum: u64) -> Result<(), InvalidInput> {
    let max_parts = usize::from(MAX_PART_NUMBER);
    if specs.len() < 2 || specs.len() > max_parts {
        return Err(InvalidInput::Size {
            reason: format!(
                "{} parts; B2 needs 2 to {max_parts} parts for a large file",
                specs.len()
            ),
        });
    }
    let last = specs.len() - 1;
    for (i, spec) in specs.iter().enumerate() {
        let len = spec.len();
        let n = i + 1;
        if len > MAX_PART_SIZE {
            return Err(InvalidInput::Size {
                reason: format!("part {n} is {len} bytes, over the {MAX_PART_SIZE}-byte limit"),
            });
        }
        if len == 0 {
            return Err(InvalidInput::Size {
                reason: format!("part {n} is empty"),
            });
        }
        if i < last && len < minimum {
            return Err(InvalidInput::Size {
                reason: format!(
                    "part {n} is {len} bytes; every part but the last needs at least {minimum}"
                ),
            });
        }
    }
    Ok(())
}

impl Machine for LargeUpload {
    type Output = FileVersion;

    fn poll_step(&mut self, now: Instant) -> Step<FileVersion> {
        for _ in 0..10_000 {
            let step = match self.phase {
                Phase::Done => {
                    return Step::Done(self.outcome.take().unwrap_or_else(|| {
                        Err(InvalidInput::Argument {
                            what: "machine",
                            reason: "polled again after it finished".into(),
                        }
                        .into())
                    }));
                }
                Phase::Uploading => self.poll_uploading(now),
                _ => self.poll_single(now),
            };
            if let Some(step) = step {
                return step;
            }
            if self.outcome.is_some() && !matches!(self.phase, Phase::Cancelling(_)) {
                self.phase = Phase::Done;
            }
        }
        Step::Pending
    }

    fn handle_response(
        &mut self,
        id: RequestId,
        response: Result<Response<Bytes>, TransportError>,
        now: Instant,
    ) {
        let response = response.map_err(Error::from);
        let single = match &self.phase {
            Phase::Starting(s)
            | Phase::Finishing(s)
            | Phase::Checking(s)
            | Phase::Cancelling(s) => Some(*s),
            _ => None,
        };
        if let Some(Single::InFlight(current)) = single {
            if current == id {
                self.set_single(Single::Ready);
                self.single_retrier_succeeded_if(&response);
                return self.handle_single(response, now);
            }
            return;
        }
        if !matches!(self.phase, Phase::Uploading) {
            return;
        }
        let found = self.jobs.iter().position(
            |j| matches!(j.state, JobState::GettingTarget(x) | JobState::Sending(x) if x == id),
        );
        if let Some(i) = found {
            self.handle_job(i, response, now);
        }
    }

    fn handle_session(&mut self, session: Arc<Session>) {
        self.session = session;
        self.reauth_requested = false;
        for job in &mut self.jobs {
            if matches!(job.state, JobState::NeedSession) {
                // Only JSON calls refresh the session: the part URL or the copy.
                job.state = if matches!(job.work, Work::Copy(_)) {
                    JobState::Ready
                } else {
                    JobState::Idle
                };
            }
        }
        let single = match &self.phase {
            Phase::Starting(s)
            | Phase::Finishing(s)
            | Phase::Checking(s)
            | Phase::Cancelling(s) => Some(*s),
            _ => None,
        };
        if let Some(Single::NeedSession) = single {
            self.set_single(Single::Ready);
        }
    }

    fn provide_part(&mut self, id: RequestId, data: Bytes, _now: Instant) {
        if !matches!(self.phase, Phase::Uploading) {
            return;
        }
        let found = self
            .jobs
            .iter()
            .position(|j| matches!(j.work, Work::Reading(x, _) if x == id));
        if let Some(i) = found {
            self.part_read(i, data);
        }
    }
}

impl LargeUpload {
    fn single_retrier_succeeded_if(&mut self, response: &Result<Response<Bytes>, Error>) {
        if matches!(response, Ok(r) if r.status().is_success()) {
            self.single_retrier.succeeded();
        }
    }
}
