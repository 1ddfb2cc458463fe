"""FusionResult.imputations() of a single imputation is a copy, as every imputation of several is."""

import numpy as np
import pandas as pd

from microplex.fusion import Source, fuse

FAST = {"epochs": 1, "hidden_features": (8,), "transforms": 1}


def _frames(n: int = 200, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=2 * n)
    a = pd.DataFrame({"x": x[:n], "y": x[:n] + rng.normal(size=n)})
    b = pd.DataFrame({"x": x[n:], "z": x[n:] + rng.normal(size=n)})
    return a, b


def test_editing_the_single_imputation_leaves_the_result_data_as_it_is():
    a, b = _frames()
    result = fuse([Source(a, "a"), Source(b, "b")], base="a", n_imputations=1, synthesizer_params=FAST, seed=1)
    before = result.data.copy()
    (part,) = result.imputations()
    part["z"] = 0.0  # before: this wrote into result.data (the same object)
    pd.testing.assert_frame_equal(result.data, before)
    assert part is not result.data
