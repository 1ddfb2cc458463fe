"""A fully synthetic release draws no condition row that the structural zeros contradict.

Before: the condition model (``condition_model=True``) drew acs12 children (age < 15) with an employment status,
which no training child has (271 of 20,000 rows after 60 epochs); their cells ruled out every income state, so
their incomes were drawn without the rules (266 children with an income) and ``sample`` warned about rows the
library had drawn itself.
"""

from __future__ import annotations

import warnings

import pandas as pd
import pytest

from microplex.datasets import load_dataset
from microplex import Synthesizer
from microplex.synthesis import _generation
from microplex.synthesis._structure import contradicting_rows



@pytest.fixture(scope="module")
def acs12_model() -> tuple[Synthesizer, pd.DataFrame]:
    df = load_dataset("acs12")[["income", "employment", "hrs_work", "age"]]
    synth = Synthesizer(["income"], ["employment", "hrs_work", "age"], condition_model=True, epochs=60,
                        verbose=False).fit(df, seed=0)
    return synth, df


def test_sample_redraws_the_condition_rows_the_rules_contradict(acs12_model):
    synth, df = acs12_model
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning about rows the library drew itself
        out = synth.sample(20_000, seed=1)
    assert contradicting_rows(out[list(synth.condition_vars)], synth.structure_, synth.condition_encoder_)[0] == 0
    kids = out[out["age"] < 15]
    assert kids["employment"].isna().all() and kids["income"].isna().all()
    # the restriction removes a small share of the draws: children stay about as frequent as in training
    assert abs(len(kids) / len(out) - float((df["age"] < 15).mean())) < 0.03
    assert synth.sample(20_000, seed=1).equals(out)  # reproducible


def test_without_redraws_the_condition_model_draws_contradicting_rows(acs12_model, monkeypatch):
    synth, _ = acs12_model
    monkeypatch.setattr(_generation, "CONDITION_REDRAWS", 0)
    with pytest.warns(UserWarning, match="structural zeros together rule out every combination"):
        out = synth.sample(20_000, seed=1)
    assert contradicting_rows(out[list(synth.condition_vars)], synth.structure_, synth.condition_encoder_)[0] > 50


def test_many_contradicting_rows_are_left_to_the_warning_not_redrawn():
    """A condition model of 5 epochs draws 18% of acs12's rows in contradicting combinations: redrawn, they would
    move its margins (children 0.23 of the draw; 0.06 after redraws), so they are drawn as they are, with the
    warning."""
    df = load_dataset("acs12")[["income", "employment", "age"]]
    synth = Synthesizer(["income"], ["employment", "age"], condition_model=True, epochs=5, verbose=False).fit(df, seed=0)
    with pytest.warns(UserWarning, match="structural zeros together rule out every combination"):
        out = synth.sample(4000, seed=1)
    share = contradicting_rows(out[list(synth.condition_vars)], synth.structure_, synth.condition_encoder_)[0] / 4000
    assert share > _generation.MAX_REDRAWN_SHARE
