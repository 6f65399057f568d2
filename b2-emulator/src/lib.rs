//! A local Backblaze B2 Native API (v4) server for tests.
//!
//! Placeholder docs; replaced below.

mod buckets;
mod core;
mod download;
mod faults;
mod files;
mod large;
mod model;
mod store;

pub use crate::core::{
    ACCOUNT_TOKEN_LIFETIME_MS, ALL_CAPABILITIES, Config, Emulator, Route, classify,
};
pub use download::Download;
pub use faults::{FaultAction, FaultRule, FaultTarget, HttpFault};
pub use files::PendingUpload;
pub use store::ContentReader;
mod server;
pub use server::{Server, ServerBuilder};
