"""Unit and property tests of kexue_lib.smoothing (chapter 1)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from kexue_lib.smoothing import (
    loglog_max,
    max_via_abs,
    power_max,
    smooth_abs,
    smooth_max,
    soft_accuracy,
    soft_argmax,
    soft_f1,
    soft_f1_bias,
    softmax,
)

LOG2 = math.log(2.0)
FLOATS = [torch.float32, torch.float64]


def eps(dtype: torch.dtype) -> float:
    return torch.finfo(dtype).eps


def arrays(min_dims=1, max_dims=3, max_side=6, lo=-1.0, hi=1.0, min_side=1):
    """Finite float64 numpy arrays of assorted shapes."""
    return hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side),
        elements=st.floats(lo, hi, allow_nan=False, allow_infinity=False),
    )


taus = st.floats(1e-3, 1e3)
dtypes = st.sampled_from(FLOATS)


def draw_dim(data, ndim):
    return data.draw(st.integers(-ndim, ndim - 1), label="dim")


# =================================================================== smooth_max


@given(a=arrays(lo=-1e4, hi=1e4), tau=taus, dtype=dtypes, data=st.data())
def test_smooth_max_two_sided_bound(a, tau, dtype, data):
    x = torch.from_numpy(a).to(dtype)
    dim = draw_dim(data, x.ndim)
    n = x.shape[dim]
    out = smooth_max(x, tau, dim)
    x64 = x.double()  # the exact values actually given to the function
    mx = x64.amax(dim=dim)
    out64 = out.double()
    tol = 16 * eps(dtype) * (x64.abs().amax(dim=dim) + tau * (1 + math.log(n)))
    assert out.shape == mx.shape
    assert torch.isfinite(out).all()
    assert (out64 >= mx - tol).all()
    assert (out64 <= mx + tau * math.log(n) + tol).all()


@given(a=arrays(lo=-5, hi=5), tau=st.floats(1e-2, 10), data=st.data())
def test_smooth_max_matches_float64_reference(a, tau, data):
    x = torch.from_numpy(a)
    dim = draw_dim(data, x.ndim)
    ref = np.log(np.exp(a / tau).sum(axis=dim)) * tau  # |a / tau| <= 500: no overflow
    torch.testing.assert_close(smooth_max(x, tau, dim), torch.from_numpy(np.asarray(ref)), rtol=1e-12, atol=1e-12)


@given(a=arrays(lo=-100, hi=100), dtype=dtypes, data=st.data())
def test_smooth_max_at_tau_one_is_logsumexp(a, dtype, data):
    x = torch.from_numpy(a).to(dtype)
    dim = draw_dim(data, x.ndim)
    ref = torch.logsumexp(x, dim=dim)
    torch.testing.assert_close(smooth_max(x, 1.0, dim), ref, rtol=4 * eps(dtype), atol=8 * eps(dtype) * 100)
    torch.testing.assert_close(smooth_max(x, 1, dim), ref, rtol=4 * eps(dtype), atol=8 * eps(dtype) * 100)


@given(a=arrays(lo=-5, hi=5, max_dims=2))
def test_smooth_max_is_monotone_in_tau_and_tends_to_max(a):
    # d/dtau [tau LSE(x/tau)] is the entropy of the softmax, >= 0.
    x = torch.from_numpy(a)
    mx = x.amax(dim=-1)
    prev = None
    for tau in [10.0, 1.0, 0.3, 0.1, 1e-2, 1e-3, 1e-5, 1e-8]:
        out = smooth_max(x, tau)
        if prev is not None:
            assert (out <= prev + 1e-12).all()
        prev = out
    torch.testing.assert_close(prev, mx, rtol=0, atol=1e-7)


def test_smooth_max_known_values():
    x = torch.tensor([0.0, 0.0], dtype=torch.float64)
    assert smooth_max(x, 1.0).item() == pytest.approx(LOG2, rel=1e-15)
    assert smooth_max(x, 0.25).item() == pytest.approx(0.25 * LOG2, rel=1e-15)
    x = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    assert smooth_max(x, 0.5).item() == pytest.approx(0.5 * math.log(math.exp(2) + math.exp(4) + math.exp(6)), rel=1e-14)
    # a single entry is its own smooth max at any temperature
    assert smooth_max(torch.tensor([-7.5]), 123.0).item() == -7.5


@given(a=arrays(min_dims=2, max_dims=4, max_side=4, lo=-50, hi=50), tau=st.floats(1e-2, 1e2), data=st.data())
def test_smooth_max_dim_handling_matches_moving_axis(a, tau, data):
    x = torch.from_numpy(a)
    dim = draw_dim(data, x.ndim)
    pos = dim % x.ndim
    expected = smooth_max(x.movedim(pos, -1).contiguous(), tau, -1)
    out = smooth_max(x, tau, dim)
    assert out.shape == tuple(s for i, s in enumerate(x.shape) if i != pos)
    torch.testing.assert_close(out, expected, rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(smooth_max(x, tau, pos), out, rtol=0, atol=0)
    torch.testing.assert_close(smooth_max(x, tau, pos - x.ndim), out, rtol=0, atol=0)


def test_smooth_max_batch_matches_rowwise(gen):
    x = torch.randn(3, 4, 5, generator=gen, dtype=torch.float64) * 3
    out = smooth_max(x, 0.7, dim=1)
    assert out.shape == (3, 5)
    for i in range(3):
        for j in range(5):
            torch.testing.assert_close(out[i, j], smooth_max(x[i, :, j], 0.7), rtol=1e-14, atol=1e-14)
    # the result does not depend on the other rows of the batch
    y = x.clone()
    y[0] += 1000
    torch.testing.assert_close(smooth_max(y, 0.7, dim=1)[1:], out[1:], rtol=0, atol=0)


@pytest.mark.parametrize("dtype", FLOATS)
def test_smooth_max_extreme_scale_small_tau(gen, dtype):
    x = torch.randn(6, 9, generator=gen, dtype=torch.float64).to(dtype) * 1e4
    tau = 1e-4
    out = smooth_max(x, tau)
    assert torch.isfinite(out).all()
    mx = x.amax(-1)
    assert (out >= mx).all()
    assert (out.double() - mx.double() <= tau * math.log(9) + 4 * eps(dtype) * 1e4 * 5).all()
    # the naive formula overflows at this scale: the test exercises the stabilization
    assert not torch.isfinite(tau * torch.log(torch.exp(x / tau).sum(-1))).all()


@pytest.mark.parametrize("dtype", FLOATS)
def test_smooth_max_large_tau(dtype):
    x = torch.tensor([1e4, -1e4, 0.0], dtype=dtype)
    tau = 1e3
    expected = tau * math.log(sum(math.exp(v / tau) for v in (1e4, -1e4, 0.0)))
    assert smooth_max(x, tau).item() == pytest.approx(expected, rel=4 * eps(dtype))


@given(
    a=arrays(max_dims=1, max_side=8, lo=-20, hi=20, min_side=2),
    mask_seed=st.integers(0, 2**32 - 1),
    tau=st.floats(1e-2, 1e2),
)
def test_smooth_max_masks_minus_inf(a, mask_seed, tau):
    rng = np.random.default_rng(mask_seed)
    drop = rng.random(a.shape) < 0.5
    drop[rng.integers(len(a))] = False  # keep at least one entry
    masked = a.copy()
    masked[drop] = -np.inf
    out = smooth_max(torch.from_numpy(masked), tau)
    expected = smooth_max(torch.from_numpy(a[~drop]), tau)
    torch.testing.assert_close(out, expected, rtol=1e-14, atol=1e-14)
    # the softmax gives exactly 0 to masked entries
    p = softmax(torch.from_numpy(masked), tau)
    assert (p[torch.from_numpy(drop)] == 0).all()
    torch.testing.assert_close(p[torch.from_numpy(~drop)], softmax(torch.from_numpy(a[~drop]), tau), rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("dtype", FLOATS)
def test_smooth_max_infinities(dtype):
    inf = math.inf
    assert smooth_max(torch.tensor([1.0, inf, 3.0], dtype=dtype), 0.5).item() == inf
    assert smooth_max(torch.tensor([-inf, inf], dtype=dtype), 0.5).item() == inf
    assert smooth_max(torch.tensor([-inf, -inf], dtype=dtype), 0.5).item() == -inf
    # batched: a row with -inf, a row with +inf, an ordinary row
    x = torch.tensor([[0.0, -inf], [0.0, inf], [0.0, 0.0]], dtype=dtype)
    out = smooth_max(x, 1.0)
    assert out[0].item() == 0.0
    assert out[1].item() == inf
    assert out[2].item() == pytest.approx(LOG2, rel=4 * eps(dtype))


def test_smooth_max_minus_inf_gradient_is_zero():
    x = torch.tensor([1.0, -math.inf, 2.0], dtype=torch.float64, requires_grad=True)
    smooth_max(x, 0.5).backward()
    expected = torch.softmax(torch.tensor([2.0, 4.0], dtype=torch.float64), 0)
    assert x.grad[1].item() == 0.0
    torch.testing.assert_close(x.grad[[0, 2]], expected, rtol=1e-14, atol=1e-15)


@given(a=arrays(lo=-20, hi=20), tau=st.floats(1e-2, 1e2), data=st.data())
def test_smooth_max_gradient_is_softmax(a, tau, data):
    x = torch.from_numpy(a).requires_grad_(True)
    dim = draw_dim(data, x.ndim)
    w = torch.from_numpy(np.random.default_rng(0).standard_normal(smooth_max(x, tau, dim).shape))
    (smooth_max(x, tau, dim) * w).sum().backward()
    expected = softmax(x.detach(), tau, dim) * w.unsqueeze(dim)
    torch.testing.assert_close(x.grad, expected, rtol=1e-12, atol=1e-14)
    # and the softmax is the textbook one where nothing overflows
    torch.testing.assert_close(softmax(x.detach(), tau, dim), torch.softmax(x.detach() / tau, dim), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("tau", [0.05, 1.0, 7.0])
@pytest.mark.parametrize(("shape", "dim"), [((5,), 0), ((3, 4), -1), ((3, 4), 0), ((2, 3, 2), 1)])
def test_smooth_max_gradcheck(tau, shape, dim, gen):
    x = torch.randn(*shape, generator=gen, dtype=torch.float64).requires_grad_(True)
    f = lambda t: smooth_max(t, tau, dim)  # noqa: E731
    assert torch.autograd.gradcheck(f, (x,))
    assert torch.autograd.gradgradcheck(f, (x,))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
def test_smooth_max_dtype_and_device_follow_input(dtype):
    x = torch.tensor([[1.0, 2.0, 3.5], [-1.0, 0.25, 0.5]], dtype=dtype)
    for fn in (smooth_max, softmax, soft_argmax, loglog_max):
        out = fn(x, 0.5)
        assert out.dtype == dtype, fn.__name__
        assert out.device == x.device, fn.__name__
    out = smooth_max(x, 0.5)
    ref = smooth_max(x.double(), 0.5)
    torch.testing.assert_close(out.double(), ref, rtol=0, atol=0.05 if dtype in (torch.bfloat16, torch.float16) else 1e-6)
    assert smooth_abs(x, 0.5).dtype == dtype
    assert power_max(x, 3).dtype == dtype


# =================================================================== softmax


@given(a=arrays(lo=-1e4, hi=1e4), tau=taus, dtype=dtypes, data=st.data())
def test_softmax_is_a_distribution(a, tau, dtype, data):
    x = torch.from_numpy(a).to(dtype)
    dim = draw_dim(data, x.ndim)
    p = softmax(x, tau, dim)
    assert p.shape == x.shape and p.dtype == dtype
    assert torch.isfinite(p).all()
    assert (p >= 0).all() and (p <= 1).all()
    torch.testing.assert_close(p.sum(dim), torch.ones_like(p.sum(dim)), rtol=0, atol=8 * x.shape[dim] * eps(dtype))
    # the argmax gets the largest probability
    assert torch.equal(p.gather(dim, x.argmax(dim, keepdim=True)), p.amax(dim, keepdim=True))


def test_softmax_minus_inf_gets_exactly_zero():
    x = torch.tensor([[0.0, -math.inf, 1.0, -math.inf], [-math.inf, 5.0, -math.inf, -math.inf]])
    p = softmax(x, 0.3)
    assert torch.equal(p[0, [1, 3]], torch.zeros(2))
    assert torch.equal(p[1], torch.tensor([0.0, 1.0, 0.0, 0.0]))
    torch.testing.assert_close(p.sum(-1), torch.ones(2))


@pytest.mark.parametrize("dtype", FLOATS)
def test_softmax_stable_at_large_scale(gen, dtype):
    x = torch.randn(4, 7, generator=gen, dtype=torch.float64).to(dtype) * 1e4
    p = softmax(x, 1e-4)
    assert torch.isfinite(p).all()
    expected = torch.nn.functional.one_hot(x.argmax(-1), 7).to(dtype)
    torch.testing.assert_close(p, expected, rtol=0, atol=1e-6)
    # the naive formula gives NaN here
    naive = torch.exp(x / 1e-4) / torch.exp(x / 1e-4).sum(-1, keepdim=True)
    assert torch.isnan(naive).any()


def test_softmax_known_values():
    x = torch.tensor([0.0, LOG2], dtype=torch.float64)
    torch.testing.assert_close(softmax(x, 1.0), torch.tensor([1 / 3, 2 / 3], dtype=torch.float64))
    # tau = 1/2 squares the odds
    torch.testing.assert_close(softmax(x, 0.5), torch.tensor([1 / 5, 4 / 5], dtype=torch.float64))
    # infinite-ish temperature: uniform
    torch.testing.assert_close(softmax(torch.tensor([1.0, 2.0, 3.0]), 1e30), torch.full((3,), 1 / 3))


# =================================================================== soft_argmax


def test_soft_argmax_is_zero_based():
    x = torch.tensor([5.0, 0.0, 0.0, 0.0])
    assert soft_argmax(x, 1e-2).item() == pytest.approx(0.0, abs=1e-6)
    x = torch.tensor([0.0, 0.0, 0.0, 5.0])
    assert soft_argmax(x, 1e-2).item() == pytest.approx(3.0, abs=1e-6)
    # uniform input: the mean position (n - 1) / 2 at any temperature
    for tau in (1e-3, 1.0, 1e3):
        assert soft_argmax(torch.zeros(6), tau).item() == pytest.approx(2.5, abs=1e-6)


@given(a=arrays(max_dims=1, max_side=10, lo=-100, hi=100, min_side=1))
def test_soft_argmax_tends_to_argmax_for_unique_max(a):
    srt = np.sort(a)
    gap = srt[-1] - srt[-2] if len(a) > 1 else 1.0
    assume(gap > 1e-3)
    x = torch.from_numpy(a)
    tau = gap / 60  # every other weight <= e^-60
    out = soft_argmax(x, tau)
    assert out.item() == pytest.approx(float(np.argmax(a)), abs=1e-12 + len(a) ** 2 * math.exp(-60))


@given(a=arrays(lo=-1e4, hi=1e4), tau=taus, dtype=dtypes, data=st.data())
def test_soft_argmax_in_range_and_matches_definition(a, tau, dtype, data):
    x = torch.from_numpy(a).to(dtype)
    dim = draw_dim(data, x.ndim)
    n = x.shape[dim]
    out = soft_argmax(x, tau, dim)
    assert out.shape == tuple(s for i, s in enumerate(x.shape) if i != dim % x.ndim)
    tol = 16 * n * n * eps(dtype)
    assert (out >= -tol).all() and (out <= n - 1 + tol).all()
    xm = x.movedim(dim, -1).double()
    ref = (torch.softmax((xm - xm.amax(-1, keepdim=True)) / tau, -1) * torch.arange(n, dtype=torch.float64)).sum(-1)
    torch.testing.assert_close(out.double(), ref, rtol=0, atol=tol + (1e-3 * n if dtype == torch.float32 else 0))


@pytest.mark.parametrize(("n", "i", "j"), [(5, 0, 4), (10, 2, 7), (3, 0, 2), (8, 6, 1)])
def test_soft_argmax_two_equal_maxima_lands_in_between(n, i, j):
    x = torch.zeros(n, dtype=torch.float64)
    x[i] = x[j] = 1.0
    out = soft_argmax(x, 1e-2)
    assert out.item() == pytest.approx((i + j) / 2, abs=1e-12)


@given(a=arrays(min_dims=2, max_dims=3, max_side=5, lo=-10, hi=10), tau=st.floats(0.05, 20), data=st.data())
def test_soft_argmax_dim_handling(a, tau, data):
    x = torch.from_numpy(a)
    dim = draw_dim(data, x.ndim)
    expected = soft_argmax(x.movedim(dim, -1).contiguous(), tau, -1)
    torch.testing.assert_close(soft_argmax(x, tau, dim), expected, rtol=1e-13, atol=1e-13)


def test_soft_argmax_gradient_finite(gen):
    x = torch.randn(3, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: soft_argmax(t, 0.5, 1), (x,))


# =================================================================== smooth_abs


@given(
    a=arrays(max_dims=2, lo=-25, hi=25),
    tau=st.floats(1e-3, 1e3),
)
def test_smooth_abs_exact_error_bounds(a, tau):
    u = torch.from_numpy(a)  # x / tau
    x = u * tau
    err = smooth_abs(x, tau) - x.abs()
    tol = 8 * eps(torch.float64) * (x.abs() + tau)
    assert (err > 0).all()
    assert (err <= 2 * tau * LOG2 + tol).all()
    # the non-exact version: half the worst case
    # (its error tau*log1p(e^{-2|u|}) decays twice as fast: strictly positive
    # in float64 only while it exceeds the rounding of |x|, i.e. |u| <~ 17)
    err2 = smooth_abs(x, tau, exact=False) - x.abs()
    assert (err2 >= 0).all()
    assert (err2[u.abs() <= 12] > 0).all()
    assert (err2 <= tau * LOG2 + tol).all()
    # and the exact version is above the non-exact one
    assert (smooth_abs(x, tau) > smooth_abs(x, tau, exact=False)).all()


@given(a=arrays(lo=-1e4, hi=1e4), tau=taus, dtype=dtypes)
def test_smooth_abs_bounds_any_scale(a, tau, dtype):
    x = torch.from_numpy(a).to(dtype)
    for exact, bound in ((True, 2 * tau * LOG2), (False, tau * LOG2)):
        out = smooth_abs(x, tau, exact=exact)
        assert out.shape == x.shape and out.dtype == dtype
        assert torch.isfinite(out).all()
        err = out.double() - x.double().abs()
        tol = 8 * eps(dtype) * (x.double().abs() + tau)
        assert (err >= -tol).all()
        assert (err <= bound + tol).all()


@pytest.mark.parametrize("tau", [1e-3, 0.5, 1.0, 3.0, 1e3])
def test_smooth_abs_at_zero(tau):
    z = torch.zeros(3, dtype=torch.float64)
    torch.testing.assert_close(smooth_abs(z, tau), torch.full((3,), 2 * tau * LOG2, dtype=torch.float64), rtol=1e-15, atol=0)
    torch.testing.assert_close(smooth_abs(z, tau, exact=False), torch.full((3,), tau * LOG2, dtype=torch.float64), rtol=1e-15, atol=0)


@given(a=arrays(lo=-1e3, hi=1e3), tau=taus, exact=st.booleans())
def test_smooth_abs_symmetric(a, tau, exact):
    x = torch.from_numpy(a)
    torch.testing.assert_close(smooth_abs(-x, tau, exact), smooth_abs(x, tau, exact), rtol=1e-15, atol=0)


@given(a=arrays(max_dims=2, lo=-20, hi=20), tau=st.floats(1e-2, 1e2))
def test_smooth_abs_matches_closed_form(a, tau):
    x = torch.from_numpy(a * tau)
    u = a
    closed = tau * np.log(2 + np.exp(u) + np.exp(-u))
    torch.testing.assert_close(smooth_abs(x, tau), torch.from_numpy(closed), rtol=1e-12, atol=1e-14)
    closed2 = tau * np.log(np.exp(u) + np.exp(-u))
    torch.testing.assert_close(smooth_abs(x, tau, exact=False), torch.from_numpy(closed2), rtol=1e-12, atol=1e-14)


@given(a=arrays(max_dims=1, lo=-20, hi=20), tau=st.floats(1e-2, 1e2))
def test_smooth_abs_gradient_is_smoothed_sign(a, tau):
    # d/dx a_tau(x) = 2 sigmoid(x/tau) - 1 = tanh(x / (2 tau)); non-exact: tanh(x / tau)
    x = torch.from_numpy(a * tau).requires_grad_(True)
    smooth_abs(x, tau).sum().backward()
    torch.testing.assert_close(x.grad, torch.tanh(x.detach() / (2 * tau)), rtol=1e-12, atol=1e-14)
    x.grad = None
    smooth_abs(x, tau, exact=False).sum().backward()
    torch.testing.assert_close(x.grad, torch.tanh(x.detach() / tau), rtol=1e-12, atol=1e-14)


@given(a=arrays(max_dims=1, lo=-60, hi=60), tau=st.floats(1e-2, 1e2))
def test_smooth_abs_closed_form_loose_any_x(a, tau):
    # the stable closed form |x| + 2 tau log1p(e^{-|x|/tau}) holds at every |x|/tau
    x = torch.from_numpy(a * tau)
    closed = tau * (np.abs(a) + 2 * np.log1p(np.exp(-np.abs(a))))
    torch.testing.assert_close(smooth_abs(x, tau), torch.from_numpy(closed), rtol=1e-9, atol=1e-14)
    x.requires_grad_(True)
    smooth_abs(x, tau).sum().backward()
    torch.testing.assert_close(x.grad, torch.from_numpy(np.tanh(a / 2)), rtol=1e-8, atol=1e-14)


@pytest.mark.parametrize("u", [20.5, 21.0, 25.0, 30.0])
def test_smooth_abs_float64_accurate_beyond_softplus_threshold(u):
    x = torch.tensor([u, -u], dtype=torch.float64, requires_grad=True)
    out = smooth_abs(x, 1.0)
    closed = u + 2 * math.log1p(math.exp(-u))
    torch.testing.assert_close(out.detach(), torch.tensor([closed, closed], dtype=torch.float64), rtol=1e-14, atol=0)
    out.sum().backward()
    torch.testing.assert_close(x.grad, torch.tanh(x.detach() / 2), rtol=1e-14, atol=0)


def test_smooth_abs_gradcheck(gen):
    x = torch.randn(7, generator=gen, dtype=torch.float64).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: smooth_abs(t, 0.3), (x,))
    assert torch.autograd.gradgradcheck(lambda t: smooth_abs(t, 0.3, exact=False), (x,))


# =================================================================== max_via_abs


@given(x=st.floats(0, 1e3), y=st.floats(0, 1e3), tau=st.floats(1e-3, 1e2), exact=st.booleans())
def test_max_via_abs_non_negative_bound(x, y, tau, exact):
    out = max_via_abs(torch.tensor(x, dtype=torch.float64), torch.tensor(y, dtype=torch.float64), tau, exact).item()
    bound = (2 if exact else 1) * tau * LOG2
    tol = 8e-16 * (x + y + tau)
    assert out >= max(x, y) - tol
    assert out <= max(x, y) + bound + tol


@pytest.mark.parametrize("exact", [True, False])
def test_max_via_abs_tends_to_max_for_non_negative(exact, gen):
    x = torch.rand(50, generator=gen, dtype=torch.float64) * 10
    y = torch.rand(50, generator=gen, dtype=torch.float64) * 10
    errs = [(max_via_abs(x, y, tau, exact) - torch.maximum(x, y)).abs().max().item() for tau in (1.0, 0.1, 1e-3, 1e-6)]
    assert errs == sorted(errs, reverse=True)
    assert errs[-1] < 2e-6


@pytest.mark.parametrize("exact", [True, False])
def test_max_via_abs_on_negative_inputs_gives_max_abs(exact):
    # the post's identity needs x, y >= 0: otherwise it is max(|x|, |y|)
    x, y = torch.tensor(-1.0, dtype=torch.float64), torch.tensor(-2.0, dtype=torch.float64)
    out = max_via_abs(x, y, 1e-4, exact).item()
    assert out == pytest.approx(2.0, abs=1e-3)
    assert out != pytest.approx(-1.0, abs=0.5)


@given(x=st.floats(-1e3, 1e3), y=st.floats(-1e3, 1e3), tau=st.floats(1e-3, 1e2))
def test_max_via_abs_is_smooth_max_abs(x, y, tau):
    out = max_via_abs(torch.tensor(x, dtype=torch.float64), torch.tensor(y, dtype=torch.float64), tau).item()
    tol = 8e-16 * (abs(x) + abs(y) + tau)
    target = max(abs(x), abs(y))
    assert target - tol <= out <= target + 2 * tau * LOG2 + tol


def test_max_via_abs_broadcasts():
    x = torch.tensor([[0.0], [3.0]])
    y = torch.tensor([1.0, 2.0, 4.0])
    out = max_via_abs(x, y, 1e-3)
    assert out.shape == (2, 3)
    torch.testing.assert_close(out, torch.maximum(x, y), rtol=0, atol=3e-3)


# =================================================================== power_max


@given(
    a=arrays(max_dims=2, max_side=8, lo=0, hi=1e4),
    k=st.integers(0, 40),
    dtype=dtypes,
)
def test_power_max_non_negative_relative_error(a, k, dtype):
    p = 2 * k + 1
    x = torch.from_numpy(a).to(dtype)
    n = x.shape[-1]
    out = power_max(x, p).double()
    mx = x.double().amax(-1)
    tol = 16 * eps(dtype) * (n + p) * mx + 1e-300
    assert torch.isfinite(out).all()
    assert (out >= mx - tol).all()
    assert (out <= mx * n ** (1 / p) + tol).all()


@pytest.mark.parametrize("n", [2, 5, 20])
def test_power_max_tends_to_max_and_error_bound_is_tight(n):
    x = torch.full((n,), 3.0, dtype=torch.float64)  # n equal entries: the worst case
    for p in (1, 3, 11, 101, 1001):
        assert power_max(x, p).item() == pytest.approx(3.0 * n ** (1 / p), rel=1e-13)
    x = torch.linspace(0, 3, n, dtype=torch.float64)
    errs = [power_max(x, p).item() - 3.0 for p in (1, 3, 11, 101, 1001)]
    assert all(e >= -1e-15 for e in errs)
    assert errs == sorted(errs, reverse=True)
    assert errs[-1] < 3.0 * (n ** (1 / 1001) - 1) + 1e-12


@given(a=arrays(max_dims=2, lo=-50, hi=50))
def test_power_max_p1_is_sum(a):
    x = torch.from_numpy(a)
    torch.testing.assert_close(power_max(x, 1), x.sum(-1), rtol=1e-12, atol=1e-12)


@given(a=arrays(max_dims=2, max_side=5, lo=-10, hi=10), k=st.integers(0, 4))
def test_power_max_matches_direct_formula(a, k):
    p = 2 * k + 1
    s = (a**p).sum(-1)
    ref = np.sign(s) * np.abs(s) ** (1 / p)
    torch.testing.assert_close(power_max(torch.from_numpy(a), p), torch.from_numpy(np.asarray(ref)), rtol=1e-10, atol=1e-10)


def test_power_max_negative_counterexample():
    x = torch.tensor([-1.0, -2.0], dtype=torch.float64)
    for p in (101, 1001):
        out = power_max(x, p).item()
        assert out <= -2.0  # tends to -2 from below, the wrong side of max = -1
        assert out == pytest.approx(-2.0, rel=2 ** (1 / p) - 1)
    assert power_max(torch.tensor([-3.0, 2.0]), 201).item() == pytest.approx(-3.0, rel=1e-3)


@pytest.mark.parametrize("dtype", FLOATS)
def test_power_max_large_p_no_overflow(dtype):
    # the direct formula overflows: the rescaling matters
    assert not torch.isfinite((torch.tensor([10.0, 20.0]) ** 201).sum() ** (1 / 201))
    assert not torch.isfinite((torch.tensor([10.0, 20.0], dtype=torch.float64) ** 401).sum())
    assert power_max(torch.tensor([10.0, 20.0], dtype=dtype), 401).item() == pytest.approx(20.0, rel=4 * eps(dtype))
    x = torch.tensor([10.0, 20.0], dtype=dtype)
    out = power_max(x, 201)
    assert torch.isfinite(out)
    assert out.item() == pytest.approx(20.0 * (1 + 0.5**201) ** (1 / 201), rel=4 * eps(dtype))
    x = torch.tensor([-1e4, 5e3, 1e-3], dtype=dtype)
    assert power_max(x, 1001).item() == pytest.approx(-1e4, rel=1e-3)


def test_power_max_zeros_and_homogeneity():
    assert power_max(torch.zeros(4), 3).item() == 0.0
    x = torch.tensor([[0.5, 2.0, 1.0], [3.0, -1.0, 0.0]], dtype=torch.float64)
    for c in (1e-5, 3.0, 1e5):
        torch.testing.assert_close(power_max(c * x, 7), c * power_max(x, 7), rtol=1e-13, atol=0)


@given(a=arrays(min_dims=2, max_dims=3, max_side=4, lo=-5, hi=5), k=st.integers(0, 5), data=st.data())
def test_power_max_dim_handling(a, k, data):
    x = torch.from_numpy(a)
    dim = draw_dim(data, x.ndim)
    expected = power_max(x.movedim(dim, -1).contiguous(), 2 * k + 1, -1)
    torch.testing.assert_close(power_max(x, 2 * k + 1, dim), expected, rtol=1e-13, atol=1e-13)


# =================================================================== loglog_max


def loglog_direct(a: np.ndarray, tau: float, axis: int = -1) -> np.ndarray:
    return tau * np.log(np.log(np.exp(np.exp(a / tau)).sum(axis=axis)))


@given(a=arrays(max_dims=2, max_side=6, lo=0.0, hi=10.0, min_side=2), tau=st.floats(0.05, 5.0))
def test_loglog_max_beats_smooth_max_on_positive_entries(a, tau):
    # For x > 0: e^U >= e^{u_i} - u_i, so every term of the loglog error is
    # smaller than the corresponding log-sum-exp term.
    x = torch.from_numpy(a)
    mx = x.amax(-1)
    tol = 1e-12 * (mx + tau)
    ll = loglog_max(x, tau) - mx
    sm = smooth_max(x, tau) - mx
    assert (ll >= -tol).all()
    assert (ll <= sm + tol).all()


def test_loglog_max_much_closer_than_smooth_max_separated():
    x = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    tau = 0.5
    ll = loglog_max(x, tau).item() - 3.0
    sm = smooth_max(x, tau).item() - 3.0
    assert sm == pytest.approx(tau * math.log(1 + math.exp(-2) + math.exp(-4)), rel=1e-12)
    assert 0 <= ll < sm / 1e6


@given(a=arrays(max_dims=2, max_side=6, lo=-5.0, hi=6.0), tau=st.floats(0.05, 20.0))
def test_loglog_max_matches_direct_float64(a, tau):
    u = a * 1.0
    x = torch.from_numpy(u * tau)
    # x / tau in [-5, 6]: exp(exp(6)) = e^403 does not overflow float64
    ref = loglog_direct(u * tau, tau)
    torch.testing.assert_close(loglog_max(x, tau), torch.from_numpy(np.asarray(ref)), rtol=1e-9, atol=1e-10 * tau)


@pytest.mark.parametrize("n", [1, 2, 3, 10])
def test_loglog_max_all_negative_tends_to_zero(n):
    x = -torch.linspace(1.0, 3.0, n, dtype=torch.float64)
    vals = [loglog_max(x, tau).item() for tau in (1.0, 0.1, 1e-2, 1e-3)]
    if n == 1:
        # one entry: tau log log exp(e^{x/tau}) = x exactly
        assert vals == pytest.approx([-1.0] * 4, rel=1e-12)
        return
    # x / tau -> -inf: the value is tau * log(log n) -> 0, not max x = -1
    assert vals[-1] == pytest.approx(1e-3 * math.log(math.log(n)), rel=1e-9)
    assert abs(vals[-1]) < 2e-3
    assert [abs(v) for v in vals[1:]] == sorted((abs(v) for v in vals[1:]), reverse=True)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("tau", [1e-3, 1e-2, 1.0])
def test_loglog_max_extreme_inputs_finite(dtype, tau, gen):
    x = torch.rand(5, 8, generator=gen, dtype=torch.float64).to(dtype) * 1e4
    out = loglog_max(x, tau)
    assert torch.isfinite(out).all()
    mx = x.amax(-1)
    # separated positive entries: the double exponential makes it exact
    torch.testing.assert_close(out, mx, rtol=4 * eps(dtype), atol=0)
    neg = -x - 1.0
    out = loglog_max(neg, tau)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out.double(), torch.full((5,), tau * math.log(math.log(8)), dtype=torch.float64), rtol=1e-3, atol=1e-6)
    mixed = torch.tensor([-1e4, 1e4, 3.0, -2.0], dtype=dtype)
    assert loglog_max(mixed, tau).item() == 1e4


@given(a=arrays(min_dims=2, max_dims=3, max_side=4, lo=-3, hi=3), tau=st.floats(0.6, 10), data=st.data())
def test_loglog_max_dim_handling(a, tau, data):
    x = torch.from_numpy(a)
    dim = draw_dim(data, x.ndim)
    expected = loglog_max(x.movedim(dim, -1).contiguous(), tau, -1)
    torch.testing.assert_close(loglog_max(x, tau, dim), expected, rtol=1e-13, atol=1e-13)
    ref = loglog_direct(a, tau, axis=dim)
    torch.testing.assert_close(loglog_max(x, tau, dim), torch.from_numpy(np.asarray(ref)), rtol=1e-9, atol=1e-10 * tau)


def test_loglog_max_gradient_finite_and_correct():
    a = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    tau = 0.5
    x = a.clone().requires_grad_(True)
    loglog_max(x, tau).backward()
    y = a.clone().requires_grad_(True)
    (tau * torch.log(torch.log(torch.exp(torch.exp(y / tau)).sum()))).backward()
    assert torch.isfinite(x.grad).all()
    torch.testing.assert_close(x.grad, y.grad, rtol=1e-10, atol=1e-12)


# =================================================================== soft_accuracy


@given(
    n=st.integers(1, 40),
    c=st.integers(1, 6),
    seed=st.integers(0, 2**32 - 1),
)
def test_soft_accuracy_one_hot_is_accuracy(n, c, seed):
    rng = np.random.default_rng(seed)
    pred = rng.integers(0, c, n)
    targ = rng.integers(0, c, n)
    probs = torch.nn.functional.one_hot(torch.from_numpy(pred), c).double()
    acc = soft_accuracy(probs, torch.from_numpy(targ))
    assert acc.shape == ()
    assert acc.item() == pytest.approx(float(np.mean(pred == targ)), abs=1e-15)


@given(shape=st.lists(st.integers(1, 3), min_size=0, max_size=2), n=st.integers(1, 10), c=st.integers(2, 5), seed=st.integers(0, 2**32 - 1))
def test_soft_accuracy_batches_and_definition(shape, n, c, seed):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((*shape, n, c))
    probs = torch.softmax(torch.from_numpy(logits), -1)
    targ = torch.from_numpy(rng.integers(0, c, (*shape, n)))
    out = soft_accuracy(probs, targ)
    assert out.shape == tuple(shape)
    p = probs.numpy().reshape(-1, n, c)
    t = targ.numpy().reshape(-1, n)
    ref = np.array([np.mean([p[b, i, t[b, i]] for i in range(n)]) for b in range(p.shape[0])]).reshape(shape)
    torch.testing.assert_close(out, torch.from_numpy(ref), rtol=1e-14, atol=1e-15)
    assert ((out >= 0) & (out <= 1)).all()


def test_soft_accuracy_int32_and_uint8_targets():
    probs = torch.tensor([[0.2, 0.8], [0.6, 0.4]])
    for dt in (torch.int32, torch.uint8, torch.int64):
        assert soft_accuracy(probs, torch.tensor([1, 0], dtype=dt)).item() == pytest.approx(0.7)


def test_soft_accuracy_gradient():
    probs = torch.full((4, 3), 1 / 3, dtype=torch.float64, requires_grad=True)
    targ = torch.tensor([0, 2, 2, 1])
    soft_accuracy(probs, targ).backward()
    expected = torch.nn.functional.one_hot(targ, 3).double() / 4
    torch.testing.assert_close(probs.grad, expected)


def test_soft_accuracy_errors():
    probs = torch.full((4, 3), 1 / 3)
    with pytest.raises(ValueError, match=r"targets must have shape probs.shape\[:-1\] = \(4,\), got \(3,\)"):
        soft_accuracy(probs, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match=r"targets must have shape"):
        soft_accuracy(probs, torch.zeros(4, 3, dtype=torch.long))
    with pytest.raises(TypeError, match=r"targets must be an integer tensor"):
        soft_accuracy(probs, torch.tensor([0.0, 1.0, 2.0, 0.0]))
    with pytest.raises(TypeError, match=r"targets must be an integer tensor"):
        soft_accuracy(probs, [0, 1, 2, 0])
    with pytest.raises(ValueError, match=r"targets must be class indices in \[0, 2\], got values in \[0, 3\]"):
        soft_accuracy(probs, torch.tensor([0, 1, 3, 0]))
    with pytest.raises(ValueError, match=r"targets must be class indices in \[0, 2\], got values in \[-1, 1\]"):
        soft_accuracy(probs, torch.tensor([0, 1, -1, 0]))
    with pytest.raises(ValueError, match=r"probs must have at least 2 dimension\(s\), got shape \(3,\)"):
        soft_accuracy(torch.tensor([0.2, 0.3, 0.5]), torch.tensor(1))
    with pytest.raises(TypeError, match=r"probs must have a floating dtype"):
        soft_accuracy(torch.ones(4, 3, dtype=torch.long), torch.tensor([0, 1, 2, 0]))


# =================================================================== soft_f1


def hard_f1_ref(pred: np.ndarray, targ: np.ndarray) -> float:
    tp = int(np.sum((pred == 1) & (targ == 1)))
    fp = int(np.sum((pred == 1) & (targ == 0)))
    fn = int(np.sum((pred == 0) & (targ == 1)))
    return 0.0 if 2 * tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)


@given(
    pred=hnp.arrays(np.int64, st.integers(1, 60), elements=st.integers(0, 1)),
    seed=st.integers(0, 2**32 - 1),
    tdtype=st.sampled_from([torch.float32, torch.int64, torch.bool]),
)
def test_soft_f1_on_hard_predictions_is_f1(pred, seed, tdtype):
    targ = np.random.default_rng(seed).integers(0, 2, len(pred))
    out = soft_f1(torch.from_numpy(pred).double(), torch.from_numpy(targ).to(tdtype))
    assert out.item() == pytest.approx(hard_f1_ref(pred, targ), abs=1e-15)


def test_soft_f1_known_values():
    t = torch.tensor([1.0, 1.0, 0.0, 0.0])
    assert soft_f1(torch.tensor([1.0, 0.0, 1.0, 0.0]), t).item() == pytest.approx(0.5)
    assert soft_f1(t.clone(), t).item() == 1.0
    assert soft_f1(1 - t, t).item() == 0.0
    # soft: 2 * (0.5 + 0.5) / (2 + 1 + 0.25) for p = (.5, .5, .25, 0)
    assert soft_f1(torch.tensor([0.5, 0.5, 0.25, 0.0]), t).item() == pytest.approx(2.0 / 3.25)


@given(
    a=arrays(min_dims=1, max_dims=3, max_side=6, lo=0.0, hi=1.0),
    seed=st.integers(0, 2**32 - 1),
    data=st.data(),
)
def test_soft_f1_in_unit_interval_and_dim_handling(a, seed, data):
    probs = torch.from_numpy(a)
    targ = torch.from_numpy((np.random.default_rng(seed).random(a.shape) < 0.4).astype(np.float64))
    dim = draw_dim(data, probs.ndim)
    out = soft_f1(probs, targ, dim)
    assert out.shape == tuple(s for i, s in enumerate(a.shape) if i != dim % a.ndim)
    assert torch.isfinite(out).all()
    assert ((out >= 0) & (out <= 1 + 1e-15)).all()
    # reference along the moved axis, one batch at a time
    pm = probs.movedim(dim, -1).reshape(-1, a.shape[dim])
    tm = targ.movedim(dim, -1).reshape(-1, a.shape[dim])
    ref = []
    for p, t in zip(pm, tm):
        den = (t + p).sum()
        ref.append(0.0 if den == 0 else (2 * t * p).sum().item() / den.item())
    torch.testing.assert_close(out.reshape(-1), torch.tensor(ref, dtype=torch.float64), rtol=1e-13, atol=1e-15)


def test_soft_f1_all_zeros_is_zero_not_nan():
    for shape, dim in (((5,), -1), ((3, 4), 0), ((3, 4), 1)):
        p = torch.zeros(shape, dtype=torch.float64, requires_grad=True)
        out = soft_f1(p, torch.zeros(shape), dim)
        assert not torch.isnan(out).any()
        assert torch.equal(out.detach(), torch.zeros_like(out))
        out.sum().backward()
        assert torch.isfinite(p.grad).all()
    # a batch with zeros only next to an ordinary one
    p = torch.tensor([[0.0, 0.0], [0.5, 1.0]])
    t = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    torch.testing.assert_close(soft_f1(p, t), torch.tensor([0.0, 3.0 / 3.5]))


@given(a=arrays(max_dims=2, lo=0.0, hi=1.0), seed=st.integers(0, 2**32 - 1))
def test_soft_f1_gradient_finite_and_analytic(a, seed):
    targ = torch.from_numpy((np.random.default_rng(seed).random(a.shape) < 0.5).astype(np.float64))
    # subnormal probabilities are excluded: with den subnormal, torch's division
    # backward computes 0 * (1/den)**2 = 0 * inf (see the report)
    a = np.where(a < 1e-300, 0.0, a)
    p = torch.from_numpy(a).requires_grad_(True)
    soft_f1(p, targ).sum().backward()
    assert torch.isfinite(p.grad).all()
    num = (2 * targ * p.detach()).sum(-1, keepdim=True)
    den = (targ + p.detach()).sum(-1, keepdim=True)
    # d/dp_i (num / den) = (2 t_i - num / den) / den, written without den**2 (it underflows)
    safe = torch.where(den > 0, den, 1.0)
    expected = torch.where(den > 0, (2 * targ - num / safe) / safe, 0.0)
    torch.testing.assert_close(p.grad, expected, rtol=1e-12, atol=1e-12)


def test_soft_f1_gradcheck(gen):
    p = torch.rand(3, 6, generator=gen, dtype=torch.float64).requires_grad_(True)
    t = (torch.rand(3, 6, generator=gen) < 0.5).double()
    assert torch.autograd.gradcheck(lambda q: soft_f1(q, t, 1), (p,))


# =================================================================== soft_f1_bias


def _bias_problem(gen, n=2000):
    t = (torch.rand(n, generator=gen, dtype=torch.float64) < 0.3).double()
    logit = 2.0 * (2 * t - 1) + 1.5 * torch.randn(n, generator=gen, dtype=torch.float64)
    return torch.sigmoid(logit), t


@pytest.mark.parametrize("batch_size", [64, 256])
def test_soft_f1_bias_matches_monte_carlo(batch_size):
    gen = torch.Generator().manual_seed(2024)
    p, t = _bias_problem(gen)
    full = soft_f1(p, t)
    m = 40_000
    idx = torch.randint(len(p), (m, batch_size), generator=gen)  # with replacement
    samples = soft_f1(p[idx], t[idx], dim=-1)
    mc = (samples.mean() - full).item()
    se = (samples.std() / m**0.5).item()
    predicted = soft_f1_bias(p, t, batch_size).item()
    # the bias is real and resolved by the simulation (so a zero or a sign
    # flip would fail below), and the first-order formula matches it within
    # a few standard errors plus a small O(1/B^2) allowance
    assert abs(mc) > 5 * se
    assert predicted < 0
    assert abs(mc - predicted) <= 4 * se + 0.05 * abs(predicted)


def test_soft_f1_bias_scales_as_one_over_b_and_batches(gen):
    p, t = _bias_problem(gen, 300)
    b1 = soft_f1_bias(p, t, 1)
    for b in (2, 10, 1000):
        torch.testing.assert_close(soft_f1_bias(p, t, b), b1 / b, rtol=1e-13, atol=0)
    # leading dims are separate data sets
    P = torch.stack([p, p.flip(0) * 0.5, torch.full_like(p, 0.3)])
    T = torch.stack([t, t, t])
    out = soft_f1_bias(P, T, 32)
    assert out.shape == (3,)
    for i in range(3):
        torch.testing.assert_close(out[i], soft_f1_bias(P[i], T[i], 32), rtol=1e-14, atol=1e-16)


def test_soft_f1_bias_closed_form_small_example():
    p = torch.tensor([0.9, 0.2, 0.6, 0.1], dtype=torch.float64)
    t = torch.tensor([1.0, 0.0, 1.0, 0.0], dtype=torch.float64)
    a = (2 * t * p).numpy()
    b = (t + p).numpy()
    F = a.mean() / b.mean()
    var_b = np.mean((b - b.mean()) ** 2)
    cov = np.mean((a - a.mean()) * (b - b.mean()))
    expected = (F * var_b - cov) / (8 * b.mean() ** 2)
    assert soft_f1_bias(p, t, 8).item() == pytest.approx(expected, rel=1e-13)
    # perfect, constant predictions on all-positive data: no bias at all
    assert soft_f1_bias(torch.ones(5), torch.ones(5), 4).item() == 0.0


@pytest.mark.parametrize(
    "values",
    [[1.0, 2.0, 3.0], [3.0, 3.0, -1.0], [0.5], [-4.0, -2.0, -3.0], [40.0, 39.0, 10.0]],
)
def test_loglog_max_gradcheck_with_ties_and_single_entry(values):
    x = torch.tensor(values, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: loglog_max(t, 0.7), (x,))
