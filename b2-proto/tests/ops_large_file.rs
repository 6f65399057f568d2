//! Large-file operations: request goldens, reply fixtures, validation.
#![allow(clippy::disallowed_methods)]

mod common;

use b2_proto::model::{Action, CustomerKey, Encryption, FileRetention, LegalHold, RetentionMode};
use b2_proto::ops::{
    CancelLargeFile, CopyPart, FinishLargeFile, ListParts, ListUnfinishedLargeFiles, Operation,
    Paginated, RetryClass, StartLargeFile, UploadPart, UploadTarget,
};
use b2_proto::{
    AuthToken, BucketId, ContentSha1, Error, ErrorCode, FileId, FileInfo, FileName, InvalidInput,
    PartNumber, Sha1Digest,
};
use bytes::Bytes;
use common::*;

const LARGE: &str =
    "4_za71f544e781e6891531b001a_f200ec353a2184825_d20160409_m004829_c000_v0001016_t0028";

fn large() -> FileId {
    FileId::new(LARGE)
}

fn part(n: u32) -> PartNumber {
    PartNumber::new(n).unwrap()
}

fn body(request: &http::Request<Bytes>) -> serde_json::Value {
    serde_json::from_slice(request.body()).unwrap()
}

fn check_errors<Op: Operation>(op: &Op, cases: &[(&str, u16, ErrorCode)])
where
    Op::Output: std::fmt::Debug,
{
    for (case, status, code) in cases {
        let e = op
            .parse(response(&format!("{}/{case}", Op::NAME)))
            .unwrap_err();
        assert_eq!(e.status().map(|s| s.as_u16()), Some(*status), "{case}");
        assert_eq!(e.code(), Some(code), "{case}");
    }
}

#[test]
fn start_large_file_golden_and_reply() {
    let mut info = FileInfo::new();
    info.insert("author", "Zoë & co").unwrap();
    let op = StartLargeFile::new(
        BucketId::new("e73ede9c9c8412db49f60715"),
        FileName::new("videos/été 2024.mp4").unwrap(),
    )
    .with_content_type("video/mp4")
    .with_file_info(info)
    .with_last_modified_millis(1_460_162_809_000)
    .with_large_file_sha1(Sha1Digest::of(b"abc"))
    .with_legal_hold(LegalHold::On)
    .with_retention(FileRetention::new(
        RetentionMode::Compliance,
        1_900_000_000_000,
    ))
    .with_encryption(Encryption::SseB2);
    let request = op.request(&session()).unwrap();
    assert_golden("b2_start_large_file/request", &request);
    let json = body(&request);
    // JSON carries names and info as plain UTF-8, never percent-encoded.
    assert_eq!(json["fileName"], "videos/été 2024.mp4");
    assert_eq!(json["fileInfo"]["author"], "Zoë & co");
    assert_eq!(
        json["fileInfo"]["large_file_sha1"],
        "a9993e364706816aba3e25717850c26c9cd0d89d"
    );
    assert_eq!(op.retry_class(), RetryClass::NonIdempotent);

    let v = op.parse(response("b2_start_large_file/success")).unwrap();
    assert_eq!(v.action, Action::Start);
    assert_eq!(v.file_id, Some(large()));
    assert_eq!(v.content_sha1, ContentSha1::None);
    check_errors(
        &op,
        &[
            ("bad_request", 400, ErrorCode::BadRequest),
            ("file_lock_conflict", 400, ErrorCode::FileLockConflict),
            ("cap_exceeded", 403, ErrorCode::CapExceeded),
            ("too_many_requests", 429, ErrorCode::TooManyRequests),
        ],
    );
}

#[test]
fn start_large_file_minimal_and_validation() {
    let op = StartLargeFile::new(BucketId::new("b"), FileName::new("f").unwrap());
    let json = body(&op.request(&session()).unwrap());
    assert_eq!(
        json,
        serde_json::json!({"bucketId": "b", "fileName": "f", "contentType": "b2/x-auto"})
    );
    // Info over 2048 bytes is refused with SSE.
    let mut info = FileInfo::new();
    info.insert("big", "x".repeat(2100)).unwrap();
    let plain =
        StartLargeFile::new(BucketId::new("b"), FileName::new("f").unwrap()).with_file_info(info);
    assert!(plain.request(&session()).is_ok());
    let e = plain
        .with_encryption(Encryption::SseC(CustomerKey::new([1; 32])))
        .request(&session())
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::InvalidInput(InvalidInput::FileInfoTooLarge { limit: 2048, .. })
        ),
        "{e}"
    );
    // large_file_sha1 as an eleventh entry is refused.
    let mut info = FileInfo::new();
    for i in 0..10 {
        info.insert(format!("k{i}"), "v").unwrap();
    }
    let e = StartLargeFile::new(BucketId::new("b"), FileName::new("f").unwrap())
        .with_file_info(info)
        .with_large_file_sha1(Sha1Digest::of(b""))
        .request(&session())
        .unwrap_err();
    assert!(
        matches!(e, Error::InvalidInput(InvalidInput::FileInfo { .. })),
        "{e}"
    );
}

