"""Structural zeros on a numeric condition's tail (session 67).

With age a numeric condition (and no category that marks children), the pattern head learnt the step at age 15 as a
smooth one: acs12, targets income, hrs_work and time_to_work given age, gender and race (the default call, seed 0):
45 records per 1,000 drawn with an income below age 15, where acs12 has none, or without one from 15 on; eusilc
persons (income components missing below 16): 17 per 1,000. A tail of a numeric condition is now a cell of its own.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from microplex import DataValidationError, ExtrapolationWarning, Synthesizer
from microplex.datasets import load_dataset
from microplex.synthesis._structure import BINARY, MIN_EVIDENCE_TAIL, MIN_EXPECTED, fit_rules


def test_acs12_children_get_no_income_with_age_a_numeric_condition():
    acs = load_dataset("acs12")
    targets, conditions = ["income", "hrs_work", "time_to_work"], ["age", "gender", "race"]
    synth = Synthesizer(targets, conditions, verbose=False).fit(acs[targets + conditions], seed=0)
    drawn = synth.generate(pd.concat([acs[conditions]] * 3, ignore_index=True), seed=1)
    child = (drawn["age"] < 15).to_numpy()
    assert drawn.loc[child, targets].isna().all().all()  # no training record below 15 holds any of them
    assert drawn.loc[~child, "income"].notna().all()  # nor one from 15 on lacks an income
    # the shares the rules leave alone stay near the data's (hours missing from 15 on: 0.40 in acs12)
    real = acs.loc[acs["age"] >= 15, "hrs_work"].isna().mean()
    assert abs(drawn.loc[~child, "hrs_work"].isna().mean() - real) < 0.05
    table = synth.structural_zeros_
    young = table[(table["condition"] == "age") & (table["value"] == pd.Interval(-np.inf, 14.5, closed="neither"))]
    income = young[young["target"] == "income"]["ruled_out"].iloc[0]
    assert 0.0 in income and "a value" in income and "missing" not in income
    # hours and commute: ruled out below 14.5 or 15.5 (no training record aged 15 of this split holds them either)
    lower = table[(table["condition"] == "age") & (table["value"].map(lambda v: v.left) == -np.inf)]
    assert set(lower["target"]) == set(targets)
    assert all(v.right in (14.5, 15.5) and "a value" in out for v, out in zip(lower["value"], lower["ruled_out"]))
    # the tail's records as the model reads them: standardized age below the threshold's image
    mean, std = synth.condition_encoder_.stats["age"]
    rule = synth.structure_.columns.tolist().index(synth.condition_encoder_.offsets()["age"])
    assert synth.structure_.bounds[rule, 1] == np.float32((14.5 - mean) / std)
    # without the rules, the head's smooth step draws such records
    off = Synthesizer(targets, conditions, verbose=False, structural_zeros=False).fit(acs[targets + conditions], seed=0)
    loose = off.generate(pd.concat([acs[conditions]] * 3, ignore_index=True), seed=1)
    young = (loose["age"] < 15).to_numpy()
    assert loose.loc[young, "income"].notna().mean() + loose.loc[~young, "income"].isna().mean() > 0.01


def _step(n: int, seed: int, rate: float, cut: float = -1.0) -> tuple[np.ndarray, np.ndarray]:
    """``x`` standard normal; state 1 never below ``cut``, at ``rate`` above it."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n).astype(np.float32)
    return x, np.where(x < cut, 0, rng.random(n) < rate).astype(np.int64)


def test_a_step_is_a_tail_rule_and_a_smooth_decline_is_not():
    patterns = np.array([[0], [1]])
    for seed in range(5):
        x, state = _step(2000, seed, 0.3)
        rules = fit_rules(x[:, None], [], [0], state, patterns, np.ones(2000))
        assert rules is not None and len(rules.columns) == 1
        # midway between the lowest value holding state 1 and the value below it
        above = np.min(x[state == 1])
        below = np.max(x[x < above])
        assert above >= -1.0 and rules.bounds[0, 0] == -np.inf and rules.bounds[0, 1] == np.float32((below + above) / 2)
        assert rules.forbidden.tolist() == [[False, True]]
        # the same step the other way round: an upper tail
        upper = fit_rules(-x[:, None], [], [0], state, patterns, np.ones(2000))
        assert upper.bounds[0, 1] == np.inf and upper.bounds[0, 0] == -rules.bounds[0, 1]
        # a rate that falls smoothly to near 0 (logistic, scale 0.3 sd) has no step: the head learns it
        rng = np.random.default_rng(seed)
        smooth = (rng.random(2000) < 1 / (1 + np.exp(x / 0.3))).astype(np.int64)
        assert fit_rules(x[:, None], [], [0], smooth, patterns, np.ones(2000)) is None
    # a step in a small sample: fewer records next to it than the evidence needs (30% of 20 * 0.25 records)
    x, state = _step(300, 0, 0.3, cut=-2.0)
    assert fit_rules(x[:, None], [], [0], state, patterns, np.ones(300)) is None


