//! What `apply`, `resume` and `rollback` print when a run ends: the
//! outcome, PUTs sent, retried, skipped and failed, moves made, time and the
//! effective write rate, and every lead that did not simply get done.

use super::{right, table};
use comfy_table::Cell;
use rebalancer_applier::{LeadState, RunReport};
use serde::Serialize;
use std::fmt::Write;

/// The figures of a finished run, for the table and the JSON.
#[derive(Debug, Serialize)]
struct Summary<'a> {
    run: i64,
    kind: String,
    outcome: String,
    puts_sent: u64,
    puts_retried: u64,
    skipped_drift: usize,
    skipped_recheck: usize,
    failed: usize,
    moves_made: usize,
    elapsed_ms: u64,
    puts_per_second: f64,
    verify_mismatches: Vec<String>,
    leads: Vec<LeadLine<'a>>,
}

#[derive(Debug, Serialize)]
struct LeadLine<'a> {
    lead: String,
    state: String,
    detail: &'a str,
}

fn summarise(r: &RunReport) -> Summary<'_> {
    Summary {
        run: r.run,
        kind: r.kind.to_string(),
        outcome: r.outcome.to_string(),
        puts_sent: r.puts_sent,
        puts_retried: r.puts_retried,
        skipped_drift: r.skipped_drift,
        skipped_recheck: r.skipped_recheck,
        failed: r.failed,
        moves_made: r.moves_made,
        elapsed_ms: r.elapsed.as_millis() as u64,
        puts_per_second: (r.effective_rate() * 100.0).round() / 100.0,
        verify_mismatches: r.verify_mismatches.iter().map(|l| l.to_string()).collect(),
        leads: r
            .leads
            .iter()
            .map(|l| LeadLine {
                lead: l.lead.to_string(),
                state: format!("{:?}", l.state).to_lowercase(),
                detail: &l.detail,
            })
            .collect(),
    }
}

/// The end-of-run summary as a table.
/// `resume_hint`: how to finish the run if it stopped before its end.
pub fn report(
    r: &RunReport,
    journal: &rebalancer_applier::JournalLocation,
    resume_hint: &str,
) -> String {
    let s = summarise(r);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Run {} ({}): {}{}. Journal: {}.",
        s.run,
        s.kind,
        s.outcome,
        left_undone(r),
        journal
    );
    let mut t = table();
    t.set_header(vec!["", "count"]);
    for (k, v) in [
        ("PUTs sent", s.puts_sent.to_string()),
        ("PUTs retried", s.puts_retried.to_string()),
        ("leads skipped (drift)", s.skipped_drift.to_string()),
        ("assigns skipped (re-check)", s.skipped_recheck.to_string()),
        ("failed", s.failed.to_string()),
        ("moves made", s.moves_made.to_string()),
        ("time", format!("{} ms", s.elapsed_ms)),
        ("write rate", format!("{:.2} PUT/s", s.puts_per_second)),
    ] {
        t.add_row(vec![Cell::new(k), right(v)]);
    }
    let _ = writeln!(out, "{t}");
    let notable: Vec<_> = r
        .leads
        .iter()
        .filter(|l| !matches!(l.state, LeadState::Done | LeadState::Unchanged))
        .collect();
    if !notable.is_empty() {
        let mut t = table();
        t.set_header(vec!["lead", "state", "detail"]);
        for l in notable {
            t.add_row(vec![
                Cell::new(l.lead),
                Cell::new(format!("{:?}", l.state).to_lowercase()),
                Cell::new(&l.detail),
            ]);
        }
        let _ = writeln!(out, "{t}");
    }
    if !s.verify_mismatches.is_empty() {
        let _ = writeln!(
            out,
            "After the run, {} leads differ from the plan's target: {}.",
            s.verify_mismatches.len(),
            s.verify_mismatches.join(", ")
        );
    }
    if r.outcome == rebalancer_applier::RunOutcome::Interrupted {
        let _ = writeln!(out, "Stopped before the end: {resume_hint}.");
    }
    out
}

/// What the headline must not hide: changes a run left undone (skipped
/// by the re-checks or for drift) and leads that differ from its target.
fn left_undone(r: &RunReport) -> String {
    let verb = match r.kind {
        rebalancer_applier::RunKind::Rollback => "undone",
        _ => "made",
    };
    let mut parts = Vec::new();
    if r.skipped_recheck > 0 {
        parts.push(format!(
            "{} assigns not {verb} (those agents are now inactive or at their allowance)",
            r.skipped_recheck
        ));
    }
    if r.skipped_drift > 0 {
        parts.push(format!(
            "{} leads left alone (their mapping had changed since)",
            r.skipped_drift
        ));
    }
    if !r.verify_mismatches.is_empty() {
        parts.push(format!(
            "{} leads differ from the target",
            r.verify_mismatches.len()
        ));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(", but {}", parts.join("; "))
    }
}

/// The end-of-run summary as JSON.
pub fn report_json(r: &RunReport) -> String {
    serde_json::to_string_pretty(&summarise(r)).expect("a summary always serialises")
}
