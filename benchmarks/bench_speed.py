"""Speed of the documented default call: fit time on CPS 1988 wages and generation throughput.

Usage (from the repository root, on a quiet machine; run it alone)::

    PYTHONPATH=src python benchmarks/bench_speed.py            # writes benchmarks/results/speed.md

The bars of the lumpy-values round: ``Synthesizer(...).fit`` on the 22,524 training rows of the
28k-row CPS 1988 wages (seed 0 split of ``bench_synthesizers.py``) within 60 s, and ``generate``
at least 500,000 rows/s on one thread (cps1 earnings model, 1,000,000 resampled conditions).
Each timing runs in a fresh process; the load average is recorded before and after, since a
timing taken beside other jobs is an upper bound, not a measurement.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

OUT = ROOT / "benchmarks" / "results" / "speed.md"


def _fit_time(dataset: str, threads: int) -> dict:
    import torch

    import bench_synthesizers as bs
    from microplex import Synthesizer

    torch.set_num_threads(threads)
    df, targets, conds, wcol = bs.DATASETS[dataset]()
    train, _ = bs.split(df, 0, False)
    t0 = time.perf_counter()
    model = Synthesizer(targets, conds, verbose=False).fit(train[conds + targets], seed=0)
    return {"what": f"fit {dataset}", "rows": len(train), "threads": threads, "seconds": time.perf_counter() - t0,
            "epochs": int(len(model.history_))}


def _generate_rate(dataset: str, threads: int, rows: int) -> dict:
    import torch

    import bench_synthesizers as bs
    from microplex import Synthesizer

    df, targets, conds, wcol = bs.DATASETS[dataset]()
    train, _ = bs.split(df, 0, False)
    model = Synthesizer(targets, conds, verbose=False).fit(train[conds + targets], seed=0)
    torch.set_num_threads(threads)
    cond = train[conds].sample(rows, replace=True, random_state=0).reset_index(drop=True)
    model.generate(cond.iloc[:10_000], seed=0)  # warm-up
    best = float("inf")
    for rep in range(3):
        t0 = time.perf_counter()
        model.generate(cond, seed=rep + 1)
        best = min(best, time.perf_counter() - t0)
    return {"what": f"generate {dataset}", "rows": rows, "threads": threads, "seconds": best, "rows_per_s": rows / best}


def _isolated(fn, *args) -> dict:
    with mp.get_context("spawn").Pool(1, maxtasksperchild=1) as pool:
        return pool.apply(fn, args)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=1_000_000, help="rows generated per timing")
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    os.environ.setdefault("TQDM_DISABLE", "1")
    load0 = os.getloadavg()
    runs = [_isolated(_fit_time, "cps1988", 2), _isolated(_fit_time, "cps1988", 1),
            _isolated(_generate_rate, "cps1", 1, args.rows), _isolated(_generate_rate, "cps1", 2, args.rows)]
    load1 = os.getloadavg()
    lines = ["# Speed of the default call", "",
             f"Command: `PYTHONPATH=src python benchmarks/bench_speed.py --rows {args.rows}` "
             f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}); machine: {platform.platform()}, "
             f"{os.cpu_count()} CPUs, Python {platform.python_version()}; load average (1, 5, 15 min) "
             f"{', '.join(f'{v:.2f}' for v in load0)} at the start, {', '.join(f'{v:.2f}' for v in load1)} at the end.", "",
             (__doc__ or "").split("Usage")[0].strip().replace("\n", " "), "",
             "Bars: fit cps1988 <= 60 s; generate >= 500,000 rows/s on one thread.", "",
             "| timing | training/generated rows | torch threads | seconds | epochs | rows/s |",
             "|---|---|---|---|---|---|"]
    for r in runs:
        lines.append(f"| {r['what']} | {r['rows']:,} | {r['threads']} | {r['seconds']:.1f} | {r.get('epochs', '')} | "
                     + (f"{r['rows_per_s']:,.0f}" if "rows_per_s" in r else "") + " |")
    args.out.write_text("\n".join(lines) + "\n")
    print(json.dumps(runs, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
