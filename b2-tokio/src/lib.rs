//! A Backblaze B2 client on tokio, hyper 1 and rustls (with the `ring` provider).
//!
//! Every B2 rule (encoding, retries, upload URLs, part sizes, checksums) is decided by
//! [`b2_proto`]; this crate moves the bytes. The [`Client`] covers the whole Native API:
//! buckets, listings as streams, uploads from bytes, files and readers (large files in parallel
//! parts, streamed from disk), downloads as verified streams, readers, bytes or parallel ranged
//! downloads into a file, hiding, copying (over 5 GB too), keys, download authorizations,
//! Object Lock, encryption, notification rules; and [`Client::run`] runs any `b2_proto`
//! operation with retries.
//!
//! `b2-async-std` and `b2-blocking` offer the same API on other runtimes.
//!
//! ```no_run
//! # async fn example() -> Result<(), b2_tokio::Error> {
//! use b2_tokio::{Client, NewFile};
//! use b2_tokio::b2_proto::FileName;
//! use futures_util::TryStreamExt as _;
//!
//! let client = Client::from_env()?.build()?; // B2_APPLICATION_KEY_ID, B2_APPLICATION_KEY, B2_REALM
//! let bucket = client.bucket_by_name("my-bucket").await?.expect("exists");
//! let file = NewFile::new(bucket.bucket_id.clone(), FileName::new("notes.txt")?);
//! client.upload_bytes(file, &b"hello"[..]).await?;
//! let names: Vec<_> = client
//!     .list_file_names(b2_tokio::ops::ListFileNames::new(bucket.bucket_id.clone()))
//!     .try_collect()
//!     .await?;
//! # let _ = names;
//! # Ok(()) }
//! ```
//!
//! Run `cargo run -p b2-tokio --example quickstart` for a tour against a local emulator.

mod client;
mod download;
mod transport;
mod upload;

/// The README's example, compiled as a doctest so that it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

pub use b2_proto::transfer::{NewFile, UploadStrategy};
pub use download::DownloadStream;
pub use upload::{UploadOptions, UploadSource};

use std::sync::Arc;

use b2_proto::model::FileVersion;
use b2_proto::model::{
    Bucket, BucketNotificationRules, CreatedKey, DownloadAuthorization, Key, NotificationRule,
};
use b2_proto::ops::{DownloadHead, DownloadOverrides};
pub use b2_proto::{self, Error, model, ops};
use b2_proto::{
    ApplicationKey, ApplicationKeyId, AuthorizeAccount, BucketId, BucketName, Call, Operation,
    Pager, PagerState, Paginated, RetryPolicy, Session, UserAgent,
};
use b2_proto::{FileId, FileName};
use futures_util::{Stream, StreamExt as _, TryStreamExt as _};

use crate::client::{DEFAULT_TIMEOUTS, Inner, Source};

/// The environment variable holding the application key id.
pub const ENV_KEY_ID: &str = "B2_APPLICATION_KEY_ID";
/// The environment variable holding the application key.
pub const ENV_KEY: &str = "B2_APPLICATION_KEY";
/// The environment variable naming another realm (a B2-compatible server) to authorize against.
pub const ENV_REALM: &str = "B2_REALM";

/// A B2 client: cheap to clone, shared by any number of tasks.
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

/// Configures a [`Client`].
#[derive(Debug, Clone)]
#[must_use]
pub struct ClientBuilder {
    key_id: ApplicationKeyId,
    key: ApplicationKey,
    realm: Option<String>,
    user_agent: UserAgent,
    policy: RetryPolicy,
    timeouts: transport::Timeouts,
    chunk_size: usize,
    upload_url_cache: usize,
    upload: UploadStrategy,
}

