"""Sparse reweighting benchmark: does a sparse subset represent what was not targeted?

Usage (from the repository root)::

    PYTHONPATH=src python benchmarks/bench_sparse.py          # writes benchmarks/results/sparse.md
    PYTHONPATH=src python benchmarks/bench_sparse.py --data census2000   # one data set's CSV (also eusilc)
    PYTHONPATH=src python benchmarks/bench_sparse.py --report            # sparse.md from the CSVs

Frontier: sizes from the LP core (the support of the ``SparseCalibrator(method="l1")`` vertex) to 20% of
the units, geometrically spaced. At each size and seed (5 seeds): microplex ``SparseCalibrator``
(default ``l0``, and ``auxiliary=None``, the former default, for comparison) and a simple random subsample
of that size calibrated by raking to the same targets (same Newton solver; soft raking where exact raking
is infeasible); and a stratified random sample raked the same way (strata: the count targets' cells, at
least one unit in each, the rest allocated by population; the practitioner's way to a subset that has
records in every target cell); on census2000 also the default fit on the frame with the integer PUMA codes
typed as a category (crossed by their values; since session 43 the default recognises the integer codes as
nested in the states and crosses them by their values too, so the two rows differ only by the order of the
codes and, since session 59, by the fit's order of the records: a category is keyed by its values, an integer
by its rank, so the two are two draws of one method). PolicyEngine's ``l0-python`` ``SparseCalibrationWeights`` (documented defaults,
``loss_type="relative"``; its size is whatever its penalty gives, so microplex and the random baseline are
also run at that size) runs once. Held-out families were not used as targets; errors are against the
full candidate population's initial-weight totals, per family as the misplacement ``sum |a - t| / sum t`` (the
L1 distance of the cell totals over the population: where the totals agree, twice the share of the population
placed in the wrong cells, as a misplaced person counts in the cell it left and in the one it joined) and as the
mean relative error of the cells.
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
from microplex.calibration.auxiliary import target_cells  # noqa: E402
from microplex.calibration.design import build_design  # noqa: E402
from microplex.calibration.diagnostics import relative_errors  # noqa: E402
from microplex.calibration.subsets import default_holdout  # noqa: E402
from microplex.datasets import load_dataset  # noqa: E402
from tidy_results import tidy  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

SEEDS = (0, 1, 2, 3, 4)
TOL = 0.005


def _groups(s: pd.Series, q: int, by: pd.Series | None = None) -> pd.Series:
    """Quantile groups (``q`` equal-count groups of the ranks; within ``by`` when given)."""
    r = s.rank(method="first", pct=True) if by is None else s.groupby(by).rank(method="first", pct=True)
    return np.minimum(np.floor(r * q), q - 1).astype(int)


def _counts(w: pd.Series, keys: list) -> Targets:
    return Targets.from_margins({tuple(f"k{i}" for i in range(len(keys))): w.groupby(keys).sum()})


def census_problem():
    c = load_dataset("census2000").assign(weight=100.0)
    c["inc"] = np.exp(c["lweekinc"])
    c["educ_group"] = pd.cut(c["educ"], [0, 12, 13, 16, 99], right=False, labels=["<12", "12", "13-15", "16+"]).astype(str)
    targets = Targets.from_margins(
        {("state", "educ_group"): c.groupby(["state", "educ_group"])["weight"].sum()}
    ) + Targets.from_margins({"state": (c["weight"] * c["inc"]).groupby(c["state"]).sum()}, aggregate="sum", variable="inc")
    exper5 = _groups(c["exper"], 5)  # national experience quintile groups (the experience groups)
    inc10 = _groups(c["lweekinc"], 10, c["state"])  # income deciles within each state
    hold = {
        "state x exper": (c["state"], exper5),
        "state x inc decile": (c["state"], inc10),
        "state x educ x exper": (c["state"], c["educ_group"], exper5),
        "PUMA": (c["state"], c["puma"]),
        "national": None,
    }
    return c, targets, hold, None, "weight"


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
    inc10 = _groups(e["eqIncome"], 10, e["db040"])  # equivalized income deciles within each region
    hold = {
        "region x status": (e["db040"], e["pl030"]),
        "region x inc decile": (e["db040"], inc10),
        "region x hsize": (e["db040"], e["hsize_group"]),
        "region x age x status": (e["db040"], e["age_group"], e["pl030"]),
        "national": None,
    }
    return e, targets, hold, "db030", "db090"


def _national(df: pd.DataFrame, targets: Targets, wcol: str, hh: str | None) -> Targets:
    """Margins and deciles of every untargeted column (the former held-out set)."""
    return default_holdout(df, targets, wcol, hh, max_categories=20)


def holdout_designs(df, targets, hold, wcol, hh):
    out = {}
    w = df[wcol]
    for name, keys in hold.items():
        tg = _national(df, targets, wcol, hh) if keys is None else _counts(w, list(keys))
        frame = df if keys is None else df.assign(**{f"k{i}": np.asarray(k) for i, k in enumerate(keys)})
        out[name] = build_design(frame, tg, wcol, hh)
    return out


def holdout_errors(designs: dict, w: np.ndarray) -> dict:
    """Per family: the misplacement ``sum |a - t| / sum t`` (the L1 distance of the cell totals over the
    population; where the totals agree, twice the share of the population placed in the wrong cells), and ``<family> (mean rel)``, the unweighted mean
    of the cells' relative errors (dominated by cells smaller than one kept record's weight)."""
    out = {}
    for name, dz in designs.items():
        a = dz.x.T @ w
        out[name] = float(np.abs(a - dz.totals).sum() / np.abs(dz.totals).sum())
        out[f"{name} (mean rel)"] = float(relative_errors(a, dz.totals).mean())
    return out


def run_ours(df, targets, k, seed, hh, wcol, **params):
    t0 = time.perf_counter()
    sc = SparseCalibrator(k, tolerance=TOL, seed=seed, force=True, **params).fit(df, targets, wcol, household_col=hh)
    return sc.weights.to_numpy(), sc.summary["max_rel_error"], time.perf_counter() - t0


def run_random(design, k, seed):
    t0 = time.perf_counter()
    n = len(design.d)
    idx = np.sort(np.random.default_rng(seed).choice(n, k, replace=False))
    w_keep, err = SparseCalibrator(k, tolerance=TOL)._calibrate_subset(design, idx, design.d[idx] * n / k)
    w = np.zeros(n)
    w[idx] = w_keep
    return w, err, time.perf_counter() - t0


def unit_strata(df, targets, design, wcol) -> np.ndarray:
    """Per unit, its stratum: the count targets' cell (:func:`target_cells`) of its first record."""
    cells, _ = target_cells(df, targets, wcol)
    _, first = np.unique(design.record_unit, return_index=True)
    return cells[first]


