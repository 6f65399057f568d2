//! `b2-blocking` downloads and uploads against a scripted local HTTP server: a body cut
//! mid-way resumed with a range, integrity failures through the iterator, the reader and
//! `download_to_path`, and an upload from a reader of unknown length.

#[path = "support/server.rs"]
mod server;

use std::io::Read as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use b2_blocking::{Client, Error, NewFile};
use b2_proto::verify::Verification;
use b2_proto::{BucketId, BucketName, FileName, RetryPolicy, ops};
use server::{Recorded, Reply, Server, authorize_json};

const DATA: &[u8] = b"0123456789";
const DATA_SHA1: &str = "87acec17cd9dcd20a716cc2cf67417b71c8a7016";

/// Authorizes, then answers every other request with `reply`.
fn serve(reply: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> Server {
    let base = Arc::new(OnceLock::<String>::new());
    let for_handler = base.clone();
    let server = Server::start(move |req| {
        if req.path().ends_with("/b2_authorize_account") {
            let base = for_handler.get().cloned().unwrap_or_default();
            Reply::json(200, &authorize_json(&base, "tok1"))
        } else {
            reply(req)
        }
    });
    base.set(server.base.clone()).expect("base set once");
    server
}

fn client(server: &Server) -> Client {
    Client::builder("key-id", "secret-key")
        .realm(&server.base)
        .retry_policy(
            RetryPolicy::default()
                .with_backoff(Duration::from_millis(1), Duration::from_millis(10)),
        )
        .build()
        .expect("client")
}

/// A download reply head for `DATA` (or part of it), with `sha1` as its recorded SHA1.
fn head(status: &str, range: Option<(u64, u64)>, len: usize, sha1: &str) -> String {
    let range = range.map_or(String::new(), |(a, b)| {
        format!("Content-Range: bytes {a}-{b}/{}\r\n", DATA.len())
    });
    format!(
        "HTTP/1.1 {status}\r\nContent-Length: {len}\r\n{range}Content-Type: text/plain\r\nX-Bz-File-Id: f1\r\nX-Bz-File-Name: digits.txt\r\nX-Bz-Content-Sha1: {sha1}\r\nX-Bz-Upload-Timestamp: 1\r\n\r\n"
    )
}

fn by_name() -> ops::DownloadFileByName {
    ops::DownloadFileByName::new(
        BucketName::new("kittens").expect("bucket"),
        FileName::new("digits.txt").expect("name"),
    )
}

#[test]
fn a_body_cut_mid_way_is_resumed_with_a_range_for_the_rest() {
    let server = serve(|req| {
        if req.nth == 0 {
            let mut reply = head("200 OK", None, DATA.len(), DATA_SHA1).into_bytes();
            reply.extend_from_slice(&DATA[..4]);
            Reply::Cut(reply)
        } else {
            let mut reply = head("206 Partial Content", Some((4, 9)), 6, DATA_SHA1).into_bytes();
            reply.extend_from_slice(&DATA[4..]);
            Reply::Raw(reply)
        }
    });
    let mut stream = client(&server).download(by_name(), 3).expect("head");
    assert_eq!(stream.head().content_length, 10);
    let chunks: Vec<_> = (&mut stream).collect::<Result<_, _>>().expect("body");
    assert_eq!(chunks, [&b"012"[..], b"345", b"678", b"9"]);
    assert!(
        matches!(stream.verification(), Some(Verification::Matched { .. })),
        "{:?}",
        stream.verification()
    );
    let downloads = server.requests_to("/file/kittens/digits.txt");
    assert_eq!(downloads.len(), 2);
    assert_eq!(downloads[0].header("range"), None);
    assert_eq!(downloads[1].header("range"), Some("bytes=4-9"));
    assert_eq!(downloads[1].header("authorization"), Some("tok1"));
}

#[test]
fn a_sha1_mismatch_ends_the_iterator_and_the_reader_with_an_integrity_error() {
    let wrong = "0000000000000000000000000000000000000000";
    let server = serve(move |_| {
        let mut reply = head("200 OK", None, DATA.len(), wrong).into_bytes();
        reply.extend_from_slice(DATA);
        Reply::Raw(reply)
    });
    let client = client(&server);

    let results: Vec<_> = Iterator::collect(client.download(by_name(), 4).expect("head"));
    assert_eq!(results.len(), 3, "{results:?}");
    assert!(results[..2].iter().all(Result::is_ok));
    assert!(
        matches!(results[2], Err(Error::Integrity(_))),
        "{results:?}"
    );

    let mut out = Vec::new();
    let error = client
        .download(by_name(), 4)
        .expect("head")
        .into_read()
        .read_to_end(&mut out)
        .expect_err("mismatch");
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);

    let (_, bytes, verification) = {
        let server = serve(|_| {
            let mut reply = head("200 OK", None, DATA.len(), DATA_SHA1).into_bytes();
            reply.extend_from_slice(DATA);
            Reply::Raw(reply)
        });
        client_bytes(&server)
    };
    assert_eq!(bytes.as_ref(), DATA);
    assert!(matches!(verification, Verification::Matched { .. }));
}

