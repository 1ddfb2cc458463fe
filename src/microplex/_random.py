"""Seeds: integer seeds drawn from a :class:`numpy.random.SeedSequence`, and counter-keyed children.

The one place where microplex turns a seed sequence into the integer seeds that ``fit``,
``generate`` and torch take, and into the child sequence of a numbered block of rows; and where
it draws a random held-out part of weighted records (:func:`holdout_split`).
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


def holdout_split(weights: np.ndarray, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """The records in a random order and how many of the first are held out (to validate or score a fit).

    The held-out records are drawn among the records of positive weight, ``round(fraction * n_positive)`` of
    them: records of weight 0 count in no weighted loss or score, and drawn into the held-out part they could
    leave it (or, for a fraction near 1, the rest) without a record that counts (2 of 20 records held out,
    both of weight 0, refused a clean frame). They come last. With every weight positive this is
    ``rng.permutation(n)`` and ``round(fraction * n)``. The synthesizer's validation split and fusion's
    held-out scores split here.

    Examples
    --------
    >>> order, n = holdout_split(np.array([0.0, 1.0, 1.0, 0.0, 1.0]), 0.4, np.random.default_rng(0))
    >>> n, sorted(order[:3].tolist()), sorted(order[3:].tolist())
    (1, [1, 2, 4], [0, 3])
    """
    order = rng.permutation(len(weights))
    held = np.asarray(weights)[order] > 0
    if not held.all():
        order = np.concatenate([order[held], order[~held]])
    n_held = int(round(fraction * int(held.sum()))) if fraction > 0 else 0
    return order, n_held


__all__ += ["holdout_split"]
