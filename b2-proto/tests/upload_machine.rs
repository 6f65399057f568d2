//! The simple-upload machine and the upload URL pool, driven against a scripted server.
#![allow(clippy::disallowed_methods)]

mod common;

use std::cell::Cell;
use std::time::Duration;

use b2_proto::encoding::decode;
use b2_proto::ops::{UploadFile, UploadTarget};
use b2_proto::upload::{PooledTarget, SimpleUpload, UploadUrlPool};
use b2_proto::{
    AuthToken, Body, BucketId, Error, ErrorCode, FileName, InvalidInput, RetryPolicy, Sha1Digest,
    TransportErrorKind,
};
use bytes::Bytes;
use common::*;

const BUCKET: &str = "4a48fe8875c6214145260818";

fn op() -> UploadFile {
    UploadFile::new(FileName::new("docs/a b.txt").unwrap()).with_content_type("text/plain")
}

fn data() -> Bytes {
    Bytes::from_static(b"hello, B2")
}

/// A scripted B2: hands out upload URL number `n` (`https://pod-00n...`, token `upload-n`) and
/// answers uploads with `upload(n, request)`, `n` being the URL the upload went to.
struct Server {
    urls: Cell<u32>,
}

impl Server {
    fn new() -> Self {
        Self { urls: Cell::new(0) }
    }

    fn respond(
        &self,
        request: &http::Request<Body>,
        mut upload: impl FnMut(u32, &http::Request<Body>) -> Reply,
    ) -> Reply {
        match call_name(request.uri()).as_str() {
            "b2_get_upload_url" => {
                let n = self.urls.get() + 1;
                self.urls.set(n);
                Ok(json_response(
                    200,
                    &format!(
                        r#"{{"bucketId":"{BUCKET}","uploadUrl":"https://pod-00{n}.backblaze.com/b2api/v4/b2_upload_file/{BUCKET}/c00{n}","authorizationToken":"upload-{n}"}}"#
                    ),
                ))
            }
            "b2_upload_file" => {
                let n: u32 = request.headers()["authorization"]
                    .to_str()
                    .unwrap()
                    .trim_start_matches("upload-")
                    .parse()
                    .unwrap();
                upload(n, request)
            }
            other => panic!("unexpected call {other}"),
        }
    }
}

/// B2's reply to a good upload: echoes the name, length and SHA1 the request declared.
fn stored(request: &http::Request<Body>) -> Reply {
    let h = request.headers();
    let name = decode(h["x-bz-file-name"].to_str().unwrap()).unwrap();
    Ok(json_response(
        200,
        &serde_json::json!({
            "accountId": "0012345abcde", "action": "upload", "bucketId": BUCKET,
            "contentLength": h["content-length"].to_str().unwrap().parse::<u64>().unwrap(),
            "contentSha1": h["x-bz-content-sha1"].to_str().unwrap(),
            "contentType": "text/plain", "fileId": "4_zfile", "fileInfo": {},
            "fileName": name, "uploadTimestamp": 1_700_000_000_000u64,
        })
        .to_string(),
    ))
}

