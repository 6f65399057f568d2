//! The driver contract: every multi-step B2 flow is a [`Machine`] that an adapter runs.
//!
//! A machine never performs I/O and never reads a clock. It tells its driver what to do next
//! through [`Step`]s, and the driver reports back through `handle_*` and `provide_*` calls,
//! passing the current time. The same loop drives a single retried call ([`Call`](crate::Call)),
//! a listing ([`Pager`](crate::Pager)) and a parallel large-file upload.
//!
//! # The loop
//!
//! ```text
//! loop {
//!     match machine.poll_step(now) {
//!         Step::Send(id, request)  => start sending it; later: machine.handle_response(id, reply, now)
//!         Step::NeedPart { id, range, .. } => read those source bytes; later: machine.provide_part(id, bytes, now)
//!         Step::Reauthorize { stale } => authorize once (shared by all tasks); then machine.handle_session(new)
//!         Step::Wait(instant)      => sleep until `instant` or until an in-flight reply arrives
//!         Step::Pending            => wait for an in-flight reply
//!         Step::Done(result)       => return result
//!     }
//! }
//! ```
//!
//! After **every** `handle_*` or `provide_*` call, drain `poll_step` again until it returns
//! `Wait`, `Pending` or `Done`. Several `Send`s in a row are how a machine asks for concurrency.

use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use crate::error::{Error, TransportError};
use crate::session::Session;
use crate::types::PartNumber;

/// Identifies one request a machine asked for, so its reply can be matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(u64);

impl RequestId {
    /// An id with this number (machines number their requests from 1).
    pub const fn new(n: u64) -> Self {
        Self(n)
    }

    /// The number.
    pub const fn get(self) -> u64 {
        self.0
    }
}

/// The body of a request a machine asks its driver to send.
///
/// Its `Debug` shows lengths, not bytes: JSON bodies may hold secrets (SSE-C keys of copies,
/// webhook signing secrets) and part bodies may be large.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Body {
    /// Bytes in memory (JSON calls, and parts of sources that cannot be re-read).
    Bytes(Bytes),
    /// A byte range of the upload's source, which the driver streams from the source (a file)
    /// rather than holding it in memory. The request's `Content-Length` equals the range's length.
    Source(Range<u64>),
}

impl Body {
    /// Length of the body in bytes.
    pub fn len(&self) -> u64 {
        match self {
            Self::Bytes(b) => b.len() as u64,
            Self::Source(r) => r.end.saturating_sub(r.start),
        }
    }

    /// True for an empty body.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Bytes(b) => write!(f, "Bytes(<{} bytes>)", b.len()),
            Self::Source(r) => f.debug_tuple("Source").field(r).finish(),
        }
    }
}

/// What a machine asks its driver to do next.
#[derive(Debug)]
#[non_exhaustive]
pub enum Step<T> {
    /// Send this request and report the reply with [`Machine::handle_response`].
    Send(RequestId, http::Request<Body>),
    /// Read `range` of the upload's source (a source that cannot be re-read: read it in order)
    /// and hand the bytes to [`Machine::provide_part`].
    NeedPart {
        /// Identifies this read.
        id: RequestId,
        /// The part the bytes belong to.
        part: PartNumber,
        /// The bytes of the source to read.
        range: Range<u64>,
    },
    /// The session's token was refused as expired: authorize again (once, shared by all tasks
    /// that hold `stale`) and hand the new session to [`Machine::handle_session`]. If another
    /// task already replaced `stale`, hand over that newer session instead.
    Reauthorize {
        /// The session that failed.
        stale: Arc<Session>,
    },
    /// Nothing to do before this instant (backoff, `Retry-After`), unless a reply arrives.
    Wait(Instant),
    /// Nothing to do until an in-flight reply arrives.
    Pending,
    /// Finished. Do not poll the machine again.
    Done(Result<T, Error>),
}

/// A B2 flow as a state machine. See the [module documentation](self) for the driver loop.
pub trait Machine {
    /// What the flow produces.
    type Output;

    /// The next thing to do. Call it until it returns `Wait`, `Pending` or `Done`.
    fn poll_step(&mut self, now: Instant) -> Step<Self::Output>;

    /// Reports the reply (or transport failure) of a request asked for with [`Step::Send`].
    /// The reply's body must be complete.
    fn handle_response(
        &mut self,
        id: RequestId,
        response: Result<http::Response<Bytes>, TransportError>,
        now: Instant,
    );

    /// Hands over a new session after [`Step::Reauthorize`].
    fn handle_session(&mut self, session: Arc<Session>);

    /// Supplies the source bytes asked for with [`Step::NeedPart`]. Machines that never ask
    /// for parts ignore it.
    fn provide_part(&mut self, id: RequestId, data: Bytes, now: Instant) {
        let _ = (id, data, now);
    }
}

/// Hands out fresh [`RequestId`]s.
#[derive(Debug, Default, Clone)]
pub(crate) struct IdGen(u64);

impl IdGen {
    pub(crate) fn next(&mut self) -> RequestId {
        self.0 += 1;
        RequestId(self.0)
    }
}

/// A machine borrowed mutably is driven the same way, so its owner can inspect it afterwards.
impl<M: Machine + ?Sized> Machine for &mut M {
    type Output = M::Output;

    fn poll_step(&mut self, now: Instant) -> Step<Self::Output> {
        (**self).poll_step(now)
    }

    fn handle_response(
        &mut self,
        id: RequestId,
        response: Result<http::Response<Bytes>, TransportError>,
        now: Instant,
    ) {
        (**self).handle_response(id, response, now);
    }

    fn handle_session(&mut self, session: Arc<Session>) {
        (**self).handle_session(session);
    }

    fn provide_part(&mut self, id: RequestId, data: Bytes, now: Instant) {
        (**self).provide_part(id, data, now);
    }
}
