"""Heaps benchmark (issue 16): does modelling lumpy values as heap states reach the floor?

Protocol (as ``bench_synthesizers.py``): an 80/20 split by ``numpy.random.default_rng(seed)``
permutation; each configuration of ``microplex.Synthesizer`` is fitted on the training rows
and generates one record per held-out condition row; scored against the held-out rows:

- ``ks_max``: worst KS statistic over the targets;
- ``heap_err``: max abs error of the share of each *training heap value* (every target value
  carrying >= 0.3% of the training records, point masses included) between synthetic and
  held-out rows;
- ``copy``: exact-copy rate of synthetic records (conditions + targets) against the training
  rows, beside ``copy_nat`` (the rate of held-out records, the natural rate); ``dcr_ratio``:
  median distance to the closest training record, synthetic over held-out
  (``microplex.evaluation.privacy_summary``).

The floor is a random training subset of the held-out size scored the same way (its copy rate is
1 by construction and not reported). Configurations (2 x 2): heaps off (``max_heaps=0``, today's
model) or on (library defaults), and the default early-stopping schedule or a long schedule
without validation (``validation_fraction=0``: all epochs, cosine decay of the learning rate).

Usage
-----
    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/bench_heaps.py --datasets workinghours --seeds 0 1
    ... --configs default heaps             # a subset; results are appended to the raw file
    ... --report-only                       # rebuild the markdown from the raw runs
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

RAW = ROOT / "benchmarks" / "results" / "raw" / "heaps.jsonl"
OUT = ROOT / "benchmarks" / "results" / "heaps.md"
HEAP_SHARE = 0.003  # a training value with at least this share of the records is scored as a heap

#: Epochs of the long schedule per data set (about the same number of gradient steps).
LONG_EPOCHS = {"workinghours": 150, "cps1988": 40, "acs12": 100, "cps1": 60}


def load(name: str):
    from microplex.datasets import load_dataset

    if name == "workinghours":
        df = load_dataset("workinghours")
        conds = ["age", "education", "child5", "child13", "child17", "nonwhite", "owned", "mortgage",
                 "occupation", "unemp"]
        return df, ["hours", "income"], conds
    if name == "cps1988":
        return load_dataset("cps1988"), ["wage"], ["education", "experience", "ethnicity", "smsa", "region", "parttime"]
    if name == "cps1":
        return load_dataset("cps1"), ["re74", "re75", "re78"], ["age", "educ", "black", "hisp", "marr", "nodeg"]
    if name == "acs12":
        df = load_dataset("acs12").dropna(subset=["income", "edu", "employment"]).copy()
        df["hrs_work"] = df["hrs_work"].fillna(0.0)  # not working: 0 hours
        cols = ["age", "gender", "edu", "race", "employment", "income", "hrs_work"]
        return df[cols].reset_index(drop=True), ["income", "hrs_work"], ["age", "gender", "edu", "race", "employment"]
    raise ValueError(f"unknown dataset {name!r}")


CONFIGS = {
    "default": dict(max_heaps=0),
    "heaps": dict(),
    "long": dict(max_heaps=0, validation_fraction=0.0),
    "heaps_long": dict(validation_fraction=0.0),
    # sensitivity of the detection defaults
    "heaps_mc10": dict(min_heap_count=10),
    "heaps_t002": dict(heap_threshold=0.002),
    "heaps_t005": dict(heap_threshold=0.005),
}
NOTES = {
    "floor": "random training subset of the held-out size (real vs real)",
    "default": "today's model: library defaults with heaps off (max_heaps=0)",
    "heaps": "library defaults (heaps on: heap_threshold=0.003, min_heap_count=20, max_heaps=64)",
    "long": "heaps off, validation_fraction=0 (all epochs, cosine decay), epochs per data set: " + str(LONG_EPOCHS),
    "heaps_long": "heaps on, validation_fraction=0 (all epochs, cosine decay), same epochs",
    "heaps_mc10": "heaps on, min_heap_count=10",
    "heaps_t002": "heaps on, heap_threshold=0.002",
    "heaps_t005": "heaps on, heap_threshold=0.005",
}


def split(df: pd.DataFrame, seed: int):
    idx = np.random.default_rng(seed).permutation(len(df))
    n_train = int(round(0.8 * len(idx)))
    return df.iloc[idx[:n_train]].reset_index(drop=True), df.iloc[idx[n_train:]].reset_index(drop=True)


def heap_values(train: pd.DataFrame, t: str) -> np.ndarray:
    from microplex._stats import value_shares

    x = train[t].dropna().to_numpy(float)
    values, shares = value_shares(x, np.ones(len(x)))
    return values[shares >= HEAP_SHARE]


def load_weighted(name: str):
    """``(df, targets, conditions, weight column or None)``: :func:`load`'s sets and eusilc (weighted)."""
    if name == "eusilc":
        from microplex.datasets import load_dataset

        df = load_dataset("eusilc")
        df = df[df["age"] >= 16].copy()
        df["pl030"] = df["pl030"].astype(int).astype(str)
        t, c = ["py010n", "py050n", "py090n", "py100n"], ["age", "rb090", "db040", "pl030"]
        return df[c + t + ["rb050"]].reset_index(drop=True), t, c, "rb050"
    df, t, c = load(name)
    return df, t, c, None