def test_a_wider_tail_needs_evidence_of_its_own_band():
    """State 0 below 15 only (children); state 2 only from 20, at 5%: the tail below 19.5 rules state 2 out only
    when its own records (15 to 19) and those next to them tell, not on the strength of the children's."""
    patterns = np.array([[0], [1], [2]])

    def data(n):
        rng = np.random.default_rng(0)
        age = rng.integers(0, 80, size=n).astype(np.float32)
        state = np.where(age < 15, 0, np.where((age >= 20) & (rng.random(n) < 0.05), 2, 1))
        return age[:, None], state.astype(np.int64)

    age, state = data(4000)
    rules = fit_rules(age, [], [0], state, patterns, np.ones(4000))
    assert [tuple(b) for b in rules.bounds.tolist()] == [(-np.inf, 14.5), (14.5, np.inf)]
    assert rules.forbidden.tolist() == [[False, True, True], [True, False, False]]
    age, state = data(40000)  # ten times the records: the band tells
    rules = fit_rules(age, [], [0], state, patterns, np.ones(40000))
    assert (-np.inf, 19.5) in [tuple(b) for b in rules.bounds.tolist()]
    assert rules.forbidden[[tuple(b) for b in rules.bounds.tolist()].index((-np.inf, 19.5))].tolist() == [
        False, False, True]


def test_many_rare_states_leave_no_tail_rule_by_chance():
    # 60 states of equal share, whatever x: any tail misses some of them (about 60/e of them in some tail)
    rng = np.random.default_rng(3)
    n = 6000
    x = rng.normal(size=n).astype(np.float32)
    state = rng.integers(0, 60, size=n)
    patterns = np.arange(60)[:, None]
    assert fit_rules(x[:, None], [], [0], state, patterns, np.ones(n)) is None
    assert MIN_EVIDENCE_TAIL == pytest.approx(20 * np.log(2))


def test_many_rare_states_leave_no_category_rule_by_chance():
    """The same for a category's cell: 60 states of equal share whatever the category; in a cell of 120 records
    about 8 states go unseen by chance, 16 records' worth (more than MIN_EXPECTED), a set chosen from 60 states."""
    rng = np.random.default_rng(4)
    n = 6000
    cell = np.zeros(n, dtype=np.float32)
    cell[:120] = 1.0
    state = rng.integers(0, 60, size=n)
    patterns = np.arange(60)[:, None]
    unseen = 60 - len(np.unique(state[:120]))
    assert unseen / 60 * 120 > MIN_EXPECTED  # what the uncorrected test would rule out
    assert fit_rules(cell[:, None], [0], [], state, patterns, np.ones(n)) is None
    # a cell holding one state of the 60 only: ruled, as before
    state[:120] = 0
    rules = fit_rules(cell[:, None], [0], [], state, patterns, np.ones(n))
    assert rules is not None and rules.forbidden[0].sum() == 59


def test_weights_count_as_in_the_other_cells():
    x, state = _step(2000, 0, 0.3)
    patterns = np.array([[0], [1]])
    assert fit_rules(x[:, None], [], [0], state, patterns, np.ones(2000)) is not None
    # a state held in the tail by a record of weight 0 (outside the population) is not seen there: the same rule
    # as without it (session 81: it used to count, and no rule was found); held by a record of positive weight, it is
    seen = state.copy()
    seen[np.argmin(x)] = 1
    w = np.ones(2000)
    w[np.argmin(x)] = 0.0
    alone = fit_rules(x[:, None], [], [0], state, patterns, np.ones(2000))
    zero = fit_rules(x[:, None], [], [0], seen, patterns, w)
    assert zero is not None and zero.bounds.tolist() == alone.bounds.tolist()
    assert zero.forbidden.tolist() == alone.forbidden.tolist()
    assert fit_rules(x[:, None], [], [0], seen, patterns, np.ones(2000)) is None
    # a tail whose weight one record holds is one effective record: no evidence
    w = np.ones(2000)
    w[x < -1.0] = 1e-6
    w[np.argmin(x)] = 1e6
    assert fit_rules(x[:, None], [], [0], state, patterns, w) is None


