//! What is retried, how, and how to change it.
//!
//! [`classify`](crate::retry::classify) decides from the failure and the call's
//! [`RetryClass`](crate::RetryClass); a [`Retrier`](crate::retry::Retrier) keeps count for one
//! logical request; machines turn its verdicts into [`Step::Wait`](crate::Step::Wait),
//! [`Step::Reauthorize`](crate::Step::Reauthorize) or a new upload URL. The rules and their
//! sources are tabulated in [`crate::retry`].
//!
//! - **Backoff**: decorrelated jitter between [`RetryPolicy::initial_backoff`](crate::RetryPolicy)
//!   (100 ms) and `max_backoff` (15 s), from a seed the driver supplies, so tests are exact.
//!   A server's `Retry-After` replaces the backoff for that attempt.
//! - **Budget**: at most `max_attempts` (10) attempts within `max_elapsed` (3 minutes); past it
//!   the error is [`Error::RetriesExhausted`](crate::Error::RetriesExhausted) wrapping the last one.
//! - **Uploads**: each failure that Backblaze lists (no connection, broken pipe, timeout, 408, any
//!   5xx, an expired upload token, two uploads on one token) discards the upload URL and gets a new
//!   one; at least five URLs are tried before giving up.
//! - **Re-authorization**: an expired or invalid account token leads to one re-authorization per
//!   failure. Drivers make it single-flight: every task that saw the same stale session waits for
//!   the one new session.
//! - **Calls that must not run twice** ([`RetryClass::NonIdempotent`](crate::RetryClass)) are
//!   retried only when B2 certainly did not act: no connection, 408, 429, 503.
//!
//! To retry less or more, give the machine another [`RetryPolicy`](crate::RetryPolicy):
//!
//! ```
//! use std::time::Duration;
//! use b2_proto::RetryPolicy;
//!
//! let patient = RetryPolicy::default()
//!     .with_max_attempts(20)
//!     .with_max_elapsed(Duration::from_secs(600))
//!     .with_backoff(Duration::from_millis(500), Duration::from_secs(60));
//! let never = RetryPolicy::none();
//! # let _ = (patient, never);
//! ```
