"""Where a noisy DP histogram holds mass: the contiguous runs of bins that stand out of the noise.

The statistics release (:func:`._dp.fit_public_encoders`) bins each numeric target's transformed
values between its *public* bounds, which are wide (an income bound of 250,000 where the records
lie below 70,000): most bins are empty and hold only Gaussian noise. Keeping every bin whose noisy
count passes a threshold of two noise standard deviations (session 28) lets about one empty bin in
44 through: with four targets of 32 bins that is about two spurious bins a fit, each holding 2-3
noise standard deviations of mass far beyond the data (on eusilc at epsilon 1, 6% of the employee
incomes released at about 240,000 against a largest real value of 70,000, and the mean income
doubled), while the true tail bins of a sparse target fall under the threshold and are cut off.

:func:`histogram_support` keeps instead the runs of bins that a sum over a window of
:data:`SUPPORT_WINDOW` bins shows to hold mass: the run around the heaviest window, grown from its
heaviest bin, bin by bin, while the window beyond its end passes :data:`SUPPORT_Z` noise standard
deviations of the window's sum (never across 0: the bin holding 0 is split there, and noise beside
positive values is not released as negative ones), and any other run around a window clear of the
runs so far that passes :data:`FAR_Z` (a second mode; noise alone passes it once in about 30,000
windows). Inside a run every bin holds mass (below); outside, none does. Pure post-processing of the release: no budget. A sparse target's tail bins, 1-3 noise
standard deviations each, are still cut off (on eusilc at epsilon 1 the unemployment benefits'
99th percentile a third to a half of the real one).

Inside the runs a bin's noisy count is a biased estimate of its records: the runs grow while the
windows beyond them pass, so the bins at their ends are kept *because* their noise was positive (on
eusilc at epsilon 1, seed 8, the self-employment income's three end bins held 36, 40 and 27 noisy
records against 11, 2 and 0 real ones, at noise sd 31; the release's mean was twice the real one).
The bins of a run's :func:`core`, from its first to its last bin of :data:`CORE_Z` noise standard
deviations, would be kept whatever their noise and keep their noisy counts (negative ones set to
0). The bins beyond the core get their posterior means (:func:`posterior_counts`) under a prior of
bin counts estimated from all the release's histograms at once (empirical Bayes: the
nonparametric maximum likelihood prior of Kiefer and Wolfowitz on a grid). A posterior mean given
the observed count does not depend on why the bin was kept, so it carries no selection bias; a
count of one noise standard deviation or so is pulled towards the empty bins that most such counts
are (the three end bins above: 7, 9 and 3). The cores keep their counts because the prior, a few
atoms fitted to a few dozen bins, would flatten bins of 2-4 noise standard deviations inside a
body (measured in session 34: the condition model's ages on eusilc, KS 0.069 -> 0.092).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.stats import norm

__all__ = ["CORE_Z", "FAR_Z", "SUPPORT_WINDOW", "SUPPORT_Z", "core", "histogram_support", "posterior_counts"]

#: Bins summed to tell mass from noise.
SUPPORT_WINDOW = 3
#: A run grows by a bin while the window beyond it holds at least this many noise standard
#: deviations of its sum (noise alone: one window in 6; a run then grows by a bin or two beside the
#: data, never far from it).
SUPPORT_Z = 1.0
#: A window away from the main run starts a run of its own at this many (one in about 30,000).
FAR_Z = 4.0
#: The prior's grid (:func:`posterior_counts`): steps of this many noise standard deviations up to
#: :data:`PRIOR_LINEAR` of them, then a geometric grid of ratio :data:`PRIOR_RATIO` (a count of many
#: standard deviations is hardly shrunk, so its grid may be coarse).
PRIOR_STEP = 0.25
PRIOR_LINEAR = 6.0
PRIOR_RATIO = 1.05
#: A histogram's core (:func:`core`) runs from its first to its last bin of at least this many noise
#: standard deviations.
CORE_Z = 2.0
#: EM iterations of the prior's weights.
PRIOR_ITERATIONS = 500
#: Counts of at least this many noise standard deviations keep their value (their posterior mean is
#: the count up to the grid's spacing, which is coarser than the noise there).
PRIOR_KEEP_Z = 4.0


def _noise_sd(noise_sd: float | np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``noise_sd`` (one, or one per bin) broadcast to the histogram's ``shape``; it must be finite and >= 0."""
    sd = np.broadcast_to(np.asarray(noise_sd, dtype=float), shape)
    if not (np.isfinite(sd).all() and (sd >= 0).all()):
        raise ValueError(f"The 'noise_sd' parameter must be finite numbers >= 0, one or one per bin. Got {noise_sd!r} "
                         "instead.")
    return sd


