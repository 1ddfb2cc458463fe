"""Initial weights far from the targets' scale: the soft Calibrator priced misses against the distance from the
initial weights, so weights of 1 (or in thousands) against targets in persons left the targets missed by up to 100%
and said converged; SparseCalibrator refused the feasible problem with weights of 1e-9 (a HiGHS "Model error" whose
advice blamed the range "1e-09 to 1e-09"). Both now solve from the initial weights times the power of two nearest
the targets' ratio to their initial totals (design.target_scale)."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import OptimizeResult

from microplex import ConvergenceError
from microplex.calibration import Calibrator, SparseCalibrator, Targets, feasibility
from microplex.calibration.design import build_design, in_weight_units, target_scale

N = 3.3e8


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(24)
    n = 600
    return pd.DataFrame({"g": rng.integers(0, 5, n), "h": rng.choice(list("abc"), n), "inc": rng.lognormal(10, 1, n)})


@pytest.fixture(scope="module")
def targets(frame) -> Targets:
    rng = np.random.default_rng(1)
    n = len(frame)
    cnt = frame.groupby("g").size() / n * N * rng.uniform(0.95, 1.05, 5)
    hc = frame.groupby("h").size() / n * cnt.sum()
    inc = frame.inc.groupby(frame.g).sum() / n * N * 1.02
    return (Targets.from_margins({"g": cnt, "h": hc})
            + Targets.from_margins({"g": inc}, aggregate="sum", variable="inc"))


def _worst_miss(frame: pd.DataFrame, targets: Targets, w: np.ndarray) -> float:
    """Every target's relative miss, recomputed with pandas."""
    out = []
    for t in targets:
        (col, val), = t.filters.items()
        mask = (frame[col] == val).to_numpy()
        y = frame["inc"].to_numpy() if t.aggregate == "sum" else np.ones(len(frame))
        out.append(abs((w * y)[mask].sum() / t.value - 1))
    return max(out)


def test_target_scale_is_the_power_of_two_nearest_the_median_ratio(frame, targets):
    d1 = build_design(frame.assign(w=1.0), targets, "w", None)
    ratio = np.median(targets_values(targets) / np.asarray(d1.x.T @ d1.d).ravel())
    assert target_scale(d1) == 2.0 ** round(np.log2(ratio))
    at_scale = build_design(frame.assign(w=target_scale(d1)), targets, "w", None)
    assert target_scale(at_scale) == 1.0  # weights already at the targets' scale are left as they are


def targets_values(targets: Targets) -> np.ndarray:
    return np.array([t.value for t in targets])


@pytest.mark.parametrize("method", ["raking", "linear"])
@pytest.mark.parametrize("d0", [1.0, 1e-9])
def test_soft_calibration_from_weights_far_below_the_targets_meets_them(frame, targets, method, d0):
    """Before: weights of 1 (or 1e-9) against targets for a population of 3.3e8 missed targets by up to 100% (total
    weight 4,847, or the weights unchanged), converged=True."""
    cal = Calibrator(method, soft=True).fit(frame.assign(w=d0), targets, weight_col="w")
    w = cal.weights.to_numpy()
    assert cal.summary["converged"]
    assert _worst_miss(frame, targets, w) < 1e-3  # tolerance 0.01
    assert bool(cal.report()["met"].all())
    # the same weights as from the initial weights at the targets' scale (a power of two apart: the same start)
    factor = target_scale(build_design(frame.assign(w=d0), targets, "w", None))
    ref = Calibrator(method, soft=True).fit(frame.assign(w=d0 * factor), targets, weight_col="w").weights.to_numpy()
    np.testing.assert_array_equal(w, ref)
    # ratios and initial weights stay those of the weights given
    assert cal.summary["min_ratio"] == pytest.approx(float((w / d0).min()), rel=1e-12)
    assert cal.summary["max_ratio"] == pytest.approx(float((w / d0).max()), rel=1e-12)
    assert (cal.result_.initial_weights == d0).all()


