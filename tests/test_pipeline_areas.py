"""Geography in the pipeline: the bundled geo demo on three states end to end, and each area feature
(combine, holdout_by, generate.by, sparsify.by, held-out cells by area) with its bad input."""

import json
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from microplex import DataValidationError
from microplex._pipeline_areas import _area_conditions, _sparsify_by, _split_within
from microplex.calibration import Target, Targets
from microplex.datasets import load_dataset
from microplex.evaluation.areas import area_errors, cell_totals, error_summary, heldout_errors
from microplex.pipeline import load_pipeline, run_pipeline

GEO = Path(str(resources.files("microplex.datasets").joinpath("demo_geo", "pipeline.toml")))
STATES = ["Delaware", "Vermont", "Wyoming"]
SMALL = {"model.epochs": 2, "generate.n": 2500, "sparsify.max_records": 60, "evaluate.max_rows": 2500,
         "evaluate.pmse": False}


def _rows_of(path: Path, states: list[str]) -> pd.DataFrame:
    table = pd.read_csv(path, keep_default_na=False)
    return table[table["filter"].str.match("|".join(f"state == '{s}' " for s in states))]


@pytest.fixture(scope="module")
def geo_run(tmp_path_factory):
    """The bundled geo pipeline on three small states (16 PUMAs): its own targets and cells, restricted."""
    d = tmp_path_factory.mktemp("geo")
    census = load_dataset("census2000")
    census[census["state"].isin(STATES)].to_csv(d / "census.csv", index=False)
    for name in ("targets.csv", "heldout.csv"):
        _rows_of(GEO.parent / name, STATES).to_csv(d / name, index=False)
    config = load_pipeline(GEO)
    config["sources"][0]["path"] = str(d / "census.csv")
    config["calibrate"]["targets"] = str(d / "targets.csv")
    config["evaluate"]["heldout"] = str(d / "heldout.csv")
    out = d / "out"
    result = run_pipeline(config, overrides={"output": str(out), **SMALL}, progress=False)
    return d, out, result


def test_geo_demo_end_to_end(geo_run):
    d, out, result = geo_run
    assert list(result.stages) == ["fit", "generate", "calibrate", "sparsify", "evaluate"]
    source = pd.read_csv(d / "census.csv")
    source["puma_id"] = source["state"] + ":" + source["puma"].astype(str)
    train = pd.read_parquet(out / "train.parquet")
    assert set(train["puma_id"]) == set(source["puma_id"])  # holdout_by: every PUMA keeps training records
    synthetic = pd.read_parquet(out / "synthetic.parquet")
    expected = train["puma_id"].value_counts() / len(train) * 2500
    got = synthetic["puma_id"].value_counts().reindex(expected.index)
    assert len(synthetic) == 2500 and (got - expected).abs().max() < 1  # generate.by: each PUMA's share
    assert (pd.read_csv(out / "calibration_report.csv")["rel_error"].abs().max()) < 1e-6
    areas = pd.read_csv(out / "subset_areas.csv")
    assert sorted(areas["state"]) == STATES and areas["budget"].sum() == 60 and (areas["max_rel_error"] <= 0.005).all()
    assert (areas["kept"] <= areas["budget"]).all() and (areas["budget"] >= areas["targets"]).all()
    subset = pd.read_parquet(out / "subset.parquet")
    assert len(subset) == areas["kept"].sum()
    targets = Targets.from_csv(d / "targets.csv")
    achieved = cell_totals(subset, targets)
    value = np.array([t.value for t in targets])
    assert np.abs(achieved - value).max() / value.min() <= 0.005  # every state and PUMA control within tolerance
    errors = pd.read_csv(out / "heldout_errors.csv", keep_default_na=False)
    assert list(dict.fromkeys(errors["population"])) == ["generated", "calibrated", "subset"]
    calibrated = pd.read_parquet(out / "calibrated.parquet")
    cells = Targets.from_csv(d / "heldout.csv")
    mine = errors[errors["population"] == "calibrated"]
    for t, achieved_cell in zip(cells, mine["achieved"], strict=True):  # a brute-force total of every cell
        hit = ((calibrated["puma_id"] == t.filters["puma_id"]) & calibrated["educ"].isin(t.filters["educ"]))
        assert achieved_cell == pytest.approx(calibrated.loc[hit, "weight"].sum(), rel=1e-12, abs=1e-12)
    assert set(mine["state"]) == set(STATES)
    scores = pd.read_csv(out / "scores.csv")
    calibration = scores[scores["metric"] == "calibration_rel_error"]  # on puma_id, which the scores exclude
    assert len(calibration) == len(targets) and calibration["value"].max() <= 0.005
    assert "puma_id" not in set(scores["variable"])
    html = (out / "report.html").read_text()
    assert "Held-out cells" in html and html.count("held-out error by") == 2
    summary = json.loads((out / ".microplex" / "evaluate.json").read_text())["figures"]
    assert summary["heldout_calibrated"]["cells"] == len(cells)


