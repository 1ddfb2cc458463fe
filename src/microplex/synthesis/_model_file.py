"""Checks of a Synthesizer model file before anything is built from it.

A model file is untrusted data: every name, type, shape and number in its metadata, tensors and
tables is checked against what :meth:`Synthesizer.save` writes, and a defect raises one
:class:`~microplex.DataValidationError` naming the file and the field.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from .._errors import DataValidationError
from .._stats import category_codes, check_weights, dtype_precision, sorted_categories, unseen_categories
from ._checks import DECODE_PROBE, MAX_HEAPS, holds_missing
from ._dp import DP_PARAMS, MARGIN
from . import _quantile_map as qmap
from ._quantile_map import MAX_KNOTS
from ._validation import INTEGER_LIMIT, check_column
from .rounding import RoundingGrid, decimal_levels, magnitude_bands
from .transforms import ContinuousEncoder, condition_moments

#: Synthesizer parameters added with heap states; files written before them lack these keys.
HEAP_PARAMS = ("heap_threshold", "max_heaps", "min_heap_count")

#: Synthesizer parameters a file may lack: ``condition_model`` is written only when True;
#: ``sampling``, ``standardize``, ``rounding`` and ``structural_zeros`` are absent from files written before them
#: (they load with "independent", "moments", False and False): version-1 files only (:data:`RECORDED_PARAMS`).
OPTIONAL_PARAMS = ("condition_model", "sampling", "standardize", "rounding", "structural_zeros")
#: Parameters every file of format version 2 and later holds (as it holds each integer encoder's ``compact``): a
#: version-1 file lacking one loads with the behaviour of the files written before it, and a newer file edited to
#: lack one would silently load so (``sampling`` removed: independent draws).
RECORDED_PARAMS = ("sampling", "standardize", "rounding", "structural_zeros") + HEAP_PARAMS
#: First format version whose float segments holding heaps that fit leaves without knots record their single value off
#: the heaps (``single_value``); a file of an older version lacks it, and its claim is checked as well as its
#: moments and recorded ends allow (:func:`_one_value_off_heaps`).
SINGLE_VALUE_VERSION = 3
#: The DP parameters (``._dp.DP_PARAMS``) are all written, with a ``privacy`` field, or none.
#: Metadata of a fully synthetic file (``condition_model=True``), in place of its conditions table.
CONDITION_MODEL_FIELDS = ("condition_model", "condition_ranges")

__all__ = ["check_conditions_table", "check_metadata", "check_patterns", "check_tensors", "is_fully_synthetic"]

_TOP = (
    "format_version", "format", "microplex_version", "params", "kinds", "dtypes", "encoders",
    "encoder_types", "condition_encoder", "patterns", "history",
)
_KINDS = ("continuous", "integer", "categorical")
_TRANSFORMS = ("identity", "log", "logit", "asinh")
_SEGMENT = ("sign", "lower", "upper", "transform", "scale", "mean", "std", "tail_lo", "tail_hi")
_MAX_LIST = 10_000_000


class _Fields:
    """Raises a DataValidationError naming the file and the field."""

    def __init__(self, label: str) -> None:
        self.label = label

    def fail(self, field: str, expected: str, got: Any) -> DataValidationError:
        text = repr(got)
        text = text if len(text) <= 80 else text[:77] + "..."
        return DataValidationError(
            f"{self.label} is not a valid Synthesizer model file: field {field!r} must be {expected}. Got {text} instead."
        )

    def mapping(self, value: Any, field: str, keys: Any = None) -> dict:
        if not isinstance(value, dict):
            raise self.fail(field, "a JSON object", value)
        if keys is not None and list(value) != list(keys) and set(value) != set(keys):
            raise self.fail(field, f"an object with keys {sorted(keys)}", sorted(value))
        return value

    def array(self, value: Any, field: str, max_len: int = _MAX_LIST) -> list:
        if not isinstance(value, list) or len(value) > max_len:
            raise self.fail(field, f"a JSON list of at most {max_len} items", value)
        return value

    def string(self, value: Any, field: str) -> str:
        if not isinstance(value, str):
            raise self.fail(field, "a string", value)
        return value

    def number(self, value: Any, field: str, *, positive: bool = False, none: bool = False) -> float | None:
        if value is None and none:
            return None
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and _finite(value)
        if not ok or (positive and value <= 0):
            raise self.fail(field, ("a positive" if positive else "a") + " finite number" + (" or null" if none else ""), value)
        return float(value)

    def integer(self, value: Any, field: str, low: int, high: int) -> int:
        if type(value) is not int or not low <= value <= high:
            raise self.fail(field, f"an int in [{low}, {high}]", value)
        return value

    def scalars(self, value: Any, field: str) -> list:
        """A non-empty list of distinct category values (str, bool, int or finite float)."""
        values = self.array(value, field)
        ok = bool(values) and all(
            isinstance(v, str | bool) or (isinstance(v, int) and -(2**63) <= v < 2**64)
            or (isinstance(v, float) and np.isfinite(v)) for v in values
        )
        if not ok or not pd.Index(values, dtype=object).is_unique:
            raise self.fail(field, "a non-empty list of distinct str, bool, int (64-bit) or finite float values", value)
        return values


def _finite(value: numbers.Real) -> bool:
    """Whether a JSON number is a finite float or an int within int64 (what ``save`` writes): an int beyond
    int64 (``10**30``) makes numpy arrays of objects, on which ``np.isfinite`` and the transforms raise TypeError."""
    if isinstance(value, numbers.Integral):
        return -(2**63) <= int(value) < 2**63
    return bool(np.isfinite(value))


def _check_categories_dtype(f: _Fields, values: list, dtype: str, field: str) -> None:
    """The categories of a categorical target are values of its training dtype: the draws are cast to it, and a
    value the cast changes (2.5 in an int64 column becomes 2) or cannot hold (1e308) is refused here."""
    try:
        cast = pd.Series(values, dtype=object).astype(dtype).tolist()
        ok = cast == values
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise f.fail(field, f"values of the column's dtype {dtype!r}", values)


def _check_sorted(f: _Fields, values: list, field: str) -> None:
    """Categories in the order fit gives them: sorted by type name, then value."""
    try:
        ok = values == sorted_categories(values)
    except TypeError:
        ok = False
    if not ok:
        raise f.fail(field, "categories sorted by type and value (as fit writes them)", values)


def _public_pair(f: _Fields, bounds: Any, name: str) -> tuple[float, float]:
    """The [low, high] public bounds of numeric column ``name`` of a DP model."""
    pair = bounds.get(name) if isinstance(bounds, dict) else None
    if not (isinstance(pair, list) and len(pair) == 2):
        raise f.fail(f"params.public_bounds.{name}", "the [low, high] public bounds of a DP model's numeric column", pair)
    lo, hi = (f.number(v, f"params.public_bounds.{name}") for v in pair)
    return lo, hi


def _check_public_bounds(f: _Fields, enc: dict, name: str, integer: bool, bounds: Any) -> None:
    """A DP model's continuous segment spans its target's public bounds plus the fit's margin (half a unit for
    an integer, :data:`._dp.MARGIN` of the width otherwise): bounds widened in the file drew values far
    outside them (hours of -980,000 for public bounds [0, 5000]). Its sign is 1 (what the fit writes; -1
    mirrors the draws, ages of -65 to -18 for public bounds [18, 70]), but where the bounds are symmetric
    about 0, and its point masses and heaps lie within the bounds (a point mass moved to -1 drew hours of
    -1 for public bounds [0, 5000])."""
    lo, hi = _public_pair(f, bounds, name)
    margin = 0.5 if integer else MARGIN * (hi - lo)
    for i, seg in enumerate(enc.get("segments", [])):
        got = [seg.get("lower"), seg.get("upper")]
        want = [lo - margin, hi + margin]
        if seg.get("transform") != "logit" or not all(
                isinstance(g, numbers.Real) and np.isclose(g, w, rtol=1e-12, atol=0.0) for g, w in zip(got, want)):
            raise f.fail(f"encoders.{name}.segments[{i}]", f"a logit segment between the public bounds [{lo:g}, "
                         f"{hi:g}] widened by {margin:g}: [{want[0]:g}, {want[1]:g}]", got)
        # a segment of sign -1 draws the mirror image of its span: within the bounds only if they are symmetric
        if seg.get("sign") != 1 and not (seg.get("sign") == -1 and lo == -hi):
            raise f.fail(f"encoders.{name}.segments[{i}].sign", f"1 for public bounds [{lo:g}, {hi:g}] (-1 draws "
                         "the mirror image of the segment, outside them)", seg.get("sign"))
    for key in ("point_masses", "heaps"):
        for j, v in enumerate(enc.get(key) or []):
            if not lo <= v <= hi:
                raise f.fail(f"encoders.{name}.{key}[{j}]", f"a value within the public bounds [{lo:g}, {hi:g}]", v)


def check_public_conditions(ranges: dict[str, tuple[float, float]], bounds: Any, label: str) -> None:
    """A DP model's numeric conditions' ranges (field ``condition_ranges``) are their public bounds, which the
    fit writes in their place (:func:`._dp.condition_ranges`): narrowed ([18, 35] for [18, 70]) they held the
    conditions of :meth:`generate` to another range."""
    f = _Fields(label)
    for name, got in ranges.items():
        lo, hi = _public_pair(f, bounds, name)
        if tuple(got) != (lo, hi):
            raise f.fail(f"condition_ranges.{name}", f"the public bounds of the condition, [{lo:g}, {hi:g}]",
                         list(got))


def _check_levels(f: _Fields, enc: dict, dtype: str, field: str) -> None:
    """The categories of a categorical target's training dtype (``levels``, kept when they differ from the
    categories seen): only for dtype 'category', distinct scalars holding every category seen, and, for an
    ordered target, listing them in the order of ``categories``."""
    levels = f.scalars(enc["levels"], field)
    ok = dtype == "category" and not unseen_categories(enc["categories"], levels) and levels != enc["categories"]
    if ok and enc.get("ordered") is True:
        order = category_codes(enc["categories"], levels)
        ok = bool((np.diff(order) > 0).all())
    if not ok:
        raise f.fail(field, "the categories of a target of dtype 'category' other than its 'categories', holding "
                     "each of them (in their order when ordered)", enc["levels"])


def is_fully_synthetic(meta: Any) -> bool:
    """Whether metadata declares a Synthesizer fitted with ``condition_model=True`` (its file
    holds the condition model instead of the training conditions)."""
    params = meta.get("params") if isinstance(meta, dict) else None
    return isinstance(params, dict) and params.get("condition_model") is True


def keeps_ranges_only(meta: Any) -> bool:
    """Whether metadata declares a Synthesizer that kept its conditions' ranges instead of the
    conditions table (``condition_ranges`` without a condition model and without DP: a
    HouseholdSynthesizer's inner model; its file holds no table)."""
    params = meta.get("params") if isinstance(meta, dict) else None
    private = isinstance(params, dict) and "epsilon" in params
    return not is_fully_synthetic(meta) and not private and isinstance(meta, dict) and "condition_ranges" in meta


def check_metadata(meta: dict[str, Any], label: str, param_keys: tuple[str, ...]) -> None:
    """Checks the structure and types of every metadata field of a Synthesizer file (the
    condition model of a fully synthetic file is checked when it is restored)."""
    f = _Fields(label)
    private = isinstance(meta, dict) and isinstance(meta.get("params"), dict) and "epsilon" in meta["params"]
    f.mapping(meta, "metadata", _TOP + (CONDITION_MODEL_FIELDS if is_fully_synthetic(meta) else ())
              + (("condition_ranges",) if keeps_ranges_only(meta) else ())  # the loader refuses it nested
              + (("privacy",) if private else ())
              + (("condition_tree",) if private and "condition_tree" in meta else ()))  # checked on restore
    f.string(meta["microplex_version"], "microplex_version")
    # Files written before heaps lack the heap parameters: their models have no heap states;
    # optional parameters are absent at their default.
    required = {k for k in param_keys if k not in OPTIONAL_PARAMS + DP_PARAMS} | (set(DP_PARAMS) if private else set())
    before_heaps = required - set(HEAP_PARAMS)
    params = f.mapping(meta["params"], "params")
    if set(params) - set(OPTIONAL_PARAMS) not in (required, before_heaps):
        raise f.fail("params", f"an object with keys {sorted(param_keys)}", sorted(params))
    version = meta.get("format_version")
    absent = [k for k in RECORDED_PARAMS if k in param_keys and k not in params]
    if version != 1 and absent:
        raise f.fail("params", f"an object holding {absent} (a file of format_version {version!r} records every "
                     "parameter; only version-1 files may lack them)", sorted(params))
    targets = f.array(params.get("target_vars"), "params.target_vars")
    conditions = f.array(params.get("condition_vars"), "params.condition_vars")
    for i, n in enumerate(targets + conditions):
        f.string(n, f"params.{'target_vars' if i < len(targets) else 'condition_vars'}[{i}]")
    schema = f.mapping(params.get("schema"), "params.schema")
    for name, spec in schema.items():
        spec = f.mapping(spec, f"params.schema.{name}")
        if not {"kind", "point_masses", "transform"} <= set(spec) <= {"kind", "point_masses", "transform", "heaps"}:
            raise f.fail(f"params.schema.{name}", "an object with keys kind, point_masses, transform (and heaps)",
                         sorted(spec))
    if params.get("hidden_features") is not None:
        f.array(params["hidden_features"], "params.hidden_features", 64)

    kinds = f.mapping(meta["kinds"], "kinds", targets + conditions)
    # fit writes the per-variable fields in the order of target_vars (then condition_vars), the order of the flow's
    # coordinates: target_vars reversed in a DP file loaded and drew hours of median 1711 for 1298
    for key, names in (("kinds", targets + conditions), ("dtypes", targets), ("encoder_types", targets),
                       ("encoders", targets)):
        if isinstance(meta[key], dict) and list(meta[key]) != names and set(meta[key]) == set(names):
            raise f.fail(key, f"an object whose keys are in the order of params.target_vars"
                         f"{' and params.condition_vars' if key == 'kinds' else ''} {names}", list(meta[key]))
    for n, k in kinds.items():
        if k not in _KINDS or (n in conditions and k == "integer"):
            raise f.fail(f"kinds.{n}", "one of " + ", ".join(_KINDS[:: 1 if n in targets else 2]), k)
    for n, d in f.mapping(meta["dtypes"], "dtypes", targets).items():
        try:
            pd.api.types.pandas_dtype(f.string(d, f"dtypes.{n}"))
        except (TypeError, ValueError):
            raise f.fail(f"dtypes.{n}", "a pandas dtype name", d) from None
    types = f.mapping(meta["encoder_types"], "encoder_types", targets)
    encoders = f.mapping(meta["encoders"], "encoders", targets)
    standardize = params.get("standardize", "moments")  # absent from files written before it
    for n in targets:
        expected = "CategoricalEncoder" if kinds[n] == "categorical" else "ContinuousEncoder"
        if types[n] != expected:
            raise f.fail(f"encoder_types.{n}", repr(expected), types[n])
        if expected == "CategoricalEncoder":
            ordered, levels, missing = (isinstance(encoders[n], dict) and k in encoders[n]
                                        for k in ("ordered", "levels", "missing"))
            enc = f.mapping(encoders[n], f"encoders.{n}", ("name", "categories") + ("ordered",) * ordered
                            + ("levels",) * levels + ("missing",) * missing)
            if missing and (enc["missing"] is not True or private):  # missing values: a state (never with DP)
                raise f.fail(f"encoders.{n}.missing", "true, in a model fitted without differential privacy",
                             enc["missing"])
            f.scalars(enc["categories"], f"encoders.{n}.categories")
            if "ordered" in enc and (enc["ordered"] is not True or meta["dtypes"][n] != "category"):
                raise f.fail(f"encoders.{n}.ordered", "true, for a target of dtype 'category' (or no such key)",
                             enc["ordered"])
            _check_categories_dtype(f, enc["categories"], meta["dtypes"][n], f"encoders.{n}.categories")
            if "ordered" not in enc:  # fit sorts them; a permutation would swap the labels of the draws
                _check_sorted(f, enc["categories"], f"encoders.{n}.categories")
            if "levels" in enc:
                _check_levels(f, enc, meta["dtypes"][n], f"encoders.{n}.levels")
        else:
            _check_continuous(f, encoders[n], n, kinds[n] == "integer", private, standardize,
                              params.get("rounding", False), meta["dtypes"][n])
            if version != 1:
                _check_recorded(f, encoders[n], n, kinds[n] == "integer", version)
            _check_decoding(f, encoders[n], n, meta["dtypes"][n], private, standardize, version)
        if encoders[n]["name"] != n:
            raise f.fail(f"encoders.{n}.name", repr(n), encoders[n]["name"])
        if encoders[n].get("missing") is True and not holds_missing(meta["dtypes"][n]):  # drawn -9.2e18 or True
            raise f.fail(f"dtypes.{n}", f"a dtype that holds missing values (float64, Int64, ...): "
                         f"'encoders.{n}.missing' is true", meta["dtypes"][n])

    weightless, missing = (isinstance(meta["condition_encoder"], dict) and k in meta["condition_encoder"]
                           for k in ("weightless", "missing"))
    cond = f.mapping(meta["condition_encoder"], "condition_encoder",
                     ("kinds", "stats") + ("weightless",) * weightless + ("missing",) * missing)
    if missing:  # conditions with missing values in training (never with DP: no DP fit takes missing values)
        names = cond["missing"]
        if (private or not isinstance(names, list) or not names or len(set(map(str, names))) != len(names)
                or not all(isinstance(n, str) and n in conditions for n in names)):
            raise f.fail("condition_encoder.missing", "a non-empty list of distinct condition names, "
                         "in a model fitted without differential privacy", names)
    ckinds = f.mapping(cond["kinds"], "condition_encoder.kinds")
    if list(ckinds) != list(conditions) or any(ckinds[n] != kinds[n] for n in conditions):
        raise f.fail("condition_encoder.kinds", f"the kinds of {conditions} in order", ckinds)
    for n, s in f.mapping(cond["stats"], "condition_encoder.stats", conditions).items():
        if kinds[n] == "categorical":
            f.scalars(s, f"condition_encoder.stats.{n}")
            # fit sorts them; a permutation would feed each record the one-hot code of another category
            _check_sorted(f, s, f"condition_encoder.stats.{n}")
        else:
            if not isinstance(s, list) or len(s) != 2:
                raise f.fail(f"condition_encoder.stats.{n}", "a [mean, std] pair", s)
            f.number(s[0], f"condition_encoder.stats.{n}[0]")
            f.number(s[1], f"condition_encoder.stats.{n}[1]", positive=True)
    if "weightless" in cond:  # categories only records of weight 0 held: some of a categorical condition's, not all
        for n, levels in f.mapping(cond["weightless"], "condition_encoder.weightless").items():
            field = f"condition_encoder.weightless.{n}"
            if n not in conditions or kinds[n] != "categorical":
                raise f.fail(field, "a categorical condition's name", n)
            levels = f.scalars(levels, field)
            if unseen_categories(levels, cond["stats"][n]) or len(levels) >= len(cond["stats"][n]):
                raise f.fail(field, f"some but not all of the categories of condition {n!r}", levels)

    history = f.mapping(meta["history"], "history", ("epoch", "train_loss", "val_loss"))
    lengths = {len(f.array(v, f"history.{k}")) for k, v in history.items()}
    if len(lengths) > 1:
        raise f.fail("history", "lists of equal length", sorted(lengths))
    for k, values in history.items():
        # an int beyond int64 (10**30) made the isnan below raise a raw TypeError; a loss may be NaN or inf
        if not all(isinstance(v, numbers.Real) and not isinstance(v, bool)
                   and (not isinstance(v, numbers.Integral) or _finite(v)) for v in values):
            raise f.fail(f"history.{k}", "a list of numbers (floats, or integers within int64)", values)
    # A DP file's continuous segments span its public bounds. A file whose history holds losses is no DP fit's
    # at all: the privacy record's check refuses it, naming 'history' (see ._dp_record).
    if private and all(np.isnan(v) for k in ("train_loss", "val_loss") for v in history[k]):
        for n in targets:
            if kinds[n] != "categorical":
                _check_public_bounds(f, encoders[n], n, kinds[n] == "integer", params.get("public_bounds"))


def _check_recorded(f: _Fields, enc: dict, name: str, integer: bool, version: Any) -> None:
    """A continuous encoder of a file of format version 2 and later has segments, and ``compact`` exactly where fit
    sets it (an integer target whose heaps are integers): a version-1 file without it loads with the heaps in the
    flow's coordinate, as fitted before compact coordinates (a condition model's ages then reached 68, not 91)."""
    field = f"encoders.{name}"
    if "segments" not in enc:
        raise f.fail(field, f"an encoder with 'segments' (format_version {version!r}; only version-1 files may be "
                     "older)", sorted(enc))
    heaps = enc.get("heaps") or []
    compact = integer and bool(heaps) and all(float(h).is_integer() for h in heaps)
    if ("compact" in enc) != compact:
        raise f.fail(f"{field}.compact", "true on an integer target whose heaps are integers and absent otherwise "
                     f"(format_version {version!r}; only version-1 files lack it)", enc.get("compact"))


def _check_continuous(f: _Fields, enc: Any, name: str, integer: bool, private: bool = False,
                      standardize: Any = "moments", rounding: Any = None, dtype: str | None = None) -> None:
    """A continuous or integer target's encoder ``enc`` (its keys, segments, point masses, heaps, rounding
    grid), against the file's parameters: ``private`` (a DP file), ``standardize``, ``rounding`` (the file's
    ``params.rounding``: ``False`` means no rounding grid) and the target's ``dtype`` (which fixes the precision
    of its grid, :func:`_check_grid_precision`)."""
    field = f"encoders.{name}"
    enc = f.mapping(enc, field)
    legacy = "segments" not in enc
    keys = {"name", "integer", "point_masses"} | (
        {"has_continuous", *_SEGMENT} if legacy else {"segments", "heaps", "compact", "rounding", "missing"})
    if not {"name", "integer", "point_masses"} <= set(enc) or set(enc) - keys:
        raise f.fail(field, f"an object with keys {sorted(keys)}", sorted(enc))
    if enc["integer"] is not integer:
        raise f.fail(f"{field}.integer", repr(integer), enc["integer"])
    masses = [f.number(v, f"{field}.point_masses") for v in f.array(enc["point_masses"], f"{field}.point_masses", 1024)]
    if masses != sorted(set(masses)):
        raise f.fail(f"{field}.point_masses", "a sorted list of distinct numbers", masses)
    if legacy:
        if not isinstance(enc.get("has_continuous"), bool):
            raise f.fail(f"{field}.has_continuous", "a bool", enc.get("has_continuous"))
        segments = [enc] if enc["has_continuous"] else []
    else:
        segments = f.array(enc["segments"], f"{field}.segments", 2)
    for i, seg in enumerate(segments):
        where = field if legacy else f"{field}.segments[{i}]"
        seg = f.mapping(seg, where)
        required = set(_SEGMENT) - ({"sign", "tail_lo", "tail_hi"} if legacy else set())
        if not required <= set(seg) or (not legacy and set(seg) - {"knots", "free", "single_value"} != set(_SEGMENT)):
            raise f.fail(where, f"an object with keys {list(_SEGMENT)} (and 'knots', 'free', 'single_value')",
                         sorted(seg))
        if not legacy and "knots" in seg:
            if standardize != "quantile":  # fit (a DP fit too) writes knots only for standardize="quantile"
                raise f.fail(f"{where}.knots", f"absent: params.standardize is {standardize!r} (knots are written "
                             "only with standardize='quantile')", sorted(seg["knots"]) if isinstance(seg["knots"], dict)
                             else seg["knots"])
            _check_knots(f, seg["knots"], f"{where}.knots", private)
        # written only as false, on a segment whose values all sit on heaps (checked against the heaps below)
        if "free" in seg and (seg["free"] is not False or legacy or private or "heaps" not in enc):
            raise f.fail(f"{where}.free", "absent, or false on a segment of a variable with heaps (not a DP model)",
                         seg["free"])
        # written only on a float segment holding heaps that fit leaves without knots (checked against them below)
        if "single_value" in seg:
            if (legacy or private or integer or "heaps" not in enc or standardize != "quantile" or "knots" in seg
                    or "free" in seg):
                raise f.fail(f"{where}.single_value", "absent, or on a float segment of a variable with heaps, "
                             "without knots and not 'free', with params.standardize 'quantile' (not a DP model)",
                             seg["single_value"])
            f.number(seg["single_value"], f"{where}.single_value")
        if seg.get("sign", 1) not in (1, -1) or isinstance(seg.get("sign", 1), bool):
            raise f.fail(f"{where}.sign", "1 or -1", seg.get("sign"))
        transform = seg["transform"]
        if transform not in _TRANSFORMS:
            raise f.fail(f"{where}.transform", "one of " + ", ".join(_TRANSFORMS), transform)
        lower = f.number(seg["lower"], f"{where}.lower", none=True)
        upper = f.number(seg["upper"], f"{where}.upper", none=True)
        if transform == "logit" and (lower is None or upper is None or not lower < upper):
            raise f.fail(f"{where}", "a logit segment with lower < upper", [lower, upper])
        if transform == "log" and lower is None:
            raise f.fail(f"{where}.lower", "a number for a log segment", lower)
        f.number(seg["scale"], f"{where}.scale", positive=True)
        f.number(seg["mean"], f"{where}.mean")
        f.number(seg["std"], f"{where}.std", positive=True)
        tails = [f.number(seg.get(k), f"{where}.{k}", none=True) for k in ("tail_lo", "tail_hi")]
        # fit gives a lower linear tail to an asinh segment only, an upper one to log and asinh segments
        for k, t, allowed in (("tail_lo", tails[0], ("asinh",)), ("tail_hi", tails[1], ("log", "asinh"))):
            if t is not None and transform not in allowed:
                raise f.fail(f"{where}.{k}", f"null for a {transform} segment (only {' and '.join(allowed)} "
                             "segments have this linear tail)", t)
        if None not in tails and not tails[0] <= tails[1]:
            raise f.fail(f"{where}", "a segment with tail_lo <= tail_hi", tails)
    signs = [s.get("sign", 1) for s in segments]
    if signs not in ([], [1], [-1], [-1, 1]) or (signs == [-1, 1] and 0.0 not in masses):
        raise f.fail(f"{field}.segments", "one segment of sign 1 or -1 (values at or below 0), or two of signs -1 "
                     "and 1 split at a point mass 0", signs)
    if not masses and not segments:
        raise f.fail(field, "an encoder with a point mass or a continuous segment", enc)
    heaps = []
    if "heaps" in enc:
        heaps = [f.number(v, f"{field}.heaps") for v in f.array(enc["heaps"], f"{field}.heaps", MAX_HEAPS)]
        if not heaps or heaps != sorted(set(heaps)) or set(heaps) & set(masses) or not segments:
            raise f.fail(f"{field}.heaps", "a non-empty sorted list of distinct numbers, none a point mass, "
                         "on a variable with a continuous segment", heaps)
    if signs == [-1] and any(v > 0 for v in [*masses, *heaps]):  # fit mirrors values at or below 0 only
        raise f.fail(f"{field}.segments", "a segment of sign 1 where a point mass or heap lies above 0 (a single "
                     "segment of sign -1 models values at or below 0)", [*masses, *heaps][-3:])
    # Compact coordinates (the heap integers taken out of the flow's): integer heaps only.
    if "compact" in enc and not (enc["compact"] is True and integer and heaps
                                 and all(float(h).is_integer() for h in heaps)):
        raise f.fail(f"{field}.compact", "true, on an integer variable with integer heaps", enc["compact"])
    if "missing" in enc and (enc["missing"] is not True or private):  # missing values: a state (never with DP)
        raise f.fail(f"{field}.missing", "true, in a model fitted without differential privacy", enc["missing"])
    if "rounding" in enc:  # a rounding grid (.rounding): learnt from the data without noise, so never in a DP file
        if private or not segments or rounding is False:
            raise f.fail(f"{field}.rounding", "absent (a DP model, a model whose params.rounding is false or a "
                         "variable without a continuous segment has no rounding grid)", enc["rounding"])
        grid = RoundingGrid.from_dict(enc["rounding"], fail=lambda where, expected, got: f.fail(
            f"{field}.rounding{where}", expected, got))
        if dtype is not None:
            _check_grid_precision(f, grid, dtype, f"{field}.rounding.precision")
        sides = [(bands, pooled) for bands, pooled in (grid.sides or {}).values()]
        levels = [v for bands, pooled in [(grid.bands, grid.pooled), *sides] for ls, _ in [pooled, *bands.values()]
                  for v in ls]
        if integer and min(levels) < 0:  # fit gives an integer's values levels 0 and above
            raise f.fail(f"{field}.rounding", "levels of 0 and above for an integer variable",
                         enc["rounding"])


def _check_grid_precision(f: _Fields, grid: RoundingGrid, dtype: str, field: str) -> None:
    """A rounding grid's ``precision`` (the float type its levels are read and its draws written at) is no narrower
    than the target's ``dtype`` holds its values: float64 (the key absent) for an integer dtype, float32 or float64
    for a float32 one; any for a float16 or float64 dtype (fit reads a float64 column's precision off its values,
    :func:`~microplex._stats.storage_precision`, and the file does not hold them). A narrower grid moves the draws
    off the values the dtype holds: a float16 grid on an int64 target moved 285 of 2,000 hours drawn by one (float16
    holds no odd number above 2,048). A wider one only writes its draws at float64 before they are cast to the
    dtype."""
    resolved = pd.api.types.pandas_dtype(dtype)
    integer = pd.api.types.is_integer_dtype(resolved)
    held = "float64" if integer else dtype_precision(resolved)
    if held == "float64" and not integer:  # a float64 column's values may have been stored narrower
        return
    widths = {"float16": 2, "float32": 4, "float64": 8}
    if widths[grid.precision] < widths[held]:
        allowed = " or ".join(repr(p) for p in widths if widths[p] >= widths[held])
        raise f.fail(field, f"{allowed} for a target of dtype {dtype!r} (no narrower than the dtype holds its values; "
                     "absent for float64)", grid.precision)


#: Largest normal score of a knot: ``ndtri(1 - 1/2 / MAX_KNOTS)`` (the knot maps put their knots at normal scores
#: of probabilities within (1/2 / k, 1 - 1/2 / k), k <= MAX_KNOTS).
_MAX_KNOT_SCORE = float(qmap.ndtri(1 - 0.5 / MAX_KNOTS))


def _check_knots(f: _Fields, knots: Any, where: str, private: bool = False) -> None:
    """Knots of a quantile standardization: two equal-length, strictly increasing lists of numbers; the normal
    scores ``z`` within those of the knot maps' probabilities (a DP model's are recalibrated to its own draws,
    :mod:`._dp_margins`, on logit segments whose values stay inside their bounds whatever ``z``)."""
    knots = f.mapping(knots, where, ("t", "z", "slopes"))
    columns = [[f.number(v, f"{where}.{k}") for v in f.array(knots[k], f"{where}.{k}", MAX_KNOTS)] for k in ("t", "z")]
    if not (len(columns[0]) == len(columns[1]) >= 3 and all(np.all(np.diff(c) > 0) for c in columns)):
        raise f.fail(where, "two strictly increasing lists 't' and 'z' of equal length (at least 3)",
                     [len(c) for c in columns])
    if not private and not all(abs(z) <= _MAX_KNOT_SCORE + 1e-9 for z in columns[1]):
        raise f.fail(f"{where}.z", f"normal scores within +-{_MAX_KNOT_SCORE:.4f} (those of the probabilities "
                     f"(j + 1/2) / k, k <= {MAX_KNOTS})", [z for z in columns[1] if abs(z) > _MAX_KNOT_SCORE + 1e-9])
    slopes = f.array(knots["slopes"], f"{where}.slopes", 2)
    if len(slopes) != 2:
        raise f.fail(f"{where}.slopes", "two numbers (the lower and upper tail slopes)", slopes)
    for v in slopes:
        f.number(v, f"{where}.slopes", positive=True)


def _check_bounds(f: _Fields, enc: ContinuousEncoder, field: str) -> None:
    """A (non-DP) segment's bounds are those :meth:`._segment._Segment.fit` writes, in the segment's mirrored
    coordinate (``sign`` times the value, or its compact coordinate): for a float target, ``lower`` is a point mass
    (the largest below the segment's values), 0.0 (positive values and no point mass below them) or null, and
    ``upper`` a point mass or null; for an integer target, each bound lies half a unit beyond a value of the
    segment (an integer, or a heap's compact coordinate), on a side with a point mass beyond it (or, for ``lower``,
    values of 0 and above), unless the transform is logit. A bound edited to another number loaded and drew from a
    shifted support (lower -50000 drew 1,562 negative incomes out of 3,000 from incomes of 0 and above)."""
    heap_coords = enc._heap_coordinates() if enc.compact else np.asarray([], dtype=float)
    for i, seg in enumerate(enc.segments):
        where = f"{field}.segments[{i}]"
        masses = sorted(seg.sign * float(enc._coordinate(np.array([m]))[0]) for m in enc.point_masses)
        if seg.lower is not None and seg.upper is not None and not seg.lower < seg.upper:
            raise f.fail(where, "a segment with lower < upper", [seg.lower, seg.upper])
        if not enc.integer:
            if not (seg.lower is None or seg.lower in masses or (seg.lower == 0.0 and all(m > 0 for m in masses))):
                raise f.fail(f"{where}.lower", f"a point mass of the segment's side {masses[:5]}, 0.0 (no point mass "
                             "at or below 0) or null, as fit writes it", seg.lower)
            if seg.upper is not None and seg.upper not in masses:
                raise f.fail(f"{where}.upper", f"a point mass of the segment's side {masses[:5]} or null, as fit "
                             "writes it", seg.upper)
            continue
        coords = seg.sign * heap_coords
        logit = seg.transform == "logit"  # fit then bounds the segment half a unit beyond its values on both sides
        for key, bound, side in (("lower", seg.lower, -1), ("upper", seg.upper, 1)):
            if bound is None:
                continue
            value = bound - side * 0.5  # the segment's smallest (largest) value
            on_grid = float(value).is_integer() or bool(np.any(np.isclose(coords, value, rtol=1e-12, atol=1e-12)))
            # values of 0 and above: a smallest coordinate of 0 or above, or a heap's at 0 or above (0 sits at -0.5)
            nonnegative = value >= 0 or (enc.compact and bool(np.any(
                np.isclose(coords, value, rtol=1e-12, atol=1e-12) & (seg.sign * np.asarray(enc.heaps) >= 0))))
            beyond = any(side * (m - value) > 0 for m in masses) or (side < 0 and nonnegative)
            if not on_grid or not (beyond or logit):
                raise f.fail(f"{where}.{key}", "half a unit beyond the segment's " + ("smallest" if side < 0 else
                             "largest") + " value (an integer or a heap's coordinate), with a point mass beyond it"
                             + (" or values of 0 and above" if side < 0 else "") + ", as fit writes it", bound)


#: Magnitude of an integer segment's coordinates below which its dequantized values (each integer plus the offsets
#: :data:`._quantile_map.DEQUANTIZE`, 1/8 apart) stay distinct after any transform: log's and asinh's spacing near
#: ``y`` is about ``1/16 / y``, which float64 resolves while ``y`` stays below about 2**43.
_DEQUANTIZED_DISTINCT = 2.0**40


def _largest_coordinate(seg: Any) -> float:
    """The largest magnitude of a segment's (mirrored) coordinates that its bounds and linear tails record
    (infinity when they record none)."""
    values = [abs(b) for b in (seg.lower, seg.upper) if b is not None]
    with np.errstate(over="ignore", invalid="ignore"):
        values += [abs(float(seg._core_inverse(np.float64(t)))) for t in (seg.tail_lo, seg.tail_hi) if t is not None]
    return max(values, default=np.inf)


def _heaps_transformed(enc: ContinuousEncoder, seg: Any, state: int) -> np.ndarray:
    """The transformed values (mirrored, sorted) of the heaps of ``enc`` that lie in segment ``seg`` (state
    ``state``)."""
    heaps = np.asarray(enc.heaps, dtype=float)
    heaps = enc._coordinate(heaps[enc.states(heaps) == state])  # a compact variable's heaps: their coordinates
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return np.sort(np.asarray(seg._core_forward(seg.sign * heaps), dtype=float))


def _single_value_fits(enc: ContinuousEncoder, seg: Any, state: int) -> bool:
    """Whether float segment ``seg`` (state ``state`` of ``enc``), holding heaps, can be what fit writes for its
    recorded single value off the heaps ``v`` (``single_value``, mirrored): ``v`` lies in the segment (strictly
    inside its bounds) and is no heap, the recorded ends of its range (linear tails) are the smallest and largest
    of its heaps and ``v``, and its moments are those of some weights on them (:func:`_moments_on`)."""
    v = float(seg.single_value)
    if int(enc.states(np.array([seg.sign * v]))[0]) != state or seg.sign * v in enc.heaps:
        return False
    t = _heaps_transformed(enc, seg, state)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        points = np.sort(np.append(t, float(seg._core_forward(np.float64(v)))))
    if not (t.size and np.all(np.isfinite(points))):
        return False
    tol = 1e-9 * _heap_scale(points, seg)
    ends = all(end is None or abs(end - want) <= tol for end, want in ((seg.tail_lo, points[0]),
                                                                      (seg.tail_hi, points[-1])))
    return ends and _moments_on(points, seg.mean, seg.std, tol)


def _one_value_off_heaps(enc: ContinuousEncoder, seg: Any, state: int) -> bool:
    """Whether float segment ``seg`` (state ``state`` of ``enc``), holding heaps, can hold besides them a single
    value ``v``: its recorded range's ends (linear tails) are heaps or ``v`` (one value), and its moments are those
    of some weights on the heaps and ``v`` (:func:`_moments_on`; unchecked when no end gives ``v``, which may then
    sit anywhere)."""
    t = _heaps_transformed(enc, seg, state)
    if not (t.size and np.all(np.isfinite(t))):
        return True  # checked elsewhere (heaps inside the segment, finite decoding)
    scale = _heap_scale(t, seg)
    tol = 1e-9 * scale
    off = _ends_off_heaps(seg, t)
    if len(off) == 2 and abs(off[0] - off[1]) > tol:
        return False  # two ends that are no heap: two values off them
    if (seg.tail_lo is not None and seg.tail_lo > t[0] + tol) or (seg.tail_hi is not None and seg.tail_hi < t[-1] - tol):
        return False  # a heap beyond the recorded range
    if off:
        return _moments_on(np.append(t, off[0]), seg.mean, seg.std, tol)
    if seg.tail_lo is not None and seg.tail_hi is not None:  # v between the ends: variance at most the ends'
        return (seg.std**2 <= (seg.mean - seg.tail_lo) * (seg.tail_hi - seg.mean) + tol * scale
                and seg.tail_lo - tol <= seg.mean <= seg.tail_hi + tol)
    return True


def _heap_scale(t: np.ndarray, seg: Any) -> float:
    """The scale at which a segment's transformed heaps (or heaps and value) ``t`` and ``seg``'s recorded ends and
    moments are compared (a thousand-millionth of it: the tolerance): the largest of 1, ``max |t|`` and ``|mean|``."""
    return max(1.0, float(np.max(np.abs(t), initial=0.0)), abs(seg.mean))


def _ends_off_heaps(seg: Any, t: np.ndarray) -> list[float]:
    """The recorded ends of float segment ``seg``'s range (its linear tails, transformed) that are none of its heaps
    (``t``: their transformed values, :func:`_heaps_transformed`): where it holds heaps and a single value ``v``
    besides, such an end is ``v``."""
    tol = 1e-9 * _heap_scale(t, seg)
    return [v for v in (seg.tail_lo, seg.tail_hi) if v is not None and not bool(np.any(np.abs(t - v) <= tol))]


def _heaps_only(enc: ContinuousEncoder, seg: Any, state: int) -> bool:
    """Whether segment ``seg`` (state ``state`` of ``enc``), marked ``free: false``, is what fit writes for values
    that all sit on its heaps: its recorded ends (linear tails) are its smallest and largest heap's, and its moments
    those of some weights on its heaps (one heap: its value, with the standard deviation 1.0 fit writes for one
    value, or one of a few ulps as files written before session 74 hold); and no rounding grid was fitted on its
    values (fit learns the grid on the values off the heaps: there are none)."""
    t = _heaps_transformed(enc, seg, state)
    if not (t.size and np.all(np.isfinite(t))):
        return True  # checked elsewhere (the segment holds a heap, finite decoding)
    tol = 1e-9 * _heap_scale(t, seg)
    ends = all(end is None or abs(end - want) <= tol for end, want in ((seg.tail_lo, t[0]), (seg.tail_hi, t[-1])))
    if np.ptp(t) <= tol:
        moments = abs(seg.mean - t[0]) <= tol and _one_value_std(seg)
    else:
        moments = _moments_on(t, seg.mean, seg.std, tol)
    # a grid is fitted on values off the heaps, per sign only where they lie on both sides of 0 (then, split at a
    # point mass 0, each segment holds some)
    grid = enc.rounding
    gridded = grid is not None and (not any(s.free for s in enc.segments) or (
        grid.sides is not None and len(enc.segments) == 2))
    return ends and moments and not gridded


def _one_value_std(seg: Any) -> bool:
    """Whether ``seg``'s standard deviation is what fit writes for the moments of one value: 1.0 (before session 74
    a weighted mean of one value an ulp off left a std of a few ulps of the mean instead, 8.9e-16 at 7.41: files
    that still load)."""
    return seg.std == 1.0 or 0.0 < seg.std <= 64 * np.finfo(float).eps * max(1.0, abs(seg.mean))


def _grid_of_segment(enc: ContinuousEncoder, i: int) -> tuple[dict[int, Any], tuple[tuple[int, ...], Any]] | None:
    """The bands and pooled levels that ``enc``'s rounding grid (:mod:`.rounding`) fitted on the values segment ``i``
    holds off its heaps alone: fit learns the grid on the values off the point masses and heaps, per sign where
    they lie on both sides of 0 (:attr:`~.rounding.RoundingGrid.sides`, the signs of a split variable's segments).
    ``None`` where the grid says nothing of them alone: no grid, too few records of the segment's sign, or a grid
    without sides over more than one segment with such values (one written before signs pooled both)."""
    grid, seg = enc.rounding, enc.segments[i]
    if grid is None:
        return None
    if grid.sides is not None:
        return grid.sides.get(seg.sign)
    return (grid.bands, grid.pooled) if [s for s in enc.segments if s.free] == [seg] else None


def _grid_fits_one_value(enc: ContinuousEncoder, i: int, value: float | None = None) -> bool:
    """Whether ``enc``'s rounding grid can have been fitted on a single value off the heaps of segment ``i``
    (:func:`_grid_of_segment`; true where it says nothing of them): one decimal level, in at most one magnitude
    band; with ``value`` (the recorded single value, mirrored), that value's level and band."""
    table = _grid_of_segment(enc, i)
    if table is None:
        return True
    bands, (levels, _) = table
    if len(levels) != 1 or len(bands) > 1 or any(ls != levels for ls, _ in bands.values()):
        return False
    if value is None:
        return True
    x = np.array([enc.segments[i].sign * value])
    return (int(decimal_levels(x, enc.rounding.precision)[0]) == levels[0]
            and all(b == int(magnitude_bands(x)[0]) for b in bands))


def _moments_on(points: np.ndarray, mean: float, std: float, tol: float) -> bool:
    """Whether a weighted mean and standard deviation are those of some weights on ``points``: ``(mean,
    mean**2 + std**2)`` lies in the convex hull of the points ``(x, x**2)``, between the chords of consecutive
    points (below: the least variance for that mean) and the chord of the ends (above: the most)."""
    x = np.unique(points)
    if not x[0] - tol <= mean <= x[-1] + tol:
        return False
    m = float(np.clip(mean, x[0], x[-1]))
    second = mean**2 + std**2
    low = float(np.interp(m, x, x**2))
    high = x[0] ** 2 + (x[-1] ** 2 - x[0] ** 2) * (m - x[0]) / (x[-1] - x[0]) if x.size > 1 else x[0] ** 2
    slack = tol * max(1.0, float(np.max(np.abs(x)))) * 4
    return low - slack <= second <= high + slack


def _check_knots_present(f: _Fields, enc: ContinuousEncoder, field: str,
                         version: Any = SINGLE_VALUE_VERSION) -> None:
    """A non-DP model fitted with ``standardize="quantile"`` has knots on every segment with values off the heaps
    (not ``free: false``), but for one whose values off the heaps are (in weight) a single value
    (:func:`._quantile_map.fit_knots` finds fewer than 3 knots). Knots deleted from the file loaded and drew through
    the moments a flow trained on knots never saw (p10 of an income 1,893 became 1,201; p99 of acs12's hours of
    work, whose segment holds heaps, 60 became 64 and the largest draw 93 became 154).

    * An integer segment always has knots: fit spreads each integer over 8 offsets (dequantization), each holding
      at most 1/8 of the weight, so that at least 6 of the 8 or more knots' probabilities fall between the first
      and the last Hazen position and give distinct knots (but where its coordinates reach
      :data:`_DEQUANTIZED_DISTINCT`, which float64 may not resolve after the transform).
    * A float segment without heaps inside it has the moments of one value (standard deviation 1.0, the mean at
      its tails).
    * A float segment holding heaps lacks knots only when its values off the heaps are one value ``v`` (two
      distinct values put their Hazen positions at least 1/2 apart, holding 3 or more of the knots'
      probabilities): its values are then the heaps and ``v``. Where a recorded end of its range (a linear tail) is
      no heap, that end is ``v``, and its moments must be those of some weights on these values
      (:func:`_moments_on`); where both ends are heaps, its variance is at most that of its range's ends. A file of
      format version :data:`SINGLE_VALUE_VERSION` and later records ``v`` (``single_value``; without it a logit
      segment, which records no ends, or a log one whose one end is a heap, could not be told from one whose knots
      were deleted): it must be present, and the segment what fit writes for it (:func:`_single_value_fits`). Only
      such a segment holds ``single_value``.
    * The variable's rounding grid, where it was fitted on such a segment's values off its heaps alone, holds one
      decimal level in one magnitude band (:func:`_grid_fits_one_value`), those of ``single_value`` where recorded:
      a file of an older version whose knots were deleted from a segment of values rounded to several levels (a
      logit segment with a heap at 40 among values to three decimals, edited to version 2) loaded and drew other
      values. In a file of an older version, where neither an end of the range (:func:`_ends_off_heaps`) nor the
      grid (no grid: ``rounding=False``, or values without decimal levels) pins the single value, nothing tells
      the segment from one whose knots were deleted (the knots of a logit segment among 2,000 values deleted from
      a file without a grid, edited to version 2, loaded and drew other values): such a file is refused, to be
      fitted again. Not told apart: a file of the current version whose knots were deleted and whose
      ``single_value`` is one the heaps' moments allow (with one heap, the one they give), where the grid says
      nothing or gives it one level and band; nor a ``single_value`` that the moments of two heaps or more allow,
      of the grid's level and band (70 recorded as 80), from the fitted one. Such a file is what fit writes for
      other training values: no field records more of the values off the heaps (a changed ``single_value`` alone
      changes no draw).
    """
    k = len(enc.point_masses)
    held = set(enc.heap_states)
    recorded = type(version) is int and version >= SINGLE_VALUE_VERSION
    for i, seg in enumerate(enc.segments):
        where = f"{field}.segments[{i}].single_value"
        if seg.single_value is not None and not (recorded and seg.knots is None and k + i in held):
            raise f.fail(where, f"absent: only a segment holding heaps (in a file of format_version "
                         f"{SINGLE_VALUE_VERSION} or later) records its single value off them", seg.single_value)
        if seg.knots is not None or not seg.free:
            continue
        if enc.integer and _largest_coordinate(seg) < _DEQUANTIZED_DISTINCT:
            raise f.fail(f"{field}.segments[{i}].knots", "present: params.standardize is 'quantile' and the segment "
                         "holds integer values off its heaps (fit always finds knots for them)", None)
        if k + i in held and recorded and not enc.integer:
            if seg.single_value is None:
                raise f.fail(where, f"present: params.standardize is 'quantile' and the segment holds heaps but no "
                             f"knots (a file of format_version {version!r} records the single value off the heaps of "
                             "such a segment; only files of older versions lack it)", None)
            if not _single_value_fits(enc, seg, k + i):
                raise f.fail(where, "the segment's single value off its heaps: inside its bounds, no heap, with its "
                             "heaps giving its recorded ends and moments (as fit writes it)", seg.single_value)
            if not _grid_fits_one_value(enc, i):
                raise f.fail(f"{field}.segments[{i}].knots", "present: params.standardize is 'quantile' and the "
                             "variable's rounding grid gives the segment's values off its heaps more than one decimal "
                             "level or magnitude band (more than one value)", None)
            if not _grid_fits_one_value(enc, i, seg.single_value):
                raise f.fail(where, "the segment's single value off its heaps, of the decimal level and magnitude "
                             "band the variable's rounding grid records for it", seg.single_value)
            continue
        if k + i in held:
            if not enc.integer and not _one_value_off_heaps(enc, seg, k + i):
                raise f.fail(f"{field}.segments[{i}].knots", "present: params.standardize is 'quantile' and the "
                             "segment's moments and range are not those of its heaps and a single other value (the "
                             "only segment holding heaps that fit leaves without knots)", None)
            if not enc.integer and not _grid_fits_one_value(enc, i):
                raise f.fail(f"{field}.segments[{i}].knots", "present: params.standardize is 'quantile' and the "
                             "variable's rounding grid gives the segment's values off its heaps more than one decimal "
                             "level or magnitude band (more than one value: the only segment holding heaps that fit "
                             "leaves without knots holds one)", None)
            if (not enc.integer and not _ends_off_heaps(seg, _heaps_transformed(enc, seg, k + i))
                    and _grid_of_segment(enc, i) is None):
                raise f.fail(f"{field}.segments[{i}].knots", "present: params.standardize is 'quantile', the segment "
                             f"holds heaps, and a file of format_version {version!r} records nothing that pins its "
                             "single value off them (no end of its range is that value, no rounding grid was fitted "
                             "on it): it cannot be told from a file whose knots were deleted. Fit the model again "
                             f"and save it (format_version {SINGLE_VALUE_VERSION} records the value)", None)
            continue
        tails = [t for t in (seg.tail_lo, seg.tail_hi) if t is not None]
        one_value = _one_value_std(seg) and all(abs(t - seg.mean) <= 1e-9 * max(1.0, abs(seg.mean)) for t in tails)
        if not one_value:
            raise f.fail(f"{field}.segments[{i}].knots", "present: params.standardize is 'quantile' and the segment "
                         "holds more than one value", None)


def _check_integer_range(f: _Fields, enc: ContinuousEncoder, ends: list[float], name: str) -> None:
    """An integer target's encoder holds values below :data:`._validation.INTEGER_LIMIT` (2**48) in magnitude: its
    point masses, heaps, the values its segments' bounds lie half a unit beyond and its training range's ends
    (``ends``). Fit models a target beyond it as continuous (or refuses it, declared ``kind="integer"``): float64
    cannot resolve the half units there. An integer segment's lower bound edited by 2**54 loaded and drew only
    multiples of 4 (by 2**60: draws up to 301 off the fitted draws shifted), the training minimum's
    log-density -1.2 where the fitted model gives -11.0."""
    values = [*enc.point_masses, *enc.heaps, *ends]
    for seg in enc.segments:
        values += [seg.sign * (b - side * 0.5) for b, side in ((seg.lower, -1), (seg.upper, 1)) if b is not None]
    beyond = [float(v) for v in values if not abs(v) < INTEGER_LIMIT]
    if beyond:
        raise f.fail(f"encoders.{name}", f"the encoder of an integer target ({name!r}) whose values stay below "
                     f"2**48 in magnitude, as fit writes it (fit models a target reaching {max(map(abs, beyond)):.6g} "
                     "as continuous: float64 cannot resolve its half units there)", beyond[:3])


def _check_decoding(f: _Fields, enc_dict: dict, name: str, dtype: str, private: bool = False,
                    standardize: Any = "moments", version: Any = SINGLE_VALUE_VERSION) -> None:
    """Checks a continuous encoder, built from its (structurally checked) fields, against what ``fit`` gives:

    * its target's dtype is numeric (not bool or complex) and holds its point masses, heaps and the ends of its
      training range (the values of its linear tails): an ``int8`` written over an ``int64`` clipped every draw
      to 127, ``bool`` or ``datetime64`` turned the draws into flags or dates;
    * every heap lies inside a continuous segment (a heap outside raised a raw IndexError), and a segment
      whose values all sit on heaps (``free: false``) holds one (its records would have no state to draw);
    * each quantile map's knots decode inside the segment's training range (with half a unit of dequantization
      for an integer), its moments lie inside the range of its transformed values, and its tail slopes are no
      flatter than its records beyond the end knots allow (a knot or a slope edited by a factor drew values
      thousands of times the training maximum, or int64's limit);
    * a non-DP segment's bounds are those fit writes (:func:`_check_bounds`), and, with
      ``standardize="quantile"``, it has knots (:func:`_check_knots_present`);
    * every segment decodes finite values at standardized values up to +-10;
    * an integer target's values stay below 2**48 in magnitude (:func:`_check_integer_range`).
    """
    field = f"encoders.{name}"
    try:
        np_dtype = pd.api.types.pandas_dtype(dtype)
    except (TypeError, ValueError):  # checked before: a pandas dtype name
        raise f.fail(f"dtypes.{name}", "a pandas dtype name", dtype) from None
    if (not pd.api.types.is_numeric_dtype(np_dtype) or pd.api.types.is_bool_dtype(np_dtype)
            or pd.api.types.is_complex_dtype(np_dtype)):
        raise f.fail(f"dtypes.{name}", "a real numeric dtype (int, uint or float) for a continuous or integer target",
                     dtype)
    numpy_dtype = np.dtype(getattr(np_dtype, "numpy_dtype", np_dtype))
    enc = ContinuousEncoder.from_dict(enc_dict)
    k = len(enc.point_masses)
    heaps = np.asarray(enc.heaps, dtype=float)
    if heaps.size and not bool(np.all(enc.states(heaps) >= k)):
        outside = [float(h) for h, s in zip(heaps, enc.states(heaps), strict=True) if s < k]
        raise f.fail(f"{field}.heaps", "values inside a continuous segment's bounds", outside)
    for i, seg in enumerate(enc.segments):  # a segment of heaps only holds one (its records draw nothing else)
        if not seg.free and k + i not in set(enc.heap_states):
            raise f.fail(f"{field}.segments[{i}].free", "false only on a segment that holds a heap", False)
        # its values are its heaps: added to a segment of other values too (its knots deleted), it loaded and drew
        # none of them
        if not seg.free and "segments" in enc_dict and not private and not _heaps_only(enc, seg, k + i):
            raise f.fail(f"{field}.segments[{i}].free", "false only on a segment whose values all sit on its heaps: "
                         "its recorded ends and moments those of its heaps, and no rounding grid fitted on its values "
                         "(as fit writes it)", False)
    if not private and "segments" in enc_dict:  # a DP segment spans its public bounds; a legacy file is as it was
        _check_bounds(f, enc, field)
        if standardize == "quantile":
            _check_knots_present(f, enc, field, version)
    ends: list[float] = []  # the training range's ends, in the target's values
    for i, seg in enumerate(enc.segments):
        where = f"{field}.segments[{i}]" if "segments" in enc_dict else field
        margin = 0.5 if enc.integer else 0.0
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            bounds = {side: float(seg._core_inverse(np.float64(t))) for side, t in ((-1, seg.tail_lo), (1, seg.tail_hi))
                      if t is not None}
            ends += [seg.sign * b for b in bounds.values()]
            if not all(np.isfinite(b) for b in bounds.values()):
                raise f.fail(f"{where}", "tails whose ends decode to finite values", [seg.tail_lo, seg.tail_hi])
            if seg.knots is not None:
                kt, kz, slopes = seg.knots
                y = seg._inverse(kt)
                for side, b in bounds.items():
                    tol = 1e-9 * max(1.0, abs(b)) + margin
                    if not bool(np.all(side * (y - b) <= tol)):
                        raise f.fail(f"{where}.knots.t", f"knots inside the segment's training range (its "
                                     f"{'lower' if side < 0 else 'upper'} end {seg.sign * b:g})", [float(v) for v in y[:3]])
                    end, inner = (0, 1) if side < 0 else (-1, -2)
                    # the records beyond the end knot lie at most at the training end (plus dequantization)
                    excess = float(side * (seg._forward(np.float64(b + side * margin)) - kt[end]))
                    flattest = min(qmap.normal_excess(abs(float(kz[end]))) / excess if excess > 0 else np.inf,
                                   float((kz[inner] - kz[end]) / (kt[inner] - kt[end])))
                    slope = float(slopes[0 if side < 0 else 1])
                    if not slope >= flattest * (1 - 1e-6):
                        raise f.fail(f"{where}.knots.slopes", f"tail slopes no flatter than the records beyond the end "
                                     f"knots allow ({'lower' if side < 0 else 'upper'} at least {flattest:.6g})", slope)
            elif len(bounds) == 2:
                lo, hi = seg.tail_lo, seg.tail_hi
                tol = 1e-9 * max(1.0, abs(lo), abs(hi))
                if not lo - tol <= seg.mean <= hi + tol:
                    raise f.fail(f"{where}.mean", f"a mean inside the transformed range [{lo:g}, {hi:g}]", seg.mean)
                if not seg.std <= max(hi - lo, 1.0) + tol:
                    raise f.fail(f"{where}.std", f"a standard deviation at most the transformed range {hi - lo:g}",
                                 seg.std)
            elif 1 in bounds and seg.mean > seg.tail_hi + 1e-9 * max(1.0, abs(seg.tail_hi)):
                raise f.fail(f"{where}.mean", f"a mean at most the transformed maximum {seg.tail_hi:g}", seg.mean)
            decoded = seg.decode(DECODE_PROBE)
        if not bool(np.all(np.isfinite(decoded))):
            raise f.fail(f"{where}", "a segment that decodes finite values at standardized values up to +-10",
                         [float(v) for v in decoded])
    # values the dtype must hold: the point masses and heaps exactly, the training range's ends (coordinates
    # of a compact integer sit up to one per heap away from its values)
    if numpy_dtype.kind in "iuf" and (numpy_dtype.kind != "f" or numpy_dtype.itemsize < 8):
        info = np.iinfo(numpy_dtype) if numpy_dtype.kind in "iu" else np.finfo(numpy_dtype)
        lo, hi = float(info.min), float(info.max)
        exact = ([float(v) for v in enc.point_masses] + [float(h) for h in enc.heaps]
                 + [seg.sign * seg.single_value for seg in enc.segments if seg.single_value is not None])
        bad = [v for v in exact if not (lo <= v <= hi and (numpy_dtype.kind == "f" or float(v).is_integer()))]
        slack = len(enc.heaps) + 1.0
        bad += [v for v in ends if not lo - slack <= v <= hi + slack]
        if bad:
            raise f.fail(f"dtypes.{name}", f"a dtype that holds the target's point masses, heaps and training "
                         f"range (dtype {dtype!r} holds [{lo:g}, {hi:g}])", bad[:3])
    if enc.integer:
        _check_integer_range(f, enc, ends, name)


def check_patterns(patterns: Any, sizes: list[int], label: str) -> np.ndarray:
    """The pattern table as an int64 array (P, M), checked against the discrete variables' state counts."""
    f = _Fields(label)
    rows = f.array(patterns, "patterns", 2**20)
    ok = bool(rows) and all(
        isinstance(r, list) and len(r) == len(sizes) and all(type(v) is int and 0 <= v < s for v, s in zip(r, sizes))
        for r in rows
    )
    if not ok:
        raise f.fail("patterns", f"a non-empty list of rows of {len(sizes)} state indices below {sizes}", rows[:3])
    table = np.asarray(rows, dtype=np.int64).reshape(len(rows), len(sizes))
    if len(np.unique(table, axis=0)) != len(table):
        raise f.fail("patterns", "distinct rows", "duplicated rows")
    return table


def check_tensors(tensors: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], label: str) -> None:
    """Checks tensor names, dtypes and shapes against the model built from the metadata, that
    every floating tensor is finite (but the structural zeros' ``rule_bounds``, checked with the
    rules), and that the buffers derived from the metadata (the pattern tables, the flow's ``*.mask``)
    agree."""
    missing, extra = sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))
    if missing or extra:
        raise DataValidationError(
            f"{label} is not a valid Synthesizer model file: weights.safetensors lacks tensors {missing[:5]} "
            f"and has unexpected tensors {extra[:5]} for the architecture its metadata declares."
        )
    for name, ref in expected.items():
        t = tensors[name]
        if t.dtype != ref.dtype or tuple(t.shape) != tuple(ref.shape):
            raise DataValidationError(
                f"{label} is not a valid Synthesizer model file: tensor {name!r} has dtype {t.dtype} and shape "
                f"{tuple(t.shape)}; the architecture its metadata declares needs {ref.dtype} {tuple(ref.shape)}."
            )
        # a structural zero's tail is open on one side (inf): checked with the rules (._structure.check_rules)
        if t.is_floating_point() and name != "rule_bounds" and not torch.isfinite(t).all():
            raise DataValidationError(f"{label} is not a valid Synthesizer model file: tensor {name!r} has non-finite values.")
        # the flow's masks are built from the architecture: all ones broke the autoregressive order (a raw
        # RuntimeError when drawing), all zeros cut the flow off from the conditions and coordinates (silently)
        if (name in ("patterns", "active", "pattern_features") or name.endswith(".mask")) and not torch.equal(t, ref):
            raise DataValidationError(
                f"{label} is not a valid Synthesizer model file: tensor {name!r} disagrees with the metadata."
            )


