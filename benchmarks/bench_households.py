"""Benchmark of HouseholdSynthesizer on EU-SILC (issue 7).

For each seed: fit on a random 80% of the households, sample as many households as are held
out, and compare with the held-out 20%. Every figure is reported beside its real-vs-real floor
(the training households against the held-out households) and a broken baseline (the training
persons shuffled across households of the same sizes, i.e. persons drawn independently of their
household). All distributions are weighted by the household weight ``db090``.

Usage::

    PYTHONPATH=src nice -n 5 python benchmarks/bench_households.py --seeds 0 1 2 --out benchmarks/results/households.md

``--call documented`` benchmarks the exact call of ``docs/households.md`` instead (fewer
variables, no ``geography=``, no ``size_var=``, no schema); its equivalized income is then built
from the modelled income components only, on the real and the synthetic side alike::

    PYTHONPATH=src python benchmarks/bench_households.py --call documented --seeds 0 1 2 --out benchmarks/results/households_documented.md
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd

from microplex import HouseholdSynthesizer, VariableSpec
from microplex.datasets import load_dataset
from microplex.evaluation import privacy_summary
from microplex.households.diagnostics import (
    gini,
    household_summary,
    ks_distance,
    structural_violations,
    tv_distance,
)
from tidy_results import tidy  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

HID, W = "db030", "db090"
PY = ["py010n", "py050n", "py090n", "py100n", "py110n", "py120n", "py130n", "py140n"]
HY = ["hy040n", "hy050n", "hy070n", "hy080n", "hy090n", "hy110n"]
HY_MINUS = ["hy130n", "hy145n"]
HOUSEHOLD_VARS = ["db040", "hsize", *HY, *HY_MINUS]
PERSON_VARS = ["age", "rb090", "pl030", "pb220a", *PY]


#: Household components drawn after the persons (``late_household_vars``); none by default,
#: ``--late hy050n hy130n hy145n`` tries some (see the results file).
LATE: list[str] = []


#: The call of docs/households.md, verbatim (``--call documented``).
DOCUMENTED = dict(
    household_vars=["db040", "hsize", "hy040n", "hy050n"],
    person_vars=["age", "rb090", "pl030", "py010n", "py050n"],
    household_id="db030", household_weight="db090", age_var="age",
)
CALL = "tuned"


def configure(call: str) -> None:
    """Selects the benchmarked call: its variables become the ones the metrics read."""
    global CALL, PY, HY, HY_MINUS, HOUSEHOLD_VARS, PERSON_VARS
    CALL = call
    if call == "documented":
        HOUSEHOLD_VARS, PERSON_VARS = list(DOCUMENTED["household_vars"]), list(DOCUMENTED["person_vars"])
        PY = [c for c in PERSON_VARS if c.startswith("py")]
        HY, HY_MINUS = [c for c in HOUSEHOLD_VARS if c.startswith("hy")], []


def make_synthesizer(epochs: int | None = None, late: list[str] | None = None, **options) -> HouseholdSynthesizer:
    """The configuration benchmarked; ``epochs`` (None: the package default) and ``options`` override defaults."""
    if epochs is not None:
        options["epochs"] = epochs
    if CALL == "documented":
        return HouseholdSynthesizer(**DOCUMENTED, **options)
    return HouseholdSynthesizer(
        HOUSEHOLD_VARS, PERSON_VARS, HID, household_weight=W, person_id="rb030", size_var="hsize",
        geography="db040", late_household_vars=LATE if late is None else late, age_var="age",
        schema={"pl030": VariableSpec(kind="categorical")}, **options,
    )


def split(df: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Random 80/20 split of households."""
    ids = df[HID].unique()
    rng = np.random.default_rng(seed)
    test_ids = rng.choice(ids, size=int(round(0.2 * len(ids))), replace=False)
    held = df[HID].isin(test_ids)
    return df[~held].reset_index(drop=True), df[held].reset_index(drop=True)


