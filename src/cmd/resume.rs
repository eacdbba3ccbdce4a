//! `rebalancer resume [RUN]`: continue an interrupted or killed apply from
//! the journal. Each remaining lead's live mapping is diffed against the
//! plan's target (safe to repeat); PUTs the journal holds without an
//! outcome are resolved by re-reading their lead first, so nothing is
//! applied twice.

use crate::applying;
use crate::input::Source;
use crate::logging::Log;
use crate::render::Format;
use crate::settings::Env;
use rebalancer_applier::Progress;
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
    let progress = Progress::default();
    let report = applying::with_progress(
        log.interactive,
        &progress,
        rebalancer_applier::resume(
            &session.journal,
            opts.run,
            &session.upstreams,
            &session.config,
            applying::stop_on_signals(),
            &progress,
        ),
    )
    .await?;
    applying::report(&report, &session.journal, opts.format)
}
