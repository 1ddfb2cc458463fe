"""Round numbers benchmark: does the rounding grid (``Synthesizer(rounding=...)``) bring the share of
round values to the floor without costing fidelity or privacy?

Protocol (as ``bench_heaps.py``, whose data sets, split and scores it reuses): an 80/20 split by
``numpy.random.default_rng(seed)`` permutation; the Synthesizer at its defaults (``rounding=None``,
on) and with ``rounding=False`` (the flow's values as drawn, the library before grids) is fitted
on the training rows and generates one record per held-out condition row (weighted sets: the
held-out rows' weights); scored against the held-out rows:

- ``round_err``: the worst, over the targets and the levels k = -2 .. 5, absolute difference
  between the held-out and the synthetic (weighted) share of nonzero values that are multiples of
  10**k (``microplex._stats.decimal_levels(x) >= k``; the report's ``round_share_error``);
- ``ks_max``, ``heap_err``, ``corr_err``, ``copy`` / ``copy_nat``, ``dcr_ratio``: as in ``bench_heaps.py``.

The floor is a random training subset of the held-out size scored the same way.

``rounding_float32`` and ``floor_float32``: the same with the data's float targets stored as float32 (training
and held-out rows alike, as a Parquet file written in float32 holds them): a float32 column holds 21516.67 as
21516.669921875, and the grid reads and draws its levels at that precision
(``microplex._stats.storage_precision``); each side is scored at its own.

Usage
-----
    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/bench_rounding.py --datasets acs12 --seeds 0 1 2
    ... --report-only                       # rebuild the markdown from the raw runs
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_heaps import load_weighted, run_grid, score, split  # noqa: E402

RAW = ROOT / "benchmarks" / "results" / "raw" / "rounding.jsonl"
OUT = ROOT / "benchmarks" / "results" / "rounding.md"
LEVELS = range(-2, 6)  # microplex.evaluation.metrics.ROUND_LEVELS
CONFIGS = {"rounding": {}, "no_rounding": {"rounding": False}, "rounding_float32": {}}
#: Configurations whose float targets are stored as float32 (training and held-out rows alike).
FLOAT32 = {"rounding_float32", "floor_float32"}
#: Configurations scored on a random training subset (the real-vs-real floor) instead of a fit.
FLOORS = {"floor", "floor_float32"}


def round_shares(x: np.ndarray, w: np.ndarray) -> dict[int, float]:
    """Weighted share of the nonzero values that are multiples of 10**k, per k in LEVELS."""
    from microplex._stats import round_shares as shares

    return dict(zip(LEVELS, shares(x, w, LEVELS).tolist(), strict=True))


def round_errors(holdout, synth, targets, wr, ws) -> dict[str, float]:
    """Per target, the worst level's error: the report's ``round_share_error`` (evaluation.metrics)."""
    from microplex.evaluation.metrics import round_share_errors

    return {t: float(round_share_errors(holdout[t], synth[t], wr, ws, levels=LEVELS)["abs_error"].max())
            for t in targets}


def run_one(dataset: str, seed: int, config: str) -> dict:
    from microplex import Synthesizer

    df, targets, conds, wcol = load_weighted(dataset)
    if config in FLOAT32:
        df = df.astype({t: "float32" for t in targets if df[t].dtype.kind == "f"})
    train, holdout = split(df, seed)
    rec = {"dataset": dataset, "seed": seed, "config": config, "n_train": len(train)}
    wr = holdout[wcol].to_numpy(float) if wcol else np.ones(len(holdout))
    if config in FLOORS:
        out = train.iloc[np.random.default_rng(seed + 1).choice(len(train), len(holdout), replace=False)]
        out = out.reset_index(drop=True)
    else:
        synth = Synthesizer(targets, conds, verbose=False, **CONFIGS[config])
        t0 = time.perf_counter()
        synth.fit(train[conds + targets + ([wcol] if wcol else [])], weight_col=wcol, seed=seed)
        rec["fit_s"] = time.perf_counter() - t0
        rec["rounded"] = list(synth.rounded_vars_)
        keep = conds + ([wcol] if wcol else [])
        out = synth.generate(holdout[keep], seed=seed + 100)
    ws = out[wcol].to_numpy(float) if wcol else np.ones(len(out))
    sc = score(train, holdout, out, targets, conds, wcol)
    rec.update({k: sc[k] for k in ("ks_max", "ks", "heap_err", "corr_err")})
    if config not in FLOORS:
        rec.update(copy=sc["copy"], copy_nat=sc["copy_nat"], dcr_ratio=sc["dcr_ratio"])
    errs = round_errors(holdout, out, targets, wr, ws)
    rec["round_err"], rec["round_errs"] = max(errs.values()), errs
    rec["shares_real"] = {t: round_shares(holdout[t].to_numpy(float), wr) for t in targets}
    rec["shares_synth"] = {t: round_shares(out[t].to_numpy(float), ws) for t in targets}
    return rec


def report() -> None:
    rows = [json.loads(line) for line in RAW.read_text().splitlines() if line.strip()]
    df = pd.DataFrame(rows).drop_duplicates(["dataset", "seed", "config"], keep="last")
    lines = [
        "# Round numbers benchmark (`Synthesizer(rounding=...)`)",
        "",
        "Command: `OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/bench_rounding.py --datasets D --seeds 0 1 2` "
        "(raw runs with the load average: `benchmarks/results/raw/rounding.jsonl`; tables: `--report-only`).",
        "",
        "Protocol: `bench_rounding.py`'s docstring. `round_err`: worst absolute difference, over targets and k = -2..5, "
        "of the share of nonzero values on multiples of 10**k, held-out vs synthetic (weighted); `ks_max`, "
        "`heap_err`, `corr_err`, exact `copy` rate (`copy_nat`: the held-out rows'), `dcr_ratio`: as in heaps.md. "
        "`rounding`: library defaults; `no_rounding`: `rounding=False` (the flow's values as drawn); `floor`: a "
        "random training subset of the held-out size; `*_float32`: the float targets stored as float32 (training and "
        "held-out rows). Means over the seeds.",
        "",
        "| data | config | seeds | round_err | ks_max | heap_err | corr_err | copy | copy_nat | dcr_ratio |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    order = {"floor": 0, "rounding": 1, "no_rounding": 2, "floor_float32": 3, "rounding_float32": 4}
    for (dataset, config), g in sorted(df.groupby(["dataset", "config"]), key=lambda kv: (kv[0][0], order[kv[0][1]])):
        def mean(col: str, fmt: str = "{:.4f}") -> str:
            return fmt.format(g[col].mean()) if col in g and g[col].notna().any() else ""
        lines.append(f"| {dataset} | {config} | {', '.join(map(str, sorted(g.seed)))} | {mean('round_err')} | "
                     f"{mean('ks_max')} | {mean('heap_err')} | {mean('corr_err')} | {mean('copy')} | "
                     f"{mean('copy_nat')} | {mean('dcr_ratio', '{:.3f}')} |")
    lines += ["", "Per target (means over the seeds): round_err and KS.", "",
              "| data | target | config | round_err | KS |", "| --- | --- | --- | --- | --- |"]
    for (dataset, config), g in sorted(df.groupby(["dataset", "config"]), key=lambda kv: (kv[0][0], order[kv[0][1]])):
        for t in g.iloc[0].round_errs:
            lines.append(f"| {dataset} | {t} | {config} | {np.mean([r[t] for r in g.round_errs]):.4f} | "
                         f"{np.mean([r[t] for r in g.ks]):.4f} |")
    marker = "<!-- findings: written by hand, kept by --report-only -->"
    findings = OUT.read_text().split(marker, 1)[1] if OUT.exists() and marker in OUT.read_text() else "\n"
    OUT.write_text("\n".join(lines) + "\n\n" + marker + findings)


def main() -> None:
    run_grid(run_one, report, RAW, ["acs12", "workinghours"], [0, 1, 2], ["floor", "rounding", "no_rounding"])


if __name__ == "__main__":
    main()
