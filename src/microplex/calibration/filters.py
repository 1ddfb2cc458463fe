"""Target filters: parsing ``"age >= 18 & state in ['CA', 'NY']"`` into column conditions and back.

A filter maps each column to a scalar, a set of values or a :class:`pandas.Interval`; clauses on one
column intersect. Used by :class:`~microplex.calibration.Target` and the target file readers.
"""

from __future__ import annotations

import ast
import datetime
import math
import re
import reprlib
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from microplex._errors import DataValidationError
from microplex._params import to_python

__all__ = ["parse_filter", "format_filter", "canonical_filter", "intersect", "fixed_value"]


def _is_missing(v: Any) -> bool:
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    try:
        return bool(isinstance(v, (float, np.floating)) and math.isnan(v))
    except TypeError:  # pragma: no cover
        return False


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 80
_REPR.maxlevel = 3


def _got(value: Any) -> str:
    """A short repr (bounded depth and length: a YAML alias bomb is never expanded)."""
    text = _REPR.repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


_STAMP = re.compile(r"(Timestamp|Timedelta)\('([^']*)'(?:,\s*tz='([^']*)')?\)")
#: A bare word: a letter of any script or ``_`` first (``Zürich``, ``é``), then letters, digits, ``_ . -`` and spaces.
_BARE = re.compile(r"[^\W\d][\w.\- ]*")


def _literal(text: str, where: str) -> Any:
    """A value written in a filter: a Python literal, ``inf``, or a bare word (a string)."""
    text = text.strip()
    low = text.lower()
    if low in ("inf", "+inf", "infinity"):
        return math.inf
    if low in ("-inf", "-infinity"):
        return -math.inf
    if len(text) > 10_000:
        raise DataValidationError(f"{where}: a value of {len(text)} characters is too long.")
    stamp = _STAMP.fullmatch(text)
    if stamp:  # a date or duration as format_filter writes it
        kind, value, tz = stamp.groups()
        try:
            return pd.Timestamp(value, tz=tz) if kind == "Timestamp" else pd.Timedelta(value)
        except (ValueError, TypeError, OverflowError) as err:
            raise DataValidationError(f"{where}: cannot read {text!r} ({err}).") from None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        if _BARE.fullmatch(text) and low not in ("nan", "none", "null", "na"):
            return text
        raise DataValidationError(
            f"{where}: cannot read the value {text!r}; expected a number, a quoted string or a bare word."
        ) from None


def _decimal(v: Decimal, where: str) -> int | float:
    """The number a :class:`~decimal.Decimal` (a Parquet decimal128 column, a database export) writes: an int where
    integral (exactly, at any size: an id of decimal(38, 0)), else the float that writes it (``1.50`` is 1.5, as a CSV
    cell reads); one with more digits than float64 holds would be another code, so it is refused."""
    if not v.is_finite():
        raise DataValidationError(f"{where}: an equality value must be finite. Got {v!r} instead.")
    if v == v.to_integral_value():
        return int(v)
    f = float(v)
    if Decimal(repr(f)) != v:
        raise DataValidationError(
            f"{where}: the value {v!r} has more digits than float64 holds (it reads as {f!r}, another value); "
            "round it to the digits the records hold, or write the column as text.")
    return f


def _scalar(v: Any, where: str) -> Any:
    """A filter value for equality or membership: a str, int, float or bool (numpy scalars and decimals converted)."""
    if isinstance(v, Decimal):
        return _decimal(v, where)
    if isinstance(v, (np.datetime64, np.timedelta64)):
        v = pd.Timestamp(v) if isinstance(v, np.datetime64) else pd.Timedelta(v)
    else:
        v = to_python(v)
    if v is pd.NaT:
        raise DataValidationError(f"{where}: an equality value must not be missing. Got NaT instead.")
    if isinstance(v, (datetime.date, datetime.timedelta)):
        return v  # dates and durations match datetime / timedelta columns
    if isinstance(v, float) and not math.isfinite(v):
        raise DataValidationError(f"{where}: an equality value must be finite. Got {v!r} instead.")
    if not isinstance(v, (str, int, float, bool)):
        raise DataValidationError(
            f"{where}: a filter value must be a str, int, float or bool (a set of them for membership, a "
            f"range for intervals). Got {_got(v)} ({type(v).__name__}) instead."
        )
    return v