def test_geo_demo_bundled_files_are_consistent():
    """The bundled controls nest (PUMAs sum to their state) and the held-out cells are not controls."""
    targets, cells = Targets.from_csv(GEO.parent / "targets.csv"), Targets.from_csv(GEO.parent / "heldout.csv")
    census = load_dataset("census2000")
    assert len(targets) == 51 * 6 + census.groupby(["state", "puma"]).ngroups
    assert sum(t.value for t in cells) == len(census)
    by_state: dict[str, float] = {}
    for t in targets:
        if "puma_id" in t.filters:
            by_state[t.filters["state"]] = by_state.get(t.filters["state"], 0.0) + t.value
    assert by_state == census["state"].value_counts().astype(float).to_dict()
    assert not {t.name for t in targets} & {t.name for t in cells}


def test_combine_builds_one_key_and_refuses_bad_tables(tmp_path):
    from microplex._pipeline_inputs import _combine

    df = pd.DataFrame({"state": ["A", "B"], "puma": [100, 100]})
    assert _combine(df, {"key": ["state", "puma"]}, "src")["key"].tolist() == ["A:100", "B:100"]
    with pytest.raises(DataValidationError, match=r"names columns \['nope'\]"):
        _combine(df, {"key": ["state", "nope"]}, "src")
    with pytest.raises(DataValidationError, match="adds the column 'puma'"):
        _combine(df, {"puma": ["state", "puma"]}, "src")
    with pytest.raises(DataValidationError, match="missing values"):
        _combine(df.assign(puma=[1.0, None]), {"key": ["state", "puma"]}, "src")


def test_split_within_keeps_every_area_in_training():
    areas = np.repeat(np.arange(50), np.arange(1, 51))  # areas of 1 to 50 records
    data = pd.DataFrame({"area": areas, "x": np.arange(len(areas))})
    train, held = _split_within(data, 0.3, "area", np.random.default_rng(0))
    assert set(train["area"]) == set(range(50)) and len(train) + len(held) == len(data)
    assert abs(len(held) - 0.3 * len(data)) <= 25  # the cap takes at most one record from the 1-record areas
    per = held["area"].value_counts().reindex(range(50), fill_value=0)
    assert ((per - 0.3 * np.arange(1, 51)).abs() <= 1).all()
    again, _ = _split_within(data, 0.3, "area", np.random.default_rng(0))
    assert again.equals(train)


def test_area_conditions_give_every_area_its_share():
    cond = pd.DataFrame({"area": ["a"] * 6 + ["b"] * 3 + ["c"], "x": np.arange(10)})
    weights = np.ones(10)
    drawn = _area_conditions(cond, weights, 100, "area", np.random.default_rng(0))
    assert drawn["area"].value_counts().to_dict() == {"a": 60, "b": 30, "c": 10}
    assert set(drawn.loc[drawn["area"] == "c", "x"]) == {9}  # rows come from their own area
    assert set(drawn.loc[drawn["area"] == "b", "x"]) <= {6, 7, 8}
    with pytest.raises(DataValidationError, match=r"without a record .*'generate.n' to 10, from which every area is sure"):
        _area_conditions(cond, weights, 4, "area", np.random.default_rng(0))


def _area_frame() -> tuple[pd.DataFrame, Targets]:
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"state": rng.choice(["X", "Y"], 600), "sex": rng.integers(0, 2, 600), "weight": 2.0})
    counts = df.groupby(["state", "sex"]).size() * 2.1
    targets = Targets([Target(float(v), filters={"state": s, "sex": int(x)}) for (s, x), v in counts.items()])
    return df, targets


def test_sparsify_by_meets_each_areas_targets_within_its_budget():
    df, targets = _area_frame()
    w, table = _sparsify_by(df, targets, "state", {"max_records": 40, "tolerance": 0.005, "seed": 0}, "weight", None)
    assert table["area"].tolist() == ["X", "Y"] and table["budget"].sum() == 40 and (table["kept"] > 0).all()
    assert (table["kept"] <= table["budget"]).all()
    share = df.groupby("state").size() / len(df)  # 2 targets each, the other 36 records by weight
    assert (np.abs(table["budget"].to_numpy() - 2 - 36 * share.to_numpy()) < 1).all()
    kept = df.assign(weight=w)[w > 0]
    assert kept.groupby("state").size().tolist() == table["kept"].tolist()
    achieved = cell_totals(kept, targets)
    assert np.abs(achieved / [t.value for t in targets] - 1).max() <= 0.005


