//! `rebalancer bench`: time the whole dry-run plan on the generated
//! benchmark families (`../shared/bench-instances.md`), compare it with the
//! greedy baseline, and time the general LP solvers on the same instances.
//!
//! Each family, size and backend runs in a fresh child process (`rebalancer
//! bench-one`, hidden), so the peak resident set it reports (`VmHWM`)
//! belongs to that run alone. The child generates the instance and prints
//! one JSON line: for `flow` it times `plan()` `--repeat` times and runs the
//! greedy baseline; for an LP backend it times `lp::solve_lp_at` (the three
//! lexicographic stages, once) and checks its optimum against the exact
//! flow stages. The parent kills a child after `--timeout` (that backend is
//! then skipped for the family's larger sizes), works out each LP run's
//! ratio to flow's solve time, and renders a table, JSON or CSV, and the
//! `--plot` chart.

use crate::logging::Log;
use crate::progress::Steps;
use crate::render::{
    self,
    bench::{BenchRow, FlowFigures, LpFigures, Status},
};
use anyhow::Context;
pub use rebalancer_optimizer::families::Family;
use rebalancer_optimizer::families::{generate, Generated};
use rebalancer_optimizer::greedy::greedy;
use rebalancer_optimizer::lp::{solve_lp_at, LpBackend, LpSolution};
use rebalancer_optimizer::{tradeoff, PlanConfig, Solution, Stages, TargetUtilisation, WhatIfs};
use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The uniform family's exact optimum for seed 42, from bench-instances.md:
/// (agents, leads, F*, u*).
const UNIFORM_SPEC: [(usize, usize, i64, f64); 4] = [
    (100, 10, 1_798, 0.799466429524),
    (1_000, 100, 19_493, 0.799876897825),
    (5_000, 500, 98_876, 0.800038838408),
    (20_000, 2_000, 398_138, 0.799979906969),
];

/// Seed the reference figures were measured with.
const SPEC_SEED: u64 = 42;

/// How close u* must be to the spec's 12-digit value.
const SPEC_TOLERANCE: f64 = 1e-9;

/// How close an LP backend's optimum must be to flow's: u* absolutely,
/// the shortfall relative to `max(1, S*)` (records run to 10^5 and more).
const LP_TOLERANCE: f64 = 1e-6;

/// The utilisation target of the "changes at target" columns (the default
/// of `plan.target_utilisation`).
const BENCH_TARGET: f64 = 0.9;

/// Flow below this on a pair counts as no assignment (greedy baseline).
const MIN_FLOW: f64 = 1e-6;

/// How often the parent looks whether a child has finished.
const POLL: Duration = Duration::from_millis(20);

/// What solves the instance: the exact flow stages inside the whole plan,
/// or one of good_lp's LP solvers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Flow,
    Lp(LpBackend),
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Flow => "flow",
            Backend::Lp(b) => b.name(),
        }
    }

    /// The backends compiled into this build, flow first.
    pub fn available() -> Vec<Backend> {
        std::iter::once(Backend::Flow)
            .chain(LpBackend::available().into_iter().map(Backend::Lp))
            .collect()
    }

    /// A backend by name; the error names the backends of this build and,
    /// for a backend not compiled in, the cargo feature that adds it.
    pub fn parse(text: &str) -> Result<Backend, String> {
        let name = text.trim().to_ascii_lowercase();
        if name == "flow" {
            return Ok(Backend::Flow);
        }
        if let Some(b) = LpBackend::parse(&name) {
            return Ok(Backend::Lp(b));
        }
        let available: Vec<&str> = Backend::available().iter().map(|b| b.name()).collect();
        let available = available.join(", ");
        if let Some((_, Some(feature))) = LpBackend::KNOWN.iter().find(|(n, _)| *n == name) {
            return Err(format!(
                "backend `{name}` is not compiled into this build; build with \
                 `cargo build --release --features {feature}` (available: {available})"
            ));
        }
        let missing: Vec<String> = LpBackend::KNOWN
            .iter()
            .filter(|(n, _)| LpBackend::parse(n).is_none())
            .filter_map(|(n, f)| f.map(|f| format!("{n} (cargo feature `{f}`)")))
            .collect();
        let more = if missing.is_empty() {
            String::new()
        } else {
            format!("; not compiled in: {}", missing.join(", "))
        };
        Err(format!(
            "unknown backend `{}`; available: {available}{more}",
            text.trim()
        ))
    }
}

