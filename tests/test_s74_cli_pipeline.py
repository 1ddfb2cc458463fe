"""Session 74 (command line, pipeline, model files): the pipeline's soft calibrate stage counts the targets it
missed far beyond their tolerance in its note, as ``microplex calibrate --soft`` does; a nested model's
``format_version`` is checked by one function (``synthesis.serialization.check_nested_version``); the command
line's error lines name the output a full disk stopped, a small disk need in a readable unit and the flags (not
the Python parameters), and ``evaluate --attacks`` refuses a sensitive quasi-identifier before evaluating."""

from __future__ import annotations

import errno
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import microplex
from microplex import Synthesizer
from microplex._errors import ConvergenceWarning, DataValidationError
from microplex.cli import app
from microplex.io import check_rows_fit_disk
from microplex.pipeline import run_pipeline

from _cli_output import error_line as _error_line

pytestmark = pytest.mark.usefixtures("one_torch_thread")

_FAR_NOTE = "soft targets missed by more than 10 times their tolerance"


def _soft_pipeline(folder, cps1, total: int) -> dict:
    """A 1-epoch pipeline of 50 records whose soft calibrate stage wants 100 + 200 persons by ``marr`` and
    ``total`` persons in all (300 agree with the margins; the further from it, the larger the misses)."""
    cps1.head(200)[["age", "marr", "re78"]].to_parquet(folder / "train.parquet")
    (folder / "t.csv").write_text(
        f"aggregate,variable,filter,value\ncount,,marr == 0,100\ncount,,marr == 1,200\ncount,,,{total}\n")
    return {"_base": str(folder), "output": "out", "seed": 0, "sources": [{"name": "cps", "path": "train.parquet"}],
            "model": {"targets": ["re78"], "conditions": ["age", "marr"], "epochs": 1}, "generate": {"n": 50},
            "calibrate": {"targets": "t.csv", "soft": True}}


def _far_misses(folder) -> int:
    """The targets of the stage's calibration report missed by more than 10 times the 1% default tolerance,
    recomputed from the weights written (relative to the target: all three are counts)."""
    records = pd.read_parquet(folder / "out" / "calibrated.parquet")
    achieved = {"marr == 0": records.loc[records.marr == 0, "weight"].sum(),
                "marr == 1": records.loc[records.marr == 1, "weight"].sum(), "": records["weight"].sum()}
    report = pd.read_csv(folder / "out" / "calibration_report.csv", keep_default_na=False)
    misses = [abs(achieved[f] - v) / v for f, v in zip(report["target"].str[6:-1], report["value"].astype(float))]
    return sum(m > 10 * 0.01 for m in misses)


def test_pipeline_soft_calibrate_note_counts_the_targets_missed_far(tmp_path, cps1):
    """1,000 persons in all against margins adding up to 300: the soft optimum misses the total by 67 times its
    tolerance and the marr == 1 count by 13 times (the marr == 0 count by 6.7 times: not far). The stage's note,
    the printed summary and the record a rerun reads say "2 soft targets missed by more than 10 times ...";
    the warning names them."""
    config = _soft_pipeline(tmp_path, cps1, total=1000)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = run_pipeline(config, progress=False)
    far = _far_misses(tmp_path)
    assert far == 2
    note = result.stages["calibrate"]["note"]
    assert note.endswith(f", 2 {_FAR_NOTE}"), note
    assert f"2 {_FAR_NOTE}" in result.summary_text()
    messages = [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]
    assert len(messages) == 1 and "missed 2 of 3 targets by more than 10 times their tolerance" in messages[0]
    again = run_pipeline(config, progress=False)  # skipped: the note comes back from the stage's record
    assert again.stages["calibrate"]["status"] == "skipped"
    assert again.stages["calibrate"]["note"] == note


def test_pipeline_soft_calibrate_note_says_nothing_of_misses_within_ten_times(tmp_path, cps1):
    """330 persons in all against margins adding up to 300: every target is missed (by 1.9 to 6.2 times its
    tolerance), none by more than 10 times: the note has no far-miss clause and there is no warning."""
    config = _soft_pipeline(tmp_path, cps1, total=330)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = run_pipeline(config, progress=False)
    report = pd.read_csv(tmp_path / "out" / "calibration_report.csv")
    assert not report["met"].any() and 0.01 < report["rel_error"].max() < 0.1
    assert _far_misses(tmp_path) == 0
    note = result.stages["calibrate"]["note"]
    assert note.startswith("3 targets, max rel. error") and "missed" not in note, note
    assert "missed" not in result.summary_text()
    assert not [w for w in caught if issubclass(w.category, ConvergenceWarning)]


