"""Out-of-core calibration: many numbers asked of a text column of codes written with zeros are looked up in a few
calls, not one per number; margins of partial coverage (no margin reaches every record) from initial weights far
off the targets' scale give the Calibrator's weights on every path."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from microplex import Calibrator
from microplex.calibration import Targets
from microplex.calibration import design as design_module
from microplex.calibration.design import lookup_values
from microplex.calibration.filters import NumberedCode
from microplex.scale import rake_dataset, rake_frame


def _one_number_at_a_time(uniques: pd.Index, values: list) -> np.ndarray:
    """What a number finds through its codes written with zeros, one lookup per number (the rule, written plainly)."""
    out = []
    for v in values:
        ok = design_module.is_integral_number(v)
        hits = uniques.get_indexer(pd.Index(design_module._padded_forms(int(v)), dtype=object)) if ok else []
        hits = [h for h in hits if h >= 0]
        out.append(hits[0] if len(hits) == 1 else -1)
    return np.array(out)


def test_numbers_asked_of_a_text_column_are_looked_up_in_a_few_calls(monkeypatch):
    """Before: one lookup per number, each hashing the whole column again in pandas' str dtype (4 files of 20,000
    codes: 2,000 numbers 2.7 s, 8,000 36 s, 20,000 94 s in rake_dataset). Now a few calls, the same positions."""
    codes = [str(i).zfill(5) for i in range(1, 6001)] + ["0042", "7", "-03", "x"]  # 42 also as "00042": several
    uniques = pd.Index(pd.Series(codes, dtype="str").unique())
    values = list(range(1, 6001)) + [7, 3.0, -3, 42, 0, 10**20, True, 2.5, "8", NumberedCode("00008")]
    calls = []
    original = pd.Index.get_indexer

    def counted(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(pd.Index, "get_indexer", counted)
    got = design_module._padded_positions(uniques, values)
    assert len(calls) <= 3
    monkeypatch.setattr(pd.Index, "get_indexer", original)
    np.testing.assert_array_equal(got, _one_number_at_a_time(uniques, values))
    assert got[41] == -1 and got[6002] == uniques.get_loc("-03")  # 42: "00042" and "0042"; -3: "-03"
    calls.clear()
    monkeypatch.setattr(pd.Index, "get_indexer", counted)
    at = lookup_values(uniques, values)
    assert len(calls) <= 8
    assert at[7] == uniques.get_loc("00008") and at[6000] == uniques.get_loc("7")


# -- margins of partial coverage: reaching every record together (none alone), or leaving some records out -----------
MARGINS = {"sex": {"f": 700.0}, "reg": {"N": 400.0, "S": 450.0}}


def _partial(s: float, together: bool, n: int = 600) -> pd.DataFrame:
    """Women in every region and men in N and S only (``together``: sex == 'f' and reg in {N, S} reach every record,
    neither alone), or men in E too (in no category)."""
    rng = np.random.default_rng(0)
    sex = rng.choice(["f", "m"], n)
    reg = rng.choice(["N", "S", "E"], n)
    if together:
        reg = np.where(sex == "m", rng.choice(["N", "S"], n), reg)
    return pd.DataFrame({"sex": sex, "reg": reg, "w": rng.uniform(1, 3, n) * s})


@pytest.mark.parametrize("s", [1e10, 1e-10])
@pytest.mark.parametrize("together", [True, False])
def test_margins_of_partial_coverage_give_the_calibrators_weights_on_every_path(s, together, tmp_path):
    """Before, over the partitions (max_cells=0) margins that reach every record together were solved from the weights
    as given (start_scale 1): from 1e10 times the targets' scale a ConvergenceError "the weights collapsed: they sum
    to 1.55e+03 against an initial 1.19435e+13", from 1e-10 times converged to weights a relative 1.0 off the
    Calibrator's, where the cell table and rake_frame scaled them (start_scale 2**-33 and 2**33). With records in no
    category (solved from the weights as given, as the Calibrator does), from 1e10 times every path raised
    ConvergenceError "3 targets are missed by more than 1e-08: count[reg == 'N'] = 400 (achieved 400.025)" where the
    Calibrator converged: the solve stopped at the rounding of the initial sizes, not held to the final ones."""
    df = _partial(s, together)
    reached = (df.sex == "f") | df.reg.isin(["N", "S"])
    assert reached.all() == together and not (df.sex == "f").all() and not df.reg.isin(["N", "S"]).all()
    for i, part in enumerate(np.array_split(np.arange(len(df)), 3)):
        df.iloc[part].to_parquet(tmp_path / f"part{i}.parquet")
    expected = Calibrator(tol=1e-10).fit(df, Targets.from_margins(MARGINS), "w").weights.to_numpy()
    for (c, k), v in ((("sex", "f"), 700.0), (("reg", "N"), 400.0), (("reg", "S"), 450.0)):
        assert abs(expected[(df[c] == k).to_numpy()].sum() / v - 1) < 1e-10
    scale = 2.0 ** (-33 if s > 1 else 33) if together else 1.0
    for res in (rake_frame(df, MARGINS, "w"), rake_dataset(tmp_path, MARGINS, "w"),
                rake_dataset(tmp_path, MARGINS, "w", max_cells=0)):
        assert res.converged and res.start_scale == scale
        np.testing.assert_allclose(np.asarray(res.weights(df)), expected, rtol=1e-8)


@pytest.mark.parametrize("s", [1e10, 1e-10])
@pytest.mark.parametrize("together", [True, False])
def test_household_margins_of_partial_coverage_give_the_calibrators_weights(s, together, tmp_path):
    """rake_dataset(persons=) over pairs of files: the persons' sex 'f' and the households' region N or S reach every
    household together (a woman in each household of E) or leave some out; the weights of Calibrator(household_col=).
    Before: a margin was taken to cover every household where its initial total (persons) reached the households'
    total, so with some households left out the weights were brought to the targets' scale (start_scale 2**-33,
    2**33) where the Calibrator keeps them: the households in no category kept that factor, weights 1.4e44 (at 1e10)
    and 8.6e9 (at 1e-10) times the Calibrator's."""
    rng = np.random.default_rng(3)
    n = 300
    hh = pd.DataFrame({"hid": np.arange(1, n + 1), "region": rng.choice(["N", "S", "E"], n),
                       "w": rng.uniform(1, 3, n) * s})
    size = rng.integers(1, 4, n)
    pp = pd.DataFrame({"hid": np.repeat(hh["hid"], size), "sex": rng.choice(["f", "m"], size.sum())})
    first = ~pp["hid"].duplicated()
    east = pp["hid"].map(hh.set_index("hid")["region"]).eq("E")
    pp.loc[first & east, "sex"] = "f" if together else "m"
    joined = pp.merge(hh, on="hid")
    reached = (joined["sex"] == "f").groupby(joined["hid"]).any() | hh.set_index("hid")["region"].isin(["N", "S"])
    assert reached.all() == together
    truth = np.random.default_rng(4).uniform(0.7, 1.4, n)[joined["hid"] - 1] * joined["w"] / s
    margins = {"sex": {"f": float(truth[joined["sex"] == "f"].sum())},
               "region": {r: float(truth[joined["region"] == r].sum()) for r in ("N", "S")}}
    (tmp_path / "h").mkdir()
    (tmp_path / "p").mkdir()
    for k, part in enumerate(np.array_split(hh["hid"].to_numpy(), 2)):
        hh[hh["hid"].isin(part)].to_parquet(tmp_path / "h" / f"part-{k}.parquet")
        pp[pp["hid"].isin(part)].to_parquet(tmp_path / "p" / f"part-{k}.parquet")
    ref = Calibrator(tol=1e-10).fit(joined, margins, weight_col="w", household_col="hid").result_.weights
    res = rake_dataset(tmp_path / "h", margins, "w", persons=tmp_path / "p", household_id="hid")
    assert res.converged and res.start_scale == (2.0 ** (-33 if s > 1 else 33) if together else 1.0)
    np.testing.assert_allclose(res.weights(hh, pp), ref.reindex(hh["hid"]).to_numpy(), rtol=1e-8)
