//! `b2_create_key`, `b2_delete_key` and `b2_list_keys`: request goldens, parses of documented
//! replies, input validation, secret redaction and paging.
#![allow(clippy::disallowed_methods)]

mod common;

use b2_proto::ops::{CreateKey, DeleteKey, ListKeys, Operation, Paginated, RetryClass};
use b2_proto::{ApplicationKeyId, BucketId, Capability, Error, ErrorCode, InvalidInput};
use common::*;

const SECRET: &str = "K005vFSDfdgsdfHjR5Pc7mLd/KVysmhn8nT2a9NiXw";

fn invalid(result: Result<http::Request<bytes::Bytes>, Error>) -> InvalidInput {
    match result {
        Err(Error::InvalidInput(e)) => e,
        other => panic!("expected InvalidInput, got {other:?}"),
    }
}

fn api_code<T: std::fmt::Debug>(result: Result<T, Error>) -> (u16, ErrorCode) {
    match result {
        Err(Error::Api(e)) => (e.status.as_u16(), e.code),
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn caps() -> [Capability; 3] {
    [
        Capability::ListFiles,
        Capability::ReadFiles,
        Capability::ShareFiles,
    ]
}

// ---- b2_create_key ----

#[test]
fn create_key_requests() {
    let s = session();
    let minimal = CreateKey::new("key-0003", [Capability::ListKeys, Capability::WriteKeys]);
    assert_golden("b2_create_key/minimal", &minimal.request(&s).unwrap());
    assert_eq!(minimal.retry_class(), RetryClass::NonIdempotent);
    let restricted = CreateKey::new("key-0003", caps())
        .with_bucket_ids([
            BucketId::new("4a48fe8875c6214145260818"),
            BucketId::new("5b232e8875c6214145260818"),
        ])
        .with_name_prefix("photos/año nuevo/")
        .with_valid_duration_in_seconds(86_400);
    assert_golden("b2_create_key/restricted", &restricted.request(&s).unwrap());
}

#[test]
fn create_key_parses_reply_and_hides_the_secret() {
    let op = CreateKey::new("key-0003", caps());
    let created = op.parse(response("b2_create_key/ok")).unwrap();
    assert_eq!(created.application_key.expose_secret(), SECRET);
    let key = &created.key;
    assert_eq!(key.application_key_id.as_str(), "00512f95cf4dcf0000000004z");
    assert_eq!(key.key_name, "key-0003");
    assert_eq!(key.account_id.as_str(), "010203040506");
    assert_eq!(key.capabilities, caps());
    assert_eq!(key.expiration_timestamp, Some(1_735_689_600_000));
    assert_eq!(
        key.bucket_ids.as_deref(),
        Some(
            &[
                BucketId::new("4a48fe8875c6214145260818"),
                BucketId::new("5b232e8875c6214145260818")
            ][..]
        )
    );
    assert_eq!(key.name_prefix.as_deref(), Some("photos/"));
    assert_eq!(key.options, ["s3"]);

    let printed = format!("{created:?} {created:#?}");
    assert!(!printed.contains("vFSDfdgsdf"), "{printed}");
    assert!(printed.contains("00512f95cf4dcf0000000004z"));
}

#[test]
fn create_key_malformed_reply_does_not_leak_the_secret() {
    let op = CreateKey::new("key-0003", caps());
    let e = op.parse(response("b2_create_key/truncated")).unwrap_err();
    assert!(matches!(e, Error::Decode(_)));
    let printed = format!("{e} {e:?}");
    assert!(!printed.contains("SECRETSECRET"), "{printed}");
}

#[test]
fn create_key_documented_errors() {
    let op = CreateKey::new("key-0003", caps());
    assert_eq!(
        api_code(op.parse(response("b2_create_key/bad_request"))),
        (400, ErrorCode::BadRequest)
    );
    assert_eq!(
        api_code(op.parse(response("b2_create_key/unauthorized"))),
        (401, ErrorCode::Unauthorized)
    );
}

#[test]
fn create_key_rejects_bad_input_before_building() {
    let s = session();
    // Names: 1 to 100 of letters, digits and '-', no accented letters.
    invalid(CreateKey::new("", caps()).request(&s));
    invalid(CreateKey::new("x".repeat(101), caps()).request(&s));
    assert!(CreateKey::new("x".repeat(100), caps()).request(&s).is_ok());
    let e = invalid(CreateKey::new("clé", caps()).request(&s));
    assert!(e.to_string().contains("'é'"), "{e}");
    invalid(CreateKey::new("with_underscore", caps()).request(&s));
    // At least one capability.
    invalid(CreateKey::new("key", []).request(&s));
    // Durations: 1 second to under 1000 days.
    invalid(
        CreateKey::new("key", caps())
            .with_valid_duration_in_seconds(0)
            .request(&s),
    );
    let e = invalid(
        CreateKey::new("key", caps())
            .with_valid_duration_in_seconds(86_400_000)
            .request(&s),
    );
    assert!(e.to_string().contains("86400000"), "{e}");
    assert!(
        CreateKey::new("key", caps())
            .with_valid_duration_in_seconds(86_399_999)
            .request(&s)
            .is_ok()
    );
    assert!(
        CreateKey::new("key", caps())
            .with_valid_duration_in_seconds(1)
            .request(&s)
            .is_ok()
    );
    // A bucket restriction with no bucket.
    invalid(
        CreateKey::new("key", caps())
            .with_bucket_ids([])
            .request(&s),
    );
}

// ---- b2_delete_key ----

#[test]
fn delete_key_request_and_reply() {
    let op = DeleteKey::new(ApplicationKeyId::new("00512f95cf4dcf0000000004z"));
    assert_golden("b2_delete_key/request", &op.request(&session()).unwrap());
    let key = op.parse(response("b2_delete_key/ok")).unwrap();
    assert_eq!(key.application_key_id.as_str(), "00512f95cf4dcf0000000004z");
    assert_eq!(key.bucket_ids, None);
    assert_eq!(key.expiration_timestamp, None);
    assert_eq!(key.name_prefix, None);
    assert_eq!(
        key.capabilities,
        [
            Capability::ListKeys,
            Capability::WriteKeys,
            Capability::DeleteKeys
        ]
    );
    assert_eq!(
        api_code(op.parse(response("b2_delete_key/bad_request"))),
        (400, ErrorCode::BadRequest)
    );
}

// ---- b2_list_keys ----

#[test]
fn list_keys_requests() {
    let s = session();
    assert_golden(
        "b2_list_keys/first_page",
        &ListKeys::new().request(&s).unwrap(),
    );
    let mut next = ListKeys::new().with_max_key_count(1000);
    next.set_cursor(Some(ApplicationKeyId::new("00512f95cf4dcf0000000004c")));
    assert_golden("b2_list_keys/next_page", &next.request(&s).unwrap());
    // Clearing the cursor starts over.
    next.set_cursor(None);
    let body: serde_json::Value = serde_json::from_slice(next.request(&s).unwrap().body()).unwrap();
    assert!(body.get("startApplicationKeyId").is_none());
    assert_eq!(body["maxKeyCount"], 1000);
}

#[test]
fn list_keys_pages_through_the_cursor() {
    let op = ListKeys::new();
    let page = op.parse(response("b2_list_keys/ok")).unwrap();
    assert_eq!(
        ListKeys::next_cursor(&page),
        Some(ApplicationKeyId::new("00512f95cf4dcf0000000004c"))
    );
    assert_eq!(page.keys[0].key_name, "key-0001");
    // A capability this version does not know is kept.
    assert_eq!(
        page.keys[0].capabilities[3],
        Capability::Other("someNewCapability".into())
    );
    let items = ListKeys::into_items(page);
    let ids: Vec<_> = items
        .iter()
        .map(|k| k.application_key_id.as_str())
        .collect();
    assert_eq!(
        ids,
        ["00512f95cf4dcf0000000004a", "00512f95cf4dcf0000000004b"]
    );

    let last = op.parse(response("b2_list_keys/last_page")).unwrap();
    assert_eq!(ListKeys::next_cursor(&last), None);
    assert_eq!(last.keys.len(), 1);
}

#[test]
fn list_keys_validates_page_size() {
    let s = session();
    invalid(ListKeys::new().with_max_key_count(0).request(&s));
    invalid(ListKeys::new().with_max_key_count(10_001).request(&s));
    assert!(
        ListKeys::new()
            .with_max_key_count(10_000)
            .request(&s)
            .is_ok()
    );
    assert!(ListKeys::new().with_max_key_count(1).request(&s).is_ok());
}

#[test]
fn list_keys_documented_errors() {
    let op = ListKeys::new();
    assert_eq!(
        api_code(op.parse(response("b2_list_keys/bad_request"))),
        (400, ErrorCode::BadRequest)
    );
    assert_eq!(
        api_code(op.parse(response("b2_list_keys/unauthorized"))),
        (401, ErrorCode::Unauthorized)
    );
}

#[test]
fn null_lists_parse_as_empty() {
    let page = ListKeys::new()
        .parse(json_response(
            200,
            r#"{"keys":[{"accountId":"010203040506","applicationKeyId":"k1","keyName":null,
                "capabilities":null,"options":null,"bucketIds":null,"namePrefix":null,
                "expirationTimestamp":null}],"nextApplicationKeyId":null}"#,
        ))
        .unwrap();
    let key = &page.keys[0];
    assert_eq!(key.key_name, "");
    assert!(key.capabilities.is_empty() && key.options.is_empty());
    assert_eq!(ListKeys::next_cursor(&page), None);
    let empty = ListKeys::new()
        .parse(json_response(200, r#"{"keys":null}"#))
        .unwrap();
    assert!(empty.keys.is_empty());
}
