"""Session 72, untrusted model files (second pass): edits that loaded and then failed with a raw error or drew
what the fitted model never could.

The flow's mask buffers, a DP file's history written as a huge integer, a HouseholdSynthesizer file's age-category
labels, a DP file's signs, point masses, heaps, condition ranges and condition moments outside its public bounds,
and the numeric condition moments of a file without a conditions table outside its stored condition ranges: each
is refused at load with one :class:`~microplex.DataValidationError` naming the file and the field, while the files
fit writes load and draw exactly as the fitted model.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load as st_load, save as st_save

from microplex import DataValidationError, Synthesizer

from _model_files import edit_metadata, replace_member
from microplex.datasets import load_dataset

FAST = dict(epochs=2, hidden_features=(8,), transforms=1, verbose=False)


def _incomes(n: int = 2000) -> pd.DataFrame:
    """Incomes of 0 (30%) and above and hours worked, given age."""
    rng = np.random.default_rng(0)
    age = rng.integers(20, 65, n).astype(float)
    inc = np.where(rng.random(n) < 0.3, 0.0, np.round(rng.lognormal(10, 0.8, n), 2))
    return pd.DataFrame({"age": age, "inc": inc, "hrs": np.round(rng.normal(38, 8, n), 1)})


def _file(synth: Synthesizer, data: pd.DataFrame, tmp_path_factory) -> tuple[Synthesizer, bytes]:
    synth.fit(data, seed=0)
    path = tmp_path_factory.mktemp("m") / "model.mpx"
    synth.save(path)
    return synth, path.read_bytes()


@pytest.fixture(scope="module")
def plain(tmp_path_factory) -> tuple[Synthesizer, bytes]:
    """A model of incomes and hours given age (a flow of two coordinates: masked layers), with its conditions
    table."""
    return _file(Synthesizer(["inc", "hrs"], ["age"], **FAST), _incomes(), tmp_path_factory)


def _load(data: bytes, tmp_path) -> Synthesizer:
    path = tmp_path / "edited.mpx"
    path.write_bytes(data)
    return Synthesizer.load(path)


def _refused(data: bytes, tmp_path, what: str) -> None:
    """``data`` is refused at load with one DataValidationError naming the file and ``what``."""
    with pytest.raises(DataValidationError, match="edited.mpx'( \\(condition model\\))? is not a valid Synthesizer model file: .*" + what):
        _load(data, tmp_path)


# -- 1. the flow's mask buffers ------------------------------------------------------------------------

def _masks_set_to(data: bytes, fn) -> bytes:
    def edit(raw: bytes) -> bytes:
        tensors = st_load(raw)
        assert any(k.endswith(".mask") for k in tensors)
        return st_save({k: fn(v.clone()) if k.endswith(".mask") else v for k, v in tensors.items()})
    return replace_member(data, "weights.safetensors", edit)


@pytest.mark.parametrize("fill", ["ones", "zeros", "one bit flipped"])
def test_edited_flow_masks_are_refused_at_load(plain, tmp_path, fill):
    """Before: all ones loaded and ``generate`` raised a raw RuntimeError ("Coordinate 0 of a masked layer
    depends on units that are not ready"); all zeros loaded and the draws no longer read age (mean income
    at ages 20/45/80 of an acs12 model 32,492/35,797/38,132 became 32,390/34,996/35,591)."""
    def flip(t: torch.Tensor) -> torch.Tensor:
        t.view(-1)[0] = ~t.view(-1)[0] if t.dtype == torch.bool else 1 - t.view(-1)[0]
        return t
    fn = {"ones": torch.ones_like, "zeros": torch.zeros_like, "one bit flipped": flip}[fill]
    _refused(_masks_set_to(plain[1], fn), tmp_path, r"tensor 'flow\..*\.mask' disagrees with the metadata")


def test_unedited_masks_load_and_draw_as_the_fitted_model(plain, tmp_path):
    synth, data = plain
    pd.testing.assert_frame_equal(_load(data, tmp_path).sample(300, seed=2), synth.sample(300, seed=2))


# -- 2. a DP file's history ----------------------------------------------------------------------------

#: Public bounds of the DP fits (workinghours): hours and income start at 0, age at 18.
BOUNDS = {"hours": (0, 5000), "income": (0, 2000), "age": (18, 70)}


@pytest.fixture(scope="module")
def dp(tmp_path_factory) -> tuple[Synthesizer, bytes]:
    """A DP model of hours and income given age (epsilon 5: a DP condition model of age)."""
    wh = load_dataset("workinghours")[["hours", "income", "age"]].iloc[:3000]
    synth = Synthesizer(["hours", "income"], ["age"], epsilon=5.0, delta=1e-6, public_bounds=BOUNDS, **FAST)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _file(synth, wh, tmp_path_factory)


@pytest.mark.parametrize("where", [(), ("condition_model",)])
def test_a_dp_history_loss_beyond_int64_is_refused_at_load(dp, tmp_path, where):
    """Before: ``TypeError: ufunc 'isnan' not supported`` at load (the main model's or the DP condition model's
    history)."""
    def edit(meta: dict) -> None:
        for key in where:
            meta = meta[key]
        meta["history"]["train_loss"][0] = 10**30
    _refused(edit_metadata(dp[1], edit), tmp_path, re.escape("field 'history.train_loss' must be a list of numbers"))


def test_an_unedited_dp_file_loads_and_draws_as_the_fitted_model(dp, tmp_path):
    synth, data = dp
    pd.testing.assert_frame_equal(_load(data, tmp_path).sample(300, seed=2), synth.sample(300, seed=2))


# -- 3. a HouseholdSynthesizer file's age categories ---------------------------------------------------

@pytest.fixture(scope="module")
def household(tmp_path_factory):
    """A household model of eusilc whose person income applies from an age on (an applicable model given the
    age category)."""
    from microplex.households import HouseholdSynthesizer

    eu = load_dataset("eusilc")
    eu = eu[eu.db030.isin(eu.db030.unique()[:300])]
    hs = HouseholdSynthesizer(["db040", "eqIncome"], ["age", "rb090", "py010n"], "db030", "db090", person_id="rb030",
                              geography="db040", age_var="age", epochs=1, hidden_features=(8,), transforms=1,
                              verbose=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hs.fit(eu, seed=0)
    path = tmp_path_factory.mktemp("hh") / "hh.mpx"
    hs.save(path)
    return hs, path.read_bytes()


def _age_models(meta: dict) -> list[str]:
    return [k for k, v in meta["models"].items() if "_m_age_category" in v["condition_encoder"]["stats"]]


@pytest.mark.parametrize("label", ["zzz", "", "../../etc/passwd", "017", "1e3", "16.0"])
def test_an_age_category_label_that_is_no_integer_is_refused_at_load(household, tmp_path, label):
    """Before: 'zzz', '' and '../../etc/passwd' loaded, then ``sample`` raised a raw ``ValueError: invalid literal
    for int() with base 10``."""
    from microplex.households import HouseholdSynthesizer

    names = []

    def edit(meta: dict) -> None:
        names.extend(_age_models(meta))
        stats = meta["models"][names[0]]["condition_encoder"]["stats"]
        stats["_m_age_category"] = sorted(stats["_m_age_category"][:-1] + [label])  # in the order fit sorts them
    path = tmp_path / "edited.mpx"
    path.write_bytes(edit_metadata(household[1], edit))
    assert names
    with pytest.raises(DataValidationError, match="Model file '.*edited.mpx': " + re.escape(
            f"'models.{names[0]}.condition_encoder.stats._m_age_category' must be the decimal labels")):
        HouseholdSynthesizer.load(path)


def test_an_unedited_household_file_with_age_categories_draws_as_the_fitted_model(household, tmp_path):
    from microplex.households import HouseholdSynthesizer

    hs, data = household
    path = tmp_path / "hh.mpx"
    path.write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got, want = HouseholdSynthesizer.load(path).sample(100, seed=4), hs.sample(100, seed=4)
    for a, b in zip(got, want, strict=True):
        pd.testing.assert_frame_equal(a, b)


# -- 4. a DP file's values outside its public bounds ---------------------------------------------------

def _set(path: tuple, value) -> callable:
    def edit(meta: dict) -> None:
        for key in path[:-1]:
            meta = meta[key]
        meta[path[-1]] = value
    return edit


#: (edit, the field the error names). Public bounds: hours [0, 5000], income [0, 2000], age [18, 70]. Before:
#: each loaded; hours were drawn at -1 (26.6% of the draws) and incomes down to -200, every age in [-65, -18]
#: (the targets drawn given those ages: hours median 1298 -> 1646), or the draws changed (hours median 1298 ->
#: 1390 with the age moments [-40, 1e308]).
TAMPERED_DP = {
    "hours point mass -1": (_set(("encoders", "hours", "point_masses", 0), -1.0),
                            "field 'encoders.hours.point_masses[0]' must be a value within the public bounds"),
    "income point mass -200": (_set(("encoders", "income", "point_masses", 0), -200.0),
                               "field 'encoders.income.point_masses[0]' must be a value within the public bounds"),
    "income point mass 2001": (_set(("encoders", "income", "point_masses", 0), 2001.0),
                               "field 'encoders.income.point_masses[0]' must be a value within the public bounds"),
    "condition model's age sign -1": (_set(("condition_model", "encoders", "age", "segments", 0, "sign"), -1),
                                      "field 'encoders.age.segments[0].sign' must be 1"),
    "condition ranges narrowed": (_set(("condition_ranges", "age"), [18.0, 35.0]),
                                  "field 'condition_ranges.age' must be the public bounds"),
    "condition ranges widened": (_set(("condition_ranges", "age"), [0.0, 70.0]),
                                 "field 'condition_ranges.age' must be the public bounds"),
    "condition mean -40, sd 1e308": (_set(("condition_encoder", "stats", "age"), [-40.0, 1e308]),
                                     "field 'condition_encoder.stats.age'"),
    "condition mean 10": (_set(("condition_encoder", "stats", "age"), [10.0, 11.5]),
                          "field 'condition_encoder.stats.age': mean 10"),
    "condition sd 27 (over half of 52)": (_set(("condition_encoder", "stats", "age"), [40.0, 27.0]),
                                          "field 'condition_encoder.stats.age': mean 40 and standard deviation 27"),
}


@pytest.mark.parametrize("case", list(TAMPERED_DP))
def test_a_dp_file_outside_its_public_bounds_is_refused_at_load(dp, tmp_path, case):
    edit, field = TAMPERED_DP[case]
    _refused(edit_metadata(dp[1], edit), tmp_path, re.escape(field))


def test_a_dp_file_as_written_lies_within_its_public_bounds(dp):
    """The fit writes sign 1, point masses within the bounds, the public bounds as condition ranges and the
    condition's moments within them."""
    synth = dp[0]
    for name in ("hours", "income"):
        lo, hi = BOUNDS[name]
        assert all(lo <= v <= hi for v in synth.encoders_[name].point_masses)
    mean, std = synth.condition_encoder_.stats["age"]
    assert synth._condition_ranges() == {"age": (18.0, 70.0)} and 18 <= mean <= 70 and 0 < std <= 26


