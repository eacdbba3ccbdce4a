//! Where a command's world comes from (`rebalancer_ops::connect::Source`:
//! `--config FILE`, `--snapshot FILE` or `--sandbox`), turned into a
//! snapshot plus the planning config and the layers that made it, for
//! `fetch`, `plan` and the commands that act on a plan; the fetch shows
//! its progress bar here (rendering stays in the binary).

use crate::progress;
use rebalancer_fetcher::FetchReport;
use rebalancer_model::Snapshot;
use rebalancer_ops::connect::{self, Connection, Purpose};
use rebalancer_ops::settings::{self, ApplyKeys, Env, Layers};
use rebalancer_optimizer::PlanConfig;

pub use rebalancer_ops::connect::{Source, World};

/// Read everything `connection` reaches into a snapshot, with a progress
/// bar on a terminal.
pub async fn fetch(
    connection: &Connection,
    show_progress: bool,
) -> anyhow::Result<(Snapshot, FetchReport)> {
    let bar = progress::Bar::fetch(
        show_progress,
        &connection.clients.stats,
        &connection.options,
    );
    let fetched = connection.fetch().await;
    bar.finish();
    Ok(fetched?)
}

/// A resolved input: the snapshot, the planning config, and how they were
/// made.
pub struct Input {
    pub snapshot: Snapshot,
    pub plan: PlanConfig,
    /// `[apply]`: what applying a plan of this input would send.
    pub apply: ApplyKeys,
    pub layers: Layers,
    /// What the fetch cost, when the snapshot was fetched now.
    pub report: Option<FetchReport>,
}

/// The snapshot and planning config for `source`.
pub async fn resolve(source: &Source, env: &Env, show_progress: bool) -> anyhow::Result<Input> {
    match source {
        Source::Snapshot { path, config } => {
            let loaded = settings::load_plan(config.as_deref(), env)?;
            let snapshot = Snapshot::load(path)?;
            Ok(Input {
                snapshot,
                plan: loaded.value.plan,
                apply: loaded.value.apply,
                layers: loaded.layers,
                report: None,
            })
        }
        Source::Live { .. } | Source::Sandbox(_) => {
            let c = connect::connect(source, env, Purpose::Read).await?;
            let fetched = fetch(&c.connection, show_progress).await;
            c.connection.close().await;
            let (snapshot, report) = fetched?;
            Ok(Input {
                snapshot,
                plan: c.plan,
                apply: c.apply,
                layers: c.layers,
                report: Some(report),
            })
        }
    }
}
