"""Trust guards of generate_dataset, the sources and rake_dataset (issue 15).

Each test fails on main at 739bb0e: names that are paths escaped the folder, a second writer
removed the first one's files, a tampered manifest raised raw errors or was trusted, parameters
were accepted or failed with raw errors.
"""

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from microplex import DataValidationError, MicroplexError
from microplex.scale import CellCounts, FrameSource, ParquetSource, Resample, generate_dataset, rake_dataset, rake_frame
from microplex.scale import _lock as lock_module
from microplex.scale._layout import layout
from microplex.scale import generate as generate_module
from microplex.scale import writer as writer_module

from .test_generate import _files


def _conditions(synth, n=40, **extra):
    frame = synth.training_conditions_.head(n).reset_index(drop=True)
    return frame.assign(**{k: (v(frame) if callable(v) else v) for k, v in extra.items()})


def _all_files(root):
    return {p for p in Path(root).rglob("*")}


# --- names that are paths ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, match",
    [
        ("<ABS>", r"Partition column '/.*/escape' cannot name a directory: it has a '/'"),
        ("../up", r"Partition column '\.\./up' cannot name a directory"),
        ("a\\b", r"cannot name a directory: it has a '/', '\\', '='"),
        ("a=b", r"Partition column 'a=b' cannot name a directory"),
        ("nul\x00x", r"cannot name a directory: it has a '/', '\\', '=', NUL"),
        ("", r"non-empty string column names; got non-string or empty names \[''\]"),
        (".hidden", r"a leading '\.' or '_' \(readers skip such directories\)"),
        ("_meta", r"a leading '\.' or '_'"),
    ],
)
def test_partition_column_named_like_a_path_is_refused(tiny_synth, tmp_path, name, match):
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    name = str(tmp_path / "escape") if name == "<ABS>" else name  # absolute, so an escape is seen in tmp_path
    cond = _conditions(tiny_synth, **{name: lambda f: f["age"] % 2})
    before = _all_files(tmp_path)
    with pytest.raises(DataValidationError, match=match):
        generate_dataset(tiny_synth, cond, path=sandbox / "out", partition_by=[name], progress=False)
    assert _all_files(tmp_path) == before  # nothing written, not even the output folder


def test_partition_values_are_percent_encoded_and_read_back(tiny_synth, tmp_path):
    values = np.array(["../../evil", "/abs", "a\\b", "x=y", "caf\u00e9 %2F", ".", ".."], dtype=object)
    cond = _conditions(tiny_synth, 70, region=lambda f: values[np.arange(len(f)) % len(values)])
    root = tmp_path / "out"
    manifest = generate_dataset(tiny_synth, cond, path=root, partition_by=["region"], rows_per_file=25, progress=False)
    real_root = root.resolve()
    for entry in manifest["files"]:
        file = (root / entry["path"]).resolve()
        assert real_root in file.parents  # every file written is inside the output folder
        assert len(Path(entry["path"]).parts) == 2
    meta = layout(root).meta  # the side folder beside the data folder
    assert {p for p in tmp_path.rglob("*")} <= {root, meta} | {p for p in root.rglob("*")} | {p for p in meta.rglob("*")}
    back = pd.read_parquet(root)
    assert sorted(back["region"].astype(str).unique()) == sorted(set(values))
    assert len(back) == 70


def test_partition_value_too_long_for_a_directory_is_refused(tiny_synth, tmp_path):
    cond = _conditions(tiny_synth, 10, code="x" * 300)
    with pytest.raises(DataValidationError, match=r"Partition column 'code' has a value too long for a directory name"):
        generate_dataset(tiny_synth, cond, path=tmp_path / "out", partition_by=["code"], progress=False)
    assert not _files(tmp_path / "out")


