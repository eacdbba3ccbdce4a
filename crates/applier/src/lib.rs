//! Applies a [`Plan`] to the dialer CMS, safely.
//!
//! [`apply`] takes the journal's lease, re-reads every lead of the plan and
//! refuses a mass unassign the plan did not foresee (the live blast
//! radius), then works through the leads with bounded concurrency. For each
//! lead it re-reads the mapping just before the first PUT (drift: skip or
//! rebase), re-checks each agent to assign against Webex (still active) and
//! Zoho (still under its allowances), and sends one PUT carrying the lead's
//! assigns and unassigns, or several of at most `max_users_per_put` ids,
//! assigns first, so that a lead that had agents never has none. Every PUT
//! is journaled before it is sent and after it answers; an ambiguous
//! failure (the write may have been applied) is read back before anything
//! is sent again. Afterwards every touched lead is read back and compared
//! with the plan (`verify_mismatches`).
//!
//! [`resume`] continues an interrupted or killed run from the journal by
//! diffing each remaining lead's live mapping against the plan; [`rollback`]
//! undoes what a run (and its resumptions) applied, under the same rules;
//! [`history`] and [`show`] read the journal; [`recent_moves`] lists the
//! agents and leads that PUTs applied since a time changed (the flap guard
//! of a scheduled run).
//!
//! Every write path asks one question first: [`admit`] (module
//! [`admission`]) decides, as a pure function of the plan and what the
//! command's config expects of it ([`Expected`]), whether the plan may be
//! written: the same system, a snapshot neither too old
//! (`apply.max_plan_age_secs`) nor dated in the future (beyond
//! [`MAX_CLOCK_SKEW`]), the same `[plan]` rules and campaigns (config
//! digest), the schema version, well-formed hashes, and not BLOCKED unless
//! allowed. [`apply`], [`resume`] and [`rollback`] call it before taking
//! the lease; a `run` cycle asks it at its gate as well.
//!
//! The journal is a SQLite file on this host or a PostgreSQL database that
//! replicas on several hosts share ([`JournalLocation`]); both keep the
//! same tables and rules, write-before-send and the single-applier lease.
//!
//! As each PUT ends, [`series`] counts it (sent, failed) and the moves it
//! made, through the `metrics` facade, for the binary's `/metrics`.
//!
//! The write rate is not set here: whoever builds the clients gives the CMS
//! client its request budget (`HttpSettings::budget`), shared by every
//! writer.
//!
//! **Architecture Invariant:** depends only on `model` and `upstream` among
//! the workspace's crates; knows no URL or wire format and no solver.
//! **Architecture Invariant:** nothing is sent that was not journaled first;
//! no PUT is empty; an inactive or over-allowance agent is never assigned.
//! **API Boundary:** the functions above, [`admission`] ([`admit`],
//! [`Expected`], [`Refusal`], [`WritePath`]), [`latest_unfinished`],
//! [`Upstreams`], [`ApplyConfig`],
//! [`OnDrift`], [`Progress`], the report and record types, [`RecentMoves`],
//! [`JournalLocation`] (and [`mask_url`]),
//! [`ApplyError`],
//! the pure [`batch`] planning of a lead's PUTs, and [`series`].

pub mod admission;
pub mod batch;
mod error;
mod executor;
mod goal;
mod journal;
pub mod proposals;
mod recent;
mod recheck;
mod report;
mod resumable;
mod run;
pub mod series;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rebalancer_upstream::{CmsClient, WebexClient, ZohoClient};

pub use admission::{
    admit, ConfigDigest, ConfiguredCampaign, Expected, Refusal, WritePath, MAX_CLOCK_SKEW,
};
pub use error::ApplyError;
pub use journal::{mask_url, process_name, JournalLocation};
pub use rebalancer_model::{LeadKey, Plan};
pub use recent::{recent_moves, RecentMoves};
pub use report::{
    CycleMode, CycleOutcome, CycleRecord, LeadRecord, LeadReport, LeadState, PutRecord, PutState,
    RunDetail, RunKind, RunOutcome, RunRecord, RunReport,
};
pub use resumable::latest_unfinished;
pub use run::{
    apply, apply_proposal, cycles, history, prepare_journal, record_cycle, resumable_run, resume,
    rollback, show,
};

/// The clients a run uses; the binary builds them (with the write budget).
#[derive(Clone, Debug)]
pub struct Upstreams {
    pub cms: CmsClient,
    pub webex: WebexClient,
    pub zoho: ZohoClient,
    /// The Zoho assignment thresholds whose allowances are re-checked
    /// (`zoho.threshold_ids`).
    pub threshold_ids: Vec<String>,
}

/// What to do with a lead whose live mapping drifted since the snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnDrift {
    /// Leave it alone and report it `Drifted`.
    Skip,
    /// Send only the plan's assigns still missing and unassigns still
    /// present; never remove an agent the plan did not name.
    Rebase,
}

