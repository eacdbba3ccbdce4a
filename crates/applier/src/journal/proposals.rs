//! The journal's proposals: plans waiting for a person's approval and
//! what became of each (see `crate::proposals` for the rules). Every state
//! change is one conditional statement (`… WHERE state = 'pending'`), so two
//! replicas or two people deciding at once cannot both win: the loser
//! changes no row and is told the proposal is no longer pending.

use super::db::{params, DbError, Row};
use super::{now, Journal};
use crate::proposals::{Proposal, ProposalState};
use crate::ApplyError;

/// What a new proposal holds.
pub(crate) struct NewProposal<'a> {
    pub plan_hash: &'a str,
    pub changes_key: &'a str,
    pub snapshot_hash: &'a str,
    pub config_digest: &'a str,
    pub plan_json: &'a [u8],
    pub report_html: &'a str,
    pub assigns: usize,
    pub unassigns: usize,
    pub proposed_by: &'a str,
}

impl Journal {
    /// The open proposal (pending or approved), if any.
    pub(crate) fn open_proposal(&self) -> Result<Option<Proposal>, ApplyError> {
        Ok(self
            .read(
                "read the open proposal",
                "SELECT id, state, plan_hash, changes_key, snapshot_hash, config_digest, assigns, unassigns,
                   proposed_at, proposed_by, decided_at, decided_by, comment, ended_reason, run
                 FROM proposals WHERE state IN ('pending', 'approved') ORDER BY id DESC LIMIT 1",
                params![],
                proposal,
            )?
            .pop())
    }

    /// Inserts `p` as pending unless a proposal is open already; its id,
    /// or `None` when another got there first.
    pub(crate) fn insert_proposal(&self, p: &NewProposal) -> Result<Option<i64>, ApplyError> {
        let rows = self
            .db
            .query(
                "INSERT INTO proposals (state, plan_hash, changes_key, snapshot_hash, config_digest,
                   plan_json, report_html, assigns, unassigns, proposed_at, proposed_by)
                 SELECT 'pending', ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10
                 WHERE NOT EXISTS (SELECT 1 FROM proposals WHERE state IN ('pending', 'approved'))
                 RETURNING id",
                params![
                    p.plan_hash,
                    p.changes_key,
                    p.snapshot_hash,
                    p.config_digest,
                    p.plan_json,
                    p.report_html,
                    p.assigns,
                    p.unassigns,
                    now(),
                    p.proposed_by
                ],
            )
            .map_err(|e| self.fail("record the proposal", e))?;
        rows.first()
            .map(|r| r.int(0))
            .transpose()
            .map_err(|e| self.fail("record the proposal", e))
    }

    /// Moves proposal `id` from `from` to `to`, with who decided, their
    /// comment and why; `false` when it was not in `from` (any more).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn move_proposal(
        &self,
        id: i64,
        from: ProposalState,
        to: ProposalState,
        who: Option<&str>,
        comment: Option<&str>,
        reason: Option<&str>,
        run: Option<i64>,
    ) -> Result<bool, ApplyError> {
        let decided_at = who.map(|_| now());
        let changed = self
            .db
            .execute(
                "UPDATE proposals SET state = ?3,
                   decided_at = COALESCE(?4, decided_at), decided_by = COALESCE(?5, decided_by),
                   comment = COALESCE(?6, comment), ended_reason = COALESCE(?7, ended_reason),
                   run = COALESCE(?8, run)
                 WHERE id = ?1 AND state = ?2",
                params![
                    id,
                    from.as_str(),
                    to.as_str(),
                    decided_at,
                    who,
                    comment,
                    reason,
                    run
                ],
            )
            .map_err(|e| self.fail("change the proposal", e))?;
        Ok(changed == 1)
    }

    /// Proposal `id`.
    pub(crate) fn proposal(&self, id: i64) -> Result<Proposal, ApplyError> {
        self.read(
            "read the proposal",
            "SELECT id, state, plan_hash, changes_key, snapshot_hash, config_digest, assigns, unassigns,
               proposed_at, proposed_by, decided_at, decided_by, comment, ended_reason, run
             FROM proposals WHERE id = ?1",
            params![id],
            proposal,
        )?
        .pop()
        .ok_or(ApplyError::NoSuchProposal(id))
    }

    /// The newest `limit` proposals, in `state` when given, newest first.
    pub(crate) fn proposals(
        &self,
        state: Option<ProposalState>,
        limit: usize,
    ) -> Result<Vec<Proposal>, ApplyError> {
        self.read(
            "read the proposals",
            "SELECT id, state, plan_hash, changes_key, snapshot_hash, config_digest, assigns, unassigns,
               proposed_at, proposed_by, decided_at, decided_by, comment, ended_reason, run
             FROM proposals WHERE (CAST(?1 AS TEXT) IS NULL OR state = CAST(?1 AS TEXT)) ORDER BY id DESC LIMIT ?2",
            params![state.map(ProposalState::as_str), limit],
            proposal,
        )
    }

    /// The plan JSON and the report of proposal `id`.
    pub(crate) fn proposal_documents(&self, id: i64) -> Result<(Vec<u8>, String), ApplyError> {
        self.read(
            "read the proposal's plan",
            "SELECT plan_json, report_html FROM proposals WHERE id = ?1",
            params![id],
            |r| Ok((r.blob(0)?, r.text(1)?)),
        )?
        .pop()
        .ok_or(ApplyError::NoSuchProposal(id))
    }
}

fn proposal(r: &Row) -> Result<Proposal, DbError> {
    let n = |i| r.count(i).map(|v| usize::try_from(v).unwrap_or(usize::MAX));
    Ok(Proposal {
        id: r.int(0)?,
        state: r.text(1)?.parse().map_err(DbError::data)?,
        plan_hash: r.text(2)?,
        changes_key: r.text(3)?,
        snapshot_hash: r.text(4)?,
        config_digest: r.text(5)?,
        assigns: n(6)?,
        unassigns: n(7)?,
        proposed_at: r.text(8)?,
        proposed_by: r.text(9)?,
        decided_at: r.opt_text(10)?,
        decided_by: r.opt_text(11)?,
        comment: r.opt_text(12)?,
        ended_reason: r.opt_text(13)?,
        run: r.opt_int(14)?,
    })
}