def score(train, holdout, synth, targets, conds, wcol: str | None = None) -> dict:
    """Worst KS, heap share errors (the training values carrying >= HEAP_SHARE of the records),
    the correlation error and the privacy figures, weighted by ``wcol`` where given."""
    from microplex.evaluation import ks_statistic, privacy_summary
    from microplex.evaluation.metrics import weighted_corr

    wr = holdout[wcol].to_numpy(float) if wcol else np.ones(len(holdout))
    ws = synth[wcol].to_numpy(float) if wcol else np.ones(len(synth))
    ks = {t: ks_statistic(holdout[t], synth[t], wr, ws) for t in targets}
    errs, mass = [], []
    for t in targets:
        vals = heap_values(train, t)
        r = holdout[t].to_numpy(float)
        s = synth[t].to_numpy(float)
        errs += [abs(ws[s == v].sum() / ws.sum() - wr[r == v].sum() / wr.sum()) for v in vals]
        mass.append(float(ws[np.isin(s, vals)].sum() / ws.sum()))
    num = [x for x in conds + targets if pd.api.types.is_numeric_dtype(holdout[x])]
    corr = float((weighted_corr(holdout[num], wr) - weighted_corr(synth[num], ws)).abs().loc[targets].to_numpy().max())
    out = {"ks_max": max(ks.values()), "ks": ks, **{f"ks_{t}": v for t, v in ks.items()},
           "heap_err": max(errs) if errs else 0.0, "heap_mass_synth": mass, "corr_err": corr}
    cols = conds + targets
    p = privacy_summary(train[cols], synth[cols], holdout[cols], warn=False)
    out.update(copy=p["exact_copy_rate_synthetic"], copy_nat=p["exact_copy_rate_holdout"], dcr_ratio=p["dcr_ratio"])
    return out


def run_one(dataset: str, seed: int, config: str) -> dict:
    from microplex import Synthesizer

    df, targets, conds = load(dataset)
    train, holdout = split(df, seed)
    rec = {"dataset": dataset, "seed": seed, "config": config, "n_train": len(train)}
    if config == "floor":
        sub = train.iloc[np.random.default_rng(seed + 1).choice(len(train), len(holdout), replace=False)]
        rec.update(score(train, holdout, sub.reset_index(drop=True), targets, conds))
        rec.pop("copy")
        rec["dcr_ratio"] = float("nan")  # a subset of the training rows: both are trivially 1 and 0
        return rec
    params = dict(CONFIGS[config])
    epochs = LONG_EPOCHS[dataset] if params.get("validation_fraction") == 0.0 else None
    synth = Synthesizer(targets, conds, verbose=False, **params)
    t0 = time.perf_counter()
    synth.fit(train[conds + targets], epochs=epochs, seed=seed)
    rec["fit_s"] = time.perf_counter() - t0
    rec["epochs_run"] = int(len(synth.history_))
    rec["n_heaps"] = {t: len(synth.heaps_.get(t, ())) for t in targets}
    out = synth.generate(holdout[conds], seed=seed + 100)
    rec.update(score(train, holdout, out, targets, conds))
    return rec


