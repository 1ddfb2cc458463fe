"""Session 69: re-runs of a pipeline that reused stale stages, and folders the runner removed without asking.

- A streamed population's records carry no weight column: each starts from ``generate.population`` over the
  records, which the calibrate, sparsify and evaluate stages did not fingerprint (a changed population total
  kept the old calibrated weights: 29,890 instead of 85,670).
- ``fit`` (and ``fuse``) drop the rows missing a value in a column a target filters on, but did not fingerprint
  the targets: a target removed kept a model fitted on 1,284 rows instead of 1,600.
- ``--force``, and the calibrate stage of a folder population, removed a folder of the user's in the output
  folder (``data/``, ``calibrated/``) whole.
"""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

import pandas as pd
import pytest

from microplex import DataValidationError
from microplex.pipeline import run_pipeline

ACS12 = Path(str(resources.files("microplex.datasets").joinpath("data", "acs12.csv")))

#: The source and model of the two cps1 pipelines below: earnings given age and race.
_CPS = '''
[[sources]]
name = "cps"
path = "bundled:cps1"
[model]
targets = ["re78"]
conditions = ["age", "black"]
epochs = 2
'''

_STREAMED = '''
output = "out"
seed = 1
''' + _CPS.replace("{", "{{").replace("}", "}}") + '''
[generate]
n = 3000
partition_by = ["black"]
population = {population}
{stages}
'''


def _targets(folder: Path, value: float = 2000.0) -> None:
    pd.DataFrame({"aggregate": ["count"], "variable": [""], "filter": ["black == 1"],
                  "value": [value]}).to_csv(folder / "t.csv", index=False)


