//! The HTTP server over loopback, with a minimal HTTP/1.1 client on a raw TcpStream.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use b2_emulator::{Config, FaultAction, FaultRule, FaultTarget, Server};
use base64::Engine as _;
use common::sha1_hex;
use serde_json::{Value, json};

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// The connection ended before `Content-Length` bytes arrived.
    cut: bool,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

fn head_bytes(method: &str, path: &str, headers: &[(&str, String)], body_len: usize) -> Vec<u8> {
    let mut s = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (k, v) in headers {
        s.push_str(&format!("{k}: {v}\r\n"));
    }
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-length"))
    {
        s.push_str(&format!("Content-Length: {body_len}\r\n"));
    }
    s.push_str("\r\n");
    s.into_bytes()
}

/// Reads a whole reply until the server closes the connection. `None` if nothing came back.
fn read_reply(stream: &mut TcpStream, head_request: bool) -> Option<Reply> {
    let mut buf = Vec::new();
    let _ = stream.read_to_end(&mut buf);
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        })
        .collect();
    let body = buf[end + 4..].to_vec();
    let declared = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok());
    let cut = !head_request && declared.is_some_and(|n| body.len() < n);
    Some(Reply {
        status,
        headers,
        body,
        cut,
    })
}

fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> Option<Reply> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(&head_bytes(method, path, headers, body.len()))
        .unwrap();
    let _ = s.write_all(body);
    read_reply(&mut s, method == "HEAD")
}

struct Client {
    addr: SocketAddr,
    token: String,
    account: String,
}

impl Client {
    fn new(server: &Server) -> Self {
        let basic = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            server.key_id(),
            server.application_key()
        ));
        let r = send(
            server.addr(),
            "GET",
            "/b2api/v4/b2_authorize_account",
            &[("Authorization", format!("Basic {basic}"))],
            b"",
        )
        .unwrap();
        assert_eq!(r.status, 200);
        let v = r.json();
        assert_eq!(v["apiInfo"]["storageApi"]["apiUrl"], server.url());
        Self {
            addr: server.addr(),
            token: v["authorizationToken"].as_str().unwrap().to_owned(),
            account: v["accountId"].as_str().unwrap().to_owned(),
        }
    }

    fn call(&self, name: &str, body: Value) -> Reply {
        send(
            self.addr,
            "POST",
            &format!("/b2api/v4/{name}"),
            &[("Authorization", self.token.clone())],
            body.to_string().as_bytes(),
        )
        .unwrap()
    }

    fn ok(&self, name: &str, body: Value) -> Value {
        let r = self.call(name, body);
        assert_eq!(
            r.status,
            200,
            "{name}: {}",
            String::from_utf8_lossy(&r.body)
        );
        r.json()
    }

    fn bucket(&self, name: &str) -> String {
        self.ok(
            "b2_create_bucket",
            json!({"accountId": self.account, "bucketName": name, "bucketType": "allPrivate"}),
        )["bucketId"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    fn upload_target(&self, bucket: &str) -> (String, String) {
        let v = self.ok("b2_get_upload_url", json!({"bucketId": bucket}));
        let url = v["uploadUrl"].as_str().unwrap();
        (
            url[url.find("/b2api/").unwrap()..].to_owned(),
            v["authorizationToken"].as_str().unwrap().to_owned(),
        )
    }

    fn upload_headers(token: &str, name: &str, data: &[u8]) -> Vec<(&'static str, String)> {
        vec![
            ("Authorization", token.to_owned()),
            ("X-Bz-File-Name", name.to_owned()),
            ("Content-Type", "application/octet-stream".to_owned()),
            ("X-Bz-Content-Sha1", sha1_hex(data)),
        ]
    }

    fn upload(&self, bucket: &str, name: &str, data: &[u8]) -> Reply {
        let (path, token) = self.upload_target(bucket);
        send(
            self.addr,
            "POST",
            &path,
            &Self::upload_headers(&token, name, data),
            data,
        )
        .unwrap()
    }
}

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

#[test]
fn upload_and_download_over_http() {
    let server = Server::start().unwrap();
    let c = Client::new(&server);
    let b = c.bucket("http-bucket");
    let body = data(3_000_000);
    let r = c.upload(&b, "dir/a%20b.bin", &body);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["fileName"], "dir/a b.bin");
    let id = r.json()["fileId"].as_str().unwrap().to_owned();
    let r = send(
        c.addr,
        "GET",
        "/file/http-bucket/dir/a%20b.bin",
        &[("Authorization", c.token.clone())],
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.body, body);
    assert_eq!(r.header("x-bz-file-name"), Some("dir/a%20b.bin"));
    let r = send(
        c.addr,
        "GET",
        &format!("/b2api/v4/b2_download_file_by_id?fileId={id}"),
        &[
            ("Authorization", c.token.clone()),
            ("Range", "bytes=1000000-1999999".into()),
        ],
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &body[1_000_000..2_000_000]);
    assert_eq!(
        r.header("content-range"),
        Some("bytes 1000000-1999999/3000000")
    );
    let r = send(
        c.addr,
        "HEAD",
        "/file/http-bucket/dir/a%20b.bin",
        &[("Authorization", c.token.clone())],
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("3000000"));
    assert!(r.body.is_empty());
    // GET form of a JSON call.
    let r = send(
        c.addr,
        "GET",
        &format!("/b2api/v4/b2_list_file_names?bucketId={b}"),
        &[("Authorization", c.token.clone())],
        b"",
    )
    .unwrap();
    assert_eq!(r.json()["files"][0]["fileName"], "dir/a b.bin");
}

