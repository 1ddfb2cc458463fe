"""Session 75: calibration inputs found wrong by the s75 audit. Household ids ``1`` and ``'1'`` in one column made
two weighting units of one household; ``microplex calibrate --method linear`` wrote negative weights without a
word, which the pipeline's calibrate stage refuses; the weight message printed numpy reprs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from microplex import Calibrator, SparseCalibrator, Target
from microplex._errors import DataValidationError


def _households() -> pd.DataFrame:
    return pd.DataFrame({"hid": [1, 1, 2, 2, 3, 3, 4], "sex": ["f", "m", "f", "m", "f", "f", "m"],
                         "w": [10.0] * 6 + [20.0]})


_HH_TARGETS = [Target(50.0, entity="household"), Target(60.0, filters={"sex": "f"})]


@pytest.mark.parametrize("calibrator", [Calibrator, SparseCalibrator])
def test_household_ids_of_two_types_that_print_alike_are_refused(calibrator):
    """Before: one person of household 1 with the id '1' (a str among ints) made 5 weighting units of 4
    households; Calibrator gave household 1's two persons the weights 8.86 and 3.71 ({1: 8.86, '1': 3.71, 2: 8.86,
    3: 21.14, 4: 7.43}) and counted 5 households, SparseCalibrator also 5 units, without a word."""
    mixed = _households().astype({"hid": object})
    mixed.loc[1, "hid"] = "1"
    with pytest.raises(DataValidationError, match=r"Household ids 1, '1' of column 'hid' are different values of "
                                                  r"types \['int', 'str'\] that print alike: their records would "
                                                  r"be different households"):
        calibrator().fit(mixed, _HH_TARGETS, "w", household_col="hid")
    # 1 and 1.0 are one value: one household, the same weights as with int ids
    same = mixed.assign(hid=mixed["hid"].where(mixed["hid"] != "1", 1.0))
    ints = calibrator().fit(_households(), _HH_TARGETS, "w", household_col="hid")
    got = calibrator().fit(same, _HH_TARGETS, "w", household_col="hid")
    assert len(got.weights) == 4
    np.testing.assert_allclose(got.weights.to_numpy(), ints.weights.to_numpy(), rtol=1e-12)


def _cli_linear_inputs(tmp_path) -> tuple[pd.DataFrame, list[str]]:
    """400 records and margins a: x=390/y=10, b: u=10/v=390, which the linear (GREG) solve meets with 108 negative
    weights (the numpy closed form w = d (1 + X lam) gives the same 108, the lowest -0.888)."""
    rng = np.random.default_rng(0)
    n = 400
    df = pd.DataFrame({"a": rng.choice(["x", "y"], n), "b": rng.choice(["u", "v"], n), "weight": 1.0})
    df.to_csv(tmp_path / "p.csv", index=False)
    pd.DataFrame({"value": [390.0, 10.0, 10.0, 390.0], "a": ["x", "y", None, None],
                  "b": [None, None, "u", "v"]}).to_csv(tmp_path / "t.csv", index=False)
    return df, ["calibrate", str(tmp_path / "p.csv"), "--targets", str(tmp_path / "t.csv"), "--method", "linear",
                "-o", str(tmp_path / "out.parquet"), "--report", str(tmp_path / "r.csv")]


def test_cli_calibrate_refuses_negative_weights_before_writing(tmp_path):
    """Before: ``microplex calibrate --method linear`` without ``--bounds`` exited 0, printed "converged=True" and
    wrote 108 negative weights of 400 (the lowest -0.888), which the pipeline's calibrate stage refuses for the same
    solve and which ``microplex sparsify`` then refused to read ("must hold finite weights > 0")."""
    from typer.testing import CliRunner

    from microplex.cli import app

    df, args = _cli_linear_inputs(tmp_path)
    X = np.column_stack([df.a == "x", df.a == "y", df.b == "u"]).astype(float)
    lam = np.linalg.solve(X.T @ X, np.array([390.0, 10.0, 10.0]) - X.sum(axis=0))
    greg = 1.0 + X @ lam  # the weights the solve reaches (d = 1)
    assert int((greg < 0).sum()) == 108
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 1, r.output
    assert (f"microplex calibrate gave 108 negative weights (lowest {greg.min():.6g}); a population's records must "
            "weigh 0 or more") in r.output
    assert "--bounds with a lower bound above 0 (e.g. --bounds 0.2,5), or --method raking or logit" in r.output
    assert not (tmp_path / "out.parquet").exists() and not (tmp_path / "r.csv").exists()
    # raking, as the message says, writes positive weights that meet the same targets
    r = CliRunner().invoke(app, [a if a != "linear" else "raking" for a in args])
    assert r.exit_code == 0, r.output
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert (out["weight"] > 0).all()
    got = [out.weight[out.a == "x"].sum(), out.weight[out.a == "y"].sum(), out.weight[out.b == "u"].sum(),
           out.weight[out.b == "v"].sum()]
    np.testing.assert_allclose(got, [390.0, 10.0, 10.0, 390.0], rtol=1e-8)


def test_the_weight_message_shows_plain_values():
    """Before: "first: index np.int64(1), value np.float64(-0.5)", numpy reprs in a message for people."""
    df = pd.DataFrame({"sex": ["f", "m", "f"], "w": [1.0, -0.5, 2.0]}, index=pd.Index([10, 11, 12]))
    with pytest.raises(DataValidationError, match=r"^Weight column 'w' must hold finite weights > 0; 1 records do not "
                                                  r"\(first: index 11, value -0\.5\)\.$"):
        Calibrator().fit(df, [Target(3.0)], "w")
