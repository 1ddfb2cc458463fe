"""Weight columns. A boolean weight column is refused by every entry point that reads a weight column (one check,
``_stats.check_weight_dtype``): read as 1/0, it dropped the records marked False without a word."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from microplex import DataValidationError, Source, Synthesizer
from microplex.calibration import Calibrator, Target, Targets
from microplex.scale import rake_frame


@pytest.fixture
def frame():
    rng = np.random.default_rng(0)
    n = 200
    return pd.DataFrame({"g": rng.integers(0, 2, n), "y": rng.normal(size=n), "w": rng.random(n) < 0.5})


def test_synthesizer_refuses_a_boolean_weight_column(frame):
    with pytest.raises(DataValidationError, match=r"Weight column 'w' must be numeric. Got dtype bool instead"):
        Synthesizer(["y"], ["g"], epochs=1, verbose=False).fit(frame, weight_col="w", seed=0)


def test_calibration_refuses_a_boolean_weight_column(frame):
    targets = Targets([Target(100.0, filters={"g": 1}), Target(100.0, filters={"g": 0})])
    with pytest.raises(DataValidationError, match=r"Weight column 'w' must be numeric. Got dtype bool instead"):
        Calibrator().fit(frame, targets, weight_col="w")
    with pytest.raises(DataValidationError, match=r"Weight column 'w' must be numeric. Got dtype bool instead"):
        rake_frame(frame, {"g": {0: 100.0, 1: 100.0}}, weight_col="w")


def test_a_fusion_source_refuses_a_boolean_weight_column(frame):
    with pytest.raises(DataValidationError, match=r"weight column 'w' must be numeric. Got dtype bool instead"):
        Source(frame, "s", weight_col="w")


@pytest.mark.parametrize("dtype", ["float64", "int64", "float32", "uint8"])
def test_real_weight_dtypes_are_accepted(frame, dtype):
    frame = frame.assign(w=np.arange(1, len(frame) + 1).astype(dtype))
    synth = Synthesizer(["y"], ["g"], epochs=1, verbose=False).fit(frame, weight_col="w", seed=0)
    assert len(synth.sample(5, seed=0)) == 5


def test_a_condition_varying_only_on_records_of_weight_0_is_constant():
    """The model learns from the records of positive weight: a condition constant there is refused as
    constant (it was standardized by a fallback scale and its draws were garbage, mean -0.3 and min -28
    for z = x + N(0, 1) given x = 5, without a warning)."""
    rng = np.random.default_rng(0)
    x, w = rng.normal(0, 2, 400), np.ones(400)
    w[:40], x[40:] = 0.0, 1.0
    df = pd.DataFrame({"x": x, "z": x + rng.normal(size=400), "w": w})
    with pytest.raises(DataValidationError, match=r"'x' is constant on the records of positive weight \(1.0\)"):
        Synthesizer(["z"], ["x"], epochs=1, verbose=False).fit(df, weight_col="w", seed=0)


def test_the_training_range_of_a_condition_is_that_of_its_records_of_positive_weight():
    from microplex import ExtrapolationWarning

    rng = np.random.default_rng(0)
    x, w = rng.normal(0, 2, 400), np.ones(400)
    w[:40], x[:40] = 0.0, 50.0  # records of weight 0 far beyond the others
    df = pd.DataFrame({"x": x, "z": x + rng.normal(size=400), "w": w})
    synth = Synthesizer(["z"], ["x"], epochs=1, verbose=False).fit(df, weight_col="w", seed=0)
    with pytest.warns(ExtrapolationWarning, match=r"'x': 10 of 10 rows lie outside the training range"):
        synth.generate(pd.DataFrame({"x": [50.0] * 10}), seed=0)
