import numpy as np
import pandas as pd
import pytest

from microplex import DataValidationError, VariableSpec
from microplex.synthesis.schema import detect_point_masses, infer_kind
from microplex._stats import weighted_quantile
from microplex.synthesis.transforms import ConditionEncoder, ContinuousEncoder


def _fit(x, w=None, spec=VariableSpec(), integer=False):
    w = np.ones(len(x)) if w is None else w
    return ContinuousEncoder("v", integer=integer).fit(np.asarray(x, float), w, spec, 0.01, 5)


def test_zero_and_top_code_become_point_masses_and_set_the_support():
    rng = np.random.default_rng(0)
    x = np.concatenate([np.zeros(100), np.full(200, 50.0), rng.uniform(1, 49, 700)])
    enc = _fit(x)
    assert enc.point_masses == [0.0, 50.0]
    seg, = enc.segments
    assert (seg.lower, seg.upper, seg.transform) == (0.0, 50.0, "logit")
    state, u = enc.encode(x)
    assert np.array_equal(enc.decode(u, state), np.where(state < 2, x, enc.decode(u, state)))
    assert np.allclose(enc.decode(u, state), x)


@pytest.mark.parametrize(
    "x, transform",
    [(np.exp(np.random.default_rng(1).normal(size=500)), "log"),
     (np.random.default_rng(2).standard_t(3, size=500) * 1000, "asinh")],
)
def test_transform_round_trip_and_jacobian(x, transform):
    enc = _fit(x, spec=VariableSpec(point_masses=()))
    assert enc.segments[0].transform == transform
    state, u = enc.encode(x)
    assert np.allclose(enc.decode(u, state), x)
    h = 1e-4 * np.maximum(np.abs(x), 1)
    numeric = np.log((enc.encode(x + h)[1] - enc.encode(x - h)[1]) / (2 * h))
    assert np.allclose(enc.log_jacobian(x, state), numeric, atol=1e-4)


@pytest.mark.parametrize(
    "x, transform, sides",
    [(np.exp(np.random.default_rng(1).normal(8, 2, size=500)), "log", (1,)),
     (np.random.default_rng(2).standard_t(3, size=500) * 1000, "asinh", (-1, 1))],
)
def test_inverse_continues_linearly_beyond_the_training_range(x, transform, sides):
    enc = _fit(x, spec=VariableSpec(point_masses=()))
    seg, = enc.segments
    assert seg.transform == transform
    state = np.full(3, enc.continuous_states[0])
    for side in sides:
        edge = x.max() if side > 0 else x.min()
        # three points beyond the most extreme value, equally spaced in the encoded scale ...
        u_edge = enc.encode(np.array([edge]))[1][0]
        u = u_edge + side * np.array([1.0, 2.0, 3.0])
        far = enc.decode(u, state)
        # ... are equally spaced in the original scale too (linear, not exp/sinh) and round-trip,
        assert np.allclose(np.diff(far), far[1] - far[0]) and side * (far[0] - edge) > 0
        assert np.allclose(enc.encode(far)[1], u)
        # with the slope of the transform at the edge (the inverse is C1), and the exact Jacobian.
        h = 1e-6 * abs(edge)
        inner_slope = (edge - enc.decode(np.array([u_edge - side * 1e-6]), state[:1])[0]) / 1e-6 * side
        assert (far[1] - far[0]) * side == pytest.approx(inner_slope, rel=1e-3)
        numeric = np.log((enc.encode(far + h)[1] - enc.encode(far - h)[1]) / (2 * h))
        assert np.allclose(enc.log_jacobian(far, state), numeric, atol=1e-4)
    # an exponential inverse would put 3 standard deviations beyond the maximum near
    # max * exp(3 * std); the linear tail stays within a few multiples of the maximum.
    if transform == "log":
        top = enc.decode(np.array([enc.encode(np.array([x.max()]))[1][0] + 3.0]), state[:1])[0]
        assert top < x.max() * (1 + 3.0 * seg.std) + 1e-6 < x.max() * np.exp(3.0 * seg.std)


def test_weighted_statistics_use_the_weights():
    x = np.array([1.0, 2.0, 3.0, 4.0])
    w = np.array([1.0, 1.0, 1.0, 5.0])
    enc = _fit(x, w, VariableSpec(point_masses=(), transform="identity"))
    assert enc.segments[0].mean == pytest.approx(np.average(x, weights=w))
    assert weighted_quantile(x, 0.5, w)[0] == 4.0


def test_point_mass_detection_uses_weight_shares():
    x = np.array([0.0, 1.0, 7.0, 7.0, 2.0, 3.0])
    assert detect_point_masses(x, np.ones(6), 0.3, 5) == (0.0, 7.0)
    w = np.array([1.0, 1, 1, 1, 20, 1])
    assert detect_point_masses(x, w, 0.3, 5) == (0.0, 2.0)


def test_integer_values_are_dequantized_and_rounded():
    x = np.random.default_rng(3).poisson(30, 1000).astype(float)
    enc = _fit(x, integer=True)
    state, u = enc.encode(x, np.random.default_rng(0))
    decoded = enc.decode(u, state)
    assert np.array_equal(decoded, x)


def test_inference_of_kinds():
    assert infer_kind(pd.Series([1, 2, 3]), role="target") == "categorical"
    assert infer_kind(pd.Series(range(100)), role="target") == "integer"
    assert infer_kind(pd.Series(range(100)), role="condition") == "continuous"
    assert infer_kind(pd.Series([True, False]), role="target") == "categorical"


def test_condition_encoder_one_hot_and_unseen_category():
    df = pd.DataFrame({"region": ["a", "b", "c", "a"], "age": [20.0, 30, 40, 50]})
    enc = ConditionEncoder({"region": "categorical", "age": "continuous"}).fit(df, np.ones(4))
    feats = enc.transform(df)
    assert feats.shape == (4, 4)
    assert np.array_equal(feats[:, :3].sum(1), np.ones(4))
    with pytest.raises(DataValidationError, match=r"'region' has categories not seen in training: \['z'\]"):
        enc.transform(pd.DataFrame({"region": ["z"], "age": [1.0]}))


def test_spec_rejects_unknown_kind():
    with pytest.raises(DataValidationError, match="'kind' must be"):
        VariableSpec(kind="ordinal")


def test_encoders_saved_before_segments_still_load():
    x = np.concatenate([np.zeros(50), np.exp(np.random.default_rng(4).normal(5, 1, 500))])
    enc = _fit(x)
    seg, = enc.segments
    flat = {"name": "v", "integer": False, "point_masses": enc.point_masses, "has_continuous": True,
            **{k: getattr(seg, k) for k in ("lower", "upper", "transform", "scale", "mean", "std")}}
    old = ContinuousEncoder.from_dict(flat)
    assert old.n_states == 2 and old.segments[0].tail_hi is None  # no linear tail in old files
    state, u = enc.encode(x)
    assert np.allclose(old.decode(u, state), enc.decode(u, state))
    assert ContinuousEncoder.from_dict(enc.to_dict()).to_dict() == enc.to_dict()
