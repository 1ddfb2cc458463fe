"""The condition model of a fully synthetic :class:`~microplex.synthesis.Synthesizer`.

With ``condition_model=True`` the Synthesizer fits, besides P(targets | conditions), a second,
unconditional Synthesizer over the condition columns (categorical heads for categorical columns,
point masses, heaps and the flow for numeric ones). :meth:`Synthesizer.sample` then draws the
conditions from that model instead of resampling real training rows, and neither the estimator
nor its model file keeps the training conditions or weights.

In a model file the condition model is stored inside the main one: its metadata under the key
``condition_model`` (a Synthesizer file's metadata, with ``format_version``), its tensors with the
prefix ``condition_model.``, and no table. The numeric conditions' training ranges (used to flag
extrapolation in :meth:`Synthesizer.generate`) are stored under ``condition_ranges``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from .._errors import DataValidationError
from .._random import int_seed, named_child
from ._dp_tree import applies
from .schema import declare_categorical
from .serialization import FORMAT_VERSION, check_nested_version

if TYPE_CHECKING:
    from .synthesizer import Synthesizer

__all__: list[str] = []

#: Metadata key of the condition model, and its tensors' name prefix (with a dot).
KEY = "condition_model"
#: Metadata key of the numeric conditions' training ranges.
RANGES = "condition_ranges"


def fit_condition_model(synth: Synthesizer, data: pd.DataFrame, weight_col: str | None,
                        epochs: int | str | None, seed: int, dp_scale: float = 1.0) -> Synthesizer:
    """An unconditional Synthesizer of ``synth``'s condition columns, fitted on ``data``.

    It has ``synth``'s settings (flow, sizes, thresholds, training schedule), the condition
    columns as targets (their schema entries kept; categorical conditions stay categorical, a
    numeric one may become categorical when it has few values, as a target would) and its own
    seed stream (``named_child(seed, "condition_model")``). It keeps no training rows or weights.
    With DP, ``dp_scale`` scales its share of the budget (from :func:`._dp_plan.plan`).
    """
    conditions = list(synth.condition_vars)
    params = synth.get_params(deep=False)
    schema = declare_categorical({k: v for k, v in (synth.schema or {}).items() if k in conditions},
                                 [n for n in conditions if synth.kinds_[n] == "categorical"])
    params.update(target_vars=conditions, condition_vars=(), schema=schema, condition_model=False)
    if synth.epsilon is not None:  # DP: the "conditions" share of the budget (see ._dp)
        from ._dp_plan import condition_params

        params.update(condition_params(synth, conditions, weight_col, dp_scale))
    sub = type(synth)(**params)
    # With DP the conditions' point-mass candidates are their bounds and 0 only, not round values
    # (_dp.point_mass_candidates): every state of a condition multiplies the condition model's pattern
    # table, whose DP-SGD noise then blurs how the categories go together (cps1 at epsilon 1, 5 seeds:
    # correlation error 0.093 -> 0.104 with `educ` 12 a point mass; session 31).
    sub._round_point_masses = False
    if synth.epsilon is not None:  # DP: several conditions are modelled by a tree of noisy tables (._dp_tree)
        sub._condition_tree = applies(len(conditions))
    # a DP condition model's seed keeps the secret seed's 64 bits (32 were few enough to search for its noise)
    bits = 64 if synth.epsilon is not None else 32
    sub.fit(data, weight_col, epochs=epochs, seed=int_seed(named_child(seed, KEY), bits=bits))
    for k in ("training_conditions_", "training_weights_"):  # a DP condition model keeps none already
        if hasattr(sub, k):
            delattr(sub, k)
    return sub


def condition_ranges(data: pd.DataFrame, synth: Synthesizer, weights: np.ndarray) -> dict[str, tuple[float, float]]:
    """(min, max) of every numeric condition of ``synth`` over the rows of ``data`` of positive ``weights``
    (those the model learns from: a value only records of weight 0 hold widened the range that
    :meth:`~microplex.Synthesizer.generate` holds conditions to, without a warning); missing values are left
    out (fit refuses a condition without a value on those rows)."""
    rows = np.asarray(weights) > 0
    values = {n: data[n].to_numpy(float, na_value=np.nan)[rows]
              for n in synth.condition_vars if synth.kinds_[n] != "categorical"}
    return {n: (float(np.nanmin(x)), float(np.nanmax(x))) for n, x in values.items()}


def draw_conditions(synth: Synthesizer, n: int, seed: int, chunk_size: int, threads: int | None) -> pd.DataFrame:
    """``n`` condition rows drawn from ``synth``'s condition model (no real row is read; a DP
    condition model of several conditions draws from its tree, :mod:`._dp_tree`)."""
    return synth.condition_model_.generate(
        pd.DataFrame(index=pd.RangeIndex(n)), seed=seed, chunk_size=chunk_size, threads=threads
    )


def export_parts(synth: Synthesizer, export: Any) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Metadata entries and prefixed tensors of ``synth``'s condition model (``export`` is
    :func:`._state.export_state`)."""
    meta, tensors, _ = export(synth.condition_model_, tables=False)
    ranges = {n: [lo, hi] for n, (lo, hi) in synth._condition_ranges().items()}
    entries = {KEY: {"format_version": FORMAT_VERSION, **meta}, RANGES: ranges}
    return entries, {f"{KEY}.{k}": v for k, v in tensors.items()}


