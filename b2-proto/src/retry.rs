//! Which failures to retry, how, and when: pure functions of the failure, the call and the time.
//!
//! The rules come from Backblaze's error-handling page
//! (<https://www.backblaze.com/docs/cloud-storage-native-api-error-handling-and-status-codes>),
//! its upload guide and integration checklist
//! (<https://www.backblaze.com/docs/cloud-storage-upload-files-with-the-native-api>,
//! <https://www.backblaze.com/docs/cloud-storage-integration-checklist>) and its rate-limit page
//! (<https://www.backblaze.com/docs/cloud-storage-rate-limits>):
//!
//! | failure | JSON call | upload |
//! |---|---|---|
//! | no connection | retry | retry with a new upload URL |
//! | timeout, connection broken, body cut | retry if idempotent | retry with a new upload URL |
//! | 401 `expired_auth_token`, `bad_auth_token`, 401 without a code | re-authorize once, retry | new upload URL |
//! | 408 | retry | new upload URL |
//! | 429 | wait `Retry-After` (else backoff), retry | same |
//! | 500, 502, 504 | retry if idempotent | new upload URL |
//! | 503 | retry (honour `Retry-After`) | new upload URL |
//! | 400 `auth_token_limit` | fail | new upload URL |
//! | SHA1 or length mismatch of a reply | retry if idempotent | fail |
//! | anything else | fail | fail |
//!
//! Uploads try at least five upload URLs before giving up, as Backblaze asks.
//! Sleeping happens in the driver, on [`Step::Wait`](crate::Step::Wait).

use std::time::{Duration, Instant};

use crate::error::{Error, ErrorCode, TransportErrorKind};
use crate::ops::RetryClass;

/// What must be renewed before the retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Refresh {
    /// Nothing: send again.
    None,
    /// Get a new upload URL and token (`b2_get_upload_url` / `b2_get_upload_part_url`).
    UploadTarget,
    /// Authorize the account again.
    Session,
}

/// What to do about a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Decision {
    /// Retry, after at least `after` when the server asked for it, renewing `refresh` first.
    Retry {
        /// The server's `Retry-After`, when it sent one.
        after: Option<Duration>,
        /// What to renew first.
        refresh: Refresh,
    },
    /// Do not retry.
    Fail,
}

/// Classifies a failure of a call of class `class`.
///
/// ```
/// use b2_proto::{retry::{classify, Decision, Refresh}, ApiError, Error, ErrorCode, RetryClass};
/// use http::StatusCode;
///
/// let busy = Error::Api(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::ServiceUnavailable, "too busy"));
/// assert_eq!(classify(&busy, RetryClass::Upload), Decision::Retry { after: None, refresh: Refresh::UploadTarget });
/// let denied = Error::Api(ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, "no"));
/// assert_eq!(classify(&denied, RetryClass::Idempotent), Decision::Fail);
/// ```
pub fn classify(error: &Error, class: RetryClass) -> Decision {
    let upload = class == RetryClass::Upload;
    let retry = |refresh| Decision::Retry {
        after: None,
        refresh,
    };
    let renew_target_or = |refresh| {
        if upload {
            Refresh::UploadTarget
        } else {
            refresh
        }
    };
    match error {
        Error::Transport(t) => match (t.kind, class) {
            (TransportErrorKind::Connect, _) => retry(renew_target_or(Refresh::None)),
            (_, RetryClass::Upload) => retry(Refresh::UploadTarget),
            (_, RetryClass::Idempotent) => retry(Refresh::None),
            _ => Decision::Fail,
        },
        Error::Api(e) => {
            let after = e.retry_after;
            match (e.status.as_u16(), &e.code) {
                (401, ErrorCode::ExpiredAuthToken | ErrorCode::BadAuthToken) => {
                    retry(renew_target_or(Refresh::Session))
                }
                // A 401 with no code at all (an empty HEAD reply): most likely an expired token.
                (401, ErrorCode::Other(code)) if code.is_empty() => {
                    retry(renew_target_or(Refresh::Session))
                }
                (400, ErrorCode::AuthTokenLimit) if upload => retry(Refresh::UploadTarget),
                (408, _) => retry(renew_target_or(Refresh::None)),
                (429, _) => Decision::Retry {
                    after,
                    refresh: Refresh::None,
                },
                (503, _) => Decision::Retry {
                    after,
                    refresh: renew_target_or(Refresh::None),
                },
                (500..=599, _) if class != RetryClass::NonIdempotent => Decision::Retry {
                    after,
                    refresh: renew_target_or(Refresh::None),
                },
                _ => Decision::Fail,
            }
        }
        // Bytes that do not match their SHA1 or length were damaged or cut in transit: reading
        // them again is the remedy, when reading again is harmless.
        Error::Integrity(_) if class == RetryClass::Idempotent => retry(Refresh::None),
        Error::RetriesExhausted { .. }
        | Error::Decode(_)
        | Error::InvalidResponse { .. }
        | Error::InvalidInput(_)
        | Error::Integrity(_)
        | Error::Io { .. } => Decision::Fail,
    }
}

