"""Codes written as numbers, declared categorical from the command line and the pipeline (session 64).

A PUMA, county or occupation code written as a number (census2000's ``puma``: 610 codes from 100 to 8,000) is a
number to the Synthesizer's inference. With a condition model (``--condition-model``, every DP fit), the model
drew the codes as an integer, between the codes: on census2000 (3 epochs) 16% of the generated PUMA codes and
57% of the (state, PUMA) pairs exist nowhere. Declared categorical (``schema={"puma": VariableSpec(kind=
"categorical")}``), it drew none; the command line and the pipeline could not declare it. They can now
(``microplex fit --categorical``, ``[model] categorical``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import test_pipeline
import test_s55_pipeline_dp
from microplex import DataValidationError, HouseholdSynthesizer, Synthesizer, VariableSpec
from microplex.cli import app
from microplex.datasets import load_dataset
from microplex.pipeline import run_pipeline
from microplex.synthesis.schema import declare_categorical

tiny = test_pipeline.tiny

#: Sparse codes (no two consecutive): drawn as a number, most values in between exist nowhere.
CODES = np.array([101, 1300, 2502, 3700, 4101, 5900, 7302, 8000, 8800, 9913, 10500, 11200, 12700, 13001,
                  14400, 15603, 16000, 17302, 18100, 19900, 21000, 22400, 23502, 24000, 25700])


def _coded(n: int = 1500, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    code = rng.choice(CODES, n)
    return pd.DataFrame({"code": code, "age": rng.integers(18, 80, n),
                         "income": np.round(np.exp(rng.normal(9 + (code % 7) / 10, 0.5, n)), 2)})


def test_declare_categorical_keeps_the_other_settings():
    schema = declare_categorical({"income": VariableSpec(point_masses=(0.0,)),
                                  "code": VariableSpec(transform="identity")}, ["code", "age"])
    assert schema["code"] == VariableSpec(kind="categorical", transform="identity")
    assert schema["age"] == VariableSpec(kind="categorical")
    assert schema["income"] == VariableSpec(point_masses=(0.0,))  # untouched
    assert declare_categorical(None, []) is None


def test_cli_fit_categorical_codes_are_drawn_among_the_codes(tmp_path):
    data = tmp_path / "d.csv"
    _coded().to_csv(data, index=False)
    runner = CliRunner()
    common = ["fit", str(data), "--targets", "income", "--conditions", "code,age", "--condition-model",
              "--epochs", "2", "-q"]
    result = runner.invoke(app, [*common, "--categorical", "code", "-o", str(tmp_path / "m.mpx")])
    assert result.exit_code == 0, result.output
    synth = Synthesizer.load(tmp_path / "m.mpx")
    assert synth.kinds_["code"] == "categorical" and synth.kinds_["age"] == "continuous"
    assert synth.condition_model_.kinds_["code"] == "categorical"
    result = runner.invoke(app, ["generate", str(tmp_path / "m.mpx"), "--n", "3000", "-o", str(tmp_path / "g.parquet"),
                                 "-q"])
    assert result.exit_code == 0, result.output
    drawn = pd.read_parquet(tmp_path / "g.parquet")
    assert drawn["code"].isin(CODES).all() and drawn["code"].nunique() >= 20
    assert drawn["code"].dtype == np.int64
    # undeclared, the same codes are a number to the model: the condition model draws them as an integer
    result = runner.invoke(app, [*common, "-o", str(tmp_path / "n.mpx")])
    assert result.exit_code == 0, result.output
    assert Synthesizer.load(tmp_path / "n.mpx").condition_model_.kinds_["code"] == "integer"


@pytest.mark.parametrize("value, message", [
    ("income,zip", r"The '--categorical' columns \['zip'\] are not among the --targets or --conditions"),
    ("code,code", r"The '--categorical' option must be a comma-separated list of distinct column names"),
])
def test_cli_fit_categorical_refusals(tmp_path, value, message):
    data = tmp_path / "d.csv"
    _coded(50).to_csv(data, index=False)
    result = CliRunner().invoke(app, ["fit", str(data), "--targets", "income", "--conditions", "code",
                                      "--categorical", value, "-o", str(tmp_path / "m.mpx")])
    assert result.exit_code == 1 and pd.Series([result.output]).str.contains(message).all(), result.output
    assert not (tmp_path / "m.mpx").exists()


def test_cli_fit_categorical_merges_with_the_public_metadata_of_a_dp_fit(tmp_path):
    """The public file's schema entries (point masses) stay; a declared column needs public categories."""
    data = tmp_path / "d.csv"
    _coded(400).to_csv(data, index=False)
    public = tmp_path / "public.yaml"
    public.write_text("bounds: {income: [0, 1000000], age: [18, 80]}\npoint_masses: {income: [0]}\n"
                      f"categories: {{code: {CODES.tolist()}}}\n")
    args = ["fit", str(data), "--targets", "income", "--conditions", "code,age", "--epsilon", "5", "--delta", "1e-5",
            "--public", str(public), "--epochs", "1", "--seed", "0", "-q"]
    result = CliRunner().invoke(app, [*args, "--categorical", "code", "-o", str(tmp_path / "m.mpx")])
    assert result.exit_code == 0, result.output
    synth = Synthesizer.load(tmp_path / "m.mpx")
    assert synth.schema["code"].kind == "categorical" and synth.schema["income"].point_masses == (0.0,)
    public.write_text("bounds: {income: [0, 1000000], age: [18, 80], code: [101, 25700]}\n")
    result = CliRunner().invoke(app, [*args, "--categorical", "code", "-o", str(tmp_path / "m2.mpx")])
    assert result.exit_code == 1, result.output
    assert "The '--categorical' columns ['code'] have no categories in the public metadata file" in result.output
    assert not (tmp_path / "m2.mpx").exists()


