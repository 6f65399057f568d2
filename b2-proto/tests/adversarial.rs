//! Machines under adversarial drivers: replies for requests never made, replies delivered
//! twice, parts supplied for reads never asked or with the wrong length, sessions handed over
//! at odd times, polling after `Done`. No panic, no hang (every run is bounded), and a typed
//! error wherever the driver's input is wrong.
#![allow(clippy::disallowed_methods)]

mod common;

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use b2_proto::large_upload::{LargeUpload, PartSpec};
use b2_proto::ops::{GetFileInfo, ListFileNames, Operation as _, StartLargeFile, UploadFile};
use b2_proto::planner::{PartHasher, PartPlan, StreamPlan};
use b2_proto::upload::SimpleUpload;
use b2_proto::{
    ApplicationKey, ApplicationKeyId, AuthorizeAccount, AuthorizeCall, Body, BucketId, Call, Error,
    FileId, FileName, InvalidInput, Machine, Pager, RequestId, RetryPolicy, Session, Sha1Digest,
    Step, TransportErrorKind,
};
use bytes::Bytes;
use common::*;
use proptest::prelude::*;

const LARGE: &str = "4_zlarge";

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 253) as u8).collect()
}

fn small_session() -> Arc<Session> {
    let mut s = session();
    s.absolute_minimum_part_size = 5;
    s.recommended_part_size = 10;
    Arc::new(s)
}

/// The session a re-authorization hands over: a new token, the same part sizes.
fn renewed_small() -> Arc<Session> {
    let mut s = Session::clone(&renewed_session());
    s.absolute_minimum_part_size = 5;
    s.recommended_part_size = 10;
    Arc::new(s)
}

fn start() -> StartLargeFile {
    StartLargeFile::new(BucketId::new("bucket1"), FileName::new("big.bin").unwrap())
}

fn json_of(request: &http::Request<Body>) -> serde_json::Value {
    match request.body() {
        Body::Bytes(b) => serde_json::from_slice(b).unwrap_or_default(),
        _ => serde_json::Value::Null,
    }
}

fn version(len: u64, name: &str, sha1: &str) -> String {
    serde_json::json!({
        "accountId": "0012345abcde", "action": "upload", "bucketId": "bucket1",
        "contentLength": len, "contentSha1": sha1, "contentType": "b2/x-auto",
        "fileId": LARGE, "fileInfo": {}, "fileName": name, "uploadTimestamp": 1,
    })
    .to_string()
}

/// A well-behaved B2 for every call the machines make.
struct Server {
    data: Vec<u8>,
    parts: BTreeMap<u64, u64>,
}

impl Server {
    fn new(data: Vec<u8>) -> Self {
        Self {
            data,
            parts: BTreeMap::new(),
        }
    }

    fn body_len(&self, request: &http::Request<Body>) -> u64 {
        request.body().len()
    }

