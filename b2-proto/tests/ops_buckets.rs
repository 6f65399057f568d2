//! `b2_create_bucket`, `b2_delete_bucket`, `b2_list_buckets` and `b2_update_bucket`: request
//! goldens, parses of documented replies, and input validation.
#![allow(clippy::disallowed_methods)]

mod common;

use std::collections::BTreeMap;

use b2_proto::model::{
    BucketEncryption, BucketType, CorsOperation, CorsRule, DefaultRetention, LifecycleRule,
    RetentionMode, RetentionPeriod,
};
use b2_proto::ops::{CreateBucket, DeleteBucket, ListBuckets, Operation, RetryClass, UpdateBucket};
use b2_proto::{BucketId, BucketName, Error, ErrorCode, InvalidInput};
use common::*;

fn name(s: &str) -> BucketName {
    BucketName::new(s).unwrap()
}

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

// ---- b2_create_bucket ----

#[test]
fn create_bucket_minimal_request() {
    let op = CreateBucket::new(name("any-name-you-pick"), BucketType::AllPrivate);
    let request = op.request(&session()).unwrap();
    assert_golden("b2_create_bucket/minimal", &request);
    assert_eq!(op.retry_class(), RetryClass::NonIdempotent);
}

#[test]
fn create_bucket_full_request() {
    let mut info = BTreeMap::new();
    info.insert("Cache-Control".to_owned(), "max-age=3600".to_owned());
    let op = CreateBucket::new(name("any-name-you-pick"), BucketType::AllPublic)
        .with_bucket_info(info)
        .with_cors_rules(vec![
            CorsRule::new(
                "downloadFromAnyOrigin",
                ["https"],
                [
                    CorsOperation::DownloadFileById,
                    CorsOperation::DownloadFileByName,
                ],
                3600,
            )
            .with_allowed_headers(["range"])
            .with_expose_headers(["x-bz-content-sha1"]),
        ])
        .with_lifecycle_rules(vec![
            LifecycleRule::new("backup/").with_days_from_hiding_to_deleting(30),
            LifecycleRule::new("tmp/")
                .with_days_from_uploading_to_hiding(1)
                .with_days_from_starting_to_canceling_unfinished_large_files(7),
        ])
        .with_file_lock_enabled(true)
        .with_default_server_side_encryption(BucketEncryption::SseB2)
        .with_replication_configuration(serde_json::json!({
            "asReplicationSource": {
                "replicationRules": [{
                    "destinationBucketId": "aea8c5bc362ae55070130333",
                    "fileNamePrefix": "",
                    "includeExistingFiles": true,
                    "isEnabled": true,
                    "priority": 1,
                    "replicationRuleName": "replicate-all"
                }],
                "sourceApplicationKeyId": "00512f95cf4dcf0000000004z"
            }
        }));
    let request = op.request(&session()).unwrap();
    assert_golden("b2_create_bucket/full", &request);
}

#[test]
fn create_bucket_parses_documented_reply() {
    let op = CreateBucket::new(name("any-name-you-pick"), BucketType::AllPrivate);
    let bucket = op.parse(response("b2_create_bucket/ok")).unwrap();
    assert_eq!(bucket.account_id.as_str(), "010203040506");
    assert_eq!(bucket.bucket_id.as_str(), "4a48fe8875c6214145260818");
    assert_eq!(bucket.bucket_name.as_str(), "any-name-you-pick");
    assert_eq!(bucket.bucket_type, BucketType::AllPrivate);
    assert_eq!(bucket.revision, 1);
    assert_eq!(bucket.options, ["s3"]);
    assert_eq!(
        bucket.bucket_info.get("Cache-Control").map(String::as_str),
        Some("max-age=3600")
    );
    let cors = &bucket.cors_rules[0];
    assert_eq!(cors.cors_rule_name, "downloadFromAnyOrigin");
    assert_eq!(
        cors.allowed_operations,
        [
            CorsOperation::DownloadFileById,
            CorsOperation::DownloadFileByName
        ]
    );
    assert_eq!(
        cors.expose_headers.as_deref(),
        Some(&["x-bz-content-sha1".to_owned()][..])
    );
    assert_eq!(cors.max_age_seconds, 3600);
    let rule = &bucket.lifecycle_rules[0];
    assert_eq!(rule.file_name_prefix, "backup/");
    assert_eq!(rule.days_from_hiding_to_deleting, Some(30));
    assert_eq!(rule.days_from_uploading_to_hiding, None);
    let sse = bucket.default_server_side_encryption.clone().unwrap();
    assert!(sse.is_client_authorized_to_read);
    assert_eq!(
        sse.value.unwrap().mode,
        Some(b2_proto::model::EncryptionMode::SseB2)
    );
    assert_eq!(
        bucket
            .file_lock_configuration
            .as_ref()
            .map(|p| p.is_client_authorized_to_read),
        Some(true)
    );
    assert_eq!(bucket.is_file_lock_enabled(), Some(false));
    let replication = bucket.replication_configuration.unwrap();
    assert_eq!(replication["isClientAuthorizedToRead"], true);
}

