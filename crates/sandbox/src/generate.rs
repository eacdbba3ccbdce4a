//! The seeded world generator: processes, campaigns and leads with their
//! agent pools (CMS), users with status and emails (Webex), and assignment
//! threshold entries (Zoho), with the realistic mess the rebalancer must cope
//! with — inactive users, agents at their allowance, users missing in one
//! system, emails that differ only in letter case, supervisors outside the
//! CMS, empty pools.
//!
//! Deterministic: everything is drawn from one `ChaCha8Rng` seeded from the
//! seed, in a fixed order, into `Vec`s; proportions are exact counts (chosen
//! with `rand::seq::index::sample`), not per-item coin flips, so small worlds
//! still contain every kind of mess. Linear in agents + leads.

use std::collections::{BTreeSet, HashMap};

use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::{CampaignInfo, UserInfo, WorldInfo};

/// The contact center every process belongs to.
pub const CONTACT_CENTER_ID: u64 = 1;
/// The Zoho module the thresholds are configured for.
pub const MODULE: &str = "Leads";
/// The Zoho assignment threshold ids of every world.
pub const THRESHOLD_IDS: [&str; 2] = ["4000000000001", "4000000000002"];

/// Share of CMS agents missing in Webex.
const P_MISSING_WEBEX: f64 = 0.02;
/// Share of CMS agents without a Zoho threshold entry.
const P_MISSING_ZOHO: f64 = 0.03;
/// Share of Webex agents that are inactive.
const P_INACTIVE: f64 = 0.08;
/// Share of users whose Webex email differs from Zoho's in letter case only.
const P_EMAIL_CASE: f64 = 0.05;
/// Share of Zoho agents at or over their backlog allowance.
const P_AT_THRESHOLD: f64 = 0.10;
/// Share of leads with an empty pool.
const P_EMPTY_POOL: f64 = 0.05;
/// Share of leads with a pool but nobody assigned.
const P_NOBODY_ASSIGNED: f64 = 0.10;

const FIRST_NAMES: [&str; 32] = [
    "maria", "james", "aisha", "wei", "olga", "carlos", "priya", "john", "fatima", "liam", "sofia",
    "kenji", "amara", "noah", "elena", "omar", "grace", "ivan", "chloe", "raj", "lucia", "ethan",
    "zara", "mateo", "hana", "david", "nina", "samuel", "leila", "oscar", "mei", "tomas",
];
const LAST_NAMES: [&str; 32] = [
    "lopez",
    "smith",
    "khan",
    "zhang",
    "petrova",
    "garcia",
    "sharma",
    "brown",
    "haddad",
    "murphy",
    "rossi",
    "tanaka",
    "okafor",
    "miller",
    "popescu",
    "nasser",
    "kim",
    "ivanov",
    "martin",
    "patel",
    "fernandez",
    "wilson",
    "ali",
    "silva",
    "sato",
    "cohen",
    "novak",
    "adeyemi",
    "rahimi",
    "berg",
    "chen",
    "horvat",
];

/// One generated user. Agents (CMS users) come first in [`World::users`],
/// supervisors after them.
#[derive(Clone, Debug)]
pub struct User {
    pub username: String,
    pub first_name: String,
    pub last_name: String,
    /// Canonical lower-case email (what Zoho reports).
    pub email: String,
    pub supervisor: bool,
    /// Integer campaign user id; `Some` exactly for CMS users.
    pub campaign_user_id: Option<u64>,
    pub webex: Option<WebexUser>,
    pub zoho: Option<ZohoEntry>,
}

/// How Webex Campaign sees a user.
#[derive(Clone, Debug)]
pub struct WebexUser {
    pub user_id: u64,
    pub email: String,
    pub active: bool,
    pub role_id: u64,
    pub role_desc: &'static str,
    pub groups: Vec<String>,
    pub created: String,
    pub last_modified: String,
    pub last_login: String,
}

/// A user's Zoho assignment threshold entry (the same numbers in every
/// threshold the user belongs to).
#[derive(Clone, Debug)]
pub struct ZohoEntry {
    pub user_id: String,
    pub backlog_allow_count: u64,
    pub backlog_count: u64,
    pub record_allow_count: u64,
    pub record_assigned_count: u64,
    pub default_assignee: bool,
    /// Indices into [`THRESHOLD_IDS`].
    pub thresholds: Vec<usize>,
}

