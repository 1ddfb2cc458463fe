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
from microplex.scale import ParquetSource, generate_dataset
from microplex.scale.sources import ConditionSource


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
