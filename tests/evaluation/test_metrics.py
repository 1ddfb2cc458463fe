import numpy as np
import pandas as pd
import pytest
from scipy import stats

from microplex._errors import DataValidationError
from microplex.evaluation import metrics as m


@pytest.fixture
def rng():
    return np.random.default_rng(42)


def duplicate(x, k):
    """Expands a sample by integer weights k."""
    return np.repeat(np.asarray(x), k)


def test_ks_of_identical_samples_is_zero_and_of_disjoint_samples_is_one(rng):
    x = rng.normal(size=500)
    assert m.ks_statistic(x, x.copy()) == 0.0
    assert m.ks_statistic(x, x + 100) == 1.0


def test_ks_matches_scipy_without_weights(rng):
    x, y = rng.normal(size=300), rng.normal(0.3, 1.2, size=450)
    assert m.ks_statistic(x, y) == pytest.approx(stats.ks_2samp(x, y).statistic, abs=1e-12)


def test_ks_with_ties_matches_scipy(rng):
    x, y = rng.integers(0, 5, 200), rng.integers(0, 6, 300)
    assert m.ks_statistic(x, y) == pytest.approx(stats.ks_2samp(x, y).statistic, abs=1e-12)


def test_integer_weights_equal_the_duplicated_sample(rng):
    x, y = rng.exponential(size=100), rng.exponential(1.3, size=80)
    kx, ky = rng.integers(1, 5, 100), rng.integers(1, 5, 80)
    X, Y = duplicate(x, kx), duplicate(y, ky)
    assert m.ks_statistic(x, y, kx, ky) == pytest.approx(m.ks_statistic(X, Y), abs=1e-12)
    assert m.wasserstein(x, y, kx, ky) == pytest.approx(m.wasserstein(X, Y), rel=1e-10)
    q = np.array(m.DEFAULT_QUANTILES)
    np.testing.assert_allclose(m.weighted_quantile(x, q, kx), m.weighted_quantile(X, q))
    np.testing.assert_allclose(m.quantile_errors(x, y, kx, ky), m.quantile_errors(X, Y))
    assert m.tv_complement(kx % 3, ky % 3, kx, ky) == pytest.approx(
        m.tv_complement(duplicate(kx % 3, kx), duplicate(ky % 3, ky)), abs=1e-12
    )


def test_weights_are_scale_invariant(rng):
    x, y = rng.normal(size=100), rng.normal(size=120)
    w = rng.uniform(0.5, 2, 100)
    assert m.ks_statistic(x, y, w) == pytest.approx(m.ks_statistic(x, y, 1000 * w), abs=1e-12)


def test_weighted_quantile_matches_numpy_inverted_cdf(rng):
    x = rng.normal(size=257)
    q = np.linspace(0, 1, 37)
    np.testing.assert_array_equal(m.weighted_quantile(x, q), np.quantile(x, q, method="inverted_cdf"))


def test_tv_complement_closed_form():
    assert m.tv_complement(["a", "b"], ["a", "b"]) == 1.0
    assert m.tv_complement(["a", "a"], ["b", "b"]) == 0.0
    # shares (0.5, 0.5) vs (0.2, 0.8): TV = 0.3
    assert m.tv_complement(["a", "b"], ["a"] + ["b"] * 4) == pytest.approx(0.7)


def test_wasserstein_of_a_shift_is_the_shift(rng):
    x = rng.normal(size=400)
    assert m.wasserstein(x, x + 2.5) == pytest.approx(2.5)
    assert m.wasserstein(x, x + 2.5, scale=True) == pytest.approx(2.5 / x.std())
    y = rng.normal(size=300)
    assert m.wasserstein(x, y) == pytest.approx(stats.wasserstein_distance(x, y))


def test_point_masses_find_zeros_and_top_codes(rng):
    x = np.r_[np.zeros(100), rng.lognormal(10, 1, 880), np.full(20, 99999.0)]
    shares = m.point_mass_shares(x)
    assert shares.loc[0.0] == pytest.approx(0.10)
    assert shares.loc[99999.0] == pytest.approx(0.02)
    assert len(shares) == 2
    y = np.r_[np.zeros(50), rng.lognormal(10, 1, 950)]
    pm = m.point_mass_errors(x, y).set_index("value")
    assert pm.loc[0.0, "abs_error"] == pytest.approx(0.05)
    assert pm.loc[99999.0, "abs_error"] == pytest.approx(0.02)


def test_spurious_synthetic_point_mass_counts():
    pm = m.point_mass_errors([1.0, 2.0, 3.0, 4.0], [7.0, 7.0, 3.0, 4.0])
    assert pm.set_index("value").loc[7.0, "abs_error"] == 0.5


