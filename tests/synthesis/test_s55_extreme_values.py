"""Session 55: a target whose fitted transform decodes infinity within the flow's reach is refused at fit. Values up
to 8.9e304 fitted, and the model drew infinite values and saved a file that its own loader refused ("a segment
that decodes finite values at standardized values up to +-10"; found by the nightly property suite): fit now
makes the loader's check, so save never writes a file load refuses."""

import warnings

import pandas as pd
import pytest

from microplex import DataValidationError, Synthesizer


def test_a_transform_that_decodes_infinity_is_refused_at_fit(tmp_path):
    df = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 8.949007e304]})
    synth = Synthesizer(["a"], epochs=1, verbose=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(DataValidationError, match="Target column 'a' cannot be standardized"):
            synth.fit(df, seed=0)
    # large but decodable values fit, save and load as before
    df.loc[6, "a"] = 1e200
    synth.fit(df, seed=0).save(tmp_path / "m.mpx")
    assert Synthesizer.load(tmp_path / "m.mpx").sample(50, seed=1)["a"].notna().all()
