"""Variable specifications: what kind each column is and how it is modelled.

Types are inferred from the data; a :class:`VariableSpec` overrides any part of the inference.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import numpy as np
import pandas as pd

from .._errors import DataValidationError
from .._stats import detect_point_masses

__all__ = ["VariableSpec", "infer_kind", "declare_categorical", "detect_point_masses", "MAX_CATEGORICAL_INTEGER_LEVELS"]

Kind = Literal["continuous", "integer", "categorical"]
Transform = Literal["auto", "identity", "log", "logit", "asinh"]

#: Integer targets with at most this many distinct values are modelled as categorical.
MAX_CATEGORICAL_INTEGER_LEVELS = 20


@dataclass(frozen=True)
class VariableSpec:
    """How one variable is modelled.

    Parameters
    ----------
    kind : {"continuous", "integer", "categorical"} or None, default=None
        ``None`` infers it from the data (see :func:`infer_kind`). A float target declared
        ``"integer"`` is modelled on its values rounded to whole numbers (a ``UserWarning`` says
        how many were not), and drawn as whole numbers.
    point_masses : sequence of float or None, default=None
        Values that carry a point mass (zeros, top codes). ``None`` detects every value
        carrying at least ``point_mass_threshold`` of the weight (continuous targets only);
        an empty tuple disables point masses.
    transform : {"auto", "identity", "log", "logit", "asinh"}, default="auto"
        Transform of the continuous part before standardization. ``"auto"`` chooses from the
        support: ``logit`` between two bounds, ``log`` above a lower bound, else ``asinh``.
    heaps : sequence of float or None, default=None
        Values below the point-mass threshold modelled as discrete states (round numbers,
        bracket midpoints; see :mod:`microplex.synthesis.heaps`). ``None`` detects them with
        the synthesizer's ``heap_threshold``; an empty tuple disables heaps. Declared heaps
        must each be held by at least ``min_heap_count`` training records, inside the
        continuous support and not a point mass.

    Examples
    --------
    >>> VariableSpec(kind="continuous", point_masses=(0.0,))
    VariableSpec(kind='continuous', point_masses=(0.0,), transform='auto')
    """

    kind: Kind | None = None
    point_masses: tuple[float, ...] | None = None
    transform: Transform = "auto"
    heaps: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.kind, str | type(None)) or self.kind not in (None, "continuous", "integer", "categorical"):
            raise DataValidationError(
                "VariableSpec 'kind' must be 'continuous', 'integer', 'categorical' or None. "
                f"Got {self.kind!r} instead."
            )
        if not isinstance(self.transform, str) or self.transform not in ("auto", "identity", "log", "logit", "asinh"):
            raise DataValidationError(
                "VariableSpec 'transform' must be one of 'auto', 'identity', 'log', 'logit', "
                f"'asinh'. Got {self.transform!r} instead."
            )
        if self.point_masses is not None:
            values = _numbers(self.point_masses, "point_masses", "a sequence of distinct finite numbers", distinct=True)
            object.__setattr__(self, "point_masses", tuple(values))
        if self.heaps is not None:
            values = _numbers(self.heaps, "heaps", "a sequence of finite numbers", distinct=False)
            object.__setattr__(self, "heaps", tuple(sorted(set(values))))

    def __repr__(self) -> str:
        extra = "" if self.heaps is None else f", heaps={self.heaps!r}"
        return (f"VariableSpec(kind={self.kind!r}, point_masses={self.point_masses!r}, "
                f"transform={self.transform!r}{extra})")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if d["heaps"] is None:  # files stay as before heaps unless heaps are declared
            del d["heaps"]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VariableSpec:
        pm, heaps = d.get("point_masses"), d.get("heaps")
        return cls(kind=d.get("kind"), point_masses=pm, transform=d.get("transform", "auto"), heaps=heaps)


def declare_categorical(schema: Mapping[str, VariableSpec] | None,
                        names: Iterable[str]) -> dict[str, VariableSpec] | None:
    """``schema`` with the columns ``names`` declared categorical, their other settings kept (``None`` when
    it stays empty).

    Codes written as numbers (a PUMA, a county FIPS code, an occupation code) are numbers to
    :func:`infer_kind`: a target or a condition model draws values between the codes. Declared
    categorical, they are drawn among the codes seen in training.

    Examples
    --------
    >>> declare_categorical({"re78": VariableSpec(point_masses=(0.0,))}, ["puma"])["puma"].kind
    'categorical'
    """
    out = dict(schema or {})
    for name in names:
        out[name] = replace(out.get(name, VariableSpec()), kind="categorical")
    return out or None


def _numbers(value: Any, field: str, expected: str, *, distinct: bool) -> list[float]:
    """``value`` as a list of finite floats (a list, tuple or array of real numbers), else a
    DataValidationError naming the VariableSpec field."""
    ok = not isinstance(value, str | bytes) and isinstance(value, list | tuple | np.ndarray)
    values = list(value) if ok else []
    ok = ok and all(
        isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool | np.bool_)
        and np.isfinite(float(v)) for v in values
    ) and (not distinct or len({float(v) for v in values}) == len(values))
    if not ok:
        raise DataValidationError(f"VariableSpec {field!r} must be {expected} or None. Got {value!r:.80} instead.")
    return [float(v) for v in values]


def infer_kind(series: pd.Series, *, role: Literal["target", "condition"]) -> Kind:
    """Infers the modelling kind of a column.

    Non-numeric, boolean and categorical dtypes are ``"categorical"``. For targets, integer
    dtypes with at most :data:`MAX_CATEGORICAL_INTEGER_LEVELS` distinct values are
    ``"categorical"`` and other integers ``"integer"``; floats are ``"continuous"``. Numeric
    conditions are ``"continuous"`` (standardized).

    Examples
    --------
    >>> infer_kind(pd.Series([1.5, 2.0]), role="target")
    'continuous'
    >>> infer_kind(pd.Series(["a", "b"]), role="condition")
    'categorical'
    """
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype) or not pd.api.types.is_numeric_dtype(dtype):
        return "categorical"
    if role == "condition":
        return "continuous"
    if pd.api.types.is_integer_dtype(dtype):
        if series.nunique(dropna=True) <= MAX_CATEGORICAL_INTEGER_LEVELS:
            return "categorical"
        return "integer"
    return "continuous"
