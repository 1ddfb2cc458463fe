"""Session 57: a target's values that only records of weight 0 hold are outside the population the model learns.

They were counted in the continuous part of a target: a variable whose records of positive weight all sit on point
masses, or whose negative values all have weight 0, was refused ("... all have weight 0; give some of them a
positive weight or declare them point masses"), while the same records without those of weight 0 fitted; and a
value of weight 0 far beyond the others stretched a segment's bounds and tails. The continuous part is now fitted to
the values of positive weight; records of weight 0 whose value no fitted state holds are left out of the fit, as
those of a category only records of weight 0 hold.
"""

import warnings

import numpy as np
import pandas as pd
import pytest

from microplex import DataValidationError, Synthesizer
from microplex.synthesis import VariableSpec

FAST = dict(epochs=2, verbose=False, hidden_features=(8,), transforms=1)


def _frame(n: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"x": rng.normal(size=n), "y": rng.choice([0.0, 100.0], n), "z": rng.lognormal(size=n),
                         "w": rng.uniform(0.5, 2.0, n)})


def _fit(df: pd.DataFrame, **params) -> Synthesizer:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Synthesizer(["y", "z"], ["x"], **FAST, **params).fit(df, weight_col="w", seed=0)


def _with_zero_weight(df: pd.DataFrame, column: str, values: list[float]) -> pd.DataFrame:
    extra = df.iloc[: len(values)].copy()
    extra[column] = values
    extra["w"] = 0.0
    return pd.concat([df, extra], ignore_index=True)


def test_weighted_values_all_on_point_masses_fit_as_without_the_records_of_weight_zero():
    df = _frame()
    alone = _fit(df)
    assert alone.encoders_["y"].point_masses == [0.0, 100.0] and not alone.encoders_["y"].segments
    with_zero = _fit(_with_zero_weight(df, "y", [57.2, 13.1, 8.8, 91.0, 3.3]))
    assert with_zero.encoders_["y"].to_dict() == alone.encoders_["y"].to_dict()
    pd.testing.assert_frame_equal(with_zero.sample(500, seed=1), alone.sample(500, seed=1))
    assert set(with_zero.sample(500, seed=1)["y"]) == {0.0, 100.0}


def test_negative_values_of_weight_zero_make_no_segment():
    df = _frame()
    df["y"] = np.where(df.index % 3 == 0, 0.0, np.random.default_rng(1).lognormal(3, 1, len(df)))
    alone = _fit(df)
    with_zero = _fit(_with_zero_weight(df, "y", [-5.0, -120.5, -3.25]))
    assert with_zero.encoders_["y"].to_dict() == alone.encoders_["y"].to_dict()
    assert len(with_zero.encoders_["y"].segments) == 1
    drawn = with_zero.sample(2000, seed=1)
    assert (drawn["y"] >= 0).all()
    pd.testing.assert_frame_equal(drawn, alone.sample(2000, seed=1))


def test_a_far_value_of_weight_zero_does_not_stretch_the_segment():
    df = _frame()
    alone = _fit(df)
    with_zero = _fit(_with_zero_weight(df, "z", [1e9]))
    assert with_zero.encoders_["z"].to_dict() == alone.encoders_["z"].to_dict()


def test_a_declared_heap_counts_the_records_of_positive_weight():
    df = _frame()
    df.loc[:29, "z"] = 5.0
    df.loc[:14, "w"] = 0.0  # 15 of the 30 records at 5.0 are outside the population
    with pytest.raises(DataValidationError, match=r"declared heap 5\.0 is held by 15 training records of positive"):
        _fit(df, schema={"z": VariableSpec(heaps=(5.0,), point_masses=())}, min_heap_count=20)
    assert _fit(df, schema={"z": VariableSpec(heaps=(5.0,), point_masses=())}, min_heap_count=15).encoders_["z"].heaps == [5.0]


def test_a_validation_split_of_records_of_weight_zero_only_is_not_drawn():
    # Found by the synthesis-invariants property: 20 records, 4 of weight 0; the validation split (2 records) was
    # drawn among all records and held out 2 of weight 0, and the fit refused the clean frame ("Every record with
    # positive weight fell outside the validation split"). It is now drawn among the records of positive weight.
    money = [6300, 5500, 4400, 13600, 22300, 4000, 6200, 1300, 11900, 6800, 5100, 8300, 21500, 3400, 18500, 1300,
             20100, 3100, 10800, 9400]
    w = [0.0, 1.373905, 0.0, 3.826193, 0.0, 3.69603, 2.641733, 1.803507, 4.771854, 3.48737, 4.254325, 4.375488,
         1.750224, 4.956487, 4.649491, 3.481694, 2.955238, 2.189124, 4.274725, 0.0]
    df = pd.DataFrame({"money": np.asarray(money, dtype=float), "w": w})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        synth = Synthesizer(["money"], [], epochs=1, hidden_features=(4,), transforms=1, verbose=False)
        synth.fit(df, weight_col="w", seed=0)
    drawn = synth.sample(50, seed=2)
    assert np.isfinite(synth.log_prob(drawn)).all() and (drawn["money"] > 0).all()
