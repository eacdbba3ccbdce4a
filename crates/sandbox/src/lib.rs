//! A fake of the three upstream APIs `rebalancer` talks to — the dialer CMS
//! (GET lead-user, PUT campaignLeadUserMapping), Webex Campaign (users) and
//! Zoho CRM (OAuth token + assignment threshold `restrict_to`) — served by one
//! axum server on 127.0.0.1 for tests and demos.
//!
//! [`Sandbox::start`] generates a seeded world ([`generate`]), keeps its
//! mutable lead mappings in [`state`], and serves every API from the same base
//! URL. Each API has its own module ([`cms`], [`webex`], [`zoho`]) with its
//! routes, auth rules ([`auth`]) and error bodies as the contracts in
//! `shared/upstream-apis/` describe them. [`faults`] injects latency, 5xx,
//! 429 with `Retry-After`, malformed bodies, empty (or null) results, or
//! "fail the first N" per endpoint, and for the CMS PUT a 500 or a malformed
//! 200 *after* applying the change. Token lifetimes run on a clock that
//! tests can move ahead ([`Sandbox::advance_clock`]).
//!
//! For an applier's tests: every CMS PUT is logged ([`Sandbox::write_log`],
//! with arrival time, what was sent, the status answered and the lead's
//! assigned users after it), and the world can be changed under a running
//! client ([`Sandbox::set_lead_users`], [`Sandbox::set_webex_active`],
//! [`Sandbox::set_zoho_counts`]). [`Sandbox::set_zoho_scope_granted`]
//! makes Zoho refuse the refresh token's scope (OAUTH_SCOPE_MISMATCH).
//!
//! **Architecture Invariant:** this crate depends on no other crate of the
//! workspace; it defines its own wire structs, so a misreading of a contract
//! in `upstream` is not silently mirrored here.
//!
//! Determinism: the same seed and sizes give the same world (ChaCha8, ordered
//! collections for everything that reaches output).

pub mod auth;
pub mod cms;
pub mod error;
pub mod faults;
pub mod generate;
pub mod state;
pub mod webex;
pub mod zoho;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use error::SandboxError;
pub use faults::{FaultSpec, Faults};
pub use state::{RequestCounts, WriteRecord};

use state::Shared;

/// Everything that shapes a sandbox: the world's size and seed, the
/// credentials it accepts, server-side paging caps and faults.
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    /// Seed of the world generator (and of the fault / token RNGs).
    pub seed: u64,
    /// Number of CMS agents.
    pub agents: usize,
    /// Total number of leads across all campaigns.
    pub leads: usize,
    /// The credentials every API accepts.
    pub credentials: Credentials,
    /// The server caps the CMS `limit` query parameter to this.
    pub cms_max_limit: usize,
    /// The server caps the Zoho `per_page` query parameter to this.
    pub zoho_max_per_page: usize,
    /// Lifetime of a Zoho access token.
    pub token_ttl: Duration,
    /// Faults injected per endpoint (changeable later with [`Sandbox::set_faults`]).
    pub faults: Faults,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            seed: 42,
            agents: 200,
            leads: 40,
            credentials: Credentials::default(),
            cms_max_limit: 500,
            zoho_max_per_page: 200,
            token_ttl: Duration::from_secs(3600),
            faults: Faults::default(),
        }
    }
}

/// The credentials the sandbox accepts. The defaults are obviously fake but
/// distinctive, so tests can grep outputs and logs for leaks.
#[derive(Clone)]
pub struct Credentials {
    pub cms_username: String,
    pub cms_password: String,
    pub webex_api_key: String,
    pub zoho_client_id: String,
    pub zoho_client_secret: String,
    pub zoho_refresh_token: String,
}