#[test]
fn concurrent_use_of_one_upload_token_is_refused() {
    let server = Server::start().unwrap();
    let c = Client::new(&server);
    let b = c.bucket("http-bucket");
    let (path, token) = c.upload_target(&b);
    let body = data(100_000);
    // First upload: head and half the body, then pause.
    let mut first = TcpStream::connect(c.addr).unwrap();
    first
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    first
        .write_all(&head_bytes(
            "POST",
            &path,
            &Client::upload_headers(&token, "one", &body),
            body.len(),
        ))
        .unwrap();
    first.write_all(&body[..50_000]).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    // Second upload with the same token while the first is in progress.
    let r = send(
        c.addr,
        "POST",
        &path,
        &Client::upload_headers(&token, "two", &body),
        &body,
    )
    .unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["code"], "auth_token_limit");
    first.write_all(&body[50_000..]).unwrap();
    let r = read_reply(&mut first, false).unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}

#[test]
fn reset_in_the_middle_of_the_request_body() {
    let server = Server::start().unwrap();
    let c = Client::new(&server);
    let b = c.bucket("http-bucket");
    server.add_fault(
        FaultRule::new(FaultAction::ResetRequestBody, FaultTarget::Uploads).with_count(1),
    );
    let (path, token) = c.upload_target(&b);
    let body = data(2_000_000);
    let r = send(
        c.addr,
        "POST",
        &path,
        &Client::upload_headers(&token, "f", &body),
        &body,
    );
    assert!(
        r.is_none(),
        "expected no reply, got {:?}",
        r.map(|r| r.status)
    );
    // Nothing was stored, and the token is free again.
    assert!(
        c.ok("b2_list_file_names", json!({"bucketId": b}))["files"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let r = send(
        c.addr,
        "POST",
        &path,
        &Client::upload_headers(&token, "f", &body),
        &body,
    )
    .unwrap();
    assert_eq!(r.status, 200);
}

#[test]
fn reset_and_truncation_of_response_bodies() {
    let server = Server::start().unwrap();
    let c = Client::new(&server);
    let b = c.bucket("http-bucket");
    let body = data(1_000_000);
    assert_eq!(c.upload(&b, "f", &body).status, 200);
    for action in [
        FaultAction::ResetResponseBody,
        FaultAction::TruncateResponse,
    ] {
        server.add_fault(FaultRule::new(action.clone(), FaultTarget::Downloads).with_count(1));
        let r = send(
            c.addr,
            "GET",
            "/file/http-bucket/f",
            &[("Authorization", c.token.clone())],
            b"",
        )
        .unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-length"), Some("1000000"));
        assert!(r.cut, "{action:?}: got {} bytes", r.body.len());
        assert!(r.body.len() < body.len());
        assert_eq!(r.body[..], body[..r.body.len()]);
    }
    // JSON replies can be cut too.
    server.add_fault(
        FaultRule::new(
            FaultAction::TruncateResponse,
            FaultTarget::Call("b2_list_file_names".into()),
        )
        .with_count(1),
    );
    let r = c.call("b2_list_file_names", json!({"bucketId": b}));
    assert!(r.cut);
    // And the next one is whole.
    let r = send(
        c.addr,
        "GET",
        "/file/http-bucket/f",
        &[("Authorization", c.token.clone())],
        b"",
    )
    .unwrap();
    assert!(!r.cut);
    assert_eq!(r.body, body);
}

#[test]
fn slow_responses_and_status_faults_via_control_endpoint() {
    let server = Server::start().unwrap();
    let c = Client::new(&server);
    let b = c.bucket("http-bucket");
    let rule = json!({"action": "delay", "ms": 300, "target": "b2_list_file_names", "count": 1});
    let r = send(
        c.addr,
        "POST",
        "/__emulator/faults",
        &[],
        rule.to_string().as_bytes(),
    )
    .unwrap();
    assert_eq!(r.status, 200);
    let t = Instant::now();
    assert_eq!(
        c.call("b2_list_file_names", json!({"bucketId": b})).status,
        200
    );
    assert!(t.elapsed() >= Duration::from_millis(300));
    let rule = json!({"action": "status", "status": 503, "retryAfter": 2, "target": "uploads", "count": 1});
    send(
        c.addr,
        "POST",
        "/__emulator/faults",
        &[],
        rule.to_string().as_bytes(),
    )
    .unwrap();
    let r = c.upload(&b, "f", b"abc");
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after"), Some("2"));
    assert_eq!(r.json()["code"], "service_unavailable");
    assert_eq!(c.upload(&b, "f", b"abc").status, 200);
    // Expired token via the library handle.
    server.expire_account_tokens();
    let r = c.call("b2_list_file_names", json!({"bucketId": b}));
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["code"], "expired_auth_token");
    // Clock via HTTP.
    let c = Client::new(&server);
    let r = send(
        c.addr,
        "POST",
        "/__emulator/clock",
        &[],
        br#"{"advanceSeconds": 90000}"#,
    )
    .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(
        c.call("b2_list_file_names", json!({"bucketId": b})).json()["code"],
        "expired_auth_token"
    );
}

#[test]
fn custom_credentials_and_stop_on_drop() {
    let server = Server::builder()
        .with_config(
            Config::new()
                .with_master_key("myKeyId", "myKey")
                .with_min_part_size(1),
        )
        .start()
        .unwrap();
    assert_eq!(server.key_id(), "myKeyId");
    assert_eq!(server.application_key(), "myKey");
    let addr = server.addr();
    let _ = Client::new(&server);
    drop(server);
    assert!(TcpStream::connect(addr).is_err());
}

#[test]
fn usable_from_inside_an_async_runtime() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let server = Server::start().unwrap();
        let addr = server.addr();
        let r = tokio::task::spawn_blocking(move || {
            send(addr, "GET", "/__emulator/info", &[], b"").unwrap()
        })
        .await
        .unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.json()["applicationKeyId"], server.key_id());
        drop(server);
    });
}

