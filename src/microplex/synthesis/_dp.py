"""Differential privacy of the Synthesizer: settings, public bounds, noisy statistics, the audit trail.

With ``Synthesizer(epsilon=..., delta=...)`` nothing fitted depends on the data except through a
Gaussian mechanism counted by the accountant (:mod:`._accountant`):

- *public* (no budget): the kinds and category lists (``public_categories``), the bounds of every
  numeric column (``public_bounds``; values outside are clipped to them, with a
  :class:`~microplex.PrivacyWarning`), the
  pattern table (every combination of states), the transforms (``logit`` between the public
  bounds), and the number of records (it sets the sampling rate, as in Opacus);
- *statistics* (the ``"statistics"`` share of the budget): one Gaussian release of a histogram
  per target, each record in one cell of each with its weight over the public weight bound
  (at most 1; sensitivity sqrt(number of targets), :func:`histogram_rows`; with a weight column
  one more cell, each record's weight, the noisy total weight: sensitivity sqrt(targets + 1)): a
  cell per category, or per point-mass candidate (declared point masses, else the public bounds, 0 and round values)
  and :data:`BINS` bins of the transformed values (fewer for few records, :func:`bin_count`), each
  cut into :data:`SUB_BINS` sub-bins; from it, by post-processing only, the point masses
  (noisy share at least ``point_mass_threshold`` and :data:`POINT_MASS_Z` noise standard
  deviations), each target's standardization (with
  ``standardize="quantile"``, the default, the knots of the histogram's quantiles,
  :func:`._quantile_map.knots_from_histogram`; with ``"moments"`` its mean and standard
  deviation; only the runs of bins that stand out of the noise hold mass,
  :func:`._dp_histogram.histogram_support`, the bins at their ends at their posterior means,
  :func:`._dp_histogram.posterior_counts`) and the state
  shares that the pattern head starts at and is raked to after training (:mod:`._dp_rake`); after
  training the flow's base scale widens conditional distributions that clipping narrowed and the
  knots' normal scores are set to the model's own quantiles (:mod:`._dp_margins`), so the release
  keeps the histogram's marginals;
- *training* (the ``"training"`` share): DP-SGD (:mod:`._dp_training`);
- *conditions* (the ``"conditions"`` share, ``condition_model=True``): the condition model, a
  DP Synthesizer of its own with the same statistics/training proportions. It is fitted first: the
  main model's numeric conditions are standardized by the mean and standard deviation of a draw
  from it (post-processing, :func:`standardize_conditions`), categorical ones one-hot on their
  public lists.

Heaps, the validation split and the training losses are off in this mode (each would read the
data without noise).
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd
import torch
from scipy import sparse
from scipy.special import ndtri

from .._errors import DataValidationError, PrivacyWarning
from .._params import check_float, to_python
from .._stats import (category_type_clash, dtype_precision, sorted_categories, stored_at, unseen_categories,
                      weighted_mean_var)
from .._random import int_seed, named_child
from .schema import VariableSpec
from .heaps import Logits
from . import _conditions
from . import _quantile_map as qmap
from ._accountant import MIN_MECHANISM_DELTA
from ._dp_histogram import core, histogram_support, posterior_counts
from ._dp_tree import SELECTION_SHARE
from ._validation import integer_kind
from .transforms import CategoricalEncoder, ConditionEncoder, ContinuousEncoder, in_dtype_order

if TYPE_CHECKING:
    from .synthesizer import Synthesizer

__all__ = ["DP_PARAMS", "check_dp_params", "clip_to_public", "fit_public_encoders", "gaussian_release", "histogram_rows",
           "init_prior"]

#: The Synthesizer parameters of the DP mode (absent from model files fitted without it).
DP_PARAMS = ("epsilon", "delta", "max_grad_norm", "public_bounds", "public_categories", "budget_split")
PARTS = ("statistics", "training", "conditions")
#: Default shares of the budget: statistics, training and (``condition_model=True``) conditions.
DEFAULT_SPLIT = {"statistics": 0.2, "training": 0.8}
DEFAULT_SPLIT_CONDITIONS = {"statistics": 0.2, "training": 0.5, "conditions": 0.3}
#: Width of the margin around public bounds of a continuous column, as a share of the bounds' width
#: (so values at a bound have a finite logit).
MARGIN = 1e-4
_MIN_STD = 0.05
#: An undeclared point-mass candidate is a point mass only when its noisy count is at least this many
#: noise standard deviations (besides ``point_mass_threshold``): noise alone then makes one in about
#: 700 candidates a point mass (a spurious one at a public bound draws records there).
POINT_MASS_Z = 3.0
#: A record at a round value that is a point-mass candidate (:func:`point_mass_candidates`) counts
#: this much in the candidate's cell and ``sqrt(1 - ROUND_SHARE**2)`` in its bin (norm 1: the
#: sensitivity is unchanged). Where the candidate is no point mass (most are not), its records'
#: estimate adds to the bin noise of variance ((1 - b) / a)**2 = 0.25 times the bin's own, not 1
#: times (each record wholly in the candidate's cell); a point mass is found at noise sd 1.25 times
#: the bin's.
ROUND_SHARE = 0.8
#: With more candidates than the bounds and 0, the threshold rises (:func:`point_mass_z`) so that
#: noise alone makes a point mass of at most this share of targets.
FALSE_POINT_MASS = 0.004
#: Bins of the noisy histogram of each numeric target's transformed values (its standardization).
BINS = 32
#: The fewest bins :func:`bin_count` gives a histogram of few records or much noise.
MIN_BINS = 8
#: Each bin is cut into this many sub-bins of equal width, a finer histogram released beside it:
#: the bins find where the values lie, the sub-bins shape them inside the bins that hold mass.
#: Public bounds are wide, and 32 bins of a logit between them may put a target's whole body in
#: three bins (census2000's log weekly income between 0 and 12: worst KS 0.14 at epsilon 1).
SUB_BINS = 4
#: Twice the James-Stein shrinkage of a bin's sub-bins towards an even split (:func:`sub_bin_shape`):
#: under noise alone a bin's sub-bins' squared deviations (over the noise variance) follow a
#: chi-square with SUB_BINS - 1 = 3 degrees of freedom, above 3 in 39% of the bins (each then shaped
#: by noise with the plain factor), above 6 in 11%.
SUB_BIN_SHRINK = 2.0
#: A record's count outside the point-mass candidates goes this much to its bin and
#: ``sqrt(1 - BIN_SHARE**2)`` to its sub-bin (norm 1: the sensitivity is unchanged; the bins'
#: noise is ``1 / BIN_SHARE`` times the candidates', the sub-bins' ``1 / sqrt(1 - BIN_SHARE**2)``).
#: An integer value's sub-bin count is spread over the sub-bins of its bin that its
#: dequantization interval (the value +- 0.5, as the flow sees it) overlaps, in proportion.
BIN_SHARE = 0.9


class NumericLayout(NamedTuple):
    """A numeric target's cells in the statistics release (:func:`histogram_rows`): a cell per
    point-mass candidate, then a bin per interval of ``edges``."""

    #: The point-mass candidates (declared point masses, or :func:`point_mass_candidates`).
    cand: list[float]
    #: Their transforms (the histogram's scale).
    cand_t: np.ndarray
    #: The bins' edges on the transformed scale.
    edges: np.ndarray
    #: The encoder's segment (bounds and transform; mean and std set after the release).
    seg: dict
    #: The index of the edge at 0 (a barrier of the histogram's support), when the bounds straddle 0.
    zero: tuple[int, ...]
    #: Each candidate's share ``a`` of a record at it (the rest, ``sqrt(1 - a**2)``, counts in its
    #: bin): 1 for the bounds, 0 and declared point masses, :data:`ROUND_SHARE` for a round value.
    share: np.ndarray
    #: The integers in each candidate's bin (an integer target's; ``inf`` for a continuous one).
    integers: np.ndarray
    #: Each candidate's bin.
    home: np.ndarray
    #: Each candidate's record's share in each sub-bin (k, bins * SUB_BINS): a one at its value's
    #: sub-bin, or an integer's dequantization interval spread over the sub-bins of its bin.
    sub_home: np.ndarray

    @property
    def round(self) -> np.ndarray:
        """Which candidates are round values (neither a bound nor 0 nor declared): the droppable ones."""
        return self.share < 1.0

    @property
    def bins(self) -> int:
        """The histogram's bins (:func:`bin_count`, one more where the bounds straddle 0)."""
        return len(self.edges) - 1

    @property
    def cells(self) -> int:
        """Candidates, bins and sub-bins."""
        return len(self.cand) + self.bins * (1 + SUB_BINS)

    @property
    def sub_edges(self) -> np.ndarray:
        """The sub-bins' edges: :data:`SUB_BINS` of equal width in every bin."""
        return _sub_edges(self.edges)


