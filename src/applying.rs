//! What `apply`, `resume`, `rollback` and `run` share at the edge: the
//! question before a write (`confirm`), the progress bar while a run goes
//! on, the summary and exit code of a finished run and the exact command
//! that resumes it (`ResumeWith`). The write session itself (connection, write budget,
//! journal, what the config expects of a plan, the stop token) is
//! `rebalancer_ops::session`.

use crate::exit::{self, ApplyRefused};
use crate::progress::Bar;
use crate::render::{self, Format};
use anyhow::Context;
use rebalancer_applier::{JournalLocation, Progress, RunOutcome, RunReport};
use std::future::Future;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

pub use rebalancer_ops::session::{session, stop_on_signals, Session};

/// Run `work` with a progress bar on a terminal.
pub async fn with_progress<T>(show: bool, progress: &Progress, work: impl Future<Output = T>) -> T {
    let bar = Bar::apply(show, progress);
    let out = work.await;
    bar.finish();
    out
}

/// How to continue a run that stopped before its end, as the summary
/// prints it: the `resume` command with the same config and journal
/// flags, or why there is none (the embedded sandbox ends with its
/// process).
#[derive(Debug, Clone)]
pub enum ResumeWith {
    Config {
        config: PathBuf,
        journal: Option<PathBuf>,
    },
    Sandbox,
}

impl ResumeWith {
    /// The command that resumes run `run`, shell-quoted to run as
    /// printed (the sandbox has none: it ended with its process).
    pub fn command(&self, run: i64) -> String {
        match self {
            ResumeWith::Config { config, journal } => {
                let mut words = vec![
                    "rebalancer".to_owned(),
                    "resume".to_owned(),
                    run.to_string(),
                    "--config".to_owned(),
                    quoted(config),
                ];
                if let Some(j) = journal {
                    words.extend(["--journal".to_owned(), quoted(j)]);
                }
                words.join(" ")
            }
            ResumeWith::Sandbox => String::new(),
        }
    }

    /// What finishes run `run`: its command, or why there is none.
    pub fn hint(&self, run: i64) -> String {
        match self {
            ResumeWith::Config { .. } => format!("`{}` finishes it", self.command(run)),
            ResumeWith::Sandbox => {
                "the embedded sandbox ended with this process, so this run cannot be resumed; its journal keeps what was sent".into()
            }
        }
    }
}

/// A path as one shell word.
fn quoted(path: &Path) -> String {
    let text = path.to_string_lossy();
    shlex::try_quote(&text)
        .map(|q| q.into_owned())
        .unwrap_or_else(|_| text.into_owned())
}

/// Ask `question` on the terminal before a write. `Ok(true)` for `y` or
/// `yes` (any case); otherwise says what was typed and returns
/// `Ok(false)`. Without a terminal nobody can answer: refused, naming
/// `--yes`.
pub fn confirm(question: &str, what: &str) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        return Err(ApplyRefused::NotConfirmed(format!(
            "{what} asks before writing, and stdin is not a terminal; pass --yes to {what} without asking"
        ))
        .into());
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .context("cannot read the answer from stdin")?;
    if is_yes(&answer) {
        return Ok(true);
    }
    let typed = answer.trim();
    let said = if typed.is_empty() {
        "nothing was typed".to_owned()
    } else {
        format!("you typed {typed:?}")
    };
    render::emit(&format!("Nothing written: {said}; only y or yes goes on."))?;
    Ok(false)
}

/// `y` or `yes`, any case, surrounding blanks ignored.
fn is_yes(answer: &str) -> bool {
    let a = answer.trim();
    a.eq_ignore_ascii_case("y") || a.eq_ignore_ascii_case("yes")
}

/// Print a finished run's summary and return its exit code.
pub fn report(
    report: &RunReport,
    journal: &JournalLocation,
    resume: &ResumeWith,
    format: Format,
) -> anyhow::Result<u8> {
    let text = match format {
        Format::Table => render::apply::report(report, journal, &resume.hint(report.run)),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn y_and_yes_in_any_case_go_on_and_nothing_else_does() {
        for yes in ["y", "Y", "yes", "YES", " yes\n", "y\n"] {
            assert!(is_yes(yes), "{yes:?}");
        }
        for no in ["", "\n", "n", "no", "yep", "ye", "yes please", "1"] {
            assert!(!is_yes(no), "{no:?}");
        }
    }

    #[test]
    fn the_resume_hint_quotes_paths_to_run_as_printed() {
        let with = ResumeWith::Config {
            config: PathBuf::from("my dir/c.toml"),
            journal: Some(PathBuf::from("j.sqlite")),
        };
        assert_eq!(
            with.hint(3),
            "`rebalancer resume 3 --config 'my dir/c.toml' --journal j.sqlite` finishes it"
        );
        assert!(ResumeWith::Sandbox.hint(3).contains("cannot be resumed"));
    }
}
