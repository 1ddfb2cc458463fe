"""Propensity-score utility: how well a classifier tells real from synthetic records (pMSE)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .._errors import DataValidationError
from .._estimator import DEPRECATED, deprecated_random_state
from .._params import check_int, shown
from .._stats import one_hot
from ._validation import at_shared_precision, check_weights, is_numeric, refuse_type_clashes, require_columns

#: Rows each sample needs for the default classifier, whose leaves hold at least 50 rows: with
#: fewer it cannot split at all and scores any two samples as indistinguishable (pMSE 0).
MIN_ROWS_DEFAULT = 100

#: Row budget of the default number of cross-fitting repeats (``n_repeats=None``): about as many
#: classifier rows in all as one cross-fitting of 20,000 rows.
REPEAT_ROWS = 20_000

__all__ = ["pmse"]


def _no_pmse() -> str:
    """How a message says to leave pMSE out: ``pmse=False``, or ``--no-pmse`` where a command-line flag gave
    ``pmse`` (:func:`.._params.shown`: within ``microplex evaluate``)."""
    flag = shown("pmse")
    return f"--no-{flag[2:]}" if flag.startswith("--") else f"{flag}=False"


def _leave_out() -> str:
    """The advice of the refusal of a sample too small for the default classifier: leave pMSE out or, in Python
    (the command line has no classifier option), pass a classifier suited to small samples.

    >>> from microplex._params import flags
    >>> _leave_out()
    'Pass pmse=False to evaluate, or a classifier suited to small samples'
    >>> with flags({"pmse": "--pmse"}):
    ...     _leave_out()
    'Pass --no-pmse'
    """
    if shown("pmse").startswith("--"):
        return f"Pass {_no_pmse()}"
    return f"Pass {_no_pmse()} to evaluate, or a classifier suited to small samples"


def _design_matrix(df: pd.DataFrame, columns: Sequence[str], categories: dict[str, list]) -> np.ndarray:
    parts = []
    for c in columns:
        if c in categories:
            codes = pd.Categorical(df[c].astype(object), categories=categories[c]).codes
            parts.append(one_hot(codes, len(categories[c])))
        else:
            x = df[c].to_numpy(dtype=float, na_value=np.nan)
            miss = np.isnan(x)
            parts.append(np.where(miss, 0.0, x)[:, None])
            parts.append(miss[:, None].astype(float))
    return np.hstack(parts)


def pmse(
    real_df: pd.DataFrame,
    synthetic_df: pd.DataFrame,
    real_weights: object = None,
    synthetic_weights: object = None,
    *,
    classifier: object = None,
    n_folds: int = 2,
    n_repeats: int | None = None,
    max_rows: int | None = 20_000,
    seed: int | None = 0,
    random_state: int | None | str = DEPRECATED,
) -> float:
    """Returns the propensity-score mean squared error (pMSE) of a real-vs-synthetic classifier.

    Real and synthetic rows are stacked with label 1 for synthetic (rows of weight 0 left out
    first: they are outside the population each side stands for); each side's weights are
    scaled to sum to its row count, so ``c = n_synthetic / n``. Out-of-fold propensities ``p``
    (``n_folds``-fold cross-fitting, so flexible classifiers cannot score by memorising) give
    ``pMSE = sum w (p - c)^2 / sum w``: 0 when the classifier cannot tell the sources apart,
    ``c (1 - c)`` (0.25 for equal sizes) when it separates them perfectly (Snoke et al. 2018,
    the utility measure of R synthpop). Categorical columns are one-hot coded; numeric missing
    values get an indicator; numbers are read at the narrowest float precision either frame stores them at (a
    float32 column's 0.699999988079071 is a float64 column's 0.7). The cross-fitting is repeated over ``n_repeats`` random fold splits
    and the pMSE averaged: the same expected value with less of the split's noise (one split of
    two 676-row samples gave 0.0025-0.0102 for the same data, depending on the split).

    Parameters
    ----------
    real_df, synthetic_df : pandas.DataFrame
        The two samples, with the same columns (every column is a feature of the classifier).
    real_weights, synthetic_weights : array-like or None, default=None
        Weights of each sample's rows (``None``: equal); each side is scaled to sum to its row count.
    classifier : scikit-learn classifier, default=None
        Cloned for each fold; ``None`` uses a regularised gradient-boosting classifier
        (``HistGradientBoostingClassifier(early_stopping=True, max_leaf_nodes=15,
        min_samples_leaf=50)``), which keeps the noise floor low (about 0.001 for two fresh
        samples of 600 rows from one distribution).
    n_folds : int, default=2
        Folds of each cross-fitting (at least 2).
    n_repeats : int or None, default=None
        Cross-fittings over independent fold splits whose pMSE values are averaged (at least 1;
        each costs ``n_folds`` classifier fits). ``None`` repeats small samples more, where one
        split is noisiest and fits are cheap: ``clip(round(REPEAT_ROWS / rows), 1, 5)`` with
        ``rows`` the real plus synthetic rows after subsampling (5 repeats up to about 4,400
        rows, 1 from about 13,400).
    max_rows : int or None, default=20000
        Each side is subsampled (by ``seed``) to at most this many rows.
    seed : int or None, default=0
        Seeds the subsampling and the fold splits (the default classifier has a fixed seed of its own).
    random_state : int or None
        Deprecated name of ``seed`` (a ``FutureWarning``; giving both raises).

    Raises
    ------
    DataValidationError
        When the default classifier gets fewer than 100 rows on a side (it could not split and
        would report pMSE 0, "indistinguishable", whatever the data), or a fold has no weight of
        one sample (weights on too few records).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> r = pd.DataFrame({"x": rng.normal(size=400)})
    >>> round(pmse(r, r + 100.0), 2)
    0.25
    """
    from sklearn.base import clone
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold

    n_folds = check_int(n_folds, "n_folds", low=2)
    n_repeats = check_int(n_repeats, "n_repeats", low=1, allow_none=True)
    max_rows = check_int(max_rows, "max_rows", low=1, allow_none=True)
    seed = deprecated_random_state(seed, random_state, "pmse")
    if classifier is not None and not all(callable(getattr(classifier, a, None)) for a in ("fit", "predict_proba")):
        raise DataValidationError(
            f"The 'classifier' parameter must be a scikit-learn classifier (fit, predict_proba) or None. "
            f"Got {type(classifier).__name__} instead."
        )
    columns = list(real_df.columns)
    require_columns(synthetic_df, columns, "synthetic_df", origin="real_df")
    require_columns(synthetic_df, [c for c in columns if is_numeric(real_df[c])], "synthetic_df", numeric=True)
    refuse_type_clashes({"real_df": real_df, "synthetic_df": synthetic_df}, columns)
    rng = np.random.default_rng(seed)
    wr = check_weights(real_weights, len(real_df), "real weights")
    ws = check_weights(synthetic_weights, len(synthetic_df), "synthetic weights")
    frames, weights, all_positive = [], [], {}
    for label, df, w in (("real", real_df, wr), ("synthetic", synthetic_df, ws)):
        all_positive[label] = bool((w > 0).all())
        if not all_positive[label]:  # rows of weight 0 are outside the population: they took folds, bins and leaves
            df, w = df.loc[w > 0], w[w > 0]
        if max_rows is not None and len(df) > max_rows:
            idx = np.sort(rng.choice(len(df), size=max_rows, replace=False))
            df, w = df.iloc[idx], w[idx]
        frames.append(df.reset_index(drop=True))
        weights.append(w * len(w) / w.sum())
    sizes = {"real": len(frames[0]), "synthetic": len(frames[1])}
    need = MIN_ROWS_DEFAULT if classifier is None else n_folds
    for label, size in sizes.items():
        if size < need:
            raise DataValidationError(
                f"pmse needs at least {need} {label} rows" + ("" if all_positive[label] else " of positive weight")
                + (" with the default classifier (its leaves hold 50 rows; with fewer it scores any data as "
                   "indistinguishable)" if classifier is None else f" for {n_folds} folds")
                + f": got {size}. {_leave_out()}."
            )
    for c in columns:  # numbers at the precision both frames share: 0.7 beside a float32 0.699999988079071 split them
        (frames[0][c], frames[1][c]), _ = at_shared_precision(frames[0][c], frames[1][c])
    categories = {
        c: sorted(pd.concat([f[c] for f in frames]).dropna().astype(object).unique().tolist(), key=str)
        for c in columns
        if not is_numeric(real_df[c])
    }
    x = np.vstack([_design_matrix(f, columns, categories) for f in frames])
    y = np.r_[np.zeros(len(frames[0])), np.ones(len(frames[1]))]
    w = np.r_[weights[0], weights[1]]
    base = classifier
    if base is None:
        base = HistGradientBoostingClassifier(early_stopping=True, max_leaf_nodes=15, min_samples_leaf=50, random_state=0)
    c = w[y == 1].sum() / w.sum()
    if n_repeats is None:
        n_repeats = int(np.clip(round(REPEAT_ROWS / len(y)), 1, 5))
    scores = []
    for _ in range(n_repeats):
        p = np.empty_like(y)
        folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=int(rng.integers(2**31 - 1)))
        for train, test in folds.split(x, y):
            for label, cls in (("real", 0), ("synthetic", 1)):
                if w[train][y[train] == cls].sum() <= 0:
                    raise DataValidationError(
                        f"pmse: a cross-fitting fold holds no {label} weight: the {label} weights sit on too few "
                        f"records (e.g. all on one) to train the classifier. Pass {_no_pmse()} or spread the weights."
                    )
            model = clone(base).fit(x[train], y[train], sample_weight=w[train])
            p[test] = model.predict_proba(x[test])[:, 1]
        scores.append(float(np.sum(w * (p - c) ** 2) / w.sum()))
    return float(np.mean(scores))
