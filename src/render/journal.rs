//! What `history` and `show` print: the journal's runs, and one run's leads
//! and PUTs.
//!
//! Everything here comes from the journal, which another version, a person
//! or a damaged disk may have written: no stored string is trusted to be
//! ASCII, short or free of control characters. Nothing here slices a string
//! by bytes or panics on its content; control characters are shown escaped
//! so a stored value cannot drive the terminal.

use super::{right, table};
use comfy_table::Cell;
use rebalancer_applier::{RunDetail, RunRecord};
use serde::Serialize;
use std::fmt::Write;

/// Any journal view as pretty JSON.
pub fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).expect("journal records always serialise")
}

/// The runs, newest first, then the decisions people made on proposals
/// (`run.approval`): who, when, and why, with the run that applied it.
pub fn history(
    runs: &[RunRecord],
    decisions: &[rebalancer_applier::proposals::Proposal],
    journal: &rebalancer_applier::JournalLocation,
) -> String {
    let decided: Vec<String> = decisions
        .iter()
        .filter(|p| p.decided_by.is_some())
        .map(|p| {
            let state = match p.state {
                rebalancer_applier::proposals::ProposalState::Applied => "approved",
                s => s.as_str(),
            };
            let mut line = format!(
                "  proposal {} {state} by {} at {}",
                p.id,
                shown(p.decided_by.as_deref().unwrap_or("?")),
                when(p.decided_at.as_deref().unwrap_or("-"))
            );
            if let Some(c) = p.comment.as_deref().filter(|c| !c.is_empty()) {
                line.push_str(&format!(": \"{}\"", shown(c)));
            }
            match (p.run, p.state) {
                (Some(run), _) => line.push_str(&format!(" → applied by run {run}")),
                (None, rebalancer_applier::proposals::ProposalState::Expired) => {
                    line.push_str(&format!(
                        " → expired ({})",
                        shown(p.ended_reason.as_deref().unwrap_or("?"))
                    ))
                }
                _ => {}
            }
            line
        })
        .collect();
    let decisions_text = if decided.is_empty() {
        String::new()
    } else {
        format!(
            "\nDecisions on proposals, newest first:\n{}",
            decided.join("\n")
        )
    };
    if runs.is_empty() {
        return format!("No runs in {journal}.{decisions_text}");
    }
    let mut t = table();
    t.set_header(vec![
        "run", "kind", "parent", "started", "ended", "outcome", "PUTs", "failed", "moves",
    ]);
    for r in runs {
        t.add_row(vec![
            right(r.id),
            Cell::new(r.kind.to_string()),
            right(r.parent.map_or(String::new(), |p| p.to_string())),
            Cell::new(when(&r.started_at)),
            Cell::new(when(r.ended_at.as_deref().unwrap_or("-"))),
            Cell::new(r.outcome.to_string()),
            right(r.puts_sent),
            right(r.failed),
            right(r.moves_made),
        ]);
    }
    format!("Runs in {journal}:\n{t}{decisions_text}")
}

/// One run: its record, its leads, its PUTs, the leads it left and the
/// runs that continued it; `resume_hint` says how to continue it when
/// nothing has yet.
pub fn run_detail(d: &RunDetail, resume_hint: &str) -> String {
    let r = &d.run;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Run {} ({}{}), {}: started {}, ended {}, by {}.",
        r.id,
        r.kind,
        r.parent.map_or(String::new(), |p| format!(" of run {p}")),
        r.outcome,
        when(&r.started_at),
        when(r.ended_at.as_deref().unwrap_or("-")),
        shown(&r.holder)
    );
    let _ = writeln!(
        out,
        "Plan {}, snapshot {}, config {}.",
        short(&r.plan_hash),
        short(&r.snapshot_hash),
        short(&r.config_digest)
    );
    if !d.leads.is_empty() {
        let mut t = table();
        t.set_header(vec!["lead", "state", "detail"]);
        for l in &d.leads {
            t.add_row(vec![
                Cell::new(l.lead),
                Cell::new(format!("{:?}", l.state).to_lowercase()),
                Cell::new(shown(&l.detail)),
            ]);
        }
        let _ = writeln!(out, "{t}");
    }
    if !d.left.is_empty() {
        const SHOWN: usize = 10;
        let names: Vec<String> = d.left.iter().take(SHOWN).map(|l| l.to_string()).collect();
        let more = d.left.len().saturating_sub(SHOWN);
        let _ = writeln!(
            out,
            "{} leads of the plan were not reached by this run: {}{}.",
            d.left.len(),
            names.join(", "),
            if more > 0 {
                format!(" and {more} more (--format json lists them all)")
            } else {
                String::new()
            }
        );
    }
    match d.resumed_by.as_slice() {
        [] if !d.left.is_empty() => {
            let _ = writeln!(out, "Not resumed yet: {resume_hint}.");
        }
        [] => {}
        ids => {
            let runs: Vec<String> = ids.iter().map(|i| format!("run {i}")).collect();
            let _ = writeln!(out, "Continued by {}.", runs.join(", "));
        }
    }
    if d.puts.is_empty() {
        let _ = writeln!(out, "No PUTs.");
    } else {
        let mut t = super::wrapped_table();
        t.set_header(vec![
            "PUT", "lead", "seq", "state", "status", "sent", "change", "message",
        ]);
        for p in &d.puts {
            t.add_row(vec![
                right(p.id),
                Cell::new(p.lead),
                right(p.seq),
                Cell::new(p.state),
                right(p.status.map_or(String::new(), |s| s.to_string())),
                Cell::new(when(&p.sent_at)),
                Cell::new(put_change(&p.body)),
                Cell::new(shown(p.message.as_deref().unwrap_or(""))),
            ]);
        }
        let _ = writeln!(out, "{t}");
    }
    out
}

