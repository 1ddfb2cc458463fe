"""Structural zeros: a target state that a condition's category never holds is never drawn for it (session 66).

acs12's unemployed have no commute time and its employed always report hours; the pattern head, a softmax given
the conditions, learnt those shares as small, not 0: the default call drew a commute time for 4.6% of the unemployed
and no hours for 0.5% of the employed (training conditions repeated 20 times, seed 0), though no training record of
either holds that state.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from microplex import DataValidationError, ExtrapolationWarning, Synthesizer
from microplex.datasets import load_dataset
from microplex.synthesis._structure import MIN_EXPECTED, fit_rules


def _toy(n: int = 1500, seed: int = 0) -> pd.DataFrame:
    """``hours`` is missing for every ``unemployed`` record and given for every other; ``pay`` is 0 on a third of
    the records whatever the status."""
    rng = np.random.default_rng(seed)
    status = rng.choice(["employed", "unemployed", "retired"], size=n, p=[0.6, 0.15, 0.25])
    hours = np.where(status == "unemployed", np.nan, rng.normal(38, 6, size=n).round())
    pay = np.where(rng.random(n) < 0.33, 0.0, rng.lognormal(10, 0.5, size=n))
    return pd.DataFrame({"status": status, "age": rng.integers(20, 65, size=n).astype(float),
                         "hours": hours, "pay": pay})


@pytest.fixture(scope="module")
def toy_model():
    return Synthesizer(["hours", "pay"], ["status", "age"], epochs=20, verbose=False).fit(_toy(), seed=0)


def test_a_state_no_record_of_a_category_holds_is_never_drawn_for_it(toy_model):
    drawn = toy_model.generate(pd.DataFrame({"status": ["unemployed", "employed"] * 3000, "age": 40.0}), seed=1)
    unemployed = (drawn["status"] == "unemployed").to_numpy()
    assert drawn["hours"][unemployed].isna().all()
    assert drawn["hours"][~unemployed].notna().all()
    # pay's zero is held in every category (a third of the records): not a structural zero
    zero = (drawn["pay"] == 0).to_numpy()
    assert zero[unemployed].mean() > 0.15 and zero[~unemployed].mean() > 0.15
    scores = toy_model.log_prob(pd.DataFrame({"status": ["unemployed", "unemployed"], "age": 40.0,
                                              "hours": [40.0, np.nan], "pay": [0.0, 0.0]}))
    assert scores[0] == -np.inf and np.isfinite(scores[1])


def test_turned_off_the_model_has_no_rules_and_draws_as_before(toy_model):
    off = Synthesizer(["hours", "pay"], ["status", "age"], epochs=20, verbose=False, structural_zeros=False)
    off.fit(_toy(), seed=0)
    assert off.structure_ is None and "rule_columns" not in off.model_.state_dict()
    on = toy_model.model_.state_dict()
    assert toy_model.structure_ is not None and "rule_columns" in on
    # the networks train as without rules: the same weights but the head's output bias, shifted by one bias per
    # pattern after training so that the ruled head keeps the training state shares (session 75); the rules
    # renormalize the head's probabilities
    ruled = {k for k in on if k.startswith("rule_")}
    out = [k for k in on if k.startswith("head.") and k.endswith(".bias")][-1]  # the head's output layer
    assert all(torch.equal(on[k], v) for k, v in off.model_.state_dict().items() if k != out) and set(on) - ruled == set(
        off.model_.state_dict())
    assert not torch.equal(on[out], off.model_.state_dict()[out])
    c = torch.as_tensor(toy_model.condition_encoder_.transform(_toy().head(300)))
    free = toy_model.model_.pattern_log_prob(c, ruled=False)
    with torch.no_grad():
        shifted = torch.log_softmax(off.model_.head(c) + (on[out] - off.model_.state_dict()[out]), dim=1)
    torch.testing.assert_close(free, shifted)
    allowed = torch.isfinite(toy_model.model_.pattern_log_prob(c))
    expected = torch.where(allowed, free - torch.logsumexp(free.masked_fill(~allowed, -torch.inf), 1, keepdim=True),
                           -torch.inf)
    torch.testing.assert_close(toy_model.model_.pattern_log_prob(c), expected)
    assert not allowed.all() and allowed.any(dim=1).all()
    # data without structural zeros: the same model and the same draws as with the rules turned off
    data = _toy().assign(hours=lambda d: d["hours"].fillna(0.0))
    on = Synthesizer(["pay"], ["status", "age"], epochs=3, verbose=False).fit(data, seed=0)
    off = Synthesizer(["pay"], ["status", "age"], epochs=3, verbose=False, structural_zeros=False).fit(data, seed=0)
    assert on.structure_ is None
    conditions = data[["status", "age"]].head(500)
    pd.testing.assert_frame_equal(on.generate(conditions, seed=3), off.generate(conditions, seed=3))


def test_the_rules_count_expected_records_so_a_rare_state_is_not_ruled_out():
    # one discrete target with states 0 (common), 1 (1% overall) and 2; a cell (column 0) of 200 records
    patterns = np.array([[0], [1], [2]])
    n = 2000
    cell = np.zeros(n, dtype=bool)
    cell[:200] = True
    pattern = np.zeros(n, dtype=np.int64)
    pattern[200:220] = 1                    # state 1 only outside the cell: 1% share, 2 expected in it
    pattern[220:1000] = 2                   # state 2 only outside the cell: 39% share, 78 expected in it
    context = cell.astype(np.float32)[:, None]
    columns, _, forbidden = fit_rules(context, [0], [], pattern, patterns, np.ones(n))
    assert columns.tolist() == [0] and forbidden.tolist() == [[False, True, True]]  # tested together
    # state 2 held once in the cell, by a record of weight 0 (outside the population): still unseen there, and
    # ruled out with state 1 as before (session 81: the record used to count as seen, and the state was drawn there)
    pattern[0] = 2
    w = np.ones(n)
    w[0] = 0.0
    assert fit_rules(context, [0], [], pattern, patterns, w).forbidden.tolist() == [[False, True, True]]
    # held there by a record of positive weight: only the rare state is unseen there, not ruled out
    assert fit_rules(context, [0], [], pattern, patterns, np.ones(n)) is None
    # the threshold: a cell whose records expect fewer than MIN_EXPECTED of the unseen states, plus log 2 per state
    # of the target (session 67: the unseen states are a set chosen from them), rules nothing out
    pattern = np.zeros(n, dtype=np.int64)
    pattern[:800] = np.where(np.arange(800) < 20, 1, 2)  # states 1 and 2 together hold 40% of the weight
    needed = MIN_EXPECTED + 3 * np.log(2.0)
    for size, ruled in ((int(needed / 0.40), False), (int(needed / 0.40) + 1, True)):
        small = np.zeros(n, dtype=bool)
        small[1000:1000 + size] = True  # records of state 0 only: 17 expect 6.8 of the others, 18 expect 7.2
        rules = fit_rules(small.astype(np.float32)[:, None], [0], [], pattern, patterns, np.ones(n))
        assert (rules is not None) == ruled


def test_contradicting_conditions_warn_and_draw_without_the_rules():
    rng = np.random.default_rng(2)
    n = 2000
    a = rng.choice(["a1", "a2"], size=n)
    b = np.where(a == "a1", "b0", rng.choice(["b0", "b1"], size=n))  # a1 never with b1
    y = np.where(a == "a1", np.nan, np.where(b == "b1", rng.normal(size=n), np.nan))
    y = np.where((a == "a2") & (b == "b0"), rng.normal(size=n), y)
    data = pd.DataFrame({"a": a, "b": b, "y": y})  # a1: y always missing; b1: y never missing
    synth = Synthesizer(["y"], ["a", "b"], epochs=3, verbose=False).fit(data, seed=0)
    with pytest.warns(ExtrapolationWarning, match="rule out every combination") as caught:
        drawn = synth.generate(pd.DataFrame({"a": ["a1"] * 50 + ["a2"] * 50, "b": "b1"}), seed=1)
    assert [w.message.reason for w in caught if isinstance(w.message, ExtrapolationWarning)] == ["structural"]
    assert "50 of 100 rows" in str(caught[0].message)
    assert drawn["y"][50:].notna().all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        synth.generate(pd.DataFrame({"a": ["a1", "a2"], "b": ["b0", "b1"]}), seed=1)


def test_the_rules_are_saved_loaded_and_checked(toy_model, tmp_path, edit_model_file):
    toy_model.save(tmp_path / "m.mpx")
    loaded = Synthesizer.load(tmp_path / "m.mpx")
    assert loaded.get_params()["structural_zeros"] is None
    np.testing.assert_array_equal(loaded.structure_[0], toy_model.structure_[0])
    conditions = pd.DataFrame({"status": ["unemployed", "employed"] * 50, "age": 30.0})
    pd.testing.assert_frame_equal(loaded.generate(conditions, seed=4), toy_model.generate(conditions, seed=4))
    raw = (tmp_path / "m.mpx").read_bytes()

    def set_column(t):
        t["rule_columns"] = torch.full_like(t["rule_columns"], 99)

    def widen(t):
        t["rule_forbidden"] = torch.ones_like(t["rule_forbidden"])

    for kwargs, match in [
        ({"tensor_fn": lambda t: t.pop("rule_forbidden")}, "come together"),
        ({"tensor_fn": set_column}, "binary inputs"),
        ({"tensor_fn": widen}, "not every one"),
        ({"meta_fn": lambda m: m["params"].update(structural_zeros=False)}, "structural_zeros to False"),
    ]:
        with pytest.raises(DataValidationError, match=match):
            Synthesizer.load(edit_model_file(raw, **kwargs))
    # a file written before structural zeros: no key, no tensors; it loads with the rules off
    def older(t):
        t.pop("rule_columns")
        t.pop("rule_forbidden")
        t.pop("rule_bounds")

    def before(m):
        m["params"].pop("structural_zeros")
        m["format_version"] = 1  # version 2 records every parameter

    old = Synthesizer.load(edit_model_file(raw, meta_fn=before, tensor_fn=older))
    assert old.structure_ is None and old.get_params()["structural_zeros"] is False


def test_not_with_differential_privacy():
    synth = Synthesizer(["hours"], ["status"], epsilon=1.0, structural_zeros=True)
    with pytest.raises(DataValidationError, match="'structural_zeros' parameter cannot be True with 'epsilon'"):
        synth.fit(_toy()[["hours", "status"]].fillna(0.0))
    with pytest.raises(DataValidationError, match="structural_zeros"):
        Synthesizer(["hours"], ["status"], structural_zeros="yes").fit(_toy())


def test_acs12_commute_and_hours_by_employment():
    """The default call on acs12: the unemployed and those out of the labour force never get a commute time, the
    employed always get hours (no training record says otherwise); the employed's missing commute share is kept."""
    acs = load_dataset("acs12").dropna(subset=["income", "edu", "employment"]).reset_index(drop=True)
    conditions = ["age", "gender", "edu", "employment", "race"]
    synth = Synthesizer(["income", "hrs_work", "time_to_work"], conditions, verbose=False).fit(acs, seed=0)
    drawn = synth.generate(pd.concat([acs[conditions]] * 5, ignore_index=True), seed=1)
    by = drawn.groupby("employment")
    commute = by["time_to_work"].apply(lambda s: s.notna().mean())
    hours_missing = by["hrs_work"].apply(lambda s: s.isna().mean())
    assert commute["unemployed"] == 0 and commute["not in labor force"] == 0 and hours_missing["employed"] == 0
    real = acs.loc[acs["employment"] == "employed", "time_to_work"].notna().mean()
    assert abs(commute["employed"] - real) < 0.04


