"""The DP condition model of several conditions: a tree of noisy two-way tables (``_dp_tree``).

The budget of its two mechanisms against the part the plan gave it (a hand computation), the
exponential mechanism's selection against the maximum spanning tree, the sampler against its own
tables, and a DP fit end to end: the conditions' dependence kept, the audit trail, save/load and a
tampered file.
"""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from microplex import DataValidationError, Synthesizer
from microplex.synthesis import _accountant as acc
from microplex.synthesis import _dp_tree as tree
from microplex.synthesis.serialization import read_archive, write_archive


def test_tree_mechanisms_divide_the_parts_rdp_by_hand():
    part = {"noise_multiplier": 10.0, "delta": 3e-6}
    select, tables = tree.tree_mechanisms(part, edges=4)
    rho = 1 / (2 * 10.0**2)  # the part's zCDP
    eps = math.sqrt(8 * rho / 3 / 4)  # a third of rho over 4 draws of the exponential mechanism (rho = eps^2 / 8)
    assert select["mechanism"] == "exponential" and select["steps"] == 4 and select["sensitivity"] == 1.0
    assert select["noise_multiplier"] == pytest.approx(2 / eps)  # RDP alpha eps^2 / 8 = alpha / (2 (2 / eps)^2)
    assert tables["mechanism"] == "gaussian" and tables["sensitivity"] == pytest.approx(2.0)  # sqrt(4 tables)
    assert tables["noise_multiplier"] == pytest.approx(1 / math.sqrt(2 * rho * 2 / 3))
    orders = acc.ORDERS
    total = sum(acc.rdp_sampled_gaussian(1.0, m["noise_multiplier"], m["steps"], orders) for m in (select, tables))
    assert total == pytest.approx(acc.rdp_sampled_gaussian(1.0, 10.0, 1, orders), rel=1e-12)
    assert select["delta"] + tables["delta"] == pytest.approx(3e-6)
    for m in (select, tables):
        assert m["epsilon"] == pytest.approx(acc.epsilon_spent([m], m["delta"]))


def test_tree_bins_follow_the_noise():
    assert tree.tree_bins(1_284, 15.0) == 6
    assert tree.tree_bins(12_794, 5.0) == 32  # capped
    assert tree.tree_bins(100, 50.0) == 2  # at least two
    assert tree.tree_bins(10_000, 20.0) > tree.tree_bins(10_000, 80.0)


def _chain(n: int, rng: np.random.Generator) -> np.ndarray:
    """Codes of four columns: 0 -> 1 -> 2 strongly dependent, 3 independent of all."""
    a = rng.integers(0, 3, n)
    b = np.where(rng.random(n) < 0.9, a, rng.integers(0, 3, n))
    c = np.where(rng.random(n) < 0.9, b % 2, rng.integers(0, 2, n))
    d = rng.integers(0, 4, n)
    return np.stack([a, b, c, d], axis=1)


def test_selection_with_a_large_budget_is_the_maximum_spanning_tree():
    rng = np.random.default_rng(0)
    codes, sizes = _chain(5_000, rng), [3, 3, 2, 4]
    tables = tree.pair_tables(codes, sizes, np.ones(len(codes)))
    for seed in range(5):
        edges = tree.select_edges(tables, 4, eps=10.0, rng=np.random.default_rng(seed))
        assert set(edges[:2]) == {(0, 1), (1, 2)}  # the two dependent pairs first, every seed
        assert len(edges) == 3 and any(3 in e for e in edges)  # the independent column joined last
    # with almost no budget the choice is close to uniform: some seed picks another first edge
    firsts = {tree.select_edges(tables, 4, eps=1e-9, rng=np.random.default_rng(s))[0]
              for s in range(20)}
    assert len(firsts) > 1


def test_the_sampler_reproduces_its_tables():
    rng = np.random.default_rng(1)
    codes, sizes = _chain(20_000, rng), [3, 3, 2, 4]
    edges = [(0, 1), (2, 1), (3, 0)]  # (2, 1): the table's orientation differs from the tree's
    tables = {(a, b): tree._table(codes, np.ones(len(codes)), a, b, sizes) for a, b in edges}
    model = tree.ConditionTree.from_tables(sizes, 4, edges, tables)
    assert model.order[0] == 0 and model.parent == [-1, 0, 1, 0]
    draws = model.sample(200_000, np.random.default_rng(2))
    for a, b in edges:
        want = tables[(a, b)] / tables[(a, b)].sum()
        got = tree._table(draws, np.ones(len(draws)), a, b, sizes) / len(draws)
        assert np.abs(got - want).max() < 0.005
    # a negative noisy cell counts as 0; an empty parent row draws the child's margin
    t = np.array([[5.0, -3.0], [-1.0, -2.0]])
    cond = tree._conditional(np.clip(t, 0, None))
    assert cond.tolist() == [[1.0, 0.0], [1.0, 0.0]]


