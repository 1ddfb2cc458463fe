"""Reading files, one concept in one place.

The targets reader's "cells as written" CSV read is :func:`microplex._files.csv_text` (every column); a dataset
folder is listed once by ``rake_dataset`` and each file's Parquet schema read once by ``check_same_schema``.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest

from microplex import Targets
from microplex._errors import DataValidationError
from microplex._files import csv_text
from microplex.scale import _layout, sources
from microplex.scale.calibrate import rake_dataset


def test_targets_read_with_an_index_column_and_usecols_keep_codes_and_none_labels(tmp_path):
    # the targets reader's second read of the cells (csv_text with every column) takes the caller's options
    p = tmp_path / "t.csv"
    p.write_text("id,value,county,educ,note\n7,100,013,None,x\n8,200,105,HS,y\n")
    t = Targets.from_csv(p, index_col="id", usecols=["id", "value", "county", "educ"])
    assert [(dict(r.filters), r.value) for r in t] == [({"county": "013", "educ": "None"}, 100.0),
                                                       ({"county": "105", "educ": "HS"}, 200.0)]
    raw = csv_text(p, None, {"index_col": "id", "usecols": ["id", "county", "educ"]})
    assert raw.index.tolist() == ["7", "8"] and raw.to_dict("list") == {"county": ["013", "105"],
                                                                        "educ": ["None", "HS"]}


def _dataset(root):
    for g in (1, 2, 3):
        part = root / f"g={g}"
        part.mkdir(parents=True)
        pd.DataFrame({"a": np.arange(10) % 2, "w": 1.0}).to_parquet(part / "part-0.parquet")


def test_rake_dataset_lists_the_folder_once_and_reads_each_schema_once(tmp_path, monkeypatch):
    _dataset(tmp_path / "d")
    listed, read = [], Counter()
    data_files, read_schema = _layout.data_files, sources._read_schema
    monkeypatch.setattr(_layout, "data_files", lambda *a, **k: listed.append(a[0]) or data_files(*a, **k))
    monkeypatch.setattr(sources, "_read_schema", lambda f, *a: read.update([f]) or read_schema(f, *a))
    res = rake_dataset(tmp_path / "d", {"a": {0: 60, 1: 40}}, "w")
    assert len(listed) == 1, listed
    assert sorted(read.values()) == [1, 1, 1], read
    frame = pd.read_parquet(tmp_path / "d" / "g=2" / "part-0.parquet")
    np.testing.assert_allclose(res.weights(frame), np.where(frame["a"] == 0, 4.0, 8.0 / 3.0), rtol=1e-9)


def test_read_table_checks_the_files_the_dataset_reads(tmp_path):
    # one listing (scale._layout.dataset_parts): a file under a folder named '_old' is no part of the dataset
    # (pyarrow skips it), so its pandas metadata is not checked (before: its damaged metadata refused the folder)
    import pyarrow as pa
    import pyarrow.parquet as pq

    from microplex.io import read_table

    _dataset(tmp_path / "d")
    (tmp_path / "d" / "_old").mkdir()
    old = pa.table({"a": [9], "w": [9.0]}).replace_schema_metadata({b"pandas": b"{not json"})
    pq.write_table(old, tmp_path / "d" / "_old" / "p.parquet")
    got = read_table(tmp_path / "d")
    assert len(got) == 30 and sorted(got["a"].unique().tolist()) == [0, 1]
    pq.write_table(old, tmp_path / "d" / "g=1" / "part-1.parquet")  # in the dataset: refused, naming the file
    with pytest.raises(DataValidationError, match=r"part-1\.parquet"):
        read_table(tmp_path / "d")
