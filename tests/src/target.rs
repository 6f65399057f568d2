//! Where the suite runs: an in-process emulator, or an endpoint named by the environment.

use std::sync::atomic::{AtomicU32, Ordering};

use b2_emulator::{Config, Server};

/// The environment variable naming a B2-compatible realm to test against.
pub const ENV_REALM: &str = "B2_TEST_REALM";
/// The environment variable holding the key id to test with.
pub const ENV_KEY_ID: &str = "B2_APPLICATION_KEY_ID";
/// The environment variable holding the key to test with.
pub const ENV_KEY: &str = "B2_APPLICATION_KEY";

/// The endpoint and credentials one test runs against.
#[derive(Debug)]
pub struct Target {
    /// Where to authorize.
    pub realm: String,
    /// The key id.
    pub key_id: String,
    /// The key.
    pub key: String,
    emulator: Option<Server>,
    prefix: String,
    buckets: AtomicU32,
}

/// Smallest part the in-process emulator accepts: small, so large-file cases stay fast.
pub const EMULATOR_MIN_PART: u64 = 10_000;

impl Target {
    /// The endpoint the environment names, or a fresh in-process emulator.
    ///
    /// # Panics
    ///
    /// When the emulator cannot start (no free loopback port).
    pub fn from_env() -> Self {
        let prefix = random_tag();
        match (std::env::var(ENV_KEY_ID), std::env::var(ENV_KEY)) {
            (Ok(key_id), Ok(key)) if !key_id.is_empty() => Self {
                realm: std::env::var(ENV_REALM)
                    .unwrap_or_else(|_| b2_proto::DEFAULT_REALM.to_owned()),
                key_id,
                key,
                emulator: None,
                prefix,
                buckets: AtomicU32::new(0),
            },
            _ => {
                let config = Config::new()
                    .with_min_part_size(EMULATOR_MIN_PART)
                    .with_recommended_part_size(4 * EMULATOR_MIN_PART);
                let server = Server::builder()
                    .with_config(config)
                    .start()
                    .expect("the emulator starts");
                Self {
                    realm: server.url().to_owned(),
                    key_id: server.key_id(),
                    key: server.application_key(),
                    emulator: Some(server),
                    prefix,
                    buckets: AtomicU32::new(0),
                }
            }
        }
    }

    /// The in-process emulator, whose faults and clock tests may control; `None` against an
    /// external endpoint.
    pub fn emulator(&self) -> Option<&Server> {
        self.emulator.as_ref()
    }

    /// A fresh, valid, globally unlikely bucket name.
    pub fn bucket_name(&self) -> String {
        let n = self.buckets.fetch_add(1, Ordering::Relaxed);
        format!("b2t-{}-{n}", self.prefix)
    }

    /// Says a case is skipped here, and why. Returns true when it must be skipped.
    pub fn skip_without_emulator(&self, case: &str) -> bool {
        if self.emulator.is_none() {
            eprintln!("skipped {case}: it needs the emulator's fault controls");
            return true;
        }
        false
    }
}

fn random_tag() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mixed = (nanos as u64) ^ (u64::from(std::process::id()) << 32) ^ 0x9e37_79b9_7f4a_7c15;
    format!("{:012x}", mixed & 0xffff_ffff_ffff)
}

/// A string unique to this process and call, for temporary paths.
pub(crate) fn unique() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!("{}-{}", random_tag(), NEXT.fetch_add(1, Ordering::Relaxed))
}
