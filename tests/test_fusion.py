"""Tests of microplex.fusion: bad input, exact properties on simulated data, the cps1 bar (issue 6)."""

import logging

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp

from microplex import DataValidationError, FusionResult, Source, VariableSpec, fuse
from microplex.fusion import correlation_bounds
from microplex.fusion._source import harmonize
from microplex.fusion.diagnostics import weighted_ks, weighted_smd, weighted_tvd

FAST = {"epochs": 1, "hidden_features": (8,), "transforms": 1}


def _frames(n=200, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=2 * n)
    sex = rng.choice(["female", "male"], size=2 * n)
    a = pd.DataFrame({"x": x[:n], "sex": sex[:n], "y": x[:n] + rng.normal(size=n)})
    b = pd.DataFrame({"x": x[n:], "sex": sex[n:], "z": np.maximum(x[n:] + rng.normal(size=n), 0)})
    return a, b


# -- bad input -----------------------------------------------------------------------------
def test_no_shared_variable_names_the_sources():
    a, b = _frames()
    with pytest.raises(DataValidationError, match=r"Source 'b' shares no variable with base 'a'"):
        fuse([Source(a[["y"]], "a"), Source(b[["z"]], "b")], base="a")


def test_incompatible_types_name_column_and_sources():
    a, b = _frames()
    b["sex"] = (b["sex"] == "male").astype(int)
    with pytest.raises(DataValidationError, match=r"Shared column 'sex' has incompatible types: categorical .* "
                                                  r"source 'a' but numeric .* source 'b'"):
        fuse([Source(a, "a"), Source(b, "b")], base="a")


def test_unmapped_categories_name_column_and_sources():
    a, b = _frames()
    a["sex"] = a["sex"].map({"female": "F", "male": "M"})
    with pytest.raises(DataValidationError, match=r"Shared column 'sex': categories \['F', 'M'\] of source 'a' "
                                                  r"do not occur in source 'b'"):
        fuse([Source(a, "a"), Source(b, "b")], base="a")


def test_rename_maps_columns_categories_and_units():
    a, b = _frames()
    a = a.rename(columns={"sex": "SEX"}).assign(SEX=lambda d: d["SEX"].map({"female": "F", "male": "M"}))
    b["z"] = b["z"] * 100
    result = fuse([Source(a, "a"), Source(b, "b")], base="a", synthesizer_params=FAST,
                  rename={"a": {"columns": {"SEX": "sex"}, "categories": {"sex": {"F": "female", "M": "male"}}},
                          "b": {"scale": {"z": 0.01}}})
    assert result.steps[0].predictors == ("x", "sex")
    assert set(result.data["sex"]) == {"female", "male"}


@pytest.mark.parametrize("base", ["c", Source(pd.DataFrame({"x": [1.0, 2.0]}), "a")])
def test_base_must_be_one_of_the_sources(base):
    a, b = _frames()
    with pytest.raises(DataValidationError, match=r"'base' parameter must name one of the sources \['a', 'b'\]"):
        fuse([Source(a, "a"), Source(b, "b")], base=base)


def test_sources_must_be_source_objects():
    a, b = _frames()
    with pytest.raises(DataValidationError, match="must be a microplex Source. Got DataFrame"):
        fuse([Source(a, "a"), b], base="a")


def test_shared_column_missing_from_a_source():
    a, b = _frames()
    with pytest.raises(DataValidationError, match=r"Shared column 'y' is not a column of source 'b'"):
        fuse([Source(a, "a"), Source(b, "b")], base="a", shared=["x", "y"])


def test_missing_values_in_base_predictor_name_source_and_column():
    """Session 65: refused where the donor has none in that predictor (its model learnt nothing of them)."""
    a, b = _frames()
    a.loc[3, "x"] = np.nan
    with pytest.raises(DataValidationError, match=r"Base source 'a' has missing values in predictors \{'x': 1\} of "
                                                  r"donor 'b', whose records have none there"):
        fuse([Source(a, "a"), Source(b, "b")], base="a", synthesizer_params=FAST)