def test_inside_refuses_paths_that_resolve_outside(tmp_path):
    root = tmp_path / "out"
    (root / "state=CA").mkdir(parents=True)
    assert writer_module.inside(root, "state=CA/part-000000.parquet") == root / "state=CA/part-000000.parquet"
    for rel in ["/etc/passwd", "../x", "state=CA/../../x", "a\x00b"]:
        with pytest.raises(DataValidationError, match="resolves outside the output directory"):
            writer_module.inside(root, rel)
    (root / "link=1").symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(DataValidationError, match="resolves outside the output directory"):
        writer_module.inside(root, "link=1/part-000000.parquet")


def test_a_partition_directory_linked_outside_is_not_written_through(tiny_synth, tmp_path):
    cond = _conditions(tiny_synth, 30, g=1)
    root = tmp_path / "out"
    generate_dataset(tiny_synth, cond, path=root, partition_by=["g"], rows_per_file=10, progress=False)
    for marker in layout(root).tasks.glob("*.json"):
        if marker.name != "task-000000.json":
            marker.unlink()
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    for part in (root / "g=1").glob("part-00000[12].parquet"):
        part.unlink()
    (root / "g=1").rename(root / "g=1-old")
    (root / "g=1").symlink_to(outside, target_is_directory=True)
    with pytest.raises(DataValidationError, match="resolves outside the output directory"):
        generate_dataset(tiny_synth, cond, path=root, partition_by=["g"], rows_per_file=10, progress=False)
    assert list(outside.iterdir()) == []


def test_a_side_folder_replaced_by_a_link_is_refused(tiny_synth, tmp_path):
    cond = _conditions(tiny_synth, 30, g=1)
    root = tmp_path / "out"
    generate_dataset(tiny_synth, cond, path=root, partition_by=["g"], rows_per_file=10, progress=False)
    meta, elsewhere = layout(root).meta, tmp_path / "elsewhere"
    meta.rename(elsewhere)
    meta.symlink_to(elsewhere, target_is_directory=True)    # markers and temporary files would go through it
    before = _snapshot(root)
    with pytest.raises(DataValidationError, match=r"the side folder of the dataset .* must be a directory \(not a file or link\)"):
        generate_dataset(tiny_synth, cond, path=root, partition_by=["g"], rows_per_file=10, progress=False)
    assert _snapshot(root) == before


# --- one writer per folder --------------------------------------------------------------------


def test_second_writer_refuses_and_leaves_the_first_ones_files(tiny_synth, small_blocks, tmp_path, monkeypatch):
    root = tmp_path / "out"
    kwargs = dict(n=1200, rows_per_file=300, seed=2, progress=False)
    started, release, seen = threading.Event(), threading.Event(), {}
    real_write = writer_module.write_task

    def slow_write(path, task, tables, partition_by=None, **kw):
        info = real_write(path, task, tables, partition_by, **kw)
        if task == 1:
            seen["tmp"] = writer_module._TMP_PREFIX
            started.set()
            release.wait(30)
        return info

    monkeypatch.setattr(generate_module, "write_task", slow_write)
    errors = []
    first = threading.Thread(target=lambda: generate_dataset(tiny_synth, path=root, **kwargs))
    first.start()
    assert started.wait(60)
    before = _files(root)
    lock = json.loads((layout(root).meta / "_microplex.lock").read_text())
    assert lock["pid"] == os.getpid() and lock["host"] == socket.gethostname()
    try:
        generate_dataset(tiny_synth, path=root, **kwargs)
    except MicroplexError as exc:
        errors.append(str(exc))
    release.set()
    first.join(60)
    assert errors and "is being written by another generate_dataset run" in errors[0]
    assert f"pid {os.getpid()}" in errors[0] and "_microplex.lock" in errors[0]
    assert set(before) <= set(_files(root))  # the second call removed nothing
    assert not (layout(root).meta / "_microplex.lock").exists()  # released when the first call ended
    assert json.loads(layout(root).manifest.read_text())["rows"] == 1200


