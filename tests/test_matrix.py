"""Unit and property tests of kexue_lib.matrix (chapter 2)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from kexue_lib import matrix as mx

expm = torch.linalg.matrix_exp


def matrices(max_n=5, max_batch=2, scale=2.0):
    """Float64 tensors of square matrices, shape (*batch, n, n), entries in [-scale, scale]."""
    shapes = st.tuples(
        st.lists(st.integers(1, 3), min_size=0, max_size=max_batch), st.integers(1, max_n)
    ).map(lambda bn: (*bn[0], bn[1], bn[1]))
    return shapes.flatmap(
        lambda shape: hnp.arrays(np.float64, shape, elements=st.floats(-scale, scale, allow_nan=False))
    ).map(torch.from_numpy)


def jordan(n: int, lam: float) -> torch.Tensor:
    return lam * torch.eye(n, dtype=torch.float64) + torch.diag(torch.ones(n - 1, dtype=torch.float64), 1)


def rotation_generator(theta: float) -> torch.Tensor:
    return theta * torch.tensor([[0.0, -1.0], [1.0, 0.0]], dtype=torch.float64)


# ============================================================ the series


@given(a=matrices(scale=1.5))
def test_series_matches_matrix_exp(a):
    torch.testing.assert_close(mx.exp_series(a, 40), expm(a), rtol=1e-12, atol=1e-12)


@given(a=matrices(scale=1.0), terms=st.integers(1, 8))
def test_partial_sums_are_the_truncations(a, terms):
    sums = mx.exp_series(a, terms, partial=True)
    assert sums.shape == (*a.shape[:-2], terms, *a.shape[-2:])
    torch.testing.assert_close(sums[..., -1, :, :], mx.exp_series(a, terms))
    torch.testing.assert_close(sums[..., 0, :, :], torch.eye(a.shape[-1], dtype=a.dtype).expand_as(a))
    if terms >= 2:
        torch.testing.assert_close(sums[..., 1, :, :] - sums[..., 0, :, :], a)


def test_series_of_a_scalar_is_taylor():
    x = torch.tensor([[[0.7]]], dtype=torch.float64)
    assert mx.exp_series(x, 3).item() == pytest.approx(1 + 0.7 + 0.49 / 2, rel=1e-15)


def test_series_of_nilpotent_terminates():
    n = jordan(4, 0.0) * 3.0  # N^4 = 0: four terms are exact
    torch.testing.assert_close(mx.exp_series(n, 4), expm(n), rtol=1e-14, atol=1e-14)
    assert not torch.allclose(mx.exp_series(n, 3), expm(n))


def test_large_norm_series_loses_digits_and_scaling_fixes_it():
    a = torch.tensor([[-25.0, 1.0], [0.0, -24.0]], dtype=torch.float64)
    ref = expm(a)
    rel = lambda x: float((x - ref).abs().max() / ref.abs().max())  # noqa: E731
    assert rel(mx.exp_series(a, 150)) > 1e-3  # cancellation of terms ~ 25^25/25!
    assert rel(mx.exp_scaled_series(a, 14, 6)) < 1e-12


@given(a=matrices(scale=6.0), s=st.integers(0, 4))
def test_scaled_series_is_exact_in_the_limit(a, s):
    # With ||A/2^s|| small enough the series is exact; take s + 6 squarings to be sure.
    ref = expm(a)
    out = mx.exp_scaled_series(a, 18, s + 6)
    assert torch.allclose(out, ref, rtol=1e-9, atol=1e-9 * float(ref.abs().max()))


def test_scaled_series_zero_squarings_is_series():
    a = torch.randn(3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(mx.exp_scaled_series(a, 7, 0), mx.exp_series(a, 7))


# ============================================================ the identity


@given(a=matrices(scale=2.0))
def test_det_exp_equals_exp_trace(a):
    sides = mx.det_exp_sides(a)
    torch.testing.assert_close(sides.det_exp, sides.exp_trace, rtol=1e-10, atol=0)
    torch.testing.assert_close(sides.logdet_exp, sides.trace, rtol=0, atol=1e-10)


@pytest.mark.parametrize(
    "a",
    [jordan(5, 0.3), jordan(3, -1.2), jordan(6, 0.0) * 2.0, rotation_generator(2.5),
     torch.block_diag(rotation_generator(1.0), jordan(2, 0.5))],
    ids=["jordan5", "jordan3", "nilpotent", "rotation", "mixed"],
)
def test_identity_on_special_matrices(a):
    sides = mx.det_exp_sides(a)
    torch.testing.assert_close(sides.det_exp, sides.exp_trace, rtol=1e-12, atol=0)
    f, df = mx.det_exp_path(a, torch.linspace(-1, 2, 7, dtype=a.dtype))
    torch.testing.assert_close(df, mx.trace(a) * f, rtol=1e-9, atol=1e-12)


@given(a=matrices(scale=1.0), t=st.floats(-2, 2))
def test_det_exp_path_solves_the_ode(a, t):
    f, df = mx.det_exp_path(a, t)
    assert f.shape == a.shape[:-2]
    torch.testing.assert_close(f, torch.exp(t * mx.trace(a)), rtol=1e-9, atol=0)
    torch.testing.assert_close(df, mx.trace(a) * f, rtol=1e-8, atol=1e-12)


def test_det_exp_path_broadcasts_times_against_one_matrix():
    a = jordan(3, 0.2)
    t = torch.tensor([0.0, 1.0, 3.0], dtype=torch.float64)
    f, df = mx.det_exp_path(a, t)
    assert f.shape == (3,)
    assert f[0].item() == pytest.approx(1.0)
    torch.testing.assert_close(df, 0.6 * torch.exp(0.6 * t))


@given(a=matrices(scale=3.0))
def test_exp_minus_a_is_the_inverse(a):
    eye = torch.eye(a.shape[-1], dtype=a.dtype).expand_as(a)
    scale = float(expm(a).abs().max() * expm(-a).abs().max())
    assert torch.allclose(expm(a) @ expm(-a), eye, atol=1e-12 * scale)


def test_eig_route_fails_on_jordan_block_but_not_on_diagonalizable():
    j = jordan(4, 1.0)
    out, cond = mx.exp_via_eig(j)
    assert cond > 1e12
    assert (out - expm(j)).abs().max() > 0.1
    a = torch.randn(2, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    out, cond = mx.exp_via_eig(a)
    assert out.dtype == a.dtype and cond.shape == (2,)
    torch.testing.assert_close(out, expm(a), rtol=1e-10, atol=1e-10)


# ============================================================ products, commutators, functions


@given(a=matrices(max_n=4, scale=1.0), b=st.floats(-2, 2), c=st.floats(-2, 2))
def test_commuting_pairs_have_no_gap(a, b, c):
    # polynomials in the same matrix commute
    eye = torch.eye(a.shape[-1], dtype=a.dtype)
    p, q = b * a + eye, c * a @ a - a
    assert mx.commutator(p, q).abs().max() < 1e-12
    assert mx.exp_product_gap(p, q).max() < 1e-10 * (1 + float(expm(p + q).abs().max()))


def test_gap_is_half_the_commutator_for_small_matrices():
    g = torch.Generator().manual_seed(3)
    a, b = torch.randn(2, 50, 3, 3, dtype=torch.float64, generator=g) * 1e-3
    ratio = mx.exp_product_gap(a, b) / torch.linalg.matrix_norm(mx.commutator(a, b))
    torch.testing.assert_close(ratio, torch.full_like(ratio, 0.5), rtol=1e-2, atol=0)


def test_gap_vanishes_for_a_non_commuting_complex_pair():
    a = torch.tensor([[0, 0], [0, 2j * math.pi]], dtype=torch.complex128)
    b = torch.tensor([[0, 1], [0, 2j * math.pi]], dtype=torch.complex128)
    assert mx.commutator(a, b).abs().max() > 1.0
    assert mx.exp_product_gap(a, b) < 1e-12


@given(a=matrices(max_n=4, scale=1.5))
def test_sin_cos_pythagoras_and_series(a):
    s, c = mx.sin_cos(a)
    eye = torch.eye(a.shape[-1], dtype=a.dtype).expand_as(a)
    torch.testing.assert_close(s @ s + c @ c, eye, rtol=0, atol=1e-9)
    series_sin = sum((-1) ** k * torch.linalg.matrix_power(a, 2 * k + 1) / float(math.factorial(2 * k + 1))
                     for k in range(15))
    torch.testing.assert_close(s, series_sin, rtol=1e-9, atol=1e-9)


def test_sin_of_sum_for_commuting_pair():
    a = jordan(3, 0.4)
    b = 0.5 * a @ a
    sa, ca = mx.sin_cos(a)
    sb, cb = mx.sin_cos(b)
    s_ab, _ = mx.sin_cos(a + b)
    torch.testing.assert_close(s_ab, sa @ cb + sb @ ca)


def test_log_series_inverts_exp_and_gives_logdet_by_trace():
    g = torch.Generator().manual_seed(5)
    a = torch.randn(3, 4, 4, dtype=torch.float64, generator=g)
    a = 0.6 * a / torch.linalg.matrix_norm(a, ord=2)[:, None, None]
    log = mx.log_series(a, 120)
    eye = torch.eye(4, dtype=a.dtype)
    torch.testing.assert_close(expm(log), eye + a)
    torch.testing.assert_close(mx.trace(log), torch.linalg.slogdet(eye + a).logabsdet)


def test_log_series_converges_beyond_unit_norm_when_spectral_radius_is_small():
    a = torch.tensor([[0.5, 10.0], [0.0, 0.5]], dtype=torch.float64)  # ||a||_2 > 10, rho = 0.5
    eye = torch.eye(2, dtype=a.dtype)
    torch.testing.assert_close(expm(mx.log_series(a, 200)), eye + a)
    big = torch.tensor([[1.5, 0.0], [0.0, 0.1]], dtype=torch.float64)  # rho > 1: diverges
    assert mx.log_series(big, 60).abs().max() > 1e6


# ============================================================ Liouville


@given(a=matrices(max_n=2, max_batch=1, scale=1.0).filter(lambda m: m.shape[-1] == 2), t=st.floats(-1.5, 1.5))
def test_flow_scales_area_by_exp_t_trace(a, t):
    theta = torch.linspace(0, 2 * math.pi, 41, dtype=torch.float64)[:-1]
    circle = torch.stack([theta.cos(), theta.sin()], -1)
    moved = mx.linear_flow(a, circle, t)
    assert moved.shape == (*a.shape[:-2], 40, 2)
    ratio = mx.signed_area(moved) / mx.signed_area(circle)
    torch.testing.assert_close(ratio, torch.exp(t * mx.trace(a)), rtol=1e-10, atol=0)


def test_flow_solves_the_ode():
    a = torch.tensor([[0.2, -1.0], [1.0, 0.2]], dtype=torch.float64)
    x0 = torch.tensor([[1.0, 0.5]], dtype=torch.float64)
    h = 1e-5
    t = torch.tensor(0.7, dtype=torch.float64)
    deriv = (mx.linear_flow(a, x0, t + h) - mx.linear_flow(a, x0, t - h)) / (2 * h)
    torch.testing.assert_close(deriv, mx.linear_flow(a, x0, t) @ a.T, rtol=1e-8, atol=1e-9)
    torch.testing.assert_close(mx.linear_flow(a, x0, 0.0), x0)


def test_flow_batches_over_times():
    a = rotation_generator(1.0)
    t = torch.linspace(0, math.pi, 5, dtype=torch.float64)
    out = mx.linear_flow(a, torch.tensor([[1.0, 0.0]], dtype=torch.float64), t)
    assert out.shape == (5, 1, 2)
    torch.testing.assert_close(out[-1, 0], torch.tensor([-1.0, 0.0], dtype=torch.float64))


def test_signed_area_of_unit_square_and_orientation():
    sq = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    assert mx.signed_area(sq).item() == pytest.approx(1.0)
    assert mx.signed_area(sq.flip(0)).item() == pytest.approx(-1.0)
    assert mx.signed_area(torch.stack([sq, 2 * sq])).tolist() == pytest.approx([1.0, 4.0])


# ============================================================ Hutchinson


def test_hutchinson_is_unbiased_within_standard_errors():
    g = torch.Generator().manual_seed(11)
    a = torch.randn(6, 6, dtype=torch.float64, generator=g)
    for dist in ("rademacher", "gaussian"):
        reps = 20_000
        est = mx.hutchinson_trace(a.expand(reps, 6, 6), 3, generator=g, distribution=dist)
        se = math.sqrt(float(mx.hutchinson_variance(a, dist)) / 3 / reps)
        assert abs(float(est.mean() - mx.trace(a))) < 4 * se
        # the sample variance matches the exact formula (within 5 %)
        assert float(est.var()) == pytest.approx(float(mx.hutchinson_variance(a, dist)) / 3, rel=0.05)


def test_hutchinson_rademacher_is_exact_on_diagonal_and_seeded():
    d = torch.diag(torch.tensor([1.0, -2.0, 5.0], dtype=torch.float64))
    est = mx.hutchinson_trace(d.expand(10, 3, 3), 1, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(est, torch.full((10,), 4.0, dtype=torch.float64))
    assert mx.hutchinson_variance(d) == 0
    one = mx.hutchinson_trace(d, 4, generator=torch.Generator().manual_seed(7), distribution="gaussian")
    two = mx.hutchinson_trace(d, 4, generator=torch.Generator().manual_seed(7), distribution="gaussian")
    assert one.shape == () and one == two


def test_hutchinson_variance_ignores_antisymmetric_part():
    k = rotation_generator(3.0)
    assert mx.hutchinson_variance(k) == 0 and mx.hutchinson_variance(k, "gaussian") == 0


# ============================================================ first order, flows


@given(a=matrices(scale=1.0))
def test_det_first_order_error_is_second_order(a):
    etas = torch.tensor([1e-2, 1e-3], dtype=torch.float64).reshape(2, *[1] * (a.ndim - 2))
    exact, first = mx.det_first_order(a, etas)
    tr, tr2 = mx.trace(a), mx.trace(a @ a)
    second = etas**2 / 2 * (tr**2 - tr2)
    assert ((exact - first - second).abs() <= 1e-12 + 200 * etas**3).all()


def test_flow_logdet_matches_jacobian_of_flow_map():
    g = torch.Generator().manual_seed(2)
    w = torch.randn(3, 3, dtype=torch.float64, generator=g)
    bias = torch.randn(3, dtype=torch.float64, generator=g)
    field = lambda z: torch.tanh(z @ w.T + bias)  # noqa: E731
    z0 = torch.randn(4, 3, dtype=torch.float64, generator=g)
    z1, logdet = mx.flow_logdet(field, z0, 1.0, 16)
    torch.testing.assert_close(z1, mx.rk4_flow(field, z0, 1.0, 16))
    jac = torch.stack([torch.autograd.functional.jacobian(lambda z: mx.rk4_flow(field, z, 1.0, 16), z) for z in z0])
    torch.testing.assert_close(logdet, torch.linalg.slogdet(jac).logabsdet, rtol=0, atol=1e-6)
    # linear field: exact value t * Tr A
    a = jordan(3, -0.4)
    _, ld = mx.flow_logdet(lambda z: z @ a.T, z0, 2.0, 4)
    torch.testing.assert_close(ld, torch.full((4,), -2.4, dtype=torch.float64))
    # Hutchinson probes: unbiased over many points
    _, est = mx.flow_logdet(lambda z: z @ (a + w).T, z0[:1].expand(4000, 3), 1.0, 2, probes=1, generator=g)
    se = float(est.std()) / math.sqrt(4000)
    assert abs(float(est.mean()) - float(mx.trace(a + w))) < 4 * se


# ============================================================ shapes, dtypes, bad input


def test_float32_and_batch_shapes():
    a = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    assert mx.exp_series(a, 5).dtype == torch.float32
    assert mx.trace(a).shape == (2, 3)
    assert mx.det_exp_sides(a).det_exp.shape == (2, 3)
    assert mx.hutchinson_trace(a, 2).shape == (2, 3)
    assert mx.det_first_order(a, 0.1)[0].shape == (2, 3)
    assert mx.linear_flow(a, torch.zeros(7, 4), 0.5).shape == (2, 3, 7, 4)


@pytest.mark.parametrize(
    "call",
    [
        lambda x: mx.exp_series(x, 3),
        lambda x: mx.trace(x),
        lambda x: mx.det_exp_sides(x),
        lambda x: mx.hutchinson_trace(x, 2),
        lambda x: mx.hutchinson_variance(x),
        lambda x: mx.det_exp_path(x, 1.0),
        lambda x: mx.exp_via_eig(x),
        lambda x: mx.linear_flow(x, torch.zeros(3, 3)),
        lambda x: mx.det_first_order(x, 0.1),
    ],
)
def test_bad_matrices_are_rejected(call):
    with pytest.raises(ValueError, match=r"a batch of square matrices, shape \(\.\.\., n, n\).*got shape \(2, 3\)"):
        call(torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"got shape \(3,\)"):
        call(torch.zeros(3))
    with pytest.raises(TypeError, match=r"must have a floating"):
        call(torch.zeros(3, 3, dtype=torch.int64))
    with pytest.raises(TypeError, match=r"must be a torch.Tensor"):
        call([[1.0]])


def test_bad_arguments_are_rejected():
    a = torch.eye(2)
    with pytest.raises(ValueError, match=r"terms must be >= 1, got 0"):
        mx.exp_series(a, 0)
    with pytest.raises(ValueError, match=r"squarings must be in \[0, 60\], got -1"):
        mx.exp_scaled_series(a, 3, -1)
    with pytest.raises(ValueError, match=r"probes must be >= 1, got 0"):
        mx.hutchinson_trace(a, 0)
    with pytest.raises(ValueError, match=r"distribution must be one of 'rademacher', 'gaussian'"):
        mx.hutchinson_trace(a, 1, distribution="normal")
    with pytest.raises(ValueError, match=r"t must broadcast with the batch shape \(3,\), got shape \(2,\)"):
        mx.linear_flow(torch.zeros(3, 2, 2), torch.zeros(1, 2), torch.zeros(2))
    with pytest.raises(ValueError, match=r"points must have shape \(\.\.\., m, 2\)"):
        mx.linear_flow(a, torch.zeros(4, 3))
    with pytest.raises(ValueError, match=r"polygon must have shape \(\.\.\., m, 2\)"):
        mx.signed_area(torch.zeros(4, 3))
    with pytest.raises(TypeError, match=r"field must be a callable"):
        mx.flow_logdet(None, torch.zeros(2), 1.0, 3)
    with pytest.raises(ValueError, match=r"steps must be >= 1"):
        mx.rk4_flow(lambda z: z, torch.zeros(2), 1.0, 0)
    with pytest.raises(TypeError, match=r"a must have a floating dtype \(float16, bfloat16, float32 or float64, or complex\)"):
        mx.commutator(torch.zeros(2, 2, dtype=torch.int32), a)
    with pytest.raises(TypeError, match=r"a must have a floating dtype \(float16, bfloat16, float32 or float64\), got"):
        mx.sin_cos(torch.zeros(2, 2, dtype=torch.complex64))


# ============================================================ figures (built from small inputs)


def test_figures_have_one_slider_step_per_value():
    from kexue_lib.plots import matrix as figs

    theta = torch.linspace(0, 2 * math.pi, 9, dtype=torch.float64)[:-1]
    circle = torch.stack([theta.cos(), theta.sin()], -1)
    a = rotation_generator(0.5)
    ns = [1, 2, 3]
    sums = mx.exp_series(a, 3, partial=True)
    fig = figs.series_convergence(ns, {"A": circle @ sums.mT}, {"A": circle @ expm(a).T},
                                  {"A": torch.rand(3, dtype=torch.float64)})
    assert len(fig.layout.sliders[0].steps) == 3
    ts = [0.0, 0.5, 1.0]
    p = mx.linear_flow(a, circle, torch.tensor(ts, dtype=torch.float64))
    fig = figs.flow_panels(ts, {"rot": p}, {"rot": mx.signed_area(p)}, {"rot": torch.ones(3)}, active=-1)
    assert fig.layout.sliders[0].active == 2 and fig.layout.annotations[0].text.startswith("rot: area 2.828")
    comm = torch.rand(2, 5, dtype=torch.float64) + 0.1
    fig = figs.commutator_gap([0.1, 1.0], comm, comm / 2)
    assert len(fig.layout.sliders[0].steps) == 2
    est = {"rademacher": torch.randn(2, 50, dtype=torch.float64)}
    fig = figs.hutchinson_spread([1, 2], est, 0.0, {"rademacher": 1.0})
    visible = fig.layout.sliders[0].steps[1].args[0]["visible"]
    assert sum(visible) == len(fig.data) - 1  # all static traces plus the one histogram of step 2
    fig = figs.precision_figure([2, 4], {"x": torch.rand(2)}, [1.0, 2.0], {"d": torch.tensor([1.0, 0.0])})
    assert len(fig.data) == 2
