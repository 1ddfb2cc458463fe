"""Triangular conditional flows whose density factorizes per variable.

The flow stacks ``zuko`` masked autoregressive transforms that all share one variable order.
A composition of triangular maps with the same order is triangular, so the log-density of a
vector splits exactly into one term per variable,

    log p(x | c) = sum_j log p(x_j | x_<j, c),

which lets a variable that sits on a point mass be *pinned* to a fixed value: its term is
dropped from the likelihood and, when sampling, the coordinate is set instead of inverted.
"""

from __future__ import annotations

import math
from functools import partial

import torch
from torch import Tensor, nn
from zuko.flows.autoregressive import MaskedAutoregressiveTransform
from zuko.nn import MaskedLinear
from zuko.transforms import MonotonicRQSTransform
from zuko.utils import unpack

from ._workspace import Workspace, activate_, scratch

__all__ = ["TriangularFlow"]

_LOG_2PI = math.log(2 * math.pi)


class TriangularFlow(nn.Module):
    r"""Creates a conditional triangular flow (MAF or NSF) with per-variable log-densities.

    Parameters
    ----------
    features : int
        Number of continuous variables ``D``.
    context : int
        Number of context (conditioning) features ``C``.
    kind : {"maf", "nsf"}, default="maf"
        ``"maf"``: affine autoregressive transforms (Papamakarios et al., 2017);
        ``"nsf"``: monotonic rational-quadratic spline transforms (Durkan et al., 2019).
    transforms : int, default=3
        Number of stacked autoregressive transforms.
    hidden_features : tuple of int, default=(64, 64)
        Hidden layer sizes of each masked hyper-network.
    bins : int, default=8
        Spline bins (``"nsf"`` only).
    base_scale : bool, default=False
        Give the base normal a standard deviation per variable (a buffer ``base_scale``, ones
        until set): a DP fit sets it after training (:mod:`._dp_margins`). Without it the
        module's state is that of earlier versions.

    References
    ----------
    Masked Autoregressive Flow for Density Estimation (Papamakarios et al., 2017).
    Neural Spline Flows (Durkan et al., 2019).

    Examples
    --------
    >>> flow = TriangularFlow(3, 2)
    >>> x, c = torch.randn(5, 3), torch.randn(5, 2)
    >>> flow.log_prob_terms(x, c).shape
    torch.Size([5, 3])
    >>> z, _ = flow.forward_terms(x, c)
    >>> torch.allclose(flow.inverse(z, c), x, atol=1e-4)
    True
    """

    def __init__(
        self,
        features: int,
        context: int,
        kind: str = "maf",
        transforms: int = 3,
        hidden_features: tuple[int, ...] = (64, 64),
        bins: int = 8,
        base_scale: bool = False,
    ) -> None:
        super().__init__()
        if base_scale:
            self.register_buffer("base_scale", torch.ones(features))
        else:
            self.base_scale = None
        if kind == "maf":
            extra = {}
        elif kind == "nsf":
            extra = {
                "univariate": partial(MonotonicRQSTransform, bound=5.0),
                "shapes": [(bins,), (bins,), (bins - 1,)],
            }
        else:
            raise ValueError(f"The 'kind' parameter must be 'maf' or 'nsf'. Got {kind!r} instead.")
        self.features = features
        # Affine layers sharing one order compose to a Gaussian conditional; a fixed smooth
        # bijection between them ("bend") makes each conditional skewed and non-Gaussian.
        self.bend = kind == "maf"
        self.layers = nn.ModuleList(
            MaskedAutoregressiveTransform(
                features=features,
                context=context,
                order=torch.arange(features),
                hidden_features=tuple(hidden_features),
                **extra,
            )
            for _ in range(transforms)
        )

    def _univariate(self, layer: nn.Module, y: Tensor, c: Tensor):
        """Elementwise transform of ``layer`` given its input ``y`` (N, D) and context ``c``."""
        if c.shape[-1] == 0:
            c = None
        if self.features == 1:  # zuko builds an element-wise transform for D = 1
            return layer(c).base
        return layer.meta(c, y).base

    def _step(self, k: int, t, y: Tensor) -> Tensor:
        """Output of layer ``k`` given its univariate transform ``t`` and input ``y``."""
        y = t(y)
        return y if k == len(self.layers) - 1 or not self.bend else _bend(y)

    def _step_inverse(self, k: int, t, y: Tensor) -> Tensor:
        if k < len(self.layers) - 1 and self.bend:
            y = _bend_inverse(y)
        return t.inv(y)

    def forward_terms(self, x: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        """Maps ``x`` (N, D) to latent ``z`` (N, D) and per-variable log|dz_j/dx_j| (N, D)."""
        ladj = torch.zeros_like(x)
        y = x
        last = len(self.layers) - 1
        for k, layer in enumerate(self.layers):
            t = self._univariate(layer, y, c)
            y_next = t(y)
            ladj = ladj + t.log_abs_det_jacobian(y, y_next)
            if k < last and self.bend:
                ladj = ladj + _bend_log_derivative(y_next)
                y_next = _bend(y_next)
            y = y_next
        return y, ladj

    def log_prob_terms(self, x: Tensor, c: Tensor) -> Tensor:
        """Per-variable conditional log-densities log p(x_j | x_<j, c), shape (N, D)."""
        z, ladj = self.forward_terms(x, c)
        if self.base_scale is None:
            return -0.5 * (z.square() + _LOG_2PI) + ladj
        return -0.5 * ((z / self.base_scale).square() + _LOG_2PI) - torch.log(self.base_scale) + ladj

    @torch.no_grad()
    def inverse(
        self,
        z: Tensor,
        c: Tensor,
        pinned: Tensor | None = None,
        values: Tensor | None = None,
        *,
        workspace: Workspace | None = None,
    ) -> Tensor:
        """Maps latent ``z`` (N, D) back to ``x`` (N, D), variable by variable.

        Where ``pinned`` (N, D, bool) is true, ``x`` takes ``values`` (N, D) instead of the
        inverse of ``z``; later variables are then conditioned on the pinned value.
        Each layer's hyper-network is evaluated incrementally (:class:`_ColumnHyper`): over all
        ``D`` coordinates it costs about one forward pass, not ``D``. The work runs on
        coordinate-major (D, N) arrays, so a coordinate and a block of hidden units are
        contiguous rows. ``workspace`` (a dict the caller keeps between calls of one
        generation, never shared between threads) holds the scratch arrays so that chunks of
        equal size reuse their memory instead of faulting in fresh pages. With a ``base_scale``
        the normals ``z`` are multiplied by it first (``z`` then has the base's law).
        """
        if self.base_scale is not None:
            z = z * self.base_scale
        if self.features == 1:
            return self._inverse_univariate(z, c, pinned, values)
        n_layers, last = len(self.layers), len(self.layers) - 1
        ws = {} if workspace is None else workspace
        hypers = [_ColumnHyper(layer, c, self.features, ws, f"layer{k}") for k, layer in enumerate(self.layers)]
        zt = z.T.contiguous()
        # ys[k] (D, N) is the input of layer k; ys[n_layers] is the latent.
        # ys[0] is returned, so it is never a scratch array.
        ys = [torch.empty_like(zt)] + [scratch(ws, f"y{k}", zt.shape, zt.dtype) for k in range(1, n_layers)] + [zt]
        pinned_t = None if pinned is None else pinned.T.contiguous()
        for j in range(self.features):
            # Parameters of coordinate j depend only on coordinates < j, already final.
            ts = [h.transform(ys[k][:j], j) for k, h in enumerate(hypers)]
            v = zt[j]
            for k in reversed(range(n_layers)):  # top-down: invert coordinate j
                if k < last and self.bend:
                    v = _bend_inverse(v)
                v = ts[k].inv(v)
                ys[k][j] = v
            if pinned_t is not None and bool(pinned_t[j].any()):
                mask = pinned_t[j]
                v = torch.where(mask, values[:, j], ys[0][j])
                ys[0][j] = v
                for k in range(last):  # bottom-up: push the pinned value through
                    v = ts[k](v)
                    if self.bend:
                        v = _bend(v)
                    ys[k + 1][j] = torch.where(mask, v, ys[k + 1][j])
        return ys[0].T

    def _inverse_univariate(self, z: Tensor, c: Tensor, pinned: Tensor | None, values: Tensor | None) -> Tensor:
        """:meth:`inverse` for ``D = 1``, where zuko's layers are element-wise given ``c``."""
        ctx = c if c.shape[1] else None
        v = z
        for k in reversed(range(len(self.layers))):
            if k < len(self.layers) - 1 and self.bend:
                v = _bend_inverse(v)
            v = self.layers[k](ctx).base.inv(v)
        return v if pinned is None else torch.where(pinned, values, v)


class _ColumnHyper:
    """Evaluates one zuko masked autoregressive layer's hyper-network coordinate by coordinate.

    A hidden unit of a masked network depends on the context and on the coordinates below its
    *readiness* ``r`` (1 + the highest coordinate it reaches through the masks; 0: the context
    only), so once coordinate ``r - 1`` is final its activation is final too. Units are sorted
    by readiness, and step ``j`` computes only the units that become ready at ``j`` (from the
    ready prefix of the layer below) and coordinate ``j``'s output rows from the ready prefix of
    the last hidden layer. The weights outside these blocks are masked to zero, so the result is
    the network's own output; all ``D`` steps together cost about one forward pass of the
    network instead of ``D``. Activations are kept unit-major, (units, N), so that a block of
    units is a contiguous slice that matrix products write in place.
    """

    def __init__(self, layer: nn.Module, c: Tensor, features: int, workspace: Workspace, key: str) -> None:
        self.layer = layer
        plan = workspace.get(f"{key}.plan")
        if plan is None:
            plan = workspace[f"{key}.plan"] = _HyperPlan(layer, features)
        self.plan = plan
        n = c.shape[0]
        w_c, b0 = plan.context
        if w_c.shape[1]:
            self.h_c = torch.addmm(b0, w_c, c.T, out=scratch(workspace, f"{key}.context", (w_c.shape[0], n), c.dtype))
        else:
            self.h_c = b0.expand(-1, n)
        self.hidden = [scratch(workspace, f"{key}.hidden{i}", (width, n), c.dtype)
                       for i, width in enumerate(plan.widths)]

    def transform(self, y_prev: Tensor, j: int):
        """Univariate transform of coordinate ``j`` given coordinates ``y_prev`` (j, N); steps
        must run in order ``j = 0, 1, ...`` (each completes the units that become ready at ``j``)."""
        plan = self.plan
        for i, (start, end, width, w, b) in enumerate(plan.steps[j]):
            if end > start:
                h = self.hidden[i][start:end]
                if i > 0:
                    torch.addmm(b, w, self.hidden[i - 1][:width], out=h)
                elif j == 0:
                    h.copy_(self.h_c[start:end])
                else:
                    torch.addmm(self.h_c[start:end], w, y_prev, out=h)
                activate_(plan.activations[i], h)
        width, w, b = plan.outputs[j]
        phi = torch.addmm(b, w, self.hidden[-1][:width])
        return self.layer.univariate(*unpack(phi.T, plan.shapes))


class _HyperPlan:
    """The readiness-sorted weights of one masked layer's hyper-network and, per coordinate
    ``j``, the blocks that step ``j`` of :class:`_ColumnHyper` multiplies (views, made once)."""

    def __init__(self, layer: nn.Module, features: int) -> None:
        self.shapes = layer.shapes
        linears = [m for m in layer.hyper if isinstance(m, MaskedLinear)]
        self.activations = [m for m in layer.hyper if not isinstance(m, MaskedLinear)]
        # Readiness of the network's inputs: coordinate i is final after step i; the context at once.
        n_context = linears[0].in_features - features
        ready = torch.cat((torch.arange(1, features + 1), torch.zeros(n_context, dtype=torch.long)))
        order = torch.arange(linears[0].in_features)
        weights, bounds = [], []  # bounds: per hidden layer, per step j, the new units [start, end)
        for m in linears[:-1]:
            mask = m.mask.bool()[:, order]
            unit_ready = torch.where(mask, ready[order][None, :], 0).amax(dim=1)
            perm = torch.argsort(unit_ready, stable=True)
            weights.append(((m.mask * m.weight)[perm][:, order], m.bias[perm][:, None]))
            edges = torch.searchsorted(unit_ready[perm], torch.arange(features), right=True).tolist()
            bounds.append([(edges[j - 1] if j else 0, edges[j]) for j in range(features)])
            ready, order = unit_ready, perm
        w0, b0 = weights[0]
        self.context = (w0[:, features:], b0)
        self.widths = [w.shape[0] for w, _ in weights]
        self.steps: list[list[tuple[int, int, int, Tensor, Tensor | None]]] = []
        for j in range(features):
            step = [(*bounds[0][j], j, w0[bounds[0][j][0] : bounds[0][j][1], :j], None)]
            for i in range(1, len(weights)):
                (start, end), width = bounds[i][j], bounds[i - 1][j][1]
                w, b = weights[i]
                step.append((start, end, width, w[start:end, :width], b[start:end]))
            self.steps.append(step)
        out = linears[-1]
        w_out, b_out, total = (out.mask * out.weight)[:, order], out.bias[:, None], layer.total
        # Hidden blocks read only ready inputs by construction; an output must too (the
        # autoregressive property of zuko's masks): checked, since a violation would be silent.
        out_mask = out.mask.bool()[:, order]
        for j in range(features):
            if out_mask[j * total : (j + 1) * total, bounds[-1][j][1] :].any():
                raise RuntimeError(f"Coordinate {j} of a masked layer depends on units that are not ready at step {j}.")
        self.outputs = [(bounds[-1][j][1], w_out[j * total : (j + 1) * total, : bounds[-1][j][1]],
                         b_out[j * total : (j + 1) * total]) for j in range(features)]


_BEND = 0.5  # asymptotic slopes 1 - _BEND and 1 + _BEND


def _bend(x: Tensor) -> Tensor:
    """Smooth monotone "soft leaky" bijection g(x) = x + a (sqrt(x^2 + 1) - 1)."""
    return x + _BEND * (torch.sqrt(x * x + 1) - 1)


def _bend_log_derivative(y: Tensor) -> Tensor:
    """log g'(x) evaluated from ``y`` = the *pre-bend* value x."""
    return torch.log1p(_BEND * y / torch.sqrt(y * y + 1))


def _bend_inverse(y: Tensor) -> Tensor:
    a = _BEND
    v = y + a
    return (v - a * torch.sqrt(v * v + 1 - a * a)) / (1 - a * a)
