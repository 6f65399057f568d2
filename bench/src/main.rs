//! `b2-bench`: drives one of the adapters (`b2-tokio`, `b2-async-std` or `b2-blocking`) through
//! one benchmark workload and reports its time and peak memory.
//!
//! Run by `bench/run.sh`, which starts a `b2-emulator` and passes its realm and key in
//! `B2_REALM`, `B2_APPLICATION_KEY_ID` and `B2_APPLICATION_KEY`.
//!
//! ```text
//! b2-bench [--adapter tokio|async-std|blocking] bucket NAME
//! b2-bench [--adapter A] upload-path BUCKET NAME PATH [--part-size N] [--in-flight N]
//! b2-bench [--adapter A] upload-stdin BUCKET NAME [--part-size N] [--in-flight N]
//! b2-bench [--adapter A] download BUCKET NAME OUT [--part-size N] [--concurrency N]
//! b2-bench [--adapter A] upload-dir BUCKET PREFIX DIR [--concurrency N]
//! b2-bench [--adapter A] download-prefix BUCKET PREFIX DIR [--concurrency N]
//! ```
//!
//! Every adapter runs the same workloads with the same settings: the same upload strategy
//! (part size, parts in flight), the same download streams, and `--concurrency` files at once
//! for the directory workloads (tasks for the async adapters, threads for `b2-blocking`).
//!
//! Each workload prints one line, `adapter=A bytes=N files=N seconds=S peak_rss_kib=K`, where
//! the peak RSS is the process's high-water mark (`VmHWM` in `/proc/self/status`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

mod with_async_std;
mod with_blocking;
mod with_tokio;

const USAGE: &str = "usage: b2-bench [--adapter tokio|async-std|blocking] WORKLOAD [--part-size N] [--in-flight N] [--concurrency N]
workloads: bucket NAME
           upload-path BUCKET NAME PATH
           upload-stdin BUCKET NAME
           download BUCKET NAME OUT
           upload-dir BUCKET PREFIX DIR
           download-prefix BUCKET PREFIX DIR
(B2_APPLICATION_KEY_ID, B2_APPLICATION_KEY and B2_REALM name the server)";

/// The adapter a run drives.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Adapter {
    Tokio,
    AsyncStd,
    Blocking,
}

impl Adapter {
    fn parse(name: &str) -> Result<Self, String> {
        match name {
            "tokio" | "b2-tokio" => Ok(Self::Tokio),
            "async-std" | "b2-async-std" => Ok(Self::AsyncStd),
            "blocking" | "b2-blocking" => Ok(Self::Blocking),
            _ => Err(format!("unknown adapter {name:?}")),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Tokio => "b2-tokio",
            Self::AsyncStd => "b2-async-std",
            Self::Blocking => "b2-blocking",
        }
    }
}

/// One workload, as named on the command line.
enum Workload {
    /// Creates the bucket if missing and prints its id.
    Bucket { name: String },
    /// Uploads a file from its path.
    UploadPath {
        bucket: String,
        name: String,
        path: PathBuf,
    },
    /// Uploads standard input: a reader of unknown length that cannot seek.
    UploadStdin { bucket: String, name: String },
    /// Downloads one file into `out` with parallel ranges.
    Download {
        bucket: String,
        name: String,
        out: PathBuf,
    },
    /// Uploads every regular file of `dir` as `prefix` + its name.
    UploadDir {
        bucket: String,
        prefix: String,
        dir: PathBuf,
    },
    /// Lists the files under `prefix` and downloads each into `dir`.
    DownloadPrefix {
        bucket: String,
        prefix: String,
        dir: PathBuf,
    },
}

/// Parsed command line.
struct Args {
    adapter: Adapter,
    workload: Workload,
    part_size: u64,
    in_flight: usize,
    concurrency: usize,
}

