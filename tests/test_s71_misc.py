"""FusionResult.imputations() of a single imputation is a copy, as every imputation of several is."""

import numpy as np
import pandas as pd

from microplex.fusion import Source, fuse

FAST = {"epochs": 1, "hidden_features": (8,), "transforms": 1}


def _frames(n: int = 200, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=2 * n)
    a = pd.DataFrame({"x": x[:n], "y": x[:n] + rng.normal(size=n)})
    b = pd.DataFrame({"x": x[n:], "z": x[n:] + rng.normal(size=n)})
    return a, b


def test_editing_the_single_imputation_leaves_the_result_data_as_it_is():
    a, b = _frames()
    result = fuse([Source(a, "a"), Source(b, "b")], base="a", n_imputations=1, synthesizer_params=FAST, seed=1)
    before = result.data.copy()
    (part,) = result.imputations()
    part["z"] = 0.0  # before: this wrote into result.data (the same object)
    pd.testing.assert_frame_equal(result.data, before)
    assert part is not result.data


# -- the pipeline's calibrate stage writes a population: no negative weights -------------------------------------
import pytest  # noqa: E402

from microplex import DataValidationError  # noqa: E402
from microplex.datasets import load_dataset  # noqa: E402
from microplex.pipeline import run_pipeline  # noqa: E402


def _linear_config(tmp_path, generate: dict) -> dict:
    """A linear calibration whose crossed count margins need negative weights."""
    load_dataset("cps1").head(200)[["age", "marr", "nodeg", "re78"]].to_parquet(tmp_path / "train.parquet")
    # twice the unmarried (63 of 200 in the source), as many married (137), almost none without a degree: the
    # linear weights of the married without a degree go below 0 to net the others' out
    pd.DataFrame({"aggregate": "count", "variable": "", "filter": ["marr == 0", "marr == 1", "nodeg == 0", "nodeg == 1"],
                  "value": [126.0, 137.0, 262.0, 1.0]}).to_csv(tmp_path / "t.csv", index=False)
    return {"_base": str(tmp_path), "output": "out", "seed": 0, "sources": [{"name": "cps", "path": "train.parquet"}],
            "model": {"targets": ["re78"], "conditions": ["age", "marr", "nodeg"], "epochs": 1}, "generate": generate,
            "calibrate": {"targets": "t.csv", "method": "linear"}, "evaluate": {}}


@pytest.mark.parametrize("generate", [{"n": 50}, {"n": 150, "partition_by": ["marr"], "rows_per_file": 100}],
                         ids=["in-memory", "streamed"])
def test_a_linear_calibration_with_negative_weights_is_refused_before_the_population_is_written(tmp_path, generate):
    """Before: calibrated.parquet was written with 19 negative weights (lowest -5.08) and the run failed only at
    evaluate, naming an internal frame ("synthetic_df['weight'] has 19 negative weights")."""
    config = _linear_config(tmp_path, generate)
    with pytest.raises(DataValidationError, match=r"\[calibrate\] gave [0-9,]+ negative weights .*bounds"):
        run_pipeline(config, progress=False)
    out = tmp_path / "out"
    assert not any(p.name.startswith("calibrated") or ".calibrated" in p.name for p in out.iterdir())
    # with a lower bound of 0 the same targets are met by weights >= 0 (some of them 0)
    bounded = {k: v for k, v in config.items() if k != "evaluate"}
    run_pipeline({**bounded, "calibrate": {**config["calibrate"], "bounds": [0.0, 50.0]}}, progress=False)
    calibrated = pd.read_parquet(out / ("calibrated" if "partition_by" in generate else "calibrated.parquet"))
    assert (calibrated["weight"] >= 0).all() and calibrated["weight"].min() < 1e-9
    assert calibrated.loc[calibrated["nodeg"].astype(int) == 1, "weight"].sum() == pytest.approx(1.0, rel=1e-6)


# -- logit with a negative lower bound reaches negative weights (R survey's calfun="logit", bounds=c(-0.5, 3)) ----
def test_logit_with_a_negative_lower_bound_reaches_a_total_only_negative_weights_reach():
    """Before: refused as 'cannot be reached by any non-negative weights'; R survey converges (194 negative weights,
    the same weights to 5e-13: /work/diag/s71/rsurvey/bug_logit_negative_lower.py)."""
    from microplex.calibration import Calibrator, Target, Targets

    df = load_dataset("cps1").head(400).reset_index(drop=True)
    df["d"] = 10.0
    df["g"] = df["re75"] - 2000.0  # values of both signs
    want = float(-0.1 * (df["d"] * df["g"].clip(lower=0)).sum())
    targets = Targets([Target(4000.0), Target(want, aggregate="sum", variable="g", filters="g > 0")])
    fit = Calibrator("logit", bounds=(-0.5, 3), tol=1e-12).fit(df, targets, weight_col="d")
    w = np.asarray(fit.weights)
    assert w.sum() == pytest.approx(4000.0, rel=1e-10)
    assert (w * df["g"].clip(lower=0)).sum() == pytest.approx(want, rel=1e-10)
    g = w / df["d"].to_numpy()
    assert (g > -0.5).all() and (g < 3).all() and (w < 0).sum() > 100