fn upload_from_bytes(policy: &RetryPolicy) -> SimpleUpload {
    SimpleUpload::from_bytes(op(), BucketId::new(BUCKET), data(), session_arc(), policy)
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

#[test]
fn gets_a_url_then_uploads_the_bytes() {
    let server = Server::new();
    let mut s = Scripted::new();
    let out = s
        .run(
            &mut upload_from_bytes(&RetryPolicy::default()),
            |r| server.respond(r, |_, r| stored(r)),
            |_| unreachable!(),
        )
        .unwrap();
    assert_eq!(
        s.trace,
        ["send b2_get_upload_url", "send b2_upload_file", "done ok"]
    );
    let sent = &s.sent[1];
    assert_eq!(sent.body(), &Body::Bytes(data()));
    assert_eq!(
        sent.headers()["x-bz-content-sha1"],
        Sha1Digest::of(&data()).to_hex().as_str()
    );
    assert_eq!(sent.headers()["content-length"], "9");
    assert!(
        sent.headers()["user-agent"]
            .to_str()
            .unwrap()
            .contains("b2-proto/")
    );
    assert_eq!(out.file.file_name.as_str(), "docs/a b.txt");
    assert_eq!(out.target.target.token.expose_secret(), "upload-1");
    assert_eq!(out.target.obtained_at, s.t0);
}

#[test]
fn a_503_on_upload_is_retried_on_a_new_url() {
    let server = Server::new();
    let mut s = Scripted::new();
    let out = s
        .run(
            &mut upload_from_bytes(&RetryPolicy::default()),
            |r| {
                server.respond(r, |n, r| {
                    if n == 1 {
                        Ok(error_response(503, "service_unavailable", "too busy"))
                    } else {
                        stored(r)
                    }
                })
            },
            |_| unreachable!(),
        )
        .unwrap();
    assert_eq!(
        shape(&s.trace),
        [
            "send b2_get_upload_url",
            "send b2_upload_file",
            "wait",
            "send b2_get_upload_url",
            "send b2_upload_file",
            "done ok"
        ]
    );
    assert_eq!(s.sent[3].headers()["authorization"], "upload-2");
    assert!(s.sent[3].uri().host().unwrap().starts_with("pod-002"));
    assert_eq!(out.target.target.token.expose_secret(), "upload-2");
}

#[test]
fn a_429_waits_for_retry_after_and_keeps_the_url() {
    let server = Server::new();
    let mut s = Scripted::new();
    let mut first = true;
    s.run(
        &mut upload_from_bytes(&RetryPolicy::default()),
        |r| {
            server.respond(r, |_, r| {
                if std::mem::take(&mut first) {
                    let mut reply = error_response(429, "too_many_requests", "slow down");
                    reply
                        .headers_mut()
                        .insert("retry-after", http::HeaderValue::from_static("7"));
                    Ok(reply)
                } else {
                    stored(r)
                }
            })
        },
        |_| unreachable!(),
    )
    .unwrap();
    assert_eq!(
        s.trace,
        [
            "send b2_get_upload_url",
            "send b2_upload_file",
            "wait 7000ms",
            "send b2_upload_file",
            "done ok"
        ]
    );
    assert_eq!(s.sent[2].headers()["authorization"], "upload-1");
    assert_eq!(s.elapsed(), Duration::from_secs(7));
}

#[test]
fn an_expired_account_token_reauthorizes_once() {
    let server = Server::new();
    let mut s = Scripted::new();
    s.run(
        &mut upload_from_bytes(&RetryPolicy::default()),
        |r| {
            if call_name(r.uri()) == "b2_get_upload_url" && r.headers()["authorization"] == TOKEN {
                return Ok(response("b2_get_upload_url/expired_auth_token"));
            }
            server.respond(r, |_, r| stored(r))
        },
        |_| unreachable!(),
    )
    .unwrap();
    assert_eq!(
        s.trace,
        [
            "send b2_get_upload_url",
            "reauthorize",
            "send b2_get_upload_url",
            "send b2_upload_file",
            "done ok"
        ]
    );
    assert_eq!(s.sent[1].headers()["authorization"], NEW_TOKEN);
}

#[test]
fn refused_upload_tokens_get_a_new_url_without_reauthorizing() {
    for (fixture, kind) in [
        ("b2_upload_file/expired_auth_token", None),
        ("b2_upload_file/auth_token_limit", None),
        ("b2_upload_file/request_timeout", None),
        ("", Some(TransportErrorKind::Interrupted)),
        ("", Some(TransportErrorKind::Connect)),
    ] {
        let server = Server::new();
        let mut s = Scripted::new();
        s.run(
            &mut upload_from_bytes(&RetryPolicy::default()),
            |r| {
                server.respond(r, |n, r| match (n, kind) {
                    (1, Some(kind)) => Err(transport(kind)),
                    (1, None) => Ok(response(fixture)),
                    _ => stored(r),
                })
            },
            |_| unreachable!(),
        )
        .unwrap();
        assert_eq!(
            shape(&s.trace),
            [
                "send b2_get_upload_url",
                "send b2_upload_file",
                "wait",
                "send b2_get_upload_url",
                "send b2_upload_file",
                "done ok"
            ],
            "{fixture} {kind:?}"
        );
    }
}

#[test]
fn five_failing_urls_exhaust_the_retries() {
    let server = Server::new();
    let mut s = Scripted::new();
    let err = s
        .run(
            &mut upload_from_bytes(&RetryPolicy::default()),
            |r| {
                server.respond(r, |_, _| {
                    Ok(error_response(503, "service_unavailable", "too busy"))
                })
            },
            |_| unreachable!(),
        )
        .unwrap_err();
    assert!(
        matches!(err, Error::RetriesExhausted { attempts: 5, .. }),
        "{err}"
    );
    assert_eq!(err.code(), Some(&ErrorCode::ServiceUnavailable));
    let count = |call: &str| s.trace.iter().filter(|l| *l == call).count();
    assert_eq!(count("send b2_get_upload_url"), 5);
    assert_eq!(count("send b2_upload_file"), 5);
    assert!(s.trace.last().unwrap().starts_with("done err"));
    // Every upload used a different URL.
    let tokens: std::collections::BTreeSet<_> = s
        .sent
        .iter()
        .filter(|r| call_name(r.uri()) == "b2_upload_file")
        .map(|r| r.headers()["authorization"].to_str().unwrap().to_owned())
        .collect();
    assert_eq!(tokens.len(), 5);
}

#[test]
fn a_sha1_refusal_is_retried_only_when_the_machine_hashed_the_bytes() {
    // Bytes in memory: the machine computed the SHA1, so the body was corrupted in transit.
    let server = Server::new();
    let mut s = Scripted::new();
    s.run(
        &mut upload_from_bytes(&RetryPolicy::default()),
        |r| {
            server.respond(r, |n, r| {
                if n == 1 {
                    Ok(response("b2_upload_file/bad_sha1"))
                } else {
                    stored(r)
                }
            })
        },
        |_| unreachable!(),
    )
    .unwrap();
    assert_eq!(
        shape(&s.trace),
        [
            "send b2_get_upload_url",
            "send b2_upload_file",
            "wait",
            "send b2_get_upload_url",
            "send b2_upload_file",
            "done ok"
        ]
    );
    // A source range with the driver's SHA1: the source may have changed; report it.
    let server = Server::new();
    let mut s = Scripted::new();
    let mut upload = SimpleUpload::from_source(
        op(),
        BucketId::new(BUCKET),
        0..9,
        Sha1Digest::of(&data()),
        session_arc(),
        &RetryPolicy::default(),
    );
    let err = s
        .run(
            &mut upload,
            |r| server.respond(r, |_, _| Ok(response("b2_upload_file/bad_sha1"))),
            |_| unreachable!(),
        )
        .unwrap_err();
    assert_eq!(err.code(), Some(&ErrorCode::BadRequest));
    assert_eq!(
        shape(&s.trace),
        ["send b2_get_upload_url", "send b2_upload_file", "done err"]
    );
    assert_eq!(s.sent[1].body(), &Body::Source(0..9));
    assert_eq!(s.sent[1].headers()["content-length"], "9");
}

#[test]
fn other_errors_fail_without_retrying() {
    for fixture in ["b2_upload_file/bad_request", "b2_upload_file/cap_exceeded"] {
        let server = Server::new();
        let mut s = Scripted::new();
        let err = s
            .run(
                &mut upload_from_bytes(&RetryPolicy::default()),
                |r| server.respond(r, |_, _| Ok(response(fixture))),
                |_| unreachable!(),
            )
            .unwrap_err();
        assert!(matches!(err, Error::Api(_)), "{err}");
        assert_eq!(
            shape(&s.trace),
            ["send b2_get_upload_url", "send b2_upload_file", "done err"]
        );
    }
}

#[test]
fn invalid_input_fails_before_sending_anything() {
    let mut s = Scripted::new();
    let err = s
        .run(
            &mut SimpleUpload::from_source(
                op(),
                BucketId::new(BUCKET),
                0..5_000_000_001,
                Sha1Digest::of(b""),
                session_arc(),
                &RetryPolicy::default(),
            ),
            |_| unreachable!(),
            |_| unreachable!(),
        )
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidInput(InvalidInput::Size { .. })),
        "{err}"
    );
    assert_eq!(s.trace.len(), 1);
}