def test_lock_is_released_when_the_run_fails(tiny_synth, tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(generate_module, "write_task", boom)
    with pytest.raises(OSError, match="No space left"):
        generate_dataset(tiny_synth, n=20, path=tmp_path / "out", progress=False)
    assert not (layout(tmp_path / "out").meta / "_microplex.lock").exists()


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _write_lock(root, **fields):
    layout(root).meta.mkdir(parents=True, exist_ok=True)
    info = {
        "pid": os.getpid(), "host": socket.gethostname(), "boot_id": lock_module._boot_id(),
        "pid_ns": lock_module._pid_namespace(), "start": None, "time": "2026-01-01T00:00:00Z", "token": "x",
    }
    info.update(fields)
    (layout(root).meta / "_microplex.lock").write_text(json.dumps(info) if fields.get("raw") is None else fields["raw"])


@pytest.mark.skipif(not Path("/proc/self/ns/pid").exists(), reason="needs /proc to prove a pid dead")
def test_stale_lock_of_a_dead_process_is_taken_over_with_a_warning(tiny_synth, tmp_path, caplog):
    root = tmp_path / "out"
    _write_lock(root, pid=_dead_pid())
    with caplog.at_level("WARNING", logger="microplex.scale._lock"):
        manifest = generate_dataset(tiny_synth, n=20, path=root, progress=False)
    assert manifest["rows"] == 20
    assert "Took over the stale lock" in caplog.text
    assert not (layout(root).meta / "_microplex.lock").exists()


@pytest.mark.parametrize(
    "fields, match",
    [
        ({}, r"being written by another generate_dataset run \(pid \d+ on host"),  # a live process: this one
        ({"host": "another-host", "pid": 12345}, r"pid 12345 on host 'another-host'"),
        ({"raw": "garbage"}, r"an unreadable lock \('garbage'\)"),
        ({"pid": 0}, r"an unreadable lock"),  # pid 0 would signal the process group: never used
        ({"pid": -1}, r"an unreadable lock"),
    ],
)
def test_lock_that_cannot_be_proved_stale_is_reported_with_how_to_clear_it(tiny_synth, tmp_path, fields, match):
    root = tmp_path / "out"
    _write_lock(root, **fields)
    with pytest.raises(MicroplexError, match=match) as info:
        generate_dataset(tiny_synth, n=20, path=root, progress=False)
    assert "delete" in str(info.value) and "_microplex.lock" in str(info.value)
    assert sorted(p.name for p in layout(root).meta.iterdir()) == ["_microplex.lock"] and not root.exists()


# --- untrusted manifest, markers and parts ------------------------------------------------------


@pytest.fixture()
def finished(tiny_synth, tmp_path):
    kwargs = dict(n=90, rows_per_file=30, seed=1, partition_by=["black"], progress=False)
    root = tmp_path / "run"
    generate_dataset(tiny_synth, path=root, **kwargs)
    return root, kwargs


def _snapshot(root):
    """Every file of the data folder and of its side folder (both under ``root.parent``)."""
    top = root.parent
    return {p.relative_to(top).as_posix(): (p.read_bytes() if p.is_file() else None) for p in top.rglob("*")}


def _edit_json(file, fn):
    data = json.loads(file.read_text())
    file.write_text(json.dumps(fn(data)))


MANIFEST_TAMPERS = {
    "not json": (lambda f: f.write_text("{not json"), r"is not valid JSON"),
    "a list": (lambda f: f.write_text("[1, 2]"), r"must hold a JSON object; got list"),
    "version string": (lambda f: _edit_json(f, lambda d: {**d, "format_version": "1"}), r"has format_version '1'"),
    "version 99": (lambda f: _edit_json(f, lambda d: {**d, "format_version": 99}), r"has format_version 99"),
    "version bool": (lambda f: _edit_json(f, lambda d: {**d, "format_version": True}), r"has format_version True"),
    "status": (lambda f: _edit_json(f, lambda d: {**d, "status": "rm -rf"}), r"has status 'rm -rf'"),
    "spec list": (lambda f: _edit_json(f, lambda d: {**d, "spec": []}), r"must hold a 'spec' object"),
    "spec n": (lambda f: _edit_json(f, lambda d: {**d, "spec": {**d["spec"], "n": "90"}}), r"holds another run \(differs in \['n'\]"),
    "files outside": (
        lambda f: _edit_json(f, lambda d: {**d, "files": [{"path": "../../etc/passwd", "rows": 1, "bytes": 1}]}),
        r"lists the file '\.\./\.\./etc/passwd', which is not a data file inside",
    ),
    "huge": (lambda f: f.write_bytes(b" " * (64 * 2**20 + 1)), r"more than the 67108864 a microplex file can be"),
}


@pytest.mark.parametrize("tamper", sorted(MANIFEST_TAMPERS))
def test_tampered_manifest_raises_one_clear_error_and_writes_nothing(tiny_synth, finished, tamper):
    root, kwargs = finished
    fn, match = MANIFEST_TAMPERS[tamper]
    fn(layout(root).manifest)
    before = _snapshot(root)
    with pytest.raises(DataValidationError, match=match):
        generate_dataset(tiny_synth, path=root, **kwargs)
    assert _snapshot(root) == before


MARKER_TAMPERS = {
    "not json": (lambda d: "{", r"is not valid JSON"),
    "extra key": (lambda d: {**d, "exec": "x"}, r"exactly 'task', 'rows' and 'files'"),
    "task": (lambda d: {**d, "task": 2}, r"names task 2; expected 0"),
    "rows": (lambda d: {**d, "rows": 10**9}, r"records 1000000000 rows; task 0 of this run has 30"),
    "path absolute": (
        lambda d: {**d, "files": [{**d["files"][0], "path": "/tmp/x/part-000000.parquet"}]},
        r"lists the file '/tmp/x/part-000000.parquet', which is not a data file inside",
    ),
    "path up": (
        lambda d: {**d, "files": [{**d["files"][0], "path": "black=0/../../part-000000.parquet"}]},
        r"which is not a data file inside",
    ),
    "other task's file": (
        lambda d: {**d, "files": [{**f, "path": f["path"].replace("000000", "000001")} for f in d["files"]]},
        r"task 0 writes part-000000.parquet under \['black'\] directories",
    ),
    "bytes type": (lambda d: {**d, "files": [{**f, "bytes": "big"} for f in d["files"]]}, r"with wrong types"),
}


@pytest.mark.parametrize("tamper", sorted(MARKER_TAMPERS))
def test_tampered_task_marker_raises_one_clear_error_and_writes_nothing(tiny_synth, finished, tamper):
    root, kwargs = finished
    marker = layout(root).tasks / "task-000000.json"
    fn, match = MARKER_TAMPERS[tamper]
    new = fn(json.loads(marker.read_text()))
    marker.write_text(new if isinstance(new, str) else json.dumps(new))
    before = _snapshot(root)
    with pytest.raises(DataValidationError, match=match):
        generate_dataset(tiny_synth, path=root, **kwargs)
    assert _snapshot(root) == before


def test_foreign_marker_name_is_refused(tiny_synth, finished):
    root, kwargs = finished
    (layout(root).tasks / "task-000099.json").write_text("{}")
    with pytest.raises(DataValidationError, match=r"task-000099.json' is not a task marker of this run"):
        generate_dataset(tiny_synth, path=root, **kwargs)


def _first_part(root):
    marker = json.loads((layout(root).tasks / "task-000000.json").read_text())
    return root / marker["files"][0]["path"]


@pytest.mark.parametrize(
    "damage, match",
    [
        (lambda b: b[: len(b) // 2], r"bytes; its task recorded \d+ \(truncated or replaced\?\)"),
        (lambda b: b"\x00" * len(b), r"is not a readable Parquet file"),
        (lambda b: b[:-12] + b"\x00" * 12, r"is not a readable Parquet file"),
    ],
    ids=["truncated", "garbage same size", "damaged footer"],
)
def test_damaged_part_on_resume_raises_and_writes_nothing(tiny_synth, finished, damage, match):
    root, kwargs = finished
    part = _first_part(root)
    part.write_bytes(damage(part.read_bytes()))
    before = _snapshot(root)
    with pytest.raises(DataValidationError, match=match):
        generate_dataset(tiny_synth, path=root, **kwargs)
    assert _snapshot(root) == before


def test_part_of_another_size_and_schema_is_refused(tiny_synth, finished, tmp_path):
    root, kwargs = finished
    part = _first_part(root)
    size = part.stat().st_size
    # a valid Parquet file padded to the recorded size, with other rows: the footer gives it away
    other = tmp_path / "other.parquet"
    pd.DataFrame({"x": np.arange(3)}).to_parquet(other)
    data = other.read_bytes()
    assert len(data) < size
    part.write_bytes(data)
    marker = layout(root).tasks / "task-000000.json"
    _edit_json(marker, lambda d: {**d, "files": [{**f, "bytes": len(data)} if f["path"] == part.relative_to(root).as_posix() else f for f in d["files"]]})
    with pytest.raises(DataValidationError, match=r"holds 3 rows of columns \['x'\]; expected \d+ rows of \['age', 'educ', 're74', 're78'\]"):
        generate_dataset(tiny_synth, path=root, **kwargs)


def test_missing_part_of_a_finished_task_is_redone(tiny_synth, finished, tmp_path):
    root, kwargs = finished
    reference = _files(root)
    part = _first_part(root)
    part.unlink()
    generate_dataset(tiny_synth, path=root, **kwargs)
    assert _files(root) == reference


def test_stray_data_file_in_the_output_is_refused(tiny_synth, finished):
    root, kwargs = finished
    (root / "black=0" / "part-999999.parquet").write_bytes(_first_part(root).read_bytes())
    with pytest.raises(DataValidationError, match=r"holds data files that this run did not write: \['black=0/part-999999.parquet'\]"):
        generate_dataset(tiny_synth, path=root, **kwargs)


# --- parameters -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n": 1e3}, r"The 'n' parameter must be an int in \[0, 9.0072e\+15\]. Got 1000.0 instead"),
        ({"n": -1}, r"The 'n' parameter must be an int in \[0"),
        ({"n": True}, r"The 'n' parameter must be an int in \[0, 9.0072e\+15\]. Got True instead"),
        ({"n": "lots"}, r"The 'n' parameter must be an int in \[0, 9.0072e\+15\]. Got 'lots' instead"),
        ({"n": 2**60}, r"The 'n' parameter must be an int in \[0, 9.0072e\+15\]"),
        ({"n": 10**6, "rows_per_file": 1}, r"would cut n=1000000 rows into 1000000 files|at most 1000000 are allowed"),
        ({"n": 10**7, "rows_per_file": 1}, r"into 10000000 files; at most 1000000 are allowed"),
        ({"rows_per_file": 2.5}, r"The 'rows_per_file' parameter must be an int >= 1. Got 2.5 instead"),
        ({"seed": -1}, r"The 'seed' parameter must be an int in \[0, 2\*\*64 - 1\]. Got -1 instead"),
        ({"seed": None}, r"The 'seed' parameter must be an int in \[0, 2\*\*64 - 1\]. Got None"),
        ({"seed": 1.0}, r"The 'seed' parameter must be an int in \[0, 2\*\*64 - 1\]. Got 1.0 instead"),
        ({"progress": "no"}, r"The 'progress' parameter must be a bool. Got 'no' instead"),
        ({"torch_threads": 1.5}, r"The 'torch_threads' parameter must be an int >= 1 or None. Got 1.5"),
        ({"partition_by": [1]}, r"The 'partition_by' parameter must be a list of distinct column names"),
        ({"partition_by": ["age", "age"]}, r"The 'partition_by' parameter must be a list of distinct column names"),
        ({"client": "tcp://x"}, r"The 'client' parameter must be a dask.distributed.Client or None. Got str"),
        ({"path": ""}, r"The 'path' parameter must be a non-empty str or path-like"),
        ({"path": 3}, r"The 'path' parameter must be a non-empty str or path-like. Got 3"),
    ],
)
def test_generate_dataset_arguments_are_checked_before_any_file(tiny_synth, tmp_path, kwargs, match):
    kwargs = {"n": 20, "path": tmp_path / "out", "progress": False, **kwargs}
    if kwargs["n"] == 10**6:
        kwargs["n"] = 10**6 + 1
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        with pytest.raises(DataValidationError, match=match):
            generate_dataset(tiny_synth, **kwargs)
    finally:
        os.chdir(cwd)
    assert list(tmp_path.iterdir()) == []


def test_synth_must_be_a_fitted_synthesizer(tmp_path):
    with pytest.raises(DataValidationError, match=r"The 'synth' parameter must be a fitted Synthesizer. Got dict"):
        generate_dataset({}, n=1, path=tmp_path / "o", progress=False)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda s: pd.DataFrame([[1, 2]], columns=["age", "age"]), r"distinct, non-empty string column names; got duplicated names \['age'\]"),
        (lambda s: pd.DataFrame({0: [1], "age": [1]}), r"got non-string or empty names \[0\]"),
        (lambda s: _conditions(s, 4, extra=pd.Series([1, "a", 2.5, None], dtype=object)), r"Column 'extra' of 'conditions' cannot be stored in Parquet"),
    ],
)
def test_condition_frames_with_bad_names_or_mixed_types_are_refused(tiny_synth, tmp_path, make, match):
    with pytest.raises(DataValidationError, match=match):
        generate_dataset(tiny_synth, make(tiny_synth), path=tmp_path / "o", progress=False)
    assert not (tmp_path / "o").exists()


