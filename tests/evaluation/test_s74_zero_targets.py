"""A calibration target of 0 (a cell that must be empty, a sum netting to 0) has no relative error: the table's
``rel_error`` holds its absolute miss. The CLI's key numbers printed it as a percentage (a count of 1.07 left in an
empty cell read "largest calibration error: 107%", next to a calibration report calling it met), and the report's
chart drew it as a bar of 107%."""

import numpy as np
import pandas as pd

from microplex.evaluation import evaluate
from microplex.evaluation._plots_file import calibration_plots
from microplex.evaluation._verdict import calibration_line, key_numbers


def _frames():
    rng = np.random.default_rng(0)
    real = pd.DataFrame({"g": rng.choice(["a", "b", "z"], 300), "x": rng.normal(10.0, 2.0, 300)})
    syn = real.sample(300, replace=True, random_state=1).reset_index(drop=True)
    w = np.full(300, 2.0)
    z = (syn["g"] == "z").to_numpy()
    w[z] = 1.07 / z.sum()  # 1.07 persons left in the cell that must be empty
    return real, syn, w


def test_key_numbers_give_a_zero_target_as_an_absolute_miss_not_a_percentage():
    real, syn, w = _frames()
    a = float(w[(syn["g"] == "a").to_numpy()].sum())
    targets = {("g", "a"): a * 1.02, ("g", "z"): 0.0}  # 2% off on a; the empty cell missed by its leftover
    rep = evaluate(real, syn.assign(w=w), synthetic_weight_col="w", targets=targets, pmse=False)
    z_left = float(w[(syn["g"] == "z").to_numpy()].sum())
    line = next(x for x in key_numbers(rep) if x.startswith("largest calibration error"))
    rel_a = abs(a / (a * 1.02) - 1)
    assert line == (f"largest calibration error: {100 * rel_a:.3g}% over 1 targets; on 1 target(s) of 0, "
                    f"the largest absolute miss {z_left:.3g}"), line
    assert "107%" not in line  # before: "largest calibration error: 107% over 2 targets"
    html = calibration_plots(rep)
    assert "1 target(s) of 0 shown without a bar" in html


def test_a_leftover_larger_than_one_on_a_zero_target_is_not_called_a_share():
    table = pd.DataFrame({"target": [1000.0, 0.0], "achieved": [1001.0, 1.07], "error": [1.0, 1.07],
                          "rel_error": [0.001, 1.07]})
    line = calibration_line(table)
    assert "107%" not in line and line.startswith("largest calibration error: 0.1% over 1 targets"), line
    assert "the largest absolute miss 1.07" in line
    only_zero = calibration_line(table.iloc[[1]])
    assert only_zero == "largest calibration error: on 1 target(s) of 0, the largest absolute miss 1.07"
    assert calibration_line(None) is None and calibration_line(table.iloc[:0]) is None
