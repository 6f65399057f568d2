//! File-version calls: request goldens, documented replies and errors, cursor round trips.
#![allow(clippy::disallowed_methods)]

mod common;

use b2_proto::model::{
    Action, CustomerKey, Encryption, EncryptionMode, FileRetention, LegalHold, RetentionMode,
};
use b2_proto::ops::{
    ByteRange, CopyFile, DeleteFileVersion, FileVersionsCursor, GetFileInfo, HideFile,
    ListFileNames, ListFileVersions, MetadataDirective, UpdateFileLegalHold, UpdateFileRetention,
};
use b2_proto::{
    BucketId, ContentSha1, Error, ErrorCode, FileId, FileInfo, FileName, InvalidInput, Operation,
    Paginated, RetryClass,
};
use common::*;

const FID1: &str =
    "4_ze73ede9c9c8412db49f60715_f100b4e93fbae6252_d20150824_m224353_c900_v8881000_t0001";
const FID2: &str =
    "4_ze73ede9c9c8412db49f60715_f200b4e93fbae6252_d20150824_m224353_c900_v8881000_t0002";
const FID3: &str =
    "4_ze73ede9c9c8412db49f60715_f300b4e93fbae6252_d20150824_m224353_c900_v8881000_t0003";
const BUCKET: &str = "e73ede9c9c8412db49f60715";

fn name(s: &str) -> FileName {
    FileName::new(s).unwrap()
}

fn body_json(request: &http::Request<bytes::Bytes>) -> serde_json::Value {
    serde_json::from_slice(request.body()).unwrap()
}

fn assert_api(err: Error, status: u16, code: ErrorCode) {
    assert_eq!(err.status().map(|s| s.as_u16()), Some(status), "{err}");
    assert_eq!(err.code(), Some(&code), "{err}");
}

// ---- b2_list_file_names ----------------------------------------------------------------

#[test]
fn list_file_names_request_golden() {
    let op = ListFileNames::new(BucketId::new(BUCKET))
        .with_start_file_name(name("photos/a b+c.jpg"))
        .with_max_file_count(1000)
        .with_prefix("photos/")
        .with_delimiter("/");
    let request = op.request(&session()).unwrap();
    assert_golden("b2_list_file_names/request", &request);
    // Names in JSON are plain UTF-8, never percent-encoded.
    assert_eq!(body_json(&request)["startFileName"], "photos/a b+c.jpg");
    let minimal = ListFileNames::new(BucketId::new(BUCKET))
        .request(&session())
        .unwrap();
    assert_eq!(
        body_json(&minimal),
        serde_json::json!({"bucketId": BUCKET}),
        "unset options are left out"
    );
}

#[test]
fn list_file_names_parses_the_documented_reply() {
    let op = ListFileNames::new(BucketId::new(BUCKET));
    let page = op.parse(response("b2_list_file_names/success")).unwrap();
    assert_eq!(page.files.len(), 2);
    let first = &page.files[0];
    assert_eq!(first.action, Action::Upload);
    assert_eq!(first.file_name.as_str(), "files/hello.txt");
    assert_eq!(first.file_id.as_ref().unwrap().as_str(), FID1);
    assert_eq!(first.content_length, 6);
    assert!(matches!(first.content_sha1, ContentSha1::Verified(_)));
    assert_eq!(
        first.file_info.get("src_last_modified_millis"),
        Some("1438897930000")
    );
    let second = &page.files[1];
    assert_eq!(second.file_name.as_str(), "files/自由 + 100%.txt");
    assert!(matches!(second.content_sha1, ContentSha1::Unverified(_)));
    assert_eq!(
        second.server_side_encryption.as_ref().unwrap().mode,
        Some(EncryptionMode::SseB2)
    );
    assert_eq!(page.next_file_name, Some(name("files/world.txt")));
    assert_eq!(
        ListFileNames::next_cursor(&page),
        Some(name("files/world.txt"))
    );
    assert_eq!(ListFileNames::into_items(page).len(), 2);
}

#[test]
fn list_file_names_with_a_delimiter_returns_folders() {
    let op = ListFileNames::new(BucketId::new(BUCKET)).with_delimiter("/");
    let page = op.parse(response("b2_list_file_names/folders")).unwrap();
    assert_eq!(page.files[1].action, Action::Folder);
    assert_eq!(page.files[1].file_name.as_str(), "photos/2024/");
    assert_eq!(page.files[1].file_id, None);
    assert_eq!(ListFileNames::next_cursor(&page), None, "the last page");
}

