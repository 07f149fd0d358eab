#!/usr/bin/env bash
# Removals as dead between members on the same side of a short cut: 40
# nodes on 2-15 ms links, five of them (3, 9, 17, 22, 31) cut off together
# at 15 s for CUT seconds, seeds 0..SEEDS-1. Prints the total; a member
# that never lost another should not remove it.
#   tools/same-side-removals.sh CUT [SEEDS]     e.g. tools/same-side-removals.sh 4.5 8
# SIM names the simulator binary (default: target/release/sim, built first).
set -euo pipefail
cut=${1:?usage: $0 CUT_SECONDS [SEEDS]}
seeds=${2:-8}
sim=${SIM:-target/release/sim}
if [ -z "${SIM:-}" ]; then cargo build --release -q -p gossip-sim; fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cat > "$dir/cut.toml" <<TOML
description = "five of 40 cut off together for ${cut} s"
duration = "60s"
[nodes]
count = 40
[network]
latency = { dist = "uniform", min = "2ms", max = "15ms" }
[workload]
rate = 2.0
start = "2s"
[[fault]]
at = "15s"
kind = "partition"
groups = [[3, 9, 17, 22, 31]]
for = "${cut}s"
[checks]
judge = ["discovery", "no_false_removal", "delivery"]
TOML
total=0
for ((s = 0; s < seeds; s++)); do
  "$sim" "$dir/cut.toml" --seed "$s" --trace "$dir/t" > /dev/null || true
  n=$(awk '$3=="down" && $5=="Dead" {
      split($4, a, "/"); g = " 3 9 17 22 31 ";
      r = index(g, " " substr($2, 2) " ") > 0; d = index(g, " " substr(a[1], 2) " ") > 0;
      if (r == d) c++ } END { print c + 0 }' "$dir/t")
  total=$((total + n))
done
echo "$total"
