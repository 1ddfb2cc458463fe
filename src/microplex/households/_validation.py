"""Checks of person-level input with household structure; messages name the household."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .._files import codes_hint
from .._errors import DataValidationError
from .._params import to_python
from .._stats import check_household_ids
from ._params import SIZE_COL, is_number, size_matches

__all__ = ["NEAR_SIZE_SHARE", "check_households", "check_near_sizes", "check_numeric", "check_size_copies",
           "check_sizes", "na_age_thresholds"]

#: Share of households from which a household variable equal to the number of person records there (but not in
#: every household) is taken for the household size with broken person records, when no size is found.
NEAR_SIZE_SHARE = 0.9


def _ids(values: Sequence, limit: int = 5) -> str:
    values = list(values)
    shown = ", ".join(repr(to_python(v)) for v in values[:limit])
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")


def check_households(persons: pd.DataFrame, household_id: str, household_cols: Sequence[str], *,
                     rows: str = "persons") -> None:
    """Every person has a household id; household columns are complete and constant within households.
    ``rows`` names the frame in the messages: ``"persons"`` (person records, as ``fit`` takes them) or the
    name of a frame of one row per household (``generate``'s ``"households"``).

    Examples
    --------
    >>> df = pd.DataFrame({"hid": [1, 1, 2], "region": ["a", "b", "a"]})
    >>> check_households(df, "hid", ["region"])
    Traceback (most recent call last):
    ...
    microplex._errors.DataValidationError: Household variable 'region' varies within household 1 ...
    """
    missing = persons[household_id].isna().to_numpy()
    if missing.any():
        where = _ids(persons.index[missing])
        raise DataValidationError(
            f"{int(missing.sum())} persons have no household id (column {household_id!r} missing at rows "
            f"{where}); every person must belong to a household." if rows == "persons" else
            f"{int(missing.sum())} rows of {rows!r} have no household id (column {household_id!r} missing at "
            f"rows {where}); every household needs one."
        )
    check_household_ids(persons[household_id], household_id, rows)
    groups = persons.groupby(household_id, sort=False)
    for col in household_cols:
        na = persons[col].isna().to_numpy()
        if na.any():
            bad = pd.unique(persons.loc[na, household_id])
            raise DataValidationError(
                f"Household variable {col!r} is missing in household {_ids(bad)}; household variables "
                "must be given for every household."
            )
        counts = groups[col].nunique()
        varying = counts.index[counts.to_numpy() > 1]
        if len(varying):
            first = persons.loc[persons[household_id] == varying[0], col]
            raise DataValidationError(
                f"Household variable {col!r} varies within household {_ids(varying)} (household "
                f"{_ids(varying[:1])} has {_ids(pd.unique(first))}); household variables must be "
                "constant within a household."
            )


def check_near_sizes(hh: pd.DataFrame, counts: pd.Series, hh_vars: Sequence[str], skip: Sequence[object]) -> None:
    """Without a size (no ``size_var``, and no household variable equal to the number of person records in every
    household), refuses a household variable equal to that number in at least :data:`NEAR_SIZE_SHARE` of the
    households: the household size, with person records missing or repeated in the others (persons filtered out,
    a row duplicated). The size was then derived as ``n_persons`` and that column drawn as an ordinary household
    variable, disagreeing with the persons drawn (``hsize`` 1 with 8 persons). ``hh`` holds one row per household,
    indexed by its id, ``counts`` its person records.

    Examples
    --------
    >>> hh = pd.DataFrame({"hsize": [1, 2, 2, 3] * 5}, index=range(1, 21))
    >>> counts = pd.Series([1, 2, 2, 3] * 4 + [1, 2, 2, 4], index=hh.index)
    >>> check_near_sizes(hh, counts, ["hsize"], [])
    Traceback (most recent call last):
    ...
    microplex._errors.DataValidationError: Household variable 'hsize' equals the number of person records in 19 of 20 households but not in 1 (household 20; household 20 has hsize=3 and 4 person records)...
    """
    for col, same in size_matches(hh, counts, hh_vars, skip).items():
        if same.all() or same.mean() < NEAR_SIZE_SHARE:
            continue
        off = np.flatnonzero(~same)
        first = off[0]
        raise DataValidationError(
            f"Household variable {col!r} equals the number of person records in {int(same.sum()):,} of {len(same):,} "
            f"households but not in {len(off):,} (household{'s' * (len(off) > 1)} {_ids(hh.index[off])}; household "
            f"{_ids(hh.index[off[:1]])} has {col}={to_python(hh[col].iloc[first])!r} and {int(counts.iloc[first])} "
            f"person records). Without 'size_var' "
            f"the household size is the household variable equal to the number of person records in every "
            f"household; with none, it would be derived as {SIZE_COL!r} and {col!r} drawn as an ordinary household "
            f"variable, disagreeing with the persons drawn. If {col!r} is the household size, person records of "
            f"those households are missing or repeated: correct or drop them (size_var={col!r} lists them all). If "
            f"it is not the size, add a column of each household's person count and name it with 'size_var'."
        )


def check_numeric(households: pd.DataFrame, household_id: str, columns: Sequence[str]) -> None:
    """Household variables modelled as numbers are given as finite numbers (not booleans, not text): ``generate``
    reads them as numbers, so True/False were read as 1/0 and text failed with a raw ValueError.

    Examples
    --------
    >>> check_numeric(pd.DataFrame({"hid": [1, 2], "income": [True, False]}), "hid", ["income"])
    Traceback (most recent call last):
    ...
    microplex._errors.DataValidationError: Household variable 'income' must be numeric, as in training. Got dtype bool instead.
    """
    for col in columns:
        if not is_number(households[col]):
            raise DataValidationError(f"Household variable {col!r} must be numeric, as in training. Got dtype "
                                      f"{households[col].dtype} instead." + codes_hint(households[col]))
        bad = ~np.isfinite(households[col].to_numpy(float))
        if bad.any():
            raise DataValidationError(
                f"Household variable {col!r} is infinite in household {_ids(households.loc[bad, household_id])}; "
                "household variables must be finite numbers."
            )


def check_sizes(ids: pd.Series, sizes: pd.Series, counts: pd.Series | None, size_col: str) -> None:
    """Household sizes are integers >= 1 and, when ``counts`` is given, equal the person counts.

    Examples
    --------
    >>> check_sizes(pd.Series([7, 8]), pd.Series([2, 0]), None, "hsize")
    Traceback (most recent call last):
    ...
    microplex._errors.DataValidationError: Household 8 has size 0 (column 'hsize')...; household sizes must be integers >= 1.
    """
    s = pd.to_numeric(sizes, errors="coerce").to_numpy(float)
    bad = ~np.isfinite(s) | (s < 1) | (s != np.round(s))
    if bad.any():
        i = np.flatnonzero(bad)
        raise DataValidationError(
            f"Household {_ids(ids.iloc[i])} has size {_ids(sizes.iloc[i])} (column {size_col!r}); "
            "household sizes must be integers >= 1."
        )
    if counts is not None:
        c = counts.to_numpy(float)
        off = np.flatnonzero(c != s)
        if len(off):
            i = off[0]
            raise DataValidationError(
                f"Household {_ids(ids.iloc[off])} has {size_col}={int(s[i])} but {int(c[i])} person "
                f"records (household {_ids(ids.iloc[[i]])}); the size must equal the number of persons."
            )


def check_size_copies(households: pd.DataFrame, household_id: str, size_col: str, copies: Sequence[str]) -> None:
    """The copies of the size given among ``households`` (to :meth:`HouseholdSynthesizer.generate`) equal the size
    ``size_col`` (already checked by :func:`check_sizes`) in every household: each is written as the size, the
    number of persons drawn.

    Examples
    --------
    >>> hh = pd.DataFrame({"hid": [7, 8], "hsize": [2, 3], "n_persons": [2, 4]})
    >>> check_size_copies(hh, "hid", "hsize", ["n_persons"])
    Traceback (most recent call last):
    ...
    microplex._errors.DataValidationError: Household variable 'n_persons' is a copy of the size 'hsize'...
    """
    size = pd.to_numeric(households[size_col]).to_numpy(float)
    for col in copies:
        values = households[col]
        same = np.zeros(len(size), dtype=bool)  # text or booleans are no size
        if is_number(values):
            same = values.to_numpy(dtype=float, na_value=np.nan) == size
        if not same.all():
            bad = np.flatnonzero(~same)
            first = to_python(values.iloc[bad[0]]), to_python(households[size_col].iloc[bad[0]])
            raise DataValidationError(
                f"Household variable {col!r} is a copy of the size {size_col!r} (it equalled the number of person "
                f"records in every training household), but differs from it in household "
                f"{_ids(households[household_id].iloc[bad])} ({col}={first[0]!r}, {size_col}={first[1]!r} in "
                f"household {_ids(households[household_id].iloc[bad[:1]])}). Give the size's values, or leave the "
                f"column out: it is written as a copy of {size_col!r}, the number of persons drawn."
            )


def applicable_from(na: np.ndarray, age: np.ndarray) -> float | None:
    """The youngest age at which a person variable has a value (``na``: where it is missing; persons without an
    age left out): its missing values below that age are "not applicable". ``None`` when no such person has one.

    >>> applicable_from(np.array([True, False, False]), np.array([5.0, 30.0, 40.0]))
    30.0
    """
    given = ~na & ~np.isnan(age)
    return float(age[given].min()) if given.any() else None


def na_age_thresholds(persons: pd.DataFrame, columns: Sequence[str], age_var: str | None) -> dict[str, float]:
    """For each column with missing values, the age below which it is missing ("not applicable").

    A column may be missing only for exactly the persons younger than some age (children's
    income in EU-SILC); other missing values are rejected, naming the column.

    Examples
    --------
    >>> df = pd.DataFrame({"age": [5, 30, 40], "income": [np.nan, 1.0, 0.0]})
    >>> na_age_thresholds(df, ["income"], "age")
    {'income': 30.0}
    """
    out: dict[str, float] = {}
    if age_var is not None and persons[age_var].isna().any():
        n = int(persons[age_var].isna().sum())
        raise DataValidationError(
            f"The 'age_var' column {age_var!r} has {n} missing values; an age must be given for every person "
            "(it orders the members and marks where other variables are not applicable)."
        )
    for col in columns:
        na = persons[col].isna().to_numpy()
        if not na.any():
            continue
        if age_var is None:
            raise DataValidationError(
                f"Person variable {col!r} has {int(na.sum())} missing values; missing values are "
                "only supported when they mark 'not applicable' below an age (set 'age_var')."
            )
        age = persons[age_var].to_numpy(float)
        if na.all():
            raise DataValidationError(f"Person variable {col!r} is missing for every person.")
        threshold = applicable_from(na, age)  # every age is given (checked above) and some value
        if not (age[na] < threshold).all():
            raise DataValidationError(
                f"Person variable {col!r} has {int(na.sum())} missing values that are not exactly the "
                f"persons younger than some age (it is observed from age {threshold:g} on, but missing "
                f"for {int((na & (age >= threshold)).sum())} persons at least that old); drop or impute them."
            )
        out[col] = threshold
    return out
