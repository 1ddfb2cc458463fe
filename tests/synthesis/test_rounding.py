"""Round numbers (microplex.synthesis.rounding): decimal levels learnt per magnitude and drawn again."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from microplex import DataValidationError, Synthesizer
from microplex.synthesis.rounding import (
    NO_LEVEL,
    RoundingGrid,
    at_level,
    decimal_levels,
    magnitude_bands,
)

from _model_files import edit_metadata


def _reported(n: int, seed: int) -> pd.DataFrame:
    """Incomes reported as respondents do: 45% in thousands, 30% in hundreds, 25% to the dollar
    (stored as floats), 20% zeros; hours whole, a third of them in tens; a condition."""
    rng = np.random.default_rng(seed)
    age = rng.integers(20, 65, n)
    raw = np.exp(rng.normal(10.0 + 0.01 * (age - 40), 0.6, n))
    unit = rng.choice([1000.0, 100.0, 1.0], n, p=[0.45, 0.30, 0.25])
    income = np.where(rng.random(n) < 0.2, 0.0, np.maximum(np.round(raw / unit) * unit, 1.0))
    hours = np.clip(rng.normal(1800, 500, n), 100, 3500)
    hours = np.where(rng.random(n) < 0.33, np.round(hours / 10) * 10, np.round(hours))
    return pd.DataFrame({"age": age, "income": income, "hours": hours.astype(np.int64)})


def _share_at_least(x: np.ndarray, level: int) -> float:
    x = np.asarray(x, dtype=float)
    x = x[x != 0]
    return float(np.mean(decimal_levels(x) >= level))


# -- the pieces -------------------------------------------------------------------------------
def test_decimal_levels_and_bands():
    x = np.array([34000.0, 34200.0, 12.5, 7.0, -300.0, 0.1 * 3, np.pi, 0.0, np.inf, 1e15, 0.000001])
    assert decimal_levels(x).tolist() == [3, 2, -1, 0, 2, -1, NO_LEVEL, NO_LEVEL, NO_LEVEL, 15, -6]
    assert magnitude_bands(np.array([999.9999999999999, 1000.0, 0.05, -2.0])).tolist() == [2, 3, -2, 0]


def test_at_level_gives_exactly_that_level_within_one_unit():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1e5, 1e5, 50_000)
    for level in (0, 2, 3):
        for other in (False, True):
            out = at_level(x, np.full(x.size, level), other=other)
            assert (decimal_levels(out) == level).all()  # plain rounding to 10**level puts 10% on coarser levels
            assert np.abs(out - x).max() <= (2 if other else 1) * 10.0**level + 1e-9
        near, far = at_level(x, np.full(x.size, 2)), at_level(x, np.full(x.size, 2), other=True)
        assert (np.sign(near - x) != np.sign(far - x)).all()
    assert at_level(np.array([1.2345]), np.array([-2])).tolist() == [1.23]  # as Python writes it


def test_a_level_held_by_too_few_records_counts_toward_the_next_finer():
    x = np.array([50000.0] * 5 + [34000.0] * 25 + [34200.0] * 30 + [34217.0] * 40)
    grid = RoundingGrid.fit(x, np.ones(x.size), min_count=20)
    # level 4 (5 records) joins level 3: 30 of 100 at level 3, 30 of the other 70 at level 2, the rest whole
    assert grid.bands[4] == ((3, 2, 0), (0.3, 30 / 70, 1.0))
    # weights weigh, records of weight 0 are left out (a level only they hold is not there)
    w = np.r_[np.zeros(5), np.full(25, 2.0), np.ones(70)]
    grid = RoundingGrid.fit(x, w, min_count=20)
    assert grid.bands[4][0] == (3, 2, 0)
    assert grid.bands[4][1] == pytest.approx((50 / 120, 30 / 70, 1.0))


def test_a_level_that_heaps_leave_no_room_for_is_not_pushed_onto_others():
    """Where the nearest round thousand is a heap (drawn by its head, never by the flow), the
    hazard of level 3 counts only the values that could have taken one."""
    rng = np.random.default_rng(3)
    raw = rng.uniform(10_000, 50_000, 40_000)
    level3 = np.round(raw / 1000) * 1000
    heaps = np.arange(10_000, 30_001, 1000)  # below 30,000 every thousand is a heap
    free3 = ~np.isin(level3, heaps)
    x = np.where(free3 & (rng.random(raw.size) < 0.5), level3, np.round(raw) + 0.5)  # half of the free ones round
    x = x[~np.isin(x, heaps)]
    allowed = lambda c, rows: ~np.isin(c, heaps)  # noqa: E731
    grid = RoundingGrid.fit(x, np.ones(x.size), 20, allowed)
    # of the values of level 3 or finer whose nearest thousand is no heap (those above 30,500 but 40,000's, which is
    # of level 4), half are of level 3: 0.5 * 18/19 / (1 - 0.5 / 19)
    assert dict(zip(*grid.bands[4], strict=True))[3] == pytest.approx(0.5 * 18 / 19 / (1 - 0.5 / 19), abs=0.02)
    out = grid.apply(rng.uniform(10_000, 50_000, 100_000), rng.random(100_000), allowed)
    assert not np.isin(out, heaps).any()
    above = out >= 30_500
    assert np.mean(decimal_levels(out[above]) >= 3) == pytest.approx(0.5, abs=0.02)
    assert np.mean(decimal_levels(out[out < 29_500]) >= 3) == 0


def test_no_grid_for_values_computed_to_full_precision_or_too_few_records():
    rng = np.random.default_rng(1)
    assert RoundingGrid.fit(np.exp(rng.normal(size=500)), np.ones(500), 20) is None
    assert RoundingGrid.fit(np.array([1000.0] * 19), np.ones(19), 20) is None


def test_drawn_levels_come_out_at_the_training_shares():
    x = np.array([34000.0] * 30 + [34200.0] * 30 + [34217.0] * 40)
    grid = RoundingGrid.fit(x, np.ones(x.size), min_count=20)
    rng = np.random.default_rng(2)
    draws = rng.uniform(10_000, 99_999, 200_000)
    levels = decimal_levels(grid.apply(draws, rng.random(draws.size)))
    # each level takes the multiples of its unit that are none of the next coarser level's: the coarsest any
    # multiple of 1,000, level 0 any whole number off the hundreds (a level absent from the band and one held by
    # too few records to be kept, whose records count toward the next finer level, are the same to the grid: it
    # must not tell that fewer than min_count records hold a level)
    for (low, high), share in zip(((3, 99), (2, 2), (0, 1)), (0.3, 0.3, 0.4), strict=True):
        assert np.mean((levels >= low) & (levels <= high)) == pytest.approx(share, abs=0.005)


def test_a_refused_candidate_goes_finer_and_at_the_finest_to_the_other_side():
    grid = RoundingGrid({}, ((1, 0), (0.5, 1.0)))
    # u = 0 takes level 1 where its nearest value is allowed; 40 refused (say a point mass): 41 and 44 stay whole
    out = grid.apply(np.array([41.2, 44.0, 47.0]), np.zeros(3), lambda c, rows: c != 40.0)
    assert out.tolist() == [41.0, 44.0, 50.0]
    # u = 0.75 passes level 1 (hazard 0.5) and goes on to the whole numbers that are no multiple of 10
    whole = RoundingGrid({}, ((1, 0), (0.5, 1.0)))
    u = np.full(1, 0.75)
    assert whole.apply(np.array([40.4]), u, lambda c, rows: c != 41.0).tolist() == [39.0]
    # both neighbours refused (point masses on either side): the nearest allowed whole number further out (40 is
    # of level 1), not the flow's 40.4 (session 56: a column of whole numbers drew 2,594.7 between point masses)
    assert whole.apply(np.array([40.4]), u, lambda c, rows: ~np.isin(c, [39.0, 41.0])).tolist() == [42.0]
    assert whole.apply(np.array([40.6]), u, lambda c, rows: ~np.isin(c, [39.0, 41.0, 42.0])).tolist() == [43.0]
    # none allowed within OUTWARD_STEPS: the flow's value
    assert whole.apply(np.array([40.4]), u, lambda c, rows: np.zeros(len(c), dtype=bool)).tolist() == [40.4]
    # a lone level takes any multiple of its unit: 40 is a whole number
    only = RoundingGrid({}, ((0,), (1.0,)))
    assert only.apply(np.array([40.4]), np.zeros(1), lambda c, rows: c != 41.0).tolist() == [40.0]
    assert only.apply(np.array([40.4]), np.zeros(1), lambda c, rows: ~np.isin(c, [40.0, 41.0])).tolist() == [39.0]


def test_the_one_step_draw_far_from_edges_is_the_level_by_level_draw():
    """Values with no point mass, heap or bound within their coarsest level's unit take their level in
    one step (the inverse CDF): the same values, bit for bit, as going level by level."""
    rng = np.random.default_rng(0)
    forbidden = np.array([0.0, 20000.0, 25000.0, 30000.0, 40000.0, 60000.0])
    n = 20_000
    x = np.where(rng.random(n) < 0.5, np.round(rng.uniform(1, 59999, n) / 1000) * 1000,
                 np.round(rng.uniform(1, 59999, n), 2))
    x = x[~np.isin(x, forbidden)]
    allowed = lambda c, rows: ~np.isin(c, forbidden) & (c > 0) & (c < 60000)  # noqa: E731
    grid = RoundingGrid.fit(x, np.ones(x.size), 20, allowed)
    draws, u = rng.uniform(0.01, 59999.99, 300_000), rng.random(300_000)
    slow, fast = grid.apply(draws, u, allowed), grid.apply(draws, u, allowed, forbidden)
    np.testing.assert_array_equal(slow, fast)
    assert not np.isin(fast, forbidden).any()


@pytest.mark.parametrize("grid, match", [
    ({"bands": [], "pooled": [[2, 3], [0.5, 0.5]]}, "coarse to fine"),
    ({"bands": [], "pooled": [[20], [1.0]]}, r"ints in \[-6, 15\]"),
    ({"bands": [], "pooled": [[2, 1], [0.5, 0.6]]}, "the last 1"),
    ({"bands": [], "pooled": [[2, 1], [1.5, 1.0]]}, r"in \(0, 1\]"),
    ({"bands": [], "pooled": [[2, 1], [0.0, 1.0]]}, r"in \(0, 1\]"),
    ({"bands": [[3, [2], [1.0]], [3, [1], [1.0]]], "pooled": [[2], [1.0]]}, "bands increasing"),
    ({"bands": [], "pooled": [[True], [1.0]]}, "ints in"),
    ({"pooled": [[2], [1.0]]}, "keys 'bands'"),
])
def test_a_tampered_grid_is_refused(grid, match):
    with pytest.raises(DataValidationError, match=match):
        RoundingGrid.from_dict(grid)


# -- the Synthesizer -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fitted():
    data = _reported(2000, 0)
    synth = Synthesizer(["income", "hours"], ["age"], verbose=False).fit(data, seed=0)
    return data, synth


@pytest.fixture(scope="module")
def flat(fitted):
    data, _ = fitted
    return Synthesizer(["income", "hours"], ["age"], verbose=False, rounding=False).fit(data, seed=0)


def test_draws_carry_the_round_numbers_of_the_data(fitted, flat):
    data, synth = fitted
    assert synth.rounded_vars_ == ["income", "hours"]
    out = synth.sample(20_000, seed=1)
    plain = flat.sample(20_000, seed=1)
    for level in (1, 2, 3):
        real = _share_at_least(data["income"], level)
        assert _share_at_least(out["income"], level) == pytest.approx(real, abs=0.04), level
    # without the grid the float income's flow values are drawn to full precision (only heaps and point masses round)
    assert _share_at_least(plain["income"], 0) < 0.5
    assert _share_at_least(out["income"], 0) == 1.0  # a float column of whole numbers comes out whole
    assert _share_at_least(out["hours"], 1) == pytest.approx(_share_at_least(data["hours"], 1), abs=0.04)
    assert _share_at_least(plain["hours"], 1) < 0.15
    # the grid only moves values within their segment: no zero comes from the continuous state, none below 1
    assert (out["income"] >= 0).all() and out["income"].eq(0).mean() == pytest.approx(0.2, abs=0.03)


def test_rounding_is_post_processing_of_the_same_network(fitted, flat):
    data, synth = fitted
    a, b = synth.model_.state_dict(), flat.model_.state_dict()
    assert all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)
    np.testing.assert_array_equal(synth.log_prob(data.head(50)), flat.log_prob(data.head(50)))


def test_same_seed_same_draws_and_the_file_keeps_the_grid(fitted, tmp_path):
    data, synth = fitted
    first = synth.generate(data[["age"]].head(500), seed=3)
    pd.testing.assert_frame_equal(first, synth.generate(data[["age"]].head(500), seed=3))
    synth.save(tmp_path / "m.mpx")
    loaded = Synthesizer.load(tmp_path / "m.mpx")
    assert loaded.rounding_ == synth.rounding_ and loaded.get_params()["rounding"] is None
    pd.testing.assert_frame_equal(first, loaded.generate(data[["age"]].head(500), seed=3))
    assert clone(synth).get_params()["rounding"] is None


def _edit(path, fn):
    path.write_bytes(edit_metadata(path.read_bytes(), fn))


@pytest.mark.parametrize("edit, field", [
    (lambda m: m["encoders"]["income"]["rounding"]["pooled"].__setitem__(1, [0.9] * 4), "encoders.income.rounding"),
    (lambda m: m["encoders"]["hours"]["rounding"]["pooled"][0].__setitem__(-1, -2), "encoders.hours.rounding"),
    (lambda m: m["encoders"]["income"]["rounding"].__setitem__("bands", [[2, [None, 3], [0.5, 0.5]]]),
     "encoders.income.rounding.bands[0].levels"),
])
def test_a_model_file_with_a_tampered_grid_is_refused(fitted, tmp_path, edit, field):
    _, synth = fitted
    path = tmp_path / "m.mpx"
    synth.save(path)
    _edit(path, edit)
    with pytest.raises(DataValidationError, match="m.mpx' is not a valid Synthesizer model file") as info:
        Synthesizer.load(path)
    assert field in str(info.value)


def test_a_file_written_before_rounding_loads_without_a_grid(fitted, flat, tmp_path):
    data, _ = fitted
    path = tmp_path / "old.mpx"
    flat.save(path)

    def older(meta):
        del meta["params"]["rounding"]
        meta["format_version"] = 1  # version 2 records every parameter (a file lacking one is refused)
        assert all("rounding" not in e for e in meta["encoders"].values())
    _edit(path, older)
    loaded = Synthesizer.load(path)
    assert loaded.get_params()["rounding"] is False and loaded.rounded_vars_ == []
    pd.testing.assert_frame_equal(loaded.generate(data[["age"]].head(300), seed=4),
                                  flat.generate(data[["age"]].head(300), seed=4))


def test_without_a_grid_the_draws_are_those_of_before():
    """Values computed to full precision get no grid, and a model without one draws no uniform for
    rounding: its draws are those of rounding=False (and of the code before grids)."""
    rng = np.random.default_rng(5)
    df = pd.DataFrame({"a": rng.normal(size=400), "b": np.exp(rng.normal(size=400)), "c": rng.integers(0, 3, 400)})
    synth = Synthesizer(["a", "b"], ["c"], epochs=2, verbose=False).fit(df, seed=0)
    assert synth.rounded_vars_ == []
    off = Synthesizer(["a", "b"], ["c"], epochs=2, verbose=False, rounding=False).fit(df, seed=0)
    pd.testing.assert_frame_equal(synth.sample(300, seed=1), off.sample(300, seed=1))


def test_rounding_and_differential_privacy(tmp_path):
    data = _reported(600, 1)
    with pytest.raises(DataValidationError, match="'rounding' parameter cannot be True with 'epsilon'"):
        Synthesizer(["income"], epsilon=1.0, delta=1e-5, rounding=True,
                    public_bounds={"income": (0, 1e6)}).fit(data, seed=0)
    with pytest.raises(DataValidationError, match="'rounding' parameter"):
        Synthesizer(["income"], rounding="yes").fit(data, seed=0)
    private = Synthesizer(["income"], epsilon=1.0, delta=1e-5, public_bounds={"income": (0, 1e6)}, epochs=1,
                          verbose=False).fit(data, seed=0)
    assert private.rounded_vars_ == [] and private.rounding_ == {}
    # a grid written into a DP file: statistics no mechanism covers, refused
    path = tmp_path / "dp.mpx"
    private.save(path)
    grid = {"bands": [], "pooled": [[3, 2], [0.5, 1.0]]}
    _edit(path, lambda meta: meta["encoders"]["income"].__setitem__("rounding", grid))
    with pytest.raises(DataValidationError, match="encoders.income.rounding' must be absent"):
        Synthesizer.load(path)


def test_whole_numbers_between_two_point_masses_are_drawn_whole():
    # 150 incomes on multiples of 100, five of them point masses (2,500 and 2,600 among them, each >= 1% of the
    # weight): a draw of 2,594.7 had both neighbours of its level refused and kept the flow's value (found by
    # tests/property/test_synthesis_invariants.py, session 56: 11 of 60 such frames drew a non-whole value)
    from microplex.synthesis.schema import VariableSpec

    rng = np.random.default_rng(1)
    n = 150
    money = np.round(rng.lognormal(8, 0.3, n), -2)
    money[:8] = [2500.0] * 4 + [2600.0] * 4
    df = pd.DataFrame({"money": money, "w": rng.uniform(0.5, 5.0, n)})
    synth = Synthesizer(["money"], [], epochs=1, hidden_features=(4,), transforms=1, verbose=False,
                        schema={"money": VariableSpec(point_masses=[2500.0, 2600.0])})
    synth.fit(df, weight_col="w", seed=0)
    assert synth.point_masses_["money"] == (2500.0, 2600.0)
    draws = np.concatenate([synth.sample(2_000, seed=s)["money"].to_numpy() for s in range(3)])
    assert np.all(np.mod(draws, 100) == 0), draws[np.mod(draws, 100) != 0][:5]
