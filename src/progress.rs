//! Progress on a terminal (indicatif): a fetch shows leads read of total,
//! requests sent and retries, so a slow or hanging upstream is never 30 s
//! of silence; an apply shows leads done of total and PUTs sent and failed;
//! a bench shows its runs (family, size, backend) done of total.
//! Drawn on stderr, only when stderr is a terminal and logs are text (not
//! with `--log-format json`: `Log::interactive`); stdout stays the
//! command's output.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rebalancer_applier::Progress;
use rebalancer_fetcher::FetchOptions;
use rebalancer_upstream::Stats;
use std::time::Duration;

/// How often a bar re-reads its counters.
const TICK: Duration = Duration::from_millis(120);

/// A progress bar redrawn from shared counters until finished; a no-op when
/// not shown.
pub struct Bar {
    bar: Option<ProgressBar>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Bar {
    /// A fetch: leads read of total, requests and retries.
    pub fn fetch(show: bool, stats: &Stats, options: &FetchOptions) -> Bar {
        let (progress, stats) = (options.progress.clone(), stats.clone());
        let total = options
            .campaigns
            .iter()
            .map(|c| c.lead_ids.len() as u64)
            .sum();
        Bar::start(show, "fetching", move |b| {
            b.set_length(total);
            b.set_position(progress.leads_done());
            b.set_message(format!(
                "{} requests, {} retries",
                stats.requests(),
                stats.retries()
            ));
        })
    }

    /// An apply, resume or rollback: leads done of total, PUTs.
    pub fn apply(show: bool, progress: &Progress) -> Bar {
        let progress = progress.clone();
        Bar::start(show, "applying", move |b| {
            b.set_length(progress.leads_total());
            b.set_position(progress.leads_done());
            b.set_message(format!(
                "{} PUTs, {} failed",
                progress.puts_sent(),
                progress.puts_failed()
            ));
        })
    }

    fn start(show: bool, what: &str, mut update: impl FnMut(&ProgressBar) + Send + 'static) -> Bar {
        if !show {
            return Bar {
                bar: None,
                task: None,
            };
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(&format!(
                "{{spinner}} {what}: leads {{pos}}/{{len}} {{wide_bar}} {{msg}} [{{elapsed}}]"
            ))
            .expect("a valid template")
            .progress_chars("=> "),
        );
        let b = bar.clone();
        let task = tokio::spawn(async move {
            loop {
                update(&b);
                b.tick();
                tokio::time::sleep(TICK).await;
            }
        });
        Bar {
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

/// A bar over a known number of steps, advanced by the caller (a bench:
/// one step per family, size and backend, the message naming the current
/// one). indicatif's own thread redraws it, so it needs no async runtime;
/// a no-op when not shown.
pub struct Steps {
    bar: Option<ProgressBar>,
}

impl Steps {
    pub fn new(show: bool, what: &str, total: u64) -> Steps {
        if !show {
            return Steps { bar: None };
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(&format!(
                "{{spinner}} {what}: {{pos}}/{{len}} {{wide_bar}} {{msg}} [{{elapsed}}]"
            ))
            .expect("a valid template")
            .progress_chars("=> "),
        );
        bar.enable_steady_tick(TICK);
        Steps { bar: Some(bar) }
    }

    /// The step now running.
    pub fn start(&self, message: String) {
        if let Some(bar) = &self.bar {
            bar.set_message(message);
        }
    }

    /// One step done.
    pub fn done_one(&self) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    /// Run `f` (a log line) with the bar hidden, so they do not mix.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.bar {
            Some(bar) => bar.suspend(f),
            None => f(),
        }
    }

    /// Clear the bar.
    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}
