import pandas as pd
from typer.testing import CliRunner

from microplex.cli import app

runner = CliRunner()


def test_fit_generate_calibrate_sparsify_evaluate(tmp_path, cps1):
    data = tmp_path / "train.csv"
    cps1.head(1500).to_csv(data, index=False)
    model, synth = tmp_path / "m.mpx", tmp_path / "s.parquet"
    r = runner.invoke(app, ["fit", str(data), "--targets", "re78", "--conditions", "age,marr", "-o", str(model), "--epochs", "2"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["generate", str(model), "--n", "600", "-o", str(synth)])
    assert r.exit_code == 0, r.output
    assert pd.read_parquet(synth).shape == (600, 3)

    targets = tmp_path / "t.csv"
    pd.DataFrame({"filter": ["marr == 0", "marr == 1", ""], "aggregate": ["count", "count", "sum"],
                  "variable": [None, None, "re78"], "value": [400.0, 1100.0, 2.2e7]}).to_csv(targets, index=False)
    weighted = tmp_path / "w.parquet"
    r = runner.invoke(app, ["calibrate", str(synth), "--targets", str(targets), "--bounds", "0.1,10", "-o", str(weighted)])
    assert r.exit_code == 0, r.output
    w = pd.read_parquet(weighted)
    assert abs(w.loc[w.marr == 0, "weight"].sum() - 400) < 1e-6

    subset = tmp_path / "sub.parquet"
    r = runner.invoke(app, ["sparsify", str(weighted), "--targets", str(targets), "--max-records", "50", "-o", str(subset)])
    assert r.exit_code == 0, r.output
    assert 0 < len(pd.read_parquet(subset)) <= 50

    report = tmp_path / "r.html"
    real = tmp_path / "real.parquet"
    cps1[["age", "marr", "re78"]].head(1000).to_parquet(real)
    r = runner.invoke(app, ["evaluate", str(real), str(synth), "--report", str(report)])
    assert r.exit_code == 0, r.output
    assert report.stat().st_size > 1000


def test_errors_are_one_clear_line(tmp_path):
    r = runner.invoke(app, ["fit", str(tmp_path / "nope.csv"), "--targets", "x", "-o", str(tmp_path / "m.mpx")])
    assert r.exit_code == 1
    assert "does not exist" in r.output
    assert "Traceback" not in r.output
    r = runner.invoke(app, ["run", str(tmp_path / "nope.toml")])
    assert r.exit_code == 1 and "error:" in r.output
