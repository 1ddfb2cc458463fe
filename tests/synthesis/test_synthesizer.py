import zipfile

import numpy as np
import pandas as pd
import pytest
import torch

from microplex import DataValidationError, NotFittedError, Synthesizer, VariableSpec

TARGETS = ["re74", "re75", "re78"]
CONDITIONS = ["age", "educ", "black", "hisp", "marr", "nodeg"]


@pytest.fixture(scope="module")
def small(cps1):
    return cps1.sample(3000, random_state=0).reset_index(drop=True)


@pytest.fixture(scope="module")
def fitted(small):
    return Synthesizer(TARGETS, CONDITIONS, epochs=5, verbose=False).fit(small, seed=0)


def test_generate_keeps_conditions_rows_and_dtypes(fitted, small):
    cond = small[CONDITIONS].iloc[:50].set_index(np.arange(100, 150))
    out = fitted.generate(cond, seed=1)
    assert out.index.equals(cond.index)
    pd.testing.assert_frame_equal(out[CONDITIONS], cond)
    assert all(out[t].dtype == np.float64 for t in TARGETS)
    assert (out[TARGETS] >= 0).all().all()


def test_point_masses_are_detected(fitted):
    assert fitted.point_masses_ == {"re74": (0.0, 25862.32), "re75": (0.0, 25243.55), "re78": (0.0, 25564.67)}


def test_same_seed_gives_identical_fits_and_samples(small):
    kw = dict(epochs=2, verbose=False)
    a = Synthesizer(TARGETS, CONDITIONS, **kw).fit(small, seed=3)
    b = Synthesizer(TARGETS, CONDITIONS, **kw).fit(small, seed=3)
    for (k, v), v2 in zip(a.model_.state_dict().items(), b.model_.state_dict().values(), strict=True):
        assert torch.equal(v, v2), k
    pd.testing.assert_frame_equal(a.sample(500, seed=1), b.sample(500, seed=1), check_exact=True)
    assert not a.sample(500, seed=1).equals(a.sample(500, seed=2))


def test_sample_draws_weighted_training_conditions(fitted):
    pop = fitted.sample(2000, seed=0)
    assert len(pop) == 2000
    assert set(pop.columns) == set(CONDITIONS + TARGETS)


def test_save_load_round_trip_without_pickle(fitted, small, tmp_path):
    path = tmp_path / "model.mpx"
    fitted.save(path)
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == ["conditions.parquet", "metadata.json", "weights.safetensors"]
    loaded = Synthesizer.load(path)
    pd.testing.assert_frame_equal(loaded.generate(small.head(200), seed=5),
                                  fitted.generate(small.head(200), seed=5), check_exact=True)
    np.testing.assert_allclose(loaded.log_prob(small.head(200)), fitted.log_prob(small.head(200)))


def test_load_rejects_other_files(tmp_path):
    bad = tmp_path / "x.mpx"
    bad.write_bytes(b"not a zip")
    with pytest.raises(DataValidationError, match="not a microplex model file"):
        Synthesizer.load(bad)


def test_log_prob_is_a_normalized_density_with_point_masses():
    """P(point masses) + integral of the continuous density = 1, in data units."""
    rng = np.random.default_rng(0)
    n = 2000
    g = rng.integers(0, 2, n)
    x = np.where(rng.random(n) < 0.2 + 0.3 * g, 0.0, np.exp(rng.normal(1 + g, 0.5, n)))
    df = pd.DataFrame({"x": x, "g": g})
    synth = Synthesizer(["x"], ["g"], epochs=20, verbose=False).fit(df, seed=0)
    for group in (0, 1):
        grid = np.concatenate([np.linspace(1e-6, 1, 20_000), np.linspace(1, 400, 200_000)[1:]])
        lp = synth.log_prob(pd.DataFrame({"x": grid, "g": group}))
        mass0 = np.exp(synth.log_prob(pd.DataFrame({"x": [0.0], "g": [group]})))[0]
        total = mass0 + np.trapezoid(np.exp(lp), grid)
        assert total == pytest.approx(1.0, abs=0.01)
        assert mass0 == pytest.approx(0.2 + 0.3 * group, abs=0.06)