    fn respond(&mut self, request: &http::Request<Body>) -> Reply {
        let h = request.headers();
        let header = |name: &str| {
            h.get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let reply = match call_name(request.uri()).as_str() {
            "b2_authorize_account" => serde_json::json!({
                "accountId": "0012345abcde",
                "authorizationToken": "4_renewed",
                "apiInfo": {"storageApi": {
                    "apiUrl": API_URL, "downloadUrl": DOWNLOAD_URL,
                    "recommendedPartSize": 100_000_000, "absoluteMinimumPartSize": 5_000_000,
                }},
            })
            .to_string(),
            "b2_get_upload_url" => serde_json::json!({
                "bucketId": "bucket1",
                "uploadUrl": "https://pod-1.backblaze.com/b2api/v4/b2_upload_file/b/c1",
                "authorizationToken": "upload-token",
            })
            .to_string(),
            "b2_upload_file" => {
                let len = self.body_len(request);
                let name = b2_proto::encoding::decode(&header("x-bz-file-name")).unwrap();
                version(len, &name, &header("x-bz-content-sha1"))
            }
            "b2_start_large_file" => version(0, "big.bin", "none"),
            "b2_get_upload_part_url" => serde_json::json!({
                "fileId": LARGE,
                "uploadUrl": "https://pod-2.backblaze.com/b2api/v4/b2_upload_part/f/c2",
                "authorizationToken": "part-token",
            })
            .to_string(),
            "b2_upload_part" => {
                let number: u64 = header("x-bz-part-number").parse().unwrap();
                let len = self.body_len(request);
                self.parts.insert(number, len);
                serde_json::json!({
                    "fileId": LARGE, "partNumber": number, "contentLength": len,
                    "contentSha1": header("x-bz-content-sha1"), "uploadTimestamp": 2,
                })
                .to_string()
            }
            "b2_copy_part" => {
                let json = json_of(request);
                let number = json["partNumber"].as_u64().unwrap();
                let range = json["range"].as_str().unwrap();
                let (a, b) = range.trim_start_matches("bytes=").split_once('-').unwrap();
                let (a, b): (usize, usize) = (a.parse().unwrap(), b.parse().unwrap());
                let len = (b - a + 1) as u64;
                self.parts.insert(number, len);
                serde_json::json!({
                    "fileId": LARGE, "partNumber": number, "contentLength": len,
                    "contentSha1": Sha1Digest::of(&self.data[a..=b]).to_hex(),
                    "uploadTimestamp": 2,
                })
                .to_string()
            }
            "b2_finish_large_file" | "b2_get_file_info" => {
                version(self.parts.values().sum(), "big.bin", "none")
            }
            "b2_cancel_large_file" => serde_json::json!({
                "fileId": LARGE, "accountId": "0012345abcde", "bucketId": "bucket1",
                "fileName": "big.bin",
            })
            .to_string(),
            "b2_list_file_names" => {
                let start = json_of(request)["startFileName"]
                    .as_str()
                    .map(str::to_owned);
                let (names, next) = match start.as_deref() {
                    None => (["a", "b"], Some("c")),
                    Some("c") => (["c", "d"], Some("e")),
                    _ => (["e", "f"], None),
                };
                let files: Vec<_> = names
                    .iter()
                    .map(|n| {
                        serde_json::from_str::<serde_json::Value>(&version(1, n, "none")).unwrap()
                    })
                    .collect();
                serde_json::json!({"files": files, "nextFileName": next}).to_string()
            }
            other => panic!("unexpected call {other}"),
        };
        Ok(json_response(200, &reply))
    }

    fn read(&self, range: Range<u64>) -> Bytes {
        let end = (range.end as usize).min(self.data.len());
        let start = (range.start as usize).min(end);
        Bytes::copy_from_slice(&self.data[start..end])
    }
}

/// What the adversary does between ordinary steps.
#[derive(Debug, Clone)]
enum Noise {
    /// A reply to a request the machine never made.
    UnknownReply(u64, u8),
    /// Another reply to a request already answered.
    Duplicate(usize, u8),
    /// Source bytes for a read never asked for.
    UnknownPart(u64, u16),
    /// A session nobody asked for.
    Session,
    /// Answer a later request before an earlier one.
    Reorder(usize),
    /// Let time pass.
    Sleep(u16),
    /// Poll without doing anything.
    Poll,
}

fn noise() -> impl Strategy<Value = Noise> {
    prop_oneof![
        (prop_oneof![Just(0u64), 1_000u64..u64::MAX], any::<u8>())
            .prop_map(|(id, r)| Noise::UnknownReply(id, r)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, r)| Noise::Duplicate(i, r)),
        (prop_oneof![Just(0u64), 1_000u64..u64::MAX], 0u16..40)
            .prop_map(|(id, len)| Noise::UnknownPart(id, len)),
        Just(Noise::Session),
        any::<usize>().prop_map(Noise::Reorder),
        any::<u16>().prop_map(Noise::Sleep),
        Just(Noise::Poll),
    ]
}

/// A reply chosen by the adversary: successes of other calls, errors, transport failures.
fn stray_reply(pick: u8) -> Reply {
    match pick % 11 {
        8 => busy_for("18446744073709551615"),
        9 => busy_for("1"),
        10 => Ok(http::Response::builder()
            .status(429)
            .header("retry-after", "-3")
            .body(Bytes::new())
            .unwrap()),
        0 => Ok(response("b2_upload_part/success")),
        1 => Ok(response("b2_finish_large_file/success")),
        2 => Ok(response("b2_get_upload_url/success")),
        3 => Ok(error_response(503, "service_unavailable", "busy")),
        4 => Ok(error_response(401, "expired_auth_token", "expired")),
        5 => Ok(error_response(400, "bad_request", "no")),
        6 => Err(transport(TransportErrorKind::Interrupted)),
        _ => Ok(json_response(200, "{}")),
    }
}

enum Work {
    Reply(RequestId, Box<http::Request<Body>>),
    Part(RequestId, Range<u64>),
}

