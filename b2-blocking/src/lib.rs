//! A blocking Backblaze B2 client on ureq 3 and rustls (with the `ring` provider).
//!
//! Choose it for synchronous programs: it has the same calls, names and options as
//! `b2-tokio`, with iterators where that crate has streams and [`std::io::Read`] where it has
//! `AsyncRead`. It starts no runtime and no background thread, so it works anywhere,
//! including from a thread of a tokio runtime (as a blocking call, which such code should run
//! with `spawn_blocking`). Requests a flow wants in parallel (the parts of a large file, the
//! ranges of [`Client::download_to_path`]) run on scoped threads, one per request in flight.
//!
//! Every B2 rule (encoding, validation, retries, upload URLs, part sizes, checksums, resuming
//! a cut download) is decided by [`b2_proto`]; this crate moves the bytes. It covers:
//!
//! - buckets, keys, notification rules, download authorizations, and any `b2_proto`
//!   operation through [`Client::run`] with retries, backoff and shared re-authorization;
//! - uploads from bytes, files and readers of known or unknown length
//!   ([`Client::upload_bytes`], [`Client::upload_path`], [`Client::upload_reader`],
//!   [`Client::upload`]), large files in parallel parts, interrupted uploads resumed
//!   ([`Client::resume_upload_path`]), server-side copies of any size;
//! - downloads as a verified iterator of chunks or a reader ([`Client::download`],
//!   [`DownloadStream::into_read`]), into memory, or into a file in parallel ranges with the
//!   whole file's SHA1 checked before it is renamed into place;
//! - listings as iterators that fetch pages as they are read, hide/unhide, deletes, Object
//!   Lock retention and legal holds, share URLs.
//!
//! Each call runs in a `tracing` span: `b2_call`, `b2_upload` or `b2_download`.
//!
//! TLS is rustls with the `ring` provider, passed explicitly; the roots are Mozilla's
//! (feature `webpki-roots`, the default) or the operating system's (`native-roots`). Plain
//! `http://` works too, for a local `b2-emulator`. ureq keeps idle connections for reuse,
//! follows no redirect, decompresses nothing and honours no proxy variable.
//!
//! # Logging
//!
//! ureq and ureq-proto log through the `log` crate, and at `TRACE` level they write every
//! request head byte for byte (the `Authorization` header with the account's token, or the
//! application key in Basic form) and whole request targets. ureq has no feature or setting to
//! turn this off, and a library cannot filter a logger it does not own, so this crate enables
//! `log`'s `max_level_debug` and `release_max_level_debug` features: in a program that uses
//! it, `log::trace!` records are compiled out for every crate. `DEBUG` records stay; ureq
//! redacts headers and request targets in those. `tracing`'s own levels are not affected.
//!
//! ```no_run
//! # fn example() -> Result<(), b2_blocking::Error> {
//! use b2_blocking::b2_proto::FileName;
//! use b2_blocking::{Client, NewFile, ops};
//!
//! let client = Client::from_env()?.build()?;
//! let bucket = client.bucket_by_name("my-bucket")?.expect("the bucket exists");
//! let name = FileName::new("hello.txt")?;
//! let file = NewFile::new(bucket.bucket_id.clone(), name.clone());
//! client.upload_bytes(file.with_content_type("text/plain"), &b"Hello, B2!"[..])?;
//!
//! let (_, body, verification) =
//!     client.download_bytes(ops::DownloadFileByName::new(bucket.bucket_name, name))?;
//! println!("{} bytes, {verification:?}", body.len());
//! # Ok(()) }
//! ```

mod client;
mod download;
#[cfg(test)]
#[path = "../tests/support/server.rs"]
mod test_server;
mod transport;
mod upload;

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

use crate::client::{DEFAULT_TIMEOUTS, Inner, Source};

/// The environment variable holding the application key id.
pub const ENV_KEY_ID: &str = "B2_APPLICATION_KEY_ID";
/// The environment variable holding the application key.
pub const ENV_KEY: &str = "B2_APPLICATION_KEY";
/// The environment variable naming another realm (a B2-compatible server) to authorize against.
pub const ENV_REALM: &str = "B2_REALM";

