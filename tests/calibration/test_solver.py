from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from microplex.calibration.distances import linear, make_distance, raking
from microplex.calibration.solver import newton_dual


def _problem(seed=0, n=400, m=6):
    rng = np.random.default_rng(seed)
    cat = rng.integers(0, m, n)
    x = sp.csr_matrix((np.ones(n), (np.arange(n), cat)), shape=(n, m))
    x = sp.hstack([x, sp.csr_matrix(rng.gamma(2.0, 1.0, (n, 1)))]).tocsr()
    d = rng.uniform(1, 3, n)
    w_true = d * rng.uniform(0.7, 1.4, n)
    return x, d, x.T @ w_true


def test_linear_unbounded_is_one_newton_step():
    x, d, t = _problem()
    res = newton_dual(x, d, t, linear, tol=1e-12)
    assert res.converged and res.n_iter <= 2
    np.testing.assert_allclose(x.T @ (d * res.g), t, rtol=1e-11)


def test_raking_converges_quadratically_with_relative_test():
    x, d, t = _problem(1)
    res = newton_dual(x, d, t, raking, tol=1e-12)
    assert res.converged
    assert res.max_misfit < 1e-12
    assert res.history[-1] < 1e-12 and len(res.history) <= 10


def test_redundant_constraints_are_handled():
    x, d, t = _problem(2)
    total = sp.csr_matrix(np.ones((x.shape[0], 1)))  # sum of all categories: redundant
    x2 = sp.hstack([x, total]).tocsr()
    t2 = np.append(t, t[:6].sum())
    res = newton_dual(x2, d, t2, raking, tol=1e-11)
    assert res.converged


def test_infeasible_reports_non_convergence_instead_of_garbage():
    x, d, t = _problem(3)
    t = t.copy()
    t[0] = -5.0  # a negative count is out of reach of raking
    res = newton_dual(x, d, t, raking, tol=1e-10, max_iter=30)
    assert not res.converged
    assert res.max_misfit > 1e-6


def test_soft_penalty_always_solves_and_compromises():
    x, d, t = _problem(4)
    x2 = sp.hstack([x[:, :1], x[:, :1]]).tocsr()  # the same count targeted twice ...
    t2 = np.array([t[0], t[0] * 1.2])  # ... with two different values
    res = newton_dual(x2, d, t2, raking, penalty=np.array([10.0, 10.0]), tol=1e-10)
    assert res.converged
    assert t2[0] < res.achieved[0] < t2[1]


def test_distance_without_potential_uses_misfit_line_search():
    plain = make_distance(lambda u, b: np.exp(u), lambda u, b: np.exp(u), "exp-no-potential")
    x, d, t = _problem(5)
    res = newton_dual(x, d, t, plain, tol=1e-11)
    ref = newton_dual(x, d, t, raking, tol=1e-11)
    assert res.converged
    np.testing.assert_allclose(res.g, ref.g, rtol=1e-8)


def test_wide_rows_use_the_general_sparse_products():
    rng = np.random.default_rng(6)
    n, m = 300, 12
    x = sp.csr_matrix(rng.uniform(0.5, 1.5, (n, m)))  # 12 entries per row: no slot layout
    d = rng.uniform(1, 2, n)
    t = x.T @ (d * rng.uniform(0.8, 1.2, n))
    res = newton_dual(x, d, t, raking, tol=1e-11)
    assert res.converged
    np.testing.assert_allclose(x.T @ (d * res.g), t, rtol=1e-10)


def test_slot_operator_matches_csr_products():
    import microplex.calibration.operator as operator

    rng = np.random.default_rng(7)
    n, m = 500, 30
    rows = np.repeat(np.arange(n), 3)
    cols = np.concatenate([rng.choice(m, 3, replace=False) for _ in range(n)])
    vals = rng.uniform(0.5, 2.0, 3 * n)
    keep = rng.random(3 * n) > 0.2  # ragged rows
    x = sp.csr_matrix((vals[keep], (rows[keep], cols[keep])), shape=(n, m))
    for dense_max in (1500, 5):
        old, operator.DENSE_MAX = operator.DENSE_MAX, dense_max
        try:
            op = operator.MatrixOperator(x)
            lam, v, s = rng.standard_normal(m), rng.standard_normal(n), rng.random(n)
            np.testing.assert_allclose(op.matvec(lam), x @ lam, rtol=1e-12)
            np.testing.assert_allclose(op.rmatvec(v), x.T @ v, rtol=1e-12, atol=1e-12)
            gram = op.gram(s)
            gram = gram if isinstance(gram, np.ndarray) else gram.toarray()
            np.testing.assert_allclose(gram, (x.T @ sp.diags(s) @ x).toarray(), rtol=1e-12, atol=1e-12)
        finally:
            operator.DENSE_MAX = old


import pytest  # noqa: E402

from microplex.calibration.distances import logit  # noqa: E402


@pytest.mark.parametrize(
    "dist, bounds",
    [(linear, (-np.inf, np.inf)), (linear, (0.6, 1.6)), (raking, (0.0, np.inf)), (raking, (0.6, 1.6)), (logit, (0.6, 1.6))],
)
def test_every_distance_meets_the_targets_within_its_bounds(dist, bounds):
    x, d, t = _problem(8)
    res = newton_dual(x, d, t, dist, bounds, tol=1e-11)
    assert res.converged and res.n_passes >= res.n_iter + 1
    np.testing.assert_allclose(x.T @ (d * res.g), t, rtol=1e-10)
    assert res.g.min() >= bounds[0] - 1e-12 and res.g.max() <= bounds[1] + 1e-12


def test_bounds_too_tight_do_not_converge():
    x, d, t = _problem(9)
    res = newton_dual(x, d, t * 1.5, raking, (0.9, 1.1), tol=1e-10, max_iter=30)
    assert not res.converged and res.g.max() <= 1.1 + 1e-12
