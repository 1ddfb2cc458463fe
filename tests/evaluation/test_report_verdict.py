"""The report's provenance header, real-vs-real floor and verdicts, targets vs given conditions."""

import re

import numpy as np
import pandas as pd
import pytest

from microplex.evaluation import evaluate
from microplex.evaluation._verdict import attack_table, floor_scores, key_numbers, light, report_verdicts, verdict_table


def make(n=800, seed=0, shift=0.0):
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, n)
    return pd.DataFrame({
        "age": age, "sex": rng.choice(["f", "m"], n),
        "income": np.where(rng.random(n) < 0.2, 0.0, rng.lognormal(10 + shift, 1, n)),
    })


class Model:
    """A stand-in fitted estimator: parameters, a training history and weights."""

    condition_vars = ["age"]

    def get_params(self, deep=True):
        return {"target_vars": ["income", "sex"], "condition_vars": ["age"], "epochs": "auto",
                "flow": "<b>maf</b>"}

    history_ = pd.DataFrame({"epoch": [1, 2, 3], "train_loss": [3.0, 2.5, 2.25], "val_loss": np.nan})
    training_weights_ = np.ones(800)


@pytest.mark.parametrize("value, floor, direction, expected", [
    (0.070, 0.050, "lower", "green"),    # <= 1.5 x floor (above floor + 0.01)
    (0.019, 0.010, "lower", "green"),    # <= floor + 0.01 (above 1.5 x floor)
    (0.031, 0.020, "lower", "amber"),    # above both green bars, <= 3 x floor
    (0.061, 0.020, "lower", "red"),
    (0.039, 0.010, "lower", "amber"),    # <= floor + 0.03 (above 3 x floor)
    (0.041, 0.010, "lower", "red"),
    (0.970, 0.980, "higher", "green"),   # distances 0.03 vs 0.02
    (0.900, 0.980, "higher", "red"),     # distances 0.10 vs 0.02
    (0.0, 0.0, "lower", "green"),
])
def test_light_thresholds(value, floor, direction, expected):
    assert light(value, floor, direction) == expected


def test_floor_is_the_holdout_scored_against_the_real_records():
    real, synth, hold = make(), make(seed=1, shift=0.5), make(seed=2)
    rep = evaluate(real, synth, holdout_df=hold, conditions=["sex"], pmse=False)
    direct = floor_scores(real, hold, None, None, ["sex"], 0)
    pd.testing.assert_frame_equal(rep.floor.reset_index(drop=True), direct.reset_index(drop=True))
    assert rep.floor.query("metric == 'ks' and variable == 'income'")["value"].iloc[0] < 0.1
    assert "pmse" not in set(rep.floor["metric"])
    assert evaluate(real, synth, pmse=False).floor is None


def test_verdicts_judge_targets_not_conditions_or_pairs():
    real, hold = make(), make(seed=2)
    rep = evaluate(real, make(seed=1, shift=1.0), holdout_df=hold, conditions=["sex"], pmse=False)
    table = verdict_table(rep.scores, rep.floor, ["sex", "age"])
    assert set(table["variable"]) <= {"income", "all"}
    assert not table["variable"].str.contains("|", regex=False).any()
    assert table.query("metric == 'ks' and variable == 'income'")["verdict"].iloc[0] == "red"  # shifted incomes
    good = evaluate(real, make(seed=3), holdout_df=hold, conditions=["sex"], pmse=False)
    table = verdict_table(good.scores, good.floor, ["sex", "age"])
    assert table.query("metric == 'ks' and variable == 'income'")["verdict"].iloc[0] == "green"  # a fresh sample


def test_provenance_records_version_date_seed_sizes_and_time():
    rep = evaluate(make(), make(seed=1), holdout_df=make(n=300, seed=2), pmse=False, seed=7)
    p = rep.provenance
    assert p["seed"] == 7 and p["real records"] == 800 and p["synthetic records"] == 800
    assert p["holdout records"] == 300 and p["evaluate seconds"] >= 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", p["evaluated"])
    assert p["microplex"]


def test_html_has_header_verdict_targets_conditions_and_collapsed_scores(tmp_path):
    real = make()
    rep = evaluate(real, make(seed=1, shift=1.0), holdout_df=make(seed=2), conditions=["sex"], pmse=False)
    text = rep.to_html(tmp_path / "r.html", model=Model(), provenance={"fit seed": 3}).read_text()
    header = text[text.index('id="provenance"'):text.index('id="verdict"')]
    for item in ("microplex:", "evaluated:", "real records:</span> 800", "model epochs:</span> auto",
                 "epochs run:</span> 3", "final training loss:</span> 2.25", "fit seed:</span> 3"):
        assert item in header, item
    assert '<p class="verdict red" id="verdict">' in text
    targets = text[text.index('id="targets"'):text.index('id="conditions"')]
    conditions = text[text.index('id="conditions"'):text.index('id="whole-file"')]
    assert "<th>income</th>" in targets and 'class="light red"' in targets
    assert ">age<" not in targets and ">sex<" not in targets       # given by the model / the subgroups
    assert ">age<" in conditions and ">sex<" in conditions and "light" not in conditions
    assert re.search(r'<details id="all-scores"><summary>All scores \([\d,]+ rows\)</summary>', text)


