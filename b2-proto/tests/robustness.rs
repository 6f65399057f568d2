//! Robustness of every reply parser: whatever a server (or something pretending to be one)
//! sends, parsing returns a value or a typed error, never panics, and no error quotes a
//! secret that was in the reply.
//!
//! Inputs: arbitrary statuses and bodies; every fixture under `tests/fixtures` cut at every
//! byte and with random bytes flipped; every JSON value of every success fixture removed or
//! replaced with a wrong type, `null`, huge or negative numbers, deep nesting, or a secret of
//! the same reply; download heads with arbitrary, non-ASCII, huge and repeated headers.
#![allow(clippy::disallowed_methods)]

mod common;

use std::fmt::Debug;
use std::panic::{AssertUnwindSafe, catch_unwind};

use b2_proto::model::{BucketType, FileRetention, LegalHold, RetentionMode};
use b2_proto::ops::{
    ByteRange, CancelLargeFile, CopyFile, CopyPart, CreateBucket, CreateKey, DeleteBucket,
    DeleteFileVersion, DeleteKey, DownloadFileById, DownloadFileByName, FinishLargeFile,
    GetBucketNotificationRules, GetDownloadAuthorization, GetFileInfo, GetUploadPartUrl,
    GetUploadUrl, HideFile, ListBuckets, ListFileNames, ListFileVersions, ListKeys, ListParts,
    ListUnfinishedLargeFiles, SetBucketNotificationRules, StartLargeFile, StreamHead, UpdateBucket,
    UpdateFileLegalHold, UpdateFileRetention, UploadFile, UploadPart, UploadSha1,
};
use b2_proto::{
    ApplicationKey, ApplicationKeyId, AuthorizeAccount, BucketId, BucketName, Capability, Error,
    FileId, FileName, Operation, PartNumber, Sha1Digest,
};
use bytes::Bytes;
use common::parse_http;
use http::{HeaderName, HeaderValue, Response};
use proptest::prelude::*;
use serde_json::Value;

/// What one parse produced: the `Debug` of the value, or the error.
type Outcome = Result<String, Error>;
/// One way to parse the replies of one call.
type Parser = Box<dyn Fn(Response<Bytes>) -> Outcome>;

fn outcome<T: Debug>(result: Result<T, Error>) -> Outcome {
    result.map(|value| format!("{value:?}"))
}

fn op<O>(op: O) -> Parser
where
    O: Operation + 'static,
    O::Output: Debug,
{
    Box::new(move |r| outcome(op.parse(r)))
}

/// A reply to `b2_authorize_account` shaped like Backblaze's documented v4 example.
const AUTHORIZE_REPLY: &str = r#"{
  "accountId": "YOUR_ACCOUNT_ID",
  "apiInfo": {
    "groupsApi": {"capabilities": ["listGroupMembers"], "groupsApiUrl": "https://apiNNN.backblazeb2.com", "infoType": "groupsApi"},
    "storageApi": {
      "absoluteMinimumPartSize": 5000000,
      "apiUrl": "https://apiNNN.backblazeb2.com",
      "allowed": {
        "buckets": [{"id": "BUCKET_ID", "name": "BUCKET_NAME"}],
        "capabilities": ["listKeys", "writeKeys", "deleteKeys", "listBuckets", "readFiles"],
        "namePrefix": null
      },
      "downloadUrl": "https://fNNN.backblazeb2.com",
      "infoType": "storageApi",
      "recommendedPartSize": 100000000,
      "s3ApiUrl": "https://s3.us-west-NNN.backblazeb2.com"
    }
  },
  "applicationKeyExpirationTimestamp": null,
  "authorizationToken": "4_0022623512fc8f80000000004_01a8c5e2_6f4ad3_acct_tS2TRzMOtJ5IaX7gBkDfx6uWtJA="
}"#;

/// Every fixture and its case name, plus the authorize reply (which has no fixture).
fn all_fixtures() -> Vec<(String, Response<Bytes>)> {
    static RAW: std::sync::OnceLock<Vec<(String, Response<Bytes>)>> = std::sync::OnceLock::new();
    RAW.get_or_init(read_fixtures)
        .iter()
        .map(|(case, reply)| (case.clone(), clone(reply)))
        .collect()
}

fn read_fixtures() -> Vec<(String, Response<Bytes>)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut out = Vec::new();
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for dir in dirs {
        let call = dir.file_name().unwrap().to_str().unwrap().to_owned();
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "http"))
            .collect();
        files.sort();
        for file in files {
            let case = file.file_stem().unwrap().to_str().unwrap();
            out.push((
                format!("{call}/{case}"),
                parse_http(&std::fs::read(&file).unwrap()),
            ));
        }
    }
    out.push((
        "b2_authorize_account/ok".to_owned(),
        common::json_response(200, AUTHORIZE_REPLY),
    ));
    out
}

/// The success reply of a call, as JSON, to build ops that match it.
fn success_json(call: &str) -> Value {
    if call == "b2_authorize_account" {
        return serde_json::from_str(AUTHORIZE_REPLY).unwrap();
    }
    for (name, reply) in all_fixtures() {
        if name.starts_with(&format!("{call}/")) && reply.status().is_success() {
            if let Ok(json) = serde_json::from_slice(reply.body()) {
                return json;
            }
        }
    }
    Value::Null
}

