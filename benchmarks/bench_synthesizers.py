"""Peer benchmark: every synthesizer on the real extracts, one protocol, one results table.

Protocol
--------
For each dataset and seed: a fixed 80/20 train/holdout split (``numpy.random.default_rng(seed)``
permutation); each method is fitted on the training rows with its default settings and asked
for one synthetic record per holdout record, conditionally on the holdout conditions where the
method supports it (unconditionally otherwise: it then synthesizes the conditions too). Each
fitted model draws ``--draws`` synthetic files (default 3; the floor: as many real samples), each
scored against the holdout with ``microplex.evaluation`` (weighted by the
holdout weights where the dataset has weights), privacy against the training rows, and the
metrics averaged over the draws: one draw of a few hundred rows moves the correlation error and
pMSE by more than the bars' margins (workinghours: 0.10-0.24 over eight draws of one model). The
real-vs-real floor is a random subset of training rows of the holdout's size scored the same way.
Each run happens in a fresh subprocess, so peak memory is that process's peak RSS.

Usage
-----
    /work/bench-venv/bin/python benchmarks/bench_synthesizers.py            # everything
    ... --quick                                        # smoke run (fewer rows and epochs)
    ... --methods cart qrf --datasets cps1 --seeds 0   # a subset; results are appended
    ... --report-only                                  # rebuild the markdown from the raw runs
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from microplex.evaluation import METRIC_DIRECTION  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
RAW = ROOT / "benchmarks" / "results" / "raw" / "synthesizers.jsonl"
OUT = ROOT / "benchmarks" / "results" / "synthesizers.md"
FLOOR = "real_vs_real_floor"


# --------------------------------------------------------------------------- datasets
def _csv(name: str) -> pd.DataFrame:
    path = DATA / name
    if path.exists():
        return pd.read_csv(path)
    from microplex.datasets import load_dataset

    return load_dataset({"cps1_earnings.csv": "cps1", "cps1988_wages.csv": "cps1988", "acs12.csv": "acs12",
                         "eusilc.csv": "eusilc", "workinghours.csv": "workinghours"}[name])


def load_cps1():
    df = _csv("cps1_earnings.csv")
    return df, ["re74", "re75", "re78"], ["age", "educ", "black", "hisp", "marr", "nodeg"], None


def load_cps1988():
    df = _csv("cps1988_wages.csv")
    return df, ["wage"], ["education", "experience", "ethnicity", "smsa", "region", "parttime"], None


def load_acs12():
    df = _csv("acs12.csv")
    df = df.dropna(subset=["income", "edu", "employment"]).copy()
    df["hrs_work"] = df["hrs_work"].fillna(0.0)  # not working: 0 hours
    cols = ["age", "gender", "edu", "race", "employment", "income", "hrs_work"]
    return df[cols].reset_index(drop=True), ["income", "hrs_work"], ["age", "gender", "edu", "race", "employment"], None


def load_eusilc():
    df = _csv("eusilc.csv")
    df = df[df["age"] >= 16].copy()  # persons with income components
    df["pl030"] = df["pl030"].astype(int).astype(str)
    targets = ["py010n", "py050n", "py090n", "py100n"]
    conds = ["age", "rb090", "db040", "pl030"]
    return df[conds + targets + ["rb050"]].reset_index(drop=True), targets, conds, "rb050"


def load_workinghours():
    df = _csv("workinghours.csv")
    conds = ["age", "education", "child5", "child13", "child17", "nonwhite", "owned", "mortgage", "occupation", "unemp"]
    return df[conds + ["hours", "income"]].reset_index(drop=True), ["hours", "income"], conds, None


DATASETS = {"cps1": load_cps1, "cps1988": load_cps1988, "acs12": load_acs12, "eusilc": load_eusilc,
            "workinghours": load_workinghours}
DATASET_NOTES = {
    "cps1": "cps1 earnings (15,992 rows): targets re74, re75, re78 | conditions age, educ, black, hisp, marr, nodeg; unweighted",
    "cps1988": "CPS 1988 wages (28,155 rows): target wage | conditions education, experience, ethnicity, smsa, region, parttime; unweighted",
    "acs12": "ACS 2012 (rows with income, edu and employment known; hrs_work missing -> 0): targets income, hrs_work | conditions age, gender, edu, race, employment; unweighted",
    "eusilc": "EU-SILC AT persons aged 16+ (12,107 rows): targets py010n, py050n, py090n, py100n | conditions age, rb090, db040, pl030; weight rb050",
    "workinghours": "PSID 1987 wives (3,382 rows): targets hours (26% zeros, heaped at 2000/1960/2080), income (US$ 100s, heaped) | conditions age, education, child5, child13, child17, nonwhite, owned, mortgage, occupation, unemp; unweighted",
}


# --------------------------------------------------------------------------- methods
def epochs_for(name: str, quick: bool, nn_epochs: int | None, flow_epochs: int | None) -> int | None:
    """Epochs a method is run with (None: the library default, 300 for CTGAN/TVAE)."""
    if name in ("sdv_ctgan", "sdv_tvae"):
        return nn_epochs if nn_epochs is not None else (30 if quick else None)
    if name.startswith("microplex_"):
        return flow_epochs if flow_epochs is not None else (5 if quick else None)
    return None


def variant(name: str, epochs: int | None) -> str:
    return name if epochs is None else f"{name} [epochs={epochs}]"


def make_method(name: str, targets, conds, epochs: int | None = None, gpu: bool = False):
    nn_epochs = epochs
    if name in MICROPLEX_VARIANTS:
        from peers.microplex_methods import MicroplexMethod
        flow, params = MICROPLEX_VARIANTS[name]
        return MicroplexMethod(flow, targets, conds, epochs=epochs, **params)
    if name == "sdv_gaussian_copula":
        from peers.sdv_methods import SDVMethod
        return SDVMethod("gaussian_copula", targets, conds, conditional=True)
    if name == "sdv_gaussian_copula_uncond":
        from peers.sdv_methods import SDVMethod
        return SDVMethod("gaussian_copula", targets, conds, conditional=False)
    if name == "sdv_ctgan":
        from peers.sdv_methods import SDVMethod
        return SDVMethod("ctgan", targets, conds, conditional=False, epochs=nn_epochs, enable_gpu=gpu)
    if name == "sdv_tvae":
        from peers.sdv_methods import SDVMethod
        return SDVMethod("tvae", targets, conds, conditional=False, epochs=nn_epochs, enable_gpu=gpu)
    if name == "synthpop_cart":
        from peers.cart import SequentialCART
        return SequentialCART(targets, conds)
    if name == "qrf_sequential":
        from peers.qrf import SequentialQRF
        return SequentialQRF(targets, conds)
    raise ValueError(f"Unknown method {name!r}; expected one of {METHODS}.")


#: The Synthesizer defaults before lumpy values were modelled: early stopping on a 10% validation split,
#: at most 200 epochs, no heap states, independent draws.
MICROPLEX_V0 = {"patience": 15, "max_heaps": 0, "sampling": "independent"}
#: microplex methods: (flow, Synthesizer settings other than the defaults).
MICROPLEX_VARIANTS = {
    "microplex_maf": ("maf", {}),
    "microplex_maf_iid": ("maf", {"sampling": "independent"}),
    "microplex_maf_v0": ("maf", MICROPLEX_V0),
    "microplex_nsf": ("nsf", {}),
}

METHODS = ["microplex_maf", "microplex_maf_iid", "microplex_maf_v0", "microplex_nsf", "sdv_gaussian_copula", "sdv_gaussian_copula_uncond", "sdv_ctgan",
           "sdv_tvae", "synthpop_cart", "qrf_sequential"]
METHOD_NOTES = {
    "microplex_maf": "microplex.Synthesizer(flow='maf'), library defaults, survey weights in fit; conditional",
    "microplex_maf_iid": "microplex.Synthesizer(flow='maf', sampling='independent'): the defaults with independent instead of stratified draws; conditional",
    "microplex_maf_q_endslope": "quantile standardization with linear tails at the slope of the end intervals (this session's first version, before tails matched the records beyond the end knots); results recorded then, not re-run",
    "microplex_maf_0c64099": "the library defaults at commit 0c64099 (moment standardization, stratified draws); results recorded then, not re-run",
    "microplex_maf_a8c665c": "the library defaults at commit a8c665c (independent draws; every part kept its best validation state); results recorded then, not re-run",
    "microplex_maf_v0": "microplex.Synthesizer(flow='maf') with the earlier defaults (early stopping on a 10% validation split, at most 200 epochs, no heap states, independent draws); conditional",
    "microplex_nsf": "microplex.Synthesizer(flow='nsf'), library defaults, survey weights in fit; conditional",
    "sdv_gaussian_copula": "SDV GaussianCopulaSynthesizer, defaults; conditional via sample_remaining_columns",
    "sdv_gaussian_copula_uncond": "SDV GaussianCopulaSynthesizer, defaults; unconditional sample()",
    "sdv_ctgan": "SDV CTGANSynthesizer; unconditional sample() (SDV's conditional sampling is reject sampling, impractical with numeric conditions)",
    "sdv_tvae": "SDV TVAESynthesizer; unconditional sample() (as CTGAN)",
    "synthpop_cart": "sequential CART, synthpop visit sequence and defaults (minbucket 5, no pruning, no smoothing), weighted fit and donor draw; conditional",
    "qrf_sequential": "sequential quantile-regression forests (quantile-forest defaults: 100 trees), random quantile per record, weighted fit; conditional",
    FLOOR: "a random subset of training rows of the holdout's size (the real-vs-real floor)",
}


# --------------------------------------------------------------------------- one run
def split(df: pd.DataFrame, seed: int, quick: bool):
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(df))
    if quick:
        idx = idx[: min(len(idx), 3000)]
    n_train = int(round(0.8 * len(idx)))
    return df.iloc[idx[:n_train]].reset_index(drop=True), df.iloc[idx[n_train:]].reset_index(drop=True)


def target_pair_scores(real, synth, wr, ws, targets) -> dict[str, float]:
    """Pair metrics restricted to pairs with at least one target (condition pairs are copied
    verbatim by conditional methods and would flatter them)."""
    from microplex._stats import is_numeric
    from microplex.evaluation.metrics import contingency_similarity, weighted_corr

    num = [c for c in real.columns if is_numeric(real[c])]
    cr, cs = weighted_corr(real[num], wr), weighted_corr(synth[num], ws)
    diff = (cr - cs).abs()
    tnum = [t for t in targets if t in num]
    corr = float(diff.loc[tnum].to_numpy().max()) if tnum and len(num) > 1 else float("nan")
    pairs = [(a, b) for i, a in enumerate(real.columns) for b in list(real.columns)[i + 1:] if a in targets or b in targets]
    cont = [contingency_similarity(real, synth, [a, b], wr, ws) for a, b in pairs]
    return {"correlation_error": corr, "contingency_similarity": float(np.mean(cont)) if cont else float("nan")}


#: A training value carrying at least this share of the records is scored as a point mass or heap.
HEAP_SHARE = 0.003


def heap_share_error(train, holdout, synth, targets, wh, ws) -> float:
    """Max abs error of the (weighted) share of every training value carrying >= HEAP_SHARE of the
    training records (point masses and heaps: zeros, top codes, round numbers), synthetic vs holdout."""
    from microplex._stats import value_shares

    errs = []
    for t in targets:
        if not pd.api.types.is_numeric_dtype(holdout[t]):
            continue
        x = train[t].dropna().to_numpy(float)
        vals, shares = value_shares(x, np.ones(len(x)))
        values = vals[shares >= HEAP_SHARE]
        r, s = holdout[t].to_numpy(float), pd.to_numeric(synth[t], errors="coerce").to_numpy(float)
        a = np.ones(len(r)) if wh is None else np.asarray(wh, float)
        b = np.ones(len(s)) if ws is None else np.asarray(ws, float)
        errs += [abs(b[s == v].sum() / b.sum() - a[r == v].sum() / a.sum()) for v in values]
    return float(max(errs)) if errs else 0.0


def summarize(scores: pd.DataFrame, targets: list[str]) -> dict[str, float]:
    s = scores.set_index(["metric", "variable", "subgroup"])["value"]

    def over_targets(metric: str) -> float:
        vals = [s.get((metric, t, "all"), np.nan) for t in targets]
        vals = [v for v in vals if pd.notna(v)]
        return float(np.mean(vals)) if vals else float("nan")

    sub = scores[(scores["metric"] == "subgroup_ks_mean") & scores["variable"].isin(targets)]["value"]
    return {
        "ks_mean": over_targets("ks"),
        "ks_max": float(np.nanmax([s.get(("ks", t, "all"), np.nan) for t in targets])),
        "subgroup_ks_max": float(sub.max()) if len(sub) else float("nan"),
        "wasserstein_scaled": over_targets("wasserstein_scaled"),
        "zero_share_error": over_targets("zero_share_error"),
        "quantile_error_max": over_targets("quantile_error_max"),
        "tail_error_p99": over_targets("quantile_error_p99"),
        "subgroup_ks": float(sub.mean()) if len(sub) else float("nan"),
        "correlation_error": float(s.get(("correlation_max_abs_error", "all", "all"), np.nan)),
        "spearman_error": float(s.get(("spearman_max_abs_error", "all", "all"), np.nan)),
        "contingency_similarity": float(s.get(("contingency_similarity", "all", "all"), np.nan)),
        "pmse": float(s.get(("pmse", "all", "all"), np.nan)),
    }


def device_name(gpu: bool) -> str:
    import os

    if gpu:
        import torch

        if torch.cuda.is_available():
            return f"GPU {torch.cuda.get_device_name(0)} + {os.cpu_count()} CPU cores"
    return f"CPU, {os.cpu_count()} cores"


#: Synthetic draws scored per fitted model (the floor: real samples); metrics are their means.
DRAWS = 3
#: Seed offset between a run's draws (draw ``d`` of seed ``s`` uses ``s + 1000 + DRAW_STRIDE * d``).
DRAW_STRIDE = 100


def score_draw(train, holdout, synth, cols, conds, targets, wh, ws, seed: int, privacy: bool) -> dict:
    """The metrics of one synthetic draw (or one real sample for the floor) against the holdout."""
    import warnings

    from microplex.evaluation import fidelity_scores, privacy_summary

    synth_cols = synth[cols].copy()
    for c in cols:  # same dtype family as the real data
        if pd.api.types.is_numeric_dtype(holdout[c]):
            synth_cols[c] = pd.to_numeric(synth_cols[c], errors="coerce")
    scores, _ = fidelity_scores(holdout[cols], synth_cols, wh, ws, conditions=conds, pairs=False, seed=seed)
    out = summarize(scores, targets)
    out.update(target_pair_scores(holdout[cols], synth_cols, wh, ws, targets))
    out["heap_share_error"] = heap_share_error(train, holdout, synth_cols, targets, wh, ws)
    if privacy:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            priv = privacy_summary(train[cols], synth_cols, holdout[cols], seed=seed)
        out.update({"dcr_ratio": priv["dcr_ratio"], "exact_copy_rate": priv["exact_copy_rate_synthetic"],
                    "exact_copy_rate_holdout": priv["exact_copy_rate_holdout"]})
    return out


def run_one(dataset: str, method: str, seed: int, quick: bool, epochs: int | None = None, gpu: bool = False,
            draws: int = DRAWS) -> dict:
    import os
    import resource

    os.environ["TQDM_DISABLE"] = "1"

    record = {"dataset": dataset, "method": method, "variant": variant(method, epochs), "epochs": epochs,
              "seed": seed, "quick": quick, "device": device_name(gpu), "draws": draws}
    try:
        df, targets, conds, wcol = DATASETS[dataset]()
        train, holdout = split(df, seed, quick)
        cols = conds + targets
        wh = None if wcol is None else holdout[wcol].to_numpy()
        per_draw = []
        if method == FLOOR:
            fit_s = gen_s = float("nan")
            conditional = None
            for d in range(draws):
                synth = train.sample(len(holdout), random_state=seed + DRAW_STRIDE * d).reset_index(drop=True)
                ws = None if wcol is None else synth[wcol].to_numpy()
                per_draw.append(score_draw(train, holdout, synth, cols, conds, targets, wh, ws, seed, privacy=False))
        else:
            try:
                model = make_method(method, targets, conds, epochs, gpu)
            except ImportError as exc:
                return {**record, "status": "unavailable", "error": f"{type(exc).__name__}: {exc}"}
            t0 = time.perf_counter()
            model.fit(train[cols + ([wcol] if wcol else [])], weight_col=wcol, seed=seed)
            fit_s = time.perf_counter() - t0
            conditional = bool(model.conditional)
            ws = holdout[wcol].to_numpy() if (wcol and conditional) else None
            for d in range(draws):
                t1 = time.perf_counter()
                synth = model.generate(holdout[cols], seed=seed + 1000 + DRAW_STRIDE * d)
                if d == 0:
                    gen_s = time.perf_counter() - t1
                if len(synth) != len(holdout):
                    raise RuntimeError(f"{method} returned {len(synth)} rows for {len(holdout)} conditions")
                per_draw.append(score_draw(train, holdout, synth, cols, conds, targets, wh, ws, seed, privacy=True))
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        for key in per_draw[0]:
            record[key] = float(np.mean([p[key] for p in per_draw]))
        record["per_draw"] = {k: [p[k] for p in per_draw] for k in ("ks_max", "correlation_error", "pmse", "heap_share_error")}
        record.update({"status": "ok", "conditional": conditional, "n_train": len(train), "n_holdout": len(holdout),
                       "fit_s": fit_s, "rows_per_s": len(holdout) / gen_s if gen_s == gen_s and gen_s > 0 else float("nan"),
                       "peak_rss_mb": peak_mb})
    except Exception as exc:  # noqa: BLE001 - a failing method is a result, not a crash
        record.update({"status": "failed", "error": f"{type(exc).__name__}: {exc}",
                       "traceback": traceback.format_exc()[-2000:]})
    return record


def run_isolated(dataset: str, method: str, seed: int, quick: bool, epochs: int | None, timeout: float | None,
                 gpu: bool = False, draws: int = DRAWS) -> dict:
    ctx = mp.get_context("spawn")
    with ctx.Pool(1, maxtasksperchild=1) as pool:
        job = pool.apply_async(run_one, (dataset, method, seed, quick, epochs, gpu, draws))
        try:
            return job.get(timeout=timeout)
        except mp.TimeoutError:
            pool.terminate()
            return {"dataset": dataset, "method": method, "variant": variant(method, epochs), "epochs": epochs,
                    "seed": seed, "quick": quick, "status": "timeout",
                    "error": f"exceeded {timeout} s"}


# --------------------------------------------------------------------------- report
#: (record key, header, registered metric whose direction marks the best value; None: not ranked).
_RANKED = [
    ("ks_mean", "KS", "ks"), ("wasserstein_scaled", "W1/sd", "wasserstein_scaled"),
    ("zero_share_error", "zero-share err", "zero_share_error"), ("quantile_error_max", "max q-err/sd", "quantile_error_max"),
    ("subgroup_ks", "subgroup KS", "subgroup_ks_mean"), ("correlation_error", "corr err", "correlation_max_abs_error"),
    ("contingency_similarity", "contingency", "contingency_similarity"), ("pmse", "pMSE", "pmse"),
    ("dcr_ratio", "DCR ratio", None), ("exact_copy_rate", "exact copies", None),
    ("fit_s", "fit s", None), ("rows_per_s", "rows/s", None), ("peak_rss_mb", "peak MB", None),
]
COLUMNS = [(key, header, None if name is None else METRIC_DIRECTION[name]) for key, header, name in _RANKED]


def _fmt(v: float, key: str) -> str:
    if v != v:
        return "–"
    if key in ("fit_s",):
        return f"{v:.1f}"
    if key in ("rows_per_s", "peak_rss_mb"):
        return f"{v:,.0f}"
    return f"{v:.3f}" if abs(v) >= 0.001 or v == 0 else f"{v:.1e}"


def _draws_text(records: list[dict]) -> str:
    draws = sorted({int(r.get("draws", 1)) for r in records if r.get("status") == "ok"})
    if draws == [1] or not draws:
        return "one draw per fitted model; "
    return (f"each fitted model draws {' or '.join(map(str, draws))} synthetic files (the floor: as many real samples) "
            "and every metric is the mean over the draws; ")


def build_markdown(records: list[dict], command: str) -> str:
    import importlib.metadata as md

    def ver(pkg):
        try:
            return md.version(pkg)
        except md.PackageNotFoundError:
            return "not installed"

    lines = ["# Peer benchmark: synthesizers", "",
             f"Command: `{command}`", "",
             "Environment: " + ", ".join([f"Python {platform.python_version()}", platform.platform(),
                                          f"{mp.cpu_count()} CPU cores (shared with other jobs; timings are indicative)"]
                                         + [f"{p} {ver(p)}" for p in ("numpy", "pandas", "scikit-learn", "torch", "zuko",
                                                                       "sdv", "ctgan", "quantile-forest", "microplex")]),
             "",
             "Protocol: 80/20 train/holdout split per seed; one synthetic record per holdout record; "
             f"{_draws_text(records)}metrics from "
             "`microplex.evaluation` against the holdout (weighted by the holdout weights where the data have weights; "
             "KS, W1/sd, zero-share and max quantile error (p1..p99.9, in real sd) are averaged over the target "
             "variables; subgroup KS is the mean over targets and conditions of the weighted mean within-cell KS; "
             "corr err is the max abs Pearson correlation error over pairs of numeric columns with at least one target; "
             "contingency is the mean 2-way contingency similarity (numeric columns in 10 real-quantile bins) over column "
             "pairs with at least one target; pMSE from out-of-fold gradient-boosting propensities (`pmse` defaults: averaged over repeated fold splits), "
             "0 = indistinguishable, 0.25 = fully separable). Privacy against the training rows: DCR ratio = median "
             "distance to closest training record, synthetic / holdout (below 1: closer to training records than fresh "
             "data); exact copies = share of synthetic records identical to a training record. Cells: mean ± sd over "
             "seeds (sd omitted with one seed, and for timings, memory, exact copies and the DCR ratio: means only). "
             "**Bold** = best method in the column (floor excluded). "
             "Unconditional methods also synthesize the conditions, so their subgroup KS compares cells of generated "
             "conditions. Conditional methods are handed the holdout's own conditions while the floor brings its own "
             "(training) records, so a conditional method can score below the floor on target metrics without being "
             "better than real data.", ""]
    df = pd.DataFrame(records)
    lines += ["## Methods", ""] + [f"- `{k}`: {v}" for k, v in METHOD_NOTES.items()] + [""]
    for dataset in DATASETS:
        sub = df[df["dataset"] == dataset] if len(df) else df
        if not len(sub):
            continue
        lines += [f"## {dataset}", "", DATASET_NOTES[dataset], ""]
        ok = sub[sub["status"] == "ok"]
        seeds = sorted(ok["seed"].unique().tolist()) if len(ok) else []
        modes = sorted(set(ok["quick"].tolist())) if len(ok) else []
        lines.append(f"Seeds: {seeds}; quick mode: {modes}; "
                     f"train/holdout rows: {int(ok['n_train'].iloc[0]) if len(ok) else '?'}/"
                     f"{int(ok['n_holdout'].iloc[0]) if len(ok) else '?'}.")
        lines.append("")
        header = "| method | mode | " + " | ".join(c[1] for c in COLUMNS) + " |"
        lines += [header, "|" + "---|" * (len(COLUMNS) + 2)]
        agg = {}
        for method, g in ok.groupby("variant", sort=False):
            for key, _, _ in COLUMNS:
                vals = g[key].astype(float) if key in g else pd.Series(dtype=float)
                agg[(method, key)] = (vals.mean(), vals.std() if len(vals) > 1 else float("nan"), len(vals))
        best = {}
        for key, _, direction in COLUMNS:
            if direction is None:
                continue
            cand = {m: agg[(m, key)][0] for m in ok["variant"].unique() if m != FLOOR and agg[(m, key)][0] == agg[(m, key)][0]}
            if cand:
                best[key] = (min if direction == "lower" else max)(cand.values())
        rank = {m: i for i, m in enumerate([FLOOR] + METHODS)}
        order = sorted(ok["variant"].unique(), key=lambda v: (rank.get(v.split(" ")[0], 99), v))
        for method in order:
            g = ok[ok["variant"] == method]
            cond = g["conditional"].iloc[0]
            mode = "floor" if method == FLOOR else ("conditional" if cond else "unconditional")
            if "device" in g and isinstance(g["device"].iloc[0], str) and g["device"].iloc[0].startswith("GPU"):
                mode += f"; {g['device'].iloc[0]}"
            cells = []
            for key, _, direction in COLUMNS:
                mean, sd, n = agg[(method, key)]
                txt = _fmt(mean, key)
                if sd == sd and key not in ("fit_s", "rows_per_s", "peak_rss_mb", "exact_copy_rate", "dcr_ratio"):
                    txt += f" ± {_fmt(sd, key)}"
                if key in best and method != FLOOR and abs(mean - best[key]) <= 1e-12:
                    txt = f"**{txt}**"
                cells.append(txt)
            name = f"*{method}*" if method == FLOOR else method
            lines.append(f"| {name} | {mode} | " + " | ".join(cells) + " |")
        lines += [""] + bars_table(ok)
        bad = sub[(sub["status"] != "ok") & ~sub["variant"].isin(set(ok["variant"]))].drop_duplicates(["variant", "status"])
        if len(bad):
            lines.append("")
            for _, r in bad.iterrows():
                what = "default settings" if r.get("epochs") is None else f"epochs={r['epochs']}"
                lines.append(f"- `{r['variant']}` ({what}, seed {r['seed']}) {r['status']}: {str(r.get('error', ''))[:300]}")
        lines.append("")
    return "\n".join(lines) + "\n"


#: The bars of the lumpy-values round, per data set on the means over seeds: (record key, header, bar from the floor's value).
BARS = [
    ("ks_max", "worst KS", lambda f: max(1.5 * f, f + 0.01)),
    ("heap_share_error", "heap/point-mass share err", lambda f: f + 0.01),
    ("subgroup_ks", "subgroup KS", lambda f: 1.5 * f + 0.01),
    ("correlation_error", "corr err", lambda f: f + 0.05),
    ("pmse", "pMSE", lambda f: 1.5 * f),
]


def bars_table(ok: pd.DataFrame) -> list[str]:
    """Each method's means over the seeds it shares with the floor against the bars (value / bar, a
    check mark when met); copies and DCR against the natural rate."""
    floor = ok[ok["variant"] == FLOOR].set_index("seed")
    if not len(floor):
        return []
    head = "| method (mean over seeds) | " + " | ".join(h for _, h, _ in BARS) + " | exact copies (bar) | DCR ratio (>= 0.9) |"
    out = ["Bars (lumpy-values round), value (bar): " + ", ".join(f"{h}" for _, h, _ in BARS) + " from the floor's means over "
           "the same seeds; exact copies <= 1.2 x the holdout's rate + 0.01; DCR ratio >= 0.9.", "",
           head, "|" + "---|" * (len(BARS) + 3)]
    for method, g in ok[ok["variant"] != FLOOR].groupby("variant", sort=False):
        seeds = sorted(set(g["seed"]) & set(floor.index))
        if not seeds:
            continue
        g = g.set_index("seed").loc[seeds]
        f = floor.loc[seeds]
        cells = []
        for key, _, bar in BARS:
            if key not in g or key not in f:
                cells.append("–")
                continue
            v, lim = float(g[key].astype(float).mean()), bar(float(f[key].astype(float).mean()))
            cells.append(f"{v:.4f} ({lim:.4f}) {'ok' if v <= lim else 'MISS'}")
        copy, nat = float(g["exact_copy_rate"].mean()), float(g["exact_copy_rate_holdout"].mean())
        dcr = float(g["dcr_ratio"].min())
        cells.append(f"{copy:.3f} ({1.2 * nat + 0.01:.3f}) {'ok' if copy <= 1.2 * nat + 0.01 else 'MISS'}")
        cells.append(f"min {dcr:.3f} {'ok' if dcr >= 0.9 else 'MISS'}")
        out.append(f"| {method} | " + " | ".join(cells) + " |")
    return out


def load_records(path: Path = RAW) -> list[dict]:
    if not path.exists():
        return []
    recs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    latest = {}
    for r in recs:  # the latest run of each (dataset, method, seed, quick) wins
        latest[(r["dataset"], r["variant"], r["seed"], r["quick"])] = r
    return list(latest.values())


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    p.add_argument("--methods", nargs="+", default=METHODS + [FLOOR])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--quick", action="store_true", help="smoke run: at most 3,000 rows, 30 epochs for CTGAN/TVAE, 5 for microplex")
    p.add_argument("--nn-epochs", type=int, default=None, help="epochs for CTGAN/TVAE (default: SDV's 300; 30 with --quick)")
    p.add_argument("--flow-epochs", type=int, default=None, help="epochs for microplex (default: its own; 5 with --quick)")
    p.add_argument("--gpu", action="store_true", help="let CTGAN/TVAE use a CUDA GPU when one is present")
    p.add_argument("--draws", type=int, default=DRAWS,
                   help=f"synthetic draws scored per fitted model, metrics averaged (default {DRAWS}; the floor: real samples)")
    p.add_argument("--timeout", type=float, default=None, help="seconds per run before it is reported as timed out")
    p.add_argument("--skip-done", action="store_true", help="skip (dataset, method, seed, mode) runs already in the raw file")
    p.add_argument("--report-only", action="store_true")
    p.add_argument("--raw", type=Path, default=RAW)
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--notes", type=Path, default=None, help="markdown file inserted after the header (findings)")
    p.add_argument("--command", default=None, help="command line recorded in the results (default: this one)")
    args = p.parse_args(argv)
    if args.quick and args.raw == RAW:
        args.raw, args.out = RAW.with_name("synthesizers_quick.jsonl"), OUT.with_name("synthesizers_quick.md")
    command = args.command or "python benchmarks/bench_synthesizers.py " + " ".join(argv if argv is not None else sys.argv[1:])
    args.raw.parent.mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        done = {(r["dataset"], r["variant"], r["seed"], r["quick"]) for r in load_records(args.raw) if r["status"] == "ok"}
        for dataset in args.datasets:
            for seed in args.seeds:
                for method in args.methods:
                    epochs = epochs_for(method, args.quick, args.nn_epochs, args.flow_epochs)
                    if args.skip_done and (dataset, variant(method, epochs), seed, args.quick) in done:
                        continue
                    t = time.perf_counter()
                    rec = run_isolated(dataset, method, seed, args.quick, epochs, args.timeout, args.gpu, args.draws)
                    rec["wall_s"] = time.perf_counter() - t
                    with args.raw.open("a") as fh:
                        fh.write(json.dumps(rec, default=float) + "\n")
                    print(f"{dataset:8s} seed {seed} {rec['variant']:28s} {rec['status']:11s} {rec['wall_s']:7.1f}s "
                          f"{rec.get('ks_mean', float('nan')):.3f} {rec.get('error', '')[:120]}", flush=True)
    text = build_markdown(load_records(args.raw), command)
    if args.notes is not None:
        head, sep, rest = text.partition("## Methods")
        text = head + args.notes.read_text().rstrip() + "\n\n" + sep + rest
    args.out.write_text(text)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