def test_html_without_holdout_says_there_is_no_floor(tmp_path):
    rep = evaluate(make(), make(seed=1), pmse=False)
    text = rep.to_html(tmp_path / "r.html").read_text()
    assert "No holdout was given" in text and 'class="light' not in text


def test_html_escapes_user_strings_in_the_new_sections(tmp_path):
    real = make().rename(columns={"income": "<img src=x onerror=alert(1)>"})
    synth = make(seed=1).rename(columns={"income": "<img src=x onerror=alert(1)>"})
    hold = make(seed=2).rename(columns={"income": "<img src=x onerror=alert(1)>"})
    rep = evaluate(real, synth, holdout_df=hold, conditions=["sex"], pmse=False)
    text = rep.to_html(tmp_path / "r.html", title="<script>t</script>", model=Model(),
                       provenance={"<script>k</script>": "<script>v</script>"}).read_text()
    assert "<script" not in text and "<img src=x" not in text
    assert "&lt;script&gt;k&lt;/script&gt;" in text and "&lt;b&gt;maf&lt;/b&gt;" in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text


def test_report_screenshot_shows_the_verdict_lights(tmp_path):
    """Headless Chromium draws the header and the traffic lights (skipped without Chromium)."""
    from tests.evaluation.test_html_chromium import CHROMIUM, render

    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    from PIL import Image

    rep = evaluate(make(), make(seed=1, shift=1.0), holdout_df=make(seed=2), conditions=["sex"], pmse=False)
    path = rep.to_html(tmp_path / "report.html", model=Model())
    proc, shot, console = render(path, tmp_path, size="1400,1000")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert console == []
    rgb = np.asarray(Image.open(shot).convert("RGB"), dtype=int)
    for color in ((0xc6, 0x28, 0x28), (0x2e, 0x7d, 0x32)):   # the red and green lights, above the fold
        assert (np.abs(rgb - color).sum(axis=2) < 12).sum() > 200, color
    assert (np.asarray(Image.open(shot).convert("L")) < 245).mean() > 0.05


@pytest.mark.parametrize("auc, expected", [(0.3, "green"), (0.55, "green"), (0.56, "amber"), (0.6, "amber"),
                                           (0.61, "red")])
def test_attacks_are_judged_against_fresh_data(auc, expected):
    found = {"membership_auc": auc, "attribute_disclosure": {"inc": {
        "disco_synthetic": 0.07, "disco_holdout": 0.05, "attribution_synthetic": 0.46, "attribution_holdout": 0.4}}}
    table = attack_table(found)
    assert table[["metric", "variable", "floor", "verdict"]].values.tolist() == [
        ["membership_auc", "all", 0.5, expected],
        ["disco_synthetic", "inc", 0.05, "green"],        # 0.02 above the holdout's
        ["attribution_synthetic", "inc", 0.4, "amber"],   # 0.06 above: amber, where a relative bar (1.5 x) said green
    ]
    worse = {"membership_auc": 0.5, "attribute_disclosure": {"inc": {
        "disco_synthetic": 0.2, "disco_holdout": 0.05, "attribution_synthetic": 0.6, "attribution_holdout": 0.4}}}
    assert attack_table(worse)["verdict"].tolist() == ["green", "red", "red"]
    assert list(table.columns) == ["metric", "variable", "subgroup", "value", "floor", "verdict"]
    assert attack_table(None).empty


def test_the_command_line_verdict_counts_the_attacks():
    from microplex.evaluation import PrivacyRiskWarning

    real = make()
    with pytest.warns(PrivacyRiskWarning):  # a copy of the training records
        rep = evaluate(real, real.copy(), holdout_df=make(seed=2), conditions=["sex"], pmse=False, progress=False,
                       attacks=True)
    fidelity = verdict_table(rep.scores, rep.floor, ["sex"])
    table = report_verdicts(rep, ["sex"])
    assert (fidelity["verdict"] == "green").all()
    assert len(table) == len(fidelity) + 5  # the AUC, DiSCO and attribution of age and income
    assert table.iloc[len(fidelity)][["metric", "verdict"]].tolist() == ["membership_auc", "red"]
    lines = key_numbers(rep)
    scored = rep.attacks["membership_rows"]
    assert (f"membership AUC (0.5: no advantage): {rep.attacks['membership_auc']:.4f} on "
            f"{scored['training'][1]:,} training and {scored['holdout'][1]:,} holdout records") in lines
    counts = table["verdict"].value_counts()
    assert lines[-2] == ("verdict against the real-vs-real floor and, for the attacks, fresh data: "
                         f"{counts.get('green', 0)} green, {counts.get('amber', 0)} amber, {counts['red']} red")
    # the copy's privacy problems, as the HTML report's red notice lists them (session 73)
    assert lines[-1].startswith("privacy problems (the report's verdict is red whatever the scores): ")
    assert lines[-1].endswith("; 100.0% of synthetic records copy a training record exactly (holdout: 14.5%)")
