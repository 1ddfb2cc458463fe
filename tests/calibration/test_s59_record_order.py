"""Sparse calibration gives one answer to one set of records, in whatever order they come: the balanced samples drew
random numbers by position and the linear programs broke ties between equal records by position, so the same
records read in another order (a sorted file, a database query, partitions listed otherwise) kept another subset
(on 3,000 eusilc persons, another 11-record support for l0 and for l1 on each of three shuffles, another
subset at max_records=500; below, 600 records no two alike). The records are now
solved in an order set by their values (``microplex._random.content_order``)."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

from microplex.calibration import SparseCalibrator, Targets
from microplex.calibration.design import build_design, reordered
from microplex._random import content_order


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    """600 records, no two alike: state x grp counts and state income sums targeted, age left for the auxiliaries."""
    rng = np.random.default_rng(1)
    n = 600
    return pd.DataFrame({"state": rng.choice(list("ABCD"), n), "grp": rng.choice(["x", "y"], n),
                         "age": rng.integers(18, 90, n), "income": rng.lognormal(10, 1, n),
                         "w": rng.uniform(0.5, 2.0, n)})


def _targets(df: pd.DataFrame) -> Targets:
    counts = df.groupby(["state", "grp"])["w"].sum() * 1.03
    sums = (df["income"] * df["w"]).groupby(df["state"]).sum() * 1.05
    return (Targets.from_margins({("state", "grp"): counts})
            + Targets.from_margins({"state": sums}, aggregate="sum", variable="income"))


def _weights(df: pd.DataFrame, targets: Targets, household_col: str | None = None, **kw) -> pd.Series:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sc = SparseCalibrator(seed=0, **kw).fit(df, targets, weight_col="w", household_col=household_col)
    return sc.result_.record_weights


CASES = {
    "l0": {},
    "l1": {"method": "l1"},
    "l0 budget": {"max_records": 80},
    "l0 no auxiliaries": {"max_records": 80, "auxiliary": None},
    "l0 stratified": {"max_records": 80, "auxiliary": None, "stratify": ["age"]},
    "l0 bounds": {"max_records": 600, "bounds": (0.5, 2.0)},
}


@pytest.mark.parametrize("case", list(CASES))
def test_shuffled_records_keep_the_same_records_and_weights(frame, case):
    """Before: every case but the bounded one kept other records (or, for l1, weighed them otherwise) once the
    records were shuffled; now the weights of each record are the same, bit for bit."""
    tg = _targets(frame)
    base = _weights(frame, tg, **CASES[case])
    assert base.index.equals(frame.index)
    for seed in range(3):
        order = np.random.default_rng(seed).permutation(len(frame))
        shuffled = _weights(frame.iloc[order], tg, **CASES[case])
        assert shuffled.index.equals(frame.index[order])  # the weights come back in the caller's order
        np.testing.assert_array_equal(shuffled.to_numpy(), base.to_numpy()[order])


@pytest.mark.parametrize("case", ["l0", "l0 budget", "l0 no auxiliaries", "l0 auxiliary list", "l0 auxiliary targets"])
def test_targets_and_columns_in_another_order_keep_the_same_weights(frame, case):
    """Before: the targets listed in reverse kept another budgeted subset (the balanced sample runs along the
    targets' cells; 17.8 the largest weight difference), the columns in reverse another automatic crossing (the
    auxiliaries followed the frame's columns), and weights differed in the last digits."""
    tg = _targets(frame)
    kw = {**CASES.get(case, {"max_records": 80})}
    if case == "l0 auxiliary list":
        kw["auxiliary"] = ["age", "grp"]
    if case == "l0 auxiliary targets":
        kw["auxiliary"] = Targets.from_margins({"grp": frame.groupby("grp")["w"].sum()})
    base = _weights(frame, tg, **kw)
    reverse = {**kw}
    if case == "l0 auxiliary list":
        reverse["auxiliary"] = ["grp", "age"]
    if case == "l0 auxiliary targets":
        reverse["auxiliary"] = Targets(list(kw["auxiliary"])[::-1])
    got = _weights(frame[frame.columns[::-1]], Targets(list(tg)[::-1]), **reverse)
    np.testing.assert_array_equal(got.to_numpy(), base.to_numpy())


def test_the_report_lists_the_targets_in_the_callers_order(frame):
    tg = Targets(list(_targets(frame))[::-1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sc = SparseCalibrator(max_records=80).fit(frame, tg, weight_col="w")
    assert list(sc.report()["target"]) == [t.name for t in tg]
    assert list(sc.result_.design.targets) == list(tg)


def test_index_labels_do_not_choose_the_records(frame):
    """Labels are not values: the same records under string, repeated or MultiIndex labels keep the same weights."""
    tg = _targets(frame)
    base = _weights(frame, tg, max_records=80).to_numpy()
    n = len(frame)
    for index in (pd.Index([f"r{i}" for i in range(n)][::-1]), pd.Index(np.repeat(np.arange(n // 2), 2)),
                  pd.MultiIndex.from_arrays([np.arange(n) % 7, np.arange(n)])):
        got = _weights(frame.set_axis(index), tg, max_records=80)
        assert got.index.equals(index)
        np.testing.assert_array_equal(got.to_numpy(), base)


def test_records_alike_are_interchangeable(frame):
    """Records whose values are all equal may trade weights; the weighted records (values and weight) are the same."""
    df = pd.concat([frame, frame.iloc[:150]], ignore_index=True)  # 150 records twice
    tg = _targets(df)

    def weighted(d: pd.DataFrame, w: pd.Series) -> pd.DataFrame:
        out = d.assign(weight=w.to_numpy())
        return out.sort_values(list(out.columns)).reset_index(drop=True)

    base = _weights(df, tg, max_records=80)
    for seed in range(3):
        order = np.random.default_rng(seed).permutation(len(df))
        got = _weights(df.iloc[order], tg, max_records=80)
        pd.testing.assert_frame_equal(weighted(df.iloc[order], got), weighted(df, base))


@pytest.fixture(scope="module")
def households() -> pd.DataFrame:
    """150 households of 1-4 persons; the household's region and weight on every person."""
    rng = np.random.default_rng(2)
    size = rng.integers(1, 5, 150)
    hid = np.repeat(np.arange(150) * 7 + 3, size)
    region = np.repeat(rng.choice(list("PQR"), 150), size)
    w = np.repeat(rng.uniform(1.0, 3.0, 150), size)
    return pd.DataFrame({"hid": hid, "region": region, "sex": rng.choice(["f", "m"], len(hid)),
                         "age": rng.integers(0, 90, len(hid)), "w": w})


def _household_targets(df: pd.DataFrame) -> Targets:
    first = df.groupby("hid").head(1)
    hh = first.groupby("region")["w"].sum() * 1.04
    persons = df.groupby("sex")["w"].sum() * 1.02
    return Targets.from_margins({"region": hh}, entity="household") + Targets.from_margins({"sex": persons})


@pytest.mark.parametrize("case", ["l0", "l1", "l0 budget"])
def test_households_in_another_order_keep_the_same_households(households, case):
    """Households listed in another order (their persons in their order, or interleaved with other households'
    persons) keep the same households and weights; the household ids' values do not choose them."""
    tg = _household_targets(households)
    kw = {"l0": {}, "l1": {"method": "l1"}, "l0 budget": {"max_records": 40}}[case]
    base = _weights(households, tg, "hid", **kw)
    ids = households["hid"].unique()
    for seed in range(2):
        rng = np.random.default_rng(seed)
        blocks = pd.concat([households[households["hid"] == h] for h in rng.permutation(ids)])
        got = _weights(blocks, tg, "hid", **kw)
        np.testing.assert_array_equal(got.reindex(households.index).to_numpy(), base.to_numpy())
        # persons interleaved: random slots, each household's persons in their order along its slots
        hid = households["hid"].to_numpy()
        slots = rng.permutation(len(hid))
        by_slot = np.lexsort((np.arange(len(hid)), hid[slots]))  # positions grouped by the household there
        by_record = np.lexsort((np.arange(len(hid)), hid))  # records grouped by household, in their order
        mixed_order = np.empty(len(hid), dtype=np.int64)
        mixed_order[by_slot] = by_record
        got = _weights(households.iloc[mixed_order], tg, "hid", **kw)
        np.testing.assert_array_equal(got.reindex(households.index).to_numpy(), base.to_numpy())
    relabelled = households.assign(hid=households["hid"].map(dict(zip(ids, np.random.default_rng(9).permutation(ids)))))
    got = _weights(relabelled, tg, "hid", **kw)
    np.testing.assert_array_equal(got.to_numpy(), base.to_numpy())


def test_content_order_reads_values_not_order_labels_or_units():
    df = pd.DataFrame({"a": [3.5, 1.0, 2.0, np.nan, 1.0], "b": ["x", "y", "z", "y", "y"],
                       "c": pd.Categorical(["u", "v", "u", "v", "v"]), "d": [[1], [2], [3], [4], [5]]})
    order = content_order(df)
    assert sorted(order.tolist()) == [0, 1, 2, 3, 4]
    rows = df.index[order].tolist()
    perm = [4, 2, 0, 3, 1]
    for other in (df.iloc[perm], df.iloc[perm].assign(a=lambda f: f["a"] * 1000.0 - 7.0),
                  df.iloc[perm].set_axis(list("pqrst")), df.iloc[perm][["d", "c", "b", "a"]]):
        assert [perm[i] for i in content_order(other)] == rows  # no two rows alike: one order
    # text as object, string or category (categories listed in any order) orders the rows alike
    for b in (df["b"].astype("string"), pd.Categorical(df["b"], categories=["z", "y", "x"]), df["b"].astype("category")):
        np.testing.assert_array_equal(content_order(df.assign(b=b)), order)
    # rows alike in every column keep the order they came in, under any labels
    alike = pd.DataFrame({"a": [1.0, 2.0, 1.0, 1.0], "b": ["x", "y", "x", "x"]}, index=[7, 3, 9, 1])
    got = alike.index[content_order(alike)].tolist()
    assert [i for i in got if i != 3] == [7, 9, 1]
    # a value that changes rank changes the order's input, not its validity
    assert sorted(content_order(df.assign(a=[1.0, 3.5, 2.0, 0.0, 1.0])).tolist()) == [0, 1, 2, 3, 4]


def test_content_order_is_the_same_in_every_process():
    code = ("import pandas as pd; from microplex._random import content_order; "
            "df = pd.DataFrame({'a': ['x', 'y', 'z', 'w'] * 5, 'b': range(20), 'c': [1, 'q'] * 10}); "
            "print(content_order(df).tolist())")
    outs = set()
    for seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        outs.add(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                check=True).stdout)
    assert len(outs) == 1


def test_reordered_is_the_design_of_the_reordered_frame_and_targets(households):
    tg = _household_targets(households)
    design = build_design(households, tg, "w", "hid")
    order = np.random.default_rng(3).permutation(len(households))
    by_target = np.random.default_rng(4).permutation(len(tg))
    got, units = reordered(design, records=order, targets=by_target)
    want = build_design(households.iloc[order], Targets([tg[int(k)] for k in by_target]), "w", "hid")
    assert list(got.targets) == list(want.targets)
    np.testing.assert_array_equal(got.totals, want.totals)
    assert got.units.equals(want.units)
    np.testing.assert_array_equal(got.record_unit, want.record_unit)
    np.testing.assert_array_equal(got.d, want.d)
    assert (got.x != want.x).nnz == 0 and (got.mean_count != want.mean_count).nnz == 0
    np.testing.assert_array_equal(design.units[units], want.units)


def test_microplex_sparsify_keeps_the_same_records_from_a_shuffled_file(frame, tmp_path):
    """What users call: the command line on the file with its rows shuffled, its columns and the targets file's rows
    reversed writes the same kept records with the same weights."""
    from typer.testing import CliRunner

    from microplex.cli import app

    df = frame.rename(columns={"w": "weight"})
    counts = df.groupby(["state", "grp"])["weight"].sum() * 1.03
    tg = Targets.from_margins({("state", "grp"): counts})
    tg.to_frame().to_csv(tmp_path / "t.csv", index=False)
    Targets(list(tg)[::-1]).to_frame().to_csv(tmp_path / "t2.csv", index=False)
    df.to_csv(tmp_path / "a.csv", index=False)
    df.sample(frac=1.0, random_state=3)[df.columns[::-1]].to_csv(tmp_path / "b.csv", index=False)
    kept = []
    for data, targets in (("a.csv", "t.csv"), ("b.csv", "t2.csv")):
        out = tmp_path / f"{data}.parquet"
        result = CliRunner().invoke(app, ["sparsify", str(tmp_path / data), "--targets", str(tmp_path / targets),
                                          "--max-records", "60", "-o", str(out), "-q"])
        assert result.exit_code == 0, result.output
        got = pd.read_parquet(out)
        cols = sorted(got.columns)
        kept.append(got[cols].sort_values(cols).reset_index(drop=True))
    assert len(kept[0]) == 60
    pd.testing.assert_frame_equal(kept[0], kept[1])