#: Largest integer a range end may be (beyond it, float() of the end overflows).
_MAX_INT_BOUND = int(np.finfo(np.float64).max)


def _number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def _interval(lo: Any, hi: Any, closed: str, where: str) -> pd.Interval:
    """A checked range: numeric ends (infinite allowed, NaN not), lower <= upper."""
    for end in (lo, hi):
        if isinstance(end, int | np.integer) and abs(int(end)) > _MAX_INT_BOUND:
            raise DataValidationError(f"{where}: a range end beyond the float64 range (about 1.8e308) was given "
                                      f"({_got(end)}); write inf for an open end.")
    if not (_number(lo) and _number(hi)) or math.isnan(float(lo)) or math.isnan(float(hi)):
        raise DataValidationError(
            f"{where}: a range needs two numbers (or inf). Got {_got(lo)} and {_got(hi)} instead."
        )
    lo, hi = to_python(lo), to_python(hi)
    if lo > hi:
        raise DataValidationError(f"{where}: the range's lower end {lo!r} is above its upper end {hi!r}.")
    return pd.Interval(lo, hi, closed=closed)


_SEPARATOR = re.compile(r"\s*(?:&|;|\band\b)\s*")


def _split_clauses(expr: str) -> list[str]:
    """Splits at ``&``, ``;`` and `` and `` outside quotes."""
    if "'" not in expr and '"' not in expr and "`" not in expr:  # nothing quoted: no character to mask
        return _SEPARATOR.split(expr)
    masked = list(expr)
    quote = None
    for i, ch in enumerate(expr):
        if quote:
            if ch == quote:
                quote = None
            else:
                masked[i] = "_"
        elif ch in "'\"`":
            quote = ch
    if quote:
        raise DataValidationError(f"Filter {expr!r}: a quote is not closed.")
    text = "".join(masked)
    out, start = [], 0
    for m in _SEPARATOR.finditer(text):
        out.append(expr[start : m.start()])
        start = m.end()
    out.append(expr[start:])
    return out


#: A column written bare (a letter of any script or ``_`` first, as a Python name: ``größe``, ``Äpfel``; then letters,
#: digits, ``_`` and ``.``), or any name in backticks (as pandas' ``query`` writes one with spaces).
_NAME = re.compile(r"[^\W\d][\w.]*")
_CLAUSE = re.compile(r"^\s*(`[^`]+`|[^\W\d][\w.]*)\s*(==|!=|>=|<=|=>|=<|>|<|\bin\b|=)\s*(.+?)\s*$", re.S)


def _contains(iv: pd.Interval, v: Any) -> bool:
    return (v >= iv.left if iv.closed_left else v > iv.left) and (v <= iv.right if iv.closed_right else v < iv.right)


#: A code written as an integer, maybe with leading zeros (``'017'``, as YAML and CSV targets files keep such codes).
_INTEGER_CODE = re.compile(r"^[-+]?[0-9]{1,32}$")


def _code_number(v: Any) -> int | None:
    """The number that the text code ``v`` (``'017'``, ``'7'``) matches in a numeric column; else ``None``."""
    return int(v) if isinstance(v, str) and _INTEGER_CODE.match(v) else None


class NumberedCode(str):
    """A text code written as an integer (``'015'``) that a filter kept where it combined it with a number on the same
    column (``county == '015' & county in {15}``, or a range holding 15): it is its text and its number at once.

    In a numeric column it is the number (15); in a text column it is the text ``"015"`` where the number finds that
    text too (15 finds ``"015"`` where no ``"15"`` is held, :func:`~microplex.calibration.design.lookup_values`); a
    text column that holds both ``"15"`` and ``"015"`` has no record meeting both clauses, which is refused there
    rather than read as one of them. Equal to (and hashed as) its text, so names and filters read alike."""

    __slots__ = ()


