"""Helpers of the HouseholdSynthesizer: its fitted state and inner models in one archive, and
low-noise allotment.

A household model file is untrusted data: :func:`load_fitted` validates every name, type and
number read from it before building anything, reads the inner models from memory (it never
writes a file) and turns any failure into one :class:`~microplex.DataValidationError` that
names the file.
"""

from __future__ import annotations

import copy
import math
import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from .._errors import DataValidationError, MicroplexError
from .._stats import unseen_categories
from ..synthesis import Synthesizer, VariableSpec
from ..synthesis.serialization import FORMAT_VERSION, check_nested_version, read_archive, write_archive

if TYPE_CHECKING:
    from ._synthesizer import HouseholdSynthesizer

__all__ = ["DRAW_PARAMS", "check_adult_age", "load_fitted", "pack_models", "save_fitted", "unpack_models"]

_FORMAT = "microplex.HouseholdSynthesizer"
_INNER = "microplex.Synthesizer"
#: Names of the inner models in a household model file.
_MODEL_NAME = re.compile(r"household|late|person_(head|member|all)|applicable(0|[1-9][0-9]{0,2})")
#: Bounds on what a model file may declare (far above any real model).
_MAX_NAME = 256
_MAX_COLUMNS = 10_000
_MAX_SIZE = 10_000
_MAX_LEVELS = 1_000_000


#: HouseholdSynthesizer parameters that act when drawing, not when fitting: a ``set_params`` after ``fit`` is saved.
DRAW_PARAMS = ("verbose", "max_redraws")


def save_fitted(hs: HouseholdSynthesizer, path: str | os.PathLike) -> None:
    """Writes the fitted ``hs`` to ``path``: its parameters and fitted attributes as JSON
    metadata, its inner models through :func:`pack_models`."""
    from .. import __version__

    # The parameters of the fit, not of a later set_params (see Synthesizer.fitted_params_); those that act
    # only when drawing as they are now.
    now = hs.get_params(deep=False)
    params = {**hs.fitted_params_, **{k: now[k] for k in DRAW_PARAMS}}
    if params["synthesizer_params"] is None:  # not written: files stay as before the parameter existed
        del params["synthesizer_params"]
    else:
        params["synthesizer_params"] = dict(params["synthesizer_params"])
    params["schema"] = {k: v.to_dict() for k, v in (params["schema"] or {}).items()}
    params["household_vars"], params["person_vars"] = list(params["household_vars"]), list(params["person_vars"])
    params["late_household_vars"] = list(params["late_household_vars"])
    hidden = params["hidden_features"]
    params["hidden_features"] = None if hidden is None else [int(h) for h in hidden]
    meta: dict[str, Any] = {
        "format": _FORMAT, "microplex_version": __version__, "params": params,
        "size_col": hs.size_col_, "household_cols": hs.household_cols_, "early_cols": hs.early_cols_,
        "size_copies": hs.size_copies_,
        "total_weight": hs.total_weight_, "max_size": hs.max_size_, "na_ages": hs.na_ages_,
        "person_dtypes": hs.person_dtypes_, "member_numeric": hs.member_numeric_,
        "member_categorical": hs.member_categorical_, "context_cols": hs.context_cols_,
        "limits": [limit for limit, _ in hs.applicable_models_], "models": {},
        # null where the fit's parameters name no age or geography (never an attribute left by another fit)
        "min_age": hs.min_age_ if params["age_var"] is not None else None,
        "geography_shares": hs.geography_shares_ if params["geography"] else None,
        "geography_dtype": hs.geography_dtype_ if params["geography"] else None,
        **({"geography_categories": list(hs.geography_categories_)}
           if params["geography"] and hs.geography_categories_ is not None else {}),
        "allotted": hs.allotted_, "size_shares": hs.size_shares_, "size_dtype": hs.size_dtype_,
        "household_kinds": hs.household_kinds_,
    }
    models = {} if hs.household_model_ is None else {"household": hs.household_model_}
    models.update({f"person_{name}": m for name, m in hs.person_models_.items()})
    models.update({f"applicable{i}": m for i, (_, m) in enumerate(hs.applicable_models_)})
    if hs.late_model_ is not None:
        models["late"] = hs.late_model_
    meta["models"], tensors, tables = pack_models(models)
    write_archive(path, meta, tensors, tables)


