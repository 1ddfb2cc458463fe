"""Privacy diagnostics: distance to closest record (DCR) and exact copies of training records.

The reference point is fresh data: records of a holdout sample drawn like the training sample
but not used to fit the synthesizer. A synthesizer that generalises puts its records about as
far from the training records as holdout records are; one that memorises puts them closer.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from .._errors import DataValidationError
from .._estimator import DEPRECATED, deprecated_random_state
from .._params import check_bool, check_float, check_int
from .._stats import one_hot, shared_precision, stored_at
from ._validation import beyond_float64, is_numeric, refuse_type_clashes, require_columns

__all__ = [
    "PrivacyRiskWarning",
    "encode_records",
    "row_codes",
    "holdout_overlap",
    "dcr",
    "exact_copy_rate",
    "privacy_summary",
    "privacy_problems",
    "close_shares",
]

logger = logging.getLogger(__name__)


class PrivacyRiskWarning(UserWarning):
    """Warns that synthetic records sit closer to training records than fresh (holdout) data does,
    or that the holdout holds training records, so that it cannot show it."""


def row_codes(frames: Sequence[pd.DataFrame], columns: Sequence[str]) -> list[np.ndarray]:
    """Codes each row of ``frames`` by its values in ``columns``: equal rows get equal codes, across frames.

    Two rows get the same code when they hold equal values in every column, however the frames
    store them: a column numeric in every frame is compared as float64 (``1`` in an ``int64``,
    ``Int64`` or ``float64`` column is the same value), or as float32 where a frame stores it so (a
    float32 column's 24.100000381469727 is a float64 column's 24.1), or exactly where an integer column holds
    a value beyond 2**53 that float64 cannot hold (ids 2**53 and 2**53 + 1 differ; :func:`_numbers`), other
    columns as the values themselves
    (strings, categories, booleans); a missing value equals a missing value. Every exact-match
    test of :mod:`microplex.evaluation` (exact copies, quasi-identifier cells) uses these codes.

    Returns
    -------
    list of ndarray of shape (n_rows,)
        One int64 array per frame.

    Examples
    --------
    >>> a = pd.DataFrame({"x": [1, 2], "g": ["a", None]})
    >>> b = pd.DataFrame({"x": [2.0, 1.0, 1.0], "g": [None, "a", "b"]})
    >>> [c.tolist() for c in row_codes([a, b], ["x", "g"])]
    [[0, 1], [1, 0, 2]]
    """
    frames = list(frames)
    sizes = [len(f) for f in frames]
    code = np.zeros(sum(sizes), dtype=np.int64)
    for c in columns:
        parts = [f[c] for f in frames]
        if all(is_numeric(p) for p in parts):  # at the narrowest float precision of the frames (float32: 24.1)
            values = _numbers(parts)
        else:
            values = np.concatenate([p.astype(object).where(p.notna(), None).to_numpy(dtype=object) for p in parts])
        levels, uniques = pd.factorize(values, use_na_sentinel=False)  # missing values: one level of their own
        # the pair (rows so far, this column) as one code; both are < the number of rows, so no overflow
        code = pd.factorize(code * len(uniques) + levels)[0].astype(np.int64)
    return np.split(code, np.cumsum(sizes)[:-1])


def _numbers(parts: Sequence[pd.Series]) -> np.ndarray:
    """The values of the numeric columns ``parts`` in one array, as :func:`row_codes` and :func:`encode_records`
    compare them: float64 at the narrowest float precision of the parts (a float32 column's 24.100000381469727 is
    a float64 column's 24.1; missing: NaN) or, where an integer column holds a value that float64 cannot hold
    (beyond 2**53 in magnitude: 2**53 + 1 would read 2**53, two ids one record), the numbers themselves, Python
    ints and floats in an object array (missing: NaN), which compare exactly.

    Examples
    --------
    >>> big = pd.Series([2**53, 2**53 + 1])
    >>> _numbers([big]).tolist(), _numbers([big.astype(float)]).tolist()
    ([9007199254740992, 9007199254740993], [9007199254740992.0, 9007199254740992.0])
    """
    precision = shared_precision(*(p.dtype for p in parts))
    if precision == "float64" and any(beyond_float64(p) for p in parts):
        return np.concatenate([p.to_numpy(dtype=object, na_value=np.nan) if pd.api.types.is_integer_dtype(p.dtype)
                               else p.to_numpy(dtype=float, na_value=np.nan).astype(object) for p in parts])
    return stored_at(np.concatenate([p.to_numpy(dtype=float, na_value=np.nan) for p in parts]), precision)


def _interp_exact(x: np.ndarray, values: np.ndarray, mid: np.ndarray) -> np.ndarray:
    """``np.interp(x, values, mid)`` for the exact numbers of :func:`_numbers` (object arrays, no missing value;
    ``values`` sorted and distinct): the offsets from the values are taken exactly before they are divided."""
    hi = np.searchsorted(values, x, side="right")
    lo, hi = np.clip(hi - 1, 0, len(values) - 1), np.clip(hi, 0, len(values) - 1)
    gap = values[hi] - values[lo]  # 0 at a value, below the first and beyond the last
    frac = np.where(gap == 0, 0, (x - values[lo]) / np.where(gap == 0, 1, gap)).astype(float)
    return mid[lo] + frac * (mid[hi] - mid[lo])


def encode_records(reference: pd.DataFrame, *frames: pd.DataFrame, columns: Sequence[str] | None = None) -> list[np.ndarray]:
    """Encodes frames into a common numeric space learned on ``reference``.

    A numeric column becomes its mid-rank position in the ``reference`` distribution (0..1,
    interpolated between observed values, so heavy tails do not dominate); a missing numeric
    value becomes -1. A categorical column becomes a one-hot block scaled by 1/sqrt(2), so a
    mismatch adds 1 to the squared distance; a missing value is a level of its own (as in
    :func:`row_codes`): beside a category it adds 1, beside a missing value 0. Integers beyond 2**53
    are ranked exactly (:func:`_numbers`): ids 2**53 and 2**53 + 1 have ranks of their own.

    Returns
    -------
    list of ndarray of shape (n_rows, n_features)
        ``reference`` first, then each of ``frames``.

    Examples
    --------
    >>> ref = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]})
    >>> encode_records(ref, pd.DataFrame({"x": [2.5]}))[1].round(3).tolist()
    [[0.5]]
    """
    columns = list(reference.columns if columns is None else columns)
    all_frames = (reference, *frames)
    blocks: list[list[np.ndarray]] = [[] for _ in all_frames]
    for c in columns:
        if is_numeric(reference[c]):
            # values at the narrowest float precision of the frames, as row_codes compares them
            sizes = np.cumsum([len(f) for f in all_frames])[:-1]
            xs = np.split(_numbers([f[c] for f in all_frames]), sizes)
            ref = xs[0][~pd.isna(xs[0])]
            values, counts = np.unique(ref, return_counts=True)
            if values.size == 0:
                values, counts = np.array([0.0]), np.array([1])
            mid = (np.cumsum(counts) - 0.5 * counts) / counts.sum()
            for k, x in enumerate(xs):
                missing = pd.isna(x)
                pos = (np.interp(np.nan_to_num(x), values, mid) if x.dtype != object
                       else _interp_exact(np.where(missing, values[0], x), values, mid))
                blocks[k].append(np.where(missing, -1.0, pos)[:, None])
        else:
            cats = pd.Index(pd.concat([f[c] for f in all_frames]).dropna().astype(object).unique())
            codes = [cats.get_indexer(f[c].astype(object)) for f in all_frames]  # -1: a missing value
            levels = len(cats) + any(bool((code < 0).any()) for code in codes)  # missing: one more level, if any
            for k, code in enumerate(codes):
                blocks[k].append(one_hot(np.where(code < 0, len(cats), code), levels) / np.sqrt(2.0))
    return [np.hstack(b) if b else np.zeros((len(f), 0)) for b, f in zip(blocks, all_frames)]


def dcr(
    query_df: pd.DataFrame,
    train_df: pd.DataFrame,
    *,
    columns: Sequence[str] | None = None,
    max_rows: int | None = 5_000,
    seed: int | None = 0,
    random_state: int | None | str = DEPRECATED,
) -> np.ndarray:
    """Returns each query record's Euclidean distance to its closest training record.

    Records are encoded by :func:`encode_records` with ``train_df`` as the reference. Queries are
    subsampled (by ``seed``) to at most ``max_rows``.

    Examples
    --------
    >>> train = pd.DataFrame({"x": [1.0, 2.0, 3.0], "g": ["a", "b", "a"]})
    >>> dcr(train, train).tolist()
    [0.0, 0.0, 0.0]
    """
    max_rows = check_int(max_rows, "max_rows", low=1, allow_none=True)
    seed = deprecated_random_state(seed, random_state, "dcr")
    columns = list(train_df.columns if columns is None else columns)
    if len(train_df) == 0 or len(query_df) == 0:
        raise DataValidationError(
            f"dcr needs non-empty frames: got {len(query_df)} query rows and {len(train_df)} training rows."
        )
    _check_pair(train_df, query_df, columns, "query_df")
    if max_rows is not None and len(query_df) > max_rows:
        rng = np.random.default_rng(seed)
        query_df = query_df.iloc[np.sort(rng.choice(len(query_df), size=max_rows, replace=False))]
    xt, xq = encode_records(train_df[columns], query_df[columns], columns=columns)
    return _nearest_distances(xt, xq)


def _nearest_distances(reference: np.ndarray, *queries: np.ndarray) -> np.ndarray | list[np.ndarray]:
    """The Euclidean distance of each row of each of ``queries`` to its closest row of ``reference``
    (encoded records), computed exactly: 0 for a row equal to a reference row.

    The neighbour is found by scikit-learn's ``NearestNeighbors``, whose brute-force search (chosen above 15
    encoded columns) computes squared distances as ``|a|^2 + |b|^2 - 2 a.b``: a record equal to a training
    record got a distance of up to about 1e-7 instead of 0 (a fifth of eusilc's records against themselves),
    which broke the ties of exact copies in the membership AUC and the 0 that the DCR figures test for. The
    distance to the neighbour found is recomputed from the differences.

    Returns one array for one query matrix, else a list.

    Examples
    --------
    >>> x = np.eye(20)
    >>> _nearest_distances(x, x[:2]).tolist()
    [0.0, 0.0]
    """
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=1).fit(reference)
    out = []
    for q in queries:
        idx = nn.kneighbors(q, return_distance=False)[:, 0]
        out.append(np.sqrt(np.sum((q - reference[idx]) ** 2, axis=1)))
    return out[0] if len(out) == 1 else out


def exact_copy_rate(query_df: pd.DataFrame, train_df: pd.DataFrame, *, columns: Sequence[str] | None = None) -> float:
    """Returns the share of query rows identical, in every column, to some training row.

    Values are compared as :func:`row_codes` does: numbers as numbers (``1`` equals ``1.0``),
    missing equals missing.

    Examples
    --------
    >>> train = pd.DataFrame({"x": [1, 2], "g": ["a", "b"]})
    >>> exact_copy_rate(pd.DataFrame({"x": [1, 2], "g": ["a", "a"]}), train)
    0.5
    """
    columns = list(train_df.columns if columns is None else columns)
    if len(query_df) == 0:
        raise DataValidationError("exact_copy_rate needs at least 1 query row, got 0.")
    _check_pair(train_df, query_df, columns, "query_df")
    return _copy_share(*row_codes([query_df, train_df], columns))


def _copy_share(query: np.ndarray, train: np.ndarray) -> float:
    """The share of the query rows whose :func:`row_codes` code is some training row's."""
    return float(np.mean(np.isin(query, train)))


def share_exceeds(share: float, n: int, reference: float, n_reference: int) -> bool:
    """Whether ``share`` (of ``n`` rows) exceeds ``reference`` (of ``n_reference`` rows) by more than 1 percentage
    point and by more than 3 standard errors of a two-proportion test (pooled): the rule of every copy-rate
    warning, so that sampling noise alone raises none.

    Examples
    --------
    >>> share_exceeds(0.140, 10_000, 0.128, 3_199)   # 1.2 points apart, 1.8 standard errors
    False
    >>> share_exceeds(0.160, 10_000, 0.128, 3_199), share_exceeds(0.005, 10**9, 0.0, 10**9)
    (True, False)
    """
    if n == 0 or n_reference == 0:
        return False
    pooled = (share * n + reference * n_reference) / (n + n_reference)
    se = float(np.sqrt(pooled * (1.0 - pooled) * (1.0 / n + 1.0 / n_reference)))
    return bool(share - reference > max(0.01, 3.0 * se))


def holdout_overlap(train_df: pd.DataFrame, holdout_df: pd.DataFrame, *, columns: Sequence[str] | None = None) -> str | None:
    """Why ``holdout_df`` is not fresh data for ``train_df`` (it holds training records), or None: the rule of
    :func:`privacy_summary`'s warning, for the report.

    Examples
    --------
    >>> train = pd.DataFrame({"x": np.arange(100.0)})
    >>> holdout_overlap(train, train.iloc[:50]) is not None, holdout_overlap(train, train + 0.5)
    (True, None)
    """
    columns = list(train_df.columns if columns is None else columns)
    _check_pair(train_df, holdout_df, columns, "holdout_df")
    return _holdout_overlap(*row_codes([train_df, holdout_df], columns))


#: The percentile of the holdout's distances to the closest training record at or below which a record counts as
#: close (``dcr_close_share``).
CLOSE_QUANTILE = 0.05


def close_shares(d_synthetic: np.ndarray, d_holdout: np.ndarray) -> tuple[float, float, float]:
    """The closeness threshold and the shares of synthetic and of holdout records at or below it.

    The threshold is the :data:`CLOSE_QUANTILE` (5th) percentile of the holdout's distances to the
    closest training record; a record at or below it is as close to a training record as the closest
    5% of fresh records. The holdout's own share is the reference: 0.05 where its distances do not tie,
    more where they do, as when many fresh records have an exact training twin (distance 0: the
    threshold is then 0 and the close records are the exact twins). ``privacy_summary``'s
    ``dcr_close_share`` and ``dcr_close_share_holdout`` and the report's distance plot read it.

    Returns
    -------
    tuple of float
        ``(threshold, synthetic share, holdout share)``.

    Examples
    --------
    >>> close_shares(np.array([0.0, 0.0, 0.3]), np.array([0.0, 0.0, 0.1, 0.2, 0.4]))
    (0.0, 0.6666666666666666, 0.4)
    """
    d_synthetic, d_holdout = np.asarray(d_synthetic, dtype=float), np.asarray(d_holdout, dtype=float)
    cut = float(np.quantile(d_holdout, CLOSE_QUANTILE))
    return cut, float(np.mean(d_synthetic <= cut)), float(np.mean(d_holdout <= cut))


def _check_pair(train_df: pd.DataFrame, other: pd.DataFrame, columns: list[str], name: str) -> None:
    """Both frames hold ``columns``, and no value of ``train_df`` is in ``other`` under another type only."""
    for label, df in (("train_df", train_df), (name, other)):
        require_columns(df, columns, label)
    refuse_type_clashes({"train_df": train_df, name: other}, columns)


def _holdout_overlap(train: np.ndarray, holdout: np.ndarray) -> str | None:
    """Why the holdout (row codes) is not fresh data, or None: the rule of :func:`privacy_summary`."""
    in_train = _copy_share(holdout, train)
    _, inverse, counts = np.unique(train, return_inverse=True, return_counts=True)
    repeats = float(np.mean(counts[inverse] > 1))  # a training row matching one of the other training rows
    if not share_exceeds(in_train, holdout.size, repeats, train.size):
        return None
    return (f"{in_train:.1%} of the holdout rows are exact copies of training rows, while only {repeats:.1%} of the "
            "training rows repeat another training row: the holdout holds training records, so it is not fresh data "
            "and the privacy figures judged against it (DCR ratio, exact-copy rates, membership AUC, attribute "
            "disclosure baselines) are not meaningful. Pass real records not used for training as holdout_df.")


def privacy_summary(
    train_df: pd.DataFrame,
    synthetic_df: pd.DataFrame,
    holdout_df: pd.DataFrame,
    *,
    columns: Sequence[str] | None = None,
    ratio_threshold: float = 0.9,
    max_rows: int | None = 5_000,
    seed: int | None = 0,
    random_state: int | None | str = DEPRECATED,
    warn: bool = True,
) -> dict[str, float]:
    """Compares synthetic-to-training with holdout-to-training distances to closest record.

    Returns
    -------
    dict
        ``dcr_synthetic_median`` and ``dcr_holdout_median`` (medians of the distances to the
        closest training record), ``dcr_ratio`` = synthetic median / holdout median (read: 1 or
        more is as far from the training records as fresh data; below 1 the synthetic records sit
        closer to training records than fresh data does, a sign of memorisation; inf when only the
        holdout median is 0, as in discrete data where most fresh records have a training twin and
        the synthetic ones do not; NaN when both medians are 0, not judged), ``dcr_close_share`` (share of
        synthetic records at or below the 5th percentile of the holdout distances, :func:`close_shares`) beside
        ``dcr_close_share_holdout`` (the holdout's own share at or below it: the reference, 0.05 when the
        holdout distances do not tie, more when many holdout records have an exact training twin and the
        percentile is 0; synthetic records that behave like fresh data read about the same, a release that
        copies its training records 1.0),
        ``exact_copy_rate_synthetic`` and ``exact_copy_rate_holdout`` (the rate expected from
        fresh data, e.g. from discrete columns).

    Warns
    -----
    PrivacyRiskWarning
        When ``dcr_ratio < ratio_threshold`` or the synthetic exact-copy rate exceeds the holdout
        rate by more than 1 percentage point and by more than 3 standard errors of a two-proportion
        test (pooled); and when the holdout holds training records: its
        share of rows found in the training file exceeds the training file's own share of
        repeated rows (a training row equal to another one; what fresh records from the same
        population match at about the same rate) by more than 1 percentage point and by more
        than 3 standard errors of a two-proportion test (pooled). Only when ``warn``; otherwise
        the messages are logged.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> train = pd.DataFrame({"x": rng.normal(size=300)})
    >>> holdout = pd.DataFrame({"x": rng.normal(size=300)})
    >>> s = privacy_summary(train, holdout.copy(), holdout)
    >>> s["dcr_ratio"]
    1.0
    """
    seed = deprecated_random_state(seed, random_state, "privacy_summary")
    out, _, _ = _summary_and_distances(train_df, synthetic_df, holdout_df, columns=columns,
                                       ratio_threshold=ratio_threshold, max_rows=max_rows, seed=seed, warn=warn,
                                       stacklevel=3)
    return out


def privacy_problems(
    summary: Mapping[str, float], n_synthetic: int, n_holdout: int, *, ratio_threshold: float = 0.9
) -> list[str]:
    """The disclosure risks of a release that :func:`privacy_summary` warns of, read from its figures.

    One sentence per risk found, none when there is none: ``dcr_ratio`` below ``ratio_threshold``
    (synthetic records closer to the training records than fresh data; a NaN ratio, both medians 0,
    is not judged), and ``exact_copy_rate_synthetic`` (of ``n_synthetic`` records) above
    ``exact_copy_rate_holdout`` (of ``n_holdout`` records) by more than 1 percentage point and by more
    than 3 standard errors (:func:`share_exceeds`: what sampling alone gives raises nothing). The warning
    of :func:`privacy_summary` and the report's verdict both read these sentences.

    Examples
    --------
    >>> privacy_problems({"dcr_synthetic_median": 1.0, "dcr_holdout_median": 1.0, "dcr_ratio": 1.0,
    ...                   "exact_copy_rate_synthetic": 0.5, "exact_copy_rate_holdout": 0.1}, 1_000, 1_000)
    ['50.0% of synthetic records copy a training record exactly (holdout: 10.0%)']
    """
    ratio_threshold = check_float(ratio_threshold, "ratio_threshold", low=0.0)
    ratio = float(summary["dcr_ratio"])
    problems = []
    if np.isfinite(ratio) and ratio < ratio_threshold:
        problems.append(
            f"synthetic records sit closer to training records than fresh holdout data does "
            f"(median distance to closest record: synthetic {summary['dcr_synthetic_median']:.4g} vs holdout "
            f"{summary['dcr_holdout_median']:.4g}, ratio {ratio:.3f} < {ratio_threshold})"
        )
    if share_exceeds(float(summary["exact_copy_rate_synthetic"]), n_synthetic,
                     float(summary["exact_copy_rate_holdout"]), n_holdout):
        problems.append(
            f"{summary['exact_copy_rate_synthetic']:.1%} of synthetic records copy a training record exactly "
            f"(holdout: {summary['exact_copy_rate_holdout']:.1%})"
        )
    return problems


def _summary_and_distances(
    train_df: pd.DataFrame,
    synthetic_df: pd.DataFrame,
    holdout_df: pd.DataFrame,
    *,
    columns: Sequence[str] | None = None,
    ratio_threshold: float = 0.9,
    max_rows: int | None = 5_000,
    seed: int | None = 0,
    warn: bool = True,
    stacklevel: int = 2,
) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
    """:func:`privacy_summary` and the distances it was computed from (synthetic, holdout): the report plots
    these, so that its histogram shows the subsample of the figures even when ``seed`` is None."""
    ratio_threshold = check_float(ratio_threshold, "ratio_threshold", low=0.0)
    check_bool(warn, "warn")
    columns = list(train_df.columns if columns is None else columns)
    d_syn = dcr(synthetic_df, train_df, columns=columns, max_rows=max_rows, seed=seed)
    d_hol = dcr(holdout_df, train_df, columns=columns, max_rows=max_rows, seed=seed)
    codes_t, codes_s, codes_h = row_codes([train_df, synthetic_df, holdout_df], columns)
    med_s, med_h = float(np.median(d_syn)), float(np.median(d_hol))
    _, close_s, close_h = close_shares(d_syn, d_hol)
    if med_h > 0:
        ratio = med_s / med_h
    else:
        ratio = float("nan") if med_s == 0 else float("inf")
    out = {
        "dcr_synthetic_median": med_s,
        "dcr_holdout_median": med_h,
        "dcr_ratio": float(ratio),
        "dcr_close_share": close_s,
        "dcr_close_share_holdout": close_h,
        "exact_copy_rate_synthetic": _copy_share(codes_s, codes_t),
        "exact_copy_rate_holdout": _copy_share(codes_h, codes_t),
    }
    problems = privacy_problems(out, len(synthetic_df), len(holdout_df), ratio_threshold=ratio_threshold)
    messages = ["Possible disclosure risk: " + "; ".join(problems) + "."] if problems else []
    overlap = _holdout_overlap(codes_t, codes_h)
    if overlap is not None:
        messages.append(overlap)
    for message in messages:
        if warn:
            warnings.warn(message, PrivacyRiskWarning, stacklevel=stacklevel)
        else:
            logger.warning(message)
    return out, d_syn, d_hol
