"""Session 74: messages and labels that named internal names or misread values (decimal levels near float64's
spacing, the internal weight column, nullable integer conditions)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest


def test_an_int64_condition_is_labelled_with_integers_in_the_report():
    """A nullable integer (``Int64``) condition labelled its subgroups 'i=0.0' (numeric_frame made it float64);
    a numpy int64 condition read 'i=0'. Now both read 'i=0', 'i=1', 'i=2'."""
    from microplex.evaluation import evaluate

    rng = np.random.default_rng(0)
    frames = [pd.DataFrame({"i": pd.array(rng.integers(0, 3, 300), dtype="Int64"), "inc": rng.normal(100, 10, 300)})
              for _ in range(2)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rep = evaluate(frames[0], frames[1], conditions=["i"], pmse=False, progress=False)
        plain = evaluate(*(f.astype({"i": "int64"}) for f in frames), conditions=["i"], pmse=False, progress=False)
    sub = rep.scores[rep.scores["metric"] == "subgroup_ks"]
    assert sub["subgroup"].tolist() == ["i=0", "i=1", "i=2"]
    pd.testing.assert_frame_equal(rep.scores, plain.scores)
