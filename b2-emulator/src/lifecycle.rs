//! Bucket lifecycle rules: their validation, and the hiding, deleting and cancelling B2 does by
//! them (<https://www.backblaze.com/docs/cloud-storage-lifecycle-rules>).
//!
//! B2 applies the rules in a daily pass, so an action falls due some time after its day count
//! has run out ("hidden after 24-48 hours" for a one-day rule,
//! <https://www.backblaze.com/docs/cloud-storage-configure-and-manage-lifecycle-rules>). The
//! emulator acts at the earliest moment B2 may: exactly `days × 24 h` after the instant the count
//! runs from, without rounding to day boundaries. It does so lazily, before it serves any request
//! made at or after that moment (its clock is the injected time plus the offset moved through
//! `advance_clock`), and it dates what it does at that moment rather than at the request: a
//! hide marker made by a rule has the due time as its `uploadTimestamp`, so a deletion counted
//! from it falls due as it would on B2 however far the clock jumped. A rule set after a count
//! ran out acts when it was set, and its hide marker is dated then.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::Value;

use crate::core::{Emulator, R, bad_request};
use crate::model::{Action, FileRec};

/// One day in milliseconds: B2's day counts are counts of 24 hours.
pub(crate) const DAY_MS: u64 = 86_400_000;

/// "You can set up to 100 Lifecycle Rules on one bucket."
const MAX_RULES: usize = 100;

const HIDE: &str = "daysFromUploadingToHiding";
const DELETE: &str = "daysFromHidingToDeleting";
const CANCEL: &str = "daysFromStartingToCancelingUnfinishedLargeFiles";

/// A checked lifecycle rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rule {
    pub(crate) prefix: String,
    pub(crate) hide_days: Option<u64>,
    pub(crate) delete_days: Option<u64>,
    pub(crate) cancel_days: Option<u64>,
}

/// Checks a `lifecycleRules` value as B2 documents it: a list of at most 100 rules, each with a
/// `fileNamePrefix` and at least one day count, every count null or positive, and no two rules
/// applying to the same file (neither prefix starts with the other).
pub(crate) fn parse_rules(v: &Value) -> R<Vec<Rule>> {
    let Value::Array(items) = v else {
        return Err(bad_request("lifecycleRules must be a list"));
    };
    if items.len() > MAX_RULES {
        return Err(bad_request(format!(
            "a bucket may have at most {MAX_RULES} lifecycle rules"
        )));
    }
    let mut rules: Vec<Rule> = Vec::with_capacity(items.len());
    for item in items {
        let Value::Object(m) = item else {
            return Err(bad_request("each lifecycle rule must be an object"));
        };
        let Some(Value::String(prefix)) = m.get("fileNamePrefix") else {
            return Err(bad_request("each lifecycle rule needs a fileNamePrefix"));
        };
        let days = |field: &str| -> R<Option<u64>> {
            match m.get(field) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => match v.as_u64() {
                    Some(d) if d > 0 => Ok(Some(d)),
                    _ => Err(bad_request(format!(
                        "{field} must be null or a positive number of days"
                    ))),
                },
            }
        };
        let rule = Rule {
            prefix: prefix.clone(),
            hide_days: days(HIDE)?,
            delete_days: days(DELETE)?,
            cancel_days: days(CANCEL)?,
        };
        if rule.hide_days.is_none() && rule.delete_days.is_none() && rule.cancel_days.is_none() {
            return Err(bad_request(format!(
                "the lifecycle rule for prefix {:?} sets no day count, so it would do nothing",
                rule.prefix
            )));
        }
        if let Some(other) = rules
            .iter()
            .find(|r| r.prefix.starts_with(&rule.prefix) || rule.prefix.starts_with(&r.prefix))
        {
            return Err(bad_request(format!(
                "lifecycle rules for prefixes {:?} and {:?} would both apply to the same files",
                other.prefix, rule.prefix
            )));
        }
        rules.push(rule);
    }
    Ok(rules)
}

/// What a rule does to one name.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// Hide the live version with a hide marker dated `at`.
    Hide { at: u64 },
    /// Delete a version that is no longer live.
    Delete(String),
    /// Cancel an unfinished large file.
    Cancel(String),
}

/// `start + days`, in milliseconds.
fn after_days(start: u64, days: u64) -> u64 {
    start.saturating_add(days.saturating_mul(DAY_MS))
}

