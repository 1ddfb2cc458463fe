"""Session 73: a soft calibration that misses targets far beyond their tolerance says so (it reported success
and showed the misses only in ``report()["met"]``); an integer target whose values are not whole numbers is
named as such (the message said "constant (0.0)"); ``evaluate --max-rows`` keeps the privacy figures of a copy."""

from __future__ import annotations

import dataclasses
import html
import re
import warnings

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from microplex._errors import ConvergenceWarning
from microplex.calibration import Calibrator, Targets
from microplex.cli import app

runner = CliRunner()


def _records(n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"sex": rng.choice(["f", "m"], n), "region": rng.choice(["N", "S"], n), "weight": 1.0})


def _fit(df: pd.DataFrame, targets: Targets, **kw) -> tuple[Calibrator, list[warnings.WarningMessage]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cal = Calibrator(soft=True, **kw).fit(df, targets, weight_col="weight")
    return cal, [w for w in caught if issubclass(w.category, ConvergenceWarning)]


def test_soft_fit_missing_targets_far_beyond_their_tolerance_warns():
    """The sex margin adds up to 1,000 persons, the region margin to 2,000: no weights meet both, and the soft
    fit's compromise misses every target by 16 to 40 times its 1% tolerance. It warned nothing and read
    converged; now a ConvergenceWarning names the worst targets with their misses, and the summary counts them."""
    df = _records()
    tg = Targets.from_margins({"sex": {"f": 600, "m": 400}, "region": {"N": 1000, "S": 1000}})
    cal, caught = _fit(df, tg)
    rep = cal.report()
    # the misses, recomputed with pandas from the weights (relative to the target: all four are counts)
    achieved = {("sex", k): cal.weights[df.sex == k].sum() for k in ("f", "m")}
    achieved |= {("region", k): cal.weights[df.region == k].sum() for k in ("N", "S")}
    value = {("sex", "f"): 600, ("sex", "m"): 400, ("region", "N"): 1000, ("region", "S"): 1000}
    miss = {k: abs(achieved[k] - value[k]) / value[k] for k in value}
    assert min(miss.values()) > 10 * 0.01  # every target far beyond its tolerance
    assert not rep["met"].any()
    assert cal.summary["converged"] is True  # the solve itself is unchanged: the optimum of the soft problem
    assert cal.summary["n_far_missed"] == 4
    assert len(caught) == 1
    msg = str(caught[0].message)
    assert "missed 4 of 4 targets by more than 10 times their tolerance" in msg
    # worst first: a region count, missed by its pandas miss, with how many times the tolerance that is
    worst = max(miss, key=miss.get)
    first = re.search(r"\"count\[(\w+) == '(\w)'\]\" missed by ([0-9.]+) \(([0-9.]+) times its tolerance 0.01", msg)
    assert first is not None, msg
    assert (first.group(1), first.group(2)) == worst
    assert float(first.group(3)) == pytest.approx(miss[worst], rel=2e-3)
    assert float(first.group(4)) == pytest.approx(miss[worst] / 0.01, rel=2e-3)


def test_soft_fit_within_ten_times_its_tolerance_does_not_warn():
    """Margins 4% apart: the misses are 1.5 to 2.3 times the 1% tolerance, a trade-off a soft fit is for: no
    warning, ``n_far_missed`` 0; a target's own tolerance counts (the same misses at 0.1% are far misses)."""
    df = _records()
    tg = Targets.from_margins({"sex": {"f": 600, "m": 400}, "region": {"N": 520, "S": 520}})
    cal, caught = _fit(df, tg)
    assert caught == [] and cal.summary["n_far_missed"] == 0
    assert 0.01 < cal.report()["rel_error"].max() < 0.03
    tight = Targets([dataclasses.replace(t, tolerance=0.001) for t in tg])  # the same misses at 0.1%: far
    cal, caught = _fit(df, tight)
    times = cal.report()["rel_error"] / 0.001
    assert times.min() > 10  # 15 to 23 times
    assert cal.summary["n_far_missed"] == 4 and len(caught) == 1
    assert "tolerance 0.001" in str(caught[0].message)


def test_cli_calibrate_soft_says_how_many_targets_it_missed_far(tmp_path):
    """``calibrate --soft`` printed "converged=True" and nothing else for targets missed by 40 times their
    tolerance; now the warning is on stderr and the summary line counts them."""
    df = _records()
    df.to_csv(tmp_path / "d.csv", index=False)
    (tmp_path / "t.csv").write_text("sex,region,value\nf,,600\nm,,400\n,N,1000\n,S,1000\n")
    r = runner.invoke(app, ["calibrate", str(tmp_path / "d.csv"), "--targets", str(tmp_path / "t.csv"), "--soft",
                            "-o", str(tmp_path / "w.parquet")])
    assert r.exit_code == 0, r.output
    assert "warning: ConvergenceWarning: Soft calibration (raking) missed 4 of 4 targets" in r.output
    assert "converged=True" in r.output
    assert "4 soft targets missed by more than 10 times their tolerance" in r.output


def test_integer_target_whose_values_round_to_one_value_is_named_not_whole():
    """A float target declared ``kind="integer"`` with values of 1e-6 and 2e-6 was refused as "constant (0.0)": the
    column is not constant, its values are not whole numbers and all round to 0. The message now says that, with the
    values' range (and the rounding warning is still given first)."""
    from microplex import Synthesizer, VariableSpec
    from microplex._errors import DataValidationError

    rng = np.random.default_rng(3)
    df = pd.DataFrame({"age": rng.integers(18, 80, 200), "k": rng.choice([1e-6, 2e-6], 200)})
    syn = Synthesizer(["k"], ["age"], verbose=False, epochs=1, schema={"k": VariableSpec(kind="integer")})
    with pytest.warns(UserWarning, match="declared kind='integer' but 100% of its values are not whole numbers"):
        with pytest.raises(DataValidationError) as err:
            syn.fit(df, seed=0)
    msg = str(err.value)
    assert "constant" not in msg
    assert ("Target column 'k' is declared kind='integer' in the schema but its values are not whole numbers: "
            "they range from 1e-06 to 2e-06, and rounded to whole numbers every one is 0.0; declare it "
            "'continuous'") in msg
    # a column that is constant as given is still called constant
    with pytest.raises(DataValidationError, match=r"Target column 'k' is constant \(3.0\)"):
        Synthesizer(["k"], ["age"], verbose=False, epochs=1, schema={"k": VariableSpec(kind="integer")}).fit(
            df.assign(k=3.0), seed=0)


@pytest.fixture
def copied_release(tmp_path, cps1):
    """800 cps1 training records, a release that copies every one of them (shuffled), 800 fresh holdout records."""
    cols = ["age", "educ", "marr", "re78"]
    order = np.random.default_rng(0).permutation(len(cps1))
    real, synth, hold = (tmp_path / f"{n}.parquet" for n in ("real", "synth", "hold"))
    train = cps1.iloc[order[:800]][cols]
    train.to_parquet(real)
    train.sample(frac=1, random_state=7).to_parquet(synth)
    cps1.iloc[order[800:1600]][cols].to_parquet(hold)
    return real, synth, hold


def _auc(output: str) -> tuple[float, str]:
    line = [x for x in output.splitlines() if x.startswith("membership AUC")][0]
    return float(re.search(r": ([0-9.]+)", line).group(1)), line


def test_evaluate_max_rows_says_the_privacy_figures_are_a_samples(copied_release, tmp_path):
    """``evaluate --max-rows 200 --attacks`` on a release that copies its 800 training records: the membership AUC
    is the sample's (it sees the quarter of the members whose copies were drawn) and reads far lower than the whole
    file's. It was printed and reported as the file's; now the CLI warns, the privacy lines name the sample, and the
    report's privacy section opens with a notice naming it. Without --max-rows none of them."""
    real, synth, hold = copied_release
    args = ["evaluate", str(real), str(synth), "--holdout", str(hold), "--no-pmse", "--attacks",
            "--quasi-identifiers", ""]
    whole = runner.invoke(app, [*args, "--report", str(tmp_path / "whole.html")])
    assert whole.exit_code == 0, whole.output
    auc_whole, line = _auc(whole.output)
    assert auc_whole > 0.9 and "sample" not in line
    assert "privacy-sample" not in (tmp_path / "whole.html").read_text()
    assert "are computed on the synthetic sample" not in whole.output

    r = runner.invoke(app, [*args, "--max-rows", "200", "--report", str(tmp_path / "r.html")])
    assert r.exit_code == 0, r.output
    auc_sample, line = _auc(r.output)
    assert auc_sample < auc_whole - 0.15  # diluted: what the labels below are for
    assert line.endswith("(synthetic records: a random sample of 200 of 800 (--max-rows))"), line
    dcr = [x for x in r.output.splitlines() if x.startswith("DCR ratio")][0]
    assert dcr.endswith("(synthetic records: a random sample of 200 of 800 (--max-rows))"), dcr
    assert ("warning: UserWarning: The privacy figures are computed on the synthetic sample (a random sample of 200 "
            "of 800 (--max-rows)): the membership AUC sees only the training records whose copies were drawn") in r.output
    page = (tmp_path / "r.html").read_text()
    notice = re.search(r'<p class="verdict amber" id="privacy-sample">(.*?)</p>', page)
    assert notice is not None
    assert "The privacy figures are those of a sample of the synthetic file</b> (a random sample of 200 of 800" \
        in notice.group(1)
    assert page.index('id="privacy-sample"') > page.index('<h2 id="privacy">')


def test_a_pipeline_report_of_a_sampled_population_says_its_privacy_figures_are_the_samples(copied_release, tmp_path):
    """The pipeline's evaluate stage names its sample with "synthetic records scored" (evaluate.max_rows): its
    report's privacy section carries the same notice; a report of the whole file has none."""
    from microplex.evaluation import evaluate

    real, synth, hold = (pd.read_parquet(p) for p in copied_release)
    rep = evaluate(real, synth.head(200), holdout_df=hold, pmse=False, progress=False)
    sample = "a random sample of 200 of the population's 800 (evaluate.max_rows), weighted to stand for it"
    text = rep.to_html(tmp_path / "p.html", provenance={"synthetic records scored": sample}).read_text()
    assert f"The privacy figures are those of a sample of the synthetic file</b> ({html.escape(sample)})" in text
    assert "privacy-sample" not in rep.to_html(tmp_path / "w.html").read_text()
