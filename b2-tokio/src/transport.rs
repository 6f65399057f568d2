//! HTTP over hyper 1 + rustls (ring): the only file that names hyper.

use std::io;
use std::ops::Range;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use b2_proto::{TransportError, TransportErrorKind};
use bytes::Bytes;
use futures_util::TryStreamExt as _;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};
use tokio::sync::Notify;
use tokio::time::Instant;

/// The largest piece of a request body handed to the connection at once. Bytes in memory come
/// as one frame however large; cut into pieces, their progress is seen piece by piece.
const PIECE: usize = 64 * 1024;

/// A request body: bytes in memory or a stream.
pub(crate) type ReqBody = BoxBody<Bytes, io::Error>;

/// Timeouts of the transport.
///
/// While a request's body is being sent, the request fails with
/// [`TransportErrorKind::Timeout`] once `idle` passed without the connection taking a piece
/// (up to [`PIECE`] bytes) of it. The clock starts with the request: setting up a connection
/// (the TLS handshake included) is no progress. Once the connection took the last piece (whose
/// bytes may still be in hyper's and the system's buffers), the reply's head must come within
/// `request`. A request without a body waits `request` for its reply's head from its start.
/// A reply that comes before the body was sent whole ends the wait. Each chunk of a reply
/// body must come within `idle` of the previous one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    /// Establishing a TCP connection.
    pub(crate) connect: Duration,
    /// The wait for a reply's head once the request's body was handed to the connection.
    pub(crate) request: Duration,
    /// The longest time without progress while sending a body, or silence while reading one.
    pub(crate) idle: Duration,
}

/// A pooled HTTPS (and plain HTTP, for local servers) client.
#[derive(Clone)]
pub(crate) struct Transport {
    client: Client<HttpsConnector<HttpConnector>, Watched>,
    timeouts: Timeouts,
    /// The largest piece of a request body handed to the connection at once.
    piece: usize,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("timeouts", &self.timeouts)
            .finish_non_exhaustive()
    }
}

fn tls_config() -> Result<rustls::ClientConfig, b2_proto::Error> {
    let invalid = |reason: String| b2_proto::InvalidInput::Argument {
        what: "TLS configuration",
        reason,
    };
    // The ring provider is passed explicitly: a process with two providers installed would panic.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(e.to_string()))?;
    let mut roots = rustls::RootCertStore::empty();
    #[cfg(feature = "native-roots")]
    {
        let found = rustls_native_certs::load_native_certs();
        for cert in found.certs {
            let _ = roots.add(cert);
        }
    }
    #[cfg(feature = "webpki-roots")]
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if roots.is_empty() {
        return Err(invalid(
            "no trusted root certificates (enable `webpki-roots` or `native-roots`)".into(),
        )
        .into());
    }
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

impl Transport {
    pub(crate) fn new(timeouts: Timeouts) -> Result<Self, b2_proto::Error> {
        Self::tuned(timeouts, PIECE, |_, _| {})
    }

    /// A transport handing request bodies over in pieces of at most `piece` bytes, with
    /// `tune` applied to the connector and the client's settings (tests shrink buffers).
    fn tuned(
        timeouts: Timeouts,
        piece: usize,
        tune: impl FnOnce(&mut HttpConnector, &mut hyper_util::client::legacy::Builder),
    ) -> Result<Self, b2_proto::Error> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(timeouts.connect));
        let mut builder = Client::builder(TokioExecutor::new());
        builder
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_timer(TokioTimer::new());
        tune(&mut http, &mut builder);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config()?)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Ok(Self {
            client: builder.build(https),
            timeouts,
            piece: piece.max(1),
        })
    }

    /// Sends a request and returns the reply with its body still streaming.
    ///
    /// Fails with a timeout as [`Timeouts`] says: sending the body may take as long as it
    /// needs while it progresses, and the wait for the reply's head starts once it was sent.
    pub(crate) async fn send_streaming(
        &self,
        request: http::Request<ReqBody>,
    ) -> Result<http::Response<Incoming>, TransportError> {
        let (parts, body) = request.into_parts();
        let body = Watched::new(body, self.piece);
        let progress = body.progress.clone();
        let reply = self.client.request(http::Request::from_parts(parts, body));
        tokio::select! {
            // A reply wins over a timeout that comes due at the same moment.
            biased;
            reply = reply => reply.map_err(map_client_error),
            timeout = self.watch(&progress) => Err(timeout),
        }
    }

    /// Waits until sending the request stalls for the idle timeout, or, once its body was
    /// handed over, for the request timeout; then returns the timeout's error. Wakes once
    /// per idle timeout at most while the body is being sent, never per piece.
    async fn watch(&self, progress: &Progress) -> TransportError {
        loop {
            if progress.is_sent() {
                tokio::time::sleep(self.timeouts.request).await;
                return TransportError::new(
                    TransportErrorKind::Timeout,
                    "no reply within the request timeout",
                );
            }
            let deadline = progress.last() + self.timeouts.idle;
            if deadline <= Instant::now() {
                return TransportError::new(
                    TransportErrorKind::Timeout,
                    "sending the request stalled for the idle timeout",
                );
            }
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => {}
                // `notify_one` keeps a permit: an end signalled before this wait is not lost.
                () = progress.sent.notified() => {}
            }
        }
    }

    /// Sends a request and reads the whole reply.
    pub(crate) async fn send(
        &self,
        request: http::Request<ReqBody>,
    ) -> Result<http::Response<Bytes>, TransportError> {
        let response = self.send_streaming(request).await?;
        self.collect(response).await
    }

    /// Reads the rest of a reply's body.
    pub(crate) async fn collect(
        &self,
        response: http::Response<Incoming>,
    ) -> Result<http::Response<Bytes>, TransportError> {
        let (parts, mut body) = response.into_parts();
        let mut buf = bytes::BytesMut::new();
        while let Some(frame) = self.next_frame(&mut body).await? {
            buf.extend_from_slice(&frame);
        }
        Ok(http::Response::from_parts(parts, buf.freeze()))
    }

    /// The next data chunk of a reply body, with the idle timeout.
    pub(crate) async fn next_frame(
        &self,
        body: &mut Incoming,
    ) -> Result<Option<Bytes>, TransportError> {
        loop {
            let frame = tokio::time::timeout(self.timeouts.idle, body.frame())
                .await
                .map_err(|_| {
                    TransportError::new(TransportErrorKind::Timeout, "reply body stalled")
                })?;
            match frame {
                None => return Ok(None),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        return Ok(Some(data));
                    }
                }
                Some(Err(e)) => return Err(TransportError::new(TransportErrorKind::Body, e)),
            }
        }
    }
}

