//! Where file contents live: in memory, or in a data directory.
//!
//! Contents are immutable blobs. A stored file (or large-file part, or copy) is a list of
//! [`Segment`]s, each a byte range of one blob, so finishing a large file or copying a file never
//! copies bytes. In a data directory each blob is one file under `blobs/`, written to a temporary
//! name and renamed into place only once complete, so a crash never leaves a partial blob visible.
//! Blobs no longer referenced are deleted after the metadata that stopped referencing them has been
//! written.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};

/// One immutable run of stored bytes.
#[derive(Debug)]
pub(crate) struct Blob {
    pub(crate) id: u64,
    pub(crate) len: u64,
    data: BlobData,
}

#[derive(Debug)]
enum BlobData {
    /// Chunks in order, and the offset where each starts.
    Memory(Vec<Bytes>, Vec<u64>),
    File {
        path: PathBuf,
        garbage: Arc<Mutex<Vec<PathBuf>>>,
    },
}

impl Drop for Blob {
    fn drop(&mut self) {
        if let BlobData::File { path, garbage } = &mut self.data {
            if let Ok(mut g) = garbage.lock() {
                g.push(std::mem::take(path));
            }
        }
    }
}

/// A byte range of a blob.
#[derive(Debug, Clone)]
pub(crate) struct Segment {
    pub(crate) blob: Arc<Blob>,
    pub(crate) offset: u64,
    pub(crate) len: u64,
}

/// Total length of a list of segments.
pub(crate) fn total_len(segments: &[Segment]) -> u64 {
    segments.iter().map(|s| s.len).sum()
}

/// The segments covering `start..start+len` of the concatenation of `segments`.
pub(crate) fn slice(segments: &[Segment], start: u64, len: u64) -> Vec<Segment> {
    let mut out = Vec::new();
    let mut pos = 0u64;
    let end = start.saturating_add(len);
    for s in segments {
        let s_end = pos + s.len;
        if s_end > start && pos < end {
            let from = start.max(pos);
            let to = end.min(s_end);
            out.push(Segment {
                blob: Arc::clone(&s.blob),
                offset: s.offset + (from - pos),
                len: to - from,
            });
        }
        pos = s_end;
        if pos >= end {
            break;
        }
    }
    out
}

/// Where blobs are kept.
#[derive(Debug)]
pub(crate) struct Store {
    dir: Option<PathBuf>,
    garbage: Arc<Mutex<Vec<PathBuf>>>,
}

impl Store {
    pub(crate) fn memory() -> Self {
        Self {
            dir: None,
            garbage: Arc::default(),
        }
    }

    /// A store in `dir` (created if missing); stale temporary files are removed.
    pub(crate) fn open_dir(dir: &Path) -> io::Result<Self> {
        fs::create_dir_all(dir.join("blobs"))?;
        fs::create_dir_all(dir.join("files"))?;
        for entry in fs::read_dir(dir.join("blobs"))? {
            let entry = entry?;
            if entry.file_name().to_string_lossy().starts_with("tmp-") {
                let _ = fs::remove_file(entry.path());
            }
        }
        Ok(Self {
            dir: Some(dir.to_owned()),
            garbage: Arc::default(),
        })
    }

    pub(crate) fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    fn blob_path(dir: &Path, id: u64) -> PathBuf {
        dir.join("blobs").join(format!("{id:016x}"))
    }

    /// Starts writing blob `id` of (about) `size_hint` bytes.
    pub(crate) fn writer(&mut self, id: u64, size_hint: u64) -> io::Result<BlobWriter> {
        match &self.dir {
            None => Ok(BlobWriter {
                id,
                len: 0,
                sink: Sink::Memory {
                    chunks: Vec::new(),
                    cur: BytesMut::with_capacity(
                        usize::try_from(size_hint.min(MEM_CHUNK as u64)).unwrap_or(0),
                    ),
                },
            }),
            Some(dir) => {
                let tmp = dir.join("blobs").join(format!("tmp-{id:016x}"));
                let file = File::create(&tmp)?;
                Ok(BlobWriter {
                    id,
                    len: 0,
                    sink: Sink::File {
                        file: BufWriter::with_capacity(1 << 20, file),
                        tmp,
                        dest: Self::blob_path(dir, id),
                        garbage: Arc::clone(&self.garbage),
                    },
                })
            }
        }
    }

