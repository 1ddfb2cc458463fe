"""Exception and warning classes raised by microplex."""

from __future__ import annotations

__all__ = [
    "MicroplexError",
    "DataValidationError",
    "NotFittedError",
    "ConvergenceError",
    "ConvergenceWarning",
    "ExtrapolationWarning",
    "PrivacyWarning",
]


class MicroplexError(Exception):
    """Base class of every error raised by microplex."""


class DataValidationError(MicroplexError, ValueError):
    """Raised when input data or parameters are invalid (names the column or parameter)."""


class NotFittedError(MicroplexError, AttributeError):
    """Raised when a method that needs a fitted estimator is called before ``fit``."""


class ConvergenceError(MicroplexError, RuntimeError):
    """Raised when a solver fails to reach the requested precision."""


class ConvergenceWarning(UserWarning):
    """Warns that a solver stopped before reaching the requested precision, or that a soft calibration missed
    targets by more than ``microplex.calibration.calibrator.FAR_MISS`` times their tolerance."""


class ExtrapolationWarning(UserWarning):
    """Warns that inputs lie far outside the range seen in training (named column, row count).

    Attributes
    ----------
    column : str or None
        The condition column the warning is about (None where it names none).
    reason : str or None
        ``"range"`` (numeric values beyond the training range, held at its margin), ``"weightless"``
        (categories that only training records of weight 0 held) or ``"structural"`` (a combination of
        conditions whose structural zeros rule out every pattern of the targets; ``column`` names one
        of them).
    levels : tuple
        The categories of a ``"weightless"`` warning (at most five), else empty.
    """

    def __init__(self, message: str = "", *, column: str | None = None, reason: str | None = None,
                 levels: tuple = ()) -> None:
        super().__init__(message)
        self.column = column
        self.reason = reason
        self.levels = tuple(levels)


class PrivacyWarning(UserWarning):
    """Warns that differentially private fitting changed the data (values clipped to public bounds)."""
