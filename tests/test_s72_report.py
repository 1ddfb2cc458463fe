"""The evaluation report and ``microplex evaluate``: what --max-rows samples, the privacy problems in the
verdict, the pMSE rows, the point-mass values and the variables left out of the plots."""

import re

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from microplex.cli import app

runner = CliRunner()


def _score(html: str, metric: str) -> float:
    """A whole-file score as the report's privacy table shows it (``.4g``)."""
    return float(re.search(rf"<th>{metric}</th>\s*<td>([^<]+)</td>", html).group(1))


@pytest.fixture
def copied(tmp_path, cps1):
    """1,500 training records, a release that is those records shuffled, 1,500 other records as holdout."""
    order = np.random.default_rng(1).permutation(len(cps1))
    real, hold = cps1.iloc[order[:1500]], cps1.iloc[order[1500:3000]]
    paths = {n: tmp_path / f"{n}.parquet" for n in ("real", "syn", "hold")}
    real.to_parquet(paths["real"], index=False)
    real.sample(frac=1, random_state=7).to_parquet(paths["syn"], index=False)
    hold.to_parquet(paths["hold"], index=False)
    return paths, real, hold


def test_max_rows_keeps_the_training_file_whole_for_the_privacy_figures(copied, tmp_path):
    paths, real, _ = copied
    report = tmp_path / "r.html"
    r = runner.invoke(app, ["evaluate", str(paths["real"]), str(paths["syn"]), "--holdout", str(paths["hold"]),
                            "--no-pmse", "--max-rows", "400", "--report", str(report)])
    assert r.exit_code == 0, r.output
    # every release row is a training row: the rate is 1 against the whole training file (it was about 400/1,500)
    training = set(map(tuple, real.astype(float).to_numpy()))
    assert all(t in training for t in map(tuple, pd.read_parquet(paths["syn"]).astype(float).to_numpy()))
    text = report.read_text()
    assert _score(text, "exact_copy_rate_synthetic") == 1.0
    assert _score(text, "dcr_ratio") == 0.0 and "DCR ratio: 0.0000" in r.output
    assert "real rows scored" not in r.output and "real records:</span> 1500" in text
    assert "synthetic rows scored: a random sample of 400 of 1,500 (--max-rows)" in r.output
    assert "holdout rows scored: a random sample of 400 of 1,500 (--max-rows)" in r.output


def test_max_rows_still_finds_training_records_in_the_holdout(copied, tmp_path):
    paths, real, hold = copied
    # a holdout of which 10% are training records (the rest fresh): not fresh data
    mixed = pd.concat([hold.iloc[:1350], real.iloc[:150]]).sample(frac=1, random_state=2)
    mixed.to_parquet(paths["hold"], index=False)
    report = tmp_path / "r.html"
    r = runner.invoke(app, ["evaluate", str(paths["real"]), str(paths["hold"]), "--holdout", str(paths["hold"]),
                            "--no-pmse", "--max-rows", "400", "--report", str(report)])
    assert r.exit_code == 0, r.output
    assert "The holdout is not fresh data." in report.read_text()