impl Args {
    fn parse(raw: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut adapter = Adapter::Tokio;
        let mut positional: Vec<String> = Vec::new();
        let mut part_size = 100_000_000;
        let mut in_flight = 4;
        let mut concurrency = 4;
        let mut raw = raw.peekable();
        while let Some(arg) = raw.next() {
            let mut value = |flag: &str| -> Result<String, String> {
                raw.next().ok_or_else(|| format!("{flag} takes a value"))
            };
            let number = |flag: &str, v: String| -> Result<u64, String> {
                v.parse().map_err(|_| format!("{flag} takes a number"))
            };
            match arg.as_str() {
                "--adapter" => adapter = Adapter::parse(&value("--adapter")?)?,
                "--part-size" => part_size = number("--part-size", value("--part-size")?)?,
                "--in-flight" => {
                    in_flight = to_usize(number("--in-flight", value("--in-flight")?)?);
                }
                "--concurrency" => {
                    concurrency = to_usize(number("--concurrency", value("--concurrency")?)?);
                }
                "-h" | "--help" => return Err(String::new()),
                flag if flag.starts_with("--") => return Err(format!("unknown flag {flag}")),
                _ => positional.push(arg),
            }
        }
        let workload = match positional.as_slice() {
            [w, name] if w == "bucket" => Workload::Bucket { name: name.clone() },
            [w, bucket, name, path] if w == "upload-path" => Workload::UploadPath {
                bucket: bucket.clone(),
                name: name.clone(),
                path: path.into(),
            },
            [w, bucket, name] if w == "upload-stdin" => Workload::UploadStdin {
                bucket: bucket.clone(),
                name: name.clone(),
            },
            [w, bucket, name, out] if w == "download" => Workload::Download {
                bucket: bucket.clone(),
                name: name.clone(),
                out: out.into(),
            },
            [w, bucket, prefix, dir] if w == "upload-dir" => Workload::UploadDir {
                bucket: bucket.clone(),
                prefix: prefix.clone(),
                dir: dir.into(),
            },
            [w, bucket, prefix, dir] if w == "download-prefix" => Workload::DownloadPrefix {
                bucket: bucket.clone(),
                prefix: prefix.clone(),
                dir: dir.into(),
            },
            _ => return Err(String::new()),
        };
        Ok(Self {
            adapter,
            workload,
            part_size,
            in_flight,
            concurrency,
        })
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

impl Moved {
    fn add(mut self, bytes: u64) -> Self {
        self.bytes += bytes;
        self.files += 1;
        self
    }
}

fn main() -> ExitCode {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("{e}\n{USAGE}");
            return ExitCode::FAILURE;
        }
    };
    let started = Instant::now();
    let result = match args.adapter {
        Adapter::Tokio => with_tokio::run(&args),
        Adapter::AsyncStd => with_async_std::run(&args),
        Adapter::Blocking => with_blocking::run(&args),
    };
    match result {
        Ok(None) => ExitCode::SUCCESS,
        Ok(Some(moved)) => {
            let seconds = started.elapsed().as_secs_f64();
            println!(
                "adapter={} bytes={} files={} seconds={seconds:.3} peak_rss_kib={}",
                args.adapter.name(),
                moved.bytes,
                moved.files,
                peak_rss_kib().unwrap_or(0)
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("b2-bench ({}): {e}", args.adapter.name());
            ExitCode::FAILURE
        }
    }
}

/// The regular files of `dir`, each with its name under `prefix`, in name order.
fn files_in(dir: &Path, prefix: &str) -> Result<Vec<(PathBuf, String)>, String> {
    let mut paths = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
        if entry.file_type().is_ok_and(|t| t.is_file()) {
            let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
            paths.push((entry.path(), name));
        }
    }
    paths.sort();
    Ok(paths)
}

/// Where a listed file under `prefix` lands in `dir`.
fn local_path(dir: &Path, prefix: &str, name: &str) -> PathBuf {
    let local = name.strip_prefix(prefix).unwrap_or(name);
    dir.join(local.replace('/', "_"))
}

/// The process's peak resident set size in KiB (`VmHWM`), where `/proc` has it.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}
