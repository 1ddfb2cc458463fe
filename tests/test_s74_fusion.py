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
