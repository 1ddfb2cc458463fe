"""Session 72 (conditions, command line): ``microplex generate --conditions FILE.csv`` reads a condition column
whose training categories are all text as the text the file writes.

A model fitted on household sizes ``'1', '2', '3+'`` or county codes ``'013', '100', '245'`` (text categories)
refused a conditions CSV whose cells of that column all look like numbers (households of 1 and 2 persons, counties
100 and 245): pandas read them as the integers 1, 2, "the types differ ... convert the column first", a conversion
the command line offers no option for. The model's text categories now make the file's column text as written
(``013`` stays ``'013'``), in memory and streamed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from microplex import DataValidationError
from microplex.cli import app
from microplex.io import read_table

runner = CliRunner()


@pytest.fixture(scope="module")
def model(text_code_model):
    return text_code_model


def _generate(model, conditions, out, *extra):
    return runner.invoke(app, ["generate", str(model / "m.mpx"), "--conditions", str(conditions), "-o", str(out),
                               "-q", *extra])


@pytest.mark.parametrize("rows, hh, county", [
    ("1,100,30\n2,245,40\n", ["1", "2"], ["100", "245"]),       # households of 1 and 2 persons
    ("3+,100,30\n3+,245,40\n", ["3+", "3+"], ["100", "245"]),   # counties 100 and 245 only
    ("2,013,30\n1,245,40\n", ["2", "1"], ["013", "245"]),       # a county written with its leading zero
])
def test_text_categories_written_as_numbers_are_read_as_text(model, tmp_path, rows, hh, county):
    (tmp_path / "c.csv").write_text("hh,county,age\n" + rows)
    r = _generate(model, tmp_path / "c.csv", tmp_path / "out.parquet")
    assert r.exit_code == 0, r.output
    got = pd.read_parquet(tmp_path / "out.parquet")
    assert got["hh"].tolist() == hh and got["county"].tolist() == county
    assert got["age"].tolist() == [30, 40] and got["inc"].notna().all()
    r = _generate(model, tmp_path / "c.csv", tmp_path / "pop", "--stream")
    assert r.exit_code == 0, r.output
    streamed = read_table(tmp_path / "pop")
    assert streamed["hh"].tolist() == hh and streamed["county"].tolist() == county


def test_the_csv_rows_generate_as_the_same_text_rows_from_parquet(model, tmp_path):
    (tmp_path / "c.csv").write_text("hh,county,age\n1,100,30\n2,245,40\n2,100,50\n")
    pd.DataFrame({"hh": ["1", "2", "2"], "county": ["100", "245", "100"], "age": [30, 40, 50]}).to_parquet(
        tmp_path / "c.parquet")
    assert _generate(model, tmp_path / "c.csv", tmp_path / "a.parquet").exit_code == 0
    assert _generate(model, tmp_path / "c.parquet", tmp_path / "b.parquet").exit_code == 0
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "a.parquet"), pd.read_parquet(tmp_path / "b.parquet"),
                                  check_dtype=False)


def test_read_table_reads_named_columns_as_the_text_the_file_writes(tmp_path):
    (tmp_path / "t.csv").write_text("hh,county,age,flag\n1,013,30,True\n2,100,,False\n,245,50,True\nNone,7,1,\n")
    got = read_table(tmp_path / "t.csv", text=["hh", "county", "flag", "absent"])
    assert got["hh"].tolist()[:2] == ["1", "2"] and pd.isna(got["hh"][2]) and got["hh"][3] == "None"
    assert got["county"].tolist() == ["013", "100", "245", "7"]
    assert got["flag"].tolist()[:3] == ["True", "False", "True"] and pd.isna(got["flag"][3])
    assert got["age"].tolist()[:1] == [30.0] and pd.isna(got["age"][1])  # other columns as before
    with pytest.raises(DataValidationError, match=r"both as numbers and as text: \['hh'\]"):
        read_table(tmp_path / "t.csv", numeric=["hh", "age"], text=["hh"])


@pytest.mark.parametrize("partition_by", [None, ["hh"]])
def test_the_pipeline_reads_a_conditions_csv_of_text_categories_as_text(tmp_path, partition_by):
    """The pipeline's ``[generate] conditions`` CSV went through the same ``read_table`` without the model's text
    categories: households of 1 and 2 persons were read as the integers 1, 2 and refused ("types differ"), in
    memory and streamed (``partition_by``)."""
    from microplex.pipeline import run_pipeline

    rng = np.random.default_rng(1)
    n = 600
    hh = rng.choice(["1", "2", "3+"], n)
    pd.DataFrame({"hh": hh, "county": rng.choice(["013", "100", "245"], n),
                  "inc": (np.where(hh == "1", 20000, 50000) * rng.lognormal(0, 0.2, n)).round(2)}
                 ).to_parquet(tmp_path / "train.parquet")
    (tmp_path / "c.csv").write_text("hh,county\n1,100\n2,013\n1,245\n")
    generate = {"conditions": "c.csv", **({"partition_by": partition_by} if partition_by else {})}
    config = {"_base": str(tmp_path), "output": "out", "seed": 0, "sources": [{"name": "s", "path": "train.parquet"}],
              "model": {"targets": ["inc"], "conditions": ["hh", "county"], "epochs": 1}, "generate": generate}
    run_pipeline(config, progress=False)
    out = tmp_path / "out"
    got = read_table(next(p for p in out.iterdir() if p.name.startswith(("synthetic", "population"))))
    got = got.sort_values(["hh", "county"]).reset_index(drop=True)  # a partitioned dataset lists its rows by hh
    assert got["hh"].astype(str).tolist() == ["1", "1", "2"]
    assert got["county"].astype(str).tolist() == ["100", "245", "013"]
    assert got["inc"].notna().all()
