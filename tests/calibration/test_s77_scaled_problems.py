"""Problems that no count target fixes the scale of (sums only, or counts over some records only), with their weights
and values in other units: the same problem times 1e10 or 1e-10 must give the same weights, scaled, or the same
refusal. A target of 0 was held to one unit of whatever unit the weights and values were in (R survey's ``1 + |t|``
is 1 there), and the reachability check allowed 1e-9 of one unit of slack around every count or sum."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from microplex import Calibrator
from microplex._errors import ConvergenceError, DataValidationError
from microplex.calibration import Target

FACTORS = [(1e10, 1.0), (1e-10, 1.0), (1.0, 1e10), (1.0, 1e-10), (1e10, 1e10), (1e-10, 1e-10), (1e10, 1e-10),
           (1e-10, 1e10)]


def _scaled(df: pd.DataFrame, targets: list[Target], sw: float, sv: float) -> tuple[pd.DataFrame, list[Target]]:
    """The same problem with weights times ``sw`` and values times ``sv`` (each target in its new unit)."""
    factor = {"count": sw, "sum": sw * sv, "mean": sv}
    return df.assign(weight=df["weight"] * sw, y=df["y"] * sv), [
        Target(t.value * factor[t.aggregate], aggregate=t.aggregate, variable=t.variable, filters=t.filters)
        for t in targets]


def _fit(df: pd.DataFrame, targets: list[Target], method: str, bounds: tuple[float, float] | None) -> np.ndarray | type:
    """The weights, or the class of the refusal."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return Calibrator(method, bounds=bounds).fit(df, targets).weights.to_numpy()
        except (ConvergenceError, DataValidationError) as e:
            return type(e)


def _same(base: np.ndarray | type, scaled: np.ndarray | type, sw: float) -> bool:
    """The same refusal, or the same weights times ``sw`` to a relative 1e-8 (a weight below 1e-12 of the largest,
    a linear solve's 0, to rounding of the largest)."""
    if isinstance(base, type) or isinstance(scaled, type):
        return base is scaled
    want = base * sw
    return bool(np.allclose(scaled, want, rtol=1e-8, atol=1e-12 * float(np.abs(want).max())))


@st.composite
def _problem(draw) -> tuple[pd.DataFrame, list[Target], str, tuple[float, float] | None]:
    """Records in groups a, b, c, and targets that do not reach every record with a count: sums only (some of 0,
    some that no weights reach), or a count over one group beside sums and means."""
    n = draw(st.integers(2, 20))
    g = draw(st.lists(st.sampled_from("abc"), min_size=n, max_size=n))
    # values whose sums stay normal floats in every unit drawn (1e-10 x 1e-10): a subnormal sum (2.2e-309 x 1e-10)
    # holds a few bits, so no solve can agree with the one at 1 to 1e-8 there
    normal = st.floats(-1e3, 1e3, allow_subnormal=False).filter(lambda v: v == 0 or abs(v) >= 1e-200)
    y = draw(st.lists(st.one_of(normal, st.sampled_from([0.0, 1.0, 40.0, -3.0])), min_size=n, max_size=n))
    w = draw(st.lists(st.floats(0.5, 50.0), min_size=n, max_size=n))
    df = pd.DataFrame({"g": pd.Series(g, dtype=object), "y": pd.Series(y, dtype=float), "weight": w})
    present = sorted(set(g))
    cell = st.sampled_from([None, *present])
    if draw(st.booleans()):
        specs = [("sum", c) for c in draw(st.lists(cell, min_size=1, max_size=2, unique=True))]
    else:
        specs = [("count", draw(st.sampled_from(present)))]
        specs += draw(st.lists(st.tuples(st.sampled_from(["sum", "mean", "count"]), cell), max_size=2, unique=True))
        specs = list(dict.fromkeys(specs))
    targets = []
    for aggregate, c in specs:
        m = np.ones(n, dtype=bool) if c is None else (df["g"] == c).to_numpy()
        wm = df["weight"].to_numpy()[m] * np.array(draw(st.lists(st.floats(0.3, 3.0), min_size=int(m.sum()),
                                                                   max_size=int(m.sum()))))
        ym = df["y"].to_numpy()[m]
        if aggregate == "count":
            value = float(wm.sum())
        elif aggregate == "sum":
            value = draw(st.sampled_from([1.0, 0.0, -1.0])) * float(np.sum(wm * ym))
        else:
            value = float(np.sum(wm * ym) / wm.sum())
        targets.append(Target(value, aggregate=aggregate, variable=None if aggregate == "count" else "y",
                              filters={} if c is None else {"g": c}))
    method = draw(st.sampled_from(["raking", "linear", "logit"]))
    bounds = draw(st.sampled_from([(0.1, 10.0)] if method == "logit" else [None, (0.2, 5.0), (0.0, np.inf)]))
    return df, targets, method, bounds


