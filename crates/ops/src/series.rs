//! The series of rebalancing cycles, recorded through the `metrics`
//! facade as each stage ends (like `rebalancer_upstream::series` for
//! requests and `rebalancer_applier::series` for PUTs): cycles by outcome,
//! the time of each stage, the last cycle's outcome and time, the last
//! plan's shortfall and peak, the fetch's GETs per lead and a few plain
//! counters. [`describe`] gives every series its HELP text and its start
//! value (counters 0, timestamps 0, plan figures NaN), so "never
//! succeeded" and "no data" cannot be mistaken for healthy; the binary
//! calls it when it serves `/metrics`.

use chrono::{DateTime, Utc};
use rebalancer_applier::CycleOutcome;
use std::time::Duration;

/// Cycles by outcome (counter).
pub const CYCLES: &str = "rebalancer_cycles_total";

/// Seconds per stage of a cycle (histogram, label `stage`).
pub const CYCLE_DURATION: &str = "rebalancer_cycle_duration_seconds";

/// When the last successful cycle ended (unix seconds; 0: none yet).
pub const LAST_SUCCESS: &str = "rebalancer_last_success_timestamp_seconds";

/// When the last cycle of any outcome ended (unix seconds; 0: none yet).
pub const LAST_CYCLE: &str = "rebalancer_last_cycle_timestamp_seconds";

/// 1 for the last cycle's outcome, 0 for the others.
pub const LAST_OUTCOME: &str = "rebalancer_last_cycle_outcome";

/// Unplaceable records after the last plan (NaN: no plan yet).
pub const SHORTFALL: &str = "rebalancer_shortfall_records";

/// Highest agent utilisation after the last plan (NaN: no plan yet).
pub const PEAK: &str = "rebalancer_peak_utilisation";

/// CMS GETs per lead of the last fetch (NaN: no fetch yet).
pub const GETS_PER_LEAD: &str = "rebalancer_cms_gets_per_lead";

/// Malformed 2xx bodies read again (counter).
pub const MALFORMED: &str = "rebalancer_malformed_bodies_retried_total";

/// Leads an apply skipped because their live mapping had drifted (counter).
pub const DRIFTED: &str = "rebalancer_drifted_leads_total";

/// Cycles the journal could not record (counter).
pub const JOURNAL_FAILURES: &str = "rebalancer_journal_write_failures_total";

/// Applies stopped because another process took the journal lease (counter).
pub const LEASE_LOST: &str = "rebalancer_lease_lost_total";

/// Proposals waiting for a person (0 or 1: at most one is open).
pub const PROPOSALS_PENDING: &str = "rebalancer_proposals_pending";

/// Decisions on proposals seen in the journal, by outcome (counter).
pub const DECISIONS: &str = "rebalancer_proposal_decisions_total";

/// Seconds from a plan's proposal to a person's decision (histogram).
pub const DECISION_TIME: &str = "rebalancer_proposal_decision_seconds";

/// Outcomes of a decision, the `outcome` label of [`DECISIONS`].
pub const DECISION_OUTCOMES: [&str; 2] = ["approved", "rejected"];

/// Buckets of [`DECISION_TIME`], seconds: a person answers in minutes to
/// a day.
pub const DECISION_BUCKETS: [f64; 10] = [
    30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 43200.0, 86400.0,
];

/// Stages of a cycle, the `stage` label of [`CYCLE_DURATION`].
pub const STAGES: [&str; 3] = ["fetch", "plan", "apply"];

/// Buckets of [`CYCLE_DURATION`], seconds: a sandbox cycle takes 0.05–0.5 s,
/// a 400k-pair plan 0.1 s, a 4M one 1.5–4 s; applies run at the write
/// budget (minutes for thousands of PUTs).
pub const CYCLE_BUCKETS: [f64; 13] = [
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];

/// A cycle ended at `ended` with `outcome`: counted, and the last-cycle
/// gauges set.
pub fn cycle_ended(outcome: CycleOutcome, ended: DateTime<Utc>) {
    metrics::counter!(CYCLES, "outcome" => outcome.as_str()).increment(1);
    for o in CycleOutcome::ALL {
        metrics::gauge!(LAST_OUTCOME, "outcome" => o.as_str())
            .set(f64::from(u8::from(o == outcome)));
    }
    metrics::gauge!(LAST_CYCLE).set(unix_seconds(ended));
}

/// The time of one stage of a cycle.
pub fn stage_took(stage: &'static str, took: Duration) {
    metrics::histogram!(CYCLE_DURATION, "stage" => stage).record(took.as_secs_f64());
}

/// The figures of a cycle's plan.
pub fn planned(shortfall: f64, peak_utilisation: f64) {
    metrics::gauge!(SHORTFALL).set(shortfall);
    metrics::gauge!(PEAK).set(peak_utilisation);
}

