"""Unit and property tests of kexue_lib.topk (chapter 4)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from kexue_lib.topk import (
    METHODS,
    grad_topk_enumerate,
    grad_topk_recursive,
    log_esp,
    soft_topk,
    threshold,
    threshold_bisect,
    topk_mask,
    weighted_iterative_topk,
)

SIMPLEX = ("grad", "sigmoid", "exp", "laplace")  # methods whose values stay in [0, 1]
THRESHOLD = ("sigmoid", "exp", "laplace")
INF = math.inf


@st.composite
def problems(draw, max_n=9, scales=(1e-3, 1e-1, 1.0, 10.0, 1e3)):
    """(x, k, tau, dim): random batch shape, n, k, temperature and scale, float64."""
    batch = draw(st.lists(st.integers(1, 3), min_size=0, max_size=2))
    n = draw(st.integers(1, max_n))
    k = draw(st.integers(1, n))
    seed = draw(st.integers(0, 2**31 - 1))
    scale = draw(st.sampled_from(scales))
    tau = draw(st.sampled_from([0.05, 0.5, 1.0, 7.0]))
    gen = torch.Generator().manual_seed(seed)
    x = scale * torch.randn(*batch, n, generator=gen, dtype=torch.float64)
    dim = draw(st.integers(-x.ndim, x.ndim - 1))
    return x.movedim(-1, dim).contiguous(), k, tau, dim


# ============================================================ the contract


@given(prob=problems(), method=st.sampled_from(METHODS))
def test_sum_is_k_and_shape_dtype_follow_input(prob, method):
    x, k, tau, dim = prob
    p = soft_topk(x, k, tau, method, dim)
    assert p.shape == x.shape and p.dtype == x.dtype and p.device == x.device
    if dim % x.ndim == x.ndim - 1:  # a contiguous input along the last dim gives a contiguous output
        assert p.is_contiguous()
    assert torch.allclose(p.sum(dim), torch.full_like(p.sum(dim), float(k)), atol=1e-9 * k, rtol=0)


@given(prob=problems(), method=st.sampled_from(SIMPLEX))
def test_values_in_unit_interval(prob, method):
    x, k, tau, dim = prob
    p = soft_topk(x, k, tau, method, dim)
    assert bool((p >= 0).all()) and bool((p <= 1 + 1e-12).all())


@given(prob=problems(), method=st.sampled_from(SIMPLEX))
def test_monotonic(prob, method):
    x, k, tau, dim = prob
    p = soft_topk(x, k, tau, method, dim).movedim(dim, -1)
    order = x.movedim(dim, -1).argsort(dim=-1)
    sorted_p = p.gather(-1, order)
    assert bool((sorted_p.diff(dim=-1) >= -1e-12).all())


@given(prob=problems(), method=st.sampled_from(METHODS), shift=st.floats(-50.0, 50.0))
def test_shift_invariant(prob, method, shift):
    x, k, tau, dim = prob
    a = soft_topk(x, k, tau, method, dim)
    b = soft_topk(x + shift * tau, k, tau, method, dim)
    assert torch.allclose(a, b, atol=1e-8 * k, rtol=0)


@pytest.mark.parametrize("method", METHODS)
def test_small_tau_tends_to_topk(method, gen):
    x = torch.randn(64, 10, generator=gen, dtype=torch.float64)
    gaps = x.sort(dim=-1).values.diff(dim=-1).amin(dim=-1, keepdim=True)
    x = x / gaps  # every gap >= 1
    for k in (1, 3, 7):
        p = soft_topk(x, k, tau=0.01, method=method)
        assert torch.allclose(p, topk_mask(x, k), atol=1e-6), (method, k)


@pytest.mark.parametrize("method", ["exp", "grad", "iterative"])
def test_k1_is_softmax(method, gen):
    x = 3 * torch.randn(50, 8, generator=gen, dtype=torch.float64)
    assert torch.allclose(soft_topk(x, 1, 0.7, method), torch.softmax(x / 0.7, -1), atol=1e-12)


def test_laplace_k1_is_softmax_only_when_no_probability_exceeds_half(gen):
    x = 0.3 * torch.randn(200, 8, generator=gen, dtype=torch.float64)
    soft = torch.softmax(x, -1)
    assert bool((soft.amax(-1) <= 0.5).all())
    assert torch.allclose(soft_topk(x, 1, method="laplace"), soft, atol=1e-12)
    # counter-example to the post's claim: softmax([2, 0]) = [0.881, 0.119]
    p = soft_topk(torch.tensor([2.0, 0.0], dtype=torch.float64), 1, method="laplace")
    assert torch.allclose(p, torch.tensor([1 - math.exp(-1) / 2, math.exp(-1) / 2], dtype=torch.float64))


def test_sigmoid_k1_is_not_softmax():
    x = torch.tensor([1.0, 0.0, -1.0], dtype=torch.float64)
    assert (soft_topk(x, 1, method="sigmoid") - torch.softmax(x, -1)).abs().max() > 1e-3


# ============================================================ exact references


@given(prob=problems(max_n=8, scales=(1e-2, 1.0, 5.0, 30.0)))
def test_grad_matches_subset_enumeration(prob):
    x, k, tau, dim = prob
    ref = grad_topk_enumerate(x, k, tau, dim)
    assert torch.allclose(soft_topk(x, k, tau, "grad", dim), ref, atol=1e-10)


@settings(max_examples=15)
@given(prob=problems(max_n=8, scales=(1e-2, 1.0, 5.0)))
def test_log_esp_matches_enumeration(prob):
    x, k, _, dim = prob
    y = x.movedim(dim, -1)
    n = y.shape[-1]
    subsets = torch.combinations(torch.arange(n), k)
    ref = torch.logsumexp(y[..., subsets].sum(-1), dim=-1)
    assert torch.allclose(log_esp(x, k, dim)[..., k], ref, atol=1e-10, rtol=1e-12)


@given(prob=problems(max_n=40), method=st.sampled_from(THRESHOLD))
def test_threshold_methods_match_bisection(prob, method):
    x, k, tau, dim = prob
    ref = threshold_bisect(x, k, tau, method, dim)
    assert torch.allclose(soft_topk(x, k, tau, method, dim), ref, atol=1e-10)


@pytest.mark.parametrize("method", THRESHOLD)
def test_threshold_solves_its_equation(method, gen):
    from kexue_lib._topk_threshold import soft_mask

    x = 4 * torch.randn(100, 30, generator=gen, dtype=torch.float64)
    lam = threshold(x, 5, method=method)
    total = soft_mask(x, lam.unsqueeze(-1), method).sum(-1)
    assert torch.allclose(total, torch.full_like(total, 5.0), atol=1e-11)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("method", METHODS)
def test_huge_scale_is_finite_and_right(method, dtype, gen):
    x = 1e4 * torch.randn(32, 200, generator=gen, dtype=dtype)
    for k in (1, 8, 64):
        if method == "iterative" and k > 8:
            continue
        p = soft_topk(x, k, method=method)
        assert bool(torch.isfinite(p).all())
        # float32 resolves scores of size 4e4 only to ~4e-3: the tolerance scales with the input
        tol = 4 * torch.finfo(dtype).eps * float(x.abs().max())
        assert (p.sum(-1).double() - k).abs().max() < tol
        ref = soft_topk(x.double(), k, method=method)  # same inputs, computed in float64
        assert (p.double() - ref).abs().max() < tol
        # nearly hard: only entries within a few units of the k-th largest are soft
        assert (p - topk_mask(x, k)).abs().sum() < 0.05 * x.shape[0] * k


@pytest.mark.parametrize("method", SIMPLEX)
def test_float32_agrees_with_float64(method, gen):
    x = 3 * torch.randn(20, 300, generator=gen, dtype=torch.float64)
    for k in (1, 8, 64):
        p64 = soft_topk(x, k, 0.8, method)
        p32 = soft_topk(x.float(), k, 0.8, method)
        assert (p32.double() - p64).abs().max() < 2e-5, (method, k)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_inputs_keep_their_dtype(dtype, gen):
    x = torch.randn(4, 50, generator=gen).to(dtype)
    for method in METHODS:
        p = soft_topk(x, 5, method=method)
        assert p.dtype == dtype and bool(torch.isfinite(p).all())


def test_no_value_read_on_the_host():
    """Every method runs on the meta device, which has shapes but no values."""
    x = torch.empty(3, 40, device="meta")
    for method in METHODS:
        p = soft_topk(x, 4, 0.5, method)
        assert p.device.type == "meta" and p.shape == x.shape


# ============================================================ gradients


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("tau", [0.3, 4.0])
def test_gradcheck(method, tau, gen):
    x = torch.randn(2, 3, 6, generator=gen, dtype=torch.float64, requires_grad=True)
    for k in (1, 3, 6):
        assert torch.autograd.gradcheck(lambda z: soft_topk(z, k, tau, method, dim=1 if k == 3 else -1), (x,))


@pytest.mark.parametrize("method", METHODS)
def test_gradcheck_with_masked_entries(method, gen):
    x = torch.randn(3, 8, generator=gen, dtype=torch.float64)
    x[0, :3] = -INF
    x[1, 5] = -INF
    x.requires_grad_()
    assert torch.autograd.gradcheck(lambda z: soft_topk(z, 3, 0.9, method), (x,))


@pytest.mark.parametrize("method", THRESHOLD)
def test_backward_is_the_implicit_gradient(method, gen):
    """dp/du = diag(f') - f' f'^T / sum f', checked against the explicit Jacobian."""
    from kexue_lib._topk_threshold import curve_slope

    x = torch.randn(12, generator=gen, dtype=torch.float64, requires_grad=True)
    p = soft_topk(x, 4, method=method)
    jac = torch.stack([torch.autograd.grad(p[i], x, retain_graph=True)[0] for i in range(12)])
    s = curve_slope(p.detach(), method)
    assert torch.allclose(jac, torch.diag(s) - torch.outer(s, s) / s.sum(), atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 37), data=st.data())
def test_grad_backward_is_the_hessian_of_log_esp(n, data):
    """GradTopK's hand-written backward against autograd's Hessian of log e_k (log space, an independent route)."""
    k = data.draw(st.integers(1, n - 1))
    scale = data.draw(st.sampled_from([0.1, 1.0, 10.0]))
    gen = torch.Generator().manual_seed(data.draw(st.integers(0, 2**31 - 1)))
    x = scale * torch.randn(n, generator=gen, dtype=torch.float64)
    hess = torch.autograd.functional.hessian(lambda z: log_esp(z, k)[k], x)
    x.requires_grad_()
    p = soft_topk(x, k, method="grad")
    jac = torch.stack([torch.autograd.grad(p[i], x, retain_graph=True)[0] for i in range(n)])
    assert torch.allclose(jac, hess, atol=1e-10)


@pytest.mark.parametrize("n, k", [(37, 5), (64, 8), (100, 33)])
def test_grad_gradcheck_across_tree_shapes(n, k, gen):
    """Odd node counts at several levels (37), a full tree (64), and a degree cap far below the node size."""
    x = 2 * torch.randn(2, n, generator=gen, dtype=torch.float64)
    x[1, ::7] = -INF
    x.requires_grad_()
    assert torch.autograd.gradcheck(lambda z: soft_topk(z, k, 0.7, "grad"), (x,))


def test_grad_method_backward_under_no_grad_returns_plain_tensor(gen):
    x = torch.randn(5, 9, generator=gen, requires_grad=True)
    with torch.no_grad():
        p = soft_topk(x, 3, method="grad")
    assert not p.requires_grad
    for method in METHODS:  # an input without grad gives an output without a graph
        assert not soft_topk(x.detach(), 3, method=method).requires_grad


# ============================================================ masking and edge cases


@pytest.mark.parametrize("method", METHODS)
def test_masked_entries_get_zero_and_change_nothing(method, gen):
    x = torch.randn(6, 12, generator=gen, dtype=torch.float64)
    keep = torch.tensor([0, 2, 3, 5, 8, 9, 11])
    masked = torch.full_like(x, -INF)
    masked[:, keep] = x[:, keep]
    masked.requires_grad_()
    p = soft_topk(masked, 3, 0.8, method)
    ref = soft_topk(x[:, keep], 3, 0.8, method)
    assert torch.allclose(p[:, keep], ref, atol=1e-12)
    drop = torch.ones(12, dtype=torch.bool)
    drop[keep] = False
    assert bool((p[:, drop] == 0).all())
    (p * torch.randn(6, 12, generator=gen, dtype=torch.float64)).sum().backward()
    assert bool(torch.isfinite(masked.grad).all()) and bool((masked.grad[:, drop] == 0).all())


@pytest.mark.parametrize("method", SIMPLEX)
def test_too_few_unmasked_entries_give_ones(method):
    x = torch.tensor([[-INF, 0.3, -INF, -1.0], [-INF, -INF, -INF, -INF]], dtype=torch.float64)
    p = soft_topk(x, 3, method=method)
    assert torch.equal(p, torch.tensor([[0.0, 1.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0]], dtype=torch.float64))


@pytest.mark.parametrize("method", SIMPLEX)
def test_k_equal_n_gives_all_ones(method, gen):
    x = torch.randn(4, 6, generator=gen, dtype=torch.float64, requires_grad=True)
    p = soft_topk(x, 6, method=method)
    assert torch.equal(p, torch.ones_like(p))
    p.sum().backward()
    assert bool((x.grad == 0).all())


def test_iterative_can_exceed_one():
    """The post's conjecture that the 2019 iteration stays in [0, 1] is false."""
    p = soft_topk(torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64), 2, method="iterative")
    assert p[0] > 1.0