/// How hard to retry.
///
/// Defaults: at most 10 attempts per call within 3 minutes, backoff with decorrelated jitter
/// from 100 ms up to 15 s, at least 5 upload URLs per upload, one re-authorization per call.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Most attempts of one request, the first included.
    pub max_attempts: u32,
    /// No new attempt starts later than this after the first one (a server's `Retry-After`
    /// that asks for a later start ends the call at once with [`Error::RetriesExhausted`]).
    pub max_elapsed: Duration,
    /// The first backoff.
    pub initial_backoff: Duration,
    /// The longest backoff (a server's `Retry-After` may be longer).
    pub max_backoff: Duration,
    /// How fast the backoff grows.
    pub backoff_base: f64,
    /// Most upload URLs one upload may use (Backblaze asks for at least 5).
    pub max_upload_targets: u32,
    /// Seed of the backoff jitter. Drivers set a fresh random seed per call; tests fix it.
    pub jitter_seed: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 10,
            max_elapsed: Duration::from_secs(180),
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(15),
            backoff_base: 2.0,
            max_upload_targets: 5,
            jitter_seed: 0x9e37_79b9_7f4a_7c15,
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            max_upload_targets: 1,
            ..Self::default()
        }
    }

    /// Sets the jitter seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.jitter_seed = seed;
        self
    }

    /// Sets the most attempts per request.
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// Sets the time budget for retries.
    pub fn with_max_elapsed(mut self, elapsed: Duration) -> Self {
        self.max_elapsed = elapsed;
        self
    }

    /// Sets the backoff range.
    pub fn with_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max.max(initial);
        self
    }
}

/// Exponential backoff with decorrelated jitter, from a seeded generator (no ambient randomness).
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    base: f64,
    previous: Duration,
    rng: u64,
}

impl Backoff {
    /// A backoff for `policy`, its generator seeded from the policy's seed and `salt`.
    pub fn new(policy: &RetryPolicy, salt: u64) -> Self {
        Self {
            initial: policy.initial_backoff,
            max: policy.max_backoff,
            base: policy.backoff_base.max(1.0),
            previous: policy.initial_backoff,
            rng: splitmix64(policy.jitter_seed ^ splitmix64(salt)),
        }
    }

    /// The next delay: uniform between the initial backoff and `base` × the previous delay,
    /// capped at the maximum.
    pub fn next_delay(&mut self) -> Duration {
        self.rng = splitmix64(self.rng);
        let unit = (self.rng >> 11) as f64 / (1u64 << 53) as f64;
        let low = self.initial.as_secs_f64();
        let high = (self.previous.as_secs_f64() * self.base).max(low);
        // Any policy, however odd (an infinite base, a huge initial backoff), gives a delay
        // no longer than the maximum.
        let delay = Duration::try_from_secs_f64(low + (high - low) * unit)
            .unwrap_or(self.max)
            .min(self.max);
        self.previous = delay.max(self.initial);
        delay
    }
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The verdict of a [`Retrier`] on one failure.
#[derive(Debug)]
#[non_exhaustive]
pub enum Verdict {
    /// Give up with this error.
    Fail(Error),
    /// Try again at `at`, renewing `refresh` first.
    Retry {
        /// When to send again.
        at: Instant,
        /// What to renew first.
        refresh: Refresh,
    },
}

/// Retry bookkeeping for one logical request: attempts, elapsed time, backoff,
/// re-authorizations and upload URLs used.
#[derive(Debug, Clone)]
pub struct Retrier {
    policy: RetryPolicy,
    backoff: Backoff,
    attempts: u32,
    started: Option<Instant>,
    reauthorized: bool,
    upload_targets: u32,
}

impl Retrier {
    /// Bookkeeping under `policy`; `salt` decorrelates the jitter of concurrent requests.
    pub fn new(policy: &RetryPolicy, salt: u64) -> Self {
        Self {
            backoff: Backoff::new(policy, salt),
            policy: policy.clone(),
            attempts: 0,
            started: None,
            reauthorized: false,
            upload_targets: 1,
        }
    }