def _same_values(sa: frozenset, sb: frozenset) -> frozenset:
    """The values of ``sa`` found in ``sb`` and of ``sb`` found in ``sa``, where a text code written as an integer
    (``'015'``) is found as the number it matches (15): the text is kept as a :class:`NumberedCode`, as it matches 15
    in a numeric column and ``'015'`` in a text one where 15 finds ``'015'``. Two texts are two codes (``'015'`` is
    not ``'15'``)."""
    marked = {v: v for v in sa | sb if isinstance(v, NumberedCode)}
    both = {marked.get(v, v) if isinstance(v, str) else v for v in sa & sb}
    for x, y in ((sa, sb), (sb, sa)):
        numbers = {v for v in y if _number(v)}
        if numbers:
            both.update(NumberedCode(v) for v in x
                        if v not in both and (n := _code_number(v)) is not None and n in numbers)
    return frozenset(both)


def intersect(a: Any, b: Any, where: str) -> Any:
    """The condition met by values meeting both ``a`` and ``b`` (two clauses on one column).

    An empty result is ``frozenset()``: the filter then selects no record.

    Examples
    --------
    >>> intersect("f", "m", "sex")
    frozenset()
    >>> intersect(pd.Interval(0, 65, closed="left"), pd.Interval(18, 99, closed="both"), "age")
    Interval(18, 65, closed='left')
    """
    if isinstance(a, pd.Interval) and isinstance(b, pd.Interval):
        if (a.left, not a.closed_left) >= (b.left, not b.closed_left):
            left, cl = a.left, a.closed_left
        else:
            left, cl = b.left, b.closed_left
        if (a.right, a.closed_right) <= (b.right, b.closed_right):
            right, cr = a.right, a.closed_right
        else:
            right, cr = b.right, b.closed_right
        if left > right or (left == right and not (cl and cr)):
            return frozenset()
        closed = {(True, True): "both", (True, False): "left", (False, True): "right", (False, False): "neither"}
        return pd.Interval(left, right, closed=closed[(bool(cl), bool(cr))])
    if isinstance(b, pd.Interval):
        a, b = b, a
    if isinstance(a, pd.Interval):
        members = b if isinstance(b, frozenset) else frozenset([b])
        if any(not _number(v) and _code_number(v) is None for v in members):
            raise DataValidationError(
                f"{where}: cannot combine a range with the non-numeric values {sorted(map(repr, members))[:5]}."
            )
        # a code written with leading zeros ('01') is in the range as the number it matches (1), and kept as written
        kept = frozenset(v if _number(v) else NumberedCode(v) for v in members
                         if _contains(a, v if _number(v) else _code_number(v)))
        return next(iter(kept)) if not isinstance(b, frozenset) and kept else kept
    sa = a if isinstance(a, frozenset) else frozenset([a])
    sb = b if isinstance(b, frozenset) else frozenset([b])
    both = _same_values(sa, sb)
    for x in (b, a):
        if not isinstance(x, frozenset) and both:
            if x in sa and x in sb:  # held as written by both clauses (a NumberedCode where either clause made it one)
                return next((v for v in both if isinstance(v, NumberedCode) and v == x), x)
            return next(iter(both)) if len(both) == 1 else both  # found as its number, or its codes' number
    return both


def _combine(out: dict[str, Any], col: str, cond: Any, where: str) -> None:
    out[col] = intersect(out[col], cond, f"{where} (two conditions on {col!r})") if col in out else cond


#: Parsed clauses by their text (:func:`_parse_clause`): a targets file of tract x age x sex cells repeats each age
#: band's and each tract's clause many times (``literal_eval`` dominated reading 50,000 targets). Cleared when full.
_CLAUSE_CACHE: dict[str, tuple[str, Any]] = {}
_CLAUSE_CACHE_SIZE = 100_000


