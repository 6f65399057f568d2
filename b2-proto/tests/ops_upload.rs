//! `b2_get_upload_url`, `b2_get_upload_part_url` and `b2_upload_file`: request goldens,
//! reply fixtures, validation.
#![allow(clippy::disallowed_methods)]

mod common;

use b2_proto::model::{CustomerKey, Encryption, FileRetention, LegalHold, RetentionMode};
use b2_proto::ops::{
    GetUploadPartUrl, GetUploadUrl, Operation, RetryClass, UploadFile, UploadSha1, UploadTarget,
};
use b2_proto::{
    AuthToken, BucketId, ContentSha1, Error, ErrorCode, FileId, FileInfo, FileName, InvalidInput,
    Sha1Digest,
};
use bytes::Bytes;
use common::*;

fn target() -> UploadTarget {
    UploadTarget::new(
        "https://pod-000-1005-03.backblaze.com/b2api/v4/b2_upload_file?cvt=c001_v0001005_t0027&bucket=4a48fe8875c6214145260818",
        AuthToken::new("2_upload_token"),
    )
}

fn name(s: &str) -> FileName {
    FileName::new(s).unwrap()
}

#[test]
fn get_upload_url_request_and_reply() {
    let op = GetUploadUrl::new(BucketId::new("4a48fe8875c6214145260818"));
    assert_golden(
        "b2_get_upload_url/request",
        &op.request(&session()).unwrap(),
    );
    let t = op.parse(response("b2_get_upload_url/success")).unwrap();
    assert!(
        t.url
            .starts_with("https://pod-000-1005-03.backblaze.com/b2api/v4/b2_upload_file?")
    );
    assert_eq!(
        t.token.expose_secret(),
        "2_20151009170037_f504a0f39a0f4e657337e624_9754dde94359bd7b8f1445c8f4cc1a231a33f714_upld"
    );
    assert_eq!(t.bucket_id, Some(BucketId::new("4a48fe8875c6214145260818")));
    let printed = format!("{t:?}");
    assert!(
        !printed.contains("9754dde94359"),
        "token redacted: {printed}"
    );
    assert_eq!(op.retry_class(), RetryClass::Idempotent);
}

#[test]
fn get_upload_url_errors() {
    let op = GetUploadUrl::new(BucketId::new("b"));
    for (case, status, code) in [
        ("bad_request", 400, ErrorCode::BadRequest),
        ("unauthorized", 401, ErrorCode::Unauthorized),
        ("expired_auth_token", 401, ErrorCode::ExpiredAuthToken),
        ("storage_cap_exceeded", 403, ErrorCode::StorageCapExceeded),
        ("service_unavailable", 503, ErrorCode::ServiceUnavailable),
    ] {
        let e = op
            .parse(response(&format!("b2_get_upload_url/{case}")))
            .unwrap_err();
        assert_eq!(e.status().map(|s| s.as_u16()), Some(status), "{case}");
        assert_eq!(e.code(), Some(&code), "{case}");
    }
    let e = op
        .parse(response("b2_get_upload_url/service_unavailable"))
        .unwrap_err();
    assert_eq!(
        e.api().unwrap().retry_after,
        Some(std::time::Duration::from_secs(2))
    );
}

#[test]
fn malformed_target_reply_does_not_leak_the_token() {
    let op = GetUploadUrl::new(BucketId::new("b"));
    let e = op
        .parse(json_response(
            200,
            r#"{"authorizationToken":"4_secret_tok","uploadUrl":5}"#,
        ))
        .unwrap_err();
    assert!(matches!(e, Error::Decode(_)));
    assert!(!format!("{e} {e:?}").contains("4_secret_tok"));
}

