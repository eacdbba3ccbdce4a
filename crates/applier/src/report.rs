//! What a run tells its caller and what the journal shows later: the
//! [`RunReport`] of one `apply` / `resume` / `rollback`, and the records
//! `history` and `show` read back ([`RunRecord`], [`LeadRecord`],
//! [`PutRecord`], [`RunDetail`]). Plain data: rendering is the binary's job.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use rebalancer_model::LeadKey;
use serde::{Deserialize, Serialize};

/// What started a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    /// A plan applied for the first time.
    Apply,
    /// The continuation of an interrupted or killed run (`parent`).
    Resume,
    /// The inverse of what a run and its resumptions changed (`parent`).
    Rollback,
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    /// Every lead was handled; none failed.
    Completed,
    /// Every lead was handled; some PUTs were refused (see the leads).
    CompletedWithFailures,
    /// Stopped on request between PUTs; resumable.
    Interrupted,
    /// Stopped by a fatal error (credentials refused, journal unwritable,
    /// lease lost).
    Failed,
    /// Not ended: in progress, or its process was killed (resumable).
    Running,
}

/// Where one lead ended up in a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeadState {
    /// Every PUT the lead needed was applied.
    Done,
    /// The live mapping already was what the plan wants; nothing sent.
    Unchanged,
    /// The live mapping differed from the plan's snapshot
    /// (`apply.on_drift = "skip"`): left alone.
    Drifted,
    /// The live mapping had drifted (`apply.on_drift = "rebase"`): only the
    /// plan's assigns still missing and unassigns still present were sent.
    Rebased,
    /// A PUT was refused (400/404, throttled past the retries, ...) or the
    /// lead could not be read; the detail says why.
    Failed,
    /// Every change of the lead was held back by the re-checks (inactive or
    /// over-allowance agents, keeping the lead staffed).
    Skipped,
    /// Started but not finished (interrupted between two PUTs of the lead,
    /// or the process was killed); `resume` picks it up.
    Pending,
}

/// Where one PUT stands in the journal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PutState {
    /// Recorded before it was sent; its outcome is unknown (the process
    /// may have stopped between the row and the answer).
    Pending,
    /// The CMS answered with the change applied.
    Applied,
    /// The CMS refused it.
    Failed,
    /// It may or may not have been applied; being read back.
    Ambiguous,
    /// Read back: `applied` says whether it took effect.
    Resolved,
    /// The apply was stopped while it waited for the write budget: never
    /// sent.
    Unsent,
}

impl PutState {
    /// Whether its outcome is still unknown (`resume` reads it back).
    pub fn is_unknown(self) -> bool {
        matches!(self, PutState::Pending | PutState::Ambiguous)
    }
}

/// How a `run` cycle ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CycleOutcome {
    /// Its apply completed.
    Applied,
    /// Its apply ended with failed PUTs or leads.
    AppliedWithFailures,
    /// Its apply was stopped by a signal (resumable).
    Interrupted,
    /// The plan changed nothing.
    NoChanges,
    /// A dry run: planned, nothing written.
    Planned,
    /// The plan was BLOCKED by a safety guard: nothing written.
    Blocked,
    /// Another process held the journal's lease: nothing written.
    Skipped,
    /// Its plan waits for a person's approval (`run.approval`): nothing
    /// written.
    AwaitingApproval,
    /// Its plan's changes were rejected by a person: nothing written
    /// until the plan changes.
    Rejected,
    /// An error ended it (the detail says which).
    #[default]
    Failed,
}

impl CycleOutcome {
    /// Every outcome, in the order metrics and docs list them.
    pub const ALL: [CycleOutcome; 10] = [
        CycleOutcome::Applied,
        CycleOutcome::AppliedWithFailures,
        CycleOutcome::Interrupted,
        CycleOutcome::NoChanges,
        CycleOutcome::Planned,
        CycleOutcome::Blocked,
        CycleOutcome::Skipped,
        CycleOutcome::AwaitingApproval,
        CycleOutcome::Rejected,
        CycleOutcome::Failed,
    ];

    /// Whether the cycle ended well: the engine fetched and planned, and
    /// whatever it had to send went out (a plan that waits for a person, or
    /// was rejected, counts: the engine is healthy). The one definition of
    /// `run`'s readiness, its last-success metric and the console's "last
    /// success".
    pub fn is_success(self) -> bool {
        !matches!(
            self,
            CycleOutcome::Failed
                | CycleOutcome::Blocked
                | CycleOutcome::Interrupted
                | CycleOutcome::AppliedWithFailures
        )
    }
}

/// Whether a `run` cycle may write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CycleMode {
    /// It applies what it plans.
    #[default]
    Apply,
    /// `run --dry-run`: it plans only.
    DryRun,
}