fn text<'a>(json: &'a Value, key: &str, default: &'a str) -> &'a str {
    json.get(key).and_then(Value::as_str).unwrap_or(default)
}

fn file_id(json: &Value) -> FileId {
    FileId::new(text(json, "fileId", "4_z_f_unknown"))
}

fn file_name(json: &Value) -> FileName {
    FileName::new(text(json, "fileName", "a.txt")).unwrap()
}

fn bucket_id(json: &Value) -> BucketId {
    BucketId::new(text(json, "bucketId", "4a48fe8875c6214145260818"))
}

const FID1: &str =
    "4_ze73ede9c9c8412db49f60715_f100b4e93fbae6252_d20150824_m224353_c900_v8881000_t0001";

fn by_id() -> DownloadFileById {
    DownloadFileById::new(FileId::new(FID1))
}

fn by_name() -> DownloadFileByName {
    DownloadFileByName::new(
        BucketName::new("photos-2024").unwrap(),
        FileName::new("dir/ä b+c%d 自由.txt").unwrap(),
    )
}

/// The parsers of one call's replies, built to match the call's success fixture.
fn parsers(call: &str) -> Vec<Parser> {
    let j = success_json(call);
    match call {
        "b2_authorize_account" => {
            let auth = AuthorizeAccount::new(
                ApplicationKeyId::new("0012ab"),
                ApplicationKey::new("K001xyz"),
            );
            vec![Box::new(move |r| outcome(auth.parse(r)))]
        }
        "b2_cancel_large_file" => vec![op(CancelLargeFile::new(file_id(&j)))],
        "b2_copy_file" => vec![op(CopyFile::new(FileId::new("4_src"), file_name(&j)))],
        "b2_copy_part" => {
            let part = part_number(&j);
            let len = j["contentLength"].as_u64().unwrap_or(1);
            vec![
                op(CopyPart::new(FileId::new("4_src"), file_id(&j), part)),
                op(CopyPart::new(FileId::new("4_src"), file_id(&j), part).with_range(0..len)),
            ]
        }
        "b2_create_bucket" => vec![op(CreateBucket::new(
            BucketName::new(text(&j, "bucketName", "any-name-you-pick")).unwrap(),
            BucketType::AllPrivate,
        ))],
        "b2_create_key" => vec![op(CreateKey::new("key-0003", [Capability::ListFiles]))],
        "b2_delete_bucket" => vec![op(DeleteBucket::new(bucket_id(&j)))],
        "b2_delete_file_version" => vec![op(DeleteFileVersion::new(file_name(&j), file_id(&j)))],
        "b2_delete_key" => vec![op(DeleteKey::new(ApplicationKeyId::new(text(
            &j,
            "applicationKeyId",
            "k",
        ))))],
        "b2_download_file_by_id" => {
            let ranged = by_id().with_range(ByteRange::new(6, 10).unwrap());
            let (a, b, c) = (by_id(), ranged.clone(), by_id());
            vec![
                op(by_id()),
                op(ranged),
                Box::new(move |r| outcome(a.parse_head(&r.into_parts().0))),
                Box::new(move |r| outcome(b.parse_head(&r.into_parts().0))),
                op(StreamHead::new(c)),
            ]
        }
        "b2_download_file_by_name" => {
            let ranged = by_name().with_range(ByteRange::new(6, 10).unwrap());
            let (a, b) = (by_name(), ranged.clone());
            vec![
                op(by_name()),
                op(ranged),
                Box::new(move |r| outcome(a.parse_head(&r.into_parts().0))),
                Box::new(move |r| outcome(b.parse_head(&r.into_parts().0))),
                op(StreamHead::new(by_name())),
            ]
        }
        "b2_finish_large_file" => vec![op(FinishLargeFile::new(
            file_id(&j),
            vec![Sha1Digest::of(b"1"), Sha1Digest::of(b"2")],
        ))],
        "b2_get_bucket_notification_rules" => {
            vec![op(GetBucketNotificationRules::new(bucket_id(&j)))]
        }
        "b2_get_download_authorization" => vec![op(GetDownloadAuthorization::new(
            bucket_id(&j),
            text(&j, "fileNamePrefix", "public"),
            3600,
        ))],
        "b2_get_file_info" => vec![op(GetFileInfo::new(file_id(&j)))],
        "b2_get_upload_part_url" => vec![op(GetUploadPartUrl::new(file_id(&j)))],
        "b2_get_upload_url" => vec![op(GetUploadUrl::new(bucket_id(&j)))],
        "b2_hide_file" => vec![op(HideFile::new(bucket_id(&j), file_name(&j)))],
        "b2_list_buckets" => vec![op(ListBuckets::new())],
        "b2_list_file_names" => vec![op(ListFileNames::new(bucket_id(&j)))],
        "b2_list_file_versions" => vec![op(ListFileVersions::new(bucket_id(&j)))],
        "b2_list_keys" => vec![op(ListKeys::new())],
        "b2_list_parts" => vec![op(ListParts::new(file_id(&j)))],
        "b2_list_unfinished_large_files" => vec![op(ListUnfinishedLargeFiles::new(bucket_id(&j)))],
        "b2_set_bucket_notification_rules" => {
            vec![op(SetBucketNotificationRules::new(
                bucket_id(&j),
                Vec::new(),
            ))]
        }
        "b2_start_large_file" => vec![op(StartLargeFile::new(bucket_id(&j), file_name(&j)))],
        "b2_update_bucket" => vec![op(UpdateBucket::new(bucket_id(&j)))],
        "b2_update_file_legal_hold" => vec![op(UpdateFileLegalHold::new(
            file_name(&j),
            file_id(&j),
            LegalHold::On,
        ))],
        "b2_update_file_retention" => vec![op(UpdateFileRetention::new(
            file_name(&j),
            file_id(&j),
            FileRetention::new(RetentionMode::Governance, 1_900_000_000_000),
        ))],
        "b2_upload_file" => {
            let upload = UploadFile::new(file_name(&j));
            let checked = upload.clone();
            let len = j["contentLength"].as_u64().unwrap_or(0);
            let sha1 = Sha1Digest::from_hex(text(&j, "contentSha1", ""))
                .map_or(UploadSha1::DoNotVerify, UploadSha1::Digest);
            vec![
                Box::new(move |r| outcome(upload.parse(r))),
                Box::new(move |r| outcome(checked.parse_checked(r, len, &sha1))),
            ]
        }
        "b2_upload_part" => {
            let part = UploadPart::new(
                part_number(&j),
                j["contentLength"].as_u64().unwrap_or(0),
                Sha1Digest::from_hex(text(&j, "contentSha1", ""))
                    .unwrap_or_else(|| Sha1Digest::of(b"")),
            );
            vec![Box::new(move |r| outcome(part.parse(r)))]
        }
        other => panic!("no parser for fixture directory {other}: add it to `parsers`"),
    }
}

