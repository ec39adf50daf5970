"""Unit and property tests of kexue_lib.flows (chapter 5, continuous half)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from kexue_lib.flows import (
    change_of_variables,
    dissipation,
    divergence,
    fokker_planck_grid,
    gibbs_mass,
    gradient,
    histogram,
    kde_score,
    kl_divergence,
    langevin,
    particle_flow,
    stable_step,
)

D = torch.float64
LO, HI, N = -2.5, 2.5, 100
H = (HI - LO) / N
X = LO + H * (torch.arange(N, dtype=D) + 0.5)


def potential(z: torch.Tensor) -> torch.Tensor:
    return (z**2 - 1) ** 2 + 0.3 * z


V = potential(X)
GIBBS = gibbs_mass(V)


def bump(center: float, width: float) -> torch.Tensor:
    p = torch.exp(-0.5 * ((X - center) / width) ** 2)
    return p / (p.sum() * H)


# =================================================================== grid solver


def test_gibbs_mass_is_normalized_and_stable():
    torch.testing.assert_close(GIBBS.sum(), torch.tensor(1.0, dtype=D))
    shifted = gibbs_mass(V + 1e4)  # exp(-V) would underflow to 0 everywhere
    torch.testing.assert_close(shifted, GIBBS)
    two = gibbs_mass(torch.stack([V, V]), ndim=2)
    torch.testing.assert_close(two, torch.stack([GIBBS, GIBBS]) / 2)


@given(center=st.floats(-1.5, 1.5), width=st.floats(0.1, 0.6))
def test_grid_conserves_mass_and_positivity(center, width):
    p0 = torch.stack([bump(center, width), bump(-center, 0.2)])
    out = fokker_planck_grid(p0, V, H, [0.05, 0.2])
    assert out.shape == (2, 2, N)
    torch.testing.assert_close(out.sum(-1) * H, torch.ones(2, 2, dtype=D), atol=1e-12, rtol=0)
    assert (out >= 0).all()


def test_discrete_gibbs_is_stationary():
    p = GIBBS / H
    out = fokker_planck_grid(p, V, H, [1.0])
    torch.testing.assert_close(out[0], p, atol=1e-12, rtol=1e-10)


def test_grid_converges_to_gibbs_with_decreasing_free_energy():
    times = torch.linspace(0, 6, 13).tolist()
    out = fokker_planck_grid(bump(1.2, 0.25), V, H, times)
    kl = kl_divergence(out * H, GIBBS)
    assert kl[0] > 1.0 and kl[-1] < 1e-3
    assert (kl.diff() < 0).all()
    # KL decays like exp(-2 lambda_1 t), lambda_1 the spectral gap of the scheme.
    rate = -(kl[-1] / kl[-2]).log() / (times[-1] - times[-2])
    assert 1.2 < rate < 1.9


def test_dissipation_matches_energy_decrease():
    t, dt = 0.5, 1e-3
    out = fokker_planck_grid(bump(1.2, 0.3), V, H, [t - dt, t, t + dt])
    kl = kl_divergence(out * H, GIBBS)
    measured = -(kl[2] - kl[0]) / (2 * dt)
    predicted = dissipation(out[1], V, H)
    assert abs(measured / predicted - 1) < 0.02


def test_stable_step_bound_and_errors():
    limit = stable_step(V, H)
    assert H * H / 4 <= limit <= H * H / 2 + 1e-15
    flat = stable_step(torch.zeros(N, dtype=D), H)
    assert math.isclose(flat, H * H / 2)
    spike = torch.zeros(N, dtype=D)
    spike[N // 2] = 1 / H
    out = fokker_planck_grid(spike, V, H, [0.01], dt=limit)
    assert (out >= 0).all()
    with pytest.raises(ValueError, match="dt must be <="):
        fokker_planck_grid(spike, V, H, [0.01], dt=2 * limit)
    with pytest.raises(ValueError, match="times must be"):
        fokker_planck_grid(spike, V, H, [0.2, 0.1])
    with pytest.raises(ValueError, match="times must be"):
        fokker_planck_grid(spike, V, H, [-1.0])
    with pytest.raises(ValueError, match=">= 0"):
        fokker_planck_grid(-spike, V, H, [0.1])
    with pytest.raises(ValueError, match="same number"):
        fokker_planck_grid(spike, V[:-1], H, [0.1])
    with pytest.raises(ValueError, match="h must be"):
        fokker_planck_grid(spike, V, 0.0, [0.1])


def test_kl_and_histogram():
    p = torch.tensor([0.5, 0.5, 0.0], dtype=D)
    q = torch.tensor([0.25, 0.25, 0.5], dtype=D)
    torch.testing.assert_close(kl_divergence(p, q), torch.tensor(math.log(2), dtype=D))
    assert kl_divergence(p, p) == 0
    x = torch.tensor([[-0.9], [-0.1], [0.1], [0.2], [5.0]], dtype=D)
    torch.testing.assert_close(histogram(x, -1.0, 1.0, 2), torch.tensor([0.4, 0.4], dtype=D))
    x2 = torch.tensor([[[0.1, 0.1], [0.9, 0.1], [0.9, 0.2], [0.6, 0.7]]], dtype=D)
    torch.testing.assert_close(histogram(x2, 0.0, 1.0, 2), torch.tensor([[[0.25, 0.0], [0.5, 0.25]]], dtype=D))
    with pytest.raises(ValueError, match="lo < hi"):
        histogram(x, 1.0, -1.0, 2)


# =================================================================== particles


def exact_kde_score(x: torch.Tensor, sigma: float) -> torch.Tensor:
    diff = x[None, :, :] - x[:, None, :]  # x_j - x_i
    logk = -0.5 * diff.square().sum(-1) / sigma**2
    w = torch.softmax(logk, dim=1)
    return (w[..., None] * diff).sum(1) / sigma**2


@pytest.mark.parametrize("d, cells", [(1, 400), (2, 120)])
def test_kde_score_matches_pairwise(gen, d, cells):
    x = torch.randn(300, d, generator=gen, dtype=D) * 0.7
    sigma = 0.3
    approx = kde_score(x, sigma, -4.0, 4.0, cells)
    exact = exact_kde_score(x, sigma)
    assert approx.shape == x.shape
    assert (approx - exact).abs().max() / exact.abs().max() < 0.02


def test_particle_flow_approaches_gibbs():
    n = 2000
    u = (torch.arange(n, dtype=D) + 0.5) / n
    x0 = (1.2 + 0.25 * torch.special.ndtri(u))[:, None]
    out = particle_flow(x0, lambda z: potential(z[..., 0]), [0.0, 1.0, 6.0], dt=0.01, bandwidth=0.08,
                        box=(-3.0, 3.0), cells=200)
    assert out.shape == (3, n, 1)
    target = GIBBS.reshape(25, 4).sum(-1)
    kl = kl_divergence(histogram(out, LO, HI, 25), target)
    assert kl[0] > 1.0 and kl[1] < 0.5 * kl[0] and kl[2] < 0.01
    # Moved by the flow, not by chance: the mass in the left (deeper) well matches Gibbs.
    left = (out[-1, :, 0] < 0).double().mean()
    assert abs(left - GIBBS[X < 0].sum()) < 0.03


def test_langevin_approaches_gibbs_and_is_seeded():
    x0 = torch.full((4000, 1), 1.2, dtype=D)
    runs = [langevin(x0, lambda z: potential(z[..., 0]), [6.0], dt=0.01, generator=torch.Generator().manual_seed(7))
            for _ in range(2)]
    torch.testing.assert_close(runs[0], runs[1])
    target = GIBBS.reshape(25, 4).sum(-1)
    assert kl_divergence(histogram(runs[0], LO, HI, 25), target)[0] < 0.02


def test_particle_flow_2d_is_batched(gen):
    x0 = 0.3 * torch.randn(2, 500, 2, generator=gen, dtype=D)
    out = particle_flow(x0, lambda z: 0.5 * z.square().sum(-1), [0.5], dt=0.02, bandwidth=0.2, box=(-4.0, 4.0), cells=64)
    assert out.shape == (1, 2, 500, 2)
    # For V = |x|^2/2 the Gibbs density is N(0, I); variance grows from 0.09 toward 1.
    var = out[0].var(dim=1)
    assert (var > 0.3).all() and (var < 1.0).all()


# =================================================================== calculus helpers


def test_gradient_and_divergence(gen):
    x = torch.randn(50, 3, generator=gen, dtype=D)
    torch.testing.assert_close(gradient(lambda z: z.square().sum(-1), x), 2 * x)
    torch.testing.assert_close(divergence(lambda z: z * z.sum(-1, keepdim=True), x), 4 * x.sum(-1))
    with pytest.raises(ValueError, match="same shape"):
        divergence(lambda z: z.sum(-1), x)


def test_change_of_variables_is_second_order(gen):
    x = torch.randn(200, 2, generator=gen, dtype=D)

    def density(z):
        return torch.exp(-0.5 * z.square().sum(-1)) / (2 * math.pi)

    def mu(z):
        return torch.stack([torch.sin(z[..., 1]) + z[..., 0], z[..., 0] * z[..., 1]], dim=-1)

    errs = []
    for eta in (1e-2, 1e-3):
        exact, first = change_of_variables(density, mu, x, eta)
        errs.append((exact - first).abs().max())
    assert 50 < errs[0] / errs[1] < 200  # error ~ eta^2
