"""The Synthesizer's generation: conditions in, synthetic targets out, and exact log-likelihoods.

A mixin of :class:`~microplex.synthesis.Synthesizer`; the public methods ``generate``,
``sample`` and ``log_prob`` (with their documentation) call ``_generate``, ``_sample`` and
``_log_prob`` here.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import torch

from .._files import codes_hint
from .._errors import ConvergenceError, DataValidationError, ExtrapolationWarning
from .._params import check_choice, check_int, check_seed, to_python
from .._random import int_seed
from ._checks import EXTRAPOLATION_MARGIN, MAX_THREADS, holds_missing
from . import _dp_tree
from ._conditions import condition_ranges, draw_conditions
from ._structure import contradicting_mask, contradicting_rows
from ._workspace import Workspace
from ._validation import check_allocation, check_column, check_frame, check_unique_columns, missing_as_nan
from .sampling import SAMPLING, uniforms
from .transforms import CategoricalEncoder, ContinuousEncoder

__all__: list[str] = []

#: Rows per block of chunks that :meth:`_Generation._sample_chunks` encodes and decodes at once.
DECODE_ROWS = 262_144
#: Parameters of the fit that drawing and scoring read from the estimator: a ``set_params`` of one of them after
#: ``fit`` describes another model than the fitted one (and than its file, which holds ``fitted_params_``).
FITTED_PARAMS = ("target_vars", "condition_vars", "transforms", "hidden_features")
#: Rounds in which :meth:`_Generation._sample` draws again the condition rows that the structural zeros contradict,
#: when they are at most :data:`MAX_REDRAWN_SHARE` of the rows drawn.
CONDITION_REDRAWS = 20
MAX_REDRAWN_SHARE = 0.02
#: Rounds in which :meth:`_Generation._draw_chunk` draws again the records of a DP model that hold a value outside
#: its column's public bounds (:func:`_outside_public_bounds`); records still outside after the last round raise.
BOUND_REDRAWS = 50


class _Generation:
    """Drawing and scoring records with a fitted model (a Synthesizer mixin)."""

    def _check_drawable(self) -> None:
        """Fitted, with the parameters that drawing and scoring read as they were fitted."""
        self._check_fitted_params(FITTED_PARAMS)

    def _generate(self, conditions: pd.DataFrame, seed: int | None, chunk_size: int,
                  threads: int | None) -> pd.DataFrame:
        self._check_drawable()
        check_choice(self.sampling, "sampling", SAMPLING)  # acts when drawing: a set_params after fit is used
        seed = check_seed(seed, "seed")
        chunk_size = check_int(chunk_size, "chunk_size", low=1)
        threads = check_int(threads, "threads", low=1, high=MAX_THREADS, allow_none=True)
        self._check_condition_columns(conditions)
        self._check_generate_size(len(conditions), len(conditions.columns), chunk_size)
        if hasattr(self, "condition_tree_"):  # a DP condition model of several conditions: no flow was trained
            return _dp_tree.draw_conditions(self, len(conditions), seed).set_axis(conditions.index)
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
            # every draw was checked finite (or NaN in a missing state) as it was decoded (_decode)
            values = np.concatenate(pieces[name]) if pieces[name] else np.array([])
            out[name] = _cast(values, self.dtypes_[name], self.kinds_[name], self.encoders_[name])
        return out

    def _check_condition_columns(self, conditions: pd.DataFrame) -> None:
        """The condition columns of ``conditions``: present, not duplicated, their values valid (missing values
        only where training had some)."""
        cond = list(self.condition_vars)
        check_frame(conditions, cond, "conditions", allow_empty=True)
        check_unique_columns(conditions, list(self.target_vars), "conditions")
        for name in cond:  # a condition with missing values in training takes them here too
            check_column(conditions[name], name, "condition", missing=name in self.condition_encoder_.missing)

    def _check_conditions(self, conditions: pd.DataFrame) -> None:
        """Every check :meth:`generate` makes of ``conditions`` before it draws (columns, values, types, categories),
        without drawing and without its warnings (the draw itself gives them): a streamed run
        (:func:`~microplex.scale.generate_dataset`) refuses bad conditions before it writes anything."""
        self._check_drawable()
        self._check_condition_columns(conditions)
        if hasattr(self, "condition_tree_") or not len(conditions):
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExtrapolationWarning)
            self.condition_encoder_.transform(self._prepare_conditions(conditions))

    def _sample(self, n: int, seed: int | None, chunk_size: int, threads: int | None) -> pd.DataFrame:
        self._check_drawable()
        n = check_int(n, "n", low=0)
        seed = check_seed(seed, "seed")
        chunk_size = check_int(chunk_size, "chunk_size", low=1)
        self._check_generate_size(n, len(self.condition_vars), chunk_size)
        ss = np.random.SeedSequence(seed)
        cond_seed, gen_seed = ss.spawn(2)
        if hasattr(self, "condition_model_"):
            conditions = draw_conditions(self, int(n), int_seed(cond_seed), chunk_size, threads)
            conditions = self._redraw_contradicting(conditions, cond_seed, chunk_size, threads)
        elif not self.condition_vars:  # nothing to draw (the same rows as resampling empty ones)
            conditions = pd.DataFrame(index=pd.RangeIndex(int(n)))
        elif not hasattr(self, "training_conditions_"):
            raise DataValidationError(
                "This model keeps no training conditions to resample, only their ranges (an inner model of a "
                "HouseholdSynthesizer): draw with generate(conditions).")
        else:
            rng = np.random.default_rng(cond_seed)
            p = self.training_weights_ / self.training_weights_.sum()
            idx = rng.choice(len(p), size=int(n), p=p)
            conditions = self.training_conditions_.iloc[idx].reset_index(drop=True)
        return self.generate(conditions, seed=int_seed(gen_seed), chunk_size=chunk_size, threads=threads)

    def _redraw_contradicting(self, conditions: pd.DataFrame, seed: np.random.SeedSequence, chunk_size: int,
                              threads: int | None) -> pd.DataFrame:
        """Condition rows drawn by the condition model whose cells the structural zeros together contradict (a
        combination no training record holds, such as a child with an employment status: every income state is
        ruled out there), drawn again from it, up to :data:`CONDITION_REDRAWS` times: the condition model's
        distribution restricted to the combinations the rules allow. Drawn as they were, their states came from
        the head without the rules (20 of 1,155 acs12 children drawn with an income). Rows still contradicting
        after the last round are drawn as :meth:`generate` draws such given rows, with its warning.

        Only where such rows are few (at most :data:`MAX_REDRAWN_SHARE` of the draw): a condition model that has
        not learnt how its conditions go together (a few epochs) draws many, and redrawing them all moves its
        margins (acs12 at 30 epochs: 10% of the rows, children 0.196 of the draw without redraws, 0.097 with them,
        0.189 in the data); they are then drawn as they are, with :meth:`generate`'s warning."""
        rules = getattr(self, "structure_", None)
        if rules is None or not len(conditions):
            return conditions
        bad, _ = contradicting_mask(conditions, rules, self.condition_encoder_)
        if not bad.any() or bad.mean() > MAX_REDRAWN_SHARE:
            return conditions
        conditions = conditions.copy()
        for child in seed.spawn(CONDITION_REDRAWS):
            if not bad.any():
                break
            rows = conditions.index[bad]
            fresh = draw_conditions(self, len(rows), int_seed(child), chunk_size, threads).set_axis(rows)
            for name in conditions.columns:
                conditions.loc[rows, name] = fresh[name]
            bad, _ = contradicting_mask(conditions, rules, self.condition_encoder_)
        return conditions

    def _log_prob(self, data: pd.DataFrame) -> np.ndarray:
        self._check_drawable()
        if hasattr(self, "condition_tree_"):
            raise DataValidationError(
                "This is a DP condition model drawn from a tree of noisy tables (its flow is not trained): it has "
                "no density to evaluate; log_prob is available on the main model.")
        cols = list(self.target_vars) + list(self.condition_vars)
        check_frame(data, cols, "data", allow_empty=True)
        for name in cols:  # a missing value of a target the model has a missing state for is scored as that state
            check_column(data[name], name, "target" if name in self.target_vars else "condition",
                         missing=name in self.missing_vars_ or name in self.condition_encoder_.missing)
        data = missing_as_nan(data, self.missing_vars_)
        for name in [n for n, e in self.encoders_.items() if isinstance(e, ContinuousEncoder)]:
            if not pd.api.types.is_numeric_dtype(data[name].dtype):
                raise DataValidationError(
                    f"Target column {name!r} must be numeric, as in training. Got dtype {data[name].dtype} instead."
                    + codes_hint(data[name])
                )
        c = torch.as_tensor(self.condition_encoder_.transform(self._prepare_conditions(data)))
        states = self._discrete_states(data)
        lookup = {tuple(p): i for i, p in enumerate(self.patterns_.tolist())}
        pattern = np.array([lookup.get(tuple(s), -1) for s in states.tolist()], dtype=np.int64)
        seen = pattern >= 0
        for name in [n for n, e in self.encoders_.items() if isinstance(e, ContinuousEncoder)]:
            # beyond a bound (state -1): -inf, also for a target of one segment (no discrete state to look up)
            seen &= self.encoders_[name].states(data[name].to_numpy(float)) >= 0
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
        """(min, max) of every numeric condition over the training records of positive weight, those
        the model learnt from (derived from the training conditions; set by ``fit`` and saved with a
        condition model)."""
        if getattr(self, "_ranges", None) is None:
            numeric = any(self.kinds_[n] != "categorical" for n in self.condition_vars)
            self._ranges = condition_ranges(self.training_conditions_, self, self.training_weights_) if numeric else {}
        return self._ranges

    def _prepare_conditions(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame``'s condition columns, checked against their training kinds. Numeric conditions further than
        ``EXTRAPOLATION_MARGIN`` times their training range beyond it are held at that margin,
        with an :class:`ExtrapolationWarning` naming the column: the networks never saw such
        values and extrapolate them into degenerate draws (all zeros, or overflow). Rows of a
        categorical condition's category that only training records of weight 0 held get an
        :class:`ExtrapolationWarning` too (the networks never learnt from that input)."""
        for name, (count, levels) in self.condition_encoder_.weightless_rows(frame).items():
            # a category that only training records of weight 0 held: the networks never learnt from it
            # (acs12 with race 'asian' at weight 0: its draws had a zero-income share of 0.65, 0.36 for 'white')
            warnings.warn(ExtrapolationWarning(
                f"Condition column {name!r}: {count} of {len(frame)} rows hold categories that no training record "
                f"of positive weight held ({levels[:5]}); the model did not learn from them and their draws are not "
                "fitted to anything. Drop those rows, or fit with a positive weight on some of their records.",
                column=name, reason="weightless", levels=tuple(levels[:5]),
            ), stacklevel=4)
        ranges = self._condition_ranges()
        clipped = {}
        for name, (lo, hi) in ranges.items():
            dtype = frame[name].dtype
            # bool is not a number here, as in fit (a bool column is categorical): True/False read as 1/0 silently;
            # no row, no value of another type (a CSV of a header only reads as text columns)
            if len(frame) and (not pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)):
                raise DataValidationError(
                    f"Condition column {name!r} must be numeric, as in training. Got dtype {dtype} instead."
                    + codes_hint(frame[name])
                )
            x = frame[name].to_numpy(float, na_value=np.nan)  # a missing value (checked before) stays missing
            margin = EXTRAPOLATION_MARGIN * (hi - lo)
            far = (x < lo - margin) | (x > hi + margin)
            if far.any():
                warnings.warn(ExtrapolationWarning(
                    f"Condition column {name!r}: {int(far.sum())} of {len(x)} rows lie outside the training range "
                    f"[{lo:g}, {hi:g}] by more than {margin:g} ({EXTRAPOLATION_MARGIN:g} times its width); they are "
                    "treated as lying at that margin.", column=name, reason="range",
                ), stacklevel=4)
                clipped[name] = np.clip(x, lo - margin, hi + margin)
        prepared = frame[list(self.condition_vars)].assign(**clipped) if clipped else frame
        # after the numeric checks: the rules read the conditions as the encoding does
        rules = getattr(self, "structure_", None)
        if rules is not None:  # structural zeros (._structure) that together rule out every pattern
            count, cells = contradicting_rows(prepared, rules, self.condition_encoder_)
            if count:
                shown = {k: to_python(v) for k, v in cells.items()}
                warnings.warn(ExtrapolationWarning(
                    f"{count} of {len(frame)} rows hold conditions whose structural zeros together rule out every "
                    f"combination of the targets' states seen in training (e.g. {shown}; a missing value is None): "
                    "no training record holds such a combination. Their states are drawn from the model without "
                    "those rules.", column=next(iter(cells)), reason="structural",
                ), stacklevel=4)
        return prepared

    def _sample_chunks(self, conditions: pd.DataFrame, gen: torch.Generator, chunk_size: int,
                       pieces: dict[str, list[np.ndarray]]) -> None:
        """Draws the records chunk by chunk (``chunk_size`` rows per draw of the model). The
        conditions are encoded and the draws decoded per block of chunks (about
        ``DECODE_ROWS`` rows), which spreads the pandas/numpy call overhead without changing a
        value: both are row-wise, and the model's draws run per chunk in the same order."""
        workspace: Workspace = {}  # scratch arrays reused by equal-sized chunks
        block = chunk_size * max(1, DECODE_ROWS // chunk_size)
        with torch.inference_mode():
            for first in range(0, max(len(conditions), 1), block):
                part = conditions.iloc[first : first + block]
                if len(part) == 0:
                    break
                c_all = torch.as_tensor(self.condition_encoder_.transform(part))
                draws = [self._draw_chunk(c_all[start : start + chunk_size], gen, workspace)
                         for start in range(0, len(part), chunk_size)]
                pattern, u, heap, rounding = (torch.cat(parts).numpy()
                                              for parts in zip(*(d[:4] for d in draws), strict=True))
                decoded = {name: np.concatenate([d[4][name] for d in draws]) for name in draws[0][4]}
                for name, values in self._decode(pattern, u, heap, rounding, decoded).items():
                    pieces[name].append(values)

    def _draw_chunk(self, c: torch.Tensor, gen: torch.Generator, workspace: Workspace
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, np.ndarray]]:
        """One chunk's draws of the model (patterns, flow values, heap states) and, after them from the
        same generator, one uniform per record and rounded variable (:mod:`.rounding`; none without
        a rounding grid, so such models draw as before grids existed); last, the values of the targets that
        :meth:`_redraw_outside_bounds` decoded to check them against their public bounds (before rounding; empty
        for a model without public bounds), which :meth:`_decode` takes as they are."""
        stratified = self.sampling == "stratified"
        pattern, u, heap = self.model_.sample(c, gen, stratified=stratified, workspace=workspace)
        pattern, u, heap, decoded = self._redraw_outside_bounds(c, gen, stratified, pattern, u, heap)
        if not self.rounded_vars_:
            return pattern, u, heap, torch.zeros(c.shape[0], 0, dtype=torch.float64), decoded
        rounding = uniforms(c.shape[0], len(self.rounded_vars_), gen, stratified=stratified, dtype=torch.float64)
        return pattern, u, heap, rounding, decoded

    def _redraw_outside_bounds(self, c: torch.Tensor, gen: torch.Generator, stratified: bool, pattern: torch.Tensor,
                               u: torch.Tensor, heap: torch.Tensor
                               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, np.ndarray]]:
        """A DP model's draws (``pattern``, ``u``, ``heap`` at conditions ``c``) whose records hold a value outside
        a column's public bounds drawn again from the model at their conditions, up to :data:`BOUND_REDRAWS` rounds:
        the model's distribution truncated to the public bounds (post-processing: no budget). The encoder's logit
        runs between the bounds widened by a margin (1e-4 of their width), and the flow's tails reach into it
        (with ``standardize="moments"`` 2.2% of the draws of a percentage whose training values all lie above
        21); clipped to the bound, they made a point mass there that the data never had (2.2% of the draws
        exactly at 0). Other models' draws as they are.

        Raises
        ------
        ConvergenceError
            When records still hold a value outside the bounds after the last round: the model puts most of
            its mass outside them (an edited model file or a diverged fit).
        """
        if getattr(self, "epsilon", None) is None or not getattr(self, "public_bounds", None):
            return pattern, u, heap, {}
        decoded = _bounded_values(self, pattern.numpy(), u.numpy(), heap.numpy())
        outside = _outside(self, decoded, len(pattern))
        first = outside.mean()
        for _ in range(BOUND_REDRAWS):
            rows = np.flatnonzero(outside)
            if not len(rows):
                return pattern, u, heap, decoded
            at = torch.as_tensor(rows)
            p, v, h = self.model_.sample(c[at], gen, stratified=stratified)  # no workspace: the chunk's draws stay
            pattern[at], u[at], heap[at] = p, v.to(u.dtype), h
            fresh = _bounded_values(self, p.numpy(), u[at].numpy(), h.numpy())
            for name, values in fresh.items():
                decoded[name][rows] = values
            outside[rows] = _outside(self, fresh, len(rows))
        if not outside.any():
            return pattern, u, heap, decoded
        name = next(iter(_outside(self, decoded, len(pattern), by_name=True)))
        raise ConvergenceError(
            f"The model drew {first:.1%} of its records with a value outside the public bounds "
            f"{tuple(self.public_bounds[name])} of target {name!r}, and {int(outside.sum())} still outside after "
            f"{BOUND_REDRAWS} redraws: it puts most of its mass outside the bounds (an edited or damaged model file, "
            "or a diverged fit); fit the model again.")

    def _decode(self, pattern: np.ndarray, u: np.ndarray, heap: np.ndarray, rounding: np.ndarray | None = None,
                decoded: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """Each target's values from the draws (``pattern``, ``u``, ``heap``, the ``rounding`` uniforms).
        ``decoded``: values the bound check already decoded from these draws (:func:`_bounded_values`, before
        rounding), taken as they are for a target without a rounding uniform (decoded once, not twice)."""
        decoded = decoded or {}
        states = self.patterns_[pattern]
        out = {}
        for name in self.target_vars:
            enc = self.encoders_[name]
            state, h = _state_and_heap(self, name, states, heap)
            if isinstance(enc, CategoricalEncoder):
                out[name] = enc.decode(state)
            else:
                cont = u[:, self.continuous_vars_.index(name)] if enc.has_continuous else np.zeros(len(pattern))
                r = rounding[:, self.rounded_vars_.index(name)] if rounding is not None and name in self.rounded_vars_ \
                    else None
                with np.errstate(over="ignore", invalid="ignore"):
                    x = decoded[name] if name in decoded and r is None else enc.decode(cont.astype(float), state, h, r)
                    out[name] = _held_to_public_bounds(self, name, x)
                drawn = out[name] if enc.missing_state is None else out[name][state != enc.missing_state]
                bad = int((~np.isfinite(drawn)).sum())
                if bad:  # a fitted model's encoders map every draw to a finite value (or NaN, a missing state)
                    raise ConvergenceError(
                        f"The model drew {bad} non-finite value(s) of target {name!r}: its encoder (from an edited "
                        "or damaged model file) or its network (a diverged fit) is broken; fit the model again.")
        return out



def _dtype_limits(dtype: str) -> tuple[float, float] | None:
    """Smallest and largest float64 values that a numeric ``dtype`` (numpy, or a pandas nullable
    ``Int8`` ... ``UInt64``, ``Float32``) holds; ``None`` for other dtypes and for float64.

    Examples
    --------
    >>> _dtype_limits("uint8"), _dtype_limits("Int8"), _dtype_limits("float64")
    ((0.0, 255.0), (-128.0, 127.0), None)
    >>> _dtype_limits("int64")[1] < 2.0 ** 63   # 2**63 itself would overflow the cast
    True
    """
    try:
        numpy_dtype = np.dtype(getattr(pd.api.types.pandas_dtype(dtype), "numpy_dtype", dtype))
    except TypeError:
        return None
    if numpy_dtype.kind in "iu":
        info = np.iinfo(numpy_dtype)
    elif numpy_dtype.kind == "f" and numpy_dtype.itemsize < 8:
        info = np.finfo(numpy_dtype)
    else:
        return None
    # float(2**63 - 1) rounds up to 2**63, which no longer fits: step back to the largest float inside
    lo, hi = float(info.min), float(info.max)
    return (lo if int(lo) >= int(info.min) else float(np.nextafter(lo, 0.0)),
            hi if int(hi) <= int(info.max) else float(np.nextafter(hi, 0.0)))


def _public_range(synth: object, name: str) -> tuple[float, float] | None:
    """The public bounds ``[lo, hi]`` of a DP model's (``epsilon`` set) numeric column ``name``
    (``[ceil(lo), floor(hi)]`` for an integer column, as the fit clips the data); ``None`` for other models
    and columns without bounds."""
    bounds = (getattr(synth, "public_bounds", None) or {}).get(name)
    if getattr(synth, "epsilon", None) is None or bounds is None:
        return None
    lo, hi = float(bounds[0]), float(bounds[1])
    if synth.kinds_.get(name) == "integer" or pd.api.types.is_integer_dtype(pd.api.types.pandas_dtype(
            synth.dtypes_.get(name, "float64"))):
        lo, hi = float(np.ceil(lo)), float(np.floor(hi))
    return lo, hi


def _state_and_heap(synth: object, name: str, states: np.ndarray,
                    heap: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Target ``name``'s discrete state per record (from the drawn patterns' ``states``; 0 for a target without
    discrete states) and its heap index (``None`` for a target without heaps), as its encoder decodes them."""
    state = (states[:, synth.discrete_vars_.index(name)] if name in synth.discrete_vars_
             else np.zeros(len(states), dtype=np.int64))
    return state, (heap[:, synth.heap_vars_.index(name)] if name in synth.heap_vars_ else None)


def _bounded_values(synth: object, pattern: np.ndarray, u: np.ndarray, heap: np.ndarray) -> dict[str, np.ndarray]:
    """The values of a DP model's draws (``pattern``, ``u``, ``heap``) of each numeric target with public bounds
    (:func:`_public_range`) and a continuous part, decoded by its encoder (before rounding and before being held
    to the bounds); empty for other models."""
    states = synth.patterns_[pattern]
    values = {}
    for name in synth.target_vars:
        enc = synth.encoders_[name]
        if _public_range(synth, name) is None or not isinstance(enc, ContinuousEncoder) or not enc.has_continuous:
            continue
        state, h = _state_and_heap(synth, name, states, heap)
        with np.errstate(over="ignore", invalid="ignore"):
            values[name] = enc.decode(u[:, synth.continuous_vars_.index(name)].astype(float), state, h)
    return values


def _outside(synth: object, values: dict[str, np.ndarray], n: int,
             by_name: bool = False) -> np.ndarray | dict[str, np.ndarray]:
    """Which of ``n`` records hold a value outside its target's public bounds (:func:`_public_range`), given the
    values :func:`_bounded_values` decoded; ``by_name``: the mask of each target that has such records. Missing
    values are inside."""
    outside, named = np.zeros(n, dtype=bool), {}
    for name, x in values.items():
        lo, hi = _public_range(synth, name)
        out = (x < lo) | (x > hi)
        if out.any():
            named[name] = out
            outside |= out
    return named if by_name else outside


def _outside_public_bounds(synth: object, pattern: np.ndarray, u: np.ndarray, heap: np.ndarray) -> np.ndarray:
    """Which records of a DP model's draws (``pattern``, ``u``, ``heap``) hold a value outside a numeric
    target's public bounds (:func:`_public_range`), as decoded. Missing values are inside."""
    return _outside(synth, _bounded_values(synth, pattern, u, heap), len(pattern))


def _held_to_public_bounds(synth: object, name: str, values: np.ndarray) -> np.ndarray:
    """A DP model's (``epsilon`` set) draws ``values`` of numeric column ``name`` held to its public bounds
    ``[lo, hi]`` (:func:`_public_range`; missing values kept); other models' draws as they are. The encoder's
    logit runs between the bounds widened by a margin (1e-4 of their width: finite at the bounds), and its
    decode holds draws inside the widened interval only. The flow's records with a value in the margin are
    drawn again (:meth:`_Generation._redraw_outside_bounds`: clipped, they made a point mass at the bound),
    so this holds to the bounds the condition tree's draws, whose logit round trip can miss a bound by a few
    ulps. Post-processing: it spends no budget.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> m = SimpleNamespace(epsilon=1.0, public_bounds={"pct": (0.0, 100.0)}, kinds_={"pct": "continuous"},
    ...                     dtypes_={"pct": "float64"})
    >>> _held_to_public_bounds(m, "pct", np.array([-0.0065, 50.0, 100.006, np.nan])).tolist()
    [0.0, 50.0, 100.0, nan]
    """
    bounds = _public_range(synth, name)
    return values if bounds is None else np.clip(values, *bounds)


def _cast(values: np.ndarray, dtype: str, kind: str, encoder: object = None) -> np.ndarray | pd.Series:
    """Casts synthesized values back to the training dtype (pandas extension dtypes such as
    ``Int64``, ``boolean`` and ``string`` included). A ``category`` column gets the training column's categories
    (``encoder.pandas_dtype``: its dtype's, unused ones included, in their order, and ordered when the training
    column was; the categories seen, sorted, for a model file written before), not only those drawn: every draw
    has the same dtype, so draws combine (before, a redraw of some rows, or a concat of two samples, failed or
    became object). A numeric draw beyond what its dtype holds (a tail draw below -128 of an ``int8`` target,
    beyond 2**63 of an ``int64`` one, beyond 3.4e38 of a ``float32`` one) is held at the dtype's limit: the cast
    wrapped it around (-998 became 26 in ``int8``), made it inf, or left a nullable ``Int8`` column float64.
    Draws for an integer dtype are rounded (those of a column declared ``kind="continuous"`` were truncated
    toward 0, 3.9 to 3, which pulled the mean half a unit toward 0). A missing value (a target's missing state) for
    a dtype that holds none (:func:`~._checks.holds_missing`: ``int64``, ``bool``) raises DataValidationError: the
    cast made it -9223372036854775808 or True (a model file's dtype edited; load refuses such a file)."""
    if not holds_missing(dtype) and pd.isna(values).any():
        raise DataValidationError(
            f"Target {getattr(encoder, 'name', '?')!r} drew a missing value, which its dtype {dtype!r} cannot hold: "
            "the model pairs a missing state with a dtype without missing values (an edited or damaged model file).")
    limits = _dtype_limits(dtype) if kind != "categorical" else None
    if limits is not None:
        values = np.clip(np.asarray(values, dtype=float), *limits)
        if pd.api.types.is_integer_dtype(pd.api.types.pandas_dtype(dtype)):
            values = np.round(values)
    try:
        if dtype == "category":
            categorical = encoder.pandas_dtype if isinstance(encoder, CategoricalEncoder) else None
            return pd.Categorical(values, dtype=categorical)
        if isinstance(pd.api.types.pandas_dtype(dtype), pd.api.extensions.ExtensionDtype):
            return pd.Series(values, dtype=object if kind == "categorical" else None).astype(dtype).array
        if kind == "categorical":
            return pd.Series(values, dtype=object).astype(dtype).to_numpy()
        if kind == "integer":
            return np.asarray(values).astype(dtype)
        return np.asarray(values, dtype=dtype)
    except (TypeError, ValueError):
        return values
