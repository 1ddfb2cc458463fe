"""Structural zeros: target states that a condition's category rules out.

A target's discrete state (a point mass such as 0, a missing value, a category) may be impossible
for some records by construction: the unemployed have no commute, the employed always report
hours. The pattern head is a softmax given the conditions, so it learns such a share as small, not
as 0 (acs12: the unemployed drawn with a commute time 4.6% of the time, the employed without hours
0.5%, though no training record of either holds that state). Like a contingency table's structural
zeros, these cells are taken from the data:

* a *cell* is a binary input of the condition encoding: one category of a categorical condition
  (its missing value too) or the missing-value indicator of a numeric condition;
* the states of a discrete target that no training record in a cell holds are *ruled out* there
  when their weighted shares over all records of positive weight, summed, times the cell's Kish
  effective size, expect at least :data:`MIN_EXPECTED` records there (a Poisson count of mean 5
  is 0 with probability 0.7%: such an absence is structure, not chance). The states are tested
  together, so a cell that holds one state only (the unemployed: commute time always missing)
  rules out the others even where each of them is small (commute times heaped on 10, 15, 20 and
  30 minutes are states of their own); a rare state alone, such as a top code of 0.5%, is not
  ruled out in a cell of ordinary size;
* a pattern (the states of every discrete target together) is ruled out in a record's cells when
  any of its states is; drawing and :meth:`~microplex.synthesis.Synthesizer.log_prob` (``-inf``)
  then give it probability 0, the head's probabilities renormalized over the patterns the rules
  allow. The head trains as without rules: masked in training, the rules moved the shares the head
  learnt for other cells through its shared weights (acs12, 5 splits: the unemployed's missing-hours
  share 0.02 above its training share on average, every split above), so the networks are those of
  ``structural_zeros=False`` and only the rows of a ruled cell draw differently.

Conditions whose cells together rule out every pattern (a combination no training record has and
that the rules contradict) get the head's probabilities without rules, with a warning
(:func:`contradicting_rows`). Computed only without differential privacy (the rules are statistics
of the data that no mechanism covers); ``Synthesizer(structural_zeros=False)`` turns them off.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .._errors import DataValidationError
from .._stats import category_codes, kish_ess

__all__ = ["MIN_EXPECTED", "fit_rules", "contradicting_rows", "check_rules", "rules_table"]

#: Records a state's overall share must expect in a cell for its absence there to rule it out.
MIN_EXPECTED = 5.0

#: A rule: (context column of the cell, BoolTensor-like (P,) of the patterns it rules out).
Rules = tuple[np.ndarray, np.ndarray]


def fit_rules(context: np.ndarray, cells: list[int], pattern: np.ndarray, patterns: np.ndarray,
              w: np.ndarray) -> Rules | None:
    """The cells' rules: ``(columns (R,), forbidden (R, P))`` for the cells (context columns ``cells`` of the
    encoded conditions ``context`` (N, C)) that rule out some pattern, or None when none does.

    ``pattern`` (N,) is each record's pattern index into ``patterns`` (P, M), the states of the ``M`` discrete
    targets; ``w`` (N,) the weights. A state counts as seen in a cell when any training record holds it there,
    whatever its weight (so that no training record's own pattern is ruled out); expected counts use the records
    of positive weight.
    """
    if len(cells) == 0 or patterns.shape[1] == 0 or len(patterns) < 2:
        return None
    states = patterns[pattern]  # (N, M)
    positive = w > 0
    total = float(w[positive].sum())
    shares = [np.bincount(states[positive, m], weights=w[positive], minlength=int(patterns[:, m].max()) + 1) / total
              for m in range(patterns.shape[1])]
    columns, forbidden = [], []
    for col in cells:
        cell = context[:, col] == 1
        if not (cell & positive).any():
            continue
        ess = kish_ess(w[cell & positive])
        out = np.zeros(len(patterns), dtype=bool)
        for m, share in enumerate(shares):
            seen = np.zeros(len(share), dtype=bool)
            seen[np.unique(states[cell, m])] = True
            if share[~seen].sum() * ess >= MIN_EXPECTED:
                out |= ~seen[patterns[:, m]]
        if out.any():
            columns.append(col)
            forbidden.append(out)
    if not columns:
        return None
    return np.asarray(columns, dtype=np.int64), np.stack(forbidden)


def contradicting_rows(frame: pd.DataFrame, rules: Rules, cells: dict[int, tuple[str, Any]]) -> tuple[int, dict]:
    """Rows of ``frame`` whose cells together rule out every pattern: their count and the cells of the first such
    combination (``{condition: value}``, ``None`` for a missing value). ``cells`` maps a rule's context column to its
    (condition, category), the category ``None`` for a missing value; values match as the condition encoding
    matches them (:func:`microplex._stats.category_codes`)."""
    columns, forbidden = rules
    keys = [cells[int(c)] for c in columns]
    if not len(frame) or not forbidden.any(axis=0).all():  # even all the rules together leave some pattern
        return 0, {}
    on = np.zeros((len(frame), len(keys)), dtype=bool)  # (N, R): the rules each row's cells bring
    for name in dict.fromkeys(n for n, _ in keys):  # one pass over each condition's values
        rules_of = [(r, value) for r, (n, value) in enumerate(keys) if n == name]
        values = [value for _, value in rules_of if value is not None]
        codes = category_codes(frame[name], values) if values else None
        for r, value in rules_of:
            on[:, r] = frame[name].isna().to_numpy(bool) if value is None else codes == values.index(value)
    # the distinct combinations of rules (few), found on the rows' bits packed into bytes
    packed = np.ascontiguousarray(np.packbits(on, axis=1))
    _, first_row, inverse = np.unique(packed.view(np.dtype((np.void, packed.shape[1]))).ravel(), return_index=True,
                                      return_inverse=True)
    combos = on[first_row]
    bad = np.array([forbidden[combo].any(axis=0).all() for combo in combos])
    hit = bad[inverse.reshape(-1)]
    if not hit.any():
        return 0, {}
    first = combos[np.flatnonzero(bad)[0]]
    return int(hit.sum()), {keys[r][0]: keys[r][1] for r in np.flatnonzero(first)}


def check_rules(tensors: dict[str, Any], n_context: int, cells: list[int], n_patterns: int, label: str) -> Rules | None:
    """The rules of a model file's tensors ``rule_columns`` and ``rule_forbidden`` (both or neither), checked: the
    columns distinct cells of the context (``cells``), each rule ruling out some pattern but not every one."""
    names = ("rule_columns", "rule_forbidden")
    held = [n in tensors for n in names]
    if not any(held):
        return None
    where = f"{label} is not a valid Synthesizer model file"
    if not all(held):
        raise DataValidationError(f"{where}: tensors {list(names)} come together (structural zeros); it holds one.")
    columns, forbidden = tensors["rule_columns"], tensors["rule_forbidden"]
    if columns.ndim != 1 or str(columns.dtype) != "torch.int64" or forbidden.ndim != 2 \
            or str(forbidden.dtype) != "torch.bool" or forbidden.shape != (len(columns), n_patterns):
        raise DataValidationError(
            f"{where}: tensors 'rule_columns' (int64, R) and 'rule_forbidden' (bool, R x {n_patterns} patterns) have "
            f"dtypes {columns.dtype}, {forbidden.dtype} and shapes {tuple(columns.shape)}, {tuple(forbidden.shape)}.")
    cols = columns.numpy()
    if len(cols) == 0 or len(set(cols.tolist())) != len(cols) or not set(cols.tolist()) <= set(cells):
        raise DataValidationError(
            f"{where}: tensor 'rule_columns' must name distinct binary inputs of the {n_context} condition features "
            f"(one of {cells[:10]}); got {cols.tolist()[:10]}.")
    rows = forbidden.numpy()
    if not rows.any(axis=1).all() or rows.all(axis=1).any():
        raise DataValidationError(
            f"{where}: tensor 'rule_forbidden' must rule out some pattern but not every one in each row.")
    return cols, rows


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
    category; ``None`` for the missing values), ``target`` and ``ruled_out`` (the target's states the cell never
    draws: categories, point masses' values, ``"missing"``, ``"a value"``). Empty without rules."""
    columns = ["condition", "value", "target", "ruled_out"]
    rules = getattr(synth, "structure_", None)
    if rules is None:
        return pd.DataFrame(columns=columns)
    cells = synth.condition_encoder_.cells()
    patterns = synth.patterns_
    rows = []
    for col, forbidden in zip(*rules, strict=True):
        name, value = cells[int(col)]
        for m, target in enumerate(synth.discrete_vars_):
            states = sorted(set(patterns[:, m].tolist()))
            # a state is ruled out where every pattern holding it is (the rule's states, by construction)
            out = [int(x) for x in states if bool(forbidden[patterns[:, m] == x].all())]
            if out:
                enc = synth.encoders_[target]
                rows.append({"condition": name, "value": value, "target": target,
                             "ruled_out": [_state_label(enc, x) for x in out]})
    return pd.DataFrame(rows, columns=columns)
