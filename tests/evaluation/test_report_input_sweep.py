"""Odd inputs to the HTML report: equal synthetic weights of any scale, a path that is a pipe or device."""

import os
import stat

import numpy as np
import pandas as pd
import pytest

from microplex import DataValidationError
from microplex.evaluation import evaluate


def _frames(n: int = 150) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"a": rng.normal(size=n), "b": rng.integers(0, 4, n)})


@pytest.mark.parametrize("weights", [[1e300], [0.0, 1e300], [5.0], [1e-300, 2.0]])
def test_equal_synthetic_weights_of_any_scale_are_plotted(tmp_path, weights):
    """Every synthetic weight 1e300: the weights histogram raised numpy's raw 'Too many bins for data range'
    (the command line's status 2, 'internal error')."""
    real = _frames()
    synthetic = real.assign(w=np.resize(np.asarray(weights, dtype=float), len(real)))
    rep = evaluate(real, synthetic, synthetic_weight_col="w", pmse=False, progress=False)
    path = rep.to_html(tmp_path / "r.html")
    text = path.read_text()
    assert "synthetic weights" in text and [p.name for p in tmp_path.iterdir()] == ["r.html"]
    assert rep.score("kish_ess", "w") == pytest.approx(float((synthetic.w.sum() / synthetic.w.max()) ** 2
                                                             / ((synthetic.w / synthetic.w.max()) ** 2).sum()))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_to_html_refuses_a_pipe_or_device_and_keeps_it(tmp_path):
    """`rep.to_html('/dev/null')` (here a named pipe): the finished report was renamed onto it, replacing the
    device by a regular file."""
    real = _frames()
    rep = evaluate(real, real.copy(), pmse=False, progress=False)
    os.mkfifo(tmp_path / "r.html")
    with pytest.raises(DataValidationError, match="'path' output .* is a device, pipe or socket"):
        rep.to_html(tmp_path / "r.html")
    assert stat.S_ISFIFO(os.lstat(tmp_path / "r.html").st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]