fn part_number(json: &Value) -> PartNumber {
    json["partNumber"]
        .as_u64()
        .and_then(|n| PartNumber::new(u32::try_from(n).ok()?).ok())
        .unwrap_or(PartNumber::FIRST)
}

/// The secrets a reply carries: tokens, application keys, signing secrets.
fn secrets_in(json: &Value, out: &mut Vec<String>) {
    match json {
        Value::Object(map) => {
            for (key, value) in map {
                if matches!(
                    key.as_str(),
                    "authorizationToken" | "applicationKey" | "hmacSha256SigningSecret"
                ) {
                    if let Some(s) = value.as_str() {
                        out.push(s.to_owned());
                    }
                }
                secrets_in(value, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| secrets_in(v, out)),
        _ => {}
    }
}

fn secrets_of(body: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(json) = serde_json::from_slice::<Value>(body) {
        secrets_in(&json, &mut out);
    }
    out
}

/// Everything an error shows: `Display`, `Debug` and the `Display` of every source.
fn shown(error: &Error) -> String {
    let mut text = format!("{error} | {error:?}");
    let mut source = std::error::Error::source(error);
    while let Some(s) = source {
        text.push_str(&format!(" | {s}"));
        source = s.source();
    }
    text
}

/// True when `text` holds `secret` or any 20-byte piece of it.
fn leaks(text: &str, secret: &str) -> bool {
    const PIECE: usize = 20;
    if secret.len() <= PIECE {
        return text.contains(secret);
    }
    (0..=secret.len() - PIECE)
        .filter_map(|i| secret.get(i..i + PIECE))
        .any(|piece| text.contains(piece))
}

/// Runs one parser on one input, turning a panic into a test failure that names the input.
fn run(parser: &Parser, input: Response<Bytes>, what: &dyn Fn() -> String) -> Outcome {
    catch_unwind(AssertUnwindSafe(|| parser(input)))
        .unwrap_or_else(|_| panic!("parser panicked on {}", what()))
}

/// Parses `input` with every parser of `call` and checks the outcome: no panic, an error that
/// says something, and no secret of `secrets` in any error or in the `Debug` of any value.
fn check_all(
    call: &str,
    parsers: &[Parser],
    input: &Response<Bytes>,
    secrets: &[String],
    what: &dyn Fn() -> String,
) -> Vec<Outcome> {
    check(call, parsers, input, secrets, true, what)
}

/// As [`check_all`]; `in_values: false` when a secret was put in a field that is not secret,
/// where a parsed value may show it (but an error still may not).
fn check(
    call: &str,
    parsers: &[Parser],
    input: &Response<Bytes>,
    secrets: &[String],
    in_values: bool,
    what: &dyn Fn() -> String,
) -> Vec<Outcome> {
    parsers
        .iter()
        .map(|parser| {
            let result = run(parser, clone(input), what);
            let text = match &result {
                Ok(_) if !in_values => String::new(),
                Ok(debug) => debug.clone(),
                Err(e) => {
                    let text = shown(e);
                    assert!(
                        !e.to_string().is_empty(),
                        "{call}: empty error on {}",
                        what()
                    );
                    text
                }
            };
            for secret in secrets {
                assert!(
                    !leaks(&text, secret),
                    "{call}: a secret of the reply is shown on {}: {text}",
                    what()
                );
            }
            result
        })
        .collect()
}

fn clone(r: &Response<Bytes>) -> Response<Bytes> {
    let mut out = Response::new(r.body().clone());
    *out.status_mut() = r.status();
    *out.headers_mut() = r.headers().clone();
    *out.version_mut() = r.version();
    out
}

fn with_body(r: &Response<Bytes>, body: impl Into<Bytes>) -> Response<Bytes> {
    let mut out = clone(r);
    *out.body_mut() = body.into();
    out
}

fn call_of(case: &str) -> &str {
    case.split('/').next().unwrap()
}

// ---- every fixture, cut at every byte ----------------------------------------------------

#[test]
fn every_fixture_cut_at_every_byte() {
    let mut parses = 0usize;
    for (case, reply) in all_fixtures() {
        let call = call_of(&case);
        let parsers = parsers(call);
        let body = reply.body().clone();
        let secrets = secrets_of(&body);
        let is_json = serde_json::from_slice::<Value>(&body).is_ok();
        for cut in 0..body.len() {
            let input = with_body(&reply, body.slice(..cut));
            let what = || format!("{case} cut at byte {cut}");
            let results = check_all(call, &parsers, &input, &secrets, &what);
            parses += results.len();
            // A JSON body cut short is never valid: every parser must refuse it, but head
            // parsers, which never read the body.
            let cut_is_visible = body[..cut].trim_ascii_end() != body.trim_ascii_end();
            if is_json && cut_is_visible && !call.starts_with("b2_download") {
                for result in &results {
                    assert!(result.is_err(), "{case} cut at {cut} parsed: {result:?}");
                }
            }
            if !reply.status().is_success() {
                for result in &results {
                    let status = result.as_ref().err().and_then(Error::status);
                    assert_eq!(status, Some(reply.status()), "{case} cut at {cut}");
                }
            }
        }
    }
    assert!(parses > 10_000, "only {parses} parses");
}

#[test]
fn cut_downloads_fail_their_length_check() {
    for case in [
        "b2_download_file_by_id/success",
        "b2_download_file_by_name/success",
    ] {
        let reply = common::response(case);
        let body = reply.body().clone();
        let whole = parsers(call_of(case));
        for cut in 0..body.len() {
            let r = run(&whole[0], with_body(&reply, body.slice(..cut)), &|| {
                format!("{case} cut at {cut}")
            });
            assert!(
                matches!(r, Err(Error::Integrity(_))),
                "{case} cut at {cut}: {r:?}"
            );
        }
    }
}

// ---- every JSON value of every success fixture, mutated ----------------------------------

#[derive(Debug, Clone)]
enum Seg {
    Key(String),
    Index(usize),
}

fn paths(v: &Value, prefix: &mut Vec<Seg>, out: &mut Vec<Vec<Seg>>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                prefix.push(Seg::Key(k.clone()));
                out.push(prefix.clone());
                paths(child, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                prefix.push(Seg::Index(i));
                out.push(prefix.clone());
                paths(child, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

fn at<'a>(v: &'a mut Value, path: &[Seg]) -> Option<&'a mut Value> {
    path.iter().try_fold(v, |v, seg| match seg {
        Seg::Key(k) => v.get_mut(k.as_str()),
        Seg::Index(i) => v.get_mut(*i),
    })
}

const MARK: &str = "\u{1}mutation\u{1}";

/// The raw JSON put in place of a value.
fn replacements(secrets: &[String]) -> Vec<String> {
    let mut out: Vec<String> = [
        "null",
        "\"\"",
        "\"x\"",
        "\"\\u00e9\\u0000\\ud83d\\ude00\"",
        "true",
        "0",
        "-1",
        "-0",
        "1.5",
        "-1e-400",
        "1e400",
        "18446744073709551615",
        "18446744073709551616",
        "-9223372036854775809",
        "99999999999999999999999999999999999999999",
        "[]",
        "{}",
        "[null]",
        "{\"a\":null}",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    for depth in [20, 127, 200, 5000] {
        out.push(format!("{}{}", "[".repeat(depth), "]".repeat(depth)));
        out.push(format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth)));
    }
    out.push(format!("\"{}\"", "x".repeat(100_000)));
    // A secret of the reply moved into another field.
    out.extend(secrets.iter().map(|s| format!("\"{s}\"")));
    out
}

/// `root` with the value at `path` removed (`None`) or replaced by raw JSON.
fn mutated(root: &Value, path: &[Seg], raw: Option<&str>) -> Vec<u8> {
    let mut v = root.clone();
    let (last, parent) = path.split_last().unwrap();
    let parent = at(&mut v, parent).unwrap();
    match (raw, last, parent) {
        (None, Seg::Key(k), Value::Object(map)) => {
            map.remove(k);
        }
        (None, Seg::Index(i), Value::Array(items)) => {
            items.remove(*i);
        }
        (Some(_), _, parent) => {
            let slot = match last {
                Seg::Key(k) => parent.get_mut(k.as_str()),
                Seg::Index(i) => parent.get_mut(*i),
            };
            *slot.unwrap() = Value::String(MARK.to_owned());
        }
        _ => unreachable!(),
    }
    let text = serde_json::to_string(&v).unwrap();
    let mark = serde_json::to_string(MARK).unwrap();
    text.replacen(&mark, raw.unwrap_or("null"), 1).into_bytes()
}

fn with_every_leaf(v: &Value, leaf: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, c)| (k.clone(), with_every_leaf(c, leaf)))
                .collect(),
        ),
        Value::Array(items) => {
            Value::Array(items.iter().map(|c| with_every_leaf(c, leaf)).collect())
        }
        _ => leaf.clone(),
    }
}

