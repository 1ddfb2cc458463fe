"""Model files and other files read back (s73): knots deleted from a segment holding heaps, the order of a file's
targets, keys given twice in a JSON file, and a dataset manifest listing files the folder does not hold."""

from __future__ import annotations

import io
import json
import os
import zipfile

import numpy as np
import pandas as pd
import pytest

from microplex import DataValidationError, Synthesizer
from microplex.datasets import load_dataset
from microplex.synthesis.schema import VariableSpec
from microplex.synthesis.serialization import FORMAT_VERSION

pytestmark = pytest.mark.filterwarnings("ignore")  # per test: a module-level filter outlived the module


# ----------------------------------------------------------------------------------------------------------- helpers

def _file(synth: Synthesizer, tmp_path, name: str = "m.mpx") -> bytes:
    path = tmp_path / name
    synth.save(path)
    return path.read_bytes()


def _members(data: bytes) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return [(i.filename, z.read(i)) for i in z.infolist()]


def _with_metadata(data: bytes, text: str | bytes) -> io.BytesIO:
    """The model file ``data`` with ``metadata.json`` replaced by ``text``."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, raw in _members(data):
            z.writestr(name, (text.encode() if isinstance(text, str) else text) if name == "metadata.json" else raw)
    out.seek(0)
    return out


def _meta(data: bytes) -> dict:
    return json.loads(dict(_members(data))["metadata.json"])


def _edited(data: bytes, edit) -> io.BytesIO:
    meta = _meta(data)
    edit(meta)
    return _with_metadata(data, json.dumps(meta))


# ------------------------------------------------------------------------ 1. knots of a segment that holds heaps

@pytest.fixture(scope="module")
def hours_file(tmp_path_factory):
    """acs12's hours of work (float, default standardize="quantile"): point masses 25..50, heaps 20, 35, 60, one
    log segment with knots."""
    df = load_dataset("acs12")[["hrs_work", "age"]].dropna()
    synth = Synthesizer(["hrs_work"], ["age"], epochs=1, verbose=False, hidden_features=(8,), transforms=1)
    synth.fit(df, seed=1)
    return synth, _file(synth, tmp_path_factory.mktemp("hours"))


def test_knots_deleted_from_a_segment_holding_heaps_are_refused(hours_file):
    synth, data = hours_file
    enc = _meta(data)["encoders"]["hrs_work"]
    assert enc["heaps"] == [20.0, 35.0, 60.0] and len(enc["segments"]) == 1 and "knots" in enc["segments"][0]
    assert Synthesizer.load(_with_metadata(data, dict(_members(data))["metadata.json"])) is not None  # unedited
    tampered = _edited(data, lambda m: m["encoders"]["hrs_work"]["segments"][0].pop("knots"))
    # a file of the current version records the single value of a heap segment without knots: it lacks it
    with pytest.raises(DataValidationError, match=r"'encoders\.hrs_work\.segments\[0\]\.single_value' must be "
                                                  r"present"):
        Synthesizer.load(tampered)

    def old(m):  # a version-2 file (no single values): its moments and range cannot be those of one value
        m["format_version"] = 2
        m["encoders"]["hrs_work"]["segments"][0].pop("knots")
    with pytest.raises(DataValidationError, match=r"'encoders\.hrs_work\.segments\[0\]\.knots' must be present"):
        Synthesizer.load(_edited(data, old))


def test_knots_deleted_from_an_integer_segment_holding_heaps_are_refused(tmp_path):
    df = load_dataset("acs12")[["hrs_work", "age"]].dropna().astype({"hrs_work": "int64"})
    synth = Synthesizer(["hrs_work"], ["age"], epochs=1, verbose=False, hidden_features=(8,), transforms=1)
    data = _file(synth.fit(df, seed=1), tmp_path)
    enc = _meta(data)["encoders"]["hrs_work"]
    assert enc["integer"] is True and enc["heaps"] and "knots" in enc["segments"][0]
    tampered = _edited(data, lambda m: m["encoders"]["hrs_work"]["segments"][0].pop("knots"))
    with pytest.raises(DataValidationError, match=r"segments\[0\]\.knots' must be present.*integer values"):
        Synthesizer.load(tampered)


@pytest.mark.parametrize("values", [(0, 3, 7, 10), (0, 3, 10, 12)], ids=["inside", "at the top"])
def test_a_segment_holding_heaps_and_one_other_value_loads_without_knots(tmp_path, values):
    """What fit writes: a float segment whose values off its heaps are one value has no knots; it loads, and
    draws as before saving."""
    rng = np.random.default_rng(0)
    n = 400
    df = pd.DataFrame({"x": rng.choice(values, n, p=[0.3, 0.3, 0.2, 0.2]).astype(float),
                       "age": rng.integers(18, 80, n)})
    synth = Synthesizer(["x"], ["age"], epochs=1, hidden_features=(8,), transforms=1, verbose=False,
                        schema={"x": VariableSpec(point_masses=(0.0,), heaps=(3.0, 10.0))}).fit(df, seed=0)
    data = _file(synth, tmp_path)
    seg = _meta(data)["encoders"]["x"]["segments"][0]
    assert "knots" not in seg and "free" not in seg  # the case: heaps and one value off them, no knots
    loaded = Synthesizer.load(tmp_path / "m.mpx")
    pd.testing.assert_frame_equal(loaded.sample(500, seed=3), synth.sample(500, seed=3))

    def old(m):  # a version-2 file, written before the single value was recorded
        m["format_version"] = 2
        m["encoders"]["x"]["segments"][0].pop("single_value")
    loaded = Synthesizer.load(_edited(data, old))
    pd.testing.assert_frame_equal(loaded.sample(500, seed=3), synth.sample(500, seed=3))


def test_a_heap_segment_whose_moments_need_more_values_is_refused_without_knots(tmp_path):
    """Both ends recorded (asinh) and heaps at both: the variance may not exceed that of the ends."""
    rng = np.random.default_rng(1)
    n = 600
    x = np.where(rng.random(n) < 0.5, rng.choice([-5.0, 40.0], n), rng.normal(10, 3, n))
    df = pd.DataFrame({"x": x, "age": rng.integers(18, 80, n)})
    synth = Synthesizer(["x"], ["age"], epochs=1, hidden_features=(8,), transforms=1, verbose=False,
                        schema={"x": VariableSpec(point_masses=(), heaps=(-5.0, 40.0))}).fit(df, seed=0)
    data = _file(synth, tmp_path)
    seg = _meta(data)["encoders"]["x"]["segments"][0]
    assert seg["transform"] == "asinh" and "knots" in seg

    def edit(m):
        m["format_version"] = 2  # files of later versions record the single value (tests/synthesis/test_s77_*)
        s = m["encoders"]["x"]["segments"][0]
        s.pop("knots")
        s["tail_lo"], s["tail_hi"] = np.arcsinh(-5.0 / s["scale"]), np.arcsinh(40.0 / s["scale"])
        s["std"] = (s["tail_hi"] - s["tail_lo"]) * 0.6  # more than half the range: no weights give it
    with pytest.raises(DataValidationError, match=r"segments\[0\]\.knots' must be present"):
        Synthesizer.load(_edited(data, edit))


# ------------------------------------------------------------------------------------------ 2. order of targets

@pytest.fixture(scope="module")
def dp_file(tmp_path_factory):
    wh = load_dataset("workinghours")
    synth = Synthesizer(["hours", "income"], ["age"], epochs=2, verbose=False, hidden_features=(16,), transforms=1,
                        epsilon=5.0, delta=1e-6,
                        public_bounds={"hours": (0, 5000), "income": (0, 2000), "age": (18, 70)})
    synth.fit(wh, seed=1)
    return synth, _file(synth, tmp_path_factory.mktemp("dp"))


def test_a_dp_file_whose_target_order_was_reversed_is_refused(dp_file):
    synth, data = dp_file
    loaded = Synthesizer.load(_with_metadata(data, dict(_members(data))["metadata.json"]))
    pd.testing.assert_frame_equal(loaded.sample(300, seed=0), synth.sample(300, seed=0))
    reversed_targets = _edited(data, lambda m: m["params"].__setitem__("target_vars", m["params"]["target_vars"][::-1]))
    with pytest.raises(DataValidationError, match=r"field 'kinds' must be an object whose keys are in the order of "
                                                  r"params\.target_vars and params\.condition_vars \['income', 'hours'"):
        Synthesizer.load(reversed_targets)


@pytest.mark.parametrize("key", ["kinds", "dtypes", "encoders", "encoder_types"])
def test_per_target_fields_out_of_target_order_are_refused(dp_file, key):
    _, data = dp_file

    def edit(m):
        names = list(m[key])
        m[key] = {n: m[key][n] for n in [names[1], names[0], *names[2:]]}
    with pytest.raises(DataValidationError, match=rf"field '{key}' must be an object whose keys are in the order"):
        Synthesizer.load(_edited(data, edit))


# ------------------------------------------------------------------------------------ 4. keys given twice in JSON

def test_a_key_given_twice_in_model_metadata_is_refused(hours_file):
    _, data = hours_file
    text = dict(_members(data))["metadata.json"].decode()
    assert text.startswith("{")
    twice = '{"microplex_version": "9.9", ' + text[1:]  # the file's own microplex_version comes later, and won
    with pytest.raises(DataValidationError, match=r"<_io\.BytesIO.*metadata\.json gives the key 'microplex_version' "
                                                  r"twice in one JSON object"):
        Synthesizer.load(_with_metadata(data, twice))
    nested = text.replace('"params": {', '"params": {"standardize": "moments", ', 1)
    with pytest.raises(DataValidationError, match="gives the key 'standardize' twice"):
        Synthesizer.load(_with_metadata(data, nested))


@pytest.fixture()
def small_dataset(tmp_path):
    from microplex.scale import generate_dataset
    wh = load_dataset("workinghours")
    synth = Synthesizer(["hours"], ["age"], epochs=1, verbose=False, hidden_features=(8,), transforms=1)
    synth.fit(wh, seed=1)
    path = tmp_path / "pop"
    generate_dataset(synth, wh[["age"]].head(600), n=600, path=path, rows_per_file=200, seed=1, progress=False)
    return path, tmp_path / ".pop.microplex" / "_microplex_manifest.json"


def test_a_key_given_twice_in_a_dataset_manifest_is_refused(small_dataset):
    from microplex.scale import read_manifest
    path, manifest = small_dataset
    assert read_manifest(path)["rows"] == 600
    text = manifest.read_text()
    manifest.write_text(text.replace('"rows": 600', '"rows": 600, "rows": 400', 1))
    assert manifest.read_text() != text
    with pytest.raises(DataValidationError, match=r"_microplex_manifest\.json' gives the key 'rows' twice"):
        read_manifest(path)


def test_a_key_given_twice_in_pipeline_records_locks_and_set_values_is_refused(tmp_path):
    from microplex._cli_checks import parse_value
    from microplex._pipeline_manifest import read_record
    from microplex.scale._lock import _parse

    record = tmp_path / "generate.json"
    record.write_text('{"fingerprint": "f", "outputs": {}}')
    assert read_record(record) == {"fingerprint": "f", "outputs": {}}
    record.write_text('{"fingerprint": "f", "outputs": {}, "fingerprint": "g"}')
    assert read_record(record) is None  # unreadable: the stage runs again
    assert _parse('{"pid": 12, "host": "a"}') == {"pid": 12, "host": "a"}
    assert _parse('{"pid": 12, "host": "a", "pid": 13}') is None
    assert parse_value('{"a": 1}') == {"a": 1}
    with pytest.raises(DataValidationError, match=r"--set value .* gives the key 'a' twice"):
        parse_value('{"a": 1, "a": 2}')


# -------------------------------------------------------------------- 5. a complete manifest's files in the folder

def test_a_complete_manifest_listing_files_the_folder_does_not_hold_is_refused(small_dataset):
    from microplex.scale import read_manifest
    path, manifest = small_dataset
    good = json.loads(manifest.read_text())
    assert [(f["path"], f["bytes"]) for f in read_manifest(path)["files"]] == [
        (p.name, p.stat().st_size) for p in sorted(path.iterdir())]

    def edited(edit):
        m = json.loads(json.dumps(good))
        edit(m["files"])
        manifest.write_text(json.dumps(m))

    edited(lambda files: files[2].__setitem__("path", "part-999999.parquet"))
    with pytest.raises(DataValidationError, match=r"lists the file 'part-999999\.parquet', which is missing from "
                                                  r"'.*pop'"):
        read_manifest(path)
    edited(lambda files: files[1].__setitem__("bytes", 1))
    with pytest.raises(DataValidationError, match=r"lists the file 'part-000001\.parquet' of 1 bytes; the file in "
                                                  rf"'.*pop' has {good['files'][1]['bytes']}"):
        read_manifest(path)
    manifest.write_text(json.dumps(good))
    first = path / good["files"][0]["path"]
    kept = first.read_bytes()
    first.unlink()
    os.symlink(path / good["files"][1]["path"], first)  # a link in place of the file
    with pytest.raises(DataValidationError, match=r"lists the file 'part-000000\.parquet', which is not a regular"):
        read_manifest(path)
    first.unlink()
    first.write_bytes(kept)
    assert read_manifest(path)["files"] == good["files"]


# ----------------------------------------------------------------- 3. keys whose absence selects an older behaviour

@pytest.fixture(scope="module")
def int_hours_file(tmp_path_factory):
    """acs12's hours of work as int64 (integer heaps: compact coordinates), stratified draws, rounding grids."""
    df = load_dataset("acs12")[["hrs_work", "age"]].dropna().astype({"hrs_work": "int64"})
    synth = Synthesizer(["hrs_work"], ["age"], epochs=1, verbose=False, hidden_features=(8,), transforms=1,
                        sampling="stratified")
    synth.fit(df, seed=1)
    return synth, df, _file(synth, tmp_path_factory.mktemp("int_hours"))


