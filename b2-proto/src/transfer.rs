//! Whole uploads: one description of the new file, one machine that picks `b2_upload_file` or
//! the large-file API by size.
//!
//! Drivers describe the file once with [`NewFile`], choose an [`UploadStrategy`] (when to
//! switch to the large-file API, part size, parts in flight), and run the [`UploadMachine`]
//! the strategy builds for their source:
//!
//! | source | constructor | driver supplies |
//! |---|---|---|
//! | bytes in memory | [`UploadMachine::from_bytes`] | nothing more (parts are slices of the bytes, `Body::Source`) |
//! | a file | [`UploadMachine::from_hashed`], after one [`PartHasher`] pass | `Body::Source` ranges read from the file |
//! | a reader of known length | [`UploadMachine::from_reader`] | `NeedPart` reads, in order |
//! | a reader of unknown length | [`UploadMachine::from_unsized_reader`] | `NeedPart` reads, in order, short at the end |
//!
//! ```
//! use b2_proto::transfer::{NewFile, UploadStrategy};
//! use b2_proto::{BucketId, FileName};
//!
//! let file = NewFile::new(BucketId::new("b1"), FileName::new("photos/cat.jpg").unwrap())
//!     .with_content_type("image/jpeg");
//! let strategy = UploadStrategy::default().with_max_in_flight(4);
//! # let _ = (file, strategy);
//! ```

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use crate::error::{InvalidInput, TransportError};
use crate::large_upload::{LargeUpload, PartSpec};
use crate::machine::{Machine, RequestId, Step};
use crate::model::file::{Encryption, FileRetention, FileVersion, LegalHold};
use crate::ops::large_file::StartLargeFile;
use crate::ops::upload::UploadFile;
use crate::planner::{HashedSource, LargeFileCutoff, PartHasher, PartPlan, StreamPlan};
use crate::retry::RetryPolicy;
use crate::session::Session;
use crate::types::{BucketId, FileInfo, FileName};
use crate::upload::{PooledTarget, SimpleUpload};

/// A new file: its bucket, name and the metadata B2 stores with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFile {
    bucket_id: BucketId,
    upload: UploadFile,
    start: StartLargeFile,
}

impl NewFile {
    /// A file named `file_name` in `bucket_id`, with B2 picking the content type.
    pub fn new(bucket_id: BucketId, file_name: FileName) -> Self {
        Self {
            upload: UploadFile::new(file_name.clone()),
            start: StartLargeFile::new(bucket_id.clone(), file_name),
            bucket_id,
        }
    }

    /// Sets the MIME type (default `b2/x-auto`).
    pub fn with_content_type(mut self, content_type: impl Into<String>) -> Self {
        let content_type = content_type.into();
        self.upload = self.upload.with_content_type(content_type.clone());
        self.start = self.start.with_content_type(content_type);
        self
    }

    /// Sets the custom file information.
    pub fn with_file_info(mut self, info: FileInfo) -> Self {
        self.upload = self.upload.with_file_info(info.clone());
        self.start = self.start.with_file_info(info);
        self
    }

    /// Records the source's last modification time (`src_last_modified_millis`).
    pub fn with_last_modified_millis(mut self, millis: u64) -> Self {
        self.upload = self.upload.with_last_modified_millis(millis);
        self.start = self.start.with_last_modified_millis(millis);
        self
    }

    /// Sets an Object Lock legal hold.
    pub fn with_legal_hold(mut self, legal_hold: LegalHold) -> Self {
        self.upload = self.upload.with_legal_hold(legal_hold.clone());
        self.start = self.start.with_legal_hold(legal_hold);
        self
    }

    /// Sets Object Lock retention.
    pub fn with_retention(mut self, retention: FileRetention) -> Self {
        self.upload = self.upload.with_retention(retention.clone());
        self.start = self.start.with_retention(retention);
        self
    }

    /// Encrypts the file (SSE-B2, or SSE-C with the caller's key).
    pub fn with_encryption(mut self, encryption: Encryption) -> Self {
        self.upload = self.upload.with_encryption(encryption.clone());
        self.start = self.start.with_encryption(encryption);
        self
    }

    /// Says the bucket has Object Lock enabled (the header limit drops to 2048 bytes).
    pub fn with_lock_enabled_bucket(mut self, enabled: bool) -> Self {
        self.upload = self.upload.with_lock_enabled_bucket(enabled);
        self.start = self.start.with_lock_enabled_bucket(enabled);
        self
    }

