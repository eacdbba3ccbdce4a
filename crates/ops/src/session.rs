//! A write session: a connection with the `[apply]` write budget, the
//! applier's options, the journal the run goes into, and what the config
//! expects of a plan it writes ([`Session::expected`], the config's side
//! of the applier's one admission check, `rebalancer_applier::admit`).
//! `apply`, `resume`, `rollback` and every `run` cycle write through one.
//! Also the stop token that SIGINT/SIGTERM cancel.

use crate::connect::{self, Connected, Purpose, Source};
use crate::settings::Env;
use crate::OpsError;
use rebalancer_applier::{
    ApplyConfig, ConfigDigest, ConfiguredCampaign, Expected, JournalLocation, Upstreams,
    MAX_CLOCK_SKEW,
};
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The journal of `--sandbox` runs without `--journal`.
pub const SANDBOX_JOURNAL: &str = "rebalancer-sandbox-journal.sqlite";

/// A connection ready to write, with the applier's options.
pub struct Session {
    pub connected: Connected,
    pub upstreams: Upstreams,
    pub config: ApplyConfig,
    pub journal: JournalLocation,
}

/// Connect to `source` for writing. `journal` (`--journal FILE`)
/// overrides `journal.url` and `apply.journal`.
pub async fn session(
    source: &Source,
    env: &Env,
    journal: Option<PathBuf>,
    allow_mass_unassign: bool,
) -> Result<Session, OpsError> {
    let connected = connect::connect(source, env, Purpose::Write).await?;
    let upstreams = connected.connection.upstreams();
    let config =
        connected
            .apply
            .apply_config(&connected.plan, &connected.http, allow_mass_unassign);
    // The embedded sandbox is a demo: its runs never go into the journal a
    // config names (a production SQLite file in this directory, or a
    // PostgreSQL journal from the environment), only into their own file.
    let journal = match (source, journal) {
        (Source::Sandbox(_), None) => JournalLocation::Sqlite(PathBuf::from(SANDBOX_JOURNAL)),
        (_, flag) => connected.journal.location(&connected.apply, flag),
    };
    Ok(Session {
        connected,
        upstreams,
        config,
        journal,
    })
}

impl Session {
    /// What this config expects of a plan it writes, asked now: the system
    /// it names, its `[[cms.campaigns]]`, the digest of its `[plan]` rules
    /// and campaigns (with the plan's what-ifs), `apply.max_plan_age_secs`
    /// and the clock-skew tolerance [`MAX_CLOCK_SKEW`].
    pub fn expected(&self) -> Expected {
        let connection = &self.connected.connection;
        let campaigns = &connection.options.campaigns;
        let pairs: Vec<(u64, u64)> = campaigns
            .iter()
            .map(|c| (c.process_id, c.campaign_id))
            .collect();
        let rules = self.connected.plan.clone();
        Expected {
            system: connection.system(),
            campaigns: campaigns
                .iter()
                .map(|c| ConfiguredCampaign {
                    process_id: c.process_id,
                    campaign_id: c.campaign_id,
                    lead_ids: c.lead_ids.clone(),
                })
                .collect(),
            config_digest: ConfigDigest::new(move |what_ifs| rules.digest_with(what_ifs, &pairs)),
            max_plan_age: Duration::from_secs(self.connected.apply.max_plan_age_secs),
            max_clock_skew: MAX_CLOCK_SKEW,
            now: time::OffsetDateTime::now_utc(),
        }
    }

    /// Stop the embedded sandbox, if the session has one.
    pub async fn close(self) {
        self.connected.connection.close().await;
    }
}

/// A token cancelled by the first SIGINT or SIGTERM: the run finishes the
/// PUT in flight, records where it stopped and ends as interrupted.
pub fn stop_on_signals() -> CancellationToken {
    stop_on_signals_saying(
        "stopping: finishing the PUT in flight, then recording where the run stopped",
    )
}

/// A token cancelled by the first SIGINT or SIGTERM, logging `what` the
/// process does as it stops (the console: it answers the requests in
/// flight and ends; it has no PUT to finish).
pub fn stop_on_signals_saying(what: &'static str) -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::warn!("{what}");
        cancel.cancel();
    });
    token
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGTERM; only Ctrl-C stops a run cleanly");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}
