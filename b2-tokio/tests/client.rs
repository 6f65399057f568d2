//! `b2-tokio` against a scripted local HTTP server (the same cases as b2-async-std's): authorization, retries, shared
//! re-authorization, broken replies, connection reuse, framing and listings.

#[path = "../../b2-blocking/tests/support/server.rs"]
mod server;

use std::time::Duration;

use b2_proto::{RetryPolicy, TransportErrorKind};
use b2_tokio::{Client, Error};
use futures_util::StreamExt as _;
use server::{ONE_BUCKET, Recorded, Reply, Server, authorize_json, not_tls, untrusted_tls};

fn client(server: &Server) -> Client {
    client_with(server, RetryPolicy::default())
}

fn client_with(server: &Server, policy: RetryPolicy) -> Client {
    Client::builder("key-id", "secret-key")
        .realm(&server.base)
        .application("adapter-tests", "1.0")
        .retry_policy(policy)
        .request_timeout(Duration::from_secs(20))
        .idle_timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

fn one_attempt() -> RetryPolicy {
    let mut policy = RetryPolicy::default();
    policy.max_attempts = 1;
    policy
}

/// Authorizes with token `tok1` and answers `b2_list_buckets` with `list`.
fn serve(list: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> Server {
    let base = std::sync::Arc::new(std::sync::OnceLock::<String>::new());
    let for_handler = base.clone();
    let server = Server::start(move |req| {
        let base = for_handler.get().cloned().unwrap_or_default();
        if req.path().ends_with("/b2_authorize_account") {
            let token = format!("tok{}", req.nth + 1);
            Reply::json(200, &authorize_json(&base, &token))
        } else {
            list(req)
        }
    });
    base.set(server.base.clone()).expect("base set once");
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorizes_with_basic_auth_and_user_agent() {
    let server = serve(|_| Reply::error(500, "internal_error"));
    let session = client(&server).session().await.expect("session");
    assert_eq!(session.account_id.as_str(), "acc1");
    assert_eq!(session.authorization_token.expose_secret(), "tok1");
    assert_eq!(session.api_url, server.base);
    assert_eq!(session.recommended_part_size, 100_000_000);

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let auth = &requests[0];
    assert_eq!(auth.method, "GET");
    assert_eq!(auth.target, "/b2api/v4/b2_authorize_account");
    // base64("key-id:secret-key")
    assert_eq!(
        auth.header("authorization"),
        Some("Basic a2V5LWlkOnNlY3JldC1rZXk=")
    );
    let agent = auth.header("user-agent").expect("user agent");
    assert!(agent.starts_with("adapter-tests/1.0 "), "{agent}");
    assert!(agent.contains(" b2-tokio/"), "{agent}");
    assert!(auth.header("accept-encoding").is_none());
    assert!(auth.header("content-length").is_none());
    assert!(auth.header("content-type").is_none());
    assert!(auth.body.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_key_fails_at_once() {
    let server = Server::start(|_| Reply::error(401, "unauthorized"));
    let error = client(&server).session().await.expect_err("refused");
    assert!(error.is_unauthorized(), "{error:?}");
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_is_retried_and_the_second_answer_is_used() {
    let server = serve(|req| match req.nth {
        0 => Reply::error(503, "service_unavailable"),
        _ => Reply::json(200, ONE_BUCKET),
    });
    let buckets = client(&server).list_buckets().await.expect("buckets");
    assert_eq!(buckets.len(), 1);
    assert_eq!(buckets[0].bucket_name.as_str(), "kittens");

    let calls = server.requests_to("/b2_list_buckets");
    assert_eq!(calls.len(), 2);
    for call in &calls {
        assert_eq!(call.method, "POST");
        assert_eq!(call.target, "/b2api/v4/b2_list_buckets");
        assert_eq!(call.header("authorization"), Some("tok1"));
        assert_eq!(call.header("content-type"), Some("application/json"));
        let body: serde_json::Value = serde_json::from_slice(&call.body).expect("json");
        assert_eq!(body["accountId"], "acc1");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_cut_mid_body_is_a_transport_error() {
    let server = serve(|_| {
        Reply::Cut(b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n{\"buckets\":[".to_vec())
    });
    let error = client_with(&server, one_attempt())
        .list_buckets()
        .await
        .expect_err("cut");
    let Error::RetriesExhausted { attempts, last } = &error else {
        panic!("{error:?}")
    };
    assert_eq!(*attempts, 1);
    let Error::Transport(transport) = &**last else {
        panic!("{last:?}")
    };
    assert_eq!(transport.kind, TransportErrorKind::Body, "{transport}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_cut_mid_body_is_retried_on_a_new_connection() {
    let server = serve(|req| match req.nth {
        0 => Reply::Cut(b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n{\"buck".to_vec()),
        _ => Reply::json(200, ONE_BUCKET),
    });
    let buckets = client(&server).list_buckets().await.expect("buckets");
    assert_eq!(buckets.len(), 1);
    let calls = server.requests_to("/b2_list_buckets");
    assert_eq!(calls.len(), 2);
    assert_ne!(calls[0].conn, calls[1].conn);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_closed_before_any_reply_is_retried() {
    let server = serve(|req| match req.nth {
        0 => Reply::Cut(Vec::new()),
        _ => Reply::json(200, ONE_BUCKET),
    });
    assert_eq!(
        client(&server).list_buckets().await.expect("buckets").len(),
        1
    );
    assert_eq!(server.requests_to("/b2_list_buckets").len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_listening_is_a_connect_error() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let error = Client::builder("id", "key")
        .realm(format!("http://127.0.0.1:{port}"))
        .retry_policy(one_attempt())
        .build()
        .expect("client")
        .session()
        .await
        .expect_err("refused");
    let Error::RetriesExhausted { last, .. } = &error else {
        panic!("{error:?}")
    };
    let Error::Transport(transport) = &**last else {
        panic!("{last:?}")
    };
    assert_eq!(transport.kind, TransportErrorKind::Connect);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_tls_handshake_is_a_connect_error() {
    let error = Client::builder("id", "key")
        .realm(not_tls())
        .retry_policy(one_attempt())
        .build()
        .expect("client")
        .session()
        .await
        .expect_err("no TLS");
    let Error::RetriesExhausted { last, .. } = &error else {
        panic!("{error:?}")
    };
    let Error::Transport(transport) = &**last else {
        panic!("{last:?}")
    };
    assert_eq!(transport.kind, TransportErrorKind::Connect, "{transport}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_is_refused_before_any_request() {
    let (base, requests) = untrusted_tls();
    let error = Client::builder("id", "key")
        .realm(base)
        .retry_policy(one_attempt())
        .build()
        .expect("client")
        .session()
        .await
        .expect_err("untrusted");
    let Error::RetriesExhausted { last, .. } = &error else {
        panic!("{error:?}")
    };
    let Error::Transport(transport) = &**last else {
        panic!("{last:?}")
    };
    assert_eq!(transport.kind, TransportErrorKind::Connect, "{transport}");
    assert!(
        format!("{:?}", transport).contains("InvalidCertificate"),
        "{transport:?}"
    );
    assert_eq!(requests.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_server_is_a_timeout() {
    let server = Server::start(|_| Reply::Stall(Vec::new(), Duration::from_secs(3)));
    let error = Client::builder("id", "key")
        .realm(&server.base)
        .retry_policy(one_attempt())
        .request_timeout(Duration::from_millis(400))
        .idle_timeout(Duration::from_millis(400))
        .build()
        .expect("client")
        .session()
        .await
        .expect_err("silent");
    let Error::RetriesExhausted { last, .. } = &error else {
        panic!("{error:?}")
    };
    let Error::Transport(transport) = &**last else {
        panic!("{last:?}")
    };
    assert_eq!(transport.kind, TransportErrorKind::Timeout, "{transport}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_stalls_is_a_timeout() {
    let server = serve(|_| {
        Reply::Stall(
            b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n{\"buckets\":[".to_vec(),
            Duration::from_secs(3),
        )
    });
    let client = Client::builder("id", "key")
        .realm(&server.base)
        .retry_policy(one_attempt())
        .request_timeout(Duration::from_millis(600))
        .idle_timeout(Duration::from_millis(600))
        .build()
        .expect("client");
    client.session().await.expect("session");
    let started = std::time::Instant::now();
    let error = client.list_buckets().await.expect_err("stalled");
    assert!(started.elapsed() < Duration::from_secs(2));
    let Error::RetriesExhausted { last, .. } = &error else {
        panic!("{error:?}")
    };
    let Error::Transport(transport) = &**last else {
        panic!("{last:?}")
    };
    assert_eq!(transport.kind, TransportErrorKind::Timeout, "{transport}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_is_renewed_once_for_all_tasks() {
    let server = serve(|req| {
        if req.header("authorization") == Some("tok1") {
            // Hold the refusal so every task's call is in flight with the old token.
            std::thread::sleep(Duration::from_millis(150));
            Reply::error(401, "expired_auth_token")
        } else {
            Reply::json(200, ONE_BUCKET)
        }
    });
    let client = client(&server);
    let first = client.session().await.expect("session");
    let calls = (0..4).map(|_| client.list_buckets());
    for result in futures_util::future::join_all(calls).await {
        assert_eq!(result.expect("buckets").len(), 1);
    }
    assert_eq!(server.requests_to("/b2_authorize_account").len(), 2);
    let now = client.session().await.expect("session");
    assert_eq!(now.authorization_token.expose_secret(), "tok2");
    assert!(!std::sync::Arc::ptr_eq(&first, &now));
    let calls = server.requests_to("/b2_list_buckets");
    assert_eq!(
        calls
            .iter()
            .filter(|c| c.header("authorization") == Some("tok2"))
            .count(),
        4
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_run_on_spawned_tasks() {
    let server = serve(|_| Reply::json(200, ONE_BUCKET));
    let client = client(&server);
    let tasks: Vec<_> = (0..3)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.list_buckets().await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.expect("task").expect("buckets").len(), 1);
    }
    assert_eq!(server.requests_to("/b2_authorize_account").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_reused() {
    let server = serve(|_| Reply::json(200, ONE_BUCKET));
    let client = client(&server);
    for _ in 0..3 {
        client.list_buckets().await.expect("buckets");
        // hyper-util hands a connection back to its pool from a task of its own once the reply
        // has ended; a call made at that very moment would open a second one.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let requests = server.requests();
    assert_eq!(requests.len(), 4);
    assert!(requests.iter().all(|r| r.conn == requests[0].conn));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_follow_the_cursor_page_by_page() {
    let key = |id: &str| {
        format!(
            r#"{{"accountId":"acc1","applicationKeyId":"{id}","bucketIds":null,"capabilities":["listFiles"],"expirationTimestamp":null,"keyName":"k","namePrefix":null,"options":[]}}"#
        )
    };
    let first = format!(r#"{{"keys":[{}],"nextApplicationKeyId":"k2"}}"#, key("k1"));
    let last = format!(r#"{{"keys":[{}],"nextApplicationKeyId":null}}"#, key("k2"));
    let server = serve(move |req| match req.nth {
        0 => Reply::json(200, &first),
        _ => Reply::json(200, &last),
    });
    let client = client(&server);
    let ids: Vec<String> = client
        .list_keys()
        .map(|k| k.expect("key").application_key_id.to_string())
        .collect()
        .await;
    assert_eq!(ids, ["k1", "k2"]);
    let calls = server.requests_to("/b2_list_keys");
    assert_eq!(calls.len(), 2);
    let second: serde_json::Value = serde_json::from_slice(&calls[1].body).expect("json");
    assert_eq!(second["startApplicationKeyId"], "k2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_stops_at_its_first_error() {
    let server = serve(|_| Reply::error(400, "bad_request"));
    let client = client(&server);
    let results: Vec<_> = client.list_keys().collect().await;
    assert_eq!(results.len(), 1);
    assert_eq!(
        results[0]
            .as_ref()
            .expect_err("error")
            .status()
            .map(|s| s.as_u16()),
        Some(400)
    );
}

fn raw(head_and_body: &str) -> Reply {
    Reply::Raw(head_and_body.as_bytes().to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_reply_is_read_and_its_connection_reused() {
    let server = serve(|_| {
        let (a, b) = ONE_BUCKET.split_at(20);
        raw(&format!(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
            a.len(),
            b.len()
        ))
    });
    let client = client(&server);
    for _ in 0..2 {
        let buckets = client.list_buckets().await.expect("buckets");
        assert_eq!(buckets[0].bucket_name.as_str(), "kittens");
    }
    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    assert!(requests.iter().all(|r| r.conn == requests[0].conn));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_close_reply_is_not_reused() {
    let server = serve(|_| {
        raw(&format!(
            "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{ONE_BUCKET}",
            ONE_BUCKET.len()
        ))
    });
    let client = client(&server);
    client.list_buckets().await.expect("buckets");
    client.list_buckets().await.expect("buckets");
    let calls = server.requests_to("/b2_list_buckets");
    assert_eq!(calls.len(), 2);
    assert_ne!(calls[0].conn, calls[1].conn);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_the_server_closed_is_not_used() {
    // The server closes every connection after its reply without saying so. A create is not
    // retried after a broken connection, so it succeeds only if the closed one is skipped.
    let bucket = ONE_BUCKET
        .trim_start_matches(r#"{"buckets":["#)
        .trim_end_matches("]}")
        .to_owned();
    let server = serve(move |req| {
        let body = if req.path().ends_with("/b2_create_bucket") {
            bucket.clone()
        } else {
            ONE_BUCKET.to_owned()
        };
        Reply::Cut(
            format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes(),
        )
    });
    let client = client_with(&server, one_attempt());
    client.list_buckets().await.expect("buckets");
    // Let the server's close arrive.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let op = b2_tokio::ops::CreateBucket::new(
        b2_proto::BucketName::new("kittens").expect("name"),
        b2_proto::model::BucketType::AllPrivate,
    );
    let created = client.create_bucket(op).await.expect("created");
    assert_eq!(created.bucket_name.as_str(), "kittens");
    assert_eq!(server.requests_to("/b2_create_bucket").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interim_replies_are_skipped() {
    let server = serve(|_| {
        raw(&format!(
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{ONE_BUCKET}",
            ONE_BUCKET.len()
        ))
    });
    let buckets = client(&server).list_buckets().await.expect("buckets");
    assert_eq!(buckets.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_ascii_reply_header_does_not_break_the_call() {
    let server = serve(|_| {
        raw(&format!(
            "HTTP/1.1 200 OK\r\nX-Name: caf\u{e9}\r\nContent-Length: {}\r\n\r\n{ONE_BUCKET}",
            ONE_BUCKET.len()
        ))
    });
    let buckets = client(&server).list_buckets().await.expect("buckets");
    assert_eq!(buckets.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_head_larger_than_8_kib_is_read() {
    // A B2 download of a file with a long name and large file info has a head this large.
    let big = "a%20".repeat(5000);
    let server = serve(move |_| {
        raw(&format!(
            "HTTP/1.1 200 OK\r\nX-Bz-Info-Big: {big}\r\nContent-Length: {}\r\n\r\n{ONE_BUCKET}",
            ONE_BUCKET.len()
        ))
    });
    let buckets = client(&server).list_buckets().await.expect("buckets");
    assert_eq!(buckets.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unregistered_status_is_kept() {
    let server = serve(|_| raw("HTTP/1.1 599 Odd\r\nContent-Length: 2\r\n\r\n{}"));
    let error = client_with(&server, one_attempt())
        .list_buckets()
        .await
        .expect_err("599");
    let Error::RetriesExhausted { last, .. } = error else {
        panic!("{error:?}")
    };
    assert_eq!(last.status().map(|s| s.as_u16()), Some(599), "{last:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_without_date_or_content_type_keeps_its_headers() {
    let server = serve(|_| {
        raw(&format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nX-Bz-Thing: a\r\nX-Bz-Thing: b\r\n\r\n{ONE_BUCKET}",
            ONE_BUCKET.len()
        ))
    });
    let buckets = client(&server).list_buckets().await.expect("buckets");
    assert_eq!(buckets.len(), 1);
}

/// The head of `hello world\n` as B2 sends it, with `status`, `length` and extra lines.
fn download_head(status: &str, length: usize, extra: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {length}\r\n\
         x-bz-file-id: 4_zfile\r\nx-bz-file-name: hello.txt\r\n\
         x-bz-content-sha1: 22596363b3de40b06f981fb85d82312e8c0ed511\r\n\
         x-bz-upload-timestamp: 1700000000000\r\n{extra}\r\n"
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_streams_and_resumes_a_stalled_body_from_where_it_stopped() {
    let server = serve(|req| {
        let mut reply;
        if let Some(range) = req.header("range") {
            assert_eq!(range, "bytes=6-11");
            reply = download_head("206 Partial Content", 6, "Content-Range: bytes 6-11/12\r\n");
            reply.extend_from_slice(b"world\n");
            Reply::Raw(reply)
        } else {
            reply = download_head("200 OK", 12, "");
            reply.extend_from_slice(b"hello ");
            Reply::Stall(reply, Duration::from_secs(3))
        }
    });
    let client = Client::builder("id", "key")
        .realm(&server.base)
        .idle_timeout(Duration::from_millis(500))
        .build()
        .expect("client");
    let started = std::time::Instant::now();
    let op = b2_proto::ops::DownloadFileById::new(b2_proto::FileId::new("4_zfile"));
    let mut stream = client.download(op, 4).await.expect("download");
    // The head comes back while the body is still arriving.
    assert_eq!(stream.head().content_length, 12);
    let mut chunks = Vec::new();
    while let Some(chunk) = stream.next().await {
        chunks.push(chunk.expect("chunk"));
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "waited for the stall to end"
    );
    assert_eq!(chunks.concat(), b"hello world\n");
    assert!(chunks.iter().all(|c| c.len() <= 4), "{chunks:?}");
    assert!(
        matches!(
            stream.verification(),
            Some(b2_proto::verify::Verification::Matched { .. })
        ),
        "{:?}",
        stream.verification()
    );
    let downloads: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| !r.path().ends_with("/b2_authorize_account"))
        .collect();
    assert_eq!(downloads.len(), 2);
    assert_eq!(downloads[0].header("range"), None);
    assert_eq!(downloads[1].header("range"), Some("bytes=6-11"));
}
