//! `b2-tokio`'s timeouts while sending an upload, against a local server that stops reading the
//! body, or reads it whole and never answers: a stall ends the attempt after the idle timeout,
//! a missing reply after the request timeout, and a stalled upload is retried on a new URL.
//!
//! These tests send tens of MiB over loopback; they have a binary of their own so that they do
//! not run beside the timing-sensitive tests of `client.rs`.

#[path = "../../b2-blocking/tests/support/server.rs"]
mod server;

use std::io::{BufRead as _, Read as _, Write as _};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use b2_proto::{BucketId, FileName, RetryPolicy, TransportError, TransportErrorKind};
use b2_tokio::{Client, Error, NewFile};
use server::authorize_json;

/// More than hyper's buffer and the socket buffers of both ends hold (about 5 MiB with Linux's
/// defaults: a socket's send buffer grows up to `net.ipv4.tcp_wmem`'s maximum, 4 MiB), so that
/// a client whose server stops reading stalls before it has handed over the whole body.
const BIG: usize = 32 << 20;

/// What [`UploadServer`] does with the body of an upload.
#[derive(Debug, Clone, Copy)]
enum OnUpload {
    /// Reads this many bytes of it, then stops reading and never answers.
    StopReadingAfter(usize),
    /// Reads all of it, then never answers.
    ReadAllAndStaySilent,
    /// Reads all of it and answers with its file version.
    Answer,
}

/// An upload as the server saw it.
#[derive(Debug, Clone)]
struct Upload {
    target: String,
    authorization: String,
    /// When the server stopped reading its body (having read what its script says).
    read_until: Instant,
}

/// A server that authorizes, hands out the upload URLs `{base}/upload/1`, `/upload/2`... with
/// the tokens `up1`, `up2`..., and treats the nth upload as the nth entry of its script says
/// (the last entry for later ones), holding the connection of an unanswered one open for 10 s.
struct UploadServer {
    base: String,
    uploads: Arc<Mutex<Vec<Upload>>>,
}

impl UploadServer {
    fn start(script: &'static [OnUpload]) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let uploads = Arc::new(Mutex::new(Vec::new()));
        let urls = Arc::new(AtomicUsize::new(0));
        let (for_thread, uploads_seen) = (base.clone(), uploads.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().take(20) {
                let Ok(stream) = stream else { continue };
                let (base, uploads, urls) =
                    (for_thread.clone(), uploads_seen.clone(), urls.clone());
                std::thread::spawn(move || serve(stream, &base, script, &uploads, &urls));
            }
        });
        Self { base, uploads }
    }

    /// The uploads whose body the server is done reading, in order of arrival.
    fn uploads(&self) -> Vec<Upload> {
        self.uploads.lock().expect("uploads").clone()
    }

    fn client(&self, policy: RetryPolicy, request: Duration, idle: Duration) -> Client {
        Client::builder("id", "key")
            .realm(&self.base)
            .retry_policy(policy)
            .request_timeout(request)
            .idle_timeout(idle)
            .build()
            .expect("client")
    }
}

fn serve(
    stream: std::net::TcpStream,
    base: &str,
    script: &[OnUpload],
    uploads: &Mutex<Vec<Upload>>,
    urls: &AtomicUsize,
) {
    let mut reader = std::io::BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let target = request_line.split(' ').nth(1).unwrap_or("").to_owned();
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
            }
        }
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map_or("", |(_, v)| v.as_str())
        };
        let len = header("content-length").parse::<u64>().unwrap_or(0);
        let json = if target.starts_with("/upload/") {
            let nth = uploads.lock().expect("uploads").len();
            let on_upload = script.get(nth).or_else(|| script.last()).copied();
            let read = match on_upload {
                Some(OnUpload::StopReadingAfter(bytes)) => len.min(bytes as u64),
                _ => len,
            };
            let copied = std::io::copy(&mut (&mut reader).take(read), &mut std::io::sink());
            uploads.lock().expect("uploads").push(Upload {
                target: target.clone(),
                authorization: header("authorization").to_owned(),
                read_until: Instant::now(),
            });
            if copied.ok() != Some(read) {
                return;
            }
            if !matches!(on_upload, Some(OnUpload::Answer)) {
                std::thread::sleep(Duration::from_secs(10));
                return;
            }
            format!(
                r#"{{"accountId":"acc1","action":"upload","bucketId":"b1","contentLength":{len},"contentSha1":"{}","contentType":"application/octet-stream","fileId":"f1","fileInfo":{{}},"fileName":"big.bin","uploadTimestamp":1}}"#,
                header("x-bz-content-sha1")
            )
        } else {
            let mut body = vec![0; usize::try_from(len).expect("length")];
            if reader.read_exact(&mut body).is_err() {
                return;
            }
            if target.ends_with("/b2_authorize_account") {
                authorize_json(base, "tok1")
            } else {
                let n = urls.fetch_add(1, Ordering::SeqCst) + 1;
                format!(
                    r#"{{"bucketId":"b1","uploadUrl":"{base}/upload/{n}","authorizationToken":"up{n}"}}"#
                )
            }
        };
        let reply = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{json}",
            json.len()
        );
        if reader.get_mut().write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

