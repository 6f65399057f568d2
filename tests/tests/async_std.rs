//! The behaviour suite against b2-async-std.

use std::path::Path;
use std::sync::Arc;

use b2_async_std::{Client, UploadOptions, UploadSource};
use b2_proto::model::{
    Bucket, BucketNotificationRules, CreatedKey, DownloadAuthorization, FileVersion, Key,
    NotificationRule, Part,
};
use b2_proto::ops::{self, DownloadCall, DownloadHead};
use b2_proto::progress::ProgressFn;
use b2_proto::transfer::{NewFile, UploadStrategy};
use b2_proto::verify::Verification;
use b2_proto::{
    ApplicationKeyId, BucketId, BucketName, Error, FileId, FileName, Operation, Session,
};
use b2_tests::{Harness, Target};
use bytes::Bytes;
use futures_util::io::AsyncReadExt as _;
use futures_util::{StreamExt as _, TryStreamExt as _};

struct AsyncStd {
    client: Client,
    realm: String,
    key_id: String,
    key: String,
    strategy: UploadStrategy,
}

impl AsyncStd {
    fn new(target: &Target) -> Self {
        Self::build(
            &target.realm,
            &target.key_id,
            &target.key,
            UploadStrategy::default(),
        )
    }

    fn build(realm: &str, key_id: &str, key: &str, strategy: UploadStrategy) -> Self {
        let client = Client::builder(key_id, key)
            .realm(realm)
            .upload_strategy(strategy)
            .retry_policy(b2_proto::RetryPolicy::default().with_backoff(
                std::time::Duration::from_millis(5),
                std::time::Duration::from_millis(200),
            ))
            .build()
            .unwrap();
        Self {
            client,
            realm: realm.into(),
            key_id: key_id.into(),
            key: key.into(),
            strategy,
        }
    }

    fn block<F: Future>(&self, f: F) -> F::Output {
        async_std::task::block_on(f)
    }
}

/// A reader that cannot seek: the bytes in small, uneven reads.
struct Trickle(std::io::Cursor<Bytes>);

impl futures_util::io::AsyncRead for Trickle {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &mut [u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let want = buf.len().min(7919);
        std::task::Poll::Ready(std::io::Read::read(&mut self.0, &mut buf[..want]))
    }
}

impl Harness for AsyncStd {
    fn with_key(&self, key_id: &str, key: &str) -> Self {
        Self::build(&self.realm, key_id, key, self.strategy)
    }

    fn with_upload_strategy(&self, strategy: UploadStrategy) -> Self {
        Self::build(&self.realm, &self.key_id, &self.key, strategy)
    }

    fn session(&self) -> Result<Arc<Session>, Error> {
        self.block(self.client.session())
    }

    fn run<Op: Operation + Send + Sync + 'static>(&self, op: Op) -> Result<Op::Output, Error>
    where
        Op::Output: Send,
    {
        self.block(self.client.run(op))
    }

    fn list_buckets(&self) -> Result<Vec<Bucket>, Error> {
        self.block(self.client.list_buckets())
    }

    fn bucket_by_name(&self, name: &str) -> Result<Option<Bucket>, Error> {
        self.block(self.client.bucket_by_name(name))
    }

    fn create_bucket(&self, op: ops::CreateBucket) -> Result<Bucket, Error> {
        self.block(self.client.create_bucket(op))
    }

    fn update_bucket(&self, op: ops::UpdateBucket) -> Result<Bucket, Error> {
        self.block(self.client.update_bucket(op))
    }

    fn delete_bucket(&self, id: &BucketId) -> Result<Bucket, Error> {
        self.block(self.client.delete_bucket(id))
    }

    fn upload_bytes(&self, file: NewFile, data: Bytes) -> Result<FileVersion, Error> {
        self.block(self.client.upload_bytes(file, data))
    }

    fn upload_path(&self, file: NewFile, path: &Path) -> Result<FileVersion, Error> {
        self.block(self.client.upload_path(file, path))
    }

    fn upload_reader(
        &self,
        file: NewFile,
        data: Bytes,
        announce_len: bool,
    ) -> Result<FileVersion, Error> {
        let len = announce_len.then_some(data.len() as u64);
        self.block(
            self.client
                .upload_reader(file, Trickle(std::io::Cursor::new(data)), len),
        )
    }

    fn upload_bytes_with_progress(
        &self,
        file: NewFile,
        data: Bytes,
        progress: ProgressFn,
    ) -> Result<FileVersion, Error> {
        let options = UploadOptions::new().with_progress(progress);
        self.block(
            self.client
                .upload(file, UploadSource::Bytes(data), &options),
        )
    }