def _passes(v: np.ndarray, start: int, stop: int, var: np.ndarray, z: float) -> bool:
    """Whether ``v[start:stop]`` (clipped to the array) sums to ``z`` noise standard deviations of its
    sum (``var``: each bin's noise variance)."""
    start, stop = max(start, 0), min(stop, len(v))
    return stop > start and float(v[start:stop].sum()) >= z * math.sqrt(float(var[start:stop].sum()))


def _grow(v: np.ndarray, lo: int, hi: int, var: np.ndarray, window: int, z: float,
          barriers: frozenset[int]) -> tuple[int, int]:
    """The run ``[lo, hi]`` grown while the window beyond each end passes ``z``, never across a
    barrier."""
    while hi + 1 < len(v) and hi + 1 not in barriers and _passes(v, hi + 1, hi + 1 + window, var, z):
        hi += 1
    while lo > 0 and lo not in barriers and _passes(v, lo - window, lo, var, z):
        lo -= 1
    return lo, hi


def histogram_support(noisy: np.ndarray, noise_sd: float | np.ndarray, window: int = SUPPORT_WINDOW,
                      z: float = SUPPORT_Z, far_z: float = FAR_Z, barriers: tuple[int, ...] = ()) -> np.ndarray:
    """Boolean mask of the bins of ``noisy`` (noisy counts, independent Gaussian noise of standard
    deviation ``noise_sd`` in every bin, or ``noise_sd[i]`` in bin ``i``) that hold mass: the run
    around the heaviest window of ``window`` bins, and around every window clear of the runs so far
    passing ``far_z``, each grown from the window's heaviest bin, bin by bin, while the window
    beyond its end passes ``z`` noise standard deviations of its sum. No run grows across a
    barrier ``b`` (between bins ``b - 1`` and ``b``; the statistics release puts one at 0, so that
    noise beside positive values is not released as negative ones): a run on its other side needs
    a window of its own passing ``far_z``. The heaviest window is kept even when nothing passes (a target's continuous mass is
    somewhere).

    Examples
    --------
    >>> noisy = np.array([3., -40., 20., 180., 900., 410., 60., -30., 10., 170., -20., 5.])
    >>> histogram_support(noisy, 59.0).astype(int).tolist()   # the spike at 170 is noise
    [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0]
    >>> noisy[10] = 600.0                                      # a second mode is not
    >>> histogram_support(noisy, 59.0).astype(int).tolist()
    [0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 0]
    """
    v = np.asarray(noisy, dtype=float)
    sd = _noise_sd(noise_sd, v.shape)
    mask = np.zeros(len(v), dtype=bool)
    if len(v) == 0:
        return mask
    if not sd.any():  # no noise: the bins with mass
        return v > 0
    var = sd ** 2
    width = min(window, len(v))
    sums = np.convolve(v, np.ones(width), mode="valid")  # sums[j] = v[j:j + width].sum()
    start = int(np.argmax(sums))
    far = far_z * np.sqrt(np.convolve(var, np.ones(width), mode="valid"))  # each window's noise sd
    walls = frozenset(int(b) for b in barriers)
    while True:
        top = start + int(np.argmax(v[start:start + width]))  # the window's heaviest bin (not its noise)
        lo, hi = _grow(v, top, top, var, width, z, walls)
        mask[lo:hi + 1] = True
        # windows clear of every run so far (a window overlapping a run owes its sum to the run)
        clear = ~np.convolve(mask, np.ones(width, dtype=bool), mode="valid")
        free = np.flatnonzero(clear & (sums >= far))
        if len(free) == 0:
            return mask
        start = int(free[np.argmax(sums[free])])


