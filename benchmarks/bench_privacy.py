"""Privacy benchmark (issue 19): attacks on the default (conditional) and the fully synthetic release.

Protocol: cps1, an 80/20 split by ``numpy.random.default_rng(seed)`` permutation; a
``microplex.Synthesizer`` (library defaults; targets re74, re75, re78; conditions age, educ,
black, hisp, marr, nodeg) is fitted on the training rows, once with ``condition_model=False``
(``sample`` resamples real training condition rows) and once with ``condition_model=True``
(conditions drawn from a model), and releases ``sample(len(train), seed=seed + 1)``. Scored with
``evaluate(train, release, holdout_df=holdout, attacks=True)``:

- ``auc``: membership-inference AUC (0.5 = members not told apart from holdout records);
- ``disco``/``attr``: attribute disclosure of each earnings variable from the six conditions
  (synthpop's DiSCO and modal attribution, numeric columns in 5 groups), beside the holdout's
  (``_h``), the baseline any population file gives; the worst of the three variables is shown;
- ``cond_copy``: exact-copy rate of the released condition tuples against the training tuples,
  beside the holdout's (natural) rate; ``copy``: the same for whole records; ``dcr_ratio``.

Usage
-----
    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/bench_privacy.py --seeds 0 1
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
TARGETS = ["re74", "re75", "re78"]
CONDITIONS = ["age", "educ", "black", "hisp", "marr", "nodeg"]


def run(seed: int) -> list[dict]:
    from microplex import Synthesizer
    from microplex.datasets import load_dataset
    from microplex.evaluation import evaluate, exact_copy_rate

    df = load_dataset("cps1")[CONDITIONS + TARGETS]
    perm = np.random.default_rng(seed).permutation(len(df))
    cut = int(round(0.8 * len(df)))
    train, holdout = df.iloc[perm[:cut]].reset_index(drop=True), df.iloc[perm[cut:]].reset_index(drop=True)
    rows = []
    for mode, flag in (("conditional (default)", False), ("fully synthetic", True)):
        synth = Synthesizer(TARGETS, CONDITIONS, condition_model=flag, verbose=False).fit(train, seed=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            release = synth.sample(len(train), seed=seed + 1)[CONDITIONS + TARGETS]
            rep = evaluate(train, release, holdout_df=holdout, conditions=CONDITIONS, pmse=False, attacks=True,
                           seed=seed)
        ad = rep.attacks["attribute_disclosure"]
        rows.append({
            "seed": seed, "mode": mode, "auc": rep.attacks["membership_auc"],
            "disco": max(ad[v]["disco_synthetic"] for v in TARGETS),
            "disco_h": max(ad[v]["disco_holdout"] for v in TARGETS),
            "attr": max(ad[v]["attribution_synthetic"] for v in TARGETS),
            "attr_h": max(ad[v]["attribution_holdout"] for v in TARGETS),
            "cond_copy": exact_copy_rate(release[CONDITIONS], train[CONDITIONS]),
            "cond_copy_h": exact_copy_rate(holdout[CONDITIONS], train[CONDITIONS]),
            "copy": rep.privacy["exact_copy_rate_synthetic"], "copy_h": rep.privacy["exact_copy_rate_holdout"],
            "dcr_ratio": rep.privacy["dcr_ratio"],
            "ks_max": float(rep.scores.query("metric == 'ks' and subgroup == 'all'")["value"].max()),
        })
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "privacy.md")
    args = parser.parse_args()
    table = pd.DataFrame([r for s in args.seeds for r in run(s)])
    mean = table.drop(columns="seed").groupby("mode", sort=False).mean().reset_index()

    def fmt(t: pd.DataFrame) -> str:
        cells = [[f"{v:.4f}" if isinstance(v, float) else str(v) for v in row] for row in t.itertuples(index=False)]
        lines = ["| " + " | ".join(t.columns) + " |", "|" + "---|" * len(t.columns)]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in cells])

    text = (
        "# Privacy: attacks on the conditional and the fully synthetic release (issue 19)\n\n"
        f"Command: `OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/bench_privacy.py --seeds "
        f"{' '.join(map(str, args.seeds))}` (protocol in the script's docstring; no differential privacy).\n\n"
        f"Means over seeds {args.seeds}:\n\n{fmt(mean)}\n\nPer seed:\n\n{fmt(table)}\n"
    )
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    sys.exit(main())
