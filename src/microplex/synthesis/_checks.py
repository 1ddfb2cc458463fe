"""Parameter limits and checks of the Synthesizer (messages name the parameter or column)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._errors import DataValidationError
from .._params import check_int
from .schema import VariableSpec

__all__ = [
    "EXTRAPOLATION_MARGIN", "MAX_BINS", "MAX_HIDDEN_LAYERS", "MAX_HIDDEN_UNITS", "MAX_LEARNING_RATE",
    "MAX_HEAPS", "MAX_POINT_MASSES", "MAX_THREADS", "MAX_TRANSFORMS", "check_effective_size", "check_hidden", "check_schema",
    "overflow_message",
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
    scaled = w / w.max()
    ess = scaled.sum() ** 2 / (scaled**2).sum()
    if ess < 2 and weight_col is None:
        raise DataValidationError(f"'data' has {len(w)} record; at least 2 are needed to fit.")
    if ess < 2:
        raise DataValidationError(
            f"Weight column {weight_col!r} puts almost all the weight on one record (Kish effective sample "
            f"size {ess:.3g}, {int((w > 0).sum())} records with positive weight); at least 2 is needed to fit."
        )


def overflow_message(role: str, name: str, series: pd.Series) -> str:
    return (
        f"{role} column {name!r} cannot be standardized in float64/float32 (largest |value| "
        f"{float(np.abs(series.to_numpy(float)).max()):g}); rescale it (e.g. log, or a smaller unit) or drop "
        "the extreme records."
    )
