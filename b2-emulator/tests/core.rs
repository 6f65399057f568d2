//! The sans-IO core, call by call: success shapes and B2's error codes.

mod common;

use b2_emulator::{
    ACCOUNT_TOKEN_LIFETIME_MS, Config, FaultAction, FaultRule, FaultTarget, HttpFault,
};
use bytes::Bytes;
use common::{H, T0, assert_err, body_json, sha1_hex};
use http::Request;
use serde_json::{Value, json};

// ----- authorize -----

#[test]
fn authorize_v4_shape() {
    let mut h = H::new();
    let (s, v) = h.authorize("masterid", "mastersecret", 4);
    assert_eq!(s, 200);
    let api = &v["apiInfo"]["storageApi"];
    assert_eq!(v["accountId"], "e0a1b2c3d4e5");
    assert_eq!(api["recommendedPartSize"], 100_000_000);
    assert_eq!(api["absoluteMinimumPartSize"], 10);
    assert_eq!(api["apiUrl"], "http://127.0.0.1");
    assert_eq!(api["downloadUrl"], "http://127.0.0.1");
    assert!(api["s3ApiUrl"].is_string());
    assert_eq!(api["allowed"]["buckets"], Value::Null);
    assert_eq!(api["allowed"]["namePrefix"], Value::Null);
    let caps = api["allowed"]["capabilities"].as_array().unwrap();
    assert!(caps.iter().any(|c| c == "writeFiles") && caps.iter().any(|c| c == "bypassGovernance"));
    assert!(v["authorizationToken"].as_str().unwrap().len() > 20);
}

#[test]
fn authorize_accepts_account_id_and_rejects_bad_keys() {
    let mut h = H::new();
    assert_eq!(h.authorize("e0a1b2c3d4e5", "mastersecret", 4).0, 200);
    assert_err(&h.authorize("masterid", "wrong", 4), 401, "unauthorized");
    assert_err(
        &h.authorize("nobody", "mastersecret", 4),
        401,
        "unauthorized",
    );
    let req = Request::get("/b2api/v4/b2_authorize_account")
        .body(Bytes::new())
        .unwrap();
    let r = h.raw(req);
    assert_eq!(r.status(), 401);
}

#[test]
fn authorize_v3_shape() {
    let mut h = H::new();
    let (s, v) = h.authorize("masterid", "mastersecret", 3);
    assert_eq!(s, 200);
    let api = &v["apiInfo"]["storageApi"];
    assert!(api["capabilities"].is_array());
    assert!(api.get("allowed").is_none());
    assert_eq!(api["bucketId"], Value::Null);
}

#[test]
fn account_token_expires_after_24_hours() {
    let mut h = H::new();
    assert_eq!(
        h.call("b2_list_buckets", json!({"accountId": h.account_id}))
            .0,
        200
    );
    h.now = T0 + ACCOUNT_TOKEN_LIFETIME_MS - 1;
    assert_eq!(
        h.call("b2_list_buckets", json!({"accountId": h.account_id}))
            .0,
        200
    );
    h.now = T0 + ACCOUNT_TOKEN_LIFETIME_MS;
    let r = h.call("b2_list_buckets", json!({"accountId": h.account_id}));
    assert_err(&r, 401, "expired_auth_token");
}

#[test]
fn bad_token_and_missing_token() {
    let mut h = H::new();
    let acct = h.account_id.clone();
    assert_err(
        &h.call_as("nope", "b2_list_buckets", json!({"accountId": acct})),
        401,
        "bad_auth_token",
    );
    let req = Request::post("/b2api/v4/b2_list_buckets")
        .body(Bytes::from("{}"))
        .unwrap();
    let r = h.raw(req);
    assert_eq!(r.status(), 401);
    assert_eq!(body_json(&r)["code"], "bad_auth_token");
}

#[test]
fn bad_json_and_missing_fields() {
    let mut h = H::new();
    let req = Request::post("/b2api/v4/b2_list_buckets")
        .header("Authorization", h.token.clone())
        .body(Bytes::from("{not json"))
        .unwrap();
    let r = h.raw(req);
    assert_eq!(r.status(), 400);
    assert_eq!(body_json(&r)["code"], "bad_json");
    assert_err(&h.call("b2_get_upload_url", json!({})), 400, "bad_request");
    assert_err(&h.call("b2_no_such_call", json!({})), 404, "not_found");
}

// ----- buckets -----

