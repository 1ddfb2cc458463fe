"""The :class:`HouseholdSynthesizer`: households from a flow, then their persons member by member."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._errors import DataValidationError, NotFittedError
from ..synthesis import Synthesizer, VariableSpec
from ..synthesis._validation import check_frame, check_weights
from ..synthesis.schema import infer_kind
from ..synthesis.serialization import read_archive, write_archive
from ._bundle import pack_models, systematic_counts, unpack_models
from ._members import PREFIX, MemberState, _signed_log
from ._validation import check_households, check_sizes, na_age_thresholds

__all__ = ["HouseholdSynthesizer"]

logger = logging.getLogger(__name__)

_FORMAT = "microplex.HouseholdSynthesizer"
_SIZE_COL = "n_persons"
_GAP = f"{PREFIX}age_gap"
_PARAMS = (
    "household_vars", "person_vars", "household_id", "household_weight", "person_id", "size_var",
    "geography", "late_household_vars", "age_var", "adult_age", "schema", "flow", "transforms", "hidden_features", "epochs",
    "batch_size", "learning_rate", "weight_decay", "validation_fraction", "patience", "max_redraws", "verbose",
)


def _seed(ss: np.random.SeedSequence) -> int:
    return int(ss.generate_state(1)[0])


class HouseholdSynthesizer:
    """Hierarchical synthesizer of households and the persons living in them.

    A household-level :class:`~microplex.synthesis.Synthesizer` draws the household variables
    (size, household income components with their point masses) given the geography column,
    whose values are allotted by their weighted training shares. Persons are then drawn member
    by member, oldest first: member ``k`` comes from a person-level ``Synthesizer``
    conditioned on its household's variables and on a summary of members ``1..k-1`` (index,
    previous member's values, oldest member's age, adults and positive incomes so far), so
    spouses' ages and the number of earners keep their dependence. The oldest member draws its
    age; every later member draws its age gap to the member before (>= 0, with its point mass
    at 0). Every household gets exactly its size in persons, and an oldest member younger than
    ``adult_age`` is redrawn (up to ``max_redraws`` times), so no household is made of children
    only.

    Person variables missing exactly for the persons under some age (children's incomes in
    EU-SILC) are "not applicable": a second person-level ``Synthesizer`` per such age limit is
    fitted on the persons at least that old, and synthetic persons under the limit get NaN.

    Parameters
    ----------
    household_vars : sequence of str
        Household-level columns (constant within a household).
    person_vars : sequence of str
        Person-level columns.
    household_id : str
        Household identifier column.
    household_weight : str, default=None
        Household weight column (constant within a household); ``None`` weighs households equally.
    person_id : str, default=None
        Person identifier column of the output (``"person_id"`` when ``None``).
    size_var : str, default=None
        Household variable holding the household size; ``None`` adds a ``"n_persons"`` household
        variable counting the person records.
    geography : str, default=None
        Categorical household variable (region, state, ...) drawn from its weighted training
        shares; the other household variables are conditioned on it.
    late_household_vars : sequence of str, default=()
        Household variables drawn after the persons, by a second household model conditioned
        on the other household variables and on a summary of all members (counts, earners,
        sums of incomes): household income components that follow from who lives there
        (family allowances, tax adjustments).
    age_var : str, default=None
        Person age column: members are ordered oldest first, adults are at least ``adult_age``,
        and "not applicable" missing values are recognized by age.
    adult_age : float, default=16
    schema : mapping of str to VariableSpec, default=None
        Overrides of the modelling of household or person variables.
    flow, transforms, hidden_features, epochs, batch_size, learning_rate, validation_fraction, patience
        Passed to every inner :class:`~microplex.synthesis.Synthesizer`.
    weight_decay : float, default=1e-3
        L2 penalty of every inner fit. Person models see many context features and only as many
        records as there are persons; on EU-SILC (12k persons) the penalty halves the gap to
        the real-vs-real floor of equivalized income (``benchmarks/results/households.md``).
    max_redraws : int, default=50
        Redraws of an under-age oldest member (then kept, with a warning), or of a later member
        younger than the youngest training age (then given that age).
    verbose : bool, default=False
        Show progress bars while fitting.

    Attributes
    ----------
    household_model_ : Synthesizer
        Household variables given the geography.
    person_models_ : dict of str to Synthesizer
        Age and the always-applicable person variables given household and earlier members:
        ``"head"`` (oldest member) and ``"member"`` (later members, age as a gap), or ``"all"``
        without ``age_var``.
    applicable_models_ : list of (float, Synthesizer)
        For each age limit, the person variables that apply from that age on.
    size_col_ : str
        The household size column.

    Examples
    --------
    >>> from microplex.datasets import load_dataset
    >>> df = load_dataset("eusilc")
    >>> df = df[df.db030 <= 300]
    >>> hs = HouseholdSynthesizer(["db040", "hsize", "hy050n"], ["age", "rb090", "py010n"], "db030",
    ...                           household_weight="db090", person_id="rb030", size_var="hsize",
    ...                           geography="db040", age_var="age", epochs=2)
    >>> hs = hs.fit(df, seed=0)
    >>> households, persons = hs.sample(20, seed=1)
    >>> len(households), bool(len(persons) == households.hsize.sum())
    (20, True)
    >>> list(persons.columns)
    ['db030', 'rb030', 'age', 'rb090', 'py010n', 'db090']
    >>> bool(persons.loc[persons.age < 16, "py010n"].isna().all())
    True
    """

    def __init__(
        self,
        household_vars: Sequence[str],
        person_vars: Sequence[str],
        household_id: str,
        household_weight: str | None = None,
        person_id: str | None = None,
        *,
        size_var: str | None = None,
        geography: str | None = None,
        late_household_vars: Sequence[str] = (),
        age_var: str | None = None,
        adult_age: float = 16,
        schema: Mapping[str, VariableSpec] | None = None,
        flow: str = "maf",
        transforms: int = 3,
        hidden_features: tuple[int, ...] = (64, 64),
        epochs: int = 200,
        batch_size: int = 512,
        learning_rate: float = 2e-3,
        weight_decay: float = 1e-3,
        validation_fraction: float = 0.1,
        patience: int = 15,
        max_redraws: int = 50,
        verbose: bool = False,
    ) -> None:
        self.household_vars = household_vars
        self.person_vars = person_vars
        self.household_id = household_id
        self.household_weight = household_weight
        self.person_id = person_id
        self.size_var = size_var
        self.geography = geography
        self.late_household_vars = late_household_vars
        self.age_var = age_var
        self.adult_age = adult_age
        self.schema = schema
        self.flow = flow
        self.transforms = transforms
        self.hidden_features = hidden_features
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.max_redraws = max_redraws
        self.verbose = verbose

    def get_params(self) -> dict[str, Any]:
        """Constructor parameters, as given."""
        return {k: getattr(self, k) for k in _PARAMS}

    def __repr__(self) -> str:
        return (
            f"HouseholdSynthesizer(household_vars={list(self.household_vars)!r}, "
            f"person_vars={list(self.person_vars)!r}, household_id={self.household_id!r})"
        )

    # -- fitting -----------------------------------------------------------------------
    def _check_params(self) -> None:
        for name in ("household_vars", "person_vars"):
            value = getattr(self, name)
            if isinstance(value, str) or not len(value):
                raise DataValidationError(
                    f"The {name!r} parameter must be a non-empty list of column names. Got {value!r}."
                )
        hh, pv = list(self.household_vars), list(self.person_vars)
        overlap = sorted(set(hh) & set(pv))
        if overlap:
            raise DataValidationError(f"Columns cannot be both household and person variables: {overlap}.")
        special = [c for c in (self.household_id, self.household_weight, self.person_id) if c]
        clash = sorted(set(special) & set(hh + pv))
        if clash:
            raise DataValidationError(f"Id and weight columns cannot also be modelled variables: {clash}.")
        for name, value, pool, where in (
            ("size_var", self.size_var, hh, "household_vars"),
            ("geography", self.geography, hh, "household_vars"),
            ("age_var", self.age_var, pv, "person_vars"),
        ):
            if value is not None and value not in pool:
                raise DataValidationError(f"The {name!r} parameter must be one of {where} {pool}. Got {value!r}.")
        reserved = [c for c in hh + pv if c.startswith(PREFIX)]
        if reserved:
            raise DataValidationError(f"Column names starting with {PREFIX!r} are reserved. Got {reserved}.")
        late = list(self.late_household_vars)
        bad = [c for c in late if c not in hh or c in (self.size_var, self.geography)]
        if isinstance(self.late_household_vars, str) or bad:
            raise DataValidationError(
                "The 'late_household_vars' parameter must list household variables other than the size "
                f"and geography. Got {self.late_household_vars!r}."
            )
        if self.size_var is None and _SIZE_COL in pv:
            raise DataValidationError(f"Person variable {_SIZE_COL!r} clashes with the derived household size.")
        if int(self.max_redraws) < 0:
            raise DataValidationError(f"The 'max_redraws' parameter must be >= 0. Got {self.max_redraws!r}.")

    def _synth(self, targets: list[str], conditions: list[str], schema: dict[str, VariableSpec]) -> Synthesizer:
        return Synthesizer(
            targets, conditions, flow=self.flow, transforms=self.transforms,
            hidden_features=tuple(self.hidden_features), schema=schema or None, epochs=self.epochs,
            batch_size=self.batch_size, learning_rate=self.learning_rate, weight_decay=self.weight_decay,
            validation_fraction=self.validation_fraction, patience=self.patience, verbose=self.verbose,
        )

    def fit(self, persons: pd.DataFrame, *, seed: int = 0) -> HouseholdSynthesizer:
        """Fits the household model and the person models.

        Parameters
        ----------
        persons : DataFrame
            One row per person, with the household id, household variables (repeated on every
            member), person variables and, if named, the household weight.
        seed : int, default=0
            Seeds every inner fit.

        Returns
        -------
        self : HouseholdSynthesizer
        """
        self._check_params()
        hh_vars, p_vars = list(self.household_vars), list(self.person_vars)
        weight = self.household_weight
        check_frame(persons, [self.household_id, *hh_vars, *p_vars] + ([weight] if weight else []), "persons")
        check_households(persons, self.household_id, hh_vars + ([weight] if weight else []))
        check_weights(persons, weight)
        self.na_ages_ = na_age_thresholds(persons, p_vars, self.age_var)

        groups = persons.groupby(self.household_id, sort=False)
        hh = groups[hh_vars + ([weight] if weight else [])].first()
        counts = groups.size()
        self.size_col_ = self.size_var or _SIZE_COL
        if self.size_var is None:
            hh[_SIZE_COL] = counts.to_numpy()
        check_sizes(hh.index.to_series(), hh[self.size_col_], counts, self.size_col_)
        hh = hh.reset_index()
        self.household_cols_ = hh_vars + ([] if self.size_var else [_SIZE_COL])
        self.early_cols_ = [c for c in self.household_cols_ if c not in self.late_household_vars]
        self.total_weight_ = float(hh[weight].sum()) if weight else float(len(hh))
        if self.geography:
            share = pd.Series(hh[weight] if weight else 1.0, index=hh.index).groupby(hh[self.geography]).sum()
            self.geography_shares_ = (share.index.tolist(), (share / share.sum()).tolist())
            self.geography_dtype_ = str(hh[self.geography].dtype)
        self.max_size_ = int(hh[self.size_col_].max())

        schema = dict(self.schema or {})
        if self.age_var is not None and self.age_var not in schema:
            schema[self.age_var] = VariableSpec(kind="integer" if _is_int(persons[self.age_var]) else None,
                                                point_masses=())
        ss_h, ss_a, ss_b = np.random.SeedSequence(seed).spawn(3)

        h_targets = [c for c in self.early_cols_ if c != self.geography]
        h_conditions = [self.geography] if self.geography else []
        self.household_model_ = self._synth(h_targets, h_conditions, _pick(schema, h_targets + h_conditions))
        self.household_model_.fit(hh, weight, seed=_seed(ss_h))

        kinds = {}
        for v in p_vars:
            kinds[v] = schema.get(v, VariableSpec()).kind or infer_kind(persons[v].dropna(), role="target")
        self.person_dtypes_ = {v: str(persons[v].dtype) for v in p_vars}
        self.member_numeric_ = [v for v in p_vars if kinds[v] != "categorical"]
        self.member_categorical_ = [v for v in p_vars if kinds[v] == "categorical"]

        ordered = self._order_members(persons)
        train, final = self._teacher_forced(hh, ordered)
        self.context_cols_ = [c for c in train.columns if c not in p_vars and c not in ("__w__", _GAP)]
        w = "__w__" if weight else None
        base = [v for v in p_vars if v not in self.na_ages_]
        self.person_models_ = {}
        if self.age_var is None:
            parts = {"all": (train, base)}
        else:
            # The oldest member draws its age, later members the gap to the member before.
            self.min_age_ = float(persons[self.age_var].min())
            # Integer ages: the head's age and the gap are categories (multimodal distributions:
            # the gap mixes spouses and children), unless the schema says otherwise.
            kind = "categorical" if _is_int(persons[self.age_var]) else None
            schema.setdefault(_GAP, VariableSpec(kind=kind))
            head = train[f"{PREFIX}index"] == 1
            parts = {"head": (train[head], base), "member": (train[~head], [_GAP] + [v for v in base if v != self.age_var])}
        for (name, (rows, targets)), ss in zip(parts.items(), ss_a.spawn(len(parts)), strict=True):
            if len(rows) == 0:
                continue
            sub = _pick(schema, targets)
            if name == "head" and kind == "categorical" and self.age_var not in (self.schema or {}):
                sub[self.age_var] = VariableSpec(kind="categorical")
            model = self._synth(targets, _varying(rows, self.context_cols_), sub)
            self.person_models_[name] = model.fit(rows, w, seed=_seed(ss))
        self.applicable_models_ = []
        limits = sorted(set(self.na_ages_.values()))
        for limit, ss in zip(limits, ss_b.spawn(len(limits)), strict=True):
            targets = [v for v in p_vars if self.na_ages_.get(v) == limit]
            rows = train[train[self.age_var] >= limit]
            model = self._synth(targets, _varying(rows, self.context_cols_ + base), _pick(schema, targets))
            self.applicable_models_.append((limit, model.fit(rows, w, seed=_seed(ss))))
        self.late_model_ = None
        if self.late_household_vars:
            late = list(self.late_household_vars)
            ctx = self._context(hh, np.arange(len(hh)), final)
            ctx[late] = hh[late].to_numpy()
            if weight:
                ctx[weight] = hh[weight].to_numpy()
            conditions = _varying(ctx, [c for c in ctx.columns if c not in late and c != weight])
            self.late_model_ = self._synth(late, conditions, _pick(schema, late))
            self.late_model_.fit(ctx, weight, seed=_seed(ss_h.spawn(2)[1]))
        return self

    def _order_members(self, persons: pd.DataFrame) -> pd.DataFrame:
        """Persons sorted by household (first appearance), then oldest first (stable)."""
        df = persons.reset_index(drop=True)
        hh_order = pd.factorize(df[self.household_id])[0]
        keys = [hh_order]
        if self.age_var is not None:
            keys.append(-df[self.age_var].to_numpy(float))
        order = np.lexsort([np.arange(len(df)), *keys[::-1]])
        return df.iloc[order].reset_index(drop=True)

    def _context(self, hh: pd.DataFrame, pos: np.ndarray, state: MemberState) -> pd.DataFrame:
        """Household variables (continuous ones on a signed-log scale) and member summaries."""
        kinds = self.household_model_.kinds_
        ctx = {}
        for c in self.early_cols_:
            values = hh[c].to_numpy()[pos]
            ctx[c] = _signed_log(values) if kinds.get(c) in ("continuous", "integer") and c != self.size_col_ else values
        return pd.concat([pd.DataFrame(ctx), state.features(pos)], axis=1)

    def _state(self, hh: pd.DataFrame) -> MemberState:
        sizes = hh[self.size_col_].to_numpy(float)
        return MemberState(len(hh), self.member_numeric_, self.member_categorical_, self.age_var, self.adult_age, sizes)

    def _teacher_forced(self, hh: pd.DataFrame, ordered: pd.DataFrame) -> pd.DataFrame:
        """Training rows of the person models: each real member with the summary of the real
        members before it."""
        pos_of = pd.Series(np.arange(len(hh)), index=hh[self.household_id].to_numpy())
        member = ordered.groupby(self.household_id, sort=False).cumcount().to_numpy()
        hpos = pos_of.loc[ordered[self.household_id].to_numpy()].to_numpy()
        state, parts = self._state(hh), []
        for k in range(self.max_size_):
            rows = ordered[member == k].reset_index(drop=True)
            pos = hpos[member == k]
            part = self._context(hh, pos, state)
            for v in self.person_vars:
                part[v] = rows[v].to_numpy()
            if self.age_var is not None:
                part[_GAP] = part[f"{PREFIX}prev_{self.age_var}"].to_numpy() - rows[self.age_var].to_numpy(float)
                if not np.issubdtype(rows[self.age_var].dtype, np.floating):
                    part[_GAP] = part[_GAP].round().astype(np.int64)
            if self.household_weight:
                part["__w__"] = hh[self.household_weight].to_numpy()[pos]
            parts.append(part)
            state.update(pos, rows)
        out = pd.concat(parts, ignore_index=True)
        for v in self.person_vars:
            out[v] = out[v].astype(ordered[v].dtype)
        return out, state

    # -- generation --------------------------------------------------------------------
    def _check_is_fitted(self) -> None:
        if not hasattr(self, "person_models_"):
            raise NotFittedError(
                "This HouseholdSynthesizer instance is not fitted yet. Call 'fit' with appropriate arguments first."
            )

    def sample(
        self, n_households: int, seed: int | None = None, *, oversample: int = 5
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Synthesizes ``n_households`` households and their persons.

        Households are drawn with less Monte-Carlo noise than independent draws: geography
        values are allotted by systematic rounding of their weighted training shares, the
        household model draws ``oversample`` candidates per household, and within each
        geography the candidates are kept so that household sizes follow the candidates' shares
        (systematic rounding again, so every size keeps its expected count). ``oversample=1``
        keeps the candidates as drawn.

        Parameters
        ----------
        n_households : int
        seed : int, default=None
            The same seed gives identical output.
        oversample : int, default=5
            Candidate households drawn per household kept.

        Returns
        -------
        households : DataFrame
            One row per household: household id, household variables and a household weight
            (the training households' total weight spread evenly).
        persons : DataFrame
            One row per person: household id, person id, person variables, household weight.
        """
        self._check_is_fitted()
        if int(n_households) < 1:
            raise DataValidationError(f"The 'n_households' parameter must be >= 1. Got {n_households!r} instead.")
        if int(oversample) < 1:
            raise DataValidationError(f"The 'oversample' parameter must be >= 1. Got {oversample!r} instead.")
        ss_h, ss_r, ss_p = np.random.SeedSequence(seed).spawn(3)
        rng = np.random.default_rng(ss_r)
        n, m = int(n_households), int(oversample)
        if self.geography:
            values, shares = self.geography_shares_
            counts = systematic_counts(np.asarray(shares), n, rng)
            conditions = pd.DataFrame({self.geography: np.repeat(np.asarray(values, dtype=object), counts * m)})
            conditions[self.geography] = conditions[self.geography].astype(self.geography_dtype_)
            pool = self.household_model_.generate(conditions, seed=_seed(ss_h))
            groups, wanted = conditions[self.geography].to_numpy(), dict(zip(values, counts, strict=True))
        else:
            pool = self.household_model_.generate(pd.DataFrame(index=pd.RangeIndex(n * m)), seed=_seed(ss_h))
            groups, wanted = np.zeros(len(pool), dtype=int), {0: n}
        keep = []
        for g, n_g in wanted.items():
            rows = np.flatnonzero(groups == g)
            sizes = pool[self.size_col_].to_numpy()[rows]
            levels, freq = np.unique(sizes, return_counts=True)
            for level, q in zip(levels, systematic_counts(freq / freq.sum(), int(n_g), rng), strict=True):
                keep.append(rows[sizes == level][:q])
        keep = np.concatenate(keep)
        hh = pool.iloc[rng.permutation(keep)].reset_index(drop=True)
        hh.insert(0, self.household_id, np.arange(1, len(hh) + 1))
        hh = hh[[self.household_id, *self.early_cols_]]
        if self.household_weight:
            hh[self.household_weight] = self.total_weight_ / len(hh)
        return self._persons(hh, ss_p)

    def generate(self, households: pd.DataFrame, seed: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Synthesizes the persons of given households.

        Parameters
        ----------
        households : DataFrame
            One row per household with every household variable (and the size column); the
            household id and weight columns are kept when present (ids default to 1..n).
        seed : int, default=None

        Returns
        -------
        households, persons : DataFrame
            As in :meth:`sample`.
        """
        self._check_is_fitted()
        check_frame(households, self.early_cols_, "households")
        hh = households.reset_index(drop=True).copy()
        if self.household_id not in hh.columns:
            hh.insert(0, self.household_id, np.arange(1, len(hh) + 1))
        if hh[self.household_id].duplicated().any():
            dup = hh.loc[hh[self.household_id].duplicated(), self.household_id].tolist()[:5]
            raise DataValidationError(f"Household ids must be unique in 'households'. Repeated: {dup}.")
        check_households(hh, self.household_id, self.early_cols_)
        check_sizes(hh[self.household_id], hh[self.size_col_], None, self.size_col_)
        return self._persons(hh, np.random.SeedSequence(seed))

    def _persons(self, hh: pd.DataFrame, ss: np.random.SeedSequence) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Draws the persons of households ``hh``, then any late household variables missing
        from ``hh``; returns both frames."""
        sizes = hh[self.size_col_].to_numpy(int)
        state, parts = self._state(hh), []
        ss, ss_late = ss.spawn(2)
        for k, ss_k in enumerate(ss.spawn(int(sizes.max()))):
            pos = np.flatnonzero(sizes > k)
            ss_a, ss_r, *ss_b = ss_k.spawn(2 + len(self.applicable_models_))
            ctx = self._context(hh, pos, state)
            people = self._draw(ctx, k, ss_a, ss_r)
            for (limit, model), s in zip(self.applicable_models_, ss_b, strict=True):
                applies = people[self.age_var].to_numpy(float) >= limit
                drawn = model.generate(people[applies], seed=_seed(s))
                for v in model.target_vars:
                    col = pd.Series(np.nan, index=people.index, dtype=object)
                    col[applies] = drawn[v].to_numpy(dtype=object)
                    people[v] = col
            out = pd.DataFrame({self.household_id: hh[self.household_id].to_numpy()[pos], "__k__": k})
            for v in self.person_vars:
                out[v] = people[v].to_numpy()
            parts.append(out)
            state.update(pos, out)
        persons = pd.concat(parts, ignore_index=True)
        order = np.lexsort([persons["__k__"].to_numpy(), pd.factorize(persons[self.household_id])[0]])
        persons = persons.iloc[order].drop(columns="__k__").reset_index(drop=True)
        persons.insert(1, self.person_id or "person_id", np.arange(1, len(persons) + 1))
        for v in self.person_vars:
            persons[v] = persons[v].astype(self.person_dtypes_[v])
        if self.household_weight and self.household_weight in hh.columns:
            persons[self.household_weight] = persons[self.household_id].map(
                dict(zip(hh[self.household_id], hh[self.household_weight], strict=True))
            ).to_numpy(float)
        missing = [c for c in self.late_household_vars if c not in hh.columns]
        if missing:
            drawn = self.late_model_.generate(self._context(hh, np.arange(len(hh)), state), seed=_seed(ss_late))
            for c in missing:
                hh[c] = drawn[c].to_numpy()
            extra = [c for c in hh.columns if c not in (self.household_id, *self.household_cols_)]
            hh = hh[[self.household_id, *self.household_cols_, *extra]]
        return hh, persons

    def _draw(self, ctx: pd.DataFrame, k: int, ss: np.random.SeedSequence, ss_redraw: np.random.SeedSequence) -> pd.DataFrame:
        """Draws member ``k`` (0-based) of each household in ``ctx``: the oldest member's age, or
        a later member's age as the previous member's minus a gap >= 0.

        Oldest members younger than ``adult_age`` (households of children only) and later
        members younger than the youngest training age are redrawn, at most ``max_redraws``
        times; then an oldest member is kept with a warning, a later member gets the youngest
        training age."""
        if self.age_var is None:
            return self.person_models_["all"].generate(ctx, seed=_seed(ss))
        model = self.person_models_["head" if k == 0 else "member"]
        prev = ctx[f"{PREFIX}prev_{self.age_var}"].to_numpy(float)

        def draw(rows: pd.DataFrame, s: np.random.SeedSequence) -> pd.DataFrame:
            out = model.generate(rows, seed=_seed(s))
            if k > 0:
                age = prev[rows.index] - out.pop(_GAP).to_numpy(float)
                out[self.age_var] = age.astype(self.person_dtypes_[self.age_var])
            return out

        def bad(people: pd.DataFrame) -> np.ndarray:
            age = people[self.age_var].to_numpy(float)
            return age < (self.adult_age if k == 0 else self.min_age_)

        people = draw(ctx, ss)
        cols = [c for c in people.columns if c not in ctx.columns]
        for s in ss_redraw.spawn(int(self.max_redraws)):
            wrong = bad(people)
            if not wrong.any():
                break
            people.loc[wrong, cols] = draw(ctx[wrong], s)[cols]
        wrong = bad(people)
        if wrong.any() and k == 0:
            logger.warning("%d households have no adult after %d redraws.", int(wrong.sum()), self.max_redraws)
        elif wrong.any():
            logger.info("%d members younger than any in training after %d redraws: age set to %g.",
                        int(wrong.sum()), self.max_redraws, self.min_age_)
            people.loc[wrong, self.age_var] = np.asarray(self.min_age_).astype(self.person_dtypes_[self.age_var])
        return people

    # -- persistence -------------------------------------------------------------------
    def _models(self) -> dict[str, Synthesizer]:
        models = {"household": self.household_model_}
        models.update({f"person_{name}": m for name, m in self.person_models_.items()})
        models.update({f"applicable{i}": m for i, (_, m) in enumerate(self.applicable_models_)})
        if self.late_model_ is not None:
            models["late"] = self.late_model_
        return models

    def save(self, path: str | os.PathLike) -> None:
        """Saves the fitted model to ``path`` (one zip of JSON, safetensors and Parquet; no pickle)."""
        self._check_is_fitted()
        from .. import __version__

        params = self.get_params()
        params["schema"] = {k: v.to_dict() for k, v in (self.schema or {}).items()}
        params["household_vars"], params["person_vars"] = list(self.household_vars), list(self.person_vars)
        params["hidden_features"] = list(self.hidden_features)
        meta: dict[str, Any] = {
            "format": _FORMAT, "microplex_version": __version__, "params": params,
            "size_col": self.size_col_, "household_cols": self.household_cols_, "early_cols": self.early_cols_,
            "total_weight": self.total_weight_, "max_size": self.max_size_, "na_ages": self.na_ages_,
            "person_dtypes": self.person_dtypes_, "member_numeric": self.member_numeric_,
            "member_categorical": self.member_categorical_, "context_cols": self.context_cols_,
            "limits": [limit for limit, _ in self.applicable_models_], "models": {},
            "min_age": getattr(self, "min_age_", None),
            "geography_shares": getattr(self, "geography_shares_", None),
            "geography_dtype": getattr(self, "geography_dtype_", None),
        }
        meta["models"], tensors, tables = pack_models(self._models())
        write_archive(path, meta, tensors, tables)

    @classmethod
    def load(cls, path: str | os.PathLike) -> HouseholdSynthesizer:
        """Loads a model saved by :meth:`save`."""
        meta, tensors, tables = read_archive(path, _FORMAT)
        params = dict(meta["params"])
        params["schema"] = {k: VariableSpec.from_dict(v) for k, v in params["schema"].items()} or None
        params["hidden_features"] = tuple(params["hidden_features"])
        self = cls(**params)
        self.size_col_, self.household_cols_ = meta["size_col"], meta["household_cols"]
        self.early_cols_ = meta["early_cols"]
        self.total_weight_, self.max_size_, self.na_ages_ = meta["total_weight"], meta["max_size"], meta["na_ages"]
        self.person_dtypes_, self.context_cols_ = meta["person_dtypes"], meta["context_cols"]
        self.member_numeric_, self.member_categorical_ = meta["member_numeric"], meta["member_categorical"]
        models = unpack_models(meta["models"], tensors, tables)
        self.household_model_, self.late_model_ = models["household"], models.get("late")
        self.person_models_ = {n[len("person_"):]: m for n, m in models.items() if n.startswith("person_")}
        self.min_age_ = meta.get("min_age")
        if meta.get("geography_shares") is not None:
            self.geography_shares_ = tuple(meta["geography_shares"])
            self.geography_dtype_ = meta["geography_dtype"]
        self.applicable_models_ = [(limit, models[f"applicable{i}"]) for i, limit in enumerate(meta["limits"])]
        return self


def _is_int(series: pd.Series) -> bool:
    return pd.api.types.is_integer_dtype(series.dtype)


def _pick(schema: Mapping[str, VariableSpec], cols: Sequence[str]) -> dict[str, VariableSpec]:
    return {c: schema[c] for c in cols if c in schema}


def _varying(df: pd.DataFrame, cols: Sequence[str]) -> list[str]:
    """The columns of ``cols`` that are not constant in ``df`` (constant conditions carry nothing)."""
    return [c for c in cols if df[c].nunique() > 1]
