"""Session 55: the report scores round numbers (`round_share_error`), as `benchmarks/bench_rounding.py` did alone.

Before, `evaluate` had no figure that sees a smeared grid of round values: on real earnings the KS of a model
without its rounding grid is as small as with it, while half the held-out values are round thousands and
none of the synthetic ones are."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from microplex import DataValidationError, Synthesizer
from microplex._stats import decimal_levels, round_shares
from microplex.evaluation import evaluate
from microplex.evaluation.metrics import ROUND_LEVELS, round_share_errors


def test_round_share_errors_by_hand_with_weights():
    """Weighted shares among the nonzero values: real 1,000 (weight 3), 1,234.5 (1), 0 (5, left out) gives 0.75 of
    round thousands; synthetic 1,200 and 999.99 (weights 1, 1) gives 0.5 of round hundreds and 0 of thousands."""
    real, wr = [1000.0, 1234.5, 0.0], [3.0, 1.0, 5.0]
    synth, ws = [1200.0, 999.99, np.nan], [1.0, 1.0, 1.0]
    table = round_share_errors(real, synth, wr, ws, levels=range(-2, 4)).set_index("level")
    assert table.loc[3, "real_share"] == pytest.approx(0.75) and table.loc[3, "synthetic_share"] == 0.0
    assert table.loc[2, "real_share"] == pytest.approx(0.75) and table.loc[2, "synthetic_share"] == pytest.approx(0.5)
    assert table.loc[-1, "real_share"] == pytest.approx(1.0) and table.loc[-1, "synthetic_share"] == pytest.approx(0.5)
    assert table.loc[-2, "synthetic_share"] == pytest.approx(1.0)  # 999.99: whole cents
    assert table["abs_error"].max() == pytest.approx(0.75)
    assert table["abs_error"].tolist() == pytest.approx((table["real_share"] - table["synthetic_share"]).abs().tolist())


def test_round_shares_agree_with_the_levels():
    rng = np.random.default_rng(0)
    x = np.array([round(v, d) for v, d in zip(rng.lognormal(8, 1, 2_000), rng.integers(-3, 3, 2_000).tolist())])
    w = rng.uniform(0.5, 2.0, x.size)
    shares = round_shares(x, w, ROUND_LEVELS)
    lv = decimal_levels(x)
    expected = [w[(lv >= k) & (x != 0)].sum() / w[x != 0].sum() for k in ROUND_LEVELS]
    assert shares.tolist() == pytest.approx(expected, abs=1e-15)
    assert (np.diff(shares) <= 0).all()  # a multiple of 10**(k+1) is a multiple of 10**k


def test_bad_levels_and_infinite_values_are_refused():
    with pytest.raises(DataValidationError, match="'levels' parameter"):
        round_share_errors([1.0], [1.0], levels=[0, 1])
    with pytest.raises(DataValidationError, match="infinite"):
        round_share_errors([1.0, np.inf], [1.0])


def test_the_report_sees_a_smeared_grid_that_the_ks_does_not():
    """cps1 earnings (74-79% of the nonzero values in whole cents, 96-97% in tenths of a cent): without the
    rounding grid the report's round_share_error is large, with it (the default) it is small, while the KS does
    not move."""
    from microplex.datasets import load_dataset

    df = load_dataset("cps1").sample(6_000, random_state=0).reset_index(drop=True)
    train, holdout = df.iloc[:4_800], df.iloc[4_800:].reset_index(drop=True)
    targets, conditions = ["re74", "re78"], ["age", "educ", "marr"]
    scores = {}
    for rounding in (None, False):
        synth = Synthesizer(targets, conditions, epochs=3, rounding=rounding, verbose=False).fit(train, seed=0)
        out = synth.generate(holdout[conditions], seed=1)
        rep = evaluate(holdout[conditions + targets], out[conditions + targets], pmse=False)
        table = rep.scores[rep.scores["variable"].isin(targets)]
        scores[rounding] = table.pivot_table(index="variable", columns="metric", values="value")
    with_grid, without = scores[None], scores[False]
    # measured: 0.35 / 0.33 without the grid, 0.06 with it (margins for other CPUs' float rounding)
    assert (without["round_share_error"] > 0.2).all(), without["round_share_error"]
    assert (with_grid["round_share_error"] < 0.15).all(), with_grid["round_share_error"]
    assert (without["round_share_error"] - with_grid["round_share_error"] > 0.15).all()
    assert (with_grid["ks"] - without["ks"]).abs().max() < 0.03
    # the score is the worst level of the function's table
    ref = round_share_errors(holdout["re78"], out["re78"])["abs_error"].max()
    assert without.loc["re78", "round_share_error"] == pytest.approx(ref)


def test_the_benchmark_scores_round_values_with_the_library_metric():
    """bench_rounding.py's round_err is the report's metric (one definition), the same figures as its former own
    formula: the share of nonzero finite values whose decimal level is at least k."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    try:
        import bench_rounding
    finally:
        sys.path.pop(0)
    rng = np.random.default_rng(3)
    real = pd.DataFrame({"y": np.round(rng.lognormal(9, 1, 500), -2) * (rng.random(500) > 0.3)})
    synth = pd.DataFrame({"y": np.round(rng.lognormal(9, 1, 400), 1)})
    wr, ws = rng.uniform(1, 3, 500), np.ones(400)

    def former(x, w):
        on = (x != 0) & np.isfinite(x)
        lv, w = decimal_levels(x[on]), w[on]
        return {k: float(w[lv >= k].sum() / w.sum()) for k in bench_rounding.LEVELS}

    old = max(abs(former(real["y"].to_numpy(), wr)[k] - former(synth["y"].to_numpy(), ws)[k]) for k in bench_rounding.LEVELS)
    assert bench_rounding.round_errors(real, synth, ["y"], wr, ws)["y"] == pytest.approx(old, abs=1e-15)
    assert bench_rounding.round_shares(real["y"].to_numpy(), wr) == pytest.approx(former(real["y"].to_numpy(), wr))


def test_the_command_line_prints_the_worst_round_value_share_error(tmp_path):
    """`microplex evaluate` prints the worst round-value share error beside the worst KS: acs12's incomes (76% of
    the nonzero ones round thousands) against the same incomes plus 37 cents (a KS of almost 0, no round value)."""
    from typer.testing import CliRunner

    from microplex.cli import app
    from microplex.datasets import load_dataset

    df = load_dataset("acs12")[["age", "income"]].dropna().head(2_000).rename(columns={"income": "re78"})
    real, synth = tmp_path / "real.parquet", tmp_path / "synth.parquet"
    df.to_parquet(real)
    noisy = df.assign(re78=np.where(df["re78"] > 0, df["re78"] + 0.37, 0.0))
    noisy.to_parquet(synth)
    r = CliRunner().invoke(app, ["evaluate", str(real), str(synth), "--no-pmse", "--report", str(tmp_path / "r.html")])
    assert r.exit_code == 0, r.output
    expected = round_share_errors(df["re78"], noisy["re78"])["abs_error"].max()
    assert expected > 0.5
    assert f"worst round-value share error: {expected:.4f} (re78)" in r.output, r.output