def test_quantile_errors_of_a_shift(rng):
    x = rng.normal(size=1000)
    qe = m.quantile_errors(x, x + 3.0, scale=False)
    np.testing.assert_allclose(qe.to_numpy(), 3.0)
    assert list(qe.index) == list(m.DEFAULT_QUANTILES)
    assert m.quantile_errors(x, x).max() == 0.0


def test_weighted_corr_matches_numpy_and_scipy(rng):
    df = pd.DataFrame({"a": rng.normal(size=200)})
    df["b"] = df["a"] + rng.normal(size=200)
    df["c"] = rng.integers(0, 4, 200)
    np.testing.assert_allclose(m.weighted_corr(df).to_numpy(), np.corrcoef(df.to_numpy().T), atol=1e-12)
    rho = stats.spearmanr(df.to_numpy()).statistic
    np.testing.assert_allclose(m.weighted_corr(df, method="spearman").to_numpy(), rho, atol=1e-12)


def test_spearman_ranks_within_pairwise_complete_rows(rng):
    # a column missing in the middle of the other's range: ranking each column over all its values
    # and then dropping the incomplete pairs gave 0.855 against pandas' (and scipy's) 0.845
    a = rng.lognormal(size=300)
    df = pd.DataFrame({"a": a, "b": a + rng.normal(size=300), "c": rng.normal(size=300)})
    df.loc[(a > 0.5) & (a < 2), "b"] = np.nan
    got = m.weighted_corr(df, method="spearman")
    np.testing.assert_allclose(got.to_numpy(), df.corr(method="spearman").to_numpy(), atol=1e-12)
    both = df["b"].notna()
    assert got.loc["a", "b"] == pytest.approx(stats.spearmanr(df.loc[both, "a"], df.loc[both, "b"]).statistic, abs=1e-12)
    k = rng.integers(1, 4, 300)  # weights: as the duplicated rows
    big = df.loc[df.index.repeat(k)]
    np.testing.assert_allclose(m.weighted_corr(df, k, method="spearman"), big.corr(method="spearman"), atol=1e-12)


def test_weighted_corr_with_integer_weights_equals_duplicated_rows(rng):
    df = pd.DataFrame({"a": rng.normal(size=60), "b": rng.normal(size=60)})
    k = rng.integers(1, 4, 60)
    big = df.loc[df.index.repeat(k)]
    for method in ("pearson", "spearman"):
        np.testing.assert_allclose(m.weighted_corr(df, k, method=method), m.weighted_corr(big, method=method), atol=1e-12)


def test_correlation_error_closed_form(rng):
    x = rng.normal(size=300)
    r = pd.DataFrame({"a": x, "b": x})
    s = pd.DataFrame({"a": x, "b": -x})
    assert m.correlation_max_abs_error(r, r) == 0.0
    assert m.correlation_max_abs_error(r, s) == pytest.approx(2.0)


def test_contingency_similarity_closed_form(rng):
    a = np.repeat([0, 1], 500)
    real = pd.DataFrame({"a": a, "b": a})
    synth = pd.DataFrame({"a": a, "b": np.tile([0, 1], 500)})
    assert m.contingency_similarity(real, real, ["a", "b"]) == 1.0
    assert m.contingency_similarity(real, synth, ["a", "b"]) == pytest.approx(0.5)


def test_contingency_bins_numeric_columns_on_real_quantiles(rng):
    real = pd.DataFrame({"x": rng.normal(size=1000), "g": rng.choice(["u", "v"], 1000)})
    assert m.contingency_similarity(real, real.copy(), ["x", "g"]) == 1.0
    far = real.assign(x=real["x"] + 100)
    assert m.contingency_similarity(real, far, ["x", "g"]) < 0.2


def test_subgroup_ks_finds_the_broken_subgroup(rng):
    n = 2000
    real = pd.DataFrame({"g": rng.choice(["a", "b"], n), "y": rng.normal(size=n)})
    synth = real.copy()
    synth.loc[synth["g"] == "b", "y"] += 50
    out = m.subgroup_ks(real, synth, "y", "g").set_index("subgroup")
    assert out.loc["g=a", "distance"] == 0.0
    assert out.loc["g=b", "distance"] == 1.0
    assert out["real_share"].sum() == pytest.approx(1.0)


def test_subgroup_labels_name_the_condition(rng):
    real = pd.DataFrame({"g": rng.choice(["good", "bad"], 200), "y": rng.normal(size=200)})
    assert sorted(m.subgroup_ks(real, real, "y", "g")["subgroup"]) == ["g=bad", "g=good"]


def test_subgroup_ks_bins_a_numeric_condition(rng):
    real = pd.DataFrame({"age": rng.integers(18, 80, 1000), "y": rng.normal(size=1000)})
    out = m.subgroup_ks(real, real, "y", "age", bins=5)
    assert len(out) == 5
    assert out["subgroup"].str.startswith("age").all()