/// Runs `machine` against `server` with `noise` mixed in; returns the outcome and the steps
/// taken. Panics on a deadlock (`Pending` with nothing in flight) or on more than `bound`
/// polls.
fn run_noisy<M: Machine>(
    machine: &mut M,
    server: &mut Server,
    noise: &[Noise],
    bound: usize,
) -> Result<M::Output, Error> {
    let t0 = Instant::now();
    let mut now = t0;
    let mut queue: Vec<Work> = Vec::new();
    let mut answered: Vec<RequestId> = Vec::new();
    let mut noise = noise.iter();
    for _ in 0..bound {
        // The adversary's move.
        match noise.next() {
            Some(Noise::UnknownReply(id, pick)) => {
                machine.handle_response(RequestId::new(*id), stray_reply(*pick), now);
            }
            Some(Noise::Duplicate(i, pick)) if !answered.is_empty() => {
                let id = answered[i % answered.len()];
                machine.handle_response(id, stray_reply(*pick), now);
            }
            Some(Noise::UnknownPart(id, len)) => {
                machine.provide_part(
                    RequestId::new(*id),
                    Bytes::from(vec![7; usize::from(*len)]),
                    now,
                );
            }
            Some(Noise::Session) => machine.handle_session(renewed_small()),
            Some(Noise::Reorder(i)) if !queue.is_empty() => {
                let work = queue.remove(i % queue.len());
                deliver(machine, server, work, now, &mut answered);
            }
            Some(Noise::Sleep(ms)) => now += Duration::from_millis(u64::from(*ms)),
            _ => {}
        }
        match machine.poll_step(now) {
            Step::Send(id, request) => queue.push(Work::Reply(id, Box::new(request))),
            Step::NeedPart { id, range, .. } => queue.push(Work::Part(id, range)),
            Step::Reauthorize { .. } => machine.handle_session(renewed_small()),
            Step::Wait(at) => {
                if queue.is_empty() {
                    now = now.max(at);
                } else {
                    let work = queue.remove(0);
                    deliver(machine, server, work, now, &mut answered);
                }
            }
            Step::Pending => {
                assert!(!queue.is_empty(), "Pending with nothing in flight: a hang");
                let work = queue.remove(0);
                deliver(machine, server, work, now, &mut answered);
            }
            Step::Done(result) => return result,
            _ => panic!("unknown step"),
        }
    }
    panic!("no result after {bound} polls");
}

fn deliver<M: Machine>(
    machine: &mut M,
    server: &mut Server,
    work: Work,
    now: Instant,
    answered: &mut Vec<RequestId>,
) {
    match work {
        Work::Reply(id, request) => {
            let reply = server.respond(&request);
            answered.push(id);
            machine.handle_response(id, reply, now);
        }
        Work::Part(id, range) => {
            let bytes = server.read(range);
            answered.push(id);
            machine.provide_part(id, bytes, now);
        }
    }
}

/// After `Done`: polling again and late replies neither panic nor resurrect the machine.
fn after_done<M: Machine>(machine: &mut M)
where
    M::Output: std::fmt::Debug,
{
    let now = Instant::now();
    for round in 0..3 {
        machine.handle_response(RequestId::new(1), Ok(json_response(200, "{}")), now);
        machine.handle_session(renewed_small());
        machine.provide_part(RequestId::new(1), Bytes::from_static(b"late"), now);
        match machine.poll_step(now) {
            Step::Done(Err(Error::InvalidInput(InvalidInput::Argument { what, .. }))) => {
                assert_eq!(what, "machine", "round {round}");
            }
            Step::Done(Err(e)) => panic!("round {round}: unexpected error {e}"),
            Step::Done(Ok(_)) => panic!("round {round}: a second result"),
            other => panic!("round {round}: polled after Done: {other:?}"),
        }
    }
}

fn hashed_upload(bytes: &[u8]) -> LargeUpload {
    let session = small_session();
    let plan = PartPlan::new(bytes.len() as u64, &session).unwrap();
    let mut hasher = PartHasher::new(&plan);
    hasher.update(bytes);
    let hashed = hasher.finish().unwrap();
    LargeUpload::from_source(start(), &plan, &hashed, session, &RetryPolicy::default())
}

fn reader_upload(len: u64) -> LargeUpload {
    let session = small_session();
    let plan = PartPlan::new(len, &session).unwrap();
    LargeUpload::from_reader(start(), &plan, session, &RetryPolicy::default())
}

fn pipe_upload() -> LargeUpload {
    let session = small_session();
    let plan = StreamPlan::new(&session);
    LargeUpload::from_unsized_reader(start(), plan, session, &RetryPolicy::default())
}

fn copy_upload(len: u64) -> LargeUpload {
    LargeUpload::copy_file(
        start(),
        FileId::new("4_source"),
        len,
        small_session(),
        &RetryPolicy::default(),
    )
}

fn simple_upload(bytes: &[u8]) -> SimpleUpload {
    SimpleUpload::from_bytes(
        UploadFile::new(FileName::new("small.txt").unwrap()),
        BucketId::new("bucket1"),
        Bytes::copy_from_slice(bytes),
        session_arc(),
        &RetryPolicy::default(),
    )
}

