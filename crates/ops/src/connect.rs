//! Connecting: where a command's world comes from (`Source`: a config
//! file's live systems, a saved snapshot, or an embedded seeded sandbox on
//! 127.0.0.1) and one path from either connectable source to clients:
//! settings (`Endpoints` + the local sections) → `Connection`.
//!
//! The sandbox yields typed connection settings (`sandbox_endpoints`: its
//! URL and fake credentials), which go through the same conversions as a
//! config file's and are what `rebalancer sandbox --write-config` writes.
//! `[http]`, `[fetch]`, `[plan]`, `[apply]`, `[journal]` and `[run]` come
//! from the defaults and the environment in every mode, so an override
//! works the same way; connection variables (`REBALANCER_CMS__…`) are never
//! applied to the sandbox: real credentials never meet it.

use crate::settings::{
    self, ApplyKeys, CmsSettings, Endpoints, Env, HttpKeys, JournalKeys, Layers, LocalSettings,
    RunKeys, WebexSettings, ZohoSettings,
};
use crate::OpsError;
use rebalancer_fetcher::{CampaignSpec, Clients, FetchOptions, FetchReport};
use rebalancer_model::{Snapshot, TargetSystem};
use rebalancer_optimizer::PlanConfig;
use rebalancer_sandbox::{Sandbox, SandboxConfig};
use rebalancer_upstream::{BaseUrl, CmsClient, RequestBudget, Stats, WebexClient, ZohoClient};
use std::path::PathBuf;

/// Sizes and seed of a generated sandbox world.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct World {
    pub agents: usize,
    pub leads: usize,
    pub seed: u64,
}

