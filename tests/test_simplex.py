"""Unit and property tests of kexue_lib.simplex (chapter 5, discrete half)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from kexue_lib.simplex import (
    entropic_linear_objective,
    frank_wolfe,
    mirror_descent,
    optimality_gap,
    projected_gradient,
    quadratic_objective,
    sparsemax,
)


def arrays(min_dims=1, max_dims=3, max_side=7, lo=-5.0, hi=5.0):
    return hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=1, max_side=max_side),
        elements=st.floats(lo, hi, allow_nan=False, allow_infinity=False),
    )


def reference_sparsemax(x: torch.Tensor) -> torch.Tensor:
    """Textbook algorithm, one row at a time in plain Python (Martins & Astudillo 2016)."""
    x = x.contiguous()
    out = torch.empty_like(x)
    for r, row in enumerate(x.reshape(-1, x.shape[-1]).tolist()):
        zs = sorted(row, reverse=True)
        total, k, ksum = 0.0, 0, 0.0
        for j, z in enumerate(zs, start=1):
            total += z
            if 1 + j * z > total:
                k, ksum = j, total
        tau = (ksum - 1) / k
        out.view(-1, x.shape[-1])[r] = torch.tensor([max(v - tau, 0.0) for v in row], dtype=x.dtype)
    return out


# =================================================================== sparsemax


@given(a=arrays(), data=st.data())
def test_sparsemax_matches_reference_along_any_dim(a, data):
    x = torch.from_numpy(a)
    dim = data.draw(st.integers(-x.ndim, x.ndim - 1))
    p = sparsemax(x, dim)
    expected = reference_sparsemax(x.movedim(dim, -1)).movedim(-1, dim)
    torch.testing.assert_close(p, expected, atol=1e-12, rtol=0)
    torch.testing.assert_close(p.sum(dim), torch.ones_like(p.sum(dim)))
    assert (p >= 0).all()


@given(a=arrays(max_dims=2), w=arrays(min_dims=1, max_dims=1, max_side=7, lo=0.0, hi=1.0))
def test_sparsemax_is_the_projection(a, w):
    x = torch.from_numpy(a)
    p = sparsemax(x)
    n = x.shape[-1]
    # Variational inequality at every vertex: (x - p) . (e_j - p) <= 0, i.e. max_j (x-p)_j <= (x-p).p.
    r = x - p
    assert ((r * p).sum(-1) >= r.amax(-1) - 1e-12).all()
    # And directly: no point of the simplex (random ones and the vertices) is closer.
    q = torch.from_numpy(np.resize(w, n)) + 1e-3
    q = q / q.sum()
    candidates = torch.cat([q[None], torch.eye(n, dtype=x.dtype)])
    dist_p = (p - x).square().sum(-1, keepdim=True)
    dist_q = (candidates - x.unsqueeze(-2)).square().sum(-1)
    assert (dist_p <= dist_q + 1e-12).all()


def test_sparsemax_known_values_and_shift_invariance():
    x = torch.tensor([0.9, 0.7, -0.5], dtype=torch.float64)
    torch.testing.assert_close(sparsemax(x), torch.tensor([0.6, 0.4, 0.0], dtype=torch.float64))
    torch.testing.assert_close(sparsemax(x + 100.0), sparsemax(x))
    torch.testing.assert_close(sparsemax(torch.zeros(4)), torch.full((4,), 0.25))


def test_sparsemax_masks_minus_inf_and_gradient_zero_there():
    x = torch.tensor([[0.3, -float("inf"), 0.1, 0.2], [-float("inf"), 2.0, -float("inf"), 1.5]],
                     dtype=torch.float64, requires_grad=True)
    p = sparsemax(x)
    expected = sparsemax(torch.tensor([0.3, 0.1, 0.2], dtype=torch.float64))
    torch.testing.assert_close(p[0, [0, 2, 3]], expected)
    assert p[0, 1] == 0 and p[1, 0] == 0 and p[1, 2] == 0
    torch.testing.assert_close(p[1, [1, 3]], torch.tensor([0.75, 0.25], dtype=torch.float64))
    (g,) = torch.autograd.grad((p * torch.arange(4.0, dtype=torch.float64)).sum(), x)
    assert torch.isfinite(g).all()
    assert g[0, 1] == 0 and g[1, 0] == 0 and g[1, 2] == 0


def test_sparsemax_all_masked_row_is_nan_others_unaffected():
    x = torch.tensor([[-float("inf")] * 3, [1.0, 0.0, 0.0]], dtype=torch.float64)
    p = sparsemax(x)
    assert torch.isnan(p[0]).all()
    torch.testing.assert_close(p[1], torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64))


def test_sparsemax_gradcheck(gen):
    x = torch.randn(3, 5, 6, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda z: sparsemax(z, dim=1), (x,))
    assert torch.autograd.gradgradcheck(lambda z: sparsemax(z), (x,))
    # Scaled so that the support is small and the threshold is active.
    y = (4 * torch.randn(4, 7, generator=gen, dtype=torch.float64)).requires_grad_(True)
    assert torch.autograd.gradcheck(sparsemax, (y,))


def test_sparsemax_jacobian_formula():
    x = torch.tensor([0.9, 0.7, -0.5, 0.75], dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(sparsemax, x)
    s = (sparsemax(x) > 0).double()
    torch.testing.assert_close(jac, torch.diag(s) - torch.outer(s, s) / s.sum())


def test_sparsemax_float32_and_errors():
    p = sparsemax(torch.tensor([1e4, 1e4 - 0.5, 0.0]))
    assert p.dtype == torch.float32
    torch.testing.assert_close(p, torch.tensor([0.75, 0.25, 0.0]))
    with pytest.raises(TypeError, match="floating"):
        sparsemax(torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="dim"):
        sparsemax(torch.zeros(3), dim=2)
    with pytest.raises(ValueError, match="at least 1"):
        sparsemax(torch.tensor(1.0))


# =================================================================== descent methods

D = torch.float64
C = torch.tensor([0.5, 0.3, 0.2], dtype=D)
A = torch.tensor([[2.0, 0.5, 0.0], [0.5, 1.0, 0.3], [0.0, 0.3, 0.5]], dtype=D)
QUAD = quadratic_objective(A @ A.T, C)  # minimizer C, interior
COST = torch.tensor([0.2, 0.0, 0.5], dtype=D)
ENT = entropic_linear_objective(COST, 0.2)  # minimizer softmax(-COST / 0.2)
X = torch.tensor([0.9, 0.7, -0.5], dtype=D)
FACE = quadratic_objective(torch.eye(3, dtype=D), X)  # minimizer (0.6, 0.4, 0): on an edge
P0 = torch.tensor([0.15, 0.25, 0.6], dtype=D)
PROBLEMS = {
    "quadratic": (QUAD, C),
    "entropic": (ENT, torch.softmax(-COST / 0.2, -1)),
    "face": (FACE, torch.tensor([0.6, 0.4, 0.0], dtype=D)),
}


@pytest.mark.parametrize("problem", list(PROBLEMS))
@pytest.mark.parametrize(
    "method, kwargs, tol, f_tol",
    [
        (frank_wolfe, dict(eta=None), 1e-2, 1e-4),  # O(1/k) method: 400 steps get close, not exact
        (projected_gradient, dict(eta=0.3), 1e-8, 1e-14),
        (mirror_descent, dict(eta=1.0), 1e-8, 1e-14),
    ],
)
def test_descent_reaches_known_optimum(problem, method, kwargs, tol, f_tol):
    objective, optimum = PROBLEMS[problem]
    path = method(objective, P0, 400, **kwargs)
    assert path.shape == (401, 3)
    torch.testing.assert_close(path[0], P0)
    assert (path >= 0).all()
    torch.testing.assert_close(path.sum(-1), torch.ones(401, dtype=D))
    assert (path[-1] - optimum).abs().max() < tol
    assert objective(path[-1]) - objective(optimum) < f_tol
    # The optimality condition p . grad F = min grad F holds at the optimum, not at the start.
    assert optimality_gap(objective, optimum).abs() < 1e-12
    assert optimality_gap(objective, P0) > 1e-2


def test_optimality_gap_bounds_suboptimality(gen):
    p = torch.softmax(torch.randn(200, 3, generator=gen, dtype=D), -1)
    for objective, optimum in PROBLEMS.values():
        assert (objective(p) - objective(optimum) <= optimality_gap(objective, p) + 1e-12).all()


def test_mirror_descent_entropic_one_step():
    # log p_{k+1} = (1 - eta tau) log p_k - eta c + const: eta = 1/tau lands on the optimum at once.
    path = mirror_descent(ENT, P0, 1, eta=1 / 0.2)
    torch.testing.assert_close(path[1], torch.softmax(-COST / 0.2, -1))


def test_descent_is_batched():
    p0 = torch.stack([P0, torch.full((3,), 1 / 3, dtype=D)])
    for method in (projected_gradient, mirror_descent):
        path = method(FACE, p0, 300, eta=0.5)
        assert path.shape == (301, 2, 3)
        torch.testing.assert_close(path[-1], PROBLEMS["face"][1].expand(2, 3), atol=1e-9, rtol=0)
    path = frank_wolfe(FACE, p0, 5)
    assert path.shape == (6, 2, 3)


def test_constant_step_frank_wolfe_stalls():
    # The post's step with a fixed eta does not converge: the error stays of order eta.
    path = frank_wolfe(QUAD, P0, 2000, eta=0.05)
    tail = (path[-200:] - C).norm(dim=-1)
    assert tail.max() > 1e-3 and tail.max() < 0.2


def test_descent_argument_errors():
    with pytest.raises(ValueError, match="eta must be a finite number > 0"):
        projected_gradient(QUAD, P0, 3, eta=0.0)
    with pytest.raises(ValueError, match="eta must be a finite number > 0"):
        mirror_descent(QUAD, P0, 3, eta=-1.0)
    with pytest.raises(ValueError, match=r"eta must be in \(0, 1\]"):
        frank_wolfe(QUAD, P0, 3, eta=1.5)
    with pytest.raises(ValueError, match="rows summing to 1"):
        frank_wolfe(QUAD, torch.tensor([0.5, 0.5, 0.5], dtype=D), 3)
    with pytest.raises(ValueError, match="entries >= 0"):
        projected_gradient(QUAD, torch.tensor([1.2, -0.2, 0.0], dtype=D), 3, eta=0.1)
    with pytest.raises(ValueError, match="interior"):
        mirror_descent(QUAD, torch.tensor([1.0, 0.0, 0.0], dtype=D), 3, eta=0.1)
    with pytest.raises(ValueError, match="steps must be >= 0"):
        frank_wolfe(QUAD, P0, -1)
    with pytest.raises(ValueError, match="values of shape"):
        frank_wolfe(lambda p: p, P0, 1)
    with pytest.raises(TypeError, match="callable"):
        frank_wolfe("F", P0, 1)
    with pytest.raises(ValueError, match="q must have shape"):
        quadratic_objective(torch.eye(2, dtype=D), C)
    with pytest.raises(ValueError, match="tau"):
        entropic_linear_objective(COST, 0.0)


def test_projected_gradient_refuses_infinite_gradient():
    # A step so large that an iterate reaches the boundary, where the entropy's gradient is -inf.
    with pytest.raises(ValueError, match="not finite"):
        projected_gradient(ENT, P0, 50, eta=5.0)
