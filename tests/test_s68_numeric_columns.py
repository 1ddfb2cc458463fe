"""Columns read as numbers whatever the file writes (session 68).

A file cannot tell integer amounts padded to a fixed width (``0009189``, a fixed-width export) from codes written
with leading zeros (``013``): ``read_table`` reads both as codes (text). Session 63 refused such amounts as a target
when most of their values are one record's each, but heaped amounts (incomes rounded to 100: values repeat) passed
and were modelled as hundreds of categories, every draw a copy of a training value, with no word. The user now says
which columns are numbers: ``read_table(path, numeric=[...])``, ``--numeric`` on the commands that read tables, and
a source's ``numeric`` setting in a pipeline.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from microplex import DataValidationError, Synthesizer
from microplex.cli import app
from microplex.io import as_numbers, read_table


def _heaped_padded(tmp_path, n: int = 600):
    """A CSV file of ages, county codes and incomes rounded to 1,000, padded to 7 digits (values repeat: the
    session-63 refusal does not see them); and the numbers written."""
    rng = np.random.default_rng(0)
    income = (rng.lognormal(10, 0.6, n) / 1000).round().astype(int) * 1000
    age = rng.integers(18, 80, n)
    county = rng.choice(["001", "013", "105"], n)
    f = tmp_path / "d.csv"
    pd.DataFrame({"age": age, "county": county, "income": [f"{v:07d}" for v in income]}).to_csv(f, index=False)
    return f, income, age


def test_named_columns_are_read_as_the_numbers_they_write(tmp_path):
    f, income, _ = _heaped_padded(tmp_path)
    plain = read_table(f)
    assert plain["income"].iloc[0] == f"{income[0]:07d}"  # a file alone: codes, as before
    assert plain["income"].nunique() > 20 and plain["income"].value_counts().iloc[0] > 1  # heaped: values repeat
    df = read_table(f, numeric=["income"])
    assert df["income"].dtype == np.int64 and df["income"].tolist() == income.tolist()
    assert df["county"].tolist() == plain["county"].tolist()  # other codes stay codes
    both = read_table(f, numeric=("income", "county"))
    assert both["county"].dtype == np.int64 and set(both["county"]) == {1, 13, 105}


def test_missing_cells_stay_missing_and_decimals_make_floats(tmp_path):
    f = tmp_path / "d.csv"
    f.write_text("a,b,c\n0009189,007.5,$1,200\n,0000012,0000300\n0000250,0000001,0000002\n".replace("$1,200", '"$1,200"'))
    df = read_table(f, numeric=["a", "b", "c"])
    assert df["a"].dtype == np.float64 and df["a"].tolist()[0] == 9189.0 and np.isnan(df["a"][1])
    assert df["b"].dtype == np.float64 and df["b"].tolist() == [7.5, 12.0, 1.0]
    assert df["c"].dtype == np.int64 and df["c"].tolist() == [1200, 300, 2]


def test_other_formats_and_numeric_columns(tmp_path):
    """A JSON file's padded strings and a Parquet text column convert alike; a column already numeric is kept."""
    j = tmp_path / "d.json"
    pd.DataFrame({"income": ["0009189", "0000250"], "age": [30, 40]}).to_json(j, orient="records")
    assert read_table(j)["income"].tolist() == ["0009189", "0000250"]
    df = read_table(j, numeric=["income", "age"])
    assert df["income"].tolist() == [9189, 250] and df["age"].tolist() == [30, 40]
    p = tmp_path / "d.parquet"
    pd.DataFrame({"income": pd.array(["0009189", None], dtype="string"), "x": [1.5, 2.5]}).to_parquet(p)
    df = read_table(p, numeric=["income", "x"])
    assert df["income"].dtype == np.float64 and df["income"][0] == 9189.0 and np.isnan(df["income"][1])
    assert df["x"].tolist() == [1.5, 2.5]


def test_as_numbers_leaves_the_callers_frame_as_it_was():
    frame = pd.DataFrame({"inc": ["0009189", "0000250"], "k": ["a", "b"]})
    out = as_numbers(frame, ["inc"], "a table")
    assert out["inc"].tolist() == [9189, 250] and frame["inc"].tolist() == ["0009189", "0000250"]


def test_bad_names_and_cells_are_refused(tmp_path):
    f = tmp_path / "d.csv"
    f.write_text("income,label\n0009189,a\n0000250,b\n")
    with pytest.raises(DataValidationError, match=r"The columns \['incme'\] to read as numbers are not columns of "
                                                  r"the table '.*d\.csv'.*'income'"):
        read_table(f, numeric=["incme"])
    with pytest.raises(DataValidationError, match=r"Column 'label' of the table '.*d\.csv', to be read as numbers, "
                                                  r"holds 2 cells that are no number \(first: 'a'\)"):
        read_table(f, numeric=["label"])
    for bad in ("income", ["income", "income"], [1], [""], None):
        with pytest.raises(DataValidationError, match="The 'numeric' parameter must be a list of distinct column names"):
            read_table(f, numeric=bad)
    frame = pd.DataFrame({"d": [pd.Timestamp("2020-01-01"), None]}).astype(object)
    with pytest.raises(DataValidationError, match=r"Column 'd' of x, to be read as numbers, holds Timestamp values"):
        as_numbers(frame, ["d"], "x")


