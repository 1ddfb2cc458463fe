"""Raking a Synthesizer's pattern head: to the noisy shares of a DP statistics release, or, with structural
zeros, to the training shares.

DP-SGD moves the pattern head (P(point-mass and category states | conditions)) away from the
noisy shares it starts at (:func:`._dp.init_prior`): clipping and noise bias it towards the
commonest patterns, so a release can draw zeros or top codes more or less often than the
statistics release says, although those shares are known far more precisely (one histogram query
at the whole budget's ``"statistics"`` share, against hundreds of noisy gradient steps).

:func:`rake_pattern_head` adds one bias per pattern to the head's logits, found by iterative
proportional fitting, so that the release's share of every state of every discrete target
(averaged over conditions drawn from the condition model) equals its noisy share. It reads
nothing but the noisy shares and the DP models: post-processing, no further budget. The head's
dependence on the conditions (the log-odds between conditions) is unchanged.

Without DP, :func:`rake_ruled_head` does the same for a head with structural zeros
(:mod:`._structure`). The head trains without the rules, so it puts some of a state's mass in the cells
that rule the state out; the rules set that mass to 0 and renormalize it onto the other states of the
same rows, and the state's overall share fell (CPS 1988, negative ``experience`` ruled out below
education 12.5: drawn 0.0113 of the records, 0.0144 in training). One bias per pattern, found by
:func:`rake_head`, gives the head's distribution *with the rules*, averaged over the training records'
conditions, every discrete target's training state shares: the mass goes back to the rows that can hold the
state (the head's dependence on the conditions unchanged, so the other cells' shares move by a common log-odds).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from .._random import int_seed, named_child
from ._conditions import draw_conditions
from ._dp import output_layer
from .heaps import Logits

if TYPE_CHECKING:
    from .model import PointMassFlow
    from .synthesizer import Synthesizer

__all__ = ["RAKE_DRAWS", "bound_acceptance", "model_conditions", "rake_head", "rake_pattern_head", "rake_ruled_head"]

#: Condition rows drawn from the condition model (or the training records) to average the head over.
RAKE_DRAWS = 20_000
_ROUNDS, _TOL = 100, 1e-6


def model_conditions(synth: Synthesizer, n: int, seed: int, name: str, rows_without: int) -> torch.Tensor:
    """``n`` condition rows drawn from ``synth.condition_model_`` (seeded by ``name``), encoded as
    the model's input; ``rows_without`` rows of no columns when ``synth`` has no conditions."""
    if not synth.condition_vars:
        return torch.zeros(rows_without, 0)
    drawn = draw_conditions(synth, n, int_seed(named_child(seed, name)), chunk_size=n, threads=None)
    return torch.as_tensor(synth.condition_encoder_.transform(drawn), dtype=torch.float32)


def rake_pattern_head(synth: Synthesizer, shares: dict[str, np.ndarray], seed: int, truncated: bool = True) -> None:
    """Shifts the output bias of ``synth``'s pattern head so that the mean pattern distribution
    over :data:`RAKE_DRAWS` condition rows drawn from ``synth.condition_model_`` (none without
    conditions) has every discrete target's noisy state shares ``shares`` (from
    :func:`._dp.fit_public_encoders`). A head of one pattern is left as it is.

    ``truncated``: the distribution raked is the one generation releases, the model truncated to the
    public bounds (:meth:`._generation._Generation._redraw_outside_bounds` draws a record holding a value
    outside them again): each pattern's probability times its share of records inside the bounds
    (:func:`bound_acceptance`), renormalized. With ``standardize="moments"`` the flow's tail beyond a bound
    was redrawn after the head was raked, and the redraws moved the released shares off the noisy ones (a heap
    of 0.1488 at a bound released as 0.1521). ``truncated=False``: the head's own distribution, for a model
    whose quantile maps are recalibrated after the head (:func:`._dp_margins.recalibrate_margins`): that moves
    which draws lie outside the bounds (47-463 of 50,000 before it, none after it, on the percentages above),
    so the truncation before it is not the one released."""
    if synth.model_.head is None:
        return
    c = model_conditions(synth, RAKE_DRAWS, seed, "dp_rake", rows_without=1)
    accept = bound_acceptance(synth, c, seed) if truncated else None
    patterns = synth.patterns_
    rake_head(synth.model_, c, None, [(patterns[:, m], shares[name]) for m, name in enumerate(synth.discrete_vars_)],
              accept)


