"""Household calibration where a person-margin column is in both linked datasets; hive datasets written by
pandas (no microplex schema file) partitioned by zero-padded codes, booleans or integers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from microplex import DataValidationError
from microplex.calibration import Calibrator
from microplex.scale import rake_dataset, write_calibrated


def _linked_files(root, n_files=2, seed=0):
    """Households with the reference person's ``sex`` and a ``region``; persons with their own ``sex``."""
    rng = np.random.default_rng(seed)
    H = 1200
    hh = pd.DataFrame({"hid": np.arange(1, H + 1), "region": rng.integers(0, 3, H), "w": rng.uniform(1.0, 3.0, H)})
    size = rng.integers(1, 5, H)
    pp = pd.DataFrame({"hid": np.repeat(hh["hid"], size).to_numpy(), "sex": rng.integers(1, 3, size.sum())})
    hh["sex"] = pp.groupby("hid")["sex"].first().to_numpy()  # the reference person's sex
    (root / "h").mkdir()
    (root / "p").mkdir()
    for k, ids in enumerate(np.array_split(hh["hid"].to_numpy(), n_files)):
        hh[hh["hid"].isin(ids)].to_parquet(root / "h" / f"part-{k}.parquet", index=False)
        pp[pp["hid"].isin(ids)].to_parquet(root / "p" / f"part-{k}.parquet", index=False)
    return hh, pp


def test_a_person_margin_counts_the_persons_own_column_when_the_households_have_one_too(tmp_path):
    """The solve counted each household's persons by the household's ``sex`` (its reference person's), the written
    weights by each person's own: the copy missed the targets the report said were met (by 6%)."""
    hh, pp = _linked_files(tmp_path)
    joined = pp.merge(hh[["hid", "region", "w"]], on="hid")  # persons keep their own sex
    truth = joined["w"] * np.random.default_rng(1).uniform(0.7, 1.4, len(hh))[joined["hid"] - 1]
    # sex: each person's own (both files have it); region: only the households have it, taken from each one's
    margins = {c: truth.groupby(joined[c]).sum().to_dict() for c in ("sex", "region")}
    ref = Calibrator().fit(joined, margins, weight_col="w", household_col="hid").result_.weights
    ref = ref.reindex(hh["hid"]).to_numpy()
    res = rake_dataset(tmp_path / "h", margins, "w", persons=tmp_path / "p", household_id="hid")
    assert res.converged
    np.testing.assert_allclose(res.weights(hh, pp), ref, rtol=1e-8)
    write_calibrated(res, tmp_path / "h", tmp_path / "hw", persons=tmp_path / "p", persons_out=tmp_path / "pw")
    copy_h, copy_p = pd.read_parquet(tmp_path / "hw"), pd.read_parquet(tmp_path / "pw")
    np.testing.assert_allclose(copy_h.set_index("hid")["weight"].reindex(hh["hid"]).to_numpy(), ref, rtol=1e-8)
    got = copy_p.groupby("sex")["weight"].sum()
    for s, total in margins["sex"].items():
        assert got[s] == pytest.approx(total, rel=1e-8)
    got = copy_p.merge(hh[["hid", "region"]], on="hid").groupby("region")["weight"].sum()
    for r, total in margins["region"].items():
        assert got[r] == pytest.approx(total, rel=1e-8)


def _hive(tmp_path, column, values, n=3000, seed=0, name="ds"):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({column: rng.choice(np.array(values, dtype=object), n), "w": 1.0})
    if isinstance(values[0], bool | np.bool_):
        df[column] = df[column].astype(bool)
    elif isinstance(values[0], int | np.integer):
        df[column] = df[column].astype(np.int64)
    path = tmp_path / name
    df.to_parquet(path, partition_cols=[column], index=False)  # a plain hive dataset: no microplex schema file
    return df, path


def _met(tmp_path, path, column, margin, written_keys):
    """rake_dataset meets ``margin`` with every weight 1.5; the written copy sums to it by ``written_keys``."""
    res = rake_dataset(path, {column: margin})
    assert res.converged
    np.testing.assert_allclose(res.report["achieved"], res.report["target"], rtol=1e-9)
    out = tmp_path / f"copy-{len(list(tmp_path.iterdir()))}"
    assert write_calibrated(res, path, out) == 3000
    copy = pd.read_parquet(out)
    np.testing.assert_allclose(copy["weight"], 1.5, rtol=1e-9)
    got = copy.groupby(column, observed=True)["weight"].sum()
    for key, total in zip(written_keys, margin.values(), strict=True):
        assert got[key] == pytest.approx(total, rel=1e-9)
    return res