def _parse_clause(clause: str, expr: str) -> tuple[str, Any]:
    """One clause of filter ``expr``: its column and checked condition (immutable: a scalar, a frozenset or an
    Interval, so one parse serves every filter that writes the clause alike; errors name ``expr``)."""
    key = clause.strip()
    hit = _CLAUSE_CACHE.get(key)
    if hit is not None:
        return hit
    if not key:
        raise DataValidationError(f"Cannot parse filter clause {clause!r} in filter {expr!r}: an empty clause.")
    m = _CLAUSE.match(clause)
    if not m:
        raise DataValidationError(
            f"Cannot parse filter clause {clause!r} in filter {expr!r}; expected 'col == v', 'col in {{a, b}}', "
            "'col in [lo, hi)' or 'col >= v', where a column whose name is no plain name (a space, a sign or a digit "
            "first) is written in backticks: `my col` == 1."
        )
    col, op, rhs = m.groups()
    col = col[1:-1] if col.startswith("`") else col
    where = f"Filter {expr!r}, clause {key!r}"
    op = {"=>": ">=", "=<": "<="}.get(op, op)
    if op in ("==", "="):
        cond: Any = _scalar(_literal(rhs, where), where)
    elif op == "in":
        if rhs[0] == "{" and rhs[-1] == "}":
            inner = rhs[1:-1]
            try:
                items = ast.literal_eval(rhs) if inner.strip() else set()
                if isinstance(items, dict) and not items:
                    items = set()
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                items = [_literal(v, where) for v in inner.split(",") if v.strip()]
            if not isinstance(items, (set, frozenset, list, tuple)):
                raise DataValidationError(f"{where}: 'in {{...}}' needs a set of values. Got {_got(items)} instead.")
            cond = frozenset(_scalar(v, where) for v in items)
        elif rhs[0] in "[(" and rhs[-1] in "])":
            parts = rhs[1:-1].split(",")
            if len(parts) != 2:
                raise DataValidationError(f"Range in filter clause {clause!r} (filter {expr!r}) needs exactly two ends.")
            lo, hi = _literal(parts[0], where), _literal(parts[1], where)
            closed = {"[]": "both", "[)": "left", "(]": "right", "()": "neither"}[rhs[0] + rhs[-1]]
            cond = _interval(lo, hi, closed, where)
        else:
            raise DataValidationError(f"{where}: 'in' needs {{...}} or a range [lo, hi).")
    elif op in (">=", ">"):
        cond = _interval(_literal(rhs, where), math.inf, "left" if op == ">=" else "neither", where)
    elif op in ("<=", "<"):
        cond = _interval(-math.inf, _literal(rhs, where), "right" if op == "<=" else "neither", where)
    else:
        raise DataValidationError(f"{where}: operator {op!r} is not supported.")
    if len(_CLAUSE_CACHE) >= _CLAUSE_CACHE_SIZE:
        _CLAUSE_CACHE.clear()
    _CLAUSE_CACHE[key] = (col, cond)
    return col, cond


def parse_filter(expr: str) -> dict[str, Any]:
    """Parses a filter string into a filter dict.

    Clauses are joined by ``&``, ``;`` or `` and ``: ``col == v``, ``col in {a, b}``,
    ``col in [lo, hi)`` (any bracket pair), ``col >= v`` / ``>`` / ``<=`` / ``<``. A column is written bare
    when its name starts with a letter of any script or ``_`` (``größe``, ``Äpfel``) and holds letters, digits,
    ``_`` and ``.``, else in backticks (```my col` == 1``); a value is a number, a quoted string or a bare word
    starting so (``Zürich``). Several clauses on one column combine (both must hold); an empty combination
    (``sex == 'f' & sex == 'm'``) selects no record. Anything else raises :class:`DataValidationError` naming the
    filter.

    Examples
    --------
    >>> parse_filter("state == 'CA' & age in [18, 65)")
    {'state': 'CA', 'age': Interval(18, 65, closed='left')}
    >>> parse_filter("educ in {12, 13}")
    {'educ': frozenset({12, 13})}
    >>> parse_filter("age >= 18 & age < 65")
    {'age': Interval(18, 65, closed='left')}
    """
    if not isinstance(expr, str):
        raise DataValidationError(f"A filter must be a string or a dict. Got {_got(expr)} instead.")
    out: dict[str, Any] = {}
    expr = expr.strip()
    if not expr:
        return out
    for clause in _split_clauses(expr):
        col, cond = _parse_clause(clause, expr)
        _combine(out, col, cond, f"Filter {expr!r}")
    return out


