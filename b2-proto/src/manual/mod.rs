//! Guides: documentation-only modules on cross-cutting topics.
//!
//! - [`custom_http_stack`]: driving b2-proto with an HTTP client of your choice.
//! - [`retries`]: what is retried, how, and how to change it.

pub mod custom_http_stack;
pub mod retries;
