"""s74: fusion checked against figures computed here: the between-imputation variance of several imputations,
reports on a schema that declares number codes categorical, an empty schema."""

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from microplex import DataValidationError, Source, fuse


def _zero_inflated(n=200, seed=0):
    """Base a(x, y) and donor b(x, z), z zero for about 30% of the records and log-normal otherwise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=2 * n)
    z = np.where(rng.random(2 * n) < 0.3, 0.0, np.exp(x + 0.5 * rng.normal(size=2 * n)))
    a = Source(pd.DataFrame({"x": x[:n], "y": x[:n] + rng.normal(size=n)}), "a")
    b = Source(pd.DataFrame({"x": x[n:], "z": z[n:]}), "b")
    return a, b


def test_pool_between_variance_is_that_of_independent_draws():
    """Each imputed value is a draw from the donor model, so its variance over the imputations estimates
    Var(z_i | x_i), and independent imputations give a mean a between-imputation variance of sum_i s_i^2 / n^2.
    Stratified draws (the Synthesizer's default, used before) spread one imputation's draws over the records:
    pool's between variance was 0.44 of that for the mean of z and 0.06 for its share of zeros (400 imputations of
    200 records); now 1.07 and 1.05."""
    a, b = _zero_inflated()
    m, n = 400, 200
    result = fuse([a, b], base="a", n_imputations=m, seed=0, holdout_fraction=0, synthesizer_params={"epochs": 3})
    z = np.column_stack([d["z"].to_numpy(float) for d in result.imputations()])
    assert z.shape == (n, m)
    for values, statistic in ((z, lambda d: d["z"].mean()), ((z == 0).astype(float), lambda d: (d["z"] == 0).mean())):
        independent = values.var(axis=1, ddof=1).sum() / n ** 2
        pooled = result.pool(statistic)
        assert pooled["between_variance"] == pytest.approx(values.mean(axis=0).var(ddof=1), rel=1e-9)
        assert 0.8 <= pooled["between_variance"] / independent <= 1.25
    assert result.models["b"].sampling == "independent"


def test_single_imputation_keeps_stratified_draws():
    """One imputation is one synthetic draw: it keeps the Synthesizer's default (stratified, less Monte Carlo noise
    in its shares)."""
    a, b = _zero_inflated()
    result = fuse([a, b], base="a", seed=0, holdout_fraction=0, synthesizer_params={"epochs": 1})
    assert result.models["b"].sampling == "stratified"


def test_explicit_stratified_sampling_with_imputations_warns():
    """sampling='stratified' set by the user with several imputations is kept, with a warning that pool's
    between-imputation variance is then understated; 'independent' set explicitly gives no such warning."""
    a, b = _zero_inflated()
    with pytest.warns(UserWarning, match=r"sampling='stratified' with n_imputations=2.*understates"):
        result = fuse([a, b], base="a", n_imputations=2, seed=0, holdout_fraction=0,
                      synthesizer_params={"epochs": 1, "sampling": "stratified"})
    assert result.models["b"].sampling == "stratified"
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*sampling=", category=UserWarning)
        fuse([a, b], base="a", n_imputations=2, seed=0, holdout_fraction=0,
             synthesizer_params={"epochs": 1, "sampling": "independent"})


def test_an_empty_schema_is_no_schema():
    """synthesizer_params={"schema": {}} (a comprehension that matched nothing) fuses as schema=None does (before:
    DataValidationError "The 'target_vars' parameter must be a non-empty list ... Got [] instead.")."""
    a, b = _zero_inflated(n=100)
    params = {"epochs": 1, "hidden_features": (8,), "transforms": 1}
    empty = fuse([a, b], base="a", seed=0, synthesizer_params={**params, "schema": {}})
    none = fuse([a, b], base="a", seed=0, synthesizer_params={**params, "schema": None})
    pd.testing.assert_frame_equal(empty.data, none.data, check_exact=True)
    with pytest.raises(DataValidationError, match="schema"):
        fuse([a, b], base="a", seed=0, synthesizer_params={**params, "schema": []})


def test_fusion_docs_do_not_describe_fusing_with_differential_privacy():
    """fuse refuses every differential-privacy parameter; docs/fusion.md said that with
    synthesizer_params={"epsilon": ...} records with a missing value are left out, with a warning."""
    a, b = _zero_inflated(n=50)
    with pytest.raises(DataValidationError, match=r"sets \['epsilon'\]: fuse cannot fit its donor models with "
                                                  "differential privacy"):
        fuse([a, b], base="a", synthesizer_params={"epsilon": 5.0, "epochs": 1})
    text = (Path(__file__).parents[1] / "docs" / "fusion.md").read_text()
    assert "epsilon" not in text and "differential privacy" not in text


def _coded_sources(n=400, seed=1):
    """Base a(region, x, y) and donor b(region, x, z, code) with survey weights: region a number code 1..4 whose
    effect on y and z is not monotone (as a number it explains far less than as categories), code 1..3 a donor
    block variable drawn from the region."""
    rng = np.random.default_rng(seed)
    region = rng.integers(1, 5, size=2 * n)
    effect = np.array([0.0, 2.0, -2.0, 1.5, -1.0])[region]
    x = rng.normal(size=2 * n)
    y = effect + 0.5 * x + rng.normal(size=2 * n)
    z = -effect + 0.5 * x + rng.normal(size=2 * n)
    code = np.where(rng.random(2 * n) < 0.8, (region % 3) + 1, rng.integers(1, 4, size=2 * n))
    w = rng.uniform(1, 3, size=2 * n)
    a = pd.DataFrame({"region": region[:n], "x": x[:n], "y": y[:n], "w": w[:n]})
    b = pd.DataFrame({"region": region[n:], "x": x[n:], "z": z[n:], "code": code[n:], "w": w[n:]})
    return Source(a, "a", weight_col="w"), Source(b, "b", weight_col="w")


def _wtvd(x, wx, y, wy):
    cats = np.union1d(x, y)
    px = np.array([wx[x == c].sum() for c in cats]) / wx.sum()
    py = np.array([wy[y == c].sum() for c in cats]) / wy.sum()
    return 0.5 * float(np.abs(px - py).sum())


def _hand_bounds(fy, y, wy, fz, z, wz):
    """The documented bounds with X = region indicators (first category the reference), x."""
    cats = sorted(set(fy["region"]) | set(fz["region"]))[1:]

    def design(f):
        return np.column_stack([(f["region"].to_numpy() == c).astype(float) for c in cats] + [f["x"].to_numpy(float)])

    def wcov(m, w):
        w = w / w.sum()
        c = m - w @ m
        return (c * w[:, None]).T @ c

    xy, xz = design(fy), design(fz)
    cxx = wcov(np.concatenate([xy, xz]), np.concatenate([wy / wy.sum(), wz / wz.sum()]))
    rxx = cxx / np.outer(np.sqrt(np.diag(cxx)), np.sqrt(np.diag(cxx)))

    def r_with_x(v, x, w):
        c = wcov(np.column_stack([v, x]), w)
        s = np.sqrt(np.diag(c))
        return c[0, 1:] / (s[0] * s[1:])

    ry, rz = r_with_x(y, xy, wy), r_with_x(z, xz, wz)
    inv = np.linalg.inv(rxx)
    cia = ry @ inv @ rz
    half = np.sqrt((1 - ry @ inv @ ry) * (1 - rz @ inv @ rz))
    return cia - half, cia, cia + half


def test_reports_treat_number_codes_declared_categorical_as_categories():
    """A region stored as numbers 1..4 and a donor code 1..3 declared VariableSpec(kind="categorical") are modelled
    as categories; the reports now read them so too: shared_comparison gives the region's weighted TVD (hand
    computed), the bounds of corr(z, y) use region indicators (the documented formula by hand, to 1e-9), no bounds
    row is a 'correlation' of the code, and the held-out scores of the code are TVD and agreement. Before: region
    compared as a number (SMD -0.152, KS 0.061, no TVD), the bounds regressed on the region code as a number
    (lower -0.900, cia -0.025, upper 0.849 against -0.889, -0.632, -0.374 by hand), a bounds row for the code
    (cia 0.061) and a KS of its values (0.122)."""
    from microplex.synthesis.schema import VariableSpec

    a, b = _coded_sources()
    schema = {"region": VariableSpec(kind="categorical"), "code": VariableSpec(kind="categorical")}
    result = fuse([a, b], base="a", seed=0, synthesizer_params={"epochs": 2, "schema": schema})
    assert result.models["b"].kinds_["code"] == "categorical"

    row = result.shared_comparison.set_index("variable").loc["region"]
    wa, wb = a.weights, b.weights
    assert row["kind"] == "categorical" and np.isnan(row["smd"]) and np.isnan(row["ks"])
    assert row["tvd"] == pytest.approx(_wtvd(a.data["region"].to_numpy(), wa, b.data["region"].to_numpy(), wb),
                                       abs=1e-12)

    assert len(result.bounds) == 1
    bounds = result.bounds.iloc[0]
    assert (bounds["y"], bounds["z"]) == ("z", "y")
    lo, cia, hi = _hand_bounds(b.data, b.data["z"].to_numpy(float), wb, a.data, a.data["y"].to_numpy(float), wa)
    assert (bounds["lower"], bounds["cia"], bounds["upper"]) == pytest.approx((lo, cia, hi), abs=1e-9)

    diag = result.diagnostics.set_index("variable")
    assert diag.loc["code", "kind"] == "categorical"
    assert 0 <= diag.loc["code", "tvd"] <= 1 and 0 <= diag.loc["code", "agreement"] <= 1
    assert np.isnan(diag.loc["code", "ks"]) and np.isnan(diag.loc["code", "corr_true_imputed"])


def test_holdout_scores_of_a_declared_categorical_code_are_the_hand_figures():
    """holdout_scores with the code and region declared categorical: TVD and agreement of the code equal the hand
    figures of the model's own draws, and z's max_corr_error runs over x alone (region and code are no numbers)."""
    from microplex import Synthesizer
    from microplex.fusion import FusionStep
    from microplex.fusion._report import holdout_scores
    from microplex.synthesis.schema import VariableSpec

    _, b = _coded_sources()
    frame = b.data.rename(columns={"w": "__w"})
    train, hold = frame.iloc[:300], frame.iloc[300:].reset_index(drop=True)
    schema = {"region": VariableSpec(kind="categorical"), "code": VariableSpec(kind="categorical")}
    model = Synthesizer(["z", "code"], ["region", "x"], schema=schema, epochs=2, verbose=False).fit(
        train, weight_col="__w", seed=0)
    step = FusionStep("b", ("region", "x"), ("z", "code"))
    scores = {r["variable"]: r for r in holdout_scores(model, hold, step, "__w", 7, {}, {"region", "code"})}
    fake = model.generate(hold[["region", "x"]], seed=7)
    w = hold["__w"].to_numpy(float)
    t, s = hold["code"].to_numpy(float), fake["code"].to_numpy(float)
    assert scores["code"]["kind"] == "categorical"
    assert scores["code"]["tvd"] == pytest.approx(_wtvd(t, w, s, w), abs=1e-12)
    assert scores["code"]["agreement"] == pytest.approx(np.average(t == s, weights=w), abs=1e-12)

    def wcorr(u, v):
        c = np.cov(u, v, aweights=w)
        return c[0, 1] / np.sqrt(c[0, 0] * c[1, 1])

    zt, zs = hold["z"].to_numpy(float), fake["z"].to_numpy(float)
    expected = abs(wcorr(zt, hold["x"].to_numpy(float)) - wcorr(zs, fake["x"].to_numpy(float)))
    assert scores["z"]["max_corr_error"] == pytest.approx(expected, abs=1e-9)
