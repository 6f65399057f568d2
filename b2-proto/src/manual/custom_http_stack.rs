//! Driving b2-proto with an HTTP client of your choice.
//!
//! b2-proto never touches the network. To use it from your own HTTP stack you need three
//! things: a way to send an `http::Request` and get back a complete `http::Response<Bytes>`
//! (or a [`TransportError`](crate::TransportError) saying how it failed), a clock, and a way
//! to sleep. The loop below is the whole driver for single calls and listings; the adapter
//! crates (`b2-tokio`, `b2-async-std`, `b2-blocking`) are this loop plus concurrency.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Instant;
//! use b2_proto::{Body, Call, Machine, Operation, RetryPolicy, Session, Step, TransportError};
//! use bytes::Bytes;
//!
//! /// Runs one operation to completion with a blocking `send` function.
//! fn run<Op: Operation>(
//!     op: Op,
//!     session: &mut Arc<Session>,
//!     send: &mut dyn FnMut(http::Request<Bytes>) -> Result<http::Response<Bytes>, TransportError>,
//!     reauthorize: &mut dyn FnMut() -> Result<Session, b2_proto::Error>,
//! ) -> Result<Op::Output, b2_proto::Error> {
//!     let mut call = Call::new(op, session.clone(), &RetryPolicy::default());
//!     loop {
//!         match call.poll_step(Instant::now()) {
//!             Step::Send(id, request) => {
//!                 let (parts, body) = request.into_parts();
//!                 let Body::Bytes(body) = body else { unreachable!("single calls send bytes") };
//!                 let reply = send(http::Request::from_parts(parts, body));
//!                 call.handle_response(id, reply, Instant::now());
//!             }
//!             Step::Reauthorize { .. } => {
//!                 *session = Arc::new(reauthorize()?);
//!                 call.handle_session(session.clone());
//!             }
//!             Step::Wait(until) => std::thread::sleep(until.saturating_duration_since(Instant::now())),
//!             Step::Done(result) => return result,
//!             // A single call has one request in flight at most, and never asks for parts.
//!             _ => unreachable!(),
//!         }
//!     }
//! }
//! # let _ = run::<Nop>;
//! # struct Nop;
//! # impl Operation for Nop { type Output = (); const NAME: &'static str = "b2_nop";
//! #   fn request(&self, s: &Session) -> Result<http::Request<Bytes>, b2_proto::Error> { b2_proto::ops::json_request(s, Self::NAME, &()) }
//! #   fn parse(&self, r: http::Response<Bytes>) -> Result<(), b2_proto::Error> { b2_proto::ops::check_status(r).map(|_| ()) } }
//! ```
//!
//! Map your client's failures onto [`TransportErrorKind`](crate::TransportErrorKind): `Connect` when
//! nothing reached the server, `Timeout` when no reply came in time, `Interrupted` when the
//! connection broke mid-request, `Body` when the reply's body could not be read. Any HTTP status,
//! including 5xx, is a reply, not a transport error: pass it to `handle_response` as it is.
//!
//! Downloads stream: build the request with the download operation, read the reply's head, and
//! if the status is a success, parse the head and stream the body through a SHA1 verifier;
//! otherwise buffer the (small) error body and hand the whole reply to `parse` for B2's error.
