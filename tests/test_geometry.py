"""Unit and property tests of kexue_lib.geometry (chapter 3)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from kexue_lib import geometry as G
from kexue_lib.geometry import (
    ACTIVATIONS,
    LAWS,
    SCHEMES,
    angle_density,
    angle_log_density,
    angle_moments,
    cosine_density,
    expected_orthogonality_error,
    init_variance,
    init_weights,
    jacobian_log_singular_values,
    linear_log_norm_moments,
    marchenko_pastur_density,
    orthogonality_error,
    random_angles,
    sample_weights,
    signal_propagation,
    singular_spectrum,
)

# -- the angle density


@given(st.integers(2, 10_000))
@settings(max_examples=30)
def test_density_integrates_to_one_with_mean_pi_over_2(n):
    mass, mean, var = angle_moments(n)
    assert abs(float(mass) - 1) < 1e-9
    assert abs(float(mean) - math.pi / 2) < 1e-8
    # the variance sits between the Laplace value 1/(n-1+...) bounds: 1/n < Var < 1/(n-2)
    if n >= 4:
        assert 1 / n < float(var) < 1 / (n - 2)


def test_variance_closed_forms_and_the_posts_table():
    # n = 2: uniform on [0, pi]; n = 3: sin/2; n = 4: (2/pi) sin^2
    exact = {2: math.pi**2 / 12, 3: math.pi**2 / 4 - 2, 4: math.pi**2 / 12 - 0.5}
    for n, v in exact.items():
        assert float(angle_moments(n)[2]) == pytest.approx(v, rel=1e-12)
    table = {3: 0.467401, 10: 0.110661, 20: 0.0525832, 50: 0.0204053, 100: 0.0101007, 200: 0.00502508, 1000: 0.001001}
    for n, v in table.items():
        assert float(angle_moments(n)[2]) == pytest.approx(v, rel=1e-5)  # the post gives 6 digits


def test_log_density_matches_gamma_form_and_survives_huge_n():
    theta = torch.linspace(0.1, 3.0, 7, dtype=torch.float64)
    for n in (2, 3, 7, 30):
        c = math.gamma(n / 2) / (math.gamma((n - 1) / 2) * math.sqrt(math.pi))
        torch.testing.assert_close(angle_density(theta, n), c * torch.sin(theta) ** (n - 2))
    n = 10**7  # gamma(n/2) overflows float64 long before this
    log_p = angle_log_density(torch.tensor([math.pi / 2]), n)
    assert torch.isfinite(log_p).all()
    # near the peak p_n is the normal density with variance 1/n
    assert float(log_p) == pytest.approx(0.5 * math.log(n / (2 * math.pi)), abs=1e-5)


def test_density_edges_and_outside():
    t = torch.tensor([-0.1, 0.0, math.pi, 3.5], dtype=torch.float64)
    assert angle_density(t, 5).tolist() == [0.0, 0.0, pytest.approx(0.0, abs=1e-40), 0.0]
    assert angle_density(torch.tensor([0.0, 1.0]), 2).tolist() == pytest.approx([1 / math.pi] * 2)
    eta = torch.tensor([-1.5, -0.5, 0.0, 0.9, 1.0])
    assert cosine_density(eta, 3).tolist() == pytest.approx([0, 0.5, 0.5, 0.5, 0])
    nan = torch.tensor([math.nan])
    assert angle_density(nan, 4).isnan().all() and cosine_density(nan, 4).isnan().all()


@pytest.mark.parametrize("n", [3, 10, 500])
def test_cosine_density_has_variance_one_over_n(n):
    h = 2 / 40000
    eta = -1 + h * (torch.arange(40000, dtype=torch.float64) + 0.5)  # midpoint rule
    q = cosine_density(eta, n)
    assert float(q.sum() * h) == pytest.approx(1, abs=1e-6)
    assert float((eta**2 * q).sum() * h) == pytest.approx(1 / n, rel=1e-4)


@pytest.mark.parametrize("n", [2, 5, 50, 1000])
def test_monte_carlo_angles_match_the_density(gen, n):
    samples = 20_000
    theta = random_angles(n, samples, generator=gen)
    assert theta.shape == (samples,) and theta.dtype == torch.float64
    assert float(theta.min()) >= 0 and float(theta.max()) <= math.pi
    _, _, var = angle_moments(n)
    se_mean = math.sqrt(float(var) / samples)
    assert abs(float(theta.mean()) - math.pi / 2) < 5 * se_mean
    assert float(theta.var()) == pytest.approx(float(var), rel=5 * math.sqrt(2 / samples) * (1.5 if n == 2 else 1))
    assert float(torch.cos(theta).var()) == pytest.approx(1 / n, rel=0.1)


def test_random_angles_accurate_near_zero():
    # two nearly parallel vectors: arccos of the rounded cosine would give ~1e-8, not 1e-12
    x = torch.tensor([1.0, 0.0], dtype=torch.float64)
    y = torch.tensor([1.0, 1e-12], dtype=torch.float64)
    x, y = x / x.norm(), y / y.norm()
    assert float(2 * torch.atan2((x - y).norm(), (x + y).norm())) == pytest.approx(1e-12, rel=1e-6)


# -- matrices


@pytest.mark.parametrize("law", LAWS)
def test_laws_have_mean_zero_and_the_variance_asked(gen, law):
    w = sample_weights(200, 300, 0.04, law=law, generator=gen)
    assert w.shape == (200, 300)
    assert abs(float(w.mean())) < 5 * 0.2 / math.sqrt(w.numel())
    assert float(w.var()) == pytest.approx(0.04, rel=0.02)
    kurt = float((w**4).mean() / w.var() ** 2)
    assert kurt == pytest.approx(G.LAW_KURTOSIS[law], rel=0.05)
    if law == "uniform":
        assert float(w.abs().max()) <= math.sqrt(3 * 0.04)
    if law == "rademacher":
        assert torch.allclose(w.abs(), torch.full_like(w, 0.2))


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("shape", [(300, 120), (120, 300), (200, 200)])
def test_each_scheme_has_the_variance_of_its_formula(gen, scheme, shape):
    m, n = shape
    expected = {"lecun": 1 / n, "fan_out": 1 / m, "xavier": 2 / (m + n), "he": 2 / n, "orthogonal": 1 / max(m, n)}[scheme]
    assert init_variance(scheme, m, n) == pytest.approx(expected)
    w = init_weights(scheme, m, n, batch=(3,), generator=gen)
    assert w.shape == (3, m, n)
    assert float(w.pow(2).mean()) == pytest.approx(expected, rel=0.02)
    w2 = init_weights(scheme, m, n, gain=3.0, generator=gen)
    assert float(w2.pow(2).mean()) == pytest.approx(9 * expected, rel=0.03)


def test_orthogonal_is_exact_on_the_side_it_can_be(gen):
    eye = lambda k: torch.eye(k, dtype=torch.float64)  # noqa: E731
    w = init_weights("orthogonal", 50, 20, batch=(4,), generator=gen)
    torch.testing.assert_close(w.mT @ w, eye(20).expand(4, 20, 20))
    w = init_weights("orthogonal", 20, 50, batch=(4,), generator=gen)
    torch.testing.assert_close(w @ w.mT, eye(20).expand(4, 20, 20))
    # m < n: W^T W is a rank-m projection, so its error is (n - m)/n^2, far from 0
    assert float(orthogonality_error(w)[0]) == pytest.approx(30 / 50**2)


@given(st.integers(1, 6), st.integers(1, 6))
def test_orthogonality_error_is_the_mean_square_of_gram_minus_identity(m, n):
    w = torch.randn(2, m, n, dtype=torch.float64, generator=torch.Generator().manual_seed(m * 7 + n))
    direct = torch.stack([((a.T @ a - torch.eye(n, dtype=torch.float64)) ** 2).sum() / n**2 for a in w])
    torch.testing.assert_close(orthogonality_error(w), direct)


@pytest.mark.parametrize("law", LAWS)
@pytest.mark.parametrize("shape", [(64, 64), (128, 32), (32, 128)])
def test_orthogonality_error_matches_its_expectation(gen, law, shape):
    m, n = shape
    w = sample_weights(m, n, 1 / m, law=law, batch=(40,), generator=gen)
    err = orthogonality_error(w)
    expected = expected_orthogonality_error(m, n, law)
    assert float(err.mean()) == pytest.approx(expected, abs=5 * float(err.std()) / math.sqrt(40))


def test_orthogonality_error_scales_like_one_over_n(gen):
    ns = torch.tensor([8, 16, 32, 64, 128])
    errs = torch.stack([orthogonality_error(sample_weights(n, n, 1 / n, batch=(20,), generator=gen)).mean()
                        for n in ns.tolist()])
    slope = torch.linalg.lstsq(torch.stack([ns.double().log(), torch.ones(5, dtype=torch.float64)], 1),
                               errs.log()[:, None]).solution[0, 0]
    assert float(slope) == pytest.approx(-1, abs=0.05)
    assert float((errs * ns).min()) > 0.9 and float((errs * ns).max()) < 1.2


@pytest.mark.parametrize("ratio", [0.25, 1.0, 4.0])
def test_marchenko_pastur_mass_and_mean_eigenvalue(ratio):
    s = torch.linspace(0, 1 + math.sqrt(ratio) + 0.1, 400001, dtype=torch.float64)
    f = marchenko_pastur_density(s, ratio)
    assert float(torch.trapezoid(f, s)) == pytest.approx(min(1, 1 / ratio), abs=2e-4)
    assert float(torch.trapezoid(s**2 * f, s)) == pytest.approx(1, abs=2e-4)  # the atom at 0 adds nothing


@pytest.mark.parametrize("m,n", [(400, 100), (100, 400)])
def test_marchenko_pastur_matches_sampled_singular_values(gen, m, n):
    s = torch.linalg.svdvals(sample_weights(m, n, 1 / m, batch=(10,), generator=gen)).flatten()
    lam = n / m
    edges = (abs(1 - math.sqrt(lam)), 1 + math.sqrt(lam))
    nonzero = s[s > 1e-8]
    assert nonzero.numel() == 10 * min(m, n)
    assert float(nonzero.min()) > edges[0] - 0.1 and float(nonzero.max()) < edges[1] + 0.1
    grid = torch.linspace(edges[0], edges[1], 20001, dtype=torch.float64)
    f = marchenko_pastur_density(grid, lam)
    cdf = torch.cumulative_trapezoid(f, grid) / torch.trapezoid(f, grid)
    median = float(grid[1:][torch.searchsorted(cdf, torch.tensor(0.5, dtype=torch.float64))])
    assert float(nonzero.median()) == pytest.approx(median, abs=0.02)


def test_singular_spectrum_pads_the_null_space(gen):
    w = torch.randn(3, 4, 9, generator=gen, dtype=torch.float64)
    s = singular_spectrum(w)
    assert s.shape == (3, 9)
    torch.testing.assert_close(s[:, 4:], torch.zeros(3, 5, dtype=torch.float64))
    eig = torch.linalg.eigvalsh(w.mT @ w).flip(-1).clamp_min(0).sqrt()
    torch.testing.assert_close(s, eig, atol=1e-7, rtol=1e-7)
    assert singular_spectrum(w.mT).shape == (3, 4)


# -- signal propagation


def test_linear_log_norm_moments_match_monte_carlo(gen):
    depth, width = 30, 8
    fwd, _ = signal_propagation("lecun", "linear", depth, width, trials=2000, generator=gen)
    log_ratio = fwd[:, -1].log()
    mean, sd = linear_log_norm_moments(depth, width)
    assert mean == pytest.approx(-depth / (2 * width), rel=0.15)
    assert float(log_ratio.mean()) == pytest.approx(mean, abs=4 * sd / math.sqrt(2000))
    assert float(log_ratio.std()) == pytest.approx(sd, rel=0.08)


def _replay(scheme, activation, depth, width, aspect, trials, seed):
    """The network of signal_propagation rebuilt from the same seeds, differentiated by autograd."""
    gen = torch.Generator().manual_seed(seed)
    seeds = G._layer_seeds(depth, gen)
    odd = max(1, round(aspect * width))
    widths = [width if l % 2 == 0 else odd for l in range(depth + 1)]
    h0 = torch.randn(trials, widths[0], generator=gen, dtype=torch.float64).requires_grad_()
    hs, h = [h0], h0
    for l in range(1, depth + 1):
        w = G._layer(scheme, widths[l], widths[l - 1], seeds[l - 1], trials, 1.0, torch.float64, None)
        h = G._act(activation, (w @ h.unsqueeze(-1)).squeeze(-1))[0]
        h.retain_grad()
        hs.append(h)
    g = torch.randn(trials, widths[-1], generator=gen, dtype=torch.float64)
    (h * g).sum().backward()
    fwd = torch.stack([x.detach().norm(dim=-1) for x in hs], -1)
    bwd = torch.stack([x.grad.norm(dim=-1) for x in hs[:-1]] + [g.norm(dim=-1)], -1)
    return fwd / fwd[:, :1], bwd / bwd[:, -1:]


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_signal_propagation_matches_autograd(scheme, activation):
    fwd, bwd = signal_propagation(scheme, activation, 5, 6, aspect=1.5, trials=3, generator=torch.Generator().manual_seed(9))
    assert fwd.shape == bwd.shape == (3, 6)
    ref_fwd, ref_bwd = _replay(scheme, activation, 5, 6, 1.5, 3, 9)
    torch.testing.assert_close(fwd, ref_fwd)
    torch.testing.assert_close(bwd, ref_bwd)


@pytest.mark.parametrize("cache_bytes", [0, 3000, 2**27])
def test_signal_propagation_does_not_depend_on_the_cache(cache_bytes):
    ref = signal_propagation("orthogonal", "tanh", 12, 7, trials=3, generator=torch.Generator().manual_seed(5))
    out = signal_propagation("orthogonal", "tanh", 12, 7, trials=3, cache_bytes=cache_bytes,
                             generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(out, ref, rtol=0, atol=0)


def test_linear_orthogonal_network_keeps_norms_exactly(gen):
    fwd, bwd = signal_propagation("orthogonal", "linear", 300, 16, trials=4, generator=gen)
    torch.testing.assert_close(fwd, torch.ones_like(fwd), atol=1e-12, rtol=0)
    torch.testing.assert_close(bwd, torch.ones_like(bwd), atol=1e-12, rtol=0)


def test_gaussian_schemes_keep_mean_squares_in_expectation(gen):
    # linear, 1/n: E||h_L||^2 = ||h_0||^2 at every depth (but not its typical value)
    fwd, _ = signal_propagation("lecun", "linear", 10, 64, trials=400, generator=gen)
    assert float(fwd[:, -1].pow(2).mean()) == pytest.approx(1, abs=0.1)
    # relu, He: E||h_l||^2 = ||h_0||^2 from layer 1 on (layer 1 halves the Gaussian input)
    fwd, _ = signal_propagation("he", "relu", 10, 64, trials=400, generator=gen)
    assert float((fwd[:, -1] / fwd[:, 1]).pow(2).mean()) == pytest.approx(1, abs=0.1)
    # relu with 1/n loses half the mean square per layer
    fwd, _ = signal_propagation("lecun", "relu", 10, 64, trials=400, generator=gen)
    assert float((fwd[:, -1] / fwd[:, 1]).pow(2).mean()) == pytest.approx(2.0**-9, rel=0.15)


def test_xavier_decays_through_alternating_widths(gen):
    # per pair of layers the mean square is multiplied by 4a/(1+a)^2 (a = aspect)
    fwd, bwd = signal_propagation("xavier", "linear", 20, 32, aspect=4.0, trials=300, generator=gen)
    assert float(fwd[:, -1].pow(2).mean()) == pytest.approx(0.64**10, rel=0.2)
    assert float(bwd[:, 0].pow(2).mean()) == pytest.approx(0.64**10, rel=0.2)


def test_jacobian_of_orthogonal_linear_network_is_an_isometry(gen):
    ls = jacobian_log_singular_values("orthogonal", "linear", 200, 12, trials=2, generator=gen)
    assert ls.shape == (2, 12)
    torch.testing.assert_close(ls, torch.zeros_like(ls), atol=1e-11, rtol=0)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_jacobian_matches_autograd(activation):
    depth, width = 4, 8
    ls = jacobian_log_singular_values("he", activation, depth, width, trials=2, generator=torch.Generator().manual_seed(3))
    gen = torch.Generator().manual_seed(3)
    seeds = G._layer_seeds(depth, gen)
    h0 = torch.randn(2, width, generator=gen, dtype=torch.float64)
    ws = [G._layer("he", width, width, s, 2, 1.0, torch.float64, None) for s in seeds]
    for t in range(2):
        def net(x):
            for w in ws:
                x = G._act(activation, w[t] @ x)[0]
            return x
        jac = torch.autograd.functional.jacobian(net, h0[t])
        sv = torch.linalg.svdvals(jac)  # relu: some are exactly 0 up to rounding
        torch.testing.assert_close(ls[t].exp(), sv, atol=1e-12 * float(sv[0]), rtol=1e-9)


def test_float32_in_float32_out(gen):
    assert random_angles(4, 10, generator=gen, dtype=torch.float32).dtype == torch.float32
    assert init_weights("orthogonal", 4, 3, generator=gen, dtype=torch.float32).dtype == torch.float32
    fwd, bwd = signal_propagation("he", "relu", 3, 4, generator=gen, dtype=torch.float32)
    assert fwd.dtype == bwd.dtype == torch.float32
    assert angle_density(torch.tensor([1.0]), 5).dtype == torch.float32


# -- bad input


@pytest.mark.parametrize(
    "call,exc,match",
    [
        (lambda: init_weights("kaiming", 3, 3), ValueError, "scheme must be one of 'lecun', 'fan_out', 'xavier', 'he', 'orthogonal'"),
        (lambda: signal_propagation("he", "gelu", 3, 3), ValueError, "activation must be one of 'linear', 'tanh', 'relu'"),
        (lambda: sample_weights(3, 3, 1.0, law="laplace"), ValueError, "law must be one of"),
        (lambda: angle_density(torch.tensor([1.0]), 1), ValueError, "n must be >= 2"),
        (lambda: angle_density(torch.tensor([1]), 3), TypeError, "theta must have a floating dtype"),
        (lambda: angle_density([1.0], 3), TypeError, "theta must be a torch.Tensor"),
        (lambda: random_angles(3, 0), ValueError, "samples must be >= 1"),
        (lambda: random_angles(3, 5, dtype=torch.int64), TypeError, "dtype must be a floating torch dtype"),
        (lambda: signal_propagation("he", "relu", 0, 3), ValueError, "depth must be >= 1"),
        (lambda: signal_propagation("he", "relu", 3, 3, aspect=-1.0), ValueError, "aspect must be a finite number > 0"),
        (lambda: signal_propagation("he", "relu", 3, 3, trials=2.5), TypeError, "trials must be an int"),
        (lambda: signal_propagation("he", "relu", 3, 3, cache_bytes=-1), ValueError, "cache_bytes must be >= 0"),
        (lambda: init_weights("he", 3, 3, gain=0.0), ValueError, "gain must be a finite number > 0"),
        (lambda: init_weights("he", 3, 3, batch=4), TypeError, "batch must be a tuple"),
        (lambda: init_weights("he", 3, 3, batch=(4, 0)), ValueError, r"batch\[1\] must be >= 1"),
        (lambda: sample_weights(0, 3, 1.0), ValueError, "fan_out must be >= 1"),
        (lambda: sample_weights(3, 3, float("inf")), ValueError, "variance must be a finite number > 0"),
        (lambda: angle_moments(10, points=100), ValueError, "points must be odd"),
        (lambda: orthogonality_error(torch.ones(3)), ValueError, "w must have at least 2 dimension"),
        (lambda: marchenko_pastur_density(torch.ones(3), 0.0), ValueError, "ratio must be a finite number > 0"),
        (lambda: expected_orthogonality_error(3, 3, "cauchy"), ValueError, "law must be one of"),
        (lambda: jacobian_log_singular_values("svd", "tanh", 3, 3), ValueError, "scheme must be one of"),
    ],
)
def test_bad_input_is_named(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
