//! [`ApplyError`]: why an `apply`, `resume`, `rollback`, `history` or `show`
//! could not do its work. Per-lead failures (a PUT the CMS refused) are not
//! errors: they are in the run's report and journal, and the run goes on.
//! Every message says what failed and what to do.

use rebalancer_upstream::UpstreamError;

use crate::admission::{Refusal, WritePath};
use crate::journal::JournalLocation;
use crate::report::RunOutcome;

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The journal could not be opened, migrated, read or written. A write
    /// failure stops the run before its next PUT: nothing is ever sent that
    /// could not be recorded first.
    /// `location` is shown masked (no password), `fix` depends on the
    /// backend.
    #[error("journal {location}: {detail}; fix: {fix}")]
    Journal {
        location: String,
        detail: String,
        fix: &'static str,
    },

    /// Another apply holds the journal's lease.
    #[error("another apply holds the journal (lease held by {holder} until {expires_at}); fix: wait for it to finish, or, if that process is gone, wait until the lease expires (apply.lease_secs) and run again")]
    LeaseHeld { holder: String, expires_at: String },

    /// The lease was taken over while this run went on (it could not be
    /// renewed in time); the run stopped before its next PUT.
    #[error("the journal lease was lost during the run (another process took it over after it expired); stopped before the next PUT; fix: raise apply.lease_secs if the host is slow, then `resume`")]
    LeaseLost,

    /// The live blast-radius check failed, or the plan itself is blocked.
    #[error("blocked: the apply would unassign {unassigns} of the {current_pairs} live agent-lead pairs, more than plan.max_unassign_share = {max_share}; nothing was sent; fix: check the upstream data (an outage can look like mass inactivity), or pass --allow-mass-unassign if this is intended")]
    Blocked {
        unassigns: usize,
        current_pairs: usize,
        max_share: f64,
    },

    /// The plan cannot be applied as it is.
    #[error("the plan cannot be applied: {0}; fix: make the plan again with `rebalancer plan`")]
    InvalidPlan(String),

    /// Plan admission ([`crate::admit`]) refused the plan before anything
    /// was sent: `what` is the write path (and the run it resumes or rolls
    /// back), `refusal` names what differs and the fix.
    #[error("{what} refused, nothing was sent: {refusal}")]
    Refused { what: String, refusal: Refusal },

    /// A setting of `ApplyConfig` is out of range.
    #[error("invalid setting {key}: {detail}")]
    InvalidConfig { key: &'static str, detail: String },

    #[error("the journal has no run {0}; fix: `rebalancer history` lists the runs")]
    NoSuchRun(i64),

    /// `resume` without a run id found no run to continue (the reason says
    /// what the latest run was, and which older unfinished runs it passed
    /// over).
    #[error("nothing to resume: {0}")]
    NothingToResume(String),

    #[error("run {run} ended {outcome}; only an interrupted or killed (running) run can be resumed; fix: make a new plan and apply it")]
    NotResumable { run: i64, outcome: RunOutcome },

    #[error("run {run} cannot be rolled back: {reason}")]
    NotRollbackable { run: i64, reason: String },

    /// A fatal upstream error (credentials or permissions refused): the run
    /// stopped and is recorded as failed.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
}

impl ApplyError {
    /// `refusal` of the plan of `path` (resuming or rolling back `run`).
    pub fn refused(path: WritePath, run: Option<i64>, refusal: Refusal) -> Self {
        let what = match run {
            Some(run) => format!("{path} of run {run}"),
            None => path.to_string(),
        };
        ApplyError::Refused { what, refusal }
    }

    pub(crate) fn journal(location: &JournalLocation, detail: impl std::fmt::Display) -> Self {
        let fix = match location {
            JournalLocation::Sqlite(_) => "check that the file (apply.journal) is on a writable local disk with free space, and that no other program locks it",
            JournalLocation::Postgres(_) => "check journal.url: the PostgreSQL server must be reachable from this host (plain TCP), the database must exist, and its user must be allowed to create tables in it",
        };
        ApplyError::Journal {
            location: location.to_string(),
            detail: detail.to_string(),
            fix,
        }
    }
}
