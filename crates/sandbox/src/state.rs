//! The live state shared by every handler: the generated world, the mutable
//! lead mappings (behind a lock), issued Zoho tokens, faults and request
//! counters.
//!
//! Locks are `std::sync::Mutex`es held only for short, non-async sections.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::faults::{Endpoint, Fault, FaultState, Faults};
use crate::generate::World;
use crate::{Credentials, SandboxConfig};

/// Requests seen per endpoint, including faulted and rejected ones.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestCounts {
    pub cms_get: u64,
    pub cms_put: u64,
    pub webex: u64,
    pub zoho: u64,
    pub zoho_token: u64,
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
            faults: Mutex::new(FaultState::new(
                cfg.faults,
                ChaCha8Rng::seed_from_u64(cfg.seed ^ 0xFA17_FA17),
            )),
            tokens: Mutex::new(Tokens {
                expiry: HashMap::new(),
                rng: ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x70CE_0000),
                ahead: Duration::ZERO,
            }),
            counts: Default::default(),
        }
    }

    /// Count the request, wait the injected latency, and say whether it must fail.
    pub async fn before(&self, endpoint: Endpoint) -> Option<Fault> {
        self.counts[endpoint as usize].fetch_add(1, Ordering::Relaxed);
        let (latency, fault) = lock(&self.faults).decide(endpoint);
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        if let Some(fault) = fault {
            tracing::debug!(?endpoint, ?fault, "injecting fault");
        }
        fault
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