def _sub_edges(edges: np.ndarray) -> np.ndarray:
    """The edges of :data:`SUB_BINS` sub-bins of equal width in every bin of ``edges``."""
    return np.r_[(edges[:-1, None] + np.diff(edges)[:, None] * np.arange(SUB_BINS) / SUB_BINS).ravel(), edges[-1]]


#: Largest magnitude of a public bound (a wider range overflows float64 in the statistics release).
MAX_BOUND = 1e307
#: Range of ``max_grad_norm``: below it the clipped gradients underflow float32 and DP-SGD trains
#: nothing (1e-30: no weight moved); above it the noise on a step's gradient sum nears float32's range
#: (1e300: a non-finite gradient once training had started).
MAX_GRAD_NORM_RANGE = (1e-3, 1e6)


def _fail(name: str, expected: str, value: Any) -> DataValidationError:
    text = repr(value)
    return DataValidationError(f"The {name!r} parameter must be {expected}. Got {text[:77]} instead.")


def check_dp_params(synth: Synthesizer, p: dict[str, Any]) -> dict[str, Any] | None:
    """The DP parameters of ``synth`` checked (``None`` without ``epsilon``); ``p`` holds the other
    checked parameters."""
    eps = check_float(synth.epsilon, "epsilon", low=0.0, low_inclusive=False, allow_none=True)
    if eps is None:
        given = [k for k in DP_PARAMS[1:] if getattr(synth, k) is not None]
        if given:
            raise DataValidationError(f"The {given[0]!r} parameter needs differential privacy: set 'epsilon' too.")
        return None
    if synth.delta is None:
        raise _fail("delta", "a float in (0, 1) when 'epsilon' is set", None)
    delta = check_float(synth.delta, "delta", low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)
    clip = None if synth.max_grad_norm is None else check_float(  # None: set by the plan (_dp_plan)
        synth.max_grad_norm, "max_grad_norm", low=MAX_GRAD_NORM_RANGE[0], high=MAX_GRAD_NORM_RANGE[1])
    bounds = {}
    for name, b in _mapping(synth.public_bounds, "public_bounds").items():
        # within +-MAX_BOUND: wider bounds overflow float64 in the histogram's edges and round values (raw
        # OverflowError, IndexError); an int beyond a float (10**400) made math.isfinite raise OverflowError
        # compared as Python numbers: a float32 bound against MAX_BOUND warned of an overflowing cast
        ok = isinstance(b, list | tuple) and len(b) == 2 and all(
            isinstance(v, numbers.Real) and not isinstance(v, bool | np.bool_)
            and -MAX_BOUND <= to_python(v) <= MAX_BOUND for v in b) and to_python(b[0]) < to_python(b[1])
        if not ok:
            raise _fail("public_bounds", f"a mapping of column to (low, high) with finite low < high within "
                        f"+-{MAX_BOUND:g}; column {name!r}", b)
        bounds[name] = (float(b[0]), float(b[1]))
    cats = {}
    for name, c in _mapping(synth.public_categories, "public_categories").items():
        if not isinstance(c, list | tuple):  # a set's order, which a model file's params keep, varies between runs
            raise _fail("public_categories", f"a mapping of column to a list or tuple of categories; column {name!r} "
                        f"has a {type(c).__name__}", c)
        # the values a model file holds (_model_file's categories): a Fraction or an int beyond 64 bits failed in save
        ok = len(c) >= 2 and all(
            isinstance(v, str | bool | np.bool_) or (isinstance(v, numbers.Integral) and -(2**63) <= int(v) < 2**64)
            or (isinstance(v, float | np.floating) and math.isfinite(v)) for v in c)
        if not ok or not pd.Index(list(c), dtype=object).is_unique:
            raise _fail("public_categories", f"a mapping of column to at least 2 distinct categories (str, bool, "
                        f"64-bit int or finite float); column {name!r}", c)
        cats[name] = sorted_categories(to_python(v) for v in c)
    columns = p["target_vars"] + p["condition_vars"]
    both = sorted(set(bounds) & set(cats))
    missing = [n for n in columns if n not in bounds and n not in cats]
    if both or missing:
        raise DataValidationError(
            "With 'epsilon' set, every target and condition needs public metadata: bounds in 'public_bounds' "
            "(numeric columns) or categories in 'public_categories' (categorical ones), not both. "
            + (f"Missing: {missing}." if missing else f"In both: {both}.")
        )
    split = _check_split(synth.budget_split, p["condition_model"])
    # every mechanism gets a share of delta (the condition model's a share of its share, its tree's selection and
    # tables a share of that): none may fall below what a model file records, or save would refuse the fit
    lowest = (delta * min(split.values()) ** (2 if p["condition_model"] else 1)
              * min(SELECTION_SHARE, 1 - SELECTION_SHARE))
    if lowest < MIN_MECHANISM_DELTA:
        raise _fail("delta", f"large enough that every mechanism's share of it (here as little as {lowest:.3g}, with "
                    f"'budget_split' {split}) is at least {MIN_MECHANISM_DELTA:g}", synth.delta)
    if p["condition_vars"] and not p["condition_model"]:
        raise DataValidationError(
            "With 'epsilon' set and conditions, 'condition_model' must be True (or None, the default): otherwise "
            "the estimator and its file keep the real training conditions, which no noise covers.")
    _check_category_grid(p["target_vars"], cats, "targets")
    if p["condition_model"]:
        _check_category_grid(p["condition_vars"], cats, "conditions (the condition model's targets)")
    if p["patience"] is not None:
        raise DataValidationError("The 'patience' parameter needs a validation split, which DP training does not "
                                  "use (it would read the data without noise); leave it None with 'epsilon'.")
    for name, spec in (p["schema"] or {}).items():
        if spec.heaps is not None or spec.transform != "auto" or (spec.kind == "categorical") != (name in cats):
            raise DataValidationError(
                f"schema[{name!r}]: with 'epsilon' set, heaps are off, the transform is 'auto' (logit between the "
                "public bounds) and a column is categorical exactly when it is in 'public_categories'."
            )
        # declared point masses and bounds are both public: one outside the other is a contradiction, not a
        # value to clip (a point mass at 60 with bounds (0, 50) was released as a point mass at 50)
        lo, hi = bounds.get(name, (-math.inf, math.inf))
        outside = [v for v in spec.point_masses or () if not lo <= v <= hi]
        if outside:
            raise DataValidationError(
                f"schema[{name!r}] (on the command line, 'point_masses' of the public metadata file): the declared "
                f"point mass {outside[0]!r} is outside the public bounds [{lo!r}, {hi!r}] of column {name!r} (declared "
                f"point masses outside them: {outside}). Public metadata contradict each other: widen the bounds or "
                "drop the point mass.")
    return {"epsilon": eps, "delta": delta, "max_grad_norm": clip, "bounds": bounds, "categories": cats,
            "split": split}