/// How `bench` prints its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchFormat {
    Table,
    Json,
    Csv,
}

/// What `bench` was asked to do.
#[derive(Debug)]
pub struct Options {
    pub families: Vec<Family>,
    /// (agents, leads) per size.
    pub sizes: Vec<(usize, usize)>,
    /// In the order given; duplicates already removed.
    pub backends: Vec<Backend>,
    pub seed: u64,
    pub repeat: u32,
    /// Wall time one backend may take on one size (its child is killed).
    pub timeout: Duration,
    pub format: BenchFormat,
    /// Every column in the table.
    pub wide: bool,
    /// Where to write the scaling chart (SVG).
    pub plot: Option<PathBuf>,
}

/// One child's run: the backend on the family at the size.
struct Job {
    family: Family,
    size: (usize, usize),
    backend: Backend,
}

impl Job {
    fn label(&self) -> String {
        format!(
            "{} {}x{} {}",
            self.family.name(),
            self.size.0,
            self.size.1,
            self.backend.name()
        )
    }
}

/// How a child ended.
enum Outcome {
    Row(Box<BenchRow>),
    TimedOut,
    Failed(ExitStatus),
}

/// `rebalancer bench`: one child process per family, size and backend.
pub fn run(args: Options, log: &Log) -> anyhow::Result<u8> {
    let exe = std::env::current_exe().context("cannot find this program to re-run it")?;
    let total = args.families.len() * args.sizes.len() * args.backends.len();
    let bar = Steps::new(log.interactive, "bench", total as u64);
    let mut rows = Vec::new();
    for &family in &args.families {
        // Backends that timed out in this family, and the size they did.
        let mut timed_out: Vec<(Backend, (usize, usize))> = Vec::new();
        for &size in &args.sizes {
            let first = rows.len();
            for &backend in &args.backends {
                let job = Job {
                    family,
                    size,
                    backend,
                };
                bar.start(job.label());
                let too_slow = timed_out
                    .iter()
                    .find(|(b, at)| *b == backend && size.0 >= at.0 && size.1 >= at.1)
                    .copied();
                let row = match too_slow {
                    Some((_, at)) => {
                        let note = format!(
                            "{} skipped from {}x{}: over {} s at {}x{} ({})",
                            backend.name(),
                            size.0,
                            size.1,
                            args.timeout.as_secs_f64(),
                            at.0,
                            at.1,
                            family.name()
                        );
                        bar.suspend(|| tracing::warn!("{note}"));
                        without_result(&job, &args, Status::Skipped, note)
                    }
                    None => {
                        tracing::info!(job = job.label(), "benchmarking");
                        match run_child(&exe, log, &job, &args)? {
                            Outcome::Row(row) => *row,
                            Outcome::TimedOut => {
                                timed_out.push((backend, size));
                                let note = format!(
                                    "{} over {} s at {}x{} ({})",
                                    backend.name(),
                                    args.timeout.as_secs_f64(),
                                    size.0,
                                    size.1,
                                    family.name()
                                );
                                bar.suspend(|| tracing::warn!("{note}"));
                                without_result(&job, &args, Status::Timeout, note)
                            }
                            Outcome::Failed(status) => {
                                let note = format!("{} failed ({status})", job.label());
                                without_result(&job, &args, Status::Failed, note)
                            }
                        }
                    }
                };
                rows.push(row);
                bar.done_one();
            }
            set_ratios(&mut rows[first..]);
        }
    }
    bar.finish();
    if let Some(path) = &args.plot {
        let svg = render::plot::svg(&render::bench::chart_of(&rows));
        rebalancer_model::write_atomic(path, svg.as_bytes())
            .with_context(|| format!("cannot write the plot {}", path.display()))?;
    }
    match args.format {
        BenchFormat::Json => render::emit(&serde_json::to_string_pretty(&rows)?)?,
        BenchFormat::Csv => render::emit(&render::bench::csv_of(&rows)?)?,
        BenchFormat::Table => {
            let plot: Vec<_> = args
                .plot
                .iter()
                .map(|p| ("the plot", p.as_path()))
                .collect();
            render::emit(
                &(render::bench::table_of(&rows, args.wide) + &render::files_written(&plot)),
            )?
        }
    }
    Ok(0)
}