@settings(max_examples=40, deadline=None, derandomize=True)
@given(problem=_problem(), factors=st.sampled_from(FACTORS))
def test_a_problem_in_other_units_gives_the_same_weights_or_the_same_refusal(problem, factors):
    """Before: of 300 such problems (without sums that no weights reach) in 8 units each, 118 pairs differed, each
    with a target of 0: weights 1.7e-6 off those at 1 (a zero sum at weights of 1e-10), a zero sum out of reach within
    the bounds "met" at sizes of 1e-20; with such sums drawn too, a ConvergenceError where the problem at 1 raises
    DataValidationError."""
    df, targets, method, bounds = problem
    sw, sv = factors
    base = _fit(df, targets, method, bounds)
    assert _same(base, _fit(*_scaled(df, targets, sw, sv), method, bounds), sw)


def _netting() -> pd.DataFrame:
    rng = np.random.default_rng(26)
    n = 21
    return pd.DataFrame({"y": np.where(rng.random(n) < 0.3, 0.0, rng.uniform(-1e3, 1e3, n)),
                         "weight": rng.uniform(0.5, 50, n)})


@pytest.mark.parametrize(("sw", "sv"), [(1e-10, 1.0), (1.0, 1e-10)])
def test_a_zero_sum_at_small_weights_or_values_is_solved_as_at_1(sw, sv):
    """A net sum of 0 over values of both signs. Before: at weights (or values) of 1e-10 the solve stopped once the
    sum was within 1e-10 of 0 (one unit of 1e-10 units): weights 1.7e-6 relative off those at 1, the sum 1e-4 of its
    records' size off 0 where at 1 it is within 1e-15 of it."""
    df = _netting()
    target = [Target(0.0, aggregate="sum", variable="y")]
    base = Calibrator().fit(df, target).weights.to_numpy()
    small, tg = _scaled(df, target, sw, sv)
    w = Calibrator().fit(small, tg).weights.to_numpy()
    np.testing.assert_allclose(w, base * sw, rtol=1e-8)
    size = float(np.sum(np.abs(w * small["y"].to_numpy())))
    assert abs(float(np.sum(w * small["y"].to_numpy()))) < 1e-12 * size


def test_a_zero_sum_out_of_reach_within_the_bounds_is_refused_at_any_size():
    """Values 0, 40 and 1 (none negative): within ratios (0.2, 5) their sum is at least 59.4, never 0. Before: with
    weights and values of 1e-10 (sums of 1e-20) the fit returned weights as converged, sum(y) 5.9e-19 "within
    rounding" of 0 and the count of group c met, instead of refusing as at 1."""
    df = pd.DataFrame({"g": ["c", "b", "b"], "y": [0.0, 40.0, 1.0], "weight": [30.4, 6.97, 18.3]})
    targets = [Target(32.67, filters={"g": "c"}), Target(0.0, aggregate="sum", variable="y")]
    for sw, sv in [(1.0, 1.0), (1e-10, 1e-10)]:
        with pytest.raises(ConvergenceError, match=r"cannot be met within the bounds \(0.2, 5.0\): sum\(y\)"):
            Calibrator(bounds=(0.2, 5.0)).fit(*_scaled(df, targets, sw, sv))


@pytest.mark.parametrize("sv", [1.0, 1e-10])
def test_a_sum_over_records_that_all_contribute_0_is_bad_input_at_any_size(sv):
    """A sum of 5 over records whose values are all 0. Before: at values of 1e-10 (a target of 5e-10) it passed the
    reachability check as within 1e-9 (of one unit) of 0, and the solve failed with a ConvergenceError."""
    df = pd.DataFrame({"g": ["a", "b", "b", "a"], "y": [0.0, 3.0, 8.0, 0.0], "weight": [2.0, 1.0, 4.0, 3.0]})
    with pytest.raises(DataValidationError, match=r"every record its filter selects contributes 0 to 'y'"):
        Calibrator().fit(df.assign(y=df["y"] * sv), [Target(5.0 * sv, aggregate="sum", variable="y",
                                                            filters={"g": "a"})])
