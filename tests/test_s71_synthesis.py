"""Session 71, synthesis: an integer target's encoder edited beyond 2**48 in a model file.

Fit models an integer target whose values reach 2**48 as continuous (declared ``kind="integer"``, it refuses it):
float64 cannot resolve the half units an integer segment is bounded and dequantized with. A model file whose integer
encoder was edited beyond it (a segment's lower bound moved by 2**54) loaded and drew only multiples of 4, and gave
the training minimum a log-density of -1.2 (-11.0 fitted); it is now refused at load, naming the file and the target.
"""

from __future__ import annotations

import io
import json
import re
import zipfile

import numpy as np
import pandas as pd
import pytest

from microplex import DataValidationError, Synthesizer

FAST = dict(epochs=2, hidden_features=(8,), transforms=1, verbose=False)


def _edit_metadata(data: bytes, edit) -> bytes:
    """The model file ``data`` with its metadata edited in place by ``edit``."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            raw = src.read(info)
            if info.filename == "metadata.json":
                meta = json.loads(raw)
                edit(meta)
                raw = json.dumps(meta).encode()
            dst.writestr(info, raw)
    return out.getvalue()


def _amounts(low: int, n: int = 1000) -> pd.DataFrame:
    """int64 amounts of ``low`` and above (a lognormal spread of about 1e5) given a group, 20% of them 0."""
    rng = np.random.default_rng(0)
    g = rng.integers(0, 3, n)
    v = low + np.round(np.exp(rng.normal(11 + 0.3 * g, 1.0, n))).astype("int64")
    return pd.DataFrame({"g": g, "v": np.where(rng.random(n) < 0.2, 0, v)})


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, tuple[Synthesizer, bytes]]:
    """Fitted integer models and their files: amounts from 1 (a zero point mass below a log segment), and amounts
    just below 2**48 (the largest 2**48 - 1)."""
    out = {}
    for name, low in (("small", 1), ("near the limit", 0)):
        df = _amounts(low)
        if name == "near the limit":
            df["v"] = 2**48 - 1 - df["v"].max() + df["v"]
        synth = Synthesizer(["v"], ["g"], **FAST).fit(df, seed=0)
        assert synth.kinds_["v"] == "integer"
        path = tmp_path_factory.mktemp("m") / "model.mpx"
        synth.save(path)
        out[name] = synth, path.read_bytes()
    return out


def _shift(by: int, masses: bool = False):
    """An edit that moves the integer segment's lower bound of target 'v' (and, ``masses``, its point masses) by
    ``by``: the segment keeps its shape, on a grid float64 no longer resolves in half units beyond 2**48."""
    def edit(meta: dict) -> None:
        enc = meta["encoders"]["v"]
        enc["segments"][0]["lower"] += by
        if masses:
            enc["point_masses"] = [m + by for m in enc["point_masses"]]
    return edit


#: (model, edit). Before: each loaded; lower + 2**54 drew only multiples of 4 (the training minimum's log-density
#: -1.2, fitted -11.0), lower + 2**60 drew up to 301 off the fitted draws shifted.
BEYOND = {
    "lower + 2**50": ("small", _shift(2**50)),
    "lower + 2**54": ("small", _shift(2**54)),
    "lower + 2**60": ("small", _shift(2**60)),
    "lower and point mass + 2**50": ("small", _shift(2**50, masses=True)),
    "negative: lower - 2**49": ("small", _shift(-(2**49), masses=True)),
    "near the limit, lower + 10**6": ("near the limit", _shift(10**6)),
}


@pytest.mark.parametrize("case", list(BEYOND))
def test_an_integer_encoder_edited_beyond_2_to_48_is_refused_at_load(files, tmp_path, case):
    model, edit = BEYOND[case]
    path = tmp_path / "edited.mpx"
    path.write_bytes(_edit_metadata(files[model][1], edit))
    with pytest.raises(DataValidationError, match=re.escape("edited.mpx' is not a valid Synthesizer model file: field "
                                                            "'encoders.v' must be the encoder of an integer target "
                                                            "('v') whose values stay below 2**48 in magnitude")
                       + r".* as continuous: float64 cannot resolve its half units there\)\. Got \[.*\] instead\."):
        Synthesizer.load(path)


def test_integer_files_up_to_2_to_48_load_and_draw_as_fitted(files, tmp_path):
    """The check refuses nothing fit writes: a file whose largest value is 2**48 - 1 loads and draws as the fitted
    model; an edit that stays below the limit (the segment moved by 2**40) still loads."""
    synth, data = files["near the limit"]
    path = tmp_path / "near.mpx"
    path.write_bytes(data)
    drawn = synth.sample(2000, seed=3)
    pd.testing.assert_frame_equal(Synthesizer.load(path).sample(2000, seed=3), drawn)
    path.write_bytes(_edit_metadata(files["small"][1], _shift(2**40, masses=True)))
    assert Synthesizer.load(path).sample(10, seed=0)["v"].min() >= 2**40
