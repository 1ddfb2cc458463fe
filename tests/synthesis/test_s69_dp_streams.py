"""DP-SGD's secret randomness is a stream of its own, of the seed's full entropy.

Before: the networks were initialised from ``torch.manual_seed(seed)`` and DP-SGD drew its Poisson batches and
noise from ``torch.Generator().manual_seed(seed)``, the same stream (and torch keeps 32 bits of a seed): the first
batch's uniforms were the first layer's initial weights, which the released file keeps nearly as they were (the
batch read off the file with AUC 0.97 on cps1), and a candidate seed could be tested against the file in microseconds.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from microplex.datasets import load_dataset
from microplex import Synthesizer, VariableSpec
from microplex._random import int_seed, named_child
from microplex.synthesis import _conditions, _dp_training, _fitting

TOP = {"re74": 25862.32, "re75": 25243.55, "re78": 25564.67}


def _dp(**kw) -> Synthesizer:
    return Synthesizer(target_vars=list(TOP), condition_vars=["age", "educ"], epsilon=1.0, delta=1e-5,
                       public_bounds={**{k: (0.0, v) for k, v in TOP.items()}, "age": (16, 55), "educ": (0, 18)},
                       schema={k: VariableSpec(point_masses=(0.0, v)) for k, v in TOP.items()}, epochs=1,
                       verbose=False, **kw)


def test_dp_sgd_draws_its_batches_from_a_stream_of_its_own(monkeypatch):
    df = load_dataset("cps1").sample(600, random_state=0).reset_index(drop=True)
    seen: dict = {}
    original_train, original_gradient = _dp_training.train_dp, _dp_training.clipped_noisy_gradient

    def train(synth, data, c, *args):
        if "c" not in seen:  # the main model's DP-SGD (the condition model of two conditions is a tree)
            seen.update(c=torch.as_tensor(c), n=len(data))
            # the networks as built: from the seed's child "init" (init_prior set the pattern head: the flow's)
            flow = {k: v.detach().clone() for k, v in synth.model_.named_parameters() if not k.startswith("head")}
            with torch.random.fork_rng(devices=[]):
                for name, seed in (("from_seed", 12345), ("from_child", int_seed(named_child(12345, "init")))):
                    torch.manual_seed(seed)
                    fresh = dict(synth._new_model().named_parameters())
                    seen[name] = all(torch.equal(v, fresh[k]) for k, v in flow.items())
        return original_train(synth, data, c, *args)

    def gradient(loss, params, batch, *args, **kwargs):
        seen.setdefault("batch", batch[0].clone())
        return original_gradient(loss, params, batch, *args, **kwargs)

    monkeypatch.setattr(_fitting, "train_dp", train)
    monkeypatch.setattr(_dp_training, "clipped_noisy_gradient", gradient)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _dp(batch_size=200).fit(df, seed=12345)
    n, q = seen["n"], 200 / seen["n"]
    # the batch is the one numpy's generator of the seed's child "dp_sgd" draws ...
    expected = np.flatnonzero(np.random.default_rng(named_child(12345, "dp_sgd")).random(n) < q)
    assert torch.equal(seen["batch"], seen["c"][torch.from_numpy(expected)])
    # ... not the one torch's generator of the seed draws, which had initialised the networks
    old = torch.nonzero(torch.rand(n, generator=torch.Generator().manual_seed(12345)) < q).squeeze(1)
    assert not (len(old) == len(expected) and torch.equal(old, torch.from_numpy(expected)))
    # and the networks start from the seed's child "init", not from the seed itself
    assert seen["from_child"] and not seen["from_seed"]


def test_a_dp_condition_model_is_seeded_with_64_bits(monkeypatch):
    seeds: list[int] = []
    original = Synthesizer.fit

    def fit(self, data, weight_col=None, *, epochs=None, seed="auto"):
        seeds.append(seed)
        return original(self, data, weight_col, epochs=epochs, seed=seed)

    monkeypatch.setattr(Synthesizer, "fit", fit)
    df = load_dataset("cps1").sample(600, random_state=0).reset_index(drop=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _dp(condition_model=True).fit(df, seed=7)
    assert seeds[0] == 7 and seeds[1] == int_seed(named_child(7, _conditions.KEY), bits=64) and seeds[1] >= 2**32


def test_a_dp_fit_does_not_refuse_a_column_its_public_metadata_let_vary():
    """Before: a DP fit of records without a Hispanic respondent refused ("Condition column 'hisp' is constant"),
    one record more fitted: whether the fit ran told whether one record held the other value."""
    df = load_dataset("cps1").sample(600, random_state=0).reset_index(drop=True)
    df = df.assign(hisp=0, re74=0.0)  # a condition and a target each of one value, public metadata of two or more
    synth = Synthesizer(target_vars=list(TOP), condition_vars=["age", "hisp"], epsilon=1.0, delta=1e-5,
                        public_bounds={**{k: (0.0, v) for k, v in TOP.items()}, "age": (16, 55)},
                        public_categories={"hisp": [0, 1]},
                        schema={k: VariableSpec(point_masses=(0.0, v)) for k, v in TOP.items()}, epochs=1,
                        verbose=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        synth.fit(df, seed=3)
    assert synth.privacy_["epsilon"] <= 1.0
    out = synth.sample(200, seed=0)
    assert set(out["hisp"].unique()) <= {0, 1} and (out["re74"] >= 0).all()


def test_a_budget_too_small_for_dp_sgd_names_dp_sgds_cap():
    """At epsilon 0.001 the refusal said DP-SGD "needs a noise multiplier above 10000", the statistics' cap; DP-SGD's
    is 100 (MAX_NOISE_MULTIPLIER)."""
    import pytest

    from microplex._errors import DataValidationError
    from microplex.synthesis._accountant import MAX_NOISE_MULTIPLIER

    df = load_dataset("cps1").sample(1000, random_state=0)
    synth = Synthesizer(["re78"], ["age"], epsilon=0.001, delta=1e-5, verbose=False,
                        public_bounds={"re78": (0.0, 30000.0), "age": (16, 55)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DataValidationError, match=rf"too small for DP-SGD training .* noise multiplier above "
                                                      rf"{MAX_NOISE_MULTIPLIER:g} "):
            synth.fit(df, seed=0)
