"""Seeds: integer seeds drawn from a :class:`numpy.random.SeedSequence`, and counter-keyed children.

The one place where microplex turns a seed sequence into the integer seeds that ``fit``,
``generate`` and torch take, and into the child sequence of a numbered block of rows; and where
it draws a random held-out part of weighted records (:func:`holdout_split`); and the order of records set
by their values (:func:`content_order`), so that a solve drawing by position gives one answer in any order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

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


def content_order(frame: pd.DataFrame, *, groups: str | None = None, keep_first: bool = False) -> np.ndarray:
    """Positions of ``frame``'s rows in an order set by their values alone: the same rows given in any order, under
    any index labels, come out in one order.

    A solve that draws random numbers by position, or whose solver breaks ties by position (a linear program's
    vertex among equal costs), then gives one answer to one set of records. The order is a hash of each row's
    values (columns taken in the order of their names, as text): of a number's, date's or duration's dense rank
    within its column, so that a column given in another unit (weights times 1,000, incomes in cents) orders the
    rows alike, and of a text or category value itself, so that object, string and category columns of the same
    values (categories listed in any order) order them alike. Rows alike in every column keep the order they came
    in (they are interchangeable), as do rows whose 64-bit hashes collide (odds about ``n**2 / 2**65``).

    ``groups`` names a column of group ids (households): each group's rows follow one another, ordered by their
    values (rows alike in every column in the order they came in), and the groups are ordered by a hash of their
    rows as a multiset and of their leading row, the ids' values themselves left out (labels, not values). So the
    same groups give one order however their rows are ordered, within a group as well as across groups. With
    ``keep_first``, each group's first row (as given) stays first and only the others are ordered by their values:
    where the first row of a household carries household values that its other persons do not share, which
    person comes first is part of the input.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"a": [3.0, 1.0, 2.0], "b": ["x", "y", "z"]})
    >>> again = df.iloc[[2, 0, 1]].assign(a=lambda f: f["a"] * 1000)
    >>> df.index[content_order(df)].tolist() == again.index[content_order(again)].tolist()
    True
    """
    import pandas as pd

    n = len(frame)
    names = [str(c) for c in frame.columns]
    key = np.zeros(n, dtype=np.uint64)
    for j in sorted(range(frame.shape[1]), key=lambda i: (names[i], i)):
        if groups is not None and frame.columns[j] == groups:
            continue
        key = (key ^ _column_key(frame.iloc[:, j])) * np.uint64(0x100000001B3)  # wraps modulo 2**64
    if groups is None:
        return np.argsort(key, kind="stable")
    group, _ = pd.factorize(frame[groups], use_na_sentinel=False)
    n_groups = int(group.max(initial=-1)) + 1
    total = np.zeros(n_groups, dtype=np.uint64)
    np.add.at(total, group, key)  # the group's rows as a multiset (modulo 2**64)
    lead = np.zeros(n, dtype=bool)
    if keep_first:
        first = np.full(n_groups, n, dtype=np.int64)
        np.minimum.at(first, group, np.arange(n))
        lead[first] = True
    within = np.lexsort((np.arange(n), key, ~lead, group))  # by group; its first row (keep_first), then by value
    starts = np.flatnonzero(np.r_[True, group[within][1:] != group[within][:-1]]) if n else np.zeros(0, np.int64)
    head = within[starts]  # each group's leading row, groups by code
    group_key = pd.util.hash_array(total ^ (key[head] * np.uint64(0x9E3779B97F4A7C15)))
    rank = np.empty(n_groups, dtype=np.int64)
    rank[np.argsort(group_key, kind="stable")] = np.arange(n_groups)
    return within[np.argsort(rank[group[within]], kind="stable")]  # groups in their order, rows as ordered within


def _column_key(col: pd.Series) -> np.ndarray:
    """A 64-bit key of each value of a column: for numbers, dates and durations the hash of the value's dense rank
    (missing values apart), so any change that keeps the values' order keeps the keys; for text and categories the
    hash of the value itself (the same for object, string and category dtypes, whatever the categories' order);
    values that cannot be hashed (lists) by their text."""
    import pandas as pd
    from pandas.api.types import is_datetime64_any_dtype, is_numeric_dtype, is_timedelta64_dtype

    dtype = col.dtype
    if not isinstance(dtype, pd.CategoricalDtype) and (
        is_numeric_dtype(dtype) or is_datetime64_any_dtype(dtype) or is_timedelta64_dtype(dtype)  # bools are numeric
    ):
        try:
            codes, _ = pd.factorize(col, sort=True)
            return pd.util.hash_array(np.asarray(codes, dtype=np.int64))
        except TypeError:  # values that do not sort (complex numbers of some kinds): hashed below
            pass
    try:
        return pd.util.hash_pandas_object(col, index=False).to_numpy(dtype=np.uint64)
    except TypeError:
        return pd.util.hash_pandas_object(col.astype(str), index=False).to_numpy(dtype=np.uint64)


__all__ += ["content_order"]
