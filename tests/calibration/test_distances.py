from __future__ import annotations

import math

import numpy as np
import pytest

from microplex import DataValidationError
from microplex.calibration.distances import DISTANCES, get_distance, make_distance, register_distance

CASES = [
    ("linear", (-math.inf, math.inf)),
    ("linear", (0.5, 2.0)),
    ("raking", (-math.inf, math.inf)),
    ("raking", (0.5, 2.0)),
    ("logit", (0.3, 3.0)),
]
U = np.linspace(-2.5, 2.5, 1001)


@pytest.mark.parametrize("name,bounds", CASES)
def test_distance_contract(name, bounds):
    dist = get_distance(name)
    g = dist.inverse(U, bounds)
    assert dist.inverse(np.zeros(1), bounds)[0] == pytest.approx(1.0)
    assert np.all(np.diff(g) >= -1e-12)  # F is non-decreasing
    assert g.min() >= bounds[0] - 1e-12 and g.max() <= bounds[1] + 1e-12
    if dist.nonnegative:
        assert g.min() >= 0
    # F' against central differences (away from kinks)
    h = 1e-6
    fd = (dist.inverse(U + h, bounds) - dist.inverse(U - h, bounds)) / (2 * h)
    kinks = np.zeros_like(U, dtype=bool)
    for b in bounds:
        if math.isfinite(b) and b > 0:
            u_b = b - 1 if name == "linear" else math.log(b)
            kinks |= np.abs(U - u_b) < 1e-4
    np.testing.assert_allclose(dist.derivative(U, bounds)[~kinks], fd[~kinks], rtol=1e-5, atol=1e-7)
    # potential' = F
    pfd = (dist.potential(U + h, bounds) - dist.potential(U - h, bounds)) / (2 * h)
    np.testing.assert_allclose(pfd, g, rtol=1e-5, atol=1e-6)


def test_logit_matches_r_formula():
    lo, hi = 0.3, 3.0
    a = (hi - lo) / ((hi - 1) * (1 - lo))
    e = np.exp(a * U)
    r_g = (lo * (hi - 1) + hi * (1 - lo) * e) / (hi - 1 + (1 - lo) * e)
    np.testing.assert_allclose(get_distance("logit").inverse(U, (lo, hi)), r_g, rtol=1e-12)


def test_registry_and_user_distance():
    assert {"linear", "raking", "logit"} <= set(DISTANCES)
    sinh = make_distance(lambda u, b: 1 + np.sinh(u), lambda u, b: np.cosh(u), "sinh-test")
    register_distance(sinh)
    try:
        assert get_distance("sinh-test") is sinh
    finally:
        DISTANCES.pop("sinh-test")
    with pytest.raises(DataValidationError, match=r"'method' parameter must be .* Got 'nope'"):
        get_distance("nope")