    /// The bucket.
    pub fn bucket_id(&self) -> &BucketId {
        &self.bucket_id
    }

    /// The file name.
    pub fn file_name(&self) -> &FileName {
        self.upload.file_name()
    }

    /// The `b2_upload_file` call for this file.
    pub fn upload_file(&self) -> &UploadFile {
        &self.upload
    }

    /// The `b2_start_large_file` call for this file.
    pub fn start_large_file(&self) -> &StartLargeFile {
        &self.start
    }
}

/// How to upload: when to use the large-file API, in what part size, with how many parts
/// in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadStrategy {
    cutoff: LargeFileCutoff,
    part_size: Option<u64>,
    max_in_flight: usize,
}

impl Default for UploadStrategy {
    fn default() -> Self {
        Self {
            cutoff: LargeFileCutoff::default(),
            part_size: None,
            max_in_flight: 4,
        }
    }
}

impl UploadStrategy {
    /// Sources longer than `bytes` use the large-file API (default 200 MB).
    pub fn with_cutoff(mut self, bytes: u64) -> Self {
        self.cutoff = LargeFileCutoff::new(bytes);
        self
    }

    /// Parts of `bytes` (default: the session's recommended part size, grown as needed so no
    /// file needs more than 10,000 parts).
    pub fn with_part_size(mut self, bytes: u64) -> Self {
        self.part_size = Some(bytes);
        self
    }

    /// Parts uploaded at once (default 4). Each holds one connection; a source that cannot be
    /// re-read also holds each in-flight part in memory.
    pub fn with_max_in_flight(mut self, parts: usize) -> Self {
        self.max_in_flight = parts.max(1);
        self
    }

    /// The cutoff.
    pub fn cutoff(&self) -> LargeFileCutoff {
        self.cutoff
    }

    /// Parts in flight.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }

    /// The part plan for a source of `len` bytes, or `None` when it goes in one
    /// `b2_upload_file`.
    ///
    /// # Errors
    ///
    /// [`InvalidInput::Size`] for a source over 10 TB or a part size out of B2's range.
    pub fn plan(&self, len: u64, session: &Session) -> Result<Option<PartPlan>, InvalidInput> {
        if !self.cutoff.use_large_file(len) {
            return Ok(None);
        }
        let plan = match self.part_size {
            Some(size) => PartPlan::with_part_size(len, size, session.absolute_minimum_part_size)?,
            None => PartPlan::new(len, session)?,
        };
        Ok(Some(plan))
    }

    /// A hasher for one pass over a source of `len` bytes planned as `plan`.
    pub fn hasher(&self, len: u64, plan: Option<&PartPlan>) -> PartHasher {
        match plan {
            Some(plan) => PartHasher::new(plan),
            None => PartHasher::with_part_size(len.max(1)),
        }
    }

    /// How much of a source of unknown length to read before choosing how to upload it:
    /// read up to this many bytes plus one, then call [`UploadMachine::from_probed`].
    ///
    /// # Errors
    ///
    /// [`InvalidInput::Size`] for a part size out of B2's range.
    pub fn probe_len(&self, session: &Session) -> Result<u64, InvalidInput> {
        Ok(self
            .cutoff
            .get()
            .min(self.stream_plan(session)?.part_size()))
    }

    /// The part size for sources of unknown length.
    ///
    /// # Errors
    ///
    /// [`InvalidInput::Size`] for a part size out of B2's range.
    pub fn stream_plan(&self, session: &Session) -> Result<StreamPlan, InvalidInput> {
        match self.part_size {
            Some(size) => StreamPlan::with_part_size(size, session.absolute_minimum_part_size),
            None => Ok(StreamPlan::new(session)),
        }
    }
}

/// One upload, simple or large, as a single [`Machine`] whose output is the new file version.
#[derive(Debug)]
pub struct UploadMachine(Kind);

#[derive(Debug)]
enum Kind {
    /// One `b2_upload_file`, and the URL it leaves for reuse.
    Simple(SimpleUpload, Option<PooledTarget>),
    /// The large-file API.
    Large(LargeUpload),
}

