from __future__ import annotations

import pandas as pd
import pytest

from microplex import DataValidationError, Target, Targets
from microplex.calibration import check_consistency


@pytest.fixture()
def geo() -> pd.DataFrame:
    return pd.DataFrame(
        {"state": ["A", "A", "A", "B", "B"], "county": [1, 1, 2, 3, 4], "tract": [10, 11, 20, 30, 40]}
    )


def test_three_levels_consistent(geo):
    t = Targets.from_margins(
        {
            "state": {"A": 6, "B": 4},
            ("state", "county"): {("A", 1): 4, ("A", 2): 2, ("B", 3): 1, ("B", 4): 3},
            "tract": {10: 1, 11: 3, 20: 2},
        }
    ) + [Target(10)]
    assert check_consistency(t, geo, ["state", "county", "tract"]).empty


def test_inconsistent_levels_named_with_children_sum(geo):
    t = Targets.from_margins(
        {"state": {"A": 6}, ("state", "county"): {("A", 1): 4, ("A", 2): 3}, "tract": {10: 1, 11: 1}}
    )
    out = check_consistency(t, geo, ["state", "county", "tract"])
    assert set(out["parent"]) == {"count[state == 'A']", "count[state == 'A' & county == 1]"}
    row = out.set_index("parent").loc["count[state == 'A']"]
    assert row["children_sum"] == 7 and row["complete"]


def test_partial_children_may_not_exceed_parent(geo):
    ok = Targets.from_margins({"state": {"B": 4}, ("state", "county"): {("B", 3): 1}})
    assert check_consistency(ok, geo, ["state", "county"]).empty
    bad = Targets.from_margins({"state": {"B": 4}, ("state", "county"): {("B", 3): 5}})
    assert len(check_consistency(bad, geo, ["state", "county"])) == 1


def test_tolerance_widens_the_check_and_other_filters_split_groups(geo):
    t = Targets(
        [
            Target(100, filters={"state": "A"}, tolerance=0.05),
            Target(52, filters={"state": "A", "county": 1}),
            Target(51, filters={"state": "A", "county": 2}),
            Target(5, "sum", "income", {"state": "A", "county": 1}),  # another signature: not compared
        ]
    )
    assert check_consistency(t, geo, ["state", "county"]).empty


def test_unknown_geography_column(geo):
    with pytest.raises(DataValidationError, match=r"Geography columns \['zip'\]"):
        check_consistency(Targets(), geo, ["zip"])
