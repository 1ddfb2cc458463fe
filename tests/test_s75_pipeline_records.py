"""Session 75: what a pipeline's stage records are trusted with.

- ``fit`` and ``fuse`` did not fingerprint the area settings (``generate.by``, ``generate.partition_by``,
  ``sparsify.by``, ``model.holdout_by``) that decide which source rows ``dropna`` drops: a run with
  ``generate.by = "region"`` then one without it skipped ``fit`` and kept its 1,560 training records (a fresh
  run: 1,600), and the synthetic weights summed to 1,950 instead of the source's 2,000 records.
- An edited stage record (its checksum failing) counts as absent, but the sweep of stale outputs trusted it:
  a user's file listed in ``generate.json`` was deleted.
- ``summary.json`` survived a failed run and contradicted the files beside it (rows 1,000 beside a
  synthetic.parquet of 1,500).
"""

from __future__ import annotations

import json
import logging
import shutil
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from microplex.datasets import load_dataset
from microplex.pipeline import run_pipeline

ACS12 = Path(str(resources.files("microplex.datasets").joinpath("data", "acs12.csv")))

#: 600 cps1988 records, the first 30 without a region (a condition: the model keeps its missing values, unless
#: the region names areas).
_ROWS, _NO_REGION = 600, 30


def _wages(folder: Path) -> None:
    df = load_dataset("cps1988").sample(_ROWS, random_state=1).reset_index(drop=True)
    df.loc[: _NO_REGION - 1, "region"] = np.nan
    df.to_csv(folder / "src.csv", index=False)


def _config(folder: Path, **generate) -> dict:
    return {"_base": str(folder), "output": "out", "seed": 0,
            "sources": [{"name": "w", "path": "src.csv"}],
            "model": {"targets": ["wage"], "conditions": ["education", "region"], "epochs": 1,
                      "hidden_features": [8], "transforms": 1},
            "generate": {"n": 300, **generate}}


def _statuses(result) -> dict[str, str]:
    return {name: info["status"] for name, info in result.stages.items()}


def _rows(folder: Path) -> int:
    return len(pd.read_parquet(folder / "train.parquet")) + len(pd.read_parquet(folder / "holdout.parquet"))


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_an_area_setting_taken_out_refits_on_the_rows_it_kept(tmp_path):
    _wages(tmp_path)
    run_pipeline({**_config(tmp_path), "output": "fresh"}, progress=False)
    fresh = tmp_path / "fresh"
    assert _rows(fresh) == _ROWS
    run_pipeline(_config(tmp_path, by="region"), progress=False)
    assert _rows(tmp_path / "out") == _ROWS - _NO_REGION  # an area column: its missing rows are dropped
    again = run_pipeline(_config(tmp_path), progress=False)
    assert _statuses(again) == {"fit": "ran", "generate": "ran"}  # (before: fit skipped)
    out = tmp_path / "out"
    assert _rows(out) == _ROWS  # (before: 570)
    for name in ("train.parquet", "holdout.parquet", "model.mpx", "synthetic.parquet"):
        assert (out / name).read_bytes() == (fresh / name).read_bytes(), name
    total = pd.read_parquet(out / "synthetic.parquet")["weight"].sum()
    assert total == pytest.approx(_ROWS, rel=1e-9)  # the source's records (before: 570)
    assert _statuses(run_pipeline(_config(tmp_path), progress=False)) == {"fit": "skipped", "generate": "skipped"}


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_an_area_setting_added_refits_without_the_records_of_no_area(tmp_path):
    """The other order: the model fitted without ``generate.by``, then ``generate.by`` added (before: refused,
    "'region' has 25 training records (of 480) with no value ... a source's default 'dropna = true' drops them", the
    default the user had: the rows were kept only because fit was not run again)."""
    _wages(tmp_path)
    run_pipeline(_config(tmp_path), progress=False)
    added = run_pipeline(_config(tmp_path, by="region"), progress=False)
    assert _statuses(added) == {"fit": "ran", "generate": "ran"}
    out = tmp_path / "out"
    assert _rows(out) == _ROWS - _NO_REGION
    assert not pd.read_parquet(out / "train.parquet")["region"].isna().any()
    run_pipeline({**_config(tmp_path, by="region"), "output": "fresh"}, progress=False)
    for name in ("train.parquet", "model.mpx", "synthetic.parquet"):
        assert (out / name).read_bytes() == (tmp_path / "fresh" / name).read_bytes(), name


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("setting", ["generate.partition_by", "sparsify.by", "model.holdout_by"])
def test_every_area_setting_is_in_the_fit_and_fuse_fingerprints(tmp_path, setting):
    from microplex._pipeline_stages import STAGE_TABLE

    def fingerprint(stage, config):  # as the runner computes a stage's settings
        return {**{s: config.get(s) for s in stage.settings}, **stage.derived(config, {})}

    base = {**_config(tmp_path), "fuse": {"base": "w"}, "sparsify": {"targets": "t.csv"}}
    section, key = setting.split(".")
    changed = {**base, section: {**base[section], key: ["region"] if key == "partition_by" else "region"}}
    for stage in (s for s in STAGE_TABLE if s.name in ("fit", "fuse")):
        assert fingerprint(stage, base) != fingerprint(stage, changed), (stage.name, setting)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_a_holdout_by_setting_added_redoes_the_fused_table(tmp_path):
    """``model.holdout_by`` names areas: [fuse] drops the base rows missing it (acs12's 395 without
    ``employment``), so adding it redoes the fused table, not only the fit (before: fuse skipped, and its table
    kept the rows of no area)."""
    shutil.copy(ACS12, tmp_path / "acs12.csv")
    config = {"_base": str(tmp_path), "output": "out", "seed": 0,
              "sources": [{"name": "acs", "path": "acs12.csv", "columns": ["age", "gender", "employment", "hrs_work"]},
                          {"name": "more", "path": "acs12.csv", "columns": ["age", "gender", "income"]}],
              "fuse": {"base": "acs", "synthesizer": {"epochs": 1, "hidden_features": [8], "transforms": 1}},
              "model": {"targets": ["hrs_work"], "conditions": ["age", "employment"], "epochs": 1,
                        "hidden_features": [8], "transforms": 1},
              "generate": {"n": 300}}
    run_pipeline(config, progress=False)
    fused = pd.read_parquet(tmp_path / "out" / "fused.parquet")
    assert fused["employment"].isna().sum() > 300
    by = {**config, "model": {**config["model"], "holdout_by": "employment"}}
    result = run_pipeline(by, progress=False)
    assert result.stages["fuse"]["status"] == "ran" and result.stages["fit"]["status"] == "ran"
    fused = pd.read_parquet(tmp_path / "out" / "fused.parquet")
    assert not fused["employment"].isna().any()
    assert len(fused) == int(load_dataset("acs12")["employment"].notna().sum())


