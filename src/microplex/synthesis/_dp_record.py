"""The audit trail of a differentially private Synthesizer: ``privacy_``, and its check on load and save.

``privacy_`` records every noisy release of a fit (:mod:`._dp`) and the epsilon their composition
spends; a model file's record is untrusted and re-verified against the accountant
(:mod:`._accountant`) when loaded, and against the structure of the file's model
(:func:`check_record`: the mechanisms that model's fit releases, the condition model's own record,
no training loss). :meth:`Synthesizer.save` runs the same check before writing anything, so it
never writes a file that :meth:`Synthesizer.load` refuses.

The check cannot tell a record that was re-created whole: a file whose mechanisms were all given
larger noise multipliers, with every epsilon recomputed and the requested ``epsilon`` lowered to
match, is consistent in every field the loader can see. Only a signature over the file, which
microplex does not write, would show that.
"""

from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING, Any

import numpy as np

from .._errors import DataValidationError
from ._accountant import MAX_NOISE_MULTIPLIER, MAX_RELEASE_NOISE_MULTIPLIER, MIN_MECHANISM_DELTA, epsilon_spent
from ._conditions import KEY as CONDITION_MODEL_KEY
from ._dp import NESTED_PREFIX as NESTED
from ._dp import nested_mechanisms
from ._dp_plan import record_parts
from ._dp_tree import KEY as TREE_KEY
from ._dp_tree import PARTS as TREE_PARTS

if TYPE_CHECKING:
    from .synthesizer import Synthesizer

__all__ = ["check_privacy", "check_record", "privacy_record"]


def privacy_record(dp: dict[str, Any], mechanisms: list[dict]) -> dict[str, Any]:
    """``privacy_``: the epsilon spent at ``delta`` by the composition of ``mechanisms``: the
    smallest of three valid bounds (their deltas sum to at most ``delta``): the RDP composition of
    all, the sum over the main and the condition model of each one's RDP composition at its deltas,
    and the sum of the mechanisms' own epsilons."""
    delta = dp["delta"]
    groups: dict[bool, list[dict]] = {}
    for m in mechanisms:  # the main model's mechanisms and the condition model's
        groups.setdefault(m["part"].startswith(NESTED), []).append(m)
    by_group = sum(epsilon_spent(g, sum(m["delta"] for m in g)) for g in groups.values())
    spent = min(epsilon_spent(mechanisms, delta), by_group, sum(m["epsilon"] for m in mechanisms))
    return {"epsilon": spent, "delta": delta, "epsilon_requested": dp["epsilon"], "accountant": "rdp",
            "neighbouring": "add or remove one record", "max_grad_norm": dp["max_grad_norm"],
            "mechanisms": mechanisms}


def _releases(part: str, rate: float, epochs: int, targets: int) -> tuple[float, int]:
    """The sampling rate and steps a fit records for its mechanism ``part`` (:func:`._dp_plan.record_parts`):
    one query at rate 1 for the statistics and a tree's tables, one draw per edge (``targets - 1``; a tree's
    targets are the conditions) for its selection, and for DP-SGD ``epochs`` times the steps of an epoch at
    its ``rate`` (``ceil(n / batch_size)`` with ``rate = batch_size / n``, 1 at rate 1;
    :func:`._dp_training.dp_steps`). A record whose steps or rate differ claims another fit's epsilon."""
    if part == "training":
        per_epoch = max(1, math.ceil((1.0 / rate) * (1.0 - 1e-9)))  # 1 / rate rounds just above an integer n / batch
        return rate, epochs * per_epoch
    return 1.0, targets - 1 if part == TREE_PARTS[0] else 1


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
    own_parts = tuple(dict.fromkeys(record_parts(False) + record_parts(True)))
    for i, m in enumerate(mechs):
        if not isinstance(m, dict) or set(m) != set(_MECHANISM_KEYS):
            raise fail(f"mechanisms[{i}]", f"an object with keys {list(_MECHANISM_KEYS)}", m)
        if m["part"] not in own_parts + tuple(NESTED + k for k in own_parts):
            raise fail(f"mechanisms[{i}].part", f"one of {own_parts}, optionally prefixed {NESTED!r}", m["part"])
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
        num(m["delta"], f"mechanisms[{i}].delta", MIN_MECHANISM_DELTA, 1.0)
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


