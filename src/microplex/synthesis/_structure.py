"""Structural zeros: target states that a condition's category, or a range of a numeric one, rules out.

A target's discrete state (a point mass such as 0, a missing value, a category) may be impossible
for some records by construction: the unemployed have no commute, the employed always report
hours, children have no income. The pattern head is a softmax given the conditions, so it learns
such a share as small, not as 0 (acs12: the unemployed drawn with a commute time 4.6% of the time,
the employed without hours 0.5%, though no training record of either holds that state; with age but
not employment as a condition, 5.2% of the records drawn in a state no training record of their age
group holds: an income, hours or commute below age 15, where acs12 has none, or no income from 15
on). Like a contingency table's structural zeros, these cells are taken from the data:

* a *cell* is a binary input of the condition encoding (one category of a categorical condition,
  its missing value too, or the missing-value indicator of a numeric condition), or a *tail* of a
  numeric condition: its values below a threshold, or above one;
* the states of a discrete target that no training record of positive weight in a binary input's cell
  holds are *ruled out* there when their weighted shares over all records of positive weight, summed, times
  the cell's Kish effective size, expect at least :data:`MIN_EXPECTED` records there (a Poisson
  count of mean 5 is 0 with probability 0.7%: such an absence is structure, not chance) plus
  ``log 2`` per state of the target (the unseen states are a set chosen from the target's ``K``
  states: a Bonferroni correction over its ``2**K`` sets; without it, a target of many rare states,
  such as ages as categories, had some set unseen in any small cell by chance). The states are
  tested together, so a cell that holds one state only (the unemployed: commute time always
  missing) rules out the others even where each of them is small (commute times heaped on 10, 15,
  20 and 30 minutes are states of their own); a rare state alone, such as a top code of 0.5%, is
  not ruled out in a cell of ordinary size;
* a tail's threshold is found in the data, so it needs more: per target, a candidate threshold
  lies midway between the lowest value at which one of its states is held and the value below it
  (the states the tail never holds are those whose records all lie beyond it); those states are
  ruled out when they are frequent *next to* the tail, among the records beyond the threshold up to
  :data:`NEAR` times the weight of the tail's *band* (its records beyond the target's last ruled
  tail, so that a wider tail is not judged on the strength of a narrower one's records): ``x``
  effective records of them there, ``x * log(1 + ess_band / ess_next)`` (``-log`` of the
  probability that none of them would fall in the band were they as frequent there) must reach
  :data:`MIN_EVIDENCE_TAIL` plus ``log 2`` per state held next to the tail (a Bonferroni correction
  over the sets of states the unseen ones are chosen from: many rare states, such as ages as
  categories, leave some set unseen in any small band by chance). A rate that falls smoothly
  towards 0 (which the head learns) is not ruled out; a step is. Upper tails likewise, mirrored;
* a pattern (the states of every discrete target together) is ruled out in a record's cells when
  any of its states is; drawing and :meth:`~microplex.synthesis.Synthesizer.log_prob` (``-inf``)
  then give it probability 0, the head's probabilities renormalized over the patterns the rules
  allow. The head trains as without rules: masked in training, the rules moved the shares the head
  learnt for other cells through its shared weights (acs12, 5 splits: the unemployed's missing-hours
  share 0.02 above its training share on average, every split above), so the networks are those of
  ``structural_zeros=False``. After training, one bias per pattern is added to the head's output
  (:func:`._dp_rake.rake_ruled_head`) so that its distribution with the rules, averaged over the
  training records, has every target's training state shares: the mass the head put in a ruled cell,
  which the rules moved onto the other states of its rows, goes back to the rows that hold the state
  (CPS 1988, negative experience ruled out below education 12.5: drawn for 0.0113 of the records
  before, 0.0144 in training and now).

A rule is a column of the encoded conditions and an open interval of it (``lo < value < hi``): a
binary input's cell is ``(0.5, inf)``; a tail's is ``(-inf, t)`` or ``(t, inf)`` on the
standardized value, where a missing value reads as 0 (the cell's records, counted as the model
reads them). Conditions whose cells together rule out every pattern (a combination no training
record has and that the rules contradict) get the head's probabilities without rules, with a
warning (:func:`contradicting_rows`). Computed only without differential privacy (the rules are
statistics of the data that no mechanism covers); ``Synthesizer(structural_zeros=False)`` turns
them off.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from .._errors import DataValidationError
from .._stats import kish_ess

__all__ = ["MIN_EXPECTED", "MIN_EVIDENCE_TAIL", "BINARY", "Rules", "fit_rules", "rule_cells",
           "contradicting_rows", "contradicting_mask", "check_rules", "rules_table"]

#: Records a state's overall share must expect in a cell for its absence there to rule it out (plus ``log 2`` per
#: state of the target: see the module's text).
MIN_EXPECTED = 5.0
#: Evidence a tail of a numeric condition needs to rule out states: ``-log`` of the probability of seeing none of
#: them in it, were they as frequent there as next to it (20 log 2: one in a million; see :meth:`_Tester.tails`).
MIN_EVIDENCE_TAIL = 20 * float(np.log(2.0))
#: The records next to a tail that its band is compared with: this fraction of the band's weight.
NEAR = 0.25
#: The interval of a binary input's cell: the input is 1.
BINARY = (0.5, float("inf"))


class Rules(NamedTuple):
    """Structural zeros: rule ``r`` rules out the patterns ``forbidden[r]`` (bool, (R, P)) where the encoded
    conditions' column ``columns[r]`` (int64, (R,)) lies strictly between ``bounds[r]`` (float32, (R, 2))."""

    columns: np.ndarray
    bounds: np.ndarray
    forbidden: np.ndarray