const BOUND: usize = 20_000;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn large_upload_from_source_ignores_noise(
        len in 11usize..80,
        noise in proptest::collection::vec(noise(), 0..200),
    ) {
        let bytes = data(len);
        let mut server = Server::new(bytes.clone());
        let mut upload = hashed_upload(&bytes);
        let out = run_noisy(&mut upload, &mut server, &noise, BOUND);
        let version = out.map_err(|e| TestCaseError::fail(format!("{e}")))?;
        prop_assert_eq!(version.content_length, len as u64);
        after_done(&mut upload);
    }

    #[test]
    fn large_upload_from_reader_ignores_noise(
        len in 11usize..80,
        noise in proptest::collection::vec(noise(), 0..200),
    ) {
        let mut server = Server::new(data(len));
        let mut upload = reader_upload(len as u64);
        let version = run_noisy(&mut upload, &mut server, &noise, BOUND)
            .map_err(|e| TestCaseError::fail(format!("{e}")))?;
        prop_assert_eq!(version.content_length, len as u64);
        after_done(&mut upload);
    }

    #[test]
    fn large_upload_from_a_pipe_ignores_noise(
        len in 6usize..80,
        noise in proptest::collection::vec(noise(), 0..200),
    ) {
        let mut server = Server::new(data(len));
        let mut upload = pipe_upload();
        let version = run_noisy(&mut upload, &mut server, &noise, BOUND)
            .map_err(|e| TestCaseError::fail(format!("{e}")))?;
        prop_assert_eq!(version.content_length, len as u64);
        after_done(&mut upload);
    }

    #[test]
    fn large_copy_ignores_noise(
        len in 11usize..80,
        noise in proptest::collection::vec(noise(), 0..200),
    ) {
        let mut server = Server::new(data(len));
        let mut upload = copy_upload(len as u64);
        let version = run_noisy(&mut upload, &mut server, &noise, BOUND)
            .map_err(|e| TestCaseError::fail(format!("{e}")))?;
        prop_assert_eq!(version.content_length, len as u64);
        after_done(&mut upload);
    }

    #[test]
    fn simple_upload_ignores_noise(
        len in 0usize..80,
        noise in proptest::collection::vec(noise(), 0..100),
    ) {
        let bytes = data(len);
        let mut server = Server::new(bytes.clone());
        let mut upload = simple_upload(&bytes);
        let out = run_noisy(&mut upload, &mut server, &noise, BOUND)
            .map_err(|e| TestCaseError::fail(format!("{e}")))?;
        prop_assert_eq!(out.file.content_length, len as u64);
        after_done(&mut upload);
    }

    #[test]
    fn call_ignores_noise(noise in proptest::collection::vec(noise(), 0..100)) {
        let mut server = Server::new(Vec::new());
        let mut call = Call::new(GetFileInfo::new(FileId::new(LARGE)), session_arc(), &RetryPolicy::default());
        let version = run_noisy(&mut call, &mut server, &noise, BOUND)
            .map_err(|e| TestCaseError::fail(format!("{e}")))?;
        prop_assert_eq!(version.file_name.as_str(), "big.bin");
        after_done(&mut call);
    }

    #[test]
    fn pager_calls_ignore_noise(noise in proptest::collection::vec(noise(), 0..100)) {
        let mut server = Server::new(Vec::new());
        let mut pager = Pager::new(ListFileNames::new(BucketId::new("bucket1")));
        let mut names = Vec::new();
        let mut pages = 0;
        while let Some(mut call) = pager.next_call(session_arc(), &RetryPolicy::default()) {
            pages += 1;
            prop_assert!(pages <= 3);
            let page = run_noisy(&mut call, &mut server, &noise, BOUND)
                .map_err(|e| TestCaseError::fail(format!("{e}")))?;
            after_done(&mut call);
            let items = pager.advance(page).map_err(|e| TestCaseError::fail(format!("{e}")))?;
            names.extend(items.into_iter().map(|f| f.file_name.as_str().to_owned()));
        }
        prop_assert_eq!(names, ["a", "b", "c", "d", "e", "f"]);
        prop_assert!(pager.next_call(session_arc(), &RetryPolicy::default()).is_none());
    }

    /// Replies from a hostile server (anything, for every request) end every machine in
    /// bounded steps with a value or an error.
    #[test]
    fn hostile_server_ends_every_machine(
        picks in proptest::collection::vec(any::<u8>(), 1..400),
        which in 0u8..7,
    ) {
        let mut n = 0usize;
        let mut hostile = |request: &http::Request<Body>| -> Reply {
            n += 1;
            let pick = picks[n % picks.len()];
            if pick < 128 {
                // Sometimes the right answer, so the machines get further.
                Server::new(data(80)).respond(request)
            } else {
                stray_reply(pick)
            }
        };
        let read = |r: Range<u64>| Bytes::from(data(80)[r.start as usize..(r.end as usize).min(80)].to_vec());
        let mut s = Scripted::new();
        let bytes = data(40);
        let _ = match which {
            0 => s.run(&mut hashed_upload(&bytes), &mut hostile, read).map(drop),
            1 => s.run(&mut reader_upload(40), &mut hostile, read).map(drop),
            2 => s.run(&mut pipe_upload(), &mut hostile, read).map(drop),
            3 => s.run(&mut copy_upload(40), &mut hostile, read).map(drop),
            4 => s.run(&mut simple_upload(&bytes), &mut hostile, read).map(drop),
            5 => s
                .run(
                    &mut AuthorizeCall::new(
                        AuthorizeAccount::new(ApplicationKeyId::new("k"), ApplicationKey::new("s")),
                        &RetryPolicy::default(),
                    ),
                    &mut hostile,
                    read,
                )
                .map(drop),
            _ => s
                .run(
                    &mut Call::new(GetFileInfo::new(FileId::new(LARGE)), session_arc(), &RetryPolicy::default()),
                    &mut hostile,
                    read,
                )
                .map(drop),
        };
        prop_assert!(s.trace.last().is_some_and(|l| l.starts_with("done")));
    }
}

