//! A Backblaze B2 client on async-std and surf, with rustls (the `ring` provider).
//!
//! For programs built on async-std. Every B2 rule (encoding, retries, upload URLs, part sizes,
//! checksums) is decided by [`b2_proto`]; this crate moves the bytes. Work in progress: so far
//! it authorizes, runs any `b2_proto` operation with retries through [`Client::run`], lists,
//! and wraps the bucket, key, notification and download-authorization calls.
//!
//! # Maintenance status of the stack
//!
//! async-std and surf are no longer maintained upstream (async-std's authors point to `smol`).
//! This crate keeps working on them for programs that already use them; new programs should
//! prefer `b2-tokio`, or `b2-blocking` for code without a runtime. Everything that names
//! surf lives in one private module, so the client can move to another stack without a
//! change to its public API.
//!
//! # HTTP and TLS
//!
//! surf runs on this crate's own HTTP/1.1 client, built on async-h1 over async-std's
//! `TcpStream`, with TLS from futures-rustls and rustls 0.23 using the `ring` provider,
//! passed explicitly. surf's built-in backends are not used: its rustls backend pulls
//! rustls 0.18 and ring 0.16, which have open security advisories, and its other backends
//! need native libraries. Roots are Mozilla's (feature `webpki-roots`, the default) or the
//! operating system's (`native-roots`). Plain `http://` works too, for a local `b2-emulator`.
//!
//! Idle connections are kept per scheme, host and port and reused once a reply was read to
//! its end. The client speaks HTTP/1.1 only. It reads reply heads itself (up to 64 KiB, with
//! headers passed on exactly as sent) and leaves async-h1 only the framing of bodies, so
//! async-h1's 8 KiB head limit does not apply: a B2 download of a file with a long name and
//! large file info can exceed it. Replies framed by closing the connection (neither
//! `Content-Length` nor chunked) are refused; B2 never sends them.
//!
//! ```no_run
//! # async fn example() -> Result<(), b2_async_std::Error> {
//! let client = b2_async_std::Client::from_env()?.build()?;
//! let session = client.session().await?;
//! println!("account {}", session.account_id);
//! # Ok(()) }
//! ```

mod client;
#[cfg(test)]
#[path = "../../b2-blocking/tests/support/server.rs"]
mod test_server;
mod transport;

use std::sync::Arc;

use b2_proto::model::{
    Bucket, BucketNotificationRules, CreatedKey, DownloadAuthorization, Key, NotificationRule,
};
pub use b2_proto::{self, Error, model, ops};
use b2_proto::{
    ApplicationKey, ApplicationKeyId, AuthorizeAccount, BucketId, BucketName, Call, Operation,
    Pager, PagerState, Paginated, RetryPolicy, Session, UserAgent,
};
use futures_util::Stream;

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
    /// B2 may work long before it answers a large upload or copy).
    pub fn request_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.timeouts.request = timeout;
        self
    }

    /// Sets the longest silence while sending a request or reading a reply body (default
    /// 2 minutes). Sending a large body may take as long as it needs while it progresses.
    pub fn idle_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.timeouts.idle = timeout;
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
                .with_product("b2-async-std", env!("CARGO_PKG_VERSION"))
                .with_dependency("surf", "2"),
            policy: RetryPolicy::default(),
            timeouts: DEFAULT_TIMEOUTS,
            chunk_size: 1 << 20,
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
        let session = self.inner.session().await?;
        let call = Call::new(op, session, &self.inner.policy());
        self.inner.drive(call, &mut Source::None).await
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
