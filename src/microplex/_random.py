"""Seeds: one integer seed from a :class:`numpy.random.SeedSequence`."""

from __future__ import annotations

import numpy as np

__all__ = ["int_seed"]


def int_seed(ss: np.random.SeedSequence) -> int:
    """An integer seed drawn from ``ss``, for the ``seed=`` argument of ``fit`` and ``generate``.

    Examples
    --------
    >>> int_seed(np.random.SeedSequence(0)) == int_seed(np.random.SeedSequence(0))
    True
    """
    return int(ss.generate_state(1)[0])
