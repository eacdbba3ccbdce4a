//! Proposals: plans that wait in the journal for a person's approval
//! before anything is written (`run.approval`), and what became of each.
//!
//! States: `pending` (waiting) → `approved` or `rejected` (a person
//! decided, with a comment); `approved` → `applied` (with the run that
//! applied it: `crate::apply_proposal` claims it under the lease when the
//! run is recorded) or `expired` (grown too old, or no longer admitted, when it
//! came to be applied); `pending` → `superseded` (a later cycle planned
//! other changes) or `expired`. At most one proposal is open (pending or
//! approved) at a time; every transition is one conditional statement, so
//! of two replicas or two people acting at once exactly one succeeds and
//! the other is told the proposal is no longer pending (`NotPending`).
//!
//! [`propose`] keeps a pending proposal whose changes are the same (the
//! same leads, agents and actions: [`changes_key`]), whatever else moved
//! (a new snapshot hash, a later fetch time), and supersedes one with other
//! changes; an approved proposal is never superseded (it is applied or
//! expires first); changes a person rejected are not proposed again while
//! the plan stays the same.

use crate::journal::{Journal, JournalLocation};
use crate::ApplyError;
use rebalancer_model::{Action, Plan};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

/// Where a proposal stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProposalState {
    Pending,
    Approved,
    Rejected,
    Applied,
    Superseded,
    Expired,
}

crate::report::text_enum!(ProposalState {
    Pending => "pending",
    Approved => "approved",
    Rejected => "rejected",
    Applied => "applied",
    Superseded => "superseded",
    Expired => "expired",
});

/// One proposal as the journal holds it (its plan and report are read
/// apart: [`plan_of`], [`report_of`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Proposal {
    pub id: i64,
    pub state: ProposalState,
    pub plan_hash: String,
    /// SHA-256 of the plan's changes ([`changes_key`]).
    pub changes_key: String,
    pub snapshot_hash: String,
    pub config_digest: String,
    pub assigns: usize,
    pub unassigns: usize,
    pub proposed_at: String,
    /// The process that proposed it (`host:pid`).
    pub proposed_by: String,
    pub decided_at: Option<String>,
    /// Who approved or rejected it.
    pub decided_by: Option<String>,
    pub comment: Option<String>,
    /// Why it was superseded or expired.
    pub ended_reason: Option<String>,
    /// The run that applied it.
    pub run: Option<i64>,
}

/// What [`propose`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Proposed {
    /// A new pending proposal; `superseded`: the pending one it replaced.
    New { id: i64, superseded: Option<i64> },
    /// The pending proposal with the same changes stays.
    Kept { id: i64 },
    /// An approved proposal waits to be applied: nothing new is proposed.
    AwaitingApply { id: i64 },
    /// The latest proposal had the same changes and was rejected: they
    /// are not proposed again until the plan changes.
    Rejected { id: i64 },
}

/// A person's decision on a pending proposal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Reject,
}

/// SHA-256 over the plan's changes (lead, agent, action), in their
/// (canonical) order: equal for two plans that would write the same.
pub fn changes_key(plan: &Plan) -> String {
    let mut h = Sha256::new();
    for c in &plan.changes {
        let action = match c.action {
            Action::Assign => "+",
            Action::Unassign => "-",
        };
        h.update(
            format!(
                "{}/{} {action}{}\n",
                c.lead.campaign_id, c.lead.lead_id, c.agent
            )
            .as_bytes(),
        );
    }
    format!("{:x}", h.finalize())
}

/// SHA-256 of the plan's JSON, as runs and cycles record it.
fn plan_hash(plan: &Plan) -> String {
    format!("{:x}", Sha256::digest(plan.to_json()))
}

/// Records `plan` (with its HTML `report`) as waiting for approval, by
/// `holder`; keeps a pending proposal with the same changes and
/// supersedes one with other changes (see the module documentation).
pub fn propose(
    journal: &JournalLocation,
    plan: &Plan,
    report: &str,
    holder: &str,
) -> Result<Proposed, ApplyError> {
    let j = Journal::open(journal.clone())?;
    let key = changes_key(plan);
    if let Some(last) = j.proposals(None, 1)?.pop() {
        if last.state == ProposalState::Rejected && last.changes_key == key {
            return Ok(Proposed::Rejected { id: last.id });
        }
    }
    let mut superseded = None;
    if let Some(open) = j.open_proposal()? {
        match open.state {
            ProposalState::Approved => return Ok(Proposed::AwaitingApply { id: open.id }),
            _ if open.changes_key == key => return Ok(Proposed::Kept { id: open.id }),
            _ => {
                let why = format!(
                    "a later plan has other changes ({} assigns, {} unassigns)",
                    plan.summary.assigns, plan.summary.unassigns
                );
                if !j.move_proposal(
                    open.id,
                    ProposalState::Pending,
                    ProposalState::Superseded,
                    None,
                    None,
                    Some(&why),
                    None,
                )? {
                    // Decided meanwhile: what it became decides what to do.
                    return propose(journal, plan, report, holder);
                }
                superseded = Some(open.id);
            }
        }
    }
    let json = plan.to_json();
    let new = crate::journal::proposals::NewProposal {
        plan_hash: &plan_hash(plan),
        changes_key: &key,
        snapshot_hash: &plan.snapshot_hash,
        config_digest: &plan.config_digest,
        plan_json: &json,
        report_html: report,
        assigns: plan.summary.assigns,
        unassigns: plan.summary.unassigns,
        proposed_by: holder,
    };
    match j.insert_proposal(&new)? {
        Some(id) => Ok(Proposed::New { id, superseded }),
        // Another replica proposed meanwhile: what it proposed decides.
        None => propose(journal, plan, report, holder),
    }
}

