// LEMON comparison bench for the three lexicographic flow stages.
//
// Solves the same three stages as crates/optimizer/src/stages.rs (and
// benches/ortools_stages.py, the model of this program) with LEMON 1.3's
// C++ graph algorithms (Debian's liblemon-dev), on an instance written by
// `rebalancer bench-instance` (format: src/cmd/bench_instance.rs):
//
// 1. Shortfall: max flow F* on source -> agents (cap h_i) -> leads (pair
//    arcs, uncapacitated) -> sink (cap D_j), with Preflow (first phase:
//    the flow value and a minimum cut; no flow decomposition is needed).
// 2. Balance: least peak utilisation u* by Newton's method on min cuts, u an
//    exact fraction p/q and the network scaled by q (agent caps p*h_i, lead
//    caps q*D_j), one Preflow per iteration. From u = F*/sum(h): if the flow
//    falls short of q*F*, the source side S of the cut gives
//    u = (F* - D(S)) / H(not S).
// 3. Change stage: min-cost flow of value q*F* on the stage-2 network, cost 0
//    on current pairs and 1 per unit on new pairs, with CostScaling
//    (--mcf cs, LEMON's default PARTIAL_AUGMENT) or NetworkSimplex
//    (--mcf ns, BLOCK_SEARCH). The optimum in records is cost / q.
//
// "Uncapacitated" pair arcs get capacity p*sum(h)+1 in stages 1-2 (no min
// cut crosses them) and q*F* in stage 3 (no path carries more), as in
// ortools_stages.py; all capacities are integers, so the optima are exact.
//
// Timing (wall clock, steady_clock): `build` is building the graph and the
// capacity/cost maps and constructing the solver objects (CostScaling and
// NetworkSimplex copy the graph into their own arrays there); `solve` is
// the run() call and reading the cut / cost. Reading the instance file is
// not timed. --repeat N solves all three stages N times from scratch and
// keeps the best total. Peak RSS is getrusage's ru_maxrss of the whole
// process (instance included). If the file has an `o` line (rebalancer's
// optimum, `bench-instance --optimum`), F*, u* = p/q and the stage-3 cost
// are checked against it exactly; a mismatch exits 1.
//
// Usage:
//   lemon_stages --instance FILE [--mcf cs|ns] [--repeat N] [--format table|json]

#include <lemon/cost_scaling.h>
#include <lemon/network_simplex.h>
#include <lemon/preflow.h>
#include <lemon/smart_graph.h>

#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

using lemon::SmartDigraph;
typedef long long i64;
typedef SmartDigraph::ArcMap<i64> I64ArcMap;

struct Instance {
  std::string comment;
  std::vector<i64> h, d;
  std::vector<int> tail, lead;
  std::vector<char> current;
  bool has_optimum = false;
  i64 opt_max_flow = 0, opt_num = 0, opt_den = 1, opt_cost_scaled = 0;
};

static void fail(const std::string& msg) {
  std::fprintf(stderr, "lemon_stages: %s\n", msg.c_str());
  std::exit(2);
}

// Reads the whole file and parses it line by line (not timed).
static Instance read_instance(const char* path) {
  FILE* f = std::fopen(path, "rb");
  if (!f) fail(std::string("cannot open ") + path);
  std::string text;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
  std::fclose(f);

  Instance in;
  const char* p = text.c_str();
  const char* end = p + text.size();
  auto num = [&](const char*& q) -> i64 {
    while (*q == ' ') ++q;
    if (*q < '0' || *q > '9') fail("malformed number in the instance");
    i64 v = 0;
    while (*q >= '0' && *q <= '9') v = v * 10 + (*q++ - '0');
    return v;
  };
  size_t agents = 0, leads = 0, pairs = 0;
  bool header = false;
  while (p < end) {
    const char* eol = static_cast<const char*>(std::memchr(p, '\n', end - p));
    if (!eol) eol = end;
    const char* q = p + 1;
    switch (*p) {
      case 'c':
        if (in.comment.empty()) in.comment.assign(p + (eol - p > 2 ? 2 : 1), eol);
        break;
      case 'p':
        agents = num(q), leads = num(q), pairs = num(q);
        in.h.reserve(agents), in.d.reserve(leads);
        in.tail.reserve(pairs), in.lead.reserve(pairs), in.current.reserve(pairs);
        header = true;
        break;
      case 'a': in.h.push_back(num(q)); break;
      case 'l': in.d.push_back(num(q)); break;
      case 'e': {
        i64 i = num(q), j = num(q), c = num(q);
        if (i < 0 || static_cast<size_t>(i) >= agents || j < 0 || static_cast<size_t>(j) >= leads)
          fail("pair out of range");
        in.tail.push_back(static_cast<int>(i));
        in.lead.push_back(static_cast<int>(j));
        in.current.push_back(c != 0);
        break;
      }
      case 'o':
        in.has_optimum = true;
        in.opt_max_flow = num(q), in.opt_num = num(q), in.opt_den = num(q);
        in.opt_cost_scaled = num(q);
        break;
      case '\n': break;
      default: fail("unknown line kind in the instance");
    }
    p = eol + 1;
  }
  if (!header || in.h.size() != agents || in.d.size() != leads || in.tail.size() != pairs)
    fail("the instance's counts do not match its `p` line");
  return in;
}

