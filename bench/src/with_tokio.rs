//! The workloads on `b2-tokio`: a multi-threaded tokio runtime, `--concurrency` tasks at once
//! for the directory workloads.

use b2_tokio::b2_proto::model::{Bucket, BucketType};
use b2_tokio::b2_proto::{BucketName, FileName};
use b2_tokio::{Client, Error, NewFile, UploadOptions, UploadSource, UploadStrategy, ops};
use futures_util::{StreamExt as _, TryStreamExt as _};

use crate::{Args, Moved, Workload, files_in, local_path};

/// Runs the workload; `None` for `bucket`, which prints the bucket's id instead.
pub(crate) fn run(args: &Args) -> Result<Option<Moved>, String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(workload(args))
}

async fn workload(args: &Args) -> Result<Option<Moved>, String> {
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
            let bucket = ensure_bucket(client, name).await?;
            println!("{}", bucket.bucket_id);
            return Ok(None);
        }
        Workload::UploadPath { bucket, name, path } => {
            let bucket = find_bucket(client, bucket).await?;
            let file = NewFile::new(bucket.bucket_id, file_name(name)?);
            let version = client.upload_path(file, path).await.map_err(show)?;
            Moved::default().add(version.content_length)
        }
        Workload::UploadStdin { bucket, name } => {
            let bucket = find_bucket(client, bucket).await?;
            let file = NewFile::new(bucket.bucket_id, file_name(name)?);
            let source = UploadSource::Reader {
                reader: Box::new(tokio::io::stdin()),
                len: None,
            };
            let version = client
                .upload(file, source, &UploadOptions::new())
                .await
                .map_err(show)?;
            Moved::default().add(version.content_length)
        }
        Workload::Download { bucket, name, out } => {
            let op = ops::DownloadFileByName::new(bucket_name(bucket)?, file_name(name)?);
            let (head, _) = client
                .download_to_path(op, out, args.part_size, args.concurrency, None)
                .await
                .map_err(show)?;
            Moved::default().add(head.file_size())
        }
        Workload::UploadDir {
            bucket,
            prefix,
            dir,
        } => {
            let bucket = find_bucket(client, bucket).await?;
            let bucket_id = &bucket.bucket_id;
            futures_util::stream::iter(files_in(dir, prefix)?)
                .map(|(path, name)| async move {
                    let file = NewFile::new(bucket_id.clone(), file_name(&name)?);
                    let version = client.upload_path(file, &path).await.map_err(show)?;
                    Ok::<u64, String>(version.content_length)
                })
                .buffer_unordered(args.concurrency)
                .try_fold(Moved::default(), |moved, bytes| async move {
                    Ok(moved.add(bytes))
                })
                .await?
        }
        Workload::DownloadPrefix {
            bucket,
            prefix,
            dir,
        } => {
            let found = find_bucket(client, bucket).await?;
            let listing = ops::ListFileNames::new(found.bucket_id.clone())
                .with_prefix(prefix.as_str())
                .with_max_file_count(1000);
            let names: Vec<FileName> = client
                .list_file_names(listing)
                .map_ok(|v| v.file_name)
                .try_collect()
                .await
                .map_err(show)?;
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            let bucket_name = &found.bucket_name;
            futures_util::stream::iter(names)
                .map(|name| async move {
                    let out = local_path(dir, prefix, name.as_str());
                    let op = ops::DownloadFileByName::new(bucket_name.clone(), name);
                    let (head, _) = client
                        .download_to_path(op, out, args.part_size, 1, None)
                        .await
                        .map_err(show)?;
                    Ok::<u64, String>(head.file_size())
                })
                .buffer_unordered(args.concurrency)
                .try_fold(Moved::default(), |moved, bytes| async move {
                    Ok(moved.add(bytes))
                })
                .await?
        }
    };
    Ok(Some(moved))
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

#[allow(clippy::needless_pass_by_value)]
fn show(e: Error) -> String {
    e.to_string()
}