/// A row for a run without results; the pairs come from the generator.
fn without_result(job: &Job, args: &Options, status: Status, note: String) -> BenchRow {
    let (agents, leads) = job.size;
    let pairs = generate(job.family, agents, leads, args.seed).pairs.len();
    BenchRow::without_result(
        job.backend.name(),
        job.family.name(),
        (agents, leads, pairs),
        (args.seed, args.repeat),
        status,
        note,
    )
}

/// Each row's solve time over flow's on the same instance: the flow row's
/// (best of `--repeat`) when flow ran, else the LP child's own flow solve.
fn set_ratios(rows: &mut [BenchRow]) {
    let flow_ms = rows
        .iter()
        .find(|r| r.backend == "flow")
        .and_then(|r| r.solve_ms);
    for r in rows {
        let reference = flow_ms.or(r.lp.as_ref().map(|l| l.flow_solve_ms));
        r.ratio_to_flow = match (r.solve_ms, reference) {
            (Some(ms), Some(flow)) if flow > 0.0 => Some(ms / flow),
            _ => None,
        };
    }
}

/// Run one job in a child process, killed after `args.timeout`.
fn run_child(
    exe: &std::path::Path,
    log: &Log,
    job: &Job,
    args: &Options,
) -> anyhow::Result<Outcome> {
    let (agents, leads) = job.size;
    let mut child = Command::new(exe)
        .args(["--log", &log.filter])
        .args(["--log-format", if log.json { "json" } else { "text" }])
        .arg("bench-one")
        .args(["--family", job.family.name()])
        .args(["--size", &format!("{agents}x{leads}")])
        .args(["--backend", job.backend.name()])
        .args(["--seed", &args.seed.to_string()])
        .args(["--repeat", &args.repeat.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("cannot start {}", exe.display()))?;
    // Read stdout while waiting, so a long line can never fill the pipe.
    let mut stdout = child.stdout.take().context("the child has no stdout")?;
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        stdout.read_to_string(&mut text).map(|_| text)
    });
    let status = wait_with_deadline(&mut child, Instant::now() + args.timeout)
        .with_context(|| format!("cannot wait for the bench of {}", job.label()))?;
    let line = reader
        .join()
        .map_err(|_| anyhow::anyhow!("the reader of bench-one's output panicked"))?
        .with_context(|| format!("cannot read the output of the bench of {}", job.label()))?;
    let Some(status) = status else {
        return Ok(Outcome::TimedOut);
    };
    if !status.success() {
        anyhow::ensure!(
            job.backend != Backend::Flow,
            "bench of {} failed ({status})",
            job.label()
        );
        return Ok(Outcome::Failed(status));
    }
    let row: BenchRow = serde_json::from_str(line.trim())
        .with_context(|| format!("bench-one printed something that is not a result: {line:?}"))?;
    Ok(Outcome::Row(Box::new(row)))
}

/// The child's exit status, or `None` when it was still running at the
/// deadline (it is then killed and reaped).
fn wait_with_deadline(child: &mut Child, deadline: Instant) -> std::io::Result<Option<ExitStatus>> {
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let now = Instant::now();
        if now >= deadline {
            // Already gone between the two calls: kill fails, wait reaps.
            let _ = child.kill();
            child.wait()?;
            return Ok(None);
        }
        std::thread::sleep(POLL.min(deadline - now));
    }
}

