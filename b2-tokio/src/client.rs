//! The driver: runs b2-proto machines over the transport, sleeping on `Wait`, sharing one
//! re-authorization among all tasks.

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use b2_proto::machine::{Body, Machine, RequestId, Step};
use b2_proto::ops::{DownloadCall, DownloadHead, StreamHead};
use b2_proto::{
    AuthorizeAccount, AuthorizeCall, Call, Error, RetryPolicy, Session, TransportError,
};
use bytes::Bytes;
use futures_util::StreamExt as _;
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use hyper::body::Incoming;
use tokio::io::{AsyncRead, AsyncReadExt as _};

use crate::transport::{self, Transport};

/// Where the bytes a machine asks for come from.
pub(crate) enum Source<'a> {
    /// The machine sends only in-memory bodies.
    None,
    /// Bytes in memory: source ranges are slices of them.
    Memory(Bytes),
    /// A file that can be read at any offset.
    File(&'a Path),
    /// A reader that is read once, in order; `prefix` holds bytes already read from it.
    Reader {
        reader: &'a mut (dyn AsyncRead + Unpin + Send),
        prefix: Bytes,
    },
}

/// What a body may be read from again, shared by the requests in flight.
#[derive(Clone)]
enum Reread<'a> {
    None,
    Memory(Bytes),
    File(&'a Path),
}

impl<'a> Source<'a> {
    fn reread(&self) -> Reread<'a> {
        match self {
            Self::Memory(bytes) => Reread::Memory(bytes.clone()),
            Self::File(path) => Reread::File(path),
            Self::None | Self::Reader { .. } => Reread::None,
        }
    }
}

