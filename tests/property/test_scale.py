"""Property: generate_dataset on generated condition frames, partition names and values gives a
correct dataset or a MicroplexError, leaves the caller's frame unchanged and writes nothing
outside its output folder."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.dataset as pads
import pytest
from hypothesis import given
from hypothesis import strategies as st

from microplex import Synthesizer
from microplex.scale import generate_dataset
from microplex.scale import dataset_schema
from microplex.scale._layout import layout

from ._invariants import assert_unchanged, nothing_written_outside, result_or_microplex_error, snapshot


@pytest.fixture(scope="session")
def tiny_model():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.normal(size=200), "y": rng.normal(size=200)})
    return Synthesizer(["y"], ["a"], epochs=1, verbose=False).fit(df, seed=0)


# names that are paths, hidden, reserved, empty, odd characters, and plain ones
NAMES = st.one_of(
    st.sampled_from(["g", "region", "<ABS>", "<ABS>", "../up", "../up", "a/b", "a\\b", "x=y", "", "nul\x00", ".hid",
                     "_meta", "__weight__", "all", "caf\u00e9", "a" * 300, "y", "a"]),
    st.text(min_size=0, max_size=8),
)

ODD_TEXT = st.sampled_from(["../../evil", "/abs", "a\\b", "x=y", ".", "..", "", "%2F", "\x00", "caf\u00e9", "__HIVE_DEFAULT_PARTITION__", "a" * 300])


def _column(kind: str, n: int, draw) -> pd.Series:
    if kind == "int":
        return pd.Series(draw(st.lists(st.integers(-3, 3), min_size=n, max_size=n)), dtype="int64")
    if kind == "float":
        vals = st.one_of(st.floats(-5, 5), st.sampled_from([np.nan, np.inf, -np.inf, 1e300, -0.0]))
        return pd.Series(draw(st.lists(vals, min_size=n, max_size=n)), dtype="float64")
    if kind == "bool":
        return pd.Series(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    if kind == "text":
        vals = st.one_of(ODD_TEXT, st.text(max_size=4), st.none())
        return pd.Series(draw(st.lists(vals, min_size=n, max_size=n)), dtype=object)
    if kind == "mixed":
        vals = st.one_of(st.integers(0, 2), st.text(max_size=2), st.none())
        return pd.Series(draw(st.lists(vals, min_size=n, max_size=n)), dtype=object)
    if kind == "datetime":
        return pd.Series(pd.to_datetime(draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)), unit="D"))
    if kind == "category":
        return pd.Series(draw(st.lists(st.sampled_from(["a", "b/c", ".."]), min_size=n, max_size=n)), dtype="category")
    return pd.Series(draw(st.lists(st.one_of(st.integers(0, 2), st.none()), min_size=n, max_size=n)), dtype="Int64")


@st.composite
def cases(draw):
    n = draw(st.integers(0, 12))
    a_values = st.one_of(st.floats(-3, 3), st.sampled_from([np.nan, np.inf, 1e300]))
    clean = draw(st.sampled_from([True, True, True, False]))
    a = draw(st.lists(st.floats(-3, 3) if clean else a_values, min_size=n, max_size=n))
    frame = pd.DataFrame({"a": pd.Series(a, dtype="float64")})
    names = draw(st.lists(NAMES, max_size=3))
    for name in names:
        kind = draw(st.sampled_from(["int", "float", "bool", "text", "mixed", "datetime", "category", "Int64"]))
        col = _column(kind, n, draw)
        if name in frame.columns:
            frame = pd.concat([frame, col.rename(name)], axis=1)  # a duplicated name
        else:
            frame[name] = col.to_numpy() if kind not in ("category", "Int64", "datetime") else col.array
    if draw(st.booleans()) and len(frame.columns) > 1:
        frame = frame.rename(columns={frame.columns[-1]: draw(st.sampled_from([0, 1.5, None]))})
    pool = [c for c in frame.columns if c != "a"] * 3 + ["a", "y", "missing"]
    partition_by = draw(st.one_of(st.lists(st.sampled_from(pool), min_size=1, max_size=2), st.none()))
    rows_per_file = draw(st.one_of(st.integers(1, 8), st.sampled_from([0, 2.5, 10**9])))
    use_n = draw(st.sampled_from([None, None, None, n, max(n - 1, 0), 1e1, -1]))
    return frame, partition_by, rows_per_file, use_n


def _sandbox(tmp: str, frame: pd.DataFrame, names: list[str] | None):
    """(watched folder, output folder two levels below it, frame, partition names), with the
    placeholder name ``<ABS>`` replaced by an absolute path into the watched folder, so that an
    escape is seen."""
    watched = Path(tmp)
    sandbox = watched / "a" / "b"
    sandbox.mkdir(parents=True)
    absolute = str(watched / "abs")
    frame = frame.rename(columns=lambda c: absolute if c == "<ABS>" else c)
    names = None if names is None else [absolute if c == "<ABS>" else c for c in names]
    return watched, sandbox / "out", frame, names


@given(case=cases())
def test_generate_dataset_is_right_or_raises_and_stays_inside(tiny_model, case):
    frame, partition_by, rows_per_file, n = case
    with tempfile.TemporaryDirectory() as tmp:
        watched, out, frame, partition_by = _sandbox(tmp, frame, partition_by)
        before = snapshot(frame)
        with nothing_written_outside(watched, out, layout(out).meta):
            manifest, error = result_or_microplex_error(
                lambda: generate_dataset(tiny_model, frame, n=n, path=out, partition_by=partition_by,
                                         rows_per_file=rows_per_file, seed=1, progress=False)
            )
        assert_unchanged(before, frame)
        if error is not None:
            return
        expected = len(frame) if n is None else n
        assert manifest["rows"] == expected == sum(f["rows"] for f in manifest["files"])
        stored = json.loads(layout(out).manifest.read_text())
        assert stored["status"] == "complete" and stored["rows"] == expected
        assert not (layout(out).meta / "_microplex.lock").exists()
        real_out = out.resolve()
        for entry in manifest["files"]:
            assert real_out in (out / entry["path"]).resolve().parents
        if expected:
            back = pads.dataset(out, format="parquet", partitioning="hive").to_table().to_pandas()
            assert len(back) == expected
            assert set(back.columns) == set(map(str, frame.columns)) | {"y"}


PATHLIKE = st.sampled_from(["<ABS>", "../up", "..", ".", "a/../../b", "x=y", "a\\b", "", "nul\x00", ".hid", "_meta",
                            "caf\u00e9", "plain", "a" * 200])


@st.composite
def partition_cases(draw):
    n = draw(st.integers(1, 10))
    frame = pd.DataFrame({"a": np.linspace(-1, 1, n)})
    names = draw(st.lists(PATHLIKE, min_size=1, max_size=2, unique=True))
    values = st.one_of(ODD_TEXT, st.integers(-2, 2).map(str), st.none())
    for name in names:
        frame[name] = pd.Series(draw(st.lists(values, min_size=n, max_size=n)), dtype=object)
    return frame, names, draw(st.integers(1, 6))


@given(case=partition_cases())
def test_partition_names_and_values_never_write_outside(tiny_model, case):
    frame, names, rows_per_file = case
    with tempfile.TemporaryDirectory() as tmp:
        watched, out, frame, names = _sandbox(tmp, frame, names)
        before = snapshot(frame)
        with nothing_written_outside(watched, out, layout(out).meta):
            manifest, error = result_or_microplex_error(
                lambda: generate_dataset(tiny_model, frame, path=out, partition_by=names,
                                         rows_per_file=rows_per_file, seed=0, progress=False)
            )
        assert_unchanged(before, frame)
        if error is not None:
            return
        # pyarrow.dataset, not pd.read_parquet: pyarrow's readers with dictionary partition keys cannot
        # read a string partition holding missing values ("Cannot yet unify dictionaries with nulls"),
        # the same for datasets pyarrow writes itself
        # read with the written schema: inferred from the folder names alone, a text partition of digits
        # and missing values comes back as numbers ("0" as 0.0)
        back = pads.dataset(out, format="parquet", partitioning="hive", schema=dataset_schema(out)).to_table().to_pandas()
        assert len(back) == len(frame) == manifest["rows"]
        for name in names:  # every value comes back (as text), missing ones as missing
            got = sorted(back[name].astype(object).where(back[name].notna(), None).map(str))
            want = sorted(frame[name].where(frame[name].notna(), None).map(str))
            assert got == want
