"""The metric registry: one table of (name, function, direction, kind) that the score table, the
HTML report and the benchmarks loop over.

Adding a metric is one registration: write the function (a pure function of data and weights,
in :mod:`.metrics` or :mod:`microplex._stats`) and append a :class:`Metric` to :data:`METRICS`.
:func:`~microplex.evaluation.fidelity_scores` computes every ``"column"`` and ``"frame"`` metric,
:data:`~microplex.evaluation.METRIC_DIRECTION` and the report's overview are read from the table.

Kinds
-----
``"column"``
    One value per variable: ``function(real, synthetic, real_weights, synthetic_weights)`` on one
    column (``applies`` says for which columns: ``"numeric"``, ``"categorical"`` or ``"any"``).
``"frame"``
    Values over several columns (correlations, contingency tables, subgroups, pMSE).
``"weights"``, ``"calibration"``, ``"privacy"``
    Computed by :func:`~microplex.evaluation.evaluate` from the weights, the targets or a holdout.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .. import _stats
from . import attacks
from . import calibration as cal
from . import metrics as m
from . import privacy as priv

__all__ = ["Metric", "METRICS", "metric", "column_metrics", "metric_direction"]

#: One score row: (metric, variable, subgroup, value).
Row = tuple[str, str, str, float]


@dataclass(frozen=True)
class Metric:
    """One registered metric.

    Attributes
    ----------
    name : str
        The ``metric`` of its rows in the score table.
    function : callable
        The function that computes it (what a benchmark calls on its own data).
    direction : {"lower", "higher"} or None
        Whether a lower or a higher value is better; ``None`` for a reference figure that is not
        ranked (e.g. the holdout's own distance to the training records).
    kind : {"column", "frame", "weights", "calibration", "privacy"}
        What it is computed on (see the module docstring).
    applies : {"numeric", "categorical", "any"}
        For ``"column"`` metrics: the columns it is computed for.
    rows : callable or None
        How :func:`fidelity_scores` turns the function into rows: ``rows(real, synthetic, wr, ws,
        ctx)`` yields ``(metric, variable, subgroup, value)``; ``None`` for a metric whose rows another
        metric emits (``emitted_by``) or that :func:`evaluate` computes.
    emitted_by : str or None
        The metric whose computation also yields this one's rows (one computation, two metrics).
    """

    name: str
    function: Callable[..., Any]
    direction: str | None
    kind: str
    applies: str = "any"
    rows: Callable[..., Iterator[Row]] | None = field(default=None, repr=False)
    emitted_by: str | None = None


def _column(fn: Callable[..., Any]) -> Callable[..., Iterator[Row]]:
    """Rows of a column metric whose function returns one number (``None``: no row)."""

    def rows(name: str, col: str, r: pd.Series, s: pd.Series, wr: np.ndarray, ws: np.ndarray, ctx: dict) -> Iterator[Row]:
        value = fn(r, s, wr, ws, ctx)
        if value is not None:
            yield name, col, "all", float(value)

    return rows


def _missing_share_error(r: pd.Series, s: pd.Series, wr: np.ndarray, ws: np.ndarray) -> float:
    """|weighted share missing in ``r`` - in ``s``|."""
    miss_r = float(np.sum(wr * r.isna().to_numpy()) / wr.sum())
    miss_s = float(np.sum(ws * s.isna().to_numpy()) / ws.sum())
    return abs(miss_r - miss_s)


def _point_masses(r, s, wr, ws, ctx) -> pd.DataFrame:
    """The point-mass table of the column, computed once for both point-mass metrics."""
    if "point_masses" not in ctx:
        ctx["point_masses"] = m.point_mass_errors(r, s, wr, ws)
    return ctx["point_masses"]


def _zero_share_error(r, s, wr, ws, ctx) -> float | None:
    pm = _point_masses(r, s, wr, ws, ctx)
    zero = pm.loc[pm["value"] == 0.0, "abs_error"]
    return float(zero.iloc[0]) if len(zero) else None


def _point_mass_max_error(r, s, wr, ws, ctx) -> float:
    pm = _point_masses(r, s, wr, ws, ctx)
    return float(pm["abs_error"].max()) if len(pm) else 0.0


def _round_share_error(r, s, wr, ws, ctx) -> float:
    """The worst level's |real - synthetic| share of round values (:func:`~.metrics.round_share_errors`)."""
    return float(m.round_share_errors(r, s, wr, ws)["abs_error"].max())


def quantile_metric(q: float) -> str:
    """The score-table name of the quantile error at probability ``q`` (``quantile_error_p50``)."""
    return f"quantile_error_p{q * 100:g}"


def _quantile_rows(name, col, r, s, wr, ws, ctx) -> Iterator[Row]:
    qe = m.quantile_errors(r, s, wr, ws, quantiles=ctx["quantiles"])
    yield from ((quantile_metric(q), col, "all", float(v)) for q, v in qe.items())
    yield name, col, "all", float(qe.max())


def _correlation_rows(method: str) -> Callable[..., Iterator[Row]]:
    def rows(name, real_df, synthetic_df, wr, ws, ctx) -> Iterator[Row]:
        numeric = ctx["numeric"]
        if len(numeric) >= 2:
            value = m.correlation_max_abs_error(real_df[numeric], synthetic_df[numeric], wr, ws, method=method)
            yield name, "all", "all", value

    return rows


def _contingency_rows(name, real_df, synthetic_df, wr, ws, ctx) -> Iterator[Row]:
    columns = ctx["columns"]
    if not ctx["pairs"] or len(columns) < 2:
        return
    sims = []
    for a, b in itertools.combinations(columns, 2):
        v = m.contingency_similarity(real_df, synthetic_df, [a, b], wr, ws)
        sims.append(v)
        yield name, f"{a}|{b}", "all", v
    yield name, "all", "all", float(np.mean(sims))


def _whole_labels(labels: pd.Series, by: str, *columns: pd.Series) -> pd.Series:
    """Subgroup ``labels`` of a condition ``by`` that the frames held as integers, read as float64 (a nullable
    ``Int64`` column with missing values: :func:`._validation.numeric_frame`): ``by=1.0`` as ``by=1``, as an
    int64 column's subgroups read (``columns``: ``by`` in each frame, whose values the labels name)."""
    values = pd.unique(np.concatenate([c.dropna().to_numpy() for c in columns]))
    whole = {f"{by}={v}": f"{by}={int(v)}" for v in values if isinstance(v, float) and float(v).is_integer()}
    return labels.replace(whole)


def _subgroup_rows(name, real_df, synthetic_df, wr, ws, ctx) -> Iterator[Row]:
    conditions = ctx["conditions"]
    for v in [c for c in ctx["columns"] if c not in conditions]:
        for by in conditions:
            sub = m.subgroup_ks(real_df, synthetic_df, v, by, wr, ws)
            if by in ctx.get("integers", ()):
                sub["subgroup"] = _whole_labels(sub["subgroup"], by, real_df[by], synthetic_df[by])
            yield from ((name, v, g, float(d)) for g, d in zip(sub["subgroup"], sub["distance"]))
            if len(sub):
                yield "subgroup_ks_mean", v, f"by {by}", float(np.average(sub["distance"], weights=sub["real_share"]))


def _pmse_rows(name, real_df, synthetic_df, wr, ws, ctx) -> Iterator[Row]:
    if ctx["pmse"]:
        yield name, "all", "all", m.pmse(real_df, synthetic_df, wr, ws, seed=ctx["seed"])


def _calibration_rel_error(achieved: object, targets: object) -> pd.Series:
    """|relative error| of each achieved total against its target."""
    return cal.achieved_vs_target(achieved, targets)["rel_error"].abs()


def _plain(fn: Callable[..., Any]) -> Callable[..., Any]:
    return lambda r, s, wr, ws, ctx: fn(r, s, wr, ws)


#: The registered metrics, in the order of their rows in the score table.
METRICS: tuple[Metric, ...] = (
    Metric("missing_share_error", _missing_share_error, "lower", "column", "any", _column(_plain(_missing_share_error))),
    Metric("ks", m.ks_statistic, "lower", "column", "numeric", _column(_plain(m.ks_statistic))),
    Metric("wasserstein_scaled", lambda r, s, wr=None, ws=None: m.wasserstein(r, s, wr, ws, scale=True), "lower",
           "column", "numeric", _column(lambda r, s, wr, ws, ctx: m.wasserstein(r, s, wr, ws, scale=True))),
    Metric("zero_share_error", m.point_mass_errors, "lower", "column", "numeric", _column(_zero_share_error)),
    Metric("point_mass_max_error", m.point_mass_errors, "lower", "column", "numeric", _column(_point_mass_max_error)),
    Metric("quantile_error_max", m.quantile_errors, "lower", "column", "numeric", _quantile_rows),
    Metric("round_share_error", m.round_share_errors, "lower", "column", "numeric", _column(_round_share_error)),
    Metric("tv_complement", m.tv_complement, "higher", "column", "categorical", _column(_plain(m.tv_complement))),
    Metric("correlation_max_abs_error", m.correlation_max_abs_error, "lower", "frame", rows=_correlation_rows("pearson")),
    Metric("spearman_max_abs_error", m.correlation_max_abs_error, "lower", "frame", rows=_correlation_rows("spearman")),
    Metric("contingency_similarity", m.contingency_similarity, "higher", "frame", rows=_contingency_rows),
    Metric("subgroup_ks", m.subgroup_ks, "lower", "frame", rows=_subgroup_rows),
    Metric("subgroup_ks_mean", m.subgroup_ks, "lower", "frame", emitted_by="subgroup_ks"),
    Metric("pmse", m.pmse, "lower", "frame", rows=_pmse_rows),
    Metric("kish_ess", _stats.kish_ess, "higher", "weights"),
    Metric("design_effect", _stats.design_effect, "lower", "weights"),
    Metric("calibration_rel_error", _calibration_rel_error, "lower", "calibration"),
    Metric("dcr_ratio", priv.privacy_summary, "higher", "privacy"),
    Metric("dcr_close_share", priv.privacy_summary, "lower", "privacy"),
    Metric("dcr_close_share_holdout", priv.privacy_summary, None, "privacy"),
    Metric("exact_copy_rate_synthetic", priv.privacy_summary, "lower", "privacy"),
    Metric("exact_copy_rate_holdout", priv.privacy_summary, None, "privacy"),
    Metric("dcr_synthetic_median", priv.privacy_summary, None, "privacy"),
    Metric("dcr_holdout_median", priv.privacy_summary, None, "privacy"),
    # attacks (evaluate(..., attacks=True)): 0.5 is no membership signal; the holdout rows are the baseline
    Metric("membership_auc", attacks.membership_auc, "lower", "privacy"),
    Metric("disco_synthetic", attacks.attribute_disclosure, "lower", "privacy"),
    Metric("disco_holdout", attacks.attribute_disclosure, None, "privacy"),
    Metric("attribution_synthetic", attacks.attribute_disclosure, "lower", "privacy"),
    Metric("attribution_holdout", attacks.attribute_disclosure, None, "privacy"),
)


def metric(name: str) -> Metric:
    """The registered metric called ``name``.

    Examples
    --------
    >>> metric("ks").direction
    'lower'
    """
    for entry in METRICS:
        if entry.name == name:
            return entry
    raise KeyError(f"No metric named {name!r}: registered are {[e.name for e in METRICS]}.")


def column_metrics(numeric: bool) -> list[Metric]:
    """The per-variable metrics computed for a numeric (or a categorical) column."""
    want = ("numeric" if numeric else "categorical", "any")
    return [e for e in METRICS if e.kind == "column" and e.applies in want]


def metric_direction() -> dict[str, str]:
    """``{name: "lower" | "higher"}`` for every registered metric that is ranked."""
    return {e.name: e.direction for e in METRICS if e.direction is not None}