#[test]
fn parallel_uploads_and_downloads() {
    let server = Server::start().unwrap();
    let c = Client::new(&server);
    let b = c.bucket("http-bucket");
    std::thread::scope(|s| {
        for t in 0..6 {
            let (c, b) = (&c, &b);
            s.spawn(move || {
                let (path, token) = c.upload_target(b);
                for i in 0..15 {
                    let body = data(10_000 + t * 100 + i);
                    let name = format!("t{t}/f{i:02}");
                    let r = send(
                        c.addr,
                        "POST",
                        &path,
                        &Client::upload_headers(&token, &name, &body),
                        &body,
                    )
                    .unwrap();
                    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
                    let r = send(
                        c.addr,
                        "GET",
                        &format!("/file/http-bucket/{name}"),
                        &[("Authorization", c.token.clone())],
                        b"",
                    )
                    .unwrap();
                    assert_eq!(r.body, body);
                }
            });
        }
    });
    let v = c.ok(
        "b2_list_file_names",
        json!({"bucketId": b, "maxFileCount": 1000}),
    );
    assert_eq!(v["files"].as_array().unwrap().len(), 90);
}

#[test]
fn lifecycle_rules_act_when_the_clock_is_advanced() {
    let server = Server::start().unwrap();
    let c = Client::new(&server);
    c.ok(
        "b2_create_bucket",
        json!({"accountId": c.account, "bucketName": "public-logs", "bucketType": "allPublic",
               "lifecycleRules": [{"fileNamePrefix": "logs/", "daysFromUploadingToHiding": 1}]}),
    );
    let b = c.ok(
        "b2_list_buckets",
        json!({"accountId": c.account, "bucketName": "public-logs"}),
    )["buckets"][0]["bucketId"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = c.upload(&b, "logs/today.txt", b"line");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let get = || {
        send(
            server.addr(),
            "GET",
            "/file/public-logs/logs/today.txt",
            &[],
            b"",
        )
        .unwrap()
    };
    server.advance_clock(Duration::from_secs(24 * 3600 - 60));
    assert_eq!(get().status, 200);
    // The first request after the due time, a download needing no token, already sees it hidden.
    server.advance_clock(Duration::from_secs(60));
    assert_eq!(get().status, 404);
}
