"""Missing values in conditions and in fusion: is "no value" told apart from every value?

acs12 (the bundled extract; adults with an income, i.e. rows with income, age, gender and edu given):
``hrs_work`` is missing for those not working (about half).

Part 1, synthesis: target ``income``, conditions ``hrs_work``, ``age``, ``gender``, ``edu``. Per seed an 80/20
split by ``numpy.random.default_rng(seed)``; each variant generates one record per held-out condition row:

- ``microplex (default)``: the documented default call on the data as given (a missing hour is an indicator input);
- ``hours filled with 0``: the same call after ``hrs_work.fillna(0)`` (what a user did when missing values in a
  numeric condition were refused);
- ``floor (real vs real)``: the training rows against the held-out rows.

Scores: ``income KS``; ``KS by hours`` and ``zero share err by hours``: the larger over the two groups (hours
missing, hours given); exact copies and DCR ratio (``microplex.evaluation.privacy``) on all five columns.

Part 2, fusion: the records split in half by ``default_rng(seed)``; the base keeps ``age``, ``gender``,
``employment`` and ``income``, the donor ``age``, ``gender``, ``employment`` and ``hrs_work`` (employment is
missing for some records of both). ``fuse(..., seed=seed)`` at its defaults imputes ``hrs_work`` for the base; it
is scored against the base's own hours (never shown to fuse): the missing share's error overall and the largest
by employment group, and the KS of the values given, on the base records with employment given.
``complete records only`` is what fuse did before: it left out the donor's records with a missing value (everyone
without hours) and refused base records with one (employment missing), so it fuses the complete records of both;
``fuse (default), all base records`` scores the default on every base record. The floor scores the donor's own
hours (records with employment given) against the base's.

Usage
-----
    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/bench_condition_missing.py --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp

from microplex import Synthesizer
from microplex.datasets import load_dataset
from microplex.evaluation.privacy import dcr, exact_copy_rate
from microplex.fusion import Source, fuse

from tidy_results import mean_and_worst  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

CONDITIONS = ["hrs_work", "age", "gender", "edu"]
COLUMNS = ["income", *CONDITIONS]


def _ks(a: pd.Series, b: pd.Series) -> float:
    a, b = a.dropna(), b.dropna()
    return float(ks_2samp(a, b).statistic) if len(a) and len(b) else np.nan


def synthesis_scores(other: pd.DataFrame, hold: pd.DataFrame, train: pd.DataFrame, synthetic: bool) -> dict[str, float]:
    o_off, h_off = other["hrs_work"].isna().to_numpy(), hold["hrs_work"].isna().to_numpy()
    out = {"income KS": _ks(other["income"], hold["income"])}
    out["income KS by hours"] = max(_ks(other["income"][o_off == g], hold["income"][h_off == g]) for g in (True, False))
    out["zero share err by hours"] = max(abs((other["income"][o_off == g] == 0).mean() - (hold["income"][h_off == g] == 0).mean())
                                         for g in (True, False))
    out["exact copies"] = exact_copy_rate((other if synthetic else hold)[COLUMNS], train[COLUMNS])
    out["DCR ratio"] = (float(np.median(dcr(other[COLUMNS], train[COLUMNS])) / np.median(dcr(hold[COLUMNS], train[COLUMNS])))
                        if synthetic else np.nan)
    return out


def fusion_scores(fused: pd.Series, truth: pd.Series, employment: pd.Series,
                  fused_employment: pd.Series | None = None) -> dict[str, float]:
    group = employment.fillna("(missing)")
    other = group if fused_employment is None else fused_employment.fillna("(missing)")
    by = (fused.isna().groupby(other).mean() - truth.isna().groupby(group).mean()).abs()
    return {"hours missing err": abs(fused.isna().mean() - truth.isna().mean()),
            "hours missing err by employment": float(by.max()), "hours KS given": _ks(fused, truth)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    acs = load_dataset("acs12").dropna(subset=["income", "age", "gender", "edu"]).reset_index(drop=True)
    rows, fused_rows, fit_s = [], [], []
    for seed in args.seeds:
        test = np.random.default_rng(seed).random(len(acs)) < 0.2
        train, hold = acs[~test], acs[test]
        rows.append({"seed": seed, "who": "floor (real vs real)", **synthesis_scores(train, hold, train, False)})
        for who, fill in (("microplex (default)", False), ("hours filled with 0", True)):
            data = train.assign(hrs_work=train["hrs_work"].fillna(0)) if fill else train
            given = hold.assign(hrs_work=hold["hrs_work"].fillna(0)) if fill else hold
            start = time.perf_counter()
            synth = Synthesizer(["income"], CONDITIONS, verbose=False).fit(data, seed=seed)
            if not fill:
                fit_s.append(time.perf_counter() - start)
            drawn = synth.generate(given[CONDITIONS], seed=seed + 100)
            drawn["hrs_work"] = hold["hrs_work"].to_numpy()  # scored by the held-out row's hours (missing or not)
            rows.append({"seed": seed, "who": who, **synthesis_scores(drawn, hold, train, True)})

        half = np.random.default_rng(seed).random(len(acs)) < 0.5
        base = acs[half][["age", "gender", "employment", "income"]].reset_index(drop=True)
        truth = acs[half]["hrs_work"].reset_index(drop=True)
        donor = acs[~half][["age", "gender", "employment", "hrs_work"]].reset_index(drop=True)
        known = base["employment"].notna().to_numpy()
        fused_rows.append({"seed": seed, "who": "floor (donor vs base, real)", **fusion_scores(
            donor["hrs_work"][donor["employment"].notna()], truth[known].reset_index(drop=True),
            base["employment"][known].reset_index(drop=True), donor["employment"][donor["employment"].notna()])})
        for who, b, d in (("fuse (default)", base, donor),
                          ("complete records only", base[known], donor.dropna())):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the shared-variable comparison's notes
                result = fuse([Source(b.reset_index(drop=True), "base"), Source(d.reset_index(drop=True), "donor")],
                              base="base", seed=seed)
            fused = result.data["hrs_work"].to_numpy()
            if len(b) == len(base):  # scored on the base records with employment given, as the other
                fused_rows.append({"seed": seed, "who": who + ", all base records",
                                   **fusion_scores(pd.Series(fused), truth, base["employment"])})
                fused = fused[known]
            fused_rows.append({"seed": seed, "who": who, **fusion_scores(
                pd.Series(fused), truth[known].reset_index(drop=True), base["employment"][known].reset_index(drop=True))})
    for name, frame in (("synthesis", pd.DataFrame(rows)), ("fusion", pd.DataFrame(fused_rows))):
        table = mean_and_worst(frame)
        if name == "synthesis":
            print(f"acs12 adults with an income, {len(acs):,} records ({acs['hrs_work'].isna().mean():.0%} without "
                  f"hours), seeds {args.seeds}; fit {np.mean(fit_s):.1f} s on average; "
                  f"load average {os.getloadavg()[0]:.2f}")
        print(f"\n{name}\n{table.to_markdown()}")


if __name__ == "__main__":
    main()
