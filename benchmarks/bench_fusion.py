"""Multi-source fusion on real data with known truth (issue 6).

Protocol (cps1): split the 15,992 cps1 records at random (seed 0) into disjoint halves; A keeps the
demographics + re74 + re75, B the demographics + re75 + re78. Fuse re78 from B onto A and compare
with A's true re78. Methods on the same split:

* ``microplex``: :func:`microplex.fuse` (conditional flow, defaults, 5 imputations; figures are the
  mean over imputations, +- their standard deviation for the joint measures);
* ``microplex + 5% aux``: 5% of all records (800, taken out of B) observe every variable and are
  passed as ``auxiliary`` (the donor is B without them);
* ``NND hot-deck``: StatMatch-style nearest-neighbour distance hot-deck built here (Manhattan
  distance on the standardized numeric shared variables, exact match on categorical ones as
  donation classes, nearest donor, ties broken at random);
* ``QRF``: quantile regression forest (``quantile-forest``) per imputed variable, each record's value
  drawn at a uniform random quantile of its conditional distribution.

eusilc: persons aged 16+ (12,107), households split at random into halves; shared: region, household
size, number of children under 16 in the household, age, sex and employee income (py010n); A holds
unemployment (py090n) and old-age benefits (py100n), B self-employment income (py050n) and
disability benefits (py130n); B's block is fused onto A, with the survey weights rb050; the
auxiliary experiment moves 5% of all persons (605, drawn from B) into an auxiliary source with every
variable.

Every split is repeated for each seed of ``--seeds`` (the split, the fusion, the hot-deck's ties and
the QRF draw all take the seed); the tables give the mean +- sd over seeds of each method's figure
(microplex: the mean over its imputations), beside the **real-vs-real floor**: the donor half B's own
real records (every variable, as surveyed) scored against A's truth in the same way, i.e. how far two
random halves of the survey already differ. Privacy beside fidelity: on the shared variables plus the
imputed block, the share of fused records identical to a donor record (``exact copies``; fresh data:
A's true records, ``copies (truth)``) and the DCR ratio (median distance of the fused records to their
closest donor record over that of A's true records; below 1: the fused file sits closer to the donor
records than fresh data does), from :func:`microplex.evaluation.privacy_summary`.

Run:  nice -n 5 python benchmarks/bench_fusion.py --seeds 0 1 2    (writes benchmarks/results/fusion.md)
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import warnings
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.spatial.distance import cdist
from sklearn.neighbors import NearestNeighbors

from microplex import Source, __version__, fuse
from microplex.datasets import load_dataset
from microplex.evaluation import privacy_summary
from microplex._stats import weighted_pearson
from microplex.fusion.diagnostics import weighted_ks
from tidy_results import tidy  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

RESULTS = Path(__file__).parent / "results" / "fusion.md"
DEMOGRAPHICS = ["age", "educ", "black", "hisp", "marr", "nodeg"]
#: Synthesizer parameters of every fusion (defaults; ``--epochs`` caps training for smoke runs).
SYNTH_PARAMS: dict = {}


# -- baselines ---------------------------------------------------------------------------------
def nnd_hotdeck(recipient: pd.DataFrame, donor: pd.DataFrame, match: list[str], block: list[str],
                seed: int = 0) -> pd.DataFrame:
    """StatMatch-style NND hot-deck: each recipient takes the whole block of its nearest donor
    (Manhattan distance on standardized numeric matching variables) within its donation class
    (the categorical matching variables); ties are broken at random."""
    rng = np.random.default_rng(seed)
    classes = [c for c in match if not pd.api.types.is_numeric_dtype(recipient[c])]
    numeric = [c for c in match if c not in classes]
    sd = donor[numeric].std().replace(0, 1)
    out = recipient.copy()
    for c in block:
        out[c] = np.nan
    groups = recipient.groupby(classes).groups if classes else {(): recipient.index}
    don_groups = donor.groupby(classes).groups if classes else {(): donor.index}
    for key, r_idx in groups.items():
        d_idx = don_groups.get(key, donor.index)
        d = donor.loc[d_idx]
        # random jitter (far below any real distance) breaks ties at random
        xd = d[numeric].to_numpy(float) / sd.to_numpy() + rng.uniform(0, 1e-6, (len(d), len(numeric)))
        xr = recipient.loc[r_idx, numeric].to_numpy(float) / sd.to_numpy()
        nn = NearestNeighbors(n_neighbors=1, metric="manhattan").fit(xd)
        j = nn.kneighbors(xr, return_distance=False)[:, 0]
        for c in block:
            out.loc[r_idx, c] = d[c].to_numpy()[j]
    return out


def qrf_impute(recipient: pd.DataFrame, donor: pd.DataFrame, match: list[str], block: list[str],
               weight: str | None = None, seed: int = 0) -> pd.DataFrame:
    """Quantile regression forest imputation, variable by variable: a draw at a random quantile."""
    from quantile_forest import RandomForestQuantileRegressor

    rng = np.random.default_rng(seed)
    xr, xd = pd.get_dummies(recipient[match], dtype=float), pd.get_dummies(donor[match], dtype=float)
    xr = xr.reindex(columns=xd.columns, fill_value=0.0)
    grid = np.linspace(0.005, 0.995, 199)
    out = recipient.copy()
    for c in block:
        qrf = RandomForestQuantileRegressor(n_estimators=100, min_samples_leaf=5, random_state=seed, n_jobs=2)
        qrf.fit(xd.to_numpy(), donor[c].to_numpy(float),
                sample_weight=None if weight is None else donor[weight].to_numpy(float))
        q = qrf.predict(xr.to_numpy(), quantiles=list(grid))
        out[c] = q[np.arange(len(xr)), rng.integers(0, len(grid), len(xr))]
    return out


# -- metrics -----------------------------------------------------------------------------------
def energy_distance(x: np.ndarray, y: np.ndarray, n: int = 2500, seed: int = 0) -> float:
    """Energy distance 2E|X-Y| - E|X-X'| - E|Y-Y'| on (subsampled) standardized records."""
    rng = np.random.default_rng(seed)
    x = x[rng.choice(len(x), min(n, len(x)), replace=False)]
    y = y[rng.choice(len(y), min(n, len(y)), replace=False)]
    return float(2 * cdist(x, y).mean() - cdist(x, x).mean() - cdist(y, y).mean())


def scores(truth: pd.DataFrame, fused: pd.DataFrame, imputed: list[str], pairs: list[tuple[str, str]],
           joint: list[str], w: np.ndarray, wf: np.ndarray | None = None) -> dict[str, float]:
    """Scores of ``fused`` (weights ``wf``, default ``w``: the base's records) against ``truth`` (weights ``w``)."""
    wf = w if wf is None else wf
    row: dict[str, float] = {}
    for v in imputed:
        t, f = truth[v].to_numpy(float), fused[v].to_numpy(float)
        row[f"KS {v}"] = weighted_ks(t, w, f, wf)
        row[f"zero err {v}"] = abs(np.average(t == 0, weights=w) - np.average(f == 0, weights=wf))
        top = t.max()
        if np.average(t == top, weights=w) > 0.01:
            row[f"top err {v}"] = abs(np.average(t == top, weights=w) - np.average(f == top, weights=wf))
    for a, b in pairs:
        row[f"corr({a},{b})"] = weighted_pearson(fused[a], fused[b], wf)
        row[f"corr err ({a},{b})"] = abs(row[f"corr({a},{b})"] - weighted_pearson(truth[a], truth[b], w))
    sd = truth[joint].std().to_numpy()
    row["energy"] = energy_distance(truth[joint].to_numpy(float) / sd, fused[joint].to_numpy(float) / sd)
    return row


def privacy(truth: pd.DataFrame, fused: pd.DataFrame, donor: pd.DataFrame, columns: list[str],
            seed: int) -> dict[str, float]:
    """Exact copies of donor records and the DCR ratio of the fused file (A's true records as fresh data)."""
    with warnings.catch_warnings():  # the figures are the table's; warn=False logs its messages instead
        warnings.simplefilter("ignore")
        logging.getLogger("microplex").setLevel(logging.ERROR)
        p = privacy_summary(donor[columns], fused[columns], truth[columns], seed=seed, warn=False)
    return {"exact copies": p["exact_copy_rate_synthetic"], "copies (truth)": p["exact_copy_rate_holdout"],
            "DCR ratio": p["dcr_ratio"]}


def run_case(truth, base, donor, floor, match, block, pairs, joint, w_col, aux=None, m=5, seed=0):
    """One split: every method's figures (a list of one dict per imputation) and the fusion results."""
    w = truth[w_col].to_numpy(float) if w_col else np.ones(len(truth))
    imputed, raw, extras, seconds = block, {}, {}, {}
    cols = [*match, *block]

    def score(frames: list[pd.DataFrame]) -> list[dict[str, float]]:
        return [scores(truth, d, imputed, pairs, joint, w) | privacy(truth, d, donor, cols, seed) for d in frames]

    t0 = time.perf_counter()
    res = fuse([Source(base, "A", weight_col=w_col), Source(donor, "B", weight_col=w_col)], base="A",
               shared=match, n_imputations=m, seed=seed, synthesizer_params=SYNTH_PARAMS)
    seconds["microplex"] = time.perf_counter() - t0
    extras["microplex"] = res
    raw["microplex"] = score(res.imputations())
    if aux is not None:
        aux_rows, donor_rest = aux
        t0 = time.perf_counter()
        res_aux = fuse([Source(base, "A", weight_col=w_col), Source(donor_rest, "B", weight_col=w_col)],
                       base="A", shared=match, n_imputations=m, seed=seed, synthesizer_params=SYNTH_PARAMS,
                       auxiliary=Source(aux_rows, "aux", weight_col=w_col))
        seconds["microplex + 5% aux"] = time.perf_counter() - t0
        extras["microplex + 5% aux"] = res_aux
        raw["microplex + 5% aux"] = score(res_aux.imputations())
    t0 = time.perf_counter()
    hd = nnd_hotdeck(base, donor, match, block, seed=seed)
    seconds["NND hot-deck"] = time.perf_counter() - t0
    raw["NND hot-deck"] = score([hd])
    t0 = time.perf_counter()
    qr = qrf_impute(base, donor, match, block, weight=w_col, seed=seed)
    seconds["QRF"] = time.perf_counter() - t0
    raw["QRF"] = score([qr])
    # The floor: the other half's real records, every variable as surveyed (no privacy figures: they are real).
    wf = floor[w_col].to_numpy(float) if w_col else np.ones(len(floor))
    raw["real B (floor)"] = [scores(truth, floor, imputed, pairs, joint, w, wf)]
    for method, s in seconds.items():
        for d in raw[method]:
            d["seconds"] = s
    truth_row = {f"corr({a},{b})": weighted_pearson(truth[a], truth[b], w) for a, b in pairs}
    return raw, extras, truth_row


def seed_table(per_seed: list[dict[str, list[dict[str, float]]]], truths: list[dict[str, float]]) -> pd.DataFrame:
    """Metric x method: mean +- sd over seeds of each seed's figure (the mean over imputations)."""
    columns = {}
    for method in per_seed[0]:
        frames = pd.DataFrame([pd.DataFrame(seed[method]).mean() for seed in per_seed])
        sd = frames.std() if len(frames) > 1 else None
        columns[method] = {k: (f"{frames[k].mean():.3f}" if sd is None or np.isnan(frames[k].mean()) else
                               f"{frames[k].mean():.3f} ± {sd[k]:.3f}") if k != "seconds" else f"{frames[k].mean():.0f}"
                           for k in frames.columns}
    columns["truth (A)"] = {k: f"{np.mean([t[k] for t in truths]):.3f}" for k in truths[0]}
    order = list(dict.fromkeys(k for c in columns.values() for k in c))
    late = ["exact copies", "copies (truth)", "DCR ratio", "seconds"]
    order = [k for k in order if k not in late] + [k for k in late if k in order]
    return pd.DataFrame(columns).reindex(order).fillna("")


#: Issue 6 bars on cps1: metric -> largest value allowed.
CPS1_BARS = {"KS re78": 0.05, "zero err re78": 0.02, "top err re78": 0.02, "corr err (re75,re78)": 0.03,
             "corr err (re74,re78)": 0.1}


def bars_table(per_seed: list[dict[str, list[dict[str, float]]]]) -> pd.DataFrame:
    """Worst value over seeds and imputations of every cps1 bar metric, per method, and whether it is met."""
    rows = []
    for metric, bar in CPS1_BARS.items():
        row = {"metric": metric, "bar": f"<= {bar}"}
        for method in per_seed[0]:
            worst = max(v[metric] for seed in per_seed for v in seed[method])
            row[method] = f"{worst:.3f} {'met' if worst <= bar else 'NOT met'}"
        rows.append(row)
    return pd.DataFrame(rows)


def cps1_case(seed: int = 0):
    df = load_dataset("cps1")
    order = np.random.default_rng(seed).permutation(len(df))
    half = len(df) // 2
    a, b = df.iloc[order[:half]].reset_index(drop=True), df.iloc[order[half:]].reset_index(drop=True)
    n_aux = int(round(0.05 * len(df)))
    aux = (b.iloc[:n_aux].reset_index(drop=True), b.iloc[n_aux:].drop(columns="re74").reset_index(drop=True))
    match = DEMOGRAPHICS + ["re75"]
    return run_case(a, a.drop(columns="re78"), b.drop(columns="re74"), b, match, ["re78"],
                    [("re75", "re78"), ("re74", "re78")], ["re74", "re75", "re78"], None, aux=aux, seed=seed)


EU_SHARED = ["db040", "hsize", "n_child", "age", "rb090", "py010n"]
EU_A, EU_B = ["py090n", "py100n"], ["py050n", "py130n"]


def eusilc_case(seed: int = 0):
    e = load_dataset("eusilc")
    e["n_child"] = e.groupby("db030")["age"].transform(lambda s: int((s < 16).sum()))
    p = e[e["py010n"].notna()][["db030", *EU_SHARED, *EU_A, *EU_B, "rb050"]].reset_index(drop=True)
    hh = p["db030"].unique()
    in_a = set(np.random.default_rng(seed).permutation(hh)[: len(hh) // 2].tolist())
    mask = p["db030"].isin(in_a).to_numpy()
    a, b = p[mask].drop(columns="db030").reset_index(drop=True), p[~mask].drop(columns="db030").reset_index(drop=True)
    pairs = [("py010n", "py050n"), ("py010n", "py130n")] + [(x, y) for x in EU_A for y in EU_B] + [("py050n", "py130n")]
    n_aux = int(round(0.05 * len(p)))
    b = b.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    aux = (b.iloc[:n_aux].reset_index(drop=True), b.iloc[n_aux:].drop(columns=EU_A).reset_index(drop=True))
    return run_case(a, a.drop(columns=EU_B), b.drop(columns=EU_A), b, EU_SHARED, EU_B, pairs,
                    ["py010n", *EU_A, *EU_B], "rb050", aux=aux, seed=seed)


def bounds_table(extras) -> pd.DataFrame:
    parts = []
    for method, res in extras.items():
        t = res.bounds.copy()
        t.insert(0, "method", method)
        parts.append(t.drop(columns=["shared", "y_source", "z_source"]))
    return pd.concat(parts, ignore_index=True).round(3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=None, help="cap on training epochs (smoke runs only)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the tables go")
    args = parser.parse_args()
    if args.epochs:
        SYNTH_PARAMS["epochs"] = args.epochs
    seeds = " ".join(map(str, args.seeds))
    threads = os.environ.get("OMP_NUM_THREADS")
    command = (f"OMP_NUM_THREADS={threads} " if threads else "") + f"nice -n 5 python benchmarks/bench_fusion.py --seeds {seeds}"
    if args.epochs:
        command += f" --epochs {args.epochs}"
    load = os.getloadavg()[0]
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    head = (f"# Fusion benchmark\n\nmicroplex {__version__}, Python {platform.python_version()}, {platform.machine()} CPU, "
            f"seeds {seeds}. Command: `{command}` ({started}; load average {load:.1f} at the start, "
            "{end_load} at the end: the seconds are indicative, not a timing benchmark).\n\n"
            "Cells: mean ± sd over seeds of each seed's figure (microplex: the mean over its 5 imputations). "
            "`real B (floor)`: the donor half's own real records scored against A's truth (two random halves of "
            "the survey). `exact copies`: share of fused records (shared variables and imputed block) identical to "
            "a donor record; `copies (truth)`: the same for A's true records (fresh data); `DCR ratio`: median "
            "distance to the closest donor record, fused over A's truth (below 1: closer to the donor records than "
            "fresh data). Bounds, shared-variable comparison and held-out diagnostics: the first seed.\n")
    out = [head]
    for name, case in (("cps1", cps1_case), ("eusilc", eusilc_case)):
        per_seed, truths, first = [], [], None
        for seed in args.seeds:
            raw, extras, truth_row = case(seed)
            per_seed.append(raw)
            truths.append(truth_row)
            first = extras if first is None else first
            print(f"{name} seed {seed} done", flush=True)
        res = first["microplex"]
        out.append(f"## {name}\n\n### Imputed variables vs the truth of A\n\n{seed_table(per_seed, truths).to_markdown()}\n")
        if name == "cps1":
            out.append("### Bars (worst over the seeds and, for microplex, the 5 imputations)\n\n"
                       f"{bars_table(per_seed).to_markdown(index=False)}\n")
        out.append(f"### Correlation bounds (pairs never observed together)\n\n{bounds_table(first).to_markdown(index=False)}\n")
        out.append(f"### Shared variables, donor B vs base A (before fusing)\n\n"
                   f"{res.shared_comparison.round(3).to_markdown(index=False)}\n")
        diag = res.diagnostics.drop(columns=["predictors"]).round(3)
        out.append(f"### microplex held-out diagnostics (donor records not used for fitting)\n\n"
                   f"{diag.to_markdown(index=False)}\n")
    out[0] = out[0].replace("{end_load}", f"{os.getloadavg()[0]:.1f}")
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(tidy("\n".join(out)))
    print("\n".join(out), flush=True)


if __name__ == "__main__":
    main()
