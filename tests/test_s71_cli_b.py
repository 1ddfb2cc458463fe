"""Session 71 command line audit (b): a streamed run refused for bad conditions leaves nothing that blocks the
corrected call, `demo --geo --rows` below the areas' minimum is refused before the fit, and conditions holding the
target columns get one rule in memory and streamed."""

from __future__ import annotations

import os

import pandas as pd
import pytest
from typer.testing import CliRunner

from microplex import DataValidationError, Synthesizer
from microplex.cli import app
from microplex.datasets import load_dataset
from microplex.scale import generate_dataset, read_manifest

runner = CliRunner()


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    """A one-epoch cps1 model of re78 given age and educ, its training records and their conditions."""
    folder = tmp_path_factory.mktemp("s71clib")
    df = load_dataset("cps1").sample(600, random_state=0).reset_index(drop=True)
    df.to_csv(folder / "real.csv", index=False)
    synth = Synthesizer(["re78"], ["age", "educ"], epochs=1, verbose=False).fit(df, seed=0)
    synth.save(folder / "m.mpx")
    return folder, df, synth


def _error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error:")]


def _beside(path) -> list[str]:
    """The entries of ``path``'s parent named after it (the folder and its side folder ``.NAME.microplex``)."""
    return sorted(p for p in os.listdir(path.parent) if path.name in p)


@pytest.mark.parametrize("bad, match", [("forty", "Condition column 'age' must be numeric"),
                                        ("", "Condition column 'age' has 1 missing")])
def test_stream_with_a_bad_condition_value_writes_nothing_and_the_corrected_call_runs(model_files, tmp_path, bad,
                                                                                      match):
    """Before: rc 1 but an empty 'pop/' and '.pop.microplex/' (manifest "running") were left, and the corrected call
    was refused ("holds another run (differs in ['source'] ...) ... repeat the original call to resume")."""
    folder, df, _ = model_files
    cond = df[["age", "educ"]].astype(object)
    cond.iloc[3, 0] = bad
    cond.to_csv(tmp_path / "cond.csv", index=False)
    pop = tmp_path / "pop"
    args = ["generate", str(folder / "m.mpx"), "--conditions", str(tmp_path / "cond.csv"), "--stream", "-o", str(pop),
            "-q"]
    r = runner.invoke(app, args)
    assert r.exit_code == 1, r.output
    lines = _error_lines(r.output)
    assert len(lines) == 1 and match in lines[0], r.output
    assert _beside(pop) == []  # no folder, no side folder
    cond.iloc[3, 0] = 40
    cond.to_csv(tmp_path / "cond.csv", index=False)
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    assert read_manifest(pop)["status"] == "complete" and read_manifest(pop)["rows"] == len(df)
    out = pd.read_parquet(pop)
    assert out["age"].tolist() == cond["age"].astype(int).tolist() and out["re78"].notna().all()


def test_generate_dataset_checks_the_conditions_before_writing(model_files, tmp_path, monkeypatch):
    """The first block's checks (values, types, categories) run before the output folder is prepared."""
    import microplex.scale.generate as gen

    _, df, synth = model_files
    calls = []
    monkeypatch.setattr(gen, "prepare_output", lambda *a, **k: calls.append(a) or set())
    cond = df[["age", "educ"]].assign(age=df["age"].astype(str))  # numbers as text (a CSV read without --numeric)
    with pytest.raises(DataValidationError, match="Condition column 'age' must be numeric"):
        generate_dataset(synth, cond, path=tmp_path / "pop", progress=False)
    with pytest.raises(DataValidationError, match="Condition column 'educ' has 1 missing"):
        generate_dataset(synth, df[["age", "educ"]].astype(float).assign(educ=lambda d: d["educ"].where(d.index != 9)),
                         path=tmp_path / "pop", progress=False)
    assert calls == [] and _beside(tmp_path / "pop") == []


