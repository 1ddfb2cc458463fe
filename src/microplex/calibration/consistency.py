"""Checks that targets at nested geography levels add up, before any solve.

A geography is a list of record columns from coarse to fine (``["state", "county", "tract"]``); a
target's level is the finest geography column its filter names. Targets with the same aggregate,
variable, entity and non-geographic filter are compared level by level: when the children of a parent
area cover all of its sub-areas present in the records, their sum must equal the parent's value
within the tolerance; when they cover only part of it, counts must not exceed the parent.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import pandas as pd

from microplex._errors import DataValidationError

from .targets import Target, Targets, format_filter

__all__ = ["check_consistency"]


class _AreaIndex:
    """Rows of the area table per value of each geography column (dictionary look-ups)."""

    def __init__(self, areas: pd.DataFrame) -> None:
        self.areas = areas
        self.rows = {c: areas.groupby(c, sort=False).indices for c in areas.columns}

    def _rows_eq(self, col: str, value: object) -> np.ndarray:
        idx = self.rows[col]
        if value in idx:
            return idx[value]
        if pd.api.types.is_numeric_dtype(self.areas[col]):
            try:
                return idx.get(float(value), np.zeros(0, dtype=np.int64))  # type: ignore[arg-type]
            except (TypeError, ValueError):
                pass
        return np.zeros(0, dtype=np.int64)

    def select(self, filters: dict) -> np.ndarray:
        """Area rows matching every condition of ``filters``."""
        out: np.ndarray | None = None
        for col, cond in filters.items():
            if isinstance(cond, pd.Interval):
                v = self.areas[col].to_numpy(dtype=np.float64)
                ok = (v >= cond.left if cond.closed_left else v > cond.left) & (
                    v <= cond.right if cond.closed_right else v < cond.right
                )
                rows = np.flatnonzero(ok)
            elif isinstance(cond, frozenset):
                rows = np.unique(np.concatenate([self._rows_eq(col, v) for v in cond] or [np.zeros(0, int)]))
            else:
                rows = self._rows_eq(col, cond)
            out = rows if out is None else np.intersect1d(out, rows, assume_unique=True)
        return np.arange(len(self.areas)) if out is None else out


def check_consistency(
    targets: Targets | Sequence[Target],
    records: pd.DataFrame,
    geography: Sequence[str],
    *,
    rtol: float = 1e-6,
) -> pd.DataFrame:
    """Returns the parent targets whose nested children do not add up to them.

    Parameters
    ----------
    targets : Targets
    records : DataFrame
        Only the ``geography`` columns are read (which sub-areas exist in which area).
    geography : list of str
        Geography columns, coarsest first.
    rtol : float, default=1e-6
        Relative tolerance, widened by the parent's and children's own ``tolerance``.

    Returns
    -------
    DataFrame
        One row per inconsistency: ``parent``, ``level``, ``n_children``, ``complete``,
        ``parent_value``, ``children_sum``, ``rel_diff``, ``children`` (names). Empty if consistent.

    Examples
    --------
    >>> recs = pd.DataFrame({"state": ["A", "A", "B"], "county": [1, 2, 3]})
    >>> t = Targets.from_margins({"state": {"A": 10, "B": 5}, ("state", "county"): {("A", 1): 4, ("A", 2): 5}})
    >>> check_consistency(t, recs, ["state", "county"])[["parent", "children_sum"]].values.tolist()
    [["count[state == 'A']", 9.0]]
    """
    geography = list(geography)
    missing = [c for c in geography if c not in records.columns]
    if missing:
        raise DataValidationError(
            f"Geography columns {missing} are not in the records. Expected columns of {list(records.columns)}."
        )
    areas = records[geography].drop_duplicates().reset_index(drop=True)
    proj = [
        [tuple(r) for r in areas[geography[: k + 1]].itertuples(index=False, name=None)]
        for k in range(len(geography))
    ]
    index = _AreaIndex(areas)
    by_sig: dict[tuple, list[tuple[Target, int, frozenset]]] = defaultdict(list)
    for t in targets:
        if t.aggregate == "mean":
            continue
        geo = {c: v for c, v in t.filters.items() if c in geography}
        rest = {c: v for c, v in t.filters.items() if c not in geography}
        level = max((geography.index(c) for c in geo), default=-1)
        if level < 0:
            cover = frozenset({()})
        else:
            cover = frozenset(proj[level][i] for i in index.select(geo))
        sig = (t.entity, t.aggregate, t.variable, format_filter(dict(sorted(rest.items()))))
        by_sig[sig].append((t, level, cover))

    rows = []
    for items in by_sig.values():
        levels = sorted({lv for _, lv, _ in items})
        for a, b in zip(levels, levels[1:]):
            parents = [it for it in items if it[1] == a]
            children = [it for it in items if it[1] == b]
            sub_all: dict[tuple, set] = defaultdict(set)  # a-area -> its b-areas present
            for i in range(len(areas)):
                sub_all[proj[a][i] if a >= 0 else ()].add(proj[b][i])
            for pt, _, pcover in parents:
                kids = [c for c in children if all(k[: a + 1] in pcover for k in c[2])]
                if not kids:
                    continue
                covered = set().union(*(c[2] for c in kids))
                full = set().union(*(sub_all[p] for p in pcover))
                complete = covered >= full
                total = float(sum(c[0].value for c in kids))
                tol = rtol + (pt.tolerance or 0.0) + max((c[0].tolerance or 0.0) for c in kids)
                diff = total - pt.value
                rel = abs(diff) / max(abs(pt.value), 1e-300)
                bad = rel > tol if complete else (pt.aggregate == "count" and diff > tol * abs(pt.value))
                if bad:
                    rows.append(
                        {
                            "parent": pt.name,
                            "level": geography[a] if a >= 0 else "(all)",
                            "n_children": len(kids),
                            "complete": complete,
                            "parent_value": pt.value,
                            "children_sum": total,
                            "rel_diff": rel,
                            "children": [c[0].name for c in kids],
                        }
                    )
    cols = ["parent", "level", "n_children", "complete", "parent_value", "children_sum", "rel_diff", "children"]
    return pd.DataFrame(rows, columns=cols)
