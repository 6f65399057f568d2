//! The generic pager over a stand-in listing call whose server is scripted.
#![allow(clippy::disallowed_methods)]

mod common;

use b2_proto::ops::{Operation, Paginated, json_request, parse_json};
use b2_proto::{Error, Pager, PagerState, RetryPolicy, Session};
use bytes::Bytes;
use common::*;
use serde::Deserialize;

/// A listing shaped like `b2_list_file_names`: items and a `nextName` cursor.
#[derive(Clone, Debug)]
struct ListNames {
    start: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Page {
    names: Vec<String>,
    next_name: Option<String>,
}

impl Operation for ListNames {
    type Output = Page;
    const NAME: &'static str = "b2_list_names";
    fn request(&self, s: &Session) -> Result<http::Request<Bytes>, Error> {
        json_request(
            s,
            Self::NAME,
            &serde_json::json!({ "startName": self.start }),
        )
    }
    fn parse(&self, r: http::Response<Bytes>) -> Result<Page, Error> {
        parse_json(Self::NAME, r)
    }
}

impl Paginated for ListNames {
    type Item = String;
    type Cursor = String;
    fn set_cursor(&mut self, cursor: Option<String>) {
        self.start = cursor;
    }
    fn next_cursor(page: &Page) -> Option<String> {
        page.next_name.clone()
    }
    fn into_items(page: Page) -> Vec<String> {
        page.names
    }
}

/// A server holding `names`, two per page, answering 503 to every third request.
fn server(names: &'static [&'static str]) -> impl FnMut(&http::Request<b2_proto::Body>) -> Reply {
    let mut n = 0;
    move |req| {
        n += 1;
        if n % 3 == 0 {
            return Ok(error_response(503, "service_unavailable", "busy"));
        }
        let b2_proto::Body::Bytes(body) = req.body() else {
            panic!("JSON body")
        };
        let json: serde_json::Value = serde_json::from_slice(body).unwrap();
        let start = json["startName"].as_str().unwrap_or("");
        let rest: Vec<_> = names.iter().filter(|n| **n >= start).collect();
        let page: Vec<_> = rest.iter().take(2).collect();
        let next = rest.get(2);
        Ok(json_response(
            200,
            &serde_json::json!({ "names": page, "nextName": next }).to_string(),
        ))
    }
}

fn list_all(
    pager: &mut Pager<ListNames>,
    respond: &mut impl FnMut(&http::Request<b2_proto::Body>) -> Reply,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut s = Scripted::new();
    while let Some(mut call) = pager.next_call(session_arc(), &RetryPolicy::default()) {
        let page = s.run(&mut call, &mut *respond, |_| unreachable!()).unwrap();
        out.extend(pager.advance(page).unwrap());
    }
    out
}

const NAMES: &[&str] = &["a", "b", "c", "d", "e"];

#[test]
fn lists_every_item_once_across_pages_and_retries() {
    let mut pager = Pager::new(ListNames { start: None });
    let all = list_all(&mut pager, &mut server(NAMES));
    assert_eq!(all, NAMES);
    assert!(pager.is_done());
    assert!(
        pager
            .next_call(session_arc(), &RetryPolicy::default())
            .is_none()
    );
}

#[test]
fn persisted_cursor_resumes_where_it_stopped() {
    let mut respond = server(NAMES);
    let mut pager = Pager::new(ListNames { start: None });
    let mut s = Scripted::new();
    let mut call = pager
        .next_call(session_arc(), &RetryPolicy::default())
        .unwrap();
    let first = pager
        .advance(s.run(&mut call, &mut respond, |_| unreachable!()).unwrap())
        .unwrap();
    assert_eq!(first, ["a", "b"]);
    assert_eq!(pager.cursor().map(String::as_str), Some("c"));
    let saved = serde_json::to_string(pager.state()).unwrap();
    drop(pager);
    let state: PagerState<String> = serde_json::from_str(&saved).unwrap();
    let mut resumed = Pager::resume(ListNames { start: None }, state);
    let op = resumed.next_operation().unwrap();
    assert_eq!(op.start.as_deref(), Some("c"));
    assert_eq!(list_all(&mut resumed, &mut respond), ["c", "d", "e"]);
}

#[test]
fn limit_cuts_the_listing_short() {
    let mut pager = Pager::new(ListNames { start: None }).with_limit(3);
    assert_eq!(list_all(&mut pager, &mut server(NAMES)), ["a", "b", "c"]);
    let mut pager = Pager::new(ListNames { start: None }).with_limit(0);
    assert!(list_all(&mut pager, &mut server(NAMES)).is_empty());
}

#[test]
fn a_repeated_cursor_is_an_error_not_a_loop() {
    let mut pager = Pager::resume(ListNames { start: None }, PagerState::Next("x".into()));
    let mut call = pager
        .next_call(session_arc(), &RetryPolicy::default())
        .unwrap();
    let mut s = Scripted::new();
    let page = s
        .run(
            &mut call,
            |_| Ok(json_response(200, r#"{"names":["x"],"nextName":"x"}"#)),
            |_| unreachable!(),
        )
        .unwrap();
    let err = pager.advance(page).unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidResponse {
                op: "b2_list_names",
                ..
            }
        ),
        "{err}"
    );
    assert!(pager.is_done());
    // The request carried the cursor.
    let b2_proto::Body::Bytes(body) = s.sent[0].body() else {
        panic!()
    };
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(body).unwrap()["startName"],
        "x"
    );
}
