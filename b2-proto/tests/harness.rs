//! Checks of the shared test support itself, and of `Call` through it.
#![allow(clippy::disallowed_methods)]

mod common;

use b2_proto::ops::{Operation, check_status, json_request};
use b2_proto::{Call, Error, ErrorCode, RetryPolicy, Session, TransportErrorKind};
use bytes::Bytes;
use common::*;

/// A stand-in operation: the machine tests of `Call` need no particular B2 call.
struct Probe;

impl Operation for Probe {
    type Output = String;
    const NAME: &'static str = "b2_probe";
    fn request(&self, s: &Session) -> Result<http::Request<Bytes>, Error> {
        json_request(s, Self::NAME, &serde_json::json!({"x": 1}))
    }
    fn parse(&self, r: http::Response<Bytes>) -> Result<String, Error> {
        check_status(r).map(|(_, body)| String::from_utf8_lossy(&body).into_owned())
    }
}

#[test]
fn fixture_parser_reads_raw_http() {
    let r = parse_http(b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3\r\nContent-Type: application/json\r\n\r\n{\"a\":1}");
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "3");
    assert_eq!(r.body().as_ref(), b"{\"a\":1}");
}

#[test]
fn call_retries_503_with_backoff_then_succeeds() {
    let mut call = Call::new(Probe, session_arc(), &RetryPolicy::default().with_seed(1));
    let mut s = Scripted::new();
    let mut n = 0;
    let out = s.run(
        &mut call,
        |_| {
            n += 1;
            Ok(if n < 3 {
                error_response(503, "service_unavailable", "busy")
            } else {
                json_response(200, "ok")
            })
        },
        |_| unreachable!(),
    );
    assert_eq!(out.unwrap(), "ok");
    let shape: Vec<_> = s
        .trace
        .iter()
        .map(|l| {
            if l.starts_with("wait") {
                "wait"
            } else {
                l.as_str()
            }
        })
        .collect();
    assert_eq!(
        shape,
        [
            "send b2_probe",
            "wait",
            "send b2_probe",
            "wait",
            "send b2_probe",
            "done ok"
        ]
    );
}

#[test]
fn call_honours_retry_after_on_429() {
    let mut call = Call::new(Probe, session_arc(), &RetryPolicy::default());
    let mut s = Scripted::new();
    let mut first = true;
    let out = s.run(
        &mut call,
        |_| {
            if std::mem::take(&mut first) {
                let mut r = error_response(429, "too_many_requests", "slow down");
                r.headers_mut()
                    .insert("retry-after", http::HeaderValue::from_static("7"));
                Ok(r)
            } else {
                Ok(json_response(200, "ok"))
            }
        },
        |_| unreachable!(),
    );
    assert!(out.is_ok());
    assert_eq!(
        s.trace,
        ["send b2_probe", "wait 7000ms", "send b2_probe", "done ok"]
    );
}

#[test]
fn call_reauthorizes_once_on_expired_token() {
    let mut call = Call::new(Probe, session_arc(), &RetryPolicy::default());
    let mut s = Scripted::new();
    let out = s.run(
        &mut call,
        |req| {
            Ok(if req.headers()["authorization"] == TOKEN {
                error_response(401, "expired_auth_token", "Authorization token has expired")
            } else {
                json_response(200, "ok")
            })
        },
        |_| unreachable!(),
    );
    assert!(out.is_ok());
    assert_eq!(
        s.trace,
        ["send b2_probe", "reauthorize", "send b2_probe", "done ok"]
    );
    assert_eq!(s.sent[1].headers()["authorization"], NEW_TOKEN);
    // Refused again right after re-authorizing: fail with B2's error, no second re-authorization.
    let mut call = Call::new(Probe, session_arc(), &RetryPolicy::default());
    let mut s = Scripted::new();
    let err = s
        .run(
            &mut call,
            |_| Ok(error_response(401, "expired_auth_token", "expired")),
            |_| unreachable!(),
        )
        .unwrap_err();
    assert_eq!(err.code(), Some(&ErrorCode::ExpiredAuthToken));
    assert_eq!(s.trace.iter().filter(|l| *l == "reauthorize").count(), 1);
}

