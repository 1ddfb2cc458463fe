"""Session 76 (pipeline): an input the pipeline file names, replaced by a named pipe or a device while the run goes
on, is refused when its stage starts, naming the setting, and never opened (a pipe is never read to its end)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

SOURCE = "wage,education\n" + "".join(f"{i},{i % 7}\n" for i in range(200))

#: Run in a child process (a pipe opened for reading would block the test for ever): the run, with the conditions
#: file replaced by a named pipe (or a link to /dev/zero) once [fit] is done; prints the error it ends with.
_CHILD = """
import os, sys
from pathlib import Path
from microplex._pipeline_manifest import Manifest
from microplex.pipeline import run_pipeline

folder, kind = Path(sys.argv[1]), sys.argv[2]
finish = Manifest.finish

def finish_then_replace(self, seconds, figures):  # another job replaces the file while [fit] runs
    finish(self, seconds, figures)
    if self.name == "fit":
        (folder / "cond.csv").rename(folder / "cond.moved")
        if kind == "fifo":
            os.mkfifo(folder / "cond.csv")
        else:
            os.symlink("/dev/zero", folder / "cond.csv")

Manifest.finish = finish_then_replace
try:
    run_pipeline(folder / "p.toml", progress=False)
except Exception as e:
    print(type(e).__name__, e)
"""


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_an_input_replaced_by_a_named_pipe_or_a_device_during_the_run_is_refused(tmp_path, kind):
    """Before: the run hung for ever at [generate] (its manifest hashed the pipe, or /dev/zero, to an end that never
    comes); a file moved away was already refused so."""
    (tmp_path / "src.csv").write_text(SOURCE)
    (tmp_path / "cond.csv").write_text("education\n" + "".join(f"{i % 7}\n" for i in range(30)))
    (tmp_path / "p.toml").write_text('output = "out"\n[[sources]]\nname = "w"\npath = "src.csv"\n[model]\n'
                                     'targets = ["wage"]\nconditions = ["education"]\nepochs = 1\n'
                                     '[generate]\nconditions = "cond.csv"\n')
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    try:
        done = subprocess.run([sys.executable, "-c", _CHILD, str(tmp_path), kind], capture_output=True, text=True,
                              timeout=90, env=env)
    except subprocess.TimeoutExpired:
        pytest.fail("the run did not end within 90 s: it hung on the replaced input")
    assert done.stdout.strip() == (
        f"DataValidationError Input file {str(tmp_path / 'cond.csv')!r} ('generate.conditions') is not a regular "
        "file or a folder (a named pipe or a device is never read to its end); it was a file or a folder when the run "
        "started: it was replaced before the stage [generate] read it; give the path of a file or a dataset folder."
    ), done.stdout + done.stderr
    out = tmp_path / "out"
    assert (out / "model.mpx").is_file() and not (out / "synthetic.parquet").exists()
    assert not (out / ".microplex" / "generate.json").exists()