/// A B2 client: cheap to clone, shared by any number of threads.
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

    /// Sets the connect timeout, TLS handshake included (default 30 s).
    pub fn connect_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.timeouts.connect = timeout;
        self
    }

    /// Sets the longest wait for a reply's head once the request was sent (default 15 minutes:
    /// B2 may work long before it answers a large upload or copy). For calls other than
    /// downloads it also bounds each read of the reply.
    pub fn request_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.timeouts.request = timeout;
        self
    }

    /// Sets the longest silence while sending a request, and while a download (`GET`) is read,
    /// its reply's head included (default 2 minutes). Sending a large body may take as long as
    /// it needs while it progresses. ureq has one limit per read for head and body alike, so
    /// other calls, whose server may be silent long before it answers, read under the request
    /// timeout.
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
                .with_product("b2-blocking", env!("CARGO_PKG_VERSION"))
                .with_dependency("ureq", "3"),
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
    pub fn session(&self) -> Result<Arc<Session>, Error> {
        self.inner.session()
    }

    /// Runs any b2-proto operation with retries, backoff and re-authorization.
    ///
    /// # Errors
    ///
    /// The operation's documented B2 errors, and transport errors once retries are exhausted.
    pub fn run<Op: Operation>(&self, op: Op) -> Result<Op::Output, Error> {
        let span = tracing::info_span!("b2_call", op = Op::NAME);
        let _entered = span.enter();
        let session = self.inner.session()?;
        let call = Call::new(op, session, &self.inner.policy());
        self.inner.drive(call, &mut Source::None)
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
    /// Lists every item of a paginated call, fetching pages as the iterator is read.
    ///
    /// Each page is one retried call; the listing stops at the first error.
    pub fn list<Op>(&self, op: Op) -> impl Iterator<Item = Result<Op::Item, Error>> + '_
    where
        Op: Paginated + 'static,
    {
        self.list_pages(Pager::new(op)).flat_map(|page| {
            let items: Vec<Result<Op::Item, Error>> = match page {
                Ok(page) => page.items.into_iter().map(Ok).collect(),
                Err(e) => vec![Err(e)],
            };
            items
        })
    }

    /// Lists page by page from a pager (new, or resumed from a saved [`PagerState`]).
    pub fn list_pages<Op>(
        &self,
        mut pager: Pager<Op>,
    ) -> impl Iterator<Item = Result<Page<Op::Item, Op::Cursor>, Error>> + '_
    where
        Op: Paginated + 'static,
    {
        let mut failed = false;
        std::iter::from_fn(move || {
            if failed {
                return None;
            }
            let op = pager.next_operation()?;
            let page = self
                .run(op)
                .and_then(|page| pager.advance(page))
                .map(|items| Page {
                    items,
                    state: pager.state().clone(),
                });
            failed = page.is_err();
            Some(page)
        })
    }

    /// Lists the account's buckets (`b2_list_buckets`).
    ///
    /// # Errors
    ///
    /// `401 unauthorized` when the key lacks `listBuckets` or is restricted to some buckets
    /// (list those with [`Client::bucket_by_name`]).
    pub fn list_buckets(&self) -> Result<Vec<Bucket>, Error> {
        self.run(ops::ListBuckets::new())
    }

    /// The bucket named `name`, if it exists and the key may see it.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for an invalid name; `401 unauthorized`.
    pub fn bucket_by_name(&self, name: &str) -> Result<Option<Bucket>, Error> {
        let op = ops::ListBuckets::new()
            .with_bucket_name(BucketName::new(name)?)
            .with_all_bucket_types();
        Ok(self.run(op)?.into_iter().next())
    }

    /// The bucket with id `id`, if it exists and the key may see it.
    ///
    /// # Errors
    ///
    /// `401 unauthorized`.
    pub fn bucket_by_id(&self, id: &BucketId) -> Result<Option<Bucket>, Error> {
        let op = ops::ListBuckets::new()
            .with_bucket_id(id.clone())
            .with_all_bucket_types();
        Ok(self.run(op)?.into_iter().next())
    }

    /// Creates a bucket (`b2_create_bucket`).
    ///
    /// # Errors
    ///
    /// `400 duplicate_bucket_name`, `400 too_many_buckets`, `401 unauthorized`.
    pub fn create_bucket(&self, op: ops::CreateBucket) -> Result<Bucket, Error> {
        self.run(op)
    }

    /// Changes a bucket's settings (`b2_update_bucket`).
    ///
    /// # Errors
    ///
    /// `409 conflict` when `if_revision_is` no longer matches; `401 unauthorized`.
    pub fn update_bucket(&self, op: ops::UpdateBucket) -> Result<Bucket, Error> {
        self.run(op)
    }

    /// Deletes an empty bucket (`b2_delete_bucket`).
    ///
    /// # Errors
    ///
    /// `400 cannot_delete_non_empty_bucket`, `400 bad_request` for an unknown bucket.
    pub fn delete_bucket(&self, id: &BucketId) -> Result<Bucket, Error> {
        self.run(ops::DeleteBucket::new(id.clone()))
    }

    /// Creates an application key (`b2_create_key`); the reply holds its secret, once.
    ///
    /// # Errors
    ///
    /// `400 bad_request`, `401 unauthorized` (the key lacks `writeKeys`).
    pub fn create_key(&self, op: ops::CreateKey) -> Result<CreatedKey, Error> {
        self.run(op)
    }

    /// Lists the account's application keys (`b2_list_keys`), page by page as the iterator is read.
    pub fn list_keys(&self) -> impl Iterator<Item = Result<Key, Error>> + '_ {
        self.list(ops::ListKeys::new())
    }

    /// Deletes an application key (`b2_delete_key`).
    ///
    /// # Errors
    ///
    /// `400 bad_request` for an unknown key, `401 unauthorized`.
    pub fn delete_key(&self, id: &ApplicationKeyId) -> Result<Key, Error> {
        self.run(ops::DeleteKey::new(id.clone()))
    }

    /// Creates a download-authorization token for files under a prefix of a private bucket
    /// (`b2_get_download_authorization`).
    ///
    /// # Errors
    ///
    /// `400 bad_request`, `401 unauthorized` (the key lacks `shareFiles`).
    pub fn download_authorization(
        &self,
        op: ops::GetDownloadAuthorization,
    ) -> Result<DownloadAuthorization, Error> {
        self.run(op)
    }

    /// Replaces a bucket's event-notification rules (`b2_set_bucket_notification_rules`).
    ///
    /// # Errors
    ///
    /// `400 event_type_invalid`, `event_type_overlap`, `event_types_empty`,
    /// `event_type_categories`, `401 unauthorized`.
    pub fn set_notification_rules(
        &self,
        bucket: &BucketId,
        rules: Vec<NotificationRule>,
    ) -> Result<BucketNotificationRules, Error> {
        self.run(ops::SetBucketNotificationRules::new(bucket.clone(), rules))
    }

    /// A bucket's event-notification rules (`b2_get_bucket_notification_rules`).
    ///
    /// # Errors
    ///
    /// `401 unauthorized`.
    pub fn notification_rules(&self, bucket: &BucketId) -> Result<BucketNotificationRules, Error> {
        self.run(ops::GetBucketNotificationRules::new(bucket.clone()))
    }
}

