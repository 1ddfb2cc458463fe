"""Session 70, untrusted model files: edits that loaded and made the model draw what its fit never could.

A Synthesizer file whose float segment bound was moved (lower -50000 under incomes of 0 and above), whose
knots were deleted under ``standardize="quantile"`` (or kept under "moments"), and a HouseholdSynthesizer file
whose ``household_kinds`` disagree with its household model or whose ``size_shares`` sizes were reordered: each
is refused at load with one :class:`~microplex.DataValidationError` naming the file and the field, while the
files fit writes (one-value segments without knots included) load and draw exactly as the fitted model.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest

from microplex import DataValidationError, Synthesizer, VariableSpec

from _model_files import edit_metadata as _edit_meta
from microplex.datasets import load_dataset

FAST = dict(epochs=2, hidden_features=(8,), transforms=1, verbose=False)


def _incomes(n: int = 2000) -> pd.DataFrame:
    """Incomes of 0 (30%) and above, given age: a zero point mass below a log segment (lower 0.0)."""
    rng = np.random.default_rng(0)
    age = rng.integers(20, 65, n).astype(float)
    inc = np.where(rng.random(n) < 0.3, 0.0, np.round(rng.lognormal(10, 0.8, n), 2))
    return pd.DataFrame({"age": age, "inc": inc})


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, tuple[Synthesizer, bytes]]:
    """Fitted models and their files: incomes (quantile and moments), PSID working hours (int64, zero point mass,
    heaps), and a target whose values off the point mass are one value (quantile, no knots)."""
    rng = np.random.default_rng(1)
    one = pd.DataFrame({"age": rng.integers(20, 65, 1000).astype(float),
                        "x": np.where(rng.random(1000) < 0.5, 0.0, 3.7)})
    fits = {
        "quantile": (Synthesizer(["inc"], ["age"], **FAST), _incomes()),
        "moments": (Synthesizer(["inc"], ["age"], standardize="moments", **FAST), _incomes()),
        "hours": (Synthesizer(["hours"], ["age"], **FAST), load_dataset("workinghours").iloc[:1500]),
        "one value": (Synthesizer(["x"], ["age"], max_heaps=0, schema={"x": VariableSpec(point_masses=(0.0,))},
                                  **FAST), one),
    }
    out = {}
    for name, (synth, data) in fits.items():
        synth.fit(data, seed=0)
        path = tmp_path_factory.mktemp("m") / "model.mpx"
        synth.save(path)
        out[name] = synth, path.read_bytes()
    return out


def _seg(meta: dict, name: str, i: int = 0) -> dict:
    return meta["encoders"][name]["segments"][i]


def _drop_knots(meta: dict) -> None:
    for seg in meta["encoders"]["inc"]["segments"]:
        del seg["knots"]


#: (model, edit, the field the error names). Before: each loaded and drew what the fitted model never could.
TAMPERED_BOUNDS = {
    # 1,562 negative incomes out of 3,000 (minimum -49,997.64); the fitted model draws none
    "float lower -50000": ("quantile", lambda m: _seg(m, "inc").__setitem__("lower", -50000.0),
                           "'encoders.inc.segments[0].lower'"),
    "float lower 1000": ("quantile", lambda m: _seg(m, "inc").__setitem__("lower", 1000.0),
                         "'encoders.inc.segments[0].lower'"),
    "float upper 1e6": ("moments", lambda m: _seg(m, "inc").__setitem__("upper", 1e6),
                        "'encoders.inc.segments[0].upper'"),
    "integer lower -50000.5": ("hours", lambda m: _seg(m, "hours").__setitem__("lower", -50000.5),
                               "'encoders.hours.segments[0].lower'"),
    "integer lower off the grid": ("hours", lambda m: _seg(m, "hours").__setitem__(
        "lower", _seg(m, "hours")["lower"] - 0.25), "'encoders.hours.segments[0].lower'"),
    "integer upper without a point mass above": ("hours", lambda m: _seg(m, "hours").__setitem__("upper", 6000.5),
                                                 "'encoders.hours.segments[0].upper'"),
}


def _refused_at_load(models: dict, tmp_path, model: str, edit, field: str) -> None:
    """``model``'s file with ``edit`` applied to its metadata is refused at load, naming ``field``."""
    path = tmp_path / "edited.mpx"
    path.write_bytes(_edit_meta(models[model][1], edit))
    with pytest.raises(DataValidationError,
                       match="edited.mpx' is not a valid Synthesizer model file: field " + re.escape(field)):
        Synthesizer.load(path)