def posterior_counts(noisy: Sequence[np.ndarray], noise_sd: Sequence[float | np.ndarray],
                     iterations: int = PRIOR_ITERATIONS) -> list[np.ndarray]:
    """Posterior means of the true counts of histograms released with Gaussian noise, under one prior
    of bin counts estimated from all of them (empirical Bayes).

    ``noisy[j]`` are histogram ``j``'s noisy counts and ``noise_sd[j]`` their noise standard
    deviation (one, or one per bin). The prior is a discrete distribution on a grid of counts from 0
    (:data:`PRIOR_STEP` noise standard deviations apart up to :data:`PRIOR_LINEAR` of them, then
    :data:`PRIOR_RATIO` times the last) whose weights maximize the likelihood of all the noisy
    counts (Kiefer-Wolfowitz's nonparametric maximum likelihood, by ``iterations`` EM steps). Each
    count becomes its posterior mean under that prior, at least 0; counts of at least
    :data:`PRIOR_KEEP_Z` noise standard deviations keep their value. Pure post-processing of the
    release. Without noise (every sd 0) the counts are returned clipped at 0.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> true = np.r_[np.zeros(20), 900.0, 400.0, 60.0, np.zeros(9)]
    >>> [post] = posterior_counts([true + rng.normal(0, 30, 32)], [30.0])
    >>> bool(abs(post[20] - 900) < 40), bool(np.abs(post[:20]).max() < 15)
    (True, True)
    """
    if len(noisy) != len(noise_sd):
        raise ValueError(f"The 'noise_sd' parameter must give one entry per histogram ({len(noisy)}). Got "
                         f"{len(noise_sd)} instead.")
    counts = [np.asarray(v, dtype=float) for v in noisy]
    sds = [_noise_sd(sd, v.shape) for v, sd in zip(counts, noise_sd)]
    if not counts or not sum(v.size for v in counts):
        return [np.clip(v, 0.0, None) for v in counts]
    v, sd = np.concatenate([c.ravel() for c in counts]), np.concatenate([s.ravel() for s in sds])
    if not (sd > 0).all():
        if sd.any():
            raise ValueError("The 'noise_sd' parameter must be all 0 (no noise) or all > 0.")
        return [np.clip(c, 0.0, None) for c in counts]
    unit = float(np.median(sd))
    linear = np.arange(0.0, PRIOR_LINEAR * unit, PRIOR_STEP * unit)
    top = max(float(v.max()), 0.0) + 3.0 * float(sd.max())
    steps = max(0, math.ceil(math.log(max(top / linear[-1], 1.0)) / math.log(PRIOR_RATIO)))
    grid = np.r_[linear, linear[-1] * PRIOR_RATIO ** np.arange(1, steps + 1)]
    log_like = norm.logpdf((v[:, None] - grid[None, :]) / sd[:, None])  # up to each row's constant 1 / sd
    like = np.exp(log_like - log_like.max(axis=1, keepdims=True))  # rows scaled: nothing underflows
    weights = np.full(len(grid), 1.0 / len(grid))
    for _ in range(iterations):
        joint = like * weights
        weights = (joint / joint.sum(axis=1, keepdims=True)).mean(axis=0)
    joint = like * weights
    post = (joint @ grid) / joint.sum(axis=1)
    post = np.where(v >= PRIOR_KEEP_Z * sd, v, np.clip(post, 0.0, None))
    out, pos = [], 0
    for c in counts:
        out.append(post[pos:pos + c.size].reshape(c.shape))
        pos += c.size
    return out


def core(noisy: np.ndarray, noise_sd: float | np.ndarray, support: np.ndarray, z: float = CORE_Z) -> np.ndarray:
    """Boolean mask of the bins of each run of ``support`` (:func:`histogram_support`) from the run's
    first to its last bin of at least ``z`` noise standard deviations (none of a run without one). A
    run keeps the bins between those whatever their noise, and grows beyond them only while the
    windows beyond pass: the bins of the runs outside their cores are those kept because of their
    noise, where :func:`posterior_counts` replaces the noisy counts.

    Examples
    --------
    >>> v = np.array([3.0, 1.0, 3.0, 0.5, -1.0, 2.5, 1.0, 0.0, 2.2])
    >>> core(v, 1.0, np.array([0, 1, 1, 1, 1, 1, 1, 0, 0], dtype=bool)).astype(int).tolist()
    [0, 0, 1, 1, 1, 1, 0, 0, 0]
    """
    v = np.asarray(noisy, dtype=float)
    big = v >= z * _noise_sd(noise_sd, v.shape)
    keep = np.asarray(support, dtype=bool)
    mask = np.zeros(len(v), dtype=bool)
    edges = np.diff(np.r_[0, keep.astype(int), 0])
    for start, stop in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)):
        inside = start + np.flatnonzero(big[start:stop])
        if len(inside):
            mask[inside[0]:inside[-1] + 1] = True
    return mask
