//! A Backblaze B2 client on tokio and hyper. Not yet implemented: this crate exposes nothing
//! until it can drive every call; use `b2-proto` with your own HTTP client meanwhile.
#![allow(dead_code)]

mod transport;
