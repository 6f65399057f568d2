//! The sans-IO core of a Backblaze B2 Native API client.
//!
//! `b2-proto` builds the `http::Request` of every B2 Native API (v4) call and parses its
//! `http::Response`; multi-step flows (retries, listings, large-file uploads) are state
//! machines. It opens no socket, starts no runtime, reads no clock and draws no randomness:
//! the caller's HTTP stack moves the bytes and passes in the time. The `b2-tokio`,
//! `b2-async-std` and `b2-blocking` crates drive it; so can any other HTTP client.
//!
//! # One call by hand
//!
//! ```
//! use b2_proto::{AuthorizeAccount, ApplicationKey, ApplicationKeyId};
//!
//! let authorize = AuthorizeAccount::new(ApplicationKeyId::new("0012ab"), ApplicationKey::new("K001x"));
//! let request = authorize.request().unwrap();
//! assert_eq!(request.method(), "GET");
//! // Send `request` with any HTTP client, then:
//! let reply = http::Response::builder().status(401).body(bytes::Bytes::from_static(
//!     br#"{"status":401,"code":"unauthorized","message":"bad key"}"#,
//! )).unwrap();
//! let error = authorize.parse(reply).unwrap_err();
//! assert!(error.is_unauthorized());
//! ```
//!
//! # The driver contract
//!
//! 1. Authorize: send [`AuthorizeAccount::request`], parse the reply into a [`Session`].
//! 2. Wrap an [`ops`] value in a [`Call`] (or use [`Pager`], [`LargeUpload`], …): a [`Machine`].
//! 3. Loop: `poll_step(now)` until it yields [`Step::Wait`], [`Step::Pending`] or
//!    [`Step::Done`], acting on each step ([`machine`] documents every one).
//! 4. Feed back replies with `handle_response`, new sessions with `handle_session`, source bytes
//!    with `provide_part`, each time passing `now`, and go to 3.
//!
//! Every rule of B2 lives here: encoding, validation, retry classes, upload URL renewal,
//! part planning, SHA1 checks. Drivers only move bytes and sleep.

#![forbid(unsafe_code)]
#![warn(missing_docs, clippy::exhaustive_enums, clippy::exhaustive_structs)]

mod macros;

pub mod call;
pub mod compose;
pub mod download_plan;
pub mod encoding;
pub mod error;
pub mod large_upload;
pub mod machine;
pub mod manual;
pub mod model;
pub mod ops;
pub mod pager;
pub mod planner;
pub mod progress;
pub mod retry;
pub mod secret;
pub mod session;
pub mod transfer;
pub mod types;
pub mod upload;
pub mod user_agent;
pub mod verify;

/// The path prefix of every call: B2 Native API version 4.
pub const API_PREFIX: &str = "/b2api/v4/";

pub use call::{AuthorizeCall, Call};
pub use error::{
    ApiError, DecodeError, Error, ErrorCode, IntegrityError, InvalidInput, TransportError,
    TransportErrorKind,
};
pub use large_upload::LargeUpload;
pub use machine::{Body, Machine, RequestId, Step};
pub use ops::{Operation, Paginated, RetryClass};
pub use pager::{Pager, PagerState};
pub use retry::RetryPolicy;
pub use secret::{ApplicationKey, AuthToken, SigningSecret};
pub use session::{Allowed, AllowedBucket, AuthorizeAccount, Capability, DEFAULT_REALM, Session};
pub use types::{
    AccountId, ApplicationKeyId, BucketId, BucketName, ContentSha1, FileId, FileInfo, FileName,
    PartNumber, Sha1Digest,
};
pub use user_agent::UserAgent;
