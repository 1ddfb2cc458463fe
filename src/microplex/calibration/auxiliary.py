"""Auxiliary totals of the full candidate population, for sparse subsets that represent what was not targeted.

A sparse subset calibrated to the official targets alone meets them exactly but may distort everything
else: the distribution of untargeted variables within the target areas, finer geography, income
deciles within areas. :func:`auxiliary_design` computes, from the *full* candidate population (initial
weights), the counts of many internal margins, each an area crossed with the categories (or the
within-area quantile groups, the sub-area codes or the area's most frequent values: :func:`crossing`) of
one other column, and the two-way crosses of the margins that the count targets give separately
(:func:`crossed_target_cells`: PUMA x education where the targets are each PUMA's count and state x education);
:class:`~microplex.calibration.SparseCalibrator` calibrates its subset to them *softly* (penalized misses,
through the one Newton solver) while the official targets stay exact.

The area is the target filter column used by the most targets (ties: the one with more categories);
without filtered targets, the margins are national.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from microplex._errors import DataValidationError

from ._sparse_frontier import parameter_design
from .design import Design, build_design, natural_sizes
from .targets import Targets

__all__ = [
    "auxiliary_design", "cell_crosses", "crossed_target_cells", "crossing", "distinct_values", "in_count_units", "nesting", "row_codes", "target_area",
    "target_cells",
]

#: Columns with at most this many distinct values are crossed value by value; numbers with more by quantile
#: groups, other columns with more by their most frequent values within each area (:func:`crossing`).
MAX_CATEGORIES = 20
#: A code (integer or non-numeric) is a sub-area code (crossed by its values) when its repeated values reach at
#: most this share of the further areas they would reach were the column independent of the area (:func:`nesting`)...
NESTED_SPREAD = 1.0 / 3.0
#: ... and the area x value cells number at most this many.
MAX_SUBAREA_CELLS = 2500
#: How :func:`crossing` names the four ways a column is crossed with the area.
KINDS = ("categories", "quantile groups", "sub-area codes", "frequent categories")
#: The kinds whose groups per area follow the budget (:func:`area_groups`).
_GROUPED = ("quantile groups", "frequent categories")
#: With a budget of ``K`` records, the quantile columns share about ``CELLS_PER_RECORD * K`` cells, allotted
#: to the areas by population share (:func:`area_groups`; at least ``n_groups``, at most ``MAX_GROUPS`` per area);
#: where that splits an area finer than ``n_groups``, the ``n_groups`` level is kept as well. At most
#: ``MAX_FINE_CELLS`` such cells in all, so that the linear programs' size stays bounded (a 5,000-record
#: budget over 1M candidates took 147 s with 10,000 cells, against 9 s with 255).
CELLS_PER_RECORD = 2.0
MAX_GROUPS = 1000
MAX_FINE_CELLS = 2500
#: The two-way crosses of separately given count targets (:func:`crossed_target_cells`) join the auxiliaries up to
#: this many cells (PUMA x education and PUMA x experience in the demo's largest state hold about 1,600).
MAX_TARGET_CELLS = 20_000


def target_area(targets: Targets, candidates: pd.DataFrame) -> str | None:
    """The filter column used by the most targets (ties: more distinct values in ``candidates``), or None."""
    uses = Counter(col for t in targets for col in t.filters if col in candidates.columns)
    if not uses:
        return None
    return max(sorted(uses), key=lambda c: (uses[c], candidates[c].nunique()))


def auxiliary_columns(
    candidates: pd.DataFrame, targets: Targets, weight_col: str, household_col: str | None, area: str | None
) -> list[str]:
    """Columns crossed with the area by default: every column but the weight, the household id, the area,
    columns the targets already cross with the area, constant columns, identifiers (integer or text
    columns whose values are all distinct), complex columns and columns of unhashable values (lists, dicts: a
    Parquet list or struct column), which have no margins and are carried through with the records."""
    skip = {weight_col, household_col, area}
    for t in targets:
        if area is None or area in t.filters:
            skip.update(t.filters)
    n = len(candidates)

    def keep(s: pd.Series) -> bool:
        if pd.api.types.is_complex_dtype(s):  # complex numbers have no margins
            return False
        try:
            k = int(s.nunique(dropna=False))
        except TypeError:  # lists, dicts: no margins
            return False
        return k > 1 and (k < n or pd.api.types.is_float_dtype(s))

    return [c for c in candidates.columns if c not in skip and keep(candidates[c])]


def distinct_values(s: pd.Series, name: object, use: str) -> int:
    """The number of distinct values of column ``name`` (missing values count as one value); a
    :class:`DataValidationError` naming the column where its values are unhashable (lists, dicts), which
    cannot be ``use`` (e.g. "crossed with the area: drop it")."""
    try:
        return int(s.nunique(dropna=False))
    except TypeError as exc:  # lists, dicts
        raise DataValidationError(f"Column {name!r} holds unhashable values (lists, dicts, ...), which cannot be "
                                  f"{use}.") from exc


def _columns(
    candidates: pd.DataFrame, targets: Targets, weight_col: str, household_col: str | None,
    columns: str | Sequence[str], area: str | None,
) -> list[str]:
    """The auxiliary columns: :func:`auxiliary_columns` for ``"auto"``, else the given ones (all present)."""
    if isinstance(columns, str):
        return auxiliary_columns(candidates, targets, weight_col, household_col, area)
    cols = list(columns)
    missing = [c for c in cols if c not in candidates.columns]
    if missing:
        raise DataValidationError(f"auxiliary columns {missing} are not in the candidates.")
    for c, role in ((weight_col, "the weight column"), (household_col, "the household id")):
        if c is not None and c in cols:
            raise DataValidationError(f"auxiliary column {c!r} is {role}; the auxiliary margins cross record "
                                      "variables with the area.")
    for c in cols:
        s = candidates[c]
        if pd.api.types.is_complex_dtype(s):
            raise DataValidationError(f"auxiliary column {c!r} holds complex numbers, which have no margins.")
        if len(s) and s.isna().all():
            raise DataValidationError(f"auxiliary column {c!r} holds only missing values.")
        distinct_values(s, c, "crossed with the area: drop it from auxiliary=[...]")
    return cols


def crossing(
    candidates: pd.DataFrame, targets: Targets, weight_col: str, household_col: str | None = None,
    columns: str | Sequence[str] | Mapping[str, str] = "auto",
) -> dict[str, str]:
    """How each auxiliary column is crossed with the area:

    - ``"categories"``: at most ``MAX_CATEGORIES`` distinct values (text, categories, booleans, numbers),
      crossed by its values;
    - ``"sub-area codes"``: more values, nested in the area (an integer or text PUMA code within states,
      see :func:`nesting`), crossed by its values;
    - ``"quantile groups"``: a number, a date or a duration with more values, not nested: within-area
      quantile groups of its values;
    - ``"frequent categories"``: any other column with more values (occupations, industries across
      states): each area's most frequent values, as many as its quantile groups would be
      (:func:`area_groups`), the rest of the area pooled in one group; crossed value by value, 500
      occupations in 50 states make 25,000 cells that a subset of a few thousand records cannot fill.

    An integer code that is not nested in the area (an occupation code) is a number to pandas: make it a
    category (``astype("category")``) to have it crossed as one. A mapping (this function's result) is
    returned as it is.

    >>> import pandas as pd
    >>> from microplex import Targets
    >>> df = pd.DataFrame({"state": ["a", "b"] * 50, "puma": [i % 25 for i in range(100)], "w": 1.0})
    >>> t = Targets.from_margins({"state": df.groupby("state")["w"].sum()})
    >>> crossing(df, t, "w")  # codes 0-24, each in both states: a number
    {'puma': 'quantile groups'}
    >>> crossing(df.assign(puma=df["puma"] + 100 * (df["state"] == "b")), t, "w")  # 100-124 only in b
    {'puma': 'sub-area codes'}
    >>> crossing(df.assign(puma=df["puma"].astype("category")), t, "w")  # not nested either
    {'puma': 'frequent categories'}
    >>> crossing(df.assign(puma=(df["puma"] // 5).astype(str)), t, "w")  # five values
    {'puma': 'categories'}
    """
    if isinstance(columns, Mapping):
        bad = {c: k for c, k in columns.items() if k not in KINDS}
        if bad:
            raise DataValidationError(f"auxiliary column kinds {bad} are not among {list(KINDS)}.")
        _columns(candidates, targets, weight_col, household_col, list(columns), None)  # all present
        return dict(columns)
    area = target_area(targets, candidates)
    cols = _columns(candidates, targets, weight_col, household_col, columns, area)
    a, n_area = _area_codes(candidates, area)
    units = None if household_col is None else ~candidates[household_col].duplicated().to_numpy()
    out = {}
    for c in cols:
        s = candidates[c]
        if s.nunique(dropna=False) <= MAX_CATEGORIES:
            out[c] = "categories"
        elif area is not None and nesting(s, a, n_area, units) <= NESTED_SPREAD:
            out[c] = "sub-area codes"
        else:
            out[c] = "quantile groups" if _is_ordered(s) else "frequent categories"
    return out


def nesting(s: pd.Series, area: np.ndarray, n_area: int, units: np.ndarray | None = None) -> float:
    """How far a code's values (an integer or non-numeric column) are confined to areas: over the values held
    by two or more records, the areas they occur in beyond their first, divided by the same number expected
    were the column independent of the area (``sum_a 1 - (1 - p_a)^n_v``, less one, for a value held ``n_v``
    times, ``p_a`` the area's share of the records).

    About 1 for a quantity (age, hours, experience: every value occurs everywhere; 0.86-1.08 on the bundled
    data sets) and near 0 for a code of sub-areas (a PUMA code occurs in one or a few states: 0.15 on the
    census2000 extract). ``inf`` (never nested) for dates and durations, for a number that is not
    integer-valued, for a column with more than ``MAX_SUBAREA_CELLS`` area x value cells, or one whose repeated
    values hold less than half of the records (a code labels many records each). Where the area is a grouping
    of an integer quantity (age groups of age), the quantity is nested too and is crossed by its values: its
    cells are then the national distribution of its values, at most ``MAX_SUBAREA_CELLS`` of them. ``units``:
    a mask of the records that count (one per household, so that a household's shared values are not read as
    nesting).
    """
    if n_area < 2 or _is_temporal(s):
        return math.inf
    a = area if units is None else area[units]
    s = s if units is None else s.iloc[units]
    if _is_number(s):
        v = s.to_numpy(dtype=np.float64, na_value=np.nan)
        if not np.all(np.isnan(v) | (v == np.round(v))):
            return math.inf
        codes, uniq = pd.factorize(v, use_na_sentinel=False)
    else:
        codes, uniq = pd.factorize(s, use_na_sentinel=False)
    if len(uniq) > MAX_SUBAREA_CELLS:  # at least as many cells as values
        return math.inf
    cells = np.unique(codes.astype(np.int64) * n_area + a)
    if len(cells) > MAX_SUBAREA_CELLS:
        return math.inf
    n_v = np.bincount(codes)
    k_v = np.bincount(cells // n_area, minlength=len(n_v))
    repeated = n_v >= 2
    if n_v[repeated].sum() < 0.5 * len(codes):
        return math.inf
    p_a = np.bincount(a, minlength=n_area) / len(a)  # every area holds a cell: at most MAX_SUBAREA_CELLS areas
    expected = (1.0 - (1.0 - p_a[None, :]) ** n_v[repeated][:, None]).sum(axis=1) - 1.0
    if expected.sum() <= 0:
        return math.inf
    return float((k_v[repeated] - 1).sum() / expected.sum())


def _area_codes(candidates: pd.DataFrame, area: str | None) -> tuple[np.ndarray, int]:
    if area is None:
        return np.zeros(len(candidates), dtype=np.int64), 1
    codes, uniq = pd.factorize(candidates[area], use_na_sentinel=False)
    return codes.astype(np.int64), len(uniq)


def _is_temporal(s: pd.Series) -> bool:
    return isinstance(s.array, (pd.arrays.DatetimeArray, pd.arrays.TimedeltaArray))


def _is_number(s: pd.Series) -> bool:
    return (pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)
            and not pd.api.types.is_complex_dtype(s))


def _is_ordered(s: pd.Series) -> bool:
    """Whether a column's values can be cut into quantile groups (numbers, dates, durations)."""
    return _is_number(s) or _is_temporal(s)


def _numbers(s: pd.Series) -> np.ndarray:
    """A quantile column's values as float64, missing values as NaN (dates and durations in their unit)."""
    if _is_temporal(s):
        v = s.array.asi8.astype(np.float64)
        v[s.isna().to_numpy()] = np.nan
        return v
    return s.to_numpy(dtype=np.float64, na_value=np.nan)


def area_groups(
    area: np.ndarray, n_area: int, w: np.ndarray, budget: int | None, n_groups: int, n_columns: int = 1
) -> np.ndarray:
    """Quantile groups per area and column: ``n_groups``, or, for a subset of ``budget`` records, the groups
    ``n_columns`` quantile columns can share ``C = min(CELLS_PER_RECORD * budget, MAX_FINE_CELLS)`` cells
    with, allotted by the area's population share ``s_a``: ``C s_a / n_columns`` (at least ``n_groups``, at
    most ``MAX_GROUPS``), so that big areas get groups as fine as the records that can fill them."""
    if budget is None or n_columns == 0:
        return np.full(n_area, n_groups, dtype=np.int64)
    share = np.bincount(area, weights=w, minlength=n_area) / max(float(w.sum()), 1e-300)
    cells = min(budget * CELLS_PER_RECORD, MAX_FINE_CELLS)
    per_area = np.floor(cells * share / n_columns).astype(np.int64)
    return np.clip(per_area, n_groups, max(n_groups, MAX_GROUPS))


def _column_codes(
    s: pd.Series, area: np.ndarray, n_area: int, w: np.ndarray, n_groups: int | np.ndarray, kind: str
) -> tuple[np.ndarray, int]:
    """Per record, a group code within its area, by ``kind`` (:data:`KINDS`): the value (``"categories"``,
    ``"sub-area codes"``), the within-area weighted quantile group (``"quantile groups"``: ``n_groups`` per area,
    or one count for all; ties share a group; missing values a group of their own), or the value's rank by
    weight within the area, the values past the area's ``n_groups - 1`` most frequent pooled in the last group
    (``"frequent categories"``; ties by first appearance)."""
    if kind == "frequent categories":
        return _frequent_codes(s, area, n_area, w, n_groups)
    if kind != "quantile groups":
        codes, uniq = pd.factorize(s, use_na_sentinel=False)
        return codes.astype(np.int64), len(uniq)
    v = _numbers(s)
    miss = np.isnan(v)
    vv = np.where(miss, np.inf, v)
    order = np.lexsort((vv, area))
    a_s, v_s, w_s = area[order], vv[order], w[order]
    cum = np.cumsum(w_s)
    area_start = np.searchsorted(a_s, np.arange(n_area), side="left")
    area_end = np.searchsorted(a_s, np.arange(n_area), side="right")
    base = np.concatenate([[0.0], cum])[area_start][a_s]  # weight before the area
    total = np.concatenate([[0.0], cum])[area_end][a_s] - base
    new_run = np.ones(len(v_s), dtype=bool)
    new_run[1:] = (a_s[1:] != a_s[:-1]) | (v_s[1:] != v_s[:-1])
    run_first = np.maximum.accumulate(np.where(new_run, np.arange(len(v_s)), 0))
    below = (cum - w_s)[run_first] - base  # weight strictly below the value, within the area
    groups = np.broadcast_to(np.asarray(n_groups, dtype=np.int64), (n_area,))
    g = groups[a_s]
    grp = np.minimum(np.floor(g * below / np.maximum(total, 1e-300)), g - 1).astype(np.int64)
    codes = np.empty(len(v), dtype=np.int64)
    codes[order] = grp
    top = int(groups.max()) if n_area else 1
    codes[miss] = top
    return codes, top + 1


def _frequent_codes(
    s: pd.Series, area: np.ndarray, n_area: int, w: np.ndarray, n_groups: int | np.ndarray
) -> tuple[np.ndarray, int]:
    """:func:`_column_codes` of ``"frequent categories"``: per record, its value's rank by weight within its area
    (0 the heaviest), ranks from ``n_groups - 1`` on pooled into that last group."""
    values, uniq = pd.factorize(s, use_na_sentinel=False)
    n_values = max(len(uniq), 1)
    key = area * n_values + values.astype(np.int64)
    cells, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    weight = np.bincount(inverse, weights=w, minlength=len(cells))
    cell_area = cells // n_values
    order = np.lexsort((first, -weight, cell_area))  # by area, heaviest first, then first appearance
    rank = np.empty(len(cells), dtype=np.int64)
    rank[order] = np.arange(len(cells)) - np.searchsorted(cell_area[order], cell_area[order], side="left")
    groups = np.broadcast_to(np.asarray(n_groups, dtype=np.int64), (n_area,))
    return np.minimum(rank[inverse], groups[area] - 1), int(groups.max())


def in_count_units(aux: Design) -> tuple[sp.csr_matrix, np.ndarray]:
    """Explicit auxiliary targets' rows and totals, each sum or mean row divided by the mean size of its records'
    values (its natural size over the weighted count of the records it touches), so that it weighs like a count
    of records in the auxiliary objective, the soft auxiliary calibration and the refine, whatever the unit of its
    variable: an income sum in dollars outweighed every count (the subset chosen for incomes in millions was
    another). Count rows are unchanged.

    Examples
    --------
    >>> df = pd.DataFrame({"y": [1000.0, 3000.0, 0.0], "w": [1.0, 1.0, 2.0]})
    >>> from microplex.calibration.targets import Target
    >>> aux = build_design(df, Targets([Target(4.0), Target(4000.0, "sum", "y")]), "w", None)
    >>> x, t = in_count_units(aux)
    >>> x.toarray().tolist(), t.tolist()
    ([[1.0, 0.5], [1.0, 1.5], [1.0, 0.0]], [4.0, 2.0])
    """
    valued = np.array([t.aggregate != "count" for t in aux.targets], dtype=bool)
    if not valued.any():
        return aux.x, aux.totals
    x = sp.csr_matrix(aux.x)
    rows = np.repeat(np.arange(x.shape[0]), np.diff(x.indptr))
    touched = np.bincount(x.indices, weights=aux.d[rows] * (x.data != 0), minlength=x.shape[1])
    is_mean = np.array([t.aggregate == "mean" for t in aux.targets], dtype=bool)
    if is_mean.any():  # a mean's records, whatever their value
        touched = np.where(is_mean, np.asarray(aux.mean_count.T @ aux.d, dtype=np.float64).ravel(), touched)
    natural = natural_sizes(aux, aux.d)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        f = np.where(valued & (natural > 0), touched / np.where(natural > 0, natural, 1.0), 1.0)
    f = np.where(np.isfinite(f) & (f > 0), f, 1.0)
    return sp.csr_matrix(x @ sp.diags(f)), aux.totals * f


def auxiliary_design(
    candidates: pd.DataFrame,
    design: Design,
    targets: Targets,
    weight_col: str,
    household_col: str | None = None,
    *,
    columns: str | Sequence[str] | Mapping[str, str] | Targets = "auto",
    n_groups: int = 5,
    budget: int | None = None,
) -> tuple[sp.csr_matrix, np.ndarray, list[str]]:
    """Unit-level indicators and full-population counts of the auxiliary margins.

    Parameters
    ----------
    candidates : DataFrame
        The full candidate population.
    design : Design
        The design of the official targets on ``candidates`` (its units and initial weights are used).
    columns : "auto", list of str, mapping or Targets, default="auto"
        Columns to cross with the area (``"auto"``: see :func:`auxiliary_columns`; each crossed as
        :func:`crossing` says, or as a mapping from it says), or explicit auxiliary targets (their values are
        used as given). Beside the columns' crosses (not with explicit targets), the two-way crosses of the
        margins the count targets give separately (:func:`crossed_target_cells`, up to ``MAX_TARGET_CELLS``
        cells).
    n_groups : int, default=5
        Within-area quantile groups of a numeric column with more than ``MAX_CATEGORIES`` values (the
        fewest per area with ``budget``).
    budget : int, optional
        Records of the subset: an area gets as many quantile groups as it can fill (:func:`area_groups`);
        where some area gets more than ``n_groups``, every quantile column also keeps its ``n_groups``
        groups per area (named ``column/n_groups``), so the coarse shape of the within-area distribution stays
        in the objective while the fine groups spread the records.

    Returns
    -------
    x : csr_matrix of shape (n_units, m_aux)
        Records (persons, for households) of each unit in each auxiliary cell.
    totals : ndarray of shape (m_aux,)
        The full population's counts ``x' d`` (or the given targets' values).
    names : list of str
        ``"area#i x column#j"`` of each cell (area and group codes).
    """
    if isinstance(columns, Targets):
        aux = parameter_design(candidates, columns, weight_col, household_col, "auxiliary")
        x, totals = in_count_units(aux)
        return x, totals, list(aux.targets.names)
    area = target_area(targets, candidates)
    kinds = crossing(candidates, targets, weight_col, household_col, columns)
    a, n_area = _area_codes(candidates, area)
    w = candidates[weight_col].to_numpy(dtype=np.float64)
    groups = area_groups(a, n_area, w, budget, n_groups, sum(k in _GROUPED for k in kinds.values()))
    levels = [groups]  # a budget that splits some area finer keeps the n_groups level too (all areas)
    if (groups > n_groups).any():
        levels.append(np.full(n_area, n_groups, dtype=np.int64))
    x, totals, names = _crossed(candidates, design, kinds, a, n_area, w, levels, area or "all", n_groups)
    x_c, t_c, n_c = crossed_target_cells(candidates, design, targets, weight_col, max_cells=MAX_TARGET_CELLS)
    if not len(n_c):
        return x, totals, names
    return sp.hstack([x, x_c], format="csr"), np.concatenate([totals, t_c]), names + n_c


def _crossed(
    candidates: pd.DataFrame, design: Design, kinds: Mapping[str, str], a: np.ndarray, n_area: int, w: np.ndarray,
    levels: Sequence[np.ndarray], area_name: str, n_groups: int, national: bool = False,
) -> tuple[sp.csr_matrix, np.ndarray, list[str]]:
    """Unit-level indicators and full-population counts of the areas ``a`` crossed with every column's
    values, within-area quantile groups or most frequent values (``kinds``: :func:`crossing`'s; one block
    per level of groups, values at the first only); with ``national``, also with the ``n_groups`` quantile
    groups of the whole population (bands with the same bounds in every area, named ``column@national``),
    each of a quantile column's two groupings then entering at half weight (its entries halved), so that
    every column weighs the same in an L1 objective over the cells."""
    blocks, names = [], []
    n_units = len(design.d)
    everywhere = np.zeros(len(a), dtype=np.int64)
    for level, per_area in enumerate([*levels, None] if national else levels):
        for col, kind in kinds.items():
            quantile = kind == "quantile groups"
            if (level and kind not in _GROUPED) or (per_area is None and not quantile):
                continue  # values are the same at every level
            if per_area is None:
                codes, n_codes = _column_codes(candidates[col], everywhere, 1, w, n_groups, kind)
                tag = f"{col}@national"
            else:
                codes, n_codes = _column_codes(candidates[col], a, n_area, w, per_area, kind)
                tag = col if level == 0 else f"{col}/{n_groups}"
            cell = a * n_codes + codes
            used, cell = np.unique(cell, return_inverse=True)
            value = 0.5 if national and quantile else 1.0
            blocks.append(sp.csr_matrix((np.full(len(cell), value), (design.record_unit, cell)), shape=(n_units, len(used))))
            names.extend(f"{area_name}#{int(k) // n_codes} x {tag}#{int(k) % n_codes}" for k in used)
    if not blocks:
        return sp.csr_matrix((n_units, 0)), np.zeros(0), []
    x = sp.hstack(blocks, format="csr")
    return x, np.asarray(x.T @ design.d, dtype=np.float64), names


def row_codes(x: sp.spmatrix, *, values: bool = False) -> np.ndarray:
    """A code per row of ``x``: rows with the same non-zero columns (and, with ``values``, the same values in
    them) share a code; rows with no non-zero share one."""
    x = sp.csr_matrix(x)
    x.sort_indices()
    n = x.shape[0]
    nnz = np.diff(x.indptr)
    width = max(int(nnz.max(initial=0)), 1)
    keys = np.full((n, 2 * width if values else width), -1.0)
    rows = np.repeat(np.arange(n), nnz)
    pos = np.arange(len(rows)) - x.indptr[rows]
    keys[rows, pos] = x.indices  # a row's columns, in order
    if values:
        keys[rows, width + pos] = x.data
    _, codes = np.unique(keys, axis=0, return_inverse=True)
    return codes.reshape(-1).astype(np.int64)


def _person_counts(targets: Targets) -> Targets:
    """The person count targets with a filter: the targets whose cells :func:`target_cells` and
    :func:`crossed_target_cells` read."""
    return Targets([t for t in targets if t.aggregate == "count" and t.entity == "person" and t.filters])


def _count_indicators(candidates: pd.DataFrame, counts: Targets, weight_col: str) -> sp.csr_matrix:
    """Records x ``counts``: 1 where a record is in a target (its columns in the targets' order)."""
    cols = sorted({c for t in counts for c in t.filters} | {weight_col})
    return build_design(candidates[cols], counts, weight_col).x.tocsr()


def target_cells(candidates: pd.DataFrame, targets: Targets, weight_col: str) -> tuple[np.ndarray, int]:
    """Per record, the code of its cell of the person count targets: records in the same set of count
    targets share a cell (state x education when the targets are state x education counts; the finest
    intersection of nested geographies). Records in no count target share one cell."""
    counts = _person_counts(targets)
    if not len(counts):
        return np.zeros(len(candidates), dtype=np.int64), 1
    codes = row_codes(_count_indicators(candidates, counts, weight_col))
    return codes, int(codes.max(initial=-1)) + 1


def crossed_target_cells(
    candidates: pd.DataFrame, design: Design, targets: Targets, weight_col: str, *,
    max_cells: int | None = None,
) -> tuple[sp.csr_matrix, np.ndarray, list[str]]:
    """The two-way crosses of the margins that the person count targets give separately, at full-population
    counts: with state x education, state x experience and each PUMA's count as targets, the cells of
    PUMA x education, PUMA x experience and state x education x experience, which a subset calibrated to the
    margins alone may fill at random. A margin is the targets that filter on one set of columns; the cross of
    two is the cells of records in a target of each (keyed by the pair of targets). A cell that a count target
    equals (a PUMA of state-level and PUMA-level counts, nested) is left out, as is every cross above
    ``max_cells`` cells in all (the result is then empty, as with a single margin).

    Returns
    -------
    x, totals, names
        As :func:`auxiliary_design` (names ``"margin#i x margin#j#k"``: the margins in the targets' order).

    Examples
    --------
    >>> from microplex.calibration import Targets
    >>> from microplex.calibration.design import build_design
    >>> df = pd.DataFrame({"a": [0, 0, 1, 1], "b": [0, 1, 0, 1], "w": [1.0, 2.0, 3.0, 4.0]})
    >>> tg = Targets.from_margins({"a": pd.Series([3.0, 7.0])}) + Targets.from_margins({"b": pd.Series([4.0, 6.0])})
    >>> x, totals, names = crossed_target_cells(df, build_design(df, tg, "w"), tg, "w")
    >>> totals.tolist(), names[0]
    ([1.0, 2.0, 3.0, 4.0], 'margin#0 x margin#1#0')
    """
    n_units = len(design.d)
    empty = sp.csr_matrix((n_units, 0)), np.zeros(0), []
    counts = _person_counts(targets)
    if not len(counts):
        return empty
    x = _count_indicators(candidates, counts, weight_col)
    margins: dict[frozenset, list[int]] = {}
    for j, t in enumerate(counts):
        margins.setdefault(frozenset(t.filters), []).append(j)
    groups = list(margins.values())
    xc = x.tocsc()
    in_margin = [np.asarray(xc[:, g].sum(axis=1)).ravel() > 0 for g in groups]  # records in a target of each
    blocks, totals, names = [], [], []
    n_cols = 0
    for g1 in range(len(groups)):
        for g2 in range(g1 + 1, len(groups)):
            rec = np.flatnonzero(in_margin[g1] & in_margin[g2])
            if not len(rec):
                continue
            codes = row_codes(xc[:, groups[g1] + groups[g2]].tocsr()[rec])
            n_cells = int(codes.max()) + 1
            member = sp.csr_matrix((np.ones(len(rec)), (rec, codes)), shape=(x.shape[0], n_cells))
            per_target = (x.T @ member).tocsr()  # count targets x cells: the cells each target holds
            per_target.eliminate_zeros()
            alone = np.flatnonzero(np.diff(per_target.indptr) == 1)
            pinned = np.zeros(n_cells, dtype=bool)
            pinned[per_target.indices[per_target.indptr[alone]]] = True
            cells = np.flatnonzero(~pinned)
            if not len(cells):
                continue
            n_cols += len(cells)
            if max_cells is not None and n_cols > max_cells:
                return empty
            column = np.full(n_cells, -1, dtype=np.int64)
            column[cells] = np.arange(len(cells))
            keep = column[codes] >= 0
            block = sp.csr_matrix((np.ones(int(keep.sum())), (design.record_unit[rec[keep]], column[codes[keep]])),
                                  shape=(n_units, len(cells)))
            blocks.append(block)
            totals.append(np.asarray(block.T @ design.d, dtype=np.float64))
            names.extend(f"margin#{g1} x margin#{g2}#{int(k)}" for k in cells)
    if not blocks:
        return empty
    return sp.hstack(blocks, format="csr"), np.concatenate(totals), names


def cell_crosses(
    candidates: pd.DataFrame,
    design: Design,
    targets: Targets,
    weight_col: str,
    household_col: str | None = None,
    *,
    columns: str | Sequence[str] | Mapping[str, str] = "auto",
    n_groups: int = 5,
    max_cells: int | None = None,
) -> tuple[sp.csr_matrix, np.ndarray, list[str]]:
    """The count targets' cells (:func:`target_cells`) crossed with every auxiliary column's values
    (categories and sub-area codes, :func:`crossing`), the cell's ``n_groups - 1`` most frequent values and
    the rest (frequent categories), or, for a quantile column, both its within-cell
    quantile groups (``n_groups``) and its ``n_groups`` quantile groups of the whole population (bands
    with the same bounds in every cell, as tables of a variable by area use), at full-population counts:
    how each target cell's records spread over what was not targeted (experience within state x
    education). A quantile column's two groupings enter at half weight each (entries and totals halved),
    so that in the refinement's L1 objective every column weighs as one grouping of its values.
    ``columns``: ``"auto"`` (:func:`auxiliary_columns`), the columns to cross, or :func:`crossing`'s
    mapping; the count targets' filter columns are left out. Above ``max_cells`` such cells the national
    bands are left out, and where that is still too many, the result is empty (zero columns).

    Returns
    -------
    x, totals, names
        As :func:`auxiliary_design` (names ``"cell#i x column#j"``, ``"cell#i x column@national#j"``),
        with the half-weight entries above.
    """
    skip = {c for t in targets if t.aggregate == "count" for c in t.filters}
    kinds = crossing(candidates, targets, weight_col, household_col, columns)
    kinds = {c: k for c, k in kinds.items() if c not in skip}
    a, n_cells = target_cells(candidates, targets, weight_col)
    w = candidates[weight_col].to_numpy(dtype=np.float64)
    for national in (True, False):  # above max_cells, the national bands are left out first
        x, totals, names = _crossed(candidates, design, kinds, a, n_cells, w,
                                    [np.full(n_cells, n_groups, dtype=np.int64)], "cell", n_groups, national)
        if max_cells is None or x.shape[1] <= max_cells:
            return x, totals, names
    return sp.csr_matrix((len(design.d), 0)), np.zeros(0), []
