//! Downloads: request goldens, heads checked against requests, documented errors.
#![allow(clippy::disallowed_methods)]

mod common;

use b2_proto::model::{CustomerKey, EncryptionMode, LegalHold, RetentionMode};
use b2_proto::ops::{
    ByteRange, ContentRange, DownloadAuth, DownloadFileById, DownloadFileByName, DownloadOverrides,
    share_url,
};
use b2_proto::verify::{Sha1Source, Unverifiable, Verification};
use b2_proto::{
    AuthToken, BucketName, ContentSha1, Error, ErrorCode, FileId, FileName, IntegrityError,
    Operation,
};
use bytes::Bytes;
use common::*;

const FID1: &str =
    "4_ze73ede9c9c8412db49f60715_f100b4e93fbae6252_d20150824_m224353_c900_v8881000_t0001";
const FID2: &str =
    "4_ze73ede9c9c8412db49f60715_f200b4e93fbae6252_d20150824_m224353_c900_v8881000_t0002";
const FID3: &str =
    "4_ze73ede9c9c8412db49f60715_f300b4e93fbae6252_d20150824_m224353_c900_v8881000_t0003";
/// The name the download fixtures carry, percent-encoded with '+' for spaces.
const ODD_NAME: &str = "dir/ä b+c%d 自由.txt";
/// SHA1 of "hello world\n", computed with Python's hashlib.
const HELLO_SHA1: &str = "22596363b3de40b06f981fb85d82312e8c0ed511";

fn by_id() -> DownloadFileById {
    DownloadFileById::new(FileId::new(FID1))
}

fn by_name() -> DownloadFileByName {
    DownloadFileByName::new(
        BucketName::new("photos-2024").unwrap(),
        FileName::new(ODD_NAME).unwrap(),
    )
}

fn head_of(response: http::Response<Bytes>) -> http::response::Parts {
    response.into_parts().0
}

/// A fixture with some headers replaced (`Some`) or removed (`None`).
fn altered(name: &str, changes: &[(&str, Option<&str>)]) -> http::Response<Bytes> {
    let mut r = response(name);
    for (header, value) in changes {
        match value {
            Some(v) => {
                r.headers_mut().insert(
                    http::HeaderName::from_bytes(header.as_bytes()).unwrap(),
                    http::HeaderValue::from_str(v).unwrap(),
                );
            }
            None => {
                r.headers_mut().remove(*header);
            }
        }
    }
    r
}

fn invalid_response(result: Result<impl std::fmt::Debug, Error>) -> String {
    match result {
        Err(Error::InvalidResponse { reason, .. }) => reason,
        other => panic!("expected InvalidResponse, got {other:?}"),
    }
}

// ---- requests --------------------------------------------------------------------------

#[test]
fn download_by_id_request_golden() {
    let op = by_id()
        .with_range(ByteRange::new(0, 99).unwrap())
        .with_customer_key(CustomerKey::new([7u8; 32]))
        .with_overrides(
            DownloadOverrides::new()
                .with_content_disposition("attachment; filename=\"a b.txt\"")
                .with_cache_control("max-age=60"),
        );
    let request = op.request(&session()).unwrap();
    assert_golden("b2_download_file_by_id/request", &request);
    assert_eq!(request.method(), "GET");
    assert!(request.body().is_empty());
}

#[test]
fn download_by_name_request_golden_encodes_the_name_in_the_path() {
    let op = by_name()
        .with_range(ByteRange::suffix(100).unwrap())
        .with_auth(DownloadAuth::Query(AuthToken::new("3_2016_dnld/x+y")))
        .with_overrides(
            DownloadOverrides::new()
                .with_content_type("text/plain; charset=utf-8")
                .with_content_language("de-CH")
                .with_expires("Wed, 21 Oct 2026 07:28:00 GMT")
                .with_content_encoding("gzip"),
        );
    let request = op.request(&session()).unwrap();
    assert_golden("b2_download_file_by_name/request", &request);
    assert_eq!(
        request.uri().path(),
        "/file/photos-2024/dir/%C3%A4%20b%2Bc%25d%20%E8%87%AA%E7%94%B1.txt",
        "'/' stays literal, '+' and '%' are escaped"
    );
    assert!(request.headers().get("authorization").is_none());
    assert!(
        request
            .uri()
            .query()
            .unwrap()
            .contains("Authorization=3_2016_dnld%2Fx%2By")
    );
}

