"""Tests of HouseholdSynthesizer (issue 7): structure, reproducibility, bad input, real-data bar."""

import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from microplex import DataValidationError, HouseholdSynthesizer, NotFittedError, VariableSpec
from microplex.datasets import load_dataset
from microplex.households._persons import AGE_CATEGORY, age_category
from microplex.households.diagnostics import (
    gini,
    household_summary,
    ks_distance,
    structural_violations,
    tv_distance,
)

HID, W = "db030", "db090"
PY = ["py010n", "py050n", "py090n", "py100n", "py110n", "py120n", "py130n", "py140n"]
HY = ["hy040n", "hy050n", "hy070n", "hy080n", "hy090n", "hy110n"]
HY_MINUS = ["hy130n", "hy145n"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def eusilc():
    return load_dataset("eusilc")


def small_synth(**kw):
    params = dict(household_weight=W, person_id="rb030", size_var="hsize", geography="db040",
                  age_var="age", epochs=3, hidden_features=(16, 16), transforms=1,
                  schema={"pl030": VariableSpec(kind="categorical")})
    params.update(kw)
    return HouseholdSynthesizer(["db040", "hsize", "hy050n", "hy090n"], ["age", "rb090", "pl030", "py010n"],
                                HID, **params)


@pytest.fixture(scope="module")
def small(eusilc):
    return eusilc[eusilc[HID] <= 600].reset_index(drop=True)


@pytest.fixture(scope="module")
def fitted(small):
    return small_synth().fit(small, seed=0)


def test_sample_is_structurally_consistent(fitted):
    households, persons = fitted.sample(300, seed=0)
    assert list(households.columns) == [HID, "db040", "hsize", "hy050n", "hy090n", W]
    assert list(persons.columns) == [HID, "rb030", "age", "rb090", "pl030", "py010n", W]
    assert households[HID].is_unique and persons["rb030"].is_unique
    counts = persons.groupby(HID).size()
    assert (counts.reindex(households[HID]).to_numpy() == households.hsize.to_numpy()).all()
    # every household has an adult; incomes are "not applicable" (NaN) exactly for children
    assert persons.groupby(HID).age.max().min() >= 16
    child = persons.age < 16
    assert persons.loc[child, ["py010n", "pl030"]].isna().all().all()
    assert persons.loc[~child, ["py010n", "pl030"]].notna().all().all()
    # dtypes are kept; the weights add up to the training households' total
    assert persons.age.dtype == np.int64 and persons.rb090.dtype == households.db040.dtype
    assert set(persons.rb090) <= {"male", "female"}
    assert households[W].sum() == pytest.approx(fitted.total_weight_)
    assert structural_violations(persons.merge(households[[HID, "hsize"]]), HID, "hsize", "age") == 0


def test_members_come_oldest_first(fitted):
    _, persons = fitted.sample(200, seed=3)
    assert (persons.groupby(HID).age.diff().dropna() <= 0).all()


def test_integer_ages_enter_the_age_dependent_models_as_categories(fitted):
    assert fitted.applicable_models_
    for limit, model in fitted.applicable_models_:
        assert AGE_CATEGORY in model.condition_vars
        assert min(int(a) for a in model.condition_encoder_.stats[AGE_CATEGORY]) >= limit
    # a drawn age not seen in training becomes the nearest training age
    assert age_category([16, 19, 90, 54.6, 3], np.array([16, 18, 55, 80])).tolist() == ["16", "18", "80", "55", "16"]


def test_same_seed_same_output_and_other_seed_differs(fitted):
    h1, p1 = fitted.sample(50, seed=7)
    h2, p2 = fitted.sample(50, seed=7)
    pd.testing.assert_frame_equal(h1, h2, check_exact=True)
    pd.testing.assert_frame_equal(p1, p2, check_exact=True)
    _, p3 = fitted.sample(50, seed=8)
    assert not p3.age.equals(p1.age)


def test_same_seed_gives_identical_fits(small):
    a = small_synth(epochs=1).fit(small, seed=1).sample(20, seed=0)[1]
    b = small_synth(epochs=1).fit(small, seed=1).sample(20, seed=0)[1]
    pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_generate_fills_given_households(fitted, small):
    given = small.groupby(HID).first().reset_index()[[HID, "db040", "hsize", "hy050n", "hy090n", W]].head(40)
    households, persons = fitted.generate(given, seed=0)
    pd.testing.assert_frame_equal(households, given)
    counts = persons.groupby(HID).size().reindex(given[HID]).to_numpy()
    assert (counts == given.hsize.to_numpy()).all()
    assert (persons[W].to_numpy() == persons[HID].map(given.set_index(HID)[W]).to_numpy()).all()


def test_save_load_round_trip(fitted, tmp_path):
    path = tmp_path / "hh.mpx"
    fitted.save(path)
    loaded = HouseholdSynthesizer.load(path)
    for a, b in zip(fitted.sample(30, seed=2), loaded.sample(30, seed=2), strict=True):
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    loaded.person_models_["head"].save(tmp_path / "s.mpx")
    with pytest.raises(DataValidationError, match="expected 'microplex.HouseholdSynthesizer'"):
        HouseholdSynthesizer.load(tmp_path / "s.mpx")


def test_the_model_and_its_file_keep_no_training_row(fitted, tmp_path):
    """The inner models are only given their conditions: they keep their numeric ranges, no training row or
    weight, in memory or in the file (which holds no conditions table); a Synthesizer file of such a model
    loads by itself and draws the same."""
    import json
    import zipfile

    path = tmp_path / "hh.mpx"
    fitted.save(path)
    with zipfile.ZipFile(path) as zf:
        assert zf.namelist() == ["metadata.json", "weights.safetensors"]
        models = json.loads(zf.read("metadata.json"))["models"]
    inner = [fitted.household_model_, *fitted.person_models_.values(), *(m for _, m in fitted.applicable_models_)]
    for model in inner:
        assert not hasattr(model, "training_conditions_") and not hasattr(model, "training_weights_")
    head = fitted.person_models_["head"]
    numeric = [n for n in head.condition_vars if head.kinds_[n] != "categorical"]
    assert numeric and sorted(models["person_head"]["condition_ranges"]) == sorted(numeric)
    with pytest.raises(DataValidationError, match="keeps no training conditions to resample"):
        head.sample(5)
    head.save(tmp_path / "head.mpx")
    again = type(head).load(tmp_path / "head.mpx")
    rows = pd.DataFrame({n: [head._condition_ranges()[n][0]] * 3 if n in numeric else
                         [head.condition_encoder_.stats[n][0]] * 3 for n in head.condition_vars})
    pd.testing.assert_frame_equal(head.generate(rows, seed=1), again.generate(rows, seed=1))
    assert again._condition_ranges() == head._condition_ranges()


def test_late_household_variables_follow_the_persons(small, tmp_path):
    hs = small_synth(epochs=1, late_household_vars=["hy050n"]).fit(small, seed=0)
    households, persons = hs.sample(40, seed=0)
    assert list(households.columns) == [HID, "db040", "hsize", "hy050n", "hy090n", W]
    assert households.hy050n.notna().all() and len(persons) == households.hsize.sum()
    given = households.drop(columns="hy050n")
    assert "hy050n" in hs.generate(given, seed=0)[0]
    hs.save(tmp_path / "late.mpx")
    pd.testing.assert_frame_equal(HouseholdSynthesizer.load(tmp_path / "late.mpx").sample(40, seed=0)[0], households)
    with pytest.raises(DataValidationError, match="'late_household_vars' parameter"):
        small_synth(late_household_vars=["hsize"]).fit(small)


def test_without_age_or_size_column(small):
    hs = HouseholdSynthesizer(["db040", "hy090n"], ["rb090"], HID, epochs=1,
                              hidden_features=(8,), transforms=1)
    households, persons = hs.fit(small, seed=0).sample(20, seed=0)
    assert "n_persons" in households
    assert (persons.groupby(HID).size().reindex(households[HID]).to_numpy() == households.n_persons).all()


def test_not_fitted():
    with pytest.raises(NotFittedError, match="not fitted"):
        small_synth().sample(3)


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda d: d.assign(db030=d.db030.where(d.index != 5)), r"1 persons have no household id .*rows 5"),
        (lambda d: d.assign(hsize=d.hsize.where(d.index != 0, 9)), r"'hsize' varies within household 1 "),
        (lambda d: d.assign(db040=d.db040.where(d.index != 1, "Vienna")),
         r"'db040' varies within household 1 \(household 1 has 'Tyrol', 'Vienna'\)"),
        (lambda d: d.assign(hsize=d.hsize.where(d.db030 != 2, 0)), r"Household 2 has size 0 \(column 'hsize'\)"),
        (lambda d: d.assign(hsize=d.hsize.where(d.db030 != 2, 7)), r"Household 2 has hsize=7 but \d person records"),
        (lambda d: d.assign(py010n=d.py010n.where(d.index != 0)), r"'py010n' has \d+ missing values that are not exactly"),
        (lambda d: d.assign(hy050n=d.hy050n.where(d.db030 != 3)), r"'hy050n' is missing in household 3"),
        (lambda d: d.drop(columns="db030"), r"missing columns \['db030'\]"),
    ],
)
def test_bad_input_names_the_household(small, mutate, match):
    with pytest.raises(DataValidationError, match=match):
        small_synth(epochs=1).fit(mutate(small.copy()))


