"""Inputs of the out-of-core path that gave wrong weights or raw errors (session 75).

- A household whose id is in two households files (each with a persons file of its own) was calibrated as two
  households, with two different weights, and every other household's weight was wrong too: a household's row
  must be in one file. ``rake_dataset(persons=)`` and ``write_calibrated(persons=)`` now refuse an id held by two
  households files, naming it and both files (files whose id ranges do not overlap, as
  ``generate_household_dataset`` writes them, are not read for it).
- A dataset folder holding a file that is not ``*.parquet`` (a ``README.txt``) made ``rake_dataset`` and
  ``write_calibrated`` fail with a raw ``pyarrow.lib.ArrowInvalid``; a ``*.parq`` file was calibrated and copied
  without the schema check the ``*.parquet`` files get. Every reader of a dataset folder now takes the one list of
  its ``*.parquet`` files, and refuses a folder holding any other file (names starting ``.`` or ``_`` skipped), as
  ``read_table`` refuses the ``README.txt`` (pandas, pyarrow and Dask read such files as Parquet, or fail on them).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from microplex._errors import DataValidationError
from microplex.calibration import Calibrator, Targets
from microplex.scale import rake_dataset, write_calibrated

# 4 households (ids 1..4), household 2 of 2 persons; raking to the person counts by sex
_PERSONS = pd.DataFrame({"hid": [1, 2, 2, 3, 4, 4], "sex": ["f", "f", "m", "m", "f", "m"], "w": 10.0})
_TARGETS = {"sex": {"f": 36.0, "m": 24.0}}
#: numpy raking on the household design (persons by sex per household), d = 10; Calibrator(household_col=) agrees
_EXPECTED = np.array([17.365425, 9.317288, 5.365425, 9.317288])


def _household_ref() -> np.ndarray:
    x, t = np.array([[1, 0], [1, 1], [0, 1], [1, 1]], float), np.array([36.0, 24.0])
    d, lam = np.full(4, 10.0), np.zeros(2)
    for _ in range(100):
        w = d * np.exp(x @ lam)
        lam -= np.linalg.solve(x.T @ (x * w[:, None]), x.T @ w - t)
    return d * np.exp(x @ lam)


def _linked(tmp_path, splits):
    """Households and persons folders: file pair k holds the households ``splits[k][0]`` and the persons rows
    ``splits[k][1]``."""
    hh = _PERSONS.groupby("hid", as_index=False).w.first()
    (tmp_path / "h").mkdir()
    (tmp_path / "p").mkdir()
    for k, (ids, rows) in enumerate(splits):
        hh[hh.hid.isin(ids)].to_parquet(tmp_path / "h" / f"part-{k}.parquet", index=False)
        _PERSONS.iloc[rows].to_parquet(tmp_path / "p" / f"part-{k}.parquet", index=False)
    return tmp_path / "h", tmp_path / "p"


def test_reference_household_weights():
    np.testing.assert_allclose(_household_ref(), _EXPECTED, atol=1e-6)
    cal = Calibrator("raking").fit(_PERSONS, Targets.from_margins(_TARGETS), weight_col="w", household_col="hid")
    np.testing.assert_allclose(np.asarray(cal.weights), _household_ref(), rtol=1e-9)


def test_rake_dataset_refuses_a_household_in_two_files(tmp_path):
    # household 2's row in both households files, one of its persons in each persons file: it was calibrated as two
    # households, weighted 13.223748 and 7.223748 (expected one weight, 9.317288), converged, without a word
    h, p = _linked(tmp_path, [([1, 2], [0, 1]), ([2, 3, 4], [2, 3, 4, 5])])
    with pytest.raises(DataValidationError, match=r"id 2 .*'hid'.*part-0\.parquet.*part-1\.parquet"):
        rake_dataset(h, _TARGETS, "w", persons=p, household_id="hid")


def test_write_calibrated_refuses_a_household_in_two_files(tmp_path):
    good = tmp_path / "good"
    good.mkdir()
    h, p = _linked(good, [([1, 2], [0, 1, 2]), ([3, 4], [3, 4, 5])])
    res = rake_dataset(h, _TARGETS, "w", persons=p, household_id="hid")
    weights = np.concatenate([res.weights(pd.read_parquet(h / f"part-{k}.parquet"),
                                          pd.read_parquet(p / f"part-{k}.parquet")) for k in range(2)])
    np.testing.assert_allclose(weights, _household_ref(), rtol=1e-9)
    bad = tmp_path / "bad"
    bad.mkdir()
    h2, p2 = _linked(bad, [([1, 2], [0, 1]), ([2, 3, 4], [2, 3, 4, 5])])
    with pytest.raises(DataValidationError, match=r"id 2 .*'hid'.*part-0\.parquet.*part-1\.parquet"):
        write_calibrated(res, h2, tmp_path / "out_h", persons=p2, persons_out=tmp_path / "out_p")
    assert not (tmp_path / "out_h").exists() and not (tmp_path / "out_p").exists()


def test_overlapping_id_ranges_without_a_shared_id_pass(tmp_path):
    # ids 1, 3 and 2, 4: the files' ranges overlap, so the ids are compared; none is shared, so the solve runs
    h, p = _linked(tmp_path, [([1, 3], [0, 3]), ([2, 4], [1, 2, 4, 5])])
    res = rake_dataset(h, _TARGETS, "w", persons=p, household_id="hid")
    got = {}
    for k in range(2):
        hh = pd.read_parquet(h / f"part-{k}.parquet")
        got.update(zip(hh.hid, res.weights(hh, pd.read_parquet(p / f"part-{k}.parquet")), strict=True))
    np.testing.assert_allclose([got[i] for i in (1, 2, 3, 4)], _household_ref(), rtol=1e-9)


def test_household_ids_as_text_in_two_files_are_refused(tmp_path):
    hh = _PERSONS.groupby("hid", as_index=False).w.first().assign(hid=lambda f: "h" + f.hid.astype(str))
    persons = _PERSONS.assign(hid="h" + _PERSONS.hid.astype(str))
    for name in ("h", "p"):
        (tmp_path / name).mkdir()
    for k, (ids, rows) in enumerate([(["h1", "h2"], [0, 1]), (["h2", "h3", "h4"], [2, 3, 4, 5])]):
        hh[hh.hid.isin(ids)].to_parquet(tmp_path / "h" / f"part-{k}.parquet", index=False)
        persons.iloc[rows].to_parquet(tmp_path / "p" / f"part-{k}.parquet", index=False)
    with pytest.raises(DataValidationError, match=r"id 'h2' .*part-0\.parquet.*part-1\.parquet"):
        rake_dataset(tmp_path / "h", _TARGETS, "w", persons=tmp_path / "p", household_id="hid")


def test_disjoint_id_ranges_are_not_read(tmp_path, monkeypatch):
    # the ranges come from the files' Parquet statistics: files of disjoint ranges are never read for the check
    from microplex.scale import _linked as linked

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    disjoint = linked.linked_pairs(*_linked(tmp_path / "a", [([1, 2], [0, 1, 2]), ([3, 4], [3, 4, 5])]))
    overlapping = linked.linked_pairs(*_linked(tmp_path / "b", [([1, 3], [0, 3]), ([2, 4], [1, 2, 4, 5])]))

    def no_read(*args, **kwargs):
        raise AssertionError("a households file was read")

    monkeypatch.setattr(linked, "_read", no_read)
    linked.check_ids_across(disjoint, "hid")
    with pytest.raises(AssertionError, match="was read"):  # overlapping ranges: the ids are compared
        linked.check_ids_across(overlapping, "hid")


def test_weights_refuse_ids_that_print_alike(tmp_path):
    h, p = _linked(tmp_path, [([1, 2], [0, 1, 2]), ([3, 4], [3, 4, 5])])
    res = rake_dataset(h, _TARGETS, "w", persons=p, household_id="hid")
    hh = pd.DataFrame({"hid": pd.Series([1, "1"], dtype=object), "w": 10.0})
    pp = pd.DataFrame({"hid": pd.Series([1, "1"], dtype=object), "sex": ["f", "m"]})
    # were two households of one person each, weighted as households 1 and 3 would be
    with pytest.raises(DataValidationError, match=r"Household ids 1, '1' of column 'hid'"):
        res.weights(hh, pp)


def _folder(tmp_path, g=("a", "b")):
    """A dataset folder of two files, 1,000 records, half in each category of ``g``."""
    df = pd.DataFrame({"g": list(g) * 500, "w": 1.0})
    src = tmp_path / "data"
    src.mkdir()
    df.iloc[:500].to_parquet(src / "part-0.parquet", index=False)
    df.iloc[500:].to_parquet(src / "part-1.parquet", index=False)
    return src, df


def test_a_text_file_in_a_dataset_folder_is_refused_by_every_reader(tmp_path):
    from microplex.io import read_table
    from microplex.scale import ParquetSource

    src, _ = _folder(tmp_path)
    margins = {"g": {"a": 600.0, "b": 400.0}}
    res = rake_dataset(src, margins)
    (src / "README.txt").write_text("Extract of 2024-01-01\n")
    # were a raw pyarrow.lib.ArrowInvalid ("Could not read schema from '.../README.txt'") from both
    readme = r"Cannot read the (Parquet dataset|Conditions) folder .*data': its file 'README\.txt' is not a \.parquet"
    with pytest.raises(DataValidationError, match=readme):
        rake_dataset(src, margins)
    with pytest.raises(DataValidationError, match=readme):
        write_calibrated(res, src, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(DataValidationError, match=readme):
        ParquetSource(src)
    with pytest.raises(DataValidationError, match=r"Cannot read .*README\.txt"):  # as read_table refuses it
        read_table(src)


def test_a_text_file_in_a_linked_folder_is_refused(tmp_path):
    h, p = _linked(tmp_path, [([1, 2], [0, 1, 2]), ([3, 4], [3, 4, 5])])
    (p / "notes.csv").write_text("a,b\n1,2\n")
    match = r"Cannot read the Parquet dataset folder .*p': its file 'notes\.csv' is not a \.parquet file"
    with pytest.raises(DataValidationError, match=match):
        rake_dataset(h, _TARGETS, "w", persons=p, household_id="hid")


@pytest.mark.parametrize("name", ["part-2.parq", "part-2.pq"])
def test_a_parq_file_is_refused_not_read_unchecked(tmp_path, name):
    # a *.parq file storing the margin as text: the schema check took only *.parquet files, Dask read it too (1,500
    # records calibrated, the text one unchecked) and write_calibrated copied it
    src, df = _folder(tmp_path, g=(1, 2))
    margins = {"g": {1: 600.0, 2: 400.0}}
    res = rake_dataset(src, margins, "w")
    df.iloc[500:].assign(g=lambda x: x.g.astype(str)).to_parquet(src / name, index=False)
    match = rf"Cannot read the Parquet dataset folder .*data': its file '{name}' is not a \.parquet file"
    with pytest.raises(DataValidationError, match=match):
        rake_dataset(src, margins, "w")
    with pytest.raises(DataValidationError, match=match):
        write_calibrated(res, src, tmp_path / "out")


def test_hidden_files_are_skipped_by_every_reader(tmp_path):
    # names starting with '.' or '_' are not data: the checks, pyarrow and pandas skip them; Dask read them (a
    # '.backup.parquet' copy of part 1 was calibrated as 500 more records)
    src, df = _folder(tmp_path)
    (src / "_old").mkdir()
    for hidden in (".backup.parquet", "_old/part-1.parquet", "_x.parquet"):
        df.iloc[500:].to_parquet(src / hidden, index=False)
    margins = {"g": {"a": 600.0, "b": 400.0}}
    for max_cells in (2_000_000, 0):
        res = rake_dataset(src, margins, max_cells=max_cells)
        assert res.summary["n_units"] == 1000
        w = res.weights(df)
        np.testing.assert_allclose(w[df.g.eq("a").to_numpy()], 1.2, rtol=1e-12)
        np.testing.assert_allclose(w[df.g.eq("b").to_numpy()], 0.8, rtol=1e-12)
    write_calibrated(res, src, tmp_path / "out")
    copy = pd.read_parquet(tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").rglob("*")) == ["part-0.parquet", "part-1.parquet"]
    assert copy.groupby("g").weight.sum().to_dict() == pytest.approx({"a": 600.0, "b": 400.0}, rel=1e-12)


def test_a_folder_above_the_dataset_named_like_a_partition_is_no_column(tmp_path):
    # a dataset (no partition folders) below run=7/: Dask took 'run' for a column of the dataset, so a margin on
    # it, which no file has, was calibrated (every record weighted 100 / 1,000) while write_calibrated, reading the
    # files with pyarrow, had no such column
    src = tmp_path / "run=7" / "pop"
    src.mkdir(parents=True)
    pd.DataFrame({"g": ["a", "b"] * 500}).to_parquet(src / "part-0.parquet", index=False)
    with pytest.raises(DataValidationError, match=r"lacks margin or weight columns \['run'\]"):
        rake_dataset(src, {"run": {7: 100.0}})
    res = rake_dataset(src, {"g": {"a": 60.0, "b": 40.0}})
    write_calibrated(res, src, tmp_path / "out")
    copy = pd.read_parquet(tmp_path / "out")
    assert list(copy.columns) == ["g", "weight"]
    assert copy.groupby("g").weight.sum().to_dict() == pytest.approx({"a": 60.0, "b": 40.0}, rel=1e-12)
