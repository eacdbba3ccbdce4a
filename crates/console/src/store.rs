//! The journal as the console reads and changes it, each call on a
//! blocking thread (the journal's SQLite and PostgreSQL clients block):
//! proposals, their plans and reports, runs, cycles, and decisions (one
//! conditional change each, by `rebalancer_applier::proposals::decide`).

use crate::error::Refusal;
use chrono::{DateTime, Utc};
use rebalancer_applier::proposals::{self, Decision, Proposal, ProposalState};
use rebalancer_applier::{CycleRecord, JournalLocation, RunDetail, RunRecord};
use rebalancer_ops::schedule::Schedule;
use serde::Serialize;

/// Most rows a list answers with.
pub(crate) const MAX_LIMIT: usize = 1000;

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, rebalancer_applier::ApplyError> + Send + 'static,
) -> Result<T, Refusal> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Refusal::Journal(format!("the journal read stopped: {e}")))?
        .map_err(Refusal::from)
}

pub(crate) async fn proposals(
    j: &JournalLocation,
    state: Option<ProposalState>,
    limit: usize,
) -> Result<Vec<Proposal>, Refusal> {
    let j = j.clone();
    blocking(move || proposals::list(&j, state, limit.min(MAX_LIMIT))).await
}

pub(crate) async fn proposal(j: &JournalLocation, id: i64) -> Result<Proposal, Refusal> {
    let j = j.clone();
    blocking(move || proposals::get(&j, id)).await
}

/// The plan of proposal `id`, as JSON bytes.
pub(crate) async fn plan_json(j: &JournalLocation, id: i64) -> Result<Vec<u8>, Refusal> {
    let j = j.clone();
    blocking(move || proposals::plan_of(&j, id).map(|p| p.to_json())).await
}

pub(crate) async fn report(j: &JournalLocation, id: i64) -> Result<String, Refusal> {
    let j = j.clone();
    blocking(move || proposals::report_of(&j, id)).await
}

pub(crate) async fn decide(
    j: &JournalLocation,
    id: i64,
    decision: Decision,
    who: String,
    comment: String,
) -> Result<Proposal, Refusal> {
    let j = j.clone();
    let decided = blocking(move || proposals::decide(&j, id, decision, &who, &comment)).await?;
    tracing::info!(
        proposal = id,
        decision = %decision,
        by = decided.decided_by.as_deref().unwrap_or(""),
        "a person decided on a proposed plan"
    );
    Ok(decided)
}

pub(crate) async fn runs(j: &JournalLocation, limit: usize) -> Result<Vec<RunRecord>, Refusal> {
    let j = j.clone();
    blocking(move || rebalancer_applier::history(&j, limit.min(MAX_LIMIT))).await
}

pub(crate) async fn run(j: &JournalLocation, id: i64) -> Result<RunDetail, Refusal> {
    let j = j.clone();
    blocking(move || rebalancer_applier::show(&j, id)).await
}

pub(crate) async fn cycles(j: &JournalLocation, limit: usize) -> Result<Vec<CycleRecord>, Refusal> {
    let j = j.clone();
    blocking(move || rebalancer_applier::cycles(&j, limit.min(MAX_LIMIT))).await
}

/// How `run` is doing, from the journal: the last cycle and the last
/// successful one, when the next is due, and the plan waiting for a person.
#[derive(Debug, Serialize)]
pub(crate) struct Overview {
    pub last_cycle: Option<CycleRecord>,
    pub last_success: Option<CycleRecord>,
    /// When the next cycle is due (RFC 3339), by `run`'s schedule in this
    /// config; `None` when `run` has no schedule here or no cycle ran yet.
    pub next_cycle: Option<String>,
    /// The open proposal (pending or approved), if any.
    pub open_plan: Option<Proposal>,
}

pub(crate) async fn overview(
    j: &JournalLocation,
    schedule: Option<&Schedule>,
) -> Result<Overview, Refusal> {
    let recent = cycles(j, 200).await?;
    let open = proposals(j, None, 5)
        .await?
        .into_iter()
        .find(|p| matches!(p.state, ProposalState::Pending | ProposalState::Approved));
    let at = |t: &str| {
        DateTime::parse_from_rfc3339(t)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    };
    let next_cycle = match (schedule, recent.first()) {
        (Some(s), Some(last)) => match (at(&last.started_at), at(&last.ended_at)) {
            (Some(started), Some(ended)) => s
                .next_start(started, ended)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            _ => None,
        },
        _ => None,
    };
    Ok(Overview {
        last_success: recent.iter().find(|c| c.outcome.is_success()).cloned(),
        last_cycle: recent.into_iter().next(),
        next_cycle,
        open_plan: open,
    })
}
