//! `rebalancer fetch`: read the three upstreams into a snapshot.
//!
//! With a live source it reads the systems the config names; with the
//! sandbox source it starts an embedded, seeded sandbox on 127.0.0.1 and
//! reads that. The snapshot is written atomically (`out`), and a summary
//! goes to stdout as a table or JSON.

use crate::input::{self, Source};
use crate::logging::Log;
use crate::render::{self, Format};
use rebalancer_ops::settings::Env;
use std::path::PathBuf;

/// What `fetch` was asked to do.
#[derive(Debug)]
pub struct Options {
    pub source: Source,
    pub out: Option<PathBuf>,
    pub format: Format,
}

pub async fn run(opts: Options, log: &Log) -> anyhow::Result<u8> {
    let env = Env::from_process();
    let fetched = input::resolve(&opts.source, &env, log.interactive).await?;
    let report = fetched
        .report
        .expect("a fetch source always fetches, so it has a report");
    if let Some(out) = &opts.out {
        fetched.snapshot.save(out)?;
        tracing::info!(path = %out.display(), "snapshot written");
    }
    let text = match opts.format {
        Format::Table => {
            let out: Vec<_> = opts
                .out
                .iter()
                .map(|p| ("the snapshot", p.as_path()))
                .collect();
            render::fetch::summary(&fetched.snapshot, &report) + &render::files_written(&out)
        }
        Format::Json => render::fetch::summary_json(&fetched.snapshot, &report),
    };
    render::emit(&text)?;
    Ok(0)
}