#[test]
fn upload_part_golden_and_reply_checks() {
    let sha1 = Sha1Digest::from_hex("062685a84ab248d2488f02f6b01b948de2514ad8").unwrap();
    let target = UploadTarget::new(
        "https://pod-000-1016-09.backblaze.com/b2api/v4/b2_upload_part/4_za71f544e781e6891531b001a_f200ec353a2184825_d20160409_m004829_c000_v0001016_t0028/0037",
        AuthToken::new("3_part_token"),
    );
    let op = UploadPart::new(part(1), 100_000_000, sha1)
        .with_customer_key(CustomerKey::new([7; 32]))
        .with_user_agent(session().user_agent.clone());
    let head = op.request_head(&target).unwrap();
    assert_golden("b2_upload_part/request", &head.map(|()| Bytes::new()));
    assert_eq!(op.retry_class(), RetryClass::Upload);

    let p = op.parse(response("b2_upload_part/success")).unwrap();
    assert_eq!(p.part_number, part(1));
    assert_eq!(p.content_length, 100_000_000);
    // The reply must describe the part that was sent.
    for wrong in [
        UploadPart::new(part(2), 100_000_000, sha1),
        UploadPart::new(part(1), 99_999_999, sha1),
        UploadPart::new(part(1), 100_000_000, Sha1Digest::of(b"x")),
    ] {
        assert!(matches!(
            wrong.parse(response("b2_upload_part/success")),
            Err(Error::InvalidResponse {
                op: "b2_upload_part",
                ..
            })
        ));
    }
    for (case, status, code) in [
        ("bad_sha1", 400, ErrorCode::BadRequest),
        ("auth_token_limit", 400, ErrorCode::AuthTokenLimit),
        ("cap_exceeded", 403, ErrorCode::CapExceeded),
        ("service_unavailable", 503, ErrorCode::ServiceUnavailable),
    ] {
        let e = op
            .parse(response(&format!("b2_upload_part/{case}")))
            .unwrap_err();
        assert_eq!(e.status().map(|s| s.as_u16()), Some(status), "{case}");
        assert_eq!(e.code(), Some(&code), "{case}");
    }
    // Over 5 GB, and a body of the wrong length.
    assert!(matches!(
        UploadPart::new(part(1), 5_000_000_001, sha1).request_head(&target),
        Err(Error::InvalidInput(InvalidInput::Size { .. }))
    ));
    assert!(
        UploadPart::new(part(1), 3, sha1)
            .request(&target, Bytes::from_static(b"ab"))
            .is_err()
    );
}

#[test]
fn copy_part_golden_and_reply() {
    let op = CopyPart::new(FileId::new("4_source"), large(), part(1))
        .with_range(0..5_000_000)
        .with_source_key(CustomerKey::new([1; 32]))
        .with_destination_key(CustomerKey::new([2; 32]));
    let request = op.request(&session()).unwrap();
    assert_golden("b2_copy_part/request", &request);
    assert_eq!(body(&request)["range"], "bytes=0-4999999");
    let p = op.parse(response("b2_copy_part/success")).unwrap();
    assert_eq!(p.content_length, 5_000_000);
    assert!(p.content_sha1.digest().is_some());
    // Wrong part number or length in the reply.
    assert!(matches!(
        CopyPart::new(FileId::new("s"), large(), part(2)).parse(response("b2_copy_part/success")),
        Err(Error::InvalidResponse { .. })
    ));
    assert!(matches!(
        CopyPart::new(FileId::new("s"), large(), part(1))
            .with_range(0..10)
            .parse(response("b2_copy_part/success")),
        Err(Error::InvalidResponse { .. })
    ));
    check_errors(
        &op,
        &[
            ("bad_request", 400, ErrorCode::BadRequest),
            ("access_denied", 403, ErrorCode::AccessDenied),
        ],
    );
    // Whole-file copy: no range. Empty or oversize ranges are refused.
    let whole = CopyPart::new(FileId::new("s"), large(), part(1));
    assert!(
        body(&whole.request(&session()).unwrap())
            .get("range")
            .is_none()
    );
    for range in [5..5, 0..5_000_000_001] {
        assert!(matches!(
            CopyPart::new(FileId::new("s"), large(), part(1))
                .with_range(range)
                .request(&session()),
            Err(Error::InvalidInput(InvalidInput::Size { .. }))
        ));
    }
}

