"""The evaluation report and ``microplex evaluate``: what --max-rows samples, the privacy problems in the
verdict, the pMSE rows, the point-mass values and the variables left out of the plots."""

import re
from html import unescape as html_unescape

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


def _verdict(text: str) -> tuple[str, str]:
    """The light and the words of the report's headline verdict."""
    m = re.search(r'<p class="verdict ([a-z]+)" id="verdict">(.*?)</p>', text, re.S)
    return m.group(1), re.sub("<[^>]+>", "", m.group(2))


@pytest.fixture(scope="module")
def copy_report(cps1):
    """The report of a release that is its 1,000 training records shuffled, with 1,000 other records as holdout
    (no attacks): every fidelity score is green, and privacy_summary warns."""
    from microplex.evaluation import PrivacyRiskWarning, evaluate

    order = np.random.default_rng(3).permutation(len(cps1))
    real, hold = cps1.iloc[order[:1000]], cps1.iloc[order[1000:2000]]
    with pytest.warns(PrivacyRiskWarning) as caught:
        rep = evaluate(real, real.sample(frac=1, random_state=3), holdout_df=hold, pmse=False, progress=False)
    return rep, [str(w.message) for w in caught if w.category is PrivacyRiskWarning]


def test_a_copy_of_the_training_file_reads_red_with_its_privacy_problems(copy_report):
    from microplex.evaluation._html import render_html
    from microplex.evaluation._verdict import report_verdicts

    rep, warned = copy_report
    assert rep.score("exact_copy_rate_synthetic") == 1.0 and rep.score("dcr_ratio") == 0.0
    assert set(report_verdicts(rep)["verdict"]) == {"green"}  # the fidelity scores alone read green
    text = render_html(rep)
    light, words = _verdict(text)
    assert light == "red" and "privacy problems" in words
    assert "every judged score is within its floor's range" not in words
    # the problems, as the warning states them, in a red notice right under the verdict
    notice = re.search(r'<p class="verdict red" id="privacy-problems">(.*?)</p>', text, re.S)
    assert notice is not None and text.index('id="verdict"') < notice.start() < text.index('id="targets"')
    shown = html_unescape(re.sub("<[^>]+>", "", notice.group(1)))
    assert "100.0% of synthetic records copy a training record exactly" in shown
    assert "ratio 0.000 < 0.9" in shown
    assert len(warned) == 1 and warned[0].removeprefix("Possible disclosure risk: ").rstrip(".") in shown


def test_a_fresh_release_shows_no_privacy_problem(cps1):
    from microplex.evaluation import evaluate
    from microplex.evaluation._html import render_html
    from microplex.evaluation.privacy import privacy_problems

    order = np.random.default_rng(4).permutation(len(cps1))
    real, syn, hold = (cps1.iloc[order[i:i + 1000]] for i in (0, 1000, 2000))
    rep = evaluate(real, syn, holdout_df=hold, pmse=False, progress=False)
    assert privacy_problems(rep.privacy, len(syn), len(hold)) == []
    text = render_html(rep)
    assert 'id="privacy-problems"' not in text and "privacy problems" not in _verdict(text)[1]


def test_privacy_problems_is_the_rule_of_the_warning():
    from microplex.evaluation.privacy import privacy_problems

    base = {"dcr_synthetic_median": 0.5, "dcr_holdout_median": 1.0, "dcr_ratio": 0.5, "dcr_close_share": 0.2,
            "exact_copy_rate_synthetic": 0.02, "exact_copy_rate_holdout": 0.01}
    n = 100_000  # rates of 100,000 rows each: 3 standard errors of the difference are under 1 point
    assert len(privacy_problems(base, n, n)) == 1 and "ratio 0.500 < 0.9" in privacy_problems(base, n, n)[0]
    assert privacy_problems(base, n, n, ratio_threshold=0.5) == []  # below the threshold, not at it
    assert privacy_problems({**base, "dcr_ratio": 0.9}, n, n) == []
    copies = privacy_problems({**base, "dcr_ratio": 1.0, "exact_copy_rate_synthetic": 0.0201}, n, n)
    assert len(copies) == 1 and "2.0% of synthetic records copy" in copies[0]
    assert privacy_problems({**base, "dcr_ratio": 1.0, "exact_copy_rate_synthetic": 0.0199}, n, n) == []
    assert privacy_problems({**base, "dcr_ratio": float("nan")}, n, n) == []  # both medians 0: no ratio to judge