def test_source_checks_weights_and_names():
    with pytest.raises(DataValidationError, match=r"Source 'a': weight column 'w' is not a column"):
        Source(pd.DataFrame({"x": [1.0]}), "a", weight_col="w")
    with pytest.raises(DataValidationError, match="Source names must be unique"):
        a, b = _frames()
        fuse([Source(a, "a"), Source(b, "a")], base="a")


# -- exact properties ----------------------------------------------------------------------
def test_result_keeps_base_records_and_adds_the_block():
    a, b = _frames()
    a["w"] = np.arange(len(a)) + 1.0
    result = fuse([Source(a, "a", weight_col="w"), Source(b, "b")], base="a", n_imputations=3,
                  synthesizer_params=FAST, seed=1)
    assert isinstance(result, FusionResult)
    assert len(result.data) == 3 * len(a)
    assert list(result.data.columns) == ["x", "sex", "y", "w", "z", "_imputation"]
    for i, part in enumerate(result.imputations()):
        pd.testing.assert_frame_equal(part[a.columns].reset_index(drop=True), a)
        assert (part["z"] >= 0).all()
    assert result.data.groupby("_imputation")["z"].mean().nunique() == 3  # independent draws
    assert result.diagnostics["variable"].tolist() == ["z"]
    assert result.diagnostics.loc[0, "predictors"] == ("x", "sex")
    assert result.diagnostics.loc[0, "n_holdout"] == 40
    assert result.shared_comparison["variable"].tolist() == ["x", "sex"]
    assert result.pool(lambda d: d["z"].mean())["between_variance"] > 0


def test_same_seed_same_result():
    a, b = _frames()
    first = fuse([Source(a, "a"), Source(b, "b")], base="a", synthesizer_params=FAST, seed=3)
    again = fuse([Source(a, "a"), Source(b, "b")], base="a", synthesizer_params=FAST, seed=3)
    other = fuse([Source(a, "a"), Source(b, "b")], base="a", synthesizer_params=FAST, seed=4)
    pd.testing.assert_frame_equal(first.data, again.data, check_exact=True)
    assert not first.data["z"].equals(other.data["z"])


def test_chained_three_sources_condition_on_earlier_blocks():
    a, b = _frames()
    rng = np.random.default_rng(1)
    c = b.assign(v=b["z"] + rng.normal(size=len(b)))
    result = fuse([Source(a, "a"), Source(b, "b"), Source(c, "c")], base="a", synthesizer_params=FAST)
    assert [(s.donor, s.predictors, s.block) for s in result.steps] == [
        ("b", ("x", "sex"), ("z",)), ("c", ("x", "sex", "z"), ("v",))]
    assert result.shared_comparison[["variable", "base", "donor"]].values.tolist() == [
        ["x", "a", "b"], ["sex", "a", "b"], ["x", "a", "c"], ["sex", "a", "c"], ["z", "b", "c"]]
    assert {"z", "v"} <= set(result.data.columns)


def test_shifted_shared_variable_is_reported(caplog):
    a, b = _frames()
    b["x"] = b["x"] + 1.0
    with caplog.at_level(logging.WARNING, logger="microplex.fusion"):
        result = fuse([Source(a, "a"), Source(b, "b")], base="a", synthesizer_params=FAST)
    row = result.shared_comparison.set_index("variable").loc["x"]
    assert row["smd"] == pytest.approx(1.0, abs=0.2) and row["ks"] > 0.3
    assert "Shared variable 'x' differs between sources 'a' and 'b'" in caplog.text


def test_donor_weights_are_used():
    rng = np.random.default_rng(0)
    a = pd.DataFrame({"x": rng.normal(size=300)})
    b = pd.DataFrame({"x": rng.normal(size=600), "z": rng.choice(["lo", "hi"], size=600)})
    b["w"] = np.where(b["z"] == "hi", 9.0, 1.0)
    result = fuse([Source(a, "a"), Source(b, "b", weight_col="w")], base="a", holdout_fraction=0,
                  synthesizer_params={"epochs": 60, "hidden_features": (16,), "learning_rate": 1e-2})
    assert (result.data["z"] == "hi").mean() == pytest.approx(0.9, abs=0.06)


