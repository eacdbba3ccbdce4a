//! `rebalancer rollback RUN`: apply the inverse of what a run (and the
//! resumes that continued it) actually changed, as the journal recorded it,
//! under the same rules as an apply: the same rate, drift checks, and never
//! assigning an agent that is now inactive or over its allowance. What it
//! cannot restore it lists. It asks first (which run, how much it
//! changed), unless `--yes`.
//!
//! The run's plan (from the journal) passes the applier's admission check
//! as a rollback: the config given here must name the system the run wrote
//! to, and the record must be well-formed; its age, the `[plan]` rules and
//! campaigns it was made under and its BLOCKED flag do not matter for
//! undoing it (see `rebalancer_applier::admission`).

use crate::applying;
use crate::input::Source;
use crate::logging::Log;
use crate::render::Format;
use rebalancer_applier::Progress;
use rebalancer_ops::settings::Env;
use std::path::PathBuf;

/// What `rollback` was asked to do.
#[derive(Debug)]
pub struct Options {
    pub config: PathBuf,
    pub run: i64,
    pub journal: Option<PathBuf>,
    /// Roll back without asking.
    pub yes: bool,
    pub format: Format,
}

pub async fn run(opts: Options, log: &Log) -> anyhow::Result<u8> {
    let env = Env::from_process();
    let source = Source::Live {
        config: opts.config.clone(),
    };
    // The blast-radius guard protects against plans computed from a broken
    // upstream (everyone inactive); a rollback's unassigns are exactly the
    // assigns the run recorded, not derived from fetched data, so the guard
    // does not apply. The re-checks still do: nobody inactive or over an
    // allowance is assigned back.
    let session = applying::session(&source, &env, opts.journal.clone(), true).await?;
    if !opts.yes && !confirmed(&opts, &session)? {
        session.close().await;
        return Ok(0);
    }
    let progress = Progress::default();
    let report = applying::with_progress(
        log.interactive,
        &progress,
        rebalancer_applier::rollback(
            &session.journal,
            opts.run,
            &session.upstreams,
            &session.config,
            &session.expected(),
            applying::stop_on_signals(),
            &progress,
        ),
    )
    .await?;
    let resume = applying::ResumeWith::Config {
        config: opts.config.clone(),
        journal: opts.journal.clone(),
    };
    applying::report(&report, &session.journal, &resume, opts.format)
}

/// Ask before undoing: which run, when, and how much it changed (from
/// the journal; an unknown run is refused there, before the question).
fn confirmed(opts: &Options, session: &applying::Session) -> anyhow::Result<bool> {
    let detail = rebalancer_applier::show(&session.journal, opts.run)?;
    let r = &detail.run;
    let question = format!(
        "Undo run {} ({}, started {}): {} moves in {} PUTs, written to the CMS again as their inverse?",
        r.id, r.kind, r.started_at, r.moves_made, r.puts_sent
    );
    applying::confirm(&question, "rollback")
}
