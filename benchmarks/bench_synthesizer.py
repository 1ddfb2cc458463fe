"""Synthesizer quality and speed on real data (issue 2): cps1 earnings.

Protocol: random 80/20 split per seed; fit on 80%; synthesize the targets of the held-out 20%
demographics (``--draws`` synthetic draws per held-out record); compare with the held-out truth.
Every figure is shown beside the real-vs-real floor (training records vs held-out records), and
privacy beside fidelity: on the first draw (one synthetic record per held-out record; conditions and
targets), the share of synthetic records identical to a training record (``exact copies``; the
held-out records' share, ``copies held-out``, is what fresh data gives) and the DCR ratio (median
distance to the closest training record, synthetic over held-out), by
:func:`microplex.evaluation.privacy_summary`.
Speed: fit time, then ``generate`` rows/s and peak RSS for ``--rows`` records in a fresh process.

Run:  python benchmarks/bench_synthesizer.py            (writes benchmarks/results/synthesizer.md)
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from microplex import Synthesizer, __version__
from tidy_results import tidy  # noqa: E402  (benchmarks/ is on sys.path when run as a script)
from microplex._stats import weighted_quantile
from microplex.datasets import load_dataset
from microplex.evaluation import correlation_max_abs_error, ks_statistic, privacy_summary

TARGETS = ["re74", "re75", "re78"]
CONDITIONS = ["age", "educ", "black", "hisp", "marr", "nodeg"]
RESULTS = Path(__file__).parent / "results" / "synthesizer.md"


def fidelity(real: pd.DataFrame, synthetic: pd.DataFrame, masses: dict[str, tuple[float, ...]]) -> dict[str, float]:
    """The issue's metrics of ``synthetic`` against ``real`` (max over targets where stated)."""
    row = {}
    for t in TARGETS:
        row[f"KS {t}"] = ks_statistic(real[t], synthetic[t])
        row[f"zero err {t}"] = abs((real[t] == 0).mean() - (synthetic[t] == 0).mean())
        top = max(masses[t])
        row[f"top err {t}"] = abs((real[t] == top).mean() - (synthetic[t] == top).mean())
    row["corr max err"] = correlation_max_abs_error(real[TARGETS], synthetic[TARGETS])
    sub = [
        ks_statistic(real.loc[real[g] == v, t], synthetic.loc[synthetic[g] == v, t])
        for g in ("marr", "nodeg") for v in (0, 1) for t in TARGETS
    ]
    row["subgroup KS max"] = max(sub)
    return row


def privacy(train: pd.DataFrame, synthetic: pd.DataFrame, holdout: pd.DataFrame, seed: int) -> dict[str, float]:
    """Exact copies of training records and the DCR ratio of one draw (as many records as the holdout)."""
    cols = CONDITIONS + TARGETS
    p = privacy_summary(train[cols], synthetic[cols].iloc[: len(holdout)], holdout[cols], seed=seed, warn=False)
    return {"exact copies": p["exact_copy_rate_synthetic"], "copies held-out": p["exact_copy_rate_holdout"],
            "DCR ratio": p["dcr_ratio"]}


def upper_quantiles(df: pd.DataFrame, top: dict[str, float]) -> dict[str, float]:
    """p50/p90/p99/p99.9 of each target's continuous part (zeros and top code removed), by the
    inverted empirical CDF of :func:`microplex._stats.weighted_quantile` (before issue 17: pandas'
    linear interpolation between order statistics)."""
    out = {}
    for t in TARGETS:
        cont = df[t][(df[t] > 0) & (df[t] < top[t])]
        for q in (0.5, 0.9, 0.99, 0.999):
            out[f"{t} p{q * 100:g}"] = float(weighted_quantile(cont, q)[0])
    return out


_SPEED_CHILD = """
import resource, sys, time
import torch
from microplex import Synthesizer
torch.set_num_threads({threads})
synth = Synthesizer.load(sys.argv[1])
cond = synth.training_conditions_.sample({rows}, replace=True, random_state=0).reset_index(drop=True)
synth.generate(cond.head(20000), seed=0, threads=None)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
out = synth.generate(cond, seed=1, threads=None)
dt = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print({rows} / dt, base / 1024, peak / 1024)
"""