impl ZohoEntry {
    /// `max(0, min(backlog_allow - backlog, record_allow - record_assigned))`.
    pub fn headroom(&self) -> u64 {
        let backlog = self.backlog_allow_count.saturating_sub(self.backlog_count);
        let records = self
            .record_allow_count
            .saturating_sub(self.record_assigned_count);
        backlog.min(records)
    }
}

/// One campaign.
#[derive(Clone, Debug)]
pub struct Campaign {
    pub process_id: u64,
    pub campaign_id: u64,
}

/// One lead and its initial mapping (user indices, sorted).
#[derive(Clone, Debug)]
pub struct Lead {
    pub process_id: u64,
    pub campaign_id: u64,
    pub lead_id: u64,
    pub campaign_lead_id: u64,
    pub assigned: Vec<usize>,
    pub unassigned: Vec<usize>,
}

/// The generated world: immutable after generation except for the lead
/// mappings, whose live copy is in [`crate::state`].
#[derive(Debug)]
pub struct World {
    pub contact_center_id: u64,
    /// Number of CMS agents (the first `agents` entries of `users`).
    pub agents: usize,
    pub users: Vec<User>,
    /// Sorted by campaign id.
    pub campaigns: Vec<Campaign>,
    /// In lead id order.
    pub leads: Vec<Lead>,
    /// Per threshold of [`THRESHOLD_IDS`]: its users (indices, ascending).
    pub thresholds: Vec<Vec<usize>>,
    /// (campaign id, lead id) → index into `leads`.
    lead_index: HashMap<(u64, u64), usize>,
    /// username → index into `users`.
    username_index: HashMap<String, usize>,
    /// lower-case email → index into `users`.
    email_index: HashMap<String, usize>,
}

impl World {
    /// The lead with this (campaign, lead) id.
    pub fn lead(&self, campaign_id: u64, lead_id: u64) -> Option<usize> {
        self.lead_index.get(&(campaign_id, lead_id)).copied()
    }

    /// The campaign with this id.
    pub fn campaign(&self, campaign_id: u64) -> Option<&Campaign> {
        self.campaigns
            .binary_search_by_key(&campaign_id, |c| c.campaign_id)
            .ok()
            .map(|i| &self.campaigns[i])
    }

    /// A lead's pool: every user it lists, assigned or not (it never changes:
    /// the CMS refuses changes naming users outside it).
    pub fn pool(&self, lead: usize) -> BTreeSet<usize> {
        let l = &self.leads[lead];
        l.assigned.iter().chain(&l.unassigned).copied().collect()
    }

    /// The user with this username.
    pub fn user_by_name(&self, username: &str) -> Option<usize> {
        self.username_index.get(username).copied()
    }

    /// The user with this email (case-insensitive).
    pub fn user_by_email(&self, email: &str) -> Option<usize> {
        self.email_index.get(&email.to_lowercase()).copied()
    }

    /// The index of a threshold id.
    pub fn threshold(&self, threshold_id: &str) -> Option<usize> {
        THRESHOLD_IDS.iter().position(|t| *t == threshold_id)
    }

    /// What a config needs to know.
    pub fn info(&self) -> WorldInfo {
        let campaigns = self
            .campaigns
            .iter()
            .map(|c| {
                let mut lead_ids: Vec<u64> = self
                    .leads
                    .iter()
                    .filter(|l| l.campaign_id == c.campaign_id)
                    .map(|l| l.lead_id)
                    .collect();
                lead_ids.sort_unstable();
                CampaignInfo {
                    process_id: c.process_id,
                    campaign_id: c.campaign_id,
                    lead_ids,
                }
            })
            .collect();
        WorldInfo {
            contact_center_id: self.contact_center_id,
            campaigns,
            threshold_ids: THRESHOLD_IDS.iter().map(|t| (*t).to_owned()).collect(),
            module: MODULE.to_owned(),
            agents: self.agents,
            leads: self.leads.len(),
        }
    }