def test_a_nested_models_format_version_is_checked_in_one_place():
    """A Synthesizer file's condition model and a household file's inner models must have the file's
    format_version; the rule was written twice (``_conditions.restore_parts`` and ``households._bundle._build``,
    with two truncations of the value shown). Now both call ``serialization.check_nested_version``, the one
    place that says it (the messages are pinned by
    ``tests/test_s73_modelfile.py::test_a_nested_model_edited_to_version_1_is_refused``)."""
    src = Path(microplex.__file__).parent
    saying = [str(p.relative_to(src)) for p in sorted(src.rglob("*.py"))
              if "must be the file's format_version" in p.read_text(encoding="utf-8")]
    assert saying == ["synthesis/serialization.py"]
    callers = [str(p.relative_to(src)) for p in sorted(src.rglob("*.py"))
               if "check_nested_version(" in p.read_text(encoding="utf-8")]
    assert callers == ["households/_bundle.py", "synthesis/_conditions.py", "synthesis/serialization.py"]


runner = CliRunner()
_FULL = "[Errno 28] No space left on device"


def _full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """300 records (age, sex, income), a holdout of 100, sex targets, and a 1-epoch model of income."""
    folder = tmp_path_factory.mktemp("s74cli")
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"age": rng.integers(18, 80, 400), "sex": rng.choice(["f", "m"], 400),
                       "inc": rng.lognormal(10, 1, 400).round(0)})
    df.iloc[:300].to_csv(folder / "d.csv", index=False)
    df.iloc[300:].to_csv(folder / "h.csv", index=False)
    (folder / "t.csv").write_text("sex,value\nf,150\nm,150\n")
    Synthesizer(["inc"], ["age", "sex"], epochs=1, verbose=False, hidden_features=(8,), transforms=1).fit(
        df.iloc[:300], seed=0).save(folder / "m.mpx")
    return folder


@pytest.mark.parametrize("verb", ["calibrate", "calibrate --report", "sparsify", "fit"])
def test_a_full_disk_names_the_output_it_was_writing(files, tmp_path, monkeypatch, verb):
    """A writer raising ENOSPC printed "error: [Errno 28] No space left on device", naming no file; now the line
    names the output being written (the temporary beside it is removed, nothing is written)."""
    d, out = files, tmp_path / "out"
    args = {"calibrate": ["calibrate", f"{d}/d.csv", "--targets", f"{d}/t.csv", "-o", f"{out}/w.parquet"],
            "sparsify": ["sparsify", f"{d}/d.csv", "--targets", f"{d}/t.csv", "-o", f"{out}/w.parquet"],
            "fit": ["fit", f"{d}/d.csv", "--targets", "inc", "--conditions", "age,sex", "--epochs", "1", "-q",
                    "-o", f"{out}/w.mpx"]}
    args["calibrate --report"] = args["calibrate"] + ["--report", f"{out}/r.csv"]
    if verb == "fit":
        monkeypatch.setattr("microplex.synthesis.serialization._write_zip", _full_disk)
        named = ("out", out / "w.mpx")
    elif verb == "calibrate --report":
        monkeypatch.setattr(pd.DataFrame, "to_csv", _full_disk)
        named = ("report", out / "r.csv")
    else:
        monkeypatch.setattr(pd.DataFrame, "to_parquet", _full_disk)
        named = ("out", out / "w.parquet")
    line = _error_line(runner.invoke(app, args[verb]))
    assert line == f"error: {_FULL} (writing the {named[0]!r} output {str(named[1])!r})"
    assert not out.exists() or list(out.iterdir()) == []


def test_a_full_disk_names_the_evaluate_report(files, tmp_path, monkeypatch):
    from microplex.evaluation.report import EvaluationReport

    monkeypatch.setattr(EvaluationReport, "to_html", _full_disk)
    report = tmp_path / "r.html"
    line = _error_line(runner.invoke(app, ["evaluate", f"{files}/d.csv", f"{files}/d.csv", "--no-pmse",
                                           "--report", str(report)]))
    assert line == f"error: {_FULL} (writing the 'report' output {str(report)!r})"
    assert list(tmp_path.iterdir()) == []