def shuffled(train: pd.DataFrame, n_households: int, seed: int) -> pd.DataFrame:
    """Broken baseline: households resampled, persons drawn independently of their household."""
    rng = np.random.default_rng(seed)
    hh = train.groupby(HID).first().reset_index()
    hh = hh.sample(n_households, replace=True, weights=hh[W], random_state=seed).reset_index(drop=True)
    hh[HID] = np.arange(1, len(hh) + 1)
    donors = train.sample(int(hh.hsize.sum()), replace=True, weights=train[W], random_state=seed)
    persons = donors[PERSON_VARS].reset_index(drop=True)
    persons[HID] = np.repeat(hh[HID].to_numpy(), hh.hsize.to_numpy())
    persons = persons.iloc[rng.permutation(len(persons))]
    return persons.merge(hh[[HID, *HOUSEHOLD_VARS, W]], on=HID)


def summarize(persons: pd.DataFrame) -> pd.DataFrame:
    """Per-household summary joined to the household variables (persons carry them)."""
    s = household_summary(
        persons, HID, "age", earner_var="py010n", person_income=PY, household_income=HY,
        household_deductions=HY_MINUS,
    )
    first = persons.groupby(HID, sort=False)[["db040", "hsize", W]].first()
    return s.join(first)


def household_records(persons: pd.DataFrame) -> pd.DataFrame:
    """One record per household for privacy: its summary and household variables."""
    records = summarize(persons).drop(columns=[W]).join(persons.groupby(HID, sort=False)[[*HY, *HY_MINUS]].first())
    return records.reset_index(drop=True).astype({"db040": str})


def privacy(train: pd.DataFrame, synthetic: pd.DataFrame, held: pd.DataFrame) -> dict[str, float]:
    """Distance to the closest training household: synthetic against held-out households."""
    return privacy_summary(household_records(train), household_records(synthetic), household_records(held), warn=False)


def metrics(a: pd.DataFrame, b: pd.DataFrame) -> dict[str, float]:
    """Distances between two person frames (household variables repeated on every person)."""
    sa, sb = summarize(a), summarize(b)
    out = {
        "hsize_tv": tv_distance(sa.hsize, sb.hsize, sa[W], sb[W]),
        "region_tv": tv_distance(sa.db040, sb.db040, sa[W], sb[W]),
        "age_ks": ks_distance(a.age, b.age, a[W], b[W]),
    }
    ga, gb = sa[sa["size"] >= 2], sb[sb["size"] >= 2]
    out["age_gap_ks"] = ks_distance(ga.age_gap, gb.age_gap, ga[W], gb[W])
    for label, lo, hi in (("0", 0, 0), ("1", 1, 1), ("2+", 2, 99)):
        share_a = np.average(sa.earners.between(lo, hi), weights=sa[W])
        share_b = np.average(sb.earners.between(lo, hi), weights=sb[W])
        out[f"earners_{label}_diff"] = float(abs(share_a - share_b))
    out["eq_income_ks"] = ks_distance(sa.eq_income, sb.eq_income, sa[W], sb[W])
    out["gini_a"], out["gini_b"] = gini(sa.eq_income, sa[W]), gini(sb.eq_income, sb[W])
    out["gini_diff"] = abs(out["gini_a"] - out["gini_b"])
    out["violations"] = structural_violations(a, HID, "hsize", "age")
    return out


