//! Where a command's world comes from: `--config FILE` (the live systems),
//! `--snapshot FILE` (a saved snapshot, offline) or `--sandbox` (an embedded,
//! seeded sandbox on 127.0.0.1). One place turns any of them into a
//! snapshot plus the planning config and the layers that made it, for
//! `fetch`, `plan` and the commands that act on a plan.
//!
//! The sandbox's connection settings are built directly from the running
//! sandbox (its URL and fake credentials); `[http]`, `[fetch]` and `[plan]`
//! still come from the defaults and the environment, so an override works
//! the same in every mode. Connection variables (`REBALANCER_CMS__…`) are
//! never applied to the sandbox: real credentials never meet it.

use crate::progress;
use crate::settings::{
    self, ApplyKeys, Env, HttpKeys, JournalKeys, Layers, LocalSettings, RunKeys,
};
use anyhow::Context;
use rebalancer_fetcher::{Clients, FetchOptions, FetchReport};
use rebalancer_model::{Snapshot, SnapshotSource, TargetSystem};
use rebalancer_optimizer::PlanConfig;
use rebalancer_sandbox::{Sandbox, SandboxConfig};
use rebalancer_upstream::{
    BaseUrl, CmsClient, CmsConfig, RequestBudget, Stats, WebexClient, WebexConfig, ZohoClient,
    ZohoConfig,
};
use std::path::PathBuf;
use std::time::Duration;

/// Sizes and seed of a generated sandbox world.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct World {
    pub agents: usize,
    pub leads: usize,
    pub seed: u64,
}

impl World {
    fn describe(&self) -> String {
        format!(
            "embedded sandbox (seed {}, {} agents, {} leads)",
            self.seed, self.agents, self.leads
        )
    }
}

/// Where the snapshot comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Fetch from the systems the config file names.
    Live { config: PathBuf },
    /// A saved snapshot; `config` (optional) supplies `[plan]`.
    Snapshot {
        path: PathBuf,
        config: Option<PathBuf>,
    },
    /// Start an embedded sandbox and fetch from it.
    Sandbox(World),
}

/// Clients and fetch options for a live or sandbox source; holds the
/// embedded sandbox (if any) alive until [`Connection::close`].
pub struct Connection {
    pub clients: Clients,
    pub options: FetchOptions,
    sandbox: Option<Sandbox>,
}

impl Connection {
    /// Read everything into a snapshot, with a progress bar on a terminal.
    pub async fn fetch(&self, show_progress: bool) -> anyhow::Result<(Snapshot, FetchReport)> {
        let bar = progress::Bar::fetch(show_progress, &self.clients.stats, &self.options);
        let fetched = rebalancer_fetcher::fetch(&self.clients, &self.options).await;
        bar.finish();
        fetched.context("fetch failed; nothing was written")
    }

    /// The clients an applier writes through (the CMS client carries the
    /// write budget when connected for [`Purpose::Write`]).
    pub fn upstreams(&self) -> rebalancer_applier::Upstreams {
        rebalancer_applier::Upstreams {
            cms: self.clients.cms.clone(),
            webex: self.clients.webex.clone(),
            zoho: self.clients.zoho.clone(),
            threshold_ids: self.options.threshold_ids.clone(),
        }
    }

    /// The system this connection writes to, as plans record it.
    pub fn system(&self) -> TargetSystem {
        TargetSystem {
            cms_base_url: self.options.source.cms_base_url.clone(),
            contact_center_id: self.options.source.contact_center_id,
        }
    }

    /// Stop the embedded sandbox, if there is one.
    pub async fn close(self) {
        if let Some(sb) = self.sandbox {
            sb.shutdown().await;
        }
    }
}

/// A resolved input: the snapshot, the planning config, and how they were
/// made.
pub struct Input {
    pub snapshot: Snapshot,
    pub plan: PlanConfig,
    pub layers: Layers,
    /// What the fetch cost, when the snapshot was fetched now.
    pub report: Option<FetchReport>,
}

/// What the connection is for: a write connection gives the CMS client the
/// `[apply]` budget (writes per second, reads in flight), shared by every
/// request it makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Read,
    Write,
}

/// A connection and the configuration that came with it.
pub struct Connected {
    pub connection: Connection,
    pub plan: PlanConfig,
    pub apply: ApplyKeys,
    pub journal: JournalKeys,
    pub http: HttpKeys,
    pub run: RunKeys,
    pub layers: Layers,
}

