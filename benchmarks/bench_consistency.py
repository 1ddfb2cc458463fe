"""The nested-geography consistency check at national size: CPU seconds and peak memory.

Usage (from the repository root)::

    PYTHONPATH=src python benchmarks/bench_consistency.py --tracts 85000 --counties 3000 --states 50

Areas: tract ``k`` in county ``k * counties // tracts``, county ``c`` in state ``c * states // counties``.
Targets: tract x age group (4), county x age group and state x age group counts (the same signature at
three levels, so every state is compared with its counties and every county with its tracts), the county
and state totals the sums of their tracts' except one planted contradiction (county 0, age group 0, +1),
which must be flagged with its state and nothing else. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from microplex.calibration import Targets, check_consistency  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tracts", type=int, default=85_000)
    ap.add_argument("--counties", type=int, default=3_000)
    ap.add_argument("--states", type=int, default=50)
    args = ap.parse_args()
    tr = np.arange(args.tracts)
    co = tr * args.counties // args.tracts
    st = co * args.states // args.counties
    areas = pd.DataFrame({"state": st, "county": co, "tract": tr})
    val = np.random.default_rng(0).integers(1, 100, (args.tracts, 4)).astype(float)
    county_val = pd.DataFrame(val).groupby(co).sum().to_numpy().copy()
    state_val = pd.DataFrame(val).groupby(st).sum().to_numpy()
    county_val[0, 0] += 1.0
    t0 = time.process_time()
    targets = Targets.from_margins(
        {
            ("tract", "age"): {(k, a): val[k, a] for k in range(args.tracts) for a in range(4)},
            ("county", "age"): {(c, a): county_val[c, a] for c in range(args.counties) for a in range(4)},
            ("state", "age"): {(s, a): state_val[s, a] for s in range(args.states) for a in range(4)},
        }
    )
    t1 = time.process_time()
    out = check_consistency(targets, areas, ["state", "county", "tract"])
    t2 = time.process_time()
    print(json.dumps({
        "tracts": args.tracts, "counties": args.counties, "states": args.states, "targets": len(targets),
        "build_targets_cpu_s": round(t1 - t0, 1), "check_cpu_s": round(t2 - t1, 1),
        "flagged": out["parent"].tolist(), "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
    }))


if __name__ == "__main__":
    main()
