"""Odd command-line inputs: outputs that are pipes or devices, repeated CSV headers, an empty folder as a
table, a synthetic weight that is a real column, fit into a new folder, and warnings on one line."""

import hashlib
import os
import stat
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from microplex import Synthesizer
from microplex.cli import app

import test_cli

files = test_cli.files  # the fixture: a tiny table, a model fitted on it and a targets file (one per module)

runner = CliRunner()


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def _one_error(result, match: str) -> None:
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 1, result.output
    assert len(lines) == 1 and match in lines[0], result.output
    assert "Traceback" not in result.output




@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
@pytest.mark.parametrize(
    "args, name",
    [
        (["fit", "{d}/data.csv", "--targets", "re78", "--epochs", "1", "-o", "{o}/m.mpx"], "m.mpx"),
        (["generate", "{d}/model.mpx", "--n", "5", "-o", "{o}/s.parquet"], "s.parquet"),
        (["calibrate", "{d}/data.parquet", "--targets", "{d}/t.csv", "-o", "{o}/w.parquet", "--report", "{o}/r.csv"],
         "r.csv"),
        (["evaluate", "{d}/data.csv", "{d}/data.parquet", "--no-pmse", "--report", "{o}/r.html"], "r.html"),
    ],
)
def test_an_output_that_is_a_pipe_or_device_is_refused_and_kept(files, tmp_path, args, name):
    """`-o /dev/null` (here a named pipe, the same kind of file): the rename of the finished output onto it
    replaced the device by a regular file (as root, /dev/null itself), status 0."""
    os.mkfifo(tmp_path / name)
    before = _digests(files)
    r = runner.invoke(app, [a.format(d=files, o=tmp_path) for a in args])
    _one_error(r, "is a device, pipe or socket, not a regular file")
    assert stat.S_ISFIFO(os.lstat(tmp_path / name).st_mode)
    assert [p.name for p in tmp_path.iterdir()] == [name] and _digests(files) == before


@pytest.mark.parametrize("verb", ["fit", "evaluate"])
def test_a_csv_header_that_repeats_a_name_is_refused(files, tmp_path, verb):
    """pandas renames a repeated CSV column 're78' to 're78.1': fit trained on the first one silently and
    evaluate said 'The synthetic file lacks columns ['re78.1']'."""
    data = tmp_path / "dup.csv"
    data.write_text("age,marr,re78,re78\n" + "\n".join(f"{20 + i % 30},{i % 2},{i * 10},{i}" for i in range(60)) + "\n")
    args = (["fit", str(data), "--targets", "re78", "--epochs", "1", "-o", str(tmp_path / "m.mpx")] if verb == "fit"
            else ["evaluate", str(data), str(files / "data.parquet"), "--no-pmse", "--report", str(tmp_path / "r.html")])
    r = runner.invoke(app, args)
    _one_error(r, "has duplicated column names ['re78']")
    assert [p.name for p in tmp_path.iterdir()] == ["dup.csv"]


def test_a_csv_column_named_like_a_renamed_duplicate_is_read(tmp_path):
    from microplex.io import read_table

    (tmp_path / "ok.csv").write_text("\ufeffre78,re78.1\n1,2\n")
    assert list(read_table(tmp_path / "ok.csv").columns) == ["re78", "re78.1"]


@pytest.mark.parametrize("verb", ["fit", "evaluate"])
def test_an_empty_folder_given_as_a_table_is_refused(files, tmp_path, verb):
    """An empty folder read as a table of no columns: 'The columns [...] are not in ...'."""
    (tmp_path / "in.csv").mkdir()
    args = (["fit", str(tmp_path / "in.csv"), "--targets", "re78", "-o", str(tmp_path / "m.mpx")] if verb == "fit"
            else ["evaluate", str(files / "data.csv"), str(tmp_path / "in.csv"), "--report", str(tmp_path / "r.html")])
    r = runner.invoke(app, args)
    _one_error(r, "it is a folder without any file")
    assert [p.name for p in tmp_path.iterdir()] == ["in.csv"]


def test_evaluate_synthetic_weight_that_is_a_real_column_is_named(files, tmp_path):
    """`--synthetic-weight age` with age a real column: 'synthetic_df has duplicated column names ['age']'."""
    r = runner.invoke(app, ["evaluate", str(files / "data.csv"), str(files / "data.parquet"), "--no-pmse",
                            "--synthetic-weight", "age", "--report", str(tmp_path / "r.html")])
    _one_error(r, "The synthetic weight column 'age' is also a column of real_df")
    assert list(tmp_path.iterdir()) == []


def test_fit_writes_into_a_new_folder_as_the_other_verbs_do(files, tmp_path):
    """`fit -o new/sub/m.mpx` trained the model, then failed at save ('folder ... does not exist')."""
    out = tmp_path / "new" / "sub" / "m.mpx"
    r = runner.invoke(app, ["fit", str(files / "data.csv"), "--targets", "re78", "--epochs", "1", "-q", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert Synthesizer.load(out).target_vars == ["re78"]


def test_fit_weight_option_must_be_a_name(files, tmp_path):
    r = runner.invoke(app, ["fit", str(files / "data.csv"), "--targets", "re78", "--weight", "", "-o",
                            str(tmp_path / "m.mpx")])
    _one_error(r, "The '--weight' option must be a column name")
    assert list(tmp_path.iterdir()) == []


def test_a_warning_is_one_line_without_source_code(files, tmp_path):
    """An ExtrapolationWarning printed microplex's file and line and the code line (`result = synth.generate(...)`)."""
    cond = tmp_path / "c.csv"
    cond.write_text("age,marr\n1e6,1\n30,0\n")
    r = runner.invoke(app, ["generate", str(files / "model.mpx"), "--conditions", str(cond), "-q",
                            "-o", str(tmp_path / "s.parquet")])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: ExtrapolationWarning: Condition column 'age'"), r.output
    assert len(pd.read_parquet(tmp_path / "s.parquet")) == 2


def test_bare_command_prints_the_help_with_status_one():
    """``microplex`` alone printed the help and exited 2, the status reserved for internal errors."""
    result = runner.invoke(app, [])
    assert result.exit_code == 1
    assert "Usage" in result.output and "fit" in result.output


def test_generate_for_a_conditions_file_of_a_header_only_writes_no_rows(files, tmp_path):
    """A header-only conditions CSV reads as text columns: 'Condition column 'age' must be numeric ... object'
    (a file without rows holds no value of another type); the output has the columns and no row, as with --n 0."""
    (tmp_path / "c.csv").write_text("age,marr\n")
    out = tmp_path / "s.parquet"
    r = runner.invoke(app, ["generate", str(files / "model.mpx"), "-q", "--conditions", str(tmp_path / "c.csv"),
                            "-o", str(out)])
    assert r.exit_code == 0, r.output
    got = pd.read_parquet(out)
    assert len(got) == 0 and set(got.columns) == {"age", "marr", "re78"}