def test_a_column_missing_in_a_whole_block_keeps_its_type(tiny_synth, small_blocks, tmp_path):
    cond = _conditions(tiny_synth, 900)
    cond["note"] = pd.Series([None] * 300 + ["x"] * 600, dtype=object)
    generate_dataset(tiny_synth, cond, path=tmp_path / "o", rows_per_file=300, progress=False)
    back = pd.read_parquet(tmp_path / "o")
    assert back["note"].isna().sum() == 300 and (back["note"] == "x").sum() == 600


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: Resample(pd.DataFrame({"x": [1]}), seed=-3), r"The 'seed' parameter must be an int in \[0, 2\*\*64 - 1\]. Got -3"),
        (lambda: Resample(pd.DataFrame({"x": [1]}), block_rows=10**12), r"The 'block_rows' parameter must be an int in \[1, 1e\+07\]"),
        (lambda: Resample(pd.DataFrame({"x": [1]}), block_rows=0.5), r"The 'block_rows' parameter must be an int"),
        (lambda: Resample(pd.DataFrame({"x": [1]}), weights=["a"]), r"Resample weights must be 1 numbers"),
        (lambda: CellCounts(pd.DataFrame({"x": [1], "count": [1e300]})), r"sums to 1e\+300 records; at most 2\*\*53"),
        (lambda: CellCounts(pd.DataFrame({"x": [1], "count": [np.inf]})), r"must hold non-negative integers"),
        (lambda: CellCounts(pd.DataFrame({"x": [1], "n": [1]}), count_col=["n"]), r"The 'count_col' parameter must be a non-empty str"),
        (lambda: FrameSource(pd.DataFrame([[1, 2]], columns=["a", "a"])), r"duplicated names \['a'\]"),
        (lambda: ParquetSource(None), r"The 'path' parameter must be a non-empty str or path-like"),
    ],
)
def test_source_arguments_are_checked(make, match):
    with pytest.raises(DataValidationError, match=match):
        make()