def test_weighted_distances_match_replicated_records():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=50), rng.normal(0.3, size=40)
    wx, wy = rng.integers(1, 4, 50), rng.integers(1, 4, 40)
    assert weighted_ks(x, wx, y, wy) == pytest.approx(ks_2samp(np.repeat(x, wx), np.repeat(y, wy)).statistic)
    xr, yr = np.repeat(x, wx), np.repeat(y, wy)
    assert weighted_smd(x, wx, y, wy) == pytest.approx((yr.mean() - xr.mean()) / np.sqrt((xr.var() + yr.var()) / 2))
    assert weighted_tvd(pd.Series(["a", "b", "b"]), np.array([2, 1, 1]), pd.Series(["b"]), np.ones(1)) == 0.5


def test_correlation_bounds_one_shared_variable_is_the_partial_correlation_bound():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, 1))
    y = 0.9 * x[:, 0] + rng.normal(size=3000) * 0.5
    z = -0.5 * x[:, 0] + rng.normal(size=3000)
    lo, cia, hi = correlation_bounds(y[:1500], x[:1500], np.ones(1500), z[1500:], x[1500:], np.ones(1500))
    r_y, r_z = np.corrcoef(y[:1500], x[:1500, 0])[0, 1], np.corrcoef(z[1500:], x[1500:, 0])[0, 1]
    half = np.sqrt((1 - r_y**2) * (1 - r_z**2))
    # R_XX pools both halves, so the CIA centre is r_y r_z up to the pooled-variance factor
    assert cia == pytest.approx(r_y * r_z, abs=0.01)
    assert (lo, hi) == pytest.approx((cia - half, cia + half), abs=0.01)
    true = np.corrcoef(y, z)[0, 1]
    assert lo <= true <= hi


def test_correlation_bounds_shrink_with_a_stronger_shared_block():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4000, 2))
    y = x @ [1.0, 0.5] + 0.3 * rng.normal(size=4000)
    z = x @ [0.8, -0.4] + 0.3 * rng.normal(size=4000)
    w = np.ones(2000)
    lo2, _, hi2 = correlation_bounds(y[:2000], x[:2000], w, z[2000:], x[2000:], w)
    lo1, _, hi1 = correlation_bounds(y[:2000], x[:2000, :1], w, z[2000:], x[2000:, :1], w)
    assert hi2 - lo2 < 0.2 < hi1 - lo1
    assert lo2 <= np.corrcoef(y, z)[0, 1] <= hi2


def test_harmonize_keeps_unmapped_values():
    src = Source(pd.DataFrame({"r": ["N", "S", "E"]}), "s")
    assert harmonize(src, {"categories": {"r": {"N": "north"}}}).data["r"].tolist() == ["north", "S", "E"]
    with pytest.raises(DataValidationError, match=r"rename\['s'\] must be a mapping with keys among"):
        harmonize(src, {"cols": {}})


# -- real data: the cps1 split of issue 6 ----------------------------------------------------
DEMOGRAPHICS = ["age", "educ", "black", "hisp", "marr", "nodeg"]


@pytest.fixture(scope="module")
def cps1_fusion(cps1):
    order = np.random.default_rng(0).permutation(len(cps1))
    half = len(cps1) // 2
    a, b = cps1.iloc[order[:half]].reset_index(drop=True), cps1.iloc[order[half:]].reset_index(drop=True)
    # holdout_fraction=0: one fit on every donor record (the default scores, then refits: twice the time)
    result = fuse([Source(a.drop(columns="re78"), "A"), Source(b.drop(columns="re74"), "B")], base="A", seed=0,
                  holdout_fraction=0)
    return a, result


def test_cps1_marginal_and_point_masses(cps1_fusion):
    truth, result = cps1_fusion
    fused, top = result.data["re78"], truth["re78"].max()
    assert ks_2samp(fused, truth["re78"]).statistic <= 0.05
    assert abs((fused == 0).mean() - (truth["re78"] == 0).mean()) <= 0.02
    assert abs((fused == top).mean() - (truth["re78"] == top).mean()) <= 0.02


