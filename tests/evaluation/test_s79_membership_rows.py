"""The membership AUC under ``evaluate --max-rows``: members and non-members drawn alike, and the rows it scored
said beside it (on the command line and in the report)."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from microplex.cli import app
from microplex.evaluation.attacks import membership_auc

runner = CliRunner()


def _frame(n: int, rng: np.random.Generator) -> pd.DataFrame:
    return pd.DataFrame({"x": rng.normal(size=n).round(3), "y": rng.normal(size=n).round(3),
                         "g": rng.choice(list("abc"), n)})


def test_evaluate_max_rows_states_the_members_and_non_members_the_auc_scored(tmp_path):
    # 6,000 training and 6,000 holdout records, a release of which half copies training records. With
    # --max-rows 3000 the holdout line said "3,000 of 6,000" while the AUC scored 2,000 of them (its own cap, as it
    # scores 2,000 of the 6,000 training records): nothing said which rows the AUC was computed on
    rng = np.random.default_rng(0)
    train, hold, fresh = _frame(6000, rng), _frame(6000, rng), _frame(3000, rng)
    train.to_csv(tmp_path / "train.csv", index=False)
    hold.to_csv(tmp_path / "hold.csv", index=False)
    pd.concat([train.sample(3000, random_state=1), fresh]).to_csv(tmp_path / "syn.csv", index=False)
    args = ["evaluate", str(tmp_path / "train.csv"), str(tmp_path / "syn.csv"), "--holdout", str(tmp_path / "hold.csv"),
            "--attacks", "--no-pmse", "--quasi-identifiers", ""]
    expected = {None: "2,000 of 6,000 training and 2,000 of 6,000 holdout records (random samples)",
                "3000": "2,000 of 6,000 training and 2,000 of 3,000 holdout records (random samples)",
                "500": "2,000 of 6,000 training and 500 holdout records (random samples)"}
    for cap, scored in expected.items():
        report = tmp_path / f"r{cap}.html"
        r = runner.invoke(app, [*args, "--report", str(report)] + (["--max-rows", cap] if cap else []))
        assert r.exit_code == 0, r.output
        line = next(x for x in r.output.splitlines() if x.startswith("membership AUC"))
        assert re.fullmatch(rf"membership AUC \(0\.5: no advantage\): \d\.\d{{4}} on {re.escape(scored)}"
                            r"( \(synthetic records: a random sample of [\d,]+ of 6,000 \(--max-rows\)\))?", line), line
        assert f"scored on {scored}." in report.read_text()


def test_members_and_non_members_are_drawn_alike_whatever_the_holdout_cap():
    # the holdout cut to 500 or 3,000 (evaluate --max-rows) while the training file stays whole: each side is drawn
    # at random on its own, so the AUC estimates the same figure (0.5 for a release independent of the training
    # records) with more scatter, not another one; the rows counted are those membership_auc scores
    from microplex.evaluation.attacks import membership_rows

    rng = np.random.default_rng(0)
    aucs: dict[int | None, list[float]] = {None: [], 500: [], 3000: []}
    for rep in range(8):
        train, hold, release = _frame(6000, rng), _frame(6000, rng), _frame(6000, rng)
        for cap in aucs:
            h = hold if cap is None else hold.sample(n=cap, random_state=0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                aucs[cap].append(membership_auc(train, release, h, seed=rep))
    for cap, values in aucs.items():
        assert abs(np.mean(values) - 0.5) < 0.015, (cap, values)
    assert membership_rows(np.ones(6000), np.ones(500)) == {"training": (2000, 6000), "holdout": (500, 500)}
