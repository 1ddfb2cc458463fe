"""Session 74: a declared DP point mass outside its column's public bounds (clipped to the bound without a word),
and the report's subgroup labels of a nullable integer (``Int64``) condition with missing values (``i=0.0``)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from microplex import DataValidationError, Synthesizer
from microplex.cli import app
from microplex.synthesis.schema import VariableSpec

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _dp_records(n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"a": rng.integers(0, 3, n).astype(str),
                         "y": np.r_[np.zeros(100), rng.uniform(1, 50, n - 100)]})


def _dp_synth(masses: tuple[float, ...], bounds: tuple[float, float] = (0.0, 50.0)) -> Synthesizer:
    return Synthesizer(target_vars=["y"], condition_vars=["a"], epsilon=1.0, delta=1e-5,
                       public_bounds={"y": bounds}, public_categories={"a": ["0", "1", "2"]},
                       schema={"y": VariableSpec(point_masses=masses)}, epochs=1)


@pytest.mark.parametrize("masses, bounds, shown", [
    ((0.0, 60.0), (0.0, 50.0), "60.0"),  # above: was released as a point mass at 50
    ((-1.0, 0.0), (0.0, 50.0), "-1.0"),  # below: was released at 0, merged with the declared 0
    ((0.0, 25564.671), (0.0, 25564.67), "25564.671"),  # a hair above a top code, named to its last digit
])
def test_a_declared_dp_point_mass_outside_the_public_bounds_is_refused(masses, bounds, shown):
    """A declared point mass outside the public bounds was clipped to the bound: point_masses=(0, 60) with bounds
    (0, 50) released point masses [0.0, 50.0], a heap at 50 that neither the data nor the metadata declared. Two
    public facts contradict each other: fit refuses, naming the column, the value and the bounds."""
    synth = _dp_synth(masses, bounds)
    with pytest.raises(DataValidationError, match=(rf"schema\['y'\].*point mass {shown} .*outside .*public bounds "
                                                   rf"\[{bounds[0]!r}, {bounds[1]!r}\].*column 'y'")):
        synth.fit(_dp_records(), seed=0)
    assert not hasattr(synth, "encoders_")  # refused before any work


def test_declared_dp_point_masses_at_the_bounds_are_kept():
    synth = _dp_synth((0.0, 50.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        synth.fit(_dp_records(), seed=0)
    assert synth.encoders_["y"].point_masses == [0.0, 50.0]


def test_the_cli_refuses_a_public_point_mass_outside_the_public_bounds(tmp_path):
    """The CLI's public metadata file: `point_masses: {y: [0, 60]}` beside `bounds: {y: [0, 50]}` fitted a model
    with a point mass at 50; now the fit fails with the column, the value, the bounds and the file."""
    _dp_records().to_csv(tmp_path / "train.csv", index=False)
    public = {"bounds": {"y": [0, 50]}, "categories": {"a": ["0", "1", "2"]}, "point_masses": {"y": [0, 60]}}
    (tmp_path / "public.yaml").write_text(json.dumps(public))
    r = CliRunner().invoke(app, ["fit", str(tmp_path / "train.csv"), "--targets", "y", "--conditions", "a",
                                 "--epsilon", "1", "--delta", "1e-5", "--public", str(tmp_path / "public.yaml"),
                                 "--epochs", "1", "-o", str(tmp_path / "m.mpx")])
    assert r.exit_code != 0
    assert "point mass 60.0" in r.output and "[0.0, 50.0]" in r.output and "'y'" in r.output
    assert not (tmp_path / "m.mpx").exists()


def _int_frames(missing: bool) -> list[pd.DataFrame]:
    """Two frames of a condition ``i`` (0, 1, 2; a fifth missing, or 3 in their place) and a target ``inc``."""
    rng = np.random.default_rng(0)
    frames = []
    for _ in range(2):
        i = rng.integers(0, 3, 400)
        gone = rng.random(400) < 0.2
        column = pd.array(np.where(gone, 0, i), dtype="Int64")
        column[gone] = pd.NA if missing else 3
        frames.append(pd.DataFrame({"i": column if missing else column.astype("int64"),
                                    "inc": rng.normal(100, 10, 400) + 5 * i}))
    return frames


def test_an_int64_condition_with_missing_values_is_labelled_with_integers():
    """A nullable integer condition with missing values was read as float64 (to hold NaN) and its subgroups
    labelled 'i=0.0', 'i=1.0', 'i=2.0'; now 'i=0', 'i=1', 'i=2' (and 'i=<missing>'), with the same distances as
    an int64 column holding 3 where the values are missing (the subgroups hold the same records)."""
    from microplex.evaluation import evaluate, fidelity_scores

    nullable, plain = _int_frames(True), _int_frames(False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rep = evaluate(nullable[0], nullable[1], conditions=["i"], pmse=False, progress=False,
                       holdout_df=nullable[1].iloc[::-1].reset_index(drop=True))
        ref = evaluate(plain[0], plain[1], conditions=["i"], pmse=False, progress=False)
        direct, _ = fidelity_scores(nullable[0], nullable[1], conditions=["i"], pmse=False)
    for scores in (rep.scores, direct):
        sub = scores[scores["metric"] == "subgroup_ks"]
        assert sub["subgroup"].tolist() == ["i=<missing>", "i=0", "i=1", "i=2"]
    sub = rep.scores[rep.scores["metric"] == "subgroup_ks"].set_index("subgroup")["value"]
    want = ref.scores[ref.scores["metric"] == "subgroup_ks"].set_index("subgroup")["value"]
    assert want.index.tolist() == ["i=0", "i=1", "i=2", "i=3"]
    assert sub[["i=0", "i=1", "i=2"]].tolist() == want[["i=0", "i=1", "i=2"]].tolist()
    assert sub["i=<missing>"] == want["i=3"]
    # the real-vs-holdout floor labels its subgroups alike
    assert rep.floor[rep.floor["metric"] == "subgroup_ks"]["subgroup"].tolist() == [
        "i=<missing>", "i=0", "i=1", "i=2"]


def test_a_float_condition_and_a_float_synthetic_side_keep_float_labels():
    """Only a column held as integers on both sides is labelled with integers: a float64 condition (or an
    integer one whose synthetic side is float64) still reads 'i=0.0', as before."""
    from microplex.evaluation import fidelity_scores

    nullable = _int_frames(True)
    floats = [f.astype({"i": "float64"}) for f in nullable]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        both, _ = fidelity_scores(floats[0], floats[1], conditions=["i"], pmse=False)
        mixed, _ = fidelity_scores(nullable[0], floats[1], conditions=["i"], pmse=False)
    for scores in (both, mixed):
        assert scores[scores["metric"] == "subgroup_ks"]["subgroup"].tolist() == [
            "i=<missing>", "i=0.0", "i=1.0", "i=2.0"]
