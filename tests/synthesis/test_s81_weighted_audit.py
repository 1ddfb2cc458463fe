"""Weighted synthesis: records of weight 0 are outside the population (session 81 audit).

Model files kept every training record's conditions, those of weight 0 too (``__weight__`` 0), though ``sample``
never draws them: 300 out-of-scope records were copied into the file. Now only the records of positive weight are.

acs12 (1,600 records aged 16 or more, weights of 1): its 656 persons not in the labour force have no commute time,
a structural zero of that cell. Five more of them with a commute of 30 minutes and weight 0 (out of scope, as a
survey's design weights mark them) used to count as holding the commute there: the rule went, and 10.2% of the
synthetic persons not in the labour force were drawn a commute time (0% without those five records).
"""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pandas as pd

from microplex import Synthesizer


def _status(n: int = 1500, seed: int = 0) -> pd.DataFrame:
    """``hours`` is missing for every ``unemployed`` record and given for every other; ``age`` from 0 to 79, with
    ``pay`` missing below 15 and given from 15 on; weights of 1."""
    rng = np.random.default_rng(seed)
    status = rng.choice(["employed", "unemployed", "retired"], size=n, p=[0.6, 0.15, 0.25])
    hours = np.where(status == "unemployed", np.nan, rng.normal(38, 6, size=n).round())
    age = rng.integers(0, 80, size=n).astype(float)
    pay = np.where(age < 15, np.nan, rng.lognormal(10, 0.5, size=n))
    return pd.DataFrame({"status": status, "age": age, "hours": hours, "pay": pay, "w": 1.0})


def _fit(data: pd.DataFrame) -> Synthesizer:
    return Synthesizer(["hours", "pay"], ["status", "age"], epochs=2, verbose=False).fit(data, weight_col="w", seed=0)


def test_records_of_weight_0_do_not_lift_a_structural_zero():
    data = _status()
    # out of scope: unemployed with hours, children with pay, all of weight 0
    extra = data.iloc[:6].assign(status="unemployed", hours=40.0, age=[3.0, 5.0, 8.0, 40.0, 41.0, 42.0], pay=1e4, w=0.0)
    with_zero = pd.concat([data, extra], ignore_index=True)
    alone, zero = _fit(data), _fit(with_zero)
    pd.testing.assert_frame_equal(zero.structural_zeros_, alone.structural_zeros_)
    drawn = zero.generate(pd.DataFrame({"status": ["unemployed"] * 2000 + ["employed"] * 2000,
                                        "age": [4.0] * 1000 + [40.0] * 3000}), seed=1)
    assert drawn["hours"].iloc[:2000].isna().all()  # the unemployed: never hours
    assert drawn["pay"].iloc[:1000].isna().all()  # below 15: never pay
    assert drawn["hours"].iloc[2000:].notna().all() and drawn["pay"].iloc[1000:].notna().all()


def test_the_model_file_keeps_no_record_of_weight_0(tmp_path):
    # eusilc-like case of the audit: 300 out-of-scope records (age 99, weight 0) beside 1,500 of weight 1 used to be
    # stored in conditions.parquet with __weight__ 0, a copy of every one of them in a file meant for release
    data = _status()
    extra = data.iloc[:300].assign(age=99.0, w=0.0)
    with_zero = pd.concat([data.iloc[:700], extra, data.iloc[700:]], ignore_index=True)
    model = _fit(with_zero)
    assert len(model.training_conditions_) == len(data) and (model.training_weights_ > 0).all()
    assert (model.training_conditions_["age"] != 99.0).all()
    path = tmp_path / "m.mpx"
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        stored = pd.read_parquet(io.BytesIO(archive.read("conditions.parquet")))
    assert len(stored) == len(data) and (stored["__weight__"] > 0).all() and (stored["age"] != 99.0).all()
    # the same conditions, in the same order, as the records of positive weight; sample draws as before
    pd.testing.assert_frame_equal(stored.drop(columns="__weight__"), data[["status", "age"]])
    loaded = Synthesizer.load(path)
    pd.testing.assert_frame_equal(loaded.sample(500, seed=3), model.sample(500, seed=3))
    assert (model.sample(2000, seed=4)["age"] != 99.0).all()
