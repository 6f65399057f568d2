//! Downloads: read in chunks, verified on the fly, resumed where a connection broke.

use std::io::{Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use b2_proto::download_plan::FileDownload;
use b2_proto::ops::{DownloadCall, DownloadHead};
use b2_proto::progress::{Progress, ProgressFn};
use b2_proto::verify::{Sha1Verifier, Verification};
use b2_proto::{Error, TransportError};
use bytes::{Bytes, BytesMut};

use crate::Client;
use crate::transport::BodyStream;

/// A download whose body arrives as an iterator of chunks.
///
/// The chunks are checked against B2's SHA1 as they pass: the iterator ends with an
/// [`Error::Integrity`] instead of its last chunk when the bytes do not match. A connection
/// that breaks mid-body is resumed with a ranged request for the rest, checked to be of the
/// same file version. After the iterator ends, [`DownloadStream::verification`] says whether
/// the SHA1 matched or why it could not be checked (a range, or no SHA1 recorded). Nothing
/// after the first error is yielded.
pub struct DownloadStream {
    head: DownloadHead,
    verification: Arc<Mutex<Option<Verification>>>,
    inner: Box<dyn Chunks + Send>,
    ended: bool,
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

    /// The result of the SHA1 check, once the iterator has ended.
    pub fn verification(&self) -> Option<Verification> {
        self.verification.lock().ok().and_then(|v| v.clone())
    }

    /// The body as a [`Read`](std::io::Read). Integrity failures surface as I/O errors of kind
    /// `InvalidData`.
    pub fn into_read(self) -> impl std::io::Read + Send {
        DownloadReader {
            stream: self,
            chunk: Bytes::new(),
        }
    }

    /// Reads the whole body into memory, checking its SHA1.
    ///
    /// This inherent method takes the place of [`Iterator::collect`] in method calls; collect
    /// the chunks themselves with `Iterator::collect(stream)` or `stream.by_ref().collect()`.
    ///
    /// # Errors
    ///
    /// [`Error::Integrity`] when the bytes do not match; transport errors once resuming is
    /// exhausted.
    pub fn collect(mut self) -> Result<(DownloadHead, Bytes, Verification), Error> {
        let mut body =
            BytesMut::with_capacity(usize::try_from(self.head.content_length).unwrap_or(0));
        for chunk in &mut self {
            body.extend_from_slice(&chunk?);
        }
        let verification = self.verification().ok_or_else(|| Error::InvalidResponse {
            op: "download",
            reason: "the body ended without a verification".into(),
        })?;
        Ok((self.head, body.freeze(), verification))
    }
}

impl Iterator for DownloadStream {
    type Item = Result<Bytes, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.ended {
            return None;
        }
        let next = self.inner.next_chunk().transpose();
        self.ended = !matches!(next, Some(Ok(_)));
        next
    }
}

impl std::iter::FusedIterator for DownloadStream {}

/// A [`DownloadStream`] read as bytes.
struct DownloadReader {
    stream: DownloadStream,
    chunk: Bytes,
}

impl std::io::Read for DownloadReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            match self.stream.next() {
                None => return Ok(0),
                Some(Ok(chunk)) => self.chunk = chunk,
                Some(Err(e)) => {
                    let kind = match e {
                        Error::Integrity(_) => std::io::ErrorKind::InvalidData,
                        _ => std::io::ErrorKind::Other,
                    };
                    return Err(std::io::Error::new(kind, e));
                }
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}

/// The chunks of a body, whatever the download call.
trait Chunks {
    fn next_chunk(&mut self) -> Result<Option<Bytes>, Error>;
}

/// The state of a body being read.
struct Body<Op> {
    client: Client,
    op: Op,
    head: DownloadHead,
    body: BodyStream,
    received: u64,
    verifier: Option<Sha1Verifier>,
    buf: BytesMut,
    chunk_size: usize,
    resumes: u32,
    verification: Arc<Mutex<Option<Verification>>>,
    finished: bool,
    progress: Option<ProgressFn>,
}

impl<Op: DownloadCall + Send + Sync + 'static> Chunks for Body<Op> {
    fn next_chunk(&mut self) -> Result<Option<Bytes>, Error> {
        while !self.finished && self.buf.len() < self.chunk_size {
            match self.body.next_chunk() {
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
                Err(e) => self.resume(e)?,
            }
        }
        if self.buf.is_empty() {
            return Ok(None);
        }
        let n = self.buf.len().min(self.chunk_size);
        Ok(Some(self.buf.split_to(n).freeze()))
    }
}

impl<Op: DownloadCall + Send + Sync + 'static> Body<Op> {
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
    fn resume(&mut self, error: TransportError) -> Result<(), Error> {
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
        let (head, body) = self.client.inner.fetch_head(rest)?;
        self.head.check_continuation(&head, self.received)?;
        self.body = body;
        Ok(())
    }
}

impl Client {
    /// Downloads a file as an iterator of chunks of `chunk_size` bytes (the last may be
    /// shorter).
    ///
    /// `op` is a [`DownloadFileById`](b2_proto::ops::DownloadFileById) or a
    /// [`DownloadFileByName`](b2_proto::ops::DownloadFileByName), with a range, overrides or an
    /// SSE-C key as needed. Only the chunk being assembled is held in memory.
    ///
    /// # Errors
    ///
    /// `404 not_found`, `416 range_not_satisfiable`, `401 unauthorized`, `403 access_denied`
    /// (wrong SSE-C key), `403 download_cap_exceeded`; later, from the iterator,
    /// [`Error::Integrity`] on a SHA1 or length mismatch.
    pub fn download<Op>(&self, op: Op, chunk_size: usize) -> Result<DownloadStream, Error>
    where
        Op: DownloadCall + Send + Sync + 'static,
    {
        self.download_with_progress(op, chunk_size, None)
    }