/// Connect to a live or sandbox source (no I/O beyond starting the
/// sandbox). `Source::Snapshot` has nothing to connect to.
pub async fn connect(source: &Source, env: &Env, purpose: Purpose) -> anyhow::Result<Connected> {
    let budget = |apply: &ApplyKeys| (purpose == Purpose::Write).then(|| apply.budget());
    match source {
        Source::Live { config } => {
            let loaded = settings::load(config, env)?;
            let s = loaded.value;
            let stats = Stats::default();
            let mut cms = s.cms_config();
            cms.http.budget = budget(&s.apply);
            let clients = Clients {
                cms: CmsClient::new(cms, stats.clone())?,
                webex: WebexClient::new(s.webex_config(), stats.clone())?,
                zoho: ZohoClient::new(s.zoho_config(), stats.clone())?,
                stats,
            };
            let options = s.fetch_options("live")?;
            let connection = Connection {
                clients,
                options,
                sandbox: None,
            };
            Ok(Connected {
                connection,
                plan: s.plan,
                apply: s.apply,
                journal: s.journal,
                http: s.http,
                run: s.run,
                layers: loaded.layers,
            })
        }
        Source::Sandbox(world) => {
            let loaded = settings::load_local(env)?;
            let sb = start_sandbox(world, 0).await?;
            let local = loaded.value;
            let (clients, options) =
                sandbox_connection(&sb, &local, budget(&local.apply), &world.describe())?;
            let connection = Connection {
                clients,
                options,
                sandbox: Some(sb),
            };
            Ok(Connected {
                connection,
                plan: local.plan,
                apply: local.apply,
                journal: local.journal,
                http: local.http,
                run: local.run,
                layers: loaded.layers,
            })
        }
        Source::Snapshot { path, .. } => anyhow::bail!(
            "{} is a saved snapshot: there is no upstream to connect to; use --config FILE",
            path.display()
        ),
    }
}

/// The snapshot and planning config for `source`.
pub async fn resolve(source: &Source, env: &Env, show_progress: bool) -> anyhow::Result<Input> {
    match source {
        Source::Snapshot { path, config } => {
            let loaded = settings::load_plan(config.as_deref(), env)?;
            let snapshot = Snapshot::load(path)?;
            Ok(Input {
                snapshot,
                plan: loaded.value,
                layers: loaded.layers,
                report: None,
            })
        }
        Source::Live { .. } | Source::Sandbox(_) => {
            let c = connect(source, env, Purpose::Read).await?;
            let fetched = c.connection.fetch(show_progress).await;
            c.connection.close().await;
            let (snapshot, report) = fetched?;
            Ok(Input {
                snapshot,
                plan: c.plan,
                layers: c.layers,
                report: Some(report),
            })
        }
    }
}

/// Start a sandbox with `world` on `port` (0 = any free port).
pub async fn start_sandbox(world: &World, port: u16) -> anyhow::Result<Sandbox> {
    let cfg = SandboxConfig {
        seed: world.seed,
        agents: world.agents,
        leads: world.leads,
        ..SandboxConfig::default()
    };
    Sandbox::start(cfg, port).await.with_context(|| {
        format!("cannot start the sandbox on 127.0.0.1:{port}; pick another --port")
    })
}

/// Clients and fetch options that talk to `sb` with its fake credentials.
fn sandbox_connection(
    sb: &Sandbox,
    local: &LocalSettings,
    budget: Option<RequestBudget>,
    description: &str,
) -> anyhow::Result<(Clients, FetchOptions)> {
    let world = sb.world();
    let creds = sb.credentials();
    let base = BaseUrl::parse(&sb.base_url())
        .map_err(|e| anyhow::anyhow!("the sandbox's own URL: {e}"))?;
    let http = settings::http_settings(&local.http, &None);
    let stats = Stats::default();
    let clients = Clients {
        cms: CmsClient::new(
            CmsConfig {
                base_url: base.clone(),
                username: creds.cms_username.clone(),
                password: creds.cms_password.clone().into(),
                contact_center_id: world.contact_center_id,
                page_size: 500,
                // The embedded sandbox honours `limit` up to 500.
                short_page_ends: true,
                http: rebalancer_upstream::HttpSettings {
                    budget,
                    ..http.clone()
                },
            },
            stats.clone(),
        )?,
        webex: WebexClient::new(
            WebexConfig {
                base_url: base.clone(),
                api_key: creds.webex_api_key.clone().into(),
                http: http.clone(),
            },
            stats.clone(),
        )?,
        zoho: ZohoClient::new(
            ZohoConfig {
                accounts_url: base.clone(),
                api_domain: base.clone(),
                client_id: creds.zoho_client_id.clone(),
                client_secret: creds.zoho_client_secret.clone().into(),
                refresh_token: creds.zoho_refresh_token.clone().into(),
                api_version: "v8".into(),
                module: world.module.clone(),
                per_page: 200,
                http,
            },
            stats.clone(),
        )?,
        stats,
    };
    let options = FetchOptions {
        campaigns: world
            .campaigns
            .iter()
            .map(|c| rebalancer_fetcher::CampaignSpec {
                process_id: c.process_id,
                campaign_id: c.campaign_id,
                lead_ids: c.lead_ids.clone(),
            })
            .collect(),
        threshold_ids: world.threshold_ids.clone(),
        concurrency: local.fetch.concurrency,
        strict: local.fetch.strict,
        identity: Default::default(),
        deadline: Duration::from_secs(local.fetch.deadline_secs),
        min_webex_coverage: local.fetch.min_webex_coverage,
        progress: Default::default(),
        source: SnapshotSource {
            description: description.to_owned(),
            cms_base_url: sb.base_url(),
            contact_center_id: Some(world.contact_center_id),
            webex_base_url: sb.base_url(),
            zoho_api_domain: sb.base_url(),
            zoho_module: world.module.clone(),
            threshold_ids: world.threshold_ids.clone(),
        },
    };
    Ok((clients, options))
}