impl Client {
    /// Lists file names (the newest version of each visible file), page by page as the iterator
    /// is read. Set a prefix, a delimiter (folders come back as [`Action::Folder`](model::Action))
    /// and a start on the operation; `take(n)` the iterator for a limit.
    pub fn list_file_names(
        &self,
        op: ops::ListFileNames,
    ) -> impl Iterator<Item = Result<FileVersion, Error>> + '_ {
        self.list(op)
    }

    /// Lists every version of every file, hide markers and unfinished large files included.
    pub fn list_file_versions(
        &self,
        op: ops::ListFileVersions,
    ) -> impl Iterator<Item = Result<FileVersion, Error>> + '_ {
        self.list(op)
    }

    /// A file version's metadata (`b2_get_file_info`).
    ///
    /// # Errors
    ///
    /// `404 not_found` (also `400 bad_request` for a malformed id), `401 unauthorized`.
    pub fn file_info(&self, id: &FileId) -> Result<FileVersion, Error> {
        self.run(ops::GetFileInfo::new(id.clone()))
    }

    /// The headers of the current version of a file, by name (a `HEAD` download).
    ///
    /// # Errors
    ///
    /// `404 not_found` for a missing or hidden file, `401 unauthorized`.
    pub fn file_info_by_name(
        &self,
        bucket: &BucketName,
        name: &FileName,
    ) -> Result<DownloadHead, Error> {
        let op = ops::DownloadFileByName::new(bucket.clone(), name.clone()).head_only();
        Ok(self.run(op)?.head)
    }

    /// Hides a file: a hide marker becomes its newest version (`b2_hide_file`).
    ///
    /// # Errors
    ///
    /// `400 already_hidden`, `400 no_such_file`, `401 unauthorized`.
    pub fn hide_file(&self, bucket: &BucketId, name: &FileName) -> Result<FileVersion, Error> {
        self.run(ops::HideFile::new(bucket.clone(), name.clone()))
    }

    /// Unhides a file by deleting its hide marker; `None` when its newest version is not one.
    ///
    /// # Errors
    ///
    /// `401 unauthorized` (needs `listFiles` and `deleteFiles`).
    pub fn unhide_file(
        &self,
        bucket: &BucketId,
        name: &FileName,
    ) -> Result<Option<FileVersion>, Error> {
        let newest = self
            .list(b2_proto::compose::versions_of(bucket.clone(), name))
            .next()
            .transpose()?;
        let Some(delete) = newest
            .as_ref()
            .and_then(|v| b2_proto::compose::unhide(v, name))
        else {
            return Ok(None);
        };
        self.run(delete)?;
        Ok(newest)
    }

    /// Deletes one file version (`b2_delete_file_version`).
    ///
    /// # Errors
    ///
    /// `400 file_not_present`, `401 unauthorized`, `403 access_denied` (Object Lock).
    pub fn delete_file_version(
        &self,
        name: &FileName,
        id: &FileId,
    ) -> Result<ops::DeletedFileVersion, Error> {
        self.run(ops::DeleteFileVersion::new(name.clone(), id.clone()))
    }

    /// Deletes every version of a file, hide markers included; returns how many.
    ///
    /// # Errors
    ///
    /// As [`Client::delete_file_version`]; versions deleted before an error stay deleted.
    pub fn delete_all_versions(&self, bucket: &BucketId, name: &FileName) -> Result<usize, Error> {
        let mut versions = Vec::new();
        for version in self.list(b2_proto::compose::versions_of(bucket.clone(), name)) {
            let version = version?;
            if !b2_proto::compose::is_version_of(&version, name) {
                break;
            }
            versions.push(version);
        }
        let mut deleted = 0;
        for version in &versions {
            if let Some(delete) = b2_proto::compose::delete_version(version, name) {
                self.run(delete)?;
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
    pub fn copy_file(&self, op: ops::CopyFile) -> Result<FileVersion, Error> {
        self.run(op)
    }

    /// Sets a file version's Object Lock retention (`b2_update_file_retention`).
    ///
    /// # Errors
    ///
    /// `400 bad_request`, `401 unauthorized`, `403 access_denied`.
    pub fn update_file_retention(
        &self,
        op: ops::UpdateFileRetention,
    ) -> Result<ops::FileRetentionUpdate, Error> {
        self.run(op)
    }

    /// Sets a file version's legal hold (`b2_update_file_legal_hold`).
    ///
    /// # Errors
    ///
    /// `400 bad_request`, `401 unauthorized`, `403 access_denied`.
    pub fn update_file_legal_hold(
        &self,
        op: ops::UpdateFileLegalHold,
    ) -> Result<ops::LegalHoldUpdate, Error> {
        self.run(op)
    }

    /// A URL anyone can download `name` from for `valid_for_seconds` (1 to 604,800), even from
    /// a private bucket: a download authorization for exactly that name, in the query string.
    ///
    /// # Errors
    ///
    /// `401 unauthorized` (needs `shareFiles`), [`Error::InvalidInput`] for a duration out of range.
    pub fn share_url(
        &self,
        bucket: &Bucket,
        name: &FileName,
        valid_for_seconds: u64,
    ) -> Result<String, Error> {
        let auth = self.run(ops::GetDownloadAuthorization::new(
            bucket.bucket_id.clone(),
            name.as_str(),
            valid_for_seconds,
        ))?;
        let session = self.session()?;
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
    ) -> impl Iterator<Item = Result<FileVersion, Error>> + '_ {
        self.list(op)
    }

    /// Lists the parts of an unfinished large file.
    pub fn list_parts(
        &self,
        file: &FileId,
    ) -> impl Iterator<Item = Result<model::Part, Error>> + '_ {
        self.list(ops::ListParts::new(file.clone()))
    }

    /// Cancels an unfinished large file, deleting its parts (`b2_cancel_large_file`).
    ///
    /// # Errors
    ///
    /// `400 bad_request` for an unknown or finished file, `401 unauthorized`.
    pub fn cancel_large_file(&self, file: &FileId) -> Result<ops::CancelledLargeFile, Error> {
        self.run(ops::CancelLargeFile::new(file.clone()))
    }

    /// Finishes an interrupted upload of `path` into the unfinished large file `file_id`:
    /// parts already on B2 with the right size and SHA1 are kept, the others sent.
    ///
    /// # Errors
    ///
    /// As [`Client::upload_path`]; [`Error::InvalidInput`] when the listed parts do not fit the file.
    pub fn resume_upload_path(
        &self,
        file_id: &FileId,
        file: NewFile,
        path: impl AsRef<std::path::Path>,
    ) -> Result<FileVersion, Error> {
        self.resume_upload(file_id, file, path.as_ref())
    }
}

/// The README's examples, compiled as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;