// ---- wrong input from the driver: typed errors ------------------------------------------

/// Drives `machine` normally, but supplies `supply(range)` for every read.
fn run_with_reads<M: Machine>(
    machine: &mut M,
    len: usize,
    supply: impl FnMut(Range<u64>) -> Bytes,
) -> Result<M::Output, Error> {
    let mut server = Server::new(data(len));
    Scripted::new().run(machine, |r| server.respond(r), supply)
}

fn size_error<T: std::fmt::Debug>(result: Result<T, Error>) -> String {
    match result {
        Err(Error::InvalidInput(InvalidInput::Size { reason })) => reason,
        other => panic!("expected InvalidInput::Size, got {other:?}"),
    }
}

#[test]
fn a_sized_reader_supplied_too_few_or_too_many_bytes_fails_typed() {
    let source = data(25);
    for delta in [-1i64, 1, -5, 100] {
        let mut upload = reader_upload(25);
        let reason = size_error(run_with_reads(&mut upload, 25, |r| {
            let end = (r.end as i64 + delta).clamp(r.start as i64, 25) as usize;
            let mut v = source[r.start as usize..end].to_vec();
            if end == 25 && delta > 0 {
                v.extend(std::iter::repeat_n(0, delta as usize));
            }
            Bytes::from(v)
        }));
        assert!(reason.contains("bytes supplied for a range of"), "{reason}");
        after_done(&mut upload);
    }
}

#[test]
fn a_pipe_supplied_more_than_asked_fails_typed() {
    let mut upload = pipe_upload();
    let reason = size_error(run_with_reads(&mut upload, 80, |r| {
        Bytes::from(vec![1; (r.end - r.start + 1) as usize])
    }));
    assert!(reason.contains("bytes supplied for a range of"), "{reason}");
    after_done(&mut upload);
}

#[test]
fn an_empty_or_too_short_pipe_fails_typed() {
    for len in [0usize, 3, 5] {
        let mut upload = pipe_upload();
        let bytes = data(len);
        let reason = size_error(run_with_reads(&mut upload, len, |r| {
            let end = (r.end as usize).min(len);
            Bytes::copy_from_slice(&bytes[(r.start as usize).min(end)..end])
        }));
        assert!(
            reason.contains("empty") || reason.contains("too few"),
            "{len}: {reason}"
        );
    }
}

#[test]
fn a_part_supplied_twice_is_taken_once() {
    // The second supply of the same read (with other bytes) must not replace the first.
    let bytes = data(25);
    let mut upload = reader_upload(25);
    let mut server = Server::new(bytes.clone());
    let now = Instant::now();
    let mut sent_bodies = BTreeMap::new();
    for _ in 0..1000 {
        match upload.poll_step(now) {
            Step::Send(id, request) => {
                if let Body::Bytes(b) = request.body() {
                    if call_name(request.uri()) == "b2_upload_part" {
                        let number = request.headers()["x-bz-part-number"].clone();
                        let number: u16 = number.to_str().unwrap().parse().unwrap();
                        sent_bodies.insert(number, b.clone());
                    }
                }
                let reply = server.respond(&request);
                upload.handle_response(id, reply, now);
            }
            Step::NeedPart { id, range, .. } => {
                let good = server.read(range.clone());
                upload.provide_part(id, good.clone(), now);
                upload.provide_part(id, Bytes::from(vec![0xee; good.len()]), now);
                upload.provide_part(id, Bytes::new(), now);
            }
            Step::Done(result) => {
                assert_eq!(result.unwrap().content_length, 25);
                let joined: Vec<u8> = sent_bodies.values().flat_map(|b| b.to_vec()).collect();
                assert_eq!(joined, bytes);
                return;
            }
            other => panic!("{other:?}"),
        }
    }
    panic!("no result");
}