def _streamed(folder: Path, population: float, stages: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    _targets(folder)
    (folder / "p.toml").write_text(_STREAMED.format(population=population, stages=stages))
    return folder / "p.toml"


def _statuses(result) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {name: info["status"] for name, info in result.stages.items()}


def test_a_changed_population_total_recalibrates_a_streamed_population(tmp_path):
    """The one target pins the black == 1 records to 2,000; the 1,856-odd others keep 90,000 / 3,000 each."""
    path = _streamed(tmp_path, 30000.0, '[calibrate]\ntargets = "t.csv"')
    run_pipeline(path, progress=False)
    first = pd.read_parquet(tmp_path / "out" / "calibrated")["weight"].sum()
    _streamed(tmp_path, 90000.0, '[calibrate]\ntargets = "t.csv"')
    again = run_pipeline(path, progress=False)
    assert _statuses(again) == {"fit": "skipped", "generate": "ran", "calibrate": "ran"}
    population = pd.read_parquet(tmp_path / "out" / "population")
    others = int((population["black"].astype(int) == 0).sum())
    assert pd.read_parquet(tmp_path / "out" / "calibrated")["weight"].sum() == pytest.approx(
        2000 + others * 90000 / 3000, rel=1e-9)
    assert first == pytest.approx(2000 + others * 30000 / 3000, rel=1e-9)  # the same records: only the share moved
    assert _statuses(run_pipeline(path, progress=False)) == dict.fromkeys(("fit", "generate", "calibrate"), "skipped")


def test_a_changed_population_total_resparsifies_and_reevaluates_a_streamed_population(tmp_path):
    """[sparsify] with no [calibrate] and [evaluate] read the generated folder's weights from the file: after the
    change, the subset and the scores are those of a fresh run of the changed file."""
    stages = '[sparsify]\ntargets = "t.csv"\nmax_records = 300\n[evaluate]\npmse = false'
    path = _streamed(tmp_path / "a", 30000.0, stages)
    run_pipeline(path, progress=False)
    _streamed(tmp_path / "a", 90000.0, stages)
    again = run_pipeline(path, progress=False)
    assert again.stages["sparsify"]["status"] == "ran" and again.stages["evaluate"]["status"] == "ran"
    run_pipeline(_streamed(tmp_path / "b", 90000.0, stages), progress=False)
    rerun, fresh = (pd.read_parquet(tmp_path / f / "out" / "subset.parquet") for f in ("a", "b"))
    pd.testing.assert_frame_equal(rerun, fresh)
    assert rerun["weight"].sum() > 80000  # (before: 29,864.5, the 30,000 run's subset)
    pd.testing.assert_frame_equal(*(pd.read_csv(tmp_path / f / "out" / "scores.csv") for f in ("a", "b")))
    # the evaluate stage alone (no stage between it and the folder) reruns too
    path = _streamed(tmp_path / "c", 30000.0, "[evaluate]\npmse = false")
    run_pipeline(path, progress=False)
    _streamed(tmp_path / "c", 90000.0, "[evaluate]\npmse = false")
    assert run_pipeline(path, progress=False).stages["evaluate"]["status"] == "ran"


_ACS = '''
output = "out"
[[sources]]
name = "acs"
path = "acs12.csv"
[model]
targets = ["hrs_work"]
conditions = ["age", "employment"]
epochs = 2
[generate]
n = 2000
[calibrate]
targets = "t.csv"
'''


def _acs_targets(folder: Path, rows: list[list]) -> None:
    pd.DataFrame(rows, columns=["aggregate", "variable", "filter", "value"]).to_csv(folder / "t.csv", index=False)


def test_a_target_on_another_column_refits_the_model(tmp_path):
    """`employment` has 395 missing values in acs12: a target filtering on it drops those rows before the fit."""
    shutil.copy(ACS12, tmp_path / "acs12.csv")
    (tmp_path / "p.toml").write_text(_ACS)
    adults = ["count", "", "age >= 18", 1500.0]
    employed = ["count", "", "employment == 'employed'", 800.0]
    _acs_targets(tmp_path, [adults, employed])
    run_pipeline(tmp_path / "p.toml", progress=False)
    assert len(pd.read_parquet(tmp_path / "out" / "train.parquet")) == 1284
    _acs_targets(tmp_path, [adults])
    removed = run_pipeline(tmp_path / "p.toml", progress=False)
    assert removed.stages["fit"]["status"] == "ran"
    assert len(pd.read_parquet(tmp_path / "out" / "train.parquet")) == 1600  # (before: 1,284, the fit reused)
    assert pd.read_parquet(tmp_path / "out" / "synthetic.parquet")["employment"].isna().any()
    # a target's value (no filtered column added or removed) does not refit
    _acs_targets(tmp_path, [["count", "", "age >= 18", 1400.0]])
    assert _statuses(run_pipeline(tmp_path / "p.toml", progress=False)) == {
        "fit": "skipped", "generate": "skipped", "calibrate": "ran"}
    _acs_targets(tmp_path, [adults, employed])  # put back: refitted (before: calibrate failed on 421 missing values)
    back = run_pipeline(tmp_path / "p.toml", progress=False)
    assert back.stages["fit"]["status"] == "ran" and back.stages["calibrate"]["status"] == "ran"
    assert len(pd.read_parquet(tmp_path / "out" / "train.parquet")) == 1284


def test_a_target_on_another_column_redoes_the_fused_table(tmp_path):
    """[fuse] drops the same rows from its sources: a target removed redoes the fused table as well."""
    shutil.copy(ACS12, tmp_path / "acs12.csv")
    (tmp_path / "p.toml").write_text(_ACS.replace('''[model]''', '''[[sources]]
name = "more"
path = "acs12.csv"
columns = ["age", "gender", "income"]
[fuse]
base = "acs"
synthesizer = { epochs = 2 }
[model]''').replace('name = "acs"\npath = "acs12.csv"', 'name = "acs"\npath = "acs12.csv"\n'
                     'columns = ["age", "gender", "employment", "hrs_work"]'))
    adults = ["count", "", "age >= 18", 1500.0]
    _acs_targets(tmp_path, [adults, ["count", "", "employment == 'employed'", 800.0]])
    run_pipeline(tmp_path / "p.toml", progress=False)
    before = len(pd.read_parquet(tmp_path / "out" / "fused.parquet"))
    _acs_targets(tmp_path, [adults])
    removed = run_pipeline(tmp_path / "p.toml", progress=False)
    assert removed.stages["fuse"]["status"] == "ran" and removed.stages["fit"]["status"] == "ran"
    assert len(pd.read_parquet(tmp_path / "out" / "fused.parquet")) > before


_FOLDERS = '''
output = "project"
''' + _CPS + '''
[generate]
n = 1000
partition_by = ["black"]
dataset = "data"
[calibrate]
targets = "t.csv"
'''


def _folders(folder: Path, *own: str) -> Path:
    """A streamed pipeline whose output folder already holds the user's folders ``own``, each with a note."""
    _targets(folder, 300.0)
    (folder / "p.toml").write_text(_FOLDERS)
    for name in own:
        (folder / "project" / name).mkdir(parents=True)
        (folder / "project" / name / "my_notes.txt").write_text("the user's own file\n")
    return folder / "p.toml"


def test_force_does_not_remove_a_folder_microplex_did_not_write(tmp_path):
    """`--force` removed `generate.dataset`'s folder whole, the user's `my_notes.txt` with it."""
    path = _folders(tmp_path, "data")
    with pytest.raises(DataValidationError, match=r"'[^']*project/data'.*microplex did not write.*Move it"):
        run_pipeline(path, progress=False, force=True)
    assert (tmp_path / "project" / "data" / "my_notes.txt").read_text() == "the user's own file\n"
    assert not (tmp_path / "project" / ".microplex" / "fit.json").exists()  # refused before any work
    shutil.move(tmp_path / "project" / "data", tmp_path / "kept")  # moved away: the run writes its own, and a
    run_pipeline(path, progress=False)  # forced run replaces that one (microplex wrote it)
    forced = run_pipeline(path, progress=False, force=True)
    assert set(_statuses(forced).values()) == {"ran"}
    assert pd.read_parquet(tmp_path / "project" / "calibrated")["weight"].sum() > 0


def test_calibrate_does_not_remove_a_calibrated_folder_microplex_did_not_write(tmp_path):
    """The calibrate stage of a folder population replaced `calibrated/` whole, with or without `--force`."""
    path = _folders(tmp_path, "calibrated")
    for force in (False, True):
        with pytest.raises(DataValidationError, match=r"'[^']*project/calibrated'.*microplex did not write"):
            run_pipeline(path, progress=False, force=force)
        assert (tmp_path / "project" / "calibrated" / "my_notes.txt").is_file()
        assert not (tmp_path / "project" / "data").exists()  # refused before any work
    # an empty folder holds nothing to lose: it is replaced
    (tmp_path / "project" / "calibrated" / "my_notes.txt").unlink()
    run_pipeline(path, progress=False)
    assert (tmp_path / "project" / ".calibrated.microplex").is_dir()  # what marks the copy as microplex's
    # the stage's own folder is recognised as such when it runs again
    _targets(tmp_path, 350.0)
    assert run_pipeline(path, progress=False).stages["calibrate"]["status"] == "ran"
    calibrated = pd.read_parquet(tmp_path / "project" / "calibrated")
    assert calibrated.loc[calibrated["black"].astype(int) == 1, "weight"].sum() == pytest.approx(350.0, rel=1e-9)


def test_a_renamed_output_does_not_stay_beside_the_new_one(tmp_path):
    """A stage that still runs but writes elsewhere (`evaluate.report` renamed; the population a file, no longer a
    streamed folder) had its previous outputs left beside the new ones."""
    _targets(tmp_path, 300.0)
    base = _FOLDERS.replace('output = "project"', 'output = "out"').replace('dataset = "data"\n', "")
    streamed = base + '[evaluate]\npmse = false\nreport = "first.html"\n'
    (tmp_path / "p.toml").write_text(streamed)
    run_pipeline(tmp_path / "p.toml", progress=False)
    out = tmp_path / "out"
    (out / "my_notes.txt").write_text("the user's own file\n")
    old = ["first.html", "population", ".population.microplex", "calibrated", ".calibrated.microplex"]
    assert all((out / name).exists() for name in old)
    (tmp_path / "p.toml").write_text(streamed.replace('partition_by = ["black"]\n', "")
                                     .replace("first.html", "second.html"))
    run_pipeline(tmp_path / "p.toml", progress=False)
    assert [name for name in old if (out / name).exists()] == []  # (before: all five left)
    assert all((out / name).is_file() for name in ("second.html", "synthetic.parquet", "calibrated.parquet"))
    assert (out / "my_notes.txt").read_text() == "the user's own file\n"
    assert {p.name for p in (out / ".microplex").glob("*.json")} >= {"evaluate.json", "calibrate.json"}
