"""The :class:`Synthesizer` estimator: fit P(targets | conditions) on weighted survey records."""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from .._errors import DataValidationError, NotFittedError
from .._random import int_seed
from ._validation import check_frame, check_weights
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
        self._check_params()
        targets, conditions = list(self.target_vars), list(self.condition_vars)
        check_frame(data, targets + conditions + ([weight_col] if weight_col else []), "data")
        w = check_weights(data, weight_col)
        schema = dict(self.schema or {})
        unknown = sorted(set(schema) - set(targets) - set(conditions))
        if unknown:
            raise DataValidationError(f"schema names columns that are neither targets nor conditions: {unknown}.")
        for name in targets + conditions:
            role = "target" if name in targets else "condition"
            _check_values(data[name], name, role)
            if data[name].nunique() < 2:
                raise DataValidationError(
                    f"{role.capitalize()} column {name!r} is constant ({data[name].iloc[0]!r}); "
                    "drop it or give it at least two distinct values."
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
        states = self._discrete_states(data)
        self.patterns_ = self._pattern_table(states)
        lookup = {tuple(p): i for i, p in enumerate(self.patterns_.tolist())}
        pattern = np.array([lookup[tuple(s)] for s in states.tolist()], dtype=np.int64)
        heap = self._heap_states(data)
        self.training_conditions_ = data[conditions].reset_index(drop=True).copy()
        self.training_weights_ = w.copy()

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.model_ = self._new_model()
            self._train(data, c, pattern, heap, w, rng, epochs or self.epochs, seed)
        return self

    def _check_params(self) -> None:
        if isinstance(self.target_vars, str) or not len(self.target_vars):
            raise DataValidationError(
                f"The 'target_vars' parameter must be a non-empty list of column names. Got {self.target_vars!r}."
            )
        if isinstance(self.condition_vars, str):
            raise DataValidationError(
                f"The 'condition_vars' parameter must be a list of column names. Got {self.condition_vars!r}."
            )
        overlap = sorted(set(self.target_vars) & set(self.condition_vars))
        if overlap:
            raise DataValidationError(f"Columns cannot be both targets and conditions: {overlap}.")
        if self.flow not in ("maf", "nsf"):
            raise DataValidationError(f"The 'flow' parameter must be 'maf' or 'nsf'. Got {self.flow!r} instead.")
        if not 0 <= self.validation_fraction < 0.5:
            raise DataValidationError(
                f"The 'validation_fraction' parameter must be in [0, 0.5). Got {self.validation_fraction!r} instead."
            )
        if not 0 <= self.heap_threshold < 1:
            raise DataValidationError(
                f"The 'heap_threshold' parameter must be in [0, 1). Got {self.heap_threshold!r} instead."
            )
        if int(self.max_heaps) < 0 or int(self.min_heap_count) < 1:
            raise DataValidationError(
                "The 'max_heaps' parameter must be >= 0 and 'min_heap_count' >= 1. "
                f"Got {self.max_heaps!r} and {self.min_heap_count!r} instead."
            )
        for name in ("epochs", "batch_size", "transforms"):
            if int(getattr(self, name)) < 1:
                raise DataValidationError(f"The {name!r} parameter must be >= 1. Got {getattr(self, name)!r} instead.")

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
                loss = -(wb * model.log_prob(c_t[b], p_t[b], u_t[b], h_t[b])).sum() / wb.sum()
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += loss.item() * float(wb.sum())
                weight += float(wb.sum())
            train_loss = total / weight
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
        """
        self._check_is_fitted()
        cond = list(self.condition_vars)
        check_frame(conditions, cond, "conditions", allow_empty=True)
        for name in cond:
            _check_values(conditions[name], name, "condition")
        gen = torch.Generator().manual_seed(int_seed(np.random.SeedSequence(seed)))
        out = conditions.copy()
        pieces: dict[str, list[np.ndarray]] = {n: [] for n in self.target_vars}
        previous = torch.get_num_threads()
        if threads is not None:
            torch.set_num_threads(int(threads))
        try:
            self._sample_chunks(conditions, gen, chunk_size, pieces)
        finally:
            torch.set_num_threads(previous)
        for name in self.target_vars:
            values = np.concatenate(pieces[name]) if pieces[name] else np.array([])
            out[name] = _cast(values, self.dtypes_[name], self.kinds_[name])
        return out

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

    def sample(self, n: int, seed: int | None = None) -> pd.DataFrame:
        """Synthesizes ``n`` records with conditions resampled from the weighted training conditions.

        Returns
        -------
        DataFrame
            ``n`` rows with the condition and target columns.
        """
        self._check_is_fitted()
        if int(n) < 0:
            raise DataValidationError(f"The 'n' parameter must be >= 0. Got {n!r} instead.")
        ss = np.random.SeedSequence(seed)
        cond_seed, gen_seed = ss.spawn(2)
        rng = np.random.default_rng(cond_seed)
        p = self.training_weights_ / self.training_weights_.sum()
        idx = rng.choice(len(p), size=int(n), p=p)
        conditions = self.training_conditions_.iloc[idx].reset_index(drop=True)
        return self.generate(conditions, seed=int_seed(gen_seed))

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
            _check_values(data[name], name, "target" if name in self.target_vars else "condition")
        c = torch.as_tensor(self.condition_encoder_.transform(data))
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
        """Saves the fitted model to ``path`` (zip of JSON, safetensors and Parquet; no pickle)."""
        self._check_is_fitted()
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
    def load(cls, path: str | os.PathLike) -> Synthesizer:
        """Loads a model saved by :meth:`save`."""
        meta, tensors, tables = read_archive(path, _FORMAT)
        params = dict(meta["params"])
        params["schema"] = {k: VariableSpec.from_dict(v) for k, v in params["schema"].items()} or None
        if params["hidden_features"] is not None:
            params["hidden_features"] = tuple(params["hidden_features"])
        self = cls(**params)
        self.kinds_, self.dtypes_ = meta["kinds"], meta["dtypes"]
        types = {"ContinuousEncoder": ContinuousEncoder, "CategoricalEncoder": CategoricalEncoder}
        self.encoders_ = {n: types[meta["encoder_types"][n]].from_dict(d) for n, d in meta["encoders"].items()}
        self.condition_encoder_ = ConditionEncoder.from_dict(meta["condition_encoder"])
        self.n_features_in_ = len(self.condition_vars)
        self._build_layout()
        self.patterns_ = np.asarray(meta["patterns"], dtype=np.int64).reshape(-1, len(self.discrete_vars_))
        self.history_ = pd.DataFrame(meta["history"])
        conditions = tables["conditions"]
        self.training_weights_ = conditions.pop("__weight__").to_numpy(float)
        self.training_conditions_ = conditions
        self.model_ = self._new_model()
        self.model_.load_state_dict(tensors)
        self.model_.eval()
        return self


def _check_values(series: pd.Series, name: str, role: str) -> None:
    """Rejects NaN/inf values and constant columns, naming the column."""
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
        values = series.to_numpy(float)
        bad = ~np.isfinite(values)
    else:
        bad = series.isna().to_numpy()
    if bad.any():
        raise DataValidationError(
            f"{role.capitalize()} column {name!r} has {int(bad.sum())} missing or infinite values; "
            "microplex does not model missing values: drop or impute those rows first."
        )


def _cast(values: np.ndarray, dtype: str, kind: str) -> np.ndarray | pd.Series:
    """Casts synthesized values back to the training dtype."""
    try:
        if kind == "categorical":
            return pd.Series(values, dtype=object).astype(dtype).to_numpy() if dtype != "category" else pd.Categorical(values)
        if kind == "integer":
            return np.asarray(values).astype(dtype)
        return np.asarray(values, dtype=dtype)
    except (TypeError, ValueError):
        return values
