"""Areas that overlap or repeat codes: a set of areas beside its members in the nested-target check, and a condition
written two ways (``educ in {16}``, ``educ == 16``); held-out errors of PUMA codes that repeat across states are in
``tests/test_s76_areas.py``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from microplex import DataValidationError
from microplex.calibration import Calibrator, Targets, check_consistency




def _counts(rows: list[tuple[str, float]]) -> Targets:
    return Targets.from_frame(pd.DataFrame([dict(aggregate="count", variable=None, filter=f, value=float(v))
                                            for f, v in rows]))


def _states(df: pd.DataFrame, scale: float = 1.0) -> list[tuple[str, float]]:
    n = df.state.value_counts()
    return [("", scale * len(df))] + [(f"state == '{s}'", scale * n[s]) for s in ("Idaho", "Nevada", "Utah")]


# -- a set of areas beside its member areas ----------------------------------------------------------------------


def test_a_set_of_states_beside_its_member_states_is_consistent(west):
    # every target is the count at weights 2.0: national 1344 = 348 + 448 + 548, and {Idaho, Nevada} = 796
    n = west.state.value_counts()
    both = 2.0 * (n["Idaho"] + n["Nevada"])
    assert both == 796.0 and 2.0 * len(west) == 1344.0
    t = _counts(_states(west, 2.0) + [("state in {'Idaho', 'Nevada'}", both)])
    assert check_consistency(t, west, ["state"]).empty
    fit = Calibrator().fit(west, t, geography=["state"])
    assert np.allclose(fit.result_.record_weights, 2.0, rtol=0, atol=1e-9)


def test_a_metro_area_across_states_beside_the_states_is_consistent(west):
    # a metro area of two PUMAs in two states (47 people) under the nation, beside the three state targets
    metro = int(west.puma_id.isin(["Idaho:100", "Nevada:100"]).sum())
    assert metro == 47
    t = _counts(_states(west) + [("puma_id in {'Idaho:100', 'Nevada:100'}", metro)])
    assert check_consistency(t, west, ["state", "puma_id"]).empty
    fit = Calibrator().fit(west, t, geography=["state", "puma_id"])
    assert np.allclose(fit.result_.record_weights, 1.0, rtol=0, atol=1e-9)


def test_a_contradiction_next_to_a_set_target_is_still_caught(west):
    n = west.state.value_counts()
    rows = _states(west, 2.0)
    # Utah 10 over: the nation against its three states (the set target is left out of that sum)
    utah_over = [(f, v + 10.0 if f == "state == 'Utah'" else v) for f, v in rows]
    t = _counts(utah_over + [("state in {'Idaho', 'Nevada'}", 2.0 * (n["Idaho"] + n["Nevada"]))])
    out = check_consistency(t, west, ["state"])
    assert out["parent"].tolist() == ["count[]"]
    row = out.iloc[0]
    assert (row["parent_value"], row["children_sum"], row["n_children"], bool(row["complete"])) == (1344.0, 1354.0, 3, True)
    assert "count[state in {'Idaho', 'Nevada'}]" not in row["children"]
    # the set target 4 over: compared with the states inside it, which cover it
    t = _counts(rows + [("state in {'Idaho', 'Nevada'}", 800.0)])
    out = check_consistency(t, west, ["state"])
    assert out["parent"].tolist() == ["count[state in {'Idaho', 'Nevada'}]"]
    row = out.iloc[0]
    assert (row["parent_value"], row["children_sum"], row["n_children"], bool(row["complete"])) == (800.0, 796.0, 2, True)
    assert sorted(row["children"]) == ["count[state == 'Idaho']", "count[state == 'Nevada']"]
    with pytest.raises(DataValidationError, match=r"count\[state in \{'Idaho', 'Nevada'\}\] = 800.*sum to 796"):
        Calibrator().fit(west, t, geography=["state"])


# -- one condition written two ways ------------------------------------------------------------------------------


@pytest.mark.parametrize("parent_form", ["educ in {16}", "educ == 16.0", "educ in {16.0}"])
def test_a_condition_written_another_way_is_compared_as_the_same(west, parent_form):
    # Idaho's college count 40 over the sum of its 9 PUMAs' (79 against 39), the PUMAs written 'educ == 16'
    two = west[west.state.isin(["Idaho", "Nevada"])].reset_index(drop=True)
    idc = two[(two.state == "Idaho") & (two.educ == 16)]
    pumas = idc.groupby("puma_id").size()
    assert len(pumas) == 9 and len(idc) == 39
    rows = [(f"state == 'Idaho' & {parent_form}", len(idc) + 40.0)]
    rows += [(f"state == 'Idaho' & puma_id == '{p}' & educ == 16", float(k)) for p, k in pumas.items()]
    t = _counts(rows)
    out = check_consistency(t, two, ["state", "puma_id"])
    assert len(out) == 1
    row = out.iloc[0]
    assert (row["parent_value"], row["children_sum"], row["n_children"], bool(row["complete"])) == (79.0, 39.0, 9, True)
    with pytest.raises(DataValidationError, match=r"1 nested geography targets do not add up.* = 79 .*sum to 39"):
        Calibrator().fit(two, t, geography=["state", "puma_id"])


def test_different_conditions_are_still_compared_apart(west):
    # educ == 16 and educ in {16, 17} are different cells: no comparison between them
    idc = west[(west.state == "Idaho") & (west.educ == 16)]
    rows = [("state == 'Idaho' & educ in {16, 17}", 1000.0)]
    rows += [(f"state == 'Idaho' & puma_id == '{p}' & educ == 16", float(k))
             for p, k in idc.groupby("puma_id").size().items()]
    assert check_consistency(_counts(rows), west, ["state", "puma_id"]).empty
