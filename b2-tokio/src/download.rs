//! Downloads: streamed in chunks, verified on the fly, resumed where a connection broke.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use b2_proto::download_plan::FileDownload;
use b2_proto::ops::{DownloadCall, DownloadHead};
use b2_proto::progress::{Progress, ProgressFn};
use b2_proto::verify::{Sha1Verifier, Verification};
use b2_proto::{Error, TransportError};
use bytes::{Bytes, BytesMut};
use futures_util::stream::{BoxStream, Stream, StreamExt as _, TryStreamExt as _};
use hyper::body::Incoming;
use tokio::io::{AsyncSeekExt as _, AsyncWriteExt as _};

use crate::Client;

/// A download whose body arrives as a stream of chunks.
///
/// The chunks are checked against B2's SHA1 as they pass: the stream ends with an
/// [`Error::Integrity`] instead of its last chunk when the bytes do not match. A connection
/// that breaks mid-body is resumed with a ranged request for the rest, checked to be of the
/// same file version. After the stream ends, [`DownloadStream::verification`] says whether
/// the SHA1 matched or why it could not be checked (a range, or no SHA1 recorded).
pub struct DownloadStream {
    head: DownloadHead,
    verification: Arc<Mutex<Option<Verification>>>,
    inner: BoxStream<'static, Result<Bytes, Error>>,
}

impl std::fmt::Debug for DownloadStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DownloadStream")
            .field("head", &self.head)
            .finish_non_exhaustive()
    }
}

impl DownloadStream {
    /// The reply's headers: file id, name, length, SHA1, info, Object Lock settings.
    pub fn head(&self) -> &DownloadHead {
        &self.head
    }

    /// The result of the SHA1 check, once the stream has ended.
    pub fn verification(&self) -> Option<Verification> {
        self.verification.lock().ok().and_then(|v| v.clone())
    }

    /// The body as an [`AsyncRead`](tokio::io::AsyncRead). Integrity failures surface as I/O
    /// errors of kind `InvalidData`.
    pub fn into_async_read(self) -> impl tokio::io::AsyncRead + Send + Unpin {
        tokio_util::io::StreamReader::new(self.inner.map_err(|e| {
            let kind = match e {
                Error::Integrity(_) => std::io::ErrorKind::InvalidData,
                _ => std::io::ErrorKind::Other,
            };
            std::io::Error::new(kind, e)
        }))
    }

    /// Reads the whole body into memory, checking its SHA1.
    ///
    /// # Errors
    ///
    /// [`Error::Integrity`] when the bytes do not match; transport errors once resuming is
    /// exhausted.
    pub async fn collect(mut self) -> Result<(DownloadHead, Bytes, Verification), Error> {
        let mut body =
            BytesMut::with_capacity(usize::try_from(self.head.content_length).unwrap_or(0));
        while let Some(chunk) = self.inner.next().await {
            body.extend_from_slice(&chunk?);
        }
        let verification = self.verification().ok_or_else(|| Error::InvalidResponse {
            op: "download",
            reason: "the body ended without a verification".into(),
        })?;
        Ok((self.head, body.freeze(), verification))
    }
}

impl Stream for DownloadStream {
    type Item = Result<Bytes, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

/// The state of a streaming body.
struct Body<Op> {
    client: Client,
    op: Op,
    head: DownloadHead,
    body: Incoming,
    received: u64,
    verifier: Option<Sha1Verifier>,
    buf: BytesMut,
    chunk_size: usize,
    resumes: u32,
    verification: Arc<Mutex<Option<Verification>>>,
    finished: bool,
    progress: Option<ProgressFn>,
}

impl<Op: DownloadCall + Send + Sync + 'static> Body<Op> {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, Error> {
        while !self.finished && self.buf.len() < self.chunk_size {
            match self.client.inner.transport.next_frame(&mut self.body).await {
                Ok(Some(data)) => {
                    if let Some(v) = &mut self.verifier {
                        v.update(&data);
                    }
                    self.received += data.len() as u64;
                    self.buf.extend_from_slice(&data);
                    if let Some(p) = &self.progress {
                        p.report(Progress::new(self.received, Some(self.head.content_length)));
                    }
                }
                Ok(None) => self.finish()?,
                Err(e) => self.resume(e).await?,
            }
        }
        if self.buf.is_empty() {
            return Ok(None);
        }
        let n = self.buf.len().min(self.chunk_size);
        Ok(Some(self.buf.split_to(n).freeze()))
    }

    fn finish(&mut self) -> Result<(), Error> {
        self.finished = true;
        let Some(verifier) = self.verifier.take() else {
            return Ok(());
        };
        let verification = verifier.finish()?;
        if let Ok(mut slot) = self.verification.lock() {
            *slot = Some(verification);
        }
        Ok(())
    }

    /// Continues after a broken body with a ranged request for the bytes still missing.
    async fn resume(&mut self, error: TransportError) -> Result<(), Error> {
        self.resumes += 1;
        let Some(rest) = self.op.continuation(&self.head, self.received) else {
            // Every byte arrived; the connection broke after the end.
            return self.finish();
        };
        if self.resumes >= self.client.inner.policy.max_attempts {
            return Err(Error::RetriesExhausted {
                attempts: self.resumes,
                last: Box::new(error.into()),
            });
        }
        tracing::debug!(
            received = self.received,
            "download interrupted, resuming: {error}"
        );
        let (head, body) = self.client.inner.fetch_head(rest).await?;
        self.head.check_continuation(&head, self.received)?;
        self.body = body;
        Ok(())
    }
}

