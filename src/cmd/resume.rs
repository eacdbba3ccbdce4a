//! `rebalancer resume [RUN]`: continue an interrupted or killed apply from
//! the journal. Without RUN, only the journal's newest run is continued,
//! when it is unfinished, and the command says which run that is before it
//! starts (an older unfinished run was followed by later runs: resuming it
//! would undo their work, so it must be named). The run's plan, read from
//! the journal, must pass the same admission check as `apply --plan` under
//! the config given here (same system, not too old, same rules and
//! campaigns). Each remaining lead's live mapping is diffed against the
//! plan's target (safe to repeat); PUTs the journal holds without an
//! outcome are resolved by re-reading their lead first, so nothing is
//! applied twice.

use crate::applying;
use crate::input::Source;
use crate::logging::Log;
use crate::render::{self, Format};
use rebalancer_applier::{ApplyError, Progress};
use rebalancer_ops::settings::Env;
use std::path::PathBuf;

/// What `resume` was asked to do.
#[derive(Debug)]
pub struct Options {
    /// The config whose credentials reach the CMS.
    pub config: PathBuf,
    /// The run to continue; the latest unfinished one when absent.
    pub run: Option<i64>,
    pub journal: Option<PathBuf>,
    pub allow_mass_unassign: bool,
    pub format: Format,
}

pub async fn run(opts: Options, log: &Log) -> anyhow::Result<u8> {
    let env = Env::from_process();
    let source = Source::Live {
        config: opts.config.clone(),
    };
    let session = applying::session(
        &source,
        &env,
        opts.journal.clone(),
        opts.allow_mass_unassign,
    )
    .await?;
    let run = match opts.run {
        Some(run) => run,
        None => {
            let r = match rebalancer_applier::resumable_run(&session.journal) {
                Err(ApplyError::NothingToResume {
                    why,
                    older: Some(older),
                }) => {
                    let hint = applying::ResumeWith::Config {
                        config: opts.config.clone(),
                        journal: opts.journal.clone(),
                    }
                    .command(older);
                    let e = ApplyError::NothingToResume {
                        why,
                        older: Some(older),
                    };
                    return Err(anyhow::Error::from(e)
                        .context(format!("to resume run {older} all the same: `{hint}`")));
                }
                other => other?,
            };
            if opts.format == Format::Table {
                render::emit(&format!(
                    "Resuming run {} ({}, {}, started {}): the latest unfinished run.",
                    r.id, r.kind, r.outcome, r.started_at
                ))?;
            }
            r.id
        }
    };
    let progress = Progress::default();
    let report = applying::with_progress(
        log.interactive,
        &progress,
        rebalancer_applier::resume(
            &session.journal,
            Some(run),
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
