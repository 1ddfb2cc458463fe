import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from microplex import DataValidationError
from microplex.scale import CellCounts, generate_dataset
from microplex.scale import _task_writer
from microplex.scale._layout import layout


def _files(root):
    """Visible data files (relative path -> bytes), as a reader sees them."""
    root = Path(root)
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*.parquet"))
        if not any(part.startswith((".", "_")) for part in p.relative_to(root).parts)
    }


def _rows(root, partition=None):
    """All rows in file order (partition column re-attached), as one frame."""
    frames = []
    for rel in _files(root):
        df = pq.read_table(Path(root) / rel, partitioning=None).to_pandas()
        if partition:
            df[partition] = int(rel.split("/")[0].split("=")[1])
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def _cells():
    grid = pd.MultiIndex.from_product([[20, 35, 50], [9, 12, 16], [0, 1]], names=["age", "educ", "black"])
    cells = grid.to_frame(index=False)
    cells["count"] = np.arange(len(cells)) * 13 % 97 + 20
    return cells


@pytest.mark.parametrize("rows_per_file", [300, 451])
def test_rows_do_not_depend_on_files_or_chunks(tiny_synth, small_blocks, tmp_path, rows_per_file):
    ref = generate_dataset(tiny_synth, n=1900, path=tmp_path / "ref", rows_per_file=1900, seed=3, progress=False)
    got = generate_dataset(tiny_synth, n=1900, path=tmp_path / "x", rows_per_file=rows_per_file, seed=3, progress=False)
    assert ref["rows"] == got["rows"] == 1900
    assert len(got["files"]) == -(-1900 // rows_per_file)
    pd.testing.assert_frame_equal(_rows(tmp_path / "ref"), _rows(tmp_path / "x"), check_exact=True)
    assert pd.read_parquet(tmp_path / "x").shape == (1900, 5)


def test_torch_threads_change_the_draws_by_rounding_at_most(tiny_synth, small_blocks, tmp_path):
    """The values agree to float32 rounding across thread counts (the bytes only at one count: see
    tests/scale/test_s51_inputs.py::test_a_local_run_writes_the_bytes_of_one_thread_by_default)."""
    import torch

    before = torch.get_num_threads()
    generate_dataset(tiny_synth, n=900, path=tmp_path / "one", torch_threads=1, progress=False)
    assert torch.get_num_threads() == before
    generate_dataset(tiny_synth, n=900, path=tmp_path / "two", torch_threads=2, progress=False)
    pd.testing.assert_frame_equal(_rows(tmp_path / "one"), _rows(tmp_path / "two"), rtol=1e-5)
    with pytest.raises(DataValidationError, match="'torch_threads' parameter must be an int >= 1 or None. Got 0"):
        generate_dataset(tiny_synth, n=900, path=tmp_path / "bad", torch_threads=0, progress=False)
    assert not (tmp_path / "bad").exists()


def test_seed_changes_draws_and_conditions_kept(tiny_synth, small_blocks, tmp_path):
    src = CellCounts(_cells())
    generate_dataset(tiny_synth, src, path=tmp_path / "a", seed=1, rows_per_file=700, progress=False)
    generate_dataset(tiny_synth, src, path=tmp_path / "b", seed=2, rows_per_file=700, progress=False)
    a, b = _rows(tmp_path / "a"), _rows(tmp_path / "b")
    pd.testing.assert_frame_equal(a[["age", "educ", "black"]], src.read(0, src.n_rows), check_dtype=False)
    assert not np.array_equal(a["re78"], b["re78"])


def test_partitioned_output_is_hive_and_complete(tiny_synth, small_blocks, tmp_path):
    src = CellCounts(_cells())
    manifest = generate_dataset(
        tiny_synth, src, path=tmp_path / "p", partition_by=["black"], rows_per_file=500, seed=0, progress=False
    )
    dirs = sorted(p.name for p in (tmp_path / "p").iterdir() if not p.name.startswith("_"))
    assert dirs == ["black=0", "black=1"]
    back = pd.read_parquet(tmp_path / "p")
    assert len(back) == src.n_rows == manifest["rows"] == sum(f["rows"] for f in manifest["files"])
    assert back["black"].astype(int).value_counts().to_dict() == src.read(0, src.n_rows)["black"].value_counts().to_dict()
    stored = json.loads(layout(tmp_path / "p").manifest.read_text())
    assert stored["status"] == "complete" and stored["spec"]["model_hash"] == manifest["spec"]["model_hash"]
    assert "black" not in pq.read_schema(tmp_path / "p" / manifest["files"][0]["path"]).names
    # unpartitioned run, same rows: the partitioned dataset is a regrouping of it
    generate_dataset(tiny_synth, src, path=tmp_path / "flat", rows_per_file=500, seed=0, progress=False)
    flat = _rows(tmp_path / "flat")
    part = _rows(tmp_path / "p", partition="black")
    key = ["age", "educ", "black", "re74", "re78"]
    pd.testing.assert_frame_equal(
        flat[key].sort_values(key, ignore_index=True),
        part[key].astype(flat[key].dtypes.to_dict()).sort_values(key, ignore_index=True), check_exact=True,
    )


def test_crash_mid_run_leaves_no_partial_file_and_resumes(tiny_synth, small_blocks, tmp_path, monkeypatch):
    kwargs = dict(n=2000, rows_per_file=400, seed=9, progress=False)
    generate_dataset(tiny_synth, path=tmp_path / "ref", **kwargs)

    real_open, calls = _task_writer._open_writer, []

    def failing_open(path, schema):
        calls.append(path)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return real_open(path, schema)

    monkeypatch.setattr(_task_writer, "_open_writer", failing_open)
    with pytest.raises(OSError, match="No space left"):
        generate_dataset(tiny_synth, path=tmp_path / "run", **kwargs)
    root = tmp_path / "run"
    assert sorted(_files(root)) == ["part-000000.parquet", "part-000001.parquet"]
    assert not list(root.rglob(".tmp-*"))
    assert json.loads(layout(root).manifest.read_text())["status"] == "running"
    assert len(pd.read_parquet(root)) == 800  # only whole files are visible

    # a hard kill would leave a hidden temporary file: readers ignore it, the resume removes it
    (root / ".tmp-microplex-dead-part-000002.parquet.partial").write_bytes(b"PAR1 half written")
    assert len(pd.read_parquet(root)) == 800

    calls.clear()
    monkeypatch.setattr(_task_writer, "_open_writer", lambda p, s: calls.append(p) or real_open(p, s))
    manifest = generate_dataset(tiny_synth, path=root, **kwargs)
    assert len(calls) == 3  # tasks 0 and 1 were skipped
    assert manifest["rows"] == 2000 and not list(root.rglob(".tmp-*"))
    assert _files(root) == _files(tmp_path / "ref")
    # a finished run called again writes nothing
    calls.clear()
    generate_dataset(tiny_synth, path=root, **kwargs)
    assert calls == []


def test_refuses_foreign_output_directory(tiny_synth, tmp_path):
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "data.csv").write_text("a\n1\n")
    with pytest.raises(DataValidationError, match="already holds files .* but no microplex manifest"):
        generate_dataset(tiny_synth, n=10, path=tmp_path / "other", progress=False)
    cond = tiny_synth.training_conditions_.head(10)
    generate_dataset(tiny_synth, cond, path=tmp_path / "run", seed=1, progress=False)
    with pytest.raises(DataValidationError, match=r"holds another run \(differs in \['seed'\]: seed: expected 1, got 2"):
        generate_dataset(tiny_synth, cond, path=tmp_path / "run", seed=2, progress=False)
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataValidationError, match="is a file; give a folder path"):
        generate_dataset(tiny_synth, n=10, path=tmp_path / "file", progress=False)


