"""Session 71 (scale): a linked calibrated copy's two folders are read only together; a pipeline records the hash of
the source and conditions bytes its stages used.

- ``write_calibrated(..., persons=, persons_out=)`` published its two folders one after the other: stopped between
  the two renames, it left a households folder of the new calibration and no persons folder, and the linked readers
  (``rake_dataset(persons=)``, ``write_calibrated``) read that households folder beside the persons folder of an
  earlier call without a word.
- A pipeline stage hashed its sources (and the conditions file) when it started and read them afterwards: a file
  edited in between was recorded with the hash of content the stage never used.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from microplex import DataValidationError
from microplex.scale import _calibrated_copy, rake_dataset, write_calibrated
from microplex.scale._layout import layout

HID = "hid"


def _pair(root: Path) -> tuple[Path, Path]:
    """A households and a persons dataset of two files each (60 households of 1 to 3 persons)."""
    rng = np.random.default_rng(0)
    h_root, p_root = root / "households", root / "persons"
    for part in range(2):
        ids = np.arange(part * 30, part * 30 + 30)
        hh = pd.DataFrame({HID: ids, "region": np.where(ids % 3 == 0, "north", "south")})
        size = rng.integers(1, 4, len(ids))
        pp = pd.DataFrame({HID: np.repeat(ids, size), "sex": rng.choice(["f", "m"], int(size.sum()))})
        for folder, frame in ((h_root, hh), (p_root, pp)):
            folder.mkdir(parents=True, exist_ok=True)
            frame.to_parquet(folder / f"part-{part}.parquet", index=False)
    return h_root, p_root


def _rake(h_root: Path, p_root: Path, scale: float):
    persons = pd.read_parquet(p_root)
    counts = persons.groupby("sex").size().astype(float) * scale
    return rake_dataset(h_root, {"sex": counts.to_dict()}, None, persons=p_root, household_id=HID)


def _stop_before_the_persons_rename(monkeypatch) -> None:
    """``write_calibrated`` stopped (as by Ctrl-C or a kill) after renaming its households folder into place."""
    publish = _calibrated_copy._publish
    calls = {"n": 0}

    def stop(tmp, dst):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("simulated Ctrl-C between the two renames")
        publish(tmp, dst)

    monkeypatch.setattr(_calibrated_copy, "_publish", stop)


def test_folders_of_two_calibrated_copies_are_not_read_as_a_pair(tmp_path, monkeypatch):
    """Before: rake_dataset(h2, persons=p1) calibrated the households of the second copy with the persons of the
    first without a word (and write_calibrated copied them), after the second call stopped between its renames."""
    h_root, p_root = _pair(tmp_path / "src")
    first, second = _rake(h_root, p_root, 1.1), _rake(h_root, p_root, 1.3)
    write_calibrated(first, h_root, tmp_path / "h1", persons=p_root, persons_out=tmp_path / "p1")
    _stop_before_the_persons_rename(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        write_calibrated(second, h_root, tmp_path / "h2", persons=p_root, persons_out=tmp_path / "p2")
    monkeypatch.undo()
    assert (tmp_path / "h2").is_dir() and not (tmp_path / "p2").exists()  # the half this call published
    p1, n = pd.read_parquet(tmp_path / "p1"), len(pd.read_parquet(p_root))
    h2 = pd.read_parquet(tmp_path / "h2").set_index(HID)["weight"]
    assert p1["weight"].sum() == pytest.approx(1.1 * n, rel=1e-9)
    assert h2.reindex(p1[HID]).sum() == pytest.approx(1.3 * n, rel=1e-9)  # the pair (h2, p1): two calibrations
    mixed = r"households folder '[^']*h2' and the persons folder '[^']*p1' were not written together"
    with pytest.raises(DataValidationError, match=mixed):
        rake_dataset(tmp_path / "h2", {"sex": {"f": 1.0, "m": 1.0}}, None, persons=tmp_path / "p1", household_id=HID)
    with pytest.raises(DataValidationError, match=mixed):
        write_calibrated(first, tmp_path / "h2", tmp_path / "h3", persons=tmp_path / "p1", persons_out=tmp_path / "p3")
    assert not (tmp_path / "h3").exists() and not (tmp_path / "p3").exists()
    # a calibrated half beside the uncalibrated persons (or the reverse) is refused too
    with pytest.raises(DataValidationError, match=r"households folder '[^']*h1' and the persons folder '[^']*persons'"):
        rake_dataset(tmp_path / "h1", {"sex": {"f": 1.0, "m": 1.0}}, None, persons=p_root, household_id=HID)
    reverse = r"households folder '[^']*households' and the persons folder '[^']*p1'"
    with pytest.raises(DataValidationError, match=reverse):
        rake_dataset(h_root, {"sex": {"f": 1.0, "m": 1.0}}, None, persons=tmp_path / "p1", household_id=HID)
    # the two folders of one call are read together
    again = rake_dataset(tmp_path / "h1", {"sex": {"f": 1.0, "m": 1.0}}, None, persons=tmp_path / "p1",
                         household_id=HID)
    assert again.converged


def test_a_calibrated_pair_records_one_content_derived_id(tmp_path):
    """Both folders' records hold the same id, derived from the bytes written: the same call repeated writes the
    same bytes, records included; another calibration records another id."""
    h_root, p_root = _pair(tmp_path / "src")
    first = _rake(h_root, p_root, 1.1)
    write_calibrated(first, h_root, tmp_path / "a" / "h", persons=p_root, persons_out=tmp_path / "a" / "p")
    write_calibrated(first, h_root, tmp_path / "b" / "h", persons=p_root, persons_out=tmp_path / "b" / "p")
    write_calibrated(_rake(h_root, p_root, 1.3), h_root, tmp_path / "c" / "h", persons=p_root,
                     persons_out=tmp_path / "c" / "p")

    def files(folder: Path) -> dict[str, bytes]:
        return {f.relative_to(folder).as_posix(): f.read_bytes() for f in sorted(folder.rglob("*")) if f.is_file()}

    assert files(tmp_path / "a") == files(tmp_path / "b")
    records = {k: json.loads((layout(tmp_path / "a" / k).meta / "_microplex_link.json").read_text()) for k in "hp"}
    assert records["h"]["calibration"] == records["p"]["calibration"]
    assert (records["h"]["role"], records["p"]["role"]) == ("households", "persons")
    digest = hashlib.sha256()
    for role, name in (("households", "h"), ("persons", "p")):
        for f in sorted((tmp_path / "a" / name).rglob("*.parquet")):
            rel = f.relative_to(tmp_path / "a" / name).as_posix()
            digest.update(f"{role}\0{rel}\0{hashlib.sha256(f.read_bytes()).hexdigest()}\n".encode())
    assert records["h"]["calibration"] == digest.hexdigest()
    other = json.loads((layout(tmp_path / "c" / "h").meta / "_microplex_link.json").read_text())
    assert other["calibration"] != records["h"]["calibration"]
    # the two halves of two calls are refused whichever is the households
    with pytest.raises(DataValidationError, match=r"were not written together"):
        rake_dataset(tmp_path / "c" / "h", {"sex": {"f": 1.0, "m": 1.0}}, None, persons=tmp_path / "a" / "p",
                     household_id=HID)


@pytest.mark.parametrize("text, problem", [
    ("{", "is not valid JSON"),
    ('{"calibration": "ab", "role": "households"}', "must hold"),
    ('{"calibration": 5, "role": "persons", "x": 1}', "must hold"),
])
def test_a_damaged_link_record_is_refused_naming_it(tmp_path, text, problem):
    h_root, p_root = _pair(tmp_path / "src")
    write_calibrated(_rake(h_root, p_root, 1.1), h_root, tmp_path / "h", persons=p_root, persons_out=tmp_path / "p")
    (layout(tmp_path / "p").meta / "_microplex_link.json").write_text(text)
    with pytest.raises(DataValidationError, match=r"\.p\.microplex/_microplex_link\.json'? " + problem):
        rake_dataset(tmp_path / "h", {"sex": {"f": 1.0, "m": 1.0}}, None, persons=tmp_path / "p", household_id=HID)


def test_swapped_halves_of_one_copy_are_refused(tmp_path):
    h_root, p_root = _pair(tmp_path / "src")
    write_calibrated(_rake(h_root, p_root, 1.1), h_root, tmp_path / "h", persons=p_root, persons_out=tmp_path / "p")
    with pytest.raises(DataValidationError, match=r"'[^']*p' holds the persons of a calibrated copy"):
        rake_dataset(tmp_path / "p", {"sex": {"f": 1.0, "m": 1.0}}, None, persons=tmp_path / "h", household_id=HID)


# -- a pipeline's sources and conditions: the hash recorded is that of the bytes the stage read ---------------------
_SOURCE_PIPELINE = ('output = "out"\nseed = 1\n[[sources]]\nname = "cps"\npath = "cps.csv"\n[model]\n'
                    'targets = ["re78"]\nconditions = ["age", "black"]\nepochs = 1\n[generate]\nn = 300\n{extra}\n')


def _cps(folder: Path, rows: int) -> None:
    from microplex.datasets import load_dataset

    load_dataset("cps1")[["age", "black", "re78"]].iloc[:rows].to_csv(folder / "cps.csv", index=False)


def _edit_when(stage: str, edit, monkeypatch) -> None:
    """``edit()`` run when ``stage`` starts: after its manifest hashed its inputs, before the stage reads them."""
    from microplex import _pipeline_manifest as manifests

    start = manifests.Manifest.start

    def start_then_edit(self):
        start(self)
        if self.name == stage:
            edit()

    monkeypatch.setattr(manifests.Manifest, "start", start_then_edit)


def _record(folder: Path, stage: str) -> dict:
    return json.loads((folder / "out" / ".microplex" / f"{stage}.json").read_text())


def test_a_source_edited_as_its_stage_starts_is_not_recorded_as_used(tmp_path, monkeypatch):
    """Before: fit trained on the edited 400-row file (320 training rows) while its record kept the hash of the
    600-row file hashed at the stage's start; with the file put back, the rerun skipped fit and kept that model."""
    from microplex import Synthesizer
    from microplex.io import file_sha256
    from microplex.pipeline import run_pipeline

    _cps(tmp_path, 600)
    (tmp_path / "p.toml").write_text(_SOURCE_PIPELINE.format(extra=""))
    _edit_when("fit", lambda: _cps(tmp_path, 400), monkeypatch)
    with pytest.raises(DataValidationError, match=r"cps\.csv'? changed after the stage \[fit\] started"):
        run_pipeline(tmp_path / "p.toml", progress=False)
    monkeypatch.undo()
    assert not (tmp_path / "out" / ".microplex" / "fit.json").exists()
    _cps(tmp_path, 600)  # the file put back
    first = run_pipeline(tmp_path / "p.toml", progress=False)
    assert first.stages["fit"]["status"] == "ran"
    assert _record(tmp_path, "fit")["inputs"][str(tmp_path / "cps.csv")] == file_sha256(tmp_path / "cps.csv")
    model = Synthesizer.load(tmp_path / "out" / "model.mpx")
    assert len(model.training_conditions_) == first.stages["fit"]["train_rows"] == 480  # 80% of the 600 rows