#[test]
fn list_file_names_errors() {
    let op = ListFileNames::new(BucketId::new(BUCKET));
    assert_api(
        op.parse(response("b2_list_file_names/error_out_of_range"))
            .unwrap_err(),
        400,
        ErrorCode::OutOfRange,
    );
    assert_api(
        op.parse(response("b2_list_file_names/error_invalid_bucket_id"))
            .unwrap_err(),
        400,
        ErrorCode::InvalidBucketId,
    );
    let err = op
        .parse(response("b2_list_file_names/error_unauthorized"))
        .unwrap_err();
    assert!(err.is_unauthorized());
}

#[test]
fn list_file_names_rejects_bad_arguments_before_sending() {
    for count in [0, 10_001] {
        let err = ListFileNames::new(BucketId::new(BUCKET))
            .with_max_file_count(count)
            .request(&session())
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidInput(InvalidInput::Argument {
                    what: "maxFileCount",
                    ..
                })
            ),
            "{err}"
        );
    }
    assert!(
        ListFileNames::new(BucketId::new(BUCKET))
            .with_max_file_count(10_000)
            .request(&session())
            .is_ok()
    );
    assert!(
        ListFileNames::new(BucketId::new(BUCKET))
            .with_delimiter("")
            .request(&session())
            .is_err()
    );
}

