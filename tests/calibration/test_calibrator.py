from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from microplex import (
    Calibrator,
    ConvergenceError,
    ConvergenceWarning,
    DataValidationError,
    NotFittedError,
    Target,
    Targets,
)


@pytest.fixture()
def small(census) -> pd.DataFrame:
    states = ["Oregon", "Kansas", "Utah", "Iowa"]
    df = census[census["state"].isin(states)].reset_index(drop=True)
    df = df.assign(weight=100.0)
    df["educ_group"] = pd.cut(df["educ"], [0, 12, 13, 16, 99], right=False, labels=["a", "b", "c", "d"])
    df["exper_group"] = pd.cut(df["exper"], [0, 10, 20, 30, 99], right=False, labels=["0", "10", "20", "30"])
    return df


def _ipf(df, margins, totals, weights, n_iter=2000):
    w = weights.astype(float).copy()
    for _ in range(n_iter):
        old = w.copy()
        for cols, tot in zip(margins, totals):
            key = pd.MultiIndex.from_frame(df[list(cols)].astype(str))
            cur = pd.Series(w).groupby(key).transform("sum").to_numpy()
            want = pd.Series(tot).reindex(key).to_numpy()
            w = w * want / cur
        if np.max(np.abs(w - old) / old) < 1e-15:
            break
    return w


def test_raking_reproduces_classic_ipf(small):
    rng = np.random.default_rng(0)
    pw = small["weight"] * rng.uniform(0.7, 1.4, len(small))
    margins = [("state", "educ_group"), ("educ_group", "exper_group")]
    totals = []
    for cols in margins:
        g = pw.groupby([small[c].astype(str) for c in cols]).sum()
        totals.append({k: v for k, v in g.items()})
    w_ipf = _ipf(small, margins, totals, small["weight"].to_numpy())
    targets = Targets.from_margins(
        {cols: {tuple(k): v for k, v in tot.items()} for cols, tot in zip(margins, totals)}
    )
    df = small.assign(**{c: small[c].astype(str) for c in ["educ_group", "exper_group"]})
    cal = Calibrator("raking", tol=1e-13).fit(df, targets, weight_col="weight")
    np.testing.assert_allclose(cal.weights.to_numpy(), w_ipf, rtol=1e-9)


def test_summary_and_report_columns(small):
    targets = Targets.from_margins({"state": small.groupby("state")["weight"].sum() * 1.1})
    cal = Calibrator("linear").fit(small, targets, weight_col="weight")
    s = cal.summary
    for key in ["converged", "n_iter", "max_rel_error", "kish_ess", "design_effect", "min_ratio", "max_ratio"]:
        assert key in s
    assert s["min_ratio"] == pytest.approx(1.1) and s["max_ratio"] == pytest.approx(1.1)
    rep = cal.report()
    assert list(rep.columns[:6]) == ["target", "aggregate", "entity", "value", "initial", "achieved"]
    assert rep["met"].all()
    np.testing.assert_allclose(rep["initial"] * 1.1, rep["value"])


def test_mean_and_range_targets(small):
    targets = Targets(
        [
            Target(small["weight"].sum(), name="N"),
            Target(25.0, "mean", "exper", {"state": "Utah"}),
            Target(60_000, filters="exper in [0, 20) & educ >= 16"),
        ]
    )
    cal = Calibrator("raking").fit(small, targets, weight_col="weight")
    rep = cal.report().set_index("target")
    assert rep.loc["mean(exper)[state == 'Utah']", "achieved"] == pytest.approx(25.0, rel=1e-9)
    w = cal.result_.record_weights
    utah = small["state"] == "Utah"
    assert np.average(small.loc[utah, "exper"], weights=w[utah]) == pytest.approx(25.0, rel=1e-9)


def test_soft_mode_reports_misses_on_conflicting_targets(small):
    n_or = (small["state"] == "Oregon").sum() * 100.0
    targets = Targets(
        [Target(n_or, filters={"state": "Oregon"}, tolerance=0.01), Target(n_or * 1.2, filters={"state": "Oregon"})]
    )
    with pytest.raises(ConvergenceError, match=r"cannot be met together.*state == 'Oregon'"):
        Calibrator("raking", max_iter=30).fit(small, targets, weight_col="weight")
    cal = Calibrator("raking", soft=True).fit(small, targets, weight_col="weight")
    rep = cal.report()
    assert cal.summary["converged"]
    assert n_or < rep["achieved"].iloc[0] < n_or * 1.2
    assert not rep["met"].all()


def test_infeasible_bounds_name_the_targets_and_force_warns(small):
    n_ut = (small["state"] == "Utah").sum() * 100.0
    targets = Targets.from_margins({"state": {"Utah": n_ut * 3, "Oregon": (small["state"] == "Oregon").sum() * 100}})
    with pytest.raises(ConvergenceError, match=r"count\[state == 'Utah'\] = .*closest achievable"):
        Calibrator("raking", bounds=(0.5, 2.0), max_iter=25).fit(small, targets, weight_col="weight")
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        cal = Calibrator("raking", bounds=(0.5, 2.0), max_iter=25, force=True).fit(
            small, targets, weight_col="weight"
        )
    assert not cal.summary["converged"]
    assert "Utah" in cal.result_.infeasible["target"].iloc[0]
    assert cal.summary["max_ratio"] <= 2.0 + 1e-12