#[test]
fn call_does_not_repeat_non_idempotent_after_timeout_but_retries_connect_errors() {
    struct Create;
    impl Operation for Create {
        type Output = ();
        const NAME: &'static str = "b2_create_thing";
        fn request(&self, s: &Session) -> Result<http::Request<Bytes>, Error> {
            json_request(s, Self::NAME, &serde_json::json!({}))
        }
        fn parse(&self, r: http::Response<Bytes>) -> Result<(), Error> {
            check_status(r).map(|_| ())
        }
        fn retry_class(&self) -> b2_proto::RetryClass {
            b2_proto::RetryClass::NonIdempotent
        }
    }
    let mut s = Scripted::new();
    let err = s
        .run(
            &mut Call::new(Create, session_arc(), &RetryPolicy::default()),
            |_| Err(transport(TransportErrorKind::Timeout)),
            |_| unreachable!(),
        )
        .unwrap_err();
    assert!(matches!(err, Error::Transport(_)));
    assert_eq!(s.trace.len(), 2);
    let mut s = Scripted::new();
    let mut n = 0;
    let out = s.run(
        &mut Call::new(Create, session_arc(), &RetryPolicy::default()),
        |_| {
            n += 1;
            if n == 1 {
                Err(transport(TransportErrorKind::Connect))
            } else {
                Ok(json_response(200, "{}"))
            }
        },
        |_| unreachable!(),
    );
    assert!(out.is_ok());
}

#[test]
fn call_gives_up_after_max_attempts() {
    let policy = RetryPolicy::default().with_max_attempts(3);
    let mut s = Scripted::new();
    let err = s
        .run(
            &mut Call::new(Probe, session_arc(), &policy),
            |_| Ok(error_response(500, "internal_error", "oops")),
            |_| unreachable!(),
        )
        .unwrap_err();
    assert!(
        matches!(err, Error::RetriesExhausted { attempts: 3, .. }),
        "{err}"
    );
    assert_eq!(err.code(), Some(&ErrorCode::InternalError));
}

#[test]
fn authorize_call_retries_busy_realm_and_fails_fast_on_refused_key() {
    use b2_proto::{ApplicationKey, ApplicationKeyId, AuthorizeAccount, AuthorizeCall};
    let op = || {
        AuthorizeAccount::new(ApplicationKeyId::new("kid"), ApplicationKey::new("k"))
            .with_realm("http://127.0.0.1:1")
    };
    let ok = r#"{"accountId":"acc","authorizationToken":"4_tok","apiInfo":{"storageApi":{
        "apiUrl":"http://api","downloadUrl":"http://dl","recommendedPartSize":100000000,
        "absoluteMinimumPartSize":5000000,"allowed":{"buckets":null,"capabilities":["listBuckets"],"namePrefix":null}}}}"#;
    let mut s = Scripted::new();
    let mut n = 0;
    let session = s
        .run(
            &mut AuthorizeCall::new(op(), &RetryPolicy::default()),
            |req| {
                assert_eq!(
                    req.uri(),
                    "http://127.0.0.1:1/b2api/v4/b2_authorize_account"
                );
                n += 1;
                if n == 1 {
                    Ok(error_response(503, "service_unavailable", "busy"))
                } else {
                    Ok(json_response(200, ok))
                }
            },
            |_| unreachable!(),
        )
        .unwrap();
    assert_eq!(session.account_id.as_str(), "acc");
    assert_eq!(
        session.api_endpoint("b2_list_buckets"),
        "http://api/b2api/v4/b2_list_buckets"
    );
    assert!(!format!("{session:?}").contains("4_tok"));
    assert_eq!(s.trace.len(), 4, "{:?}", s.trace);
    let mut s = Scripted::new();
    let err = s
        .run(
            &mut AuthorizeCall::new(op(), &RetryPolicy::default()),
            |_| Ok(error_response(401, "unauthorized", "bad key")),
            |_| unreachable!(),
        )
        .unwrap_err();
    assert!(err.is_unauthorized());
    assert_eq!(
        s.trace,
        [
            "send b2_authorize_account",
            "done err 401 Unauthorized unauthorized: bad key"
        ]
    );
}
