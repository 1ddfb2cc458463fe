"""Persons member by member, for a :class:`HouseholdSynthesizer`: teacher-forced training rows
and the generation loop.

Member ``k`` (0-based, oldest first) of every household is handled in one batch: its context is
the household variables and the :class:`~._members.MemberState` summary of members ``0..k-1``.
Training feeds the real members into that state (teacher forcing); generation feeds the drawn ones.
"""

from __future__ import annotations

import logging
import warnings
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .._errors import ExtrapolationWarning
from .._random import int_seed
from ..synthesis.transforms import CategoricalEncoder
from ._members import PREFIX, MemberState, _signed_log

if TYPE_CHECKING:
    from ._synthesizer import HouseholdSynthesizer

__all__ = ["AGE_CATEGORY", "GAP", "age_category", "context", "draw_persons", "order_members", "teacher_forced"]

logger = logging.getLogger(__name__)

#: Target column of later members: the age gap to the member before (>= 0).
GAP = f"{PREFIX}age_gap"
#: Condition column of the age-dependent person models: an integer age as a category, so a
#: step in age (a retirement age) is one learned weight, not a steep function of scaled age.
AGE_CATEGORY = f"{PREFIX}age_category"


def age_category(ages: np.ndarray, levels: np.ndarray | None = None) -> np.ndarray:
    """``ages`` as category labels; with ``levels`` (sorted ints), each age becomes the nearest level."""
    ages = np.rint(np.asarray(ages, dtype=float)).astype(np.int64)
    if levels is not None:
        right = np.clip(np.searchsorted(levels, ages), 1, len(levels) - 1) if len(levels) > 1 else np.zeros_like(ages)
        left = np.maximum(right - 1, 0)
        ages = np.where(np.abs(levels[left] - ages) <= np.abs(levels[right] - ages), levels[left], levels[right])
    return ages.astype(str).astype(object)


def order_members(persons: pd.DataFrame, household_id: str, age_var: str | None) -> pd.DataFrame:
    """Persons sorted by household (first appearance), then oldest first (stable)."""
    df = persons.reset_index(drop=True)
    keys = [pd.factorize(df[household_id])[0]]
    if age_var is not None:
        keys.append(-df[age_var].to_numpy(float))
    order = np.lexsort([np.arange(len(df)), *keys[::-1]])
    return df.iloc[order].reset_index(drop=True)


def _new_state(hs: HouseholdSynthesizer, hh: pd.DataFrame) -> MemberState:
    """An empty member summary for the ``len(hh)`` households ``hh``."""
    sizes = hh[hs.size_col_].to_numpy(float)
    return MemberState(len(hh), hs.member_numeric_, hs.member_categorical_, hs.age_var, hs.adult_age, sizes)


def context(hs: HouseholdSynthesizer, hh: pd.DataFrame, pos: np.ndarray, state: MemberState) -> pd.DataFrame:
    """Context of households ``hh`` at positions ``pos``, one row each: the early household
    variables (continuous ones on a signed-log scale) and the member summaries."""
    kinds = hs.household_kinds_
    ctx = {}
    for c in hs.early_cols_:
        values = hh[c].to_numpy()[pos]
        ctx[c] = _signed_log(values) if kinds.get(c) in ("continuous", "integer") and c != hs.size_col_ else values
    return pd.concat([pd.DataFrame(ctx), state.features(pos)], axis=1)


def teacher_forced(
    hs: HouseholdSynthesizer, hh: pd.DataFrame, ordered: pd.DataFrame
) -> tuple[pd.DataFrame, MemberState]:
    """Training rows of the person models and the final member summary.

    Each real member of ``ordered`` (from :func:`order_members`) gets one row: its context
    given the real members before it, its person variables, the age gap ``GAP`` (with
    ``age_var``) and the household weight ``"__w__"`` (with ``household_weight``). Rows are
    grouped by member index. The returned state summarizes all members of each household of ``hh``.
    """
    member = ordered.groupby(hs.household_id, sort=False).cumcount().to_numpy()
    # each member's household row; get_indexer, not .loc: ids of bool dtype were read as a boolean mask
    hpos = pd.Index(hh[hs.household_id].to_numpy()).get_indexer(ordered[hs.household_id].to_numpy())
    state, parts = _new_state(hs, hh), []
    for k in range(hs.max_size_):
        rows = ordered[member == k].reset_index(drop=True)
        pos = hpos[member == k]
        part = context(hs, hh, pos, state)
        for v in hs.person_vars:
            part[v] = rows[v].to_numpy()
        if hs.age_var is not None:
            part[GAP] = part[f"{PREFIX}prev_{hs.age_var}"].to_numpy() - rows[hs.age_var].to_numpy(float)
            if not pd.api.types.is_float_dtype(rows[hs.age_var].dtype):  # np.issubdtype raised on Int64
                part[GAP] = part[GAP].round().astype(np.int64)
        if hs.household_weight:
            part["__w__"] = hh[hs.household_weight].to_numpy()[pos]
        parts.append(part)
        state.update(pos, rows)
    out = pd.concat(parts, ignore_index=True)
    for v in hs.person_vars:
        out[v] = out[v].astype(ordered[v].dtype)
    return out, state


