#!/usr/bin/env python3
"""Summarizes `sim ... --seeds A..B --json` (read from stdin): per-seed
dissemination figures and the worst/mean over the seeds.

    target/release/sim scenarios/wan.toml --seeds 0..10 --json | tools/dissem-figures.py
"""
import json, sys

runs = json.load(sys.stdin)
if isinstance(runs, dict):
    runs = [runs]
rows = []
for r in runs:
    f = r["figures"]
    rows.append(dict(
        seed=r["seed"], passed=r["passed"],
        per_chat=f.get("msgs_per_chat", 0.0),
        copies=f.get("copies_per_delivery", 0.0),
        p50=f["delivery_ms"]["p50"], p99=f["delivery_ms"]["p99"], max=f["delivery_ms"]["max"],
        hop50=(f.get("last_hop") or {}).get("p50", 0), hopmax=(f.get("last_hop") or {}).get("max", 0),
        repair=f.get("repair_bytes_per_node_s", 0.0),
    ))
for x in rows:
    print("seed {seed:3} {ok} msgs/chat {per_chat:7.1f} copies {copies:.2f} delivery p50 {p50} p99 {p99} max {max} ms  last hop p50 {hop50} max {hopmax}  repair {repair:.0f} B/s".format(ok="pass" if x["passed"] else "FAIL", **x))
n = len(rows)
print("over {} seeds: failed {}, msgs/chat mean {:.1f} max {:.1f}, copies max {:.2f}, delivery p50 max {} ms, p99 max {} ms, max {} ms, last hop max {}, repair max {:.0f} B/s".format(
    n, sum(not x["passed"] for x in rows),
    sum(x["per_chat"] for x in rows) / n, max(x["per_chat"] for x in rows),
    max(x["copies"] for x in rows), max(x["p50"] for x in rows), max(x["p99"] for x in rows),
    max(x["max"] for x in rows), max(x["hopmax"] for x in rows), max(x["repair"] for x in rows)))
