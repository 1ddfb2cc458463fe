"""s51: fusion results checked against figures computed here (the base kept, imputations joinable to it,
the reported bounds and shared-variable comparison on real data)."""

import numpy as np
import pandas as pd
import pytest

from microplex import Source, fuse
from microplex.datasets import load_dataset

FAST = {"epochs": 1, "hidden_features": (8,), "transforms": 1}


def _labelled_frames(n=200, seed=0):
    """A base whose index is not 0..n-1 (a filtered frame), as real extracts are."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=2 * n)
    a = pd.DataFrame({"x": x[:n], "y": x[:n] + rng.normal(size=n), "w": rng.uniform(1, 3, n)},
                     index=np.arange(n) * 10 + 7)
    b = pd.DataFrame({"x": x[n:], "z": 2 * x[n:] + rng.normal(size=n)})
    return a, b


@pytest.mark.parametrize("n_imputations", [1, 3])
def test_every_imputation_joins_back_to_the_base_by_index(n_imputations):
    """imputations() of several imputations were numbered 0..N-1, N..2N-1, ...: base.join(imputation) paired
    20 of 200 base records with other records' values and left the rest missing (1 imputation kept the index)."""
    a, b = _labelled_frames()
    result = fuse([Source(a, "a", weight_col="w"), Source(b, "b")], base="a", n_imputations=n_imputations,
                  synthesizer_params=FAST, seed=0)
    parts = result.imputations()
    assert len(parts) == n_imputations
    for part in parts:
        pd.testing.assert_index_equal(part.index, a.index)
        pd.testing.assert_frame_equal(part[a.columns], a, check_exact=True)
        joined = a.join(part[["z"]])
        np.testing.assert_array_equal(joined["z"].to_numpy(), part["z"].to_numpy())
    assert result.pool(lambda d: d["z"].mean())["estimate"] == pytest.approx(
        np.mean([p["z"].mean() for p in parts]))


def _wcorr(m, w):
    mean = (m * w[:, None]).sum(0) / w.sum()
    c = ((m - mean) * w[:, None]).T @ (m - mean) / w.sum()
    s = np.sqrt(np.diag(c))
    return c / np.outer(s, s)


def _wks(x, wx, y, wy):
    grid = np.union1d(x, y)
    fx = np.array([wx[x <= t].sum() for t in grid]) / wx.sum()
    fy = np.array([wy[y <= t].sum() for t in grid]) / wy.sum()
    return float(np.max(np.abs(fx - fy)))


def test_cps1_bounds_and_shared_comparison_are_the_documented_figures():
    """docs/fusion.md's cps1 split with survey weights on both halves: the base and its weights kept, the bounds
    of corr(re78, re74) by the documented formula (R_XX pooled over both sources, r_YX and r_ZX in each source),
    the fused correlation and the weighted SMD / KS of every shared variable, all recomputed here."""
    df = load_dataset("cps1")
    half = np.random.default_rng(0).random(len(df)) < 0.5
    demo = ["age", "educ", "black", "hisp", "marr", "nodeg"]
    rng = np.random.default_rng(1)
    a = df.loc[half, demo + ["re74", "re75"]].assign(w=lambda d: rng.uniform(0.5, 3.0, len(d)))
    b = df.loc[~half, demo + ["re75", "re78"]].assign(w=lambda d: rng.uniform(0.5, 3.0, len(d)))
    result = fuse([Source(a, "a", weight_col="w"), Source(b, "b", weight_col="w")], base="a",
                  synthesizer_params=FAST, seed=0)
    fused = result.data
    pd.testing.assert_frame_equal(fused[a.columns], a, check_exact=True)
    x = demo + ["re75"]
    wa, wb = a["w"].to_numpy(), b["w"].to_numpy()
    r_xx = _wcorr(np.vstack([a[x].to_numpy(float), b[x].to_numpy(float)]), np.r_[wa / wa.sum(), wb / wb.sum()])
    r_y = _wcorr(b[["re78"] + x].to_numpy(float), wb)[0, 1:]
    r_z = _wcorr(a[["re74"] + x].to_numpy(float), wa)[0, 1:]
    inv = np.linalg.inv(r_xx)
    cia, half_width = r_y @ inv @ r_z, np.sqrt((1 - r_y @ inv @ r_y) * (1 - r_z @ inv @ r_z))
    row = result.bounds.set_index(["y", "z"]).loc[("re78", "re74")]
    assert (row["lower"], row["cia"], row["upper"]) == pytest.approx((cia - half_width, cia, cia + half_width),
                                                                     abs=1e-12)
    assert row["fused"] == pytest.approx(_wcorr(fused[["re78", "re74"]].to_numpy(float), wa)[0, 1], abs=1e-12)
    for r in result.shared_comparison.itertuples():
        xa, xb = a[r.variable].to_numpy(float), b[r.variable].to_numpy(float)
        ma, mb = np.average(xa, weights=wa), np.average(xb, weights=wb)
        va, vb = np.average((xa - ma) ** 2, weights=wa), np.average((xb - mb) ** 2, weights=wb)
        assert r.smd == pytest.approx((mb - ma) / np.sqrt((va + vb) / 2), abs=1e-12)
        assert r.ks == pytest.approx(_wks(xa, wa, xb, wb), abs=1e-12)


def test_fused_correlation_in_bounds_pools_every_imputation():
    """bounds["fused"] was the first imputation's correlation alone (one draw's noise); it is now the mean over
    the imputations, the estimate pool() gives, with the base weights."""
    a, b = _labelled_frames(n=300, seed=3)
    result = fuse([Source(a, "a", weight_col="w"), Source(b, "b")], base="a", n_imputations=4,
                  synthesizer_params=FAST, seed=0)
    row = result.bounds.set_index(["y", "z"]).loc[("z", "y")]
    per = [_wcorr(p[["z", "y"]].to_numpy(float), a["w"].to_numpy())[0, 1] for p in result.imputations()]
    assert np.ptp(per) > 1e-3  # the draws differ, so the first alone is not the mean
    assert row["fused"] == pytest.approx(np.mean(per), abs=1e-12)
    assert row["fused"] == pytest.approx(result.pool(
        lambda d: _wcorr(d[["z", "y"]].to_numpy(float), d["w"].to_numpy())[0, 1])["estimate"], abs=1e-12)


def test_imputations_of_a_changed_data_frame_raise():
    """s52: when data no longer holds one base-sized copy per imputation (filtered after fuse), imputations()
    returned the copies numbered by their stacked positions, which a join to the base pairs with other records;
    it raises now, naming the sizes."""
    from microplex import DataValidationError

    a, b = _labelled_frames(n=60)
    result = fuse([Source(a, "a", weight_col="w"), Source(b, "b")], base="a", n_imputations=2,
                  synthesizer_params=FAST, seed=0)
    result.data = result.data[result.data["x"] > 0]
    with pytest.raises(DataValidationError, match=r"rows per imputation, the base source 60"):
        result.imputations()
