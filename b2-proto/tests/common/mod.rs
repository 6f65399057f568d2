//! Shared test support: a fixed session, raw-HTTP fixtures, request goldens and a scripted
//! machine driver with virtual time.
//!
//! Fixtures live in `tests/fixtures/<op>/<case>.http` as raw HTTP/1.1 responses (status line,
//! headers, blank line, body). Request goldens live in `tests/fixtures/<op>/<case>.request`;
//! set `B2_UPDATE_GOLDENS=1` to (re)write them, then read every changed golden against
//! Backblaze's documentation before committing it.
#![allow(dead_code, unreachable_pub, clippy::disallowed_methods)]

use std::collections::VecDeque;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use b2_proto::{
    AccountId, Allowed, AuthToken, Body, Machine, RequestId, Session, Step, TransportError,
    TransportErrorKind,
};
use bytes::Bytes;

pub const API_URL: &str = "https://api001.backblazeb2.com";
pub const DOWNLOAD_URL: &str = "https://f001.backblazeb2.com";
pub const TOKEN: &str = "4_0012345ACCOUNTTOKEN";
pub const NEW_TOKEN: &str = "4_0012345RENEWEDTOKEN";

/// The session every op test builds requests in.
pub fn session() -> Session {
    let mut s = Session::new(
        AccountId::new("0012345abcde"),
        AuthToken::new(TOKEN),
        API_URL,
        DOWNLOAD_URL,
    );
    s.allowed = Allowed::default();
    s
}

pub fn session_arc() -> Arc<Session> {
    Arc::new(session())
}

/// The session a scripted re-authorization hands over.
pub fn renewed_session() -> Arc<Session> {
    Arc::new(Session::new(
        AccountId::new("0012345abcde"),
        AuthToken::new(NEW_TOKEN),
        API_URL,
        DOWNLOAD_URL,
    ))
}

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Parses raw HTTP/1.1 response text.
pub fn parse_http(text: &[u8]) -> http::Response<Bytes> {
    let split = text
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4))
        .or_else(|| text.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)))
        .unwrap_or((text.len(), 0));
    let head = std::str::from_utf8(&text[..split.0]).expect("head is UTF-8");
    let body = Bytes::copy_from_slice(&text[(split.0 + split.1).min(text.len())..]);
    let mut lines = head.lines();
    let status_line = lines.next().expect("status line");
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .expect("status code")
        .parse()
        .expect("status number");
    let mut builder = http::Response::builder().status(status);
    for line in lines {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        let (name, value) = line.split_once(':').expect("header line has a colon");
        builder = builder.header(name.trim(), value.trim());
    }
    builder.body(body).expect("valid response")
}

/// Loads `tests/fixtures/<name>.http`.
pub fn response(name: &str) -> http::Response<Bytes> {
    let path = fixture_path(&format!("{name}.http"));
    let text = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    parse_http(&text)
}

/// A response with a JSON body.
pub fn json_response(status: u16, body: &str) -> http::Response<Bytes> {
    http::Response::builder()
        .status(status)
        .header("content-type", "application/json;charset=utf-8")
        .body(Bytes::copy_from_slice(body.as_bytes()))
        .unwrap()
}

/// A B2 error reply.
pub fn error_response(status: u16, code: &str, message: &str) -> http::Response<Bytes> {
    json_response(
        status,
        &format!(r#"{{"status":{status},"code":"{code}","message":"{message}"}}"#),
    )
}

/// Renders a request canonically: method and URI, headers sorted by name, then the body
/// (JSON pretty-printed with sorted keys).
pub fn render_request<B: AsRef<[u8]>>(request: &http::Request<B>) -> String {
    let mut out = format!("{} {}\n", request.method(), request.uri());
    let mut headers: Vec<_> = request
        .headers()
        .iter()
        .filter(|(name, _)| name.as_str() != "user-agent")
        .map(|(name, value)| format!("{}: {}", name, value.to_str().unwrap_or("<binary>")))
        .collect();
    headers.sort();
    for h in headers {
        out.push_str(&h);
        out.push('\n');
    }
    let body = request.body().as_ref();
    if !body.is_empty() {
        out.push('\n');
        match serde_json::from_slice::<serde_json::Value>(body) {
            Ok(json) => out.push_str(&serde_json::to_string_pretty(&json).unwrap()),
            Err(_) => out.push_str(&String::from_utf8_lossy(body)),
        }
        out.push('\n');
    }
    out
}

/// Compares a request with its golden `tests/fixtures/<name>.request`, and checks the
/// User-Agent is present. With `B2_UPDATE_GOLDENS=1`, writes the golden instead.
pub fn assert_golden<B: AsRef<[u8]>>(name: &str, request: &http::Request<B>) {
    assert!(
        request
            .headers()
            .get("user-agent")
            .is_some_and(|ua| ua.to_str().unwrap().contains("b2-proto/")),
        "{name}: every request carries the User-Agent"
    );
    let actual = render_request(request);
    let path = fixture_path(&format!("{name}.request"));
    if std::env::var_os("B2_UPDATE_GOLDENS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with B2_UPDATE_GOLDENS=1 to create it)",
            path.display()
        )
    });
    assert_eq!(actual, expected, "request golden {name} differs");
}

