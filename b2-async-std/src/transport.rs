//! HTTP over surf, on our own async-h1 + futures-rustls (ring) client: the only file (with its
//! `h1` submodule) that names surf, http-types, async-h1 or rustls, and the only place where
//! `http` and `http-types` values are converted into each other.

mod h1;

use std::io;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use b2_proto::{TransportError, TransportErrorKind};
use bytes::Bytes;
use futures_util::io::{AsyncReadExt as _, AsyncSeekExt as _};

/// A request body: bytes in memory or a reader of known length.
pub(crate) type ReqBody = http_types::Body;

/// Timeouts of the transport.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    /// Connecting, TLS handshake included.
    pub(crate) connect: Duration,
    /// The wait for a reply's head once the request was sent.
    pub(crate) request: Duration,
    /// Longest silence while sending a request or reading a reply body.
    pub(crate) idle: Duration,
}

/// A pooled HTTPS (and plain HTTP, for local servers) client.
#[derive(Clone)]
pub(crate) struct Transport {
    client: surf::Client,
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
    tls_config_with(roots)
}

fn tls_config_with(roots: rustls::RootCertStore) -> Result<rustls::ClientConfig, b2_proto::Error> {
    let invalid = |reason: String| b2_proto::InvalidInput::Argument {
        what: "TLS configuration",
        reason,
    };
    // The ring provider is passed explicitly: a process with two providers installed would panic.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(e.to_string()))?;
    if roots.is_empty() {
        return Err(invalid(
            "no trusted root certificates (enable `webpki-roots` or `native-roots`)".into(),
        )
        .into());
    }
    let mut config = builder.with_root_certificates(roots).with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

impl Transport {
    pub(crate) fn new(timeouts: Timeouts) -> Result<Self, b2_proto::Error> {
        Ok(Self::with_tls(timeouts, tls_config()?))
    }

    /// A transport with this TLS configuration.
    pub(crate) fn with_tls(timeouts: Timeouts, tls: rustls::ClientConfig) -> Self {
        let h1 = h1::H1Client::new(Arc::new(tls), timeouts);
        // Never `surf::Client::new()`: without a built-in backend it panics.
        let client = surf::Client::with_http_client(h1);
        Self { client, timeouts }
    }

    /// Sends a request and returns the reply with its body still streaming.
    ///
    /// An HTTP error status is a reply like any other, never an error.
    pub(crate) async fn send_streaming(
        &self,
        request: http::Request<ReqBody>,
    ) -> Result<http::Response<Incoming>, TransportError> {
        let request = to_http_types(request)?;
        // The client applies the connect, send and reply-head timeouts.
        let response = self.client.send(request).await.map_err(from_surf_error)?;
        let mut response: http_types::Response = response.into();
        let body = response.take_body();
        from_http_types(&response, Incoming(body))
    }

    /// Sends a request and reads the whole reply.
    ///
    /// An HTTP error status is a reply like any other, never an error.
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
        let mut buf = bytes::BytesMut::with_capacity(body.0.len().unwrap_or(0).min(1 << 20));
        while let Some(chunk) = self.next_frame(&mut body).await? {
            buf.extend_from_slice(&chunk);
        }
        Ok(http::Response::from_parts(parts, buf.freeze()))
    }

    /// The next chunk of a reply body (at most 64 KiB), with the idle timeout; `None` at its end.
    pub(crate) async fn next_frame(
        &self,
        body: &mut Incoming,
    ) -> Result<Option<Bytes>, TransportError> {
        let mut chunk = vec![0u8; FRAME];
        let n = async_std::future::timeout(self.timeouts.idle, body.0.read(&mut chunk))
            .await
            .map_err(|_| TransportError::new(TransportErrorKind::Timeout, "reply body stalled"))?
            .map_err(|e| {
                let kind = match e.kind() {
                    io::ErrorKind::TimedOut => TransportErrorKind::Timeout,
                    _ => TransportErrorKind::Body,
                };
                TransportError::new(kind, e)
            })?;
        if n == 0 {
            return Ok(None);
        }
        // A copy of what arrived: the chunk is not kept at its full size for a few bytes.
        Ok(chunk.get(..n).map(Bytes::copy_from_slice))
    }
}

/// The most read from a reply body at once.
const FRAME: usize = 64 * 1024;

/// A reply body still arriving; its connection returns to the pool once it is read to the end.
pub(crate) struct Incoming(http_types::Body);