def test_zero_padded_hive_codes_are_read_as_the_text_of_the_folder_names(tmp_path):
    """Dask guessed state=01, 02, 10 to be numbers and read all of them as missing: every margin key was refused
    with "its filter selects no record". The keys are the text '01' (as written), and the numbers pandas shows
    (1, 2, 10) find them too."""
    from microplex.scale._layout import dask_read_options, hive_partitioning

    df, path = _hive(tmp_path, "state", ["01", "02", "10"])
    counts = df["state"].value_counts()
    as_text = {k: 1.5 * counts[k] for k in ("01", "02", "10")}
    _met(tmp_path, path, "state", as_text, [1, 2, 10])  # pandas reads the copy's folders as the numbers 1, 2, 10
    _met(tmp_path, path, "state", {int(k): v for k, v in as_text.items()}, [1, 2, 10])
    import dask.dataframe as dd
    import pyarrow.dataset as pads

    by_dask = dd.read_parquet(str(path), **dask_read_options(path)).compute()["state"]
    assert by_dask.value_counts().to_dict() == counts.to_dict()
    read = pads.dataset(path, format="parquet", partitioning=hive_partitioning(path)).to_table().to_pandas()
    assert read["state"].value_counts().to_dict() == counts.to_dict()


def test_boolean_hive_folders_are_read_as_their_text_and_a_boolean_key_is_refused_by_name(tmp_path):
    """flag=true / flag=false folders are text, as pandas reads them; margins {True: ..} "selected no record"."""
    df, path = _hive(tmp_path, "flag", [True, False])
    counts = df["flag"].value_counts()
    margin = {"true": 1.5 * counts[True], "false": 1.5 * counts[False]}
    _met(tmp_path, path, "flag", margin, ["true", "false"])
    with pytest.raises(DataValidationError, match=r"'flag'.*text of its folder names.*'false', 'true'"):
        rake_dataset(path, {"flag": {True: 1.5 * counts[True], False: 1.5 * counts[False]}})


def test_integer_hive_codes_keep_working(tmp_path):
    df, path = _hive(tmp_path, "g", [1, 2, 10])
    counts = df["g"].value_counts()
    margin = {k: 1.5 * counts[k] for k in (1, 2, 10)}
    res = _met(tmp_path, path, "g", margin, [1, 2, 10])
    assert res.report["category"].tolist() == [1, 2, 10]
    _met(tmp_path, path, "g", {str(k): v for k, v in margin.items()}, [1, 2, 10])
    # unequal targets: the same weights as in memory, on the collapsed and the partitioned paths
    margin = {1: 2.0 * counts[1], 2: 1.0 * counts[2], 10: 3.0 * counts[10]}
    ref = Calibrator().fit(df, {"g": margin}, weight_col="w").result_.weights.to_numpy()
    for max_cells in (2_000_000, 0):
        res = rake_dataset(path, {"g": margin}, "w", max_cells=max_cells)
        frame = df.assign(g=df["g"].astype(str))  # as read: the text of the folder names
        np.testing.assert_allclose(res.weights(frame), ref, rtol=1e-9)


def test_linked_datasets_partitioned_by_zero_padded_codes(tmp_path):
    """Households and persons written by pandas under state=01/02/10 (same file names): both read as text."""
    rng = np.random.default_rng(1)
    H = 900
    hh = pd.DataFrame({"hid": np.arange(H), "state": rng.choice(np.array(["01", "02", "10"], dtype=object), H)})
    size = rng.integers(1, 4, H)
    pp = pd.DataFrame({"hid": np.repeat(hh["hid"], size).to_numpy(), "sex": rng.integers(1, 3, size.sum())})
    pp = pp.merge(hh, on="hid")
    for frame, name in ((hh, "h"), (pp, "p")):
        frame.to_parquet(tmp_path / name, partition_cols=["state"], index=False, basename_template="part-{i}.parquet")
    margins = {("state", "sex"): (pp.groupby(["state", "sex"]).size() * 1.3).to_dict()}
    ref = Calibrator().fit(pp.assign(d=1.0), margins, weight_col="d", household_col="hid").result_.weights
    res = rake_dataset(tmp_path / "h", margins, persons=tmp_path / "p", household_id="hid")
    np.testing.assert_allclose(res.weights(hh, pp.drop(columns="state")), ref.reindex(hh["hid"]).to_numpy(), rtol=1e-8)
    write_calibrated(res, tmp_path / "h", tmp_path / "hw", persons=tmp_path / "p", persons_out=tmp_path / "pw")
    copy = pd.read_parquet(tmp_path / "pw")
    got = copy.assign(state=copy["state"].astype(int)).groupby(["state", "sex"], observed=True)["weight"].sum()
    for (state, sex), total in margins[("state", "sex")].items():
        assert got[(int(state), sex)] == pytest.approx(total, rel=1e-8)
