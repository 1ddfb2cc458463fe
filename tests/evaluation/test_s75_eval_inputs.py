"""Session 75 (evaluation inputs): ``evaluate`` compares a float32 column stored as a pandas nullable ``Float32`` or
an Arrow ``float32[pyarrow]`` at float32, as a numpy float32 column (it widened it to float64 first: a float64
release copying every training record read 0.2025 copies, its attribute disclosure 0.075 instead of 0.4225, and a
stale holdout raised no warning)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from microplex._errors import DataValidationError
from microplex.cli import app
from microplex.evaluation import evaluate
from microplex.evaluation.privacy import PrivacyRiskWarning
from microplex.io import read_table

from _cli_output import error_line as _error_line

runner = CliRunner()

N = 400
NARROW = ["Float32", "float32[pyarrow]", "float16[pyarrow]"]


def _copied(dtype: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Training and holdout records with a tenths column ``x`` of ``dtype`` (24.1 stored as 24.100000381469727 in
    float32), and a float64 release holding the training records' decimals (24.1): a copy of every record."""
    rng = np.random.default_rng(0)
    vals = np.round(rng.uniform(10, 90, N), 1)
    g = rng.choice(["a", "b"], N)
    train = pd.DataFrame({"x": pd.array(vals, dtype=dtype), "g": g})
    holdout = pd.DataFrame({"x": pd.array(np.round(rng.uniform(10, 90, N), 1), dtype=dtype),
                            "g": rng.choice(["a", "b"], N)})
    return train, pd.DataFrame({"x": vals, "g": g}), holdout


def _copy_rate_by_hand(train: pd.DataFrame, synth: pd.DataFrame, dtype: np.dtype) -> float:
    """The share of released records equal to a training record once ``x`` is read at the training file's
    precision ``dtype``."""
    seen = set(zip(train["x"].to_numpy(dtype), train["g"]))
    return float(np.mean([(dtype.type(x), g) in seen for x, g in zip(synth["x"], synth["g"])]))


@pytest.mark.parametrize("dtype", NARROW)
def test_evaluate_finds_the_copies_of_a_nullable_or_arrow_float32_file(dtype):
    train, synth, holdout = _copied(dtype)
    narrow = np.dtype("float16" if "16" in dtype else "float32")
    assert _copy_rate_by_hand(train, synth, narrow) == 1.0
    assert (synth["x"].to_numpy() != train["x"].to_numpy(float)).mean() > 0.5  # at float64 most differ
    with pytest.warns(PrivacyRiskWarning, match=r"100\.0% of synthetic records copy a training record exactly"):
        rep = evaluate(train, synth, holdout_df=holdout, pmse=False, progress=False)
    assert rep.privacy["exact_copy_rate_synthetic"] == 1.0
    assert rep.privacy["dcr_synthetic_median"] == 0.0 and rep.privacy["dcr_ratio"] == 0.0
    # the holdout's copies by hand at the same precision
    assert rep.privacy["exact_copy_rate_holdout"] == _copy_rate_by_hand(train, holdout.astype({"x": float}), narrow)
    # every score as for the same files held as numpy float32 (float16)
    with pytest.warns(PrivacyRiskWarning):
        plain = evaluate(train.astype({"x": narrow}), synth, holdout_df=holdout.astype({"x": narrow}), pmse=False,
                         progress=False)
    pd.testing.assert_frame_equal(rep.scores, plain.scores)


