"""The :class:`Synthesizer` estimator: fit P(targets | conditions) on weighted survey records."""

from __future__ import annotations

import copy
import logging
import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, BinaryIO

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from .._errors import ConvergenceError, DataValidationError, ExtrapolationWarning, NotFittedError
from .._params import check_bool, check_choice, check_float, check_int, check_names, check_seed
from .._random import int_seed
from . import _model_file
from ._checks import (
    EXTRAPOLATION_MARGIN, MAX_BINS, MAX_HEAPS, MAX_LEARNING_RATE, MAX_POINT_MASSES, MAX_THREADS, MAX_TRANSFORMS, _FLOAT32_MAX,
    check_effective_size, check_hidden, check_schema, overflow_message,
)
from ._validation import check_allocation, check_column, check_frame, check_reserved, check_unique_columns, check_weights
from .model import PointMassFlow
from .schema import VariableSpec, infer_kind
from .serialization import read_archive, write_archive
from .transforms import CategoricalEncoder, ConditionEncoder, ContinuousEncoder

__all__ = ["Synthesizer"]

logger = logging.getLogger(__name__)

_FORMAT = "microplex.Synthesizer"
_MAX_PATTERNS = 1024
_PARAMS = (
    "target_vars", "condition_vars", "flow", "transforms", "hidden_features", "bins", "schema",
    "point_mass_threshold", "max_point_masses", "heap_threshold", "max_heaps", "min_heap_count", "epochs",
    "batch_size", "learning_rate", "weight_decay", "validation_fraction", "patience", "verbose",
)


