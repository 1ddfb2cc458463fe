"""Sparse subsets on data sets ``bench_sparse.py`` does not use: does the refinement by swaps generalize?

Usage (from the repository root)::

    PYTHONPATH=src python benchmarks/bench_sparse_other.py cps1988      # or acs12; optional sizes: 12,24,60

Per size (default: the LP core, twice and five times it) and seed (0-2): ``SparseCalibrator`` with
``refine=False`` ("off"), the default ("on"), a random subsample raked to the same targets
("random") and a stratified random sample raked the same way ("stratified": at least one unit in each
count target's cell, ``bench_sparse.run_stratified``); fit_max_err is each one's worst fitted target;
medians and worst seeds of the held-out errors (as in ``bench_sparse.py``: the misplacement
``sum |a - t| / sum t``, twice the share of the population in the wrong cells where the totals agree, and the mean
relative error of the cells), printed as markdown. cps1988: region x part-time
counts and region wage sums as targets; acs12: education x employment counts; cps1 (session 41): race
(black, Hispanic, other) x no-degree counts and race sums of 1975 earnings; workinghours (session 41):
occupation x non-white counts and occupation income sums. Held-out families are never targets.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_sparse as B  # noqa: E402
from microplex import SparseCalibrator, Targets  # noqa: E402
from microplex.calibration.design import build_design  # noqa: E402
from microplex.datasets import load_dataset  # noqa: E402

SEEDS = (0, 1, 2)


def cps1988_problem():
    c = load_dataset("cps1988").assign(weight=100.0)
    c["pt"] = c["parttime"].astype(str)
    targets = Targets.from_margins({("region", "pt"): c.groupby(["region", "pt"])["weight"].sum()}) + Targets.from_margins(
        {"region": (c["weight"] * c["wage"]).groupby(c["region"]).sum()}, aggregate="sum", variable="wage")
    exper5 = B._groups(c["experience"], 5)
    educ = pd.cut(c["education"], [0, 12, 13, 16, 99], right=False, labels=["<12", "12", "13-15", "16+"]).astype(str)
    hold = {
        "region x educ": (c["region"], educ),
        "region x exper": (c["region"], exper5),
        "region x smsa x eth": (c["region"], c["smsa"], c["ethnicity"]),
        "region x wage decile": (c["region"], B._groups(c["wage"], 10, c["region"])),
        "region x pt x exper": (c["region"], c["pt"], exper5),
        "national": None,
    }
    return c, targets, hold, None, "weight"


def acs12_problem():
    a = load_dataset("acs12").dropna(subset=["employment", "edu"]).assign(weight=100.0).reset_index(drop=True)
    for col in ("income", "hrs_work", "time_to_work"):
        a[col] = a[col].fillna(0.0)
    for col in a.columns:
        if not pd.api.types.is_numeric_dtype(a[col]):
            a[col] = a[col].astype(object).where(a[col].notna(), "NA").astype(str)
    targets = Targets.from_margins({("edu", "employment"): a.groupby(["edu", "employment"])["weight"].sum()})
    age5 = B._groups(a["age"], 5)
    hold = {
        "edu x age": (a["edu"], age5),
        "edu x gender": (a["edu"], a["gender"]),
        "edu x empl x age": (a["edu"], a["employment"], age5),
        "edu x inc decile": (a["edu"], B._groups(a["income"], 10, a["edu"])),
        "national": None,
    }
    return a, targets, hold, None, "weight"


def cps1_problem():
    c = load_dataset("cps1").assign(weight=100.0)
    c["race"] = pd.Series("other", index=c.index).mask(c["black"] == 1, "black").mask(c["hisp"] == 1, "hisp")
    c["nodeg_s"] = c["nodeg"].astype(str)
    targets = Targets.from_margins({("race", "nodeg_s"): c.groupby(["race", "nodeg_s"])["weight"].sum()}) + Targets.from_margins(
        {"race": (c["weight"] * c["re75"]).groupby(c["race"]).sum()}, aggregate="sum", variable="re75")
    c = c.drop(columns=["black", "hisp", "nodeg"])  # coded by race and nodeg_s
    age5 = B._groups(c["age"], 5)
    educ = pd.cut(c["educ"], [-1, 11, 12, 15, 99], labels=["<12", "12", "13-15", "16+"]).astype(str)
    hold = {
        "race x educ": (c["race"], educ),
        "race x age": (c["race"], age5),
        "race x marr x age": (c["race"], c["marr"], age5),
        "race x re78 decile": (c["race"], B._groups(c["re78"], 10, c["race"])),
        "national": None,
    }
    return c, targets, hold, None, "weight"


def workinghours_problem():
    h = load_dataset("workinghours").assign(weight=100.0)
    h["nonwhite_s"] = h["nonwhite"].astype(str)
    targets = Targets.from_margins(
        {("occupation", "nonwhite_s"): h.groupby(["occupation", "nonwhite_s"])["weight"].sum()}) + Targets.from_margins(
        {"occupation": (h["weight"] * h["income"]).groupby(h["occupation"]).sum()}, aggregate="sum", variable="income")
    h = h.drop(columns="nonwhite")
    age5 = B._groups(h["age"], 5)
    hold = {
        "occ x hours decile": (h["occupation"], B._groups(h["hours"], 10, h["occupation"])),
        "occ x owned": (h["occupation"], h["owned"]),
        "occ x age": (h["occupation"], age5),
        "occ x young children x age": (h["occupation"], h["child5"] > 0, age5),
        "national": None,
    }
    return h, targets, hold, None, "weight"


PROBLEMS = {"cps1988": cps1988_problem, "acs12": acs12_problem, "cps1": cps1_problem,
            "workinghours": workinghours_problem}


def main() -> None:
    name = sys.argv[1]
    warnings.simplefilter("ignore")  # the LP cores' dropped auxiliaries warn on every fit
    df, targets, hold, hh, wcol = PROBLEMS[name]()
    design = build_design(df, targets, wcol, hh)
    hdesigns = B.holdout_designs(df, targets, hold, wcol, hh)
    strata = B.unit_strata(df, targets, design, wcol)
    core = SparseCalibrator(method="l1", tolerance=B.TOL).fit(df, targets, wcol).summary["n_nonzero"]
    sizes = [int(v) for v in sys.argv[2].split(",")] if len(sys.argv) > 2 else [core, 2 * core, 5 * core]
    rows = []
    for k in sizes:
        for seed in SEEDS:
            for label, params in (("off", {"refine": False}), ("on", {})):
                sc = SparseCalibrator(k, tolerance=B.TOL, seed=seed, force=True, **params).fit(df, targets, wcol)
                rows.append({"size": k, "method": label, "seed": seed, "fit_max_err": sc.summary["max_rel_error"],
                             **B.holdout_errors(hdesigns, sc.weights.to_numpy())})
            for label, (w, err, _) in (("random", B.run_random(design, k, seed)),
                                       ("stratified", B.run_stratified(design, strata, k, seed))):
                rows.append({"size": k, "method": label, "seed": seed, "fit_max_err": err, **B.holdout_errors(hdesigns, w)})
    per_seed = pd.DataFrame(rows)
    families = [c for c in per_seed.columns if c not in ("size", "method", "seed")]
    medians = per_seed.groupby(["size", "method"], sort=False)[families].median().T
    medians.columns = [f"{size} {method}" for size, method in medians.columns]
    worst = per_seed.groupby(["size", "method"], sort=False)[families].max().T
    worst.columns = medians.columns
    print(f"{name}: {len(df)} records, LP core {core}, sizes {sizes}, medians of seeds {list(SEEDS)}\n")
    print(B._markdown(medians.reset_index().rename(columns={"index": "family"})))
    print(f"\nWorst of seeds {list(SEEDS)}:\n")
    print(B._markdown(worst.reset_index().rename(columns={"index": "family"})))


if __name__ == "__main__":
    main()
