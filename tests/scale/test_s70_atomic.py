"""Nothing half-written is read as a dataset: an interrupted generate_dataset run, an interrupted or concurrent
write_calibrated copy; one lock per folder whatever name reaches it; an unwritable output folder refused up front."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from microplex import DataValidationError
from microplex.io import read_table
from microplex.scale import generate_dataset, rake_dataset, read_manifest, write_calibrated
from microplex.scale import generate as generate_module


def _interrupted(synth, path: Path, monkeypatch) -> None:
    """``generate_dataset`` into ``path`` stopped (as by Ctrl-C) during its second task: one of three parts written."""
    calls = {"n": 0}
    run = generate_module._run_task

    def stop(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("simulated Ctrl-C during task 2")
        return run(*args, **kwargs)

    monkeypatch.setattr(generate_module, "_run_task", stop)
    with pytest.raises(KeyboardInterrupt):
        generate_dataset(synth, n=1000, path=path, rows_per_file=400, seed=7, progress=False)
    monkeypatch.setattr(generate_module, "_run_task", run)


def test_an_interrupted_dataset_is_refused_by_every_reader(tiny_synth, tmp_path, monkeypatch):
    """``read_table`` returned 400 of 1,000 rows and ``rake_dataset`` calibrated them (the manifest said 'running')."""
    pop = tmp_path / "pop"
    _interrupted(tiny_synth, pop, monkeypatch)
    assert read_manifest(pop)["status"] == "running"
    assert len(pd.read_parquet(pop)) == 400  # what a reader that does not check sees
    margins = {"black": {0: 600.0, 1: 400.0}}
    calls = [
        lambda: read_table(pop),
        lambda: rake_dataset(pop, margins, None),
        lambda: generate_dataset(tiny_synth, conditions=pop, path=tmp_path / "pop2", progress=False),
    ]
    for call in calls:
        with pytest.raises(DataValidationError, match=r"unfinished generate_dataset run .*1 of 3 tasks finished.*Repeat the call"):
            call()
    # the finished run (the same call repeated) is read
    generate_dataset(tiny_synth, n=1000, path=pop, rows_per_file=400, seed=7, progress=False)
    assert len(read_table(pop)) == 1000
    assert rake_dataset(pop, margins, None).weights(read_table(pop)).sum() == pytest.approx(1000.0, rel=1e-8)


def test_an_interrupted_dataset_is_refused_by_write_calibrated(tiny_synth, tmp_path, monkeypatch):
    """``write_calibrated`` copied the parts written so far, as if they were the population."""
    pop = tmp_path / "pop"
    generate_dataset(tiny_synth, n=1000, path=pop, rows_per_file=400, seed=7, progress=False)
    result = rake_dataset(pop, {"black": {0: 600.0, 1: 400.0}}, None)
    pop2 = tmp_path / "pop2"
    _interrupted(tiny_synth, pop2, monkeypatch)
    with pytest.raises(DataValidationError, match=r"pop2'? holds an unfinished generate_dataset run"):
        write_calibrated(result, pop2, tmp_path / "cal")
    assert not (tmp_path / "cal").exists()


def test_an_interrupted_household_table_is_refused_by_the_linked_readers(hs, tmp_path):
    """The household readers (``rake_dataset(persons=...)``, ``write_calibrated``) had no status check either."""
    import json

    from microplex.scale import generate_household_dataset
    from microplex.scale._layout import layout

    root = tmp_path / "hh"
    generate_household_dataset(hs, 300, path=root, households_per_file=100, seed=1, progress=False)
    margins = {"rb090": {"male": 600.0, "female": 640.0}}
    result = rake_dataset(root / "households", margins, None, persons=root / "persons", household_id="db030")
    for table in ("persons", "households"):  # as an interrupted run leaves each table's manifest
        manifest = layout(root / table).manifest
        record = json.loads(manifest.read_text())
        manifest.write_text(json.dumps({**record, "status": "running"}))
        with pytest.raises(DataValidationError, match=rf"{table}'? holds an unfinished generate_dataset run"):
            rake_dataset(root / "households", margins, None, persons=root / "persons", household_id="db030")
        with pytest.raises(DataValidationError, match=rf"{table}'? holds an unfinished generate_dataset run"):
            write_calibrated(result, root / "households", tmp_path / "h", persons=root / "persons",
                             persons_out=tmp_path / "p")
        manifest.write_text(json.dumps(record))
    assert not (tmp_path / "h").exists() and not (tmp_path / "p").exists()


def test_a_plain_dataset_folder_without_a_manifest_is_still_read(tmp_path):
    pop = tmp_path / "plain"
    pop.mkdir()
    frame = pd.DataFrame({"g": [0, 1, 1, 0], "x": [1.0, 2.0, 3.0, 4.0]})
    frame.to_parquet(pop / "part-0.parquet", index=False)
    assert read_table(pop)["x"].tolist() == [1.0, 2.0, 3.0, 4.0]
    res = rake_dataset(pop, {"g": {0: 10.0, 1: 30.0}}, None)
    np.testing.assert_allclose(res.weights(frame), [5.0, 15.0, 15.0, 5.0], rtol=1e-9)


def _four_files(root: Path) -> Path:
    rng = np.random.default_rng(0)
    src = root / "pop"
    src.mkdir()
    for i in range(4):
        pd.DataFrame({"g": rng.integers(0, 2, 5000), "x": rng.normal(size=5000)}).to_parquet(
            src / f"part-{i}.parquet", index=False)
    return src


def _totals(folder: Path) -> dict:
    frame = pd.read_parquet(folder)
    return frame.groupby("g")["weight"].sum().to_dict()


def test_an_interrupted_calibrated_copy_leaves_no_folder(tmp_path, monkeypatch):
    """Interrupted at file 3 of 4, ``cal/`` held two files under their final names: read as 10,000 of 20,000
    records weighing 49,987 (targets 100,000)."""
    import microplex.scale._calibrated_copy as copy_module

    src = _four_files(tmp_path)
    result = rake_dataset(src, {"g": {0: 60000.0, 1: 40000.0}}, None)
    write, calls = copy_module._write_copy, {"n": 0}

    def failing(frame, target):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("Ctrl-C while writing file 3 of 4")
        write(frame, target)

    monkeypatch.setattr(copy_module, "_write_copy", failing)
    with pytest.raises(KeyboardInterrupt):
        write_calibrated(result, src, tmp_path / "cal")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pop"]  # no copy, no temporary, no side folder
    monkeypatch.setattr(copy_module, "_write_copy", write)
    assert write_calibrated(result, src, tmp_path / "cal") == 20000
    totals = _totals(tmp_path / "cal")
    assert totals[0] == pytest.approx(60000.0, rel=1e-9) and totals[1] == pytest.approx(40000.0, rel=1e-9)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cal", "pop"]


def test_a_second_calibrated_copy_into_the_same_folder_is_refused_while_the_first_writes(tmp_path, monkeypatch):
    """Two calls at once into one new folder both passed the "not empty" check: the folder held files of both
    calibrations (totals {0: 52,562, 1: 47,562.5}, neither's targets), or one failed with a raw FileNotFoundError."""
    import microplex.scale._calibrated_copy as copy_module

    from microplex import MicroplexError

    src = _four_files(tmp_path)
    first = rake_dataset(src, {"g": {0: 60000.0, 1: 40000.0}}, None)
    second = rake_dataset(src, {"g": {0: 30000.0, 1: 70000.0}}, None)
    write, seen = copy_module._write_copy, []

    def racing(frame, target):
        if not seen:  # the second call starts while the first writes its first file
            monkeypatch.setattr(copy_module, "_write_copy", write)
            with pytest.raises(MicroplexError, match=r"cal'? is being written by another write_calibrated call"):
                write_calibrated(second, src, tmp_path / "cal")
            seen.append(True)
        write(frame, target)

    monkeypatch.setattr(copy_module, "_write_copy", racing)
    write_calibrated(first, src, tmp_path / "cal")
    assert seen
    totals = _totals(tmp_path / "cal")
    assert totals[0] == pytest.approx(60000.0, rel=1e-9) and totals[1] == pytest.approx(40000.0, rel=1e-9)
    with pytest.raises(DataValidationError, match="is not empty"):  # after it: the finished copy is kept
        write_calibrated(second, src, tmp_path / "cal")
    assert _totals(tmp_path / "cal")[0] == pytest.approx(60000.0, rel=1e-9)


def test_a_second_run_naming_the_folder_through_a_link_is_refused(tiny_synth, tmp_path, monkeypatch):
    """``pop/`` and ``link -> pop``: each run took its own lock (``.pop.microplex``, ``.link.microplex``), both wrote
    into ``pop/`` and failed at the end, leaving 20 parts mixing the two seeds."""
    from microplex import MicroplexError

    (tmp_path / "pop").mkdir()
    os.symlink(tmp_path / "pop", tmp_path / "link")
    run, seen = generate_module._run_task, []

    def second(*args, **kwargs):
        if not seen:  # while the first run writes its first task
            seen.append(True)
            with pytest.raises(MicroplexError, match=r"pop'? is being written by another generate_dataset run"):
                generate_dataset(tiny_synth, n=1000, path=tmp_path / "link", rows_per_file=400, seed=2, progress=False)
        return run(*args, **kwargs)

    monkeypatch.setattr(generate_module, "_run_task", second)
    generate_dataset(tiny_synth, n=1000, path=tmp_path / "pop", rows_per_file=400, seed=1, progress=False)
    assert seen and sorted(p.name for p in tmp_path.iterdir()) == [".pop.microplex", "link", "pop"]
    monkeypatch.setattr(generate_module, "_run_task", run)
    ref = tmp_path / "ref"
    generate_dataset(tiny_synth, n=1000, path=ref, rows_per_file=400, seed=1, progress=False)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "pop"), pd.read_parquet(ref))
    # the finished folder resumes (as complete) through the link too, with the same side folder
    assert generate_dataset(tiny_synth, n=1000, path=tmp_path / "link", rows_per_file=400, seed=1,
                            progress=False)["rows"] == 1000
    assert not (tmp_path / ".link.microplex").exists()