def test_cps1_correlations_survive_through_the_shared_variables(cps1_fusion):
    truth, result = cps1_fusion
    fused = result.data
    for other, tol in (("re75", 0.03), ("re74", 0.1)):
        err = abs(np.corrcoef(fused[other], fused["re78"])[0, 1] - np.corrcoef(truth[other], truth["re78"])[0, 1])
        assert err <= tol, (other, err)


def test_cps1_diagnostics_and_bounds(cps1_fusion):
    truth, result = cps1_fusion
    diag = result.diagnostics.set_index("variable").loc["re78"]
    assert diag["predictors"] == ("age", "educ", "black", "hisp", "marr", "nodeg", "re75")
    assert (diag["n_fit"], diag["n_holdout"]) == (7996, 0)
    assert result.shared_comparison[["smd", "ks"]].abs().max().max() < 0.05  # random halves
    bound = result.bounds.set_index(["y", "z"]).loc[("re78", "re74")]
    true = np.corrcoef(truth["re74"], truth["re78"])[0, 1]
    assert bound["lower"] <= true <= bound["upper"]
    assert bound["lower"] <= bound["fused"] <= bound["upper"]


def test_auxiliary_source_informs_the_cross_block_association():
    """y and z are independent given x in a and b only through the CIA; the auxiliary source has
    corr(y, z | x) strongly positive, and the fused correlation moves up with it."""
    rng = np.random.default_rng(0)
    n = 1500
    x = rng.normal(size=n)
    u = rng.normal(size=n)  # common factor never shared
    y, z = x + u + 0.3 * rng.normal(size=n), x + u + 0.3 * rng.normal(size=n)
    frame = pd.DataFrame({"x": x, "y": y, "z": z})
    a, b, aux = frame.iloc[:600], frame.iloc[600:1200][["x", "z"]], frame.iloc[1200:]
    params = {"epochs": 60, "hidden_features": (32,), "learning_rate": 5e-3}
    plain = fuse([Source(a[["x", "y"]], "a"), Source(b, "b")], base="a", synthesizer_params=params,
                 holdout_fraction=0)
    with_aux = fuse([Source(a[["x", "y"]], "a"), Source(b, "b")], base="a", synthesizer_params=params,
                    holdout_fraction=0, auxiliary=Source(aux, "aux"))
    assert with_aux.steps[0].auxiliary == ("y",)
    truth = np.corrcoef(a["y"], a["z"])[0, 1]
    bound = plain.bounds.iloc[0]
    assert bound["lower"] <= truth <= bound["upper"]
    r_plain = np.corrcoef(plain.data["y"], plain.data["z"])[0, 1]
    r_aux = np.corrcoef(with_aux.data["y"], with_aux.data["z"])[0, 1]
    assert abs(r_plain - bound["cia"]) < 0.2  # a short fit: the CIA value up to fitting error
    assert abs(r_aux - truth) < abs(r_plain - truth) / 2