/// How far sending a request body got, shared by the body (polled on the connection's task)
/// and the request's watchdog.
#[derive(Debug)]
struct Progress {
    start: Instant,
    /// When the connection last took a piece of the body, in nanoseconds after `start`.
    last: AtomicU64,
    /// Whether the whole body was handed over.
    done: AtomicBool,
    /// Signalled once, when the whole body was handed over.
    sent: Notify,
}

impl Progress {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            last: AtomicU64::new(0),
            done: AtomicBool::new(false),
            sent: Notify::new(),
        }
    }

    /// Records that the connection took a piece of the body now.
    fn advance(&self) {
        let nanos = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.last.store(nanos, Ordering::Relaxed);
    }

    /// When the connection last took a piece of the body (the start, before the first).
    fn last(&self) -> Instant {
        self.start + Duration::from_nanos(self.last.load(Ordering::Relaxed))
    }

    /// Records that the whole body was handed over.
    fn finish(&self) {
        if !self.done.swap(true, Ordering::AcqRel) {
            self.sent.notify_one();
        }
    }

    fn is_sent(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }
}

/// A request body that records in [`Progress`] each piece the connection takes, handing
/// frames over in pieces of at most `piece` bytes (slices of the same buffer: no copy).
struct Watched {
    inner: ReqBody,
    /// What is left of the frame being handed over.
    rest: Bytes,
    /// The bytes not yet handed over, when the body's length is known.
    remaining: Option<u64>,
    piece: usize,
    progress: Arc<Progress>,
}

impl Watched {
    fn new(inner: ReqBody, piece: usize) -> Self {
        let remaining = http_body::Body::size_hint(&inner).exact();
        let body = Self {
            inner,
            rest: Bytes::new(),
            remaining,
            piece,
            progress: Arc::new(Progress::new()),
        };
        if http_body::Body::is_end_stream(&body) {
            // hyper sends no body at all: the wait for the reply starts at once.
            body.progress.finish();
        }
        body
    }
}