def test_parquet_source_refuses_garbage_and_mismatched_files(tmp_path):
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(DataValidationError, match=r"bad.parquet' is not a readable Parquet file"):
        ParquetSource(tmp_path / "bad.parquet")
    d = tmp_path / "d"
    d.mkdir()
    pd.DataFrame({"x": [1, 2]}).to_parquet(d / "0.parquet")
    pd.DataFrame({"x": ["a", "b"]}).to_parquet(d / "1.parquet")
    with pytest.raises(DataValidationError, match=r"1.parquet' differs from .* in columns \['x'\]"):
        ParquetSource(d)
    with pytest.raises(DataValidationError, match=r"The 'columns' parameter must be a non-empty list of distinct"):
        ParquetSource(d / "0.parquet", columns="x")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"tol": 0}, r"The 'tol' parameter must be a finite float > 0. Got 0 instead"),
        ({"tol": float("nan")}, r"The 'tol' parameter must be a finite float > 0"),
        ({"max_iter": 0}, r"The 'max_iter' parameter must be an int >= 1. Got 0"),
        ({"max_iter": 5.0}, r"The 'max_iter' parameter must be an int >= 1. Got 5.0"),
        ({"force": "yes"}, r"The 'force' parameter must be a bool. Got 'yes'"),
        ({"weight_col": 3}, r"The 'weight_col' parameter must be a column name \(str\) or None. Got 3"),
        ({"margins": {"g": {1: "ten"}}}, r"Margin 'g' totals must be numbers"),
        ({"margins": {"g": {1: True}}}, r"Margin 'g' totals must be numbers"),
        ({"margins": {3: {1: 1.0}}}, r"Margin 3 must be named by a column \(str\) or a tuple"),
        ({"margins": {("g", "g"): {(1, 1): 1.0}}}, r"must be named by a column \(str\) or a tuple of distinct columns"),
        ({"margins": {"g": pd.Series([1.0, 2.0], index=[1, 1])}}, r"Margin 'g' lists a category twice"),
    ],
)
def test_rake_arguments_are_checked(kwargs, match):
    frame = pd.DataFrame({"g": [1, 2, 1, 2], "w": ["a", "b", "c", "d"]})
    kwargs = {"margins": {"g": {1: 2.0, 2: 2.0}}, **kwargs}
    with pytest.raises(DataValidationError, match=match):
        rake_frame(frame, **kwargs)


