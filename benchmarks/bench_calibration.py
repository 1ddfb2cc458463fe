"""Calibration benchmark: speed and memory of Calibrator, side by side with R survey and microcalibrate.

Usage (from the repository root)::

    PYTHONPATH=src python benchmarks/bench_calibration.py            # every case, writes the results file
    PYTHONPATH=src python benchmarks/bench_calibration.py --case 1m  # one case, prints JSON

Cases (synthetic populations: area x age-group x sex cells, initial weights perturbed, targets = totals
under another random perturbation of the weights, so they are consistent and feasible):

* ``1m``:  1,000,000 records x 510 targets (51 states x 8 ages + 51 states x 2 sexes), raking, bounds (0.2, 5).
* ``10m``: 10,000,000 records x 5,000 targets (500 counties x 8 ages + 500 counties x 2 sexes), raking,
  bounds (0.2, 5).
* ``r``:   100,000 records x 170 targets (17 states x 8 ages + 17 x 2 sexes), raking: microplex vs
  R ``survey::calibrate`` (when ``Rscript`` and the survey package are installed) and PolicyEngine's
  ``microcalibrate`` (when installed; ``pip install microcalibrate``).

Each case runs in its own process; memory is that process's peak resident set size (data + fit).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from microplex import Calibrator, Targets  # noqa: E402
from tidy_results import tidy  # noqa: E402  (benchmarks/ is on sys.path when run as a script)


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def cpu_s() -> float:
    """User + system CPU seconds of this process (robust to other work on a shared machine)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def make_problem(
    n: int, n_areas: int, seed: int = 0, sums: bool = False
) -> tuple[pd.DataFrame, Targets, np.ndarray]:
    """Records with area/age/sex cells and targets for area x age and area x sex (+ area income sums)."""
    rng = np.random.default_rng(seed)
    area = rng.integers(0, n_areas, n).astype(np.int32)
    age = rng.integers(0, 8, n).astype(np.int8)
    sex = rng.integers(0, 2, n).astype(np.int8)
    weight = rng.uniform(50.0, 150.0, n)
    df = pd.DataFrame({"area": area, "age": age, "sex": sex, "weight": weight})
    pw = weight * rng.uniform(0.7, 1.5, n)
    aa = np.bincount(area.astype(np.int64) * 8 + age, weights=pw, minlength=n_areas * 8)
    asx = np.bincount(area.astype(np.int64) * 2 + sex, weights=pw, minlength=n_areas * 2)
    idx_aa = pd.MultiIndex.from_product([range(n_areas), range(8)])
    idx_as = pd.MultiIndex.from_product([range(n_areas), range(2)])
    targets = Targets.from_margins(
        {("area", "age"): pd.Series(aa, index=idx_aa), ("area", "sex"): pd.Series(asx, index=idx_as)}
    )
    if sums:  # a continuous variable makes every design row distinct (no collapsing)
        df["income"] = rng.lognormal(10.0, 1.0, n)
        inc = np.bincount(area, weights=pw * df["income"].to_numpy(), minlength=n_areas)
        targets = targets + Targets.from_margins({"area": pd.Series(inc)}, aggregate="sum", variable="income")
    return df, targets, pw


def case_scale(n: int, n_areas: int, collapse: bool = True, sums: bool = False) -> dict:
    load = os.getloadavg()[0]
    df, targets, _ = make_problem(n, n_areas, sums=sums)
    before = rss_mb()
    cal = Calibrator("raking", bounds=(0.2, 5.0), collapse=collapse)
    c0, t0 = cpu_s(), time.perf_counter()
    cal.fit(df, targets, weight_col="weight")
    secs, cpu = time.perf_counter() - t0, cpu_s() - c0
    s = cal.summary
    return {
        "records": n,
        "targets": len(targets),
        "method": "raking, bounds (0.2, 5)",
        "path": ("collapsed rows" if collapse else "all rows") + (" + income sums" if sums else ""),
        "seconds": secs,
        "cpu_seconds": cpu,
        "solver_seconds": cal.result_.solver.seconds,
        "n_iter": s["n_iter"],
        "max_rel_error": s["max_rel_error"],
        "converged": s["converged"],
        "rss_before_fit_mb": before,
        "peak_rss_mb": rss_mb(),
        "load_before": load,
    }


