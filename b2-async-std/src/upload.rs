//! Uploads from bytes, files and readers; server-side copies.

use std::path::Path;
use std::time::Instant;

use b2_proto::model::FileVersion;
use b2_proto::progress::{Progress, ProgressFn};
use b2_proto::transfer::{NewFile, UploadMachine, UploadStrategy};
use b2_proto::{Error, FileId, InvalidInput};
use bytes::Bytes;
use futures_util::io::{AsyncRead, AsyncReadExt as _};
use tracing::Instrument as _;

use crate::Client;
use crate::client::Source;

/// Where the bytes of an upload come from.
#[non_exhaustive]
pub enum UploadSource<'a> {
    /// Bytes in memory.
    Bytes(Bytes),
    /// A file, read twice: once to hash it (one pass, bounded memory), then part by part as it
    /// is sent. It must not change during the upload.
    Path(&'a Path),
    /// A reader, read once in order, of known length (`Some`) or not (`None`). Large uploads
    /// hold at most the parts in flight in memory; small ones (up to the cutoff) are read whole.
    Reader {
        /// The reader.
        reader: Box<dyn AsyncRead + Send + Unpin + 'a>,
        /// Its length, when known.
        len: Option<u64>,
    },
}

impl std::fmt::Debug for UploadSource<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Bytes(b) => write!(f, "UploadSource::Bytes({} bytes)", b.len()),
            Self::Path(p) => f.debug_tuple("UploadSource::Path").field(p).finish(),
            Self::Reader { len, .. } => f
                .debug_struct("UploadSource::Reader")
                .field("len", len)
                .finish(),
        }
    }
}

/// How one upload runs.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct UploadOptions {
    /// When to use the large-file API, part size, parts in flight; `None`: the client's.
    pub strategy: Option<UploadStrategy>,
    /// Receives progress reports.
    pub progress: Option<ProgressFn>,
}

impl UploadOptions {
    /// The client's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Uses `strategy` for this upload.
    pub fn with_strategy(mut self, strategy: UploadStrategy) -> Self {
        self.strategy = Some(strategy);
        self
    }

    /// Reports progress to `progress`.
    pub fn with_progress(mut self, progress: ProgressFn) -> Self {
        self.progress = Some(progress);
        self
    }
}

const HASH_CHUNK: usize = 1 << 20;

impl Client {
    /// Uploads bytes as a new file version: one `b2_upload_file`, or the large-file API with
    /// parts in parallel above the client's cutoff.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a name, info or size B2 refuses; `401 unauthorized`,
    /// `403 cap_exceeded`; retried failures (503, broken connections, expired tokens) only
    /// once Backblaze's five upload URLs and the retry policy are exhausted.
    pub async fn upload_bytes(
        &self,
        file: NewFile,
        data: impl Into<Bytes>,
    ) -> Result<FileVersion, Error> {
        self.upload(
            file,
            UploadSource::Bytes(data.into()),
            &UploadOptions::new(),
        )
        .await
    }

    /// Uploads a file from disk, streaming it: memory stays bounded by the parts in flight's
    /// network buffers, whatever the file's size. Records its whole SHA1 for large files.
    ///
    /// # Errors
    ///
    /// As [`Client::upload_bytes`], plus [`Error::Io`] when the file cannot be read.
    pub async fn upload_path(
        &self,
        file: NewFile,
        path: impl AsRef<Path>,
    ) -> Result<FileVersion, Error> {
        self.upload(
            file,
            UploadSource::Path(path.as_ref()),
            &UploadOptions::new(),
        )
        .await
    }

    /// Uploads what a reader yields, `len` bytes when known.
    ///
    /// # Errors
    ///
    /// As [`Client::upload_bytes`], plus [`Error::Io`] when the reader fails and
    /// [`Error::InvalidInput`] when it yields fewer bytes than `len`.
    pub async fn upload_reader(
        &self,
        file: NewFile,
        reader: impl AsyncRead + Send + Unpin,
        len: Option<u64>,
    ) -> Result<FileVersion, Error> {
        self.upload(
            file,
            UploadSource::Reader {
                reader: Box::new(reader),
                len,
            },
            &UploadOptions::new(),
        )
        .await
    }