def split_tensors(tensors: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(main model's tensors, condition model's tensors without the prefix)."""
    prefix = KEY + "."
    sub = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    return {k: v for k, v in tensors.items() if not k.startswith(prefix)}, sub


def restore_parts(synth: Synthesizer, meta: dict[str, Any], tensors: dict[str, torch.Tensor],
                  label: str, restore: Any) -> None:
    """Sets ``synth.condition_model_`` and its condition ranges from untrusted parts, checking
    that the condition model draws exactly ``synth``'s conditions, of the same kinds and
    categories (``restore`` is :func:`._state.restore_state`)."""
    where = f"{label} is not a valid Synthesizer model file"
    # the file's version says which keys it holds: a condition model edited to version 1 could lack them
    if isinstance(meta[KEY], dict):  # not an object: refused by restore as a model's metadata
        check_nested_version(meta, meta[KEY], where, f"field '{KEY}.format_version'")
    sub = restore(type(synth), meta[KEY], tensors, {}, f"{label} (condition model)", nested=True)
    conditions = list(synth.condition_vars)
    if list(sub.target_vars) != conditions or list(sub.condition_vars) or sub.condition_model:
        raise DataValidationError(
            f"{where}: field {KEY!r} must model exactly the conditions {conditions} without conditions of its own."
        )
    stats = synth.condition_encoder_.stats
    for n in conditions:
        drawn = sub.encoders_[n].categories if sub.kinds_[n] == "categorical" else None
        if synth.kinds_[n] == "categorical":
            ok = drawn is not None and pd.Index(drawn, dtype=object).isin(pd.Index(stats[n], dtype=object)).all()
        else:  # a numeric condition, drawn as a number or as numeric categories
            ok = drawn is None or all(isinstance(v, int | float) and not isinstance(v, bool) for v in drawn)
        if not ok:
            raise DataValidationError(
                f"{where}: field {KEY!r} draws values of condition {n!r} that its encoder (kind "
                f"{synth.kinds_[n]!r}) does not accept."
            )
    # a condition the condition model draws missing is one whose missing values the main model takes (the
    # converse need not hold: missing values only on records of weight 0 give the condition model no state)
    drawn_missing = [n for n in conditions if getattr(sub.encoders_[n], "missing", False)]
    if not set(drawn_missing) <= set(synth.condition_encoder_.missing):
        raise DataValidationError(
            f"{where}: field 'condition_encoder.missing' must list the conditions {drawn_missing} that field {KEY!r} "
            f"draws missing. Got {synth.condition_encoder_.missing} instead.")
    restore_ranges(synth, meta[RANGES], where)
    synth.condition_model_ = sub


def restore_ranges(synth: Synthesizer, ranges: Any, where: str) -> None:
    """Sets ``synth``'s numeric conditions' training ranges from untrusted ``ranges`` (``{name: [min, max]}``,
    every numeric condition, finite, min <= max), which :meth:`generate` holds far-off conditions to."""
    numeric = [n for n in synth.condition_vars if synth.kinds_[n] != "categorical"]
    ok = isinstance(ranges, dict) and sorted(ranges) == sorted(numeric) and all(
        isinstance(r, list) and len(r) == 2 and all(
            (isinstance(v, float) and np.isfinite(v)) or (type(v) is int and -(2**63) <= v < 2**63)  # 10**30: TypeError
            for v in r) and r[0] <= r[1]
        for r in ranges.values()
    )
    if not ok:
        raise DataValidationError(
            f"{where}: field {RANGES!r} must map each numeric condition {numeric} to a finite [min, max]. "
            f"Got {str(ranges)[:80]} instead."
        )
    synth._ranges = {n: (float(ranges[n][0]), float(ranges[n][1])) for n in numeric}


def drop_training_conditions(synth: Synthesizer) -> None:
    """Keeps of ``synth``'s training conditions only their numeric ranges (what :meth:`generate` needs): for a
    model only ever given its conditions, such as a HouseholdSynthesizer's inner models. Its file then holds
    the ranges (field ``condition_ranges``) and no conditions table, and :meth:`sample` refuses."""
    synth._condition_ranges()  # computed from the rows before they go
    for k in ("training_conditions_", "training_weights_"):
        if hasattr(synth, k):
            delattr(synth, k)