def run(
    seed: int, epochs: int | None, dump: str | None = None, late: list[str] | None = None, draws: int = 0,
    **options,
) -> dict:
    df = load_dataset("eusilc")
    train, held = split(df, seed)
    n_held = held[HID].nunique()
    t0 = time.perf_counter()
    hs = make_synthesizer(epochs, late, **options).fit(train, seed=seed)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    households, persons = hs.sample(n_held, seed=seed)
    sample_s = time.perf_counter() - t0
    synthetic = persons.merge(households.drop(columns=[W]), on=HID)
    if dump:
        synthetic.to_parquet(f"{dump}/synthetic_seed{seed}.parquet")
    # Five times as many households: the model's error with less Monte-Carlo noise of the draw.
    households5, persons5 = hs.sample(5 * n_held, seed=seed + 1000)
    synthetic5 = persons5.merge(households5.drop(columns=[W]), on=HID)
    result = {
        "synthetic": metrics(synthetic, held),
        "synthetic_5x": metrics(synthetic5, held),
        "floor": metrics(train, held),
        "shuffled": metrics(shuffled(train, n_held, seed), held),
        "privacy": privacy(train, synthetic, held),
        "timing": {"fit_s": fit_s, "sample_s": sample_s, "held_out_households": n_held},
    }
    result["floor"]["violations_held_out"] = structural_violations(held, HID, "hsize", "age")
    result["protocol_draws"] = protocol_draws(hs, held, result["floor"], draws, seed)
    result["ideal_draws"] = [excess_over_floor(metrics(ideal_draw(train, n_held, seed + 2000 + k), held),
                                               result["floor"]) for k in range(draws)]
    return result


def ideal_draw(train: pd.DataFrame, n_households: int, seed: int) -> pd.DataFrame:
    """An ideal generator: training households resampled by weight (with replacement, members
    kept, equal output weights like synthetic households), i.e. draws from the training population."""
    hh = train.groupby(HID)[W].first()
    rng = np.random.default_rng(seed)
    picked = rng.choice(hh.index.to_numpy(), size=n_households, replace=True, p=hh.to_numpy() / hh.sum())
    members = train.set_index(HID)
    draw = members.loc[picked].reset_index()
    sizes = members.index.value_counts().reindex(picked).to_numpy()
    draw[HID] = np.repeat(np.arange(1, n_households + 1), sizes)  # repeated picks become new households
    draw[W] = 1.0
    return draw


def protocol_draws(hs: HouseholdSynthesizer, held: pd.DataFrame, floor: dict[str, float], draws: int,
                   seed: int) -> list[dict[str, float]]:
    """Excess over ``floor`` of ``draws`` more draws of as many households as held out (the issue's protocol)."""
    out = []
    for k in range(draws):
        households, persons = hs.sample(held[HID].nunique(), seed=seed + 3000 + k)
        out.append(excess_over_floor(metrics(persons.merge(households.drop(columns=[W]), on=HID), held), floor))
    return out


def excess_over_floor(synthetic: dict[str, float], floor: dict[str, float]) -> dict[str, float]:
    """Each bar's metric minus its floor (the Gini difference as it is: its bar has no floor)."""
    out = {key: synthetic[key] - floor[key] for key in BARS}
    out["gini_diff"] = synthetic["gini_diff"]
    return out


def refit(seed: int, fit_seed: int, floor: dict[str, float], epochs: int | None, late: list[str] | None = None,
          draws: int = 0, **options) -> tuple[dict[str, float], list[dict[str, float]]]:
    """Excess over ``floor`` of every bar for one more fit (seed ``fit_seed``) on split ``seed``,
    with five times as many households as held out (the fit-to-fit spread of the model), and of
    ``draws`` protocol-size draws."""
    train, held = split(load_dataset("eusilc"), seed)
    hs = make_synthesizer(epochs, late, **options).fit(train, seed=fit_seed)
    households, persons = hs.sample(5 * held[HID].nunique(), seed=seed + 1000)
    excess = excess_over_floor(metrics(persons.merge(households.drop(columns=[W]), on=HID), held), floor)
    return excess, protocol_draws(hs, held, floor, draws, fit_seed)