def test_bad_parameters_and_given_households(fitted, small):
    with pytest.raises(DataValidationError, match="'age_var' parameter must be one of person_vars"):
        small_synth(age_var="rb090x").fit(small)
    with pytest.raises(DataValidationError, match="both household and person variables"):
        HouseholdSynthesizer(["db040", "age"], ["age"], HID).fit(small)
    given = pd.DataFrame({HID: [4, 5], "db040": ["Tyrol", "Vienna"], "hsize": [2, 0], "hy050n": 0.0, "hy090n": 0.0})
    with pytest.raises(DataValidationError, match=r"Household 5 has size 0"):
        fitted.generate(given)


# -- real-data bar (issue 7): eusilc, fit on 80% of households, sample as many as held out ------------


def _split(df, seed):
    ids = df[HID].unique()
    test_ids = np.random.default_rng(seed).choice(ids, size=int(round(0.2 * len(ids))), replace=False)
    held = df[HID].isin(test_ids)
    return df[~held].reset_index(drop=True), df[held].reset_index(drop=True)


def _metrics(a, b):
    def summary(p):
        s = household_summary(p, HID, "age", earner_var="py010n", person_income=PY, household_income=HY,
                              household_deductions=HY_MINUS)
        return s.join(p.groupby(HID, sort=False)[["db040", "hsize", W]].first())

    sa, sb = summary(a), summary(b)
    ga, gb = sa[sa["size"] >= 2], sb[sb["size"] >= 2]
    out = {
        "hsize_tv": tv_distance(sa.hsize, sb.hsize, sa[W], sb[W]),
        "region_tv": tv_distance(sa.db040, sb.db040, sa[W], sb[W]),
        "age_ks": ks_distance(a.age, b.age, a[W], b[W]),
        "age_gap_ks": ks_distance(ga.age_gap, gb.age_gap, ga[W], gb[W]),
        "eq_income_ks": ks_distance(sa.eq_income, sb.eq_income, sa[W], sb[W]),
        "gini": gini(sa.eq_income, sa[W]),
        "violations": structural_violations(a, HID, "hsize", "age"),
    }
    for label, lo, hi in (("0", 0, 0), ("1", 1, 1), ("2+", 2, 99)):
        out[f"earners_{label}"] = np.average(sa.earners.between(lo, hi), weights=sa[W])
    return out


