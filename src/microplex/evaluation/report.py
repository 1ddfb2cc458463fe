"""``evaluate``: assembles fidelity, privacy and calibration diagnostics into one report."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import __version__
from .._errors import DataValidationError
from .._estimator import DEPRECATED, deprecated_random_state
from .._params import check_bool, check_names, named, shown
from . import calibration as cal
from . import metrics as m
from ._validation import check_weights, check_columns, check_frames, integer_columns, is_numeric, numeric_frame
from .privacy import _summary_and_distances
from . import _verdict, registry

__all__ = ["EvaluationReport", "evaluate", "fidelity_scores", "METRIC_DIRECTION"]

logger = logging.getLogger(__name__)

#: Whether a lower or a higher value of each metric is better (read from the registry, :data:`.registry.METRICS`).
METRIC_DIRECTION: dict[str, str] = registry.metric_direction()

_COLUMNS = ["metric", "variable", "subgroup", "value"]


@dataclass
class EvaluationReport:
    """Result of :func:`evaluate`.

    Attributes
    ----------
    scores : pandas.DataFrame
        Tidy table with columns ``metric``, ``variable``, ``subgroup``, ``value``
        (``variable`` is a column, a pair ``"a|b"`` or ``"all"``; ``subgroup`` is ``"all"`` or a
        condition cell such as ``"educ=12"``).
    real_df, synthetic_df : pandas.DataFrame
        The compared columns (weights removed).
    real_weights, synthetic_weights : ndarray
        Weights used (ones when none were given).
    conditions : list of str
        Conditioning variables.
    point_masses : dict of str to DataFrame
        :func:`~microplex.evaluation.metrics.point_mass_errors` per numeric column.
    calibration : pandas.DataFrame or None
        :func:`~microplex.evaluation.calibration.achieved_vs_target` table when targets were given.
    weights_summary : pandas.Series or None
        :func:`~microplex.evaluation.calibration.weight_summary` of the synthetic weights.
    privacy : dict or None
        :func:`~microplex.evaluation.privacy.privacy_summary` when a holdout was given.
    dcr_distances : dict of str to ndarray or None
        The distances to the closest training record that ``privacy`` was computed from
        (``"synthetic"``, ``"holdout"``; each side subsampled to at most 5,000 records by ``seed``):
        the HTML report plots these, so its histogram shows the records of the figures, whatever the
        seed (with ``seed=None`` a second draw would be another subsample).
    floor : pandas.DataFrame or None
        The real-vs-real floor when a holdout was given: the holdout scored against the real
        records (same columns as ``scores``; no pMSE). The report judges each score against it.
    provenance : dict
        microplex version, date (UTC), seed, record counts and seconds of :func:`evaluate`.
    heldout : pandas.DataFrame or None
        Held-out cells by population (:func:`~microplex.evaluation.areas.heldout_errors`), set by the
        caller (the pipeline's ``evaluate.heldout``); the report then has a held-out section.
    areas : list of str
        Area columns of ``heldout`` plotted in that section, one sorted dot plot each.
    fusion_bounds : pandas.DataFrame or None
        The correlation bounds of a fusion (:attr:`~microplex.fusion.FusionResult.bounds`) of the training
        records, set by the caller (the pipeline's [fuse] stage); the report then has a *Fusion bounds* section.
    attacks : dict or None
        With ``attacks=True``: ``membership_auc`` (:func:`~microplex.evaluation.attacks.membership_auc`)
        and, per sensitive column, the :func:`~microplex.evaluation.attacks.attribute_disclosure`
        figures from ``quasi_identifiers`` (``{"membership_auc": float, "membership_rows": dict,
        "attribute_disclosure": {column: dict}, "quasi_identifiers": list}``; ``membership_rows``: the
        members and non-members the AUC scored, :func:`~microplex.evaluation.attacks.membership_rows`).
        The HTML report shows them in its privacy section and judges them in its verdict.
    """

    scores: pd.DataFrame
    real_df: pd.DataFrame
    synthetic_df: pd.DataFrame
    real_weights: np.ndarray
    synthetic_weights: np.ndarray
    conditions: list[str] = field(default_factory=list)
    point_masses: dict[str, pd.DataFrame] = field(default_factory=dict)
    calibration: pd.DataFrame | None = None
    weights_summary: pd.Series | None = None
    privacy: dict[str, float] | None = None
    holdout_df: pd.DataFrame | None = None
    floor: pd.DataFrame | None = None
    provenance: dict[str, object] = field(default_factory=dict)
    attacks: dict[str, Any] | None = None
    heldout: pd.DataFrame | None = None
    areas: list[str] = field(default_factory=list)
    fusion_bounds: pd.DataFrame | None = None
    dcr_distances: dict[str, np.ndarray] | None = None

    def summary(self) -> pd.DataFrame:
        """Returns the overall scores (subgroup ``"all"``) as a variable x metric table."""
        s = self.scores[self.scores["subgroup"] == "all"]
        return s.pivot_table(index="variable", columns="metric", values="value", aggfunc="first", sort=False)

    def score(self, metric: str, variable: str = "all", subgroup: str = "all") -> float:
        """Returns one score value (NaN when absent)."""
        s = self.scores
        hit = s[(s["metric"] == metric) & (s["variable"] == variable) & (s["subgroup"] == subgroup)]
        return float(hit["value"].iloc[0]) if len(hit) else float("nan")

    def to_html(self, path: str | Path, *, title: str = "microplex evaluation report", model: object = None,
                provenance: Mapping[str, object] | None = None) -> Path:
        """Writes the report as one self-contained HTML file (plots embedded as PNG) and returns its path.

        ``model`` (the fitted estimator) adds its settings, epochs run and training records to the
        header; ``provenance`` adds any other line, e.g. ``{"fit seed": 0, "generate seed": 1}``. A ``path``
        that is a device, pipe or socket (``/dev/null``) raises a DataValidationError: the rename of the
        finished report onto it would replace it.
        """
        from .._files import temp_beside
        from ..io import check_replaceable
        from ._html import render_html

        import os

        path = check_replaceable(Path(path), "path")
        text = render_html(self, title=title, model=model, provenance=provenance)
        tmp = temp_beside(path)  # named as every temporary, so a killed pipeline's is removed by the next run
        try:
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, path)  # never a half-written report
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        logger.info("Wrote evaluation report to %s", path)
        return path


def fidelity_scores(
    real_df: pd.DataFrame,
    synthetic_df: pd.DataFrame,
    real_weights: object = None,
    synthetic_weights: object = None,
    *,
    conditions: Sequence[str] = (),
    quantiles: Sequence[float] = m.DEFAULT_QUANTILES,
    pairs: bool = True,
    pmse: bool = True,
    seed: int | None = 0,
    random_state: int | None | str = DEPRECATED,
    _tick: Callable[[str], None] | None = None,
    _integers: Sequence[str] = (),
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Computes the fidelity scores of :func:`evaluate` for frames holding the same columns.

    Returns
    -------
    (scores, point_masses) : (pandas.DataFrame, dict)
        The tidy score table and the point-mass table of each numeric column.
    """
    tick = _tick or (lambda step: None)
    check_bool(pairs, "pairs")
    check_bool(pmse, "pmse")
    seed = deprecated_random_state(seed, random_state, "fidelity_scores")
    if not isinstance(real_df, pd.DataFrame):
        raise DataValidationError(f"real_df must be a pandas DataFrame: got {type(real_df).__name__}.")
    columns = list(real_df.columns)
    check_frames(real_df, synthetic_df, columns)
    conditions = check_names(list(conditions), "conditions")
    # conditions held as integers on both sides (``_integers``: so held before evaluate's numeric_frame) label
    # their subgroups i=0, also where numeric_frame reads them as float64 (Int64 with missing values)
    integers = [*_integers, *integer_columns([c for c in conditions if c in columns], real_df, synthetic_df)]
    real_df, synthetic_df = numeric_frame(real_df[columns]), numeric_frame(synthetic_df[columns])
    wr = check_weights(real_weights, len(real_df), "real weights")
    ws = check_weights(synthetic_weights, len(synthetic_df), "synthetic weights")
    rows: list[tuple[str, str, str, float]] = []
    masses: dict[str, pd.DataFrame] = {}
    for c in columns:
        r, s = real_df[c], synthetic_df[c]
        for label, x, w in (("real_df", r, wr), ("synthetic_df", s, ws)):
            if not w[x.notna().to_numpy()].sum() > 0:
                raise DataValidationError(
                    f"Column {c!r}: the weights of its non-missing values in {label} sum to 0, so its distribution "
                    "there is undefined: expected some positive weight on a non-missing value."
                )
        ctx: dict[str, Any] = {"quantiles": quantiles}
        for entry in registry.column_metrics(is_numeric(r)):
            rows.extend(entry.rows(entry.name, c, r, s, wr, ws, ctx))
        if "point_masses" in ctx:
            masses[c] = ctx["point_masses"]
        tick(str(c))
    ctx = {"columns": columns, "numeric": [c for c in columns if is_numeric(real_df[c])], "conditions": conditions,
           "integers": integers, "pairs": pairs, "pmse": pmse, "seed": seed}
    for entry in registry.METRICS:
        if entry.kind == "frame" and entry.rows is not None:
            rows.extend(entry.rows(entry.name, real_df, synthetic_df, wr, ws, ctx))
            tick(entry.name)
    for metric, variable, _, value in rows:
        if not np.isfinite(value):  # e.g. a distance between values near the float64 limit overflows
            raise DataValidationError(
                f"The {metric!r} score of {variable!r} is not a finite number ({value}): its values are too "
                "large to compare in float64; rescale the column (e.g. to thousands)."
            )
    return pd.DataFrame(rows, columns=_COLUMNS), masses


def _weights_from(df: pd.DataFrame, col: str | None, label: str) -> np.ndarray | None:
    if col is None:
        return None
    if col not in df.columns:
        raise DataValidationError(f"Weight column {col!r} is not in {label}: got columns {list(df.columns)}.")
    if not is_numeric(df[col]):
        raise DataValidationError(f"Weight column {col!r} in {label} must be numeric: got dtype {df[col].dtype}.")
    return check_weights(df[col].to_numpy(dtype=float, na_value=np.nan), len(df), f"{label}[{col!r}]")


def evaluate(
    real_df: pd.DataFrame,
    synthetic_df: pd.DataFrame,
    weight_col: str | None = None,
    synthetic_weight_col: str | None = None,
    targets: Mapping[object, float] | Any | None = None,
    holdout_df: pd.DataFrame | None = None,
    conditions: Sequence[str] | None = None,
    *,
    pmse: bool = True,
    seed: int | None = 0,
    random_state: int | None | str = DEPRECATED,
    attacks: bool = False,
    quasi_identifiers: Sequence[str] | None = None,
    sensitive: Sequence[str] | None = None,
    progress: bool = True,
) -> EvaluationReport:
    """Evaluates a synthetic (or reweighted) file against the real data it stands for.

    Parameters
    ----------
    real_df : pandas.DataFrame
        Real (training) records.
    synthetic_df : pandas.DataFrame
        Synthetic records with the same columns (plus its weight column, if any).
    weight_col : str, default=None
        Weight column of ``real_df`` (and of ``holdout_df``); equal weights when None.
    synthetic_weight_col : str, default=None
        Weight column of ``synthetic_df``; equal weights when None.
    targets : Targets or mapping, default=None
        Calibration targets checked on the weighted synthetic file: a
        :class:`~microplex.calibration.Targets` (any filter, count, sum or mean), or a mapping
        ``{"col": total}`` for the weighted sum of a column, ``{("col", level): count}`` for a
        weighted count. A target no synthetic record matches achieves 0 (relative error -1): it is
        measured, not refused as a calibrator refuses it; conditions that exclude each other are refused.
    holdout_df : pandas.DataFrame, default=None
        Real records not used for training; enables the privacy diagnostics.
    conditions : sequence of str, default=None
        Conditioning variables; every other column is scored within their subgroups.
    pmse : bool, default=True
        Whether to fit the propensity classifier for the pMSE.
    seed : int or None, default=0
        Seeds subsampling and the classifier folds.
    random_state : int or None
        Deprecated name of ``seed`` (a ``FutureWarning``; giving both raises).
    attacks : bool, default=False
        Run the attacks of :mod:`microplex.evaluation.attacks` (needs ``holdout_df``): the
        membership-inference AUC (row ``membership_auc``) and, when there are quasi-identifiers,
        attribute disclosure of each sensitive column (rows ``disco_synthetic``,
        ``disco_holdout``, ``attribution_synthetic``, ``attribution_holdout``, with the column as
        ``variable``). Weighted by ``weight_col`` (training and holdout) and
        ``synthetic_weight_col``.
    quasi_identifiers : sequence of str, default=None
        Columns an attacker knows; ``conditions`` when None. Empty: no attribute disclosure.
    sensitive : sequence of str, default=None
        Columns whose disclosure is measured; every column but the quasi-identifiers when None.
        When given, it must name at least one column and there must be quasi-identifiers.
    progress : bool, default=True
        Show a progress bar (one step per column and per whole-file metric, then the calibration
        check, the privacy check, the attacks and the real-vs-real floor); the command line hides
        it with ``-q``.

    Returns
    -------
    EvaluationReport

    Warns
    -----
    PrivacyRiskWarning
        As :func:`~microplex.evaluation.privacy.privacy_summary`: synthetic records closer to the
        training records than the holdout's, or a holdout that holds training records.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> real = pd.DataFrame({"age": rng.integers(20, 60, 500), "income": rng.lognormal(10, 1, 500)})
    >>> rep = evaluate(real, real.copy(), conditions=["age"], pmse=False, progress=False)
    >>> rep.score("ks", "income")
    0.0
    >>> list(rep.scores.columns)
    ['metric', 'variable', 'subgroup', 'value']
    """
    started, clock = datetime.now(timezone.utc), time.perf_counter()
    if not isinstance(real_df, pd.DataFrame) or not isinstance(synthetic_df, pd.DataFrame):
        raise DataValidationError(
            f"real_df and synthetic_df must be pandas DataFrames: got {type(real_df).__name__} and {type(synthetic_df).__name__}."
        )
    if holdout_df is not None and not isinstance(holdout_df, pd.DataFrame):
        raise DataValidationError(f"holdout_df must be a pandas DataFrame or None: got {type(holdout_df).__name__}.")
    for name, value in (("weight_col", weight_col), ("synthetic_weight_col", synthetic_weight_col)):
        if value is not None and (not isinstance(value, str) or not value):
            raise DataValidationError(f"The {name!r} parameter must be a column name (str) or None. Got {value!r} instead.")
    pmse = check_bool(pmse, "pmse")
    progress = check_bool(progress, "progress")
    if check_bool(attacks, "attacks") and holdout_df is None:
        raise DataValidationError("attacks=True needs holdout_df: the attacks are judged against fresh records.")
    if not attacks and (quasi_identifiers is not None or sensitive is not None):
        raise DataValidationError("'quasi_identifiers' and 'sensitive' are the attacks' settings: pass attacks=True.")
    seed = deprecated_random_state(seed, random_state, "evaluate")
    if conditions is not None:
        conditions = check_names(conditions, "conditions")
    _check_targets(targets)
    for label, df in (("real_df", real_df), ("synthetic_df", synthetic_df), ("holdout_df", holdout_df)):
        if df is not None:
            check_columns(df, label)
    if synthetic_weight_col is not None and synthetic_weight_col in real_df.columns and synthetic_weight_col != weight_col:
        raise DataValidationError(
            f"The synthetic weight column {synthetic_weight_col!r} is also a column of real_df, where it would be "
            f"scored as a variable: rename it or pass {shown('weight_col')}={synthetic_weight_col!r}."
        )
    wr = _weights_from(real_df, weight_col, "real_df")
    ws = _weights_from(synthetic_df, synthetic_weight_col, "synthetic_df")
    columns = [c for c in real_df.columns if c != weight_col]
    extra = [c for c in synthetic_df.columns if c not in columns and c != synthetic_weight_col]
    if extra and extra[0] == weight_col:
        raise DataValidationError(
            f"Column {weight_col!r} of synthetic_df is real_df's weight column ({shown('weight_col')}={weight_col!r}), "
            f"but {shown('synthetic_weight_col')} is {synthetic_weight_col!r}: pass "
            f"{shown('synthetic_weight_col')}={weight_col!r} to weight "
            "the synthetic records by it, or drop it from synthetic_df."
        )
    if extra:
        raise DataValidationError(
            f"Column {extra[0]!r} is in synthetic_df but not in real_df: expected columns {columns}, "
            f"got {[c for c in synthetic_df.columns if c != synthetic_weight_col]}."
        )
    conditions = list(conditions or [])
    for c in conditions:
        if c not in columns:
            raise DataValidationError(f"Condition {c!r} is not a column of real_df: expected one of {columns}.")
    if attacks:
        quasi_identifiers, sensitive = _attack_columns(quasi_identifiers, sensitive, conditions, columns)
    check_frames(real_df, synthetic_df, columns)
    if holdout_df is not None:
        check_frames(real_df, holdout_df, columns, name="holdout_df")
    real = numeric_frame(real_df[columns].reset_index(drop=True))
    synth = numeric_frame(synthetic_df[columns].reset_index(drop=True))
    bar = _progress_bar(progress, len(columns), holdout_df is not None, attacks, targets is not None)
    scores, masses = fidelity_scores(real, synth, wr, ws, conditions=conditions, pmse=pmse, seed=seed, _tick=bar,
                                     _integers=integer_columns(conditions, real_df, synthetic_df))
    rows = []
    wr_arr = check_weights(wr, len(real), "real weights")
    ws_arr = check_weights(ws, len(synth), "synthetic weights")
    calib = wsum = None
    if ws is not None or targets:
        wsum = cal.weight_summary(ws_arr)
        rows += [("kish_ess", synthetic_weight_col or "weights", "all", wsum["kish_ess"]),
                 ("design_effect", synthetic_weight_col or "weights", "all", wsum["design_effect"])]
    if targets is not None:
        bar("calibration")
    if targets is not None and not isinstance(targets, Mapping):
        achieved, wanted = _calibration_totals(synthetic_df, ws_arr, targets)
        calib = cal.achieved_vs_target(achieved, wanted)
        rows += [("calibration_rel_error", name, "all", abs(float(e))) for name, e in calib["rel_error"].items()]
    elif targets:
        achieved = cal.weighted_totals(synth, ws_arr, list(targets.keys()))
        calib = cal.achieved_vs_target(achieved, dict(targets))
        rows += [("calibration_rel_error", name, "all", abs(float(e))) for name, e in calib["rel_error"].items()]
    priv = distances = None
    holdout = None
    if holdout_df is not None:
        holdout = numeric_frame(holdout_df[columns].reset_index(drop=True))
        bar("privacy")
        # privacy_summary's figures, with the distances behind them: the report plots those very records
        priv, d_syn, d_hol = _summary_and_distances(real, synth, holdout, seed=seed)
        distances = {"synthetic": d_syn, "holdout": d_hol}
        rows += [(k, "all", "all", v) for k, v in priv.items()]
    found = None
    if attacks:
        bar("attacks")
        found, attack_rows = _attacks(real, synth, holdout, holdout_df, weight_col, wr, ws, quasi_identifiers,
                                      sensitive, seed)
        rows += attack_rows
    if rows:
        scores = pd.concat([scores, pd.DataFrame(rows, columns=_COLUMNS)], ignore_index=True)
    floor = None
    if holdout is not None:
        wh = _weights_from(holdout_df, weight_col, "holdout_df")  # as the attacks: the floor compares weighted with weighted
        floor = _verdict.floor_scores(real, holdout, wr, wh, conditions, seed, tick=lambda step: bar(f"floor: {step}"),
                                      integers=integer_columns(conditions, real_df, holdout_df))
    bar.close()
    return EvaluationReport(
        scores=scores,
        real_df=real,
        synthetic_df=synth,
        real_weights=wr_arr,
        synthetic_weights=ws_arr,
        conditions=conditions,
        point_masses=masses,
        calibration=calib,
        weights_summary=wsum,
        privacy=priv,
        holdout_df=holdout,
        floor=floor,
        provenance={"microplex": __version__, "evaluated": started.strftime("%Y-%m-%d %H:%M UTC"), "seed": seed,
                    "real records": len(real), "synthetic records": len(synth),
                    "holdout records": None if holdout is None else len(holdout),
                    "evaluate seconds": round(time.perf_counter() - clock, 1)},
        attacks=found,
        dcr_distances=distances,
    )


class _Bar:
    """The progress bar of :func:`evaluate`: ``bar(step)`` names the step just done; a no-op when hidden."""

    def __init__(self, show: bool, total: int) -> None:
        from tqdm.auto import tqdm

        self._bar = tqdm(total=total, desc="evaluate", unit="step", disable=not show, leave=True)

    def __call__(self, step: str) -> None:
        self._bar.set_postfix_str(step[:40], refresh=False)
        self._bar.update(1)

    def close(self) -> None:
        self._bar.n = self._bar.total  # the steps a metric skipped (e.g. no conditions) count as done
        self._bar.set_postfix_str("done", refresh=False)
        self._bar.close()


def _progress_bar(show: bool, n_columns: int, holdout: bool, attacks: bool, targets: bool) -> _Bar:
    frames = sum(e.kind == "frame" and e.rows is not None for e in registry.METRICS)
    total = (n_columns + frames) * (2 if holdout else 1) + holdout + attacks + targets
    return _Bar(show, total)


def _attack_columns(quasi: Sequence[str] | None, sensitive: Sequence[str] | None, conditions: list[str],
                    columns: list[str]) -> tuple[list[str], list[str]]:
    """The quasi-identifiers and sensitive columns of ``evaluate(..., attacks=True)``, checked.

    Quasi-identifiers default to the conditions, sensitive columns to every other column. Sensitive
    columns given without any quasi-identifier are refused: attribute disclosure reads a sensitive
    value off the released records that share a record's quasi-identifiers.
    """
    quasi = check_names(quasi, "quasi_identifiers") if quasi is not None else list(conditions)
    if sensitive is not None:
        sensitive = check_names(sensitive, "sensitive", allow_empty=False)
        if not quasi:
            raise DataValidationError(
                f"{named('sensitive')} ({sensitive}) needs quasi-identifiers: attribute disclosure reads each "
                "sensitive value off the released records that share a record's quasi-identifiers, and there are "
                f"none. Pass {shown('quasi_identifiers')!r} (they default to {shown('conditions')!r})."
            )
    else:
        sensitive = [c for c in columns if c not in quasi]
    for label, names in (("quasi_identifiers", quasi), ("sensitive", sensitive)):
        unknown = [c for c in names if c not in columns]
        if unknown:
            raise DataValidationError(f"{named(label)} names columns {unknown} that are not scored: {columns}.")
    both = [c for c in sensitive if c in quasi]  # refused by attribute_disclosure too, after the whole evaluation
    if both:
        raise DataValidationError(f"The sensitive column {both[0]!r} cannot also be a quasi-identifier.")
    return quasi, sensitive


def _attacks(real: pd.DataFrame, synth: pd.DataFrame, holdout: pd.DataFrame | None, holdout_df: pd.DataFrame | None,
             weight_col: str | None, wr: np.ndarray | None, ws: np.ndarray | None, quasi: list[str],
             sensitive: list[str], seed: int | None) -> tuple[dict, list]:
    """The attacks of ``evaluate(..., attacks=True)`` (columns checked by :func:`_attack_columns`): their
    results and their score rows."""
    from . import attacks

    wh = _weights_from(holdout_df, weight_col, "holdout_df")
    auc = attacks.membership_auc(real, synth, holdout, train_weights=wr, holdout_weights=wh, seed=seed)
    scored = attacks.membership_rows(check_weights(wr, len(real), "real weights"),
                                     check_weights(wh, len(holdout), "holdout weights"))
    found: dict[str, Any] = {"membership_auc": auc, "membership_rows": scored, "attribute_disclosure": {},
                             "quasi_identifiers": quasi}
    rows = [("membership_auc", "all", "all", auc)]
    for col in sensitive if quasi else []:
        out = attacks.attribute_disclosure(real, synth, holdout, quasi, col, train_weights=wr,
                                           synthetic_weights=ws, holdout_weights=wh)
        found["attribute_disclosure"][col] = out
        rows += [(k, col, "all", v) for k, v in out.items()]
    return found, rows


def _check_targets(targets: Any) -> None:
    """A mapping of targets must name columns (or ``(column, level)``) and give finite numbers."""
    if targets is None or not isinstance(targets, Mapping):
        return
    for key, value in targets.items():
        ok_key = isinstance(key, str) and key or (isinstance(key, tuple) and len(key) == 2 and isinstance(key[0], str))
        if not ok_key:
            raise DataValidationError(
                f"Target {key!r} must be a column name (str) or a (column, level) pair."
            )
        if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.integer | np.floating) or not np.isfinite(value):
            raise DataValidationError(f"Target {key!r} must be a finite number. Got {value!r} instead.")


def _calibration_totals(records: pd.DataFrame, weights: np.ndarray, targets: Any) -> tuple[dict, dict]:
    """Achieved and wanted totals of calibration ``Targets`` under ``weights`` (names as keys); a target no record
    matches achieves 0 (relative error -1), a measurement of the records, not an error in them."""
    from ..calibration.calibrator import as_targets, target_report
    from ..calibration.design import unit_design

    # the design on unit weights, the totals under ``weights``: a record of weight 0 (sparse weights on every
    # candidate) adds nothing, where the design's weight check refused it naming the internal column. Without the
    # calibrators' reach check: a sample of a population (evaluate.max_rows) misses its rare cells
    design = unit_design(records, as_targets(targets))
    table = target_report(design, np.asarray(weights, dtype=float))
    return dict(zip(table["target"], table["achieved"])), dict(zip(table["target"], table["value"]))