# -- trust: parameters, reserved names, dtypes, degenerate weights (issue 15) ----------------------
FUSE_PARAM_CASES = [
    ({"synthesizer_params": {"epoch": 1}}, "The 'synthesizer_params' parameter has unknown keys \\['epoch'\\]"),
    ({"synthesizer_params": {"epochs": 2.5}}, "The 'epochs' parameter must be 'auto' or an int >= 1. Got 2.5 instead."),
    ({"synthesizer_params": {"learning_rate": -1}}, "The 'learning_rate' parameter must be a finite float in \\(0, 1000\\]"),
    ({"synthesizer_params": {"hidden_features": (0,)}}, "The 'hidden_features' parameter must be None or a non-empty"),
    ({"synthesizer_params": {"flow": "gan"}}, "The 'flow' parameter must be one of 'maf', 'nsf'. Got 'gan'"),
    ({"synthesizer_params": {"schema": {"z": "continuous"}}}, "The 'schema' parameter must be a mapping"),
    ({"synthesizer_params": {"verbose": "no"}}, "The 'verbose' parameter must be a bool"),
    ({"synthesizer_params": {"target_vars": ["z"]}}, "'synthesizer_params' cannot set 'target_vars'"),
    ({"synthesizer_params": {"condition_model": True}}, "'synthesizer_params' cannot set 'condition_model'"),
    ({"synthesizer_params": {"epsilon": 1.0, "delta": 1e-5}},
     "sets \\['epsilon', 'delta'\\]: fuse cannot fit its donor models with differential privacy"),
    ({"synthesizer_params": ["epochs", 1]}, "The 'synthesizer_params' parameter must be a mapping"),
    ({"n_imputations": 1.5}, "The 'n_imputations' parameter must be an int >= 1. Got 1.5 instead."),
    ({"n_imputations": 0}, "The 'n_imputations' parameter must be an int >= 1. Got 0 instead."),
    ({"n_imputations": 10**12}, "The fused data \\(200 base records x 1000000000000 imputations\\) would take about"),
    ({"seed": -1}, "The 'seed' parameter must be an int in \\[0, 2\\*\\*64 - 1\\] or None. Got -1 instead."),
    ({"seed": 1.5}, "The 'seed' parameter must be an int in"),
    ({"holdout_fraction": 1}, "The 'holdout_fraction' parameter must be a finite float in \\[0, 1\\). Got 1 instead."),
    ({"holdout_fraction": float("nan")}, "The 'holdout_fraction' parameter must be a finite float in \\[0, 1\\)"),
    ({"refit": "yes"}, "The 'refit' parameter must be a bool. Got 'yes' instead."),
    ({"shared": "x"}, "The 'shared' parameter must be a non-empty list of distinct column names"),
    ({"shared": ["x", "x"]}, "The 'shared' parameter must be a non-empty list of distinct column names"),
    ({"rename": [("b", {})]}, "The 'rename' parameter must be a mapping of source names or None"),
]


@pytest.mark.parametrize("kw, message", FUSE_PARAM_CASES, ids=[str(i) for i in range(len(FUSE_PARAM_CASES))])
def test_fuse_parameters_are_checked_before_any_fitting(kw, message, monkeypatch):
    import microplex.fusion._fuse as fuse_module

    def no_fit(*args, **kwargs):
        raise AssertionError("a model was fitted before the parameters were checked")

    monkeypatch.setattr(fuse_module, "_fit_model", no_fit)
    a, b = _frames()
    with pytest.raises(DataValidationError, match=message):
        fuse([Source(a, "a"), Source(b, "b")], base="a", **{"synthesizer_params": FAST, **kw})


@pytest.mark.parametrize("name", ["__weight__", "_auxiliary", "_imputation"])
def test_reserved_column_names_in_a_source_are_refused(name):
    a, b = _frames()
    with pytest.raises(DataValidationError, match=f"Source 'b': columns \\['{name}'\\] use names reserved"):
        fuse([Source(a, "a"), Source(b.assign(**{name: 1.0}), "b")], base="a", synthesizer_params=FAST)


@pytest.mark.parametrize("values, message", [
    (pd.date_range("2020-01-01", periods=200), "has dtype datetime64"),
    (pd.to_timedelta(np.arange(200), unit="h"), "has dtype timedelta64"),
    (np.arange(200) * 1j, "has dtype complex128"),
    (pd.Series([1, "a"] * 100, dtype=object), "mixes value types"),
    (np.r_[np.inf, np.zeros(199)], "has 1 missing or infinite values"),
])
def test_unmodellable_source_columns_name_source_and_column(values, message):
    a, b = _frames()
    with pytest.raises(DataValidationError, match=f"Source 'CPS' column 't' {message}"):
        fuse([Source(a, "a"), Source(b.assign(t=values), "CPS")], base="a", synthesizer_params=FAST)


def test_donor_with_all_weight_on_one_record_names_donor_and_weight_column():
    a, b = _frames()
    w = np.r_[1.0, np.zeros(len(b) - 1)]
    with pytest.raises(DataValidationError, match="donor 'b'.*Weight column 'wt'"):
        fuse([Source(a, "a"), Source(b.assign(wt=w), "b", weight_col="wt")], base="a", synthesizer_params=FAST,
             holdout_fraction=0)


