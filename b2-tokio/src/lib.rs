//! A Backblaze B2 client on tokio, hyper 1 and rustls (with the `ring` provider).
//!
//! Every B2 rule (encoding, retries, upload URLs, part sizes, checksums) is decided by
//! [`b2_proto`]; this crate moves the bytes. Work in progress: so far it authorizes and runs
//! any `b2_proto` operation with retries through [`Client::run`].
//!
//! ```no_run
//! # async fn example() -> Result<(), b2_tokio::Error> {
//! let client = b2_tokio::Client::from_env()?.build()?;
//! let session = client.session().await?;
//! println!("account {}", session.account_id);
//! # Ok(()) }
//! ```

mod client;
mod transport;

use std::sync::Arc;

pub use b2_proto::{self, Error};
use b2_proto::{
    ApplicationKey, ApplicationKeyId, AuthorizeAccount, Call, Operation, RetryPolicy, Session,
    UserAgent,
};

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

    /// Sets the connect timeout.
    pub fn connect_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.timeouts.connect = timeout;
        self
    }

    /// Sets the longest wait for a reply's head.
    pub fn request_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.timeouts.request = timeout;
        self
    }

    /// Sets the longest silence while reading a reply body.
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
                .with_product("b2-tokio", env!("CARGO_PKG_VERSION"))
                .with_dependency("hyper", "1"),
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
