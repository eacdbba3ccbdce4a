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
    let journal =
        settings::load_journal(opts.journal, opts.config.as_deref(), &Env::from_process())?;
    let detail = rebalancer_applier::show(&journal, opts.run)?;
    let text = match opts.format {
        Format::Table => render::journal::run_detail(&detail),
        Format::Json => render::journal::to_json(&detail),
    };
    render::emit(&text)?;
    Ok(0)
}