    /// [`Client::download`], reporting progress as bytes arrive.
    ///
    /// # Errors
    ///
    /// As [`Client::download`].
    pub fn download_with_progress<Op>(
        &self,
        op: Op,
        chunk_size: usize,
        progress: Option<ProgressFn>,
    ) -> Result<DownloadStream, Error>
    where
        Op: DownloadCall + Send + Sync + 'static,
    {
        let whole = op.byte_range().is_none();
        let (head, body) = self.inner.fetch_head(op.clone())?;
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
        Ok(DownloadStream {
            head,
            verification,
            inner: Box::new(state),
            ended: false,
        })
    }

    /// Downloads a whole file into memory, checking its SHA1.
    ///
    /// # Errors
    ///
    /// As [`Client::download`].
    pub fn download_bytes<Op>(&self, op: Op) -> Result<(DownloadHead, Bytes, Verification), Error>
    where
        Op: DownloadCall + Send + Sync + 'static,
    {
        self.download(op, 1 << 20)?.collect()
    }

    /// Downloads a file into `path`, fetching parts of `part_size` bytes over up to
    /// `concurrency` connections (one scoped thread each), then checks the whole file's SHA1.
    ///
    /// The bytes go to a temporary file beside `path`, renamed into place only once complete
    /// and verified: a failed download never leaves a partial file at `path`. Memory stays
    /// bounded by the HTTP buffers, whatever the file's size.
    ///
    /// # Errors
    ///
    /// As [`Client::download`], plus [`Error::Io`] when the file cannot be written.
    pub fn download_to_path<Op>(
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
        let result = self.download_to_temp(op, &temp, part_size, concurrency, progress);
        match result {
            Ok(done) => {
                std::fs::rename(&temp, path).map_err(|source| Error::Io {
                    context: "moving the download into place",
                    source,
                })?;
                Ok(done)
            }
            Err(e) => {
                let _ = std::fs::remove_file(&temp);
                Err(e)
            }
        }
    }

    fn download_to_temp<Op>(
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
        let done = AtomicU64::new(0);
        let total = AtomicU64::new(0);
        let report = |n: u64| {
            let so_far = done.fetch_add(n, Ordering::Relaxed) + n;
            if let Some(p) = &progress {
                let total = total.load(Ordering::Relaxed);
                p.report(Progress::new(so_far, Some(total)));
            }
        };
        // The first request doubles as the probe of the file's size and version.
        let (download, first) = FileDownload::start(op, part_size, concurrency)?;
        let stream = self.download(first, WRITE_CHUNK)?;
        let head = stream.head().clone();
        let checked = stream.verification.clone();
        let size = download.total_len(&head);
        total.store(size, Ordering::Relaxed);
        let mut file = std::fs::File::create(temp).map_err(io("creating the download file"))?;
        write_stream(stream, &mut file, 0, &report)?;
        let Some(plan) = download.rest(&head)? else {
            // One reply held all that was asked for, and was checked as it arrived.
            file.sync_all().map_err(io("flushing the download file"))?;
            let verification = checked.lock().ok().and_then(|v| v.clone()).ok_or_else(|| {
                Error::InvalidResponse {
                    op: "download",
                    reason: "the body ended without a verification".into(),
                }
            })?;
            return Ok((head, verification));
        };
        // Workers take the next part until none is left or one failed.
        let next = AtomicU64::new(1);
        let failed = AtomicBool::new(false);
        let part = |index: u64| -> Result<(), Error> {
            let request = plan
                .part_request(index)
                .ok_or_else(|| Error::InvalidResponse {
                    op: "download",
                    reason: format!("part {index} is outside the plan"),
                })?;
            let stream = self.download(request, WRITE_CHUNK)?;
            plan.check_part(index, stream.head())?;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .open(temp)
                .map_err(io("opening the download file"))?;
            let offset = plan.range(index).map_or(0, |r| r.start);
            write_stream(stream, &mut file, offset, &report)
        };
        let worker = || -> Result<(), Error> {
            loop {
                if failed.load(Ordering::Relaxed) {
                    return Ok(());
                }
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= plan.part_count() {
                    return Ok(());
                }
                if let Err(e) = part(index) {
                    failed.store(true, Ordering::Relaxed);
                    return Err(e);
                }
            }
        };
        let workers = plan.concurrency().max(1);
        let results: Vec<Result<(), Error>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers).map(|_| scope.spawn(worker)).collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(Error::InvalidResponse {
                            op: "download",
                            reason: "a part's thread panicked".into(),
                        })
                    })
                })
                .collect()
        });
        for result in results {
            result?;
        }
        file.sync_all().map_err(io("flushing the download file"))?;
        // Each part was checked for its range and length; the SHA1 covers the whole file.
        let mut verifier = plan.verifier();
        let mut file = std::fs::File::open(temp).map_err(io("reading the download file"))?;
        let mut buf = vec![0u8; WRITE_CHUNK];
        let verification = loop {
            let n = file
                .read(&mut buf)
                .map_err(io("reading the download file"))?;
            if n == 0 {
                break verifier.finish()?;
            }
            verifier.update(&buf[..n]);
        };
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

fn write_stream(
    stream: DownloadStream,
    file: &mut std::fs::File,
    offset: u64,
    report: &(dyn Fn(u64) + Sync),
) -> Result<(), Error> {
    let io = |source| Error::Io {
        context: "writing the download file",
        source,
    };
    file.seek(std::io::SeekFrom::Start(offset)).map_err(io)?;
    for chunk in stream {
        let chunk = chunk?;
        file.write_all(&chunk).map_err(io)?;
        report(chunk.len() as u64);
    }
    file.flush().map_err(io)
}
