"""Checks that targets at nested geography levels add up, before any solve.

A geography is a list of record columns from coarse to fine (``["state", "county", "tract"]``); a
target's level is the finest geography column its filter names. Targets with the same aggregate,
variable, entity and non-geographic conditions (as :func:`~microplex.calibration.filters.canonical_filter` writes
them: ``educ in {16}`` and ``educ == 16`` alike) are compared: a parent's children are the targets at finer
levels inside it with no target in between (so where a state has no target, its counties' targets are
children of the national one, and a county target's tracts are counted once, by the county). When the
children cover all of the parent's sub-areas present in the records, their sum must equal the parent's
value within the tolerance; when they cover only part of it, counts must not exceed the parent. A child
belongs to a parent when every area it covers lies in one of the parent's areas (a child whose areas have
no records belongs to none). Children are summed only where their areas are disjoint: a set or range target
whose areas overlap a sibling's (``state in {'Idaho', 'Nevada'}`` beside the Idaho and Nevada targets, a metro
area across states beside its states) is left out of the parent's sum and compared, by the same rules, with
the targets of disjoint areas lying inside it, coarsest first: its siblings inside it, and finer targets below
its siblings (a metro area of two PUMAs in two states against those two PUMAs' targets).

The check never compares every parent with every child: children are indexed by the areas above them,
so national tract-level targets (hundreds of thousands) are checked in seconds.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import pandas as pd

from microplex._errors import DataValidationError
from microplex._params import check_float, check_names
from microplex._stats import rounding_scale

from ._checks import check_records
from .design import lookup_values, range_mask
from .filters import canonical_filter
from .targets import Target, Targets

__all__ = ["check_consistency"]


class _AreaIndex:
    """Rows of the area table per value of each geography column, without scanning the table per target.

    Each column is factorized once; the rows of a value are one slice of a sort by code. A filter's rows
    start from its most selective equality (or membership) condition and are narrowed on those rows only,
    so a tract's target costs the size of its tract, not of its state.
    """

    def __init__(self, areas: pd.DataFrame) -> None:
        self.areas = areas
        self.codes: dict[str, np.ndarray] = {}
        self.lookup: dict[str, dict] = {}
        self.slices: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.uniques: dict[str, pd.Index] = {}
        for c in areas.columns:
            codes, uniques = pd.factorize(areas[c], sort=False)
            order = np.argsort(codes, kind="stable")
            self.codes[c] = codes
            self.uniques[c] = pd.Index(np.asarray(uniques))  # a categorical column's values as their own dtype
            self.lookup[c] = {v: i for i, v in enumerate(self.uniques[c].tolist())}
            self.slices[c] = (order, np.searchsorted(codes[order], np.arange(len(uniques) + 1)))

    def _code(self, col: str, value: object) -> int | None:
        look = self.lookup[col]
        try:
            if value in look:
                return look[value]
        except TypeError:  # unhashable: matches no area
            return None
        # 1, 1.0 and "1" name one area, as they name one cell in the design (its lookup, one definition)
        at = int(lookup_values(self.uniques[col], [value], f"Column {col!r}")[0])
        return at if at >= 0 else None

    def select(self, filters: dict) -> np.ndarray:
        """Area rows matching every condition of ``filters`` (sorted)."""
        exact, ranges = [], []
        for col, cond in filters.items():
            if isinstance(cond, pd.Interval):
                ranges.append((col, cond))
                continue
            values = cond if isinstance(cond, frozenset) else (cond,)
            codes = sorted({k for k in (self._code(col, v) for v in values) if k is not None})
            bounds = self.slices[col][1]
            exact.append((sum(int(bounds[k + 1] - bounds[k]) for k in codes), col, codes))
        if exact:
            exact.sort(key=lambda e: e[0])
            _, col, codes = exact[0]
            order, bounds = self.slices[col]
            rows = np.sort(np.concatenate([order[bounds[k] : bounds[k + 1]] for k in codes] or [np.zeros(0, np.int64)]))
            for _, col, codes in exact[1:]:
                rows = rows[np.isin(self.codes[col][rows], codes)]
        else:
            rows = np.arange(len(self.areas))
        for col, cond in ranges:
            rows = rows[range_mask(self.areas[col].iloc[rows], cond, f"The range filter on area column {col!r}")]
        return rows


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
        Relative tolerance, widened by the parent's and children's own ``tolerance``. A difference is relative to
        the parent's value or, where the children net values of both signs to it (a total of 0 from gains and
        losses), to the part of the children's sizes that cancels out; a difference within float64 rounding of
        the values summed is never one (:func:`~microplex._stats.rounding_scale`).

    Returns
    -------
    DataFrame
        One row per inconsistency: ``parent``, ``level``, ``n_children``, ``complete``,
        ``parent_value``, ``children_sum``, ``rel_diff`` (the difference relative to the scale above),
        ``children`` (names). Empty if consistent.

    Examples
    --------
    >>> recs = pd.DataFrame({"state": ["A", "A", "B"], "county": [1, 2, 3]})
    >>> t = Targets.from_margins({"state": {"A": 10, "B": 5}, ("state", "county"): {("A", 1): 4, ("A", 2): 5}})
    >>> check_consistency(t, recs, ["state", "county"])[["parent", "children_sum"]].values.tolist()
    [["count[state == 'A']", 9.0]]
    """
    from .calibrator import as_targets  # the forms Calibrator accepts (calibrator imports this module)

    targets = as_targets(targets)
    records = check_records(records)
    geography = check_names(geography, "geography", allow_empty=False)
    check_float(rtol, "rtol", low=0.0)
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
    by_sig: dict[tuple, list[tuple[Target, int, frozenset, bool]]] = defaultdict(list)
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
        # the other conditions as one text however written ('educ in {16}', 'educ == 16' and 'educ == 16.0' alike)
        sig = (t.entity, t.aggregate, t.variable, canonical_filter(rest))
        single = all(not isinstance(v, (pd.Interval, frozenset)) for v in geo.values())  # one area per column
        by_sig[sig].append((t, level, cover, single))

    rows: list[dict] = []
    rows_by: dict[int, dict[tuple, list[int]]] = {}  # level -> its area -> rows of the area table under it

    def under(level: int, cover: frozenset) -> list[int]:
        """The rows of the area table in ``cover``'s areas of ``level`` (-1: the whole table)."""
        if level not in rows_by:
            by: dict[tuple, list[int]] = defaultdict(list)
            for r, key in enumerate(proj[level] if level >= 0 else [()] * len(areas)):
                by[key].append(r)
            rows_by[level] = by
        return [r for k in cover for r in rows_by[level].get(k, ())]

    for items in by_sig.values():
        levels = sorted({it[1] for it in items})
        # the targets at each level containing each of its areas, so a target's containers are looked up
        # through the areas above it (no target x target scan)
        at: dict[int, dict[tuple, list[int]]] = {b: defaultdict(list) for b in levels}
        for i, (_, level, cover, _) in enumerate(items):
            for k in cover:
                at[level][k].append(i)
        # the targets at coarser levels wholly containing each target (a target in no present area: none)
        cont: list[set[int]] = []
        for ct, b, ccover, one in items:
            inside: set[int] = set()
            for a in levels:
                if a >= b or not ccover:
                    continue
                above = {k[: a + 1] for k in ccover}
                if one and len(above) > 1:
                    _straddles(ct, sorted(above, key=str), geography[a], geography[: b + 1])
                found: set[int] | None = None
                for p in above:
                    found = set(at[a].get(p, ())) if found is None else found & set(at[a].get(p, ()))
                    if not found:
                        break
                inside |= found or set()
            cont.append(inside)
        # a target's children are the finer targets inside it with no target in between (inside it and
        # containing them): each area is counted once, by the coarsest target below the parent covering it
        kids_of: dict[int, list[int]] = defaultdict(list)
        for j, inside in enumerate(cont):
            for i in inside:
                if not any(i in cont[m] for m in inside if items[m][1] > items[i][1]):
                    kids_of[i].append(j)
        single = [it[3] for it in items]
        touching: dict[int, list[int]] | None = None
        every: dict[int, list[int]] = {}
        for i, (pt, a, pcover, _) in enumerate(items):
            if i not in kids_of:
                continue
            rows_of = {j: under(items[j][1], items[j][2]) for j in kids_of[i]}
            # children whose areas overlap (a set of states beside its member states) are not summed together:
            # the parent is compared with children of disjoint areas, and a set left out with those inside it
            summed, left = _apart(kids_of[i], rows_of, single)
            if summed:
                # complete when the children's areas (disjoint, inside the parent) are all the parent's areas
                complete = sum(len(rows_of[j]) for j in summed) == len(under(a, pcover))
                rows += _compare(pt, a, [items[j][0] for j in summed], complete, rtol, geography)
            for d in left:
                mine = set(rows_of[d])
                if touching is None:  # every target's rows, and the targets holding each row, once per signature
                    every = {j: under(it[1], it[2]) for j, it in enumerate(items)}
                    touching = defaultdict(list)
                    for j, rs in every.items():
                        for r in rs:
                            touching[r].append(j)
                inner = _cover(d, mine, items, every, touching)
                if inner:
                    complete = sum(len(every[j]) for j in inner) == len(mine)
                    rows += _compare(items[d][0], items[d][1], [items[j][0] for j in inner], complete, rtol, geography)
    cols = ["parent", "level", "n_children", "complete", "parent_value", "children_sum", "rel_diff", "children"]
    return pd.DataFrame(rows, columns=cols)