#[test]
fn list_file_names_cursor_round_trips() {
    let page = ListFileNames::new(BucketId::new(BUCKET))
        .parse(response("b2_list_file_names/success"))
        .unwrap();
    let cursor = ListFileNames::next_cursor(&page).unwrap();
    let saved = serde_json::to_string(&cursor).unwrap();
    assert_eq!(saved, r#""files/world.txt""#);
    let restored: FileName = serde_json::from_str(&saved).unwrap();
    let mut op = ListFileNames::new(BucketId::new(BUCKET)).with_prefix("files/");
    op.set_cursor(Some(restored));
    let body = body_json(&op.request(&session()).unwrap());
    assert_eq!(body["startFileName"], "files/world.txt");
    assert_eq!(body["prefix"], "files/");
    op.set_cursor(None);
    assert!(
        body_json(&op.request(&session()).unwrap())
            .get("startFileName")
            .is_none()
    );
}

// ---- b2_list_file_versions -------------------------------------------------------------

#[test]
fn list_file_versions_request_golden() {
    let op = ListFileVersions::new(BucketId::new(BUCKET))
        .with_start(FileVersionsCursor::new(
            name("a b+c.txt"),
            Some(FileId::new(FID2)),
        ))
        .with_max_file_count(500)
        .with_prefix("a");
    assert_golden(
        "b2_list_file_versions/request",
        &op.request(&session()).unwrap(),
    );
}

#[test]
fn list_file_versions_parses_hide_markers_and_large_files() {
    let op = ListFileVersions::new(BucketId::new(BUCKET));
    let page = op.parse(response("b2_list_file_versions/success")).unwrap();
    let actions: Vec<_> = page.files.iter().map(|f| f.action.clone()).collect();
    assert_eq!(actions, [Action::Hide, Action::Upload, Action::Start]);
    assert_eq!(page.files[0].content_sha1, ContentSha1::None);
    let retention = page.files[1].file_retention.clone().unwrap().value.unwrap();
    assert_eq!(retention.mode, Some(RetentionMode::Governance));
    assert_eq!(retention.retain_until_timestamp, Some(1_900_000_000_000));
    assert_eq!(
        page.files[1].legal_hold.clone().unwrap().value,
        Some(LegalHold::On)
    );
    assert_eq!(
        page.files[2].whole_file_sha1().unwrap().to_hex(),
        "a9993e364706816aba3e25717850c26c9cd0d89d"
    );
    let cursor = ListFileVersions::next_cursor(&page).unwrap();
    assert_eq!(cursor.file_name, name("big.bin"));
    assert_eq!(
        cursor.file_id.unwrap().as_str(),
        "4_ze73ede9c9c8412db49f60715_f000b4e93fbae6252_d20150824_m224353_c900_v8881000_t0000"
    );
    let last = op
        .parse(response("b2_list_file_versions/last_page"))
        .unwrap();
    assert!(last.files.is_empty());
    assert_eq!(ListFileVersions::next_cursor(&last), None);
    assert_api(
        op.parse(response("b2_list_file_versions/error_bad_request"))
            .unwrap_err(),
        400,
        ErrorCode::BadRequest,
    );
}

#[test]
fn list_file_versions_cursor_round_trips() {
    let page = ListFileVersions::new(BucketId::new(BUCKET))
        .parse(response("b2_list_file_versions/success"))
        .unwrap();
    let cursor = ListFileVersions::next_cursor(&page).unwrap();
    let saved = serde_json::to_value(&cursor).unwrap();
    assert_eq!(
        saved,
        serde_json::json!({
            "fileName": "big.bin",
            "fileId": "4_ze73ede9c9c8412db49f60715_f000b4e93fbae6252_d20150824_m224353_c900_v8881000_t0000"
        })
    );
    let restored: FileVersionsCursor = serde_json::from_value(saved).unwrap();
    assert_eq!(restored, cursor);
    let mut op = ListFileVersions::new(BucketId::new(BUCKET));
    op.set_cursor(Some(restored));
    let body = body_json(&op.request(&session()).unwrap());
    assert_eq!(body["startFileName"], "big.bin");
    assert_eq!(
        body["startFileId"],
        "4_ze73ede9c9c8412db49f60715_f000b4e93fbae6252_d20150824_m224353_c900_v8881000_t0000"
    );
    // A cursor with a name only sends no startFileId.
    op.set_cursor(Some(FileVersionsCursor::new(name("x"), None)));
    let body = body_json(&op.request(&session()).unwrap());
    assert_eq!(body["startFileName"], "x");
    assert!(body.get("startFileId").is_none());
}

// ---- b2_get_file_info ------------------------------------------------------------------

#[test]
fn get_file_info_golden_reply_and_errors() {
    let op = GetFileInfo::new(FileId::new(FID1));
    assert_golden("b2_get_file_info/request", &op.request(&session()).unwrap());
    let v = op.parse(response("b2_get_file_info/success")).unwrap();
    assert_eq!(v.file_name.as_str(), "akitty.jpg");
    assert_eq!(v.content_length, 122_573);
    assert_eq!(v.content_type.as_deref(), Some("image/jpeg"));
    assert_eq!(
        v.content_md5.as_deref(),
        Some("142be8357f26eda2ec6775cce257753b")
    );
    assert_eq!(v.replication_status.as_deref(), Some("PENDING"));
    assert_eq!(v.upload_timestamp, 1_536_964_279_000);
    let err = op
        .parse(response("b2_get_file_info/error_not_found"))
        .unwrap_err();
    assert!(err.is_not_found());
    assert_api(err, 404, ErrorCode::NotFound);
    assert_api(
        op.parse(response("b2_get_file_info/error_bad_request"))
            .unwrap_err(),
        400,
        ErrorCode::BadRequest,
    );
    // A reply about another version contradicts the request.
    let other = GetFileInfo::new(FileId::new(FID2));
    assert!(matches!(
        other.parse(response("b2_get_file_info/success")),
        Err(Error::InvalidResponse {
            op: "b2_get_file_info",
            ..
        })
    ));
}

// ---- b2_hide_file ----------------------------------------------------------------------

#[test]
fn hide_file_golden_reply_and_errors() {
    let op = HideFile::new(BucketId::new(BUCKET), name("photos/cat 1+2.jpg"));
    assert_eq!(op.retry_class(), RetryClass::NonIdempotent);
    let request = op.request(&session()).unwrap();
    assert_golden("b2_hide_file/request", &request);
    assert_eq!(body_json(&request)["fileName"], "photos/cat 1+2.jpg");
    let v = op.parse(response("b2_hide_file/success")).unwrap();
    assert_eq!(v.action, Action::Hide);
    assert_eq!(v.file_id.unwrap().as_str(), FID3);
    assert_eq!(
        v.content_type.as_deref(),
        Some("application/x-bz-hide-marker")
    );
    assert_eq!(v.content_sha1, ContentSha1::None);
    assert_api(
        op.parse(response("b2_hide_file/error_already_hidden"))
            .unwrap_err(),
        400,
        ErrorCode::AlreadyHidden,
    );
    let err = op
        .parse(response("b2_hide_file/error_no_such_file"))
        .unwrap_err();
    assert!(err.is_not_found());
    assert_api(err, 400, ErrorCode::NoSuchFile);
}

// ---- b2_delete_file_version ------------------------------------------------------------

#[test]
fn delete_file_version_golden_reply_and_errors() {
    let op = DeleteFileVersion::new(name("files/hello.txt"), FileId::new(FID1))
        .with_bypass_governance(true);
    assert_golden(
        "b2_delete_file_version/request",
        &op.request(&session()).unwrap(),
    );
    let plain = DeleteFileVersion::new(name("files/hello.txt"), FileId::new(FID1));
    assert!(
        body_json(&plain.request(&session()).unwrap())
            .get("bypassGovernance")
            .is_none()
    );
    let deleted = op
        .parse(response("b2_delete_file_version/success"))
        .unwrap();
    assert_eq!(deleted.file_id.as_str(), FID1);
    assert_eq!(deleted.file_name.as_str(), "files/hello.txt");
    let err = op
        .parse(response("b2_delete_file_version/error_file_not_present"))
        .unwrap_err();
    assert!(err.is_not_found());
    assert_api(err, 400, ErrorCode::FileNotPresent);
    assert_api(
        op.parse(response("b2_delete_file_version/error_access_denied"))
            .unwrap_err(),
        403,
        ErrorCode::AccessDenied,
    );
}

// ---- b2_update_file_retention / b2_update_file_legal_hold ------------------------------

#[test]
fn update_file_retention_golden_reply_and_errors() {
    let op = UpdateFileRetention::new(
        name("files/hello.txt"),
        FileId::new(FID1),
        FileRetention::new(RetentionMode::Governance, 1_628_942_493_000),
    );
    assert_golden(
        "b2_update_file_retention/request",
        &op.request(&session()).unwrap(),
    );
    let update = op
        .parse(response("b2_update_file_retention/success"))
        .unwrap();
    assert_eq!(update.file_retention.mode, Some(RetentionMode::Governance));
    assert_eq!(
        update.file_retention.retain_until_timestamp,
        Some(1_628_942_493_000)
    );
    assert_api(
        op.parse(response("b2_update_file_retention/error_access_denied"))
            .unwrap_err(),
        403,
        ErrorCode::AccessDenied,
    );
    assert_api(
        op.parse(response(
            "b2_update_file_retention/error_file_lock_conflict",
        ))
        .unwrap_err(),
        400,
        ErrorCode::FileLockConflict,
    );
}

#[test]
fn removing_governance_retention_sends_nulls_and_bypass() {
    let op = UpdateFileRetention::new(
        name("files/hello.txt"),
        FileId::new(FID1),
        FileRetention::none(),
    )
    .with_bypass_governance(true);
    let request = op.request(&session()).unwrap();
    assert_golden("b2_update_file_retention/remove", &request);
    assert_eq!(
        body_json(&request)["fileRetention"],
        serde_json::json!({"mode": null, "retainUntilTimestamp": null})
    );
    // Half a setting is refused before sending.
    let mut half = FileRetention::none();
    half.mode = Some(RetentionMode::Compliance);
    let err = UpdateFileRetention::new(name("f"), FileId::new(FID1), half)
        .request(&session())
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
}

#[test]
fn update_file_legal_hold_golden_reply_and_errors() {
    let op = UpdateFileLegalHold::new(name("files/hello.txt"), FileId::new(FID1), LegalHold::On);
    assert_golden(
        "b2_update_file_legal_hold/request",
        &op.request(&session()).unwrap(),
    );
    let update = op
        .parse(response("b2_update_file_legal_hold/success"))
        .unwrap();
    assert_eq!(update.legal_hold, Some(LegalHold::On));
    assert_api(
        op.parse(response("b2_update_file_legal_hold/error_file_not_present"))
            .unwrap_err(),
        400,
        ErrorCode::FileNotPresent,
    );
    let err = UpdateFileLegalHold::new(
        name("f"),
        FileId::new(FID1),
        LegalHold::Other("maybe".into()),
    )
    .request(&session())
    .unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)));
}

