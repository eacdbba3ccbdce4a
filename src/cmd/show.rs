//! `rebalancer show RUN`: one run's leads and PUTs with their outcomes, as
//! the journal recorded them.

use crate::render::{self, Format};
use rebalancer_ops::settings::{self, Env};
use std::path::PathBuf;

/// What `show` was asked to do.
#[derive(Debug)]
pub struct Options {
    pub config: Option<PathBuf>,
    pub journal: Option<PathBuf>,
    pub run: i64,
    pub format: Format,
}

pub fn run(opts: Options) -> anyhow::Result<u8> {
    let journal = settings::load_journal(
        opts.journal.clone(),
        opts.config.as_deref(),
        &Env::from_process(),
    )?;
    let detail = rebalancer_applier::show(&journal, opts.run)?;
    let text = match opts.format {
        Format::Table => render::journal::run_detail(&detail, &resume_hint(&opts)),
        Format::Json => render::journal::to_json(&detail),
    };
    render::emit(&text)?;
    Ok(0)
}

/// How to continue the run: the exact command with `--config` (and
/// `--journal`) when `show` was given them; otherwise which config it
/// needs.
fn resume_hint(opts: &Options) -> String {
    match &opts.config {
        Some(config) => crate::applying::ResumeWith::Config {
            config: config.clone(),
            journal: opts.journal.clone(),
        }
        .hint(opts.run),
        None => format!(
            "`rebalancer resume {} --config FILE`, with FILE the config whose credentials wrote it, finishes it",
            opts.run
        ),
    }
}
