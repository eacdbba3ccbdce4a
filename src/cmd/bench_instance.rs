//! `rebalancer bench-instance` (hidden): write one generated benchmark
//! instance to a text file, so solvers outside the project (the LEMON
//! comparison, `benches/lemon_stages.sh`) solve exactly what `bench` plans.
//!
//! Any family `bench` has works: the instance comes from
//! `rebalancer_optimizer::families::generate`, the bench's own generator.
//! The format is line-based ASCII, one record per line, fields separated by
//! one space, integers in decimal, in this order:
//!
//! ```text
//! c rebalancer bench instance family=uniform agents=2 leads=1 seed=42
//! p AGENTS LEADS PAIRS
//! a HEADROOM          one line per agent, agents 0..AGENTS in order
//! l DEMAND            one line per lead, leads 0..LEADS in order
//! e AGENT LEAD CUR    one line per pair (0-based indices; CUR 1 = current)
//! o MAXFLOW NUM DEN COST   only with --optimum: rebalancer's F*, u* = NUM/DEN
//!                          (reduced) and the stage-3 optimum, new-pair flow
//!                          scaled by DEN (records on new pairs = COST/DEN)
//! ```
//!
//! Lines starting with `c` are comments. With `--optimum` the three exact
//! stages run on the instance (`Stages::base`, then `Stages::churn` at u*,
//! without the pair-count reduction) and their optimum is appended as the
//! `o` line, for the external solver to check itself against. The same
//! arguments write the same bytes.

use anyhow::Context;
use rebalancer_optimizer::families::{generate, Family, Generated};
use rebalancer_optimizer::Stages;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

/// What to export.
#[derive(Debug, Clone)]
pub struct Options {
    pub family: Family,
    pub size: (usize, usize),
    pub seed: u64,
    pub out: PathBuf,
    /// Also solve the three stages and write their optimum (`o` line).
    pub optimum: bool,
}

/// The exact optimum of the three stages, as the `o` line gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Optimum {
    max_flow: i64,
    peak_num: i64,
    peak_den: i64,
    cost_scaled: i64,
}

pub fn run(opts: Options) -> anyhow::Result<u8> {
    let (agents, leads) = opts.size;
    let generated = generate(opts.family, agents, leads, opts.seed);
    let optimum = if opts.optimum {
        Some(solve(&generated)?)
    } else {
        None
    };
    let file = std::fs::File::create(&opts.out)
        .with_context(|| format!("cannot create {}", opts.out.display()))?;
    let mut w = BufWriter::new(file);
    write_instance(&mut w, &opts, &generated, optimum)
        .and_then(|_| w.flush())
        .with_context(|| format!("cannot write {}", opts.out.display()))?;
    Ok(0)
}

/// Stages 1–3 on the generated instance (stage 3 at u*, unreduced).
fn solve(generated: &Generated) -> anyhow::Result<Optimum> {
    let inst = generated.to_instance();
    let stages = Stages::new(&inst);
    let overflow = || anyhow::anyhow!("the instance's scaled capacities overflow i64");
    let base = stages.base().map_err(|_| overflow())?;
    let (_, _, cost_scaled) = stages.churn(base.least_peak).map_err(|_| overflow())?;
    Ok(Optimum {
        max_flow: base.max_flow,
        peak_num: base.least_peak.num,
        peak_den: base.least_peak.den,
        cost_scaled,
    })
}

fn write_instance(
    w: &mut impl Write,
    opts: &Options,
    g: &Generated,
    optimum: Option<Optimum>,
) -> std::io::Result<()> {
    writeln!(
        w,
        "c rebalancer bench instance family={} agents={} leads={} seed={}",
        opts.family.name(),
        g.headroom.len(),
        g.demand.len(),
        opts.seed
    )?;
    writeln!(
        w,
        "p {} {} {}",
        g.headroom.len(),
        g.demand.len(),
        g.pairs.len()
    )?;
    for h in &g.headroom {
        writeln!(w, "a {h}")?;
    }
    for d in &g.demand {
        writeln!(w, "l {d}")?;
    }
    for &(i, j, current) in &g.pairs {
        writeln!(w, "e {i} {j} {}", u8::from(current))?;
    }
    if let Some(o) = optimum {
        writeln!(
            w,
            "o {} {} {} {}",
            o.max_flow, o.peak_num, o.peak_den, o.cost_scaled
        )?;
    }
    Ok(())
}