/// The figures of a cycle's fetch.
pub fn fetched(gets_per_lead: Option<f64>) {
    if let Some(per_lead) = gets_per_lead {
        metrics::gauge!(GETS_PER_LEAD).set(per_lead);
    }
}

/// Add `n` to one of this module's plain counters ([`MALFORMED`],
/// [`DRIFTED`], [`JOURNAL_FAILURES`], [`LEASE_LOST`]).
pub fn count(counter: &'static str, n: u64) {
    metrics::counter!(counter).increment(n);
}

fn unix_seconds(t: DateTime<Utc>) -> f64 {
    t.timestamp_millis() as f64 / 1000.0
}

/// Whether a proposal waits for a person now.
pub fn pending(waiting: bool) {
    metrics::gauge!(PROPOSALS_PENDING).set(f64::from(u8::from(waiting)));
}

/// A person decided (`outcome`: approved or rejected) `took` after the
/// plan was proposed.
pub fn decided(outcome: &'static str, took: Duration) {
    metrics::counter!(DECISIONS, "outcome" => outcome).increment(1);
    metrics::histogram!(DECISION_TIME).record(took.as_secs_f64());
}

/// A cycle succeeded at `ended`.
pub fn succeeded(ended: DateTime<Utc>) {
    metrics::gauge!(LAST_SUCCESS).set(unix_seconds(ended));
}

/// HELP texts of this module's series, and each at its start value.
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(CYCLES, "Rebalancing cycles by outcome: applied, applied_with_failures, interrupted, no_changes, planned (dry run), blocked (the blast-radius guard refused the plan), skipped (another process holds the journal lease), failed.");
    describe_histogram!(
        CYCLE_DURATION,
        Unit::Seconds,
        "Time of each stage of a cycle (stage: fetch, plan, apply)."
    );
    describe_gauge!(
        LAST_SUCCESS,
        Unit::Seconds,
        "Unix time the last successful cycle ended; 0 until one has."
    );
    describe_gauge!(
        LAST_CYCLE,
        Unit::Seconds,
        "Unix time the last cycle (any outcome) ended; 0 until one has."
    );
    describe_gauge!(
        LAST_OUTCOME,
        "1 for the outcome of the last cycle, 0 for the other outcomes."
    );
    describe_gauge!(SHORTFALL, "Records of demand no eligible agent can take, after the last cycle's plan (NaN until a plan).");
    describe_gauge!(
        PEAK,
        "Highest agent utilisation (0 to 1) after the last cycle's plan (NaN until a plan)."
    );
    describe_gauge!(
        GETS_PER_LEAD,
        "CMS GET requests per lead in the last cycle's fetch (NaN until a fetch)."
    );
    describe_counter!(
        MALFORMED,
        "Upstream reads whose 2xx body was malformed or truncated and was read again."
    );
    describe_counter!(
        DRIFTED,
        "Leads an apply skipped because their live mapping had changed since the plan."
    );
    describe_counter!(JOURNAL_FAILURES, "Cycles the journal could not record.");
    describe_counter!(
        LEASE_LOST,
        "Applies stopped because another process took the journal lease."
    );

    describe_gauge!(
        PROPOSALS_PENDING,
        "Plans waiting in the journal for a person's approval (0 or 1; run.approval)."
    );
    describe_counter!(
        DECISIONS,
        "Decisions on proposed plans seen since this process started, by outcome (approved, rejected)."
    );
    describe_histogram!(
        DECISION_TIME,
        Unit::Seconds,
        "Time from a plan's proposal to a person's decision on it."
    );
    metrics::gauge!(PROPOSALS_PENDING).set(0.0);
    for outcome in DECISION_OUTCOMES {
        metrics::counter!(DECISIONS, "outcome" => outcome).absolute(0);
    }
    let _ = metrics::histogram!(DECISION_TIME);

    for outcome in CycleOutcome::ALL {
        metrics::counter!(CYCLES, "outcome" => outcome.as_str()).absolute(0);
        metrics::gauge!(LAST_OUTCOME, "outcome" => outcome.as_str()).set(0.0);
    }
    for stage in STAGES {
        // Registered, so the family shows with empty buckets.
        let _ = metrics::histogram!(CYCLE_DURATION, "stage" => stage);
    }
    metrics::gauge!(LAST_SUCCESS).set(0.0);
    metrics::gauge!(LAST_CYCLE).set(0.0);
    for gauge in [SHORTFALL, PEAK, GETS_PER_LEAD] {
        metrics::gauge!(gauge).set(f64::NAN);
    }
    for counter in [MALFORMED, DRIFTED, JOURNAL_FAILURES, LEASE_LOST] {
        metrics::counter!(counter).absolute(0);
    }
}
