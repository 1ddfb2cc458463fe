import warnings

import numpy as np
import pandas as pd
import pytest

from microplex import ConvergenceError, DataValidationError
from microplex.scale import generate_dataset
from microplex.scale.calibrate import rake_dataset, rake_frame


def _ipf(df, margins, d, iters=500):
    """Iterative proportional fitting: an independent in-memory raking reference."""
    w = d.copy()
    for _ in range(iters):
        for col, cats in margins.items():
            key = df[list(col)].apply(tuple, axis=1) if isinstance(col, tuple) else df[col]
            for cat, total in cats.items():
                mask = (key == cat).to_numpy()
                w[mask] *= total / w[mask].sum()
    return w


@pytest.fixture(scope="module")
def dataset(tiny_synth, tmp_path_factory):
    path = tmp_path_factory.mktemp("rake") / "pop"
    generate_dataset(tiny_synth, n=3000, path=path, partition_by=["black"], rows_per_file=700, seed=1, progress=False)
    df = pd.read_parquet(path)
    df["black"] = df["black"].astype(int)
    df["agegrp"] = pd.cut(df["age"], [0, 25, 35, 200], labels=False)
    df["w0"] = 1.0 + (df["educ"] % 3)
    path2 = path.parent / "flat.parquet"
    df.to_parquet(path2, row_group_size=500)
    return path2, df


def _margins(df):
    n = 5000.0
    black = {0: 0.8 * n, 1: 0.2 * n}
    within = df.groupby(["educ", "black"]).size() / df.groupby("black").size()
    return {
        "black": black,
        "agegrp": {0: 0.3 * n, 1: 0.3 * n, 2: 0.4 * n},
        ("educ", "black"): {(e, b): v * black[b] for (e, b), v in within.items()},
    }


@pytest.mark.parametrize("max_cells", [2_000_000, 0])
def test_out_of_core_raking_matches_in_memory(dataset, max_cells):
    path, df = dataset
    margins = {"black": _margins(df)["black"], "agegrp": _margins(df)["agegrp"]}
    res = rake_dataset(path, margins, weight_col="w0", max_cells=max_cells)
    assert res.converged and res.max_misfit < 1e-10 and res.n_iter <= 10
    assert (res.n_cells > 0) == (max_cells > 0)
    w = res.weights(df)
    ref = _ipf(df, margins, df["w0"].to_numpy(float))
    np.testing.assert_allclose(w, ref, rtol=1e-8)
    np.testing.assert_allclose(w, rake_frame(df, margins, "w0").weights(df), rtol=1e-10)
    np.testing.assert_allclose(res.report["achieved"], res.report["target"], rtol=1e-9)


def test_crossed_margins_on_a_hive_dataset(tiny_synth, tmp_path):
    path = tmp_path / "hive"
    generate_dataset(tiny_synth, n=2000, path=path, partition_by=["black"], rows_per_file=600, seed=2, progress=False)
    df = pd.read_parquet(path)
    df["black"] = df["black"].astype(int)
    cross = (df.groupby(["educ", "black"]).size() * 3.0).to_dict()
    margins = {("educ", "black"): cross, "black": {0: 3.0 * (df["black"] == 0).sum(), 1: 3.0 * (df["black"] == 1).sum()}}
    margins[("educ", "black")] = {k: v * (1.2 if k[1] else 0.9) for k, v in cross.items()}
    margins["black"] = {b: sum(v for k, v in margins[("educ", "black")].items() if k[1] == b) for b in (0, 1)}
    res = rake_dataset(path, margins)
    assert res.converged
    np.testing.assert_allclose(res.weights(df), rake_frame(df, margins).weights(df), rtol=1e-10)
    np.testing.assert_allclose(res.weights(df), np.where(df["black"] == 1, 3.6, 2.7), rtol=1e-9)


def test_matches_calibration_engine_when_available(dataset):
    calibration = pytest.importorskip("microplex.calibration")
    if not hasattr(calibration, "Calibrator"):
        pytest.skip("microplex.calibration.Calibrator is not on this branch")
    path, df = dataset
    margins = _margins(df)
    res = rake_dataset(path, margins, weight_col="w0")
    cal = calibration.Calibrator(method="raking").fit(df, margins, weight_col="w0")
    result = getattr(cal, "result_", None) or cal
    np.testing.assert_allclose(res.weights(df), np.asarray(result.record_weights), rtol=1e-7)


def test_bad_margins_and_non_convergence(dataset):
    path, df = dataset
    with pytest.raises(DataValidationError, match=r"lacks margin or weight columns \['state'\]"):
        rake_dataset(path, {"state": {"CA": 10.0}})
    with pytest.raises(DataValidationError, match="totals must be finite and >= 0"):
        rake_dataset(path, {"black": {0: -1.0}})
    bad = {"black": {0: 100.0, 1: 100.0}, "agegrp": {0: 1000.0, 1: 1000.0, 2: 1000.0}}
    with warnings.catch_warnings():  # the error alone, no warning before it (which -W error would raise instead)
        warnings.simplefilter("error")
        with pytest.raises(ConvergenceError, match="did not converge"):
            rake_dataset(path, bad, max_iter=5)
