//! Plan admission: the one answer to "may this plan be written to this
//! CMS now?", asked by every write path before its first PUT (`apply
//! --plan`, `apply --config`, `resume`, `rollback` and each `run` cycle).
//!
//! [`admit`] is a pure function of the plan, what the command's config
//! expects of it ([`Expected`]), which write path asks ([`WritePath`]) and
//! whether a person allowed a mass unassign (`--allow-mass-unassign`, the
//! run's `ApplyConfig::allow_mass_unassign`).
//! It checks, in this order, and refuses with a [`Refusal`] that names what
//! differs and the fix:
//!
//! 1. the plan's `schema_version` is the one this build writes;
//! 2. its `snapshot_hash` and `config_digest` are SHA-256 hashes, 64
//!    lowercase hex digits (a journaled or hand-edited plan may hold
//!    anything);
//! 3. it was made for the same system: the same CMS base URL and contact
//!    center id as the config names;
//! 4. (apply, resume) its snapshot is no older than `apply.max_plan_age_secs`
//!    and not dated ahead of this host's clock by more than
//!    [`MAX_CLOCK_SKEW`] (a future date is a wrong clock or an edited file,
//!    never "fresh");
//! 5. (apply, resume) every lead it covers is listed in the config's
//!    `[[cms.campaigns]]`, and its `config_digest` equals the digest of the
//!    config's `[plan]` rules, its campaigns and the plan's own what-ifs;
//! 6. (apply, resume) it is not BLOCKED by `plan.max_unassign_share`, unless
//!    `--allow-mass-unassign`.
//!
//! A rollback checks only 1–3: it undoes PUTs the journal recorded, reading
//! the live mapping first, so it must reach the system those PUTs went to
//! and trust a well-formed record; but the plan's age, the rules it was made
//! under and its blast-radius flag do not bear on undoing it (the rules may
//! well have been changed because of that run, and a plan only grows older).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rebalancer_model::{Plan, TargetSystem, PLAN_SCHEMA_VERSION};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::journal::location::mask_url;

/// How far a snapshot's `snapshot_fetched_at` may lie ahead of this host's
/// clock (5 minutes): enough for two hosts whose clocks NTP keeps close,
/// far less than any plan age that matters. A plan dated further ahead is
/// refused as from the future.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(300);

/// Hex digits of a SHA-256 hash (`snapshot_hash`, `config_digest`).
pub const HASH_HEX_LEN: usize = 64;

/// Which write path asks: it decides which checks apply (see the module
/// documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WritePath {
    /// `apply --plan`, `apply --config`, a `run` cycle.
    Apply,
    /// `resume`: the interrupted run's plan, read from the journal.
    Resume,
    /// `rollback` (and the resume of a rollback).
    Rollback,
}

impl fmt::Display for WritePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WritePath::Apply => "apply",
            WritePath::Resume => "resume",
            WritePath::Rollback => "rollback",
        })
    }
}

/// One `[[cms.campaigns]]` table of the config: the leads it reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfiguredCampaign {
    pub process_id: u64,
    pub campaign_id: u64,
    pub lead_ids: Vec<u64>,
}

/// The `config_digest` a plan must carry, as a function of the plan's own
/// what-ifs (which come from the command line that made it, not from the
/// config). The binary builds it from the optimizer's digest of the
/// config's `[plan]` section and `[[cms.campaigns]]`; the applier does not
/// know how the digest is computed.
#[derive(Clone)]
pub struct ConfigDigest(Arc<DigestFn>);

/// The digest of a config with the given what-ifs laid over it.
type DigestFn = dyn Fn(&[String]) -> String + Send + Sync;

impl ConfigDigest {
    pub fn new(digest: impl Fn(&[String]) -> String + Send + Sync + 'static) -> Self {
        ConfigDigest(Arc::new(digest))
    }

    /// The digest of the config with `what_ifs` laid over it.
    pub fn of(&self, what_ifs: &[String]) -> String {
        (self.0)(what_ifs)
    }
}

impl fmt::Debug for ConfigDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ConfigDigest(..)")
    }
}

