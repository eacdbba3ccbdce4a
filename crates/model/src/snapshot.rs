//! The `Snapshot`: everything rebalancer knows about the world at one moment.
//!
//! A snapshot is a plain JSON file. `rebalancer fetch` writes one, and
//! `rebalancer plan --snapshot FILE` replans from it offline, so every plan is
//! reproducible from its input. Collections are kept in a canonical order
//! ([`Snapshot::normalize`]) so the same inputs give the same bytes.

use crate::io::{check_schema_version, parse_error, read_limited, write_atomic};
use crate::{AgentId, LeadKey, ModelError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::Path;

/// Version of the snapshot JSON layout. Bump on any incompatible change.
pub const SNAPSHOT_SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    pub schema_version: u32,
    /// RFC 3339 UTC time at which the fetch finished.
    pub fetched_at: String,
    pub source: SnapshotSource,
    /// Sorted by (process_id, campaign_id).
    pub campaigns: Vec<Campaign>,
    /// Every agent seen in the CMS, Webex or Zoho, sorted by id.
    pub agents: Vec<Agent>,
    /// Identity-join and per-lead problems, sorted. Nothing is dropped
    /// silently: anything that could not be joined or read is listed here.
    pub problems: Vec<Problem>,
}

/// Where a snapshot's data came from. Base URLs only: never credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotSource {
    /// A human description, e.g. `sandbox seed 7` or `live`.
    pub description: String,
    pub cms_base_url: String,
    /// The CMS contact center id the leads were read under. Absent in
    /// snapshots written before it was recorded.
    #[serde(default)]
    pub contact_center_id: Option<u64>,
    pub webex_base_url: String,
    pub zoho_api_domain: String,
    pub zoho_module: String,
    pub threshold_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Campaign {
    pub process_id: u64,
    pub campaign_id: u64,
    /// Sorted by lead id.
    pub leads: Vec<Lead>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lead {
    pub lead_id: u64,
    /// The CMS campaign-lead mapping id, when the CMS reported one.
    pub campaign_lead_id: Option<u64>,
    /// Agents currently assigned (may dial this lead), sorted, no duplicates.
    pub assigned: Vec<AgentId>,
    /// Agents in the lead's pool but not assigned, sorted, no duplicates and
    /// disjoint from `assigned`. The eligible pool is `assigned ∪ unassigned`.
    pub unassigned: Vec<AgentId>,
}

impl Lead {
    /// The eligible pool: assigned ∪ unassigned, sorted.
    pub fn pool(&self) -> impl Iterator<Item = &AgentId> {
        let set: BTreeSet<&AgentId> = self.assigned.iter().chain(&self.unassigned).collect();
        set.into_iter()
    }
}

/// Webex Campaign's view of a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebexStatus {
    pub username: String,
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub role_desc: Option<String>,
    /// Raw `user_status` as Webex reported it.
    pub user_status: Option<String>,
    /// Raw `role_status` as Webex reported it.
    pub role_status: Option<String>,
    /// Derived: the user and (when reported) the role are active.
    pub active: bool,
}

/// The Zoho user an agent was joined to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZohoIdentity {
    pub user_id: String,
    pub name: Option<String>,
    pub email: Option<String>,
}

/// One row of a Zoho assignment threshold's `restrict_to` list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdEntry {
    pub threshold_id: String,
    pub backlog_allow_count: i64,
    pub backlog_count: i64,
    pub record_allow_count: i64,
    pub record_assigned_count: i64,
    pub default_assignee: bool,
}

impl ThresholdEntry {
    /// `max(0, min(backlog_allow - backlog, record_allow - record_assigned))`.
    pub fn headroom(&self) -> u64 {
        let backlog = self.backlog_allow_count.saturating_sub(self.backlog_count);
        let records = self
            .record_allow_count
            .saturating_sub(self.record_assigned_count);
        backlog.min(records).max(0) as u64
    }