def test_a_second_household_run_naming_the_folder_through_a_link_is_refused(hs, tmp_path, monkeypatch):
    from microplex import MicroplexError
    from microplex.scale import generate_household_dataset
    from microplex.scale import households as households_module

    (tmp_path / "hh").mkdir()
    os.symlink(tmp_path / "hh", tmp_path / "link")
    run, seen = households_module._run_task, []

    def second(*args, **kwargs):
        if not seen:
            seen.append(True)
            with pytest.raises(MicroplexError, match=r"hh'? is being written by another generate_dataset run"):
                generate_household_dataset(hs, 200, path=tmp_path / "link", households_per_file=100, seed=2,
                                           progress=False)
        return run(*args, **kwargs)

    monkeypatch.setattr(households_module, "_run_task", second)
    generate_household_dataset(hs, 200, path=tmp_path / "hh", households_per_file=100, seed=1, progress=False)
    assert seen and sorted(p.name for p in tmp_path.iterdir()) == ["hh", "link"]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root ignores permissions")
def test_an_existing_read_only_output_folder_is_refused_before_any_work(tiny_synth, tmp_path, monkeypatch):
    """Only the nearest existing parent was tested for writability: ``generate_dataset`` into an existing ``pop/`` of
    mode 555 computed its first task, then raised a raw PermissionError and left ``.pop.microplex/`` behind."""
    pop, out = tmp_path / "pop", tmp_path / "cal"
    pop.mkdir()
    pop.chmod(0o555)
    calls = []
    monkeypatch.setattr(generate_module, "_run_task", lambda *a, **k: calls.append(a))
    try:
        with pytest.raises(DataValidationError, match=r"pop'? is not a writable folder"):
            generate_dataset(tiny_synth, n=100, path=pop, progress=False)
        assert not calls and sorted(p.name for p in tmp_path.iterdir()) == ["pop"]
        (tmp_path / "s").mkdir()
        src = _four_files(tmp_path / "s")
        result = rake_dataset(src, {"g": {0: 6.0, 1: 4.0}}, None)
        out.mkdir()
        out.chmod(0o555)
        with pytest.raises(DataValidationError, match=r"cal'? is not a writable folder"):
            write_calibrated(result, src, out)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["cal", "pop", "s"] and not any(out.iterdir())
    finally:
        pop.chmod(0o755)
        out.chmod(0o755) if out.exists() else None
