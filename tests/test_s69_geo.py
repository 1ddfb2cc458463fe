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
