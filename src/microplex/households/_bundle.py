"""Helpers of the HouseholdSynthesizer: inner models in one archive, and low-noise allotment."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..synthesis import Synthesizer
from ..synthesis.serialization import read_archive, write_archive

__all__ = ["pack_models", "unpack_models", "systematic_counts"]

_INNER = "microplex.Synthesizer"


def pack_models(
    models: dict[str, Synthesizer],
) -> tuple[dict[str, Any], dict[str, torch.Tensor], dict[str, pd.DataFrame]]:
    """Metadata, tensors and tables of several fitted Synthesizers, keys prefixed by name.

    Each model is saved with :meth:`Synthesizer.save` and read back with ``read_archive``, so
    the inner format stays the Synthesizer's own.
    """
    meta, tensors, tables = {}, {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, model in models.items():
            model.save(Path(tmp) / f"{name}.mpx")
            sub_meta, sub_tensors, sub_tables = read_archive(Path(tmp) / f"{name}.mpx", _INNER)
            meta[name] = sub_meta
            tensors.update({f"{name}/{k}": v for k, v in sub_tensors.items()})
            tables.update({f"{name}/{k}": v for k, v in sub_tables.items()})
    return meta, tensors, tables


def unpack_models(
    meta: dict[str, Any], tensors: dict[str, torch.Tensor], tables: dict[str, pd.DataFrame]
) -> dict[str, Synthesizer]:
    """Inverse of :func:`pack_models`."""
    models = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, sub_meta in meta.items():
            sub_tensors = {k.split("/", 1)[1]: v for k, v in tensors.items() if k.startswith(f"{name}/")}
            sub_tables = {k.split("/", 1)[1]: v for k, v in tables.items() if k.startswith(f"{name}/")}
            write_archive(Path(tmp) / f"{name}.mpx", sub_meta, sub_tensors, sub_tables)
            models[name] = Synthesizer.load(Path(tmp) / f"{name}.mpx")
    return models


def systematic_counts(p: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Integer counts summing to ``n`` with expectation ``n * p``, each within 1 of it
    (systematic rounding with a random start).

    Examples
    --------
    >>> c = systematic_counts(np.array([0.5, 0.3, 0.2]), 10, np.random.default_rng(0))
    >>> c.tolist(), int(c.sum())
    ([5, 3, 2], 10)
    """
    cum = np.floor(np.concatenate([[0.0], np.cumsum(p) / np.sum(p)]) * n + rng.uniform())
    counts = np.diff(cum).astype(np.int64)
    counts[-1] += n - counts.sum()
    return counts
