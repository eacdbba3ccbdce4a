//! [`recent_moves`]: what the journal says was applied since a time, for
//! the flap guard of a scheduled run (`run.min_move_interval`): the agents
//! an applied PUT assigned or unassigned, and the leads it changed.
//!
//! Only PUTs that took effect count (`applied` = 1: answered applied, or
//! resolved as applied by reading the lead back), of any run kind (apply,
//! resume, rollback); pending, failed, ambiguous and resolved-as-not-applied
//! PUTs moved nothing that is known. A PUT's time is when its outcome was
//! recorded (for a resolved one, when it was resolved: the later, hence
//! more cautious, time), at millisecond resolution.

use std::collections::BTreeSet;

use rebalancer_model::LeadKey;

use crate::error::ApplyError;
use crate::journal::{unix_ms, Journal, JournalLocation};
use crate::run::body_batch;

/// Agents moved and leads changed by the PUTs applied since some time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecentMoves {
    /// CMS user ids an applied PUT assigned or unassigned.
    pub agents: BTreeSet<String>,
    /// Leads an applied PUT changed.
    pub leads: BTreeSet<LeadKey>,
}

impl RecentMoves {
    /// Nothing was applied in the window.
    pub fn is_empty(&self) -> bool {
        self.agents.is_empty() && self.leads.is_empty()
    }
}

/// What the journal says was applied at or after `since`: every agent a
/// PUT that took effect assigned or unassigned, and every lead it changed,
/// over all runs. A SQLite journal file that does not exist gives an empty
/// [`RecentMoves`]; an existing one is migrated like any other opening.
///
/// Errors: the journal cannot be opened, migrated or read, or a PUT body in
/// it does not parse ([`ApplyError::Journal`]).
pub fn recent_moves(
    journal: &JournalLocation,
    since: time::OffsetDateTime,
) -> Result<RecentMoves, ApplyError> {
    let Some(j) = Journal::open_read(journal)? else {
        return Ok(RecentMoves::default());
    };
    let mut out = RecentMoves::default();
    for (lead, body) in j.applied_since(unix_ms(since))? {
        let batch = body_batch(&body).map_err(|e| ApplyError::journal(j.location(), e))?;
        out.leads.insert(lead);
        out.agents.extend(batch.assign);
        out.agents.extend(batch.unassign);
    }
    tracing::debug!(
        agents = out.agents.len(),
        leads = out.leads.len(),
        "moves applied since {}",
        crate::journal::format_time(since)
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{NewRun, PutOutcome};
    use crate::report::{PutState, RunKind};

    #[test]
    fn a_journal_that_does_not_exist_is_nothing_recent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("none.sqlite");
        let got = recent_moves(&path.clone().into(), time::OffsetDateTime::UNIX_EPOCH).unwrap();
        assert_eq!(got, RecentMoves::default());
        assert!(got.is_empty());
        assert!(!path.exists(), "reading creates no journal");
    }

    #[test]
    fn a_body_that_does_not_parse_is_a_journal_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.sqlite");
        let j = Journal::open(&path).unwrap();
        j.acquire_lease(std::time::Duration::from_secs(60)).unwrap();
        let run = j
            .start_run(NewRun {
                kind: RunKind::Rollback,
                parent: None,
                snapshot_hash: "s",
                config_digest: "c",
                plan_json: b"{}",
                plan_hash: "h",
                holder: "h:1",
            })
            .unwrap();
        let lead = LeadKey {
            campaign_id: 3,
            lead_id: 4,
        };
        let ok = j
            .put_pending(
                run,
                lead,
                1,
                &rebalancer_upstream::MappingUpdate {
                    lead_id: 4,
                    campaign_id: 3,
                    assigned_user_ids: vec!["a".into()],
                    unassigned_user_ids: vec!["b".into()],
                }
                .to_body(),
            )
            .unwrap();
        let applied = PutOutcome {
            state: PutState::Applied,
            applied: Some(true),
            status: Some(200),
            echo: None,
            message: None,
        };
        j.put_done(ok, applied).unwrap();
        let got = recent_moves(&path.clone().into(), time::OffsetDateTime::UNIX_EPOCH).unwrap();
        assert_eq!(
            got.agents,
            ["a", "b"].into_iter().map(String::from).collect()
        );
        assert_eq!(got.leads, [lead].into_iter().collect());

        let bad = j.put_pending(run, lead, 2, "not json").unwrap();
        j.put_done(
            bad,
            PutOutcome {
                state: PutState::Applied,
                applied: Some(true),
                status: Some(200),
                echo: None,
                message: None,
            },
        )
        .unwrap();
        let e = recent_moves(&path.clone().into(), time::OffsetDateTime::UNIX_EPOCH).unwrap_err();
        assert!(matches!(e, ApplyError::Journal { .. }), "{e}");
        assert!(e.to_string().contains("does not parse"), "{e}");
    }
}
