"""The :class:`Synthesizer` estimator: fit P(targets | conditions) on weighted survey records.

The class lives in small modules: the layout of the encoders and the network (:mod:`._layout`),
the training loop (:mod:`._training`), generation and log-likelihoods (:mod:`._generation`) and the
fitted state as plain data (:mod:`._state`, used by :meth:`Synthesizer.save` and
:meth:`Synthesizer.load`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, BinaryIO

import numpy as np
import pandas as pd
import torch

from .._estimator import Estimator
from . import _dp
from ._checks import check_synthesizer_params
from ._fitting import _Fitting
from ._generation import _Generation
from ._layout import _Layout
from ._state import FORMAT, State, export_state, restore_state
from ._training import _Training, torch_fit_mode
from .schema import VariableSpec
from .serialization import check_save_path, read_archive, write_archive

__all__ = ["Synthesizer"]


class Synthesizer(_Fitting, _Layout, _Training, _Generation, Estimator):
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
        benchmarks, fit as well as wider ones. With ``epsilon`` the pattern network's layers are
        at most 32 wide (DP-SGD's noise on a pattern's logits grows with that width).
    bins : int, default=8
        Spline bins (``flow="nsf"``).
    schema : mapping of str to VariableSpec, default=None
        Overrides of inferred kinds, point masses and transforms, per column.
    point_mass_threshold : float, default=0.01
        A value carrying at least this share of the weight, held by at least ``min_heap_count``
        records of positive weight, is a point mass (continuous targets; 0 whenever present).
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
        Fewest training records a heap must hold, so a heap state never identifies a record;
        also the fewest a detected point mass other than 0 must hold (a value of a few heavy
        records is neither a population's point mass nor a value the model file should keep), and
        the fewest a decimal level of a magnitude must hold to be kept (``rounding``).
    rounding : bool or None, default=None
        Round numbers (see :mod:`microplex.synthesis.rounding`). ``True``: :meth:`fit` learns,
        per continuous or integer target and per magnitude (``floor(log10 |x|)``; and per sign, for a
        target with values on both sides of 0), the shares of
        the values the flow models (off point masses and heaps) that are multiples of 10, 100,
        1,000, ... (or whole numbers, whole cents), and :meth:`generate` moves each flow value to
        a level drawn from those shares: incomes reported in thousands come out in thousands,
        integers stored as floats come out whole, values computed to full precision stay as the
        flow draws them. ``False``: the flow's values as drawn. ``None``: ``True`` without
        ``epsilon``, ``False`` with it (the shares are statistics of the data that no DP
        mechanism covers; ``rounding=True`` with ``epsilon`` raises). :meth:`log_prob` scores
        the flow's density, before rounding.
    structural_zeros : bool or None, default=None
        Structural zeros (see :mod:`microplex.synthesis._structure`). ``True``: a target's
        state (a point mass such as 0, a missing value, a category) that no training record of
        a condition's category (or of the records missing a condition) holds, although its
        overall share expects at least 5 records there, is never drawn for that category:
        the unemployed get no commute time, the employed always get hours. ``False``: the
        pattern head's probabilities as learnt (small, not 0). ``None``: ``True`` without
        ``epsilon``, ``False`` with it (``True`` with ``epsilon`` raises).
    epochs : int or "auto", default="auto"
        Training epochs. ``"auto"`` chooses them from the number of training records (about 160
        on 1,300, 60 on 10,000, 40 on 20,000; see :mod:`microplex.synthesis._schedule`), or
        at most 200 when ``patience`` is set. With ``epsilon``: 20.
    batch_size : int or None, default=None
        ``None``: 512; with ``epsilon``, the power of two nearest an eighth of the records on a
        log scale (at least 256, at most the number of records; DP-SGD's noise averages down over
        larger batches).
    learning_rate : float or None, default=None
        ``None``: 2e-3; with ``epsilon``, 3e-2. With ``epsilon`` the pattern head trains at 2/3 of
        the learning rate (explicit or not).
    weight_decay : float, default=0.0
        Adam's L2 penalty on the network weights, in [0, 1e6].
    validation_fraction : float, default=0.1
        Share of the records of positive weight held out to guard against over-fitting (drawn
        among them: records of weight 0 count in neither loss). Training runs all ``epochs``
        and the learning rate decays to 0 along a cosine, so the weights settle at an optimum
        instead of a noisy Adam step; the flow keeps its state with the best validation loss (a
        small data set does not over-fit: synthetic records drifting towards training records),
        the pattern and heap heads their final state unless their best one is significantly
        better on the validation split. With 0, every record trains and the final state is kept.
    patience : int or None, default=None
        With an int (and a validation split), the earlier schedule: the learning rate halves
        when the validation loss stalls and training stops after ``patience`` epochs without
        improvement.
    verbose : bool, default=True
        Show a progress bar while fitting.
    condition_model : bool or None, default=None
        Fully synthetic mode. ``False``: :meth:`sample` resamples real training condition rows
        (the estimator and its model file keep them). ``True``: :meth:`fit` also fits an
        unconditional model of the condition columns (a second Synthesizer with this one's
        settings: categorical heads for categories, point masses and the flow for numbers),
        :meth:`sample` draws the conditions from it, and neither the estimator nor its file keeps
        any training row or weight. Without ``epsilon`` this is not differential privacy.
        ``None``: ``True`` when ``epsilon`` is set and there are conditions (the only setting a DP
        fit with conditions accepts), ``False`` otherwise.
    sampling : {"stratified", "independent"}, default="stratified"
        How :meth:`generate` draws the records of a chunk (``chunk_size`` records).
        ``"stratified"``: Latin-hypercube uniforms and normals across the chunk's records, so a
        chunk's shares of zeros, heaps and categories and its marginal distributions carry less
        Monte Carlo noise than independent draws; each record is still an exact draw from
        the model (see :mod:`microplex.synthesis.sampling`). ``"independent"``: independent draws
        (the only mode of model files written before this parameter, which load with it).
    standardize : {"quantile", "moments"}, default="quantile"
        How each continuous segment's transformed values become the flow's coordinates.
        ``"quantile"``: a piecewise-linear map of their weighted quantiles to normal scores
        (at most 128 knots, about 20 records per knot; :mod:`microplex.synthesis._quantile_map`),
        so a skewed or peaked marginal is Gaussian before the flow sees it and the flow's affine
        layers only model the dependence. It fits the real surveys measured much better (the
        benchmark's pMSE and worst KS), but where the conditions split a variable into groups of
        clearly different location, the pooled marginal is a mixture, each group is skewed in the
        flow's coordinates and small groups' tails come out wider. ``"moments"``: weighted mean
        and standard deviation (the only mode of model files written before this parameter, which
        load with it). DP fits (``epsilon``) take the knots (``"quantile"``) or the moments from the
        noisy histogram of their statistics release (no further budget).
    epsilon, delta : float or None, default=None
        Differential privacy: with ``epsilon`` (> 0) and ``delta`` (in (0, 1)) the whole fit is
        (epsilon, delta)-DP for adding or removing one record (DP-SGD with an RDP accountant;
        see the Privacy guide and :mod:`microplex.synthesis._dp`). Needs public metadata for every
        column, no ``patience``, and a condition model when there are conditions (the default
        ``condition_model=None`` fits one). Heaps and
        the validation split are off; ``history_`` holds no losses.
    max_grad_norm : float or None, default=None
        DP-SGD clipping norm of each record's gradient (per part: head and flow each get
        ``max_grad_norm / sqrt(2)``); ``None``: 30 over the training's noise multiplier, within
        [5, 15] (5 at small budgets). Small norms bias the model towards the commonest point-mass
        pattern and the bulk; the Privacy guide shows the trade-off.
    public_bounds : mapping of str to (float, float), default=None
        Public (low, high) of every numeric column, and of the weight column (weights are then
        divided by its high); values outside are clipped, with a PrivacyWarning.
    public_categories : mapping of str to sequence, default=None
        Public categories of every categorical column (a value outside raises).
    budget_split : mapping of str to float, default=None
        Shares of the budget for ``"statistics"``, ``"training"`` and (``condition_model=True``)
        ``"conditions"``; ``None``: 0.2 / 0.8, or 0.2 / 0.5 / 0.3. With a condition model the
        shares are then scaled up together until the RDP composition of every mechanism spends
        the whole ``epsilon`` (``privacy_["mechanisms"]`` lists each one's noise).

    Attributes
    ----------
    kinds_ : dict of str to str
        Modelling kind of every target and condition.
    point_masses_ : dict of str to tuple of float
        Point masses of every continuous or integer target.
    heaps_ : dict of str to tuple of float
        Heaps of every continuous or integer target (empty when it has none).
    missing_vars_ : list of str
        The targets with missing values in training: their missing values are a state of their
        own, drawn as the column's missing value (docs/synthesis.md, "Missing values").
    structural_zeros_ : DataFrame
        The structural zeros found (``structural_zeros``), one row per cell and target:
        ``condition``, ``value`` (its category; ``None``: its missing values; a
        :class:`pandas.Interval`: a numeric condition's tail), ``target`` and
        ``ruled_out`` (the target's states never drawn there). Empty without any.
    rounding_ : dict of str to dict
        Per continuous or integer target with a rounding grid (``rounding``): its bands, each
        with its decimal levels (``None``: none, the flow's value) and their shares; for a target
        with values on both sides of 0, ``"sides"`` holds the bands of each sign (``"bands"`` empty).
    history_ : DataFrame
        Per-epoch ``train_loss`` and ``val_loss`` (weighted mean negative log-likelihood).
    model_ : PointMassFlow
        The fitted torch module.
    condition_model_ : Synthesizer
        The unconditional model of the conditions (``condition_model=True`` only). With ``epsilon``
        and two or more conditions it draws from a tree of noisy two-way tables of them (its
        ``condition_tree_``; its flow is not trained and it has no ``log_prob``; see
        ``docs/privacy.md``, "The condition model").
    privacy_ : dict
        With ``epsilon``: the epsilon spent at ``delta`` and every noisy release (``mechanisms``).
    fitted_params_ : dict
        The constructor parameters of the fit (``get_params()`` when ``fit`` began, ``epochs`` those given to
        ``fit`` when it overrides them): what ``save`` writes, so that a ``set_params`` after fitting never
        describes the saved model (except ``sampling`` and ``verbose``, which act when drawing and are saved as they
        are). Drawing and scoring refuse a model whose ``target_vars``, ``condition_vars``, ``transforms`` or
        ``hidden_features`` were changed after ``fit`` (set them back, or fit again).

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

    _fitted_attribute = "model_"
    _fitted_private = ("_ranges",)

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
        rounding: bool | None = None,
        structural_zeros: bool | None = None,
        epochs: int | str = "auto",
        batch_size: int | None = None,
        learning_rate: float | None = None,
        weight_decay: float = 0.0,
        validation_fraction: float = 0.1,
        patience: int | None = None,
        verbose: bool = True,
        condition_model: bool | None = None,
        sampling: str = "stratified",
        standardize: str = "quantile",
        epsilon: float | None = None,
        delta: float | None = None,
        max_grad_norm: float | None = None,
        public_bounds: Mapping[str, tuple[float, float]] | None = None,
        public_categories: Mapping[str, Sequence[Any]] | None = None,
        budget_split: Mapping[str, float] | None = None,
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
        self.rounding = rounding
        self.structural_zeros = structural_zeros
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.verbose = verbose
        self.condition_model = condition_model
        self.sampling = sampling
        self.standardize = standardize
        self.epsilon = epsilon
        self.delta = delta
        self.max_grad_norm = max_grad_norm
        self.public_bounds = public_bounds
        self.public_categories = public_categories
        self.budget_split = budget_split

    # -- fitting -----------------------------------------------------------------------
    def fit(
        self,
        data: pd.DataFrame,
        weight_col: str | None = None,
        *,
        epochs: int | str | None = None,
        seed: int | str | None = "auto",
    ) -> Synthesizer:
        """Fits the model by weighted maximum likelihood.

        Parameters
        ----------
        data : DataFrame
            Training records with every target and condition column. Missing values are modelled
            (not with ``epsilon``): a target's as a state of their own, a condition's as an input of
            their own (a one-hot column after a categorical condition's categories; an indicator
            column beside a numeric condition's value).
        weight_col : str, default=None
            Survey weight column; ``None`` gives every record weight 1.
        epochs : int or "auto", default=None
            Overrides the constructor's ``epochs`` (which keeps its value); ``fitted_params_`` and
            the model file record the epochs given here.
        seed : int, None or "auto", default="auto"
            Seeds the initialization, the validation split, batches and dequantization noise (and, with
            ``epsilon``, every noise draw of the differentially private fit). ``"auto"`` is 0 without
            ``epsilon``, so that a fit is reproducible by default, and with ``epsilon`` a seed drawn from
            the operating system's entropy (``secrets.randbits(64)``), used once and stored nowhere: a DP
            fit is a deterministic function of the data and its seed, so whoever knows the seed and the
            other records could refit with and without a record and learn membership whatever
            ``epsilon``. ``None`` draws such a seed in either mode. Pass an int to reproduce a fit; for a
            DP release keep it as confidential as the data (see docs/privacy.md, "The seed").

        Returns
        -------
        self : Synthesizer
        """
        # A refit keeps nothing of the previous fit; a failed fit leaves the estimator as it was (fitted or not).
        with self._fit_from_scratch(), torch_fit_mode():
            return self._fit(data, weight_col, epochs, seed)

    def _check_params(self) -> dict[str, Any]:
        """Every constructor parameter, checked; returns them in canonical types (the stored
        attributes stay as given)."""
        p = check_synthesizer_params(self)
        p["dp"] = _dp.check_dp_params(self, p)
        return p

    # -- generation --------------------------------------------------------------------
    def generate(
        self, conditions: pd.DataFrame, seed: int | None = None, *, chunk_size: int = 16_384, threads: int | None = 1
    ) -> pd.DataFrame:
        """Synthesizes targets for the given condition rows.

        Parameters
        ----------
        conditions : DataFrame
            One row per record to synthesize, with every condition column (other columns kept).
        seed : int, default=None
            Seeds the draw; the same seed (with the same ``chunk_size`` and ``threads``) gives
            identical output.
        chunk_size : int, default=16384
            Rows processed at once (bounds memory). The draws depend on it (``sampling`` stratifies
            the records of a chunk, and one generator runs through the chunks in turn): another
            chunk size gives other, equally valid, draws.
        threads : int or None, default=1
            Torch intra-op threads while sampling (restored afterwards); ``None`` keeps the
            current setting. The sampling networks are small, so one thread is fastest: on the
            benchmark machine two threads were 20x slower under load (see the benchmark).
            The values agree across thread counts to float32 rounding (the flow's matrix
            products add in another order: about 1e-6 relative), the bytes only at the same
            count: keep one value (the default) for files that must be reproduced exactly.

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
        return self._generate(conditions, seed, chunk_size, threads)

    def sample(
        self, n: int, seed: int | None = None, *, chunk_size: int = 16_384, threads: int | None = 1
    ) -> pd.DataFrame:
        """Synthesizes ``n`` records: conditions resampled from the weighted training conditions, or
        drawn from the condition model when fitted with ``condition_model=True`` (then no real
        condition row is copied).

        ``chunk_size`` and ``threads`` are passed to :meth:`generate`. A population that cannot
        fit in memory (about ``16 * n * columns`` bytes against the machine's physical memory)
        is refused before anything is allocated: stream it with
        :func:`microplex.scale.generate_dataset`.

        Returns
        -------
        DataFrame
            ``n`` rows with the condition and target columns.
        """
        return self._sample(n, seed, chunk_size, threads)

    def log_prob(self, data: pd.DataFrame) -> np.ndarray:
        """Exact log-likelihood of each record, shape (N,).

        The density is with respect to counting measure on point masses and categories times
        Lebesgue measure on the continuous parts, in the units of the data. Integer targets
        are evaluated at their value (the density of the dequantized value, which approximates
        the log-probability of the integer). Records outside the training support (unseen
        categories or point-mass patterns, values beyond a bound) get ``-inf``.
        """
        return self._log_prob(data)

    # -- persistence -------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        """Saves the fitted model to ``path`` (zip of JSON, safetensors and Parquet; no pickle).

        The file is written to a temporary name in the same folder and renamed, so a failed save
        leaves nothing behind. Models fitted with the same data, parameters and seed give
        byte-identical files. A DP model's ``privacy_`` is first checked as :meth:`load` checks
        it (a record edited after the fit raises, and nothing is written). A path in a missing or read-only
        folder, a folder, or a device, pipe or socket (which the rename would replace) raises a
        :class:`~microplex.DataValidationError` naming it before anything is written.
        """
        self._check_is_fitted()
        check_save_path(path)
        write_archive(path, *self._export_state())

    @classmethod
    def load(cls, path: str | os.PathLike | BinaryIO) -> Synthesizer:
        """Loads a model saved by :meth:`save` (from a path or a binary file object).

        The file is untrusted data: its members, sizes, metadata types, encoders, pattern table,
        tensor names and shapes (against the architecture its parameters declare, before any
        weight is loaded) and training conditions are checked first; a defect raises one
        :class:`~microplex.DataValidationError` naming the file and the field.
        """
        label = repr(str(path)) if isinstance(path, str | os.PathLike) else repr(path)
        meta, tensors, tables = read_archive(path, FORMAT)
        return cls._from_state(meta, tensors, tables, label)

    def _export_state(self) -> State:
        """The fitted state as (metadata, tensors, tables): what :meth:`save` writes (see :mod:`._state`)."""
        self._check_is_fitted()
        return export_state(self)

    @classmethod
    def _from_state(cls, meta: Any, tensors: dict[str, torch.Tensor], tables: dict[str, pd.DataFrame],
                    label: str = "the model state") -> Synthesizer:
        """A fitted Synthesizer from parts of :meth:`_export_state` (validated as untrusted data)."""
        return restore_state(cls, meta, tensors, tables, label)