impl http_body::Body for Watched {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        if this.rest.is_empty() {
            match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                None => {
                    this.progress.finish();
                    return Poll::Ready(None);
                }
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => this.rest = data,
                    Err(frame) => return Poll::Ready(Some(Ok(frame))),
                },
            }
        }
        let piece = if this.rest.len() > this.piece {
            this.rest.split_to(this.piece)
        } else {
            std::mem::take(&mut this.rest)
        };
        if let Some(remaining) = &mut this.remaining {
            *remaining = remaining.saturating_sub(piece.len() as u64);
        }
        if !piece.is_empty() {
            this.progress.advance();
        }
        // hyper stops polling once the body's declared length was handed over.
        if http_body::Body::is_end_stream(this) {
            this.progress.finish();
        }
        Poll::Ready(Some(Ok(Frame::data(piece))))
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_empty() && (self.remaining == Some(0) || self.inner.is_end_stream())
    }

    fn size_hint(&self) -> http_body::SizeHint {
        match self.remaining {
            Some(remaining) => http_body::SizeHint::with_exact(remaining),
            None => {
                let inner = self.inner.size_hint();
                let rest = self.rest.len() as u64;
                let mut hint = http_body::SizeHint::new();
                hint.set_lower(inner.lower().saturating_add(rest));
                if let Some(upper) = inner.upper() {
                    hint.set_upper(upper.saturating_add(rest));
                }
                hint
            }
        }
    }
}

fn map_client_error(e: hyper_util::client::legacy::Error) -> TransportError {
    if e.is_connect() {
        return TransportError::new(TransportErrorKind::Connect, e);
    }
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        if let Some(h) = s.downcast_ref::<hyper::Error>() {
            let kind = if h.is_timeout() {
                TransportErrorKind::Timeout
            } else {
                TransportErrorKind::Interrupted
            };
            return TransportError::new(kind, e);
        }
        if let Some(io) = s.downcast_ref::<io::Error>() {
            let kind = match io.kind() {
                io::ErrorKind::TimedOut => TransportErrorKind::Timeout,
                _ => TransportErrorKind::Interrupted,
            };
            return TransportError::new(kind, e);
        }
        source = s.source();
    }
    TransportError::new(TransportErrorKind::Other, e)
}

/// A body of bytes in memory.
pub(crate) fn bytes_body(bytes: Bytes) -> ReqBody {
    Full::new(bytes).map_err(|never| match never {}).boxed()
}

/// A body streamed from `range` of the file at `path`, read in chunks of `chunk` bytes.
pub(crate) async fn file_body(path: &Path, range: Range<u64>, chunk: usize) -> io::Result<ReqBody> {
    let mut file = tokio::fs::File::open(path).await?;
    file.seek(io::SeekFrom::Start(range.start)).await?;
    let len = range.end.saturating_sub(range.start);
    let stream = tokio_util::io::ReaderStream::with_capacity(file.take(len), chunk);
    Ok(BoxBody::new(KnownLength {
        inner: StreamBody::new(stream.map_ok(Frame::data)),
        len,
    }))
}

/// A streamed body whose length is known: hyper sends it with a `Content-Length`.
struct KnownLength<B> {
    inner: B,
    len: u64,
}

impl<B: http_body::Body + Unpin> http_body::Body for KnownLength<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.len)
    }
}

