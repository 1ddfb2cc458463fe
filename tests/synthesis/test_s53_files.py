"""Session 53, untrusted files: tampered model files, household model files and dataset manifests.

Each case edits one entry of a file that a fit or a run wrote (real survey data: the PSID working
hours, heaped at 2000 with 26% zeros; EU-SILC households) in a way the structural checks let through,
and checks that loading refuses it with one :class:`~microplex.DataValidationError` naming the file
and the entry, and writes nothing. Before, these files loaded and drew nonsense (hours of 4.6 million,
incomes held at int64's limit 9.2e18, incomes of 127 in an int8 column, ages of -9.2e18, draws of
``True``/``False`` or dates) or raised a raw IndexError / ValueError.
"""

from __future__ import annotations

import io
import json
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from microplex import DataValidationError, Synthesizer

from _model_files import edit_metadata as _edit_meta
from _model_files import set_field as _set
from microplex.datasets import load_dataset

FAST = dict(epochs=1, hidden_features=(8,), transforms=1, verbose=False)


@pytest.fixture(scope="module")
def hours_models(tmp_path_factory) -> dict[str, bytes]:
    """Model files of the PSID working hours (int64 hours: zero point mass, heaps, a log segment; int64
    family income: an asinh segment), quantile- and moment-standardized."""
    wh = load_dataset("workinghours").iloc[:1500]
    out = {}
    for standardize in ("quantile", "moments"):
        synth = Synthesizer(["hours", "income"], ["age", "occupation"], standardize=standardize, **FAST)
        synth.fit(wh, seed=0)
        path = tmp_path_factory.mktemp("m") / "hours.mpx"
        synth.save(path)
        out[standardize] = path.read_bytes()
    return out


def _seg(meta: dict, name: str) -> dict:
    return meta["encoders"][name]["segments"][0]


def _scale_knots(key: str, factor: float):
    def fn(meta):
        knots = _seg(meta, "hours")["knots"]
        knots[key] = [v * factor for v in knots[key]]
    return fn


#: (model, edit, the entry the error names). Before: each loaded and drew nonsense, or raised a raw IndexError.
TAMPERED_ENCODERS = {
    # a raw IndexError at load (the heap's state is no continuous state)
    "heap outside the segment": ("quantile", lambda m: m["encoders"]["hours"].__setitem__(
        "heaps", [-5.0] + m["encoders"]["hours"]["heaps"]), "'encoders.hours.heaps'"),
    "log lower bound above the heaps": ("quantile", lambda m: _seg(m, "hours").__setitem__("lower", 1e6),
                                        "'encoders.hours.heaps'"),
    "single segment of sign -1": ("quantile", lambda m: _seg(m, "hours").__setitem__("sign", -1),
                                  "'encoders.hours.segments'"),
    # loaded, drew hours up to 4.6 million (training maximum 5,000) or int64's limit
    "knots t x100": ("quantile", _scale_knots("t", 100.0), "'encoders.hours.segments[0].knots.t'"),
    "knots z x1e300": ("quantile", _scale_knots("z", 1e300), "'encoders.hours.segments[0].knots.z'"),
    "tail slopes 1e-300": ("quantile", lambda m: _seg(m, "hours")["knots"].__setitem__("slopes", [1e-300, 1e-300]),
                           "'encoders.hours.segments[0].knots.slopes'"),
    "upper tail beyond exp's range": ("quantile", lambda m: _seg(m, "hours").__setitem__("tail_hi", 800.0),
                                      "'encoders.hours.segments[0]'"),
    "lower tail on a log segment": ("quantile", lambda m: _seg(m, "hours").__setitem__("tail_lo", 6.0),
                                    "'encoders.hours.segments[0].tail_lo'"),
    "tails crossed": ("quantile", lambda m: _seg(m, "income").update(tail_lo=10.0, tail_hi=-10.0),
                      "'encoders.income.segments[0]'"),
    "asinh scale 1e300": ("quantile", lambda m: _seg(m, "income").__setitem__("scale", 1e300), "'dtypes.income'"),
    "point mass 1e300": ("quantile", lambda m: m["encoders"]["hours"].__setitem__("point_masses", [1e300]),
                         "'dtypes.hours'"),
    "point mass 2.5 in int64": ("quantile", lambda m: m["encoders"]["hours"].__setitem__("point_masses", [2.5]),
                                "'dtypes.hours'"),
    # moment standardization: a mean or std no transformed training value can have
    "moments mean beyond the maximum": ("moments", lambda m: _seg(m, "income").__setitem__("mean", 1e6),
                                        "'encoders.income.segments[0].mean'"),
    "moments std beyond the range": ("moments", lambda m: _seg(m, "income").__setitem__("std", 1e6),
                                     "'encoders.income.segments[0].std'"),
    "log moments mean beyond the maximum": ("moments", lambda m: _seg(m, "hours").__setitem__("mean", 1e6),
                                            "'encoders.hours.segments[0].mean'"),
    # a dtype that cannot hold the hours: draws clipped to 127 / 255, or flags, dates, text, complex numbers
    **{f"dtype {d}": ("quantile", lambda m, d=d: m["dtypes"].__setitem__("hours", d), "'dtypes.hours'")
       for d in ("int8", "uint8", "bool", "datetime64[ns]", "timedelta64[ns]", "complex128", "str", "object",
                 "category")},
}


