//! [`Pager`]: a listing as a cursor state machine, one retried [`Call`] per page.
//!
//! B2 pages every long listing with a cursor the reply carries (`nextFileName`,
//! `nextFileName` + `nextFileId`, `nextPartNumber`, `nextFileId`, `nextApplicationKeyId`).
//! A `Pager` hands out one [`Call`] per page and moves the cursor when given the page.
//! Its [`PagerState`] serializes, so a caller can persist where a listing stopped and resume
//! it later (even in another process) with [`Pager::resume`].
//!
//! ```text
//!   Start ──page with next cursor──▶ Next(cursor) ──page with next cursor──▶ Next(cursor')
//!     │                                  │
//!     └──────page without cursor─────────┴──────────────▶ Done
//! ```

use std::collections::HashSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::call::Call;
use crate::error::{Error, InvalidInput};
use crate::ops::Paginated;
use crate::retry::RetryPolicy;
use crate::session::Session;
use crate::types::Sha1Digest;

/// Where a listing stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "state", content = "cursor")]
#[non_exhaustive]
pub enum PagerState<C> {
    /// No page fetched yet: the next page starts where the operation says.
    Start,
    /// The next page starts at this cursor.
    Next(C),
    /// The listing is complete.
    Done,
}

/// Pages through a [`Paginated`] operation.
///
/// ```
/// # use b2_proto::{pager::{Pager, PagerState}, ops::*, Error, Session};
/// # use bytes::Bytes;
/// # #[derive(Clone)] struct Numbers { start: Option<u32> }
/// # impl Operation for Numbers {
/// #     type Output = (Vec<u32>, Option<u32>);
/// #     const NAME: &'static str = "b2_list_numbers";
/// #     fn request(&self, s: &Session) -> Result<http::Request<Bytes>, Error> { json_request(s, Self::NAME, &self.start) }
/// #     fn parse(&self, _: http::Response<Bytes>) -> Result<Self::Output, Error> { unimplemented!() }
/// # }
/// # impl Paginated for Numbers {
/// #     type Item = u32; type Cursor = u32;
/// #     fn set_cursor(&mut self, c: Option<u32>) { self.start = c; }
/// #     fn next_cursor(o: &Self::Output) -> Option<u32> { o.1 }
/// #     fn into_items(o: Self::Output) -> Vec<u32> { o.0 }
/// # }
/// let mut pager = Pager::new(Numbers { start: None });
/// // Each page: drive `pager.next_call(session, policy)` to its output, then hand it back.
/// let items = pager.advance((vec![1, 2], Some(3))).unwrap();
/// assert_eq!(items, [1, 2]);
/// // Persist where the listing stands, and resume it later.
/// let saved = serde_json::to_string(pager.state()).unwrap();
/// assert_eq!(saved, r#"{"state":"next","cursor":3}"#);
/// let state: PagerState<u32> = serde_json::from_str(&saved).unwrap();
/// let mut resumed = Pager::resume(Numbers { start: None }, state);
/// assert_eq!(resumed.advance((vec![3], None)).unwrap(), [3]);
/// assert!(resumed.is_done());
/// ```
#[derive(Debug, Clone)]
pub struct Pager<Op: Paginated> {
    op: Op,
    state: PagerState<Op::Cursor>,
    remaining: Option<u64>,
    /// Digests of the cursors given so far (20 bytes a page), to stop a listing whose
    /// server goes round in a circle.
    seen: HashSet<Sha1Digest>,
}

impl<Op: Paginated> Pager<Op> {
    /// Starts a listing at the operation's own starting point.
    pub fn new(op: Op) -> Self {
        Self {
            op,
            state: PagerState::Start,
            remaining: None,
            seen: HashSet::new(),
        }
    }

    /// Resumes a listing from a saved state.
    pub fn resume(op: Op, state: PagerState<Op::Cursor>) -> Self {
        Self {
            op,
            state,
            remaining: None,
            seen: HashSet::new(),
        }
    }

    /// Stops after `limit` items in all (the last page is cut short).
    pub fn with_limit(mut self, limit: u64) -> Self {
        self.remaining = Some(limit);
        if limit == 0 {
            self.state = PagerState::Done;
        }
        self
    }

    /// Where the listing stands; serialize it to resume later.
    pub fn state(&self) -> &PagerState<Op::Cursor> {
        &self.state
    }

    /// The cursor the next page starts at, once past the first page.
    pub fn cursor(&self) -> Option<&Op::Cursor> {
        match &self.state {
            PagerState::Next(c) => Some(c),
            PagerState::Start | PagerState::Done => None,
        }
    }

    /// True when every page has been fetched.
    pub fn is_done(&self) -> bool {
        matches!(self.state, PagerState::Done)
    }

    /// The operation for the next page, or `None` when the listing is complete.
    pub fn next_operation(&self) -> Option<Op> {
        let mut op = self.op.clone();
        match &self.state {
            PagerState::Start => {}
            PagerState::Next(c) => op.set_cursor(Some(c.clone())),
            PagerState::Done => return None,
        }
        Some(op)
    }

    /// A retrying [`Call`] for the next page, or `None` when the listing is complete.
    pub fn next_call(&self, session: Arc<Session>, policy: &RetryPolicy) -> Option<Call<Op>> {
        self.next_operation()
            .map(|op| Call::new(op, session, policy))
    }

    /// Takes a page's output, moves the cursor and returns the page's items.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidResponse`] when the server returns a cursor it was given before (the
    /// one just requested, or an earlier one), which would make the listing loop forever;
    /// [`InvalidInput::Argument`] for a page given after the listing completed.
    pub fn advance(&mut self, page: Op::Output) -> Result<Vec<Op::Item>, Error> {
        if self.is_done() {
            // A late or repeated page must not start the listing over.
            return Err(InvalidInput::Argument {
                what: "listing",
                reason: "a page was given after the last one".into(),
            }
            .into());
        }
        let next = Op::next_cursor(&page);
        if let PagerState::Next(current) = &self.state {
            if let Some(digest) = cursor_digest(current) {
                self.seen.insert(digest);
            }
        }
        if let Some(next) = &next {
            let repeated = match &self.state {
                PagerState::Next(current) if next == current => true,
                _ => cursor_digest(next).is_some_and(|d| self.seen.contains(&d)),
            };
            if repeated {
                self.state = PagerState::Done;
                return Err(Error::InvalidResponse {
                    op: Op::NAME,
                    reason: format!("the next cursor {next:?} repeats one already requested"),
                });
            }
        }
        let mut items = Op::into_items(page);
        if let Some(remaining) = &mut self.remaining {
            let keep = usize::try_from(*remaining)
                .unwrap_or(usize::MAX)
                .min(items.len());
            items.truncate(keep);
            *remaining -= keep as u64;
            if *remaining == 0 {
                self.state = PagerState::Done;
                return Ok(items);
            }
        }
        self.state = next.map_or(PagerState::Done, PagerState::Next);
        Ok(items)
    }
}

/// A cursor's identity: the SHA1 of its JSON form.
fn cursor_digest<C: Serialize>(cursor: &C) -> Option<Sha1Digest> {
    serde_json::to_vec(cursor)
        .ok()
        .map(|json| Sha1Digest::of(&json))
}
