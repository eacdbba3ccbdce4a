//! Identity join: CMS user id → Webex username → email → Zoho user.
//!
//! The CMS names agents by user id, which equals the Webex Campaign
//! username; Webex carries the email, and Zoho threshold rows name users by
//! Zoho id, name and email. Emails are compared case-insensitively (after
//! trimming). An explicit mapping (the identity file) wins over the join.
//! Everything that cannot be joined becomes a [`Problem`]; nothing is
//! dropped silently. Users known to Webex but to no CMS lead pool (e.g.
//! supervisors) are kept as agents with `in_cms = false`; Zoho users that
//! match nobody are reported as problems.

use rebalancer_model::{
    Agent, AgentId, Campaign, Lead, Problem, ProblemKind, ThresholdEntry, WebexStatus, ZohoIdentity,
};
use rebalancer_upstream::{ThresholdUser, WebexUser};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};

/// Explicit identity for one CMS user; any field set here wins over the join.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityOverride {
    /// The Webex username, when it differs from the CMS user id.
    pub webex_username: Option<String>,
    /// The Zoho user id to use for this agent.
    pub zoho_user_id: Option<String>,
    /// The Zoho email to use for this agent (case-insensitive).
    pub zoho_email: Option<String>,
}

/// CMS user id → explicit identity.
pub type IdentityMap = BTreeMap<String, IdentityOverride>;

/// One lead's mapping as the CMS reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadMapping {
    pub process_id: u64,
    pub campaign_id: u64,
    pub lead_id: u64,
    pub campaign_lead_id: Option<u64>,
    pub assigned: Vec<String>,
    pub unassigned: Vec<String>,
}

/// Everything the join needs, already read from upstream.
#[derive(Debug)]
pub struct JoinInput<'a> {
    pub leads: Vec<LeadMapping>,
    pub webex: &'a [WebexUser],
    /// Threshold id → its `restrict_to` rows.
    pub zoho: BTreeMap<String, Vec<ThresholdUser>>,
    pub identity: &'a IdentityMap,
}

/// A Webex user as the snapshot records it; what its status strings mean is
/// decided in `upstream` ([`WebexUser::is_active`]), which knows the wire.
fn webex_status(u: &WebexUser) -> WebexStatus {
    WebexStatus {
        username: u.username.clone(),
        email: u.user_email.clone(),
        display_name: u.display_name.clone(),
        role_desc: u.role_desc.clone(),
        user_status: u.user_status.clone(),
        role_status: u.role_status.clone(),
        active: u.is_active(),
    }
}

fn norm_email(e: &str) -> String {
    e.trim().to_lowercase()
}

/// A Zoho user with all its threshold rows.
struct ZohoEntry {
    identity: ZohoIdentity,
    rows: Vec<ThresholdEntry>,
}

