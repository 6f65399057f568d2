//! `UploadMachine`: the strategy picks the simple or the large path; the machine runs it.
#![allow(clippy::disallowed_methods)]

mod common;

use std::sync::Arc;

use b2_proto::transfer::{NewFile, UploadMachine, UploadStrategy};
use b2_proto::{Body, BucketId, FileName, RetryPolicy, Session};
use bytes::Bytes;
use common::*;

fn small_parts_session() -> Arc<Session> {
    let mut s = session();
    s.absolute_minimum_part_size = 10;
    s.recommended_part_size = 10;
    Arc::new(s)
}

/// A server that accepts everything, answering with what the request carried.
fn server(data: Bytes) -> impl FnMut(&http::Request<Body>) -> Reply {
    move |req| {
        let header = |name: &str| {
            req.headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        let file = |action: &str, len: usize| {
            serde_json::json!({"accountId":"a","action":action,"bucketId":"b1","contentLength":len,
                "contentSha1":"none","fileId":"4_big","fileInfo":{},"fileName":"f.bin","uploadTimestamp":1})
        };
        let body = match call_name(req.uri()).as_str() {
            "b2_get_upload_url" => {
                serde_json::json!({"bucketId":"b1","uploadUrl":"https://pod/b2api/v4/b2_upload_file/b1/x","authorizationToken":"4_up"})
            }
            "b2_get_upload_part_url" => {
                serde_json::json!({"fileId":"4_big","uploadUrl":"https://pod/b2api/v4/b2_upload_part/4_big/x","authorizationToken":"4_part"})
            }
            "b2_upload_file" => {
                let mut f = file("upload", data.len());
                f["contentSha1"] = header("x-bz-content-sha1").unwrap().into();
                f
            }
            "b2_start_large_file" => file("start", 0),
            "b2_upload_part" => serde_json::json!({"fileId":"4_big",
                "partNumber": header("x-bz-part-number").unwrap().parse::<u16>().unwrap(),
                "contentLength": header("content-length").unwrap().parse::<u64>().unwrap(),
                "contentSha1": header("x-bz-content-sha1").unwrap(), "uploadTimestamp": 1}),
            "b2_finish_large_file" => file("upload", data.len()),
            other => panic!("unexpected call {other}"),
        };
        Ok(json_response(200, &body.to_string()))
    }
}

fn new_file() -> NewFile {
    NewFile::new(BucketId::new("b1"), FileName::new("f.bin").unwrap())
        .with_content_type("application/octet-stream")
}

#[test]
fn small_bytes_go_in_one_upload_and_leave_the_url_for_reuse() {
    let data = Bytes::from_static(b"hello, world");
    let strategy = UploadStrategy::default();
    let mut m = UploadMachine::from_bytes(
        &new_file(),
        data.clone(),
        &strategy,
        session_arc(),
        &RetryPolicy::default(),
        None,
    )
    .unwrap();
    let mut s = Scripted::new();
    let file = s
        .run(&mut m, server(data.clone()), |_| unreachable!())
        .unwrap();
    assert_eq!(
        s.trace,
        ["send b2_get_upload_url", "send b2_upload_file", "done ok"]
    );
    assert_eq!(file.content_length, 12);
    let Body::Bytes(sent) = s.sent[1].body() else {
        panic!("bytes body")
    };
    assert_eq!(sent, &data);
    assert!(
        m.take_target().is_some(),
        "the URL is handed back for the pool"
    );
}

#[test]
fn bytes_over_the_cutoff_go_in_parts_sliced_from_the_source() {
    let data = Bytes::from((0..35u8).collect::<Vec<_>>());
    let strategy = UploadStrategy::default()
        .with_cutoff(20)
        .with_max_in_flight(2);
    let mut m = UploadMachine::from_bytes(
        &new_file(),
        data.clone(),
        &strategy,
        small_parts_session(),
        &RetryPolicy::default(),
        None,
    )
    .unwrap();
    let mut s = Scripted::new();
    s.run(&mut m, server(data.clone()), |_| unreachable!())
        .unwrap();
    assert_eq!(
        s.trace.first().map(String::as_str),
        Some("send b2_start_large_file")
    );
    assert_eq!(
        s.trace
            .iter()
            .filter(|l| *l == "send b2_upload_part")
            .count(),
        4
    );
    assert_eq!(s.trace.last().map(String::as_str), Some("done ok"));
    let ranges: Vec<_> = s
        .sent
        .iter()
        .filter_map(|r| match r.body() {
            Body::Source(range) => Some(range.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(ranges, [0..10, 10..20, 20..30, 30..35]);
    let start: serde_json::Value = match s.sent[0].body() {
        Body::Bytes(b) => serde_json::from_slice(b).unwrap(),
        _ => panic!(),
    };
    assert_eq!(
        start["fileInfo"]["large_file_sha1"],
        b2_proto::Sha1Digest::of(&data).to_hex()
    );
    assert!(m.take_target().is_none());
}

#[test]
fn the_strategy_refuses_part_sizes_b2_refuses() {
    let strategy = UploadStrategy::default().with_cutoff(20).with_part_size(5);
    let err = UploadMachine::from_bytes(
        &new_file(),
        Bytes::from(vec![0u8; 40]),
        &strategy,
        small_parts_session(),
        &RetryPolicy::default(),
        None,
    )
    .unwrap_err();
    assert!(matches!(err, b2_proto::InvalidInput::Size { .. }), "{err}");
}
