"""The :class:`HouseholdSynthesizer`: households from a flow, then their persons member by member."""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, BinaryIO

import numpy as np
import pandas as pd

from .._errors import DataValidationError
from .._estimator import Estimator
from .._params import check_bool, check_int, check_seed
from .._random import int_seed
from .._stats import is_numeric, unseen_categories
from ..synthesis import Synthesizer, VariableSpec
from ..synthesis._conditions import drop_training_conditions
from ..synthesis._validation import check_copied_categories, check_frame, check_unique_columns, check_weights
from ..synthesis.schema import infer_kind
from ..synthesis.serialization import check_save_path
from ._bundle import check_adult_age, load_fitted, save_fitted
from ._draw import check_output_size, draw_households
from ._members import NA, NONE, PREFIX
from ._params import (
    SIZE_COL,
    check_params,
    find_size,
    inner_params,
    integral_floats,
    is_int,
    is_number,
    pick,
    sizes_among,
    varying,
)
from ._persons import (
    AGE_CATEGORY,
    GAP,
    age_category,
    context,
    draw_persons,
    order_members,
    teacher_forced,
)
from ._validation import (
    check_households,
    check_near_sizes,
    check_numeric,
    check_size_copies,
    check_sizes,
    na_age_thresholds,
)

__all__ = ["HouseholdSynthesizer"]

#: Most distinct household sizes for which the size conditions the household model as a category.
_MAX_SIZE_CATEGORIES = 64
#: Parameters of the fit that drawing reads from the estimator: a ``set_params`` of one of them after ``fit``
#: describes another model than the fitted one (and than its file, which holds ``fitted_params_``).
_FITTED_PARAMS = ("household_vars", "person_vars", "household_id", "household_weight", "person_id", "size_var",
                  "geography", "late_household_vars", "age_var", "adult_age")