def _employment(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    """Below 15: status 'none' and no hours; from 15 on: 'employed' (hours always) or 'other' (hours half the time)."""
    rng = np.random.default_rng(seed)
    age = rng.integers(0, 80, size=n).astype(float)
    status = np.where(age < 15, "none", rng.choice(["employed", "other"], size=n))
    given = (status == "employed") | ((status == "other") & (rng.random(n) < 0.5))
    hours = np.where(given, rng.normal(35, 8, size=n).round(), np.nan)
    return pd.DataFrame({"age": age, "status": status, "hours": hours})


@pytest.fixture(scope="module")
def tail_model():
    return Synthesizer(["hours"], ["age", "status"], epochs=5, verbose=False).fit(_employment(), seed=0)


def test_contradicting_cells_of_a_tail_and_a_category_warn(tail_model):
    cells = tail_model.structural_zeros_
    assert ((cells["condition"] == "age") & (cells["value"] == pd.Interval(-np.inf, 14.5, closed="neither"))).any()
    with pytest.warns(ExtrapolationWarning, match="rule out every combination") as caught:
        drawn = tail_model.generate(pd.DataFrame({"age": [10.0, 40.0], "status": "employed"}), seed=1)
    message = str(caught[0].message)
    assert "1 of 2 rows" in message and "'status': 'employed'" in message and "Interval(-inf, 14.5" in message
    assert drawn["hours"].notna().iloc[1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        drawn = tail_model.generate(pd.DataFrame({"age": [10.0, 14.0, 14.4, 15.0, 60.0], "status": "other"}), seed=2)
    assert drawn["hours"].iloc[:3].isna().all()  # 14.4 lies below the threshold, midway between 14 and 15


def test_conditions_of_the_wrong_type_are_refused_before_the_rules_read_them(tail_model):
    # the contradiction check encodes the conditions: a text column must get the numeric check's error first
    bad = pd.DataFrame({"age": ["ten", "forty"], "status": ["employed", "other"]})
    with pytest.raises(DataValidationError, match="'age' must be numeric"):
        tail_model.generate(bad, seed=1)
    with pytest.raises(DataValidationError, match="categories not seen in training"):
        tail_model.generate(pd.DataFrame({"age": [10.0], "status": ["retired"]}), seed=1)


def test_tail_rules_are_saved_loaded_and_checked(tail_model, tmp_path, edit_model_file):
    tail_model.save(tmp_path / "m.mpx")
    loaded = Synthesizer.load(tmp_path / "m.mpx")
    for a, b in zip(loaded.structure_, tail_model.structure_, strict=True):
        np.testing.assert_array_equal(a, b)
    conditions = _employment().head(200)[["age", "status"]]
    pd.testing.assert_frame_equal(loaded.generate(conditions, seed=4), tail_model.generate(conditions, seed=4))
    pd.testing.assert_frame_equal(loaded.structural_zeros_, tail_model.structural_zeros_)
    raw = (tmp_path / "m.mpx").read_bytes()
    tails = np.flatnonzero(tail_model.structure_.bounds[:, 0] != BINARY[0])
    binary = np.flatnonzero(tail_model.structure_.bounds[:, 0] == BINARY[0])
    assert len(tails) and len(binary)

    def set_bound(rows, value, side=None):
        def fn(t):
            bounds = t["rule_bounds"].clone()
            for r in rows:
                if side is None:
                    bounds[r] = torch.tensor(value)
                else:
                    bounds[r, side] = value
            t["rule_bounds"] = bounds
        return fn

    def duplicate(t):
        for name in ("rule_columns", "rule_bounds", "rule_forbidden"):
            t[name] = torch.cat([t[name], t[name][:1]])

    for fn, match in [
        (set_bound(tails[:1], float("nan"), 1), "open tail"),
        (set_bound(tails[:1], [-1.0, 1.0]), "open tail"),
        (set_bound(tails[:1], [-np.inf, np.inf]), "open tail"),
        (set_bound(binary[:1], [-np.inf, 0.5]), "open tail"),
        (lambda t: t.update(rule_bounds=t["rule_bounds"].double()), "float32"),
        (lambda t: t.update(rule_bounds=t["rule_bounds"][:, :1].contiguous()), "float32"),
        (duplicate, "same cell twice"),
        (lambda t: [t.pop("rule_columns"), t.pop("rule_forbidden")], "comes with"),
    ]:
        with pytest.raises(DataValidationError, match=match):
            Synthesizer.load(edit_model_file(raw, tensor_fn=fn))


def test_a_file_of_category_rules_only_loads_without_bounds(tmp_path, edit_model_file):
    """Files written before tails were cells hold no 'rule_bounds': every rule is a binary input's."""
    data = _employment().assign(age=lambda d: np.where(d["status"] == "none", 20.0, d["age"]))  # no step in age
    synth = Synthesizer(["hours"], ["age", "status"], epochs=3, verbose=False).fit(data, seed=0)
    assert synth.structure_ is not None and (synth.structure_.bounds[:, 0] == BINARY[0]).all()
    synth.save(tmp_path / "m.mpx")
    raw = (tmp_path / "m.mpx").read_bytes()
    old = Synthesizer.load(edit_model_file(raw, tensor_fn=lambda t: t.pop("rule_bounds")))
    np.testing.assert_array_equal(old.structure_.bounds, synth.structure_.bounds)
    conditions = data.head(300)[["age", "status"]]
    pd.testing.assert_frame_equal(old.generate(conditions, seed=5), synth.generate(conditions, seed=5))
    # but a tail's rule needs its bounds (a binary input's default, (0.5, inf), would read as a tail)
    tailed = Synthesizer(["hours"], ["age", "status"], epochs=3, verbose=False).fit(_employment(), seed=0)
    tailed.save(tmp_path / "t.mpx")
    with pytest.raises(DataValidationError, match="needs its bounds"):
        Synthesizer.load(edit_model_file((tmp_path / "t.mpx").read_bytes(), tensor_fn=lambda t: t.pop("rule_bounds")))
    assert (tailed.structure_.bounds[:, 0] != BINARY[0]).any()