#[test]
fn list_parts_golden_pages_and_errors() {
    let mut op = ListParts::new(large()).with_max_part_count(1000);
    op.set_cursor(Some(part(3)));
    assert_golden("b2_list_parts/request", &op.request(&session()).unwrap());
    let page = op.parse(response("b2_list_parts/first_page")).unwrap();
    assert_eq!(ListParts::next_cursor(&page), Some(part(3)));
    assert_eq!(page.parts.len(), 2);
    let page = op.parse(response("b2_list_parts/success")).unwrap();
    assert_eq!(ListParts::next_cursor(&page), None);
    let parts = ListParts::into_items(page);
    assert_eq!(
        parts
            .iter()
            .map(|p| p.part_number.get())
            .collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(parts[2].content_length, 8_158_542);
    check_errors(
        &op,
        &[
            ("bad_request", 400, ErrorCode::BadRequest),
            ("out_of_range", 400, ErrorCode::OutOfRange),
        ],
    );
    for bad in [0, 1001] {
        assert!(matches!(
            ListParts::new(large())
                .with_max_part_count(bad)
                .request(&session()),
            Err(Error::InvalidInput(InvalidInput::Argument { .. }))
        ));
    }
}

#[test]
fn finish_large_file_golden_and_errors() {
    let sha1s = vec![
        Sha1Digest::from_hex("062685a84ab248d2488f02f6b01b948de2514ad8").unwrap(),
        Sha1Digest::from_hex("cf634751c3d9f6a15344f23cbf13f3fc9542addf").unwrap(),
        Sha1Digest::from_hex("4546018a346df683acc9a3367977de4cc8024965").unwrap(),
    ];
    let op = FinishLargeFile::new(large(), sha1s);
    assert_golden(
        "b2_finish_large_file/request",
        &op.request(&session()).unwrap(),
    );
    let v = op.parse(response("b2_finish_large_file/success")).unwrap();
    assert_eq!(v.action, Action::Upload);
    assert_eq!(v.content_length, 208_158_542);
    assert_eq!(
        v.whole_file_sha1().unwrap().to_hex(),
        "a9993e364706816aba3e25717850c26c9cd0d89d"
    );
    check_errors(
        &op,
        &[
            ("bad_request", 400, ErrorCode::BadRequest),
            ("missing_part", 400, ErrorCode::MissingPart),
            ("part_sha1_mismatch", 400, ErrorCode::PartSha1Mismatch),
            ("too_few_parts", 400, ErrorCode::BadRequest),
        ],
    );
    assert!(matches!(
        FinishLargeFile::new(large(), vec![]).request(&session()),
        Err(Error::InvalidInput(_))
    ));
}

#[test]
fn cancel_large_file_golden_and_reply() {
    let op = CancelLargeFile::new(large());
    assert_golden(
        "b2_cancel_large_file/request",
        &op.request(&session()).unwrap(),
    );
    let c = op.parse(response("b2_cancel_large_file/success")).unwrap();
    assert_eq!(c.file_id, large());
    assert_eq!(c.file_name.as_str(), "bigfile.dat");
    check_errors(&op, &[("bad_request", 400, ErrorCode::BadRequest)]);
}

#[test]
fn list_unfinished_large_files_golden_pages_and_errors() {
    let mut op = ListUnfinishedLargeFiles::new(BucketId::new("e73ede9c9c8412db49f60715"))
        .with_name_prefix("vidéos/")
        .with_max_file_count(100);
    op.set_cursor(Some(FileId::new("4_start")));
    let request = op.request(&session()).unwrap();
    assert_golden("b2_list_unfinished_large_files/request", &request);
    assert_eq!(body(&request)["namePrefix"], "vidéos/");
    let page = op
        .parse(response("b2_list_unfinished_large_files/success"))
        .unwrap();
    assert_eq!(page.files[0].action, Action::Start);
    assert!(ListUnfinishedLargeFiles::next_cursor(&page).is_some());
    let page = op
        .parse(response("b2_list_unfinished_large_files/last_page"))
        .unwrap();
    assert_eq!(ListUnfinishedLargeFiles::next_cursor(&page), None);
    assert!(ListUnfinishedLargeFiles::into_items(page).is_empty());
    check_errors(
        &op,
        &[
            ("bad_request", 400, ErrorCode::BadRequest),
            ("out_of_range", 400, ErrorCode::OutOfRange),
        ],
    );
    assert!(
        ListUnfinishedLargeFiles::new(BucketId::new("b"))
            .with_max_file_count(101)
            .request(&session())
            .is_err()
    );
}
