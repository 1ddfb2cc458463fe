"""Targets nested more than one level apart are compared when the level in between has targets only in places."""

from __future__ import annotations

import pandas as pd
import pytest

from microplex import Target, Targets
from microplex.calibration import check_consistency
from microplex.datasets import load_dataset


@pytest.fixture(scope="module")
def west() -> pd.DataFrame:
    df = load_dataset("census2000")
    df = df[df.state.isin(["Nevada", "Utah", "Idaho"])].copy().reset_index(drop=True)
    df["puma_id"] = df.state + ":" + df.puma.astype(str)
    return df


def _puma_targets(df: pd.DataFrame, state: str) -> list[dict]:
    return [
        dict(aggregate="count", variable=None, filter=f"state == '{state}' & puma_id == '{p}'", value=float(len(g)))
        for p, g in df[df.state == state].groupby("puma_id")
    ]


def test_a_parent_is_compared_with_finer_targets_where_the_level_between_has_none(west):
    # national 100, Idaho 50 and Nevada's PUMAs (no Nevada target): 50 + 224 > 100 cannot hold for counts
    nevada = _puma_targets(west, "Nevada")
    t = pd.DataFrame(
        [dict(aggregate="count", variable=None, filter="", value=100.0),
         dict(aggregate="count", variable=None, filter="state == 'Idaho'", value=50.0)] + nevada
    )
    nev = sum(r["value"] for r in nevada)
    assert nev == 224.0
    out = check_consistency(t, west, ["state", "puma_id"])
    assert len(out) == 1
    row = out.iloc[0]
    assert row["parent"] == "count[]" and row["level"] == "(all)"
    assert row["children_sum"] == 50.0 + nev and row["n_children"] == 1 + len(nevada)
    assert not row["complete"]  # Utah has no target
    assert row["rel_diff"] == pytest.approx((50.0 + nev - 100.0) / 100.0, rel=1e-12)


def test_finer_targets_under_a_target_in_between_are_not_counted_twice(west):
    # Idaho's PUMAs sit under the Idaho target: the national target's children are Idaho (its target) and
    # Nevada's PUMAs, summing to the national total exactly (complete: Utah has a target too)
    idaho, nevada = _puma_targets(west, "Idaho"), _puma_targets(west, "Nevada")
    n_id, n_nv, n_ut = (float((west.state == s).sum()) for s in ("Idaho", "Nevada", "Utah"))
    base = [
        dict(aggregate="count", variable=None, filter="state == 'Idaho'", value=n_id),
        dict(aggregate="count", variable=None, filter="state == 'Utah'", value=n_ut),
    ] + idaho + nevada
    ok = pd.DataFrame([dict(aggregate="count", variable=None, filter="", value=n_id + n_nv + n_ut)] + base)
    assert check_consistency(ok, west, ["state", "puma_id"]).empty
    # with full coverage the sum must equal the parent: one person short at the national level is reported
    short = pd.DataFrame([dict(aggregate="count", variable=None, filter="", value=n_id + n_nv + n_ut + 1)] + base)
    out = check_consistency(short, west, ["state", "puma_id"])
    assert out["parent"].tolist() == ["count[]"]
    assert bool(out["complete"].iloc[0]) and out["children_sum"].iloc[0] == n_id + n_nv + n_ut
    assert out["n_children"].iloc[0] == 2 + len(nevada)


def test_three_levels_skip_an_empty_middle_level_in_places():
    geo = pd.DataFrame({"state": ["A", "A", "A", "B"], "county": [1, 1, 2, 3], "tract": [10, 11, 20, 30]})
    t = Targets(
        [
            Target(5, filters={"state": "A"}),
            Target(2, filters={"county": 1}),
            Target(1, filters={"tract": 10}),
            Target(1, filters={"tract": 11}),
            Target(4, filters={"tract": 20}),  # county 2 has no target: A's children sum 2 + 4 = 6 > 5
        ]
    )
    out = check_consistency(t, geo, ["state", "county", "tract"])
    assert out[["parent", "children_sum", "n_children"]].values.tolist() == [["count[state == 'A']", 6.0, 2]]
    assert bool(out["complete"].iloc[0])