def test_weighted_iteration_has_the_wrong_limit():
    x = torch.tensor([3.0, 2.0, 1.0, 0.0], dtype=torch.float64)
    p = weighted_iterative_topk(x, 2, tau=0.05)
    assert torch.allclose(p, torch.tensor([1.5, 0.5, 0.0, 0.0], dtype=torch.float64), atol=1e-6)


def test_post_recursion_breaks_at_large_scale(gen):
    x = torch.randn(64, 20, generator=gen, dtype=torch.float64)
    small = grad_topk_recursive(x, 5)
    assert torch.allclose(small, grad_topk_enumerate(x, 5), atol=1e-10)
    big = grad_topk_recursive(50 * x, 5)
    bad = ~torch.isfinite(big).all(-1) | ((big - soft_topk(50 * x, 5, method="grad")).abs().amax(-1) > 1e-3)
    assert bool(bad.any())


def test_topk_mask(gen):
    x = torch.randn(5, 9, generator=gen)
    m = topk_mask(x, 4, dim=-1)
    assert m.dtype == x.dtype and torch.equal(m.sum(-1), torch.full((5,), 4.0))
    assert torch.equal(m.bool(), x >= x.topk(4, -1).values[..., -1:])
    assert torch.equal(topk_mask(x.T, 4, dim=0), m.T)
    x[0, :7] = -INF
    assert topk_mask(x, 4)[0].sum() == 2


