"""The Synthesizer's layout: discrete variables, pattern table, heap layout, network, size checks.

A mixin of :class:`~microplex.synthesis.Synthesizer` (its fitted encoders define the layout); it
holds no state of its own.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from .._errors import DataValidationError
from ._checks import _FLOAT32_MAX, DECODE_PROBE, overflow_message
from ._dp_plan import dp_batch_size, head_features
from ._schedule import BATCH_SIZE
from ._validation import check_allocation
from .model import PointMassFlow
from .transforms import CategoricalEncoder, ContinuousEncoder

__all__: list[str] = []

_MAX_PATTERNS = 1024


class _Layout:
    """Layout of the fitted encoders and the network built on it (a Synthesizer mixin)."""

    def _check_encoded(self, data: pd.DataFrame, c: np.ndarray) -> None:
        """Refuses columns whose standardized training values overflow (float32 for the networks),
        naming them, instead of letting an infinite statistic silently zero a column."""
        for name in self.condition_vars:
            if self.kinds_[name] != "categorical":
                mean, std = self.condition_encoder_.stats[name]
                x = data[name].to_numpy(float, na_value=np.nan)
                z = (x[~np.isnan(x)] - mean) / std  # its missing values are an indicator column
                if not np.isfinite(z).all() or np.abs(z).max() > _FLOAT32_MAX:
                    raise DataValidationError(overflow_message("Condition", name, data[name]))
        if not np.isfinite(c).all():  # pragma: no cover - caught per column above
            raise DataValidationError("The condition features are not finite.")
        for name in self.continuous_vars_:
            enc = self.encoders_[name]
            fields = [v for seg in enc.segments for v in seg.to_dict().values() if isinstance(v, float)]
            u = enc.encode(data[name].to_numpy(float))[1]
            with np.errstate(over="ignore", invalid="ignore"):  # a segment that decodes inf beyond the training range
                decoded = np.concatenate([np.ravel(seg.decode(DECODE_PROBE)) for seg in enc.segments])
            if (not np.isfinite(fields).all() or not np.isfinite(u).all() or np.abs(u).max() > _FLOAT32_MAX
                    or not np.isfinite(decoded).all()):  # drew inf (and saved a file its loader refuses)
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
        params = mlp([context, *self._head_features(), n_patterns]) if n_patterns > 1 else 0.0
        if n_cont:
            params += int(self.transforms) * mlp([n_cont + context + onehot, *hidden, n_cont * per_dim])
        if self.batch_size is not None:
            batch = min(int(self.batch_size), n_records)
        else:
            batch = dp_batch_size(n_records) if self.epsilon is not None else min(BATCH_SIZE, n_records)
        activations = 3.0 * batch * (sum(hidden) + n_cont * per_dim) * (int(self.transforms) + 1)
        check_allocation(4.0 * (6 * params + activations), "The Synthesizer's networks and optimizer state",
                         "Use smaller 'hidden_features', 'transforms' or 'batch_size'.")

    def _build_layout(self) -> None:
        """Discrete variables (targets with point masses, categorical targets) and continuous dims."""
        self.discrete_vars_ = [n for n, e in self.encoders_.items() if e.n_states > 1 or isinstance(e, CategoricalEncoder)]
        self.continuous_vars_ = [
            n for n, e in self.encoders_.items() if isinstance(e, ContinuousEncoder) and e.has_continuous
        ]
        self.heap_vars_ = [n for n in self.continuous_vars_ if self.encoders_[n].heaps]
        continuous = {n: e for n, e in self.encoders_.items() if isinstance(e, ContinuousEncoder)}
        self.point_masses_ = {n: tuple(e.point_masses) for n, e in continuous.items()}
        self.missing_vars_ = [n for n, e in self.encoders_.items() if e.missing]  # missing values: a state of their own
        self.heaps_ = {n: tuple(e.heaps) for n, e in continuous.items()}
        self.rounded_vars_ = [n for n in self.continuous_vars_ if self.encoders_[n].rounding is not None]
        self.rounding_ = {n: self.encoders_[n].rounding.to_dict() for n in self.rounded_vars_}

    def _heap_states(self, data: pd.DataFrame) -> np.ndarray:
        """Heap index of every heaped variable (0: none), shape (N, H)."""
        cols = [self.encoders_[n].heap_index(data[n].to_numpy(float)) for n in self.heap_vars_]
        return np.stack(cols, axis=1) if cols else np.zeros((len(data), 0), dtype=np.int64)

    def _heap_allowed(self, pattern: np.ndarray, heap: np.ndarray) -> np.ndarray:
        """Whether each record's heap states (N, H) are ones its pattern (N,) allows, shape (N,)."""
        ok = np.ones(len(pattern), dtype=bool)
        for i, (_, _, allowed) in enumerate(self._heap_layout()):
            ok &= allowed.numpy()[pattern, heap[:, i]]
        return ok

    def _heap_layout(self) -> list[tuple[int, torch.Tensor, torch.Tensor]]:
        """(flow coordinate, encoded heap values, heap states allowed per pattern) per heaped variable."""
        out = []
        for name in self.heap_vars_:
            enc = self.encoders_[name]
            allowed = np.ones((len(self.patterns_), len(enc.heaps) + 1), dtype=bool)
            k = len(enc.point_masses)
            if name in self.discrete_vars_:
                state = self.patterns_[:, self.discrete_vars_.index(name)]
                allowed[:, 1:] = state[:, None] == np.asarray(enc.heap_states)[None, :]
            else:  # one state: the variable's only segment
                state = np.full(len(self.patterns_), k)
            # no flow value in a segment whose every training value sits on a heap (_Segment.free)
            heaps_only = np.asarray([k + i for i, seg in enumerate(enc.segments) if not seg.free], dtype=np.int64)
            allowed[:, 0] &= ~np.isin(state, heaps_only)
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

    def _pattern_table(self, states: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """Every combination of the discrete variables' states when there are at most
        ``_MAX_PATTERNS`` (so unseen combinations keep a small probability), else the
        combinations observed in training; shape (P, M).

        With ``weights``, a state that no record of positive weight holds is left out: such a category or
        point mass (held by records of weight 0 only, or a declared point mass no record holds) is not in the
        weighted population, so it is never drawn (as a state of the table it was: a conditional pattern head
        starts from uniform logits, and such a category came out at 32% of the draws after 5 epochs, 0.14% after
        155; a declared point mass of no record at 28% after 2 epochs, 0.05% after 220). Without ``weights`` (a DP
        fit, whose table may not depend on the data) every state stays.
        """
        sizes = [self.encoders_[n].n_states for n in self.discrete_vars_]
        if not sizes:
            return np.zeros((1, 0), dtype=np.int64)
        held = states if weights is None else states[np.asarray(weights) > 0]
        values = [np.arange(s) if weights is None else np.unique(held[:, m]) for m, s in enumerate(sizes)]
        if int(np.prod([len(v) for v in values], dtype=float)) <= _MAX_PATTERNS:
            grids = np.meshgrid(*values, indexing="ij")
            return np.stack([g.reshape(-1) for g in grids], axis=1).astype(np.int64).reshape(-1, len(sizes))
        return np.unique(held, axis=0)

    def _active(self) -> np.ndarray:
        """Whether each continuous dim is in its continuous state under each pattern, (P, D)."""
        active = np.ones((len(self.patterns_), len(self.continuous_vars_)), dtype=bool)
        for j, name in enumerate(self.continuous_vars_):
            if name in self.discrete_vars_:
                m = self.discrete_vars_.index(name)
                active[:, j] = np.isin(self.patterns_[:, m], self.encoders_[name].continuous_states)
        return active

    def _new_model(self, older_dp_layout: bool = False) -> PointMassFlow:
        """The networks of the fitted layout; ``older_dp_layout``: those of a DP file written
        before session 30 (a pattern head as wide as the flow's networks, no base scale). In float32 whatever
        torch's default dtype (a model loaded after ``torch.set_default_dtype(torch.float64)``)."""
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
            head_features=self._hidden_features() if older_dp_layout else self._head_features(),
            base_scale=self.epsilon is not None and not older_dp_layout,
            rules=getattr(self, "structure_", None),
        ).float()

    def _hidden_features(self) -> tuple[int, ...]:
        if self.hidden_features is not None:
            return tuple(int(h) for h in self.hidden_features)
        width = min(128, 32 * -(-len(self.target_vars) // 3))
        return (width, width)

    def _head_features(self) -> tuple[int, ...]:
        """The pattern head's hidden layers: the flow's, at most ``DP_HEAD_WIDTH`` wide with
        ``epsilon`` set (:func:`._dp_plan.head_features`)."""
        hidden = self._hidden_features()
        return hidden if self.epsilon is None else head_features(hidden)

    def _encode_continuous(self, data: pd.DataFrame, rng: np.random.Generator | None) -> np.ndarray:
        cols = [self.encoders_[n].encode(data[n].to_numpy(float), rng)[1] for n in self.continuous_vars_]
        return np.stack(cols, axis=1) if cols else np.zeros((len(data), 0))
