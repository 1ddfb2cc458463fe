"""Raw errors from files and fits: a RangeIndex with a name in a Parquet file's pandas metadata (rake_dataset),
damaged pandas metadata (arrow_frame, read_table, rake_dataset), a household size column (a second one, a
copy of the size: tests/test_s78_size_copies.py)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from microplex._errors import DataValidationError
from microplex.io import arrow_frame, read_table
from microplex.scale import rake_dataset


def _records(n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"g": np.arange(n) % 3, "w": rng.uniform(0.5, 2.0, n)})


# -- 1. a RangeIndex with a name, stored as metadata only ------------------------------------------------------------

def test_rake_dataset_reads_a_file_whose_named_range_index_is_metadata_only(tmp_path):
    frame = _records()
    path = tmp_path / "x.parquet"
    frame.rename_axis("id").to_parquet(path)  # pandas stores the RangeIndex "id" as start/stop/step only
    assert pq.read_schema(path).names == ["g", "w"]
    targets = {0: 20.0, 1: 25.0, 2: 30.0}
    result = rake_dataset(path, {"g": targets}, "w")
    assert result.converged
    weights = result.weights(read_table(path))  # read_table gives "id" as a column: the weights ignore it
    for g, target in targets.items():
        assert weights[frame["g"].to_numpy() == g].sum() == pytest.approx(target, rel=1e-10)
    # the same file without the index name: the same weights
    plain = tmp_path / "plain.parquet"
    frame.to_parquet(plain)
    same = rake_dataset(plain, {"g": targets}, "w").weights(frame)
    np.testing.assert_allclose(weights, same, rtol=1e-12)


def test_rake_dataset_refuses_a_metadata_only_range_index_as_a_margin(tmp_path):
    path = tmp_path / "x.parquet"
    _records().rename_axis("id").to_parquet(path)
    with pytest.raises(DataValidationError, match=r"x\.parquet.*pandas index \['id'\] as metadata only.*reset_index"):
        rake_dataset(path, {"id": {0: 1.0}}, "w")


def test_rake_dataset_reads_a_folder_with_one_file_of_a_named_range_index(tmp_path):
    folder = tmp_path / "pop"
    folder.mkdir()
    frame = _records()
    frame.iloc[:20].to_parquet(folder / "a.parquet")
    frame.iloc[20:].reset_index(drop=True).rename_axis("row").to_parquet(folder / "b.parquet")
    result = rake_dataset(folder, {"g": {0: 10.0, 1: 11.0, 2: 12.0}}, "w")
    weights = result.weights(frame)
    assert [weights[frame["g"].to_numpy() == g].sum() for g in range(3)] == pytest.approx([10.0, 11.0, 12.0],
                                                                                          rel=1e-10)


# -- 2. damaged pandas metadata ---------------------------------------------------------------------------------------

def _damaged(tmp_path, raw: bytes):
    table = pa.Table.from_pandas(_records())
    path = tmp_path / "damaged.parquet"
    pq.write_table(table.replace_schema_metadata({b"pandas": raw}), path)
    return path


def _good_meta() -> dict:
    return json.loads(pa.Table.from_pandas(_records()).schema.metadata[b"pandas"])


_DAMAGED = {
    "not json": b"{not json",
    "a list": b"[1, 2]",
    "no columns": json.dumps({k: v for k, v in _good_meta().items() if k != "columns"}).encode(),
    "no index_columns": json.dumps({k: v for k, v in _good_meta().items() if k != "index_columns"}).encode(),
    "columns no list": json.dumps({**_good_meta(), "columns": 5}).encode(),
    "range without name": json.dumps({**_good_meta(), "index_columns": [{"kind": "range"}]}).encode(),
    "unlisted index column": json.dumps({**_good_meta(), "index_columns": ["nosuch"]}).encode(),
}


@pytest.mark.parametrize("case", sorted(_DAMAGED))
def test_damaged_pandas_metadata_is_refused_naming_the_file(tmp_path, case):
    path = _damaged(tmp_path, _DAMAGED[case])
    expected = r"damaged\.parquet' stores damaged pandas metadata \(the b'pandas' key"
    with pytest.raises(DataValidationError, match=r"The file 'x' stores damaged pandas metadata"):
        arrow_frame(pq.read_table(path), "the file 'x'")
    with pytest.raises(DataValidationError, match=expected):
        read_table(path)
    with pytest.raises(DataValidationError, match=expected):
        rake_dataset(path, {"g": {0: 1.0, 1: 1.0, 2: 1.0}}, "w")


def test_sound_pandas_metadata_reads_as_before(tmp_path):
    frame = _records().assign(pid=np.arange(40) + 100)
    path = tmp_path / "ok.parquet"
    frame.set_index("pid").to_parquet(path)  # a stored index column
    got = arrow_frame(pq.read_table(path), "the file 'ok'")
    assert sorted(got.columns) == ["g", "pid", "w"]
    assert got["pid"].tolist() == list(range(100, 140))
    pd.testing.assert_frame_equal(read_table(path)[["g", "w", "pid"]], frame[["g", "w", "pid"]])


# -- 3. a household column equal to the person count -------------------------------------------------------------

@pytest.fixture(scope="module")
def eusilc_small():
    from microplex.datasets import load_dataset

    data = load_dataset("eusilc")
    return data[data["db030"] <= 300].reset_index(drop=True)


def test_one_column_equal_to_the_person_count_is_the_size(eusilc_small):
    from microplex import HouseholdSynthesizer

    hs = HouseholdSynthesizer(["db040", "hsize", "hy040n"], ["age", "rb090"], "db030", household_weight="db090",
                              epochs=1, hidden_features=(8,), transforms=1).fit(eusilc_small, seed=0)
    households, persons = hs.sample(200, seed=1)
    counts = persons.groupby("db030").size().reindex(households["db030"]).to_numpy()
    assert hs.size_col_ == "hsize" and (households["hsize"].to_numpy() == counts).all()
