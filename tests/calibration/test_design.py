from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from microplex import DataValidationError, Target, Targets
from microplex.calibration.design import build_design, collapse_rows


@pytest.fixture()
def people() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "hh": [1, 1, 2, 3, 3, 3],
            "state": pd.array(["A", "A", "B", "B", "B", "B"], dtype="str"),
            "age": [30, 5, 70, 40, 12, 8],
            "income": [10.0, 0.0, 5.0, 20.0, 0.0, 0.0],
            "weight": [2.0, 2.0, 3.0, 1.5, 1.5, 1.5],
        }
    )


def _dense(design):
    return design.x.toarray()


def test_margins_sets_ranges_and_sums(people):
    targets = Targets(
        [
            *Targets.from_margins({"state": {"A": 1, "B": 1}}),
            Target(1, filters="age in [18, 65)"),
            Target(1, filters={"state": ["A", "B"], "age": pd.Interval(0, 18, closed="left")}),
            Target(1, "sum", "income", {"state": "B"}),
            Target(10, "mean", "income"),
        ]
    )
    x = _dense(build_design(people, targets, "weight"))
    np.testing.assert_array_equal(x[:, 0], [1, 1, 0, 0, 0, 0])
    np.testing.assert_array_equal(x[:, 1], [0, 0, 1, 1, 1, 1])
    np.testing.assert_array_equal(x[:, 2], [1, 0, 0, 1, 0, 0])
    np.testing.assert_array_equal(x[:, 3], [0, 1, 0, 0, 1, 1])
    np.testing.assert_array_equal(x[:, 4], [0, 0, 5, 20, 0, 0])
    np.testing.assert_array_equal(x[:, 5], people["income"] - 10)


def test_households_sum_person_rows_and_count_households_once(people):
    targets = Targets([Target(1, filters={"age": pd.Interval(0, 18, closed="left")}), Target(1, entity="household")])
    dz = build_design(people, targets, "weight", household_col="hh")
    np.testing.assert_array_equal(dz.x.toarray(), [[1, 1], [0, 1], [2, 1]])
    np.testing.assert_array_equal(dz.d, [2.0, 3.0, 1.5])
    assert list(dz.units) == [1, 2, 3]
    np.testing.assert_array_equal(dz.record_unit, [0, 0, 1, 2, 2, 2])


def test_numeric_categories_match_string_targets(people):
    dz = build_design(people, Targets.from_frame(pd.DataFrame({"age": ["30"], "value": [1.0]})), "weight")
    np.testing.assert_array_equal(dz.x.toarray()[:, 0], [1, 0, 0, 0, 0, 0])


def test_duplicate_cells_are_kept_as_separate_targets(people):
    targets = Targets([Target(1, filters={"state": "A"}), Target(2, filters={"state": "A"})])
    x = _dense(build_design(people, targets, "weight"))
    np.testing.assert_array_equal(x[:, 0], x[:, 1])


def test_design_is_sparse_and_input_untouched(people):
    before = people.copy()
    dz = build_design(people, Targets.from_margins({"state": {"A": 1, "B": 1}}), "weight")
    assert sp.issparse(dz.x) and dz.x.nnz == 6
    pd.testing.assert_frame_equal(people, before)


def test_nan_in_summed_variable_is_named(people):
    df = people.assign(income=[1.0, np.nan, 1.0, 1.0, 1.0, 1.0])
    with pytest.raises(DataValidationError, match=r"variable 'income' has 1 missing values"):
        build_design(df, [Target(1, "sum", "income")], "weight")


def test_non_numeric_variable_is_named(people):
    with pytest.raises(DataValidationError, match=r"variable 'state' must be numeric"):
        build_design(people, [Target(1, "sum", "state")], "weight")


def test_collapse_rows_groups_identical_rows_only():
    rng = np.random.default_rng(0)
    cells = rng.integers(0, 20, 5000)
    x = sp.csr_matrix((np.ones(5000), (np.arange(5000), cells)), shape=(5000, 20))
    reps, groups = collapse_rows(x)
    assert len(reps) == 20
    np.testing.assert_array_equal(cells[reps][groups], cells)
    y = sp.csr_matrix(rng.standard_normal((5000, 3)))
    assert collapse_rows(y) is None
