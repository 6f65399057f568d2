//! The large-file machine, driven against a scripted B2 in virtual time.
#![allow(clippy::disallowed_methods)]

mod common;

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use b2_proto::large_upload::{LargeUpload, PartSpec};
use b2_proto::model::Part;
use b2_proto::ops::StartLargeFile;
use b2_proto::planner::{PartHasher, PartPlan, StreamPlan};
use b2_proto::{
    Body, BucketId, Error, ErrorCode, FileId, FileName, InvalidInput, Machine, RetryPolicy,
    Session, Sha1Digest, Step, TransportErrorKind,
};
use bytes::Bytes;
use common::*;

const LARGE: &str = "4_zlarge";

fn source(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

/// A session with tiny part sizes, so tests use tiny sources.
fn small_session(minimum: u64, recommended: u64) -> Arc<Session> {
    let mut s = session();
    s.absolute_minimum_part_size = minimum;
    s.recommended_part_size = recommended;
    Arc::new(s)
}

fn start() -> StartLargeFile {
    StartLargeFile::new(BucketId::new("bucket1"), FileName::new("big.bin").unwrap())
}

fn json_body(request: &http::Request<Body>) -> serde_json::Value {
    match request.body() {
        Body::Bytes(b) => serde_json::from_slice(b).unwrap(),
        other => panic!("JSON call with body {other:?}"),
    }
}

/// Replaces a reply: `(call name, request) -> Some(reply)`.
type Fault = Box<dyn FnMut(&str, &http::Request<Body>) -> Option<Reply>>;

/// A scripted B2 holding one large file; `fault` may replace any reply.
struct Server {
    data: Vec<u8>,
    urls: Cell<u32>,
    parts: RefCell<BTreeMap<u16, (u64, String)>>,
    /// Part numbers in the order B2 stored them.
    stored_order: RefCell<Vec<u16>>,
    finished: Cell<bool>,
    fault: RefCell<Fault>,
}

impl Server {
    fn new(data: Vec<u8>) -> Self {
        Self {
            data,
            urls: Cell::new(0),
            parts: RefCell::new(BTreeMap::new()),
            stored_order: RefCell::new(Vec::new()),
            finished: Cell::new(false),
            fault: RefCell::new(Box::new(|_, _| None)),
        }
    }

    fn with_fault(
        self,
        f: impl FnMut(&str, &http::Request<Body>) -> Option<Reply> + 'static,
    ) -> Self {
        *self.fault.borrow_mut() = Box::new(f);
        self
    }

    fn version(&self, action: &str, len: u64) -> String {
        serde_json::json!({
            "accountId": "0012345abcde", "action": action, "bucketId": "bucket1",
            "contentLength": len, "contentSha1": "none", "contentType": "b2/x-auto",
            "fileId": LARGE, "fileInfo": {}, "fileName": "big.bin", "uploadTimestamp": 1,
        })
        .to_string()
    }

    fn part_reply(&self, number: u16, len: u64, sha1: &str) -> Reply {
        self.stored_order.borrow_mut().push(number);
        self.parts
            .borrow_mut()
            .insert(number, (len, sha1.to_owned()));
        Ok(json_response(
            200,
            &serde_json::json!({
                "fileId": LARGE, "partNumber": number, "contentLength": len,
                "contentSha1": sha1, "uploadTimestamp": 2,
            })
            .to_string(),
        ))
    }

    fn respond(&self, request: &http::Request<Body>) -> Reply {
        let call = call_name(request.uri());
        if let Some(reply) = (self.fault.borrow_mut())(&call, request) {
            return reply;
        }
        match call.as_str() {
            "b2_start_large_file" => Ok(json_response(200, &self.version("start", 0))),
            "b2_get_upload_part_url" => {
                let n = self.urls.get() + 1;
                self.urls.set(n);
                Ok(json_response(
                    200,
                    &format!(
                        r#"{{"fileId":"{LARGE}","uploadUrl":"https://pod-{n}.backblaze.com/b2api/v4/b2_upload_part/{LARGE}/c{n}","authorizationToken":"part-{n}"}}"#
                    ),
                ))
            }
            "b2_upload_part" => {
                let h = request.headers();
                let number: u16 = h["x-bz-part-number"].to_str().unwrap().parse().unwrap();
                let declared = h["x-bz-content-sha1"].to_str().unwrap();
                let bytes: Vec<u8> = match request.body() {
                    Body::Bytes(b) => b.to_vec(),
                    Body::Source(r) => self.data[r.start as usize..r.end as usize].to_vec(),
                    _ => unreachable!(),
                };
                assert_eq!(
                    h["content-length"].to_str().unwrap(),
                    bytes.len().to_string()
                );
                if Sha1Digest::of(&bytes).to_hex() != declared {
                    return Ok(response("b2_upload_part/bad_sha1"));
                }
                self.part_reply(number, bytes.len() as u64, declared)
            }
            "b2_copy_part" => {
                let json = json_body(request);
                let number = json["partNumber"].as_u64().unwrap() as u16;
                let range = json["range"].as_str().unwrap();
                let (a, b) = range.trim_start_matches("bytes=").split_once('-').unwrap();
                let (a, b): (u64, u64) = (a.parse().unwrap(), b.parse().unwrap());
                let sha1 = Sha1Digest::of(&self.data[a as usize..=b as usize]).to_hex();
                self.part_reply(number, b - a + 1, &sha1)
            }
            "b2_finish_large_file" => {
                let json = json_body(request);
                let sent: Vec<String> = json["partSha1Array"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_owned())
                    .collect();
                let parts = self.parts.borrow();
                let stored: Vec<String> = parts.values().map(|p| p.1.clone()).collect();
                if sent.len() < 2 {
                    return Ok(response("b2_finish_large_file/too_few_parts"));
                }
                if sent != stored {
                    return Ok(response("b2_finish_large_file/part_sha1_mismatch"));
                }
                self.finished.set(true);
                let len = parts.values().map(|p| p.0).sum();
                Ok(json_response(200, &self.version("upload", len)))
            }
            "b2_get_file_info" => {
                let len = self.parts.borrow().values().map(|p| p.0).sum();
                let action = if self.finished.get() {
                    "upload"
                } else {
                    "start"
                };
                Ok(json_response(200, &self.version(action, len)))
            }
            "b2_cancel_large_file" => Ok(response("b2_cancel_large_file/success")),
            other => panic!("unexpected call {other}"),
        }
    }

    fn read(&self, range: Range<u64>) -> Bytes {
        let end = (range.end as usize).min(self.data.len());
        let start = (range.start as usize).min(end);
        Bytes::copy_from_slice(&self.data[start..end])
    }
}

fn hashed_upload(data: &[u8], session: Arc<Session>) -> LargeUpload {
    let plan = PartPlan::new(data.len() as u64, &session).unwrap();
    let mut hasher = PartHasher::new(&plan);
    hasher.update(data);
    let hashed = hasher.finish().unwrap();
    LargeUpload::from_source(start(), &plan, &hashed, session, &RetryPolicy::default())
}

fn shape(trace: &[String]) -> Vec<String> {
    trace
        .iter()
        .map(|l| {
            if l.starts_with("wait") {
                "wait".into()
            } else if l.starts_with("done err") {
                "done err".into()
            } else {
                l.clone()
            }
        })
        .collect()
}

fn finish_sha1s(s: &Scripted) -> Vec<String> {
    let finish = s
        .sent
        .iter()
        .rfind(|r| call_name(r.uri()) == "b2_finish_large_file")
        .unwrap();
    json_body(finish)["partSha1Array"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_hashed_source_uploads_its_ranges_and_finishes() {
    let data = source(25);
    let server = Server::new(data.clone());
    let mut s = Scripted::new();
    let out = s
        .run(
            &mut hashed_upload(&data, small_session(5, 10)),
            |r| server.respond(r),
            |_| unreachable!(),
        )
        .unwrap();
    assert_eq!(
        s.trace,
        [
            "send b2_start_large_file",
            "send b2_get_upload_part_url",
            "send b2_get_upload_part_url",
            "send b2_get_upload_part_url",
            "send b2_upload_part",
            "send b2_upload_part",
            "send b2_upload_part",
            "send b2_finish_large_file",
            "done ok"
        ]
    );
    assert_eq!(out.content_length, 25);
    assert_eq!(
        json_body(&s.sent[0])["fileInfo"]["large_file_sha1"],
        Sha1Digest::of(&data).to_hex()
    );
    let bodies: Vec<_> = s
        .sent
        .iter()
        .filter(|r| call_name(r.uri()) == "b2_upload_part")
        .map(|r| r.body().clone())
        .collect();
    assert_eq!(
        bodies,
        [
            Body::Source(0..10),
            Body::Source(10..20),
            Body::Source(20..25)
        ]
    );
    // Each part on its own URL.
    let tokens: Vec<_> = s
        .sent
        .iter()
        .filter(|r| call_name(r.uri()) == "b2_upload_part")
        .map(|r| r.headers()["authorization"].to_str().unwrap().to_owned())
        .collect();
    assert_eq!(tokens, ["part-1", "part-2", "part-3"]);
    let expected: Vec<_> = data
        .chunks(10)
        .map(|c| Sha1Digest::of(c).to_hex())
        .collect();
    assert_eq!(finish_sha1s(&s), expected);
}

/// Drives a machine answering the most recent request first (so parts complete out of
/// order), checking after every step how many parts are in flight and in memory.
fn run_lifo(
    machine: &mut LargeUpload,
    server: &Server,
    max_in_flight: usize,
) -> (
    Result<b2_proto::model::FileVersion, Error>,
    Vec<http::Request<Body>>,
) {
    let now = Instant::now();
    let mut pending: Vec<(b2_proto::RequestId, usize)> = Vec::new();
    let mut reads = Vec::new();
    let mut sent = Vec::new();
    for _ in 0..10_000 {
        let step = machine.poll_step(now);
        assert!(machine.parts_in_flight() <= max_in_flight);
        assert!(machine.parts_in_memory() <= max_in_flight);
        match step {
            Step::Send(id, request) => {
                sent.push(request);
                pending.push((id, sent.len() - 1));
            }
            Step::NeedPart { id, range, .. } => reads.push((id, range)),
            Step::Pending | Step::Wait(_) => {
                if let Some((id, range)) = reads.pop() {
                    machine.provide_part(id, server.read(range), now);
                } else {
                    let (id, index) = pending.pop().expect("deadlock");
                    machine.handle_response(id, server.respond(&sent[index]), now);
                }
            }
            Step::Done(result) => return (result, sent),
            _ => panic!("unexpected step"),
        }
    }
    panic!("did not finish");
}

#[test]
fn out_of_order_completions_keep_part_order_and_the_in_flight_limit() {
    let data = source(95);
    let server = Server::new(data.clone());
    let mut upload = hashed_upload(&data, small_session(5, 10)).with_max_in_flight(3);
    let (result, sent) = run_lifo(&mut upload, &server, 3);
    result.unwrap();
    let finish = sent
        .iter()
        .find(|r| call_name(r.uri()) == "b2_finish_large_file")
        .unwrap();
    let expected: Vec<_> = data
        .chunks(10)
        .map(|c| Sha1Digest::of(c).to_hex())
        .collect();
    assert_eq!(
        json_body(finish)["partSha1Array"],
        serde_json::json!(expected)
    );
    // Parts really did complete out of order.
    let order = server.stored_order.borrow().clone();
    let mut sorted = order.clone();
    sorted.sort_unstable();
    assert_ne!(order, sorted, "completions were in order: {order:?}");
    assert_eq!(sorted, (1..=10).collect::<Vec<_>>());
    // Part URLs were reused rather than requested per part.
    let urls = sent
        .iter()
        .filter(|r| call_name(r.uri()) == "b2_get_upload_part_url")
        .count();
    assert_eq!(urls, 3);
}

#[test]
fn a_pipe_is_read_in_order_with_bounded_memory() {
    let data = source(100);
    let server = Server::new(data.clone());
    let session = small_session(5, 10);
    let plan = PartPlan::new(100, &session).unwrap();
    let mut upload = LargeUpload::from_reader(start(), &plan, session, &RetryPolicy::default())
        .with_max_in_flight(2);
    let (result, sent) = run_lifo(&mut upload, &server, 2);
    assert_eq!(result.unwrap().content_length, 100);
    let bodies: Vec<_> = sent
        .iter()
        .filter(|r| call_name(r.uri()) == "b2_upload_part")
        .map(|r| match r.body() {
            Body::Bytes(b) => b.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(bodies.len(), 10);
    // Reads happen in order (Scripted records them).
    let server = Server::new(data);
    let session = small_session(5, 10);
    let mut s = Scripted::new();
    let mut upload = LargeUpload::from_reader(start(), &plan, session, &RetryPolicy::default())
        .with_max_in_flight(2);
    s.run(&mut upload, |r| server.respond(r), |r| server.read(r))
        .unwrap();
    let reads: Vec<_> = s.trace.iter().filter(|l| l.starts_with("part ")).collect();
    let expected: Vec<String> = (0..10)
        .map(|i| format!("part {} {}..{}", i + 1, i * 10, i * 10 + 10))
        .collect();
    assert_eq!(reads, expected.iter().collect::<Vec<_>>());
}

#[test]
fn a_pipe_of_unknown_length_ends_with_a_short_read() {
    for (len, parts) in [
        (25usize, vec![10u64, 10, 5]),
        (20, vec![10, 10]),
        (10, vec![5, 5]),
        (7, vec![5, 2]),
    ] {
        let data = source(len);
        let server = Server::new(data.clone());
        let session = small_session(5, 10);
        let mut upload = LargeUpload::from_unsized_reader(
            start(),
            StreamPlan::new(&session),
            session,
            &RetryPolicy::default(),
        );
        let mut s = Scripted::new();
        let out = s
            .run(&mut upload, |r| server.respond(r), |r| server.read(r))
            .unwrap();
        assert_eq!(out.content_length, len as u64, "{len}");
        let stored: Vec<u64> = server.parts.borrow().values().map(|p| p.0).collect();
        assert_eq!(stored, parts, "{len}");
        let expected: Vec<_> = server
            .parts
            .borrow()
            .values()
            .map(|p| p.1.clone())
            .collect();
        assert_eq!(finish_sha1s(&s), expected, "{len}");
    }
}

#[test]
fn a_pipe_too_short_for_two_parts_is_refused_and_cancelled() {
    let server = Server::new(source(4));
    let session = small_session(5, 10);
    let mut upload = LargeUpload::from_unsized_reader(
        start(),
        StreamPlan::new(&session),
        session,
        &RetryPolicy::default(),
    );
    let mut s = Scripted::new();
    let err = s
        .run(&mut upload, |r| server.respond(r), |r| server.read(r))
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidInput(InvalidInput::Size { .. })),
        "{err}"
    );
    assert_eq!(
        shape(&s.trace),
        [
            "send b2_start_large_file",
            "part 1 0..10",
            "send b2_cancel_large_file",
            "done err"
        ]
    );
}

#[test]
fn a_fatal_part_error_cancels_the_file() {
    let data = source(25);
    let server = Server::new(data.clone()).with_fault(|call, r| {
        (call == "b2_upload_part" && r.headers()["x-bz-part-number"] == "2")
            .then(|| Ok(response("b2_upload_part/cap_exceeded")))
    });
    let mut upload = hashed_upload(&data, small_session(5, 10)).with_max_in_flight(1);
    let mut s = Scripted::new();
    let err = s
        .run(&mut upload, |r| server.respond(r), |_| unreachable!())
        .unwrap_err();
    assert_eq!(err.code(), Some(&ErrorCode::CapExceeded));
    assert_eq!(
        shape(&s.trace),
        [
            "send b2_start_large_file",
            "send b2_get_upload_part_url",
            "send b2_upload_part",
            "send b2_upload_part",
            "send b2_cancel_large_file",
            "done err"
        ]
    );
    let cancel = s
        .sent
        .iter()
        .rfind(|r| call_name(r.uri()) == "b2_cancel_large_file")
        .unwrap();
    assert_eq!(json_body(cancel)["fileId"], LARGE);

    // Kept for a resume: no cancel.
    let server = Server::new(data.clone()).with_fault(|call, r| {
        (call == "b2_upload_part" && r.headers()["x-bz-part-number"] == "2")
            .then(|| Ok(response("b2_upload_part/cap_exceeded")))
    });
    let mut upload = hashed_upload(&data, small_session(5, 10))
        .with_max_in_flight(1)
        .keep_unfinished_on_error(true);
    let mut s = Scripted::new();
    s.run(&mut upload, |r| server.respond(r), |_| unreachable!())
        .unwrap_err();
    assert!(!s.trace.contains(&"send b2_cancel_large_file".to_owned()));
    assert_eq!(upload.large_file_id(), Some(&FileId::new(LARGE)));
}

#[test]
fn a_failing_part_url_is_replaced() {
    let data = source(25);
    let server = Server::new(data.clone()).with_fault(|call, r| {
        (call == "b2_upload_part" && r.headers()["authorization"] == "part-1")
            .then(|| Ok(response("b2_upload_part/service_unavailable")))
    });
    let mut upload = hashed_upload(&data, small_session(5, 10)).with_max_in_flight(1);
    let mut s = Scripted::new();
    s.run(&mut upload, |r| server.respond(r), |_| unreachable!())
        .unwrap();
    assert_eq!(
        shape(&s.trace),
        [
            "send b2_start_large_file",
            "send b2_get_upload_part_url",
            "send b2_upload_part",
            "wait",
            "send b2_get_upload_part_url",
            "send b2_upload_part",
            "send b2_upload_part",
            "send b2_upload_part",
            "send b2_finish_large_file",
            "done ok"
        ]
    );
}

#[test]
fn five_failing_part_urls_exhaust_the_retries_and_cancel() {
    let data = source(25);
    let server = Server::new(data.clone()).with_fault(|call, _| {
        (call == "b2_upload_part").then(|| Err(transport(TransportErrorKind::Interrupted)))
    });
    let mut upload = hashed_upload(&data, small_session(5, 10)).with_max_in_flight(1);
    let mut s = Scripted::new();
    let err = s
        .run(&mut upload, |r| server.respond(r), |_| unreachable!())
        .unwrap_err();
    assert!(
        matches!(err, Error::RetriesExhausted { attempts: 5, .. }),
        "{err}"
    );
    let count = |c: &str| s.trace.iter().filter(|l| *l == c).count();
    assert_eq!(count("send b2_get_upload_part_url"), 5);
    assert_eq!(count("send b2_upload_part"), 5);
    assert_eq!(count("send b2_cancel_large_file"), 1);
}

#[test]
fn an_expired_account_token_reauthorizes_once() {
    let data = source(25);
    let server = Server::new(data.clone()).with_fault(|call, r| {
        (call == "b2_start_large_file" && r.headers()["authorization"] == TOKEN).then(|| {
            Ok(error_response(
                401,
                "expired_auth_token",
                "Authorization token has expired",
            ))
        })
    });
    let mut upload = hashed_upload(&data, small_session(5, 10)).with_max_in_flight(1);
    let mut s = Scripted::new();
    s.run(&mut upload, |r| server.respond(r), |_| unreachable!())
        .unwrap();
    assert_eq!(
        &s.trace[..4],
        [
            "send b2_start_large_file",
            "reauthorize",
            "send b2_start_large_file",
            "send b2_get_upload_part_url"
        ]
    );
    assert_eq!(s.trace.iter().filter(|l| *l == "reauthorize").count(), 1);
    assert_eq!(s.sent[2].headers()["authorization"], NEW_TOKEN);
}

#[test]
fn start_is_not_repeated_after_a_timeout() {
    let data = source(25);
    let server = Server::new(data.clone()).with_fault(|call, _| {
        (call == "b2_start_large_file").then(|| Err(transport(TransportErrorKind::Timeout)))
    });
    let mut upload = hashed_upload(&data, small_session(5, 10));
    let mut s = Scripted::new();
    let err = s
        .run(&mut upload, |r| server.respond(r), |_| unreachable!())
        .unwrap_err();
    assert!(matches!(err, Error::Transport(_)), "{err}");
    assert_eq!(shape(&s.trace), ["send b2_start_large_file", "done err"]);
}

#[test]
fn a_429_on_start_honours_retry_after() {
    let data = source(25);
    let mut first = true;
    let server = Server::new(data.clone()).with_fault(move |call, _| {
        (call == "b2_start_large_file" && std::mem::take(&mut first))
            .then(|| Ok(response("b2_start_large_file/too_many_requests")))
    });
    let mut upload = hashed_upload(&data, small_session(5, 10)).with_max_in_flight(1);
    let mut s = Scripted::new();
    s.run(&mut upload, |r| server.respond(r), |_| unreachable!())
        .unwrap();
    assert_eq!(
        &s.trace[..3],
        [
            "send b2_start_large_file",
            "wait 7000ms",
            "send b2_start_large_file"
        ]
    );
}

fn listed(data: &[u8], ranges: &[(u16, Range<usize>)]) -> Vec<Part> {
    ranges
        .iter()
        .map(|(n, r)| {
            serde_json::from_value(serde_json::json!({
                "fileId": LARGE, "partNumber": n, "contentLength": r.len(),
                "contentSha1": Sha1Digest::of(&data[r.clone()]).to_hex(), "uploadTimestamp": 1,
            }))
            .unwrap()
        })
        .collect()
}

#[test]
fn resume_skips_parts_already_uploaded() {
    let data = source(25);
    let server = Server::new(data.clone());
    // Parts 1 and 2 are there; part 3 holds other bytes.
    let mut parts = listed(&data, &[(1, 0..10), (2, 10..20)]);
    parts.extend(listed(&[0u8; 30], &[(3, 20..25)]));
    for p in &parts {
        server.parts.borrow_mut().insert(
            p.part_number.get(),
            (p.content_length, p.content_sha1.to_string()),
        );
    }
    let mut upload = hashed_upload(&data, small_session(5, 10)).resume(FileId::new(LARGE), parts);
    let mut s = Scripted::new();
    let out = s
        .run(&mut upload, |r| server.respond(r), |_| unreachable!())
        .unwrap();
    assert_eq!(
        s.trace,
        [
            "send b2_get_upload_part_url",
            "send b2_upload_part",
            "send b2_finish_large_file",
            "done ok"
        ]
    );
    assert_eq!(s.sent[1].headers()["x-bz-part-number"], "3");
    assert_eq!(out.content_length, 25);
    let expected: Vec<_> = data
        .chunks(10)
        .map(|c| Sha1Digest::of(c).to_hex())
        .collect();
    assert_eq!(finish_sha1s(&s), expected);
}

#[test]
fn resume_of_a_pipe_reads_every_part_but_sends_only_missing_ones() {
    let data = source(25);
    let server = Server::new(data.clone());
    let parts = listed(&data, &[(1, 0..10), (3, 20..25)]);
    for p in &parts {
        server.parts.borrow_mut().insert(
            p.part_number.get(),
            (p.content_length, p.content_sha1.to_string()),
        );
    }
    let session = small_session(5, 10);
    let plan = PartPlan::new(25, &session).unwrap();
    let mut upload = LargeUpload::from_reader(start(), &plan, session, &RetryPolicy::default())
        .resume(FileId::new(LARGE), parts);
    let mut s = Scripted::new();
    s.run(&mut upload, |r| server.respond(r), |r| server.read(r))
        .unwrap();
    assert_eq!(
        s.trace,
        [
            "part 1 0..10",
            "part 2 10..20",
            "part 3 20..25",
            "send b2_get_upload_part_url",
            "send b2_upload_part",
            "send b2_finish_large_file",
            "done ok"
        ]
    );
}

#[test]
fn a_lost_finish_reply_is_checked_with_get_file_info() {
    let data = source(25);
    let mut attempt = 0;
    let server = Server::new(data.clone());
    let server = server.with_fault(move |call, _| {
        if call != "b2_finish_large_file" {
            return None;
        }
        attempt += 1;
        match attempt {
            // The first finish takes effect, but its reply is lost.
            1 => None,
            _ => Some(Ok(response("b2_finish_large_file/bad_request"))),
        }
    });
    // The first finish reply becomes a timeout after B2 acted on it.
    let mut seen_finish = false;
    let mut upload = hashed_upload(&data, small_session(5, 10)).with_max_in_flight(1);
    let mut s = Scripted::new();
    let out = s
        .run(
            &mut upload,
            |r| {
                let reply = server.respond(r);
                if call_name(r.uri()) == "b2_finish_large_file"
                    && !std::mem::replace(&mut seen_finish, true)
                {
                    return Err(transport(TransportErrorKind::Timeout));
                }
                reply
            },
            |_| unreachable!(),
        )
        .unwrap();
    assert_eq!(out.content_length, 25);
    assert_eq!(
        shape(&s.trace[s.trace.len() - 5..]),
        [
            "send b2_finish_large_file",
            "wait",
            "send b2_finish_large_file",
            "send b2_get_file_info",
            "done ok"
        ]
    );
}

#[test]
fn a_finish_refused_outright_is_not_second_guessed() {
    let data = source(25);
    let server = Server::new(data.clone()).with_fault(|call, _| {
        (call == "b2_finish_large_file").then(|| Ok(response("b2_finish_large_file/missing_part")))
    });
    let mut upload = hashed_upload(&data, small_session(5, 10)).with_max_in_flight(1);
    let mut s = Scripted::new();
    let err = s
        .run(&mut upload, |r| server.respond(r), |_| unreachable!())
        .unwrap_err();
    assert_eq!(err.code(), Some(&ErrorCode::MissingPart));
    assert_eq!(
        shape(&s.trace[s.trace.len() - 3..]),
        [
            "send b2_finish_large_file",
            "send b2_cancel_large_file",
            "done err"
        ]
    );
}

#[test]
fn copied_and_uploaded_parts_mix() {
    let data = source(25);
    let server = Server::new(data.clone());
    let specs = vec![
        PartSpec::copy(FileId::new("4_source"), 0..10),
        PartSpec::source(10..20, Sha1Digest::of(&data[10..20])),
        PartSpec::copy(FileId::new("4_source"), 20..25),
    ];
    let mut upload = LargeUpload::new(
        start(),
        specs,
        small_session(5, 10),
        &RetryPolicy::default(),
    )
    .with_max_in_flight(1);
    let mut s = Scripted::new();
    s.run(&mut upload, |r| server.respond(r), |_| unreachable!())
        .unwrap();
    assert_eq!(
        s.trace,
        [
            "send b2_start_large_file",
            "send b2_copy_part",
            "send b2_get_upload_part_url",
            "send b2_upload_part",
            "send b2_copy_part",
            "send b2_finish_large_file",
            "done ok"
        ]
    );
    let copy = &s.sent[1];
    assert_eq!(json_body(copy)["range"], "bytes=0-9");
    assert_eq!(json_body(copy)["largeFileId"], LARGE);
    let expected: Vec<_> = data
        .chunks(10)
        .map(|c| Sha1Digest::of(c).to_hex())
        .collect();
    assert_eq!(finish_sha1s(&s), expected);
}

#[test]
fn copy_file_plans_server_side_parts() {
    let data = source(25);
    let server = Server::new(data.clone());
    let mut upload = LargeUpload::copy_file(
        start(),
        FileId::new("4_source"),
        25,
        small_session(5, 10),
        &RetryPolicy::default(),
    );
    let mut s = Scripted::new();
    let out = s
        .run(&mut upload, |r| server.respond(r), |_| unreachable!())
        .unwrap();
    assert_eq!(out.content_length, 25);
    let ranges: Vec<_> = s
        .sent
        .iter()
        .filter(|r| call_name(r.uri()) == "b2_copy_part")
        .map(|r| json_body(r)["range"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ranges, ["bytes=0-9", "bytes=10-19", "bytes=20-24"]);
}

#[test]
fn bad_plans_fail_before_any_request() {
    let session = small_session(5, 10);
    let sha1 = Sha1Digest::of(b"");
    for specs in [
        vec![PartSpec::source(0..4, sha1), PartSpec::source(4..20, sha1)],
        vec![PartSpec::source(0..10, sha1)],
        vec![
            PartSpec::source(0..10, sha1),
            PartSpec::source(10..10, sha1),
        ],
        vec![
            PartSpec::source(0..5_000_000_001, sha1),
            PartSpec::source(5_000_000_001..5_000_000_002, sha1),
        ],
    ] {
        let mut upload = LargeUpload::new(start(), specs, session.clone(), &RetryPolicy::default());
        let mut s = Scripted::new();
        let err = s
            .run(&mut upload, |_| unreachable!(), |_| unreachable!())
            .unwrap_err();
        assert!(
            matches!(err, Error::InvalidInput(InvalidInput::Size { .. })),
            "{err}"
        );
        assert_eq!(s.trace.len(), 1);
    }
}

#[test]
fn a_corrupted_pipe_part_is_sent_again() {
    let data = source(25);
    let mut corrupted = false;
    let server = Server::new(data.clone()).with_fault(move |call, r| {
        if call == "b2_upload_part" && r.headers()["x-bz-part-number"] == "2" && !corrupted {
            corrupted = true;
            return Some(Ok(response("b2_upload_part/bad_sha1")));
        }
        None
    });
    let session = small_session(5, 10);
    let plan = PartPlan::new(25, &session).unwrap();
    let mut upload = LargeUpload::from_reader(start(), &plan, session, &RetryPolicy::default())
        .with_max_in_flight(1);
    let mut s = Scripted::new();
    s.run(&mut upload, |r| server.respond(r), |r| server.read(r))
        .unwrap();
    let count = |c: &str| s.trace.iter().filter(|l| *l == c).count();
    assert_eq!(count("send b2_upload_part"), 4);
    assert_eq!(count("send b2_get_upload_part_url"), 2);
    // Each part was read once: the retry reuses the bytes held in memory.
    assert_eq!(s.trace.iter().filter(|l| l.starts_with("part ")).count(), 3);
}

#[test]
fn a_finish_that_did_not_happen_is_reported_and_cancelled() {
    let data = source(25);
    let mut attempt = 0;
    let server = Server::new(data.clone()).with_fault(move |call, _| match call {
        "b2_finish_large_file" => {
            attempt += 1;
            Some(Ok(if attempt == 1 {
                error_response(500, "internal_error", "oops")
            } else {
                response("b2_finish_large_file/bad_request")
            }))
        }
        // B2 refuses file info for a large file that is not finished.
        "b2_get_file_info" => Some(Ok(error_response(400, "bad_request", "file not finished"))),
        _ => None,
    });
    let mut upload = hashed_upload(&data, small_session(5, 10)).with_max_in_flight(1);
    let mut s = Scripted::new();
    let err = s
        .run(&mut upload, |r| server.respond(r), |_| unreachable!())
        .unwrap_err();
    assert_eq!(err.code(), Some(&ErrorCode::BadRequest));
    assert!(err.to_string().contains("No active upload"), "{err}");
    assert_eq!(
        shape(&s.trace[s.trace.len() - 6..]),
        [
            "send b2_finish_large_file",
            "wait",
            "send b2_finish_large_file",
            "send b2_get_file_info",
            "send b2_cancel_large_file",
            "done err"
        ]
    );
}

#[test]
fn read_plans_are_checked_against_the_session() {
    let session = small_session(5, 10);
    let plan = PartPlan::with_part_size(25, 4, 4).unwrap();
    let mut upload =
        LargeUpload::from_reader(start(), &plan, session.clone(), &RetryPolicy::default());
    let mut s = Scripted::new();
    let err = s
        .run(&mut upload, |_| unreachable!(), |_| unreachable!())
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidInput(InvalidInput::Size { .. })),
        "{err}"
    );
    let plan = StreamPlan::with_part_size(4, 4).unwrap();
    let mut upload =
        LargeUpload::from_unsized_reader(start(), plan, session, &RetryPolicy::default());
    let err = Scripted::new()
        .run(&mut upload, |_| unreachable!(), |_| unreachable!())
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidInput(InvalidInput::Size { .. })),
        "{err}"
    );
}

