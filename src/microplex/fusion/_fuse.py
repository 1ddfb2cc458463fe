"""Statistical matching by conditional synthesis: :func:`fuse` and :class:`FusionResult`."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._errors import DataValidationError
from .._params import check_bool, check_float, check_int, check_names, check_seed
from .._random import holdout_split, int_seed
from .._stats import unseen_categories, weighted_mode
from ..synthesis import Synthesizer
from ..synthesis._dp import DP_PARAMS
from ..synthesis._validation import (check_allocation, check_column, check_numbers_as_objects, check_numbers_as_text,
                                     check_reserved, complete_rows)
from ._plan import DIFFERENCE_THRESHOLD, FusionStep, _plan, _resolve  # noqa: F401 - re-exported
from ._source import Source, is_categorical
from ._report import AUX_FLAG, bounds_table, holdout_scores

__all__ = ["fuse", "FusionResult", "FusionStep"]

logger = logging.getLogger(__name__)


@dataclass
class FusionResult:
    """Creates the result of :func:`fuse`.

    Attributes
    ----------
    data : DataFrame
        Base records with every imputed column; with ``n_imputations > 1``, one stacked copy of the
        base per imputation, numbered in the ``_imputation`` column.
    diagnostics : DataFrame
        One row per imputed variable: ``donor``, ``predictors``, ``auxiliary`` and held-out fit
        scores on donor records not used for fitting (``ks`` or ``tvd`` between imputed and true
        values, ``point_mass_error``, ``missing_error`` (the missing share's, a numeric variable's: its ``ks``
        compares the values given), ``max_corr_error`` over the other numeric variables of the
        donor, ``corr_true_imputed``, the block's mean held-out log-likelihood ``log_lik``) of
        the model fit on the other ``n_fit`` records (before the refit, see ``fuse``).
    shared_comparison : DataFrame
        Per donor and shared variable: weighted standardized mean difference and KS (numeric) or
        total variation distance (categorical) between donor and base (or the earlier donor for
        chained predictors), computed before fusing.
    bounds : DataFrame
        Per pair of numeric variables never observed together: ``lower``, ``cia`` and ``upper``
        correlations compatible with the data given the donor model's predictors that both sources observe
        (``shared``; see
        :func:`~microplex.fusion.diagnostics.correlation_bounds`), the correlation in the fused data
        (``fused``, with the base weights; the mean over the imputations) and, when the auxiliary source
        observes both, there (``auxiliary``).
    steps : list of FusionStep
    models : dict of str to Synthesizer
        Fitted donor model of every step, by donor name.
    n_imputations : int
    base_index : Index or None
        The base source's index: :meth:`imputations` gives every completed base this index (``data`` of
        several imputations is numbered 0, 1, ... through the stacked copies).
    """

    data: pd.DataFrame
    diagnostics: pd.DataFrame
    shared_comparison: pd.DataFrame
    bounds: pd.DataFrame
    steps: list[FusionStep] = field(default_factory=list)
    models: dict[str, Synthesizer] = field(default_factory=dict, repr=False)
    n_imputations: int = 1
    base_index: pd.Index | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return (f"FusionResult(n_records={len(self.data)}, n_imputations={self.n_imputations}, "
                f"imputed={[v for s in self.steps for v in s.block]!r})")

    def imputations(self) -> list[pd.DataFrame]:
        """The completed base once per imputation (without the ``_imputation`` column), each indexed like the
        base source, so that an imputation joins back to the base records by index (the stacked ``data``
        numbers its rows 0, 1, ... through the copies; imputations taken from it had labels N, N+1, ... for
        the second copy, and a join to the base paired wrong records or none). Raises
        :class:`~microplex.DataValidationError` when ``data`` no longer holds one base-sized copy per
        imputation (filtered after :func:`fuse`)."""
        if "_imputation" not in self.data.columns:  # a copy, as every imputation is: editing it leaves data as it is
            return [self.data.copy()]
        parts = [g.drop(columns="_imputation") for _, g in self.data.groupby("_imputation", sort=True)]
        if self.base_index is None:
            return parts
        sizes = sorted({len(g) for g in parts})
        if sizes != [len(self.base_index)]:
            raise DataValidationError(
                f"FusionResult.data holds {sizes} rows per imputation, the base source {len(self.base_index)}: the "
                "imputations cannot be indexed like the base records (was data filtered or changed after fuse?)."
            )
        return [g.set_axis(self.base_index) for g in parts]

    def pool(self, statistic: Callable[[pd.DataFrame], float]) -> dict[str, float]:
        """Combines a statistic over the imputations (Rubin's rules, point estimate and between part).

        Parameters
        ----------
        statistic : callable
            Maps one completed base to a number.

        Returns
        -------
        dict
            ``estimate`` (mean over imputations), ``between_variance`` (variance over imputations,
            0 with one imputation) and ``added_variance`` ``(1 + 1/m) * between_variance``, the part
            of the total variance that fusion adds to the within-imputation variance.
        """
        values = np.array([float(statistic(d)) for d in self.imputations()])
        between = float(values.var(ddof=1)) if len(values) > 1 else 0.0
        return {"estimate": float(values.mean()), "between_variance": between,
                "added_variance": (1 + 1 / len(values)) * between}


def _complete_rows(frame: pd.DataFrame, columns: list[str], source: str) -> pd.DataFrame:
    """The records with every one of ``columns`` observed, the others left out with a warning (an auxiliary
    source's records, whose model takes no missing value): where a value is missing because the variable does not
    apply (hours of those not working), the model fitted on the rest imputes it for every base record."""
    return complete_rows(frame, columns, f"Source {source!r}", (
        "are not used by fuse; where a variable does not apply to them, fuse imputes it for base records it may "
        "not apply to either. Give them a value first."))


def _model_params(params: Mapping[str, Any] | None, columns: list[str], n_imputations: int = 1) -> dict[str, Any]:
    """The donor model's Synthesizer parameters: ``params``, with the schema of ``columns`` only and, with several
    imputations, independent draws unless ``params`` sets ``sampling`` (stratified draws spread one imputation's
    draws evenly over the records: its statistics vary less across imputations than independent draws' do, and
    ``FusionResult.pool`` understated the between-imputation variance, about half for the mean of cps1's re78)."""
    out = {"verbose": False, **dict(params or {})}
    if n_imputations > 1:
        out.setdefault("sampling", "independent")
    for key in ("target_vars", "condition_vars"):
        if key in out:
            raise DataValidationError(f"'synthesizer_params' cannot set {key!r}; fuse chooses it per donor.")
    if out.get("schema"):
        out["schema"] = {k: v for k, v in out["schema"].items() if k in columns}
    return out


def _fit_model(block: list[str], conditions: list[str], params: dict[str, Any], train: pd.DataFrame,
               w_col: str, seed: int, donor: Source | None = None) -> Synthesizer:
    """Fits a donor model: P(block | conditions) on the donor's weighted records; errors name the donor."""
    try:
        return Synthesizer(block, conditions, **params).fit(train, weight_col=w_col, seed=seed)
    except DataValidationError as exc:
        if donor is None:
            raise
        weights = repr(donor.weight_col) if donor.weight_col else "(uniform weights)"
        raise DataValidationError(
            f"Fitting the model of donor {donor.name!r} ({len(train)} records): "
            + str(exc).replace(repr(w_col), weights)
        ) from None


#: Column names fuse uses internally: no source may have a column so named.
RESERVED = ("__weight__", AUX_FLAG, "_imputation")
_MODEL_KEYS = tuple(k for k in Synthesizer(["_"]).get_params()
                    if k not in ("target_vars", "condition_vars", "condition_model"))


def _check_synthesizer_params(params: Any) -> dict[str, Any] | None:
    """``synthesizer_params`` checked with the Synthesizer's own checks, before any fitting."""
    if params is None:
        return None
    if not isinstance(params, Mapping) or not all(isinstance(k, str) for k in params):
        raise DataValidationError(
            f"The 'synthesizer_params' parameter must be a mapping of Synthesizer parameters or None. Got {params!r:.80} instead."
        )
    for key in ("target_vars", "condition_vars"):
        if key in params:
            raise DataValidationError(f"'synthesizer_params' cannot set {key!r}; fuse chooses it per donor.")
    if "condition_model" in params:
        raise DataValidationError("'synthesizer_params' cannot set 'condition_model': fuse draws each donor block "
                                  "given the base records' own values, so no model of the conditions is used.")
    private = [k for k in params if k in DP_PARAMS]
    if private:
        raise DataValidationError(
            f"The 'synthesizer_params' parameter sets {private}: fuse cannot fit its donor models with differential "
            "privacy (they are fitted on overlapping records with no accountant composing them, and the fused file "
            "keeps the base source's own records)."
        )
    unknown = sorted(set(params) - set(_MODEL_KEYS))
    if unknown:
        raise DataValidationError(
            f"The 'synthesizer_params' parameter has unknown keys {unknown}; expected keys among {list(_MODEL_KEYS)}."
        )
    probe = {k: v for k, v in params.items() if k != "schema"}
    Synthesizer(["_"], **probe)._check_params()
    if params.get("schema") is not None:  # an empty schema checked on a placeholder target (no targets: refused
        # as "'target_vars' must be a non-empty list", a parameter fuse sets itself)
        schema = params["schema"]
        Synthesizer((list(schema) if isinstance(schema, Mapping) else []) or ["_"], schema=schema)._check_params()
    return dict(params)


def _declared_categorical(params: Mapping[str, Any] | None) -> frozenset[str]:
    """The columns that ``params`` (the checked ``synthesizer_params``) declare categorical in their schema."""
    return frozenset(n for n, spec in ((params or {}).get("schema") or {}).items() if spec.kind == "categorical")


def _check_sources(sources: list[Source], params: Mapping[str, Any] | None = None) -> None:
    """Refuses reserved column names and columns microplex cannot model, naming source and column; numbers in a
    column of dtype object only where ``params`` (the checked ``synthesizer_params``) do not declare it categorical."""
    declared = _declared_categorical(params)
    for src in sources:
        check_reserved(src.variables, f"Source {src.name!r}: columns", RESERVED)
        for col in src.variables:
            check_column(src.data[col].dropna(), col, f"source {src.name!r}")
            check_numbers_as_text(src.data[col], col, f"source {src.name!r}")
            if col not in declared:
                check_numbers_as_objects(src.data[col], col, f"source {src.name!r}")


def _check_categories_fitted(needed: pd.Series, fitted: pd.Series, col: str, where: str, donor: Source,
                             how: str, hint: str) -> None:
    """Refuses categories of ``needed`` that the donor model of ``donor`` would never see (``fitted``)."""
    lost = unseen_categories(needed.dropna(), pd.unique(fitted))
    if lost:
        raise DataValidationError(
            f"Shared column {col!r}: categories {sorted(map(str, lost))[:10]} of {where} do not occur in donor "
            f"{donor.name!r} {how}, so its model would never see them; {hint}."
        )


def _with_auxiliary(train: pd.DataFrame, donor: Source, aux: Source, step: FusionStep, w_col: str,
                    categorical: Collection[str] = ()):
    """Stacks donor and auxiliary records; donor records get the auxiliary weighted mean / weighted mode
    (categories, and the number codes named in ``categorical``: a mean code such as 2.6 is no category; the
    category of the largest weight total, ties broken by the first in sorted order, see
    :func:`~microplex._stats.weighted_mode`) as a placeholder for the recipient variables they lack and
    ``_auxiliary = 0``."""
    cols = list(step.predictors) + list(step.block) + list(step.auxiliary)
    a = _complete_rows(aux.data.assign(**{w_col: aux.weights}), cols, aux.name)[cols + [w_col]].copy()
    a[w_col] = a[w_col] / a[w_col].mean() * train[w_col].mean()
    a[AUX_FLAG] = 1.0
    d = train.copy()
    fill = {}
    for c in step.auxiliary:
        fill[c] = (weighted_mode(a[c], a[w_col].to_numpy(float)) if is_categorical(a[c], categorical)
                   else float(np.average(a[c].to_numpy(float), weights=a[w_col])))
        d[c] = fill[c]
    d[AUX_FLAG] = 0.0
    return pd.concat([d[cols + [w_col, AUX_FLAG]], a[cols + [w_col, AUX_FLAG]]], ignore_index=True), fill


def fuse(
    sources: Sequence[Source],
    base: str | Source,
    shared: Sequence[str] | None = None,
    rename: Mapping[str, Mapping[str, Any]] | None = None,
    n_imputations: int = 1,
    seed: int = 0,
    synthesizer_params: Mapping[str, Any] | None = None,
    auxiliary: Source | None = None,
    *,
    holdout_fraction: float = 0.2,
    refit: bool = True,
) -> FusionResult:
    """Fuses several sources into one file: the base records with every other source's variables.

    Each other source (a donor) contributes the block of variables that the records gathered so
    far lack. A conditional :class:`~microplex.Synthesizer` learns P(block | predictors) from the
    donor's weighted records, jointly over the block (zeros, top codes and categories as point
    masses), and draws the block for every base record. Donors are used in the order of
    ``sources``; with more than two sources the chain conditions later donors also on the
    variables imputed from earlier ones when they observe them.

    The association between variables never observed together is not identified: it is carried
    only through the predictors (the conditional-independence assumption, CIA). ``bounds`` shows
    the range of correlations compatible with the data; an ``auxiliary`` source observing both
    blocks informs it.

    Parameters
    ----------
    sources : list of Source
        At least two sources with distinct names.
    base : str or Source
        The source whose records are kept (one of ``sources``).
    shared : list of str, default=None
        Predictor variables common to the base and every donor. ``None`` uses every column a donor
        has in common with the base (and with earlier donors).
    rename : dict, default=None
        Per source name, ``{"columns": {old: new}, "categories": {column: {old: new}},
        "scale": {column: factor}}``, applied before anything else.
    n_imputations : int, default=1
        Number of imputations (independent draws of every block; chains are drawn per imputation). With
        more than one, the donor models draw with ``sampling="independent"`` unless ``synthesizer_params``
        sets ``sampling`` (``"stratified"`` then warns: ``pool`` understates the between-imputation variance).
    seed : int or None, default=0
        Seeds hold-out splits, model fitting and draws (the same bytes for the same seed); ``None``: fresh
        entropy, different draws on every call.
    synthesizer_params : dict, default=None
        Keyword arguments of :class:`~microplex.Synthesizer` (``epochs``, ``flow``, ``schema``, ...).
    auxiliary : Source, default=None
        Records observing a donor block together with its predictors and recipient variables. The
        donor model is then fit on donor plus auxiliary records and also conditions on the recipient
        variables the auxiliary source has, with a ``_auxiliary`` indicator: donor records carry it
        as 0 and the auxiliary weighted mean (weighted mode: the category of the largest weight total, ties
        broken by the first in sorted order) in place of those variables, auxiliary records carry 1 and
        their values; base records are imputed as 1 with their own values. Auxiliary weights are
        rescaled to the donor's mean weight.
    holdout_fraction : float, default=0.2
        Share of donor records held out of fitting to compute the fit scores of ``diagnostics``,
        drawn among its records of positive weight (those of weight 0 count in no score; 0 fits
        on every record and leaves the scores empty).
    refit : bool, default=True
        After scoring, refit each donor model on all its records (twice the fitting time) for the
        imputation; ``False`` imputes with the model fit without the held-out records.

    Returns
    -------
    FusionResult

    Raises
    ------
    DataValidationError
        Naming the source and column: no shared variable, shared variables with incompatible types
        or base categories the donor lacks (also when the donor has them only on records with a
        missing value, or only on the records held out for the scores, or with another type, e.g.
        ``True`` and ``"True"``; likewise categories an earlier donor imputes that a later donor
        conditioning on them lacks), a donor column that every record misses, missing values in the base's
        predictors where the donor has none (or drawn by an earlier donor where a later one conditioning on them
        has none), a base that is not one of the sources, differential-privacy parameters in
        ``synthesizer_params``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=400)
    >>> a = Source(pd.DataFrame({"x": x[:200], "y": x[:200] + rng.normal(size=200)}), "a")
    >>> b = Source(pd.DataFrame({"x": x[200:], "z": 2 * x[200:] + rng.normal(size=200)}), "b")
    >>> result = fuse([a, b], base="a", synthesizer_params={"epochs": 2})
    >>> list(result.data.columns)
    ['x', 'y', 'z']
    >>> result.diagnostics[["variable", "donor"]].to_dict("records")
    [{'variable': 'z', 'donor': 'b'}]
    >>> result.bounds[["y", "z", "shared"]].to_dict("records")
    [{'y': 'z', 'z': 'y', 'shared': ('x',)}]
    """
    n_imputations = check_int(n_imputations, "n_imputations", low=1)
    seed = check_seed(seed, "seed")
    holdout_fraction = check_float(holdout_fraction, "holdout_fraction", low=0.0, high=1.0, high_inclusive=False)
    refit = check_bool(refit, "refit")
    if shared is not None:
        shared = check_names(shared, "shared", allow_empty=False)
    if rename is not None and not isinstance(rename, Mapping):
        raise DataValidationError(f"The 'rename' parameter must be a mapping of source names or None. Got {rename!r:.80} instead.")
    synthesizer_params = _check_synthesizer_params(synthesizer_params)
    if n_imputations > 1 and (synthesizer_params or {}).get("sampling") == "stratified":
        warnings.warn(
            f"synthesizer_params sets sampling='stratified' with n_imputations={n_imputations}: each imputation's "
            "draws are spread evenly over the base records, so the imputations are not independent draws and "
            "FusionResult.pool understates the between-imputation variance (about half for a mean). Leave "
            "'sampling' out (independent draws) to pool the imputations.", UserWarning, stacklevel=2)
    sources, base_src, aux = _resolve(sources, base, auxiliary, rename)
    _check_sources(sources + ([aux] if aux is not None else []), synthesizer_params)
    n_columns = len(base_src.data.columns) + sum(len(s.variables) for s in sources) + 1
    check_allocation(16.0 * len(base_src.data) * n_imputations * n_columns,
                     f"The fused data ({len(base_src.data):,} base records x {n_imputations} imputations)",
                     "Use fewer imputations.")
    # number codes the schema declares categorical are modelled as categories: the reports score them so too
    declared = _declared_categorical(synthesizer_params)
    steps, comparison = _plan(sources, base_src, shared, aux, declared)
    by_name = {s.name: s for s in sources}
    ss = np.random.SeedSequence(seed)
    step_seeds = ss.spawn(len(steps))
    draw_seeds = ss.spawn(int(n_imputations))

    models: dict[str, Synthesizer] = {}
    fills: dict[str, dict[str, Any]] = {}
    # the records each donor model was fitted on (its draws take their categories), and the donor that imputes each block variable: a later donor
    # conditioning on an imputed category it never observed failed after fitting, naming no source
    fitted_on: dict[str, pd.DataFrame] = {}
    drawn_from: dict[str, str] = {}
    scores: list[dict[str, Any]] = []
    w_col = "__weight__"
    for step, s_seed in zip(steps, step_seeds):
        donor = by_name[step.donor]
        split_seed, fit_seed, score_seed = (int_seed(c) for c in s_seed.spawn(3))
        cols = list(step.predictors) + list(step.block)
        frame = donor.data.assign(**{w_col: donor.weights})
        empty = [c for c in cols if donor.data[c].isna().all()]
        # missing values are modelled (a state of the block's variables, an input of the predictors'), and a value
        # missing where it does not apply is imputed so (fuse refuses differential privacy: no record is left out)
        frame = frame[cols + [w_col]].reset_index(drop=True)
        if empty:
            raise DataValidationError(f"Donor {donor.name!r} has no value of {empty} (every record misses them); drop "
                                      "those columns from it.")
        # held out among the records of positive weight (a held-out part of weight 0 only left the scores undefined)
        order, n_hold = holdout_split(frame[w_col].to_numpy(dtype=float), holdout_fraction,
                                      np.random.default_rng(split_seed))
        hold, train = frame.iloc[order[:n_hold]], frame.iloc[order[n_hold:]]
        for c in step.predictors if not step.auxiliary else ():  # auxiliary records may add categories
            if c in base_src.variables and is_categorical(base_src.data[c], declared):
                _check_categories_fitted(base_src.data[c], frame[c], c, f"base {base_src.name!r}", donor,
                                         "in any record",
                                         "drop those base records or map the categories with 'rename'")
            elif c in drawn_from and is_categorical(fitted_on[drawn_from[c]][c], declared):  # imputed earlier
                _check_categories_fitted(fitted_on[drawn_from[c]][c], frame[c], c,
                                         f"donor {drawn_from[c]!r}, whose model imputes it,", donor,
                                         "in any record",
                                         "drop its records with those categories from the earlier donor or map them "
                                         "with 'rename'")
            if n_hold and is_categorical(frame[c], declared):
                _check_categories_fitted(hold[c], train[c], c, f"the records held out to score the model (holdout_"
                                         f"fraction={holdout_fraction}, seed={seed})", donor, "among its other records",
                                         "pass holdout_fraction=0 (no scores) or another seed")
        conditions = list(step.predictors)
        fill: dict[str, Any] = {}
        if step.auxiliary:
            train, fill = _with_auxiliary(train, donor, aux, step, w_col, declared)
            conditions += list(step.auxiliary) + [AUX_FLAG]
        params = _model_params(synthesizer_params, list(step.block) + conditions, n_imputations)
        logger.info("Fitting donor %r: %s given %s on %d records.", donor.name, list(step.block), conditions, len(train))
        model = _fit_model(list(step.block), conditions, params, train, w_col, fit_seed, donor)
        fitted_on[donor.name] = train
        if n_hold:
            scores += [{**r, "n_fit": len(train)} for r in holdout_scores(model, hold, step, w_col, score_seed, fill,
                                                                               declared)]
            if refit:
                full = _with_auxiliary(frame, donor, aux, step, w_col, declared)[0] if step.auxiliary else frame
                logger.info("Refitting donor %r on all %d records.", donor.name, len(full))
                model = _fit_model(list(step.block), conditions, params, full, w_col, fit_seed, donor)
                fitted_on[donor.name] = full
        models[donor.name], fills[donor.name] = model, fill
        drawn_from.update(dict.fromkeys(step.block, donor.name))
        if not n_hold:
            scores += [{"variable": v, "donor": step.donor, "predictors": step.predictors,
                        "auxiliary": step.auxiliary, "n_fit": len(train), "n_holdout": 0} for v in step.block]

    base_frame = base_src.data
    for step in steps:  # a base predictor's missing values, where the donor model has none to learn from
        model = models[step.donor]
        bad = [c for c in step.predictors if c in base_frame.columns and base_frame[c].isna().any()
               and c not in model.condition_encoder_.missing]
        if bad:
            raise DataValidationError(
                f"Base source {base_src.name!r} has missing values in predictors "
                f"{ {c: int(base_frame[c].isna().sum()) for c in bad} } of donor {step.donor!r}, whose records have "
                "none there (its model learnt nothing of them); drop or impute those records before fusing.")
    completed = []
    for i, d_seed in enumerate(draw_seeds):
        cur = base_frame.copy()
        for step, g_seed in zip(steps, d_seed.spawn(len(steps))):
            model = models[step.donor]
            cond = cur[[c for c in model.condition_vars if c != AUX_FLAG]].copy()
            if step.auxiliary:
                cond[AUX_FLAG] = 1.0
            bad = [c for c in cond.columns if cond[c].isna().any() and c not in model.condition_encoder_.missing]
            if bad:  # drawn missing by an earlier donor (the base's own were checked above)
                raise DataValidationError(
                    f"Donors {sorted({drawn_from[c] for c in bad})} draw missing values of {bad} (their records miss "
                    f"some), which donor {step.donor!r}, conditioning on them, has none of (its model learnt nothing "
                    "of them); give the donors' missing values a value, or fuse without that chain ('shared').")
            out = model.generate(cond, seed=int_seed(g_seed))
            for v in step.block:
                cur[v] = out[v].set_axis(cur.index)  # keeps the donor's dtype (category, Int64, string)
        if n_imputations > 1:
            cur["_imputation"] = i
        completed.append(cur)
    data = pd.concat(completed, ignore_index=True) if n_imputations > 1 else completed[0]
    columns = ["variable", "donor", "predictors", "auxiliary", "kind", "n_fit", "n_holdout", "ks", "tvd",
               "point_mass_error", "missing_error", "max_corr_error", "corr_true_imputed", "agreement", "log_lik"]
    diagnostics = pd.DataFrame(scores).reindex(columns=columns)
    bounds = bounds_table(sources, base_src, steps, aux, data, declared)
    return FusionResult(data, diagnostics, comparison, bounds, steps, models, int(n_imputations), base_frame.index)
