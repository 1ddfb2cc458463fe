"""Training-schedule benchmark: how many epochs should ``epochs="auto"`` run?

Protocol (as ``bench_heaps.py``): an 80/20 split by ``numpy.random.default_rng(seed)``
permutation; ``microplex.Synthesizer`` with its defaults (heaps on, ``validation_fraction=0``:
every epoch runs and the learning rate decays to 0 along a cosine) is fitted on the training rows
for ``round(scale * 5900 / sqrt(n_train))`` epochs and generates one record per held-out condition
row (weighted by the held-out weights on eusilc). Scored against the held-out rows: worst KS over
the targets, heap/point-mass share error (training values carrying >= 0.3% of the records),
correlation error (targets against every numeric column), exact-copy rate and DCR ratio against
the training rows. The floor is a random training subset of the held-out size.

``scale=1`` is 5,900 / sqrt(n) epochs; the library's ``"auto"`` is ``4,400 / sqrt(n)`` (scale 0.75),
chosen from these runs (see ``benchmarks/results/schedule.md``).

Usage
-----
    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/bench_schedule.py --datasets acs12 --seeds 0 1 2 \
        --configs floor scale=0.5 scale=1
    ... --report-only                       # rebuild the markdown from the raw runs
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_heaps import load_weighted as load  # noqa: E402
from bench_heaps import score  # noqa: E402
from bench_heaps import run_grid  # noqa: E402
from bench_heaps import split  # noqa: E402

RAW = ROOT / "benchmarks" / "results" / "raw" / "schedule.jsonl"
OUT = ROOT / "benchmarks" / "results" / "schedule.md"
SCALE = 5900.0


def run_one(dataset: str, seed: int, config: str) -> dict:
    from microplex import Synthesizer

    df, targets, conds, wcol = load(dataset)
    train, holdout = split(df, seed)
    rec = {"dataset": dataset, "seed": seed, "config": config, "n_train": len(train)}
    if config == "floor":
        sub = train.iloc[np.random.default_rng(seed + 1).choice(len(train), len(holdout), replace=False)]
        rec.update(score(train, holdout, sub.reset_index(drop=True), targets, conds, wcol))
        rec["dcr_ratio"] = float("nan")  # a subset of the training rows: trivially 0
        return rec
    if config == "auto":
        epochs = "auto"
    else:
        kind, val = config.split("=")
        epochs = max(1, round(float(val) * SCALE / math.sqrt(len(train)))) if kind == "scale" else int(val)
    synth = Synthesizer(targets, conds, validation_fraction=0.0, verbose=False)
    extra = [wcol] if wcol else []
    t0 = time.perf_counter()
    synth.fit(train[conds + targets + extra], weight_col=wcol, epochs=epochs, seed=seed)
    rec["fit_s"] = time.perf_counter() - t0
    rec["epochs_run"] = int(len(synth.history_))
    out = synth.generate(holdout[conds + extra], seed=seed + 100)
    rec.update(score(train, holdout, out, targets, conds, wcol))
    return rec


def report() -> None:
    rows = [json.loads(line) for line in RAW.read_text().splitlines() if line.strip()]
    df = pd.DataFrame(rows).drop_duplicates(["dataset", "seed", "config"], keep="last")
    lines = ["# Training schedule: epochs of the cosine schedule against data size", "",
             "Command: `OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/bench_schedule.py --datasets D --seeds 0 1 2 "
             "--configs floor scale=0.25 scale=0.5 scale=1 scale=2` (raw: `benchmarks/results/raw/schedule.jsonl`; "
             "this file: `--report-only`).", "",
             "`scale=s`: `round(s * 5900 / sqrt(n_train))` epochs, no validation split, cosine decay, heaps on "
             "(library defaults otherwise). The library's `epochs=\"auto\"` is scale 0.75. Means over the seeds; "
             "`x floor`: worst KS over the floor's on the same seeds. Fit seconds were taken on a 2-core machine "
             "shared with 4-6 other jobs (load 6-10): not timings.", ""]
    order = {"floor": 0}
    for dataset, g in df.groupby("dataset", sort=False):
        n = int(g["n_train"].iloc[0])
        lines += [f"## {dataset} ({n:,} training rows)", "",
                  "| config | epochs | seeds | worst KS | x floor | heap share err | corr err | exact copies | holdout copies | DCR ratio (min) | fit s |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        fl = g[g.config == "floor"].set_index("seed")
        def key(c: str) -> tuple:
            kind, _, val = c.partition("=")
            try:
                return order.get(c, 1), kind, float(val)
            except ValueError:
                return order.get(c, 1), kind, 0.0

        configs = sorted(g.config.unique(), key=key)
        for c in configs:
            m = g[g.config == c]
            seeds = sorted(set(m.seed) & set(fl.index))
            if not seeds:
                continue
            m = m.set_index("seed").loc[seeds]
            f = fl.loc[seeds]
            ep = "" if c == "floor" else f"{int(m.epochs_run.iloc[0])}"
            dcr = "" if c == "floor" else f"{m.dcr_ratio.min():.3f}"
            copy = "" if c == "floor" else f"{m['copy'].mean():.3f}"
            fit = "" if c == "floor" else f"{m.fit_s.mean():.0f}"
            lines.append(f"| {c} | {ep} | {', '.join(map(str, seeds))} | {m.ks_max.mean():.4f} | "
                         f"{m.ks_max.mean() / f.ks_max.mean():.2f} | {m.heap_err.mean():.4f} | {m.corr_err.mean():.3f} | "
                         f"{copy} | {f.copy_nat.mean():.3f} | {dcr} | {fit} |")
        lines.append("")
    marker = "<!-- findings: written by hand, kept by --report-only -->"
    findings = OUT.read_text().split(marker, 1)[1] if OUT.exists() and marker in OUT.read_text() else "\n"
    OUT.write_text("\n".join(lines) + "\n" + marker + findings)


def main() -> None:
    run_grid(run_one, report, RAW, ["workinghours", "acs12", "eusilc", "cps1", "cps1988"], [0, 1, 2],
             ["floor", "scale=0.25", "scale=0.5", "scale=1", "scale=2"])


if __name__ == "__main__":
    main()
