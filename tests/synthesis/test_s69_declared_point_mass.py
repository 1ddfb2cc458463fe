"""A declared point mass that no training record holds is outside the population: never drawn.

Before: ``VariableSpec(point_masses=(0.0, 12345.0))`` on cps1 earnings, where no record earns 12345, drew 12345 on
28% of the draws after 2 epochs (0.05% at the default epochs) with a finite ``log_prob``, while the same value held
by records of weight 0 only was never drawn and a declared heap of no record was refused.
"""

from __future__ import annotations

import warnings

import numpy as np

from microplex.datasets import load_dataset
from microplex import Synthesizer, VariableSpec



def test_a_declared_point_mass_no_record_holds_is_never_drawn():
    df = load_dataset("cps1").sample(800, random_state=0).reset_index(drop=True)
    assert not (df["re78"] == 12345.0).any()
    spec = {"re78": VariableSpec(point_masses=(0.0, 12345.0))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        synth = Synthesizer(["re78"], ["age"], schema=spec, epochs=2, verbose=False).fit(df, seed=0)
    draws = synth.sample(20_000, seed=0)["re78"]
    assert not (draws == 12345.0).any()
    assert np.isneginf(synth.log_prob(df.head(3).assign(re78=12345.0))).all()
    # the zero point mass, held by 15% of the records, is still a state of the model (2 epochs: not yet its share)
    assert (draws == 0.0).mean() > 0.05 and np.isfinite(synth.log_prob(df.head(3).assign(re78=0.0))).all()
