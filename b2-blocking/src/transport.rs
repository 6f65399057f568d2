//! HTTP over ureq 3 + rustls (ring): the only file that names ureq.

use std::io::{self, Read as _, Seek as _};
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use b2_proto::{TransportError, TransportErrorKind};
use bytes::Bytes;
use http::{Method, header};
use ureq::tls::{RootCerts, TlsConfig, TlsProvider};

/// A request body: bytes in memory or a byte range of a file, streamed.
pub(crate) enum ReqBody {
    Bytes(Bytes),
    File(io::BufReader<io::Take<std::fs::File>>, u64),
}

impl ReqBody {
    fn len(&self) -> u64 {
        match self {
            Self::Bytes(b) => b.len() as u64,
            Self::File(_, len) => *len,
        }
    }
}

/// Timeouts of the transport.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    /// Resolving and connecting, TLS handshake included.
    pub(crate) connect: Duration,
    /// The wait for a reply's head once the request was sent.
    pub(crate) request: Duration,
    /// Longest silence while sending a request or reading a download.
    pub(crate) idle: Duration,
}

/// A pooled HTTPS (and plain HTTP, for local servers) client.
#[derive(Clone)]
pub(crate) struct Transport {
    agent: ureq::Agent,
    timeouts: Timeouts,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("timeouts", &self.timeouts)
            .finish_non_exhaustive()
    }
}

#[cfg_attr(
    all(feature = "webpki-roots", not(feature = "native-roots")),
    allow(dead_code)
)]
fn invalid(reason: String) -> b2_proto::Error {
    b2_proto::InvalidInput::Argument {
        what: "TLS configuration",
        reason,
    }
    .into()
}

fn root_certs() -> Result<RootCerts, b2_proto::Error> {
    #[cfg(feature = "native-roots")]
    {
        let found = rustls_native_certs::load_native_certs();
        let mut certs: Vec<ureq::tls::Certificate<'static>> = found
            .certs
            .iter()
            .map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned())
            .collect();
        // Both features: trust Mozilla's roots as well.
        #[cfg(feature = "webpki-roots")]
        if certs.is_empty() {
            return Ok(RootCerts::WebPki);
        }
        if certs.is_empty() {
            return Err(invalid(
                "the operating system has no root certificates".into(),
            ));
        }
        certs.shrink_to_fit();
        Ok(RootCerts::Specific(Arc::new(certs)))
    }
    #[cfg(all(feature = "webpki-roots", not(feature = "native-roots")))]
    {
        Ok(RootCerts::WebPki)
    }
    #[cfg(not(any(feature = "webpki-roots", feature = "native-roots")))]
    {
        Err(invalid(
            "no trusted root certificates (enable `webpki-roots` or `native-roots`)".into(),
        ))
    }
}

impl Transport {
    pub(crate) fn new(timeouts: Timeouts) -> Result<Self, b2_proto::Error> {
        Ok(Self::with_roots(timeouts, root_certs()?))
    }

    /// A transport trusting `roots`.
    pub(crate) fn with_roots(timeouts: Timeouts, roots: RootCerts) -> Self {
        // The ring provider is passed explicitly: a process with two providers installed would
        // otherwise make rustls refuse to pick one.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = TlsConfig::builder()
            .provider(TlsProvider::Rustls)
            .unversioned_rustls_crypto_provider(provider)
            .root_certs(roots)
            .build();
        let agent = ureq::Agent::config_builder()
            .tls_config(tls)
            // B2's error statuses carry a JSON body that b2-proto parses.
            .http_status_as_error(false)
            // B2 does not redirect; a redirect is returned as it came, never followed with
            // the authorization header.
            .max_redirects(0)
            .max_redirects_will_error(false)
            .proxy(None)
            // Bodies are passed on exactly as stored: no decompression.
            .accept_encoding(ureq::config::AutoHeaderValue::None)
            .no_delay(true)
            .timeout_resolve(Some(timeouts.connect))
            .timeout_connect(Some(timeouts.connect))
            // Sending a large body may take as long as it needs while it progresses: each
            // write is bounded by the idle timeout, set per request.
            .timeout_recv_response(Some(timeouts.request))
            .max_idle_age(Duration::from_secs(60))
            // Keep a connection per thread in use (ureq keeps 3 per host by default, so a 4th
            // concurrent transfer would reconnect again and again).
            .max_idle_connections(64)
            .max_idle_connections_per_host(32)
            .build()
            .new_agent();
        Self { agent, timeouts }
    }

