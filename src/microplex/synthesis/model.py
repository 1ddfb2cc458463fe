"""The joint model: a categorical over point-mass patterns joined to a triangular flow.

A record's targets are split into a *pattern* (for every target with point masses, which
point mass it sits on or whether it is continuous; for every categorical target, its category)
and the continuous values of the targets that are in their continuous state. The density is

    p(targets | c) = P(pattern | c) * prod_{j active} p(u_j | u_<j, pattern, c),

where the first factor is a softmax over the patterns observed in training (so zero patterns
are modelled jointly across targets) and the second factor comes from a
:class:`~microplex.synthesis.flow.TriangularFlow` whose inactive coordinates are pinned to 0.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from zuko.nn import MLP

from .flow import TriangularFlow

__all__ = ["PointMassFlow"]


class PointMassFlow(nn.Module):
    r"""Creates a conditional density over targets with joint point masses.

    Parameters
    ----------
    context : int
        Number of condition features ``C``.
    patterns : LongTensor, shape (P, M)
        The distinct discrete-state patterns seen in training (``M`` discrete variables).
    state_sizes : sequence of int, length M
        Number of states of each discrete variable.
    active : BoolTensor, shape (P, D)
        Whether continuous coordinate ``j`` is active (in its continuous state) under each pattern.
    flow : {"maf", "nsf"}, default="maf"
    transforms : int, default=3
    hidden_features : tuple of int, default=(64, 64)
    bins : int, default=8

    Examples
    --------
    >>> patterns = torch.tensor([[0], [1]])          # one target: zero or continuous
    >>> active = torch.tensor([[False], [True]])
    >>> m = PointMassFlow(2, patterns, [2], active)
    >>> c = torch.randn(4, 2)
    >>> pattern, u = m.sample(c, torch.Generator().manual_seed(0))
    >>> m.log_prob(c, pattern, u).shape
    torch.Size([4])
    """

    def __init__(
        self,
        context: int,
        patterns: Tensor,
        state_sizes: list[int],
        active: Tensor,
        flow: str = "maf",
        transforms: int = 3,
        hidden_features: tuple[int, ...] = (64, 64),
        bins: int = 8,
    ) -> None:
        super().__init__()
        self.register_buffer("patterns", torch.as_tensor(patterns, dtype=torch.long))
        self.register_buffer("active", torch.as_tensor(active, dtype=torch.bool))
        n_patterns, n_continuous = self.active.shape
        # One-hot encoding of each pattern's discrete states, shape (P, sum(state_sizes)).
        blocks = [nn.functional.one_hot(self.patterns[:, m], s).float() for m, s in enumerate(state_sizes)]
        onehot = torch.cat(blocks, dim=1) if blocks else torch.zeros(n_patterns, 0)
        self.register_buffer("pattern_features", onehot)
        if n_patterns == 1:
            self.head = None
        elif context > 0:
            self.head = MLP(context, n_patterns, hidden_features=hidden_features)
        else:  # no conditions: the pattern distribution is a free softmax
            self.head = _Logits(n_patterns)
        self.flow = (
            TriangularFlow(n_continuous, context + onehot.shape[1], flow, transforms, hidden_features, bins)
            if n_continuous > 0
            else None
        )

    @torch.no_grad()
    def init_pattern_prior(self, shares: Tensor) -> None:
        """Starts an unconditional pattern head at ``log(shares)`` (P,), its exact maximum-likelihood
        fit, instead of uniform logits that a few hundred Adam steps barely move. Heads with
        conditions are left as they are."""
        if isinstance(self.head, _Logits):
            self.head.logits.copy_(torch.log(torch.as_tensor(shares, dtype=torch.float32).clamp_min(1e-8)))

    def pattern_log_prob(self, c: Tensor) -> Tensor:
        """log P(pattern | c) for every pattern, shape (N, P)."""
        if self.head is None:
            return c.new_zeros(c.shape[0], 1)
        return torch.log_softmax(self.head(c), dim=-1)

    def log_prob_parts(self, c: Tensor, pattern: Tensor, u: Tensor) -> tuple[Tensor, Tensor]:
        """(log P(pattern | c), log p(active u | pattern, c)), each of shape (N,).

        ``pattern`` (N,) holds pattern indices, ``u`` (N, D) standardized continuous values
        (values of inactive coordinates are ignored)."""
        discrete = self.pattern_log_prob(c).gather(1, pattern[:, None]).squeeze(1)
        if self.flow is None:
            return discrete, torch.zeros_like(discrete)
        active = self.active[pattern]
        u = torch.where(active, u, torch.zeros_like(u))
        ctx = torch.cat((c, self.pattern_features[pattern]), dim=1)
        terms = self.flow.log_prob_terms(u, ctx)
        return discrete, (terms * active).sum(dim=1)

    def log_prob(self, c: Tensor, pattern: Tensor, u: Tensor) -> Tensor:
        """Joint log-density, shape (N,) (see :meth:`log_prob_parts`)."""
        discrete, continuous = self.log_prob_parts(c, pattern, u)
        return discrete + continuous

    @torch.no_grad()
    def sample(self, c: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Draws (pattern indices (N,), standardized continuous values (N, D)) given ``c`` (N, C)."""
        n = c.shape[0]
        if self.head is None:
            pattern = torch.zeros(n, dtype=torch.long)
        else:
            # Inverse-CDF draw: one uniform per record (much faster than torch.multinomial).
            cdf = torch.cumsum(self.pattern_log_prob(c).exp(), dim=1)
            uniform = torch.rand(n, 1, generator=generator, dtype=cdf.dtype) * cdf[:, -1:]
            pattern = torch.searchsorted(cdf, uniform).squeeze(1).clamp_(max=cdf.shape[1] - 1)
        d = self.active.shape[1]
        z = torch.randn(n, d, generator=generator, dtype=c.dtype)
        if self.flow is None:
            return pattern, z
        active = self.active[pattern]
        ctx = torch.cat((c, self.pattern_features[pattern]), dim=1)
        u = self.flow.inverse(z, ctx, pinned=~active, values=torch.zeros_like(z))
        return pattern, torch.where(active, u, torch.zeros_like(u))


class _Logits(nn.Module):
    """Unconditional logits, shape (P,), broadcast over a batch of empty contexts."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(n))

    def forward(self, c: Tensor) -> Tensor:
        return self.logits.expand(c.shape[0], -1)
