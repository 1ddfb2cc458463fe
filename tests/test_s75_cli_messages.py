"""Session 75 (command line messages): the library's errors reach a command-line user naming the flag the user
typed (``--max-records=1 is below ...``, ``The '--n' option is 0 ...``), not the Python parameter, while the
Python API keeps naming the parameter; a full disk in a pipeline stage (``microplex run``, ``microplex demo``)
names the output being written."""

from __future__ import annotations

import errno
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from microplex import Synthesizer
from microplex._errors import DataValidationError
from microplex._params import check_float, named
from microplex.calibration import SparseCalibrator
from microplex.io import read_targets
from microplex.cli import app
from microplex.scale import generate_dataset

from _cli_output import error_line as _error_line

pytestmark = pytest.mark.usefixtures("one_torch_thread")

runner = CliRunner()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """300 records (age, sex, income; ``dw.csv`` with a weight column ``w``), sex targets, public metadata and a
    1-epoch model of income."""
    folder = tmp_path_factory.mktemp("s75cli")
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"age": rng.integers(18, 80, 300), "sex": rng.choice(["f", "m"], 300),
                       "inc": rng.lognormal(10, 1, 300).round(0)})
    df.to_csv(folder / "d.csv", index=False)
    df.assign(w=1.0).to_csv(folder / "dw.csv", index=False)
    (folder / "t.csv").write_text("sex,value\nf,150\nm,150\n")
    (folder / "public.yaml").write_text("bounds:\n  inc: [0, 10000000]\n  age: [18, 80]\ncategories:\n  sex: [f, m]\n")
    Synthesizer(["inc"], ["age", "sex"], epochs=1, verbose=False, hidden_features=(8,), transforms=1).fit(
        df, seed=0).save(folder / "m.mpx")
    return folder


_TOO_FEW = ("--max-records=1 is below the 2 records the targets need within tolerance 0.005 (the support of the "
            "linear-programming vertex); a balanced sample of 1 records reaches a max relative error of 1. Raise "
            "--max-records or the tolerance.")
_NO_RECORD = ("The '--n' option is 0 (or '--conditions' has no rows): a streamed dataset of no record is an empty "
              "folder, with no columns for a reader to find.")


@pytest.mark.parametrize("args, message", [
    (["sparsify", "{d}/d.csv", "--targets", "{d}/t.csv", "--max-records", "1", "-o", "{o}/s.parquet"], _TOO_FEW),
    (["sparsify", "{d}/d.csv", "--targets", "{d}/t.csv", "--max-records", "1", "--method", "l1", "-o",
      "{o}/s.parquet"],
     "The 'l1' vertex keeps 2 records, more than --max-records=1; use --method='l0' for a budget, or raise "
     "--max-records."),
    (["generate", "{d}/m.mpx", "--n", "0", "--stream", "-o", "{o}/pop"], _NO_RECORD),
    (["generate", "{d}/m.mpx", "--n", "3e6", "--stream", "--rows-per-file", "1", "-o", "{o}/pop"],
     "The '--rows-per-file' option (1) would cut --n=3000000 rows into 3000000 files; at most 1000000 are allowed. "
     "Use a larger --rows-per-file."),
    (["generate", "{d}/m.mpx", "--n", "5", "--partition-by", "zzz", "-o", "{o}/pop"],
     "--partition-by columns ['zzz'] are not produced by the model or the conditions; expected some of "
     "['age', 'sex', 'inc']."),
    (["calibrate", "{d}/dw.csv", "--targets", "{d}/t.csv", "--weight", "w", "--household", "w", "-o",
      "{o}/c.parquet"],
     "--household and --weight are both 'w'; expected the household id column and the weight column to be two "
     "different columns."),
    (["sparsify", "{d}/dw.csv", "--targets", "{d}/t.csv", "--weight", "w", "--household", "w", "-o",
      "{o}/s.parquet"], "--household and --weight are both 'w'"),
    (["fit", "{d}/d.csv", "--targets", "inc", "--conditions", "age,sex", "--epsilon", "-1", "--delta", "1e-5",
      "--public", "{d}/public.yaml", "-q", "-o", "{o}/m.mpx"],
     "The '--epsilon' option must be a finite float > 0. Got -1.0 instead."),
    (["evaluate", "{d}/dw.csv", "{d}/dw.csv", "--synthetic-weight", "w", "--no-pmse", "--report", "{o}/r.html"],
     "The synthetic weight column 'w' is also a column of real_df, where it would be scored as a variable: rename "
     "it or pass --weight='w'."),
])
def test_library_errors_name_the_flag(files, tmp_path, args, message):
    """Errors the library raises on a value the command line passed on named the Python parameter ("max_records=1
    is below ...", "The 'n' parameter is 0 (or 'conditions' has no rows)", "household_col and weight_col are both",
    "The 'epsilon' parameter must be a finite float > 0 or None"): now the flag the user typed."""
    line = _error_line(runner.invoke(app, [a.format(d=files, o=tmp_path) for a in args]))
    assert line.startswith(f"error: {message}"), line
    without_flags = re.sub(r"--[a-z-]+", "", line)
    for python_name in ("max_records", "'n'", "rows_per_file", "partition_by", "household_col", "weight_col",
                        "'epsilon'", "or None", "method="):
        assert python_name not in without_flags, line
    assert list(tmp_path.iterdir()) == []


