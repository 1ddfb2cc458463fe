"""Session 70 (atomic): what a pipeline or a command records and leaves behind when a file changes or a write fails.

- A targets file edited while a pipeline ran (after the up-front read, before [calibrate] started) was recorded in
  the stage's manifest with its new hash though the old content was calibrated: the rerun skipped the stage and kept
  ``black == 1`` at 2000 while the file said 5000.
- ``Synthesizer.save`` / ``HouseholdSynthesizer.save`` renamed the model over a pipe (as root ``/dev/null``), and
  into a read-only folder raised a raw PermissionError naming the temporary.
- ``EvaluationReport.to_html`` named its temporary its own way, so a killed pipeline's half-written report stayed in
  the output folder after every later run.
- ``microplex calibrate --report`` renamed the new report into place before writing the output: a failed output
  write left it beside the old output.
"""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pandas as pd
import pytest

import microplex._pipeline_stages as stages
from microplex import DataValidationError
from microplex.pipeline import run_pipeline

def _cps_pipeline(epochs: int, generate: str, tail: str) -> str:
    """A pipeline file on bundled cps1 (re78 given age and black) with ``generate`` and ``tail`` added."""
    return (f'output = "out"\nseed = 1\n[[sources]]\nname = "cps"\npath = "bundled:cps1"\n[model]\n'
            f'targets = ["re78"]\nconditions = ["age", "black"]\nepochs = {epochs}\n[generate]\n{generate}\n{tail}\n')


_PIPELINE = _cps_pipeline(2, "n = 2000\npopulation = 30000", '[calibrate]\ntargets = "t.csv"')


def _targets(folder: Path, value: float) -> None:
    pd.DataFrame({"aggregate": ["count"], "variable": [""], "filter": ["black == 1"],
                  "value": [value]}).to_csv(folder / "t.csv", index=False)


def _pipeline(folder: Path) -> Path:
    _targets(folder, 2000.0)
    (folder / "p.toml").write_text(_PIPELINE)
    return folder / "p.toml"


def _black_total(folder: Path) -> float:
    cal = pd.read_parquet(folder / "out" / "calibrated.parquet")
    return float(cal.loc[cal.black == 1, "weight"].sum())


def test_targets_edited_during_a_run_are_applied_by_the_rerun(tmp_path, monkeypatch):
    config = _pipeline(tmp_path)
    generate = next(s for s in stages.STAGE_TABLE if s.name == "generate")
    original = generate.run

    def generate_then_edit(ctx):  # the user fixes t.csv while the (long) generate runs
        figures = original(ctx)
        _targets(tmp_path, 5000.0)
        return figures

    object.__setattr__(generate, "run", generate_then_edit)
    try:
        first = run_pipeline(config, progress=False)
    finally:
        object.__setattr__(generate, "run", original)
    assert first.stages["calibrate"]["status"] == "ran"
    assert _black_total(tmp_path) == pytest.approx(2000.0, rel=1e-9)  # the values read up front
    second = run_pipeline(config, progress=False)
    assert second.stages["fit"]["status"] == "skipped"
    assert second.stages["calibrate"]["status"] == "ran"  # its record says the 2000 file, which is gone
    assert _black_total(tmp_path) == pytest.approx(5000.0, rel=1e-9)
    third = run_pipeline(config, progress=False)
    assert third.stages["calibrate"]["status"] == "skipped"


def test_targets_file_changing_while_it_is_read_is_refused(tmp_path, monkeypatch):
    import microplex.pipeline as pipeline

    config = _pipeline(tmp_path)
    read = pipeline.read_targets

    def read_then_edit(path, *args, **kwargs):  # another program rewrites t.csv while it is read
        targets = read(path, *args, **kwargs)
        _targets(tmp_path, 5000.0)
        return targets

    monkeypatch.setattr(pipeline, "read_targets", read_then_edit)
    with pytest.raises(DataValidationError, match=r"t\.csv.*changed while the pipeline read it"):
        run_pipeline(config, progress=False)
    assert not (tmp_path / "out" / "calibrated.parquet").exists()


# -- a model saved onto a pipe, or into a read-only folder -------------------------------------------
@pytest.fixture(scope="module")
def fitted():
    from microplex import Synthesizer
    from microplex.datasets import load_dataset

    data = load_dataset("cps1").sample(300, random_state=0)
    return Synthesizer(["re78"], ["age"], epochs=1, verbose=False).fit(data)


@pytest.fixture(scope="module")
def fitted_households():
    from microplex import HouseholdSynthesizer
    from microplex.datasets import load_dataset

    eusilc = load_dataset("eusilc")
    small = eusilc[eusilc["db030"] <= 300].reset_index(drop=True)
    return HouseholdSynthesizer(["db040", "hy090n"], ["rb090"], "db030", epochs=1, hidden_features=(8,),
                                transforms=1, verbose=False).fit(small, seed=0)


