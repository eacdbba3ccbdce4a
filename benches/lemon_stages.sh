#!/usr/bin/env bash
# LEMON comparison: build benches/lemon_stages.cpp against Debian's
# liblemon-dev, export the bench's instances with `rebalancer bench-instance
# --optimum` (rebalancer's exact optimum inside the file), and run the three
# stages with LEMON (CostScaling, then NetworkSimplex, for stage 3), each
# checked exactly against rebalancer's F*, u* and stage-3 cost; then, unless
# --no-plan, `rebalancer bench` on the same sizes for the whole plan.
#
# A benchmark tool, not part of the product and not run in CI.
#
# Usage:
#   benches/lemon_stages.sh [--family uniform] [--sizes 20000x2000,...]
#       [--seed 42] [--repeat 3] [--format table|json] [--no-plan]
# Environment:
#   REBALANCER   rebalancer binary (default: $CARGO_TARGET_DIR or target,
#                release/rebalancer; built with cargo if missing)
#   OUT          where the program and the instance files go
#                (default: <target dir>/lemon)
#   CXX          C++ compiler (default g++)
set -euo pipefail

family=uniform sizes=20000x2000 seed=42 repeat=3 format=table plan=1
while [ $# -gt 0 ]; do
    case "$1" in
        --family) family=$2; shift 2 ;;
        --sizes) sizes=$2; shift 2 ;;
        --seed) seed=$2; shift 2 ;;
        --repeat) repeat=$2; shift 2 ;;
        --format) format=$2; shift 2 ;;
        --no-plan) plan=0; shift ;;
        -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "lemon_stages.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
out=${OUT:-$target/lemon}
bin=${REBALANCER:-$target/release/rebalancer}
cxx=${CXX:-g++}
mkdir -p "$out"

if [ ! -f /usr/include/lemon/preflow.h ] && ! pkg-config --exists lemon 2>/dev/null; then
    echo "lemon_stages.sh: LEMON is not installed (no lemon/preflow.h, no lemon.pc)." >&2
    echo "  On Debian/Ubuntu: sudo apt-get install liblemon-dev" >&2
    exit 3
fi
libs=$(pkg-config --cflags --libs lemon 2>/dev/null || echo -llemon)

prog=$out/lemon_stages
if [ ! -x "$prog" ] || [ "$root/benches/lemon_stages.cpp" -nt "$prog" ]; then
    echo "lemon_stages.sh: $cxx -O2 benches/lemon_stages.cpp -> $prog" >&2
    # shellcheck disable=SC2086
    "$cxx" -O2 -std=c++17 -o "$prog" "$root/benches/lemon_stages.cpp" $libs
fi

if [ ! -x "$bin" ]; then
    echo "lemon_stages.sh: building $bin (cargo build --release)" >&2
    (cd "$root" && cargo build --release --bin rebalancer)
fi

status=0
for size in ${sizes//,/ }; do
    file=$out/$family-$size-$seed.txt
    echo "lemon_stages.sh: $family $size: exporting and solving with rebalancer -> $file" >&2
    "$bin" -q bench-instance --family "$family" --size "$size" --seed "$seed" \
        --out "$file" --optimum
    for mcf in cs ns; do
        echo "lemon_stages.sh: $family $size: LEMON, stage 3 by $mcf, best of $repeat" >&2
        "$prog" --instance "$file" --mcf "$mcf" --repeat "$repeat" --format "$format" || status=1
    done
done

if [ "$plan" = 1 ]; then
    echo "lemon_stages.sh: rebalancer bench (whole plan), best of $repeat" >&2
    fmt=$format; [ "$fmt" = table ] || fmt=json
    "$bin" -q bench --family "$family" --sizes "$sizes" --seed "$seed" \
        --repeat "$repeat" --format "$fmt" --timeout 600 || status=1
fi
exit $status