impl ClientBuilder {
    /// Authorizes against another realm, such as a local `b2-emulator`.
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = Some(realm.into());
        self
    }

    /// Names the application in the User-Agent, as Backblaze asks integrations to.
    pub fn application(mut self, name: &str, version: &str) -> Self {
        self.user_agent = self.user_agent.with_product(name, version);
        self
    }

    /// Sets the retry policy.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Sets the longest wait for a TCP connection (default 30 s).
    pub fn connect_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.timeouts.connect = timeout;
        self
    }

    /// Sets the longest wait for a reply's head once the request was sent (default 15 minutes:
    /// B2 may work long before it answers a large upload or copy).
    ///
    /// A request counts as sent once the connection took the last piece of its body; those
    /// last bytes may still be in hyper's and the system's socket buffers (a few MB at most)
    /// and cross a slow link within this wait. A request without a body (a download, a `GET`)
    /// must have its reply's head within this timeout of its start, connecting included.
    pub fn request_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.timeouts.request = timeout;
        self
    }

    /// Sets the longest time without progress while sending a request body, and the longest
    /// silence while reading a reply body (default 2 minutes).
    ///
    /// Sending a body (a large part over a slow link) may take as long as it needs while the
    /// connection keeps taking pieces of it (up to 64 KiB each); it fails with a timeout once
    /// none was taken for this long. Until the first piece goes, this covers setting up the
    /// connection too (the TLS handshake; the TCP connection also has its own timeout).
    pub fn idle_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.timeouts.idle = timeout;
        self
    }

    /// Keeps up to `urls` idle upload URLs per bucket for reuse (default 16; 0 disables the
    /// cache). Each concurrent upload uses its own URL, as Backblaze requires.
    pub fn upload_url_cache(mut self, urls: usize) -> Self {
        self.upload_url_cache = urls;
        self
    }

    /// Sets when uploads switch to the large-file API, the part size and the parts in flight.
    pub fn upload_strategy(mut self, strategy: UploadStrategy) -> Self {
        self.upload = strategy;
        self
    }

    /// Sets the size of the chunks read from files for request bodies (default 1 MiB).
    pub fn read_chunk_size(mut self, bytes: usize) -> Self {
        self.chunk_size = bytes.max(4096);
        self
    }

    /// Builds the client. No request is sent until the first call.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] when TLS cannot be set up.
    pub fn build(self) -> Result<Client, Error> {
        let transport = transport::Transport::new(self.timeouts)?;
        let mut authorize =
            AuthorizeAccount::new(self.key_id, self.key).with_user_agent(self.user_agent);
        if let Some(realm) = self.realm {
            authorize = authorize.with_realm(realm);
        }
        Ok(Client {
            inner: Arc::new(Inner::new(
                transport,
                authorize,
                self.policy,
                self.chunk_size,
                self.upload_url_cache,
                self.upload,
            )),
        })
    }
}

impl Client {
    /// A builder for a client using `key_id` and `key`.
    pub fn builder(key_id: impl Into<String>, key: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            key_id: ApplicationKeyId::new(key_id),
            key: ApplicationKey::new(key),
            realm: None,
            user_agent: UserAgent::new()
                .with_product("b2-tokio", env!("CARGO_PKG_VERSION"))
                .with_dependency("hyper", "1"),
            policy: RetryPolicy::default(),
            timeouts: DEFAULT_TIMEOUTS,
            chunk_size: 1 << 20,
            upload_url_cache: 16,
            upload: UploadStrategy::default(),
        }
    }

    /// A builder from `B2_APPLICATION_KEY_ID`, `B2_APPLICATION_KEY` and, if set, `B2_REALM`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] when a key variable is missing.
    pub fn from_env() -> Result<ClientBuilder, Error> {
        let var = |name: &'static str| {
            std::env::var(name).map_err(|_| b2_proto::InvalidInput::Argument {
                what: name,
                reason: "environment variable is not set".into(),
            })
        };
        let mut builder = Self::builder(var(ENV_KEY_ID)?, var(ENV_KEY)?);
        if let Ok(realm) = std::env::var(ENV_REALM) {
            builder = builder.realm(realm);
        }
        Ok(builder)
    }

    /// The current session, authorizing first when needed.
    ///
    /// # Errors
    ///
    /// `401 unauthorized` for a wrong key; transport errors once retries are exhausted.
    pub async fn session(&self) -> Result<Arc<Session>, Error> {
        self.inner.session().await
    }

    /// Runs any b2-proto operation with retries, backoff and re-authorization.
    ///
    /// # Errors
    ///
    /// The operation's documented B2 errors, and transport errors once retries are exhausted.
    pub async fn run<Op: Operation>(&self, op: Op) -> Result<Op::Output, Error> {
        use tracing::Instrument as _;
        let span = tracing::info_span!("b2_call", op = Op::NAME);
        async {
            let session = self.inner.session().await?;
            let call = Call::new(op, session, &self.inner.policy());
            self.inner.drive(call, &mut Source::None).await
        }
        .instrument(span)
        .await
    }
}

/// One page of a listing, with the state to resume from after it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Page<Item, Cursor> {
    /// The page's items.
    pub items: Vec<Item>,
    /// Where the listing stands after this page; persist it to resume with [`Client::list_pages`].
    pub state: PagerState<Cursor>,
}