# -- a DP fit ---------------------------------------------------------------------------------------
BOUNDS = {"y": (0.0, 100.0), "age": (16, 90), "kids": (0, 10)}
CATS = {"owned": [0, 1], "mortgage": [0, 1], "region": ["n", "s", "e", "w"]}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    n = 3_000
    age = rng.integers(20, 80, n)
    owned = (rng.random(n) < np.clip((age - 20) / 50, 0.1, 0.9)).astype(int)
    mortgage = owned * (rng.random(n) < 0.7)  # no mortgage without a home
    kids = np.where(age < 50, rng.poisson(1.5, n), 0).clip(0, 6)
    region = rng.choice(["n", "s", "e", "w"], n)
    y = np.clip(20 + 0.5 * age + 10 * owned + rng.normal(0, 10, n), 0, 100)
    return pd.DataFrame({"y": y, "age": age, "owned": owned, "mortgage": mortgage, "kids": kids,
                         "region": region})


def _synth(**kw) -> Synthesizer:
    args = dict(condition_model=True, epsilon=8.0, delta=1e-5, epochs=2, hidden_features=(8,), transforms=1,
                verbose=False, public_bounds=BOUNDS, public_categories=CATS)
    args.update(kw)
    return Synthesizer(["y"], ["age", "owned", "mortgage", "kids", "region"], **args)


@pytest.fixture(scope="module")
def fitted(data):
    return _synth().fit(data, seed=0)


def test_a_dp_condition_model_of_several_conditions_is_a_tree(fitted):
    priv = fitted.privacy_
    parts = [m["part"] for m in priv["mechanisms"]]
    assert parts == ["statistics", "training", "conditions.statistics", "conditions.tree_selection",
                     "conditions.tree_tables"]
    assert priv["epsilon"] <= 8.0 and priv["epsilon"] > 8.0 * 0.99  # the joint budget, spent
    assert sum(m["delta"] for m in priv["mechanisms"]) == pytest.approx(1e-5)
    sub = fitted.condition_model_
    assert sub.privacy_["max_grad_norm"] is None and len(sub.history_) == 0  # no DP-SGD
    t = sub.condition_tree_
    assert sorted(t.order) == list(range(5)) and t.parent.count(-1) == 1
    sel = priv["mechanisms"][3]
    assert sel["mechanism"] == "exponential" and sel["steps"] == 4  # four edges join five conditions


def test_the_tree_keeps_the_conditions_dependence(fitted, data):
    out = fitted.sample(20_000, seed=1)
    # a mortgage without a home: none in the data; the tree draws it only from the noise
    assert ((out["owned"] == 0) & (out["mortgage"] == 1)).mean() < 0.03
    real = data[["age", "owned", "kids"]].corr().to_numpy()
    drawn = out[["age", "owned", "kids"]].astype(float).corr().to_numpy()
    assert np.abs(real - drawn).max() < 0.1
    assert out["kids"].between(0, 10).all() and (out["kids"] == out["kids"].round()).all()
    assert out["age"].between(16, 90).all() and set(out["region"]) <= set(CATS["region"])


def test_one_condition_keeps_the_flow(data):
    synth = Synthesizer(["y"], ["age"], condition_model=True, epsilon=4.0, delta=1e-5, epochs=1,
                        hidden_features=(8,), transforms=1, verbose=False,
                        public_bounds={k: BOUNDS[k] for k in ("y", "age")}).fit(data, seed=0)
    assert [m["part"] for m in synth.privacy_["mechanisms"]][2:] == ["conditions.statistics", "conditions.training"]
    assert not hasattr(synth.condition_model_, "condition_tree_")


def test_save_load_and_seeds_reproduce_the_draws(fitted, data, tmp_path):
    a = fitted.sample(3_000, seed=5)
    fitted.save(tmp_path / "m.mpx")
    back = Synthesizer.load(tmp_path / "m.mpx")
    pd.testing.assert_frame_equal(back.sample(3_000, seed=5), a, check_exact=True)
    again = _synth().fit(data, seed=0).sample(3_000, seed=5)
    pd.testing.assert_frame_equal(again, a, check_exact=True)


def _tamper(src, dst, edit):
    meta, tensors, tables = read_archive(src, "microplex.Synthesizer")
    edit(meta, tensors)
    write_archive(dst, meta, tensors, tables)