BAR = {"hsize_tv": 0.015, "region_tv": 0.015, "age_ks": 0.02, "age_gap_ks": 0.03, "eq_income_ks": 0.03}


@pytest.fixture(scope="module")
def real_bar(eusilc):
    train, held = _split(eusilc, 0)
    hs = HouseholdSynthesizer(
        ["db040", "hsize", *HY, *HY_MINUS], ["age", "rb090", "pl030", "pb220a", *PY], HID,
        household_weight=W, person_id="rb030", size_var="hsize", geography="db040", age_var="age",
        schema={"pl030": VariableSpec(kind="categorical")},
    ).fit(train, seed=0)
    # Five times as many households as held out: the test checks the model, not the Monte-Carlo
    # noise of one small draw (benchmarks/bench_households.py follows the protocol).
    households, persons = hs.sample(5 * held[HID].nunique(), seed=0)
    synthetic = persons.merge(households.drop(columns=W), on=HID)
    # Broken model: persons drawn independently of their household (shuffled across households).
    rng = np.random.default_rng(0)
    broken = train.copy()
    broken[["age", "rb090", *PY]] = broken[["age", "rb090", *PY]].to_numpy()[rng.permutation(len(train))]
    m = {"synthetic": _metrics(synthetic, held), "floor": _metrics(train, held), "broken": _metrics(broken, held),
         "held": _metrics(held, held)}
    return m


@pytest.mark.parametrize("metric", list(BAR))
def test_real_data_distances_within_floor_plus_margin(real_bar, metric):
    syn, floor = real_bar["synthetic"][metric], real_bar["floor"][metric]
    assert syn <= floor + BAR[metric], (metric, syn, floor)


def test_real_data_equivalized_income_is_far_closer_than_a_broken_model(real_bar):
    # Persons drawn independently of their household are at floor + 0.14; the 9 benchmark fits
    # are within floor + 0.010 at 5x draws (benchmarks/results/households.md).
    syn, floor, broken = (real_bar[k]["eq_income_ks"] for k in ("synthetic", "floor", "broken"))
    assert syn <= floor + 0.06 < broken, (syn, floor, broken)


@pytest.mark.parametrize("share", ["earners_0", "earners_1", "earners_2+"])
def test_real_data_earner_shares(real_bar, share):
    held, floor = real_bar["held"][share], abs(real_bar["floor"][share] - real_bar["held"][share])
    assert abs(real_bar["synthetic"][share] - held) <= floor + 0.02
    # persons drawn independently of their household miss the number of earners
    assert max(abs(real_bar["broken"][s] - real_bar["held"][s]) for s in ("earners_0", "earners_2+")) > floor + 0.02


def test_real_data_gini(real_bar):
    assert abs(real_bar["synthetic"]["gini"] - real_bar["held"]["gini"]) <= 0.02


def test_real_data_structure(real_bar):
    assert real_bar["synthetic"]["violations"] <= real_bar["held"]["violations"]
    assert real_bar["broken"]["violations"] > real_bar["held"]["violations"]


def test_broken_model_fails_the_age_gap_bar(real_bar):
    assert real_bar["broken"]["age_gap_ks"] > real_bar["floor"]["age_gap_ks"] + BAR["age_gap_ks"]


# -- issue 15: the documented call (no geography, no size_var) gives the right population ----------

#: The call of docs/households.md (epochs reduced for CI: sizes are allotted from the training
#: shares whatever the training length; region shares are at floor + 0.007 from 20 epochs on).
DOCUMENTED = dict(
    household_vars=["db040", "hsize", "hy040n", "hy050n"],
    person_vars=["age", "rb090", "pl030", "py010n", "py050n"],
    household_id="db030", household_weight="db090", age_var="age",
)


@pytest.fixture(scope="module")
def documented(eusilc):
    train, held = _split(eusilc, 0)
    hs = HouseholdSynthesizer(**DOCUMENTED, epochs=20).fit(train, seed=0)
    households, persons = hs.sample(5 * held[HID].nunique(), seed=0)
    return hs, households, persons, train.groupby(HID).first(), held.groupby(HID).first()