    /// Sends a request and reads the whole reply.
    ///
    /// An HTTP error status is a reply like any other, never an error.
    pub(crate) fn send(
        &self,
        request: http::Request<ReqBody>,
    ) -> Result<http::Response<Bytes>, TransportError> {
        self.send_streaming(request)?.collect()
    }

    /// Sends a request and returns the reply's head with its body still to be read.
    pub(crate) fn send_streaming(
        &self,
        request: http::Request<ReqBody>,
    ) -> Result<Streaming, TransportError> {
        let (mut parts, body) = request.into_parts();
        let len = body.len();
        let head_only = parts.method == Method::HEAD;
        let bodiless = len == 0 && (parts.method == Method::GET || head_only);
        if !bodiless {
            check_content_length(&mut parts.headers, len)?;
        }
        // A reply's head may come late after an upload or a server-side copy; a download's
        // body must not stall. ureq has one per-read limit for head and body alike, so it is
        // the idle limit for reads of bodies that are streams (GET) and the request limit
        // for calls whose server works before it answers.
        let per_read = if parts.method == Method::GET || head_only {
            self.timeouts.idle
        } else {
            self.timeouts.request.max(self.timeouts.idle)
        };
        let result = match body {
            _ if bodiless => self.run(
                http::Request::from_parts(parts, ureq::SendBody::none()),
                per_read,
            ),
            ReqBody::Bytes(bytes) => self.run(
                http::Request::from_parts(
                    parts,
                    ureq::SendBody::from_owned_reader(io::Cursor::new(bytes)),
                ),
                per_read,
            ),
            ReqBody::File(reader, _) => self.run(
                http::Request::from_parts(parts, ureq::SendBody::from_owned_reader(reader)),
                per_read,
            ),
        };
        let response = result.map_err(map_error)?;
        let (parts, body) = response.into_parts();
        let expected = expected_body_length(&parts, head_only);
        let reader = (!head_only).then(|| body.into_reader());
        Ok(Streaming {
            parts,
            body: BodyStream {
                reader,
                expected,
                read: 0,
            },
        })
    }

    fn run(
        &self,
        request: http::Request<ureq::SendBody<'static>>,
        per_read: Duration,
    ) -> Result<http::Response<ureq::Body>, ureq::Error> {
        let request = self
            .agent
            .configure_request(request)
            .timeout_per_read(Some(per_read))
            .timeout_per_write(Some(self.timeouts.idle))
            .build();
        self.agent.run(request)
    }
}

/// Sets `Content-Length` to the body's length, or checks the one b2-proto set.
fn check_content_length(headers: &mut http::HeaderMap, len: u64) -> Result<(), TransportError> {
    match headers.get(header::CONTENT_LENGTH) {
        Some(value) => {
            let declared = value.to_str().ok().and_then(|v| v.parse::<u64>().ok());
            if declared != Some(len) {
                return Err(TransportError::new(
                    TransportErrorKind::Other,
                    format!(
                        "the request declares a Content-Length other than its body's {len} bytes"
                    ),
                ));
            }
        }
        None => {
            headers.insert(header::CONTENT_LENGTH, http::HeaderValue::from(len));
        }
    }
    Ok(())
}

/// The length a reply's body must have: its `Content-Length`, unless it has no body or another
/// framing.
fn expected_body_length(parts: &http::response::Parts, head_only: bool) -> Option<u64> {
    let status = parts.status.as_u16();
    if head_only || status == 204 || status == 304 || (100..200).contains(&status) {
        return None;
    }
    if parts.headers.contains_key(header::TRANSFER_ENCODING) {
        return None;
    }
    parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
}