def spread_report(excess: list[dict[str, float]], model_draws: list[dict[str, float]] | None = None,
                  ideal_draws: list[dict[str, float]] | None = None) -> str:
    """Mean and worst excess over the floor across fits, and how many fits miss each bar; with
    protocol-size draws, how many of them miss each bar, for the model and the ideal generator."""
    head = "| metric | margin | mean excess over floor | worst | fits over the margin |"
    if model_draws:
        head += " protocol draws over the margin: model | ideal generator |"
    lines = [head, "|---" * head.count(" | ") + "|---|"]
    bars = {**{k: m for k, (m, _) in BARS.items()}, "gini_diff": 0.02}
    labels = {**{k: label for k, (_, label) in BARS.items()}, "gini_diff": "Gini difference (absolute, not over a floor)"}
    for key, margin in bars.items():
        v = np.array([e[key] for e in excess])
        line = f"| {labels[key]} | {margin} | {v.mean():+.3f} | {v.max():+.3f} | {(v > margin).sum()} of {len(v)} |"
        for draws in (model_draws, ideal_draws) if model_draws else ():
            d = np.array([e[key] for e in draws])
            line += f" {(d > margin).sum()} of {len(d)} ({(d > margin).mean():.0%}) |"
        lines.append(line)
    return "\n".join(lines)


BARS = {  # metric -> (margin over the floor, description)
    "hsize_tv": (0.015, "household size TV"),
    "region_tv": (0.015, "region shares TV"),
    "age_ks": (0.02, "person age KS"),
    "age_gap_ks": (0.03, "KS of age gap of the two oldest"),
    "earners_0_diff": (0.02, "share with 0 earners, abs diff"),
    "earners_1_diff": (0.02, "share with 1 earner, abs diff"),
    "earners_2+_diff": (0.02, "share with 2+ earners, abs diff"),
    "eq_income_ks": (0.03, "equivalized income KS"),
}


def _verdict(misses: list[str]) -> str:
    return "yes" if not misses else "NO (" + ", ".join(misses) + ")"


