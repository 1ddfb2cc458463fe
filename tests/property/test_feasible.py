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
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from microplex import Calibrator, DataValidationError, MicroplexError, SparseCalibrator
from microplex.calibration import Target, Targets

from .test_calibration import _check_met

GROUPS = ["a", "b", "c"]


def _own_target(df: pd.DataFrame, aggregate: str, filters: dict, factor: float, *, rows: np.ndarray | None = None,
                entity: str = "person") -> Target:
    """The target ``aggregate`` (of ``y``) over the records matching ``filters`` (and ``rows``) at the frame's own
    weights: a count or sum times ``factor``, a mean as it is (the initial weights times ``factor`` meet it)."""
    m = np.ones(len(df), dtype=bool) if rows is None else rows.copy()
    for col, v in filters.items():
        m &= (df[col] == v).to_numpy(bool)
    w, y = df["weight"].to_numpy(float)[m], df["y"].to_numpy(float)[m]
    if aggregate == "count":
        return Target(factor * float(w.sum()), filters=filters, entity=entity)
    if aggregate == "sum":
        return Target(factor * float(np.sum(w * y)), aggregate="sum", variable="y", filters=filters)
    return Target(float(np.sum(w * y) / w.sum()), aggregate="mean", variable="y", filters=filters)


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
    specs = draw(st.lists(st.tuples(st.sampled_from(["count", "sum", "mean"]), st.sampled_from([None, *present])),
                          min_size=1, max_size=5, unique=True))
    if draw(st.booleans()):  # a total beside every group's count: redundant, agreeing
        specs = list(dict.fromkeys([("count", None), *[("count", v) for v in present], *specs]))
    targets = [_own_target(df, aggregate, {} if value is None else {"g": value}, factor) for aggregate, value in specs]
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


@given(problem=feasible(), method=st.sampled_from(["l1", "l0", "l0 all records within bounds"]))
def test_sparse_calibrator_solves_a_feasible_problem(problem, method):
    """Without a budget, or (l0) with every record allowed and bounds that hold the known solution."""
    df, targets, factor = problem
    # zero weights meet targets that are all means or zero totals: the sparsest answer would be empty (refused)
    assume(any(t.aggregate != "mean" and t.value != 0 for t in targets))
    kw = {"method": method}
    if method.endswith("bounds"):
        kw = {"method": "l0", "max_records": len(df), "bounds": (0.5, 2.0)}
    try:
        sc = SparseCalibrator(tolerance=0.01, **kw).fit(df, targets)
    except Exception as exc:  # noqa: BLE001 - any refusal of a feasible problem is the finding
        _raise_with_problem(exc, df, targets, factor)
    w = sc.weights.to_numpy()
    assert np.isfinite(w).all() and (w >= 0).all() and (w > 0).any()
    for t in sc.result_.design.targets:
        _check_met(df, t, w, 0.01 * (1 + 1e-6), "relative")


@st.composite
def margin_problems(draw) -> tuple[pd.DataFrame, dict, float]:
    """A frame of two categorical columns and its initial-weight margins times one factor (single or crossed)."""
    n = draw(st.integers(1, 25))
    g = draw(st.lists(st.sampled_from(GROUPS), min_size=n, max_size=n))
    h = draw(st.lists(st.integers(0, 2), min_size=n, max_size=n))
    w = draw(st.lists(st.floats(0.5, 50.0), min_size=n, max_size=n))
    df = pd.DataFrame({"g": g, "h": pd.Series(h, dtype="int64"), "weight": w})
    factor = draw(st.sampled_from([1.0, 0.8, 1.25, 1.5]))
    kind = draw(st.sampled_from(["g", "g+h", "gxh", "gxh+g"]))
    margins: dict = {}
    if kind in ("g", "g+h", "gxh+g"):
        margins["g"] = {k: factor * v for k, v in df.groupby("g")["weight"].sum().items()}
    if kind == "g+h":
        margins["h"] = {int(k): factor * v for k, v in df.groupby("h")["weight"].sum().items()}
    if kind in ("gxh", "gxh+g"):
        margins[("g", "h")] = {(a, int(b)): factor * v for (a, b), v in df.groupby(["g", "h"])["weight"].sum().items()}
    return df, margins, factor