impl std::fmt::Debug for Incoming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Incoming")
            .field("len", &self.0.len())
            .finish_non_exhaustive()
    }
}

fn other(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> TransportError {
    TransportError::new(TransportErrorKind::Other, e)
}

/// `http::Request` → `http_types::Request`, keeping the exact request target beside the URL
/// (which would normalize it) and adding no header of its own.
fn to_http_types(request: http::Request<ReqBody>) -> Result<http_types::Request, TransportError> {
    let (parts, body) = request.into_parts();
    if let Some(declared) = parts.headers.get(http::header::CONTENT_LENGTH) {
        let declared = declared.to_str().ok().and_then(|v| v.parse::<u64>().ok());
        if declared != body.len().map(|l| l as u64) {
            return Err(other(
                "the request declares a Content-Length other than its body's",
            ));
        }
    }
    let url = http_types::Url::parse(&parts.uri.to_string()).map_err(other)?;
    let method: http_types::Method = parts
        .method
        .as_str()
        .parse()
        .map_err(|e| other(format!("unsupported method {}: {e}", parts.method)))?;
    let mut req = http_types::Request::new(method, url);
    for (name, value) in &parts.headers {
        // `to_str` admits only visible ASCII, which http-types accepts without panicking.
        let value = value.to_str().map_err(other)?;
        req.append_header(name.as_str(), value);
    }
    req.set_body(body);
    if !parts.headers.contains_key(http::header::CONTENT_TYPE) {
        // Setting a body made http-types add one.
        req.remove_header(http_types::headers::CONTENT_TYPE);
    }
    let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    req.ext_mut().insert(h1::RawTarget(target.to_owned()));
    Ok(req)
}

/// `http_types::Response` → `http::Response`, with the status and headers exactly as the
/// server sent them.
fn from_http_types<B>(
    response: &http_types::Response,
    body: B,
) -> Result<http::Response<B>, TransportError> {
    let mut out = http::Response::new(body);
    *out.version_mut() = http::Version::HTTP_11;
    if let Some(raw) = response.ext().get::<h1::RawHead>() {
        *out.status_mut() = raw.status;
        *out.headers_mut() = raw.headers.clone();
        return Ok(out);
    }
    *out.status_mut() = http::StatusCode::from_u16(response.status().into()).map_err(other)?;
    for (name, values) in response.iter() {
        let name = http::HeaderName::from_bytes(name.as_str().as_bytes()).map_err(other)?;
        for value in values.iter() {
            let value = http::HeaderValue::from_str(value.as_str()).map_err(other)?;
            out.headers_mut().append(name.clone(), value);
        }
    }
    Ok(out)
}

fn from_surf_error(e: surf::Error) -> TransportError {
    match e.downcast::<TransportError>() {
        Ok(e) => e,
        Err(e) => other(e.to_string()),
    }
}

/// A body of bytes in memory.
pub(crate) fn bytes_body(bytes: Bytes) -> ReqBody {
    let len = bytes.len();
    http_types::Body::from_reader(futures_util::io::Cursor::new(bytes), Some(len))
}

/// A body streamed from `range` of the file at `path`, read in chunks of `chunk` bytes.
pub(crate) async fn file_body(path: &Path, range: Range<u64>, chunk: usize) -> io::Result<ReqBody> {
    let mut file = async_std::fs::File::open(path).await?;
    file.seek(io::SeekFrom::Start(range.start)).await?;
    let len = range.end.saturating_sub(range.start);
    let reader = futures_util::io::BufReader::with_capacity(chunk, file.take(len));
    let len = usize::try_from(len).map_err(io::Error::other)?;
    Ok(http_types::Body::from_reader(reader, Some(len)))
}

/// Reads `range` of the file at `path` into memory.
pub(crate) async fn read_range(path: &Path, range: Range<u64>) -> io::Result<Bytes> {
    let mut file = async_std::fs::File::open(path).await?;
    file.seek(io::SeekFrom::Start(range.start)).await?;
    let len = usize::try_from(range.end.saturating_sub(range.start)).map_err(io::Error::other)?;
    let mut buf = vec![0u8; len];
    file.read_exact(&mut buf).await?;
    Ok(Bytes::from(buf))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_server::{Reply, Server, test_cert_der};

    fn trusting_test_cert() -> Transport {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(test_cert_der()).expect("root");
        Transport::with_tls(
            crate::client::DEFAULT_TIMEOUTS,
            tls_config_with(roots).expect("tls"),
        )
    }

    #[async_std::test]
    async fn requests_go_over_tls_on_one_reused_connection() {
        let server = Server::start_tls(|req| {
            let body = format!(r#"{{"got":{}}}"#, req.body.len());
            if req.nth == 0 {
                Reply::json(200, &body)
            } else {
                Reply::Raw(
                    format!(
                        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
                        body.len()
                    )
                    .into_bytes(),
                )
            }
        });
        let transport = trusting_test_cert();
        for body in [&b"hello"[..], &[7u8; 100_000][..], &b""[..]] {
            let request = http::Request::post(format!("{}/b2api/v4/b2_x", server.base))
                .header("content-type", "application/octet-stream")
                .body(bytes_body(Bytes::copy_from_slice(body)))
                .expect("request");
            let reply = transport.send(request).await.expect("reply");
            assert_eq!(reply.status(), 200);
            assert_eq!(
                reply.body().as_ref(),
                format!(r#"{{"got":{}}}"#, body.len()).as_bytes()
            );
        }
        let requests = server.requests();
        assert_eq!(requests.len(), 3);
        assert_eq!(requests[1].body, vec![7u8; 100_000]);
        assert_eq!(requests[2].header("content-length"), Some("0"));
        assert!(requests.iter().all(|r| r.conn == requests[0].conn));
    }

    #[async_std::test]
    async fn large_replies_arrive_whole_with_either_framing() {
        fn pattern(len: usize) -> Vec<u8> {
            (0..len).map(|i| (i % 253) as u8).collect()
        }
        let server = Server::start_tls(|req| {
            let data = pattern(2_000_003);
            let mut reply = Vec::new();
            if req.nth == 0 {
                reply.extend_from_slice(
                    format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", data.len()).as_bytes(),
                );
                reply.extend_from_slice(&data);
            } else {
                reply.extend_from_slice(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
                for part in data.chunks(700_001) {
                    reply.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
                    reply.extend_from_slice(part);
                    reply.extend_from_slice(b"\r\n");
                }
                reply.extend_from_slice(b"0\r\n\r\n");
            }
            Reply::Raw(reply)
        });
        let transport = trusting_test_cert();
        for _ in 0..2 {
            let request = http::Request::get(format!("{}/file/b/big", server.base))
                .body(bytes_body(Bytes::new()))
                .expect("request");
            let reply = transport.send(request).await.expect("reply");
            assert!(reply.body().as_ref() == pattern(2_000_003).as_slice());
        }
        let requests = server.requests();
        assert_eq!(requests[0].conn, requests[1].conn);
    }

    #[async_std::test]
    async fn connections_are_reused_after_replies_without_a_body() {
        let server = Server::start(|req| match req.nth {
            0 => Reply::Raw(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec()),
            1 => Reply::Raw(b"HTTP/1.1 204 No Content\r\n\r\n".to_vec()),
            2 => Reply::Raw(b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n".to_vec()),
            _ => Reply::json(200, "{}"),
        });
        let transport = trusting_test_cert();
        for method in ["GET", "GET", "HEAD", "GET"] {
            let request = http::Request::builder()
                .method(method)
                .uri(format!("{}/x", server.base))
                .body(bytes_body(Bytes::new()))
                .expect("request");
            let reply = transport.send(request).await.expect("reply");
            assert!(reply.status().is_success());
            if method == "HEAD" {
                assert_eq!(reply.headers()["content-length"], "1234");
                assert!(reply.body().is_empty());
            }
        }
        let requests = server.requests();
        assert_eq!(requests.len(), 4);
        assert!(requests.iter().all(|r| r.conn == requests[0].conn));
    }

    #[async_std::test]
    async fn a_declared_length_other_than_the_body_is_refused_before_sending() {
        let server = Server::start(|_| Reply::json(200, "{}"));
        let request = http::Request::post(format!("{}/x", server.base))
            .header("content-length", "9")
            .body(bytes_body(Bytes::from_static(b"abc")))
            .expect("request");
        let error = trusting_test_cert()
            .send(request)
            .await
            .expect_err("mismatch");
        assert_eq!(error.kind, TransportErrorKind::Other);
        assert!(server.requests().is_empty());
    }
}