def _fmt_value(v: Any) -> str:
    if isinstance(v, (np.generic,)):
        v = v.item()
    if isinstance(v, datetime.datetime | datetime.date) and not isinstance(v, pd.Timestamp):
        v = pd.Timestamp(v)
    elif isinstance(v, datetime.timedelta) and not isinstance(v, pd.Timedelta):
        v = pd.Timedelta(v)
    return repr(v)  # Timestamp('2020-01-01 00:00:00') and Timedelta('1 days 00:00:00'): read by _literal


def _fmt_column(col: str) -> str:
    """A column as a filter writes it: bare, or in backticks where it is no plain name (spaces, signs; a name
    holding a backtick cannot be read back from a string: give such filters as a dict)."""
    return col if _NAME.fullmatch(col) else f"`{col}`"


def _fmt_set(col: str, values: Any) -> str:
    items = sorted(values, key=lambda v: (str(v), _fmt_value(v)))  # 1 and '1': as written, not in set order
    return f"{_fmt_column(col)} in {{{', '.join(_fmt_value(v) for v in items)}}}"


def _numbered_clause(col: str, cond: Any) -> str | None:
    """The clause on the numbers of the :class:`NumberedCode` values of ``cond`` that, after the clause ``cond``
    writes, makes :func:`parse_filter` read them back as such (``county == 15`` after ``county == '015'``; for a set,
    its other values and the numbers, ``county in {15, 'abc'}`` after ``county in {'015', 'abc'}``); ``None`` where
    ``cond`` holds none."""
    if isinstance(cond, NumberedCode):
        return f"{_fmt_column(col)} == {int(cond)!r}"
    if isinstance(cond, (set, frozenset)) and any(isinstance(v, NumberedCode) for v in cond):
        return _fmt_set(col, {int(v) if isinstance(v, NumberedCode) else v for v in cond})
    return None


def format_filter(filters: Mapping[str, Any], *, exact: bool = False) -> str:
    """Formats a filter dict as the string :func:`parse_filter` reads.

    With ``exact``, a code written as an integer that a filter combined with its number (a :class:`NumberedCode`,
    written as its text: ``county == '015'``) is followed by the clause on its number (``county == '015' & county
    == 15``), so that :func:`parse_filter` reads back the same conditions (as :meth:`Targets.to_frame` writes
    filters); without it, the text alone (as target names write filters).

    Examples
    --------
    >>> format_filter({"state": "CA", "age": pd.Interval(18, 65, closed="left")})
    "state == 'CA' & age in [18, 65)"
    >>> flt = parse_filter("county == '015' & county in [10, 20]")
    >>> format_filter(flt), format_filter(flt, exact=True)
    ("county == '015'", "county == '015' & county == 15")
    """
    parts = []
    for col, cond in filters.items():
        if isinstance(cond, pd.Interval):
            lb = "[" if cond.closed in ("left", "both") else "("
            rb = "]" if cond.closed in ("right", "both") else ")"
            parts.append(f"{_fmt_column(col)} in {lb}{_fmt_value(cond.left)}, {_fmt_value(cond.right)}{rb}")
        elif isinstance(cond, (set, frozenset, list, tuple)):
            parts.append(_fmt_set(col, cond))
        else:
            parts.append(f"{_fmt_column(col)} == {_fmt_value(cond)}")
        numbered = _numbered_clause(col, cond) if exact else None
        if numbered is not None:
            parts.append(numbered)
    return " & ".join(parts)


def _canonical_value(v: Any) -> Any:
    """A number with an integer value as an int (16.0 and 16 select the same records); anything else as it is."""
    if _number(v) and math.isfinite(float(v)) and float(v).is_integer():
        return int(v)
    return v


