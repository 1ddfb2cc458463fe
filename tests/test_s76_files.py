"""Reading files, one concept in one place; sparsify of a file with a list or struct column.

The targets reader's "cells as written" CSV read is :func:`microplex._files.csv_text` (every column); a dataset
folder is listed once by ``rake_dataset`` and each file's Parquet schema read once by ``check_same_schema``. Before
its fix, ``microplex sparsify`` refused a file with a list or struct column: its automatic auxiliary margins
rejected the column, and the command line cannot name the auxiliaries.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from microplex import Targets
from microplex._errors import DataValidationError
from microplex._files import csv_text
from microplex.cli import app
from microplex.scale import _layout, sources
from microplex.scale.calibrate import rake_dataset

runner = CliRunner()


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


def _nested(tmp_path, n=120):
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"pid": np.arange(n), "a": rng.integers(0, 2, n), "b": rng.choice(["x", "y", "z"], n),
                       "age": rng.integers(18, 90, n), "weight": rng.uniform(1.0, 3.0, n),
                       "tags": [[int(i), int(i) % 7] for i in range(n)],
                       "place": [{"q": int(i), "r": "s"} for i in range(n)]})
    df.to_parquet(tmp_path / "nested.parquet")
    # the same records with the two columns as their text: every value distinct, an identifier, no auxiliary;
    # records are ordered by a hash of their values, the lists' by their text, so the same subset is drawn
    back = pd.read_parquet(tmp_path / "nested.parquet")
    back.assign(tags=back["tags"].astype(str), place=back["place"].astype(str)).to_parquet(tmp_path / "text.parquet")
    total = float(df["weight"].sum())
    (tmp_path / "t.csv").write_text(f"value,a\n{0.6 * total},1\n{0.4 * total},0\n")
    return df


@pytest.mark.parametrize("extra", [[], ["--max-records", "20"]])
def test_sparsify_carries_a_list_and_a_struct_column_through(tmp_path, extra):
    # before: "Column 'tags' holds unhashable values (lists, dicts, ...), which cannot be crossed with the area",
    # status 1; the command line cannot name the auxiliaries to leave it out
    df = _nested(tmp_path)
    out = {}
    for name in ("text", "nested"):
        r = runner.invoke(app, ["sparsify", str(tmp_path / f"{name}.parquet"), "--targets", str(tmp_path / "t.csv"),
                                "-o", str(tmp_path / f"o_{name}.parquet"), "-q", *extra])
        assert r.exit_code == 0, r.output
        out[name] = pd.read_parquet(tmp_path / f"o_{name}.parquet")
    text, nested = out["text"], out["nested"]
    assert list(nested.columns) == list(df.columns)
    assert 0 < len(nested) < len(df)
    # the subset and weights of the records whose lists are no auxiliary margin
    pd.testing.assert_frame_equal(nested.drop(columns=["tags", "place"]), text.drop(columns=["tags", "place"]))
    for _, rec in nested.iterrows():  # each kept record's list and struct as written
        assert rec["tags"].tolist() == [rec["pid"], rec["pid"] % 7]
        assert rec["place"] == {"q": rec["pid"], "r": "s"}
    total = float(df["weight"].sum())
    np.testing.assert_allclose(nested.groupby("a")["weight"].sum().to_numpy(), [0.4 * total, 0.6 * total],
                               rtol=0.006)
