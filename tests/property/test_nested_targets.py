"""Property: nested geography targets that add up pass the consistency check; one that does not is named.

Targets computed from one set of records at every level of a nested geography (state, county, tract; counts and
sums, with and without a non-geographic filter, some levels left out) add up by construction: ``check_consistency``
must find nothing. Moving one child target by more than the tolerance must name its parent (the children of
that parent cover all of its sub-areas, so their sum must equal it) and, when a level lies below it, the moved
target as a parent; nothing else.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from microplex.calibration import Target, check_consistency

GEOGRAPHY = ["state", "county", "tract"]


@st.composite
def nested(draw) -> tuple[pd.DataFrame, list[Target], list[str]]:
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n = draw(st.integers(1, 80))
    n_states = draw(st.integers(1, 3))
    state = rng.integers(0, n_states, n)
    county = state * 10 + rng.integers(0, draw(st.integers(1, 3)), n)   # counties nest in states
    tract = county * 10 + rng.integers(0, draw(st.integers(1, 3)), n)   # tracts nest in counties
    df = pd.DataFrame({"state": np.array(["AL", "CA", "NY"])[state], "county": county, "tract": tract.astype(str),
                       "g": rng.choice(["a", "b"], n), "y": rng.lognormal(3, 1, n).round(2),
                       "w": rng.uniform(0.5, 3.0, n)})
    levels = draw(st.lists(st.sampled_from([0, 1, 2]), min_size=2, max_size=3, unique=True).map(sorted))
    geography = GEOGRAPHY[: max(levels) + 1]
    targets: list[Target] = []
    for aggregate, rest in draw(st.lists(st.sampled_from([("count", None), ("sum", None), ("count", "a"),
                                                         ("sum", "b")]), min_size=1, max_size=4, unique=True)):
        sub = df if rest is None else df[df["g"] == rest]
        extra = {} if rest is None else {"g": rest}
        for level in levels:
            col = GEOGRAPHY[level]
            keys = GEOGRAPHY[: level + 1] if col != "tract" else ["tract"]  # a tract code names its county and state
            values = sub.groupby(keys)["w"].sum() if aggregate == "count" else (sub["w"] * sub["y"]).groupby(
                [sub[k] for k in keys]).sum()
            # every area of the records gets its target (0 where no record matches the filter): complete children
            areas = df.groupby(keys).size().index
            values = values.reindex(areas, fill_value=0.0)
            for key, v in values.items():
                key = key if isinstance(key, tuple) else (key,)
                filters = {**dict(zip(keys, key)), **extra}
                if aggregate == "count":
                    targets.append(Target(float(v), filters=filters))
                else:
                    targets.append(Target(float(v), aggregate="sum", variable="y", filters=filters))
    return df, targets, geography


@given(case=nested(), data=st.data())
def test_nested_targets_that_add_up_pass_and_a_moved_one_names_its_parent(case, data):
    df, targets, geography = case
    found = check_consistency(targets, df, geography)
    assert found.empty, found
    # move one target below the top level: its parents (the targets one level up, same aggregate and filter, whose
    # areas hold it) no longer add up
    levels = {t.name: max(geography.index(c) for c in t.filters if c in geography) for t in targets}
    top = min(levels.values())  # every spec has a target per area of each level: never empty
    movable = [i for i, t in enumerate(targets) if levels[t.name] > top]
    if not movable:
        return
    i = data.draw(st.sampled_from(movable))
    factor = data.draw(st.sampled_from([0.5, 1.01, 2.0]))
    moved = list(targets)
    t = moved[i]
    moved[i] = Target(t.value * factor + (1.0 if t.value == 0 else 0.0), aggregate=t.aggregate, variable=t.variable,
                      filters=t.filters)
    found = check_consistency(moved, df, geography)
    # the moved target's parent is named with it among the children; the moved target itself, a parent of the
    # level below when there is one, may be named too; nothing else
    as_child = found[[t.name in kids for kids in found["children"]]]
    assert len(as_child) == 1, found
    assert (found["parent"] == t.name).sum() + len(as_child) == len(found), found
    parent = next(p for p in targets if p.name == as_child.iloc[0]["parent"])
    assert parent.aggregate == t.aggregate and parent.variable == t.variable
    assert parent.filters.get("g") == t.filters.get("g")
    assert levels[parent.name] < levels[t.name]
    below = [c for c in targets if levels[c.name] > levels[t.name]]
    assert (found["parent"] == t.name).sum() == (1 if below else 0), found
