//! A blocking-shaped view of a client, implemented once per adapter.
//!
//! Method names and arguments are the adapters' own; streams and readers come back collected,
//! so one suite can drive async and blocking clients alike.

use std::path::Path;
use std::sync::Arc;

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
use bytes::Bytes;

/// What a test needs of a client. Every adapter implements it by calling its client.
pub trait Harness: Sized {
    /// A client for the same endpoint with other credentials.
    fn with_key(&self, key_id: &str, key: &str) -> Self;

    /// A client for the same endpoint and credentials with another upload strategy.
    fn with_upload_strategy(&self, strategy: UploadStrategy) -> Self;

    /// `Client::session`.
    fn session(&self) -> Result<Arc<Session>, Error>;
    /// `Client::run`.
    fn run<Op: Operation + Send + Sync + 'static>(&self, op: Op) -> Result<Op::Output, Error>
    where
        Op::Output: Send;

    /// `Client::list_buckets`.
    fn list_buckets(&self) -> Result<Vec<Bucket>, Error>;
    /// `Client::bucket_by_name`.
    fn bucket_by_name(&self, name: &str) -> Result<Option<Bucket>, Error>;
    /// `Client::create_bucket`.
    fn create_bucket(&self, op: ops::CreateBucket) -> Result<Bucket, Error>;
    /// `Client::update_bucket`.
    fn update_bucket(&self, op: ops::UpdateBucket) -> Result<Bucket, Error>;
    /// `Client::delete_bucket`.
    fn delete_bucket(&self, id: &BucketId) -> Result<Bucket, Error>;

    /// `Client::upload_bytes`.
    fn upload_bytes(&self, file: NewFile, data: Bytes) -> Result<FileVersion, Error>;
    /// `Client::upload_path`.
    fn upload_path(&self, file: NewFile, path: &Path) -> Result<FileVersion, Error>;
    /// `Client::upload_reader` over a reader that cannot seek, yielding `data`; `len` announced
    /// or not.
    fn upload_reader(
        &self,
        file: NewFile,
        data: Bytes,
        announce_len: bool,
    ) -> Result<FileVersion, Error>;
    /// `Client::upload` of bytes with progress reports.
    fn upload_bytes_with_progress(
        &self,
        file: NewFile,
        data: Bytes,
        progress: ProgressFn,
    ) -> Result<FileVersion, Error>;

    /// `Client::download_bytes`.
    fn download_bytes<Op: DownloadCall + Send + Sync + 'static>(
        &self,
        op: Op,
    ) -> Result<(DownloadHead, Bytes, Verification), Error>;
    /// `Client::download` with `chunk_size`, the chunks collected.
    fn download_chunks<Op: DownloadCall + Send + Sync + 'static>(
        &self,
        op: Op,
        chunk_size: usize,
    ) -> Result<(DownloadHead, Vec<Bytes>, Option<Verification>), Error>;
    /// `Client::download` read through the adapter's reader type to the end.
    fn download_read_to_end<Op: DownloadCall + Send + Sync + 'static>(
        &self,
        op: Op,
    ) -> Result<Vec<u8>, Error>;
    /// `Client::download_to_path`.
    fn download_to_path<Op: DownloadCall + Send + Sync + 'static>(
        &self,
        op: Op,
        path: &Path,
        part_size: u64,
        concurrency: usize,
    ) -> Result<(DownloadHead, Verification), Error>;

    /// `Client::list_file_names`, collected (`limit`: take that many).
    fn list_file_names(
        &self,
        op: ops::ListFileNames,
        limit: Option<usize>,
    ) -> Result<Vec<FileVersion>, Error>;
    /// `Client::list_file_versions`, collected.
    fn list_file_versions(&self, op: ops::ListFileVersions) -> Result<Vec<FileVersion>, Error>;
    /// `Client::file_info`.
    fn file_info(&self, id: &FileId) -> Result<FileVersion, Error>;
    /// `Client::file_info_by_name`.
    fn file_info_by_name(
        &self,
        bucket: &BucketName,
        name: &FileName,
    ) -> Result<DownloadHead, Error>;
    /// `Client::hide_file`.
    fn hide_file(&self, bucket: &BucketId, name: &FileName) -> Result<FileVersion, Error>;
    /// `Client::unhide_file`.
    fn unhide_file(&self, bucket: &BucketId, name: &FileName)
    -> Result<Option<FileVersion>, Error>;
    /// `Client::delete_file_version`.
    fn delete_file_version(
        &self,
        name: &FileName,
        id: &FileId,
    ) -> Result<ops::DeletedFileVersion, Error>;
    /// `Client::delete_all_versions`.
    fn delete_all_versions(&self, bucket: &BucketId, name: &FileName) -> Result<usize, Error>;
    /// `Client::copy_file`.
    fn copy_file(&self, op: ops::CopyFile) -> Result<FileVersion, Error>;
    /// `Client::copy_large_file`.
    fn copy_large_file(&self, source: &FileId, file: NewFile) -> Result<FileVersion, Error>;
    /// `Client::share_url`.
    fn share_url(
        &self,
        bucket: &Bucket,
        name: &FileName,
        valid_for_seconds: u64,
    ) -> Result<String, Error>;

    /// `Client::list_unfinished_large_files`, collected.
    fn list_unfinished_large_files(
        &self,
        op: ops::ListUnfinishedLargeFiles,
    ) -> Result<Vec<FileVersion>, Error>;
    /// `Client::list_parts`, collected.
    fn list_parts(&self, file: &FileId) -> Result<Vec<Part>, Error>;
    /// `Client::cancel_large_file`.
    fn cancel_large_file(&self, file: &FileId) -> Result<ops::CancelledLargeFile, Error>;
    /// `Client::resume_upload_path`.
    fn resume_upload_path(
        &self,
        file_id: &FileId,
        file: NewFile,
        path: &Path,
    ) -> Result<FileVersion, Error>;

    /// `Client::create_key`.
    fn create_key(&self, op: ops::CreateKey) -> Result<CreatedKey, Error>;
    /// `Client::list_keys`, collected.
    fn list_keys(&self) -> Result<Vec<Key>, Error>;
    /// `Client::delete_key`.
    fn delete_key(&self, id: &ApplicationKeyId) -> Result<Key, Error>;
    /// `Client::download_authorization`.
    fn download_authorization(
        &self,
        op: ops::GetDownloadAuthorization,
    ) -> Result<DownloadAuthorization, Error>;
    /// `Client::set_notification_rules`.
    fn set_notification_rules(
        &self,
        bucket: &BucketId,
        rules: Vec<NotificationRule>,
    ) -> Result<BucketNotificationRules, Error>;
    /// `Client::notification_rules`.
    fn notification_rules(&self, bucket: &BucketId) -> Result<BucketNotificationRules, Error>;
}
