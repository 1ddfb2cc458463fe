"""Scratch memory for generation: arrays reused by the equal-sized chunks of one generation.

Generating a million records runs the networks over ~60 chunks; allocating every hidden
activation afresh makes the operating system fault in new pages each time (measured: a fresh
``(16384, 32)`` ReLU output cost 20-30x a ReLU in place). A *workspace* is a plain dict that
one generation call creates, passes down with every chunk and drops at the end; it is never
shared between threads or calls.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn
from zuko import nn as znn

__all__ = ["Workspace", "scratch", "mlp_forward"]

#: A generation's scratch arrays and prepared weights, by key.
Workspace = dict[str, Any]


def scratch(workspace: Workspace, key: str, shape: tuple[int, ...], dtype: torch.dtype) -> Tensor:
    """An uninitialized contiguous array of ``shape`` backed by ``workspace[key]``, which grows
    when too small (a smaller request reuses the front of a larger buffer)."""
    size = math.prod(shape)
    have = workspace.get(key)
    if have is None or have.numel() < size or have.dtype != dtype:
        have = workspace[key] = torch.empty(size, dtype=dtype)
    return have[:size].view(shape)


def activate_(activation: nn.Module, h: Tensor) -> None:
    """Applies ``activation`` to ``h`` in place."""
    if isinstance(activation, nn.ReLU):
        h.relu_()
    else:
        h.copy_(activation(h))


def _dense(m: nn.Module) -> bool:
    """Whether ``m`` is a plain dense layer ``x W' + b`` (torch's or zuko's unstacked, unmasked)."""
    return (isinstance(m, (nn.Linear, znn.Linear)) and not isinstance(m, znn.MaskedLinear)
            and m.weight.dim() == 2)


@torch.no_grad()
def mlp_forward(mlp: nn.Module, x: Tensor, workspace: Workspace | None, key: str, *,
                scratch_output: bool = False) -> Tensor:
    """``mlp(x)`` for a sequential network of dense layers alternating with element-wise
    activations (zuko's ``MLP``), with its hidden activations in ``workspace`` and computed in
    place. The returned output, without gradient (generation only), is a fresh tensor, or with
    ``scratch_output`` an array the caller may overwrite (a workspace array that the next call
    reuses). Any other module is simply called (its output cloned with ``scratch_output``)."""
    layers = list(mlp) if isinstance(mlp, nn.Sequential) else []
    if workspace is None or not layers or not _dense(layers[-1]) or not all(
        _dense(m) if i % 2 == 0 else isinstance(m, (nn.ReLU, nn.ELU, nn.SiLU, nn.Tanh, nn.LeakyReLU))
        for i, m in enumerate(layers)
    ):
        out = mlp(x)
        return out.clone() if scratch_output else out
    h = x
    last = len(layers) - 1
    for i, m in enumerate(layers):
        if i % 2 == 0:
            out = (None if i == last and not scratch_output
                   else scratch(workspace, f"{key}.{i}", (x.shape[0], m.out_features), x.dtype))
            h = (torch.addmm(m.bias, h, m.weight.T, out=out) if m.bias is not None
                 else torch.mm(h, m.weight.T, out=out))
        else:
            activate_(m, h)
    return h
