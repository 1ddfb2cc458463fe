"""Session 53: damaged input files of the formats read by extension give one clear error naming the file."""

from __future__ import annotations

import zipfile

import pytest
from typer.testing import CliRunner

from microplex import DataValidationError
from microplex.cli import app
from microplex.io import read_table

runner = CliRunner()


def _damaged(folder, kind):
    if kind == "dta":  # not a Stata file: the reader's struct unpacking fails
        path = folder / "bad.dta"
        path.write_bytes(b"garbage that is not a Stata file at all" * 3)
    elif kind == "zip-xlsx":  # a zip archive without a workbook
        path = folder / "bad.xlsx"
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("a.txt", "x")
    else:  # a truncated zip archive
        path = folder / "cut.xlsx"
        full = folder / "full.zip"
        with zipfile.ZipFile(full, "w") as z:
            z.writestr("xl/workbook.xml", "x" * 5000)
        path.write_bytes(full.read_bytes()[:200])
    return path


@pytest.mark.parametrize("kind", ["dta", "zip-xlsx", "cut-xlsx"])
def test_damaged_files_are_bad_input_not_a_bug(tmp_path, kind):
    """Was: a damaged .dta (struct.error) or .xlsx (zipfile.BadZipFile, KeyError 'zip') escaped as an internal error
    (status 2, 'this is a bug'); now DataValidationError naming the file, status 1 on the command line."""
    path = _damaged(tmp_path, kind)
    with pytest.raises(DataValidationError, match="Cannot read"):
        read_table(path)
    r = runner.invoke(app, ["fit", str(path), "--targets", "a", "-o", str(tmp_path / "m.mpx")])
    assert r.exit_code == 1 and "Cannot read" in r.output and path.name in r.output, r.output
    assert "internal error" not in r.output