def test_contradicting_rows_match_values_as_the_encoding_does():
    from microplex.synthesis._structure import BINARY, Rules, contradicting_rows
    from microplex.synthesis.transforms import ConditionEncoder

    train = pd.DataFrame({"a": [1, 2, 1, 2], "b": [np.nan, 0.5, 1.0, 1.5]})
    encoder = ConditionEncoder({"a": "categorical", "b": "continuous"}).fit(train, np.ones(4))
    assert encoder.cells() == {0: ("a", 1), 1: ("a", 2), 3: ("b", None)} and encoder.numeric_columns() == {2: "b"}
    # rule 0: code 1 of 'a' rules out patterns 0 and 1; rule 1: a missing 'b' rules out pattern 2
    rules = Rules(np.array([0, 3]), np.array([BINARY, BINARY], dtype=np.float32),
                  np.array([[True, True, False], [False, False, True]]))
    frame = pd.DataFrame({"a": [1.0, 1.0, 2.0, 2.0], "b": [np.nan, 0.5, np.nan, np.nan]})
    # row 0: code 1 (given as 1.0) and 'b' missing: every pattern ruled out
    assert contradicting_rows(frame, rules, encoder) == (1, {"a": 1, "b": None})
    assert contradicting_rows(frame.iloc[1:], rules, encoder) == (0, {})
    assert contradicting_rows(frame.iloc[:0], rules, encoder) == (0, {})
    # a tail of 'b' (its values below 0.75, on the standardized scale; a missing value reads as the mean, 1.0)
    cut = np.float32((0.75 - encoder.stats["b"][0]) / encoder.stats["b"][1])
    tail = Rules(np.array([0, 2]), np.array([BINARY, [-np.inf, cut]], dtype=np.float32),
                 np.array([[True, True, False], [False, False, True]]))
    frame = pd.DataFrame({"a": [1, 1, 1, 2], "b": [0.5, 1.0, np.nan, 0.5]})
    count, cells = contradicting_rows(frame, tail, encoder)
    assert count == 1 and cells["a"] == 1 and cells["b"] == pd.Interval(-np.inf, 0.75, closed="neither")


