"""Input checks shared by the evaluation modules (private)."""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .._errors import DataValidationError
from .._files import FORMATS, dot_missing_column, dot_missing_fix, formatted_number_column, ibm_zeros, text_numbers_fix
from .._params import duplicated, to_python
from .._stats import (category_type_clash, check_weights, dtype_precision, family_firsts, is_numeric, shared_precision,
                      stored_at)

__all__ = [
    "check_weights",
    "at_shared_precision",
    "clean_pair",
    "is_numeric",
    "check_frames",
    "require_columns",
    "check_columns",
    "numeric_frame",
    "beyond_float64",
    "integer_columns",
    "refuse_type_clashes",
    "RESERVED_NAMES",
]

#: Names the score table uses itself ("all" is the overall row, "a|b" a pair, ``__weight__`` an
#: internal column of the calibration check): a column named so would be confused with them.
RESERVED_NAMES = ("all", "__weight__")


def _numeric_values(values: object, name: str) -> np.ndarray:
    try:
        return np.asarray(values, dtype=float).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise DataValidationError(f"{name} must be numeric: got values that cannot be read as numbers.") from exc


def refuse_infinite(x: np.ndarray, what: str, why: str = "") -> None:
    """Raises :class:`DataValidationError` when the float array ``x`` holds infinite values: "``what`` holds 3
    infinite value(s): [``why``; ]expected finite numbers (missing values are NaN)." The one check of every
    score that needs finite numbers."""
    inf = int(np.isinf(x).sum())
    if inf:
        because = f"{why}; expected" if why else "expected"
        raise DataValidationError(
            f"{what} holds {inf} infinite value(s): {because} finite numbers (missing values are NaN)."
        )


def at_shared_precision(*columns: pd.Series) -> tuple[list[pd.Series], str]:
    """The numeric ``columns`` (one column of several frames) as float64 at the narrowest float precision any of them
    stores its values at (:func:`.._stats.shared_precision`), and that precision: a float32 column's
    24.100000381469727 and a float64 column's 24.1 are then one value, as the privacy checks compare them
    (:func:`.privacy.row_codes`). Returned as given, with ``"float64"``, where every column stores float64 (or
    integers) or one is not numeric. Every comparison of the values of two frames (KS, point masses, bins, the pMSE
    classifier, attack cells) reads them so: a heap at 0.7 read as 0.7 and as 0.699999988079071 was two masses.

    Examples
    --------
    >>> a, b = pd.Series([0.7, 1.5]), pd.Series([0.7, 1.5], dtype="float32")
    >>> (a2, b2), precision = at_shared_precision(a, b)
    >>> precision, a2.tolist() == b2.tolist(), a2.dtype
    ('float32', True, dtype('float64'))
    """
    precision = shared_precision(*(c.dtype for c in columns))
    if precision == "float64" or not all(is_numeric(c) for c in columns):
        return list(columns), "float64"
    return [pd.Series(stored_at(c.to_numpy(dtype=float, na_value=np.nan), precision), index=c.index, name=c.name)
            for c in columns], precision


