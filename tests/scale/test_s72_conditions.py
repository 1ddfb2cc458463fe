"""Session 72 (conditions): streamed conditions give the rows an in-memory ``generate`` gives.

- Parquet conditions whose pandas index has several unnamed levels (``__index_level_0__``,
  ``__index_level_1__``: a frame after ``groupby`` or ``concat(keys=...)``) made ``generate_dataset`` count the
  second level as a condition column; the part it wrote lacked it, the run failed blaming a "damaged" file and
  left a running dataset that every repeat failed on the same way.
- ``generate_dataset(synth, conditions=frame)`` dropped the frame's named index (person ids) without a word,
  while the same frame as Parquet kept it as a column.
- A hive-partitioned conditions folder whose partition key is a condition: the refusal now says the column lives
  in the folder names only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from microplex import DataValidationError, Synthesizer
from microplex.io import read_table, record_columns
from microplex.scale import FrameSource, ParquetSource, generate_dataset
from microplex.scale.sources import CellCounts, ConditionSource, Resample


@pytest.fixture(scope="module")
def toy():
    """y = 3x + 5 [g = a] + noise, a model fitted in a few epochs."""
    rng = np.random.default_rng(0)
    n = 1000
    df = pd.DataFrame({"x": rng.normal(size=n), "g": rng.choice(["a", "b"], n)})
    df["y"] = 3 * df.x + (df.g == "a") * 5 + rng.normal(size=n)
    return df, Synthesizer(["y"], ["x", "g"], epochs=2, verbose=False).fit(df, seed=0)


def _two_level(df: pd.DataFrame) -> pd.DataFrame:
    cond = df[["x", "g"]].iloc[:50].copy()
    cond.index = pd.MultiIndex.from_arrays([np.arange(50) % 5, np.arange(50)])  # no names
    return cond


def test_record_columns_drop_every_unnamed_index_level():
    assert record_columns(["x", "__index_level_0__", "g", "__index_level_1__", "__index_level_12__"]) == ["x", "g"]
    assert record_columns(["pid", "__index_level_x__", "index_level_1"]) == ["pid", "__index_level_x__",
                                                                              "index_level_1"]


def test_streamed_conditions_with_an_unnamed_multi_level_index_generate_as_in_memory(toy, tmp_path):
    df, synth = toy
    cond = _two_level(df)
    cond.to_parquet(tmp_path / "cond.parquet")
    assert {"__index_level_0__", "__index_level_1__"} <= set(pq.read_schema(tmp_path / "cond.parquet").names)
    assert ParquetSource(tmp_path / "cond.parquet").columns == ["x", "g"]
    manifest = generate_dataset(synth, conditions=tmp_path / "cond.parquet", path=tmp_path / "pop", seed=0,
                                progress=False)
    assert manifest["status"] == "complete" and manifest["rows"] == 50
    assert manifest["spec"]["columns"] == ["x", "g", "y"]
    got = read_table(tmp_path / "pop")
    assert list(got.columns) == ["x", "g", "y"]
    pd.testing.assert_frame_equal(got[["x", "g"]], cond.reset_index(drop=True))
    # the same rows as the same conditions in memory (one block: the block seed of block 0)
    frame = generate_dataset(synth, conditions=cond.reset_index(drop=True), path=tmp_path / "mem", seed=0,
                             progress=False)
    assert frame["rows"] == 50
    pd.testing.assert_frame_equal(got, read_table(tmp_path / "mem"))


class _LyingSource(ConditionSource):
    """A source whose ``columns`` names a column its rows lack (as the multi-level index did)."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame, self.columns, self.n_rows = frame, [*frame.columns, "ghost"], len(frame)

    def read(self, start: int, stop: int) -> pd.DataFrame:
        return self.frame.iloc[start:stop].reset_index(drop=True)

    def fingerprint(self) -> str:
        return "lying"


