"""Summaries of the members already generated in a household, the person model's context.

Persons are generated member by member (oldest first). Member ``k`` is conditioned on its
household's variables and on a fixed-size summary of members ``1..k-1``: its index, the
previous member's values, the oldest member's age, the number of adults so far, and, for every
numeric person variable, how many earlier members have a positive value (e.g. earners so far).
The same :class:`MemberState` builds the training context (teacher forcing on real members)
and the generation context, so both sides see identical features by construction.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["MemberState", "PREFIX", "NONE", "NA"]

#: Prefix of every summary feature column (reserved in user data).
PREFIX = "_m_"
#: Category of a categorical "previous member" feature when there is no previous member.
NONE = "<none>"
#: Category of a categorical "previous member" feature when the previous value is missing.
NA = "<na>"


def _signed_log(x: np.ndarray) -> np.ndarray:
    x = np.nan_to_num(np.asarray(x, dtype=float), nan=0.0)
    return np.sign(x) * np.log1p(np.abs(x))


class MemberState:
    """Creates the running summary of members generated so far, for ``n`` households.

    Parameters
    ----------
    n : int
        Number of households.
    numeric : sequence of str
        Numeric person variables (their previous value and their count of positive values).
    categorical : sequence of str
        Categorical person variables (their previous value, as a string category).
    age_var : str or None
        Age column (oldest member's age, adults so far); ``None`` drops those features.
    adult_age : float
        Persons at least this old are adults.
    sizes : array-like of int, default=None
        Household sizes: adds the number of members still to come and whether the person
        lives alone.

    Examples
    --------
    >>> state = MemberState(2, numeric=["age", "income"], categorical=["sex"], age_var="age", adult_age=16,
    ...                     sizes=[2, 3])
    >>> first = pd.DataFrame({"age": [40, 30], "income": [100.0, 0.0], "sex": ["f", "m"]})
    >>> state.update(np.array([0, 1]), first)
    >>> f = state.features(np.array([0, 1]))
    >>> f["_m_index"].tolist(), f["_m_npos_income"].tolist(), f["_m_prev_sex"].tolist(), f["_m_left"].tolist()
    ([2.0, 2.0], [1.0, 0.0], ['f', 'm'], [0.0, 1.0])
    """

    def __init__(
        self,
        n: int,
        numeric: Sequence[str],
        categorical: Sequence[str],
        age_var: str | None,
        adult_age: float,
        sizes: np.ndarray | None = None,
    ) -> None:
        self.numeric, self.categorical = list(numeric), list(categorical)
        self.age_var, self.adult_age = age_var, adult_age
        self.index = np.ones(n)
        self.prev = {v: np.zeros(n) for v in self.numeric}
        self.npos = {v: np.zeros(n) for v in self.numeric if v != age_var}
        self.prev_cat = {v: np.full(n, NONE, dtype=object) for v in self.categorical}
        self.first_age = np.zeros(n)
        self.adults = np.zeros(n)
        self.sizes = None if sizes is None else np.asarray(sizes, dtype=float)

    def columns(self) -> list[str]:
        """Names of the summary features, in order."""
        cols = [f"{PREFIX}index"]
        cols += [f"{PREFIX}prev_{v}" for v in self.numeric]
        cols += [f"{PREFIX}npos_{v}" for v in self.npos]
        cols += [f"{PREFIX}prev_{v}" for v in self.categorical]
        if self.age_var is not None:
            cols += [f"{PREFIX}first_age", f"{PREFIX}adults"]
        if self.sizes is not None:
            cols += [f"{PREFIX}left", f"{PREFIX}alone"]
        return cols

    def features(self, pos: np.ndarray) -> pd.DataFrame:
        """Summary features of households ``pos`` (positions), one row each."""
        out: dict[str, np.ndarray] = {f"{PREFIX}index": self.index[pos]}
        out.update({f"{PREFIX}prev_{v}": self.prev[v][pos] for v in self.numeric})
        out.update({f"{PREFIX}npos_{v}": self.npos[v][pos] for v in self.npos})
        out.update({f"{PREFIX}prev_{v}": self.prev_cat[v][pos].astype(str) for v in self.categorical})
        if self.age_var is not None:
            out[f"{PREFIX}first_age"] = self.first_age[pos]
            out[f"{PREFIX}adults"] = self.adults[pos]
        if self.sizes is not None:
            out[f"{PREFIX}left"] = self.sizes[pos] - self.index[pos]
            out[f"{PREFIX}alone"] = (self.sizes[pos] == 1).astype(float)
        return pd.DataFrame(out)

    def update(self, pos: np.ndarray, members: pd.DataFrame) -> None:
        """Adds one member to each household ``pos``; ``members`` rows align with ``pos``."""
        for v in self.numeric:
            x = pd.to_numeric(members[v], errors="coerce").to_numpy(float)
            self.prev[v][pos] = x if v == self.age_var else _signed_log(x)
            if v in self.npos:
                self.npos[v][pos] += np.nan_to_num(x, nan=0.0) > 0
        for v in self.categorical:
            values = members[v]
            self.prev_cat[v][pos] = np.where(values.isna().to_numpy(), NA, values.astype(str).to_numpy())
        if self.age_var is not None:
            age = members[self.age_var].to_numpy(float)
            first = self.index[pos] == 1
            self.first_age[pos[first]] = age[first]
            self.adults[pos] += age >= self.adult_age
        self.index[pos] += 1