def test_rake_dataset_arguments_are_checked(tmp_path):
    pd.DataFrame({"g": [1, 2], "w": ["a", "b"]}).to_parquet(tmp_path / "d.parquet")
    with pytest.raises(DataValidationError, match=r"The 'max_cells' parameter must be an int >= 0. Got -1"):
        rake_dataset(tmp_path / "d.parquet", {"g": {1: 1.0, 2: 1.0}}, max_cells=-1)
    with pytest.raises(DataValidationError, match=r"Weight column 'w' must be numeric. Got dtype"):
        rake_frame(pd.read_parquet(tmp_path / "d.parquet"), {"g": {1: 1.0, 2: 1.0}}, weight_col="w")
    with pytest.raises(DataValidationError, match=r"The 'client' parameter must be a dask.distributed.Client or None"):
        rake_dataset(tmp_path / "d.parquet", {"g": {1: 1.0, 2: 1.0}}, client=object())


def test_partition_column_missing_in_every_row_is_refused(tiny_synth, tmp_path):
    cond = _conditions(tiny_synth, 10, note=pd.Series([None] * 10, dtype=object))
    # main wrote a dataset that pandas and pyarrow cannot read back ("couldn't infer type")
    with pytest.raises(DataValidationError, match=r"Partition column 'note' is missing in every row"):
        generate_dataset(tiny_synth, cond, path=tmp_path / "o", partition_by=["note"], progress=False)
    assert not (tmp_path / "o").exists()
