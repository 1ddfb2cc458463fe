"""Out-of-core raking with many numbers asked of a zero-padded text column.

A county column written as padded text codes (``"00015"``) in 4 Parquet files of 20,000 records each, and a
margin that asks for the counties by number (``{"county": {15: total, ...}}``): every number is matched to the
code the dataset writes for it (as a target's filter value is), in the first pass over the files. Prints the
seconds of ``rake_dataset`` per number of categories.

    PYTHONPATH=src python benchmarks/bench_scale_textcodes.py 2000 8000 20000
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import pandas as pd

from microplex.scale import rake_dataset


def write(root: str, n_cat: int, rows: int = 20_000, files: int = 4, seed: int = 0) -> dict:
    """Writes the files under ``root``; returns margins that ask for every county found, by number."""
    rng = np.random.default_rng(seed)
    os.makedirs(root, exist_ok=True)
    counts = np.zeros(n_cat)
    for f in range(files):
        codes = rng.integers(0, n_cat, rows)
        if f == 0:  # every county has records
            codes[: min(n_cat, rows)] = np.arange(min(n_cat, rows))
        counts += np.bincount(codes, minlength=n_cat)
        pd.DataFrame({"county": [f"{c:05d}" for c in codes], "w": 1.0}).to_parquet(f"{root}/part-{f}.parquet")
    return {"county": {int(k): float(c) * 1.1 for k, c in enumerate(counts) if c > 0}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("categories", type=int, nargs="+")
    args = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f}")
    for n in args.categories:
        with tempfile.TemporaryDirectory() as d:
            margins = write(d + "/ds", n)
            t = time.perf_counter()
            res = rake_dataset(d + "/ds", margins, weight_col="w")
            print(f"{n:>7,} categories: {time.perf_counter() - t:7.2f} s (converged: {res.converged})", flush=True)
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