def test_fuse_keeps_odd_dtypes_of_the_base_and_leaves_inputs_unchanged():
    a, b = _frames()
    a = a.assign(flag=pd.array([True, False] * 100, dtype="boolean"), n=pd.array(np.arange(200), dtype="Int64"))
    before_a, before_b = a.copy(deep=True), b.copy(deep=True)
    result = fuse([Source(a, "a"), Source(b.assign(sex=b["sex"].astype("category")), "b")], base="a",
                  shared=["x", "sex"], synthesizer_params=FAST)
    pd.testing.assert_frame_equal(result.data[list(a.columns)], a)
    assert np.isfinite(result.data["z"]).all()
    pd.testing.assert_frame_equal(a, before_a)
    pd.testing.assert_frame_equal(b, before_b)


def test_compare_shared_refuses_a_variable_without_values_naming_it_and_the_source():
    from microplex.fusion._source import Source
    from microplex.fusion.diagnostics import compare_shared

    a = Source(pd.DataFrame({"x": [0.0, 1.0, 2.0], "z": [1.0, 2.0, 3.0]}), "a")
    b = Source(pd.DataFrame({"x": [np.nan] * 3, "z": [1.0, 2.0, 4.0]}), "b")
    with pytest.raises(DataValidationError, match=r"'x'.*'b'"):
        compare_shared(a, b, ["z", "x"])
    assert compare_shared(a, b, ["z"])["ks"].iloc[0] == pytest.approx(1 / 3)


# -- input sweep (s47) ----------------------------------------------------------------------
@pytest.mark.parametrize("spec, message", [
    ({"scale": {"z": "abc"}}, r"rename\['b'\]\['scale'\]\['z'\] must be a finite number other than 0. Got 'abc'"),
    ({"scale": {"z": None}}, r"rename\['b'\]\['scale'\]\['z'\] must be a finite number other than 0. Got None"),
    ({"scale": {"z": float("nan")}}, r"rename\['b'\]\['scale'\]\['z'\] must be a finite number other than 0. Got nan"),
    ({"scale": {"z": 0}}, r"rename\['b'\]\['scale'\]\['z'\] must be a finite number other than 0. Got 0"),
    ({"scale": {"z": True}}, r"rename\['b'\]\['scale'\]\['z'\] must be a finite number other than 0. Got True"),
    ({"scale": [("z", 2.0)]}, r"rename\['b'\]\['scale'\] must be a mapping"),
    ({"columns": ["x"]}, r"rename\['b'\]\['columns'\] must be a mapping"),
    ({"categories": {"sex": ["female", "male"]}}, r"rename\['b'\]\['categories'\]\['sex'\] must be a mapping"),
])
def test_bad_rename_entries_are_refused_before_any_fitting(spec, message, monkeypatch):
    """Before: a scale factor that is no number or None raised a raw ValueError/TypeError, NaN blanked the
    column and failed later as "'data' is empty" after planning, 0 failed as a constant target, and a list
    in place of a mapping raised a raw TypeError/ValueError/AttributeError."""
    import microplex.fusion._fuse as fuse_module

    def no_fit(*args, **kwargs):
        raise AssertionError("a model was fitted before rename was checked")

    monkeypatch.setattr(fuse_module, "_fit_model", no_fit)
    a, b = _frames()
    with pytest.raises(DataValidationError, match=message):
        fuse([Source(a, "a"), Source(b, "b")], base="a", rename={"b": spec}, synthesizer_params=FAST)


