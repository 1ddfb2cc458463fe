"""Session 69: small areas and geography.

- ``evaluate.areas`` naming a column that no held-out cell fixes to one value (``rb090`` or ``age`` with
  region x age cells) crashed the evaluate stage with a raw IndexError (an empty area table plotted).
- ``calibrate.geography`` refused valid targets as "targets name areas with no records" when a target's area
  filter was a set (``state in {'Idaho', 'Nevada'}``), a range, or a code of another type than the column
  (``pid == '300100'`` for an integer column): the raw filter value was looked up among the area tuples.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from microplex import DataValidationError
from microplex._pipeline_areas import check_geography
from microplex.calibration import Calibrator, Targets
from microplex.datasets import load_dataset
from microplex.evaluation.areas import area_errors, heldout_errors
from microplex.pipeline import run_pipeline


def _eusilc_cells() -> tuple[pd.DataFrame, pd.DataFrame]:
    e = load_dataset("eusilc")[["db040", "rb090", "age", "rb050"]]
    cells = [dict(aggregate="count", variable=None, filter=f"db040 == '{r}' & age in [{lo}, {hi})",
                  value=float(g.rb050[(g.age >= lo) & (g.age < hi)].sum()))
             for r, g in e.groupby("db040") for lo, hi in [(0, 18), (18, 65), (65, 200)]]
    return e, pd.DataFrame(cells)


@pytest.mark.parametrize("column", ["rb090", "age"])
def test_evaluate_areas_naming_a_column_no_cell_fixes_is_refused_before_work(tmp_path, column):
    e, cells = _eusilc_cells()
    e.to_csv(tmp_path / "e.csv", index=False)
    cells.to_csv(tmp_path / "heldout.csv", index=False)
    config = {"_base": str(tmp_path), "output": "out", "seed": 1,
              "sources": [{"name": "e", "path": "e.csv", "weight": "rb050"}],
              "model": {"targets": ["age"], "conditions": ["db040", "rb090"], "epochs": 1},
              "generate": {"n": 500},
              "evaluate": {"heldout": "heldout.csv", "areas": ["db040", column], "pmse": False}}
    with pytest.raises(DataValidationError, match=rf"evaluate\.areas.*'{column}'.*\['db040'\]"):
        run_pipeline(config)
    assert not (tmp_path / "out").exists()  # refused before any stage ran


def test_area_errors_of_a_column_no_cell_fixes_is_refused():
    e, cells = _eusilc_cells()
    errors = heldout_errors({"source": e}, cells, weight_col="rb050", areas=["db040", "rb090"])
    by_region = area_errors(errors, "db040")
    assert len(by_region) == e["db040"].nunique() and np.allclose(by_region["error"], 0.0, atol=1e-12)
    with pytest.raises(DataValidationError, match=r"'rb090'.*no held-out cell.*\['db040'\]"):
        area_errors(errors, "rb090")


def _three_states() -> pd.DataFrame:
    df = load_dataset("census2000")
    df = df[df.state.isin(["Nevada", "Utah", "Idaho"])].copy().reset_index(drop=True)
    df["weight"] = 1.0
    df["pid"] = df.puma + 100000 * df.state.map({"Idaho": 1, "Nevada": 2, "Utah": 3})
    return df


def _count(flt: str, value: float) -> dict:
    return dict(aggregate="count", variable=None, filter=flt, value=float(value))


def test_geography_accepts_set_range_and_string_code_targets():
    df = _three_states()
    utah_puma = int(df.loc[df.state == "Utah", "pid"].min())
    in_range = df.pid.between(200000, 299999)
    t = Targets.from_frame(pd.DataFrame([
        _count("state in {'Idaho', 'Nevada'}", df.state.isin(["Idaho", "Nevada"]).sum()),
        _count("state == 'Utah'", (df.state == "Utah").sum()),
        _count(f"state == 'Utah' & pid == '{utah_puma}'", (df.pid == utah_puma).sum()),
        _count("pid >= 200000 & pid < 300000", in_range.sum()),
    ]))
    check_geography(df, t, ["state", "pid"])  # before: "3 targets name areas with no records" (all but Utah)
    w = np.asarray(Calibrator().fit(df, t, weight_col="weight", geography=["state", "pid"]).result_.record_weights)
    for target, mask in zip(t, [df.state.isin(["Idaho", "Nevada"]), df.state == "Utah", df.pid == utah_puma, in_range]):
        assert w[mask.to_numpy()].sum() == pytest.approx(target.value, rel=1e-6)


def test_geography_still_refuses_targets_whose_areas_have_no_records():
    df = _three_states()
    t = Targets.from_frame(pd.DataFrame([
        _count("state in {'Texas', 'Ohio'}", 10),
        _count("pid >= 900000", 5),
        _count("state == 'Utah' & pid == '100100'", 3),  # a PUMA of Idaho asked inside Utah
        _count("state == 'Utah'", (df.state == "Utah").sum()),
    ]))
    with pytest.raises(DataValidationError, match=r"3 targets name areas with no records: count\[state in "):
        check_geography(df, t, ["state", "pid"])
