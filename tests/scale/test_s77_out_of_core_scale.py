"""The out-of-core calibration (rake_frame, rake_dataset over cells or over partitions) starts from initial weights far
off the targets' scale as the Calibrator does (calibrator.hard_start of design.target_scale), with the same collapse
check (against the initial total at that scale) and the same rounding allowance (the smaller of the initial and final
sizes). Every miss is summed by hand with pandas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from microplex import Calibrator
from microplex._errors import ConvergenceError
from microplex.calibration import Targets
from microplex.scale import rake_dataset, rake_frame

MARGINS = {"sex": {"f": 700.0, "m": 650.0}, "reg": {"N": 400.0, "S": 450.0, "E": 500.0}}


def _sample(n: int = 600) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"sex": rng.choice(["f", "m"], n), "reg": rng.choice(["N", "S", "E"], n),
                         "w": rng.uniform(1, 3, n)})


def _worst_miss(df: pd.DataFrame, w: np.ndarray) -> float:
    return max(abs(float(w[(df[c] == k).to_numpy()].sum()) / v - 1) for c, m in MARGINS.items() for k, v in m.items())


@pytest.mark.parametrize("s", [1e8, 2e9, 1e10, 1e13])
def test_rake_frame_from_weights_far_above_the_targets_gives_the_calibrators_weights(s):
    """Before: from weights 1e8 times the targets' scale rake_frame read converged with a margin missed by 5.48e-8
    (beyond met_rtol 1e-8; the Calibrator: 2.2e-15), and from 2e9, 1e10 or 1e13 times it refused with
    DataValidationError ("The targets of margin 'sex' total 1350, under 1e-09 of the initial weights' total
    2.39566e+12 ... would be refused as collapsed") where the Calibrator solves."""
    df = _sample().assign(w=lambda f: f.w * s)
    expected = Calibrator(tol=1e-10).fit(df, Targets.from_margins(MARGINS), "w").weights.to_numpy()
    res = rake_frame(df, MARGINS, "w")
    w = np.asarray(res.weights(df))
    assert res.converged
    assert _worst_miss(df, w) < 1e-10
    np.testing.assert_allclose(w, expected, rtol=1e-9)
    assert res.report["achieved"].sum() == pytest.approx(2700.0, rel=1e-10)


@pytest.mark.parametrize("max_cells", [2_000_000, 1])
def test_rake_dataset_from_weights_far_above_the_targets_on_cells_and_over_partitions(tmp_path, max_cells):
    """The same through files, solved on the cell table and, with max_cells=1, over the partitions (where the factor
    comes from a margin that covers every record). Before: DataValidationError on both paths."""
    df = _sample().assign(w=lambda f: f.w * 1e10)
    for i, part in enumerate(np.array_split(np.arange(len(df)), 3)):
        df.iloc[part].to_parquet(tmp_path / f"part{i}.parquet")
    expected = Calibrator(tol=1e-10).fit(df, Targets.from_margins(MARGINS), "w").weights.to_numpy()
    res = rake_dataset(tmp_path, MARGINS, "w", max_cells=max_cells)
    w = np.asarray(res.weights(df))
    assert res.converged and (res.n_cells == 0) == (max_cells == 1)
    assert _worst_miss(df, w) < 1e-10
    np.testing.assert_allclose(w, expected, rtol=1e-9)


def test_margins_that_ask_for_a_collapse_are_refused_by_both():
    """Margins that disagree by 1e12 (a population of 1350 by sex and of 1.35e-9 by region): no weights meet both, and
    both front ends refuse (the collapse check and its threshold, COLLAPSE, are the same)."""
    df = _sample()
    margins = {"sex": MARGINS["sex"], "reg": {k: v * 1e-12 for k, v in MARGINS["reg"].items()}}
    with pytest.raises(ConvergenceError):
        Calibrator().fit(df, Targets.from_margins(margins), "w")
    with pytest.raises(ConvergenceError):
        rake_frame(df, margins, "w")
