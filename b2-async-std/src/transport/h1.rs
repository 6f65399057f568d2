//! surf's `HttpClient` on async-h1 over async-std TCP and futures-rustls, with a small
//! connection pool.
//!
//! Each request goes over one connection at a time (HTTP/1.1, no pipelining):
//!
//! 1. Take an idle connection for `(scheme, host, port)` from the pool, dropping those idle
//!    too long or that the server closed; or connect (TCP, then TLS for `https`).
//! 2. Write the head ourselves, with the request target exactly as b2-proto built it (a
//!    parsed URL would collapse `/a/../b` and `%2e%2e`, which are parts of B2 file names),
//!    then the body with its `Content-Length`.
//! 3. Read and parse the reply head ourselves (skipping `1xx` interim replies), keeping its
//!    status and headers exactly as sent. async-h1 is then handed only a minimal head that
//!    states the body's framing, and frames the body (`Content-Length` or chunked). It never
//!    sees the real headers, so its limits do not apply to them: it refuses heads of 8 KiB
//!    or more (a B2 download with a long file name and large file info comes close), panics
//!    on header values that are not ASCII, and knows only the registered status codes.
//! 4. The connection goes back to the pool only when the body was read to its end with
//!    `Content-Length` or chunked framing and neither side asked for `Connection: close`.
//!    Any other ending drops it. A body shorter than its `Content-Length` is an error.
//!
//! Limits: HTTP/1.1 only; reply heads up to 64 KiB; replies framed by closing the
//! connection (neither `Content-Length` nor chunked) are refused as errors.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_std::net::TcpStream;
use b2_proto::{TransportError, TransportErrorKind};

use super::Timeouts;
use futures_rustls::TlsConnector;
use futures_rustls::client::TlsStream;
use futures_rustls::pki_types::ServerName;
use futures_util::FutureExt as _;
use futures_util::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, BufReader};
use http_types::headers::{CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HOST, TRANSFER_ENCODING};
use http_types::{Body, Request, Response, Url};

/// The request target (path and query) exactly as built, carried beside the parsed URL.
#[derive(Debug, Clone)]
pub(crate) struct RawTarget(pub(crate) String);

/// The reply's status and headers exactly as the server sent them.
#[derive(Debug, Clone)]
pub(crate) struct RawHead {
    pub(crate) status: http::StatusCode,
    pub(crate) headers: http::HeaderMap,
}

/// The largest reply head accepted.
const MAX_HEAD: usize = 64 * 1024;

/// The most bytes of a request body sent in one write.
const SEND_CHUNK: usize = 64 * 1024;

/// Idle connections older than this are not reused.
const MAX_IDLE_AGE: Duration = Duration::from_secs(30);
/// Idle connections kept per `(scheme, host, port)`.
const MAX_IDLE_PER_HOST: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct PoolKey {
    https: bool,
    host: String,
    port: u16,
}

impl PoolKey {
    fn for_url(url: &Url) -> Result<Self, TransportError> {
        let https = match url.scheme() {
            "https" => true,
            "http" => false,
            other => {
                return Err(TransportError::new(
                    TransportErrorKind::Other,
                    format!("unsupported URL scheme {other:?}"),
                ));
            }
        };
        let Some(host) = url.host_str() else {
            return Err(TransportError::new(
                TransportErrorKind::Other,
                "the URL has no host",
            ));
        };
        // IPv6 literals come bracketed; sockets and TLS names take them bare.
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = url
            .port_or_known_default()
            .unwrap_or(if https { 443 } else { 80 });
        Ok(Self { https, host, port })
    }
}

enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(&mut **s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => Pin::new(&mut **s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(&mut **s).poll_flush(cx),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_close(cx),
            Self::Tls(s) => Pin::new(&mut **s).poll_close(cx),
        }
    }
}

impl Conn {
    /// False when the server closed the idle connection or sent something unasked.
    fn is_idle_and_open(&mut self) -> bool {
        let mut byte = [0u8; 1];
        // Pending means nothing to read: the connection is open and quiet.
        self.read(&mut byte).now_or_never().is_none()
    }
}

/// A connection shared between async-h1's reader and the pool, so that it can be taken back
/// once its reply was read to the end.
type Slot = Arc<Mutex<Option<Conn>>>;

struct SharedConn(Slot);

impl AsyncRead for SharedConn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match slot.as_mut() {
            Some(conn) => Pin::new(conn).poll_read(cx, buf),
            // Taken back by the pool after the body's end: nothing more belongs to this reply.
            None => Poll::Ready(Ok(0)),
        }
    }
}

