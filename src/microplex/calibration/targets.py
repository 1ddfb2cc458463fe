"""Calibration targets: a Target is an aggregate of records matching a filter; Targets is a list of them.

Filters map a record column to a condition: a scalar (equality), a list/set (membership) or a
:class:`pandas.Interval` (range, e.g. ``pd.Interval(18, 65, closed="left")`` for ``age in [18, 65)``).
The same conditions can be written as strings: ``"state == 'CA' & age in [18, 65) & educ in {12, 13}"``.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from microplex._errors import DataValidationError

__all__ = ["Target", "Targets", "parse_filter", "format_filter"]

AGGREGATES = ("count", "sum", "mean")
ENTITIES = ("person", "household")
_RESERVED = ("name", "value", "aggregate", "variable", "tolerance", "importance", "entity", "filter")


def _is_missing(v: Any) -> bool:
    if v is None or v is pd.NA:
        return True
    try:
        return bool(isinstance(v, float) and math.isnan(v))
    except TypeError:  # pragma: no cover
        return False


def _literal(text: str) -> Any:
    text = text.strip()
    low = text.lower()
    if low in ("inf", "+inf", "infinity"):
        return math.inf
    if low in ("-inf", "-infinity"):
        return -math.inf
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


_CLAUSE = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(==|!=|>=|<=|>|<|\bin\b|=)\s*(.+?)\s*$")


def parse_filter(expr: str) -> dict[str, Any]:
    """Parses a filter string into a filter dict.

    Clauses are joined by ``&``, ``;`` or `` and ``: ``col == v``, ``col in {a, b}``,
    ``col in [lo, hi)`` (any bracket pair), ``col >= v`` / ``>`` / ``<=`` / ``<``.

    Examples
    --------
    >>> parse_filter("state == 'CA' & age in [18, 65)")
    {'state': 'CA', 'age': Interval(18, 65, closed='left')}
    >>> parse_filter("educ in {12, 13}")
    {'educ': frozenset({12, 13})}
    """
    out: dict[str, Any] = {}
    expr = expr.strip()
    if not expr:
        return out
    for clause in re.split(r"\s*(?:&|;|\band\b)\s*", expr):
        if not clause:
            continue
        m = _CLAUSE.match(clause)
        if not m:
            raise DataValidationError(
                f"Cannot parse filter clause {clause!r}; expected 'col == v', 'col in {{a, b}}', "
                "'col in [lo, hi)' or 'col >= v'."
            )
        col, op, rhs = m.groups()
        if op in ("==", "="):
            cond: Any = _literal(rhs)
        elif op == "in":
            if rhs[0] == "{" and rhs[-1] == "}":
                cond = frozenset(_literal(v) for v in rhs[1:-1].split(",") if v.strip())
            elif rhs[0] in "[(" and rhs[-1] in "])":
                parts = rhs[1:-1].split(",")
                if len(parts) != 2:
                    raise DataValidationError(f"Range in filter clause {clause!r} needs exactly two ends.")
                lo, hi = _literal(parts[0]), _literal(parts[1])
                closed = {"[]": "both", "[)": "left", "(]": "right", "()": "neither"}[rhs[0] + rhs[-1]]
                cond = pd.Interval(lo, hi, closed=closed)
            else:
                raise DataValidationError(f"Filter clause {clause!r}: 'in' needs {{...}} or a range [lo, hi).")
        elif op in (">=", ">"):
            cond = pd.Interval(_literal(rhs), math.inf, closed="left" if op == ">=" else "neither")
        elif op in ("<=", "<"):
            cond = pd.Interval(-math.inf, _literal(rhs), closed="right" if op == "<=" else "neither")
        else:
            raise DataValidationError(f"Filter clause {clause!r}: operator {op!r} is not supported.")
        out[col] = cond
    return out


def _fmt_value(v: Any) -> str:
    if isinstance(v, (np.generic,)):
        v = v.item()
    return repr(v)


def format_filter(filters: Mapping[str, Any]) -> str:
    """Formats a filter dict as the string :func:`parse_filter` reads.

    Examples
    --------
    >>> format_filter({"state": "CA", "age": pd.Interval(18, 65, closed="left")})
    "state == 'CA' & age in [18, 65)"
    """
    parts = []
    for col, cond in filters.items():
        if isinstance(cond, pd.Interval):
            lb = "[" if cond.closed in ("left", "both") else "("
            rb = "]" if cond.closed in ("right", "both") else ")"
            parts.append(f"{col} in {lb}{_fmt_value(cond.left)}, {_fmt_value(cond.right)}{rb}")
        elif isinstance(cond, (set, frozenset, list, tuple)):
            items = sorted(cond, key=str)
            parts.append(f"{col} in {{{', '.join(_fmt_value(v) for v in items)}}}")
        else:
            parts.append(f"{col} == {_fmt_value(cond)}")
    return " & ".join(parts)


def _normalize_filters(filters: Mapping[str, Any] | str | None) -> dict[str, Any]:
    if filters is None:
        return {}
    if isinstance(filters, str):
        return parse_filter(filters)
    out: dict[str, Any] = {}
    for col, cond in filters.items():
        if isinstance(cond, (list, tuple, set, frozenset, np.ndarray)):
            cond = frozenset(v.item() if isinstance(v, np.generic) else v for v in cond)
        elif isinstance(cond, str) and re.match(r"^\s*[\[(].*,.*[\])]\s*$", cond):
            cond = parse_filter(f"{col} in {cond}")[col]
        elif isinstance(cond, np.generic):
            cond = cond.item()
        out[str(col)] = cond
    return out


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
        object.__setattr__(self, "filters", _normalize_filters(self.filters))
        object.__setattr__(self, "value", float(self.value))
        if self.name is None:
            what = "count" if self.aggregate == "count" else f"{self.aggregate}({self.variable})"
            if self.entity == "household":
                what = f"household_{what}"
            object.__setattr__(self, "name", f"{what}[{format_filter(self.filters)}]")

    def validate(self) -> None:
        """Raises DataValidationError naming this target if a field is invalid."""
        if self.aggregate not in AGGREGATES:
            raise DataValidationError(
                f"Target {self.name!r}: aggregate must be one of {AGGREGATES}. Got {self.aggregate!r} instead."
            )
        if self.aggregate != "count" and not self.variable:
            raise DataValidationError(f"Target {self.name!r}: aggregate {self.aggregate!r} needs a variable.")
        if self.entity not in ENTITIES:
            raise DataValidationError(
                f"Target {self.name!r}: entity must be one of {ENTITIES}. Got {self.entity!r} instead."
            )
        if not math.isfinite(self.value):
            raise DataValidationError(f"Target {self.name!r}: value must be finite. Got {self.value!r} instead.")
        if self.tolerance is not None and not (self.tolerance >= 0):
            raise DataValidationError(
                f"Target {self.name!r}: tolerance must be >= 0. Got {self.tolerance!r} instead."
            )
        if not (self.importance > 0):
            raise DataValidationError(
                f"Target {self.name!r}: importance must be > 0. Got {self.importance!r} instead."
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
        self._targets: list[Target] = list(targets)
        for t in self._targets:
            if not isinstance(t, Target):
                raise DataValidationError(f"Targets holds Target objects. Got {type(t).__name__} instead.")

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
        extra = _normalize_filters(filters)
        out: list[Target] = []
        for key, values in margins.items():
            cols = (key,) if isinstance(key, str) else tuple(key)
            items = values.items() if isinstance(values, (pd.Series, Mapping)) else values
            for cat, val in items:
                cats = cat if len(cols) > 1 else (cat,)
                if not isinstance(cats, tuple) or len(cats) != len(cols):
                    raise DataValidationError(
                        f"Margin {cols}: category {cat!r} must be a tuple of {len(cols)} values."
                    )
                flt = {**extra, **dict(zip(cols, cats))}
                out.append(Target(val, aggregate, variable, flt, tolerance, importance, entity))
        return cls(out)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> Targets:
        """Creates targets from a long table, one row per target.

        Columns ``value`` (required), ``aggregate``, ``variable``, ``tolerance``, ``importance``,
        ``entity``, ``name`` and ``filter`` (a :func:`parse_filter` string) are reserved; every other
        column is an equality filter, with missing cells meaning "no condition on this column".
        """
        if "value" not in frame.columns:
            raise DataValidationError(
                f"Targets.from_frame needs a 'value' column. Got columns {list(frame.columns)} instead."
            )
        filter_cols = [c for c in frame.columns if c not in _RESERVED]
        out = []
        for rec in frame.to_dict("records"):
            flt: dict[str, Any] = {}
            if "filter" in rec and not _is_missing(rec["filter"]):
                flt.update(parse_filter(str(rec["filter"])))
            for c in filter_cols:
                if not _is_missing(rec[c]):
                    v = rec[c]
                    if isinstance(v, float) and v.is_integer():
                        v = int(v)
                    flt[str(c)] = v

            def opt(key: str, default: Any = None) -> Any:
                v = rec.get(key, default)
                return default if _is_missing(v) else v

            out.append(
                Target(
                    value=rec["value"] if not _is_missing(rec["value"]) else math.nan,
                    aggregate=str(opt("aggregate", "count")),
                    variable=opt("variable"),
                    filters=flt,
                    tolerance=None if opt("tolerance") is None else float(opt("tolerance")),
                    importance=float(opt("importance", 1.0)),
                    entity=str(opt("entity", "person")),
                    name=opt("name"),
                )
            )
        return cls(out)

    @classmethod
    def from_csv(cls, path: str | Path, **read_kwargs: Any) -> Targets:
        """Creates targets from a CSV file in the :meth:`from_frame` layout."""
        return cls.from_frame(pd.read_csv(path, **read_kwargs))

    @classmethod
    def from_parquet(cls, path: str | Path) -> Targets:
        """Creates targets from a Parquet file in the :meth:`from_frame` layout."""
        return cls.from_frame(pd.read_parquet(path))

    @classmethod
    def from_yaml(cls, source: str | Path) -> Targets:
        """Creates targets from YAML (a path or the YAML text).

        The document has a ``targets`` list (mappings with the :class:`Target` fields, ``filter`` as a
        string or mapping) and/or a ``margins`` list (mappings with ``by`` (column or list of columns),
        ``values`` (mapping, or list of rows ``[cat1, ..., value]``) and the shared fields).
        """
        import yaml

        text = Path(source).read_text() if _looks_like_path(source) else str(source)
        doc = yaml.safe_load(text) or {}
        out: list[Target] = []
        for item in doc.get("targets", []) or []:
            item = dict(item)
            flt = item.pop("filter", None) or item.pop("filters", None)
            out.append(Target(filters=flt, **item))
        for item in doc.get("margins", []) or []:
            item = dict(item)
            by = item.pop("by")
            values = item.pop("values")
            cols = (by,) if isinstance(by, str) else tuple(by)
            if isinstance(values, Mapping):
                pairs = list(values.items())
            else:
                pairs = [(tuple(row[:-1]) if len(cols) > 1 else row[0], row[-1]) for row in values]
            key = cols[0] if len(cols) == 1 else cols
            out.extend(cls.from_margins({key: pairs}, **item))  # type: ignore[dict-item]
        return cls(out)

    def to_frame(self) -> pd.DataFrame:
        """Returns one row per target (the :meth:`from_frame` layout, filters as strings)."""
        return pd.DataFrame(
            {
                "name": [t.name for t in self],
                "aggregate": [t.aggregate for t in self],
                "variable": [t.variable for t in self],
                "entity": [t.entity for t in self],
                "filter": [format_filter(t.filters) for t in self],
                "value": [t.value for t in self],
                "tolerance": [t.tolerance for t in self],
                "importance": [t.importance for t in self],
            }
        )


def _looks_like_path(source: str | Path) -> bool:
    if isinstance(source, Path):
        return True
    return "\n" not in source and ":" not in source and Path(source).exists()
