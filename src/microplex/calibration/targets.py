"""Calibration targets: a Target is an aggregate of records matching a filter; Targets is a list of them.

Filters map a record column to a condition: a scalar (equality), a list/set (membership) or a
:class:`pandas.Interval` (range, e.g. ``pd.Interval(18, 65, closed="left")`` for ``age in [18, 65)``).
The same conditions can be written as strings: ``"state == 'CA' & age in [18, 65) & educ in {12, 13}"``.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import lzma
import math
import numbers
import re
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from microplex._errors import DataValidationError
from microplex._files import (csv_text, empty_unnamed, none_candidates, other_separator, padded_as_written,
                              restore_none, zero_padded)
from microplex._params import duplicated, to_python

from .filters import _combine, _condition, _got, _is_missing, _normalize_filters, format_filter, parse_filter

__all__ = ["Target", "Targets", "parse_filter", "format_filter"]

AGGREGATES = ("count", "sum", "mean")
ENTITIES = ("person", "household")
_RESERVED = ("name", "value", "aggregate", "variable", "tolerance", "importance", "entity", "filter")

@dataclass(frozen=True)
class Target:
    """Creates one calibration target: ``aggregate(variable)`` over records matching ``filters``.

    Parameters
    ----------
    value : float
        The official total (or mean for ``aggregate="mean"``).
    aggregate : {"count", "sum", "mean"}, default="count"
    variable : str, optional
        Record column summed or averaged (required for ``sum`` and ``mean``).
    filters : dict or str, optional
        Column -> scalar / set / :class:`pandas.Interval`, or a string for :func:`parse_filter`.
    tolerance : float, optional
        Relative tolerance: used by the soft mode and the geography consistency check.
    importance : float, default=1.0
        Soft-mode weight of a miss on this target.
    entity : {"person", "household"}, default="person"
        What is counted: records, or households (first record of each household).
    name : str, optional
        Defaults to a readable form such as ``count[state == 'CA']``.
    """

    value: float
    aggregate: str = "count"
    variable: str | None = None
    filters: dict[str, Any] = field(default_factory=dict)
    tolerance: float | None = None
    importance: float = 1.0
    entity: str = "person"
    name: str | None = None

    def __post_init__(self) -> None:
        for key in ("aggregate", "entity"):
            if not isinstance(getattr(self, key), str):
                raise DataValidationError(
                    f"Target: {key} must be a str. Got {_got(getattr(self, key))} instead."
                )
        if self.variable is not None and (not isinstance(self.variable, str) or not self.variable):
            raise DataValidationError(f"Target: variable must be a column name (str) or None. Got {_got(self.variable)} instead.")
        if self.name is not None and (not isinstance(self.name, str) or not self.name):
            raise DataValidationError(f"Target: name must be a non-empty str or None. Got {_got(self.name)} instead.")
        where = "Target" if self.name is None else f"Target {self.name!r}"
        object.__setattr__(self, "filters", _normalize_filters(self.filters, where))
        if self.name is None:
            what = "count" if self.aggregate == "count" else f"{self.aggregate}({self.variable})"
            if self.entity == "household":
                what = f"household_{what}"
            object.__setattr__(self, "name", f"{what}[{format_filter(self.filters)}]")
        object.__setattr__(self, "value", self._number("value", self.value))
        if self.tolerance is not None:
            object.__setattr__(self, "tolerance", self._number("tolerance", self.tolerance))
        object.__setattr__(self, "importance", self._number("importance", self.importance))

    def _number(self, field_name: str, v: Any) -> float:
        """A numeric field as float (numeric strings accepted: YAML reads ``1e6`` as a string; a
        :class:`~decimal.Decimal`, as a Parquet decimal128 column holds it, as its nearest float)."""
        try:
            if isinstance(v, str):
                return float(v.strip().replace("_", ""))
            if isinstance(v, (numbers.Real, np.number, Decimal)) and not isinstance(v, (bool, np.bool_)):
                return float(v)
        except ValueError:
            pass
        except OverflowError:  # an int beyond float64 (10**400 in a targets file)
            raise DataValidationError(f"Target {self.name!r}: {field_name} is beyond the float64 range "
                                      f"(about 1.8e308). Got {_got(v)} instead.") from None
        raise DataValidationError(f"Target {self.name!r}: {field_name} must be a number. Got {_got(v)} instead.")

    def validate(self) -> None:
        """Raises DataValidationError naming this target if a field is invalid."""
        if self.aggregate not in AGGREGATES:
            raise DataValidationError(
                f"Target {self.name!r}: aggregate must be one of {AGGREGATES}. Got {self.aggregate!r} instead."
            )
        if self.aggregate != "count" and not self.variable:
            raise DataValidationError(f"Target {self.name!r}: aggregate {self.aggregate!r} needs a variable.")
        if self.aggregate == "count" and self.variable is not None:
            raise DataValidationError(
                f"Target {self.name!r}: a count takes no variable (it counts records). Got variable "
                f"{self.variable!r}; for a total of it, use aggregate='sum'."
            )
        if self.entity not in ENTITIES:
            raise DataValidationError(
                f"Target {self.name!r}: entity must be one of {ENTITIES}. Got {self.entity!r} instead."
            )
        if not math.isfinite(self.value):
            raise DataValidationError(f"Target {self.name!r}: value must be finite. Got {self.value!r} instead.")
        if self.aggregate == "count" and self.value < 0:
            raise DataValidationError(f"Target {self.name!r}: a count must be >= 0. Got {self.value!r} instead.")
        if self.tolerance is not None and not (0 <= self.tolerance < math.inf):
            raise DataValidationError(
                f"Target {self.name!r}: tolerance must be a finite number >= 0. Got {self.tolerance!r} instead."
            )
        if not (0 < self.importance < math.inf):
            raise DataValidationError(
                f"Target {self.name!r}: importance must be a finite number > 0. Got {self.importance!r} instead."
            )


class Targets(Sequence[Target]):
    """Creates an ordered collection of calibration targets.

    Parameters
    ----------
    targets : iterable of Target

    Examples
    --------
    >>> t = Targets.from_margins({"sex": {"f": 60, "m": 40}, ("region", "sex"): {("N", "f"): 30}})
    >>> len(t), t[0].name
    (3, "count[sex == 'f']")
    >>> t.to_frame().loc[2, "name"]
    "count[region == 'N' & sex == 'f']"
    """

    def __init__(self, targets: Iterable[Target] = ()) -> None:
        if isinstance(targets, (str, bytes, Mapping)) or not isinstance(targets, Iterable):
            raise DataValidationError(f"Targets holds Target objects. Got {type(targets).__name__} instead.")
        self._targets: list[Target] = list(targets)
        for t in self._targets:
            if not isinstance(t, Target):
                raise DataValidationError(f"Targets holds Target objects. Got {type(t).__name__} instead.")
            t.validate()
        _check_one_definition_per_name(self._targets)

    def __len__(self) -> int:
        return len(self._targets)

    def __iter__(self) -> Iterator[Target]:
        return iter(self._targets)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return Targets(self._targets[i])
        return self._targets[i]

    def __add__(self, other: Targets | Iterable[Target]) -> Targets:
        return Targets([*self._targets, *other])

    def __repr__(self) -> str:
        return f"Targets({len(self)} targets)"

    @property
    def names(self) -> list[str]:
        """Target names, in order."""
        return [t.name for t in self._targets]  # type: ignore[misc]

    def with_defaults(self, **kwargs: Any) -> Targets:
        """Returns a copy where ``tolerance``/``importance``/``entity`` set on every target."""
        return Targets(replace(t, **kwargs, name=t.name) for t in self._targets)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_margins(
        cls,
        margins: Mapping[str | tuple[str, ...], Mapping[Any, float] | pd.Series],
        *,
        aggregate: str = "count",
        variable: str | None = None,
        entity: str = "person",
        tolerance: float | None = None,
        importance: float = 1.0,
        filters: Mapping[str, Any] | str | None = None,
    ) -> Targets:
        """Creates one target per category of each column (or crossed columns) in ``margins``.

        Parameters
        ----------
        margins : dict
            ``column -> {category: value}`` or ``(col1, col2) -> {(c1, c2): value}``; values may also
            be a :class:`pandas.Series` indexed by the categories (a MultiIndex for crossed columns).
            A :class:`pandas.Interval` category is a range, a set/list category a membership.
        aggregate, variable, entity, tolerance, importance
            Applied to every target created.
        filters : dict or str, optional
            Extra filter added to every target (e.g. ``"age >= 18"``).
        """
        if not isinstance(margins, Mapping):
            raise DataValidationError(
                f"margins must be a dict of column -> {{category: value}}. Got {type(margins).__name__} instead."
            )
        extra = _normalize_filters(filters, "Targets.from_margins")
        out: list[Target] = []
        for key, values in margins.items():
            cols = (key,) if isinstance(key, str) else tuple(key) if isinstance(key, tuple) else None
            if not cols or not all(isinstance(c, str) and c for c in cols):
                raise DataValidationError(
                    f"Margin keys must be a column name or a tuple of column names. Got {_got(key)} instead."
                )
            if isinstance(values, pd.Series) and isinstance(values.index, pd.MultiIndex) \
                    and values.index.nlevels != len(cols):  # its tuples would read as sets of one column's values
                raise DataValidationError(
                    f"Margin {key!r} has {len(cols)} column(s) but its Series has a MultiIndex of "
                    f"{values.index.nlevels} levels {list(values.index.names)}; cross the columns in the key "
                    f"(e.g. {tuple(n if isinstance(n, str) else f'col{i}' for i, n in enumerate(values.index.names))!r})."
                )
            values = margin_by_name(values, key, cols)
            if isinstance(values, (pd.Series, Mapping)):
                items = list(values.items())
            elif isinstance(values, (list, tuple)) and all(isinstance(p, (list, tuple)) and len(p) == 2 for p in values):
                items = list(values)
            else:
                raise DataValidationError(
                    f"Margin {key!r} must map categories to values (a dict or Series). Got {_got(values)} instead."
                )
            seen: dict[str, tuple[Any, Any, tuple]] = {}
            for cat, val in items:
                cats = cat if len(cols) > 1 else (cat,)
                if not isinstance(cats, tuple) or len(cats) != len(cols):
                    raise DataValidationError(
                        f"Margin {cols}: category {cat!r} must be a tuple of {len(cols)} values."
                    )
                flt = dict(extra)
                where = f"Margin {key!r}, category {cat!r}"
                own = tuple(_condition(c, v, where) for c, v in zip(cols, cats))
                for c, v in zip(cols, own):
                    _combine(flt, c, v, where)
                target = Target(val, aggregate, variable, flt, tolerance, importance, entity)
                if target.name in seen and seen[target.name][2] != own:  # two categories, one cell under the filter
                    raise DataValidationError(
                        f"Margin {key!r}: the categories {seen[target.name][0]!r} and {cat!r} select the same records "
                        f"({format_filter(target.filters)}) under the margin's filter {format_filter(extra)!r}; give "
                        "one total per cell, or leave out the categories the filter excludes."
                    )
                if target.name in seen:  # a Series or list that repeats a category (a join that doubled a row)
                    raise DataValidationError(
                        f"Margin {key!r} lists the category {cat!r} twice (values {seen[target.name][1]!r} and {val!r}); "
                        "a margin holds one total per category. Give each category once."
                    )
                seen[target.name] = (cat, val, own)
                out.append(target)
        return cls(out)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, *, source: str | None = None) -> Targets:
        """Creates targets from a long table, one row per target.

        Columns ``value`` (required), ``aggregate``, ``variable``, ``tolerance``, ``importance``,
        ``entity``, ``name`` and ``filter`` (a :func:`parse_filter` string) are reserved; every other
        column is an equality filter, with missing cells meaning "no condition on this column". A
        ``filter`` and an equality column on the same column combine (both must hold). Names given in a
        ``name`` column must be distinct. Every error names the row (and ``source``, a file name).
        """
        src = f"Targets {source}" if source else "Targets table"
        if not isinstance(frame, pd.DataFrame):
            raise DataValidationError(f"{src}: expected a DataFrame. Got {type(frame).__name__} instead.")
        cols = [str(c) for c in frame.columns]
        if duplicated(cols):
            raise DataValidationError(f"{src} has duplicated columns {duplicated(cols)}.")
        if "value" not in cols:
            raise DataValidationError(
                f"{src}: Targets.from_frame needs a 'value' column. Got columns {cols[:20]} instead."
            )
        frame = frame.set_axis(cols, axis=1)
        filter_cols = [c for c in cols if c not in _RESERVED]
        out = []
        for i, rec in enumerate(frame.to_dict("records")):
            def opt(key: str, default: Any = None) -> Any:
                v = rec.get(key, default)
                return default if _is_missing(v) else v

            try:
                flt: dict[str, Any] | str = {}
                equal = [c for c in filter_cols if not _is_missing(rec[c])]
                if opt("filter") is not None:
                    if not isinstance(rec["filter"], str):
                        raise DataValidationError(f"filter must be a string. Got {_got(rec['filter'])} instead.")
                    # the string alone is parsed once, by the target; with equality columns, combined with them here
                    flt = parse_filter(rec["filter"]) if equal else rec["filter"]
                for c in equal:
                    v = rec[c]
                    if isinstance(v, (float, np.floating)) and float(v).is_integer():
                        v = int(v)
                    _combine(flt, c, _condition(c, v, "equality column"), "row")  # type: ignore[arg-type]
                name = opt("name")
                if name is not None and not isinstance(name, str):
                    name = str(to_python(name))
                out.append(
                    Target(
                        value=opt("value", math.nan),
                        aggregate=opt("aggregate", "count"),
                        variable=opt("variable"),
                        filters=flt,
                        tolerance=opt("tolerance"),
                        importance=opt("importance", 1.0),
                        entity=opt("entity", "person"),
                        name=name,
                    )
                )
                out[-1].validate()
            except DataValidationError as exc:
                raise DataValidationError(f"{src}, row {i + 1}: {exc}") from None
        _check_distinct_names(out, src, explicit=[_opt_name(r) for r in frame.to_dict("records")] if "name" in cols else None)
        return cls(out)

    @classmethod
    def from_csv(cls, path: str | Path, **read_kwargs: Any) -> Targets:
        """Creates targets from a CSV file in the :meth:`from_frame` layout.

        ``read_kwargs`` go to :func:`pandas.read_csv` (``sep``, ``skiprows``, ``index_col``, ``engine``, ...);
        a file that pandas cannot read with them raises :class:`DataValidationError` naming the file.
        """
        p = _check_file(path)
        for option in ("chunksize", "iterator"):
            if read_kwargs.get(option) not in (None, False):
                raise DataValidationError(
                    f"Targets file {str(p)!r}: read option {option}={read_kwargs[option]!r} reads the table in parts; "
                    "a targets file is read whole (leave it out).")
        if read_kwargs.get("engine") != "pyarrow":  # the pyarrow engine takes no index_col=False (and makes no index)
            read_kwargs.setdefault("index_col", False)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", pd.errors.ParserWarning)
                frame = pd.read_csv(p, **read_kwargs)
                first = _first_line(p, read_kwargs)
            names = _header_names(first, frame, read_kwargs.get("index_col", False))
        except pd.errors.ParserWarning as exc:
            _check_separator(p, _first_line_or_none(p, read_kwargs), read_kwargs)  # decimal commas: more fields
            raise DataValidationError(
                f"Targets file {str(p)!r}: a row has more fields than the header (an unquoted comma in a filter?): {exc}"
            ) from None
        except pd.errors.EmptyDataError:
            raise DataValidationError(f"Targets file {str(p)!r} is empty; expected a header with a 'value' column and one row per target.") from None
        except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
            raise DataValidationError(f"Targets file {str(p)!r} is not a readable CSV table: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - pandas and pyarrow raise many types on options they do not take
            raise DataValidationError(f"Targets file {str(p)!r} is not readable with the options {read_kwargs}: "
                                      f"{type(exc).__name__}: {exc}") from None
        empty = empty_unnamed(names, frame)  # a spreadsheet's empty columns (``educ,value,,``): nothing to read
        unnamed = [i + 1 for i, n in enumerate(names) if not n.strip()
                   and (len(names) != frame.shape[1] or frame.columns[i] not in empty)]
        if empty:
            keep = [c not in empty for c in frame.columns]
            names = [n for n, k in zip(names, keep) if k]
            frame = frame.loc[:, keep]
        _refuse_duplicated_columns(p, names)
        _check_separator(p, names, read_kwargs)
        if unnamed:  # pandas names it "Unnamed: 0", an equality column that no record has
            raise DataValidationError(
                f"Targets file {str(p)!r}: column {unnamed[0]} has no name but holds values; every column is a "
                "reserved field or an equality filter named as a column of the records. (R's write.csv writes its row "
                "names there: write the table with row.names = FALSE.)"
            )
        if first is not None:
            _check_row_lengths(p, len(first), read_kwargs)
        try:
            frame = _equality_as_written(p, frame, read_kwargs)
        except DataValidationError:
            raise
        except Exception as exc:  # noqa: BLE001 - the re-read of the cells' text with the caller's options
            raise DataValidationError(f"Targets file {str(p)!r} is not readable as text with the options "
                                      f"{read_kwargs}: {type(exc).__name__}: {exc}") from None
        return cls._from_file_frame(frame, p)

    @classmethod
    def from_parquet(cls, path: str | Path) -> Targets:
        """Creates targets from a Parquet file in the :meth:`from_frame` layout."""
        import pyarrow.parquet as pq

        p = _check_file(path)
        try:
            names = pq.read_schema(p).names  # two columns of one name: pyarrow's to_pandas names no duplicate
        except Exception as exc:  # noqa: BLE001 - pyarrow raises many types on a corrupt file
            raise DataValidationError(f"Targets file {str(p)!r} is not a readable Parquet table: {exc}") from None
        _refuse_duplicated_columns(p, names)
        try:
            frame = _integers_as_written(p, pd.read_parquet(p))
        except Exception as exc:  # noqa: BLE001 - pyarrow raises many types on a corrupt file
            raise DataValidationError(f"Targets file {str(p)!r} is not a readable Parquet table: {exc}") from None
        return cls._from_file_frame(frame, p)

    @classmethod
    def _from_file_frame(cls, frame: pd.DataFrame, p: Path) -> Targets:
        if len(frame) == 0:
            raise DataValidationError(f"Targets file {str(p)!r} holds no targets (no rows).")
        return cls.from_frame(frame, source=f"file {str(p)!r}")

    @classmethod
    def from_yaml(cls, source: str | Path) -> Targets:
        """Creates targets from YAML (a path or the YAML text).

        The document has a ``targets`` list (mappings with the :class:`Target` fields, ``filter`` as a
        string or mapping) and/or a ``margins`` list (mappings with ``by`` (column or list of columns),
        ``values`` (mapping, or list of rows ``[cat1, ..., value]``) and the shared fields). ``filter`` and
        ``filters`` are two names of one field: an entry may give one of them, not both. It is read
        with ``microplex._files.load_yaml`` (a safe loader: no Python tags, no key given twice); anything
        else raises :class:`DataValidationError`.
        """
        from ._targets_yaml import targets_from_yaml

        return targets_from_yaml(cls, source)

    def to_frame(self) -> pd.DataFrame:
        """Returns one row per target (the :meth:`from_frame` layout, filters as strings that :meth:`from_frame`
        reads back as the same conditions: :func:`format_filter` with ``exact``, so that a code kept as its text and
        its number, ``county == '015' & county in {15}``, is written with both clauses, not as ``county == '015'``
        alone, which selects the ``"015"`` records where the column holds ``"15"`` too)."""
        return pd.DataFrame(
            {
                "name": [t.name for t in self],
                "aggregate": [t.aggregate for t in self],
                "variable": [t.variable for t in self],
                "entity": [t.entity for t in self],
                "filter": [format_filter(t.filters, exact=True) for t in self],
                "value": [t.value for t in self],
                "tolerance": [t.tolerance for t in self],
                "importance": [t.importance for t in self],
            }
        )


#: Largest targets file read (bytes): a targets table is small; a huge file is refused before reading.
MAX_TARGETS_FILE_BYTES = 256 * 1024 * 1024


def margin_by_name(values: Any, key: Any, cols: tuple[str, ...]) -> Any:
    """A crossed margin's Series with its MultiIndex levels in the key's order, read by their names.

    ``(a, b) -> s`` for ``s = df.groupby(["b", "a"])[...].sum()`` has levels named as the key's columns in another
    order: its tuples are ``(b, a)`` pairs, and read by position they calibrated the transposed table without a
    word (44% off on a 3 x 3 table of integer codes). Levels named as the key's columns are put in the key's order;
    a level named as a key column at another position while the others are not (a partial naming) is refused; a
    Series whose levels are unnamed or named otherwise (an official table's own names) is read by position, as
    documented. Anything else is returned as it is.
    """
    if not isinstance(values, pd.Series) or not isinstance(values.index, pd.MultiIndex) or len(cols) < 2:
        return values
    names = list(values.index.names)
    if len(names) != len(cols) or names == list(cols) or len(set(cols)) != len(cols):
        return values
    if sorted(map(str, names)) == sorted(cols) and all(isinstance(n, str) for n in names):
        return values.reorder_levels(list(cols))
    misplaced = [n for i, n in enumerate(names) if n in cols and cols[i] != n]
    if misplaced:
        raise DataValidationError(
            f"Margin {key!r}: its Series' index levels are named {names}, so level(s) {misplaced} would be read as "
            f"other columns of the key {list(cols)}. Name the levels as the key's columns (in any order) or order "
            "them as the key."
        )
    return values


def _check_file(path: str | Path) -> Path:
    p = Path(path)
    if not p.is_file():
        raise DataValidationError(f"Targets file {str(p)!r} does not exist or is not a file.")
    size = p.stat().st_size
    if size > MAX_TARGETS_FILE_BYTES:
        raise DataValidationError(
            f"Targets file {str(p)!r} has {size:,} bytes, more than the {MAX_TARGETS_FILE_BYTES:,} a targets file may have."
        )
    return p


#: ``read_csv`` options that leave the header on the file's first line, split as a plain read splits it (the other
#: options, such as ``skiprows``, ``header``, ``comment``, ``names`` or ``usecols``, may take the header elsewhere).
_FIRST_LINE_OPTIONS = frozenset({
    "sep", "delimiter", "encoding", "engine", "index_col", "decimal", "thousands", "na_values", "keep_default_na",
    "na_filter", "dtype", "converters", "true_values", "false_values", "float_precision", "low_memory",
    "encoding_errors", "dtype_backend", "skipfooter", "parse_dates", "date_format", "dayfirst", "cache_dates"})


def _first_line(p: Path, read_kwargs: dict[str, Any]) -> list[str] | None:
    """The fields of the first line of the CSV file ``p`` as written (``""`` for a field without a name), when
    ``read_kwargs`` keep the header there (:data:`_FIRST_LINE_OPTIONS`); else ``None``."""
    if not set(read_kwargs) <= _FIRST_LINE_OPTIONS:
        return None
    header = pd.read_csv(p, header=None, nrows=1, dtype=str, keep_default_na=False,
                         **{k: v for k, v in read_kwargs.items() if k in ("sep", "delimiter", "encoding")})
    return [str(v) for v in header.iloc[0].tolist()] if len(header) else []


def _first_line_or_none(p: Path, read_kwargs: dict[str, Any]) -> list[str]:
    """:func:`_first_line`, or ``[]`` when it cannot be read (a file already refused for another reason)."""
    try:
        return _first_line(p, read_kwargs) or []
    except Exception:  # noqa: BLE001 - only to choose the message
        return []


def _header_names(first: list[str] | None, frame: pd.DataFrame, index_col: Any) -> list[str]:
    """The names of ``frame``'s columns as the header writes them: ``first`` (:func:`_first_line`) without the
    columns that ``index_col`` made the index, so that a field without a name reads ``""`` and two fields named
    alike stay alike (pandas writes ``Unnamed: 2`` and ``sex.1``); the names pandas gave ``frame`` when the header is
    elsewhere (read with ``skiprows``, ``header``, ``comment`` ...), or ``index_col`` is not a column position,
    name or list of them."""
    if first is None:
        return [str(c) for c in frame.columns]
    if index_col is False or index_col is None:
        return first
    cols = list(index_col) if isinstance(index_col, (list, tuple)) else [index_col]
    drop = set()
    for c in cols:
        if isinstance(c, (int, np.integer)) and not isinstance(c, bool) and 0 <= c < len(first):
            drop.add(int(c))
        elif isinstance(c, str) and first.count(c) == 1:
            drop.add(first.index(c))
        else:
            return [str(c) for c in frame.columns]
    return [n for i, n in enumerate(first) if i not in drop]


#: A number written with dots between thousands (``12.345``, ``1.234.567,5``) or a decimal comma (``1,5``).
_EUROPEAN_NUMBER = re.compile(r"^[-+]?(?:[0-9]{1,3}(?:\.[0-9]{3})+(?:,[0-9]+)?|[0-9]+,[0-9]+)$")
#: A number written with a decimal point (``0.25``, ``12.5``) that is no group of thousands.
_DECIMAL_POINT = re.compile(r"^[-+]?[0-9]*\.[0-9]+$")


def _check_separator(p: Path, names: list[str], read_kwargs: dict[str, Any]) -> None:
    """Refuses the CSV file ``p`` whose header ``names`` (split at commas) is one field holding another separator
    (:func:`microplex._files.other_separator`), unless the caller gave a separator; the message says the options
    that read it (:func:`_separator_options`)."""
    sep = other_separator(names) if "sep" not in read_kwargs and "delimiter" not in read_kwargs else None
    if sep is not None:
        raise DataValidationError(
            f"Targets file {str(p)!r} reads as one column {names[0][:60]!r}: it seems separated by {sep!r}, not "
            f"commas. Write it with commas, or read it with Targets.from_csv(path, {_separator_options(p, sep, read_kwargs)}).")


def _separator_options(p: Path, sep: str, read_kwargs: dict[str, Any]) -> str:
    """The ``from_csv`` options that read the CSV file ``p``, separated by ``sep``: ``sep=';', decimal=',',
    thousands='.'`` when its numbers are written as a European spreadsheet writes them (``12.345`` for twelve
    thousand, ``1,5``; no number written with a decimal point such as ``0.25``), else ``sep=';'``: read with
    ``sep`` alone, ``12.345`` was 12.345 persons, a total 1000 times too small."""
    options = f"sep={sep!r}"
    try:
        cells = pd.read_csv(p, sep=sep, header=None, dtype=str, keep_default_na=False, on_bad_lines="skip",
                            **{k: v for k, v in read_kwargs.items() if k in ("encoding", "skiprows", "comment")})
    except Exception:  # noqa: BLE001 - only advice: the plain one
        return options
    text = pd.Series(cells.to_numpy().ravel(), dtype=object).astype(str).str.strip()
    if text.str.match(_EUROPEAN_NUMBER).any() and not (text.str.match(_DECIMAL_POINT)
                                                        & ~text.str.match(_EUROPEAN_NUMBER)).any():
        options += ", decimal=',', thousands='.'"
    return options


def _equality_as_written(p: Path, frame: pd.DataFrame, read_kwargs: dict[str, Any]) -> pd.DataFrame:
    """``frame`` (read from the CSV file ``p``) with its equality columns as the file writes them, from one read of
    their text (:func:`microplex._files.csv_text`):

    - the ``None`` cells of a text column are the category "None", not "no condition" as pandas reads them
      (:func:`microplex._files.keep_none_labels`; not when the caller gives missing-value options);
    - a column that pandas read as numbers while some of its cells are written with leading zeros (``013``, a
      county code) is the file's text: read as 13, it found no record of a text column holding ``"013"``; as text
      it matches ``"013"`` there and ``13`` in a numeric column (:func:`~microplex.calibration.design.lookup_values`),
      as data files are read (:func:`microplex._files.keep_padded_codes`).

    Files read with the caller's ``dtype`` or ``converters`` are left as pandas read them.
    """
    if "dtype" in read_kwargs or "converters" in read_kwargs:
        return frame
    equality = [c for c in frame.columns if str(c) not in _RESERVED]
    none = [] if {"na_values", "keep_default_na", "na_filter"} & set(read_kwargs) else none_candidates(frame, equality)
    numeric = [c for c in equality if c not in none and pd.api.types.is_numeric_dtype(frame[c])
               and not pd.api.types.is_bool_dtype(frame[c])]
    if not none and not numeric:
        return frame
    raw = csv_text(p, None, read_kwargs)
    frame = restore_none(frame, raw, none)
    padded = zero_padded(raw, numeric)
    frame = padded_as_written(frame, raw, padded)
    return _big_codes_as_written(p, frame, raw, [c for c in numeric if c not in padded])


#: Integers from this magnitude on are not all held by float64 (2**53 + 1 reads as 2**53).
_FLOAT_EXACT = 2**53
#: An integer as a file writes it (surrounding spaces aside).
_INTEGER_TEXT = re.compile(r"^\s*[-+]?[0-9]+\s*$")


def _big_codes_as_written(p: Path, frame: pd.DataFrame, raw: pd.DataFrame, columns: list[Any]) -> pd.DataFrame:
    """``frame`` with each float column among ``columns`` that holds a value beyond 2**53 (an id read as float64
    because another row's cell is empty) as the integers its cells write (``raw``,
    :func:`microplex._files.csv_text`): float64 read 1152921504606846977 as 1152921504606846976, another record's
    id. A cell beyond 2**53 written otherwise (``1152921504606846977.0``) that float64 does not hold exactly is
    refused, naming the column."""
    out = {}
    for c in columns:
        values = frame[c]
        if values.dtype.kind != "f" or not (values.abs() >= _FLOAT_EXACT).any():
            continue
        cells = [None if math.isnan(v) else
                 int(t) if _INTEGER_TEXT.match(t) else _exact_float(p, c, t, v)
                 for v, t in zip(values.to_numpy(), raw[c].to_numpy())]
        out[c] = pd.Series(cells, index=frame.index, dtype=object)
    return frame.assign(**out) if out else frame


def _exact_float(p: Path, column: Any, text: str, value: float) -> float:
    """``value``, read by pandas from the cell ``text`` of a CSV file, when float64 holds it as written or it is no
    larger than 2**53; else a :class:`DataValidationError` naming the column."""
    try:
        exact = abs(value) < _FLOAT_EXACT or Decimal(text.strip()) == Decimal(value)
    except ArithmeticError:  # decimal.InvalidOperation: a cell pandas read otherwise (thousands, decimal options)
        exact = False
    if not exact:
        raise DataValidationError(
            f"Targets file {str(p)!r}: equality column {str(column)!r} holds {text.strip()!r}, beyond 2**53 "
            f"({_FLOAT_EXACT:,}), and float64 reads it as {float(value)!r}, another code. Write it as an integer (digits "
            f"only), or read the column as text (dtype={{{str(column)!r}: str}})."
        )
    return value


def _refuse_duplicated_columns(p: Path, names: Sequence[str]) -> None:
    """Raises :class:`DataValidationError` naming the targets file ``p`` and the column names that ``names`` (its
    header, or its Parquet schema's names) holds more than once."""
    dup = duplicated(names)
    if dup:
        raise DataValidationError(f"Targets file {str(p)!r} has duplicated columns {dup}; expected distinct column names.")


def _integers_as_written(p: Path, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (read from the Parquet file ``p``) with each integer column holding a null as its integers (Python
    ints, ``None`` for the nulls): pandas reads such a column as float64, where 2**60 + 1, an id, is 2**60."""
    floats = [c for c in frame.columns if isinstance(c, str) and frame[c].dtype.kind == "f"]
    if not floats:
        return frame
    import pyarrow.parquet as pq
    import pyarrow.types as pat

    schema = pq.read_schema(p)
    ints = [c for c in floats if c in schema.names and pat.is_integer(schema.field(c).type)]
    if not ints:
        return frame
    table = pq.read_table(p, columns=ints)
    return frame.assign(**{c: pd.Series(table.column(c).to_pylist(), index=frame.index, dtype=object) for c in ints})


#: Compressed targets files (by suffix, as pandas infers the compression) whose rows are checked as text.
_OPENERS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
#: Other compressions pandas reads by suffix.
_OTHER_COMPRESSIONS = (".zip", ".zst", ".tar")


def _check_row_lengths(p: Path, width: int, read_kwargs: dict[str, Any]) -> None:
    """Refuses a targets CSV row with fewer fields than the header: pandas reads the missing fields as empty,
    and an empty equality column means "no condition", so a truncated row (``4,m`` under ``value,sex,age``)
    became a target over more records than written. Checked for the plain reading (a one-character separator,
    no other reader options); blank lines are skipped, as pandas skips them."""
    sep = read_kwargs.get("sep", read_kwargs.get("delimiter", ","))
    if not isinstance(sep, str) or len(sep) != 1 or set(read_kwargs) - {"sep", "delimiter", "encoding", "index_col"}:
        return
    suffix = p.suffix.lower()
    opener = _OPENERS.get(suffix)
    if suffix in _OTHER_COMPRESSIONS or ".tar." in p.name.lower():  # pandas reads them; rows not checked here
        return
    with (opener or open)(p, "rt", newline="", encoding=read_kwargs.get("encoding") or "utf-8", errors="replace") as f:
        for i, row in enumerate(csv.reader(f, delimiter=sep)):
            if i > 0 and row and len(row) < width:
                raise DataValidationError(
                    f"Targets file {str(p)!r}, row {i}: {len(row)} fields under a header of {width} "
                    f"({row!r:.80}); a truncated row would target more records than it names. Write an empty "
                    "field for no condition on a column (e.g. '4,m,')."
                )


def _check_one_definition_per_name(targets: list[Target]) -> None:
    """One name, one definition: two targets named alike that count or sum different things made the report
    (and anything keyed by name) ambiguous. The same definition given twice is one cell (checked by the
    design: agreeing values are met, contradictory ones raise)."""
    first: dict[str, Target] = {}
    for t in targets:
        seen = first.setdefault(t.name, t)  # type: ignore[arg-type]
        if seen is not t and (seen.aggregate, seen.variable, seen.filters, seen.entity) != (
                t.aggregate, t.variable, t.filters, t.entity):
            raise DataValidationError(
                f"Two different targets are named {t.name!r} ({seen.aggregate} of {seen.filters or 'all records'} "
                f"and {t.aggregate} of {t.filters or 'all records'}); target names must be distinct.")


def _opt_name(rec: dict) -> Any:
    v = rec.get("name")
    return None if _is_missing(v) else v


def _check_distinct_names(targets: list[Target], src: str, explicit: list | None) -> None:
    """Names given in a file must be distinct (a duplicated name is a copy-paste error or tampering)."""
    if not explicit:
        return
    given = [t.name for t, e in zip(targets, explicit) if e is not None]
    seen: set[str] = set()
    dup = sorted({n for n in given if n in seen or seen.add(n)})  # type: ignore[func-returns-value]
    if dup:
        raise DataValidationError(f"{src} names targets more than once: {dup[:10]}; target names must be distinct.")
