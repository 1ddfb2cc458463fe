"""The household pipeline's outputs, its handling of persons without a household id, and the out-of-core refusal of
household targets (audit s69)."""

import numpy as np
import pandas as pd
import pytest

from microplex import DataValidationError
from microplex.calibration import Target, Targets
from microplex.datasets import load_dataset
from microplex.households import HouseholdSynthesizer
from microplex.pipeline import run_pipeline
from microplex.scale import generate_household_dataset, rake_dataset, read_manifest


def _silc(n_households: int = 300) -> pd.DataFrame:
    silc = load_dataset("eusilc")
    return silc[silc.db030 <= n_households].reset_index(drop=True)


def _config(folder, path: str, **extra) -> dict:
    return {"_base": str(folder), "output": "out", "seed": 0,
            "sources": [{"name": "silc", "path": path, "weight": "db090"}],
            "model": {"household_id": "db030", "household_vars": ["db040", "hsize"], "person_vars": ["age", "rb090"],
                      "person_id": "rb030", "age_var": "age", "epochs": 1},
            "generate": {"n_households": 400, "dataset": "population"}, **extra}


def test_the_household_pipeline_writes_one_weight_under_its_own_name(tmp_path):
    """The model's weight column (``db090``: the training households' total over the generated households) is not
    written beside the pipeline's ``weight``: it summed to 80% of the population before calibration and, in
    ``subset.parquet``, to 55,628 against ``weight``'s 350,109 (600 households), under the user's weight name."""
    silc = _silc()
    silc.to_parquet(tmp_path / "silc.parquet")
    female, male = (float(silc.db090[silc.rb090 == s].sum()) for s in ("female", "male"))
    pd.DataFrame({"aggregate": ["count", "count"], "variable": ["", ""],
                  "filter": ["rb090 == 'female'", "rb090 == 'male'"], "value": [female * 1.03, male],
                  "entity": ["person", "person"]}).to_csv(tmp_path / "t.csv", index=False)
    config = _config(tmp_path, "silc.parquet", calibrate={"targets": "t.csv"}, sparsify={"max_records": 100})
    run_pipeline(config, progress=False)
    out = tmp_path / "out"
    frames = {f"{folder}/{table}": pd.read_parquet(out / folder / table)
              for folder in ("population", "calibrated") for table in ("households", "persons")}
    frames["subset"] = pd.read_parquet(out / "subset.parquet")
    for name, frame in frames.items():
        assert "db090" not in frame.columns, name
    assert list(frames["population/households"].columns) == ["db030", "db040", "hsize"]
    assert read_manifest(out / "population" / "households")["weight"] is None
    for name in ("calibrated/households", "calibrated/persons", "subset"):
        assert "weight" in frames[name].columns, name
    subset = frames["subset"]
    by_sex = subset.groupby(subset["rb090"].astype(str))["weight"].sum()
    assert by_sex["female"] == pytest.approx(female * 1.03, rel=1e-6)
    assert by_sex["male"] == pytest.approx(male, rel=1e-6)
    # the draws are those of generate_household_dataset with the model's weight column left out
    spec = read_manifest(out / "population" / "households")["spec"]
    model = HouseholdSynthesizer.load(out / "model.mpx")
    generate_household_dataset(model, 400, path=tmp_path / "direct", seed=spec["seed"], progress=False)
    for table in ("households", "persons"):
        direct = pd.read_parquet(tmp_path / "direct" / table)
        once = direct.drop_duplicates("db030")  # its public behaviour, kept: the training total over the households
        assert once["db090"].sum() == pytest.approx(model.total_weight_, rel=1e-12)
        pd.testing.assert_frame_equal(frames[f"population/{table}"], direct.drop(columns="db090"))


def test_a_person_without_a_household_id_is_refused_naming_the_column_and_count(tmp_path):
    """A missing household id dropped that one person, while the warning said a whole household was: household 2
    kept 3 of its hsize=4 persons, and the model took ``n_persons`` as the size (95 of 1,000 generated households
    with ``hsize`` unequal to their persons)."""
    silc = _silc()
    silc["db030"] = silc["db030"].astype(float)
    silc.loc[[3, 10], "db030"] = np.nan
    silc.to_csv(tmp_path / "silc.csv", index=False)
    for dropna in (True, ["age"]):
        config = _config(tmp_path, "silc.csv")
        config["sources"][0]["dropna"] = dropna
        with pytest.raises(DataValidationError, match=r"2 persons .*'db030'.*rows 3, 10.*household"):
            run_pipeline(config, progress=False)
        assert not (tmp_path / "out" / "model.mpx").exists()


def test_an_out_of_core_household_target_refusal_names_it_as_given(tmp_path):
    """The household targets were re-labelled ``entity='person'`` before they were checked, so the refusal of a
    household count without a filter said ``entity='person'``."""
    (tmp_path / "h").mkdir()
    (tmp_path / "p").mkdir()
    pd.DataFrame({"hid": [1, 2, 3], "region": ["a", "b", "a"]}).to_parquet(tmp_path / "h" / "part-0.parquet")
    pd.DataFrame({"hid": [1, 1, 2, 3, 3], "sex": ["f", "m", "f", "m", "f"]}).to_parquet(tmp_path / "p" / "part-0.parquet")
    bad = [Target(3.5, entity="household"), Target(10.0, aggregate="sum", variable="hid", entity="household",
                                                   filters={"region": "a"})]
    for target in bad:
        with pytest.raises(DataValidationError) as info:
            rake_dataset(tmp_path / "h", Targets([Target(4.0, filters={"sex": "f"}), target]), None,
                         persons=tmp_path / "p", household_id="hid")
        message = str(info.value)
        assert f"entity='household', filter {target.filters!r}" in message and "entity='person'" not in message
    # the person and household count targets it takes are met
    res = rake_dataset(tmp_path / "h", Targets([Target(4.0, filters={"sex": "f"}),
                                                 Target(2.5, filters={"region": "a"}, entity="household")]), None,
                       persons=tmp_path / "p", household_id="hid")
    assert float(res.summary["max_rel_error"]) < 1e-8
