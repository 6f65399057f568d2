//! Bucket lifecycle rules acting on files as the emulator's clock moves
//! (https://www.backblaze.com/docs/cloud-storage-lifecycle-rules).

mod common;

use bytes::Bytes;
use common::{H, T0, assert_err, body_json};
use http::Request;
use serde_json::{Value, json};

const DAY: u64 = 86_400_000;
const HOUR: u64 = 3_600_000;
const MINUTE: u64 = 60_000;

/// Moves the injected time to `t` and gets a fresh account token (they last 24 hours).
fn at(h: &mut H, t: u64) {
    h.now = t;
    let v = h.authorize("masterid", "mastersecret", 4);
    assert_eq!(v.0, 200, "{}", v.1);
    h.token = v.1["authorizationToken"].as_str().unwrap().to_owned();
}

fn bucket_with_rules(h: &mut H, name: &str, rules: Value, lock: bool) -> String {
    let acct = h.account_id.clone();
    let v = h.ok(
        "b2_create_bucket",
        json!({"accountId": acct, "bucketName": name, "bucketType": "allPrivate",
               "lifecycleRules": rules, "fileLockEnabled": lock}),
    );
    v["bucketId"].as_str().unwrap().to_owned()
}

/// `b2_list_file_names`: the live names.
fn names(h: &mut H, bucket: &str) -> Vec<String> {
    let v = h.ok(
        "b2_list_file_names",
        json!({"bucketId": bucket, "maxFileCount": 1000}),
    );
    v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["fileName"].as_str().unwrap().to_owned())
        .collect()
}