def test_sparsify_by_gives_no_area_a_budget_beyond_its_records():
    """An area whose weight share exceeds its share of the records (calibrated weights) gets its records, and
    the rest of ``max_records`` goes to the other areas: the subset has ``max_records`` records."""
    df, targets = _area_frame()
    heavy = df["state"] == "Y"
    df.loc[heavy, "weight"] = 20.0  # Y: about half the records, 91% of the weight
    targets = Targets([Target(float(df.loc[(df["state"] == t.filters["state"]) & (df["sex"] == t.filters["sex"]),
                                            "weight"].sum()), filters=t.filters) for t in targets])
    total = len(df) - 20
    w, table = _sparsify_by(df, targets, "state", {"max_records": total, "tolerance": 0.005, "seed": 0},
                            "weight", None)
    assert (table["budget"] <= table["candidates"]).all(), table
    assert table["budget"].sum() == total and table.set_index("area").loc["Y", "budget"] == heavy.sum()
    assert int((w > 0).sum()) == table["kept"].sum() == total
    assert np.abs(cell_totals(df.assign(weight=w)[w > 0], targets) / [t.value for t in targets] - 1).max() <= 0.005


def test_sparsify_by_refuses_targets_and_areas_that_do_not_match():
    df, targets = _area_frame()
    params = {"max_records": 40, "seed": 0}
    loose = targets + [Target(10.0, filters={"sex": 1})]
    with pytest.raises(DataValidationError, match=r"must fix 'state' to one value.*count\[sex == 1\]"):
        _sparsify_by(df, loose, "state", params, "weight", None)
    with pytest.raises(DataValidationError, match=r"no record in the population: 'Z'"):
        _sparsify_by(df, targets + [Target(5.0, filters={"state": "Z"})], "state", params, "weight", None)
    with pytest.raises(DataValidationError, match=r"have records but no target.*'Y'"):
        _sparsify_by(df, Targets([t for t in targets if t.filters["state"] == "X"]), "state", params, "weight", None)
    with pytest.raises(DataValidationError, match="budget 3 is below the 4 targets of the areas of 'state'"):
        _sparsify_by(df, targets, "state", {"max_records": 3, "seed": 0}, "weight", None)
    with pytest.raises(DataValidationError, match="Sparsifying the area state = 'X': .*sex == 7"):
        _sparsify_by(df, targets + [Target(5.0, filters={"state": "X", "sex": 7})], "state", params, "weight", None)


def test_cell_totals_match_a_brute_force_count_and_empty_cells_are_zero():
    rng = np.random.default_rng(2)
    df = pd.DataFrame({"area": rng.choice(["a", "b", "c"], 500), "educ": rng.choice([9, 12, 13, 16], 500),
                       "age": rng.integers(18, 80, 500), "inc": rng.normal(size=500), "weight": rng.uniform(1, 3, 500)})
    cells = pd.DataFrame({"aggregate": ["count", "count", "count", "sum", "count"], "variable": [None, None, None, "inc", None],
                          "filter": ["area == 'a' & educ in {9, 12}", "area == 'b' & age in [30, 50)", "area == 'z'",
                                     "area == 'c' & educ in {16}", "educ == 13"], "value": 1.0})
    got = cell_totals(df, cells)
    w = df["weight"]
    want = [w[(df.area == "a") & df.educ.isin([9, 12])].sum(), w[(df.area == "b") & df.age.between(30, 49)].sum(), 0.0,
            (w * df.inc)[(df.area == "c") & (df.educ == 16)].sum(), w[df.educ == 13].sum()]
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_heldout_errors_by_area():
    df = pd.DataFrame({"area": ["a", "a", "b"], "state": "S", "weight": [1.0, 1.0, 3.0]})
    cells = Targets([Target(4.0, filters={"state": "S", "area": "a"}), Target(2.0, filters={"state": "S", "area": "b"})])
    errors = heldout_errors({"p": df, "q": df.assign(weight=[2.0, 2.0, 2.0])}, cells, areas=["state", "area"])
    assert errors["rel_error"].tolist() == [-0.5, 0.5, 0.0, 0.0]
    summary = error_summary(errors)
    assert summary["median"].tolist() == [0.5, 0.0] and summary["cells"].tolist() == [2, 2]
    by_state = area_errors(errors, "state")
    assert by_state.loc[by_state["population"] == "p", "error"].item() == pytest.approx(3 / 6)
    with pytest.raises(DataValidationError, match="positive total"):
        heldout_errors({"p": df}, Targets([Target(0.0, filters={"area": "a"})]))
    with pytest.raises(DataValidationError, match="'mean' target"):
        heldout_errors({"p": df}, Targets([Target(1.0, aggregate="mean", variable="weight")]))
    with pytest.raises(DataValidationError, match="pass it in 'areas'"):
        area_errors(errors, "county")


