"""Session 57: a segment whose every training value sits on a heap draws heaps only.

A float variable with more heavy values than point masses (hours of 0, 20, 30, 35, 40 and 45; five point masses
and a heap at 30 between 20 and 35) has a segment that holds the heap alone. Its records could still draw "no
heap": the flow, fitted to a single value, decoded 30 plus or minus a unit in the last place, so 11,547 of 300,000
draws of the model below (39% of that segment's) were neither 30 nor any other training value, after 5 epochs. The segment now says
that it holds no value off its heaps (``free: false`` in the model file), and its heap head never draws "no heap";
such a value has ``log_prob`` -inf.
"""

import io
import warnings

import numpy as np
import pandas as pd
import pytest

from microplex import DataValidationError, Synthesizer
from microplex.synthesis import VariableSpec

from _model_files import edit_metadata

VALUES = [0.0, 20.0, 40.0, 35.0, 45.0, 30.0]


def _hours(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    hours = rng.choice(VALUES, n, p=[0.3, 0.2, 0.3, 0.1, 0.06, 0.04])
    return pd.DataFrame({"x": rng.normal(size=n), "hours": hours, "inc": rng.lognormal(size=n),
                         "w": rng.uniform(0.5, 2.0, n)})


def _fit(df: pd.DataFrame, **params) -> Synthesizer:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Synthesizer(["hours", "inc"], ["x"], epochs=5, verbose=False, **params).fit(df, weight_col="w", seed=0)


@pytest.fixture(scope="module")
def fitted():
    return _fit(_hours())


def test_a_segment_of_heaps_only_draws_its_heaps(fitted, tmp_path):
    enc = fitted.encoders_["hours"]
    assert enc.heaps == [30.0] and [seg.free for seg in enc.segments] == [False]
    drawn = fitted.sample(300_000, seed=1)
    assert set(drawn["hours"]) == set(VALUES)
    assert np.isfinite(fitted.log_prob(drawn.iloc[:20_000])).all()
    off = drawn.iloc[:3].assign(hours=[30.0 + 1e-9, 29.5, 21.0])  # flow values inside that segment
    assert np.isneginf(fitted.log_prob(off)).all()
    # saved and loaded, the same model: the flag is in the file
    fitted.save(tmp_path / "m.mpx")
    loaded = Synthesizer.load(tmp_path / "m.mpx")
    assert [seg.free for seg in loaded.encoders_["hours"].segments] == [False]
    pd.testing.assert_frame_equal(loaded.sample(5000, seed=2), fitted.sample(5000, seed=2))


def test_a_segment_with_values_off_its_heaps_keeps_the_file_keys(tmp_path):
    # the flag is written only where it is false: other models' files keep their keys and bytes
    rng = np.random.default_rng(1)
    df = _hours().assign(hours=lambda d: np.where(d["hours"] == 30.0, rng.uniform(21, 34, len(d)).round(1),
                                                   d["hours"]))
    df.loc[:400, "hours"] = 30.0  # a heap among values off it
    synth = _fit(df, max_point_masses=3)
    enc = synth.encoders_["hours"]
    assert enc.heaps and all(seg.free for seg in enc.segments)
    assert all("free" not in seg for seg in enc.to_dict()["segments"])


def test_a_record_of_weight_zero_off_the_heaps_is_left_out():
    df = _hours()
    extra = df.iloc[:3].assign(hours=[31.5, 22.25, 33.0], w=0.0)  # flow values in the segment of heaps only
    alone, with_zero = _fit(df), _fit(pd.concat([df, extra], ignore_index=True))
    assert np.isfinite(with_zero.history_["train_loss"]).all()
    pd.testing.assert_frame_equal(with_zero.sample(2000, seed=1), alone.sample(2000, seed=1))


def _split_model(tmp_path) -> bytes:
    rng = np.random.default_rng(2)
    n = 2000
    y = np.where(rng.random(n) < 0.4, 0.0, np.where(rng.random(n) < 0.5, -rng.lognormal(3, 1, n), 30.0))
    df = pd.DataFrame({"x": rng.normal(size=n), "y": y, "w": 1.0})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        synth = Synthesizer(["y"], ["x"], epochs=1, verbose=False,
                            schema={"y": VariableSpec(point_masses=(0.0,), heaps=(30.0,))}).fit(df, weight_col="w")
    assert [(seg.sign, seg.free) for seg in synth.encoders_["y"].segments] == [(-1, True), (1, False)]
    synth.save(tmp_path / "split.mpx")
    return (tmp_path / "split.mpx").read_bytes()


@pytest.mark.parametrize("edit, match", [
    (lambda m: m["encoders"]["y"]["segments"][1].__setitem__("free", True), r"segments\[1\]\.free"),
    (lambda m: m["encoders"]["y"]["segments"][1].__setitem__("free", 0), r"segments\[1\]\.free"),
    # the flag moved to the segment without a heap: its records would have no state to draw
    (lambda m: (m["encoders"]["y"]["segments"][1].pop("free"),
                m["encoders"]["y"]["segments"][0].__setitem__("free", False)), r"segments\[0\]\.free"),
])
def test_a_tampered_flag_is_refused(tmp_path, edit, match):
    data = edit_metadata(_split_model(tmp_path), edit)
    with pytest.raises(DataValidationError, match=match):
        Synthesizer.load(io.BytesIO(data))
