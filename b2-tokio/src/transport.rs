//! HTTP over hyper 1 + rustls (ring): the only file that names hyper.

use std::io;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
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

/// The slowest upload rate allowed for before a request times out: 64 KiB/s.
const MIN_SEND_RATE: u64 = 64 * 1024;

/// A request body: bytes in memory or a stream.
pub(crate) type ReqBody = BoxBody<Bytes, io::Error>;

/// Timeouts of the transport.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    pub(crate) connect: Duration,
    /// Whole JSON calls, and the wait for a reply's head after an upload body was sent.
    pub(crate) request: Duration,
    /// Longest silence while reading a reply body.
    pub(crate) idle: Duration,
}

/// A pooled HTTPS (and plain HTTP, for local servers) client.
#[derive(Clone)]
pub(crate) struct Transport {
    client: Client<HttpsConnector<HttpConnector>, ReqBody>,
    timeouts: Timeouts,
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
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(timeouts.connect));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config()?)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_timer(TokioTimer::new())
            .build(https);
        Ok(Self { client, timeouts })
    }

    /// Sends a request and returns the reply with its body still streaming.
    pub(crate) async fn send_streaming(
        &self,
        request: http::Request<ReqBody>,
    ) -> Result<http::Response<Incoming>, TransportError> {
        // The wait covers sending the body too: allow it at least `MIN_SEND_RATE`, so a
        // slow link can still send a 5 GB part, and a dead one is still noticed.
        let body_len = http_body::Body::size_hint(request.body())
            .exact()
            .unwrap_or(0);
        let budget = self.timeouts.request + Duration::from_secs(body_len / MIN_SEND_RATE);
        match tokio::time::timeout(budget, self.client.request(request)).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) => Err(map_client_error(e)),
            Err(_) => Err(TransportError::new(
                TransportErrorKind::Timeout,
                "no reply within the request timeout",
            )),
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

/// A streamed body whose length is known: hyper and the timeout budget see it.
struct KnownLength<B> {
    inner: B,
    len: u64,
}

impl<B: http_body::Body + Unpin> http_body::Body for KnownLength<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.inner).poll_frame(cx)
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