#[test]
fn bucket_lifecycle() {
    let mut h = H::new();
    let acct = h.account_id.clone();
    let v = h.ok(
        "b2_create_bucket",
        json!({"accountId": acct, "bucketName": "my-bucket-1", "bucketType": "allPrivate",
               "bucketInfo": {"a": "b"}, "corsRules": [{"corsRuleName": "r", "allowedOrigins": ["*"]}],
               "lifecycleRules": [{"fileNamePrefix": "", "daysFromHidingToDeleting": 1}]}),
    );
    assert_eq!(v["bucketName"], "my-bucket-1");
    assert_eq!(v["bucketType"], "allPrivate");
    assert_eq!(v["revision"], 1);
    assert_eq!(v["bucketInfo"]["a"], "b");
    assert_eq!(v["corsRules"][0]["corsRuleName"], "r");
    assert_eq!(v["lifecycleRules"][0]["daysFromHidingToDeleting"], 1);
    assert_eq!(
        v["fileLockConfiguration"]["value"]["isFileLockEnabled"],
        false
    );
    assert_eq!(v["defaultServerSideEncryption"]["value"]["mode"], "none");
    let id = v["bucketId"].as_str().unwrap().to_owned();

    // Names are unique, case-insensitively.
    let r = h.call(
        "b2_create_bucket",
        json!({"accountId": acct, "bucketName": "MY-BUCKET-1", "bucketType": "allPrivate"}),
    );
    assert_err(&r, 400, "duplicate_bucket_name");
    for bad in ["short", "has_underscore", "b2-reserved"] {
        let r = h.call(
            "b2_create_bucket",
            json!({"accountId": acct, "bucketName": bad, "bucketType": "allPrivate"}),
        );
        assert_err(&r, 400, "bad_request");
    }
    let r = h.call(
        "b2_create_bucket",
        json!({"accountId": acct, "bucketName": "good-name", "bucketType": "snapshot"}),
    );
    assert_err(&r, 400, "bad_request");

    // Update with revision check.
    let v = h.ok(
        "b2_update_bucket",
        json!({"accountId": acct, "bucketId": id, "bucketType": "allPublic", "ifRevisionIs": 1}),
    );
    assert_eq!(v["revision"], 2);
    assert_eq!(v["bucketType"], "allPublic");
    let r = h.call(
        "b2_update_bucket",
        json!({"accountId": acct, "bucketId": id, "bucketInfo": {}, "ifRevisionIs": 1}),
    );
    assert_err(&r, 409, "conflict");

    // List: all, by name, by type, GET form.
    h.bucket("other-bucket");
    let v = h.ok("b2_list_buckets", json!({"accountId": acct}));
    let names: Vec<_> = v["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["bucketName"].clone())
        .collect();
    assert_eq!(names, vec![json!("my-bucket-1"), json!("other-bucket")]);
    let v = h.ok(
        "b2_list_buckets",
        json!({"accountId": acct, "bucketName": "other-bucket"}),
    );
    assert_eq!(v["buckets"].as_array().unwrap().len(), 1);
    let v = h.ok(
        "b2_list_buckets",
        json!({"accountId": acct, "bucketTypes": ["allPublic"]}),
    );
    assert_eq!(v["buckets"][0]["bucketName"], "my-bucket-1");
    let (s, v) = h.get(
        "b2_list_buckets",
        &format!("accountId={acct}&bucketId={id}"),
    );
    assert_eq!(s, 200);
    assert_eq!(v["buckets"][0]["bucketId"], id);

    // Delete only when empty.
    h.upload(&id, "f", b"x");
    assert_err(
        &h.call(
            "b2_delete_bucket",
            json!({"accountId": acct, "bucketId": id}),
        ),
        400,
        "cannot_delete_non_empty_bucket",
    );
    let files = h.ok("b2_list_file_versions", json!({"bucketId": id}));
    for f in files["files"].as_array().unwrap() {
        h.ok(
            "b2_delete_file_version",
            json!({"fileName": f["fileName"], "fileId": f["fileId"]}),
        );
    }
    let v = h.ok(
        "b2_delete_bucket",
        json!({"accountId": acct, "bucketId": id}),
    );
    assert_eq!(v["bucketId"], id);
    assert_err(
        &h.call(
            "b2_delete_bucket",
            json!({"accountId": acct, "bucketId": id}),
        ),
        400,
        "bad_bucket_id",
    );
}

#[test]
fn too_many_buckets() {
    let mut h = H::new();
    for i in 0..100 {
        h.bucket(&format!("bucket-{i:03}"));
    }
    let acct = h.account_id.clone();
    let r = h.call(
        "b2_create_bucket",
        json!({"accountId": acct, "bucketName": "bucket-100", "bucketType": "allPrivate"}),
    );
    assert_err(&r, 400, "too_many_buckets");
}

// ----- uploads -----

#[test]
fn upload_file_version_shape() {
    let mut h = H::new();
    let b = h.bucket("bucket-one");
    let data = b"hello world";
    let v = h
        .upload_with(
            &b,
            "dir/hello world+€.txt",
            data,
            &[
                ("X-Bz-Info-Author", "Ada%20L"),
                ("X-Bz-Info-src_last_modified_millis", "123"),
            ],
        )
        .1;
    assert_eq!(v["action"], "upload");
    assert_eq!(v["fileName"], "dir/hello world+€.txt");
    assert_eq!(v["contentLength"], 11);
    assert_eq!(v["contentSha1"], sha1_hex(data));
    assert_eq!(v["contentType"], "text/plain");
    assert_eq!(v["fileInfo"]["author"], "Ada L");
    assert_eq!(v["fileInfo"]["src_last_modified_millis"], "123");
    assert_eq!(v["bucketId"], b);
    assert_eq!(v["uploadTimestamp"], T0);
    assert_eq!(v["serverSideEncryption"]["mode"], Value::Null);
    assert_eq!(v["legalHold"]["isClientAuthorizedToRead"], true);
    let id = v["fileId"].as_str().unwrap();
    let info = h.ok("b2_get_file_info", json!({"fileId": id}));
    assert_eq!(info, v);
}

#[test]
fn upload_sha1_modes() {
    let mut h = H::new();
    let b = h.bucket("bucket-one");
    let data = b"some data";
    // Wrong SHA1.
    let r = h.upload_with(
        &b,
        "a",
        data,
        &[(
            "X-Bz-Content-Sha1",
            "0000000000000000000000000000000000000000",
        )],
    );
    assert_err(&r, 400, "bad_request");
    assert_eq!(r.1["message"], "Sha1 did not match data received");
    // do_not_verify stores "none".
    let r = h.upload_with(&b, "b", data, &[("X-Bz-Content-Sha1", "do_not_verify")]);
    assert_eq!(r.1["contentSha1"], "none");
    // unverified:<hex> is stored and returned with its prefix.
    let un = format!("unverified:{}", sha1_hex(b"whatever"));
    let r = h.upload_with(&b, "c", data, &[("X-Bz-Content-Sha1", &un)]);
    assert_eq!(r.1["contentSha1"], un);
    // Missing header.
    let (path, token) = h.upload_url(&b);
    let req = Request::post(path)
        .header("Authorization", token)
        .header("X-Bz-File-Name", "d")
        .header("Content-Type", "text/plain")
        .header("Content-Length", "9")
        .body(Bytes::from_static(data))
        .unwrap();
    assert_eq!(h.raw(req).status(), 400);
}

#[test]
fn upload_hex_digits_at_end() {
    let mut h = H::new();
    let b = h.bucket("bucket-one");
    let data = b"payload bytes";
    for (sha, ok) in [(sha1_hex(data), true), (sha1_hex(b"other"), false)] {
        let (path, token) = h.upload_url(&b);
        let mut body = data.to_vec();
        body.extend_from_slice(sha.as_bytes());
        let req = Request::post(path)
            .header("Authorization", token)
            .header("X-Bz-File-Name", "at-end")
            .header("Content-Type", "b2/x-auto")
            .header("Content-Length", body.len().to_string())
            .header("X-Bz-Content-Sha1", "hex_digits_at_end")
            .body(Bytes::from(body))
            .unwrap();
        let r = h.raw(req);
        let v = body_json(&r);
        if ok {
            assert_eq!(r.status(), 200, "{v}");
            assert_eq!(v["contentLength"], data.len());
            assert_eq!(v["contentSha1"], sha1_hex(data));
            assert_eq!(v["contentType"], "application/octet-stream");
        } else {
            assert_eq!(r.status(), 400);
        }
    }
}

#[test]
fn upload_validation() {
    let mut h = H::new();
    let b = h.bucket("bucket-one");
    // Control character in the name.
    assert_err(
        &h.upload_with(&b, "bad\u{1}name", b"x", &[]),
        400,
        "bad_request",
    );
    // Reserved b2- info key.
    assert_err(
        &h.upload_with(&b, "n", b"x", &[("X-Bz-Info-b2-secret", "1")]),
        400,
        "bad_request",
    );
    // Allowed b2- info keys.
    assert_eq!(
        h.upload_with(
            &b,
            "n",
            b"x",
            &[("X-Bz-Info-b2-content-disposition", "inline")]
        )
        .0,
        200
    );
    // Eleven info headers.
    let keys: Vec<String> = (0..11).map(|i| format!("X-Bz-Info-k{i}")).collect();
    let hdrs: Vec<(&str, &str)> = keys.iter().map(|k| (k.as_str(), "v")).collect();
    assert_err(&h.upload_with(&b, "n", b"x", &hdrs), 400, "bad_request");
    // Headers over 7000 bytes.
    let big = "v".repeat(1000);
    let keys: Vec<String> = (0..8).map(|i| format!("X-Bz-Info-k{i}")).collect();
    let hdrs: Vec<(&str, &str)> = keys.iter().map(|k| (k.as_str(), big.as_str())).collect();
    assert_err(&h.upload_with(&b, "n", b"x", &hdrs), 400, "bad_request");
    // Body shorter than Content-Length.
    let (path, token) = h.upload_url(&b);
    let req = Request::post(path)
        .header("Authorization", token)
        .header("X-Bz-File-Name", "short")
        .header("Content-Type", "text/plain")
        .header("Content-Length", "10")
        .header("X-Bz-Content-Sha1", "do_not_verify")
        .body(Bytes::from_static(b"abc"))
        .unwrap();
    assert_eq!(h.raw(req).status(), 400);
}

#[test]
fn upload_size_limit_is_configurable() {
    let mut h = H::with_config(
        Config::new()
            .with_master_key("masterid", "mastersecret")
            .with_max_small_file_size(5),
    );
    let b = h.bucket("bucket-one");
    assert_eq!(h.upload_with(&b, "ok", b"12345", &[]).0, 200);
    assert_err(
        &h.upload_with(&b, "big", b"123456", &[]),
        400,
        "bad_request",
    );
}

#[test]
fn upload_token_one_upload_at_a_time() {
    let mut h = H::new();
    let b = h.bucket("bucket-one");
    let (path, token) = h.upload_url(&b);
    let head = |name: &str| {
        Request::post(path.clone())
            .header("Authorization", token.clone())
            .header("X-Bz-File-Name", name)
            .header("Content-Type", "text/plain")
            .header("Content-Length", "3")
            .header("X-Bz-Content-Sha1", sha1_hex(b"abc"))
            .body(())
            .unwrap()
            .into_parts()
            .0
    };
    let mut first = h.emu.begin_upload(&head("one"), T0).unwrap();
    let second = h.emu.begin_upload(&head("two"), T0).unwrap_err();
    assert_eq!(second.status(), 400);
    let v = body_json(&second);
    assert_eq!(v["code"], "auth_token_limit");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .starts_with("more than one upload using auth token ")
    );
    first.write(b"abc").unwrap();
    assert_eq!(h.emu.finish_upload(first, T0).status(), 200);
    // Free again once the first upload finished; a token may be reused serially.
    let mut third = h.emu.begin_upload(&head("three"), T0).unwrap();
    third.write(b"abc").unwrap();
    assert_eq!(h.emu.finish_upload(third, T0).status(), 200);
}