#[test]
fn every_json_value_removed_or_replaced() {
    let mut parses = 0usize;
    for (case, reply) in all_fixtures() {
        let Ok(root) = serde_json::from_slice::<Value>(reply.body()) else {
            continue;
        };
        let call = call_of(&case);
        let parsers = parsers(call);
        let secrets = secrets_of(reply.body());
        let replacements = replacements(&secrets);
        let mut all = Vec::new();
        paths(&root, &mut Vec::new(), &mut all);
        for path in &all {
            for raw in std::iter::once(None).chain(replacements.iter().map(|r| Some(r.as_str()))) {
                let body = mutated(&root, path, raw);
                let input = with_body(&reply, body);
                let what = || {
                    format!(
                        "{case} with {path:?} {}",
                        raw.map_or_else(
                            || "removed".to_owned(),
                            |r| format!("= {}", r.chars().take(40).collect::<String>())
                        )
                    )
                };
                let moved_secret =
                    raw.is_some_and(|r| secrets.iter().any(|s| r.contains(s.as_str())));
                parses += check(call, &parsers, &input, &secrets, !moved_secret, &what).len();
            }
        }
        // Null everywhere; one wrong type everywhere.
        for leaf in [
            Value::Null,
            Value::from(-1),
            Value::from("x"),
            Value::Array(Vec::new()),
        ] {
            let input = with_body(
                &reply,
                serde_json::to_vec(&with_every_leaf(&root, &leaf)).unwrap(),
            );
            let what = || format!("{case} with every value = {leaf}");
            parses += check_all(call, &parsers, &input, &secrets, &what).len();
        }
        // The whole body replaced.
        for raw in &replacements {
            let input = with_body(&reply, raw.clone().into_bytes());
            let what = || {
                format!(
                    "{case} replaced by {}",
                    raw.chars().take(40).collect::<String>()
                )
            };
            parses += check(call, &parsers, &input, &secrets, false, &what).len();
        }
    }
    assert!(parses > 10_000, "only {parses} parses");
}