impl Default for Credentials {
    fn default() -> Self {
        Credentials {
            cms_username: "sandbox-cms-user".to_owned(),
            cms_password: "sandbox-cms-password-5f1c".to_owned(),
            webex_api_key: "sandbox-webex-key-9a3e".to_owned(),
            zoho_client_id: "1000.SANDBOXCLIENTID7B2D".to_owned(),
            zoho_client_secret: "sandbox-zoho-secret-c4e8".to_owned(),
            zoho_refresh_token: "1000.sandbox-refresh-token-d06f".to_owned(),
        }
    }
}

/// Secrets are never printed, not even by the sandbox.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("cms_username", &self.cms_username)
            .field("zoho_client_id", &self.zoho_client_id)
            .finish_non_exhaustive()
    }
}

/// What a `rebalancer` config needs to know about the generated world.
#[derive(Clone, Debug)]
pub struct WorldInfo {
    pub contact_center_id: u64,
    /// Sorted by campaign id.
    pub campaigns: Vec<CampaignInfo>,
    pub threshold_ids: Vec<String>,
    /// The Zoho module the thresholds belong to: "Leads".
    pub module: String,
    /// Number of CMS agents.
    pub agents: usize,
    /// Number of leads.
    pub leads: usize,
}

/// One campaign of the world and its leads (sorted).
#[derive(Clone, Debug)]
pub struct CampaignInfo {
    pub process_id: u64,
    pub campaign_id: u64,
    pub lead_ids: Vec<u64>,
}

/// One generated user as the three systems see it, for assertions in tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserInfo {
    /// CMS user id / Webex username (`agent0001`, `supervisor01`).
    pub username: String,
    /// The canonical (Zoho, lower-case) email.
    pub email: String,
    /// The email as Webex reports it; differs from `email` only in letter case
    /// for some users. `None` when the user is missing in Webex.
    pub webex_email: Option<String>,
    /// Webex `user_status` is "Active"; false for users missing in Webex.
    pub active: bool,
    pub in_cms: bool,
    pub in_webex: bool,
    pub in_zoho: bool,
    /// Present in Webex and Zoho but not in the CMS.
    pub supervisor: bool,
    /// Zoho `default_assignee`.
    pub default_assignee: bool,
    /// Integer campaign user id of CMS users.
    pub campaign_user_id: Option<u64>,
    /// Zoho user id of users with a threshold entry.
    pub zoho_user_id: Option<String>,
    /// The thresholds this user appears in (sorted).
    pub threshold_ids: Vec<String>,
    /// `max(0, min(backlog_allow - backlog, record_allow - record_assigned))`;
    /// 0 for users without a Zoho threshold entry (see `in_zoho`).
    pub headroom: u64,
}

