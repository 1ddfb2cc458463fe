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
    ) -> None:
        super().__init__()
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
        return -0.5 * (z.square() + _LOG_2PI) + ladj

    @torch.no_grad()
    def inverse(
        self,
        z: Tensor,
        c: Tensor,
        pinned: Tensor | None = None,
        values: Tensor | None = None,
    ) -> Tensor:
        """Maps latent ``z`` (N, D) back to ``x`` (N, D), variable by variable.

        Where ``pinned`` (N, D, bool) is true, ``x`` takes ``values`` (N, D) instead of the
        inverse of ``z``; later variables are then conditioned on the pinned value.
        Each coordinate costs one hyper-network pass per layer, evaluated for that coordinate
        only, with the context part of the first layer computed once.
        """
        n_layers, last = len(self.layers), len(self.layers) - 1
        hypers = [_ColumnHyper(layer, c, self.features) for layer in self.layers]
        # ys[k] is the input of layer k; ys[n_layers] is the latent.
        ys = [torch.zeros_like(z) for _ in range(n_layers)] + [z]
        for j in range(self.features):
            # Parameters of coordinate j depend only on coordinates < j, already final.
            ts = [h.transform(ys[k][:, :j], j) for k, h in enumerate(hypers)]
            v = z[:, j : j + 1]
            for k in reversed(range(n_layers)):  # top-down: invert coordinate j
                if k < last and self.bend:
                    v = _bend_inverse(v)
                v = ts[k].inv(v)
                ys[k][:, j] = v[:, 0]
            if pinned is not None and bool(pinned[:, j].any()):
                mask = pinned[:, j : j + 1]
                v = torch.where(mask, values[:, j : j + 1], ys[0][:, j : j + 1])
                ys[0][:, j] = v[:, 0]
                for k in range(last):  # bottom-up: push the pinned value through
                    v = ts[k](v)
                    if self.bend:
                        v = _bend(v)
                    ys[k + 1][:, j] = torch.where(mask, v, ys[k + 1][:, j : j + 1])[:, 0]
        return ys[0]


class _ColumnHyper:
    """Evaluates one zuko masked autoregressive layer's hyper-network for a single coordinate.

    Masked weights are taken once and the context part of the first linear layer is computed
    once per batch, so each coordinate's pass costs only ``j`` input columns plus the hidden
    layers and the output rows of that coordinate.
    """

    def __init__(self, layer: nn.Module, c: Tensor, features: int) -> None:
        self.layer, self.c, self.features = layer, c, features
        self.total, self.shapes = layer.total, layer.shapes
        if features == 1:  # zuko's element-wise layer: parameters depend on c only
            self.c = c if c.shape[1] else None
            return
        linears = [m for m in layer.hyper if isinstance(m, MaskedLinear)]
        self.activations = [m for m in layer.hyper if not isinstance(m, MaskedLinear)]
        weights = [(m.mask * m.weight, m.bias) for m in linears]
        w0, b0 = weights[0]
        self.w_x = w0[:, :features]
        self.h_c = torch.addmm(b0, c, w0[:, features:].T) if c.shape[1] else b0.expand(c.shape[0], -1)
        self.hidden = weights[1:-1]
        self.w_out, self.b_out = weights[-1]

    def transform(self, y_prev: Tensor, j: int):
        """Univariate transform of coordinate ``j`` given coordinates ``y_prev`` (N, j)."""
        if self.features == 1:
            return self.layer(self.c).base
        h = self.h_c.clone() if j == 0 else torch.addmm(self.h_c, y_prev, self.w_x[:, :j].T)
        h = _activate(self.activations[0], h)
        for (w, b), act in zip(self.hidden, self.activations[1:], strict=True):
            h = _activate(act, torch.addmm(b, h, w.T))
        rows = slice(j * self.total, (j + 1) * self.total)
        phi = torch.addmm(self.b_out[rows], h, self.w_out[rows].T)
        phi = unpack(phi.unsqueeze(1), self.shapes)
        return self.layer.univariate(*phi)

def _activate(activation: nn.Module, h: Tensor) -> Tensor:
    """Applies ``activation``, in place for ReLU (``h`` is a fresh temporary)."""
    return h.relu_() if isinstance(activation, nn.ReLU) else activation(h)


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