def test_fit_models_the_named_amounts_as_numbers(tmp_path):
    """Without ``--numeric`` the heaped padded incomes are fitted as categories (a file cannot say); with it, as
    an integer amount, and the draws are numbers the training data did not all hold."""
    f, income, _ = _heaped_padded(tmp_path)
    runner = CliRunner()
    m = tmp_path / "m.mpx"
    r = runner.invoke(app, ["fit", str(f), "--targets", "income", "--conditions", "age", "--numeric", "income",
                            "-o", str(m), "--epochs", "2", "-q"])
    assert r.exit_code == 0, r.output
    synth = Synthesizer.load(m)
    assert synth.kinds_["income"] in ("integer", "continuous")
    out = tmp_path / "s.parquet"
    r = runner.invoke(app, ["generate", str(m), "--n", "500", "-o", str(out), "-q"])
    assert r.exit_code == 0, r.output
    drawn = pd.read_parquet(out)["income"]
    assert pd.api.types.is_numeric_dtype(drawn) and not set(drawn).issubset(set(income))
    r = runner.invoke(app, ["fit", str(f), "--targets", "income", "--conditions", "age", "-o", str(m), "--epochs", "1",
                            "-q"])
    assert r.exit_code == 0, r.output
    assert Synthesizer.load(m).kinds_["income"] == "categorical"  # what --numeric is for
    # ... said in a warning that names the conversion (before: no word)
    df = read_table(f)
    with pytest.warns(UserWarning, match=r"Target column 'income' holds integers written with leading zeros "
                                         r"\('00\d+'\), read as codes: it is modelled as \d+ categories.*"
                                         r"read_table\(path, numeric=\['income'\]\).*--numeric income"):
        Synthesizer(target_vars=["income"], condition_vars=["age"], epochs=1).fit(df, seed=0)
    with warnings.catch_warnings():  # codes of fewer than 20 values: categories in silence
        warnings.simplefilter("error")
        Synthesizer(target_vars=["county"], condition_vars=["age"], epochs=1).fit(df, seed=0)
    r = runner.invoke(app, ["fit", str(f), "--targets", "income", "--numeric", "incme", "-o", str(m), "-q"])
    assert r.exit_code == 1 and "The columns ['incme'] to read as numbers are not columns of the table" in r.output


def test_generate_reads_padded_conditions_as_numbers(tmp_path):
    """A model fitted on numeric ages, given a conditions file writing ``045``: refused naming --numeric; with it,
    generated. --numeric acts only on a conditions file, and not on streamed Parquet conditions."""
    rng = np.random.default_rng(1)
    train = pd.DataFrame({"age": rng.integers(18, 80, 300), "income": rng.lognormal(10, 1, 300)})
    m = tmp_path / "m.mpx"
    Synthesizer(target_vars=["income"], condition_vars=["age"], epochs=1).fit(train, seed=0).save(m)
    c = tmp_path / "c.csv"
    c.write_text("age\n045\n007\n063\n")
    runner = CliRunner()
    out = tmp_path / "g.parquet"
    r = runner.invoke(app, ["generate", str(m), "--conditions", str(c), "-o", str(out), "-q"])
    assert r.exit_code == 1 and "--numeric" in r.output and not out.exists()
    r = runner.invoke(app, ["generate", str(m), "--conditions", str(c), "--numeric", "age", "-o", str(out), "-q"])
    assert r.exit_code == 0, r.output
    assert pd.read_parquet(out)["age"].tolist() == [45, 7, 63]
    r = runner.invoke(app, ["generate", str(m), "--n", "5", "--numeric", "age", "-o", str(out), "-q"])
    assert r.exit_code == 1 and "acts only with it" in r.output
    pc = tmp_path / "c.parquet"
    pd.DataFrame({"age": [45, 7]}).to_parquet(pc)
    r = runner.invoke(app, ["generate", str(m), "--conditions", str(pc), "--numeric", "age", "--stream",
                            "-o", str(tmp_path / "ds"), "-q"])
    assert r.exit_code == 1 and "does not act on streamed Parquet conditions" in r.output