# ============================================================ bad arguments


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(x=[1.0, 2.0]), TypeError, "x must be a torch.Tensor"),
        (dict(x=torch.arange(4)), TypeError, "floating dtype"),
        (dict(x=torch.tensor(1.0)), ValueError, "at least 1 dimension"),
        (dict(k=0), ValueError, r"k must be in \[1, 5\]"),
        (dict(k=6), ValueError, r"k must be in \[1, 5\]"),
        (dict(k=2.0), TypeError, "k must be an int"),
        (dict(k=True), TypeError, "k must be an int"),
        (dict(tau=0.0), ValueError, "tau must be a finite number > 0"),
        (dict(tau=-1.0), ValueError, "tau must be a finite number > 0"),
        (dict(tau=math.inf), ValueError, "tau must be a finite number > 0"),
        (dict(tau="1"), TypeError, "tau must be a real number"),
        (dict(method="softmax"), ValueError, "method must be one of"),
        (dict(dim=2), ValueError, r"dim must be in \[-2, 1\]"),
        (dict(dim=0.5), TypeError, "dim must be an int"),
        (dict(x=torch.zeros(3, 0)), ValueError, "at least 1 entry"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    args = dict(x=torch.zeros(3, 5), k=2, tau=1.0, method="laplace", dim=-1)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        soft_topk(**args)


def test_bad_arguments_of_helpers():
    with pytest.raises(ValueError, match="method must be one of"):
        threshold(torch.zeros(4), 2, method="grad")
    with pytest.raises(ValueError, match="too many"):
        grad_topk_enumerate(torch.zeros(60), 30)
    with pytest.raises(ValueError, match=r"k must be in \[1, 4\]"):
        topk_mask(torch.zeros(4), 5)


# ============================================================ figures


def test_figures_have_one_slider_step_per_value():
    from kexue_lib.plots import topk as figs

    scores = torch.tensor([0.5, -1.0, 2.0, 0.1])
    masks = [{m: soft_topk(scores, 2, tau, m) for m in METHODS} for tau in (0.1, 1.0)]
    fig = figs.mask_bars(scores, "τ", ["0.1", "1"], masks, [topk_mask(scores, 2)] * 2, ["a", "b"])
    assert len(fig.layout.sliders[0].steps) == 2 and fig.layout.title.text == "b"
    naive = torch.stack([grad_topk_recursive(s * scores, 2) for s in (1.0, 300.0)])
    stable = torch.stack([soft_topk(s * scores, 2, method="grad") for s in (1.0, 300.0)])
    assert len(figs.recursion_vs_stable([1.0, 300.0], naive, stable, ["x", "y"]).layout.sliders[0].steps) == 2
    assert len(figs.recursion_error_map([1.0, 2.0], [2], {"float32": torch.zeros(1, 2)}).layout.sliders[0].steps) == 1
    gap = {"k = 4": (torch.ones(3), torch.ones(3))}
    assert len(figs.gap_vs_n([8, 16, 32], gap).layout.sliders[0].steps) == 1
    payload = {"results": [{"n": n, "k": k, "times": {"torch.topk (hard)": {"ratio": 1.0, "median_ms": 1.0},
                                                       "laplace": {"ratio": 3.0, "median_ms": 3.0, "peak_memory": 2.5}}}
                           for n in (128, 1024) for k in (1, 8)]}
    assert "| laplace | 3.0×\u00a0(3.00\u00a0ms)" in figs.benchmark_table(payload)
    assert "| laplace | 2.5× |" in figs.benchmark_table(payload, memory=True)
    assert "| torch.topk (hard) | – |" in figs.benchmark_table(payload, memory=True)  # not measured
    assert len(figs.benchmark_bars(payload, "k").layout.sliders[0].steps) == 2
    assert len(figs.benchmark_bars(payload, "n").layout.sliders[0].steps) == 2
    assert len(figs.benchmark_times(payload).layout.sliders[0].steps) == 2


# ============================================================ memory


def _peak_multiple(method: str, n: int, k: int) -> float:
    """Peak bytes of forward and backward as a multiple of the input's size (batch 16)."""
    from benchmarks.memory import peak_bytes

    gen = torch.Generator().manual_seed(n + k)
    x, g = torch.randn(2, 16, n, generator=gen)

    def work():
        z = x.clone().requires_grad_()
        soft_topk(z, k, method=method).backward(g)

    return peak_bytes(work) / (x.numel() * x.element_size())


@pytest.mark.parametrize("method", THRESHOLD)
def test_threshold_methods_need_memory_linear_in_n_for_any_k(method):
    """Peak memory O(batch x n): a bounded multiple of the input, from k = 1 to k = n/2 and for n up to 4096."""
    for n in (256, 4096):
        for k in (1, 16, n // 2):
            assert _peak_multiple(method, n, k) <= 16


def test_grad_memory_grows_like_log_k():
    """The tree keeps O(n log k) coefficients, not O(n k): k = 512 needs under twice the memory of k = 8."""
    small, large = _peak_multiple("grad", 1024, 8), _peak_multiple("grad", 1024, 512)
    assert small <= 40 and large <= 2 * small