def test_subgroup_labels_of_a_numeric_condition_binned_or_not_as_its_weighted_values(rng):
    # 2 ages of positive weight, 6 in all: the subgroups are the 2 ages (not binned), labelled "age=30";
    # the label read the count of all records (weight 0 too), took the groups for bins and printed "30"
    real = pd.DataFrame({"age": [30, 40] * 50 + [21, 22, 23, 24], "y": rng.normal(size=104)})
    w = np.r_[np.ones(100), np.zeros(4)]
    out = m.subgroup_ks(real, real, "y", "age", w, w, bins=5)
    assert out["subgroup"].tolist() == ["age=30", "age=40"]
    assert out["real_share"].tolist() == [0.5, 0.5]


def test_missing_values_are_dropped():
    assert m.ks_statistic([1.0, np.nan, 2.0], [1.0, 2.0]) == 0.0
    assert m.tv_complement(["a", None], ["a"]) == 1.0


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: m.ks_statistic([np.nan, np.nan], [1.0]), "real sample has no non-missing values"),
        (lambda: m.ks_statistic([1.0], []), "synthetic sample has no non-missing values"),
        (lambda: m.ks_statistic([1.0, 2.0], [1.0], [1.0, -1.0]), "non-negative"),
        (lambda: m.ks_statistic([1.0, 2.0], [1.0], [1.0]), "expected 2, got 1"),
        (lambda: m.wasserstein(["a"], [1.0]), "must be numeric"),
        (lambda: m.weighted_corr(pd.DataFrame({"a": [1.0]}), method="kendall"), "'method' parameter"),
    ],
)
def test_bad_input_raises_named_errors(call, match):
    with pytest.raises(DataValidationError, match=match):
        call()


# -- input sweep (s47) ----------------------------------------------------------------------
def test_distances_of_values_refuse_infinities_while_ks_orders_them():
    """Before: wasserstein([1, 2, inf], ...) answered inf, and scaled NaN (inf / inf), as a score."""
    real, bad = [1.0, 2.0, 3.0], [1.0, 2.0, np.inf]
    for call in (lambda: m.wasserstein(bad, real), lambda: m.wasserstein(real, bad, scale=True),
                 lambda: m.quantile_errors(real, bad), lambda: m.point_mass_errors(bad, real)):
        with pytest.raises(DataValidationError, match=r"holds 1 infinite value\(s\): expected finite numbers"):
            call()
    assert m.ks_statistic(bad, real) == pytest.approx(1 / 3)


def test_weighted_quantile_leaves_out_zero_weight_values():
    """Before: q=0 returned the minimum of all values, weight 0 or not (a value not in the population)."""
    from microplex._stats import weighted_quantile

    x, w = [-5.0, 1.0, 2.0, 3.0], [0.0, 1.0, 1.0, 1.0]
    assert weighted_quantile(x, [0.0, 1e-13, 0.5, 1.0], w).tolist() == [1.0, 1.0, 2.0, 3.0]
    assert weighted_quantile(x, 0.0, w, method="interpolated").item() == 1.0
    with pytest.raises(DataValidationError, match="positive weight"):
        weighted_quantile([np.nan, 1.0], 0.5, [1.0, 0.0])


def test_weighted_corr_refuses_infinite_values_naming_the_column():
    """Before: corr([1, 2, inf], [1, 2, 3]) came back as 0.0 (and correlation_max_abs_error as 1.0
    against a finite copy), a number for a correlation that is undefined."""
    real = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [1.0, 2.0, 3.0]})
    bad = real.assign(a=[1.0, 2.0, np.inf])
    with pytest.raises(DataValidationError, match=r"Column 'a' holds 1 infinite value\(s\): its Pearson correlation"):
        m.weighted_corr(bad)
    with pytest.raises(DataValidationError, match=r"Column 'a' holds 1 infinite value\(s\)"):
        m.correlation_max_abs_error(real, bad)
    # ranks are defined with infinities: spearman still answers
    assert m.weighted_corr(bad, method="spearman").loc["a", "b"] == pytest.approx(1.0)


@pytest.mark.parametrize("call, match", [
    (lambda r, s: m.correlation_max_abs_error(r, s.drop(columns="b")), r"Column 'b' is not in synthetic_df"),
    (lambda r, s: m.contingency_similarity(r, s.drop(columns="a"), ["a", "b"]), r"Column 'a' is not in synthetic_df"),
    (lambda r, s: m.contingency_similarity(r.drop(columns="a"), s, ["a", "b"]), r"Column 'a' is not in real_df"),
    (lambda r, s: m.subgroup_ks(r, s.drop(columns="b"), "b", "g"), r"Column 'b' is not in synthetic_df"),
    (lambda r, s: m.subgroup_ks(r, s.drop(columns="g"), "b", "g"), r"Column 'g' is not in synthetic_df"),
])
def test_frame_metrics_name_a_column_missing_from_a_frame(call, match):
    """Before: a column missing from one frame raised a bare KeyError ("['b'] not in index", 'a')."""
    real = pd.DataFrame({"a": np.arange(40.0), "b": np.arange(40.0) % 7, "g": [0, 1] * 20})
    with pytest.raises(DataValidationError, match=match):
        call(real, real.copy())


