"""Areas that overlap or repeat codes: a set of areas beside its members in the nested-target check, a condition
written two ways (``educ in {16}``, ``educ == 16``), and held-out errors of PUMA codes that repeat across states
(more in ``tests/test_s76_areas.py``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from microplex import DataValidationError
from microplex.calibration import Calibrator, Targets, check_consistency
from microplex.evaluation.areas import area_errors, check_area_columns, heldout_errors


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


# -- held-out errors by area, PUMA codes repeating across states --------------------------------------------------


def _cells(df: pd.DataFrame, with_state: bool = True) -> Targets:
    rows = []
    for (s, p), g in df.groupby(["state", "puma"]):
        for codes in ([9, 10, 11, 12], [16]):
            k = int(g.educ.isin(codes).sum())
            if k:
                where = f"state == '{s}' & " if with_state else ""
                rows.append((f"{where}puma == {p} & educ in {{{', '.join(map(str, codes))}}}", k + 1.0))
    return _counts(rows)


def test_area_errors_key_repeated_codes_by_the_coarser_area(west):
    err = heldout_errors({"pop": west}, _cells(west), areas=["state", "puma"])
    hand = err.groupby(["state", "puma"]).apply(lambda g: (g.achieved - g.value).abs().sum() / g.value.sum())
    assert len(hand) == 40 and err["puma"].nunique() == 25
    out = area_errors(err, "puma").set_index("area")
    assert len(out) == 40
    for (s, p), e in hand.items():
        assert out.loc[f"{s} / {p}", "error"] == pytest.approx(e, rel=1e-12)
    assert out.loc["Idaho / 100", "error"] == pytest.approx(1 / 11, rel=1e-12)
    assert out.loc["Nevada / 100", "error"] == pytest.approx(2 / 13, rel=1e-12)
    # the coarser column keeps its own areas; a code unique in every area keeps its value as the label
    assert sorted(area_errors(err, "state")["area"]) == ["Idaho", "Nevada", "Utah"]
    ids = err.copy()
    ids["puma"] = ids["state"] + ":" + ids["puma"].astype(str)
    assert set(area_errors(ids, "puma")["area"]) == {f"{s}:{p}" for s, p in hand.index}


def test_area_errors_refuse_repeated_codes_without_the_coarser_area(west):
    # cells fixing the PUMA code but not the state: PUMA 100 of three states cannot be told apart
    mixed = _cells(west) + _counts([("puma == 100 & educ in {16}", 5.0)])
    err = heldout_errors({"pop": west}, mixed, areas=["state", "puma"])
    with pytest.raises(DataValidationError, match=r"'puma'.*repeat across 'state'.*puma == 100 & educ"):
        area_errors(err, "puma")
    with pytest.raises(DataValidationError, match=r"'puma'.*repeat across 'state'.*puma == 100 & educ"):
        check_area_columns(mixed, ["state", "puma"])
    check_area_columns(_cells(west), ["state", "puma"])


# -- area_errors: the order in which the areas were listed ------------------------------------------------------


def _listed_cells(df: pd.DataFrame, code: str = "puma"):
    """PUMA x education cells over Idaho, Nevada and Utah, each fixing the state and ``code`` (value: count + 1)."""
    rows = []
    for (s, p), g in df.groupby(["state", code]):
        for codes in ([9, 10, 11, 12], [16]):
            k = int(g.educ.isin(codes).sum())
            if k:
                p_text = f"'{p}'" if isinstance(p, str) else p
                educ = ", ".join(map(str, codes))
                rows.append(dict(aggregate="count", variable=None, value=k + 1.0,
                                 filter=f"state == '{s}' & {code} == {p_text} & educ in {{{educ}}}"))
    return Targets.from_frame(pd.DataFrame(rows))


def test_area_errors_refuse_a_finer_area_listed_first(west):
    """``areas=["puma", "state"]``: the 25 PUMA codes repeat across the 3 states and the reverse, so the cells cannot
    say which is coarser and the order would decide; listed with the column of more values first, the order is
    refused, naming both columns, by ``area_errors`` of either column and by ``check_area_columns``. Before:
    ``area_errors(errors, "puma")`` gave 25 areas, the three PUMAs 100 pooled into one (0.1111, against 0.0909,
    0.1538 and 0.1053), and ``area_errors(errors, "state")`` 40 areas such as '100 / Idaho'."""
    err = heldout_errors({"pop": west}, _listed_cells(west), areas=["puma", "state"])
    expected = (r"The areas columns 'puma' and 'state': 'puma' is listed first.*codes of 'state' repeat across its "
                r"areas.*'puma' has 25 values.*'state' 3.*list 'state' first")
    for column in ("puma", "state"):
        with pytest.raises(DataValidationError, match=expected):
            area_errors(err, column)
    with pytest.raises(DataValidationError, match=expected.replace("The areas", "The 'evaluate.areas'")):
        check_area_columns(_listed_cells(west), ["puma", "state"], "'evaluate.areas'")
    # listed coarsest first: the 40 areas, PUMA 100 of each state apart
    err = heldout_errors({"pop": west}, _listed_cells(west), areas=["state", "puma"])
    out = area_errors(err, "puma").set_index("area")["error"]
    assert len(out) == 40 and out["Idaho / 100"] == pytest.approx(1 / 11, rel=1e-12)
    assert out["Nevada / 100"] == pytest.approx(2 / 13, rel=1e-12)
    assert sorted(area_errors(err, "state")["area"]) == ["Idaho", "Nevada", "Utah"]


def test_area_errors_of_unique_codes_are_the_same_listed_before_their_state(west):
    """Codes unique to their area (``puma_id`` 'Idaho:100') nest in the state and need no key: 40 PUMA areas and 3
    states, listed after the state or before it (session 74 refused ``["puma_id", "state"]``, 40 values before 3;
    the nesting decides since session 76). Before session 74: the state table was keyed by the 40 PUMAs
    ('Idaho:100 / Idaho', 40 areas for 3 states)."""
    cells = _listed_cells(west, "puma_id")
    for order in (["state", "puma_id"], ["puma_id", "state"]):
        check_area_columns(cells, order)
        err = heldout_errors({"pop": west}, cells, areas=order)
        assert area_errors(err, "puma_id")["area"].nunique() == 40
        assert sorted(area_errors(err, "state")["area"]) == ["Idaho", "Nevada", "Utah"]