#[test]
fn create_bucket_documented_errors() {
    let op = CreateBucket::new(name("any-name-you-pick"), BucketType::AllPrivate);
    for (case, status, code) in [
        ("duplicate_bucket_name", 400, ErrorCode::DuplicateBucketName),
        ("too_many_buckets", 400, ErrorCode::TooManyBuckets),
        ("bad_request", 400, ErrorCode::BadRequest),
        ("unauthorized", 401, ErrorCode::Unauthorized),
    ] {
        let got = api_code(op.parse(response(&format!("b2_create_bucket/{case}"))));
        assert_eq!(got, (status, code), "{case}");
    }
}

#[test]
fn create_bucket_rejects_bad_input_before_building() {
    // Names are validated by their type.
    assert!(matches!(
        BucketName::new("b2-reserved"),
        Err(InvalidInput::BucketName { .. })
    ));
    assert!(BucketName::new("bad_name").is_err());
    assert!(BucketName::new("x".repeat(64)).is_err());

    let s = session();
    let base = || CreateBucket::new(name("any-name-you-pick"), BucketType::AllPrivate);

    // B2 makes snapshot buckets itself; callers cannot.
    let e = invalid(CreateBucket::new(name("any-name-you-pick"), BucketType::Snapshot).request(&s));
    assert!(e.to_string().contains("snapshot"), "{e}");

    // Eleven bucket-info entries.
    let info: BTreeMap<_, _> = (0..11)
        .map(|i| (format!("key{i}"), "v".to_owned()))
        .collect();
    let e = invalid(base().with_bucket_info(info).request(&s));
    assert!(e.to_string().contains("11 entries"), "{e}");
    let info: BTreeMap<_, _> = (0..10)
        .map(|i| (format!("key{i}"), "v".to_owned()))
        .collect();
    assert!(base().with_bucket_info(info).request(&s).is_ok());

    // A lifecycle rule that does nothing, one with a zero count, and overlapping prefixes.
    invalid(
        base()
            .with_lifecycle_rules(vec![LifecycleRule::new("a/")])
            .request(&s),
    );
    invalid(
        base()
            .with_lifecycle_rules(vec![
                LifecycleRule::new("a/").with_days_from_uploading_to_hiding(0),
            ])
            .request(&s),
    );
    let e = invalid(
        base()
            .with_lifecycle_rules(vec![
                LifecycleRule::new("photos/").with_days_from_hiding_to_deleting(1),
                LifecycleRule::new("photos/kittens/").with_days_from_hiding_to_deleting(1),
            ])
            .request(&s),
    );
    assert!(e.to_string().contains("overlap"), "{e}");
    let all: Vec<_> = (0..101)
        .map(|i| LifecycleRule::new(format!("p{i:03}/")).with_days_from_hiding_to_deleting(1))
        .collect();
    invalid(base().with_lifecycle_rules(all).request(&s));

    // CORS rules: reserved name, no origins, max age over a day, duplicate names.
    let rule = |n: &str| CorsRule::new(n, ["https"], [CorsOperation::S3Get], 60);
    invalid(
        base()
            .with_cors_rules(vec![rule("b2-mine-rule")])
            .request(&s),
    );
    invalid(
        base()
            .with_cors_rules(vec![CorsRule::new(
                "no-origins",
                Vec::<String>::new(),
                [CorsOperation::S3Get],
                60,
            )])
            .request(&s),
    );
    invalid(
        base()
            .with_cors_rules(vec![CorsRule::new(
                "too-long-age",
                ["*"],
                [CorsOperation::S3Get],
                86_401,
            )])
            .request(&s),
    );
    invalid(
        base()
            .with_cors_rules(vec![rule("same-name"), rule("same-name")])
            .request(&s),
    );

    // Replication configuration must be an object.
    invalid(
        base()
            .with_replication_configuration(serde_json::json!(["not", "an", "object"]))
            .request(&s),
    );
}