/// Join the three views into agents, leads grouped by campaign, and problems.
pub fn join(input: JoinInput<'_>) -> (Vec<Campaign>, Vec<Agent>, Vec<Problem>) {
    let mut problems = Vec::new();
    let (campaigns, cms_ids) = cms_campaigns(input.leads, &mut problems);
    let webex = WebexIndex::new(input.webex);
    let zoho = ZohoIndex::new(&input.zoho);

    // Agents: every CMS id, then Webex users that no CMS pool names.
    let mut agents = Vec::with_capacity(cms_ids.len());
    let mut used_webex: BTreeSet<&str> = BTreeSet::new();
    let mut used_zoho: BTreeSet<String> = BTreeSet::new();
    for id in &cms_ids {
        let ov = input.identity.get(id);
        let webex_name = ov
            .and_then(|o| o.webex_username.as_deref())
            .unwrap_or(id.as_str());
        let found = webex.find(webex_name);
        match found {
            Some(w) => {
                used_webex.insert(w.username.as_str());
            }
            None => problems.push(Problem {
                kind: if ov.is_some_and(|o| o.webex_username.is_some()) {
                    ProblemKind::MappingUnknown
                } else {
                    ProblemKind::NotInWebex
                },
                subject: id.clone(),
                detail: format!(
                    "no Webex Campaign user `{webex_name}`; the agent counts as inactive"
                ),
            }),
        }
        agents.push(agent(
            id,
            true,
            found,
            ov,
            &zoho,
            &mut used_zoho,
            &mut problems,
        ));
    }
    for u in input.webex {
        if used_webex.contains(u.username.as_str()) || cms_ids.contains(&u.username) {
            continue;
        }
        used_webex.insert(u.username.as_str());
        problems.push(Problem {
            kind: ProblemKind::NotInCms,
            subject: u.username.clone(),
            detail: "Webex user in no configured CMS lead pool (e.g. a supervisor); listed, never assigned".into(),
        });
        agents.push(agent(
            &u.username,
            false,
            Some(u),
            None,
            &zoho,
            &mut used_zoho,
            &mut problems,
        ));
    }
    unused_problems(&zoho, &used_zoho, input.identity, &cms_ids, &mut problems);
    (campaigns, agents, problems)
}

/// The CMS leads grouped by campaign, and every CMS user id in a pool. An
/// id listed as both assigned and unassigned counts as assigned (a problem).
fn cms_campaigns(
    leads: Vec<LeadMapping>,
    problems: &mut Vec<Problem>,
) -> (Vec<Campaign>, BTreeSet<String>) {
    let mut campaigns: BTreeMap<(u64, u64), Vec<Lead>> = BTreeMap::new();
    let mut cms_ids: BTreeSet<String> = BTreeSet::new();
    // One shared AgentId per name: an agent is in the pools of many leads.
    let mut interned: BTreeMap<String, AgentId> = BTreeMap::new();
    let mut intern = |name: String| -> AgentId {
        interned
            .entry(name)
            .or_insert_with_key(|n| AgentId::new(n))
            .clone()
    };
    for m in leads {
        let assigned: BTreeSet<String> = m.assigned.into_iter().collect();
        let mut unassigned: BTreeSet<String> = m.unassigned.into_iter().collect();
        for both in assigned.intersection(&unassigned) {
            problems.push(Problem {
                kind: ProblemKind::InconsistentLead,
                subject: format!("{}/{}", m.campaign_id, m.lead_id),
                detail: format!(
                    "the CMS lists `{both}` as both assigned and unassigned; treated as assigned"
                ),
            });
        }
        unassigned.retain(|u| !assigned.contains(u));
        cms_ids.extend(assigned.iter().cloned());
        cms_ids.extend(unassigned.iter().cloned());
        campaigns
            .entry((m.process_id, m.campaign_id))
            .or_default()
            .push(Lead {
                lead_id: m.lead_id,
                campaign_lead_id: m.campaign_lead_id,
                assigned: assigned.into_iter().map(&mut intern).collect(),
                unassigned: unassigned.into_iter().map(&mut intern).collect(),
            });
    }
    let campaigns = campaigns
        .into_iter()
        .map(|((process_id, campaign_id), leads)| Campaign {
            process_id,
            campaign_id,
            leads,
        })
        .collect();
    (campaigns, cms_ids)
}

/// Webex users by exact username, with a case-insensitive fallback when it
/// names one user only.
struct WebexIndex<'a> {
    exact: BTreeMap<&'a str, &'a WebexUser>,
    folded: BTreeMap<String, Vec<&'a WebexUser>>,
}

impl<'a> WebexIndex<'a> {
    fn new(users: &'a [WebexUser]) -> Self {
        let mut exact: BTreeMap<&str, &WebexUser> = BTreeMap::new();
        let mut folded: BTreeMap<String, Vec<&WebexUser>> = BTreeMap::new();
        for u in users {
            exact.entry(u.username.as_str()).or_insert(u);
            folded.entry(u.username.to_lowercase()).or_default().push(u);
        }
        WebexIndex { exact, folded }
    }

