"""Session 55: a differentially private release from a pipeline file (`[model] epsilon/delta/public`), and the
privacy attacks in its evaluate stage (`[evaluate] attacks`). Before, a pipeline refused every DP key ("Unknown
key 'epsilon' in [model]"): only Python and `microplex fit` could make a DP model."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import pandas as pd
import pytest

import test_pipeline
from microplex import DataValidationError, Synthesizer
from microplex.pipeline import run_pipeline

tiny = test_pipeline.tiny
ROOT = Path(__file__).resolve().parents[1]
PUBLIC = "bounds:\n  re78: [0, 25564.67]\n  age: [16, 55]\ncategories:\n  marr: [0, 1]\n"


def _section(title: str) -> str:
    page = (ROOT / "docs" / "privacy.md").read_text(encoding="utf-8")
    return page.split(f"### {title}", 1)[1].split("\n### ", 1)[0]


def test_the_privacy_page_pipeline_runs_as_written(tmp_path, monkeypatch):
    """docs/privacy.md's 'In a pipeline' file, with the public.yaml of 'From the command line', run as written on
    the first 1,500 cps1 records: a DP model (no training row in its file, the budget spent within epsilon), the
    release weighted to the given population, the budget and the membership AUC in the summary and manifest."""
    from microplex.datasets import load_dataset

    monkeypatch.chdir(tmp_path)
    load_dataset("cps1").head(1_500).to_csv("cps1.csv", index=False)
    Path("public.yaml").write_text(re.search(r"```yaml\n(.*?)```", _section("From the command line"), re.S).group(1))
    Path("dp.toml").write_text(re.search(r"```toml\n(.*?)```", _section("In a pipeline"), re.S).group(1))
    result = run_pipeline("dp.toml", progress=False)
    out = tmp_path / "dp-release"
    spent = result.summary["privacy_spent"]
    assert 0.99 <= spent["epsilon"] <= 1.0 and spent["delta"] == 1e-5
    assert 0.3 < result.summary["membership_auc"] < 0.7
    assert "fit_loss" not in result.summary  # a DP fit records no loss (was NaN in summary.json: invalid JSON)
    assert "privacy_spent: epsilon" in result.summary_text() and "secret seed" in result.summary_text()
    json.loads((out / "summary.json").read_text(), parse_constant=lambda c: pytest.fail(f"{c} in summary.json"))
    synth = Synthesizer.load(out / "model.mpx")
    assert synth.privacy_["epsilon"] <= 1.0 and getattr(synth, "training_conditions_", None) is None
    with zipfile.ZipFile(out / "model.mpx") as z:
        assert "conditions.parquet" not in z.namelist()
    population = pd.read_parquet(out / "synthetic.parquet")
    assert len(population) == 3_200 and population["weight"].sum() == pytest.approx(15_992)
    scores = pd.read_csv(out / "scores.csv")
    assert "membership_auc" in set(scores["metric"])
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "differential privacy spent" in html and "final training loss" not in html  # was "final training loss: nan"
    record = json.loads((out / ".microplex" / "fit.json").read_text())
    assert record["figures"]["epsilon"] == pytest.approx(spent["epsilon"])


def _dp(tiny, **model):
    folder, config = tiny
    (folder / "public.yaml").write_text(PUBLIC)
    config = {**config, "model": {**config["model"], "epsilon": 1.0, "delta": 1e-5, "public": "public.yaml",
                                  "epochs": 2, **model},
              "generate": {"n": 60, "population": 1000.0}}
    return folder, config


def test_the_dp_fit_seed_is_secret_unless_asked(tiny):
    """By default the DP fit's noise comes from the operating system, not the file's seed (which a shared pipeline
    file makes public): two forced runs give different models. `secret_seed = false` reproduces the bytes."""
    folder, config = _dp(tiny)
    run_pipeline(config, progress=False)
    first = (folder / "out" / "model.mpx").read_bytes()
    run_pipeline(config, progress=False, force=True)
    assert (folder / "out" / "model.mpx").read_bytes() != first
    fixed = {**config, "model": {**config["model"], "secret_seed": False}}
    run_pipeline({**fixed, "output": "a"}, progress=False)
    run_pipeline({**fixed, "output": "b"}, progress=False)
    assert (folder / "a" / "model.mpx").read_bytes() == (folder / "b" / "model.mpx").read_bytes()
    assert (folder / "a" / "synthetic.parquet").read_bytes() == (folder / "b" / "synthetic.parquet").read_bytes()
    assert "(secret seed)" not in json.loads((folder / "a" / ".microplex" / "fit.json").read_text())["figures"]["note"]


@pytest.mark.parametrize("change, message", [
    ({"model": {"delta": None}}, r"needs \['model.delta'\]"),
    ({"model": {"public": None}}, r"needs \['model.public'\]"),
    ({"model": {"epsilon": None}}, r"differential-privacy settings; they need 'model.epsilon'"),
    ({"model": {"epsilon": 0}}, r"'model.epsilon'"),
    ({"model": {"delta": 1.5}}, r"'model.delta'"),
    ({"model": {"condition_model": False}}, r"'condition_model' must be True"),
    ({"model": {"rounding": True}}, r"'model.rounding' parameter cannot be True with 'epsilon'"),
    ({"model": {"budget_split": "half"}}, r"'model.budget_split' setting must be a table"),
    ({"model": {"budget_split": {"statistics": 0.2, "training": 0.8, "nonsense": 0.1}}}, r"budget_split"),
    ({"generate": {"n": 60}}, r"needs 'generate.population'"),
    ({"generate": {"n": 60, "population": 1000.0, "by": "marr"}}, r"'generate.by' resamples training condition rows"),
    ({"public": "bounds:\n  re78: [0, 25564.67]\n"}, r"Missing: \['age', 'marr'\].*'model.public'"),
    ({"public": PUBLIC + "  sex: [1, 2]\n"}, r"neither targets, conditions nor the weight column: \['sex'\]"),
    ({"weight": "w"}, r"weight column 'w' needs public bounds.*'model.public'"),
    ({"evaluate": {"quasi_identifiers": ["age"]}}, r"act only with 'evaluate.attacks = true'"),
    ({"evaluate": {"attacks": True, "sensitive": ["educ"]}}, r"'evaluate.sensitive' setting names \['educ'\]"),
])
def test_bad_dp_pipeline_settings_fail_before_any_work(tiny, change, message):
    """Each contradiction or gap is refused before the output folder is created, naming the setting."""
    folder, config = _dp(tiny)
    model = {k: v for k, v in {**config["model"], **change.get("model", {})}.items() if v is not None}
    config = {**config, "model": model, "generate": change.get("generate", config["generate"])}
    if "evaluate" in change:
        config["evaluate"] = {"pmse": False, **change["evaluate"]}
    if "public" in change:
        (folder / "public.yaml").write_text(change["public"])
    if "weight" in change:
        frame = pd.read_parquet(folder / "train.parquet").assign(w=1.0)
        frame.to_parquet(folder / "train.parquet")
        config["sources"] = [{**config["sources"][0], "weight": "w"}]
    with pytest.raises(DataValidationError, match=message):
        run_pipeline(config, progress=False)
    assert not (folder / "out").exists()


def test_the_budget_split_of_the_docs_is_accepted(tiny):
    """The documented split `{statistics, training, conditions}`, `max_grad_norm` and `secret_seed = false` reach
    the fit: the up-front check runs the Synthesizer's with the model's columns (with no condition column it
    would refuse a `conditions` share: "a mapping of ['statistics', 'training']")."""
    folder, config = _dp(tiny, budget_split={"statistics": 0.2, "training": 0.5, "conditions": 0.3},
                         max_grad_norm=10.0, secret_seed=False)
    run_pipeline(config, progress=False)
    parts = Synthesizer.load(folder / "out" / "model.mpx").privacy_["mechanisms"]
    assert {m["part"] for m in parts} >= {"statistics", "training"}
    assert Synthesizer.load(folder / "out" / "model.mpx").max_grad_norm == 10.0


def test_dp_settings_are_refused_with_fusion_and_households(tiny):
    folder, config = _dp(tiny)
    fused = {**config, "sources": [*config["sources"], {"name": "b", "path": "train.parquet"}],
             "fuse": {"base": "cps"}}
    with pytest.raises(DataValidationError, match=r"not available with \[fuse\]"):
        run_pipeline(fused, progress=False)
    households = {**config, "model": {"household_id": "marr", "household_vars": ["age"], "person_vars": ["re78"],
                                      "epsilon": 1.0, "delta": 1e-5, "public": "public.yaml"},
                  "generate": {"n_households": 10}}
    with pytest.raises(DataValidationError, match=r"model\.epsilon.*not available in a household pipeline"):
        run_pipeline(households, progress=False)
    assert not (folder / "out").exists()


def test_the_attacks_run_without_dp_too(tiny):
    """`evaluate.attacks` is not tied to DP: a non-DP pipeline reports its membership AUC (and the report its
    attacks section) as well."""
    folder, config = tiny
    run_pipeline({**config, "generate": {"n": 120}, "evaluate": {"pmse": False, "attacks": True}}, progress=False)
    summary = json.loads((folder / "out" / "summary.json").read_text())
    assert 0.0 <= summary["membership_auc"] <= 1.0
    assert "membership" in (folder / "out" / "report.html").read_text(encoding="utf-8").lower()