def check_conditions_table(table: pd.DataFrame, conditions: list[str], kinds: dict[str, str],
                           stats: dict[str, Any], label: str, missing: Sequence[str] = ()) -> None:
    """Checks the training conditions and weights stored in ``conditions.parquet``."""
    where = f"{label} is not a valid Synthesizer model file: conditions.parquet"
    columns = list(table.columns)
    if columns != conditions + ["__weight__"]:
        raise DataValidationError(f"{where} must have columns {conditions + ['__weight__']}. Got {columns[:20]} instead.")
    if len(table) == 0:
        raise DataValidationError(f"{where} has no rows.")
    w = table["__weight__"]
    if not pd.api.types.is_float_dtype(w.dtype):
        raise DataValidationError(f"{where}: column '__weight__' must hold floats. Got dtype {w.dtype} instead.")
    check_weights(w.to_numpy(float), len(w), f"{where}: column '__weight__'")
    for name in conditions:
        try:
            check_column(table[name], name, "condition", missing=name in missing)
        except DataValidationError as exc:
            raise DataValidationError(f"{where}: {exc}") from None
        if kinds[name] == "categorical":
            if unseen_categories(table[name].dropna(), stats[name]):
                raise DataValidationError(f"{where}: column {name!r} holds categories its encoder does not know.")
        elif not pd.api.types.is_numeric_dtype(table[name].dtype):
            raise DataValidationError(f"{where}: column {name!r} must be numeric. Got {table[name].dtype} instead.")


def check_condition_moments(table: pd.DataFrame, weights: np.ndarray, kinds: dict[str, str],
                            stats: dict[str, Any], label: str) -> None:
    """A numeric condition's stored mean and sd are the weighted moments of the stored training conditions
    ``table`` (``fit`` computes them from exactly those rows, up to records of weight 0): edited, they loaded
    and an sd of 1e-12 drew incomes from -2.6e17 to int64's limit."""
    for name in table.columns:
        if kinds[name] == "categorical":
            continue
        mean, std = condition_moments(table[name], weights)
        got = [float(v) for v in stats[name]]
        if not (np.isclose(got[0], mean, rtol=1e-9, atol=1e-9 * std) and np.isclose(got[1], std, rtol=1e-9)):
            raise DataValidationError(
                f"{label} is not a valid Synthesizer model file: field 'condition_encoder.stats.{name}' must be the "
                f"weighted mean and standard deviation of the stored training conditions ({mean:.10g}, {std:.10g}). "
                f"Got {got} instead.")
