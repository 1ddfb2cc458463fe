"""Parameters of the :class:`HouseholdSynthesizer`: its own rules, and those it passes to every inner model.

The inner :class:`~microplex.synthesis.Synthesizer` hyper-parameters are not re-checked here:
:func:`inner_params` gathers them (the household keywords, their household defaults, and
``synthesizer_params``) and :func:`check_params` validates them with the Synthesizer's own rules.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._errors import DataValidationError
from .._params import check_bool, check_float, check_int, check_names
from ..synthesis import Synthesizer, VariableSpec
from ..synthesis._checks import check_schema
from ..synthesis._dp import DP_PARAMS
from ..synthesis._validation import is_number
from ._members import PREFIX

if TYPE_CHECKING:
    from ._synthesizer import HouseholdSynthesizer

__all__ = [
    "INNER_KEYWORDS", "INTERNAL", "SIZE_COL", "check_params", "find_size", "inner_params", "integral_floats", "is_int",
    "is_number", "pick", "size_matches", "sizes_among",
    "varying",
]

SIZE_COL = "n_persons"
#: Internal column names of the training and output frames (reserved in user data).
INTERNAL = frozenset({"__w__", "__k__"})
#: Synthesizer hyper-parameters that are also HouseholdSynthesizer keywords (with household defaults).
INNER_KEYWORDS = (
    "flow", "transforms", "hidden_features", "epochs", "batch_size", "learning_rate", "weight_decay",
    "validation_fraction", "patience",
)
#: Synthesizer parameters the household model sets per inner model (not in ``synthesizer_params``).
_PER_MODEL = ("target_vars", "condition_vars", "schema", "verbose")


def inner_params(hs: HouseholdSynthesizer) -> dict[str, Any]:
    """Hyper-parameters of every inner Synthesizer: the household keywords, then ``synthesizer_params``."""
    params = {k: getattr(hs, k) for k in INNER_KEYWORDS}
    if isinstance(params["hidden_features"], list | tuple):
        params["hidden_features"] = tuple(params["hidden_features"])
    params.update(hs.synthesizer_params or {})
    return params


def _check_synthesizer_params(value: Any) -> None:
    if value is None:
        return
    allowed = [k for k in inspect.signature(Synthesizer).parameters if k not in _PER_MODEL + INNER_KEYWORDS]
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise DataValidationError(
            f"The 'synthesizer_params' parameter must be a mapping of Synthesizer parameter names to values, or None. "
            f"Got {value!r:.80} instead."
        )
    if "condition_model" in value:
        raise DataValidationError(
            "The 'synthesizer_params' parameter cannot set 'condition_model': the household model draws its "
            "households itself and conditions the person models on them (it never samples an inner model's "
            "conditions), so a model of the conditions would go unused.")
    private = [k for k in value if k in DP_PARAMS]
    if private:
        raise DataValidationError(
            f"The 'synthesizer_params' parameter sets {private}: a household model cannot be fitted with "
            "differential privacy (each of its inner models would spend the budget on the same households, and "
            "no accountant composes them). Fit a Synthesizer(epsilon=...) on person records instead."
        )
    bad = [k for k in value if k not in allowed]
    if bad:
        keywords = [k for k in bad if k in INNER_KEYWORDS]
        hint = f" Pass {keywords} as HouseholdSynthesizer keywords." if keywords else ""
        raise DataValidationError(
            f"The 'synthesizer_params' parameter names {bad}, which are not Synthesizer parameters the household "
            f"model passes on; allowed: {allowed}.{hint}"
        )


def _check_name(value: Any, name: str, *, allow_none: bool) -> None:
    if value is None and allow_none:
        return
    if not isinstance(value, str) or not value:
        expected = "a column name (non-empty str)" + (" or None" if allow_none else "")
        raise DataValidationError(f"The {name!r} parameter must be {expected}. Got {value!r} instead.")


def check_params(hs: HouseholdSynthesizer) -> None:
    """Validates every constructor argument of ``hs`` (types, ranges, names); raises before any work."""
    hh = check_names(hs.household_vars, "household_vars", allow_empty=False)
    pv = check_names(hs.person_vars, "person_vars", allow_empty=False)
    _check_name(hs.household_id, "household_id", allow_none=False)
    for name in ("household_weight", "person_id", "size_var", "geography", "age_var"):
        _check_name(getattr(hs, name), name, allow_none=True)
    late = check_names(hs.late_household_vars, "late_household_vars")
    check_float(hs.adult_age, "adult_age")
    check_schema(hs.schema)
    _check_synthesizer_params(hs.synthesizer_params)
    Synthesizer(["_"], **inner_params(hs))._check_params()  # the inner models' rules, once
    check_int(hs.max_redraws, "max_redraws", low=0, high=100_000)
    check_bool(hs.verbose, "verbose")
    overlap = sorted(set(hh) & set(pv))
    if overlap:
        raise DataValidationError(f"Columns cannot be both household and person variables: {overlap}.")
    special = [c for c in (hs.household_id, hs.household_weight, hs.person_id) if c]
    clash = sorted(set(special) & set(hh + pv))
    if clash:
        raise DataValidationError(f"Id and weight columns cannot also be modelled variables: {clash}.")
    out_id = hs.person_id or "person_id"
    if len({hs.household_id, out_id, hs.household_weight} - {None}) < 2 + bool(hs.household_weight):
        raise DataValidationError(
            f"The 'household_id' ({hs.household_id!r}), 'person_id' ({out_id!r}) and 'household_weight' "
            f"({hs.household_weight!r}) parameters must name different columns."
        )
    if out_id in pv or out_id in hh:
        raise DataValidationError(
            f"The output person id column {out_id!r} clashes with a modelled variable; set 'person_id' "
            "to another name."
        )
    for name, value, pool, where in (
        ("size_var", hs.size_var, hh, "household_vars"),
        ("geography", hs.geography, hh, "household_vars"),
        ("age_var", hs.age_var, pv, "person_vars"),
    ):
        if value is not None and value not in pool:
            raise DataValidationError(f"The {name!r} parameter must be one of {where} {pool}. Got {value!r}.")
    if hs.size_var is not None and hs.size_var == hs.geography:
        raise DataValidationError(
            f"The 'size_var' and 'geography' parameters must name different columns. Got {hs.size_var!r}."
        )
    reserved = [c for c in hh + pv + special if c.startswith(PREFIX) or c in INTERNAL]
    if reserved:
        raise DataValidationError(
            f"Column names starting with {PREFIX!r} and {sorted(INTERNAL)} are reserved. Got {reserved}."
        )
    bad = [c for c in late if c not in hh or c in (hs.size_var, hs.geography)]
    if bad:
        raise DataValidationError(
            "The 'late_household_vars' parameter must list household variables other than the size "
            f"and geography. Got {hs.late_household_vars!r}."
        )
    if hs.size_var is None and SIZE_COL in pv + special:
        raise DataValidationError(f"Column {SIZE_COL!r} clashes with the derived household size.")
    if hs.schema:
        unknown = sorted(set(hs.schema) - set(hh) - set(pv))
        if unknown:
            raise DataValidationError(
                f"The 'schema' parameter names columns that are not household or person variables: {unknown}."
            )
        if hs.age_var in hs.schema and hs.schema[hs.age_var].kind == "categorical":
            raise DataValidationError(
                f"The 'age_var' column {hs.age_var!r} is declared categorical in 'schema'; an age is a number (the "
                "model draws the gaps between members' ages): declare it 'integer' or 'continuous', or leave it "
                "out of 'schema'.")


# -- column helpers of fit -------------------------------------------------------------
def find_size(hh: pd.DataFrame, counts: pd.Series, hh_vars: Sequence[str], skip: Sequence[Any]) -> str | None:
    """The first household variable equal to the number of person records in every household."""
    found = sizes_among(hh, counts, hh_vars, skip)
    return found[0] if found else None


def sizes_among(hh: pd.DataFrame, counts: pd.Series, hh_vars: Sequence[str], skip: Sequence[Any]) -> list[str]:
    """The household variables of ``hh_vars`` (but ``skip``) equal to the number of person records ``counts`` in
    every household, in their order.

    Examples
    --------
    >>> hh = pd.DataFrame({"hsize": [1, 3], "n_members": [1, 3], "rooms": [1, 2]})
    >>> sizes_among(hh, pd.Series([1, 3]), ["hsize", "n_members", "rooms"], [])
    ['hsize', 'n_members']
    """
    return [col for col, same in size_matches(hh, counts, hh_vars, skip).items() if same.all()]


def size_matches(hh: pd.DataFrame, counts: pd.Series, hh_vars: Sequence[str],
                 skip: Sequence[Any]) -> dict[str, np.ndarray]:
    """For each numeric household variable of ``hh_vars`` (but ``skip``), where it equals the number of person
    records ``counts`` (one bool per household), in their order: text and booleans are no size.

    Examples
    --------
    >>> hh = pd.DataFrame({"hsize": [1, 3], "region": ["a", "b"]})
    >>> size_matches(hh, pd.Series([1, 2]), ["hsize", "region"], [])
    {'hsize': array([ True, False])}
    """
    c = counts.to_numpy(float)
    return {col: pd.to_numeric(hh[col]).to_numpy(float) == c for col in hh_vars
            if col not in skip and is_number(hh[col])}


def is_int(series: pd.Series) -> bool:
    return pd.api.types.is_integer_dtype(series.dtype)


def integral_floats(series: pd.Series) -> bool:
    """``series`` (no missing values) is of a float dtype and holds only whole numbers that int64 holds exactly."""
    if not pd.api.types.is_float_dtype(series.dtype) or not len(series):
        return False
    x = series.to_numpy(float)
    return bool(np.isfinite(x).all() and (x == np.round(x)).all() and (np.abs(x) <= 2.0**53).all())


def pick(schema: Mapping[str, VariableSpec], cols: Sequence[str]) -> dict[str, VariableSpec]:
    return {c: schema[c] for c in cols if c in schema}


def varying(df: pd.DataFrame, cols: Sequence[str], weight: str | None = None) -> list[str]:
    """The columns of ``cols`` that are not constant in ``df`` (constant conditions carry nothing), read on its
    rows of positive ``weight`` when a weight column is named: rows of weight 0 are outside the population (a
    column varying only through them was a condition the inner model refused as constant)."""
    if weight is not None:
        df = df[df[weight].to_numpy(dtype=float) > 0]
    return [c for c in cols if df[c].nunique() > 1]