def speed(model_path: Path, rows: int, threads: int) -> tuple[float, float, float]:
    """(rows/s, RSS before generating MiB, peak RSS MiB) of ``generate`` in a fresh process."""
    code = _SPEED_CHILD.format(rows=rows, threads=threads)
    out = subprocess.run([sys.executable, "-c", code, str(model_path)], capture_output=True, text=True, check=True)
    rate, base, peak = map(float, out.stdout.split())
    return rate, base, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--flows", nargs="+", default=["maf", "nsf"])
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    load_start = f"{os.getloadavg()[0]:.1f}"
    data = load_dataset("cps1")
    rows, quantiles, speeds = [], [], []
    for seed in args.seeds:
        order = np.random.default_rng(seed).permutation(len(data))
        cut = int(0.8 * len(data))
        train, holdout = data.iloc[order[:cut]], data.iloc[order[cut:]].reset_index(drop=True)
        masses = {t: (0.0, float(train[t].max())) for t in TARGETS}
        rows.append({"method": "floor (train vs held-out)", "seed": seed, "fit s": np.nan, "epochs": np.nan,
                     **fidelity(holdout, train, masses)})
        top = {t: float(train[t].max()) for t in TARGETS}
        quantiles.append({"source": "held-out", "seed": seed, **upper_quantiles(holdout, top)})
        for flow in args.flows:
            t0 = time.perf_counter()
            synth = Synthesizer(TARGETS, CONDITIONS, flow=flow, verbose=False).fit(train, seed=seed)
            fit_s = time.perf_counter() - t0
            cond = pd.concat([holdout[CONDITIONS]] * args.draws, ignore_index=True)
            synthetic = synth.generate(cond, seed=seed + 100)
            rows.append({"method": f"microplex {flow.upper()}", "seed": seed, "fit s": fit_s,
                         "epochs": len(synth.history_), **fidelity(holdout, synthetic, synth.point_masses_),
                         **privacy(train, synthetic, holdout, seed)})
            quantiles.append({"source": f"microplex {flow.upper()}", "seed": seed, **upper_quantiles(synthetic, top)})
            if seed == args.seeds[0]:
                with tempfile.TemporaryDirectory() as tmp:
                    path = Path(tmp) / "m.mpx"
                    synth.save(path)
                    for threads in (1, 2):
                        rate, base, peak = speed(path, args.rows, threads)
                        speeds.append({"method": f"microplex {flow.upper()}", "threads": threads,
                                       "rows": args.rows, "rows/s": rate, "RSS before MiB": base,
                                       "peak RSS MiB": peak})
            print(rows[-1], flush=True)

    table = pd.DataFrame(rows)
    metric_cols = [c for c in table.columns if c not in ("method", "seed")]
    mean = table.groupby("method", sort=False)[metric_cols].mean()
    worst = table.groupby("method", sort=False)[metric_cols].max()
    bars = {"KS": 0.05, "zero err": 0.025, "top err": 0.025, "corr max err": 0.05, "subgroup KS max": 0.08}
    text = [
        "# Synthesizer on cps1 earnings", "",
        f"Command: `python benchmarks/bench_synthesizer.py --seeds {' '.join(map(str, args.seeds))} "
        f"--draws {args.draws} --rows {args.rows}`  ",
        f"microplex {__version__}, torch {torch.__version__}, Python {platform.python_version()}, "
        f"{platform.machine()}, {torch.get_num_threads()} torch threads, default Synthesizer settings "
        "(3 transforms, hidden (32, 32), early stopping on a 10% validation split).  ",
        f"Protocol: 80/20 split per seed, {args.draws} synthetic draws per held-out record, compared "
        "with the held-out records. The floor row compares the training records with the held-out "
        "records. Bars: " + ", ".join(f"{k} <= {v}" for k, v in bars.items()) + ".", "",
        "## Worst split (max over seeds)", "", worst.to_markdown(floatfmt=".3f"), "",
        "## Mean over splits", "", mean.to_markdown(floatfmt=".3f"), "",
        "## Every split", "", table.to_markdown(index=False, floatfmt=".3f"), "",
        "## Tails: quantiles of the continuous part (zeros and top code removed), mean over splits", "",
        pd.DataFrame(quantiles).groupby("source", sort=False).mean(numeric_only=True).drop(columns="seed")
        .T.to_markdown(floatfmt=".0f"), "",
        "## Generation speed (fresh process, `generate` on resampled training conditions)", "",
        pd.DataFrame(speeds).to_markdown(index=False, floatfmt=",.0f"), "",
        f"Peak RSS of this benchmark process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB. "
        f"Load average at the start / end of the run: {load_start} / {os.getloadavg()[0]:.1f} "
        "(2-core machine; a load average near 2 or above means other jobs shared it, and the wall times are then "
        "upper bounds).",
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(tidy("\n".join(text)))
    print("\n".join(text))


if __name__ == "__main__":
    main()
