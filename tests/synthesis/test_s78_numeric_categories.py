"""A numeric column modelled as categories is judged as a text one is: ids declared categorical
(``schema={"person_id": VariableSpec(kind="categorical")}``, ``--categorical person_id``) were fitted without a
word and every drawn value was a training record's id (259 distinct ids in 400 draws as a target, 398 as a condition
drawn by the condition model, all training ids). Numbers that repeat (codes many records share) are categories as
before, and so are the integer ages and age gaps a HouseholdSynthesizer models as categories on its own (a small
sample holds most ages once each: 14 of the 21 head ages of 30 households).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from microplex import DataValidationError, HouseholdSynthesizer, Synthesizer
from microplex.cli import app
from microplex.synthesis.schema import VariableSpec

N = 400
_CATEGORICAL = {"person_id": VariableSpec(kind="categorical")}


def _frame(n: int = N, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"age": rng.integers(18, 80, n).astype(float),
                         "person_id": rng.choice(10**6, n, replace=False),
                         "puma": rng.choice(np.arange(100, 3000, 100), n),  # 29 codes, each many records'
                         "inc": rng.lognormal(10, 1, n)})


@pytest.mark.parametrize("dtype", ["int64", "float64", "Int64"])
def test_a_numeric_id_declared_categorical_is_refused(dtype):
    df = _frame().astype({"person_id": dtype})
    with pytest.raises(DataValidationError, match=r"Target column 'person_id' is modelled as categories and 400 of "
                                                  r"its 400 distinct values .* each held by one record"):
        Synthesizer(["person_id", "inc"], ["age"], schema=_CATEGORICAL, epochs=1, verbose=False).fit(df, seed=0)


def test_a_numeric_id_drawn_by_the_condition_model_is_refused():
    with pytest.raises(DataValidationError, match=r"Condition column 'person_id' is modelled as categories \(drawn by "
                                                  r"the condition model\) and 400 of its 400"):
        Synthesizer(["inc"], ["age", "person_id"], schema=_CATEGORICAL, condition_model=True, epochs=1,
                    verbose=False).fit(_frame(), seed=0)


def test_an_integer_target_of_few_values_modelled_as_categories_is_judged():
    """An integer target of at most 20 values is modelled as categories without a declaration: 20 values, 11 of
    them one record's each, are refused as 20 such texts are; declared an integer it is fitted."""
    values = np.concatenate([np.arange(11) * 1000, np.repeat(np.arange(11, 20) * 1000, 5)])
    df = pd.DataFrame({"age": np.arange(len(values), dtype=float), "code": values})
    with pytest.raises(DataValidationError, match=r"Target column 'code' is modelled as categories and 11 of its 20"):
        Synthesizer(["code"], ["age"], epochs=1, verbose=False).fit(df, seed=0)
    Synthesizer(["code"], ["age"], schema={"code": VariableSpec(kind="integer")}, epochs=1, verbose=False).fit(df)


def test_the_command_line_categorical_flag_refuses_a_numeric_id(tmp_path):
    f = tmp_path / "d.csv"
    _frame().to_csv(f, index=False)
    r = CliRunner().invoke(app, ["fit", str(f), "--targets", "person_id,inc", "--conditions", "age", "--categorical",
                                 "person_id", "-o", str(tmp_path / "m.mpx"), "--epochs", "1", "-q"])
    assert r.exit_code == 1 and "Target column 'person_id' is modelled as categories and 400 of its 400" in r.output


def test_repeated_numeric_codes_are_categories_in_silence():
    df = _frame()
    synth = Synthesizer(["puma", "inc"], ["age"], schema={"puma": VariableSpec(kind="categorical")}, epochs=1,
                        verbose=False).fit(df, seed=0)
    assert synth.kinds_["puma"] == "categorical"
    Synthesizer(["person_id", "inc"], ["age"], epochs=1, verbose=False).fit(df, seed=0)  # an integer: not categories


def _households(n: int, numeric_geography: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    sizes = rng.integers(1, 4, n)
    geo = rng.choice(10**6, n, replace=False) if numeric_geography else rng.choice(["N", "S", "E"], n)
    return pd.DataFrame({"hid": np.repeat(np.arange(n), sizes), "hsize": np.repeat(sizes, sizes),
                         "region": np.repeat(geo, sizes), "age": rng.integers(20, 80, int(sizes.sum())),
                         "inc": rng.lognormal(10, 1, int(sizes.sum()))})


def test_household_ages_modelled_as_categories_by_the_household_model_are_fitted():
    """30 households: 14 of the 21 head ages are one household's each, categories the household model chose (an
    age cannot be declared categorical): fitted as before, the ages and gaps not judged."""
    df = _households(30)
    head = df.groupby("hid")["age"].max().value_counts()
    assert (len(head), int((head == 1).sum())) == (21, 14)
    hs = HouseholdSynthesizer(["region", "hsize"], ["age", "inc"], "hid", size_var="hsize", age_var="age", epochs=1,
                              verbose=False).fit(df, seed=0)
    assert hs.person_models_["head"].kinds_["age"] == "categorical"


def test_a_numeric_geography_of_mostly_unique_values_is_refused():
    """A geography is allotted by its training shares whatever its dtype: 300 numeric codes, one household's each,
    were every one a training household's."""
    hs = HouseholdSynthesizer(["region", "hsize"], ["age", "inc"], "hid", size_var="hsize", geography="region",
                              age_var="age", epochs=1, verbose=False)
    with pytest.raises(DataValidationError, match=r"Geography column 'region' is modelled as categories \(allotted by "
                                                  r"its weighted training shares\) and 300 of its 300"):
        hs.fit(_households(300, numeric_geography=True), seed=0)