@pytest.mark.parametrize("which", ["fitted", "fitted_households"])
def test_save_onto_a_pipe_is_refused_and_the_pipe_kept(tmp_path, which, request):
    model = request.getfixturevalue(which)
    fifo = tmp_path / "model.mpx"
    os.mkfifo(fifo)
    with pytest.raises(DataValidationError, match=r"model\.mpx' is a device, pipe or socket"):
        model.save(fifo)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.mpx"]
    if which == "fitted_households":  # a file object is still written into
        buffer = io.BytesIO()
        model.save(buffer)
        assert buffer.getvalue()[:2] == b"PK"


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores folder permissions")
@pytest.mark.parametrize("which", ["fitted", "fitted_households"])
def test_save_into_a_read_only_folder_names_the_path(tmp_path, which, request):
    model = request.getfixturevalue(which)
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(DataValidationError, match=r"Cannot save to '.*ro/m2\.mpx': folder '.*ro' is not writable"):
            model.save(folder / "m2.mpx")
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o755)


# -- the report temporary of a killed run -----------------------------------------------------------
_EVALUATED = _cps_pipeline(1, "n = 500", "[evaluate]")

_KILLED_WHILE_WRITING_THE_REPORT = '''
import os, pathlib, signal, sys
write_text = pathlib.Path.write_text
def killed(self, text, *args, **kwargs):
    if self.name.startswith(".tmp") and "report" in self.name:
        write_text(self, text[: len(text) // 2], *args, **kwargs)  # half the report written, then the process dies
        os.kill(os.getpid(), signal.SIGKILL)
    return write_text(self, text, *args, **kwargs)
pathlib.Path.write_text = killed
from microplex.pipeline import run_pipeline
run_pipeline(sys.argv[1], progress=False)
'''


def test_a_killed_runs_report_temporary_is_removed_by_the_next_run(tmp_path):
    import signal
    import subprocess
    import sys

    import microplex

    (tmp_path / "p.toml").write_text(_EVALUATED)
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(Path(microplex.__file__).parents[1]), os.environ.get("PYTHONPATH", "")])}
    killed = subprocess.run([sys.executable, "-c", _KILLED_WHILE_WRITING_THE_REPORT, str(tmp_path / "p.toml")],
                            env=env, capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    out = tmp_path / "out"
    half = [p for p in out.iterdir() if p.name.startswith(".tmp") and "report" in p.name and p.stat().st_size > 0]
    assert len(half) == 1 and "<html" in half[0].read_text(encoding="utf-8")  # the half-written report
    result = run_pipeline(tmp_path / "p.toml", progress=False)
    assert result.stages["evaluate"]["status"] == "ran"
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".tmp")) == []
    assert (out / "report.html").read_text(encoding="utf-8").rstrip().endswith("</html>")


# -- microplex calibrate --report: both files of a run or neither -------------------------------------
def test_calibrate_report_is_not_replaced_when_writing_the_output_fails(tmp_path, monkeypatch):
    import errno

    import numpy as np
    from typer.testing import CliRunner

    import microplex.cli as cli

    rng = np.random.default_rng(0)
    pd.DataFrame({"g": rng.integers(0, 2, 400), "weight": 1.0}).to_csv(tmp_path / "data.csv", index=False)

    def calibrate(value: float):
        pd.DataFrame({"aggregate": ["count"], "variable": [""], "filter": ["g == 1"],
                      "value": [value]}).to_csv(tmp_path / "t.csv", index=False)
        return CliRunner().invoke(cli.app, ["calibrate", str(tmp_path / "data.csv"), "--targets", str(tmp_path / "t.csv"),
                                            "-o", str(tmp_path / "cal.parquet"), "--report", str(tmp_path / "rep.csv"),
                                            "-q"])

    first = calibrate(100.0)
    assert first.exit_code == 0, first.output
    cal, rep = (tmp_path / "cal.parquet").read_bytes(), (tmp_path / "rep.csv").read_bytes()
    assert pd.read_csv(tmp_path / "rep.csv")["value"].tolist() == [100.0]

    def disk_full(df, path):  # the output's write fails (the disk is full)
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(cli, "write_parquet_atomic", disk_full)
    second = calibrate(300.0)
    assert second.exit_code == 1 and "No space left on device" in second.output
    assert (tmp_path / "rep.csv").read_bytes() == rep  # the report of the first run, beside its output
    assert (tmp_path / "cal.parquet").read_bytes() == cal
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cal.parquet", "data.csv", "rep.csv", "t.csv"]
    monkeypatch.undo()
    third = calibrate(300.0)
    assert third.exit_code == 0, third.output
    out = pd.read_parquet(tmp_path / "cal.parquet")
    assert out.loc[out.g == 1, "weight"].sum() == pytest.approx(300.0, rel=1e-9)
    assert pd.read_csv(tmp_path / "rep.csv")["value"].tolist() == [300.0]
