//! `b2_get_download_authorization`: request goldens, parses of documented replies, duration
//! validation and token redaction.
#![allow(clippy::disallowed_methods)]

mod common;

use b2_proto::ops::{GetDownloadAuthorization, Operation};
use b2_proto::{BucketId, Error, ErrorCode, InvalidInput};
use common::*;

const TOKEN: &str = "3_20160803004041_53982a92f631a8c7303e3266_d940c7f5ee17cd1de3758aaacf1024188bc0cd0b_000_20160804004041_0006_dnld";

fn op(seconds: u64) -> GetDownloadAuthorization {
    GetDownloadAuthorization::new(BucketId::new("a71f544e781e6891531b001a"), "public", seconds)
}

fn invalid(result: Result<http::Request<bytes::Bytes>, Error>) -> InvalidInput {
    match result {
        Err(Error::InvalidInput(e)) => e,
        other => panic!("expected InvalidInput, got {other:?}"),
    }
}

#[test]
fn requests() {
    let s = session();
    assert_golden(
        "b2_get_download_authorization/minimal",
        &op(86_400).request(&s).unwrap(),
    );
    let all = GetDownloadAuthorization::new(
        BucketId::new("a71f544e781e6891531b001a"),
        "pets/café +1/",
        604_800,
    )
    .with_b2_content_disposition("attachment; filename=\"kitten.jpg\"")
    .with_b2_content_language("en-US")
    .with_b2_expires("Thu, 01 Dec 2033 16:00:00 GMT")
    .with_b2_cache_control("max-age=3600")
    .with_b2_content_encoding("gzip")
    .with_b2_content_type("image/jpeg");
    assert_golden(
        "b2_get_download_authorization/overrides",
        &all.request(&s).unwrap(),
    );
}

#[test]
fn duration_is_one_second_to_one_week() {
    let s = session();
    let e = invalid(op(0).request(&s));
    assert!(e.to_string().contains("0 seconds"), "{e}");
    let e = invalid(op(604_801).request(&s));
    assert!(e.to_string().contains("604801"), "{e}");
    assert!(op(1).request(&s).is_ok());
    assert!(op(604_800).request(&s).is_ok());
}

#[test]
fn prefix_follows_file_name_rules() {
    let s = session();
    let bucket = || BucketId::new("a71f544e781e6891531b001a");
    assert!(
        GetDownloadAuthorization::new(bucket(), "", 60)
            .request(&s)
            .is_ok()
    );
    assert!(matches!(
        GetDownloadAuthorization::new(bucket(), "bad\nprefix", 60).request(&s),
        Err(Error::InvalidInput(InvalidInput::FileName { .. }))
    ));
    assert!(
        GetDownloadAuthorization::new(bucket(), "x".repeat(1025), 60)
            .request(&s)
            .is_err()
    );
}

#[test]
fn parses_documented_reply_and_redacts_the_token() {
    let auth = op(86_400)
        .parse(response("b2_get_download_authorization/ok"))
        .unwrap();
    assert_eq!(auth.bucket_id.as_str(), "a71f544e781e6891531b001a");
    assert_eq!(auth.file_name_prefix, "public");
    assert_eq!(auth.authorization_token.expose_secret(), TOKEN);
    let printed = format!("{auth:?} {auth:#?}");
    assert!(!printed.contains("53982a92f631a8c7303e3266"), "{printed}");
    assert!(printed.contains("a71f544e781e6891531b001a"));
}

#[test]
fn malformed_reply_does_not_leak_the_token() {
    let e = op(60)
        .parse(response("b2_get_download_authorization/truncated"))
        .unwrap_err();
    assert!(matches!(e, Error::Decode(_)));
    let printed = format!("{e} {e:?}");
    assert!(!printed.contains("SECRETTOKEN"), "{printed}");
}

#[test]
fn documented_errors() {
    let got = |case: &str| match op(60)
        .parse(response(&format!("b2_get_download_authorization/{case}")))
    {
        Err(Error::Api(e)) => (e.status.as_u16(), e.code),
        other => panic!("{case}: {other:?}"),
    };
    assert_eq!(got("bad_request"), (400, ErrorCode::BadRequest));
    assert_eq!(got("unauthorized"), (401, ErrorCode::Unauthorized));
}