// ---- arbitrary statuses and bodies -------------------------------------------------------

fn calls() -> Vec<String> {
    let mut calls: Vec<String> = all_fixtures()
        .into_iter()
        .map(|(case, _)| call_of(&case).to_owned())
        .collect();
    calls.dedup();
    calls
}

#[test]
fn thirty_one_calls_are_covered() {
    let calls = calls();
    assert_eq!(calls.len(), 31, "{calls:?}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Any status with any body: a non-2xx status is always B2's error with that status.
    #[test]
    fn any_status_any_body(
        status in 100u16..1000,
        body in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..300),
            "[ -~]{0,200}".prop_map(String::into_bytes),
            Just(br#"{"status":400,"code":"bad_request","message":"m"}"#.to_vec()),
            Just(br#"{"code":7,"message":["x"]}"#.to_vec()),
            Just(br#"{"code":null}"#.to_vec()),
            Just(b"null".to_vec()),
        ],
        json_type in any::<bool>(),
        retry_after in proptest::option::of("[ -~]{0,12}"),
    ) {
        for call in calls() {
            let parsers = parsers(&call);
            let mut b = Response::builder().status(status);
            if json_type {
                b = b.header("content-type", "application/json");
            }
            if let Some(r) = &retry_after {
                if let Ok(v) = HeaderValue::from_str(r) {
                    b = b.header("retry-after", v);
                }
            }
            let input = b.body(Bytes::from(body.clone())).unwrap();
            let what = || format!("{call} status {status} body {body:?}");
            for result in check_all(&call, &parsers, &input, &[], &what) {
                if !(200..300).contains(&status) {
                    let got = result.as_ref().err().and_then(Error::status);
                    prop_assert_eq!(got.map(|s| s.as_u16()), Some(status), "{}", what());
                }
            }
        }
    }

    /// Any fixture with bytes flipped, served under its own status or another.
    #[test]
    fn fixtures_with_flipped_bytes(
        pick in any::<proptest::sample::Index>(),
        flips in proptest::collection::vec((any::<proptest::sample::Index>(), 1u8..=255), 1..6),
        status in prop_oneof![Just(None), (100u16..600).prop_map(Some)],
    ) {
        let fixtures = all_fixtures();
        let (case, reply) = &fixtures[pick.index(fixtures.len())];
        let call = call_of(case);
        let secrets = secrets_of(reply.body());
        let mut body = reply.body().to_vec();
        if !body.is_empty() {
            for (at, xor) in &flips {
                let i = at.index(body.len());
                body[i] ^= xor;
            }
        }
        let mut input = with_body(reply, body);
        if let Some(s) = status {
            *input.status_mut() = http::StatusCode::from_u16(s).unwrap();
        }
        let what = || format!("{case} with flips {flips:?} status {status:?}");
        check_all(call, &parsers(call), &input, &secrets, &what);
    }

    /// Secret-bearing replies cut anywhere and served under any status.
    #[test]
    fn secret_replies_under_any_status(
        pick in any::<proptest::sample::Index>(),
        cut in any::<proptest::sample::Index>(),
        status in 100u16..600,
    ) {
        let fixtures: Vec<_> = all_fixtures()
            .into_iter()
            .filter(|(_, r)| !secrets_of(r.body()).is_empty())
            .collect();
        prop_assert!(fixtures.len() >= 7);
        let (case, reply) = &fixtures[pick.index(fixtures.len())];
        let secrets = secrets_of(reply.body());
        let body = reply.body().clone();
        let cut = cut.index(body.len() + 1);
        let mut input = with_body(reply, body.slice(..cut));
        *input.status_mut() = http::StatusCode::from_u16(status).unwrap();
        let call = call_of(case);
        let what = || format!("{case} cut at {cut} under status {status}");
        check_all(call, &parsers(call), &input, &secrets, &what);
    }

    /// Download heads with arbitrary header values: non-ASCII, control-free bytes, repeated.
    #[test]
    fn download_heads_with_arbitrary_headers(
        base in prop_oneof![
            Just("b2_download_file_by_id/success"),
            Just("b2_download_file_by_id/range"),
            Just("b2_download_file_by_id/large_file"),
            Just("b2_download_file_by_id/locked_sse_c"),
            Just("b2_download_file_by_name/success"),
            Just("b2_download_file_by_name/head"),
        ],
        changes in proptest::collection::vec(
            (
                proptest::sample::select(HEAD_NAMES.to_vec()),
                proptest::collection::vec(
                    prop_oneof![0x20u8..0x7f, 0x80u8..=0xff, Just(b'\t')],
                    0..80,
                ),
                0u8..3,
            ),
            1..12,
        ),
    ) {
        let mut reply = common::response(base);
        for (name, value, how) in &changes {
            let name = HeaderName::from_static(name);
            let Ok(value) = HeaderValue::from_bytes(value) else { continue };
            match how {
                0 => { reply.headers_mut().insert(name, value); }
                1 => { reply.headers_mut().append(name, value); }
                _ => { reply.headers_mut().remove(name); }
            }
        }
        let call = call_of(base);
        let what = || format!("{base} with {changes:?}");
        check_all(call, &parsers(call), &reply, &[], &what);
    }
}

const HEAD_NAMES: &[&str] = &[
    "content-length",
    "content-range",
    "content-type",
    "x-bz-file-id",
    "x-bz-file-name",
    "x-bz-content-sha1",
    "x-bz-upload-timestamp",
    "x-bz-info-src_last_modified_millis",
    "x-bz-info-large_file_sha1",
    "x-bz-info-b2-content-disposition",
    "x-bz-file-legal-hold",
    "x-bz-file-retention-mode",
    "x-bz-file-retention-retain-until-timestamp",
    "x-bz-server-side-encryption",
    "x-bz-server-side-encryption-customer-algorithm",
    "x-bz-server-side-encryption-customer-key-md5",
    "x-bz-client-unauthorized-to-read",
    "retry-after",
];

#[test]
fn download_heads_with_huge_and_repeated_headers() {
    let huge = "9".repeat(1 << 20);
    let huge_text = format!("{}%", "%C3".repeat(1 << 18));
    for base in [
        "b2_download_file_by_id/success",
        "b2_download_file_by_id/range",
        "b2_download_file_by_name/success",
    ] {
        let call = call_of(base);
        let parsers = parsers(call);
        for name in HEAD_NAMES {
            for value in [
                huge.as_str(),
                huge_text.as_str(),
                "-1",
                "18446744073709551616",
            ] {
                for repeat in [false, true] {
                    let mut reply = common::response(base);
                    let name = HeaderName::from_static(name);
                    let value = HeaderValue::from_str(value).unwrap();
                    if repeat {
                        let first = reply.headers().get(&name).cloned();
                        reply.headers_mut().append(name.clone(), value);
                        if let Some(first) = first {
                            reply.headers_mut().append(name, first);
                        }
                    } else {
                        reply.headers_mut().insert(name, value);
                    }
                    let what = || {
                        format!(
                            "{base} with a {} {name_:?}",
                            if repeat { "repeated" } else { "huge" },
                            name_ = "header"
                        )
                    };
                    check_all(call, &parsers, &reply, &[], &what);
                }
            }
        }
    }
}

/// A continuation check with any count of bytes received, against a head with any range,
/// returns a verdict instead of overflowing.
#[test]
fn continuation_check_with_any_counts() {
    let ranged = |start: u64| {
        let mut reply = common::response("b2_download_file_by_id/range");
        let value = format!("bytes {start}-{}/{}", u64::MAX - 1, u64::MAX);
        reply
            .headers_mut()
            .insert("content-range", HeaderValue::from_str(&value).unwrap());
        let len = (u64::MAX - 1 - start + 1).to_string();
        reply
            .headers_mut()
            .insert("content-length", HeaderValue::from_str(&len).unwrap());
        by_id()
            .with_range(ByteRange::starting_at(start))
            .parse_head(&reply.into_parts().0)
            .unwrap()
    };
    let first = ranged(u64::MAX - 10);
    for received in [0, 5, 11, u64::MAX] {
        let next = ranged(u64::MAX - 10);
        let verdict = first.check_continuation(&next, received);
        assert_eq!(verdict.is_ok(), received == 0, "{received}: {verdict:?}");
    }
}

// ---- secrets in requests and steps -------------------------------------------------------

/// The `Debug` of every request that carries a secret (account, upload and download tokens,
/// Basic credentials, SSE-C keys) and of the machine steps that carry them hides the secret,
/// so that a driver logging what it sends does not log credentials.
#[test]
fn requests_and_steps_do_not_show_secrets_in_debug() {
    use b2_proto::model::{CustomerKey, Encryption};
    use b2_proto::ops::{DownloadAuth, Operation as _, UploadTarget};
    use b2_proto::{AuthToken, Call, Machine, RetryPolicy, Step};
    use base64::Engine as _;

    let key = CustomerKey::new([0x5a; 32]);
    let key_b64 = key.to_base64();
    let s = common::session();
    let mut shown = Vec::new();
    let mut check = |what: &str, text: String, secrets: &[&str]| {
        for secret in secrets {
            assert!(!text.contains(secret), "{what} shows a secret: {text}");
        }
        shown.push(what.to_owned());
    };
    let auth = AuthorizeAccount::new(
        ApplicationKeyId::new("0012ab"),
        ApplicationKey::new("K001supersecretkey"),
    );
    let basic = base64::engine::general_purpose::STANDARD.encode("0012ab:K001supersecretkey");
    check(
        "authorize request",
        format!("{:?}", auth.request().unwrap()),
        &[&basic, "K001supersecretkey"],
    );
    check(
        "JSON request",
        format!(
            "{:?}",
            GetFileInfo::new(FileId::new("f")).request(&s).unwrap()
        ),
        &[common::TOKEN],
    );
    let target = UploadTarget::new(
        "https://pod/b2api/v4/b2_upload_file/b/c",
        AuthToken::new("upload-secret-token"),
    );
    let upload =
        UploadFile::new(FileName::new("a").unwrap()).with_encryption(Encryption::SseC(key.clone()));
    check(
        "upload request",
        format!(
            "{:?}",
            upload.request(&target, Bytes::from_static(b"abc")).unwrap()
        ),
        &["upload-secret-token", &key_b64],
    );
    let part = UploadPart::new(PartNumber::FIRST, 3, Sha1Digest::of(b"abc"))
        .with_customer_key(key.clone());
    check(
        "upload part request",
        format!(
            "{:?}",
            part.request(&target, Bytes::from_static(b"abc")).unwrap()
        ),
        &["upload-secret-token", &key_b64],
    );
    check(
        "download request",
        format!(
            "{:?}",
            by_id()
                .with_customer_key(key.clone())
                .with_auth(DownloadAuth::Header(AuthToken::new(
                    "download-secret-token"
                )))
                .request(&s)
                .unwrap()
        ),
        &["download-secret-token", &key_b64, common::TOKEN],
    );
    // A copy with SSE-C keys carries them in its JSON body: the step that asks for it must not
    // print the body.
    let copy = CopyFile::new(FileId::new("4_src"), FileName::new("b").unwrap())
        .with_source_key(key.clone())
        .with_destination_encryption(Encryption::SseC(key.clone()));
    let mut call = Call::new(copy, common::session_arc(), &RetryPolicy::default());
    let step = call.poll_step(std::time::Instant::now());
    assert!(matches!(step, Step::Send(..)));
    check("copy step", format!("{step:?}"), &[&key_b64, common::TOKEN]);
    assert_eq!(shown.len(), 6);
}

/// A token B2 sent that cannot travel in a header (a control character in it) is refused
/// without quoting it.
#[test]
fn unusable_tokens_are_refused_without_being_quoted() {
    use b2_proto::AuthToken;
    use b2_proto::ops::UploadTarget;
    let target = UploadTarget::new(
        "https://pod/b2api/v4/b2_upload_file/b/c",
        AuthToken::new("4_secret\ntoken-tail"),
    );
    let upload = UploadFile::new(FileName::new("a").unwrap());
    let part = UploadPart::new(PartNumber::FIRST, 3, Sha1Digest::of(b"abc"));
    for error in [
        upload
            .request(&target, Bytes::from_static(b"abc"))
            .unwrap_err(),
        part.request(&target, Bytes::from_static(b"abc"))
            .unwrap_err(),
    ] {
        assert!(matches!(error, Error::InvalidInput(_)), "{error:?}");
        let text = shown(&error);
        assert!(
            !text.contains("secret") && !text.contains("token-tail"),
            "{text}"
        );
    }
}

proptest! {
    /// Heads with any sizes and ranges B2 could claim feed download plans and verifiers
    /// without overflow: planning, each part's request and check, and verifying a body.
    #[test]
    fn download_plans_and_verifiers_take_any_head(
        start in prop_oneof![0u64..100, any::<u64>()],
        len in prop_oneof![1u64..100, 1..u64::MAX],
        extra in prop_oneof![0u64..100, any::<u64>()],
        part_size in prop_oneof![Just(1u64), Just(u64::MAX), any::<u64>()],
        concurrency in 1usize..64,
        index in any::<u64>(),
        body in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        use b2_proto::download_plan::DownloadPlan;
        use b2_proto::ops::DownloadCall as _;
        use b2_proto::verify::Sha1Verifier;
        let end = start.checked_add(len - 1);
        let total = end.and_then(|e| e.checked_add(1)).and_then(|t| t.checked_add(extra));
        let (Some(end), Some(total)) = (end, total) else {
            return Ok(());
        };
        let mut reply = common::response("b2_download_file_by_id/range");
        let headers = reply.headers_mut();
        headers.insert("content-range", HeaderValue::from_str(&format!("bytes {start}-{end}/{total}")).unwrap());
        headers.insert("content-length", HeaderValue::from(len));
        let parts = reply.into_parts().0;
        let heads = [
            by_id().with_range(ByteRange::new(start, end).unwrap()).parse_head(&parts),
            by_id().with_range(ByteRange::starting_at(start)).parse_head(&parts),
            by_id().parse_head(&parts),
            by_id().with_range(ByteRange::suffix(len.max(1)).unwrap()).parse_head(&parts),
        ];
        prop_assert!(heads[0].is_ok(), "{:?}", heads[0]);
        for head in heads.into_iter().flatten() {
            let plan = DownloadPlan::for_head(&head, part_size, concurrency).unwrap();
            let _ = (plan.part_count(), plan.concurrency());
            for i in [0, 1, index, plan.part_count().saturating_sub(1), plan.part_count()] {
                if let Some(range) = plan.range(i) {
                    prop_assert!(range.start < range.end && range.end <= plan.file_size());
                }
                let _ = plan.part_request(i);
                let _ = plan.check_part(i, &head);
            }
            prop_assert!(plan.ranges().take(3).all(|r| r.start < r.end));
            for whole in [false, true] {
                let mut verifier = Sha1Verifier::new(&head, whole);
                verifier.update(&body);
                let _ = verifier.finish();
            }
            let _ = head.check_continuation(&head, index);
            let _ = by_id().continuation(&head, index);
        }
    }
}

/// An upload URL for another bucket or another large file would put the data in the wrong
/// place: such a reply is refused, and the refusal does not show the token.
#[test]
fn upload_urls_for_another_bucket_or_file_are_refused() {
    let token =
        "2_20151009170037_f504a0f39a0f4e657337e624_9754dde94359bd7b8f1445c8f4cc1a231a33f714_upld";
    let reply = |key: &str, id: &str| {
        common::json_response(
            200,
            &serde_json::json!({key: id, "uploadUrl": "https://pod/x", "authorizationToken": token})
                .to_string(),
        )
    };
    let url = GetUploadUrl::new(BucketId::new("bucket-asked"));
    assert!(url.parse(reply("bucketId", "bucket-asked")).is_ok());
    let part_url = GetUploadPartUrl::new(FileId::new("4_zasked"));
    assert!(part_url.parse(reply("fileId", "4_zasked")).is_ok());
    for error in [
        url.parse(reply("bucketId", "bucket-other")).unwrap_err(),
        part_url.parse(reply("fileId", "4_zother")).unwrap_err(),
    ] {
        assert!(matches!(error, Error::InvalidResponse { .. }), "{error:?}");
        assert!(!shown(&error).contains(token));
    }
}

/// An authorize reply whose API or download URL cannot address a request is refused at once
/// (and the refusal does not show the token), instead of failing every later call.
#[test]
fn authorize_replies_with_unusable_urls_are_refused() {
    let auth = AuthorizeAccount::new(ApplicationKeyId::new("k"), ApplicationKey::new("s"));
    for (field, url) in [
        ("apiUrl", ""),
        ("apiUrl", "not a url"),
        ("apiUrl", "/relative/path"),
        ("apiUrl", "ftp://files.example.com"),
        ("downloadUrl", "https://"),
        ("downloadUrl", "https://f001.backblazeb2.com/\n"),
    ] {
        let mut json: Value = serde_json::from_str(AUTHORIZE_REPLY).unwrap();
        json["apiInfo"]["storageApi"][field] = url.into();
        let result = auth.parse(common::json_response(200, &json.to_string()));
        match result {
            Err(Error::InvalidResponse {
                op: "b2_authorize_account",
                reason,
            }) => {
                assert!(reason.contains(field), "{reason}");
                assert!(
                    !reason.contains("acct_tS2TRzMOtJ5IaX7gBkDfx6uWtJA"),
                    "{reason}"
                );
            }
            other => panic!("{field} = {url:?}: {other:?}"),
        }
    }
    // Plain HTTP stays allowed: local B2-compatible servers use it.
    let mut json: Value = serde_json::from_str(AUTHORIZE_REPLY).unwrap();
    json["apiInfo"]["storageApi"]["apiUrl"] = "http://127.0.0.1:8080".into();
    assert!(
        auth.parse(common::json_response(200, &json.to_string()))
            .is_ok()
    );
}