def _edit_record(out: Path, stage: str, listed: Path) -> None:
    """Lists ``listed`` among the outputs of ``stage``'s record without recomputing its checksum."""
    path = out / ".microplex" / f"{stage}.json"
    record = json.loads(path.read_text())
    record["outputs"][str(listed)] = "0" * 64
    path.write_text(json.dumps(record))


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_an_edited_record_removes_none_of_the_files_it_lists(tmp_path, caplog):
    """The user's ``out/my_notes.csv`` listed in ``generate.json`` (checksum not recomputed): the record counts as
    absent, so the file stays and the stage runs again (before: "Stage generate writes elsewhere now: removing
    its earlier output .../my_notes.csv", the file deleted, then "was edited ...; stage generate runs again")."""
    _wages(tmp_path)
    run_pipeline(_config(tmp_path), progress=False)
    out = tmp_path / "out"
    notes = out / "my_notes.csv"
    notes.write_text("hours of work\n")
    _edit_record(out, "generate", notes)
    with caplog.at_level(logging.INFO, logger="microplex"):
        result = run_pipeline(_config(tmp_path), progress=False)
    assert notes.read_text() == "hours of work\n"
    assert _statuses(result) == {"fit": "skipped", "generate": "ran"}
    assert "removing its earlier output" not in caplog.text
    assert "generate.json is unreadable or was edited; the files it lists are left as they are" in caplog.text


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_an_edited_record_of_a_stage_taken_out_removes_nothing(tmp_path):
    """A stage taken out of the file: a verified record's outputs go (``calibrated.parquet``), an edited record's
    files stay (the record itself is removed either way)."""
    _wages(tmp_path)
    pd.DataFrame({"aggregate": ["count"], "variable": [""], "filter": ["education >= 12"],
                  "value": [500.0]}).to_csv(tmp_path / "t.csv", index=False)
    with_calibrate = {**_config(tmp_path), "calibrate": {"targets": "t.csv"}}
    run_pipeline(with_calibrate, progress=False)
    out = tmp_path / "out"
    notes = out / "my_notes.csv"
    notes.write_text("hours of work\n")
    _edit_record(out, "calibrate", notes)
    run_pipeline(_config(tmp_path), progress=False)
    assert notes.is_file() and (out / "calibrated.parquet").is_file()  # (before: both removed)
    assert not (out / ".microplex" / "calibrate.json").exists()
    run_pipeline(with_calibrate, progress=False)  # a verified record: its outputs go when the stage is taken out
    run_pipeline(_config(tmp_path), progress=False)
    assert not (out / "calibrated.parquet").exists() and notes.is_file()


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_a_failed_run_leaves_no_summary_of_an_earlier_run(tmp_path):
    """The second run generates 450 records, then fails at [calibrate] (a target no record meets): it leaves no
    summary.json (before: the first run's, "rows": 300, beside a synthetic.parquet of 450); the next run that
    ends writes one that matches its files."""
    from microplex import DataValidationError

    _wages(tmp_path)
    for name, region in (("t.csv", "south"), ("bad.csv", "nowhere")):
        pd.DataFrame({"aggregate": ["count"], "variable": [""], "filter": [f"region == '{region}'"],
                      "value": [200.0]}).to_csv(tmp_path / name, index=False)
    config = {**_config(tmp_path), "calibrate": {"targets": "t.csv"}}
    run_pipeline(config, progress=False)
    out = tmp_path / "out"
    assert json.loads((out / "summary.json").read_text())["rows"] == 300
    failing = {**config, "generate": {"n": 450}, "calibrate": {"targets": "bad.csv"}}
    with pytest.raises(DataValidationError, match="nowhere"):
        run_pipeline(failing, progress=False)
    assert len(pd.read_parquet(out / "synthetic.parquet")) == 450  # [generate] ran
    assert not (out / "summary.json").exists()
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".tmp")) == []
    run_pipeline({**config, "generate": {"n": 450}}, progress=False)
    assert json.loads((out / "summary.json").read_text())["rows"] == 450 == len(pd.read_parquet(out / "calibrated.parquet"))


def test_a_run_refused_before_any_work_keeps_the_summary(tmp_path):
    """A run refused by the checks before any work changes no file, so the summary still matches them."""
    from microplex import DataValidationError

    _wages(tmp_path)
    run_pipeline(_config(tmp_path), progress=False)
    summary = (tmp_path / "out" / "summary.json").read_text()
    with pytest.raises(DataValidationError, match="generate.n"):
        run_pipeline({**_config(tmp_path), "generate": {"n": 0}}, progress=False)
    assert (tmp_path / "out" / "summary.json").read_text() == summary