// ---- b2_copy_file ----------------------------------------------------------------------

#[test]
fn copy_file_with_metadata_copy_golden() {
    let op = CopyFile::new(FileId::new(FID1), name("copies/hello copy.txt"))
        .with_range(ByteRange::new(0, 5).unwrap());
    assert_eq!(op.retry_class(), RetryClass::NonIdempotent);
    let request = op.request(&session()).unwrap();
    assert_golden("b2_copy_file/request_copy", &request);
    let body = body_json(&request);
    assert_eq!(body["metadataDirective"], "COPY");
    assert!(body.get("contentType").is_none() && body.get("fileInfo").is_none());
}

#[test]
fn copy_file_with_replace_sse_and_object_lock_golden() {
    let mut info = FileInfo::new();
    info.insert("author", "Ada Lovelace").unwrap();
    let key = CustomerKey::new([7u8; 32]);
    let op = CopyFile::new(FileId::new(FID1), name("copies/hello copy.txt"))
        .with_destination_bucket(BucketId::new("a71f544e781e6891531b001a"))
        .with_metadata(MetadataDirective::replace("text/plain", info))
        .with_file_retention(FileRetention::new(
            RetentionMode::Compliance,
            1_900_000_000_000,
        ))
        .with_legal_hold(LegalHold::Off)
        .with_source_key(key.clone())
        .with_destination_encryption(Encryption::SseC(key));
    let request = op.request(&session()).unwrap();
    assert_golden("b2_copy_file/request_replace", &request);
    let body = body_json(&request);
    assert_eq!(
        body["fileInfo"],
        serde_json::json!({"author": "Ada Lovelace"})
    );
    assert_eq!(body["sourceServerSideEncryption"]["mode"], "SSE-C");
    assert_eq!(
        body["destinationServerSideEncryption"]["customerKeyMd5"],
        "y4HAEFCYWuvAXWFTtA1Qpg=="
    );
    assert!(!format!("{op:?}").contains(&CustomerKey::new([7u8; 32]).to_base64()));
}

