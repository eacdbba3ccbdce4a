//! `run.approval`: which plans wait for a person before `run` writes them
//! (`never`, `always`, or `large`: more moves than
//! `run.approval_large_moves`). Read at load (settings' `[run]` check) and
//! when `run` starts, by [`Approval::from_keys`].

use crate::schedule::ScheduleError;
use crate::settings::RunKeys;
use rebalancer_model::Plan;

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