#[test]
fn parts_supplied_before_they_are_asked_for_are_ignored() {
    let bytes = data(25);
    let mut upload = reader_upload(25);
    let now = Instant::now();
    // Ids the machine will hand out later: supplied early, they must be ignored.
    for id in 1..20 {
        upload.provide_part(RequestId::new(id), Bytes::from(vec![0xee; 10]), now);
        upload.handle_response(RequestId::new(id), Ok(json_response(200, "{}")), now);
    }
    let mut server = Server::new(bytes);
    let out = Scripted::new()
        .run(
            &mut upload,
            |r| server.respond(r),
            |r| Bytes::copy_from_slice(&data(25)[r.start as usize..r.end as usize]),
        )
        .unwrap();
    assert_eq!(out.content_length, 25);
}

#[test]
fn a_session_before_the_first_poll_or_after_a_reply_changes_nothing() {
    let bytes = data(30);
    let mut upload = hashed_upload(&bytes);
    upload.handle_session(renewed_small());
    let mut server = Server::new(bytes);
    let mut s = Scripted::new();
    let out = s.run(&mut upload, |r| server.respond(r), |_| unreachable!());
    assert_eq!(out.unwrap().content_length, 30);
    // Every request after the swap carries the new token.
    for request in &s.sent {
        let auth = request.headers()["authorization"].to_str().unwrap();
        assert!(
            auth == NEW_TOKEN || auth == "part-token",
            "{} sent with {auth}",
            request.uri()
        );
    }
}

#[test]
fn invalid_part_specs_fail_before_anything_is_sent() {
    let specs = vec![
        PartSpec::source(0..3, Sha1Digest::of(b"x")),
        PartSpec::source(3..10, Sha1Digest::of(b"y")),
    ];
    let mut upload = LargeUpload::new(start(), specs, small_session(), &RetryPolicy::default());
    let now = Instant::now();
    match upload.poll_step(now) {
        Step::Done(Err(Error::InvalidInput(InvalidInput::Size { .. }))) => {}
        other => panic!("{other:?}"),
    }
    after_done(&mut upload);
}

#[test]
fn polling_after_done_is_a_typed_error_for_every_machine() {
    let now = Instant::now();
    let mut call = Call::new(
        GetFileInfo::new(FileId::new(LARGE)),
        session_arc(),
        &RetryPolicy::default(),
    );
    let Step::Send(id, _) = call.poll_step(now) else {
        panic!()
    };
    call.handle_response(id, Ok(error_response(404, "not_found", "gone")), now);
    assert!(matches!(
        call.poll_step(now),
        Step::Done(Err(Error::Api(_)))
    ));
    after_done(&mut call);

    let mut upload = simple_upload(b"abc");
    let mut server = Server::new(Vec::new());
    Scripted::new()
        .run(&mut upload, |r| server.respond(r), |_| unreachable!())
        .unwrap();
    after_done(&mut upload);
}

// ---- server-controlled waits -------------------------------------------------------------

fn busy_for(seconds: &str) -> Reply {
    Ok(http::Response::builder()
        .status(503)
        .header("retry-after", seconds)
        .body(Bytes::from_static(
            br#"{"status":503,"code":"service_unavailable","message":"busy"}"#,
        ))
        .unwrap())
}

/// A `Retry-After` too large for the clock, or past the retry budget, ends the call with the
/// server's error instead of overflowing the clock or waiting for years.
#[test]
fn retry_after_beyond_the_budget_gives_up() {
    for seconds in [
        "18446744073709551615",
        "9223372036854775807",
        "31536000",
        "181",
    ] {
        let now = Instant::now();
        let mut call = Call::new(
            GetFileInfo::new(FileId::new(LARGE)),
            session_arc(),
            &RetryPolicy::default(),
        );
        let Step::Send(id, _) = call.poll_step(now) else {
            panic!()
        };
        call.handle_response(id, busy_for(seconds), now);
        match call.poll_step(now) {
            Step::Done(Err(Error::RetriesExhausted { attempts: 1, last })) => {
                assert_eq!(last.status().map(|s| s.as_u16()), Some(503), "{seconds}");
            }
            other => panic!("Retry-After {seconds}: {other:?}"),
        }
    }
    // Within the budget, the wait is honoured.
    let now = Instant::now();
    let mut call = Call::new(
        GetFileInfo::new(FileId::new(LARGE)),
        session_arc(),
        &RetryPolicy::default(),
    );
    let Step::Send(id, _) = call.poll_step(now) else {
        panic!()
    };
    call.handle_response(id, busy_for("120"), now);
    match call.poll_step(now) {
        Step::Wait(at) => assert_eq!(at - now, Duration::from_secs(120)),
        other => panic!("{other:?}"),
    }
}

