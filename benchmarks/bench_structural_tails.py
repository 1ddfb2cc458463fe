"""Structural zeros on a numeric condition's tail: do children get no income when age is a numeric condition?

Two extracts where a target's state changes at an age threshold, the threshold a numeric condition's value and no
category of any condition:

- acs12 (all 2,000 records, unweighted): targets ``income`` (missing below age 15, never from 15 on), ``hrs_work``
  and ``time_to_work`` (missing below 15, often missing from 15 on); conditions ``age``, ``gender``, ``race``;
- eusilc persons (14,827 records, weights ``rb050``): targets ``py010n``, ``py050n``, ``py090n`` (income
  components: missing below age 16, never from 16 on) and ``pl030`` (economic status, likewise); conditions ``age``,
  ``rb090``, ``db040``, ``hsize``.

Per seed an 80/20 split by ``numpy.random.default_rng(seed)``; each variant generates one record per held-out
condition row, three draws per fitted model (scores are their means):

- ``microplex (default)``: the documented default call (``structural_zeros=None``: on without ``epsilon``);
- ``structural_zeros=False``: the same call with the rules turned off (the pattern head's probabilities as learnt);
- ``floor (real vs real)``: training rows of the holdout's size against the held-out rows (three samples).

Scores, against the held-out rows: ``impossible per 1,000``: records in a state that no training record of their age
group (below the threshold, from it on) holds (for the floor, the held-out records' own rate); ``ruled-out
held-out per 1,000``: held-out real records whose state the fitted rules rule out (the price of a rule that real data
break; 0 for the floor and without rules); ``state share err by age``: the largest, over the age groups below the
threshold, from it to 64 and from 65, and the targets, of the error of the missing share and of the zero share
(weighted for eusilc); ``worst KS``: the largest KS over the numeric targets' values given; exact copies and the
ratio of mean DCRs (``microplex.evaluation.privacy``; means: most records repeat another's missing targets and age
exactly, so the median distance is 0) on the numeric targets and age (for the floor, the held-out records'
exact-copy rate).

Usage
-----
    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/bench_structural_tails.py --seeds 0 1 2 3 4
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pandas as pd
import torch
from scipy.stats import ks_2samp

from microplex import Synthesizer
from microplex.datasets import load_dataset
from microplex.evaluation.privacy import dcr, exact_copy_rate

from tidy_results import mean_and_worst  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

DRAWS = 3


def load(name: str) -> tuple[pd.DataFrame, list[str], list[str], str | None, int]:
    """The records, targets, conditions, weight column and the age threshold of the structure."""
    if name == "acs12":
        df = load_dataset("acs12")
        return df, ["income", "hrs_work", "time_to_work"], ["age", "gender", "race"], None, 15
    df = load_dataset("eusilc")
    df = df.assign(db040=df["db040"].astype(str), rb090=df["rb090"].astype(str),
                   pl030=df["pl030"].astype("Int64").astype("string"))
    return df, ["py010n", "py050n", "py090n", "pl030"], ["age", "rb090", "db040", "hsize"], "rb050", 16


def _groups(frame: pd.DataFrame, cut: int) -> np.ndarray:
    age = frame["age"].to_numpy(float)
    return np.where(age < cut, 0, np.where(age < 65, 1, 2))


def _states(frame: pd.DataFrame, targets: list[str]) -> pd.DataFrame:
    """Each target's state: missing, zero (numeric targets), given."""
    out = {}
    for v in targets:
        x = frame[v]
        zero = (pd.to_numeric(x, errors="coerce") == 0).to_numpy() if pd.api.types.is_numeric_dtype(x) else False
        out[v] = np.where(x.isna().to_numpy(), "missing", np.where(zero, "zero", "given"))
    return pd.DataFrame(out)


