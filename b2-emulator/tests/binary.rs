//! The `b2-emulator` binary: flags, printed credentials, and a data directory across a kill.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

struct Running {
    child: Child,
    url: String,
    key_id: String,
    key: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(args: &[&str]) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_b2-emulator"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut get = |prefix: &str| loop {
        let line = lines.next().unwrap().unwrap();
        if let Some(v) = line.strip_prefix(prefix) {
            return v.to_owned();
        }
    };
    let url = get("B2_ENVIRONMENT=");
    let key_id = get("B2_APPLICATION_KEY_ID=");
    let key = get("B2_APPLICATION_KEY=");
    Running {
        child,
        url,
        key_id,
        key,
    }
}

/// One HTTP/1.1 request; returns status and JSON body.
fn request(url: &str, method: &str, path: &str, auth: &str, body: &str) -> (u16, Value) {
    let host = url.trim_start_matches("http://");
    let mut s = TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {auth}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    let (head, body) = buf.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn authorize(r: &Running) -> (String, String) {
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", r.key_id, r.key));
    let (s, v) = request(
        &r.url,
        "GET",
        "/b2api/v4/b2_authorize_account",
        &format!("Basic {basic}"),
        "",
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["apiInfo"]["storageApi"]["absoluteMinimumPartSize"], 7);
    (
        v["authorizationToken"].as_str().unwrap().to_owned(),
        v["accountId"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn flags_credentials_and_a_data_dir_across_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let args = [
        "--port",
        "0",
        "--data-dir",
        d,
        "--key-id",
        "cliKeyId",
        "--key",
        "cliKey",
        "--min-part-size",
        "7",
    ];
    let first = start(&args);
    assert!(first.url.starts_with("http://127.0.0.1:"));
    assert_eq!(first.key_id, "cliKeyId");
    assert_eq!(first.key, "cliKey");
    let (token, account) = authorize(&first);
    let (s, _) = request(
        &first.url,
        "POST",
        "/b2api/v4/b2_create_bucket",
        &token,
        &json!({"accountId": account, "bucketName": "survives-kill", "bucketType": "allPrivate"})
            .to_string(),
    );
    assert_eq!(s, 200);
    drop(first); // SIGKILL

    let second = start(&args);
    let (token, account) = authorize(&second);
    let (s, v) = request(
        &second.url,
        "POST",
        "/b2api/v4/b2_list_buckets",
        &token,
        &json!({"accountId": account}).to_string(),
    );
    assert_eq!(s, 200);
    assert_eq!(v["buckets"][0]["bucketName"], "survives-kill");
}

#[test]
fn bad_flags_are_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_b2-emulator"))
        .args(["--port", "x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage"));
    let out = Command::new(env!("CARGO_BIN_EXE_b2-emulator"))
        .args(["--fault", "{}"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}
