"""Targets on text columns of range labels (R's ``cut()`` bands), and the sparse summary's common keys.

Both failed before their fix: an equality target on a text column of labels such as ``'(17, 39]'`` was read as a
numeric range and refused ("range filter on 'ag' needs a numeric column"), from margins, filter dicts and targets
files alike; ``SparseCalibrator``'s summary lacked ``converged``, ``n_iter``, ``n_units``, ``n_targets``, ``soft``
(``calibrator.SUMMARY_KEYS``), so ``summary["converged"]`` was a bare ``KeyError``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from microplex.datasets import load_dataset
from microplex import Calibrator, SparseCalibrator, Targets
from microplex._errors import DataValidationError
from microplex.calibration import Target
from microplex.calibration.calibrator import SUMMARY_KEYS



def _bands() -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(0)
    age = rng.integers(0, 90, 3000)
    df = pd.DataFrame({"ag": pd.cut(age, [-2, 17, 39, 64, 200]).astype(str), "w": rng.uniform(0.5, 2.0, 3000)})
    totals = df.groupby("ag")["w"].sum() * 1.05 + np.arange(4) * 10.0
    return df, totals


@pytest.mark.parametrize("how", ["margins", "dict", "csv", "r_labels"])
def test_equality_targets_on_text_range_labels_are_met(how, tmp_path):
    df, totals = _bands()
    if how == "r_labels":  # R writes the bands without the space: "(17,39]"; the targets file with it
        df = df.assign(ag=df["ag"].str.replace(", ", ",", regex=False))
    if how == "margins":
        targets = Targets.from_margins({"ag": totals})
    elif how == "dict":
        targets = Targets([Target(float(v), filters={"ag": k}) for k, v in totals.items()])
    else:
        path = tmp_path / "t.csv"
        pd.DataFrame({"ag": totals.index, "value": totals.to_numpy()}).to_csv(path, index=False)
        targets = Targets.from_csv(path)
    weights = Calibrator().fit(df, targets, "w").weights
    got = df.assign(w=weights.to_numpy()).groupby("ag")["w"].sum()
    # pandas' own totals, label by label (the R labels map to the same bands)
    want = totals.rename(lambda k: k.replace(", ", ",")) if how == "r_labels" else totals
    np.testing.assert_allclose(got.reindex(want.index).to_numpy(), want.to_numpy(), rtol=1e-10)


def test_a_range_on_text_without_range_labels_is_refused():
    df = pd.DataFrame({"state": ["a", "b", "c"], "w": 1.0})
    with pytest.raises(DataValidationError, match=r"range filter on 'state' needs a numeric column, or text labels "
                                                  r"written as ranges such as '\(17, 39\]'\. Got text values such as"):
        Calibrator().fit(df, Targets([Target(2.0, filters={"state": "[1, 2)"})]), "w")


def test_a_range_label_no_record_holds_is_refused_as_an_absent_category():
    df = pd.DataFrame({"ag": ["(17,39]", "(39,64]"], "w": 1.0})
    with pytest.raises(DataValidationError, match=r"no record has ag in \[1, 2\)"):
        Calibrator().fit(df, Targets([Target(2.0, filters={"ag": "[1, 2)"})]), "w")


def test_numeric_columns_still_read_range_text_as_ranges():
    df = pd.DataFrame({"age": [10, 20, 30, 40], "w": 1.0})
    targets = Targets([Target(6.0, filters={"age": "[15, 35)"}), Target(8.0)])
    weights = Calibrator().fit(df, targets, "w").weights
    # ages 20 and 30 carry 6 between them, the other two the remaining 2
    np.testing.assert_allclose(weights.to_numpy(), [1.0, 3.0, 3.0, 1.0], rtol=1e-10)


def test_sparse_summary_has_every_calibration_results_key():
    df = load_dataset("census2000")
    df = df[df["state"].isin(["Texas", "Ohio", "Maine"])].reset_index(drop=True).assign(w=1.0)
    targets = Targets.from_margins({("state", "educ"): df.groupby(["state", "educ"])["w"].sum() * 1.03})
    met = SparseCalibrator(max_records=400).fit(df, targets, "w")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        short = SparseCalibrator(max_records=10, force=True).fit(df, targets, "w")  # too few: kept under force
    for sc, converged in ((met, True), (short, False)):
        s = sc.summary
        assert set(SUMMARY_KEYS) <= set(s)
        assert s["converged"] is converged and s["within_tolerance"] is converged
        assert s["n_units"] == len(df) and s["n_targets"] == len(targets) and s["soft"] is False
        kept = sc.weights.to_numpy() > 0
        ratio = sc.weights.to_numpy()[kept] / sc.result_.initial_weights.to_numpy()[kept]
        assert (s["min_ratio"], s["max_ratio"]) == (pytest.approx(ratio.min()), pytest.approx(ratio.max()))
        assert s["n_negative"] == 0 and s["n_iter"] is None