#[test]
fn get_upload_part_url_request_and_reply() {
    let id = FileId::new(
        "4_za71f544e781e6891531b001a_f200ec353a2184825_d20160409_m004829_c000_v0001016_t0028",
    );
    let op = GetUploadPartUrl::new(id.clone());
    assert_golden(
        "b2_get_upload_part_url/request",
        &op.request(&session()).unwrap(),
    );
    let t = op
        .parse(response("b2_get_upload_part_url/success"))
        .unwrap();
    assert_eq!(t.file_id, Some(id));
    assert!(t.url.contains("/b2api/v4/b2_upload_part/"));
    let e = op
        .parse(response("b2_get_upload_part_url/bad_request"))
        .unwrap_err();
    assert_eq!(e.code(), Some(&ErrorCode::BadRequest));
    let e = op
        .parse(response("b2_get_upload_part_url/unauthorized"))
        .unwrap_err();
    assert!(e.is_unauthorized());
}

fn full_upload() -> UploadFile {
    let mut info = FileInfo::new();
    info.insert("Author", "Zoë Smith & co").unwrap();
    info.insert("b2-content-disposition", "attachment; filename=\"a b.txt\"")
        .unwrap();
    info.insert("b2-cache-control", "max-age=3600").unwrap();
    UploadFile::new(name("photos/été 2024/a+b c.txt"))
        .with_content_type("text/plain")
        .with_file_info(info)
        .with_last_modified_millis(1_700_000_000_000)
        .with_custom_upload_timestamp(1_700_000_000_123)
        .with_legal_hold(LegalHold::On)
        .with_retention(FileRetention::new(
            RetentionMode::Governance,
            1_900_000_000_000,
        ))
}

#[test]
fn upload_file_golden_with_every_header() {
    let body = Bytes::from_static(b"The quick brown fox jumps over the lazy dog.\n");
    let request = full_upload()
        .with_user_agent(session().user_agent.clone())
        .request(&target(), body.clone())
        .unwrap();
    assert_golden("b2_upload_file/request", &request);
    let h = request.headers();
    assert_eq!(
        h["x-bz-file-name"],
        "photos/%C3%A9t%C3%A9%202024/a%2Bb%20c.txt"
    );
    assert_eq!(h["x-bz-info-author"], "Zo%C3%AB%20Smith%20%26%20co");
    assert_eq!(h["content-length"], body.len().to_string().as_str());
    assert_eq!(
        h["x-bz-content-sha1"],
        Sha1Digest::of(&body).to_hex().as_str()
    );
    assert_eq!(h["authorization"], "2_upload_token");
    assert_eq!(request.method(), "POST");
    assert_eq!(request.body(), &body);
}

#[test]
fn upload_file_golden_sse_c_and_sha1_at_end() {
    let key = CustomerKey::new([7u8; 32]);
    let op = UploadFile::new(name("secret.bin"))
        .with_encryption(Encryption::SseC(key))
        .with_test_mode("fail_some_uploads")
        .with_user_agent(session().user_agent.clone());
    let head = op
        .request_head(&target(), 1000, &UploadSha1::HexDigitsAtEnd)
        .unwrap();
    assert_eq!(head.headers()["content-length"], "1040");
    assert_eq!(head.headers()["content-type"], "b2/x-auto");
    assert_golden("b2_upload_file/request_sse_c", &head.map(|()| Bytes::new()));
    let op = UploadFile::new(name("plain.bin")).with_encryption(Encryption::SseB2);
    let d = Sha1Digest::of(b"x");
    let head = op
        .request_head(&target(), 1, &UploadSha1::Unverified(d))
        .unwrap();
    assert_eq!(
        head.headers()["x-bz-content-sha1"],
        format!("unverified:{d}").as_str()
    );
    assert_eq!(head.headers()["x-bz-server-side-encryption"], "AES256");
    let head = op
        .request_head(&target(), 1, &UploadSha1::DoNotVerify)
        .unwrap();
    assert_eq!(head.headers()["x-bz-content-sha1"], "do_not_verify");
}