@pytest.mark.parametrize("dtype", NARROW[:2])
def test_evaluate_warns_of_a_holdout_that_holds_training_records_of_a_float32_file(dtype):
    train, synth, holdout = _copied(dtype)
    # half of the holdout rows are training records, stored as float64 decimals (a CSV beside a Parquet file)
    stale = pd.concat([synth.iloc[:200], holdout.iloc[200:].astype({"x": float}).round(1)], ignore_index=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        evaluate(train, synth, holdout_df=stale, pmse=False, progress=False)
    assert any("not fresh" in str(w.message) for w in caught if issubclass(w.category, PrivacyRiskWarning))


@pytest.mark.parametrize("dtype", NARROW[:2])
def test_attribute_disclosure_of_evaluate_reads_float32_cells_at_float32(dtype):
    rng = np.random.default_rng(1)
    fte = rng.choice([0.1, 0.3, 0.6, 0.8, 1.0], N)  # a float32 quasi-identifier of 5 values: not cut into groups
    g, y = rng.choice(["a", "b"], N), rng.choice(["p", "q", "r"], N)
    train = pd.DataFrame({"fte": pd.array(fte, dtype=dtype), "g": g, "y": y})
    holdout = pd.DataFrame({"fte": pd.array(rng.choice([0.1, 0.3, 0.6, 0.8, 1.0], N), dtype=dtype),
                            "g": rng.choice(["a", "b"], N), "y": rng.choice(["p", "q", "r"], N)})
    synth = train.assign(fte=fte)  # the release copies the training records, fte as float64 decimals
    # by hand: each record's cell in the release is its own (fte, g) cell of the training file; the most frequent
    # sensitive value(s) of the cell, k tied ones credited 1/k each
    counts = pd.DataFrame({"f": fte, "g": g, "y": y}).groupby(["f", "g", "y"]).size()
    top = counts == counts.groupby(level=[0, 1]).transform("max")
    credit = top / top.groupby(level=[0, 1]).transform("sum")
    by_hand = sum(credit.loc[(f, a, b)] for f, a, b in zip(fte, g, y)) / N
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PrivacyRiskWarning)
        rep = evaluate(train, synth, holdout_df=holdout, pmse=False, progress=False, attacks=True,
                       quasi_identifiers=["fte", "g"], sensitive=["y"])
    assert rep.attacks["attribute_disclosure"]["y"]["attribution_synthetic"] == pytest.approx(by_hand, abs=1e-12)


def test_microplex_evaluate_finds_the_copies_of_a_float32_parquet_file(tmp_path):
    train, synth, holdout = _copied("Float32")
    train.to_parquet(tmp_path / "train.parquet")
    holdout.to_parquet(tmp_path / "hold.parquet")
    synth.to_csv(tmp_path / "synth.csv", index=False)  # the release: the training records, as decimals
    assert str(read_table(tmp_path / "train.parquet")["x"].dtype) == "Float32"
    r = runner.invoke(app, ["evaluate", str(tmp_path / "train.parquet"), str(tmp_path / "synth.csv"), "--holdout",
                            str(tmp_path / "hold.parquet"), "--no-pmse", "--report", str(tmp_path / "r.html")])
    assert r.exit_code == 0, r.output
    assert "DCR ratio: 0.0000" in r.output
    assert "100.0% of synthetic records copy a training record exactly" in r.output


# --- `microplex evaluate` refusals name the flags the user typed (they named the Python parameters) ---


@pytest.fixture(scope="module")
def small_files(tmp_path_factory):
    """Training, release and holdout files of age and income (300, 300 and 250 records), and the first 80
    training records (too few for pMSE's default classifier)."""
    folder = tmp_path_factory.mktemp("s75eval")
    rng = np.random.default_rng(0)
    for name, n in (("tr", 300), ("sy", 300), ("ho", 250)):
        pd.DataFrame({"age": rng.integers(20, 60, n), "inc": rng.lognormal(9, 1, n).round(0)}).to_csv(
            folder / f"{name}.csv", index=False)
    pd.read_csv(folder / "tr.csv").head(80).to_csv(folder / "tr80.csv", index=False)
    return folder


_UNKNOWN_QI = "error: The '--quasi-identifiers' option names columns ['agee'] that are not scored: ['age', 'inc']."
_NO_QI = ("error: The '--sensitive' option (['inc']) needs quasi-identifiers: attribute disclosure reads each sensitive "
          "value off the released records that share a record's quasi-identifiers, and there are none. Pass "
          "'--quasi-identifiers' (they default to '--conditions').")
_FEW = ("error: pmse needs at least 100 real rows with the default classifier (its leaves hold 50 rows; with fewer it "
        "scores any data as indistinguishable): got 80. Pass --no-pmse.")


@pytest.mark.parametrize("extra,expected", [(["--quasi-identifiers", "agee"], _UNKNOWN_QI),
                                            (["--quasi-identifiers=", "--sensitive", "inc"], _NO_QI)],
                         ids=["unknown", "none"])
def test_microplex_evaluate_attack_refusals_name_the_flags(small_files, tmp_path, extra, expected):
    d = small_files
    r = runner.invoke(app, ["evaluate", str(d / "tr.csv"), str(d / "sy.csv"), "--holdout", str(d / "ho.csv"),
                            "--attacks", "--no-pmse", "-q", "--report", str(tmp_path / "r.html"), *extra])
    assert _error_line(r) == expected


