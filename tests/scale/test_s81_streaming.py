"""A streamed dataset changed after it finished is not read as the dataset it was: a data file its manifest does
not list (a part copied in by hand) is refused by every reader; a calibrated copy is written only of the records
that were calibrated."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from microplex import DataValidationError
from microplex.io import read_table
from microplex.scale import ParquetSource, generate_dataset, rake_dataset, read_manifest, write_calibrated

MARGINS = {"black": {0: 600.0, 1: 400.0}}


def _dataset(synth, path: Path) -> Path:
    """1,000 records in three tasks, partitioned by race."""
    generate_dataset(synth, n=1000, path=path, partition_by=["black"], rows_per_file=400, seed=7, progress=False)
    return path


@pytest.mark.parametrize("extra", ["black=0/part-000099.parquet", "black=2/part-000000.parquet"])
def test_a_data_file_the_manifest_does_not_list_is_refused_by_every_reader(tiny_synth, tmp_path, extra):
    """A part copied into a finished dataset (another name, another partition folder) was read as more records:
    ``rake_dataset`` and ``read_table`` took 1,000 + its rows while ``read_manifest`` said 1,000."""
    pop = _dataset(tiny_synth, tmp_path / "pop")
    (pop / extra).parent.mkdir(exist_ok=True)
    shutil.copy(pop / "black=0" / "part-000000.parquet", pop / extra)
    assert len(pd.read_parquet(pop)) > 1000  # what a reader that does not check sees
    calls = [
        lambda: read_manifest(pop),
        lambda: read_table(pop),
        lambda: rake_dataset(pop, MARGINS),
        lambda: ParquetSource(pop),
    ]
    for call in calls:
        with pytest.raises(DataValidationError, match=rf"holds data files that its manifest .* does not list: \['{extra}'\]"):
            call()
    (pop / extra).unlink()  # moved out: read as written
    assert len(read_table(pop)) == read_manifest(pop)["rows"] == 1000


def test_a_manifest_that_leaves_out_a_file_is_refused_and_rewritten_by_the_call_that_wrote_it(tiny_synth, tmp_path):
    """A manifest edited to leave out a file (and its rows) told 600 rows of a folder every reader read 1,000 of."""
    import json

    from microplex.scale._layout import layout

    pop = _dataset(tiny_synth, tmp_path / "pop")
    file = layout(pop).manifest
    manifest = json.loads(file.read_text())
    dropped = manifest["files"].pop(0)
    manifest["rows"] -= dropped["rows"]
    file.write_text(json.dumps(manifest))
    with pytest.raises(DataValidationError, match=rf"does not list: \['{dropped['path']}'\]"):
        rake_dataset(pop, MARGINS)
    generate_dataset(tiny_synth, n=1000, path=pop, partition_by=["black"], rows_per_file=400, seed=7, progress=False)
    assert read_manifest(pop)["rows"] == len(read_table(pop)) == 1000


def test_write_calibrated_refuses_a_dataset_that_changed_since_it_was_calibrated(tmp_path):
    """A part copied into a folder (written by pandas: no manifest) after ``rake_dataset`` was copied with weights:
    1,500 records written of the 1,000 calibrated, the margin ``g == 0`` of 600 at 1,100, without a word."""
    frame = pd.DataFrame({"g": [0, 1] * 500, "x": range(1000)})
    src = tmp_path / "src"
    frame.to_parquet(src, partition_cols=["g"])
    result = rake_dataset(src, {"g": {"0": 600.0, "1": 400.0}})
    first = sorted((src / "g=0").glob("*.parquet"))[0]
    shutil.copy(first, src / "g=0" / "more.parquet")
    with pytest.raises(DataValidationError, match=r"holds 1500 records; the result calibrated 1000: it changed since"):
        write_calibrated(result, src, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing published
    (src / "g=0" / "more.parquet").unlink()
    assert write_calibrated(result, src, tmp_path / "out") == 1000
    copy = pd.read_parquet(tmp_path / "out")
    assert copy.groupby("g", observed=True)["weight"].sum().to_dict() == pytest.approx({0: 600.0, 1: 400.0}, rel=1e-9)


@pytest.mark.parametrize("damage", ["deleted", "truncated"])
def test_a_damaged_part_of_a_finished_dataset_is_refused_naming_what_redoes_it(tiny_synth, tmp_path, damage):
    """The readers said "repeat the call with a new output directory, or delete the output directory to redo it"
    for a finished dataset with a part deleted or truncated. Repeating the call that wrote it redoes a deleted part in
    place; a truncated one once its task's marker is deleted (the resume refuses a part its marker does not
    describe). The message says so, and following it gives the dataset back."""
    from microplex.scale._layout import layout

    pop = _dataset(tiny_synth, tmp_path / "pop")
    before = read_table(pop)
    part = pop / "black=0" / "part-000001.parquet"
    size = part.stat().st_size
    marker = layout(pop).tasks / "task-000001.json"
    if damage == "deleted":
        part.unlink()
        match = (r"_microplex_manifest\.json' lists the file 'black=0/part-000001\.parquet', which is missing from "
                 r"'.*pop'\. To redo it in place, repeat the call that wrote the dataset \(the same arguments and "
                 r"output directory\)\.$")
    else:
        part.write_bytes(part.read_bytes()[: size // 2])
        match = (rf"lists the file 'black=0/part-000001\.parquet' of {size} bytes; the file in '.*pop' has "
                 rf"{size // 2}\. It was changed or damaged: to redo it in place, delete the marker "
                 rf"'{re.escape(str(marker))}' of its task, then repeat the call that wrote the dataset \(the same arguments and "
                 r"output directory\); or delete the output directory to redo it all\.$")
    for call in (lambda: read_manifest(pop), lambda: read_table(pop), lambda: rake_dataset(pop, MARGINS)):
        with pytest.raises(DataValidationError, match=match):
            call()
    if damage == "truncated":
        with pytest.raises(DataValidationError, match=rf"delete the marker '{re.escape(str(marker))}' to redo it"):  # the resume's
            _dataset(tiny_synth, pop)
        marker.unlink()
    _dataset(tiny_synth, pop)  # as the message says
    assert read_table(pop).equals(before) and part.stat().st_size == size


def test_a_finished_dataset_named_by_a_relative_path_is_read(tiny_synth, tmp_path, monkeypatch):
    """The check for files the manifest does not list compared the absolute folder with the listing's relative paths:
    ``rake_dataset("pop/", ...)`` from the folder above raised a raw ValueError ("... is not in the subpath of ...")."""
    _dataset(tiny_synth, tmp_path / "pop")
    monkeypatch.chdir(tmp_path)
    for path in ("pop", "pop/", "./pop"):
        assert read_manifest(path)["rows"] == 1000
        assert len(read_table(path)) == 1000
        assert rake_dataset(path, MARGINS).summary["n_units"] == 1000
    shutil.copy(Path("pop") / "black=0" / "part-000000.parquet", Path("pop") / "black=0" / "part-000099.parquet")
    with pytest.raises(DataValidationError, match="does not list"):
        read_table("pop")
