"""Property-based trust tests of the Synthesizer: any frame gives a correct result or a microplex error.

Generated frames mix NaN, inf and huge values, odd dtypes (object, bool, datetime, category,
nullable Int64/boolean/string) and odd names (non-string, duplicated, reserved), with 0 to 30
rows. The property: ``fit`` either raises a :class:`~microplex.MicroplexError` or gives a model
whose ``generate``, ``sample``, ``log_prob``, ``save`` and ``load`` all behave (right shape,
finite numeric targets, conditions passed through unchanged, identical output after a round
trip); the caller's frame is unchanged and nothing is written outside the output folder.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from microplex import Synthesizer

from ._invariants import assert_unchanged, nothing_written_outside, result_or_microplex_error, snapshot

FAST = {"epochs": 1, "hidden_features": (4,), "transforms": 1, "verbose": False}

_FLOATS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-1e3, 1e3),
    st.sampled_from([0.0, 0.0, 1e300, -1e300, 1e-300, 5e-324]),
)


@st.composite
def columns(draw, n: int):
    kind = draw(st.sampled_from(
        ["float", "float", "int", "bool", "str", "category", "Int64", "boolean", "string", "datetime", "object_mixed"]
    ))
    if kind == "float":
        return pd.Series(draw(st.lists(_FLOATS, min_size=n, max_size=n)), dtype=float)
    if kind == "int":
        return pd.Series(draw(st.lists(st.integers(-(2**40), 2**40), min_size=n, max_size=n)), dtype="int64")
    if kind == "bool":
        return pd.Series(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    if kind in ("str", "category", "string"):
        values = draw(st.lists(st.sampled_from(["a", "b", "c", ""]), min_size=n, max_size=n))
        return pd.Series(values, dtype={"str": object, "category": "category", "string": "string"}[kind])
    if kind == "Int64":
        return pd.Series(draw(st.lists(st.one_of(st.none(), st.integers(0, 50)), min_size=n, max_size=n)),
                         dtype="Int64")
    if kind == "boolean":
        return pd.Series(draw(st.lists(st.one_of(st.none(), st.booleans()), min_size=n, max_size=n)),
                         dtype="boolean")
    if kind == "datetime":
        return pd.Series(pd.to_datetime(draw(st.lists(st.integers(0, 10**9), min_size=n, max_size=n)), unit="s"))
    return pd.Series(draw(st.lists(st.one_of(st.integers(0, 3), st.sampled_from(["x", "y"])), min_size=n, max_size=n)),
                     dtype=object)


_NAMES = st.sampled_from(["a", "b", "c", "d", "e", "f", "g", "h", "__weight__", 0])


@st.composite
def frames(draw):
    n = draw(st.one_of(st.integers(0, 2), st.integers(3, 30)))
    k = draw(st.integers(1, 4))
    names = draw(st.lists(_NAMES, min_size=k, max_size=k, unique=draw(st.booleans()) or k == 1))
    cols = [draw(columns(n)) for _ in range(k)]
    df = pd.concat(cols, axis=1) if cols else pd.DataFrame(index=range(n))
    df.columns = names
    return df


def _roles(draw, df):
    names = [c for c in dict.fromkeys(df.columns)]
    targets = draw(st.lists(st.sampled_from(names), min_size=1, max_size=2, unique=True))
    rest = [c for c in names if c not in targets]
    conditions = draw(st.lists(st.sampled_from(rest), max_size=2, unique=True)) if rest else []
    return targets, conditions


def _check_generated(out: pd.DataFrame, conditions: pd.DataFrame, synth: Synthesizer) -> None:
    assert len(out) == len(conditions)
    assert out.index.equals(conditions.index)
    for c in synth.condition_vars:
        pd.testing.assert_series_equal(out[c], conditions[c])
    for t in synth.target_vars:
        if synth.kinds_[t] != "categorical":
            assert np.isfinite(out[t].to_numpy(float)).all()


@given(df=frames(), data=st.data())
def test_synthesizer_result_or_microplex_error(df, data, tmp_path_factory):
    targets, conditions = _roles(data.draw, df)
    before = snapshot(df)
    sandbox = tmp_path_factory.mktemp("sandbox")
    out_dir = sandbox / "out"
    out_dir.mkdir()
    with nothing_written_outside(sandbox, out_dir), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        synth, err = result_or_microplex_error(lambda: Synthesizer(targets, conditions, **FAST).fit(df, seed=0))
        if err is None:
            cond = df[conditions]
            gen, err = result_or_microplex_error(lambda: synth.generate(cond, seed=1))
            if err is None:
                _check_generated(gen, cond, synth)
            pop, err = result_or_microplex_error(lambda: synth.sample(5, seed=2))
            if err is None:
                assert len(pop) == 5 and list(pop.columns) == list(conditions) + list(targets)
            lp, err = result_or_microplex_error(lambda: synth.log_prob(df))
            if err is None:
                assert lp.shape == (len(df),) and not np.isnan(lp).any()
            saved, err = result_or_microplex_error(lambda: synth.save(out_dir / "m.mpx"))
            if err is None and gen is not None:
                loaded = Synthesizer.load(out_dir / "m.mpx")
                pd.testing.assert_frame_equal(loaded.generate(cond, seed=1), gen)
    assert_unchanged(before, df)


@given(
    params=st.fixed_dictionaries({}, optional={
        "epochs": st.one_of(st.integers(-2, 2), st.floats(allow_nan=True), st.text(max_size=2), st.none()),
        "learning_rate": st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-1, 1), st.none()),
        "hidden_features": st.one_of(st.none(), st.integers(0, 4), st.lists(st.integers(-1, 4), max_size=3),
                                     st.text(max_size=2)),
        "bins": st.one_of(st.integers(-1, 4), st.floats(0, 4)),
        "patience": st.one_of(st.integers(-1, 3), st.floats(0, 3)),
        "point_mass_threshold": st.one_of(st.floats(allow_nan=True), st.integers(-1, 2)),
        "max_point_masses": st.one_of(st.integers(-1, 3), st.floats(0, 3)),
        "batch_size": st.one_of(st.integers(-1, 64), st.floats(0, 64)),
        "weight_decay": st.one_of(st.floats(allow_nan=True), st.integers(-1, 1)),
        "validation_fraction": st.one_of(st.floats(-1, 1), st.integers(0, 1)),
        "flow": st.sampled_from(["maf", "nsf", "gan", None, 1]),
        "transforms": st.one_of(st.integers(-1, 2), st.floats(0, 2)),
        "verbose": st.one_of(st.booleans(), st.integers(0, 1), st.text(max_size=2)),
    }),
    n=st.one_of(st.integers(-2, 5), st.floats(allow_nan=True), st.text(max_size=2)),
    seed=st.one_of(st.none(), st.integers(-2, 2), st.floats(0, 2), st.integers(2**63 - 1, 2**64)),
)
def test_synthesizer_parameters_result_or_microplex_error(params, n, seed):
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.normal(size=40), "y": rng.exponential(size=40)})
    synth, err = result_or_microplex_error(
        lambda: Synthesizer(["y"], ["x"], **{"verbose": False, "epochs": 1, **params}).fit(df, seed=0))
    if err is None:
        out, err = result_or_microplex_error(lambda: synth.sample(n, seed=seed))
        if err is None:
            assert len(out) == n and np.isfinite(out["y"]).all()