    /// The handle of an existing blob in the data directory (when loading metadata).
    pub(crate) fn existing(&self, id: u64) -> Option<Arc<Blob>> {
        let dir = self.dir.as_ref()?;
        let path = Self::blob_path(dir, id);
        let len = fs::metadata(&path).ok()?.len();
        Some(Arc::new(Blob {
            id,
            len,
            data: BlobData::File {
                path,
                garbage: Arc::clone(&self.garbage),
            },
        }))
    }

    /// Deletes blob files whose last reference is gone. Call after writing metadata.
    pub(crate) fn collect_garbage(&self) {
        let paths = match self.garbage.lock() {
            Ok(mut g) => std::mem::take(&mut *g),
            Err(_) => return,
        };
        for p in paths {
            let _ = fs::remove_file(p);
        }
    }

    /// Deletes blob files not in `live` (when loading metadata).
    pub(crate) fn remove_unreferenced(&self, live: &std::collections::HashSet<u64>) {
        let Some(dir) = &self.dir else { return };
        let Ok(entries) = fs::read_dir(dir.join("blobs")) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            match u64::from_str_radix(&name, 16) {
                Ok(id) if live.contains(&id) => {}
                _ => {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
    }

    /// Writes `bytes` to `name` in the data directory atomically (temporary file, then rename):
    /// a process killed at any moment leaves the old or the new version, never a mix. (No
    /// fsync: surviving power loss is not a goal of a test server.)
    pub(crate) fn write_atomic(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        let Some(dir) = &self.dir else { return Ok(()) };
        let tmp = dir.join(format!("{name}.tmp"));
        {
            let mut f = File::create(&tmp)?;
            f.write_all(bytes)?;
        }
        fs::rename(&tmp, dir.join(name))
    }

    /// Writes one file record (`files/<name>.json`) atomically.
    pub(crate) fn write_record(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        let Some(dir) = &self.dir else { return Ok(()) };
        let tmp = dir.join("files").join(format!("{name}.json.tmp"));
        File::create(&tmp)?.write_all(bytes)?;
        fs::rename(&tmp, dir.join("files").join(format!("{name}.json")))
    }

    /// Removes a file record.
    pub(crate) fn remove_record(&self, name: &str) -> io::Result<()> {
        let Some(dir) = &self.dir else { return Ok(()) };
        match fs::remove_file(dir.join("files").join(format!("{name}.json"))) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Every file record; stale temporary files are removed.
    pub(crate) fn read_records(&self) -> io::Result<Vec<Vec<u8>>> {
        let Some(dir) = &self.dir else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for entry in fs::read_dir(dir.join("files"))? {
            let path = entry?.path();
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if name.ends_with(".json") {
                out.push(fs::read(&path)?);
            } else {
                let _ = fs::remove_file(&path);
            }
        }
        Ok(out)
    }

    /// Reads `name` from the data directory, if present.
    pub(crate) fn read_meta(&self, name: &str) -> io::Result<Option<Vec<u8>>> {
        let Some(dir) = &self.dir else {
            return Ok(None);
        };
        match fs::read(dir.join(name)) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Receives the bytes of a new blob.
#[derive(Debug)]
pub(crate) struct BlobWriter {
    id: u64,
    len: u64,
    sink: Sink,
}

#[derive(Debug)]
enum Sink {
    Memory {
        chunks: Vec<Bytes>,
        cur: BytesMut,
    },
    File {
        file: BufWriter<File>,
        tmp: PathBuf,
        dest: PathBuf,
        garbage: Arc<Mutex<Vec<PathBuf>>>,
    },
    Done,
}

impl BlobWriter {
    /// Appends bytes.
    pub(crate) fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        match &mut self.sink {
            Sink::Memory { chunks, cur } => {
                cur.extend_from_slice(data);
                if cur.len() >= MEM_CHUNK {
                    chunks.push(cur.split().freeze());
                    cur.reserve(MEM_CHUNK);
                }
            }
            Sink::File { file, .. } => file.write_all(data)?,
            Sink::Done => return Err(io::Error::other("blob already finished")),
        }
        self.len += data.len() as u64;
        Ok(())
    }

    /// Appends bytes already in a buffer of their own; large buffers are kept without copying.
    pub(crate) fn write_bytes(&mut self, data: Bytes) -> io::Result<()> {
        match &mut self.sink {
            Sink::Memory { chunks, cur } if data.len() >= MEM_CHUNK / 16 => {
                if !cur.is_empty() {
                    chunks.push(cur.split().freeze());
                }
                self.len += data.len() as u64;
                chunks.push(data);
                Ok(())
            }
            _ => self.write_all(&data),
        }
    }

    /// Makes the blob visible and returns its handle.
    pub(crate) fn finish(mut self) -> io::Result<Arc<Blob>> {
        let data = match std::mem::replace(&mut self.sink, Sink::Done) {
            Sink::Memory { mut chunks, cur } => {
                if !cur.is_empty() {
                    chunks.push(cur.freeze());
                }
                let mut starts = Vec::with_capacity(chunks.len());
                let mut pos = 0u64;
                for c in &chunks {
                    starts.push(pos);
                    pos += c.len() as u64;
                }
                BlobData::Memory(chunks, starts)
            }
            Sink::File {
                file,
                tmp,
                dest,
                garbage,
            } => {
                let file = file.into_inner().map_err(io::IntoInnerError::into_error)?;
                drop(file);
                fs::rename(&tmp, &dest)?;
                BlobData::File {
                    path: dest,
                    garbage,
                }
            }
            Sink::Done => return Err(io::Error::other("blob already finished")),
        };
        Ok(Arc::new(Blob {
            id: self.id,
            len: self.len,
            data,
        }))
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if let Sink::File { tmp, .. } = &self.sink {
            let _ = fs::remove_file(tmp);
        }
    }
}

/// Reads a range of stored content in chunks, for streaming a download.
#[derive(Debug)]
pub struct ContentReader {
    segments: std::collections::VecDeque<Segment>,
    open: Option<(u64, File)>,
}

/// Size of the buffers small writes are gathered into (memory store).
const MEM_CHUNK: usize = 1 << 20;

/// Largest chunk [`ContentReader::next_chunk`] returns.
const CHUNK: u64 = 1 << 20;

impl ContentReader {
    pub(crate) fn new(segments: Vec<Segment>) -> Self {
        Self {
            segments: segments.into(),
            open: None,
        }
    }

    /// A reader over bytes already in memory.
    pub(crate) fn from_bytes(b: Bytes) -> Self {
        let len = b.len() as u64;
        let blob = Arc::new(Blob {
            id: 0,
            len,
            data: BlobData::Memory(vec![b], vec![0]),
        });
        Self::new(vec![Segment {
            blob,
            offset: 0,
            len,
        }])
    }

    /// Bytes left to read.
    pub fn remaining(&self) -> u64 {
        self.segments.iter().map(|s| s.len).sum()
    }

    /// The next chunk, or `None` at the end.
    ///
    /// # Errors
    ///
    /// An I/O error reading a blob from the data directory.
    pub fn next_chunk(&mut self) -> io::Result<Option<Bytes>> {
        loop {
            let Some(seg) = self.segments.front_mut() else {
                return Ok(None);
            };
            if seg.len == 0 {
                self.segments.pop_front();
                self.open = None;
                continue;
            }
            let take = seg.len.min(CHUNK);
            let chunk = match &seg.blob.data {
                BlobData::Memory(chunks, starts) => {
                    let i = starts
                        .partition_point(|&s| s <= seg.offset)
                        .saturating_sub(1);
                    let (Some(chunk), Some(&chunk_start)) = (chunks.get(i), starts.get(i)) else {
                        return Err(io::Error::other("blob shorter than recorded"));
                    };
                    let start =
                        usize::try_from(seg.offset - chunk_start).map_err(io::Error::other)?;
                    let avail = chunk.len().saturating_sub(start);
                    let n = usize::try_from(take).map_err(io::Error::other)?.min(avail);
                    if n == 0 {
                        return Err(io::Error::other("blob shorter than recorded"));
                    }
                    chunk.slice(start..start + n)
                }
                BlobData::File { path, .. } => {
                    let reuse = matches!(&self.open, Some((id, _)) if *id == seg.blob.id);
                    if !reuse {
                        let mut f = File::open(path)?;
                        f.seek(SeekFrom::Start(seg.offset))?;
                        self.open = Some((seg.blob.id, f));
                    }
                    let Some((_, f)) = self.open.as_mut() else {
                        return Err(io::Error::other("blob not open"));
                    };
                    let n = usize::try_from(take).map_err(io::Error::other)?;
                    let mut buf = vec![0u8; n];
                    f.read_exact(&mut buf)?;
                    Bytes::from(buf)
                }
            };
            seg.offset += chunk.len() as u64;
            seg.len -= chunk.len() as u64;
            return Ok(Some(chunk));
        }
    }

    /// Reads everything left into one buffer.
    ///
    /// # Errors
    ///
    /// An I/O error reading a blob from the data directory.
    pub fn read_all(mut self) -> io::Result<Bytes> {
        let mut out = BytesMut::new();
        while let Some(c) = self.next_chunk()? {
            out.extend_from_slice(&c);
        }
        Ok(out.freeze())
    }
}
