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