impl UploadMachine {
    /// Uploads bytes in memory. Large files send their parts as `Body::Source` ranges of
    /// `data`, which the driver slices.
    ///
    /// # Errors
    ///
    /// [`InvalidInput`] for sizes B2 refuses.
    pub fn from_bytes(
        file: &NewFile,
        data: Bytes,
        strategy: &UploadStrategy,
        session: Arc<Session>,
        policy: &RetryPolicy,
        target: Option<PooledTarget>,
    ) -> Result<Self, InvalidInput> {
        let len = data.len() as u64;
        match strategy.plan(len, &session)? {
            None => {
                let mut upload = SimpleUpload::from_bytes(
                    file.upload.clone(),
                    file.bucket_id.clone(),
                    data,
                    session,
                    policy,
                );
                if let Some(target) = target {
                    upload = upload.with_target(target);
                }
                Ok(Self(Kind::Simple(upload, None)))
            }
            Some(plan) => {
                let mut hasher = PartHasher::new(&plan);
                hasher.update(&data);
                let hashed = hasher.finish()?;
                Ok(Self::from_hashed(
                    file,
                    Some(&plan),
                    &hashed,
                    strategy,
                    session,
                    policy,
                    None,
                ))
            }
        }
    }

    /// Uploads a re-readable source (a file) hashed in one pass by
    /// [`UploadStrategy::hasher`]: each body is a `Body::Source` range the driver streams.
    pub fn from_hashed(
        file: &NewFile,
        plan: Option<&PartPlan>,
        hashed: &HashedSource,
        strategy: &UploadStrategy,
        session: Arc<Session>,
        policy: &RetryPolicy,
        target: Option<PooledTarget>,
    ) -> Self {
        match plan {
            None => {
                let mut upload = SimpleUpload::from_source(
                    file.upload.clone(),
                    file.bucket_id.clone(),
                    0..hashed.total_len,
                    hashed.whole_sha1,
                    session,
                    policy,
                );
                if let Some(target) = target {
                    upload = upload.with_target(target);
                }
                Self(Kind::Simple(upload, None))
            }
            Some(plan) => Self(Kind::Large(
                LargeUpload::from_source(file.start.clone(), plan, hashed, session, policy)
                    .with_max_in_flight(strategy.max_in_flight),
            )),
        }
    }

    /// Finishes the unfinished large file `file_id` from a re-readable source hashed along
    /// `plan` (see [`resume_plan`](crate::compose::resume_plan)): parts in `listed` (from
    /// `b2_list_parts`, all pages) whose size and SHA1 match are kept, the others sent.
    #[allow(clippy::too_many_arguments)]
    pub fn resume(
        file: &NewFile,
        plan: &PartPlan,
        hashed: &HashedSource,
        file_id: crate::types::FileId,
        listed: Vec<crate::model::file::Part>,
        strategy: &UploadStrategy,
        session: Arc<Session>,
        policy: &RetryPolicy,
    ) -> Self {
        Self(Kind::Large(
            LargeUpload::from_source(file.start.clone(), plan, hashed, session, policy)
                .resume(file_id, listed)
                .with_max_in_flight(strategy.max_in_flight),
        ))
    }

    /// Uploads a large source of known length that can be read only once, in order.
    pub fn from_reader(
        file: &NewFile,
        plan: &PartPlan,
        strategy: &UploadStrategy,
        session: Arc<Session>,
        policy: &RetryPolicy,
    ) -> Self {
        Self(Kind::Large(
            LargeUpload::from_reader(file.start.clone(), plan, session, policy)
                .with_max_in_flight(strategy.max_in_flight),
        ))
    }

    /// Uploads a source of unknown length, read once, in order, in parts of `plan`'s size.
    pub fn from_unsized_reader(
        file: &NewFile,
        plan: StreamPlan,
        strategy: &UploadStrategy,
        session: Arc<Session>,
        policy: &RetryPolicy,
    ) -> Self {
        Self(Kind::Large(
            LargeUpload::from_unsized_reader(file.start.clone(), plan, session, policy)
                .with_max_in_flight(strategy.max_in_flight),
        ))
    }

