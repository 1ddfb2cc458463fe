"""The :class:`Source` record and harmonization of sources before fusion."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .._errors import DataValidationError
from .._stats import category_type_clash, check_weight_dtype, check_weights

__all__ = ["Source", "harmonize", "is_categorical", "category_labels", "check_shared"]

_RENAME_KEYS = ("columns", "categories", "scale")


@dataclass(frozen=True, eq=False)
class Source:
    """Creates a named, weighted survey source for :func:`fuse`.

    Parameters
    ----------
    data : DataFrame
        One row per record.
    name : str
        Name of the source, used by ``base=``, ``rename=`` and in every message.
    weight_col : str, default=None
        Survey weight column; ``None`` gives every record weight 1. The weight column is never
        shared nor imputed.

    Examples
    --------
    >>> src = Source(pd.DataFrame({"age": [30, 40], "w": [1.0, 2.0]}), "cps", weight_col="w")
    >>> src
    Source(name='cps', n_records=2, columns=['age'], weight_col='w')
    >>> src.variables
    ['age']
    """

    data: pd.DataFrame
    name: str
    weight_col: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise DataValidationError(f"Source 'name' must be a non-empty string. Got {self.name!r} instead.")
        if not isinstance(self.data, pd.DataFrame):
            raise DataValidationError(
                f"Source {self.name!r}: 'data' must be a pandas DataFrame. Got {type(self.data).__name__} instead."
            )
        if len(self.data) == 0:
            raise DataValidationError(f"Source {self.name!r} has no records.")
        if not all(isinstance(c, str) for c in self.data.columns):
            raise DataValidationError(f"Source {self.name!r}: column names must be strings.")
        if self.data.columns.duplicated().any():
            dup = sorted(set(self.data.columns[self.data.columns.duplicated()]))
            raise DataValidationError(f"Source {self.name!r} has duplicated columns {dup}.")
        if self.weight_col is not None:
            if self.weight_col not in self.data.columns:
                raise DataValidationError(
                    f"Source {self.name!r}: weight column {self.weight_col!r} is not a column; "
                    f"it has {list(self.data.columns)[:20]}."
                )
            w = self.data[self.weight_col]
            what = f"Source {self.name!r}: weight column {self.weight_col!r}"
            check_weight_dtype(w, what)
            check_weights(w.to_numpy(float), len(w), what)

    def __repr__(self) -> str:
        return (f"Source(name={self.name!r}, n_records={len(self.data)}, columns={self.variables[:10]!r}, "
                f"weight_col={self.weight_col!r})")

    @property
    def variables(self) -> list[str]:
        """Columns other than the weight column."""
        return [c for c in self.data.columns if c != self.weight_col]

    @property
    def weights(self) -> np.ndarray:
        """Survey weights, shape (N,), float64 (ones without ``weight_col``)."""
        if self.weight_col is None:
            return np.ones(len(self.data))
        return self.data[self.weight_col].to_numpy(float)


def is_categorical(series: pd.Series, declared: Collection[str] = ()) -> bool:
    """Whether a column is modelled as categorical: non-numeric or boolean dtype, or its name among ``declared``
    (the columns a ``synthesizer_params`` schema declares categorical, number codes such as a region 1..9)."""
    return (series.name in declared or pd.api.types.is_bool_dtype(series.dtype)
            or not pd.api.types.is_numeric_dtype(series.dtype))


def category_labels(series: pd.Series) -> pd.Series:
    """A categorical column's values as text labels; number codes by value, so that a code stored as int64 in one
    source and as float64 in another (where it has missing values) gives one label (``"1.0"``, not ``"1"`` and
    ``"1.0"``).

    Examples
    --------
    >>> category_labels(pd.Series([1, 2])).tolist(), category_labels(pd.Series([1.0, 2.0])).tolist()
    (['1.0', '2.0'], ['1.0', '2.0'])
    >>> category_labels(pd.Series(["a", True])).tolist()
    ['a', 'True']
    """
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
        return series.astype(float).astype(str)
    return series.astype(str)


def harmonize(source: Source, spec: Mapping[str, Any] | None) -> Source:
    """Applies a ``rename`` entry to a source: column names, then category maps, then unit scaling.

    Parameters
    ----------
    source : Source
    spec : mapping or None
        ``{"columns": {old: new}, "categories": {column: {old: new}}, "scale": {column: factor}}``;
        every key is optional, category and scale entries use the new column names. Values absent
        from a category map are kept as they are; a mapped column holding values of several types becomes text
        labels, one of numbers stays numeric, one of booleans (and missing values) stays booleans.

    Examples
    --------
    >>> src = Source(pd.DataFrame({"SEX": [1, 2], "wage": [10.0, 20.0]}), "cps")
    >>> out = harmonize(src, {"columns": {"SEX": "sex"}, "categories": {"sex": {1: "m", 2: "f"}},
    ...                       "scale": {"wage": 100}})
    >>> out.data.to_dict("list")
    {'sex': ['m', 'f'], 'wage': [1000.0, 2000.0]}
    """
    if not spec:
        return source
    if not isinstance(spec, Mapping) or set(spec) - set(_RENAME_KEYS):
        raise DataValidationError(
            f"rename[{source.name!r}] must be a mapping with keys among {list(_RENAME_KEYS)}. "
            f"Got {spec!r} instead."
        )
    for key in _RENAME_KEYS:
        if spec.get(key) is not None and not isinstance(spec[key], Mapping):
            raise DataValidationError(
                f"rename[{source.name!r}][{key!r}] must be a mapping. Got {spec[key]!r:.80} instead."
            )
    for col, mapping in (spec.get("categories") or {}).items():
        if not isinstance(mapping, Mapping):
            raise DataValidationError(
                f"rename[{source.name!r}]['categories'][{col!r}] must be a mapping {{old: new}}. "
                f"Got {mapping!r:.80} instead."
            )
    for col, factor in (spec.get("scale") or {}).items():
        if (isinstance(factor, bool | np.bool_) or not isinstance(factor, int | float | np.integer | np.floating)
                or not np.isfinite(factor) or factor == 0):
            raise DataValidationError(
                f"rename[{source.name!r}]['scale'][{col!r}] must be a finite number other than 0. "
                f"Got {factor!r} instead."
            )
    data = source.data.copy()
    columns = dict(spec.get("columns") or {})
    missing = [c for c in columns if c not in data.columns]
    if missing:
        raise DataValidationError(
            f"rename[{source.name!r}]['columns'] names columns {missing} that source {source.name!r} does not have."
        )
    data = data.rename(columns=columns)
    if data.columns.duplicated().any():
        dup = sorted(set(data.columns[data.columns.duplicated()]))
        raise DataValidationError(f"rename[{source.name!r}] gives duplicated columns {dup}.")
    for col, mapping in (spec.get("categories") or {}).items():
        if col not in data.columns:
            raise DataValidationError(
                f"rename[{source.name!r}]['categories'] names column {col!r} that source {source.name!r} does not have."
            )
        mapped = data[col].map(lambda v, m=dict(mapping): m.get(v, v))
        data[col] = mapped.astype(object).infer_objects()
        # text labels where the values mix types (a map to numbers leaving some text); booleans beside missing values
        # stay booleans (an object column: as text, 'True' was refused against a base's True, the map just given)
        if not pd.api.types.is_numeric_dtype(data[col].dtype) and not all(
                isinstance(v, bool | np.bool_) for v in mapped.dropna()):
            data[col] = data[col].astype(str).where(mapped.notna(), other=np.nan)
    for col, factor in (spec.get("scale") or {}).items():
        if col not in data.columns or is_categorical(data[col]):  # a boolean is a category: scaled, it read as 1/0
            raise DataValidationError(
                f"rename[{source.name!r}]['scale'] names column {col!r}, which must be a numeric (not boolean) "
                f"column of source {source.name!r}."
            )
        with np.errstate(over="ignore"):
            scaled = data[col].astype(float) * float(factor)
        over = np.isinf(scaled.to_numpy(float)) & np.isfinite(data[col].to_numpy(float))
        if over.any():  # was refused later as "missing or infinite values", naming no factor
            top = float(np.nanmax(np.abs(data[col].to_numpy(float))))
            raise DataValidationError(
                f"rename[{source.name!r}]['scale'][{col!r}] = {factor!r} takes {int(over.sum())} values of column "
                f"{col!r} beyond the float64 range (largest |value| {top:g}); use a smaller factor."
            )
        data[col] = scaled
    weight_col = columns.get(source.weight_col, source.weight_col)
    return Source(data, source.name, weight_col=weight_col)


def check_shared(base: Source, donor: Source, shared: Sequence[str], categorical: Collection[str] = ()) -> None:
    """Checks that shared columns have compatible types and that the donor covers the base's categories.

    Parameters
    ----------
    base, donor : Source
    shared : list of str
        Columns of both sources.
    categorical : collection of str, default=()
        Columns checked as categories whatever their dtype (number codes a schema declares categorical, as
        :func:`~microplex.fusion.fuse` passes them); text and boolean columns are categories anyway.

    Raises
    ------
    DataValidationError
        Naming the sources and the column: a column missing from one source, numeric in one source
        and categorical in the other, or base categories that the donor never observes.
    """
    for col in shared:
        for src in (base, donor):
            if col not in src.variables:
                raise DataValidationError(
                    f"Shared column {col!r} is not a column of source {src.name!r}; "
                    f"it has {src.variables[:20]}."
                )
        b, d = base.data[col], donor.data[col]
        cat_b, cat_d = is_categorical(b, categorical), is_categorical(d, categorical)
        if cat_b != cat_d:
            kind = {True: "categorical", False: "numeric"}
            raise DataValidationError(
                f"Shared column {col!r} has incompatible types: {kind[cat_b]} ({b.dtype}) in source "
                f"{base.name!r} but {kind[cat_d]} ({d.dtype}) in source {donor.name!r}. Harmonize it "
                f"with rename={{{donor.name!r}: {{'categories': {{{col!r}: {{...}}}}}}}}."
            )
        if cat_b:
            # labels by value: a declared code stored as int64 in one source and float64 in the other is one category
            bk, dk = b.dropna(), d.dropna()
            lost = bk[~category_labels(bk).isin(set(category_labels(dk)))]
            unmapped = sorted({str(v) for v in lost.unique()})
            if unmapped:
                raise DataValidationError(
                    f"Shared column {col!r}: categories {unmapped[:10]} of source {base.name!r} do not occur in "
                    f"source {donor.name!r} (which has {sorted({str(v) for v in dk.unique()})[:10]}); map them with "
                    f"rename={{{base.name!r}: {{'categories': {{{col!r}: {{...}}}}}}}}."
                )
            # the donor model matches categories by value, not by label: True and "True" differ
            clash = category_type_clash(b, d)
            if clash is not None:
                v, twin = clash
                raise DataValidationError(
                    f"Shared column {col!r}: category {v!r} ({type(v).__name__}) of source {base.name!r} is "
                    f"{twin!r} ({type(twin).__name__}) in source {donor.name!r}: the labels agree but the types "
                    f"differ ({b.dtype} vs {d.dtype}), and the donor model matches categories by value. Give the "
                    f"column one type in both sources (e.g. df[{col!r}].astype(str)) or map it with "
                    f"rename={{{donor.name!r}: {{'categories': {{{col!r}: {{...}}}}}}}}."
                )
