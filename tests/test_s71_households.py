"""household_summary's modified OECD scale (EU-SILC's eqSS) for households of every age mix."""

import numpy as np
import pandas as pd
import pytest

from microplex.households.diagnostics import household_summary


def _oecd(ages: list[float], cut: float = 14) -> float:
    """The modified OECD scale written out member by member: 1 for the first (an older member when there is one),
    0.5 for each further member aged ``cut`` or more, 0.3 for each further younger one."""
    ordered = sorted(ages, reverse=True)
    return 1.0 + sum(0.5 if a >= cut else 0.3 for a in ordered[1:])


@pytest.mark.parametrize("ages", [[10], [12, 9], [13, 13, 2], [40], [40, 10], [40, 35, 10, 3], [14, 13]])
def test_household_summary_scale_is_the_modified_oecd_scale(ages):
    persons = pd.DataFrame({"h": 1, "age": ages, "inc": [120.0] + [0.0] * (len(ages) - 1)})
    row = household_summary(persons, "h", "age", person_income=["inc"]).iloc[0]
    assert row["eq_scale"] == pytest.approx(_oecd(ages), abs=1e-12)
    assert row["eq_income"] == pytest.approx(120.0 / _oecd(ages), rel=1e-12)


def test_household_of_one_child_is_not_equivalized_below_its_income():
    persons = pd.DataFrame({"h": [1, 2, 2], "age": [10, 12, 9], "inc": [100.0, 50.0, 80.0]})
    out = household_summary(persons, "h", "age", person_income=["inc"])
    np.testing.assert_allclose(out["eq_scale"].to_numpy(), [1.0, 1.3])  # before: 1.3 and 1.6
    np.testing.assert_allclose(out["eq_income"].to_numpy(), [100.0, 130.0 / 1.3])
