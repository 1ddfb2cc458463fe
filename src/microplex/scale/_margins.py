"""Count margins as numbered calibration targets, and the margin codes of a frame of records."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from .._errors import DataValidationError
from .._params import to_python
from .._stats import check_weight_dtype
from ..calibration.design import is_integral_number, lookup_forms, lookup_values, value_codes
from ..calibration.filters import NumberedCode
from ..calibration.targets import Target, Targets, margin_by_name


class _Codes:
    """What a partition needs to code its records: the margins' columns and category indexes, not the targets.

    Shipped to Dask workers instead of :class:`_Margins`, whose ``Target`` objects and labels (about 120 MB
    pickled at 692,200 targets) every task would otherwise carry and unpickle.

    A number asked of a text column (15 of ``county``) finds its text (``"15"``), else its one code written with
    leading zeros (``"015"``), among the values of the column (:func:`~microplex.calibration.design.lookup_values`):
    of the whole dataset, not of one file. ``pins`` holds, per text column, the value each number finds in the
    whole dataset (``None``: none), set by :meth:`settle` from the values every partition holds; until then each
    partition finds it among its own values, and :meth:`codes` reports what it found for :meth:`settle` to compare.
    Two categories of a margin that name the same records (15 and ``"15"``, ``'1'`` and ``'01'`` of an integer column)
    are refused on the values of the whole dataset too (:meth:`settle`): a crossed margin's ``(15, 1)`` and
    ``("15", 1)`` name the same records where one file holds ``"15"`` and another the sex 1, as on the concatenated
    files.
    """

    def __init__(self, keys: list[tuple[str, ...]], indexes: list[pd.Index], offsets: list[int]) -> None:
        self.keys, self.indexes, self.offsets = keys, indexes, offsets
        self.columns = sorted({c for cols in keys for c in cols})
        self.pins: dict[str, dict[Any, Any]] | None = None

    @property
    def m(self) -> int:
        """The number of targets (categories over all margins)."""
        return self.offsets[-1] + len(self.indexes[-1]) if self.keys else 0

    def codes(self, frame: pd.DataFrame, held: dict[tuple[str, str], set[Any]] | None = None) -> np.ndarray:
        """Target index of every record in every margin, ``(n, K)``; ``-1`` when in no category.

        ``held``, when given (a partition of a dataset, before :meth:`settle`), receives the values of the partition
        that the numbers and numbered codes asked may find (:func:`~microplex.calibration.design.lookup_forms`, per
        text column under ``("values", column)``; united over the partitions by :func:`union_forms`), under
        ``("found", column)`` the pairs (number, value it found here), and under ``("hits", k)`` what each category
        value of the ``k``-th margin found here (:func:`_positions`). Two categories that name the same records here
        are refused by :meth:`settle` on the whole dataset (with the message of the whole data in memory), not here:
        the first of them codes the records meanwhile (a number may find ``"15"`` in the whole dataset where it found
        ``"015"`` here, and the partition is coded again)."""
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            raise DataValidationError(f"The data lack margin columns {missing}; they have {list(frame.columns)}.")
        out = np.empty((len(frame), len(self.keys)), dtype=np.int64)
        columns = {c: value_codes(frame[c]) for c in self.columns}
        for k, (cols, index) in enumerate(zip(self.keys, self.indexes, strict=True)):
            hits = held.setdefault(("hits", k), set()) if held is not None else None
            pos = _positions(cols, index, columns, self.pins, held, hits)
            out[:, k] = np.where(pos >= 0, pos + self.offsets[k], -1)
        if held is not None:
            held.update(self._values({c: columns[c][1] for c in self.columns}))
        return out

    @cached_property
    def _asked(self) -> dict[str, list[tuple[str, list[Any]]]]:
        """Per column, the numbers and :class:`~microplex.calibration.filters.NumberedCode` categories of each margin
        on it, with the head of the message that refuses one (:func:`_where`); found once (a partition's task reads
        it, a :class:`_Codes` being one task of the graph)."""
        out: dict[str, list[tuple[str, list[Any]]]] = {}
        for cols, index in zip(self.keys, self.indexes, strict=True):
            for i, c in enumerate(cols):
                codes = [v for v in (index if len(cols) == 1 else index.levels[i])
                         if isinstance(v, NumberedCode) or is_integral_number(v)]
                if codes:
                    out.setdefault(c, []).append((_where(cols, c), codes))
        return out

    def _values(self, uniques: dict[str, pd.Index]) -> dict[tuple[str, str], set[Any]]:
        """Per text column, under ``("values", column)``, the values among ``uniques`` (a partition's values of each
        column) that the numbers and numbered categories on it may find by their text or their number
        (:func:`~microplex.calibration.design.lookup_forms`)."""
        return {("values", c): set(lookup_forms(uniques[c], [v for _, codes in asked for v in codes]))
                for c, asked in self._asked.items()
                if c in uniques and not pd.api.types.is_numeric_dtype(uniques[c].dtype)}

    def settle(self, held: dict[tuple[Any, Any], set[Any]]) -> bool:
        """Resolves the numbers and numbered categories on the values of the whole dataset, whose partitions hold the
        values ``held`` (:meth:`codes`', united), margin by margin as :meth:`codes` reads the
        whole dataset in memory (``rake_frame``), with its messages: refuses a numbered category (``'015'``
        combined with 15) where the dataset holds ``"015"`` and its number finds another value there (``"15"``), and
        two categories of a margin that name the same records in the whole dataset (from what :meth:`codes` found,
        ``("hits", k)``: ``(15, 1)`` and ``("15", 1)`` where one file holds ``"15"`` and another the sex 1); pins
        each number to the value it finds in the whole dataset (``"15"`` in one file, ``"015"`` in another:
        ``"15"``). Returns whether a partition coded before found a number elsewhere (``"015"``), so that its codes
        must be computed again."""
        pins: dict[str, dict[Any, Any]] = {}
        values: dict[str, pd.Index] = {}
        for c, asked in self._asked.items():
            if ("values", c) not in held:
                continue  # a numeric column (or none of the data): a number is its value there
            values[c] = pd.Index(sorted(held[("values", c)], key=lambda v: (str(v), repr(v))), dtype=object)
            numbers = list(dict.fromkeys(v for _, codes in asked for v in codes if not isinstance(v, NumberedCode)))
            at = lookup_values(values[c], numbers)
            pins[c] = {v: values[c][a] if a >= 0 else None for v, a in zip(numbers, at, strict=True)}
        for k, (cols, index) in enumerate(zip(self.keys, self.indexes, strict=True)):
            for i, c in enumerate(cols):
                if c in values:
                    levels = index if len(cols) == 1 else index.levels[i]
                    lookup_values(values[c], [v for v in levels if isinstance(v, NumberedCode)], _where(cols, c))
            if ("hits", k) in held:
                _refuse_shared(cols, index, _whole_hits(cols, index, held[("hits", k)], pins))
        self.pins = pins
        return any(found != pins[c].get(v) for (kind, c), pairs in held.items() if kind == "found" and c in pins
                   for v, found in pairs)


def union_forms(*parts: dict[Any, set[Any]]) -> dict[Any, set[Any]]:
    """The union, key by key, of what partitions' :meth:`_Codes.codes` report in ``held``."""
    out: dict[Any, set[Any]] = {}
    for part in parts:
        for c, values in part.items():
            out.setdefault(c, set()).update(values)
    return out


def _where(cols: tuple[str, ...], column: str) -> str:
    """The head of a message on the column ``column`` of the margin on ``cols``."""
    return f"Margin on {cols!r}, column {column!r}"


def _category_index(cats: list[tuple], width: int) -> pd.Index:
    """The categories ``cats`` (tuples of ``width`` values) of a margin as an index; of objects where a value is a
    :class:`~microplex.calibration.filters.NumberedCode` (a str dtype would keep its text only, and lose the check
    of its number, :func:`~microplex.calibration.design.lookup_values`)."""
    if not any(isinstance(v, NumberedCode) for c in cats for v in c):
        return pd.MultiIndex.from_tuples(cats) if width > 1 else pd.Index([c[0] for c in cats])
    columns = [pd.Index([c[i] for c in cats], dtype=object) for i in range(width)]
    return pd.MultiIndex.from_arrays(columns) if width > 1 else columns[0]


def _positions(cols: tuple[str, ...], index: pd.Index, columns: dict[str, tuple[np.ndarray, pd.Index]],
               pins: dict[str, dict[Any, Any]] | None = None, held: dict[tuple[Any, Any], set[Any]] | None = None,
               hits: set[tuple[int, int, tuple[str, Any]]] | None = None) -> np.ndarray:
    """The category of ``index`` (a margin on ``cols``) of every record, ``-1`` when in none. A category is matched
    to a column's values as a target's filter value is by :class:`~microplex.calibration.Calibrator` (the design's
    ``lookup_values``: ``"1"`` finds 1 in an integer column, and 2, as a targets CSV reads ``g == 2``, finds ``"2"`` in a
    text column; a boolean is no number); a number asked of a text column finds the value ``pins`` holds for it (that
    of the whole dataset, :meth:`_Codes.settle`), else one of the column's values here, reported in ``held``
    (:meth:`_Codes.codes`). Two categories that name the same records are refused (:func:`_refuse_shared`), except
    with ``hits`` (a partition of a dataset, before :meth:`_Codes.settle`), which receives ``(i, j, value)``: the
    ``j``-th value of the ``i``-th column's categories found ``value`` (:func:`_tagged`) here."""
    levels = [index] if len(cols) == 1 else [index.levels[i] for i in range(len(cols))]
    found = []  # per column: each category's value's position among the column's values
    for i, c in enumerate(cols):
        values, uniques = list(levels[i]), columns[c][1]
        at = lookup_values(uniques, values, _where(cols, c))
        if not pd.api.types.is_numeric_dtype(uniques.dtype) and pins is not None and c in pins:
            numbers = [k for k, v in enumerate(values) if is_integral_number(v)]
            pinned = [pins[c].get(values[k]) for k in numbers]
            if numbers:  # one lookup of every pinned value
                hit = uniques.get_indexer(pd.Index(pinned, dtype=object))
                at[numbers] = np.where([p is None for p in pinned], -1, hit)
        if hits is not None:
            j = np.flatnonzero(at >= 0)
            got = [to_python(u) for u in uniques.take(at[j])]
            hits.update((i, k, _tagged(u)) for k, u in zip(j.tolist(), got, strict=True))
            if held is not None and not pd.api.types.is_numeric_dtype(uniques.dtype):
                held.setdefault(("found", c), set()).update(
                    (values[k], u) for k, u in zip(j.tolist(), got, strict=True) if is_integral_number(values[k]))
        found.append(at if len(cols) == 1 else at[index.codes[i]])
    ok = np.logical_and.reduce([f >= 0 for f in found])
    if not ok.any():
        return np.full(len(columns[cols[0]][0]), -1, dtype=np.int64)
    if hits is None:
        _refuse_shared(cols, index, found)
    else:  # refused on the whole dataset (settle) if these name the same records there; else coded again
        ok[np.flatnonzero(ok)[pd.MultiIndex.from_arrays([f[ok] for f in found]).duplicated()]] = False
    keys = pd.MultiIndex.from_arrays([f[ok] for f in found])
    pos = keys.get_indexer(pd.MultiIndex.from_arrays([columns[c][0] for c in cols]))
    return np.where(pos >= 0, np.flatnonzero(ok)[np.maximum(pos, 0)], -1)


def _tagged(value: Any) -> tuple[str, Any]:
    """A value found in a column with its type's name: the same value of every partition (``1`` and ``True``, equal
    in Python, are two values)."""
    return type(value).__name__, value


def _whole_hits(cols: tuple[str, ...], index: pd.Index, hits: set[tuple[int, int, tuple[str, Any]]],
                pins: dict[str, dict[Any, Any]]) -> list[np.ndarray]:
    """Per column of the margin ``index`` on ``cols``, what each category finds in the whole dataset (an integer
    per value found, ``-1``: none) from what it found in the partitions (``hits``, :func:`_positions`); a number
    asked of a text column finds the value it is pinned to (:meth:`_Codes.settle`)."""
    found: dict[tuple[int, int], tuple[str, Any]] = {(i, j): value for i, j, value in hits}
    ids: dict[tuple[str, Any], int] = {}
    out = []
    for i, c in enumerate(cols):
        levels = index if len(cols) == 1 else index.levels[i]
        at = np.full(len(levels), -1, dtype=np.int64)
        for j, v in enumerate(levels):
            if c in pins and is_integral_number(v):
                value = None if pins[c].get(v) is None else _tagged(to_python(pins[c][v]))
            else:
                value = found.get((i, j))
            if value is not None:
                at[j] = ids.setdefault(value, len(ids))
        out.append(at if len(cols) == 1 else at[index.codes[i]])
    return out


def _refuse_shared(cols: tuple[str, ...], index: pd.Index, found: list[np.ndarray]) -> None:
    """Refuses two categories of the margin ``index`` on ``cols`` that name the same records: ``found`` holds, per
    column, the value each category finds there (-1: none), and two categories found in every column name the
    same records where they find the same values."""
    ok = np.logical_and.reduce([f >= 0 for f in found])
    keys = pd.MultiIndex.from_arrays([f[ok] for f in found])
    if keys.has_duplicates:
        first, again = np.flatnonzero(ok)[np.flatnonzero(keys.duplicated(keep=False))[:2]]
        key = cols[0] if len(cols) == 1 else cols
        raise DataValidationError(
            f"Margin {key!r} lists {index[first]!r} and {index[again]!r}, which name the same records: a category "
            "is matched to the column's values as a target's filter value is (a number finds its text, and the "
            "text of a number finds it). List each category once."
        )


class _Margins:
    """Margins ``{col: {cat: total}}`` or ``{(c1, c2): {(a, b): total}}`` as numbered targets."""

    def __init__(self, margins: Mapping) -> None:
        if not isinstance(margins, Mapping) or not margins:
            raise DataValidationError(f"'margins' must be a non-empty dict of column -> {{category: total}}. Got {margins!r}.")
        self.keys: list[tuple[str, ...]] = []
        self.indexes: list[pd.Index] = []
        self.offsets: list[int] = []
        totals, labels = [], []
        for key, values in margins.items():
            cols = (key,) if isinstance(key, str) else tuple(key) if isinstance(key, tuple) else None
            if not cols or not all(isinstance(c, str) and c for c in cols) or len(set(cols)) != len(cols):
                raise DataValidationError(
                    f"Margin {key!r} must be named by a column (str) or a tuple of distinct columns."
                )
            values = margin_by_name(values, key, cols)
            items = list(values.items()) if isinstance(values, Mapping | pd.Series) else None
            if not items:
                raise DataValidationError(f"Margin {key!r} must map categories to totals. Got {str(values)[:80]}.")
            cats = [c if len(cols) > 1 else (c,) for c, _ in items]
            if any(not isinstance(c, tuple) or len(c) != len(cols) for c in cats):
                raise DataValidationError(f"Margin {cols}: every category must be a tuple of {len(cols)} values.")
            if len(set(cats)) != len(cats) or any(pd.isna(v) for c in cats for v in c):
                raise DataValidationError(f"Margin {key!r} lists a category twice or a missing category.")
            ranges = [v for c in cats for v in c if isinstance(v, pd.Interval | set | frozenset)]
            if ranges:
                raise DataValidationError(
                    f"Margin {key!r} lists the category {ranges[0]!r}: out-of-core calibration matches categories "
                    "by equality (a range or a set of values selects no record); give each record its band in a "
                    "column (e.g. pd.cut when the dataset is written) and a margin on that column."
                )
            raw = [v for _, v in items]
            if any(isinstance(v, bool | np.bool_) or not isinstance(v, int | float | np.integer | np.floating) for v in raw):
                raise DataValidationError(f"Margin {key!r} totals must be numbers. Got {str(raw)[:80]}.")
            vals = np.array(raw, dtype=float)
            if not np.isfinite(vals).all() or (vals < 0).any():
                raise DataValidationError(f"Margin {key!r} totals must be finite and >= 0. Got {vals.tolist()}.")
            self.offsets.append(sum(len(i) for i in self.indexes))
            self.keys.append(cols)
            self.indexes.append(_category_index(cats, len(cols)))
            totals.append(vals)
            labels += [(cols if len(cols) > 1 else cols[0], c if len(cols) > 1 else c[0]) for c in cats]
        self.totals = np.concatenate(totals)
        self.labels = labels
        self.targets = Targets(
            Target(float(v), filters=dict(zip(cols, c if len(cols) > 1 else (c,))))
            for (cols, c), v in zip(((k if isinstance(k, tuple) else (k,), c) for k, c in labels), self.totals)
        )
        self.coder = _Codes(self.keys, self.indexes, self.offsets)
        self.columns = self.coder.columns

    @property
    def m(self) -> int:
        return len(self.totals)

    def codes(self, frame: pd.DataFrame) -> np.ndarray:
        """Target index of every record in every margin, ``(n, K)``; ``-1`` when in no category."""
        return self.coder.codes(frame)


def check_text_partition_keys(path: Any, coders: list[_Codes | None]) -> None:
    """Refuses a boolean margin category on a partition column of the dataset ``path`` read as the text of its
    folder names (no schema file; :func:`microplex.scale._layout.hive_partitioning`): it would select no record.

    Checked only when a margin lists a boolean (the folder names are listed then)."""
    asked: dict[str, list[Any]] = {}
    for coder in coders:
        for cols, index in zip(coder.keys, coder.indexes, strict=True) if coder is not None else ():
            for i, c in enumerate(cols):
                values = index if len(cols) == 1 else index.levels[i]
                asked.setdefault(c, []).extend(v for v in values if isinstance(v, bool | np.bool_))
    asked = {c: v for c, v in asked.items() if v}
    if not asked:
        return
    import pyarrow.dataset as pads

    from ._layout import open_dataset, text_partition_keys

    bad = [c for c in asked if c in text_partition_keys(path)]
    if bad:
        c = bad[0]
        frags = open_dataset(path).get_fragments()
        held = sorted({str(pads.get_partition_keys(f.partition_expression).get(c)) for f in frags})
        raise DataValidationError(
            f"Margin categories {asked[c][:5]!r} of the partition column {c!r} are booleans, but the dataset "
            f"{str(path)!r} has no microplex schema file: a partition column is read as the text of its folder names "
            f"({', '.join(map(repr, held[:10]))}), as pandas reads it. Give the categories as that text."
        )


def _as_margins(margins: Any, entity: str = "person") -> Mapping:
    """``margins`` as a dict; :class:`Targets` of counts of ``entity`` (``"person"``, or ``"household"`` for the
    household margins of linked datasets) on equality filters become margins."""
    if not isinstance(margins, Targets):
        return margins
    out: dict[Any, dict[Any, float]] = {}
    first: dict[tuple[Any, Any], Target] = {}  # the target that named each cell first
    for t in margins:
        cols = tuple(sorted(t.filters))
        if t.aggregate != "count" or t.entity != entity or not cols or any(
            isinstance(c, (pd.Interval, frozenset)) for c in t.filters.values()
        ):
            raise DataValidationError(
                f"Target {t.name!r}: out-of-core calibration takes {entity} count targets on equality filters "
                f"(margins); got aggregate={t.aggregate!r}, entity={t.entity!r}, filter {t.filters!r}."
            )
        key = cols[0] if len(cols) == 1 else cols
        cat = t.filters[cols[0]] if len(cols) == 1 else tuple(t.filters[c] for c in cols)
        seen = first.setdefault((key, cat), t)  # 1 and 1.0 are one cell (and Python has True == 1)
        if seen is not t and (seen.value != t.value or _flags(seen.filters) != _flags(t.filters)):
            what = (f"with different values ({seen.value!r} and {t.value!r})" if _flags(seen.filters) == _flags(t.filters)
                    else "as a boolean and as a number (a boolean is no number)")
            raise DataValidationError(
                f"Targets {seen.name!r} and {t.name!r} name one cell of margin {key!r} {what}; a margin holds one "
                "total per category. Give each category once."
            )
        out.setdefault(key, {})[cat] = t.value
    return out


def _flags(filters: Mapping) -> tuple[bool, ...]:
    """Which filter values are booleans."""
    return tuple(isinstance(filters[c], bool | np.bool_) for c in sorted(filters))


def _frame_part(
    frame: pd.DataFrame, margins: _Margins | _Codes, weight_col: str | None, initial: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Margin codes and initial weights (the column ``weight_col``, else ``initial`` for every record)."""
    return margins.codes(frame), initial_weights(frame, weight_col, initial)


def held_part(
    frame: pd.DataFrame, coder: _Codes, weight_col: str | None, initial: float = 1.0
) -> tuple[tuple[np.ndarray, np.ndarray], dict[tuple[str, str], set[Any]]]:
    """:func:`_frame_part` of one partition in the first pass over a dataset, with the values it holds that the
    numbers and numbered categories may find, and what they found there (:meth:`_Codes.codes`' ``held``)."""
    held: dict[tuple[str, str], set[Any]] = {}
    codes = coder.codes(frame, held)
    return (codes, initial_weights(frame, weight_col, initial)), held


def initial_weights(frame: pd.DataFrame, weight_col: str | None, initial: float = 1.0) -> np.ndarray:
    """The positive initial weights of ``frame``: its column ``weight_col``, else ``initial`` for every row."""
    if weight_col is None:
        return np.full(len(frame), float(initial))
    if weight_col not in frame.columns:
        raise DataValidationError(f"Weight column {weight_col!r} is not in the data; it has {list(frame.columns)}.")
    col = frame[weight_col]
    check_weight_dtype(col, f"Weight column {weight_col!r}")
    d = col.to_numpy(float, na_value=np.nan)
    if not np.isfinite(d).all() or (d <= 0).any():
        raise DataValidationError(f"Weight column {weight_col!r} must be finite and > 0.")
    return d