/// What the config a command was given expects of a plan, and the moment
/// it is asked. (Whether a BLOCKED plan may go is not the config's to say:
/// it is [`admit`]'s last argument.)
#[derive(Clone, Debug)]
pub struct Expected {
    /// The CMS base URL and contact center id the config names.
    pub system: TargetSystem,
    /// The config's `[[cms.campaigns]]`.
    pub campaigns: Vec<ConfiguredCampaign>,
    /// The digest of the config's `[plan]` rules and campaigns.
    pub config_digest: ConfigDigest,
    /// `apply.max_plan_age_secs`.
    pub max_plan_age: Duration,
    /// How far ahead of `now` a snapshot may be dated ([`MAX_CLOCK_SKEW`]).
    pub max_clock_skew: Duration,
    /// This host's clock when the question is asked.
    pub now: OffsetDateTime,
}

/// Why a plan may not be written; each message names what differs and the
/// fix.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum Refusal {
    #[error("the plan has schema_version {found}, this build writes and reads {expected}; fix: make the plan again with this build (`rebalancer plan`)")]
    SchemaVersion { found: u32, expected: u32 },

    #[error("the plan's {field} is not a SHA-256 hash ({HASH_HEX_LEN} lowercase hex digits): {shown}; fix: the plan file or journal record was edited or damaged; make the plan again with `rebalancer plan`")]
    MalformedHash {
        field: &'static str,
        /// The value, escaped and cut to a readable length.
        shown: String,
    },

    #[error("the plan does not record its contact center (it was made from an older snapshot); fix: fetch and plan again")]
    NoContactCenter,

    #[error("the plan was made for CMS {plan_url} (contact center {plan_cc}), but the config names CMS {config_url} (contact center {config_cc}); fix: use the config of the system the plan was made for (cms.base_url, cms.contact_center_id), or fetch and plan again for this one")]
    OtherSystem {
        plan_url: String,
        plan_cc: String,
        config_url: String,
        config_cc: String,
    },

    #[error("the plan's snapshot_fetched_at {shown} is not an RFC 3339 time; fix: make the plan again with `rebalancer plan`")]
    BadFetchTime { shown: String },

    #[error("the plan was made from a snapshot fetched at {fetched_at}, {age_secs} s ago, more than apply.max_plan_age_secs = {max_secs}; fix: fetch and plan again, then apply the new plan")]
    TooOld {
        fetched_at: String,
        age_secs: u64,
        max_secs: u64,
    },

    #[error("the plan's snapshot is dated {fetched_at}, {ahead_secs} s ahead of this host's clock (tolerated: {tolerance_secs} s); fix: check the clocks of the host that fetched and of this one (NTP), then fetch and plan again")]
    FromTheFuture {
        fetched_at: String,
        ahead_secs: u64,
        tolerance_secs: u64,
    },

    #[error("the plan covers lead {lead} of campaign {campaign_id} (process {process_id}), which the config's [[cms.campaigns]] does not list; fix: use the config the plan was made under, or plan again with this one")]
    CampaignNotConfigured {
        process_id: u64,
        campaign_id: u64,
        lead: String,
    },

    #[error("the plan was made under other [plan] rules or [[cms.campaigns]] than this config states (config digest {plan} in the plan, {config} from the config); fix: plan again with this config, or use the config the plan was made with")]
    OtherRules { plan: String, config: String },

    #[error("the plan is BLOCKED: {reason}; fix: check the upstream data (an outage can look like mass inactivity), or pass --allow-mass-unassign if a person has checked it")]
    Blocked { reason: String },
}