struct Shared {
    tls: TlsConnector,
    timeouts: Timeouts,
    idle: Mutex<HashMap<PoolKey, Vec<(Conn, Instant)>>>,
}

/// The HTTP client surf runs on.
pub(crate) struct H1Client {
    shared: Arc<Shared>,
    config: http_client::Config,
}

impl std::fmt::Debug for H1Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H1Client")
            .field("timeouts", &self.shared.timeouts)
            .finish_non_exhaustive()
    }
}

impl H1Client {
    pub(crate) fn new(tls: Arc<rustls::ClientConfig>, timeouts: Timeouts) -> Self {
        Self {
            shared: Arc::new(Shared {
                tls: TlsConnector::from(tls),
                timeouts,
                idle: Mutex::new(HashMap::new()),
            }),
            config: http_client::Config::new(),
        }
    }
}

#[http_client::async_trait]
impl http_client::HttpClient for H1Client {
    async fn send(&self, req: Request) -> Result<Response, http_types::Error> {
        // The failure travels inside surf's error and is taken out again in `transport`.
        self.shared
            .clone()
            .send(req)
            .await
            .map_err(|e| http_types::Error::new(http_types::StatusCode::BadGateway, e))
    }

    fn set_config(&mut self, config: http_client::Config) -> http_types::Result<()> {
        self.config = config;
        Ok(())
    }

    fn config(&self) -> &http_client::Config {
        &self.config
    }
}

/// True when a `Connection` header asks to close the connection.
fn has_close<'a>(mut values: impl Iterator<Item = &'a str>) -> bool {
    values.any(|v| {
        v.split(',')
            .any(|token| token.trim().eq_ignore_ascii_case("close"))
    })
}

