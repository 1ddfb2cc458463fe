"""Differentially private microplex: fidelity and attacks against epsilon (cps1, eusilc).

Protocol: each data set (loaders of ``bench_synthesizers.py``) is split 80/20 by
``numpy.random.default_rng(seed)`` permutation. A fully synthetic ``Synthesizer``
(``condition_model=True``) is fitted on the training rows, without DP (library defaults) and
with ``epsilon`` in {1, 4, 8}, ``delta=1e-5`` and the library's DP defaults (epochs, batch size,
learning rate and clipping norm left at ``"auto"``/``None``; ``--s23-settings`` passes the explicit
settings of the session-23 runs instead), and releases
``sample(len(holdout), seed=seed + 1)`` (conditions drawn too). The release is scored against the
holdout (weighted by the holdout's weights on eusilc; the release is a population sample, unweighted):

- ``ks_max``: worst KS over the targets; ``ks_max_cond``/``ks_cond``: over the numeric conditions
  (drawn by the condition model; session 32 on) and which;
- ``zero_err``/``top_err``: worst absolute error over the targets of the share at 0 and at the
  top code (the largest training value when it carries at least 0.3% of the records: cps1's
  earnings; eusilc has none);
- ``mean_err``/``sd_err``: worst relative error over the targets of the mean and of the standard
  deviation (session 29: a few percent of the records released far in a tail hardly move KS);
- ``corr_err``: worst absolute error of a Pearson correlation involving a target, and ``corr_pair``
  its pair; ``corr_err_realcond``/``corr_pair_realcond``: the same for a diagnostic release drawn
  from the holdout's *real* conditions (``generate``; not a release a DP user can make: it tells
  the condition model's part of the error from the main model's);
- ``auc``: membership-inference AUC (``evaluation.attacks.membership_auc``, 0.5 = members not told
  apart from holdout records); ``dcr_ratio``, ``copy``: distance to closest record ratio and exact
  copy rate of the release against the training rows (``privacy_summary``);
- ``eps_spent``: the accountant's epsilon (``synth.privacy_["epsilon"]``).

``cps1race`` (session 42) is cps1 with its exclusive indicators ``black`` and ``hisp`` coded as one
categorical condition ``race``, as ``docs/privacy.md`` advises, and ``workinghours_tenure``
workinghours with ``owned`` and ``mortgage`` coded as one ``tenure``; their releases are mapped back
to the indicators and scored on the original set's columns (:data:`SCORED_AS`).

Public metadata (the DP fits need it, no budget is spent on it): the bounds below, from the
surveys' documentation, not from the data: cps1's earnings top codes (published CPS/SSA top codes,
declared as point masses with zero), ages 16-55 (the sample's design), years of education 0-18;
eusilc's income bounds are round figures above any Austrian 2006 income component, ages 16-100,
the design weights' bound 1,100 and the category lists of sex, region and economic status.

Usage
-----
    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/bench_dp.py --datasets cps1 --seeds 0 --epsilons 1
    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/bench_dp.py --markdown    # table from raw records
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_synthesizers import (HEAP_SHARE, _csv, load_acs12, load_cps1, load_cps1988, load_eusilc,  # noqa: E402
                                load_workinghours, split, target_pair_scores)

RAW = ROOT / "benchmarks" / "results" / "raw" / "dp.jsonl"
OUT = ROOT / "benchmarks" / "results" / "dp.md"


def load_census2000():
    """census2000's log weekly income given education, experience and state (session 32: a set whose
    public bounds, 0 to 12, are wide against its values, about 4 to 9 on a logit between them)."""
    df = _csv("census2000_pums.csv")
    conds = ["educ", "exper", "state"]
    return df[conds + ["lweekinc"]].reset_index(drop=True), ["lweekinc"], conds, None


def load_cps1_race():
    """cps1 with its two exclusive indicators (``black`` and ``hisp``, never both 1) coded as one categorical
    condition ``race`` (black, hisp, other), as ``docs/privacy.md`` advises (session 42). The same records,
    split and targets as cps1; the release is scored on the indicators (:data:`SCORED_AS`), so its figures
    compare with cps1's."""
    df, targets, _, wcol = load_cps1()
    df = df.assign(race=np.select([df["black"] == 1, df["hisp"] == 1], ["black", "hisp"], "other"))
    return df, targets, ["age", "educ", "race", "marr", "nodeg"], wcol