def _write_parts(df: pd.DataFrame, folder: str, parts: int) -> None:
    """``df`` as up to ``parts`` Parquet files in ``folder`` (a dataset)."""
    for i, chunk in enumerate(np.array_split(np.arange(len(df)), parts)):
        if len(chunk):
            df.iloc[chunk].to_parquet(f"{folder}/part-{i}.parquet", index=False)


@given(problem=margin_problems(), method=st.sampled_from(["raking", "linear", "logit"]),
       out_of_core=st.booleans(), parts=st.integers(1, 3))
def test_rake_dataset_solves_a_feasible_problem(problem, method, out_of_core, parts):
    import tempfile

    from microplex.scale import rake_dataset

    df, margins, factor = problem
    bounds = (0.5, 2.0) if method == "logit" else None
    with tempfile.TemporaryDirectory() as tmp:
        _write_parts(df, tmp, parts)
        try:
            res = rake_dataset(tmp, margins, "weight", method=method, bounds=bounds, max_cells=0 if out_of_core else 2_000_000)
        except Exception as exc:  # noqa: BLE001 - any refusal of a feasible problem is the finding
            raise AssertionError(f"a feasible problem was refused: {exc}\nfactor {factor}\n{df}\n{margins}") from exc
        w = res.weights(df)
    # the unique solution of margins the initial weights times one factor meet: every ratio is that factor
    np.testing.assert_allclose(np.asarray(w, dtype=float), factor * df["weight"].to_numpy(), rtol=1e-6)


@st.composite
def household_problems(draw) -> tuple[pd.DataFrame, list[Target], float]:
    """Households of 1-3 persons (one weight each), person counts/sums/means and household counts of their
    initial-weight totals times one factor."""
    sizes = draw(st.lists(st.integers(1, 3), min_size=1, max_size=10))
    hid = np.repeat(np.arange(len(sizes)), sizes)
    n = len(hid)
    hw = draw(st.lists(st.floats(0.5, 50.0), min_size=len(sizes), max_size=len(sizes)))
    g = draw(st.lists(st.sampled_from(GROUPS), min_size=n, max_size=n))
    y = draw(st.lists(st.sampled_from([0.0, 1.0, 40.0, 12.5]), min_size=n, max_size=n))
    df = pd.DataFrame({"hid": hid, "g": g, "y": y, "weight": np.asarray(hw)[hid]})
    factor = draw(st.sampled_from([1.0, 0.8, 1.5]))
    present = list(pd.unique(df["g"]))
    first = ~df["hid"].duplicated().to_numpy()
    specs = draw(st.lists(st.tuples(st.sampled_from(["count", "sum", "mean", "household"]), st.sampled_from([None, *present])),
                          min_size=1, max_size=5, unique=True))
    targets = []
    for aggregate, value in specs:
        flt = {} if value is None else {"g": value}
        if aggregate != "household":
            targets.append(_own_target(df, aggregate, flt, factor))
        elif (first & ((df["g"] == value).to_numpy(bool) if flt else True)).any():
            targets.append(_own_target(df, "count", flt, factor, rows=first, entity="household"))
    return df, targets, factor


def _check_households_met(df: pd.DataFrame, targets: list[Target], w: np.ndarray, rtol: float, relative: str) -> None:
    """Person targets on every record, household targets on each household's first record (independently of
    the library's report)."""
    first = ~df["hid"].duplicated().to_numpy()
    for t in targets:
        if t.entity == "household":
            _check_met(df[first].reset_index(drop=True), t, w[first], rtol, relative)
        else:
            _check_met(df, t, w, rtol, relative)


@given(problem=household_problems(), method=st.sampled_from(["raking", "linear", "logit"]))
def test_household_calibration_solves_a_feasible_problem(problem, method):
    df, targets, factor = problem
    assume(targets)
    bounds = (0.5, 2.0) if method == "logit" else None
    try:
        cal = Calibrator(method, bounds=bounds).fit(df, targets, household_col="hid")
    except Exception as exc:  # noqa: BLE001 - any refusal of a feasible problem is the finding
        _raise_with_problem(exc, df, targets, factor)
    w = cal.result_.record_weights.to_numpy()
    assert np.isfinite(w).all()
    per_household = pd.Series(w).groupby(df["hid"].to_numpy()).nunique()
    assert (per_household == 1).all()
    _check_households_met(df, targets, w, cal.summary["met_rtol"], "survey")


