"""Verdicts of the evaluation report: each score read against the real-vs-real floor.

The *floor* of a metric is its value when the held-out real records stand in for the synthetic
ones: two samples of the same population differ by that much by sampling alone. A synthetic file
cannot be expected to do better, so a score is judged by how far it sits above its floor:

* **green**: within ``max(1.5 x floor, floor + 0.01)`` (the bar of the project's benchmarks);
* **amber**: within ``max(3 x floor, floor + 0.03)``;
* **red**: beyond.

For metrics where higher is better and 1 is perfect (``tv_complement``, ``contingency_similarity``)
the distances ``1 - value`` and ``1 - floor`` are compared. Scores of the conditions are not
judged: the synthetic records were drawn for given conditions, so their fit says nothing about
the model.

The attacks (``evaluate(..., attacks=True)``) are judged too, each against what fresh data gives
(:func:`attack_table`): the membership AUC against 0.5, the AUC of an attack with no advantage
(green up to :data:`AUC_AMBER`, amber up to :data:`AUC_RED`, red beyond), and the synthetic
file's attribute disclosure against the holdout's, its floor, by absolute margins (green up to
:data:`DISCLOSURE_AMBER` above it, amber up to :data:`DISCLOSURE_RED`, red beyond): a disclosure
share is a share of the records an attacker infers, so its excess over fresh data's counts in
records whatever the baseline (a relative bar let 0.60 against 0.40 read green).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from . import registry

__all__ = ["AUC_AMBER", "AUC_RED", "DISCLOSURE_AMBER", "DISCLOSURE_RED", "LIGHTS", "attack_table", "floor_scores", "light",
           "verdict_table", "report_verdicts", "worst_first",
           "provenance", "pmse_rows", "calibration_line", "key_numbers", "privacy_problems_of", "SAMPLE_KEYS", "synthetic_sample"]

#: The three verdicts, best first.
LIGHTS = ("green", "amber", "red")
#: Metrics judged against the floor (the registry's ranked column and frame metrics, minus pMSE
#: which the floor does not compute, and the per-cell subgroup rows).
_SKIP = {"pmse", "subgroup_ks"}
#: Membership AUC above which the attack is amber, and above which it is red. 0.5 is an attack with no
#: advantage; at 2,000 members and non-members its standard error is about 0.009, so 0.55 is well
#: beyond sampling noise, and at 0.6 members are told apart from fresh records in a clear share of pairs.
AUC_AMBER, AUC_RED = 0.55, 0.60
#: Excess of a synthetic file's attribute disclosure (DiSCO, attribution) over the holdout's above which it is
#: amber, and above which it is red. Between independent files of cps1 (2,000 records) the two figures differ by
#: about 0.01 (standard deviation; at most 0.033 in the sweep of session 46), so 0.04 is beyond that noise.
DISCLOSURE_AMBER, DISCLOSURE_RED = 0.04, 0.08


def floor_scores(real: pd.DataFrame, holdout: pd.DataFrame, real_weights: np.ndarray | None,
                 holdout_weights: np.ndarray | None, conditions: Sequence[str], seed: int | None,
                 tick: Callable[[str], None] | None = None, integers: Sequence[str] = ()) -> pd.DataFrame:
    """Scores of the holdout against the training records (the real-vs-real floor), pMSE left out.

    ``tick(step)`` is called after each column and whole-file metric (the progress bar of ``evaluate``);
    ``integers`` are the conditions that both frames held as integers before :func:`._validation.numeric_frame`
    (their subgroups labelled ``i=0``, as the scores' are).
    """
    from .report import fidelity_scores

    scores, _ = fidelity_scores(real, holdout, real_weights, holdout_weights, conditions=conditions,
                                pmse=False, seed=seed, _tick=tick, _integers=integers)
    return scores


def light(value: float, floor: float, direction: str) -> str:
    """The verdict of one score against its floor.

    Examples
    --------
    >>> light(0.03, 0.025, "lower"), light(0.06, 0.025, "lower"), light(0.2, 0.025, "lower")
    ('green', 'amber', 'red')
    >>> light(0.99, 0.995, "higher")
    'green'
    """
    if direction == "higher":
        value, floor = 1.0 - value, 1.0 - floor
    floor = max(float(floor), 0.0)
    if value <= max(1.5 * floor, floor + 0.01):
        return "green"
    if value <= max(3.0 * floor, floor + 0.03):
        return "amber"
    return "red"


def verdict_table(scores: pd.DataFrame, floor: pd.DataFrame, conditions: Sequence[str]) -> pd.DataFrame:
    """One row per judged score: ``metric``, ``variable``, ``subgroup``, ``value``, ``floor``, ``verdict``.

    Rows are the overall scores (and the subgroup means) of the target variables and of the whole
    file that the floor also has; scores of ``conditions`` and of variable pairs are left out.
    """
    direction = registry.metric_direction()
    keys = ["metric", "variable", "subgroup"]
    both = scores.merge(floor.rename(columns={"value": "floor"}), on=keys, how="inner")
    keep = (both["metric"].map(direction).isin(["lower", "higher"]) & ~both["metric"].isin(_SKIP)
            & ~both["variable"].isin(list(conditions)) & ~both["variable"].str.contains("|", regex=False)
            & ((both["subgroup"] == "all") | (both["metric"] == "subgroup_ks_mean")))
    both = both[keep].reset_index(drop=True)
    both["verdict"] = [light(v, f, direction[mt]) for v, f, mt in zip(both["value"], both["floor"], both["metric"])]
    return both[[*keys, "value", "floor", "verdict"]]


def worst_first(table: pd.DataFrame) -> pd.DataFrame:
    """Rows of a verdict table (:func:`report_verdicts`), red before amber before green, each light by how far
    its score is beyond its floor in the metric's worse direction (``floor - value`` where higher is better:
    ranked by ``value - floor``, a red ``tv_complement`` of 0.60 against 0.98 came last).

    Examples
    --------
    >>> t = pd.DataFrame({"metric": ["ks", "tv_complement", "ks"], "variable": ["a", "g", "b"],
    ...                   "value": [0.06, 0.60, 0.2], "floor": [0.02, 0.98, 0.02], "verdict": ["amber", "red", "red"]})
    >>> worst_first(t)["variable"].tolist()
    ['g', 'b', 'a']
    """
    direction = registry.metric_direction()
    sign = np.where(table["metric"].map(direction).eq("higher"), -1.0, 1.0)
    rank = table["verdict"].map({v: k for k, v in enumerate(LIGHTS)})
    order = table.assign(_light=rank, _excess=sign * (table["value"] - table["floor"]))
    return order.sort_values(["_light", "_excess"], ascending=False, kind="stable").drop(columns=["_light", "_excess"])


def attack_table(attacks: Mapping[str, Any] | None) -> pd.DataFrame:
    """The attack figures judged, with :func:`verdict_table`'s columns (empty without attacks).

    ``membership_auc`` (variable ``"all"``) has 0.5 as its floor: green up to :data:`AUC_AMBER`,
    amber up to :data:`AUC_RED`, red beyond. ``disco_synthetic`` and ``attribution_synthetic``
    (variable: the sensitive column) have the holdout's figure as their floor: green up to
    :data:`DISCLOSURE_AMBER` above it, amber up to :data:`DISCLOSURE_RED`, red beyond.

    Examples
    --------
    >>> found = {"membership_auc": 0.97, "attribute_disclosure": {"re78": {
    ...     "disco_synthetic": 0.24, "disco_holdout": 0.05, "attribution_synthetic": 0.41, "attribution_holdout": 0.4}}}
    >>> attack_table(found)[["metric", "variable", "floor", "verdict"]].values.tolist()
    [['membership_auc', 'all', 0.5, 'red'], ['disco_synthetic', 're78', 0.05, 'red'], ['attribution_synthetic', 're78', 0.4, 'green']]
    >>> attack_table({"membership_auc": 0.5, "attribute_disclosure": {"y": {"disco_synthetic": 0.1, "disco_holdout": 0.1,
    ...     "attribution_synthetic": 0.47, "attribution_holdout": 0.4}}})["verdict"].tolist()
    ['green', 'green', 'amber']
    """
    rows: list[tuple[str, str, str, float, float, str]] = []
    if attacks:
        auc = float(attacks["membership_auc"])
        verdict = "green" if auc <= AUC_AMBER else "amber" if auc <= AUC_RED else "red"
        rows.append(("membership_auc", "all", "all", auc, 0.5, verdict))
        for col, out in attacks.get("attribute_disclosure", {}).items():
            for kind in ("disco", "attribution"):
                value, floor = float(out[f"{kind}_synthetic"]), float(out[f"{kind}_holdout"])
                excess = value - floor
                verdict = "green" if excess <= DISCLOSURE_AMBER else "amber" if excess <= DISCLOSURE_RED else "red"
                rows.append((f"{kind}_synthetic", col, "all", value, floor, verdict))
    return pd.DataFrame(rows, columns=["metric", "variable", "subgroup", "value", "floor", "verdict"])


def report_verdicts(rep: Any, given: Sequence[str] = ()) -> pd.DataFrame:
    """Every verdict of a report with a holdout: :func:`verdict_table` of its scores (``given``: the
    conditions, not judged), then :func:`attack_table` of its attacks."""
    table = verdict_table(rep.scores, rep.floor, given)
    attacks = attack_table(rep.attacks)
    return pd.concat([table, attacks], ignore_index=True) if len(attacks) else table


def provenance(model: object | None = None) -> dict[str, object]:
    """Settings of a fitted ``model`` for the report's header (class, parameters, epochs run, records)."""
    if model is None:
        return {}
    out: dict[str, object] = {"model": type(model).__name__}
    get_params = getattr(model, "get_params", None)
    if callable(get_params):
        params = get_params(deep=False)
        out.update({f"model {k}": v for k, v in params.items() if k not in ("verbose",)})
    history = getattr(model, "history_", None)
    if isinstance(history, pd.DataFrame):
        out["epochs run"] = len(history)
        if len(history) and "train_loss" in history and history["train_loss"].notna().any():
            out["final training loss"] = round(float(history["train_loss"].iloc[-1]), 4)
    privacy = getattr(model, "privacy_", None)
    if isinstance(privacy, dict):  # a DP fit records no loss; its accountant's figures instead
        out["differential privacy spent"] = f"epsilon {privacy['epsilon']:.4g} at delta {privacy['delta']:.3g}"
    weights = getattr(model, "training_weights_", None)
    if weights is not None:
        out["training records"] = len(weights)
    return out