    /// Every user as the three systems see it.
    pub fn user_infos(&self) -> Vec<UserInfo> {
        self.users
            .iter()
            .map(|u| UserInfo {
                username: u.username.clone(),
                email: u.email.clone(),
                webex_email: u.webex.as_ref().map(|w| w.email.clone()),
                active: u.webex.as_ref().is_some_and(|w| w.active),
                in_cms: u.campaign_user_id.is_some(),
                in_webex: u.webex.is_some(),
                in_zoho: u.zoho.is_some(),
                supervisor: u.supervisor,
                default_assignee: u.zoho.as_ref().is_some_and(|z| z.default_assignee),
                campaign_user_id: u.campaign_user_id,
                zoho_user_id: u.zoho.as_ref().map(|z| z.user_id.clone()),
                threshold_ids: u
                    .zoho
                    .as_ref()
                    .map(|z| {
                        z.thresholds
                            .iter()
                            .map(|&t| THRESHOLD_IDS[t].to_owned())
                            .collect()
                    })
                    .unwrap_or_default(),
                headroom: u.zoho.as_ref().map_or(0, ZohoEntry::headroom),
            })
            .collect()
    }
}

/// Exactly `round(p·n)` distinct indices out of `n` (at least one when
/// `n >= 10`, so mid-sized worlds always contain every kind of mess).
fn pick(rng: &mut ChaCha8Rng, n: usize, p: f64) -> Vec<bool> {
    let mut k = (n as f64 * p).round() as usize;
    if n >= 10 {
        k = k.max(1);
    }
    let mut chosen = vec![false; n];
    for i in sample(rng, n, k.min(n)) {
        chosen[i] = true;
    }
    chosen
}

/// A date-time string like Webex prints them, within the given year range.
fn date(rng: &mut ChaCha8Rng, years: std::ops::RangeInclusive<u32>) -> String {
    format!(
        "{}-{:02}-{:02} {:02}:{:02}:{:02}",
        rng.gen_range(years),
        rng.gen_range(1..=12),
        rng.gen_range(1..=28),
        rng.gen_range(0..24),
        rng.gen_range(0..60),
        rng.gen_range(0..60)
    )
}

/// `Maria.Lopez.17@Example.Com` for `maria.lopez.17@example.com`.
fn recase(email: &str) -> String {
    let mut out = String::with_capacity(email.len());
    let mut start = true;
    for c in email.chars() {
        if start && c.is_ascii_alphabetic() {
            out.push(c.to_ascii_uppercase());
        } else {
            out.push(c);
        }
        start = matches!(c, '.' | '@');
    }
    out
}

/// Generate the world for `seed` with `agents` CMS agents and `leads` leads.
/// The steps draw from one RNG in a fixed order, so a seed always gives
/// the same world.
pub fn generate(seed: u64, agents: usize, leads: usize) -> World {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut users = gen_users(&mut rng, agents);
    mark_default_assignees(&mut rng, &mut users, agents);
    let campaigns = gen_campaigns(&mut rng, leads);
    let lead_list = gen_leads(&mut rng, leads, agents, &campaigns);
    indexed(agents, users, campaigns, lead_list)
}

