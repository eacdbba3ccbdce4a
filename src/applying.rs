//! What `apply`, `resume`, `rollback` and `run` share at the edge: the
//! progress bar while a run goes on, and the summary and exit code of a
//! finished run. The write session itself (connection, write budget,
//! journal, what the config expects of a plan, the stop token) is
//! `rebalancer_ops::session`.

use crate::exit;
use crate::progress::Bar;
use crate::render::{self, Format};
use rebalancer_applier::{JournalLocation, Progress, RunOutcome, RunReport};
use std::future::Future;

pub use rebalancer_ops::session::{session, stop_on_signals, Session};

/// Run `work` with a progress bar on a terminal.
pub async fn with_progress<T>(show: bool, progress: &Progress, work: impl Future<Output = T>) -> T {
    let bar = Bar::apply(show, progress);
    let out = work.await;
    bar.finish();
    out
}

/// Print a finished run's summary and return its exit code.
pub fn report(report: &RunReport, journal: &JournalLocation, format: Format) -> anyhow::Result<u8> {
    let text = match format {
        Format::Table => render::apply::report(report, journal),
        Format::Json => render::apply::report_json(report),
    };
    render::emit(&text)?;
    Ok(exit_code(report))
}

/// The exit code of a finished run: 0 when it completed (skipped leads
/// are reported, not failures), 11 when a signal stopped it, 13 when some
/// PUTs failed or the run had to stop.
fn exit_code(report: &RunReport) -> u8 {
    match report.outcome {
        RunOutcome::Completed => 0,
        RunOutcome::Interrupted => exit::INTERRUPTED,
        _ => exit::APPLY_INCOMPLETE,
    }
}
