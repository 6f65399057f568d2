//! [`Call`]: one [`Operation`] with retries, backoff and re-authorization, as a [`Machine`].

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use crate::error::{Error, InvalidInput, TransportError};
use crate::machine::{Body, IdGen, Machine, RequestId, Step};
use crate::ops::Operation;
use crate::retry::{Refresh, Retrier, RetryPolicy, Verdict};
use crate::session::Session;

#[derive(Debug)]
enum State {
    Ready,
    InFlight(RequestId),
    Waiting(Instant),
    NeedSession,
    Finished,
}

/// One B2 call, retried under a [`RetryPolicy`].
///
/// Yields one [`Step::Send`] per attempt, [`Step::Wait`] for backoff and `Retry-After`, and
/// [`Step::Reauthorize`] when the account token expired (once per call).
///
/// ```
/// # #![allow(clippy::disallowed_methods)]
/// use std::sync::Arc;
/// use std::time::Instant;
/// use b2_proto::{ops::Operation, AccountId, AuthToken, Call, Machine, RetryPolicy, Session, Step};
/// # use b2_proto::ops::RetryClass;
/// # struct Ping;
/// # impl Operation for Ping {
/// #     type Output = u16;
/// #     const NAME: &'static str = "b2_ping";
/// #     fn request(&self, s: &Session) -> Result<http::Request<bytes::Bytes>, b2_proto::Error> {
/// #         b2_proto::ops::json_request(s, Self::NAME, &serde_json::json!({}))
/// #     }
/// #     fn parse(&self, r: http::Response<bytes::Bytes>) -> Result<u16, b2_proto::Error> {
/// #         b2_proto::ops::check_status(r).map(|(p, _)| p.status.as_u16())
/// #     }
/// # }
///
/// let session = Arc::new(Session::new(AccountId::new("a"), AuthToken::new("t"), "https://api", "https://f"));
/// let mut call = Call::new(Ping, session, &RetryPolicy::default());
/// let now = Instant::now();
/// let Step::Send(id, request) = call.poll_step(now) else { panic!() };
/// assert_eq!(request.uri(), "https://api/b2api/v4/b2_ping");
/// // A driver sends `request`; here B2 answers 503 and then 200.
/// let busy = http::Response::builder().status(503).body(bytes::Bytes::new()).unwrap();
/// call.handle_response(id, Ok(busy), now);
/// let Step::Wait(until) = call.poll_step(now) else { panic!() };
/// let Step::Send(id, _) = call.poll_step(until) else { panic!() };
/// call.handle_response(id, Ok(http::Response::new(bytes::Bytes::new())), until);
/// assert!(matches!(call.poll_step(until), Step::Done(Ok(200))));
/// ```
#[derive(Debug)]
pub struct Call<Op: Operation> {
    op: Op,
    session: Arc<Session>,
    retrier: Retrier,
    ids: IdGen,
    state: State,
    outcome: Option<Result<Op::Output, Error>>,
}

impl<Op: Operation> Call<Op> {
    /// Wraps `op`, to run in `session` under `policy`.
    pub fn new(op: Op, session: Arc<Session>, policy: &RetryPolicy) -> Self {
        Self {
            op,
            session,
            retrier: Retrier::new(policy, 0),
            ids: IdGen::default(),
            state: State::Ready,
            outcome: None,
        }
    }

    /// The operation.
    pub fn operation(&self) -> &Op {
        &self.op
    }

    /// The session the call runs in (the newest, after a re-authorization).
    pub fn session(&self) -> &Arc<Session> {
        &self.session
    }

    /// Attempts made so far.
    pub fn attempts(&self) -> u32 {
        self.retrier.attempts()
    }

    fn finish(&mut self, outcome: Result<Op::Output, Error>) {
        self.outcome = Some(outcome);
        self.state = State::Finished;
    }
}

impl<Op: Operation> Machine for Call<Op> {
    type Output = Op::Output;

    fn poll_step(&mut self, now: Instant) -> Step<Op::Output> {
        loop {
            match self.state {
                State::Ready => {
                    let request = match self.op.request(&self.session) {
                        Ok(r) => r,
                        Err(e) => {
                            self.finish(Err(e));
                            continue;
                        }
                    };
                    let id = self.ids.next();
                    self.retrier.start_attempt(now);
                    self.state = State::InFlight(id);
                    return Step::Send(id, request.map(Body::Bytes));
                }
                State::InFlight(_) => return Step::Pending,
                State::Waiting(at) if now >= at => self.state = State::Ready,
                State::Waiting(at) => return Step::Wait(at),
                State::NeedSession => {
                    return Step::Reauthorize {
                        stale: self.session.clone(),
                    };
                }
                State::Finished => {
                    return Step::Done(self.outcome.take().unwrap_or_else(|| {
                        Err(InvalidInput::Argument {
                            what: "machine",
                            reason: "polled again after it finished".into(),
                        }
                        .into())
                    }));
                }
            }
        }
    }