def report(results: dict[int, dict]) -> str:
    seeds = sorted(results)
    lines = [
        "| metric | bar | " + " | ".join(f"seed {s}: synth / synth 5x / floor / shuffled" for s in seeds)
        + " | met (synth) | met (synth 5x) |",
        "|---|---|" + "---|" * len(seeds) + "---|---|",
    ]
    for key, (margin, label) in BARS.items():
        cells, miss, miss5 = [], [], []
        for s in seeds:
            r = results[s]
            syn, syn5, flo, shu = (r["synthetic"][key], r["synthetic_5x"][key], r["floor"][key],
                                   r["shuffled"][key])
            miss += [f"seed {s}"] * (syn > flo + margin)
            miss5 += [f"seed {s}"] * (syn5 > flo + margin)
            cells.append(f"{syn:.3f} / {syn5:.3f} / {flo:.3f} / {shu:.3f}")
        lines.append(f"| {label} | floor + {margin} | " + " | ".join(cells)
                     + f" | {_verdict(miss)} | {_verdict(miss5)} |")
    cells, miss, miss5 = [], [], []
    for s in seeds:
        r = results[s]
        miss += [f"seed {s}"] * (r["synthetic"]["gini_diff"] > 0.02)
        miss5 += [f"seed {s}"] * (r["synthetic_5x"]["gini_diff"] > 0.02)
        cells.append(f"{r['synthetic']['gini_a']:.3f} / {r['synthetic_5x']['gini_a']:.3f} vs held-out "
                     f"{r['synthetic']['gini_b']:.3f} (train {r['floor']['gini_a']:.3f})")
    lines.append("| Gini of equivalized income: synth / synth 5x vs held-out | within 0.02 | " + " | ".join(cells)
                 + f" | {_verdict(miss)} | {_verdict(miss5)} |")
    cells, miss, miss5 = [], [], []
    for s in seeds:
        r = results[s]
        held_rate = r["floor"]["violations_held_out"]
        miss += [f"seed {s}"] * (r["synthetic"]["violations"] > held_rate)
        miss5 += [f"seed {s}"] * (r["synthetic_5x"]["violations"] > held_rate)
        cells.append(f"{r['synthetic']['violations']:.4f} / {r['synthetic_5x']['violations']:.4f} / "
                     f"{held_rate:.4f} (held-out) / {r['shuffled']['violations']:.4f}")
    lines.append("| structural violations rate | <= held-out | " + " | ".join(cells)
                 + f" | {_verdict(miss)} | {_verdict(miss5)} |")
    lines.append("")
    lines.append("Privacy (households, synthetic draw against held-out): " + "; ".join(
        f"seed {s}: DCR ratio {results[s]['privacy']['dcr_ratio']:.2f}, at or below the held-out 5th "
        f"percentile {results[s]['privacy']['dcr_close_share']:.3f} (held-out: "
        f"{results[s]['privacy']['dcr_close_share_holdout']:.3f}), exact copies "
        f"{results[s]['privacy']['exact_copy_rate_synthetic']:.2%} (held-out "
        f"{results[s]['privacy']['exact_copy_rate_holdout']:.2%})" for s in seeds))
    lines.append("")
    lines.append("Timing: " + "; ".join(
        f"seed {s}: fit {results[s]['timing']['fit_s']:.0f} s, sample {results[s]['timing']['sample_s']:.1f} s "
        f"({results[s]['timing']['held_out_households']} households)" for s in seeds))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=None, help="override the epochs (default: the package's)")
    parser.add_argument("--json", default=None, help="also write raw results here")
    parser.add_argument("--out", default=None, help="write the markdown table here")
    parser.add_argument("--dump", default=None, help="write the synthetic persons of each seed to this folder")
    parser.add_argument("--late", nargs="*", default=None, help="late household variables (default: LATE)")
    parser.add_argument("--fit-seeds", type=int, nargs="*", default=[],
                        help="extra fits per split (fit seed = split seed + value), summarized at 5x")
    parser.add_argument("--draws", type=int, default=0,
                        help="protocol-size draws per fit (and per split from the ideal generator) "
                        "to count how often each bar is missed")
    parser.add_argument("--flow", default=None, help="override the flow (maf or nsf)")
    parser.add_argument("--validation-fraction", type=float, default=None,
                        help="override the validation fraction (early stopping when > 0)")
    parser.add_argument("--weight-decay", type=float, default=None, help="override the weight decay")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared machine)")
    parser.add_argument("--call", choices=["tuned", "documented"], default="tuned",
                        help="tuned: make_synthesizer's configuration; documented: the call of docs/households.md")
    args = parser.parse_args()
    configure(args.call)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    options = {k: v for k, v in (("flow", args.flow), ("weight_decay", args.weight_decay),
                                 ("validation_fraction", args.validation_fraction)) if v is not None}
    results = {s: run(s, args.epochs, args.dump, args.late, args.draws, **options) for s in args.seeds}
    table = report(results)
    if args.fit_seeds:
        # The fit with seed offset 0 is the one of the table above (same fit and 5x draw).
        excess = [excess_over_floor(results[s]["synthetic_5x"], results[s]["floor"]) for s in args.seeds]
        model_draws = [d for s in args.seeds for d in results[s]["protocol_draws"]]
        ideal_draws = [d for s in args.seeds for d in results[s]["ideal_draws"]]
        for s in args.seeds:
            for k in args.fit_seeds:
                fit_excess, draws = refit(s, s + k, results[s]["floor"], args.epochs, args.late, args.draws, **options)
                excess.append(fit_excess)
                model_draws += draws
        table += (f"\n\n### Fit-to-fit spread: {len(excess)} fits (fit seeds = split seed + "
                  f"{[0, *args.fit_seeds]}), 5x draws")
        if args.draws:
            table += (f"; and {args.draws} protocol-size draws ({results[args.seeds[0]]['timing']['held_out_households']}"
                      f" households) per fit, beside as many per split from the ideal generator")
        table += "\n\n" + spread_report(excess, model_draws, ideal_draws)
    print(table)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(tidy(table) + "\n")


if __name__ == "__main__":
    main()
