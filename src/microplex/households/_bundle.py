"""Helpers of the HouseholdSynthesizer: its fitted state and inner models in one archive, and
low-noise allotment."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from ..synthesis import Synthesizer, VariableSpec
from ..synthesis.serialization import read_archive, write_archive

if TYPE_CHECKING:
    from ._synthesizer import HouseholdSynthesizer

__all__ = ["load_fitted", "pack_models", "save_fitted", "systematic_counts", "unpack_models"]

_FORMAT = "microplex.HouseholdSynthesizer"
_INNER = "microplex.Synthesizer"


def save_fitted(hs: HouseholdSynthesizer, path: str | os.PathLike) -> None:
    """Writes the fitted ``hs`` to ``path``: its parameters and fitted attributes as JSON
    metadata, its inner models through :func:`pack_models`."""
    from .. import __version__

    params = hs.get_params()
    params["schema"] = {k: v.to_dict() for k, v in (hs.schema or {}).items()}
    params["household_vars"], params["person_vars"] = list(hs.household_vars), list(hs.person_vars)
    params["hidden_features"] = list(hs.hidden_features)
    meta: dict[str, Any] = {
        "format": _FORMAT, "microplex_version": __version__, "params": params,
        "size_col": hs.size_col_, "household_cols": hs.household_cols_, "early_cols": hs.early_cols_,
        "total_weight": hs.total_weight_, "max_size": hs.max_size_, "na_ages": hs.na_ages_,
        "person_dtypes": hs.person_dtypes_, "member_numeric": hs.member_numeric_,
        "member_categorical": hs.member_categorical_, "context_cols": hs.context_cols_,
        "limits": [limit for limit, _ in hs.applicable_models_], "models": {},
        "min_age": getattr(hs, "min_age_", None),
        "geography_shares": getattr(hs, "geography_shares_", None),
        "geography_dtype": getattr(hs, "geography_dtype_", None),
    }
    models = {"household": hs.household_model_}
    models.update({f"person_{name}": m for name, m in hs.person_models_.items()})
    models.update({f"applicable{i}": m for i, (_, m) in enumerate(hs.applicable_models_)})
    if hs.late_model_ is not None:
        models["late"] = hs.late_model_
    meta["models"], tensors, tables = pack_models(models)
    write_archive(path, meta, tensors, tables)


def load_fitted(cls: type[HouseholdSynthesizer], path: str | os.PathLike) -> HouseholdSynthesizer:
    """Inverse of :func:`save_fitted`: a fitted ``cls`` instance."""
    meta, tensors, tables = read_archive(path, _FORMAT)
    params = dict(meta["params"])
    params["schema"] = {k: VariableSpec.from_dict(v) for k, v in params["schema"].items()} or None
    params["hidden_features"] = tuple(params["hidden_features"])
    hs = cls(**params)
    hs.size_col_, hs.household_cols_ = meta["size_col"], meta["household_cols"]
    hs.early_cols_ = meta["early_cols"]
    hs.total_weight_, hs.max_size_, hs.na_ages_ = meta["total_weight"], meta["max_size"], meta["na_ages"]
    hs.person_dtypes_, hs.context_cols_ = meta["person_dtypes"], meta["context_cols"]
    hs.member_numeric_, hs.member_categorical_ = meta["member_numeric"], meta["member_categorical"]
    models = unpack_models(meta["models"], tensors, tables)
    hs.household_model_, hs.late_model_ = models["household"], models.get("late")
    hs.person_models_ = {n[len("person_"):]: m for n, m in models.items() if n.startswith("person_")}
    hs.min_age_ = meta.get("min_age")
    if meta.get("geography_shares") is not None:
        hs.geography_shares_ = tuple(meta["geography_shares"])
        hs.geography_dtype_ = meta["geography_dtype"]
    hs.applicable_models_ = [(limit, models[f"applicable{i}"]) for i, limit in enumerate(meta["limits"])]
    return hs


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
