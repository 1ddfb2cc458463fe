"""s80: a fresh-eyes audit of fusion against known truths: the bounds describe the fusion that was done (the
shared variables it conditions on), and a category map to booleans on a donor column with missing values."""

import numpy as np
import pandas as pd
import pytest

from microplex import DataValidationError, Source, fuse
from microplex.fusion.diagnostics import correlation_bounds, design_matrix


def _two_sources(n=300, seed=0):
    """Base a(x1, x2, z) and donor b(x1, x2, y): y and z both follow x2 closely, x1 only loosely."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=2 * n)
    x2 = 0.3 * x1 + rng.normal(size=2 * n)
    y, z = x2 + 0.3 * rng.normal(size=2 * n), x2 + 0.3 * rng.normal(size=2 * n)
    a = pd.DataFrame({"x1": x1[:n], "x2": x2[:n], "z": z[:n]})
    b = pd.DataFrame({"x1": x1[n:], "x2": x2[n:], "y": y[n:]})
    return a, b


def test_bounds_condition_on_the_shared_variables_the_fusion_used():
    """With shared=["x1"], the donor model draws y given x1 alone, so the fused corr(y, z) is the CIA value given
    x1 (about 0.08 here). The bounds conditioned on every column the two sources have in common (x1 and x2):
    cia 0.91, range [0.83, 1.0], which the fused value (0.08) lies far outside, so the report described a fusion
    that was not done (and x2 may be left out because it is not comparable between the sources)."""
    a, b = _two_sources()
    result = fuse([Source(a, "a"), Source(b, "b")], base="a", shared=["x1"], seed=0,
                  synthesizer_params={"epochs": 2})
    row = result.bounds.iloc[0]
    assert (row["y"], row["z"], row["shared"]) == ("y", "z", ("x1",))
    xy, xz = design_matrix([b, a], ["x1"])
    expected = correlation_bounds(b["y"].to_numpy(), xy, np.ones(len(b)), a["z"].to_numpy(), xz, np.ones(len(a)))
    assert (row["lower"], row["cia"], row["upper"]) == pytest.approx(expected, abs=1e-12)
    assert row["lower"] <= row["fused"] <= row["upper"]


def test_a_common_column_left_out_of_shared_with_other_types_does_not_break_the_bounds():
    """x2 as text in the base and numbers in the donor, left out of shared: the fusion ran, then the bounds read the
    base's text as numbers (a raw ValueError "could not convert string to float", after every model was fitted)."""
    a, b = _two_sources()
    a["x2"] = np.where(a["x2"] > 0, "high", "low")
    result = fuse([Source(a, "a"), Source(b, "b")], base="a", shared=["x1"], seed=0,
                  synthesizer_params={"epochs": 2})
    assert result.bounds[["y", "z", "shared"]].to_dict("records") == [{"y": "y", "z": "z", "shared": ("x1",)}]
    assert np.isfinite(result.bounds[["lower", "cia", "upper", "fused"]].to_numpy(float)).all()


def test_default_shared_bounds_keep_every_common_variable():
    """Without 'shared', the predictors are every column the donor has in common with the base: the bounds use them
    all, as before."""
    a, b = _two_sources()
    result = fuse([Source(a, "a"), Source(b, "b")], base="a", seed=0, synthesizer_params={"epochs": 2})
    assert result.bounds["shared"].tolist() == [("x1", "x2")]


def test_a_category_map_to_booleans_on_a_column_with_missing_values_keeps_booleans():
    """The base holds married as booleans, the donor as 'no'/'yes' with 30 missing values: the documented remedy,
    rename={'b': {'categories': {'marr': {'no': False, 'yes': True}}}}, gave the text 'False'/'True' (booleans only
    without a missing value), and fuse refused it, "category True (bool) of source 'a' is 'True' (str) in source
    'b' ... map it with rename", the map just given. Now the donor column holds False/True and its missing values,
    and fuse imputes every base record, of either category."""
    from microplex.fusion._source import harmonize

    rng = np.random.default_rng(1)
    n = 300
    married = rng.random(2 * n) < 0.5
    z = np.where(married, 2.0, 0.0) + rng.normal(size=2 * n)
    a = pd.DataFrame({"marr": married[:n], "x": rng.normal(size=n)})
    b = pd.DataFrame({"marr": np.where(married[n:], "yes", "no").astype(object), "z": z[n:]})
    b.loc[:29, "marr"] = np.nan
    to_bool = {"categories": {"marr": {"no": False, "yes": True}}}
    got = harmonize(Source(b, "b"), to_bool).data["marr"]
    assert got.isna().sum() == 30
    assert {type(v) for v in got.dropna()} == {bool}
    assert (got.dropna() == married[n:][30:]).all()
    result = fuse([Source(a, "a"), Source(b, "b")], base="a", rename={"b": to_bool}, seed=0,
                  synthesizer_params={"epochs": 2})
    assert result.steps[0].predictors == ("marr",)
    assert result.data["marr"].equals(a["marr"])
    assert result.data["z"].notna().all()


def test_a_category_map_leaving_text_beside_numbers_still_gives_text():
    """Values a map leaves out stay as they are: a map to numbers that leaves a text value gives text labels, as
    before (the column is one of categories)."""
    from microplex.fusion._source import harmonize

    src = Source(pd.DataFrame({"r": ["N", "S", None]}), "b")
    assert harmonize(src, {"categories": {"r": {"N": 1}}}).data["r"].tolist()[:2] == ["1", "S"]
    with pytest.raises(DataValidationError, match="incompatible types"):
        fuse([Source(pd.DataFrame({"r": [1, 2, 1], "x": [1.0, 2.0, 3.0]}), "a"), src], base="a",
             rename={"b": {"categories": {"r": {"N": 1}}}})