/// A PUT's body as the change it asked for (`+a +b −c`), or the stored
/// text when it is no PUT body this version wrote.
fn put_change(body: &str) -> String {
    match rebalancer_upstream::MappingUpdate::from_body(body) {
        Ok(u) => u
            .assigned_user_ids
            .iter()
            .map(|a| format!("+{}", shown(a)))
            .chain(
                u.unassigned_user_ids
                    .iter()
                    .map(|a| format!("−{}", shown(a))),
            )
            .collect::<Vec<_>>()
            .join(" "),
        Err(_) => shown(body).into_owned(),
    }
}

/// Proposals, newest first: state, when, the moves, who decided and why.
pub fn proposals(
    list: &[rebalancer_applier::proposals::Proposal],
    journal: &rebalancer_applier::JournalLocation,
) -> String {
    if list.is_empty() {
        return format!("No proposals in {journal}.\n");
    }
    let mut t = super::wrapped_table();
    t.set_header(vec![
        "id",
        "state",
        "proposed",
        "moves",
        "decided by",
        "comment / why",
        "run",
    ]);
    for p in list {
        let why = p
            .comment
            .as_deref()
            .or(p.ended_reason.as_deref())
            .unwrap_or("");
        t.add_row(vec![
            right(p.id),
            Cell::new(p.state),
            Cell::new(when(&p.proposed_at)),
            Cell::new(format!("+{} −{}", p.assigns, p.unassigns)),
            Cell::new(shown(p.decided_by.as_deref().unwrap_or("-"))),
            Cell::new(shown(why)),
            Cell::new(p.run.map_or("-".into(), |r| r.to_string())),
        ]);
    }
    format!("Proposals in {journal}, newest first:\n{t}\n")
}

/// What a decision did, and what happens next.
pub fn decided(p: &rebalancer_applier::proposals::Proposal) -> String {
    let by = shown(p.decided_by.as_deref().unwrap_or("?")).into_owned();
    let next = match p.state {
        rebalancer_applier::proposals::ProposalState::Approved => {
            "the `run` replica holding the journal's lease applies it on its next cycle, after the same admission checks as `apply --plan` (grown too old, it expires instead)"
        }
        _ => "nothing is written; `run` does not propose the same changes again",
    };
    format!(
        "Proposal {} {} by {by} (+{} −{} moves): {next}.\n",
        p.id, p.state, p.assigns, p.unassigns
    )
}

/// The first 12 characters of a hash (characters, not bytes: a stored hash
/// may hold anything), escaped like [`shown`].
fn short(hash: &str) -> String {
    let head: String = hash.chars().take(12).collect();
    shown(&head).into_owned()
}

/// A stored string as it may be printed: itself, or with its control
/// characters (and only those) escaped.
/// A journal time for people: to the second, in UTC (`2026-12-03
/// 18:12:18Z`); anything that is not RFC 3339 is shown as stored.
fn when(s: &str) -> std::borrow::Cow<'_, str> {
    match chrono::DateTime::parse_from_rfc3339(s) {
        Ok(t) => t
            .with_timezone(&chrono::Utc)
            .format("%Y-%m-%d %H:%M:%SZ")
            .to_string()
            .into(),
        Err(_) => shown(s),
    }
}

