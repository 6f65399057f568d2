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
use futures_util::future::{BoxFuture, Either};
use futures_util::io::{AsyncRead, AsyncReadExt as _};
use futures_util::stream::FuturesUnordered;

use crate::transport::{self, Incoming, Transport};

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
    pub(crate) session: async_std::sync::Mutex<Option<Arc<Session>>>,
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
            session: async_std::sync::Mutex::new(None),
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
                // Streamed from the file: memory holds one read chunk, whatever the range.
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
                    let sleep =
                        async_std::task::sleep(until.saturating_duration_since(Instant::now()));
                    if in_flight.is_empty() {
                        sleep.await;
                    } else {
                        // A reply that arrives first ends the wait.
                        let sleep = std::pin::pin!(sleep);
                        if let Either::Right((Some(event), _)) =
                            futures_util::future::select(sleep, in_flight.next()).await
                        {
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
                        // Error replies are small JSON documents, read whole.
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
                    async_std::task::sleep(until.saturating_duration_since(Instant::now())).await;
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

fn deliver<M: Machine>(machine: &mut M, event: Event) {
    match event {
        Event::Reply(id, reply) => machine.handle_response(id, reply, Instant::now()),
    }
}

/// Reads the bytes of a part: a slice of memory, at an offset of a file, or the next bytes of a
/// reader (fewer at its end; none once it is exhausted). Memory holds one part at most.
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
            Ok(bytes.slice(start..start.saturating_add(len).min(bytes.len())))
        }
        Source::Reader { reader, prefix } => {
            let head = prefix.split_to(len.min(prefix.len()));
            if head.len() == len {
                return Ok(head);
            }
            // Exactly one part's room: `read_to_end` would double the buffer to probe for more.
            let mut buf = vec![0u8; len];
            let (done, rest) = buf.split_at_mut(head.len());
            done.copy_from_slice(&head);
            let got = fill(&mut **reader, rest).await.map_err(io_error)?;
            buf.truncate(head.len() + got);
            Ok(Bytes::from(buf))
        }
        Source::None => Err(io_error(io::Error::other(
            "the upload has no source to read",
        ))),
    }
}

