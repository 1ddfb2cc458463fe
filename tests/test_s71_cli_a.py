"""Session 71 audit of the command line: a Parquet file's pandas index (an id column) is a column of the records
read (it was dropped from every output), ``fit -q`` writes the same model bytes as ``fit``, and ``fit -o`` refuses a
suffix other than ``.mpx``."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from microplex import Synthesizer
from microplex._errors import DataValidationError
from microplex.cli import app
from microplex.io import read_table

runner = CliRunner()


@pytest.fixture(scope="module")
def files(tmp_path_factory, cps1):
    """300 cps1 records with person ids (a permutation, not row numbers) written as pandas writes
    ``df.set_index("pid")`` (the file stores ``pid`` as its last column, the pandas metadata names it the index),
    the same records with a household id and ``pid`` as a two-level index, a targets file and a 1-epoch model."""
    folder = tmp_path_factory.mktemp("s71clia")
    data = cps1.head(300)[["age", "marr", "re78"]].reset_index(drop=True)
    data["pid"] = np.random.default_rng(0).permutation(len(data)) + 10_000
    data["hid"] = data["pid"] // 3
    data["weight"] = 1.0
    data.drop(columns="hid").set_index("pid").to_parquet(folder / "in.parquet")
    data.set_index(["hid", "pid"]).to_parquet(folder / "hh.parquet")
    data[["age", "marr", "re78", "weight", "pid"]].to_parquet(folder / "plain.parquet", index=False)
    data[["pid", "age", "marr"]].set_index("pid").to_parquet(folder / "cond.parquet")  # conditions with their ids
    (folder / "t.csv").write_text("aggregate,variable,filter,value\ncount,,marr == 0,100\ncount,,marr == 1,200\n")
    Synthesizer(["re78"], ["age", "marr"], epochs=1, verbose=False).fit(data, seed=0).save(folder / "model.mpx")
    return folder, data


def _invoke(*args: str):
    r = runner.invoke(app, [*args, "-q"])
    assert r.exit_code == 0, r.output
    return r


def test_read_table_keeps_a_parquet_index_with_a_name_as_a_column(files, tmp_path):
    """``pd.read_parquet`` restores ``pid`` (a stored column) as the index; read_table gave the records without it.
    Now the named levels are columns where the file stores them, and unnamed ones (row numbers) are dropped."""
    folder, data = files
    assert "pid" in pq.read_schema(folder / "in.parquet").names  # a column of the file, as pyarrow reads it
    df = read_table(folder / "in.parquet")
    assert list(df.columns) == pq.read_schema(folder / "in.parquet").names == ["age", "marr", "re78", "weight", "pid"]
    np.testing.assert_array_equal(df["pid"].to_numpy(), data["pid"].to_numpy())
    assert df.index.equals(pd.RangeIndex(len(data)))
    two = read_table(folder / "hh.parquet")
    assert list(two.columns[-2:]) == ["hid", "pid"]  # where the file stores them
    pd.testing.assert_frame_equal(two[data.columns], data)
    # an unnamed index level beside a named one, and an unnamed index of row numbers: dropped
    half = data.set_index(["hid", "pid"]).rename_axis(["hid", None])
    half.to_parquet(tmp_path / "half.parquet")
    assert list(read_table(tmp_path / "half.parquet").columns) == ["age", "marr", "re78", "weight", "hid"]
    data.iloc[::-2].to_parquet(tmp_path / "rows.parquet")
    rows = read_table(tmp_path / "rows.parquet")
    assert list(rows.columns) == list(data.columns) and rows.index.equals(pd.RangeIndex(150))
    # ids without a gap: pandas makes them a RangeIndex and stores it as metadata only, no column of the file
    data.assign(pid=np.arange(len(data)) + 7).set_index("pid").to_parquet(tmp_path / "range.parquet")
    assert "pid" not in pq.read_schema(tmp_path / "range.parquet").names
    np.testing.assert_array_equal(read_table(tmp_path / "range.parquet")["pid"].to_numpy(), np.arange(len(data)) + 7)


def test_read_table_refuses_an_index_named_as_a_column(files, tmp_path):
    """An index named as a column (pandas stores it as ``__index_level_0__``): refused, naming the file and name."""
    _, data = files
    data.set_index(data["pid"].rename("age")).to_parquet(tmp_path / "clash.parquet")
    with pytest.raises(DataValidationError, match=r"clash.parquet' stores a pandas index named \['age'\] beside"):
        read_table(tmp_path / "clash.parquet")
    r = runner.invoke(app, ["calibrate", str(tmp_path / "clash.parquet"), "--targets", str(files[0] / "t.csv"),
                            "-o", str(tmp_path / "out.parquet"), "-q"])
    assert r.exit_code == 1 and "pandas index named ['age']" in r.output and not (tmp_path / "out.parquet").exists()


def test_calibrate_and_sparsify_keep_a_parquet_index_column(files, tmp_path):
    """``calibrate`` and ``sparsify --max-records`` wrote their outputs without ``pid`` (exit 0): the kept records
    could not be linked back. Now ``pid`` is in both, each record's own, and the weights are those of the file
    holding ``pid`` as a plain column."""
    folder, data = files
    for verb, extra in (("calibrate", []), ("sparsify", ["--max-records", "100"])):
        _invoke(verb, str(folder / "in.parquet"), "--targets", str(folder / "t.csv"), *extra,
                "-o", str(tmp_path / f"{verb}.parquet"))
        _invoke(verb, str(folder / "plain.parquet"), "--targets", str(folder / "t.csv"), *extra,
                "-o", str(tmp_path / f"{verb}_plain.parquet"))
        out, plain = pd.read_parquet(tmp_path / f"{verb}.parquet"), pd.read_parquet(tmp_path / f"{verb}_plain.parquet")
        assert "pid" in pq.read_schema(tmp_path / f"{verb}.parquet").names
        pd.testing.assert_frame_equal(out, plain)  # as read from the file holding pid as a plain column
        by_pid = data.set_index("pid").loc[out["pid"]]  # each kept record's own id
        np.testing.assert_array_equal(out["age"].to_numpy(), by_pid["age"].to_numpy())
        np.testing.assert_array_equal(out["re78"].to_numpy(), by_pid["re78"].to_numpy())
    assert len(pd.read_parquet(tmp_path / "sparsify.parquet")) <= 100


def test_household_option_finds_an_id_stored_as_the_index(files, tmp_path):
    """``--household pid`` on such a file said the column is not in the file; now the households are calibrated,
    and the two-level index (hid, pid) gives both columns with one weight per household."""
    folder, data = files
    _invoke("calibrate", str(folder / "in.parquet"), "--targets", str(folder / "t.csv"), "--household", "pid",
            "-o", str(tmp_path / "p.parquet"))
    _invoke("calibrate", str(folder / "hh.parquet"), "--targets", str(folder / "t.csv"), "--household", "hid",
            "-o", str(tmp_path / "h.parquet"))
    out = pd.read_parquet(tmp_path / "h.parquet")
    np.testing.assert_array_equal(out[["hid", "pid"]].to_numpy(), data[["hid", "pid"]].to_numpy())
    assert (out.groupby("hid")["weight"].nunique() == 1).all()
    assert abs(out["weight"].sum() - 300) < 1e-6 and "pid" in pd.read_parquet(tmp_path / "p.parquet").columns


def test_generate_conditions_keep_an_index_column_in_memory_and_streamed(files, tmp_path):
    """``generate --conditions`` dropped ``pid`` in memory; the streamed reader (pyarrow's ``to_pandas``) as well.
    Now both outputs hold it, each record's own."""
    folder, data = files
    _invoke("generate", str(folder / "model.mpx"), "--conditions", str(folder / "cond.parquet"),
            "-o", str(tmp_path / "mem.parquet"))
    _invoke("generate", str(folder / "model.mpx"), "--conditions", str(folder / "cond.parquet"), "--stream",
            "-o", str(tmp_path / "stream"))
    mem, stream = pd.read_parquet(tmp_path / "mem.parquet"), pd.read_parquet(tmp_path / "stream")
    np.testing.assert_array_equal(mem["pid"].to_numpy(), data["pid"].to_numpy())
    np.testing.assert_array_equal(stream["pid"].to_numpy(), data["pid"].to_numpy())
    np.testing.assert_array_equal(mem["age"].to_numpy(), data["age"].to_numpy())
    pd.testing.assert_frame_equal(stream[["pid", "age", "marr"]], data[["pid", "age", "marr"]], check_dtype=False)
    # ids without a gap: a RangeIndex, stored as pandas metadata only; in memory a column, streamed refused
    data[["age", "marr"]].rename_axis("pid").to_parquet(tmp_path / "range.parquet")
    _invoke("generate", str(folder / "model.mpx"), "--conditions", str(tmp_path / "range.parquet"),
            "-o", str(tmp_path / "mem2.parquet"))
    np.testing.assert_array_equal(pd.read_parquet(tmp_path / "mem2.parquet")["pid"].to_numpy(), np.arange(300))
    r = runner.invoke(app, ["generate", str(folder / "model.mpx"), "--conditions", str(tmp_path / "range.parquet"),
                            "--stream", "-o", str(tmp_path / "stream2"), "-q"])
    assert r.exit_code == 1 and "hold the pandas index ['pid'] as metadata only" in r.output, r.output
    assert not (tmp_path / "stream2").exists()


def test_calibrated_copy_of_a_dataset_keeps_its_index_column(files, tmp_path):
    """``write_calibrated`` (pyarrow fragments read ``to_pandas``) wrote the copy without ``pid``; now it has it and
    ``rake_dataset`` (dask) reads such a column as a margin."""
    from microplex.scale import rake_dataset, write_calibrated

    folder, data = files
    res = rake_dataset(folder / "in.parquet", {"marr": {0: 100.0, 1: 200.0}}, "weight", method="linear")
    write_calibrated(res, folder / "in.parquet", tmp_path / "out", column="cw")
    back = pd.read_parquet(tmp_path / "out")
    np.testing.assert_array_equal(back["pid"].to_numpy(), data["pid"].to_numpy())
    assert abs(back.loc[back["marr"] == 1, "cw"].sum() - 200.0) < 1e-8
    odd = {"pid": {p: 1.0 for p in data["pid"]}}  # a margin on the id: one record each
    assert np.allclose(rake_dataset(folder / "in.parquet", odd, "weight", method="linear").weights(back), 1.0)


def test_household_calibration_of_files_keeps_their_index_columns(files, tmp_path):
    """The linked readers (``rake_dataset(persons=...)`` and its ``write_calibrated``) read the household id stored
    as the households' index as missing ("lacks the columns ['hid']") and wrote the persons' copy without ``pid``.
    Now both read them, each household one weight, and the copies keep ``hid`` and ``pid``."""
    from microplex.scale import rake_dataset, write_calibrated

    _, data = files
    h = data.groupby("hid", as_index=False).agg(weight=("weight", "first"))
    h.set_index("hid").to_parquet(tmp_path / "h.parquet")
    data[["pid", "hid", "age", "marr"]].set_index("pid").to_parquet(tmp_path / "p.parquet")
    kw = dict(persons=tmp_path / "p.parquet", household_id="hid", method="linear")
    res = rake_dataset(tmp_path / "h.parquet", {"marr": {0: 110.0, 1: 230.0}}, "weight", **kw)
    write_calibrated(res, tmp_path / "h.parquet", tmp_path / "ho", column="cw", persons=tmp_path / "p.parquet",
                     persons_out=tmp_path / "po")
    ch, cp = pd.read_parquet(tmp_path / "ho"), pd.read_parquet(tmp_path / "po")
    np.testing.assert_array_equal(ch["hid"].to_numpy(), h["hid"].to_numpy())
    np.testing.assert_array_equal(cp["pid"].to_numpy(), data["pid"].to_numpy())
    assert (cp["cw"].to_numpy() == ch.set_index("hid")["cw"].reindex(cp["hid"]).to_numpy()).all()
    got = cp.groupby("marr")["cw"].sum()
    assert got[0] == pytest.approx(110.0, rel=1e-9) and got[1] == pytest.approx(230.0, rel=1e-9)


def test_fit_quiet_writes_the_same_model_bytes(files, tmp_path):
    """``fit -q`` saved ``params.verbose = false``, ``fit`` ``true``: two files for one data set and seed (the
    pipeline saves with verbose=False). Now both hold the same bytes, those of the library's model saved quiet."""
    folder, data = files
    base = ["fit", str(folder / "plain.parquet"), "--targets", "re78", "--conditions", "age,marr", "--epochs", "1",
            "--seed", "3"]
    assert runner.invoke(app, [*base, "-o", str(tmp_path / "a.mpx")]).exit_code == 0
    _invoke(*base, "-o", str(tmp_path / "b.mpx"))
    a, b = (tmp_path / "a.mpx").read_bytes(), (tmp_path / "b.mpx").read_bytes()
    assert a == b
    assert json.loads(zipfile.ZipFile(tmp_path / "a.mpx").read("metadata.json"))["params"]["verbose"] is False
    Synthesizer(["re78"], ["age", "marr"], epochs=1, verbose=False).fit(
        pd.read_parquet(folder / "plain.parquet"), seed=3).save(tmp_path / "api.mpx")
    assert (tmp_path / "api.mpx").read_bytes() == a


@pytest.mark.parametrize("name", ["synth.parquet", "model.csv", "model"])
def test_fit_refuses_an_output_suffix_other_than_mpx(files, tmp_path, name):
    """``fit -o synth.parquet`` wrote the model (a zip archive) under a Parquet name, exit 0; ``evaluate`` then
    called the file corrupted Parquet. Now one error line before any fit, as the other verbs give, nothing written."""
    folder, _ = files
    r = runner.invoke(app, ["fit", str(folder / "plain.parquet"), "--targets", "re78", "--conditions", "age",
                            "--epochs", "1", "-o", str(tmp_path / name), "-q"])
    assert r.exit_code == 1, r.output
    lines = [line for line in r.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and f"'{tmp_path / name}' must end in .mpx: the command writes a model file" in lines[0]
    assert list(tmp_path.iterdir()) == []
    assert runner.invoke(app, ["fit", str(folder / "plain.parquet"), "--targets", "re78", "--conditions", "age",
                               "--epochs", "1", "-o", str(tmp_path / "Model.MPX"), "-q"]).exit_code == 0
