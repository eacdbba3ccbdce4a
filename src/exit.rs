//! Exit codes, and how an error is shown to a person or a log shipper.
//!
//! [`CODES`] is the one table of exit codes: `--help` of the commands that
//! use them shows it ([`help_table`]), and README.md's table is its
//! markdown rendering ([`markdown_table`]; a unit test keeps them equal).
//!
//! Plan admission (`rebalancer_applier::admit`) refuses with 15 for a plan
//! that does not fit, 10 for a BLOCKED plan, and 4 for a plan that is
//! itself malformed (schema version, a hash that is not SHA-256 hex, a
//! fetch time that is not RFC 3339).
//!
//! With `plan --detailed-exitcode`, 2 also means "changes pending" (as in
//! terraform); usage errors print `error:` on stderr and nothing on stdout.
//!
//! A fatal error is printed as text (`error: ...`, `  caused by: ...`), or,
//! with `--log-format json`, as one JSON object on one line ([`report`]):
//! `level` "ERROR", `message` (the top line), `error.chain` (the causes the
//! text shows), `exit_code` and, for a bug, `hint`.

use crate::telemetry::TelemetryError;
use rebalancer_applier::{ApplyError, Refusal};
use rebalancer_fetcher::FetchError;
use rebalancer_model::ModelError;
use rebalancer_ops::schedule::ScheduleError;
use rebalancer_ops::settings::SettingsError;
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

/// Every exit code and what it means (markdown inline code allowed): the
/// source of the `--help` table and of README.md's.
pub const CODES: &[(u8, &str)] = &[
    (0, "success (with `--detailed-exitcode`: no changes)"),
    (INTERNAL, "internal error (a bug: please report it with the command you ran)"),
    (USAGE, "bad command-line usage (with `--detailed-exitcode`: changes pending)"),
    (CONFIG, "bad configuration (file, key, environment variable, identity file) or plan rules (unknown agent or lead, infeasible pin)"),
    (INPUT, "bad input file (snapshot or plan)"),
    (UPSTREAM_AUTH, "an upstream refused our credentials or permissions"),
    (UPSTREAM_DATA, "an upstream answered something unusable (404, 400, malformed body, unknown campaign); a read (GET) whose 2xx body is malformed or truncated is retried within `http.max_retries` first, and counted in `fetch`'s summary"),
    (UPSTREAM_UNAVAILABLE, "an upstream was unreachable, timed out, throttled or failing after retries"),
    (OUTPUT, "cannot write an output file or the journal (also: `journal.url` unreachable, `run.metrics_addr` or `console.addr` in use)"),
    (SOLVER, "the solver failed (LP backend error, numeric overflow)"),
    (BLOCKED, "the plan is BLOCKED by a safety guard (`plan.max_unassign_share`)"),
    (INTERRUPTED, "an apply was stopped by SIGINT/SIGTERM; `rebalancer resume` finishes it"),
    (JOURNAL_BUSY, "another apply holds the journal's lease (the message names the holder)"),
    (APPLY_INCOMPLETE, "an apply ended with failed PUTs or had to stop; see `rebalancer show RUN`"),
    (CHECK_FAILED, "check found a failing component (`rebalancer check`; its table names the fix)"),
    (PLAN_MISMATCH, "the plan does not fit: made for another CMS or contact center, too old (`apply.max_plan_age_secs`) or dated in the future, under other `[plan]` rules or `[[cms.campaigns]]`; nothing was sent"),
];

/// Width the `--help` table is wrapped to.
const HELP_WIDTH: usize = 80;