/// Reads into `buf` until it is full or the reader ends; returns how many bytes were read.
pub(crate) async fn fill(
    reader: &mut (dyn AsyncRead + Unpin + Send),
    buf: &mut [u8],
) -> io::Result<usize> {
    let mut filled = 0;
    while let Some(rest) = buf.get_mut(filled..).filter(|rest| !rest.is_empty()) {
        match reader.read(rest).await {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Default transport timeouts.
pub(crate) const DEFAULT_TIMEOUTS: transport::Timeouts = transport::Timeouts {
    connect: Duration::from_secs(30),
    request: Duration::from_secs(900),
    idle: Duration::from_secs(120),
};

#[cfg(test)]
mod tests {
    //! The driver with machines that stream a file range and send unusual targets: these
    //! reach past the public calls, so they live here.

    use std::io::Write as _;
    use std::sync::Arc;
    use std::time::Instant;

    use b2_proto::machine::{Body, Machine, RequestId, Step};
    use b2_proto::{ApplicationKey, ApplicationKeyId, AuthorizeAccount, Error, RetryPolicy};
    use b2_proto::{Session, TransportError};
    use bytes::Bytes;

    use super::{DEFAULT_TIMEOUTS, Inner, Source};
    use crate::test_server::{Reply, Server};
    use crate::transport::Transport;

    /// Sends one request and finishes with its reply.
    struct OneShot {
        request: Option<http::Request<Body>>,
        reply: Option<Result<http::Response<Bytes>, TransportError>>,
    }

    impl Machine for OneShot {
        type Output = http::Response<Bytes>;

        fn poll_step(&mut self, _now: Instant) -> Step<Self::Output> {
            if let Some(request) = self.request.take() {
                return Step::Send(RequestId::new(1), request);
            }
            match self.reply.take() {
                Some(reply) => Step::Done(reply.map_err(Error::from)),
                None => Step::Pending,
            }
        }

        fn handle_response(
            &mut self,
            _id: RequestId,
            response: Result<http::Response<Bytes>, TransportError>,
            _now: Instant,
        ) {
            self.reply = Some(response);
        }

        fn handle_session(&mut self, _session: Arc<Session>) {}
    }

    fn inner(server: &Server) -> Inner {
        let authorize =
            AuthorizeAccount::new(ApplicationKeyId::new("id"), ApplicationKey::new("k"))
                .with_realm(&server.base);
        Inner::new(
            Transport::new(DEFAULT_TIMEOUTS).expect("transport"),
            authorize,
            RetryPolicy::default(),
            64 * 1024,
            16,
            b2_proto::transfer::UploadStrategy::default(),
        )
    }

    #[async_std::test]
    async fn a_file_range_is_streamed_as_the_body() {
        let server =
            Server::start(|req| Reply::json(200, &format!("{{\"n\":{}}}", req.body.len())));
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let path = std::env::temp_dir().join(format!("b2-async-std-range-{}", std::process::id()));
        std::fs::File::create(&path)
            .and_then(|mut f| f.write_all(&data))
            .expect("write");
        let range = 1_000_003..2_900_000u64;
        let request = http::Request::put(format!("{}/upload", server.base))
            .header("content-length", (range.end - range.start).to_string())
            .body(Body::Source(range.clone()))
            .expect("request");
        let machine = OneShot {
            request: Some(request),
            reply: None,
        };
        let reply = inner(&server)
            .drive(machine, &mut Source::File(&path))
            .await
            .expect("reply");
        let _ = std::fs::remove_file(&path);
        assert_eq!(reply.status(), 200);
        let received = server.requests();
        assert_eq!(received.len(), 1);
        assert_eq!(received[0].method, "PUT");
        assert_eq!(received[0].header("content-length"), Some("1899997"));
        assert!(
            received[0].body == data[1_000_003..2_900_000],
            "the body is not the file range"
        );
    }

    #[async_std::test]
    async fn a_source_range_without_a_file_is_refused() {
        let server = Server::start(|_| Reply::json(200, "{}"));
        let request = http::Request::put(format!("{}/upload", server.base))
            .body(Body::Source(0..10))
            .expect("request");
        let machine = OneShot {
            request: Some(request),
            reply: None,
        };
        let error = inner(&server)
            .drive(machine, &mut Source::None)
            .await
            .expect_err("no file");
        assert!(matches!(error, Error::Transport(_)), "{error:?}");
        assert!(server.requests().is_empty());
    }

    #[async_std::test]
    async fn the_request_target_is_sent_as_built() {
        let server = Server::start(|_| Reply::json(200, "{}"));
        let target = "/file/bucket/a/../b/%2e%2e/c%20d?x=%2F&y=1";
        let request = http::Request::get(format!("{}{target}", server.base))
            .body(Body::Bytes(Bytes::new()))
            .expect("request");
        let machine = OneShot {
            request: Some(request),
            reply: None,
        };
        inner(&server)
            .drive(machine, &mut Source::None)
            .await
            .expect("reply");
        assert_eq!(server.requests()[0].target, target);
    }

    #[async_std::test]
    async fn error_statuses_and_headers_come_back_as_sent() {
        let server = Server::start(|_| {
            Reply::Raw(
                b"HTTP/1.1 404 Not Found\r\nX-Bz-Info-Author: caf%C3%A9\r\nContent-Length: 2\r\n\r\n{}"
                    .to_vec(),
            )
        });
        let request = http::Request::get(format!("{}/x", server.base))
            .body(Body::Bytes(Bytes::new()))
            .expect("request");
        let machine = OneShot {
            request: Some(request),
            reply: None,
        };
        let reply = inner(&server)
            .drive(machine, &mut Source::None)
            .await
            .expect("reply");
        assert_eq!(reply.status(), 404);
        assert_eq!(reply.headers()["x-bz-info-author"], "caf%C3%A9");
        assert_eq!(reply.body().as_ref(), b"{}");
    }

    /// Sends `n` requests at once, then waits (far into the future) for their replies.
    struct Fanout {
        base: String,
        n: u64,
        next: u64,
        deadline: Option<Instant>,
        replies: Vec<u16>,
    }

    impl Machine for Fanout {
        type Output = Vec<u16>;

        fn poll_step(&mut self, now: Instant) -> Step<Self::Output> {
            if self.next < self.n {
                self.next += 1;
                let request = http::Request::post(format!("{}/part/{}", self.base, self.next))
                    .body(Body::Bytes(Bytes::from(vec![b'x'; 10])))
                    .expect("request");
                return Step::Send(RequestId::new(self.next), request);
            }
            if self.replies.len() as u64 == self.n {
                return Step::Done(Ok(std::mem::take(&mut self.replies)));
            }
            let deadline = *self
                .deadline
                .get_or_insert(now + std::time::Duration::from_secs(60));
            Step::Wait(deadline)
        }

        fn handle_response(
            &mut self,
            _id: RequestId,
            response: Result<http::Response<Bytes>, TransportError>,
            _now: Instant,
        ) {
            self.replies
                .push(response.map_or(0, |r| r.status().as_u16()));
        }

        fn handle_session(&mut self, _session: Arc<Session>) {}
    }

    #[async_std::test]
    async fn requests_a_machine_sends_together_run_in_parallel_and_end_its_wait() {
        let server = Server::start(|_| {
            std::thread::sleep(std::time::Duration::from_millis(400));
            Reply::json(200, "{}")
        });
        let machine = Fanout {
            base: server.base.clone(),
            n: 4,
            next: 0,
            deadline: None,
            replies: Vec::new(),
        };
        let started = Instant::now();
        let statuses = inner(&server)
            .drive(machine, &mut Source::None)
            .await
            .expect("replies");
        let elapsed = started.elapsed();
        assert_eq!(statuses, [200, 200, 200, 200]);
        // In series the four would take 1.6 s; the wait would last 60 s.
        assert!(
            elapsed < std::time::Duration::from_millis(1_200),
            "{elapsed:?}"
        );
        let requests = server.requests();
        assert_eq!(requests.len(), 4);
        let mut conns: Vec<usize> = requests.iter().map(|r| r.conn).collect();
        conns.sort_unstable();
        conns.dedup();
        assert_eq!(
            conns.len(),
            4,
            "each request in flight has its own connection"
        );
    }

    /// Asks for parts of the source and finishes with what it was given.
    struct Parts {
        ranges: Vec<std::ops::Range<u64>>,
        got: Vec<Bytes>,
    }

    impl Machine for Parts {
        type Output = Vec<Bytes>;

        fn poll_step(&mut self, _now: Instant) -> Step<Self::Output> {
            if self.got.len() == self.ranges.len() {
                return Step::Done(Ok(std::mem::take(&mut self.got)));
            }
            let i = self.got.len();
            Step::NeedPart {
                id: RequestId::new(i as u64 + 1),
                part: b2_proto::PartNumber::new(i as u32 + 1).expect("part"),
                range: self.ranges[i].clone(),
            }
        }

        fn handle_response(
            &mut self,
            _id: RequestId,
            _response: Result<http::Response<Bytes>, TransportError>,
            _now: Instant,
        ) {
        }

        fn handle_session(&mut self, _session: Arc<Session>) {}

        fn provide_part(&mut self, _id: RequestId, data: Bytes, _now: Instant) {
            self.got.push(data);
        }
    }

    #[async_std::test]
    async fn parts_are_read_from_a_file_at_offsets_and_from_a_reader_in_order() {
        let server = Server::start(|_| Reply::json(200, "{}"));
        let data: Vec<u8> = b"0123456789abcdefghij".to_vec();
        let path = std::env::temp_dir().join(format!("b2-async-std-parts-{}", std::process::id()));
        std::fs::write(&path, &data).expect("write");
        let machine = Parts {
            ranges: vec![10..15, 0..4],
            got: Vec::new(),
        };
        let from_file = inner(&server)
            .drive(machine, &mut Source::File(&path))
            .await
            .expect("parts");
        let _ = std::fs::remove_file(&path);
        assert_eq!(from_file, [&b"abcde"[..], &b"0123"[..]]);

        let mut reader = futures_util::io::Cursor::new(data.clone());
        let machine = Parts {
            ranges: vec![0..4, 4..10, 10..30, 30..40],
            got: Vec::new(),
        };
        let from_reader = inner(&server)
            .drive(
                machine,
                &mut Source::Reader {
                    reader: &mut reader,
                    prefix: Bytes::new(),
                },
            )
            .await
            .expect("parts");
        // A reader gives what it has: the last parts come short, then empty.
        assert_eq!(
            from_reader,
            [&b"0123"[..], &b"456789"[..], &b"abcdefghij"[..], &b""[..]]
        );
        assert!(server.requests().is_empty());
    }
}
