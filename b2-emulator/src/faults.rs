//! Faults injected on demand, reproducible from a seed.

use serde_json::{Value, json};

/// A small deterministic random number generator (SplitMix64).
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The generator's position, to continue from after a restart.
    pub(crate) fn position(&self) -> u64 {
        self.0
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// True with probability `percent`/100.
    pub(crate) fn chance(&mut self, percent: u8) -> bool {
        percent >= 100 || (self.next_u64() % 100) < u64::from(percent)
    }

    /// `n` lowercase hex digits.
    pub(crate) fn hex(&mut self, n: usize) -> String {
        let mut s = String::with_capacity(n);
        while s.len() < n {
            s.push_str(&format!("{:016x}", self.next_u64()));
        }
        s.truncate(n);
        s
    }

    /// `n` letters and digits.
    pub(crate) fn alnum(&mut self, n: usize) -> String {
        const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        (0..n)
            .map(|_| {
                let i = usize::try_from(self.next_u64() % CHARS.len() as u64).unwrap_or(0);
                char::from(CHARS.get(i).copied().unwrap_or(b'A'))
            })
            .collect()
    }
}

/// What an injected fault does.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FaultAction {
    /// Answer with this status and B2's error body for it (500, 503, 429, 408...).
    Status {
        /// The HTTP status.
        status: u16,
        /// `Retry-After` in seconds, if any.
        retry_after: Option<u64>,
    },
    /// Answer 401 `expired_auth_token`, as if the account token had expired.
    ExpireToken,
    /// Close the connection while the request body is still being received.
    ResetRequestBody,
    /// Send the response head and part of the body, then close the connection.
    ResetResponseBody,
    /// Announce the full `Content-Length` but send only part of the body, then close cleanly.
    TruncateResponse,
    /// Wait this many milliseconds before answering.
    Delay {
        /// How long to wait.
        ms: u64,
    },
}

/// Which requests a fault applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FaultTarget {
    /// `b2_upload_file` and `b2_upload_part`.
    Uploads,
    /// Downloads by id and by name.
    Downloads,
    /// Every JSON call (all but uploads and downloads).
    Calls,
    /// Every request.
    All,
    /// One call by its name, e.g. `b2_list_file_names`.
    Call(String),
}

impl FaultTarget {
    fn matches(&self, call: &str) -> bool {
        let upload = call == "b2_upload_file" || call == "b2_upload_part";
        let download = call.starts_with("b2_download_file");
        match self {
            Self::Uploads => upload,
            Self::Downloads => download,
            Self::Calls => !upload && !download,
            Self::All => true,
            Self::Call(name) => name == call,
        }
    }
}

/// One fault rule: what to do, to which requests, how often.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FaultRule {
    /// What happens.
    pub action: FaultAction,
    /// Which requests.
    pub target: FaultTarget,
    /// Fire on this percentage of matching requests (100 = every one).
    pub percent: u8,
    /// Fire at most this many times (`None` = no limit).
    pub remaining: Option<u32>,
}

impl FaultRule {
    /// A rule firing on every matching request, without limit.
    pub fn new(action: FaultAction, target: FaultTarget) -> Self {
        Self {
            action,
            target,
            percent: 100,
            remaining: None,
        }
    }

    /// Fires only on the next `n` matching requests.
    pub fn with_count(mut self, n: u32) -> Self {
        self.remaining = Some(n);
        self
    }

    /// Fires on `percent` of matching requests, chosen by the seeded generator.
    pub fn with_percent(mut self, percent: u8) -> Self {
        self.percent = percent.min(100);
        self
    }

    /// Parses the JSON form used by the `/__emulator/faults` endpoint.
    ///
    /// `{"action": "status", "status": 503, "retryAfter": 2, "target": "uploads", "count": 2,
    /// "percent": 50}`; actions: `status`, `expire_token`, `reset_request_body`,
    /// `reset_response_body`, `truncate_response`, `delay` (with `ms`); targets: `uploads`,
    /// `downloads`, `calls`, `all`, or a call name.
    pub fn from_json(v: &Value) -> Result<Self, String> {
        let action = match v.get("action").and_then(Value::as_str) {
            Some("status") => FaultAction::Status {
                status: v
                    .get("status")
                    .and_then(Value::as_u64)
                    .and_then(|s| u16::try_from(s).ok())
                    .filter(|s| (400..600).contains(s))
                    .ok_or("status must be a number from 400 to 599")?,
                retry_after: v.get("retryAfter").and_then(Value::as_u64),
            },
            Some("expire_token") => FaultAction::ExpireToken,
            Some("reset_request_body") => FaultAction::ResetRequestBody,
            Some("reset_response_body") => FaultAction::ResetResponseBody,
            Some("truncate_response") => FaultAction::TruncateResponse,
            Some("delay") => FaultAction::Delay {
                ms: v
                    .get("ms")
                    .and_then(Value::as_u64)
                    .ok_or("delay needs ms")?,
            },
            _ => return Err("unknown or missing action".into()),
        };
        let target = match v.get("target").and_then(Value::as_str).unwrap_or("all") {
            "uploads" => FaultTarget::Uploads,
            "downloads" => FaultTarget::Downloads,
            "calls" => FaultTarget::Calls,
            "all" => FaultTarget::All,
            other => FaultTarget::Call(other.to_owned()),
        };
        let mut rule = Self::new(action, target);
        if let Some(p) = v.get("percent").and_then(Value::as_u64) {
            rule = rule.with_percent(u8::try_from(p.min(100)).unwrap_or(100));
        }
        if let Some(n) = v.get("count").and_then(Value::as_u64) {
            rule = rule.with_count(u32::try_from(n).unwrap_or(u32::MAX));
        }
        Ok(rule)
    }
}

/// The rules in force and the generator that decides percentages.
#[derive(Debug)]
pub(crate) struct Faults {
    rules: Vec<FaultRule>,
    pub(crate) rng: Rng,
}

impl Faults {
    pub(crate) fn new(seed: u64) -> Self {
        Self {
            rules: Vec::new(),
            rng: Rng::new(seed ^ 0x5EED_FA17),
        }
    }

    pub(crate) fn add(&mut self, rule: FaultRule) {
        self.rules.push(rule);
    }

    pub(crate) fn clear(&mut self) {
        self.rules.clear();
    }

    /// The action to apply to a request for `call`, if a rule fires.
    pub(crate) fn pick(&mut self, call: &str) -> Option<FaultAction> {
        let rng = &mut self.rng;
        let mut fired = None;
        for rule in &mut self.rules {
            if rule.remaining == Some(0) || !rule.target.matches(call) {
                continue;
            }
            if !rng.chance(rule.percent) {
                continue;
            }
            if let Some(n) = rule.remaining.as_mut() {
                *n -= 1;
            }
            fired = Some(rule.action.clone());
            break;
        }
        self.rules.retain(|r| r.remaining != Some(0));
        fired
    }

    pub(crate) fn to_json(&self) -> Value {
        json!(self.rules.len())
    }
}

/// A fault the HTTP layer must carry out (the core cannot: it concerns the connection).
///
/// Found in a response's extensions (from [`crate::Emulator::handle`]) or on a
/// [`crate::PendingUpload`] / [`crate::Download`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HttpFault {
    /// Close the connection while the request body is still being received.
    ResetRequestBody,
    /// Send the head and part of the body, then reset the connection.
    ResetResponseBody,
    /// Send part of the body under the full `Content-Length`, then close.
    TruncateResponse,
    /// Wait this many milliseconds before answering.
    Delay(u64),
}
