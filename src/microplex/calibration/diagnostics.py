"""Weight diagnostics as small pure functions of the weights (and the initial weights).

:func:`kish_ess`, :func:`design_effect` and the relative error live in :mod:`microplex._stats` (re-exported here).
"""

from __future__ import annotations

import numpy as np

from .._stats import design_effect, kish_ess, relative_error

__all__ = ["kish_ess", "design_effect", "weight_ratio_range", "relative_errors"]


def weight_ratio_range(weights: np.ndarray, initial: np.ndarray) -> tuple[float, float]:
    """Smallest and largest ratio ``weights / initial``.

    Examples
    --------
    >>> weight_ratio_range(np.array([1.0, 3.0]), np.array([2.0, 2.0]))
    (0.5, 1.5)
    """
    g = np.asarray(weights, dtype=np.float64) / np.asarray(initial, dtype=np.float64)
    return float(g.min()), float(g.max())


def relative_errors(achieved: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``|achieved - target| / |target|`` (absolute error where the target is 0).

    Examples
    --------
    >>> relative_errors(np.array([101.0, 0.5]), np.array([100.0, 0.0])).tolist()
    [0.01, 0.5]
    """
    return np.abs(relative_error(achieved, target))
