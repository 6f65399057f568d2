//! `b2-bench`: drives `b2-tokio` through one benchmark workload and reports its time and
//! peak memory.
//!
//! Run by `bench/run.sh`, which starts a `b2-emulator` and passes its realm and key in
//! `B2_REALM`, `B2_APPLICATION_KEY_ID` and `B2_APPLICATION_KEY`.
//!
//! ```text
//! b2-bench bucket NAME
//! b2-bench upload-path BUCKET NAME PATH [--part-size N] [--in-flight N]
//! b2-bench upload-stdin BUCKET NAME [--part-size N] [--in-flight N]
//! b2-bench download BUCKET NAME OUT [--part-size N] [--concurrency N]
//! b2-bench upload-dir BUCKET PREFIX DIR [--concurrency N]
//! b2-bench download-prefix BUCKET PREFIX DIR [--concurrency N]
//! ```
//!
//! Each workload prints one line, `bytes=N files=N seconds=S peak_rss_kib=K`, where the peak
//! RSS is the process's high-water mark (`VmHWM` in `/proc/self/status`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use b2_tokio::b2_proto::model::{Bucket, BucketType};
use b2_tokio::b2_proto::{BucketName, FileName};
use b2_tokio::{Client, Error, NewFile, UploadOptions, UploadSource, UploadStrategy, ops};
use futures_util::{StreamExt as _, TryStreamExt as _};

const USAGE: &str = "usage: b2-bench bucket NAME
       b2-bench upload-path BUCKET NAME PATH [--part-size N] [--in-flight N]
       b2-bench upload-stdin BUCKET NAME [--part-size N] [--in-flight N]
       b2-bench download BUCKET NAME OUT [--part-size N] [--concurrency N]
       b2-bench upload-dir BUCKET PREFIX DIR [--concurrency N]
       b2-bench download-prefix BUCKET PREFIX DIR [--concurrency N]
(B2_APPLICATION_KEY_ID, B2_APPLICATION_KEY and B2_REALM name the server)";

/// Parsed command line: positional arguments and `--flag N` options.
struct Args {
    positional: Vec<String>,
    part_size: u64,
    in_flight: usize,
    concurrency: usize,
}

impl Args {
    fn parse(raw: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut args = Self {
            positional: Vec::new(),
            part_size: 100_000_000,
            in_flight: 4,
            concurrency: 4,
        };
        let mut raw = raw.peekable();
        while let Some(arg) = raw.next() {
            let mut number = |flag: &str| -> Result<u64, String> {
                raw.next()
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| format!("{flag} takes a number"))
            };
            match arg.as_str() {
                "--part-size" => args.part_size = number("--part-size")?,
                "--in-flight" => args.in_flight = to_usize(number("--in-flight")?),
                "--concurrency" => args.concurrency = to_usize(number("--concurrency")?),
                "-h" | "--help" => return Err(String::new()),
                flag if flag.starts_with("--") => return Err(format!("unknown flag {flag}")),
                _ => args.positional.push(arg),
            }
        }
        Ok(args)
    }

    fn strategy(&self) -> UploadStrategy {
        UploadStrategy::default()
            .with_part_size(self.part_size)
            .with_max_in_flight(self.in_flight)
    }
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX).max(1)
}

/// What a workload moved.
#[derive(Default)]
struct Moved {
    bytes: u64,
    files: u64,
}