def test_zero_between_negative_and_positive_values_makes_the_sign_a_state():
    """Losses, zeros and profits: the sign is a discrete state, each side its own segment; the
    density stays normalized and samples keep the sign shares and both sides' shapes."""
    rng = np.random.default_rng(0)
    n = 4000
    g = rng.integers(0, 2, n)
    sign = np.where(rng.random(n) < 0.25 + 0.3 * g, -1.0, 1.0)
    x = np.where(rng.random(n) < 0.3, 0.0, sign * np.exp(rng.normal(6 + g, 0.7, n)))
    df = pd.DataFrame({"x": x, "g": g})
    # Moment standardization: each group's side is exactly lognormal here, which an affine flow fits in
    # the log scale. The default quantile standardization Gaussianizes the pooled side (a mixture of the
    # two groups' lognormals), so the smaller group's side is skewed in the flow's coordinates and its
    # drawn log-values spread wider (measured: sd 0.90 against 0.68; medians and shares still hold).
    synth = Synthesizer(["x"], ["g"], standardize="moments", verbose=False).fit(df, seed=0)  # 98 epochs
    enc = synth.encoders_["x"]
    assert enc.point_masses == [0.0] and [s.sign for s in enc.segments] == [-1, 1]
    assert [s.transform for s in enc.segments] == ["log", "log"]
    out = synth.generate(pd.DataFrame({"g": np.repeat([0, 1], 5000)}), seed=1)
    for group in (0, 1):
        real, fake = df.x[df.g == group], out.x[out.g == group]
        for share in (lambda v: (v < 0).mean(), lambda v: (v == 0).mean()):
            assert share(fake) == pytest.approx(share(real), abs=0.03)
        # no mass leaks into the gap around zero that no record occupies
        assert (np.abs(fake[fake != 0]) < np.exp(6 + group - 4 * 0.7)).mean() < 0.01  # one asinh segment: 0.03-0.06
        for side in (-1, 1):
            r, f = np.log(side * real[side * real > 0]), np.log(side * fake[side * fake > 0])
            assert f.mean() == pytest.approx(r.mean(), abs=0.1) and f.std() == pytest.approx(r.std(), abs=0.1)
    grid = np.exp(np.linspace(0, 12, 200_000))
    for group in (0, 1):
        mass0 = np.exp(synth.log_prob(pd.DataFrame({"x": [0.0], "g": [group]})))[0]
        total = mass0 + sum(
            np.trapezoid(np.exp(synth.log_prob(pd.DataFrame({"x": side * grid, "g": group}))), grid) for side in (-1, 1)
        )
        assert total == pytest.approx(1.0, abs=0.01)


def test_weights_move_the_synthetic_distribution(small):
    w = np.where(small["re78"] == 0, 5.0, 1.0)
    df = small.assign(w=w)
    synth = Synthesizer(["re78"], ["age"], epochs=60, verbose=False).fit(df, weight_col="w", seed=0)
    expected = np.average(small["re78"] == 0, weights=w)
    unweighted = (small["re78"] == 0).mean()
    got = (synth.generate(pd.concat([small[["age"]]] * 4), seed=0)["re78"] == 0).mean()
    assert abs(got - expected) < 0.03
    assert abs(got - unweighted) > 0.15


def test_negative_values_categorical_and_integer_targets():
    rng = np.random.default_rng(0)
    n = 3000
    region = rng.choice(["north", "south", "east"], n)
    df = pd.DataFrame({
        "region": region,
        "profit": rng.normal(0, 1000, n) + np.where(region == "north", 2000, 0),
        "status": rng.choice([1, 2, 5], n),
        "hours": rng.integers(0, 80, n),
    })
    synth = Synthesizer(["profit", "status", "hours"], ["region"], epochs=60, verbose=False).fit(df, seed=0)
    assert synth.kinds_ == {"profit": "continuous", "status": "categorical", "hours": "integer", "region": "categorical"}
    out = synth.sample(3000, seed=0)
    assert (out["profit"] < 0).mean() > 0.1
    assert out["status"].dtype == np.int64 and set(out["status"]) <= {1, 2, 5}
    assert out["hours"].dtype == np.int64
    assert out["region"].isin(["north", "south", "east"]).all()
    north = out.loc[out.region == "north", "profit"].mean() - out.loc[out.region != "north", "profit"].mean()
    assert 1500 < north < 2500


def test_schema_overrides_point_masses(small):
    synth = Synthesizer(["re78"], ["age"], schema={"re78": VariableSpec(point_masses=(0.0,))}, epochs=1, verbose=False)
    assert synth.fit(small).point_masses_ == {"re78": (0.0,)}