@pytest.mark.parametrize("key", ["sampling", "standardize", "rounding", "structural_zeros", "max_heaps"])
def test_a_new_file_lacking_a_recorded_parameter_is_refused(int_hours_file, key):
    _, _, data = int_hours_file
    meta = _meta(data)
    assert meta["format_version"] == FORMAT_VERSION and key in meta["params"]
    with pytest.raises(DataValidationError, match=rf"field 'params' must be an object holding \['{key}'"
                                                  if key != "max_heaps" else r"field 'params' must be"):
        Synthesizer.load(_edited(data, lambda m: m["params"].pop(key)))


def test_a_new_file_lacking_compact_coordinates_is_refused(int_hours_file):
    _, _, data = int_hours_file
    assert _meta(data)["encoders"]["hrs_work"]["compact"] is True
    with pytest.raises(DataValidationError, match=r"'encoders\.hrs_work\.compact' must be true on an integer target "
                                                  r"whose heaps are integers"):
        Synthesizer.load(_edited(data, lambda m: m["encoders"]["hrs_work"].pop("compact")))


def test_a_version_1_file_lacking_them_loads_with_the_older_behaviour(int_hours_file):
    """Files written before format version 2 (the repository's tests write them as such) keep loading as
    documented: no 'sampling' key draws independently, no 'compact' keeps the heaps in the flow's coordinate."""
    synth, df, data = int_hours_file
    cond = df[["age"]].head(2000)

    def old(m):
        m["format_version"] = 1
        m["params"].pop("sampling")
        m["encoders"]["hrs_work"].pop("compact")
    loaded = Synthesizer.load(_edited(data, old))
    assert loaded.sampling == "independent" and not loaded.encoders_["hrs_work"].compact
    assert not loaded.generate(cond, seed=0).equals(synth.generate(cond, seed=0))  # what the key selected
    assert Synthesizer.load(_edited(data, lambda m: m.__setitem__("format_version", 1))).sampling == "stratified"