def test_a_uniform_of_zero_never_draws_a_pattern_of_probability_zero(toy_model, monkeypatch):
    import microplex.synthesis.model as model_module

    conditions = pd.DataFrame({"status": ["unemployed", "employed", "retired"] * 20, "age": 40.0})
    c = torch.as_tensor(toy_model.condition_encoder_.transform(conditions))
    ruled = toy_model.model_.pattern_log_prob(c)
    assert torch.isinf(ruled[:, 0]).any()  # the first pattern is ruled out for some rows: the case
    monkeypatch.setattr(model_module, "uniforms", lambda n, d, *a, **k: torch.zeros(n, d, dtype=k.get("dtype")))
    pattern, _, _ = toy_model.model_.sample(c, torch.Generator().manual_seed(0))
    assert torch.isfinite(ruled.gather(1, pattern[:, None])).all()


def test_the_ruled_entries_are_the_same_in_a_strided_head_output(toy_model):
    conditions = pd.DataFrame({"status": ["unemployed", "employed", "retired"] * 7, "age": 40.0})
    c = torch.as_tensor(toy_model.condition_encoder_.transform(conditions))
    logits = torch.randn(len(c), len(toy_model.patterns_))
    contiguous = toy_model.model_._ruled(logits.clone(), c)
    strided = toy_model.model_._ruled(logits.T.contiguous().T, c)
    assert not logits.T.contiguous().T.is_contiguous()
    torch.testing.assert_close(strided, contiguous)
    assert torch.isinf(contiguous).any() and torch.isfinite(contiguous).any(dim=1).all()


def test_the_rules_found_are_listed_for_review(toy_model, tmp_path):
    table = toy_model.structural_zeros_
    assert list(table.columns) == ["condition", "value", "target", "ruled_out"]
    unemployed = table[(table["condition"] == "status") & (table["value"] == "unemployed")]
    assert unemployed["target"].tolist() == ["hours"] and "missing" not in unemployed["ruled_out"].iloc[0]
    employed = table[(table["value"] == "employed") & (table["target"] == "hours")]
    assert employed["ruled_out"].iloc[0] == ["missing"]
    assert not (table["target"] == "pay").any()  # pay's zero is held everywhere
    toy_model.save(tmp_path / "m.mpx")
    pd.testing.assert_frame_equal(Synthesizer.load(tmp_path / "m.mpx").structural_zeros_, table)
    off = Synthesizer(["pay"], ["status"], epochs=1, verbose=False, structural_zeros=False).fit(_toy(), seed=0)
    assert off.structural_zeros_.empty