fn main() -> ExitCode {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("{e}\n{USAGE}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("b2-bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("b2-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let client = Client::from_env()
        .map_err(|e| e.to_string())?
        .application("b2-bench", env!("CARGO_PKG_VERSION"))
        .upload_strategy(args.strategy())
        .build()
        .map_err(|e| e.to_string())?;
    let pos: Vec<&str> = args.positional.iter().map(String::as_str).collect();
    let started = Instant::now();
    let moved = match pos.as_slice() {
        ["bucket", name] => {
            let bucket = ensure_bucket(&client, name).await?;
            println!("{}", bucket.bucket_id);
            return Ok(());
        }
        ["upload-path", bucket, name, path] => {
            let bucket = find_bucket(&client, bucket).await?;
            let file = NewFile::new(bucket.bucket_id, file_name(name)?);
            let version = client.upload_path(file, path).await.map_err(show)?;
            Moved {
                bytes: version.content_length,
                files: 1,
            }
        }
        ["upload-stdin", bucket, name] => {
            let bucket = find_bucket(&client, bucket).await?;
            let file = NewFile::new(bucket.bucket_id, file_name(name)?);
            let source = UploadSource::Reader {
                reader: Box::new(tokio::io::stdin()),
                len: None,
            };
            let version = client
                .upload(file, source, &UploadOptions::new())
                .await
                .map_err(show)?;
            Moved {
                bytes: version.content_length,
                files: 1,
            }
        }
        ["download", bucket, name, out] => {
            let op = ops::DownloadFileByName::new(bucket_name(bucket)?, file_name(name)?);
            let (head, _) = client
                .download_to_path(op, out, args.part_size, args.concurrency, None)
                .await
                .map_err(show)?;
            Moved {
                bytes: head.file_size(),
                files: 1,
            }
        }
        ["upload-dir", bucket, prefix, dir] => {
            upload_dir(&client, bucket, prefix, Path::new(dir), args.concurrency).await?
        }
        ["download-prefix", bucket, prefix, dir] => {
            download_prefix(&client, bucket, prefix, Path::new(dir), args.concurrency).await?
        }
        _ => return Err(USAGE.to_owned()),
    };
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "bytes={} files={} seconds={seconds:.3} peak_rss_kib={}",
        moved.bytes,
        moved.files,
        peak_rss_kib().unwrap_or(0)
    );
    Ok(())
}

/// Uploads every regular file in `dir` as `prefix` + its name, `concurrency` at a time.
async fn upload_dir(
    client: &Client,
    bucket: &str,
    prefix: &str,
    dir: &Path,
    concurrency: usize,
) -> Result<Moved, String> {
    let bucket = find_bucket(client, bucket).await?;
    let mut paths: Vec<(PathBuf, String)> = Vec::new();
    let mut entries = tokio::fs::read_dir(dir)
        .await
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    while let Some(entry) = entries.next_entry().await.map_err(|e| e.to_string())? {
        if entry.file_type().await.is_ok_and(|t| t.is_file()) {
            let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
            paths.push((entry.path(), name));
        }
    }
    let client = &client;
    let bucket_id = &bucket.bucket_id;
    futures_util::stream::iter(paths)
        .map(|(path, name)| async move {
            let file = NewFile::new(bucket_id.clone(), file_name(&name)?);
            let version = client.upload_path(file, &path).await.map_err(show)?;
            Ok::<u64, String>(version.content_length)
        })
        .buffer_unordered(concurrency)
        .try_fold(Moved::default(), |mut moved, bytes| async move {
            moved.bytes += bytes;
            moved.files += 1;
            Ok(moved)
        })
        .await
}

/// Lists the files under `prefix` and downloads each into `dir`, `concurrency` at a time.
async fn download_prefix(
    client: &Client,
    bucket: &str,
    prefix: &str,
    dir: &Path,
    concurrency: usize,
) -> Result<Moved, String> {
    let found = find_bucket(client, bucket).await?;
    let listing = ops::ListFileNames::new(found.bucket_id.clone())
        .with_prefix(prefix)
        .with_max_file_count(1000);
    let names: Vec<FileName> = client
        .list_file_names(listing)
        .map_ok(|v| v.file_name)
        .try_collect()
        .await
        .map_err(show)?;
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    let client = &client;
    let bucket_name = &found.bucket_name;
    futures_util::stream::iter(names)
        .map(|name| async move {
            let local = name.as_str().strip_prefix(prefix).unwrap_or(name.as_str());
            let out = dir.join(local.replace('/', "_"));
            let op = ops::DownloadFileByName::new(bucket_name.clone(), name);
            let (head, _) = client
                .download_to_path(op, out, 100_000_000, 1, None)
                .await
                .map_err(show)?;
            Ok::<u64, String>(head.file_size())
        })
        .buffer_unordered(concurrency)
        .try_fold(Moved::default(), |mut moved, bytes| async move {
            moved.bytes += bytes;
            moved.files += 1;
            Ok(moved)
        })
        .await
}

async fn find_bucket(client: &Client, name: &str) -> Result<Bucket, String> {
    client
        .bucket_by_name(name)
        .await
        .map_err(show)?
        .ok_or_else(|| format!("no bucket named {name}"))
}

async fn ensure_bucket(client: &Client, name: &str) -> Result<Bucket, String> {
    if let Some(bucket) = client.bucket_by_name(name).await.map_err(show)? {
        return Ok(bucket);
    }
    let op = ops::CreateBucket::new(bucket_name(name)?, BucketType::AllPrivate);
    client.create_bucket(op).await.map_err(show)
}

fn file_name(name: &str) -> Result<FileName, String> {
    FileName::new(name).map_err(|e| format!("file name {name:?}: {e}"))
}

fn bucket_name(name: &str) -> Result<BucketName, String> {
    BucketName::new(name).map_err(|e| format!("bucket name {name:?}: {e}"))
}

fn show(e: Error) -> String {
    e.to_string()
}

/// The process's peak resident set size in KiB (`VmHWM`), where `/proc` has it.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}