/// `rebalancer bench-one`: one backend on one size in this process, one
/// JSON line out.
pub fn run_one(
    family: Family,
    (agents, leads): (usize, usize),
    backend: Backend,
    seed: u64,
    repeat: u32,
) -> anyhow::Result<u8> {
    let generated = generate(family, agents, leads, seed);
    let row = match backend {
        Backend::Flow => flow_row(family, generated, seed, repeat)?,
        Backend::Lp(b) => lp_row(family, &generated, b, seed, repeat)?,
    };
    render::emit(&serde_json::to_string(&row)?)?;
    Ok(0)
}

/// The row's identity: backend, family, size, pairs, seed, repeat.
fn row_head(
    backend: Backend,
    family: Family,
    generated: &Generated,
    seed: u64,
    repeat: u32,
) -> BenchRow {
    BenchRow {
        backend: backend.name().to_owned(),
        family: family.name().to_owned(),
        agents: generated.headroom.len(),
        leads: generated.demand.len(),
        pairs: generated.pairs.len(),
        seed,
        repeat,
        status: Status::Ok,
        solve_ms: None,
        ratio_to_flow: None,
        peak_rss_mib: None,
        shortfall: None,
        peak_utilisation: None,
        note: None,
        flow: None,
        lp: None,
    }
}

/// An LP backend on the instance, checked against the exact flow stages
/// (solved after the LP, so the peak RSS is the LP's own).
fn lp_row(
    family: Family,
    generated: &Generated,
    backend: LpBackend,
    seed: u64,
    repeat: u32,
) -> anyhow::Result<BenchRow> {
    let inst = generated.to_instance();
    reset_peak_rss();
    let started = Instant::now();
    let solved = solve_lp_at(&inst, backend, None);
    let lp_ms = started.elapsed().as_secs_f64() * 1e3;
    let peak_rss = peak_rss_mib();

    let started = Instant::now();
    let flow = Stages::new(&inst)
        .solve()
        .context("the flow stages overflow on this instance")?;
    let flow_solve_ms = started.elapsed().as_secs_f64() * 1e3;

    let mut row = row_head(Backend::Lp(backend), family, generated, seed, repeat);
    row.peak_rss_mib = peak_rss;
    match solved {
        Err(e) => {
            row.status = Status::Failed;
            row.note = Some(format!(
                "{} {}x{} {}: {e}",
                family.name(),
                generated.headroom.len(),
                generated.demand.len(),
                backend.name()
            ));
        }
        Ok(lp) => {
            let mismatch = differs_from_flow(&lp, &flow);
            row.status = if mismatch.is_some() {
                Status::Mismatch
            } else {
                Status::Ok
            };
            row.note = mismatch.map(|m| {
                format!(
                    "{} {}x{} {}: {m}",
                    family.name(),
                    generated.headroom.len(),
                    generated.demand.len(),
                    backend.name()
                )
            });
            row.solve_ms = Some(lp_ms);
            row.shortfall = Some(lp.shortfall);
            row.peak_utilisation = Some(lp.peak);
            row.lp = Some(LpFigures {
                new_pair_flow: lp.new_pair_flow,
                flow_shortfall: flow.shortfall as f64,
                flow_peak_utilisation: flow.least_peak.to_f64(),
                flow_solve_ms,
                matches_flow: row.status == Status::Ok,
            });
        }
    }
    Ok(row)
}

/// What differs between the LP's optimum and flow's beyond `LP_TOLERANCE`.
fn differs_from_flow(lp: &LpSolution, flow: &Solution) -> Option<String> {
    let s = flow.shortfall as f64;
    let u = flow.least_peak.to_f64();
    let mut out = Vec::new();
    if (lp.shortfall - s).abs() > LP_TOLERANCE * s.max(1.0) {
        out.push(format!("shortfall {} vs flow's {s}", lp.shortfall));
    }
    if (lp.peak - u).abs() > LP_TOLERANCE {
        out.push(format!(
            "u* {:.9} vs flow's {u:.9} (off by {:.1e})",
            lp.peak,
            (lp.peak - u).abs()
        ));
    }
    (!out.is_empty()).then(|| out.join(", "))
}