fn shown(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return s.into();
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rebalancer_applier::{
        JournalLocation, LeadKey, LeadRecord, LeadState, PutRecord, PutState, RunKind, RunOutcome,
    };

    fn run(text: &str) -> RunRecord {
        RunRecord {
            id: 1,
            kind: RunKind::Apply,
            parent: Some(0),
            plan_hash: text.into(),
            snapshot_hash: text.into(),
            config_digest: text.into(),
            started_at: text.into(),
            ended_at: Some(text.into()),
            outcome: RunOutcome::Completed,
            puts_sent: 1,
            failed: 0,
            moves_made: 1,
            holder: text.into(),
        }
    }

    fn detail(text: &str) -> RunDetail {
        let lead = LeadKey {
            campaign_id: 1,
            lead_id: 2,
        };
        RunDetail {
            run: run(text),
            leads: vec![LeadRecord {
                lead,
                state: LeadState::Done,
                detail: text.into(),
            }],
            puts: vec![PutRecord {
                id: 1,
                lead,
                seq: 1,
                body: text.into(),
                state: PutState::Applied,
                applied: Some(true),
                status: Some(200),
                echo: Some(text.into()),
                message: Some(text.into()),
                sent_at: text.into(),
                done_at: Some(text.into()),
            }],
            left: vec![],
            resumed_by: vec![],
        }
    }

    #[test]
    fn a_put_shows_the_change_it_asked_for_and_a_run_what_it_left() {
        let mut d = detail("x");
        d.puts[0].body =
            r#"{"leadId":2,"campaignId":1,"assignedUserIds":["a","b"],"unassignedUserIds":["c"]}"#
                .into();
        d.left = (3..15)
            .map(|lead_id| LeadKey {
                campaign_id: 1,
                lead_id,
            })
            .collect();
        let text = run_detail(&d, "`rebalancer resume 1 --config c.toml` finishes it");
        assert!(text.contains("+a +b −c"), "{text}");
        assert!(!text.contains("assignedUserIds"), "{text}");
        assert!(
            text.contains("12 leads of the plan were not reached by this run")
                && text.contains("and 2 more"),
            "{text}"
        );
        assert!(
            text.contains("Not resumed yet: `rebalancer resume 1 --config c.toml` finishes it."),
            "{text}"
        );
        d.resumed_by = vec![4];
        let text = run_detail(&d, "unused");
        assert!(text.contains("Continued by run 4."), "{text}");
        assert!(!text.contains("Not resumed yet"), "{text}");
    }

    #[test]
    fn history_shows_times_to_the_second_in_utc() {
        let mut r = run("h");
        r.started_at = "2026-12-03T18:12:18.030044123Z".into();
        r.ended_at = Some("2026-12-03T19:12:18.999+01:00".into());
        let text = history(&[r], &[], &JournalLocation::Sqlite("j.sqlite".into()));
        assert!(text.contains("2026-12-03 18:12:18Z"), "{text}");
        assert!(!text.contains(".030044123"), "{text}");
        // 19:12:18.999 at +01:00 is 18:12:18 UTC, to the second.
        assert_eq!(text.matches("2026-12-03 18:12:18Z").count(), 2, "{text}");
    }

    #[test]
    fn a_non_ascii_hash_is_shown_not_a_panic() {
        // Finding #11: `show` panicked slicing this at byte 12.
        let hash = format!("{}é{}", "a".repeat(11), "b".repeat(52));
        let text = run_detail(&detail(&hash), "");
        assert!(text.contains("aaaaaaaaaaaé"), "{text}");
    }

    #[test]
    fn control_characters_are_escaped() {
        let text = run_detail(&detail("\u{1b}[2Jgone"), "");
        assert!(
            !text.contains('\u{1b}') && text.contains(r"\u{1b}[2Jgone"),
            "{text}"
        );
    }

    proptest! {
        /// `show` and `history` render any stored strings, in a table and
        /// as JSON, without panicking, and never print a stored control
        /// character.
        #[test]
        fn any_stored_string_renders(
            text in "\\PC{0,40}|.{0,40}|[\\x00-\\x1f\\x7f-\\u{9f}é😀a-f0-9]{0,24}"
        ) {
            let d = detail(&text);
            let table = run_detail(&d, "");
            let runs = history(std::slice::from_ref(&d.run), &[], &JournalLocation::Sqlite("j.sqlite".into()));
            for out in [&table, &runs] {
                prop_assert!(!out.chars().any(|c| c.is_control() && c != '\n'));
            }
            prop_assert!(to_json(&d).contains("\"run\""));
        }
    }
}
