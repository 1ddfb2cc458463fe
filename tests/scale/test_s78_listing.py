"""One listing of a dataset folder (``_layout.dataset_parts``) for its readers and for the resumable writer: a link
to a folder (which pandas and pyarrow follow), a broken link or a pipe is an entry of the folder, refused by the
readers (``data_files``) and, not written by the run, a stray for ``finish_output``; a data file the run did not
write is a stray for the writer and, in a finished run whose manifest does not list it, for the readers too
(``_layout.check_unlisted``); in a folder without a manifest it is a part for the readers."""

from __future__ import annotations

import os
import shutil

import pandas as pd
import pytest

from microplex import DataValidationError
from microplex.scale import generate_dataset
from microplex.scale._layout import data_files, dataset_schema

_KW = dict(n=90, rows_per_file=30, seed=1, partition_by=["black"], progress=False)


@pytest.fixture()
def finished(tiny_synth, tmp_path):
    root = tmp_path / "run"
    generate_dataset(tiny_synth, path=root, **_KW)
    return root


def _a_part(root):
    return sorted((root / "black=0").glob("*.parquet"))[0]


def _link_to_a_folder(root, tmp_path):
    """``black=0/more``, a link to a folder outside the dataset holding a copy of one of its parts."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(_a_part(root), elsewhere / "part-000000.parquet")
    (root / "black=0" / "more").symlink_to(elsewhere, target_is_directory=True)
    return "black=0/more"


def _broken_link(root, tmp_path):
    (root / "black=0" / "part-777777.parquet").symlink_to(tmp_path / "gone.parquet")
    return "black=0/part-777777.parquet"


def _pipe(root, tmp_path):
    os.mkfifo(root / "black=0" / "part-777777.parquet")
    return "black=0/part-777777.parquet"


def test_a_link_to_a_folder_in_a_finished_dataset_is_a_stray_of_the_writer(tiny_synth, finished, tmp_path):
    rows = len(pd.read_parquet(finished))
    entry = _link_to_a_folder(finished, tmp_path)
    assert len(pd.read_parquet(finished)) > rows  # pandas follows the link: more records than the run wrote
    with pytest.raises(DataValidationError, match=rf"holds data files that this run did not write: \['{entry}'\]"):
        generate_dataset(tiny_synth, path=finished, **_KW)


@pytest.mark.parametrize("make, what", [
    (_link_to_a_folder, r"a link to a folder \(pandas and pyarrow read the files it leads to"),
    (_broken_link, r"a broken link"),
    (_pipe, r"not a regular file \(a pipe, socket or device\)"),
], ids=["link to a folder", "broken link", "pipe"])
def test_the_readers_refuse_an_entry_that_is_no_data_file_naming_it(tiny_synth, finished, tmp_path, make, what):
    entry = make(finished, tmp_path)
    with pytest.raises(DataValidationError, match=rf"Cannot read the Parquet dataset folder .*: its entry '{entry}' "
                                                  rf"is {what}"):
        data_files(finished)
    # the writer refuses it too, as an entry its run did not write
    with pytest.raises(DataValidationError, match=rf"did not write: \['{entry}'\]"):
        generate_dataset(tiny_synth, path=finished, **_KW)


def test_a_data_file_the_run_did_not_write_is_a_part_for_the_readers_and_a_stray_for_the_writer(
        tiny_synth, finished, tmp_path):
    outside = tmp_path / "outside.parquet"
    shutil.copy(_a_part(finished), outside)
    (finished / "black=0" / "part-888888.parquet").symlink_to(outside)  # a link to a data file: listed as one
    with pytest.raises(DataValidationError, match=r"does not list: \['black=0/part-888888.parquet'\]"):
        data_files(finished)  # which the finished run's manifest does not list (_layout.check_unlisted)
    with pytest.raises(DataValidationError, match=r"did not write: \['black=0/part-888888.parquet'\]"):
        generate_dataset(tiny_synth, path=finished, **_KW)


def test_the_schema_check_reads_the_first_data_file_not_a_broken_link(finished, tmp_path):
    schema = dataset_schema(finished)
    (finished / "a.parquet").symlink_to(tmp_path / "gone.parquet")  # first in path order
    assert dataset_schema(finished).equals(schema)


_ENTRIES = pytest.mark.parametrize("make, what", [
    (_link_to_a_folder, r"a link to a folder \(pandas and pyarrow read the files it leads to"),
    (_broken_link, r"a broken link"),
    (_pipe, r"not a regular file \(a pipe, socket or device\)"),
], ids=["link to a folder", "broken link", "pipe"])


@_ENTRIES
def test_read_table_refuses_an_entry_that_is_no_data_file_as_the_listing_does(finished, tmp_path, make, what):
    """Before: ``read_table`` handed the folder to ``pandas.read_parquet``, which read the copy of a part behind the
    link to a folder as more records (117 of a dataset of 90 rows) and skipped the broken link and the pipe, while
    its schema checks read the listed parts only. Now it reads what the listing names, and refuses the rest alike."""
    from microplex.io import read_table

    assert len(read_table(finished)) == 90
    entry = make(finished, tmp_path)
    with pytest.raises(DataValidationError, match=rf"Cannot read the Parquet dataset folder .*: its entry '{entry}' "
                                                  rf"is {what}"):
        read_table(finished)


def test_read_table_reads_a_link_to_a_data_file_as_a_part_keeping_the_partition_column(finished, tmp_path):
    """A link to a ``*.parquet`` file is a part of the listing: read as one, in its partition folder (``black`` 0,
    typed as written), in a folder without a manifest (a calibrated copy keeps the schema file). In the finished
    run, whose manifest does not list it, it is refused (``_layout.check_unlisted``)."""
    from microplex.io import read_table
    from microplex.scale import rake_dataset, write_calibrated

    outside = tmp_path / "outside.parquet"
    shutil.copy(_a_part(finished), outside)
    (finished / "black=0" / "part-888888.parquet").symlink_to(outside)
    with pytest.raises(DataValidationError, match=r"does not list: \['black=0/part-888888.parquet'\]"):
        read_table(finished)
    (finished / "black=0" / "part-888888.parquet").unlink()
    copy = tmp_path / "copy"
    write_calibrated(rake_dataset(finished, {"black": {0: 50.0, 1: 40.0}}), finished, copy)
    before = read_table(copy)
    (copy / "black=0" / "part-888888.parquet").symlink_to(outside)
    after = read_table(copy)
    added = len(pd.read_parquet(outside))
    assert len(after) == len(before) + added
    assert after["black"].dtype == before["black"].dtype == "int64"
    assert (after["black"] == 0).sum() == (before["black"] == 0).sum() + added


@pytest.mark.parametrize("make, what", [
    (_link_to_a_folder, r"a link to a folder"),
    (_broken_link, r"a broken link"),
], ids=["link to a folder", "broken link"])
def test_calibrate_on_the_command_line_refuses_such_an_entry_of_its_data_folder(finished, tmp_path, make, what):
    """Before: ``microplex calibrate`` weighted the 117 records ``pandas.read_parquet`` read (the link to a folder
    followed), exit 0; the broken link was skipped unnamed."""
    from typer.testing import CliRunner

    from microplex.cli import app

    targets = tmp_path / "t.csv"
    pd.DataFrame({"filter": ["black == 0", "black == 1"], "aggregate": ["count", "count"],
                  "value": [50.0, 60.0]}).to_csv(targets, index=False)
    args = ["calibrate", str(finished), "--targets", str(targets), "-o", str(tmp_path / "w.parquet")]
    entry = make(finished, tmp_path)
    r = CliRunner().invoke(app, args)
    assert r.exit_code != 0
    assert entry in r.output and what in " ".join(r.output.split()), r.output


def test_read_table_refuses_a_file_of_a_pandas_folder_that_is_no_parquet_file(tmp_path):
    """Before: ``pandas.read_parquet`` read ``b.parq`` as one more part, which every scale reader refused; now
    ``read_table`` refuses it too, naming it. Hidden and ``_`` names (``_SUCCESS``) are skipped, as before."""
    from microplex.io import read_table

    folder = tmp_path / "pop"
    folder.mkdir()
    frame = pd.DataFrame({"age": [30, 40]})
    frame.to_parquet(folder / "a.parquet")
    (folder / "_SUCCESS").write_text("")
    assert len(read_table(folder)) == 2
    frame.to_parquet(folder / "b.parq")
    with pytest.raises(DataValidationError, match=r"Cannot read the Parquet dataset folder .*: its file 'b.parq' is "
                                                  r"not a .parquet file"):
        read_table(folder)