@pytest.mark.parametrize("base_values, donor_values, shown", [
    (lambda k: k, lambda k: k.astype(str), r"category True \(bool\) of source 'a' is 'True' \(str\) in source 'b'"),
    (lambda k: k.astype(int).astype(object), lambda k: k.astype(int).astype(str),
     r"category 1 \(int\) of source 'a' is '1' \(str\) in source 'b'"),
])
def test_shared_categories_with_equal_labels_but_other_types_name_column_and_sources(base_values, donor_values,
                                                                                     shown, monkeypatch):
    """Before: a shared column boolean (or int objects) in the base and the strings 'True'/'False' ('1'/'0')
    in the donor passed the category check, which compares labels, and failed after fitting with
    "Condition column 'k' has categories not seen in training: ['False', 'True']. Expected one of
    ['False', 'True']", naming neither source."""
    import microplex.fusion._fuse as fuse_module

    def no_fit(*args, **kwargs):
        raise AssertionError("a model was fitted before the shared column was checked")

    monkeypatch.setattr(fuse_module, "_fit_model", no_fit)
    a, b = _frames()
    a["k"], b["k"] = base_values(a["x"] > 0), donor_values(b["x"] > 0)
    with pytest.raises(DataValidationError, match=r"Shared column 'k': " + shown + r": the labels agree but the types"):
        # int objects are categories when declared so (session 72)
        fuse([Source(a, "a"), Source(b, "b")], base="a",
             synthesizer_params={**FAST, "schema": {"k": VariableSpec(kind="categorical")}})


def test_donor_records_of_weight_zero_are_never_the_held_out_part():
    """Before: the records held out to score a donor model were drawn among all its records; when they all had
    weight 0, fuse raised a raw ZeroDivisionError ("Weights sum to zero, can't be normalized"), later a
    DataValidationError ("the 40 records held out to score its model ... all have weight 0 in 'wt'") that refused
    a valid donor. They are now drawn among the records of positive weight (``_random.holdout_split``): 20% of
    those 160, scored."""
    from microplex._random import int_seed

    a, b = _frames()
    step_seed = np.random.SeedSequence(0).spawn(1)[0]  # fuse's split of the first (only) donor
    order = np.random.default_rng(int_seed(step_seed.spawn(3)[0])).permutation(len(b))
    w = np.ones(len(b))
    w[order[:40]] = 0.0  # exactly the 20% that a split among all records held out
    result = fuse([Source(a, "a"), Source(b.assign(wt=w), "b", weight_col="wt")], base="a", seed=0,
                  synthesizer_params=FAST)
    assert np.isfinite(result.data["z"]).all()
    scores = result.diagnostics
    assert scores["n_holdout"].tolist() == [32] and scores["n_fit"].tolist() == [len(b) - 32]
    assert np.isfinite(scores["ks"]).all() and np.isfinite(scores["log_lik"]).all()


@pytest.mark.parametrize("n_imputations", [1, 2])
def test_imputed_columns_keep_the_donor_dtype(n_imputations):
    """Before: imputed category, Int64 and string columns came back as plain str / int64 (fuse copied the
    draws through .to_numpy()), though the donor model draws them with the training dtype."""
    a, b = _frames()
    a.index = np.arange(1000, 1000 + len(a))
    b = b.assign(zc=pd.Categorical(np.where(b["x"] > 0, "p", "q")),
                 zi=pd.array((b["x"] > 0).astype(int) + (b["x"] > 1), dtype="Int64"),
                 zs=pd.Series(np.where(b["x"] > 0.5, "u", "v"), dtype="string"))
    result = fuse([Source(a, "a"), Source(b, "b")], base="a", synthesizer_params=FAST, n_imputations=n_imputations)
    for col in ("zc", "zi", "zs", "z"):
        assert result.data[col].dtype == b[col].dtype, col
        assert result.data[col].notna().all()
    assert set(result.data["zc"]) <= {"p", "q"}
    if n_imputations == 1:
        pd.testing.assert_frame_equal(result.data[list(a.columns)], a)