def race_indicators(frame: pd.DataFrame) -> pd.DataFrame:
    """A cps1race frame (``race``) as cps1's columns (``black``, ``hisp``), for scoring."""
    out = frame.assign(black=(frame["race"] == "black").astype(np.int64), hisp=(frame["race"] == "hisp").astype(np.int64))
    return out.drop(columns="race")


def load_workinghours_tenure():
    """workinghours with its indicators ``owned`` and ``mortgage`` (no mortgage without a home: the
    combination never occurs) coded as one categorical condition ``tenure`` (rent, owned, mortgage), as
    ``docs/privacy.md`` advises (session 42); scored on the indicators (:data:`SCORED_AS`)."""
    df, targets, conds, wcol = load_workinghours()
    df = df.assign(tenure=np.select([df["mortgage"] == 1, df["owned"] == 1], ["mortgage", "owned"], "rent"))
    return df, targets, [c for c in conds if c not in ("owned", "mortgage")] + ["tenure"], wcol


def tenure_indicators(frame: pd.DataFrame) -> pd.DataFrame:
    """A workinghours_tenure frame (``tenure``) as workinghours' columns (``owned``, ``mortgage``)."""
    out = frame.assign(owned=(frame["tenure"] != "rent").astype(np.int64),
                       mortgage=(frame["tenure"] == "mortgage").astype(np.int64))
    return out.drop(columns="tenure")


DATASETS = {"cps1": load_cps1, "eusilc": load_eusilc, "cps1988": load_cps1988, "acs12": load_acs12,
            "workinghours": load_workinghours, "census2000": load_census2000, "cps1race": load_cps1_race,
            "workinghours_tenure": load_workinghours_tenure}