impl Client {
    /// Downloads a file as a stream of chunks of `chunk_size` bytes (the last may be shorter).
    ///
    /// `op` is a [`DownloadFileById`](b2_proto::ops::DownloadFileById) or a
    /// [`DownloadFileByName`](b2_proto::ops::DownloadFileByName), with a range, overrides or an
    /// SSE-C key as needed. Only the chunk being assembled is held in memory.
    ///
    /// # Errors
    ///
    /// `404 not_found`, `416 range_not_satisfiable`, `401 unauthorized`, `403 access_denied`
    /// (wrong SSE-C key), `403 download_cap_exceeded`; later, from the stream,
    /// [`Error::Integrity`] on a SHA1 or length mismatch.
    pub async fn download<Op>(&self, op: Op, chunk_size: usize) -> Result<DownloadStream, Error>
    where
        Op: DownloadCall + Send + Sync + 'static,
    {
        self.download_with_progress(op, chunk_size, None).await
    }

    /// [`Client::download`], reporting progress as bytes arrive.
    ///
    /// # Errors
    ///
    /// As [`Client::download`].
    pub async fn download_with_progress<Op>(
        &self,
        op: Op,
        chunk_size: usize,
        progress: Option<ProgressFn>,
    ) -> Result<DownloadStream, Error>
    where
        Op: DownloadCall + Send + Sync + 'static,
    {
        let whole = op.byte_range().is_none();
        let (head, body) = self.inner.fetch_head(op.clone()).await?;
        let verification = Arc::new(Mutex::new(None));
        let state = Body {
            client: self.clone(),
            verifier: Some(Sha1Verifier::new(&head, whole)),
            op,
            head: head.clone(),
            body,
            received: 0,
            buf: BytesMut::new(),
            chunk_size: chunk_size.max(1),
            resumes: 0,
            verification: verification.clone(),
            finished: false,
            progress,
        };
        let inner = futures_util::stream::try_unfold(state, |mut state| async move {
            Ok(state.next_chunk().await?.map(|chunk| (chunk, state)))
        })
        .boxed();
        Ok(DownloadStream {
            head,
            verification,
            inner,
        })
    }

    /// Downloads a whole file into memory, checking its SHA1.
    ///
    /// # Errors
    ///
    /// As [`Client::download`].
    pub async fn download_bytes<Op>(
        &self,
        op: Op,
    ) -> Result<(DownloadHead, Bytes, Verification), Error>
    where
        Op: DownloadCall + Send + Sync + 'static,
    {
        self.download(op, 1 << 20).await?.collect().await
    }

    /// Downloads a file into `path`, fetching parts of `part_size` bytes over up to
    /// `concurrency` connections, then checks the whole file's SHA1.
    ///
    /// The bytes go to a temporary file beside `path`, renamed into place only once complete
    /// and verified: a failed download never leaves a partial file at `path`. Memory stays
    /// bounded by the HTTP buffers, whatever the file's size.
    ///
    /// # Errors
    ///
    /// As [`Client::download`], plus [`Error::Io`] when the file cannot be written.
    pub async fn download_to_path<Op>(
        &self,
        op: Op,
        path: impl AsRef<Path>,
        part_size: u64,
        concurrency: usize,
        progress: Option<ProgressFn>,
    ) -> Result<(DownloadHead, Verification), Error>
    where
        Op: DownloadCall + Send + Sync + 'static,
    {
        let path = path.as_ref();
        let part_size = part_size.max(1);
        let temp = temp_path(path);
        let result = self
            .download_to_temp(op, &temp, part_size, concurrency, progress)
            .await;
        match result {
            Ok(done) => {
                tokio::fs::rename(&temp, path)
                    .await
                    .map_err(|source| Error::Io {
                        context: "moving the download into place",
                        source,
                    })?;
                Ok(done)
            }
            Err(e) => {
                let _ = tokio::fs::remove_file(&temp).await;
                Err(e)
            }
        }
    }

