import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from microplex import DataValidationError
from microplex.scale import CellCounts, FrameSource, ParquetSource, Resample


def _ranges(n):
    return [(0, n), (0, 1), (3, 17), (n - 5, n), (7, 7)]


def test_cell_counts_expand_any_range():
    cells = pd.DataFrame({"state": ["CA", "NY", "TX", "WA"], "sex": [1, 2, 1, 2], "count": [5, 0, 12, 3]})
    full = cells.loc[cells.index.repeat(cells["count"]), ["state", "sex"]].reset_index(drop=True)
    src = CellCounts(cells)
    assert src.n_rows == 20 and src.columns == ["state", "sex"]
    for a, b in _ranges(20):
        pd.testing.assert_frame_equal(src.read(a, b), full.iloc[a:b].reset_index(drop=True))


def test_cell_counts_rejects_bad_counts():
    with pytest.raises(DataValidationError, match="'count' must hold non-negative integers"):
        CellCounts(pd.DataFrame({"state": ["CA"], "count": [-1]}))
    with pytest.raises(DataValidationError, match="with a 'n' column"):
        CellCounts(pd.DataFrame({"state": ["CA"]}), count_col="n")


def test_parquet_source_reads_across_row_groups_and_files(tmp_path):
    df = pd.DataFrame({"age": np.arange(50), "state": np.repeat(["a", "b"], 25)})
    (tmp_path / "d").mkdir()
    pq.write_table(pa.Table.from_pandas(df.iloc[:30]), tmp_path / "d" / "0.parquet", row_group_size=7)
    pq.write_table(pa.Table.from_pandas(df.iloc[30:].reset_index(drop=True)), tmp_path / "d" / "1.parquet", row_group_size=6)
    (tmp_path / "d" / "_ignored.parquet").write_bytes(b"junk")
    src = ParquetSource(tmp_path / "d")
    assert src.n_rows == 50 and src.columns == ["age", "state"]
    for a, b in _ranges(50) + [(5, 40), (28, 31)]:
        pd.testing.assert_frame_equal(src.read(a, b), df.iloc[a:b].reset_index(drop=True), check_dtype=False)
    with pytest.raises(DataValidationError, match="out of range"):
        src.read(40, 51)
    with pytest.raises(DataValidationError, match="does not exist"):
        ParquetSource(tmp_path / "nope")


def test_resample_is_random_access_and_weighted():
    frame = pd.DataFrame({"x": np.arange(4)})
    src = Resample(frame, weights=[1, 0, 0, 3], seed=5, block_rows=64)
    whole = src.read(0, 1000)
    for a, b in [(0, 64), (10, 300), (999, 1000)]:
        pd.testing.assert_frame_equal(src.read(a, b), whole.iloc[a:b].reset_index(drop=True))
    assert set(whole["x"]) == {0, 3}
    assert 0.70 < (whole["x"] == 3).mean() < 0.80
    assert not whole.equals(Resample(frame, weights=[1, 0, 0, 3], seed=6, block_rows=64).read(0, 1000))


def test_frame_source_round_trip():
    df = pd.DataFrame({"a": [1, 2, 3]}, index=[10, 11, 12])
    assert FrameSource(df).read(1, 3)["a"].tolist() == [2, 3]
    assert FrameSource(df).fingerprint() == FrameSource(df.reset_index(drop=True)).fingerprint()
