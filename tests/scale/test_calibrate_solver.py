"""One solver behind Calibrator and rake_dataset: the in-memory, collapsed and partitioned operators agree,
every distance works out of core, the guards apply, and the Gram matrix stays sparse."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from microplex import ConvergenceError, DataValidationError
from microplex.calibration import Calibrator, Targets, make_distance, register_distance
from microplex.calibration.distances import DISTANCES, raking
from microplex.calibration.operator import MatrixOperator, PartitionedOperator
from microplex.calibration.solver import newton_dual, solve_dual
from microplex.scale.calibrate import rake_dataset, rake_frame, write_calibrated


def _population(n=6000, seed=0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "state": rng.integers(0, 4, n),
            "county": rng.integers(0, 6, n),  # 4 x 6 = 24 nested areas
            "age": rng.integers(0, 5, n),
            "sex": rng.integers(0, 2, n),
            "w0": rng.uniform(1.0, 3.0, n),
        }
    )
    df["area"] = df["state"] * 10 + df["county"]
    truth = df["w0"] * rng.uniform(0.8, 1.25, n)
    margins = {
        ("area", "age", "sex"): df.assign(t=truth).groupby(["area", "age", "sex"])["t"].sum().to_dict(),
        ("state", "sex"): df.assign(t=truth).groupby(["state", "sex"])["t"].sum().to_dict(),
    }
    return df, margins


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    df, margins = _population()
    path = tmp_path_factory.mktemp("solver") / "pop.parquet"
    df.to_parquet(path, row_group_size=1000)
    return path, df, margins


@pytest.mark.parametrize("method, bounds", [("raking", None), ("linear", None), ("linear", (0.7, 1.6)), ("logit", (0.5, 2.0)), ("raking", (0.75, 1.4))])
def test_calibrator_and_rake_dataset_give_the_same_weights(dataset, method, bounds):
    path, df, margins = dataset
    cal = Calibrator(method=method, bounds=bounds).fit(df, margins, weight_col="w0")
    ref = cal.result_.record_weights.to_numpy()
    for max_cells in (2_000_000, 0):  # collapsed cells, then one pass over the partitions per evaluation
        res = rake_dataset(path, margins, "w0", method=method, bounds=bounds, max_cells=max_cells)
        assert res.converged and res.summary["method"] == method
        np.testing.assert_allclose(res.weights(df), ref, rtol=1e-10)
        assert res.n_passes == (1 if max_cells else 1 + res.solver.n_passes)
    local = rake_frame(df, margins, "w0", method=method, bounds=bounds)
    np.testing.assert_allclose(local.weights(df), ref, rtol=1e-10)


def test_passes_are_counted(dataset):
    path, df, margins = dataset
    cells = rake_dataset(path, margins, "w0")
    assert cells.n_passes == 1 and cells.n_cells > 0  # one group-by pass, then the cell table in memory
    ooc = rake_dataset(path, margins, "w0", max_cells=0)
    assert ooc.n_cells == 0
    assert ooc.n_passes == ooc.solver.n_passes + 1 >= ooc.n_iter + 1  # lambda = 0, then one per evaluation
    assert ooc.summary["n_passes"] == ooc.n_passes and ooc.summary["n_units"] == len(df)


def test_targets_are_accepted_as_margins(dataset):
    path, df, margins = dataset
    res = rake_dataset(path, Targets.from_margins(margins), "w0", max_cells=0)
    np.testing.assert_allclose(res.weights(df), rake_frame(df, margins, "w0").weights(df), rtol=1e-10)
    with pytest.raises(DataValidationError, match="person count targets on equality filters"):
        rake_dataset(path, Targets.from_margins({"state": {0: 1.0}}, aggregate="sum", variable="w0"), "w0")


def test_a_registered_distance_works_out_of_core(dataset):
    path, df, margins = dataset
    half = make_distance(
        lambda u, b: np.clip(1 + u, b[0], b[1]),
        lambda u, b: ((u < b[1] - 1) & (u > b[0] - 1)).astype(float),
        "linear-no-potential",
    )
    register_distance(half)
    try:
        res = rake_dataset(path, margins, "w0", method="linear-no-potential", max_cells=0)
        ref = Calibrator(method="linear").fit(df, margins, weight_col="w0").result_.record_weights.to_numpy()
        np.testing.assert_allclose(res.weights(df), ref, rtol=1e-9)
    finally:
        DISTANCES.pop("linear-no-potential")


def test_guards_apply_out_of_core(dataset):
    path, df, margins = dataset
    bad = {**margins, "sex": {0: 1.0, 7: 5.0}}
    for max_cells in (2_000_000, 0):
        with pytest.raises(DataValidationError, match=r"count\[sex == 7\] = 5 but its filter selects no record"):
            rake_dataset(path, bad, "w0", max_cells=max_cells)
    far = {k: {c: v * (3.0 if i == 0 else 1.0) for i, (c, v) in enumerate(cats.items())} for k, cats in margins.items()}
    with pytest.raises(ConvergenceError, match="cannot be met within the bounds"):
        rake_dataset(path, far, "w0", method="raking", bounds=(0.9, 1.1), max_cells=0)
    clash = dict(margins)
    clash[("state", "sex")] = {k: 2 * v for k, v in margins[("state", "sex")].items()}  # grand totals disagree
    with warnings.catch_warnings():  # the error alone, no warning before it (which -W error would raise instead)
        warnings.simplefilter("error")
        with pytest.raises(ConvergenceError, match="did not converge"):
            rake_dataset(path, clash, "w0", max_cells=0, max_iter=8)
    with pytest.warns(Warning):
        res = rake_dataset(path, clash, "w0", max_cells=0, max_iter=8, force=True)
    assert not res.converged


def test_in_memory_collapsed_and_partitioned_operators_agree():
    df, margins = _population(3000, seed=1)
    tg = Targets.from_margins(margins)
    from microplex.calibration.design import build_design, collapse_rows

    design = build_design(df, tg, "w0")
    full = newton_dual(design.x, design.d, design.totals, raking, (0.0, np.inf))
    reps, groups = collapse_rows(design.x)
    coll = newton_dual(design.x[reps], np.bincount(groups, weights=design.d), design.totals, raking, (0.0, np.inf))
    chunks = np.array_split(np.arange(len(df)), 7)
    op = PartitionedOperator.local(design.x.shape[1], [lambda c=c: (design.x[c], design.d[c]) for c in chunks])
    part = solve_dual(op, design.totals, raking, (0.0, np.inf))
    assert full.converged and coll.converged and part.converged and part.g is None
    assert op.passes == part.n_passes
    # the multipliers are not unique (nested margins are redundant); the weights are
    np.testing.assert_allclose(coll.g[groups], full.g, rtol=1e-10)
    np.testing.assert_allclose(raking.inverse(design.x @ part.lam, (0.0, np.inf)), full.g, rtol=1e-10)


def test_the_gram_matrix_stays_sparse():
    """A record touches K targets, so X' diag(s) X has at most (number of distinct target pairs) entries,
    bounded by sum over records of K^2, and far fewer than m^2 for nested geography."""
    df, margins = _population(20000, seed=2)
    from microplex.calibration.design import build_design
    from microplex.calibration.operator import part_point

    design = build_design(df, Targets.from_margins(margins), "w0")
    m = design.x.shape[1]
    k = np.diff(design.x.indptr).max()
    gram = part_point((design.x, design.d), np.zeros(m), raking, (0.0, np.inf), False)[3]
    assert sp.issparse(gram)
    # area x age x sex cells (240) each pair with one state x sex cell: m + 2 * 240 entries at most
    assert gram.nnz <= m + 2 * 240 and gram.nnz <= k * k * m
    assert gram.nnz < 0.05 * m * m
    dense = (design.x.T @ sp.diags(design.d) @ design.x).toarray()
    np.testing.assert_allclose(gram.toarray(), dense, rtol=1e-12)
    big = MatrixOperator(design.x, design.d)
    import microplex.calibration.operator as operator

    old, operator.DENSE_MAX = operator.DENSE_MAX, 10
    try:
        g2 = MatrixOperator(design.x, design.d).gram(design.d)
    finally:
        operator.DENSE_MAX = old
    assert sp.issparse(g2) and g2.nnz == gram.nnz
    assert big.m == m


def test_many_categories_out_of_core(tmp_path):
    """The former 10,000-category limit (a dense m x m Newton matrix) is gone."""
    rng = np.random.default_rng(3)
    n = 40000
    df = pd.DataFrame({"tract": rng.integers(0, 12000, n), "sex": rng.integers(0, 2, n)})
    df = df[df.groupby("tract")["sex"].transform("nunique") == 2]
    margins = {("tract", "sex"): (df.groupby(["tract", "sex"]).size() * 1.5).to_dict(), "sex": {0: 0.0, 1: 0.0}}
    margins["sex"] = {s: 1.5 * float((df["sex"] == s).sum()) for s in (0, 1)}
    path = tmp_path / "t.parquet"
    df.to_parquet(path, row_group_size=10000)
    res = rake_dataset(path, margins, max_cells=0)
    assert res.converged and len(res.lam) > 10_000
    np.testing.assert_allclose(res.weights(df), 1.5, rtol=1e-9)


def test_dask_local_cluster_matches_local(dataset):
    distributed = pytest.importorskip("distributed")
    path, df, margins = dataset
    with distributed.LocalCluster(n_workers=2, processes=False, threads_per_worker=1, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        res = rake_dataset(path, margins, "w0", method="logit", bounds=(0.5, 2.0), max_cells=0, client=client)
    local = rake_dataset(path, margins, "w0", method="logit", bounds=(0.5, 2.0), max_cells=0)
    np.testing.assert_allclose(res.weights(df), local.weights(df), rtol=1e-12)
    assert res.n_passes == local.n_passes


def test_partition_tasks_do_not_carry_the_margins(tmp_path, graph_client):
    """Each partition's task ships the margin codes and lambda by reference: at 692,200 targets the margins
    pickle to ~120 MB, which every file's task of every pass once carried (and every worker unpickled)."""
    import pickle

    from microplex.scale._margins import _Margins

    df, margins = _population(6000, seed=5)
    (tmp_path / "pop").mkdir()
    for k in range(6):
        df.iloc[k * 1000 : (k + 1) * 1000].to_parquet(tmp_path / "pop" / f"part-{k}.parquet")
    client = graph_client
    res = rake_dataset(tmp_path / "pop", margins, "w0", max_cells=0, client=client)
    local = rake_dataset(tmp_path / "pop", margins, "w0", max_cells=0)
    np.testing.assert_array_equal(res.lam, local.lam)  # the same sums in the same order: bit for bit
    np.testing.assert_array_equal(res.weights(df), local.weights(df))
    assert len(client.task_bytes) == res.n_passes
    margins_bytes = len(pickle.dumps(_Margins(margins)))
    lam_bytes = res.lam.nbytes
    for sizes in client.task_bytes:
        assert len(sizes) > 6  # a task per partition at least
        assert sum(sizes) < margins_bytes + 3 * lam_bytes  # at most one copy of the codes and of lambda
        assert sum(s > margins_bytes / 2 for s in sizes) <= 1