def test_documented_call_household_sizes_and_regions_at_the_floor(documented):
    # Before the fix: household-size TV 0.29 and region TV 0.21 against floors of 0.022 and 0.045
    # (an unconditional household model left sizes and regions near uniform).
    hs, households, _, train, held = documented
    for col in ("hsize", "db040"):
        syn = tv_distance(households[col], held[col], households[W], held[W])
        floor = tv_distance(train[col], held[col], train[W], held[W])
        assert syn <= floor + 0.015, (col, syn, floor)


def test_documented_call_sizes_are_the_person_counts(documented):
    hs, households, persons, _, _ = documented
    assert hs.size_col_ == "hsize" and "n_persons" not in households
    counts = persons.groupby(HID).size().reindex(households[HID]).to_numpy()
    assert (counts == households.hsize.to_numpy()).all()


def test_documented_call_without_weights_follows_the_unweighted_shares(small):
    hs = HouseholdSynthesizer(**{**DOCUMENTED, "household_weight": None}, epochs=1, hidden_features=(8,),
                              transforms=1, max_redraws=0).fit(small, seed=0)
    households, _ = hs.sample(1000, seed=0)
    real = small.groupby(HID).hsize.first()
    assert tv_distance(households.hsize, real) < 0.01


# -- issue 15: a model file is untrusted data -------------------------------------------------------


def _rewrite(src, dst, meta=None, tensors=None, members=None):
    """Copies the model file ``src`` to ``dst`` with its metadata / tensors / members changed."""
    import json
    import zipfile

    from safetensors.torch import load as load_tensors
    from safetensors.torch import save as save_tensors

    with zipfile.ZipFile(src) as zf:
        parts = {n: zf.read(n) for n in zf.namelist()}
    if meta is not None:
        m = json.loads(parts["metadata.json"])
        meta(m)
        parts["metadata.json"] = json.dumps(m).encode()
    if tensors is not None:
        t = dict(load_tensors(parts["weights.safetensors"]))
        tensors(t)
        parts["weights.safetensors"] = save_tensors(t)
    if members is not None:
        members(parts)
    with zipfile.ZipFile(dst, "w") as zf:
        for n, data in parts.items():
            zf.writestr(n, data)


def _rename_model(m, old, new):
    m["models"][new] = m["models"].pop(old)


def _set(path, value):
    def change(m):
        *keys, last = path
        for k in keys:
            m = m[k]
        m[last] = value
    return change


def _del(path):
    def change(m):
        *keys, last = path
        for k in keys:
            m = m[k]
        del m[last]
    return change


def _rename_tensors(prefix_old, prefix_new):
    def change(t):
        for k in [k for k in t if k.startswith(prefix_old)]:
            t[prefix_new + k[len(prefix_old):]] = t.pop(k)
    return change


#: A small Parquet table, as a tampered file would add one.
_PARQUET = (lambda buf: (pd.DataFrame({"a": [1.0], "__weight__": [1.0]}).to_parquet(buf), buf.getvalue())[1])(
    __import__("io").BytesIO())

#: An absolute path a tampered file names (unique to this run, so an earlier run cannot mask a write).
EVIL = f"{tempfile.gettempdir()}/microplex_evil_{os.getpid()}"

TAMPERED = {
    "member name with ../": dict(meta=lambda m: _rename_model(m, "person_head", "../../evil")),
    "absolute member name": dict(meta=lambda m: _rename_model(m, "household", EVIL)),
    "huge member name": dict(meta=lambda m: _rename_model(m, "household", "x" * 100_000)),
    "missing inner model": dict(meta=_del(["models", "person_head"])),
    "extra inner model": dict(meta=lambda m: m["models"].update(person_evil=m["models"]["household"])),
    "tensor of an unknown model": dict(tensors=_rename_tensors("household/", "../evil/")),
    "missing tensors": dict(tensors=_rename_tensors("person_head/", "person_member/x")),
    "tensor of the wrong shape": dict(tensors=lambda t: t.update(
        {k: t[k][:1] for k in [k for k in t if k.startswith("person_head/")][:1]})),
    "epochs of the wrong type": dict(meta=_set(["params", "epochs"], "lots")),
    "unknown parameter": dict(meta=_set(["params", "evil"], 1)),
    "unknown inner parameter": dict(meta=_set(["params", "synthesizer_params"], {"evil": 1})),
    "bad inner parameter": dict(meta=_set(["params", "synthesizer_params"], {"bins": 10**9})),
    "missing parameter": dict(meta=_del(["params", "household_id"])),
    "household_vars not a list": dict(meta=_set(["params", "household_vars"], "db040")),
    "person_vars with a non-string": dict(meta=_set(["params", "person_vars"], ["age", 3])),
    "size column not a string": dict(meta=_set(["size_col"], 5)),
    "huge max_size": dict(meta=_set(["max_size"], 10**12)),
    "total weight not a number": dict(meta=_set(["total_weight"], "NaN")),
    "shares not summing to 1": dict(meta=_set(["geography_shares", 1, 0], 5.0)),
    "huge size shares": dict(meta=_set(["size_shares", 0, 0], 10**15)),
    "person dtypes not dtypes": dict(meta=_set(["person_dtypes", "age"], "evil")),
    "context column unknown": dict(meta=lambda m: m["context_cols"].append("../evil")),
    "inner metadata tampered": dict(meta=_set(["models", "household", "patterns"], [[0, 1, 2]])),
    "inner metadata wrong type": dict(meta=_set(["models", "person_head"], "evil")),
    "metadata not an object": dict(members=lambda p: p.update({"metadata.json": b'["format"]'})),
    "metadata not JSON": dict(members=lambda p: p.update({"metadata.json": b"{not json"})),
    "no weights": dict(members=lambda p: p.pop("weights.safetensors")),
    "table named like a path": dict(members=lambda p: p.update({"../../evil.parquet": _PARQUET})),
    # the inner models keep their conditions' ranges and no table (drop_training_conditions)
    "inner conditions table added": dict(members=lambda p: p.update({"person_head/conditions.parquet": _PARQUET})),
    "inner ranges tampered": dict(meta=lambda m: m["models"]["person_head"].update(condition_ranges={"evil": [0, 1]})),
    "inner ranges not finite": dict(meta=lambda m: m["models"]["person_head"]["condition_ranges"].update(
        {k: [0, float("inf")] for k in m["models"]["person_head"]["condition_ranges"]})),
}


