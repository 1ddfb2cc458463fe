"""The audit trail of a differentially private Synthesizer: ``privacy_``, and its check on load.

``privacy_`` records every noisy release of a fit (:mod:`._dp`) and the epsilon their composition
spends; a model file's record is untrusted and re-verified against the accountant
(:mod:`._accountant`) when loaded.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from .._errors import DataValidationError
from ._accountant import MAX_NOISE_MULTIPLIER, MAX_RELEASE_NOISE_MULTIPLIER, epsilon_spent
from ._dp import PARTS
from ._dp_tree import PARTS as TREE_PARTS

__all__ = ["check_privacy", "privacy_record"]


def privacy_record(dp: dict[str, Any], mechanisms: list[dict]) -> dict[str, Any]:
    """``privacy_``: the epsilon spent at ``delta`` by the composition of ``mechanisms``: the
    smallest of three valid bounds (their deltas sum to at most ``delta``): the RDP composition of
    all, the sum over the main and the condition model of each one's RDP composition at its deltas,
    and the sum of the mechanisms' own epsilons."""
    delta = dp["delta"]
    groups: dict[bool, list[dict]] = {}
    for m in mechanisms:  # the main model's mechanisms and the condition model's
        groups.setdefault(m["part"].startswith("conditions."), []).append(m)
    by_group = sum(epsilon_spent(g, sum(m["delta"] for m in g)) for g in groups.values())
    spent = min(epsilon_spent(mechanisms, delta), by_group, sum(m["epsilon"] for m in mechanisms))
    return {"epsilon": spent, "delta": delta, "epsilon_requested": dp["epsilon"], "accountant": "rdp",
            "neighbouring": "add or remove one record", "max_grad_norm": dp["max_grad_norm"],
            "mechanisms": mechanisms}


_MECHANISM_KEYS = ("part", "mechanism", "noise_multiplier", "sampling_rate", "steps", "sensitivity", "epsilon",
                   "delta")


def check_privacy(value: Any, label: str, epsilon: float, delta: float) -> dict[str, Any]:
    """``privacy_`` read from a model file (untrusted): its fields, types and ranges, and that its
    epsilon is what its mechanisms spend and at most the requested ``epsilon`` at ``delta``."""
    def fail(field: str, expected: str, got: Any) -> DataValidationError:
        return DataValidationError(f"{label} is not a valid Synthesizer model file: field 'privacy.{field}' must be "
                                   f"{expected}. Got {repr(got)[:77]} instead.")

    def num(v: Any, field: str, low: float, high: float = math.inf) -> float:
        if not isinstance(v, numbers.Real) or isinstance(v, bool) or not math.isfinite(v) or not low <= v <= high:
            raise fail(field, f"a finite number in [{low:g}, {high:g}]", v)
        return float(v)

    keys = ("epsilon", "delta", "epsilon_requested", "accountant", "neighbouring", "max_grad_norm", "mechanisms")
    if not isinstance(value, dict) or set(value) != set(keys):
        raise fail("*", f"an object with keys {list(keys)}", sorted(value) if isinstance(value, dict) else value)
    mechs = value["mechanisms"]
    if not isinstance(mechs, list) or not 1 <= len(mechs) <= 8:
        raise fail("mechanisms", "a list of 1 to 8 mechanisms", mechs)
    own_parts = PARTS[:2] + TREE_PARTS
    for i, m in enumerate(mechs):
        if not isinstance(m, dict) or set(m) != set(_MECHANISM_KEYS):
            raise fail(f"mechanisms[{i}]", f"an object with keys {list(_MECHANISM_KEYS)}", m)
        if m["part"] not in own_parts + ("conditions",) + tuple(f"conditions.{k}" for k in own_parts):
            raise fail(f"mechanisms[{i}].part", f"one of {own_parts}, optionally prefixed 'conditions.'", m["part"])
        kind = ("exponential" if m["part"].endswith(TREE_PARTS[0]) and m["sampling_rate"] == 1 else
                "gaussian" if m["sampling_rate"] == 1 else "subsampled_gaussian")
        if m["mechanism"] != kind:  # the exponential mechanism is recorded by its RDP's Gaussian multiplier
            raise fail(f"mechanisms[{i}].mechanism", f"{kind!r} (part {m['part']!r}, rate {m['sampling_rate']!r})",
                       m["mechanism"])
        cap = MAX_NOISE_MULTIPLIER if m["part"].endswith("training") else MAX_RELEASE_NOISE_MULTIPLIER  # one query
        num(m["noise_multiplier"], f"mechanisms[{i}].noise_multiplier", 1e-3, cap)
        num(m["sampling_rate"], f"mechanisms[{i}].sampling_rate", 1e-9, 1.0)
        if type(m["steps"]) is not int or not 1 <= m["steps"] <= 10**8:
            raise fail(f"mechanisms[{i}].steps", "an int in [1, 1e8]", m["steps"])
        num(m["sensitivity"], f"mechanisms[{i}].sensitivity", 0.0)
        num(m["delta"], f"mechanisms[{i}].delta", 1e-300, 1.0)
        own = epsilon_spent([m], m["delta"])
        if not math.isclose(num(m["epsilon"], f"mechanisms[{i}].epsilon", 0.0), own, rel_tol=1e-9, abs_tol=1e-12):
            raise fail(f"mechanisms[{i}].epsilon", f"the epsilon of its noise, rate and steps ({own:.6g})", m["epsilon"])
    if value["epsilon_requested"] != epsilon or value["delta"] != delta:
        raise fail("epsilon_requested", f"the parameters' epsilon {epsilon!r} and delta {delta!r}",
                   [value["epsilon_requested"], value["delta"]])
    if value["accountant"] != "rdp" or value["neighbouring"] != "add or remove one record":
        raise fail("accountant", "'rdp' with neighbouring 'add or remove one record'",
                   [value["accountant"], value["neighbouring"]])
    if value["max_grad_norm"] is not None or any(m["part"].endswith("training") for m in mechs):
        num(value["max_grad_norm"], "max_grad_norm", 0.0)  # None only without DP-SGD (a condition tree)
    spent = num(value["epsilon"], "epsilon", 0.0)
    again = privacy_record({"epsilon": epsilon, "delta": delta, "max_grad_norm": value["max_grad_norm"]}, mechs)
    if not math.isclose(spent, again["epsilon"], rel_tol=1e-9, abs_tol=1e-12) or spent > epsilon * (1 + 1e-9):
        raise fail("epsilon", f"the epsilon its mechanisms spend ({again['epsilon']:.6g}), at most {epsilon!r}", spent)
    if sum(m["delta"] for m in mechs) > delta * (1 + 1e-9):
        raise fail("mechanisms", f"mechanisms whose deltas sum to at most {delta!r}", [m["delta"] for m in mechs])
    return value
