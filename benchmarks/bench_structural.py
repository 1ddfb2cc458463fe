"""Structural zeros: are states that a condition's category never holds kept out of its draws?

acs12 (the bundled extract; rows with income, edu and employment given, as in bench_synthesizers): targets
``income``, ``hrs_work`` (missing for most of those not working, never for the employed) and ``time_to_work``
(missing for everyone not employed), conditions ``age``, ``gender``, ``edu``, ``employment``, ``race``; the
missing values are kept (a state of their own). Per seed an 80/20 split by ``numpy.random.default_rng(seed)``; each
variant generates one record per held-out condition row, three draws per fitted model (scores are their means):

- ``microplex (default)``: the documented default call (``structural_zeros=None``: on without ``epsilon``);
- ``structural_zeros=False``: the same call with the rules turned off (the pattern head's probabilities as learnt);
- ``floor (real vs real)``: training rows of the holdout's size against the held-out rows (three samples).

Scores, against the held-out rows: ``impossible per 1,000``: records in a state that no training record of their
employment group holds (a commute time for the unemployed or those out of the labour force, no hours for the
employed; for the floor, the held-out records' own rate); ``state share err by employment``: the largest, over
employment groups and the three targets, of the error of the missing share (hours, commute) or zero share (income);
``worst KS``: the largest KS over the targets' values given; ``missing share err``: the larger over hours and
commute; exact copies and DCR ratio (``microplex.evaluation.privacy``) on the numeric columns and employment (for the
floor, the held-out records' exact-copy rate).

Usage
-----
    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/bench_structural.py --seeds 0 1 2 3 4
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

TARGETS = ["income", "hrs_work", "time_to_work"]
CONDITIONS = ["age", "gender", "edu", "employment", "race"]
PRIVACY = ["income", "hrs_work", "time_to_work", "age", "employment"]
DRAWS = 3


def _states(frame: pd.DataFrame) -> pd.DataFrame:
    """Each target's state: income zero, hours and commute missing."""
    return pd.DataFrame({"income": frame["income"].to_numpy() == 0, "hrs_work": frame["hrs_work"].isna().to_numpy(),
                         "time_to_work": frame["time_to_work"].isna().to_numpy()})


def scores(other: pd.DataFrame, hold: pd.DataFrame, train: pd.DataFrame, synthetic: bool) -> dict[str, float]:
    s_other, s_hold, s_train = _states(other), _states(hold), _states(train)
    g_other, g_hold, g_train = (f["employment"].to_numpy() for f in (other, hold, train))
    # the floor's "impossible" rate is the held-out records' own (its training sample has none by construction)
    s_fresh, g_fresh = (s_other, g_other) if synthetic else (s_hold, g_hold)
    impossible = np.zeros(len(s_fresh), dtype=bool)
    err = 0.0
    for group in np.unique(g_train):
        o, h, t = g_other == group, g_hold == group, g_train == group
        for v in TARGETS:
            for state in (True, False):
                if not (s_train[v][t] == state).any():  # no training record of the group holds the state
                    impossible |= (g_fresh == group) & (s_fresh[v].to_numpy() == state)
            if o.any() and h.any():
                err = max(err, abs(s_other[v][o].mean() - s_hold[v][h].mean()))
    ks = [ks_2samp(other[v].dropna(), hold[v].dropna()).statistic for v in TARGETS]
    out = {"impossible per 1,000": 1000 * impossible.mean(), "state share err by employment": err,
           "worst KS": float(max(ks)),
           "missing share err": max(abs(other[v].isna().mean() - hold[v].isna().mean()) for v in TARGETS[1:])}
    a, b, c = (f[PRIVACY].fillna(-1.0) for f in (other, hold, train))
    out["exact copies"] = exact_copy_rate(a if synthetic else b, c)  # the floor: held-out records' own rate
    out["DCR ratio"] = float(np.median(dcr(a, c)) / np.median(dcr(b, c))) if synthetic else np.nan
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    args = parser.parse_args()
    acs = load_dataset("acs12").dropna(subset=["income", "edu", "employment"]).reset_index(drop=True)
    rows, fit_s = [], []
    for seed in args.seeds:
        test = np.random.default_rng(seed).random(len(acs)) < 0.2
        train, hold = acs[~test].reset_index(drop=True), acs[test].reset_index(drop=True)
        rng = np.random.default_rng(seed + 1000)
        floor = [scores(train.iloc[rng.choice(len(train), len(hold), replace=False)], hold, train, False)
                 for _ in range(DRAWS)]
        rows.append({"seed": seed, "who": "floor (real vs real)", **pd.DataFrame(floor).mean().to_dict()})
        for who, flag in (("microplex (default)", None), ("structural_zeros=False", False)):
            start = time.perf_counter()
            synth = Synthesizer(TARGETS, CONDITIONS, structural_zeros=flag, verbose=False).fit(train, seed=seed)
            fit_s.append(time.perf_counter() - start)
            draws = [scores(synth.generate(hold[CONDITIONS], seed=seed + 100 + k), hold, train, True)
                     for k in range(DRAWS)]
            rows.append({"seed": seed, "who": who, **pd.DataFrame(draws).mean().to_dict()})
    frame = pd.DataFrame(rows)
    table = mean_and_worst(frame)
    groups = acs["employment"].value_counts().to_dict()
    print(f"acs12, {len(acs):,} records (employment: {groups}), seeds {args.seeds}, {DRAWS} draws per model; "
          f"fit {np.mean(fit_s):.1f} s on average; load average {os.getloadavg()[0]:.2f}")
    print(f"\n{table.to_markdown()}")


if __name__ == "__main__":
    main()
