//! `rebalancer proposals`: the plans that waited or wait for a person's
//! approval (`run.approval`), newest first, with what became of each.
//! Reads only the journal, as `history` does.

use crate::render::{self, Format};
use rebalancer_applier::proposals::{self, ProposalState};
use rebalancer_ops::settings::{self, Env};
use std::path::PathBuf;

/// What `proposals` was asked to do.
#[derive(Debug)]
pub struct Options {
    pub config: Option<PathBuf>,
    pub journal: Option<PathBuf>,
    /// Only proposals in this state.
    pub state: Option<ProposalState>,
    pub limit: usize,
    pub format: Format,
}

pub fn run(opts: Options) -> anyhow::Result<u8> {
    let journal =
        settings::load_journal(opts.journal, opts.config.as_deref(), &Env::from_process())?;
    let list = proposals::list(&journal, opts.state, opts.limit)?;
    let text = match opts.format {
        Format::Table => render::journal::proposals(&list, &journal),
        Format::Json => render::journal::to_json(&list),
    };
    render::emit(&text)?;
    Ok(0)
}