/// Flow: the whole plan `repeat` times, then once at the default target,
/// the trade-off ladder and the greedy baseline.
fn flow_row(
    family: Family,
    generated: Generated,
    seed: u64,
    repeat: u32,
) -> anyhow::Result<BenchRow> {
    let (snapshot, cfg) = generated.to_snapshot();
    // Everything the row needs from the generated instance, then drop it:
    // the peak RSS below is the plan's, not the generator's (its pair list
    // alone is 96 MB at 4M pairs).
    let inst = generated.to_instance();
    let g = greedy(&inst, 1.0);
    let greedy_new_pairs = inst
        .pairs
        .iter()
        .zip(&g.flows)
        .filter(|(p, f)| !p.current && **f >= MIN_FLOW)
        .count();
    drop(inst);
    let demand: u64 = generated.demand.iter().sum();
    let size = (generated.headroom.len(), generated.demand.len());
    let mut row = row_head(Backend::Flow, family, &generated, seed, repeat);
    drop(generated);
    reset_peak_rss();

    let mut times = Vec::with_capacity(repeat as usize);
    let mut solve_ms_best = f64::INFINITY;
    let mut last = None;
    for _ in 0..repeat {
        // The previous run's plan is not kept while the next one runs.
        drop(last.take());
        let started = Instant::now();
        let (plan, stats) = rebalancer_optimizer::plan(&snapshot, &cfg)?;
        times.push(started.elapsed().as_secs_f64() * 1e3);
        solve_ms_best = solve_ms_best.min(stats.solve_time.as_secs_f64() * 1e3);
        last = Some((plan, stats));
    }
    let (plan, stats) = last.context("--repeat must be at least 1")?;
    times.sort_by(f64::total_cmp);

    // The plan's own peak, before the extra work below.
    let peak_rss = peak_rss_mib();
    // The same instance at the default utilisation target, and the whole
    // trade-off ladder, timed once each.
    let at_target = PlanConfig {
        target_utilisation: TargetUtilisation::At(BENCH_TARGET),
        ..cfg.clone()
    };
    let (target_plan, _) = rebalancer_optimizer::plan(&snapshot, &at_target)?;
    let ladder_started = Instant::now();
    let ladder = tradeoff(&snapshot, &cfg, &WhatIfs::default())?;
    let tradeoff_ms = ladder_started.elapsed().as_secs_f64() * 1e3;

    let optimum = &plan.objectives.optimum;
    let max_flow = demand as i64 - optimum.shortfall.round() as i64;
    let least_peak = plan.objectives.balance.least_peak;
    row.solve_ms = Some(solve_ms_best);
    row.ratio_to_flow = Some(1.0);
    row.peak_rss_mib = peak_rss;
    row.shortfall = Some(optimum.shortfall);
    row.peak_utilisation = Some(least_peak);
    row.flow = Some(FlowFigures {
        plan_ms_best: times[0],
        plan_ms_median: median(&times),
        solve_ms_best,
        balance_iterations: stats.balance_iterations,
        max_flow,
        assigns: plan.summary.assigns,
        unassigns: plan.summary.unassigns,
        new_pairs_least_records: plan.objectives.new_pairs.least_records,
        target_assigns: target_plan.summary.assigns,
        target_unassigns: target_plan.summary.unassigns,
        target_peak_utilisation: target_plan.objectives.after.peak_utilisation,
        tradeoff_ms,
        tradeoff_rungs: ladder.rows.len(),
        greedy_new_pairs,
        greedy_peak_utilisation: g.peak,
        greedy_shortfall: g.shortfall,
        matches_spec: matches_spec(family, seed, size, max_flow, least_peak),
    });
    Ok(row)
}

/// Median of sorted, non-empty values.
fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

fn matches_spec(
    family: Family,
    seed: u64,
    size: (usize, usize),
    max_flow: i64,
    peak: f64,
) -> Option<bool> {
    if family != Family::Uniform || seed != SPEC_SEED {
        return None;
    }
    UNIFORM_SPEC
        .iter()
        .find(|&&(a, l, _, _)| (a, l) == size)
        .map(|&(_, _, f, u)| f == max_flow && (peak - u).abs() <= SPEC_TOLERANCE)
}