/// Approves or rejects pending proposal `id` as `who`, with `comment`;
/// `NotPending` (with its state) when it is not pending any more.
pub fn decide(
    journal: &JournalLocation,
    id: i64,
    decision: Decision,
    who: &str,
    comment: &str,
) -> Result<Proposal, ApplyError> {
    let j = Journal::open(journal.clone())?;
    let to = match decision {
        Decision::Approve => ProposalState::Approved,
        Decision::Reject => ProposalState::Rejected,
    };
    if !j.move_proposal(
        id,
        ProposalState::Pending,
        to,
        Some(who),
        Some(comment),
        None,
        None,
    )? {
        let now = j.proposal(id)?;
        return Err(ApplyError::NotPending {
            id,
            state: now.state,
        });
    }
    j.proposal(id)
}

/// The approved proposal waiting to be applied, with its plan.
pub fn approved(journal: &JournalLocation) -> Result<Option<(Proposal, Plan)>, ApplyError> {
    let Some(j) = Journal::open_existing(journal.clone())? else {
        return Ok(None);
    };
    match j.open_proposal()? {
        Some(p) if p.state == ProposalState::Approved => {
            let plan = plan_in(&j, p.id)?;
            Ok(Some((p, plan)))
        }
        _ => Ok(None),
    }
}

/// Open proposal `id` (in `from`) expired, because `why`.
pub fn expire(
    journal: &JournalLocation,
    id: i64,
    from: ProposalState,
    why: &str,
) -> Result<bool, ApplyError> {
    Journal::open(journal.clone())?.move_proposal(
        id,
        from,
        ProposalState::Expired,
        None,
        None,
        Some(why),
        None,
    )
}

/// The newest `limit` proposals, in `state` when given, newest first.
pub fn list(
    journal: &JournalLocation,
    state: Option<ProposalState>,
    limit: usize,
) -> Result<Vec<Proposal>, ApplyError> {
    match Journal::open_read(journal.clone())? {
        Some(j) => j.proposals(state, limit),
        None => Ok(Vec::new()),
    }
}

/// Proposal `id`.
pub fn get(journal: &JournalLocation, id: i64) -> Result<Proposal, ApplyError> {
    match Journal::open_read(journal.clone())? {
        Some(j) => j.proposal(id),
        None => Err(ApplyError::NoSuchProposal(id)),
    }
}

/// The plan of proposal `id`.
pub fn plan_of(journal: &JournalLocation, id: i64) -> Result<Plan, ApplyError> {
    match Journal::open_read(journal.clone())? {
        Some(j) => plan_in(&j, id),
        None => Err(ApplyError::NoSuchProposal(id)),
    }
}

/// The HTML report of proposal `id`, as it was proposed.
pub fn report_of(journal: &JournalLocation, id: i64) -> Result<String, ApplyError> {
    match Journal::open_read(journal.clone())? {
        Some(j) => Ok(j.proposal_documents(id)?.1),
        None => Err(ApplyError::NoSuchProposal(id)),
    }
}

fn plan_in(j: &Journal, id: i64) -> Result<Plan, ApplyError> {
    let (json, _) = j.proposal_documents(id)?;
    Plan::from_json(&json, std::path::Path::new(&format!("proposal {id}"))).map_err(|e| {
        ApplyError::CorruptJournal {
            location: j.location().to_string(),
            detail: format!("the plan of proposal {id} does not parse: {e}"),
        }
    })
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Decision::Approve => "approve",
            Decision::Reject => "reject",
        })
    }
}

impl FromStr for Decision {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "approve" => Ok(Decision::Approve),
            "reject" => Ok(Decision::Reject),
            other => Err(format!("unknown decision `{other}` (approve or reject)")),
        }
    }
}