/// A reply's head, its body still to be read.
pub(crate) struct Streaming {
    pub(crate) parts: http::response::Parts,
    pub(crate) body: BodyStream,
}

impl Streaming {
    /// Reads the rest of the body.
    pub(crate) fn collect(mut self) -> Result<http::Response<Bytes>, TransportError> {
        let mut buf = bytes::BytesMut::new();
        while let Some(chunk) = self.body.next_chunk()? {
            buf.extend_from_slice(&chunk);
        }
        Ok(http::Response::from_parts(self.parts, buf.freeze()))
    }
}

/// A reply body being read, checked against its declared length.
pub(crate) struct BodyStream {
    reader: Option<ureq::BodyReader<'static>>,
    expected: Option<u64>,
    read: u64,
}

/// The most read from a reply body at once.
const READ_CHUNK: usize = 64 * 1024;

impl BodyStream {
    /// The next bytes of the body; `None` at its end. A body that ends before its
    /// `Content-Length` is a [`TransportErrorKind::Body`] error; a silence longer than the
    /// per-read limit a [`TransportErrorKind::Timeout`].
    pub(crate) fn next_chunk(&mut self) -> Result<Option<Bytes>, TransportError> {
        let Some(reader) = &mut self.reader else {
            return Ok(None);
        };
        let mut buf = vec![0u8; READ_CHUNK];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => {
                    self.reader = None;
                    return match self.expected {
                        Some(declared) if declared != self.read => Err(TransportError::new(
                            TransportErrorKind::Body,
                            format!(
                                "the reply body ended after {} of {declared} bytes",
                                self.read
                            ),
                        )),
                        _ => Ok(None),
                    };
                }
                Ok(n) => {
                    self.read += n as u64;
                    buf.truncate(n);
                    return Ok(Some(Bytes::from(buf)));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.reader = None;
                    return Err(map_body_error(e));
                }
            }
        }
    }
}

fn map_error(e: ureq::Error) -> TransportError {
    let kind = match &e {
        ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => TransportErrorKind::Connect,
        ureq::Error::Timeout(t) => match t {
            // Nothing reached the server yet.
            ureq::Timeout::Resolve | ureq::Timeout::Connect => TransportErrorKind::Connect,
            _ => TransportErrorKind::Timeout,
        },
        ureq::Error::Io(io) => map_io_kind(io),
        // A failed handshake: the request was never sent.
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) | ureq::Error::Pem(_) => {
            TransportErrorKind::Connect
        }
        ureq::Error::Protocol(_) => TransportErrorKind::Interrupted,
        _ => TransportErrorKind::Other,
    };
    TransportError::new(kind, e)
}

fn map_io_kind(e: &io::Error) -> TransportErrorKind {
    // ureq reports TLS failures as I/O errors without saying in which phase they happened;
    // these rustls errors can only come from a handshake, before the request was sent.
    if let Some(tls) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        return match tls {
            rustls::Error::InvalidCertificate(_)
            | rustls::Error::NoCertificatesPresented
            | rustls::Error::PeerIncompatible(_)
            | rustls::Error::InappropriateHandshakeMessage { .. }
            | rustls::Error::HandshakeNotComplete => TransportErrorKind::Connect,
            _ => TransportErrorKind::Interrupted,
        };
    }
    match e.kind() {
        io::ErrorKind::ConnectionRefused
        | io::ErrorKind::AddrNotAvailable
        | io::ErrorKind::HostUnreachable
        | io::ErrorKind::NetworkUnreachable => TransportErrorKind::Connect,
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => TransportErrorKind::Timeout,
        _ => TransportErrorKind::Interrupted,
    }
}