#: Data sets whose releases are scored on another set's columns: (the frame's map to them, that set).
SCORED_AS = {"cps1race": (race_indicators, "cps1"), "workinghours_tenure": (tenure_indicators, "workinghours")}
#: The issue's bar is on these; the others are a check of the defaults beyond the sets they were chosen on.
BAR_DATASETS = ["cps1", "eusilc"]
#: Top codes of cps1's earnings (1974, 1975 and 1978 dollars).
CPS_TOP = {"re74": 25862.32, "re75": 25243.55, "re78": 25564.67}
PUBLIC = {
    "cps1": {
        "bounds": {**{k: (0.0, v) for k, v in CPS_TOP.items()}, "age": (16, 55), "educ": (0, 18)},
        "categories": {k: [0, 1] for k in ("black", "hisp", "marr", "nodeg")},
        "point_masses": {k: (0.0, v) for k, v in CPS_TOP.items()},
    },
    "eusilc": {
        "bounds": {"py010n": (0.0, 250_000.0), "py050n": (-20_000.0, 250_000.0), "py090n": (0.0, 50_000.0),
                   "py100n": (0.0, 150_000.0), "age": (16, 100), "rb050": (0.0, 1100.0)},
        "categories": {"rb090": ["female", "male"],
                       "db040": ["Burgenland", "Carinthia", "Lower Austria", "Salzburg", "Styria", "Tyrol",
                                 "Upper Austria", "Vienna", "Vorarlberg"],
                       "pl030": [str(i) for i in range(1, 8)]},
        "point_masses": {},
    },
    # The three sets below (session 30): a check of the defaults beyond the bar's data. Bounds are round
    # figures from what each variable is (a week's wage in 1988 dollars, the hours of a year, ACS's top code of
    # 99 hours), not the data's range; the category lists are the documented codes.
    "cps1988": {
        "bounds": {"wage": (0.0, 20_000.0), "education": (0, 18), "experience": (-5, 65)},
        "categories": {"ethnicity": ["afam", "cauc"], "smsa": ["no", "yes"],
                       "region": ["midwest", "northeast", "south", "west"], "parttime": ["no", "yes"]},
        "point_masses": {},
    },
    "acs12": {
        "bounds": {"income": (0.0, 500_000.0), "hrs_work": (0.0, 99.0), "age": (16, 99)},
        "categories": {"gender": ["female", "male"], "edu": ["college", "grad", "hs or lower"],
                       "race": ["asian", "black", "other", "white"],
                       "employment": ["employed", "not in labor force", "unemployed"]},
        "point_masses": {},
    },
    # session 32: the log of a week's income in dollars (0 to 12: 1 to 160,000 dollars), years of schooling
    # and of experience, and the 50 states and DC (the census2000 extract is of those).
    "census2000": {
        "bounds": {"lweekinc": (0.0, 12.0), "educ": (0, 20), "exper": (0, 60)},
        "categories": {"state": [
            "Alabama", "Alaska", "Arizona", "Arkansas", "California", "Colorado", "Connecticut", "Delaware",
            "District of Columbia", "Florida", "Georgia", "Hawaii", "Idaho", "Illinois", "Indiana", "Iowa", "Kansas",
            "Kentucky", "Louisiana", "Maine", "Maryland", "Massachusetts", "Michigan", "Minnesota", "Mississippi",
            "Missouri", "Montana", "Nebraska", "Nevada", "New Hampshire", "New Jersey", "New Mexico", "New York",
            "North Carolina", "North Dakota", "Ohio", "Oklahoma", "Oregon", "Pennsylvania", "Rhode Island",
            "South Carolina", "South Dakota", "Tennessee", "Texas", "Utah", "Vermont", "Virginia", "Washington",
            "West Virginia", "Wisconsin", "Wyoming"]},
        "point_masses": {},
    },
    "workinghours": {
        "bounds": {"hours": (0.0, 8760.0), "income": (-1000.0, 10_000.0), "age": (16, 70), "education": (0, 20),
                   "child5": (0, 10), "child13": (0, 10), "child17": (0, 10), "unemp": (0, 40)},
        "categories": {"nonwhite": [0, 1], "owned": [0, 1], "mortgage": [0, 1],
                       "occupation": ["fr", "mp", "other", "swcc"]},
        "point_masses": {},
    },
}
PUBLIC["cps1race"] = {**PUBLIC["cps1"], "categories": {"race": ["black", "hisp", "other"], "marr": [0, 1], "nodeg": [0, 1]}}
PUBLIC["workinghours_tenure"] = {
    **PUBLIC["workinghours"],
    "categories": {**{k: v for k, v in PUBLIC["workinghours"]["categories"].items() if k not in ("owned", "mortgage")},
                   "tenure": ["mortgage", "owned", "rent"]},
}
#: The explicit DP training settings of the session-23 runs (``--s23-settings``), chosen on cps1 seed 0 at
#: epsilon 1 (max_grad_norm 1, 5 and 15 tried, epochs 10 and 20; see dp.md): a choice made on the data the budget
#: does not count. The library's DP defaults (``synthesis/_dp_plan.py``) gave the same values on both sets
#: until session 29 except the batch (a power of two near n / 8: 2048 on cps1, 1024 on eusilc); since session
#: 29 the default learning rate is 3e-2.
DP_SETTINGS = {"epochs": 20, "batch_size": 2048, "learning_rate": 1e-2, "max_grad_norm": 15.0}
#: Label of the records of this version of the library (session 38, "s38": a DP condition model of two or
#: more conditions is a tree of noisy two-way tables, synthesis/_dp_tree.py, instead of DP-SGD; session 37, "s37": the condition model fitted
#: first and the main model's numeric conditions standardized by a draw from it, _dp.standardize_conditions,
#: instead of by their public bounds; session 34, "s34": the bins at the ends of the
#: histograms' runs, outside their cores, at their posterior means under an empirical-Bayes prior,
#: _dp_histogram.posterior_counts; session 32, "s32": sub-bins and bin_count; session 31: point-mass candidates at round
#: values, the roundest value of every bin of the statistics' histogram, synthesis/_dp.py; session 30: the pattern head at most 32 wide, the
#: flow's base scale matched to the scores' variance after training; session 29: the histograms' support
#: (synthesis/_dp_histogram.py) instead of a 2-sigma threshold per bin, no bin holding both signs, learning
#: rate 3e-2 with the pattern head at 2/3 of it, budget split 0.2 / 0.5 / 0.3; "s29a": the same with the head
#: at the full learning rate, dropped); "s28": the clipping norm of max_grad_norm=None
#: set by the training's noise multiplier, 30 / sigma within [5, 15]; "s28j": a tried and dropped variant that
#: also released the joint table of the targets' states, half the statistics' precision, and raked the pattern
#: head to it, see dp.md);
#: "s26": clipping norm 5, the continuous marginals
#: moved back onto the noisy histograms after DP-SGD, empty-bin noise kept out of the knots; "s25": quantile
#: knots from the noisy histogram, histograms moved onto the known total, noise-aware point masses, the
#: pattern head raked to the noisy shares);
#: "s24": DP defaults and the joint budget with moment standardization; older records: none
#: (session 23: explicit settings, each model calibrated alone); "s24j": a tried and dropped variant that
#: also released the joint histogram of the targets' discrete cells and started the pattern head at its
#: shares (cps1, 3 seeds: worse KS and correlation; see dp.md).
VARIANT = "s38"
#: The previous version's records, drawn beside this one's in the plot.
PREVIOUS = "s37"
LABELS = {"s34": " [s34]", "s32": " [s32]", "s31": " [s31]", "s30": " [s30]", "s29": " [s29]", "s24j": " [joint-histogram prior, dropped]", "s24": " [s24]", "s25": " [s25]", "s26": " [s26]",
          "s28j": " [joint state table, dropped]", "s28": " [s28]",
          "s29a": " [s29a: the pattern head at the full learning rate, dropped]"}