#[test]
fn upload_token_errors() {
    let mut h = H::new();
    let b = h.bucket("bucket-one");
    let (path, token) = h.upload_url(&b);
    let req = |tok: &str| {
        Request::post(path.clone())
            .header("Authorization", tok)
            .header("X-Bz-File-Name", "f")
            .header("Content-Type", "text/plain")
            .header("Content-Length", "1")
            .header("X-Bz-Content-Sha1", "do_not_verify")
            .body(Bytes::from_static(b"x"))
            .unwrap()
    };
    assert_eq!(body_json(&h.raw(req("bogus")))["code"], "bad_auth_token");
    // The account token is not an upload token.
    let acct_token = h.token.clone();
    assert_eq!(h.raw(req(&acct_token)).status(), 401);
    h.now += 24 * 3600 * 1000;
    let r = h.raw(req(&token));
    assert_eq!(r.status(), 401);
    assert_eq!(body_json(&r)["code"], "expired_auth_token");
}

// ----- listing -----

fn names(v: &Value) -> Vec<String> {
    v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["fileName"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn list_file_names_order_prefix_delimiter_paging() {
    let mut h = H::new();
    let b = h.bucket("bucket-one");
    // UTF-8 byte order: "a/b" < "a/c" < "a0" < "b" < "é".
    for n in ["é", "b", "a0", "a/c", "a/b", "a/d/e", "a/d/f"] {
        h.upload(&b, n, n.as_bytes());
    }
    let v = h.ok("b2_list_file_names", json!({"bucketId": b}));
    assert_eq!(names(&v), ["a/b", "a/c", "a/d/e", "a/d/f", "a0", "b", "é"]);
    assert_eq!(v["nextFileName"], Value::Null);

    let v = h.ok("b2_list_file_names", json!({"bucketId": b, "prefix": "a/"}));
    assert_eq!(names(&v), ["a/b", "a/c", "a/d/e", "a/d/f"]);

    let v = h.ok(
        "b2_list_file_names",
        json!({"bucketId": b, "delimiter": "/"}),
    );
    assert_eq!(names(&v), ["a/", "a0", "b", "é"]);
    assert_eq!(v["files"][0]["action"], "folder");
    assert_eq!(v["files"][0]["fileId"], Value::Null);

    let v = h.ok(
        "b2_list_file_names",
        json!({"bucketId": b, "prefix": "a/", "delimiter": "/"}),
    );
    assert_eq!(names(&v), ["a/b", "a/c", "a/d/"]);

    // Paging: maxFileCount and nextFileName; startFileName is inclusive.
    let v = h.ok(
        "b2_list_file_names",
        json!({"bucketId": b, "maxFileCount": 3}),
    );
    assert_eq!(names(&v), ["a/b", "a/c", "a/d/e"]);
    assert_eq!(v["nextFileName"], "a/d/f");
    let v = h.ok(
        "b2_list_file_names",
        json!({"bucketId": b, "maxFileCount": 3, "startFileName": "a/d/f"}),
    );
    assert_eq!(names(&v), ["a/d/f", "a0", "b"]);
    assert_eq!(v["nextFileName"], "é");

    // GET with query parameters (percent-encoded values).
    let (s, v) = h.get(
        "b2_list_file_names",
        &format!("bucketId={b}&prefix=a%2F&maxFileCount=1"),
    );
    assert_eq!(s, 200);
    assert_eq!(names(&v), ["a/b"]);

    // Limits: 0 means the default; over 10000 is refused.
    assert_eq!(
        h.call(
            "b2_list_file_names",
            json!({"bucketId": b, "maxFileCount": 0})
        )
        .0,
        200
    );
    assert_err(
        &h.call(
            "b2_list_file_names",
            json!({"bucketId": b, "maxFileCount": 10001}),
        ),
        400,
        "bad_request",
    );
}

#[test]
fn list_default_page_is_100() {
    let mut h = H::new();
    let b = h.bucket("bucket-one");
    for i in 0..101 {
        h.upload(&b, &format!("f{i:03}"), b"");
    }
    let v = h.ok("b2_list_file_names", json!({"bucketId": b}));
    assert_eq!(v["files"].as_array().unwrap().len(), 100);
    assert_eq!(v["nextFileName"], "f100");
}

#[test]
fn versions_hide_and_names() {
    let mut h = H::new();
    let b = h.bucket("bucket-one");
    let v1 = h.upload(&b, "f", b"one")["fileId"]
        .as_str()
        .unwrap()
        .to_owned();
    h.now += 1;
    let v2 = h.upload(&b, "f", b"two")["fileId"]
        .as_str()
        .unwrap()
        .to_owned();
    h.upload(&b, "g", b"g");
    // Versions: name order, newest first within a name.
    let v = h.ok("b2_list_file_versions", json!({"bucketId": b}));
    let ids: Vec<_> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["fileId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids[..2], [v2.clone(), v1.clone()]);
    // Paging by name + id.
    let v = h.ok(
        "b2_list_file_versions",
        json!({"bucketId": b, "maxFileCount": 1}),
    );
    assert_eq!(v["nextFileName"], "f");
    assert_eq!(v["nextFileId"], v1);
    let v = h.ok(
        "b2_list_file_versions",
        json!({"bucketId": b, "startFileName": "f", "startFileId": v1, "maxFileCount": 1}),
    );
    assert_eq!(v["files"][0]["fileId"], v1);
    assert_eq!(v["nextFileName"], "g");
    assert_err(
        &h.call(
            "b2_list_file_versions",
            json!({"bucketId": b, "startFileId": v1}),
        ),
        400,
        "bad_request",
    );

    // Hide: names no longer lists it; versions shows the marker.
    let hide = h.ok("b2_hide_file", json!({"bucketId": b, "fileName": "f"}));
    assert_eq!(hide["action"], "hide");
    assert_eq!(hide["contentLength"], 0);
    assert_eq!(hide["contentSha1"], Value::Null);
    assert_eq!(
        names(&h.ok("b2_list_file_names", json!({"bucketId": b}))),
        ["g"]
    );
    assert_eq!(
        h.ok("b2_list_file_versions", json!({"bucketId": b}))["files"][0]["action"],
        "hide"
    );
    assert_err(
        &h.call("b2_hide_file", json!({"bucketId": b, "fileName": "f"})),
        400,
        "already_hidden",
    );
    assert_err(
        &h.call("b2_hide_file", json!({"bucketId": b, "fileName": "nope"})),
        400,
        "no_such_file",
    );
    // A hidden file is not downloadable by name, still by id.
    assert_eq!(
        h.download("/file/bucket-one/f", &[("Authorization", &h.token.clone())])
            .status(),
        404
    );
    let r = h.download(
        &format!("/b2api/v4/b2_download_file_by_id?fileId={v2}"),
        &[("Authorization", &h.token.clone())],
    );
    assert_eq!(r.body().as_ref(), b"two");

    // Unhide = delete the marker.
    let hid = hide["fileId"].as_str().unwrap();
    let v = h.ok(
        "b2_delete_file_version",
        json!({"fileName": "f", "fileId": hid}),
    );
    assert_eq!(v, json!({"fileId": hid, "fileName": "f"}));
    assert_eq!(
        names(&h.ok("b2_list_file_names", json!({"bucketId": b}))),
        ["f", "g"]
    );

    // Deleting the newest version uncovers the older one.
    h.ok(
        "b2_delete_file_version",
        json!({"fileName": "f", "fileId": v2}),
    );
    let r = h.download("/file/bucket-one/f", &[("Authorization", &h.token.clone())]);
    assert_eq!(r.body().as_ref(), b"one");
    assert_err(
        &h.call(
            "b2_delete_file_version",
            json!({"fileName": "f", "fileId": v2}),
        ),
        400,
        "file_not_present",
    );
    assert_err(
        &h.call(
            "b2_delete_file_version",
            json!({"fileName": "other", "fileId": v1}),
        ),
        400,
        "file_not_present",
    );
    assert_err(
        &h.call("b2_get_file_info", json!({"fileId": v2})),
        404,
        "not_found",
    );
}

// ----- large files -----

#[test]
fn large_file_happy_path() {
    let mut h = H::new();
    let b = h.bucket("bucket-one");
    let parts: [&[u8]; 3] = [b"aaaaaaaaaaaa", b"bbbbbbbbbbbb", b"cc"];
    let (id, shas) = h.large(&b, "big.bin", &parts);
    // Start shows up in versions, not in names.
    let v = h.ok("b2_list_file_versions", json!({"bucketId": b}));
    assert_eq!(v["files"][0]["action"], "start");
    assert_eq!(v["files"][0]["contentSha1"], "none");
    assert!(
        h.ok("b2_list_file_names", json!({"bucketId": b}))["files"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let v = h.ok("b2_list_unfinished_large_files", json!({"bucketId": b}));
    assert_eq!(v["files"][0]["fileId"], id);
    // Parts listing with paging.
    let v = h.ok("b2_list_parts", json!({"fileId": id, "maxPartCount": 2}));
    assert_eq!(v["parts"].as_array().unwrap().len(), 2);
    assert_eq!(v["parts"][1]["contentSha1"], shas[1]);
    assert_eq!(v["nextPartNumber"], 3);
    let v = h.ok("b2_list_parts", json!({"fileId": id, "startPartNumber": 3}));
    assert_eq!(v["parts"][0]["partNumber"], 3);
    assert_eq!(v["nextPartNumber"], Value::Null);
    // Finish.
    let v = h.ok(
        "b2_finish_large_file",
        json!({"fileId": id, "partSha1Array": shas}),
    );
    assert_eq!(v["action"], "upload");
    assert_eq!(v["contentLength"], 26);
    assert_eq!(v["contentSha1"], "none");
    assert_eq!(v["contentType"], "application/octet-stream");
    let r = h.download(
        "/file/bucket-one/big.bin",
        &[("Authorization", &h.token.clone())],
    );
    assert_eq!(r.body().as_ref(), b"aaaaaaaaaaaabbbbbbbbbbbbcc");
    assert_eq!(r.headers()["x-bz-content-sha1"], "none");
    // Finishing again fails (the file is no longer unfinished).
    assert_err(
        &h.call(
            "b2_finish_large_file",
            json!({"fileId": id, "partSha1Array": shas}),
        ),
        400,
        "bad_request",
    );
}

#[test]
fn large_file_finish_errors() {
    let mut h = H::new();
    let b = h.bucket("bucket-one");
    let (id, shas) = h.large(&b, "big.bin", &[b"aaaaaaaaaaaa", b"bbbbbbbbbbbb"]);
    // A missing part.
    let mut three = shas.clone();
    three.push(sha1_hex(b"x"));
    assert_err(
        &h.call(
            "b2_finish_large_file",
            json!({"fileId": id, "partSha1Array": three}),
        ),
        400,
        "missing_part",
    );
    // A wrong SHA1.
    let wrong = vec![shas[0].clone(), sha1_hex(b"nope")];
    assert_err(
        &h.call(
            "b2_finish_large_file",
            json!({"fileId": id, "partSha1Array": wrong}),
        ),
        400,
        "part_sha1_mismatch",
    );
    // A part below the minimum (10 bytes here) that is not the last.
    let (id2, _) = h.large(&b, "small-parts", &[b"tiny", b"bbbbbbbbbbbb"]);
    let shas2 = vec![sha1_hex(b"tiny"), sha1_hex(b"bbbbbbbbbbbb")];
    assert_err(
        &h.call(
            "b2_finish_large_file",
            json!({"fileId": id2, "partSha1Array": shas2}),
        ),
        400,
        "bad_request",
    );
    // Gaps: part 2 missing while 1 and 3 exist.
    let (id3, _) = h.large(&b, "gap", &[b"aaaaaaaaaaaa"]);
    assert_eq!(h.upload_part(&id3, 3, b"cccccccccccc").0, 200);
    let r = h.call("b2_finish_large_file", json!({"fileId": id3, "partSha1Array": [sha1_hex(b"aaaaaaaaaaaa"), sha1_hex(b"cccccccccccc")]}));
    assert_err(&r, 400, "missing_part");
    // Part number out of range.
    assert_err(&h.upload_part(&id3, 10_001, b"x"), 400, "bad_request");
    assert_err(&h.upload_part(&id3, 0, b"x"), 400, "bad_request");
}

#[test]
fn large_file_part_reupload_and_cancel() {
    let mut h = H::new();
    let b = h.bucket("bucket-one");
    let (id, _) = h.large(&b, "big.bin", &[b"first-version", b"zz"]);
    assert_eq!(h.upload_part(&id, 1, b"second-versio").0, 200);
    let v = h.ok("b2_list_parts", json!({"fileId": id}));
    assert_eq!(v["parts"][0]["contentSha1"], sha1_hex(b"second-versio"));
    h.ok(
        "b2_finish_large_file",
        json!({"fileId": id, "partSha1Array": [sha1_hex(b"second-versio"), sha1_hex(b"zz")]}),
    );
    let r = h.download(
        "/file/bucket-one/big.bin",
        &[("Authorization", &h.token.clone())],
    );
    assert_eq!(r.body().as_ref(), b"second-versiozz");

    let (id2, _) = h.large(&b, "cancel-me", &[b"aaaaaaaaaaaa"]);
    let v = h.ok("b2_cancel_large_file", json!({"fileId": id2}));
    assert_eq!(v["fileName"], "cancel-me");
    assert_eq!(v["bucketId"], b);
    assert!(
        h.ok("b2_list_unfinished_large_files", json!({"bucketId": b}))["files"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_err(
        &h.call("b2_cancel_large_file", json!({"fileId": id2})),
        400,
        "bad_request",
    );
    assert_err(
        &h.call(
            "b2_list_unfinished_large_files",
            json!({"bucketId": b, "maxFileCount": 101}),
        ),
        400,
        "bad_request",
    );
    assert_err(
        &h.call("b2_list_parts", json!({"fileId": id, "maxPartCount": 1001})),
        400,
        "bad_request",
    );
}

// ----- copies -----

#[test]
fn copy_file_directives_and_ranges() {
    let mut h = H::new();
    let b = h.bucket("bucket-one");
    let b2 = h.bucket("bucket-two");
    let src = h
        .upload_with(&b, "src", b"0123456789", &[("X-Bz-Info-color", "red")])
        .1;
    let sid = src["fileId"].as_str().unwrap();
    let v = h.ok(
        "b2_copy_file",
        json!({"sourceFileId": sid, "fileName": "copy"}),
    );
    assert_eq!(v["fileInfo"]["color"], "red");
    assert_eq!(v["contentType"], "text/plain");
    assert_eq!(v["contentSha1"], sha1_hex(b"0123456789"));
    let v = h.ok(
        "b2_copy_file",
        json!({"sourceFileId": sid, "fileName": "part", "destinationBucketId": b2, "range": "bytes=2-5",
               "metadataDirective": "REPLACE", "contentType": "application/x-test", "fileInfo": {}}),
    );
    assert_eq!(v["bucketId"], b2);
    assert_eq!(v["contentLength"], 4);
    assert_eq!(v["contentSha1"], sha1_hex(b"2345"));
    assert_eq!(v["fileInfo"], json!({}));
    let r = h.download(
        "/file/bucket-two/part",
        &[("Authorization", &h.token.clone())],
    );
    assert_eq!(r.body().as_ref(), b"2345");
    assert_eq!(r.headers()["content-type"], "application/x-test");
    // COPY with contentType is refused; REPLACE without it too.
    assert_err(
        &h.call(
            "b2_copy_file",
            json!({"sourceFileId": sid, "fileName": "x", "contentType": "a/b"}),
        ),
        400,
        "bad_request",
    );
    assert_err(
        &h.call(
            "b2_copy_file",
            json!({"sourceFileId": sid, "fileName": "x", "metadataDirective": "REPLACE"}),
        ),
        400,
        "bad_request",
    );
    assert_err(
        &h.call(
            "b2_copy_file",
            json!({"sourceFileId": "nope", "fileName": "x"}),
        ),
        400,
        "bad_request",
    );
}

#[test]
fn copy_file_too_large_and_copy_part() {
    let mut h = H::with_config(
        Config::new()
            .with_master_key("masterid", "mastersecret")
            .with_max_small_file_size(8)
            .with_min_part_size(4),
    );
    let b = h.bucket("bucket-one");
    let sid = h.upload(&b, "src", b"abcdefgh")["fileId"]
        .as_str()
        .unwrap()
        .to_owned();
    // Result of 8 bytes is fine; the source itself is at the limit.
    assert_eq!(
        h.call(
            "b2_copy_file",
            json!({"sourceFileId": sid, "fileName": "c"})
        )
        .0,
        200
    );
    let (lid, _) = h.large(&b, "big", &[b"1234", b"5678", b"9"]);
    let shas = [sha1_hex(b"1234"), sha1_hex(b"5678"), sha1_hex(b"9")];
    let big = h.ok(
        "b2_finish_large_file",
        json!({"fileId": lid, "partSha1Array": shas}),
    )["fileId"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = h.call(
        "b2_copy_file",
        json!({"sourceFileId": big, "fileName": "c2"}),
    );
    // 9 bytes > 8: must be copied by parts.
    assert_err(&r, 400, "source_too_large");
    assert_eq!(r.1["message"], "Copy source too big: 9");
    let start = h.ok(
        "b2_start_large_file",
        json!({"bucketId": b, "fileName": "by-parts", "contentType": "text/plain"}),
    );
    let nid = start["fileId"].as_str().unwrap();
    let p1 = h.ok(
        "b2_copy_part",
        json!({"sourceFileId": big, "largeFileId": nid, "partNumber": 1, "range": "bytes=0-4"}),
    );
    assert_eq!(p1["contentLength"], 5);
    assert_eq!(p1["contentSha1"], sha1_hex(b"12345"));
    let p2 = h.ok(
        "b2_copy_part",
        json!({"sourceFileId": big, "largeFileId": nid, "partNumber": 2, "range": "bytes=5-8"}),
    );
    h.ok(
        "b2_finish_large_file",
        json!({"fileId": nid, "partSha1Array": [p1["contentSha1"], p2["contentSha1"]]}),
    );
    let r = h.download(
        "/file/bucket-one/by-parts",
        &[("Authorization", &h.token.clone())],
    );
    assert_eq!(r.body().as_ref(), b"123456789");
}

// ----- downloads -----

#[test]
fn download_headers_ranges_and_head() {
    let mut h = H::new();
    let b = h.bucket("bucket-one");
    let name = "dir/file name+%.txt";
    let v = h
        .upload_with(
            &b,
            name,
            b"0123456789",
            &[
                (
                    "X-Bz-Info-b2-content-disposition",
                    "attachment%3B%20filename%3D%22a.txt%22",
                ),
                ("X-Bz-Info-b2-cache-control", "max-age=60"),
                ("X-Bz-Info-note", "caf%C3%A9"),
            ],
        )
        .1;
    let id = v["fileId"].as_str().unwrap().to_owned();
    let tok = h.token.clone();
    let path = format!("/file/bucket-one/{}", b2_proto::encoding::encode(name));
    let r = h.download(&path, &[("Authorization", &tok)]);
    assert_eq!(r.status(), 200);
    assert_eq!(r.body().as_ref(), b"0123456789");
    let hd = r.headers();
    assert_eq!(hd["content-length"], "10");
    assert_eq!(hd["x-bz-file-id"], id.as_str());
    assert_eq!(
        hd["x-bz-file-name"],
        b2_proto::encoding::encode(name).as_str()
    );
    assert_eq!(hd["x-bz-content-sha1"], sha1_hex(b"0123456789").as_str());
    assert_eq!(hd["x-bz-upload-timestamp"], T0.to_string().as_str());
    assert_eq!(hd["x-bz-info-note"], "caf%C3%A9");
    assert_eq!(hd["content-disposition"], "attachment; filename=\"a.txt\"");
    assert_eq!(hd["cache-control"], "max-age=60");
    assert!(hd.get("x-bz-info-b2-content-disposition").is_none());

    // Ranges.
    let r = h.download(&path, &[("Authorization", &tok), ("Range", "bytes=2-4")]);
    assert_eq!(r.status(), 206);
    assert_eq!(r.body().as_ref(), b"234");
    assert_eq!(r.headers()["content-range"], "bytes 2-4/10");
    let r = h.download(&path, &[("Authorization", &tok), ("Range", "bytes=-3")]);
    assert_eq!(r.body().as_ref(), b"789");
    let r = h.download(&path, &[("Authorization", &tok), ("Range", "bytes=8-100")]);
    assert_eq!(r.body().as_ref(), b"89");
    assert_eq!(r.headers()["content-range"], "bytes 8-9/10");
    let r = h.download(&path, &[("Authorization", &tok), ("Range", "bytes=10-")]);
    assert_eq!(r.status(), 416);
    assert_eq!(body_json(&r)["code"], "range_not_satisfiable");
    assert_eq!(r.headers()["content-range"], "bytes */10");

    // Query overrides and the token as a query parameter.
    let r = h.download(&format!("/b2api/v4/b2_download_file_by_id?fileId={id}&b2ContentType=text%2Fx-custom&Authorization={tok}"), &[]);
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/x-custom");

    // POST form of download by id.
    let req = Request::post("/b2api/v4/b2_download_file_by_id")
        .header("Authorization", tok.as_str())
        .header("Range", "bytes=0-1")
        .body(Bytes::from(json!({"fileId": id}).to_string()))
        .unwrap();
    let r = h.raw(req);
    assert_eq!(r.status(), 206);
    assert_eq!(r.body().as_ref(), b"01");

    // HEAD: headers without a body.
    let req = Request::head(&path)
        .header("Authorization", tok.as_str())
        .body(Bytes::new())
        .unwrap();
    let r = h.raw(req);
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-length"], "10");
    assert!(r.body().is_empty());

    // Not found, unauthorized.
    assert_eq!(
        h.download("/file/bucket-one/nope", &[("Authorization", &tok)])
            .status(),
        404
    );
    assert_eq!(
        h.download("/file/no-such-bucket/x", &[("Authorization", &tok)])
            .status(),
        404
    );
    let r = h.download(&path, &[]);
    assert_eq!(r.status(), 401);
    assert_eq!(body_json(&r)["code"], "unauthorized");
}

#[test]
fn public_bucket_needs_no_token() {
    let mut h = H::new();
    let acct = h.account_id.clone();
    let b = h.ok(
        "b2_create_bucket",
        json!({"accountId": acct, "bucketName": "public-one", "bucketType": "allPublic"}),
    )["bucketId"]
        .as_str()
        .unwrap()
        .to_owned();
    h.upload(&b, "p", b"open");
    let r = h.download("/file/public-one/p", &[]);
    assert_eq!(r.status(), 200);
    assert_eq!(r.body().as_ref(), b"open");
}

#[test]
fn download_authorization_scoped_by_prefix_and_time() {
    let mut h = H::new();
    let b = h.bucket("bucket-one");
    h.upload(&b, "share/a", b"a");
    h.upload(&b, "private/b", b"b");
    let v = h.ok(
        "b2_get_download_authorization",
        json!({"bucketId": b, "fileNamePrefix": "share/", "validDurationInSeconds": 60, "b2ContentDisposition": "inline"}),
    );
    assert_eq!(v["fileNamePrefix"], "share/");
    let t = v["authorizationToken"].as_str().unwrap().to_owned();
    // The override baked into the token must be repeated.
    assert_eq!(
        h.download("/file/bucket-one/share/a", &[("Authorization", &t)])
            .status(),
        401
    );
    let r = h.download(
        &format!("/file/bucket-one/share/a?b2ContentDisposition=inline&Authorization={t}"),
        &[],
    );
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-disposition"], "inline");
    let r = h.download(
        &format!("/file/bucket-one/private/b?b2ContentDisposition=inline&Authorization={t}"),
        &[],
    );
    assert_eq!(r.status(), 401);
    h.now += 60_000;
    let r = h.download(
        &format!("/file/bucket-one/share/a?b2ContentDisposition=inline&Authorization={t}"),
        &[],
    );
    assert_eq!(r.status(), 401);
    for secs in [0, 604_801] {
        let r = h.call(
            "b2_get_download_authorization",
            json!({"bucketId": b, "fileNamePrefix": "", "validDurationInSeconds": secs}),
        );
        assert_err(&r, 400, "bad_request");
    }
}

// ----- keys -----

#[test]
fn keys_capabilities_buckets_prefixes() {
    let mut h = H::new();
    let acct = h.account_id.clone();
    let b = h.bucket("bucket-one");
    let other = h.bucket("bucket-two");
    let k = h.ok(
        "b2_create_key",
        json!({"accountId": acct, "capabilities": ["listBuckets", "listFiles", "readFiles", "writeFiles"],
               "keyName": "restricted-1", "bucketIds": [b], "namePrefix": "ok/", "validDurationInSeconds": 3600}),
    );
    assert_eq!(k["bucketIds"], json!([b]));
    assert_eq!(k["namePrefix"], "ok/");
    assert_eq!(k["expirationTimestamp"], T0 + 3_600_000);
    let kid = k["applicationKeyId"].as_str().unwrap().to_owned();
    let secret = k["applicationKey"].as_str().unwrap().to_owned();
    // The secret is returned only once.
    let list = h.ok("b2_list_keys", json!({"accountId": acct}));
    assert_eq!(list["keys"].as_array().unwrap().len(), 1);
    assert!(list["keys"][0].get("applicationKey").is_none());

    let (s, auth) = h.authorize(&kid, &secret, 4);
    assert_eq!(s, 200);
    let allowed = &auth["apiInfo"]["storageApi"]["allowed"];
    assert_eq!(allowed["buckets"], json!([{"id": b, "name": "bucket-one"}]));
    assert_eq!(allowed["namePrefix"], "ok/");
    let kt = auth["authorizationToken"].as_str().unwrap().to_owned();

    // Multi-bucket keys authorize only on v4.
    assert_err(&h.authorize(&kid, &secret, 3), 401, "unsupported");

    // Capabilities.
    assert_err(
        &h.call_as(
            &kt,
            "b2_create_bucket",
            json!({"accountId": acct, "bucketName": "nope-nope", "bucketType": "allPrivate"}),
        ),
        401,
        "unauthorized",
    );
    assert_err(
        &h.call_as(&kt, "b2_list_keys", json!({"accountId": acct})),
        401,
        "unauthorized",
    );
    // Buckets.
    assert_err(
        &h.call_as(
            &kt,
            "b2_list_file_names",
            json!({"bucketId": other, "prefix": "ok/"}),
        ),
        401,
        "unauthorized",
    );
    assert_err(
        &h.call_as(&kt, "b2_get_upload_url", json!({"bucketId": other})),
        401,
        "unauthorized",
    );
    assert_err(
        &h.call_as(&kt, "b2_list_buckets", json!({"accountId": acct})),
        401,
        "unauthorized",
    );
    assert_eq!(
        h.call_as(
            &kt,
            "b2_list_buckets",
            json!({"accountId": acct, "bucketId": b})
        )
        .0,
        200
    );
    // Prefixes.
    assert_err(
        &h.call_as(&kt, "b2_list_file_names", json!({"bucketId": b})),
        401,
        "unauthorized",
    );
    assert_eq!(
        h.call_as(
            &kt,
            "b2_list_file_names",
            json!({"bucketId": b, "prefix": "ok/"})
        )
        .0,
        200
    );
    assert_err(
        &h.call_as(
            &kt,
            "b2_start_large_file",
            json!({"bucketId": b, "fileName": "bad/x", "contentType": "a/b"}),
        ),
        401,
        "unauthorized",
    );
    let up = h.call_as(&kt, "b2_get_upload_url", json!({"bucketId": b}));
    assert_eq!(up.0, 200);

    // Expiry of the key itself.
    h.now += 3_600_000;
    assert_err(&h.authorize(&kid, &secret, 4), 401, "unauthorized");
    h.now = T0;

    // Delete: its tokens stop working.
    let v = h.ok("b2_delete_key", json!({"applicationKeyId": kid}));
    assert_eq!(v["applicationKeyId"], kid);
    assert_err(
        &h.call_as(
            &kt,
            "b2_list_buckets",
            json!({"accountId": acct, "bucketId": b}),
        ),
        401,
        "bad_auth_token",
    );
    assert_err(&h.authorize(&kid, &secret, 4), 401, "unauthorized");
    assert_err(
        &h.call("b2_delete_key", json!({"applicationKeyId": kid})),
        400,
        "bad_request",
    );
}

#[test]
fn key_validation_and_paging() {
    let mut h = H::new();
    let acct = h.account_id.clone();
    for bad in [
        json!({"capabilities": [], "keyName": "k"}),
        json!({"capabilities": ["readFiles"], "keyName": "bad name"}),
        json!({"capabilities": ["flyToMoon"], "keyName": "k"}),
        json!({"capabilities": ["readFiles"], "keyName": "k", "validDurationInSeconds": 86_400_001}),
    ] {
        let mut body = bad.clone();
        body["accountId"] = json!(acct);
        assert_err(&h.call("b2_create_key", body), 400, "bad_request");
    }
    for i in 0..3 {
        h.ok(
            "b2_create_key",
            json!({"accountId": acct, "capabilities": ["readFiles"], "keyName": format!("k{i}")}),
        );
    }
    let v = h.ok("b2_list_keys", json!({"accountId": acct, "maxKeyCount": 2}));
    assert_eq!(v["keys"].as_array().unwrap().len(), 2);
    let next = v["nextApplicationKeyId"].clone();
    assert!(next.is_string());
    let v = h.ok(
        "b2_list_keys",
        json!({"accountId": acct, "startApplicationKeyId": next}),
    );
    assert_eq!(v["keys"].as_array().unwrap().len(), 1);
    assert_eq!(v["nextApplicationKeyId"], Value::Null);
}

// ----- Object Lock and encryption -----

#[test]
fn object_lock_retention_and_legal_hold() {
    let mut h = H::new();
    let acct = h.account_id.clone();
    let b = h.ok("b2_create_bucket", json!({"accountId": acct, "bucketName": "locked-one", "bucketType": "allPrivate", "fileLockEnabled": true}))["bucketId"]
        .as_str()
        .unwrap()
        .to_owned();
    let plain = h.bucket("plain-one");
    let until = (T0 + 10_000).to_string();
    let v = h
        .upload_with(
            &b,
            "g",
            b"x",
            &[
                ("X-Bz-File-Retention-Mode", "governance"),
                ("X-Bz-File-Retention-Retain-Until-Timestamp", &until),
                ("X-Bz-File-Legal-Hold", "on"),
            ],
        )
        .1;
    assert_eq!(
        v["fileRetention"]["value"],
        json!({"mode": "governance", "retainUntilTimestamp": T0 + 10_000})
    );
    assert_eq!(v["legalHold"]["value"], "on");
    let id = v["fileId"].as_str().unwrap().to_owned();
    // Lock headers on an unlocked bucket.
    assert_err(
        &h.upload_with(&plain, "g", b"x", &[("X-Bz-File-Legal-Hold", "on")]),
        400,
        "file_lock_conflict",
    );
    // Legal hold blocks deletion.
    assert_err(
        &h.call(
            "b2_delete_file_version",
            json!({"fileName": "g", "fileId": id, "bypassGovernance": true}),
        ),
        403,
        "access_denied",
    );
    let v = h.ok(
        "b2_update_file_legal_hold",
        json!({"fileName": "g", "fileId": id, "legalHold": "off"}),
    );
    assert_eq!(v["legalHold"], "off");
    // Governance: only with bypassGovernance.
    assert_err(
        &h.call(
            "b2_delete_file_version",
            json!({"fileName": "g", "fileId": id}),
        ),
        403,
        "access_denied",
    );
    // Shortening governance needs bypass too; extending doesn't.
    let r = h.call("b2_update_file_retention", json!({"fileName": "g", "fileId": id, "fileRetention": {"mode": "governance", "retainUntilTimestamp": T0 + 5_000}}));
    assert_err(&r, 403, "access_denied");
    let v = h.ok("b2_update_file_retention", json!({"fileName": "g", "fileId": id, "fileRetention": {"mode": "compliance", "retainUntilTimestamp": T0 + 20_000}}));
    assert_eq!(
        v["fileRetention"],
        json!({"mode": "compliance", "retainUntilTimestamp": T0 + 20_000})
    );
    // Compliance cannot be removed, even with bypass.
    let r = h.call("b2_update_file_retention", json!({"fileName": "g", "fileId": id, "fileRetention": {"mode": null}, "bypassGovernance": true}));
    assert_err(&r, 403, "access_denied");
    assert_err(
        &h.call(
            "b2_delete_file_version",
            json!({"fileName": "g", "fileId": id, "bypassGovernance": true}),
        ),
        403,
        "access_denied",
    );
    // After the period ends, deletion works.
    h.now = T0 + 20_000;
    h.ok(
        "b2_delete_file_version",
        json!({"fileName": "g", "fileId": id}),
    );

    // Default retention is applied to new files.
    h.ok("b2_update_bucket", json!({"accountId": acct, "bucketId": b, "defaultRetention": {"mode": "governance", "period": {"duration": 1, "unit": "days"}}}));
    let v = h.upload(&b, "d", b"x");
    assert_eq!(
        v["fileRetention"]["value"]["retainUntilTimestamp"],
        h.now + 86_400_000
    );
    // File lock cannot be disabled.
    let r = h.call(
        "b2_update_bucket",
        json!({"accountId": acct, "bucketId": b, "fileLockEnabled": false}),
    );
    assert_err(&r, 400, "file_lock_conflict");
}

#[test]
fn sse_b2_and_sse_c() {
    use base64::Engine as _;
    use md5::Digest as _;
    let mut h = H::new();
    let b = h.bucket("bucket-one");
    let v = h
        .upload_with(&b, "b2", b"x", &[("X-Bz-Server-Side-Encryption", "AES256")])
        .1;
    assert_eq!(
        v["serverSideEncryption"],
        json!({"algorithm": "AES256", "mode": "SSE-B2"})
    );
    let tok = h.token.clone();
    let r = h.download("/file/bucket-one/b2", &[("Authorization", &tok)]);
    assert_eq!(r.headers()["x-bz-server-side-encryption"], "AES256");

    let key = [7u8; 32];
    let b64 = base64::engine::general_purpose::STANDARD;
    let k = b64.encode(key);
    let md5 = b64.encode(md5::Md5::digest(key));
    let sse = [
        ("X-Bz-Server-Side-Encryption-Customer-Algorithm", "AES256"),
        ("X-Bz-Server-Side-Encryption-Customer-Key", k.as_str()),
        ("X-Bz-Server-Side-Encryption-Customer-Key-Md5", md5.as_str()),
    ];
    let v = h.upload_with(&b, "c", b"secret", &sse).1;
    assert_eq!(
        v["serverSideEncryption"],
        json!({"algorithm": "AES256", "customerKeyMd5": md5, "mode": "SSE-C"})
    );
    let id = v["fileId"].as_str().unwrap().to_owned();
    // Reading needs the key.
    assert_eq!(
        h.download("/file/bucket-one/c", &[("Authorization", &tok)])
            .status(),
        400
    );
    let mut with_key = sse.to_vec();
    with_key.push(("Authorization", &tok));
    let r = h.download("/file/bucket-one/c", &with_key);
    assert_eq!(r.status(), 200);
    assert_eq!(r.body().as_ref(), b"secret");
    assert_eq!(
        r.headers()["x-bz-server-side-encryption-customer-key-md5"],
        md5.as_str()
    );
    let other = b64.encode([8u8; 32]);
    let other_md5 = b64.encode(md5::Md5::digest([8u8; 32]));
    let wrong = [
        ("Authorization", tok.as_str()),
        ("X-Bz-Server-Side-Encryption-Customer-Algorithm", "AES256"),
        ("X-Bz-Server-Side-Encryption-Customer-Key", other.as_str()),
        (
            "X-Bz-Server-Side-Encryption-Customer-Key-Md5",
            other_md5.as_str(),
        ),
    ];
    assert_eq!(h.download("/file/bucket-one/c", &wrong).status(), 403);
    // A mismatched MD5 is refused at upload.
    let bad = [
        ("X-Bz-Server-Side-Encryption-Customer-Algorithm", "AES256"),
        ("X-Bz-Server-Side-Encryption-Customer-Key", k.as_str()),
        (
            "X-Bz-Server-Side-Encryption-Customer-Key-Md5",
            other_md5.as_str(),
        ),
    ];
    assert_err(&h.upload_with(&b, "c2", b"x", &bad), 400, "bad_request");
    // Copy needs the source key.
    assert_err(
        &h.call(
            "b2_copy_file",
            json!({"sourceFileId": id, "fileName": "c3"}),
        ),
        400,
        "bad_request",
    );
    let v = h.ok(
        "b2_copy_file",
        json!({"sourceFileId": id, "fileName": "c3", "sourceServerSideEncryption": {"mode": "SSE-C", "algorithm": "AES256", "customerKey": k, "customerKeyMd5": md5}}),
    );
    assert_eq!(v["serverSideEncryption"]["mode"], Value::Null);
}

#[test]
fn notification_rules() {
    let mut h = H::new();
    let b = h.bucket("bucket-one");
    let rule = |name: &str, types: Value, prefix: &str| {
        json!({"name": name, "eventTypes": types, "isEnabled": true, "objectNamePrefix": prefix,
               "targetConfiguration": {"targetType": "webhook", "url": "https://example.com/hook"}})
    };
    let v = h.ok(
        "b2_set_bucket_notification_rules",
        json!({"bucketId": b, "eventNotificationRules": [rule("zeta", json!(["b2:ObjectCreated:*"]), "a/"), rule("alpha", json!(["b2:ObjectDeleted:*"]), "")]}),
    );
    let rules = v["eventNotificationRules"].as_array().unwrap();
    assert_eq!(rules[0]["name"], "alpha");
    assert_eq!(rules[0]["isSuspended"], false);
    assert_eq!(rules[0]["maxEventsPerBatch"], 1);
    assert_eq!(
        rules[0]["targetConfiguration"]["hmacSha256SigningSecret"]
            .as_str()
            .unwrap()
            .len(),
        32
    );
    let got = h.ok("b2_get_bucket_notification_rules", json!({"bucketId": b}));
    assert_eq!(got, v);
    let r = h.call(
        "b2_set_bucket_notification_rules",
        json!({"bucketId": b, "eventNotificationRules": [rule("x", json!([]), "")]}),
    );
    assert_err(&r, 400, "event_types_empty");
    let r = h.call(
        "b2_set_bucket_notification_rules",
        json!({"bucketId": b, "eventNotificationRules": [rule("x", json!(["b2:Nope"]), "")]}),
    );
    assert_err(&r, 400, "event_type_invalid");
    let r = h.call(
        "b2_set_bucket_notification_rules",
        json!({"bucketId": b, "eventNotificationRules": [rule("x", json!(["b2:ObjectCreated:*"]), "a"), rule("y", json!(["b2:ObjectCreated:Upload"]), "a/b")]}),
    );
    assert_err(&r, 400, "event_type_overlap");
    // An empty list replaces everything.
    let v = h.ok(
        "b2_set_bucket_notification_rules",
        json!({"bucketId": b, "eventNotificationRules": []}),
    );
    assert_eq!(v["eventNotificationRules"], json!([]));
}

// ----- faults and test modes -----

#[test]
fn injected_status_faults() {
    let mut h = H::new();
    let b = h.bucket("bucket-one");
    h.emu.add_fault(
        FaultRule::new(
            FaultAction::Status {
                status: 503,
                retry_after: Some(3),
            },
            FaultTarget::Uploads,
        )
        .with_count(1),
    );
    let r = h.upload_with(&b, "f", b"x", &[]);
    assert_err(&r, 503, "service_unavailable");
    assert_eq!(h.upload_with(&b, "f", b"x", &[]).0, 200);
    // After a 503 the upload URL's token is no longer valid: a new URL is needed.
    let (path, token) = h.upload_url(&b);
    h.emu.add_fault(
        FaultRule::new(
            FaultAction::Status {
                status: 500,
                retry_after: None,
            },
            FaultTarget::Uploads,
        )
        .with_count(1),
    );
    let req = |token: &str| {
        Request::post(path.clone())
            .header("Authorization", token)
            .header("X-Bz-File-Name", "f")
            .header("Content-Type", "text/plain")
            .header("Content-Length", "1")
            .header("X-Bz-Content-Sha1", "do_not_verify")
            .body(Bytes::from_static(b"x"))
            .unwrap()
    };
    assert_eq!(h.raw(req(&token)).status(), 500);
    let r = h.raw(req(&token));
    assert_eq!(r.status(), 401);
    assert_eq!(body_json(&r)["code"], "bad_auth_token");
    h.emu.add_fault(
        FaultRule::new(
            FaultAction::Status {
                status: 429,
                retry_after: Some(7),
            },
            FaultTarget::Call("b2_list_buckets".into()),
        )
        .with_count(2),
    );
    let acct = h.account_id.clone();
    for _ in 0..2 {
        let req = Request::post("/b2api/v4/b2_list_buckets")
            .header("Authorization", h.token.clone())
            .body(Bytes::from(json!({"accountId": acct}).to_string()))
            .unwrap();
        let r = h.raw(req);
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()["retry-after"], "7");
        assert_eq!(body_json(&r)["code"], "too_many_requests");
    }
    assert_eq!(h.call("b2_list_buckets", json!({"accountId": acct})).0, 200);
    h.emu
        .add_fault(FaultRule::new(FaultAction::ExpireToken, FaultTarget::Calls).with_count(1));
    assert_err(
        &h.call("b2_list_buckets", json!({"accountId": acct})),
        401,
        "expired_auth_token",
    );
    h.emu
        .add_fault(FaultRule::new(FaultAction::Delay { ms: 5 }, FaultTarget::All).with_count(1));
    let req = Request::post("/b2api/v4/b2_list_buckets")
        .header("Authorization", h.token.clone())
        .body(Bytes::from(json!({"accountId": acct}).to_string()))
        .unwrap();
    let r = h.raw(req);
    assert_eq!(
        r.extensions().get::<HttpFault>(),
        Some(&HttpFault::Delay(5))
    );
}

#[test]
fn percentage_faults_are_reproducible_from_the_seed() {
    let run = |seed: u64| {
        let mut h = H::with_config(
            Config::new()
                .with_master_key("masterid", "mastersecret")
                .with_seed(seed),
        );
        h.emu.add_fault(
            FaultRule::new(
                FaultAction::Status {
                    status: 500,
                    retry_after: None,
                },
                FaultTarget::Calls,
            )
            .with_percent(50),
        );
        let acct = h.account_id.clone();
        (0..40)
            .map(|_| h.call("b2_list_buckets", json!({"accountId": acct})).0)
            .collect::<Vec<_>>()
    };
    let a = run(7);
    assert_eq!(a, run(7));
    assert!(a.contains(&500) && a.contains(&200));
    assert_ne!(a, run(8));
}

#[test]
fn test_mode_header() {
    let mut h = H::new();
    let b = h.bucket("bucket-one");
    let mut fails = 0;
    for i in 0..60 {
        let r = h.upload_with(
            &b,
            &format!("f{i}"),
            b"x",
            &[("X-Bz-Test-Mode", "fail_some_uploads")],
        );
        if r.0 == 503 {
            fails += 1;
        } else {
            assert_eq!(r.0, 200);
        }
    }
    assert!((5..55).contains(&fails), "{fails} failures");
    let r = h.upload_with(&b, "cap", b"x", &[("X-Bz-Test-Mode", "force_cap_exceeded")]);
    assert_err(&r, 403, "cap_exceeded");
    let acct = h.account_id.clone();
    let mut expired = 0;
    for _ in 0..40 {
        let req = Request::post("/b2api/v4/b2_list_buckets")
            .header("Authorization", h.token.clone())
            .header("X-Bz-Test-Mode", "expire_some_account_authorization_tokens")
            .body(Bytes::from(json!({"accountId": acct}).to_string()))
            .unwrap();
        if h.raw(req).status() == 401 {
            expired += 1;
        }
    }
    assert!((1..40).contains(&expired), "{expired}");
}

#[test]
fn control_endpoint_and_clock() {
    let mut h = H::new();
    let acct = h.account_id.clone();
    let req = Request::post("/__emulator/faults")
        .body(Bytes::from(
            r#"{"action":"status","status":500,"target":"b2_list_buckets","count":1}"#,
        ))
        .unwrap();
    assert_eq!(h.raw(req).status(), 200);
    assert_err(
        &h.call("b2_list_buckets", json!({"accountId": acct})),
        500,
        "internal_error",
    );
    assert_eq!(h.call("b2_list_buckets", json!({"accountId": acct})).0, 200);
    let req = Request::post("/__emulator/clock")
        .body(Bytes::from(r#"{"advanceSeconds":86400}"#))
        .unwrap();
    assert_eq!(h.raw(req).status(), 200);
    assert_err(
        &h.call("b2_list_buckets", json!({"accountId": acct})),
        401,
        "expired_auth_token",
    );
    let req = Request::post("/__emulator/faults")
        .body(Bytes::from(r#"{"action":"explode"}"#))
        .unwrap();
    assert_eq!(h.raw(req).status(), 400);
}

#[test]
fn older_api_versions_are_served() {
    let mut h = H::new();
    let acct = h.account_id.clone();
    let tok = h.token.clone();
    let req = Request::post("/b2api/v2/b2_list_buckets")
        .header("Authorization", tok)
        .body(Bytes::from(json!({"accountId": acct}).to_string()))
        .unwrap();
    assert_eq!(h.raw(req).status(), 200);
    let (s, v) = h.authorize("masterid", "mastersecret", 2);
    assert_eq!(s, 200);
    assert!(v["apiUrl"].is_string());
    assert!(v["allowed"]["capabilities"].is_array());
}

#[test]
fn no_panic_on_garbage() {
    let mut h = H::new();
    let tok = h.token.clone();
    let paths = [
        "/",
        "/b2api/",
        "/b2api/v9/b2_list_buckets",
        "/b2api/v4/",
        "/file/",
        "/file/x",
        "/file//",
        "/b2api/v4/b2_upload_file",
        "/b2api/v4/b2_upload_part/x/y",
        "/b2api/v4/b2_download_file_by_id",
        "/b2api/v4/b2_download_file_by_id?fileId=%ZZ",
        "/__emulator/nope",
    ];
    for p in paths {
        for m in ["GET", "POST", "HEAD", "PUT"] {
            for body in ["", "[]", "{\"bucketId\": 5}", "\u{0}"] {
                let req = Request::builder()
                    .method(m)
                    .uri(p)
                    .header("Authorization", tok.as_str())
                    .header("Content-Length", "abc")
                    .header("Range", "bytes=zz")
                    .header("X-Bz-Part-Number", "-1")
                    .body(Bytes::from(body))
                    .unwrap();
                let r = h.raw(req);
                assert!(r.status().as_u16() >= 400, "{m} {p}");
            }
        }
    }
    for call in [
        "b2_list_file_names",
        "b2_copy_file",
        "b2_finish_large_file",
        "b2_create_key",
        "b2_update_bucket",
        "b2_set_bucket_notification_rules",
    ] {
        for body in [
            json!({}),
            json!({"bucketId": [1]}),
            json!({"maxFileCount": -1}),
            json!({"partSha1Array": "x", "fileId": 3}),
        ] {
            let r = h.call(call, body);
            assert!(r.0 >= 400);
            assert!(r.1["code"].is_string());
        }
    }
}