def run_stratified(design, strata, k, seed):
    """A stratified random sample of ``k`` units raked to the targets: at least one unit in every stratum, the
    rest allocated in proportion to the strata's populations (largest remainders), simple random sampling
    within each; starting weights ``d_i N_h / sum_{j in s_h} d_j`` (the stratum's total over the sample's)."""
    t0 = time.perf_counter()
    n_strata = int(strata.max()) + 1
    pop = np.bincount(strata, weights=design.d, minlength=n_strata)
    units = np.bincount(strata, minlength=n_strata)
    alloc = (units > 0).astype(np.int64)
    share = pop / pop.sum() * max(k - int(alloc.sum()), 0)
    extra = np.floor(share).astype(np.int64)
    extra[np.argsort(-(share - extra), kind="stable")[: max(k - int(alloc.sum()) - int(extra.sum()), 0)]] += 1
    alloc = np.minimum(alloc + extra, units)
    rng = np.random.default_rng(seed)
    order = np.argsort(strata, kind="stable")
    starts = np.concatenate([[0], np.cumsum(units)])
    idx = np.sort(np.concatenate([rng.choice(order[starts[h]:starts[h + 1]], alloc[h], replace=False)
                                  for h in range(n_strata) if alloc[h]]))
    sampled = np.bincount(strata[idx], weights=design.d[idx], minlength=n_strata)
    base = design.d[idx] * pop[strata[idx]] / sampled[strata[idx]]
    w_keep, err = SparseCalibrator(len(idx), tolerance=TOL)._calibrate_subset(design, idx, base)
    w = np.zeros(len(design.d))
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


METHODS = {
    "microplex l0": {},
    "microplex l0, auxiliary=None": {"auxiliary": None},
}
#: The default fit on a frame typed as docs/calibration.md advises: integer geography codes as categories
#: (a number with more than 20 values is crossed by quantile groups of its values, a category by its values).
TYPED = {"census2000": ("microplex l0, puma as a category", lambda df: df.assign(puma=df["puma"].astype("category")))}


