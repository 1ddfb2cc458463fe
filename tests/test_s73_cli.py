"""Session 73 (command line): ``microplex evaluate`` names the privacy problems its HTML report shows, and
``microplex generate --conditions`` reads a JSON or Excel file's text categories as text.

``evaluate`` of a release that copies its training records printed the verdict tally ("... 0 amber, 0 red") while
the HTML report turned red with a notice of the disclosure risk; the printed summary now names the risks, from the
report's own rule (:func:`microplex.evaluation.privacy.privacy_problems`). A conditions file in JSON or Excel whose
column of a text category holds ``"1"``, ``"2"`` (pandas reads them as numbers) was refused ("the types differ"), as
a CSV's was before session 72.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from microplex.cli import app

runner = CliRunner()


def _records(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"age": rng.integers(18, 80, n), "sex": rng.choice(["f", "m"], n),
                         "inc": rng.lognormal(10, 1, n).round(0)})


def test_evaluate_prints_the_privacy_problems_the_report_shows(tmp_path):
    real, hold = tmp_path / "real.csv", tmp_path / "hold.csv"
    _records(800, 0).to_csv(real, index=False)
    _records(800, 1).to_csv(hold, index=False)
    report = tmp_path / "r.html"
    # the release is the training file itself
    r = runner.invoke(app, ["evaluate", str(real), str(real), "--holdout", str(hold), "--no-pmse",
                            "--conditions", "sex", "--report", str(report)])
    assert r.exit_code == 0, r.output
    html = report.read_text()
    assert 'id="privacy-problems"' in html and "100.0% of synthetic records copy a training record exactly" in html
    lines = r.output.splitlines()
    tally = next(i for i, line in enumerate(lines) if line.startswith("verdict against the real-vs-real floor"))
    # before: the tally line was the last word on the verdict, the copies unnamed
    assert lines[tally].endswith(" 0 red")  # every score is within its floor: a copy is as good as it gets
    line = lines[tally + 1]
    assert line.startswith("privacy problems (the report's verdict is red whatever the scores): synthetic records "
                           "sit closer to training records than fresh holdout data does (median distance to closest "
                           "record: synthetic 0 vs holdout "), r.output
    assert line.endswith("; 100.0% of synthetic records copy a training record exactly (holdout: 0.0%)"), r.output


def test_evaluate_prints_no_privacy_line_for_fresh_records(tmp_path):
    real, syn, hold = tmp_path / "real.csv", tmp_path / "syn.csv", tmp_path / "hold.csv"
    _records(800, 0).to_csv(real, index=False)
    _records(800, 2).to_csv(syn, index=False)
    _records(800, 1).to_csv(hold, index=False)
    report = tmp_path / "r.html"
    r = runner.invoke(app, ["evaluate", str(real), str(syn), "--holdout", str(hold), "--no-pmse",
                            "--report", str(report)])
    assert r.exit_code == 0, r.output
    assert "verdict against the real-vs-real floor" in r.output and "privacy problems" not in r.output
    assert 'id="privacy-problems"' not in report.read_text()


@pytest.fixture(scope="module")
def model(text_code_model):
    return text_code_model


@pytest.mark.parametrize("suffix", [".json", ".xlsx"])
def test_generate_reads_json_and_excel_text_categories_as_text(model, tmp_path, suffix):
    if suffix == ".xlsx":
        pytest.importorskip("openpyxl")
    rows = pd.DataFrame({"hh": ["1", "2"], "county": ["100", "245"], "age": [30, 40]})
    path = tmp_path / f"c{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps(rows.to_dict(orient="records")))
    else:
        rows.to_excel(path, index=False)
    r = runner.invoke(app, ["generate", str(model / "m.mpx"), "--conditions", str(path), "-o",
                            str(tmp_path / "out.parquet"), "-q"])
    # before: status 1, "Condition column 'hh' has categories not seen in training: [1, 2] ... the types differ"
    assert r.exit_code == 0, r.output
    got = pd.read_parquet(tmp_path / "out.parquet")
    assert got["hh"].tolist() == ["1", "2"] and got["county"].tolist() == ["100", "245"]
    assert got["age"].tolist() == [30, 40] and got["inc"].notna().all()