def pmse_rows(real_weights: np.ndarray, synthetic_weights: np.ndarray) -> str:
    """How many rows of each side the pMSE classifier saw: ``pmse`` leaves out the records of weight 0, then
    subsamples each side to ``max_rows``.

    Examples
    --------
    >>> pmse_rows(np.array([1.0, 0.0, 2.0]), np.ones(4))
    '2 real + 4 synthetic'
    """
    import inspect

    from .propensity import pmse

    cap = inspect.signature(pmse).parameters["max_rows"].default
    n_real, n_synthetic = int(np.count_nonzero(real_weights > 0)), int(np.count_nonzero(synthetic_weights > 0))
    sampled = " (random samples)" if cap is not None and max(n_real, n_synthetic) > cap else ""
    n_real, n_synthetic = (min(n_real, cap), min(n_synthetic, cap)) if cap is not None else (n_real, n_synthetic)
    return f"{n_real:,} real + {n_synthetic:,} synthetic{sampled}"


def privacy_problems_of(rep: Any) -> list[str]:
    """The disclosure risks :func:`~microplex.evaluation.privacy.privacy_problems` finds in the report ``rep``'s
    privacy figures (those ``evaluate`` warned of; none without a holdout): the HTML report's red notice and the
    command line's summary both read them."""
    from .privacy import privacy_problems

    if rep.privacy is None or rep.holdout_df is None:
        return []
    return privacy_problems(rep.privacy, len(rep.synthetic_df), len(rep.holdout_df))