def test_a_copy_rate_within_sampling_noise_of_the_holdouts_is_no_privacy_problem():
    """cps1's tutorial release (default schedule): 14.0% of 10,000 synthetic records equal a training record, 12.8%
    of 3,199 holdout records do (zero earnings and common demographics): 1.2 points apart, 1.8 standard errors.
    A rule of 1 point alone called it a disclosure risk and turned the report red; 16% is one."""
    from microplex.evaluation.privacy import privacy_problems, share_exceeds

    base = {"dcr_synthetic_median": 1.0, "dcr_holdout_median": 1.0, "dcr_ratio": 1.0, "dcr_close_share": 0.05,
            "exact_copy_rate_synthetic": 0.140, "exact_copy_rate_holdout": 0.128}
    assert privacy_problems(base, 10_000, 3_199) == []
    assert len(privacy_problems({**base, "exact_copy_rate_synthetic": 0.160}, 10_000, 3_199)) == 1
    # the holdout-overlap rule is the same test: 3 standard errors (pooled), and at least 1 point
    se = np.sqrt(0.5 * 0.5 * (2 / 1_000))
    assert share_exceeds(0.5 + 3 * se + 1e-9, 1_000, 0.5 - 1e-12, 1_000) is True
    assert share_exceeds(0.5 + 2.9 * se, 1_000, 0.5, 1_000) is False


def test_pmse_rows_count_the_records_the_classifier_saw(cps1):
    """Records of weight 0 are left out by pmse before it fits: the rows shown are those of positive weight."""
    from unittest import mock

    import sklearn.ensemble as ens

    from microplex.evaluation import evaluate
    from microplex.evaluation._html import render_html
    from microplex.evaluation._verdict import key_numbers

    rng = np.random.default_rng(0)
    df = cps1.sample(3000, random_state=1).reset_index(drop=True)
    real, syn = df.iloc[:1500].copy(), df.iloc[1500:].copy()
    real["w"] = np.where(rng.random(1500) < 0.4, 0.0, 1.0)
    syn["sw"] = np.where(rng.random(1500) < 0.6, 0.0, 2.0)
    fits = []

    class Spy(ens.HistGradientBoostingClassifier):
        def fit(self, X, y, sample_weight=None):
            fits.append((int((y == 0).sum()), int((y == 1).sum())))
            return super().fit(X, y, sample_weight=sample_weight)

    with mock.patch.object(ens, "HistGradientBoostingClassifier", Spy):
        rep = evaluate(real, syn, weight_col="w", synthetic_weight_col="sw", progress=False)
    n_real, n_syn = int((real["w"] > 0).sum()), int((syn["sw"] > 0).sum())
    assert (fits[0][0] + fits[1][0], fits[0][1] + fits[1][1]) == (n_real, n_syn)  # the 2 folds of one repeat
    assert n_real < 1000 and n_syn < 700  # not the 1,500 records a side
    shown = f"{n_real:,} real + {n_syn:,} synthetic"
    assert [line for line in key_numbers(rep) if line.startswith("pMSE")][0].endswith(f" on {shown} rows")
    assert f"pMSE rows:</span> {shown}</div>" in render_html(rep)


def test_pmse_rows_say_random_samples_only_above_the_cap_of_positive_weights():
    from microplex.evaluation._verdict import pmse_rows

    many = np.r_[np.ones(15_000), np.zeros(10_000)]
    assert pmse_rows(many, np.ones(500)) == "15,000 real + 500 synthetic"
    assert pmse_rows(np.ones(25_000), many) == "20,000 real + 15,000 synthetic (random samples)"


def _card(text: str, name: str) -> str:
    """The Variables card of ``name``, without its images."""
    text = re.sub(r"<img[^>]*>", "", text)
    start = text.index(f"<h3>{name} ")
    return text[start:text.index("</div></div>", start)]


