from __future__ import annotations

import numpy as np
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


def _nested(tracts: int, counties: int, states: int) -> pd.DataFrame:
    tract = np.arange(tracts)
    county = tract * counties // tracts
    return pd.DataFrame({"state": county * states // counties, "county": county, "tract": tract})


def test_tract_scale_nested_targets_flag_exactly_the_contradictions():
    # 3,000 tracts in 300 counties in 6 states, x 2 age groups: 6,612 targets; the children of a parent are
    # found through the areas above them, so this runs in about a second where a parent x child scan took
    # minutes at national scale (benchmarks/results/scale_calibration.md)
    geo = _nested(3000, 300, 6)
    rng = np.random.default_rng(0)
    val = rng.integers(1, 50, (3000, 2)).astype(float)
    county_val = pd.DataFrame(val).groupby(geo["county"]).sum().to_numpy().copy()
    state_val = pd.DataFrame(val).groupby(geo["state"].to_numpy()).sum().to_numpy().copy()
    county_val[17, 1] += 1.0  # county 17 (state 0) contradicts its tracts, and state 0 its counties
    state_val[4, 0] -= 2.0  # state 4 contradicts its counties
    t = Targets.from_margins(
        {
            ("tract", "age"): {(k, a): val[k, a] for k in range(3000) for a in range(2)},
            ("county", "age"): {(c, a): county_val[c, a] for c in range(300) for a in range(2)},
            ("state", "age"): {(s, a): state_val[s, a] for s in range(6) for a in range(2)},
        }
    )
    out = check_consistency(t, geo, ["state", "county", "tract"]).set_index("parent")
    assert sorted(out.index) == sorted(
        ["count[county == 17 & age == 1]", "count[state == 0 & age == 1]", "count[state == 4 & age == 0]"]
    )
    assert out.loc["count[county == 17 & age == 1]", "n_children"] == 10
    assert out.loc["count[state == 4 & age == 0]", "children_sum"] == state_val[4, 0] + 2.0
    assert out["complete"].all()


def test_children_must_lie_wholly_inside_a_parent(geo):
    # the interval child spans county 2 (state A) and county 3 (state B): it lies in the membership parent
    # {A, B} only; a child in no present area (county 99) belongs to no parent
    t = Targets(
        [
            Target(6, filters={"state": "A"}),
            Target(4, filters={"state": "B"}),
            Target(9, filters={"state": frozenset({"A", "B"})}),
            Target(4, filters={"county": 1}),
            Target(3, filters={"county": pd.Interval(2, 3, closed="both")}),
            Target(3, filters={"county": 4}),
            Target(50, filters={"county": 99}),
        ]
    )
    out = check_consistency(t, geo, ["state", "county"])
    assert len(out) == 1
    row = out.iloc[0]
    assert (row["parent_value"], row["children_sum"], row["n_children"], row["complete"]) == (9, 10.0, 3, True)
