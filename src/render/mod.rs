//! Rendering for people and machines: what the subcommands print on stdout.
//! One module per command's output; this one holds what they share.
//!
//! Numbers follow one convention: record counts as integers, utilisation
//! with 4 decimals, times in ms.

pub mod apply;
pub mod bench;
pub mod check;
pub mod cycle;
pub mod fetch;
pub mod journal;
pub mod moves;
pub mod plan;
pub mod plot;
pub mod report;
pub mod svg;
pub mod tradeoff;

pub use plan::PlanView;

use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, CellAlignment, Table};
use rebalancer_model::ProblemKind;

/// Output format of a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
}

/// Write a command's output to stdout. A closed pipe (`rebalancer plan |
/// The line a table-format command ends with when it wrote files (`what`
/// and where), so nothing is written silently; JSON output stays the
/// document alone.
pub fn files_written(files: &[(&str, &std::path::Path)]) -> String {
    if files.is_empty() {
        return String::new();
    }
    let list: Vec<String> = files
        .iter()
        .map(|(what, path)| format!("{what} to {}", path.display()))
        .collect();
    format!("Wrote {}.\n", list.join(", "))
}

/// head`) ends the output quietly instead of panicking as `println!` would.
pub fn emit(text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out
        .write_all(text.as_bytes())
        .and_then(|_| {
            if text.ends_with('\n') {
                Ok(())
            } else {
                out.write_all(b"\n")
            }
        })
        .and_then(|_| out.flush())
    {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

fn table() -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t
}

/// A table whose long cells wrap: to the terminal's width, or to
/// [`WRAP_WIDTH`] columns when stdout is no terminal (a file, a pipe).
fn wrapped_table() -> Table {
    let mut t = table();
    t.set_content_arrangement(comfy_table::ContentArrangement::Dynamic);
    if t.width().is_none() {
        t.set_width(WRAP_WIDTH);
    }
    t
}

/// Columns of a wrapped table off a terminal.
const WRAP_WIDTH: u16 = 100;

/// A right-aligned cell (numbers).
fn right(v: impl ToString) -> Cell {
    Cell::new(v.to_string()).set_alignment(CellAlignment::Right)
}

/// A record count: records are whole, flows may be fractional; shown
/// rounded to the nearest record.
fn records(x: f64) -> String {
    format!("{:.0}", x)
}

/// A utilisation (load / headroom).
fn utilisation(x: f64) -> String {
    format!("{x:.4}")
}

/// What a problem kind means, for summaries.
fn problem_label(kind: ProblemKind) -> &'static str {
    match kind {
        ProblemKind::NotInWebex => "CMS agents unknown to Webex (so also unjoined)",
        ProblemKind::NoWebexEmail => "Webex users without an email (cannot join Zoho)",
        ProblemKind::NotInZoho => "CMS agents whose email no Zoho threshold user has",
        ProblemKind::AmbiguousZohoEmail => "emails shared by several Zoho users",
        ProblemKind::NotInCms => "users in no CMS lead pool (e.g. supervisors)",
        ProblemKind::MappingUnknown => "identity-file entries naming unknown users",
        ProblemKind::LeadNotFound => "configured leads the CMS does not know (404)",
        ProblemKind::InconsistentLead => "leads listing an agent both assigned and unassigned",
    }
}
