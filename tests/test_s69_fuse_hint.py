"""A pipeline's [fuse] refusing a shared column of two types names the pipeline's remedy, not the Python one."""

from __future__ import annotations

import os

import pytest

from microplex import DataValidationError
from microplex.datasets import load_dataset
from microplex.pipeline import run_pipeline

PIPELINE = '''output = "out"
[[sources]]
name = "a"
path = "a.csv"
[[sources]]
name = "b"
path = "b.csv"
{numeric}
[fuse]
base = "a"
[fuse.synthesizer]
epochs = 1
[model]
targets = ["re74", "re78"]
conditions = ["age"]
epochs = 1
[generate]
n = 50
'''


@pytest.fixture()
def files(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    df = load_dataset("cps1").sample(600, random_state=1).reset_index(drop=True)
    a = df.iloc[:300][["age", "educ", "marr", "re74"]]
    b = df.iloc[300:][["age", "educ", "marr", "re78"]].copy()
    b["educ"] = b["educ"].map(lambda v: f"{v:02d}")  # zero-padded codes, as survey files write them
    a.to_csv("a.csv", index=False)
    b.to_csv("b.csv", index=False)


def _write(numeric: str = "") -> str:
    with open("p.toml", "w") as f:
        f.write(PIPELINE.format(numeric=numeric))
    return "p.toml"


def test_a_type_clash_in_a_pipeline_names_the_sources_numeric_setting(files):
    with pytest.raises(DataValidationError) as err:
        run_pipeline(_write(), progress=False)
    msg = str(err.value)
    assert "Shared column 'educ' has incompatible types" in msg
    assert 'numeric = ["educ"]' in msg and "[[sources]]" in msg and "'b'" in msg
    assert "{'categories'" not in msg and "rename={" not in msg
    assert not os.path.exists(os.path.join("out", "generated.parquet"))


def test_following_the_hint_runs(files):
    result = run_pipeline(_write('numeric = ["educ"]'), progress=False)
    assert result is not None


def test_categories_missing_from_the_donor_name_a_recode_not_the_python_rename(files):
    a = load_dataset("cps1").sample(300, random_state=2)[["age", "educ", "marr", "re74"]]
    a["educ"] = a["educ"].map(lambda v: f"{v:02d}")  # '08' here, '8' in the donor: categories that never occur
    a.to_csv("a.csv", index=False)
    b = load_dataset("cps1").sample(300, random_state=3)[["age", "educ", "marr", "re78"]]
    b["educ"] = b["educ"].map(lambda v: f"e{v}")
    b.to_csv("b.csv", index=False)
    with pytest.raises(DataValidationError) as err:
        run_pipeline(_write(), progress=False)
    msg = str(err.value)
    assert "Shared column 'educ': categories" in msg
    assert "a recode of column 'educ' in the file of source 'a'" in msg
    assert "{'categories'" not in msg and "rename={" not in msg