# -- bad input --------------------------------------------------------------------------
def test_generate_before_fit():
    with pytest.raises(NotFittedError, match="not fitted yet"):
        Synthesizer(["a"]).generate(pd.DataFrame({"b": [1]}))


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda d: d.drop(columns="educ"), r"missing columns \['educ'\]"),
        (lambda d: d.assign(age=np.where(d.index == 3, np.inf, d.age)), "Condition column 'age' has 1 infinite"),
        (lambda d: d.assign(re78=np.where(d.index == 3, np.inf, d.re78)), "Target column 're78' has 1 infinite"),
        (lambda d: d.assign(w=-1.0), "'w' has 3000 negative weights"),
        (lambda d: d.assign(w=0.0), "'w' sums to 0"),
        (lambda d: d.iloc[:0], "is empty"),
        (lambda d: d.assign(educ=12), "Condition column 'educ' is constant"),
    ],
)
def test_bad_input_is_named(small, mutate, match):
    df = mutate(small.assign(w=1.0))
    with pytest.raises(DataValidationError, match=match):
        Synthesizer(TARGETS, CONDITIONS, epochs=1, verbose=False).fit(df, weight_col="w")


def test_bad_parameters_are_named(small):
    with pytest.raises(DataValidationError, match="'flow' parameter must be one of 'maf', 'nsf'. Got 'gan'"):
        Synthesizer(TARGETS, CONDITIONS, flow="gan").fit(small)
    with pytest.raises(DataValidationError, match="both targets and conditions"):
        Synthesizer(TARGETS, ["re74"]).fit(small)


def test_unseen_condition_category_at_generate():
    df = pd.DataFrame({"r": ["a", "b"] * 50, "y": np.arange(100.0) + 1})
    synth = Synthesizer(["y"], ["r"], epochs=1, verbose=False).fit(df)
    with pytest.raises(DataValidationError, match=r"'r' has categories not seen in training: \['c'\]"):
        synth.generate(pd.DataFrame({"r": ["c"]}))


@pytest.mark.parametrize("flow", ["maf", "nsf"])
@pytest.mark.parametrize("targets, conditions", [(["re78"], []), (["age"], []), (["age", "re78"], ["educ"])])
def test_without_conditions_or_point_masses(small, flow, targets, conditions):
    synth = Synthesizer(targets, conditions, flow=flow, epochs=2, verbose=False).fit(small, seed=0)
    out = synth.sample(200, seed=0)
    assert list(out.columns) == conditions + targets
    assert np.isfinite(synth.log_prob(small.head(50))).all()


def test_without_validation_the_point_masses_are_calibrated_in_sample(cps1):
    # Trained to the end (no early stopping), the learning rate decays to 0, so the pattern head
    # ends at the weighted maximum-likelihood optimum, where each pattern's mean predicted
    # probability equals its training share (real data: zeros and top codes of three incomes).
    synth = Synthesizer(TARGETS, CONDITIONS, epochs=40, validation_fraction=0.0, verbose=False).fit(cps1, seed=0)
    drawn = synth.generate(pd.concat([cps1[CONDITIONS]] * 5, ignore_index=True), seed=1)
    for v in TARGETS:
        for value in (0.0, cps1[v].max()):
            share, got = (cps1[v] == value).mean(), (drawn[v] == value).mean()
            assert abs(got - share) < 0.005, (v, value, got, share)


def test_fit_bar_ends_where_early_stopping_ends_and_leaves_a_final_line(small, capsys):
    synth = Synthesizer(["re78"], ["age"], epochs=400, validation_fraction=0.3, patience=2, hidden_features=(8, 8),
                        transforms=1).fit(small.head(600), seed=0)
    run = len(synth.history_)
    assert run < 400                                                    # early stopping ended the fit
    last = capsys.readouterr().err.replace("\r", "\n").strip().splitlines()[-1]
    assert last.startswith("fit (stopped early): 100%") and f" {run}/{run} [" in last
    Synthesizer(["re78"], ["age"], epochs=3, hidden_features=(8, 8), transforms=1).fit(small.head(300), seed=0)
    last = capsys.readouterr().err.replace("\r", "\n").strip().splitlines()[-1]
    assert last.startswith("fit: 100%") and " 3/3 [" in last              # without early stopping: every epoch