impl Client {
    /// Lists every item of a paginated call, fetching pages as the stream is read.
    ///
    /// Each page is one retried call; the listing stops at the first error.
    pub fn list<Op>(&self, op: Op) -> impl Stream<Item = Result<Op::Item, Error>> + Send + '_
    where
        Op: Paginated + Send + Sync + 'static,
        Op::Output: Send,
        Op::Item: Send,
        Op::Cursor: Send + Sync,
    {
        use futures_util::StreamExt as _;
        self.list_pages(Pager::new(op)).flat_map(|page| {
            let items: Vec<Result<Op::Item, Error>> = match page {
                Ok(page) => page.items.into_iter().map(Ok).collect(),
                Err(e) => vec![Err(e)],
            };
            futures_util::stream::iter(items)
        })
    }

    /// Lists page by page from a pager (new, or resumed from a saved [`PagerState`]).
    pub fn list_pages<Op>(
        &self,
        pager: Pager<Op>,
    ) -> impl Stream<Item = Result<Page<Op::Item, Op::Cursor>, Error>> + Send + '_
    where
        Op: Paginated + Send + Sync + 'static,
        Op::Output: Send,
        Op::Item: Send,
        Op::Cursor: Send + Sync,
    {
        futures_util::stream::try_unfold(pager, move |mut pager| async move {
            let Some(op) = pager.next_operation() else {
                return Ok(None);
            };
            let page = self.run(op).await?;
            let items = pager.advance(page)?;
            let state = pager.state().clone();
            Ok(Some((Page { items, state }, pager)))
        })
    }

    /// Lists the account's buckets (`b2_list_buckets`).
    ///
    /// # Errors
    ///
    /// `401 unauthorized` when the key lacks `listBuckets` or is restricted to some buckets
    /// (list those with [`Client::bucket_by_name`]).
    pub async fn list_buckets(&self) -> Result<Vec<Bucket>, Error> {
        self.run(ops::ListBuckets::new()).await
    }

    /// The bucket named `name`, if it exists and the key may see it.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for an invalid name; `401 unauthorized`.
    pub async fn bucket_by_name(&self, name: &str) -> Result<Option<Bucket>, Error> {
        let op = ops::ListBuckets::new()
            .with_bucket_name(BucketName::new(name)?)
            .with_all_bucket_types();
        Ok(self.run(op).await?.into_iter().next())
    }

    /// The bucket with id `id`, if it exists and the key may see it.
    ///
    /// # Errors
    ///
    /// `401 unauthorized`.
    pub async fn bucket_by_id(&self, id: &BucketId) -> Result<Option<Bucket>, Error> {
        let op = ops::ListBuckets::new()
            .with_bucket_id(id.clone())
            .with_all_bucket_types();
        Ok(self.run(op).await?.into_iter().next())
    }

    /// Creates a bucket (`b2_create_bucket`).
    ///
    /// # Errors
    ///
    /// `400 duplicate_bucket_name`, `400 too_many_buckets`, `401 unauthorized`.
    pub async fn create_bucket(&self, op: ops::CreateBucket) -> Result<Bucket, Error> {
        self.run(op).await
    }

    /// Changes a bucket's settings (`b2_update_bucket`).
    ///
    /// # Errors
    ///
    /// `409 conflict` when `if_revision_is` no longer matches; `401 unauthorized`.
    pub async fn update_bucket(&self, op: ops::UpdateBucket) -> Result<Bucket, Error> {
        self.run(op).await
    }

    /// Deletes an empty bucket (`b2_delete_bucket`).
    ///
    /// # Errors
    ///
    /// `400 cannot_delete_non_empty_bucket`, `400 bad_request` for an unknown bucket.
    pub async fn delete_bucket(&self, id: &BucketId) -> Result<Bucket, Error> {
        self.run(ops::DeleteBucket::new(id.clone())).await
    }

    /// Creates an application key (`b2_create_key`); the reply holds its secret, once.
    ///
    /// # Errors
    ///
    /// `400 bad_request`, `401 unauthorized` (the key lacks `writeKeys`).
    pub async fn create_key(&self, op: ops::CreateKey) -> Result<CreatedKey, Error> {
        self.run(op).await
    }

