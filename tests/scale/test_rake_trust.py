"""Raking (rake_frame / rake_dataset): unreachable margins are refused, collapsed weights never returned."""

from __future__ import annotations

import pandas as pd
import pytest

from microplex import ConvergenceError, DataValidationError
from microplex.scale.calibrate import rake_dataset, rake_frame


@pytest.fixture()
def frame() -> pd.DataFrame:
    return pd.DataFrame({"sex": [1, 1, 2, 2] * 5, "age": ["y", "o", "y", "o"] * 5, "w": 2.0})


def test_category_with_a_total_but_no_record_is_refused(frame, tmp_path):
    """739bb0e: ConvergenceError after 50 iterations with a generic hint (now the calibration engine's check)."""
    margins = {"sex": {1: 60.0, 3: 40.0}}
    with pytest.raises(DataValidationError, match=r"1 targets cannot be reached by any non-negative weights: count\[sex == 3\] = 40 but its filter selects no record"):
        rake_frame(frame, margins, "w")
    path = tmp_path / "d.parquet"
    frame.to_parquet(path)
    with pytest.raises(DataValidationError, match=r"count\[sex == 3\] = 40"):
        rake_dataset(path, margins, "w")
    with pytest.raises(DataValidationError, match=r"count\[sex == 3\] = 40"):
        rake_dataset(path, margins, "w", max_cells=0)  # the out-of-core path


def test_margin_covering_every_record_with_a_zero_total_is_refused(frame):
    """739bb0e: returned converged weights of about 1e-11 (a population of no one)."""
    with pytest.raises(DataValidationError, match=r"Margin 'age' covers every record but its totals sum to 0"):
        rake_frame(frame, {"sex": {1: 0.0}, "age": {"y": 0.0, "o": 0.0}}, "w")


def test_collapsed_weights_raise(frame):
    """Zero totals on two margins that together cover every record: every weight would vanish."""
    frame = frame.assign(a=[1, 0, 0, 0] * 5, b=[0, 1, 1, 1] * 5)
    with pytest.raises(ConvergenceError, match=r"the weights collapsed"):
        rake_frame(frame, {"a": {1: 0.0}, "b": {1: 0.0}}, "w")


def test_margins_that_disagree_are_named_on_the_cell_table(frame, tmp_path):
    """Margins with different grand totals: the collapsed path names the target that cannot be met together with
    the others and its closest achievable value (the in-memory Calibrator's diagnosis, least total change); the
    partitioned path, which holds no table, gives the general hint."""
    frame = frame.assign(k=1)
    # sex and age agree on 100; the one-category margin k says 20: changing it alone is the least change
    margins = {"sex": {1: 50.0, 2: 50.0}, "age": {"y": 50.0, "o": 50.0}, "k": {1: 20.0}}
    path = tmp_path / "d.parquet"
    frame.to_parquet(path)
    with pytest.raises(ConvergenceError, match=r"This target cannot be met together with the others within the bounds: "
                                               r"count\[k == 1\] = 20 \(closest achievable 100\)\."):
        rake_dataset(path, margins, "w")
    with pytest.raises(ConvergenceError, match=r"Check that the margins agree \(same grand total\)"):
        rake_dataset(path, margins, "w", max_cells=0)
    # within bounds: each (sex, age) cell weighs 10 at first, so within [5, 20]; each target alone is reachable,
    # but sex 1 = 40 needs its two cells at 20, and then age 'o' is at least 25
    bounded = {"sex": {1: 40.0, 2: 10.0}, "age": {"y": 40.0, "o": 10.0}}
    with pytest.raises(ConvergenceError, match=r"cannot be met together (with the others )?within the bounds: count\["):
        rake_dataset(path, bounded, "w", bounds=(0.5, 2.0), method="linear")