fn client_bytes(server: &Server) -> (ops::DownloadHead, bytes::Bytes, Verification) {
    let mut reader = client(server)
        .download(by_name(), 3)
        .expect("head")
        .into_read();
    let mut out = Vec::new();
    reader.read_to_end(&mut out).expect("read");
    let (head, bytes, verification) = client(server).download_bytes(by_name()).expect("bytes");
    assert_eq!(out, bytes.as_ref());
    (head, bytes, verification)
}

#[test]
fn a_failed_download_to_path_leaves_no_file() {
    let wrong = "0000000000000000000000000000000000000000";
    let server = serve(move |_| {
        let mut reply = head("200 OK", None, DATA.len(), wrong).into_bytes();
        reply.extend_from_slice(DATA);
        Reply::Raw(reply)
    });
    let dir = std::env::temp_dir().join(format!("b2-blocking-dl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("digits.txt");
    let error = client(&server)
        .download_to_path(by_name(), &path, 4, 2, None)
        .expect_err("mismatch");
    let left: Vec<_> = std::fs::read_dir(&dir).expect("read dir").collect();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(matches!(error, Error::Integrity(_)), "{error:?}");
    assert!(left.is_empty(), "files left behind: {left:?}");
}

#[test]
fn download_to_path_fetches_the_other_ranges_in_parallel_and_checks_the_whole_sha1() {
    // Each ranged request by id waits (up to a second) for another one to arrive: the most
    // seen at once says whether they ran in parallel.
    let current = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let (current_h, most_h) = (current.clone(), most.clone());
    let server = serve(move |req| {
        if req.path().ends_with("/b2_download_file_by_id") {
            let now = current_h.fetch_add(1, Ordering::SeqCst) + 1;
            most_h.fetch_max(now, Ordering::SeqCst);
            let start = std::time::Instant::now();
            while current_h.load(Ordering::SeqCst) < 2 && start.elapsed() < Duration::from_secs(1) {
                std::thread::sleep(Duration::from_millis(2));
            }
            most_h.fetch_max(current_h.load(Ordering::SeqCst), Ordering::SeqCst);
            current_h.fetch_sub(1, Ordering::SeqCst);
        }
        let range = req.header("range").expect("a range");
        let (a, b) = range
            .trim_start_matches("bytes=")
            .split_once('-')
            .expect("a-b");
        let (a, b): (u64, u64) = (a.parse().expect("a"), b.parse().expect("b"));
        let b = b.min(DATA.len() as u64 - 1);
        let body = &DATA[a as usize..=b as usize];
        let mut reply =
            head("206 Partial Content", Some((a, b)), body.len(), DATA_SHA1).into_bytes();
        reply.extend_from_slice(body);
        Reply::Raw(reply)
    });
    let dir = std::env::temp_dir().join(format!("b2-blocking-dl2-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("digits.txt");
    let (head, verification) = client(&server)
        .download_to_path(by_name(), &path, 3, 3, None)
        .expect("download");
    let written = std::fs::read(&path).expect("file");
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(written, DATA);
    assert_eq!(head.file_size(), 10);
    assert!(
        matches!(verification, Verification::Matched { .. }),
        "{verification:?}"
    );
    // The first range goes by name; the others by the id it returned, so every range is of
    // the same file version.
    let requests = server.requests();
    let by_id: Vec<_> = requests
        .iter()
        .filter(|r| r.path().ends_with("/b2_download_file_by_id"))
        .collect();
    assert_eq!(by_id.len(), 3);
    assert!(by_id.iter().all(|r| r.target.ends_with("fileId=f1")));
    let mut ranges: Vec<String> = requests
        .iter()
        .filter_map(|r| r.header("range").map(str::to_owned))
        .collect();
    ranges.sort();
    assert_eq!(ranges, ["bytes=0-2", "bytes=3-5", "bytes=6-8", "bytes=9-9"]);
    assert!(
        most.load(Ordering::SeqCst) >= 2,
        "the ranges ran one by one"
    );
}

/// Authorizes, hands out one upload URL and accepts uploads to it.
fn upload_server() -> Server {
    let base = Arc::new(OnceLock::<String>::new());
    let for_handler = base.clone();
    let server = Server::start(move |req| {
        let base = for_handler.get().cloned().unwrap_or_default();
        let path = req.path();
        if path.ends_with("/b2_authorize_account") {
            Reply::json(200, &authorize_json(&base, "tok1"))
        } else if path.ends_with("/b2_get_upload_url") {
            Reply::json(
                200,
                &format!(
                    r#"{{"bucketId":"b1","uploadUrl":"{base}/upload/here","authorizationToken":"up1"}}"#
                ),
            )
        } else {
            let sha1 = req.header("x-bz-content-sha1").unwrap_or_default();
            Reply::json(
                200,
                &format!(
                    r#"{{"accountId":"acc1","action":"upload","bucketId":"b1","contentLength":{},"contentSha1":"{sha1}","contentType":"text/plain","fileId":"f1","fileInfo":{{}},"fileName":"digits.txt","uploadTimestamp":1}}"#,
                    req.body.len()
                ),
            )
        }
    });
    base.set(server.base.clone()).expect("base set once");
    server
}

#[test]
fn an_upload_from_a_reader_of_unknown_length_is_one_upload_file_call() {
    let server = upload_server();
    let file = NewFile::new(
        BucketId::new("b1"),
        FileName::new("digits.txt").expect("name"),
    )
    .with_content_type("text/plain");
    let version = client(&server)
        .upload_reader(file, std::io::Cursor::new(DATA), None)
        .expect("upload");
    assert_eq!(version.content_length, 10);
    let uploads = server.requests_to("/upload/here");
    assert_eq!(uploads.len(), 1);
    assert_eq!(uploads[0].body, DATA);
    assert_eq!(uploads[0].header("authorization"), Some("up1"));
    assert_eq!(uploads[0].header("x-bz-content-sha1"), Some(DATA_SHA1));
    assert_eq!(uploads[0].header("content-length"), Some("10"));
}

/// No runtime of its own: the calls work from a task of a single-threaded tokio runtime
/// (blocking it while they run).
#[tokio::test(flavor = "current_thread")]
async fn uploads_and_downloads_work_inside_a_current_thread_tokio_runtime() {
    let server = upload_server();
    let file = NewFile::new(
        BucketId::new("b1"),
        FileName::new("digits.txt").expect("name"),
    );
    let version = client(&server)
        .upload_reader(file, std::io::Cursor::new(DATA), Some(10))
        .expect("upload");
    assert_eq!(version.content_length, 10);

    let server = serve(|_| {
        let mut reply = head("200 OK", None, DATA.len(), DATA_SHA1).into_bytes();
        reply.extend_from_slice(DATA);
        Reply::Raw(reply)
    });
    let (_, bytes, _) = client(&server).download_bytes(by_name()).expect("download");
    assert_eq!(bytes.as_ref(), DATA);
}