def _listing():
    """Files of the temporary folder and the folders above it (where '../../x' would land)."""
    folders = {Path(tempfile.gettempdir()).resolve(), *Path(tempfile.gettempdir()).resolve().parents}
    return {str(p) for d in folders for p in d.glob("*evil*")}


@pytest.mark.parametrize("case", list(TAMPERED))
def test_tampered_model_file_raises_one_clear_error_and_writes_nothing(fitted, tmp_path, monkeypatch, case):
    good = tmp_path / "good.mpx"
    fitted.save(good)
    bad = tmp_path / "bad.mpx"
    _rewrite(good, bad, **TAMPERED[case])
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    before = set(tmp_path.rglob("*"))
    temp_before = _listing()
    with pytest.raises(DataValidationError, match=r"'[^']*bad\.mpx'"):
        HouseholdSynthesizer.load(bad)
    assert set(tmp_path.rglob("*")) == before
    assert not any("evil" in name for name in _listing() - temp_before)
    assert not os.path.exists(EVIL + ".mpx")


def test_truncated_model_file_raises(fitted, tmp_path):
    path = tmp_path / "hh.mpx"
    fitted.save(path)
    data = path.read_bytes()
    for cut in (0, 10, len(data) // 2, len(data) - 1):
        (tmp_path / "cut.mpx").write_bytes(data[:cut])
        with pytest.raises(DataValidationError, match=r"cut\.mpx"):
            HouseholdSynthesizer.load(tmp_path / "cut.mpx")


def test_load_writes_no_temporary_file(fitted, tmp_path, monkeypatch):
    path = tmp_path / "hh.mpx"
    fitted.save(path)

    def refuse(*args, **kwargs):
        raise AssertionError("load must not create temporary files")

    monkeypatch.setattr(tempfile, "TemporaryDirectory", refuse)
    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    loaded = HouseholdSynthesizer.load(path)
    pd.testing.assert_frame_equal(loaded.sample(10, seed=0)[1], fitted.sample(10, seed=0)[1])


# -- issue 15: every argument is validated before any work -------------------------------------------


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(epochs=2.5), r"The 'epochs' parameter must be 'auto' or an int >= 1\. Got 2\.5 instead\."),
        (dict(epochs=0), r"The 'epochs' parameter must be 'auto' or an int >= 1\. Got 0 instead\."),
        (dict(batch_size=True), r"The 'batch_size' parameter must be an int >= 1\. Got True"),
        (dict(transforms="3"), r"The 'transforms' parameter must be an int in \[1, 64\]"),
        # the inner models' parameters are checked by the Synthesizer's own rules
        (dict(hidden_features=(0,)), r"The 'hidden_features' parameter must be None or a non-empty tuple of"),
        (dict(hidden_features=16), r"The 'hidden_features' parameter must be None or a non-empty tuple of"),
        (dict(learning_rate=0), r"The 'learning_rate' parameter must be a finite float in \(0, 1000\]\. Got 0"),
        (dict(synthesizer_params={"bins": 1}), r"The 'bins' parameter must be an int in \[2, 256\]\. Got 1"),
        (dict(synthesizer_params={"epochs": 3}), r"'synthesizer_params' parameter names \['epochs'\]"),
        (dict(synthesizer_params=[("bins", 4)]), r"The 'synthesizer_params' parameter must be a mapping"),
        (dict(weight_decay=-1.0), r"The 'weight_decay' parameter must be a finite float in \[0, 1e\+06\]"),
        (dict(validation_fraction=0.5), r"The 'validation_fraction' parameter must be a finite float in \[0, 0\.5\)"),
        (dict(patience=1.5), r"The 'patience' parameter must be an int >= 1"),
        (dict(max_redraws=-1), r"The 'max_redraws' parameter must be an int in \[0, 100000\]"),
        (dict(adult_age=float("nan")), r"The 'adult_age' parameter must be a finite float\. Got nan"),
        (dict(flow="realnvp"), r"The 'flow' parameter must be one of 'maf', 'nsf'\. Got 'realnvp'"),
        (dict(verbose="no"), r"The 'verbose' parameter must be a bool\. Got 'no'"),
        (dict(household_weight=3), r"The 'household_weight' parameter must be a column name \(non-empty str\) or None"),
        (dict(person_id=["rb030"]), r"The 'person_id' parameter must be a column name"),
        (dict(geography=""), r"The 'geography' parameter must be a column name"),
        (dict(age_var="rb030"), r"The 'age_var' parameter must be one of person_vars"),
        (dict(size_var="db040", geography="db040"), r"'size_var' and 'geography' parameters must name different"),
        (dict(person_id="db030"), r"'household_id' \('db030'\), 'person_id' \('db030'\).* must name different columns"),
        (dict(person_id="age"), r"Id and weight columns cannot also be modelled variables: \['age'\]"),
        (dict(schema={"age": "integer"}), r"The 'schema' parameter must be a mapping of column names"),
        (dict(schema={"nope": VariableSpec()}), r"'schema' parameter names columns that are not .*\['nope'\]"),
        (dict(late_household_vars="hy050n"), r"The 'late_household_vars' parameter must be a list of distinct"),
    ],
)
def test_bad_parameters_raise_before_any_work(small, kwargs, match):
    with pytest.raises(DataValidationError, match=match):
        small_synth(**kwargs).fit(small)