    /// Lists the account's application keys (`b2_list_keys`), page by page as the stream is read.
    pub fn list_keys(&self) -> impl Stream<Item = Result<Key, Error>> + Send + '_ {
        self.list(ops::ListKeys::new())
    }

    /// Deletes an application key (`b2_delete_key`).
    ///
    /// # Errors
    ///
    /// `400 bad_request` for an unknown key, `401 unauthorized`.
    pub async fn delete_key(&self, id: &ApplicationKeyId) -> Result<Key, Error> {
        self.run(ops::DeleteKey::new(id.clone())).await
    }

    /// Creates a download-authorization token for files under a prefix of a private bucket
    /// (`b2_get_download_authorization`).
    ///
    /// # Errors
    ///
    /// `400 bad_request`, `401 unauthorized` (the key lacks `shareFiles`).
    pub async fn download_authorization(
        &self,
        op: ops::GetDownloadAuthorization,
    ) -> Result<DownloadAuthorization, Error> {
        self.run(op).await
    }

    /// Replaces a bucket's event-notification rules (`b2_set_bucket_notification_rules`).
    ///
    /// # Errors
    ///
    /// `400 event_type_invalid`, `event_type_overlap`, `event_types_empty`,
    /// `event_type_categories`, `401 unauthorized`.
    pub async fn set_notification_rules(
        &self,
        bucket: &BucketId,
        rules: Vec<NotificationRule>,
    ) -> Result<BucketNotificationRules, Error> {
        self.run(ops::SetBucketNotificationRules::new(bucket.clone(), rules))
            .await
    }

    /// A bucket's event-notification rules (`b2_get_bucket_notification_rules`).
    ///
    /// # Errors
    ///
    /// `401 unauthorized`.
    pub async fn notification_rules(
        &self,
        bucket: &BucketId,
    ) -> Result<BucketNotificationRules, Error> {
        self.run(ops::GetBucketNotificationRules::new(bucket.clone()))
            .await
    }
}

