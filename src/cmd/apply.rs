//! `rebalancer apply`: make a plan happen in the dialer CMS, at the
//! configured rate, with every PUT journaled.
//!
//! Three ways in: `--plan FILE --config FILE` applies a reviewed plan with
//! that config's credentials (refused before any write by the applier's
//! admission check, `rebalancer_applier::admit`, if it was made for another
//! system, from a snapshot older than `apply.max_plan_age_secs` or dated in
//! the future, under other `[plan]` rules or `[[cms.campaigns]]`, is
//! malformed, or is blocked); `--config FILE` alone
//! fetches, plans, prints the plan and asks before applying (`--yes` skips
//! the question); `--sandbox` does the same against the embedded sandbox.
//! `--report FILE` writes the plan as an HTML page before any check or
//! write (so a refused plan file still gets its page; without `--plan`,
//! before the question).

use crate::applying::{self, ResumeWith, Session};
use crate::input::Source;
use crate::logging::Log;
use crate::render::{self, Format, PlanView};
use anyhow::Context;
use rebalancer_applier::{ApplyError, Progress, WritePath};
use rebalancer_model::{Plan, Snapshot};
use rebalancer_ops::settings::{Env, Layers};
use std::path::PathBuf;

/// What `apply` was asked to do.
#[derive(Debug)]
pub struct Options {
    /// Where the credentials (and, without `plan`, the world) come from.
    pub source: Source,
    /// A reviewed plan file to apply as is.
    pub plan: Option<PathBuf>,
    /// Apply without asking.
    pub yes: bool,
    pub allow_mass_unassign: bool,
    /// Overrides `apply.journal`.
    pub journal: Option<PathBuf>,
    /// Save the plan made before applying (without `plan`).
    pub out: Option<PathBuf>,
    /// Write the HTML report of the plan here, before applying.
    pub report: Option<PathBuf>,
    pub format: Format,
}

pub async fn run(opts: Options, log: &Log) -> anyhow::Result<u8> {
    let env = Env::from_process();
    let session = applying::session(
        &opts.source,
        &env,
        opts.journal.clone(),
        opts.allow_mass_unassign,
    )
    .await?;
    let result = apply(&opts, &session, log).await;
    session.connected.connection.close().await;
    result
}

async fn apply(opts: &Options, session: &Session, log: &Log) -> anyhow::Result<u8> {
    let plan = match &opts.plan {
        Some(path) => {
            let plan = Plan::load(path)?;
            save_report(opts, session, &plan, None)?;
            plan
        }
        None => {
            let Some(plan) = plan_now(opts, session, log).await? else {
                return Ok(0);
            };
            plan
        }
    };
    if let Some(b) = &plan.blocked {
        if opts.allow_mass_unassign {
            tracing::warn!(reason = %b.reason, "applying a blocked plan: --allow-mass-unassign was given");
        }
    }
    // The applier asks the admission check (same system, age, rules and
    // campaigns, well-formed, not blocked) before anything else.
    let progress = Progress::default();
    let stop = applying::stop_on_signals();
    let report = applying::with_progress(
        log.interactive,
        &progress,
        rebalancer_applier::apply(
            &session.journal,
            &plan,
            &session.upstreams,
            &session.config,
            &session.expected(),
            stop,
            &progress,
        ),
    )
    .await?;
    applying::report(&report, &session.journal, &resume_with(opts), opts.format)
}

/// `--report FILE`: the plan about to be applied, as an HTML page.
fn save_report(
    opts: &Options,
    session: &Session,
    plan: &Plan,
    snapshot: Option<&Snapshot>,
) -> anyhow::Result<()> {
    if let Some(path) = &opts.report {
        let ctx = render::report::Context {
            snapshot,
            apply: Some(crate::cmd::plan::apply_rate(&session.connected.apply)),
        };
        render::report::save(plan, &ctx, path)?;
        tracing::info!(path = %path.display(), "plan report written");
    }
    Ok(())
}

/// How the summary tells to finish this run if it stops early.
fn resume_with(opts: &Options) -> ResumeWith {
    match &opts.source {
        Source::Live { config } => ResumeWith::Config {
            config: config.clone(),
            journal: opts.journal.clone(),
        },
        // `apply` takes --config or --sandbox; a snapshot is never a source.
        Source::Sandbox(_) | Source::Snapshot { .. } => ResumeWith::Sandbox,
    }
}

/// Fetch, plan, show the plan and ask. `None` when the answer was no.
async fn plan_now(opts: &Options, session: &Session, log: &Log) -> anyhow::Result<Option<Plan>> {
    let (snapshot, _) = crate::input::fetch(&session.connected.connection, log.interactive).await?;
    let cfg = session.connected.plan.clone();
    let (plan, stats, snapshot) = tokio::task::spawn_blocking(move || {
        rebalancer_optimizer::plan(&snapshot, &cfg).map(|(p, s)| (p, s, snapshot))
    })
    .await
    .context("the planner stopped unexpectedly")??;
    if let Some(out) = &opts.out {
        plan.save(out)?;
    }
    save_report(opts, session, &plan, Some(&snapshot))?;
    if opts.format == Format::Table {
        render::emit(&plan_text(
            &plan,
            &snapshot,
            &stats,
            &session.connected.layers,
            opts.yes,
        ))?;
    }
    if plan.changes.is_empty() {
        render::emit("Nothing to apply.")?;
        return Ok(None);
    }
    // Refuse (a BLOCKED plan, say) before asking, not after the "yes".
    rebalancer_applier::admit(
        &plan,
        &session.expected(),
        WritePath::Apply,
        session.config.allow_mass_unassign,
    )
    .map_err(|r| ApplyError::refused(WritePath::Apply, None, r))?;
    if opts.yes {
        return Ok(Some(plan));
    }
    let question = format!(
        "Apply {} assigns and {} unassigns to the CMS?",
        plan.summary.assigns, plan.summary.unassigns
    );
    Ok(applying::confirm(&question, "apply")?.then_some(plan))
}

fn plan_text(
    plan: &Plan,
    snapshot: &Snapshot,
    stats: &rebalancer_optimizer::PlanStats,
    layers: &Layers,
    yes: bool,
) -> String {
    render::plan::report(&PlanView {
        heading: if yes {
            "PLAN to apply (--yes: applying it now):"
        } else {
            "PLAN to apply (nothing is written before you confirm):"
        },
        plan,
        snapshot,
        stats,
        layers,
        saved: None,
        all: false,
    })
}
