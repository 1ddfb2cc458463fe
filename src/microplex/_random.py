"""Seeds: integer seeds drawn from a :class:`numpy.random.SeedSequence`, and counter-keyed children.

The one place where microplex turns a seed sequence into the integer seeds that ``fit``,
``generate`` and torch take, and into the child sequence of a numbered block of rows.
"""

from __future__ import annotations

import numpy as np

__all__ = ["int_seed", "block_sequence"]


def int_seed(ss: np.random.SeedSequence, *, bits: int = 32) -> int:
    """An integer seed drawn from ``ss``, for the ``seed=`` argument of ``fit`` and ``generate``.

    Parameters
    ----------
    ss : numpy.random.SeedSequence
    bits : {32, 64}, default=32
        Size of the seed: one or two 32-bit words of ``ss``'s state (the first word high).

    Examples
    --------
    >>> int_seed(np.random.SeedSequence(0)) == int_seed(np.random.SeedSequence(0))
    True
    >>> int_seed(np.random.SeedSequence(0), bits=64) >> 32 == int_seed(np.random.SeedSequence(0))
    True
    """
    if bits == 32:
        return int(ss.generate_state(1)[0])
    if bits != 64:
        raise ValueError(f"bits must be 32 or 64, got {bits!r}.")
    state = ss.generate_state(2, dtype=np.uint32)
    return int(state[0]) << 32 | int(state[1])


def block_sequence(seed: int, stream: int, block: int) -> np.random.SeedSequence:
    """The counter-keyed child ``SeedSequence(seed, spawn_key=(stream, block))``: block ``block`` of
    stream ``stream`` (0: ``generate`` seeds of scale blocks, 1: resampled condition rows), drawn
    anywhere without drawing the blocks before it.

    Examples
    --------
    >>> block_sequence(7, 0, 3).spawn_key
    (0, 3)
    """
    return np.random.SeedSequence(seed, spawn_key=(stream, block))


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
