"""Session 70: ``evaluate(..., targets=Targets)`` and the pipeline's evaluate stage measure a targeted cell that no
scored record holds (achieved 0, relative error -1) instead of refusing it.

Before, the achieved totals went through the calibrator's feasibility check, which refuses a target no record can
reach: ``evaluate`` on a synthetic file without a targeted category raised "no record has educ == 0", and the
pipeline's evaluate stage (which scores a sample of at most ``evaluate.max_rows`` records) stopped without a report
when a rare calibrated cell was missing from its sample.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from microplex._errors import DataValidationError
from microplex._random import int_seed, named_child
from microplex.calibration import Target, Targets
from microplex.evaluation import evaluate
from microplex.pipeline import run_pipeline


def _frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(0)
    n = 300
    real = pd.DataFrame({"educ": rng.integers(0, 4, n), "inc": rng.gamma(2.0, 1000.0, n).round(2)})
    synth = real[real["educ"] > 0].sample(200, random_state=1).reset_index(drop=True)
    synth["w"] = rng.uniform(0.5, 3.0, len(synth))
    return real, synth


def test_evaluate_reports_a_targeted_category_missing_from_the_synthetic_records_as_achieved_zero():
    """Before: DataValidationError "Target 'count[educ == 0]' has value 3 but no record has educ == 0"."""
    real, synth = _frames()
    assert not (synth["educ"] == 0).any()
    targets = Targets([Target(3.0, filters={"educ": 0}), Target(150.0, filters={"educ": 2}),
                       Target(9e5, "sum", "inc", filters={"educ": 0}), Target(4e5, "sum", "inc", filters={"educ": 1}),
                       Target(2000.0, "mean", "inc", filters={"educ": 3})])
    rep = evaluate(real, synth, synthetic_weight_col="w", targets=targets, pmse=False, progress=False)
    cal = rep.calibration
    w, e = synth["w"], synth["educ"]
    expected = {
        "count[educ == 0]": (0.0, 3.0),
        "count[educ == 2]": (w[e == 2].sum(), 150.0),
        "sum(inc)[educ == 0]": (0.0, 9e5),
        "sum(inc)[educ == 1]": ((w * synth["inc"])[e == 1].sum(), 4e5),
        "mean(inc)[educ == 3]": ((w * synth["inc"])[e == 3].sum() / w[e == 3].sum(), 2000.0),
    }
    assert list(cal.index) == list(expected)
    for name, (achieved, value) in expected.items():
        assert cal.loc[name, "achieved"] == pytest.approx(achieved, rel=1e-12, abs=0.0), name
        assert cal.loc[name, "target"] == value
        assert cal.loc[name, "rel_error"] == pytest.approx((achieved - value) / value, rel=1e-12, abs=0.0), name
    assert cal.loc["count[educ == 0]", "rel_error"] == -1.0 and cal.loc["sum(inc)[educ == 0]", "rel_error"] == -1.0
    scores = rep.scores.set_index(["metric", "variable"])["value"]
    assert scores[("calibration_rel_error", "count[educ == 0]")] == 1.0
    assert scores[("calibration_rel_error", "count[educ == 2]")] == pytest.approx(
        abs(w[e == 2].sum() - 150.0) / 150.0, rel=1e-12)


@pytest.mark.parametrize("target, match", [
    (Target(3.0, filters={"region": 1}), "uses column 'region', which is not in the records"),
    (Target(3.0, "sum", "label", filters={"educ": 1}), "variable 'label' must be numeric"),
    (Target(3.0, filters="inc > 10 & inc < 5"), "exclude each other"),
])
def test_evaluate_still_refuses_targets_that_are_bad_input(target, match):
    """An unknown column, a variable that is not numeric and conditions that exclude each other stay errors."""
    real, synth = _frames()
    real["label"], synth["label"] = "a", "a"
    with pytest.raises(DataValidationError, match=match):
        evaluate(real, synth, synthetic_weight_col="w", targets=Targets([target]), pmse=False, progress=False)


def test_pipeline_evaluate_stage_writes_the_report_when_a_rare_cell_is_missing_from_its_sample(tmp_path, cps1):
    """Before: the evaluate stage raised "no record has educ == 0" and wrote no scores.csv or report.html."""
    cps1.head(2000).to_csv(tmp_path / "cps.csv", index=False)
    (tmp_path / "te.csv").write_text("filter,value\neduc == 0,3\neduc > 0,1997\n")
    max_rows = 100
    config = {"_base": str(tmp_path), "output": "out", "seed": 0,
              "sources": [{"name": "cps", "path": "cps.csv"}],
              "model": {"targets": ["re74", "re78"], "conditions": ["age", "educ"], "categorical": ["educ"],
                        "epochs": 1},
              "generate": {"n": 6000}, "calibrate": {"targets": "te.csv"},
              "evaluate": {"pmse": False, "max_rows": max_rows}}
    run_pipeline(config, progress=False)
    out = tmp_path / "out"
    assert (out / "report.html").is_file()
    population = pd.read_parquet(out / "calibrated.parquet")
    assert (population["educ"] == 0).any()  # the cell is in the population, met ...
    assert population.loc[population["educ"] == 0, "weight"].sum() == pytest.approx(3.0, rel=1e-8)
    # ... and missing from the sample the stage scores (drawn as _read_population draws it)
    sample = population.sample(max_rows, random_state=int_seed(named_child(0, "evaluate")))
    assert not (sample["educ"] == 0).any()
    achieved = sample["weight"].sum() * len(population) / max_rows
    rare, common = Targets.from_csv(tmp_path / "te.csv").names
    scores = pd.read_csv(out / "scores.csv").set_index(["metric", "variable"])["value"]
    assert scores[("calibration_rel_error", rare)] == 1.0
    assert scores[("calibration_rel_error", common)] == pytest.approx(abs(achieved - 1997) / 1997, rel=1e-9)
