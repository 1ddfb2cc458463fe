"""Input checks shared by the estimators; messages name the column and show expected vs got."""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._errors import DataValidationError
from .._files import (FORMATS, dot_missing_column, dot_missing_fix, formatted_number_column, ibm_zeros, is_text,
                      padded_integer, text_numbers_fix)
from .._params import memory_cap, shown, to_python
from .._stats import check_weight_dtype, value_family
from .._stats import check_weights as _check_weights

__all__ = [
    "RESERVED_NAMES", "check_allocation", "check_column", "check_frame", "check_reserved", "check_unique_columns",
    "check_weights", "memory_cap",
]


def check_frame(df: object, columns: Sequence[str], what: str, *, allow_empty: bool = False) -> None:
    """Checks that ``df`` is a DataFrame holding ``columns`` (and rows, unless ``allow_empty``)."""
    if not isinstance(df, pd.DataFrame):
        raise DataValidationError(f"{what!r} must be a pandas DataFrame. Got {type(df).__name__} instead.")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataValidationError(
            f"{what!r} is missing columns {missing}; it has {list(df.columns)[:20]}."
        )
    check_unique_columns(df, columns, what)
    if not allow_empty and len(df) == 0:
        raise DataValidationError(f"{what!r} is empty; at least one row is needed.")


def check_weights(df: pd.DataFrame, weight_col: str | None) -> np.ndarray:
    """Survey weights as float64 (N,): finite, non-negative, with a positive sum."""
    if weight_col is None:
        return np.ones(len(df))
    check_weight_dtype(df[weight_col], f"Weight column {weight_col!r}")
    return _check_weights(df[weight_col].to_numpy(float), len(df), f"Weight column {weight_col!r}")


#: Column names used internally (the training weights in a model file); a column may not be named so.
RESERVED_NAMES = ("__weight__",)


def check_unique_columns(df: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    """Refuses a frame in which one of ``columns`` appears more than once (``df[name]`` would be a frame)."""
    counts = pd.Series(1, index=pd.Index(df.columns, dtype=object)).groupby(level=0, sort=False).size()
    dup = [c for c in dict.fromkeys(columns) if counts.get(c, 0) > 1]
    if dup:
        raise DataValidationError(f"{what!r} has duplicated columns {dup}; give every column a distinct name.")


def text_conditions(synth: Any) -> list[str]:
    """The categorical conditions of the fitted ``synth`` whose training categories are all text (household sizes
    ``'1'``, ``'2'``, ``'3+'``; county codes ``'013'``): a conditions CSV's column of them is read as the text it
    writes, also where its cells all look like numbers (:func:`microplex.io.read_table`'s ``text``), by the command
    line's ``generate`` and the pipeline's generate stage alike."""
    enc = synth.condition_encoder_
    return [c for c, kind in enc.kinds.items()
            if kind == "categorical" and enc.stats[c] and all(isinstance(v, str) for v in enc.stats[c])]


def check_no_targets(columns: Sequence[str], targets: Sequence[str], what: str = "conditions") -> None:
    """Refuses conditions that already hold target columns: the model draws those, so their values would be lost
    (the command line's and the pipeline's in-memory generation replaced them without a word; streamed, refused).
    ``what`` is named as the command line's flag that gave it within :func:`microplex._params.flags`
    (``'--conditions'``)."""
    clash = [c for c in targets if c in set(columns)]
    if clash:
        raise DataValidationError(
            f"{shown(what)!r} already has target columns {clash}; drop them (the model synthesizes them)."
        )


def check_reserved(names: Sequence[str], what: str, reserved: Sequence[str] = RESERVED_NAMES) -> None:
    """Refuses column names that microplex uses internally."""
    bad = [n for n in names if n in reserved]
    if bad:
        raise DataValidationError(
            f"{what} {bad} use names reserved for microplex's internal columns {list(reserved)}; rename them."
        )


def is_number(series: pd.Series) -> bool:
    """Whether ``series`` holds numbers (a numeric dtype other than bool)."""
    return pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype)


