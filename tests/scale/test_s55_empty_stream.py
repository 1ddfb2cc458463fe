"""Session 55: streaming no record is refused. `generate_dataset(n=0)` (and `microplex generate --n 0 --stream`)
wrote an empty folder, no file and no schema, which every reader took for a table without columns (found by the
nightly property suite: `pd.read_parquet` gave an empty frame with no `age`, `marr`, `re78`)."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from microplex import DataValidationError, Synthesizer
from microplex.cli import app
from microplex.scale import generate_dataset


@pytest.fixture(scope="module")
def model(tmp_path_factory, cps1):
    synth = Synthesizer(["re78"], ["age", "marr"], epochs=1, verbose=False).fit(cps1.head(300), seed=0)
    path = tmp_path_factory.mktemp("m") / "m.mpx"
    synth.save(path)
    return synth, path


def test_streaming_no_record_is_refused_and_writes_nothing(model, tmp_path):
    synth, _ = model
    with pytest.raises(DataValidationError, match="'n' parameter is 0"):
        generate_dataset(synth, n=0, path=tmp_path / "pop", seed=0, progress=False)
    header_only = pd.DataFrame({"age": pd.Series([], dtype="int64"), "marr": pd.Series([], dtype="int64")})
    with pytest.raises(DataValidationError, match="'conditions' has no rows"):
        generate_dataset(synth, header_only, path=tmp_path / "pop", seed=0, progress=False)
    assert not (tmp_path / "pop").exists()
    generate_dataset(synth, n=5, path=tmp_path / "pop", seed=0, progress=False)  # one record or more: as before
    assert len(pd.read_parquet(tmp_path / "pop")) == 5


def test_the_command_line_says_so_in_one_line(model, tmp_path):
    _, path = model
    r = CliRunner().invoke(app, ["generate", str(path), "--n", "0", "--stream", "-o", str(tmp_path / "pop")])
    assert r.exit_code == 1 and "error: The '--n' option is 0" in r.output, r.output
    assert not (tmp_path / "pop").exists()
    r = CliRunner().invoke(app, ["generate", str(path), "--n", "0", "-o", str(tmp_path / "e.parquet")])
    assert r.exit_code == 0, r.output  # a file of no record keeps its columns
    assert {"age", "marr", "re78"} <= set(pd.read_parquet(tmp_path / "e.parquet").columns)


def test_a_partition_value_read_back_as_missing_is_refused(model, tmp_path):
    """A text partition value equal to Hive's name for a missing value came back as missing (found by the nightly
    property suite: '__HIVE_DEFAULT_PARTITION__' read back as None); it is refused, naming the column."""
    synth, _ = model
    frame = pd.DataFrame({"age": [30, 40], "marr": [0, 1], "region": ["north", "__HIVE_DEFAULT_PARTITION__"]})
    with pytest.raises(DataValidationError, match=r"'region' holds the value '__HIVE_DEFAULT_PARTITION__'"):
        generate_dataset(synth, frame, path=tmp_path / "pop", partition_by=["region"], seed=0, progress=False)
    frame["region"] = ["north", None]  # a missing value is still written as Hive's missing partition
    generate_dataset(synth, frame, path=tmp_path / "pop2", partition_by=["region"], seed=0, progress=False)
    assert sorted(p.name for p in (tmp_path / "pop2").iterdir()) == ["region=__HIVE_DEFAULT_PARTITION__",
                                                                     "region=north"]