def test_correlation_error_refuses_a_synthetic_column_that_is_not_numeric():
    """Before: a real numeric column held as strings (or booleans) in the synthetic frame was dropped
    from the synthetic correlation matrix only; the 1x1 matrix broadcast against the real 2x2 one and
    the error came back 0.0 (a perfect score) for reversed values."""
    real = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [1.0, 2.0, 3.0]})
    for values in (["3", "2", "1"], [True, False, True]):
        with pytest.raises(DataValidationError, match=r"Column 'b' is numeric in real_df but has dtype .* in synthetic_df"):
            m.correlation_max_abs_error(real, real.assign(b=values))
    assert m.correlation_max_abs_error(real, real.assign(b=[3.0, 2.0, 1.0])) == pytest.approx(2.0)


def test_point_mass_shares_refuses_weights_that_vanish_on_the_non_missing_values():
    """Before: values [0, 1, NaN] with weights [0, 0, 1] gave the share of 0 as NaN."""
    with pytest.raises(DataValidationError, match="weights of the non-missing values sum to 0"):
        m.point_mass_shares([0.0, 1.0, np.nan], [0.0, 0.0, 1.0])
    assert m.point_mass_shares([0.0, 1.0, np.nan], [1.0, 3.0, 0.0]).to_dict() == {0.0: 0.25, 1.0: 0.75}


def test_weighted_figures_match_hand_computations():
    """Weighted KS, zero share and correlation on tiny examples, worked by hand."""
    # F_real with weights (2, 1, 1) on (0, 1, 2): 0.5, 0.75, 1; unweighted: 1/3, 2/3, 1 -> sup 1/6
    assert m.ks_statistic([0, 1, 2], [0, 1, 2], [2, 1, 1]) == pytest.approx(1 / 6)
    # zero share: real 2 of 4 records at 0; synthetic weight 3 of 6 at 0 -> both 0.5
    pm = m.point_mass_errors([0, 0, 1, 2], [0, 1, 1, 1], None, [3, 1, 1, 1])
    assert pm.set_index("value").loc[0.0, "abs_error"] == pytest.approx(0.0)
    # weights (1, 1, 2) on a = (0, 1, 2), b = (0, 1, 0): means 1.25, 0.25; cov -0.0625; var 0.6875, 0.1875
    r = m.weighted_corr(pd.DataFrame({"a": [0.0, 1.0, 2.0], "b": [0.0, 1.0, 0.0]}), [1, 1, 2]).loc["a", "b"]
    assert r == pytest.approx(-0.0625 / np.sqrt(0.6875 * 0.1875))


@pytest.mark.parametrize("columns", ["ab", []])
def test_contingency_similarity_refuses_columns_that_are_not_a_list_of_names(columns):
    """Before: columns="ab" was read letter by letter as ["a", "b"] and scored the joint table of two other
    columns (0.5 here, for a column "ab" identical in both frames); columns=[] raised a raw ValueError
    ("No group keys passed!")."""
    real = pd.DataFrame({"a": [1, 2, 3, 4], "b": [0, 1, 0, 1], "ab": [0, 0, 0, 0]})
    with pytest.raises(DataValidationError, match="The 'columns' parameter must be a non-empty list"):
        m.contingency_similarity(real, real.assign(b=[1, 1, 0, 0]), columns)
    assert m.contingency_similarity(real, real.assign(b=[1, 1, 0, 0]), ["ab"]) == 1.0


def test_quantile_errors_ignore_records_of_weight_zero_at_the_minimum():
    """Before: at q=0 the inverted CDF picked the smallest value even when its weight was 0, so real
    (0, 1, 2, 3) with weights (0, 1, 1, 0) against its copies (1, 2) gave an error of 1.0 instead of 0."""
    q = [0.0, 0.5, 1.0]
    weighted = m.quantile_errors([0.0, 1, 2, 3], [1.0, 2.0], [0.0, 1, 1, 0], quantiles=q, scale=False)
    copies = m.quantile_errors([1.0, 2.0], [1.0, 2.0], quantiles=q, scale=False)
    pd.testing.assert_series_equal(weighted, copies)
    assert weighted.tolist() == [0.0, 0.0, 0.0]
    # the synthetic side too, and the scaled figure
    assert m.quantile_errors([1.0, 2.0], [-5.0, 1.0, 2.0], None, [0.0, 1.0, 1.0], quantiles=q).tolist() == [0.0, 0.0, 0.0]