def test_a_hard_solve_is_not_scaled(frame, targets):
    """A hard solve's optimum does not depend on the initial weights' scale where the counts fix the total: met from
    weights of 1 against targets for 3.3e8 (solved from the targets' scale, beyond Calibrator's HARD_SCALE)."""
    cal = Calibrator().fit(frame.assign(w=1.0), targets, weight_col="w")
    assert _worst_miss(frame, targets, cal.weights.to_numpy()) < 1e-12


@pytest.mark.parametrize("method", ["l0", "l1"])
def test_sparse_with_equal_weights_far_below_the_targets_solves(frame, targets, method):
    """Before: initial weights all 1e-9 against targets for a population of 3.3e8 raised ConvergenceError (HiGHS
    Status 2: Model error), while the problem is feasible."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sc = SparseCalibrator(60, method=method, seed=0).fit(frame.assign(w=1e-9), targets, weight_col="w")
    w = sc.weights.to_numpy()
    assert _worst_miss(frame, targets, w) <= 0.005 * (1 + 1e-9)
    assert sc.summary["within_tolerance"]


def test_sparse_weights_in_any_unit_against_the_same_targets_keep_the_same_records(frame, targets):
    """Weights times a power of two against the same targets start from the same scaled weights: the same records
    and weights (before: weights of 1 and of 2**17 kept other records)."""
    fits = []
    for d0 in (1.0, 2.0**17, 2.0**-30):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fits.append(SparseCalibrator(60, seed=0).fit(frame.assign(w=d0), targets, weight_col="w").weights.to_numpy())
    np.testing.assert_array_equal(fits[1], fits[0])
    np.testing.assert_array_equal(fits[2], fits[0])


def test_a_solver_failure_with_equal_weights_names_the_targets_ratio_not_a_range(frame, targets, monkeypatch):
    """Before: "The initial weights range from 1e-09 to 1e-09; initial weights within fewer orders of magnitude"."""
    work = in_weight_units(build_design(frame.assign(w=1e-9), targets, "w", None))
    monkeypatch.setattr(feasibility, "milp", lambda *a, **k: OptimizeResult(
        x=None, status=2, success=False, message="(HiGHS Status 2: Model error)"))
    with pytest.raises(ConvergenceError, match="failed numerically") as info:
        feasibility.lp_vertex(work, 0.005)
    text = str(info.value)
    assert "range from" not in text and "orders of magnitude" not in text
    ratio = float(re.search(r"the targets are (\S+) times the totals the initial weights reach", text).group(1))
    expected = np.median(targets_values(targets) / np.asarray(work.x.T @ (work.d * work.unit)).ravel())
    assert ratio == pytest.approx(expected, rel=1e-2)
    assert "all near 1e-09" in text


def test_units_no_count_target_reaches_keep_the_callers_scale():
    """A count of one group (2,000 of group a among 90,000 persons) leaves the other group's weights to the caller:
    the starting scale is the targets' only where the count targets reach every unit (the pipeline's streamed
    sparsify kept 22,868 of 90,000 when the others were scaled by 1/4)."""
    from microplex import Calibrator, SparseCalibrator, Target, Targets
    from microplex.calibration.design import build_design, target_scale

    rng = np.random.default_rng(3)
    df = pd.DataFrame({"g": rng.choice(["a", "b"], 600, p=[0.1, 0.9]), "w": 150.0})
    targets = Targets([Target(2000.0, filters={"g": "a"})])
    assert target_scale(build_design(df, targets, "w", None)) == 1.0
    soft = Calibrator(method="raking", soft=True).fit(df, targets, weight_col="w").weights
    assert np.allclose(np.asarray(soft)[df["g"].to_numpy() == "b"], 150.0, rtol=1e-9)
    sparse = np.asarray(SparseCalibrator(max_records=100).fit(df, targets, weight_col="w").weights)
    assert sparse[df["g"].to_numpy() == "b"].sum() > 0.5 * 150.0 * (df["g"] == "b").sum()