    /// Uploads a source of unknown length whose first bytes, `prefix`, were read as
    /// [`UploadStrategy::probe_len`] says: one `b2_upload_file` of `prefix` when the source
    /// ended within the probe, else the large-file API, to which the driver supplies `prefix`
    /// first and then the rest of the source (`NeedPart`, in order).
    ///
    /// # Errors
    ///
    /// [`InvalidInput::Size`] for a part size out of B2's range.
    pub fn from_probed(
        file: &NewFile,
        prefix: &Bytes,
        strategy: &UploadStrategy,
        session: Arc<Session>,
        policy: &RetryPolicy,
        target: Option<PooledTarget>,
    ) -> Result<Self, InvalidInput> {
        let plan = strategy.stream_plan(&session)?;
        if prefix.len() as u64 <= strategy.probe_len(&session)? {
            let one_part = strategy.with_cutoff(u64::MAX);
            return Self::from_bytes(file, prefix.clone(), &one_part, session, policy, target);
        }
        Ok(Self::from_unsized_reader(
            file, plan, strategy, session, policy,
        ))
    }

    /// Copies all `source_len` bytes of `source` server-side into `file` with `b2_copy_part`:
    /// the way to copy a file over 5 GB.
    ///
    /// # Errors
    ///
    /// [`InvalidInput::Size`] for a part size out of B2's range.
    pub fn copy(
        file: &NewFile,
        source: crate::types::FileId,
        source_len: u64,
        strategy: &UploadStrategy,
        session: Arc<Session>,
        policy: &RetryPolicy,
    ) -> Result<Self, InvalidInput> {
        let upload = match strategy.part_size {
            None => LargeUpload::copy_file(file.start.clone(), source, source_len, session, policy),
            Some(size) => {
                let plan =
                    PartPlan::with_part_size(source_len, size, session.absolute_minimum_part_size)?;
                let specs = plan
                    .iter()
                    .map(|(_, range)| PartSpec::copy(source.clone(), range))
                    .collect();
                LargeUpload::new(file.start.clone(), specs, session, policy)
            }
        };
        Ok(Self(Kind::Large(
            upload.with_max_in_flight(strategy.max_in_flight),
        )))
    }

    /// Progress so far: bytes of the parts (or the file) B2 has accepted, out of the total
    /// when known. Retried bytes are not counted twice.
    pub fn progress(&self) -> crate::progress::Progress {
        match &self.0 {
            Kind::Simple(upload, target) => {
                let total = upload.content_len();
                let done = if target.is_some() { total } else { 0 };
                crate::progress::Progress::new(done, Some(total))
            }
            Kind::Large(upload) => {
                crate::progress::Progress::new(upload.bytes_done(), upload.total_len())
            }
        }
    }

    /// After success: the upload URL of a simple upload, still good, for an upload URL pool.
    pub fn take_target(&mut self) -> Option<PooledTarget> {
        match &mut self.0 {
            Kind::Simple(_, target) => target.take(),
            Kind::Large(_) => None,
        }
    }
}

impl Machine for UploadMachine {
    type Output = FileVersion;

    fn poll_step(&mut self, now: Instant) -> Step<FileVersion> {
        match &mut self.0 {
            Kind::Simple(upload, target) => match upload.poll_step(now) {
                Step::Done(Ok(uploaded)) => {
                    *target = Some(uploaded.target);
                    Step::Done(Ok(uploaded.file))
                }
                Step::Done(Err(e)) => Step::Done(Err(e)),
                Step::Send(id, request) => Step::Send(id, request),
                Step::NeedPart { id, part, range } => Step::NeedPart { id, part, range },
                Step::Reauthorize { stale } => Step::Reauthorize { stale },
                Step::Wait(at) => Step::Wait(at),
                Step::Pending => Step::Pending,
            },
            Kind::Large(upload) => upload.poll_step(now),
        }
    }

    fn handle_response(
        &mut self,
        id: RequestId,
        response: Result<http::Response<Bytes>, TransportError>,
        now: Instant,
    ) {
        match &mut self.0 {
            Kind::Simple(upload, _) => upload.handle_response(id, response, now),
            Kind::Large(upload) => upload.handle_response(id, response, now),
        }
    }

    fn handle_session(&mut self, session: Arc<Session>) {
        match &mut self.0 {
            Kind::Simple(upload, _) => upload.handle_session(session),
            Kind::Large(upload) => upload.handle_session(session),
        }
    }

    fn provide_part(&mut self, id: RequestId, data: Bytes, now: Instant) {
        match &mut self.0 {
            Kind::Simple(upload, _) => upload.provide_part(id, data, now),
            Kind::Large(upload) => upload.provide_part(id, data, now),
        }
    }
}