@pytest.mark.parametrize(
    "change,kwargs,match",
    [
        ({}, {"targets": {"nope": {"x": 1}}}, r"column 'nope', which is not in the records"),
        ({}, {"targets": {"state": {"Atlantis": 5.0}}}, r"no record has state == 'Atlantis'"),
        ({}, {"targets": [Target(float("nan"), name="nan-target")]}, r"'nan-target': value must be finite"),
        ({"weight": 0.0}, {}, r"'weight' must hold finite weights > 0; \d+ records"),
        ({"state": None}, {}, r"Column 'state' .* has 1 missing values"),
        ({}, {"weight_col": "w"}, r"weight_col 'w' is not a column"),
    ],
)
def test_bad_input_names_the_culprit(small, change, kwargs, match):
    df = small.copy()
    for col, val in change.items():
        df[col] = df[col].astype(object) if val is None else df[col]
        df.loc[0, col] = val
    args = {"targets": {"state": df.groupby("state")["weight"].sum() if "state" in df else {}}, "weight_col": "weight"}
    args.update(kwargs)
    with pytest.raises(DataValidationError, match=match):
        Calibrator("raking").fit(df, args["targets"], weight_col=args["weight_col"])


@pytest.mark.parametrize(
    "params,match",
    [
        ({"bounds": (2.0, 0.5)}, r"lower < upper. Got lower=2.0, upper=0.5"),
        ({"method": "logit"}, r"'logit' needs finite bounds"),
        ({"method": "foo"}, r"'method' parameter must be"),
        ({"max_iter": 0}, r"'max_iter' parameter must be an int >= 1"),
    ],
)
def test_bad_parameters_are_checked_in_fit(small, params, match):
    cal = Calibrator(**params)  # the constructor only stores
    with pytest.raises(DataValidationError, match=match):
        cal.fit(small, {"state": {"Utah": 1.0}}, weight_col="weight")


def test_not_fitted_and_repr():
    cal = Calibrator("linear", bounds=(0.5, 2))
    assert "linear" in repr(cal)
    with pytest.raises(NotFittedError, match="not fitted"):
        cal.weights


def test_household_weights_must_be_constant(eusilc):
    df = eusilc.head(200).copy()
    df.loc[df.index[1], "db090"] = 1.0
    hh = df["db030"].iloc[1]
    with pytest.raises(DataValidationError, match=f"constant within each household.*household {hh} has"):
        Calibrator().fit(df, [Target(1000.0)], weight_col="db090", household_col="db030")


def test_consistency_check_passes_and_soft_mode_only_warns(small, caplog):
    n = small.groupby("state")["weight"].sum()
    puma = small.groupby(["state", "puma"])["weight"].sum()
    ok = Targets.from_margins({"state": n, ("state", "puma"): puma}) + [Target(n.sum())]
    Calibrator("raking").fit(small, ok, weight_col="weight", geography=["state", "puma"])
    bad = Targets.from_margins({"state": n * 1.05, ("state", "puma"): puma})
    cal = Calibrator("raking", soft=True).fit(small, bad, weight_col="weight", geography=["state", "puma"])
    assert len(cal.result_.inconsistencies) == 4
    assert "do not add up" in caplog.text


def test_targets_from_a_file_path(small, tmp_path):
    n = small.groupby("state")["weight"].sum() * 1.05
    Targets.from_margins({"state": n}).to_frame().to_csv(tmp_path / "t.csv", index=False)
    (tmp_path / "t.yaml").write_text("margins:\n  - by: state\n    values: {" + ", ".join(f"{k}: {v}" for k, v in n.items()) + "}\n")
    for name in ("t.csv", "t.yaml"):
        cal = Calibrator("raking").fit(small, tmp_path / name, weight_col="weight")
        assert cal.summary["max_rel_error"] < 1e-8
    with pytest.raises(DataValidationError, match="must be an existing .csv"):
        Calibrator().fit(small, tmp_path / "missing.json", weight_col="weight")


def test_in_memory_and_out_of_core_results_share_their_summary_rule():
    """Calibrator and scale.rake_frame solve the same problem to the same weights, and their summaries agree on
    every shared key (one convergence measure, one tolerance, one relative-error rule)."""
    from microplex.calibration.calibrator import SUMMARY_KEYS
    from microplex.scale import rake_frame

    rng = np.random.default_rng(3)
    df = pd.DataFrame({"sex": rng.integers(1, 3, 400), "age": rng.choice(["y", "m", "o"], 400),
                       "weight": rng.uniform(1, 3, 400)})
    margins = {"sex": {1: 520.0, 2: 480.0}, "age": {"y": 300.0, "m": 450.0, "o": 250.0}}
    cal = Calibrator(method="raking").fit(df, Targets.from_margins(margins), weight_col="weight")
    res = rake_frame(df, margins, weight_col="weight")
    np.testing.assert_allclose(res.weights(df), cal.result_.record_weights.to_numpy(), rtol=1e-9)
    assert set(SUMMARY_KEYS) <= set(cal.summary) and set(SUMMARY_KEYS) <= set(res.summary)
    for key in SUMMARY_KEYS:
        if key == "max_rel_error":
            assert res.summary[key] < 1e-9 and cal.summary[key] < 1e-9
        elif key != "n_iter":
            assert res.summary[key] == cal.summary[key], key