#[test]
fn names_stay_plain_utf8_in_json() {
    let op = CreateBucket::new(name("any-name-you-pick"), BucketType::AllPrivate)
        .with_lifecycle_rules(vec![
            LifecycleRule::new("fotos de año/+x").with_days_from_hiding_to_deleting(2),
        ]);
    let request = op.request(&session()).unwrap();
    let body = std::str::from_utf8(request.body()).unwrap();
    assert!(
        body.contains(r#""fileNamePrefix":"fotos de año/+x""#),
        "{body}"
    );
}

// ---- b2_delete_bucket ----

#[test]
fn delete_bucket_request_and_reply() {
    let op = DeleteBucket::new(BucketId::new("4a48fe8875c6214145260818"));
    assert_golden("b2_delete_bucket/request", &op.request(&session()).unwrap());
    let bucket = op.parse(response("b2_delete_bucket/ok")).unwrap();
    assert_eq!(bucket.bucket_id.as_str(), "4a48fe8875c6214145260818");
    assert_eq!(bucket.revision, 3);
}

#[test]
fn delete_bucket_documented_errors() {
    let op = DeleteBucket::new(BucketId::new("4a48fe8875c6214145260818"));
    for (case, status, code) in [
        (
            "cannot_delete_non_empty_bucket",
            400,
            ErrorCode::CannotDeleteNonEmptyBucket,
        ),
        ("bad_request", 400, ErrorCode::BadRequest),
        ("expired_auth_token", 401, ErrorCode::ExpiredAuthToken),
    ] {
        let got = api_code(op.parse(response(&format!("b2_delete_bucket/{case}"))));
        assert_eq!(got, (status, code), "{case}");
    }
}

// ---- b2_list_buckets ----

#[test]
fn list_buckets_requests() {
    let s = session();
    assert_golden(
        "b2_list_buckets/all",
        &ListBuckets::new().request(&s).unwrap(),
    );
    assert_golden(
        "b2_list_buckets/by_name",
        &ListBuckets::new()
            .with_bucket_name(name("Kitten-Videos"))
            .request(&s)
            .unwrap(),
    );
    assert_golden(
        "b2_list_buckets/by_id_and_types",
        &ListBuckets::new()
            .with_bucket_id(BucketId::new("4a48fe8875c6214145260818"))
            .with_bucket_types([BucketType::AllPublic, BucketType::Snapshot])
            .request(&s)
            .unwrap(),
    );
    assert_golden(
        "b2_list_buckets/every_type",
        &ListBuckets::new()
            .with_all_bucket_types()
            .request(&s)
            .unwrap(),
    );
    let e = invalid(ListBuckets::new().with_bucket_types([]).request(&s));
    assert!(e.to_string().contains("empty"), "{e}");
    let e = invalid(
        ListBuckets::new()
            .with_bucket_types([BucketType::AllPublic, BucketType::from("all")])
            .request(&s),
    );
    assert!(e.to_string().contains("\"all\""), "{e}");
}

#[test]
fn list_buckets_parses_mixed_reply() {
    let buckets = ListBuckets::new()
        .parse(response("b2_list_buckets/ok"))
        .unwrap();
    let names: Vec<_> = buckets.iter().map(|b| b.bucket_name.as_str()).collect();
    assert_eq!(
        names,
        ["Kitten-Videos", "Puppy-Videos", "Vacation-Pictures"]
    );
    assert_eq!(buckets[1].bucket_type, BucketType::AllPublic);
    // A key without readBucketRetentions sees the setting hidden, not missing.
    let hidden = buckets[1].file_lock_configuration.as_ref().unwrap();
    assert!(!hidden.is_client_authorized_to_read);
    assert_eq!(hidden.value, None);
    assert_eq!(buckets[1].is_file_lock_enabled(), None);
    // Unknown bucket types and fields are kept or ignored, never fatal.
    assert_eq!(
        buckets[2].bucket_type,
        BucketType::Other("someFutureType".into())
    );
    assert!(
        ListBuckets::new()
            .parse(response("b2_list_buckets/empty"))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn list_buckets_documented_errors() {
    let op = ListBuckets::new();
    assert_eq!(
        api_code(op.parse(response("b2_list_buckets/bad_request"))),
        (400, ErrorCode::BadRequest)
    );
    assert!(
        op.parse(response("b2_list_buckets/unauthorized"))
            .unwrap_err()
            .is_unauthorized()
    );
}

#[test]
fn list_buckets_reports_a_malformed_reply() {
    let bad = json_response(200, r#"{"buckets": [{"bucketId": 7}]}"#);
    assert!(matches!(
        ListBuckets::new().parse(bad),
        Err(Error::Decode(_))
    ));
}

// ---- b2_update_bucket ----

#[test]
fn update_bucket_request() {
    let op = UpdateBucket::new(BucketId::new("4a48fe8875c6214145260818"))
        .with_bucket_type(BucketType::AllPublic)
        .with_default_retention(DefaultRetention::new(
            RetentionMode::Governance,
            RetentionPeriod::days(30),
        ))
        .with_lifecycle_rules(vec![])
        .with_default_server_side_encryption(BucketEncryption::None)
        .with_if_revision_is(3);
    assert_golden("b2_update_bucket/request", &op.request(&session()).unwrap());
    assert_eq!(op.retry_class(), RetryClass::Idempotent);
    assert_golden(
        "b2_update_bucket/remove_retention",
        &UpdateBucket::new(BucketId::new("4a48fe8875c6214145260818"))
            .with_default_retention(DefaultRetention::none())
            .request(&session())
            .unwrap(),
    );
}

#[test]
fn update_bucket_parses_documented_reply() {
    let op = UpdateBucket::new(BucketId::new("4a48fe8875c6214145260818"));
    let bucket = op.parse(response("b2_update_bucket/ok")).unwrap();
    assert_eq!(bucket.bucket_type, BucketType::AllPublic);
    assert_eq!(bucket.revision, 4);
    let lock = bucket.file_lock_configuration.unwrap().value.unwrap();
    assert!(lock.is_file_lock_enabled);
    assert_eq!(
        lock.default_retention,
        Some(DefaultRetention::new(
            RetentionMode::Governance,
            RetentionPeriod::days(30)
        ))
    );
}

#[test]
fn update_bucket_documented_errors() {
    let op = UpdateBucket::new(BucketId::new("4a48fe8875c6214145260818")).with_if_revision_is(3);
    for (case, status, code) in [
        ("conflict", 409, ErrorCode::Conflict),
        ("bad_request", 400, ErrorCode::BadRequest),
        ("unauthorized", 401, ErrorCode::Unauthorized),
    ] {
        let got = api_code(op.parse(response(&format!("b2_update_bucket/{case}"))));
        assert_eq!(got, (status, code), "{case}");
    }
}

#[test]
fn update_bucket_rejects_bad_input() {
    let s = session();
    let id = || BucketId::new("4a48fe8875c6214145260818");
    invalid(
        UpdateBucket::new(id())
            .with_bucket_type(BucketType::Shared)
            .request(&s),
    );
    let mut no_period = DefaultRetention::new(RetentionMode::Compliance, RetentionPeriod::days(1));
    no_period.period = None;
    invalid(
        UpdateBucket::new(id())
            .with_default_retention(no_period)
            .request(&s),
    );
    invalid(
        UpdateBucket::new(id())
            .with_default_retention(DefaultRetention::new(
                RetentionMode::Compliance,
                RetentionPeriod::years(0),
            ))
            .request(&s),
    );
    let info: BTreeMap<_, _> = (0..11).map(|i| (format!("k{i}"), String::new())).collect();
    invalid(UpdateBucket::new(id()).with_bucket_info(info).request(&s));
}

// ---- driven through Call ----

#[test]
fn create_bucket_is_not_repeated_after_a_timeout() {
    use b2_proto::{Call, RetryPolicy, TransportErrorKind};
    let op = CreateBucket::new(name("any-name-you-pick"), BucketType::AllPrivate);
    let mut s = Scripted::new();
    let err = s
        .run(
            &mut Call::new(op, session_arc(), &RetryPolicy::default()),
            |_| Err(transport(TransportErrorKind::Timeout)),
            |_| unreachable!(),
        )
        .unwrap_err();
    // The bucket may exist now; sending again could only fail with duplicate_bucket_name.
    assert!(matches!(err, Error::Transport(_)), "{err}");
    assert_eq!(
        s.trace,
        ["send b2_create_bucket", format!("done err {err}").as_str()]
    );
}

#[test]
fn list_buckets_is_retried_when_busy() {
    use b2_proto::{Call, RetryPolicy};
    let mut s = Scripted::new();
    let mut replies = vec![
        Ok(response("b2_list_buckets/ok")),
        Ok(error_response(503, "service_unavailable", "busy")),
    ];
    let buckets = s
        .run(
            &mut Call::new(
                ListBuckets::new(),
                session_arc(),
                &RetryPolicy::default().with_seed(7),
            ),
            |_| replies.pop().unwrap(),
            |_| unreachable!(),
        )
        .unwrap();
    assert_eq!(buckets.len(), 3);
    let sends = s
        .trace
        .iter()
        .filter(|l| *l == "send b2_list_buckets")
        .count();
    assert_eq!(sends, 2, "{:?}", s.trace);
}

#[test]
fn null_lists_parse_as_empty() {
    let reply = json_response(
        200,
        r#"{"buckets":[{"accountId":"010203040506","bucketId":"4a48fe8875c6214145260818",
            "bucketName":"any-name-you-pick","bucketType":"allPrivate","bucketInfo":null,
            "corsRules":null,"lifecycleRules":null,"options":null,"revision":null,
            "fileLockConfiguration":null,"defaultServerSideEncryption":null,
            "replicationConfiguration":null}]}"#,
    );
    let buckets = ListBuckets::new().parse(reply).unwrap();
    let b = &buckets[0];
    assert!(b.bucket_info.is_empty() && b.cors_rules.is_empty() && b.lifecycle_rules.is_empty());
    assert!(b.options.is_empty());
    assert_eq!(b.revision, 0);
    assert_eq!(b.file_lock_configuration, None);
}