/// Reads `range` of the file at `path` into memory.
pub(crate) async fn read_range(path: &Path, range: Range<u64>) -> io::Result<Bytes> {
    let mut file = tokio::fs::File::open(path).await?;
    file.seek(io::SeekFrom::Start(range.start)).await?;
    let len = usize::try_from(range.end.saturating_sub(range.start)).map_err(io::Error::other)?;
    let mut buf = vec![0u8; len];
    file.read_exact(&mut buf).await?;
    Ok(Bytes::from(buf))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt as _;

    /// A body of `len` bytes that are not all alike.
    fn patterned(len: usize) -> Bytes {
        (0..len)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<u8>>()
            .into()
    }

    /// The data frames of `body`, polled to its end as hyper would, stopping where it says
    /// it ended; and whether the end was recorded after each frame.
    async fn pieces(body: &mut Watched) -> Vec<(Bytes, bool)> {
        let mut pieces = Vec::new();
        while !http_body::Body::is_end_stream(body) {
            let Some(frame) = body.frame().await else {
                break;
            };
            let data = frame.expect("frame").into_data().expect("data");
            pieces.push((data, body.progress.is_sent()));
        }
        pieces
    }

    #[tokio::test]
    async fn bytes_in_memory_are_handed_over_in_pieces_of_one_buffer() {
        let data = patterned(150 * 1024);
        let mut body = Watched::new(bytes_body(data.clone()), PIECE);
        assert_eq!(http_body::Body::size_hint(&body).exact(), Some(150 * 1024));
        assert!(!body.progress.is_sent());
        let pieces = pieces(&mut body).await;
        let lens: Vec<usize> = pieces.iter().map(|(p, _)| p.len()).collect();
        assert_eq!(lens, [64 * 1024, 64 * 1024, 22 * 1024]);
        let sent: Vec<bool> = pieces.iter().map(|(_, sent)| *sent).collect();
        assert_eq!(sent, [false, false, true]);
        assert_eq!(http_body::Body::size_hint(&body).exact(), Some(0));
        // Slices of the caller's buffer, in order.
        let mut at = 0;
        for (piece, _) in &pieces {
            assert_eq!(piece.as_ptr(), data[at..].as_ptr());
            at += piece.len();
        }
    }

    #[tokio::test]
    async fn a_file_range_ends_with_its_last_piece() {
        let path = std::env::temp_dir().join(format!("b2-tokio-watched-{}", std::process::id()));
        std::fs::write(&path, patterned(10_000)).expect("write");
        let file = file_body(&path, 1000..9000, 4096).await.expect("file body");
        let mut body = Watched::new(file, 3000);
        let pieces = pieces(&mut body).await;
        std::fs::remove_file(&path).expect("remove");
        let lens: Vec<usize> = pieces.iter().map(|(p, _)| p.len()).collect();
        // Chunks of 4096 bytes read from the file, cut at 3000.
        assert_eq!(lens, [3000, 1096, 3000, 904]);
        let sent: Vec<bool> = pieces.iter().map(|(_, sent)| *sent).collect();
        assert_eq!(sent, [false, false, false, true]);
        let all: Vec<u8> = pieces.iter().flat_map(|(p, _)| p.iter().copied()).collect();
        assert_eq!(all, patterned(10_000)[1000..9000]);
    }

    #[test]
    fn an_empty_body_is_sent_from_the_start() {
        let body = Watched::new(bytes_body(Bytes::new()), PIECE);
        assert!(http_body::Body::is_end_stream(&body));
        assert!(body.progress.is_sent());
    }

    /// Reads a request's head from `conn`; returns its `Content-Length` and the body bytes
    /// read with it.
    async fn read_head(conn: &mut tokio::net::TcpStream) -> (usize, Vec<u8>) {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 512];
        let end = loop {
            let n = conn.read(&mut chunk).await.expect("read head");
            assert!(n > 0, "closed before the head's end");
            buf.extend_from_slice(&chunk[..n]);
            if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let len = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .expect("a content-length");
        (len, buf.split_off(end))
    }

    /// An upload whose server reads slowly but steadily is not cut off, however long it takes.
    ///
    /// The socket buffers and hyper's are shrunk to a few KiB, so that the client's progress
    /// follows the server's reading within a few KiB: with the system's buffers, megabytes
    /// would be taken at once and then drain at the server's pace.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_slow_but_steady_upload_is_not_cut_off() {
        const LEN: usize = 127 * 1024;
        // 2 KiB every 50 ms: 40 KiB/s, below a minimum rate of 64 KiB/s.
        const STEP: usize = 2 * 1024;
        const SLOW: Duration = Duration::from_millis(1800);
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(4096).expect("receive buffer");
        socket
            .bind("127.0.0.1:0".parse().expect("addr"))
            .expect("bind");
        let listener = socket.listen(1).expect("listen");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.expect("accept");
            let (len, mut body) = read_head(&mut conn).await;
            let started = Instant::now();
            while started.elapsed() < SLOW && body.len() < len {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let mut step = vec![0u8; STEP.min(len - body.len())];
                conn.read_exact(&mut step).await.expect("read body");
                body.extend_from_slice(&step);
            }
            let read_slowly = body.len();
            let mut rest = vec![0u8; len - body.len()];
            conn.read_exact(&mut rest).await.expect("read body");
            body.extend_from_slice(&rest);
            conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
                .await
                .expect("reply");
            (body, read_slowly)
        });

        let timeouts = Timeouts {
            connect: Duration::from_secs(5),
            request: Duration::from_millis(300),
            // The client takes a few KiB each 150 ms here: a margin for a busy machine.
            idle: Duration::from_millis(500),
        };
        let transport = Transport::tuned(timeouts, 2048, |http, builder| {
            http.set_send_buffer_size(Some(4096));
            builder.http1_max_buf_size(8192);
        })
        .expect("transport");
        let data = patterned(LEN);
        let request = http::Request::post(format!("http://{addr}/upload"))
            .body(bytes_body(data.clone()))
            .expect("request");
        let started = Instant::now();
        let reply = transport.send(request).await.expect("reply");
        let took = started.elapsed();
        assert_eq!(reply.status(), 200);
        assert_eq!(reply.body().as_ref(), b"{}");
        let (body, read_slowly) = server.await.expect("server");
        assert_eq!(body, data);
        // Still sending after the slow phase, which outlasted the idle timeout and a budget of
        // the request timeout plus a second per 64 KiB (a minimum rate of 64 KiB/s).
        assert!(read_slowly < LEN, "{read_slowly}");
        assert!(took > SLOW, "{took:?}");
        assert!(SLOW > Duration::from_millis(300 + 1000) && SLOW > timeouts.idle);
    }
}