#[test]
fn head_request_for_a_public_bucket_golden() {
    let op = by_name().head_only().with_auth(DownloadAuth::None);
    let request = op.request(&session()).unwrap();
    assert_golden("b2_download_file_by_name/request_head", &request);
    assert_eq!(request.method(), "HEAD");
    let header_token = by_id()
        .with_auth(DownloadAuth::Header(AuthToken::new("3_download_token")))
        .request(&session())
        .unwrap();
    assert_eq!(header_token.headers()["authorization"], "3_download_token");
}

#[test]
fn download_requests_refuse_what_b2_would_refuse() {
    // By id, the token goes only in the header.
    let err = by_id()
        .with_auth(DownloadAuth::Query(AuthToken::new("t")))
        .request(&session())
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    // Overrides need authorization.
    let err = by_name()
        .with_auth(DownloadAuth::None)
        .with_overrides(DownloadOverrides::new().with_content_type("text/plain"))
        .request(&session())
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    assert!(ByteRange::new(10, 9).is_err());
    assert!(ByteRange::suffix(0).is_err());
    assert!(ByteRange::from_range(5..5).is_err());
}

#[test]
fn share_url_puts_the_token_in_the_query() {
    let url = share_url(
        "https://f001.backblazeb2.com/",
        &BucketName::new("photos-2024").unwrap(),
        &FileName::new(ODD_NAME).unwrap(),
        &AuthToken::new(
            "3_20160803004041_53982a92f631a8c7303e3266_d940c7f5ee17cd1de3758aaacf1024188bc0cd0b_000_20160804004041_0006_dnld",
        ),
        &DownloadOverrides::new(),
    );
    assert_eq!(
        url,
        "https://f001.backblazeb2.com/file/photos-2024/dir/%C3%A4%20b%2Bc%25d%20%E8%87%AA%E7%94%B1.txt\
         ?Authorization=3_20160803004041_53982a92f631a8c7303e3266_d940c7f5ee17cd1de3758aaacf1024188bc0cd0b_000_20160804004041_0006_dnld"
    );
    assert!(url.parse::<http::Uri>().is_ok());
    let with_overrides = share_url(
        "https://f001.backblazeb2.com",
        &BucketName::new("photos-2024").unwrap(),
        &FileName::new("a&b=c?.pdf").unwrap(),
        &AuthToken::new("3_tok"),
        &DownloadOverrides::new()
            .with_content_disposition("attachment; filename=\"a&b.pdf\"")
            .with_content_type("application/pdf"),
    );
    assert_eq!(
        with_overrides,
        "https://f001.backblazeb2.com/file/photos-2024/a%26b=c%3F.pdf?Authorization=3_tok\
         &b2ContentDisposition=attachment%3B%20filename%3D%22a%26b.pdf%22&b2ContentType=application%2Fpdf"
    );
}

// ---- heads -----------------------------------------------------------------------------

