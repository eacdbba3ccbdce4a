//! The live state shared by every handler: the generated world, the mutable
//! lead mappings (behind a lock), the changes tests make to the world's
//! Webex statuses and Zoho counts ([`Overrides`]), issued Zoho tokens,
//! faults, request counters and the log of CMS writes ([`WriteRecord`]).
//!
//! Locks are `std::sync::Mutex`es held only for short, non-async sections.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::SandboxError;
use crate::faults::{AfterApply, Endpoint, Fault, FaultState, Faults};
use crate::generate::{User, World, ZohoEntry};
use crate::{Credentials, SandboxConfig, UserInfo};

/// One CMS PUT as the sandbox received and answered it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteRecord {
    /// When it arrived (before any injected latency), since the sandbox
    /// started, on the monotonic clock.
    pub at: Duration,
    /// As sent; 0 when the body could not be read.
    pub campaign_id: u64,
    /// As sent; 0 when the body could not be read.
    pub lead_id: u64,
    /// `assignedUserIds` as sent.
    pub assigned: Vec<String>,
    /// `unassignedUserIds` as sent.
    pub unassigned: Vec<String>,
    /// The lead's assigned users (sorted) right after this PUT was applied;
    /// empty when it was not applied.
    pub assigned_after: Vec<String>,
    /// The HTTP status answered.
    pub status: u16,
    /// Whether the change was applied (also when the answer was then a
    /// fault: see `FaultSpec::p_500_after_apply`).
    pub applied: bool,
}

/// What tests changed in the generated world, by user index.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    webex_active: HashMap<usize, bool>,
    backlog_count: HashMap<usize, u64>,
}

impl Overrides {
    /// Whether user `u` is active in Webex (false when not a Webex user).
    pub fn active(&self, u: usize, user: &User) -> bool {
        match (&user.webex, self.webex_active.get(&u)) {
            (None, _) => false,
            (Some(_), Some(&active)) => active,
            (Some(w), None) => w.active,
        }
    }

    /// User `u`'s Zoho entry with the counts tests set.
    pub fn zoho(&self, u: usize, user: &User) -> Option<ZohoEntry> {
        let mut entry = user.zoho.clone()?;
        if let Some(&backlog) = self.backlog_count.get(&u) {
            entry.backlog_count = backlog;
        }
        Some(entry)
    }
}

/// Requests seen per endpoint, including faulted and rejected ones.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestCounts {
    pub cms_get: u64,
    pub cms_put: u64,
    pub webex: u64,
    pub zoho: u64,
    pub zoho_token: u64,
}