/// Start the peak resident set (`VmHWM`) afresh from the current one
/// (Linux: `5` to `/proc/self/clear_refs`), so that the peak read later is
/// of the work in between, not of generating the instance. Where that is
/// not possible the peak stays the whole process's (an upper bound).
fn reset_peak_rss() {
    if let Err(e) = std::fs::write("/proc/self/clear_refs", "5") {
        tracing::debug!(error = %e, "cannot reset the peak resident set; it covers the whole process");
    }
}

/// Peak resident set of this process in MiB (`VmHWM`), Linux only.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&[1.0, 2.0, 9.0]), 2.0);
        assert_eq!(median(&[1.0, 2.0, 4.0, 9.0]), 3.0);
    }

    #[test]
    fn backends_by_name_and_usage_errors() {
        assert_eq!(Backend::parse(" Flow "), Ok(Backend::Flow));
        assert_eq!(
            Backend::parse("microlp"),
            Ok(Backend::Lp(LpBackend::Microlp))
        );
        for b in Backend::available() {
            assert_eq!(Backend::parse(b.name()), Ok(b));
        }
        let err = Backend::parse("nope").unwrap_err();
        assert!(
            err.contains("`nope`") && err.contains("flow, microlp"),
            "{err}"
        );
        for (name, feature) in LpBackend::KNOWN {
            if let (None, Some(feature)) = (LpBackend::parse(name), feature) {
                let err = Backend::parse(name).unwrap_err();
                assert!(
                    err.contains(&format!("`{name}`"))
                        && err.contains(&format!("--features {feature}")),
                    "{err}"
                );
                assert!(Backend::parse("nope").unwrap_err().contains(name));
            }
        }
    }

    fn row(backend: &str, solve_ms: Option<f64>, flow_solve_ms: Option<f64>) -> BenchRow {
        let mut r = BenchRow::without_result(
            backend,
            "uniform",
            (100, 10, 1000),
            (42, 1),
            Status::Ok,
            String::new(),
        );
        r.solve_ms = solve_ms;
        r.lp = flow_solve_ms.map(|ms| LpFigures {
            new_pair_flow: 0.0,
            flow_shortfall: 0.0,
            flow_peak_utilisation: 0.8,
            flow_solve_ms: ms,
            matches_flow: true,
        });
        r
    }

    #[test]
    fn ratios_use_the_flow_row_else_the_childs_own_flow_solve() {
        let mut rows = [
            row("flow", Some(2.0), None),
            row("microlp", Some(50.0), Some(4.0)),
            row("highs", None, None),
        ];
        set_ratios(&mut rows);
        let ratios: Vec<Option<f64>> = rows.iter().map(|r| r.ratio_to_flow).collect();
        assert_eq!(ratios, [Some(1.0), Some(25.0), None]);

        let mut rows = [row("microlp", Some(50.0), Some(4.0))];
        set_ratios(&mut rows);
        assert_eq!(rows[0].ratio_to_flow, Some(12.5));
    }

    #[cfg(unix)]
    #[test]
    fn a_child_past_its_deadline_is_killed() {
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let started = Instant::now();
        let status = wait_with_deadline(&mut child, started + Duration::from_millis(100));
        assert!(status.unwrap().is_none());
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(child.try_wait().unwrap().is_some(), "reaped");

        let mut child = Command::new("true").spawn().unwrap();
        let status = wait_with_deadline(&mut child, Instant::now() + Duration::from_secs(30));
        assert!(status.unwrap().is_some_and(|s| s.success()));
    }

    #[test]
    fn spec_applies_to_uniform_seed_42_only() {
        let u = 0.799876897825;
        assert_eq!(
            matches_spec(Family::Uniform, 42, (1000, 100), 19_493, u),
            Some(true)
        );
        assert_eq!(
            matches_spec(Family::Uniform, 42, (1000, 100), 19_492, u),
            Some(false)
        );
        assert_eq!(
            matches_spec(Family::Uniform, 7, (1000, 100), 19_493, u),
            None
        );
        assert_eq!(
            matches_spec(Family::Skewed, 42, (1000, 100), 19_493, u),
            None
        );
        assert_eq!(matches_spec(Family::Uniform, 42, (10, 1), 1, u), None);
    }
}
