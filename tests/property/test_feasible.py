"""Property-based completeness tests: a feasible calibration is solved, not refused.

The trust tests (``test_calibration.py``) check that a call either meets its targets or raises; a
calibrator that raised on every call would pass them. Here every problem has a known solution: the
targets are the initial weights' own totals times one factor (counts and sums scaled, means
unchanged), so ``factor * initial weights`` meets them all, within any bounds that contain the factor.
Redundant but agreeing targets (a total beside its groups' counts), zero sums of zero values and
integer-valued columns come up. Such a problem must be solved to the estimator's tolerance.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import assume, given
from hypothesis import strategies as st

from microplex import Calibrator, SparseCalibrator
from microplex.calibration import Target

from .test_calibration import _check_met

GROUPS = ["a", "b", "c"]


@st.composite
def feasible(draw) -> tuple[pd.DataFrame, list[Target], float]:
    n = draw(st.integers(1, 30))
    g = draw(st.lists(st.sampled_from(GROUPS), min_size=n, max_size=n))
    values = st.one_of(st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False), st.sampled_from([0.0, 40.0, 1.0]))
    y = draw(st.lists(values, min_size=n, max_size=n))
    w = draw(st.lists(st.floats(0.5, 50.0), min_size=n, max_size=n))
    df = pd.DataFrame({"g": pd.Series(g, dtype=object), "y": pd.Series(y, dtype=float), "weight": w})
    if draw(st.booleans()):
        df["y"] = df["y"].round()
    kind = draw(st.sampled_from(["object", "category", "int"]))
    if kind == "category":
        df["g"] = df["g"].astype("category")
    elif kind == "int":
        df["g"] = df["g"].map({"a": 1, "b": 2, "c": 3}).astype("int64")
    factor = draw(st.sampled_from([1.0, 0.8, 1.25, 1.5]))
    present = list(pd.unique(df["g"]))
    wv, yv = df["weight"].to_numpy(float), df["y"].to_numpy(float)
    targets: list[Target] = []
    specs = draw(st.lists(st.tuples(st.sampled_from(["count", "sum", "mean"]), st.sampled_from([None, *present])),
                          min_size=1, max_size=5, unique=True))
    if draw(st.booleans()):  # a total beside every group's count: redundant, agreeing
        specs = list(dict.fromkeys([("count", None), *[("count", v) for v in present], *specs]))
    for aggregate, value in specs:
        m = np.ones(n, dtype=bool) if value is None else (df["g"] == value).to_numpy(bool)
        flt = {} if value is None else {"g": value}
        if aggregate == "count":
            targets.append(Target(factor * float(wv[m].sum()), filters=flt))
        elif aggregate == "sum":
            targets.append(Target(factor * float(np.sum(wv[m] * yv[m])), aggregate="sum", variable="y", filters=flt))
        else:
            targets.append(Target(float(np.sum(wv[m] * yv[m]) / wv[m].sum()), aggregate="mean", variable="y",
                                  filters=flt))
    return df, targets, factor


def _raise_with_problem(exc: Exception, df: pd.DataFrame, targets: list[Target], factor: float) -> None:
    raise AssertionError(f"a feasible problem was refused: {exc}\nfactor {factor}\n{df}\n"
                         f"{[(t.name, t.value) for t in targets]}") from exc


@given(problem=feasible(), method=st.sampled_from(["raking", "linear", "logit"]))
def test_calibrator_solves_a_feasible_problem(problem, method):
    df, targets, factor = problem
    bounds = (0.5, 2.0) if method == "logit" else None
    try:
        cal = Calibrator(method, bounds=bounds).fit(df, targets)
    except Exception as exc:  # noqa: BLE001 - any refusal of a feasible problem is the finding
        _raise_with_problem(exc, df, targets, factor)
    w = cal.weights.to_numpy()
    assert np.isfinite(w).all()
    for t in cal.result_.design.targets:
        _check_met(df, t, w, cal.summary["met_rtol"], "survey")


@given(problem=feasible(), method=st.sampled_from(["l1", "l0"]))
def test_sparse_calibrator_solves_a_feasible_problem(problem, method):
    df, targets, factor = problem
    # zero weights meet targets that are all means or zero totals: the sparsest answer would be empty (refused)
    assume(any(t.aggregate != "mean" and t.value != 0 for t in targets))
    try:
        sc = SparseCalibrator(method=method, tolerance=0.01).fit(df, targets)
    except Exception as exc:  # noqa: BLE001 - any refusal of a feasible problem is the finding
        _raise_with_problem(exc, df, targets, factor)
    w = sc.weights.to_numpy()
    assert np.isfinite(w).all() and (w >= 0).all() and (w > 0).any()
    for t in sc.result_.design.targets:
        _check_met(df, t, w, 0.01 * (1 + 1e-6), "relative")
