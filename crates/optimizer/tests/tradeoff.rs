//! The trade-off ladder (`plan --tradeoff`) on the bench families: each row
//! is what `plan` at that target says, shortfall is the same on every rung,
//! and the changes fall as the target rises.

use rebalancer_optimizer::families::{generate, Family};
use rebalancer_optimizer::{plan, tradeoff, PlanConfig, Stages, TargetUtilisation, WhatIfs};

fn ladder(
    family: Family,
    agents: usize,
    leads: usize,
    seed: u64,
) -> (
    rebalancer_model::Snapshot,
    PlanConfig,
    rebalancer_optimizer::Tradeoff,
) {
    let (snap, cfg) = generate(family, agents, leads, seed).to_snapshot();
    let t = tradeoff(&snap, &cfg, &WhatIfs::default()).unwrap();
    (snap, cfg, t)
}

#[test]
fn every_row_is_the_plan_at_its_target() {
    for family in [Family::Uniform, Family::Skewed] {
        let (snap, cfg, t) = ladder(family, 300, 30, 42);
        assert!(t.rows.len() >= 3, "{family:?}: {:?}", t.rows);
        assert_eq!(t.rows[0].target, TargetUtilisation::Optimal);
        for r in &t.rows {
            let at = PlanConfig {
                target_utilisation: r.target,
                ..cfg.clone()
            };
            let (p, _) = plan(&snap, &at).unwrap();
            assert_eq!(
                (p.summary.assigns, p.summary.unassigns),
                (r.assigns, r.unassigns),
                "{family:?} at {}",
                r.target
            );
            assert_eq!(p.objectives.after.shortfall, r.shortfall);
            assert_eq!(p.objectives.after.peak_utilisation, r.peak_utilisation);
            assert_eq!(p.objectives.balance.cap, r.cap);
        }
    }
}

#[test]
fn the_ladder_holds_u_star_every_step_above_it_and_the_current_peak() {
    let (_, cfg, t) = ladder(Family::Skewed, 400, 40, 42);
    let caps: Vec<f64> = t.rows.iter().map(|r| r.cap).collect();
    assert!(caps.windows(2).all(|w| w[0] < w[1]), "{caps:?}");
    assert_eq!(caps[0], t.least_peak);
    assert_eq!(*caps.last().unwrap(), 1.0);
    let steps = t
        .rows
        .iter()
        .filter_map(|r| r.target.value())
        .filter(|x| ((x * 20.0).round() - x * 20.0).abs() < 1e-9)
        .count();
    // Every 0.05 strictly above u* up to 1.0.
    let expected = (1..=20)
        .filter(|k| *k as f64 * 0.05 > t.least_peak + 1e-12)
        .count();
    assert_eq!(steps, expected);
    let current = t
        .rows
        .iter()
        .find(|r| r.marks.contains(&"current peak"))
        .unwrap();
    assert!(
        (current.cap - t.current_peak.max(t.least_peak)).abs() < 1e-4,
        "{current:?}"
    );
    assert_eq!(cfg.target_utilisation, TargetUtilisation::Optimal);
    assert!(t.rows[0].marks.contains(&"configured"));
    let shortfall = t.rows[0].shortfall;
    assert!(t.rows.iter().all(|r| r.shortfall == shortfall));
}

/// Ladders where a higher target may cost a few more assigns than the rung
/// below, with the largest rise measured: the pair-count reduction is a
/// local search (fewest new pairs is a fixed-charge problem, NP-hard), so
/// its count is not monotone by construction, only the least-records flow
/// it starts from is (checked below). Measured over 30 ladders (both
/// families, 1000×100 to 5000×500, seeds 1, 2, 3, 7, 42): this is the one
/// inversion, 27 assigns at 0.70 and 30 at 0.75.
const KNOWN_INVERSIONS: [(Family, usize, usize, u64, usize); 1] =
    [(Family::Skewed, 1000, 100, 7, 3)];

/// On both bench families, over sizes and seeds, a higher target costs no
/// more assigns (but for the known inversion, bounded); unassigns are the
/// safety moves, equal on every rung; and records on new pairs at the
/// least-records optimum never rise with the target (an LP guarantee: the
/// cap only loosens).
#[test]
fn changes_fall_as_the_target_rises_on_the_bench_families() {
    for family in [Family::Uniform, Family::Skewed] {
        for (agents, leads) in [(1000, 100), (2000, 200)] {
            for seed in [42, 7] {
                let (_, _, t) = ladder(family, agents, leads, seed);
                let allowed = KNOWN_INVERSIONS
                    .iter()
                    .find(|k| (k.0, k.1, k.2, k.3) == (family, agents, leads, seed))
                    .map_or(0, |k| k.4);
                let unassigns = t.rows[0].unassigns;
                for w in t.rows.windows(2) {
                    assert!(
                        w[1].assigns <= w[0].assigns + allowed,
                        "{family:?} {agents}x{leads} seed {seed}: {} assigns at {} but {} at {}",
                        w[1].assigns,
                        w[1].target,
                        w[0].assigns,
                        w[0].target
                    );
                    assert_eq!(w[1].unassigns, unassigns);
                }
                let (first, last) = (&t.rows[0], t.rows.last().unwrap());
                assert!(
                    last.assigns <= first.assigns,
                    "{family:?} {agents}x{leads} seed {seed}"
                );
                // Least records on new pairs: monotone by construction.
                let inst = generate(family, agents, leads, seed).to_instance();
                let stages = Stages::new(&inst);
                let base = stages.base().unwrap();
                let mut records = f64::INFINITY;
                for r in &t.rows {
                    let sol = stages.at(&base, r.target.ratio()).unwrap();
                    let now = sol.new_pair_flow_scaled as f64 / sol.peak.den as f64;
                    assert!(
                        now <= records + 1e-9,
                        "{family:?} {agents}x{leads} seed {seed} at {}",
                        r.target
                    );
                    records = now;
                }
            }
        }
    }
}
