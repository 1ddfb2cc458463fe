"""Session 53, lumpy values: point masses, heaps and bounds of integer targets on real-shaped data."""

import numpy as np

from microplex import VariableSpec
from microplex.synthesis.transforms import ContinuousEncoder, integer_point_masses


def _encoder(x, **kw):
    params = dict(heap_threshold=0.003, max_heaps=64, min_heap_count=20)
    params.update(kw)
    return ContinuousEncoder("x", integer=True).fit(x, np.ones(len(x)), VariableSpec(), 0.01, 5, **params)


def _flow_values(enc, segment=0, n=200_001):
    """Every value the continuous state of ``segment`` decodes to, off the heaps (the flow's
    coordinate swept from far below to far above the training values)."""
    u = np.linspace(-12.0, 12.0, n)
    state = np.full(n, enc.continuous_states[segment])
    return enc.decode(u, state, np.zeros(n, dtype=np.int64))


def test_integer_flow_draws_never_land_on_a_point_mass_beside_an_end_heap():
    """A count with zeros (a point mass), its smallest positive values heaped (1, 2, 3: heaps, as
    integer point masses are only 0 and the end values) and a top code at 60 whose neighbour 59 is
    a heap. The heap integers leave the flow's coordinate, so the segment's bound sat a whole unit
    below the smallest free value: flow draws just inside it rounded onto the point mass 0 (a zero
    drawn by the continuous state) and, at the top, onto the top code 60."""
    rng = np.random.default_rng(0)
    x = rng.integers(4, 59, 8000).astype(float)
    u = rng.random(8000)
    x[u < 0.30] = 0.0
    x[(u >= 0.30) & (u < 0.36)] = 1.0
    x[(u >= 0.36) & (u < 0.40)] = 2.0
    x[(u >= 0.40) & (u < 0.43)] = 3.0
    x[(u >= 0.43) & (u < 0.48)] = 60.0
    x[(u >= 0.48) & (u < 0.50)] = 59.0
    enc = _encoder(x, heap_threshold=0.01)
    assert enc.point_masses == [0.0, 60.0] and enc.compact
    assert {1.0, 2.0, 3.0, 59.0} <= set(enc.heaps)
    flow = _flow_values(enc)
    free = sorted(set(np.unique(x)) - set(enc.heaps) - set(enc.point_masses))
    assert not np.isin(flow, enc.point_masses).any()      # old code: 0 and 60 drawn by the flow
    assert not np.isin(flow, enc.heaps).any()
    assert flow.min() == free[0] and flow.max() == free[-1]  # old code: min 0 and max 60
    assert set(np.unique(flow)) == set(free)  # every free value still reached


def test_integer_flow_draws_stay_above_the_minimum_when_the_smallest_value_is_a_heap():
    """Without any point mass: the smallest value (5, held by 0.6% of the records) is a heap, so
    the flow used to draw 4, a value below the training minimum; likewise on the negative side of
    a variable split at a zero point mass (-1 a heap next to the zero)."""
    rng = np.random.default_rng(1)
    x = rng.integers(6, 200, 8000).astype(float)
    x[:48] = 5.0
    enc = _encoder(x, heap_threshold=0.005)
    assert enc.heaps[0] == 5.0 and enc.point_masses == []
    assert _flow_values(enc).min() == 6.0  # old code: 4.0
    y = rng.integers(-80, 80, 8000).astype(float)
    y[:800], y[800:1000] = 0.0, -1.0
    enc = _encoder(y, heap_threshold=0.02)
    assert enc.point_masses == [0.0] and enc.heaps == [-1.0] and len(enc.segments) == 2
    neg = _flow_values(enc, segment=0)
    assert neg.max() == -2.0 and not (neg == 0).any()  # old code: zeros drawn by the negative segment


def test_heaps_need_min_heap_count_records_of_positive_weight():
    """Records of weight 0 are outside the weighted population: a value that one record of weight
    holds, beside 30 records of weight 0, is not a heap (it was one: its heap state identified the
    record). The same value held by 30 records of weight is one."""
    rng = np.random.default_rng(2)
    x = np.round(rng.lognormal(7, 1, 3000), 2)
    w = rng.uniform(0.5, 2.0, 3000)
    x[:31], w[:30], w[30] = 777.0, 0.0, 200.0  # one record of weight 200 (6% of the weight) at 777
    enc = ContinuousEncoder("x").fit(x, w, VariableSpec(), 0.5, 5, heap_threshold=0.003, max_heaps=64,
                                     min_heap_count=20)
    assert 777.0 not in enc.heaps  # old code: (777.0,)
    w[:31] = 200.0 / 31
    enc = ContinuousEncoder("x").fit(x, w, VariableSpec(), 0.5, 5, heap_threshold=0.003, max_heaps=64,
                                     min_heap_count=20)
    assert enc.heaps == [777.0]


def test_point_masses_need_min_heap_count_records_of_positive_weight():
    """A value of a few heavy records (3 of 150 records, 2% of the weight) was a point mass: its exact value
    went into the model file and was drawn at 2%. A detected point mass other than 0 now needs
    ``min_heap_count`` records of positive weight, as a heap does (session 56); 0 and declared ones are kept."""
    rng = np.random.default_rng(3)
    x = np.round(rng.lognormal(9, 1, 150), 2)
    w = np.ones(150)
    x[:3] = 31234.56  # three records: 2% of the weight
    x[3:28] = 50000.0  # a top code of 25 records
    x[28:31] = 0.0  # three zeros
    w[31:60] = 0.0
    x[31:60] = 31234.56  # held by 29 more records, all of weight 0: still 3 of positive weight
    enc = ContinuousEncoder("x").fit(x, w, VariableSpec(), 0.01, 5, min_heap_count=20)
    assert enc.point_masses == [0.0, 50000.0]
    enc = ContinuousEncoder("x").fit(x, w, VariableSpec(), 0.01, 5, min_heap_count=3)
    assert enc.point_masses == [0.0, 31234.56, 50000.0]
    declared = ContinuousEncoder("x").fit(x, w, VariableSpec(point_masses=[31234.56]), 0.01, 5, min_heap_count=20)
    assert declared.point_masses == [31234.56]


def test_integer_end_values_need_min_heap_count_records_of_positive_weight():
    x = np.r_[np.arange(1, 140), [500] * 5, [0] * 6].astype(float)
    w = np.ones(len(x))
    assert integer_point_masses(x, w, 0.01, 20) == (0.0,)  # a top code of 5 records (3.3%): a heap or the flow's
    assert integer_point_masses(x, w, 0.01, 5) == (0.0, 500.0)