def frontier(name, problem, lambdas):
    """Per size and method: median and worst seed of each held-out family; ``l0`` rows for l0-python."""
    df, targets, hold, hh, wcol = problem
    design = build_design(df, targets, wcol, hh)
    hdesigns = holdout_designs(df, targets, hold, wcol, hh)
    core = SparseCalibrator(method="l1", tolerance=TOL).fit(df, targets, wcol, household_col=hh).summary["n_nonzero"]
    n = len(design.d)
    sizes = sorted({int(round(v)) for v in np.geomspace(core, 0.2 * n, 5)})
    per_seed, l0_rows = [], []
    try:
        for lam in lambdas:
            w, err, secs = run_l0python(design, lam)
            k = int((w > 0).sum())
            l0_rows.append({"data": name, "size": k, "method": f"l0-python (lambda_l0={lam:g})", "fit_max_err": err,
                            "seconds": secs, **holdout_errors(hdesigns, w)})
            sizes = sorted({*sizes, k}) if k < n else sizes
    except ImportError:
        print("l0-python is not installed (pip install l0-python): its rows are left out", file=sys.stderr)
    runners = {label: (lambda k, s, p=p: run_ours(df, targets, k, s, hh, wcol, **p)) for label, p in METHODS.items()}
    if name in TYPED:
        label, typed = TYPED[name]
        runners[label] = lambda k, s, frame=typed(df): run_ours(frame, targets, k, s, hh, wcol)
    runners["random + raking"] = lambda k, s: run_random(design, k, s)
    strata = unit_strata(df, targets, design, wcol)
    runners["stratified random + raking"] = lambda k, s: run_stratified(design, strata, k, s)
    for k in sizes:
        for label, fn in runners.items():
            for s in SEEDS:
                w, err, secs = fn(k, s)
                per_seed.append({"data": name, "size": k, "method": label, "seed": s, "kept": int((w > 0).sum()),
                                 "fit_max_err": err, "seconds": secs, **holdout_errors(hdesigns, w)})
        print(f"{name}: size {k} done", file=sys.stderr)
    return core, pd.DataFrame(per_seed), pd.DataFrame(l0_rows), [*hdesigns, *(f"{f} (mean rel)" for f in hdesigns)]