fn big_file() -> NewFile {
    NewFile::new(BucketId::new("b1"), FileName::new("big.bin").expect("name"))
}

/// Uploads `len` bytes with the given timeouts and no retries; returns the upload's transport
/// error, when it came, and the upload as the server saw it.
async fn failed_upload(
    server: &UploadServer,
    len: usize,
    request: Duration,
    idle: Duration,
) -> (TransportError, Instant, Upload) {
    let client = server.client(RetryPolicy::none(), request, idle);
    client.session().await.expect("session");
    let upload = client.upload_bytes(big_file(), vec![7u8; len]);
    // Well past the timeouts the tests set, well before a budget of the request timeout plus
    // a second per 64 KiB of body (a minimum rate of 64 KiB/s).
    let error = tokio::time::timeout(Duration::from_secs(10), upload)
        .await
        .expect("no timeout within 10 s")
        .expect_err("the upload failed");
    let failed_at = Instant::now();
    let Error::RetriesExhausted { last, .. } = error else {
        panic!("{error:?}")
    };
    let Error::Transport(transport) = *last else {
        panic!("{last:?}")
    };
    let uploads = server.uploads();
    assert_eq!(uploads.len(), 1, "{uploads:?}");
    (transport, failed_at, uploads[0].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_the_server_stops_reading_times_out_after_the_idle_timeout() {
    let server = UploadServer::start(&[OnUpload::StopReadingAfter(64 * 1024)]);
    let idle = Duration::from_millis(300);
    let (error, failed_at, upload) =
        failed_upload(&server, BIG, Duration::from_secs(5), idle).await;
    assert_eq!(error.kind, TransportErrorKind::Timeout, "{error}");
    assert!(error.to_string().contains("stalled"), "{error}");
    // The client fills the buffers within milliseconds of the server's stop, then waits the
    // idle timeout: not the request timeout, nor 517 s for 32 MiB.
    let waited = failed_at - upload.read_until;
    assert!(waited >= idle - Duration::from_millis(100), "{waited:?}");
    assert!(waited < idle + Duration::from_secs(1), "{waited:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_sent_whole_and_never_answered_times_out_after_the_request_timeout() {
    let server = UploadServer::start(&[OnUpload::ReadAllAndStaySilent]);
    let request = Duration::from_millis(800);
    let (error, failed_at, upload) =
        failed_upload(&server, 1 << 20, request, Duration::from_millis(200)).await;
    assert_eq!(error.kind, TransportErrorKind::Timeout, "{error}");
    assert!(error.to_string().contains("no reply"), "{error}");
    // The request timeout from the body's end (the client handed its last bytes over just
    // before the server read them): not the shorter idle timeout, nor 16 s more for 1 MiB.
    let waited = failed_at - upload.read_until;
    assert!(waited >= request - Duration::from_millis(100), "{waited:?}");
    assert!(waited < request + Duration::from_secs(1), "{waited:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_that_stalls_is_retried_with_a_new_upload_url() {
    let server = UploadServer::start(&[OnUpload::StopReadingAfter(64 * 1024), OnUpload::Answer]);
    let client = server.client(
        RetryPolicy::default(),
        Duration::from_secs(5),
        Duration::from_millis(300),
    );
    let upload = client.upload_bytes(big_file(), vec![7u8; BIG]);
    let version = tokio::time::timeout(Duration::from_secs(10), upload)
        .await
        .expect("no stall for more than 10 s")
        .expect("uploaded on the second URL");
    assert_eq!(version.content_length, BIG as u64);
    let uploads: Vec<(String, String)> = server
        .uploads()
        .into_iter()
        .map(|u| (u.target, u.authorization))
        .collect();
    let expected = [("/upload/1", "up1"), ("/upload/2", "up2")].map(|(t, a)| (t.into(), a.into()));
    assert_eq!(uploads, expected);
}