    fn download_bytes<Op: DownloadCall + Send + Sync + 'static>(
        &self,
        op: Op,
    ) -> Result<(DownloadHead, Bytes, Verification), Error> {
        self.block(self.client.download_bytes(op))
    }

    fn download_chunks<Op: DownloadCall + Send + Sync + 'static>(
        &self,
        op: Op,
        chunk_size: usize,
    ) -> Result<(DownloadHead, Vec<Bytes>, Option<Verification>), Error> {
        self.block(async {
            let mut stream = self.client.download(op, chunk_size).await?;
            let mut chunks = Vec::new();
            while let Some(chunk) = stream.next().await {
                chunks.push(chunk?);
            }
            Ok((stream.head().clone(), chunks, stream.verification()))
        })
    }

    fn download_read_to_end<Op: DownloadCall + Send + Sync + 'static>(
        &self,
        op: Op,
    ) -> Result<Vec<u8>, Error> {
        self.block(async {
            let mut reader = self.client.download(op, 4096).await?.into_async_read();
            let mut out = Vec::new();
            reader
                .read_to_end(&mut out)
                .await
                .map_err(|source| Error::Io {
                    context: "reading the download",
                    source,
                })?;
            Ok(out)
        })
    }

    fn download_to_path<Op: DownloadCall + Send + Sync + 'static>(
        &self,
        op: Op,
        path: &Path,
        part_size: u64,
        concurrency: usize,
    ) -> Result<(DownloadHead, Verification), Error> {
        self.block(
            self.client
                .download_to_path(op, path, part_size, concurrency, None),
        )
    }

    fn list_file_names(
        &self,
        op: ops::ListFileNames,
        limit: Option<usize>,
    ) -> Result<Vec<FileVersion>, Error> {
        self.block(
            self.client
                .list_file_names(op)
                .take(limit.unwrap_or(usize::MAX))
                .try_collect(),
        )
    }

    fn list_file_versions(&self, op: ops::ListFileVersions) -> Result<Vec<FileVersion>, Error> {
        self.block(self.client.list_file_versions(op).try_collect())
    }

    fn file_info(&self, id: &FileId) -> Result<FileVersion, Error> {
        self.block(self.client.file_info(id))
    }

    fn file_info_by_name(
        &self,
        bucket: &BucketName,
        name: &FileName,
    ) -> Result<DownloadHead, Error> {
        self.block(self.client.file_info_by_name(bucket, name))
    }

    fn hide_file(&self, bucket: &BucketId, name: &FileName) -> Result<FileVersion, Error> {
        self.block(self.client.hide_file(bucket, name))
    }

    fn unhide_file(
        &self,
        bucket: &BucketId,
        name: &FileName,
    ) -> Result<Option<FileVersion>, Error> {
        self.block(self.client.unhide_file(bucket, name))
    }

    fn delete_file_version(
        &self,
        name: &FileName,
        id: &FileId,
    ) -> Result<ops::DeletedFileVersion, Error> {
        self.block(self.client.delete_file_version(name, id))
    }

    fn delete_all_versions(&self, bucket: &BucketId, name: &FileName) -> Result<usize, Error> {
        self.block(self.client.delete_all_versions(bucket, name))
    }

    fn copy_file(&self, op: ops::CopyFile) -> Result<FileVersion, Error> {
        self.block(self.client.copy_file(op))
    }

    fn copy_large_file(&self, source: &FileId, file: NewFile) -> Result<FileVersion, Error> {
        self.block(self.client.copy_large_file(source, file))
    }

    fn share_url(
        &self,
        bucket: &Bucket,
        name: &FileName,
        valid_for_seconds: u64,
    ) -> Result<String, Error> {
        self.block(self.client.share_url(bucket, name, valid_for_seconds))
    }

    fn list_unfinished_large_files(
        &self,
        op: ops::ListUnfinishedLargeFiles,
    ) -> Result<Vec<FileVersion>, Error> {
        self.block(self.client.list_unfinished_large_files(op).try_collect())
    }

    fn list_parts(&self, file: &FileId) -> Result<Vec<Part>, Error> {
        self.block(self.client.list_parts(file).try_collect())
    }

    fn cancel_large_file(&self, file: &FileId) -> Result<ops::CancelledLargeFile, Error> {
        self.block(self.client.cancel_large_file(file))
    }

    fn resume_upload_path(
        &self,
        file_id: &FileId,
        file: NewFile,
        path: &Path,
    ) -> Result<FileVersion, Error> {
        self.block(self.client.resume_upload_path(file_id, file, path))
    }

    fn create_key(&self, op: ops::CreateKey) -> Result<CreatedKey, Error> {
        self.block(self.client.create_key(op))
    }

    fn list_keys(&self) -> Result<Vec<Key>, Error> {
        self.block(self.client.list_keys().try_collect())
    }

    fn delete_key(&self, id: &ApplicationKeyId) -> Result<Key, Error> {
        self.block(self.client.delete_key(id))
    }

    fn download_authorization(
        &self,
        op: ops::GetDownloadAuthorization,
    ) -> Result<DownloadAuthorization, Error> {
        self.block(self.client.download_authorization(op))
    }

    fn set_notification_rules(
        &self,
        bucket: &BucketId,
        rules: Vec<NotificationRule>,
    ) -> Result<BucketNotificationRules, Error> {
        self.block(self.client.set_notification_rules(bucket, rules))
    }

    fn notification_rules(&self, bucket: &BucketId) -> Result<BucketNotificationRules, Error> {
        self.block(self.client.notification_rules(bucket))
    }
}

b2_tests::behaviour_suite!(AsyncStd::new);
