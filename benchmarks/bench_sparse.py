"""Sparse reweighting benchmark: frontier of kept records vs fitted and held-out error, side by side.

Usage (from the repository root)::

    PYTHONPATH=src python benchmarks/bench_sparse.py          # writes benchmarks/results/sparse.md

At each size: microplex ``SparseCalibrator`` (method ``l0``), a simple random subsample of that size
calibrated by raking (same Newton solver; soft raking where exact raking is infeasible), and
PolicyEngine's ``l0-python`` ``SparseCalibrationWeights`` (documented defaults, ``loss_type="relative"``;
its size is whatever its penalty gives, so microplex and the random baseline are also run at that size).
Held-out targets were not used in fitting: census2000 education categories, experience and log-income
deciles and the 2,024 PUMA counts (small areas); eusilc economic status, citizenship, age and income
deciles. Errors are relative to the full candidate population's initial-weight totals; held-out
figures are means over 5 seeds for microplex and the random baseline.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from microplex import SparseCalibrator, Targets  # noqa: E402
from microplex.calibration.design import build_design  # noqa: E402
from microplex.calibration.diagnostics import relative_errors  # noqa: E402
from microplex.datasets import load_dataset  # noqa: E402
from tidy_results import tidy  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

SEEDS = (0, 1, 2, 3, 4)


def census_problem():
    c = load_dataset("census2000").assign(weight=100.0)
    c["inc"] = np.exp(c["lweekinc"])
    c["educ_group"] = pd.cut(c["educ"], [0, 12, 13, 16, 99], right=False, labels=["<12", "12", "13-15", "16+"]).astype(str)
    targets = Targets.from_margins(
        {("state", "educ_group"): c.groupby(["state", "educ_group"])["weight"].sum()}
    ) + Targets.from_margins({"state": (c["weight"] * c["inc"]).groupby(c["state"]).sum()}, aggregate="sum", variable="inc")
    w = c["weight"]
    hold = Targets.from_margins({"educ": w.groupby(c["educ"]).sum()})
    for col in ("exper", "lweekinc"):
        edges = np.unique(np.quantile(c[col], np.linspace(0, 1, 11)))
        edges[-1] = np.inf
        bins = pd.cut(c[col], edges, right=False, include_lowest=True)
        hold = hold + Targets.from_margins({col: w.groupby(bins, observed=True).sum()})
    small = Targets.from_margins({("state", "puma"): w.groupby([c["state"], c["puma"]]).sum()})
    return c, targets, {"margins": hold, "PUMA": small}, None, "weight"


def eusilc_problem():
    e = load_dataset("eusilc")
    e["age_group"] = pd.cut(e["age"], [-np.inf, 18, 40, 65, np.inf], right=False, labels=["0-17", "18-39", "40-64", "65+"]).astype(str)
    e["hsize_group"] = np.minimum(e["hsize"], 5)
    for col in ("pl030", "pb220a"):
        e[col] = e[col].astype(object).where(e[col].notna(), "NA").astype(str)  # children: own category
    e["py010n"] = e["py010n"].fillna(0.0)
    w = e["db090"]
    first = ~e["db030"].duplicated()
    targets = Targets.from_margins(
        {("db040", "rb090", "age_group"): w.groupby([e["db040"], e["rb090"], e["age_group"]]).sum()}
    ) + Targets.from_margins({"hsize_group": w[first].groupby(e.loc[first, "hsize_group"]).sum()}, entity="household")
    hold = Targets.from_margins({"pl030": w.groupby(e["pl030"]).sum(), "pb220a": w.groupby(e["pb220a"]).sum()})
    for col in ("age", "eqIncome", "py010n"):
        edges = np.unique(np.quantile(e[col], np.linspace(0, 1, 11)))
        edges[-1] = np.inf
        bins = pd.cut(e[col], edges, right=False, include_lowest=True)
        hold = hold + Targets.from_margins({col: w.groupby(bins, observed=True).sum()})
    return e, targets, {"margins": hold}, "db030", "db090"


def holdout_errors(designs: dict, w: np.ndarray) -> dict:
    out = {}
    for name, dz in designs.items():
        rel = relative_errors(dz.x.T @ w, dz.totals)
        out[f"hold_{name}_mean"] = float(rel.mean())
        out[f"hold_{name}_max"] = float(rel.max())
    return out


def run_ours(df, targets, k, seed, hh, wcol):
    t0 = time.perf_counter()
    sc = SparseCalibrator(k, tolerance=0.005, seed=seed, force=True).fit(df, targets, wcol, household_col=hh)
    return sc.weights.to_numpy(), sc.summary["max_rel_error"], time.perf_counter() - t0


def run_random(design, k, seed):
    t0 = time.perf_counter()
    n = len(design.d)
    idx = np.sort(np.random.default_rng(seed).choice(n, k, replace=False))
    w_keep, err = SparseCalibrator(k, tolerance=0.005)._calibrate_subset(design, idx, design.d[idx] * n / k)
    w = np.zeros(n)
    w[idx] = w_keep
    return w, err, time.perf_counter() - t0


def run_l0python(design, lambda_l0):
    import torch
    from l0.calibration import SparseCalibrationWeights

    torch.manual_seed(0)
    t0 = time.perf_counter()
    model = SparseCalibrationWeights(n_features=len(design.d), init_weights=design.d, seed=0)
    model.fit(design.xt.tocsr(), design.totals, lambda_l0=lambda_l0, loss_type="relative")
    with torch.no_grad():
        w = model.get_weights(deterministic=True).cpu().numpy().astype(np.float64)
    err = float(relative_errors(design.x.T @ w, design.totals).max())
    return w, err, time.perf_counter() - t0


def frontier(name, problem, sizes, lambdas):
    df, targets, holdouts, hh, wcol = problem
    design = build_design(df, targets, wcol, hh)
    hdesigns = {k: build_design(df, v, wcol, hh) for k, v in holdouts.items()}
    rows = []
    l0_sizes = []
    try:
        for lam in lambdas:
            w, err, secs = run_l0python(design, lam)
            k = int((w > 0).sum())
            l0_sizes.append(k)
            rows.append({"data": name, "size": k, "method": f"l0-python (lambda_l0={lam:g})", "kept": k,
                         "fit_max_err": err, "seconds": secs, **holdout_errors(hdesigns, w)})
    except ImportError:
        pass
    for k in sorted({*sizes, *l0_sizes}):
        if k >= len(design.d):
            continue
        for label, fn in (("microplex l0", lambda s: run_ours(df, targets, k, s, hh, wcol)),
                          ("random + raking", lambda s: run_random(design, k, s))):
            res = []
            for s in SEEDS:
                try:
                    w, err, secs = fn(s)
                except Exception as exc:  # noqa: BLE001 - a failing size is reported, not fatal
                    res = [{"error": str(exc)[:120]}]
                    break
                res.append({"kept": int((w > 0).sum()), "fit_max_err": err, "seconds": secs, **holdout_errors(hdesigns, w)})
            if "error" in res[0]:
                rows.append({"data": name, "size": k, "method": label, "error": res[0]["error"]})
                continue
            mean = pd.DataFrame(res).mean().to_dict()
            rows.append({"data": name, "size": k, "method": label, **mean})
    return pd.DataFrame(rows)


def big_case():
    from bench_calibration import make_problem

    df, targets, _ = make_problem(1_000_000, 51)
    t0 = time.perf_counter()
    sc = SparseCalibrator(5000, tolerance=0.005).fit(df, targets, weight_col="weight")
    return {"records": len(df), "targets": len(targets), "kept": sc.summary["n_nonzero"],
            "max_rel_error": sc.summary["max_rel_error"], "seconds": time.perf_counter() - t0}


def _markdown(fr: pd.DataFrame) -> str:
    try:
        return fr.to_markdown(index=False, floatfmt=".4g")
    except ImportError:  # tabulate not installed
        return "```\n" + fr.to_string(index=False) + "\n```"


def main() -> None:
    load = os.getloadavg()[0]
    tables = [
        frontier("census2000", census_problem(), [300, 1000, 5000, 20000], [0.01]),
        frontier("eusilc", eusilc_problem(), [250, 500, 1000, 3000], [0.01]),
    ]
    big = big_case()
    fr = pd.concat(tables, ignore_index=True)
    cols = ["data", "size", "method", "kept", "fit_max_err", "hold_margins_mean", "hold_margins_max", "hold_PUMA_mean", "seconds", "error"]
    fr = fr[[c for c in cols if c in fr.columns]]
    lines = [
        "# Sparse reweighting benchmark",
        "",
        f"Command: `PYTHONPATH=src python benchmarks/bench_sparse.py` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"load average {load:.1f} at start)",
        "",
        f"Machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}.",
        "",
        (__doc__ or "").split("Usage")[0].strip().replace("\n", " "),
        "",
        "Tolerance 0.005 for microplex; `fit_max_err` is the largest relative miss on the fitted targets,",
        "`hold_margins_*` the mean / max relative error on the held-out margins and deciles, `hold_PUMA_mean` the",
        "mean relative error on the 2,024 held-out PUMA counts (about 15 records each: only large subsets can keep them).",
        "",
        _markdown(fr),
        "",
        "## 1,000,000 candidates x 510 targets reduced to 5,000 records (tolerance 0.005)",
        "",
        "| records | targets | kept | max rel. error | seconds | bar |",
        "|---|---|---|---|---|---|",
        f"| {big['records']:,} | {big['targets']} | {big['kept']:,} | {big['max_rel_error']:.1e} | {big['seconds']:.1f} | <= 5,000 records, <= 0.5 %, < 60 s |",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    (ROOT / "benchmarks" / "results" / "sparse.md").write_text(tidy(text))


if __name__ == "__main__":
    main()