def test_the_disk_check_of_a_stream_shows_small_sizes_in_their_unit(files, tmp_path, monkeypatch):
    """``generate --stream`` of 3,000,000 records of 3 columns (at least 9,000,000 bytes) on a disk with 5 MiB free
    said "at least 0 GiB on disk; ... has 0 GiB free"; now "at least 8.58 MiB on disk; ... has 5.00 MiB free"."""
    free = 5 * 2**20
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10 * free, 9 * free, free))
    line = _error_line(runner.invoke(app, ["generate", f"{files}/m.mpx", "--n", "3e6", "--stream",
                                           "-o", str(tmp_path / "pop")]))
    assert line == (f"error: The '--n' option asks for 3,000,000 records, at least 8.58 MiB on disk; "
                    f"{str(tmp_path)!r} has 5.00 MiB free.")
    assert 9_000_000 / 2**20 == pytest.approx(8.58, abs=0.005)
    assert not (tmp_path / "pop").exists()
    with pytest.raises(DataValidationError, match=r"at least 1.46 KiB on disk; .* has 1,000 bytes free"):
        monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**6, 10**6 - 1000, 1000))
        check_rows_fit_disk(500, 3, tmp_path, "n")


def test_size_text_picks_the_unit_and_the_decimals():
    from microplex.io import size_text

    assert [size_text(v) for v in (0, 1023, 1024, 10 * 2**20 - 1, 10 * 2**20, 2**30 * 1.5, 2**40 * 12.34)] == [
        "0 bytes", "1,023 bytes", "1.00 KiB", "10.00 MiB", "10.0 MiB", "1.50 GiB", "12.3 TiB"]


@pytest.mark.parametrize("args, message", [
    (["generate", "{d}/m.mpx", "--n", "5", "--stream", "--rows-per-file", "0", "-o", "{o}/pop"],
     "The '--rows-per-file' option must be an int >= 1. Got 0 instead."),
    (["generate", "{d}/m.mpx", "--n", "5", "--stream", "--torch-threads", "0", "-o", "{o}/pop"],
     "The '--torch-threads' option must be an int >= 1. Got 0 instead."),
    (["sparsify", "{d}/d.csv", "--targets", "{d}/t.csv", "--max-records", "0", "-o", "{o}/s.parquet"],
     "The '--max-records' option must be an int >= 1. Got 0 instead."),
    (["evaluate", "{d}/d.csv", "{d}/d.csv", "--max-rows", "0", "--report", "{o}/r.html"],
     "The '--max-rows' option must be an int >= 1. Got 0 instead."),
    (["demo", "--rows", "0", "-q", "-o", "{o}/demo"], "The '--rows' option must be an int >= 1. Got 0 instead."),
    (["fit", "{d}/d.csv", "--targets", "inc", "--epochs", "0", "-o", "{o}/m.mpx"],
     "The '--epochs' option must be 'auto' or an int >= 1. Got 0 instead."),
    (["generate", "{d}/m.mpx", "--n", "1e15", "-o", "{o}/s.parquet"], "The '--n' option asks for 1,000,000,000,000,000"),
])
def test_option_errors_name_the_flag(files, tmp_path, args, message):
    """They named the Python parameter ("The 'rows_per_file' parameter must be an int >= 1", "The 'max_rows'
    parameter must be an int >= 1 or None", "The 'n' parameter asks for ..."): now the flag, without "or None"
    (leaving the option out is not a value)."""
    line = _error_line(runner.invoke(app, [a.format(d=files, o=tmp_path) for a in args]))
    assert line.startswith(f"error: {message}"), line
    assert list(tmp_path.iterdir()) == []


def test_evaluate_refuses_a_sensitive_quasi_identifier_before_evaluating(files, tmp_path, monkeypatch):
    """``--sensitive sex --quasi-identifiers age,sex`` was refused by the attribute-disclosure attack, after the
    fidelity scores, the privacy figures and the membership attack had run; now before any (the same message)."""
    import microplex.evaluation.report as report_module

    def ran(*args, **kwargs):
        raise AssertionError("the evaluation ran")
    monkeypatch.setattr(report_module, "fidelity_scores", ran)
    line = _error_line(runner.invoke(app, [
        "evaluate", f"{files}/d.csv", f"{files}/d.csv", "--holdout", f"{files}/h.csv", "--attacks",
        "--quasi-identifiers", "age,sex", "--sensitive", "inc,sex", "--report", str(tmp_path / "r.html")]))
    assert line == "error: The sensitive column 'sex' cannot also be a quasi-identifier."
    assert list(tmp_path.iterdir()) == []
    df = pd.read_csv(files / "d.csv")
    with pytest.raises(DataValidationError, match="The sensitive column 'sex' cannot also be a quasi-identifier"):
        report_module.evaluate(df, df, holdout_df=df, attacks=True, quasi_identifiers=["age", "sex"],
                               sensitive=["sex"], progress=False)
