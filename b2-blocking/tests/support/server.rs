//! A tiny scripted HTTP/1.1 server on 127.0.0.1 for adapter tests: it records every request
//! and answers each with what the test's script says, byte for byte.
//!
//! Shared by the `b2-blocking` and `b2-async-std` tests. It runs on std threads, so it serves
//! async and blocking clients alike.

#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A request as it arrived.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// The request target exactly as sent (path and query).
    pub target: String,
    /// Header names lowercased, values as sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Which connection it came on (numbered from 1 in order of acceptance).
    pub conn: usize,
    /// How many requests for this path came before it (0 for the first).
    pub nth: usize,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The path without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }
}

/// What to answer.
pub enum Reply {
    /// Write these bytes and keep the connection open for the next request.
    Raw(Vec<u8>),
    /// Write these bytes and close the connection.
    Cut(Vec<u8>),
    /// Write these bytes, stay silent this long, then close the connection.
    Stall(Vec<u8>, Duration),
}

impl Reply {
    /// A JSON reply with a Content-Length, keeping the connection.
    pub fn json(status: u16, body: &str) -> Self {
        Self::Raw(
            format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nDate: Sun, 22 Nov 2026 05:00:00 GMT\r\n\r\n{body}",
                body.len()
            )
            .into_bytes(),
        )
    }

    /// A B2 error reply.
    pub fn error(status: u16, code: &str) -> Self {
        Self::json(
            status,
            &format!(r#"{{"status":{status},"code":"{code}","message":"scripted"}}"#),
        )
    }
}

type Handler = dyn Fn(&Recorded) -> Reply + Send + Sync;