fn interrupted(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> TransportError {
    TransportError::new(TransportErrorKind::Interrupted, e)
}

fn io_failure(e: io::Error) -> TransportError {
    let kind = match e.kind() {
        io::ErrorKind::TimedOut => TransportErrorKind::Timeout,
        _ => TransportErrorKind::Interrupted,
    };
    TransportError::new(kind, e)
}

impl Shared {
    fn checkout(&self, key: &PoolKey) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let conns = idle.get_mut(key)?;
        while let Some((mut conn, since)) = conns.pop() {
            if since.elapsed() < MAX_IDLE_AGE && conn.is_idle_and_open() {
                return Some(conn);
            }
        }
        None
    }

    fn checkin(&self, key: PoolKey, conn: Conn) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let conns = idle.entry(key).or_default();
        conns.retain(|(_, since)| since.elapsed() < MAX_IDLE_AGE);
        if conns.len() < MAX_IDLE_PER_HOST {
            conns.push((conn, Instant::now()));
        }
    }

    async fn connect(&self, key: &PoolKey) -> Result<Conn, TransportError> {
        let connect = async {
            let tcp = TcpStream::connect((key.host.as_str(), key.port)).await?;
            tcp.set_nodelay(true)?;
            if !key.https {
                return Ok(Conn::Plain(tcp));
            }
            let name = ServerName::try_from(key.host.clone())
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            let tls = self.tls.connect(name, tcp).await?;
            Ok::<_, io::Error>(Conn::Tls(Box::new(tls)))
        };
        match async_std::future::timeout(self.timeouts.connect, connect).await {
            Ok(Ok(conn)) => Ok(conn),
            // Nothing of the request reached the server, whatever failed.
            Ok(Err(e)) => Err(TransportError::new(TransportErrorKind::Connect, e)),
            Err(e) => Err(TransportError::new(TransportErrorKind::Connect, e)),
        }
    }

    async fn send(self: Arc<Self>, mut req: Request) -> Result<Response, TransportError> {
        let key = PoolKey::for_url(req.url())?;
        let head_only = req.method() == http_types::Method::Head;
        let close_asked = has_close(
            req.header(CONNECTION)
                .into_iter()
                .flat_map(|values| values.iter().map(|v| v.as_str())),
        );
        let had_type = req.header(CONTENT_TYPE).is_some();
        let mut body = req.take_body();
        if !had_type {
            // Taking the body made http-types add a Content-Type.
            req.remove_header(CONTENT_TYPE);
        }
        let Some(len) = body.len() else {
            return Err(TransportError::new(
                TransportErrorKind::Other,
                "a request body of unknown length",
            ));
        };
        let head = request_head(&req, &key, len);
        let mut conn = match self.checkout(&key) {
            Some(conn) => conn,
            None => self.connect(&key).await?,
        };

        let idle = self.timeouts.idle;
        // Sending may take long (a large part), but must not stall.
        let stalled = |_| TransportError::new(TransportErrorKind::Timeout, "sending stalled");
        // The head and the first bytes of the body go out in one write (a small request in one
        // segment), the rest in writes of up to 64 KiB. A write happens whenever the buffer is
        // full, so there is always room for the next read.
        let mut buf = vec![0u8; head.len() + SEND_CHUNK];
        let (first, _) = buf.split_at_mut(head.len());
        first.copy_from_slice(&head);
        let mut filled = head.len();
        let mut sent = 0usize;
        loop {
            let room = buf.get_mut(filled..).unwrap_or_default();
            let n = body
                .read(room)
                .await
                .map_err(|e| TransportError::new(TransportErrorKind::Other, e))?;
            sent += n;
            if sent > len {
                break;
            }
            filled += n;
            if n == 0 || filled == buf.len() {
                let data = buf.get(..filled).unwrap_or_default();
                async_std::future::timeout(idle, conn.write_all(data))
                    .await
                    .map_err(stalled)?
                    .map_err(io_failure)?;
                filled = 0;
            }
            if n == 0 {
                break;
            }
        }
        if sent != len {
            return Err(TransportError::new(
                TransportErrorKind::Other,
                format!("the request body has {sent} bytes, not the {len} it declared"),
            ));
        }
        async_std::future::timeout(idle, conn.flush())
            .await
            .map_err(stalled)?
            .map_err(io_failure)?;

        // B2 may work long before it answers (a large upload or copy).
        let (raw, rest) =
            async_std::future::timeout(self.timeouts.request, read_reply_head(&mut conn))
                .await
                .map_err(|_| {
                    TransportError::new(
                        TransportErrorKind::Timeout,
                        "no reply within the request timeout",
                    )
                })??;
        let status = raw.status.as_u16();
        let close = close_asked
            || has_close(
                raw.headers
                    .get_all(http::header::CONNECTION)
                    .iter()
                    .filter_map(|v| v.to_str().ok()),
            );
        let slot: Slot = Arc::new(Mutex::new(Some(conn)));
        let mut framed = Framed {
            inner: Body::empty(),
            expected: Some(0),
            read: 0,
            back: (!close).then(|| (slot.clone(), self.clone(), key)),
        };
        if head_only || status == 204 || status == 304 {
            // These replies end with their head, whatever their headers say.
            let mut res = Response::new(http_types::StatusCode::Ok);
            res.ext_mut().insert(raw);
            if rest.is_empty() {
                framed.give_back();
            }
            return Ok(res);
        }
        let chunked = match raw
            .headers
            .get_all(http::header::TRANSFER_ENCODING)
            .iter()
            .next_back()
        {
            None => false,
            Some(v) if v.as_bytes().eq_ignore_ascii_case(b"chunked") => true,
            Some(_) => {
                return Err(TransportError::new(
                    TransportErrorKind::Body,
                    "the reply's Transfer-Encoding is not chunked",
                ));
            }
        };
        let length = match raw.headers.get(http::header::CONTENT_LENGTH) {
            None => None,
            Some(v) => Some(
                v.to_str()
                    .ok()
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .ok_or_else(|| interrupted("the reply's Content-Length is not a number"))?,
            ),
        };
        // A minimal head for async-h1: the body's framing and nothing else.
        let mut head = match (chunked, length) {
            (true, _) => b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec(),
            (false, Some(length)) => {
                if rest.len() as u64 > length {
                    // More than the reply came: the connection cannot be trusted again.
                    framed.back = None;
                }
                format!("HTTP/1.1 200 OK\r\nContent-Length: {length}\r\n\r\n").into_bytes()
            }
            (false, None) => {
                return Err(TransportError::new(
                    TransportErrorKind::Body,
                    "the reply has neither Content-Length nor chunked framing",
                ));
            }
        };
        head.extend_from_slice(&rest);
        let reader = futures_util::io::Cursor::new(head).chain(SharedConn(slot));
        let mut res = async_h1::client::decode(reader).await.map_err(|e| {
            match e.downcast::<io::Error>() {
                Ok(io) => io_failure(io),
                Err(e) => interrupted(e.to_string()),
            }
        })?;
        res.ext_mut().insert(raw);
        framed.inner = res.take_body();
        framed.expected = if chunked { None } else { length };
        if framed.expected == Some(0) {
            // http-types never reads an empty body, so its end is now.
            framed.give_back();
        }
        let len = framed.expected.and_then(|l| usize::try_from(l).ok());
        res.set_body(Body::from_reader(BufReader::new(framed), len));
        Ok(res)
    }
}

