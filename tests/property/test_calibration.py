"""Property-based trust tests of Calibrator and SparseCalibrator.

Generated record frames (NaN/inf/huge values, empty and one-row frames, odd dtypes and names) and
generated targets (counts, sums, means; NaN/inf/negative/huge values; filters that may select nothing):
either the returned weights meet every target to the estimator's tolerance, checked here independently
of the library's own report, or the call raises a :class:`~microplex.MicroplexError`. The caller's frame
is never changed.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from microplex import Calibrator, SparseCalibrator
from microplex.calibration import Target

from ._invariants import assert_unchanged, result_or_microplex_error, snapshot

GROUPS = ["a", "b", "c"]
NUMBERS = st.one_of(
    st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, 1.0, -1.0, 1e300, -1e300, math.nan, math.inf, 1e-300]),
)
WEIGHTS = st.one_of(st.floats(0.1, 100.0), st.sampled_from([1.0, 0.0, -1.0, math.nan, math.inf, 1e300, 1e-300]))


@st.composite
def frames(draw) -> pd.DataFrame:
    n = draw(st.integers(0, 12))
    g = draw(st.lists(st.sampled_from(GROUPS), min_size=n, max_size=n))
    clean = draw(st.booleans())  # half the frames have clean values, so that fits also succeed
    y = draw(st.lists(st.floats(0.0, 100.0) if clean else NUMBERS, min_size=n, max_size=n))
    w = draw(st.lists(st.floats(0.5, 50.0) if clean else WEIGHTS, min_size=n, max_size=n))
    df = pd.DataFrame({"g": pd.Series(g, dtype=object), "y": pd.Series(y, dtype=float), "weight": pd.Series(w, dtype=float)})
    kind = draw(st.sampled_from(["object", "category", "int", "Int64", "bool", "datetime", "plain"]))
    if kind == "category":
        df["g"] = df["g"].astype("category")
    elif kind in ("int", "Int64"):
        df["g"] = df["g"].map({"a": 1, "b": 2, "c": 3}).astype("int64" if kind == "int" else "Int64")
    elif kind == "bool":
        df["g"] = (df["g"] == "a").astype(bool)
    elif kind == "datetime":
        df["g"] = pd.to_datetime(df["g"].map({"a": "2020-01-01", "b": "2021-01-01", "c": "2022-01-01"}))
    odd = draw(st.sampled_from(["none"] * 4 + ["dup", "int_name", "reserved", "yint", "float32"]))
    if odd == "dup":
        df.columns = ["g", "y", "g"] if draw(st.booleans()) else ["g", "weight", "weight"]
    elif odd == "int_name":
        df = df.rename(columns={"y": 7})
    elif odd == "reserved":
        df["__weight__"] = df["weight"]
    elif odd == "float32":
        df["weight"] = df["weight"].astype("float32")
    elif odd == "yint" and n and not df["y"].isna().any() and np.isfinite(df["y"]).all() and (df["y"].abs() < 1e9).all():
        df["y"] = df["y"].round().astype("int64")
    return df


@st.composite
def targets(draw, df: pd.DataFrame) -> list[tuple]:
    """Target specs, built into targets inside the call (bad values must raise a MicroplexError there).

    Values are either arbitrary (NaN, inf, huge, negative) or plausible: the initial-weight figure of
    the target times a factor, so that many problems are feasible.
    """
    cols = list(df.columns)
    g_values = list(pd.unique(df["g"])) if cols.count("g") == 1 else ["a"]
    usable = cols.count("y") == 1 and cols.count("weight") == 1
    w = pd.to_numeric(df["weight"], errors="coerce").to_numpy(dtype=float) if usable else None
    y = df["y"].to_numpy(dtype=float) if usable else None
    out = []
    for _ in range(draw(st.integers(1, 3))):
        aggregate = draw(st.sampled_from(["count", "sum", "mean"]))
        flt = {}
        if draw(st.booleans()):
            flt = {"g": draw(st.sampled_from(g_values + ["zzz"]))}
        value = draw(NUMBERS)
        if usable and draw(st.booleans()):
            m = (df["g"] == flt["g"]).to_numpy(dtype=bool) if flt else np.ones(len(df), dtype=bool)
            with np.errstate(all="ignore"):
                base = {"count": np.sum(w[m]), "sum": np.sum(w[m] * y[m]), "mean": np.sum(w[m] * y[m]) / np.sum(w[m])}
            value = float(base[aggregate]) * draw(st.sampled_from([1.0, 0.9, 1.1, 0.5, 2.0]))
        out.append((value, aggregate, None if aggregate == "count" else "y", flt))
    return out


def _mask(df: pd.DataFrame, t: Target) -> np.ndarray:
    m = np.ones(len(df), dtype=bool)
    for col, v in t.filters.items():
        m &= (df[col] == v).to_numpy(dtype=bool)
    return m


def _check_met(df: pd.DataFrame, t: Target, w: np.ndarray, rtol: float, relative: str) -> None:
    m = _mask(df, t)
    if t.aggregate == "count":
        achieved, terms = float(w[m].sum()), np.abs(w[m])
    else:
        y = df[t.variable].to_numpy(dtype=float)[m]
        if t.aggregate == "sum":
            achieved, terms = float(np.sum(w[m] * y)), np.abs(w[m] * y)
        else:
            assert w[m].sum() > 0, f"{t.name}: the records of a mean target kept no weight"
            achieved = float(np.sum(w[m] * y) / np.sum(w[m]))
            terms = np.abs(y)
    denom = (1.0 + abs(t.value)) if relative == "survey" else (abs(t.value) if t.value != 0 else 1.0)
    slack = 1e-9 * float(np.sum(terms)) + 1e-12
    assert abs(achieved - t.value) <= rtol * denom + slack, f"{t.name}: achieved {achieved!r}, target {t.value!r}"


@given(data=st.data())
def test_calibrator_meets_every_target_or_raises(data):
    df = data.draw(frames())
    tg = data.draw(targets(df))
    method = data.draw(st.sampled_from(["raking", "linear"]))
    bounds = data.draw(st.sampled_from([None, (0.5, 2.0)]))
    before = snapshot(df)
    cal, err = result_or_microplex_error(
        lambda: Calibrator(method, bounds=bounds, max_iter=30).fit(df, [Target(*spec) for spec in tg])
    )
    assert_unchanged(before, df)
    if err is not None:
        return
    w = cal.weights.to_numpy()
    assert np.isfinite(w).all()
    if method == "raking" or bounds is not None:
        assert (w >= 0).all()
    for t in cal.result_.design.targets:
        _check_met(df, t, w, cal.summary["met_rtol"], "survey")


@given(data=st.data())
def test_sparse_calibrator_meets_every_target_or_raises(data):
    df = data.draw(frames())
    tg = data.draw(targets(df))
    method = data.draw(st.sampled_from(["l1", "l0"]))
    budget = data.draw(st.sampled_from([None, 1, 3]))
    before = snapshot(df)
    sc, err = result_or_microplex_error(
        lambda: SparseCalibrator(max_records=budget, method=method, tolerance=0.01).fit(df, [Target(*s) for s in tg])
    )
    assert_unchanged(before, df)
    if err is not None:
        return
    w = sc.weights.to_numpy()
    assert np.isfinite(w).all() and (w >= 0).all() and (w > 0).any()
    for t in sc.result_.design.targets:
        _check_met(df, t, w, 0.01 * (1 + 1e-6), "relative")
