"""``microplex evaluate``: --no-pmse, --max-rows, and the key numbers it prints."""

import numpy as np
import pytest
from typer.testing import CliRunner

from microplex.cli import app

runner = CliRunner()


@pytest.fixture
def files(tmp_path, cps1):
    cols = ["age", "marr", "re78"]
    order = np.random.default_rng(0).permutation(len(cps1))
    real, synth, hold = (tmp_path / f"{n}.parquet" for n in ("real", "synth", "hold"))
    cps1.iloc[order[:1000]][cols].to_parquet(real)
    cps1.iloc[order[1000:1600]][cols].assign(re78=lambda d: d["re78"] * 1.5).to_parquet(synth)
    cps1.iloc[order[2000:2800]][cols].to_parquet(hold)
    return real, synth, hold


def test_prints_key_numbers_and_states_the_pmse_rows(files, tmp_path):
    real, synth, hold = files
    report = tmp_path / "r.html"
    r = runner.invoke(app, ["evaluate", str(real), str(synth), "--holdout", str(hold), "--conditions", "marr",
                            "--report", str(report)])
    assert r.exit_code == 0, r.output
    assert "worst KS of a target:" in r.output and "(re78)" in r.output
    assert "pMSE:" in r.output and "on 1,000 real + 600 synthetic rows" in r.output
    assert "verdict against the real-vs-real floor:" in r.output and " red" in r.output
    assert "1,000 real + 600 synthetic" in report.read_text()


def test_no_pmse_and_max_rows(files, tmp_path):
    real, synth, hold = files
    report = tmp_path / "r.html"
    r = runner.invoke(app, ["evaluate", str(real), str(synth), "--holdout", str(hold), "--no-pmse",
                            "--max-rows", "500", "--report", str(report)])
    assert r.exit_code == 0, r.output
    assert "pMSE" not in r.output
    assert "real rows scored" not in r.output  # the training file stays whole (the privacy figures need it)
    assert "synthetic rows scored: a random sample of 500 of 600" in r.output
    assert "holdout rows scored: a random sample of 500 of 800" in r.output
    text = report.read_text()
    assert "a random sample of 500 of 800 (--max-rows)" in text and "pMSE rows" not in text
    assert "real records:</span> 1000" in text


@pytest.mark.parametrize("value", ["0", "-3", "x"])
def test_max_rows_is_checked_before_any_work(files, tmp_path, value):
    real, synth, _ = files
    report = tmp_path / "r.html"
    r = runner.invoke(app, ["evaluate", str(real), str(synth), "--max-rows", value, "--report", str(report)])
    assert r.exit_code != 0
    assert "max" in r.output.lower() and "Traceback" not in r.output
    assert not report.exists()
