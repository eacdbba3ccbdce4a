//! Criterion benchmarks of the optimizer on the generated benchmark
//! families (`../shared/bench-instances.md`).
//!
//! - `plan/uniform`, `plan/skewed`: the whole dry-run `plan()` (prepare,
//!   every stage, rounding, diff) on a snapshot built outside the timed loop.
//! - `plan/dense`: the same on the dense family (pools of 130–200 agents,
//!   issue 17's regression) at 5000x500 only (≈ 82k pairs), to keep
//!   `cargo bench` short; `rebalancer bench --family dense` has the rest.
//! - `stages/uniform`: only the three exact flow stages,
//!   `Stages::new(&inst).solve()`.
//!
//! Sizes are agents × leads; pairs per agent as the family defines. The
//! large sizes take seconds per run, so every group uses 10 flat samples
//! and a short measurement time: `cargo bench --bench plan` finishes in a
//! few minutes on 2 cores. `rebalancer bench` reports the same runs with
//! peak memory and the greedy baseline.

use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use rebalancer_optimizer::families::{generate, Family};
use rebalancer_optimizer::Stages;
use std::hint::black_box;
use std::time::Duration;

/// (agents, leads) per benchmark size.
const SIZES: [(usize, usize); 3] = [(1_000, 100), (5_000, 500), (20_000, 2_000)];

/// (agents, leads) of the dense family's criterion bench: small enough
/// that ten samples take seconds.
const DENSE_SIZES: [(usize, usize); 1] = [(5_000, 500)];

/// Seed of the reference figures.
const SEED: u64 = 42;

fn id(agents: usize, leads: usize) -> BenchmarkId {
    BenchmarkId::from_parameter(format!("{agents}x{leads}"))
}

fn configure(group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(6));
}

fn bench_plan(c: &mut Criterion) {
    let families: [(Family, &[(usize, usize)]); 3] = [
        (Family::Uniform, &SIZES),
        (Family::Skewed, &SIZES),
        (Family::Dense, &DENSE_SIZES),
    ];
    for (family, sizes) in families {
        let mut group = c.benchmark_group(format!("plan/{}", family.name()));
        configure(&mut group);
        for &(agents, leads) in sizes {
            let generated = generate(family, agents, leads, SEED);
            let (snapshot, cfg) = generated.to_snapshot();
            group.throughput(Throughput::Elements(generated.pairs.len() as u64));
            group.bench_function(id(agents, leads), |b| {
                b.iter(|| {
                    rebalancer_optimizer::plan(black_box(&snapshot), black_box(&cfg))
                        .expect("the benchmark instance plans")
                })
            });
        }
        group.finish();
    }
}

fn bench_stages(c: &mut Criterion) {
    let mut group = c.benchmark_group("stages/uniform");
    configure(&mut group);
    for (agents, leads) in SIZES {
        let generated = generate(Family::Uniform, agents, leads, SEED);
        let inst = generated.to_instance();
        group.throughput(Throughput::Elements(inst.pairs.len() as u64));
        group.bench_function(id(agents, leads), |b| {
            b.iter(|| {
                Stages::new(black_box(&inst))
                    .solve()
                    .expect("the benchmark instance fits 64-bit flows")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_plan, bench_stages);
criterion_main!(benches);