def canonical_filter(filters: Mapping[str, Any]) -> str:
    """The text of a filter dict written one way, for telling whether two filters state the same conditions:
    columns sorted, a set of one value as that value, numbers with an integer value as ints (in sets and range
    ends too). ``educ in {16}``, ``educ == 16`` and ``educ == 16.0`` give the same text; different conditions
    (``educ in {16, 17}``) never do.

    Examples
    --------
    >>> canonical_filter(parse_filter("educ in {16.0} & state == 'CA'")) == canonical_filter(
    ...     parse_filter("state == 'CA' & educ == 16"))
    True
    >>> canonical_filter(parse_filter("age in [18.0, 65) & educ in {16, 17.0}"))
    'age in [18, 65) & educ in {16, 17}'
    """
    out: dict[str, Any] = {}
    for col in sorted(filters):
        cond = filters[col]
        if isinstance(cond, pd.Interval):
            cond = pd.Interval(_canonical_value(cond.left), _canonical_value(cond.right), closed=cond.closed)
        elif isinstance(cond, (set, frozenset)):
            cond = frozenset(_canonical_value(v) for v in cond)
            cond = next(iter(cond)) if len(cond) == 1 else cond
        else:
            cond = _canonical_value(cond)
        out[col] = cond
    return format_filter(out)


#: Text written as a range, ``[18, 65)`` or R's ``(17,39]``: a range filter in a targets file or a filter dict.
_RANGE_TEXT = re.compile(r"^\s*[\[(].*,.*[\])]\s*$", re.S)


def range_label(text: Any) -> pd.Interval | None:
    """The range a text label writes (``"(17, 39]"``, R's ``cut()`` label ``"(17,39]"``), or None for any other
    value: a column of such labels is matched by a range filter value for value (a label is a category, not a
    number to compare).

    Examples
    --------
    >>> range_label("(17,39]"), range_label("[18, 65)"), range_label("CA"), range_label("(a, b]")
    (Interval(17, 39, closed='right'), Interval(18, 65, closed='left'), None, None)
    """
    if not isinstance(text, str) or not _RANGE_TEXT.match(text):
        return None
    try:
        cond = parse_filter(f"x in {text}")["x"]
    except DataValidationError:
        return None
    return cond if isinstance(cond, pd.Interval) else None


def _condition(col: str, cond: Any, where: str) -> Any:
    """One checked filter condition (scalar, frozenset of scalars or numeric Interval)."""
    where = f"{where}, column {col!r}"
    if isinstance(cond, pd.Interval):
        return _interval(cond.left, cond.right, cond.closed, where)
    if isinstance(cond, (list, tuple, set, frozenset, np.ndarray, pd.Index, pd.Series)):
        return frozenset(_scalar(v, where) for v in cond)
    if isinstance(cond, str) and _RANGE_TEXT.match(cond):
        return parse_filter(f"{col} in {cond}")[col]
    return _scalar(cond, where)


def _normalize_filters(filters: Mapping[str, Any] | str | None, where: str = "Target") -> dict[str, Any]:
    if filters is None:
        return {}
    if isinstance(filters, str):
        return parse_filter(filters)
    if not isinstance(filters, Mapping):
        raise DataValidationError(
            f"{where}: filters must be a dict (column -> condition), a filter string or None. "
            f"Got {_got(filters)} ({type(filters).__name__}) instead."
        )
    out: dict[str, Any] = {}
    for col, cond in filters.items():
        if not isinstance(col, str) or not col:
            raise DataValidationError(f"{where}: filter columns must be non-empty strings. Got {_got(col)} instead.")
        try:
            out[col] = _condition(col, cond, where)
        except DataValidationError as exc:  # the filter's repr is formatted only for an error message
            msg = str(exc)
            if msg.startswith(where):
                msg = f"{where}, filter {_got(dict(filters))}{msg[len(where):]}"
            raise DataValidationError(msg) from None
    return out


def fixed_value(filters: Mapping[str, Any], column: str) -> Any:
    """The one value ``filters`` allow for ``column`` (an equality, or a set of one value); ``None``
    when the column is unfiltered or allowed several values (a set, a range).

    Examples
    --------
    >>> fixed_value(parse_filter("state == 'CA' & age >= 18"), "state")
    'CA'
    >>> fixed_value(parse_filter("state in {'CA', 'NY'}"), "state") is None
    True
    """
    cond = filters.get(column)
    if isinstance(cond, frozenset | set):
        return next(iter(cond)) if len(cond) == 1 else None
    if isinstance(cond, pd.Interval):
        return None
    return cond
