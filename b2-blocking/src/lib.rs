//! A blocking Backblaze B2 client on ureq 3 and rustls (with the `ring` provider).
//!
//! For programs without an async runtime, and for blocking code inside one: this crate starts
//! no runtime and no background thread, so it works anywhere, including when called from
//! a thread of a tokio runtime (as a blocking call, which such code should run with
//! `spawn_blocking`). Requests a flow wants in parallel (the parts of a large file) run on
//! scoped threads, one per request in flight.
//!
//! Every B2 rule (encoding, retries, upload URLs, part sizes, checksums) is decided by
//! [`b2_proto`]; this crate moves the bytes. Work in progress: so far it authorizes, runs any
//! `b2_proto` operation with retries through [`Client::run`], lists, and wraps the bucket, key,
//! notification and download-authorization calls.
//!
//! TLS is rustls with the `ring` provider, passed explicitly; the roots are Mozilla's
//! (feature `webpki-roots`, the default) or the operating system's (`native-roots`). Plain
//! `http://` works too, for a local `b2-emulator`. ureq keeps idle connections for reuse,
//! follows no redirect, decompresses nothing and honours no proxy variable.
//!
//! ureq logs through the `log` crate; at `TRACE` level it writes requests unredacted, the
//! authorization token included. Keep that level off for `ureq` outside debugging.
//!
//! ```no_run
//! # fn example() -> Result<(), b2_blocking::Error> {
//! let client = b2_blocking::Client::from_env()?.build()?;
//! let session = client.session()?;
//! println!("account {}", session.account_id);
//! for bucket in client.list_buckets()? {
//!     println!("{}", bucket.bucket_name);
//! }
//! # Ok(()) }
//! ```

mod client;
#[cfg(test)]
#[path = "../tests/support/server.rs"]
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
            inner: Arc::new(Inner::new(transport, authorize, self.policy)),
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
