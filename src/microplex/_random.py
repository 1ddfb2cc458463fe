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


def named_child(seed: int, name: str) -> np.random.SeedSequence:
    """The child of ``SeedSequence(seed)`` named ``name``: one independent stream per stage.

    It is ``SeedSequence(seed, spawn_key=(crc32(name),))``, what ``SeedSequence(seed).spawn``
    would give at that index, so streams do not depend on the order or the number of stages: a
    stage added later leaves the others' draws unchanged.

    Examples
    --------
    >>> fit, split = named_child(0, "fit"), named_child(0, "split")
    >>> int_seed(fit) == int_seed(named_child(0, "fit")), int_seed(fit) == int_seed(split)
    (True, False)
    """
    import zlib

    return np.random.SeedSequence(seed, spawn_key=(zlib.crc32(name.encode("utf-8")),))


__all__ += ["named_child"]
