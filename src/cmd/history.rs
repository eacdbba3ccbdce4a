//! `rebalancer history`: the runs in the journal, newest first, and (as a
//! table) the decisions people made on proposals. Reads only
//! the journal (`journal.url`, else `apply.journal`, or `--journal FILE`):
//! no upstream credentials needed.

use crate::render::{self, Format};
use rebalancer_ops::settings::{self, Env};
use std::path::PathBuf;

/// What `history` was asked to do.
#[derive(Debug)]
pub struct Options {
    /// A config file for `journal.url` / `apply.journal` (optional).
    pub config: Option<PathBuf>,
    pub journal: Option<PathBuf>,
    pub limit: usize,
    pub format: Format,
}

pub fn run(opts: Options) -> anyhow::Result<u8> {
    let journal =
        settings::load_journal(opts.journal, opts.config.as_deref(), &Env::from_process())?;
    let runs = rebalancer_applier::history(&journal, opts.limit)?;
    let text = match opts.format {
        Format::Table => {
            let decisions = rebalancer_applier::proposals::list(&journal, None, opts.limit)?;
            render::journal::history(&runs, &decisions, &journal)
        }
        Format::Json => render::journal::to_json(&runs),
    };
    render::emit(&text)?;
    Ok(0)
}