# -- 5. numeric condition moments of a file without a conditions table ---------------------------------

@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> tuple[Synthesizer, bytes]:
    """A fully synthetic model (condition_model=True, no DP) of incomes given age 20 to 64: no conditions table,
    the age's range in ``condition_ranges``."""
    return _file(Synthesizer(["inc"], ["age"], condition_model=True, **FAST), _incomes(), tmp_path_factory)


#: Edited age moments (range [20, 64], half-width 22). Before: each loaded; in an acs12 model (ages 0 to 94,
#: mean/sd 40.22/23.66) the moments [400, 0.5] drew every income missing (original 0.229), [-40, 23.66] and
#: [40.22, 1e308] none, and children got incomes.
TAMPERED_MOMENTS = {
    "mean 400, sd 0.5": [400.0, 0.5],
    "mean -40": [-40.0, 12.0],
    "mean just above the range": [64.5, 12.0],
    "sd 1e308": [42.0, 1e308],
    "sd just over half the range": [42.0, 22.001],
}


@pytest.mark.parametrize("case", list(TAMPERED_MOMENTS))
def test_condition_moments_outside_the_stored_range_are_refused_at_load(synthetic, tmp_path, case):
    data = edit_metadata(synthetic[1], _set(("condition_encoder", "stats", "age"), TAMPERED_MOMENTS[case]))
    _refused(data, tmp_path, re.escape("field 'condition_encoder.stats.age': mean"))


