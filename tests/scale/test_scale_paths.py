"""Inputs of the scale functions checked before any work: the files of a dataset against each other, the
paths read and written, and the scale of the initial weights (each a defect of the s46 sweep)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from microplex import DataValidationError
from microplex.scale import generate_dataset, rake_dataset, rake_frame, write_calibrated

MARGINS = {"marr": {0: 1500.0, 1: 3500.0}, "black": {0: 4500.0, 1: 500.0}}


def _frame(n: int = 5000) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"marr": rng.integers(0, 2, n), "black": rng.integers(0, 2, n), "w": 1.0})


def _two_parts(root, second: pd.DataFrame) -> None:
    root.mkdir()
    df = _frame()
    df.iloc[:2500].to_parquet(root / "a.parquet")
    second.to_parquet(root / "b.parquet")


@pytest.mark.parametrize("max_cells", [2_000_000, 0])
def test_a_part_storing_a_margin_column_as_strings_is_refused(tmp_path, max_cells):
    """Was: converged (max_rel_error 4e-11) with the 2,500 records of b.parquet at a total weight of 2e-7."""
    _two_parts(tmp_path / "d", _frame().iloc[2500:].astype({"black": str}))
    with pytest.raises(DataValidationError, match=r"b\.parquet' differs from .*a\.parquet' in columns \['black'\]"):
        rake_dataset(tmp_path / "d", MARGINS, max_cells=max_cells)


def test_a_part_lacking_a_margin_column_is_refused(tmp_path):
    """Was: a raw KeyError "['black'] not in index"."""
    _two_parts(tmp_path / "d", _frame().iloc[2500:].drop(columns=["black"]))
    with pytest.raises(DataValidationError, match=r"b\.parquet' differs from .* in columns \['black'\]"):
        rake_dataset(tmp_path / "d", MARGINS)


def test_parts_that_agree_and_hive_partition_columns_still_calibrate(tmp_path):
    df = _frame()
    df.to_parquet(tmp_path / "d", partition_cols=["marr"], index=False)  # 'marr' only in the folder names
    res = rake_dataset(tmp_path / "d", MARGINS)
    assert res.converged


def test_a_missing_dataset_is_named(tmp_path):
    """Was: Dask's "An error occurred while calling the read_parquet method ... Original Message: ..."."""
    with pytest.raises(DataValidationError, match=r"Parquet dataset path '.*nope' does not exist"):
        rake_dataset(tmp_path / "nope", MARGINS)


@pytest.fixture()
def raked(tmp_path):
    src = tmp_path / "pop"
    _frame().to_parquet(src, partition_cols=["marr"], index=False)
    return src, rake_dataset(src, MARGINS)


def test_write_calibrated_refuses_its_source_and_a_folder_above_it(raked):
    """Was: write_calibrated(res, pop, pop/marr=0/sub) wrote the copy into the source (read back: 10,000 rows)."""
    src, res = raked
    n = len(pd.read_parquet(src))
    for out in (src, src / "marr=0" / "sub", src.parent / "new" / ".." / "pop" / "copy", src.parent):
        with pytest.raises(DataValidationError, match=r"'out' output .* would overwrite the input"):
            write_calibrated(res, src, out)
    assert len(pd.read_parquet(src)) == n and not (src / "marr=0" / "sub").exists() and not (src / "copy").exists()


def test_write_calibrated_names_a_bad_output_or_a_missing_source(raked, tmp_path):
    """Was: raw NotADirectoryError."""
    src, res = raked
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(DataValidationError, match=r"'out' output '.*afile' is a file"):
        write_calibrated(res, src, afile)
    with pytest.raises(DataValidationError, match=r"Cannot create the 'out' output '.*afile/sub'"):
        write_calibrated(res, src, afile / "sub")
    with pytest.raises(DataValidationError, match=r"Parquet dataset path '.*nope' does not exist"):
        write_calibrated(res, tmp_path / "nope", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_generate_dataset_names_a_path_under_a_file_or_inside_its_conditions(tiny_synth, tmp_path):
    """Was: a raw NotADirectoryError naming '.../afile/.sub.microplex'."""
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(DataValidationError, match=r"Cannot create the 'path' output '.*afile/sub'"):
        generate_dataset(tiny_synth, n=10, path=afile / "sub", progress=False)
    cond = tmp_path / "cond"
    cond.mkdir()
    pd.DataFrame({"age": [30, 40], "educ": [10, 12], "black": [0, 1]}).to_parquet(cond / "c.parquet")
    with pytest.raises(DataValidationError, match=r"'path' output .* would overwrite the input"):
        generate_dataset(tiny_synth, conditions=cond, n=2, path=cond / "out", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "cond"] and [p.name for p in cond.iterdir()] == ["c.parquet"]


@pytest.mark.parametrize("initial_weight", [1e10, 1e300])
def test_initial_weights_far_above_the_targets_are_solved_as_the_calibrator_solves_them(tmp_path, initial_weight):
    """Was: ConvergenceError "the weights collapsed" (the targets themselves ask for 1e-300 of the initial total), then
    a DataValidationError naming the parameter, where the Calibrator solves from the targets' scale
    (calibrator.hard_start): now solved from there too, the weights of initial_weight=1."""
    df = _frame()
    df.to_parquet(tmp_path / "d.parquet")
    base = np.asarray(rake_frame(df, MARGINS).weights(df))
    for call in (lambda: rake_frame(df, MARGINS, initial_weight=initial_weight),
                 lambda: rake_dataset(tmp_path / "d.parquet", MARGINS, initial_weight=initial_weight, max_cells=0)):
        res = call()
        assert res.converged
        np.testing.assert_allclose(np.asarray(res.weights(df)), base, rtol=1e-10)
    assert rake_frame(df, MARGINS, initial_weight=1e5).converged  # a ratio of 1e-5: still solved


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_initial_weights_whose_sum_overflows_are_refused(tmp_path):
    """Was: ConvergenceError "2 weights are not finite" after one iteration."""
    df = _frame()
    with pytest.raises(DataValidationError, match=r"'initial_weight' parameter \(1e\+305\) .* sum to inf"):
        rake_frame(df, MARGINS, initial_weight=1e305)
    df["w"] = 1e305
    df.to_parquet(tmp_path / "d.parquet")
    with pytest.raises(DataValidationError, match=r"weight column 'w'\) sum to inf"):
        rake_dataset(tmp_path / "d.parquet", MARGINS, "w", max_cells=0)


def test_generate_household_dataset_names_a_path_under_a_file(hs, tmp_path):
    from microplex.scale import generate_household_dataset

    afile = tmp_path / "afile"
    afile.write_text("x")
    for path, match in ((afile / "sub", r"Cannot create the 'path' output '.*afile/sub'"), (afile, r"'.*afile' is a file")):
        with pytest.raises(DataValidationError, match=match):
            generate_household_dataset(hs, 10, path=path, progress=False)
    assert [p.name for p in tmp_path.iterdir()] == ["afile"]
