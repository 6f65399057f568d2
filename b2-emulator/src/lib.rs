//! A local Backblaze B2 Native API (v4) server for tests.
//!
//! `b2-emulator` answers B2's calls the way Backblaze documents them
//! (<https://www.backblaze.com/apidocs/>): accounts and application keys with capabilities,
//! bucket restrictions and name prefixes; buckets with revisions; file versions and hide
//! markers; listings in UTF-8 byte order with prefixes, delimiters and cursors; large files;
//! server-side copies; downloads with ranges; download authorizations; Object Lock; SSE-B2 and
//! SSE-C; lifecycle rules (see below); event-notification rules. Error replies are always `{"status", "code", "message"}`
//! with B2's codes. It is checked against Backblaze's own clients (the `b2` command-line tool and
//! `b2sdk`): see `conformance/run.sh`.
//!
//! # Running the binary
//!
//! ```text
//! cargo run -p b2-emulator -- --port 0
//! cargo run -p b2-emulator -- --port 8000 --data-dir /tmp/b2 --key-id myKeyId --key myKey \
//!     --min-part-size 5
//! ```
//!
//! It prints its URL and credentials, then serves until stopped:
//!
//! ```text
//! b2-emulator listening on http://127.0.0.1:40123
//! B2_ENVIRONMENT=http://127.0.0.1:40123
//! B2_APPLICATION_KEY_ID=e0a1b2c3d4e5
//! B2_APPLICATION_KEY=K000emulatorMasterApplicationKey00000
//! ```
//!
//! The URL is the realm: `b2_authorize_account` is at `<URL>/b2api/v4/b2_authorize_account` and
//! returns the same URL as `apiUrl` and `downloadUrl`. With the `b2` tool or `b2sdk`, set
//! `B2_ENVIRONMENT` to it. Flags: `--host ADDR` (default `127.0.0.1`), `--port N`,
//! `--data-dir DIR` (persist contents and metadata; without it everything is in memory),
//! `--key-id ID` / `--key KEY` (the master key), `--account-id ID`, `--min-part-size N` (smallest
//! part of a large file except the last; B2's is 5,000,000), `--recommended-part-size N`,
//! `--seed N` (ids, tokens and random faults are reproducible from it), `--fault JSON`
//! (repeatable; a fault rule in the form the control endpoint takes, see below).
//!
//! # In your own tests
//!
//! [`Server`] starts one on `127.0.0.1` with a free port, on a thread and tokio runtime of its
//! own, so synchronous tests and tests on any async runtime can use it alike. It stops when
//! dropped.
//!
//! ```
//! use b2_emulator::{Config, FaultAction, FaultRule, FaultTarget, Server};
//!
//! let server = Server::builder()
//!     .with_config(Config::new().with_master_key("testKeyId", "testKey").with_min_part_size(5))
//!     .start()
//!     .unwrap();
//! let realm = server.url(); // e.g. "http://127.0.0.1:40123"
//! assert_eq!(server.key_id(), "testKeyId");
//! # let _ = realm;
//!
//! // The next two uploads fail with 503, as B2 does when a pod is busy.
//! server.add_fault(
//!     FaultRule::new(FaultAction::Status { status: 503, retry_after: None }, FaultTarget::Uploads)
//!         .with_count(2),
//! );
//! // Tokens expire a day after they were issued.
//! server.advance_clock(std::time::Duration::from_secs(24 * 3600));
//! ```
//!
//! # Without a socket
//!
//! The core is sans-IO: [`Emulator::handle`] takes an `http::Request` and the current time (in
//! milliseconds since the epoch) and returns the `http::Response` B2 would give. The server uses
//! its streaming halves, so an upload is never held whole in memory when a data directory is
//! used: [`Emulator::begin_upload`] checks the head and returns a [`PendingUpload`] that hashes
//! and stores the body as it arrives, [`Emulator::finish_upload`] checks the SHA1 and records the
//! file; [`Emulator::begin_download`] returns the head and a [`ContentReader`] for the range.
//!
//! # Faults
//!
//! * `X-Bz-Test-Mode` as B2 documents it: `fail_some_uploads` (about a third of uploads answer
//!   503), `expire_some_account_authorization_tokens` (about a quarter of calls answer 401
//!   `expired_auth_token`), `force_cap_exceeded` (upload-related calls answer 403 `cap_exceeded`).
//! * [`FaultRule`]s, from the library ([`Server::add_fault`], [`Emulator::add_fault`]) or over
//!   HTTP: `POST /__emulator/faults` with `{"action": "status", "status": 503, "retryAfter": 2,
//!   "target": "uploads", "count": 1}` (or `"percent": 30`). Actions: `status` (any 4xx/5xx,
//!   e.g. 500, 503, 429 with `Retry-After`), `expire_token`, `reset_request_body`,
//!   `reset_response_body`, `truncate_response`, `delay` (`"ms"`). Targets: `uploads`,
//!   `downloads`, `calls`, `all`, or a call name. `DELETE /__emulator/faults` clears them. The
//!   binary takes the same JSON with `--fault`.
//! * `POST /__emulator/clock` with `{"advanceMs": N}` or `{"advanceSeconds": N}` moves the clock;
//!   `POST /__emulator/expire-tokens` expires every account token; `GET /__emulator/info`;
//!   `GET /__emulator/calls` counts requests per call name (`DELETE` resets), the same as
//!   [`Server::call_counts`], to check how a client retried or reused upload URLs.
//!
//! Percentages are drawn from a generator seeded by [`Config::seed`], so a run is reproducible.
//! Secrets (keys, tokens) are never logged: the emulator logs nothing.
//!
//! # Lifecycle rules
//!
//! A bucket's `lifecycleRules` are checked as
//! <https://www.backblaze.com/docs/cloud-storage-lifecycle-rules> describes them (at most 100;
//! each has a `fileNamePrefix` and at least one day count; counts are null or positive; no two
//! rules apply to the same file, so `photos/` and `photos/kittens/` cannot both be set), and they
//! act on the files whose names start with their prefix as the clock moves:
//!
//! * `daysFromUploadingToHiding`: the live version of a name is hidden that many days after its
//!   upload, with a hide marker like `b2_hide_file`'s (a name already hidden is left alone);
//! * `daysFromHidingToDeleting`: a version that is not the current one is deleted that many days
//!   after it was hidden, that is after the next newer version of its name (an upload or a hide
//!   marker) was uploaded. The current version of a name, even a hide marker, stays. A version
//!   under Object Lock retention (either mode) or legal hold is deleted only once the lock ends;
//! * `daysFromStartingToCancelingUnfinishedLargeFiles`: an unfinished large file is cancelled
//!   that many days after it was started.
//!
//! B2 applies the rules in a daily pass, so on B2 an action happens some time (up to a day)
//! after its count runs out. The emulator acts at the earliest moment B2 may, exactly
//! `days × 24 h` after the instant the count runs from (no rounding to day boundaries): before
//! serving any request made at or after that moment, whether the time got there by itself or
//! through [`Server::advance_clock`], [`Emulator::advance_clock`] or `POST /__emulator/clock`.
//! What a rule does is dated when it fell due, not when the request came: a hide marker made by
//! a rule has the due time as its `uploadTimestamp`, so after a jump of the clock over several
//! counts, listings show what they would after B2's daily passes. A rule set (by
//! `b2_create_bucket` or `b2_update_bucket`) after a count ran out acts at once, dated then. Lifecycle actions send no
//! event notifications (the emulator stores notification rules but sends no events).
//!
//! # API versions
//!
//! Every call is also served under `/b2api/v1/` to `/b2api/v3/` with the same semantics; only
//! `b2_authorize_account` and the key calls change shape with the version, as B2 documents.
//! Keys created with v4 `b2_create_key` are multi-bucket keys and authorize only on v4.

mod buckets;
mod core;
mod download;
mod faults;
mod files;
mod large;
mod lifecycle;
mod model;
mod server;
mod store;

pub use crate::core::{
    ACCOUNT_TOKEN_LIFETIME_MS, ALL_CAPABILITIES, Config, Emulator, Route, classify,
};
pub use download::Download;
pub use faults::{FaultAction, FaultRule, FaultTarget, HttpFault};
pub use files::PendingUpload;
pub use server::{Server, ServerBuilder};
pub use store::ContentReader;
