//! Exit codes, and how an error is shown to a person.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | unexpected internal error (a bug: please report it) |
//! | 2 | bad command-line usage |
//! | 3 | bad configuration (file, key, identity file) |
//! | 4 | bad input file (snapshot or plan) |
//! | 5 | an upstream refused our credentials or permissions |
//! | 6 | an upstream answered something we cannot use (404, 400, malformed body, unknown campaign) |
//! | 7 | an upstream was unreachable, timed out, throttled or failed (5xx) after retries |
//! | 8 | cannot write an output file |
//! | 9 | the solver failed (LP backend error, numeric overflow) |
//! | 10 | the plan is BLOCKED by a safety guard (`plan.max_unassign_share`) |
//! | 11 | an apply was stopped by SIGINT/SIGTERM; `rebalancer resume` finishes it |
//! | 12 | another apply holds the journal's lease |
//! | 13 | an apply ended with failed PUTs or had to stop; see `rebalancer show RUN` |
//! | 14 | `check` found a failing component |
//! | 15 | the plan does not fit: made for another system, too old or dated ahead of this host's clock, under other `[plan]` rules or `[[cms.campaigns]]`; nothing was sent |
//!
//! Plan admission (`rebalancer_applier::admit`) refuses with 15 for those,
//! 10 for a BLOCKED plan, and 4 for a plan that is itself malformed (schema
//! version, a hash that is not SHA-256 hex, a fetch time that is not RFC
//! 3339).
//!
//! With `plan --detailed-exitcode`, 2 also means "changes pending" (as in
//! terraform); usage errors print `error:` on stderr and nothing on stdout.

use crate::schedule::ScheduleError;
use crate::settings::SettingsError;
use crate::telemetry::TelemetryError;
use rebalancer_applier::{ApplyError, Refusal};
use rebalancer_fetcher::FetchError;
use rebalancer_model::ModelError;
use rebalancer_optimizer::OptimizerError;
use rebalancer_upstream::{ErrorClass, UpstreamError};
use std::process::ExitCode;

pub const INTERNAL: u8 = 1;
pub const USAGE: u8 = 2;
pub const CONFIG: u8 = 3;
pub const INPUT: u8 = 4;
pub const UPSTREAM_AUTH: u8 = 5;
pub const UPSTREAM_DATA: u8 = 6;
pub const UPSTREAM_UNAVAILABLE: u8 = 7;
pub const OUTPUT: u8 = 8;
pub const SOLVER: u8 = 9;
pub const BLOCKED: u8 = 10;
pub const INTERRUPTED: u8 = 11;
pub const JOURNAL_BUSY: u8 = 12;
pub const APPLY_INCOMPLETE: u8 = 13;
pub const CHECK_FAILED: u8 = 14;
pub const PLAN_MISMATCH: u8 = 15;
/// `plan --detailed-exitcode`: the plan has changes.
pub const CHANGES_PENDING: u8 = 2;

/// Why `apply` will not go on before any write (plan admission itself is
/// the applier's [`Refusal`]).
#[derive(Debug, thiserror::Error)]
pub enum ApplyRefused {
    /// Nobody could confirm (stdin is not a terminal and `--yes` was not
    /// given).
    #[error("{0}")]
    NotConfirmed(String),
}

/// `rebalancer check` found components that fail (exit 14); its table
/// says what to fix.
#[derive(Debug, thiserror::Error)]
#[error("check found a failing component: {}; the fix column says what to change", .failed.join(", "))]
pub struct CheckFailed {
    /// The failing components ("cms", "webex", "zoho", "journal").
    pub failed: Vec<String>,
}

/// Bad command-line usage found after parsing (exit 2), e.g. a malformed
/// what-if value.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

pub fn usage_code(e: &clap::Error) -> u8 {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => 0,
        _ => USAGE,
    }
}

fn class_code(class: ErrorClass) -> u8 {
    match class {
        ErrorClass::Config => CONFIG,
        ErrorClass::Auth => UPSTREAM_AUTH,
        ErrorClass::Unavailable => UPSTREAM_UNAVAILABLE,
        ErrorClass::Data => UPSTREAM_DATA,
    }
}

/// The exit code of a plan admission refusal: the plan's own damage is bad
/// input (4), a blocked plan 10, a plan that does not fit this config or
/// this time 15.
fn refusal_code(r: &Refusal) -> u8 {
    match r {
        Refusal::SchemaVersion { .. }
        | Refusal::MalformedHash { .. }
        | Refusal::BadFetchTime { .. }
        | Refusal::NoContactCenter => INPUT,
        Refusal::Blocked { .. } => BLOCKED,
        Refusal::OtherSystem { .. }
        | Refusal::TooOld { .. }
        | Refusal::FromTheFuture { .. }
        | Refusal::CampaignNotConfigured { .. }
        | Refusal::OtherRules { .. } => PLAN_MISMATCH,
    }
}