def _check_category_grid(columns: list[str], cats: dict[str, list], what: str) -> None:
    """Refuses, before any work, a model whose public categories alone make more state combinations than
    a DP pattern table covers (see :func:`check_pattern_grid`, which also counts the point masses)."""
    from ._layout import _MAX_PATTERNS

    sizes = {n: len(cats[n]) for n in columns if n in cats}
    grid = float(np.prod(list(sizes.values()), dtype=float))
    if grid > _MAX_PATTERNS:
        listed = ", ".join(f"{n!r}: {k}" for n, k in sorted(sizes.items(), key=lambda t: -t[1]))
        raise DataValidationError(
            f"With 'epsilon' set, the public categories of the {what} make {grid:.0f} combinations, more than "
            f"{_MAX_PATTERNS} ({listed}); a DP model draws them from a table of every combination. Give counts "
            "and other ordered integers 'public_bounds' instead of categories, or merge categories.")


def _mapping(value: Any, name: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise _fail(name, "a mapping of column names or None", value)
    return dict(value)


#: How far the shares of ``budget_split`` may sum from 1 (shares given as float32, 0.2 + 0.5 + 0.3, sum to
#: 1 + 1.5e-8); they are then divided by their sum, so the parts never spend more than ``epsilon``.
SPLIT_TOLERANCE = 1e-6


def _check_split(value: Any, conditions: bool) -> dict[str, float]:
    """The shares of ``budget_split`` (the defaults for ``None``), checked and scaled to sum to exactly 1."""
    if value is None:
        return dict(DEFAULT_SPLIT_CONDITIONS if conditions else DEFAULT_SPLIT)
    keys = set(PARTS) if conditions else set(PARTS[:2])
    expected = f"a mapping of {sorted(keys)} to positive shares summing to 1"
    if not isinstance(value, Mapping) or set(value) != keys:
        raise _fail("budget_split", expected, value)
    shares = {k: check_float(value[k], f"budget_split[{k!r}]", low=0.0, high=1.0, low_inclusive=False) for k in PARTS
              if k in keys}
    total = sum(shares.values())
    if abs(total - 1.0) > SPLIT_TOLERANCE:
        raise _fail("budget_split", expected, value)
    return {k: v / total for k, v in shares.items()}


def check_public_columns(dp: dict[str, Any], columns: list[str], weight_col: str | None) -> None:
    """Refuses public metadata (``dp``, the checked DP parameters) naming a column that is neither one of
    ``columns`` (targets and conditions) nor the weight column, or a weight column without public bounds
    (0, largest weight); what can be checked before the data are read (the pipeline checks it up front)."""
    extra = sorted((set(dp["bounds"]) | set(dp["categories"])) - set(columns) - {weight_col})
    if extra:
        raise DataValidationError(f"public_bounds/public_categories name columns that are neither targets, "
                                  f"conditions nor the weight column: {extra}.")
    if weight_col is not None and (weight_col not in dp["bounds"] or dp["bounds"][weight_col][0] < 0):
        raise DataValidationError(f"With 'epsilon' set, the weight column {weight_col!r} needs public bounds "
                                  "(0, largest weight) in 'public_bounds': weights are treated as public and bounded.")


def clip_to_public(data: pd.DataFrame, w: np.ndarray, weight_col: str | None, dp: dict[str, Any],
                   columns: list[str]) -> tuple[pd.DataFrame, np.ndarray]:
    """``data`` with numeric columns clipped to their public bounds (a PrivacyWarning names each
    clipped column) and the weights divided by their public upper bound (clipped to it first).

    Raises when a categorical column holds a value outside its public categories, a numeric one is
    not numeric, or the weight column has no public bounds."""
    check_public_columns(dp, columns, weight_col)
    data = data.copy()
    for name in columns:
        if name in dp["categories"]:
            _check_public_categories(data[name], dp["categories"][name], name)
            continue
        if not pd.api.types.is_numeric_dtype(data[name].dtype) or pd.api.types.is_bool_dtype(data[name].dtype):
            raise DataValidationError(f"Column {name!r} has public bounds but dtype {data[name].dtype}; give it "
                                      "categories in 'public_categories' instead.")
        lo, hi = dp["bounds"][name]
        x = data[name].to_numpy(float)
        # a float32 column holds 24.1 as 24.100000381469727: its bounds as it holds them (its dtype is public)
        lo_s, hi_s = stored_at(np.array([lo, hi]), dtype_precision(data[name].dtype))
        out = int(((x < lo_s) | (x > hi_s)).sum())
        if out:
            warnings.warn(f"Column {name!r}: {out} values outside its public bounds [{lo:g}, {hi:g}] were clipped to "
                          "them.", PrivacyWarning, stacklevel=4)
            if pd.api.types.is_integer_dtype(data[name].dtype):
                data[name] = np.clip(x, math.ceil(lo), math.floor(hi)).astype(data[name].dtype)
            else:  # the dtype kept (a float32 column's clipped values were float64, and so were its draws)
                data[name] = pd.Series(np.clip(x, lo_s, hi_s), index=data.index).astype(data[name].dtype)
    if weight_col is None:
        return data, w
    top = dp["bounds"][weight_col][1]
    if (w > top).any():
        warnings.warn(f"Weight column {weight_col!r}: {int((w > top).sum())} weights above its public bound {top:g} "
                      "were clipped to it.", PrivacyWarning, stacklevel=4)
    data[weight_col] = np.minimum(w, top)  # the condition model reads the clipped weights
    return data, np.minimum(w, top) / top


def _check_public_categories(values: pd.Series, cats: list, name: str) -> None:
    """Refuses a column ``name`` holding a value outside its public categories ``cats`` (values are
    compared with their types: ``1`` is not ``"1"``, nor ``True``), or public categories that its dtype
    cannot hold: a DP model draws every public category and casts the draws to the column's dtype
    (1.5 in an int64 column was drawn as 1, 300 in an int8 one raised OverflowError in ``sample``)."""
    from ._model_file import _Fields, _check_categories_dtype  # here: _model_file imports this module

    unknown = unseen_categories(values, cats)
    if unknown:
        clash = category_type_clash(unknown, cats)
        hint = "" if clash is None else (
            f" The labels agree but the types differ ({clash[0]!r}, {type(clash[0]).__name__}, in the data; "
            f"{clash[1]!r}, {type(clash[1]).__name__}, in 'public_categories'): give the categories as the column "
            "holds them.")
        raise DataValidationError(
            f"Column {name!r} holds values outside its public categories {cats[:10]!r}: {unknown[:5]!r}; add them to "
            f"'public_categories' (categories cannot be clipped).{hint}")
    bad = []
    for v in cats:
        try:
            _check_categories_dtype(_Fields(""), [v], str(values.dtype), "")
        except DataValidationError:
            bad.append(v)
    if bad:
        raise DataValidationError(
            f"The 'public_categories' of column {name!r} hold values that its dtype {values.dtype} cannot hold: "
            f"{bad[:5]!r}; a DP model draws every public category. Give categories of the column's type, or cast the "
            "column first.")


#: The prefix of the condition model's entries in the main model's ``privacy_["mechanisms"]``.
NESTED_PREFIX = "conditions."


def nested_mechanisms(synth: Synthesizer) -> list[dict]:
    """The condition model's mechanisms, their parts prefixed with :data:`NESTED_PREFIX`."""
    sub = getattr(synth, "condition_model_", None)
    return [] if sub is None else [dict(m, part=NESTED_PREFIX + m["part"]) for m in sub.privacy_["mechanisms"]]


#: Rows drawn from the DP condition model to standardize the main model's numeric conditions
#: (:func:`standardize_conditions`); the mean's error is about 0.007 standard deviations.
SCALE_DRAWS = 20_000


def standardize_conditions(synth: Synthesizer, seed: int) -> None:
    """The main model's numeric conditions standardized by the mean and standard deviation of a draw
    from the fitted DP condition model (post-processing: no budget), in place of the public bounds'
    middle and quarter-width that :func:`fit_public_encoders` sets.

    The bounds' scale squashes a condition that fills a small part of its bounds (workinghours'
    children counts, mostly 0 to 2 with sd 0.5-0.9, within bounds of 0 to 10; its unemployment rate,
    sd 2.3, within 0 to 40): its input to the flow then varies 3-5 times less than the others', and
    under DP-SGD's noise the flow learned little of the targets' dependence on it (workinghours,
    epsilon 1: the correlation error given the real conditions 0.26, hours ~ children under 5;
    session 37, ``benchmarks/results/dp.md``). The moments are those the non-DP encoder takes
    (:func:`~microplex._stats.weighted_mean_var`, unit weights: the draw already represents the
    weighted population). A condition that the draw holds constant keeps the bounds' scale (it has
    no other)."""
    numeric = [n for n in synth.condition_vars if synth.kinds_[n] != "categorical"]
    if not numeric:
        return
    draw = _conditions.draw_conditions(synth, SCALE_DRAWS, int_seed(named_child(seed, "condition_scales")),
                                       chunk_size=SCALE_DRAWS, threads=1)
    stats = dict(synth.condition_encoder_.stats)
    for n in numeric:
        x = draw[n].to_numpy(float)
        mean, var = weighted_mean_var(x, np.ones(len(x)))
        std = float(np.sqrt(var))
        if np.isfinite(mean) and np.isfinite(std) and std > 0:
            stats[n] = (mean, std)
    synth.condition_encoder_.stats = stats


def condition_ranges(synth: Synthesizer, dp: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """The public bounds of the numeric conditions (in place of their training ranges)."""
    return {n: dp["bounds"][n] for n in synth.condition_vars if synth.kinds_[n] != "categorical"}


def check_pattern_grid(synth: Synthesizer) -> None:
    """Refuses a pattern table made of the combinations seen in training (too many combinations)."""
    from ._layout import _MAX_PATTERNS

    sizes = [synth.encoders_[n].n_states for n in synth.discrete_vars_]
    if float(np.prod(sizes, dtype=float)) > _MAX_PATTERNS:
        raise DataValidationError(
            f"With 'epsilon' set, the point-mass and category states of the targets make {np.prod(sizes, dtype=float):.0f} "
            f"combinations, more than {_MAX_PATTERNS}; beyond that the pattern table lists the combinations seen in "
            "training, which no noise covers. Use fewer categories or targets (with condition_model=True, the "
            "condition model's targets are the conditions).")


def fit_public_encoders(synth: Synthesizer, data: pd.DataFrame, w: np.ndarray, dp: dict[str, Any],
                        schema: dict[str, VariableSpec], rng: np.random.Generator, release: dict
                        ) -> tuple[list[dict], dict[str, np.ndarray]]:
    """Sets ``kinds_``, ``dtypes_``, ``encoders_`` and ``condition_encoder_`` from public metadata and
    one Gaussian release of histograms (``release``: its mechanism, from :func:`plan`); returns the
    mechanisms spent (``[release]``) and the noisy shares of every target's states (for
    :func:`init_prior`)."""
    targets, conditions = list(synth.target_vars), list(synth.condition_vars)
    synth.kinds_ = {}
    for name in targets + conditions:
        if name in dp["categories"]:
            kind = "categorical"
        elif name in targets:
            integer = pd.api.types.is_integer_dtype(data[name].dtype)
            declared = schema.get(name, VariableSpec()).kind
            kind = declared or ("integer" if integer else "continuous")
            if kind == "integer":  # half units, which float64 resolves below 2**48, read from the public bounds
                largest = max(abs(float(b)) for b in dp["bounds"][name])
                kind = integer_kind(name, largest, declared == "integer", "public bounds", stacklevel=5)
        else:
            kind = "continuous"
        synth.kinds_[name] = kind
    synth.dtypes_ = {name: str(data[name].dtype) for name in targets}
    synth.n_features_in_ = len(conditions)
    stats = {n: dp["categories"][n] if synth.kinds_[n] == "categorical" else
             [(dp["bounds"][n][0] + dp["bounds"][n][1]) / 2, (dp["bounds"][n][1] - dp["bounds"][n][0]) / 4]
             for n in conditions}
    synth.condition_encoder_ = ConditionEncoder.from_dict(
        {"kinds": {n: synth.kinds_[n] for n in conditions}, "stats": stats})
    synth.encoders_ = {n: None for n in targets}  # in target order, as a loaded model builds them
    noise_sd = release["noise_multiplier"] * release["sensitivity"]
    rows, layout = histogram_rows(synth, data, w, dp, schema, bin_count(len(data), noise_sd))
    if dp.get("weighted"):  # the total weight: one more cell, each record's weight (at most 1)
        rows = sparse.hstack([rows, sparse.csr_matrix(w[:, None])], format="csr")
    noisy = gaussian_release(np.asarray(rows.sum(axis=0), dtype=float).ravel(), release, rng)
    # Every target's histogram sums to the total weight: the number of records (public) without
    # weights, the noisy total cell with them. Each histogram is moved onto that sum (the
    # least-squares estimate under the constraint, each cell weighted by its noise variance), so a
    # share is its cell over the total instead of over the sum of dozens of noisy cells.
    total = max(float(noisy[-1]), 1.0) if dp.get("weighted") else float(len(data))
    if not hasattr(synth, "_condition_tree"):  # once: a condition model's total is alike
        warn_light_weights(total, len(data), noise_sd, dp, targets + conditions, bool(dp.get("weighted")))
    found, sub, pos = {}, {}, 0
    for name in targets:  # every target's cells, moved onto the total, and its point masses
        size = layout[name] if synth.kinds_[name] == "categorical" else layout[name].cells
        cells, pos = noisy[pos:pos + size], pos + size
        if synth.kinds_[name] == "categorical":
            found[name] = cells + (total - cells.sum()) / size
            continue
        cand, share, bins = layout[name].cand, layout[name].share, layout[name].bins
        k = len(cand)
        # Records: the candidates' cells as released, the bins' over BIN_SHARE (noise sd noise_sd /
        # BIN_SHARE), the sub-bins' over sqrt(1 - BIN_SHARE^2): a record at candidate i counts a_i in
        # its cell and b_i = sqrt(1 - a_i^2) in its bin, the others 1. The total is sum(bins) +
        # sum_i (1 - b_i) / a_i * cell_i: the candidates and bins are moved onto it by least squares.
        sub[name] = cells[k + bins:] / math.sqrt(1.0 - BIN_SHARE ** 2)
        # A bin's records are estimated twice, by its cell and by the sum of its sub-bins: the two
        # are combined by their inverse noise variances (BIN_SHARE^2 and (1 - BIN_SHARE^2) / SUB_BINS).
        a_bin = BIN_SHARE ** 2 * _bin_variance()
        both = a_bin * cells[k:k + bins] / BIN_SHARE + (1.0 - a_bin) * sub[name].reshape(bins, SUB_BINS).sum(1)
        cells = np.r_[cells[:k], both]
        g = np.r_[(1.0 - np.sqrt(1.0 - share ** 2)) / share, np.ones(bins)]
        var = np.r_[np.ones(k), np.full(bins, _bin_variance())]
        cells = cells + var * g * (total - float(g @ cells)) / float(g @ (var * g))
        counts = cells[:k] / share  # each candidate's records, noise sd noise_sd / a_i
        if schema.get(name, VariableSpec()).point_masses is not None:
            keep = list(range(k))
        else:  # noise is no point mass
            floor = np.maximum(synth.point_mass_threshold * total, point_mass_z(k) * noise_sd / share)
            excess = counts - _even_share(cells, layout[name])
            heaviest = np.argsort(-excess, kind="stable")[: synth.max_point_masses]
            keep = sorted(int(i) for i in heaviest if excess[i] >= floor[i])
        found[name] = (np.r_[counts, cells[k:]], keep)
    _fit_pattern_table(synth, found, layout)
    numeric = [name for name in targets if synth.kinds_[name] != "categorical"]
    binned, bin_sd, coef = {}, {}, {}
    for name in numeric:
        # The continuous values' histogram: each bin with the records of its free candidates and without
        # the share b_i of the point masses' records that it holds; the noise of those estimates joins
        # the bin's.
        cells, keep = found[name]
        entry = layout[name]
        k, share = len(entry.cand), entry.share
        counts = cells[:k]
        b = np.sqrt(1.0 - share ** 2)
        coef[name] = np.where(np.isin(np.arange(k), keep), -b, 1.0 - b)
        binned[name] = cells[k:k + entry.bins] + np.bincount(entry.home, weights=coef[name] * counts,
                                                             minlength=entry.bins)
        bin_sd[name] = noise_sd * np.sqrt(_bin_variance() + np.bincount(entry.home, weights=(coef[name] / share) ** 2,
                                                                        minlength=entry.bins))
    # Each bin's posterior mean under one prior of bin counts estimated from all the targets' histograms
    # (_dp_histogram.posterior_counts): a bin at a run's end, outside the run's core, owes part of its noisy
    # count to the noise that kept it.
    posterior = dict(zip(numeric, posterior_counts([binned[n] for n in numeric], [bin_sd[n] for n in numeric])))
    shares = {}
    for name in targets:
        if synth.kinds_[name] == "categorical":
            shares[name] = _shares(found[name])
            continue
        cells, keep = found[name]
        entry = layout[name]
        cand, seg, share = entry.cand, entry.seg, entry.share
        counts = cells[:len(cand)]
        # Only the runs of bins that stand out of the noise are kept (_dp_histogram), their cores (from the
        # first to the last bin of 2 noise sd) at their noisy counts, their ends at their posterior means; the
        # shares below keep every cell's noisy count (the noise sums to zero over the cells, the true tails do not).
        support = histogram_support(binned[name], bin_sd[name], barriers=entry.zero)
        shape = np.where(core(binned[name], bin_sd[name], support), np.clip(binned[name], 0.0, None), posterior[name])
        shape = np.where(support, shape, 0.0)
        fine = sub[name] + (coef[name] * counts) @ entry.sub_home
        shape = sub_bin_shape(shape, fine, noise_sd / math.sqrt(1.0 - BIN_SHARE ** 2))
        edges = entry.sub_edges
        centres = (edges[1:] + edges[:-1]) / 2
        if shape.sum() > 0:
            mean = float(np.average(centres, weights=shape))
            std = float(np.sqrt(np.average((centres - mean) ** 2, weights=shape)))
        else:  # no continuous mass survives the noise: the middle of the bounds
            mean, std = float(centres.mean()), float(centres.std())
        seg = dict(seg, mean=mean, std=max(std, _MIN_STD))
        if synth.standardize == "quantile":  # the same histogram's quantiles
            knots = qmap.knots_from_histogram(edges, shape)
            if knots is not None:
                seg["knots"] = qmap.knots_to_dict(knots)
        synth.encoders_[name] = ContinuousEncoder.from_dict({
            "name": name, "integer": synth.kinds_[name] == "integer",
            "point_masses": [cand[i] for i in keep], "segments": [seg]})
        shares[name] = _shares(np.append(counts[keep], binned[name].sum()))
    return [release], shares


def warn_light_weights(total: float, n: int, noise_sd: float, dp: dict[str, Any], columns: list[str],
                       weighted: bool = True) -> None:
    """Warns (:class:`~microplex.PrivacyWarning`) when the weights over their public upper bound sum
    (``total``, the release's noisy total-weight cell: post-processing) to fewer than ``2 * BINS``
    noise standard deviations ``noise_sd`` of the statistics release, the mass below which
    :func:`bin_count` would give a histogram fewer bins. Each record counts its weight over the
    bound (in the histograms and in DP-SGD), so a bound far above the weights leaves the fit the
    signal of ``total`` records, not ``n``, and the histograms hold mostly noise; nothing else says
    so (eusilc, 9,685 records of weights 358-1,032, epsilon 1: with a bound of 100,000 every release
    of the unemployment benefits was near its bound of 50,000 and no income was 0, with 5,000 the
    benefits' mean was 6 times the data's; session 52). Without weights (``weighted`` false) the
    total is the number of records ``n`` (public), and too few records warn alike (cps1, 40 records
    at epsilon 1: every released age 51-54 against 16-55 in the data, silently, while the same records
    with a weight column of ones warned; session 74)."""
    if total >= 2 * BINS * noise_sd:
        return
    if not weighted:
        warnings.warn(
            f"The DP fit has {n} records, fewer than {2 * BINS} noise standard deviations ({noise_sd:.3g}) of the "
            "statistics release: its histograms are mostly noise, and the release may be far from the data. Use "
            "more records or raise 'epsilon' (or the 'statistics' share of 'budget_split'), and check the release "
            "with evaluate against a holdout before publishing it.",
            PrivacyWarning, stacklevel=5)  # the caller of fit
        return
    name = next((k for k in dp["bounds"] if k not in columns), "the weight column")  # clip_to_public: the only other
    warnings.warn(
        f"Weight column {name!r}: the weights over their public upper bound {dp['bounds'].get(name, (0, 0))[1]:g} "
        f"sum to about {total:.0f} (noisy) for {n} records, fewer than {2 * BINS} noise standard deviations "
        f"({noise_sd:.3g}) of the statistics release: each record counts its weight over the bound, so the DP fit "
        f"learns about as much as from {total:.0f} records and its histograms are mostly noise. Give the weight "
        "column an upper bound near the largest weight that can occur (or raise 'epsilon').",
        PrivacyWarning, stacklevel=5)  # the caller of fit


def _bin_variance() -> float:
    """A bin's count's noise variance over the release's (noise_sd^2): its cell over
    :data:`BIN_SHARE` and the sum of its sub-bins over ``sqrt(1 - BIN_SHARE^2)`` combined by their
    inverse variances."""
    return 1.0 / (BIN_SHARE ** 2 + (1.0 - BIN_SHARE ** 2) / SUB_BINS)


def sub_bin_shape(shape: np.ndarray, fine: np.ndarray, sd: float) -> np.ndarray:
    """Each bin's mass ``shape`` (B,) spread over its :data:`SUB_BINS` sub-bins (B * SUB_BINS,) as
    their noisy counts ``fine`` (noise standard deviation ``sd`` each) say, shrunk towards equal
    sub-bins by the factor ``1 - SUB_BIN_SHRINK (SUB_BINS - 1) sd^2 / S`` (at least 0; ``S``: the
    sum of the squared deviations of the bin's sub-bin counts from their mean): a bin holding many
    noise standard deviations (the body) takes its sub-bins' shape, one whose sub-bins differ by
    about the noise (a tail) stays flat. Negative sub-bin masses are set to 0 and the bin's mass
    kept. Post-processing of the release.

    Examples
    --------
    >>> sub_bin_shape(np.array([0.0, 400.0]), np.array([5., -3, 2, 0, 300, 60, 30, 10]), 10.0).round(1).tolist()
    [0.0, 0.0, 0.0, 0.0, 297.8, 60.4, 30.8, 11.0]
    >>> sub_bin_shape(np.array([40.0]), np.array([15., 2, 12, 11]), 10.0).tolist()   # noise: flat
    [10.0, 10.0, 10.0, 10.0]
    """
    shape = np.asarray(shape, dtype=float)
    f = np.asarray(fine, dtype=float).reshape(len(shape), SUB_BINS)
    dev = f - f.mean(axis=1, keepdims=True)
    ss = (dev ** 2).sum(axis=1, keepdims=True)
    keep = np.clip(1.0 - SUB_BIN_SHRINK * (SUB_BINS - 1) * sd ** 2 / np.maximum(ss, 1e-300), 0.0, 1.0)
    m = np.clip(shape[:, None] / SUB_BINS + keep * dev, 0.0, None)
    total = m.sum(axis=1, keepdims=True)
    out = np.where(total > 0, shape[:, None] * m / np.where(total > 0, total, 1.0), 0.0)
    return out.ravel()


def _even_share(cells: np.ndarray, entry: NumericLayout) -> np.ndarray:
    """What each point-mass candidate would hold without a heap: 0 for the bounds, 0 and every
    candidate of a continuous target (a value of a continuous distribution holds no mass), and for
    a round value of an integer target its bin's records over the integers in the bin, which the
    flow's density spreads evenly over them (dequantized); ``cells`` holds the candidates' counts,
    then the bins' (``entry``: the target's layout from :func:`histogram_rows`). A round value of an
    integer target is a point mass only when it holds more than that: cps1's ``educ`` as a target
    would get 12 (39% of the records, 23% in an even share of its bin of 2 years), its ``age`` not
    26 (3.6% against 3.5%), whose point masses would multiply the pattern table for nothing."""
    k, bins, share, home = len(entry.cand), entry.bins, entry.share, entry.home
    if not k or not np.isfinite(entry.integers).any():
        return np.zeros(k)
    counts, hist = cells[:k], cells[k:k + bins]
    in_bin = hist + np.bincount(home, weights=(1.0 - np.sqrt(1.0 - share ** 2)) * counts, minlength=bins)
    return np.where(entry.round, np.clip(in_bin[home], 0.0, None) / entry.integers, 0.0)


def bin_count(n: int, noise_sd: float) -> int:
    """Bins of a numeric histogram of ``n`` records (public) released with noise ``noise_sd``:
    :data:`BINS`, fewer (at least :data:`MIN_BINS`) when ``n / (2 * noise_sd)`` is below it, so
    that values spread over the bins hold about a noise standard deviation or more a bin.

    Examples
    --------
    >>> bin_count(12_794, 20.7), bin_count(1_284, 61.2), bin_count(100, 80.0)
    (32, 10, 8)
    """
    return int(np.clip(math.floor(n / (2.0 * max(noise_sd, 1e-12))), MIN_BINS, BINS))


def histogram_rows(synth: Synthesizer, data: pd.DataFrame, w: np.ndarray, dp: dict[str, Any],
                   schema: dict[str, VariableSpec], n_bins: int = BINS
                   ) -> tuple[sparse.csr_matrix, dict[str, NumericLayout | int]]:
    """Each record's contribution (N, cells; sparse) to the statistics release of ``synth``'s targets
    (``kinds_`` set; categorical encoders set in ``encoders_``), and each target's layout.

    A categorical target has a cell per public category; a numeric one a cell per point-mass
    candidate (declared point masses, else :func:`point_mass_candidates`: the public bounds, 0 and
    round values between them) and ``n_bins`` bins (:func:`bin_count`) of its values' logit between the public
    bounds (one more when the bounds straddle 0: the bin holding 0 is split there, so that no bin
    holds values of both signs), each cut into :data:`SUB_BINS` sub-bins. A record counts in each
    target's histogram with its weight ``w`` (the weight over its public bound, at most 1): wholly
    in its category's or candidate's cell; elsewhere ``BIN_SHARE * w`` in its bin and
    ``sqrt(1 - BIN_SHARE**2) * w`` in its sub-bin (an integer's spread over several, see
    :func:`_sub_bins`); at a round candidate ``ROUND_SHARE * w`` in the candidate's cell and
    ``sqrt(1 - ROUND_SHARE**2) * w`` split the same way. Each target's part of a record's row has
    L2 norm at most ``w`` (exactly ``w`` unless an integer's sub-bin part is spread), the row at
    most ``w * sqrt(number of targets)``: the release's sensitivity is sqrt(number of targets),
    however many candidates or sub-bins there are. A target's layout: its number of categories, or
    its :class:`NumericLayout`."""
    blocks, layout = [], {}
    n = len(data)
    for name in synth.target_vars:
        if synth.kinds_[name] == "categorical":
            cats = dp["categories"][name]
            order = in_dtype_order(data[name].dtype, list(cats))  # an ordered column keeps its order
            synth.encoders_[name] = CategoricalEncoder.from_dict(
                {"name": name, "categories": cats} if order is None else {"name": name, "categories": order,
                                                                          "ordered": True})
            cats = synth.encoders_[name].categories
            codes = np.asarray(synth.encoders_[name].states(data[name]))
            blocks.append(_one_cell(codes, w, len(cats)))
            layout[name] = len(cats)
            continue
        integer = synth.kinds_[name] == "integer"
        lo, hi = dp["bounds"][name]
        margin = 0.5 if integer else MARGIN * (hi - lo)
        seg = {"sign": 1, "lower": lo - margin, "upper": hi + margin, "transform": "logit", "scale": 1.0,
               "mean": 0.0, "std": 1.0, "tail_lo": None, "tail_hi": None}
        raw = ContinuousEncoder.from_dict({"name": name, "integer": integer, "point_masses": [], "segments": [seg]})
        x = data[name].to_numpy(float)
        # The transformed values' histogram on n_bins bins between the transforms of the bounds, the
        # bin holding 0 split there (a bin holds values of one sign: _dp_histogram's barrier).
        edges, raw_edges = _bin_edges(raw, lo, hi, n_bins)
        zero: tuple[int, ...] = ()  # the edge at 0, a barrier of the histogram's support
        if lo < 0 < hi:
            t_zero = float(raw.encode(np.zeros(1))[1][0])
            edges, at_t = np.unique(np.r_[edges, t_zero], return_index=True)
            raw_edges = np.r_[raw_edges, 0.0][at_t]
            zero = (int(np.searchsorted(edges, t_zero)),)
        declared = schema.get(name, VariableSpec()).point_masses
        if declared is not None:
            cand = sorted({float(v) for v in declared})  # within the bounds (check_dp_params)
            share = np.ones(len(cand))
        elif not getattr(synth, "_round_point_masses", True):  # a condition model (see _conditions)
            cand = sorted({float(lo), float(hi), *([0.0] if lo <= 0 <= hi else [])})
            share = np.ones(len(cand))
        else:
            cand = point_mass_candidates(lo, hi, raw_edges, integer)
            share = np.array([1.0 if v in (lo, hi, 0.0) else ROUND_SHARE for v in cand])
        t = raw.encode(x)[1]
        k, bins = len(cand), len(edges) - 1
        cell = k + np.clip(np.searchsorted(edges, t, side="right") - 1, 0, bins - 1)  # each record's bin
        at = np.full(len(x), -1)  # each record's candidate (-1: none)
        values = np.asarray(cand, dtype=float)
        if cand:  # a record at a candidate as its column holds it (a float32 column's top code 24.1 is 24.100000381...)
            stored = stored_at(values, dtype_precision(data[name].dtype))
            pos = np.clip(np.searchsorted(stored, x), 0, k - 1)
            at = np.where(stored[pos] == x, pos, -1)
        on = at >= 0
        a = np.where(on, share[np.maximum(at, 0)], 0.0)
        b = np.sqrt(1.0 - a ** 2)  # a record at no candidate counts wholly in its bin
        size = k + bins * (1 + SUB_BINS)
        sub_col, sub_share = _sub_bins(raw, edges, x, t, cell - k)
        fine = sparse.csr_matrix((((w * b * math.sqrt(1.0 - BIN_SHARE ** 2))[:, None] * sub_share).ravel(),
                                  (np.repeat(np.arange(n), SUB_BINS), (k + bins + sub_col).ravel())), shape=(n, size))
        fine.eliminate_zeros()
        blocks.append(_one_cell(np.where(on, at, -1), w * a, size)
                      + _one_cell(np.where(b > 0, cell, -1), w * b * BIN_SHARE, size) + fine)
        cand_t = raw.encode(values)[1] if cand else np.zeros(0)
        home = np.clip(np.searchsorted(edges, cand_t, side="right") - 1, 0, bins - 1)  # each candidate's bin
        sub_home = np.zeros((k, bins * SUB_BINS))
        if cand:
            cols, shares = _sub_bins(raw, edges, values, cand_t, home)
            sub_home[np.arange(k)[:, None], cols] = shares  # a candidate's SUB_BINS columns are distinct
        integers = np.full(k, np.inf)  # the integers in each candidate's bin (an integer target's)
        if integer and cand:
            integers = np.maximum(np.ceil(raw_edges[home + 1]) - np.ceil(raw_edges[home]), 1.0)
        layout[name] = NumericLayout(cand, cand_t, edges, seg, zero, share, integers, home, sub_home)
    rows = sparse.hstack(blocks, format="csr") if blocks else sparse.csr_matrix((n, 0))
    return rows, layout


def _bin_edges(raw: ContinuousEncoder, lo: float, hi: float, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``n_bins + 1`` edges of the statistics' histogram of a numeric target with public bounds
    ``[lo, hi]`` (``raw``: its logit encoder), in the transformed scale and as values: equally spaced
    in the transformed scale, the values at the bounds and (an even ``n_bins``) at the middle of the
    bounds exact, the transformed edges those of the values. The logit's bins are symmetric about
    the middle of the bounds, but the logit round trip misses it by a few ulps of the transformed
    scale (bounds (0, 10): 5.000000000000825); a round value there then counted in the bin below,
    whose roundest value (:func:`roundest`) was another, and was no point-mass candidate of either
    bin (a 30% heap at 5 released as none). A value at an edge is in the bin above it, as values
    and as transforms (the transform is monotone).

    Examples
    --------
    >>> raw = ContinuousEncoder.from_dict({"name": "y", "integer": False, "point_masses": [], "segments": [
    ...     {"sign": 1, "lower": -0.001, "upper": 10.001, "transform": "logit", "scale": 1.0, "mean": 0.0,
    ...      "std": 1.0, "tail_lo": None, "tail_hi": None}]})
    >>> t, values = _bin_edges(raw, 0.0, 10.0, 32)
    >>> values[[0, 16, 32]].tolist(), bool(raw.encode(np.array([5.0]))[1][0] >= t[16])
    ([0.0, 5.0, 10.0], True)
    """
    values = raw.segments[0].decode(np.linspace(*raw.encode(np.array([lo, hi]))[1], n_bins + 1))
    values[0], values[-1] = lo, hi
    if n_bins % 2 == 0:
        values[n_bins // 2] = (lo + hi) / 2
    return raw.encode(values)[1], values


def _sub_bins(raw: ContinuousEncoder, edges: np.ndarray, x: np.ndarray, t: np.ndarray, home: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
    """The sub-bins of each value's bin ``home`` (N,) as sub-bin indices (N, SUB_BINS) and the
    value's share in each (N, SUB_BINS; rows sum to 1): a continuous value's (transformed ``t``)
    wholly in the sub-bin holding it; an integer's spread as its dequantization interval ``x +-
    0.5`` overlaps them (the bins are cut in the transformed scale, the overlap measured in the
    value's: the dequantization noise is uniform there). The sub-bins' counts of the release are
    so those of the values the flow is trained on, without a random draw."""
    cols = home[:, None] * SUB_BINS + np.arange(SUB_BINS)
    lo_e, width = edges[home], np.diff(edges)[home]
    at = np.clip(np.floor((t - lo_e) / width * SUB_BINS), 0, SUB_BINS - 1).astype(np.int64)
    share = (np.arange(SUB_BINS) == at[:, None]).astype(float)
    if raw.integer:
        raw_edges = raw.segments[0].decode(_sub_edges(edges))
        overlap = np.clip(np.minimum(raw_edges[cols + 1], x[:, None] + 0.5)
                          - np.maximum(raw_edges[cols], x[:, None] - 0.5), 0.0, None)
        total = overlap.sum(axis=1, keepdims=True)
        share = np.where(total > 0, overlap / np.where(total > 0, total, 1.0), share)
    return cols, share


def _one_cell(cell: np.ndarray, w: np.ndarray, cells: int) -> sparse.csr_matrix:
    """(N, cells) sparse: record i's weight in column ``cell[i]`` (no entry where ``cell[i]`` is not a cell)."""
    ok = (cell >= 0) & (cell < cells)
    rows = np.flatnonzero(ok)
    return sparse.csr_matrix((np.asarray(w, dtype=float)[rows], (rows, np.asarray(cell)[rows].astype(np.int64))),
                             shape=(len(cell), cells))


def roundest(a: float, b: float, integer: bool = False) -> float | None:
    """The roundest number in ``[a, b)`` (``None`` when there is none; an integer for an integer
    column): a multiple of the largest power of ten that has one there, preferring multiples of 5
    and then of 2 of that power, then the smallest in magnitude.

    Examples
    --------
    >>> roundest(33.6, 47.4), roundest(1612.0, 2490.0), roundest(30_500.0, 51_000.0), roundest(0.31, 0.38)
    (40.0, 2000.0, 50000.0, 0.35)
    >>> roundest(10.2, 10.9, integer=True) is None
    True
    """
    if not (math.isfinite(a) and math.isfinite(b)) or b <= a:
        return None
    top = math.floor(math.log10(max(abs(a), abs(b), 1e-300))) + 1
    for e in range(top, (0 if integer else top - 15) - 1, -1):
        unit = 10.0 ** e
        ks = range(math.ceil(a / unit - 1e-9), math.ceil(b / unit - 1e-9))
        inside = [k for k in ks if a <= float(f"{k}e{e}") < b]
        if inside:
            k = min(inside, key=lambda k: (k % 5 != 0, k % 2 != 0, abs(k)))
            return float(f"{k}e{e}")
    return None


def point_mass_candidates(lo: float, hi: float, raw_edges: np.ndarray, integer: bool = False) -> list[float]:
    """The values that may become point masses of a numeric DP target with public bounds
    ``[lo, hi]`` and no declared point masses: the bounds (top and bottom codes), 0 when inside
    them, and in every bin of the statistics' histogram (``raw_edges``, its edges as values) that
    holds none of these, the bin's :func:`roundest` value. Real values heap at round numbers (40
    hours a week, 2,000 hours a year, incomes in ten thousands). The candidates come from the
    public bounds alone, so choosing them spends no budget. A record at a round candidate counts
    :data:`ROUND_SHARE` in the candidate's cell and the rest (in L2 norm) in its bin, so the
    release's sensitivity is unchanged; a candidate that is not made a point mass goes back to its
    bin, whose noise variance it raises by a quarter (at most one round candidate a bin). A
    candidate becomes a point mass when its noisy count passes :func:`point_mass_z` noise standard
    deviations and ``point_mass_threshold`` of the total (for an integer target, beyond an even
    share of its bin: :func:`_even_share`).

    Examples
    --------
    >>> point_mass_candidates(0, 99, np.array([0.0, 20.5, 33.6, 47.4, 61.0, 99.0]))
    [0.0, 30.0, 40.0, 50.0, 80.0, 99.0]
    """
    base = {float(lo), float(hi), *([0.0] if lo <= 0 <= hi else [])}
    out = set(base)
    for a, b in zip(raw_edges[:-1], raw_edges[1:]):
        if any(a <= v < b for v in base):
            continue
        v = roundest(float(a), float(b), integer)
        if v is not None and lo < v < hi:
            out.add(v)
    return sorted(out)


def point_mass_z(candidates: int) -> float:
    """Noise standard deviations an undeclared candidate's noisy count must reach to be a point mass,
    among ``candidates`` of a target: :data:`POINT_MASS_Z`, raised so that noise alone makes a point
    mass of at most one in :data:`FALSE_POINT_MASS` ** -1 targets (a Bonferroni bound over the
    candidates; a spurious point mass draws records to a value no record holds).

    Examples
    --------
    >>> point_mass_z(2), round(point_mass_z(61), 2), round(point_mass_z(101), 2)
    (3.0, 3.82, 3.95)
    """
    return float(max(POINT_MASS_Z, ndtri(1.0 - FALSE_POINT_MASS / max(int(candidates), 1))))


def _fit_pattern_table(synth: Synthesizer, found: dict[str, Any], layout: dict[str, NumericLayout | int]) -> None:
    """Drops, lightest first, point masses at round values (:func:`point_mass_candidates`, neither a
    bound nor 0 nor declared) while the targets' state combinations exceed the pattern table's
    :data:`~._layout._MAX_PATTERNS` (``found``: per numeric target its noisy cells and the indices
    of its point masses, changed in place; per categorical target its cells). Post-processing: the
    dropped candidates' counts go back to the histogram's bins."""
    from ._layout import _MAX_PATTERNS

    def states(name: str) -> int:
        return len(found[name]) if synth.kinds_[name] == "categorical" else len(found[name][1]) + 1

    droppable = []  # (noisy count, target, candidate index)
    for name, entry in found.items():
        if synth.kinds_[name] == "categorical":
            continue
        cells, keep = entry
        droppable += [(float(cells[i]), name, i) for i in keep if layout[name].round[i]]
    droppable.sort(key=lambda d: (d[0], d[1], d[2]))
    while droppable and float(np.prod([states(n) for n in found], dtype=float)) > _MAX_PATTERNS:
        _, name, i = droppable.pop(0)
        found[name][1].remove(i)


def gaussian_release(sums: np.ndarray, release: dict, rng: np.random.Generator) -> np.ndarray:
    """``sums`` plus independent Gaussian noise of standard deviation ``noise_multiplier *
    sensitivity`` (``release``, from :func:`._dp_plan.plan`) in every cell: the Gaussian
    mechanism, whose privacy the accountant computes from the noise multiplier alone."""
    return sums + rng.normal(0.0, release["noise_multiplier"] * release["sensitivity"], size=sums.shape)


def _shares(counts: np.ndarray) -> np.ndarray:
    """Noisy counts as shares (each at least 1e-3 before normalising)."""
    c = np.clip(counts, 0.0, None)
    c = c / c.sum() if c.sum() > 0 else np.full(len(c), 1.0 / len(c))
    c = np.maximum(c, 1e-3)
    return c / c.sum()


def output_layer(head: torch.nn.Module) -> torch.nn.Module:
    """The output layer of a conditional pattern head (its last module with a bias)."""
    return [m for m in head.modules() if hasattr(m, "bias") and isinstance(m.bias, torch.Tensor)][-1]


def init_prior(synth: Synthesizer, shares: dict[str, np.ndarray]) -> None:
    """Starts the pattern head at the product of the noisy marginal shares of the states (the
    logits of an unconditional head; the output bias of a conditional one, whose output weights
    start at 0): post-processing of the
    statistics, so a head that DP-SGD moves little still draws point masses and categories about as
    often as the data holds them."""
    head = synth.model_.head
    if head is None:
        return
    logp = np.zeros(len(synth.patterns_))
    for m, name in enumerate(synth.discrete_vars_):
        logp += np.log(shares[name][synth.patterns_[:, m]])
    prior = torch.as_tensor(logp - logp.max(), dtype=torch.float32)
    with torch.no_grad():
        if isinstance(head, Logits):
            head.logits.copy_(prior)
        else:
            last = output_layer(head)
            last.weight.zero_()  # every condition starts at the prior; training adds the dependence
            last.bias.copy_(prior)