def test_calibrate_and_evaluate_read_the_named_columns_as_numbers(tmp_path):
    f = tmp_path / "d.csv"
    f.write_text("county,income,weight\n013,0001000,1\n001,0000300,1\n013,0002000,1\n105,0000500,1\n")
    t = tmp_path / "t.yaml"
    t.write_text("targets:\n  - {value: 7600, aggregate: sum, variable: income}\n")
    runner = CliRunner()
    out = tmp_path / "c.parquet"
    r = runner.invoke(app, ["calibrate", str(f), "--targets", str(t), "--numeric", "income", "-o", str(out), "-q"])
    assert r.exit_code == 0, r.output
    cal = pd.read_parquet(out)
    assert cal["income"].tolist() == [1000, 300, 2000, 500] and cal["county"].tolist() == ["013", "001", "013", "105"]
    assert (cal["income"] * cal["weight"]).sum() == pytest.approx(7600, rel=1e-8)
    r = runner.invoke(app, ["calibrate", str(f), "--targets", str(t), "-o", str(out), "-q"])
    assert r.exit_code == 1  # the padded text is no amount to total
    # evaluate: the real CSV's padded incomes against a synthetic Parquet file of numbers
    s = tmp_path / "s.parquet"
    pd.DataFrame({"county": ["013", "001", "105", "013"], "income": [900, 350, 1800, 600]}).to_parquet(s)
    r = runner.invoke(app, ["evaluate", str(f), str(s), "--weight", "weight", "--numeric", "income", "--no-pmse",
                            "--report", str(tmp_path / "r.html"), "-q"])
    assert r.exit_code == 0, r.output


def test_a_pipeline_source_reads_its_numeric_columns_as_numbers(tmp_path):
    from microplex.pipeline import run_pipeline

    f, income, age = _heaped_padded(tmp_path, 300)
    config = {"_base": str(tmp_path), "output": "out", "seed": 0,
              "sources": [{"name": "svy", "path": "d.csv", "numeric": ["income"]}],
              "model": {"targets": ["income"], "conditions": ["age"], "epochs": 1}, "generate": {"n": 50}}
    run_pipeline(config, progress=False)
    model = Synthesizer.load(next((tmp_path / "out").rglob("*.mpx")))
    assert model.kinds_["income"] in ("integer", "continuous")
    bad = {**config, "output": "out2", "sources": [{"name": "svy", "path": "d.csv", "numeric": ["county", "wage"]}]}
    with pytest.raises(DataValidationError, match=r"The columns \['wage'\] to read as numbers are not columns of "
                                                  r"source 'svy' \(d\.csv\) \(its 'numeric' setting\)"):
        run_pipeline(bad, progress=False)
    with pytest.raises(DataValidationError, match="numeric"):
        run_pipeline({**config, "sources": [{"name": "svy", "path": "d.csv", "numeric": "income"}]}, progress=False)


def test_padded_and_named_reads_as_the_plain_file_does(tmp_path, cps1):
    """Real amounts (cps1's earnings, whole dollars) written padded to 7 digits and named ``numeric`` read exactly
    as the plain file: the same frame, so the same model bytes for the same seed."""
    frame = cps1.head(400)[["age", "re74", "re78"]].assign(re74=lambda d: d["re74"].round().astype(int),
                                                           re78=lambda d: d["re78"].round().astype(int))
    plain, padded = tmp_path / "plain.csv", tmp_path / "padded.csv"
    frame.to_csv(plain, index=False)
    frame.assign(re74=frame["re74"].map("{:07d}".format), re78=frame["re78"].map("{:07d}".format)).to_csv(
        padded, index=False)
    assert read_table(padded)["re78"].iloc[0].startswith("00")  # codes unless named
    pd.testing.assert_frame_equal(read_table(padded, numeric=["re74", "re78"]), read_table(plain))
    with_missing = frame.astype({"re78": float}).assign(re78=lambda d: d["re78"].where(d.index % 7 != 0))
    with_missing.to_csv(plain, index=False)
    with_missing.assign(re78=[None if np.isnan(v) else f"{int(v):07d}" for v in with_missing["re78"]]).to_csv(
        padded, index=False)
    pd.testing.assert_frame_equal(read_table(padded, numeric=["re78"]), read_table(plain))


def test_a_pipeline_conditions_file_reads_its_numeric_columns_as_numbers(tmp_path):
    """``[generate] numeric``: a conditions file writing ages ``045`` is refused by a model fitted on numeric
    ages (the refusal names the setting's conversion), and read as the numbers with the setting; without
    'conditions' the setting is refused."""
    from microplex.pipeline import run_pipeline

    _heaped_padded(tmp_path, 300)
    (tmp_path / "c.csv").write_text("age\n045\n007\n063\n")
    config = {"_base": str(tmp_path), "output": "out", "seed": 0,
              "sources": [{"name": "svy", "path": "d.csv", "numeric": ["income"]}],
              "model": {"targets": ["income"], "conditions": ["age"], "epochs": 1},
              "generate": {"conditions": "c.csv", "numeric": ["age"]}}
    run_pipeline(config, progress=False)
    population = pd.read_parquet(tmp_path / "out" / "synthetic.parquet")
    assert population["age"].tolist() == [45, 7, 63]
    with pytest.raises(DataValidationError, match=r"\[generate\] 'numeric' names columns of the 'conditions' file"):
        run_pipeline({**config, "output": "o2", "generate": {"n": 10, "numeric": ["age"]}}, progress=False)
    with pytest.raises(DataValidationError, match=r"Condition column 'age' must be numeric, as in training"):
        run_pipeline({**config, "output": "o3", "generate": {"conditions": "c.csv"}}, progress=False)
