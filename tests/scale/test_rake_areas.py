"""rake_dataset(geography=): areas that do not nest, areas with no records and contradictory nested
totals raise before any solve, naming the areas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from microplex import DataValidationError
from microplex.scale import rake_dataset


@pytest.fixture(scope="module")
def nested(tmp_path_factory):
    rng = np.random.default_rng(0)
    n = 3000
    df = pd.DataFrame({"state": rng.integers(0, 3, n), "county": rng.integers(0, 4, n), "sex": rng.integers(0, 2, n)})
    df["county"] = df["state"] * 10 + df["county"]
    path = tmp_path_factory.mktemp("areas") / "pop"
    df.to_parquet(path, partition_cols=["state"], row_group_size=500)
    counties = df.groupby(["county", "sex"]).size().astype(float) * 1.2
    states = df.groupby(["state", "sex"]).size().astype(float) * 1.2
    return path, df, {("county", "sex"): counties.to_dict(), ("state", "sex"): states.to_dict()}


def test_consistent_nested_targets_pass_and_give_the_same_weights(nested):
    path, df, margins = nested
    for max_cells in (2_000_000, 0):
        checked = rake_dataset(path, margins, geography=["state", "county"], max_cells=max_cells)
        plain = rake_dataset(path, margins, max_cells=max_cells)
        frame = pd.read_parquet(path)
        np.testing.assert_allclose(checked.weights(frame), plain.weights(frame), rtol=1e-12)
        assert checked.n_passes == plain.n_passes + 1  # the pass that collects the areas


def test_contradictory_nested_totals_name_the_areas(nested):
    path, df, margins = nested
    states = dict(margins[("state", "sex")])
    states[(1, 0)] *= 1.3
    with pytest.raises(DataValidationError, match=r"contradict each other: count\[state == 1 & sex == 0\] = .* sum to"):
        rake_dataset(path, {**margins, ("state", "sex"): states}, geography=["state", "county"])


def test_areas_that_do_not_nest_are_named(nested, tmp_path):
    path, df, margins = nested
    moved = df.copy()
    moved.loc[moved.index[moved["county"] == 1][:5], "state"] = 2  # five records of county 1 (state 0) in state 2
    moved.to_parquet(tmp_path / "moved.parquet")
    with pytest.raises(DataValidationError, match=r"does not nest: 1 county areas .*county 1 lies in state \[0, 2\]"):
        rake_dataset(tmp_path / "moved.parquet", margins, geography=["state", "county"])


def test_an_area_with_no_records_is_named(nested):
    path, df, margins = nested
    counties = {**margins[("county", "sex")], (99, 0): 4.0}
    with pytest.raises(DataValidationError, match=r"1 targets name areas with no records: count\[county == 99 & sex == 0\]"):
        rake_dataset(path, {**margins, ("county", "sex"): counties}, geography=["state", "county"])


def test_bad_geography_is_refused(nested):
    path, df, margins = nested
    with pytest.raises(DataValidationError, match="geography columns \\['tract'\\]"):
        rake_dataset(path, margins, geography=["state", "tract"])
    with pytest.raises(DataValidationError, match="'geography'"):
        rake_dataset(path, margins, geography="state")