def test_a_run_that_fails_before_finishing_a_task_leaves_nothing(model_files, tmp_path, monkeypatch):
    """A failure before any task finished removes the folder and side folder it created (the corrected call
    starts fresh); one after a finished task keeps them, and the repeated call resumes from there."""
    import microplex.scale.generate as gen

    _, df, synth = model_files
    real_task, failing = gen._run_task, {"task": 0}

    def flaky(synth, source, spec, path, task, start, stop, on_rows=None):
        if task == failing["task"]:
            raise OSError("disk gone")
        return real_task(synth, source, spec, path, task, start, stop, on_rows)

    monkeypatch.setattr(gen, "_run_task", flaky)
    cond, pop = df[["age", "educ"]], tmp_path / "pop"
    with pytest.raises(OSError, match="disk gone"):
        generate_dataset(synth, cond, path=pop, rows_per_file=200, partition_by="educ", progress=False)
    assert _beside(pop) == []
    pop.mkdir()  # a folder that existed (empty) before the call is kept, empty
    with pytest.raises(OSError, match="disk gone"):
        generate_dataset(synth, cond, path=pop, rows_per_file=200, progress=False)
    assert _beside(pop) == ["pop"] and os.listdir(pop) == []
    failing["task"] = 1  # task 0 finishes: the attempt is kept for the repeated call
    with pytest.raises(OSError, match="disk gone"):
        generate_dataset(synth, cond, path=pop, rows_per_file=200, progress=False)
    assert _beside(pop) == [".pop.microplex", "pop"] and read_manifest(pop)["status"] == "running"
    failing["task"] = -1
    manifest = generate_dataset(synth, cond, path=pop, rows_per_file=200, progress=False)
    fresh = generate_dataset(synth, cond, path=tmp_path / "fresh", rows_per_file=200, progress=False)
    assert manifest["rows"] == len(df) and pd.read_parquet(pop).equals(pd.read_parquet(tmp_path / "fresh"))
    assert manifest["files"] == fresh["files"]


def test_demo_geo_refuses_too_few_rows_before_the_fit(tmp_path):
    """Before: refused after the 6-epoch fit (12.9 s), with model.mpx, train.parquet and holdout.parquet written."""
    out = tmp_path / "geo"
    r = runner.invoke(app, ["demo", "--geo", "--rows", "1000", "-o", str(out), "-q"])
    assert r.exit_code == 1, r.output
    lines = _error_lines(r.output)
    assert len(lines) == 1 and "'generate.n' = 1000 leaves 1043 areas of 'puma_id'" in lines[0], r.output
    assert "raise 'generate.n' to 26558" in lines[0], r.output
    written = [p.name for p in out.rglob("*") if p.is_file() and not p.name.startswith((".", "_"))]
    assert not {"model.mpx", "train.parquet", "holdout.parquet"} & set(written), written
    assert "26,558" in runner.invoke(app, ["demo", "--help"]).output


@pytest.mark.parametrize("streamed", [False, True])
def test_conditions_with_the_target_columns_are_refused_in_memory_and_streamed(model_files, tmp_path, streamed):
    """Before: in memory rc 0, the file's real re78 replaced by synthetic values without a word (12.4% equal by
    chance); streamed rc 1 "'conditions' already has target columns ['re78']". Now both refuse with that message."""
    folder, df, _ = model_files
    out = tmp_path / ("pop" if streamed else "out.parquet")
    r = runner.invoke(app, ["generate", str(folder / "m.mpx"), "--conditions", str(folder / "real.csv"), "-o",
                            str(out), "-q", *(["--stream"] if streamed else [])])
    assert r.exit_code == 1, r.output
    lines = _error_lines(r.output)
    assert lines == ["error: '--conditions' already has target columns ['re78']; drop them (the model synthesizes "
                     "them)."], r.output  # the flag (session 76; before, the Python parameter 'conditions')
    assert _beside(out) == []
    r = runner.invoke(app, ["generate", str(folder / "m.mpx"), "--conditions", str(folder / "real.csv"), "-o",
                            str(tmp_path / "x.parquet"), "-q", "--population", "1000"])
    assert r.exit_code == 1 and "already has target columns ['re78']" in r.output


def test_pipeline_refuses_conditions_with_target_columns_in_memory(model_files, tmp_path):
    """The pipeline's in-memory generate stage applies the rule of its streamed one (before: replaced silently)."""
    from microplex.pipeline import run_pipeline

    folder, df, _ = model_files
    df.to_csv(tmp_path / "src.csv", index=False)
    config = {"output": str(tmp_path / "out"), "sources": [{"name": "cps", "path": str(tmp_path / "src.csv")}],
              "model": {"targets": ["re78"], "conditions": ["age", "educ"], "epochs": 1},
              "generate": {"conditions": str(folder / "real.csv")}}
    with pytest.raises(DataValidationError, match=r"'conditions' already has target columns \['re78'\]"):
        run_pipeline(config, progress=False)
    assert not (tmp_path / "out" / "synthetic.parquet").exists()
