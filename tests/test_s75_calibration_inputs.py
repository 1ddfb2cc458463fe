"""Session 75: calibration inputs found wrong by the s75 audit. Household ids ``1`` and ``'1'`` in one column made
two weighting units of one household; ``microplex calibrate --method linear`` wrote negative weights without a
word, which the pipeline's calibrate stage refuses; the weight message printed numpy reprs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from microplex import Calibrator, SparseCalibrator, Target
from microplex._errors import DataValidationError


def _households() -> pd.DataFrame:
    return pd.DataFrame({"hid": [1, 1, 2, 2, 3, 3, 4], "sex": ["f", "m", "f", "m", "f", "f", "m"],
                         "w": [10.0] * 6 + [20.0]})


_HH_TARGETS = [Target(50.0, entity="household"), Target(60.0, filters={"sex": "f"})]


@pytest.mark.parametrize("calibrator", [Calibrator, SparseCalibrator])
def test_household_ids_of_two_types_that_print_alike_are_refused(calibrator):
    """Before: one person of household 1 with the id '1' (a str among ints) made 5 weighting units of 4
    households; Calibrator gave household 1's two persons the weights 8.86 and 3.71 ({1: 8.86, '1': 3.71, 2: 8.86,
    3: 21.14, 4: 7.43}) and counted 5 households, SparseCalibrator also 5 units, without a word."""
    mixed = _households().astype({"hid": object})
    mixed.loc[1, "hid"] = "1"
    with pytest.raises(DataValidationError, match=r"Household ids 1, '1' of column 'hid' are different values of "
                                                  r"types \['int', 'str'\] that print alike: their records would "
                                                  r"be different households"):
        calibrator().fit(mixed, _HH_TARGETS, "w", household_col="hid")
    # 1 and 1.0 are one value: one household, the same weights as with int ids
    same = mixed.assign(hid=mixed["hid"].where(mixed["hid"] != "1", 1.0))
    ints = calibrator().fit(_households(), _HH_TARGETS, "w", household_col="hid")
    got = calibrator().fit(same, _HH_TARGETS, "w", household_col="hid")
    assert len(got.weights) == 4
    np.testing.assert_allclose(got.weights.to_numpy(), ints.weights.to_numpy(), rtol=1e-12)
