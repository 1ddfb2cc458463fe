"""Missing values benchmark: does the missing state of a numeric target reproduce who has no value?

acs12 (the bundled extract; rows with a missing employment, age or gender dropped): targets ``hrs_work`` (missing
for those not working), ``time_to_work`` (missing for those who do not commute) and ``income``; conditions
``employment``, ``age`` and ``gender``. Per seed, an 80/20 split by ``numpy.random.default_rng(seed)``; the
documented default call (``Synthesizer(targets, conditions).fit(train, seed=seed)``) generates one record per
held-out condition row. Scored against the held-out rows:

- ``miss err``: absolute error of a target's missing share; ``by employment``: the largest over the employment
  groups (the unemployed hold about 20 held-out records); ``joint``: of the share missing both hours and commute;
- ``KS given``: KS statistic of the values given;
- ``exact copies``: share of records (targets and conditions) equal to a training record; ``DCR ratio``: median
  distance to the closest training record, synthetic over held-out (``microplex.evaluation.privacy``).

The floor (real vs real) scores the training rows against the held-out rows the same way (its exact-copy rate
is that of the held-out rows). Before missing values were a state, ``fit`` refused these targets, and dropping
the rows with a missing value dropped everyone out of work (every missing share 0).

Usage
-----
    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/bench_missing.py --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp

from microplex import Synthesizer
from microplex.datasets import load_dataset
from microplex.evaluation.privacy import dcr, exact_copy_rate

from tidy_results import mean_and_worst  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

TARGETS = ["hrs_work", "time_to_work", "income"]
CONDITIONS = ["employment", "age", "gender"]


def scores(other: pd.DataFrame, hold: pd.DataFrame, train: pd.DataFrame, synthetic: bool) -> dict[str, float]:
    out: dict[str, float] = {}
    for t in TARGETS[:2]:
        out[f"{t} miss err"] = abs(other[t].isna().mean() - hold[t].isna().mean())
        by_hold = hold[t].isna().groupby(hold["employment"]).mean()
        by_other = other[t].isna().groupby(other["employment"]).mean()
        out[f"{t} miss err by employment"] = float((by_other - by_hold).abs().max())
    both = {n: (f["hrs_work"].isna() & f["time_to_work"].isna()).mean() for n, f in (("o", other), ("h", hold))}
    out["joint miss err"] = abs(both["o"] - both["h"])
    for t in TARGETS:
        out[f"{t} KS given"] = ks_2samp(other[t].dropna(), hold[t].dropna()).statistic
    cols = TARGETS + CONDITIONS
    out["exact copies"] = exact_copy_rate((other if synthetic else hold)[cols], train[cols])
    out["DCR ratio"] = (float(np.median(dcr(other[cols], train[cols])) / np.median(dcr(hold[cols], train[cols])))
                        if synthetic else np.nan)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    acs = load_dataset("acs12").dropna(subset=CONDITIONS).reset_index(drop=True)
    rows, fit_s = [], []
    for seed in args.seeds:
        test = np.random.default_rng(seed).random(len(acs)) < 0.2
        train, hold = acs[~test], acs[test]
        start = time.perf_counter()
        synth = Synthesizer(TARGETS, CONDITIONS, verbose=False).fit(train, seed=seed)
        fit_s.append(time.perf_counter() - start)
        synthetic = synth.generate(hold[CONDITIONS], seed=seed + 100)
        rows.append({"seed": seed, "who": "floor (real vs real)", **scores(train, hold, train, False)})
        rows.append({"seed": seed, "who": "microplex (default)", **scores(synthetic, hold, train, True)})
    df = pd.DataFrame(rows)
    table = mean_and_worst(df)
    print(f"acs12, {len(acs):,} records, seeds {args.seeds}; fit {np.mean(fit_s):.1f} s on average; "
          f"load average {os.getloadavg()[0]:.2f}")
    print(table.to_markdown())


if __name__ == "__main__":
    main()
