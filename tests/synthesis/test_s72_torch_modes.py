"""Session 72 (reproducibility audit): a fit trains whatever torch settings its caller left.

``Synthesizer.fit`` (so ``HouseholdSynthesizer.fit`` and ``fuse``) called inside ``torch.no_grad()`` or
``torch.inference_mode()`` (a notebook's evaluation loop) stopped at ``loss.backward()`` with PyTorch's
``RuntimeError: element 0 of tensors does not require grad``; after ``torch.set_default_dtype(torch.float64)``
(BoTorch/GPyTorch users) the networks were built in float64 for float32 data: "mat1 and mat2 must have the same
dtype". The fit now trains with gradients on and float32 networks, gives the bytes of a plain fit, and restores
the caller's settings.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
import torch

from microplex import Synthesizer

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    n = 400
    x = rng.normal(size=n)
    return pd.DataFrame({"x": x, "y": np.where(rng.random(n) < 0.3, 0.0, np.exp(x + rng.normal(size=n)))})


def _fit_bytes(data, tmp_path) -> bytes:
    path = tmp_path / "m.mpx"
    Synthesizer(["y"], ["x"], epochs=2, verbose=False).fit(data, seed=0).save(path)
    return path.read_bytes()


@pytest.mark.parametrize("mode", [torch.no_grad, torch.inference_mode])
def test_a_fit_inside_no_grad_or_inference_mode_trains_as_outside(data, mode, tmp_path):
    plain = _fit_bytes(data, tmp_path)
    with mode():
        inside = _fit_bytes(data, tmp_path)
        assert not torch.is_grad_enabled()  # the caller's mode, restored
    assert inside == plain


def test_a_fit_and_a_load_after_a_float64_default_dtype_give_the_float32_model(data, tmp_path):
    plain = _fit_bytes(data, tmp_path)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        after = _fit_bytes(data, tmp_path)
        assert torch.get_default_dtype() == torch.float64  # restored
        loaded = Synthesizer.load(io.BytesIO(plain))
        drawn = loaded.generate(data[["x"]].head(50), seed=1)
    finally:
        torch.set_default_dtype(previous)
    assert after == plain
    expected = Synthesizer.load(io.BytesIO(plain)).generate(data[["x"]].head(50), seed=1)
    pd.testing.assert_frame_equal(drawn, expected)
