"""s51: calibration of real survey weights checked against R survey::calibrate and against figures computed here.

eusilc persons with their design weights rb050, targets region x sex and age-group person counts plus either the
total of py010n (0 for children) or its mean over ages >= 18. The reference weights (every 25th person) come from
``reference/s51_make_r_reference.R`` (R 4.2.2, survey 4.1-1); the same comparison on all persons, on households
(db090) and on census2000 agreed to 1e-11 relative.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from microplex import Calibrator, ConvergenceError, Targets

from .conftest import REFERENCE

METHODS = {
    "linear": ("linear", None),
    "raking": ("raking", None),
    "linear_b": ("linear", (0.97, 1.2)),
    "raking_b": ("raking", (0.97, 1.2)),
    "logit_w": ("logit", (0.9, 1.3)),
    "logit_b": ("logit", (0.97, 1.2)),
}


def _targets(case: str) -> Targets:
    table = pd.read_csv(REFERENCE / "s51_eusilc_person_targets.csv", keep_default_na=False)
    table = table[table["case"] == case].drop(columns="case")
    table["variable"] = table["variable"].replace("", None)
    return Targets.from_frame(table.reset_index(drop=True))


@pytest.fixture(scope="module")
def persons(eusilc: pd.DataFrame) -> pd.DataFrame:
    return eusilc.assign(py=eusilc["py010n"].fillna(0.0))


@pytest.mark.parametrize("case", ["sum", "mean"])
@pytest.mark.parametrize("column", list(METHODS))
def test_eusilc_person_weights_match_r_survey(persons, case, column):
    ref = pd.read_csv(REFERENCE / "s51_eusilc_person_weights.csv")
    method, bounds = METHODS[column]
    cal = Calibrator(method, bounds=bounds, tol=1e-12).fit(
        persons, _targets("eu_person" if case == "sum" else "eu_mean"), weight_col="rb050"
    )
    assert cal.summary["converged"]
    got = cal.weights.to_numpy()[ref["row"].to_numpy()]
    np.testing.assert_allclose(got, ref[f"{case}_{column}"].to_numpy(), rtol=1e-9)


@pytest.mark.parametrize("method", ["linear", "raking", "logit"])
def test_household_bounds_feasible_exactly_where_r_survey_converges(persons, method):
    """Household weights db090, person targets: each target alone is reachable within (0.8, 1.105), together they
    are not (a linear program puts the smallest feasible upper bound at 1.1087 with lower 0.8). R survey fails to
    converge at (0.8, 1.105) and converges at (0.8, 1.112); so must we."""
    targets = _targets("eu_hh")
    with pytest.raises(ConvergenceError, match=r"cannot be met together within the bounds.*Upper Austria"):
        Calibrator(method, bounds=(0.8, 1.105)).fit(persons, targets, weight_col="db090", household_col="db030")
    cal = Calibrator(method, bounds=(0.8, 1.112)).fit(persons, targets, weight_col="db090", household_col="db030")
    assert cal.summary["converged"] and cal.summary["max_rel_error"] < 1e-9
    ratio = cal.weights.to_numpy() / cal.result_.initial_weights.to_numpy()
    assert ratio.min() >= 0.8 - 1e-12 and ratio.max() <= 1.112 + 1e-12


def test_report_and_summary_are_the_figures_of_the_weights(persons):
    """report() and summary against totals, ESS and ratios computed here from the weights and the raw columns."""
    targets = _targets("eu_mean")
    cal = Calibrator("raking", bounds=(0.97, 1.2)).fit(persons, targets, weight_col="rb050")
    w, d = cal.weights.to_numpy(), persons["rb050"].to_numpy()
    region, sex, age = persons["db040"].to_numpy(), persons["rb090"].to_numpy(), persons["age"].to_numpy()
    columns = [(region == r) & (sex == s) for r, s in sorted(set(zip(region, sex)))]  # the targets' order
    columns += [(age < 18), (age >= 18) & (age < 40), (age >= 40) & (age < 65), (age >= 65)]
    x = np.column_stack(columns).astype(float)
    adult = age >= 18
    py = persons["py"].to_numpy()
    achieved = np.r_[x.T @ w, np.sum(w * py * adult) / np.sum(w * adult)]
    initial = np.r_[x.T @ d, np.sum(d * py * adult) / np.sum(d * adult)]
    value = np.array([t.value for t in targets])
    rep = cal.report()
    np.testing.assert_allclose(rep["achieved"].to_numpy(), achieved, rtol=1e-12)
    np.testing.assert_allclose(rep["initial"].to_numpy(), initial, rtol=1e-12)
    np.testing.assert_allclose(rep["rel_error"].to_numpy(), np.abs(achieved - value) / value, atol=1e-12)
    s = cal.summary
    assert s["kish_ess"] == pytest.approx(w.sum() ** 2 / (w**2).sum(), rel=1e-12)
    assert s["design_effect"] == pytest.approx(len(w) * (w**2).sum() / w.sum() ** 2, rel=1e-12)
    assert (s["min_ratio"], s["max_ratio"]) == pytest.approx(((w / d).min(), (w / d).max()), rel=1e-12)
    assert s["max_rel_error"] == rep["rel_error"].max() < 1e-12


def test_logit_far_outside_its_bounds_warns_nothing(persons):
    """The logit distance far below its lower bound (an infeasible household solve drives ``u`` there) gave
    "RuntimeWarning: overflow encountered in exp", which under ``-W error`` replaced the ConvergenceError."""
    from microplex.calibration.distances import logit

    u = np.array([-1e4, -3.0, 0.0, 2.0, 1e4])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        g = logit.inverse(u, (0.8, 1.105))
        dg = logit.derivative(u, (0.8, 1.105))
        with pytest.raises(ConvergenceError, match="cannot be met together"):
            Calibrator("logit", bounds=(0.8, 1.105)).fit(persons, _targets("eu_hh"), weight_col="db090",
                                                         household_col="db030")
    np.testing.assert_allclose(g[[0, 2, 4]], [0.8, 1.0, 1.105])
    assert dg[0] == dg[4] == 0.0 and dg[2] > 0