#[test]
fn head_of_a_whole_download_is_decoded() {
    let head = by_name()
        .parse_head(&head_of(response("b2_download_file_by_name/success")))
        .unwrap();
    assert_eq!(head.status, 200);
    assert!(!head.is_partial());
    assert_eq!(head.file_id.as_str(), FID1);
    assert_eq!(head.file_name.as_str(), ODD_NAME);
    assert_eq!(head.content_length, 12);
    assert_eq!(head.file_size(), 12);
    assert_eq!(head.content_type.as_deref(), Some("text/plain"));
    assert_eq!(head.content_sha1.to_string(), HELLO_SHA1);
    assert_eq!(head.upload_timestamp, Some(1_700_000_000_000));
    assert_eq!(head.file_info.get("author"), Some("Ada Lovelace, 1815"));
    assert_eq!(
        head.file_info.get("src_last_modified_millis"),
        Some("1699999999000")
    );
    assert_eq!(head.file_info.len(), 2);
    assert_eq!(
        head.content_disposition.as_deref(),
        Some("attachment; filename=\"report.txt\"")
    );
    assert_eq!(head.content_language.as_deref(), Some("en"));
    assert_eq!(
        head.expires.as_deref(),
        Some("Wed, 21 Oct 2026 07:28:00 GMT")
    );
    assert_eq!(head.cache_control.as_deref(), Some("max-age=3600"));
    assert_eq!(head.content_encoding.as_deref(), Some("identity"));
    assert_eq!(head.content_range, None);
    assert_eq!(head.server_side_encryption, None);
    assert!(head.file_retention.is_client_authorized_to_read);
    assert_eq!(head.file_retention.value, None);
}

#[test]
fn object_lock_and_sse_c_headers_are_read() {
    let head = DownloadFileById::new(FileId::new(FID2))
        .parse_head(&head_of(response("b2_download_file_by_id/locked_sse_c")))
        .unwrap();
    let retention = head.file_retention.value.clone().unwrap();
    assert_eq!(retention.mode, Some(RetentionMode::Compliance));
    assert_eq!(retention.retain_until_timestamp, Some(1_900_000_000_000));
    assert!(head.file_retention.is_client_authorized_to_read);
    assert!(!head.legal_hold.is_client_authorized_to_read);
    assert_eq!(head.legal_hold.value, None);
    assert_eq!(head.unauthorized_to_read, ["X-Bz-File-Legal-Hold"]);
    let sse = head.server_side_encryption.unwrap();
    assert_eq!(sse.mode, Some(EncryptionMode::SseC));
    assert_eq!(
        sse.customer_key_md5.as_deref(),
        Some("y4HAEFCYWuvAXWFTtA1Qpg==")
    );
    let held = altered(
        "b2_download_file_by_id/locked_sse_c",
        &[
            ("x-bz-file-legal-hold", Some("on")),
            ("x-bz-client-unauthorized-to-read", None),
        ],
    );
    let head = DownloadFileById::new(FileId::new(FID2))
        .parse_head(&head_of(held))
        .unwrap();
    assert_eq!(head.legal_hold.value, Some(LegalHold::On));
    assert!(head.legal_hold.is_client_authorized_to_read);
}

#[test]
fn ranged_head_matches_the_request() {
    let parts = head_of(response("b2_download_file_by_id/range"));
    let head = by_id()
        .with_range(ByteRange::new(6, 10).unwrap())
        .parse_head(&parts)
        .unwrap();
    assert!(head.is_partial());
    assert_eq!(
        head.content_range,
        Some(ContentRange::parse("bytes 6-10/12").unwrap())
    );
    assert_eq!(head.content_length, 5);
    assert_eq!(head.file_size(), 12);
    // Equivalent forms of the same bytes are accepted.
    for range in [
        ByteRange::suffix(6).unwrap(),
        ByteRange::new(6, 10).unwrap(),
    ] {
        let ok = by_id().with_range(range).parse_head(&parts);
        assert_eq!(
            ok.is_ok(),
            range == ByteRange::new(6, 10).unwrap(),
            "{range:?}"
        );
    }
    assert!(
        by_id()
            .with_range(ByteRange::new(6, 10_000).unwrap())
            .parse_head(&parts)
            .is_err(),
        "B2 clamps 6-10000 to 6-11, so 6-10 is not the answer"
    );
    let reason = invalid_response(
        by_id()
            .with_range(ByteRange::new(0, 4).unwrap())
            .parse_head(&parts),
    );
    assert!(reason.contains("bytes=0-4"), "{reason}");
    let reason = invalid_response(by_id().parse_head(&parts));
    assert!(reason.contains("without a range"), "{reason}");
}