typedef std::chrono::steady_clock Clock;
static double secs(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

struct StageTime {
  double build = 0, solve = 0;
};

struct Result {
  i64 sum_h = 0, demand = 0, max_flow = 0, num = 0, den = 1, cost_scaled = 0;
  long new_pairs_with_flow = 0;
  unsigned iterations = 0;
  StageTime st[3];
  double total() const {
    double t = 0;
    for (const StageTime& s : st) t += s.build + s.solve;
    return t;
  }
};

static i64 checked_mul(i64 a, i64 b) {
  __int128 r = static_cast<__int128>(a) * b;
  if (r > (static_cast<__int128>(1) << 62)) fail("scaled capacities overflow");
  return static_cast<i64>(r);
}

template <typename MCF>
static void stage3(const Instance& in, SmartDigraph& g, const std::vector<SmartDigraph::Arc>& pair_arcs,
                   SmartDigraph::Node s, SmartDigraph::Node t, I64ArcMap& cap, Result& r) {
  const size_t A = in.h.size(), L = in.d.size(), P = in.tail.size();
  const i64 supply = checked_mul(r.max_flow, r.den);
  auto t0 = Clock::now();
  I64ArcMap cost(g, 0);
  for (size_t i = 0; i < A; ++i) cap[g.arcFromId(i)] = checked_mul(in.h[i], r.num);
  for (size_t j = 0; j < L; ++j) cap[g.arcFromId(A + j)] = checked_mul(in.d[j], r.den);
  for (size_t k = 0; k < P; ++k) {
    cap[pair_arcs[k]] = supply > 0 ? supply : 1;
    cost[pair_arcs[k]] = in.current[k] ? 0 : 1;
  }
  MCF mcf(g);
  mcf.upperMap(cap).costMap(cost).stSupply(s, t, supply);
  auto t1 = Clock::now();
  if (mcf.run() != MCF::OPTIMAL) fail("min-cost flow not optimal");
  r.cost_scaled = mcf.template totalCost<i64>();
  auto t2 = Clock::now();
  r.new_pairs_with_flow = 0;
  for (size_t k = 0; k < P; ++k)
    if (!in.current[k] && mcf.flow(pair_arcs[k]) > 0) ++r.new_pairs_with_flow;
  r.st[2].build = secs(t0, t1);
  r.st[2].solve = secs(t1, t2);
}

static Result solve_stages(const Instance& in, bool network_simplex) {
  const size_t A = in.h.size(), L = in.d.size(), P = in.tail.size();
  Result r;
  for (i64 x : in.h) r.sum_h += x;
  for (i64 x : in.d) r.demand += x;

  // Graph: agents 0..A, leads A..A+L, source, sink; arcs in stages.rs's
  // order: source->agents (ids 0..A), leads->sink (A..A+L), pairs.
  auto t0 = Clock::now();
  SmartDigraph g;
  g.reserveNode(static_cast<int>(A + L + 2));
  g.reserveArc(static_cast<int>(A + L + P));
  std::vector<SmartDigraph::Node> nodes(A + L);
  for (size_t v = 0; v < A + L; ++v) nodes[v] = g.addNode();
  SmartDigraph::Node s = g.addNode(), t = g.addNode();
  for (size_t i = 0; i < A; ++i) g.addArc(s, nodes[i]);
  for (size_t j = 0; j < L; ++j) g.addArc(nodes[A + j], t);
  std::vector<SmartDigraph::Arc> pair_arcs(P);
  for (size_t k = 0; k < P; ++k) pair_arcs[k] = g.addArc(nodes[in.tail[k]], nodes[A + in.lead[k]]);
  I64ArcMap cap(g);
  double graph_s = secs(t0, Clock::now());

  // One max flow under u = p/q; returns the flow value, leaves the cut in pf.
  auto max_flow = [&](i64 p, i64 q, StageTime& st, bool want_cut, i64& h_cut, i64& d_cut) {
    auto b0 = Clock::now();
    const i64 pair_cap = checked_mul(p, r.sum_h) + 1;
    for (size_t i = 0; i < A; ++i) cap[g.arcFromId(i)] = checked_mul(in.h[i], p);
    for (size_t j = 0; j < L; ++j) cap[g.arcFromId(A + j)] = checked_mul(in.d[j], q);
    for (size_t k = 0; k < P; ++k) cap[pair_arcs[k]] = pair_cap;
    lemon::Preflow<SmartDigraph, I64ArcMap> pf(g, cap, s, t);
    auto b1 = Clock::now();
    pf.runMinCut();
    i64 value = pf.flowValue();
    if (want_cut) {
      h_cut = d_cut = 0;
      for (size_t i = 0; i < A; ++i)
        if (!pf.minCut(nodes[i])) h_cut += in.h[i];
      for (size_t j = 0; j < L; ++j)
        if (pf.minCut(nodes[A + j])) d_cut += in.d[j];
    }
    auto b2 = Clock::now();
    st.build += secs(b0, b1);
    st.solve += secs(b1, b2);
    return value;
  };

  i64 h_cut = 0, d_cut = 0;
  r.max_flow = max_flow(1, 1, r.st[0], false, h_cut, d_cut);
  r.st[0].build += graph_s;

  // Stage 2: Newton on min cuts, u = p/q reduced.
  i64 p = 0, q = 1;
  if (r.max_flow > 0 && r.sum_h > 0) {
    i64 g0 = std::gcd(r.max_flow, r.sum_h);
    p = r.max_flow / g0, q = r.sum_h / g0;
    for (;;) {
      ++r.iterations;
      i64 flow = max_flow(p, q, r.st[1], true, h_cut, d_cut);
      if (flow >= checked_mul(r.max_flow, q)) break;
      i64 np = r.max_flow - d_cut, nq = h_cut > 0 ? h_cut : 1;
      i64 g1 = std::gcd(np, nq);
      np /= g1, nq /= g1;
      if (static_cast<__int128>(np) * q <= static_cast<__int128>(p) * nq)
        fail("Newton did not increase u");
      p = np, q = nq;
    }
  }
  r.num = p, r.den = q;

  if (network_simplex)
    stage3<lemon::NetworkSimplex<SmartDigraph, i64, i64>>(in, g, pair_arcs, s, t, cap, r);
  else
    stage3<lemon::CostScaling<SmartDigraph, i64, i64>>(in, g, pair_arcs, s, t, cap, r);
  return r;
}

static double rss_mib() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024.0;  // KiB on Linux
}