def draw_persons(
    hs: HouseholdSynthesizer, hh: pd.DataFrame, ss: np.random.SeedSequence
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Draws the persons of households ``hh``, then any late household variables missing
    from ``hh``, and writes the copies of the size; returns both frames (as in
    :meth:`HouseholdSynthesizer.sample`).

    The person models' conditions include internal member summaries (``_m_*``) computed from drawn
    members; their :class:`~microplex.ExtrapolationWarning` (a drawn summary beyond the training
    range, held at the margin) is logged at debug level instead of being shown to the user, who
    never named those columns. An ``ExtrapolationWarning`` about a household variable (a value given
    to :meth:`~HouseholdSynthesizer.generate` far beyond its training range, held at the margin) is
    shown, once per variable: the persons of those households are drawn as if it were at the margin.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ExtrapolationWarning)
        out = _draw_persons(hs, hh, ss)
    shown = set()
    for w in caught:
        if issubclass(w.category, ExtrapolationWarning):
            message = str(w.message)
            # the user's household variables, given to generate (a region, an income 1000 times the largest)
            named = [w.message.column] if w.message.column in hs.household_cols_ else []
            if named and named[0] not in shown:
                shown.add(named[0])
                scale = " (on the sign(x)*log(1+|x|) scale the person models read it on)" if (
                    hs.household_kinds_.get(named[0]) in ("continuous", "integer")
                    and named[0] != hs.size_col_) else ""
                reason, levels = w.message.reason, w.message.levels
                if reason == "weightless":  # a category a person model never saw
                    message = (f"households holding {list(levels)} got persons from person models (later members, "
                               "or adults) that no training household of that value had, e.g. a region of one-person "
                               "households only, drawn for a larger household: those persons are drawn as the "
                               "models read a value they never learnt from.")
                warnings.warn(ExtrapolationWarning(
                    f"Household variable {named[0]!r}, a condition of the person models{scale}: {message}",
                    column=named[0], reason=reason, levels=levels), stacklevel=3)
            elif not named:
                logger.debug("%s", message)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return out


def _draw_persons(
    hs: HouseholdSynthesizer, hh: pd.DataFrame, ss: np.random.SeedSequence
) -> tuple[pd.DataFrame, pd.DataFrame]:
    sizes = hh[hs.size_col_].to_numpy(int)
    state, parts = _new_state(hs, hh), []
    ss, ss_late = ss.spawn(2)
    if not len(hh):  # no households: empty frames with the output columns and dtypes
        parts.append(pd.DataFrame({hs.household_id: hh[hs.household_id].to_numpy(), "__k__": np.zeros(0, int),
                                   **{v: np.zeros(0) for v in hs.person_vars}}))
    for k, ss_k in enumerate(ss.spawn(int(sizes.max()) if len(sizes) else 0)):
        pos = np.flatnonzero(sizes > k)
        ss_a, ss_r, *ss_b = ss_k.spawn(2 + len(hs.applicable_models_))
        ctx = context(hs, hh, pos, state)
        people = _draw_member(hs, ctx, k, ss_a, ss_r)
        for (limit, model), s in zip(hs.applicable_models_, ss_b, strict=True):
            applies = people[hs.age_var].to_numpy(float) >= limit
            rows = people[applies]
            if AGE_CATEGORY in model.condition_vars:
                levels = np.sort(np.array(model.condition_encoder_.stats[AGE_CATEGORY], dtype=np.int64))
                rows = rows.assign(**{AGE_CATEGORY: age_category(rows[hs.age_var].to_numpy(float), levels)})
            drawn = model.generate(rows, seed=int_seed(s))
            for v in model.target_vars:
                col = pd.Series(np.nan, index=people.index, dtype=object)
                col[applies] = drawn[v].to_numpy(dtype=object)
                people[v] = col
        out = pd.DataFrame({hs.household_id: hh[hs.household_id].to_numpy()[pos], "__k__": k})
        for v in hs.person_vars:
            out[v] = people[v].to_numpy()
        parts.append(out)
        state.update(pos, out)
    persons = pd.concat(parts, ignore_index=True)
    order = np.lexsort([persons["__k__"].to_numpy(), pd.factorize(persons[hs.household_id])[0]])
    persons = persons.iloc[order].drop(columns="__k__").reset_index(drop=True)
    persons.insert(1, hs.person_id or "person_id", np.arange(1, len(persons) + 1))
    for v in hs.person_vars:
        persons[v] = persons[v].astype(_person_dtype(hs, v))
    if hs.household_weight and hs.household_weight in hh.columns:
        persons[hs.household_weight] = persons[hs.household_id].map(
            dict(zip(hh[hs.household_id], hh[hs.household_weight], strict=True))
        ).to_numpy(float)
    missing = [c for c in hs._late_targets if c not in hh.columns]
    if missing:
        drawn = hs.late_model_.generate(context(hs, hh, np.arange(len(hh)), state), seed=int_seed(ss_late))
        for c in missing:
            hh[c] = drawn[c].to_numpy()
    for c in hs.size_copies_:  # never drawn: the size, so the persons drawn, by construction
        hh[c] = hh[hs.size_col_].to_numpy()
    if missing or hs.size_copies_:
        extra = [c for c in hh.columns if c not in (hs.household_id, *hs.household_cols_)]
        hh = hh[[hs.household_id, *hs.household_cols_, *extra]]
    return hh, persons