impl LeadState {
    /// States `resume` does not revisit.
    pub fn is_final(self) -> bool {
        !matches!(self, LeadState::Pending | LeadState::Failed)
    }
}

macro_rules! text_enum {
    ($ty:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $ty {
            /// The snake_case name, as in JSON and in the journal.
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $text),+ }
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        /// Compares with its snake_case name (tests and filters read
        /// better as `state == "applied"`).
        impl PartialEq<&str> for $ty {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
        impl FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($ty::$variant),)+
                    other => Err(format!("unknown {} `{other}`", stringify!($ty))),
                }
            }
        }
    };
}

pub(crate) use text_enum;

text_enum!(RunKind { Apply => "apply", Resume => "resume", Rollback => "rollback" });
text_enum!(RunOutcome {
    Completed => "completed",
    CompletedWithFailures => "completed_with_failures",
    Interrupted => "interrupted",
    Failed => "failed",
    Running => "running",
});
text_enum!(PutState {
    Pending => "pending",
    Applied => "applied",
    Failed => "failed",
    Ambiguous => "ambiguous",
    Resolved => "resolved",
    Unsent => "unsent",
});
text_enum!(CycleOutcome {
    Applied => "applied",
    AppliedWithFailures => "applied_with_failures",
    Interrupted => "interrupted",
    NoChanges => "no_changes",
    Planned => "planned",
    Blocked => "blocked",
    Skipped => "skipped",
    AwaitingApproval => "awaiting_approval",
    Rejected => "rejected",
    Failed => "failed",
});
text_enum!(CycleMode { Apply => "apply", DryRun => "dry_run" });
text_enum!(LeadState {
    Done => "done",
    Unchanged => "unchanged",
    Drifted => "drifted",
    Rebased => "rebased",
    Failed => "failed",
    Skipped => "skipped",
    Pending => "pending",
});

/// One lead's outcome in a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LeadReport {
    pub lead: LeadKey,
    pub state: LeadState,
    /// What was sent or why not (drift, re-check skips, the server's
    /// message), for a person.
    pub detail: String,
}

/// What one `apply`, `resume` or `rollback` did.
#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    /// The run's id in the journal.
    pub run: i64,
    pub kind: RunKind,
    pub outcome: RunOutcome,
    /// PUTs sent (each counted once, whatever the transport retried).
    pub puts_sent: u64,
    /// PUTs sent again after an ambiguous failure was read back.
    pub puts_retried: u64,
    /// Leads left alone because their live mapping had drifted.
    pub skipped_drift: usize,
    /// Assigns (and unassigns held back to keep a lead staffed) the
    /// re-checks skipped.
    pub skipped_recheck: usize,
    /// Leads that failed.
    pub failed: usize,
    /// Agent assignments changed (an assign or unassign applied).
    pub moves_made: usize,
    /// Wall time of the run, reads and verification included.
    pub elapsed: Duration,
    /// Touched leads whose mapping, read back after the run, differs from
    /// the plan's target.
    pub verify_mismatches: Vec<LeadKey>,
    /// Every lead the run looked at, in lead order.
    pub leads: Vec<LeadReport>,
}

impl RunReport {
    /// PUTs per second over the whole run (0 when nothing was sent).
    pub fn effective_rate(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if self.puts_sent == 0 || secs <= 0.0 {
            0.0
        } else {
            self.puts_sent as f64 / secs
        }
    }
}

/// One run as the journal holds it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunRecord {
    pub id: i64,
    pub kind: RunKind,
    /// The run a resume continues or a rollback undoes.
    pub parent: Option<i64>,
    /// SHA-256 of the plan's canonical JSON.
    pub plan_hash: String,
    pub snapshot_hash: String,
    /// The plan's `config_digest` (of the planning config).
    pub config_digest: String,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub ended_at: Option<String>,
    pub outcome: RunOutcome,
    pub puts_sent: u64,
    pub failed: u64,
    pub moves_made: u64,
    /// `host:pid` of the process that ran it.
    pub holder: String,
}

/// One lead of a run as the journal holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LeadRecord {
    pub lead: LeadKey,
    pub state: LeadState,
    pub detail: String,
}

/// One PUT as the journal holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PutRecord {
    pub id: i64,
    pub lead: LeadKey,
    /// 1, 2, ... within the lead and run.
    pub seq: u32,
    /// The JSON body sent (ids only; never a credential).
    pub body: String,
    pub state: PutState,
    /// Whether the CMS holds the change: `Some(true)` for applied (or read
    /// back as applied), `Some(false)` for refused or read back as not
    /// applied, `None` while unknown.
    pub applied: Option<bool>,
    pub status: Option<u16>,
    /// The echo the CMS answered (ids only).
    pub echo: Option<String>,
    /// The server's error message, or how an ambiguity was resolved.
    pub message: Option<String>,
    pub sent_at: String,
    pub done_at: Option<String>,
}