int main(int argc, char** argv) {
  const char* path = nullptr;
  std::string mcf = "cs", format = "table";
  int repeat = 1;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto val = [&]() -> const char* {
      if (i + 1 >= argc) fail("missing value after " + a);
      return argv[++i];
    };
    if (a == "--instance") path = val();
    else if (a == "--mcf") mcf = val();
    else if (a == "--repeat") repeat = std::atoi(val());
    else if (a == "--format") format = val();
    else if (a == "-h" || a == "--help") {
      std::puts("usage: lemon_stages --instance FILE [--mcf cs|ns] [--repeat N] [--format table|json]");
      return 0;
    } else fail("unknown argument " + a);
  }
  if (!path) fail("--instance FILE is required");
  if (mcf != "cs" && mcf != "ns") fail("--mcf is cs (CostScaling) or ns (NetworkSimplex)");
  if (format != "table" && format != "json") fail("--format is table or json");
  if (repeat < 1) fail("--repeat must be at least 1");

  Instance in = read_instance(path);
  double rss_instance = rss_mib();
  Result best;
  for (int k = 0; k < repeat; ++k) {
    Result r = solve_stages(in, mcf == "ns");
    if (k > 0 && (r.max_flow != best.max_flow || r.num != best.num || r.den != best.den ||
                  r.cost_scaled != best.cost_scaled))
      fail("repeated solves disagree");
    if (k == 0 || r.total() < best.total()) best = r;
  }
  double peak = rss_mib();
  const char* matches = "null";
  bool ok = true;
  if (in.has_optimum) {
    ok = best.max_flow == in.opt_max_flow && best.num == in.opt_num && best.den == in.opt_den &&
         best.cost_scaled == in.opt_cost_scaled;
    matches = ok ? "true" : "false";
  }
  const char* solver = mcf == "ns" ? "NetworkSimplex" : "CostScaling";
  const size_t P = in.tail.size();
  if (format == "json") {
    std::printf(
        "{\"instance\": \"%s\", \"agents\": %zu, \"leads\": %zu, \"pairs\": %zu, "
        "\"lemon_version\": \"%s\", \"stage3_solver\": \"%s\", \"repeat\": %d, "
        "\"sum_h\": %lld, \"demand\": %lld, \"max_flow\": %lld, \"shortfall\": %lld, "
        "\"peak_utilisation\": %.17g, \"peak_num\": %lld, \"peak_den\": %lld, "
        "\"balance_iterations\": %u, \"stage3_cost_scaled\": %lld, \"stage3_cost\": %.17g, "
        "\"stage3_new_pairs_with_flow\": %ld, \"stages\": {",
        in.comment.c_str(), in.h.size(), in.d.size(), P, LEMON_VERSION, solver, repeat, best.sum_h,
        best.demand, best.max_flow, best.demand - best.max_flow,
        static_cast<double>(best.num) / best.den, best.num, best.den, best.iterations,
        best.cost_scaled, static_cast<double>(best.cost_scaled) / best.den,
        best.new_pairs_with_flow);
    for (int k = 0; k < 3; ++k)
      std::printf("%s\"stage%d\": {\"build_s\": %.6f, \"solve_s\": %.6f}", k ? ", " : "", k + 1,
                  best.st[k].build, best.st[k].solve);
    double build = best.st[0].build + best.st[1].build + best.st[2].build;
    std::printf(
        "}, \"build_s\": %.6f, \"solve_s\": %.6f, \"total_s\": %.6f, "
        "\"rss_after_read_mib\": %.1f, \"peak_rss_mib\": %.1f, \"matches_rust\": %s}\n",
        build, best.total() - build, best.total(), rss_instance, peak, matches);
  } else {
    std::printf("%-15s %9s %10s %16s %5s %12s %15s %15s %15s %8s %8s %5s\n", "stage 3", "pairs",
                "F*", "u*", "iters", "stage3 cost", "s1 build/solve", "s2 build/solve",
                "s3 build/solve", "total s", "RSS MiB", "rust");
    char cell[3][40];
    for (int k = 0; k < 3; ++k)
      std::snprintf(cell[k], sizeof cell[k], "%.3f/%.3f", best.st[k].build, best.st[k].solve);
    std::printf("%-15s %9zu %10lld %16.12f %5u %12.4f %15s %15s %15s %8.3f %8.1f %5s\n", solver, P,
                best.max_flow, static_cast<double>(best.num) / best.den, best.iterations,
                static_cast<double>(best.cost_scaled) / best.den, cell[0], cell[1], cell[2],
                best.total(), peak, in.has_optimum ? matches : "-");
    std::printf("%15s u* = %lld/%lld  (%s)\n", "", best.num, best.den, in.comment.c_str());
  }
  if (!ok)
    std::fprintf(stderr,
                 "lemon_stages: differs from rebalancer's optimum: F* %lld vs %lld, u* %lld/%lld vs "
                 "%lld/%lld, stage-3 cost %lld vs %lld\n",
                 best.max_flow, in.opt_max_flow, best.num, best.den, in.opt_num, in.opt_den,
                 best.cost_scaled, in.opt_cost_scaled);
  return ok ? 0 : 1;
}
