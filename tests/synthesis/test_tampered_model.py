"""Tampered model files: every defect gives one DataValidationError naming the file, and nothing is written.

A saved model is untrusted data. Each case below edits one thing in a valid tiny ``.mpx`` file
(the zip container, the member names and sizes, a metadata field, a tensor or the conditions
table) and checks that :meth:`Synthesizer.load` refuses it with a
:class:`~microplex.DataValidationError` whose message names the file, and that no file appears
in the test folder besides the input.
"""

import io
import json
import struct

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from microplex import DataValidationError, Synthesizer
from microplex.synthesis.serialization import FORMAT_VERSION

from _model_files import delete_field as _delete
from _model_files import edit_metadata
from _model_files import members as _members
from _model_files import replace_member as _replace
from _model_files import set_field as _set
from _model_files import zip_members as _zip


@pytest.fixture(scope="module")
def model_bytes(tmp_path_factory):
    rng = np.random.default_rng(0)
    n = 120
    df = pd.DataFrame({
        "age": rng.integers(18, 80, n),
        "region": rng.choice(["n", "s"], n),
        "income": np.where(rng.random(n) < 0.3, 0.0, np.exp(rng.normal(8, 1, n))),
        "tenure": rng.choice(["own", "rent", "free"], n),
        "w": rng.uniform(0.5, 2.0, n),
    })
    synth = Synthesizer(["income", "tenure"], ["age", "region"], epochs=1, hidden_features=(8,),
                        transforms=1, verbose=False).fit(df, weight_col="w", seed=0)
    path = tmp_path_factory.mktemp("model") / "m.mpx"
    synth.save(path)
    return path.read_bytes()


def _meta(fn):
    return lambda data: edit_metadata(data, fn)


def _tensors(fn):
    def edit(data):
        def inner(raw):
            t = dict(load_tensors(raw))
            fn(t)
            return save_tensors(t)
        return _replace(data, "weights.safetensors", inner)
    return edit


def _table(fn):
    def edit(data):
        def inner(raw):
            df = pd.read_parquet(io.BytesIO(raw))
            df = fn(df)
            buf = io.BytesIO()
            df.to_parquet(buf, index=False)
            return buf.getvalue()
        return _replace(data, "conditions.parquet", inner)
    return edit


def _declared_size(data: bytes, member: str, size: int) -> bytes:
    """Sets the uncompressed size that the central directory declares for ``member``."""
    out = bytearray(data)
    pos = 0
    while (pos := out.find(b"PK\x01\x02", pos)) >= 0:
        name_len = struct.unpack_from("<H", out, pos + 28)[0]
        if out[pos + 46 : pos + 46 + name_len].decode() == member:
            struct.pack_into("<I", out, pos + 24, size)
            return bytes(out)
        pos += 4
    raise AssertionError(member)


def _zip_bomb(data: bytes) -> bytes:
    members = _members(data)
    return _zip(members + [("padding.parquet", b"\0" * (16 * 2**20))])


def _first_weight(t):
    return next(k for k, v in t.items() if v.is_floating_point() and v.ndim == 2)


