"""Nested geography of a dataset calibrated out of core: the areas must nest and the targets add up.

One pass collects the distinct combinations of the geography columns (the area table: as many rows
as finest areas, not records); the checks then run on it before any solve, each raising one
:class:`~microplex.DataValidationError` that names the areas.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from .._errors import DataValidationError
from .._params import to_python
from ..calibration.consistency import _AreaIndex, check_consistency
from ..calibration.targets import Targets

__all__ = ["area_table", "check_areas"]


def area_table(frame: pd.DataFrame, geography: Sequence[str]) -> pd.DataFrame:
    """The distinct geography combinations of ``frame`` (one partition), for :func:`merge_areas`."""
    missing = [c for c in geography if c not in frame.columns]
    if missing:
        raise DataValidationError(f"The geography columns {missing} are not in the data; it has {list(frame.columns)}.")
    return frame[list(geography)].drop_duplicates()


def merge_areas(*parts: pd.DataFrame) -> pd.DataFrame:
    return pd.concat(parts, ignore_index=True).drop_duplicates().reset_index(drop=True)


def check_areas(areas: pd.DataFrame, targets: Targets, geography: Sequence[str], rtol: float = 1e-6) -> None:
    """Refuses areas that do not nest (a finer area in two coarser ones), targets of areas without records and
    nested targets that do not add up."""
    geography = list(geography)
    for coarse, fine in zip(geography, geography[1:]):
        parents = areas.groupby(fine, sort=True, dropna=False)[coarse].unique()
        split = parents[parents.map(len) > 1]
        if len(split):
            listed = "; ".join(f"{fine} {to_python(k)!r} lies in {coarse} {sorted(to_python(x) for x in v)}"
                               for k, v in split.head(10).items())
            raise DataValidationError(
                f"The geography {geography} does not nest: {len(split)} {fine} areas lie in several {coarse} areas "
                f"({listed}). List geography columns coarsest first, each area inside one parent."
            )
    # a target's areas are found as the design matches its filter (a set, a range, "1" for the code 1)
    index = _AreaIndex(areas[geography].reset_index(drop=True))
    empty = []
    for t in targets:
        where = {c: t.filters[c] for c in geography if c in t.filters}
        if where and not len(index.select(where)):
            empty.append(t.name)
    if empty:
        raise DataValidationError(
            f"{len(empty)} targets name areas with no records: {'; '.join(empty[:10])}. Remove them, or generate "
            "records in those areas."
        )
    bad = check_consistency(targets, areas, geography, rtol=rtol)
    if len(bad):
        listed = "; ".join(
            f"{r.parent} = {r.parent_value:g} but its {r.n_children} {'' if r.complete else 'listed '}sub-areas' "
            f"targets sum to {r.children_sum:g}" for r in bad.head(10).itertuples()
        )
        raise DataValidationError(f"{len(bad)} nested geography targets contradict each other: {listed}.")
