"""Margins given as pandas Series are read by their level names: ``{("a", "b"): s}`` for ``s`` grouped by
``["b", "a"]`` holds ``(b, a)`` pairs, and read by position it calibrated the transposed table without a word (44%
off the intended cells on a 3 x 3 table of integer codes). A margin that lists a category twice (a join that doubled
a row) is refused in memory as out of core (it gave two targets for one cell)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from microplex import DataValidationError
from microplex.calibration import Calibrator, Targets
from microplex.scale import rake_frame


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 400
    return pd.DataFrame({"a": rng.integers(1, 4, n), "b": rng.integers(1, 4, n), "w": rng.uniform(0.5, 2.0, n)})


def _cells(df: pd.DataFrame, w: np.ndarray) -> pd.Series:
    return pd.Series(w, index=df.index).groupby([df["a"], df["b"]]).sum()


def test_levels_named_as_the_key_in_another_order_are_read_by_name(frame):
    intended = frame.groupby(["a", "b"])["w"].sum() * 1.1
    swapped = frame.groupby(["b", "a"])["w"].sum() * 1.1  # the same table, levels (b, a)
    targets = Targets.from_margins({("a", "b"): swapped})
    by_name = {t.name: t.value for t in Targets.from_margins({("a", "b"): intended})}
    assert {t.name: t.value for t in targets} == by_name
    w = Calibrator().fit(frame, targets, weight_col="w").weights.to_numpy()
    np.testing.assert_allclose(_cells(frame, w).to_numpy(), intended.to_numpy(), rtol=1e-8)
    res = rake_frame(frame, {("a", "b"): swapped}, "w")
    np.testing.assert_allclose(_cells(frame, np.asarray(res.weights(frame), dtype=float)).to_numpy(), intended.to_numpy(), rtol=1e-8)


def test_a_level_named_as_another_key_column_is_refused(frame):
    table = frame.groupby(["b", "a"])["w"].sum()
    partial = table.rename_axis(["b", "region"])  # b where the key has a
    for call in (lambda: Targets.from_margins({("a", "b"): partial}),
                 lambda: rake_frame(frame, {("a", "b"): partial}, "w")):
        with pytest.raises(DataValidationError, match=r"named \['b', 'region'\].*\['b'\]"):
            call()


def test_unnamed_or_otherwise_named_levels_are_read_by_position(frame):
    """An official table's own names (or none) say nothing about the key: read in the key's order, as documented."""
    intended = frame.groupby(["a", "b"])["w"].sum() * 1.1
    for s in (intended.rename_axis(["A_CODE", "B_CODE"]), intended.rename_axis([None, None])):
        w = Calibrator().fit(frame, Targets.from_margins({("a", "b"): s}), weight_col="w").weights.to_numpy()
        np.testing.assert_allclose(_cells(frame, w).to_numpy(), intended.to_numpy(), rtol=1e-8)


@pytest.mark.parametrize("values", [[120.0, 100.0, 90.0], [120.0, 100.0, 120.0]])
def test_a_category_listed_twice_is_refused(values):
    """Before: two targets for the cell of 'A' (Calibrator then ran 50 iterations into 'did not converge', or, with
    equal values, calibrated as if nothing was wrong); rake_frame already refused it."""
    s = pd.Series(values, index=["A", "B", "A"])
    with pytest.raises(DataValidationError, match=r"Margin 's' lists the category 'A' twice \(values 120.0 and"):
        Targets.from_margins({"s": s})
    crossed = pd.Series([5.0, 6.0], index=pd.MultiIndex.from_tuples([("x", 1), ("x", 1)], names=["g", "k"]))
    with pytest.raises(DataValidationError, match=r"lists the category \('x', 1\) twice"):
        Targets.from_margins({("g", "k"): crossed})


def test_a_yaml_margin_that_lists_a_category_twice_names_the_file_and_margin(tmp_path):
    path = tmp_path / "targets.yaml"
    path.write_text("margins:\n  - by: s\n    values:\n      - [A, 120]\n      - [B, 100]\n      - [A, 90]\n")
    with pytest.raises(DataValidationError, match=r"targets.yaml', margins\[0\]: Margin 's' lists the category 'A' twice"):
        Targets.from_yaml(path)