def make(dataset: str, targets: list[str], conds: list[str], epsilon: float | None, explicit: bool = False,
         extra: dict | None = None):
    from microplex import Synthesizer, VariableSpec

    if epsilon is None:
        return Synthesizer(targets, conds, condition_model=True, verbose=False)
    pub = PUBLIC[dataset]
    schema = {k: VariableSpec(point_masses=v) for k, v in pub["point_masses"].items()} or None
    return Synthesizer(targets, conds, condition_model=True, verbose=False, epsilon=epsilon, delta=1e-5,
                       public_bounds=pub["bounds"], public_categories=pub["categories"], schema=schema,
                       **(DP_SETTINGS if explicit else {}), **(extra or {}))


def top_code(train: pd.DataFrame, t: str) -> float | None:
    """Target ``t``'s top code: its largest training value when at least ``HEAP_SHARE`` of the
    records hold it, else None."""
    hi = train[t].max()
    return float(hi) if (train[t] == hi).mean() >= HEAP_SHARE else None


def share_errors(train, holdout, release, targets, wh) -> tuple[float, float]:
    """(worst zero-share error, worst top-code-share error) over the targets."""
    a = np.ones(len(holdout)) if wh is None else np.asarray(wh, float)
    zero, top = [], []
    for t in targets:
        r, s = holdout[t].to_numpy(float), release[t].to_numpy(float)
        zero.append(abs((s == 0).mean() - a[r == 0].sum() / a.sum()))
        hi = top_code(train, t)
        if hi is not None:
            top.append(abs((s == hi).mean() - a[r == hi].sum() / a.sum()))
    return float(max(zero)), float(max(top)) if top else float("nan")