/// A run with its leads and PUTs (`show`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunDetail {
    pub run: RunRecord,
    pub leads: Vec<LeadRecord>,
    pub puts: Vec<PutRecord>,
    /// Leads with changes in the run's plan that neither this run nor an
    /// earlier run of its chain reached (an interrupted or killed run's
    /// remainder), in lead order.
    pub left: Vec<LeadKey>,
    /// The resumes that continued this run's chain after it, in id order.
    pub resumed_by: Vec<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for k in [RunKind::Apply, RunKind::Resume, RunKind::Rollback] {
            assert_eq!(k.as_str().parse::<RunKind>().unwrap(), k);
            assert_eq!(serde_json::to_string(&k).unwrap(), format!("\"{k}\""));
        }
        for o in [
            RunOutcome::Completed,
            RunOutcome::CompletedWithFailures,
            RunOutcome::Interrupted,
            RunOutcome::Failed,
            RunOutcome::Running,
        ] {
            assert_eq!(o.as_str().parse::<RunOutcome>().unwrap(), o);
            assert_eq!(serde_json::to_string(&o).unwrap(), format!("\"{o}\""));
        }
        assert_eq!(
            serde_json::to_string(&LeadState::Drifted).unwrap(),
            "\"drifted\""
        );
        assert!("bogus".parse::<LeadState>().is_err());
        for p in [
            PutState::Pending,
            PutState::Applied,
            PutState::Failed,
            PutState::Ambiguous,
            PutState::Resolved,
            PutState::Unsent,
        ] {
            assert_eq!(p.as_str().parse::<PutState>().unwrap(), p);
            assert_eq!(serde_json::to_string(&p).unwrap(), format!("\"{p}\""));
        }
        for c in CycleOutcome::ALL {
            assert_eq!(c.as_str().parse::<CycleOutcome>().unwrap(), c);
            assert_eq!(serde_json::to_string(&c).unwrap(), format!("\"{c}\""));
        }
        for m in [CycleMode::Apply, CycleMode::DryRun] {
            assert_eq!(m.as_str().parse::<CycleMode>().unwrap(), m);
            assert_eq!(serde_json::to_string(&m).unwrap(), format!("\"{m}\""));
        }
        assert_eq!(PutState::Unsent, "unsent");
        assert!("bogus".parse::<CycleOutcome>().is_err());
    }

    #[test]
    fn a_cycle_that_failed_was_blocked_or_left_writes_undone_is_no_success() {
        let failures: Vec<_> = CycleOutcome::ALL
            .into_iter()
            .filter(|o| !o.is_success())
            .collect();
        assert_eq!(
            failures,
            [
                CycleOutcome::AppliedWithFailures,
                CycleOutcome::Interrupted,
                CycleOutcome::Blocked,
                CycleOutcome::Failed,
            ]
        );
    }

    #[test]
    fn effective_rate_is_puts_over_time() {
        let mut r = RunReport {
            run: 1,
            kind: RunKind::Apply,
            outcome: RunOutcome::Completed,
            puts_sent: 20,
            puts_retried: 0,
            skipped_drift: 0,
            skipped_recheck: 0,
            failed: 0,
            moves_made: 0,
            elapsed: Duration::from_secs(4),
            verify_mismatches: vec![],
            leads: vec![],
        };
        assert!((r.effective_rate() - 5.0).abs() < 1e-9);
        r.puts_sent = 0;
        assert_eq!(r.effective_rate(), 0.0);
    }
}

/// One cycle of `rebalancer run`, as the journal records it.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct CycleRecord {
    /// Set by the journal.
    pub id: i64,
    pub started_at: String,
    pub ended_at: String,
    pub mode: CycleMode,
    pub outcome: CycleOutcome,
    /// The apply run the cycle made, if any.
    pub run: Option<i64>,
    pub snapshot_hash: Option<String>,
    pub plan_hash: Option<String>,
    pub assigns: usize,
    pub unassigns: usize,
    /// Changes gates and caps deferred.
    pub deferred: usize,
    /// Of those, held back by the flap guard.
    pub held_back: usize,
    pub shortfall_before: Option<f64>,
    pub shortfall_after: Option<f64>,
    pub peak_before: Option<f64>,
    pub peak_after: Option<f64>,
    /// What happened, for people (the error of a failed cycle).
    pub detail: String,
}
