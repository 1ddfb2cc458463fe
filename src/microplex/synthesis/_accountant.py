"""A Rényi-DP accountant for the (Poisson-subsampled) Gaussian mechanism.

Differentially private training (``Synthesizer(epsilon=...)``) releases two kinds of noisy
quantities: sums of clipped per-record gradients at every DP-SGD step (each record joins a step
with probability ``q``, Poisson sampling) and, once, noisy sums of bounded per-record statistics
(the Gaussian mechanism, ``q = 1``). Both are the sampled Gaussian mechanism with noise
multiplier ``sigma`` (noise standard deviation over L2 sensitivity). Its Rényi divergence of
integer order ``alpha`` is exact (Mironov, Talwar and Zhang 2019, section 3.3):

    RDP(alpha) = log(sum_k C(alpha, k) (1 - q)^(alpha - k) q^k exp((k^2 - k) / (2 sigma^2))) / (alpha - 1),

RDP adds up over steps and mechanisms, and a total RDP curve converts to (epsilon, delta)-DP by
the conversion of Balle et al. (2020), minimised over the orders :data:`ORDERS`:

    epsilon = RDP(alpha) + log((alpha - 1) / alpha) - (log delta + log alpha) / (alpha - 1).

These are the formulas of Opacus' RDP accountant (``opacus.accountants.analysis.rdp``), restricted
to integer orders (valid at any order: fewer orders only give a bound no tighter); the tests pin
this module's epsilons to Opacus' on the same orders. Opacus itself is not a dependency: its
per-sample gradients refuse zuko's masked layers (measured with Opacus 1.6), and the accountant is
these few lines.

The neighbouring relation is add/remove one record.

References
----------
Mironov, Talwar, Zhang. Rényi Differential Privacy of the Sampled Gaussian Mechanism (2019).
Balle, Barthe, Gaboardi, Hsu, Sato. Hypothesis Testing Interpretations and Rényi Differential
Privacy (AISTATS 2020).
Abadi et al. Deep Learning with Differential Privacy (CCS 2016).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from scipy.special import gammaln, logsumexp

__all__ = ["ORDERS", "MAX_NOISE_MULTIPLIER", "MAX_RELEASE_NOISE_MULTIPLIER", "MIN_MECHANISM_DELTA",
           "rdp_sampled_gaussian", "epsilon_from_rdp", "epsilon_spent", "solve_noise_multiplier"]

#: Rényi orders the accountant evaluates (integers).
ORDERS = np.array(list(range(2, 65)) + [80, 96, 128, 192, 256, 384, 512, 1024], dtype=float)
#: Largest noise multiplier :func:`solve_noise_multiplier` considers: a budget that needs more is
#: too small for the requested steps (the noise would swamp any gradient).
MAX_NOISE_MULTIPLIER = 100.0
#: Smallest delta of one mechanism that a model file's privacy record may hold (``log(delta)`` stays
#: finite and far from the subnormal floats, whose rounding would break the sum of the deltas).
MIN_MECHANISM_DELTA = 1e-300
#: Largest noise multiplier of a one-shot release (the statistics: one query, whose noise is set
#: against the number of records rather than against a gradient).
MAX_RELEASE_NOISE_MULTIPLIER = 1e4


def _log_binom(orders: np.ndarray) -> np.ndarray:
    """log C(alpha, k) for every order (rows) and k = 0 .. max order (columns; -inf beyond alpha)."""
    a = orders[:, None]
    k = np.arange(int(orders.max()) + 1, dtype=float)[None, :]
    with np.errstate(invalid="ignore"):
        out = gammaln(a + 1) - gammaln(k + 1) - gammaln(np.maximum(a - k, 0) + 1)
    return np.where(k <= a, out, -np.inf)


_LOG_BINOM = _log_binom(ORDERS)


def rdp_sampled_gaussian(q: float, sigma: float, steps: int, orders: np.ndarray = ORDERS) -> np.ndarray:
    """RDP of ``steps`` compositions of the Poisson-subsampled Gaussian mechanism, one value per order.

    Parameters
    ----------
    q : float
        Sampling rate in (0, 1] (1: no subsampling, the plain Gaussian mechanism).
    sigma : float
        Noise multiplier (> 0).
    steps : int
        Number of compositions.

    Examples
    --------
    >>> float(rdp_sampled_gaussian(1.0, 2.0, 1, np.array([3.0]))[0])  # alpha / (2 sigma^2)
    0.375
    """
    orders = np.asarray(orders, dtype=float)
    if q >= 1.0:
        return steps * orders / (2 * sigma**2)
    a = orders.astype(int)[:, None]
    k = np.arange(int(orders.max()) + 1, dtype=float)[None, :]
    lb = _LOG_BINOM if orders is ORDERS else _log_binom(orders)
    terms = lb + k * np.log(q) + (a - k) * np.log1p(-q) + (k * k - k) / (2 * sigma**2)
    out = logsumexp(np.where(k <= a, terms, -np.inf), axis=1) / (orders - 1)
    return steps * out


def epsilon_from_rdp(rdp: np.ndarray, delta: float, orders: np.ndarray = ORDERS) -> float:
    """Smallest epsilon over the orders for which the RDP curve ``rdp`` gives (epsilon, delta)-DP."""
    eps = rdp + np.log1p(-1.0 / orders) - (np.log(delta) + np.log(orders)) / (orders - 1)
    return float(max(np.nanmin(eps), 0.0))


def epsilon_spent(mechanisms: Iterable[dict], delta: float) -> float:
    """Epsilon at ``delta`` of the composition of mechanisms, each a dict with ``sampling_rate``,
    ``noise_multiplier`` and ``steps`` (their RDP curves add up).

    Examples
    --------
    >>> round(epsilon_spent([{"sampling_rate": 1.0, "noise_multiplier": 3.0, "steps": 1}], 1e-5), 4)
    1.3863
    """
    total = np.zeros(len(ORDERS))
    for m in mechanisms:
        total += rdp_sampled_gaussian(float(m["sampling_rate"]), float(m["noise_multiplier"]), int(m["steps"]))
    return epsilon_from_rdp(total, delta)


def solve_noise_multiplier(epsilon: float, delta: float, q: float, steps: int,
                           cap: float = MAX_NOISE_MULTIPLIER) -> float:
    """Smallest noise multiplier (to a relative 1e-4) whose ``steps`` Poisson-sampled Gaussian steps
    at rate ``q`` spend at most ``epsilon`` at ``delta``; the returned value always satisfies it.

    Returns ``inf`` when even ``cap`` (:data:`MAX_NOISE_MULTIPLIER` by default) spends more (the
    caller raises).

    Examples
    --------
    >>> sigma = solve_noise_multiplier(1.0, 1e-5, 0.02, 500)
    >>> epsilon_spent([{"sampling_rate": 0.02, "noise_multiplier": sigma, "steps": 500}], 1e-5) <= 1.0
    True
    """
    def eps(sigma: float) -> float:
        return epsilon_from_rdp(rdp_sampled_gaussian(q, sigma, steps), delta)

    hi = float(cap)
    if eps(hi) > epsilon:
        return float("inf")
    lo = 1e-3
    if eps(lo) <= epsilon:
        return lo
    while hi / lo > 1 + 1e-4:  # invariant: eps(lo) > epsilon >= eps(hi)
        mid = float(np.sqrt(lo * hi))
        if eps(mid) > epsilon:
            lo = mid
        else:
            hi = mid
    return hi