def _small_params(**kw):
    params = dict(household_weight=W, age_var="age", epochs=1, hidden_features=(16, 16), transforms=1, verbose=False)
    params.update(kw)
    return params


@pytest.mark.parametrize("column", ["region", "size plus one"])
def test_a_household_variable_named_like_the_derived_size_is_refused(eusilc, column):
    """Before: a household variable called 'n_persons' (the name of the derived size) was overwritten with
    the person counts: its regions or values were gone from the draws, without a word."""
    df = eusilc[eusilc[HID] <= 150]
    d = df.assign(n_persons=df["db040"] if column == "region" else df["hsize"] + 1)
    hh_vars = ["n_persons", "hy050n"] if column == "region" else ["db040", "n_persons"]
    geo = "n_persons" if column == "region" else "db040"
    with pytest.raises(DataValidationError, match=r"Household variable 'n_persons' is not the number of person "
                                                  r"records .* name the size column with 'size_var'"):
        HouseholdSynthesizer(hh_vars, ["age", "rb090"], HID, geography=geo, **_small_params()).fit(d, seed=0)


def test_generate_checks_the_late_household_variables_it_is_given(eusilc):
    """Before: a late household variable given with missing values or as text came back so (NaN, 'abc')."""
    df = eusilc[eusilc[HID] <= 150]
    hs = HouseholdSynthesizer(["db040", "hsize", "hy050n"], ["age", "rb090"], HID, late_household_vars=["hy050n"],
                              **_small_params()).fit(df, seed=0)
    given = df.groupby(HID).first().reset_index()[[HID, "db040", "hsize", "hy050n", W]].head(3)
    assert hs.generate(given, seed=1)[0]["hy050n"].tolist() == given["hy050n"].tolist()  # kept as given
    with pytest.raises(DataValidationError, match=r"Household variable 'hy050n' is missing in household"):
        hs.generate(given.assign(hy050n=[np.nan, 1.0, 2.0]), seed=1)
    with pytest.raises(DataValidationError, match=r"Household variable 'hy050n' must be numeric, as in training"):
        hs.generate(given.assign(hy050n="abc"), seed=1)
    with pytest.raises(DataValidationError, match=r"1 rows of 'households' have no household id"):
        hs.generate(given.assign(**{HID: [1.0, np.nan, 3.0]}), seed=1)


@pytest.mark.parametrize("first", [True, False])
def test_a_missing_age_is_named_as_the_age_column(eusilc, first):
    """Before: "Person variable 'age' has 1 missing values ... (set 'age_var')" with age_var set, or, with the
    age listed later, a false message about another column ("observed from age nan on ... for 0 persons")."""
    df = eusilc[eusilc[HID] <= 150]
    d = df.assign(age=df["age"].astype(float))
    d.loc[d.index[3], "age"] = np.nan
    p_vars = ["age", "rb090", "py010n"] if first else ["py010n", "age", "rb090"]
    with pytest.raises(DataValidationError, match=r"The 'age_var' column 'age' has 1 missing values; an age must "
                                                  r"be given for every person"):
        HouseholdSynthesizer(["db040", "hsize"], p_vars, HID, **_small_params()).fit(d, seed=0)


def test_two_households_of_unequal_weight_are_not_called_one_record(eusilc):
    """Before: "puts almost all the weight on one record (Kish effective sample size 2, ...)" for weights 504.6
    and 493.4 (effective size 1.9999, rounded to 2 in a message that refused it for being below 2)."""
    two = eusilc[eusilc[HID] <= 2]
    with pytest.raises(DataValidationError, match=r"puts its weight on too few records \(Kish effective sample size "
                                                  r"1\.999\d*, 2 records with positive weight\)"):
        HouseholdSynthesizer(["db040", "hsize"], ["age", "rb090"], HID, **_small_params()).fit(two, seed=0)


@pytest.mark.parametrize("size_var", ["hsize", None])
def test_one_person_households_in_several_areas_are_named(eusilc, size_var):
    """Before: "Target column 'n_persons' is constant" (an internal column) or "'hsize' is constant", from the
    household model that draws the size given the area."""
    one = eusilc[eusilc["hsize"] == 1].head(200).reset_index(drop=True)
    hh_vars = ["db040", "hsize"] if size_var else ["db040"]
    hs = HouseholdSynthesizer(hh_vars, ["age", "rb090"], HID, household_weight=W, person_id="rb030", size_var=size_var,
                              geography="db040", age_var="age", epochs=1)
    name = size_var or "n_persons"
    with pytest.raises(DataValidationError, match=rf"Every household has 1 person record\(s\) \('{name}' is constant\), "
                                                  r"while the geography 'db040' varies.*use Synthesizer"):
        hs.fit(one, seed=0)


