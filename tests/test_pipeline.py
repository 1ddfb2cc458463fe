"""End to end: the bundled demo pipeline on a small size, resume, and bad pipeline files."""

import json
from importlib import resources
from pathlib import Path

import pandas as pd
import pytest

from microplex import DataValidationError
from microplex.pipeline import load_pipeline, run_pipeline

DEMO = Path(str(resources.files("microplex.datasets").joinpath("demo", "pipeline.toml")))
SMALL = {"generate.n": 3000, "model.epochs": 3, "sparsify.max_records": 500, "evaluate.max_rows": 3000}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    result = run_pipeline(DEMO, overrides={"output": str(out), **SMALL}, progress=False)
    return out, result


def test_demo_pipeline_outputs(demo_run):
    out, result = demo_run
    assert [s for s in result.stages] == ["fit", "generate", "calibrate", "sparsify", "evaluate"]
    assert len(pd.read_parquet(out / "synthetic.parquet")) == 3000
    calibrated = pd.read_parquet(out / "calibrated.parquet")
    report = pd.read_csv(out / "calibration_report.csv")
    assert report["rel_error"].abs().max() < 1e-6
    assert calibrated["weight"].sum() == pytest.approx(15992, rel=1e-6)
    subset = pd.read_parquet(out / "subset.parquet")
    assert 0 < len(subset) <= 500
    assert (out / "report.html").stat().st_size > 10_000
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rows"] == 3000 and summary["max_target_error"] <= 0.005
    manifest = json.loads((out / ".microplex" / "fit.json").read_text())
    assert manifest["settings"]["seed"] == 0 and manifest["microplex_version"]


def test_rerun_skips_finished_stages_and_a_change_reruns_downstream(demo_run):
    out, _ = demo_run
    again = run_pipeline(DEMO, overrides={"output": str(out), **SMALL}, progress=False)
    assert {s["status"] for s in again.stages.values()} == {"skipped"}
    changed = run_pipeline(DEMO, overrides={"output": str(out), **SMALL, "sparsify.max_records": 400}, progress=False)
    assert changed.stages["calibrate"]["status"] == "skipped"
    assert changed.stages["sparsify"]["status"] == "ran"
    assert changed.stages["evaluate"]["status"] == "ran"


def test_an_interrupted_stage_resumes(demo_run, tmp_path):
    out, _ = demo_run
    (out / ".microplex" / "evaluate.json").unlink()
    resumed = run_pipeline(DEMO, overrides={"output": str(out), **SMALL, "sparsify.max_records": 400}, progress=False)
    assert resumed.stages["sparsify"]["status"] == "skipped"
    assert resumed.stages["evaluate"]["status"] == "ran"


@pytest.mark.parametrize(
    "text, match",
    [
        ("seed = 0\n", "needs a \\[\\[sources\\]\\] list"),
        ('[[sources]]\nname = "a"\npath = "x.csv"\n[model]\ntargets = ["y"]\n', "needs a \\[generate\\] section"),
        ('[[sources]]\nname = "a"\npath = "x.csv"\n[[sources]]\nname = "b"\npath = "y.csv"\n[model]\ntargets=["y"]\n[generate]\nn=1\n',
         "need a \\[fuse\\] section"),
        ('bogus = 1\n[[sources]]\nname = "a"\npath = "x.csv"\n', "Unknown key 'bogus' in the top level"),
    ],
)
def test_bad_pipeline_files_are_named(tmp_path, text, match):
    path = tmp_path / "p.toml"
    path.write_text(text)
    with pytest.raises(DataValidationError, match=match):
        load_pipeline(path)


def test_missing_input_file_is_named(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text('[[sources]]\nname = "a"\npath = "missing.csv"\n[model]\ntargets = ["y"]\n[generate]\nn = 10\n')
    with pytest.raises(DataValidationError, match="missing.csv"):
        run_pipeline(path, progress=False)