def test_write_calibrated_keeps_the_hive_layout(tmp_path):
    df, margins = _population(3000, seed=4)
    df["rid"] = np.arange(len(df))
    src = tmp_path / "src"
    df.to_parquet(src, partition_cols=["state"], index=False)
    res = rake_dataset(src, margins, "w0", method="linear", max_cells=0)
    n = write_calibrated(res, src, tmp_path / "out", column="w0")
    back = pd.read_parquet(tmp_path / "out")
    assert n == len(df) == len(back)
    assert sorted(p.parent.name for p in (tmp_path / "out").rglob("*.parquet")) == sorted(
        p.parent.name for p in src.rglob("*.parquet")
    )
    back["state"] = back["state"].astype(int)
    back = back.sort_values("rid")
    ref = Calibrator(method="linear").fit(df, margins, weight_col="w0").result_.record_weights.to_numpy()
    np.testing.assert_allclose(back["w0"].to_numpy(), ref, rtol=1e-10)
    totals = back.groupby(["state", "sex"])["w0"].sum()
    for (st, sx), v in margins[("state", "sex")].items():
        assert abs(totals[(st, sx)] - v) <= 1e-8 * v
    with pytest.raises(DataValidationError, match="not empty"):
        write_calibrated(res, src, tmp_path / "out")


