r"""The geometry of parameter initialization (chapter 3).

Two random directions in :math:`\mathbb{R}^n` are nearly orthogonal: the angle
:math:`\theta` between them has density

.. math::

    p_n(\theta) = \frac{\Gamma(n/2)}{\sqrt{\pi}\,\Gamma\big((n-1)/2\big)}\,\sin^{n-2}\theta,
    \qquad 0 \le \theta \le \pi,

so :math:`\cos\theta` has mean 0 and variance :math:`1/n`. Hence a matrix with iid
entries of mean 0 and variance :math:`1/m` has nearly orthonormal columns, and
multiplying by it nearly keeps norms. This module holds the samplers and
measurements the chapter is built on: angle samples and the exact density,
initialization schemes by name, the orthogonality error, the Marchenko-Pastur
law for singular values, and signal propagation through a deep network at
initialization (forward and backward norms, end-to-end Jacobian spectrum).

Conventions: a weight matrix of a layer ``R^fan_in -> R^fan_out`` has shape
``(..., fan_out, fan_in)`` (``m x n`` in the chapter), samplers take an optional
``torch.Generator`` and return float64 by default, and every sampler is batched
over leading dimensions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ._validation import check_batch, check_choice, check_dtype, check_floating, check_int, check_positive

__all__ = [
    "SCHEMES",
    "ACTIVATIONS",
    "LAWS",
    "LAW_KURTOSIS",
    "angle_log_density",
    "angle_density",
    "cosine_density",
    "angle_moments",
    "random_angles",
    "sample_weights",
    "init_variance",
    "init_weights",
    "orthogonality_error",
    "expected_orthogonality_error",
    "singular_spectrum",
    "marchenko_pastur_density",
    "linear_log_norm_moments",
    "signal_propagation",
    "jacobian_log_singular_values",
]

#: Initialization schemes by name (see :func:`init_variance`).
SCHEMES = ("lecun", "fan_out", "xavier", "he", "orthogonal")
#: Activations of :func:`signal_propagation`.
ACTIVATIONS = ("linear", "tanh", "relu")
#: Sampling laws of :func:`sample_weights`, all with mean 0.
LAWS = ("normal", "uniform", "rademacher")
#: Kurtosis :math:`\mathbb{E}[x^4]/\sigma^4` of each law.
LAW_KURTOSIS = {"normal": 3.0, "uniform": 9.0 / 5.0, "rademacher": 1.0}


# -- the angle between two random directions


def _log_normalizer(n: int) -> float:
    # log of Gamma(n/2) / (sqrt(pi) Gamma((n-1)/2)): lgamma, so n = 10^6 does not overflow
    return math.lgamma(n / 2) - math.lgamma((n - 1) / 2) - 0.5 * math.log(math.pi)


def angle_log_density(theta: torch.Tensor, n: int) -> torch.Tensor:
    r"""Log-density of the angle between two independent isotropic random vectors in R^n.

    .. math::

        \log p_n(\theta) = \log\Gamma\!\left(\tfrac{n}{2}\right)
        - \log\Gamma\!\left(\tfrac{n-1}{2}\right) - \tfrac12\log\pi
        + (n-2)\log\sin\theta .

    The normalizer is the ratio of the areas of the unit spheres in
    :math:`\mathbb{R}^{n-1}` and :math:`\mathbb{R}^n`, computed with log-gamma so that
    it is finite for every ``n``. Outside :math:`[0, \pi]` the result is ``-inf``.

    Parameters
    ----------
    theta : torch.Tensor
        Angles in radians, any shape.
    n : int
        Dimension, ``n >= 2`` (``n = 2``: the uniform density :math:`1/\pi`).
    """
    check_floating(theta, "theta")
    n = check_int(n, "n", 2)
    inside = (theta >= 0) & (theta <= math.pi) | theta.isnan()  # NaN propagates
    sin = torch.sin(theta).clamp_min(0)
    log = _log_normalizer(n) + torch.xlogy(torch.full_like(theta, n - 2.0), sin)
    return torch.where(inside, log, torch.full_like(theta, -math.inf))


def angle_density(theta: torch.Tensor, n: int) -> torch.Tensor:
    r""":math:`p_n(\theta)`, the exponential of :func:`angle_log_density`."""
    return angle_log_density(theta, n).exp()


def cosine_density(eta: torch.Tensor, n: int) -> torch.Tensor:
    r"""Density of :math:`\eta = \cos\theta`, the cosine between two random directions.

    .. math::

        q_n(\eta) = \frac{\Gamma(n/2)}{\sqrt{\pi}\,\Gamma\big((n-1)/2\big)}
        (1 - \eta^2)^{(n-3)/2}, \qquad -1 < \eta < 1,

    from :math:`p_n` by the change of variables :math:`d\eta = -\sin\theta\,d\theta`.
    Its mean is 0 and its variance :math:`1/n`. Zero outside :math:`(-1, 1)`.
    """
    check_floating(eta, "eta")
    n = check_int(n, "n", 2)
    inside = (eta > -1) & (eta < 1) | eta.isnan()  # NaN propagates
    one_minus = (1 - eta * eta).clamp_min(0)
    log = _log_normalizer(n) + torch.xlogy(torch.full_like(eta, (n - 3) / 2), one_minus)
    return torch.where(inside, log.exp(), torch.zeros_like(eta))


def angle_moments(
    n: int, *, points: int = 20001, dtype: torch.dtype = torch.float64, device: torch.device | str | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""Total mass, mean and variance of :math:`p_n` by quadrature.

    .. math::

        \int_0^\pi p_n, \qquad \mathbb{E}\theta = \int_0^\pi \theta\,p_n(\theta)\,d\theta,
        \qquad \operatorname{Var}\theta = \int_0^\pi (\theta - \tfrac{\pi}{2})^2 p_n(\theta)\,d\theta .

    Simpson's rule on a uniform grid of ``points`` nodes (an odd number), with error
    :math:`O(h^4)`; the integrands are smooth, so the default grid gives about 10
    correct digits up to ``n`` ~ 10^5, where the peak of width :math:`1/\sqrt{n}` still
    spans tens of nodes.
    """
    n = check_int(n, "n", 2)
    points = check_int(points, "points", 3)
    if points % 2 == 0:
        raise ValueError(f"points must be odd (Simpson's rule), got {points}")
    theta = torch.linspace(0, math.pi, points, dtype=check_dtype(dtype), device=device)
    weights = torch.ones_like(theta)
    weights[1:-1:2], weights[2:-1:2] = 4, 2
    weights = weights * (math.pi / (points - 1) / 3)
    p = angle_density(theta, n) * weights
    return p.sum(), (theta * p).sum(), ((theta - math.pi / 2) ** 2 * p).sum()


