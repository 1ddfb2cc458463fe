"""A cell given twice with different values (two rows of one targets file) names both values when the Calibrator's
solve fails: the two rows share one name, so the failure listed the target alone, as if nothing conflicted with it.
``rake_frame`` refuses such margins before solving."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from microplex.calibration import Calibrator, Targets
from microplex.cli import app
from microplex import ConvergenceError, DataValidationError
from microplex.scale import rake_frame


@pytest.fixture
def records() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"marr": rng.integers(0, 2, 1000), "age": rng.integers(18, 80, 1000), "weight": np.ones(1000)})


def _twice(values: list[float]) -> Targets:
    return Targets.from_frame(pd.DataFrame({"marr": [0] * len(values) + [1], "value": values + [1000.0]}))


def test_a_cell_given_twice_with_two_values_names_both(records):
    with pytest.raises(ConvergenceError, match=r"The cell of count\[marr == 0\] is given 2 times, with the values "
                                               r"4000 and 5000: give it once"):
        Calibrator().fit(records, _twice([4000.0, 5000.0]), weight_col="weight")


def test_rake_frame_refuses_the_two_values_before_solving(records):
    with pytest.raises(DataValidationError, match=r"name one cell of margin 'marr' with different values \(4000.0 "
                                                  r"and 5000.0\)"):
        rake_frame(records, _twice([4000.0, 5000.0, 4500.0]), weight_col="weight")


def test_a_cell_given_twice_with_one_value_is_met(records):
    w = Calibrator().fit(records, _twice([4000.0, 4000.0]), weight_col="weight").weights.to_numpy()
    assert np.isclose(w[records["marr"].to_numpy() == 0].sum(), 4000.0, rtol=1e-9)


def test_calibrate_names_the_two_rows_of_a_targets_file(records, tmp_path):
    records.to_csv(tmp_path / "pop.csv", index=False)
    (tmp_path / "t.csv").write_text("marr,value\n0,4000\n0,5000\n1,1000\n")
    out = tmp_path / "out.parquet"
    result = CliRunner().invoke(app, ["calibrate", str(tmp_path / "pop.csv"), "--targets", str(tmp_path / "t.csv"),
                                      "--out", str(out)])
    assert result.exit_code != 0 and not out.exists(), result.output
    assert "given 2 times, with the values 4000 and 5000" in result.output, result.output