def _cover(d: int, mine: set[int], items: list[tuple], rows_of: dict[int, list[int]],
           touching: dict[int, list[int]]) -> list[int]:
    """The targets of disjoint areas inside the set target ``d`` (``mine``: its rows of the area table) it is
    compared with, coarsest first: its siblings inside it, and the finer targets below its siblings (a metro
    area of two PUMAs in two states, beside the states and their PUMAs, is the sum of those two PUMAs' targets).
    ``rows_of`` holds every target's rows, ``touching`` the targets holding each row."""
    near = {j for r in mine for j in touching.get(r, ()) if j != d}
    taken: set[int] = set()
    out: list[int] = []
    for j in sorted(near, key=lambda j: (items[j][1], j)):
        have = set(rows_of[j])
        if have <= mine and not have & taken:
            out.append(j)
            taken |= have
            if len(taken) == len(mine):
                break
    return out


def _apart(kids: list[int], rows_of: dict[int, list[int]], single: list[bool]) -> tuple[list[int], list[int]]:
    """A parent's children split into those whose areas are pairwise disjoint, summed against it, and those left
    out: first each set or range target whose areas overlap a sibling's (``state in {'Idaho', 'Nevada'}`` beside
    Idaho's target), then any children still overlapping (one area targeted twice)."""
    shared = _shared(kids, rows_of)
    if not shared:
        return kids, []
    out = {j for j in shared if not single[j]}
    rest = [j for j in kids if j not in out]
    out |= _shared(rest, rows_of)
    return [j for j in kids if j not in out], [j for j in kids if j in out]


