"""Values stored at float32 (session 60): round numbers are read, and drawn, at the precision of the column.

A float32 column holds 24.100000381469727 for 24.1. Read in float64 it is no multiple of 0.1, so before this
session a float32 column of incomes in tenths (the real workinghours incomes, in $1,000s) had 57% of its values
"off the grid": the rounding grid left them to the flow and the synthetic column put 57% of its values off the
grid (43% on it, against 100% of the training values), and ``evaluate`` scored the column's round shares as
0.42 where the same values in float64 give 1.0.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from microplex import DataValidationError, Synthesizer
from microplex._stats import decimal_levels, round_shares, storage_precision
from microplex.datasets import load_dataset
from microplex.evaluation import evaluate
from microplex.evaluation.metrics import round_share_errors
from microplex.synthesis.rounding import NO_LEVEL, RoundingGrid, at_level

from _model_files import edit_metadata


def _tenths() -> pd.DataFrame:
    """The real workinghours extract, family income in $1,000s (tenths: 24.1), and hours."""
    df = load_dataset("workinghours")
    return df.assign(income=df["income"] / 10.0)


def _f32(x) -> np.ndarray:
    """Values as a float32 column holds them, widened to float64."""
    return np.asarray(x, dtype=np.float32).astype(float)


def _on_grid(x, level: int, precision: str) -> float:
    """Share of the nonzero values of ``x`` that are multiples of ``10**level`` at ``precision``."""
    x = np.asarray(x, dtype=float)
    x = x[x != 0]
    return float(np.mean(decimal_levels(x, precision) >= level))


# -- the pieces -------------------------------------------------------------------------------
def test_decimal_levels_at_the_storage_precision():
    x = _f32([24.1, 0.3, 34000.0, 12.5, 1e-6, 0.0, np.nan])
    assert decimal_levels(x).tolist() == [NO_LEVEL, NO_LEVEL, 3, -1, NO_LEVEL, NO_LEVEL, NO_LEVEL]
    assert decimal_levels(x, "float32").tolist() == [-1, -1, 3, -1, -6, NO_LEVEL, NO_LEVEL]
    half = np.asarray([24.1, 0.3], dtype=np.float16).astype(float)  # 24.09375 and 0.2998046875
    assert decimal_levels(half, "float16").tolist() == [-1, -1]
    assert decimal_levels(half, "float32").tolist() == [-5, NO_LEVEL]  # 24.09375 is a multiple of 1e-5; 0.2998046875 none
    assert decimal_levels(np.array([1e6]), "float16").tolist() == [NO_LEVEL]  # beyond float16: stored as no number
    with pytest.raises(DataValidationError, match="'precision' must be one of"):
        decimal_levels(x, "float8")


@pytest.mark.parametrize("values, expected", [
    (_f32([24.1, 3.5, 0.0, 7.0]), "float32"),              # a float32 column of tenths (widened)
    (np.asarray([24.1, 3.5], dtype=np.float16).astype(float), "float16"),
    (np.array([24.1, 3.5, 0.0]), "float64"),                # tenths in float64
    (np.array([2.5, 7.0, 1e6, -3.25]), "float64"),          # halves and integers: as round at every precision
    (_f32([2.5, 7.0, 1e6]), "float64"),                     # ... also from a float32 column
    (np.r_[_f32([24.1, 3.7]), 24.1], "float64"),            # one float64 decimal: not all float32 numbers
    (_f32(np.exp(np.random.default_rng(0).normal(size=200))), "float32"),  # float32 logs: float32 numbers
    (np.array([np.nan, np.inf, 0.0]), "float64"),
    (np.array([]), "float64"),
])
def test_storage_precision(values, expected):
    assert storage_precision(values) == expected


def test_at_level_writes_values_as_the_column_holds_them():
    out = at_level(np.array([24.13, 0.27, 41234.5]), np.array([-1, -1, 3]), precision="float32")
    assert out.tolist() == _f32([24.1, 0.3, 41000.0]).tolist()
    assert at_level(np.array([24.13]), -1).tolist() == [24.1]


def test_a_grid_of_float32_values_never_draws_onto_a_heap():
    """Candidates are rounded to float32 before ``allowed`` sees them: 24.1 in float64 is no heap, but stored as
    float32 it is the heap 24.100000381469727."""
    rng = np.random.default_rng(0)
    x = _f32(np.round(rng.uniform(20, 30, 5_000), 1))
    heap = _f32([24.1])[0]
    x = x[x != heap]
    allowed = lambda c, rows: c != heap  # noqa: E731
    grid = RoundingGrid.fit(x, np.ones(x.size), 20, allowed)
    assert grid.precision == "float32" and grid.finest == -1
    out = grid.apply(rng.uniform(23.9, 24.3, 50_000), rng.random(50_000), allowed)
    assert not (out == heap).any()
    assert (_f32(out) == out).all() and _on_grid(out, -1, "float32") == 1.0


# -- what users call --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tenths():
    return _tenths()


@pytest.mark.parametrize("widened", [False, True])
def test_a_float32_column_draws_on_its_grid(tenths, widened):
    """The income column stored as float32 (or read as float32 and widened to float64): every training value is
    a multiple of 0.1 at float32; so is every draw (before: 91% after these 2 epochs, 43% at the default schedule),
    and the draws are
    float32 numbers, as the training values are."""
    income = tenths["income"].astype("float32")
    data = tenths.assign(income=income.astype(float) if widened else income)
    assert _on_grid(data["income"], -1, "float32") == 1.0 and _on_grid(data["income"], -1, "float64") < 0.5
    synth = Synthesizer(["hours", "income"], ["age", "education"], epochs=2, verbose=False).fit(data, seed=0)
    assert synth.rounding_["income"]["precision"] == "float32"
    out = synth.sample(20_000, seed=1)["income"]
    assert out.dtype == (np.float64 if widened else np.float32)
    assert _on_grid(out, -1, "float32") == 1.0
    assert (_f32(out) == out.to_numpy(float)).all()
    # the levels come out at the shares of the same values fitted in float64
    twin = Synthesizer(["hours", "income"], ["age", "education"], epochs=2, verbose=False).fit(tenths, seed=0)
    assert "precision" not in twin.rounding_["income"]
    ref = twin.sample(20_000, seed=1)["income"]
    for level in (0, 1):
        assert _on_grid(out, level, "float32") == pytest.approx(_on_grid(ref, level, "float64"), abs=0.02)


def test_the_grid_precision_is_kept_in_the_model_file(tenths, tmp_path):
    data = tenths.assign(income=tenths["income"].astype("float32"))
    synth = Synthesizer(["income"], ["age"], epochs=1, verbose=False).fit(data, seed=0)
    path = tmp_path / "m.mpx"
    synth.save(path)
    loaded = Synthesizer.load(path)
    assert loaded.rounding_ == synth.rounding_
    pd.testing.assert_frame_equal(loaded.generate(data[["age"]].head(300), seed=2),
                                  synth.generate(data[["age"]].head(300), seed=2))
    for bad in ("float8", 32, "float64"):
        path.write_bytes(edit_metadata(path.read_bytes(),
                                       lambda m: m["encoders"]["income"]["rounding"].__setitem__("precision", bad)))
        with pytest.raises(DataValidationError, match="encoders.income.rounding.precision"):
            Synthesizer.load(path)


def test_evaluate_reads_a_float32_column_as_the_same_values_in_float64(tenths):
    """The same real and synthetic values, stored as float32 or as float64, score alike (before: the real float32
    tenths scored 0.42 on multiples of 0.01 against 1.0 in float64, a round_share_error of 0.58 for a perfect copy
    of the grid)."""
    real, synth = tenths.iloc[:1500], tenths.iloc[1500:3000]
    as32 = lambda d: d.assign(income=d["income"].astype("float32"))  # noqa: E731
    pd.testing.assert_frame_equal(round_share_errors(as32(real)["income"], as32(synth)["income"]),
                                  round_share_errors(real["income"], synth["income"]))
    assert round_shares(_f32(real["income"]), np.ones(len(real)), range(-2, 0)).tolist() == [1.0, 1.0]
    # a float32 real file against float64 synthetic values on the same grid
    mixed = round_share_errors(as32(real)["income"], synth["income"])
    assert mixed["abs_error"].max() < 0.05
    a = evaluate(as32(real), as32(synth), pmse=False, progress=False)
    b = evaluate(real, synth, pmse=False, progress=False)
    assert a.score("round_share_error", "income") == b.score("round_share_error", "income") < 0.05


def test_round_shares_read_the_precision_from_the_weighted_values():
    """A record of weight 0 is outside the population (session 57): a float64 decimal only it holds does not turn
    the float32 values of the others back to float64."""
    x = np.r_[_f32([24.1, 3.7, 5.2]), 24.15]
    w = np.array([1.0, 1.0, 1.0, 0.0])
    assert round_shares(x, w, range(-1, 0)).tolist() == [1.0]


@pytest.mark.parametrize("widened", [False, True])
def test_declared_point_masses_and_heaps_are_read_as_the_column_holds_them(tenths, widened):
    """``VariableSpec(heaps=(16.6, 26.2))`` on a float32 column means its 16.600000381469727 and 26.200000762939453
    (before: "declared heap 16.6 is held by 0 training records"; declared point masses 16.6 and 26.2 were kept
    empty while the column's values there became heaps of their own). The fit is that of the same values in
    float64: the same draws of the declared values."""
    from microplex import VariableSpec

    income = tenths["income"].astype("float32")
    data = tenths.assign(income=income.astype(float) if widened else income)
    declared = (16.6, 26.2)
    stored = _f32(declared)
    for spec in (VariableSpec(heaps=declared), VariableSpec(point_masses=(0.0, *declared))):
        params = dict(epochs=2, min_heap_count=5, verbose=False, schema={"income": spec})
        synth = Synthesizer(["income"], ["age"], **params).fit(data, seed=0)
        twin = Synthesizer(["income"], ["age"], **params).fit(tenths, seed=0)
        held = synth.heaps_["income"] if spec.heaps else synth.point_masses_["income"]
        assert set(stored) <= set(held) and not set(declared) & set(held)
        out = synth.sample(5_000, seed=1)["income"].to_numpy(float)
        ref = twin.sample(5_000, seed=1)["income"].to_numpy(float)
        for a, b in zip(stored, declared, strict=True):
            assert (out == a).sum() == (ref == b).sum() > 0


def test_a_dp_fit_reads_public_bounds_as_a_float32_column_holds_them(tenths):
    """With ``epsilon``: a float32 column top-coded at 24.1 holds 24.100000381469727, above the public bound 24.1,
    and one top-coded at 60.1 holds 60.099998474121094, below it. Before: all 1,719 records at the first top code
    were "outside its public bounds" (a PrivacyWarning) and clipped, the column and its draws became float64, and
    the second top code was no point mass (a record at no candidate). Now both are read at float32 (the dtype is
    public; the values are not read for it): the point masses, warnings and dtype are those of the float64 twin."""
    inc = tenths["income"]
    data = tenths.assign(top60=np.minimum(inc, 60.1), top24=np.minimum(inc, 24.1))
    params = dict(epochs=1, verbose=False, epsilon=8.0, delta=1e-5,
                  public_bounds={"top60": (0.0, 60.1), "top24": (0.0, 24.1), "age": (18, 70)})
    found = {}
    for name, frame in {"float64": data, "float32": data.astype({"top60": "float32", "top24": "float32"})}.items():
        with pytest.warns(Warning) as record:
            synth = Synthesizer(["top60", "top24"], ["age"], **params).fit(frame, seed=0)
        clipped = sorted(str(r.message) for r in record if "public bounds" in str(r.message))
        out = synth.sample(2_000, seed=1)
        found[name] = (clipped, synth.point_masses_)
        assert out["top24"].dtype == name and out["top60"].dtype == name
        assert out["top24"].max() == frame["top24"].max()
    assert found["float32"] == found["float64"]
    assert 60.1 in found["float32"][1]["top60"] and 24.1 in found["float32"][1]["top24"]
