"""fuse's checks and auxiliary placeholders with number codes that ``synthesizer_params["schema"]`` declares
categorical (``VariableSpec(kind="categorical")``): such a code is a category, not a quantity."""

import warnings

import numpy as np
import pandas as pd
import pytest

from microplex import DataValidationError, Source, fuse
from microplex.synthesis.schema import VariableSpec

SCHEMA = {"region": VariableSpec(kind="categorical")}


def _fuse_quietly(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fuse(*args, **kwargs)


def _region_sources(base_regions, donor_regions, n=300, seed=1):
    """Base a(region, x, y) and donor b(region, x, z), region a number code drawn from the given codes."""
    rng = np.random.default_rng(seed)
    a = pd.DataFrame({"region": rng.choice(base_regions, size=n), "x": rng.normal(size=n), "y": rng.normal(size=n)})
    b = pd.DataFrame({"region": rng.choice(donor_regions, size=n), "x": rng.normal(size=n), "z": rng.normal(size=n)})
    return a, b


def test_a_declared_base_code_the_donor_never_has_is_refused_before_fitting():
    """Base region code 4, which the donor never has, declared categorical: refused by the shared-variable check
    with the message a text category gets, naming both sources. Before: the donor model was fitted and drawing
    failed with "Condition column 'region' has categories not seen in training: [4]", naming no source."""
    a, b = _region_sources([1, 2, 3, 4], [1, 2, 3])
    expected = (r"Shared column 'region': categories \['4'\] of source 'a' do not occur in source 'b' "
                r"\(which has \['1', '2', '3'\]\)")
    with pytest.raises(DataValidationError, match=expected):
        _fuse_quietly([Source(a, "a"), Source(b, "b")], base="a", seed=0,
                      synthesizer_params={"epochs": 2, "schema": SCHEMA})
    # the same text as the codes stored as text get
    with pytest.raises(DataValidationError, match=expected):
        _fuse_quietly([Source(a.astype({"region": str}), "a"), Source(b.astype({"region": str}), "b")], base="a",
                      seed=0, synthesizer_params={"epochs": 2})


def test_a_declared_code_stored_as_int_and_as_float_is_one_category():
    """The donor's region has a missing value, so it is stored as float64 (1.0, 2.0, 3.0) while the base's is
    int64 (1, 2, 3): the same categories by value, not refused by the now categorical check; the fused region
    and imputed z are the base's and the donor model's."""
    a, b = _region_sources([1, 2, 3], [1, 2, 3])
    b["region"] = b["region"].astype(float)
    b.loc[0, "region"] = np.nan
    result = _fuse_quietly([Source(a, "a"), Source(b, "b")], base="a", seed=0,
                           synthesizer_params={"epochs": 2, "schema": SCHEMA})
    assert result.models["b"].kinds_["region"] == "categorical"
    assert result.data["region"].tolist() == a["region"].tolist()
    assert result.data["z"].notna().all()


def test_a_declared_donor_code_held_out_only_is_refused_with_the_holdout_hint():
    """The donor's only record of region 4 falls among the held-out records (seed 4): refused naming the held-out
    records, holdout_fraction and seed, as for a text category. Before: the model was fitted, then scoring failed
    with "Condition column 'region' has categories not seen in training: [4]"."""
    a, b = _region_sources([1, 2, 3], [1, 2, 3], n=200, seed=3)
    b.loc[0, "region"] = 4
    expected = (r"Shared column 'region': categories \['4'\] of the records held out to score the model "
                r"\(holdout_fraction=0.2, seed=4\) do not occur in donor 'b' among its other records")
    with pytest.raises(DataValidationError, match=expected):
        _fuse_quietly([Source(a, "a"), Source(b, "b")], base="a", seed=4,
                      synthesizer_params={"epochs": 2, "schema": SCHEMA})
    with pytest.raises(DataValidationError, match=expected):
        _fuse_quietly([Source(a.astype({"region": str}), "a"), Source(b.astype({"region": str}), "b")], base="a",
                      seed=4, synthesizer_params={"epochs": 2})


def test_auxiliary_fills_a_declared_categorical_recipient_code_with_its_mode():
    """With an auxiliary source the donor records lack the recipient variables (region, y) and carry a placeholder:
    for region, a number code declared categorical, the auxiliary mode (4), as for a category; y keeps the weighted
    mean. Before: region was filled with its mean 3.067, a code no category holds, which the model then learned as
    a category of its own."""
    rng = np.random.default_rng(2)

    def make(n):
        region = rng.choice([1, 2, 3, 4], p=[0.1, 0.2, 0.3, 0.4], size=n)
        x = rng.normal(size=n)
        return pd.DataFrame({"region": region, "x": x, "y": x + region + rng.normal(size=n),
                             "z": x - region + rng.normal(size=n)})

    a, b, c = make(300)[["region", "x", "y"]], make(300)[["x", "z"]], make(120)
    result = _fuse_quietly([Source(a, "a"), Source(b, "b")], base="a", seed=0, auxiliary=Source(c, "c"),
                           synthesizer_params={"epochs": 2, "schema": SCHEMA})
    assert result.steps[0].auxiliary == ("region", "y")
    model = result.models["b"]
    assert model.kinds_["region"] == "categorical"
    cond = model.training_conditions_
    donor_rows = cond["_auxiliary"] == 0
    assert donor_rows.sum() == len(b)  # refit on every donor record
    mode = c["region"].mode().iloc[0]
    assert mode == 4 and c["region"].mean() == pytest.approx(3.0667, abs=1e-4)
    assert (cond.loc[donor_rows, "region"] == mode).all()
    assert set(cond["region"].unique()) <= {1, 2, 3, 4}
    assert cond.loc[donor_rows, "y"].to_numpy() == pytest.approx(np.full(len(b), c["y"].mean()), rel=1e-12)
