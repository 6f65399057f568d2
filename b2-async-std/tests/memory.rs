//! Memory stays bounded by configuration, not by file size: uploads from files and readers,
//! streamed downloads and parallel downloads into files of a 40 MiB file.
//!
//! The emulator runs in a child process (this test binary again, running
//! `emulator_process`), so that the peak resident memory of this process is the client's
//! alone. Each step resets the peak (`/proc/self/clear_refs`) and reads it back (`VmHWM`).

use std::io::{BufRead as _, Read as _};
use std::process::{Child, Command, Stdio};

use b2_async_std::b2_proto::model::BucketType;
use b2_async_std::b2_proto::ops::{self, DownloadFileById};
use b2_async_std::b2_proto::{BucketName, FileName};
use b2_async_std::{Client, NewFile, UploadOptions, UploadSource, UploadStrategy};
use futures_util::StreamExt as _;

const CHILD_VAR: &str = "B2_ASYNC_STD_MEMORY_EMULATOR";

/// The emulator for `memory_stays_bounded_by_parts_and_chunks_not_by_file_size`, in its own
/// process: prints its address and keys, then serves until its standard input closes.
#[test]
#[ignore = "run by the memory test as its emulator process"]
fn emulator_process() {
    if std::env::var_os(CHILD_VAR).is_none() {
        return;
    }
    let server = b2_emulator::Server::builder()
        .with_config(
            b2_emulator::Config::new()
                .with_min_part_size(100_000)
                .with_recommended_part_size(400_000),
        )
        .start()
        .expect("emulator");
    println!(
        "EMULATOR {} {} {}",
        server.url(),
        server.key_id(),
        server.application_key()
    );
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
}

/// The emulator process, killed when dropped.
struct Emulator {
    child: Child,
    url: String,
    key_id: String,
    key: String,
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_emulator() -> Emulator {
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args(["emulator_process", "--exact", "--ignored", "--nocapture"])
        .env(CHILD_VAR, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("emulator process");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = std::io::BufReader::new(stdout).lines();
    let line = loop {
        let line = lines.next().expect("the emulator's address").expect("line");
        if line.starts_with("EMULATOR ") {
            break line;
        }
    };
    let mut words = line.split_whitespace().skip(1).map(str::to_owned);
    let mut next = || words.next().expect("address and keys");
    Emulator {
        url: next(),
        key_id: next(),
        key: next(),
        child,
    }
}

/// A field of `/proc/self/status`, in bytes.
fn status_bytes(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Runs `f`; returns its output and how far the resident memory rose above where it started.
async fn peak_of<T>(f: impl Future<Output = T>) -> (T, u64) {
    std::fs::write("/proc/self/clear_refs", "5").expect("reset the peak");
    let base = status_bytes("VmRSS:").expect("VmRSS");
    let out = f.await;
    let peak = status_bytes("VmHWM:").expect("VmHWM");
    let rise = peak.saturating_sub(base);
    eprintln!(
        "resident memory rose by {:.1} MiB",
        rise as f64 / (1 << 20) as f64
    );
    (out, rise)
}

const MIB: u64 = 1 << 20;
const FILE_LEN: u64 = 40 * MIB + 12_345;
const PART: u64 = 2 * MIB;

#[async_std::test]
async fn memory_stays_bounded_by_parts_and_chunks_not_by_file_size() {
    if std::fs::write("/proc/self/clear_refs", "5").is_err() || status_bytes("VmHWM:").is_none() {
        eprintln!("skipped: peak resident memory cannot be reset and read here");
        return;
    }
    let emulator = start_emulator();
    let strategy = UploadStrategy::default()
        .with_cutoff(2 * PART)
        .with_part_size(PART)
        .with_max_in_flight(4);
    let client = Client::builder(&emulator.key_id, &emulator.key)
        .realm(&emulator.url)
        .upload_strategy(strategy)
        .read_chunk_size(256 * 1024)
        .build()
        .expect("client");
    let bucket = client
        .create_bucket(ops::CreateBucket::new(
            BucketName::new("memory-bounds").expect("name"),
            BucketType::AllPrivate,
        ))
        .await
        .expect("bucket");
    let data: Vec<u8> = (0..FILE_LEN).map(|i| (i % 251) as u8).collect();
    let dir = std::env::temp_dir().join(format!("b2-async-std-memory-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let source = dir.join("source.bin");
    std::fs::write(&source, &data).expect("write");
    let new_file = |name: &str| {
        NewFile::new(
            bucket.bucket_id.clone(),
            FileName::new(name).expect("file name"),
        )
    };

    // A file is streamed from disk: four parts in flight, each read in 256 KiB chunks.
    let (uploaded, peak) = peak_of(client.upload_path(new_file("from-path"), &source)).await;
    let uploaded = uploaded.expect("upload from a path");
    assert_eq!(uploaded.content_length, FILE_LEN);
    assert!(peak < 8 * MIB, "uploading from a path held {peak} bytes");

    // A reader of unknown length: at most the parts in flight and the probe are in memory.
    let reader = futures_util::io::Cursor::new(&data[..]);
    let (from_reader, peak) = peak_of(client.upload(
        new_file("from-reader"),
        UploadSource::Reader {
            reader: Box::new(reader),
            len: None,
        },
        &UploadOptions::new(),
    ))
    .await;
    assert_eq!(
        from_reader.expect("upload from a reader").content_length,
        FILE_LEN
    );
    assert!(peak < 16 * MIB, "uploading from a reader held {peak} bytes");

    let id = uploaded.file_id.clone().expect("file id");

    // A streamed download holds one chunk.
    let (read, peak) = peak_of(async {
        let mut stream = client
            .download(DownloadFileById::new(id.clone()), 64 * 1024)
            .await
            .expect("download");
        let mut total = 0u64;
        let mut same = true;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.expect("chunk");
            let at = usize::try_from(total).expect("offset");
            same &= data.get(at..at + chunk.len()) == Some(&chunk[..]);
            total += chunk.len() as u64;
        }
        (total, same, stream.verification())
    })
    .await;
    assert_eq!(read.0, FILE_LEN);
    assert!(read.1, "the streamed bytes differ from the file");
    assert!(read.2.is_some(), "no verification at the end of the stream");
    assert!(peak < 4 * MIB, "a streamed download held {peak} bytes");

    // Parallel ranges written to a file hold a chunk (1 MiB) per range in flight, and as much
    // in the file's write buffer.
    let target = dir.join("downloaded.bin");
    let (done, peak) =
        peak_of(client.download_to_path(DownloadFileById::new(id), &target, PART, 4, None)).await;
    done.expect("download to a path");
    assert!(peak < 16 * MIB, "downloading to a path held {peak} bytes");
    let written = std::fs::read(&target).expect("read back");
    assert!(written == data, "the downloaded file differs");
    let _ = std::fs::remove_dir_all(&dir);
}