def check_record(synth: Synthesizer, value: Any, label: str) -> dict[str, Any]:
    """``value``, the ``privacy_`` of the fitted or restored DP ``synth``, checked as a model file's
    record: its fields and epsilon (:func:`check_privacy`, at the fitted ``epsilon`` and
    ``delta``), and its agreement with the structure of ``synth``:

    * its mechanisms are those ``synth``'s fit releases, in order (:func:`._dp_plan.record_parts`):
      the statistics, then DP-SGD's training or, for a condition model fitted as a tree (it holds
      ``condition_tree_``), the tree's selection and tables; then, with a condition model, that
      model's own entries prefixed ``conditions.``, equal to them in every field. The condition
      model must be a DP one (its own record, checked when it was restored) whose requested
      epsilon and delta are at most ``synth``'s (a share of its budget). A record that drops a
      mechanism, or lists a condition model's that the file does not hold, is refused;
    * each of its own mechanisms has the sampling rate and steps of the fit (:func:`_releases`): one
      query for the statistics and a tree's tables, one selection draw per tree edge, and DP-SGD's
      steps per epoch at its rate times the epochs in ``history_`` (a record with fewer steps, or a
      lower rate for the same steps, claims less epsilon than the fit spent);
    * its ``max_grad_norm`` is the training mechanism's sensitivity (the parameter's value when
      set), and ``None`` without DP-SGD;
    * ``history_`` holds no loss: a DP fit trains on every record, without a validation split, and
      records the epochs only (the losses would read the data without noise).

    The loader (:func:`._state.restore_state`) and :func:`._state.export_state` (:meth:`save`) run
    it, so a record that :meth:`load` refuses is never written. Raises a DataValidationError naming
    ``label`` and the field."""
    def fail(field: str, expected: str, got: Any) -> DataValidationError:
        return DataValidationError(f"{label} is not a valid Synthesizer model file: field {field!r} must be "
                                   f"{expected}. Got {repr(got)[:77]} instead.")

    params = synth.fitted_params_
    value = check_privacy(value, label, float(params["epsilon"]), float(params["delta"]))
    mechs = value["mechanisms"]
    own = record_parts(hasattr(synth, "condition_tree_"))
    sub = getattr(synth, "condition_model_", None)
    if sub is not None:
        if not hasattr(sub, "privacy_"):
            raise fail(f"{CONDITION_MODEL_KEY}.privacy", "the condition model's own privacy record: the conditions "
                       "of a DP model are drawn from a condition model fitted with differential privacy on its "
                       "'conditions' share", None)
        check_record(sub, sub.privacy_, f"{label} (condition model)")  # on load, again: restoring it checked it
    nested = nested_mechanisms(synth)
    expected = list(own) + [m["part"] for m in nested]
    parts = [m["part"] for m in mechs]
    if parts != expected:
        holds = " and ".join(f"{'a' if has else 'no'} {key!r}" for key, has in (
            (TREE_KEY, hasattr(synth, "condition_tree_")), (CONDITION_MODEL_KEY, sub is not None)))
        raise fail("privacy.mechanisms", f"the mechanisms of this model's fit, parts {expected} (the file's model "
                   f"holds {holds})", parts)
    for i, m in enumerate(nested, start=len(own)):
        if mechs[i] != m:
            raise fail(f"privacy.mechanisms[{i}]", "the condition model's own entry (its privacy.mechanisms"
                       f"[{i - len(own)}], prefixed {NESTED!r})", mechs[i])
    for i, m in enumerate(mechs[:len(own)]):
        rate, steps = _releases(m["part"], m["sampling_rate"], len(synth.history_), len(synth.target_vars))
        if (m["sampling_rate"], m["steps"]) != (rate, steps):
            raise fail(f"privacy.mechanisms[{i}].steps", f"{steps} at sampling rate {rate!r}: the releases of this "
                       f"model's fit (part {m['part']!r})", [m["steps"], m["sampling_rate"]])
    if sub is not None:
        sub_record = sub.privacy_
        if (sub_record["epsilon_requested"] > value["epsilon_requested"] * (1 + 1e-9)
                or sub_record["delta"] > value["delta"]):
            raise fail(f"{CONDITION_MODEL_KEY}.privacy.epsilon_requested",
                       f"a share of this model's budget: epsilon at most {value['epsilon_requested']!r} and delta at "
                       f"most {value['delta']!r}", [sub_record["epsilon_requested"], sub_record["delta"]])
    training = [m for m in mechs[:len(own)] if m["part"] == "training"]
    clip = training[0]["sensitivity"] if training else None
    set_clip = params["max_grad_norm"]
    if value["max_grad_norm"] != clip or (training and set_clip is not None and float(set_clip) != clip):
        raise fail("privacy.max_grad_norm", "the clipping norm of its training mechanism (that mechanism's "
                   "sensitivity, and the parameter 'max_grad_norm' when set)" if training else
                   "null: this model has no DP-SGD", value["max_grad_norm"])
    losses = synth.history_.reindex(columns=["train_loss", "val_loss"]).to_numpy(float)
    if not np.isnan(losses).all():
        raise fail("history", "without losses: a DP fit trains on every record, without a validation split, and "
                   "records no loss (it would read the data without noise)",
                   [v for v in losses.ravel() if not np.isnan(v)][:3])
    return value
