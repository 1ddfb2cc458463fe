"""The fitted state of a :class:`~microplex.synthesis.Synthesizer` as plain data, and back.

:func:`export_state` gives the three parts of a model file: JSON-ready metadata, the network's
tensors and the training-conditions table. :func:`restore_state` validates such parts as untrusted
data (every field, every tensor name and shape against the architecture the parameters declare,
before any weight is loaded) and builds the fitted estimator. ``Synthesizer.save``/``load``, the
household model file and the streaming writer's model hash all go through this pair; nothing else
reads a Synthesizer's fitted internals.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from .._errors import DataValidationError
from .._params import check_bool, check_choice, to_python
from . import _conditions, _dp_tree, _model_file
from .sampling import SAMPLING
from .schema import VariableSpec
from .serialization import check_format
from ._dp import DP_PARAMS, MARGIN
from ._dp_margins import SCALE_RANGE
from ._dp_record import check_record
from ._dp_tree import PARTS as TREE_PARTS
from ._checks import EXTRAPOLATION_MARGIN
from ._schedule import BATCH_SIZE
from ._structure import check_rules, rules_table
from .transforms import CategoricalEncoder, ConditionEncoder, ContinuousEncoder

if TYPE_CHECKING:
    from .synthesizer import Synthesizer

__all__ = ["DRAW_PARAMS", "FORMAT", "State", "export_state", "restore_state"]

#: The ``format`` field of a Synthesizer model file.
FORMAT = "microplex.Synthesizer"
#: Metadata (JSON-ready), tensors (name to tensor) and tables (name to DataFrame).
State = tuple[dict[str, Any], dict[str, torch.Tensor], dict[str, pd.DataFrame]]


#: Synthesizer parameters that act when drawing, not when fitting: a ``set_params`` after ``fit`` is saved.
DRAW_PARAMS = ("sampling", "verbose")


def export_state(synth: Synthesizer, *, tables: bool = True) -> State:
    """The fitted state of ``synth``: metadata, the network's state dict, the conditions table.

    The metadata holds the constructor parameters (JSON types), kinds, dtypes, encoders, the
    pattern table and the training history; the ``conditions`` table holds the training
    conditions and their weights (column ``__weight__``). A Synthesizer fitted with
    ``condition_model=True`` has no such table: its metadata holds the condition model and the
    numeric conditions' ranges instead (see :mod:`._conditions`), and neither has a DP
    Synthesizer without conditions (it keeps no training row or weight). ``tables=False`` leaves
    the table out (the condition model inside a model file).
    """
    from .. import __version__

    if hasattr(synth, "privacy_"):  # the loader's check first: save never writes a file that load refuses
        try:
            check_record(synth, synth.privacy_, "The fitted model")
        except DataValidationError as exc:
            raise DataValidationError(f"Cannot save or export this Synthesizer, nothing is written: {exc}") from None
    # The parameters of the fit, not of a later set_params (which would describe another model: a file the
    # loader refuses, e.g. other network sizes or a privacy record of another epsilon); those that act only
    # when drawing (DRAW_PARAMS) as they are now.
    now = synth.get_params(deep=False)
    try:  # checked as load() checks them: a set_params(sampling="bogus") after fit made a file load() refused
        check_choice(now["sampling"], "sampling", SAMPLING)
        check_bool(now["verbose"], "verbose")
    except DataValidationError as exc:
        raise DataValidationError(f"Cannot save or export this Synthesizer, nothing is written: {exc}") from None
    params = {**synth.fitted_params_, **{k: now[k] for k in DRAW_PARAMS}}
    synthetic = hasattr(synth, "condition_model_")  # the fitted state decides, not a later set_params
    params["condition_model"] = True
    if not synthetic:
        del params["condition_model"]  # absent when off: files of the default settings are unchanged
    private = hasattr(synth, "privacy_")
    for k in DP_PARAMS:  # absent without DP: files of the default settings are unchanged
        if not private:
            del params[k]
    if private:
        params["public_bounds"] = {k: [float(v[0]), float(v[1])] for k, v in (params["public_bounds"] or {}).items()}
        params["public_categories"] = {k: [to_python(v) for v in c] for k, c in (params["public_categories"] or {}).items()}
        split = params["budget_split"]
        params["budget_split"] = None if split is None else {k: float(v) for k, v in split.items()}
    params["schema"] = {k: v.to_dict() for k, v in (params["schema"] or {}).items()}
    params["target_vars"], params["condition_vars"] = list(params["target_vars"]), list(params["condition_vars"])
    params["hidden_features"] = None if params["hidden_features"] is None else list(params["hidden_features"])
    metadata = {
        "format": FORMAT,
        "microplex_version": __version__,
        "params": params,
        "kinds": synth.kinds_,
        "dtypes": synth.dtypes_,
        "encoders": {n: e.to_dict() for n, e in synth.encoders_.items()},
        "encoder_types": {n: type(e).__name__ for n, e in synth.encoders_.items()},
        "condition_encoder": synth.condition_encoder_.to_dict(),
        "patterns": synth.patterns_.tolist(),
        "history": synth.history_.to_dict(orient="list"),
    }
    if private:
        metadata["privacy"] = synth.privacy_
    tensors = synth.model_.state_dict()
    if hasattr(synth, "condition_tree_"):  # a DP condition model's tree (._dp_tree)
        tree_meta, tree_tensors = synth.condition_tree_.to_parts()
        metadata[_dp_tree.KEY] = tree_meta
        tensors = {**tensors, **{f"{_dp_tree.KEY}.{k}": v for k, v in tree_tensors.items()}}
    if synthetic:
        entries, sub_tensors = _conditions.export_parts(synth, export_state)
        metadata.update(entries)
        return metadata, {**tensors, **sub_tensors}, {}
    if not tables or private:  # a DP model keeps no training row or weight (it has no conditions here)
        return metadata, tensors, {}
    if not hasattr(synth, "training_conditions_"):  # kept its conditions' ranges only (drop_training_conditions)
        metadata[_conditions.RANGES] = {n: [lo, hi] for n, (lo, hi) in synth._condition_ranges().items()}
        return metadata, tensors, {}
    conditions = synth.training_conditions_.copy()
    conditions["__weight__"] = synth.training_weights_
    return metadata, tensors, {"conditions": conditions}


def _same_shapes(tensors: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> bool:
    """Whether ``tensors`` has exactly the names and shapes of ``expected`` (the layout check of
    :func:`._model_file.check_tensors`, without raising: to tell an older layout apart)."""
    return set(tensors) == set(expected) and all(tuple(tensors[k].shape) == tuple(v.shape) for k, v in expected.items())


def restore_state(
    cls: type[Synthesizer], meta: Any, tensors: dict[str, torch.Tensor], tables: dict[str, pd.DataFrame], label: str,
    *, nested: bool = False,
) -> Synthesizer:
    """Inverse of :func:`export_state`: a fitted ``cls`` from untrusted parts.

    ``meta`` carries ``format`` and ``format_version`` as in a file. ``nested`` marks a condition
    model (no table). Any defect raises one :class:`~microplex.DataValidationError` naming
    ``label`` and the field.
    """
    check_format(meta, FORMAT, label)
    synthetic = _model_file.is_fully_synthetic(meta)
    if synthetic and nested:
        raise DataValidationError(f"{label} is not a valid Synthesizer model file: a condition model has no condition model.")
    # A DP model keeps no training row: a DP file without conditions written before session 35 holds a
    # table of empty condition rows and the records' weights, which is accepted and dropped (whether the
    # file is a DP one is read here from its untrusted parameters, and checked with them below).
    private = isinstance(meta.get("params"), dict) and meta["params"].get("epsilon") is not None
    ranges_only = _model_file.keeps_ranges_only(meta)  # a HouseholdSynthesizer's inner model: no table
    if nested and ranges_only:
        raise DataValidationError(f"{label} is not a valid Synthesizer model file: a condition model keeps no "
                                  f"field {_conditions.RANGES!r}.")
    expected = ([[]] if synthetic or nested or ranges_only else [[], ["conditions"]] if private
                else [["conditions"]])
    if sorted(tables) not in expected:
        raise DataValidationError(
            f"{label} is not a valid model file: it holds tables {sorted(tables)}, expected {expected[0]}."
        )
    _model_file.check_metadata(meta, label, tuple(cls._get_param_names()))
    params = dict(meta["params"])
    params.setdefault("condition_model", None)  # absent: fitted without one (None resolves to False there)
    params.setdefault("sampling", "independent")  # a file written before stratified draws
    params.setdefault("standardize", "moments")  # a file written before quantile standardization
    params.setdefault("rounding", False)  # a file written before rounding grids: its encoders hold none
    params.setdefault("structural_zeros", False)  # a file written before structural zeros: its model has no rules
    if "max_heaps" not in params:  # a file written before heap states: its model has none
        params["max_heaps"] = 0
    try:
        params["schema"] = {k: VariableSpec.from_dict(v) for k, v in params["schema"].items()} or None
        if params["hidden_features"] is not None:
            params["hidden_features"] = tuple(params["hidden_features"])
        self = cls(**params)
        p = self._check_params()
    except DataValidationError as exc:
        raise DataValidationError(f"{label} is not a valid Synthesizer model file: field 'params': {exc}") from None
    if p["condition_model"] != synthetic:  # e.g. a DP file with conditions whose condition model was removed
        raise DataValidationError(
            f"{label} is not a valid Synthesizer model file: field 'params': its settings "
            f"{'fit' if p['condition_model'] else 'do not fit'} a condition model, but the file "
            f"{'holds' if synthetic else 'does not hold'} one.")
    self.fitted_params_ = copy.deepcopy(self.get_params(deep=False))
    if p["dp"]:  # an older DP file's table is dropped unread
        tables = {}
    self.kinds_, self.dtypes_ = meta["kinds"], meta["dtypes"]
    types = {"ContinuousEncoder": ContinuousEncoder, "CategoricalEncoder": CategoricalEncoder}
    self.encoders_ = {n: types[meta["encoder_types"][n]].from_dict(meta["encoders"][n]) for n in p["target_vars"]}
    self.condition_encoder_ = ConditionEncoder.from_dict(meta["condition_encoder"])
    self.n_features_in_ = len(self.condition_vars)
    self._build_layout()
    sizes = [self.encoders_[n].n_states for n in self.discrete_vars_]
    self.patterns_ = _model_file.check_patterns(meta["patterns"], sizes, label)
    self.history_ = pd.DataFrame(meta["history"])
    self._ranges = None
    if synthetic:
        tensors, sub_tensors = _conditions.split_tensors(tensors)
        _conditions.restore_parts(self, meta, sub_tensors, label, restore_state)
    elif ranges_only:
        _conditions.restore_ranges(self, meta[_conditions.RANGES], f"{label} is not a valid Synthesizer model file")
    elif not nested and not p["dp"]:
        conditions = tables["conditions"].copy()
        _model_file.check_conditions_table(
            conditions, p["condition_vars"], self.kinds_, self.condition_encoder_.stats, label,
            self.condition_encoder_.missing)
        self.training_weights_ = conditions.pop("__weight__").to_numpy(float)
        self.training_conditions_ = conditions
    stored_ranges = getattr(self, "_ranges", None) is not None  # no conditions table: nothing else to check with
    if stored_ranges or hasattr(self, "training_conditions_"):
        _check_condition_scales(self._condition_ranges(), self.condition_encoder_.stats, label)
    if stored_ranges and not p["dp"]:  # a DP file's: against its public bounds, after its privacy record
        _check_condition_spread(self._ranges, self.condition_encoder_.stats, label, 0.0)
    if hasattr(self, "training_conditions_"):
        _model_file.check_condition_moments(self.training_conditions_, self.training_weights_, self.kinds_,
                                            self.condition_encoder_.stats, label)
    prefix = _dp_tree.KEY + "."
    tree_tensors = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    if _dp_tree.KEY in meta or tree_tensors:  # only a DP condition model has a tree
        if not (nested and p["dp"]) or _dp_tree.KEY not in meta:
            raise DataValidationError(f"{label} is not a valid Synthesizer model file: field {_dp_tree.KEY!r} (a "
                                      "tree of the conditions) belongs to a DP condition model only, with its tensors.")
        tensors = {k: v for k, v in tensors.items() if not k.startswith(prefix)}
        self.condition_tree_ = _dp_tree.ConditionTree.from_parts(meta[_dp_tree.KEY], tree_tensors, self, label)
    if p["dp"]:  # checked against the model's structure: its condition model and tree are restored above
        self.privacy_ = check_record(self, meta.get("privacy"), label)
    if p["dp"] and stored_ranges:  # a DP file's ranges are the public bounds
        _model_file.check_public_conditions(self._ranges, meta["params"].get("public_bounds"), label)
        _check_condition_spread(self._ranges, self.condition_encoder_.stats, label, MARGIN)
    try:
        self._check_model_size(len(conditions) if tables else int(p["batch_size"] or BATCH_SIZE))
    except DataValidationError as exc:
        raise DataValidationError(f"{label} is not a valid Synthesizer model file: {exc}") from None
    enc = self.condition_encoder_
    self.structure_ = check_rules(tensors, enc, len(self.patterns_), label)
    if self.structure_ is not None and not p["structural_zeros"]:
        raise DataValidationError(f"{label} is not a valid Synthesizer model file: it holds structural zeros "
                                  "(tensors 'rule_columns', 'rule_forbidden') but its params set structural_zeros "
                                  "to False.")
    if self.structure_ is not None and "rule_bounds" not in tensors:  # written before tails were cells
        tensors = {**tensors, "rule_bounds": torch.as_tensor(self.structure_.bounds)}
    self.structural_zeros_ = rules_table(self)
    model = self._new_model()
    # A DP file written before session 30: a pattern head as wide as the flow's networks, no base scale (the
    # layout of a model fitted without DP). The condition tree came later: a record with a tree's mechanisms
    # belongs to a file of the current layout.
    older = not any(m["part"].endswith(TREE_PARTS) for m in self.privacy_["mechanisms"]) if p["dp"] else False
    if older and not _same_shapes(tensors, model.state_dict()):
        legacy = self._new_model(older_dp_layout=True)
        if _same_shapes(tensors, legacy.state_dict()):
            model = legacy
    _model_file.check_tensors(tensors, model.state_dict(), label)
    scale = tensors.get("flow.base_scale")
    lo, hi = SCALE_RANGE
    if scale is not None and not bool(((scale >= lo) & (scale <= hi)).all()):
        raise DataValidationError(
            f"{label} is not a valid Synthesizer model file: tensor 'flow.base_scale' holds "
            f"{[round(float(v), 4) for v in scale][:5]}; a DP fit sets each scale within [{lo:g}, {hi:g}].")
    model.load_state_dict(tensors)
    model.eval()
    self.model_ = model
    return self


#: Largest standardized condition value a model may meet (the networks compute in float32, whose
#: largest value is about 3.4e38); a fitted model's are many orders of magnitude smaller.
MAX_STANDARDIZED = 1e30


def _check_condition_spread(ranges: dict[str, tuple[float, float]], stats: dict[str, Any], label: str,
                            slack: float) -> None:
    """Refuses a file whose numeric condition's stored mean lies outside its stored range [min, max], or whose
    standard deviation exceeds half the range (no weighted distribution on [min, max] spreads more): fit computes
    both from the same rows (of a DP model: from draws of its condition model, within the public bounds widened
    by ``slack`` of their width). Edited, they loaded and fed the flow other conditions than it learnt from (a
    mean of 400 for ages 0 to 94 drew every income missing). Smaller edits stay within these limits."""
    for name, (lo, hi) in ranges.items():
        mean, std = (float(v) for v in stats[name])
        tol = slack * (hi - lo) + 1e-12 * max(abs(lo), abs(hi), 1.0)
        ok = lo - tol <= mean <= hi + tol and (std <= (hi - lo) / 2 + tol or (lo == hi and std == 1.0))
        if not ok:
            raise DataValidationError(
                f"{label} is not a valid Synthesizer model file: field 'condition_encoder.stats.{name}': mean {mean:g} "
                f"and standard deviation {std:g} cannot be those of a condition within its range [{lo:g}, {hi:g}] "
                f"(field 'condition_ranges.{name}'): the mean must lie within it and the standard deviation be at "
                f"most half its width, {(hi - lo) / 2:g}."
            )


def _check_condition_scales(ranges: dict[str, tuple[float, float]], stats: dict[str, Any], label: str) -> None:
    """Refuses a file whose numeric conditions, standardized by its stored mean and standard deviation, reach
    beyond :data:`MAX_STANDARDIZED` anywhere in their training range widened by the extrapolation margin
    (a mean of 1e308 or a standard deviation of 1e-308): fit never writes such numbers, and the draws of such
    a file overflow float32 into garbage instead of failing."""
    for name, (lo, hi) in ranges.items():
        mean, std = stats[name]
        with np.errstate(over="ignore", invalid="ignore"):
            margin = EXTRAPOLATION_MARGIN * (hi - lo)
            reach = max(abs(lo - margin - mean), abs(hi + margin - mean)) / std
        if not reach <= MAX_STANDARDIZED:
            raise DataValidationError(
                f"{label} is not a valid Synthesizer model file: field 'condition_encoder.stats.{name}': mean "
                f"{mean:g} and standard deviation {std:g} standardize the condition's range [{lo:g}, {hi:g}] to "
                f"values beyond {MAX_STANDARDIZED:g}, which no fit writes."
            )
