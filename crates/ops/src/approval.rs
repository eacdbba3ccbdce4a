//! `run.approval`: which plans wait for a person before `run` writes them
//! (`never`, `always`, or `large`: more moves than
//! `run.approval_large_moves`), and how often a waiting `run` looks for an
//! approved one (`run.approval_poll`). Read at load (settings' `[run]`
//! check) and when `run` starts, by [`Approval::from_keys`] and [`poll`].
//! [`Watch`] turns what the journal says of the proposals into the
//! proposal metrics (`series::pending`, `series::decided`).

use crate::schedule::ScheduleError;
use crate::series;
use crate::settings::RunKeys;
use rebalancer_applier::proposals::{self, ProposalState};
use rebalancer_applier::JournalLocation;
use rebalancer_model::Plan;
use std::time::Duration;

/// Longest `run.approval_poll`: an hour (a longer wait is the schedule's).
pub const MAX_POLL: Duration = Duration::from_secs(3600);

/// `run.approval_poll`: how often `run`, between cycles, reads the journal
/// for an approved plan to apply at once; zero: only at the next cycle.
pub fn poll(keys: &RunKeys) -> Result<Duration, ScheduleError> {
    let err = |problem: String| ScheduleError {
        what: "run.approval_poll".into(),
        value: keys.approval_poll.clone(),
        problem,
    };
    let d = humantime::parse_duration(keys.approval_poll.trim()).map_err(|e| {
        err(format!(
            "is not a duration ({e}); write it like \"5s\" or \"0s\" (only at the next cycle)"
        ))
    })?;
    if d > MAX_POLL {
        return Err(err("is longer than an hour; write at most \"1h\"".into()));
    }
    Ok(d)
}

/// Follows the journal's proposals for the metrics: whether one is
/// pending, and each decision made since this process started (counted
/// once, with its time from proposal to decision).
#[derive(Debug, Default)]
pub struct Watch {
    /// The newest decided proposal already seen; `None` until the first
    /// look, which counts nothing (decisions made before this process
    /// started are not this process's to count).
    seen: Option<i64>,
}

impl Watch {
    /// Read the newest proposals and update the metrics; a journal that
    /// cannot be read leaves them as they were (the cycle reports it).
    pub fn look(&mut self, journal: &JournalLocation) {
        let recent = match proposals::list(journal, None, 50) {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, "the proposals could not be read for the metrics");
                return;
            }
        };
        series::pending(recent.iter().any(|p| p.state == ProposalState::Pending));
        let decided = |p: &&proposals::Proposal| p.decided_at.is_some();
        let newest = recent.iter().filter(decided).map(|p| p.id).max();
        let Some(seen) = self.seen else {
            self.seen = Some(newest.unwrap_or(0));
            return;
        };
        for p in recent.iter().filter(decided).filter(|p| p.id > seen) {
            let outcome = match p.state {
                ProposalState::Rejected => "rejected",
                _ => "approved",
            };
            series::decided(outcome, decision_time(p));
        }
        self.seen = Some(newest.unwrap_or(seen).max(seen));
    }
}

/// From proposal to decision (zero when a time does not parse).
fn decision_time(p: &proposals::Proposal) -> Duration {
    let at = |t: &str| chrono::DateTime::parse_from_rfc3339(t).ok();
    match (at(&p.proposed_at), p.decided_at.as_deref().and_then(at)) {
        (Some(a), Some(b)) => (b - a).to_std().unwrap_or_default(),
        _ => Duration::ZERO,
    }
}

/// Which plans wait for approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Approval {
    /// Every plan that passes the gates is applied.
    #[default]
    Never,
    /// Every plan with changes waits.
    Always,
    /// Plans of more than this many moves wait.
    Large(usize),
}

impl Approval {
    /// `run.approval` with `run.approval_large_moves`.
    pub fn from_keys(keys: &RunKeys) -> Result<Approval, ScheduleError> {
        match keys.approval.trim() {
            "never" => Ok(Approval::Never),
            "always" => Ok(Approval::Always),
            "large" => Ok(Approval::Large(
                usize::try_from(keys.approval_large_moves).unwrap_or(usize::MAX),
            )),
            other => Err(ScheduleError {
                what: "run.approval".into(),
                value: other.into(),
                problem: "is not a policy; write \"never\", \"always\" or \"large\" (with run.approval_large_moves)".into(),
            }),
        }
    }

    /// Whether `plan` waits for a person.
    pub fn needs(self, plan: &Plan) -> bool {
        let moves = plan.changes.len();
        match self {
            Approval::Never => false,
            Approval::Always => moves > 0,
            Approval::Large(n) => moves > n,
        }
    }
}
