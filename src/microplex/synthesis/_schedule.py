"""The training schedule of :class:`~microplex.Synthesizer`: how many epochs ``epochs="auto"`` runs.

By default the learning rate decays to 0 along a cosine over the epochs, so the final weights
settle at an optimum instead of at a noisy Adam step, and a 10% validation split chooses, for each
part of the model, its state with the best validation loss. How long to train is then the one
choice left, and it depends on the data size: small surveys over-fit with many passes (the
synthetic records drift towards the training records: a lower distance-to-closest-record ratio
and a worse held-out KS), large ones need fewer passes for the same number of gradient steps.

``"auto"`` runs ``round(AUTO_EPOCHS_SCALE / sqrt(n))`` epochs for ``n`` training records, clipped
to ``[MIN_AUTO_EPOCHS, MAX_AUTO_EPOCHS]``: about 160 epochs on 1,300 records, 60 on 10,000 and 40 on
20,000, so the number of gradient steps grows like ``sqrt(n)`` and fit time sub-linearly with the
data. Measured on five real surveys (acs12, workinghours, cps1, eusilc, cps1988; 80/20 splits,
3 seeds, worst KS over targets against the real-vs-real floor; ``benchmarks/results/schedule.md``):
without a validation split, half this scale under-fits the larger sets and twice it over-fits the
small ones (acs12: worst KS 1.34x the floor, DCR ratio down to 0.80); with the validation split
choosing the best state, this scale reaches the floor on acs12 (1.00x, DCR ratio >= 0.96).

With ``patience`` set (the earlier early-stopping schedule), ``"auto"`` means at most
``EARLY_STOPPING_EPOCHS`` epochs, ended by early stopping.

``batch_size=None`` and ``learning_rate=None`` mean :data:`BATCH_SIZE` and :data:`LEARNING_RATE`;
with differential privacy (``epsilon`` set) ``"auto"``/``None`` mean the DP-SGD settings of
:func:`microplex.synthesis._dp_plan.dp_training_settings` instead.
"""

from __future__ import annotations

import math

from .._errors import DataValidationError
from .._params import check_int, named

__all__ = ["AUTO_EPOCHS_SCALE", "BATCH_SIZE", "LEARNING_RATE", "EARLY_STOPPING_EPOCHS", "MAX_AUTO_EPOCHS", "MIN_AUTO_EPOCHS", "auto_epochs",
           "check_epochs"]

#: Batch size and Adam learning rate of ``batch_size=None`` and ``learning_rate=None`` (without DP).
BATCH_SIZE = 512
LEARNING_RATE = 2e-3
#: Epochs for ``n`` records are ``AUTO_EPOCHS_SCALE / sqrt(n)`` (before clipping).
AUTO_EPOCHS_SCALE = 5900.0
#: Fewest epochs ``"auto"`` runs (very large data sets).
MIN_AUTO_EPOCHS = 3
#: Most epochs ``"auto"`` runs (tiny data sets).
MAX_AUTO_EPOCHS = 400
#: Most epochs of ``"auto"`` with early stopping (``patience`` set).
EARLY_STOPPING_EPOCHS = 200


def auto_epochs(n_train: int, early_stopping: bool = False) -> int:
    """Epochs ``epochs="auto"`` runs for ``n_train`` training records.

    Examples
    --------
    >>> auto_epochs(1_300), auto_epochs(10_000), auto_epochs(20_000), auto_epochs(10_000_000)
    (164, 59, 42, 3)
    >>> auto_epochs(5_000, early_stopping=True)
    200
    """
    if early_stopping:
        return EARLY_STOPPING_EPOCHS
    return int(min(MAX_AUTO_EPOCHS, max(MIN_AUTO_EPOCHS, round(AUTO_EPOCHS_SCALE / math.sqrt(max(n_train, 1))))))


def check_epochs(value: object, name: str = "epochs", *, high: int | None = None) -> int | str:
    """``"auto"`` or an int >= 1 (at most ``high``), returned as ``"auto"`` or a Python int."""
    if isinstance(value, str) and value == "auto":
        return value
    try:
        return check_int(value, name, low=1, high=high)
    except DataValidationError:
        rule = "an int >= 1" if high is None else f"an int in [1, {high}]"
        raise DataValidationError(f"{named(name)} must be 'auto' or {rule}. Got {value!r:.80} instead.") from None
