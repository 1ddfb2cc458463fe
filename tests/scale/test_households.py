"""Streamed households: two linked datasets with global ids, the same bytes for the same call (local or
Dask, whatever the files), atomic tasks over both datasets and resume."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from microplex import DataValidationError
from microplex.scale import generate_household_dataset
from microplex.scale import households as households_module
from microplex.scale._layout import layout

from .test_generate import _files

HID, PID, W = "db030", "rb030", "db090"


def _read(root):
    h = pd.read_parquet(root / "households").sort_values(HID).reset_index(drop=True)
    p = pd.read_parquet(root / "persons").sort_values(PID).reset_index(drop=True)
    for df in (h, p):
        if "db040" in df:
            df["db040"] = df["db040"].astype(str)
    return h, p[sorted(p.columns)]


def test_linked_datasets_with_global_ids(hs, small_hh_blocks, tmp_path):
    n = 250
    m = generate_household_dataset(hs, n, path=tmp_path, partition_by=["db040"], households_per_file=90, seed=3,
                                   progress=False)
    h, p = _read(tmp_path)
    assert len(h) == n == m["households"]["rows"] and len(p) == m["persons"]["rows"] == h["hsize"].sum()
    assert h[HID].tolist() == list(range(1, n + 1)) and p[PID].is_unique
    # every person belongs to a household, each household has hsize persons, ids decode to the household
    counts = p.groupby(HID).size()
    assert (counts.reindex(h[HID]).to_numpy() == h["hsize"].to_numpy()).all()
    assert ((p[PID] - 1) // hs.max_size_ + 1 == p[HID]).all()
    # the partition column of a person is its household's, and the household weight spreads the training total
    merged = p.merge(h[[HID, "db040"]], on=HID, suffixes=("", "_h"))
    assert len(merged) == len(p) and (merged["db040"] == merged["db040_h"]).all()
    assert np.allclose(h[W], hs.total_weight_ / n) and np.allclose(p[W], hs.total_weight_ / n)
    # persons of a household file lie in the persons file of the same relative path
    files_h = {f["path"] for f in m["households"]["files"]}
    assert files_h == {f["path"] for f in m["persons"]["files"]} and len(files_h) > 3
    for rel in sorted(files_h)[:4]:
        ids_h = set(pd.read_parquet(tmp_path / "households" / rel)[HID])
        assert set(pd.read_parquet(tmp_path / "persons" / rel)[HID]) == ids_h
    assert m["persons"]["household_id"] == HID and m["persons"]["spec"]["linked_to"] == "households"


def test_rows_depend_only_on_the_call_not_on_files(hs, small_hh_blocks, tmp_path):
    kw = dict(seed=5, progress=False)
    a = generate_household_dataset(hs, 200, path=tmp_path / "a", households_per_file=60, **kw)
    b = generate_household_dataset(hs, 200, path=tmp_path / "b", households_per_file=200, **kw)
    generate_household_dataset(hs, 200, path=tmp_path / "c", households_per_file=60, **kw)
    assert a["persons"]["rows"] == b["persons"]["rows"]
    for x, y in zip(_read(tmp_path / "a"), _read(tmp_path / "b"), strict=True):
        pd.testing.assert_frame_equal(x, y, check_exact=True)
    assert _files(tmp_path / "a" / "persons") == _files(tmp_path / "c" / "persons")
    assert _files(tmp_path / "a" / "households") == _files(tmp_path / "c" / "households")
    other = generate_household_dataset(hs, 200, path=tmp_path / "d", households_per_file=60, seed=6, progress=False)
    assert _files(tmp_path / "d" / "persons") != _files(tmp_path / "a" / "persons") and other["households"]["rows"] == 200


def test_resume_redoes_a_task_unless_both_datasets_finished_it(hs, small_hh_blocks, tmp_path):
    kw = dict(households_per_file=50, partition_by="db040", seed=2, progress=False)
    generate_household_dataset(hs, 180, path=tmp_path / "ref", **kw)
    root = tmp_path / "run"
    generate_household_dataset(hs, 180, path=root, **kw)
    (layout(root / "persons").tasks / "task-000001.json").unlink()  # households finished task 1, persons not
    (layout(root / "households").tasks / "task-000003.json").unlink()
    next(iter(sorted((root / "persons").rglob("part-000002.parquet")))).unlink()  # a finished part lost
    manifest = json.loads(layout(root / "households").manifest.read_text())
    manifest["status"] = "running"  # as if the run had stopped
    layout(root / "households").manifest.write_text(json.dumps(manifest))
    generate_household_dataset(hs, 180, path=root, **kw)
    for name in ("households", "persons"):
        assert _files(root / name) == _files(tmp_path / "ref" / name)
    with pytest.raises(DataValidationError, match="holds another run"):
        generate_household_dataset(hs, 180, path=root, **{**kw, "seed": 9})


def test_a_failing_task_leaves_no_file_of_either_dataset(hs, small_hh_blocks, tmp_path, monkeypatch):
    real = households_module._block

    def failing(model, specs, k):
        if k == 2:
            raise OSError(28, "No space left on device")
        return real(model, specs, k)

    monkeypatch.setattr(households_module, "_block", failing)
    with pytest.raises(OSError, match="No space"):
        generate_household_dataset(hs, 200, path=tmp_path, households_per_file=100, seed=1, progress=False)
    # task 0 (blocks 0, 1) finished in both datasets; task 1 (blocks 1, 2) left nothing behind
    for name in ("households", "persons"):
        assert sorted(_files(tmp_path / name)) == ["part-000000.parquet"]
        assert not list((tmp_path / name).rglob(".tmp-microplex-*"))
    monkeypatch.setattr(households_module, "_block", real)
    generate_household_dataset(hs, 200, path=tmp_path, households_per_file=100, seed=1, progress=False)
    assert len(pd.read_parquet(tmp_path / "households")) == 200


def test_bad_arguments_are_refused_before_any_file(hs, tmp_path):
    cases = [
        (dict(model=object()), "fitted HouseholdSynthesizer"),
        (dict(n_households=1e3), "'n_households' parameter"),
        (dict(n_households=-1), "'n_households' parameter"),
        (dict(n_households=0), "'n_households' parameter is 0"),  # was two empty folders without columns
        (dict(partition_by=["age"]), "household columns"),
        (dict(partition_by=["db040", "db040"]), "distinct"),
        (dict(households_per_file=0), "'households_per_file' parameter"),
        (dict(oversample=0), "'oversample' parameter"),
        (dict(seed=-1), "'seed'"),
    ]
    for kw, match in cases:
        args = {"model": hs, "n_households": 10, **kw}
        with pytest.raises(DataValidationError, match=match):
            generate_household_dataset(args.pop("model"), args.pop("n_households"), path=tmp_path / "x",
                                       progress=False, **args)
    assert not (tmp_path / "x").exists()
    (tmp_path / "y").mkdir()
    (tmp_path / "y" / "notes.txt").write_text("mine")
    with pytest.raises(DataValidationError, match="holds files other than"):
        generate_household_dataset(hs, 10, path=tmp_path / "y", progress=False)
    assert sorted(p.name for p in (tmp_path / "y").iterdir()) == ["notes.txt"]


def test_dask_writes_the_same_bytes_as_a_local_run(hs, small_hh_blocks, tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    kw = dict(households_per_file=60, partition_by=["db040"], seed=8, progress=False)
    local = generate_household_dataset(hs, 200, path=tmp_path / "local", **kw)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        dist = generate_household_dataset(hs, 200, path=tmp_path / "dask", client=client, **kw)
    for name in ("households", "persons"):
        assert local[name]["files"] == dist[name]["files"]
        assert _files(tmp_path / "local" / name) == _files(tmp_path / "dask" / name)