/// [`CODES`] for `--help` (`after_long_help`): one code a paragraph, its
/// meaning wrapped under a hanging indent.
pub fn help_table() -> String {
    const INDENT: usize = 6;
    let mut out = String::from("Exit codes:\n");
    for (code, meaning) in CODES {
        let mut line = format!("  {code:>2}  ");
        for word in meaning.split_whitespace() {
            if line.len() > INDENT && line.len() + 1 + word.len() > HELP_WIDTH {
                out.push_str(line.trim_end());
                out.push('\n');
                line = " ".repeat(INDENT);
            } else if line.len() > INDENT {
                line.push(' ');
            }
            line.push_str(word);
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// [`CODES`] as README.md's markdown table.
#[cfg(test)]
pub fn markdown_table() -> String {
    let mut out = String::from("| code | meaning |\n|---|---|\n");
    for (code, meaning) in CODES {
        out.push_str(&format!("| {code} | {meaning} |\n"));
    }
    out
}

/// A file or directory a command could not write (exit 8).
#[derive(Debug, thiserror::Error)]
#[error("cannot write {path}: {source}; check that its directory exists and is writable")]
pub struct CannotWrite {
    pub path: String,
    #[source]
    pub source: std::io::Error,
}

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
        if cause.downcast_ref::<TelemetryError>().is_some()
            || cause
                .downcast_ref::<rebalancer_console::ConsoleError>()
                .is_some()
            || cause.downcast_ref::<CannotWrite>().is_some()
        {
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

/// The causes that show an error below its message: each cause the
/// message (and the causes before it) does not already carry (libraries
/// often repeat their source's text; a cause is shown once, not twice).
fn causes(e: &anyhow::Error) -> Vec<String> {
    let mut shown = e.to_string();
    let mut out = Vec::new();
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if shown.contains(&text) {
            continue;
        }
        shown.push_str(&text);
        out.push(text);
    }
    out
}

/// The lines that show an error as text: the message, then its causes.
fn lines(e: &anyhow::Error) -> Vec<String> {
    let mut out = vec![format!("error: {e}")];
    out.extend(causes(e).into_iter().map(|c| format!("  caused by: {c}")));
    out
}

/// What the text shows under an internal error.
const BUG_HINT: &str = "this is a bug in rebalancer; please report it with the command you ran";

/// An error as one JSON log object (`--log-format json`), in the shape of
/// the tracing lines: `timestamp`, `level`, `target`, `message`, then
/// `error.chain`, `exit_code` and, for a bug, `hint`.
fn json_line(e: &anyhow::Error, code: u8) -> String {
    let mut fields = vec![
        ("message", e.to_string().into()),
        ("error", serde_json::json!({ "chain": causes(e) })),
        ("exit_code", code.into()),
    ];
    if code == INTERNAL {
        fields.push(("hint", BUG_HINT.into()));
    }
    json_object(&fields)
}

/// One JSON log line: `timestamp`, `level` ("ERROR"), `target`, then
/// `fields` in their order (tracing's lines start the same way).
fn json_object(fields: &[(&str, serde_json::Value)]) -> String {
    let mut out = format!(
        "{{\"timestamp\":\"{}\",\"level\":\"ERROR\",\"target\":\"rebalancer\"",
        timestamp()
    );
    for (key, value) in fields {
        out.push_str(&format!(",{}:{value}", serde_json::Value::from(*key)));
    }
    out.push('}');
    out
}

/// Now, as tracing-subscriber's JSON lines write it (RFC 3339, UTC, µs).
pub fn timestamp() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Print the error on stderr (as text, or as one JSON object with
/// `json`) and return its exit code.
pub fn report(e: anyhow::Error, json: bool) -> ExitCode {
    let code = code_of(&e);
    if json {
        eprintln!("{}", json_line(&e, code));
        return ExitCode::from(code);
    }
    for line in lines(&e) {
        eprintln!("{line}");
    }
    if code == INTERNAL {
        eprintln!("  ({BUG_HINT})");
    }
    ExitCode::from(code)
}

/// A usage error clap rendered (`rendered`, its whole text) as one JSON
/// object, for `--log-format json`.
pub fn usage_json(rendered: &str, code: u8) -> String {
    json_object(&[
        ("message", rendered.trim_end().into()),
        ("error", serde_json::json!({ "chain": [] })),
        ("exit_code", code.into()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optimizer_errors_map_to_their_codes() {
        let code = |e: OptimizerError| code_of(&anyhow::Error::from(e).context("planning"));
        // Overflow is also produced through the binary (tests/cli_exit_codes.rs:
        // headrooms near the record limit scaled by the balance stage's
        // ratio); the out-of-range errors are tested here.
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
    fn a_fatal_error_in_json_is_one_object_with_its_chain_and_code() {
        let e = anyhow::anyhow!("disk full").context("cannot write plan.json");
        let line = json_line(&e, OUTPUT);
        assert!(!line.contains('\n'), "{line}");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["level"], "ERROR");
        assert_eq!(v["message"], "cannot write plan.json");
        assert_eq!(v["error"]["chain"], serde_json::json!(["disk full"]));
        assert_eq!(v["exit_code"], 8);
        assert!(v.get("hint").is_none(), "{v}");
        let bug: serde_json::Value = serde_json::from_str(&json_line(&e, INTERNAL)).unwrap();
        assert!(bug["hint"].as_str().unwrap().contains("bug"), "{bug}");
    }

    #[test]
    fn every_exit_code_is_in_the_table_once_and_in_order() {
        let codes: Vec<u8> = CODES.iter().map(|(c, _)| *c).collect();
        assert_eq!(codes, (0..=PLAN_MISMATCH).collect::<Vec<u8>>());
    }

    #[test]
    fn readme_exit_code_table_is_the_one_here() {
        let readme = include_str!("../README.md");
        let section = readme
            .split_once("### Exit codes")
            .expect("README.md has a `### Exit codes` section")
            .1;
        let table: String = section
            .lines()
            .skip_while(|l| !l.starts_with('|'))
            .take_while(|l| l.starts_with('|'))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(
            table,
            markdown_table(),
            "README.md's exit-code table differs from src/exit.rs's CODES; paste markdown_table()'s rendering"
        );
    }

    #[test]
    fn the_help_table_wraps_under_a_hanging_indent() {
        let t = help_table();
        assert!(t.lines().all(|l| l.len() <= HELP_WIDTH), "{t}");
        assert!(t.contains("\n  15  the plan does not fit"), "{t}");
        let flat = t.split_whitespace().collect::<Vec<_>>().join(" ");
        for (code, meaning) in CODES {
            assert!(flat.contains(&format!("{code} {meaning}")), "{code}: {t}");
        }
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
