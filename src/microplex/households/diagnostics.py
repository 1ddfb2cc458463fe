"""Household-level diagnostics: small pure functions of (data, weights) returning numbers.

Used by the tests and by ``benchmarks/bench_households.py`` to compare synthetic households with
real ones: distances between weighted distributions (:func:`tv_distance` and :func:`ks_distance`,
re-exported from :mod:`microplex._stats`: the evaluation registry's total variation and KS), the Gini
coefficient, and per-household summaries (size, age gap of the two oldest members, earners,
equivalized income, structure).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .._stats import ks_distance, tv_distance

__all__ = [
    "tv_distance",
    "ks_distance",
    "gini",
    "household_summary",
    "structural_violations",
]


def gini(x: Sequence, w: Sequence | None = None) -> float:
    """Weighted Gini coefficient of ``x``.

    Examples
    --------
    >>> round(gini([1, 1, 1, 1]), 6), round(gini([0, 0, 0, 1]), 6)
    (0.0, 0.75)
    """
    x = np.asarray(x, dtype=float)
    w = np.ones(len(x)) if w is None else np.asarray(w, dtype=float)
    order = np.argsort(x, kind="stable")
    x, w = x[order], w[order]
    cw = np.cumsum(w)
    cxw = np.cumsum(x * w)
    total_w, total = cw[-1], cxw[-1]
    # Area under the Lorenz curve by trapezoids over the weighted population shares.
    lorenz = np.concatenate([[0.0], cxw / total])
    pop = np.concatenate([[0.0], cw / total_w])
    return float(1 - np.sum((pop[1:] - pop[:-1]) * (lorenz[1:] + lorenz[:-1])))


def household_summary(
    persons: pd.DataFrame,
    household_id: str,
    age_var: str,
    *,
    earner_var: str | None = None,
    person_income: Sequence[str] = (),
    household_income: Sequence[str] = (),
    household_deductions: Sequence[str] = (),
    adult_age: float = 16,
    equivalence_age: float = 14,
) -> pd.DataFrame:
    """One row per household: size, age gap of the two oldest, earners, equivalized income.

    The equivalized income is the household's disposable income (persons' ``person_income``
    summed over members, plus ``household_income``, minus ``household_deductions``) divided by
    the modified OECD scale, as in EU-SILC (``eqIncome`` / ``eqSS``): 1 for the first member, whatever
    their age, plus 0.5 for each further member aged ``equivalence_age`` or more and 0.3 for each
    further younger member (a household of children alone starts at 1 too). Missing person incomes
    count as 0.

    Examples
    --------
    >>> p = pd.DataFrame({"h": [1, 1, 2], "age": [40, 10, 30], "inc": [100.0, np.nan, 0.0]})
    >>> household_summary(p, "h", "age", earner_var="inc", person_income=["inc"])
       size  age_gap  earners  children  eq_scale  eq_income
    h
    1     2     30.0        1         1       1.3  76.923077
    2     1      NaN        0         0       1.0   0.000000
    """
    g = persons.groupby(household_id, sort=False)
    age = persons[age_var].astype(float)
    top2 = age.groupby(persons[household_id], sort=False).nlargest(2)
    firsts = top2.groupby(level=0, sort=False)
    gap = firsts.first() - firsts.nth(1).droplevel(1).reindex(firsts.first().index)
    out = pd.DataFrame({"size": g.size()})
    out["age_gap"] = gap.reindex(out.index)
    if earner_var is not None:
        out["earners"] = (persons[earner_var].fillna(0) > 0).groupby(persons[household_id], sort=False).sum()
    out["children"] = (age < adult_age).groupby(persons[household_id], sort=False).sum()
    n_old = (age >= equivalence_age).groupby(persons[household_id], sort=False).sum()
    # the first member weighs 1 whatever their age: an older one if any, else a younger one
    out["eq_scale"] = 1 + 0.5 * np.maximum(n_old - 1, 0) + 0.3 * (out["size"] - np.maximum(n_old, 1))
    if person_income or household_income:
        inc = persons[list(person_income)].fillna(0).sum(axis=1).groupby(persons[household_id], sort=False).sum()
        first = g[list(household_income) + list(household_deductions)].first()
        inc = inc + first[list(household_income)].sum(axis=1) - first[list(household_deductions)].sum(axis=1)
        out["eq_income"] = inc / out["eq_scale"]
    return out


def structural_violations(
    persons: pd.DataFrame, household_id: str, size_var: str, age_var: str, adult_age: float = 16
) -> float:
    """Share of households whose size differs from their number of person records or that have
    no member aged at least ``adult_age`` (children only).

    Examples
    --------
    >>> p = pd.DataFrame({"h": [1, 1, 2], "hsize": [2, 2, 2], "age": [40, 3, 10]})
    >>> structural_violations(p, "h", "hsize", "age")
    0.5
    """
    g = persons.groupby(household_id, sort=False)
    bad = (g.size() != g[size_var].first()) | (g[age_var].max() < adult_age)
    return float(bad.mean())