fn map_body_error(e: io::Error) -> TransportError {
    // ureq's body reader wraps its own errors, timeouts included, in an I/O error.
    let timed_out = match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<ureq::Error>())
    {
        Some(ureq::Error::Timeout(_)) => true,
        Some(ureq::Error::Io(io)) => io.kind() == io::ErrorKind::TimedOut,
        _ => matches!(
            e.kind(),
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
        ),
    };
    let kind = if timed_out {
        TransportErrorKind::Timeout
    } else {
        TransportErrorKind::Body
    };
    TransportError::new(kind, e)
}

/// A body of bytes in memory.
pub(crate) fn bytes_body(bytes: Bytes) -> ReqBody {
    ReqBody::Bytes(bytes)
}

/// A body streamed from `range` of the file at `path`, read in chunks of `chunk` bytes.
pub(crate) fn file_body(path: &Path, range: Range<u64>, chunk: usize) -> io::Result<ReqBody> {
    let mut file = std::fs::File::open(path)?;
    file.seek(io::SeekFrom::Start(range.start))?;
    let len = range.end.saturating_sub(range.start);
    Ok(ReqBody::File(
        io::BufReader::with_capacity(chunk, file.take(len)),
        len,
    ))
}

/// Reads `range` of the file at `path` into memory.
pub(crate) fn read_range(path: &Path, range: Range<u64>) -> io::Result<Bytes> {
    let mut file = std::fs::File::open(path)?;
    file.seek(io::SeekFrom::Start(range.start))?;
    let len = usize::try_from(range.end.saturating_sub(range.start)).map_err(io::Error::other)?;
    let mut buf = vec![0u8; len];
    file.read_exact(&mut buf)?;
    Ok(Bytes::from(buf))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_server::{Reply, Server, test_cert_der};

    fn trusting_test_cert() -> Transport {
        let cert = ureq::tls::Certificate::from_der(test_cert_der().as_ref()).to_owned();
        Transport::with_roots(
            crate::client::DEFAULT_TIMEOUTS,
            RootCerts::Specific(Arc::new(vec![cert])),
        )
    }

    #[test]
    fn requests_go_over_tls_on_one_reused_connection() {
        let server =
            Server::start_tls(|req| Reply::json(200, &format!(r#"{{"got":{}}}"#, req.body.len())));
        let transport = trusting_test_cert();
        for body in [&b"hello"[..], &[7u8; 100_000][..]] {
            let request = http::Request::post(format!("{}/b2api/v4/b2_x", server.base))
                .header("content-type", "application/octet-stream")
                .body(bytes_body(Bytes::copy_from_slice(body)))
                .expect("request");
            let reply = transport.send(request).expect("reply");
            assert_eq!(reply.status(), 200);
            assert_eq!(
                reply.body().as_ref(),
                format!(r#"{{"got":{}}}"#, body.len()).as_bytes()
            );
        }
        let requests = server.requests();
        assert_eq!(requests.len(), 2);
        assert_eq!(requests[1].body, vec![7u8; 100_000]);
        assert_eq!(requests[0].conn, requests[1].conn);
    }

    #[test]
    fn large_replies_arrive_whole_with_either_framing() {
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
            let reply = transport.send(request).expect("reply");
            assert!(reply.body().as_ref() == pattern(2_000_003).as_slice());
        }
        let requests = server.requests();
        assert_eq!(requests[0].conn, requests[1].conn);
    }

    #[test]
    fn connections_are_reused_after_replies_without_a_body() {
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
            let reply = transport.send(request).expect("reply");
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

    #[test]
    fn a_declared_length_other_than_the_body_is_refused_before_sending() {
        let server = Server::start(|_| Reply::json(200, "{}"));
        let request = http::Request::post(format!("{}/x", server.base))
            .header("content-length", "9")
            .body(bytes_body(Bytes::from_static(b"abc")))
            .expect("request");
        let error = trusting_test_cert().send(request).expect_err("mismatch");
        assert_eq!(error.kind, TransportErrorKind::Other);
        assert!(server.requests().is_empty());
    }
}