/// The CMS agents, then one supervisor per 50 agents (in Webex and Zoho,
/// in no CMS pool), with the messy cases drawn at their rates.
fn gen_users(rng: &mut ChaCha8Rng, agents: usize) -> Vec<User> {
    let supervisors = agents / 50 + 1;
    let width = agents.to_string().len().max(4);
    let missing_webex = pick(rng, agents, P_MISSING_WEBEX);
    let missing_zoho = pick(rng, agents, P_MISSING_ZOHO);
    let inactive = pick(rng, agents, P_INACTIVE);
    let at_threshold = pick(rng, agents, P_AT_THRESHOLD);
    let total = agents + supervisors;
    let email_case = pick(rng, total, P_EMAIL_CASE);

    let mut users = Vec::with_capacity(total);
    for i in 0..total {
        let supervisor = i >= agents;
        let first = FIRST_NAMES[rng.gen_range(0..FIRST_NAMES.len())];
        let last = LAST_NAMES[rng.gen_range(0..LAST_NAMES.len())];
        let username = if supervisor {
            format!("supervisor{:02}", i - agents + 1)
        } else {
            format!("agent{:0width$}", i + 1)
        };
        let email = format!("{first}.{last}.{}@example.com", i + 1);
        let in_webex = supervisor || !missing_webex[i];
        let in_zoho = supervisor || !missing_zoho[i];
        let webex = in_webex.then(|| {
            let shown = if email_case[i] {
                recase(&email)
            } else {
                email.clone()
            };
            webex_user(rng, i, supervisor, shown, supervisor || !inactive[i])
        });
        let zoho = in_zoho.then(|| zoho_entry(rng, i, !supervisor && at_threshold[i]));
        users.push(User {
            username,
            first_name: capitalize(first),
            last_name: capitalize(last),
            email,
            supervisor,
            campaign_user_id: (!supervisor).then_some(3_001 + i as u64),
            webex,
            zoho,
        });
    }
    users
}

/// User `i`'s Webex record (its dates drawn from `rng`).
fn webex_user(
    rng: &mut ChaCha8Rng,
    i: usize,
    supervisor: bool,
    email: String,
    active: bool,
) -> WebexUser {
    WebexUser {
        user_id: 100_001 + i as u64,
        email,
        active,
        role_id: if supervisor { 3 } else { 5 },
        role_desc: if supervisor { "Supervisor" } else { "Agent" },
        groups: vec![if supervisor {
            "Supervisors".to_owned()
        } else {
            format!("Team {}", (b'A' + (i % 6) as u8) as char)
        }],
        created: date(rng, 2020..=2022),
        last_modified: date(rng, 2023..=2023),
        last_login: date(rng, 2024..=2024),
    }
}

/// User `i`'s Zoho threshold entry; `full` puts its backlog at or over its
/// allowance.
fn zoho_entry(rng: &mut ChaCha8Rng, i: usize, full: bool) -> ZohoEntry {
    let backlog_allow_count = rng.gen_range(5..=50u64);
    let record_allow_count = rng.gen_range(10..=100u64);
    let backlog_count = if full {
        backlog_allow_count + rng.gen_range(0..=3)
    } else {
        rng.gen_range(0..backlog_allow_count)
    };
    let record_assigned_count = rng.gen_range(0..record_allow_count);
    let roll: f64 = rng.gen();
    let thresholds = if roll < 0.45 {
        vec![0]
    } else if roll < 0.85 {
        vec![1]
    } else {
        vec![0, 1]
    };
    ZohoEntry {
        user_id: (4_150_868_000_000_000_001u64 + i as u64).to_string(),
        backlog_allow_count,
        backlog_count,
        record_allow_count,
        record_assigned_count,
        default_assignee: false,
        thresholds,
    }
}

/// One or two default assignees: the first supervisor, sometimes an agent
/// too.
fn mark_default_assignees(rng: &mut ChaCha8Rng, users: &mut [User], agents: usize) {
    if let Some(z) = users[agents].zoho.as_mut() {
        z.default_assignee = true;
        z.thresholds = vec![0, 1];
    }
    if agents > 0 && rng.gen_bool(0.5) {
        let i = rng.gen_range(0..agents);
        if let Some(z) = users[i].zoho.as_mut() {
            z.default_assignee = true;
        }
    }
}

/// About one campaign per ten leads (at least two), over two or three
/// processes.
fn gen_campaigns(rng: &mut ChaCha8Rng, leads: usize) -> Vec<Campaign> {
    let campaigns_n = leads.div_ceil(10).max(2);
    let processes = rng.gen_range(2..=3usize).min(campaigns_n);
    (0..campaigns_n)
        .map(|c| Campaign {
            process_id: 101 + (c % processes) as u64,
            campaign_id: 501 + c as u64,
        })
        .collect()
}

