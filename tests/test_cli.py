import json

import pandas as pd
from typer.testing import CliRunner

from microplex.cli import app

runner = CliRunner()


def test_demo_writes_records_model_and_summary(tmp_path):
    result = runner.invoke(app, ["demo", "--out", str(tmp_path), "--rows", "2000", "--epochs", "3"])
    assert result.exit_code == 0, result.output
    pop = pd.read_parquet(tmp_path / "synthetic.parquet")
    assert len(pop) == 2000
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary["targets"]) == {"re74", "re75", "re78"}
    assert "KS synthetic vs held-out" in result.output


def test_fit_then_generate(tmp_path, cps1):
    data = tmp_path / "train.csv"
    cps1.head(1500).to_csv(data, index=False)
    model = tmp_path / "m.mpx"
    r = runner.invoke(app, ["fit", str(data), "--targets", "re78", "--conditions", "age,educ", "-o", str(model), "--epochs", "2"])
    assert r.exit_code == 0, r.output
    out = tmp_path / "s.parquet"
    r = runner.invoke(app, ["generate", str(model), "--n", "300", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert pd.read_parquet(out).shape == (300, 3)


def test_errors_are_one_clear_line(tmp_path):
    r = runner.invoke(app, ["fit", str(tmp_path / "nope.csv"), "--targets", "x", "-o", str(tmp_path / "m.mpx")])
    assert r.exit_code == 1
    assert "does not exist" in r.output
    assert "Traceback" not in r.output