def load_fitted(cls: type[HouseholdSynthesizer], path: str | os.PathLike) -> HouseholdSynthesizer:
    """Inverse of :func:`save_fitted`: a fitted ``cls`` instance.

    Nothing is written; any inconsistency of the file raises one DataValidationError naming it.
    """
    where = f"Model file {str(path)!r}"
    try:
        meta, tensors, tables = read_archive(path, _FORMAT)
    except MicroplexError:
        raise
    except Exception as exc:  # noqa: BLE001 - an untrusted file: any failure is the file's fault
        raise DataValidationError(f"{where} is not a readable HouseholdSynthesizer model: {exc}") from exc
    try:
        return _build(cls, meta, tensors, tables, where)
    except MicroplexError as exc:
        if str(exc).startswith(where):
            raise
        raise DataValidationError(f"{where} is not a valid HouseholdSynthesizer model: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - an untrusted file: any failure is the file's fault
        raise DataValidationError(
            f"{where} is not a valid HouseholdSynthesizer model: {type(exc).__name__}: {exc}"
        ) from exc


def _fail(where: str, key: str, expected: str, value: Any) -> DataValidationError:
    text = repr(value)
    text = text if len(text) <= 80 else text[:77] + "..."
    return DataValidationError(f"{where}: {key!r} must be {expected}. Got {text} instead.")


def _name(value: Any, where: str, key: str) -> str:
    if not isinstance(value, str) or not value or len(value) > _MAX_NAME:
        raise _fail(where, key, f"a column name (str of 1 to {_MAX_NAME} characters)", value)
    return value


def _names(value: Any, where: str, key: str) -> list[str]:
    if not isinstance(value, list) or len(value) > _MAX_COLUMNS:
        raise _fail(where, key, "a list of column names", value)
    names = [_name(v, where, key) for v in value]
    if len(set(names)) != len(names):
        raise _fail(where, key, "a list of distinct column names", value)
    return names


def _number(value: Any, where: str, key: str, *, low: float | None = None, allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or (
        low is not None and value < low
    ):
        bound = "" if low is None else f" >= {low:g}"
        raise _fail(where, key, f"a finite number{bound}" + (" or null" if allow_none else ""), value)
    return float(value)


def _shares(value: Any, where: str, key: str, *, sizes: bool) -> tuple[list, list[float]]:
    """``[values, shares]`` of sizes, or (``sizes=False``) of str or number values or of booleans (a boolean
    geography, an urban/rural flag: fitted and saved, its file was refused)."""
    if not isinstance(value, list | tuple) or len(value) != 2 or not all(isinstance(v, list) for v in value):
        raise _fail(where, key, "a pair [values, shares]", value)
    values, shares = value
    if not 0 < len(values) == len(shares) <= _MAX_LEVELS:
        raise _fail(where, key, "as many values as shares (at least one)", value)
    bools = not sizes and all(isinstance(v, bool) for v in values)
    for v in values:
        ok = (isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= _MAX_SIZE) if sizes else (
            bools or isinstance(v, str | int | float) and not isinstance(v, bool))
        if not ok:
            raise _fail(where, key, "sizes in [1, 10000]" if sizes else "str or number values, or booleans only", v)
    if len(set(values)) != len(values):
        raise _fail(where, key, "distinct values", values)
    if sizes and values != sorted(values):  # fit writes them ascending: reordered, each size drew another's share
        raise _fail(where, key, "sizes in ascending order (as fit writes them)", values)
    p = np.array([_number(s, where, key, low=0.0) for s in shares])
    if not abs(p.sum() - 1.0) < 1e-6:
        raise _fail(where, key, "shares summing to 1", shares)
    return list(values), [float(x) for x in p]


def _build(cls: type[HouseholdSynthesizer], meta: dict[str, Any], tensors: dict[str, torch.Tensor],
           tables: dict[str, pd.DataFrame], where: str) -> HouseholdSynthesizer:
    """Validates the archive's contents, then builds the fitted instance."""
    from ._persons import AGE_CATEGORY, GAP
    names = cls._get_param_names()
    if not isinstance(meta, dict):
        raise _fail(where, "metadata", "a JSON object", meta)
    params = meta.get("params")
    # 'synthesizer_params' is written only when given
    if not isinstance(params, dict) or set(params) not in (set(names), set(names) - {"synthesizer_params"}):
        got = sorted(params) if isinstance(params, dict) else params
        raise _fail(where, "params", f"an object with exactly the keys {names}", got)
    params = dict(params)
    schema = params["schema"]
    if not isinstance(schema, dict):
        raise _fail(where, "params.schema", "an object", schema)
    params["schema"] = {_name(k, where, "params.schema"): VariableSpec.from_dict(v) for k, v in schema.items()} or None
    hidden = params["hidden_features"]
    if hidden is not None and not isinstance(hidden, list):
        raise _fail(where, "params.hidden_features", "a list of ints or null", hidden)
    params["hidden_features"] = None if hidden is None else tuple(hidden)
    hs = cls(**params)
    hs._check_params()  # every parameter, with the messages of 'fit'

    hh_vars, p_vars = list(hs.household_vars), list(hs.person_vars)
    size_col = _name(meta.get("size_col"), where, "size_col")
    household_cols = _names(meta.get("household_cols"), where, "household_cols")
    if household_cols not in (hh_vars, hh_vars + [size_col]) or size_col not in household_cols:
        raise _fail(where, "household_cols", f"the household variables {hh_vars} (and the size)", household_cols)
    # absent from files written before copies of the size were kept (fit refused them): none
    copies = _names(meta.get("size_copies", []), where, "size_copies")
    if not set(copies) <= set(hh_vars) - {size_col, hs.geography}:
        raise _fail(where, "size_copies", f"household variables of {hh_vars} other than the size {size_col!r} and "
                    "the geography", copies)
    early = _names(meta.get("early_cols"), where, "early_cols")
    if early != [c for c in household_cols if c not in hs.late_household_vars and c not in copies] or (
            size_col not in early):
        raise _fail(where, "early_cols", "the household columns that are neither late nor copies of the size", early)
    allotted = meta.get("allotted")
    if allotted not in {size_col, hs.geography} - {None}:
        raise _fail(where, "allotted", "the size or the geography column", allotted)
    hs.size_col_, hs.household_cols_, hs.early_cols_, hs.allotted_ = size_col, household_cols, early, allotted
    hs.size_copies_ = copies  # before _late_targets is read
    hs.total_weight_ = _number(meta.get("total_weight"), where, "total_weight", low=0.0)
    max_size = meta.get("max_size")
    if isinstance(max_size, bool) or not isinstance(max_size, int) or not 1 <= max_size <= _MAX_SIZE:
        raise _fail(where, "max_size", f"an int in [1, {_MAX_SIZE}]", max_size)
    hs.max_size_ = max_size
    na_ages = meta.get("na_ages")
    if not isinstance(na_ages, dict) or not set(na_ages) <= set(p_vars) or (na_ages and hs.age_var is None):
        raise _fail(where, "na_ages", "an object of person variables to ages", na_ages)
    hs.na_ages_ = {k: _number(v, where, "na_ages") for k, v in na_ages.items()}
    dtypes = meta.get("person_dtypes")
    if not isinstance(dtypes, dict) or set(dtypes) != set(p_vars):
        raise _fail(where, "person_dtypes", f"an object with a dtype for each of {p_vars}", dtypes)
    for k, v in dtypes.items():
        try:
            pd.api.types.pandas_dtype(_name(v, where, f"person_dtypes.{k}"))
        except TypeError as exc:
            raise _fail(where, f"person_dtypes.{k}", "a pandas dtype", v) from exc
    hs.person_dtypes_ = dtypes
    numeric = _names(meta.get("member_numeric"), where, "member_numeric")
    categorical = _names(meta.get("member_categorical"), where, "member_categorical")
    if sorted(numeric + categorical) != sorted(p_vars):
        raise _fail(where, "member_numeric", "with member_categorical, the person variables", numeric)
    hs.member_numeric_, hs.member_categorical_ = numeric, categorical
    hs.context_cols_ = _names(meta.get("context_cols"), where, "context_cols")
    kinds = meta.get("household_kinds")
    if not isinstance(kinds, dict) or not all(
        k in household_cols and v in ("continuous", "integer", "categorical") for k, v in kinds.items()
    ):
        raise _fail(where, "household_kinds", "an object of household columns to kinds", kinds)
    hs.household_kinds_ = kinds
    hs.min_age_ = _number(meta.get("min_age"), where, "min_age", allow_none=True)
    if hs.age_var is not None and hs.min_age_ is None:
        raise _fail(where, "min_age", "a number (the model has an age variable)", None)
    if hs.age_var is not None and not _holds([hs.min_age_], dtypes[hs.age_var]):  # drawn in place of a bad age
        raise _fail(where, "min_age", f"an age of the age variable's dtype {dtypes[hs.age_var]!r}", hs.min_age_)
    if not hs.total_weight_ > 0:  # the households' weights sum, spread over the drawn households
        raise _fail(where, "total_weight", "a positive number (the training households' total weight)",
                    hs.total_weight_)
    hs.size_shares_ = _shares(meta.get("size_shares"), where, "size_shares", sizes=True)
    hs.size_dtype_ = _dtype(meta.get("size_dtype"), where, "size_dtype")
    if not _holds(hs.size_shares_[0], hs.size_dtype_):
        raise _fail(where, "size_dtype", "a dtype that holds the sizes of size_shares", hs.size_dtype_)
    if max(hs.size_shares_[0]) != hs.max_size_:
        raise _fail(where, "max_size", f"the largest size in size_shares ({max(hs.size_shares_[0])})", max_size)
    if hs.geography:
        hs.geography_shares_ = _shares(meta.get("geography_shares"), where, "geography_shares", sizes=False)
        hs.geography_dtype_ = _dtype(meta.get("geography_dtype"), where, "geography_dtype")
        if not _holds(hs.geography_shares_[0], hs.geography_dtype_):
            raise _fail(where, "geography_dtype", "a dtype that holds the values of geography_shares",
                        hs.geography_dtype_)
        hs.geography_categories_ = _categories(meta.get("geography_categories"), hs, where)
    limits = meta.get("limits")
    if not isinstance(limits, list) or len(limits) > _MAX_COLUMNS:
        raise _fail(where, "limits", "a list of ages", limits)
    limits = [_number(v, where, "limits") for v in limits]
    if sorted(set(limits)) != limits or set(limits) != set(hs.na_ages_.values()):
        raise _fail(where, "limits", f"the sorted distinct ages of na_ages {sorted(set(hs.na_ages_.values()))}", limits)

    # The inner models: exactly the expected names, each read from memory.
    expected = {"household"} if hs.allotted_ == hs.geography or len(early) > 1 + bool(hs.geography) else set()
    expected |= {"person_all"} if hs.age_var is None else set()
    expected |= {f"applicable{i}" for i in range(len(limits))}
    expected |= {"late"} if hs._late_targets else set()
    models_meta = meta.get("models")
    if not isinstance(models_meta, dict) or not all(
        isinstance(n, str) and _MODEL_NAME.fullmatch(n) and isinstance(m, dict) for n, m in models_meta.items()
    ):
        raise _fail(where, "models", "an object of inner model names (household, person_*, applicableN, late) "
                    "to model metadata", sorted(models_meta) if isinstance(models_meta, dict) else models_meta)
    optional = {"person_head", "person_member"} if hs.age_var is not None else set()
    names = set(models_meta)
    if not expected <= names or not names <= expected | optional or (hs.age_var is not None and "person_head" not in names):
        raise _fail(where, "models", f"the inner models {sorted(expected | optional)}", sorted(names))
    for key in list(tensors) + list(tables):
        if key.split("/", 1)[0] not in names or "/" not in key:
            raise _fail(where, "tensor or table name", "<inner model>/<name>", key)
    for name, sub in models_meta.items():  # the file's version says which keys they hold (version 1 may lack some)
        check_nested_version(meta, sub, where, f"'models.{name}.format_version'")
    models = unpack_models(models_meta, tensors, tables)
    hs.household_model_ = models.get("household")
    # fit writes the household model's kinds: another kind fed the person models a household column transformed
    # otherwise than in training (a raw income for its signed log)
    if kinds != (dict(hs.household_model_.kinds_) if hs.household_model_ is not None else {}):
        raise _fail(where, "household_kinds", "the kinds of inner model 'household' (as fit writes them; {} without "
                    "one)", kinds)
    hs.late_model_ = models.get("late")
    hs.person_models_ = {n[len("person_"):]: m for n, m in models.items() if n.startswith("person_")}
    hs.applicable_models_ = [(limit, models[f"applicable{i}"]) for i, limit in enumerate(limits)]

    # Every inner model reads and writes only columns the household model provides.
    ctx = set(hs.context_cols_)
    for n, model in models.items():
        targets, conditions = set(model.target_vars), set(model.condition_vars)
        if n == "household":
            ok = targets <= set(early) and conditions <= {hs.allotted_}
        elif n == "late":
            ok = targets == set(hs._late_targets) and conditions <= ctx
        elif n.startswith("person_"):
            ok = targets <= set(p_vars) | {GAP} and conditions <= ctx
        else:
            ok = targets <= set(p_vars) and conditions <= ctx | set(p_vars) | {AGE_CATEGORY}
        if not ok:
            raise _fail(where, f"models.{n}", "a model of the declared household and person columns",
                        {"targets": sorted(targets), "conditions": sorted(conditions)})
        if AGE_CATEGORY in conditions:  # drawing reads them as ints: 'zzz' or '' loaded, then raised a raw ValueError
            _check_age_labels(model, where, f"models.{n}.condition_encoder.stats.{AGE_CATEGORY}")
        # the draws of an inner model are cast to the dtypes of the household file: they are the same columns'
        for v in model.target_vars:
            key, declared = (("size_dtype", hs.size_dtype_) if v == size_col and n == "household"
                             else (f"person_dtypes.{v}", dtypes.get(v)) if v in p_vars and n != "household"
                             else (None, None))
            if key is not None and model.dtypes_[v] != declared:
                raise _fail(where, key, f"the dtype {model.dtypes_[v]!r} of {v!r} in inner model {n!r}", declared)
    geo_model = hs.household_model_
    if hs.geography and geo_model is not None and hs.geography in geo_model.condition_vars:
        known = geo_model.condition_encoder_.stats[hs.geography]
        unknown = unseen_categories(hs.geography_shares_[0], known) if geo_model.kinds_[hs.geography] == "categorical" \
            else []
        if unknown:
            raise _fail(where, "geography_shares", f"values of the geography that inner model 'household' was fitted "
                        f"on ({list(known)[:5]})", unknown[:5])
    if not ctx <= set(early) | set(_context_features(hs)):
        raise _fail(where, "context_cols", "household columns and member summary features", hs.context_cols_)
    _check_trained_members(hs, where)
    hs.fitted_params_ = copy.deepcopy(hs.get_params(deep=False))  # the fitted marker, last
    return hs


def _trained_range(model: Synthesizer | None, column: str) -> tuple[float, float] | None:
    """(min, max) of the numeric condition ``column`` over ``model``'s training records of positive weight (as
    fit stored it); ``None`` where the model is absent or has no such condition."""
    if model is None or column not in model.condition_vars or model.kinds_.get(column) == "categorical":
        return None
    return model._condition_ranges().get(column)


def check_adult_age(hs: HouseholdSynthesizer, where: str, key: str) -> None:
    """``adult_age`` is at most the oldest age the person models were trained on: the largest upper end of the
    training ranges of the oldest member's age (``_m_first_age``) and of the age variable among their conditions.
    Above it no drawn household has an adult: every oldest member is redrawn ``max_redraws`` times and kept with a
    logged warning (a file edited to 1e12 loaded and sampled so). Nothing is checked where no person model holds
    such a condition (households of one person and no "not applicable" ages)."""
    from ._members import PREFIX

    if hs.age_var is None:
        return
    models = [*hs.person_models_.values(), *(m for _, m in hs.applicable_models_)]
    ends = [r[1] for m in models for c in (f"{PREFIX}first_age", hs.age_var) if (r := _trained_range(m, c))]
    if ends and hs.adult_age > max(ends):
        raise _fail(where, key, f"an age at most the oldest age the person models were trained on ({max(ends):g}; "
                    "above it no household drawn has an adult)", hs.adult_age)


def _check_trained_members(hs: HouseholdSynthesizer, where: str) -> None:
    """The sizes ``sample`` allots, the youngest age and ``adult_age`` are those the person models were trained on,
    read from their conditions' training ranges (over the households of positive weight): a household one person
    larger has a member no model saw (``_m_left`` of its oldest member beyond the range), ``min_age`` is the age
    given to a later member drawn younger than any in training, so it is at most the youngest previous member's
    age, and ``adult_age`` is at most the oldest age (:func:`check_adult_age`). Edited (a size 5000 with a share,
    ``min_age`` 1e12), the file drew households of 5000 members from models of at most 9, or persons aged 1e12."""
    from ._members import PREFIX

    left = [r for m in hs.person_models_.values() if (r := _trained_range(m, f"{PREFIX}left")) is not None]
    allotted = [size for size, share in zip(*hs.size_shares_, strict=True) if share > 0]
    if left and allotted and max(allotted) > max(high for _, high in left) + 1:
        raise _fail(where, "size_shares", f"shares of sizes the person models were trained on (at most "
                    f"{max(high for _, high in left) + 1:g} members)", hs.size_shares_)
    prev = _trained_range(hs.person_models_.get("member"), f"{PREFIX}prev_{hs.age_var}") if hs.age_var else None
    if prev is not None and hs.min_age_ > prev[0]:
        raise _fail(where, "min_age", f"the youngest training age, at most the youngest age of a member before "
                    f"another that the member model was trained on ({prev[0]:g})", hs.min_age_)
    check_adult_age(hs, where, "params.adult_age")


def _check_age_labels(model: Any, where: str, key: str) -> None:
    """The age categories of an applicable model are the decimal labels of distinct ages (fit writes
    ``str`` of int64 ages, :func:`._persons.age_category`), of a categorical condition."""
    from ._persons import AGE_CATEGORY

    labels = model.condition_encoder_.stats.get(AGE_CATEGORY)
    ok = model.kinds_.get(AGE_CATEGORY) == "categorical" and isinstance(labels, (list, tuple)) and len(labels) > 0
    ok = ok and all(isinstance(v, str) and re.fullmatch(r"-?[0-9]{1,18}", v) is not None and str(int(v)) == v
                    for v in labels)
    if not (ok and len(set(labels)) == len(labels)):
        raise _fail(where, key, "the decimal labels of distinct integer ages ('16', '17', ...) of a categorical "
                    "condition", labels)


def _categories(value: Any, hs: HouseholdSynthesizer, where: str) -> tuple[list, bool] | None:
    """``[categories, ordered]`` of a categorical geography (absent from files written before it was kept, and for
    other dtypes): distinct str or number values including every value of ``geography_shares``."""
    if value is None:
        return None
    key = "geography_categories"
    if (not isinstance(value, list) or len(value) != 2 or not isinstance(value[0], list)
            or not isinstance(value[1], bool) or hs.geography_dtype_ != "category"):
        raise _fail(where, key, "a pair [categories, ordered] of a 'category' geography", value)
    categories = value[0]
    if not 0 < len(categories) <= _MAX_LEVELS or not all(isinstance(v, str | int | float) for v in categories):
        raise _fail(where, key, "a list of str, number or boolean categories", categories)
    if len(set(categories)) != len(categories) or not set(hs.geography_shares_[0]) <= set(categories):
        raise _fail(where, key, "distinct categories including every value of geography_shares", categories)
    return list(categories), value[1]


def _holds(values: list, dtype: str) -> bool:
    """Whether a column of ``dtype`` holds ``values`` unchanged (a size of 2 is not ``True``, 'Vienna' no int)."""
    try:
        return pd.Series(values, dtype=object).astype(dtype).tolist() == list(values)
    except Exception:  # noqa: BLE001 - a cast of untrusted values to an untrusted dtype fails in many ways (TypeError,
        return False   # ValueError, OverflowError, pandas' DateParseError): any failure means the dtype does not hold them


def _dtype(value: Any, where: str, key: str) -> str:
    try:
        pd.api.types.pandas_dtype(_name(value, where, key))
    except TypeError as exc:
        raise _fail(where, key, "a pandas dtype", value) from exc
    return value


def _context_features(hs: HouseholdSynthesizer) -> list[str]:
    from ._persons import _new_state

    sizes = pd.DataFrame({hs.size_col_: [1.0]})
    return _new_state(hs, sizes).columns()


def pack_models(
    models: dict[str, Synthesizer],
) -> tuple[dict[str, Any], dict[str, torch.Tensor], dict[str, pd.DataFrame]]:
    """Metadata, tensors and tables of several fitted Synthesizers, keys prefixed by name.

    Each model's parts come from :meth:`Synthesizer._export_state`, so the inner format stays
    the Synthesizer's own (metadata as in its file, with ``format_version``).
    """
    meta, tensors, tables = {}, {}, {}
    for name, model in models.items():
        sub_meta, sub_tensors, sub_tables = model._export_state()
        meta[name] = {"format_version": FORMAT_VERSION, **sub_meta}
        tensors.update({f"{name}/{k}": v for k, v in sub_tensors.items()})
        tables.update({f"{name}/{k}": v for k, v in sub_tables.items()})
    return meta, tensors, tables


def unpack_models(
    meta: Mapping[str, Any], tensors: Mapping[str, torch.Tensor], tables: Mapping[str, pd.DataFrame]
) -> dict[str, Synthesizer]:
    """Inverse of :func:`pack_models`: each inner model is rebuilt with :meth:`Synthesizer._from_state`
    (which validates its parts as untrusted data); nothing is written."""
    models = {}
    for name, sub_meta in meta.items():
        sub_tensors = {k.split("/", 1)[1]: v for k, v in tensors.items() if k.startswith(f"{name}/")}
        sub_tables = {k.split("/", 1)[1]: v for k, v in tables.items() if k.startswith(f"{name}/")}
        try:
            models[name] = Synthesizer._from_state(sub_meta, sub_tensors, sub_tables, f"Inner model {name!r}")
        except Exception as exc:  # noqa: BLE001 - an untrusted file: name the inner model
            raise DataValidationError(f"inner model {name!r} is invalid: {exc}") from exc
    return models