#[test]
fn a_short_read_from_a_sized_source_cancels() {
    let data = source(25);
    let server = Server::new(data[..22].to_vec());
    let session = small_session(5, 10);
    let plan = PartPlan::new(25, &session).unwrap();
    let mut upload = LargeUpload::from_reader(start(), &plan, session, &RetryPolicy::default());
    let mut s = Scripted::new();
    let err = s
        .run(&mut upload, |r| server.respond(r), |r| server.read(r))
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidInput(InvalidInput::Size { .. })),
        "{err}"
    );
    assert_eq!(
        &shape(&s.trace)[s.trace.len() - 2..],
        ["send b2_cancel_large_file", "done err"]
    );
}

#[test]
fn a_finished_file_of_the_wrong_length_is_reported() {
    let data = source(25);
    let server = Server::new(data.clone());
    let wrong = server.version("upload", 24);
    let server = server.with_fault(move |call, _| {
        (call == "b2_finish_large_file").then(|| Ok(json_response(200, &wrong)))
    });
    let mut upload = hashed_upload(&data, small_session(5, 10));
    let err = Scripted::new()
        .run(&mut upload, |r| server.respond(r), |_| unreachable!())
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidResponse {
                op: "b2_finish_large_file",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn debug_output_shows_part_sizes_not_bytes() {
    let data = source(25);
    let server = Server::new(data.clone());
    let session = small_session(5, 10);
    let plan = PartPlan::new(25, &session).unwrap();
    let mut upload = LargeUpload::from_reader(start(), &plan, session, &RetryPolicy::default());
    let now = Instant::now();
    let Step::Send(id, request) = upload.poll_step(now) else {
        panic!("expected the start")
    };
    upload.handle_response(id, server.respond(&request), now);
    let Step::NeedPart { id, range, .. } = upload.poll_step(now) else {
        panic!("expected a read")
    };
    upload.provide_part(id, server.read(range), now);
    let printed = format!("{upload:?}");
    assert!(printed.contains("Memory(10 bytes)"), "{printed}");
    assert!(!printed.contains(TOKEN), "{printed}");
}

#[test]
fn sse_c_keys_go_with_every_part() {
    use b2_proto::model::{CustomerKey, Encryption};
    let data = source(25);
    let server = Server::new(data.clone());
    let key = CustomerKey::new([9; 32]);
    let specs = vec![
        PartSpec::source(0..10, Sha1Digest::of(&data[..10])),
        PartSpec::copy(FileId::new("4_source"), 10..25),
    ];
    let start = start().with_encryption(Encryption::SseC(key.clone()));
    let mut upload = LargeUpload::new(start, specs, small_session(5, 10), &RetryPolicy::default())
        .with_copy_source_key(CustomerKey::new([8; 32]));
    let mut s = Scripted::new();
    s.run(&mut upload, |r| server.respond(r), |_| unreachable!())
        .unwrap();
    let by_call = |c: &str| s.sent.iter().find(|r| call_name(r.uri()) == c).unwrap();
    let part = by_call("b2_upload_part");
    assert_eq!(
        part.headers()["x-bz-server-side-encryption-customer-key"],
        key.to_base64().as_str()
    );
    assert!(
        part.headers()["user-agent"]
            .to_str()
            .unwrap()
            .contains("b2-proto/")
    );
    let copy = json_body(by_call("b2_copy_part"));
    assert_eq!(
        copy["destinationServerSideEncryption"]["customerKey"],
        key.to_base64()
    );
    assert_eq!(
        copy["sourceServerSideEncryption"]["customerKey"],
        CustomerKey::new([8; 32]).to_base64()
    );
    assert_eq!(
        json_body(by_call("b2_start_large_file"))["serverSideEncryption"]["mode"],
        "SSE-C"
    );
}

/// What a fault schedule does to one request.
fn fault_reply(code: u8) -> Option<Reply> {
    match code {
        1 => Some(Ok(error_response(503, "service_unavailable", "busy"))),
        2 => Some(Err(transport(TransportErrorKind::Interrupted))),
        3 => Some(Err(transport(TransportErrorKind::Timeout))),
        4 => {
            let mut r = error_response(429, "too_many_requests", "slow down");
            r.headers_mut()
                .insert("retry-after", http::HeaderValue::from_static("1"));
            Some(Ok(r))
        }
        5 => Some(Ok(error_response(401, "expired_auth_token", "expired"))),
        6 => Some(Ok(error_response(500, "internal_error", "oops"))),
        7 => Some(Ok(error_response(400, "bad_request", "no"))),
        8 => Some(Ok(json_response(200, "{not json"))),
        _ => None,
    }
}

/// Drives a machine answering in-flight requests in an order given by `picks`, advancing
/// virtual time only when the machine waits with nothing in flight.
fn run_shuffled(
    machine: &mut LargeUpload,
    server: &Server,
    picks: &[usize],
    max_in_flight: usize,
) -> Result<b2_proto::model::FileVersion, Error> {
    let mut now = Instant::now();
    let mut pending: Vec<(b2_proto::RequestId, usize)> = Vec::new();
    let mut reads = Vec::new();
    let mut sent = Vec::new();
    let mut pick = picks.iter().cycle();
    for _ in 0..100_000 {
        let step = machine.poll_step(now);
        assert!(machine.parts_in_flight() <= max_in_flight);
        match step {
            Step::Send(id, request) => {
                sent.push(request);
                pending.push((id, sent.len() - 1));
            }
            Step::NeedPart { id, range, .. } => reads.push((id, range)),
            Step::Reauthorize { .. } => machine.handle_session(renewed_session()),
            Step::Wait(at) if pending.is_empty() && reads.is_empty() => now = now.max(at),
            Step::Pending | Step::Wait(_) => {
                if let Some((id, range)) = reads.pop() {
                    machine.provide_part(id, server.read(range), now);
                } else {
                    assert!(!pending.is_empty(), "pending with nothing in flight");
                    let i = pick.next().copied().unwrap_or(0) % pending.len();
                    let (id, index) = pending.remove(i);
                    machine.handle_response(id, server.respond(&sent[index]), now);
                }
            }
            Step::Done(result) => return result,
            _ => panic!("unexpected step"),
        }
    }
    panic!("the machine did not finish");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

    /// Under any schedule of failures and reply orders, the machine finishes, keeps its
    /// in-flight limit, and succeeds only with a correctly finished file.
    #[test]
    fn any_fault_schedule_ends_cleanly(
        faults in proptest::collection::vec(0u8..40, 0..60),
        picks in proptest::collection::vec(0usize..8, 1..20),
        max_in_flight in 1usize..4,
        from_pipe in proptest::bool::ANY,
    ) {
        let data = source(45);
        let schedule = RefCell::new(faults.into_iter());
        let server = Server::new(data.clone()).with_fault(move |_, _| {
            schedule.borrow_mut().next().and_then(fault_reply)
        });
        let session = small_session(5, 10);
        let mut upload = if from_pipe {
            let plan = PartPlan::new(45, &session).unwrap();
            LargeUpload::from_reader(start(), &plan, session, &RetryPolicy::default())
        } else {
            hashed_upload(&data, session)
        }
        .with_max_in_flight(max_in_flight);
        match run_shuffled(&mut upload, &server, &picks, max_in_flight) {
            Ok(version) => {
                proptest::prop_assert_eq!(version.content_length, 45);
                proptest::prop_assert!(server.finished.get());
                let stored: Vec<String> =
                    server.parts.borrow().values().map(|p| p.1.clone()).collect();
                let expected: Vec<String> =
                    data.chunks(10).map(|c| Sha1Digest::of(c).to_hex()).collect();
                proptest::prop_assert_eq!(stored, expected);
            }
            Err(e) => {
                // A failure is never silent about its cause.
                proptest::prop_assert!(!e.to_string().is_empty());
            }
        }
    }
}

#[test]
fn resume_refuses_a_file_with_parts_beyond_the_plan() {
    let data = source(25);
    let parts = listed(&source(40), &[(1, 0..10), (4, 30..40)]);
    let mut upload = hashed_upload(&data, small_session(5, 10)).resume(FileId::new(LARGE), parts);
    let mut s = Scripted::new();
    let err = s
        .run(&mut upload, |_| unreachable!(), |_| unreachable!())
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidInput(InvalidInput::Argument { .. })),
        "{err}"
    );
    assert_eq!(s.trace.len(), 1, "nothing sent, nothing cancelled");
}