def test_microplex_evaluate_pmse_refusal_names_no_pmse_and_no_classifier(small_files, tmp_path):
    d = small_files
    r = runner.invoke(app, ["evaluate", str(d / "tr80.csv"), str(d / "sy.csv"), "-q", "--report",
                            str(tmp_path / "r.html")])
    line = _error_line(r)
    assert line == _FEW and "classifier suited" not in line and "pmse=False" not in line


def test_the_python_api_names_the_evaluate_parameters(small_files):
    d = small_files
    tr, sy, ho = (pd.read_csv(d / f"{n}.csv") for n in ("tr", "sy", "ho"))
    with pytest.raises(DataValidationError, match=r"^The 'quasi_identifiers' parameter names columns \['agee'\]"):
        evaluate(tr, sy, holdout_df=ho, attacks=True, quasi_identifiers=["agee"], pmse=False, progress=False)
    with pytest.raises(DataValidationError, match=r"^The 'sensitive' parameter \(\['inc'\]\) needs quasi-identifiers"
                                                  r".* Pass 'quasi_identifiers' \(they default to 'conditions'\)\.$"):
        evaluate(tr, sy, holdout_df=ho, attacks=True, quasi_identifiers=[], sensitive=["inc"], pmse=False,
                 progress=False)
    with pytest.raises(DataValidationError, match=r"got 80\. Pass pmse=False to evaluate, or a classifier suited to "
                                                  r"small samples\.$"):
        evaluate(tr.head(80), sy, progress=False)


# --- a DCR ratio of inf (the holdout's median distance 0) is documented and printed ---


def _discrete() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Six cells, all in the training file, so every fresh record has a training twin (holdout median 0), and a
    release whose ``a`` is never a training value (synthetic median above 0)."""
    rng = np.random.default_rng(0)
    train = pd.DataFrame({"a": rng.integers(0, 3, 600), "b": rng.integers(0, 2, 600)})
    holdout = pd.DataFrame({"a": rng.integers(0, 3, 300), "b": rng.integers(0, 2, 300)})
    synth = pd.DataFrame({"a": rng.integers(0, 3, 300) + 0.5, "b": rng.integers(0, 2, 300)})
    return train, synth, holdout


def test_privacy_summary_documents_the_ratio_it_returns_for_a_holdout_median_of_zero():
    from microplex.evaluation.privacy import privacy_summary

    train, synth, holdout = _discrete()
    s = privacy_summary(train, synth, holdout, warn=False)
    assert s["dcr_holdout_median"] == 0.0 and s["dcr_synthetic_median"] > 0.1 and s["dcr_ratio"] == np.inf
    both = privacy_summary(train, train.iloc[:300], holdout, warn=False)  # a copy: both medians 0
    assert both["dcr_synthetic_median"] == 0.0 and np.isnan(both["dcr_ratio"])
    doc = " ".join(privacy_summary.__doc__.split())
    assert "inf when only the holdout median is 0" in doc and "NaN when both medians are 0" in doc
    assert "NaN when the holdout median is 0" not in doc


def test_microplex_evaluate_prints_a_dcr_ratio_of_inf(tmp_path):
    for frame, name in zip(_discrete(), ("tr", "sy", "ho")):
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
    r = runner.invoke(app, ["evaluate", str(tmp_path / "tr.csv"), str(tmp_path / "sy.csv"), "--holdout",
                            str(tmp_path / "ho.csv"), "--no-pmse", "--report", str(tmp_path / "r.html")])
    assert r.exit_code == 0, r.output
    lines = [line for line in r.output.splitlines() if line.startswith("DCR ratio")]
    assert lines == ["DCR ratio: inf (the holdout's median distance to the closest training record is 0)"], r.output


def test_microplex_evaluate_prints_an_undefined_dcr_ratio_when_both_medians_are_zero(tmp_path):
    """Before: a release copying training records, over a holdout whose records all have training twins, printed
    no DCR ratio line at all (the ratio is NaN, 0 over 0)."""
    train, _, holdout = _discrete()
    for frame, name in ((train, "tr"), (train.iloc[:300], "sy"), (holdout, "ho")):
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
    r = runner.invoke(app, ["evaluate", str(tmp_path / "tr.csv"), str(tmp_path / "sy.csv"), "--holdout",
                            str(tmp_path / "ho.csv"), "--no-pmse", "--report", str(tmp_path / "r.html")])
    assert r.exit_code == 0, r.output
    lines = [line for line in r.output.splitlines() if line.startswith("DCR ratio")]
    assert lines == ["DCR ratio: undefined (the synthetic and holdout median distances to the closest training "
                     "record are both 0)"], r.output
