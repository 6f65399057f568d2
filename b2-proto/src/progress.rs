//! Progress reports for uploads and downloads.

use std::fmt;
use std::sync::Arc;

/// How far a transfer has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Progress {
    /// Bytes transferred so far (retried bytes are not counted twice).
    pub done: u64,
    /// Bytes in all, when known.
    pub total: Option<u64>,
}

impl Progress {
    /// A report of `done` out of `total` bytes.
    pub fn new(done: u64, total: Option<u64>) -> Self {
        Self { done, total }
    }
}

/// A callback that receives [`Progress`] reports; cheap to clone, callable from any thread.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::sync::Arc;
/// use b2_proto::progress::{Progress, ProgressFn};
///
/// let seen = Arc::new(AtomicU64::new(0));
/// let s = seen.clone();
/// let progress = ProgressFn::new(move |p: Progress| s.store(p.done, Ordering::Relaxed));
/// progress.report(Progress::new(42, Some(100)));
/// assert_eq!(seen.load(Ordering::Relaxed), 42);
/// ```
#[derive(Clone)]
pub struct ProgressFn(Arc<dyn Fn(Progress) + Send + Sync>);

impl ProgressFn {
    /// Wraps a callback.
    pub fn new(f: impl Fn(Progress) + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    /// Sends a report.
    pub fn report(&self, progress: Progress) {
        (self.0)(progress);
    }
}

impl fmt::Debug for ProgressFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ProgressFn")
    }
}
