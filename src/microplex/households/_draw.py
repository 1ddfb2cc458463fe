"""Drawing households for :meth:`HouseholdSynthesizer.sample`: low-noise allotment, then the household model.

With a geography, its values are allotted by systematic rounding of their weighted training
shares, ``oversample`` candidates are drawn per household and kept so that sizes follow the
candidates' shares; without one, the sizes are allotted and the other household variables drawn
given the size.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .._errors import DataValidationError
from .._params import memory_cap
from .._random import int_seed
from .._stats import systematic_counts

if TYPE_CHECKING:
    from ._synthesizer import HouseholdSynthesizer

__all__ = ["check_output_size", "draw_households", "geography_dtype"]


def draw_households(
    hs: HouseholdSynthesizer, n: int, m: int, seed: int | None
) -> tuple[pd.DataFrame, np.random.SeedSequence]:
    """``n`` households (id, early household variables, weight) and the seed of their persons."""
    ss_h, ss_r, ss_p = np.random.SeedSequence(seed).spawn(3)
    rng = np.random.default_rng(ss_r)
    if hs.allotted_ == hs.geography:
        values, shares = hs.geography_shares_
        counts = systematic_counts(np.asarray(shares), n, rng)
        conditions = pd.DataFrame({hs.geography: np.repeat(np.asarray(values, dtype=object), counts * m)})
        conditions[hs.geography] = conditions[hs.geography].astype(geography_dtype(hs))
        pool = hs.household_model_.generate(conditions, seed=int_seed(ss_h))
        groups, wanted = conditions[hs.geography].to_numpy(), dict(zip(values, counts, strict=True))
        keep = []
        for g, n_g in wanted.items():
            rows = np.flatnonzero(groups == g)
            sizes = pool[hs.size_col_].to_numpy()[rows]
            levels, freq = np.unique(sizes, return_counts=True)
            if not len(levels):
                continue
            for level, q in zip(levels, systematic_counts(freq / freq.sum(), int(n_g), rng), strict=True):
                keep.append(rows[sizes == level][:q])
        keep = np.concatenate(keep) if keep else np.zeros(0, dtype=np.int64)
    else:
        # The size is allotted by its weighted training shares, the other household
        # variables are drawn given the size: one draw per household.
        values, shares = hs.size_shares_
        counts = systematic_counts(np.asarray(shares), n, rng)
        pool = pd.DataFrame({hs.size_col_: np.repeat(np.asarray(values, dtype=np.int64), counts)})
        pool[hs.size_col_] = pool[hs.size_col_].astype(hs.size_dtype_)
        if hs.geography:  # a geography with one value
            value = np.asarray(hs.geography_shares_[0], dtype=object)[:1]
            pool[hs.geography] = pd.Series(np.repeat(value, n), dtype=object).astype(geography_dtype(hs))
        if hs.household_model_ is not None:
            pool = hs.household_model_.generate(pool, seed=int_seed(ss_h))
        keep = np.arange(n)
    hh = pool.iloc[rng.permutation(keep)].reset_index(drop=True)
    hh.insert(0, hs.household_id, np.arange(1, len(hh) + 1))
    hh = hh[[hs.household_id, *hs.early_cols_]]
    if hs.household_weight:
        hh[hs.household_weight] = hs.total_weight_ / len(hh) if len(hh) else np.zeros(0)
    return hh, ss_p


def geography_dtype(hs: HouseholdSynthesizer) -> str | pd.CategoricalDtype:
    """The geography's training dtype; a categorical one with its categories and order (``geography_categories_``;
    models saved before it was kept have the dtype name only)."""
    categories = getattr(hs, "geography_categories_", None)
    if hs.geography_dtype_ == "category" and categories is not None:
        return pd.CategoricalDtype(categories[0], ordered=categories[1])
    return hs.geography_dtype_


def check_output_size(hs: HouseholdSynthesizer, n: int, oversample: int, persons: int | None = None) -> None:
    """Refuses outputs that cannot fit in memory, before allocating them."""
    persons = n * hs.max_size_ if persons is None else persons
    cols = len(hs.household_cols_) + 2
    pcols = len(hs.person_vars) + len(getattr(hs, "context_cols_", [])) + 4
    # float64 values, with room for the copies made while drawing
    need = 8 * 4 * (n * max(oversample, 1) * cols + persons * pcols)
    if need > memory_cap():
        raise DataValidationError(
            f"The 'n_households' parameter is too large: {n} households (up to {persons} persons) need about "
            f"{need / 2**30:.3g} GiB, more than this machine's memory ({memory_cap() / 2**30:.3g} GiB). "
            "Sample fewer households per call and concatenate."
        )
