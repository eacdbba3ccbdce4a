#!/usr/bin/env python3
"""OR-Tools comparison bench for the three lexicographic flow stages.

Solves the same three stages as `crates/optimizer/src/stages.rs`, on the
"uniform" instance family of `bench-instances.md` or (`--family dense`) the
"dense" family of `crates/optimizer/src/families.rs` (generated here by the
same steps, so both programs solve the same instance), with OR-Tools' C++
graph solvers through their Python wrappers:

1. Shortfall: max flow F* on source -> agents (cap h_i) -> leads (pair arcs,
   uncapacitated) -> sink (cap D_j), with `SimpleMaxFlow`.
2. Balance: least peak utilisation u* by Newton's method on min cuts, u kept
   as an exact fraction p/q and the network scaled by q (agent caps p*h_i,
   lead caps q*D_j), one `SimpleMaxFlow` per iteration, cut from
   `get_source_side_min_cut()`. From u = F*/sum(h): if the flow falls short
   of q*F*, the cut S gives u = (F* - D(S)) / H(not S), where D(S) is the
   demand of the leads inside S and H(not S) the headroom of the agents
   outside S.
3. Churn: min-cost flow of value q*F* on the stage-2 network (supply q*F* at
   the source, -q*F* at the sink), cost 0 on current pairs and 1 per unit on
   new pairs, with `SimpleMinCostFlow`. The stage-3 optimum in records is
   cost / q.

"Uncapacitated" pair arcs get a finite capacity that no flow can reach, so
the optima are those of the uncapacitated network: in stages 1-2,
p*sum(h) + 1 (above the whole source capacity, so a min cut never crosses a
pair arc, as the Newton step needs); in stage 3, q*F* (the flow value: an
optimum with non-negative costs decomposes into paths, none of which carries
more than the total). All capacities are integers, so the optima are exact.

Timing covers only what runs inside OR-Tools: graph construction (solver
object + the vectorised `add_arcs_*` calls, `set_nodes_supplies`) as
`build_s`, and the solver call plus reading the cut as `solve_s`. Instance
generation and building the numpy input arrays are not timed. Each size runs
in a fresh subprocess, so the peak RSS (`ru_maxrss`) is per size; it covers
the whole process (Python, numpy, the OR-Tools module, the instance, the
solvers).

Usage:
    pip install ortools   # 9.12 and 9.15 are known to work
    python3 ortools_stages.py --sizes 20000x2000,200000x20000 --seed 42
    python3 ortools_stages.py --sizes 20000x2000 --format json --repeat 2 \
        --rust-bin target/release/rebalancer   # also check F*, u* against Rust
    python3 ortools_stages.py --family dense --sizes 20000x2000 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from fractions import Fraction

import numpy as np

MASK = (1 << 64) - 1
GAMMA = 0x9E3779B97F4A7C15
K_ELIGIBLE = 20  # eligible leads per agent
CURRENT = 2  # the first 2 drawn leads of an agent are its current pairs
SHARE = 0.8

# The dense family (families.rs): pools of DENSE_POOL_MIN + below(SPREAD)
# agents, 2 + below(3) current leads per agent, every 10th lead hot (x20).
DENSE_POOL_MIN = 130
DENSE_POOL_SPREAD = 71
DENSE_HOT_EVERY = 10
DENSE_HOT_FACTOR = 20.0
FAMILIES = ("uniform", "dense")

# bench-instances.md, seed 42: (A, L) -> (pairs, sum h, F*, u* to 12 digits)
SPEC = {
    (100, 10): (1_000, 2_249, 1_798, "0.799466429524"),
    (1_000, 100): (20_000, 24_370, 19_493, "0.799876897825"),
    (5_000, 500): (100_000, 123_589, 98_876, "0.800038838408"),
    (20_000, 2_000): (400_000, 497_685, 398_138, "0.799979906969"),
}


# --------------------------------------------------------------------------
# Instance generator (bench-instances.md, family "uniform")
# --------------------------------------------------------------------------


class SplitMix64:
    """splitmix64; output n is a pure function of seed + (n+1)*GAMMA, so
    blocks of outputs are computed vectorised with wrapping uint64 numpy
    arithmetic."""

    def __init__(self, seed: int):
        self.seed = seed & MASK
        self.pos = 0  # outputs consumed

    def block(self, start: int, n: int) -> np.ndarray:
        """Outputs start .. start+n-1 (not consuming them)."""
        with np.errstate(over="ignore"):
            idx = np.arange(start + 1, start + n + 1, dtype=np.uint64)
            z = np.uint64(self.seed) + idx * np.uint64(GAMMA)
            z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            return z ^ (z >> np.uint64(31))

    def take(self, n: int) -> np.ndarray:
        out = self.block(self.pos, n)
        self.pos += n
        return out


class Stream:
    """splitmix64 one output at a time (for draws with rejection), read
    ahead in vectorised blocks."""

    BLOCK = 1 << 16

    def __init__(self, seed: int):
        self.rng = SplitMix64(seed)
        self.buf: list = []
        self.at = 0

    def next(self) -> int:
        if self.at == len(self.buf):
            self.buf = self.rng.take(self.BLOCK).tolist()
            self.at = 0
        self.at += 1
        return self.buf[self.at - 1]

    def below(self, n: int) -> int:
        return self.next() % n

    def unit(self) -> float:
        return (self.next() >> 11) / float(1 << 53)


def round_half_away(x: float) -> int:
    """f64::round for x >= 0 (Python's round() is half-to-even)."""
    r = math.floor(x)
    return r + 1 if x - r >= 0.5 else r


def generate_uniform(agents: int, leads: int, seed: int):
    """Return (h int64[A], d int64[L], tail int32[P], lead int32[P],
    current bool[P]), pairs in draw order (agent by agent)."""
    rng = SplitMix64(seed)
    h = (rng.take(agents) % np.uint64(51)).astype(np.int64)

    k = min(K_ELIGIBLE, leads)
    n_pairs = agents * k
    tail = np.repeat(np.arange(agents, dtype=np.int32), k)
    lead = np.empty(n_pairs, dtype=np.int32)
    current = np.tile(np.arange(k) < CURRENT, agents)

    # Draws are sequential (rejection of repeats), done in blocks of agents
    # so the Python-int working set stays small.
    block_agents = 8192
    for a0 in range(0, agents, block_agents):
        a1 = min(agents, a0 + block_agents)
        want = (a1 - a0) * k
        start = rng.pos
        buf = (rng.block(start, want + want // 8 + 64) % np.uint64(leads)).tolist()
        used = 0
        out = []
        for _ in range(a0, a1):
            drawn = []
            while len(drawn) < k:
                if used == len(buf):
                    more = rng.block(start + used, want + 64) % np.uint64(leads)
                    buf.extend(more.tolist())
                j = buf[used]
                used += 1
                if j not in drawn:
                    drawn.append(j)
            out.extend(drawn)
        lead[a0 * k : a1 * k] = out
        rng.pos = start + used

    units = ((rng.take(leads) >> np.uint64(11)).astype(np.float64) / float(1 << 53)).tolist()
    weights = [0.5 + u for u in units]
    weight_sum = 0.0
    for w in weights:  # sequential, as the Rust iterator sum
        weight_sum += w
    total = float(int(h.sum()))
    d = np.array(
        [round_half_away(SHARE * total * w / weight_sum) for w in weights], dtype=np.int64
    )
    return h, d, tail, lead, current


def generate_dense(agents: int, leads: int, seed: int):
    """The dense family, step by step as families.rs's module doc gives it;
    same return as generate_uniform, pairs lead by lead."""
    rng = Stream(seed)
    h = np.array([rng.below(51) for _ in range(agents)], dtype=np.int64)
    current_of = [[] for _ in range(leads)]
    for i in range(agents):
        c = min(2 + rng.below(3), leads)
        drawn = []
        while len(drawn) < c:
            j = rng.below(leads)
            if j not in drawn:
                drawn.append(j)
        for j in drawn:
            current_of[j].append(i)
    tail, lead, current = [], [], []
    for j in range(leads):
        s = min(DENSE_POOL_MIN + rng.below(DENSE_POOL_SPREAD), agents)
        pool = list(current_of[j])
        seen = set(pool)
        while len(pool) < s:
            i = rng.below(agents)
            if i not in seen:
                seen.add(i)
                pool.append(i)
        tail.extend(pool)
        lead.extend([j] * len(pool))
        current.extend([True] * len(current_of[j]) + [False] * (len(pool) - len(current_of[j])))
    weights = []
    for j in range(leads):
        w = 0.5 + rng.unit()
        weights.append(w * DENSE_HOT_FACTOR if j % DENSE_HOT_EVERY == 0 else w)
    weight_sum = 0.0
    for w in weights:  # sequential, as the Rust iterator sum
        weight_sum += w
    total = float(int(h.sum()))
    d = np.array(
        [round_half_away(SHARE * total * w / weight_sum) for w in weights], dtype=np.int64
    )
    return (h, d, np.array(tail, dtype=np.int32), np.array(lead, dtype=np.int32),
            np.array(current, dtype=bool))


# --------------------------------------------------------------------------
# The three stages with OR-Tools
# --------------------------------------------------------------------------


def solve_stages(h, d, tail, lead, current):
    from ortools.graph.python import max_flow, min_cost_flow

    A, L, P = len(h), len(d), len(tail)
    source, sink = A + L, A + L + 1
    # Arc order as stages.rs: source->agents, leads->sink, pairs.
    tails = np.concatenate(
        [np.full(A, source, np.int32), np.arange(A, A + L, dtype=np.int32), tail]
    ).astype(np.int32)
    heads = np.concatenate(
        [np.arange(A, dtype=np.int32), np.full(L, sink, np.int32), (lead + A).astype(np.int32)]
    ).astype(np.int32)
    sum_h, sum_d = int(h.sum()), int(d.sum())
    times = {}

    def caps(p: int, q: int, pair_cap: int) -> np.ndarray:
        # Not timed: input arrays for OR-Tools.
        assert p * sum_h + 1 < 2**62 and q * sum_d < 2**62, "scaled capacities overflow"
        return np.concatenate([h * p, d * q, np.full(P, pair_cap, np.int64)]).astype(np.int64)

    def run_max_flow(p: int, q: int):
        cap = caps(p, q, p * sum_h + 1)
        t0 = time.perf_counter()
        mf = max_flow.SimpleMaxFlow()
        mf.add_arcs_with_capacity(tails, heads, cap)
        t1 = time.perf_counter()
        status = mf.solve(source, sink)
        if status != mf.OPTIMAL:
            raise RuntimeError(f"max flow status {status}")
        flow = mf.optimal_flow()
        t2 = time.perf_counter()
        return mf, flow, t1 - t0, t2 - t1

    # Stage 1: F*.
    mf, f_star, b, s = run_max_flow(1, 1)
    del mf
    times["stage1"] = {"build_s": b, "solve_s": s}

    # Stage 2: Newton on min cuts.
    build2 = solve2 = 0.0
    iterations = 0
    u = Fraction(f_star, sum_h) if f_star and sum_h else Fraction(0)
    if f_star and sum_h:
        while True:
            iterations += 1
            p, q = u.numerator, u.denominator
            mf, flow, b, s = run_max_flow(p, q)
            build2 += b
            solve2 += s
            if flow >= f_star * q:
                del mf
                break
            t0 = time.perf_counter()
            side = np.zeros(A + L + 2, dtype=bool)
            side[np.asarray(mf.get_source_side_min_cut(), dtype=np.int64)] = True
            h_cut = int(h[~side[:A]].sum())  # agents outside S: cut at u*h_i
            d_cut = int(d[side[A : A + L]].sum())  # leads inside S: cut at D_j
            solve2 += time.perf_counter() - t0
            del mf
            nxt = Fraction(f_star - d_cut, max(h_cut, 1))
            if not nxt > u:
                raise RuntimeError(f"Newton did not increase u: {u} -> {nxt}")
            u = nxt
    times["stage2"] = {"build_s": build2, "solve_s": solve2}

    # Stage 3: min-cost flow of value q*F* under caps p*h_i, q*D_j.
    p, q = u.numerator, u.denominator
    supply = f_star * q
    cap = caps(p, q, max(supply, 1))
    cost = np.concatenate(
        [np.zeros(A + L, np.int64), np.where(current, 0, 1).astype(np.int64)]
    ).astype(np.int64)
    t0 = time.perf_counter()
    mcf = min_cost_flow.SimpleMinCostFlow()
    mcf.add_arcs_with_capacity_and_unit_cost(tails, heads, cap, cost)
    mcf.set_nodes_supplies(
        np.array([source, sink], dtype=np.int32), np.array([supply, -supply], dtype=np.int64)
    )
    t1 = time.perf_counter()
    status = mcf.solve()
    if status != mcf.OPTIMAL:
        raise RuntimeError(f"min cost flow status {status}")
    cost_scaled = mcf.optimal_cost()
    t2 = time.perf_counter()
    new_pairs_with_flow = int(np.count_nonzero(mcf.flows(np.arange(A + L, A + L + P)) * (~current)))
    del mcf
    times["stage3"] = {"build_s": t1 - t0, "solve_s": t2 - t1}

    build = sum(t["build_s"] for t in times.values())
    solve = sum(t["solve_s"] for t in times.values())
    return {
        "sum_h": sum_h,
        "demand": sum_d,
        "max_flow": f_star,
        "shortfall": sum_d - f_star,
        "peak_utilisation": p / q if q else 0.0,
        "peak_num": p,
        "peak_den": q,
        "balance_iterations": iterations,
        "stage3_cost_scaled": cost_scaled,
        "stage3_cost": cost_scaled / q,
        "stage3_new_pairs_with_flow": new_pairs_with_flow,
        "stages": times,
        "build_s": build,
        "solve_s": solve,
        "total_s": build + solve,
    }


def rss_mib() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / (1024 * 1024) if sys.platform == "darwin" else r / 1024


def worker(family: str, agents: int, leads: int, seed: int, repeat: int) -> dict:
    t0 = time.perf_counter()
    generate = generate_dense if family == "dense" else generate_uniform
    h, d, tail, lead, current = generate(agents, leads, seed)
    gen_s = time.perf_counter() - t0
    import ortools  # noqa: F401  (loaded before the RSS baseline)
    from ortools.graph.python import max_flow, min_cost_flow  # noqa: F401

    rss_before = rss_mib()
    best = None
    for _ in range(repeat):
        r = solve_stages(h, d, tail, lead, current)
        if best is None:
            best = r
        else:
            assert (r["max_flow"], r["peak_num"], r["peak_den"], r["stage3_cost_scaled"]) == (
                best["max_flow"], best["peak_num"], best["peak_den"], best["stage3_cost_scaled"]
            )
            if r["total_s"] < best["total_s"]:
                best = r
    row = {
        "family": family,
        "agents": agents,
        "leads": leads,
        "pairs": len(tail),
        "seed": seed,
        "repeat": repeat,
        "ortools_version": ortools.__version__,
        **best,
        "generate_s": gen_s,
        "rss_after_generate_mib": rss_before,
        "peak_rss_mib": rss_mib(),
    }
    spec = SPEC.get((agents, leads)) if seed == 42 and family == "uniform" else None
    if spec is not None:
        row["matches_spec"] = (
            spec[0] == row["pairs"]
            and spec[1] == row["sum_h"]
            and spec[2] == row["max_flow"]
            and f"{row['peak_utilisation']:.12f}" == spec[3]
        )
    return row


# --------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------


def parse_sizes(text: str):
    sizes = []
    for part in text.split(","):
        a, _, l = part.strip().lower().partition("x")
        sizes.append((int(a), int(l)))
    return sizes


def rust_check(rust_bin: str, family: str, sizes, seed: int) -> dict:
    """F* and u* from `rebalancer bench --wide`, keyed by (A, L)."""
    arg = ",".join(f"{a}x{l}" for a, l in sizes)
    out = subprocess.run(
        [rust_bin, "bench", "--family", family, "--sizes", arg, "--seed", str(seed),
         "--repeat", "1", "--format", "json", "--wide", "-q"],
        check=True, capture_output=True, text=True,
    ).stdout
    return {(r["agents"], r["leads"]): r for r in json.loads(out)}


def print_table(rows):
    head = (f"{'size':>14} {'pairs':>9} {'F*':>10} {'u*':>16} {'iters':>5} {'stage3 cost':>12}"
            f" {'s1 build/solve':>15} {'s2 build/solve':>15} {'s3 build/solve':>15}"
            f" {'total s':>8} {'RSS MiB':>8} {'spec':>5} {'rust':>5}")
    print(head)
    for r in rows:
        st = r["stages"]
        f = lambda s: f"{st[s]['build_s']:.3f}/{st[s]['solve_s']:.3f}"  # noqa: E731
        print(f"{r['agents']:>7}x{r['leads']:<6} {r['pairs']:>9} {r['max_flow']:>10}"
              f" {r['peak_utilisation']:>16.12f} {r['balance_iterations']:>5}"
              f" {r['stage3_cost']:>12.4f} {f('stage1'):>15} {f('stage2'):>15} {f('stage3'):>15}"
              f" {r['total_s']:>8.3f} {r['peak_rss_mib']:>8.1f}"
              f" {str(r.get('matches_spec', '-')):>5} {str(r.get('matches_rust', '-')):>5}")
        print(f"{'':>14} u* = {r['peak_num']}/{r['peak_den']}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--family", choices=FAMILIES, default="uniform")
    ap.add_argument("--sizes", default="20000x2000", help="AGENTSxLEADS, comma-separated")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--repeat", type=int, default=1, help="solves per size (best total kept)")
    ap.add_argument("--format", choices=["table", "json"], default="table")
    ap.add_argument("--rust-bin", help="rebalancer binary: also compare F* and u* with it")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.worker:
        a, l = parse_sizes(args.worker)[0]
        print(json.dumps(worker(args.family, a, l, args.seed, max(1, args.repeat))))
        return 0

    sizes = parse_sizes(args.sizes)
    rows = []
    for a, l in sizes:
        print(f"ortools_stages: {a}x{l} ...", file=sys.stderr, flush=True)
        out = subprocess.run(
            [sys.executable, os.path.abspath(__file__), "--worker", f"{a}x{l}",
             "--family", args.family, "--seed", str(args.seed), "--repeat", str(args.repeat)],
            check=True, capture_output=True, text=True,
        ).stdout
        rows.append(json.loads(out))
    if args.rust_bin:
        rust = rust_check(args.rust_bin, args.family, sizes, args.seed)
        for r in rows:
            x = rust[(r["agents"], r["leads"])]
            r["rust_max_flow"] = x["max_flow"]
            r["rust_peak_utilisation"] = x["peak_utilisation"]
            r["rust_pairs"] = x["pairs"]
            r["matches_rust"] = (x["pairs"] == r["pairs"]
                                 and x["max_flow"] == r["max_flow"]
                                 and x["peak_utilisation"] == r["peak_utilisation"])
    if args.format == "json":
        print(json.dumps(rows, indent=2))
    else:
        print_table(rows)
    ok = all(r.get("matches_spec", True) and r.get("matches_rust", True) for r in rows)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