#[test]
fn copy_file_parses_reply_and_documented_errors() {
    let op = CopyFile::new(FileId::new(FID1), name("copies/hello copy.txt"));
    let v = op.parse(response("b2_copy_file/success")).unwrap();
    assert_eq!(v.file_id.as_ref().unwrap().as_str(), FID2);
    assert_eq!(
        v.server_side_encryption
            .unwrap()
            .customer_key_md5
            .as_deref(),
        Some("y4HAEFCYWuvAXWFTtA1Qpg==")
    );
    for (case, status, code) in [
        ("error_source_too_large", 400, ErrorCode::SourceTooLarge),
        ("error_access_denied", 403, ErrorCode::AccessDenied),
        ("error_not_found", 404, ErrorCode::NotFound),
        ("error_bad_request", 400, ErrorCode::BadRequest),
    ] {
        assert_api(
            op.parse(response(&format!("b2_copy_file/{case}")))
                .unwrap_err(),
            status,
            code,
        );
    }
    let elsewhere = CopyFile::new(FileId::new(FID1), name("other.txt"));
    assert!(matches!(
        elsewhere.parse(response("b2_copy_file/success")),
        Err(Error::InvalidResponse { .. })
    ));
}

#[test]
fn copy_file_rejects_what_b2_would_refuse() {
    let base = || CopyFile::new(FileId::new(FID1), name("c.txt"));
    let invalid = |op: CopyFile| match op.request(&session()) {
        Err(Error::InvalidInput(e)) => e,
        other => panic!("expected InvalidInput, got {other:?}"),
    };
    // REPLACE without a content type.
    invalid(base().with_metadata(MetadataDirective::replace("", FileInfo::new())));
    // Open-ended ranges are not a copy range.
    invalid(base().with_range(ByteRange::starting_at(10)));
    invalid(base().with_range(ByteRange::suffix(10).unwrap()));
    // File info over the 2048-byte limit that encryption imposes (fine without it).
    let mut info = FileInfo::new();
    info.insert("big", "x".repeat(2100)).unwrap();
    assert!(
        base()
            .with_metadata(MetadataDirective::replace("text/plain", info.clone()))
            .request(&session())
            .is_ok()
    );
    assert!(matches!(
        invalid(
            base()
                .with_metadata(MetadataDirective::replace("text/plain", info))
                .with_destination_encryption(Encryption::SseB2)
        ),
        InvalidInput::FileInfoTooLarge { limit: 2048, .. }
    ));
}

// ---- driven by Call --------------------------------------------------------------------

#[test]
fn call_does_not_repeat_a_hide_after_a_server_error_but_retries_listings() {
    use b2_proto::{Call, RetryPolicy};
    let hide = HideFile::new(BucketId::new(BUCKET), name("photos/cat 1+2.jpg"));
    let mut s = Scripted::new();
    let err = s
        .run(
            &mut Call::new(hide, session_arc(), &RetryPolicy::default()),
            |_| Ok(error_response(500, "internal_error", "oops")),
            |_| unreachable!(),
        )
        .unwrap_err();
    assert_eq!(err.code(), Some(&ErrorCode::InternalError));
    assert_eq!(s.trace[0], "send b2_hide_file");
    assert_eq!(s.trace.len(), 2, "sent once: {:?}", s.trace);

    let list = ListFileNames::new(BucketId::new(BUCKET));
    let mut s = Scripted::new();
    let mut n = 0;
    let page = s
        .run(
            &mut Call::new(list, session_arc(), &RetryPolicy::default().with_seed(3)),
            |_| {
                n += 1;
                Ok(if n == 1 {
                    error_response(500, "internal_error", "oops")
                } else {
                    response("b2_list_file_names/success")
                })
            },
            |_| unreachable!(),
        )
        .unwrap();
    assert_eq!(page.files.len(), 2);
    assert_eq!(s.trace.iter().filter(|l| l.starts_with("send")).count(), 2);
}
