"""Draws benchmarks/results/dp_epsilon_s69.png: session 69's DP records (raw/dp_s69.jsonl) beside session 38's
(the old random streams), MST, AIM and no DP from raw/dp.jsonl, on cps1 and eusilc. Run from the repository root."""
import json, sys
from pathlib import Path
sys.path.insert(0, "benchmarks")
import bench_dp as b
old = [json.loads(l) for l in Path("benchmarks/results/raw/dp.jsonl").read_text().splitlines() if l.strip()]
new = [json.loads(l) for l in Path("benchmarks/results/raw/dp_s69.jsonl").read_text().splitlines() if l.strip()]
b.PREVIOUS = "session 38, old streams"
keep = []
for r in old:
    if r["dataset"] not in ("cps1", "eusilc"):
        continue
    if r.get("method") is None and r.get("epsilon") is not None and r.get("epsilon") == r.get("epsilon"):
        if r.get("variant") != "s38":
            continue  # earlier versions: not drawn
        r = dict(r, variant=b.PREVIOUS)
    keep.append(r)
b.plot(keep + new, Path("benchmarks/results/dp_epsilon_s69.png"))
print(len(keep), len(new))
