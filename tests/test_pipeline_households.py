"""The pipeline with households (issue 18): fit a household model, stream linked households and persons,
calibrate one weight per household to person-level targets out of core, keep a sparse subset of households."""

import pandas as pd
import pytest

from microplex import DataValidationError
from microplex.datasets import load_dataset
from microplex.pipeline import run_pipeline

_TARGETS = ("aggregate,variable,filter,value,entity\n"
            "count,,rb090 == 'female',210000,person\ncount,,rb090 == 'male',200000,person\n"
            "count,,hsize == 2,60000,household\n")


@pytest.fixture()
def household_config(tmp_path):
    silc = load_dataset("eusilc")
    silc[silc.db030 <= 300].to_parquet(tmp_path / "silc.parquet")
    (tmp_path / "t.csv").write_text(_TARGETS)
    return tmp_path, {
        "_base": str(tmp_path), "output": "out", "seed": 0,
        "sources": [{"name": "silc", "path": "silc.parquet", "weight": "db090"}],
        "model": {"household_id": "db030", "household_vars": ["db040", "hsize"], "person_vars": ["age", "rb090"],
                  "person_id": "rb030", "size_var": "hsize", "geography": "db040", "age_var": "age", "epochs": 1},
        "generate": {"n_households": 400, "households_per_file": 150, "partition_by": ["db040"]},
        "calibrate": {"targets": "t.csv", "bounds": [0.2, 5.0]},
        "sparsify": {"max_records": 150},
    }


def test_households_are_generated_calibrated_out_of_core_and_sparsified(household_config):
    folder, config = household_config
    result = run_pipeline(config, progress=False)
    assert list(result.stages) == ["fit", "generate", "calibrate", "sparsify"]
    out = folder / "out"
    hh, persons = pd.read_parquet(out / "calibrated" / "households"), pd.read_parquet(out / "calibrated" / "persons")
    assert len(hh) == 400 and hh["db030"].is_unique and len(persons) == hh["hsize"].sum()
    joined = persons.merge(hh[["db030", "weight"]], on="db030", suffixes=("", "_household"))
    assert len(joined) == len(persons) and (joined["weight"] == joined["weight_household"]).all()
    by_sex = persons.groupby(persons["rb090"].astype(str))["weight"].sum()
    assert by_sex["female"] == pytest.approx(210000, rel=1e-8) and by_sex["male"] == pytest.approx(200000, rel=1e-8)
    assert hh.loc[hh["hsize"] == 2, "weight"].sum() == pytest.approx(60000, rel=1e-8)
    # the bounds bound the ratio to the generated households' equal share of the population's households
    train = pd.read_parquet(out / "train.parquet")
    silc = pd.read_parquet(folder / "silc.parquet")  # the source households' total weight (before: training's / 0.8)
    share = silc.drop_duplicates("db030")["db090"].sum() / 400
    ratio = hh["weight"] / share
    assert ratio.min() >= 0.2 - 1e-9 and ratio.max() <= 5.0 + 1e-9 and ratio.std() > 0
    assert pd.read_csv(out / "calibration_report.csv")["rel_error"].abs().max() < 1e-8
    assert result.stages["calibrate"]["passes"] >= 1
    # the summary shows the household model's figures, not a flow's epochs and loss as None
    assert result.summary["train_households"] == result.stages["fit"]["train_households"] > 0
    assert "fit_epochs" not in result.summary and "None" not in result.summary_text()
    # the training split is by household: no household on both sides
    holdout = pd.read_parquet(out / "holdout.parquet")
    assert not set(train["db030"]) & set(holdout["db030"]) and len(train) + len(holdout) == 730
    # the subset keeps whole households, each person with its household's weight, and meets the targets
    subset = pd.read_parquet(out / "subset.parquet")
    kept = subset.groupby("db030").agg(n=("rb030", "size"), size=("hsize", "first"), w=("weight", "nunique"))
    assert 0 < len(kept) <= 150 and (kept["n"] == kept["size"]).all() and (kept["w"] == 1).all()
    sub = subset.groupby(subset["rb090"].astype(str))["weight"].sum()
    assert sub["female"] == pytest.approx(210000, rel=0.006) and sub["male"] == pytest.approx(200000, rel=0.006)


@pytest.mark.parametrize("change, match", [
    ({"model": {"household_id": "db030", "person_vars": ["age"]}}, r"needs the settings \['model.household_vars'"),
    ({"generate": {"n": 10}}, r"needs the settings \['generate.n_households'\]"),
    ({"evaluate": {}}, r"settings \['\[evaluate\]'\] are not available in a household pipeline"),
    ({"calibrate": {"targets": "t.csv", "geography": ["db040"]}},  # it was ignored: the run calibrated without it
     r"settings \['calibrate.geography'\] are not available in a household pipeline"),
    ({"model": {"targets": ["age"], "household_vars": ["hsize"]}}, r"\['model.household_vars', 'generate.n_households'.*are household settings"),
])
def test_household_settings_are_checked_before_any_work(household_config, change, match):
    folder, config = household_config
    with pytest.raises(DataValidationError, match=match):
        run_pipeline({**config, **change}, progress=False)
    assert not (folder / "out").exists()


def test_households_that_cannot_fit_on_disk_are_refused_up_front(household_config):
    folder, config = household_config
    config = {**config, "generate": {"n_households": 10**15}}
    with pytest.raises(DataValidationError, match=r"'generate.n_households' parameter asks for"):
        run_pipeline(config, progress=False)
    assert not (folder / "out").exists()


def test_a_person_with_a_missing_value_drops_the_whole_household(household_config):
    import microplex._pipeline_households as households

    _, config = household_config
    data = pd.DataFrame({"db030": [1, 1, 2, 2, 3], "age": [30.0, None, 40.0, 41.0, 50.0], "rb090": list("fmfmf")})
    kept = households.dropna(data, config, ["age", "rb090"])
    assert kept["db030"].tolist() == [2, 2, 3]


def test_a_rerun_with_progress_bars_or_other_settings_regenerates_the_households(household_config):
    """`--force` with progress bars wrote verbose=True into model.mpx (its inner models too), other bytes than
    the `-q` run's: the streamed households then failed with 'holds another run', as did any settings change."""
    folder, config = household_config
    config = {k: v for k, v in config.items() if k != "sparsify"}
    run_pipeline(config, progress=False)
    model = (folder / "out" / "model.mpx").read_bytes()
    result = run_pipeline(config, progress=True, force=True)
    assert (folder / "out" / "model.mpx").read_bytes() == model and result.stages["generate"]["status"] == "ran"
    result = run_pipeline(config, overrides={"generate.n_households": 300}, progress=False)
    assert result.stages["generate"]["households"] == 300
    assert len(pd.read_parquet(folder / "out" / "calibrated" / "households")) == 300