@pytest.mark.parametrize("case", list(TAMPERED_ENCODERS))
def test_a_tampered_encoder_is_refused_at_load_naming_the_entry(hours_models, tmp_path, case):
    model, fn, entry = TAMPERED_ENCODERS[case]
    path = tmp_path / "edited.mpx"
    path.write_bytes(_edit_meta(hours_models[model], fn))
    with pytest.raises(DataValidationError, match="edited.mpx' is not a valid Synthesizer model file: field " + re.escape(entry)):
        Synthesizer.load(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["edited.mpx"]


def test_untampered_hours_models_load_and_draw_within_the_training_range(hours_models):
    """The checks refuse none of what fit writes: both files load and draw hours in [0, 50000] (the data's
    [0, 5000], its linear tails beyond), zeros among them."""
    for data in hours_models.values():
        draws = Synthesizer.load(io.BytesIO(data)).sample(2000, seed=1)
        assert draws["hours"].dtype == np.int64 and draws["income"].dtype == np.int64
        assert 0 <= draws["hours"].min() and draws["hours"].max() <= 50_000
        assert 0 < (draws["hours"] == 0).mean() < 1


@pytest.fixture(scope="module")
def category_and_dp_models(tmp_path_factory) -> dict[str, bytes]:
    """An acs12 model of employment (a categorical target) given race (a categorical condition), and a DP model
    of the working hours with public bounds [0, 5000]."""
    acs = load_dataset("acs12")[["employment", "hrs_work", "age", "race"]].dropna()
    out = {}
    synth = Synthesizer(["employment", "hrs_work"], ["age", "race"], **FAST).fit(acs, seed=0)
    out["acs"] = tmp_path_factory.mktemp("acs") / "acs.mpx"
    synth.save(out["acs"])
    wh = load_dataset("workinghours").iloc[:1500]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PrivacyWarning: values clipped to the public bounds
        dp = Synthesizer(["hours"], ["age"], epsilon=2.0, delta=1e-5,
                         public_bounds={"hours": (0, 5000), "age": (18, 70)}, **FAST).fit(wh, seed=0)
    out["dp"] = tmp_path_factory.mktemp("dp") / "dp.mpx"
    dp.save(out["dp"])
    return {k: v.read_bytes() for k, v in out.items()}


def _reverse(key: str, name: str):
    def fn(meta):
        holder = meta["encoders"][name] if key == "categories" else meta["condition_encoder"]["stats"]
        field = "categories" if key == "categories" else name
        holder[field] = holder[field][::-1]
    return fn


#: Before: each loaded and drew with labels swapped (a reversed target's 'employed' drawn as 'unemployed'), records
#: conditioned on another race's one-hot code, or DP hours of -980,000 for public bounds [0, 5000].
TAMPERED_CATEGORIES_AND_DP = {
    "target categories permuted": ("acs", _reverse("categories", "employment"), "'encoders.employment.categories'"),
    "condition categories permuted": ("acs", _reverse("stats", "race"), "'condition_encoder.stats.race'"),
    "DP segment wider than the public bounds": ("dp", lambda m: _seg(m, "hours").update(lower=-1e6, upper=1e6),
                                                "'encoders.hours.segments[0]'"),
    "DP public bounds other than the segment's": ("dp", lambda m: m["params"]["public_bounds"].__setitem__(
        "hours", [0, 10**9]), "'encoders.hours.segments[0]'"),
}


@pytest.mark.parametrize("case", list(TAMPERED_CATEGORIES_AND_DP))
def test_permuted_categories_and_widened_dp_bounds_are_refused(category_and_dp_models, tmp_path, case):
    model, fn, entry = TAMPERED_CATEGORIES_AND_DP[case]
    path = tmp_path / "edited.mpx"
    path.write_bytes(_edit_meta(category_and_dp_models[model], fn))
    with pytest.raises(DataValidationError, match="edited.mpx' is not a valid Synthesizer model file: field " + re.escape(entry)):
        Synthesizer.load(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["edited.mpx"]


def test_untampered_category_and_dp_models_load(category_and_dp_models):
    for data in category_and_dp_models.values():
        assert len(Synthesizer.load(io.BytesIO(data)).sample(20, seed=0)) == 20


# -- household model files -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def household_file(tmp_path_factory) -> bytes:
    from microplex.households import HouseholdSynthesizer

    eu = load_dataset("eusilc")
    eu = eu[eu.db030.isin(eu.db030.unique()[:300])][["db030", "db040", "hsize", "age", "rb090", "py010n", "db090"]]
    eu = eu.fillna({"py010n": 0.0})
    hs = HouseholdSynthesizer(["db040", "hsize"], ["age", "rb090", "py010n"], "db030", "db090", size_var="hsize",
                              geography="db040", age_var="age", epochs=1, hidden_features=(8,), transforms=1,
                              verbose=False).fit(eu, seed=0)
    path = tmp_path_factory.mktemp("hh") / "hh.mpx"
    hs.save(path)
    return path.read_bytes()


#: Before: each loaded, then drew incomes clipped to 127, ages as booleans or dates, ages of -9.2e18 (min_age
#: cast to int64), weights of 0, or raised a raw ValueError / a DataValidationError only when drawing.
TAMPERED_HOUSEHOLDS = {
    "person dtype int8 for incomes": (_set("person_dtypes.py010n", "int8"), "'person_dtypes.py010n'"),
    "person dtype int8 for ages": (_set("person_dtypes.age", "int8"), "'person_dtypes.age'"),
    "person dtype bool for ages": (_set("person_dtypes.age", "bool"), "'min_age'"),
    "person dtype datetime for ages": (_set("person_dtypes.age", "datetime64[ns]"), "'min_age'"),
    "min_age 1e300": (_set("min_age", 1e300), "'min_age'"),
    "total weight 0": (_set("total_weight", 0.0), "'total_weight'"),
    "size dtype bool": (_set("size_dtype", "bool"), "'size_dtype'"),
    "size dtype other than the household model's": (_set("size_dtype", "int8"), "'size_dtype'"),
    "geography dtype int64 over region names": (_set("geography_dtype", "int64"), "'geography_dtype'"),
    "geography values the household model never saw": (
        lambda m: m["geography_shares"].__setitem__(0, [f"x{i}" for i in range(len(m["geography_shares"][0]))]),
        "'geography_shares'"),
}


@pytest.mark.parametrize("case", list(TAMPERED_HOUSEHOLDS))
def test_a_tampered_household_file_is_refused_at_load_naming_the_entry(household_file, tmp_path, case):
    from microplex.households import HouseholdSynthesizer

    fn, entry = TAMPERED_HOUSEHOLDS[case]
    path = tmp_path / "edited.mpx"
    path.write_bytes(_edit_meta(household_file, fn))
    with pytest.raises(DataValidationError, match="Model file '.*edited.mpx': " + re.escape(entry)):
        HouseholdSynthesizer.load(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["edited.mpx"]


def test_an_untampered_household_file_loads_and_draws(household_file, tmp_path):
    from microplex.households import HouseholdSynthesizer

    path = tmp_path / "hh.mpx"
    path.write_bytes(household_file)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        households, persons = HouseholdSynthesizer.load(path).sample(50, seed=0)
    assert len(households) == 50 and persons["age"].dtype == np.int64 and persons["py010n"].dtype == np.float64


# -- dataset manifests ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def dataset(hours_models, tmp_path_factory) -> Path:
    from microplex.scale import generate_dataset

    path = tmp_path_factory.mktemp("pop") / "pop"
    generate_dataset(Synthesizer.load(io.BytesIO(hours_models["quantile"])), n=300, path=path, rows_per_file=100,
                     progress=False)
    return path


@pytest.mark.parametrize("edit", ["rows", "huge rows", "duplicated file", "huge file rows"])
def test_a_complete_manifest_whose_rows_are_not_its_files_is_refused(dataset, tmp_path, edit):
    """Before: read_manifest returned a manifest of 10**30 rows (or 600 for 300 records), which the pipeline
    reports as the dataset's size."""
    import shutil

    from microplex.scale import read_manifest
    from microplex.scale._layout import layout

    copy = tmp_path / "pop"
    shutil.copytree(dataset, copy)
    if layout(dataset).meta != dataset:
        shutil.copytree(layout(dataset).meta, layout(copy).meta)
    manifest_path = layout(copy).manifest
    manifest = json.loads(manifest_path.read_text())
    assert manifest["rows"] == 300 == sum(f["rows"] for f in manifest["files"])
    if edit == "rows":
        manifest["rows"] = 600
    elif edit == "huge rows":
        manifest["rows"] = 10**30
    elif edit == "duplicated file":
        manifest["files"].append(manifest["files"][0])
        manifest["rows"] += manifest["files"][0]["rows"]
    else:
        manifest["files"][0]["rows"] = 10**30
    manifest_path.write_text(json.dumps(manifest))
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    with pytest.raises(DataValidationError, match="manifest"):
        read_manifest(copy)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


@pytest.mark.parametrize("index, factor", [(0, 1.5), (1, 1e-12), (1, 100.0)])
def test_condition_stats_that_are_not_the_stored_conditions_are_refused(hours_models, tmp_path, index, factor):
    """A file's numeric condition mean and sd are the weighted moments of its stored training conditions (fit
    computes them from exactly those rows). Edited, the file loaded: an age sd of 1e-12 drew incomes from
    -2.6e17 to int64's limit. Now refused naming the field; the untampered file's stats agree to 1e-9."""
    def edit(meta):
        meta["condition_encoder"]["stats"]["age"][index] *= factor

    path = tmp_path / "m.mpx"
    path.write_bytes(_edit_meta(hours_models["quantile"], edit))
    with pytest.raises(DataValidationError, match=r"field 'condition_encoder\.stats\.age' must be the weighted mean"):
        Synthesizer.load(path)


def test_a_file_whose_weight_zero_records_were_left_out_loads(tmp_path):
    """Records of weight 0 whose target state no weighted record holds are left out of the stored conditions,
    after the condition encoder was fit on every record: their region is in the encoder's categories, not in the
    table, and their extreme ages do not move the weighted moments. Such a file is the fit's own and loads (a
    check that the table holds every encoder category refused it)."""
    rng = np.random.default_rng(0)
    n = 400
    df = pd.DataFrame({"region": rng.choice(["a", "b"], n), "age": rng.integers(18, 80, n).astype(float),
                       "tenure": rng.choice(["own", "rent"], n), "inc": rng.lognormal(8, 1, n),
                       "w": rng.uniform(1, 2, n)})
    extra = pd.DataFrame({"region": ["zz"] * 3, "age": [99.0, 98.0, 97.0], "tenure": ["boat"] * 3,
                          "inc": [1.0, 2.0, 3.0], "w": [0.0] * 3})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        synth = Synthesizer(["inc", "tenure"], ["region", "age"], **FAST).fit(
            pd.concat([df, extra], ignore_index=True), weight_col="w", seed=0)
    assert "zz" in synth.condition_encoder_.stats["region"] and len(synth.training_conditions_) == n
    synth.save(tmp_path / "m.mpx")
    assert len(Synthesizer.load(tmp_path / "m.mpx").sample(20, seed=0)) == 20