def scores(other: pd.DataFrame, hold: pd.DataFrame, train: pd.DataFrame, targets: list[str], cut: int,
           weight: str | None, synthetic: bool) -> dict[str, float]:
    s_other, s_hold, s_train = (_states(f, targets) for f in (other, hold, train))
    adult_other, adult_train = (f["age"].to_numpy(float) >= cut for f in (other, train))
    g_other, g_hold = _groups(other, cut), _groups(hold, cut)
    w_hold = hold[weight].to_numpy(float) if weight else np.ones(len(hold))
    # the floor is scored on the held-out records themselves (its training sample holds no such state by construction)
    s_fresh, adult_fresh = (s_other, adult_other) if synthetic else (s_hold, hold["age"].to_numpy(float) >= cut)
    w_fresh = w_hold  # synthetic rows are drawn for the held-out rows, row by row
    impossible = np.zeros(len(s_fresh), dtype=bool)
    for group in (False, True):
        for v in targets:
            seen = set(s_train[v][adult_train == group])
            impossible |= (adult_fresh == group) & ~s_fresh[v].isin(seen).to_numpy()
    err = 0.0
    for g in range(3):
        o, h = g_other == g, g_hold == g
        if not (o.any() and h.any()):
            continue
        for v in targets:
            for state in ("missing", "zero"):
                a = np.average(s_other[v][o] == state, weights=w_hold[o])
                b = np.average(s_hold[v][h] == state, weights=w_hold[h])
                err = max(err, abs(a - b))
    numeric = [v for v in targets if pd.api.types.is_numeric_dtype(hold[v])]
    ks = [ks_2samp(other[v].dropna(), hold[v].dropna()).statistic for v in numeric
          if other[v].notna().any() and hold[v].notna().any()]
    out = {"impossible per 1,000": 1000 * np.average(impossible, weights=w_fresh), "state share err by age": err,
           "worst KS": float(max(ks))}
    cols = numeric + ["age"]
    a, b, c = (f[cols].astype(float).fillna(-1.0) for f in (other, hold, train))
    out["exact copies"] = exact_copy_rate(a if synthetic else b, c)
    # means, not medians: most records repeat another's missing targets and age exactly (median distance 0)
    out["DCR ratio (means)"] = float(np.mean(dcr(a, c)) / np.mean(dcr(b, c))) if synthetic else np.nan
    return out


def ruled_out_held_out(synth: Synthesizer, hold: pd.DataFrame, weight: str | None) -> float:
    """Held-out real records (of a pattern seen in training) whose pattern the fitted rules rule out, per 1,000."""
    if synth.structure_ is None:
        return 0.0
    c = torch.as_tensor(synth.condition_encoder_.transform(hold[list(synth.condition_vars)]))
    lookup = {tuple(p): i for i, p in enumerate(synth.patterns_.tolist())}
    pattern = np.array([lookup.get(tuple(s), -1) for s in synth._discrete_states(hold).tolist()])
    known = pattern >= 0
    with torch.inference_mode():
        lp = synth.model_.pattern_log_prob(c[known]).numpy()
    ruled = np.isinf(lp[np.arange(known.sum()), pattern[known]])
    w = hold[weight].to_numpy(float)[known] if weight else np.ones(known.sum())
    return 1000 * float((w * ruled).sum() / w.sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--datasets", nargs="+", default=["acs12", "eusilc"], choices=["acs12", "eusilc"])
    args = parser.parse_args()
    for name in args.datasets:
        data, targets, conditions, weight, cut = load(name)
        cols = targets + conditions + ([weight] if weight else [])
        rows, fit_s, rules = [], [], []
        for seed in args.seeds:
            test = np.random.default_rng(seed).random(len(data)) < 0.2
            train, hold = data[~test].reset_index(drop=True), data[test].reset_index(drop=True)
            rng = np.random.default_rng(seed + 1000)
            floor = [scores(train.iloc[rng.choice(len(train), len(hold), replace=False)], hold, train, targets, cut,
                            weight, False) for _ in range(DRAWS)]
            rows.append({"seed": seed, "who": "floor (real vs real)", **pd.DataFrame(floor).mean().to_dict(),
                         "ruled-out held-out per 1,000": 0.0})
            for who, flag in (("microplex (default)", None), ("structural_zeros=False", False)):
                start = time.perf_counter()
                synth = Synthesizer(targets, conditions, structural_zeros=flag, verbose=False)
                synth.fit(train[cols], weight_col=weight, seed=seed)
                fit_s.append(time.perf_counter() - start)
                draws = [scores(synth.generate(hold[conditions], seed=seed + 100 + k), hold, train, targets, cut,
                                weight, True) for k in range(DRAWS)]
                rows.append({"seed": seed, "who": who, **pd.DataFrame(draws).mean().to_dict(),
                             "ruled-out held-out per 1,000": ruled_out_held_out(synth, hold, weight)})
                if flag is None:
                    table = synth.structural_zeros_
                    rules.append(sorted({f"{c} {v}" for c, v in zip(table["condition"], table["value"], strict=True)}))
        frame = pd.DataFrame(rows)
        out = mean_and_worst(frame)
        print(f"\n{name}, {len(data):,} records, threshold age {cut}, seeds {args.seeds}, {DRAWS} draws per model; "
              f"fit {np.mean(fit_s):.1f} s on average; load average {os.getloadavg()[0]:.2f}")
        for seed, cells in zip(args.seeds, rules, strict=True):
            print(f"  seed {seed}: cells with rules {cells}")
        print(f"\n{out.to_markdown()}")


if __name__ == "__main__":
    main()
