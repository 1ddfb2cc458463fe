"""Weight diagnostics as small pure functions of the weights (and the initial weights)."""

from __future__ import annotations

import numpy as np

__all__ = ["kish_ess", "design_effect", "weight_ratio_range", "relative_errors"]


def kish_ess(weights: np.ndarray) -> float:
    """Kish effective sample size ``(sum w)^2 / sum w^2``.

    Examples
    --------
    >>> kish_ess(np.array([1.0, 1.0, 2.0]))
    2.6666666666666665
    """
    w = np.asarray(weights, dtype=np.float64)
    return float(w.sum() ** 2 / np.dot(w, w))


def design_effect(weights: np.ndarray) -> float:
    """Kish design effect due to unequal weights, ``n sum w^2 / (sum w)^2 = 1 + cv^2``.

    Examples
    --------
    >>> design_effect(np.array([1.0, 1.0, 1.0]))
    1.0
    """
    w = np.asarray(weights, dtype=np.float64)
    return float(len(w) * np.dot(w, w) / w.sum() ** 2)


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
    a = np.asarray(achieved, dtype=np.float64)
    t = np.asarray(target, dtype=np.float64)
    return np.abs(a - t) / np.where(t == 0, 1.0, np.abs(t))