def bound_acceptance(synth: Synthesizer, c: torch.Tensor, seed: int) -> np.ndarray:
    """Each pattern's share of ``synth``'s draws at condition rows ``c`` that hold every value inside the
    public bounds, as generation decodes and checks them (:func:`._generation._outside_public_bounds`), from
    one draw per row (seeded by ``seed``'s child ``"dp_rake_bounds"``): ``(inside + 0.5) / (drawn + 0.5)``,
    never 0, and 1 for a pattern none of whose draws lies outside (or that was not drawn). A model without
    public bounds (or not DP): all 1."""
    from ._generation import _outside_public_bounds  # here: _generation imports _conditions, as this module does

    accept = np.ones(len(synth.patterns_))
    if getattr(synth, "epsilon", None) is None or not getattr(synth, "public_bounds", None):
        return accept
    gen = torch.Generator().manual_seed(int_seed(named_child(seed, "dp_rake_bounds")))
    with torch.inference_mode():
        pattern, u, heap = synth.model_.sample(c, gen)
    pattern = pattern.numpy()
    outside = _outside_public_bounds(synth, pattern, u.numpy(), heap.numpy())
    drawn = np.bincount(pattern, minlength=len(accept)).astype(float)
    out = np.bincount(pattern[outside], minlength=len(accept)).astype(float)
    return np.where(out > 0, (drawn - out + 0.5) / (drawn + 0.5), 1.0)


def rake_ruled_head(synth: Synthesizer, c: np.ndarray, pattern: np.ndarray, w: np.ndarray, seed: int) -> None:
    """Shifts the output bias of ``synth``'s pattern head so that its pattern distribution with the rules
    (``synth.model_``'s structural zeros), averaged over the training records' encoded conditions ``c`` (N, C)
    weighted by ``w`` (N,), has every discrete target's weighted state shares of the training records
    (``pattern`` (N,): each record's pattern index). State shares, not pattern shares: the pattern table holds
    combinations no record holds, which keep a small probability. With more than :data:`RAKE_DRAWS` records of
    positive weight the average runs over :data:`RAKE_DRAWS` of them drawn with probability proportional to
    their weights (seeded by ``seed``'s child ``"rake"``). A head of one pattern is left as it is."""
    if synth.model_.head is None:
        return
    patterns = synth.patterns_
    positive = np.flatnonzero(w > 0)
    held = patterns[pattern[positive]]
    margins = [(patterns[:, m], np.bincount(held[:, m], weights=w[positive], minlength=int(patterns[:, m].max()) + 1)
                / w[positive].sum()) for m in range(patterns.shape[1])]
    if len(positive) <= RAKE_DRAWS:
        rows, weights = positive, w[positive]
    else:
        rng = np.random.default_rng(named_child(seed, "rake"))
        rows, weights = rng.choice(positive, RAKE_DRAWS, p=w[positive] / w[positive].sum()), None
    rake_head(synth.model_, torch.as_tensor(c[rows], dtype=torch.float32), weights, margins)


def rake_head(model: PointMassFlow, c: torch.Tensor, w: np.ndarray | None,
              margins: list[tuple[np.ndarray, np.ndarray]], accept: np.ndarray | None = None) -> None:
    """Adds one bias per pattern to the output of ``model``'s pattern head, found by iterative proportional
    fitting (at most 100 rounds, to 1e-6), so that its pattern distribution with the rules, averaged over the
    condition rows ``c`` (N, C) (weighted by ``w`` (N,); ``None``: equal weights), puts ``shares[k]`` on the
    patterns of code ``k`` for every margin ``(codes, shares)`` (``codes`` (P,): each pattern's code, e.g. a
    target's state). A code the rows give no probability (every row rules it out) keeps its bias. The head's
    dependence on the conditions is unchanged. ``accept`` (P,), positive: the distribution raked is each row's
    pattern probabilities times ``accept``, renormalized (the share of each pattern's records that generation
    keeps, :func:`bound_acceptance`); the bias found is added to the head alone."""
    head = model.head
    if head is None:
        return
    with torch.no_grad():
        base = model.pattern_log_prob(c).double().numpy()
    weights = None if w is None else np.asarray(w, dtype=float) / float(np.sum(w))
    bias = np.zeros(base.shape[1])
    if accept is not None:
        base = base + np.log(accept)[None, :]
    for _ in range(_ROUNDS):
        worst = 0.0
        for codes, shares in margins:
            logits = base + bias
            p = np.exp(logits - logits.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            mean = p.mean(axis=0) if weights is None else weights @ p
            current = np.bincount(codes, weights=mean, minlength=len(shares))
            worst = max(worst, float(np.abs(current - shares).max()))
            step = np.log(shares / np.maximum(current, 1e-300), out=np.zeros(len(shares)), where=current > 0)
            bias += step[codes]
        if worst < _TOL:
            break
    shift = torch.as_tensor(bias - bias.max(), dtype=torch.float32)
    with torch.no_grad():
        (head.logits if isinstance(head, Logits) else output_layer(head).bias).add_(shift)