@pytest.mark.parametrize(
    "args, match",
    [
        ((["db040", "db040"], ["age"], HID), r"The 'household_vars' parameter must be a non-empty list of distinct"),
        (("db040", ["age"], HID), r"The 'household_vars' parameter must be a non-empty list of distinct"),
        ((["db040"], [], HID), r"The 'person_vars' parameter must be a non-empty list of distinct"),
        ((["db040"], ["age", 3], HID), r"The 'person_vars' parameter must be a non-empty list of distinct"),
        ((["db040"], ["age"], 5), r"The 'household_id' parameter must be a column name \(non-empty str\)\. Got 5"),
        ((["db040"], ["age"], None), r"The 'household_id' parameter must be a column name"),
        ((["db040", "__w__"], ["age"], HID), r"reserved\. Got \['__w__'\]"),
    ],
)
def test_bad_column_arguments_raise(small, args, match):
    with pytest.raises(DataValidationError, match=match):
        HouseholdSynthesizer(*args).fit(small)


def test_bad_fit_data_raise(small):
    with pytest.raises(DataValidationError, match=r"The 'seed' parameter must be an int in \[0, 2\*\*64 - 1\]"):
        small_synth(epochs=1).fit(small, seed=-1)
    with pytest.raises(DataValidationError, match=r"Household variable 'db090' varies within household 1 "):
        small_synth(epochs=1).fit(small.assign(db090=small.db090.where(small.index != 0, 1.0)))
    doubled = pd.concat([small, small[["age"]]], axis=1)
    with pytest.raises(DataValidationError, match=r"'persons' has duplicated columns \['age'\]"):
        small_synth(epochs=1).fit(doubled)
    with pytest.raises(DataValidationError, match=r"The 'age_var' column 'age' must be numeric"):
        small_synth(epochs=1).fit(small.assign(age=small.age.astype(str)))
    with pytest.raises(DataValidationError, match=r"The 'size_var' column 'hsize' must be numeric"):
        small_synth(epochs=1).fit(small.assign(hsize=small.hsize.astype(str)))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n_households=2.5), r"The 'n_households' parameter must be an int >= 0\. Got 2\.5 instead\."),
        (dict(n_households="3"), r"The 'n_households' parameter must be an int >= 0\. Got '3' instead\."),
        (dict(n_households=-1), r"The 'n_households' parameter must be an int >= 0\. Got -1 instead\."),
        (dict(n_households=True), r"The 'n_households' parameter must be an int >= 0\. Got True instead\."),
        (dict(n_households=10**12), r"The 'n_households' parameter is too large: 1000000000000 households .* GiB"),
        (dict(n_households=3, oversample=0), r"The 'oversample' parameter must be an int in \[1, 1000\]"),
        (dict(n_households=3, seed="x"), r"The 'seed' parameter must be an int in \[0, 2\*\*64 - 1\] or None"),
    ],
)
def test_bad_sample_arguments_raise(fitted, kwargs, match):
    with pytest.raises(DataValidationError, match=match):
        fitted.sample(**kwargs)


def test_sample_of_no_households_gives_empty_frames(fitted):
    households, persons = fitted.sample(0, seed=0)
    full_h, full_p = fitted.sample(2, seed=0)
    assert len(households) == len(persons) == 0
    assert list(households.columns) == list(full_h.columns) and list(persons.columns) == list(full_p.columns)


def test_generate_refuses_sizes_and_regions_it_cannot_draw(fitted, small):
    given = small.groupby(HID).first().reset_index()[[HID, "db040", "hsize", "hy050n", "hy090n"]].head(3)
    with pytest.raises(DataValidationError, match=r"Households \[1\] have hsize above \d+, the largest household"):
        fitted.generate(given.assign(hsize=[10**9, 1, 1]))
    with pytest.raises(DataValidationError, match=r"Geography column 'db040' has values not seen in training: \['Mars'\]"):
        fitted.generate(given.assign(db040="Mars"))
    with pytest.raises(DataValidationError, match=r"The 'seed' parameter must be an int"):
        fitted.generate(given, seed=1.5)


def test_fitting_shows_progress_by_default(small, capsys):
    assert HouseholdSynthesizer(["db040"], ["age"], HID).verbose is True
    hs = small_synth(epochs=1).fit(small[small[HID] <= 200], seed=0)
    lines = [x for x in capsys.readouterr().err.replace("\r", "\n").splitlines() if x.startswith("fit: 100%")]
    models = (hs.household_model_ is not None) + len(hs.person_models_) + len(hs.applicable_models_)
    assert models >= 3 and models <= len(lines) <= 2 * models         # one bar per inner model, each left at 100%
    assert all(" 1/1 [" in x for x in lines)
    small_synth(epochs=1, verbose=False).fit(small[small[HID] <= 200], seed=0)
    assert capsys.readouterr().err == ""


