"""Attack-based disclosure risk of a released synthetic file.

Two attacks, each measured against the same attack on fresh data (a holdout sample drawn like the
training sample but not used to fit the synthesizer):

* :func:`membership_auc`, a distance-to-closest-record membership-inference attack: the attacker
  holds the released file and a candidate record and guesses "was in the training data" when the
  record lies close to some released record. Its AUC over training members against holdout
  non-members is 0.5 when the release tells nothing about who was in the training data, 1 when
  every member is recognisable (e.g. the release copies training rows).
* :func:`attribute_disclosure`, as synthpop's ``disclosure()``: the attacker knows a record's
  quasi-identifiers (e.g. age, sex, region) and reads its sensitive value off the released
  records with the same quasi-identifiers. The share of training records whose value is so
  disclosed is set beside the share that the holdout, released in its place, would disclose: the
  information any file from the same population gives, which a synthesizer cannot avoid.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .._errors import DataValidationError
from .._params import check_int, check_names, check_seed
from .._stats import check_weights, kish_ess
from ._validation import at_shared_precision, refuse_type_clashes
from .metrics import quantile_cuts
from .privacy import encode_records, _nearest_distances, row_codes

__all__ = ["MEMBERSHIP_ROWS", "MIN_ATTACK_ROWS", "attribute_disclosure", "membership_auc", "membership_rows",
           "weighted_auc"]

#: Fewest members (and non-members) :func:`membership_auc` scores without a warning, in effective
#: sample size (Kish's, of their weights; their number with equal weights): at 200 each, an attack
#: with no advantage scatters by about 0.029 (standard error) around 0.5.
MIN_ATTACK_ROWS = 200
#: Most members and non-members :func:`membership_auc` scores by default (``max_rows``), each side on its own.
MEMBERSHIP_ROWS = 2_000


def weighted_auc(positive: object, negative: object, positive_weights: object = None,
                 negative_weights: object = None) -> float:
    """The (weighted) probability that a positive scores above a negative, ties counting 1/2.

    With equal weights this is the Mann-Whitney statistic U / (n_pos * n_neg), the area under
    the ROC curve.

    Examples
    --------
    >>> weighted_auc([3.0, 2.0], [1.0, 2.0])
    0.875
    >>> weighted_auc([3.0, 2.0], [1.0, 2.0], [1.0, 0.0])
    1.0
    """
    pos, neg = np.asarray(positive, dtype=float).reshape(-1), np.asarray(negative, dtype=float).reshape(-1)
    if pos.size == 0 or neg.size == 0 or np.isnan(pos).any() or np.isnan(neg).any():
        raise DataValidationError(
            f"weighted_auc needs non-empty scores without missing values: got {pos.size} positive and {neg.size} negative."
        )
    wp = check_weights(positive_weights, pos.size, "positive weights")
    wn = check_weights(negative_weights, neg.size, "negative weights")
    values, inverse = np.unique(np.concatenate([pos, neg]), return_inverse=True)
    mass_p = np.bincount(inverse[: pos.size], weights=wp, minlength=values.size)
    mass_n = np.bincount(inverse[pos.size:], weights=wn, minlength=values.size)
    below_n = np.cumsum(mass_n) - mass_n  # negative weight strictly below each value
    return float(np.sum(mass_p * (below_n + 0.5 * mass_n)) / (wp.sum() * wn.sum()))


def membership_rows(train_weights: np.ndarray, holdout_weights: np.ndarray,
                    max_rows: int | None = MEMBERSHIP_ROWS) -> dict[str, tuple[int, int]]:
    """How many members and non-members :func:`membership_auc` scores: for ``"training"`` and ``"holdout"``, the
    records it scores and the records of positive weight it draws them from (at most ``max_rows`` of those, each
    side on its own; records of weight 0 are left out).

    Examples
    --------
    >>> membership_rows(np.ones(6000), np.r_[np.ones(500), np.zeros(10)])
    {'training': (2000, 6000), 'holdout': (500, 500)}
    """
    out = {}
    for side, w in (("training", train_weights), ("holdout", holdout_weights)):
        n = int(np.count_nonzero(np.asarray(w) > 0))
        out[side] = (min(n, max_rows or n), n)
    return out


def _subsample(df: pd.DataFrame, w: np.ndarray, size: int, rng: np.random.Generator) -> tuple[pd.DataFrame, np.ndarray]:
    if len(df) <= size:
        return df, w
    idx = np.sort(rng.choice(len(df), size=size, replace=False))
    return df.iloc[idx], w[idx]


def _warn_small_attack(member_weights: np.ndarray, other_weights: np.ndarray) -> None:
    """Warns when the members or non-members scored have an effective sample size (Kish) below
    :data:`MIN_ATTACK_ROWS` (their number, with equal weights), stating the AUC's standard error
    where the release gives no advantage, ``sqrt((n_m + n_o) / (12 n_m n_o))`` at effective sizes
    ``n_m`` and ``n_o`` (``sqrt(1 / (6 n))`` for ``n`` of each)."""
    ess_m, ess_o = kish_ess(member_weights), kish_ess(other_weights)
    if min(ess_m, ess_o) >= MIN_ATTACK_ROWS:
        return
    se = math.sqrt((ess_m + ess_o) / (12.0 * ess_m * ess_o))
    scored = f"{member_weights.size} members and {other_weights.size} non-members"
    if all(math.isclose(ess, w.size, rel_tol=1e-9) for ess, w in ((ess_m, member_weights), (ess_o, other_weights))):
        how, fix = scored, f"Score at least {MIN_ATTACK_ROWS} of each (training and holdout records, 'max_rows')."
    else:
        how = (f"{scored} of positive weight, whose weights leave effective sample sizes (Kish) of "
               f"{ess_m:.1f} and {ess_o:.1f}")
        fix = (f"Score records whose weights give an effective sample size of at least {MIN_ATTACK_ROWS} "
               "of each (weights spread over more records).")
    warnings.warn(
        f"The membership AUC is scored on {how}: where the release gives no advantage it still scatters by "
        f"about {se:.3f} (standard error) around 0.5. {fix}", UserWarning, stacklevel=3)


def membership_auc(
    train_df: pd.DataFrame,
    synthetic_df: pd.DataFrame,
    holdout_df: pd.DataFrame,
    *,
    columns: Sequence[str] | None = None,
    train_weights: object = None,
    holdout_weights: object = None,
    max_rows: int | None = MEMBERSHIP_ROWS,
    seed: int | None = 0,
) -> float:
    """AUC of a distance-to-closest-record membership-inference attack on the released file.

    Each candidate (training members and holdout non-members, at most ``max_rows`` of each, drawn
    by ``seed``) is scored by minus its Euclidean distance to the closest synthetic record, in
    the encoding of :func:`~microplex.evaluation.privacy.encode_records` learned on the
    synthetic file (what the attacker holds). The AUC of members against non-members, weighted
    by their survey weights when given, is 0.5 when the release does not tell members from
    fresh records; values above it measure the advantage the release gives the attacker.
    Records of weight 0 are left out before the subsampling.

    Parameters
    ----------
    train_df, synthetic_df, holdout_df : DataFrame
        Training records (members), the released file and fresh records (non-members).
    columns : sequence of str, default=None
        Columns the attacker knows; all of ``train_df``'s when None.
    train_weights, holdout_weights : array-like, default=None
        Survey weights of the members and non-members (equal when None).
    max_rows : int or None, default=2000
        Most members and non-members scored (``None``: all).
    seed : int or None, default=0
        Seeds the subsampling.

    Warns
    -----
    UserWarning
        When the members or non-members scored have an effective sample size (Kish) below
        :data:`MIN_ATTACK_ROWS`, with the AUC's standard error where the release gives no advantage.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> train = pd.DataFrame({"x": rng.normal(size=400), "y": rng.normal(size=400)})
    >>> holdout = pd.DataFrame({"x": rng.normal(size=400), "y": rng.normal(size=400)})
    >>> membership_auc(train, train.copy(), holdout)  # a release that copies the training rows
    1.0
    """
    max_rows = check_int(max_rows, "max_rows", low=1, allow_none=True)
    seed = check_seed(seed, "seed")
    columns = check_names(list(train_df.columns if columns is None else columns), "columns", allow_empty=False)
    for label, df in (("train_df", train_df), ("synthetic_df", synthetic_df), ("holdout_df", holdout_df)):
        if not isinstance(df, pd.DataFrame) or len(df) == 0:
            raise DataValidationError(f"membership_auc needs a non-empty DataFrame {label}.")
        missing = [c for c in columns if c not in df.columns]
        if missing:
            raise DataValidationError(f"{label} lacks the columns {missing} of the attack.")
    refuse_type_clashes({"train_df": train_df, "synthetic_df": synthetic_df, "holdout_df": holdout_df}, columns)
    wt = check_weights(train_weights, len(train_df), "train weights")
    wh = check_weights(holdout_weights, len(holdout_df), "holdout weights")
    # Records of weight 0 do not enter the weighted AUC: leave them out before subsampling, so that the
    # subsample is drawn among the records that count (a uniform subsample of them keeps the estimand,
    # and cannot lose every weighted record).
    members, others = train_df.loc[wt > 0, columns], holdout_df.loc[wh > 0, columns]
    wt, wh = wt[wt > 0], wh[wh > 0]
    # each side on its own: the AUC compares every member with every non-member whatever the two counts (cut to
    # the smaller side's, max_rows=None scored 300 of 800 members, and which ones was the rows' order)
    rng = np.random.default_rng(seed)
    sizes = membership_rows(wt, wh, max_rows)  # wt, wh: the positive weights
    members, wt = _subsample(members, wt, sizes["training"][0], rng)
    others, wh = _subsample(others, wh, sizes["holdout"][0], rng)
    _warn_small_attack(wt, wh)
    xs, xm, xo = encode_records(synthetic_df[columns], members, others, columns=columns)
    d_members, d_others = _nearest_distances(xs, xm, xo)  # exact: a copied record is at 0, tied with other copies
    return weighted_auc(-d_members, -d_others, wt, wh)


def _cells(frames: list[pd.DataFrame], columns: list[str], reference: pd.DataFrame, w: np.ndarray,
           bins: int) -> list[np.ndarray]:
    """Each frame's cell codes over ``columns`` (:func:`~.privacy.row_codes`): numeric columns with more
    than ``bins`` distinct values among the records of positive weight are cut at the weighted quantiles of
    ``reference`` (the training records), all read at the float precision they share
    (:func:`._validation.at_shared_precision`). Records of weight 0 are outside the population: counted, they made
    a column of one weighted value look like one to cut, and two values fell in one group."""
    labels: list[dict[str, object]] = [{} for _ in frames]
    for c in columns:
        # the cut and the values at the precision the frames share (a float32 release's 0.699999988079071 is 0.7)
        (ref, *shared), _ = at_shared_precision(reference[c], *(f[c] for f in frames))
        cut = quantile_cuts(ref, w, bins)
        for k, f in enumerate(frames):
            if cut is None:
                labels[k][c] = f[c].reset_index(drop=True)  # its dtype kept: row_codes compares numbers as numbers
            else:
                x = shared[k].to_numpy(dtype=float, na_value=np.nan)
                labels[k][c] = np.where(np.isnan(x), -1, np.searchsorted(cut, x, side="right"))
    return row_codes([pd.DataFrame(lab, index=pd.RangeIndex(len(f))) for lab, f in zip(labels, frames)], columns)


def _disclosed(keys: np.ndarray, values: np.ndarray, w: np.ndarray, rel_keys: np.ndarray, rel_values: np.ndarray,
               rel_w: np.ndarray) -> tuple[float, float]:
    """(DiSCO, attribution) shares of the records (cell codes keys, values, w) against a released file."""
    rel = pd.DataFrame({"k": rel_keys, "v": rel_values, "w": rel_w})
    rel = rel[rel["w"] > 0]
    table = rel.groupby(["k", "v"], sort=True)["w"].sum().reset_index()
    n_values = table.groupby("k")["v"].size()
    # the most frequent values of each key; k tied ones each earn 1/k (the attacker picks one of them at random):
    # taking the first of them took the one whose code came first, i.e. the training rows' order decided
    modes = table[table["w"] == table.groupby("k")["w"].transform("max")]
    share = 1.0 / modes.groupby("k")["v"].transform("size").to_numpy()
    credit = pd.Series(share, index=pd.MultiIndex.from_arrays([modes["k"].to_numpy(), modes["v"].to_numpy()]))
    correct = credit.reindex(pd.MultiIndex.from_arrays([keys, values])).fillna(0.0).to_numpy()  # absent: 0
    unique = (n_values.reindex(keys).to_numpy() == 1)
    total = w.sum()
    return float(np.sum(w * ((correct > 0) & unique)) / total), float(np.sum(w * correct) / total)


def attribute_disclosure(
    train_df: pd.DataFrame,
    synthetic_df: pd.DataFrame,
    holdout_df: pd.DataFrame,
    quasi_identifiers: Sequence[str],
    sensitive: str,
    *,
    train_weights: object = None,
    synthetic_weights: object = None,
    holdout_weights: object = None,
    bins: int = 5,
) -> dict[str, float]:
    """Attribute disclosure of ``sensitive`` from ``quasi_identifiers`` (synthpop's ``disclosure()``).

    For each training record the attacker looks up the released records with the same
    quasi-identifiers. Numeric columns with more than ``bins`` distinct values among the training
    records of positive weight are first cut into ``bins`` groups at the training records' weighted
    quantiles (synthpop's ``ngroups``), so a
    money variable is disclosed when its group is (point masses such as 0 form their own group
    when they are heavy enough).

    Returns
    -------
    dict
        ``disco_synthetic``: the (weighted) share of training records whose quasi-identifiers
        occur in the synthetic file, where every synthetic record with them has one sensitive
        value, and that value is the record's (synthpop's DiSCO). ``attribution_synthetic``: the
        share whose sensitive value is the synthetic records' most frequent (weighted) value for
        their quasi-identifiers; where ``k`` values tie for most frequent, a record whose value is
        one of them counts ``1/k`` (an attacker picking one of them at random), whatever the order
        of the records. ``disco_holdout`` and ``attribution_holdout``: the same with the
        holdout released instead, the baseline any file from the population gives.

    Examples
    --------
    >>> train = pd.DataFrame({"age": [30, 30, 40, 50], "sick": ["y", "y", "n", "n"]})
    >>> holdout = pd.DataFrame({"age": [30, 40, 40, 60], "sick": ["n", "n", "y", "n"]})
    >>> out = attribute_disclosure(train, train.copy(), holdout, ["age"], "sick")
    >>> out["disco_synthetic"], out["disco_holdout"]
    (1.0, 0.0)
    """
    quasi = check_names(quasi_identifiers, "quasi_identifiers", allow_empty=False)
    (sensitive,) = check_names([sensitive], "sensitive")
    if sensitive in quasi:
        raise DataValidationError(f"The sensitive column {sensitive!r} cannot also be a quasi-identifier.")
    bins = check_int(bins, "bins", low=2)
    frames = {"train_df": train_df, "synthetic_df": synthetic_df, "holdout_df": holdout_df}
    for label, df in frames.items():
        if not isinstance(df, pd.DataFrame) or len(df) == 0:
            raise DataValidationError(f"attribute_disclosure needs a non-empty DataFrame {label}.")
        missing = [c for c in quasi + [sensitive] if c not in df.columns]
        if missing:
            raise DataValidationError(f"{label} lacks the columns {missing} of the attack.")
    refuse_type_clashes(frames, quasi + [sensitive])
    wt = check_weights(train_weights, len(train_df), "train weights")
    ws = check_weights(synthetic_weights, len(synthetic_df), "synthetic weights")
    wh = check_weights(holdout_weights, len(holdout_df), "holdout weights")
    dfs = [train_df, synthetic_df, holdout_df]
    keys = _cells(dfs, quasi, train_df, wt, bins)
    values = _cells(dfs, [sensitive], train_df, wt, bins)
    disco_s, attr_s = _disclosed(keys[0], values[0], wt, keys[1], values[1], ws)
    disco_h, attr_h = _disclosed(keys[0], values[0], wt, keys[2], values[2], wh)
    return {"disco_synthetic": disco_s, "disco_holdout": disco_h,
            "attribution_synthetic": attr_s, "attribution_holdout": attr_h}