def test_the_python_api_still_names_the_parameters(files, tmp_path):
    """The same errors from Python name the parameters, also after a command ran in this process (the flags hold
    only while a verb runs)."""
    _error_line(runner.invoke(app, ["sparsify", f"{files}/d.csv", "--targets", f"{files}/t.csv",
                                    "--max-records", "1", "-o", f"{tmp_path}/s.parquet"]))
    df = pd.read_csv(files / "d.csv").assign(weight=1.0)
    with pytest.raises(DataValidationError) as caught:
        SparseCalibrator(max_records=1).fit(df, read_targets(files / "t.csv"), weight_col="weight")
    assert str(caught.value) == _TOO_FEW.replace("--max-records", "max_records")
    synth = Synthesizer.load(files / "m.mpx")
    with pytest.raises(DataValidationError) as caught:
        generate_dataset(synth, n=0, path=tmp_path / "pop", progress=False)
    assert str(caught.value).startswith(_NO_RECORD.replace("'--n' option", "'n' parameter").replace(
        "'--conditions'", "'conditions'"))
    with pytest.raises(DataValidationError, match=r"^The 'epsilon' parameter must be a finite float > 0 or None\. "):
        Synthesizer(["inc"], ["age"], epsilon=-1.0, delta=1e-5).fit(df[["age", "inc"]], seed=0)
    assert named("n") == "The 'n' parameter"


def test_flags_name_only_the_parameters_they_map_and_only_within():
    """The mapping acts on parameter names only (a column named like a parameter is shown as it is) and is undone
    after the block, also when the block raises."""
    from microplex._params import flags, shown

    with pytest.raises(DataValidationError) as caught, flags({"tolerance": "--tolerance"}):
        assert shown("max_records") == "max_records"
        check_float(-1.0, "tolerance", low=0.0, allow_none=True)
    assert str(caught.value) == "The '--tolerance' option must be a finite float >= 0. Got -1.0 instead."
    assert shown("tolerance") == "tolerance"


def test_a_column_named_like_a_parameter_is_not_renamed(files, tmp_path):
    """``--weight max_records`` names a column: the message about it keeps its name (no text substitution)."""
    df = pd.read_csv(files / "d.csv").assign(max_records=0.0)
    df.to_csv(tmp_path / "z.csv", index=False)
    line = _error_line(runner.invoke(app, ["sparsify", str(tmp_path / "z.csv"), "--targets", f"{files}/t.csv",
                                           "--weight", "max_records", "-o", str(tmp_path / "out" / "s.parquet")]))
    assert "'max_records'" in line and "--max-records" not in line, line
    assert Path(tmp_path / "out").exists() is False


_FULL = "[Errno 28] No space left on device"