    fn find(&self, name: &str) -> Option<&'a WebexUser> {
        self.exact.get(name).copied().or_else(|| {
            match self.folded.get(&name.to_lowercase()).map(Vec::as_slice) {
                Some([only]) => Some(*only),
                _ => None,
            }
        })
    }
}

/// Zoho users by id (rows merged across thresholds) and by email.
struct ZohoIndex {
    by_id: BTreeMap<String, ZohoEntry>,
    by_email: BTreeMap<String, Vec<String>>,
}

impl ZohoIndex {
    fn new(thresholds: &BTreeMap<String, Vec<ThresholdUser>>) -> Self {
        let mut by_id: BTreeMap<String, ZohoEntry> = BTreeMap::new();
        for (threshold_id, rows) in thresholds {
            for r in rows {
                let entry = by_id.entry(r.user.id.clone()).or_insert_with(|| ZohoEntry {
                    identity: ZohoIdentity {
                        user_id: r.user.id.clone(),
                        name: r.user.name.clone(),
                        email: r.user.email.clone(),
                    },
                    rows: Vec::new(),
                });
                // A user listed twice under one threshold keeps its first row.
                if entry.rows.iter().all(|t| &t.threshold_id != threshold_id) {
                    entry.rows.push(ThresholdEntry {
                        threshold_id: threshold_id.clone(),
                        backlog_allow_count: r.backlog_allow_count,
                        backlog_count: r.backlog_count,
                        record_allow_count: r.record_allow_count,
                        record_assigned_count: r.record_assigned_count,
                        default_assignee: r.default_assignee,
                    });
                }
            }
        }
        let mut by_email: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (id, e) in &by_id {
            if let Some(email) = &e.identity.email {
                by_email
                    .entry(norm_email(email))
                    .or_default()
                    .push(id.clone());
            }
        }
        ZohoIndex { by_id, by_email }
    }

    /// The Zoho user an agent joins: the identity file's user id, else the
    /// one user with its email (the identity file's, else Webex's). Every
    /// miss is a problem naming the agent.
    fn match_agent(
        &self,
        id: &str,
        webex: Option<&WebexUser>,
        ov: Option<&IdentityOverride>,
        problems: &mut Vec<Problem>,
    ) -> Option<String> {
        if let Some(zid) = ov.and_then(|o| o.zoho_user_id.clone()) {
            if self.by_id.contains_key(&zid) {
                return Some(zid);
            }
            problems.push(Problem {
                kind: ProblemKind::MappingUnknown,
                subject: id.to_owned(),
                detail: format!("the identity file maps this agent to Zoho user id `{zid}`, which is in no configured threshold"),
            });
            return None;
        }
        let (email, from_file) = match ov.and_then(|o| o.zoho_email.as_deref()) {
            Some(e) => (Some(e), true),
            None => (webex.and_then(|w| w.user_email.as_deref()), false),
        };
        let Some(email) = email else {
            if webex.is_some() {
                problems.push(Problem {
                    kind: ProblemKind::NoWebexEmail,
                    subject: id.to_owned(),
                    detail: "Webex has no email for this user, so it cannot be joined to Zoho; add it to the identity file".into(),
                });
            }
            return None;
        };
        match self.by_email.get(&norm_email(email)).map(Vec::as_slice) {
            Some([only]) => Some(only.clone()),
            Some(many) => {
                problems.push(Problem {
                    kind: ProblemKind::AmbiguousZohoEmail,
                    subject: id.to_owned(),
                    detail: format!(
                        "email {email} matches {} Zoho users ({}); name one in the identity file",
                        many.len(),
                        many.join(", ")
                    ),
                });
                None
            }
            None => {
                problems.push(Problem {
                    kind: if from_file { ProblemKind::MappingUnknown } else { ProblemKind::NotInZoho },
                    subject: id.to_owned(),
                    detail: format!(
                        "no Zoho threshold user has email {email}; the agent has no threshold and follows the unjoined-agent policy"
                    ),
                });
                None
            }
        }
    }
}