def membership_rows_text(attacks: Mapping[str, object] | None) -> str | None:
    """The members and non-members the membership AUC scored (``attacks["membership_rows"]``,
    :func:`~microplex.evaluation.attacks.membership_rows`), in words; None when the attacks did not record them.

    Examples
    --------
    >>> membership_rows_text({"membership_rows": {"training": (2000, 6000), "holdout": (500, 500)}})
    '2,000 of 6,000 training and 500 holdout records (random samples)'
    >>> membership_rows_text({"membership_rows": {"training": (800, 800), "holdout": (800, 800)}})
    '800 training and 800 holdout records'
    """
    rows = (attacks or {}).get("membership_rows")
    if not rows:
        return None
    parts = [f"{scored:,} of {n:,} {side}" if scored < n else f"{n:,} {side}"
             for side, (scored, n) in rows.items()]
    sampled = any(scored < n for scored, n in rows.values())
    return " and ".join(parts) + " records" + (" (random samples)" if sampled else "")


#: The provenance lines that say the synthetic records scored are a random sample of the file: ``microplex
#: evaluate --max-rows`` (``"synthetic rows scored"``) and the pipeline's ``evaluate.max_rows``
#: (``"synthetic records scored"``).
SAMPLE_KEYS = ("synthetic rows scored", "synthetic records scored")


def synthetic_sample(provenance: Mapping[str, object] | None) -> str | None:
    """What ``provenance`` says of the synthetic sample scored (the value of a :data:`SAMPLE_KEYS` line), or None
    when the whole synthetic file was scored."""
    for key in SAMPLE_KEYS:
        if provenance and provenance.get(key):
            return str(provenance[key])
    return None