def test_point_mass_values_are_written_in_full_and_distinct():
    from microplex.evaluation import evaluate
    from microplex.evaluation._html import render_html

    rng = np.random.default_rng(0)
    x = rng.lognormal(10, 0.6, 1000).round(2)
    x[:150], x[150:300], x[300:400] = 99999.0, 100000.0, 25564.67
    real = pd.DataFrame({"inc": x, "age": rng.integers(18, 80, 1000)})
    syn = real.sample(frac=1, random_state=1).reset_index(drop=True)
    syn.loc[:100, "inc"] = 50000.0
    rep = evaluate(real, syn, pmse=False, progress=False)
    assert rep.point_masses["inc"]["value"].tolist() == [25564.67, 50000.0, 99999.0, 100000.0]
    rows = [re.sub(r"\s+", " ", re.sub("<[^>]+>", " ", r)).strip()
            for r in re.findall(r"<tr>.*?</tr>", _card(render_html(rep), "inc"), re.S)]
    # the point-mass table: each value as the cut labels write it (integers in full, no two alike); shares .4g
    assert rows[-4:] == ["25564.7 0.1 0.091 0.009", "50000 0 0.101 0.101", "99999 0.15 0.133 0.017",
                         "100000 0.15 0.14 0.01"]


def _section(text: str, start: str, end: str) -> str:
    """The page between the heading ``id="start"`` and the heading ``id="end"``, tags dropped."""
    part = text[text.index(f'id="{start}"'):text.index(f'id="{end}"')]
    return re.sub(r"\s+", " ", re.sub("<[^>]+>", " ", re.sub(r"<img[^>]*>", "", part)))


def test_the_report_says_which_variables_its_plots_leave_out():
    from microplex.evaluation import evaluate
    from microplex.evaluation._html import MAX_VARIABLES, render_html

    rng = np.random.default_rng(0)

    def frame():
        out = pd.DataFrame({f"v{i:02d}": rng.normal(size=400) for i in range(45)})
        return out.assign(g=rng.choice(["a", "b"], 400))

    text = render_html(evaluate(frame(), frame(), conditions=["g"], pmse=False, progress=False))
    assert MAX_VARIABLES == 40
    cards = re.findall(r"<h3>(\w+) <span", text)
    assert len(cards) == 40 and cards[-1] == "v39"  # the 45 targets first, then the condition
    assert "Only the first 40 of 46 variables are drawn; every variable is in the score tables." in _section(text, "variables", "correlations")
    assert "Only the first 40 of 45 numeric variables are drawn" in _section(text, "correlations", "all-scores")
    assert "Only the first 40 of 45 variables are drawn" in _section(text, "subgroups", "variables")


def test_the_report_says_nothing_is_left_out_at_40_variables():
    from microplex.evaluation import evaluate
    from microplex.evaluation._html import render_html

    rng = np.random.default_rng(1)
    real, syn = ({f"v{i:02d}": rng.normal(size=300) for i in range(40)} for _ in range(2))
    text = render_html(evaluate(pd.DataFrame(real), pd.DataFrame(syn), pmse=False, progress=False))
    assert len(re.findall(r"<h3>(\w+) <span", text)) == 40 and "first 40 of" not in text


def test_quantiles_are_written_with_their_integer_digits_and_a_cut_is_said_only_when_made(monkeypatch):
    """The Variables quantile table wrote a top code of 100,000 as ``1e+05`` (5 significant digits, the form 99,999.5
    takes too); a subgroup heat map of exactly 30 cells was titled "(first 30 cells)", though none was left out."""
    import matplotlib.axes

    from microplex.evaluation import evaluate
    from microplex.evaluation._html import render_html
    from microplex.evaluation._plots_file import subgroup_plot

    rng = np.random.default_rng(0)
    x = np.where(rng.random(1000) < 0.6, 100000.0, rng.lognormal(10, 0.6, 1000).round(2))
    real = pd.DataFrame({"inc": x, "age": rng.integers(18, 80, 1000)})
    rep = evaluate(real, real.sample(frac=1, random_state=1).reset_index(drop=True), pmse=False, progress=False)
    rows = [re.sub(r"\s+", " ", re.sub("<[^>]+>", " ", r)).strip()
            for r in re.findall(r"<tr>.*?</tr>", _card(render_html(rep), "inc"), re.S)]
    real_row = next(r for r in rows if r.startswith("real "))
    assert real_row.split()[2:] == ["100000", "100000", "100000"] and "e+" not in real_row  # p50, p99, p99.9
    titles = []
    monkeypatch.setattr(matplotlib.axes.Axes, "set_title", lambda self, t, *a, **k: titles.append(t))
    for cells in (30, 31):
        subgroup_plot("g", pd.DataFrame(np.full((2, cells), 0.1), index=["a", "b"],
                                        columns=[f"c{i}" for i in range(cells)]))
    assert titles == ["within each cell of g", "within each cell of g (first 30 cells)"]