/// The `[apply]` settings of a run.
#[derive(Clone, Debug)]
pub struct ApplyConfig {
    /// `apply.max_users_per_put` (default 50): ids per PUT, both lists together.
    pub max_users_per_put: usize,
    /// `apply.on_drift` (default skip).
    pub on_drift: OnDrift,
    /// `apply.recheck_secs` (default 60): Webex and Zoho re-reads are cached
    /// at most this long.
    pub recheck: Duration,
    /// `apply.concurrency` (default 4): leads in flight.
    pub concurrency: usize,
    /// `apply.lease_secs` (default 60): the journal lease, renewed every
    /// third of it.
    pub lease_ttl: Duration,
    /// `plan.max_unassign_share`, re-checked against the live mapping.
    pub max_unassign_share: f64,
    /// `--allow-mass-unassign`.
    pub allow_mass_unassign: bool,
    /// Retry policy after an ambiguous write (`http.max_retries`,
    /// `http.backoff_initial_ms`, `http.backoff_max_ms`): the lead is read
    /// back and what is still missing is sent again after a backoff with
    /// jitter, until `retries` rounds in a row make no progress.
    pub retry: RetryPolicy,
}

impl ApplyConfig {
    /// The applier's rules for its options, the one home of them: the
    /// settings run this at load (so `check` refuses what a run would) and
    /// every run again before its first write.
    pub fn validate(&self) -> Result<(), ApplyError> {
        let bad = |key, detail: &str| {
            Err(ApplyError::InvalidConfig {
                key,
                detail: detail.to_string(),
            })
        };
        if self.max_users_per_put == 0 {
            return bad("apply.max_users_per_put", "must be at least 1");
        }
        if self.concurrency == 0 {
            return bad("apply.concurrency", "must be at least 1");
        }
        if !(0.0..=1.0).contains(&self.max_unassign_share) {
            return bad("plan.max_unassign_share", "must be between 0 and 1");
        }
        if self.lease_ttl < Duration::from_secs(1) {
            return bad("apply.lease_secs", "must be at least 1");
        }
        Ok(())
    }
}

/// How ambiguous writes are retried: exponential backoff with jitter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Rounds in a row without progress before the lead is given up.
    pub retries: u32,
    /// First delay; doubles per round without progress.
    pub backoff_initial: Duration,
    /// Longest delay (before jitter).
    pub backoff_max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retries: 4,
            backoff_initial: Duration::from_millis(200),
            backoff_max: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The delays between rounds of retries without progress (backon's
    /// exponential backoff, as the upstream clients use): `initial · 2^n`,
    /// capped at `backoff_max`, each plus a random jitter of up to itself;
    /// a round that makes progress starts a new sequence.
    pub fn backoff(&self) -> backon::ExponentialBackoff {
        use backon::BackoffBuilder;
        backon::ExponentialBuilder::default()
            .with_min_delay(self.backoff_initial)
            .with_max_delay(self.backoff_max)
            .with_jitter()
            .without_max_times()
            .build()
    }
}

impl Default for ApplyConfig {
    fn default() -> Self {
        ApplyConfig {
            max_users_per_put: 50,
            on_drift: OnDrift::Skip,
            recheck: Duration::from_secs(60),
            concurrency: 4,
            lease_ttl: Duration::from_secs(60),
            max_unassign_share: 0.5,
            allow_mass_unassign: false,
            retry: RetryPolicy::default(),
        }
    }
}

/// Live counters of a run, for a progress bar. Clones share the counters.
#[derive(Clone, Debug, Default)]
pub struct Progress {
    inner: Arc<ProgressInner>,
}

#[derive(Debug, Default)]
struct ProgressInner {
    leads_total: AtomicU64,
    leads_done: AtomicU64,
    puts_sent: AtomicU64,
    puts_failed: AtomicU64,
}

impl Progress {
    /// Leads the run will look at.
    pub fn leads_total(&self) -> u64 {
        self.inner.leads_total.load(Ordering::Relaxed)
    }
    /// Leads finished (whatever their state).
    pub fn leads_done(&self) -> u64 {
        self.inner.leads_done.load(Ordering::Relaxed)
    }
    /// PUTs sent.
    pub fn puts_sent(&self) -> u64 {
        self.inner.puts_sent.load(Ordering::Relaxed)
    }
    /// PUTs refused or left ambiguous.
    pub fn puts_failed(&self) -> u64 {
        self.inner.puts_failed.load(Ordering::Relaxed)
    }

    pub(crate) fn set_total(&self, n: u64) {
        self.inner.leads_total.store(n, Ordering::Relaxed);
    }
    pub(crate) fn lead_done(&self) {
        self.inner.leads_done.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn put_sent(&self) {
        self.inner.puts_sent.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn put_failed(&self) {
        self.inner.puts_failed.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_double_are_capped_and_jittered_up_to_twice() {
        let p = RetryPolicy {
            retries: 4,
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_millis(1000),
        };
        let ms = |d: Duration| d.as_millis() as u64;
        // Each delay is its base (100, 200, 400, 800, then 1000 capped)
        // plus a jitter below the base, many times over.
        for _ in 0..50 {
            let delays: Vec<u64> = p.backoff().take(8).map(ms).collect();
            for (n, &d) in delays.iter().enumerate() {
                let base = (100u64 << n.min(4)).min(1000);
                assert!(d >= base && d <= 2 * base, "round {n}: {d} ms, base {base}");
            }
        }
        assert!(
            p.backoff().nth(100).is_some(),
            "no limit on rounds: `retries` is"
        );
    }
}