@given(problem=household_problems(), method=st.sampled_from(["l1", "l0"]))
def test_household_sparse_calibration_solves_a_feasible_problem(problem, method):
    df, targets, factor = problem
    assume(any(t.aggregate != "mean" and t.value != 0 for t in targets))
    try:
        sc = SparseCalibrator(method=method, tolerance=0.01).fit(df, targets, household_col="hid")
    except Exception as exc:  # noqa: BLE001 - any refusal of a feasible problem is the finding
        _raise_with_problem(exc, df, targets, factor)
    w = sc.result_.record_weights.to_numpy()
    assert np.isfinite(w).all() and (w >= 0).all() and (w > 0).any()
    _check_households_met(df, targets, w, 0.01 * (1 + 1e-6), "relative")


def _perturbed(draw, margins: dict) -> dict:
    """One margin's cells each moved by its own factor (0.9, 1 or 1.1): the solution gives each cell's records
    that ratio, which the initial weights do not meet (with several margins, moved cells would disagree on the
    total, so only a single margin is moved)."""
    ((key, cells),) = margins.items()
    return {key: {k: v * draw(st.sampled_from([0.9, 1.0, 1.1])) for k, v in cells.items()}}


def _calibrated(df: pd.DataFrame, margins: dict, method: str, draw) -> tuple[dict, tuple | None, np.ndarray | None]:
    """The margins (a single one moved cell by cell, :func:`_perturbed`), the bounds of ``method``, and
    ``Calibrator``'s weights for them (None where it refuses: a moved margin out of the bounds' reach)."""
    from microplex.calibration import Targets

    if len(margins) == 1:
        margins = _perturbed(draw, margins)
    bounds = (0.5, 2.0) if method == "logit" else None
    try:
        weights = Calibrator(method, bounds=bounds).fit(df, Targets.from_margins(margins)).weights.to_numpy()
    except MicroplexError:
        weights = None
    return margins, bounds, weights


@given(problem=margin_problems(), method=st.sampled_from(["raking", "linear", "logit"]), data=st.data())
def test_rake_frame_and_calibrator_are_one_solver(problem, method, data):
    """``rake_frame`` (the out-of-core path's solve) and ``Calibrator`` give the same weights for the same
    margins: one solver, one distance."""
    from microplex.scale import rake_frame

    df, margins, _ = problem
    margins, bounds, expected = _calibrated(df, margins, method, data.draw)
    if expected is None:  # the other path refuses too
        with pytest.raises(MicroplexError):
            rake_frame(df, margins, "weight", method=method, bounds=bounds)
        return
    res = rake_frame(df, margins, "weight", method=method, bounds=bounds)
    np.testing.assert_allclose(np.asarray(res.weights(df), dtype=float), expected, rtol=1e-7)


@given(problem=margin_problems(), method=st.sampled_from(["raking", "linear", "logit"]), parts=st.integers(1, 3),
       data=st.data())
def test_rake_dataset_out_of_core_is_the_calibrator(problem, method, parts, data):
    """``rake_dataset`` passing over 1-3 files every iteration (``max_cells=0``) gives ``Calibrator``'s weights, for
    a single margin whose cells the initial weights do not meet (:func:`_perturbed`) as for several that they
    meet times one factor."""
    import tempfile

    from microplex.scale import rake_dataset

    df, margins, _ = problem
    margins, bounds, expected = _calibrated(df, margins, method, data.draw)
    with tempfile.TemporaryDirectory() as tmp:
        _write_parts(df, tmp, parts)
        if expected is None:
            with pytest.raises(MicroplexError):
                rake_dataset(tmp, margins, "weight", method=method, bounds=bounds, max_cells=0)
            return
        res = rake_dataset(tmp, margins, "weight", method=method, bounds=bounds, max_cells=0)
        got = np.asarray(res.weights(df), dtype=float)
    np.testing.assert_allclose(got, expected, rtol=1e-7)


