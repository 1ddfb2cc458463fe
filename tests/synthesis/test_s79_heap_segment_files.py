"""Model files whose heap segments were forged: knots deleted where no rounding grid pins the segment's values, or
``free: false`` added to a segment of other values. Each forged file is built from a real saved one."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest

from microplex import DataValidationError, Synthesizer
from microplex.synthesis.schema import VariableSpec

from _model_files import edit_metadata, members

pytestmark = pytest.mark.filterwarnings("ignore")  # per test: a module-level filter outlived the module


def _fit(x: np.ndarray, masses: tuple, heaps: tuple, kind: str | None = None, **params) -> Synthesizer:
    age = np.random.default_rng(1).integers(18, 80, len(x))
    return Synthesizer(["x"], ["age"], epochs=1, hidden_features=(8,), transforms=1, verbose=False,
                       schema={"x": VariableSpec(kind, point_masses=masses, heaps=heaps)}, **params).fit(
        pd.DataFrame({"x": x, "age": age}), seed=0)


def _saved(synth: Synthesizer, tmp_path) -> bytes:
    synth.save(tmp_path / "m.mpx")
    return (tmp_path / "m.mpx").read_bytes()


def _segment(data: bytes) -> dict:
    return json.loads(dict(members(data))["metadata.json"])["encoders"]["x"]["segments"][0]


def _load(data: bytes) -> Synthesizer:
    return Synthesizer.load(io.BytesIO(data))


def _many(heaps: tuple, n: int = 2000) -> np.ndarray:
    """0 and 100 point masses, ``heaps`` (10% each) and values in (1, 99) to three decimals off them (logit)."""
    rng = np.random.default_rng(0)
    u = rng.random(n)
    x = np.where(u < 0.2, 0.0, np.where(u < 0.3, 100.0, rng.uniform(1, 99, n).round(3)))
    for i, h in enumerate(heaps):
        x = np.where((u >= 0.3 + 0.1 * i) & (u < 0.4 + 0.1 * i), h, x)
    return x


def _off_heaps(synth: Synthesizer, heaps: tuple) -> np.ndarray:
    x = synth.sample(4000, seed=3)["x"].to_numpy()
    return x[~np.isin(x, (0.0, 100.0, *heaps))]


@pytest.mark.parametrize("version", [1, 2])
def test_knots_deleted_from_an_older_version_file_without_a_rounding_grid_are_refused(tmp_path, version):
    """``rounding=False``: no grid pins the values off the heaps, and a logit segment records no end. Edited to an
    older version (which lacks ``single_value``) with the knots deleted, the file loaded and drew other values
    (off-heap p10/p50/p90 11.56/62.8/94.69 for the fitted 9.39/67.29/97.58)."""
    synth = _fit(_many((40.0,)), (0.0, 100.0), (40.0,), rounding=False)
    data = _saved(synth, tmp_path)
    assert "knots" in _segment(data) and "rounding" not in json.loads(dict(members(data))["metadata.json"])[
        "encoders"]["x"]

    def old(m):
        m["format_version"] = version
        m["encoders"]["x"]["segments"][0].pop("knots")
    with pytest.raises(DataValidationError, match=r"'encoders\.x\.segments\[0\]\.knots' must be present: .* "
                                                  rf"format_version {version} records nothing that pins its single "
                                                  r"value .*Fit the model again"):
        _load(edit_metadata(data, old))


def test_a_single_value_segment_without_a_rounding_grid_loads_from_its_version_3_file(tmp_path):
    """What fit writes (heap 40, one other value, 70, no grid) loads and draws as fitted from its own file; the same
    file edited to version 2, without ``single_value``, is refused: nothing else pins the value."""
    x = np.random.default_rng(0).choice([0.0, 100.0, 40.0, 70.0], 400, p=[0.3, 0.3, 0.2, 0.2])
    synth = _fit(x, (0.0, 100.0), (40.0,), rounding=False)
    data = _saved(synth, tmp_path)
    assert _segment(data)["single_value"] == 70.0 and "knots" not in _segment(data)
    pd.testing.assert_frame_equal(_load(data).sample(500, seed=3), synth.sample(500, seed=3))

    def old(m):
        m["format_version"] = 2
        m["encoders"]["x"]["segments"][0].pop("single_value")
    with pytest.raises(DataValidationError, match=r"'encoders\.x\.segments\[0\]\.knots' must be present"):
        _load(edit_metadata(data, old))


def _forged_free(m: dict) -> None:
    seg = m["encoders"]["x"]["segments"][0]
    seg.pop("knots", None)
    seg["free"] = False


_FREE = (r"'encoders\.x\.segments\[0\]\.free' must be false only on a segment whose values all sit on its heaps")


@pytest.mark.parametrize("params", [{"rounding": False}, {}, {"standardize": "moments"}],
                         ids=["no grid", "grid", "moments"])
@pytest.mark.parametrize("heaps", [(40.0,), (40.0, 70.0)], ids=["one heap", "two heaps"])
def test_free_false_added_to_a_segment_of_other_values_is_refused(tmp_path, params, heaps):
    """``free: false`` (every value on a heap) added to a segment of many values, its knots deleted: the file loaded
    and drew none of them (0 of 5,000 draws off the heaps, for 432 fitted, heaps 40 and 70)."""
    synth = _fit(_many(heaps), (0.0, 100.0), heaps, **params)
    data = _saved(synth, tmp_path)
    assert len(_off_heaps(synth, heaps)) > 0
    with pytest.raises(DataValidationError, match=_FREE):
        _load(edit_metadata(data, _forged_free))


def test_free_false_added_to_an_integer_segment_is_refused(tmp_path):
    """An integer variable with integer heaps (compact coordinates): the same forgery is judged on the heaps'
    coordinates."""
    x = np.round(_many((40.0, 70.0))).astype(np.int64)
    synth = _fit(x, (0.0, 100.0), (40.0, 70.0), "integer")
    data = _saved(synth, tmp_path)
    assert json.loads(dict(members(data))["metadata.json"])["encoders"]["x"].get("compact") is True
    with pytest.raises(DataValidationError, match=_FREE):
        _load(edit_metadata(data, _forged_free))


@pytest.mark.parametrize("dtype, masses, heaps", [
    ("float64", (0.0, 20.0, 35.0, 40.0, 45.0), (30.0,)),
    ("float64", (0.0, 20.0, 40.0, 45.0), (30.0, 35.0)),
    ("float64", (0.0, 45.0), (20.0, 30.0, 35.0, 40.0)),
    ("int64", (0.0, 45.0), (20.0, 30.0, 35.0, 40.0)),
])
def test_a_segment_of_heaps_only_loads_from_its_file(tmp_path, dtype, masses, heaps):
    """What fit writes for a segment whose every value is a heap (one, two or four heaps; float, or integer in
    compact coordinates) loads and draws as fitted."""
    rng = np.random.default_rng(0)
    x = rng.choice([0.0, 20.0, 40.0, 35.0, 45.0, 30.0], 3000, p=[0.3, 0.2, 0.3, 0.1, 0.06, 0.04]).astype(dtype)
    synth = _fit(x, masses, heaps, "integer" if dtype == "int64" else "continuous")
    assert [seg.free for seg in synth.encoders_["x"].segments] == [False]
    data = _saved(synth, tmp_path)
    pd.testing.assert_frame_equal(_load(data).sample(500, seed=3), synth.sample(500, seed=3))
