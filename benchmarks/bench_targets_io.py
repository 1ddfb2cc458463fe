"""Reading a targets file at tract scale: seconds per target of ``Targets.from_csv``.

Usage (from the repository root; run alone, nothing else on the machine)::

    PYTHONPATH=src python benchmarks/bench_targets_io.py            # prints one JSON line per case
    PYTHONPATH=src python benchmarks/bench_targets_io.py --report   # also writes results/targets_io.md

Cases: ``n`` targets of tract x age band counts written as two-clause filter strings, the tract quoted
(``tract == 'T00042' & age in [20, 30)``) or a bare number (``tract == 42 & age in [20, 30)``), and the same
targets as equality columns (``tract``, ``age_band``). Best of three reads of a CSV written once.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from microplex.calibration import Targets  # noqa: E402


def _table(n: int, kind: str) -> pd.DataFrame:
    i = np.arange(n)
    tract, band = i // 10, (i % 10) * 10
    value = i + 1.0
    if kind == "columns":
        return pd.DataFrame({"tract": tract, "age_band": band, "value": value})
    name = [f"'T{t:05d}'" for t in tract] if kind == "quoted" else [str(t) for t in tract]
    flt = [f"tract == {t} & age in [{b}, {b + 10})" for t, b in zip(name, band)]
    return pd.DataFrame({"filter": flt, "value": value})


def run(n: int) -> list[dict]:
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("quoted", "bare", "columns"):
            path = Path(tmp) / f"{kind}.csv"
            _table(n, kind).to_csv(path, index=False)
            best = min(_timed(path) for _ in range(3))
            out.append({"case": kind, "targets": n, "seconds": round(best, 3), "us_per_target": round(1e6 * best / n, 1)})
            print(json.dumps(out[-1]), flush=True)
    return out


def _timed(path: Path) -> float:
    start = time.perf_counter()
    Targets.from_csv(path)
    return time.perf_counter() - start


def main() -> None:
    load = os.getloadavg()[0]
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    rows = run(50_000)
    if "--report" in sys.argv[1:]:
        lines = ["# Reading targets files", "",
                 f"Command: `PYTHONPATH=src python benchmarks/bench_targets_io.py --report` (started {started}, load "
                 f"average {load:.1f} at start)", "", (__doc__ or "").split("Usage")[0].strip(), "",
                 "| case | targets | seconds (best of 3) | microseconds per target |", "|---|---:|---:|---:|"]
        lines += [f"| {r['case']} | {r['targets']:,} | {r['seconds']:.2f} | {r['us_per_target']:.0f} |" for r in rows]
        (ROOT / "benchmarks" / "results" / "targets_io.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
