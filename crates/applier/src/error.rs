//! [`ApplyError`]: why an `apply`, `resume`, `rollback`, `history` or `show`
//! could not do its work. Per-lead failures (a PUT the CMS refused) are not
//! errors: they are in the run's report and journal, and the run goes on.
//! Every message says what failed and what to do.

use rebalancer_upstream::UpstreamError;

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

    /// The plan's snapshot is older than `apply.max_plan_age_secs`.
    #[error("the plan was made from a snapshot fetched at {fetched_at}, {age_secs} s ago, more than apply.max_plan_age_secs = {max_secs}; fix: fetch and plan again")]
    PlanTooOld {
        fetched_at: String,
        age_secs: u64,
        max_secs: u64,
    },

    /// A setting of `ApplyConfig` is out of range.
    #[error("invalid setting {key}: {detail}")]
    InvalidConfig { key: &'static str, detail: String },

    #[error("the journal has no run {0}; fix: `rebalancer history` lists the runs")]
    NoSuchRun(i64),

    #[error("the journal has no interrupted or killed run to resume")]
    NothingToResume,

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
