"""Session 75: the rounding grid keys its magnitude bands by sign (microplex.synthesis.rounding).

A target whose losses are reported in round thousands and whose gains to the ten drew its gains on round thousands
28 times as often as in training: the bands were keyed by ``floor(log10 |x|)`` alone, so band 4 pooled the losses'
thousands with the gains' tens and applied the pooled hazard of level 3 (0.37) to both sides.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from microplex import DataValidationError, Synthesizer
from microplex.synthesis.rounding import RoundingGrid, decimal_levels, magnitude_bands
from test_s71_synthesis import _edit_metadata as edit_metadata  # tests/ is on sys.path (rootdir import)


def _losses_and_gains(n: int, seed: int) -> pd.DataFrame:
    """The audit's target: 40% losses reported in thousands, 40% gains to the ten, 20% zeros."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, n)
    u = rng.random(n)
    mag = rng.lognormal(8, 1, n)
    v = np.where(u < 0.4, -np.round(mag / 1000) * 1000, np.round(mag / 10) * 10)
    v[u > 0.8] = 0.0
    return pd.DataFrame({"age": age, "v": v})


def _thousands(x: np.ndarray) -> float:
    """Share of ``x`` on multiples of 1,000."""
    return float(np.mean(np.mod(x, 1000) == 0))


# -- the grid ---------------------------------------------------------------------------------------------------------
def test_a_grid_of_two_signed_values_keys_its_bands_by_sign():
    rng = np.random.default_rng(0)
    losses = -np.round(rng.uniform(10_000, 99_999, 2_000) / 1000) * 1000     # band 4, all round thousands
    gains = np.round(rng.uniform(10_000, 99_999, 2_000) / 10) * 10           # band 4, to the ten
    x = np.concatenate([losses, gains])
    grid = RoundingGrid.fit(x, np.ones(x.size), 20)
    assert grid.bands == {} and sorted(grid.sides) == [-1, 1]
    # the losses on ten-thousands and thousands, the gains on hundreds (their 19 round thousands merged into
    # them) and tens; pooled, band 4 had levels 4, 3, 2, 1 with a hazard of 0.48 for the thousands
    assert grid.sides[-1][0][4][0] == (4, 3) and grid.sides[1][0][4][0] == (2, 1)
    draws = rng.uniform(10_000, 99_999, 200_000)
    u = rng.random(draws.size)
    up = grid.apply(draws, u)
    down = grid.apply(-draws, u)
    # the gains' share of round thousands comes out as in training (1%); pooled with the losses it was 0.50
    assert _thousands(up) == pytest.approx(_thousands(gains), abs=0.005)
    assert _thousands(down) == 1.0                                           # the losses' as in training
    assert (decimal_levels(up) >= 1).all()


def test_a_sign_with_too_few_records_uses_the_whole_variables_shares():
    """As a band of fewer than ``min_count`` records does: the gains (10 records) have no bands of their own."""
    rng = np.random.default_rng(1)
    losses = -np.round(rng.uniform(10_000, 99_999, 500) / 1000) * 1000
    x = np.concatenate([losses, [12_340.0, 23_450.0, 34_560.0, 45_670.0, 56_780.0] * 2])
    grid = RoundingGrid.fit(x, np.ones(x.size), 20)
    assert sorted(grid.sides) == [-1]
    draws = rng.uniform(10_000, 99_999, 50_000)
    u = rng.random(draws.size)
    np.testing.assert_array_equal(grid.apply(draws, u), RoundingGrid({}, grid.pooled).apply(draws, u))
    np.testing.assert_array_equal(grid.apply(-draws, u),
                                  RoundingGrid(*grid.sides[-1]).apply(-draws, u))


def test_a_one_signed_grid_is_written_as_before():
    rng = np.random.default_rng(2)
    x = np.round(rng.uniform(10, 99_999, 3_000) / 100) * 100
    grid = RoundingGrid.fit(x, np.ones(x.size), 20)
    assert grid.sides is None and set(grid.to_dict()) == {"bands", "pooled"}
    assert RoundingGrid.fit(-x, np.ones(x.size), 20).to_dict() == grid.to_dict()


def test_a_grid_written_before_signs_applies_its_bands_to_both_signs():
    old = {"bands": [[4, [3, 2], [0.5, 1.0]]], "pooled": [[0], [1.0]]}
    grid = RoundingGrid.from_dict(old)
    assert grid.sides is None and grid.to_dict() == old
    x = np.array([41_234.4, -41_234.4, 41_234.4, -41_234.4, 1_234.4, -1_234.4])
    u = np.array([0.1, 0.1, 0.9, 0.9, 0.1, 0.1])
    assert grid.apply(x, u).tolist() == [41_000.0, -41_000.0, 41_200.0, -41_200.0, 1_234.0, -1_234.0]


def test_a_signed_grid_reads_back_as_written():
    rng = np.random.default_rng(3)
    x = np.concatenate([-np.round(rng.uniform(1, 9_999, 600)), np.round(rng.uniform(1, 999, 600), 1)])
    grid = RoundingGrid.fit(x, np.ones(x.size), 20)
    d = grid.to_dict()
    assert d["bands"] == [] and [s for s, _, _ in d["sides"]] == [-1, 1]
    back = RoundingGrid.from_dict(d)
    assert back.sides == grid.sides and back.pooled == grid.pooled and back.to_dict() == d
    draws = rng.uniform(-9_999, 999, 20_000)
    u = rng.random(draws.size)
    np.testing.assert_array_equal(back.apply(draws, u), grid.apply(draws, u))