@pytest.mark.parametrize("change, match", [
    ({"model": {"holdout_by": "educ"}}, r"'model.holdout_by' setting names 'educ', which is not one of the model's conditions"),
    ({"generate": {"by": "state", "n": 10, "partition_by": ["state"]}}, "'generate.by' setting draws"),
    ({"evaluate": {"areas": ["state"]}}, "'evaluate.areas' setting needs 'evaluate.heldout'"),
    ({"sources": [{"name": "c", "path": "bundled:census2000", "combine": {"k": "state"}}]}, "'sources\\[1\\].combine'"),
    ({"sparsify": {"by": 3}}, "'sparsify.by' setting must be a non-empty string"),
    ({"evaluate": {"exclude": ["nope"]}}, "'evaluate.exclude' setting must name model columns"),
    ({"evaluate": {"exclude": ["state"], "conditions": ["state"]}}, "excluded by 'evaluate.exclude'"),
])
def test_bad_area_settings_are_refused_before_any_work(tmp_path, change, match):
    config = load_pipeline(GEO)
    for section, value in change.items():
        if isinstance(value, dict) and section != "sources":
            config[section] = {**{k: v for k, v in config[section].items() if section != "evaluate" or k != "heldout"},
                               **value}
        else:
            config[section] = value
    config["output"] = str(tmp_path / "out")
    with pytest.raises(DataValidationError, match=match):
        run_pipeline(config, progress=False)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("setting, file", [("calibrate.targets", "targets.csv"), ("evaluate.heldout", "heldout.csv")])
def test_targets_on_a_column_the_population_lacks_are_refused_before_any_work(tmp_path, setting, file):
    """The source's raw ``puma`` column is no model column (the model is conditioned on ``puma_id``), so no population
    has it: a target or held-out cell on it is refused before the fit, not by its stage minutes later."""
    census = load_dataset("census2000")
    census[census["state"].isin(STATES)].to_csv(tmp_path / "census.csv", index=False)
    for name in ("targets.csv", "heldout.csv"):
        _rows_of(GEO.parent / name, STATES).to_csv(tmp_path / name, index=False)
    table = pd.read_csv(tmp_path / file, keep_default_na=False)
    table.loc[0, "filter"] += " & puma == 100"
    table.to_csv(tmp_path / file, index=False)
    config = load_pipeline(GEO)
    config["sources"][0]["path"] = str(tmp_path / "census.csv")
    config["calibrate"]["targets"] = str(tmp_path / "targets.csv")
    config["evaluate"]["heldout"] = str(tmp_path / "heldout.csv")
    with pytest.raises(DataValidationError, match=rf"The '{setting}' file names columns \['puma'\] that the "
                                                  r"population will not have \(target .*puma == 100.*'puma_id'\]"):
        run_pipeline(config, overrides={"output": str(tmp_path / "out"), **SMALL}, progress=False)
    assert not (tmp_path / "out").exists()


