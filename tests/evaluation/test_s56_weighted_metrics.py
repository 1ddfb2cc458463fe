"""Records of weight 0 are outside the population the metrics compare (found by
``tests/property/test_weighted_metrics.py``, session 56: integer weights must score as repeated records)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from microplex.evaluation import metrics as M


def test_a_zero_that_only_records_of_weight_0_hold_is_no_point_mass():
    shares = M.point_mass_shares([0.0, 5.0, 5.0], [0.0, 1.0, 1.0])
    assert 0.0 not in shares.index
    assert shares.to_dict() == {5.0: 1.0}
    errors = M.point_mass_errors([0.0, 5.0], [3.0, 7.0], [0.0, 1.0])
    pd.testing.assert_frame_equal(errors, M.point_mass_errors([5.0], [3.0, 7.0]))


def test_binning_counts_the_distinct_values_of_positive_weight():
    # eleven distinct values, ten of them on records of weight 0: the population holds one value, which is not
    # binned (its category differs from the synthetic 0); before, the weight-0 values made it binned and the
    # two fell in one bin (similarity 1 instead of 0)
    real = pd.DataFrame({"x": [0.0] * 11, "y": [0.0, 1, 2, 3, 4, 5, 1.5, 0.5, 0.25, -1.0, 6.0]})
    w = np.zeros(11)
    w[9] = 1.0
    other = pd.DataFrame({"x": [0.0], "y": [0.0]})
    weighted = M.contingency_similarity(real, other, ["x", "y"], w)
    repeated = M.contingency_similarity(real.iloc[[9]], other, ["x", "y"])
    assert weighted == repeated == 0.0


def test_a_correlation_is_scaled_by_the_records_of_positive_weight():
    # two records of weight: (1, 1.7e-240) and (0, 0), correlation 1; a record of weight 0 with y = 1 set the
    # scale of y, its values underflowed and the correlation read as 0 (a constant column)
    frame = pd.DataFrame({"x": [0.0, 1.0, 0.0, 0.0], "y": [0.0, 1.67023e-240, 0.0, 1.0]})
    w = np.array([0.0, 1.0, 1.0, 0.0])
    assert M.weighted_corr(frame, w).loc["x", "y"] == 1.0
    assert M.weighted_corr(frame.iloc[[1, 2]]).loc["x", "y"] == 1.0
