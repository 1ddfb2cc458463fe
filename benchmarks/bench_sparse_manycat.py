"""Sparse subsets and a many-valued text column: census2000 with an occupation-like column added.

Usage (from the repository root; one JSON record per line, appended to
``benchmarks/results/raw/sparse_manycat.jsonl``)::

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/bench_sparse_manycat.py --sizes 556,2072 --seeds 0,1,2,3,4

The census2000 problem of ``bench_sparse.py`` (state x education counts and state income sums as targets,
the same held-out families) plus ``occ``, a text column of 500 values: 22 to 23 per education level, a
skewed (geometric) share within it, so not nested in the states (about 25,000 state x occupation cells).
Variants of ``SparseCalibrator``'s default fit: ``frequent`` (the library: each state's most frequent
occupations, the rest pooled, ``"frequent categories"``), ``values`` (the column crossed value by value, the
behaviour before session 44, by patching :func:`~microplex.calibration.auxiliary.crossing`'s answer) and
``without`` (the column dropped). A further held-out family, ``state x occ``: the state x occupation cells
of the 20 nationally most common occupations and the rest, as the misplacement ``sum |a - t| / sum t`` (twice the
share of the population in the wrong cells where the totals agree).
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_sparse as S  # noqa: E402
import microplex.calibration.sparse as sparse_module  # noqa: E402

VARIANTS = ("frequent", "values", "without")
OUT = ROOT / "benchmarks" / "results" / "raw" / "sparse_manycat.jsonl"


def occupation(df: pd.DataFrame, n_values: int = 500, seed: int = 11) -> pd.Series:
    """A text column tied to education (its own block of codes per level), skewed within a level."""
    rng = np.random.default_rng(seed)
    educ = pd.factorize(df["educ"], sort=True)[0]
    per = max(1, n_values // (educ.max() + 1))
    code = educ * per + np.minimum(rng.geometric(3.0 / per, len(df)) - 1, per - 1)
    return pd.Series(code, index=df.index).map(lambda c: f"occ{c}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="556,2072")
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    df, targets, hold, hh, wcol = S.census_problem()
    occ = occupation(df)
    main_occ = occ.where(occ.isin(occ.value_counts().index[:20]), "other")
    truth = df[wcol].groupby([df["state"], main_occ]).sum()
    designs = S.holdout_designs(df, targets, hold, wcol, hh)
    library = sparse_module.crossing

    def by_values(*a, **k):
        return {c: "categories" if c == "occ" else kind for c, kind in library(*a, **k).items()}

    for size in map(int, args.sizes.split(",")):
        for seed in map(int, args.seeds.split(",")):
            for variant in args.variants.split(","):
                sparse_module.crossing = by_values if variant == "values" else library
                frame = df if variant == "without" else df.assign(occ=occ)
                w, err, secs = S.run_ours(frame, targets, size, seed, hh, wcol)
                got = pd.Series(w, index=df.index).groupby([df["state"], main_occ]).sum()
                occ_err = float(np.abs(got.reindex(truth.index, fill_value=0.0) - truth).sum() / truth.sum())
                rec = {"variant": variant, "size": size, "seed": seed, "fit_max_err": err, "seconds": round(secs, 1),
                       "state x occ": occ_err, **S.holdout_errors(designs, w)}
                with OUT.open("a") as f:
                    f.write(json.dumps(rec) + "\n")
                print(json.dumps(rec), flush=True)
    sparse_module.crossing = library


if __name__ == "__main__":
    main()