#[test]
fn a_pooled_url_is_used_and_handed_back() {
    let server = Server::new();
    let mut pool = UploadUrlPool::new(4);
    let bucket = BucketId::new(BUCKET);
    let mut s = Scripted::new();
    let pooled = PooledTarget::new(
        UploadTarget::new(
            format!("https://pod-009.backblaze.com/b2api/v4/b2_upload_file/{BUCKET}/c009"),
            AuthToken::new("upload-9"),
        ),
        s.t0,
    );
    assert!(pool.put(bucket.clone(), pooled, s.t0));
    let target = pool.take(&bucket, s.now).unwrap();
    let mut upload = upload_from_bytes(&RetryPolicy::default()).with_target(target);
    let out = s
        .run(
            &mut upload,
            |r| server.respond(r, |_, r| stored(r)),
            |_| unreachable!(),
        )
        .unwrap();
    assert_eq!(s.trace, ["send b2_upload_file", "done ok"]);
    assert_eq!(s.sent[0].headers()["authorization"], "upload-9");
    assert!(pool.put(bucket.clone(), out.target, s.now));
    assert_eq!(pool.idle(&bucket), 1);
}

#[test]
fn pool_limits_age_and_discard() {
    let t0 = std::time::Instant::now();
    let bucket = BucketId::new("b1");
    let other = BucketId::new("b2");
    let target = |n: u32, at| {
        PooledTarget::new(
            UploadTarget::new(format!("https://pod/{n}"), AuthToken::new("t")),
            at,
        )
    };
    let mut pool = UploadUrlPool::new(2);
    assert!(pool.put(bucket.clone(), target(1, t0), t0));
    assert!(pool.put(bucket.clone(), target(2, t0), t0));
    assert!(!pool.put(bucket.clone(), target(3, t0), t0), "full");
    assert!(pool.put(other.clone(), target(4, t0), t0), "per bucket");
    assert_eq!(pool.take(&bucket, t0).unwrap().target.url, "https://pod/2");
    // Old URLs are neither taken nor kept.
    let late = t0 + Duration::from_secs(23 * 3600);
    assert!(pool.take(&bucket, late).is_none());
    assert_eq!(pool.idle(&bucket), 0);
    assert!(!pool.put(bucket.clone(), target(5, t0), late));
    let short = UploadUrlPool::new(1).with_max_age(Duration::from_secs(10));
    let mut short = short;
    assert!(short.put(bucket.clone(), target(6, t0), t0 + Duration::from_secs(9)));
    assert!(short.take(&bucket, t0 + Duration::from_secs(10)).is_none());
    pool.discard(&other);
    assert_eq!(pool.idle(&other), 0);
    assert!(pool.take(&other, t0).is_none());
}