def test_condition_moments_within_the_stored_range_load(synthetic, tmp_path):
    """The fit's moments lie within the range; the limits are those of a distribution on [min, max] (a mean at an
    end, an sd of half the width load: smaller edits cannot be told from a fit without a signature)."""
    synth, data = synthetic
    assert synth._condition_ranges() == {"age": (20.0, 64.0)}
    pd.testing.assert_frame_equal(_load(data, tmp_path).sample(300, seed=2), synth.sample(300, seed=2))
    for edge in ([20.0, 12.0], [64.0, 12.0], [42.0, 22.0]):
        _load(edit_metadata(data, _set(("condition_encoder", "stats", "age"), edge)), tmp_path)


def test_an_inner_household_models_condition_moments_are_checked(household, tmp_path):
    """A HouseholdSynthesizer's inner models keep their conditions' ranges only: 236 of the 386 household edits
    that loaded and changed the draws were their ``condition_encoder.stats`` or ``condition_ranges``."""
    from microplex.households import HouseholdSynthesizer

    found = []

    def edit(meta: dict) -> None:
        for name, inner in meta["models"].items():
            ranges = inner.get("condition_ranges") or {}
            if ranges:
                cond, (lo, hi) = next(iter(ranges.items()))
                inner["condition_encoder"]["stats"][cond] = [hi + (hi - lo) + 1.0, 1.0]
                found.append((name, cond))
                return
    path = tmp_path / "edited.mpx"
    path.write_bytes(edit_metadata(household[1], edit))
    assert found
    with pytest.raises(DataValidationError, match=re.escape(f"field 'condition_encoder.stats.{found[0][1]}': mean")):
        HouseholdSynthesizer.load(path)