    /// Uploads from any source with per-upload options.
    ///
    /// # Errors
    ///
    /// As [`Client::upload_bytes`] and [`Client::upload_path`].
    pub async fn upload(
        &self,
        file: NewFile,
        source: UploadSource<'_>,
        options: &UploadOptions,
    ) -> Result<FileVersion, Error> {
        let strategy = options.strategy.unwrap_or(self.inner.upload);
        let session = self.inner.session().await?;
        let policy = self.inner.policy();
        let io =
            |context: &'static str| move |source: std::io::Error| Error::Io { context, source };
        match source {
            UploadSource::Bytes(data) => {
                let target = self.take_target(&file);
                let machine = UploadMachine::from_bytes(
                    &file,
                    data.clone(),
                    &strategy,
                    session,
                    &policy,
                    target,
                )?;
                self.run_upload(&file, machine, Source::Memory(data), options)
                    .await
            }
            UploadSource::Path(path) => {
                let len = async_std::fs::metadata(path)
                    .await
                    .map_err(io("reading the upload file's size"))?
                    .len();
                let plan = strategy.plan(len, &session)?;
                let hashed = hash_file(path, strategy.hasher(len, plan.as_ref()), len).await?;
                let target = if plan.is_none() {
                    self.take_target(&file)
                } else {
                    None
                };
                let machine = UploadMachine::from_hashed(
                    &file,
                    plan.as_ref(),
                    &hashed,
                    &strategy,
                    session,
                    &policy,
                    target,
                );
                self.run_upload(&file, machine, Source::File(path), options)
                    .await
            }
            UploadSource::Reader {
                mut reader,
                len: Some(len),
            } => match strategy.plan(len, &session)? {
                None => {
                    // At most the cutoff: a simple upload.
                    let data = Bytes::from(
                        read_up_to(&mut *reader, len)
                            .await
                            .map_err(io("reading the upload source"))?,
                    );
                    if data.len() as u64 != len {
                        return Err(short_source(len, data.len() as u64));
                    }
                    let target = self.take_target(&file);
                    let machine = UploadMachine::from_bytes(
                        &file,
                        data.clone(),
                        &strategy,
                        session,
                        &policy,
                        target,
                    )?;
                    self.run_upload(&file, machine, Source::Memory(data), options)
                        .await
                }
                Some(plan) => {
                    let machine =
                        UploadMachine::from_reader(&file, &plan, &strategy, session, &policy);
                    let source = Source::Reader {
                        reader: &mut *reader,
                        prefix: Bytes::new(),
                    };
                    self.run_upload(&file, machine, source, options).await
                }
            },
            UploadSource::Reader {
                mut reader,
                len: None,
            } => {
                // Read as much as fits one simple upload (at most one part); the rest, if any,
                // goes through the large-file API, these bytes first.
                let probe = strategy.probe_len(&session)?;
                let prefix = Bytes::from(
                    read_up_to(&mut *reader, probe.saturating_add(1))
                        .await
                        .map_err(io("reading the upload source"))?,
                );
                let target = self.take_target(&file);
                let machine = UploadMachine::from_probed(
                    &file, &prefix, &strategy, session, &policy, target,
                )?;
                let source = Source::Reader {
                    reader: &mut *reader,
                    prefix,
                };
                self.run_upload(&file, machine, source, options).await
            }
        }
    }

    /// Copies a file server-side of any size: `b2_copy_file` up to 5 GB, `b2_copy_part` in
    /// parallel parts above, keeping the source's content type and info unless `file` sets
    /// them. `file` names the destination bucket and name.
    ///
    /// # Errors
    ///
    /// `404 not_found` for an unknown source; `401 unauthorized`; `403 access_denied` for a
    /// wrong SSE-C key.
    pub async fn copy_large_file(
        &self,
        source: &FileId,
        file: NewFile,
    ) -> Result<FileVersion, Error> {
        let info = self.file_info(source).await?;
        let session = self.inner.session().await?;
        let strategy = self.inner.upload;
        let machine = UploadMachine::copy(
            &file,
            source.clone(),
            info.content_length,
            &strategy,
            session,
            &self.inner.policy(),
        )?;
        self.run_upload(&file, machine, Source::None, &UploadOptions::new())
            .await
    }

    pub(crate) async fn resume_upload(
        &self,
        file_id: &FileId,
        file: NewFile,
        path: &Path,
    ) -> Result<FileVersion, Error> {
        use futures_util::TryStreamExt as _;
        let listed: Vec<b2_proto::model::Part> = self.list_parts(file_id).try_collect().await?;
        let len = async_std::fs::metadata(path)
            .await
            .map_err(|source| Error::Io {
                context: "reading the upload file's size",
                source,
            })?
            .len();
        let session = self.inner.session().await?;
        let plan = b2_proto::compose::resume_plan(len, &listed, &session)?;
        let hashed = hash_file(path, b2_proto::planner::PartHasher::new(&plan), len).await?;
        let machine = UploadMachine::resume(
            &file,
            &plan,
            &hashed,
            file_id.clone(),
            listed,
            &self.inner.upload,
            session,
            &self.inner.policy(),
        );
        self.run_upload(&file, machine, Source::File(path), &UploadOptions::new())
            .await
    }