impl Client {
    /// Lists file names (the newest version of each visible file), page by page as the stream
    /// is read. Set a prefix, a delimiter (folders come back as [`Action::Folder`](model::Action))
    /// and a start on the operation; `take(n)` the stream for a limit.
    pub fn list_file_names(
        &self,
        op: ops::ListFileNames,
    ) -> impl Stream<Item = Result<FileVersion, Error>> + Send + '_ {
        self.list(op)
    }

    /// Lists every version of every file, hide markers and unfinished large files included.
    pub fn list_file_versions(
        &self,
        op: ops::ListFileVersions,
    ) -> impl Stream<Item = Result<FileVersion, Error>> + Send + '_ {
        self.list(op)
    }

    /// A file version's metadata (`b2_get_file_info`).
    ///
    /// # Errors
    ///
    /// `404 not_found` (also `400 bad_request` for a malformed id), `401 unauthorized`.
    pub async fn file_info(&self, id: &FileId) -> Result<FileVersion, Error> {
        self.run(ops::GetFileInfo::new(id.clone())).await
    }

    /// The headers of the current version of a file, by name (a `HEAD` download).
    ///
    /// # Errors
    ///
    /// `404 not_found` for a missing or hidden file, `401 unauthorized`.
    pub async fn file_info_by_name(
        &self,
        bucket: &BucketName,
        name: &FileName,
    ) -> Result<DownloadHead, Error> {
        let op = ops::DownloadFileByName::new(bucket.clone(), name.clone()).head_only();
        Ok(self.run(op).await?.head)
    }

    /// Hides a file: a hide marker becomes its newest version (`b2_hide_file`).
    ///
    /// # Errors
    ///
    /// `400 already_hidden`, `400 no_such_file`, `401 unauthorized`.
    pub async fn hide_file(
        &self,
        bucket: &BucketId,
        name: &FileName,
    ) -> Result<FileVersion, Error> {
        self.run(ops::HideFile::new(bucket.clone(), name.clone()))
            .await
    }

    /// Unhides a file by deleting its hide marker; `None` when its newest version is not one.
    ///
    /// # Errors
    ///
    /// `401 unauthorized` (needs `listFiles` and `deleteFiles`).
    pub async fn unhide_file(
        &self,
        bucket: &BucketId,
        name: &FileName,
    ) -> Result<Option<FileVersion>, Error> {
        let versions = self.list(b2_proto::compose::versions_of(bucket.clone(), name));
        let newest = std::pin::pin!(versions).next().await.transpose()?;
        let Some(delete) = newest
            .as_ref()
            .and_then(|v| b2_proto::compose::unhide(v, name))
        else {
            return Ok(None);
        };
        self.run(delete).await?;
        Ok(newest)
    }

    /// Deletes one file version (`b2_delete_file_version`).
    ///
    /// # Errors
    ///
    /// `400 file_not_present`, `401 unauthorized`, `403 access_denied` (Object Lock).
    pub async fn delete_file_version(
        &self,
        name: &FileName,
        id: &FileId,
    ) -> Result<ops::DeletedFileVersion, Error> {
        self.run(ops::DeleteFileVersion::new(name.clone(), id.clone()))
            .await
    }

    /// Deletes every version of a file, hide markers included; returns how many.
    ///
    /// # Errors
    ///
    /// As [`Client::delete_file_version`]; versions deleted before an error stay deleted.
    pub async fn delete_all_versions(
        &self,
        bucket: &BucketId,
        name: &FileName,
    ) -> Result<usize, Error> {
        let versions: Vec<FileVersion> = self
            .list(b2_proto::compose::versions_of(bucket.clone(), name))
            .try_take_while(|v| std::future::ready(Ok(b2_proto::compose::is_version_of(v, name))))
            .try_collect()
            .await?;
        let mut deleted = 0;
        for version in &versions {
            if let Some(delete) = b2_proto::compose::delete_version(version, name) {
                self.run(delete).await?;
                deleted += 1;
            }
        }
        Ok(deleted)
    }

    /// Copies a file server-side (`b2_copy_file`); for sources over 5 GB use
    /// [`Client::copy_large_file`].
    ///
    /// # Errors
    ///
    /// `400 source_too_large` (over 5 GB), `404 not_found`, `401 unauthorized`,
    /// `403 access_denied` (wrong SSE-C key).
    pub async fn copy_file(&self, op: ops::CopyFile) -> Result<FileVersion, Error> {
        self.run(op).await
    }

    /// Sets a file version's Object Lock retention (`b2_update_file_retention`).
    ///
    /// # Errors
    ///
    /// `400 bad_request`, `401 unauthorized`, `403 access_denied`.
    pub async fn update_file_retention(
        &self,
        op: ops::UpdateFileRetention,
    ) -> Result<ops::FileRetentionUpdate, Error> {
        self.run(op).await
    }

    /// Sets a file version's legal hold (`b2_update_file_legal_hold`).
    ///
    /// # Errors
    ///
    /// `400 bad_request`, `401 unauthorized`, `403 access_denied`.
    pub async fn update_file_legal_hold(
        &self,
        op: ops::UpdateFileLegalHold,
    ) -> Result<ops::LegalHoldUpdate, Error> {
        self.run(op).await
    }

    /// A URL anyone can download `name` from for `valid_for_seconds` (1 to 604,800), even from
    /// a private bucket: a download authorization for exactly that name, in the query string.
    ///
    /// # Errors
    ///
    /// `401 unauthorized` (needs `shareFiles`), [`Error::InvalidInput`] for a duration out of range.
    pub async fn share_url(
        &self,
        bucket: &Bucket,
        name: &FileName,
        valid_for_seconds: u64,
    ) -> Result<String, Error> {
        let auth = self
            .run(ops::GetDownloadAuthorization::new(
                bucket.bucket_id.clone(),
                name.as_str(),
                valid_for_seconds,
            ))
            .await?;
        let session = self.session().await?;
        Ok(ops::share_url(
            &session.download_url,
            &bucket.bucket_name,
            name,
            &auth.authorization_token,
            &DownloadOverrides::new(),
        ))
    }

    /// Lists large files started and neither finished nor cancelled.
    pub fn list_unfinished_large_files(
        &self,
        op: ops::ListUnfinishedLargeFiles,
    ) -> impl Stream<Item = Result<FileVersion, Error>> + Send + '_ {
        self.list(op)
    }

    /// Lists the parts of an unfinished large file.
    pub fn list_parts(
        &self,
        file: &FileId,
    ) -> impl Stream<Item = Result<model::Part, Error>> + Send + '_ {
        self.list(ops::ListParts::new(file.clone()))
    }

    /// Cancels an unfinished large file, deleting its parts (`b2_cancel_large_file`).
    ///
    /// # Errors
    ///
    /// `400 bad_request` for an unknown or finished file, `401 unauthorized`.
    pub async fn cancel_large_file(&self, file: &FileId) -> Result<ops::CancelledLargeFile, Error> {
        self.run(ops::CancelLargeFile::new(file.clone())).await
    }

    /// Finishes an interrupted upload of `path` into the unfinished large file `file_id`:
    /// parts already on B2 with the right size and SHA1 are kept, the others sent.
    ///
    /// # Errors
    ///
    /// As [`Client::upload_path`]; [`Error::InvalidInput`] when the listed parts do not fit the file.
    pub async fn resume_upload_path(
        &self,
        file_id: &FileId,
        file: NewFile,
        path: impl AsRef<std::path::Path>,
    ) -> Result<FileVersion, Error> {
        self.resume_upload(file_id, file, path.as_ref()).await
    }
}
