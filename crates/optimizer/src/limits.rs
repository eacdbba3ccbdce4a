//! Named limits on input numbers and the float tolerances of the planner.
//!
//! The stages are exact integer arithmetic; the limits keep every input
//! integer and every unscaled sum far from `i64::MAX`, so an absurd count
//! upstream (a Zoho counter near `i64::MAX`, a demand of `u64::MAX`)
//! becomes a typed error naming the agent or lead rather than a wrap or a
//! panic. Capacities scaled by the balance stage's exact ratio can still
//! exceed `i64` for headrooms near the limit: that is checked
//! (`check_capacities`) and ends the plan with `OptimizerError::Overflow`
//! (exit 9, naming `plan.solver = "lp"`), never a wrap. The tolerances absorb the float noise of
//! figures derived from exact fractions (and of the LP path).

/// Most records one agent's headroom or one lead's demand may be (10^12).
/// Real figures are in the thousands; anything above is a broken counter.
pub const MAX_RECORDS: i64 = 1_000_000_000_000;

/// Most records all agents' headroom, or all leads' demand, may add up to
/// (2^60). Keeps the unscaled network (and the pair arcs' "unlimited"
/// capacity of `i64::MAX / 4`) clear of overflow.
pub const MAX_TOTAL_RECORDS: i64 = 1 << 60;

/// Slack when comparing a planned flow with `plan.min_flow`: a flow that is
/// `min_flow` up to float rounding of `num/den` still counts.
pub(crate) const FLOW_SLACK: f64 = 1e-12;

/// A float figure (shortfall per lead, peak utilisation) counts as changed
/// only when it moves by more than this: below it is rounding noise of
/// `num/den` conversions.
pub(crate) const FIGURE_NOISE: f64 = 1e-9;

/// A lead counts as short when it misses more than this many records
/// (absorbs the LP path's feasibility tolerance, `1e-7` per row).
pub(crate) const SHORT: f64 = 1e-6;