/// A transport failure of the given kind.
pub fn transport(kind: TransportErrorKind) -> TransportError {
    TransportError::new(kind, "scripted failure")
}

/// What a scripted server answers to one request.
pub type Reply = Result<http::Response<Bytes>, TransportError>;

/// The name of the B2 call a URL addresses: the path segment after `/b2api/v4/`, or
/// `download_by_name` for `/file/...` URLs.
pub fn call_name(uri: &http::Uri) -> String {
    let path = uri.path();
    if path.starts_with("/file/") {
        return "download_by_name".into();
    }
    path.split("/b2api/v4/")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or(path)
        .to_owned()
}

/// Runs a machine against a scripted server in virtual time, recording every step.
///
/// Trace lines: `send <call>`, `part <n> <start>..<end>`, `reauthorize`, `wait <ms>ms`,
/// `done ok` / `done err <error>`. Requests in flight are answered first in, first out;
/// `respond` sees each request as sent. `read` supplies source bytes for `NeedPart`.
pub struct Scripted {
    pub t0: Instant,
    pub now: Instant,
    pub trace: Vec<String>,
    pub sent: Vec<http::Request<Body>>,
}

impl Scripted {
    pub fn new() -> Self {
        let t0 = Instant::now();
        Self {
            t0,
            now: t0,
            trace: Vec::new(),
            sent: Vec::new(),
        }
    }

    pub fn run<M: Machine>(
        &mut self,
        machine: &mut M,
        mut respond: impl FnMut(&http::Request<Body>) -> Reply,
        mut read: impl FnMut(Range<u64>) -> Bytes,
    ) -> Result<M::Output, b2_proto::Error> {
        let mut queue: VecDeque<Work> = VecDeque::new();
        for _ in 0..100_000 {
            match machine.poll_step(self.now) {
                Step::Send(id, request) => {
                    self.trace
                        .push(format!("send {}", call_name(request.uri())));
                    self.sent.push(request);
                    queue.push_back(Work::Reply(id, self.sent.len() - 1));
                }
                Step::NeedPart { id, part, range } => {
                    self.trace
                        .push(format!("part {} {}..{}", part, range.start, range.end));
                    queue.push_back(Work::Part(id, range));
                }
                Step::Reauthorize { .. } => {
                    self.trace.push("reauthorize".into());
                    machine.handle_session(renewed_session());
                }
                Step::Wait(at) => {
                    if let Some(work) = queue.pop_front() {
                        self.deliver(machine, work, &mut respond, &mut read);
                    } else {
                        let ms = at.saturating_duration_since(self.now).as_millis();
                        self.trace.push(format!("wait {ms}ms"));
                        self.now = at.max(self.now);
                    }
                }
                Step::Pending => {
                    let work = queue
                        .pop_front()
                        .expect("machine is Pending with nothing in flight: deadlock");
                    self.deliver(machine, work, &mut respond, &mut read);
                }
                Step::Done(result) => {
                    match &result {
                        Ok(_) => self.trace.push("done ok".into()),
                        Err(e) => self.trace.push(format!("done err {e}")),
                    }
                    return result;
                }
                _ => panic!("unknown step"),
            }
        }
        panic!("machine did not finish in 100000 steps: {:?}", self.trace);
    }

    fn deliver<M: Machine>(
        &mut self,
        machine: &mut M,
        work: Work,
        respond: &mut impl FnMut(&http::Request<Body>) -> Reply,
        read: &mut impl FnMut(Range<u64>) -> Bytes,
    ) {
        match work {
            Work::Reply(id, index) => {
                let reply = respond(&self.sent[index]);
                machine.handle_response(id, reply, self.now);
            }
            Work::Part(id, range) => {
                let data = read(range);
                machine.provide_part(id, data, self.now);
            }
        }
    }

    /// Elapsed virtual time.
    pub fn elapsed(&self) -> Duration {
        self.now - self.t0
    }
}

enum Work {
    Reply(RequestId, usize),
    Part(RequestId, Range<u64>),
}
