//! The Prometheus series the applier records, through the `metrics` facade
//! (whatever recorder the binary installs; none: nothing is kept), as each
//! PUT ends rather than when an apply ends:
//!
//! - `rebalancer_puts_total{outcome="sent"}`: PUTs that went out (after the
//!   write budget's wait and the lease's fence);
//! - `rebalancer_puts_total{outcome="failed"}`: of those, the ones refused
//!   or left ambiguous (an ambiguous PUT read back as applied still counts
//!   here: its answer was a failure);
//! - `rebalancer_moves_applied_total`: assignments and unassignments made,
//!   by PUTs answered or read back as applied.
//!
//! [`describe`] gives them HELP texts and registers them at 0.

/// PUTs by outcome.
pub const PUTS: &str = "rebalancer_puts_total";
/// Moves made.
pub const MOVES: &str = "rebalancer_moves_applied_total";

/// HELP texts, and every series at 0.
pub fn describe() {
    metrics::describe_counter!(
        PUTS,
        "CMS PUTs of the applier as each ends: outcome=sent (went out), outcome=failed (of those, refused or left ambiguous)."
    );
    metrics::describe_counter!(
        MOVES,
        "Assignments and unassignments made by PUTs answered or read back as applied."
    );
    for outcome in ["sent", "failed"] {
        metrics::counter!(PUTS, "outcome" => outcome).absolute(0);
    }
    metrics::counter!(MOVES).absolute(0);
}

pub(crate) fn put_sent() {
    metrics::counter!(PUTS, "outcome" => "sent").increment(1);
}

pub(crate) fn put_failed() {
    metrics::counter!(PUTS, "outcome" => "failed").increment(1);
}

pub(crate) fn moves(n: usize) {
    metrics::counter!(MOVES).increment(n as u64);
}