/// Whether Object Lock keeps `f` from being deleted at `now`, and until when (`None`: until its
/// legal hold is lifted). A lifecycle rule bypasses neither mode of retention.
fn locked_until(f: &FileRec, now: u64) -> Option<Option<u64>> {
    if f.legal_hold == Some(true) {
        return Some(None);
    }
    f.retention
        .as_ref()
        .filter(|r| r.until > now)
        .map(|r| Some(r.until))
}

/// The steps `rule` (in force since `since`) asks for at `now` on the records of one name
/// (listing order: newest first), and when the next one falls due.
fn due_steps(rule: &Rule, since: u64, recs: &[&FileRec], now: u64) -> (Vec<Step>, Option<u64>) {
    let mut steps = Vec::new();
    let mut next: Option<u64> = None;
    let mut at = |due: u64, step: Step, steps: &mut Vec<Step>| {
        if due <= now {
            steps.push(step);
        } else {
            next = Some(next.map_or(due, |n| n.min(due)));
        }
    };
    if let Some(days) = rule.cancel_days {
        for f in recs.iter().filter(|f| f.action == Action::Start) {
            at(
                after_days(f.timestamp, days),
                Step::Cancel(f.id.clone()),
                &mut steps,
            );
        }
    }
    let versions: Vec<&FileRec> = recs
        .iter()
        .copied()
        .filter(|f| f.action != Action::Start)
        .collect();
    if let (Some(days), Some(live)) = (rule.hide_days, versions.first()) {
        // "daysFromUploadingToHiding ... causes files to be hidden automatically after the given
        // number of days": the live version, counted from its upload; a hidden name stays as it is.
        if live.action == Action::Upload {
            // A rule set after the count ran out hides the file when it was set, not earlier.
            let due = after_days(live.timestamp, days).max(since);
            at(due, Step::Hide { at: due }, &mut steps);
        }
    }
    if let Some(days) = rule.delete_days {
        // "A file version counts as hidden when explicitly hidden with b2_hide_file, or when a
        // newer file with the same name is uploaded. ... the file will be deleted the given number
        // of days after it is hidden." The count runs from the upload of the next newer version
        // (an upload or a hide marker). The newest version is the current one and stays.
        for pair in versions.windows(2) {
            let [newer, older] = pair else { continue };
            let due = after_days(newer.timestamp, days);
            match locked_until(older, now) {
                None => at(due, Step::Delete(older.id.clone()), &mut steps),
                // Deletable once the retention ends, if the rule's day count has run out by then.
                Some(Some(until)) => at(due.max(until), Step::Delete(older.id.clone()), &mut steps),
                // Under legal hold: nothing falls due until it is lifted (which touches the name).
                Some(None) => {}
            }
        }
    }
    (steps, next)
}

/// When each name next needs the lifecycle rules applied to it.
#[derive(Debug, Default)]
pub(crate) struct Agenda {
    /// Due time → names (bucket id, file name).
    by_time: BTreeMap<u64, BTreeSet<(String, String)>>,
    /// Name → its due time in `by_time`.
    due_of: HashMap<(String, String), u64>,
    /// Every name of every bucket needs looking at (a fresh or reloaded emulator).
    rescan_all: bool,
}

impl Agenda {
    pub(crate) fn new() -> Self {
        Self {
            rescan_all: true,
            ..Self::default()
        }
    }

    fn unschedule(&mut self, key: &(String, String)) {
        if let Some(t) = self.due_of.remove(key) {
            if let Some(set) = self.by_time.get_mut(&t) {
                set.remove(key);
                if set.is_empty() {
                    self.by_time.remove(&t);
                }
            }
        }
    }

    fn schedule(&mut self, key: (String, String), at: u64) {
        self.unschedule(&key);
        self.due_of.insert(key.clone(), at);
        self.by_time.entry(at).or_default().insert(key);
    }
}

impl Emulator {
    /// Marks every name of a bucket for the lifecycle rules to be applied again (its rules
    /// changed).
    pub(crate) fn lifecycle_rules_changed(&mut self, bucket_id: &str) {
        if let Some(b) = self.state.buckets.get(bucket_id) {
            for (name, _) in b.files.keys() {
                self.state
                    .lifecycle_touched
                    .insert((bucket_id.to_owned(), name.clone()));
            }
        }
    }