@pytest.mark.parametrize("case", list(TAMPERED_BOUNDS))
def test_an_edited_segment_bound_is_refused_at_load(models, tmp_path, case):
    _refused_at_load(models, tmp_path, *TAMPERED_BOUNDS[case])


TAMPERED_KNOTS = {
    # p10 1,893 -> 1,201, p99 95,147 -> 92,793: the flow's draws decoded through moments it was not trained on
    "quantile without knots": ("quantile", _drop_knots, "'encoders.inc.segments[0].knots'"),
    # get_params() said "moments" while the draws used the knots
    "knots under standardize moments": ("quantile", lambda m: m["params"].__setitem__("standardize", "moments"),
                                        "'encoders.inc.segments[0].knots'"),
    "moments file relabelled quantile": ("moments", lambda m: m["params"].__setitem__("standardize", "quantile"),
                                         "'encoders.inc.segments[0].knots'"),
}


@pytest.mark.parametrize("case", list(TAMPERED_KNOTS))
def test_knots_that_disagree_with_standardize_are_refused_at_load(models, tmp_path, case):
    _refused_at_load(models, tmp_path, *TAMPERED_KNOTS[case])


def test_unedited_files_load_and_draw_as_the_fitted_model(models, tmp_path):
    """The new checks refuse nothing fit writes: a one-value segment under "quantile" has no knots (fewer than 3
    distinct quantiles) and loads; every file draws exactly what the fitted model draws."""
    meta_one = {}
    _edit_meta(models["one value"][1], lambda m: meta_one.update(m))
    assert "knots" not in _seg(meta_one, "x") and meta_one["params"]["standardize"] == "quantile"
    for name, (synth, data) in models.items():
        path = tmp_path / f"{name}.mpx"
        path.write_bytes(data)
        loaded = Synthesizer.load(path)
        pd.testing.assert_frame_equal(loaded.sample(500, seed=3), synth.sample(500, seed=3))


# -- household model files -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def household(tmp_path_factory):
    from microplex.households import HouseholdSynthesizer

    eu = load_dataset("eusilc")
    eu = eu[eu.db030.isin(eu.db030.unique()[:300])][["db030", "db040", "hsize", "hy040n", "age", "rb090",
                                                       "py010n", "db090"]]
    eu = eu.fillna({"py010n": 0.0, "hy040n": 0.0})
    hs = HouseholdSynthesizer(["db040", "hsize", "hy040n"], ["age", "rb090", "py010n"], "db030", "db090",
                              age_var="age", epochs=1, hidden_features=(8,), transforms=1, verbose=False)
    hs.fit(eu, seed=0)
    path = tmp_path_factory.mktemp("hh") / "hh.mpx"
    hs.save(path)
    return hs, path.read_bytes()


#: Before: each loaded; the persons were drawn from a raw household income in place of its signed log (mean
#: py010n 7,865 -> 8,193), or eight-person households drew the one-person share (33% of households).
TAMPERED_HOUSEHOLDS = {
    "household kind deleted": (lambda m: m["household_kinds"].pop("hy040n"), "'household_kinds'"),
    "continuous household income marked categorical": (
        lambda m: m["household_kinds"].__setitem__("hy040n", "categorical"), "'household_kinds'"),
    "size_shares sizes reversed": (lambda m: m["size_shares"].__setitem__(0, m["size_shares"][0][::-1]),
                                   "'size_shares'"),
}


@pytest.mark.parametrize("case", list(TAMPERED_HOUSEHOLDS))
def test_household_kinds_and_size_order_edits_are_refused_at_load(household, tmp_path, case):
    from microplex.households import HouseholdSynthesizer

    fn, field = TAMPERED_HOUSEHOLDS[case]
    path = tmp_path / "edited.mpx"
    path.write_bytes(_edit_meta(household[1], fn))
    with pytest.raises(DataValidationError, match="Model file '.*edited.mpx': " + re.escape(field)):
        HouseholdSynthesizer.load(path)


def test_an_unedited_household_file_draws_as_the_fitted_model(household, tmp_path):
    from microplex.households import HouseholdSynthesizer

    hs, data = household
    meta = {}
    _edit_meta(data, lambda m: meta.update(m))
    assert meta["household_kinds"] == dict(hs.household_model_.kinds_) and meta["household_kinds"]["hy040n"] == \
        "continuous"
    assert meta["size_shares"][0] == sorted(meta["size_shares"][0]) and len(meta["size_shares"][0]) > 1
    path = tmp_path / "hh.mpx"
    path.write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = HouseholdSynthesizer.load(path).sample(200, seed=4)
        want = hs.sample(200, seed=4)
    for a, b in zip(got, want, strict=True):
        pd.testing.assert_frame_equal(a, b)