/// One agent: its Webex status and, when joined, its Zoho identity and
/// threshold rows (the Zoho user is marked used).
fn agent(
    id: &str,
    in_cms: bool,
    webex: Option<&WebexUser>,
    ov: Option<&IdentityOverride>,
    zoho: &ZohoIndex,
    used_zoho: &mut BTreeSet<String>,
    problems: &mut Vec<Problem>,
) -> Agent {
    let mut agent = Agent {
        id: AgentId::new(id),
        in_cms,
        webex: webex.map(webex_status),
        zoho: None,
        thresholds: Vec::new(),
        headroom: None,
        default_assignee: false,
    };
    if let Some(zid) = zoho.match_agent(id, webex, ov, problems) {
        let entry = &zoho.by_id[&zid];
        agent.zoho = Some(entry.identity.clone());
        agent.thresholds = entry.rows.clone();
        used_zoho.insert(zid);
    }
    agent.derive();
    agent
}

/// Zoho users no agent joined, and identity-file entries for users in no
/// pool: both are problems, never dropped silently.
fn unused_problems(
    zoho: &ZohoIndex,
    used_zoho: &BTreeSet<String>,
    identity: &IdentityMap,
    cms_ids: &BTreeSet<String>,
    problems: &mut Vec<Problem>,
) {
    for (id, e) in &zoho.by_id {
        if used_zoho.contains(id) {
            continue;
        }
        problems.push(Problem {
            kind: ProblemKind::NotInCms,
            subject: e
                .identity
                .email
                .clone()
                .unwrap_or_else(|| format!("zoho:{id}")),
            detail: format!(
                "Zoho threshold user {id} ({}) matches no CMS or Webex user by email",
                e.identity.name.as_deref().unwrap_or("no name")
            ),
        });
    }
    for (cms_id, _) in identity.iter().filter(|(k, _)| !cms_ids.contains(*k)) {
        problems.push(Problem {
            kind: ProblemKind::MappingUnknown,
            subject: cms_id.clone(),
            detail: "the identity file names a CMS user that is in no configured lead pool".into(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rebalancer_upstream::ZohoUser;

    fn webex(name: &str, email: Option<&str>, status: &str) -> WebexUser {
        WebexUser {
            username: name.into(),
            user_email: email.map(Into::into),
            user_status: Some(status.into()),
            role_status: Some("Active".into()),
            ..Default::default()
        }
    }

    fn zoho(id: &str, email: &str, allow: i64, backlog: i64) -> ThresholdUser {
        ThresholdUser {
            backlog_allow_count: allow,
            backlog_count: backlog,
            record_allow_count: 1000,
            record_assigned_count: 0,
            default_assignee: false,
            kind: Some("user".into()),
            user: ZohoUser {
                id: id.into(),
                name: Some(id.into()),
                email: Some(email.into()),
            },
        }
    }

    fn lead(id: u64, assigned: &[&str], unassigned: &[&str]) -> LeadMapping {
        LeadMapping {
            process_id: 1,
            campaign_id: 7,
            lead_id: id,
            campaign_lead_id: Some(id),
            assigned: assigned.iter().map(|s| s.to_string()).collect(),
            unassigned: unassigned.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn run(
        leads: Vec<LeadMapping>,
        webex: &[WebexUser],
        zoho: Vec<ThresholdUser>,
        identity: &IdentityMap,
    ) -> (Vec<Campaign>, Vec<Agent>, Vec<Problem>) {
        join(JoinInput {
            leads,
            webex,
            zoho: BTreeMap::from([("t1".to_string(), zoho)]),
            identity,
        })
    }

    fn kinds(problems: &[Problem], subject: &str) -> Vec<ProblemKind> {
        problems
            .iter()
            .filter(|p| p.subject == subject)
            .map(|p| p.kind)
            .collect()
    }

    #[test]
    fn joins_by_email_case_insensitively() {
        let w = [webex("anna", Some("Anna.B@Example.com"), "Active")];
        let (_, agents, problems) = run(
            vec![lead(1, &["anna"], &[])],
            &w,
            vec![zoho("z1", "anna.b@example.com", 5, 2)],
            &IdentityMap::new(),
        );
        assert_eq!(agents.len(), 1);
        assert_eq!(agents[0].zoho.as_ref().unwrap().user_id, "z1");
        assert_eq!(agents[0].headroom, Some(3));
        assert!(agents[0].is_active());
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn every_unjoinable_agent_is_reported() {
        let w = [
            webex("nozoho", Some("nz@example.com"), "Active"),
            webex("noemail", None, "Active"),
            webex("dup", Some("dup@example.com"), "Inactive"),
            webex("boss", Some("boss@example.com"), "Active"),
        ];
        let z = vec![
            zoho("z1", "dup@example.com", 5, 0),
            zoho("z2", "DUP@example.com", 5, 0),
            zoho("z3", "boss@example.com", 5, 0),
            zoho("z4", "orphan@example.com", 5, 0),
        ];
        let (_, agents, problems) = run(
            vec![lead(1, &["nozoho", "noemail"], &["dup", "ghost"])],
            &w,
            z,
            &IdentityMap::new(),
        );
        assert_eq!(kinds(&problems, "nozoho"), [ProblemKind::NotInZoho]);
        assert_eq!(kinds(&problems, "noemail"), [ProblemKind::NoWebexEmail]);
        assert_eq!(kinds(&problems, "dup"), [ProblemKind::AmbiguousZohoEmail]);
        assert_eq!(kinds(&problems, "ghost"), [ProblemKind::NotInWebex]);
        assert_eq!(kinds(&problems, "boss"), [ProblemKind::NotInCms]);
        assert_eq!(
            kinds(&problems, "orphan@example.com"),
            [ProblemKind::NotInCms]
        );
        // Nobody silently dropped: four CMS agents plus the supervisor.
        assert_eq!(agents.len(), 5);
        let boss = agents.iter().find(|a| a.id.as_str() == "boss").unwrap();
        assert!(!boss.in_cms && boss.headroom == Some(5));
        let dup = agents.iter().find(|a| a.id.as_str() == "dup").unwrap();
        assert!(!dup.is_active() && dup.headroom.is_none());
    }

    #[test]
    fn identity_file_wins_over_the_join() {
        let w = [webex("cms1", Some("wrong@example.com"), "Active")];
        let z = vec![
            zoho("z1", "wrong@example.com", 5, 0),
            zoho("z2", "right@example.com", 9, 0),
        ];
        let map = IdentityMap::from([(
            "cms1".to_string(),
            IdentityOverride {
                zoho_user_id: Some("z2".into()),
                ..Default::default()
            },
        )]);
        let (_, agents, _) = run(vec![lead(1, &["cms1"], &[])], &w, z, &map);
        assert_eq!(agents[0].zoho.as_ref().unwrap().user_id, "z2");
        assert_eq!(agents[0].headroom, Some(9));
    }

    #[test]
    fn both_lists_is_reported_and_counts_as_assigned() {
        let w = [webex("a", Some("a@example.com"), "Active")];
        let (campaigns, _, problems) = run(
            vec![lead(1, &["a"], &["a"])],
            &w,
            vec![zoho("z1", "a@example.com", 5, 0)],
            &IdentityMap::new(),
        );
        assert_eq!(campaigns[0].leads[0].assigned, vec![AgentId::new("a")]);
        assert!(campaigns[0].leads[0].unassigned.is_empty());
        assert_eq!(kinds(&problems, "7/1"), [ProblemKind::InconsistentLead]);
    }
}