def report() -> None:
    rows = [json.loads(line) for line in RAW.read_text().splitlines() if line.strip()]
    df = pd.DataFrame(rows).drop_duplicates(["dataset", "seed", "config"], keep="last")
    lines = [
        "# Heaps benchmark (issue 16)",
        "",
        "Command: `OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/bench_heaps.py --datasets D --seeds S "
        "--configs C` (raw runs: `benchmarks/results/raw/heaps.jsonl`; this file: `--report-only`).",
        "",
        "Protocol: 80/20 split by `default_rng(seed).permutation`, one synthetic record per held-out condition row. "
        f"`ks_max`: worst KS over targets vs held-out; `heap_err`: max abs share error over the training values "
        f"carrying >= {HEAP_SHARE:.1%} of the records (point masses included); `copy`: exact-copy rate vs training "
        "(`copy_nat`: the held-out rows' rate); `dcr_ratio`: median DCR synthetic / held-out. `x floor`: ks_max over "
        "the floor's. Fit times were taken on a loaded 2-core machine shared with other jobs: indicative only.",
        "",
        "Configurations:",
        "",
        *[f"- `{k}`: {v}" for k, v in NOTES.items()],
        "",
    ]
    for dataset, g in df.groupby("dataset", sort=False):
        floor = g[g.config == "floor"].set_index("seed")["ks_max"]
        lines += [f"## {dataset}", "",
                  "| config | seed | ks_max | x floor | heap_err | copy | copy_nat | dcr_ratio | heaps | epochs | fit s |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        order = {c: i for i, c in enumerate(["floor", *CONFIGS])}
        g = g.sort_values(["config", "seed"], key=lambda s: s.map(order) if s.name == "config" else s)
        for _, r in g.iterrows():
            ratio = r.ks_max / floor.get(r.seed, np.nan)
            heaps = "" if not isinstance(r.get("n_heaps"), dict) else ", ".join(f"{k}: {v}" for k, v in r.n_heaps.items())
            fmt = lambda v, f="{:.4f}": "" if v is None or (isinstance(v, float) and np.isnan(v)) else f.format(v)  # noqa: E731
            lines.append(
                f"| {r.config} | {r.seed} | {r.ks_max:.4f} | {ratio:.2f} | {r.heap_err:.4f} | {fmt(r.get('copy'))} | "
                f"{r.copy_nat:.4f} | {fmt(None if r.config == 'floor' else r.dcr_ratio, '{:.3f}')} | {heaps} | {fmt(r.get('epochs_run'), '{:.0f}')} | "
                f"{fmt(r.get('fit_s'), '{:.0f}')} |"
            )
        lines += ["", "| config (means over its seeds) | seeds | ks_max | ks_max / floor's over the same seeds | heap_err | floor heap_err |",
                  "| --- | --- | --- | --- | --- | --- |"]
        fl = g[g.config == "floor"].set_index("seed")
        for c, m in g.groupby("config", sort=False):
            seeds = sorted(m.seed)
            f = fl.loc[fl.index.intersection(seeds)]
            lines.append(f"| {c} | {', '.join(map(str, seeds))} | {m.ks_max.mean():.4f} | "
                         f"{m.ks_max.mean() / f.ks_max.mean():.2f} | {m.heap_err.mean():.4f} | {f.heap_err.mean():.4f} |")
        lines.append("")
    marker = "<!-- findings: written by hand, kept by --report-only -->"
    findings = OUT.read_text().split(marker, 1)[1] if OUT.exists() and marker in OUT.read_text() else "\n"
    OUT.write_text("\n".join(lines) + "\n" + marker + findings)


def run_grid(run_one, report, raw: Path, datasets: list[str], seeds: list[int], configs: list[str]) -> None:
    """The command line of a data set x seed x configuration benchmark (this one, ``bench_rounding.py``,
    ``bench_schedule.py``): ``--datasets``, ``--seeds``, ``--configs`` (defaults as given) run
    ``run_one(dataset, seed, config)`` for each, print each record with the load average and append it to
    ``raw``; ``report()`` then rebuilds the markdown (alone with ``--report-only``)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", nargs="+", default=datasets)
    ap.add_argument("--seeds", nargs="+", type=int, default=seeds)
    ap.add_argument("--configs", nargs="+", default=configs)
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args()
    if not args.report_only:
        raw.parent.mkdir(parents=True, exist_ok=True)
        for dataset in args.datasets:
            for seed in args.seeds:
                for config in args.configs:
                    rec = run_one(dataset, seed, config)
                    rec["load_avg"] = os.getloadavg()[0]
                    print(json.dumps(rec), flush=True)
                    with raw.open("a") as fh:
                        fh.write(json.dumps(rec) + "\n")
    report()


def main() -> None:
    run_grid(run_one, report, RAW, ["workinghours", "cps1988"], [0, 1],
             ["floor", "default", "heaps", "long", "heaps_long"])


if __name__ == "__main__":
    main()