@given(problem=feasible(), method=st.sampled_from(["raking", "linear", "logit"]))
def test_integer_weights_calibrate_as_repeated_records(problem, method):
    """A record of integer weight k calibrates as k records of weight 1: each copy gets the record's ratio."""
    df, targets, _ = problem
    k = np.maximum(np.round(df["weight"].to_numpy() / 10.0), 1.0)
    df = df.assign(weight=k)
    # the problem's targets rebuilt on the new weights (their totals times 1.1, their means): feasible
    rebuilt = [_own_target(df, t.aggregate, t.filters, 1.1) for t in targets]
    rep = df.loc[df.index.repeat(k.astype(int))].reset_index(drop=True).assign(weight=1.0)
    bounds = (0.5, 2.0) if method == "logit" else None
    a = Calibrator(method, bounds=bounds).fit(df, rebuilt).weights.to_numpy() / k
    b = Calibrator(method, bounds=bounds).fit(rep, rebuilt).weights.to_numpy()
    np.testing.assert_allclose(np.repeat(a, k.astype(int)), b, rtol=1e-7, atol=1e-9)


@given(problem=feasible(), method=st.sampled_from(["raking", "linear", "logit"]), fmt=st.sampled_from(["csv", "parquet"]))
def test_cli_calibrate_solves_a_feasible_problem(problem, method, fmt):
    """``microplex calibrate`` on a data file and a targets file written by ``Targets.to_frame`` (a problem with a
    known solution) exits 0 and writes weights that meet every target."""
    import tempfile
    from pathlib import Path

    from typer.testing import CliRunner

    from microplex.calibration import Targets
    from microplex.cli import app

    df, targets, factor = problem
    if str(df["g"].dtype) == "category":
        df = df.assign(g=df["g"].astype(str))
    with tempfile.TemporaryDirectory() as tmp:
        data, tfile, out = Path(tmp) / f"data.{fmt}", Path(tmp) / f"targets.{fmt}", Path(tmp) / "out.parquet"
        frame = Targets(targets).to_frame()
        if fmt == "csv":
            df.to_csv(data, index=False)
            frame.to_csv(tfile, index=False)
        else:
            df.to_parquet(data, index=False)
            frame.to_parquet(tfile, index=False)
        args = ["calibrate", str(data), "--targets", str(tfile), "--method", method, "-o", str(out), "-q"]
        if method == "logit":
            args += ["--bounds", "0.5,2"]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, (result.output, df, [(t.name, t.value) for t in targets], factor)
        w = pd.read_parquet(out)["weight"].to_numpy()
        read = pd.read_csv(data) if fmt == "csv" else df
    for t in Targets(targets):
        _check_met(read, t, w, 1e-8, "survey")


@given(problem=feasible(), method=st.sampled_from(["raking", "linear", "logit"]), seed=st.integers(0, 2**32 - 1))
def test_calibrated_weights_do_not_depend_on_the_order_of_the_records(problem, method, seed):
    """The calibrated weights of shuffled records are the shuffled weights: the solution of a calibration is the
    records', not their order's (a solve that depended on the order would give two answers to one problem)."""
    df, targets, _ = problem
    order = np.random.default_rng(seed).permutation(len(df))
    bounds = (0.5, 2.0) if method == "logit" else None
    a = Calibrator(method, bounds=bounds).fit(df, targets).weights.to_numpy()
    b = Calibrator(method, bounds=bounds).fit(df.iloc[order], targets).weights.to_numpy()
    np.testing.assert_allclose(a[order], b, rtol=1e-7, atol=1e-9)


@given(problem=feasible(), method=st.sampled_from(["l0", "l1", "l0 bounds"]), seed=st.integers(0, 2**32 - 1),
       relabel=st.booleans())