    /// Records that an attempt starts now.
    pub fn start_attempt(&mut self, now: Instant) {
        self.attempts += 1;
        self.started.get_or_insert(now);
    }

    /// Attempts started so far.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Decides what follows a failed attempt of a call of class `class`.
    pub fn after_failure(&mut self, error: Error, class: RetryClass, now: Instant) -> Verdict {
        let Decision::Retry { after, refresh } = classify(&error, class) else {
            return Verdict::Fail(error);
        };
        let exhausted = |attempts, error| {
            Verdict::Fail(Error::RetriesExhausted {
                attempts,
                last: Box::new(error),
            })
        };
        let elapsed = self
            .started
            .map_or(Duration::ZERO, |s| now.saturating_duration_since(s));
        if self.attempts >= self.policy.max_attempts || elapsed >= self.policy.max_elapsed {
            return exhausted(self.attempts, error);
        }
        match refresh {
            Refresh::Session => {
                // Re-authorize once per failure: if the token is refused again right after a
                // fresh authorization, something else is wrong.
                if self.reauthorized {
                    return Verdict::Fail(error);
                }
                self.reauthorized = true;
                Verdict::Retry { at: now, refresh }
            }
            Refresh::UploadTarget => {
                if self.upload_targets >= self.policy.max_upload_targets {
                    return exhausted(self.attempts, error);
                }
                self.upload_targets += 1;
                match self.retry_at(after, now) {
                    Some(at) => Verdict::Retry { at, refresh },
                    None => exhausted(self.attempts, error),
                }
            }
            Refresh::None => match self.retry_at(after, now) {
                Some(at) => Verdict::Retry { at, refresh },
                None => exhausted(self.attempts, error),
            },
        }
    }

    /// When to try again: after the server's `Retry-After`, or the next backoff. `None` when
    /// the server asks for a wait past the time budget (or past what the clock can hold):
    /// the next attempt would start too late, so the call gives up now instead of waiting.
    fn retry_at(&mut self, server_wait: Option<Duration>, now: Instant) -> Option<Instant> {
        let Some(wait) = server_wait else {
            return now.checked_add(self.backoff.next_delay());
        };
        let at = now.checked_add(wait)?;
        let started = self.started.unwrap_or(now);
        (at.saturating_duration_since(started) <= self.policy.max_elapsed).then_some(at)
    }

