"""Session 55: `microplex calibrate` and `microplex sparsify` take `--household`: household weights (constant within a
household) calibrated to person and household targets, whole households kept. Before, the command line had no
household option: a person file calibrated as independent persons (with person targets each person got a weight of
its own, a household's persons different ones, which no household weight can be), and household targets were
refused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from microplex.cli import app

runner = CliRunner()


@pytest.fixture()
def files(tmp_path):
    rng = np.random.default_rng(0)
    sizes = rng.integers(1, 5, 400)
    hid = np.repeat(np.arange(400), sizes)
    persons = pd.DataFrame({"hid": hid, "adult": (rng.random(hid.size) < 0.7).astype(int),
                            "region": np.repeat(rng.integers(0, 3, 400), sizes),
                            "weight": np.repeat(rng.uniform(50, 150, 400), sizes)})
    persons.to_parquet(tmp_path / "persons.parquet")
    w = persons["weight"].to_numpy()
    targets = pd.DataFrame({
        "aggregate": ["count", "count", "count", "count"],
        "entity": ["person", "person", "household", "household"],
        "adult": [1, 0, None, None], "region": [None, None, 0, 1],
        "value": [w[persons.adult == 1].sum() * 1.1, w[persons.adult == 0].sum() * 0.9,
                  persons.groupby("hid").first().query("region == 0").weight.sum() * 1.05,
                  persons.groupby("hid").first().query("region == 1").weight.sum() * 0.95]})
    targets.to_csv(tmp_path / "targets.csv", index=False)
    return tmp_path, persons, targets


def _by_hand(persons: pd.DataFrame, weights: np.ndarray, targets: pd.DataFrame) -> list[float]:
    p = persons.assign(w=weights)
    hh = p.groupby("hid").first()
    return [p.loc[p.adult == 1, "w"].sum(), p.loc[p.adult == 0, "w"].sum(),
            hh.loc[hh.region == 0, "w"].sum(), hh.loc[hh.region == 1, "w"].sum()]


def test_calibrate_with_households_from_the_command_line(files):
    folder, persons, targets = files
    r = runner.invoke(app, ["calibrate", str(folder / "persons.parquet"), "--targets", str(folder / "targets.csv"),
                            "--household", "hid", "-o", str(folder / "out.parquet")])
    assert r.exit_code == 0, r.output
    out = pd.read_parquet(folder / "out.parquet")
    assert (out.groupby("hid")["weight"].nunique() == 1).all()  # one weight per household
    assert _by_hand(persons, out["weight"].to_numpy(), targets) == pytest.approx(targets["value"].tolist(), rel=1e-8)
    # without --household the household targets cannot be read as such: refused, not a per-person answer
    r = runner.invoke(app, ["calibrate", str(folder / "persons.parquet"), "--targets", str(folder / "targets.csv"),
                            "-o", str(folder / "flat.parquet")])
    assert r.exit_code == 1 and "household" in r.output.lower(), r.output
    assert not (folder / "flat.parquet").exists()


def test_sparsify_with_households_keeps_whole_households(files):
    folder, persons, targets = files
    r = runner.invoke(app, ["sparsify", str(folder / "persons.parquet"), "--targets", str(folder / "targets.csv"),
                            "--household", "hid", "--max-records", "120", "-o", str(folder / "subset.parquet")])
    assert r.exit_code == 0, r.output
    kept = pd.read_parquet(folder / "subset.parquet")
    assert "households)" in r.output
    sizes = persons.groupby("hid").size()
    assert (kept.groupby("hid").size() == sizes.loc[kept["hid"].unique()]).all()  # whole households
    assert kept["hid"].nunique() <= 120 and (kept.groupby("hid")["weight"].nunique() == 1).all()
    got = _by_hand(kept, kept["weight"].to_numpy(), targets)
    assert np.max(np.abs(np.array(got) / targets["value"].to_numpy() - 1)) <= 0.005 + 1e-9


@pytest.mark.parametrize("verb", ["calibrate", "sparsify"])
def test_a_household_column_the_file_lacks_is_one_error_line(files, verb):
    folder, _, _ = files
    r = runner.invoke(app, [verb, str(folder / "persons.parquet"), "--targets", str(folder / "targets.csv"),
                            "--household", "hh_id", "-o", str(folder / "x.parquet")])
    assert r.exit_code == 1 and "'--household' column 'hh_id' is not in" in r.output, r.output
    assert not (folder / "x.parquet").exists()