    fn take_target(&self, file: &NewFile) -> Option<b2_proto::upload::PooledTarget> {
        self.inner
            .pool
            .lock()
            .ok()
            .and_then(|mut pool| pool.take(file.bucket_id(), Instant::now()))
    }

    async fn run_upload(
        &self,
        file: &NewFile,
        machine: UploadMachine,
        mut source: Source<'_>,
        options: &UploadOptions,
    ) -> Result<FileVersion, Error> {
        let span = tracing::info_span!("b2_upload", file = %file.file_name());
        let mut last = Progress::new(0, None);
        let progress = options.progress.clone();
        let mut machine = machine;
        let result = self
            .inner
            .drive_observed(&mut machine, &mut source, |m: &&mut UploadMachine| {
                let now = m.progress();
                if now != last {
                    last = now;
                    if let Some(p) = &progress {
                        p.report(now);
                    }
                }
            })
            .instrument(span)
            .await;
        if result.is_ok() {
            if let Some(target) = machine.take_target() {
                if let Ok(mut pool) = self.inner.pool.lock() {
                    pool.put(file.bucket_id().clone(), target, Instant::now());
                }
            }
        }
        result
    }
}

/// Hashes a file in one pass (on a blocking thread, in bounded memory), checking its length.
async fn hash_file(
    path: &Path,
    mut hasher: b2_proto::planner::PartHasher,
    len: u64,
) -> Result<b2_proto::planner::HashedSource, Error> {
    let io = |context: &'static str| move |source: std::io::Error| Error::Io { context, source };
    let owned = path.to_owned();
    let hashed = async_std::task::spawn_blocking(move || -> Result<_, Error> {
        use std::io::Read as _;
        let mut f = std::fs::File::open(&owned).map_err(io("opening the upload file"))?;
        let mut buf = vec![0u8; HASH_CHUNK];
        loop {
            let n = f.read(&mut buf).map_err(io("reading the upload file"))?;
            if n == 0 {
                return Ok(hasher.finish()?);
            }
            hasher.update(&buf[..n]);
        }
    })
    .await?;
    if hashed.total_len != len {
        return Err(InvalidInput::Argument {
            what: "upload file",
            reason: format!(
                "changed while being read: {len} bytes, then {}",
                hashed.total_len
            ),
        }
        .into());
    }
    Ok(hashed)
}

fn short_source(expected: u64, got: u64) -> Error {
    InvalidInput::Argument {
        what: "upload source",
        reason: format!("ended after {got} of the {expected} bytes announced"),
    }
    .into()
}

/// Reads at most `limit` bytes (fewer when the reader ends first). The buffer grows as bytes
/// arrive, never past `limit`: a short source costs only its own size.
async fn read_up_to(
    reader: &mut (dyn AsyncRead + Send + Unpin + '_),
    limit: u64,
) -> std::io::Result<Vec<u8>> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut buf: Vec<u8> = Vec::new();
    let mut filled = 0;
    while filled < limit {
        if filled == buf.len() {
            let grown = buf.len().saturating_mul(2).max(HASH_CHUNK).min(limit);
            buf.reserve_exact(grown - buf.len());
            buf.resize(grown, 0);
        }
        let Some(room) = buf.get_mut(filled..) else {
            break;
        };
        match reader.read(room).await {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(filled);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::{HASH_CHUNK, read_up_to};

    #[async_std::test]
    async fn a_short_source_costs_its_own_size_not_the_limit() {
        let mut reader = futures_util::io::Cursor::new(vec![7u8; 10]);
        let got = read_up_to(&mut reader, 5_000_000_000).await.expect("read");
        assert_eq!(got, [7u8; 10]);
        assert!(got.capacity() <= HASH_CHUNK, "{}", got.capacity());
    }

    #[async_std::test]
    async fn reading_stops_at_the_limit_and_never_reserves_past_it() {
        let data: Vec<u8> = (0..3 * HASH_CHUNK + 5).map(|i| (i % 251) as u8).collect();
        let limit = 3 * HASH_CHUNK as u64 - 1;
        let mut reader = futures_util::io::Cursor::new(data.clone());
        let got = read_up_to(&mut reader, limit).await.expect("read");
        assert_eq!(got.len() as u64, limit);
        assert!(got == data[..got.len()]);
        assert!(got.capacity() as u64 <= limit, "{}", got.capacity());
        // The rest stays in the reader for the parts that follow.
        assert_eq!(reader.position(), limit);
    }
}