def test_a_conditions_file_edited_as_generate_starts_is_not_recorded_as_used(tmp_path, monkeypatch):
    """Before: generate drew one record per row of the edited 50-row file and recorded the 200-row file's hash;
    with the file put back, the rerun skipped generate and kept the 50 records."""
    from microplex.io import file_sha256
    from microplex.pipeline import run_pipeline

    _cps(tmp_path, 600)
    conditions = tmp_path / "cond.csv"

    def write_conditions(rows: int) -> None:
        pd.DataFrame({"age": np.arange(rows) % 40 + 20, "black": np.arange(rows) % 2}).to_csv(conditions, index=False)

    write_conditions(200)
    (tmp_path / "p.toml").write_text(_SOURCE_PIPELINE.replace("n = 300\n", "").format(extra='conditions = "cond.csv"'))
    _edit_when("generate", lambda: write_conditions(50), monkeypatch)
    with pytest.raises(DataValidationError, match=r"cond\.csv'? changed after the stage \[generate\] started"):
        run_pipeline(tmp_path / "p.toml", progress=False)
    monkeypatch.undo()
    assert not (tmp_path / "out" / ".microplex" / "generate.json").exists()
    write_conditions(200)
    again = run_pipeline(tmp_path / "p.toml", progress=False)
    assert again.stages["fit"]["status"] == "skipped" and again.stages["generate"]["status"] == "ran"
    assert again.stages["generate"]["rows"] == 200
    assert _record(tmp_path, "generate")["inputs"][str(conditions)] == file_sha256(conditions)