R_SCRIPT = r"""
suppressMessages(library(survey))
args <- commandArgs(trailingOnly = TRUE)
df <- read.csv(args[1])
df$aa <- factor(paste(df$area, df$age, sep = "_"))
df$as <- factor(paste(df$area, df$sex, sep = "_"))
mm <- model.matrix(~ 0 + aa + as, df)
pop <- colSums(mm * df$pw)
des <- svydesign(ids = ~1, weights = ~weight, data = df)
t0 <- proc.time()[["elapsed"]]
t0cpu <- proc.time()[["user.self"]] + proc.time()[["sys.self"]]
cal <- calibrate(des, ~ 0 + aa + as, population = pop, calfun = "raking", epsilon = as.numeric(args[3]), maxit = 100)
pt <- proc.time()
el <- pt[["elapsed"]] - t0
cpu <- pt[["user.self"]] + pt[["sys.self"]] - t0cpu
w <- weights(cal)
rel <- max(abs(colSums(mm * w) - pop) / abs(pop))
write.csv(data.frame(w = w), args[2], row.names = FALSE)
cat(sprintf("%.6f %.6g %d %.6f\n", el, rel, ncol(mm), cpu))
"""


def case_r(n: int = 100_000, n_areas: int = 17) -> dict:
    df, targets, pw = make_problem(n, n_areas, seed=1)
    out: dict = {"records": n, "targets": len(targets)}
    c0, t0 = cpu_s(), time.perf_counter()
    cal = Calibrator("raking").fit(df, targets, weight_col="weight")
    out["microplex_seconds"] = time.perf_counter() - t0
    out["microplex_cpu_seconds"] = cpu_s() - c0
    out["microplex_max_rel_error"] = cal.summary["max_rel_error"]
    w_mp = cal.weights.to_numpy()

    rscript = shutil.which("Rscript")
    if rscript and subprocess.run([rscript, "-e", "library(survey)"], capture_output=True).returncode == 0:
        with tempfile.TemporaryDirectory() as tmp:
            data = Path(tmp) / "d.csv"
            df.assign(pw=pw).to_csv(data, index=False)
            script = Path(tmp) / "cal.R"
            script.write_text(R_SCRIPT)
            res = subprocess.run(
                [rscript, str(script), str(data), str(Path(tmp) / "w.csv"), "1e-7"],
                capture_output=True,
                text=True,
                check=True,
            )
            el, rel, ncols, rcpu = res.stdout.split()
            w_r = pd.read_csv(Path(tmp) / "w.csv")["w"].to_numpy()
        out["r_seconds"] = float(el)
        out["r_cpu_seconds"] = float(rcpu)
        out["r_max_rel_error"] = float(rel)
        out["r_model_columns"] = int(ncols)
        out["max_rel_diff_weights_vs_r"] = float(np.max(np.abs(w_mp - w_r) / w_r))
        # microplex at R's accuracy (R's default epsilon 1e-7 on |misfit| / (1 + |total|))
        t0 = time.perf_counter()
        Calibrator("raking", tol=1e-7).fit(df, targets, weight_col="weight")
        out["microplex_seconds_at_r_eps"] = time.perf_counter() - t0
    try:
        import torch
        from microcalibrate import Calibration
    except ImportError:
        return out
    # microcalibrate takes a dense records x targets estimate matrix
    x = cal.result_.design.x.toarray().astype(np.float32)
    est = pd.DataFrame(x, columns=[f"t{j}" for j in range(x.shape[1])])
    tv = cal.result_.design.totals
    mc = []
    for epochs in (32, 500):
        torch.manual_seed(0)
        np.random.seed(0)
        c = Calibration(weights=df["weight"].to_numpy(), targets=tv, estimate_matrix=est, epochs=epochs)
        t0 = time.perf_counter()
        c.calibrate()
        secs = time.perf_counter() - t0
        w = np.asarray(c.weights, dtype=np.float64)
        rel = float(np.max(np.abs(x.T.astype(np.float64) @ w - tv) / np.abs(tv)))
        # microplex to the same max relative error
        eps = max(rel * 0.5, 1e-12)
        t0 = time.perf_counter()
        ours = Calibrator("raking", tol=eps).fit(df, targets, weight_col="weight")
        mc.append(
            {
                "epochs": epochs,
                "seconds": secs,
                "max_rel_error": rel,
                "microplex_seconds_same_accuracy": time.perf_counter() - t0,
                "microplex_max_rel_error": ours.summary["max_rel_error"],
            }
        )
    out["microcalibrate"] = mc
    return out


#: name -> (records, areas, collapse identical rows, add continuous income-sum targets)
CASES = {
    "1m": (1_000_000, 51, True, False),
    "1m-all-rows": (1_000_000, 51, False, False),
    "1m-sums": (1_000_000, 51, True, True),
    "10m": (10_000_000, 500, True, False),
    "10m-all-rows": (10_000_000, 500, False, False),
    "10m-sums": (10_000_000, 500, True, True),
}