    fn handle_response(
        &mut self,
        id: RequestId,
        response: Result<http::Response<Bytes>, TransportError>,
        now: Instant,
    ) {
        if !matches!(self.state, State::InFlight(current) if current == id) {
            return;
        }
        let error = match response.map_err(Error::from).and_then(|r| self.op.parse(r)) {
            Ok(output) => {
                self.retrier.succeeded();
                return self.finish(Ok(output));
            }
            Err(e) => e,
        };
        match self
            .retrier
            .after_failure(error, self.op.retry_class(), now)
        {
            Verdict::Fail(e) => self.finish(Err(e)),
            Verdict::Retry {
                refresh: Refresh::Session,
                ..
            } => self.state = State::NeedSession,
            Verdict::Retry { at, .. } => self.state = State::Waiting(at),
        }
    }

    fn handle_session(&mut self, session: Arc<Session>) {
        self.session = session;
        if matches!(self.state, State::NeedSession) {
            self.state = State::Ready;
        }
    }
}

/// `b2_authorize_account` with retries, as a [`Machine`]: the one call that needs no session.
///
/// Transport failures, 408, 429 and 5xx are retried under the policy; a refused key
/// (`401 unauthorized`) fails at once.
#[derive(Debug)]
pub struct AuthorizeCall {
    op: crate::session::AuthorizeAccount,
    retrier: Retrier,
    ids: IdGen,
    state: State,
    outcome: Option<Result<Session, Error>>,
}

impl AuthorizeCall {
    /// Wraps `op` under `policy`.
    pub fn new(op: crate::session::AuthorizeAccount, policy: &RetryPolicy) -> Self {
        Self {
            op,
            retrier: Retrier::new(policy, 0),
            ids: IdGen::default(),
            state: State::Ready,
            outcome: None,
        }
    }
}

impl Machine for AuthorizeCall {
    type Output = Session;

    fn poll_step(&mut self, now: Instant) -> Step<Session> {
        loop {
            match self.state {
                State::Ready => {
                    let request = match self.op.request() {
                        Ok(r) => r,
                        Err(e) => {
                            self.outcome = Some(Err(e));
                            self.state = State::Finished;
                            continue;
                        }
                    };
                    let id = self.ids.next();
                    self.retrier.start_attempt(now);
                    self.state = State::InFlight(id);
                    return Step::Send(id, request.map(Body::Bytes));
                }
                State::InFlight(_) | State::NeedSession => return Step::Pending,
                State::Waiting(at) if now >= at => self.state = State::Ready,
                State::Waiting(at) => return Step::Wait(at),
                State::Finished => {
                    return Step::Done(self.outcome.take().unwrap_or_else(|| {
                        Err(InvalidInput::Argument {
                            what: "machine",
                            reason: "polled again after it finished".into(),
                        }
                        .into())
                    }));
                }
            }
        }
    }

    fn handle_response(
        &mut self,
        id: RequestId,
        response: Result<http::Response<Bytes>, TransportError>,
        now: Instant,
    ) {
        if !matches!(self.state, State::InFlight(current) if current == id) {
            return;
        }
        let error = match response.map_err(Error::from).and_then(|r| self.op.parse(r)) {
            Ok(session) => {
                self.outcome = Some(Ok(session));
                self.state = State::Finished;
                return;
            }
            Err(e) => e,
        };
        // A 401 here is a refused key, not an expired token: never "re-authorize".
        let verdict = if error.status() == Some(http::StatusCode::UNAUTHORIZED) {
            Verdict::Fail(error)
        } else {
            self.retrier
                .after_failure(error, crate::ops::RetryClass::Idempotent, now)
        };
        match verdict {
            Verdict::Retry { at, .. } => self.state = State::Waiting(at),
            Verdict::Fail(e) => {
                self.outcome = Some(Err(e));
                self.state = State::Finished;
            }
        }
    }

    fn handle_session(&mut self, _session: Arc<Session>) {}
}
