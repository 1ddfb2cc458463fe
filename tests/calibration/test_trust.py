"""Trust: infeasible or degenerate calibrations raise naming the targets; filters and parameters are checked.

Every test here failed on main as of 739bb0e (a silently wrong result, a raw error, or an accepted bad
parameter), except eight cases that pin checks which already held there: the ``!=`` filter operator,
``Calibrator(tol=nan)``, ``max_iter=2.5``, ``method=["raking"]``, nullable weights with NA,
``SparseCalibrator(tolerance="x")``, ``max_records=2.5`` and :func:`test_numeric_strings_are_numbers`.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from microplex import Calibrator, ConvergenceError, ConvergenceWarning, DataValidationError, SparseCalibrator
from microplex.calibration import Target, Targets, parse_filter
from microplex.calibration.design import build_design
from microplex.cli import app


@pytest.fixture()
def people() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 300
    return pd.DataFrame(
        {
            "age": rng.integers(0, 90, n),
            "sex": rng.choice(["f", "m"], n),
            "region": rng.choice(["N", "S", "E"], n),
            "income": rng.gamma(2.0, 1000.0, n),
            "loss": -rng.gamma(2.0, 10.0, n),
            "zero": np.zeros(n),
            "weight": 10.0,
        }
    )


def _mean_above_max(df: pd.DataFrame) -> Targets:
    return Targets([Target(float(df["income"].max()) * 2, "mean", "income")])


# ----------------------------------------------------------------------------- infeasible targets
@pytest.mark.parametrize("method", ["raking", "linear", "logit"])
def test_mean_target_above_every_value_raises(people, method):
    before = people.copy()
    bounds = (0.2, 5.0) if method == "logit" else None
    with pytest.raises(DataValidationError, match=r"mean\(income\)\[\] = .* is outside \[.*\], the range of 'income'"):
        Calibrator(method, bounds=bounds).fit(people, _mean_above_max(people))
    pd.testing.assert_frame_equal(people, before)


@pytest.mark.parametrize("method", ["l1", "l0"])
def test_sparse_mean_target_above_every_value_raises(people, method):
    targets = _mean_above_max(people) + [Target(3000.0)]
    with pytest.raises(DataValidationError, match=r"mean\(income\)\[\] = .* is outside"):
        SparseCalibrator(method=method).fit(people, targets)
    with pytest.raises(DataValidationError, match=r"mean\(income\)\[\] = .* is outside"):
        SparseCalibrator(method=method).fit(people, _mean_above_max(people))


def test_mean_below_every_value_in_a_cell_raises(people):
    low = float(people.loc[people.region == "N", "income"].min()) / 2
    targets = Targets([Target(low, "mean", "income", {"region": "N"})])
    with pytest.raises(DataValidationError, match=r"mean\(income\)\[region == 'N'\] = .* is outside"):
        Calibrator().fit(people, targets)


def test_mean_over_no_records_raises(people):
    targets = Targets([Target(3000.0), Target(50.0, "mean", "income", {"age": pd.Interval(200, 300)})])
    with pytest.raises(DataValidationError, match=r"mean\(income\)\[age in \(200, 300\]\]: a mean over no records"):
        Calibrator().fit(people, targets)


@pytest.mark.parametrize(
    "target,match",
    [
        (Target(100.0, "sum", "zero"), r"sum\(zero\)\[\] = 100 but every record its filter selects contributes 0 to 'zero' \(closest achievable 0\)"),
        (Target(100.0, "sum", "loss"), r"sum\(loss\)\[\] = 100 \(closest achievable 0; reachable: \[-inf, 0\]\)"),
    ],
)
def test_total_no_nonnegative_weights_can_reach_raises(people, target, match):
    with pytest.raises(DataValidationError, match=r"cannot be reached by any non-negative weights: " + match):
        Calibrator("raking").fit(people, Targets([Target(3000.0), target]))


def test_mean_out_of_reach_within_bounds_is_a_convergence_error(people):
    hi = float(people["income"].quantile(0.99))
    targets = Targets([Target(3000.0), Target(hi, "mean", "income")])
    with pytest.raises(ConvergenceError, match=r"cannot be met within the bounds \(0.8, 1.25\): mean\(income\)\[\] = "):
        Calibrator("raking", bounds=(0.8, 1.25)).fit(people, targets)
    with pytest.warns(ConvergenceWarning):
        cal = Calibrator("raking", bounds=(0.8, 1.25), force=True, max_iter=10).fit(people, targets)
    assert not cal.summary["converged"]


def test_post_solve_guard_catches_collapse_without_the_precheck(people, monkeypatch):
    """The guard after the solve does not rely on the check before it: with the pre-check disabled, the
    collapsed weights (which the solver counts as converged) still raise."""
    monkeypatch.setattr("microplex.calibration.calibrator.unreachable_targets", lambda *a, **k: [])
    monkeypatch.setattr("microplex.calibration._sparse_frontier.unreachable_targets", lambda *a, **k: [])
    with pytest.raises(ConvergenceError, match=r"lost all their weight|collapsed|missed by more than"):
        Calibrator().fit(people, _mean_above_max(people))
    with pytest.warns(ConvergenceWarning, match="collapsed|lost all their weight"):
        cal = Calibrator(force=True).fit(people, _mean_above_max(people))
    assert cal.summary["converged"] is False
    with pytest.raises((ConvergenceError, DataValidationError), match=r"keeps 0|no valid subset|zero weights"):
        SparseCalibrator(method="l1").fit(people, _mean_above_max(people))


def test_sparse_needs_a_count_or_sum_to_fix_the_scale(people):
    feasible_mean = Targets([Target(float(people["income"].mean()), "mean", "income")])
    with pytest.raises(DataValidationError, match=r"needs at least one count or sum target with a non-zero value"):
        SparseCalibrator(method="l1").fit(people, feasible_mean)


def test_mean_of_large_values_is_met_in_its_own_units(people):
    """A mean of large values with large weights: the solver's test is in the mean's own relative units."""
    df = people.assign(weight=1e4, income=people["income"] * 1e3)
    v = float(df["income"].mean()) * 1.1
    cal = Calibrator("raking").fit(df, Targets([Target(3e6), Target(v, "mean", "income", {"sex": "f"})]))
    w = cal.weights
    f = df["sex"] == "f"
    assert np.average(df.loc[f, "income"], weights=w[f]) == pytest.approx(v, rel=1e-8)
    assert w.sum() == pytest.approx(3e6, rel=1e-8)


def test_infeasible_mean_on_the_cli_exits_non_zero_and_writes_nothing(people, tmp_path):
    data, out, targets = tmp_path / "d.csv", tmp_path / "w.parquet", tmp_path / "t.csv"
    people.to_csv(data, index=False)
    pd.DataFrame({"aggregate": ["mean"], "variable": ["income"], "value": [people["income"].max() * 2]}).to_csv(
        targets, index=False
    )
    for verb, extra in (("calibrate", []), ("sparsify", ["--method", "l1"])):
        r = CliRunner().invoke(app, [verb, str(data), "--targets", str(targets), "-o", str(out), *extra])
        assert r.exit_code != 0, r.output
        assert "error:" in r.output and "is outside" in r.output
        assert not out.exists()


# ----------------------------------------------------------------------------- filters
def test_two_clauses_on_one_column_intersect():
    assert parse_filter("age >= 18 & age < 65") == {"age": pd.Interval(18, 65, closed="left")}
    assert parse_filter("educ in {1, 2, 3} & educ in {2, 3, 4}") == {"educ": frozenset({2, 3})}
    assert parse_filter("sex == 'f' & sex in {'f', 'm'}") == {"sex": "f"}
    assert parse_filter("age in [10, 20] & age == 15") == {"age": 15}
    assert parse_filter("sex == 'f' & sex == 'm'") == {"sex": frozenset()}


def test_contradicting_clauses_are_an_error_naming_the_target(people):
    with pytest.raises(DataValidationError, match=r"Target 'count\[sex in \{\}\]' has value 100 but its conditions on \['sex'\] exclude each other"):
        Calibrator().fit(people, Targets([Target(100.0, filters="sex == 'f' & sex == 'm'")]))


def test_margins_extra_filter_combines_with_the_margin():
    t = Targets.from_margins({"sex": {"f": 1.0}}, filters="sex == 'm'")
    assert t[0].filters == {"sex": frozenset()}


@pytest.mark.parametrize(
    "flt,match",
    [
        ("age in [65, 18)", r"Filter 'age in \[65, 18\)'.*lower end 65 is above its upper end 18"),
        ("age === 3", r"Filter 'age === 3'.*cannot read the value"),
        ("age in {1: 2}", r"Filter 'age in \{1: 2\}'.*needs a set of values"),
        ("age >= 'abc'", r"Filter \"age >= 'abc'\".*a range needs two numbers"),
        ("age in ['a', 'b')", r"a range needs two numbers"),
        ("age in [nan, 3)", r"cannot read the value 'nan'|a range needs two numbers"),
        ("sex == [1, 2]", r"a filter value must be a str, int, float or bool"),
        ("sex == 'f' &", r"Cannot parse filter clause '' in filter"),
        ("sex == 'f", r"a quote is not closed"),
        ("age != 3", r"operator '!=' is not supported"),
        ("age == nan", r"cannot read the value"),
    ],
)
def test_malformed_filter_strings_name_the_filter(flt, match):
    with pytest.raises(DataValidationError, match=match):
        Target(1.0, filters=flt)


@pytest.mark.parametrize(
    "flt,match",
    [
        ({"age": {"a": 1}}, r"a filter value must be a str, int, float or bool.*Got \{'a': 1\} \(dict\)"),
        ({"age": [[1, 2]]}, r"a filter value must be"),
        ({"age": float("nan")}, r"an equality value must be finite"),
        ({3: 1}, r"filter columns must be non-empty strings"),
        ({"age": pd.Interval(0.0, float("nan"), closed="left") if False else object()}, r"a filter value must be"),
        ([("age", 1)], r"filters must be a dict"),
    ],
)
def test_malformed_filter_dicts_are_data_errors(flt, match):
    with pytest.raises(DataValidationError, match=match):
        Target(1.0, filters=flt)


def test_filter_on_unknown_column_names_target_and_filter(people):
    with pytest.raises(DataValidationError, match=r"Target 'count\[nope == 1\]' \(filter 'nope == 1'\) uses column 'nope'"):
        Calibrator().fit(people, Targets([Target(1.0, filters="nope == 1")]))


def test_quoted_separators_do_not_split_a_clause():
    assert parse_filter("name == 'a & b' & x == 1") == {"name": "a & b", "x": 1}


# ----------------------------------------------------------------------------- parameters
@pytest.mark.parametrize(
    "params,match",
    [
        ({"tol": "small"}, r"The 'tol' parameter must be a finite float in \(0, 1\)"),
        ({"tol": float("nan")}, r"'tol' parameter"),
        ({"max_iter": 2.5}, r"The 'max_iter' parameter must be an int >= 1. Got 2.5"),
        ({"max_iter": True}, r"The 'max_iter' parameter must be an int >= 1. Got True"),
        ({"soft": "yes"}, r"The 'soft' parameter must be a bool"),
        ({"force": 1}, r"The 'force' parameter must be a bool"),
        ({"diagnose": None}, r"The 'diagnose' parameter must be a bool"),
        ({"collapse": "no"}, r"The 'collapse' parameter must be a bool"),
        ({"bounds": ("a", 2)}, r"The 'bounds' parameter must be None or a pair \(lower, upper\) of numbers"),
        ({"bounds": (float("nan"), 2.0)}, r"'bounds' parameter must be None or a pair"),
        ({"bounds": [0.5]}, r"'bounds' parameter must be None or a pair"),
        ({"bounds": "0.5,2"}, r"'bounds' parameter must be None or a pair"),
        ({"method": ["raking"]}, r"The 'method' parameter must be a Distance or one of"),
        ({"default_tolerance": -1}, r"The 'default_tolerance' parameter must be a finite float > 0"),
        ({"consistency_rtol": float("inf")}, r"The 'consistency_rtol' parameter must be a finite float >= 0"),
    ],
)
def test_calibrator_parameters_are_checked(people, params, match):
    with pytest.raises(DataValidationError, match=match):
        Calibrator(**params).fit(people, Targets([Target(3000.0)]))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"weight_col": 5}, r"The 'weight_col' parameter must be a column name"),
        ({"household_col": 3}, r"The 'household_col' parameter must be a column name"),
        ({"geography": "region"}, r"The 'geography' parameter must be a non-empty list of distinct column names"),
    ],
)
def test_calibrator_fit_arguments_are_checked(people, kwargs, match):
    with pytest.raises(DataValidationError, match=match):
        Calibrator().fit(people, Targets([Target(3000.0)]), **kwargs)


@pytest.mark.parametrize(
    "frame,match",
    [
        (pd.DataFrame({"weight": pd.Series([], dtype=float)}), r"records is empty"),
        (pd.DataFrame([[1.0, 2.0]], columns=["weight", "weight"]), r"duplicated column names \['weight'\]"),
        (pd.DataFrame({"weight": [True, False]}), r"Weight column 'weight' must be numeric"),
        (pd.DataFrame({"weight": pd.array([1.0, None], dtype="Float64")}), r"must hold finite weights > 0"),
    ],
)
def test_calibrator_records_are_checked(frame, match):
    with pytest.raises(DataValidationError, match=match):
        Calibrator().fit(frame, Targets([Target(0.0)]))


def test_infinite_variable_is_named(people):
    df = people.assign(income=people["income"].where(people.index > 0, np.inf))
    with pytest.raises(DataValidationError, match=r"variable 'income' has 1 infinite values"):
        Calibrator().fit(df, Targets([Target(3000.0), Target(1e6, "sum", "income")]))


@pytest.mark.parametrize(
    "params,match",
    [
        ({"tolerance": 0}, r"The 'tolerance' parameter must be a finite float in \(0, 1\)"),
        ({"tolerance": 1.5}, r"The 'tolerance' parameter must be a finite float in \(0, 1\)"),
        ({"tolerance": "x"}, r"'tolerance' parameter"),
        ({"max_records": 2.5}, r"The 'max_records' parameter must be an int >= 1 or None. Got 2.5"),
        ({"max_records": True}, r"The 'max_records' parameter must be an int >= 1 or None. Got True"),
        ({"bounds": ("a", 2)}, r"The 'bounds' parameter must be None or a pair"),
        ({"seed": -1}, r"The 'seed' parameter must be an int in \[0, 2\*\*64 - 1\]"),
        ({"seed": 1.5}, r"The 'seed' parameter"),
        ({"random_state": -1}, r"The 'random_state' parameter must be an int in \[0, 2\*\*64 - 1\]"),
        ({"random_state": 1.5}, r"The 'random_state' parameter"),
        ({"stratify": "region"}, r"The 'stratify' parameter must be None, 'auto' or a list"),
        ({"stratify": [1]}, r"The 'stratify' parameter must be a list of distinct column names"),
        ({"force": "no"}, r"The 'force' parameter must be a bool"),
        ({"method": 1}, r"The 'method' parameter must be one of 'l0', 'l1'"),
    ],
)
def test_sparse_parameters_are_checked(people, params, match):
    with pytest.raises(DataValidationError, match=match):
        SparseCalibrator(**params).fit(people, Targets([Target(3000.0)]))


@pytest.mark.parametrize("sizes", [[], [0], "10", [2.5], None])
def test_frontier_sizes_are_checked(people, sizes):
    with pytest.raises(DataValidationError, match=r"'sizes' parameter"):
        SparseCalibrator().frontier(people, Targets([Target(3000.0)]), sizes)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"value": "abc"}, r"Target 'count\[\]': value must be a number. Got 'abc'"),
        ({"value": None}, r"value must be a number. Got None"),
        ({"value": True}, r"value must be a number. Got True"),
        ({"value": [1]}, r"value must be a number"),
        ({"value": 1.0, "tolerance": "x"}, r"tolerance must be a number"),
        ({"value": 1.0, "aggregate": 5}, r"aggregate must be a str"),
        ({"value": 1.0, "aggregate": "sum", "variable": 3}, r"variable must be a column name"),
        ({"value": 1.0, "name": 7}, r"name must be a non-empty str"),
    ],
)
def test_target_fields_are_checked_at_construction(kwargs, match):
    with pytest.raises(DataValidationError, match=match):
        Target(**kwargs)


@pytest.mark.parametrize(
    "target,match",
    [
        (Target(-5.0), r"Target 'count\[\]': a count must be >= 0. Got -5.0"),
        (Target(float("inf")), r"value must be finite. Got inf"),
        (Target(1.0, importance=0), r"importance must be a finite number > 0"),
        (Target(1.0, importance=float("inf")), r"importance must be a finite number > 0"),
        (Target(1.0, tolerance=float("inf")), r"tolerance must be a finite number >= 0"),
        (Target(1.0, aggregate="median", variable="x"), r"aggregate must be one of"),
    ],
)
def test_targets_validate_their_members(target, match):
    with pytest.raises(DataValidationError, match=match):
        Targets([target])


def test_numeric_strings_are_numbers():
    """YAML 1.1 reads ``1e6`` as a string: a numeric string is accepted as a number."""
    assert Target("1e6").value == 1e6


def test_design_reachability_helper_reports_each_target(people):
    from microplex.calibration import feasibility

    d = build_design(people, Targets([Target(1e9, filters={"sex": "f"}), Target(1000.0, filters={"sex": "m"})]), "weight")
    bad = feasibility.unreachable_targets(d, d.d * 0.5, d.d * 2.0)
    assert len(bad) == 1 and bad[0].startswith("count[sex == 'f'] = 1e+09 (closest achievable")
    assert math.isfinite(float(bad[0].split("closest achievable ")[1].split(";")[0]))


@pytest.mark.parametrize("household", [False, True])
def test_documented_default_call_meets_a_feasible_mean_on_real_data(eusilc, household):
    """The call of docs/calibration.md with a mean target on eusilc: main (739bb0e) raised
    ConvergenceError (the mean was solved in income x weight units, below float precision)."""
    wcol = "db090" if household else "rb050"
    df = eusilc[["db030", "db040", "rb090", "eqIncome", wcol]]
    w, y = df[wcol].to_numpy(), df["eqIncome"].to_numpy()
    v = float(np.average(y, weights=w)) * 1.05
    targets = Targets.from_margins({("db040", "rb090"): df.groupby(["db040", "rb090"])[wcol].sum() * 1.02}) + [
        Target(v, "mean", "eqIncome")
    ]
    kwargs = {"household_col": "db030"} if household else {}
    cal = Calibrator().fit(df, targets, weight_col=wcol, **kwargs)
    rw = cal.result_.record_weights.to_numpy()
    assert cal.summary["converged"]
    assert np.average(y, weights=rw) == pytest.approx(v, rel=1e-9)
    cells = df.assign(w=rw).groupby(["db040", "rb090"])["w"].sum()
    np.testing.assert_allclose(cells.to_numpy(), df.groupby(["db040", "rb090"])[wcol].sum().to_numpy() * 1.02, rtol=1e-9)


def test_frontier_refuses_bad_targets_once(people):
    """main (739bb0e) returned a frontier whose every size "kept" 0 records with a max error of 0."""
    with pytest.raises(DataValidationError, match=r"mean\(income\)\[\] = .* is outside"):
        SparseCalibrator().frontier(people, _mean_above_max(people), [10, 5])
