"""The joint model: a categorical over point-mass patterns joined to a triangular flow.

A record's targets are split into a *pattern* (for every target with point masses, which
point mass it sits on or whether it is continuous; for every categorical target, its category)
and the continuous values of the targets that are in their continuous state. The density is

    p(targets | c) = P(pattern | c) * prod_{j active} p(u_j | u_<j, pattern, c),

where the first factor is a softmax over the patterns observed in training (so zero patterns
are modelled jointly across targets) and the second factor comes from a
:class:`~microplex.synthesis.flow.TriangularFlow` whose inactive coordinates are pinned to 0.
With heaps (:mod:`~microplex.synthesis.heaps`), a middle factor P(heap states | pattern, c)
comes in and heaped coordinates are pinned to their heap's encoded value.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from zuko.nn import MLP

from ._workspace import Workspace, mlp_forward, scratch
from .flow import TriangularFlow
from .heaps import HeapHeads, Logits
from .sampling import normals, uniforms

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
    heaps : sequence of (int, Tensor (K,), BoolTensor (P, K + 1)), default=()
        For each heaped continuous coordinate (in flow order): its index, the encoded values
        of its heaps and the heap states each pattern allows (see
        :class:`~microplex.synthesis.heaps.HeapHeads`). The flow is then also conditioned on
        whether each heaped coordinate sits on a heap.
    head_features : tuple of int, default=None
        Hidden layer sizes of the pattern head (``None``: ``hidden_features``).
    base_scale : bool, default=False
        The flow's base normal gets a standard deviation per variable
        (:class:`~microplex.synthesis.flow.TriangularFlow`).
    rules : (LongTensor (R,), FloatTensor (R, 2), BoolTensor (R, P)), default=None
        Structural zeros (:mod:`~microplex.synthesis._structure`): where context column
        ``rules[0][r]`` lies strictly between ``rules[1][r]`` (``(0.5, inf)`` for a binary
        input), the patterns ``rules[2][r]`` have probability 0 when drawing and scoring (the
        head's probabilities renormalized over the other patterns; training leaves them out,
        ``ruled=False``, so the head learns as without rules, and the fit then shifts the head's output
        bias so that the ruled head keeps the training state shares,
        :func:`~microplex.synthesis._dp_rake.rake_ruled_head`). Buffers ``rule_columns``,
        ``rule_bounds`` and ``rule_forbidden``; without rules the module's state is that of
        earlier versions.

    Examples
    --------
    >>> patterns = torch.tensor([[0], [1]])          # one target: zero or continuous
    >>> active = torch.tensor([[False], [True]])
    >>> m = PointMassFlow(2, patterns, [2], active)
    >>> c = torch.randn(4, 2)
    >>> pattern, u, heap = m.sample(c, torch.Generator().manual_seed(0))
    >>> m.log_prob(c, pattern, u, heap).shape
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
        heaps: Sequence[tuple[int, Tensor, Tensor]] = (),
        head_features: tuple[int, ...] | None = None,
        base_scale: bool = False,
        rules: tuple[Tensor, Tensor] | None = None,
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
            self.head = MLP(context, n_patterns,
                            hidden_features=hidden_features if head_features is None else head_features)
        else:  # no conditions: the pattern distribution is a free softmax
            self.head = Logits(n_patterns)
        if rules is not None and self.head is not None:
            columns, bounds, forbidden = rules
            self.register_buffer("rule_columns", torch.as_tensor(columns, dtype=torch.long))
            self.register_buffer("rule_bounds", torch.as_tensor(bounds, dtype=torch.float32))
            self.register_buffer("rule_forbidden", torch.as_tensor(forbidden, dtype=torch.bool))
        else:
            self.rule_columns = self.rule_bounds = self.rule_forbidden = None
        self.heap_dims = [int(d) for d, _, _ in heaps]
        self.heaps = (
            HeapHeads(context + onehot.shape[1], [v for _, v, _ in heaps], [a for _, _, a in heaps], hidden_features)
            if heaps
            else None
        )
        n_ctx = context + onehot.shape[1] + len(self.heap_dims)
        self.flow = (
            TriangularFlow(n_continuous, n_ctx, flow, transforms, hidden_features, bins, base_scale)
            if n_continuous > 0 else None
        )

    @torch.no_grad()
    def init_pattern_prior(self, shares: Tensor) -> None:
        """Starts an unconditional pattern head at ``log(shares)`` (P,), its exact maximum-likelihood
        fit, instead of uniform logits that a few hundred Adam steps barely move. Heads with
        conditions are left as they are."""
        if isinstance(self.head, Logits):
            self.head.logits.copy_(torch.log(torch.as_tensor(shares, dtype=torch.float32).clamp_min(1e-8)))

    def pattern_log_prob(self, c: Tensor, ruled: bool = True) -> Tensor:
        """log P(pattern | c) for every pattern, shape (N, P); ``ruled``: with the rules' structural zeros (the
        head's probabilities renormalized over the patterns they allow), else as the head learnt them."""
        if self.head is None:
            return c.new_zeros(c.shape[0], 1)
        logits = self.head(c)
        return torch.log_softmax(self._ruled(logits.clone(), c) if ruled else logits, dim=-1)

    def _ruled(self, logits: Tensor, c: Tensor) -> Tensor:
        """``logits`` (N, P) with the patterns that the rules rule out for each row's context set to ``-inf``, in
        place (the head's output, fresh or scratch; a strided one is made contiguous first); a row whose rules rule
        out every pattern keeps its logits. Rows are grouped by the rules their context brings (few combinations),
        and each group's ruled-out entries are written: no pass over all N x P entries (patterns may number
        hundreds)."""
        if self.rule_columns is None:
            return logits
        values = c.index_select(1, self.rule_columns)  # (N, R): the rules each row's context brings
        on = (values > self.rule_bounds[:, 0]) & (values < self.rule_bounds[:, 1])
        if on.shape[1] <= 62:  # each row's combination as one integer
            key = (on.to(torch.int64) * (2 ** torch.arange(on.shape[1], dtype=torch.int64))).sum(dim=1)
            combos, group = torch.unique(key, return_inverse=True)
        else:
            combos, group = torch.unique(on, dim=0, return_inverse=True)
        logits = logits.contiguous()
        flat, n_patterns = logits.view(-1), logits.shape[1]
        for k in range(len(combos)):
            rows = torch.nonzero(group == k).squeeze(1)
            out = self.rule_forbidden[on[rows[0]]].any(dim=0)  # (P,): the patterns this combination rules out
            if not out.any() or out.all():
                continue
            cols = torch.nonzero(out).squeeze(1)
            # the ruled-out entries only, by their flat positions
            flat.index_fill_(0, (rows[:, None] * n_patterns + cols[None, :]).view(-1), float("-inf"))
        return logits

    def _pinned(self, pattern: Tensor, heap: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(flow context extras (N, H), pinned mask (N, D), pinned values (N, D))."""
        active = self.active[pattern]
        values = torch.zeros(active.shape, dtype=torch.float32)
        if self.heaps is None:
            return values.new_zeros(len(pattern), 0), ~active, values
        on = heap > 0
        heaped = torch.zeros_like(active)
        heaped[:, self.heap_dims] = on
        values[:, self.heap_dims] = self.heaps.encoded(heap)
        return on.float(), ~active | heaped, values

    def _heap(self, heap: Tensor | None, n: int) -> Tensor:
        return torch.zeros(n, len(self.heap_dims), dtype=torch.long) if heap is None else heap

    def log_prob_parts(
        self, c: Tensor, pattern: Tensor, u: Tensor, heap: Tensor | None = None, ruled: bool = True
    ) -> tuple[Tensor, Tensor, Tensor]:
        """(log P(pattern | c), log P(heap states | pattern, c), log p(free u | states, c)),
        each of shape (N,).

        ``pattern`` (N,) holds pattern indices, ``u`` (N, D) standardized continuous values
        (values of inactive or heaped coordinates are ignored) and ``heap`` (N, H) the heap
        state of each heaped coordinate (0: none; ``None``: no heaps). ``ruled=False`` (training) leaves the
        rules out of the pattern's term (:meth:`pattern_log_prob`)."""
        discrete = self.pattern_log_prob(c, ruled).gather(1, pattern[:, None]).squeeze(1)
        heap = self._heap(heap, len(pattern))
        ctx = torch.cat((c, self.pattern_features[pattern]), dim=1)
        heaps = self.heaps.log_prob(ctx, pattern, heap) if self.heaps is not None else torch.zeros_like(discrete)
        if self.flow is None:
            return discrete, heaps, torch.zeros_like(discrete)
        extra, pinned, values = self._pinned(pattern, heap)
        u = torch.where(pinned, values, u)
        terms = self.flow.log_prob_terms(u, torch.cat((ctx, extra), dim=1))
        return discrete, heaps, (terms * ~pinned).sum(dim=1)

    def log_prob(self, c: Tensor, pattern: Tensor, u: Tensor, heap: Tensor | None = None,
                 ruled: bool = True) -> Tensor:
        """Joint log-density, shape (N,) (see :meth:`log_prob_parts`)."""
        discrete, heaps, continuous = self.log_prob_parts(c, pattern, u, heap, ruled)
        return discrete + heaps + continuous

    @torch.no_grad()
    def sample(
        self, c: Tensor, generator: torch.Generator, *, stratified: bool = False,
        workspace: Workspace | None = None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Draws (pattern indices (N,), standardized continuous values (N, D), heap states
        (N, H)) given ``c`` (N, C): the pattern, then heap states in flow order, then the flow.
        ``stratified`` draws the uniforms and the flow's normals as Latin hypercubes across the
        N records (see :mod:`.sampling`). ``workspace``: scratch arrays kept between the chunks
        of one generation (see :meth:`TriangularFlow.inverse`)."""
        n = c.shape[0]
        if self.head is None:
            pattern = torch.zeros(n, dtype=torch.long)
        else:
            # Inverse-CDF draw: one uniform per record (much faster than torch.multinomial); the
            # uniform is scaled by the CDF's last column, which rounding may leave off 1.
            logits = self._ruled(mlp_forward(self.head, c, workspace, "head", scratch_output=True), c)
            probs = torch.softmax(logits, dim=1)
            cdf = (torch.cumsum(probs, dim=1) if workspace is None else
                   torch.cumsum(probs, dim=1, out=scratch(workspace, "head.cdf", probs.shape, probs.dtype)))
            # A uniform of exactly 0 would pick the first pattern even at probability 0 (ruled out, or a softmax
            # underflow): the smallest positive float instead, which picks the first pattern of positive probability.
            uniform = (uniforms(n, 1, generator, stratified=stratified, dtype=cdf.dtype) * cdf[:, -1:]).clamp_(
                min=torch.finfo(cdf.dtype).tiny)
            pattern = torch.searchsorted(cdf, uniform).squeeze(1).clamp_(max=cdf.shape[1] - 1)
        ctx = torch.cat((c, self.pattern_features[pattern]), dim=1)
        heap = (self.heaps.sample(ctx, pattern, generator, stratified=stratified, workspace=workspace)
                if self.heaps is not None
                else self._heap(None, n))
        d = self.active.shape[1]
        z = normals(n, d, generator, stratified=stratified, dtype=c.dtype)
        if self.flow is None:
            return pattern, z, heap
        extra, pinned, values = self._pinned(pattern, heap)
        if extra.shape[1]:  # heap indicators
            ctx = torch.cat((ctx, extra), dim=1)
        u = self.flow.inverse(z, ctx, pinned=pinned, values=values.to(z.dtype), workspace=workspace)
        return pattern, torch.where(pinned, values.to(u.dtype), u), heap