def test_a_block_without_the_runs_columns_is_refused_before_anything_is_written(toy, tmp_path):
    df, synth = toy
    with pytest.raises(DataValidationError, match=r"columns \['x', 'g', 'y'\].*expected.*'ghost'"):
        generate_dataset(synth, conditions=_LyingSource(df[["x", "g"]].iloc[:40]), path=tmp_path / "pop", seed=0,
                         progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no part, no running manifest left


def _people(df: pd.DataFrame) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return df[["x", "g"]].iloc[:40].assign(pid=np.sort(rng.choice(10**6, 40, replace=False))).set_index("pid")


def test_a_named_index_of_frame_conditions_is_a_column_as_in_parquet(toy, tmp_path):
    df, synth = toy
    people = _people(df)
    generate_dataset(synth, conditions=people, path=tmp_path / "frame", seed=0, progress=False)
    people.to_parquet(tmp_path / "people.parquet")
    generate_dataset(synth, conditions=tmp_path / "people.parquet", path=tmp_path / "file", seed=0, progress=False)
    got = read_table(tmp_path / "frame")
    assert list(got.columns) == ["x", "g", "pid", "y"]
    assert got["pid"].tolist() == people.index.tolist()
    pd.testing.assert_frame_equal(got, read_table(tmp_path / "file"))
    # the draws are those of the same conditions without the ids
    generate_dataset(synth, conditions=people.reset_index(drop=True), path=tmp_path / "plain", seed=0,
                     progress=False)
    pd.testing.assert_frame_equal(got.drop(columns="pid"), read_table(tmp_path / "plain"))


def test_a_multi_level_index_keeps_its_named_levels_and_drops_the_unnamed(toy, tmp_path):
    df, synth = toy
    people = _people(df)
    hh = people.assign(hid=np.arange(40) // 3).set_index("hid", append=True)
    generate_dataset(synth, conditions=hh, path=tmp_path / "hh", seed=0, progress=False)
    got = read_table(tmp_path / "hh")
    assert list(got.columns) == ["x", "g", "pid", "hid", "y"]
    assert got["hid"].tolist() == (np.arange(40) // 3).tolist()
    mixed = hh.copy()
    mixed.index = mixed.index.set_names([None, "hid"])  # row numbers and a household id
    assert FrameSource(mixed).columns == ["x", "g", "hid"]
    unnamed = people.rename_axis(None)  # ids without a name: row labels, dropped as before
    assert FrameSource(unnamed).columns == ["x", "g"]
    assert FrameSource(unnamed).read(0, 3).index.equals(pd.RangeIndex(3))


def test_cell_counts_and_resample_keep_a_named_index_as_a_column():
    cells = pd.DataFrame({"g": ["a", "b"], "x": [0.5, -1.0], "persons": [2, 3]}).set_index("g")
    src = CellCounts(cells, count_col="persons")
    assert src.columns == ["x", "g"]
    assert src.read(0, 5)["g"].tolist() == ["a", "a", "b", "b", "b"]
    counted = pd.DataFrame({"g": ["a", "b", "b"], "x": [1.0, 2.0, 2.0]}).groupby(["g", "x"]).size().to_frame("count")
    assert CellCounts(counted).read(0, 3).to_dict("list") == {"g": ["a", "b", "b"], "x": [1.0, 2.0, 2.0]}
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0]}, index=pd.Index([17, 4, 9], name="pid"))
    drawn = Resample(frame, weights=[0, 0, 1], seed=3).read(0, 4)
    assert drawn.to_dict("list") == {"x": [3.0] * 4, "pid": [9] * 4}


def test_an_index_named_as_a_column_of_frame_conditions_is_refused(toy, tmp_path):
    df, synth = toy
    clash = df[["x", "g"]].iloc[:10].set_index(df["x"].iloc[:10].rename("x"))
    with pytest.raises(DataValidationError, match=r"The 'conditions' frame stores a pandas index named \['x'\] beside"):
        generate_dataset(synth, conditions=clash, path=tmp_path / "pop", seed=0, progress=False)
    assert not (tmp_path / "pop").exists()


def test_a_condition_only_in_the_folder_names_of_hive_conditions_is_named_as_a_partition_key(toy, tmp_path):
    df, synth = toy
    df[["x", "g"]].iloc[:50].to_parquet(tmp_path / "hive", partition_cols=["g"], index=False)
    assert ParquetSource(tmp_path / "hive").partition_keys == ["g"]
    with pytest.raises(DataValidationError, match=r"lacks the model's condition columns \['g'\]; it has \['x'\]\. "
                       r"\['g'\] are partition keys of '.*hive', in its folder names \(g=\.\.\.\): streamed Parquet "
                       r"conditions read only the columns the files store"):
        generate_dataset(synth, conditions=tmp_path / "hive", path=tmp_path / "pop", seed=0, progress=False)
    df[["x"]].iloc[:50].to_parquet(tmp_path / "plain.parquet", index=False)
    with pytest.raises(DataValidationError, match=r"condition columns \['g'\]; it has \['x'\]\.$"):
        generate_dataset(synth, conditions=tmp_path / "plain.parquet", path=tmp_path / "pop", seed=0, progress=False)
    assert not (tmp_path / "pop").exists()