/// `b2_list_file_versions`: (name, action, fileId, uploadTimestamp), newest first per name.
fn versions(h: &mut H, bucket: &str) -> Vec<(String, String, String, u64)> {
    let v = h.ok(
        "b2_list_file_versions",
        json!({"bucketId": bucket, "maxFileCount": 1000}),
    );
    v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["fileName"].as_str().unwrap().to_owned(),
                f["action"].as_str().unwrap().to_owned(),
                f["fileId"].as_str().unwrap().to_owned(),
                f["uploadTimestamp"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn ids(vs: &[(String, String, String, u64)]) -> Vec<&str> {
    vs.iter().map(|v| v.2.as_str()).collect()
}

fn upload_id(h: &mut H, bucket: &str, name: &str, data: &[u8]) -> String {
    h.upload(bucket, name, data)["fileId"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Moves the clock through the control endpoint, as a client of the binary would.
fn advance(h: &mut H, ms: u64) {
    let req = Request::post("/__emulator/clock")
        .body(Bytes::from(json!({"advanceMs": ms}).to_string()))
        .unwrap();
    let r = h.raw(req);
    assert_eq!(r.status(), 200, "{:?}", body_json(&r));
    let now = h.now;
    at(h, now);
}

#[test]
fn files_are_hidden_days_after_upload() {
    let mut h = H::new();
    let b = bucket_with_rules(
        &mut h,
        "hide-after-days",
        json!([{"fileNamePrefix": "logs/", "daysFromUploadingToHiding": 2,
                "daysFromHidingToDeleting": null}]),
        false,
    );
    let log = upload_id(&mut h, &b, "logs/a.txt", b"log line");
    upload_id(&mut h, &b, "keep/b.txt", b"kept");
    h.now = T0 + HOUR;
    let later = upload_id(&mut h, &b, "logs/c.txt", b"later");

    // One minute before two days have passed, the file is live and downloadable.
    at(&mut h, T0 + 2 * DAY - MINUTE);
    assert_eq!(
        names(&mut h, &b),
        ["keep/b.txt", "logs/a.txt", "logs/c.txt"]
    );
    let token = h.token.clone();
    let r = h.download(
        "/file/hide-after-days/logs/a.txt",
        &[("Authorization", &token)],
    );
    assert_eq!(r.status(), 200);

    // Two days after its upload it is hidden with a hide marker, as b2_hide_file makes one.
    at(&mut h, T0 + 2 * DAY);
    assert_eq!(names(&mut h, &b), ["keep/b.txt", "logs/c.txt"]);
    let vs = versions(&mut h, &b);
    assert_eq!(vs.len(), 4, "{vs:?}");
    assert_eq!(vs[1].0, "logs/a.txt");
    assert_eq!(vs[1].1, "hide");
    assert_eq!(vs[1].3, T0 + 2 * DAY);
    assert_eq!(vs[2].2, log);
    assert_eq!(vs[2].1, "upload");
    let marker = h.ok("b2_get_file_info", json!({"fileId": vs[1].2}));
    assert_eq!(marker["action"], "hide");
    assert_eq!(marker["contentType"], "application/x-bz-hide-marker");
    assert_eq!(marker["contentLength"], 0);
    let token = h.token.clone();
    let r = h.download(
        "/file/hide-after-days/logs/a.txt",
        &[("Authorization", &token)],
    );
    assert_eq!(r.status(), 404);
    assert_err(
        &h.call(
            "b2_hide_file",
            json!({"bucketId": b, "fileName": "logs/a.txt"}),
        ),
        400,
        "already_hidden",
    );

    // The other file under the prefix follows an hour later; no second marker is ever made.
    at(&mut h, T0 + 2 * DAY + HOUR);
    assert_eq!(names(&mut h, &b), ["keep/b.txt"]);
    at(&mut h, T0 + 30 * DAY);
    let vs = versions(&mut h, &b);
    assert_eq!(vs.len(), 5, "{vs:?}");
    assert!(ids(&vs).contains(&later.as_str()));
    assert_eq!(vs.iter().filter(|v| v.1 == "hide").count(), 2);
}

#[test]
fn only_a_live_version_is_hidden() {
    let mut h = H::new();
    let b = bucket_with_rules(
        &mut h,
        "hide-live-only",
        json!([{"fileNamePrefix": "", "daysFromUploadingToHiding": 1}]),
        false,
    );
    upload_id(&mut h, &b, "a", b"1");
    h.now = T0 + HOUR;
    h.ok("b2_hide_file", json!({"bucketId": b, "fileName": "a"}));
    // A name hidden by hand is not hidden again.
    at(&mut h, T0 + 3 * DAY);
    let vs = versions(&mut h, &b);
    assert_eq!(
        vs.iter().map(|v| v.1.as_str()).collect::<Vec<_>>(),
        ["hide", "upload"]
    );
    // A new upload is live again, and is hidden a day after its own upload.
    let v2 = upload_id(&mut h, &b, "a", b"2");
    at(&mut h, T0 + 4 * DAY - MINUTE);
    assert_eq!(names(&mut h, &b), ["a"]);
    at(&mut h, T0 + 4 * DAY);
    assert!(names(&mut h, &b).is_empty());
    let vs = versions(&mut h, &b);
    assert_eq!(vs.len(), 4);
    assert_eq!(vs[1].2, v2);
}

#[test]
fn versions_are_deleted_days_after_they_stop_being_live() {
    let mut h = H::new();
    let b = bucket_with_rules(
        &mut h,
        "delete-hidden",
        json!([{"fileNamePrefix": "", "daysFromHidingToDeleting": 2}]),
        false,
    );
    let v1 = upload_id(&mut h, &b, "doc", b"one");
    let live = upload_id(&mut h, &b, "other", b"live");
    // v1 stops being live when v2 is uploaded; v2 when the name is hidden.
    h.now = T0 + HOUR;
    let v2 = upload_id(&mut h, &b, "doc", b"two");
    h.now = T0 + 5 * HOUR;
    let hide = h.ok("b2_hide_file", json!({"bucketId": b, "fileName": "doc"}))["fileId"]
        .as_str()
        .unwrap()
        .to_owned();

    at(&mut h, T0 + HOUR + 2 * DAY - MINUTE);
    assert_eq!(
        ids(&versions(&mut h, &b)),
        [hide.as_str(), v2.as_str(), v1.as_str(), live.as_str()]
    );
    // Two days after it was superseded, v1 is gone; v2 was hidden four hours later.
    at(&mut h, T0 + HOUR + 2 * DAY);
    assert_eq!(
        ids(&versions(&mut h, &b)),
        [hide.as_str(), v2.as_str(), live.as_str()]
    );
    assert_err(
        &h.call("b2_get_file_info", json!({"fileId": v1})),
        404,
        "not_found",
    );
    at(&mut h, T0 + 5 * HOUR + 2 * DAY - MINUTE);
    assert_eq!(versions(&mut h, &b).len(), 3);
    at(&mut h, T0 + 5 * HOUR + 2 * DAY);
    // The hide marker is the current version of the name and stays; so does the live file.
    assert_eq!(ids(&versions(&mut h, &b)), [hide.as_str(), live.as_str()]);
    at(&mut h, T0 + 100 * DAY);
    assert_eq!(ids(&versions(&mut h, &b)), [hide.as_str(), live.as_str()]);
    assert_eq!(names(&mut h, &b), ["other"]);
}

#[test]
fn a_hidden_file_is_deleted_after_both_counts_even_when_the_clock_jumps() {
    let mut h = H::new();
    let b = bucket_with_rules(
        &mut h,
        "hide-then-delete",
        json!([{"fileNamePrefix": "tmp/", "daysFromUploadingToHiding": 1,
                "daysFromHidingToDeleting": 1}]),
        false,
    );
    let x = upload_id(&mut h, &b, "tmp/x", b"x");
    // One jump over the hiding: the marker is dated when the rule hid the file, not now.
    advance(&mut h, 2 * DAY - MINUTE);
    let vs = versions(&mut h, &b);
    assert_eq!(vs.len(), 2, "{vs:?}");
    assert_eq!((vs[0].1.as_str(), vs[0].3), ("hide", T0 + DAY));
    assert_eq!(vs[1].2, x);
    // A day after the hiding, the hidden version is deleted.
    advance(&mut h, MINUTE);
    let vs = versions(&mut h, &b);
    assert_eq!(vs.len(), 1, "{vs:?}");
    assert_eq!(vs[0].1, "hide");

    // A jump over both counts at once ends the same way.
    let y = upload_id(&mut h, &b, "tmp/y", b"y");
    advance(&mut h, 10 * DAY);
    let vs = versions(&mut h, &b);
    assert_eq!(vs.len(), 2, "{vs:?}");
    assert!(!ids(&vs).contains(&y.as_str()));
    assert!(vs.iter().all(|v| v.1 == "hide"));
}

#[test]
fn unfinished_large_files_are_cancelled_days_after_starting() {
    let mut h = H::new();
    let b = bucket_with_rules(
        &mut h,
        "cancel-unfinished",
        json!([{"fileNamePrefix": "big/", "daysFromStartingToCancelingUnfinishedLargeFiles": 3}]),
        false,
    );
    let (big, _) = h.large(&b, "big/one", &[b"0123456789AB"]);
    let (other, _) = h.large(&b, "small/two", &[b"0123456789AB"]);
    let unfinished = |h: &mut H| -> Vec<String> {
        let v = h.ok("b2_list_unfinished_large_files", json!({"bucketId": b}));
        v["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["fileId"].as_str().unwrap().to_owned())
            .collect()
    };
    at(&mut h, T0 + 3 * DAY - MINUTE);
    assert_eq!(unfinished(&mut h), [big.clone(), other.clone()]);
    assert_eq!(
        h.ok("b2_list_parts", json!({"fileId": big}))["parts"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    at(&mut h, T0 + 3 * DAY);
    assert_eq!(unfinished(&mut h), std::slice::from_ref(&other));
    let r = h.call("b2_list_parts", json!({"fileId": big}));
    assert_eq!(r.0, 400, "{}", r.1);
    let r = h.call("b2_get_upload_part_url", json!({"fileId": big}));
    assert_eq!(r.0, 400, "{}", r.1);
    // Outside the prefix nothing happens, however long it waits.
    at(&mut h, T0 + 300 * DAY);
    assert_eq!(unfinished(&mut h), [other]);
}

#[test]
fn rules_act_only_under_their_prefix() {
    let mut h = H::new();
    let b = bucket_with_rules(
        &mut h,
        "prefix-scoped",
        json!([
            {"fileNamePrefix": "a/", "daysFromUploadingToHiding": 1, "daysFromHidingToDeleting": 1},
            {"fileNamePrefix": "c/", "daysFromHidingToDeleting": 5},
        ]),
        false,
    );
    let inside = upload_id(&mut h, &b, "a/x", b"1");
    let bare = upload_id(&mut h, &b, "a", b"2");
    let sibling = upload_id(&mut h, &b, "ab/x", b"3");
    let outside_old = upload_id(&mut h, &b, "b/x", b"4");
    h.now = T0 + HOUR;
    let outside_new = upload_id(&mut h, &b, "b/x", b"5");
    let c_old = upload_id(&mut h, &b, "c/x", b"6");
    h.now = T0 + 2 * HOUR;
    let c_new = upload_id(&mut h, &b, "c/x", b"7");

    at(&mut h, T0 + 30 * DAY);
    assert_eq!(names(&mut h, &b), ["a", "ab/x", "b/x", "c/x"]);
    let vs = versions(&mut h, &b);
    let kept = ids(&vs);
    assert!(!kept.contains(&inside.as_str()), "{vs:?}");
    assert!(!kept.contains(&c_old.as_str()), "{vs:?}");
    for id in [&bare, &sibling, &outside_old, &outside_new, &c_new] {
        assert!(kept.contains(&id.as_str()), "{id} missing from {vs:?}");
    }
    assert_eq!(vs[1].0, "a/x");
    assert_eq!(vs[1].1, "hide");
}

#[test]
fn rule_changes_apply_to_files_already_there() {
    let mut h = H::new();
    let acct = h.account_id.clone();
    let b = h.bucket("rules-later");
    let old = upload_id(&mut h, &b, "f", b"1");
    at(&mut h, T0 + 10 * DAY);
    assert_eq!(names(&mut h, &b), ["f"]);
    h.ok(
        "b2_update_bucket",
        json!({"accountId": acct, "bucketId": b,
               "lifecycleRules": [{"fileNamePrefix": "", "daysFromUploadingToHiding": 7,
                                   "daysFromHidingToDeleting": 1}]}),
    );
    // Its seven days ran out before the rule was set: the rule hides it at once, dated now,
    // and the day before deletion counts from then.
    assert!(names(&mut h, &b).is_empty());
    let vs = versions(&mut h, &b);
    assert_eq!(vs.len(), 2);
    assert_eq!((vs[0].1.as_str(), vs[0].3), ("hide", T0 + 10 * DAY));
    assert_eq!(vs[1].2, old);
    at(&mut h, T0 + 11 * DAY - MINUTE);
    assert_eq!(versions(&mut h, &b).len(), 2);
    at(&mut h, T0 + 11 * DAY);
    assert_eq!(versions(&mut h, &b).len(), 1);
    // Rules removed: nothing more happens.
    h.ok(
        "b2_update_bucket",
        json!({"accountId": acct, "bucketId": b, "lifecycleRules": []}),
    );
    let g = upload_id(&mut h, &b, "g", b"2");
    at(&mut h, T0 + 100 * DAY);
    assert_eq!(names(&mut h, &b), ["g"]);
    assert!(ids(&versions(&mut h, &b)).contains(&g.as_str()));
}

#[test]
fn locked_versions_survive_until_the_lock_ends() {
    let mut h = H::new();
    let b = bucket_with_rules(
        &mut h,
        "locked-lifecycle",
        json!([{"fileNamePrefix": "", "daysFromHidingToDeleting": 1}]),
        true,
    );
    let until = (T0 + 10 * DAY).to_string();
    let retained = h
        .upload_with(
            &b,
            "kept",
            b"1",
            &[
                ("X-Bz-File-Retention-Mode", "governance"),
                ("X-Bz-File-Retention-Retain-Until-Timestamp", &until),
            ],
        )
        .1["fileId"]
        .as_str()
        .unwrap()
        .to_owned();
    let held = h
        .upload_with(&b, "held", b"2", &[("X-Bz-File-Legal-Hold", "on")])
        .1["fileId"]
        .as_str()
        .unwrap()
        .to_owned();
    let free = upload_id(&mut h, &b, "free", b"3");
    h.now = T0 + HOUR;
    upload_id(&mut h, &b, "kept", b"1b");
    upload_id(&mut h, &b, "held", b"2b");
    upload_id(&mut h, &b, "free", b"3b");

    // A day later the unlocked old version is deleted; the locked ones stay.
    at(&mut h, T0 + 5 * DAY);
    let vs = versions(&mut h, &b);
    let kept = ids(&vs);
    assert!(!kept.contains(&free.as_str()), "{vs:?}");
    assert!(kept.contains(&retained.as_str()), "{vs:?}");
    assert!(kept.contains(&held.as_str()), "{vs:?}");
    assert_eq!(vs.len(), 5);

    // Retention ends: deleted then, not before. The legal hold still holds.
    at(&mut h, T0 + 10 * DAY - MINUTE);
    assert!(ids(&versions(&mut h, &b)).contains(&retained.as_str()));
    at(&mut h, T0 + 10 * DAY);
    let vs = versions(&mut h, &b);
    assert!(!ids(&vs).contains(&retained.as_str()), "{vs:?}");
    at(&mut h, T0 + 400 * DAY);
    assert!(ids(&versions(&mut h, &b)).contains(&held.as_str()));

    // Lifting the hold makes the long-due deletion happen.
    h.ok(
        "b2_update_file_legal_hold",
        json!({"fileName": "held", "fileId": held, "legalHold": "off"}),
    );
    let vs = versions(&mut h, &b);
    assert!(!ids(&vs).contains(&held.as_str()), "{vs:?}");
    assert_eq!(vs.len(), 3);
}

#[test]
fn rules_are_checked_on_create_and_update() {
    let mut h = H::new();
    let acct = h.account_id.clone();
    for bad in [
        json!([{"fileNamePrefix": "photos/", "daysFromHidingToDeleting": 1},
               {"fileNamePrefix": "photos/kittens/", "daysFromHidingToDeleting": 1}]),
        json!([{"fileNamePrefix": "a/", "daysFromHidingToDeleting": 0}]),
        json!([{"fileNamePrefix": "a/", "daysFromUploadingToHiding": null}]),
        json!([{"daysFromHidingToDeleting": 1}]),
        json!({"fileNamePrefix": "a/", "daysFromHidingToDeleting": 1}),
    ] {
        let r = h.call(
            "b2_create_bucket",
            json!({"accountId": acct, "bucketName": "checked-rules", "bucketType": "allPrivate",
                   "lifecycleRules": bad}),
        );
        assert_err(&r, 400, "bad_request");
    }
    let b = h.bucket("checked-rules");
    let r = h.call(
        "b2_update_bucket",
        json!({"accountId": acct, "bucketId": b,
               "lifecycleRules": [{"fileNamePrefix": "", "daysFromHidingToDeleting": 1},
                                  {"fileNamePrefix": "logs/", "daysFromUploadingToHiding": 1}]}),
    );
    assert_err(&r, 400, "bad_request");
    // A rejected update changes nothing.
    let v = h.ok("b2_list_buckets", json!({"accountId": acct, "bucketId": b}));
    assert_eq!(v["buckets"][0]["lifecycleRules"], json!([]));
    assert_eq!(v["buckets"][0]["revision"], 1);
}