def summarize(per_seed: pd.DataFrame, l0: pd.DataFrame, families: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per (size, method): median / worst seed of every family; and the bar, family by family."""
    g = per_seed.groupby(["size", "method"], sort=False)
    med, worst = g[families].median(), g[families].max()
    rows, bars = [], []
    for (size, method), m in med.iterrows():
        x = worst.loc[(size, method)]
        fit = g["fit_max_err"].max().loc[(size, method)]
        rows.append({"size": size, "method": method, "fit_max_err (worst)": fit,
                     **{f: f"{m[f]:.4f} / {x[f]:.4f}" for f in families},
                     "seconds (med)": g["seconds"].median().loc[(size, method)]})
    for size in per_seed["size"].unique():
        ours_m, ours_w = med.loc[(size, "microplex l0")], worst.loc[(size, "microplex l0")]
        rnd_m, rnd_w = med.loc[(size, "random + raking")], worst.loc[(size, "random + raking")]
        fit_ok = bool(g["fit_max_err"].max().loc[(size, "microplex l0")] <= TOL * (1 + 1e-9))
        bar = {f: "yes" if (ours_m[f] < rnd_m[f] and ours_w[f] < rnd_w[f]) else "NO" for f in families}
        if (size, "stratified random + raking") in med.index:
            st_m, st_w = med.loc[(size, "stratified random + raking")], worst.loc[(size, "stratified random + raking")]
            lost = [f for f in families if not (ours_m[f] < st_m[f] and ours_w[f] < st_w[f])]
            bar["below stratified"] = "NO: " + ", ".join(lost) if lost else "yes"
        if len(l0):
            at = l0[l0["size"] == size]
            worse = [f for f in families if not ours_m[f] < at[f].min()]
            bar["below l0-python"] = ("NO: " + ", ".join(worse) if worse else "yes") if len(at) else ""
        bars.append({"size": size, "fitted targets met": "yes" if fit_ok else "NO", **bar})
    return pd.DataFrame(rows), pd.DataFrame(bars)


def big_case():
    from bench_calibration import make_problem

    df, targets, _ = make_problem(1_000_000, 51)
    df["income"] = np.random.default_rng(1).lognormal(10.0, 1.0, len(df))  # untargeted: 51 x 5 auxiliary cells
    t0 = time.perf_counter()
    sc = SparseCalibrator(5000, tolerance=0.005).fit(df, targets, weight_col="weight")
    return {"records": len(df), "targets": len(targets), "kept": sc.summary["n_nonzero"],
            "max_rel_error": sc.summary["max_rel_error"], "seconds": time.perf_counter() - t0,
            "auxiliary_dropped": sc.summary["auxiliary_dropped"], "auxiliary_cap": sc.summary["auxiliary_cap"]}


def _markdown(fr: pd.DataFrame) -> str:
    try:
        return fr.to_markdown(index=False, floatfmt=".4g")
    except ImportError:  # tabulate not installed
        return "```\n" + fr.to_string(index=False) + "\n```"


PROBLEMS = {"census2000": census_problem, "eusilc": eusilc_problem}


def run_data(name: str) -> None:
    """One data set's frontier: per-seed and l0-python rows to ``sparse_<name>_seeds.csv`` (``lp_core`` column)."""
    core, per_seed, l0, _ = frontier(name, PROBLEMS[name](), [0.01])
    pd.concat([per_seed, l0]).assign(lp_core=core).to_csv(
        ROOT / "benchmarks" / "results" / f"sparse_{name}_seeds.csv", index=False, float_format="%.6g")


def sections_from_csv(name: str) -> list[str]:
    """The markdown of one data set, from its ``sparse_<name>_seeds.csv``."""
    rows = pd.read_csv(ROOT / "benchmarks" / "results" / f"sparse_{name}_seeds.csv")
    core = int(rows["lp_core"].iloc[0])
    rows = rows.drop(columns="lp_core")
    is_l0 = rows["method"].str.startswith("l0-python")
    per_seed, l0 = rows[~is_l0], rows[is_l0].drop(columns=["seed", "kept"], errors="ignore")
    share = [c for c in per_seed.columns if c not in ("data", "size", "method", "seed", "kept", "fit_max_err", "seconds")
             and not c.endswith("(mean rel)")]
    families = [*share, *(f"{f} (mean rel)" for f in share)]
    table, bars = summarize(per_seed, l0, families)
    mean_rel = [f for f in families if f.endswith("(mean rel)")]
    head = ["size", "method", "fit_max_err (worst)"]
    out = [f"## {name}: LP core {core} units, frontier {[int(v) for v in sorted(per_seed['size'].unique())]}", "",
           "Held-out error, median / worst of 5 seeds: misplacement `sum |a - t| / sum t` (twice the share of "
           "the population in the wrong cells where the totals agree):", "", _markdown(table[head + share + ["seconds (med)"]]), "",
           "The same, as the unweighted mean of the cells' relative errors (cells smaller than one kept "
           "record's weight dominate it):", "", _markdown(table[head[:2] + mean_rel]), ""]
    if len(l0):
        out += ["PolicyEngine l0-python (one run):", "", _markdown(l0.drop(columns="data")), ""]
    return out + ["Bar (microplex l0 below random + raking in the median AND the worst seed; fitted targets "
                  "within the tolerance in every seed; `below stratified`: every family, both metrics, below the "
                  "stratified random sample + raking in the median AND the worst seed):", "", _markdown(bars), ""]


def main() -> None:
    """``--data NAME`` runs one data set (its CSV only; run them in parallel); ``--report`` writes sparse.md
    from the CSVs and the 1M-candidate case; no argument does both data sets, then the report."""
    args = sys.argv[1:]
    if args[:1] == ["--data"]:
        run_data(args[1])
        return
    load = os.getloadavg()[0]
    t_start = time.perf_counter()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    if args[:1] != ["--report"]:
        for name in PROBLEMS:
            run_data(name)
    sections = [line for name in PROBLEMS for line in sections_from_csv(name)]
    big = big_case()
    lines = [
        "# Sparse reweighting benchmark",
        "",
        f"Command: `PYTHONPATH=src python benchmarks/bench_sparse.py {' '.join(args)}`".rstrip() + f" (started {started}, "
        f"load average {load:.1f} at start; {time.perf_counter() - t_start:.0f} s in all)",
        "",
        f"Machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}.",
        "",
        (__doc__ or "").split("Usage")[0].strip().replace("\n", " "),
        (__doc__ or "").split("::")[1].split("\n\n", 2)[-1].strip().replace("\n", " "),
        "",
        "Tolerance 0.005 on the fitted targets. Per-seed figures: `sparse_<data>_seeds.csv` next to this file.",
        "",
        *sections,
        "## 1,000,000 candidates x 510 targets reduced to 5,000 records (tolerance 0.005)",
        "",
        "An untargeted `income` column gives the auxiliary cells: area x within-area income quintile (255) and, for "
        "the 5,000-record budget, about 2,500 finer within-area income groups (`auxiliary.MAX_FINE_CELLS`); the targets "
        "area x age and area x sex, given separately, add their cross area x age x sex (816 cells, "
        "`auxiliary.crossed_target_cells`).",
        "",
        "| records | targets | kept | max rel. error | auxiliaries dropped | weight cap chosen | seconds | bar |",
        "|---|---|---|---|---|---|---|---|",
        f"| {big['records']:,} | {big['targets']} | {big['kept']:,} | {big['max_rel_error']:.1e} | {big['auxiliary_dropped']} | "
        f"{big['auxiliary_cap']} | "
        f"{big['seconds']:.1f} | <= 5,000 records, <= 0.5 %, < 60 s |",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    (ROOT / "benchmarks" / "results" / "sparse.md").write_text(tidy(text))


if __name__ == "__main__":
    main()
