"""The documented default calibration calls with a mean target, on real data: right result or an error.

Not a timing benchmark. It runs the calls of ``docs/calibration.md`` (``Calibrator()`` with its defaults,
the documented ``Calibrator(method="raking", bounds=(0.2, 5.0))``, ``Calibrator("linear")``,
``SparseCalibrator()`` and ``SparseCalibrator(method="l1")``) on the bundled eusilc persons (14,827
records, real design weights ``rb050``) with

* a feasible mean target: mean equivalised income ``eqIncome`` 5% above its initial weighted mean,
  with region x sex population counts (2% above their initial totals), and alone;
* an infeasible one: mean ``eqIncome`` at twice its largest value (above every record's value),
  with the counts, and alone (the case of the trust audit, issue 15).

For every call it records whether it returned or raised, and for a returned result checks the weights
independently of the library's report: the achieved mean (``np.average``), the largest relative miss
of the count targets, and the calibrated total weight against the initial one.

Usage (from the repository root)::

    PYTHONPATH=src python benchmarks/bench_calibration_defaults.py                 # writes the results file
    PYTHONPATH=/path/to/old/src python benchmarks/bench_calibration_defaults.py --src-from-env \
        --append-as "Before: main at 739bb0e"                                      # the same calls on old code
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def _problem() -> tuple[pd.DataFrame, dict]:
    from microplex.calibration import Target, Targets
    from microplex.datasets import load_dataset

    df = load_dataset("eusilc")[["db040", "rb090", "age", "eqIncome", "rb050"]].rename(columns={"rb050": "weight"})
    w, y = df["weight"].to_numpy(), df["eqIncome"].to_numpy()
    counts = Targets.from_margins({("db040", "rb090"): df.groupby(["db040", "rb090"])["weight"].sum() * 1.02})
    feasible = float(np.average(y, weights=w)) * 1.05
    infeasible = float(y.max()) * 2
    cases = {
        "counts + feasible mean": counts + [Target(feasible, "mean", "eqIncome")],
        "feasible mean alone": Targets([Target(feasible, "mean", "eqIncome")]),
        "counts + mean above every value": counts + [Target(infeasible, "mean", "eqIncome")],
        "mean above every value alone": Targets([Target(infeasible, "mean", "eqIncome")]),
    }
    return df, cases


def _check(df: pd.DataFrame, targets, w: np.ndarray) -> dict:
    y = df["eqIncome"].to_numpy()
    out = {"weight_share": float(w.sum() / df["weight"].sum()), "kept": int((w > 0).sum())}
    for t in targets:
        if t.aggregate == "mean":
            out["mean"] = float(np.sum(w * y) / np.sum(w)) if np.sum(w) > 0 else float("nan")
            out["mean_rel_error"] = abs(out["mean"] - t.value) / abs(t.value)
    errs = []
    for t in targets:
        if t.aggregate == "count":
            m = np.ones(len(df), dtype=bool)
            for c, v in t.filters.items():
                m &= (df[c] == v).to_numpy()
            errs.append(abs(w[m].sum() - t.value) / t.value)
    out["count_max_rel_error"] = max(errs) if errs else float("nan")
    return out


def run() -> list[dict]:
    from microplex import Calibrator, SparseCalibrator

    df, cases = _problem()
    calls = {
        "Calibrator()": lambda: Calibrator(),
        'Calibrator(method="raking", bounds=(0.2, 5.0))': lambda: Calibrator(method="raking", bounds=(0.2, 5.0)),
        'Calibrator("linear")': lambda: Calibrator("linear"),
        "SparseCalibrator()": lambda: SparseCalibrator(),
        'SparseCalibrator(method="l1")': lambda: SparseCalibrator(method="l1"),
    }
    rows = []
    for case, targets in cases.items():
        for call, make in calls.items():
            before = df.copy()
            row = {"case": case, "call": call}
            start = time.perf_counter()
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    est = make().fit(df, targets, weight_col="weight")
                w = est.weights.to_numpy()
                row.update(outcome="returned", converged=est.summary.get("converged", est.summary.get("within_tolerance")))
                row.update(_check(df, targets, w))
                row["warnings"] = len(caught)
            except Exception as exc:  # noqa: BLE001 - the benchmark records whatever is raised
                row.update(outcome=f"raised {type(exc).__name__}", message=str(exc)[:220])
            row["seconds"] = time.perf_counter() - start
            row["input_unchanged"] = bool(df.equals(before))
            rows.append(row)
    return rows


def render(rows: list[dict], command: str) -> str:
    def f(v, fmt="{:.2e}"):
        return "" if v is None or (isinstance(v, float) and np.isnan(v)) else fmt.format(v)

    lines = [
        "# Calibration: the documented default calls with a mean target",
        "",
        f"Command: `{command}` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})",
        "",
        "Data: bundled eusilc persons (14,827 records, design weights `rb050`). Targets: region x sex counts",
        "(18 cells, 2% above their initial weighted totals) and/or mean `eqIncome`: feasible = 5% above its",
        "initial weighted mean; infeasible = twice its largest value (above every record). Checks are",
        "computed here from the returned weights, not taken from the library's report. Not a timing benchmark.",
        "",
        "| case | call | outcome | converged | achieved mean (rel. error) | counts max rel. error | total weight / initial | kept records | message |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        mean = f"{r['mean']:.6g} ({f(r.get('mean_rel_error'))})" if "mean" in r else ""
        msg = r.get("message", "").replace("|", "/")
        lines.append(
            f"| {r['case']} | `{r['call']}` | {r['outcome']} | {r.get('converged', '')} | {mean} | "
            f"{f(r.get('count_max_rel_error'))} | {f(r.get('weight_share'), '{:.3g}')} | {r.get('kept', '')} | {msg} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--src-from-env", action="store_true", help="import microplex from PYTHONPATH (e.g. an old checkout)")
    ap.add_argument("--print", action="store_true", help="print the table instead of writing the results file")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "calibration_defaults.md"))
    ap.add_argument("--append-as", default=None, help="append the table to --out under this heading")
    args = ap.parse_args()
    if not args.src_from_env:
        sys.path.insert(0, str(ROOT / "src"))
    rows = run()
    command = "PYTHONPATH=src python benchmarks/bench_calibration_defaults.py"
    if args.src_from_env:
        command = "PYTHONPATH=<old checkout>/src python benchmarks/bench_calibration_defaults.py --src-from-env"
    text = render(rows, command)
    if args.append_as:
        table = text[text.index("| case |") :]
        text = f"\n## {args.append_as}\n\nCommand: `{command} --append-as ...`\n\n{table}"
    if args.print:
        print(text)
    elif args.append_as:
        with open(args.out, "a") as fh:
            fh.write(text)
    else:
        Path(args.out).write_text(text)
        print(text)


if __name__ == "__main__":
    main()
