"""Odd but legal calibration inputs: targets that conflict only together (frontier), filter values written as text
or as numbers (Calibrator and rake_dataset alike), one margin cell given twice."""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest

from microplex import ConvergenceError, DataValidationError
from microplex.calibration import Calibrator, SparseCalibrator, Target, Targets
from microplex.scale import rake_dataset


@pytest.fixture(scope="module")
def people():
    rng = np.random.default_rng(0)
    n = 400
    return pd.DataFrame({"sex": rng.integers(0, 2, n), "age": rng.integers(18, 80, n), "weight": 10.0})


def test_frontier_refuses_targets_that_conflict_together_once(people, monkeypatch):
    """Each target is reachable alone (a total of 4,000; 6,000 of sex 1), not both: frontier returned a table of the
    same "No non-negative weights meet tolerance" row for every size, each after its own fit. Now one
    ConvergenceError before any fit, naming the targets in conflict (fit's own error names them too)."""
    conflict = Targets([Target(4000.0), Target(6000.0, filters={"sex": 1}),
                        Target(float((people["age"] == 30).sum() * 10), filters={"age": 30})])
    fit = SparseCalibrator.fit
    monkeypatch.setattr(SparseCalibrator, "fit", lambda *a, **k: pytest.fail("a size was fitted"))
    for method in ("l0", "l1"):
        with pytest.raises(ConvergenceError, match=r"best achievable max relative error .* is 0\.2;.* targets that "
                           r"conflict .*: count\[\] = 4000; count\[sex == 1\] = 6000\.$"):
            SparseCalibrator(method=method).frontier(people, conflict, [20, 50, 100])
    monkeypatch.setattr(SparseCalibrator, "fit", fit)
    with pytest.raises(ConvergenceError, match=r"conflict .*: count\[\] = 4000; count\[sex == 1\] = 6000\.$"):
        SparseCalibrator(method="l1").fit(people, conflict)
    feasible = Targets([Target(4000.0), Target(float((people["sex"] == 1).sum() * 10), filters={"sex": 1})])
    table = SparseCalibrator(auxiliary=None).frontier(people, feasible, [20, 50])
    assert list(table["kept"]) == [20, 50] and "error" not in table


def _parquet(frame: pd.DataFrame, tmp_path, name: str) -> str:
    path = tmp_path / f"{name}.parquet"
    frame.to_parquet(path)
    return str(path)


def test_rake_dataset_matches_filter_values_as_calibrator_does(tmp_path):
    """A targets CSV reads ``g == 1`` as the number 1: on a text column of "1", "2" Calibrator matched its text
    and rake_dataset matched nothing ("its filter selects no record"); ``g == '1'`` on an integer column the same.
    Both now look the values up through the one function (the design's ``lookup_values``)."""
    df = pd.DataFrame({"g": [1, 1, 2, 2, 2, 1], "weight": 1.0})
    text = df.assign(g=df["g"].astype(str))
    csv = tmp_path / "t.csv"
    csv.write_text("value,aggregate,filter\n4,count,g == 1\n6,count,g == 2\n")
    from_csv = Targets.from_csv(csv)
    assert [t.filters["g"] for t in from_csv] == [1, 2]  # numbers, not text
    as_text = Targets([Target(4.0, filters={"g": "1"}), Target(6.0, filters={"g": 2})])
    for frame, targets in [(text, from_csv), (df, as_text)]:
        expected = Calibrator().fit(frame, targets).weights.to_numpy()
        res = rake_dataset(_parquet(frame, tmp_path, "d"), targets, weight_col="weight")
        assert res.converged
        np.testing.assert_allclose(res.report["achieved"].to_numpy(), [4.0, 6.0], rtol=1e-9)
        np.testing.assert_allclose(np.bincount(frame["g"].astype(int) - 1, weights=expected), [4.0, 6.0], rtol=1e-9)
    with pytest.raises(DataValidationError, match=r"Margin 'g' lists '1' and 1, which name the same records"):
        rake_dataset(_parquet(df, tmp_path, "d"), {"g": {"1": 4.0, 1: 4.0, 2: 6.0}}, weight_col="weight")
    with pytest.raises(DataValidationError, match=r"selects no record"):  # a boolean is no number, in either path
        rake_dataset(_parquet(df, tmp_path, "d"), Targets([Target(4.0, filters={"g": True})]), weight_col="weight")


def test_rake_dataset_refuses_one_cell_given_twice_with_different_values(tmp_path):
    """Targets naming one cell twice (``g == 1`` at 4 and at 9, or ``g == 1.0`` at 9): the second replaced the first
    and the raking "converged" on 9 without a word (Calibrator raises: the values contradict). Agreeing values are
    one cell."""
    path = _parquet(pd.DataFrame({"g": [1, 1, 2, 2, 2, 1], "weight": 1.0}), tmp_path, "d")
    for again in (1, 1.0):
        twice = Targets([Target(4.0, filters={"g": 1}), Target(9.0, filters={"g": again}), Target(6.0, filters={"g": 2})])
        with pytest.raises(DataValidationError, match=r"Targets 'count\[g == 1\]' and 'count\[g == 1(\.0)?\]' name one "
                           r"cell of margin 'g' with different values \(4\.0 and 9\.0\)"):
            rake_dataset(path, twice, weight_col="weight")
    with pytest.raises(DataValidationError, match=r"as a boolean and as a number"):
        rake_dataset(path, Targets([Target(4.0, filters={"g": 1}), Target(4.0, filters={"g": True})]), weight_col="weight")
    agree = Targets([Target(4.0, filters={"g": 1}), Target(4.0, filters={"g": 1.0}), Target(6.0, filters={"g": 2})])
    assert rake_dataset(path, agree, weight_col="weight").report["target"].tolist() == [4.0, 6.0]
