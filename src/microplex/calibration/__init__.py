"""Calibration: reweight records to official targets (counts, sums, means) at any geography.

Re-exports the public API; see :class:`Calibrator`, :class:`Targets` and :mod:`.distances`.
"""

from __future__ import annotations

from .calibrator import CalibrationResult, Calibrator
from .consistency import check_consistency
from .diagnostics import design_effect, kish_ess, relative_errors, weight_ratio_range
from .sparse import SparseCalibrator, default_holdout
from .distances import DISTANCES, Distance, get_distance, make_distance, register_distance
from .targets import Target, Targets, format_filter, parse_filter

__all__ = [
    "Calibrator",
    "CalibrationResult",
    "SparseCalibrator",
    "default_holdout",
    "Target",
    "Targets",
    "Distance",
    "DISTANCES",
    "make_distance",
    "register_distance",
    "get_distance",
    "check_consistency",
    "parse_filter",
    "format_filter",
    "kish_ess",
    "design_effect",
    "weight_ratio_range",
    "relative_errors",
]
