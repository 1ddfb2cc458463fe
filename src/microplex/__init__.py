"""microplex: calibrated synthetic population microdata.

Learn P(targets | conditions) from weighted surveys with conditional normalizing flows and
point masses, fuse sources, reweight to official totals, stream populations to Parquet, and
evaluate the result.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from ._errors import (
    ConvergenceError,
    ConvergenceWarning,
    DataValidationError,
    ExtrapolationWarning,
    PrivacyWarning,
    MicroplexError,
    NotFittedError,
)
from .calibration import CalibrationResult, Calibrator, SparseCalibrator, Target, Targets
from .fusion import FusionResult, Source, fuse
from .households import HouseholdSynthesizer
from .synthesis import Synthesizer, VariableSpec

try:
    __version__ = version("microplex")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "CalibrationResult",
    "Calibrator",
    "SparseCalibrator",
    "Target",
    "Targets",
    "ConvergenceError",
    "ConvergenceWarning",
    "DataValidationError",
    "ExtrapolationWarning",
    "FusionResult",
    "HouseholdSynthesizer",
    "MicroplexError",
    "NotFittedError",
    "PrivacyWarning",
    "Source",
    "Synthesizer",
    "VariableSpec",
    "__version__",
    "fuse",
]
