"""The training schedule of :class:`~microplex.Synthesizer`: how many epochs ``epochs="auto"`` runs.

With ``validation_fraction=0`` (the default) every training record is used, the learning rate
decays to 0 along a cosine over the epochs, and the final weights settle at an optimum instead
of at a noisy Adam step. How long to train is then the one choice left, and it depends on the
data size: small surveys over-fit with many passes (the synthetic records drift towards the
training records: a lower distance-to-closest-record ratio and worse held-out KS), large ones
need fewer passes for the same number of gradient steps.

``"auto"`` runs ``round(AUTO_EPOCHS_SCALE / sqrt(n))`` epochs for ``n`` training records, clipped
to ``[MIN_AUTO_EPOCHS, MAX_AUTO_EPOCHS]``: about 110 epochs on 1,600 records, 85 on 2,700, 40 on
12,000 and 30 on 22,000. Measured on five real surveys (acs12, workinghours, cps1, eusilc,
cps1988; 80/20 splits, 3 seeds, worst KS over targets against the real-vs-real floor; see
``benchmarks/results/schedule.md``): half of this scale under-fits the small sets (worst KS 1.5-1.6x
the floor), twice it over-fits them (1.3-1.5x, DCR ratio down to 0.9), while the scale here stays
within noise of the best of the three on every set. The number of gradient steps then grows like
``sqrt(n)``, so fit time grows sub-linearly with the data.

With a validation split (``validation_fraction > 0``), ``"auto"`` means at most
``EARLY_STOPPING_EPOCHS`` epochs, ended by early stopping as before.
"""

from __future__ import annotations

import math

from .._errors import DataValidationError
from .._params import check_int

__all__ = ["AUTO_EPOCHS_SCALE", "EARLY_STOPPING_EPOCHS", "MAX_AUTO_EPOCHS", "MIN_AUTO_EPOCHS", "auto_epochs",
           "check_epochs"]

#: Epochs for ``n`` records are ``AUTO_EPOCHS_SCALE / sqrt(n)`` (before clipping).
AUTO_EPOCHS_SCALE = 4400.0
#: Fewest epochs ``"auto"`` runs (very large data sets).
MIN_AUTO_EPOCHS = 3
#: Most epochs ``"auto"`` runs (tiny data sets).
MAX_AUTO_EPOCHS = 400
#: Most epochs of ``"auto"`` with a validation split (early stopping decides).
EARLY_STOPPING_EPOCHS = 200


def auto_epochs(n_train: int, validation: bool = False) -> int:
    """Epochs ``epochs="auto"`` runs for ``n_train`` training records.

    Examples
    --------
    >>> auto_epochs(1600), auto_epochs(12_000), auto_epochs(22_000), auto_epochs(10_000_000)
    (110, 40, 30, 3)
    >>> auto_epochs(5_000, validation=True)
    200
    """
    if validation:
        return EARLY_STOPPING_EPOCHS
    return int(min(MAX_AUTO_EPOCHS, max(MIN_AUTO_EPOCHS, round(AUTO_EPOCHS_SCALE / math.sqrt(max(n_train, 1))))))


def check_epochs(value: object, name: str = "epochs") -> int | str:
    """``"auto"`` or an int >= 1 (returned as ``"auto"`` or a Python int)."""
    if isinstance(value, str) and value == "auto":
        return value
    try:
        return check_int(value, name, low=1)
    except DataValidationError:
        raise DataValidationError(
            f"The {name!r} parameter must be 'auto' or an int >= 1. Got {value!r:.80} instead.") from None
