//! ureq's logging never carries a secret: ureq and ureq-proto write request heads (the
//! Authorization header) and full request targets at `log`'s TRACE level, which this crate
//! removes at compile time. A logger that takes every record is installed for the whole
//! process, so this file holds this one test.

#[path = "support/server.rs"]
mod server;

use std::sync::Mutex;

use b2_blocking::Client;
use b2_proto::{BucketName, FileName, ops};
use server::{ONE_BUCKET, Reply, Server, authorize_json};

/// Every record logged: level, target, message.
static RECORDS: Mutex<Vec<(log::Level, String, String)>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        if let Ok(mut records) = RECORDS.lock() {
            records.push((
                record.level(),
                record.target().to_owned(),
                record.args().to_string(),
            ));
        }
    }

    fn flush(&self) {}
}

const TOKEN: &str = "4_002secrettokenLOGGED0001";
/// `log-key-id:log-secret-key` in base64, as the Basic authorization header carries it.
const BASIC: &str = "bG9nLWtleS1pZDpsb2ctc2VjcmV0LWtleQ==";

#[test]
fn no_secret_reaches_the_log_at_any_level() {
    log::set_logger(&Capture).expect("the only logger");
    log::set_max_level(log::LevelFilter::Trace);
    assert!(
        log::STATIC_MAX_LEVEL <= log::LevelFilter::Debug,
        "TRACE records are compiled in"
    );

    let base = std::sync::Arc::new(std::sync::OnceLock::<String>::new());
    let for_handler = base.clone();
    let server = Server::start(move |req| {
        let base = for_handler.get().cloned().unwrap_or_default();
        match req.path() {
            p if p.ends_with("/b2_authorize_account") => {
                Reply::json(200, &authorize_json(&base, TOKEN))
            }
            p if p.ends_with("/b2_list_buckets") => Reply::json(200, ONE_BUCKET),
            _ => Reply::Raw(
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\nX-Bz-File-Id: f1\r\nX-Bz-File-Name: secret%20plans.txt\r\nX-Bz-Content-Sha1: none\r\nX-Bz-Upload-Timestamp: 1\r\n\r\nhello"
                    .to_vec(),
            ),
        }
    });
    base.set(server.base.clone()).expect("base set once");

    let client = Client::builder("log-key-id", "log-secret-key")
        .realm(&server.base)
        .build()
        .expect("client");
    assert_eq!(client.list_buckets().expect("buckets").len(), 1);
    let name = FileName::new("secret plans.txt").expect("name");
    let op = ops::DownloadFileByName::new(BucketName::new("kittens").expect("bucket"), name);
    let (_, body, _) = client.download_bytes(op).expect("download");
    assert_eq!(body.as_ref(), b"hello");

    // The requests carried the secrets: the log had the chance to show them.
    let requests = server.requests();
    assert_eq!(
        requests[0].header("authorization"),
        Some(format!("Basic {BASIC}").as_str())
    );
    assert_eq!(requests[1].header("authorization"), Some(TOKEN));

    let records = RECORDS.lock().expect("records").clone();
    assert!(
        records
            .iter()
            .any(|(_, target, _)| target.starts_with("ureq")),
        "ureq logged nothing: the capture does not work"
    );
    let mut dumped = Vec::new();
    for (level, target, message) in &records {
        assert!(*level <= log::Level::Debug, "{level} {target}: {message}");
        for secret in [TOKEN, BASIC, "log-secret-key"] {
            assert!(
                !message.contains(secret),
                "a secret in the log: {target}: {message}"
            );
        }
        dumped.extend(hex_row(message));
    }
    // ureq-proto dumps the bytes it writes as rows of 16 in hex: a secret would be split
    // across rows, so the rows are decoded and searched as one.
    for secret in [TOKEN, BASIC] {
        assert!(
            !dumped.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "a secret in a byte dump of the log"
        );
    }
}

/// The bytes of a hex-dump row (`4854 5450 ... HTTP...`), or none for another message.
fn hex_row(message: &str) -> Vec<u8> {
    let Some(hex) = message.get(..40) else {
        return Vec::new();
    };
    if !hex
        .chars()
        .all(|c| c.is_ascii_hexdigit() || c == '-' || c == ' ')
    {
        return Vec::new();
    }
    let digits: Vec<char> = hex.chars().filter(|c| *c != ' ').collect();
    digits
        .chunks(2)
        .filter_map(|pair| {
            let pair: String = pair.iter().collect();
            u8::from_str_radix(&pair, 16).ok()
        })
        .collect()
}