def _inside(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """The cell's records: ``lo < values < hi`` in float32, as the model compares them."""
    values = np.asarray(values, dtype=np.float32)
    return (values > np.float32(lo)) & (values < np.float32(hi))


class _Tester:
    """The tests of the module's text, for cells of the training records."""

    def __init__(self, states: np.ndarray, patterns: np.ndarray, w: np.ndarray) -> None:
        self.states, self.patterns = states, patterns
        self.positive = w > 0
        self.w = np.where(self.positive, w, 0.0)
        total = float(self.w.sum())
        self.shares = [np.bincount(states[:, m], weights=self.w, minlength=int(patterns[:, m].max()) + 1) / total
                       for m in range(patterns.shape[1])]

    def binary(self, cell: np.ndarray) -> np.ndarray | None:
        """The patterns a binary input's cell (bool, (N,)) rules out: the states it never holds, tested together
        against their shares over all records."""
        if not (cell & self.positive).any():
            return None
        ess = kish_ess(self.w[cell & self.positive])
        out = np.zeros(len(self.patterns), dtype=bool)
        for m, share in enumerate(self.shares):
            seen = np.zeros(len(share), dtype=bool)
            seen[np.unique(self.states[cell & self.positive, m])] = True  # records of weight 0: outside the population
            # Bonferroni over the 2**K sets of the target's K states that the unseen ones are chosen from
            if share[~seen].sum() * ess >= MIN_EXPECTED + np.count_nonzero(share) * np.log(2.0):
                out |= ~seen[self.patterns[:, m]]
        return out

    def tails(self, values: np.ndarray) -> list[tuple[float, np.ndarray]]:
        """The lower tails of ``values`` (float32, (N,)) that rule some pattern out: ``(threshold, forbidden)``.

        Per target, candidate thresholds lie where a state's records begin (midway to the value below); a tail's
        unseen states are ruled out when their records next to it (beyond the threshold, up to :data:`NEAR` times
        the weight of the tail's *band*: its records beyond the target's last ruled tail) make a count of 0 in the
        band improbable: ``x`` effective records of them next to it, ``x * log(1 + ess_band / ess_next)`` at least
        :data:`MIN_EVIDENCE_TAIL` plus ``log 2`` per state held next to it (``-log`` of the probability that, were
        the states as frequent on both sides, none of those ``x`` records would fall in the band; Bonferroni over
        the sets of those states)."""
        order = np.argsort(values, kind="stable")
        v = values[order]
        distinct = np.unique(v)
        wo = self.w[order] / max(float(self.w.max()), np.finfo(float).tiny)  # scaled: w**2 stays finite
        sum_w, sum_w2 = np.r_[0.0, np.cumsum(wo)], np.r_[0.0, np.cumsum(wo * wo)]  # sums of the first k records

        def ess(a: int, b: int) -> float:  # Kish size of the records a..b-1 (in sorted order)
            w2 = sum_w2[b] - sum_w2[a]
            return float((sum_w[b] - sum_w[a]) ** 2 / w2) if w2 > 0 else 0.0

        ruled: dict[float, np.ndarray] = {}
        for m, share in enumerate(self.shares):
            codes = self.states[order, m]
            # the lowest value at which each state is held by a record of positive weight: seen in (-inf, t) iff
            # below t (records of weight 0 are outside the population)
            lowest = np.full(len(share), np.inf, dtype=np.float32)
            positive = self.positive[order]
            held, first = np.unique(codes[positive], return_index=True)
            lowest[held] = v[positive][first]
            start = 0  # the band's first record: after the target's last ruled tail
            for edge in np.unique(lowest[np.isfinite(lowest)]):
                if edge <= distinct[0]:
                    continue
                below = distinct[np.searchsorted(distinct, edge) - 1]
                t = np.float32((float(below) + float(edge)) / 2.0)
                k = int(np.searchsorted(v, t, side="left"))  # the tail: the first k records (value < t)
                band = sum_w[k] - sum_w[start]
                if k <= start or band <= 0:
                    continue
                end = max(int(np.searchsorted(sum_w, sum_w[k] + NEAR * band, side="left")), k + 1)  # next to it
                end = min(end, len(v))
                unseen = lowest >= t
                near = np.bincount(codes[k:end], weights=wo[k:end], minlength=len(share))  # their states' weights
                if near.sum() <= 0:
                    continue
                e_band, e_near = ess(start, k), ess(k, end)
                x = near[unseen].sum() / near.sum() * e_near
                # the unseen states are a set chosen from those held next to the tail: -log of the probability,
                # Bonferroni-corrected over the 2**K sets of its K states (many rare states, such as ages as
                # categories, leave some set unseen in any band by chance)
                chosen = np.count_nonzero(near > 0) * np.log(2.0)
                if e_band > 0 and e_near > 0 and x * np.log1p(e_band / e_near) >= MIN_EVIDENCE_TAIL + chosen:
                    ruled.setdefault(float(t), np.zeros(len(self.patterns), dtype=bool))
                    ruled[float(t)] |= unseen[self.patterns[:, m]]
                    start = k
        return sorted(ruled.items())


def fit_rules(context: np.ndarray, cells: list[int], numeric: list[int], pattern: np.ndarray, patterns: np.ndarray,
              w: np.ndarray) -> Rules | None:
    """The rules of the cells (:class:`Rules`), or None when no cell rules out a pattern.

    ``context`` (N, C) are the encoded conditions, ``cells`` its binary columns, ``numeric`` its columns of numeric
    conditions' standardized values (their tails are cells too); ``pattern`` (N,) is each record's pattern index
    into ``patterns`` (P, M), the states of the ``M`` discrete targets; ``w`` (N,) the weights. A state counts as
    seen in a cell when a training record of positive weight holds it there: records of weight 0 are outside the
    population, so a state that only they hold in a cell is ruled out there as one that no record holds (their
    own pattern then gets ``log_prob`` ``-inf``, as a category only they hold does); expected counts use the
    records of positive weight too.
    """
    if (len(cells) == 0 and len(numeric) == 0) or patterns.shape[1] == 0 or len(patterns) < 2:
        return None
    tester = _Tester(patterns[pattern], patterns, np.asarray(w, dtype=float))
    found: list[tuple[int, float, float, np.ndarray]] = []
    for col in cells:
        out = tester.binary(_inside(context[:, col], *BINARY))
        if out is not None and out.any():
            found.append((col, *BINARY, out))
    for col in numeric:
        values = np.asarray(context[:, col], dtype=np.float32)
        found += [(col, -np.inf, t, out) for t, out in tester.tails(values)]
        found += [(col, -t, np.inf, out) for t, out in tester.tails(-values)]  # upper tails: (t, inf)
    if not found:
        return None
    return Rules(np.asarray([f[0] for f in found], dtype=np.int64),
                 np.asarray([[f[1], f[2]] for f in found], dtype=np.float32),
                 np.stack([f[3] for f in found]))


def rule_cells(rules: Rules, encoder: Any) -> list[tuple[str, Any]]:
    """Each rule's cell in the conditions' terms: ``(condition, value)``, the value a category (``None`` for a
    missing value) or, for a tail of a numeric condition, a :class:`pandas.Interval` open on both sides in the
    condition's units (rounded to 6 significant digits)."""
    binary = encoder.cells()
    numeric = encoder.numeric_columns()
    out = []
    for col, (lo, hi) in zip(rules.columns.tolist(), rules.bounds.tolist(), strict=True):
        if col in binary:
            out.append(binary[col])
            continue
        name = numeric[col]
        mean, std = encoder.stats[name]
        ends = [float(f"{b * std + mean:.6g}") if np.isfinite(b) else b for b in (lo, hi)]
        out.append((name, pd.Interval(*ends, closed="neither")))
    return out


def contradicting_rows(frame: pd.DataFrame, rules: Rules, encoder: Any) -> tuple[int, dict]:
    """Rows of ``frame`` whose cells together rule out every pattern: their count and the cells of the first such
    combination (``{condition: value}`` as :func:`rule_cells` names them). The cells are read as the model reads
    them, from ``encoder``'s encoding of the conditions (a :class:`~microplex.synthesis.transforms.ConditionEncoder`)."""
    hit, first = contradicting_mask(frame, rules, encoder)
    if first is None:
        return 0, {}
    described = rule_cells(rules, encoder)
    return int(hit.sum()), {described[r][0]: described[r][1] for r in np.flatnonzero(first)}


def contradicting_mask(frame: pd.DataFrame, rules: Rules, encoder: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """Which rows of ``frame`` hold cells that together rule out every pattern (see :func:`contradicting_rows`), and
    the rules the first such row's cells bring (None when no row does)."""
    if not len(frame) or not rules.forbidden.any(axis=0).all():  # even all the rules together leave some pattern
        return np.zeros(len(frame), dtype=bool), None
    on = np.zeros((len(frame), len(rules.columns)), dtype=bool)  # (N, R): the rules each row's cells bring
    names, offsets = encoder.column_conditions(), encoder.offsets()
    for name in dict.fromkeys(names[int(c)] for c in rules.columns):  # one encoding of each condition involved
        block, first = encoder.block(name, frame[name]), offsets[name]
        for r in np.flatnonzero([names[int(c)] == name for c in rules.columns]):
            on[:, r] = _inside(block[:, int(rules.columns[r]) - first], *rules.bounds[r])
    # the distinct combinations of rules (few), found on the rows' bits packed into bytes
    packed = np.ascontiguousarray(np.packbits(on, axis=1))
    _, first_row, inverse = np.unique(packed.view(np.dtype((np.void, packed.shape[1]))).ravel(), return_index=True,
                                      return_inverse=True)
    combos = on[first_row]
    bad = np.array([rules.forbidden[combo].any(axis=0).all() for combo in combos])
    hit = bad[inverse.reshape(-1)]
    return hit, (combos[np.flatnonzero(bad)[0]] if hit.any() else None)


def check_rules(tensors: dict[str, Any], encoder: Any, n_patterns: int, label: str) -> Rules | None:
    """The rules of a model file's tensors ``rule_columns``, ``rule_forbidden`` (both or neither) and ``rule_bounds``
    (absent in files written before tails were cells, whose rules are all binary inputs'), checked: each column a
    binary input or a numeric condition's value of the conditions' encoding ``encoder``, its interval
    :data:`BINARY` for a binary input and an open tail ``(-inf, t)`` or ``(t, inf)`` for a numeric condition, no
    cell twice, each rule ruling out some pattern but not every one."""
    names = ("rule_columns", "rule_forbidden")
    held = [n in tensors for n in names]
    where = f"{label} is not a valid Synthesizer model file"
    if not any(held):
        if "rule_bounds" in tensors:
            raise DataValidationError(f"{where}: tensor 'rule_bounds' comes with 'rule_columns' and 'rule_forbidden' "
                                      "(structural zeros); it holds neither.")
        return None
    if not all(held):
        raise DataValidationError(f"{where}: tensors {list(names)} come together (structural zeros); it holds one.")
    columns, forbidden = tensors["rule_columns"], tensors["rule_forbidden"]
    if columns.ndim != 1 or str(columns.dtype) != "torch.int64" or forbidden.ndim != 2 \
            or str(forbidden.dtype) != "torch.bool" or forbidden.shape != (len(columns), n_patterns):
        raise DataValidationError(
            f"{where}: tensors 'rule_columns' (int64, R) and 'rule_forbidden' (bool, R x {n_patterns} patterns) have "
            f"dtypes {columns.dtype}, {forbidden.dtype} and shapes {tuple(columns.shape)}, {tuple(forbidden.shape)}.")
    cols = columns.numpy()
    binary, numeric = encoder.cells(), encoder.numeric_columns()
    if "rule_bounds" in tensors:
        bounds = tensors["rule_bounds"]
        if str(bounds.dtype) != "torch.float32" or tuple(bounds.shape) != (len(cols), 2):
            raise DataValidationError(
                f"{where}: tensor 'rule_bounds' must be float32 of shape ({len(cols)}, 2) (one interval per rule); "
                f"got {bounds.dtype} of shape {tuple(bounds.shape)}.")
        bounds = bounds.numpy()
    else:  # written before tails were cells: every rule is a binary input's
        if set(cols.tolist()) & set(numeric):
            raise DataValidationError(
                f"{where}: tensor 'rule_bounds' is missing; a rule on a numeric condition's value (column "
                f"{sorted(set(cols.tolist()) & set(numeric))[0]}) needs its bounds.")
        bounds = np.tile(np.asarray(BINARY, dtype=np.float32), (len(cols), 1))
    if len(cols) == 0 or not set(cols.tolist()) <= set(binary) | set(numeric):
        raise DataValidationError(
            f"{where}: tensor 'rule_columns' must name binary inputs or numeric conditions' values of the "
            f"{encoder.n_features} condition features (one of {sorted(set(binary) | set(numeric))[:10]}); got "
            f"{cols.tolist()[:10]}.")
    lo, hi = bounds[:, 0], bounds[:, 1]
    tail = np.isin(cols, list(numeric))
    ok = np.where(tail, (np.isneginf(lo) & np.isfinite(hi)) | (np.isfinite(lo) & np.isposinf(hi)),
                  (lo == np.float32(BINARY[0])) & np.isposinf(hi))
    if not ok.all():
        raise DataValidationError(
            f"{where}: tensor 'rule_bounds' must hold ({BINARY[0]}, inf) for a binary input's rule and an open tail "
            "(-inf, t) or (t, inf) for a numeric condition's.")
    keys = {(int(c), float(a), float(b)) for c, a, b in zip(cols, lo, hi, strict=True)}
    if len(keys) != len(cols):
        raise DataValidationError(f"{where}: tensors 'rule_columns' and 'rule_bounds' hold the same cell twice.")
    rows = forbidden.numpy()
    if not rows.any(axis=1).all() or rows.all(axis=1).any():
        raise DataValidationError(
            f"{where}: tensor 'rule_forbidden' must rule out some pattern but not every one in each row.")
    return Rules(cols, bounds, rows)


def _state_label(encoder: Any, state: int) -> Any:
    """A target state in words: a category, a point mass's value, ``"missing"``, or a continuous segment
    (``"a value"``; ``"a negative value"`` / ``"a positive value"`` where the target has both sides)."""
    if hasattr(encoder, "categories"):
        return "missing" if state == len(encoder.categories) else encoder.categories[state]
    k = len(encoder.point_masses)
    if state < k:
        return float(encoder.point_masses[state])
    if encoder.missing_state is not None and state == encoder.missing_state:
        return "missing"
    if len(encoder.segments) == 1:
        return "a value"
    return "a negative value" if encoder.segments[state - k].sign < 0 else "a positive value"


def rules_table(synth: Any) -> pd.DataFrame:
    """The fitted structural zeros of ``synth``, one row per cell and target: ``condition``, ``value`` (the
    category, ``None`` for the missing values, or a numeric condition's range, a :class:`pandas.Interval`),
    ``target`` and ``ruled_out`` (the target's states the cell never draws: categories, point masses' values,
    ``"missing"``, ``"a value"``). Empty without rules."""
    columns = ["condition", "value", "target", "ruled_out"]
    rules = getattr(synth, "structure_", None)
    if rules is None:
        return pd.DataFrame(columns=columns)
    patterns = synth.patterns_
    rows = []
    for (name, value), forbidden in zip(rule_cells(rules, synth.condition_encoder_), rules.forbidden, strict=True):
        for m, target in enumerate(synth.discrete_vars_):
            states = sorted(set(patterns[:, m].tolist()))
            # a state is ruled out where every pattern holding it is (the rule's states, by construction)
            out = [int(x) for x in states if bool(forbidden[patterns[:, m] == x].all())]
            if out:
                enc = synth.encoders_[target]
                rows.append({"condition": name, "value": value, "target": target,
                             "ruled_out": [_state_label(enc, x) for x in out]})
    return pd.DataFrame(rows, columns=columns)