def run_case(name: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    res = subprocess.run(
        [sys.executable, __file__, "--case", name], capture_output=True, text=True, env=env, check=False
    )
    if res.returncode != 0:
        return {"error": res.stderr[-2000:]}
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--case", choices=list(CASES) + ["r"])
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "calibration.md"))
    args = ap.parse_args()
    if args.case:
        print(json.dumps(case_r() if args.case == "r" else case_scale(*CASES[args.case])))
        return
    results = {name: run_case(name) for name in [*CASES, "r"]}
    text = render(results)
    print(text)
    Path(args.out).write_text(tidy(text))


def render(results: dict) -> str:
    lines = [
        "# Calibration benchmark",
        "",
        f"Command: `PYTHONPATH=src python benchmarks/bench_calibration.py` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})",
        "",
        f"Machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"numpy {np.__version__}, pandas {pd.__version__}, scipy {__import__('scipy').__version__}.",
        "Each case runs in its own process; peak RSS is that process's (data generation + fit). The machine is"
        " shared with other work: the 1-minute load average when each case started is in the table, and CPU"
        " seconds (user + system of the process) are given beside wall seconds, as wall time on a loaded"
        " 2-core machine mostly measures the other work.",
        "",
        "## Scale (raking, bounds (0.2, 5), default tol 1e-10 on |misfit| / (1 + |total|))",
        "",
        "| case | records | targets | solve path | fit s (design + solve) | fit CPU s | solve s | iterations "
        "| max rel. error | RSS before fit MB | peak RSS MB | load avg at start | bar |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in CASES:
        r = results[name]
        bar = "<= 1 s" if name.startswith("1m") else "<= 15 s, <= 3 GB"
        if "error" in r:
            lines.append(f"| {name} | error: {r['error'][-300:]!r} |")
            continue
        lines.append(
            f"| {name} | {r['records']:,} | {r['targets']:,} | {r['path']} | {r['seconds']:.2f} | {r['cpu_seconds']:.2f} "
            f"| {r['solver_seconds']:.2f} | {r['n_iter']} "
            f"| {r['max_rel_error']:.1e} | {r['rss_before_fit_mb']:.0f} | {r['peak_rss_mb']:.0f} | {r['load_before']:.1f} | {bar} |"
        )
    r = results["r"]
    lines += ["", "## Side by side: 100,000 records x 170 targets, raking", ""]
    if "error" in r:
        lines.append(f"error: {r['error'][-500:]}")
        return "\n".join(lines) + "\n"
    lines += [
        "| implementation | seconds | max rel. error | speed-up of microplex |",
        "|---|---|---|---|",
        f"| microplex (tol 1e-10) | {r['microplex_seconds']:.3f} (CPU {r['microplex_cpu_seconds']:.3f}) "
        f"| {r['microplex_max_rel_error']:.1e} | |",
    ]
    if "r_seconds" in r:
        lines += [
            f"| microplex (tol 1e-7, R's default epsilon) | {r['microplex_seconds_at_r_eps']:.3f} | | |",
            f"| R survey::calibrate (epsilon 1e-7, {r['r_model_columns']} model columns) | {r['r_seconds']:.2f} "
            f"(CPU {r['r_cpu_seconds']:.2f}) "
            f"| {r['r_max_rel_error']:.1e} | {r['r_seconds'] / r['microplex_seconds_at_r_eps']:.0f}x "
            f"(at tol 1e-10: {r['r_seconds'] / r['microplex_seconds']:.0f}x) |",
        ]
    else:
        lines.append("| R survey::calibrate | not installed | | |")
    for m in r.get("microcalibrate", []):
        lines.append(
            f"| microcalibrate {m['epochs']} epochs (Adam, defaults otherwise) | {m['seconds']:.2f} | "
            f"{m['max_rel_error']:.1e} | {m['seconds'] / m['microplex_seconds_same_accuracy']:.0f}x "
            f"(microplex {m['microplex_seconds_same_accuracy']:.3f} s to {m['microplex_max_rel_error']:.1e}) |"
        )
    if "microcalibrate" not in r:
        lines.append("| microcalibrate | not installed | | |")
    if "max_rel_diff_weights_vs_r" in r:
        lines += ["", f"Largest relative difference between microplex and R weights: {r['max_rel_diff_weights_vs_r']:.1e}."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
