"""Heaps: values that carry mass below the point-mass threshold, as per-variable discrete states.

Survey values are lumpy: reported hours heap at 2000 and 2080, earnings at round thousands,
weekly wages at annual amounts divided by 52. Each such value holds less than the point-mass
threshold (1%) of the weight, so it is not a point mass, yet a continuous density smears it.
A *heap* is such a value made a discrete state of its variable: given the point-mass pattern,
each heaped variable draws, in flow order, whether it sits on one of its heaps (and which) or
takes a continuous value. The density stays exact:

    p(x_j = h | ...) = P(heap_j = h | c, pattern, earlier heaps)
    p(x_j = v | ...) = P(heap_j = none | c, pattern, earlier heaps) * flow density of v.

A heaped coordinate is pinned in the flow to the heap's encoded value, so later variables are
conditioned on it, exactly as on a point mass.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn
from zuko.nn import MLP

from .._stats import heaviest_values
from ._workspace import Workspace, mlp_forward
from .sampling import uniforms

__all__ = ["detect_heaps", "HeapHeads"]


def detect_heaps(
    x: np.ndarray, w: np.ndarray, total_weight: float, threshold: float, min_count: int, max_heaps: int
) -> tuple[float, ...]:
    """Values of ``x`` carrying at least ``threshold`` of ``total_weight`` and held by at least
    ``min_count`` records of positive weight (so a heap never identifies a record: records of
    weight 0 are outside the weighted population, and 20 of them beside one record of weight
    made that record's value a heap).

    At most ``max_heaps`` values are kept, heaviest first; the result is sorted.
    ``threshold <= 0`` or ``max_heaps <= 0`` disables detection.

    Examples
    --------
    >>> x = np.array([1.0, 1.0, 1.0, 2.5, 3.0, 3.0, 7.2])
    >>> detect_heaps(x, np.ones(7), 7.0, 0.2, 2, 5)
    (1.0, 3.0)
    >>> detect_heaps(x, np.ones(7), 7.0, 0.2, 3, 5)
    (1.0,)
    >>> detect_heaps(x, np.array([1.0, 0, 0, 1, 1, 1, 1]), 5.0, 0.2, 2, 5)   # 1.0: one record of weight
    (3.0,)
    """
    if threshold <= 0 or max_heaps <= 0 or len(x) == 0:
        return ()
    held = w > 0
    return heaviest_values(x[held], w[held], threshold, max_heaps, total=total_weight, min_count=min_count)


class HeapHeads(nn.Module):
    r"""Creates autoregressive categorical heads over the heap states of heaped coordinates.

    Head ``i`` gives P(heap_i | c, pattern, heap_<i) over ``K_i + 1`` states (0: no heap,
    ``k``: heap ``k``); its input is the context, the pattern's one-hot features and, for each
    earlier heaped coordinate, [on a heap, encoded heap value]. States a pattern rules out (a
    coordinate not in a continuous state, or a heap of another segment) get probability 0, so
    a coordinate off its continuous state contributes log 1.

    Parameters
    ----------
    context : int
        Number of context features ``C`` (conditions and pattern features).
    values : sequence of Tensor, each of shape (K_i,)
        Encoded (standardized) value of every heap of each heaped coordinate.
    allowed : sequence of BoolTensor, each of shape (P, K_i + 1)
        Which heap states each pattern allows (column 0, no heap, unless the pattern's segment
        holds no value off its heaps).
    hidden_features : tuple of int, default=(64, 64)

    Examples
    --------
    >>> heads = HeapHeads(2, [torch.tensor([0.5, 1.0])], [torch.ones(1, 3, dtype=torch.bool)])
    >>> ctx, pattern = torch.randn(4, 2), torch.zeros(4, dtype=torch.long)
    >>> heap = heads.sample(ctx, pattern, torch.Generator().manual_seed(0))
    >>> heap.shape, heads.log_prob(ctx, pattern, heap).shape
    (torch.Size([4, 1]), torch.Size([4]))
    """

    def __init__(
        self,
        context: int,
        values: Sequence[Tensor],
        allowed: Sequence[Tensor],
        hidden_features: tuple[int, ...] = (64, 64),
    ) -> None:
        super().__init__()
        self.n_heaped = len(values)
        heads = []
        for i, (v, a) in enumerate(zip(values, allowed, strict=True)):
            v = torch.as_tensor(v, dtype=torch.float32)
            # Derived from the encoders: rebuilt on load, so not part of the state dict.
            self.register_buffer(f"values_{i}", torch.cat((v.new_zeros(1), v)), persistent=False)
            self.register_buffer(f"allowed_{i}", torch.as_tensor(a, dtype=torch.bool), persistent=False)
            n_in, n_out = context + 2 * i, v.shape[0] + 1
            heads.append(MLP(n_in, n_out, hidden_features=hidden_features) if n_in > 0 else Logits(n_out))
        self.heads = nn.ModuleList(heads)

    def _values(self, i: int) -> Tensor:
        return getattr(self, f"values_{i}")

    def _logits(self, i: int, ctx: Tensor, pattern: Tensor, heap: Tensor,
                workspace: Workspace | None = None) -> Tensor:
        """Logits of heap_i's states (-inf where the pattern forbids one), shape (N, K_i + 1);
        ``heap`` gives the earlier coordinates' states. With a ``workspace`` (generation) the
        head runs in scratch memory and the result is a scratch array."""
        feats = [ctx]
        for e in range(i):
            s = heap[:, e]
            feats += [(s > 0).to(ctx.dtype)[:, None], self._values(e)[s].to(ctx.dtype)[:, None]]
        x = torch.cat(feats, dim=1) if len(feats) > 1 else ctx
        forbidden = ~getattr(self, f"allowed_{i}")[pattern]
        if workspace is None:
            return self.heads[i](x).masked_fill(forbidden, float("-inf"))
        return mlp_forward(self.heads[i], x, workspace, f"heap{i}", scratch_output=True).masked_fill_(
            forbidden, float("-inf"))

    def _log_probs(self, i: int, ctx: Tensor, pattern: Tensor, heap: Tensor) -> Tensor:
        """log P(heap_i = k | ...) for every state k, shape (N, K_i + 1); ``heap`` gives the
        earlier coordinates' states."""
        return torch.log_softmax(self._logits(i, ctx, pattern, heap), dim=-1)

    def log_prob(self, ctx: Tensor, pattern: Tensor, heap: Tensor) -> Tensor:
        """log P(heap states | ctx, pattern), shape (N,); ``heap`` (N, H) holds the states."""
        out = ctx.new_zeros(ctx.shape[0])
        for i in range(self.n_heaped):
            out = out + self._log_probs(i, ctx, pattern, heap).gather(1, heap[:, i : i + 1]).squeeze(1)
        return out

    @torch.no_grad()
    def sample(self, ctx: Tensor, pattern: Tensor, generator: torch.Generator, *,
               stratified: bool = False, workspace: Workspace | None = None) -> Tensor:
        """Draws heap states (N, H), coordinate by coordinate (one uniform each, inverse CDF;
        a Latin hypercube across the N records when ``stratified``). ``workspace``: scratch
        arrays kept between the chunks of one generation."""
        heap = torch.zeros(ctx.shape[0], self.n_heaped, dtype=torch.long)
        ws = {} if workspace is None else workspace
        for i in range(self.n_heaped):
            cdf = torch.cumsum(torch.softmax(self._logits(i, ctx, pattern, heap, ws), dim=1), dim=1)
            uniform = uniforms(ctx.shape[0], 1, generator, stratified=stratified, dtype=cdf.dtype) * cdf[:, -1:]
            # the first state whose cumulative probability exceeds the uniform: a uniform of 0 never lands on a
            # forbidden first state (probability 0)
            heap[:, i] = torch.searchsorted(cdf, uniform, right=True).squeeze(1).clamp_(max=cdf.shape[1] - 1)
        return heap

    def encoded(self, heap: Tensor) -> Tensor:
        """Encoded value of each coordinate's heap (0 where none), shape (N, H)."""
        cols = [self._values(i)[heap[:, i]] for i in range(self.n_heaped)]
        return torch.stack(cols, dim=1) if cols else torch.zeros(heap.shape[0], 0)


class Logits(nn.Module):
    """Unconditional logits, shape (K,), broadcast over a batch of empty inputs (the pattern head
    without conditions and a heap head without inputs)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(n))

    def forward(self, x: Tensor) -> Tensor:
        return self.logits.expand(x.shape[0], -1)