#[test]
fn upload_file_reply_parses_and_is_checked() {
    let op = UploadFile::new(name("typing_test.txt"));
    let v = op.parse(response("b2_upload_file/success")).unwrap();
    assert_eq!(v.content_length, 46);
    assert_eq!(v.file_info.get("author"), Some("unknown"));
    let stored = Sha1Digest::from_hex("bae5ed658ab3546aee12f23f36392f35dba1ebdd").unwrap();
    assert_eq!(v.content_sha1, ContentSha1::Verified(stored));
    assert!(
        op.parse_checked(
            response("b2_upload_file/success"),
            46,
            &UploadSha1::Digest(stored)
        )
        .is_ok()
    );
    // A reply that contradicts the upload is refused.
    for (len, sha1) in [
        (47, UploadSha1::Digest(stored)),
        (46, UploadSha1::Digest(Sha1Digest::of(b"other"))),
    ] {
        let e = op
            .parse_checked(response("b2_upload_file/success"), len, &sha1)
            .unwrap_err();
        assert!(matches!(e, Error::InvalidResponse { .. }), "{e}");
    }
    let other = UploadFile::new(name("another.txt"));
    assert!(matches!(
        other.parse_checked(
            response("b2_upload_file/success"),
            46,
            &UploadSha1::HexDigitsAtEnd
        ),
        Err(Error::InvalidResponse { .. })
    ));
    assert_eq!(op.retry_class(), RetryClass::Upload);
}

#[test]
fn upload_file_errors() {
    let op = UploadFile::new(name("a"));
    for (case, status, code) in [
        ("bad_sha1", 400, ErrorCode::BadRequest),
        ("bad_request", 400, ErrorCode::BadRequest),
        ("auth_token_limit", 400, ErrorCode::AuthTokenLimit),
        ("unauthorized", 401, ErrorCode::Unauthorized),
        ("expired_auth_token", 401, ErrorCode::ExpiredAuthToken),
        ("cap_exceeded", 403, ErrorCode::CapExceeded),
        ("request_timeout", 408, ErrorCode::RequestTimeout),
        ("service_unavailable", 503, ErrorCode::ServiceUnavailable),
    ] {
        let e = op
            .parse(response(&format!("b2_upload_file/{case}")))
            .unwrap_err();
        assert_eq!(e.status().map(|s| s.as_u16()), Some(status), "{case}");
        assert_eq!(e.code(), Some(&code), "{case}");
    }
}

#[test]
fn upload_file_validation_happens_before_any_request() {
    let t = target();
    let sha1 = UploadSha1::DoNotVerify;
    // Over 5 GB.
    let e = UploadFile::new(name("big"))
        .request_head(&t, 5_000_000_001, &sha1)
        .unwrap_err();
    assert!(
        matches!(e, Error::InvalidInput(InvalidInput::Size { .. })),
        "{e}"
    );
    assert!(
        UploadFile::new(name("big"))
            .request_head(&t, 5_000_000_000, &sha1)
            .is_ok()
    );
    // 2100 bytes of info fit in 7000, not in 2048 with SSE or Object Lock.
    let mut info = FileInfo::new();
    info.insert("big", "x".repeat(2100)).unwrap();
    let op = UploadFile::new(name("a")).with_file_info(info);
    assert!(op.request_head(&t, 1, &sha1).is_ok());
    for strict in [
        op.clone().with_encryption(Encryption::SseB2),
        op.clone().with_legal_hold(LegalHold::Off),
        op.clone().with_lock_enabled_bucket(true),
        op.clone()
            .with_retention(FileRetention::new(RetentionMode::Compliance, 1)),
    ] {
        let e = strict.request_head(&t, 1, &sha1).unwrap_err();
        assert!(
            matches!(
                e,
                Error::InvalidInput(InvalidInput::FileInfoTooLarge { limit: 2048, .. })
            ),
            "{e}"
        );
    }
    // A key that is a valid info key but not a valid header name.
    let mut info = FileInfo::new();
    info.insert("clé", "v").unwrap();
    let e = UploadFile::new(name("a"))
        .with_file_info(info)
        .request_head(&t, 1, &sha1)
        .unwrap_err();
    assert!(
        matches!(e, Error::InvalidInput(InvalidInput::FileInfo { .. })),
        "{e}"
    );
    // A content type that cannot be a header.
    let e = UploadFile::new(name("a"))
        .with_content_type("text/plain\n")
        .request_head(&t, 1, &sha1)
        .unwrap_err();
    assert!(
        matches!(e, Error::InvalidInput(InvalidInput::Argument { .. })),
        "{e}"
    );
}
