"""The metric registry: one table that the score table, METRIC_DIRECTION and the report read."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from microplex import _stats
from microplex.evaluation import METRIC_DIRECTION, METRICS, evaluate, fidelity_scores, registry
from microplex.evaluation.metrics import ks_statistic, tv_complement
from microplex.fusion.diagnostics import weighted_ks, weighted_tvd
from microplex.households.diagnostics import ks_distance, tv_distance

#: METRIC_DIRECTION as it was written by hand before the registry.
_BEFORE = {
    "ks": "lower", "tv_complement": "higher", "wasserstein_scaled": "lower", "zero_share_error": "lower",
    "point_mass_max_error": "lower", "missing_share_error": "lower", "quantile_error_max": "lower",
    "correlation_max_abs_error": "lower", "spearman_max_abs_error": "lower", "contingency_similarity": "higher",
    "subgroup_ks": "lower", "subgroup_ks_mean": "lower", "pmse": "lower", "dcr_ratio": "higher",
    "dcr_close_share": "lower", "exact_copy_rate_synthetic": "lower", "calibration_rel_error": "lower",
    "kish_ess": "higher", "design_effect": "lower",
}
#: Registered with the attacks (issue 19); their holdout baselines are not ranked.
_ATTACKS = {"membership_auc": "lower", "disco_synthetic": "lower", "attribution_synthetic": "lower"}
_LATER = {"round_share_error": "lower"}  # session 55


def _frames(n=300, seed=0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"g": rng.integers(0, 3, n), "x": rng.lognormal(size=n) * (rng.random(n) > 0.3),
                       "y": rng.normal(size=n), "c": rng.choice(["a", "b"], n)})
    syn = df.sample(frac=1.0, replace=True, random_state=1).reset_index(drop=True)
    return df.assign(w=rng.uniform(1, 2, n)), syn.assign(w=rng.uniform(1, 2, n))


def test_metric_direction_is_derived_from_the_registry_and_unchanged():
    assert METRIC_DIRECTION == {**_BEFORE, **_ATTACKS, **_LATER}
    assert METRIC_DIRECTION == {m.name: m.direction for m in METRICS if m.direction is not None}
    assert len({m.name for m in METRICS}) == len(METRICS)
    assert all(m.direction in ("lower", "higher", None) for m in METRICS)
    assert {m.kind for m in METRICS} == {"column", "frame", "weights", "calibration", "privacy"}


def test_every_scored_metric_is_registered_and_every_computable_one_is_scored():
    real, syn = _frames()
    hold = _frames(seed=5)[0]
    rep = evaluate(real, syn, weight_col="w", synthetic_weight_col="w", conditions=["g"], targets={"x": 100.0},
                   holdout_df=hold, pmse=True, attacks=True)
    scored = {m for m in rep.scores["metric"] if not m.startswith("quantile_error_p")}
    assert scored == {m.name for m in METRICS}


def test_adding_a_metric_is_one_registration(monkeypatch):
    def mean_gap(r, s, wr=None, ws=None):
        return abs(np.average(r, weights=wr) - np.average(s, weights=ws))

    extra = registry.Metric("mean_gap", mean_gap, "lower", "column", "numeric",
                            registry._column(lambda r, s, wr, ws, ctx: mean_gap(r, s, wr, ws)))
    monkeypatch.setattr(registry, "METRICS", (*registry.METRICS, extra))
    real, syn = _frames()
    scores, _ = fidelity_scores(real, syn, real.pop("w"), syn.pop("w"), pmse=False)
    got = scores[scores["metric"] == "mean_gap"]
    assert set(got["variable"]) == {"g", "x", "y"}  # numeric columns only
    assert registry.metric_direction()["mean_gap"] == "lower"


def test_metric_lookup_names_the_registered_metrics():
    assert registry.metric("ks").function is ks_statistic
    with pytest.raises(KeyError, match="No metric named 'kss'"):
        registry.metric("kss")
    with pytest.raises(dataclasses.FrozenInstanceError):
        registry.metric("ks").direction = "higher"


def test_fusion_and_household_distances_are_the_registry_distances():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=200).round(1), rng.normal(0.2, size=150).round(1)
    wx, wy = rng.uniform(0.5, 2, 200), rng.uniform(0.5, 2, 150)
    ks = registry.metric("ks").function(x, y, wx, wy)
    assert weighted_ks(x, wx, y, wy) == ks == ks_distance(x, y, wx, wy) == _stats.ks_distance(x, y, wx, wy)
    a, b = pd.Series(rng.choice(list("abc"), 200)), pd.Series(rng.choice(list("abd"), 150))
    tv = 1.0 - tv_complement(a, b, wx, wy)
    assert weighted_tvd(a, wx, b, wy) == pytest.approx(tv, abs=1e-15)
    assert tv_distance(a, b, wx, wy) == pytest.approx(tv, abs=1e-15)