impl World {
    /// How snapshots fetched from this world name their source.
    pub fn describe(&self) -> String {
        format!(
            "embedded sandbox: seed {}, {} agents and {} leads generated",
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
    /// Clients for `endpoints` under the local sections; `budget` is the
    /// write budget every CMS request draws on (`Purpose::Write`).
    fn open(
        endpoints: &Endpoints,
        local: &LocalSettings,
        budget: Option<RequestBudget>,
        description: &str,
        sandbox: Option<Sandbox>,
    ) -> Result<Connection, OpsError> {
        let stats = Stats::default();
        let mut cms = endpoints.cms_config(&local.http);
        cms.http.budget = budget;
        let clients = Clients {
            cms: CmsClient::new(cms, stats.clone())?,
            webex: WebexClient::new(endpoints.webex_config(&local.http), stats.clone())?,
            zoho: ZohoClient::new(endpoints.zoho_config(&local.http), stats.clone())?,
            stats,
        };
        let options = endpoints.fetch_options(&local.fetch, description)?;
        Ok(Connection {
            clients,
            options,
            sandbox,
        })
    }

    /// Read everything into a snapshot (the caller may watch
    /// `options.progress` and `clients.stats` meanwhile).
    pub async fn fetch(&self) -> Result<(Snapshot, FetchReport), OpsError> {
        rebalancer_fetcher::fetch(&self.clients, &self.options)
            .await
            .map_err(OpsError::Fetch)
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

    /// The embedded sandbox, when connected to one (tests read its write
    /// log and counters).
    pub fn sandbox(&self) -> Option<&Sandbox> {
        self.sandbox.as_ref()
    }

    /// Stop the embedded sandbox, if there is one.
    pub async fn close(self) {
        if let Some(sb) = self.sandbox {
            sb.shutdown().await;
        }
    }
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
pub async fn connect(source: &Source, env: &Env, purpose: Purpose) -> Result<Connected, OpsError> {
    let (endpoints, local, layers, sandbox, description) = match source {
        Source::Live { config } => {
            let loaded = settings::load(config, env)?;
            let (endpoints, local) = loaded.value.split();
            (endpoints, local, loaded.layers, None, "live".to_owned())
        }
        Source::Sandbox(world) => {
            let loaded = settings::load_local(env)?;
            let sb = start_sandbox(world, 0).await?;
            let endpoints = sandbox_endpoints(&sb)?;
            (
                endpoints,
                loaded.value,
                loaded.layers,
                Some(sb),
                world.describe(),
            )
        }
        Source::Snapshot { path, .. } => {
            return Err(OpsError::NothingToConnect { path: path.clone() })
        }
    };
    let budget = (purpose == Purpose::Write).then(|| local.apply.budget());
    let connection = Connection::open(&endpoints, &local, budget, &description, sandbox)?;
    Ok(Connected {
        connection,
        plan: local.plan,
        apply: local.apply,
        journal: local.journal,
        http: local.http,
        run: local.run,
        layers,
    })
}

/// Start a sandbox with `world` on `port` (0 = any free port).
pub async fn start_sandbox(world: &World, port: u16) -> Result<Sandbox, OpsError> {
    let cfg = SandboxConfig {
        seed: world.seed,
        agents: world.agents,
        leads: world.leads,
        ..SandboxConfig::default()
    };
    Sandbox::start(cfg, port)
        .await
        .map_err(|source| OpsError::Sandbox { port, source })
}

/// The connection settings that point every client at `sb`, with its fake
/// credentials and its world's campaigns and thresholds.
pub fn sandbox_endpoints(sb: &Sandbox) -> Result<Endpoints, OpsError> {
    let world = sb.world();
    let creds = sb.credentials();
    let base = BaseUrl::parse(&sb.base_url()).map_err(|e| OpsError::SandboxUrl(e.to_string()))?;
    Ok(Endpoints {
        cms: CmsSettings {
            base_url: base.clone(),
            username: creds.cms_username.clone(),
            password: creds.cms_password.clone().into(),
            _password_file: None,
            contact_center_id: world.contact_center_id,
            // The embedded sandbox honours `limit` up to 500.
            page_size: 500,
            short_page_ends: true,
            ca_file: None,
            campaigns: world
                .campaigns
                .iter()
                .map(|c| CampaignSpec {
                    process_id: c.process_id,
                    campaign_id: c.campaign_id,
                    lead_ids: c.lead_ids.clone(),
                })
                .collect(),
        },
        webex: WebexSettings {
            base_url: base.clone(),
            api_key: creds.webex_api_key.clone().into(),
            _api_key_file: None,
            ca_file: None,
        },
        zoho: ZohoSettings {
            accounts_url: base.clone(),
            api_domain: base,
            client_id: creds.zoho_client_id.clone(),
            client_secret: creds.zoho_client_secret.clone().into(),
            _client_secret_file: None,
            refresh_token: creds.zoho_refresh_token.clone().into(),
            _refresh_token_file: None,
            api_version: "v8".into(),
            module: world.module.clone(),
            threshold_ids: world.threshold_ids.clone(),
            per_page: 200,
            ca_file: None,
        },
    })
}

/// A complete config file for `sb`: its connection settings serialised,
/// and `rebalancer console` on a free port like the sandbox's own (every
/// other section keeps its default). `[console]` comes last, so the
/// `[[console.users]]` tables `console new-token --append` adds follow it.
pub fn sandbox_config_toml(sb: &Sandbox) -> Result<String, OpsError> {
    let endpoints = sandbox_endpoints(sb)?;
    let body = endpoints
        .to_toml()
        .map_err(|e| OpsError::SandboxUrl(format!("cannot serialise its settings: {e}")))?;
    Ok(format!(
        "# rebalancer config for a sandbox at {} (fake credentials).\n{body}\n[console]\n# A free port, printed when `rebalancer console` starts.\naddr = \"127.0.0.1:0\"\n",
        sb.base_url()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The file `sandbox --write-config` writes loads as a complete config
    /// whose connection settings are the sandbox's own.
    #[tokio::test]
    async fn the_sandbox_config_file_loads_back_to_the_same_endpoints() {
        let world = World {
            agents: 6,
            leads: 4,
            seed: 3,
        };
        let sb = start_sandbox(&world, 0).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sandbox.toml");
        std::fs::write(&path, sandbox_config_toml(&sb).unwrap()).unwrap();
        let loaded = settings::load(&path, &Env::default()).unwrap();
        let (read, _) = loaded.value.split();
        let made = sandbox_endpoints(&sb).unwrap();
        assert_eq!(read.to_toml().unwrap(), made.to_toml().unwrap());
        assert_eq!(read.cms.campaigns.len(), sb.world().campaigns.len());
        let (console, _, _) = settings::load_console(&path, &Env::default(), None).unwrap();
        assert_eq!(console.addr.port(), 0, "the console on a free port");
        sb.shutdown().await;
    }
}