/// The request head: the exact target, the caller's headers, `Host` and `Content-Length`.
fn request_head(req: &Request, key: &PoolKey, len: usize) -> Vec<u8> {
    let target = req
        .ext()
        .get::<RawTarget>()
        .map(|t| t.0.clone())
        .unwrap_or_else(|| {
            let url = req.url();
            match url.query() {
                Some(q) => format!("{}?{q}", url.path()),
                None => url.path().to_owned(),
            }
        });
    let mut head = format!("{} {target} HTTP/1.1\r\n", req.method());
    if req.header(HOST).is_none() {
        let default_port = if key.https { 443 } else { 80 };
        let host = if key.host.contains(':') {
            format!("[{}]", key.host)
        } else {
            key.host.clone()
        };
        if key.port == default_port {
            head.push_str(&format!("host: {host}\r\n"));
        } else {
            head.push_str(&format!("host: {host}:{}\r\n", key.port));
        }
    }
    for (name, values) in req.iter() {
        if *name == CONTENT_LENGTH || *name == TRANSFER_ENCODING {
            continue;
        }
        for value in values.iter() {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    let method = req.method();
    if len > 0 || !(method == http_types::Method::Get || method == http_types::Method::Head) {
        head.push_str(&format!("content-length: {len}\r\n"));
    }
    head.push_str("\r\n");
    head.into_bytes()
}

/// Reads up to the end of the final reply head. Returns the parsed head and the bytes read
/// past it (the start of the body, if any).
async fn read_reply_head(conn: &mut Conn) -> Result<(RawHead, Vec<u8>), TransportError> {
    let too_large = || interrupted("the reply head is larger than 64 KiB");
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        let Some(end) = head_end(&buf) else {
            if buf.len() > MAX_HEAD {
                return Err(too_large());
            }
            let n = conn.read(&mut chunk).await.map_err(io_failure)?;
            if n == 0 {
                return Err(interrupted(if buf.is_empty() {
                    "the connection closed before a reply"
                } else {
                    "the connection closed inside the reply head"
                }));
            }
            buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
            continue;
        };
        let head = buf.get(..end).unwrap_or_default();
        if end > MAX_HEAD {
            return Err(too_large());
        }
        let mut headers = [httparse::EMPTY_HEADER; 128];
        let mut parsed = httparse::Response::new(&mut headers);
        match parsed.parse(head) {
            Ok(httparse::Status::Complete(_)) => {}
            Ok(httparse::Status::Partial) => return Err(interrupted("a malformed reply head")),
            Err(e) => return Err(interrupted(e)),
        }
        if parsed.version != Some(1) {
            return Err(interrupted("the reply is not HTTP/1.1"));
        }
        let code = parsed.code.unwrap_or(0);
        let status = http::StatusCode::from_u16(code).map_err(interrupted)?;
        if (100..200).contains(&code) && code != 101 {
            // An interim reply (100 Continue, 103 Early Hints): the final one follows.
            buf.drain(..end);
            continue;
        }
        let mut map = http::HeaderMap::new();
        for header in parsed.headers.iter() {
            let name = http::HeaderName::from_bytes(header.name.as_bytes()).map_err(interrupted)?;
            let value = http::HeaderValue::from_bytes(header.value).map_err(interrupted)?;
            map.append(name, value);
        }
        // What follows the head belongs to the body.
        buf.drain(..end);
        return Ok((
            RawHead {
                status,
                headers: map,
            },
            buf,
        ));
    }
}

/// Where the head ends (after its blank line), if it does within `buf`.
fn head_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// A reply body that checks its length and hands its connection back to the pool at its end.
struct Framed {
    inner: Body,
    /// The `Content-Length`, when the body is not chunked.
    expected: Option<u64>,
    read: u64,
    back: Option<(Slot, Arc<Shared>, PoolKey)>,
}

impl Framed {
    /// The whole body was read: the connection may serve the next request.
    fn give_back(&mut self) {
        if let Some((slot, shared, key)) = self.back.take() {
            let conn = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
            if let Some(conn) = conn {
                shared.checkin(key, conn);
            }
        }
    }
}

impl AsyncRead for Framed {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let n = match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(n)) => n,
            Poll::Ready(Err(e)) => {
                this.back = None;
                return Poll::Ready(Err(e));
            }
            Poll::Pending => return Poll::Pending,
        };
        this.read += n as u64;
        let ended = n == 0 && !buf.is_empty();
        match this.expected {
            // http-types stops reading at the Content-Length: the body ends with its last byte.
            Some(expected) if this.read == expected => this.give_back(),
            Some(expected) if ended => {
                this.back = None;
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "the reply body ended after {} of {expected} bytes",
                        this.read
                    ),
                )));
            }
            None if ended => this.give_back(),
            _ => {}
        }
        Poll::Ready(Ok(n))
    }
}