/// The server. Dropping it does not stop it; its threads end with the test process.
pub struct Server {
    pub base: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

impl Server {
    /// Starts a server answering with `handler`.
    pub fn start(handler: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> Self {
        Self::start_with(None, handler)
    }

    /// Starts a server speaking HTTPS with [`TEST_CERT`] (for 127.0.0.1).
    pub fn start_tls(handler: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> Self {
        Self::start_with(Some(tls_config(TEST_CERT, TEST_KEY)), handler)
    }

    fn start_with(
        tls: Option<Arc<rustls::ServerConfig>>,
        handler: impl Fn(&Recorded) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let scheme = if tls.is_some() { "https" } else { "http" };
        let base = format!("{scheme}://{}", listener.local_addr().expect("addr"));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let counts = Arc::new(Mutex::new(HashMap::<String, usize>::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let conns = Arc::new(AtomicUsize::new(0));
        {
            let requests = requests.clone();
            std::thread::spawn(move || {
                // Bounded: a test never opens this many connections.
                for stream in listener.incoming().take(500) {
                    let Ok(stream) = stream else { continue };
                    let conn = conns.fetch_add(1, Ordering::SeqCst) + 1;
                    let (requests, counts, handler, tls) = (
                        requests.clone(),
                        counts.clone(),
                        handler.clone(),
                        tls.clone(),
                    );
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
                    std::thread::spawn(move || match tls {
                        None => serve(stream, conn, &requests, &counts, &*handler),
                        Some(config) => {
                            let Ok(tls) = rustls::ServerConnection::new(config) else {
                                return;
                            };
                            let stream = rustls::StreamOwned::new(tls, stream);
                            serve(stream, conn, &requests, &counts, &*handler);
                        }
                    });
                }
            });
        }
        Self { base, requests }
    }

    /// Every request so far, in order of arrival.
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    /// The requests for paths ending with `suffix`.
    pub fn requests_to(&self, suffix: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.path().ends_with(suffix))
            .collect()
    }
}

trait Close {
    /// Closes the connection after what was written.
    fn close(&mut self);
}

impl Close for TcpStream {
    fn close(&mut self) {
        let _ = self.flush();
        let _ = self.shutdown(Shutdown::Both);
    }
}

impl Close for rustls::StreamOwned<rustls::ServerConnection, TcpStream> {
    fn close(&mut self) {
        self.conn.send_close_notify();
        let _ = self.flush();
        let _ = self.sock.shutdown(Shutdown::Both);
    }
}

fn serve<S: Read + Write + Close>(
    stream: S,
    conn: usize,
    requests: &Mutex<Vec<Recorded>>,
    counts: &Mutex<HashMap<String, usize>>,
    handler: &Handler,
) {
    let mut reader = BufReader::new(stream);
    loop {
        let Some(mut request) = read_request(&mut reader, conn) else {
            return;
        };
        {
            let mut counts = counts.lock().unwrap();
            let n = counts.entry(request.path().to_owned()).or_insert(0);
            request.nth = *n;
            *n += 1;
        }
        requests.lock().unwrap().push(request.clone());
        let writer = reader.get_mut();
        match handler(&request) {
            Reply::Raw(bytes) => {
                if writer
                    .write_all(&bytes)
                    .and_then(|()| writer.flush())
                    .is_err()
                {
                    return;
                }
            }
            Reply::Cut(bytes) => {
                let _ = writer.write_all(&bytes);
                writer.close();
                return;
            }
            Reply::Stall(bytes, silence) => {
                let _ = writer.write_all(&bytes).and_then(|()| writer.flush());
                std::thread::sleep(silence);
                writer.close();
                return;
            }
        }
    }
}

fn read_request<S: Read>(reader: &mut BufReader<S>, conn: usize) -> Option<Recorded> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.trim_end().splitn(3, ' ');
    let method = parts.next()?.to_owned();
    let target = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let len = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .map_or(0, |(_, v)| v.parse::<usize>().expect("content-length"));
    assert!(
        !headers.iter().any(|(n, _)| n == "transfer-encoding"),
        "the clients always send a Content-Length"
    );
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some(Recorded {
        method,
        target,
        headers,
        body,
        conn,
        nth: 0,
    })
}

/// The JSON of a `b2_authorize_account` reply whose URLs point at `base`.
pub fn authorize_json(base: &str, token: &str) -> String {
    format!(
        r#"{{"accountId":"acc1","authorizationToken":"{token}","apiInfo":{{"storageApi":{{"apiUrl":"{base}","downloadUrl":"{base}","s3ApiUrl":"{base}","recommendedPartSize":100000000,"absoluteMinimumPartSize":5000000,"allowed":{{"buckets":null,"capabilities":["listBuckets","listKeys"],"namePrefix":null}},"infoType":"storageApi"}}}},"applicationKeyExpirationTimestamp":null,"unknownField":1}}"#
    )
}

/// A `b2_list_buckets` reply with one bucket.
pub const ONE_BUCKET: &str = r#"{"buckets":[{"accountId":"acc1","bucketId":"b1","bucketName":"kittens","bucketType":"allPrivate","bucketInfo":{},"corsRules":[],"lifecycleRules":[],"options":[],"revision":1}]}"#;

/// An `https://` base URL served by something that does not speak TLS: it answers any
/// handshake with a plain HTTP error and closes.
pub fn not_tls() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("https://{}", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        for stream in listener.incoming().take(20) {
            let Ok(mut stream) = stream else { continue };
            let mut hello = [0u8; 512];
            let _ = stream.read(&mut hello);
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
            let _ = stream.shutdown(Shutdown::Both);
        }
    });
    base
}

/// A self-signed certificate for 127.0.0.1 and `localhost` that no client trusts.
const UNTRUSTED_CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIBmzCCAUGgAwIBAgIUH8xPJKCBAKdHsLKAPQen8Y3X3JUwCgYIKoZIzj0EAwIw\nFDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTEyMjA1MDYxNVoYDzIxMjYxMDI5\nMDUwNjE1WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO\nPQMBBwNCAAQ55OzHd4U79XmJhUM2+dhZ6bhrgXo4T5f5iAtvpzwKHUQ2bA03XLg2\ntlXHUBcIKaMr5cF8S37AVa/itTqhbGwqo28wbTAdBgNVHQ4EFgQUebQ+weEFMcYp\nnw5TyVgxvgfc3jAwHwYDVR0jBBgwFoAUebQ+weEFMcYpnw5TyVgxvgfc3jAwDwYD\nVR0TAQH/BAUwAwEB/zAaBgNVHREEEzARhwR/AAABgglsb2NhbGhvc3QwCgYIKoZI\nzj0EAwIDSAAwRQIhANHVJ/DRkcL5gEN+RDYd77sIOe1sMogngELVQgauXVKVAiAj\npcChWKbxIwXYtoQKF9ZVOtFxxrj0BzjS8eRTtm9IMA==\n-----END CERTIFICATE-----\n";
const UNTRUSTED_KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgYFhYa0qEOhXChLqU\nJpV2B9ie2yq+TMyF6o5IgFDhx3ihRANCAAQ55OzHd4U79XmJhUM2+dhZ6bhrgXo4\nT5f5iAtvpzwKHUQ2bA03XLg2tlXHUBcIKaMr5cF8S37AVa/itTqhbGwq\n-----END PRIVATE KEY-----\n";

/// An `https://` base URL served with a certificate no client trusts: every handshake must
/// fail before a request is sent. Counts the requests that got through anyway.
pub fn untrusted_tls() -> (String, Arc<AtomicUsize>) {
    let config = tls_config(UNTRUSTED_CERT, UNTRUSTED_KEY);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("https://{}", listener.local_addr().expect("addr"));
    let requests = Arc::new(AtomicUsize::new(0));
    let counted = requests.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(20) {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let Ok(mut conn) = rustls::ServerConnection::new(config.clone()) else {
                continue;
            };
            let mut tls = rustls::Stream::new(&mut conn, &mut stream);
            let mut byte = [0u8; 1];
            if matches!(tls.read(&mut byte), Ok(1)) {
                counted.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    (base, requests)
}

/// A certificate for 127.0.0.1 that tests may add to a client's roots.
pub const TEST_CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIBvDCCAWKgAwIBAgIUBWITwFNenYDuMoUUJSDSGO0iC60wCgYIKoZIzj0EAwIw\nFDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTEyMjA1MDY1OFoYDzIxMjYxMDI5\nMDUwNjU4WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO\nPQMBBwNCAAREC/G9UXk179kyljDClX97YvzFWFZ69ERqtnW7QiFQj4jlePuRKM3b\nMCynGX8hSxKcZc4oKWfGxUcgyrTX3+xoo4GPMIGMMB0GA1UdDgQWBBSL/BTNGS0h\nH/q3z8a4NsZ820GrdTAfBgNVHSMEGDAWgBSL/BTNGS0hH/q3z8a4NsZ820GrdTAa\nBgNVHREEEzARhwR/AAABgglsb2NhbGhvc3QwDAYDVR0TAQH/BAIwADALBgNVHQ8E\nBAMCB4AwEwYDVR0lBAwwCgYIKwYBBQUHAwEwCgYIKoZIzj0EAwIDSAAwRQIhALIg\nHBqIRnBIaQ7llZoA2ADr+YCranlZiiTviuUechvgAiAm8aDKLGrOnh7DFJrG6jG1\n96mAWwf41Xkta8sHc0j70w==\n-----END CERTIFICATE-----\n";
const TEST_KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQga95t+2TsA5xnjBWS\nqlfnMZIaktdnUwuC6oB4sRvvhKmhRANCAAREC/G9UXk179kyljDClX97YvzFWFZ6\n9ERqtnW7QiFQj4jlePuRKM3bMCynGX8hSxKcZc4oKWfGxUcgyrTX3+xo\n-----END PRIVATE KEY-----\n";

/// [`TEST_CERT`] in DER.
pub fn test_cert_der() -> rustls::pki_types::CertificateDer<'static> {
    use rustls::pki_types::pem::PemObject as _;
    rustls::pki_types::CertificateDer::from_pem_slice(TEST_CERT.as_bytes()).expect("cert")
}

fn tls_config(cert: &str, key: &str) -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let cert = CertificateDer::from_pem_slice(cert.as_bytes()).expect("cert");
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).expect("key");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .expect("server config"),
    )
}