/// Decides whether `plan` may be written on `path` under `expected`
/// (`allow_mass_unassign`: a BLOCKED plan may go); see the module
/// documentation for the checks and their order.
pub fn admit(
    plan: &Plan,
    expected: &Expected,
    path: WritePath,
    allow_mass_unassign: bool,
) -> Result<(), Refusal> {
    if plan.schema_version != PLAN_SCHEMA_VERSION {
        return Err(Refusal::SchemaVersion {
            found: plan.schema_version,
            expected: PLAN_SCHEMA_VERSION,
        });
    }
    check_hash("snapshot_hash", &plan.snapshot_hash)?;
    check_hash("config_digest", &plan.config_digest)?;
    check_system(&plan.system, &expected.system)?;
    if path == WritePath::Rollback {
        return Ok(());
    }
    check_age(&plan.snapshot_fetched_at, expected)?;
    check_campaigns(plan, &expected.campaigns)?;
    let digest = expected.config_digest.of(&plan.what_ifs);
    if digest != plan.config_digest {
        return Err(Refusal::OtherRules {
            plan: short(&plan.config_digest),
            config: short(&digest),
        });
    }
    match &plan.blocked {
        Some(b) if !allow_mass_unassign => Err(Refusal::Blocked {
            reason: b.reason.clone(),
        }),
        _ => Ok(()),
    }
}

/// `value` is a SHA-256 hash as this project writes them.
fn check_hash(field: &'static str, value: &str) -> Result<(), Refusal> {
    let ok = value.len() == HASH_HEX_LEN
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Refusal::MalformedHash {
            field,
            shown: shown(value),
        })
    }
}

fn check_system(plan: &TargetSystem, config: &TargetSystem) -> Result<(), Refusal> {
    if plan.contact_center_id.is_none() {
        return Err(Refusal::NoContactCenter);
    }
    if plan != config {
        let cc = |id: Option<u64>| id.map_or("unknown".into(), |i| i.to_string());
        return Err(Refusal::OtherSystem {
            plan_url: shown(&mask_url(&plan.cms_base_url)),
            plan_cc: cc(plan.contact_center_id),
            config_url: shown(&mask_url(&config.cms_base_url)),
            config_cc: cc(config.contact_center_id),
        });
    }
    Ok(())
}

fn check_age(fetched_at: &str, expected: &Expected) -> Result<(), Refusal> {
    let fetched =
        OffsetDateTime::parse(fetched_at, &Rfc3339).map_err(|_| Refusal::BadFetchTime {
            shown: shown(fetched_at),
        })?;
    let age = expected.now - fetched;
    if age.is_negative() {
        let ahead = age.unsigned_abs();
        if ahead > expected.max_clock_skew {
            return Err(Refusal::FromTheFuture {
                fetched_at: fetched_at.to_owned(),
                ahead_secs: ceil_secs(ahead),
                tolerance_secs: expected.max_clock_skew.as_secs(),
            });
        }
        return Ok(());
    }
    let age = age.unsigned_abs();
    if age > expected.max_plan_age {
        return Err(Refusal::TooOld {
            fetched_at: fetched_at.to_owned(),
            age_secs: age.as_secs(),
            max_secs: expected.max_plan_age.as_secs(),
        });
    }
    Ok(())
}

/// Every lead the plan covers is in a configured campaign (same process
/// and campaign id) that lists it.
fn check_campaigns(plan: &Plan, campaigns: &[ConfiguredCampaign]) -> Result<(), Refusal> {
    let mut configured: BTreeMap<(u64, u64), BTreeSet<u64>> = BTreeMap::new();
    for c in campaigns {
        configured
            .entry((c.process_id, c.campaign_id))
            .or_default()
            .extend(c.lead_ids.iter().copied());
    }
    for l in &plan.leads {
        let listed = configured
            .get(&(l.process_id, l.lead.campaign_id))
            .is_some_and(|leads| leads.contains(&l.lead.lead_id));
        if !listed {
            return Err(Refusal::CampaignNotConfigured {
                process_id: l.process_id,
                campaign_id: l.lead.campaign_id,
                lead: l.lead.to_string(),
            });
        }
    }
    Ok(())
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// The first 12 characters of a hash, for a message.
fn short(hash: &str) -> String {
    hash.chars().take(12).collect()
}

/// A stored string as it may be quoted in a message: escaped (control and
/// non-ASCII characters visible as escapes) and cut to 80 characters.
fn shown(value: &str) -> String {
    const MAX: usize = 80;
    let cut: String = value.chars().take(MAX).collect();
    let more = if value.chars().nth(MAX).is_some() {
        "…"
    } else {
        ""
    };
    format!("\"{}\"{more}", cut.escape_default())
}

#[cfg(test)]
mod tests;