class Synthesizer:
    """Conditional normalizing-flow synthesizer for survey microdata.

    Learns P(targets | conditions) from weighted records: a softmax over the joint pattern of
    point masses (zeros, top codes) and categories, joined to a masked autoregressive flow
    (``zuko``) over the continuous parts, by weighted maximum likelihood.

    Parameters
    ----------
    target_vars : sequence of str
        Columns to synthesize.
    condition_vars : sequence of str, default=()
        Columns to condition on (kept as given in :meth:`generate`).
    flow : {"maf", "nsf"}, default="maf"
        Affine masked autoregressive flow or neural spline flow.
    transforms : int, default=3
        Number of stacked autoregressive transforms.
    hidden_features : tuple of int, default=None
        Hidden layer sizes of the flow and pattern networks. ``None`` uses two layers of
        ``32 * ceil(n_targets / 3)`` units (at most 128): small models sample fast and, on the
        benchmarks, fit as well as wider ones.
    bins : int, default=8
        Spline bins (``flow="nsf"``).
    schema : mapping of str to VariableSpec, default=None
        Overrides of inferred kinds, point masses and transforms, per column.
    point_mass_threshold : float, default=0.01
        A value carrying at least this share of the weight is a point mass (continuous targets).
    max_point_masses : int, default=5
        Most point masses detected per target.
    heap_threshold : float, default=0.003
        A value of a continuous or integer target's continuous part carrying at least this
        share of the weight (and held by ``min_heap_count`` records) is a *heap*: a discrete
        state of its own variable, drawn by a per-variable autoregressive head, so round
        numbers and bracket midpoints come out exactly (see :mod:`microplex.synthesis.heaps`).
        0 disables heaps.
    max_heaps : int, default=64
        Most heaps per target, heaviest first (0 disables heaps).
    min_heap_count : int, default=20
        Fewest training records a heap must hold, so a heap state never identifies a record.
    epochs : int, default=200
        Maximum training epochs (early stopping usually ends sooner).
    batch_size : int, default=512
    learning_rate : float, default=2e-3
    weight_decay : float, default=0.0
    validation_fraction : float, default=0.1
        Share of records held out for early stopping; the learning rate halves when the
        validation loss stalls. With 0, training runs all ``epochs`` and the learning rate decays
        to 0 along a cosine, so the final weights settle at an optimum instead of a noisy Adam
        step (the point-mass probabilities then match their training shares).
    patience : int, default=15
        Epochs without validation improvement before stopping.
    verbose : bool, default=True
        Show a progress bar while fitting.

    Attributes
    ----------
    kinds_ : dict of str to str
        Modelling kind of every target and condition.
    point_masses_ : dict of str to tuple of float
        Point masses of every continuous or integer target.
    heaps_ : dict of str to tuple of float
        Heaps of every continuous or integer target (empty when it has none).
    history_ : DataFrame
        Per-epoch ``train_loss`` and ``val_loss`` (weighted mean negative log-likelihood).
    model_ : PointMassFlow
        The fitted torch module.

    Examples
    --------
    >>> from microplex.datasets import load_dataset
    >>> df = load_dataset("cps1").sample(2000, random_state=0)
    >>> synth = Synthesizer(["re74", "re78"], ["age", "educ"], epochs=2, verbose=False)
    >>> synth = synth.fit(df, seed=0)
    >>> out = synth.generate(df.head(5), seed=1)
    >>> out.shape
    (5, 9)
    >>> bool((synth.log_prob(df.head(5)) < 0).all())
    True
    """

    def __init__(
        self,
        target_vars: Sequence[str],
        condition_vars: Sequence[str] = (),
        *,
        flow: str = "maf",
        transforms: int = 3,
        hidden_features: tuple[int, ...] | None = None,
        bins: int = 8,
        schema: Mapping[str, VariableSpec] | None = None,
        point_mass_threshold: float = 0.01,
        max_point_masses: int = 5,
        heap_threshold: float = 0.003,
        max_heaps: int = 64,
        min_heap_count: int = 20,
        epochs: int = 200,
        batch_size: int = 512,
        learning_rate: float = 2e-3,
        weight_decay: float = 0.0,
        validation_fraction: float = 0.1,
        patience: int = 15,
        verbose: bool = True,
    ) -> None:
        self.target_vars = target_vars
        self.condition_vars = condition_vars
        self.flow = flow
        self.transforms = transforms
        self.hidden_features = hidden_features
        self.bins = bins
        self.schema = schema
        self.point_mass_threshold = point_mass_threshold
        self.max_point_masses = max_point_masses
        self.heap_threshold = heap_threshold
        self.max_heaps = max_heaps
        self.min_heap_count = min_heap_count
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.verbose = verbose

    def get_params(self) -> dict[str, Any]:
        """Constructor parameters, as given."""
        return {k: getattr(self, k) for k in _PARAMS}

    def __repr__(self) -> str:
        return f"Synthesizer(target_vars={list(self.target_vars)!r}, condition_vars={list(self.condition_vars)!r}, flow={self.flow!r})"

    # -- fitting -----------------------------------------------------------------------
    def fit(
        self,
        data: pd.DataFrame,
        weight_col: str | None = None,
        *,
        epochs: int | None = None,
        seed: int = 0,
    ) -> Synthesizer:
        """Fits the model by weighted maximum likelihood.

        Parameters
        ----------
        data : DataFrame
            Training records with every target and condition column.
        weight_col : str, default=None
            Survey weight column; ``None`` gives every record weight 1.
        epochs : int, default=None
            Overrides the constructor's ``epochs``.
        seed : int, default=0
            Seeds the initialization, the validation split, batches and dequantization noise.

        Returns
        -------
        self : Synthesizer
        """
        fitted = {k: v for k, v in vars(self).items() if k.endswith("_") or k == "_ranges"}
        try:
            return self._fit(data, weight_col, epochs, seed)
        except BaseException:
            # A failed fit leaves the estimator as it was (fitted or not), never half-fitted.
            for k in [k for k in vars(self) if k.endswith("_") or k == "_ranges"]:
                delattr(self, k)
            self.__dict__.update(fitted)
            raise

    def _fit(self, data: pd.DataFrame, weight_col: str | None, epochs: int | None, seed: int) -> Synthesizer:
        p = self._check_params()
        self._ranges = None
        epochs = check_int(epochs, "epochs", low=1, allow_none=True)
        seed = check_seed(seed, "seed", allow_none=False)
        if weight_col is not None and not isinstance(weight_col, str):
            raise DataValidationError(f"The 'weight_col' parameter must be a column name (str) or None. Got {weight_col!r} instead.")
        targets, conditions = p["target_vars"], p["condition_vars"]
        if weight_col in targets + conditions:
            raise DataValidationError(f"Weight column {weight_col!r} cannot also be a target or condition.")
        check_frame(data, targets + conditions + ([weight_col] if weight_col else []), "data")
        w = check_weights(data, weight_col)
        check_effective_size(w, weight_col)
        schema = dict(p["schema"] or {})
        for name in targets + conditions:
            role = "target" if name in targets else "condition"
            check_column(data[name], name, role)
            if data[name].nunique() < 2:
                raise DataValidationError(
                    f"{role.capitalize()} column {name!r} is constant ({data[name].iloc[0]!r}); "
                    "drop it or give it at least two distinct values."
                )
            kind = schema.get(name, VariableSpec()).kind
            if kind in ("continuous", "integer") and (
                    not pd.api.types.is_numeric_dtype(data[name].dtype) or pd.api.types.is_bool_dtype(data[name].dtype)):
                raise DataValidationError(
                    f"{role.capitalize()} column {name!r} has kind {kind!r} in the schema but dtype "
                    f"{data[name].dtype}; only numeric columns can be {kind}."
                )

        self.kinds_ = {}
        for name in targets + conditions:
            role = "target" if name in targets else "condition"
            kind = schema.get(name, VariableSpec()).kind or infer_kind(data[name], role=role)
            if role == "condition" and kind == "integer":
                kind = "continuous"
            self.kinds_[name] = kind
        self.dtypes_ = {name: str(data[name].dtype) for name in targets}
        self.n_features_in_ = len(conditions)
        self.condition_encoder_ = ConditionEncoder({n: self.kinds_[n] for n in conditions}).fit(data, w)
        self.encoders_: dict[str, ContinuousEncoder | CategoricalEncoder] = {}
        for name in targets:
            if self.kinds_[name] == "categorical":
                self.encoders_[name] = CategoricalEncoder(name).fit(data[name])
            else:
                enc = ContinuousEncoder(name, integer=self.kinds_[name] == "integer")
                self.encoders_[name] = enc.fit(
                    data[name].to_numpy(float), w, schema.get(name, VariableSpec()),
                    self.point_mass_threshold, self.max_point_masses, heap_threshold=self.heap_threshold,
                    max_heaps=int(self.max_heaps), min_heap_count=int(self.min_heap_count),
                )
        self._build_layout()

        rng = np.random.default_rng(seed)
        c = self.condition_encoder_.transform(data)
        self._check_encoded(data, c)
        states = self._discrete_states(data)
        self.patterns_ = self._pattern_table(states)
        self._check_model_size(len(data))
        lookup = {tuple(p): i for i, p in enumerate(self.patterns_.tolist())}
        pattern = np.array([lookup[tuple(s)] for s in states.tolist()], dtype=np.int64)
        heap = self._heap_states(data)
        self.training_conditions_ = data[conditions].reset_index(drop=True).copy()
        self.training_weights_ = w.copy()

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.model_ = self._new_model()
            self.model_.init_pattern_prior(
                torch.as_tensor(np.bincount(pattern, weights=w, minlength=len(self.patterns_)) / w.sum())
            )
            self._train(data, c, pattern, heap, w, rng, epochs or self.epochs, seed)
        return self

    def _check_encoded(self, data: pd.DataFrame, c: np.ndarray) -> None:
        """Refuses columns whose standardized training values overflow (float32 for the networks),
        naming them, instead of letting an infinite statistic silently zero a column."""
        for name in self.condition_vars:
            if self.kinds_[name] != "categorical":
                mean, std = self.condition_encoder_.stats[name]
                z = (data[name].to_numpy(float) - mean) / std
                if not np.isfinite(z).all() or np.abs(z).max() > _FLOAT32_MAX:
                    raise DataValidationError(overflow_message("Condition", name, data[name]))
        if not np.isfinite(c).all():  # pragma: no cover - caught per column above
            raise DataValidationError("The condition features are not finite.")
        for name in self.continuous_vars_:
            enc = self.encoders_[name]
            fields = [v for seg in enc.segments for v in seg.to_dict().values() if isinstance(v, float)]
            u = enc.encode(data[name].to_numpy(float))[1]
            if not np.isfinite(fields).all() or not np.isfinite(u).all() or np.abs(u).max() > _FLOAT32_MAX:
                raise DataValidationError(overflow_message("Target", name, data[name]))

    def _check_model_size(self, n_records: int) -> None:
        """Refuses, before building the networks, a model whose parameters and optimizer state
        (about 6 copies of the float32 weights) and batch activations exceed the machine's memory."""
        hidden = list(self._hidden_features())
        context = self.condition_encoder_.n_features
        n_patterns = len(self.patterns_)
        n_cont = len(self.continuous_vars_)
        onehot = sum(self.encoders_[n].n_states for n in self.discrete_vars_)
        per_dim = 2 if self.flow == "maf" else 3 * int(self.bins)
        def mlp(sizes: list[int]) -> float:
            return float(sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:])))
        params = mlp([context, *hidden, n_patterns]) if n_patterns > 1 else 0.0
        if n_cont:
            params += int(self.transforms) * mlp([n_cont + context + onehot, *hidden, n_cont * per_dim])
        batch = min(int(self.batch_size), n_records)
        activations = 3.0 * batch * (sum(hidden) + n_cont * per_dim) * (int(self.transforms) + 1)
        check_allocation(4.0 * (6 * params + activations), "The Synthesizer's networks and optimizer state",
                         "Use smaller 'hidden_features', 'transforms' or 'batch_size'.")

    def _check_params(self) -> dict[str, Any]:
        """Every constructor parameter, checked; returns them in canonical types (the stored
        attributes stay as given)."""
        p = {
            "target_vars": check_names(self.target_vars, "target_vars", allow_empty=False),
            "condition_vars": check_names(self.condition_vars, "condition_vars"),
            "flow": check_choice(self.flow, "flow", ("maf", "nsf")),
            "transforms": check_int(self.transforms, "transforms", low=1, high=MAX_TRANSFORMS),
            "hidden_features": check_hidden(self.hidden_features),
            "bins": check_int(self.bins, "bins", low=2, high=MAX_BINS),
            "schema": check_schema(self.schema),
            "point_mass_threshold": check_float(
                self.point_mass_threshold, "point_mass_threshold", low=0.0, high=1.0,
                low_inclusive=False, high_inclusive=False),
            "max_point_masses": check_int(self.max_point_masses, "max_point_masses", low=0, high=MAX_POINT_MASSES),
            "epochs": check_int(self.epochs, "epochs", low=1),
            "batch_size": check_int(self.batch_size, "batch_size", low=1),
            "learning_rate": check_float(self.learning_rate, "learning_rate", low=0.0, high=MAX_LEARNING_RATE,
                                         low_inclusive=False),
            "weight_decay": check_float(self.weight_decay, "weight_decay", low=0.0),
            "validation_fraction": check_float(
                self.validation_fraction, "validation_fraction", low=0.0, high=0.5, high_inclusive=False),
            "patience": check_int(self.patience, "patience", low=1),
            "verbose": check_bool(self.verbose, "verbose"),
            "heap_threshold": check_float(self.heap_threshold, "heap_threshold", low=0.0, high=1.0,
                                          high_inclusive=False),
            "max_heaps": check_int(self.max_heaps, "max_heaps", low=0, high=MAX_HEAPS),
            "min_heap_count": check_int(self.min_heap_count, "min_heap_count", low=1),
        }
        overlap = sorted(set(p["target_vars"]) & set(p["condition_vars"]))
        if overlap:
            raise DataValidationError(f"Columns cannot be both targets and conditions: {overlap}.")
        check_reserved(p["target_vars"] + p["condition_vars"], "Target and condition columns")
        unknown = sorted(set(p["schema"] or {}) - set(p["target_vars"]) - set(p["condition_vars"]))
        if unknown:
            raise DataValidationError(f"schema names columns that are neither targets nor conditions: {unknown}.")
        return p

    def _build_layout(self) -> None:
        """Discrete variables (targets with point masses, categorical targets) and continuous dims."""
        self.discrete_vars_ = [n for n, e in self.encoders_.items() if e.n_states > 1 or isinstance(e, CategoricalEncoder)]
        self.continuous_vars_ = [
            n for n, e in self.encoders_.items() if isinstance(e, ContinuousEncoder) and e.has_continuous
        ]
        self.heap_vars_ = [n for n in self.continuous_vars_ if self.encoders_[n].heaps]
        continuous = {n: e for n, e in self.encoders_.items() if isinstance(e, ContinuousEncoder)}
        self.point_masses_ = {n: tuple(e.point_masses) for n, e in continuous.items()}
        self.heaps_ = {n: tuple(e.heaps) for n, e in continuous.items()}

    def _heap_states(self, data: pd.DataFrame) -> np.ndarray:
        """Heap index of every heaped variable (0: none), shape (N, H)."""
        cols = [self.encoders_[n].heap_index(data[n].to_numpy(float)) for n in self.heap_vars_]
        return np.stack(cols, axis=1) if cols else np.zeros((len(data), 0), dtype=np.int64)

    def _heap_layout(self) -> list[tuple[int, torch.Tensor, torch.Tensor]]:
        """(flow coordinate, encoded heap values, heap states allowed per pattern) per heaped variable."""
        out = []
        for name in self.heap_vars_:
            enc = self.encoders_[name]
            allowed = np.ones((len(self.patterns_), len(enc.heaps) + 1), dtype=bool)
            if name in self.discrete_vars_:
                state = self.patterns_[:, self.discrete_vars_.index(name)]
                allowed[:, 1:] = state[:, None] == np.asarray(enc.heap_states)[None, :]
            out.append((self.continuous_vars_.index(name), torch.as_tensor(enc.heap_encoded, dtype=torch.float32),
                        torch.as_tensor(allowed)))
        return out

    def _discrete_states(self, data: pd.DataFrame) -> np.ndarray:
        """Discrete state of every discrete variable, shape (N, M); ``-1`` marks unseen values."""
        cols = []
        for name in self.discrete_vars_:
            enc = self.encoders_[name]
            if isinstance(enc, CategoricalEncoder):
                cols.append(enc.states(data[name]))
            else:
                cols.append(enc.states(data[name].to_numpy(float)))
        return np.stack(cols, axis=1) if cols else np.zeros((len(data), 0), dtype=np.int64)

    def _pattern_table(self, states: np.ndarray) -> np.ndarray:
        """Every combination of the discrete variables' states when there are at most
        ``_MAX_PATTERNS`` (so unseen combinations keep a small probability), else the
        combinations observed in training; shape (P, M)."""
        sizes = [self.encoders_[n].n_states for n in self.discrete_vars_]
        if not sizes:
            return np.zeros((1, 0), dtype=np.int64)
        if int(np.prod(sizes, dtype=float)) <= _MAX_PATTERNS:
            grids = np.meshgrid(*[np.arange(s) for s in sizes], indexing="ij")
            return np.stack([g.reshape(-1) for g in grids], axis=1).astype(np.int64).reshape(-1, len(sizes))
        return np.unique(states, axis=0)

    def _active(self) -> np.ndarray:
        """Whether each continuous dim is in its continuous state under each pattern, (P, D)."""
        active = np.ones((len(self.patterns_), len(self.continuous_vars_)), dtype=bool)
        for j, name in enumerate(self.continuous_vars_):
            if name in self.discrete_vars_:
                m = self.discrete_vars_.index(name)
                active[:, j] = np.isin(self.patterns_[:, m], self.encoders_[name].continuous_states)
        return active

    def _new_model(self) -> PointMassFlow:
        return PointMassFlow(
            context=self.condition_encoder_.n_features,
            patterns=torch.as_tensor(self.patterns_),
            state_sizes=[self.encoders_[n].n_states for n in self.discrete_vars_],
            active=torch.as_tensor(self._active()),
            flow=self.flow,
            transforms=self.transforms,
            hidden_features=self._hidden_features(),
            bins=self.bins,
            heaps=self._heap_layout(),
        )

    def _hidden_features(self) -> tuple[int, ...]:
        if self.hidden_features is not None:
            return tuple(int(h) for h in self.hidden_features)
        width = min(128, 32 * -(-len(self.target_vars) // 3))
        return (width, width)

    def _encode_continuous(self, data: pd.DataFrame, rng: np.random.Generator | None) -> np.ndarray:
        cols = [self.encoders_[n].encode(data[n].to_numpy(float), rng)[1] for n in self.continuous_vars_]
        return np.stack(cols, axis=1) if cols else np.zeros((len(data), 0))

    def _train(self, data, c, pattern, heap, w, rng, epochs, seed) -> None:
        """Adam on the weighted negative log-likelihood, with early stopping on a validation split.

        The pattern head, the heap heads and the flow have disjoint parameters and separate
        loss terms, so each keeps its own best state on the validation split; training stops
        when none has improved for ``patience`` epochs. Without a validation split the learning rate
        follows a cosine decay to 0 over ``epochs``.
        """
        n = len(data)
        order = rng.permutation(n)
        n_val = int(round(self.validation_fraction * n)) if self.validation_fraction > 0 else 0
        if w[order[n_val:]].sum() <= 0 or (n_val and w[order[:n_val]].sum() <= 0):
            part = "training" if w[order[n_val:]].sum() <= 0 else "validation"
            raise DataValidationError(
                f"Every record with positive weight fell outside the {part} split ({n_val} of {n} records are "
                "held out for validation); give more records a positive weight or set validation_fraction=0."
            )
        val_idx, train_idx = torch.as_tensor(order[:n_val]), torch.as_tensor(order[n_val:])
        c_t, p_t, h_t = torch.as_tensor(c), torch.as_tensor(pattern), torch.as_tensor(heap)
        w_t = torch.as_tensor(w / w.mean(), dtype=torch.float32)
        dequantize = any(self.encoders_[v].integer for v in self.continuous_vars_)
        u_t = torch.as_tensor(self._encode_continuous(data, None), dtype=torch.float32)
        u_val = u_t[val_idx]

        model = self.model_
        parts = {"head": model.head, "heaps": model.heaps, "flow": model.flow}
        parts = {k: m for k, m in parts.items() if m is not None}
        opt = torch.optim.Adam(model.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay)
        if n_val:
            sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=max(self.patience // 3, 1))
        else:
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
        gen = torch.Generator().manual_seed(seed)
        best = {k: (np.inf, copy.deepcopy(m.state_dict()), 0) for k, m in parts.items()} if n_val else {}
        history = []
        bar = tqdm(range(epochs), desc="fit", unit="epoch", disable=not self.verbose, leave=False)
        for epoch in bar:
            if dequantize:
                u_t = torch.as_tensor(self._encode_continuous(data, rng), dtype=torch.float32)
            model.train()
            perm = train_idx[torch.randperm(len(train_idx), generator=gen)]
            total, weight = 0.0, 0.0
            for start in range(0, len(perm), self.batch_size):
                b = perm[start : start + self.batch_size]
                wb = w_t[b]
                if not float(wb.sum()) > 0:  # a batch of zero-weight records carries no likelihood
                    continue
                loss = -(wb * model.log_prob(c_t[b], p_t[b], u_t[b], h_t[b])).sum() / wb.sum()
                opt.zero_grad()
                loss.backward()
                try:
                    opt.step()
                except RuntimeError as exc:  # e.g. a step that overflows float32
                    bar.close()
                    raise ConvergenceError(
                        f"Training failed at epoch {epoch + 1}: {exc}; lower 'learning_rate' (now "
                        f"{self.learning_rate!r}) or rescale extreme values."
                    ) from exc
                total += loss.item() * float(wb.sum())
                weight += float(wb.sum())
            train_loss = total / weight
            if not np.isfinite(train_loss):
                bar.close()
                raise ConvergenceError(
                    f"The training loss became non-finite ({train_loss}) at epoch {epoch + 1}; lower "
                    f"'learning_rate' (now {self.learning_rate!r}) or rescale extreme values."
                )
            val_loss = np.nan
            if not n_val:
                history.append((epoch + 1, train_loss, val_loss))
                bar.set_postfix(train=f"{train_loss:.4f}")
                sched.step()
                continue
            model.eval()
            with torch.no_grad():
                lps = model.log_prob_parts(c_t[val_idx], p_t[val_idx], u_val, h_t[val_idx])
            wv = w_t[val_idx] / w_t[val_idx].sum()
            scores = {k: -float((wv * lp).sum()) for k, lp in zip(("head", "heaps", "flow"), lps, strict=True)}
            val_loss = sum(scores.values())
            history.append((epoch + 1, train_loss, val_loss))
            bar.set_postfix(train=f"{train_loss:.4f}", val=f"{val_loss:.4f}")
            for k, m in parts.items():
                score, state, stale = best[k]
                if scores[k] < score - 1e-4:
                    best[k] = (scores[k], copy.deepcopy(m.state_dict()), 0)
                else:
                    best[k] = (score, state, stale + 1)
            sched.step(val_loss)
            if all(stale >= self.patience for _, _, stale in best.values()):
                logger.info("Early stopping after %d epochs.", epoch + 1)
                break
        bar.close()
        if n_val:
            for k, m in parts.items():
                m.load_state_dict(best[k][1])
        model.eval()
        self.history_ = pd.DataFrame(history, columns=["epoch", "train_loss", "val_loss"])

    # -- generation --------------------------------------------------------------------
    def _check_is_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError(
                "This Synthesizer instance is not fitted yet. Call 'fit' with appropriate arguments first."
            )

    def generate(
        self, conditions: pd.DataFrame, seed: int | None = None, *, chunk_size: int = 16_384, threads: int | None = 1
    ) -> pd.DataFrame:
        """Synthesizes targets for the given condition rows.

        Parameters
        ----------
        conditions : DataFrame
            One row per record to synthesize, with every condition column (other columns kept).
        seed : int, default=None
            Seeds the draw; the same seed gives identical output.
        chunk_size : int, default=16384
            Rows processed at once (bounds memory).
        threads : int or None, default=1
            Torch intra-op threads while sampling (restored afterwards); ``None`` keeps the
            current setting. The sampling networks are small, so one thread is fastest: on the
            benchmark machine two threads were 20x slower under load (see the benchmark).
            The output does not depend on it.

        Returns
        -------
        DataFrame
            ``conditions`` with the target columns added (same index and row order).

        Warns
        -----
        ExtrapolationWarning
            When numeric conditions lie further than ``EXTRAPOLATION_MARGIN`` (0.5) times their
            training range beyond it; those rows are generated as at that margin.

        Raises
        ------
        DataValidationError
            Bad arguments, missing condition columns or values, an output or chunk that cannot
            fit in memory (stream with :func:`microplex.scale.generate_dataset`).
        """
        self._check_is_fitted()
        seed = check_seed(seed, "seed")
        chunk_size = check_int(chunk_size, "chunk_size", low=1)
        threads = check_int(threads, "threads", low=1, high=MAX_THREADS, allow_none=True)
        cond = list(self.condition_vars)
        check_frame(conditions, cond, "conditions", allow_empty=True)
        check_unique_columns(conditions, list(self.target_vars), "conditions")
        for name in cond:
            check_column(conditions[name], name, "condition")
        self._check_generate_size(len(conditions), len(conditions.columns), chunk_size)
        prepared = self._prepare_conditions(conditions)
        gen = torch.Generator().manual_seed(int_seed(np.random.SeedSequence(seed)))
        out = conditions.copy()
        pieces: dict[str, list[np.ndarray]] = {n: [] for n in self.target_vars}
        previous = torch.get_num_threads()
        if threads is not None:
            torch.set_num_threads(int(threads))
        try:
            self._sample_chunks(prepared, gen, chunk_size, pieces)
        finally:
            torch.set_num_threads(previous)
        for name in self.target_vars:
            values = np.concatenate(pieces[name]) if pieces[name] else np.array([])
            if self.kinds_[name] != "categorical" and not np.isfinite(values).all():
                raise ConvergenceError(
                    f"The model drew {int((~np.isfinite(values)).sum())} non-finite values of target {name!r}; "
                    "it is numerically unstable for these conditions."
                )
            out[name] = _cast(values, self.dtypes_[name], self.kinds_[name])
        return out

    def _check_generate_size(self, n_rows: int, n_columns: int, chunk_size: int) -> None:
        """Refuses, before allocating, an output or a chunk that cannot fit in memory."""
        check_allocation(
            8.0 * n_rows * (n_columns + len(self.target_vars)) * 2, f"Generating {n_rows:,} records",
            "Stream large populations to Parquet with microplex.scale.generate_dataset.",
        )
        rows = min(chunk_size, n_rows)
        hidden = sum(self._hidden_features())
        width = self.condition_encoder_.n_features + len(self.patterns_) + int(self.transforms) * (hidden + 3 * 8)
        check_allocation(4.0 * 4 * rows * width, f"A chunk of {rows:,} records (chunk_size={chunk_size:,})",
                         "Use a smaller 'chunk_size'.")

    def _condition_ranges(self) -> dict[str, tuple[float, float]]:
        """(min, max) of every numeric condition over the training records (not saved: derived
        from the training conditions)."""
        if getattr(self, "_ranges", None) is None:
            self._ranges = {
                n: (float(self.training_conditions_[n].to_numpy(float).min()),
                    float(self.training_conditions_[n].to_numpy(float).max()))
                for n in self.condition_vars if self.kinds_[n] != "categorical"
            }
        return self._ranges

    def _prepare_conditions(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame``'s condition columns, checked against their training kinds. Numeric conditions further than
        ``EXTRAPOLATION_MARGIN`` times their training range beyond it are held at that margin,
        with an :class:`ExtrapolationWarning` naming the column: the networks never saw such
        values and extrapolate them into degenerate draws (all zeros, or overflow)."""
        ranges = self._condition_ranges()
        clipped = {}
        for name, (lo, hi) in ranges.items():
            dtype = frame[name].dtype
            if not pd.api.types.is_numeric_dtype(dtype):
                raise DataValidationError(
                    f"Condition column {name!r} must be numeric, as in training. Got dtype {dtype} instead."
                )
            x = frame[name].to_numpy(float)
            margin = EXTRAPOLATION_MARGIN * (hi - lo)
            far = (x < lo - margin) | (x > hi + margin)
            if far.any():
                warnings.warn(
                    f"Condition column {name!r}: {int(far.sum())} of {len(x)} rows lie outside the training range "
                    f"[{lo:g}, {hi:g}] by more than {margin:g} ({EXTRAPOLATION_MARGIN:g} times its width); they are "
                    "treated as lying at that margin.", ExtrapolationWarning, stacklevel=3,
                )
                clipped[name] = np.clip(x, lo - margin, hi + margin)
        return frame[list(self.condition_vars)].assign(**clipped) if clipped else frame

    def _sample_chunks(self, conditions: pd.DataFrame, gen: torch.Generator, chunk_size: int,
                       pieces: dict[str, list[np.ndarray]]) -> None:
        with torch.inference_mode():
            for start in range(0, max(len(conditions), 1), chunk_size):
                part = conditions.iloc[start : start + chunk_size]
                if len(part) == 0:
                    break
                c = torch.as_tensor(self.condition_encoder_.transform(part))
                pattern, u, heap = self.model_.sample(c, gen)
                for name, values in self._decode(pattern.numpy(), u.numpy(), heap.numpy()).items():
                    pieces[name].append(values)

    def _decode(self, pattern: np.ndarray, u: np.ndarray, heap: np.ndarray) -> dict[str, np.ndarray]:
        states = self.patterns_[pattern]
        out = {}
        for name in self.target_vars:
            enc = self.encoders_[name]
            state = (
                states[:, self.discrete_vars_.index(name)]
                if name in self.discrete_vars_
                else np.zeros(len(pattern), dtype=np.int64)
            )
            if isinstance(enc, CategoricalEncoder):
                out[name] = enc.decode(state)
            else:
                cont = u[:, self.continuous_vars_.index(name)] if enc.has_continuous else np.zeros(len(pattern))
                h = heap[:, self.heap_vars_.index(name)] if name in self.heap_vars_ else None
                out[name] = enc.decode(cont.astype(float), state, h)
        return out

    def sample(
        self, n: int, seed: int | None = None, *, chunk_size: int = 16_384, threads: int | None = 1
    ) -> pd.DataFrame:
        """Synthesizes ``n`` records with conditions resampled from the weighted training conditions.

        ``chunk_size`` and ``threads`` are passed to :meth:`generate`. A population that cannot
        fit in memory (about ``16 * n * columns`` bytes against the machine's physical memory)
        is refused before anything is allocated: stream it with
        :func:`microplex.scale.generate_dataset`.

        Returns
        -------
        DataFrame
            ``n`` rows with the condition and target columns.
        """
        self._check_is_fitted()
        n = check_int(n, "n", low=0)
        seed = check_seed(seed, "seed")
        chunk_size = check_int(chunk_size, "chunk_size", low=1)
        self._check_generate_size(n, len(self.condition_vars), chunk_size)
        ss = np.random.SeedSequence(seed)
        cond_seed, gen_seed = ss.spawn(2)
        rng = np.random.default_rng(cond_seed)
        p = self.training_weights_ / self.training_weights_.sum()
        idx = rng.choice(len(p), size=int(n), p=p)
        conditions = self.training_conditions_.iloc[idx].reset_index(drop=True)
        return self.generate(conditions, seed=int_seed(gen_seed), chunk_size=chunk_size, threads=threads)

    def log_prob(self, data: pd.DataFrame) -> np.ndarray:
        """Exact log-likelihood of each record, shape (N,).

        The density is with respect to counting measure on point masses and categories times
        Lebesgue measure on the continuous parts, in the units of the data. Integer targets
        are evaluated at their value (the density of the dequantized value, which approximates
        the log-probability of the integer). Records outside the training support (unseen
        categories or point-mass patterns, values beyond a bound) get ``-inf``.
        """
        self._check_is_fitted()
        cols = list(self.target_vars) + list(self.condition_vars)
        check_frame(data, cols, "data", allow_empty=True)
        for name in cols:
            check_column(data[name], name, "target" if name in self.target_vars else "condition")
        for name in [n for n, e in self.encoders_.items() if isinstance(e, ContinuousEncoder)]:
            if not pd.api.types.is_numeric_dtype(data[name].dtype):
                raise DataValidationError(
                    f"Target column {name!r} must be numeric, as in training. Got dtype {data[name].dtype} instead."
                )
        c = torch.as_tensor(self.condition_encoder_.transform(self._prepare_conditions(data)))
        states = self._discrete_states(data)
        lookup = {tuple(p): i for i, p in enumerate(self.patterns_.tolist())}
        pattern = np.array([lookup.get(tuple(s), -1) for s in states.tolist()], dtype=np.int64)
        seen = pattern >= 0
        heap = self._heap_states(data)
        u = self._encode_continuous(data, None)
        log_jac = np.zeros(len(data))
        for j, name in enumerate(self.continuous_vars_):
            enc = self.encoders_[name]
            x = data[name].to_numpy(float)
            log_jac += enc.log_jacobian(x, enc.states(x))
        out = np.full(len(data), -np.inf)
        if seen.any():
            with torch.inference_mode():
                lp = self.model_.log_prob(
                    c[seen], torch.as_tensor(pattern[seen]), torch.as_tensor(u[seen], dtype=torch.float32),
                    torch.as_tensor(heap[seen]),
                )
            out[seen] = lp.double().numpy() + log_jac[seen]
        return out

    # -- persistence -------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        """Saves the fitted model to ``path`` (zip of JSON, safetensors and Parquet; no pickle).

        The file is written to a temporary name in the same folder and renamed, so a failed save
        leaves nothing behind.
        """
        self._check_is_fitted()
        if not isinstance(path, str | os.PathLike):
            raise DataValidationError(f"The 'path' parameter must be a str or path. Got {path!r:.80} instead.")
        folder = os.path.dirname(os.path.abspath(os.fspath(path)))
        if not os.path.isdir(folder) or os.path.isdir(path):
            raise DataValidationError(
                f"Cannot save to {str(path)!r}: " + ("it is a folder." if os.path.isdir(path) else f"folder {folder!r} does not exist.")
            )
        params = self.get_params()
        params["schema"] = {k: v.to_dict() for k, v in (self.schema or {}).items()}
        params["target_vars"], params["condition_vars"] = list(self.target_vars), list(self.condition_vars)
        params["hidden_features"] = None if self.hidden_features is None else list(self.hidden_features)
        from .. import __version__

        metadata = {
            "format": _FORMAT,
            "microplex_version": __version__,
            "params": params,
            "kinds": self.kinds_,
            "dtypes": self.dtypes_,
            "encoders": {n: e.to_dict() for n, e in self.encoders_.items()},
            "encoder_types": {n: type(e).__name__ for n, e in self.encoders_.items()},
            "condition_encoder": self.condition_encoder_.to_dict(),
            "patterns": self.patterns_.tolist(),
            "history": self.history_.to_dict(orient="list"),
        }
        conditions = self.training_conditions_.copy()
        conditions["__weight__"] = self.training_weights_
        write_archive(path, metadata, self.model_.state_dict(), {"conditions": conditions})

    @classmethod
    def load(cls, path: str | os.PathLike | BinaryIO) -> Synthesizer:
        """Loads a model saved by :meth:`save` (from a path or a binary file object).

        The file is untrusted data: its members, sizes, metadata types, encoders, pattern table,
        tensor names and shapes (against the architecture its parameters declare, before any
        weight is loaded) and training conditions are checked first; a defect raises one
        :class:`~microplex.DataValidationError` naming the file and the field.
        """
        label = repr(str(path)) if isinstance(path, str | os.PathLike) else repr(path)
        meta, tensors, tables = read_archive(path, _FORMAT, tables=("conditions",))
        _model_file.check_metadata(meta, label, _PARAMS)
        params = dict(meta["params"])
        if "max_heaps" not in params:  # a file written before heap states: its model has none
            params["max_heaps"] = 0
        try:
            params["schema"] = {k: VariableSpec.from_dict(v) for k, v in params["schema"].items()} or None
            if params["hidden_features"] is not None:
                params["hidden_features"] = tuple(params["hidden_features"])
            self = cls(**params)
            p = self._check_params()
        except DataValidationError as exc:
            raise DataValidationError(f"{label} is not a valid Synthesizer model file: field 'params': {exc}") from None
        self.kinds_, self.dtypes_ = meta["kinds"], meta["dtypes"]
        types = {"ContinuousEncoder": ContinuousEncoder, "CategoricalEncoder": CategoricalEncoder}
        self.encoders_ = {n: types[meta["encoder_types"][n]].from_dict(meta["encoders"][n]) for n in p["target_vars"]}
        self.condition_encoder_ = ConditionEncoder.from_dict(meta["condition_encoder"])
        self.n_features_in_ = len(self.condition_vars)
        self._build_layout()
        sizes = [self.encoders_[n].n_states for n in self.discrete_vars_]
        self.patterns_ = _model_file.check_patterns(meta["patterns"], sizes, label)
        self.history_ = pd.DataFrame(meta["history"])
        conditions = tables["conditions"]
        _model_file.check_conditions_table(
            conditions, p["condition_vars"], self.kinds_, self.condition_encoder_.stats, label)
        self.training_weights_ = conditions.pop("__weight__").to_numpy(float)
        self.training_conditions_ = conditions
        self._ranges = None
        try:
            self._check_model_size(len(conditions))
        except DataValidationError as exc:
            raise DataValidationError(f"{label} is not a valid Synthesizer model file: {exc}") from None
        self.model_ = self._new_model()
        _model_file.check_tensors(tensors, self.model_.state_dict(), label)
        self.model_.load_state_dict(tensors)
        self.model_.eval()
        return self


def _cast(values: np.ndarray, dtype: str, kind: str) -> np.ndarray | pd.Series:
    """Casts synthesized values back to the training dtype (pandas extension dtypes such as
    ``Int64``, ``boolean`` and ``string`` included)."""
    try:
        if dtype == "category":
            return pd.Categorical(values)
        if isinstance(pd.api.types.pandas_dtype(dtype), pd.api.extensions.ExtensionDtype):
            return pd.Series(values, dtype=object if kind == "categorical" else None).astype(dtype).array
        if kind == "categorical":
            return pd.Series(values, dtype=object).astype(dtype).to_numpy()
        if kind == "integer":
            return np.asarray(values).astype(dtype)
        return np.asarray(values, dtype=dtype)
    except (TypeError, ValueError):
        return values