def _full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def _pipeline(folder: Path, cps1, evaluate: bool = True) -> Path:
    """A 1-epoch pipeline of 200 CPS records, 50 synthetic ones and (with ``evaluate``) a report."""
    cps1.head(200)[["age", "marr", "re78"]].to_parquet(folder / "train.parquet")
    path = folder / "p.toml"
    path.write_text('output = "out"\nseed = 0\n[[sources]]\nname = "cps"\npath = "train.parquet"\n'
                    '[model]\ntargets = ["re78"]\nconditions = ["age", "marr"]\nepochs = 1\n[generate]\nn = 50\n'
                    + ('[evaluate]\npmse = false\n' if evaluate else ""))
    return path


def _left(out: Path) -> list[str]:
    """The files in the output folder (not the stage records)."""
    return sorted(p.name for p in out.iterdir() if p.name != ".microplex") if out.exists() else []


_TO_PARQUET = pd.DataFrame.to_parquet


def _full_disk_for_train(frame, path, *args, **kwargs):
    """``to_parquet`` on a full disk for the fit stage's training records (its temporary ``.tmp-...-train.parquet``),
    as usual for any other file (the model file's tables, written before them)."""
    if str(path).endswith("-train.parquet"):
        _full_disk()
    return _TO_PARQUET(frame, path, *args, **kwargs)


@pytest.mark.parametrize("writer, output, stage, before", [
    ("microplex.synthesis.serialization._write_zip", ("model", "model.mpx"), "fit", []),
    ("pandas.DataFrame.to_parquet", ("train", "train.parquet"), "fit", []),
    ("microplex.evaluation.report.EvaluationReport.to_html", ("report", "report.html"), "evaluate",
     ["holdout.parquet", "model.mpx", "synthetic.parquet", "train.parquet"]),
])
def test_a_full_disk_in_a_pipeline_stage_names_the_output(tmp_path, cps1, monkeypatch, writer, output, stage, before):
    """``microplex run``: a writer raising ENOSPC printed "error: [Errno 28] No space left on device (in the pipeline
    stage [fit])", naming no file; now the line names the stage's output being written before the stage (the
    stage's temporaries removed, its outputs not written: the model file written before the training records is not
    renamed into place, nor the scores written before the report)."""
    path = _pipeline(tmp_path, cps1)
    monkeypatch.setattr(writer, _full_disk_for_train if writer.endswith("to_parquet") else _full_disk)
    line = _error_line(runner.invoke(app, ["run", str(path), "-q"]))
    out = tmp_path / "out"
    assert line == (f"error: {_FULL} (writing the {output[0]!r} output {str(out / output[1])!r}) "
                    f"(in the pipeline stage [{stage}])")
    assert _left(out) == before  # the scores of the failed evaluate stage are not renamed into place


def test_a_full_disk_in_the_demo_names_the_output(tmp_path, monkeypatch):
    """``microplex demo`` runs the same stages: its line names the model file the fit stage was writing."""
    monkeypatch.setattr("microplex.synthesis.serialization._write_zip", _full_disk)
    out = tmp_path / "demo"
    line = _error_line(runner.invoke(app, ["demo", "--rows", "100", "--epochs", "1", "-q", "-o", str(out)]))
    assert line == (f"error: {_FULL} (writing the 'model' output {str(out.resolve() / 'model.mpx')!r}) "
                    "(in the pipeline stage [fit])")
    assert _left(out) == []


def test_a_failed_read_in_a_stage_is_not_named_as_a_write(tmp_path, cps1, monkeypatch):
    """An OSError reading an input after the stage wrote an output (the evaluate stage loads the model after
    writing its scores) is not reported as writing that output."""
    path = _pipeline(tmp_path, cps1, evaluate=False)
    assert runner.invoke(app, ["run", str(path), "-q"]).exit_code == 0
    _pipeline(tmp_path, cps1)  # the fit and generate stages are up to date: only evaluate runs

    def unreadable(*args, **kwargs):
        raise OSError(errno.EIO, "Input/output error")
    monkeypatch.setattr(Synthesizer, "load", unreadable)
    line = _error_line(runner.invoke(app, ["run", str(path), "-q"]))
    assert line == "error: [Errno 5] Input/output error (in the pipeline stage [evaluate])"
