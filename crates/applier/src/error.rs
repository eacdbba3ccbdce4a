//! [`ApplyError`]: why an `apply`, `resume`, `rollback`, `history` or `show`
//! could not do its work. Per-lead failures (a PUT the CMS refused) are not
//! errors: they are in the run's report and journal, and the run goes on.
//! Every message says what failed and what to do.

use rebalancer_upstream::UpstreamError;

use crate::admission::{Refusal, WritePath};
use crate::journal::location::JournalLocation;
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

    /// The lease was taken over while this run went on (it expired by the
    /// journal's clock: this process paused or could not renew it); the
    /// run stopped before its next PUT and wrote nothing more.
    #[error("the journal lease was lost to {holder} at {at} (it expired by the journal's clock while this process was paused or could not renew it); this run stopped before its next PUT and sent nothing more; fix: the new holder's `rebalancer resume` finishes the run (what was pending is read back, never sent twice); raise apply.lease_secs if this host pauses for long")]
    LeaseLost { holder: String, at: String },

    /// The journal confirmed the lease just before a PUT, but that took so
    /// long that it may run out before the PUT is sent: nothing was sent.
    #[error("the journal lease could not be confirmed in time before a PUT (the journal answered slowly or this process paused); nothing more was sent; fix: `rebalancer resume` finishes the run; raise apply.lease_secs if the journal is slow")]
    LeaseExpiring,

    /// A read-only command found the journal at an older schema version;
    /// it does not migrate (a read-only role must be enough to read).
    #[error("journal {location}: at schema version {found}, and this rebalancer reads version {current}; nothing was changed; fix: run a writing command once (`rebalancer apply`, `resume` or `run`, with a role that may alter the tables), which migrates it")]
    JournalNeedsMigration {
        location: String,
        found: u32,
        current: u32,
    },

    /// The journal holds something the program never writes (a loop of
    /// run parents): it was edited by hand or is damaged.
    #[error("journal {location}: {detail}; nothing was sent; fix: restore the journal from a backup, or correct the `parent` column of the runs named")]
    CorruptJournal { location: String, detail: String },

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

    #[error("the journal has no proposal {0}; fix: `rebalancer proposals` lists them")]
    NoSuchProposal(i64),

    /// Approving or rejecting a proposal that is no longer pending.
    #[error("proposal {id} is {state}, no longer pending: nothing was changed")]
    NotPending {
        id: i64,
        state: crate::proposals::ProposalState,
    },

    /// `resume` without a run id found no run to continue (the reason says
    /// what the latest run was, and which older unfinished runs it passed
    /// over).
    #[error("nothing to resume: {why}")]
    NothingToResume {
        why: String,
        /// The newest older unfinished run, which naming resumes all the
        /// same (the caller knows the command that does).
        older: Option<i64>,
    },

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
            JournalLocation::Postgres(_) => "check journal.url: the PostgreSQL server must be reachable from this host, its certificate trusted when TLS is used (sslmode, sslrootcert), the database must exist, and its user must be allowed to create tables in it",
        };
        ApplyError::Journal {
            location: location.to_string(),
            detail: detail.to_string(),
            fix,
        }
    }
}