def test_demo_geo_runs_the_bundled_geo_pipeline(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    import microplex.pipeline
    from microplex.cli import app

    calls = []

    class Done:
        def summary_text(self):
            return "done"

    monkeypatch.setattr(microplex.pipeline, "run_pipeline", lambda p, **kw: calls.append((Path(p), kw)) or Done())
    assert CliRunner().invoke(app, ["demo", "--geo", "-q", "-o", str(tmp_path / "g")]).exit_code == 0
    assert CliRunner().invoke(app, ["demo", "-q", "--rows", "50", "--epochs", "2", "-o", str(tmp_path / "d")]).exit_code == 0
    (geo, geo_kw), (cps, cps_kw) = calls
    assert geo == GEO and geo_kw["overrides"] == {"output": str((tmp_path / "g").resolve())}
    assert cps.parent.name == "demo" and cps_kw["overrides"]["generate.n"] == 50 and cps_kw["overrides"]["model.epochs"] == 2


def test_report_shows_the_largest_calibration_errors_when_targets_are_many(tmp_path):
    """2,330 targets made a bar per target and a 2,330-row table; the report keeps the 40 largest errors."""
    from microplex.evaluation import evaluate

    df = pd.DataFrame({"g": np.repeat(np.arange(50), 4), "x": np.arange(200.0)})
    synth = df.assign(weight=1.0)
    targets = {("g", i): 4.0 + (i == 7) for i in range(50)}  # one target missed by 20%
    rep = evaluate(df, synth, synthetic_weight_col="weight", targets=targets, pmse=False, progress=False)
    html = rep.to_html(tmp_path / "r.html").read_text()
    section = html[html.index('id="calibration"'):]
    assert "50 targets; the 40 with the largest absolute relative error" in section
    table = section[section.index("<table"):section.index("</table>")]
    assert table.count("<tr>") == 40 and table.index("g=7") < table.index("g=0")


def test_area_settings_are_refused_in_a_household_pipeline(tmp_path):
    config = {"output": str(tmp_path / "out"), "sources": [{"name": "s", "path": "bundled:eusilc"}],
              "model": {"household_id": "db030", "household_vars": ["hsize"], "person_vars": ["age"],
                        "holdout_by": "hsize"},
              "generate": {"n_households": 10, "by": "hsize"}, "sparsify": {"by": "db040", "targets": "t.csv"}}
    with pytest.raises(DataValidationError, match=r"\['model.holdout_by', 'generate.by', 'sparsify.by'\] are not available"):
        run_pipeline(config, progress=False)
    assert not (tmp_path / "out").exists()


def test_calibrate_geography_refuses_areas_that_do_not_nest_naming_them():
    from microplex._pipeline_areas import check_geography

    df = pd.DataFrame({"state": ["A", "A", "B", "B", "B"], "puma": [1, 2, 3, 3, 4], "weight": 1.0})
    targets = Targets([Target(2.0, filters={"state": "A"}), Target(3.0, filters={"state": "B"}),
                       Target(1.0, filters={"state": "A", "puma": 1}), Target(1.0, filters={"state": "A", "puma": 2})])
    check_geography(df, targets, ["state", "puma"])  # nested, consistent: no error
    split = df.assign(puma=[1, 2, 2, 3, 4])  # PUMA 2 in states A and B
    with pytest.raises(DataValidationError, match=r"does not nest: 1 puma areas.*puma 2 lies in state \['A', 'B'\]"):
        check_geography(split, targets, ["state", "puma"])
    bad = Targets([Target(2.0, filters={"state": "A"}), Target(1.0, filters={"state": "A", "puma": 1}),
                   Target(5.0, filters={"state": "A", "puma": 2})])
    with pytest.raises(DataValidationError, match=r"contradict each other: count\[state == 'A'\] = 2 but its 2 sub-areas' targets sum to 6"):
        check_geography(df, bad, ["state", "puma"])
    with pytest.raises(DataValidationError, match=r"areas with no records: .*puma == 9"):
        check_geography(df, Targets([Target(1.0, filters={"state": "A", "puma": 9})]), ["state", "puma"])
    with pytest.raises(DataValidationError, match=r"'calibrate.geography' setting names columns \['tract'\]"):
        check_geography(df, targets, ["state", "tract"])


def test_calibrate_geography_setting_is_checked_before_any_work(tmp_path):
    config = load_pipeline(GEO)
    config["calibrate"] = {**config["calibrate"], "geography": "state"}
    config["output"] = str(tmp_path / "out")
    with pytest.raises(DataValidationError, match="'calibrate.geography'"):
        run_pipeline(config, progress=False)
    assert not (tmp_path / "out").exists()


def test_area_misplacement_says_a_person_in_an_unlisted_cell_counts_once(monkeypatch):
    """Held-out cells are positive, so a cell the data leave empty is never listed: a PUMA whose 1 person the
    population puts in such a cell reads 1 (100%), not 2; the report's note and the docs say so."""
    import types

    from microplex.evaluation import _plots_area

    pop = pd.DataFrame({"puma_id": ["A:1"], "educ": [13], "weight": 1.0})
    cells = pd.DataFrame({"aggregate": "count", "variable": None, "value": 1.0,
                          "filter": ["puma_id == 'A:1' & educ in {9, 10, 11, 12}"]})
    errors = heldout_errors({"p": pop}, cells, areas=["puma_id"])
    assert area_errors(errors, "puma_id")["error"].tolist() == [1.0]  # the arithmetic is kept
    monkeypatch.setattr(_plots_area, "png", lambda fig, alt="plot": "<img>")
    html = _plots_area.heldout_section(types.SimpleNamespace(heldout=errors, areas=["puma_id"]))
    docs = (Path(__file__).parents[1] / "docs" / "reference" / "pipeline.md").read_text(encoding="utf-8")
    for text in (html, area_errors.__doc__, docs):
        assert "counts once" in " ".join(text.split())
