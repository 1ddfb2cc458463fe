"""The privacy budget of a DP Synthesizer: its DP-SGD settings and the noise of every mechanism.

``Synthesizer(epsilon=..., delta=...)`` releases, through Gaussian mechanisms, a histogram of the
targets (``"statistics"``), DP-SGD's noisy gradient sums (``"training"``) and, with
``condition_model=True``, the same two for the condition model (``"conditions"``). :func:`plan`
gives each its noise multiplier: every part is first calibrated to its share of the budget
(``budget_split``), then the shares are scaled up together, by the largest factor for which the
RDP composition of *all* mechanisms (the main model's and the condition model's) spends at most
the requested epsilon at delta. Calibrating each model on its own would leave about a quarter of
the budget unspent (composing in RDP is tighter than adding the models' epsilons).

DP-SGD settings left at ``None``/``"auto"`` (:func:`dp_training_settings`): :data:`DP_EPOCHS`
epochs, a batch of about an eighth of the records (a power of two, at least
:data:`DP_MIN_BATCH`), learning rate :data:`DP_LEARNING_RATE` and a clipping norm set by the
training's noise multiplier (:func:`auto_max_grad_norm`). Large batches and few epochs suit
DP-SGD: the noise added to a step's gradient sum is the same whatever the batch, so a larger
batch averages it down, and each extra step costs budget.
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any

from .._errors import DataValidationError, PrivacyWarning
from ._accountant import MAX_NOISE_MULTIPLIER, MAX_RELEASE_NOISE_MULTIPLIER, epsilon_spent, solve_noise_multiplier
from ._checks import uses_condition_model
from ._dp import _check_split
from ._dp_tree import PARTS as TREE_PARTS

if TYPE_CHECKING:
    from .synthesizer import Synthesizer

__all__ = ["DP_EPOCHS", "DP_GRAD_NOISE", "DP_HEAD_LR_SCALE", "DP_HEAD_WIDTH", "DP_LEARNING_RATE", "DP_MIN_BATCH",
           "DP_NORM_RANGE", "auto_max_grad_norm", "head_features",
           "condition_params", "dp_batch_size", "dp_training_settings", "mechanism", "plan", "record_parts",
           "solve_sigma", "warn_large_delta"]

#: Epochs of ``epochs="auto"`` with ``epsilon`` set.
DP_EPOCHS = 20
#: Adam learning rate of ``learning_rate=None`` with ``epsilon`` set.
DP_LEARNING_RATE = 3e-2
#: The pattern head's learning rate in DP-SGD, as a share of the learning rate (the flow's).
DP_HEAD_LR_SCALE = 2 / 3
#: Widest hidden layer of the pattern head with ``epsilon`` set (:func:`head_features`).
DP_HEAD_WIDTH = 32
#: Smallest batch of ``batch_size=None`` with ``epsilon`` set (a batch is about n / 8 records).
DP_MIN_BATCH = 256
#: ``max_grad_norm=None``: the clipping norm that gives this noise standard deviation on a step's
#: gradient sum, within :data:`DP_NORM_RANGE` (:func:`auto_max_grad_norm`).
DP_GRAD_NOISE = 30.0
DP_NORM_RANGE = (5.0, 15.0)
_BATCH_FRACTION = 1 / 8


def dp_batch_size(n: int) -> int:
    """The DP-SGD batch of ``batch_size=None`` for ``n`` records: the power of two nearest ``n / 8``,
    at least :data:`DP_MIN_BATCH` and at most ``n``.

    Examples
    --------
    >>> dp_batch_size(12_000), dp_batch_size(1_000), dp_batch_size(100), dp_batch_size(1_000_000)
    (2048, 256, 100, 131072)
    """
    return int(min(n, max(DP_MIN_BATCH, 2 ** round(math.log2(max(n * _BATCH_FRACTION, 1.0))))))


def head_features(hidden: tuple[int, ...]) -> tuple[int, ...]:
    """The pattern head's hidden layers in a DP fit: ``hidden`` with each layer at most
    :data:`DP_HEAD_WIDTH` wide. DP-SGD adds independent noise to every weight of the head's
    output layer, so the noise on a pattern's logit grows with the width of the layer beneath it;
    a rare joint pattern's share, an average of ``exp(logit)`` over the conditions, grows with
    that noise's variance (on eusilc, 4 targets and a 64-wide head: both self-employment and
    unemployment income 1.4% of the release against 0.5% of the records, session 30). A
    distribution over a few dozen patterns given a few conditions needs no wider layer.

    Examples
    --------
    >>> head_features((64, 64)), head_features((16, 48))
    ((32, 32), (16, 32))
    """
    return tuple(min(int(h), DP_HEAD_WIDTH) for h in hidden)


def dp_training_settings(synth: Synthesizer, n: int, epochs: int | str) -> dict[str, Any]:
    """``epochs``, ``batch_size`` and ``learning_rate`` of DP-SGD on ``n`` records: the given
    values, or for ``"auto"``/``None`` :data:`DP_EPOCHS`, :func:`dp_batch_size` and
    :data:`DP_LEARNING_RATE`."""
    return {"epochs": DP_EPOCHS if epochs == "auto" else int(epochs),
            "batch_size": dp_batch_size(n) if synth.batch_size is None else int(synth.batch_size),
            "learning_rate": DP_LEARNING_RATE if synth.learning_rate is None else float(synth.learning_rate)}


def solve_sigma(epsilon: float, delta: float, q: float, steps: int, what: str,
                cap: float = MAX_NOISE_MULTIPLIER) -> float:
    """The noise multiplier spending at most (epsilon, delta); raises when it exceeds ``cap``."""
    sigma = solve_noise_multiplier(epsilon, delta, q, steps, cap)
    if not math.isfinite(sigma):
        raise _too_small(epsilon, delta, q, steps, what, cap)
    return sigma


def _too_small(epsilon: float, delta: float, q: float, steps: int, what: str, cap: float) -> DataValidationError:
    # One query (the statistics, a condition tree's tables; q = 1, one step) costs the same whatever the epochs
    # and batches: advising those (as for DP-SGD) sent a user to change settings that cannot help.
    fix = ("raise 'epsilon' or this part's share in 'budget_split'" if q >= 1 and steps == 1 else
           "raise 'epsilon', lower 'epochs' or raise 'batch_size'")
    return DataValidationError(
        f"The 'epsilon' budget is too small for {what}: its share ({epsilon:.3g}, delta {delta:.3g}) needs a noise "
        f"multiplier above {cap:g} ({steps} steps at sampling rate {q:.3g}); {fix}.")


def record_parts(tree: bool) -> tuple[str, ...]:
    """The parts of one model's entries of ``privacy_["mechanisms"]``, in the order a fit records
    them: the statistics release, then DP-SGD's ``"training"`` or, for a condition model fitted as
    a tree (``tree``; :mod:`._dp_tree`), the tree's selection and tables (:func:`plan` gives the
    tree one part, which :func:`._dp_tree.tree_mechanisms` divides). A model with a condition
    model follows them with the condition model's own entries, prefixed ``conditions.``
    (:func:`._dp.nested_mechanisms`). The fit builds its record in this order and the model file's
    check (:func:`._dp_record.check_record`) holds a file's record to it.

    Examples
    --------
    >>> record_parts(False), record_parts(True)
    (('statistics', 'training'), ('statistics', 'tree_selection', 'tree_tables'))
    """
    return ("statistics",) + (TREE_PARTS if tree else ("training",))


def mechanism(part: str, sigma: float, q: float, steps: int, sensitivity: float, delta: float) -> dict:
    """One entry of ``privacy_["mechanisms"]``: its own epsilon at its own delta."""
    spent = epsilon_spent([{"sampling_rate": q, "noise_multiplier": sigma, "steps": steps}], delta)
    return {"part": part, "mechanism": "gaussian" if q >= 1 else "subsampled_gaussian", "noise_multiplier": sigma,
            "sampling_rate": q, "steps": steps, "sensitivity": sensitivity, "epsilon": spent, "delta": delta}


def plan(synth: Synthesizer, dp: dict[str, Any], n: int) -> dict[str, Any]:
    """The mechanisms (noise multipliers) of the statistics and of DP-SGD of ``synth`` on ``n``
    records (``dp`` holds the resolved ``epochs`` and ``batch_size``), by part, and ``"scale"``:
    the factor of the budget shares that :func:`condition_params` gives the condition model.

    Without a condition model the scale is 1 (the parts are composed jointly in :func:`_plan_one`).
    With one, the main model's and the condition model's epsilons are ``scale`` times their
    shares, ``scale`` the largest (to a relative 1e-3) at which the RDP composition of all their
    mechanisms spends at most ``epsilon`` at ``delta``. Raises, before anything is fitted, when a
    share is too small at that scale (for either model)."""
    from ._dp_tree import applies

    if not hasattr(synth, "_condition_tree"):  # a condition model's delta is a share of its parent's, which warned
        warn_large_delta(dp["delta"], n)
    tree = getattr(synth, "_condition_tree", False)  # a condition model of two or more conditions: a tree
    with_conditions = uses_condition_model(synth)
    main = _plan_one(dp, list(synth.target_vars), n, "", check=not with_conditions, tree=tree)
    if not with_conditions:
        return {**main, "scale": 1.0}
    conditions = list(synth.condition_vars)
    sub_tree = applies(len(conditions))

    def both(scale: float, check: bool = False) -> tuple[dict[str, dict], float]:
        own = _plan_one(dict(dp, epsilon=dp["epsilon"] * scale), list(synth.target_vars), n, "", check)
        sub = condition_params(synth, conditions, None, scale)
        sub_dp = dict(dp, epsilon=sub["epsilon"], delta=sub["delta"], split=sub["budget_split"])
        mechs = list(own.values()) + list(_plan_one(sub_dp, conditions, n, " of the condition model", check,
                                                    tree=sub_tree).values())
        return own, epsilon_spent(mechs, dp["delta"])

    _, spent = both(1.0)
    lo, hi = 1.0, 1.0 / max(dp["split"]["conditions"], 1.0 - dp["split"]["conditions"])
    if spent <= dp["epsilon"]:
        while hi / lo > 1 + 1e-3:  # invariant: the composition at lo spends at most epsilon
            mid = math.sqrt(lo * hi)
            lo, hi = (mid, hi) if both(mid)[1] <= dp["epsilon"] else (lo, mid)
    main, _ = both(lo, check=True)  # the caps checked at the final scale (the condition model plans the same)
    return {**main, "scale": lo}


def warn_large_delta(delta: float, n: int) -> None:
    """Warns (:class:`~microplex.PrivacyWarning`) when ``delta`` is not below ``1 / n`` for ``n``
    records (public): (epsilon, delta)-DP then admits a mechanism that publishes a record in the clear
    with probability ``delta``, so about ``delta * n`` records of a release could be exposed, and the
    guarantee says little. The usual choice is well below ``1 / n``."""
    if delta * n >= 1.0:
        warnings.warn(
            f"The 'delta' parameter ({delta:g}) is not below 1 / n = {1.0 / n:.3g} for the {n} records: "
            "(epsilon, delta)-DP then allows publishing a record in the clear with probability delta, so the "
            "guarantee says little. Choose delta well below 1 / n (1e-5 or less is usual).",
            PrivacyWarning, stacklevel=5)


def _plan_one(dp: dict[str, Any], targets: list[str], n: int, whose: str, check: bool = True,
              tree: bool = False) -> dict[str, dict]:
    """Each part calibrated to its share of (epsilon, delta), then every noise multiplier scaled by
    one factor (at most 1) so that their RDP composition spends the parts' total share: composing
    in RDP is tighter than adding the parts' epsilons.

    With ``tree`` (a condition model of two or more conditions, :mod:`._dp_tree`) the
    ``"training"`` share goes to the part ``"tree"`` instead of DP-SGD: one Gaussian query's
    multiplier, which :func:`._dp_tree.tree_mechanisms` divides between the tree's selection and
    its tables (the same RDP).

    With ``check``, raises when DP-SGD's final noise multiplier exceeds
    :data:`~._accountant.MAX_NOISE_MULTIPLIER` (its noise would swamp any gradient). The statistics
    are one query, whose noise is set against the number of records, not against a gradient: their
    multiplier may reach :data:`~._accountant.MAX_RELEASE_NOISE_MULTIPLIER` (a small budget then
    gives noisy histograms, which the release's post-processing treats as such)."""
    from ._dp_training import dp_steps

    split, epochs, batch = dict(dp["split"]), dp["epochs"], dp["batch_size"]
    q, _, steps = dp_steps(n, batch, epochs)
    if tree:
        split["tree"] = split.pop("training")
        specs = {"tree": (1.0, 1, 1.0, f"the tables of the condition tree{whose}")}
    else:
        specs = {"training": (q, steps, dp["max_grad_norm"],  # None: set below from the noise multiplier
                              f"DP-SGD training{whose} ({epochs} epochs, batch_size {batch})")}
    # a cell of each target's histogram per record, and with weights the total weight's cell (see _dp.histogram_rows)
    specs["statistics"] = (1.0, 1, math.sqrt(len(targets) + bool(dp.get("weighted"))), f"the statistics{whose}")
    eps, delta = dp["epsilon"], dp["delta"]
    # Each part alone first (only the proportions matter: the composition below lowers every
    # multiplier by one factor, so training may start above the cap that its final value must meet).
    sigma = {}
    for k, (qq, t, _, what) in specs.items():
        try:
            sigma[k] = solve_sigma(eps * split[k], delta * split[k], qq, t, what, cap=MAX_RELEASE_NOISE_MULTIPLIER)
        except DataValidationError:
            if k == "training":  # DP-SGD's own cap is the one to name (it said "above 10000")
                raise _too_small(eps * split[k], delta * split[k], qq, t, what, MAX_NOISE_MULTIPLIER) from None
            raise
    total_eps, total_delta = eps * sum(split[k] for k in specs), delta * sum(split[k] for k in specs)

    def spent(factor: float) -> float:
        return epsilon_spent([{"sampling_rate": specs[k][0], "noise_multiplier": factor * sigma[k],
                               "steps": specs[k][1]} for k in specs], total_delta)

    lo, hi = max(0.05, 1e-3 / min(sigma.values())), 1.0
    if spent(hi) <= total_eps and spent(lo) > total_eps:
        while hi / lo > 1 + 1e-3:  # invariant: spent(lo) > total_eps >= spent(hi)
            mid = math.sqrt(lo * hi)
            lo, hi = (mid, hi) if spent(mid) > total_eps else (lo, mid)
    if check and not tree and hi * sigma["training"] > MAX_NOISE_MULTIPLIER:
        raise _too_small(eps * split["training"], delta * split["training"], q, steps, specs["training"][3],
                         MAX_NOISE_MULTIPLIER)
    sens = {k: spec[2] for k, spec in specs.items()}
    if not tree and sens["training"] is None:
        sens["training"] = auto_max_grad_norm(hi * sigma["training"])
    return {k: mechanism(k, hi * sigma[k], qq, t, sens[k], delta * split[k]) for k, (qq, t, _, _) in specs.items()}


def auto_max_grad_norm(noise_multiplier: float) -> float:
    """The clipping norm of ``max_grad_norm=None`` for DP-SGD at ``noise_multiplier``: the norm
    whose noise on a step's gradient sum (``noise_multiplier * norm``) is :data:`DP_GRAD_NOISE`,
    within :data:`DP_NORM_RANGE`. A small budget (a large multiplier) gets the smallest norm: less
    noise on the gradients, more clipping. A large budget gets a larger norm: the noise allows it,
    and clipping, which cuts the records in the tails and on rare states down most, would then
    limit what the model learns.

    Examples
    --------
    >>> [round(auto_max_grad_norm(s), 2) for s in (8.63, 2.64, 1.60)]
    [5.0, 11.36, 15.0]
    """
    lo, hi = DP_NORM_RANGE
    return float(min(hi, max(lo, DP_GRAD_NOISE / noise_multiplier)))


def condition_params(synth: Synthesizer, conditions: list[str], weight_col: str | None,
                     scale: float = 1.0) -> dict[str, Any]:
    """The DP parameters of ``synth``'s condition model: ``scale`` times the ``"conditions"`` share
    of the budget (``scale`` from :func:`plan`), split between statistics and training as
    ``synth``'s, and the conditions' public metadata."""
    split = _check_split(synth.budget_split, True)
    rest = split["statistics"] + split["training"]
    keep = set(conditions) | ({weight_col} if weight_col else set())
    return {"epsilon": float(synth.epsilon) * split["conditions"] * scale,
            "delta": float(synth.delta) * split["conditions"],
            "max_grad_norm": synth.max_grad_norm,
            "public_bounds": {k: v for k, v in (synth.public_bounds or {}).items() if k in keep} or None,
            "public_categories": {k: v for k, v in (synth.public_categories or {}).items() if k in keep} or None,
            "budget_split": {"statistics": split["statistics"] / rest, "training": split["training"] / rest}}