/// A running sandbox server. Dropping it stops the server too (without
/// waiting); [`Sandbox::shutdown`] stops it gracefully.
pub struct Sandbox {
    shared: Arc<Shared>,
    addr: SocketAddr,
    credentials: Credentials,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Sandbox {
    /// Bind 127.0.0.1:port (0 = random), generate the world, serve in a tokio task.
    pub async fn start(cfg: SandboxConfig, port: u16) -> std::io::Result<Sandbox> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let base_url = format!("http://{addr}");
        let credentials = cfg.credentials.clone();
        let world = generate::generate(cfg.seed, cfg.agents, cfg.leads);
        let shared = Arc::new(Shared::new(cfg, world, base_url));
        let app = axum::Router::new()
            .merge(cms::routes())
            .merge(webex::routes())
            .merge(zoho::routes())
            .with_state(shared.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
            if let Err(error) = served {
                tracing::error!(%error, "sandbox server failed");
            }
        });
        tracing::info!(%addr, "sandbox listening");
        Ok(Sandbox {
            shared,
            addr,
            credentials,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// "http://127.0.0.1:PORT" — the same base serves CMS, Webex and Zoho
    /// (accounts + api).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What a config needs to know about the world.
    pub fn world(&self) -> WorldInfo {
        self.shared.world.info()
    }

    /// Every generated user (agents, then supervisors) as the three systems
    /// see it now (`active` and `headroom` reflect [`Sandbox::set_webex_active`]
    /// and [`Sandbox::set_zoho_counts`]).
    pub fn world_users(&self) -> Vec<UserInfo> {
        self.shared.user_infos()
    }

    /// Every CMS PUT received so far (faulted and refused ones included), in
    /// arrival order.
    pub fn write_log(&self) -> Vec<WriteRecord> {
        self.shared.write_log()
    }

    /// Forgets the PUTs logged so far.
    pub fn clear_write_log(&self) {
        self.shared.clear_write_log();
    }

    /// Someone else changes a lead: exactly `assigned` become its assigned
    /// users, the rest of its pool unassigned. Every name must be in the
    /// lead's pool.
    pub fn set_lead_users(
        &self,
        campaign_id: u64,
        lead_id: u64,
        assigned: &[&str],
    ) -> Result<(), SandboxError> {
        self.shared.set_lead_users(campaign_id, lead_id, assigned)
    }

    /// Sets a Webex user's `user_status` to Active (`true`) or Inactive.
    pub fn set_webex_active(&self, username: &str, active: bool) -> Result<(), SandboxError> {
        self.shared.set_webex_active(username, active)
    }

    /// Sets a Zoho user's `backlog_count` in every threshold it is in (e.g.
    /// to its `backlog_allow_count` or above, to put it at its allowance).
    /// `who` is the Zoho user id, the email (any case) or the username.
    pub fn set_zoho_counts(&self, who: &str, backlog_count: u64) -> Result<(), SandboxError> {
        self.shared.set_zoho_counts(who, backlog_count)
    }

    /// Replace the faults of every endpoint; resets the `fail_first` counters.
    pub fn set_faults(&self, faults: Faults) {
        self.shared.set_faults(faults);
    }

    /// All issued Zoho access tokens become invalid (the next API call gets
    /// 401 INVALID_TOKEN).
    pub fn expire_tokens(&self) {
        self.shared.expire_tokens();
    }

    /// `false`: the configured refresh token lacks the scope
    /// `ZohoCRM.settings.assignment_thresholds.READ`, as one generated for
    /// another scope would: the token endpoint still issues access tokens,
    /// and restrict_to answers 401 OAUTH_SCOPE_MISMATCH (refreshing does not
    /// help). `true` (the start state) grants it again.
    pub fn set_zoho_scope_granted(&self, granted: bool) {
        self.shared.set_zoho_scope_granted(granted);
    }

    /// Moves the sandbox's token clock `by` ahead: issued Zoho access tokens
    /// expire as if that much time had passed (`token_ttl` counts on this
    /// clock), so token lifetimes are tested without waiting.
    pub fn advance_clock(&self, by: Duration) {
        self.shared.advance_clock(by);
    }

    /// The current (assigned, unassigned) usernames of a lead, each sorted;
    /// `None` for an unknown (campaign, lead).
    pub fn mapping(&self, campaign_id: u64, lead_id: u64) -> Option<(Vec<String>, Vec<String>)> {
        self.shared.mapping(campaign_id, lead_id)
    }

    /// Requests seen per endpoint, including faulted and rejected ones.
    pub fn counts(&self) -> RequestCounts {
        self.shared.counts()
    }

    /// CMS PUTs being answered now: 0 once every PUT received has been
    /// answered and logged, or dropped with its client's connection
    /// (dropped before the change: nothing applied).
    pub fn puts_in_flight(&self) -> u64 {
        self.shared.puts_in_flight()
    }

    /// The credentials this sandbox accepts.
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// Stop accepting connections, finish in-flight requests, and wait.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            if let Err(error) = task.await {
                tracing::warn!(%error, "sandbox server task ended abnormally");
            }
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Query or form parameters as a map (the first occurrence of a key wins).
pub(crate) fn params(raw: Option<&[u8]>) -> std::collections::BTreeMap<String, String> {
    let mut map = std::collections::BTreeMap::new();
    for (k, v) in url::form_urlencoded::parse(raw.unwrap_or_default()) {
        map.entry(k.into_owned()).or_insert_with(|| v.into_owned());
    }
    map
}
