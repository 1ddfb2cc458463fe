"""Multi-source fusion (statistical matching) by conditional synthesis.

:func:`fuse` combines weighted sources that share some variables into one file carrying the union
of their variables; :class:`Source` names a source; :class:`FusionResult` holds the fused records,
per-variable diagnostics, the shared-variable comparison and correlation bounds.
"""

from ._fuse import FusionResult, FusionStep, fuse
from ._source import Source
from .diagnostics import compare_shared, correlation_bounds

__all__ = ["Source", "fuse", "FusionResult", "FusionStep", "compare_shared", "correlation_bounds"]
