"""Out-of-core calibration at growing size: records on disk x nested small-area targets, peak memory.

Usage (from the repository root)::

    PYTHONPATH=src python benchmarks/bench_scale_calibration.py --records 1000000 --tracts 1250 --out /tmp/scal
    PYTHONPATH=src python benchmarks/bench_scale_calibration.py --child DATASET TRACTS  # one solve, prints JSON

A synthetic national-like population (states > counties > tracts, 4 tracts per county, 60 counties per
state) is written to Parquet in files of 1,000,000 records, then calibrated by
``microplex.scale.rake_dataset(..., max_cells=0)`` (every evaluation is one pass over the files; no cell
table) to tract x age group (4) x sex, county x income band (4) and state x household size (4) counts,
raking, tol 1e-8. Each solve runs in its own process; peak RSS is that process's ``ru_maxrss``.
Targets are the totals under a random perturbation of the weights, so they are consistent and feasible.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
FILE_ROWS = 1_000_000


def margins_of(df: pd.DataFrame, w: np.ndarray) -> dict:
    g = df.assign(t=w)
    return {
        ("tract", "age", "sex"): g.groupby(["tract", "age", "sex"])["t"].sum(),
        ("county", "income"): g.groupby(["county", "income"])["t"].sum(),
        ("state", "hhsize"): g.groupby(["state", "hhsize"])["t"].sum(),
    }


def write(path: Path, n: int, tracts: int, seed: int = 0) -> dict:
    """Writes the population in files of FILE_ROWS records; returns the target margins (summed per file)."""
    path.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    acc: dict = {}
    for k, lo in enumerate(range(0, n, FILE_ROWS)):
        m = min(FILE_ROWS, n - lo)
        tract = rng.integers(0, tracts, m).astype(np.int32)
        county = tract // 4
        df = pd.DataFrame(
            {
                "tract": tract,
                "county": county,
                "state": (county // 60).astype(np.int16),
                "age": rng.integers(0, 4, m).astype(np.int8),
                "sex": rng.integers(0, 2, m).astype(np.int8),
                "income": rng.integers(0, 4, m).astype(np.int8),
                "hhsize": rng.integers(0, 4, m).astype(np.int8),
                "weight": rng.uniform(50.0, 150.0, m),
            }
        )
        truth = df["weight"].to_numpy() * rng.uniform(0.8, 1.25, m)
        for key, s in margins_of(df, truth).items():
            acc[key] = s if key not in acc else acc[key].add(s, fill_value=0.0)
        df.to_parquet(path / f"part-{k:05d}.parquet", index=False)
    return acc


def child(dataset: str, margins_file: str) -> dict:
    sys.path.insert(0, str(ROOT / "src"))
    from microplex.scale import rake_dataset

    frame = pd.read_parquet(margins_file)
    margins: dict = {}
    for key, grp in frame.groupby("margin", sort=False):
        cols = tuple(key.split("|"))
        margins[cols] = {tuple(int(v) for v in r[: len(cols)]): float(r[-1]) for r in grp[[*cols, "value"]].itertuples(index=False)}
    c0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    res = rake_dataset(dataset, margins, "weight", tol=1e-8, max_cells=0)
    c1 = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "targets": int(len(res.lam)),
        "converged": bool(res.converged),
        "n_iter": res.n_iter,
        "n_passes": res.n_passes,
        "max_misfit": res.max_misfit,
        "max_rel_error": float(res.report["rel_error"].max()),
        "n_records": res.summary["n_units"],
        "wall_s": time.perf_counter() - t0,
        "cpu_s": (c1.ru_utime + c1.ru_stime) - (c0.ru_utime + c0.ru_stime),
        "peak_rss_mb": c1.ru_maxrss / 1024.0,
        "load_before": os.getloadavg()[0],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, nargs="+", default=[1_000_000])
    ap.add_argument("--tracts", type=int, nargs="+", default=[1250])
    ap.add_argument("--out", default="/tmp/bench-scale-calibration")
    ap.add_argument("--child", nargs=2, metavar=("DATASET", "MARGINS"))
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return
    out = Path(args.out)
    for tracts in args.tracts:
        for n in args.records:
            ds = out / f"pop-{n}-{tracts}"
            margins = write(ds, n, tracts)
            rows = []
            for key, s in margins.items():
                fr = s.reset_index()
                fr.columns = [*key, "value"]
                rows.append(fr.assign(margin="|".join(key)))
            mfile = out / f"margins-{n}-{tracts}.parquet"
            pd.concat(rows, ignore_index=True).to_parquet(mfile)
            cmd = [sys.executable, __file__, "--child", str(ds), str(mfile)]
            env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
            r = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stdout.strip().splitlines()[-1])
            print(json.dumps({"records": n, "tracts": tracts, **r}), flush=True)


if __name__ == "__main__":
    main()
