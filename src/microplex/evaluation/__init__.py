"""Evaluation of synthetic and calibrated microdata: fidelity, privacy and calibration diagnostics.

Metrics are small pure functions of (data, weights) in :mod:`.metrics`, :mod:`.privacy` and
:mod:`.calibration`, built on the weighted statistics of :mod:`microplex._stats`. The registry
(:mod:`.registry`, :data:`METRICS`) lists each metric once with its function, direction and kind;
:func:`fidelity_scores`, :data:`METRIC_DIRECTION`, the HTML report and the benchmarks read it, so
adding a metric is one registration. :func:`evaluate` assembles the scores into an
:class:`EvaluationReport` with a tidy score table and a self-contained HTML rendering.
"""

from __future__ import annotations

from . import attacks, calibration, metrics, privacy, registry
from .calibration import achieved_vs_target, design_effect, kish_ess, weight_summary, weighted_totals
from .metrics import (
    contingency_similarity,
    correlation_max_abs_error,
    ks_statistic,
    pmse,
    point_mass_errors,
    quantile_errors,
    subgroup_ks,
    tv_complement,
    wasserstein,
)
from .attacks import attribute_disclosure, membership_auc
from .privacy import PrivacyRiskWarning, dcr, exact_copy_rate, privacy_summary
from .registry import METRICS, Metric
from .report import METRIC_DIRECTION, EvaluationReport, evaluate, fidelity_scores

__all__ = [
    "METRICS",
    "METRIC_DIRECTION",
    "Metric",
    "EvaluationReport",
    "PrivacyRiskWarning",
    "achieved_vs_target",
    "attacks",
    "attribute_disclosure",
    "calibration",
    "contingency_similarity",
    "correlation_max_abs_error",
    "dcr",
    "design_effect",
    "evaluate",
    "exact_copy_rate",
    "fidelity_scores",
    "kish_ess",
    "membership_auc",
    "ks_statistic",
    "metrics",
    "pmse",
    "point_mass_errors",
    "privacy",
    "privacy_summary",
    "quantile_errors",
    "registry",
    "subgroup_ks",
    "tv_complement",
    "wasserstein",
    "weight_summary",
    "weighted_totals",
]
