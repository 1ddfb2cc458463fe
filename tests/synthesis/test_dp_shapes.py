"""A DP Synthesizer on data of every shape a user brings: weighted or not, with or without
conditions, categorical, boolean and count columns, negative values.

Each shape must fit, spend at most the requested epsilon (and nearly all of it), release only
values inside the public bounds and categories, with no missing value, keep no training row, and
reload from its model file to the same release.
"""

import zipfile

import numpy as np
import pandas as pd
import pytest

from microplex import Synthesizer
from microplex._random import int_seed
from microplex.scale import generate_dataset

EPSILON = 1.0
BOUNDS = {"age": (16, 99), "kids": (0, 10), "inc": (0.0, 250_000.0), "hrs": (0.0, 99.0),
          "tax": (-1_000.0, 60_000.0), "w": (0.0, 5.0)}
CATEGORIES = {"sex": ["f", "m"], "region": list("ABCDE"), "flag": [False, True], "kind": ["x", "y", "z"]}


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 600
    inc = np.where(rng.random(n) < 0.3, 0.0, np.minimum(np.exp(rng.normal(10.0, 1.0, n)), 200_000.0))
    return pd.DataFrame({
        "age": rng.integers(18, 80, n), "sex": rng.choice(["f", "m"], n), "region": rng.choice(list("ABCDE"), n),
        "flag": rng.choice([True, False], n), "kids": rng.poisson(1.0, n), "inc": inc,
        "hrs": np.where(inc > 0, rng.choice([20.0, 40.0, 40.0, 50.0], n), 0.0), "tax": inc * 0.2 - 500.0,
        "kind": rng.choice(["x", "y", "z"], n), "w": rng.uniform(0.5, 3.0, n),
    })


SHAPES = {
    "weighted": (["inc", "hrs"], ["age", "sex", "region"], "w"),
    "no conditions": (["inc", "hrs"], [], None),
    "one target": (["inc"], ["age", "sex"], None),
    "boolean and count conditions": (["inc"], ["flag", "kids"], None),
    "a target with negative values": (["tax", "inc"], ["age"], None),
    "a categorical target": (["kind", "inc"], ["age", "sex"], "w"),
    "only categorical conditions": (["inc", "hrs"], ["sex", "region"], None),
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_every_shape_fits_within_budget_and_releases_public_values(data, shape, tmp_path):
    targets, conditions, weight = SHAPES[shape]
    cols = conditions + targets + ([weight] if weight else [])
    synth = Synthesizer(
        targets, conditions, condition_model=bool(conditions), epsilon=EPSILON, delta=1e-5, epochs=2,
        hidden_features=(8,), transforms=1, verbose=False,
        public_bounds={k: v for k, v in BOUNDS.items() if k in cols},
        public_categories={k: v for k, v in CATEGORIES.items() if k in cols},
    ).fit(data[cols], weight_col=weight, seed=0)

    spent = synth.privacy_["epsilon"]
    assert 0.95 * EPSILON <= spent <= EPSILON
    assert not hasattr(synth, "training_conditions_")

    out = synth.sample(300, seed=1)
    assert list(out.columns) == conditions + targets
    assert not out.isna().any().any()
    for name in conditions + targets:
        if name in CATEGORIES:
            assert set(out[name]) <= set(CATEGORIES[name]), name
        else:
            lo, hi = BOUNDS[name]
            assert out[name].min() >= lo and out[name].max() <= hi, name

    synth.save(tmp_path / "m.mpx")
    pd.testing.assert_frame_equal(Synthesizer.load(tmp_path / "m.mpx").sample(300, seed=1), out)


def test_a_dp_model_without_conditions_keeps_no_record_weight(data, tmp_path, edit_model_file):
    # Before session 35 such a model kept every record's weight (over its public bound) and wrote it to
    # the model file as a table of empty condition rows: record-level data that no noise covered.
    synth = Synthesizer(["inc"], [], epsilon=EPSILON, delta=1e-5, epochs=2, hidden_features=(8,), transforms=1,
                        verbose=False, public_bounds={"inc": BOUNDS["inc"], "w": BOUNDS["w"]}
                        ).fit(data[["inc", "w"]], weight_col="w", seed=0)
    assert not hasattr(synth, "training_weights_") and not hasattr(synth, "training_conditions_")
    synth.save(tmp_path / "m.mpx")
    with zipfile.ZipFile(tmp_path / "m.mpx") as z:
        assert sorted(z.namelist()) == ["metadata.json", "weights.safetensors"]
    out = synth.sample(200, seed=3)
    pd.testing.assert_frame_equal(Synthesizer.load(tmp_path / "m.mpx").sample(200, seed=3), out)
    # An older file with the table still loads; the table is dropped, not read.
    older = Synthesizer.load(edit_model_file((tmp_path / "m.mpx").read_bytes(), add_table=True))
    assert not hasattr(older, "training_weights_")
    pd.testing.assert_frame_equal(older.sample(200, seed=3), out)
    # Streaming without a conditions source draws from empty rows, not from training records.
    generate_dataset(synth, conditions=None, n=500, path=tmp_path / "pop", seed=1)
    streamed = pd.read_parquet(tmp_path / "pop")
    assert len(streamed) == 500 and streamed["inc"].between(*BOUNDS["inc"]).all()


def test_a_model_without_conditions_samples_the_same_rows_as_before_without_dp(data):
    # Sampling without conditions draws no training row; the rows are those of resampling the empty ones.
    synth = Synthesizer(["inc"], [], epochs=2, hidden_features=(8,), transforms=1, verbose=False
                        ).fit(data[["inc", "w"]], weight_col="w", seed=0)
    assert len(synth.training_weights_) == len(data)  # without DP the table is kept, as documented
    out = synth.sample(100, seed=4)
    rows = pd.DataFrame(index=pd.RangeIndex(100))
    gen_seed = np.random.SeedSequence(4).spawn(2)[1]
    pd.testing.assert_frame_equal(out, synth.generate(rows, seed=int_seed(gen_seed)), check_exact=True)


@pytest.mark.parametrize("private", [False, True])
def test_set_params_after_fit_does_not_change_what_is_saved(data, tmp_path, private):
    # Before session 35, save() wrote the current parameters beside the fitted state: another network size
    # or another epsilon made a file that load() refused (tensor shapes, the privacy record's epsilon).
    dp = dict(epsilon=EPSILON, delta=1e-5, public_bounds={"inc": BOUNDS["inc"]}) if private else {}
    synth = Synthesizer(["inc"], [], epochs=2, hidden_features=(8,), transforms=1, verbose=False, **dp
                        ).fit(data[["inc"]], seed=0)
    out = synth.sample(100, seed=2)
    synth.set_params(hidden_features=(16, 16), **({"epsilon": 2.0} if private else {}))
    synth.save(tmp_path / "m.mpx")
    loaded = Synthesizer.load(tmp_path / "m.mpx")
    assert loaded.hidden_features == (8,) and loaded.epsilon == (EPSILON if private else None)
    pd.testing.assert_frame_equal(loaded.sample(100, seed=2), out)
    assert synth.get_params()["hidden_features"] == (16, 16)  # the estimator keeps the new parameters
