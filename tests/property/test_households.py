"""Property-based trust tests of HouseholdSynthesizer (issue 15).

Tiny generated household frames (odd values, dtypes and names, empty and one-household frames),
tiny fits (epochs=1): ``fit`` then ``sample``/``generate``/save-load either give a correct result
(every household has exactly its size in persons, ids unique, sizes >= 1) or raise a
MicroplexError; the caller's frame is unchanged; nothing is written outside the output folder.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from microplex import HouseholdSynthesizer

from ._invariants import assert_unchanged, nothing_written_outside, result_or_microplex_error, snapshot


pytestmark = pytest.mark.usefixtures("one_torch_thread")


ODD_VALUES = [np.nan, np.inf, -np.inf, 1e300, -1e300, 0.0, -1.0]
DTYPES = ["same", "object", "bool", "category", "Int64", "datetime", "str"]


def _cast(series: pd.Series, dtype: str) -> pd.Series:
    if dtype == "object":
        return series.astype(object)
    if dtype == "bool":
        return series.astype(str) != (series.astype(str).iloc[0] if len(series) else "")
    if dtype == "category":
        return series.astype("category")
    if dtype == "Int64":
        return pd.to_numeric(series, errors="coerce").round().astype("Float64").astype("Int64")
    if dtype == "datetime":
        return pd.to_datetime(np.arange(len(series)), unit="D")
    if dtype == "str":
        return series.astype(str)
    return series


@st.composite
def _value(draw, odd):
    """A float in [0, 1000], or (one time in ten) an odd value."""
    return draw(st.sampled_from(odd)) if draw(st.integers(0, 9)) == 0 else draw(st.floats(0, 1000, allow_nan=False))


@st.composite
def household_frames(draw):
    """A person frame with columns hid, hsize, region, hinc (household) and age, sex, pinc (person)."""
    n_households = draw(st.sampled_from([0, 1, 8, 12]))
    sizes = draw(st.lists(st.integers(1, 3), min_size=n_households, max_size=n_households))
    rows = []
    for h, size in enumerate(sizes):
        region = draw(st.sampled_from(["a", "b"]))
        hinc = draw(_value(ODD_VALUES))
        weight = draw(st.floats(0.5, 10) if draw(st.integers(0, 9)) else st.sampled_from([0.0, -1.0, np.nan, 1e300]))
        for k in range(size):
            rows.append({
                "hid": h + 1, "hsize": size, "region": region, "hinc": hinc, "w": weight,
                "age": draw(st.integers(0, 90) if k else st.integers(18, 90)),
                "sex": draw(st.sampled_from(["f", "m"])),
                "pinc": draw(_value(ODD_VALUES)),
            })
    df = pd.DataFrame(rows, columns=["hid", "hsize", "region", "hinc", "w", "age", "sex", "pinc"])
    if draw(st.integers(0, 2)) == 0:  # an odd dtype in one column
        col = draw(st.sampled_from(list(df.columns)))
        df[col] = _cast(df[col], draw(st.sampled_from(DTYPES)))
    if draw(st.integers(0, 3)) == 0:  # an odd name
        col = draw(st.sampled_from(list(df.columns)))
        new = draw(st.sampled_from([0, "__w__", "_m_x", "region", "person_id", "n_persons", ""]))
        df = df.rename(columns={col: new})
    return df


@st.composite
def configurations(draw):
    return dict(
        household_vars=draw(st.sampled_from([["hsize", "region", "hinc"], ["region", "hinc"], ["region"], ["hsize"]])),
        person_vars=draw(st.sampled_from([["age", "sex", "pinc"], ["sex"], ["age"]])),
        household_id="hid",
        household_weight=draw(st.sampled_from([None, "w"])),
        size_var=draw(st.sampled_from([None, "hsize"])),
        geography=draw(st.sampled_from([None, "region"])),
        age_var=draw(st.sampled_from([None, "age"])),
    )


def _check_result(hs: HouseholdSynthesizer, households: pd.DataFrame, persons: pd.DataFrame, n: int | None) -> None:
    size = hs.size_col_
    assert n is None or len(households) == n
    assert households[hs.household_id].is_unique
    assert persons[hs.person_id or "person_id"].is_unique
    counts = persons.groupby(hs.household_id).size().reindex(households[hs.household_id], fill_value=0)
    assert (counts.to_numpy() == households[size].to_numpy()).all()
    assert (households[size].to_numpy() >= 1).all()
    assert set(persons[hs.household_id]) <= set(households[hs.household_id])


def _tiny(config: dict) -> HouseholdSynthesizer:
    config = dict(config)
    if config["size_var"] is not None and config["size_var"] not in config["household_vars"]:
        config["size_var"] = None
    if config["geography"] is not None and config["geography"] not in config["household_vars"]:
        config["geography"] = None
    if config["age_var"] is not None and config["age_var"] not in config["person_vars"]:
        config["age_var"] = None
    return HouseholdSynthesizer(**config, epochs=1, hidden_features=(4,), transforms=1, batch_size=64, max_redraws=1)


@given(frame=household_frames(), config=configurations(), n=st.integers(0, 5))
def test_fit_sample_is_correct_or_a_microplex_error(frame, config, n):
    before = snapshot(frame)
    hs = _tiny(config)
    fitted, error = result_or_microplex_error(lambda: hs.fit(frame, seed=0))
    assert_unchanged(before, frame)
    if error is not None:
        return
    out, error = result_or_microplex_error(lambda: hs.sample(n, seed=0))
    if error is None:
        _check_result(hs, *out, n)
    # generate on the training households: each gets its own size in persons
    given = frame.groupby("hid", sort=False)[hs.early_cols_].first().reset_index() if hs.size_col_ in frame else None
    if given is not None:
        kept = snapshot(given)
        out, error = result_or_microplex_error(lambda: hs.generate(given, seed=1))
        assert_unchanged(kept, given)
        if error is None:
            _check_result(hs, *out, len(given))


@given(frame=household_frames(), config=configurations())
def test_save_load_writes_only_the_model_file(frame, config):
    hs = _tiny(config)
    fitted, error = result_or_microplex_error(lambda: hs.fit(frame, seed=0))
    if error is not None:
        return
    with tempfile.TemporaryDirectory() as sandbox:
        out = Path(sandbox) / "out"
        out.mkdir()
        with nothing_written_outside(Path(sandbox), out):
            hs.save(out / "hh.mpx")
            loaded = HouseholdSynthesizer.load(out / "hh.mpx")
        a, _ = result_or_microplex_error(lambda: hs.sample(3, seed=2))
        b, _ = result_or_microplex_error(lambda: loaded.sample(3, seed=2))
        if a is not None:
            for x, y in zip(a, b, strict=True):
                pd.testing.assert_frame_equal(x, y)


@given(
    n=st.one_of(st.integers(-3, -1), st.floats(0, 5), st.just(10**12), st.just("3"), st.just(True), st.none()),
    seed=st.one_of(st.integers(-5, -1), st.just(2**64), st.just(1.5), st.just("0")),
    oversample=st.one_of(st.integers(-2, 0), st.just(2.5), st.just(10**9)),
)
def test_bad_sample_arguments_raise(fitted_tiny, n, seed, oversample):
    for kwargs in ({"n_households": n}, {"n_households": 2, "seed": seed}, {"n_households": 2, "oversample": oversample}):
        _, error = result_or_microplex_error(lambda kwargs=kwargs: fitted_tiny.sample(**kwargs))
        assert error is not None, kwargs


@pytest.fixture(scope="module")
def fitted_tiny():
    rng = np.random.default_rng(0)
    sizes = rng.integers(1, 4, 30)
    hid = np.repeat(np.arange(1, 31), sizes)
    df = pd.DataFrame({
        "hid": hid, "hsize": np.repeat(sizes, sizes), "region": np.repeat(rng.choice(["a", "b"], 30), sizes),
        "age": rng.integers(18, 80, len(hid)), "pinc": rng.exponential(1000, len(hid)),
    })
    return HouseholdSynthesizer(["hsize", "region"], ["age", "pinc"], "hid", geography="region", size_var="hsize",
                                age_var="age", epochs=1, hidden_features=(4,), transforms=1).fit(df, seed=0)


@st.composite
def clean_household_frames(draw):
    """20-60 households of 1-4 persons, positive weights (some households of weight 0 beside them, one of them of
    a size and region of its own), household income with zeros, person ages and sexes."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n = draw(st.integers(20, 60))
    sizes = rng.integers(1, 5, n)
    region = rng.choice(["a", "b", "c"], n)
    w = rng.uniform(0.5, 5.0, n)
    if draw(st.booleans()):  # households of weight 0 are outside the population: they change nothing drawn
        w[rng.random(n) < 0.1] = 0.0
        w[0], sizes[0], region[0] = 0.0, 6, "only_weight_0"
    hid = np.repeat(np.arange(1, n + 1), sizes)
    hinc = np.where(rng.random(n) < 0.2, 0.0, np.round(rng.lognormal(10, 0.7, n), -2))
    first = np.r_[True, hid[1:] != hid[:-1]]
    age = np.where(first, rng.integers(18, 90, len(hid)), rng.integers(0, 90, len(hid)))
    return pd.DataFrame({
        "hid": hid, "hsize": np.repeat(sizes, sizes), "region": np.repeat(region, sizes),
        "hinc": np.repeat(hinc, sizes), "w": np.repeat(w, sizes),
        "age": age, "sex": rng.choice(["f", "m"], len(hid)),
    })


@given(frame=clean_household_frames(), config=configurations())
def test_clean_household_frames_fit_and_keep_their_structure(frame, config):
    """A clean frame fits (never refused); household variables are constant within a drawn household, sizes
    are training sizes, regions and sexes are training categories, incomes keep their sign."""
    config = {**config, "person_vars": [v for v in config["person_vars"] if v != "pinc"] or ["age", "sex"]}
    hs = _tiny(config).fit(frame, seed=0)
    households, persons = hs.sample(30, seed=1)
    _check_result(hs, households, persons, 30)
    for col in hs.household_vars:
        if col in persons.columns:
            per = persons.groupby(hs.household_id)[col].nunique(dropna=False)
            assert (per <= 1).all(), col
    # with household weights, what only households of weight 0 hold is never drawn
    held = frame if hs.household_weight is None else frame[frame["w"] > 0]
    if "hsize" in households.columns:
        assert set(households["hsize"]) <= set(held["hsize"])
    if "region" in households.columns:
        assert set(households["region"]) <= set(held["region"])
    if "sex" in persons.columns:
        assert set(persons["sex"]) <= {"f", "m"}
    if "hinc" in households.columns:
        assert (households["hinc"] >= 0).all()