def calibration_line(table: pd.DataFrame | None) -> str | None:
    """The ``largest calibration error`` line of :func:`key_numbers` from the report's
    :func:`~microplex.evaluation.calibration.achieved_vs_target` table (None without targets): the largest
    relative error over the targets of non-zero value, in percent; the largest absolute miss of the targets of 0,
    whose ``rel_error`` is that absolute miss (a count left in a cell that must be empty is no percentage);
    the targets not reached at all (a mean over records of weight 0: NaN).

    Examples
    --------
    >>> t = pd.DataFrame({"target": [100.0, 0.0, 5.0], "error": [2.0, 1.07, np.nan]})
    >>> calibration_line(t.assign(rel_error=[0.02, 1.07, np.nan]))
    'largest calibration error: 2% over 1 targets; on 1 target(s) of 0, the largest absolute miss 1.07; 1 target(s) not reached at all (a mean over records of weight 0: NaN)'
    """
    if table is None or not len(table):
        return None
    undefined = table["rel_error"].isna().to_numpy()
    zero = (table["target"] == 0).to_numpy() & ~undefined
    nonzero = ~zero & ~undefined
    parts = []
    if nonzero.any():
        parts.append(f"{100 * float(table['rel_error'][nonzero].abs().max()):.3g}% over {int(nonzero.sum())} targets")
    if zero.any():
        parts.append(f"on {int(zero.sum())} target(s) of 0, the largest absolute miss "
                     f"{float(table['error'][zero].abs().max()):.3g}")
    if undefined.any():
        parts.append(f"{int(undefined.sum())} target(s) not reached at all (a mean over records of weight 0: NaN)")
    return "largest calibration error: " + "; ".join(parts)


def key_numbers(rep: object, given: Sequence[str] = (), sample: str | None = None) -> list[str]:
    """The lines the command line prints after ``evaluate``: worst target KS and round-value share error
    (:func:`~microplex.evaluation.metrics.round_share_errors`), correlation error, pMSE,
    DCR ratio (``inf``, said so, where the holdout's median distance is 0; undefined, said so, where both medians are 0), membership AUC, worst calibration
    error and the verdict tally (when a holdout was given; with the attacks' verdicts when they were run), then
    the privacy problems (:func:`privacy_problems_of`), which make the report's verdict red whatever the scores.
    ``sample``: the synthetic records scored were a sample (as
    :func:`synthetic_sample` reads it), said on the privacy figures' lines, which a sample dilutes."""
    scores = rep.scores
    given = set(given) | set(rep.conditions)
    lines = []
    for metric, label in (("ks", "worst KS of a target"), ("round_share_error", "worst round-value share error")):
        rows = scores[(scores["metric"] == metric) & (scores["subgroup"] == "all") & ~scores["variable"].isin(given)]
        if len(rows):
            worst = rows.loc[rows["value"].idxmax()]
            lines.append(f"{label}: {worst['value']:.4f} ({worst['variable']})")
    for metric, label in (("correlation_max_abs_error", "largest correlation error"), ("dcr_ratio", "DCR ratio"),
                          ("membership_auc", "membership AUC (0.5: no advantage)")):
        value = rep.score(metric)
        of_sample = f" (synthetic records: {sample})" if sample and metric != "correlation_max_abs_error" else ""
        scored = membership_rows_text(getattr(rep, "attacks", None)) if metric == "membership_auc" else None
        if np.isfinite(value):
            lines.append(f"{label}: {value:.4f}{f' on {scored}' if scored else ''}{of_sample}")
        elif metric == "dcr_ratio" and value == np.inf:  # the synthetic median over a holdout median of 0
            lines.append(f"{label}: inf (the holdout's median distance to the closest training record is 0){of_sample}")
        elif metric == "dcr_ratio" and rep.score("dcr_holdout_median") == 0 == rep.score("dcr_synthetic_median"):
            lines.append(f"{label}: undefined (the synthetic and holdout median distances to the closest training "
                         f"record are both 0){of_sample}")
    value = rep.score("pmse")
    if np.isfinite(value):
        lines.append(f"pMSE: {value:.4f} on {pmse_rows(rep.real_weights, rep.synthetic_weights)} rows")
    line = calibration_line(getattr(rep, "calibration", None))
    if line:
        lines.append(line)
    if rep.floor is not None:
        counts = report_verdicts(rep, sorted(given))["verdict"].value_counts()
        against = "the real-vs-real floor" + (" and, for the attacks, fresh data" if rep.attacks else "")
        lines.append(f"verdict against {against}: " + ", ".join(f"{counts.get(v, 0)} {v}" for v in LIGHTS))
    problems = privacy_problems_of(rep)
    if problems:
        lines.append("privacy problems (the report's verdict is red whatever the scores): " + "; ".join(problems))
    return lines