def test_set_params_after_fit_does_not_change_what_is_saved(tmp_path):
    # Before session 35, save() wrote the current parameters beside the fitted models: fewer person
    # variables set after fitting made a file that load() refused ('na_ages'), other network sizes a file
    # whose parameters did not describe its models.
    df = load_dataset("eusilc")
    df = df[df.db030 <= 150].reset_index(drop=True)
    hs = HouseholdSynthesizer(["db040", "hsize", "hy050n"], ["age", "rb090", "py010n"], "db030",
                              household_weight="db090", person_id="rb030", size_var="hsize", geography="db040",
                              age_var="age", epochs=1, hidden_features=(8,), transforms=1).fit(df, seed=0)
    hs.set_params(max_redraws=3)  # acts when drawing: saved as set
    before = pd.concat(hs.sample(10, seed=1), axis=1)
    hs.set_params(person_vars=["age", "rb090"], hidden_features=(16, 16))
    hs.save(tmp_path / "h.mpx")
    loaded = HouseholdSynthesizer.load(tmp_path / "h.mpx")
    assert loaded.person_vars == ["age", "rb090", "py010n"] and loaded.hidden_features == (8,)
    assert loaded.max_redraws == 3
    pd.testing.assert_frame_equal(pd.concat(loaded.sample(10, seed=1), axis=1), before)


@pytest.mark.parametrize("param, value", [
    ("person_vars", ["age", "rb090", "pl030"]),  # before: KeyError 'py010n'
    ("household_id", "hid"),  # before: the output's id column silently renamed
    ("household_weight", None),  # before: the weight column silently dropped
    ("adult_age", 99),  # before: every household redrawn for an adult of 99, then kept with a warning
    ("age_var", None),  # before: KeyError 'all'
    ("geography", None),  # before: "'conditions' is missing columns ['db040']"
])
def test_a_fitted_parameter_changed_by_set_params_refuses_to_draw(fitted, small, param, value):
    """Before: sample and generate read the changed parameter beside the fitted models (the file keeps the
    fitted one): silently other output columns or draws, or a raw KeyError. Now a DataValidationError names it,
    and setting it back draws as before."""
    before = fitted.sample(10, seed=1)
    fitted_value = fitted.get_params()[param]
    fitted.set_params(**{param: value})
    try:
        with pytest.raises(DataValidationError, match=f"'{param}' parameter was changed by set_params after fit"):
            fitted.sample(10, seed=1)
        with pytest.raises(DataValidationError, match=f"'{param}' parameter was changed by set_params after fit"):
            fitted.generate(before[0], seed=1)
    finally:
        fitted.set_params(**{param: fitted_value})
    for a, b in zip(fitted.sample(10, seed=1), before, strict=True):
        pd.testing.assert_frame_equal(a, b)


@pytest.mark.parametrize("value", ["x", -1])
def test_an_invalid_max_redraws_set_after_fit_is_refused_by_sample_and_save(fitted, tmp_path, value):
    """Before: ``set_params(max_redraws="x")`` (or -1) after fit made sample raise a raw ValueError (OverflowError)
    and save write a file that load refused."""
    kept = fitted.get_params()["max_redraws"]
    fitted.set_params(max_redraws=value)
    try:
        with pytest.raises(DataValidationError, match="'max_redraws' parameter must be an int"):
            fitted.sample(5, seed=0)
        with pytest.raises(DataValidationError, match="nothing is written.*'max_redraws' parameter"):
            fitted.save(tmp_path / "h.mpx")
    finally:
        fitted.set_params(max_redraws=kept)
    assert list(tmp_path.iterdir()) == []


def _tiny(df, **kw):
    params = dict(household_weight=W, geography="db040", age_var="age", epochs=1, hidden_features=(8,), transforms=1,
                  verbose=False)
    params.update(kw)
    return HouseholdSynthesizer(["db040", "hsize"], ["age", "rb090", "py010n"], HID, **params).fit(df, seed=0)


@pytest.fixture(scope="module")
def tiny_persons(eusilc):
    return eusilc[eusilc[HID] <= 300].reset_index(drop=True)[[HID, "hsize", "db040", "age", "rb090", "py010n", W]]


def test_a_float_size_column_gives_integer_sizes_equal_to_the_person_counts(tiny_persons):
    """Before: a float64 size column was modelled as continuous: households drew sizes such as 6.06 with 6
    persons (6 of 40 households' sizes differed from their person counts)."""
    hs = _tiny(tiny_persons.assign(hsize=tiny_persons["hsize"].astype(float)), size_var="hsize")
    households, persons = hs.sample(40, seed=1)
    assert households["hsize"].dtype == np.float64
    counts = persons.groupby(HID).size().reindex(households[HID]).fillna(0).to_numpy()
    np.testing.assert_array_equal(households["hsize"].to_numpy(), counts)


@pytest.mark.parametrize("column, dtype", [("rb090", "category"), ("age", "Int64")])
def test_person_variables_of_pandas_dtypes_draw_in_their_dtype(tiny_persons, column, dtype):
    """Before: a category person variable raised a raw TypeError ("Cannot set a Categorical with another, without
    identical categories") when under-age oldest members were redrawn (each draw had only the categories it
    drew); an Int64 age raised TypeError from np.issubdtype ("Cannot interpret 'Int64Dtype()'")."""
    frame = tiny_persons.assign(**{column: tiny_persons[column].astype(dtype)})
    households, persons = _tiny(frame).sample(40, seed=1)
    assert persons[column].dtype == frame[column].dtype
    assert len(persons) == households["hsize"].sum()
