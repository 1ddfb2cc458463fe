"""Held-out errors by area, session 77: an area column listed without a column the cells fix too, whose codes repeat
across that column's values (PUMA codes across states, the state not listed)."""

from __future__ import annotations

import pytest

from microplex import DataValidationError
from microplex.evaluation.areas import area_errors, check_area_columns, heldout_errors

from calibration.test_s74_areas import _listed_cells
from test_s76_areas import _repeated_codes


def test_repeated_codes_listed_without_the_state_the_cells_fix_are_refused(west):
    """census2000's cells ``state == 'Idaho' & puma == 100 & educ in {...}`` over Idaho, Nevada and Utah, with
    ``areas=["puma"]``: PUMA 100 lies in all three states and the state is not listed, read as listed after the PUMA
    (25 codes, 3 states: the order the counts contradict), so ``heldout_errors`` and ``check_area_columns`` (the
    pipeline's ``evaluate.areas``) refuse it, naming both columns and saying to list ``['state', 'puma']``. Before:
    ``area_errors(errors, "puma")`` gave 25 areas, PUMA 100 of the three states pooled into one (0.1111, against
    Idaho's 0.0909 and Nevada's 0.1538 keyed by the state)."""
    cells = _listed_cells(west, "puma")
    message = (r"The areas column 'puma': its codes repeat across the values of 'state', which the held-out cells "
               r"fix too but is not among the areas \(puma 100 lies in state \['Idaho', 'Nevada', 'Utah'\]\).*"
               r"'puma' has 25 values and 'state' 3.*List 'state' first, \['state', 'puma'\]")
    with pytest.raises(DataValidationError, match=message):
        heldout_errors({"pop": west}, cells, areas=["puma"])
    with pytest.raises(DataValidationError, match=message.replace("areas", "'evaluate.areas'")):
        check_area_columns(cells, ["puma"], "'evaluate.areas'")
    # listed as the message says: PUMA 100 of each state apart
    err = heldout_errors({"pop": west}, cells, areas=["state", "puma"])
    out = area_errors(err, "puma").set_index("area")["error"]
    assert len(out) == 40 and out["Idaho / 100"] == pytest.approx(1 / 11, rel=1e-12)
    # the coarser column alone (3 states over 25 codes) keeps its table, its areas its codes
    check_area_columns(cells, ["state"])
    err = heldout_errors({"pop": west}, cells, areas=["state"])
    assert sorted(area_errors(err, "state")["area"]) == ["Idaho", "Nevada", "Utah"]
    # codes of their own (puma_id, each in one state) nest in the unlisted state: listed alone, 40 areas
    ids = _listed_cells(west, "puma_id")
    check_area_columns(ids, ["puma_id"])
    assert area_errors(heldout_errors({"pop": west}, ids, areas=["puma_id"]), "puma_id")["area"].nunique() == 40


def test_a_column_meeting_the_same_values_in_every_area_divides_the_areas():
    """5 states each holding PUMA codes 1 and 2: the unlisted PUMA meets the same codes in every state, so it divides
    the states and ``["state"]`` keeps its 5 areas (each state's cells pooled within the state, as a table of PUMAs
    by state reads); the unlisted state meets the same values in every PUMA, so ``["puma"]`` pools the PUMAs 1 of
    the five states (the documented limit: list both, or give the PUMAs codes of their own)."""
    people, cells = _repeated_codes()
    err = heldout_errors({"pop": people}, cells, areas=["puma"])
    assert sorted(area_errors(err, "puma")["area"]) == [1, 2]
    err = heldout_errors({"pop": people}, cells, areas=["state"])
    by_state = area_errors(err, "state")
    assert len(by_state) == 5 and (by_state["cells"] == 2).all()


def test_single_codes_dividing_each_area_keep_the_table(west):
    """PUMA x education cells fixing single education codes (``educ == 12``, ``educ == 16``) in each of 40
    ``puma_id`` areas: education meets the same two codes in every PUMA, so it divides the areas and
    ``areas=["puma_id"]`` keeps its 40 areas of two cells each, as with groups written as sets of several codes."""
    import pandas as pd

    from microplex.calibration import Targets

    def cells(groups: list[str]) -> Targets:  # each PUMA's count + 1 in each education group
        rows = [dict(aggregate="count", variable=None, value=k + 1.0, filter=f"puma_id == '{p}' & {cond}")
                for p, g in west.groupby("puma_id") for cond in groups
                for k in [len(g.query(cond.replace("{", "[").replace("}", "]")))]]
        return Targets.from_frame(pd.DataFrame(rows))

    for groups in (["educ == 12", "educ == 16"], ["educ in {9, 10, 11, 12}", "educ in {13, 14, 15, 16}"]):
        check_area_columns(cells(groups), ["puma_id"])
        err = heldout_errors({"pop": west}, cells(groups), areas=["puma_id"])
        out = area_errors(err, "puma_id")
        assert len(out) == 40 and (out["cells"] == 2).all()
