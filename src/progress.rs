//! Progress on a terminal (indicatif): a fetch shows leads read of total,
//! requests sent and retries, so a slow or hanging upstream is never 30 s
//! of silence; an apply shows leads done of total and PUTs sent and failed.
//! Drawn on stderr, only when stderr is a terminal; stdout stays the
//! command's output.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rebalancer_applier::Progress;
use rebalancer_fetcher::FetchOptions;
use rebalancer_upstream::Stats;
use std::time::Duration;

/// How often the bar re-reads the counters.
const TICK: Duration = Duration::from_millis(120);

/// A fetch's progress bar; a no-op when not shown.
pub struct FetchBar {
    bar: Option<ProgressBar>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl FetchBar {
    pub fn start(show: bool, stats: &Stats, options: &FetchOptions) -> FetchBar {
        if !show {
            return FetchBar {
                bar: None,
                task: None,
            };
        }
        let progress = options.progress.clone();
        let total = options
            .campaigns
            .iter()
            .map(|c| c.lead_ids.len() as u64)
            .sum();
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} fetching: leads {pos}/{len} {wide_bar} {msg} [{elapsed}]",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        let (b, stats) = (bar.clone(), stats.clone());
        let task = tokio::spawn(async move {
            loop {
                b.set_position(progress.leads_done());
                b.set_message(format!(
                    "{} requests, {} retries",
                    stats.requests(),
                    stats.retries()
                ));
                b.tick();
                tokio::time::sleep(TICK).await;
            }
        });
        FetchBar {
            bar: Some(bar),
            task: Some(task),
        }
    }

    /// Stop updating and clear the bar.
    pub fn finish(self) {
        if let Some(task) = self.task {
            task.abort();
        }
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

/// An apply's progress bar; a no-op when not shown.
pub struct ApplyBar {
    bar: Option<ProgressBar>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl ApplyBar {
    pub fn start(show: bool, progress: &Progress) -> ApplyBar {
        if !show {
            return ApplyBar {
                bar: None,
                task: None,
            };
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} applying: leads {pos}/{len} {wide_bar} {msg} [{elapsed}]",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        let (b, progress) = (bar.clone(), progress.clone());
        let task = tokio::spawn(async move {
            loop {
                b.set_length(progress.leads_total());
                b.set_position(progress.leads_done());
                b.set_message(format!(
                    "{} PUTs, {} failed",
                    progress.puts_sent(),
                    progress.puts_failed()
                ));
                b.tick();
                tokio::time::sleep(TICK).await;
            }
        });
        ApplyBar {
            bar: Some(bar),
            task: Some(task),
        }
    }

    /// Stop updating and clear the bar.
    pub fn finish(self) {
        if let Some(task) = self.task {
            task.abort();
        }
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}
