//! `rebalancer approve ID` and `rebalancer reject ID`: a person's decision
//! on a pending proposal, with who decided and a comment, recorded in the
//! journal. Once: a proposal no longer pending (decided, superseded,
//! expired) is refused and nothing changes. An approved plan is applied by
//! the `run` replica that holds the journal's lease, within
//! `run.approval_poll` (or on its next cycle).

use crate::render::{self, Format};
use rebalancer_applier::proposals::{self, Decision};
use rebalancer_ops::settings::{self, Env};
use std::path::PathBuf;

/// What `approve` or `reject` was asked to do.
#[derive(Debug)]
pub struct Options {
    pub config: Option<PathBuf>,
    pub journal: Option<PathBuf>,
    pub id: i64,
    pub decision: Decision,
    /// Who decides (`--by`, else the login name).
    pub by: Option<String>,
    pub comment: String,
    pub format: Format,
}

pub fn run(opts: Options) -> anyhow::Result<u8> {
    let journal =
        settings::load_journal(opts.journal, opts.config.as_deref(), &Env::from_process())?;
    let by = opts
        .by
        .or_else(|| std::env::var("USER").ok())
        .or_else(|| std::env::var("LOGNAME").ok())
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "unknown".into());
    let decided = proposals::decide(&journal, opts.id, opts.decision, &by, &opts.comment)?;
    let text = match opts.format {
        Format::Table => render::journal::decided(&decided),
        Format::Json => render::journal::to_json(&decided),
    };
    render::emit(&text)?;
    Ok(0)
}