TAMPERINGS = {
    # the container
    "not a zip": lambda d: b"definitely not a zip file",
    "empty file": lambda d: b"",
    "truncated": lambda d: d[: len(d) // 2],
    "truncated tail": lambda d: d[:-10],
    "corrupt member data": lambda d: d[:200] + bytes(b ^ 0xFF for b in d[200:400]) + d[400:],
    # member names
    "metadata renamed": lambda d: _zip([("meta.json" if n == "metadata.json" else n, b) for n, b in _members(d)]),
    "no weights": lambda d: _zip([(n, b) for n, b in _members(d) if n != "weights.safetensors"]),
    "no conditions": lambda d: _zip([(n, b) for n, b in _members(d) if n != "conditions.parquet"]),
    "unexpected member": lambda d: _zip(_members(d) + [("evil.sh", b"rm -rf /")]),
    "unexpected table": lambda d: _zip(_members(d) + [("other.parquet", dict(_members(d))["conditions.parquet"])]),
    "parent path member": lambda d: _zip(_members(d) + [("../../evil.parquet", b"x")]),
    "absolute member": lambda d: _zip(_members(d) + [("/tmp/evil.parquet", b"x")]),
    "nested traversal member": lambda d: _zip(_members(d) + [("a/../../evil.parquet", b"x")]),
    "backslash member": lambda d: _zip(_members(d) + [("..\\evil.parquet", b"x")]),
    "drive member": lambda d: _zip(_members(d) + [("C:/evil.parquet", b"x")]),
    "duplicated member": lambda d: _zip(_members(d) + [("metadata.json", b"{}")]),
    # sizes
    "huge declared size": lambda d: _declared_size(d, "metadata.json", 0xFFFFFFF0),
    "declared size too small": lambda d: _declared_size(d, "conditions.parquet", 10),
    "declared size too large": lambda d: _declared_size(d, "conditions.parquet", 10**6),
    "zip bomb": _zip_bomb,
    # metadata encoding and header
    "metadata not json": lambda d: _replace(d, "metadata.json", lambda b: b"{not json"),
    "metadata not utf-8": lambda d: _replace(d, "metadata.json", lambda b: b"\xff\xfe{}"),
    "metadata a list": lambda d: _replace(d, "metadata.json", lambda b: b"[1, 2]"),
    "metadata deeply nested": lambda d: _replace(d, "metadata.json", lambda b: b"[" * 100_000 + b"]" * 100_000),
    "format other": _meta(_set(["format"], "microplex.HouseholdSynthesizer")),
    "format version str": _meta(_set(["format_version"], "1")),
    "format version float": _meta(_set(["format_version"], 1.0)),
    "format version bool": _meta(_set(["format_version"], True)),
    "format version after the current": _meta(_set(["format_version"], FORMAT_VERSION + 1)),
    "missing key": _meta(_delete(["kinds"])),
    "missing history": _meta(_delete(["history"])),
    "extra key": _meta(_set(["__class__"], "os.system")),
    "version not str": _meta(_set(["microplex_version"], 3)),
    # params
    "params not object": _meta(_set(["params"], [1, 2])),
    "params extra key": _meta(_set(["params", "exec"], "print(1)")),
    "params missing key": _meta(_delete(["params", "epochs"])),
    "epochs str": _meta(_set(["params", "epochs"], "lots")),
    "transforms huge": _meta(_set(["params", "transforms"], 10**9)),
    "hidden features huge": _meta(_set(["params", "hidden_features"], [10**9])),
    "hidden features zero": _meta(_set(["params", "hidden_features"], [0])),
    "hidden features str": _meta(_set(["params", "hidden_features"], "8")),
    "flow unknown": _meta(_set(["params", "flow"], "gan")),
    "target name not str": _meta(_set(["params", "target_vars"], [1, "tenure"])),
    "target vars str": _meta(_set(["params", "target_vars"], "income")),
    "condition name not str": _meta(_set(["params", "condition_vars"], [None, "region"])),
    "schema bad kind": _meta(_set(["params", "schema"], {"income": {"kind": "float", "point_masses": None,
                                                                    "transform": "auto"}})),
    "schema not object": _meta(_set(["params", "schema"], [])),
    # kinds, dtypes, encoders
    "kind unknown": _meta(_set(["kinds", "income"], "text")),
    "kinds missing column": _meta(_delete(["kinds", "age"])),
    "kinds extra column": _meta(_set(["kinds", "other"], "continuous")),
    "dtype bogus": _meta(_set(["dtypes", "income"], "not_a_dtype")),
    "dtype not str": _meta(_set(["dtypes", "income"], 8)),
    "encoder type swapped": _meta(_set(["encoder_types", "income"], "CategoricalEncoder")),
    "encoder type unknown": _meta(_set(["encoder_types", "income"], "os.system")),
    "encoder missing": _meta(_delete(["encoders", "income"])),
    "encoder name other": _meta(_set(["encoders", "income", "name"], "tenure")),
    "encoder integer str": _meta(_set(["encoders", "income", "integer"], "no")),
    "point masses unsorted": _meta(_set(["encoders", "income", "point_masses"], [5.0, 0.0])),
    "point masses str": _meta(_set(["encoders", "income", "point_masses"], ["0"])),
    "too many segments": lambda d: _meta(lambda m: m["encoders"]["income"].__setitem__(
        "segments", m["encoders"]["income"]["segments"] * 3))(d),
    "segment std negative": lambda d: _meta(lambda m: m["encoders"]["income"]["segments"][0].__setitem__(
        "std", -1.0))(d),
    "segment std str": lambda d: _meta(lambda m: m["encoders"]["income"]["segments"][0].__setitem__(
        "std", "1"))(d),
    "segment mean nan": lambda d: _replace(d, "metadata.json", lambda b: json.dumps(
        _with(json.loads(b), ["encoders", "income", "segments", 0, "mean"], float("nan"))).encode()),
    "segment transform unknown": lambda d: _meta(lambda m: m["encoders"]["income"]["segments"][0].__setitem__(
        "transform", "exec"))(d),
    "segment sign": lambda d: _meta(lambda m: m["encoders"]["income"]["segments"][0].__setitem__("sign", 2))(d),
    "segment missing field": lambda d: _meta(lambda m: m["encoders"]["income"]["segments"][0].pop("scale"))(d),
    "categories with object": _meta(_set(["encoders", "tenure", "categories"], ["own", {"a": 1}, "free"])),
    "categories duplicated": _meta(_set(["encoders", "tenure", "categories"], ["own", "own", "free"])),
    "categories empty": _meta(_set(["encoders", "tenure", "categories"], [])),
    "condition stats short": _meta(_set(["condition_encoder", "stats", "age"], [1.0])),
    "condition std zero": _meta(_set(["condition_encoder", "stats", "age"], [40.0, 0.0])),
    "condition categories not list": _meta(_set(["condition_encoder", "stats", "region"], "ns")),
    "condition kinds reordered": lambda d: _meta(lambda m: m["condition_encoder"].__setitem__(
        "kinds", dict(reversed(list(m["condition_encoder"]["kinds"].items())))))(d),
    # the pattern table
    "patterns empty": _meta(_set(["patterns"], [])),
    "patterns wrong width": lambda d: _meta(lambda m: m.__setitem__("patterns", [r + [0] for r in m["patterns"]]))(d),
    "patterns state out of range": lambda d: _meta(lambda m: m["patterns"][0].__setitem__(0, 99))(d),
    "patterns negative state": lambda d: _meta(lambda m: m["patterns"][0].__setitem__(0, -1))(d),
    "patterns duplicated": lambda d: _meta(lambda m: m.__setitem__("patterns", m["patterns"] + m["patterns"][:1]))(d),
    "patterns float": lambda d: _meta(lambda m: m["patterns"][0].__setitem__(0, 0.5))(d),
    "patterns not list": _meta(_set(["patterns"], "[[0]]")),
    "history unequal": lambda d: _meta(lambda m: m["history"]["epoch"].append(2))(d),
    "history str": _meta(_set(["history", "train_loss"], ["x"])),
    # tensors
    "weights garbage": lambda d: _replace(d, "weights.safetensors", lambda b: b"garbage"),
    "weights huge header": lambda d: _replace(d, "weights.safetensors", lambda b: struct.pack("<Q", 2**60) + b[8:]),
    "tensor missing": _tensors(lambda t: t.pop(_first_weight(t))),
    "tensor extra": _tensors(lambda t: t.__setitem__("evil", torch.zeros(3))),
    "tensor wrong shape": _tensors(lambda t: t.__setitem__(_first_weight(t), torch.zeros(1000, 3))),
    "tensor wrong dtype": _tensors(lambda t: t.__setitem__(_first_weight(t), t[_first_weight(t)].double())),
    "tensor nan": _tensors(lambda t: t.__setitem__(_first_weight(t), torch.full_like(t[_first_weight(t)], float("nan")))),
    "pattern buffer changed": _tensors(lambda t: t.__setitem__("patterns", torch.zeros_like(t["patterns"]))),
    # the conditions table
    "conditions garbage": lambda d: _replace(d, "conditions.parquet", lambda b: b"PAR1 garbage"),
    "conditions missing column": _table(lambda df: df.drop(columns="age")),
    "conditions extra column": _table(lambda df: df.assign(extra=1.0)),
    "conditions no weight": _table(lambda df: df.drop(columns="__weight__")),
    "conditions negative weight": _table(lambda df: df.assign(__weight__=-1.0)),
    "conditions weight str": _table(lambda df: df.assign(__weight__="1")),
    "conditions empty": _table(lambda df: df.iloc[:0]),
    "conditions unknown category": _table(lambda df: df.assign(region="east")),
    "conditions numeric as str": _table(lambda df: df.assign(age=df["age"].astype(str))),
    "conditions nan": _table(lambda df: df.assign(age=np.nan)),
    "conditions non-string names": _table(lambda df: df.rename(columns={"age": "0"}).set_axis(
        ["0", "region", "__weight__"], axis=1)),
    # a model that keeps its conditions' ranges only (a HouseholdSynthesizer's inner model) has no table
    "condition ranges beside the conditions table": _meta(lambda m: m.update(condition_ranges={"age": [18, 79]})),
    "condition ranges without the table, of another column": lambda d: _zip(
        [(n, b) for n, b in _members(_meta(lambda m: m.update(condition_ranges={"evil": [0, 1]}))(d))
         if n != "conditions.parquet"]),
    "condition ranges without the table, reversed": lambda d: _zip(
        [(n, b) for n, b in _members(_meta(lambda m: m.update(condition_ranges={"age": [79, 18]}))(d))
         if n != "conditions.parquet"]),
}


def _with(meta, path, value):
    d = meta
    for k in path[:-1]:
        d = d[k]
    d[path[-1]] = value
    return meta


def test_untampered_copy_loads(model_bytes, tmp_path):
    path = tmp_path / "copy.mpx"
    path.write_bytes(_zip(_members(model_bytes)))
    model = Synthesizer.load(path)
    out = model.generate(pd.DataFrame({"age": [30, 60], "region": ["n", "s"]}), seed=0)
    assert list(out.columns) == ["age", "region", "income", "tenure"]


@pytest.mark.parametrize("case", sorted(TAMPERINGS))
def test_tampered_model_file_is_refused_and_nothing_is_written(model_bytes, tmp_path, case):
    path = tmp_path / "tampered.mpx"
    path.write_bytes(TAMPERINGS[case](model_bytes))
    with pytest.raises(DataValidationError) as info:
        Synthesizer.load(path)
    assert "tampered.mpx" in str(info.value)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["tampered.mpx"]


@pytest.mark.parametrize("path", [3, None, b"m.mpx"])
def test_load_path_must_be_a_path(path):
    with pytest.raises(DataValidationError, match="'path' parameter must be a str, a path or a binary file object"):
        Synthesizer.load(path)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(DataValidationError, match="nope.mpx"):
        Synthesizer.load(tmp_path / "nope.mpx")
