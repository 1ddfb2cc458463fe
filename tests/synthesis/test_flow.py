"""Contract tests over every flow kind: shapes, invertibility, exact per-variable log-densities."""

import pytest
import torch

from microplex.synthesis.flow import TriangularFlow

KINDS = ["maf", "nsf"]


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("features", [1, 3])
def test_inverse_recovers_input(kind, features):
    flow = TriangularFlow(features, 4, kind)
    x, c = torch.randn(64, features), torch.randn(64, 4)
    z, _ = flow.forward_terms(x, c)
    assert z.shape == (64, features)
    assert torch.allclose(flow.inverse(z, c), x, atol=1e-4)


@pytest.mark.parametrize("kind", KINDS)
def test_jacobian_is_triangular_and_terms_match_autograd(kind):
    flow = TriangularFlow(3, 2, kind)
    x, c = torch.randn(1, 3), torch.randn(1, 2)
    jac = torch.autograd.functional.jacobian(lambda t: flow.forward_terms(t, c)[0], x).reshape(3, 3)
    assert jac.triu(1).abs().max() == 0
    _, ladj = flow.forward_terms(x, c)
    assert torch.allclose(ladj[0], jac.diagonal().abs().log(), atol=1e-4)


@pytest.mark.parametrize("kind", KINDS)
def test_density_integrates_to_one_in_one_dimension(kind):
    flow = TriangularFlow(1, 1, kind)
    grid = torch.linspace(-30, 30, 200_001)[:, None]
    c = torch.full_like(grid, 0.3)
    with torch.no_grad():
        p = flow.log_prob_terms(grid, c)[:, 0].exp()
    assert torch.trapezoid(p, grid[:, 0]).item() == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("kind", KINDS)
def test_pinned_coordinates_take_their_value_and_condition_later_ones(kind):
    flow = TriangularFlow(3, 2, kind)
    z, c = torch.randn(100, 3), torch.randn(100, 2)
    pinned = torch.rand(100, 3) < 0.4
    values = torch.full((100, 3), 0.25)
    x = flow.inverse(z, c, pinned, values)
    assert torch.equal(x[pinned], values[pinned])
    z_back, _ = flow.forward_terms(x, c)
    assert torch.allclose(z_back[~pinned], z[~pinned], atol=1e-4)


def test_unknown_kind_is_rejected():
    with pytest.raises(ValueError, match="'kind' parameter"):
        TriangularFlow(2, 1, "glow")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("features", "context", "hidden"),
                         [(3, 4, (64, 64)), (5, 0, (32, 48, 16)), (2, 3, (8,)), (4, 2, (3, 5))])
def test_incremental_hyper_network_equals_zukos_own(kind, features, context, hidden):
    # Step j of the incremental evaluation (only the units that become ready at j) must give
    # coordinate j the same transform parameters as zuko's full masked network.
    from zuko.utils import unpack

    from microplex.synthesis.flow import _ColumnHyper

    flow = TriangularFlow(features, context, kind, hidden_features=hidden)
    for p in flow.parameters():  # away from the initialization, where many units are inactive
        p.data.normal_(0.0, 0.5)
    y, c = torch.randn(200, features), torch.randn(200, context)
    for layer in flow.layers:
        with torch.no_grad():
            full = layer.hyper(torch.cat((y, c), dim=1)).unflatten(-1, (features, layer.total))
            hyper = _ColumnHyper(layer, c, features, {}, "layer")
            for j in range(features):
                got = hyper.transform(y[:, :j].T.contiguous(), j)
                want = layer.univariate(*unpack(full[:, j], layer.shapes))
                v = torch.randn(200)
                assert torch.allclose(got(v), want(v), atol=1e-4, rtol=1e-4), (j, kind, float((got(v) - want(v)).abs().max()))


@pytest.mark.parametrize("kind", KINDS)
def test_inverse_with_a_workspace_is_identical_and_independent_of_the_batch(kind):
    flow = TriangularFlow(4, 3, kind)
    x, c = torch.randn(500, 4), torch.randn(500, 3)
    z, _ = flow.forward_terms(x, c)
    pinned, values = torch.rand(500, 4) < 0.3, torch.randn(500, 4)
    plain = flow.inverse(z, c, pinned, values)
    ws: dict = {}
    first = flow.inverse(z, c, pinned, values, workspace=ws)
    part = flow.inverse(z[:123], c[:123], pinned[:123], values[:123], workspace=ws)  # reuses a smaller front
    again = flow.inverse(z, c, pinned, values, workspace=ws)
    assert torch.equal(plain, first) and torch.equal(first, again)
    assert torch.equal(part, plain[:123])
    assert torch.equal(plain[pinned], values[pinned])
    assert torch.allclose(plain[~pinned.any(dim=1)], x[~pinned.any(dim=1)], atol=1e-4)


def test_mlp_forward_matches_the_module_and_never_aliases_its_output():
    from torch import nn
    from zuko.nn import MLP

    from microplex.synthesis._workspace import mlp_forward

    x, ws = torch.randn(50, 6), {}
    for act in (nn.ReLU, nn.ELU):
        mlp = MLP(6, 4, hidden_features=(16, 8), activation=act)
        want = mlp(x)
        got = mlp_forward(mlp, x, ws, f"m{act.__name__}")
        assert torch.allclose(got, want, atol=1e-6)
        out = mlp_forward(mlp, x, ws, f"m{act.__name__}", scratch_output=True)
        out.zero_()  # the caller may overwrite it: the module's parameters are untouched
        assert torch.allclose(mlp(x), want)
    seq = nn.Sequential(nn.Linear(6, 4), nn.LayerNorm(4))  # not a dense/activation stack: called as is
    assert torch.allclose(mlp_forward(seq, x, ws, "s"), seq(x))


def test_mlp_forward_never_hands_out_a_parameter_view_to_be_written():
    from microplex.synthesis._workspace import mlp_forward
    from microplex.synthesis.heaps import Logits

    head, ws = Logits(4), {}
    for n in (1, 6):
        out = mlp_forward(head, torch.zeros(n, 0), ws, "l", scratch_output=True)
        out.add_(1.0)
        assert torch.equal(head.logits, torch.zeros(4))