def random_angles(
    n: int,
    samples: int,
    *,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    r"""Angles between ``samples`` pairs of independent standard normal vectors in R^n.

    .. math::

        \theta = \operatorname{arccos}\frac{\langle x, y\rangle}{\lVert x\rVert\,\lVert y\rVert},
        \qquad x, y \sim \mathcal{N}(0, I_n),

    evaluated as :math:`2\operatorname{atan2}(\lVert\hat x - \hat y\rVert, \lVert\hat x + \hat y\rVert)`
    for the unit vectors :math:`\hat x, \hat y`, which is accurate at every angle
    (``arccos`` loses half the digits near 0 and π).
    Both vectors are sampled: the isotropy the derivation relies on is not assumed.

    Returns
    -------
    torch.Tensor
        Shape ``(samples,)``, values in :math:`[0, \pi]`.
    """
    n = check_int(n, "n", 2)
    samples = check_int(samples, "samples", 1)
    xy = torch.randn(2, samples, n, generator=generator, dtype=check_dtype(dtype), device=device)
    x, y = xy / xy.norm(dim=-1, keepdim=True)
    return 2 * torch.atan2((x - y).norm(dim=-1), (x + y).norm(dim=-1))


# -- initialization schemes


def sample_weights(
    fan_out: int,
    fan_in: int,
    variance: float,
    *,
    law: str = "normal",
    batch: Sequence[int] = (),
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    r"""An iid ``(*batch, fan_out, fan_in)`` matrix with mean 0 and the given variance.

    ``law`` is ``"normal"`` (:math:`\mathcal{N}(0, \sigma^2)`), ``"uniform"``
    (:math:`U[-\sqrt{3}\sigma, \sqrt{3}\sigma]`) or ``"rademacher"`` (:math:`\pm\sigma`
    with probability 1/2 each); their kurtoses are in :data:`LAW_KURTOSIS`.
    """
    fan_out = check_int(fan_out, "fan_out", 1)
    fan_in = check_int(fan_in, "fan_in", 1)
    std = math.sqrt(check_positive(variance, "variance"))
    law = check_choice(law, "law", LAWS)
    shape = (*check_batch(batch), fan_out, fan_in)
    dtype = check_dtype(dtype)
    if law == "normal":
        return std * torch.randn(shape, generator=generator, dtype=dtype, device=device)
    if law == "uniform":
        u = torch.rand(shape, generator=generator, dtype=dtype, device=device)
        return math.sqrt(3.0) * std * (2 * u - 1)
    bits = torch.randint(0, 2, shape, generator=generator, device=device)
    return std * (2 * bits - 1).to(dtype)


def init_variance(scheme: str, fan_out: int, fan_in: int) -> float:
    r"""Entry variance of a scheme for a ``fan_out x fan_in`` weight (``m x n``).

    ==============  ==========================  ==========================================
    scheme          variance                    what it keeps at initialization
    ==============  ==========================  ==========================================
    ``lecun``       :math:`1/n`                 mean square of each output unit
    ``fan_out``     :math:`1/m`                 :math:`\lVert Wx\rVert` (the post's choice)
    ``xavier``      :math:`2/(m+n)`             a compromise of the two
    ``he``          :math:`2/n`                 mean square after a relu
    ``orthogonal``  :math:`1/\max(m, n)`        exact: orthonormal columns (or rows)
    ==============  ==========================  ==========================================
    """
    check_choice(scheme, "scheme", SCHEMES)
    m = check_int(fan_out, "fan_out", 1)
    n = check_int(fan_in, "fan_in", 1)
    return {"lecun": 1 / n, "fan_out": 1 / m, "xavier": 2 / (m + n), "he": 2 / n, "orthogonal": 1 / max(m, n)}[scheme]


def init_weights(
    scheme: str,
    fan_out: int,
    fan_in: int,
    *,
    batch: Sequence[int] = (),
    gain: float = 1.0,
    law: str = "normal",
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    r"""A ``(*batch, fan_out, fan_in)`` weight initialized by ``scheme`` (see :func:`init_variance`).

    Random schemes draw iid entries from ``law`` with variance
    ``gain**2 * init_variance(scheme, fan_out, fan_in)``. ``"orthogonal"`` draws a
    Haar-random matrix with orthonormal columns (:math:`W^\top W = I` when
    :math:`m \ge n`) or orthonormal rows (:math:`WW^\top = I` when :math:`m < n`), from
    the QR factorization of a Gaussian matrix with the signs of :math:`R`'s diagonal
    moved into :math:`Q`, times ``gain``; ``law`` is ignored for it.
    """
    check_choice(scheme, "scheme", SCHEMES)
    gain = check_positive(gain, "gain")
    var = init_variance(scheme, fan_out, fan_in)
    if scheme != "orthogonal":
        return sample_weights(fan_out, fan_in, gain**2 * var, law=law, batch=batch,
                              generator=generator, dtype=dtype, device=device)
    big, small = max(fan_out, fan_in), min(fan_out, fan_in)
    a = torch.randn((*check_batch(batch), big, small), generator=generator, dtype=check_dtype(dtype), device=device)
    q, r = torch.linalg.qr(a)
    sign = torch.sgn(torch.diagonal(r, dim1=-2, dim2=-1))
    q = q * torch.where(sign == 0, torch.ones_like(sign), sign).unsqueeze(-2)
    q = q if fan_out >= fan_in else q.mT
    return gain * q


def orthogonality_error(w: torch.Tensor) -> torch.Tensor:
    r"""Mean squared deviation of :math:`W^\top W` from the identity, per matrix.

    .. math::

        \varepsilon(W) = \frac{1}{n^2}\,\big\lVert W^\top W - I_n \big\rVert_F^2,
        \qquad W \in \mathbb{R}^{m\times n},

    the post's measure (``np.square(W.T @ W - I).mean()``). ``w`` has shape
    ``(..., m, n)``; the result has shape ``(...)``.
    """
    check_floating(w, "w", min_ndim=2)
    n = w.shape[-1]
    eye = torch.eye(n, dtype=w.dtype, device=w.device)
    return (w.mT @ w - eye).square().mean(dim=(-2, -1))


def expected_orthogonality_error(fan_out: int, fan_in: int, law: str = "normal") -> float:
    r"""Expectation of :func:`orthogonality_error` for iid entries of variance :math:`1/m`.

    Column inner products :math:`\langle w_j, w_k\rangle` (:math:`j \ne k`) are sums of
    :math:`m` products with variance :math:`1/m^2`, so their variance is :math:`1/m`;
    a squared column norm :math:`\lVert w_j\rVert^2` has mean 1 and variance
    :math:`(\kappa - 1)/m`, :math:`\kappa` the kurtosis of the law. Averaging over the
    :math:`n^2` entries of :math:`W^\top W - I`:

    .. math::

        \mathbb{E}\,\varepsilon(W) = \frac{n(n-1)\cdot\frac1m + n\cdot\frac{\kappa-1}{m}}{n^2}
        = \frac{n + \kappa - 2}{m\,n}.

    For a square matrix, :math:`(n+1)/n^2` (normal), :math:`(n - 0.2)/n^2` (uniform),
    :math:`(n-1)/n^2` (Rademacher): slope :math:`-1` on log-log axes.
    """
    m = check_int(fan_out, "fan_out", 1)
    n = check_int(fan_in, "fan_in", 1)
    kappa = LAW_KURTOSIS[check_choice(law, "law", LAWS)]
    return (n + kappa - 2) / (m * n)


def singular_spectrum(w: torch.Tensor) -> torch.Tensor:
    r"""All :math:`n` singular values of ``(..., m, n)`` matrices, zeros included.

    :math:`\sigma_i(W) = \sqrt{\lambda_i(W^\top W)}`, :math:`i = 1, \dots, n`, in decreasing
    order: ``torch.linalg.svdvals`` padded with :math:`n - m` exact zeros when
    :math:`m < n`, the directions :math:`W` sends to 0 (so that :math:`W^\top W = I` is
    impossible there).
    """
    check_floating(w, "w", min_ndim=2)
    m, n = w.shape[-2:]
    s = torch.linalg.svdvals(w)
    return torch.cat([s, s.new_zeros((*s.shape[:-1], n - m))], dim=-1) if m < n else s


def marchenko_pastur_density(s: torch.Tensor, ratio: float) -> torch.Tensor:
    r"""Marchenko-Pastur density of the singular values of an ``m x n`` matrix with variance ``1/m``.

    With :math:`\lambda = n/m` (``ratio``), the eigenvalues :math:`x = s^2` of
    :math:`W^\top W` have, as :math:`m, n \to \infty`, the density
    :math:`\sqrt{(b - x)(x - a)}/(2\pi\lambda x)` on :math:`[a, b]`,
    :math:`a, b = (1 \mp \sqrt{\lambda})^2`, so the singular values have

    .. math::

        f_\lambda(s) = \frac{\sqrt{(b - s^2)(s^2 - a)}}{\pi\lambda s},
        \qquad 1 - \sqrt\lambda \le s \le 1 + \sqrt\lambda \quad (\lambda \le 1).

    For :math:`\lambda > 1` (:math:`m < n`) the same formula holds on
    :math:`[\sqrt\lambda - 1, \sqrt\lambda + 1]` and has total mass :math:`1/\lambda`;
    the missing mass :math:`1 - 1/\lambda` is an atom at :math:`s = 0` (the
    :math:`n - m` zero singular values), which this function does not include.
    """
    check_floating(s, "s")
    lam = check_positive(ratio, "ratio")
    a, b = (1 - math.sqrt(lam)) ** 2, (1 + math.sqrt(lam)) ** 2
    x = s * s
    inside = (x > a) & (x < b) & (s > 0)
    val = ((b - x) * (x - a)).clamp_min(0).sqrt() / (math.pi * lam * s.clamp_min(torch.finfo(s.dtype).tiny))
    return torch.where(inside, val, torch.zeros_like(s))


# -- signal propagation through depth


def linear_log_norm_moments(depth: int, width: int) -> tuple[float, float]:
    r"""Mean and standard deviation of :math:`\log(\lVert h_L\rVert / \lVert h_0\rVert)`
    through ``depth`` square linear layers with iid :math:`\mathcal{N}(0, 1/n)` weights.

    By rotation invariance each layer multiplies :math:`\lVert h\rVert^2` by an
    independent :math:`\chi^2_n / n` factor, whatever :math:`h` is, so with
    :math:`\psi` the digamma function

    .. math::

        \mathbb{E}\log\frac{\lVert h_L\rVert}{\lVert h_0\rVert}
        = \frac{L}{2}\Big(\psi\big(\tfrac n2\big) - \log\tfrac n2\Big) \approx -\frac{L}{2n},

        \operatorname{sd} = \frac12\sqrt{L\,\psi'\big(\tfrac n2\big)} \approx \sqrt{\frac{L}{2n}},

    although :math:`\mathbb{E}\lVert h_L\rVert^2 = \lVert h_0\rVert^2` exactly: the
    typical norm decays once :math:`L` is comparable to :math:`n`.
    """
    depth = check_int(depth, "depth", 1)
    half = torch.tensor(check_int(width, "width", 1) / 2, dtype=torch.float64)
    mean = depth / 2 * float(torch.digamma(half) - half.log())
    sd = 0.5 * math.sqrt(depth * float(torch.polygamma(1, half)))
    return mean, sd



def _act(activation: str, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Activation and its derivative at ``z``."""
    if activation == "linear":
        return z, torch.ones_like(z)
    if activation == "tanh":
        h = torch.tanh(z)
        return h, 1 - h * h
    return z.clamp_min(0), (z > 0).to(z.dtype)


def _layer_seeds(depth: int, generator: torch.Generator | None) -> list[int]:
    return torch.randint(0, 2**62, (depth,), generator=generator).tolist()


def _layer(scheme, fan_out, fan_in, seed, trials, gain, dtype, device) -> torch.Tensor:
    g = torch.Generator(device=device if device is not None else "cpu").manual_seed(seed)
    return init_weights(scheme, fan_out, fan_in, batch=(trials,), gain=gain, generator=g, dtype=dtype, device=device)


def signal_propagation(
    scheme: str,
    activation: str,
    depth: int,
    width: int,
    *,
    aspect: float = 1.0,
    trials: int = 8,
    gain: float = 1.0,
    cache_bytes: int = 2**27,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Forward and backward norms, layer by layer, of a deep network at initialization.

    The network is :math:`h_\ell = \phi(z_\ell)`, :math:`z_\ell = W_\ell h_{\ell-1}`,
    :math:`\ell = 1, \dots, L`, without biases, with widths :math:`n_\ell` equal to
    ``width`` for even :math:`\ell` and ``round(aspect * width)`` for odd :math:`\ell`
    (``aspect=1``: all square), and :math:`W_\ell` drawn by :func:`init_weights`
    with ``scheme`` and ``gain``. The input is :math:`h_0 \sim \mathcal{N}(0, I)`.
    A gradient :math:`g_L \sim \mathcal{N}(0, I)` at the output is sent back by

    .. math::

        g_{\ell-1} = W_\ell^\top\big(\phi'(z_\ell) \odot g_\ell\big),

    the gradient of :math:`\langle g_L, h_L\rangle` with respect to :math:`h_{\ell-1}`.
    Each layer's weights are drawn from their own seed (taken from ``generator``);
    they are kept for the backward pass while they fit in ``cache_bytes``, and drawn
    again from the same seeds beyond that, so memory stays bounded at any depth and
    the result does not depend on ``cache_bytes``.

    Parameters
    ----------
    scheme : str
        One of :data:`SCHEMES`.
    activation : str
        One of :data:`ACTIVATIONS`.
    depth : int
        Number of layers :math:`L \ge 1`.
    width : int
        Width :math:`n_0` of the even layers, ``>= 1``.
    aspect : float
        Ratio of odd to even widths, ``> 0``.
    trials : int
        Independent networks, run as one batch.
    cache_bytes : int
        Memory allowed for keeping weights between the two passes.

    Returns
    -------
    forward, backward : torch.Tensor
        Shape ``(trials, depth + 1)``: :math:`\lVert h_\ell\rVert / \lVert h_0\rVert` and
        :math:`\lVert g_\ell\rVert / \lVert g_L\rVert` for :math:`\ell = 0, \dots, L`.
    """
    check_choice(scheme, "scheme", SCHEMES)
    check_choice(activation, "activation", ACTIVATIONS)
    depth = check_int(depth, "depth", 1)
    width = check_int(width, "width", 1)
    aspect = check_positive(aspect, "aspect")
    trials = check_int(trials, "trials", 1)
    gain = check_positive(gain, "gain")
    dtype = check_dtype(dtype)
    odd = max(1, round(aspect * width))
    widths = [width if l % 2 == 0 else odd for l in range(depth + 1)]
    budget = check_int(cache_bytes, "cache_bytes", 0) // (trials * torch.empty(0, dtype=dtype).element_size())
    seeds = _layer_seeds(depth, generator)
    h = torch.randn(trials, widths[0], generator=generator, dtype=dtype, device=device)
    fwd, slopes, cache = [h.norm(dim=-1)], [], {}
    for l in range(1, depth + 1):
        w = _layer(scheme, widths[l], widths[l - 1], seeds[l - 1], trials, gain, dtype, device)
        if budget >= w[0].numel():
            cache[l], budget = w, budget - w[0].numel()
        h, slope = _act(activation, (w @ h.unsqueeze(-1)).squeeze(-1))
        fwd.append(h.norm(dim=-1))
        slopes.append(slope)
    g = torch.randn(trials, widths[-1], generator=generator, dtype=dtype, device=device)
    bwd = [g.norm(dim=-1)]
    for l in range(depth, 0, -1):
        w = cache.pop(l, None)
        if w is None:
            w = _layer(scheme, widths[l], widths[l - 1], seeds[l - 1], trials, gain, dtype, device)
        g = (w.mT @ (slopes[l - 1] * g).unsqueeze(-1)).squeeze(-1)
        bwd.append(g.norm(dim=-1))
    forward = torch.stack(fwd, dim=-1)
    backward = torch.stack(bwd[::-1], dim=-1)
    return forward / forward[:, :1], backward / backward[:, -1:]


def jacobian_log_singular_values(
    scheme: str,
    activation: str,
    depth: int,
    width: int,
    *,
    trials: int = 4,
    gain: float = 1.0,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    r"""Log singular values of the input-output Jacobian of a square deep network at initialization.

    .. math::

        J = \frac{\partial h_L}{\partial h_0} = D_L W_L \cdots D_1 W_1,
        \qquad D_\ell = \operatorname{diag}\phi'(z_\ell),

    for the network of :func:`signal_propagation` with all widths equal to ``width``
    and a random input :math:`h_0 \sim \mathcal{N}(0, I)`. The product is renormalized
    after every layer (its log-scale kept apart), so nothing over- or underflows at
    any depth; but the singular values come from one SVD of the accumulated product,
    so those below about :math:`10^{-15}` times the largest are rounding noise.

    Returns
    -------
    torch.Tensor
        Shape ``(trials, width)``, :math:`\log \sigma_i(J)` in decreasing order
        (``-inf`` for an exactly singular :math:`J`).
    """
    check_choice(scheme, "scheme", SCHEMES)
    check_choice(activation, "activation", ACTIVATIONS)
    depth = check_int(depth, "depth", 1)
    width = check_int(width, "width", 1)
    trials = check_int(trials, "trials", 1)
    gain = check_positive(gain, "gain")
    dtype = check_dtype(dtype)
    seeds = _layer_seeds(depth, generator)
    h = torch.randn(trials, width, generator=generator, dtype=dtype, device=device)
    jac = torch.eye(width, dtype=dtype, device=device).expand(trials, width, width)
    log_scale = torch.zeros(trials, dtype=dtype, device=device)
    for seed in seeds:
        w = _layer(scheme, width, width, seed, trials, gain, dtype, device)
        h, slope = _act(activation, (w @ h.unsqueeze(-1)).squeeze(-1))
        jac = slope.unsqueeze(-1) * (w @ jac)
        norm = jac.norm(dim=(-2, -1)).clamp_min(torch.finfo(dtype).tiny)
        jac = jac / norm[:, None, None]
        log_scale = log_scale + norm.log()
    return torch.linalg.svdvals(jac).log() + log_scale[:, None]