def _person_dtype(hs: HouseholdSynthesizer, v: str) -> str | pd.CategoricalDtype:
    """The training dtype of person variable ``v``. A categorical one is rebuilt from the categorical encoder of the
    inner model that draws ``v``: the training column's categories (unused ones included, in their order) and
    ``ordered``. The values pass through NumPy arrays member by member, and ``astype("category")`` gave the
    categories drawn, sorted and unordered: other ``.cat.codes`` for the same label, a lost order, and real and
    synthetic persons that concatenated to text."""
    dtype = hs.person_dtypes_[v]
    if dtype != "category":
        return dtype
    for model in [*hs.person_models_.values(), *(m for _, m in hs.applicable_models_)]:
        encoder = model.encoders_.get(v) if v in model.target_vars else None
        if isinstance(encoder, CategoricalEncoder):
            return encoder.pandas_dtype
    return dtype


def _draw_member(
    hs: HouseholdSynthesizer,
    ctx: pd.DataFrame,
    k: int,
    ss: np.random.SeedSequence,
    ss_redraw: np.random.SeedSequence,
) -> pd.DataFrame:
    """Draws member ``k`` (0-based) of each household in ``ctx``: the oldest member's age, or
    a later member's age as the previous member's minus a gap >= 0.

    Oldest members younger than ``adult_age`` (households of children only) and later
    members younger than the youngest training age are redrawn, at most ``max_redraws``
    times; then an oldest member is kept with a warning, a later member gets the youngest
    training age."""
    if hs.age_var is None:
        return hs.person_models_["all"].generate(ctx, seed=int_seed(ss))
    age_var, dtype = hs.age_var, hs.person_dtypes_[hs.age_var]
    model = hs.person_models_["head" if k == 0 else "member"]
    prev = ctx[f"{PREFIX}prev_{age_var}"].to_numpy(float)

    def draw(rows: pd.DataFrame, s: np.random.SeedSequence) -> pd.DataFrame:
        out = model.generate(rows, seed=int_seed(s))
        if k > 0:
            age = prev[rows.index] - out.pop(GAP).to_numpy(float)
            out[age_var] = pd.Series(age, index=out.index).astype(dtype)  # pandas: numpy refused 'Int64'
        return out

    def bad(people: pd.DataFrame) -> np.ndarray:
        age = people[age_var].to_numpy(float)
        return age < (hs.adult_age if k == 0 else hs.min_age_)

    people = draw(ctx, ss)
    cols = [c for c in people.columns if c not in ctx.columns]
    for s in ss_redraw.spawn(int(hs.max_redraws)):
        wrong = bad(people)
        if not wrong.any():
            break
        people.loc[wrong, cols] = draw(ctx[wrong], s)[cols]
    wrong = bad(people)
    if wrong.any() and k == 0:
        logger.warning("%d households have no adult after %d redraws.", int(wrong.sum()), hs.max_redraws)
    elif wrong.any():
        logger.info("%d members younger than any in training after %d redraws: age set to %g.",
                    int(wrong.sum()), hs.max_redraws, hs.min_age_)
        people.loc[wrong, age_var] = pd.Series([hs.min_age_]).astype(dtype).iloc[0]
    return people