pub(crate) struct Inner {
    pub(crate) transport: Transport,
    pub(crate) authorize: AuthorizeAccount,
    pub(crate) policy: RetryPolicy,
    pub(crate) session: tokio::sync::Mutex<Option<Arc<Session>>>,
    seed: AtomicU64,
    pub(crate) chunk_size: usize,
    pub(crate) pool: std::sync::Mutex<b2_proto::upload::UploadUrlPool>,
    pub(crate) upload: b2_proto::transfer::UploadStrategy,
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
        pool_size: usize,
        upload: b2_proto::transfer::UploadStrategy,
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
            pool: std::sync::Mutex::new(b2_proto::upload::UploadUrlPool::new(pool_size)),
            upload,
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
        source: Reread<'_>,
    ) -> Result<http::Response<Bytes>, TransportError> {
        let (parts, body) = request.into_parts();
        let body = match body {
            Body::Bytes(bytes) => transport::bytes_body(bytes),
            Body::Source(range) => match source {
                Reread::File(path) => transport::file_body(path, range, self.chunk_size)
                    .await
                    .map_err(|e| TransportError::new(b2_proto::TransportErrorKind::Other, e))?,
                Reread::Memory(bytes) => {
                    let slice = usize::try_from(range.start)
                        .ok()
                        .zip(usize::try_from(range.end).ok())
                        .filter(|(start, end)| start <= end && *end <= bytes.len())
                        .map(|(start, end)| bytes.slice(start..end));
                    let Some(slice) = slice else {
                        return Err(TransportError::new(
                            b2_proto::TransportErrorKind::Other,
                            "a source range beyond the bytes to upload",
                        ));
                    };
                    transport::bytes_body(slice)
                }
                Reread::None => {
                    return Err(TransportError::new(
                        b2_proto::TransportErrorKind::Other,
                        "a source range was asked of a source that cannot be re-read",
                    ));
                }
            },
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
        machine: M,
        source: &mut Source<'_>,
    ) -> Result<M::Output, Error> {
        self.drive_observed(machine, source, |_| {}).await
    }

    /// Runs a machine to completion, calling `observe` after each reply it takes in.
    pub(crate) async fn drive_observed<M: Machine>(
        &self,
        mut machine: M,
        source: &mut Source<'_>,
        mut observe: impl FnMut(&M),
    ) -> Result<M::Output, Error> {
        let mut in_flight: FuturesUnordered<BoxFuture<'_, Event>> = FuturesUnordered::new();
        loop {
            let step = machine.poll_step(Instant::now());
            match step {
                Step::Send(id, request) => {
                    tracing::debug!(method = %request.method(), path = %request.uri().path(), "send");
                    let reread = source.reread();
                    in_flight.push(Box::pin(async move {
                        Event::Reply(id, self.send(request, reread).await)
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
                        Some(event) = in_flight.next(), if !in_flight.is_empty() => {
                            deliver(&mut machine, event);
                            observe(&machine);
                        }
                    }
                }
                Step::Pending => match in_flight.next().await {
                    Some(event) => {
                        deliver(&mut machine, event);
                        observe(&machine);
                    }
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

/// Reads the bytes of a part: a slice of memory, at an offset of a file, or the next bytes of a
/// reader (fewer at its end; none once it is exhausted).
async fn read_part(source: &mut Source<'_>, range: std::ops::Range<u64>) -> Result<Bytes, Error> {
    let io_error = |source: io::Error| Error::Io {
        context: "reading the upload source",
        source,
    };
    let len = usize::try_from(range.end.saturating_sub(range.start))
        .map_err(|e| io_error(io::Error::other(e)))?;
    match source {
        Source::File(path) => transport::read_range(path, range).await.map_err(io_error),
        Source::Memory(bytes) => {
            let start = usize::try_from(range.start).map_err(|e| io_error(io::Error::other(e)))?;
            let start = start.min(bytes.len());
            Ok(bytes.slice(start..(start + len).min(bytes.len())))
        }
        Source::Reader { reader, prefix } => {
            let head = prefix.split_to(len.min(prefix.len()));
            if prefix.is_empty() {
                // Let go of the prefix's buffer, or it would outlive the parts cut from it.
                *prefix = Bytes::new();
            }
            if head.len() == len {
                return Ok(head);
            }
            let mut buf = bytes::BytesMut::from(&head[..]);
            if buf.len() < len {
                let want = len - buf.len();
                buf.reserve(want);
                let mut limited = (&mut **reader).take(want as u64);
                while buf.len() < len {
                    if limited.read_buf(&mut buf).await.map_err(io_error)? == 0 {
                        break;
                    }
                }
            }
            Ok(buf.freeze())
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

impl Inner {
    /// Obtains a download's head with retries and re-authorization, keeping its body streaming.
    pub(crate) async fn fetch_head<Op: DownloadCall>(
        &self,
        op: Op,
    ) -> Result<(DownloadHead, Incoming), Error> {
        use tracing::Instrument as _;
        let span = tracing::info_span!("b2_download", op = Op::NAME);
        self.fetch_head_inner(op).instrument(span).await
    }

    async fn fetch_head_inner<Op: DownloadCall>(
        &self,
        op: Op,
    ) -> Result<(DownloadHead, Incoming), Error> {
        let session = self.session().await?;
        let mut machine = Call::new(StreamHead::new(op), session, &self.policy());
        let mut body = None;
        loop {
            match machine.poll_step(Instant::now()) {
                Step::Send(id, request) => {
                    let (parts, payload) = request.into_parts();
                    let Body::Bytes(payload) = payload else {
                        return Err(Error::InvalidResponse {
                            op: "driver",
                            reason: "a download has no upload body".into(),
                        });
                    };
                    let request = http::Request::from_parts(parts, transport::bytes_body(payload));
                    let reply = match self.transport.send_streaming(request).await {
                        Ok(response) if response.status().is_success() => {
                            let (parts, incoming) = response.into_parts();
                            body = Some(incoming);
                            Ok(http::Response::from_parts(parts, Bytes::new()))
                        }
                        Ok(response) => self.transport.collect(response).await,
                        Err(e) => Err(e),
                    };
                    machine.handle_response(id, reply, Instant::now());
                }
                Step::Reauthorize { stale } => {
                    let session = self.reauthorize(&stale).await?;
                    machine.handle_session(session);
                }
                Step::Wait(until) => {
                    tokio::time::sleep_until(tokio::time::Instant::from_std(until)).await
                }
                Step::Done(result) => {
                    let head = result?;
                    let body = body.ok_or_else(|| Error::InvalidResponse {
                        op: "driver",
                        reason: "a download head without a body".into(),
                    })?;
                    return Ok((head, body));
                }
                _ => {
                    return Err(Error::InvalidResponse {
                        op: "driver",
                        reason: "unexpected step".into(),
                    });
                }
            }
        }
    }
}