def test_bad_arguments_are_named(tiny_synth, tmp_path):
    with pytest.raises(DataValidationError, match=r"partition_by columns \['state'\] are not produced"):
        generate_dataset(tiny_synth, n=10, path=tmp_path / "a", partition_by=["state"], progress=False)
    with pytest.raises(DataValidationError, match=r"lacks the model's condition columns \['educ'\]"):
        generate_dataset(tiny_synth, pd.DataFrame({"age": [1], "black": [0]}), path=tmp_path / "b", progress=False)
    with pytest.raises(DataValidationError, match="'n' parameter is required"):
        generate_dataset(tiny_synth, path=tmp_path / "c", progress=False)
    with pytest.raises(DataValidationError, match=r"'n' parameter \(500\) exceeds the 4 rows"):
        generate_dataset(tiny_synth, tiny_synth.training_conditions_.head(4), n=500, path=tmp_path / "d", progress=False)
    with pytest.raises(DataValidationError, match="'rows_per_file' parameter must be an int >= 1. Got 0"):
        generate_dataset(tiny_synth, n=10, path=tmp_path / "e", rows_per_file=0, progress=False)
    assert not any((tmp_path / d).exists() for d in "abcde")


def test_parquet_conditions_stream_like_a_frame(tiny_synth, small_blocks, tmp_path):
    frame = tiny_synth.training_conditions_.head(1300).assign(region=lambda d: d["age"] % 4)
    (tmp_path / "cond").mkdir()
    frame.iloc[:700].to_parquet(tmp_path / "cond" / "0.parquet", row_group_size=128)
    frame.iloc[700:].to_parquet(tmp_path / "cond" / "1.parquet", row_group_size=200)
    kwargs = dict(rows_per_file=500, seed=5, progress=False)
    generate_dataset(tiny_synth, tmp_path / "cond", path=tmp_path / "pq", **kwargs)
    generate_dataset(tiny_synth, frame, path=tmp_path / "df", **kwargs)
    assert _files(tmp_path / "pq") == _files(tmp_path / "df")
    assert list(pd.read_parquet(tmp_path / "pq").columns) == ["age", "educ", "black", "region", "re74", "re78"]
