//! `b2_set_bucket_notification_rules` and `b2_get_bucket_notification_rules`: request goldens,
//! parses of documented replies, rule validation and signing-secret redaction.
#![allow(clippy::disallowed_methods)]

mod common;

use b2_proto::model::{EventType, NotificationRule, TargetConfiguration, TargetType};
use b2_proto::ops::{GetBucketNotificationRules, Operation, SetBucketNotificationRules};
use b2_proto::{BucketId, Error, ErrorCode, InvalidInput, SigningSecret};
use common::*;

const SECRET: &str = "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0";

fn bucket() -> BucketId {
    BucketId::new("aea8c5bc362ae55070130333")
}

/// The rule of Backblaze's documented example request.
fn documented_rule() -> NotificationRule {
    NotificationRule::new(
        "mySampleRule1",
        [
            EventType::ObjectCreatedUpload,
            EventType::ObjectCreatedMultipartUpload,
        ],
        TargetConfiguration::webhook("https://www.example.com/sampleurl")
            .with_custom_header("X-My-Custom-Header-1", "myCustomHeaderVal1")
            .with_custom_header("X-My-Custom-Header-2", "myCustomHeaderVal2")
            .with_signing_secret(SigningSecret::new(SECRET)),
    )
}

fn hook(name: &str) -> NotificationRule {
    NotificationRule::new(
        name,
        [EventType::ObjectDeletedAll],
        TargetConfiguration::webhook("https://hooks.example.com/b2"),
    )
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

#[test]
fn set_rules_requests() {
    let s = session();
    let documented = SetBucketNotificationRules::new(bucket(), vec![documented_rule()]);
    assert_golden(
        "b2_set_bucket_notification_rules/documented",
        &documented.request(&s).unwrap(),
    );
    let batched = SetBucketNotificationRules::new(
        bucket(),
        vec![
            hook("deletions")
                .with_object_name_prefix("logs/")
                .with_max_events_per_batch(50)
                .with_enabled(false),
        ],
    );
    assert_golden(
        "b2_set_bucket_notification_rules/batched",
        &batched.request(&s).unwrap(),
    );
    // An empty list removes every rule.
    assert_golden(
        "b2_set_bucket_notification_rules/clear",
        &SetBucketNotificationRules::new(bucket(), vec![])
            .request(&s)
            .unwrap(),
    );
}

#[test]
fn set_rules_validation() {
    let s = session();
    let set =
        |rules: Vec<NotificationRule>| SetBucketNotificationRules::new(bucket(), rules).request(&s);

    // At most 25 rules.
    let many: Vec<_> = (0..26).map(|i| hook(&format!("rule-{i}"))).collect();
    let e = invalid(set(many));
    assert!(e.to_string().contains("26 rules"), "{e}");
    assert!(set((0..25).map(|i| hook(&format!("rule-{i}"))).collect()).is_ok());
    // Unique names.
    let e = invalid(set(vec![hook("same"), hook("same")]));
    assert!(e.to_string().contains("used twice"), "{e}");
    // HTTPS only.
    let plain = NotificationRule::new(
        "plain",
        [EventType::ObjectCreatedAll],
        TargetConfiguration::webhook("http://hooks.example.com/b2"),
    );
    let e = invalid(set(vec![plain]));
    assert!(e.to_string().contains("https"), "{e}");
    assert!(
        set(vec![NotificationRule::new(
            "upper",
            [EventType::ObjectCreatedAll],
            TargetConfiguration::webhook("HTTPS://hooks.example.com/b2"),
        )])
        .is_ok()
    );
    // maxEventsPerBatch 1..=50.
    invalid(set(vec![hook("zero").with_max_events_per_batch(0)]));
    invalid(set(vec![hook("many").with_max_events_per_batch(51)]));
    assert!(set(vec![hook("one").with_max_events_per_batch(1)]).is_ok());
    // At least one event type; a name.
    invalid(set(vec![NotificationRule::new(
        "none",
        [],
        TargetConfiguration::webhook("https://hooks.example.com/b2"),
    )]));
    invalid(set(vec![hook("")]));
}

#[test]
fn signing_secret_is_32_alphanumerics_and_never_printed() {
    let s = session();
    let with_secret = |secret: &str| {
        NotificationRule::new(
            "signed",
            [EventType::ObjectCreatedAll],
            TargetConfiguration::webhook("https://hooks.example.com/b2")
                .with_signing_secret(SigningSecret::new(secret)),
        )
    };
    for bad in [
        "tooShort123",
        "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0X",
        "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMj+=",
    ] {
        let e =
            invalid(SetBucketNotificationRules::new(bucket(), vec![with_secret(bad)]).request(&s));
        let printed = format!("{e} {e:?}");
        assert!(printed.contains("32 letters and digits"), "{printed}");
        assert!(!printed.contains(bad), "the secret leaked: {printed}");
    }
    let op = SetBucketNotificationRules::new(bucket(), vec![with_secret(SECRET)]);
    assert!(op.request(&s).is_ok());
    let printed = format!("{op:?} {:?}", documented_rule());
    assert!(!printed.contains(SECRET), "{printed}");
}

#[test]
fn set_rules_parses_stored_rules() {
    let op = SetBucketNotificationRules::new(bucket(), vec![documented_rule()]);
    let stored = op
        .parse(response("b2_set_bucket_notification_rules/ok"))
        .unwrap();
    assert_eq!(stored.bucket_id, bucket());
    let first = &stored.event_notification_rules[0];
    assert_eq!(first.name, "mySampleRule1");
    assert_eq!(first.is_suspended, Some(false));
    assert_eq!(first.suspension_reason.as_deref(), Some(""));
    let target = &first.target_configuration;
    assert_eq!(target.target_type, TargetType::Webhook);
    assert_eq!(target.url, "https://www.example.com/sampleurl");
    assert_eq!(
        target
            .hmac_sha256_signing_secret
            .as_ref()
            .map(SigningSecret::expose_secret),
        Some(SECRET)
    );
    assert_eq!(target.custom_headers.as_ref().map(Vec::len), Some(2));
    // The reply equals what was sent, apart from the fields B2 adds.
    let mut sent = documented_rule();
    sent.is_suspended = Some(false);
    sent.suspension_reason = Some(String::new());
    assert_eq!(first, &sent);
    assert!(!format!("{stored:?}").contains(SECRET));

    let second = &stored.event_notification_rules[1];
    assert_eq!(second.is_suspended, Some(true));
    assert_eq!(second.max_events_per_batch, Some(10));
    assert_eq!(
        second.event_types,
        [
            EventType::ObjectDeletedAll,
            EventType::Other("b2:SomeFutureEvent:*".into())
        ]
    );
}

#[test]
fn set_rules_malformed_reply_does_not_leak_secrets() {
    let op = SetBucketNotificationRules::new(bucket(), vec![]);
    let e = op
        .parse(response("b2_set_bucket_notification_rules/truncated"))
        .unwrap_err();
    assert!(matches!(e, Error::Decode(_)));
    assert!(!format!("{e} {e:?}").contains(SECRET));
}

#[test]
fn set_rules_documented_errors() {
    let op = SetBucketNotificationRules::new(bucket(), vec![]);
    for (case, status, code) in [
        ("event_type_categories", 400, ErrorCode::EventTypeCategories),
        ("event_type_overlap", 400, ErrorCode::EventTypeOverlap),
        ("event_types_empty", 400, ErrorCode::EventTypesEmpty),
        ("event_type_invalid", 400, ErrorCode::EventTypeInvalid),
        ("unauthorized", 401, ErrorCode::Unauthorized),
    ] {
        let got = api_code(op.parse(response(&format!(
            "b2_set_bucket_notification_rules/{case}"
        ))));
        assert_eq!(got, (status, code), "{case}");
    }
}

#[test]
fn get_rules_request_and_replies() {
    let op = GetBucketNotificationRules::new(bucket());
    assert_golden(
        "b2_get_bucket_notification_rules/request",
        &op.request(&session()).unwrap(),
    );
    let rules = op
        .parse(response("b2_get_bucket_notification_rules/ok"))
        .unwrap();
    let names: Vec<_> = rules
        .event_notification_rules
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(names, ["mySampleRule1", "mySampleRule2"]);
    assert_eq!(
        rules.event_notification_rules[1]
            .suspension_reason
            .as_deref(),
        Some("webhook returned 500 too many times")
    );
    let none = op
        .parse(response("b2_get_bucket_notification_rules/none"))
        .unwrap();
    assert!(none.event_notification_rules.is_empty());
    assert_eq!(
        api_code(op.parse(response("b2_get_bucket_notification_rules/bad_request"))),
        (400, ErrorCode::BadRequest)
    );
    assert_eq!(
        api_code(op.parse(response("b2_get_bucket_notification_rules/unauthorized"))),
        (401, ErrorCode::Unauthorized)
    );
}

#[test]
fn rules_read_back_can_be_sent_again_without_server_fields() {
    let read = GetBucketNotificationRules::new(bucket())
        .parse(response("b2_get_bucket_notification_rules/ok"))
        .unwrap();
    let mut rules = read.event_notification_rules;
    assert_eq!(rules[1].is_suspended, Some(true));
    rules[1].is_enabled = true;
    let request = SetBucketNotificationRules::new(read.bucket_id, rules)
        .request(&session())
        .unwrap();
    assert_golden(
        "b2_set_bucket_notification_rules/read_modify_write",
        &request,
    );
    let body = std::str::from_utf8(request.body()).unwrap();
    assert!(!body.contains("isSuspended"), "{body}");
    assert!(!body.contains("suspensionReason"), "{body}");
    // Event types this version does not know are sent back as B2 spelled them.
    assert!(body.contains("b2:SomeFutureEvent:*"), "{body}");
}
