"""Held-out cells by area: how far each population's totals fall from cells no stage calibrated to.

A pipeline calibrates to official totals (state and PUMA counts, say); whether the result also
holds where it was not fitted is judged on held-out cells (PUMA x education counts). The cells
are :class:`~microplex.calibration.Targets`, read from any targets file; each population's
weighted total of every cell is compared with the cell's value, and the misses are summed by area
(the value a cell's filter gives an area column).

* :func:`cell_totals`: the weighted totals of any count or sum targets, a cell that no record
  matches counting 0 (where calibration refuses such a target);
* :func:`heldout_errors`: one row per population and cell, with its relative error and areas;
* :func:`error_summary`: per population, the median, 90th percentile and largest absolute
  relative error over the cells;
* :func:`area_errors`: per population and area, the misplacement over the area's cells,
  ``sum |achieved - value| / sum value`` (where the area's total is right and its cells list every cell its
  people are in, twice the share of the people in the wrong cells; a person placed in a cell the cells do not
  list counts once).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._errors import DataValidationError
from .._params import check_names, to_python
from .._stats import check_weight_dtype, check_weights, relative_error

__all__ = ["cell_totals", "heldout_errors", "error_summary", "area_errors", "check_area_columns"]


def _checked_cells(targets: Any) -> Any:
    from ..calibration.calibrator import as_targets

    cells = as_targets(targets)
    if not len(cells):
        raise DataValidationError("The held-out cells are empty; expected at least one target.")
    for t in cells:
        if t.aggregate not in ("count", "sum"):
            raise DataValidationError(
                f"Held-out cell {t.name!r} is a {t.aggregate!r} target; held-out cells are counts or sums.")
        if not t.value > 0:
            raise DataValidationError(
                f"Held-out cell {t.name!r} has value {t.value:g}; a held-out cell needs a positive total (its "
                "relative error divides by it).")
    return cells


def check_area_columns(targets: Any, areas: Sequence[str], what: str = "areas") -> None:
    """Refuses an area column that no held-out cell fixes to one value (an equality, or a set of one value):
    its area table (:func:`area_errors`) would be empty; two columns that do not nest in the cells fixing both
    listed with the one of more distinct values first (``["puma", "state"]`` where PUMA 100 lies in three states
    and each state holds several PUMA codes: 25 codes before 3 states), so that the order would decide the areas;
    and, for two such columns listed coarsest first (``["state", "puma"]``, whose PUMA areas :func:`area_errors`
    keys by both, ``"Idaho / 100"``), a cell fixing the later column but not the earlier, so that its area cannot
    be told; and a listed column whose codes repeat across the values of a column the cells fix but ``areas`` does
    not list, read as listed after them, where the counts say the listed one is the finer (``["puma"]`` of cells
    fixing ``state`` too), as :func:`heldout_errors` refuses it.

    Raises
    ------
    DataValidationError
        Naming the column and the columns the cells do fix, both columns of a refused order (or of a listed column
        and an unlisted one), or the cell lacking the coarser column.
    """
    from ..calibration.filters import fixed_value

    cells = _checked_cells(targets)
    fixed = [c for c in dict.fromkeys(c for t in cells for c in t.filters) if any(
        fixed_value(t.filters, c) is not None for t in cells)]
    areas = check_names(areas, "areas")
    for column in areas:
        if column not in fixed:
            raise DataValidationError(
                f"The {what} column {column!r}: no held-out cell fixes it to one value (an equality, or a set of "
                f"one value), so it has no areas to report; the cells fix {fixed}.")
    table = pd.DataFrame({c: pd.Series([fixed_value(t.filters, c) for t in cells], dtype=object) for c in areas})
    for column in areas:
        _keyed_by(table, column, areas, [t.name for t in cells], what)
    _check_unlisted(cells, areas, what)


def _check_unlisted(cells: Any, areas: Sequence[str], what: str) -> None:
    """Refuses a column of ``areas`` whose codes repeat across the values of a column the ``cells`` fix to one
    value but ``areas`` does not list and that does not cross it (:func:`_crosses`: a column dividing each area, such
    as education codes in every PUMA, is no area), neither nesting in the other in the cells fixing both, where the listed
    column has as many distinct values there as the other or more: :func:`area_errors` would pool its codes of
    different areas of the other (PUMA 100 of Idaho, Nevada and Utah, for ``["puma"]`` of cells fixing ``state ==
    'Idaho' & puma == 100``). The unlisted column is read as listed after ``areas`` (:func:`_keyed_by`): a listed
    column of fewer values is the coarser (``["state"]``, 3 states over 25 PUMA codes), its areas its codes."""
    from ..calibration.filters import fixed_value

    listed = set(areas)
    unlisted = [c for c in dict.fromkeys(c for t in cells for c in t.filters)
                if c not in listed and any(fixed_value(t.filters, c) is not None for t in cells)]
    if not areas or not unlisted:
        return
    table = pd.DataFrame({c: pd.Series([fixed_value(t.filters, c) for t in cells], dtype=object)
                          for c in [*areas, *unlisted]})
    names = [t.name for t in cells]
    for column in areas:
        splitting = [c for c in unlisted if not _crosses(table, column, c)]
        if splitting:
            _keyed_by(table, column, [column, *splitting], names, what, unlisted=splitting)


def _crosses(table: pd.DataFrame, column: str, other: str) -> bool:
    """Whether ``other`` crosses ``column`` in the cells fixing both: every value of ``column`` there meets the
    same values of ``other`` (education groups 12 and 16 in every PUMA; PUMA codes 1 and 2 in every state), a column
    dividing each area, as a table of a variable by area is written. A coarser area whose codes repeat does not:
    PUMA 100 lies in three states, PUMA 2000 in one."""
    both = table[[column, other]].dropna()
    if both.empty:
        return True
    sets = both.groupby(column, sort=False)[other].agg(frozenset)
    return sets.nunique() == 1


def cell_totals(records: pd.DataFrame, targets: Any, weight_col: str = "weight") -> np.ndarray:
    """Weighted totals of count and sum ``targets`` over ``records``; a cell no record matches is 0.

    Targets are grouped by their range and set conditions: each group's records are found once, and
    its equality conditions are matched as margins (:func:`~microplex.calibration.design.build_design`),
    so a hundred thousand records and thousands of cells take a second.

    A cell naming a column the records lack is refused, whether or not its other conditions select records.
    Weights are totalled as they are, negative ones too (a ``Calibrator(method="linear")`` without bounds gives
    them); records of weight 0 are left out (a missing value of theirs in a targeted column too). A missing or
    infinite weight, or a weight column that is not numeric, is refused
    (:class:`~microplex.DataValidationError` naming the column).

    Examples
    --------
    >>> df = pd.DataFrame({"area": ["a", "a", "b"], "age": [10, 40, 50], "weight": [1.0, 2.0, 3.0]})
    >>> cell_totals(df, pd.DataFrame({"aggregate": "count", "variable": None,
    ...                               "filter": ["area == 'a' & age >= 18", "area == 'c'"], "value": 1.0})).tolist()
    [2.0, 0.0]
    """
    from ..calibration import Target, Targets
    from ..calibration.design import _Columns, _mask, unit_design
    from ..calibration.feasibility import achieved_values

    cells = _checked_cells(targets)
    if weight_col not in records.columns:
        raise DataValidationError(f"weight_col {weight_col!r} is not a column of the records.")
    _check_cell_columns(cells, records)
    what = f"Weight column {weight_col!r}"
    check_weight_dtype(records[weight_col], what)
    # any sign (a linear calibration's negative weights count as they are); weight 0 adds nothing
    w = check_weights(records[weight_col].to_numpy(dtype=float, na_value=np.nan), len(records), what, signed=True)
    records, w = records[w != 0], w[w != 0]
    columns = _Columns(records)
    groups: dict[str, tuple[dict[str, Any], list[int]]] = {}
    for j, t in enumerate(cells):
        loose = {c: v for c, v in t.filters.items() if isinstance(v, pd.Interval | frozenset)}
        groups.setdefault(repr(sorted(loose.items(), key=lambda kv: kv[0])), (loose, []))[1].append(j)
    out = np.zeros(len(cells))
    for loose, members in groups.values():
        mask = _mask(columns, Target(1.0, filters=loose)) if loose else np.ones(len(records), dtype=bool)
        part = records[mask]
        if not len(part):
            continue
        exact = Targets([dataclasses.replace(cells[j], value=0.0, tolerance=None,
                                             filters={c: v for c, v in cells[j].filters.items() if c not in loose})
                         for j in members])
        out[members] = achieved_values(unit_design(part, exact), w[mask])
    return out


def _check_cell_columns(cells: Any, records: pd.DataFrame) -> None:
    """Refuses a cell naming a column (in its filter, or as its variable) that ``records`` lack, before any record
    is selected: a cell whose other conditions select no record would otherwise total 0 without a word."""
    have = set(records.columns)
    for t in cells:
        for col in [*t.filters, *([t.variable] if t.variable is not None else [])]:
            if col not in have:
                raise DataValidationError(
                    f"Held-out cell {t.name!r} uses column {col!r}, which is not in the records. Expected one of "
                    f"{[str(c) for c in records.columns][:50]}.")


def heldout_errors(populations: Mapping[str, pd.DataFrame], targets: Any, *, weight_col: str = "weight",
                   areas: Sequence[str] = ()) -> pd.DataFrame:
    """One row per population and held-out cell: ``population``, ``target``, ``value``, ``achieved``,
    ``rel_error`` (``(achieved - value) / value``) and, per column of ``areas``, the value the cell's
    filter gives it (missing when the filter gives it none).

    Parameters
    ----------
    populations : mapping of str to DataFrame
        Named populations (for instance ``{"generated": ..., "calibrated": ..., "subset": ...}``),
        each with ``weight_col``.
    targets : Targets, DataFrame or mapping
        The held-out cells: count or sum targets with positive values.
    areas : list of str
        Area columns (``["state", "puma"]``) whose value in each cell's filter is reported; one column is a list
        of one (``["state"]``), as every list of column names in microplex. Columns that nest may be listed in
        any order; two that do not (PUMA codes repeating across states) are listed coarsest first, as
        :func:`area_errors` reads them. A column the cells fix but ``areas`` does not list is read as listed after
        them: where a listed column's codes repeat across its values (``["puma"]`` of cells ``state == 'Idaho' &
        puma == 100 & ...``, PUMA 100 in three states) and the counts say the listed column is the finer (25 PUMA
        codes, 3 states), its areas would pool different places, so it is refused, naming both and saying to list
        ``["state", "puma"]``; a listed column of fewer values (``["state"]``) is the coarser, its areas its codes.

    Raises
    ------
    DataValidationError
        For cells that are no positive count or sum, a cell naming a column the records lack, a bad weight, or a
        listed area column that an unlisted column the cells fix would split (above), naming both columns.
    """
    from ..calibration.filters import fixed_value

    cells = _checked_cells(targets)
    areas = check_names(areas, "areas")
    if not isinstance(populations, Mapping) or not populations:
        raise DataValidationError("The 'populations' parameter must be a non-empty mapping of name -> DataFrame.")
    _check_unlisted(cells, areas, "areas")
    value = np.array([t.value for t in cells])
    frames = []
    for name, records in populations.items():
        achieved = cell_totals(records, cells, weight_col)
        frame = pd.DataFrame({"population": name, "target": [t.name for t in cells], "value": value,
                              "achieved": achieved, "rel_error": relative_error(achieved, value)})
        for column in areas:
            frame[column] = pd.Series([fixed_value(t.filters, column) for t in cells], dtype=object)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def error_summary(errors: pd.DataFrame) -> pd.DataFrame:
    """Per population (in order of appearance): ``cells`` and the ``median``, ``p90`` and ``max`` of the
    absolute relative errors of :func:`heldout_errors`."""
    rows = []
    for name, part in errors.groupby("population", sort=False):
        e = part["rel_error"].abs().to_numpy()
        rows.append({"population": name, "cells": len(e), "median": float(np.median(e)),
                     "p90": float(np.quantile(e, 0.9)), "max": float(e.max())})
    return pd.DataFrame(rows)


def area_errors(errors: pd.DataFrame, column: str) -> pd.DataFrame:
    """Per population and area of ``column``: ``cells``, ``value`` (the cells' total) and ``error``, the
    misplacement ``sum |achieved - value| / sum value`` over the area's cells. Where the population has the area's
    total right and the cells list every cell the area's people are in, that is twice the share of the people in
    the wrong cells (a misplaced person counts in the cell it is missing from and in the one it is extra in), so it
    can exceed 1; the same measure as the sparse benchmarks' misplacement. Held-out cells have positive values, so
    a cell empty in the data is never listed: a person placed there counts once, in the cell it is missing from
    (a PUMA of 1 person in the data, its 1 record in an education group the data leave empty: 1, not 2).

    Cells whose filter gives ``column`` no single value are left out; a column that no cell gives one is
    refused (:class:`~microplex.DataValidationError`). Where ``column`` and another area column
    :func:`heldout_errors` was given nest in the cells fixing both (one is coarser where every code of the other
    lies in exactly one of its codes: ``puma_id`` 'Idaho:100' in Idaho), each column's areas are its codes,
    whatever order the columns were listed in.

    Where neither nests (PUMA 100 in Idaho, Nevada and Utah, and each state holding several PUMA codes), the
    cells cannot tell codes repeating across the areas of a coarser column from the reverse, so the order
    decides: the column listed first is read as the coarser (``areas=["state", "puma"]``). Its areas are its
    codes; an area of the later column is keyed by both and labelled ``"Idaho / 100"``, and a cell fixing the
    later column but not the earlier is refused, naming it. The counts must not contradict the order: listed
    with the column of as many distinct values as the other or more first, among the cells fixing both
    (``["puma", "state"]``, 25 codes before 3 states), the pair is refused, naming both, whichever column is
    asked for: list the coarser first, or give the finer areas codes of their own (the pipeline's ``combine``,
    such as ``puma_id``). The counts cannot catch every wrong order (two areas each numbering five districts 1
    to 5 look like five states each holding PUMA codes 1 and 2), so where in doubt give the finer areas codes of
    their own.
    """
    if column not in errors.columns:
        raise DataValidationError(f"Area column {column!r} is not in the held-out errors; pass it in 'areas'.")
    part = errors[errors[column].notna()].assign(miss=lambda f: (f["achieved"] - f["value"]).abs())
    if not len(part):
        fixed = [c for c in errors.columns.drop(list(_COLUMNS)) if errors[c].notna().any()]
        raise DataValidationError(
            f"Area column {column!r}: no held-out cell fixes it to one value (an equality, or a set of one value), "
            f"so it has no areas to report; the cells fix {fixed}.")
    keys = _keyed_by(part, column, [c for c in errors.columns if c not in _COLUMNS], part["target"].tolist(), "areas")
    if keys:  # "Idaho / 100": the coarser areas' values, then the code
        part = part.assign(**{column: [" / ".join(map(str, v)) for v in
                                       part[[*keys, column]].itertuples(index=False, name=None)]})
    table = part.groupby(["population", column], sort=False).agg(
        cells=("value", "size"), value=("value", "sum"), miss=("miss", "sum")).reset_index()
    table["error"] = table["miss"] / table["value"]
    return table.drop(columns="miss").rename(columns={column: "area"})


#: The columns of :func:`heldout_errors` that are no area column.
_COLUMNS = ("population", "target", "value", "achieved", "rel_error")


def _keyed_by(frame: pd.DataFrame, column: str, listed: Sequence[str], names: Sequence[str], what: str,
              unlisted: Sequence[str] = ()) -> list[str]:
    """The area columns listed before ``column`` that key its areas: those that do not nest with it in the cells
    fixing both, where ``column``'s codes repeat across their areas (PUMA 100 in Idaho, Nevada and Utah, with
    ``listed`` ``["state", "puma"]``), so that an area of ``column`` is told by them and its code (``"Idaho /
    100"``); ``frame`` holds each cell's value of the area columns (missing where its filter fixes none),
    ``names`` the cells' names.

    One column is coarser than another where every code of the other lies in exactly one of its codes
    (``puma_id`` 'Idaho:100' in Idaho); such columns, and columns whose codes match one to one, key nothing, so
    the order they are listed in decides nothing. Where neither nests (a code of each lies in several areas of
    the other), the cells cannot tell codes repeating across the areas of a coarser column from the reverse, so
    the order decides: the column listed first is read as the coarser, which the counts must not contradict: it
    must have fewer distinct values than the later among the cells fixing both (3 states, 25 PUMA codes). The
    earlier column's areas are then its codes, the later's keyed by both.

    ``unlisted`` names the columns of ``listed`` that the cells fix but the user did not list (read as listed
    after ``column``, :func:`_check_unlisted`): a refused order is then named as such, saying to list both.

    Raises
    ------
    DataValidationError
        For two columns that do not nest listed with the one of as many values as the other or more first
        (``["puma", "state"]``), naming both; for a cell that fixes ``column`` but not a column keying it: its
        area cannot be told.
    """
    keys: list[str] = []
    listed = list(listed)
    fixed = frame[column].notna().to_numpy()
    for other in listed:
        if other == column:
            continue
        has = frame[other].notna().to_numpy()
        both = frame[fixed & has]
        if not len(both):
            continue
        # a code of each column that lies in several areas of the other, if any
        split = {}
        for fine, coarse in ((column, other), (other, column)):
            parents = both.groupby(fine, sort=False)[coarse].unique()
            many = parents[parents.map(len) > 1]
            if len(many):
                split[fine] = (to_python(many.index[0]), sorted(str(to_python(v)) for v in many.iloc[0]))
        if len(split) < 2:  # one nests in the other, or they match one to one
            continue
        coarse, fine = (other, column) if listed.index(other) < listed.index(column) else (column, other)
        code, where = split[fine]
        n_coarse, n_fine = both[coarse].nunique(), both[fine].nunique()
        if n_coarse >= n_fine and fine in unlisted:
            raise DataValidationError(
                f"The {what} column {coarse!r}: its codes repeat across the values of {fine!r}, which the held-out "
                f"cells fix too but is not among the {what} ({coarse} {split[coarse][0]!r} lies in {fine} "
                f"{split[coarse][1]}), and neither nests in the other; in the cells fixing both {coarse!r} has "
                f"{n_coarse} values and {fine!r} {n_fine}, so {fine!r} reads as the coarser area and the areas of "
                f"{coarse!r} would pool codes of different {fine!r} areas. List {fine!r} first, {[fine, coarse]}, to "
                f"key the areas of {coarse!r} by both, or give the areas of {coarse!r} codes of their own (the "
                f'pipeline\'s combine table, such as combine = {{ {coarse}_id = ["{fine}", "{coarse}"] }}). A column '
                f"that meets the same values in every area (education groups in every PUMA) divides the areas and "
                f"is not read as one.")
        if n_coarse >= n_fine:
            raise DataValidationError(
                f"The {what} columns {coarse!r} and {fine!r}: {coarse!r} is listed first, so it is read as the "
                f"coarser area, and the codes of {fine!r} repeat across its areas ({fine} {code!r} lies in {coarse} "
                f"{where}) while neither nests in the other, but in the cells fixing both {coarse!r} has {n_coarse} "
                f"values and {fine!r} {n_fine}, so the order cannot be told right: if {fine!r} is the coarser area, "
                f"list {fine!r} first; if {coarse!r} is, give the areas of {fine!r} codes of their own (the "
                f'pipeline\'s combine table, such as combine = {{ {fine}_id = ["{coarse}", "{fine}"] }}).')
        if coarse == column:
            continue
        lacking = np.flatnonzero(fixed & ~has)
        if len(lacking):
            raise DataValidationError(
                f"The {what} column {column!r}: its codes repeat across {coarse!r} areas ({column} {code!r} lies in "
                f"{coarse} {where}), so an area is told by both, but held-out cell {names[lacking[0]]!r} fixes "
                f"{column!r} and not {coarse!r} ({len(lacking)} such cells). Fix {coarse!r} in those cells too, or "
                f"give the areas codes of their own (the pipeline's combine table, such as "
                f'combine = {{ {column}_id = ["{coarse}", "{column}"] }}).')
        keys.append(coarse)
    return keys