/// Same through the upload machines, which keep their own retry state per part.
#[test]
fn huge_retry_after_never_overflows_the_upload_machines() {
    let bytes = data(30);
    let mut server = Server::new(bytes.clone());
    let mut n = 0;
    let mut respond = |r: &http::Request<Body>| {
        n += 1;
        if n % 2 == 0 {
            busy_for("18446744073709551615")
        } else {
            server.respond(r)
        }
    };
    let out = Scripted::new().run(&mut hashed_upload(&bytes), &mut respond, |_| unreachable!());
    assert!(
        matches!(out, Err(Error::RetriesExhausted { .. })),
        "{out:?}"
    );
    let out = Scripted::new().run(&mut simple_upload(&bytes), &mut respond, |_| unreachable!());
    assert!(
        matches!(out, Err(Error::RetriesExhausted { .. })),
        "{out:?}"
    );
}

/// Backoff never panics, whatever the policy says, and never exceeds its maximum.
#[test]
fn odd_policies_give_bounded_delays() {
    use b2_proto::retry::Backoff;
    for base in [f64::INFINITY, f64::NAN, f64::MAX, 1e300, -5.0, 0.0] {
        for (initial, max) in [
            (Duration::from_millis(100), Duration::from_secs(15)),
            (Duration::MAX, Duration::MAX),
            (Duration::ZERO, Duration::MAX),
            (Duration::from_secs(u64::MAX / 2), Duration::from_secs(1)),
        ] {
            let mut policy = RetryPolicy::default();
            policy.backoff_base = base;
            policy.initial_backoff = initial;
            policy.max_backoff = max;
            let mut backoff = Backoff::new(&policy, 7);
            for _ in 0..50 {
                assert!(backoff.next_delay() <= max, "{base} {initial:?} {max:?}");
            }
        }
    }
}

// ---- listings that never end --------------------------------------------------------------

/// A server whose cursors go round in a circle (a → b → a → …) would make a listing loop
/// forever: the pager refuses the first cursor it has already been given.
#[test]
fn a_cursor_cycle_ends_the_listing() {
    let page = |next: &str| {
        let file = serde_json::from_str::<serde_json::Value>(&version(1, "x", "none")).unwrap();
        let body = serde_json::json!({"files": [file], "nextFileName": next}).to_string();
        ListFileNames::new(BucketId::new("bucket1"))
            .parse(json_response(200, &body))
            .unwrap()
    };
    let mut pager = Pager::new(ListFileNames::new(BucketId::new("bucket1")));
    let mut pages = 0;
    let error = loop {
        pages += 1;
        assert!(pages < 10, "the listing goes round forever");
        let next = if pages % 2 == 0 { "b" } else { "a" };
        match pager.advance(page(next)) {
            Ok(items) => assert_eq!(items.len(), 1),
            Err(e) => break e,
        }
    };
    assert_eq!(pages, 3);
    assert!(
        matches!(
            error,
            Error::InvalidResponse {
                op: "b2_list_file_names",
                ..
            }
        ),
        "{error}"
    );
    assert!(pager.is_done());
    assert!(
        pager
            .next_call(session_arc(), &RetryPolicy::default())
            .is_none()
    );
}

/// A policy whose backoff is longer than the clock can hold ends an upload whose body was
/// damaged in transit with an error, instead of overflowing the clock.
#[test]
fn endless_backoff_after_a_damaged_body_gives_up() {
    let mut policy = RetryPolicy::default();
    policy.initial_backoff = Duration::MAX;
    policy.max_backoff = Duration::MAX;
    let damaged = |r: &http::Request<Body>, server: &mut Server| match call_name(r.uri()).as_str() {
        "b2_upload_file" => Ok(response("b2_upload_file/bad_sha1")),
        "b2_upload_part" => Ok(response("b2_upload_part/bad_sha1")),
        _ => server.respond(r),
    };
    let mut server = Server::new(data(25));
    let mut simple = SimpleUpload::from_bytes(
        UploadFile::new(FileName::new("small.txt").unwrap()),
        BucketId::new("bucket1"),
        Bytes::from(data(25)),
        session_arc(),
        &policy,
    );
    let out = Scripted::new().run(&mut simple, |r| damaged(r, &mut server), |_| unreachable!());
    assert!(
        matches!(out, Err(Error::RetriesExhausted { .. })),
        "{out:?}"
    );

    let mut server = Server::new(data(25));
    let session = small_session();
    let plan = PartPlan::new(25, &session).unwrap();
    let mut large = LargeUpload::from_reader(start(), &plan, session, &policy);
    let out = Scripted::new().run(
        &mut large,
        |r| damaged(r, &mut server),
        |r| Bytes::copy_from_slice(&data(25)[r.start as usize..r.end as usize]),
    );
    assert!(
        matches!(out, Err(Error::RetriesExhausted { .. })),
        "{out:?}"
    );
}

