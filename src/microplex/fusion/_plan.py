"""Planning a fusion: the sources checked and harmonized, the donors ordered into imputation steps,
and the shared variables compared between sources before anything is fitted.

Used by :func:`~microplex.fusion.fuse`.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from .._errors import DataValidationError
from ._source import Source, check_shared, harmonize
from .diagnostics import compare_shared

#: The planning warnings come from the same logger as the rest of fuse.
logger = logging.getLogger("microplex.fusion._fuse")

#: |SMD| or KS/TVD above which a shared variable is reported as differing between sources.
DIFFERENCE_THRESHOLD = 0.1


@dataclass(frozen=True)
class FusionStep:
    """One imputation step: ``block`` imputed from ``donor`` given ``predictors``.

    ``auxiliary`` lists the recipient variables the donor model also conditions on through the
    auxiliary source (empty when it is not used).
    """

    donor: str
    predictors: tuple[str, ...]
    block: tuple[str, ...]
    auxiliary: tuple[str, ...] = ()


def _resolve(sources: Sequence[Source], base: str | Source, auxiliary: Source | None,
             rename: Mapping[str, Any] | None) -> tuple[list[Source], Source, Source | None]:
    if isinstance(sources, Source) or not isinstance(sources, Sequence) or len(sources) < 2:
        raise DataValidationError(f"The 'sources' parameter must be a list of at least two Source. Got {sources!r}.")
    for s in sources:
        if not isinstance(s, Source):
            raise DataValidationError(
                f"Every element of 'sources' must be a microplex Source. Got {type(s).__name__} instead; "
                "wrap frames as Source(df, name=..., weight_col=...)."
            )
    names = [s.name for s in sources]
    if auxiliary is not None:
        if not isinstance(auxiliary, Source):
            raise DataValidationError(
                f"The 'auxiliary' parameter must be a Source or None. Got {type(auxiliary).__name__} instead."
            )
        names.append(auxiliary.name)
    if len(set(names)) < len(names):
        raise DataValidationError(f"Source names must be unique. Got {names}.")
    base_name = base.name if isinstance(base, Source) else base
    if not isinstance(base_name, str) or base_name not in names[: len(sources)] or (
            isinstance(base, Source) and all(base is not s for s in sources)):
        raise DataValidationError(
            f"The 'base' parameter must name one of the sources {names[: len(sources)]}. Got {base!r} instead."
        )
    rename = dict(rename or {})
    unknown = sorted(set(rename) - set(names))
    if unknown:
        raise DataValidationError(f"The 'rename' parameter names unknown sources {unknown}; sources are {names}.")
    sources = [harmonize(s, rename.get(s.name)) for s in sources]
    aux = harmonize(auxiliary, rename.get(auxiliary.name)) if auxiliary is not None else None
    base_src = next(s for s in sources if s.name == base_name)
    return sources, base_src, aux


def _plan(sources: list[Source], base: Source, shared: Sequence[str] | None,
          aux: Source | None, categorical: Collection[str] = ()) -> tuple[list[FusionStep], pd.DataFrame]:
    """Orders the donors, checks the shared variables and compares their distributions (``categorical``:
    columns checked and compared as categories whatever their dtype, see
    :func:`~microplex.fusion.diagnostics.compare_shared`)."""
    if shared is not None and (isinstance(shared, str) or not len(shared)):
        raise DataValidationError(f"The 'shared' parameter must be a non-empty list of columns. Got {shared!r}.")
    available = {c: base for c in base.variables}  # column -> the source it comes from
    steps, comparisons = [], []
    for donor in sources:
        if donor is base:
            continue
        if shared is None:
            predictors = [c for c in donor.variables if c in available]
        else:
            for c in shared:
                if c not in base.variables:
                    raise DataValidationError(
                        f"Shared column {c!r} is not a column of base source {base.name!r}; it has {base.variables[:20]}."
                    )
            predictors = list(shared) + [c for c in donor.variables if c in available and available[c] is not base
                                         and c not in shared]
        if not predictors:
            raise DataValidationError(
                f"Source {donor.name!r} shares no variable with base {base.name!r}"
                + (" or earlier donors" if available.keys() - set(base.variables) else "")
                + f" (it has {donor.variables[:20]}; the base has {base.variables[:20]}). Rename columns with "
                f"rename={{{donor.name!r}: {{'columns': {{...}}}}}} or pass 'shared'."
            )
        for origin in {id(available[c]): available[c] for c in predictors if c in available}.values():
            cols = [c for c in predictors if available.get(c) is origin]
            check_shared(origin, donor, cols, categorical)
            comparisons.append(compare_shared(origin, donor, cols, categorical=categorical))
        block = [c for c in donor.variables if c not in available and c not in predictors]
        if base.weight_col in block:
            raise DataValidationError(
                f"Column {base.weight_col!r} of source {donor.name!r} would overwrite the weight column of base "
                f"{base.name!r}; rename it with rename={{{donor.name!r}: {{'columns': {{...}}}}}}."
            )
        if not block:
            logger.warning("Source %r has no variable that the base lacks; it is not used.", donor.name)
            continue
        extra: list[str] = []
        if aux is not None and all(c in aux.variables for c in predictors + block):
            # varying on the auxiliary records the model learns from (complete, of positive weight): a variable
            # constant there but varying on records of weight 0 was standardized by a fallback scale and drawn
            # into garbage; one varying only on incomplete records failed as a constant condition of the donor
            used = aux.data.loc[aux.data[predictors + block].notna().all(axis=1).to_numpy() & (aux.weights > 0)]
            extra = [c for c in aux.variables if c in available and c not in predictors
                     and aux.data[c].notna().all() and used[c].nunique() > 1
                     and (c not in base.variables or base.data[c].notna().all())]
            check_shared(base, aux, [c for c in extra + predictors if c in base.variables], categorical)
        steps.append(FusionStep(donor.name, tuple(predictors), tuple(block), tuple(extra)))
        for c in block:
            available[c] = donor
    if not steps:
        raise DataValidationError("No source has a variable that the base lacks; nothing to fuse.")
    if aux is not None and not any(s.auxiliary for s in steps):
        logger.warning("Auxiliary source %r is not used: no donor has its predictors and block all observed "
                       "there together with a recipient variable that varies on those records (of positive weight).",
                       aux.name)
    comparison = pd.concat(comparisons, ignore_index=True)
    for row in comparison.itertuples():
        size = row.tvd if row.kind == "categorical" else max(abs(row.smd), row.ks)
        if size > DIFFERENCE_THRESHOLD:
            logger.warning(
                "Shared variable %r differs between sources %r and %r (SMD %.3f, KS %.3f, TVD %.3f); fusion assumes "
                "it measures the same thing in both.", row.variable, row.base, row.donor, row.smd, row.ks, row.tvd)
    return steps, comparison