class HouseholdSynthesizer(Estimator):
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
        Household variable holding the household size; ``None`` takes the household variable
        equal to the number of person records in every household, or, if there is none, adds a
        ``"n_persons"`` household variable counting the person records. Another household variable
        also equal to the number of person records in every household (a copy of the size, such as
        ``n_persons`` beside ``hh_size``) is not modelled: every output writes it as a copy of the size,
        so it equals the persons drawn (:attr:`size_copies_`). Without ``size_var``, a household variable equal to
        the number of person records in at least 90% of the households but not in all (a size with person records
        missing or repeated) is refused, naming the households where it differs.
    geography : str, default=None
        Categorical household variable (region, state, ...) allotted by its weighted training
        shares; the other household variables are conditioned on it. Without it, the size is
        allotted by its weighted training shares and the other household variables (a region
        among them) are conditioned on the size.
    late_household_vars : sequence of str, default=()
        Household variables drawn after the persons, by a second household model conditioned
        on the other household variables and on a summary of all members (counts, earners,
        sums of incomes): household income components that follow from who lives there
        (family allowances, tax adjustments). A copy of the size listed here is written as the size
        (:attr:`size_copies_`): the number of persons drawn, never drawn by the late model.
    age_var : str, default=None
        Person age column: members are ordered oldest first, adults are at least ``adult_age``,
        and "not applicable" missing values are recognized by age.
    adult_age : float, default=16
        Persons at least this old are adults. At most the oldest age the person models are trained on:
        ``fit`` refuses a larger one (no household drawn would have an adult), and so does ``load``.
    schema : mapping of str to VariableSpec, default=None
        Overrides of the modelling of household or person variables. A copy of the size is never
        modelled (:attr:`size_copies_`): an entry for one raises at :meth:`fit`.
    flow, transforms, hidden_features, epochs, batch_size
        Passed to every inner :class:`~microplex.synthesis.Synthesizer`.
    learning_rate, weight_decay, validation_fraction, patience
        Passed to every inner :class:`~microplex.synthesis.Synthesizer`.
        Defaults: 80 epochs without early stopping (``validation_fraction=0``; the learning
        rate then decays to 0 along a cosine). On EU-SILC (9 fits, 5x draws) this brought the
        equivalized-income KS from floor + 0.022 to floor + 0.005 and met every bar; early
        stopping on the validation likelihood stopped the person models too soon and left
        their conditionals too wide.
    max_redraws : int, default=50
        Redraws of an under-age oldest member (then kept, with a warning), or of a later member
        younger than the youngest training age (then given that age).
    verbose : bool, default=True
        Show progress bars while fitting (one per inner model: the household model, then the
        member models).
    synthesizer_params : mapping of str to object, default=None
        Other :class:`~microplex.synthesis.Synthesizer` hyper-parameters for every inner model
        (``bins``, ``point_mass_threshold``, ``max_point_masses``, ``heap_threshold``,
        ``max_heaps``, ``min_heap_count``), e.g. ``{"max_heaps": 0}``; unknown names raise. The
        keywords above take the household defaults; every value is checked by the Synthesizer's
        own rules in :meth:`fit`.

    Attributes
    ----------
    household_model_ : Synthesizer or None
        Household variables given the geography, or given the size without a geography
        (``None`` when there is no other household variable to draw).
    person_models_ : dict of str to Synthesizer
        Age and the always-applicable person variables given household and earlier members:
        ``"head"`` (oldest member) and ``"member"`` (later members, age as a gap), or ``"all"``
        without ``age_var``.
    applicable_models_ : list of (float, Synthesizer)
        For each age limit, the person variables that apply from that age on.
    size_col_ : str
        The household size column.
    size_copies_ : list of str
        The other household variables equal to the number of person records in every training household:
        written as copies of ``size_col_`` by :meth:`sample` and :meth:`generate`, never drawn.
    allotted_ : str
        The column allotted by its weighted training shares in :meth:`sample` (the geography,
        or the size).
    fitted_params_ : dict
        The constructor parameters of the fit: what :meth:`save` writes (``verbose`` and
        ``max_redraws``, which act when drawing, are saved as they are now). Drawing refuses a
        model whose column parameters or ``adult_age`` were changed after ``fit``.

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

    _fitted_attribute = "fitted_params_"  # assigned last, by fit and by load

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
        epochs: int = 80,
        batch_size: int = 512,
        learning_rate: float = 2e-3,
        weight_decay: float = 0.0,
        validation_fraction: float = 0.0,
        patience: int = 15,
        max_redraws: int = 50,
        verbose: bool = True,
        synthesizer_params: Mapping[str, Any] | None = None,
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
        self.synthesizer_params = synthesizer_params

    # -- fitting -----------------------------------------------------------------------
    def _check_params(self) -> None:
        """Validates every constructor argument (see :func:`._params.check_params`)."""
        check_params(self)

    def _synth(self, targets: list[str], conditions: list[str], schema: dict[str, VariableSpec],
               categorical: Sequence[str] = ()) -> Synthesizer:
        """An inner Synthesizer; the ``categorical`` columns among ``conditions`` are categorical conditions (numbers
        are otherwise continuous conditions: a region coded 1..9 was read as a quantity by every model)."""
        schema = {**{c: VariableSpec(kind="categorical") for c in conditions if c in categorical}, **schema}
        return Synthesizer(targets, conditions, schema=schema or None, verbose=self.verbose, **inner_params(self))

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

        Notes
        -----
        A refit keeps nothing of the previous fit (a geography or age of a fit with other parameters is gone
        from the estimator and its file); if the fit fails, the previous fit is kept whole (an estimator not
        fitted before stays unfitted).
        """
        with self._fit_from_scratch():
            return self._fit(persons, seed)

    def _fit(self, persons: pd.DataFrame, seed: int) -> HouseholdSynthesizer:
        """The body of :meth:`fit`, run on an estimator without fitted state."""
        self._check_params()
        fitted_params = copy.deepcopy(self.get_params(deep=False))
        seed = check_seed(seed, allow_none=False)
        hh_vars, p_vars = list(self.household_vars), list(self.person_vars)
        weight = self.household_weight
        used = [self.household_id, *hh_vars, *p_vars] + ([weight] if weight else [])
        check_frame(persons, used, "persons")
        check_households(persons, self.household_id, hh_vars + ([weight] if weight else []))
        check_weights(persons, weight)
        for name, col in (("size_var", self.size_var), ("age_var", self.age_var)):
            if col is not None and not is_number(persons[col]):
                raise DataValidationError(
                    f"The {name!r} column {col!r} must be numeric. Got dtype {persons[col].dtype} instead."
                )
        self.na_ages_ = na_age_thresholds(persons, p_vars, self.age_var)

        groups = persons.groupby(self.household_id, sort=False)
        hh = groups[hh_vars + ([weight] if weight else [])].first()
        counts = groups.size()
        # Without 'size_var', a household variable equal to the number of person records in every
        # household is the size (so it is allotted and consistent by construction); else the
        # person records are counted into 'n_persons'.
        self.size_col_ = self.size_var or find_size(hh, counts, hh_vars, (self.geography, *self.late_household_vars))
        if self.size_col_ is None:
            check_near_sizes(hh, counts, hh_vars, (self.geography, *self.late_household_vars))
            if SIZE_COL in hh_vars:  # the name of the derived size: the user's column would be overwritten
                raise DataValidationError(
                    f"Household variable {SIZE_COL!r} is not the number of person records of each household, and "
                    "microplex gives that name to the household size it derives: rename the column, or name the "
                    "size column with 'size_var'."
                )
            self.size_col_ = SIZE_COL
            hh[SIZE_COL] = counts.to_numpy()
        check_sizes(hh.index.to_series(), hh[self.size_col_], counts, self.size_col_)
        # Other household variables equal to the number of person records (``n_persons`` beside ``hh_size``) are
        # copies of the size: no model draws them (drawn, they disagreed with the persons drawn), every output
        # writes them as the size. One among 'late_household_vars' too: after the persons, as the number drawn.
        copies = [c for c in sizes_among(hh, counts, hh_vars, (self.geography,)) if c != self.size_col_]
        declared = [c for c in copies if c in (self.schema or {})]
        if declared:  # never modelled: a schema entry (a kind, point masses) would be ignored
            raise DataValidationError(
                f"The 'schema' parameter declares {declared}, which equal the number of person records in every "
                f"household, as the size {self.size_col_!r} does: copies of the size are never modelled, each is "
                f"written as a copy of {self.size_col_!r} (its values and dtype), so the entry would be ignored. "
                f"Leave them out of 'schema' (a pipeline's 'model.categorical'), or name the column to model with "
                f"'size_var' (the other count columns are then its copies).")
        self.size_copies_ = copies
        hh = hh.reset_index()
        self.household_cols_ = hh_vars + ([] if self.size_col_ in hh_vars else [SIZE_COL])
        self.early_cols_ = [c for c in self.household_cols_ if c not in self.late_household_vars and c not in copies]
        hw = hh[weight].to_numpy(float) if weight else np.ones(len(hh))
        self.total_weight_ = float(hw.sum())
        if self.geography:
            check_copied_categories(hh[self.geography], self.geography, "geography", hw,
                                    "allotted by its weighted training shares", categorical=True)
            share = pd.Series(hw, index=hh.index).groupby(hh[self.geography]).sum()
            self.geography_shares_ = (share.index.tolist(), (share / share.sum()).tolist())
            self.geography_dtype_ = str(hh[self.geography].dtype)
            dtype = hh[self.geography].dtype
            # a categorical geography's categories (unused ones included, in their order) and order: with the
            # dtype name only, sampled households had the regions allotted, sorted and unordered
            self.geography_categories_ = (
                (dtype.categories.tolist(), bool(dtype.ordered)) if isinstance(dtype, pd.CategoricalDtype) else None)
        # Without a varying geography the size is allotted from its weighted training shares and
        # conditions the household model (an unconditional model's pattern probabilities learn
        # too slowly: household sizes and regions came out near uniform).
        share = pd.Series(hw, index=hh.index).groupby(hh[self.size_col_]).sum()
        self.size_shares_ = ([int(v) for v in share.index], (share / share.sum()).tolist())
        self.size_dtype_ = str(hh[self.size_col_].dtype)
        self.max_size_ = int(hh[self.size_col_].max())

        schema = dict(self.schema or {})
        if self.age_var is not None and self.age_var not in schema:
            schema[self.age_var] = VariableSpec(kind="integer" if is_int(persons[self.age_var]) else None,
                                                point_masses=())
        for v in self.na_ages_:
            # A column of integer codes or counts missing for children is float only because of its missing values
            # (pandas has no NaN in int64): it is modelled as its int64 values would be. Inferred from the float
            # dtype it was continuous and drew economic statuses (EU-SILC pl030) such as 4.87 or 5.08.
            spec, values = schema.get(v, VariableSpec()), persons[v].dropna()
            if spec.kind is None and integral_floats(values):
                schema[v] = replace(spec, kind=infer_kind(values.astype(np.int64), role="target"))
        ss_h, ss_a, ss_b = np.random.SeedSequence(seed).spawn(3)

        # The household model is conditioned on the geography when it varies, else on the size;
        # both are allotted by their weighted training shares in 'sample'.
        # (read on the households of positive weight: one of weight 0 in a second region is outside the population)
        held = hh[hw > 0]
        allotted = self.geography if self.geography and held[self.geography].nunique() > 1 else self.size_col_
        if allotted == self.geography and held[self.size_col_].nunique() < 2:
            # the household model would draw the size given the geography: a constant is no target
            raise DataValidationError(
                f"Every household{'' if len(held) == len(hh) else ' of positive weight'} has "
                f"{int(held[self.size_col_].iloc[0])} person record(s) "
                f"({self.size_col_!r} is constant), while the geography {self.geography!r} varies: "
                "HouseholdSynthesizer needs households of at least two sizes to draw sizes by area; for "
                "records that are not grouped in households use Synthesizer with the geography as a condition."
            )
        self.allotted_ = allotted
        h_targets = [c for c in self.early_cols_ if c not in (allotted, self.geography)]
        if allotted == self.geography:
            h_targets = [c for c in self.early_cols_ if c != allotted]
        h_conditions = varying(held, [allotted])  # the households of positive weight
        h_schema = pick(schema, h_targets + h_conditions)
        size_spec = h_schema.get(self.size_col_, VariableSpec())
        if (self.size_col_ in h_targets and size_spec.kind is None
                and not pd.api.types.is_integer_dtype(hh[self.size_col_].dtype)):
            # Sizes are integers (check_sizes): a float size column is modelled as its int64 values would be. Inferred
            # from the float dtype, it was continuous and drew sizes such as 6.06 with 6 persons.
            h_schema[self.size_col_] = replace(
                size_spec, kind=infer_kind(hh[self.size_col_].astype(np.int64), role="target"))
        if allotted == self.size_col_ and h_conditions:
            n_sizes = held[self.size_col_].nunique()  # sizes of positive weight: the states the model keeps
            h_schema[self.size_col_] = VariableSpec(kind="categorical" if n_sizes <= _MAX_SIZE_CATEGORIES else None)
        # Categorical conditions of the inner models, numbers included (a region coded 1..9, a tenure status 1..3):
        # the geography ("a categorical condition") unless the schema gives it another kind, then the household and
        # person variables modelled as categories, except the size (a count).
        geo_spec = schema.get(self.geography) if self.geography else None
        categorical = {self.geography} if self.geography and (geo_spec is None or geo_spec.kind is None) else set()
        self.household_model_ = None
        if h_targets:
            self.household_model_ = self._synth(h_targets, h_conditions, h_schema, categorical)
            self.household_model_.fit(hh, weight, seed=int_seed(ss_h))
        self.household_kinds_ = dict(self.household_model_.kinds_) if self.household_model_ is not None else {}

        kinds = {}
        for v in p_vars:
            kinds[v] = schema.get(v, VariableSpec()).kind or infer_kind(persons[v].dropna(), role="target")
        self.person_dtypes_ = {v: str(persons[v].dtype) for v in p_vars}
        self.member_numeric_ = [v for v in p_vars if kinds[v] != "categorical"]
        self.member_categorical_ = [v for v in p_vars if kinds[v] == "categorical"]
        categorical |= {c for c, kind in self.household_kinds_.items() if kind == "categorical" and c != self.size_col_}
        categorical |= set(self.member_categorical_)

        ordered = order_members(persons, self.household_id, self.age_var)
        train, final = teacher_forced(self, hh, ordered)
        self.context_cols_ = [c for c in train.columns if c not in p_vars and c not in ("__w__", GAP)]
        w = "__w__" if weight else None
        base = [v for v in p_vars if v not in self.na_ages_]
        known = _known_categories(train, final, hw, w, categorical)
        self.person_models_ = {}
        if self.age_var is None:
            parts = {"all": (train, base)}
        else:
            # The oldest member draws its age, later members the gap to the member before.
            self.min_age_ = float(persons[self.age_var].min())
            # Integer ages: the head's age and the gap are categories (multimodal distributions:
            # the gap mixes spouses and children), unless the schema says otherwise.
            kind = "categorical" if is_int(persons[self.age_var]) else None
            schema.setdefault(GAP, VariableSpec(kind=kind))
            head = train[f"{PREFIX}index"] == 1
            parts = {"head": (train[head], base), "member": (train[~head], [GAP] + [v for v in base if v != self.age_var])}
        for (name, (rows, targets)), ss in zip(parts.items(), ss_a.spawn(len(parts)), strict=True):
            if len(rows) == 0:
                continue
            sub = pick(schema, targets)
            if name == "head" and kind == "categorical" and self.age_var not in (self.schema or {}):
                sub[self.age_var] = VariableSpec(kind="categorical")
            model = self._synth(targets, varying(rows, self.context_cols_, w), sub, categorical)
            model._known_categories = known
            # the integer ages and gaps modelled as categories here (the schema cannot declare an age categorical):
            # ages a small sample holds once each are no ids (check_copied_categories)
            model._own_categories = {GAP, self.age_var} - {None}
            self.person_models_[name] = model.fit(rows, w, seed=int_seed(ss))
        self.applicable_models_ = []
        limits = sorted(set(self.na_ages_.values()))
        extra = []
        if limits and is_int(persons[self.age_var]):
            train[AGE_CATEGORY] = age_category(train[self.age_var].to_numpy(float))
            extra = [AGE_CATEGORY]
        for limit, ss in zip(limits, ss_b.spawn(len(limits)), strict=True):
            targets = [v for v in p_vars if self.na_ages_.get(v) == limit]
            rows = train[train[self.age_var] >= limit]
            model = self._synth(targets, varying(rows, self.context_cols_ + base + extra, w), pick(schema, targets),
                                categorical)
            model._known_categories = known
            self.applicable_models_.append((limit, model.fit(rows, w, seed=int_seed(ss))))
        self.late_model_ = None
        late = self._late_targets
        if late:
            ctx = context(self, hh, np.arange(len(hh)), final)
            ctx[late] = hh[late].to_numpy()
            if weight:
                ctx[weight] = hh[weight].to_numpy()
            conditions = varying(ctx, [c for c in ctx.columns if c not in late and c != weight], weight)
            self.late_model_ = self._synth(late, conditions, pick(schema, late), categorical)
            self.late_model_.fit(ctx, weight, seed=int_seed(ss_h.spawn(2)[1]))
        # the inner models are only ever given their conditions (generate): they keep the numeric ranges of
        # their training conditions and no training row, in memory or in the file
        inner = [self.household_model_, self.late_model_, *self.person_models_.values(),
                 *(m for _, m in self.applicable_models_)]
        for model in inner:
            if model is not None:
                drop_training_conditions(model)
        check_adult_age(self, "HouseholdSynthesizer.fit", "adult_age")  # the rule load applies to the file
        self.fitted_params_ = fitted_params  # what save() writes (see _bundle); set once the fit has succeeded
        return self

    @property
    def _late_targets(self) -> list[str]:
        """The late household variables that the late model draws: those of ``late_household_vars`` that are no
        copy of the size (:attr:`size_copies_`, written as the size)."""
        return [c for c in self.late_household_vars if c not in self.size_copies_]

    # -- generation --------------------------------------------------------------------
    def sample(
        self, n_households: int, seed: int | None = None, *, oversample: int = 5
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Synthesizes ``n_households`` households and their persons.

        Households are drawn with less Monte-Carlo noise than independent draws. With a
        geography, its values are allotted by systematic rounding of their weighted training
        shares, the household model draws ``oversample`` candidates per household, and within
        each geography the candidates are kept so that household sizes follow the candidates'
        shares (systematic rounding again, so every size keeps its expected count;
        ``oversample=1`` keeps the candidates as drawn). Without a geography the sizes are
        allotted by systematic rounding of their weighted training shares and the other
        household variables are drawn given the size (``oversample`` is then not needed).

        Parameters
        ----------
        n_households : int
            Number of households (>= 0); outputs that cannot fit in memory are refused before
            anything is drawn (sample in several calls).
        seed : int, default=None
            The same seed gives identical output.
        oversample : int, default=5
            Candidate households drawn per household kept, with a geography (1 to 1000).

        Returns
        -------
        households : DataFrame
            One row per household: household id, household variables and a household weight
            (the training households' total weight spread evenly). The copies of the size
            (:attr:`size_copies_`) are the size's values: the number of persons drawn.
        persons : DataFrame
            One row per person: household id, person id, person variables, household weight.
        """
        self._check_drawable()
        n = check_int(n_households, "n_households", low=0)
        m = check_int(oversample, "oversample", low=1, high=1000)
        seed = check_seed(seed)
        check_output_size(self, n, m)
        hh, ss_p = draw_households(self, n, m, seed)
        return draw_persons(self, hh, ss_p)

    def generate(self, households: pd.DataFrame, seed: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Synthesizes the persons of given households.

        Parameters
        ----------
        households : DataFrame
            One row per household with every household variable (and the size column); the
            household id and weight columns are kept when present (ids default to 1..n). The copies
            of the size (:attr:`size_copies_`) may be left out: they are written as the size (given,
            they must equal it).
        seed : int, default=None

        Returns
        -------
        households, persons : DataFrame
            As in :meth:`sample`.
        """
        self._check_drawable()
        seed = check_seed(seed)
        check_frame(households, self.early_cols_, "households", allow_empty=True)
        check_unique_columns(households, [c for c in (self.household_id, self.household_weight) if c], "households")
        hh = households.reset_index(drop=True).copy()
        if self.household_id not in hh.columns:
            hh.insert(0, self.household_id, np.arange(1, len(hh) + 1))
        if hh[self.household_id].duplicated().any():
            dup = hh.loc[hh[self.household_id].duplicated(), self.household_id].tolist()[:5]
            raise DataValidationError(f"Household ids must be unique in 'households'. Repeated: {dup}.")
        late = [c for c in self._late_targets if c in hh.columns]  # given: kept as they are, so checked
        check_households(hh, self.household_id, self.early_cols_ + late, rows="households")
        kinds = {**self.household_kinds_, **{c: self.late_model_.kinds_[c] for c in late}}
        numeric = [c for c in self.early_cols_ + late
                   if c == self.size_col_ or kinds.get(c, "categorical") != "categorical"]
        if self.geography and self.geography not in numeric and pd.api.types.is_numeric_dtype(
                pd.api.types.pandas_dtype(self.geography_dtype_)) and self.geography_dtype_ not in ("bool", "boolean"):
            # a region coded as numbers is a categorical condition, but given as booleans or text it is refused as
            # before (True == 1 would pass the check of unseen values)
            numeric.append(self.geography)
        check_numeric(hh, self.household_id, numeric)
        if self.geography:
            # compared as categories are throughout microplex: True is not the region 1
            unknown = unseen_categories(hh[self.geography], self.geography_shares_[0])
            if unknown:
                raise DataValidationError(
                    f"Geography column {self.geography!r} has values not seen in training: {unknown[:5]}; "
                    f"expected one of {sorted(map(str, self.geography_shares_[0]))[:20]}."
                )
        check_sizes(hh[self.household_id], hh[self.size_col_], None, self.size_col_)
        check_size_copies(hh, self.household_id, self.size_col_, [c for c in self.size_copies_ if c in hh.columns])
        sizes = pd.to_numeric(hh[self.size_col_]).to_numpy(float)
        if len(sizes) and sizes.max() > self.max_size_:
            big = hh.loc[sizes > self.max_size_, self.household_id].tolist()[:5]
            raise DataValidationError(
                f"Households {big} have {self.size_col_} above {self.max_size_}, the largest household in "
                "training; the person models cannot draw more members than they were trained on."
            )
        if self.household_weight and self.household_weight in hh.columns:
            check_weights(hh, self.household_weight)
        check_output_size(self, len(hh), 1, persons=int(sizes.sum()))
        return draw_persons(self, hh, np.random.SeedSequence(seed))

    def _check_drawable(self) -> None:
        """Fitted, with the parameters that drawing reads as they were fitted, and ``max_redraws`` (which acts
        when drawing: a ``set_params`` after fit is used) valid."""
        self._check_fitted_params(_FITTED_PARAMS)
        check_int(self.max_redraws, "max_redraws", low=0, high=100_000)

    # -- persistence -------------------------------------------------------------------
    def save(self, path: str | os.PathLike | BinaryIO) -> None:
        """Saves the fitted model to ``path`` (one zip of JSON, safetensors and Parquet; no pickle), or into a
        writable binary file object; a path is checked as :meth:`Synthesizer.save
        <microplex.synthesis.Synthesizer.save>` checks it."""
        self._check_is_fitted()
        check_save_path(path, allow_file=True)
        try:  # the drawing parameters as load() checks them: a set_params(max_redraws="x") made a file it refused
            check_int(self.max_redraws, "max_redraws", low=0, high=100_000)
            check_bool(self.verbose, "verbose")
        except DataValidationError as exc:
            raise DataValidationError(f"Cannot save this HouseholdSynthesizer, nothing is written: {exc}") from None
        save_fitted(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> HouseholdSynthesizer:
        """Loads a model saved by :meth:`save`."""
        return load_fitted(cls, path)


def _known_categories(train: pd.DataFrame, final: Any, hw: np.ndarray, w: str | None,
                      categorical: set[str]) -> dict[str, list[Any]]:
    """Every category a person model's categorical condition may meet when drawing: its values on the training
    rows of positive weight, and the member summaries after each household's last member (what a later member
    would read). A person model is fitted on some of those rows (later members, adults): a region that only
    one-person households hold, drawn for a larger household, or a status that only the last members hold,
    drawn for an earlier one, was a category its condition encoder had never seen, and ``sample`` failed
    ("Condition column 'region' has categories not seen in training"). Known, such a category is one the model
    did not learn from (``weightless``): drawn, with a warning."""
    held = train[w].to_numpy(dtype=float) > 0 if w else np.ones(len(train), dtype=bool)
    last = final.features(np.flatnonzero(hw > 0))
    out: dict[str, list[Any]] = {}
    for c in train.columns:
        if c == w or (c not in categorical and is_numeric(train[c])):
            continue
        values = train[c].to_numpy(dtype=object)[held]
        if c in last.columns:
            values = np.concatenate([values, last[c].to_numpy(dtype=object)])
        # the summaries' markers (no previous member, a missing value) only where a model's own rows hold them: the
        # order of the members rules them out elsewhere (a later member always has a previous one)
        values = pd.Series(values, dtype=object)
        if c.startswith(PREFIX):
            values = values[~values.isin([NONE, NA])]
        out[c] = pd.unique(values).tolist()
    return out