def missing_as_nan(data: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """``data`` with pandas' NA in those of the columns ``names`` that are nullable numbers (``Int64``,
    ``Float64``) as NaN, in float64 columns (the encoders read floats; ``to_numpy(float)`` refuses NA);
    ``data`` itself when none has."""
    nullable = [n for n in names if isinstance(data[n].dtype, pd.api.extensions.ExtensionDtype) and is_number(data[n])
                and data[n].isna().any()]
    return data.assign(**{n: data[n].to_numpy(float, na_value=np.nan) for n in nullable}) if nullable else data


def round_declared_integer(data: pd.DataFrame, name: str) -> pd.DataFrame:
    """``data`` with the float target ``name``, declared ``kind="integer"``, rounded to whole numbers, said in a
    ``UserWarning`` when some of its values are not; ``data`` itself when all are (or it is not a float column).

    An integer target is modelled on whole numbers and drawn as such ("rounded on output"): fitted on fractional
    values, its point masses (a top code of 25564.67), segments and rounding grid kept their fractions, 64% of
    cps1's re78 draws were not whole numbers, and the model file had rounding levels its loader refuses.
    """
    if not pd.api.types.is_float_dtype(data[name].dtype):
        return data
    values = data[name].to_numpy(float, na_value=np.nan)
    given = ~np.isnan(values)
    fractional = given & (values != np.round(values))
    if not fractional.any():
        return data
    warnings.warn(
        f"Target column {name!r} is declared kind='integer' but {fractional.sum() / given.sum():.0%} of its values are "
        f"not whole numbers (e.g. {to_python(values[fractional][0])!r}): it is modelled on its values rounded to whole "
        "numbers, and drawn as such. Round it yourself to silence this, or declare it 'continuous' to keep the "
        "fractions.", UserWarning, stacklevel=4)
    return data.assign(**{name: np.round(values)})


#: Magnitude (2**48, about 2.8e14) from which an integer target is modelled as continuous. An integer target is
#: dequantized: trained on its values plus uniform noise within half a unit, its segment bounded half a unit beyond
#: its extreme values. float64's spacing is 1/32 below 2**48, 1/16 above, 1 at 2**52 and 2 beyond 2**53: the bound
#: ``min - 0.5`` and the noise rounded onto the smallest value, whose ``log(y - lower)`` was ``-inf`` (an int64
#: column of values up to 1e17 failed with a non-finite training loss; the same values as float64 fitted).
INTEGER_LIMIT = 2.0**48


def integer_kind(name: str, largest: float, declared: bool, source: str = "values", stacklevel: int = 4) -> str:
    """The kind of the integer target ``name`` whose ``source`` (its values, or its public bounds) reach ``largest`` in
    magnitude: ``"integer"`` below :data:`INTEGER_LIMIT`; beyond it ``"continuous"`` with a ``UserWarning`` (its
    draws are still rounded to whole numbers of an integer dtype), or, ``declared`` ``kind="integer"`` in the schema,
    DataValidationError.

    Examples
    --------
    >>> integer_kind("v", 1e14, declared=False)
    'integer'
    """
    if not largest >= INTEGER_LIMIT:
        return "integer"
    why = (f"its {source} reach {largest:.6g}, beyond 2**48 (about 2.8e14), where float64 cannot resolve the half "
           "units an integer target is modelled with")
    if declared:
        raise DataValidationError(
            f"Target column {name!r} is declared kind 'integer' but {why}. Declare it 'continuous' (an integer "
            "column's draws are still rounded to whole numbers), or rescale it (e.g. to thousands).")
    warnings.warn(
        f"Target column {name!r}: {why}; it is modelled as continuous, its draws rounded to whole numbers of its "
        "integer dtype. Rescale it (e.g. to thousands) to model it on its integers, or declare kind='continuous' to "
        "silence this.", UserWarning, stacklevel=stacklevel)
    return "continuous"


def complete_rows(frame: pd.DataFrame, columns: Sequence[str], who: str, consequence: str) -> pd.DataFrame:
    """The records of ``frame`` with every one of ``columns`` observed; leaving the others out is said in a
    ``UserWarning`` naming ``who`` (the source), the columns and the counts, then ``consequence`` (what that means
    for the result), as R's ``lm`` says "observations deleted due to missingness"."""
    observed = frame[list(columns)].notna()
    keep = observed.all(axis=1)
    if not keep.all():
        counts = {c: int(n) for c, n in (~observed).sum().items() if n}
        warnings.warn(f"{who}: {int((~keep).sum()):,} of {len(frame):,} records miss values of {counts} and "
                      f"{consequence}", UserWarning, stacklevel=3)
    return frame.loc[keep]


def column_label(name: str, role: str) -> str:
    """How refusals and warnings name a model column: ``"Target column 'income'"``."""
    return f"{role[:1].upper() + role[1:]} column {name!r}"


def check_column(series: pd.Series, name: str, role: str, *, missing: bool = False) -> None:
    """Checks that a column holds values microplex can model, naming it otherwise.

    Refused: datetime, timedelta, period, interval and complex dtypes; missing values (unless
    ``missing``: the column's missing values are modelled) and infinite ones; object or
    category columns whose values are not all of one scalar type among str, bool, int and float
    (lists, bytes, dates, a mix of strings and numbers).
    """
    dtype = series.dtype
    label = column_label(name, role)
    inner = dtype.categories.dtype if isinstance(dtype, pd.CategoricalDtype) else dtype
    if (
        pd.api.types.is_datetime64_any_dtype(inner)
        or pd.api.types.is_timedelta64_dtype(inner)
        or pd.api.types.is_complex_dtype(inner)
        or isinstance(inner, pd.PeriodDtype | pd.IntervalDtype | pd.SparseDtype)
    ):
        raise DataValidationError(
            f"{label} has dtype {dtype}, which microplex does not model; convert it to numbers "
            "(e.g. days since a date) or to strings first."
        )
    bad = series.isna().to_numpy(bool)
    numeric = is_number(series)
    if missing:
        infinite = np.isinf(series.to_numpy(float, na_value=np.nan)) if numeric else np.zeros(len(series), bool)
        if infinite.any():
            raise DataValidationError(f"{label} has {int(infinite.sum())} infinite values; microplex does not model "
                                      "them: drop those rows or give them finite values first.")
        series, bad = series.dropna(), np.zeros(len(series), dtype=bool)  # the values given are checked below
    elif numeric and not bad.any():
        bad = ~np.isfinite(series.to_numpy(float))
    if bad.any():
        raise DataValidationError(
            f"{label} has {int(bad.sum())} missing or infinite values; microplex models missing values only in a fit "
            "without differential privacy, and given to a model only in columns whose training values had some: "
            "drop or impute those rows first."
        )
    found = ibm_zeros(series.to_numpy(float, na_value=np.nan), name) if numeric else None
    if found:
        raise DataValidationError(f"{label} {found}")
    if dtype == object or isinstance(dtype, pd.CategoricalDtype):
        values = series.cat.categories.to_numpy(object) if isinstance(dtype, pd.CategoricalDtype) else series.to_numpy(object)
        families = {value_family(v) for v in values}
        if None in families:
            odd = next(v for v in values if value_family(v) is None)
            number = isinstance(odd, numbers.Number)  # decimal.Decimal from a SQL NUMERIC column, Fraction
            raise DataValidationError(
                f"{label} holds a value of type {type(odd).__name__} ({odd!r:.40}); categorical values must be "
                "str, bool, int or float"
                + ("; numbers stored as objects are not read as numbers: convert them first (.astype(float))."
                   if number else ".")
            )
        if len(families) > 1:
            firsts = {value_family(v): v for v in reversed(values)}  # the first value of each type
            shown = " and ".join(repr(to_python(firsts[f])) for f in sorted(families)[:2])
            hint = (" (numbers beside text codes such as 'Refused': recode the codes as your survey documents them, "
                    "e.g. drop or impute those rows; or, for categories, make every value a str)"
                    if "str" in families and families & {"int", "float"} else " (e.g. all str)")
            raise DataValidationError(
                f"{label} mixes value types {sorted(families)} ({shown}); give every value one type{hint}."
            )


def check_numbers_as_text(series: pd.Series, name: str, role: str) -> None:
    """Refuses a text column whose values are all numbers, some written with thousands separators or a currency
    sign, or all with a percent sign (``"25,564.67"``, ``"$1,200"``, ``"12.5%"``, a spreadsheet's export), or
    numbers whose missing values are written ``.`` (a SAS or Stata export): fitted as categories, each value a
    category of its own drawn as copies of training values. Checked when fitting (a model fitted before keeps its
    categories)."""
    label = column_label(name, role)
    dot = dot_missing_column(series)
    if dot is not None:
        raise DataValidationError(
            f"{label} holds numbers written as text, its missing values written {dot!r} (as SAS, Stata or "
            "fixed-width exports write them), which would be modelled as categories; convert them first: "
            f"{dot_missing_fix(name)} (a CSV file: microplex.io.read_table reads them as numbers and missing values)."
        )
    example = formatted_number_column(series)
    if example is not None:
        raise DataValidationError(
            f"{label} holds numbers written as text ({example!r}: {FORMATS}), which would be modelled as "
            f"categories; convert them first: {text_numbers_fix(name, example)}."
        )


def check_numbers_as_objects(series: pd.Series, name: str, role: str) -> None:
    """Refuses a column of dtype object whose values, missing ones aside, are all numbers (int or float, not bool:
    a float column after ``df.replace({np.nan: None})``, a step before SQL or JSON, or read from a JSON file):
    fitted as categories, each value a category of its own drawn as copies of training values (an income of 668
    values: every draw a training income, 0.2% drawn missing for 29% in the data). Not called for a column the user
    declared categorical (codes held as Python ints). Checked when fitting, with :func:`check_numbers_as_text`."""
    if series.dtype != object or pd.api.types.infer_dtype(series, skipna=True) not in (
            "integer", "floating", "mixed-integer-float"):
        return
    example = to_python(series.dropna().iloc[0])
    raise DataValidationError(
        f"{column_label(name, role)} holds numbers in a column of dtype object (e.g. {example!r}), which would be "
        "modelled as categories, each value one of its own, every draw a copy of a training value; convert them "
        f"first: pd.to_numeric(df[{name!r}]) (None becomes NaN, a missing value). If they are codes, declare the "
        f"column categorical: schema={{{name!r}: VariableSpec(kind='categorical')}} (command line: --categorical "
        f"{name})."
    )


#: Fewest distinct values of a column modelled as categories that :func:`check_copied_categories` judges: codes
#: with fewer (a county, a region, a household size) are categories in silence.
MIN_JUDGED_VALUES = 20


def check_copied_categories(series: pd.Series, name: str, role: str, weights: np.ndarray, drawn: str = "",
                            categorical: bool = False) -> None:
    """Refuses a column modelled as categories whose values are mostly one record's each: every drawn value is a
    category seen in training, so a released file would carry real records' names, ids or free text.

    Judged: a column modelled as categories that is a target, a condition drawn by the condition model
    (``condition_model=True``; conditions given to ``generate`` are the user's, not drawn), or a household
    geography (allotted by its training shares; ``drawn`` says how, in parentheses, in the message): a text column
    (object, str or category dtype, :func:`microplex._files.is_text`) always, a numeric one where ``categorical``
    says the model draws it as categories (declared categorical, an integer target of few values, a geography):
    ids declared categorical (``categorical=["person_id"]``) were drawn as training ids, 259 distinct ones in 400
    draws, every one a training record's. Numbers that repeat (ages, codes shared by many records) pass as text
    that repeats does. Its values are counted on the records of positive
    ``weights`` (those the model learns from: a category that only records of weight 0 hold is never drawn), each
    record once whatever its weight; missing values are no value
    (they are drawn as a state of their own, copying nothing). With at least :data:`MIN_JUDGED_VALUES` distinct
    values of which more than half are each held by one record, ``DataValidationError`` naming the column and the
    counts (no value: they are a record's). Integers written with leading zeros (``"0009189"``, amounts padded to
    a fixed width read from a file as codes, :func:`microplex._files.padded_integer`) are refused naming their
    reading as numbers instead; such a column whose values repeat (heaped amounts, or codes with many values: a
    file cannot tell them apart) is modelled as categories with a ``UserWarning`` naming that reading.
    """
    if not (categorical or is_text(series)):
        return
    counts = series[np.asarray(weights) > 0].dropna().astype(object).value_counts()
    distinct = len(counts)
    if distinct < MIN_JUDGED_VALUES:
        return
    single = int((counts.to_numpy() == 1).sum())
    label = column_label(name, role)
    drawn = f" ({drawn})" if drawn else ""
    example = padded_integer(counts.index)
    convert = (f"pd.to_numeric(df[{name!r}]), or from the file microplex.io.read_table(path, numeric=[{name!r}]) "
               f"(command line: --numeric {name}; pipeline: the source's numeric = [{name!r}])")
    if 2 * single > distinct:
        if example is not None:
            raise DataValidationError(
                f"{label} holds integers written with leading zeros ({example!r}), read as codes: {single:,} of its "
                f"{distinct:,} values are each held by one record, so as categories{drawn} every drawn value would "
                f"be a copy of a training value. If they are amounts, read them as numbers: {convert}."
            )
        raise DataValidationError(
            f"{label} is modelled as categories{drawn} and {single:,} of its {distinct:,} distinct values (on the "
            "records of positive weight) are each held by one record: every drawn value would be a copy of one, so "
            "a released file would carry real records' values (names, ids, free text). Drop the column, or map it "
            "to a coarser code that many records share (a region for an address, an id's prefix)."
        )
    if example is not None:
        warnings.warn(f"{label} holds integers written with leading zeros ({example!r}), read as codes: it is "
                      f"modelled as {distinct:,} categories{drawn}, each drawn value one of them. If they are amounts "
                      f"(padded to a fixed width), read them as numbers: {convert}.", UserWarning, stacklevel=4)


#: Fewest digits of an all-nines largest value read as a missing-value code (9999, 999999, 9999999: IPUMS writes
#: "not applicable" incomes so); and the least share of the records holding a code.
NINES_DIGITS, CODE_SHARE = 4, 0.005
#: Negative values read as missing-value codes beside values that are otherwise never negative: survey exports'
#: "not applicable", "don't know", "refused" (-1, -8, -9; -99, -999), at most this many distinct ones, one of them
#: a flag of nines or eights (-8, -9, -99, ...: small negatives alone, -1 to -4, are amounts: cps1988's years of
#: experience, EU-SILC's age -1 of a child born after the income year).
NEGATIVE_CODES, MAX_NEGATIVE_CODES = frozenset({-1, -2, -3, -4, -5, -6, -7, -8, -9, -99, -999, -9999}), 3
FLAG_CODES = frozenset({-8, -9, -99, -999, -9999})


def warn_missing_codes(series: pd.Series, name: str, role: str) -> None:
    """Warns when a numeric column holds what looks like codes for missing values, not amounts, naming the recode:

    - its largest value is all nines (at least :data:`NINES_DIGITS` digits: ``9999999`` is IPUMS' "N/A" income),
      held by at least :data:`CODE_SHARE` of the records, and more than twice every value below it (codes within
      10 of it, ``999998`` for "missing", aside);
    - its negative values are a few (at most :data:`MAX_NEGATIVE_CODES`) of :data:`NEGATIVE_CODES` (-1, -8, -9:
      "not applicable", "don't know", "refused" in many survey exports), one of them in :data:`FLAG_CODES`, each
      held by at least :data:`CODE_SHARE` of the records, and no other value is negative.

    Modelled as values they are point masses (incomes of ten million drawn for children, or of -9), and a
    calibrated total counts them. A file cannot say they are codes; other values are not judged."""
    if not is_number(series) or pd.api.types.is_bool_dtype(series):
        return
    x = series.to_numpy(float, na_value=np.nan)
    x = x[np.isfinite(x)]
    if not len(x):
        return
    label = column_label(name, role)
    top = float(x.max())
    if top >= 10 ** NINES_DIGITS - 1 and top == np.floor(top) and set(f"{top:.0f}") == {"9"}:
        held = int(np.count_nonzero(x == top))
        below = x[x < top - 10]
        if held >= CODE_SHARE * len(x) and len(below) and top > 2 * float(below.max()):
            warnings.warn(
                f"{label}: its largest value {top:,.0f} (held by {held:,} of {len(x):,} records) is all nines and "
                "more than twice every other value: a code for a missing or \"not applicable\" value (IPUMS writes "
                "N/A incomes so)? It is modelled as a value (a point mass); if it is a code, recode it as missing "
                f"first: df[{name!r}] = df[{name!r}].replace({top:.0f}, np.nan).", UserWarning, stacklevel=4)
    negative = x[x < 0]
    if len(negative) and len(negative) < len(x):
        codes, counts = np.unique(negative, return_counts=True)
        if (len(codes) <= MAX_NEGATIVE_CODES and all(float(c) in NEGATIVE_CODES for c in codes)
                and any(float(c) in FLAG_CODES for c in codes) and counts.min() >= CODE_SHARE * len(x)):
            shown = ", ".join(f"{c:.0f} ({k:,} records)" for c, k in zip(codes, counts, strict=True))
            warnings.warn(
                f"{label}: its only negative values are {shown} of {len(x):,}, and no other value is negative: codes "
                "for missing values (\"not applicable\", \"don't know\", \"refused\" in many survey exports)? They "
                "are modelled as values (point masses); if they are codes, recode them as missing first: "
                f"df[{name!r}] = df[{name!r}].mask(df[{name!r}] < 0).", UserWarning, stacklevel=4)


def check_allocation(n_bytes: float, what: str, hint: str = "") -> None:
    """Refuses, before allocating, a result estimated at more than :func:`memory_cap` bytes."""
    cap = memory_cap()
    if n_bytes > cap:
        raise DataValidationError(
            f"{what} would take about {n_bytes / 2**30:,.1f} GiB, more than this machine's memory "
            f"({cap / 2**30:,.1f} GiB).{(' ' + hint) if hint else ''}"
        )
