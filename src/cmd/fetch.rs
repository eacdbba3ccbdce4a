//! `rebalancer fetch`: read the three upstreams into a snapshot.
//!
//! With `--config FILE` it reads the live systems; with `--sandbox` it starts
//! an embedded, seeded sandbox on 127.0.0.1 and reads that. The snapshot is
//! written atomically (`--out`), and a summary table goes to stdout.

use crate::cli::{FetchArgs, WorldArgs};
use crate::cmd::sandbox;
use crate::render;
use crate::settings::Settings;
use anyhow::Context;
use rebalancer_fetcher::{Clients, FetchReport};
use rebalancer_model::Snapshot;
use rebalancer_upstream::{CmsClient, Stats, WebexClient, ZohoClient};

pub async fn run(args: FetchArgs) -> anyhow::Result<()> {
    let (snapshot, report) = match &args.config {
        Some(path) => {
            let settings = Settings::load(path)?;
            fetch_live(&settings, "live").await?
        }
        None => fetch_sandbox(&args.world).await?,
    };
    if let Some(out) = &args.out {
        snapshot.save(out)?;
        tracing::info!(path = %out.display(), "snapshot written");
    }
    render::emit(&render::fetch_summary(&snapshot, &report))?;
    Ok(())
}

/// Build the three clients from settings.
pub fn clients(settings: &Settings) -> anyhow::Result<Clients> {
    let stats = Stats::default();
    Ok(Clients {
        cms: CmsClient::new(settings.cms_config(), stats.clone())?,
        webex: WebexClient::new(settings.webex_config(), stats.clone())?,
        zoho: ZohoClient::new(settings.zoho_config(), stats.clone())?,
        stats,
    })
}

/// Fetch from the systems the settings point at.
pub async fn fetch_live(
    settings: &Settings,
    description: &str,
) -> anyhow::Result<(Snapshot, FetchReport)> {
    let clients = clients(settings)?;
    let opts = settings.fetch_options(description)?;
    let fetched = rebalancer_fetcher::fetch(&clients, &opts)
        .await
        .context("fetch failed; nothing was written")?;
    Ok(fetched)
}

/// Start an embedded sandbox, fetch from it over HTTP, and stop it.
pub async fn fetch_sandbox(world: &WorldArgs) -> anyhow::Result<(Snapshot, FetchReport)> {
    let sb = sandbox::start(world, 0).await?;
    let settings = sandbox::settings_for(&sb)?;
    let description = format!(
        "embedded sandbox (seed {}, {} agents, {} leads)",
        world.seed, world.agents, world.leads
    );
    let fetched = fetch_live(&settings, &description).await;
    sb.shutdown().await;
    fetched
}
