"""Parameter limits and checks of the Synthesizer (messages name the parameter or column)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._errors import DataValidationError
from .._params import check_bool, check_choice, check_float, check_int, check_names
from .._stats import kish_ess
from ._schedule import check_epochs
from ._validation import check_reserved
from .sampling import SAMPLING
from .schema import VariableSpec

__all__ = [
    "EXTRAPOLATION_MARGIN", "MAX_BINS", "MAX_HIDDEN_LAYERS", "MAX_HIDDEN_UNITS", "MAX_LEARNING_RATE",
    "MAX_HEAPS", "MAX_POINT_MASSES", "MAX_THREADS", "MAX_TRANSFORMS", "check_effective_size", "check_hidden", "check_schema",
    "check_synthesizer_params", "holds_missing", "overflow_message",
]

#: Upper bounds of the size parameters (beyond them a model cannot be built in memory).
MAX_TRANSFORMS = 64
MAX_BINS = 256
MAX_POINT_MASSES = 64
#: Most heap states per variable (each is an output of that variable's heap head).
MAX_HEAPS = 1024
MAX_HIDDEN_LAYERS = 16
MAX_HIDDEN_UNITS = 16_384
MAX_THREADS = 1024
MAX_LEARNING_RATE = 1e3
#: Largest L2 penalty (Adam's ``weight_decay``): far beyond any useful one, and its gradient, in
#: float32, would overflow near 3e38 (a raw "cannot be converted" error at the first step).
MAX_WEIGHT_DECAY = 1e6
#: Numeric conditions further than this many times their training range beyond it are held
#: at that margin in :meth:`Synthesizer.generate` and :meth:`Synthesizer.log_prob`, with an
#: :class:`~microplex._errors.ExtrapolationWarning`.
EXTRAPOLATION_MARGIN = 0.5
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def check_hidden(value: Any) -> tuple[int, ...] | None:
    if value is None:
        return None
    expected = (f"None or a non-empty tuple of at most {MAX_HIDDEN_LAYERS} ints in [1, {MAX_HIDDEN_UNITS}]")
    if isinstance(value, str | bytes) or not isinstance(value, Sequence | np.ndarray) or not (
            1 <= len(value) <= MAX_HIDDEN_LAYERS):
        raise DataValidationError(f"The 'hidden_features' parameter must be {expected}. Got {value!r:.80} instead.")
    try:
        return tuple(check_int(h, "hidden_features", low=1, high=MAX_HIDDEN_UNITS) for h in value)
    except DataValidationError:
        raise DataValidationError(
            f"The 'hidden_features' parameter must be {expected}. Got {value!r:.80} instead."
        ) from None


def check_schema(value: Any) -> dict[str, VariableSpec] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or not all(
            isinstance(k, str) and isinstance(v, VariableSpec) for k, v in value.items()):
        raise DataValidationError(
            "The 'schema' parameter must be a mapping of column names (str) to VariableSpec, or None. "
            f"Got {value!r:.80} instead."
        )
    return dict(value)


def check_effective_size(w: np.ndarray, weight_col: str | None) -> None:
    """Refuses weights concentrated on fewer than two records (Kish effective sample size < 2)."""
    ess = kish_ess(w)
    if ess < 2 and weight_col is None:
        raise DataValidationError(f"'data' has {len(w)} record; at least 2 are needed to fit.")
    if ess < 2:
        n_pos = int((w > 0).sum())
        where = "almost all the weight on one record" if ess < 1.5 else "its weight on too few records"
        raise DataValidationError(
            f"Weight column {weight_col!r} puts {where} (Kish effective sample size {ess:.6g}, {n_pos} "
            "records with positive weight); an effective size of at least 2 is needed to fit."
        )


#: Standardized values at which every fitted segment must decode to finite numbers (the flow's draws reach them):
#: checked when fitting (``_layout._check_encoded``) and when loading a model file (``_model_file``).
DECODE_PROBE = np.array([-10.0, -3.0, 0.0, 3.0, 10.0])


def holds_missing(dtype: str) -> bool:
    """Whether a column of the pandas dtype ``dtype`` holds missing values: not numpy's integers and booleans (a
    missing value cast into ``int64`` became -9223372036854775808, into ``bool`` True); floats, pandas' nullable
    dtypes, ``category``, ``string`` and ``object`` do. A name that is no dtype holds none.

    Examples
    --------
    >>> [holds_missing(d) for d in ("int64", "uint8", "bool", "float32", "Int64", "boolean", "category", "object")]
    [False, False, False, True, True, True, True, True]
    """
    try:
        resolved = pd.api.types.pandas_dtype(dtype)
    except (TypeError, ValueError):
        return False
    return not (isinstance(resolved, np.dtype) and resolved.kind in "iub")


def overflow_message(role: str, name: str, series: pd.Series) -> str:
    return (
        f"{role} column {name!r} cannot be standardized in float64/float32 (largest |value| "
        f"{float(np.abs(series.to_numpy(float)).max()):g}); rescale it (e.g. log, or a smaller unit) or drop "
        "the extreme records."
    )


def _off_with_dp(synth: Any, name: str, statistic: str) -> bool:
    """A flag for a part that reads the data without noise, resolved: ``None`` is ``True`` exactly when
    ``epsilon`` is not set; ``True`` with ``epsilon`` raises naming the ``statistic`` no DP mechanism covers."""
    flag = check_bool(getattr(synth, name), name, allow_none=True)
    if flag is None:
        return synth.epsilon is None
    if flag and synth.epsilon is not None:
        raise DataValidationError(
            f"The {name!r} parameter cannot be True with 'epsilon': {statistic} no DP mechanism covers. Leave "
            f"{name}=None (off with epsilon) or set it to False."
        )
    return flag


def uses_rounding(synth: Any) -> bool:
    """``synth.rounding`` resolved (a rounding grid is a statistic of the data that no DP mechanism covers)."""
    return _off_with_dp(synth, "rounding", "the shares of round values are statistics of the data that")


def uses_structural_zeros(synth: Any) -> bool:
    """``synth.structural_zeros`` resolved (the rules are statistics of the data that no DP mechanism covers)."""
    return _off_with_dp(synth, "structural_zeros",
                        "which states a condition's category or range never holds is a statistic of the data that")


def uses_condition_model(synth: Any) -> bool:
    """``synth.condition_model`` resolved: ``None`` is ``True`` exactly when ``epsilon`` is set and there are
    conditions (a DP fit must not keep real condition rows), else ``False``."""
    flag = check_bool(synth.condition_model, "condition_model", allow_none=True)
    if flag is None:
        return synth.epsilon is not None and len(check_names(synth.condition_vars, "condition_vars")) > 0
    return flag


def check_synthesizer_params(synth: Any) -> dict[str, Any]:
    """Every parameter of the Synthesizer ``synth``, checked (each message names the parameter);
    returns them in canonical types (the stored attributes stay as given)."""
    p = {
        "target_vars": check_names(synth.target_vars, "target_vars", allow_empty=False),
        "condition_vars": check_names(synth.condition_vars, "condition_vars"),
        "flow": check_choice(synth.flow, "flow", ("maf", "nsf")),
        "transforms": check_int(synth.transforms, "transforms", low=1, high=MAX_TRANSFORMS),
        "hidden_features": check_hidden(synth.hidden_features),
        "bins": check_int(synth.bins, "bins", low=2, high=MAX_BINS),
        "schema": check_schema(synth.schema),
        "point_mass_threshold": check_float(
            synth.point_mass_threshold, "point_mass_threshold", low=0.0, high=1.0,
            low_inclusive=False, high_inclusive=False),
        "max_point_masses": check_int(synth.max_point_masses, "max_point_masses", low=0, high=MAX_POINT_MASSES),
        "epochs": check_epochs(synth.epochs),
        "batch_size": None if synth.batch_size is None else check_int(synth.batch_size, "batch_size", low=1),
        "learning_rate": None if synth.learning_rate is None else check_float(
            synth.learning_rate, "learning_rate", low=0.0, high=MAX_LEARNING_RATE, low_inclusive=False),
        "weight_decay": check_float(synth.weight_decay, "weight_decay", low=0.0, high=MAX_WEIGHT_DECAY),
        "validation_fraction": check_float(
            synth.validation_fraction, "validation_fraction", low=0.0, high=0.5, high_inclusive=False),
        "patience": check_int(synth.patience, "patience", low=1, allow_none=True),
        "verbose": check_bool(synth.verbose, "verbose"),
        "heap_threshold": check_float(synth.heap_threshold, "heap_threshold", low=0.0, high=1.0,
                                      high_inclusive=False),
        "max_heaps": check_int(synth.max_heaps, "max_heaps", low=0, high=MAX_HEAPS),
        "min_heap_count": check_int(synth.min_heap_count, "min_heap_count", low=1),
        "rounding": uses_rounding(synth),
        "structural_zeros": uses_structural_zeros(synth),
        "condition_model": uses_condition_model(synth),
        "sampling": check_choice(synth.sampling, "sampling", SAMPLING),
        "standardize": check_choice(synth.standardize, "standardize", ("quantile", "moments")),
    }
    if p["condition_model"] and not p["condition_vars"]:
        raise DataValidationError(
            "The 'condition_model' parameter needs condition columns ('condition_vars'); without "
            "conditions every record is already drawn from the model."
        )
    overlap = sorted(set(p["target_vars"]) & set(p["condition_vars"]))
    if overlap:
        raise DataValidationError(f"Columns cannot be both targets and conditions: {overlap}.")
    check_reserved(p["target_vars"] + p["condition_vars"], "Target and condition columns")
    unknown = sorted(set(p["schema"] or {}) - set(p["target_vars"]) - set(p["condition_vars"]))
    if unknown:
        raise DataValidationError(f"schema names columns that are neither targets nor conditions: {unknown}.")
    return p