/// A large file started under another name or in another bucket than asked is cancelled
/// (its parts would end up under the wrong name) and the upload fails.
#[test]
fn a_large_file_started_under_another_name_is_cancelled() {
    for (name, bucket) in [("other.bin", "bucket1"), ("big.bin", "bucket2")] {
        let bytes = data(25);
        let mut server = Server::new(bytes.clone());
        let mut s = Scripted::new();
        let out = s.run(
            &mut hashed_upload(&bytes),
            |r| match call_name(r.uri()).as_str() {
                "b2_start_large_file" => {
                    let mut v: serde_json::Value =
                        serde_json::from_str(&version(0, name, "none")).unwrap();
                    v["bucketId"] = bucket.into();
                    v["action"] = "start".into();
                    Ok(json_response(200, &v.to_string()))
                }
                _ => server.respond(r),
            },
            |_| unreachable!(),
        );
        assert!(
            matches!(
                &out,
                Err(Error::InvalidResponse {
                    op: "b2_start_large_file",
                    ..
                })
            ),
            "{out:?}"
        );
        assert_eq!(
            s.trace[..2],
            ["send b2_start_large_file", "send b2_cancel_large_file"]
        );
    }
}

/// The `Debug` of a machine at any point of an upload shows none of its secrets: the account
/// token, upload tokens, the SSE-C key.
#[test]
fn machines_do_not_show_secrets_in_debug() {
    use b2_proto::model::{CustomerKey, Encryption};
    let key = CustomerKey::new([0x42; 32]);
    let secrets = [
        TOKEN.to_owned(),
        "part-token".to_owned(),
        "upload-token".to_owned(),
        key.to_base64(),
    ];
    let bytes = data(30);
    let session = small_session();
    let plan = PartPlan::new(30, &session).unwrap();
    let mut hasher = PartHasher::new(&plan);
    hasher.update(&bytes);
    let hashed = hasher.finish().unwrap();
    let start = start().with_encryption(Encryption::SseC(key.clone()));
    let mut large =
        LargeUpload::from_source(start, &plan, &hashed, session, &RetryPolicy::default());
    let mut simple = SimpleUpload::from_bytes(
        UploadFile::new(FileName::new("small.txt").unwrap())
            .with_encryption(Encryption::SseC(key.clone())),
        BucketId::new("bucket1"),
        Bytes::from(bytes.clone()),
        session_arc(),
        &RetryPolicy::default(),
    );
    let mut server = Server::new(bytes);
    let now = Instant::now();
    let check = |text: String| {
        for secret in &secrets {
            assert!(!text.contains(secret.as_str()), "{text}");
        }
    };
    let mut steps = 0;
    loop {
        steps += 1;
        assert!(steps < 1000);
        check(format!("{large:?} {simple:?}"));
        let step = large.poll_step(now);
        check(format!("{step:?}"));
        match step {
            Step::Send(id, request) => {
                let reply = server.respond(&request);
                large.handle_response(id, reply, now);
            }
            Step::Done(out) => {
                out.unwrap();
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    loop {
        let step = simple.poll_step(now);
        check(format!("{step:?} {simple:?}"));
        match step {
            Step::Send(id, request) => {
                let reply = server.respond(&request);
                simple.handle_response(id, reply, now);
            }
            Step::Done(out) => {
                check(format!("{out:?}"));
                out.unwrap();
                break;
            }
            other => panic!("{other:?}"),
        }
    }
}

/// A page handed to a pager that already finished does not start the listing again.
#[test]
fn a_page_after_the_last_one_is_refused() {
    let page = |next: Option<&str>| {
        let file = serde_json::from_str::<serde_json::Value>(&version(1, "x", "none")).unwrap();
        let body = serde_json::json!({"files": [file], "nextFileName": next}).to_string();
        ListFileNames::new(BucketId::new("bucket1"))
            .parse(json_response(200, &body))
            .unwrap()
    };
    for mut pager in [
        Pager::new(ListFileNames::new(BucketId::new("bucket1"))),
        Pager::new(ListFileNames::new(BucketId::new("bucket1"))).with_limit(1),
    ] {
        assert_eq!(pager.advance(page(None)).unwrap().len(), 1);
        assert!(pager.is_done());
        for next in [Some("y"), None] {
            let error = pager.advance(page(next)).unwrap_err();
            assert!(
                matches!(
                    error,
                    Error::InvalidInput(InvalidInput::Argument {
                        what: "listing",
                        ..
                    })
                ),
                "{error}"
            );
            assert!(pager.is_done());
            assert!(
                pager
                    .next_call(session_arc(), &RetryPolicy::default())
                    .is_none()
            );
        }
    }
}