def test_sparse_subsets_do_not_depend_on_the_order_of_the_records(problem, method, seed, relabel):
    """A sparse subset of shuffled records (under other index labels, columns and targets in another order) is the
    shuffled subset: the same weighted records, records whose values are all alike interchangeable (the balanced
    samples drew by position and along the targets' cells, and the linear programs broke ties by position, so the
    order chose among equally good subsets)."""
    df, targets, _ = problem
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(df))
    shuffled = df.iloc[order, rng.permutation(df.shape[1])]
    if relabel:
        shuffled = shuffled.set_axis([f"r{i}" for i in range(len(df))])
    a = _sparse_weights(df, targets, method)
    b = _sparse_weights(shuffled, [targets[int(k)] for k in rng.permutation(len(targets))], method)
    assert (a is None) == (b is None)  # refused in both orders, or solved in both
    if a is None:
        return

    def weighted(frame: pd.DataFrame, w: np.ndarray) -> pd.DataFrame:
        out = frame[["g", "y", "weight"]].assign(g=frame["g"].astype(str), kept=w).reset_index(drop=True)
        return out.sort_values(list(out.columns)).reset_index(drop=True)

    pd.testing.assert_frame_equal(weighted(shuffled, b), weighted(df, a))


def _in_unit(df: pd.DataFrame, targets: list[Target], unit: float) -> tuple[pd.DataFrame, list[Target]]:
    """The same problem with weights and count and sum targets times ``unit`` (a power of two: exact)."""
    scaled = [t if t.aggregate == "mean" else Target(t.value * unit, t.aggregate, t.variable, t.filters, name=t.name)
              for t in targets]
    return df.assign(weight=df["weight"] * unit), scaled


def _calibrated_weights(df: pd.DataFrame, targets: list[Target], method: str) -> np.ndarray | None:
    """``Calibrator`` weights (``"logit"`` within bounds (0.5, 2); ``"soft"``: raking with soft targets at a 1%
    tolerance, a trade-off between the targets and the distance that no unit may move, or None where the soft fit
    refuses totals whose penalty float64 cannot hold, e.g. a sum of 2e-311: the refusal is documented and tested
    elsewhere)."""
    if method == "soft":
        try:
            return Calibrator("raking", soft=True, default_tolerance=0.01).fit(df, targets).weights.to_numpy()
        except DataValidationError as e:
            assert "Soft calibration cannot weigh" in str(e)
            return None
    bounds = (0.5, 2.0) if method == "logit" else None
    return Calibrator(method, bounds=bounds).fit(df, targets).weights.to_numpy()


def _sparse_weights(df: pd.DataFrame, targets: list[Target], method: str) -> np.ndarray | None:
    """``SparseCalibrator`` weights at tolerance 0.01 (``"l0 bounds"``: l0 with every record allowed and bounds
    (0.5, 2)), or None where it refuses the problem."""
    kw = {"method": "l0", "max_records": len(df), "bounds": (0.5, 2.0)} if method == "l0 bounds" else {"method": method}
    try:
        return SparseCalibrator(tolerance=0.01, **kw).fit(df, targets).weights.to_numpy()
    except MicroplexError:
        return None


@given(problem=feasible(), method=st.sampled_from(["raking", "linear", "logit", "soft", "l0", "l1", "l0 bounds"]),
       k=st.integers(-40, 40))
def test_weights_in_another_unit_give_the_answer_in_that_unit(problem, method, k):
    """Weights and totals times 2**k (survey weights in persons or in thousands, normalized or not) give the same
    weights times 2**k: the same records, for a sparse subset (which kept others when the linear programs' absolute
    tolerances met weights of another size, and refused totals beyond 1e20)."""
    df, targets, _ = problem
    unit = 2.0**k
    df_u, targets_u = _in_unit(df, targets, unit)
    if method.startswith("l"):
        assume(any(t.aggregate != "mean" and t.value != 0 for t in targets))
        a, b = _sparse_weights(df, targets, method), _sparse_weights(df_u, targets_u, method)
        assert (a is None) == (b is None)  # refused in both units, or solved in both
        if a is not None:
            np.testing.assert_array_equal(b / unit, a)
        return
    a = _calibrated_weights(df, targets, method)
    b = _calibrated_weights(df_u, targets_u, method)
    if a is None or b is None:
        return
    np.testing.assert_allclose(b / unit, a, rtol=1e-7, atol=1e-9 * float(np.abs(a).max()))