/// The leads: every campaign gets one, the rest land at random; pools of
/// 5–30 agents with 1–5 assigned, some pools empty, some with nobody
/// assigned.
fn gen_leads(
    rng: &mut ChaCha8Rng,
    leads: usize,
    agents: usize,
    campaigns: &[Campaign],
) -> Vec<Lead> {
    let campaigns_n = campaigns.len();
    let empty_pool = pick(rng, leads, P_EMPTY_POOL);
    let nobody_assigned = pick(rng, leads, P_NOBODY_ASSIGNED);
    let mut lead_list = Vec::with_capacity(leads);
    for i in 0..leads {
        let campaign = if i < campaigns_n {
            &campaigns[i]
        } else {
            &campaigns[rng.gen_range(0..campaigns_n)]
        };
        let (mut assigned, mut unassigned) = (Vec::new(), Vec::new());
        if !empty_pool[i] && agents > 0 {
            let size = rng.gen_range(5..=30usize).min(agents);
            let k = if nobody_assigned[i] {
                0
            } else {
                rng.gen_range(1..=5usize).min(size)
            };
            let pool = sample(rng, agents, size).into_vec();
            assigned = pool[..k].to_vec();
            unassigned = pool[k..].to_vec();
            assigned.sort_unstable();
            unassigned.sort_unstable();
        }
        lead_list.push(Lead {
            process_id: campaign.process_id,
            campaign_id: campaign.campaign_id,
            lead_id: 1_000 + i as u64,
            campaign_lead_id: 1 + i as u64,
            assigned,
            unassigned,
        });
    }
    lead_list
}

/// The world with its lookup indexes (thresholds' members, leads by key,
/// users by username and email).
fn indexed(agents: usize, users: Vec<User>, campaigns: Vec<Campaign>, leads: Vec<Lead>) -> World {
    let mut thresholds = vec![Vec::new(); THRESHOLD_IDS.len()];
    for (i, u) in users.iter().enumerate() {
        for &t in u.zoho.iter().flat_map(|z| z.thresholds.iter()) {
            thresholds[t].push(i);
        }
    }
    let lead_index = leads
        .iter()
        .enumerate()
        .map(|(i, l)| ((l.campaign_id, l.lead_id), i))
        .collect();
    let username_index = users
        .iter()
        .enumerate()
        .map(|(i, u)| (u.username.clone(), i))
        .collect();
    let mut email_index = HashMap::with_capacity(users.len() * 2);
    for (i, u) in users.iter().enumerate() {
        email_index.insert(u.email.clone(), i);
    }
    // Sanity: usernames are unique (the mapping code relies on it).
    debug_assert_eq!(
        users
            .iter()
            .map(|u| &u.username)
            .collect::<BTreeSet<_>>()
            .len(),
        users.len()
    );
    World {
        contact_center_id: CONTACT_CENTER_ID,
        agents,
        users,
        campaigns,
        leads,
        thresholds,
        lead_index,
        username_index,
        email_index,
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_world() {
        let a = generate(7, 300, 50);
        let b = generate(7, 300, 50);
        assert_eq!(a.user_infos(), b.user_infos());
        let leads = |w: &World| -> Vec<_> {
            w.leads
                .iter()
                .map(|l| {
                    (
                        l.campaign_id,
                        l.lead_id,
                        l.assigned.clone(),
                        l.unassigned.clone(),
                    )
                })
                .collect()
        };
        assert_eq!(leads(&a), leads(&b));
        let c = generate(8, 300, 50);
        assert_ne!(a.user_infos(), c.user_infos());
    }

    #[test]
    fn usernames_sort_like_indices() {
        let w = generate(1, 12_000, 10);
        let names: Vec<_> = w.users[..w.agents].iter().map(|u| &u.username).collect();
        assert!(names.windows(2).all(|p| p[0] < p[1]));
    }

    #[test]
    fn large_world_generates() {
        // Speed is measured by `rebalancer fetch --sandbox` figures, not here.
        let w = generate(3, 20_000, 2_000);
        assert_eq!(w.leads.len(), 2_000);
        assert_eq!(w.agents, 20_000);
    }

    #[test]
    fn recase_changes_only_case() {
        let e = "maria.lopez.17@example.com";
        assert_eq!(recase(e), "Maria.Lopez.17@Example.Com");
        assert_eq!(recase(e).to_lowercase(), e);
    }
}
