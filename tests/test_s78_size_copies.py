"""Copies of the household size: a household variable equal to the number of person records in every household
beside the size (``n_members`` beside ``hsize``) is kept and written as the size in every output (``sample``,
``generate``, the streamed datasets, a saved and loaded model), never drawn."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pandas as pd
import pytest

from microplex import DataValidationError, HouseholdSynthesizer, VariableSpec
from microplex.scale import generate_household_dataset

pytestmark = pytest.mark.filterwarnings("ignore")  # per test: a module-level filter outlived the module

_FAST = dict(epochs=1, hidden_features=(8,), transforms=1, verbose=False)


@pytest.fixture(scope="module")
def eusilc_small() -> pd.DataFrame:
    from microplex.datasets import load_dataset

    data = load_dataset("eusilc")
    data = data[data["db030"] <= 300].reset_index(drop=True)
    return data.assign(n_members=data["hsize"].astype(float))  # a float copy: compared as numbers


@pytest.fixture(scope="module")
def fitted(eusilc_small) -> HouseholdSynthesizer:
    return HouseholdSynthesizer(["db040", "hsize", "n_members", "hy040n"], ["age", "rb090"], "db030",
                                household_weight="db090", geography="db040", age_var="age", **_FAST
                                ).fit(eusilc_small, seed=0)


def _person_counts(households: pd.DataFrame, persons: pd.DataFrame, hid: str = "db030") -> np.ndarray:
    return persons.groupby(hid).size().reindex(households[hid]).to_numpy()


@pytest.mark.parametrize("size_var", [None, "hsize"])
def test_a_second_column_equal_to_the_person_count_is_written_as_a_copy_of_the_size(eusilc_small, size_var):
    hs = HouseholdSynthesizer(["db040", "hsize", "n_members", "hy040n"], ["age", "rb090"], "db030",
                              household_weight="db090", size_var=size_var, **_FAST).fit(eusilc_small, seed=0)
    assert hs.size_col_ == "hsize" and hs.size_copies_ == ["n_members"]
    assert "n_members" not in hs.household_model_.target_vars + hs.household_model_.condition_vars
    assert not any(c.startswith("n_members") for c in hs.context_cols_)  # no person model reads it
    households, persons = hs.sample(400, seed=1)
    assert households.columns.tolist() == ["db030", "db040", "hsize", "n_members", "hy040n", "db090"]
    counts = _person_counts(households, persons)
    assert (households["n_members"].to_numpy() == counts).all() and (households["hsize"].to_numpy() == counts).all()
    assert households["n_members"].dtype == households["hsize"].dtype  # the size's values and dtype
    # the column first in 'household_vars' is the size; the other is the copy
    hs = HouseholdSynthesizer(["db040", "n_members", "hsize", "hy040n"], ["age", "rb090"], "db030",
                              household_weight="db090", **_FAST).fit(eusilc_small, seed=0)
    assert hs.size_col_ == "n_members" and hs.size_copies_ == ["hsize"]
    households, persons = hs.sample(200, seed=1)
    assert (households["hsize"].to_numpy() == _person_counts(households, persons)).all()


@pytest.mark.parametrize("late", [["n_members"], ["n_members", "hy040n"]])
def test_a_copy_of_the_size_among_late_household_vars_is_written_as_the_size(eusilc_small, late, tmp_path):
    """Listed among ``late_household_vars``, a copy of the size is still a copy (the persons drawn, counted after
    them): no late model draws it, every output writes it as the size. Before, fit refused it."""
    hs = HouseholdSynthesizer(["db040", "hsize", "n_members", "hy040n"], ["age", "rb090"], "db030",
                              household_weight="db090", size_var="hsize", late_household_vars=late, **_FAST
                              ).fit(eusilc_small, seed=0)
    early = ["db040", "hsize"] + ([] if "hy040n" in late else ["hy040n"])
    assert hs.size_copies_ == ["n_members"] and hs.early_cols_ == early
    assert (hs.late_model_ is None) if late == ["n_members"] else (hs.late_model_.target_vars == ["hy040n"])
    households, persons = hs.sample(300, seed=1)
    assert households.columns.tolist() == ["db030", "db040", "hsize", "n_members", "hy040n", "db090"]
    counts = _person_counts(households, persons)
    assert (households["n_members"].to_numpy() == counts).all() and households["n_members"].dtype == np.int64
    given = households.drop(columns=late)
    got, persons = hs.generate(given, seed=0)  # the late variables drawn, the copy written
    assert got.columns.tolist() == households.columns.tolist()
    assert (got["n_members"].to_numpy() == _person_counts(got, persons)).all()
    with pytest.raises(DataValidationError, match=r"'n_members' is a copy of the size 'hsize'.*differs"):
        hs.generate(households.assign(n_members=households["hsize"] + 1), seed=0)
    hs.save(tmp_path / "hh.mpx")
    loaded = HouseholdSynthesizer.load(tmp_path / "hh.mpx")
    assert loaded.size_copies_ == ["n_members"]
    a, b = hs.sample(100, seed=4), loaded.sample(100, seed=4)
    pd.testing.assert_frame_equal(a[0], b[0])
    pd.testing.assert_frame_equal(a[1], b[1])


@pytest.mark.parametrize("size_var", [None, "hsize"])
def test_a_schema_entry_naming_a_copy_of_the_size_is_refused(eusilc_small, size_var):
    """A copy of the size is never modelled and written with the size's dtype: a schema entry for it (a kind, point
    masses) was silently ignored (``n_members`` declared continuous came out int64, the size's values)."""
    schema = {"n_members": VariableSpec(kind="continuous")}
    hs = HouseholdSynthesizer(["db040", "hsize", "n_members", "hy040n"], ["age", "rb090"], "db030",
                              household_weight="db090", size_var=size_var, schema=schema, **_FAST)
    with pytest.raises(DataValidationError, match=r"'schema' parameter declares \['n_members'\], which equal the "
                                                  r"number of person records .* as the size 'hsize' does.*Leave them "
                                                  r"out of 'schema'.*'size_var'"):
        hs.fit(eusilc_small, seed=0)
    # named as the size, the declared column is modelled (the other count column is then its copy)
    hs = HouseholdSynthesizer(["db040", "hsize", "n_members", "hy040n"], ["age", "rb090"], "db030",
                              household_weight="db090", size_var="n_members", geography="db040",
                              schema={"n_members": VariableSpec(kind="integer")}, **_FAST).fit(eusilc_small, seed=0)
    assert hs.size_copies_ == ["hsize"] and hs.household_model_.kinds_["n_members"] == "integer"


def test_generate_writes_the_copies_and_refuses_a_given_copy_that_is_not_the_size(fitted):
    households, _ = fitted.sample(100, seed=2)
    got, persons = fitted.generate(households.drop(columns="n_members"), seed=0)
    assert got.columns.tolist() == households.columns.tolist()
    assert (got["n_members"].to_numpy() == _person_counts(got, persons)).all()
    # given and equal to the size (as floats, as in training): accepted, written as the size
    got, persons = fitted.generate(households.assign(n_members=households["hsize"].astype(float)), seed=0)
    assert (got["n_members"].to_numpy() == _person_counts(got, persons)).all()
    wrong = households.assign(n_members=households["hsize"].to_numpy() + (households["db030"] == 7).to_numpy())
    size = int(households.loc[households["db030"] == 7, "hsize"].iloc[0])
    with pytest.raises(DataValidationError, match=rf"Household variable 'n_members' is a copy of the size 'hsize'.* "
                                                  rf"household 7 \(n_members={size + 1}, hsize={size} in "
                                                  rf"household 7\)"):
        fitted.generate(wrong, seed=0)
    with pytest.raises(DataValidationError, match=r"'n_members' is a copy of the size 'hsize'.*differs from it in "
                                                  r"household 1, 2, 3"):
        fitted.generate(households.assign(n_members=households["hsize"].astype(str)), seed=0)


def _members(data: bytes) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return [(i.filename, z.read(i)) for i in z.infolist()]


def _edited(data: bytes, edit) -> io.BytesIO:
    """The model file ``data`` with its metadata edited by ``edit``."""
    meta = json.loads(dict(_members(data))["metadata.json"])
    edit(meta)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, raw in _members(data):
            z.writestr(name, json.dumps(meta) if name == "metadata.json" else raw)
    out.seek(0)
    return out


def test_a_saved_model_records_its_copies_of_the_size(fitted, tmp_path):
    path = tmp_path / "hh.mpx"
    fitted.save(path)
    data = path.read_bytes()
    assert json.loads(dict(_members(data))["metadata.json"])["size_copies"] == ["n_members"]
    loaded = HouseholdSynthesizer.load(path)
    assert loaded.size_copies_ == ["n_members"]
    a, b = fitted.sample(150, seed=4), loaded.sample(150, seed=4)
    pd.testing.assert_frame_equal(a[0], b[0])
    pd.testing.assert_frame_equal(a[1], b[1])


@pytest.mark.parametrize("copies, message", [
    (["hsize"], r"'size_copies' must be household variables of .* other than the size 'hsize'"),
    (["db040"], r"'size_copies' must be household variables .* other than the size 'hsize' and the geography"),
    (["nope"], r"'size_copies' must be household variables of \['db040', 'hsize', 'n_members', 'hy040n'\]"),
    ("n_members", r"'size_copies' must be a list of column names"),
    ([], r"'early_cols' must be the household columns that are neither late nor copies of the size"),
    (None, r"'early_cols' must be the household columns that are neither late nor copies of the size"),
])
def test_a_file_whose_copies_of_the_size_are_not_its_household_columns_is_refused(fitted, tmp_path, copies, message):
    path = tmp_path / "hh.mpx"
    fitted.save(path)

    def edit(meta):
        if copies is None:  # a file that does not record them (as files written before they were kept)
            del meta["size_copies"]
        else:
            meta["size_copies"] = copies
    with pytest.raises(DataValidationError, match=r"Model file .*: " + message):
        HouseholdSynthesizer.load(_edited(path.read_bytes(), edit))


def test_the_streamed_households_hold_the_copies(fitted, tmp_path):
    m = generate_household_dataset(fitted, 120, path=tmp_path, partition_by=["n_members"], households_per_file=50,
                                   seed=3, progress=False)
    households = pd.read_parquet(tmp_path / "households").sort_values("db030").reset_index(drop=True)
    persons = pd.read_parquet(tmp_path / "persons")
    assert len(households) == 120 and len(persons) == m["persons"]["rows"]
    counts = _person_counts(households, persons)
    assert (households["n_members"].astype(np.int64).to_numpy() == counts).all()
    assert (households["hsize"].to_numpy() == counts).all()
    assert any(p.startswith("n_members=") for f in m["households"]["files"] for p in f["path"].split("/"))