_SIDE = [[4, [3], [1.0]]]


@pytest.mark.parametrize("sides, match", [
    ("yes", r"rounding.sides must be a list"),
    ([[0, _SIDE, [[3], [1.0]]]], r"rounding.sides\[0\] must be a \[sign, bands, pooled\] triple"),
    ([[1, _SIDE, [[3], [1.0]]], [-1, _SIDE, [[3], [1.0]]]], r"rounding.sides\[1\] must be .*signs -1 then 1"),
    ([[1, _SIDE, [[3], [1.0]]], [1, _SIDE, [[3], [1.0]]]], r"rounding.sides\[1\] must be .*signs -1 then 1"),
    ([[True, _SIDE, [[3], [1.0]]]], r"rounding.sides\[0\] must be"),
    ([[1, [[4, [3, 4], [0.5, 1.0]]], [[3], [1.0]]]], r"rounding.sides\[0\].bands\[0\].levels must be distinct"),
    ([[1, _SIDE, [[3], [0.5]]]], r"rounding.sides\[0\].pooled.hazards must be"),
    ([[-1, [[4, [3], [1.0]], [4, [2], [1.0]]], [[3], [1.0]]]], r"rounding.sides\[0\].bands\[1\] must be"),
])
def test_tampered_sides_are_refused(sides, match):
    with pytest.raises(DataValidationError, match=match):
        RoundingGrid.from_dict({"bands": [], "pooled": [[3], [1.0]], "sides": sides})
    with pytest.raises(DataValidationError, match=r"rounding.bands must be empty"):  # bands of both signs and sides
        RoundingGrid.from_dict({"bands": _SIDE, "pooled": [[3], [1.0]], "sides": [[1, _SIDE, [[3], [1.0]]]]})


# -- the Synthesizer --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fitted():
    data = _losses_and_gains(5_000, 7)
    return data, Synthesizer(["v"], ["age"], epochs=20, verbose=False).fit(data, seed=0)


def test_gains_are_drawn_on_round_thousands_as_often_as_in_training(fitted):
    data, synth = fitted
    v = data["v"].to_numpy()
    out = synth.sample(30_000, seed=1)["v"].to_numpy()
    gains, losses = out[out >= 10_000], out[out <= -10_000]
    assert gains.size > 800 and losses.size > 800
    # training 0.014 of 222 gains >= 10,000 (se of the draws' share 0.004); before: 0.389 of 1,165 draws
    assert _thousands(v[v >= 10_000]) == pytest.approx(0.014, abs=0.001)
    assert _thousands(gains) == pytest.approx(_thousands(v[v >= 10_000]), abs=0.015)
    assert _thousands(losses) == _thousands(v[v <= -10_000]) == 1.0
    assert (np.mod(out, 10) == 0).all()                                   # every value on the tens, as in training
    grid = synth.rounding_["v"]
    assert grid["bands"] == [] and [s for s, _, _ in grid["sides"]] == [-1, 1]
    assert max(magnitude_bands(out[out != 0])) <= 6


def test_a_saved_signed_grid_loads_and_draws_the_same(fitted, tmp_path):
    data, synth = fitted
    synth.save(tmp_path / "m.mpx")
    loaded = Synthesizer.load(tmp_path / "m.mpx")
    assert loaded.rounding_ == synth.rounding_
    pd.testing.assert_frame_equal(loaded.sample(20_000, seed=5), synth.sample(20_000, seed=5))
    pd.testing.assert_frame_equal(loaded.generate(data[["age"]].head(2_000), seed=6),
                                  synth.generate(data[["age"]].head(2_000), seed=6))


def test_a_file_written_before_signs_loads_with_its_bands_for_both_signs(fitted, tmp_path):
    data, synth = fitted
    path = tmp_path / "old.mpx"
    synth.save(path)
    old = {"bands": [[3, [1], [1.0]], [4, [3, 1], [0.5, 1.0]]], "pooled": [[1], [1.0]]}
    path.write_bytes(edit_metadata(path.read_bytes(), lambda m: m["encoders"]["v"].__setitem__("rounding", old)))
    loaded = Synthesizer.load(path)
    assert loaded.rounding_["v"] == old
    out = loaded.sample(30_000, seed=1)["v"].to_numpy()
    # band 4's hazard of round thousands, 0.5, on both sides (off the losses' heaps at -13,000 to -10,000, whose
    # neighbours it refuses); the whole variable's shares (round tens) would give 0.01
    heaps = synth.encoders_["v"].heaps
    assert heaps[:4] == [-13_000.0, -12_000.0, -11_000.0, -10_000.0]
    gains, losses = out[(out >= 10_000) & (out < 100_000)], -out[(out <= -10_000) & (out > -100_000)]
    losses = losses[~np.isin(-losses, heaps)]
    assert gains.size > 800 and losses.size > 500
    assert _thousands(gains) == pytest.approx(0.5, abs=0.05)
    assert _thousands(losses) == pytest.approx(0.5, abs=0.1)


def test_a_tampered_signed_grid_in_a_model_file_is_refused(fitted, tmp_path):
    _, synth = fitted
    path = tmp_path / "m.mpx"
    synth.save(path)
    path.write_bytes(edit_metadata(path.read_bytes(), lambda m: m["encoders"]["v"]["rounding"]["sides"][1].__setitem__(
        0, 2)))
    with pytest.raises(DataValidationError, match=r"encoders.v.rounding.sides\[1\]"):
        Synthesizer.load(path)
