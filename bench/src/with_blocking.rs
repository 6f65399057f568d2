//! The workloads on `b2-blocking`: the calling thread, and `--concurrency` threads for the
//! directory workloads, each taking the next file from a shared counter.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use b2_blocking::b2_proto::model::{Bucket, BucketType};
use b2_blocking::b2_proto::{BucketName, FileName};
use b2_blocking::{Client, Error, NewFile, UploadOptions, UploadSource, UploadStrategy, ops};

use crate::{Args, Moved, Workload, files_in, local_path};

/// Runs the workload; `None` for `bucket`, which prints the bucket's id instead.
pub(crate) fn run(args: &Args) -> Result<Option<Moved>, String> {
    let strategy = UploadStrategy::default()
        .with_part_size(args.part_size)
        .with_max_in_flight(args.in_flight);
    let client = Client::from_env()
        .map_err(show)?
        .application("b2-bench", env!("CARGO_PKG_VERSION"))
        .upload_strategy(strategy)
        .build()
        .map_err(show)?;
    let client = &client;
    let moved = match &args.workload {
        Workload::Bucket { name } => {
            let bucket = ensure_bucket(client, name)?;
            println!("{}", bucket.bucket_id);
            return Ok(None);
        }
        Workload::UploadPath { bucket, name, path } => {
            let bucket = find_bucket(client, bucket)?;
            let file = NewFile::new(bucket.bucket_id, file_name(name)?);
            let version = client.upload_path(file, path).map_err(show)?;
            Moved::default().add(version.content_length)
        }
        Workload::UploadStdin { bucket, name } => {
            let bucket = find_bucket(client, bucket)?;
            let file = NewFile::new(bucket.bucket_id, file_name(name)?);
            let source = UploadSource::Reader {
                reader: Box::new(std::io::stdin()),
                len: None,
            };
            let version = client
                .upload(file, source, &UploadOptions::new())
                .map_err(show)?;
            Moved::default().add(version.content_length)
        }
        Workload::Download { bucket, name, out } => {
            let op = ops::DownloadFileByName::new(bucket_name(bucket)?, file_name(name)?);
            let (head, _) = client
                .download_to_path(op, out, args.part_size, args.concurrency, None)
                .map_err(show)?;
            Moved::default().add(head.file_size())
        }
        Workload::UploadDir {
            bucket,
            prefix,
            dir,
        } => {
            let bucket = find_bucket(client, bucket)?;
            let files = files_in(dir, prefix)?;
            on_threads(args.concurrency, &files, |(path, name)| {
                let file = NewFile::new(bucket.bucket_id.clone(), file_name(name)?);
                let version = client.upload_path(file, path).map_err(show)?;
                Ok(version.content_length)
            })?
        }
        Workload::DownloadPrefix {
            bucket,
            prefix,
            dir,
        } => {
            let found = find_bucket(client, bucket)?;
            let listing = ops::ListFileNames::new(found.bucket_id.clone())
                .with_prefix(prefix.as_str())
                .with_max_file_count(1000);
            let names: Vec<FileName> = client
                .list_file_names(listing)
                .map(|v| v.map(|v| v.file_name))
                .collect::<Result<_, _>>()
                .map_err(show)?;
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            on_threads(args.concurrency, &names, |name| {
                let out = local_path(dir, prefix, name.as_str());
                let op = ops::DownloadFileByName::new(found.bucket_name.clone(), name.clone());
                let (head, _) = client
                    .download_to_path(op, out, args.part_size, 1, None)
                    .map_err(show)?;
                Ok(head.file_size())
            })?
        }
    };
    Ok(Some(moved))
}

/// Runs `work` on every item, `threads` threads at once; the first error stops the others
/// taking new items and is returned.
fn on_threads<T: Sync>(
    threads: usize,
    items: &[T],
    work: impl Fn(&T) -> Result<u64, String> + Sync,
) -> Result<Moved, String> {
    let next = AtomicUsize::new(0);
    let failed: Mutex<Option<String>> = Mutex::new(None);
    let total: Mutex<Moved> = Mutex::new(Moved::default());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                while let Some(item) = items.get(next.fetch_add(1, Ordering::Relaxed)) {
                    if failed.lock().is_ok_and(|f| f.is_some()) {
                        return;
                    }
                    match work(item) {
                        Ok(bytes) => {
                            if let Ok(mut total) = total.lock() {
                                *total = std::mem::take(&mut *total).add(bytes);
                            }
                        }
                        Err(e) => {
                            if let Ok(mut failed) = failed.lock() {
                                failed.get_or_insert(e);
                            }
                            return;
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = failed.into_inner().map_err(|e| e.to_string())? {
        return Err(e);
    }
    total.into_inner().map_err(|e| e.to_string())
}

fn find_bucket(client: &Client, name: &str) -> Result<Bucket, String> {
    client
        .bucket_by_name(name)
        .map_err(show)?
        .ok_or_else(|| format!("no bucket named {name}"))
}

fn ensure_bucket(client: &Client, name: &str) -> Result<Bucket, String> {
    if let Some(bucket) = client.bucket_by_name(name).map_err(show)? {
        return Ok(bucket);
    }
    let op = ops::CreateBucket::new(bucket_name(name)?, BucketType::AllPrivate);
    client.create_bucket(op).map_err(show)
}

fn file_name(name: &str) -> Result<FileName, String> {
    FileName::new(name).map_err(|e| format!("file name {name:?}: {e}"))
}

fn bucket_name(name: &str) -> Result<BucketName, String> {
    BucketName::new(name).map_err(|e| format!("bucket name {name:?}: {e}"))
}

#[allow(clippy::needless_pass_by_value)]
fn show(e: Error) -> String {
    e.to_string()
}