proptest::proptest! {
    /// Under any schedule of failures, the upload ends, never sends more upload attempts than
    /// the policy allows, and succeeds only when B2 stored the bytes.
    #[test]
    fn any_fault_schedule_ends_cleanly(faults in proptest::collection::vec(0u8..16, 0..30)) {
        let server = Server::new();
        let mut schedule = faults.into_iter();
        let mut s = Scripted::new();
        let result = s.run(
            &mut upload_from_bytes(&RetryPolicy::default()),
            |r| {
                let fault = match schedule.next().unwrap_or(0) {
                    1 => Some(Ok(error_response(503, "service_unavailable", "busy"))),
                    2 => Some(Err(transport(TransportErrorKind::Interrupted))),
                    3 => Some(Ok(response("b2_upload_file/bad_sha1"))),
                    4 => Some(Ok(error_response(401, "expired_auth_token", "expired"))),
                    5 => Some(Ok(response("b2_upload_file/auth_token_limit"))),
                    6 => Some(Ok(error_response(400, "bad_request", "no"))),
                    _ => None,
                };
                fault.unwrap_or_else(|| server.respond(r, |_, r| stored(r)))
            },
            |_| unreachable!(),
        );
        let uploads = s.trace.iter().filter(|l| *l == "send b2_upload_file").count();
        proptest::prop_assert!(uploads <= 10, "{:?}", s.trace);
        if let Ok(out) = result {
            proptest::prop_assert_eq!(out.file.content_length, 9);
            proptest::prop_assert_eq!(s.trace.last().map(String::as_str), Some("done ok"));
        }
    }
}