def test_a_nested_model_edited_to_version_1_is_refused(tmp_path):
    """A version-2 file's condition model, or a household file's inner model, written as version 1 could lack the
    keys version 2 requires: each nested model has the file's version."""
    from microplex import HouseholdSynthesizer

    df = load_dataset("acs12")[["hrs_work", "age"]].dropna().astype({"hrs_work": "int64"})
    synth = Synthesizer(["hrs_work"], ["age"], epochs=1, verbose=False, hidden_features=(8,), transforms=1,
                        condition_model=True).fit(df, seed=1)
    data = _file(synth, tmp_path)
    assert _meta(data)["condition_model"]["format_version"] == FORMAT_VERSION
    Synthesizer.load(tmp_path / "m.mpx")
    with pytest.raises(DataValidationError, match=r"'condition_model\.format_version' must be the file's "
                                                  rf"format_version {FORMAT_VERSION}\. Got 1 instead"):
        Synthesizer.load(_edited(data, lambda m: m["condition_model"].__setitem__("format_version", 1)))

    eu = load_dataset("eusilc")
    eu = eu[eu.db030.isin(eu.db030.unique()[:200])][["db030", "hsize", "age", "rb090", "db090"]]
    hs = HouseholdSynthesizer(["hsize"], ["age", "rb090"], "db030", "db090", size_var="hsize", age_var="age",
                              epochs=1, hidden_features=(8,), transforms=1, verbose=False).fit(eu, seed=0)
    hh = _file(hs, tmp_path, "hh.mpx")
    name = next(iter(_meta(hh)["models"]))
    HouseholdSynthesizer.load(tmp_path / "hh.mpx")
    with pytest.raises(DataValidationError, match=rf"'models\.{name}\.format_version' must be the file's "
                                                  rf"format_version {FORMAT_VERSION}\. Got 1 instead"):
        HouseholdSynthesizer.load(_edited(hh, lambda m: m["models"][name].__setitem__("format_version", 1)))
