"""Weighted placeholders of fuse's auxiliary records (the weighted mode of a category)."""

import warnings

import numpy as np
import pandas as pd
import pytest

from microplex import Source, fuse
from microplex.synthesis.schema import VariableSpec


def _fuse_quietly(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fuse(*args, **kwargs)


def _weighted_auxiliary(seed=3):
    """Base a(x, tenure, region, y), donor b(x, z) and a weighted auxiliary c observing all of them, where tenure's
    unweighted mode ('rent', 80 of 120 records) is not its weighted mode ('own', weight 200 against 80) and the
    declared region code's unweighted mode (3, 80 records) is not a weighted mode (1 and 2 weigh 100 each, 3 80)."""
    rng = np.random.default_rng(seed)
    n, m = 300, 120
    a = pd.DataFrame({"x": rng.normal(size=n), "tenure": rng.choice(["own", "rent"], size=n),
                      "region": rng.choice([1, 2, 3], size=n)})
    a["y"] = a["x"] + rng.normal(size=n)
    b = pd.DataFrame({"x": rng.normal(size=n)})
    b["z"] = b["x"] + rng.normal(size=n)
    tenure = np.array(["rent"] * 80 + ["own"] * 40)
    c = pd.DataFrame({"x": rng.normal(size=m), "tenure": tenure, "region": [3] * 80 + [2] * 20 + [1] * 20,
                      "w": np.where(tenure == "own", 5.0, 1.0)})
    c["y"] = c["x"] + rng.normal(size=m)
    c["z"] = c["x"] + rng.normal(size=m)
    return a, b, c


def test_auxiliary_placeholder_category_is_the_weighted_mode():
    """The donor records (indicator 0) carry the auxiliary source's weighted mode as the placeholder of a category
    they lack: 'own' (weight 200 against 80), and for the region code declared categorical 1 (1 and 2 weigh 100
    each, the tie broken by the first in sorted order; 3 weighs 80); a number keeps the weighted mean. Before: the
    unweighted mode, 'rent' and 3 (80 of 120 records each), while the number beside them was weighted."""
    a, b, c = _weighted_auxiliary()
    result = _fuse_quietly([Source(a, "a"), Source(b, "b")], base="a", seed=0,
                           auxiliary=Source(c, "c", weight_col="w"),
                           synthesizer_params={"epochs": 2, "schema": {"region": VariableSpec(kind="categorical")}})
    assert result.steps[0].auxiliary == ("tenure", "region", "y")
    cond = result.models["b"].training_conditions_
    donor = cond[cond["_auxiliary"] == 0]
    assert len(donor) == len(b)
    assert c["tenure"].mode().iloc[0] == "rent" and c["region"].mode().iloc[0] == 3  # the unweighted modes
    assert donor["tenure"].tolist() == ["own"] * len(b)
    assert donor["region"].tolist() == [1] * len(b)
    assert donor["y"].to_numpy() == pytest.approx(np.full(len(b), np.average(c["y"], weights=c["w"])), rel=1e-12)


def test_auxiliary_placeholder_does_not_depend_on_the_record_order():
    """The placeholders of the auxiliary records shuffled are the same (the tie of regions 1 and 2 included), and
    records of weight 0 count for nothing: 60 more 'rent' records of weight 0 leave 'own'."""
    from microplex.fusion._fuse import _with_auxiliary
    from microplex.fusion._plan import FusionStep

    a, b, c = _weighted_auxiliary()
    step = FusionStep(donor="b", predictors=("x",), block=("z",), auxiliary=("tenure", "region", "y"))
    train = b.assign(__weight__=1.0)
    fills = []
    for aux in (c, c.sample(frac=1.0, random_state=7), c.iloc[::-1],
                pd.concat([c, c.iloc[:60].assign(w=0.0)], ignore_index=True)):
        fill = _with_auxiliary(train, Source(b, "b"), Source(aux, "c", weight_col="w"), step, "__weight__",
                               {"region"})[1]
        fills.append((fill["tenure"], fill["region"]))
    assert fills == [("own", 1)] * 4