#[test]
fn contradictory_or_malformed_heads_are_invalid_responses() {
    let ranged = by_id().with_range(ByteRange::new(6, 10).unwrap());
    for (changes, expect) in [
        (vec![("content-range", None)], "without content-range"),
        (vec![("content-range", Some("bytes 6-10"))], "malformed"),
        (vec![("content-range", Some("bytes 10-6/12"))], "malformed"),
        (vec![("content-length", Some("4"))], "content-length"),
    ] {
        let reason = invalid_response(
            ranged.parse_head(&head_of(altered("b2_download_file_by_id/range", &changes))),
        );
        assert!(reason.contains(expect), "{reason}");
    }
    for (changes, expect) in [
        (vec![("x-bz-file-id", None)], "x-bz-file-id"),
        (vec![("x-bz-file-id", Some(FID3))], "asked for file id"),
        (
            vec![("x-bz-file-name", Some("bad%zzname"))],
            "x-bz-file-name",
        ),
        (
            vec![("x-bz-file-name", Some("bad%FFname"))],
            "x-bz-file-name",
        ),
        (
            vec![("x-bz-info-author", Some("Ada%2"))],
            "x-bz-info-author",
        ),
        (vec![("content-length", None)], "content-length"),
        (vec![("content-length", Some("-1"))], "content-length"),
        (
            vec![("x-bz-upload-timestamp", Some("soon"))],
            "x-bz-upload-timestamp",
        ),
    ] {
        let reason = invalid_response(by_id().parse_head(&head_of(altered(
            "b2_download_file_by_id/success",
            &changes,
        ))));
        assert!(reason.contains(expect), "{changes:?}: {reason}");
    }
    // By name, the reply must name the requested file.
    let other = DownloadFileByName::new(
        BucketName::new("photos-2024").unwrap(),
        FileName::new("dir/ä b c%d 自由.txt").unwrap(),
    );
    let reason =
        invalid_response(other.parse_head(&head_of(response("b2_download_file_by_name/success"))));
    assert!(reason.contains("asked for file"), "{reason}");
    // Non-ASCII bytes in an x-bz header are refused, not mangled.
    let mut r = response("b2_download_file_by_id/success");
    r.headers_mut().insert(
        "x-bz-file-name",
        http::HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap(),
    );
    invalid_response(by_id().parse_head(&head_of(r)));
    // A 2xx other than 200 and 206.
    let mut r = response("b2_download_file_by_id/success");
    *r.status_mut() = http::StatusCode::NO_CONTENT;
    invalid_response(by_id().parse_head(&head_of(r)));
}

// ---- whole downloads -------------------------------------------------------------------

