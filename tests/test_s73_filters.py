"""Calibration filters and condition files (session 73).

A set filter of numbers with a member no record holds (``educ in {12, 31}``, a typo for 13 on a column of codes 0 to
24) put the whole total on 12 without a word; a set of numbers is a band of codes (``educ in {9, 10, 11, 12}``), so a
member is refused only where it falls in no band of the set's held members. The equality's refusal of a text value
no record holds now gives the Unicode hint the set's refusal gives. ``read_table(text=...)`` reads JSON and Excel
columns as the text they hold (pandas turned the strings ``"1"``, ``"2"`` into numbers, which a model of text
categories refused).
"""

from __future__ import annotations

import json
import unicodedata

import numpy as np
import pandas as pd
import pytest

from microplex import Calibrator, DataValidationError, SparseCalibrator
from microplex.calibration import Target, Targets
from microplex.io import read_table

NFD = unicodedata.normalize("NFD", "Zürich")


def _people(n: int = 500) -> pd.DataFrame:
    """Education codes 0 to 24 but 13 and 20 (which no record holds), and cities, Zürich written in NFD."""
    codes = np.array([c for c in range(25) if c not in (13, 20)])
    rng = np.random.default_rng(1)
    return pd.DataFrame({"w": np.ones(n), "educ": codes[np.arange(n) % len(codes)],
                         "city": rng.choice([NFD, "Bern", "Genève"], n)})


@pytest.mark.parametrize("estimator", [Calibrator, SparseCalibrator])
def test_a_number_of_a_set_no_record_holds_is_refused_naming_the_nearest_values(estimator):
    df = _people()
    assert 31 not in set(df["educ"])
    # before: converged, 12's 22 records weighted to 100 (31 a typo for 13, or 21), no warning
    with pytest.raises(DataValidationError, match=(
            r"Target 'hs' has value 100 but its filter on 'educ' lists \[31\], which no record has; .*"
            r"The nearest values the records hold to 31 are 24, which the set leaves out\.")):
        estimator().fit(df, Targets([Target(100.0, filters={"educ": {12, 31}}, name="hs")]), weight_col="w")
    # a gap among held codes that the set does not span: 20 lies between 19 and 21, which the set leaves out
    with pytest.raises(DataValidationError, match=(
            r"its filter on 'educ' lists \[20\], which no record has; .*to 20 are 19, 21, which the set")):
        estimator().fit(df, Targets([Target(100.0, filters={"educ": {12, 20}}, name="x")]), weight_col="w")


def test_numbers_no_record_holds_are_named_in_one_message_with_the_targets_file_filter():
    df = _people()
    targets = Targets.from_frame(pd.DataFrame({"value": [80.0], "filter": ["educ in {5, 20, 31, 40}"]}))
    with pytest.raises(DataValidationError, match=r"lists \[20, 31, 40\], which no record has") as info:
        Calibrator().fit(df, targets, weight_col="w")
    assert "to 20 are 19, 21," in str(info.value) and "to 31 are 24," in str(info.value)
    assert "to 40 are 24," in str(info.value) and "to 5 " not in str(info.value)


@pytest.mark.parametrize("estimator", [Calibrator, SparseCalibrator])
def test_a_band_of_codes_accepts_the_codes_within_it_that_no_record_holds(estimator):
    df = _people()
    held = df["educ"].isin([11, 12, 14]).to_numpy()
    # 13 lies between the set's 12 and 14; 25 and 26 above the records' highest value, the set's 24; -2 and -1
    # below their lowest, the set's 0; 19.5 between the set's 19 and 21 (no record holds 20)
    cases = [({11, 12, 13, 14}, held), ({22, 23, 24, 25, 26}, df["educ"].isin([22, 23, 24]).to_numpy()),
             ({-2, -1, 0, 1}, df["educ"].isin([0, 1]).to_numpy()), ({19.5, 19, 21}, df["educ"].isin([19, 21]).to_numpy())]
    for members, hit in cases:
        result = estimator().fit(df, Targets([Target(100.0, filters={"educ": members})]), weight_col="w")
        assert np.asarray(result.weights)[hit].sum() == pytest.approx(100.0, rel=1e-6), members