@pytest.mark.parametrize("method, bounds", [("raking", None), ("linear", (0.7, 1.6)), ("logit", (0.5, 2.0))])
def test_a_constant_initial_weight_is_the_unit_solve_scaled(dataset, method, bounds):
    """initial_weight=c: the weights of unit initial weights against targets / c, times c (bounds on w / d
    unchanged), and the same weights as a column holding c."""
    path, df, _ = dataset
    c = 37.5
    truth = c * np.random.default_rng(3).uniform(0.85, 1.2, len(df))
    margins = {key: df.assign(t=truth).groupby(list(key))["t"].sum().to_dict() for key in [("area", "age", "sex"), ("state", "sex")]}
    scaled = {k: {cat: v / c for cat, v in cats.items()} for k, cats in margins.items()}
    for max_cells in (2_000_000, 0):
        res = rake_dataset(path, margins, method=method, bounds=bounds, max_cells=max_cells, initial_weight=c)
        unit = rake_dataset(path, scaled, method=method, bounds=bounds, max_cells=max_cells)
        np.testing.assert_allclose(res.weights(df), c * unit.weights(df), rtol=1e-9)
        np.testing.assert_allclose(res.report["achieved"], c * unit.report["achieved"], rtol=1e-9)
        np.testing.assert_allclose(res.report["initial"], c * unit.report["initial"], rtol=1e-12)
    framed = rake_frame(df.assign(c=c), margins, "c", method=method, bounds=bounds)
    np.testing.assert_allclose(res.weights(df), framed.weights(df.assign(c=c)), rtol=1e-9)
    assert np.abs(res.report["achieved"] - res.report["target"]).max() / res.report["target"].max() < 1e-9
    if bounds is not None:
        ratio = res.weights(df) / c
        assert ratio.min() >= bounds[0] - 1e-9 and ratio.max() <= bounds[1] + 1e-9