/// A CMS PUT in flight: see [`Shared::put_started`].
pub struct InFlight(Arc<AtomicU64>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The current mapping of one lead (user indices; index order is username order).
#[derive(Clone, Debug, Default)]
pub struct Mapping {
    pub assigned: BTreeSet<usize>,
    pub unassigned: BTreeSet<usize>,
}

/// Issued Zoho access tokens, the RNG that makes them, and how far the
/// token clock runs ahead of the real one (see [`Shared::advance_clock`]).
#[derive(Debug)]
struct Tokens {
    expiry: HashMap<String, Instant>,
    rng: ChaCha8Rng,
    ahead: Duration,
}

impl Tokens {
    /// Now, by the token clock.
    fn now(&self) -> Instant {
        let now = Instant::now();
        now.checked_add(self.ahead).unwrap_or(now)
    }
}

/// Everything the handlers share.
#[derive(Debug)]
pub struct Shared {
    pub world: World,
    pub credentials: Credentials,
    pub cms_max_limit: usize,
    pub zoho_max_per_page: usize,
    pub token_ttl: Duration,
    pub base_url: String,
    /// Indexed like `world.leads`.
    pub mappings: Mutex<Vec<Mapping>>,
    faults: Mutex<FaultState>,
    tokens: Mutex<Tokens>,
    counts: [AtomicU64; 5],
    /// CMS PUTs being answered now (a handler the client's hang-up drops
    /// counts as done).
    puts_in_flight: Arc<AtomicU64>,
    started: Instant,
    writes: Mutex<Vec<WriteRecord>>,
    overrides: Mutex<Overrides>,
    /// The refresh token lacks ZohoCRM.settings.assignment_thresholds.READ:
    /// tokens are issued, restrict_to answers 401 OAUTH_SCOPE_MISMATCH.
    zoho_scope_missing: AtomicBool,
}

/// Lock a mutex, recovering from poisoning (a panicking handler must not
/// take the whole sandbox down).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    pub fn new(cfg: SandboxConfig, world: World, base_url: String) -> Self {
        let mappings = world
            .leads
            .iter()
            .map(|l| Mapping {
                assigned: l.assigned.iter().copied().collect(),
                unassigned: l.unassigned.iter().copied().collect(),
            })
            .collect();
        Shared {
            world,
            credentials: cfg.credentials,
            cms_max_limit: cfg.cms_max_limit.max(1),
            zoho_max_per_page: cfg.zoho_max_per_page.max(1),
            token_ttl: cfg.token_ttl,
            base_url,
            mappings: Mutex::new(mappings),
            faults: Mutex::new(FaultState::new(cfg.faults, cfg.seed ^ 0xFA17_FA17)),
            tokens: Mutex::new(Tokens {
                expiry: HashMap::new(),
                rng: ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x70CE_0000),
                ahead: Duration::ZERO,
            }),
            counts: Default::default(),
            puts_in_flight: Default::default(),
            started: Instant::now(),
            writes: Mutex::new(Vec::new()),
            overrides: Mutex::new(Overrides::default()),
            zoho_scope_missing: AtomicBool::new(false),
        }
    }

    /// Time since the sandbox started (monotonic).
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// As [`Shared::before`], for a write: also says whether the write, if
    /// no fault hit it, is to be answered badly after it is applied.
    pub async fn before_write(
        &self,
        endpoint: Endpoint,
        key: &str,
    ) -> (Option<Fault>, Option<AfterApply>) {
        let decision = self.decided(endpoint, key).await;
        if let Some(after) = decision.after_apply {
            tracing::debug!(?endpoint, ?after, "injecting fault after apply");
        }
        (decision.fault, decision.after_apply)
    }

    /// Counts a CMS PUT as in flight until the returned guard is dropped.
    pub fn put_started(&self) -> InFlight {
        self.puts_in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(self.puts_in_flight.clone())
    }

    /// CMS PUTs being answered now.
    pub fn puts_in_flight(&self) -> u64 {
        self.puts_in_flight.load(Ordering::SeqCst)
    }

    /// Appends to the write log.
    pub fn log_write(&self, record: WriteRecord) {
        lock(&self.writes).push(record);
    }

    /// Every CMS PUT received so far, in arrival order.
    pub fn write_log(&self) -> Vec<WriteRecord> {
        let mut log = lock(&self.writes).clone();
        log.sort_by_key(|r| r.at);
        log
    }

    /// Empties the write log.
    pub fn clear_write_log(&self) {
        lock(&self.writes).clear();
    }

    /// A copy of the changes tests made to the world.
    pub fn overrides(&self) -> Overrides {
        lock(&self.overrides).clone()
    }

    /// Every user as the three systems see it now (with the overrides).
    pub fn user_infos(&self) -> Vec<UserInfo> {
        let overrides = self.overrides();
        let mut infos = self.world.user_infos();
        for (u, info) in infos.iter_mut().enumerate() {
            let user = &self.world.users[u];
            info.active = overrides.active(u, user);
            info.headroom = overrides.zoho(u, user).map_or(0, |z| z.headroom());
        }
        infos
    }

    /// Someone else sets a lead's assigned users: exactly `assigned` (each
    /// in the lead's pool) become assigned, the rest of the pool unassigned.
    pub fn set_lead_users(
        &self,
        campaign_id: u64,
        lead_id: u64,
        assigned: &[&str],
    ) -> Result<(), SandboxError> {
        let lead = self
            .world
            .lead(campaign_id, lead_id)
            .ok_or(SandboxError::UnknownLead {
                campaign_id,
                lead_id,
            })?;
        let pool = self.world.pool(lead);
        let wanted = assigned
            .iter()
            .map(|name| {
                self.world
                    .user_by_name(name)
                    .filter(|u| pool.contains(u))
                    .ok_or_else(|| SandboxError::NotInPool {
                        username: (*name).to_owned(),
                        campaign_id,
                        lead_id,
                    })
            })
            .collect::<Result<BTreeSet<usize>, _>>()?;
        self.with_mapping(lead, |m| {
            m.unassigned = pool.difference(&wanted).copied().collect();
            m.assigned = wanted;
        });
        tracing::debug!(campaign_id, lead_id, "lead users set by a test");
        Ok(())
    }

    /// Sets a Webex user's status to Active or Inactive.
    pub fn set_webex_active(&self, username: &str, active: bool) -> Result<(), SandboxError> {
        let u = self
            .world
            .user_by_name(username)
            .ok_or_else(|| SandboxError::UnknownUser {
                who: username.to_owned(),
            })?;
        if self.world.users[u].webex.is_none() {
            return Err(SandboxError::NotInWebex {
                username: username.to_owned(),
            });
        }
        lock(&self.overrides).webex_active.insert(u, active);
        Ok(())
    }

    /// Sets a Zoho user's `backlog_count` (in every threshold it is in); the
    /// user is named by Zoho user id, email (any case) or username.
    pub fn set_zoho_counts(&self, who: &str, backlog_count: u64) -> Result<(), SandboxError> {
        let world = &self.world;
        let u = world
            .users
            .iter()
            .position(|user| user.zoho.as_ref().is_some_and(|z| z.user_id == who))
            .or_else(|| world.user_by_email(who))
            .or_else(|| world.user_by_name(who))
            .ok_or_else(|| SandboxError::UnknownUser {
                who: who.to_owned(),
            })?;
        if world.users[u].zoho.is_none() {
            return Err(SandboxError::NotInZoho {
                who: who.to_owned(),
            });
        }
        lock(&self.overrides).backlog_count.insert(u, backlog_count);
        Ok(())
    }

    /// Count the request, wait the injected latency, and say whether it
    /// must fail. `key` names what it asks for (a lead and page, a query):
    /// the faults of the n-th request for a key depend on the seed alone.
    pub async fn before(&self, endpoint: Endpoint, key: &str) -> Option<Fault> {
        self.decided(endpoint, key).await.fault
    }

    async fn decided(&self, endpoint: Endpoint, key: &str) -> crate::faults::Decision {
        self.counts[endpoint as usize].fetch_add(1, Ordering::Relaxed);
        let decision = lock(&self.faults).decide(endpoint, key);
        if !decision.latency.is_zero() {
            tokio::time::sleep(decision.latency).await;
        }
        if let Some(fault) = decision.fault {
            tracing::debug!(?endpoint, ?fault, key, "injecting fault");
        }
        decision
    }

    pub fn set_faults(&self, faults: Faults) {
        lock(&self.faults).set(faults);
    }

    pub fn counts(&self) -> RequestCounts {
        let c = |e: Endpoint| self.counts[e as usize].load(Ordering::Relaxed);
        RequestCounts {
            cms_get: c(Endpoint::CmsGet),
            cms_put: c(Endpoint::CmsPut),
            webex: c(Endpoint::Webex),
            zoho: c(Endpoint::Zoho),
            zoho_token: c(Endpoint::ZohoToken),
        }
    }

    /// Issue a new access token valid for `token_ttl`.
    pub fn issue_token(&self) -> String {
        let mut tokens = lock(&self.tokens);
        let hex: String = (0..16)
            .map(|_| format!("{:02x}", tokens.rng.gen::<u8>()))
            .collect();
        let token = format!("1000.{hex}");
        let now = tokens.now();
        tokens.expiry.retain(|_, e| *e > now);
        let expiry = now.checked_add(self.token_ttl).unwrap_or(now);
        tokens.expiry.insert(token.clone(), expiry);
        token
    }

    /// Whether an access token was issued and has not expired.
    pub fn token_valid(&self, token: &str) -> bool {
        let tokens = lock(&self.tokens);
        let now = tokens.now();
        tokens.expiry.get(token).is_some_and(|e| *e > now)
    }

    /// Whether the refresh token has the assignment-threshold scope.
    pub fn set_zoho_scope_granted(&self, granted: bool) {
        self.zoho_scope_missing.store(!granted, Ordering::Relaxed);
    }

    /// Whether restrict_to must answer OAUTH_SCOPE_MISMATCH.
    pub fn zoho_scope_missing(&self) -> bool {
        self.zoho_scope_missing.load(Ordering::Relaxed)
    }

    /// Moves the token clock `by` ahead: tokens expire as if that much time
    /// had passed (lifetimes can be tested without waiting).
    pub fn advance_clock(&self, by: Duration) {
        lock(&self.tokens).ahead += by;
    }

    /// Invalidate every issued access token.
    pub fn expire_tokens(&self) {
        lock(&self.tokens).expiry.clear();
    }

    /// The current (assigned, unassigned) usernames of a lead, each sorted.
    pub fn mapping(&self, campaign_id: u64, lead_id: u64) -> Option<(Vec<String>, Vec<String>)> {
        let lead = self.world.lead(campaign_id, lead_id)?;
        let mappings = lock(&self.mappings);
        let names = |set: &BTreeSet<usize>| {
            let mut v: Vec<String> = set
                .iter()
                .map(|&u| self.world.users[u].username.clone())
                .collect();
            v.sort();
            v
        };
        let m = &mappings[lead];
        Some((names(&m.assigned), names(&m.unassigned)))
    }

    /// Run `f` on a lead's mapping under the lock.
    pub fn with_mapping<R>(&self, lead: usize, f: impl FnOnce(&mut Mapping) -> R) -> R {
        f(&mut lock(&self.mappings)[lead])
    }
}