#[test]
fn small_download_is_parsed_and_verified() {
    for download in [
        by_id().parse(response("b2_download_file_by_id/success")),
        by_name().parse(response("b2_download_file_by_name/success")),
    ] {
        let download = download.unwrap();
        assert_eq!(download.body.as_ref(), b"hello world\n");
        match download.verification.unwrap() {
            Verification::Matched { sha1, source } => {
                assert_eq!(sha1.to_hex(), HELLO_SHA1);
                assert_eq!(source, Sha1Source::Verified);
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn corrupt_or_truncated_bodies_are_integrity_errors() {
    let err = by_id()
        .parse(response("b2_download_file_by_id/corrupt"))
        .unwrap_err();
    match err {
        Error::Integrity(IntegrityError::Sha1Mismatch { expected, actual }) => {
            assert_eq!(expected.to_hex(), HELLO_SHA1);
            // SHA1 of "hello world!", computed with Python's hashlib.
            assert_eq!(actual.to_hex(), "430ce34d020724ed75a196dfc2ad67c77772d169");
        }
        other => panic!("{other:?}"),
    }
    let mut truncated = response("b2_download_file_by_id/success");
    *truncated.body_mut() = Bytes::from_static(b"hello");
    assert!(matches!(
        by_id().parse(truncated),
        Err(Error::Integrity(IntegrityError::LengthMismatch {
            expected: 12,
            actual: 5
        }))
    ));
}

#[test]
fn head_replies_have_empty_bodies() {
    let download = by_id()
        .head_only()
        .parse(response("b2_download_file_by_id/head"))
        .unwrap();
    assert!(download.body.is_empty());
    assert_eq!(download.verification, None);
    assert_eq!(download.head.content_length, 12);
    assert_eq!(download.head.file_size(), 12);
    let download = by_name()
        .head_only()
        .parse(response("b2_download_file_by_name/head"))
        .unwrap();
    assert_eq!(download.head.file_name.as_str(), ODD_NAME);
    // A HEAD error has no body: the status alone gives the code.
    for op_result in [
        by_id()
            .head_only()
            .parse(response("b2_download_file_by_id/head_not_found")),
        by_name()
            .head_only()
            .parse(response("b2_download_file_by_name/head_not_found")),
    ] {
        let err = op_result.unwrap_err();
        assert!(err.is_not_found(), "{err}");
        assert_eq!(err.code(), Some(&ErrorCode::NotFound));
    }
    let err = by_id()
        .parse_head(&head_of(response("b2_download_file_by_id/head_not_found")))
        .unwrap_err();
    assert_eq!(err.code(), Some(&ErrorCode::NotFound));
}

#[test]
fn ranged_download_checks_length_but_not_sha1() {
    let download = by_name()
        .with_range(ByteRange::starting_at(6))
        .parse(altered(
            "b2_download_file_by_name/range",
            &[
                ("content-range", Some("bytes 6-11/12")),
                ("content-length", Some("6")),
            ],
        ));
    // The fixture's body holds 5 bytes, the head announces 6: truncated.
    assert!(matches!(
        download,
        Err(Error::Integrity(IntegrityError::LengthMismatch { .. }))
    ));
    let download = by_name()
        .with_range(ByteRange::new(6, 10).unwrap())
        .parse(response("b2_download_file_by_name/range"))
        .unwrap();
    assert_eq!(download.body.as_ref(), b"world");
    assert_eq!(
        download.verification,
        Some(Verification::Unverifiable(Unverifiable::RangedRead))
    );
}

#[test]
fn a_range_answered_with_the_whole_file_is_verified_in_full() {
    // B2 returns 200 and the whole file for a range that covers it.
    let download = by_id()
        .with_range(ByteRange::new(0, 1000).unwrap())
        .parse(response("b2_download_file_by_id/success"))
        .unwrap();
    assert!(download.verification.unwrap().is_matched());
}

#[test]
fn large_files_verify_against_large_file_sha1() {
    let op = DownloadFileById::new(FileId::new(FID3));
    let download = op
        .parse(response("b2_download_file_by_id/large_file"))
        .unwrap();
    assert_eq!(download.head.content_sha1, ContentSha1::None);
    assert_eq!(
        download.head.server_side_encryption.unwrap().mode,
        Some(EncryptionMode::SseB2)
    );
    match download.verification.unwrap() {
        Verification::Matched { sha1, source } => {
            // SHA1 of "0123456789" * 25, computed with Python's hashlib.
            assert_eq!(sha1.to_hex(), "fce6f28abbc06c665c0a6dc59e47854b2fae2f53");
            assert_eq!(source, Sha1Source::LargeFileInfo);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn documented_download_errors_map_to_codes() {
    for op in ["b2_download_file_by_id", "b2_download_file_by_name"] {
        let parse = |case: &str| {
            let r = response(&format!("{op}/{case}"));
            if op == "b2_download_file_by_id" {
                by_id().parse(r).unwrap_err()
            } else {
                by_name().parse(r).unwrap_err()
            }
        };
        for (case, status, code) in [
            ("error_not_found", 404, ErrorCode::NotFound),
            (
                "error_range_not_satisfiable",
                416,
                ErrorCode::RangeNotSatisfiable,
            ),
            ("error_access_denied", 403, ErrorCode::AccessDenied),
            ("error_unauthorized", 401, ErrorCode::Unauthorized),
            ("error_missing_auth_token", 401, ErrorCode::MissingAuthToken),
        ] {
            let err = parse(case);
            assert_eq!(err.status().unwrap().as_u16(), status, "{op}/{case}");
            assert_eq!(err.code(), Some(&code), "{op}/{case}");
        }
    }
}

#[test]
fn content_range_parsing_never_panics() {
    for raw in [
        "",
        "bytes",
        "bytes -/",
        "bytes 1-2/",
        "bytes 1-2/x",
        "bytes 18446744073709551616-1/2",
        "bytes +1-2/3",
        "items 0-1/2",
        "bytes 0-0/0",
    ] {
        assert_eq!(ContentRange::parse(raw), None, "{raw:?}");
    }
    assert_eq!(ContentRange::parse("bytes 0-0/1").map(|r| r.len()), Some(1));
}

// ---- driven by Call --------------------------------------------------------------------

#[test]
fn call_retries_a_busy_download_and_reauthorizes_with_the_new_token() {
    use b2_proto::{Call, RetryPolicy};
    let mut call = Call::new(by_id(), session_arc(), &RetryPolicy::default().with_seed(7));
    let mut s = Scripted::new();
    let mut n = 0;
    let download = s
        .run(
            &mut call,
            |req| {
                n += 1;
                Ok(match n {
                    1 => error_response(503, "service_unavailable", "c001_v0001 too busy"),
                    2 => {
                        error_response(401, "expired_auth_token", "Authorization token has expired")
                    }
                    _ => {
                        assert_eq!(req.headers()["authorization"], NEW_TOKEN);
                        response("b2_download_file_by_id/success")
                    }
                })
            },
            |_| unreachable!(),
        )
        .unwrap();
    assert!(download.verification.unwrap().is_matched());
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
            "send b2_download_file_by_id",
            "wait",
            "send b2_download_file_by_id",
            "reauthorize",
            "send b2_download_file_by_id",
            "done ok"
        ]
    );
}

#[test]
fn call_does_not_retry_a_missing_file() {
    use b2_proto::{Call, RetryPolicy};
    let mut call = Call::new(by_name(), session_arc(), &RetryPolicy::default());
    let mut s = Scripted::new();
    let err = s
        .run(
            &mut call,
            |_| Ok(response("b2_download_file_by_name/error_not_found")),
            |_| unreachable!(),
        )
        .unwrap_err();
    assert!(err.is_not_found());
    assert_eq!(s.trace.len(), 2, "{:?}", s.trace);
    assert_eq!(s.trace[0], "send download_by_name");
}

proptest::proptest! {
    /// Whatever a server puts in the headers, reading the head returns a value or an error.
    #[test]
    fn parse_head_never_panics(
        status in proptest::sample::select(vec![200u16, 204, 206, 301, 404, 416, 503]),
        values in proptest::collection::vec("[ -~]{0,24}", 8),
        present in proptest::collection::vec(proptest::bool::ANY, 8),
    ) {
        let names = [
            "content-length", "content-range", "x-bz-file-id", "x-bz-file-name",
            "x-bz-content-sha1", "x-bz-upload-timestamp", "x-bz-info-a",
            "x-bz-file-retention-retain-until-timestamp",
        ];
        let mut b = http::Response::builder().status(status);
        for ((name, value), present) in names.iter().zip(&values).zip(&present) {
            if *present {
                if let Ok(v) = http::HeaderValue::from_str(value) {
                    b = b.header(*name, v);
                }
            }
        }
        let parts = b.body(()).unwrap().into_parts().0;
        for range in [None, Some(ByteRange::new(0, 9).unwrap()), Some(ByteRange::suffix(3).unwrap())] {
            let mut op = by_id();
            if let Some(r) = range {
                op = op.with_range(r);
            }
            let _ = op.parse_head(&parts);
            let _ = by_name().parse_head(&parts);
        }
    }
}

mod streaming {
    use super::common::*;
    use b2_proto::ops::{ByteRange, DownloadCall, DownloadFileById, StreamHead};
    use b2_proto::{Call, ErrorCode, FileId, Operation, RetryPolicy};

    const ID: &str =
        "4_ze73ede9c9c8412db49f60715_f100b4e93fbae6252_d20150824_m224353_c900_v8881000_t0001";

    fn head_of(name: &str, op: &DownloadFileById) -> b2_proto::ops::DownloadHead {
        let (parts, _) = response(name).into_parts();
        op.parse_head(&parts).unwrap()
    }

    #[test]
    fn continuation_asks_for_exactly_the_missing_bytes() {
        let op = DownloadFileById::new(FileId::new(ID));
        let head = head_of("b2_download_file_by_id/success", &op);
        assert_eq!(head.content_length, 12);
        let rest = op.continuation(&head, 5).unwrap();
        assert_eq!(rest.byte_range().unwrap().header_value(), "bytes=5-11");
        assert_eq!(rest.file_id().as_str(), ID);
        assert!(op.continuation(&head, 12).is_none(), "nothing is missing");
    }

    #[test]
    fn continuation_of_a_range_stays_inside_it() {
        let ranged =
            DownloadFileById::new(FileId::new(ID)).with_range(ByteRange::new(6, 10).unwrap());
        let head = head_of("b2_download_file_by_id/range", &ranged);
        let range = head.content_range.unwrap();
        let rest = ranged.continuation(&head, 2).unwrap();
        assert_eq!(
            rest.byte_range().unwrap().header_value(),
            format!("bytes={}-{}", range.start + 2, range.end)
        );
    }

    #[test]
    fn a_continuation_of_another_version_is_refused() {
        let op = DownloadFileById::new(FileId::new(ID));
        let first = head_of("b2_download_file_by_id/success", &op);
        let mut next = first.clone();
        next.content_range = b2_proto::ops::ContentRange::parse("bytes 5-11/12");
        assert!(first.check_continuation(&next, 5).is_ok());
        assert!(first.check_continuation(&next, 4).is_err(), "wrong start");
        next.file_id = FileId::new("4_other");
        let err = first.check_continuation(&next, 5).unwrap_err();
        assert!(err.to_string().contains("the file changed"), "{err}");
    }

    #[test]
    fn stream_head_retries_then_reads_only_the_head() {
        let op = StreamHead::new(DownloadFileById::new(FileId::new(ID)));
        assert_eq!(
            <StreamHead<DownloadFileById> as Operation>::NAME,
            "b2_download_file_by_id"
        );
        let mut s = Scripted::new();
        let mut n = 0;
        let head = s
            .run(
                &mut Call::new(op, session_arc(), &RetryPolicy::default()),
                |_| {
                    n += 1;
                    if n == 1 {
                        return Ok(error_response(503, "service_unavailable", "busy"));
                    }
                    // The driver hands over the head with the body still streaming: empty here.
                    let (parts, _) = response("b2_download_file_by_id/success").into_parts();
                    Ok(http::Response::from_parts(parts, bytes::Bytes::new()))
                },
                |_| unreachable!(),
            )
            .unwrap();
        assert_eq!(head.content_length, 12);
        assert_eq!(head.file_id.as_str(), ID);
        assert_eq!(s.trace.len(), 4);
        let mut s = Scripted::new();
        let err = s
            .run(
                &mut Call::new(
                    StreamHead::new(DownloadFileById::new(FileId::new(ID))),
                    session_arc(),
                    &RetryPolicy::default(),
                ),
                |_| Ok(response("b2_download_file_by_id/error_not_found")),
                |_| unreachable!(),
            )
            .unwrap_err();
        assert_eq!(err.code(), Some(&ErrorCode::NotFound));
    }
}