def test_a_set_of_numbers_none_of_which_a_record_holds_is_refused():
    df = _people()
    with pytest.raises(DataValidationError, match=r"its filter on 'educ' lists \[13, 20\], which no record has"):
        Calibrator().fit(df, Targets([Target(10.0, filters={"educ": {13, 20}})]), weight_col="w")


def test_a_zero_target_and_an_evaluation_accept_numbers_no_record_holds():
    from microplex.calibration.design import unit_design
    from microplex.calibration.feasibility import achieved_values

    df = _people()
    zero = Targets([Target(0.0, filters={"educ": {31}}), Target(500.0)])
    assert np.asarray(Calibrator().fit(df, zero, weight_col="w").weights).sum() == pytest.approx(500.0)
    measured = achieved_values(unit_design(df, Targets([Target(1.0, filters={"educ": {12, 31}})])),
                               df["w"].to_numpy())
    assert measured.tolist() == [float((df["educ"] == 12).sum())]


@pytest.mark.parametrize("estimator", [Calibrator, SparseCalibrator])
def test_an_equality_on_a_label_in_another_unicode_form_names_the_form(estimator):
    df = _people()
    targets = Targets([Target(150.0, filters={"city": "Zürich"}, name="z"), Target(500.0)])
    # before: "Target 'z' has value 150 but no record has city == 'Zürich'; ..." and no word of the NFD form
    with pytest.raises(DataValidationError, match=(
            r"Target 'z' has value 150 but no record has city == 'Zürich'; .*"
            r"'Zürich' is written in another Unicode form in the records \(they hold 'Zu\\u0308rich', the filter "
            r"'Z\\xfcrich'\): normalize both, e\.g\. df\['city'\] = df\['city'\]\.str\.normalize\('NFC'\)")):
        estimator().fit(df, targets, weight_col="w")
    # a plain typo gets no such hint
    with pytest.raises(DataValidationError, match=r"no record has city == 'Bernn'") as info:
        estimator().fit(df, Targets([Target(150.0, filters={"city": "Bernn"})]), weight_col="w")
    assert "Unicode" not in str(info.value)


@pytest.mark.parametrize("suffix", [".json", ".xlsx"])
def test_read_table_reads_text_columns_of_json_and_excel_as_written(tmp_path, suffix):
    if suffix == ".xlsx":
        pytest.importorskip("openpyxl")
    frame = pd.DataFrame({"size": ["1", "2", "2", None], "county": ["013", "245", "100", "007"],
                          "age": [30, 41, 52, 63]})
    path = tmp_path / f"c{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps(frame.to_dict(orient="records")))
    else:
        frame.to_excel(path, index=False)
    plain = read_table(path)
    assert pd.api.types.is_numeric_dtype(plain["size"])  # pandas' reading: the strings "1", "2" as numbers
    out = read_table(path, text=["size", "county", "absent"])
    # before: size [1.0, 2.0, 2.0, nan], which a model of text categories refused ("the types differ")
    assert out["size"].tolist()[:3] == ["1", "2", "2"] and pd.isna(out["size"].iloc[3])
    assert out["county"].tolist() == ["013", "245", "100", "007"]
    assert out["age"].tolist() == [30, 41, 52, 63]


def test_read_table_text_of_excel_numbers_is_their_text(tmp_path):
    pytest.importorskip("openpyxl")
    path = tmp_path / "c.xlsx"
    pd.DataFrame({"size": [1, 2, 3.5], "flag": [True, False, True]}).to_excel(path, index=False)
    out = read_table(path, text=["size"])
    assert out["size"].tolist() == ["1", "2", "3.5"]
    assert out["flag"].tolist() == [True, False, True]


def test_read_table_text_of_json_numbers_is_their_text(tmp_path):
    path = tmp_path / "c.json"
    path.write_text('[{"size": 1, "k": "3+"}, {"size": 2.5, "k": 2}, {"size": null, "k": "1"}]')
    out = read_table(path, text=["size", "k"])
    assert out["size"].tolist()[:2] == ["1", "2.5"] and pd.isna(out["size"].iloc[2])
    assert out["k"].tolist() == ["3+", "2", "1"]
