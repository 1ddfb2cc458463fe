"""A structural zero keeps the ruled state's overall share (session 75).

The pattern head trains without the rules, so it put part of a state's mass in the cells that rule the state out;
the rules set that mass to 0 and renormalized it onto the other states of the same rows, and the state's overall
share fell: CPS 1988 (5,000 records), ``experience`` given ``education``, ``ethnicity`` and ``region``, negative
experience ruled out below education 12.5: drawn for 0.0113 of the records (se 0.0005) against 0.0144 in training
(0.0138 with ``structural_zeros=False``). The head is now raked after the rules are fitted, one bias per pattern
(:func:`microplex.synthesis._dp_rake.rake_ruled_head`), so that its distribution with the rules, averaged over the
training records, has the training shares.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from microplex import Synthesizer
from microplex.datasets import load_dataset

CONDITIONS = ["education", "ethnicity", "region"]


def _cps() -> pd.DataFrame:
    return load_dataset("cps1988").sample(5000, random_state=0).reset_index(drop=True)


def test_a_tail_rule_keeps_the_ruled_states_overall_share(tmp_path):
    d = _cps()
    real = float((d["experience"] < 0).mean())  # 0.0144, none below education 12.5
    assert real > 0.01 and not ((d["experience"] < 0) & (d["education"] < 12.5)).any()
    synth = Synthesizer(["experience", "wage"], CONDITIONS, verbose=False).fit(d, seed=0)
    table = synth.structural_zeros_
    assert len(table) == 1 and table["condition"].iloc[0] == "education"
    assert table["value"].iloc[0] == pd.Interval(-np.inf, 12.5, closed="neither")
    assert table["ruled_out"].iloc[0] == ["a negative value"]
    # the head with the rules, averaged over the training records, has the training shares (was 0.0113)
    c = torch.as_tensor(synth.condition_encoder_.transform(d[CONDITIONS]), dtype=torch.float32)
    with torch.no_grad():
        probs = synth.model_.pattern_log_prob(c).exp().double().numpy()
    negative = synth.structure_.forbidden[0]  # the patterns of negative experience
    assert abs(probs[:, negative].sum(axis=1).mean() - real) < 1e-4
    # and so do the draws: 50,000 records, se 0.0005 (was 0.0113, 6 se below)
    drawn = pd.concat([synth.generate(d[CONDITIONS], seed=k) for k in range(10)], ignore_index=True)
    assert abs(float((drawn["experience"] < 0).mean()) - real) < 0.0015
    assert not ((drawn["experience"] < 0) & (drawn["education"] < 12.5)).any()  # the rule still holds
    # the raked head is the model's: its file draws the same
    synth.save(tmp_path / "model.json")
    loaded = Synthesizer.load(tmp_path / "model.json")
    pd.testing.assert_frame_equal(loaded.generate(d[CONDITIONS], seed=3), synth.generate(d[CONDITIONS], seed=3))


def test_a_category_rule_keeps_the_ruled_states_overall_share():
    # state "b" never held where g == "z" (40% of the records), 0.19 overall (weighted); a short fit (10 epochs)
    # leaves the head's mass of "b" in the cell as much as elsewhere (0.22 of g == "z"): with the rules the mean
    # share of "b" was 0.140
    rng = np.random.default_rng(0)
    n = 3000
    g = np.where(rng.random(n) < 0.4, "z", np.where(rng.random(n) < 0.5, "x", "y"))
    x = rng.normal(size=n)
    p_b = np.where(g == "z", 0.0, 1 / (1 + np.exp(-(x - 0.85))))
    state = np.where(rng.random(n) < p_b, "b", "a")
    w = rng.uniform(0.5, 2.0, n)
    d = pd.DataFrame({"s": state, "g": g, "x": x, "w": w})
    real = float(np.average(d["s"] == "b", weights=w))
    synth = Synthesizer(["s"], ["g", "x"], verbose=False, epochs=10).fit(d, weight_col="w", seed=0)
    assert synth.structural_zeros_[["condition", "value"]].values.tolist() == [["g", "z"]]
    c = torch.as_tensor(synth.condition_encoder_.transform(d[["g", "x"]]), dtype=torch.float32)
    with torch.no_grad():
        probs = synth.model_.pattern_log_prob(c).exp().double().numpy()
    b = synth.structure_.forbidden[0]
    assert abs(np.average(probs[:, b].sum(axis=1), weights=w) - real) < 1e-4
    drawn = synth.generate(pd.concat([d[["g", "x"]]] * 5, ignore_index=True), seed=1)
    assert (drawn.loc[drawn["g"] == "z", "s"] == "a").all()
    assert abs(np.average(drawn["s"] == "b", weights=np.tile(w, 5)) - real) < 0.012  # se 0.0035


def test_a_fit_without_rules_is_not_raked():
    # no cell rules anything out: the model and its draws are those of structural_zeros=False
    rng = np.random.default_rng(1)
    n = 1500
    d = pd.DataFrame({"g": rng.choice(["x", "y"], n), "x": rng.normal(size=n)})
    d["s"] = np.where(rng.random(n) < 0.3, "b", "a")
    on = Synthesizer(["s"], ["g", "x"], verbose=False, epochs=5).fit(d, seed=0)
    off = Synthesizer(["s"], ["g", "x"], verbose=False, epochs=5, structural_zeros=False).fit(d, seed=0)
    assert on.structure_ is None
    for a, b in zip(on.model_.state_dict().values(), off.model_.state_dict().values(), strict=True):
        assert torch.equal(a, b)