@given(problem=feasible(), k=st.integers(-60, 60), bounds=st.sampled_from([(0.9, 1.1), (0.5, 1.2), (0.0, 1.0)]))
def test_the_infeasibility_diagnosis_reads_alike_in_any_unit(problem, k, bounds):
    """The diagnosis of targets that the bounds cannot meet together (often: the factor lies outside them) names the
    same targets and closest values, in the caller's units, whatever the unit of the weights (its linear program
    'did not solve' with weights of 2**40 and named targets that do not conflict with weights of 2**-40)."""
    from microplex import ConvergenceError
    from microplex.calibration.design import build_design
    from microplex.calibration.diagnostics import min_violation

    df, targets, _ = problem
    unit = 2.0**k
    df_u, targets_u = _in_unit(df, targets, unit)
    try:
        design = build_design(df, Targets(targets), "weight", None)
    except MicroplexError:
        return
    design_u = build_design(df_u, Targets(targets_u), "weight", None)
    lo, hi = design.d * bounds[0], design.d * bounds[1]
    try:
        a = min_violation(design, lo, hi)
    except ConvergenceError:
        with pytest.raises(ConvergenceError):
            min_violation(design_u, lo * unit, hi * unit)
        return
    b = min_violation(design_u, lo * unit, hi * unit)
    assert list(b["target"]) == list(a["target"])
    per = np.array([1.0 if t.startswith("mean") else unit for t in b["target"]])
    np.testing.assert_array_equal(b["value"].to_numpy() / per, a["value"].to_numpy())
    np.testing.assert_array_equal(b["closest_achievable"].to_numpy() / per, a["closest_achievable"].to_numpy())


@given(problem=feasible(), method=st.sampled_from(["raking", "linear", "soft", "l0", "l1", "l0 bounds"]),
       k=st.integers(-30, 30))
def test_values_in_another_unit_give_the_same_weights(problem, method, k):
    """The summed variable in another unit (times 2**k: cents for dollars), its sum and mean targets with it, gives
    the same weights: for a sparse subset the same records (its linear programs' rows held absolute tolerances, so
    incomes times 2**20 kept another subset)."""
    df, targets, _ = problem
    unit = 2.0**k
    df_u = df.assign(y=df["y"] * unit)
    # the same values in another unit only where the scaling is exact (a value of 5e-324 times 2**-1 is 0: another
    # frame, whose records rank otherwise)
    assume(np.array_equal(df_u["y"].to_numpy() / unit, df["y"].to_numpy()))
    # known, not fixed: values below 2**-1022 (subnormal) need a row scale beyond 2**1023, which lp_row_scale caps,
    # so l1's rows for 2e-311 and 4e-311 differ by a factor 2 and HiGHS's weights by 1e-13 (bcbc021 alike)
    tiny = np.abs(df["y"].to_numpy())
    assume(method != "l1" or not ((tiny > 0) & (tiny < np.finfo(np.float64).tiny)).any())
    targets_u = [t if t.aggregate == "count" else Target(t.value * unit, t.aggregate, t.variable, t.filters, name=t.name)
                 for t in targets]
    if method.startswith("l"):
        assume(any(t.aggregate != "mean" and t.value != 0 for t in targets))
        a = _sparse_weights(df, targets, method)
        if a is None:
            return  # refusals are the other properties' subject; the unit of a refused problem's values is moot
        b = _sparse_weights(df_u, targets_u, method)
        assert b is not None
        if method == "l1":  # the linear program alone: its rows are the same, so are its weights
            np.testing.assert_array_equal(b, a)
            return
        # l0 calibrates its records, softly where they cannot meet the targets exactly: its misses weighed against
        # unit-free sizes (the penalties weighed them by 1 + |t|: a sum of -451 in one unit and of -0.22 in another
        # kept weights 0.3% apart)
        np.testing.assert_array_equal(b > 0, a > 0)
        np.testing.assert_allclose(b, a, rtol=1e-7, atol=1e-9 * float(np.abs(a).max()))
        return
    a = _calibrated_weights(df, targets, method)
    b = _calibrated_weights(df_u, targets_u, method)
    if a is None or b is None:
        return
    np.testing.assert_allclose(b, a, rtol=1e-7, atol=1e-9 * float(np.abs(a).max()))