    /// Applies the buckets' lifecycle rules to everything due at `now` (the emulator's clock:
    /// injected time plus offset). Returns whether anything changed.
    pub(crate) fn apply_lifecycle(&mut self, now: u64) -> bool {
        if std::mem::take(&mut self.lifecycle.rescan_all) {
            let ids: Vec<String> = self.state.buckets.keys().cloned().collect();
            for id in ids {
                self.lifecycle_rules_changed(&id);
            }
        }
        let mut work: BTreeSet<(String, String)> = self.state.lifecycle_touched.drain().collect();
        while let Some(entry) = self.lifecycle.by_time.first_entry() {
            if *entry.key() > now {
                break;
            }
            for key in entry.remove() {
                self.lifecycle.due_of.remove(&key);
                work.insert(key);
            }
        }
        let mut rules: HashMap<String, Vec<Rule>> = HashMap::new();
        let mut changed = false;
        for key in work {
            self.lifecycle.unschedule(&key);
            let (bucket_id, name) = &key;
            let Some(bucket) = self.state.buckets.get(bucket_id) else {
                continue;
            };
            let since = bucket.lifecycle_rules_since;
            let bucket_rules = rules
                .entry(bucket_id.clone())
                .or_insert_with(|| parse_rules(&bucket.lifecycle_rules).unwrap_or_default());
            // Rules never overlap (see `parse_rules`); the longest prefix would win if they did.
            let Some(rule) = bucket_rules
                .iter()
                .filter(|r| name.starts_with(r.prefix.as_str()))
                .max_by_key(|r| r.prefix.len())
                .cloned()
            else {
                continue;
            };
            // Each round applies what is due; a hide marker can make a deletion due in turn.
            while let Some(bucket) = self.state.buckets.get(bucket_id) {
                let recs: Vec<&FileRec> = bucket
                    .files
                    .range((name.clone(), std::cmp::Reverse(u64::MAX))..)
                    .take_while(|((n, _), _)| n == name)
                    .map(|(_, f)| f)
                    .collect();
                let (steps, next) = due_steps(&rule, since, &recs, now);
                if steps.is_empty() {
                    if let Some(at) = next {
                        self.lifecycle.schedule(key.clone(), at);
                    }
                    break;
                }
                changed = true;
                for step in steps {
                    match step {
                        Step::Hide { at } => {
                            let marker = self.new_hide_marker(bucket_id.clone(), name.clone(), at);
                            self.state.insert_file(marker);
                        }
                        Step::Delete(id) | Step::Cancel(id) => {
                            self.state.remove_file(&id);
                        }
                    }
                }
            }
        }
        // Names touched by the steps above were carried through to a settled state.
        self.state.lifecycle_touched.clear();
        if changed {
            self.dirty = true;
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rules_are_checked_as_documented() {
        let ok = json!([
            {"fileNamePrefix": "photos/", "daysFromHidingToDeleting": 1, "daysFromUploadingToHiding": null},
            {"fileNamePrefix": "videos/", "daysFromStartingToCancelingUnfinishedLargeFiles": 7},
        ]);
        let rules = parse_rules(&ok).unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].delete_days, Some(1));
        assert_eq!(rules[0].hide_days, None);
        assert_eq!(rules[1].cancel_days, Some(7));
        for bad in [
            json!({"fileNamePrefix": ""}),
            json!([{"daysFromHidingToDeleting": 1}]),
            json!([{"fileNamePrefix": "a/"}]),
            json!([{"fileNamePrefix": "a/", "daysFromHidingToDeleting": null}]),
            json!([{"fileNamePrefix": "a/", "daysFromHidingToDeleting": 0}]),
            json!([{"fileNamePrefix": "a/", "daysFromUploadingToHiding": -1}]),
            json!([{"fileNamePrefix": "a/", "daysFromUploadingToHiding": 1.5}]),
            json!([{"fileNamePrefix": "a/", "daysFromUploadingToHiding": "1"}]),
            json!([
                {"fileNamePrefix": "photos/", "daysFromHidingToDeleting": 1},
                {"fileNamePrefix": "photos/kittens/", "daysFromHidingToDeleting": 1},
            ]),
            json!([
                {"fileNamePrefix": "", "daysFromHidingToDeleting": 1},
                {"fileNamePrefix": "logs/", "daysFromUploadingToHiding": 1},
            ]),
            json!([
                {"fileNamePrefix": "x", "daysFromHidingToDeleting": 1},
                {"fileNamePrefix": "x", "daysFromUploadingToHiding": 1},
            ]),
        ] {
            assert!(parse_rules(&bad).is_err(), "{bad}");
        }
        let many: Vec<Value> = (0..101)
            .map(|i| json!({"fileNamePrefix": format!("p{i:03}/"), "daysFromHidingToDeleting": 1}))
            .collect();
        assert!(parse_rules(&Value::Array(many[..100].to_vec())).is_ok());
        assert!(parse_rules(&Value::Array(many)).is_err());
    }
}