@pytest.mark.parametrize("edit,match", [
    (lambda m, t: t.__setitem__("condition_model.condition_tree.root",
                                t["condition_model.condition_tree.root"] * 2), "probabilities"),
    (lambda m, t: m["condition_model"]["condition_tree"].__setitem__("bins", 99), "bins"),
    (lambda m, t: m["condition_model"]["condition_tree"].__setitem__(
        "parent", [-1] * len(m["condition_model"]["condition_tree"]["parent"])), "parent|order"),
    (lambda m, t: m["condition_model"]["condition_tree"].__setitem__("sizes", [2, 2, 2, 2, 2]), "code counts"),
    (lambda m, t: t.pop("condition_model.condition_tree.root"), "tensors"),
])
def test_a_tampered_tree_is_refused(fitted, tmp_path, edit, match):
    fitted.save(tmp_path / "m.mpx")
    _tamper(tmp_path / "m.mpx", tmp_path / "bad.mpx", edit)
    with pytest.raises(DataValidationError, match="condition_tree") as info:
        Synthesizer.load(tmp_path / "bad.mpx")
    assert any(w in str(info.value) for w in match.split("|"))


def test_a_tree_outside_a_dp_condition_model_is_refused(fitted, tmp_path):
    fitted.save(tmp_path / "m.mpx")

    def move(meta, tensors):  # the tree moved onto the main model
        meta["condition_tree"] = meta["condition_model"].pop("condition_tree")
        for k in [k for k in tensors if k.startswith("condition_model.condition_tree.")]:
            tensors[k[len("condition_model."):]] = tensors.pop(k)

    _tamper(tmp_path / "m.mpx", tmp_path / "bad.mpx", move)
    with pytest.raises(DataValidationError, match="condition_tree"):
        Synthesizer.load(tmp_path / "bad.mpx")


def test_tree_tensors_are_float64_probabilities(fitted):
    meta, tensors = fitted.condition_model_.condition_tree_.to_parts()
    assert all(v.dtype == torch.float64 for v in tensors.values())
    assert set(meta) == {"sizes", "bins", "order", "parent"}


def test_the_condition_model_itself_draws_from_its_tree(fitted):
    sub = fitted.condition_model_
    a = sub.sample(2_000, seed=3)
    drawn = fitted.sample(2_000, seed=7)
    assert list(a.columns) == list(sub.target_vars)
    assert ((a["owned"] == 0) & (a["mortgage"] == 1)).mean() < 0.03  # the tree's dependence, not an untrained flow
    pd.testing.assert_frame_equal(sub.sample(2_000, seed=3), a)
    assert len(drawn) == 2_000
    with pytest.raises(DataValidationError, match="no density"):
        sub.log_prob(a)


def test_a_noisy_table_is_projected_onto_non_negative_tables_of_its_total():
    noisy = np.array([[100.0, 3.0, -4.0], [50.0, 6.0, -1.0]])
    got = tree.project_table(noisy)
    # by hand: tau = 1.25 (cells above it: 100, 50, 6, 3; their excess sums to 154, the total)
    assert got == pytest.approx(np.array([[98.75, 1.75, 0.0], [48.75, 4.75, 0.0]]))
    assert got.sum() == pytest.approx(noisy.sum()) and (got >= 0).all()
    rng = np.random.default_rng(4)
    for _ in range(20):  # the nearest point: no non-negative table of the same total is closer
        y = rng.normal(5.0, 10.0, (4, 5))
        p = tree.project_table(y)
        if y.sum() <= 0:
            assert (p == 0).all()
            continue
        assert p.sum() == pytest.approx(y.sum()) and (p >= 0).all()
        other = rng.dirichlet(np.ones(20)).reshape(4, 5) * y.sum()
        assert np.sum((p - y) ** 2) <= np.sum((other - y) ** 2) + 1e-9
    clean = np.array([[4.0, 1.0], [2.0, 3.0]])
    assert tree.project_table(clean) == pytest.approx(clean)  # nothing to take back


def test_large_draws_go_in_blocks_of_bounded_memory(fitted, monkeypatch):
    one = fitted.condition_model_.sample(5_000, seed=11)
    small = fitted.condition_model_.sample(1_000, seed=11)
    monkeypatch.setattr(tree, "BLOCK_ROWS", 1_000)  # five blocks from the same generator
    blocks = fitted.condition_model_.sample(5_000, seed=11)
    assert len(blocks) == 5_000 and list(blocks.index) == list(range(5_000))
    pd.testing.assert_frame_equal(blocks, fitted.condition_model_.sample(5_000, seed=11))  # deterministic
    assert blocks.dtypes.equals(one.dtypes)
    pd.testing.assert_frame_equal(fitted.condition_model_.sample(1_000, seed=11), small)  # one block: as before
    assert len(fitted.condition_model_.sample(0, seed=1)) == 0
