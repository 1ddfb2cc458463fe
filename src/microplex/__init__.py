"""microplex: calibrated synthetic population microdata.

Learn P(targets | conditions) from weighted surveys with conditional normalizing flows and
point masses, fuse sources, reweight to official totals, stream populations to Parquet, and
evaluate the result.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:  # imported on first use (below): ``import microplex`` does not load torch
    from .fusion import FusionResult, Source, fuse
    from .households import HouseholdSynthesizer
    from .synthesis import Synthesizer, VariableSpec

try:
    __version__ = version("microplex")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

#: Names of the top-level API whose subpackage (torch and the flows) is imported on first use.
_LAZY = {
    "Synthesizer": "synthesis",
    "VariableSpec": "synthesis",
    "HouseholdSynthesizer": "households",
    "FusionResult": "fusion",
    "Source": "fusion",
    "fuse": "fusion",
}
#: Subpackages reachable as attributes (``microplex.scale``) without an import statement.
_SUBPACKAGES = {"synthesis", "households", "fusion", "scale", "evaluation", "datasets"}


def __getattr__(name: str) -> Any:
    """Imports the synthesis, household and fusion API (and subpackages) on first use (PEP 562)."""
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    elif name in _SUBPACKAGES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | _SUBPACKAGES)

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