def _shared(kids: list[int], rows_of: dict[int, list[int]]) -> set[int]:
    """The children among ``kids`` holding a row of the area table that another of them holds too."""
    owner: dict[int, int] = {}
    out: set[int] = set()
    for j in kids:
        for r in rows_of[j]:
            o = owner.setdefault(r, j)
            if o != j:
                out.update((o, j))
    return out


def _compare(parent: Target, level: int, kids: list[Target], complete: bool, rtol: float,
             geography: list[str]) -> list[dict]:
    """The inconsistency row of ``parent`` against the sum of ``kids`` (disjoint areas inside it), or none: their
    sum must equal it where they cover it (``complete``), and may not exceed a count where they cover part of it."""
    total = float(sum(c.value for c in kids))
    tol = rtol + (parent.tolerance or 0.0) + max((c.tolerance or 0.0) for c in kids)
    diff = total - parent.value
    rel = abs(diff) / _scale(parent.value, [c.value for c in kids], tol)
    bad = rel > tol if complete else (parent.aggregate == "count" and diff > 0 and rel > tol)
    if not bad:
        return []
    return [
        {
            "parent": parent.name,
            "level": geography[level] if level >= 0 else "(all)",
            "n_children": len(kids),
            "complete": complete,
            "parent_value": parent.value,
            "children_sum": total,
            "rel_diff": rel,
            "children": [c.name for c in kids],
        }
    ]


def _scale(parent: float, children: list[float], tol: float) -> float:
    """What a parent's difference from its children's sum is relative to: the parent's size, or where the children
    net values of both signs to it (gains and losses, a net transfer of 0), the part of their sizes that cancels
    out, so that 0.1, 0.2 and -0.3 (5.55e-17 in floats) add up to a parent of 0 while 0.1, 0.2 and -0.294 miss
    it by 1% of their 0.588 that cancels; where both are 0 (children of one sign under a parent of 0) the
    children's sum, so the whole sum is the miss. At least the solvers' rounding scale
    (:func:`~microplex._stats.rounding_scale` of the sizes summed), so float64 rounding never counts as a miss."""
    size = float(np.sum(np.abs(children)))
    base = max(abs(parent), size - abs(float(np.sum(children)))) or size
    return float(rounding_scale(base, size + abs(parent), tol))


def _straddles(child: Target, parents: list[tuple], level: str, geography: list[str]) -> None:
    """Raises for a target naming one area per geography column whose records lie in several areas of ``level``
    (a county code found in two states): the geography does not nest for it, so no parent can be checked
    against it and no solve would say why its totals disagree."""
    shown = ", ".join(repr(p[-1]) for p in parents[:5]) + (f" and {len(parents) - 5} more" if len(parents) > 5 else "")
    raise DataValidationError(
        f"Target {child.name!r} names one area, but its records lie in {len(parents)} {level!r} areas ({shown}): "
        f"the geography {geography} does not nest for it. Where codes repeat across {level!r} areas (such as "
        f"county codes within states), add {level!r} to the target's filter; otherwise leave the column out of "
        "the geography."
    )
