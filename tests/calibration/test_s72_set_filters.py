"""A set filter with a member no record holds (session 72).

``Target(250, filters={"city": {"Zürich", "Bern"}})`` on records whose "Zürich" is written in Unicode NFD (as files
exported on macOS write it) converged with all 250 on Bern (95 records weighted to 250.0, Zürich kept 90.0), while
``city == "Zürich"`` was refused ("no record has ..."); a typo (``r in {'north', 'sout'}``) put the whole total on
north. The member that matches no record is now refused as the equality's absent category is, naming the target and
the members, and the Unicode form that would match.
"""

from __future__ import annotations

import unicodedata

import numpy as np
import pandas as pd
import pytest

from microplex import Calibrator, DataValidationError, SparseCalibrator
from microplex.calibration import Target, Targets
from microplex.scale import rake_dataset

NFD = unicodedata.normalize("NFD", "Zürich")


def _cities(n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"w": np.ones(n), "city": rng.choice([NFD, "Bern", "Genève"], n),
                         "region": rng.choice(["north", "south", "east"], n), "y": rng.normal(10, 1, n)})


@pytest.mark.parametrize("estimator", [Calibrator, SparseCalibrator])
def test_a_set_member_in_another_unicode_form_is_refused_naming_the_form(estimator):
    df = _cities()
    assert "Zürich" not in set(df["city"]) and NFD in set(df["city"])
    targets = Targets([Target(250.0, filters={"city": {"Zürich", "Bern"}}, name="zb"),
                       Target(50.0, filters={"city": "Genève"})])
    # before: converged, Bern's 95 records weighted to 250.0, Zürich's 90 kept 90.0
    with pytest.raises(DataValidationError, match=(
            r"Target 'zb' has value 250 but its filter on 'city' lists \['Zürich'\], which no record has; .*"
            r"'Zürich' is written in another Unicode form in the records \(they hold 'Zu\\u0308rich', the filter "
            r"'Z\\xfcrich'\): normalize both, e\.g\. df\['city'\] = df\['city'\]\.str\.normalize\('NFC'\)")):
        estimator().fit(df, targets, weight_col="w")
    # the column normalized: Zürich and Bern share the 250
    fixed = df.assign(city=df["city"].str.normalize("NFC"))
    result = estimator().fit(fixed, targets, weight_col="w")
    w = np.asarray(result.weights)
    assert w[fixed["city"].isin(["Zürich", "Bern"]).to_numpy()].sum() == pytest.approx(250.0, rel=1e-6)
    if estimator is Calibrator:  # the sparse subset may leave Zürich out
        assert w[(fixed["city"] == "Zürich").to_numpy()].sum() > 100.0  # before: 90 (its initial weight)


@pytest.mark.parametrize("estimator", [Calibrator, SparseCalibrator])
def test_a_set_member_with_a_typo_is_refused(estimator):
    df = _cities()
    targets = Targets.from_frame(pd.DataFrame({"value": [250.0], "filter": ["region in {'north', 'sout'}"]}))
    with pytest.raises(DataValidationError, match=(
            r"Target \"count\[region in .*\]\" has value 250 but its filter on 'region' lists \['sout'\], which no record has; "
            r"expected every label of a set to be held by some record")):
        estimator().fit(df, targets, weight_col="w")  # before: north's weight 250, south's unchanged, no warning


def test_a_mean_over_a_set_with_an_absent_member_is_refused():
    df = _cities()
    target = Target(10.5, "mean", "y", filters={"region": {"north", "sout"}}, name="m")
    with pytest.raises(DataValidationError, match=r"Target 'm' .*lists \['sout'\], which no record has"):
        Calibrator().fit(df, Targets([target]), weight_col="w")


def test_labels_no_record_holds_are_named_in_one_message():
    df = _cities()
    target = Target(100.0, filters={"region": {"north", "sout", "wst"}, "city": {"Bern", "Genf"}}, name="e")
    with pytest.raises(DataValidationError, match=(r"Target 'e' has value 100 but its filter on '(region|city)' lists "
                                                   r"\[('sout', 'wst'|'Genf')\] and its filter on '(region|city)' lists")):
        Calibrator().fit(df, Targets([target]), weight_col="w")


def test_a_band_of_numeric_codes_takes_its_total_on_the_codes_held():
    """A set of numbers is a band of codes (the geo demo's ``educ in {9, 10, 11, 12}``): a population that lacks
    some of them (a small state without code 9) is calibrated on the others, as before."""
    df = _cities().assign(educ=lambda d: np.arange(len(d)) % 3 + 12)  # 12, 13, 14
    result = Calibrator().fit(df, Targets([Target(100.0, filters={"educ": {9, 10, 12, 13}})]), weight_col="w")
    assert np.asarray(result.weights)[df["educ"].isin([12, 13]).to_numpy()].sum() == pytest.approx(100.0, rel=1e-9)


def test_a_zero_target_and_an_evaluation_accept_absent_members_as_an_equality_does():
    from microplex.calibration.design import unit_design
    from microplex.calibration.feasibility import achieved_values

    df = _cities()
    # a count of 0 is met whatever the set means (as an equality on an absent category of value 0)
    zero = Targets([Target(0.0, filters={"region": {"sout"}}), Target(0.0, filters={"city": "nowhere"}),
                    Target(300.0)])
    assert np.asarray(Calibrator().fit(df, zero, weight_col="w").weights).sum() == pytest.approx(300.0)
    # measuring given weights (education bands a sample lacks some codes of): the members held are counted
    measured = achieved_values(unit_design(df, Targets([Target(1.0, filters={"region": {"north", "sout"}})])),
                               df["w"].to_numpy())
    assert measured.tolist() == [float((df["region"] == "north").sum())]


def test_rake_dataset_refuses_set_filters(tmp_path):
    df = _cities()
    path = tmp_path / "pop.parquet"
    df.to_parquet(path)
    targets = Targets([Target(250.0, filters={"city": {"Zürich", "Bern"}})])
    with pytest.raises(DataValidationError, match=r"out-of-core calibration takes person count targets on equality"):
        rake_dataset(str(path), targets, weight_col="w")


def test_an_unused_category_in_a_set_is_refused():
    df = _cities().assign(g=pd.Categorical(["north", "east"] * 150, categories=["north", "south", "east"]))
    with pytest.raises(DataValidationError, match=r"filter on 'g' lists \['south'\], which no record has"):
        Calibrator().fit(df, Targets([Target(250.0, filters={"g": {"north", "south"}})]), weight_col="w")