@pytest.fixture()
def coded_config(tmp_path):
    _coded(300).to_parquet(tmp_path / "d.parquet")
    return tmp_path, {"_base": str(tmp_path), "output": "out", "seed": 0,
                      "sources": [{"name": "d", "path": "d.parquet"}],
                      "model": {"targets": ["income"], "conditions": ["code", "age"], "epochs": 1,
                                "condition_model": True, "categorical": ["code"]},
                      "generate": {"n": 400}}


def test_pipeline_model_categorical(coded_config):
    folder, config = coded_config
    run_pipeline(config, progress=False)
    synth = Synthesizer.load(folder / "out" / "model.mpx")
    assert synth.kinds_["code"] == "categorical" and synth.condition_model_.kinds_["code"] == "categorical"
    assert pd.read_parquet(folder / "out" / "synthetic.parquet")["code"].isin(CODES).all()


def test_pipeline_model_categorical_must_name_model_columns(coded_config):
    folder, config = coded_config
    with pytest.raises(DataValidationError, match=r"'model.categorical' setting names \['zip'\], which are not model "
                                                  r"columns \('model.targets', 'model.conditions'\)"):
        run_pipeline({**config, "model": {**config["model"], "categorical": ["code", "zip"]}}, progress=False)
    with pytest.raises(DataValidationError, match=r"'model.categorical' parameter must be"):
        run_pipeline({**config, "model": {**config["model"], "categorical": "code"}}, progress=False)
    assert not (folder / "out").exists()


def test_household_pipeline_model_categorical(tmp_path):
    silc = load_dataset("eusilc")
    silc[silc.db030 <= 200].to_parquet(tmp_path / "silc.parquet")
    model = {"household_id": "db030", "household_vars": ["db040", "hsize"], "person_vars": ["age", "py010n"],
             "person_id": "rb030", "size_var": "hsize", "age_var": "age", "epochs": 1, "categorical": ["hsize"]}
    config = {"_base": str(tmp_path), "output": "out", "seed": 0,
              "sources": [{"name": "silc", "path": "silc.parquet", "weight": "db090"}],
              "model": model, "generate": {"n_households": 50}}
    run_pipeline(config, progress=False)
    hs = HouseholdSynthesizer.load(tmp_path / "out" / "model.mpx")
    assert hs.schema == {"hsize": VariableSpec(kind="categorical")}
    with pytest.raises(DataValidationError, match=r"names \['exper'\], which are not model columns \("
                                                  r"'model.household_vars', 'model.person_vars'\)"):
        run_pipeline({**config, "output": "out2", "model": {**model, "categorical": ["exper"]}}, progress=False)
    # the age is a number: the model draws the gaps between members' ages (was: a TypeError inside the fit)
    with pytest.raises(DataValidationError, match=r"names the 'model.age_var' column 'age'; an age is a number"):
        run_pipeline({**config, "output": "out2", "model": {**model, "categorical": ["age"]}}, progress=False)
    with pytest.raises(DataValidationError, match=r"The 'age_var' column 'age' is declared categorical in 'schema'"):
        HouseholdSynthesizer(["hsize"], ["age"], "db030", age_var="age",
                             schema={"age": VariableSpec(kind="categorical")}).fit(silc, seed=0)
    assert not (tmp_path / "out2").exists()


def test_dp_pipeline_model_categorical_needs_public_categories(tiny):
    """With DP a column is categorical exactly when the public metadata lists its categories: a declared column it
    does not list is refused before any stage, in the setting's words (the Synthesizer's check names 'schema')."""
    folder, config = test_s55_pipeline_dp._dp(tiny, categorical=["age"])
    with pytest.raises(DataValidationError, match=r"The 'model.categorical' columns \['age'\] have no categories in "
                                                  r"the public metadata file"):
        run_pipeline(config, progress=False)
    assert not (folder / "out").exists()
    folder, config = test_s55_pipeline_dp._dp(tiny, categorical=["marr"])  # listed there: categorical already
    run_pipeline(config, progress=False)
    assert Synthesizer.load(folder / "out" / "model.mpx").kinds_["marr"] == "categorical"