@pytest.mark.parametrize("max_cells", [0, 100_000])
def test_a_margin_on_the_weight_column_is_solved_as_in_memory(tmp_path, max_cells):
    """Before: rake_dataset read the column twice and failed with a raw "Index data must be 1-dimensional"."""
    df = pd.DataFrame({"w": np.tile([1.0, 2.0, 2.0], 40), "g": np.repeat([0, 1], 60)})
    df.to_parquet(tmp_path / "pop.parquet")
    margins = {"w": {1.0: 60.0, 2.0: 120.0}, "g": {0: 80.0, 1: 100.0}}
    res = rake_dataset(tmp_path / "pop.parquet", margins, "w", max_cells=max_cells)
    np.testing.assert_allclose(res.weights(df), rake_frame(df, margins, "w").weights(df), rtol=1e-9)
    w = pd.Series(res.weights(df))
    assert w.groupby(df["w"]).sum().tolist() == pytest.approx([60.0, 120.0], rel=1e-8)


def test_initial_weight_is_checked(dataset):
    path, df, margins = dataset
    with pytest.raises(DataValidationError, match="either 'weight_col'.*or 'initial_weight'"):
        rake_dataset(path, margins, "w0", initial_weight=2.0)
    for bad in (0.0, -1.0, float("nan"), "2", True):
        with pytest.raises(DataValidationError, match="'initial_weight' parameter"):
            rake_dataset(path, margins, initial_weight=bad)
