"""Filters on float32 columns (session 60) read their values and bounds as the column holds them.

A float32 column holds 16.6 as 16.600000381469727. The design compared it in float64 with the filter's 16.6:
``income <= 16.6`` left out (and ``income > 16.6`` took in) the 11 records at 16.6 of the real workinghours
incomes in $1,000s, a target calibrated silently on other records than pandas' ``s <= 16.6`` gives (pandas
compares a float32 column with a Python float in float32); and
``income == 24.1`` found "no record", where pandas finds 1,714. Bounds and values are now read as the column
holds them (its dtype: float32, pandas' Float32, Arrow's float), in the one place every reader uses
(``range_mask``, ``lookup_values``: Calibrator, SparseCalibrator, rake_frame/rake_dataset, evaluate's targets,
the consistency check).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from microplex import Calibrator, SparseCalibrator, Target, Targets
from microplex.datasets import load_dataset
from microplex.evaluation import evaluate
from microplex.scale import rake_frame


@pytest.fixture(scope="module")
def tenths() -> pd.DataFrame:
    df = load_dataset("workinghours")
    return df.assign(income=np.minimum(df["income"] / 10.0, 24.1), w=1.0 + (np.arange(len(df)) % 3))


FILTERS = ["income <= 16.6", "income > 16.6", "income < 24.1", "income == 24.1", "income >= 24.1"]


@pytest.mark.parametrize("dtype", ["float32", "Float32", "float[pyarrow]"])
def test_a_filter_selects_what_pandas_selects(tenths, dtype):
    """The bounds and values as the column holds them: numpy's float32 and pandas' Float32 compare so with a
    Python float (NEP 50); pandas' Arrow float compares in float64 and finds no record at 24.1 (microplex reads
    the column's precision from its dtype, whatever the backend)."""
    data = tenths.astype({"income": dtype})
    s = pd.Series(data["income"].to_numpy(np.float32))
    f16, f24 = np.float32(16.6), np.float32(24.1)
    expected = {"income <= 16.6": s <= f16, "income > 16.6": s > f16, "income < 24.1": s < f24,
                "income == 24.1": s == f24, "income >= 24.1": s >= f24}
    assert int(expected["income == 24.1"].sum()) == 1714
    assert int(expected["income <= 16.6"].sum()) == int((tenths["income"] <= 16.6).sum())  # the float64 twin's
    if dtype != "float[pyarrow]":
        assert ((data["income"] <= 16.6) == expected["income <= 16.6"]).all() and (data["income"] == 24.1).sum() == 1714
    table = pd.DataFrame({"filter": FILTERS, "aggregate": "count", "value": 1.0})
    targets = Targets.from_frame(table.assign(value=[float(data.loc[expected[f].to_numpy(bool), "w"].sum()) * 1.1
                                                     for f in FILTERS]))
    cal = Calibrator().fit(data, targets, weight_col="w")
    initial = cal.report()["initial"].to_numpy()
    for f, got in zip(FILTERS, initial, strict=True):
        assert got == pytest.approx(float(data.loc[expected[f].to_numpy(bool), "w"].sum()), rel=1e-12), f
    assert cal.summary["max_rel_error"] < 1e-8


def test_equality_and_margins_on_a_float32_column(tenths):
    data = tenths.astype({"income": "float32"})
    at = int((data["income"] == 24.1).sum())
    targets = Targets([Target(value=2000.0, filters={"income": 24.1}), Target(value=3000.0, filters={"owned": 1})])
    w = Calibrator().fit(data, targets, weight_col="w").weights
    assert float(w[data["income"] == 24.1].sum()) == pytest.approx(2000.0)
    sparse = SparseCalibrator(max_records=200).fit(data, targets, weight_col="w").weights
    assert float(sparse[data["income"] == 24.1].sum()) == pytest.approx(2000.0, rel=1e-6)
    # a margin keyed by the decimal: rake_frame reads it as the column holds it
    margin = pd.Series({24.1: 2000.0, 16.6: 50.0})
    top = data.assign(band=np.where(data["income"] == 24.1, data["income"], np.float32(16.6)).astype("float32"))
    raked = rake_frame(top, {"band": margin}, weight_col="w")
    assert raked.report["achieved"].to_numpy() == pytest.approx([2000.0, 50.0])
    # evaluate's calibration rows: a count target keyed by (column, value)
    report = evaluate(data, data.drop(columns="w").assign(w2=1.0), weight_col="w", synthetic_weight_col="w2",
                      targets={("income", 24.1): float(at)}, pmse=False, progress=False)
    assert report.calibration["achieved"].tolist() == [float(at)]


def test_a_range_filter_keeps_the_records_at_its_bound(tenths):
    """Before: no error, the targets simply covered other records (``<= 16.6``: initial weighted count 2,049
    against the float64 twin's 2,069; ``> 16.6``: 4,714 against 4,694)."""
    data = tenths.astype({"income": "float32"})
    targets = Targets.from_frame(pd.DataFrame({"filter": ["income <= 16.6", "income > 16.6"], "aggregate": "count",
                                               "value": [2500.0, 4200.0]}))
    twin = Calibrator().fit(tenths, targets, weight_col="w")
    cal = Calibrator().fit(data, targets, weight_col="w")
    pd.testing.assert_series_equal(cal.report()["initial"], twin.report()["initial"])
    np.testing.assert_allclose(cal.weights, twin.weights, rtol=1e-12)
