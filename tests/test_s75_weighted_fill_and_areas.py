"""Weighted placeholders of fuse's auxiliary records, and area keys of ``area_errors`` that do not depend on the
order in which the areas were listed."""

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


# -- area_errors: the order in which the areas were listed ------------------------------------------------------


@pytest.fixture(scope="module")
def west() -> pd.DataFrame:
    from microplex.datasets import load_dataset

    df = load_dataset("census2000")
    df = df[df.state.isin(["Idaho", "Nevada", "Utah"])].copy().reset_index(drop=True)
    df["puma_id"] = df.state + ":" + df.puma.astype(str)
    df["weight"] = 1.0
    return df


def _cells(df: pd.DataFrame, code: str = "puma"):
    """PUMA x education cells over Idaho, Nevada and Utah, each fixing the state and ``code`` (value: count + 1)."""
    from microplex.calibration import Targets

    rows = []
    for (s, p), g in df.groupby(["state", code]):
        for codes in ([9, 10, 11, 12], [16]):
            k = int(g.educ.isin(codes).sum())
            if k:
                p_text = f"'{p}'" if isinstance(p, str) else p
                educ = ", ".join(map(str, codes))
                rows.append(dict(aggregate="count", variable=None, value=k + 1.0,
                                 filter=f"state == '{s}' & {code} == {p_text} & educ in {{{educ}}}"))
    return Targets.from_frame(pd.DataFrame(rows))


def test_area_errors_refuse_a_finer_area_listed_first(west):
    """``areas=["puma", "state"]``: the 25 PUMA codes repeat across the 3 states and the reverse, so the cells cannot
    say which is coarser and the order would decide; listed with the column of more values first, the order is
    refused, naming both columns, by ``area_errors`` of either column and by ``check_area_columns``. Before:
    ``area_errors(errors, "puma")`` gave 25 areas, the three PUMAs 100 pooled into one (0.1111, against 0.0909,
    0.1538 and 0.1053), and ``area_errors(errors, "state")`` 40 areas such as '100 / Idaho'."""
    from microplex import DataValidationError
    from microplex.evaluation.areas import area_errors, check_area_columns, heldout_errors

    err = heldout_errors({"pop": west}, _cells(west), areas=["puma", "state"])
    expected = (r"The areas columns 'puma' and 'state': 'puma' is listed first.*codes of 'state' repeat across its "
                r"areas.*'puma' has 25 values.*'state' 3.*list 'state' first")
    for column in ("puma", "state"):
        with pytest.raises(DataValidationError, match=expected):
            area_errors(err, column)
    with pytest.raises(DataValidationError, match=expected.replace("The areas", "The 'evaluate.areas'")):
        check_area_columns(_cells(west), ["puma", "state"], "'evaluate.areas'")
    # listed coarsest first: the 40 areas, PUMA 100 of each state apart
    err = heldout_errors({"pop": west}, _cells(west), areas=["state", "puma"])
    out = area_errors(err, "puma").set_index("area")["error"]
    assert len(out) == 40 and out["Idaho / 100"] == pytest.approx(1 / 11, rel=1e-12)
    assert out["Nevada / 100"] == pytest.approx(2 / 13, rel=1e-12)
    assert sorted(area_errors(err, "state")["area"]) == ["Idaho", "Nevada", "Utah"]


def test_area_errors_refuse_unique_codes_listed_before_their_state(west):
    """Codes unique to their area (``puma_id`` 'Idaho:100') need no key: listed after the state, 40 PUMA areas and
    3 states; listed before it (``areas=["puma_id", "state"]``, read as coarser), refused naming both. Before: the
    state table was keyed by the 40 PUMAs ('Idaho:100 / Idaho', 40 areas for 3 states)."""
    from microplex import DataValidationError
    from microplex.evaluation.areas import area_errors, heldout_errors

    cells = _cells(west, "puma_id")
    err = heldout_errors({"pop": west}, cells, areas=["state", "puma_id"])
    assert area_errors(err, "puma_id")["area"].nunique() == 40
    assert sorted(area_errors(err, "state")["area"]) == ["Idaho", "Nevada", "Utah"]
    err = heldout_errors({"pop": west}, cells, areas=["puma_id", "state"])
    with pytest.raises(DataValidationError, match=r"'puma_id' and 'state': 'puma_id' is listed first.*40 values"):
        area_errors(err, "state")
