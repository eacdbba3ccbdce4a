//! The write-log checks of the write side's tests, on the sandbox's log
//! of every PUT as the server saw it: each change applied once, no empty
//! PUT, a staffed lead never emptied, nobody assigned who may not work
//! ([`check_write_log`]); each change's count ([`effective_changes`]); the
//! write rate in every window ([`faster_than_budget`], [`peak_per_second`]).

use std::collections::{BTreeMap, BTreeSet};

use rebalancer_model::LeadKey;
use rebalancer_sandbox::{Sandbox, WriteRecord};

use crate::sandbox::{may_be_assigned, users};

/// The lead a PUT wrote to.
pub fn lead_key(r: &WriteRecord) -> LeadKey {
    LeadKey {
        campaign_id: r.campaign_id,
        lead_id: r.lead_id,
    }
}

/// The write-log invariants every run must keep.
pub fn check_write_log(sb: &Sandbox, original: &BTreeMap<LeadKey, BTreeSet<String>>) {
    let users = users(sb);
    let log = sb.write_log();
    let mut applied: BTreeMap<(LeadKey, String, bool), usize> = BTreeMap::new();
    for r in &log {
        assert!(
            !(r.assigned.is_empty() && r.unassigned.is_empty()),
            "an empty PUT: {r:?}"
        );
        if !r.applied {
            continue;
        }
        if !original[&lead_key(r)].is_empty() {
            assert!(
                !r.assigned_after.is_empty(),
                "a staffed lead went empty: {r:?}"
            );
        }
        for a in &r.assigned {
            assert!(
                may_be_assigned(&users[a]),
                "{a} may not work but was assigned: {r:?}"
            );
            *applied.entry((lead_key(r), a.clone(), true)).or_default() += 1;
        }
        for u in &r.unassigned {
            *applied.entry((lead_key(r), u.clone(), false)).or_default() += 1;
        }
    }
    let twice: Vec<_> = applied.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "applied twice: {twice:?}");
}

/// Each (lead, agent, assign?) the sandbox applied, with how often it
/// really changed the lead, from `original` (the mapping before the
/// writes).
pub fn effective_changes(
    log: &[WriteRecord],
    original: &BTreeMap<LeadKey, BTreeSet<String>>,
) -> BTreeMap<(LeadKey, String, bool), usize> {
    let mut state = original.clone();
    let mut changes = BTreeMap::new();
    for w in log.iter().filter(|w| w.applied) {
        let before = state.entry(lead_key(w)).or_default().clone();
        let after: BTreeSet<String> = w.assigned_after.iter().cloned().collect();
        for u in after.difference(&before) {
            *changes.entry((lead_key(w), u.clone(), true)).or_default() += 1;
        }
        for u in before.difference(&after) {
            *changes.entry((lead_key(w), u.clone(), false)).or_default() += 1;
        }
        state.insert(lead_key(w), after);
    }
    changes
}

/// The most writes in any window of one second.
pub fn peak_per_second(times: &[f64]) -> usize {
    (0..times.len())
        .map(|i| {
            times[i..]
                .iter()
                .take_while(|t| **t < times[i] + 1.0)
                .count()
        })
        .max()
        .unwrap_or(0)
}

/// Writes per second between the first write after the burst and the last
/// (a figure for the record: it depends on how fast this machine is).
pub fn steady_rate(times: &[f64], burst: usize) -> f64 {
    let t = &times[burst..];
    (t.len() - 1) as f64 / (t[t.len() - 1] - t[0])
}

/// The first pair of writes, `k` apart in the log, closer in time than a
/// budget of `per_second` with `burst` allows: `k` writes need at least
/// `(k - burst) / per_second` seconds (`slack` absorbs the sandbox's clock
/// reading after the limiter's). Holds whatever the machine's load: load
/// only spreads writes out.
pub fn faster_than_budget(
    times: &[f64],
    per_second: f64,
    burst: usize,
    slack: f64,
) -> Option<(usize, usize, f64)> {
    for i in 0..times.len() {
        for j in i + burst + 1..times.len() {
            let least = (j - i - burst) as f64 / per_second - slack;
            if times[j] - times[i] < least {
                return Some((i, j, times[j] - times[i]));
            }
        }
    }
    None
}
