//! Guides: documentation-only modules on cross-cutting topics.
//!
//! - [`custom_http_stack`]: driving b2-proto with an HTTP client of your choice.
//! - [`retries`]: what is retried, how, and how to change it.
//! - [`large_files`]: simple or large upload, part plans, every kind of source, resuming,
//!   memory, and what a failure leaves behind.

pub mod custom_http_stack;
pub mod large_files;
pub mod retries;
