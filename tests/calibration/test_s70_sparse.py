"""Sparse subsets and areas, s70.

1. Records with no area: ``[sparsify] by = "state"`` on a population with records of no state (a source read with
   ``dropna = false``: the model keeps the missing condition and ``generate`` draws it) dropped them without a word
   (116 of 2,000 generated records, 11,600 of the population's 200,000 weight; exit 0), or, with ``max_records``,
   failed with an internal ``ValueError`` ("'list' argument must have no negative elements"); ``generate.by``
   failed with the same internal error. Both now refuse the missing areas up front, naming the column and the count.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from microplex import DataValidationError
from microplex._pipeline_areas import _area_conditions, _sparsify_by
from microplex.calibration import Target, Targets
from microplex.datasets import load_dataset
from microplex.evaluation.areas import cell_totals
from microplex.pipeline import run_pipeline

STATES = ["California", "Texas", "New York"]


def _no_state_frame() -> tuple[pd.DataFrame, Targets]:
    """600 records of two states, every 20th with no state (30 records, weight 60), and a count per state."""
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"state": rng.choice(["X", "Y"], 600).astype(object), "sex": rng.integers(0, 2, 600),
                       "weight": 2.0})
    df.loc[::20, "state"] = np.nan
    counts = df.groupby(["state", "sex"]).size() * 2.1
    return df, Targets([Target(float(v), filters={"state": s, "sex": int(x)}) for (s, x), v in counts.items()])


@pytest.mark.parametrize("budget", [None, 40])
def test_sparsify_by_refuses_records_of_no_area(budget):
    """Before: without a budget the 30 records of no state got weight 0 with no error (weight 60 of 1,200 gone);
    with a budget of 40 a builtins ValueError from np.bincount."""
    df, targets = _no_state_frame()
    params = {"seed": 0} if budget is None else {"seed": 0, "max_records": budget}
    with pytest.raises(DataValidationError, match=r"'sparsify.by' column 'state' has 30 records \(of 600\) with no "
                                                  r"value.*drop them.*dropna\(subset=\['state'\]\)"):
        _sparsify_by(df, targets, "state", params, "weight", None)
    # the same records with an area of their own are subset, every area's targets met
    given = df.assign(state=df["state"].fillna("none"))
    extra = Targets([Target(float(v), filters={"state": "none", "sex": int(x)})
                     for x, v in (given[given["state"] == "none"].groupby("sex").size() * 2.1).items()])
    w, table = _sparsify_by(given, targets + extra, "state", params, "weight", None)
    assert table["area"].tolist() == ["X", "Y", "none"] and (table["kept"] > 0).all()
    achieved = cell_totals(given.assign(weight=w)[w > 0], targets + extra)
    assert np.abs(achieved / [t.value for t in targets + extra] - 1).max() <= 0.005


def test_area_conditions_refuse_training_records_of_no_area():
    """Before: generate.by on training conditions with missing areas raised a builtins ValueError (np.bincount of
    the code -1)."""
    cond = pd.DataFrame({"area": ["a", "b", None, "a", "b", None, "a"], "x": np.arange(7)})
    with pytest.raises(DataValidationError, match=r"'generate.by' column 'area' has 2 training records \(of 7\) with "
                                                  r"no value.*drop them"):
        _area_conditions(cond, np.ones(7), 100, "area", np.random.default_rng(0))


@pytest.fixture(scope="module")
def no_state_source(tmp_path_factory):
    """1,500 census2000 records of three states, every 20th with no state (75 records)."""
    d = tmp_path_factory.mktemp("nostate")
    df = load_dataset("census2000")
    df = df[df["state"].isin(STATES)].sample(1500, random_state=3).reset_index(drop=True)
    df["state"] = df["state"].astype(object)
    df.loc[::20, "state"] = np.nan
    df["weight"] = 10.0
    df[["state", "lweekinc", "exper", "weight"]].to_csv(d / "src.csv", index=False)
    pd.DataFrame({"value": [float(df["weight"][df["state"] == s].sum() * 40 / 3) for s in STATES],
                  "filter": [f"state == '{s}'" for s in STATES]}).to_csv(d / "targets.csv", index=False)
    return d


def _config(d, out, **stages) -> dict:
    return {"output": str(out), "seed": 0, "_base": str(d),
            "sources": [{"name": "src", "path": str(d / "src.csv"), "weight": "weight", "dropna": False}],
            "model": {"targets": ["lweekinc", "exper"], "conditions": ["state"], "epochs": 1},
            "generate": {"n": 2000, "population": 200000}, **stages}


@pytest.mark.parametrize("budget", [None, 50])
def test_pipeline_sparsify_by_refuses_records_of_no_area(no_state_source, tmp_path, budget):
    """Before (microplex run): exit 0 with the 116 generated records of no state (11,600 of 200,000 weight) left out
    of subset.parquet, or, with max_records = 50, exit 2 with an internal ValueError."""
    d = no_state_source
    sparsify = {"targets": str(d / "targets.csv"), "by": "state"}
    if budget is not None:
        sparsify["max_records"] = budget
    with pytest.raises(DataValidationError, match=r"'sparsify.by' column 'state' has \d+ records .*with no value"):
        run_pipeline(_config(d, tmp_path, sparsify=sparsify), force=True, progress=False)
    assert (tmp_path / "synthetic.parquet").exists() and not (tmp_path / "subset.parquet").exists()


def test_pipeline_generate_by_refuses_training_records_of_no_area(no_state_source, tmp_path):
    d = no_state_source
    config = _config(d, tmp_path)
    config["generate"]["by"] = "state"
    with pytest.raises(DataValidationError, match=r"'generate.by' column 'state' has \d+ training records .*with no "
                                                  r"value"):
        run_pipeline(config, force=True, progress=False)
    assert not (tmp_path / "synthetic.parquet").exists()


def test_pipeline_calibrate_geography_refuses_records_of_no_area(no_state_source, tmp_path):
    """Checked alike, no change needed: calibrate (with geography) solves all areas at once and refuses a missing
    value in a targeted column, naming it."""
    d = no_state_source
    config = _config(d, tmp_path, calibrate={"targets": str(d / "targets.csv"), "geography": ["state"]})
    with pytest.raises(DataValidationError, match=r"Column 'state' \(used by target .*\) has \d+ missing values"):
        run_pipeline(config, force=True, progress=False)