    /// Zoho assigns nothing new once the backlog is at or above the allowance.
    pub fn at_backlog_allowance(&self) -> bool {
        self.backlog_count >= self.backlog_allow_count
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agent {
    /// CMS user id; for agents known only to Webex/Zoho (supervisors), the
    /// Webex username or, failing that, `zoho:<email or id>`.
    pub id: AgentId,
    /// The agent appears in at least one CMS lead pool.
    pub in_cms: bool,
    pub webex: Option<WebexStatus>,
    pub zoho: Option<ZohoIdentity>,
    /// Threshold rows for this agent, sorted by threshold id.
    pub thresholds: Vec<ThresholdEntry>,
    /// Derived: min headroom over `thresholds`; `None` when the agent has
    /// no threshold entry (not joined to Zoho, or not configured there).
    pub headroom: Option<u64>,
    /// Derived: any threshold marks this user as the default assignee.
    pub default_assignee: bool,
}

impl Agent {
    /// Webex reports the agent active. Unknown to Webex counts as inactive.
    pub fn is_active(&self) -> bool {
        self.webex.as_ref().is_some_and(|w| w.active)
    }

    /// The agent has a threshold row and no room left under it.
    pub fn at_threshold(&self) -> bool {
        self.headroom == Some(0)
    }

    /// Recompute the derived fields from `thresholds`.
    pub fn derive(&mut self) {
        self.thresholds
            .sort_by(|a, b| a.threshold_id.cmp(&b.threshold_id));
        self.headroom = self.thresholds.iter().map(ThresholdEntry::headroom).min();
        self.default_assignee = self.thresholds.iter().any(|t| t.default_assignee);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// A CMS user with no Webex user of the same username.
    NotInWebex,
    /// A Webex user without an email, so it cannot be joined to Zoho.
    NoWebexEmail,
    /// A CMS user whose email matches no Zoho threshold user.
    NotInZoho,
    /// Several Zoho users share the email (compared case-insensitively).
    AmbiguousZohoEmail,
    /// A Webex or Zoho user that is in no CMS lead pool (e.g. a supervisor).
    NotInCms,
    /// The identity-mapping file names a user that does not exist upstream.
    MappingUnknown,
    /// The CMS answered 404 for a configured lead.
    LeadNotFound,
    /// The CMS listed an agent as both assigned and unassigned on a lead.
    InconsistentLead,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Problem {
    pub kind: ProblemKind,
    /// The agent id, email or lead key the problem is about.
    pub subject: String,
    pub detail: String,
}

impl Snapshot {
    /// Put every collection in canonical order and recompute derived fields.
    pub fn normalize(&mut self) {
        self.campaigns
            .sort_by_key(|c| (c.process_id, c.campaign_id));
        for c in &mut self.campaigns {
            c.leads.sort_by_key(|l| l.lead_id);
            for l in &mut c.leads {
                l.assigned.sort();
                l.assigned.dedup();
                l.unassigned.sort();
                l.unassigned.dedup();
                let assigned = &l.assigned;
                l.unassigned.retain(|a| assigned.binary_search(a).is_err());
                // A parsed list keeps the slack of its growth; at 4M pool
                // entries, 200k agents the lists below held 90 MB of it.
                l.assigned.shrink_to_fit();
                l.unassigned.shrink_to_fit();
            }
            c.leads.shrink_to_fit();
        }
        for a in &mut self.agents {
            a.derive();
            a.thresholds.shrink_to_fit();
        }
        self.agents.sort_by(|a, b| a.id.cmp(&b.id));
        self.agents.shrink_to_fit();
        self.problems.sort();
        self.problems.dedup();
        self.source.threshold_ids.sort();
    }

    /// All leads with their keys, in canonical order.
    pub fn leads(&self) -> impl Iterator<Item = (LeadKey, &Lead)> {
        self.campaigns.iter().flat_map(|c| {
            c.leads.iter().map(move |l| {
                (
                    LeadKey {
                        campaign_id: c.campaign_id,
                        lead_id: l.lead_id,
                    },
                    l,
                )
            })
        })
    }

    /// Look an agent up by id (agents are sorted by id).
    pub fn agent(&self, id: &AgentId) -> Option<&Agent> {
        self.agents
            .binary_search_by(|a| a.id.cmp(id))
            .ok()
            .map(|i| &self.agents[i])
    }

    /// Canonical JSON bytes (pretty, trailing newline).
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).expect("a snapshot always serialises");
        out.push(b'\n');
        out
    }

    /// SHA-256 (lower-case hex) of the canonical JSON: names this snapshot
    /// in plans, so an apply can refuse a plan made from another snapshot.
    pub fn content_hash(&self) -> String {
        use sha2::Digest;
        // Stream the canonical bytes of `to_json` into the hasher rather
        // than building them in memory first.
        let mut hasher = sha2::Sha256::new();
        serde_json::to_writer_pretty(&mut hasher, self).expect("a snapshot always serialises");
        hasher.update(b"\n");
        format!("{:x}", hasher.finalize())
    }

    /// Parse a snapshot from bytes. `path` is used only in error messages.
    pub fn from_json(bytes: &[u8], path: &Path) -> Result<Snapshot, ModelError> {
        check_schema_version(bytes, path, "snapshot", SNAPSHOT_SCHEMA_VERSION, "fetch")?;
        let mut snap: Snapshot = AgentId::interning(|| serde_json::from_slice(bytes))
            .map_err(|e| parse_error(e, path, "snapshot", "fetch"))?;
        snap.validate(path)?;
        snap.normalize();
        Ok(snap)
    }

    /// Read and parse a snapshot file, refusing files over [`MAX_FILE_BYTES`].
    pub fn load(path: &Path) -> Result<Snapshot, ModelError> {
        let bytes = read_limited(path, "snapshot")?;
        Snapshot::from_json(&bytes, path)
    }

    /// Write the snapshot atomically (temp file in the same directory, then
    /// rename): a crash leaves either the old file or the new one.
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        write_atomic(path, &self.to_json())
    }

    fn validate(&self, path: &Path) -> Result<(), ModelError> {
        let invalid = |detail: String| ModelError::Invalid {
            path: path.to_owned(),
            what: "snapshot",
            detail,
            regenerate: "fetch",
        };
        let mut ids = BTreeSet::new();
        for a in &self.agents {
            if !ids.insert(&a.id) {
                return Err(invalid(format!("agent `{}` is listed twice", a.id)));
            }
        }
        let mut leads = BTreeSet::new();
        for (key, lead) in self.leads() {
            if !leads.insert(key) {
                return Err(invalid(format!("lead {key} is listed twice")));
            }
            for a in lead.assigned.iter().chain(&lead.unassigned) {
                if !ids.contains(a) {
                    return Err(invalid(format!(
                        "lead {key} names agent `{a}`, which is not in `agents`"
                    )));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MAX_FILE_BYTES;

    pub(crate) fn sample() -> Snapshot {
        let agent = |id: &str, headroom: i64| Agent {
            id: AgentId::new(id),
            in_cms: true,
            webex: Some(WebexStatus {
                username: id.into(),
                email: Some(format!("{id}@example.com")),
                display_name: None,
                role_desc: Some("Agent".into()),
                user_status: Some("Active".into()),
                role_status: Some("Active".into()),
                active: true,
            }),
            zoho: None,
            thresholds: vec![ThresholdEntry {
                threshold_id: "t1".into(),
                backlog_allow_count: 10,
                backlog_count: 10 - headroom,
                record_allow_count: 100,
                record_assigned_count: 0,
                default_assignee: false,
            }],
            headroom: None,
            default_assignee: false,
        };
        let mut s = Snapshot {
            schema_version: SNAPSHOT_SCHEMA_VERSION,
            fetched_at: "2026-11-23T12:00:00Z".into(),
            source: SnapshotSource {
                description: "test".into(),
                cms_base_url: "http://127.0.0.1:1".into(),
                contact_center_id: Some(1),
                webex_base_url: "http://127.0.0.1:1".into(),
                zoho_api_domain: "http://127.0.0.1:1".into(),
                zoho_module: "Leads".into(),
                threshold_ids: vec!["t1".into()],
            },
            campaigns: vec![Campaign {
                process_id: 1,
                campaign_id: 1,
                leads: vec![Lead {
                    lead_id: 2,
                    campaign_lead_id: Some(1),
                    assigned: vec!["b".into()],
                    unassigned: vec!["a".into(), "b".into()],
                }],
            }],
            agents: vec![agent("b", 0), agent("a", 4)],
            problems: vec![],
        };
        s.normalize();
        s
    }

    #[test]
    fn normalize_sorts_and_derives() {
        let s = sample();
        assert_eq!(s.agents[0].id.as_str(), "a");
        assert_eq!(s.agents[0].headroom, Some(4));
        assert!(s.agents[1].at_threshold());
        let lead = &s.campaigns[0].leads[0];
        assert_eq!(lead.unassigned, vec![AgentId::new("a")]);
    }

    #[test]
    fn a_loaded_snapshot_holds_each_agent_name_once() {
        let s = Snapshot::from_json(&sample().to_json(), Path::new("s.json")).unwrap();
        let in_lead = &s.campaigns[0].leads[0].assigned[0];
        let agent = s.agents.iter().find(|a| a.id == *in_lead).unwrap();
        assert!(std::sync::Arc::ptr_eq(&in_lead.0, &agent.id.0));
    }

    #[test]
    fn content_hash_is_the_hash_of_the_file_bytes() {
        use sha2::Digest;
        let s = sample();
        assert_eq!(
            s.content_hash(),
            format!("{:x}", sha2::Sha256::digest(s.to_json()))
        );
    }

    #[test]
    fn round_trips_byte_identically() {
        let s = sample();
        let bytes = s.to_json();
        let back = Snapshot::from_json(&bytes, Path::new("x.json")).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.to_json(), bytes);
    }

    #[test]
    fn other_schema_version_is_named() {
        let mut v: serde_json::Value = serde_json::from_slice(&sample().to_json()).unwrap();
        v["schema_version"] = 99.into();
        let err = Snapshot::from_json(v.to_string().as_bytes(), Path::new("old.json")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("old.json") && msg.contains("99"), "{msg}");
    }

    #[test]
    fn malformed_field_names_file_and_field() {
        let mut v: serde_json::Value = serde_json::from_slice(&sample().to_json()).unwrap();
        v["agents"][0]["headroom"] = "lots".into();
        let err = Snapshot::from_json(v.to_string().as_bytes(), Path::new("bad.json")).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("bad.json") && msg.contains("invalid type"),
            "{msg}"
        );
    }

    #[test]
    fn unknown_agent_in_lead_is_refused() {
        let mut v: serde_json::Value = serde_json::from_slice(&sample().to_json()).unwrap();
        v["campaigns"][0]["leads"][0]["assigned"][0] = "ghost".into();
        let err = Snapshot::from_json(v.to_string().as_bytes(), Path::new("s.json")).unwrap_err();
        assert!(err.to_string().contains("ghost"), "{err}");
    }

    #[test]
    fn save_is_atomic_and_loadable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snap.json");
        let s = sample();
        s.save(&path).unwrap();
        assert_eq!(Snapshot::load(&path).unwrap(), s);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn huge_file_is_refused_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("huge.json");
        let f = std::fs::File::create(&path).unwrap();
        f.set_len(MAX_FILE_BYTES + 1).unwrap(); // sparse: no disk used
        let err = Snapshot::load(&path).unwrap_err();
        assert!(matches!(err, ModelError::TooLarge { .. }), "{err}");
        assert!(err.to_string().contains("huge.json"));
    }

    #[test]
    fn deeply_nested_file_is_an_error() {
        let body = "[".repeat(100_000);
        let err = Snapshot::from_json(body.as_bytes(), Path::new("deep.json")).unwrap_err();
        assert!(err.to_string().contains("deep.json"));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048)) {
            let _ = Snapshot::from_json(&bytes, Path::new("fuzz.json"));
        }

        #[test]
        fn mutated_snapshot_never_panics(pos in 0usize..4000, byte in proptest::prelude::any::<u8>()) {
            let mut bytes = sample().to_json();
            let pos = pos % bytes.len();
            bytes[pos] = byte;
            let _ = Snapshot::from_json(&bytes, Path::new("m.json"));
        }

        #[test]
        fn truncated_snapshot_is_an_error(cut in 0usize..1000) {
            let bytes = sample().to_json();
            let cut = cut.min(bytes.len() - 2);
            proptest::prop_assert!(Snapshot::from_json(&bytes[..cut], Path::new("t.json")).is_err());
        }
    }
}