/// The exit code for an error, from the first typed error in its chain.
pub fn code_of(e: &anyhow::Error) -> u8 {
    if e.downcast_ref::<UsageError>().is_some() {
        return USAGE;
    }
    if e.downcast_ref::<CheckFailed>().is_some() {
        return CHECK_FAILED;
    }
    for cause in e.chain() {
        if cause.downcast_ref::<ScheduleError>().is_some() {
            return CONFIG;
        }
        if cause.downcast_ref::<TelemetryError>().is_some() {
            return OUTPUT;
        }
        if let Some(r) = cause.downcast_ref::<ApplyRefused>() {
            return match r {
                ApplyRefused::NotConfirmed(_) => USAGE,
            };
        }
        if let Some(r) = cause.downcast_ref::<Refusal>() {
            return refusal_code(r);
        }
        if let Some(a) = cause.downcast_ref::<ApplyError>() {
            return match a {
                ApplyError::Refused { refusal, .. } => refusal_code(refusal),
                ApplyError::LeaseHeld { .. }
                | ApplyError::LeaseLost { .. }
                | ApplyError::LeaseExpiring => JOURNAL_BUSY,
                ApplyError::CorruptJournal { .. } | ApplyError::JournalNeedsMigration { .. } => {
                    OUTPUT
                }
                ApplyError::Blocked { .. } => BLOCKED,
                ApplyError::Journal { .. } => OUTPUT,
                ApplyError::InvalidConfig { .. } => CONFIG,
                ApplyError::Upstream(u) => class_code(u.class()),
                // The plan or the run asked for cannot be used.
                _ => INPUT,
            };
        }
        if let Some(o) = cause.downcast_ref::<OptimizerError>() {
            return match o {
                OptimizerError::Overflow | OptimizerError::Lp(_) => SOLVER,
                // Counts beyond any real figure came from the snapshot.
                OptimizerError::HeadroomOutOfRange { .. }
                | OptimizerError::TotalOutOfRange { .. } => INPUT,
                _ => CONFIG,
            };
        }
        if cause.downcast_ref::<SettingsError>().is_some() {
            return CONFIG;
        }
        if let Some(m) = cause.downcast_ref::<ModelError>() {
            return match m {
                ModelError::Write { .. } => OUTPUT,
                _ => INPUT,
            };
        }
        if let Some(f) = cause.downcast_ref::<FetchError>() {
            return class_code(f.class());
        }
        if let Some(u) = cause.downcast_ref::<UpstreamError>() {
            return class_code(u.class());
        }
    }
    INTERNAL
}

/// The lines that show an error: the message, then each cause the message
/// does not already carry (libraries often repeat their source's text; a
/// cause is printed once, not twice).
fn lines(e: &anyhow::Error) -> Vec<String> {
    let mut shown = e.to_string();
    let mut out = vec![format!("error: {shown}")];
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if shown.contains(&text) {
            continue;
        }
        out.push(format!("  caused by: {text}"));
        shown.push_str(&text);
    }
    out
}

/// Print the error chain on stderr and return its exit code.
pub fn report(e: anyhow::Error) -> ExitCode {
    let code = code_of(&e);
    for line in lines(&e) {
        eprintln!("{line}");
    }
    if code == INTERNAL {
        eprintln!("  (this is a bug in rebalancer; please report it with the command you ran)");
    }
    ExitCode::from(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optimizer_errors_map_to_their_codes() {
        let code = |e: OptimizerError| code_of(&anyhow::Error::from(e).context("planning"));
        // No input reaches these through the binary (the record limits keep
        // the exact solver clear of overflow), so the mapping is tested here.
        assert_eq!(code(OptimizerError::Overflow), SOLVER);
        assert_eq!(
            code(OptimizerError::HeadroomOutOfRange {
                agent: "a".into(),
                headroom: u64::MAX,
                limit: 1,
            }),
            INPUT
        );
        assert_eq!(
            code(OptimizerError::UnknownBackend("x".into(), "microlp".into())),
            CONFIG
        );
    }

    #[test]
    fn admission_refusals_map_to_their_codes() {
        use rebalancer_applier::WritePath;
        let code = |r: Refusal| {
            code_of(&anyhow::Error::from(ApplyError::refused(
                WritePath::Resume,
                Some(3),
                r,
            )))
        };
        assert_eq!(
            code(Refusal::OtherRules {
                plan: "a".into(),
                config: "b".into()
            }),
            PLAN_MISMATCH
        );
        assert_eq!(
            code(Refusal::TooOld {
                fetched_at: "t".into(),
                age_secs: 2,
                max_secs: 1
            }),
            PLAN_MISMATCH
        );
        assert_eq!(
            code(Refusal::MalformedHash {
                field: "snapshot_hash",
                shown: "x".into()
            }),
            INPUT
        );
        assert_eq!(code(Refusal::Blocked { reason: "r".into() }), BLOCKED);
    }

    #[test]
    fn a_cause_the_message_repeats_is_printed_once() {
        let inner = anyhow::anyhow!("GET http://h/x: connection refused");
        let e = inner
            .context("CMS GET http://h/x: unreachable: GET http://h/x: connection refused")
            .context("fetch failed; nothing was written");
        let text = lines(&e).join("\n");
        assert_eq!(text.matches("http://h/x").count(), 2, "{text}");
        assert_eq!(text.matches("connection refused").count(), 1, "{text}");
        assert!(text.starts_with("error: fetch failed"), "{text}");
    }

    #[test]
    fn distinct_causes_are_all_printed() {
        let e = anyhow::anyhow!("disk full").context("cannot write plan.json");
        assert_eq!(
            lines(&e),
            ["error: cannot write plan.json", "  caused by: disk full"]
        );
    }
}
