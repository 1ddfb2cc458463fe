"""Raking a DP Synthesizer's pattern head to the noisy shares of its statistics release.

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
    from .synthesizer import Synthesizer

__all__ = ["RAKE_DRAWS", "model_conditions", "rake_pattern_head"]

#: Condition rows drawn from the condition model to average the head over.
RAKE_DRAWS = 20_000
_ROUNDS, _TOL = 100, 1e-6


def model_conditions(synth: Synthesizer, n: int, seed: int, name: str, rows_without: int) -> torch.Tensor:
    """``n`` condition rows drawn from ``synth.condition_model_`` (seeded by ``name``), encoded as
    the model's input; ``rows_without`` rows of no columns when ``synth`` has no conditions."""
    if not synth.condition_vars:
        return torch.zeros(rows_without, 0)
    drawn = draw_conditions(synth, n, int_seed(named_child(seed, name)), chunk_size=n, threads=None)
    return torch.as_tensor(synth.condition_encoder_.transform(drawn), dtype=torch.float32)


def rake_pattern_head(synth: Synthesizer, shares: dict[str, np.ndarray], seed: int) -> None:
    """Shifts the output bias of ``synth``'s pattern head so that the mean pattern distribution
    over :data:`RAKE_DRAWS` condition rows drawn from ``synth.condition_model_`` (none without
    conditions) has every discrete target's noisy state shares ``shares`` (from
    :func:`._dp.fit_public_encoders`). A head of one pattern is left as it is."""
    head = synth.model_.head
    if head is None:
        return
    c = model_conditions(synth, RAKE_DRAWS, seed, "dp_rake", rows_without=1)
    with torch.no_grad():
        base = synth.model_.pattern_log_prob(c).double().numpy()
    patterns = synth.patterns_
    bias = np.zeros(patterns.shape[0])
    for _ in range(_ROUNDS):
        worst = 0.0
        for m, name in enumerate(synth.discrete_vars_):
            logits = base + bias
            p = np.exp(logits - logits.max(axis=1, keepdims=True))
            mean = (p / p.sum(axis=1, keepdims=True)).mean(axis=0)
            current = np.bincount(patterns[:, m], weights=mean, minlength=len(shares[name]))
            worst = max(worst, float(np.abs(current - shares[name]).max()))
            bias += np.log(shares[name] / np.maximum(current, 1e-300))[patterns[:, m]]
        if worst < _TOL:
            break
    shift = torch.as_tensor(bias - bias.max(), dtype=torch.float32)
    with torch.no_grad():
        (head.logits if isinstance(head, Logits) else output_layer(head).bias).add_(shift)