def pattern_tv(train, holdout, release, targets, wh) -> float:
    """Total variation distance between the holdout's (weighted) and the release's joint distribution
    of the targets' point-mass states: each target zero, at its top code (:func:`top_code`) or
    neither. Zeros that go together (no earnings in two years) show here, not in the marginal
    shares."""
    a = np.ones(len(holdout)) if wh is None else np.asarray(wh, float)
    tops = {t: top_code(train, t) for t in targets}

    def states(frame: pd.DataFrame) -> pd.Series:
        codes = []
        for t in targets:
            x = frame[t].to_numpy(float)
            codes.append(np.where(x == 0, "0", np.where(tops[t] is not None and x == tops[t], "T", "x")))
        return pd.Series(["".join(c) for c in zip(*codes)])

    real = pd.Series(a).groupby(states(holdout).to_numpy()).sum() / a.sum()
    synth = states(release).value_counts(normalize=True)
    return float(real.sub(synth, fill_value=0.0).abs().sum() / 2)


def mean_error(holdout, release, targets, wh) -> tuple[float, float]:
    """(worst relative error of a target's mean, worst relative error of its standard deviation):
    ``|release - holdout| / holdout`` (the holdout weighted). KS hardly sees a few percent of the
    records released far in a tail; a mean, a total or a Pearson correlation does."""
    from microplex._stats import weighted_mean_var

    a = np.ones(len(holdout)) if wh is None else np.asarray(wh, float)
    means, sds = [], []
    for t in targets:
        (m, v), (ms, vs) = (weighted_mean_var(holdout[t].to_numpy(float), a),
                            weighted_mean_var(release[t].to_numpy(float), np.ones(len(release))))
        means.append(abs(ms - m) / abs(m))
        sds.append(abs(np.sqrt(vs) - np.sqrt(v)) / np.sqrt(v))
    return float(max(means)), float(max(sds))


def _worst_condition_ks(s: pd.Series, conds: list[str]) -> dict:
    """``ks_max_cond``/``ks_cond``: the worst KS over the numeric conditions and its column (session 32: a
    fully synthetic release draws the conditions too, from the condition model; NaN when none is numeric)."""
    ks = {c: s.get(("ks", c, "all"), np.nan) for c in conds}
    ks = {c: float(v) for c, v in ks.items() if v == v}
    if not ks:
        return {"ks_max_cond": float("nan"), "ks_cond": ""}
    worst = max(ks, key=ks.get)
    return {"ks_max_cond": ks[worst], "ks_cond": worst}


def worst_pair(real, release, wr, ws, targets) -> tuple[float, str]:
    """(worst absolute Pearson correlation error over the pairs with a target, "a~b" its pair)."""
    from microplex._stats import is_numeric
    from microplex.evaluation.metrics import weighted_corr

    num = [c for c in real.columns if is_numeric(real[c])]
    diff = (weighted_corr(real[num], wr) - weighted_corr(release[num], ws)).abs()
    pairs = [(float(diff.loc[t, c]), f"{t}~{c}") for t in targets if t in num for c in num if c != t]
    return max(pairs) if pairs else (float("nan"), "")


class PeerTimeout(RuntimeError):
    """A peer's fit ran past ``--peer-timeout``."""


