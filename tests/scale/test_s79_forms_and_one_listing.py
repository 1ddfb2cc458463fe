"""The forms of many numbers asked of a text column are looked up a batch at a time (the same values as all at once);
``read_table`` lists a dataset folder once; a folder below it that cannot be listed is refused, not skipped."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from microplex import DataValidationError
from microplex._params import to_python
from microplex.calibration import design as design_module
from microplex.calibration.design import lookup_forms
from microplex.calibration.filters import NumberedCode
from microplex.io import read_table
from microplex.scale import _layout, generate_dataset
from microplex.scale._layout import data_files, dataset_parts


def _forms_at_once(uniques: pd.Index, values: list) -> list:
    """What :func:`lookup_forms` found before, every form of every value looked up in one call (the rule, written
    plainly)."""
    if pd.api.types.is_numeric_dtype(uniques.dtype):
        return []
    asked = []
    for v in values:
        if isinstance(v, NumberedCode):
            asked += [str(v), int(v), str(int(v)), *design_module._padded_forms(int(v))]
        elif design_module.is_integral_number(v):
            asked += [v, str(int(v)), *design_module._padded_forms(int(v))]
    if not asked:
        return []
    hits = uniques.get_indexer(pd.Index(asked, dtype=object))
    return [to_python(uniques[k]) for k in sorted(set(hits[hits >= 0].tolist()))]


@pytest.mark.parametrize("dtype", [object, "str"])
def test_lookup_forms_looks_the_forms_up_a_batch_at_a_time_finding_what_all_at_once_found(monkeypatch, dtype):
    """Before: about 33 forms of every number built and looked up at once (200,000 numbers asked of a column of
    200,000 padded codes: 492 MiB at peak under tracemalloc); now :data:`PADDED_BATCH` numbers at a time (31.5 MiB),
    the same values."""
    codes = [str(i).zfill(6) for i in range(0, 300, 3)] + ["7", "0042", "-03", "x", "015", "15"]
    uniques = pd.Index(pd.Series(codes, dtype=dtype).unique())
    values = (list(range(300)) + [7, 3.0, -3, 42, 10**20, True, 2.5, "8", NumberedCode("015"), NumberedCode("00008")]
              + list(range(290, 300)))  # numbers asked again in a later batch
    sizes = []
    original = pd.Index.get_indexer

    def recorded(self, target, *args, **kwargs):
        sizes.append(len(target))
        return original(self, target, *args, **kwargs)

    monkeypatch.setattr(design_module, "PADDED_BATCH", 7)
    monkeypatch.setattr(pd.Index, "get_indexer", recorded)
    got = lookup_forms(uniques, values)
    monkeypatch.setattr(pd.Index, "get_indexer", original)
    assert len(sizes) > 40 and max(sizes) <= 7 * (design_module.MAX_CODE_WIDTH + 3)  # a batch of numbers a call
    assert got == _forms_at_once(uniques, values)
    assert {"000003", "7", "0042", "-03", "015", "15"} <= set(got) and "x" not in got
    assert lookup_forms(pd.Index([1, 2]), values) == [] and lookup_forms(uniques, ["x", 2.5, True]) == []


# -- read_table lists a dataset folder once ----------------------------------------------------------------------------
def _plain_folder(tmp_path: Path) -> Path:
    """A folder of Parquet files written by pandas, partitioned by ``g`` (no microplex schema file)."""
    root = tmp_path / "plain"
    frame = pd.DataFrame({"g": ["a", "b", "a", "b", "c"], "x": np.arange(5.0)})
    frame.to_parquet(root, partition_cols=["g"])
    return root


def _generated(tiny_synth, tmp_path: Path) -> Path:
    root = tmp_path / "run"
    generate_dataset(tiny_synth, path=root, n=90, rows_per_file=30, seed=1, partition_by=["black"], progress=False)
    return root


@pytest.mark.parametrize("make, rows", [(_plain_folder, 5), ("generated", 90)], ids=["pandas folder", "generated"])
def test_read_table_lists_a_dataset_folder_once(monkeypatch, tmp_path, tiny_synth, make, rows):
    """Before: ``read_table`` listed the folder three times (the pandas metadata check, the index names, the read)
    and walked it a fourth time (``rglob``) for a file; now once, every step reading that listing."""
    root = _generated(tiny_synth, tmp_path) if make == "generated" else make(tmp_path)
    expected = read_table(root)
    listings, walks = [], []
    original, rglob = _layout.dataset_parts, Path.rglob

    def counted(folder):
        listings.append(folder)
        return original(folder)

    def walked(self, *args, **kwargs):
        walks.append(self)
        return rglob(self, *args, **kwargs)

    monkeypatch.setattr(_layout, "dataset_parts", counted)
    monkeypatch.setattr(Path, "rglob", walked)
    got = read_table(root)
    assert (len(listings), walks) == (1, [])
    pd.testing.assert_frame_equal(got, expected)
    assert len(got) == rows


@pytest.mark.parametrize("names", [["_SUCCESS"], [".hidden/part-0.parquet"], []], ids=["_SUCCESS", "hidden", "empty"])
def test_read_table_refuses_a_folder_without_a_data_file(tmp_path, names):
    """Before: a folder holding only ``_SUCCESS`` (or hidden files) passed the check for a folder without any file,
    and read as a frame of no rows and no columns; now refused as the empty folder is."""
    root = tmp_path / "out"
    root.mkdir()
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame({"x": [1, 2]}).to_parquet(root / name)
    with pytest.raises(DataValidationError, match=r"it is a folder without any file it reads as data \(\*\.parquet"):
        read_table(root)


# -- a folder that cannot be listed ------------------------------------------------------------------------------------
def _unreadable(monkeypatch, folder: Path) -> None:
    """``folder`` cannot be listed (as without read permission: the tests run as root, for whom chmod changes
    nothing)."""
    original = os.scandir

    def scandir(path="."):
        if Path(os.fsdecode(path)) == folder:
            raise PermissionError(13, "Permission denied", os.fsdecode(path))
        return original(path)

    monkeypatch.setattr(os, "scandir", scandir)


def test_a_folder_of_a_dataset_that_cannot_be_listed_is_refused_naming_it(monkeypatch, tmp_path):
    """Before: ``os.walk`` skipped a folder it could not list, and its files were missing from the dataset (3 rows
    read of 5, the partition ``g=a`` lost, no error); now every reader of the listing refuses it, naming it."""
    root = _plain_folder(tmp_path)
    _unreadable(monkeypatch, root / "g=a")
    at = re_path(root / "g=a")
    with pytest.raises(DataValidationError, match=rf"Cannot list the folder {at} of the dataset folder .*Permission "
                                                  "denied.*make it readable"):
        read_table(root)
    with pytest.raises(DataValidationError, match=rf"Cannot list the folder {at}"):
        data_files(root)
    with pytest.raises(DataValidationError, match=rf"Cannot list the folder {at}"):
        dataset_parts(root)


def test_a_dataset_folder_that_cannot_be_listed_is_refused_and_one_that_is_none_lists_nothing(monkeypatch, tmp_path):
    root = _plain_folder(tmp_path)
    assert dataset_parts(tmp_path / "gone") == ([], [])  # no folder: nothing listed, as before
    _unreadable(monkeypatch, root)
    with pytest.raises(DataValidationError, match=rf"Cannot list the folder {re_path(root)} "):
        dataset_parts(root)


def re_path(p: Path) -> str:
    """The quoted path ``p`` as a message shows it, as a regular expression."""
    import re

    return re.escape(repr(str(p)))