def clean_pair(
    real: object,
    synthetic: object,
    real_weights: object = None,
    synthetic_weights: object = None,
    *,
    numeric: bool = True,
    name: str = "column",
    allow_inf: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Drops missing values from two samples and returns (real, synthetic, real_w, synthetic_w).

    Numeric samples are read at the narrowest float precision either is stored at (:func:`at_shared_precision`: a
    float32 sample's 24.100000381469727 is a float64 sample's 24.1). Raises :class:`DataValidationError` when a
    numeric sample holds infinite values (unless ``allow_inf``: a statistic of ranks, such as KS, is defined with
    them), when a sample is empty after dropping missing values or when its weights all vanish.
    """
    precision = shared_precision(*(getattr(v, "dtype", None) for v in (real, synthetic)))
    out = []
    for label, values, weights in (("real", real, real_weights), ("synthetic", synthetic, synthetic_weights)):
        if numeric:
            x = stored_at(_numeric_values(values, f"{label} {name}"), precision)
            if not allow_inf:
                refuse_infinite(x, f"{name!r}: the {label} sample")
            keep = ~np.isnan(x)
        else:
            x = np.asarray(pd.Series(values).astype(object), dtype=object).reshape(-1)
            keep = ~pd.isna(x)
        w = check_weights(weights, x.shape[0], f"{label} weights")
        x, w = x[keep], w[keep]
        if x.shape[0] == 0:
            raise DataValidationError(
                f"{name!r}: the {label} sample has no non-missing values (expected at least 1, got 0)."
            )
        if w.sum() <= 0:
            raise DataValidationError(f"{name!r}: the {label} weights of non-missing values sum to 0.")
        out.append((x, w))
    (xr, wr), (xs, ws) = out
    return xr, xs, wr, ws


def check_columns(df: pd.DataFrame, label: str) -> None:
    """Column names are distinct non-empty strings, not reserved, without ``|``."""
    names = list(df.columns)
    bad = [c for c in names if not isinstance(c, str) or not c]
    if bad:
        raise DataValidationError(
            f"{label} must have non-empty string column names: got {bad[:5]!r}; rename them (e.g. df.columns.astype(str))."
        )
    dup = duplicated(names)
    if dup:
        raise DataValidationError(f"{label} has duplicated column names {dup[:5]}: expected distinct names.")
    odd = [c for c in names if c in RESERVED_NAMES or "|" in c]
    if odd:
        raise DataValidationError(
            f"{label} has a column named {odd[0]!r}: the names {list(RESERVED_NAMES)} and names with '|' are "
            "reserved by the score table; rename it."
        )


def _check_values(series: pd.Series, col: str, label: str) -> None:
    kind = series.dtype.kind
    if kind in "mMcV" or isinstance(series.dtype, pd.PeriodDtype | pd.IntervalDtype) or (
        isinstance(series.dtype, pd.DatetimeTZDtype)
    ):
        raise DataValidationError(
            f"Column {col!r} of {label} has dtype {series.dtype}, which cannot be scored: expected numbers, "
            "booleans, strings or categories (convert dates to numbers, e.g. the year or days since a date)."
        )
    if is_numeric(series):
        refuse_infinite(series.to_numpy(dtype=float, na_value=np.nan), f"Column {col!r} of {label}")
        found = ibm_zeros(series.to_numpy(dtype=float, na_value=np.nan), col)
        if found:
            raise DataValidationError(f"Column {col!r} of {label} {found}")
    elif series.dtype == object:
        try:
            series.nunique(dropna=True)
        except TypeError:
            raise DataValidationError(
                f"Column {col!r} of {label} holds unhashable values (lists, dicts, ...): expected numbers, "
                "booleans, strings or categories."
            ) from None
        # numbers stored as objects of another type (decimal.Decimal from a SQL NUMERIC column, Fraction) would be
        # scored as categories (an income's every value a category of its own)
        odd = next((v for v in pd.unique(series.dropna()) if isinstance(v, numbers.Number)
                    and not isinstance(v, (int, float, bool, np.number))), None)
        if odd is not None:
            raise DataValidationError(
                f"Column {col!r} of {label} holds numbers of type {type(odd).__name__} ({odd!r:.40}), which would be "
                f"scored as categories: convert them to floats first (df[{col!r}].astype(float))."
            )
    if series.dtype == object or isinstance(series.dtype, pd.CategoricalDtype):
        firsts = family_firsts(pd.unique(series.dropna()))
        if len(firsts) > 1:  # scored as categories by value, each number one of its own beside the labels
            shown = " and ".join(repr(to_python(v)) for v in list(firsts.values())[:2])
            raise DataValidationError(
                f"Column {col!r} of {label} mixes value types {sorted(firsts)} ({shown}), which would be scored as "
                "categories, each value one of its own: give the column one type (recode text codes such as "
                "'Refused' as your survey documents them, e.g. to missing values, or convert every value to str)."
            )
    dot = dot_missing_column(series)
    if dot is not None:  # a SAS or Stata export: scored as categories, every value one of its own
        raise DataValidationError(
            f"Column {col!r} of {label} holds numbers written as text, its missing values written {dot!r} (as SAS, "
            f"Stata or fixed-width exports write them), which would be scored as categories: convert them first "
            f"({dot_missing_fix(col)})."
        )
    example = formatted_number_column(series)
    if example is not None:  # a spreadsheet's export: scored as categories, every value one of its own
        raise DataValidationError(
            f"Column {col!r} of {label} holds numbers written as text ({example!r}: {FORMATS}), which would be "
            f"scored as categories: convert them first ({text_numbers_fix(col, example)})."
        )


def _refuse_bools_for_numbers(r: pd.Series, s: pd.Series, col: str, name: str, reference: str) -> None:
    """Refuses categories that are booleans in one frame and numbers in the other: Python has ``True == 1`` and
    ``False == 0``, and pandas groups and factorizes them as one value, so 0/1 codes scored against ``False``/``True``
    read as identical, whatever they stand for. A boolean is no number (as the calibration reads a level)."""
    firsts = [family_firsts(pd.unique(x.dropna().astype(object))) for x in (r, s)]
    for (a, fa, la), (b, fb, lb) in [((r, firsts[0], reference), (s, firsts[1], name)),
                                     ((s, firsts[1], name), (r, firsts[0], reference))]:
        number = next((fb[k] for k in ("int", "float") if k in fb), None)
        if "bool" in fa and number is not None:
            raise DataValidationError(
                f"Column {col!r}: {la} holds booleans ({to_python(fa['bool'])!r}, dtype {a.dtype}) and {lb} numbers "
                f"({to_python(number)!r}, dtype {b.dtype}); Python reads True as 1 and False as 0, so they would be "
                f"scored as the same categories, but a boolean is no number: give the column one type in both "
                f"frames (e.g. df[{col!r}].astype(int) for 0/1 codes, or .astype(bool))."
            )


def _check_category_types(r: pd.Series, s: pd.Series, col: str, name: str, reference: str = "real_df") -> None:
    """Categories are compared by value (``True`` and ``"True"`` differ): refuses a category of the frame
    ``reference`` whose label occurs in the frame ``name`` only with another type, which would score identical
    files as disjoint, and booleans in one frame beside numbers in the other (:func:`_refuse_bools_for_numbers`),
    which would score them as one."""
    _refuse_bools_for_numbers(r, s, col, name, reference)
    clash = category_type_clash(r, s)
    if clash is not None:
        v, twin = clash
        raise DataValidationError(
            f"Column {col!r}: category {v!r} ({type(v).__name__}) of {reference} is {twin!r} ({type(twin).__name__}) "
            f"in {name}: the labels agree but the types differ ({r.dtype} vs {s.dtype}), and categories are "
            f"compared by value; give the column one type in both frames (e.g. df[{col!r}].astype(str))."
        )


def refuse_type_clashes(frames: dict[str, pd.DataFrame], columns: Sequence[str]) -> None:
    """Refuses a column that is not numeric in every one of ``frames`` (name -> frame, the first the reference)
    and whose values in the first occur in another only under another type with the same label (``1`` and
    ``"1"``, ``0.5`` and ``"0.5"``): the exact-match tests, encodings and classifiers of the privacy checks,
    attacks and pMSE compare such values as they are and would read identical records as different."""
    (reference, ref), *others = frames.items()
    for name, df in others:
        for col in columns:
            if not (is_numeric(ref[col]) and is_numeric(df[col])):
                _check_category_types(ref[col], df[col], col, name, reference)


def beyond_float64(series: pd.Series) -> bool:
    """Whether ``series`` has an integer dtype (numpy, nullable or Arrow) and holds a value beyond 2**53 in
    magnitude, which float64 cannot hold (2**53 + 1 reads 2**53).

    >>> beyond_float64(pd.Series([2**53 + 1])), beyond_float64(pd.Series([2**53])), beyond_float64(pd.Series([1e300]))
    (True, False, False)
    """
    if not pd.api.types.is_integer_dtype(series.dtype):
        return False
    v = series.dropna().to_numpy()
    return bool((v > 2**53).any() or (v.dtype.kind == "i" and (v < -(2**53)).any()))


def numeric_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A copy with nullable and Arrow numeric columns (``Int64``, ``Float64``, ``float64[pyarrow]``) as float64
    (missing as NaN), except three kinds:

    - nullable integers without missing values: int64 (uint64 for ``UInt64``), so that the report labels their
      subgroups ``i=0`` as it labels a numpy int64 column's, not ``i=0.0`` (a nullable integer with missing
      values is float64, its subgroups labelled with integers all the same: :func:`integer_columns`);
    - narrow floats (``Float32``, ``float32[pyarrow]``, ``float16[pyarrow]``): numpy float32/float16, the
      precision they store (:func:`.._stats.dtype_precision`), so that the exact-match tests of the privacy
      checks and attacks compare them with a float64 frame at that precision, as a numpy float32 column;
    - nullable integers with missing values and a value beyond 2**53 in magnitude, which float64 cannot hold (ids:
      2**53 + 1 would read 2**53): kept, so that the privacy checks compare them exactly.

    Examples
    --------
    >>> a = pd.DataFrame({"x": pd.array([24.1, None], dtype="Float32"), "y": pd.array([1.5, None], dtype="Float64")})
    >>> numeric_frame(a).dtypes.astype(str).tolist()
    ['float32', 'float64']
    """
    out = df.copy()
    for c in out.columns:
        if is_numeric(out[c]) and isinstance(out[c].dtype, pd.api.extensions.ExtensionDtype):
            dt = out[c].dtype
            if pd.api.types.is_integer_dtype(dt) and not out[c].isna().any():
                out[c] = out[c].to_numpy(dtype=np.uint64 if dt.numpy_dtype == np.uint64 else np.int64)
            elif beyond_float64(out[c]):
                continue
            else:
                precision = dtype_precision(dt)  # "float64" for every dtype but a narrow float
                out[c] = out[c].to_numpy(dtype=np.dtype(precision), na_value=np.nan)
    return out


def integer_columns(columns: Sequence[str], *frames: pd.DataFrame) -> list[str]:
    """The ``columns`` that every one of ``frames`` holds as integers (numpy or nullable: ``int64``, ``Int64``).

    :func:`numeric_frame` reads a nullable integer column with missing values as float64 (to hold NaN); the
    report labels the whole values of these columns' subgroups as integers (``i=0``, not ``i=0.0``).

    Examples
    --------
    >>> a = pd.DataFrame({"i": pd.array([0, None], dtype="Int64"), "x": [0.0, 1.0]})
    >>> integer_columns(["i", "x"], a, numeric_frame(a)), integer_columns(["i", "x"], a, a)
    ([], ['i'])
    """
    return [c for c in columns if all(pd.api.types.is_integer_dtype(f[c].dtype) for f in frames)]


def require_columns(df: pd.DataFrame, columns: Sequence[str], label: str, *, numeric: bool = False,
                    origin: str | None = None) -> None:
    """Refuses a frame ``label`` that lacks one of ``columns`` (found in the frame ``origin``, when given) or,
    with ``numeric``, holds one as non-numbers (the columns are numeric in ``real_df``)."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        where = f"is in {origin} but not in {label}" if origin else f"is not in {label}"
        raise DataValidationError(
            f"Column {missing[0]!r} {where}: expected columns {list(columns)}, got {list(df.columns)}."
        )
    odd = [c for c in columns if numeric and not is_numeric(df[c])]
    if odd:
        raise DataValidationError(
            f"Column {odd[0]!r} is numeric in real_df but has dtype {df[odd[0]].dtype} in {label}: expected numbers."
        )


def check_frames(
    real_df: pd.DataFrame,
    synthetic_df: pd.DataFrame,
    columns: Sequence[str],
    name: str = "synthetic_df",
) -> None:
    """Checks two frames for an evaluation: non-empty, same columns, compatible dtypes, no all-NaN column,
    names distinct strings (not reserved), values finite and of a dtype that can be scored.

    Parameters
    ----------
    real_df, synthetic_df : pandas.DataFrame
        The frames to compare.
    columns : sequence of str
        The columns that both frames must hold.
    name : str, default="synthetic_df"
        How the messages name the second frame (``"holdout_df"`` when it is the holdout).
    """
    for label, df in (("real_df", real_df), (name, synthetic_df)):
        if not isinstance(df, pd.DataFrame):
            raise DataValidationError(f"{label} must be a pandas DataFrame: got {type(df).__name__}.")
        if len(df) == 0:
            raise DataValidationError(f"{label} is empty: expected at least 1 row, got 0.")
        check_columns(df, label)
    if len(columns) == 0:
        raise DataValidationError("No columns to evaluate: expected at least 1 column besides the weights, got 0.")
    require_columns(synthetic_df, columns, name, origin="real_df")
    for col in columns:
        r, s = real_df[col], synthetic_df[col]
        if is_numeric(r) != is_numeric(s):
            shown_r, shown_s = (list(map(to_python, f[col].dropna().unique()[:3])) for f in (real_df, synthetic_df))
            todo = (f"give the column of {name} real_df's text labels ({name}[{col!r}].astype(str) where real_df "
                    f"writes them as the numbers' text, '1' for 1; zero-padded where it writes '01')" if is_numeric(s)
                    else "give the column one type in both frames")
            raise DataValidationError(
                f"Column {col!r} has incompatible dtypes: expected "
                f"{'numeric' if is_numeric(r) else 'non-numeric'} like real_df ({r.dtype}), "
                f"got {s.dtype} in {name} (real_df holds {shown_r}, {name} {shown_s}): {todo}."
            )
        for label, series in (("real_df", r), (name, s)):
            _check_values(series, col, label)
            if series.isna().all():
                raise DataValidationError(
                    f"Column {col!r} is all missing in {label}: expected at least 1 non-missing value, got 0."
                )
        if not is_numeric(r):
            _check_category_types(r, s, col, name)