def peer_release(method: str, dataset: str, seed: int, epsilon: float, train: pd.DataFrame, cols: list[str],
                 n: int, python: str, timeout: float | None = None) -> tuple[pd.DataFrame, float]:
    """(release of ``n`` rows, fit seconds) of MST or AIM run by ``dp_peers.py`` in its own environment;
    raises :class:`PeerTimeout` past ``timeout`` seconds (None: no limit)."""
    pub = PUBLIC[dataset]
    columns = {}
    for c in cols:
        if c in pub["categories"]:
            columns[c] = {"kind": "categorical", "categories": pub["categories"][c]}
            continue
        lo, hi = pub["bounds"][c]
        cand = pub["point_masses"].get(c, sorted({lo, hi} | ({0.0} if lo <= 0 <= hi else set())))
        columns[c] = {"kind": "numeric", "bounds": [lo, hi], "candidates": [float(v) for v in cand],
                      "integer": bool(pd.api.types.is_integer_dtype(train[c].dtype))}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        train[cols].to_csv(tmp / "train.csv", index=False)
        (tmp / "meta.json").write_text(json.dumps({"columns": columns}))
        try:
            done = subprocess.run([python, str(ROOT / "benchmarks" / "dp_peers.py"), "--train", str(tmp / "train.csv"),
                                   "--meta", str(tmp / "meta.json"), "--method", method, "--epsilon", str(epsilon),
                                   "--delta", "1e-5", "--seed", str(seed), "--n", str(n), "--out",
                                   str(tmp / "out.csv")], capture_output=True, text=True, check=False, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise PeerTimeout(f"{method} did not finish in {timeout:g} s") from exc
        if done.returncode != 0:
            raise RuntimeError(f"{method} failed: {done.stderr[-2000:]}")
        release = pd.read_csv(tmp / "out.csv")
    for c in cols:  # categories back to the data's dtype (read_csv parses "1".."7" as numbers)
        release[c] = release[c].astype(train[c].dtype) if c in PUBLIC[dataset]["categories"] else release[c]
    return release[cols], json.loads(done.stdout.strip().splitlines()[-1])["fit_s"]


def _scored(dataset: str, targets: list[str], conds: list[str], *frames: pd.DataFrame
            ) -> tuple[list[str], list[str], tuple[pd.DataFrame, ...]]:
    """(conditions, columns, frames) that releases of ``dataset`` are scored on: those of the set it
    recodes (:data:`SCORED_AS`), each frame mapped to them, or its own."""
    if dataset not in SCORED_AS:
        return conds, conds + targets, frames
    to_scored, source = SCORED_AS[dataset]
    conds = DATASETS[source]()[2]
    cols = conds + targets
    return conds, cols, tuple(to_scored(f)[cols] for f in frames)


def run_one(dataset: str, seed: int, epsilon: float | None, explicit: bool = False, peer: str | None = None,
            peer_python: str | None = None, kwargs: dict | None = None, peer_timeout: float | None = None) -> dict:
    from microplex.evaluation import fidelity_scores, privacy_summary
    from microplex.evaluation.attacks import membership_auc

    df, targets, conds, wcol = DATASETS[dataset]()
    train, holdout = split(df, seed, quick=False)
    cols = conds + targets
    wh = None if wcol is None else holdout[wcol].to_numpy()
    wt = None if wcol is None else train[wcol].to_numpy()
    extra: dict = {}
    if peer is not None:
        try:
            release, fit_s = peer_release(peer, dataset, seed, epsilon, train, cols, len(holdout), peer_python,
                                          peer_timeout)
        except PeerTimeout:  # a record of the attempt, no scores
            return {"dataset": dataset, "seed": seed, "epsilon": epsilon, "method": peer.upper(),
                    "timed_out": True, "fit_s": float(peer_timeout)}
        extra = {"eps_spent": epsilon, "method": peer.upper(), "settings": {"bins": 32, "weights": "ignored"}}
        conds, cols, (release,) = _scored(dataset, targets, conds, release)
    else:
        t0 = time.perf_counter()
        synth = make(dataset, targets, conds, epsilon, explicit, kwargs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            synth.fit(train[cols + ([wcol] if wcol else [])], weight_col=wcol, seed=seed)
        fit_s = time.perf_counter() - t0
        release = synth.sample(len(holdout), seed=seed + 1)[cols]
        real_cond = synth.generate(holdout[conds], seed=seed + 1)[cols]
        conds, cols, (release, real_cond) = _scored(dataset, targets, conds, release, real_cond)
        extra = {
            "eps_spent": synth.privacy_["epsilon"] if epsilon is not None else None,
            **dict(zip(("corr_err_realcond", "corr_pair_realcond"), worst_pair(holdout[cols], real_cond, wh, wh,
                                                                               targets))),
            "settings": None if epsilon is None else {
                "explicit": explicit, "max_grad_norm": synth.privacy_["max_grad_norm"],
                **{k: next(m for m in synth.privacy_["mechanisms"] if m["part"] == "training")[k]
                   for k in ("sampling_rate", "steps", "noise_multiplier")}},
            "variant": VARIANT + ("-explicit" if explicit else "") + (f" {json.dumps(kwargs)}" if kwargs else ""),
        }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores, _ = fidelity_scores(holdout[cols], release, wh, None, conditions=conds, pairs=False, seed=seed)
        priv = privacy_summary(train[cols], release, holdout[cols], seed=seed)
        auc = membership_auc(train[cols], release, holdout[cols], train_weights=wt, holdout_weights=wh, seed=seed)
    s = scores.set_index(["metric", "variable", "subgroup"])["value"]
    zero, top = share_errors(train, holdout, release, targets, wh)
    return {
        "dataset": dataset, "seed": seed, "epsilon": epsilon,
        "ks_max": float(np.nanmax([s.get(("ks", t, "all"), np.nan) for t in targets])),
        **_worst_condition_ks(s, conds),
        "zero_err": zero, "top_err": top, "pattern_tv": pattern_tv(train, holdout, release, targets, wh),
        **dict(zip(("mean_err", "sd_err"), mean_error(holdout, release, targets, wh))),
        "corr_err": target_pair_scores(holdout[cols], release, wh, None, targets)["correlation_error"],
        "corr_pair": worst_pair(holdout[cols], release, wh, None, targets)[1],
        "auc": float(auc), "dcr_ratio": priv["dcr_ratio"], "copy": priv["exact_copy_rate_synthetic"],
        "copy_holdout": priv["exact_copy_rate_holdout"], "fit_s": fit_s, **extra,
    }


def markdown(records: list[dict]) -> str:
    t = pd.DataFrame(records)
    variant = t["variant"] if "variant" in t else pd.Series(None, index=t.index)
    peer = t["method"] if "method" in t else pd.Series(None, index=t.index)
    late = t["timed_out"].fillna(False) if "timed_out" in t else pd.Series(False, index=t.index)
    t["method"] = [f"{m} eps={e:g}" + (" [did not finish: fit_s is the limit]" if x else "") if isinstance(m, str)
                   else "microplex (no DP)" if e is None or e != e
                   else f"DP eps={e:g}" + (" [s23]" if not isinstance(v, str) else "" if v == VARIANT else LABELS.get(v, f" [{v}]"))
                   for e, v, m, x in zip(t["epsilon"], variant, peer, late)]
    keys = ["ks_max", "zero_err", "top_err", "pattern_tv", "mean_err", "sd_err", "corr_err", "corr_err_realcond", "auc",
            "dcr_ratio", "copy", "eps_spent", "fit_s"]
    t = t.reindex(columns=list(t.columns) + [k for k in keys if k not in t.columns])  # older records lack some
    lines = []
    for ds, g in t.groupby("dataset", sort=False):
        agg = g.groupby("method", sort=False)[keys].mean()
        seeds = g.groupby("method", sort=False)["seed"].apply(lambda v: ",".join(map(str, sorted(v))))
        lines += [f"### {ds}", "", "| method | seeds | " + " | ".join(keys) + " |", "|" + "---|" * (len(keys) + 2)]
        for m, row in agg.iterrows():
            lines.append(f"| {m} | {seeds[m]} | " + " | ".join("" if v != v else f"{v:.4f}" for v in row) + " |")
        lines.append("")
    return "\n".join(lines)


def plot(records: list[dict], path: Path) -> None:
    """The fidelity/epsilon curve: per data set, the worst KS, the worse zero/top share error, the
    joint point-mass pattern TV and the correlation error against epsilon for this version's DP fits
    (mean over seeds, each seed a dot) and the previous version's (:data:`PREVIOUS`), MST and AIM (their records' means) and
    microplex without DP (a dashed line), with the bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = pd.DataFrame(records)
    t["share_err"] = t[["zero_err", "top_err"]].max(axis=1)
    method = t["method"] if "method" in t else pd.Series(None, index=t.index)
    variant = t["variant"] if "variant" in t else pd.Series(None, index=t.index)
    t["who"] = [m if isinstance(m, str) else "no DP" if e is None or e != e else "microplex DP" if v == VARIANT
                else f"microplex DP [{v}]" if v == PREVIOUS else None
                for m, v, e in zip(method, variant, t["epsilon"])]
    metrics = [("ks_max", "worst KS", 0.08), ("share_err", "zero/top share error", 0.03),
               ("pattern_tv", "joint zero/top pattern TV", None), ("corr_err", "correlation error", 0.10)]
    datasets = list(dict.fromkeys(t["dataset"]))
    fig, axes = plt.subplots(len(datasets), len(metrics), figsize=(16, 3.4 * len(datasets)), squeeze=False)
    styles = {"microplex DP": ("C0", "o-"), f"microplex DP [{PREVIOUS}]": ("C7", "o:"), "MST": ("C1", "s--"),
              "AIM": ("C2", "^--")}
    for i, ds in enumerate(datasets):
        g = t[t["dataset"] == ds]
        for j, (key, label, bar) in enumerate(metrics):
            ax = axes[i, j]
            for who, (colour, style) in styles.items():
                h = g[(g["who"] == who) & g[key].notna()]
                if h.empty:
                    continue
                mean = h.groupby("epsilon")[key].mean()
                ax.plot(mean.index, mean.values, style, color=colour, label=f"{who} (mean)")
                if who == "microplex DP":
                    ax.plot(h["epsilon"], h[key], ".", color=colour, alpha=0.5)
            nodp = g.loc[g["who"] == "no DP", key]
            if len(nodp):
                ax.axhline(nodp.mean(), color="grey", ls="--", lw=1, label="microplex, no DP")
            if bar is not None:
                ax.axhline(bar, color="red", ls=":", lw=1, label="bar")
            ax.set(xscale="log", xlim=(0.4, 10), xticks=[0.5, 1, 4, 8], xticklabels=["0.5", "1", "4", "8"],
                   xlabel="epsilon",
                   title=f"{ds}: {label}")
            ax.set_ylim(bottom=0)
        axes[i, 0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=BAR_DATASETS, choices=list(DATASETS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epsilons", nargs="+", default=["none", "1", "4", "8"])
    parser.add_argument("--markdown", action="store_true", help="only print the table of the raw records")
    parser.add_argument("--s23-settings", action="store_true", help="pass the explicit DP_SETTINGS")
    parser.add_argument("--peers", nargs="+", choices=["mst", "aim"], help="run MST/AIM instead of microplex")
    parser.add_argument("--peer-python", help="python of the smartnoise-synth environment (see dp_peers.py)")
    parser.add_argument("--peer-timeout", type=float, help="seconds after which a peer's fit is stopped and "
                        "recorded as timed out (default: no limit)")
    parser.add_argument("--kwargs", type=json.loads, help="extra Synthesizer arguments of the DP fits (JSON)")
    parser.add_argument("--raw", type=Path, default=RAW, help="the raw records' file (default: %(default)s)")
    parser.add_argument("--plot", type=Path, help="only draw the fidelity/epsilon curve of the raw records (PNG)")
    args = parser.parse_args()
    if args.plot:
        plot([json.loads(line) for line in args.raw.read_text().splitlines() if line.strip()], args.plot)
        return None
    raw = args.raw
    if not args.markdown:
        raw.parent.mkdir(parents=True, exist_ok=True)
        for ds in args.datasets:
            for seed in args.seeds:
                for e in args.epsilons:
                    for peer in args.peers or [None]:
                        rec = run_one(ds, seed, None if e == "none" else float(e), args.s23_settings, peer,
                                      args.peer_python, args.kwargs, args.peer_timeout)
                        print(json.dumps(rec), flush=True)
                        with raw.open("a") as f:
                            f.write(json.dumps(rec) + "\n")
    print(markdown([json.loads(line) for line in raw.read_text().splitlines() if line.strip()]))


if __name__ == "__main__":
    sys.exit(main())