    async fn download_to_temp<Op>(
        &self,
        op: Op,
        temp: &Path,
        part_size: u64,
        concurrency: usize,
        progress: Option<ProgressFn>,
    ) -> Result<(DownloadHead, Verification), Error>
    where
        Op: DownloadCall + Send + Sync + 'static,
    {
        let io =
            |context: &'static str| move |source: std::io::Error| Error::Io { context, source };
        let done = std::sync::atomic::AtomicU64::new(0);
        let total = std::sync::atomic::AtomicU64::new(0);
        let report = |n: u64| {
            let so_far = done.fetch_add(n, std::sync::atomic::Ordering::Relaxed) + n;
            if let Some(p) = &progress {
                let total = total.load(std::sync::atomic::Ordering::Relaxed);
                p.report(Progress::new(so_far, Some(total)));
            }
        };
        // The first request doubles as the probe of the file's size and version.
        let (download, first) = FileDownload::start(op, part_size, concurrency)?;
        let stream = self.download(first, WRITE_CHUNK).await?;
        let head = stream.head().clone();
        let checked = stream.verification.clone();
        let size = download.total_len(&head);
        total.store(size, std::sync::atomic::Ordering::Relaxed);
        let mut file = tokio::fs::File::create(temp)
            .await
            .map_err(io("creating the download file"))?;
        write_stream(stream, &mut file, 0, &report).await?;
        let Some(plan) = download.rest(&head)? else {
            // One reply held all that was asked for, and was checked as it streamed.
            file.sync_all()
                .await
                .map_err(io("flushing the download file"))?;
            let verification = checked.lock().ok().and_then(|v| v.clone()).ok_or_else(|| {
                Error::InvalidResponse {
                    op: "download",
                    reason: "the body ended without a verification".into(),
                }
            })?;
            return Ok((head, verification));
        };
        let parts = (1..plan.part_count()).map(|index| {
            let (plan, report) = (&plan, &report);
            async move {
                let request = plan
                    .part_request(index)
                    .ok_or_else(|| Error::InvalidResponse {
                        op: "download",
                        reason: format!("part {index} is outside the plan"),
                    })?;
                let stream = self.download(request, WRITE_CHUNK).await?;
                plan.check_part(index, stream.head())?;
                let mut file = tokio::fs::OpenOptions::new()
                    .write(true)
                    .open(temp)
                    .await
                    .map_err(io("opening the download file"))?;
                let offset = plan.range(index).map_or(0, |r| r.start);
                write_stream(stream, &mut file, offset, report).await
            }
        });
        let mut running = futures_util::stream::iter(parts).buffer_unordered(plan.concurrency());
        while let Some(part) = running.next().await {
            part?;
        }
        file.sync_all()
            .await
            .map_err(io("flushing the download file"))?;
        // Each part was checked for its range and length; the SHA1 covers the whole file.
        let mut verifier = plan.verifier();
        let path = temp.to_owned();
        let verification = tokio::task::spawn_blocking(move || -> Result<Verification, Error> {
            use std::io::Read as _;
            let mut file = std::fs::File::open(&path).map_err(io("reading the download file"))?;
            let mut buf = vec![0u8; WRITE_CHUNK];
            loop {
                let n = file
                    .read(&mut buf)
                    .map_err(io("reading the download file"))?;
                if n == 0 {
                    return verifier.finish();
                }
                verifier.update(&buf[..n]);
            }
        })
        .await
        .map_err(|e| Error::Io {
            context: "verifying the download",
            source: std::io::Error::other(e),
        })??;
        Ok((head, verification))
    }
}

/// Chunks written to files, and read back to verify them.
const WRITE_CHUNK: usize = 1 << 20;

fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    path.with_file_name(format!(".{name}.{nonce:08x}.b2part"))
}

async fn write_stream(
    mut stream: DownloadStream,
    file: &mut tokio::fs::File,
    offset: u64,
    report: &(dyn Fn(u64) + Sync),
) -> Result<(), Error> {
    let io = |source| Error::Io {
        context: "writing the download file",
        source,
    };
    file.seek(std::io::SeekFrom::Start(offset))
        .await
        .map_err(io)?;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        file.write_all(&chunk).await.map_err(io)?;
        report(chunk.len() as u64);
    }
    file.flush().await.map_err(io)
}