def test_correlation_bounds_with_a_constant_variable_are_zero_not_nan():
    """Before: with Y (or Z) constant, correlation_bounds returned (-1.0, nan, 1.0) with a RuntimeWarning:
    a NaN CIA value between bounds claiming the whole range, while the fused correlation read 0.0."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 1))
    z = x[:, 0] + rng.normal(size=200)
    assert correlation_bounds(np.full(200, 5.0), x, np.ones(200), z, x, np.ones(200)) == (0.0, 0.0, 0.0)
    # constant where the weight is: the records of weight 0 do not count
    w = np.r_[np.ones(100), np.zeros(100)]
    y = np.r_[np.full(100, 5.0), rng.normal(size=100)]
    assert correlation_bounds(z, x, np.ones(200), y, x, w) == (0.0, 0.0, 0.0)
    a, b = _frames()
    result = fuse([Source(a.assign(y=5.0), "a"), Source(b, "b")], base="a", synthesizer_params=FAST)
    row = result.bounds.iloc[0]
    assert (row["lower"], row["cia"], row["upper"], row["fused"]) == (0.0, 0.0, 0.0, 0.0)


def test_donor_column_that_is_all_missing_is_named_before_any_fitting(monkeypatch):
    """Before: a donor block column with no value failed inside the fit as "Fitting the model of donor 'b'
    (0 complete records): 'data' is empty; at least one row is needed", naming no column. (Session 65: the other
    records' missing values are modelled; a column without any value is still refused before fitting.)"""
    import microplex.fusion._fuse as fuse_module

    def no_fit(*args, **kwargs):
        raise AssertionError("a model was fitted before the donor's records were checked")

    monkeypatch.setattr(fuse_module, "_fit_model", no_fit)
    a, b = _frames()
    with pytest.raises(DataValidationError, match=r"Donor 'b' has no value of \['q'\] \(every record misses them\)"):
        fuse([Source(a, "a"), Source(b.assign(q=np.nan), "b")], base="a", synthesizer_params=FAST)


@pytest.mark.parametrize("dtype", [bool, "boolean"])
def test_boolean_weight_column_is_refused(dtype):
    """Before: Source(weight_col=<boolean column>) silently used True/False as weights 1/0 (dropping the
    False records), while evaluate refuses the same column as non-numeric."""
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0], "flag": pd.array([True, False, True], dtype=dtype)})
    with pytest.raises(DataValidationError, match=r"Source 'a': weight column 'flag' must be numeric. Got dtype"):
        Source(df, "a", weight_col="flag")


def test_base_category_whose_donor_records_all_miss_a_block_value_is_imputed_missing():
    """Before: a base category that the donor holds only on records missing a block value (dropped before
    fitting) failed after fitting as "Condition column 'sex' has categories not seen in training", naming
    neither source (session 50: named before fitting). Session 65: those records are used, their missing value
    is a state of the model's, and the base's males get it."""
    a, b = _frames()
    b.loc[b["sex"] == "male", "z"] = np.nan
    result = fuse([Source(a, "a"), Source(b, "b")], base="a")  # the default epochs
    male = (result.data["sex"] == "male").to_numpy()
    missing = result.data["z"].isna().to_numpy()
    assert missing[male].mean() > 0.9 and missing[~male].mean() < 0.1
    row = result.diagnostics.iloc[0]
    assert row["missing_error"] < 0.1 and np.isfinite(row["ks"])


def test_donor_category_held_out_entirely_is_named_with_the_seed(monkeypatch):
    """Before: when the split held out every donor record of a category (a rare one: 20% of seeds for a
    category on one record), scoring failed after fitting with "Condition column 'sex' has categories not
    seen in training: ['other']", naming neither donor nor split."""
    from microplex._random import int_seed

    import microplex.fusion._fuse as fuse_module

    def no_fit(*args, **kwargs):
        raise AssertionError("a model was fitted before the split was checked")

    a, b = _frames()
    a.loc[0, "sex"], b.loc[len(b) - 1, "sex"] = "other", "other"
    seed = next(s for s in range(100) if len(b) - 1 in np.random.default_rng(
        int_seed(np.random.SeedSequence(s).spawn(1)[0].spawn(3)[0])).permutation(len(b))[:40])
    monkeypatch.setattr(fuse_module, "_fit_model", no_fit)
    with pytest.raises(DataValidationError, match=r"Shared column 'sex': categories \['other'\] of the records held "
                                                  rf"out to score the model \(holdout_fraction=0.2, seed={seed}\) do "
                                                  r"not occur in donor 'b' among its other records"):
        fuse([Source(a, "a"), Source(b, "b")], base="a", seed=seed, synthesizer_params=FAST)
    monkeypatch.undo()
    result = fuse([Source(a, "a"), Source(b, "b")], base="a", seed=seed, synthesizer_params=FAST, holdout_fraction=0)
    assert result.data.loc[0, "sex"] == "other" and np.isfinite(result.data["z"]).all()
