"""Calibration distances as values: linear (chi-square), raking and logit, plus a registry.

A calibration distance is the pair ``(F, F')`` of Deville & Sarndal (1992): the calibrated weight of a
record is ``w = d * F(x'lambda)`` with ``F(0) = 1``, and the Newton solver on the dual needs ``F'``.
An optional dual *potential* ``rho`` with ``rho' = F`` lets the solver use a line search on the
dual objective; without it the solver backtracks on the squared misfit.

This mirrors R ``survey::make.calfun(Fm1, dF, name)``, except that :attr:`Distance.inverse` returns
the weight ratio ``g = F(u)`` itself rather than ``g - 1``. Bounds ``(lower, upper)`` on ``g`` are
passed to every function, as in R.

References
----------
Deville, J.-C. and Sarndal, C.-E. (1992). Calibration estimators in survey sampling.
*Journal of the American Statistical Association*, 87(418), 376-382.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import expit

__all__ = [
    "Distance",
    "DISTANCES",
    "make_distance",
    "register_distance",
    "get_distance",
    "linear",
    "raking",
    "logit",
]

Bounds = tuple[float, float]
ArrayFn = Callable[[np.ndarray, Bounds], np.ndarray]


@dataclass(frozen=True)
class Distance:
    """Creates a calibration distance from its inverse derivative ``F`` and ``F'``.

    Parameters
    ----------
    name : str
        Registry key (``"linear"``, ``"raking"``, ``"logit"`` or a user name).
    inverse : callable (u, bounds) -> g
        ``F``: maps the linear predictor ``u = x'lambda`` of shape ``(n,)`` to weight ratios ``g``.
    derivative : callable (u, bounds) -> F'(u)
        Derivative of ``F``; zero where a bound is active.
    potential : callable (u, bounds) -> rho(u), optional
        Antiderivative of ``F`` (the dual potential), used for the line search.
    requires_finite_bounds : bool, default=False
        Whether both bounds must be finite (logit).
    nonnegative : bool, default=True
        Whether ``F`` only returns non-negative ratios (raking, logit with ``lower >= 0``).
    """

    name: str
    inverse: ArrayFn
    derivative: ArrayFn
    potential: ArrayFn | None = None
    requires_finite_bounds: bool = False
    nonnegative: bool = True

    def __repr__(self) -> str:
        return f"Distance({self.name!r})"


def make_distance(
    inverse: ArrayFn,
    derivative: ArrayFn,
    name: str,
    potential: ArrayFn | None = None,
    *,
    requires_finite_bounds: bool = False,
    nonnegative: bool = False,
) -> Distance:
    """Creates a user calibration distance (the analogue of R ``survey::make.calfun``).

    Examples
    --------
    >>> import numpy as np
    >>> half = make_distance(lambda u, b: 1 + u / 2, lambda u, b: np.full_like(u, 0.5), "half-linear")
    >>> float(half.inverse(np.array([2.0]), (-np.inf, np.inf))[0])
    2.0
    """
    return Distance(name, inverse, derivative, potential, requires_finite_bounds, nonnegative)


# ----------------------------------------------------------------------------------- linear
def _lin_inverse(u: np.ndarray, bounds: Bounds) -> np.ndarray:
    return np.clip(1.0 + u, bounds[0], bounds[1])


def _lin_derivative(u: np.ndarray, bounds: Bounds) -> np.ndarray:
    return ((u < bounds[1] - 1.0) & (u > bounds[0] - 1.0)).astype(np.float64)


def _lin_potential(u: np.ndarray, bounds: Bounds) -> np.ndarray:
    lo, hi = bounds[0] - 1.0, bounds[1] - 1.0
    v = np.clip(u, lo, hi)
    out = v + 0.5 * v * v
    if math.isfinite(hi):
        out = out + bounds[1] * np.maximum(u - hi, 0.0)
    if math.isfinite(lo):
        out = out + bounds[0] * np.minimum(u - lo, 0.0)
    return out


# ----------------------------------------------------------------------------------- raking
def _log(x: float) -> float:
    return math.log(x) if x > 0 else -math.inf


def _rak_inverse(u: np.ndarray, bounds: Bounds) -> np.ndarray:
    return np.clip(np.exp(np.minimum(u, 700.0)), bounds[0], bounds[1])


def _rak_derivative(u: np.ndarray, bounds: Bounds) -> np.ndarray:
    lo, hi = _log(bounds[0]), _log(bounds[1]) if math.isfinite(bounds[1]) else math.inf
    return np.where((u < hi) & (u > lo), np.exp(np.minimum(u, 700.0)), 0.0)


def _rak_potential(u: np.ndarray, bounds: Bounds) -> np.ndarray:
    lo = _log(bounds[0])
    hi = _log(bounds[1]) if math.isfinite(bounds[1]) else math.inf
    v = np.clip(u, lo, hi)
    out = np.exp(np.minimum(v, 700.0)) - 1.0
    if math.isfinite(hi):
        out = out + bounds[1] * np.maximum(u - hi, 0.0)
    if math.isfinite(lo):
        out = out + bounds[0] * np.minimum(u - lo, 0.0)
    return out


# ----------------------------------------------------------------------------------- logit
def _logit_consts(bounds: Bounds) -> tuple[float, float, float]:
    lo, hi = float(bounds[0]), float(bounds[1])
    return lo, hi, (hi - lo) / ((hi - 1.0) * (1.0 - lo))


def _logit_arg(u: np.ndarray, bounds: Bounds) -> tuple[float, float, float, np.ndarray]:
    lo, hi, a = _logit_consts(bounds)
    return lo, hi, a, a * u + math.log(1.0 - lo) - math.log(hi - 1.0)


def _logit_inverse(u: np.ndarray, bounds: Bounds) -> np.ndarray:
    # g = (L(U-1) + U(1-L)e) / (U-1 + (1-L)e) written as a logistic in u; scipy's expit does not overflow
    # (1 / (1 + exp(-z)) warned "overflow encountered in exp" far below L, an error under -W error)
    lo, hi, _, z = _logit_arg(u, bounds)
    return lo + (hi - lo) * expit(z)


def _logit_derivative(u: np.ndarray, bounds: Bounds) -> np.ndarray:
    lo, hi, a, z = _logit_arg(u, bounds)
    return (hi - lo) * a * expit(z) * expit(-z)


def _logit_potential(u: np.ndarray, bounds: Bounds) -> np.ndarray:
    lo, hi, a = _logit_consts(bounds)
    z = np.logaddexp(math.log(hi - 1.0), math.log(1.0 - lo) + a * u)
    return lo * u + (hi - lo) / a * (z - math.log(hi - lo))


linear = Distance("linear", _lin_inverse, _lin_derivative, _lin_potential, nonnegative=False)
raking = Distance("raking", _rak_inverse, _rak_derivative, _rak_potential)
logit = Distance("logit", _logit_inverse, _logit_derivative, _logit_potential, requires_finite_bounds=True)

#: Name -> distance of every registered calibration distance.
DISTANCES: dict[str, Distance] = {}


def register_distance(distance: Distance, *aliases: str) -> Distance:
    """Adds ``distance`` to :data:`DISTANCES` under its name and ``aliases``; returns it."""
    for key in (distance.name, *aliases):
        DISTANCES[key] = distance
    return distance


register_distance(linear, "chi-square", "greg")
register_distance(raking, "exponential")
register_distance(logit)


def get_distance(method: str | Distance) -> Distance:
    """Returns the registered distance named ``method`` (or ``method`` itself if a Distance).

    Examples
    --------
    >>> get_distance("raking")
    Distance('raking')
    """
    if isinstance(method, Distance):
        return method
    if isinstance(method, str) and method in DISTANCES:
        return DISTANCES[method]
    from microplex._errors import DataValidationError

    raise DataValidationError(
        f"The 'method' parameter must be a Distance or one of {sorted(DISTANCES)}. Got {method!r} instead."
    )