    /// Records a success: a later expired token may be re-authorized again.
    pub fn succeeded(&mut self) {
        self.reauthorized = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{ApiError, TransportError};
    use http::StatusCode;

    fn api(status: u16, code: &str) -> Error {
        Error::Api(ApiError::new(
            StatusCode::from_u16(status).unwrap(),
            ErrorCode::from(code),
            "m",
        ))
    }

    fn transport(kind: TransportErrorKind) -> Error {
        Error::Transport(TransportError::new(kind, "boom"))
    }

    fn integrity() -> Error {
        Error::Integrity(crate::IntegrityError::LengthMismatch {
            expected: 10,
            actual: 9,
        })
    }

    fn retry(refresh: Refresh) -> Decision {
        Decision::Retry {
            after: None,
            refresh,
        }
    }

    #[test]
    fn table_of_decisions() {
        use RetryClass::*;
        let cases: Vec<(Error, RetryClass, Decision)> = vec![
            (
                transport(TransportErrorKind::Connect),
                NonIdempotent,
                retry(Refresh::None),
            ),
            (
                transport(TransportErrorKind::Connect),
                Upload,
                retry(Refresh::UploadTarget),
            ),
            (
                transport(TransportErrorKind::Timeout),
                Idempotent,
                retry(Refresh::None),
            ),
            (
                transport(TransportErrorKind::Timeout),
                NonIdempotent,
                Decision::Fail,
            ),
            (
                transport(TransportErrorKind::Interrupted),
                Upload,
                retry(Refresh::UploadTarget),
            ),
            (
                api(401, "expired_auth_token"),
                Idempotent,
                retry(Refresh::Session),
            ),
            (
                api(401, "bad_auth_token"),
                NonIdempotent,
                retry(Refresh::Session),
            ),
            (
                api(401, "expired_auth_token"),
                Upload,
                retry(Refresh::UploadTarget),
            ),
            (api(401, ""), Idempotent, retry(Refresh::Session)),
            (api(401, "unauthorized"), Idempotent, Decision::Fail),
            (
                api(400, "auth_token_limit"),
                Upload,
                retry(Refresh::UploadTarget),
            ),
            (api(400, "auth_token_limit"), Idempotent, Decision::Fail),
            (api(400, "bad_request"), Upload, Decision::Fail),
            (api(403, "cap_exceeded"), Upload, Decision::Fail),
            (
                api(408, "request_timeout"),
                Upload,
                retry(Refresh::UploadTarget),
            ),
            (
                api(408, "request_timeout"),
                NonIdempotent,
                retry(Refresh::None),
            ),
            (api(429, "too_many_requests"), Upload, retry(Refresh::None)),
            (api(500, "internal_error"), Idempotent, retry(Refresh::None)),
            (api(500, "internal_error"), NonIdempotent, Decision::Fail),
            (
                api(500, "internal_error"),
                Upload,
                retry(Refresh::UploadTarget),
            ),
            (
                api(503, "service_unavailable"),
                NonIdempotent,
                retry(Refresh::None),
            ),
            (
                api(503, "service_unavailable"),
                Upload,
                retry(Refresh::UploadTarget),
            ),
            (api(404, "not_found"), Idempotent, Decision::Fail),
            (integrity(), Idempotent, retry(Refresh::None)),
            (integrity(), NonIdempotent, Decision::Fail),
        ];
        for (error, class, expected) in cases {
            assert_eq!(classify(&error, class), expected, "{error} as {class:?}");
        }
    }

    #[test]
    fn retry_after_is_carried() {
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::TooManyRequests,
            "slow",
        );
        e.retry_after = Some(Duration::from_secs(3));
        assert_eq!(
            classify(&Error::Api(e), RetryClass::NonIdempotent),
            Decision::Retry {
                after: Some(Duration::from_secs(3)),
                refresh: Refresh::None
            }
        );
    }

    #[test]
    fn backoff_is_seeded_bounded_and_growing() {
        let policy = RetryPolicy::default().with_seed(42);
        let delays: Vec<_> = {
            let mut b = Backoff::new(&policy, 1);
            (0..20).map(|_| b.next_delay()).collect()
        };
        let again: Vec<_> = {
            let mut b = Backoff::new(&policy, 1);
            (0..20).map(|_| b.next_delay()).collect()
        };
        assert_eq!(delays, again, "same seed, same delays");
        let mut other = Backoff::new(&policy, 2);
        assert_ne!(
            delays[0],
            other.next_delay(),
            "different salt, different jitter"
        );
        assert!(
            delays
                .iter()
                .all(|d| *d >= policy.initial_backoff && *d <= policy.max_backoff)
        );
        assert!(
            delays.iter().any(|d| *d > Duration::from_secs(1)),
            "backoff grows: {delays:?}"
        );
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // tests take one real instant as the origin of virtual time
    fn retrier_limits() {
        let t0 = Instant::now();
        let policy = RetryPolicy::default();
        // Five upload URLs, then give up.
        let mut r = Retrier::new(&policy, 0);
        let mut targets = 1;
        loop {
            r.start_attempt(t0);
            match r.after_failure(api(503, "service_unavailable"), RetryClass::Upload, t0) {
                Verdict::Retry {
                    refresh: Refresh::UploadTarget,
                    ..
                } => targets += 1,
                Verdict::Fail(Error::RetriesExhausted { attempts, .. }) => {
                    assert_eq!(attempts, 5);
                    break;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(targets, 5);
        // One re-authorization, then fail with the error itself.
        let mut r = Retrier::new(&policy, 0);
        r.start_attempt(t0);
        assert!(matches!(
            r.after_failure(api(401, "expired_auth_token"), RetryClass::Idempotent, t0),
            Verdict::Retry { refresh: Refresh::Session, at } if at == t0
        ));
        r.start_attempt(t0);
        assert!(matches!(
            r.after_failure(api(401, "expired_auth_token"), RetryClass::Idempotent, t0),
            Verdict::Fail(Error::Api(_))
        ));
        // Time budget.
        let mut r = Retrier::new(&policy, 0);
        r.start_attempt(t0);
        let late = t0 + policy.max_elapsed;
        assert!(matches!(
            r.after_failure(api(500, "internal_error"), RetryClass::Idempotent, late),
            Verdict::Fail(Error::RetriesExhausted { attempts: 1, .. })
        ));
    }
}
