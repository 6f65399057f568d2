//! The driver: runs b2-proto machines over the transport, sleeping on `Wait`, sharing one
//! re-authorization among all tasks.

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use b2_proto::machine::{Body, Machine, RequestId, Step};
use b2_proto::{AuthorizeAccount, AuthorizeCall, Error, RetryPolicy, Session, TransportError};
use bytes::Bytes;
use futures_util::StreamExt as _;
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use tokio::io::{AsyncRead, AsyncReadExt as _};

use crate::transport::{self, Transport};

/// Where the bytes a machine asks for come from.
#[allow(dead_code)] // the file and reader sources serve the upload calls
pub(crate) enum Source<'a> {
    /// The machine sends only in-memory bodies.
    None,
    /// A file that can be read at any offset.
    File(&'a Path),
    /// A reader that is read once, in order.
    Reader(&'a mut (dyn AsyncRead + Unpin + Send)),
}

pub(crate) struct Inner {
    pub(crate) transport: Transport,
    pub(crate) authorize: AuthorizeAccount,
    pub(crate) policy: RetryPolicy,
    pub(crate) session: tokio::sync::Mutex<Option<Arc<Session>>>,
    seed: AtomicU64,
    pub(crate) chunk_size: usize,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("realm", &self.authorize.realm())
            .field("key_id", self.authorize.key_id())
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

enum Event {
    Reply(RequestId, Result<http::Response<Bytes>, TransportError>),
}

impl Inner {
    pub(crate) fn new(
        transport: Transport,
        authorize: AuthorizeAccount,
        policy: RetryPolicy,
        chunk_size: usize,
    ) -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x5eed, |d| d.as_nanos() as u64);
        Self {
            transport,
            authorize,
            policy,
            session: tokio::sync::Mutex::new(None),
            seed: AtomicU64::new(seed),
            chunk_size,
        }
    }

    /// A retry policy with a fresh jitter seed.
    pub(crate) fn policy(&self) -> RetryPolicy {
        let seed = self
            .seed
            .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed);
        self.policy.clone().with_seed(seed)
    }

    /// The current session, authorizing first if there is none.
    pub(crate) async fn session(&self) -> Result<Arc<Session>, Error> {
        let mut guard = self.session.lock().await;
        if let Some(session) = &*guard {
            return Ok(session.clone());
        }
        let session = Arc::new(self.authorize_now().await?);
        *guard = Some(session.clone());
        Ok(session)
    }

    /// Replaces `stale` with a new session, unless another task already did: one
    /// re-authorization serves every task that saw the same expired token.
    pub(crate) async fn reauthorize(&self, stale: &Arc<Session>) -> Result<Arc<Session>, Error> {
        let mut guard = self.session.lock().await;
        if let Some(current) = &*guard {
            if !Arc::ptr_eq(current, stale) {
                return Ok(current.clone());
            }
        }
        tracing::debug!("re-authorizing");
        let session = Arc::new(self.authorize_now().await?);
        *guard = Some(session.clone());
        Ok(session)
    }

    fn authorize_now(&self) -> BoxFuture<'_, Result<Session, Error>> {
        // Boxed: driving the authorization is itself a step of other drives.
        Box::pin(async move {
            let machine = AuthorizeCall::new(self.authorize.clone(), &self.policy());
            self.drive(machine, &mut Source::None).await
        })
    }

    async fn send(
        &self,
        request: http::Request<Body>,
        file: Option<&Path>,
    ) -> Result<http::Response<Bytes>, TransportError> {
        let (parts, body) = request.into_parts();
        let body = match body {
            Body::Bytes(bytes) => transport::bytes_body(bytes),
            Body::Source(range) => {
                let Some(path) = file else {
                    return Err(TransportError::new(
                        b2_proto::TransportErrorKind::Other,
                        "a source range was asked of a source that cannot be re-read",
                    ));
                };
                transport::file_body(path, range, self.chunk_size)
                    .await
                    .map_err(|e| TransportError::new(b2_proto::TransportErrorKind::Other, e))?
            }
            _ => {
                return Err(TransportError::new(
                    b2_proto::TransportErrorKind::Other,
                    "unknown body kind",
                ));
            }
        };
        self.transport
            .send(http::Request::from_parts(parts, body))
            .await
    }

    /// Runs a machine to completion.
    pub(crate) async fn drive<M: Machine>(
        &self,
        mut machine: M,
        source: &mut Source<'_>,
    ) -> Result<M::Output, Error> {
        let mut in_flight: FuturesUnordered<BoxFuture<'_, Event>> = FuturesUnordered::new();
        loop {
            let step = machine.poll_step(Instant::now());
            match step {
                Step::Send(id, request) => {
                    tracing::trace!(method = %request.method(), uri = %request.uri().path(), "send");
                    let file = match source {
                        Source::File(path) => Some(*path),
                        _ => None,
                    };
                    in_flight.push(Box::pin(async move {
                        Event::Reply(id, self.send(request, file).await)
                    }));
                }
                Step::NeedPart { id, range, .. } => {
                    let data = read_part(source, range).await?;
                    machine.provide_part(id, data, Instant::now());
                }
                Step::Reauthorize { stale } => {
                    let session = self.reauthorize(&stale).await?;
                    machine.handle_session(session);
                }
                Step::Wait(until) => {
                    let deadline = tokio::time::Instant::from_std(until);
                    tokio::select! {
                        () = tokio::time::sleep_until(deadline) => {}
                        Some(event) = in_flight.next(), if !in_flight.is_empty() => deliver(&mut machine, event),
                    }
                }
                Step::Pending => match in_flight.next().await {
                    Some(event) => deliver(&mut machine, event),
                    None => {
                        return Err(Error::InvalidResponse {
                            op: "driver",
                            reason: "the machine waits for a reply but none is in flight".into(),
                        });
                    }
                },
                Step::Done(result) => return result,
                _ => {
                    return Err(Error::InvalidResponse {
                        op: "driver",
                        reason: "unknown step".into(),
                    });
                }
            }
        }
    }
}

fn deliver<M: Machine>(machine: &mut M, event: Event) {
    match event {
        Event::Reply(id, reply) => machine.handle_response(id, reply, Instant::now()),
    }
}

/// Reads the bytes of a part: at an offset of a file, or the next bytes of a reader (fewer at
/// its end; none once it is exhausted).
async fn read_part(source: &mut Source<'_>, range: std::ops::Range<u64>) -> Result<Bytes, Error> {
    let io_error = |source: io::Error| Error::Io {
        context: "reading the upload source",
        source,
    };
    match source {
        Source::File(path) => transport::read_range(path, range).await.map_err(io_error),
        Source::Reader(reader) => {
            let len = usize::try_from(range.end.saturating_sub(range.start))
                .map_err(|e| io_error(io::Error::other(e)))?;
            let mut buf = Vec::with_capacity(len);
            (&mut **reader)
                .take(len as u64)
                .read_to_end(&mut buf)
                .await
                .map_err(io_error)?;
            Ok(Bytes::from(buf))
        }
        Source::None => Err(io_error(io::Error::other(
            "the upload has no source to read",
        ))),
    }
}

/// Default transport timeouts.
pub(crate) const DEFAULT_TIMEOUTS: transport::Timeouts = transport::Timeouts {
    connect: Duration::from_secs(30),
    request: Duration::from_secs(900),
    idle: Duration::from_secs(120),
};
