r"""The matrix exponential, its determinant and its trace (chapter 2).

Every formula of chapter 2 lives here. Matrices are batched: an argument of
shape ``(..., n, n)`` holds one square matrix per leading index, point sets
have shape ``(..., m, n)`` (one point per row), and results keep the dtype
and device of the input.

The chapter's identity, for every square matrix :math:`A`,

.. math::

    \det\left(e^{A}\right) = e^{\operatorname{Tr} A},
    \qquad e^{A} = \sum_{k=0}^{\infty} \frac{A^k}{k!},

follows from :math:`f(t) = \det(e^{tA})` solving :math:`f' = \operatorname{Tr}(A) f`,
:math:`f(0) = 1`. Its log form :math:`\log\det B = \operatorname{Tr}\log B`
turns log-determinants into traces, which :func:`hutchinson_trace` estimates
from matrix-vector products alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch

from ._validation import check_choice, check_int, check_square

__all__ = [
    "trace",
    "exp_series",
    "exp_scaled_series",
    "exp_via_eig",
    "log_series",
    "sin_cos",
    "commutator",
    "exp_product_gap",
    "det_exp_path",
    "DetExpSides",
    "det_exp_sides",
    "linear_flow",
    "signed_area",
    "hutchinson_trace",
    "hutchinson_variance",
    "det_first_order",
    "rk4_flow",
    "flow_logdet",
]


def _times(t: float | torch.Tensor, a: torch.Tensor, name: str = "t") -> torch.Tensor:
    """``t`` as a tensor of ``a``'s dtype and device whose shape broadcasts with ``a.shape[:-2]``."""
    if isinstance(t, bool) or not isinstance(t, (int, float, torch.Tensor)):
        raise TypeError(f"{name} must be a real number or a tensor, got {type(t).__name__}")
    t = torch.as_tensor(t, dtype=a.dtype, device=a.device)
    try:
        torch.broadcast_shapes(t.shape, a.shape[:-2])
    except RuntimeError:
        raise ValueError(
            f"{name} must broadcast with the batch shape {tuple(a.shape[:-2])}, got shape {tuple(t.shape)}"
        ) from None
    return t


# -- basic operations


def trace(a: torch.Tensor) -> torch.Tensor:
    r"""Batched trace :math:`\operatorname{Tr} A = \sum_i A_{ii}`, shape ``(...)``."""
    check_square(a, "a", allow_complex=True)
    return a.diagonal(dim1=-2, dim2=-1).sum(-1)


def _eye_like(a: torch.Tensor) -> torch.Tensor:
    return torch.eye(a.shape[-1], dtype=a.dtype, device=a.device).expand_as(a)


def exp_series(a: torch.Tensor, terms: int, *, partial: bool = False) -> torch.Tensor:
    r"""Truncated power series of the matrix exponential.

    .. math::

        S_N(A) = \sum_{k=0}^{N-1} \frac{A^k}{k!} \xrightarrow[N\to\infty]{} e^{A},

    with each term built from the previous one, :math:`A^k/k! = (A^{k-1}/(k-1)!)\,A/k`.
    The series converges for every matrix, since :math:`\|A^k/k!\| \le \|A\|^k/k!`,
    but in floating point a matrix of large norm loses digits: the terms grow
    to about :math:`\|A\|^{\|A\|}/\|A\|!` before they shrink, and their rounding
    errors remain when they cancel. :func:`exp_scaled_series` avoids that.

    Parameters
    ----------
    a : torch.Tensor
        Square matrices, shape ``(..., n, n)``.
    terms : int
        Number of terms ``N >= 1`` (``N = 1`` gives the identity).
    partial : bool
        If True, return every partial sum :math:`S_1, \dots, S_N`, stacked in
        a new dimension ``-3``: shape ``(..., N, n, n)``.
    """
    check_square(a, "a", allow_complex=True)
    terms = check_int(terms, "terms", 1)
    term = _eye_like(a).clone()
    total = term
    sums = [total]
    for k in range(1, terms):
        term = term @ a / k
        total = total + term
        if partial:
            sums.append(total)
    return torch.stack(sums, dim=-3) if partial else total


def exp_scaled_series(a: torch.Tensor, terms: int, squarings: int) -> torch.Tensor:
    r"""Scaling and squaring: a short series at :math:`A/2^s`, squared :math:`s` times.

    .. math::

        e^{A} = \left(e^{A/2^s}\right)^{2^s} \approx \left(S_N(A/2^s)\right)^{2^s},

    exact in exact arithmetic because :math:`A/2^s` commutes with itself. With
    :math:`\|A/2^s\| \le 1/2` a handful of terms already reaches machine
    precision, and no large terms cancel. ``torch.linalg.matrix_exp`` works the
    same way (with a Padé or Taylor approximant of chosen degree).

    Parameters
    ----------
    a : torch.Tensor
        Square matrices, shape ``(..., n, n)``.
    terms : int
        Number of series terms ``N >= 1``, as in :func:`exp_series`.
    squarings : int
        Number of squarings ``s >= 0`` (``s = 0`` is the plain series).
    """
    squarings = check_int(squarings, "squarings", 0, 60)
    check_square(a, "a", allow_complex=True)
    result = exp_series(a / 2.0**squarings, terms)
    for _ in range(squarings):
        result = result @ result
    return result


def exp_via_eig(a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The exponential through an eigendecomposition, and how ill-conditioned it was.

    For diagonalizable :math:`A = P \Lambda P^{-1}`,

    .. math::

        e^{A} = P\, e^{\Lambda} P^{-1}, \qquad e^{\Lambda} = \operatorname{diag}(e^{\lambda_1}, \dots, e^{\lambda_n}).

    A matrix that is not diagonalizable (a Jordan block) has no such :math:`P`;
    numerically the eigensolver still returns one, with nearly parallel columns,
    and the rounding errors of the eigenvalues are amplified by the condition
    number :math:`\kappa(P) = \|P\|_2 \|P^{-1}\|_2`.

    Returns
    -------
    (exp, cond) : tuple of torch.Tensor
        :math:`P e^{\Lambda} P^{-1}` with shape ``(..., n, n)`` (real part for a
        real input) and :math:`\kappa(P)` with shape ``(...)``.
    """
    check_square(a, "a", allow_complex=True)
    w, p = torch.linalg.eig(a)
    result = torch.linalg.solve(p, p * torch.exp(w).unsqueeze(-2), left=False)
    cond = torch.linalg.cond(p)
    return (result if a.is_complex() else result.real), cond


def log_series(a: torch.Tensor, terms: int) -> torch.Tensor:
    r"""Truncated series of :math:`\log(I + A)`.

    .. math::

        \log(I + A) = \sum_{k=1}^{\infty} (-1)^{k-1} \frac{A^k}{k},

    which converges when the spectral radius :math:`\rho(A) < 1` (a small norm,
    :math:`\|A\|_2 < 1`, is sufficient but not necessary) and diverges when
    :math:`\rho(A) > 1`. Where it converges, :math:`e^{\log(I + A)} = I + A`
    and :math:`\log\det(I + A) = \operatorname{Tr}\log(I + A) = \sum_k (-1)^{k-1}\operatorname{Tr}(A^k)/k`.

    Parameters
    ----------
    a : torch.Tensor
        Square matrices, shape ``(..., n, n)``.
    terms : int
        Number of terms ``N >= 1`` (powers :math:`A^1, \dots, A^N`).
    """
    check_square(a, "a", allow_complex=True)
    terms = check_int(terms, "terms", 1)
    power = a
    total = a.clone()
    for k in range(2, terms + 1):
        power = power @ a
        total = total + (-1) ** (k - 1) * power / k
    return total


def sin_cos(a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Matrix sine and cosine of real matrices, from :math:`e^{iA} = \cos A + i \sin A`.

    Both series, :math:`\sin A = \sum_k (-1)^k A^{2k+1}/(2k+1)!` and
    :math:`\cos A = \sum_k (-1)^k A^{2k}/(2k)!`, are the odd and even parts of
    the exponential series at :math:`iA`; for real :math:`A` they are its
    imaginary and real parts.
    """
    check_square(a, "a")
    e = torch.linalg.matrix_exp(1j * a.to(torch.promote_types(a.dtype, torch.complex64)))
    return e.imag.to(a.dtype), e.real.to(a.dtype)


def commutator(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    r"""The commutator :math:`[A, B] = AB - BA`, shape of the broadcast batch."""
    check_square(a, "a", allow_complex=True)
    check_square(b, "b", allow_complex=True)
    return a @ b - b @ a


def exp_product_gap(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    r"""How far :math:`e^{A+B}` is from :math:`e^{A}e^{B}`, in the Frobenius norm.

    .. math::

        \operatorname{gap}(A, B) = \left\|e^{A+B} - e^{A}e^{B}\right\|_F
        = \tfrac12 \|[A, B]\|_F + O(\|A\|^3 + \|B\|^3),

    the second form from comparing the series to second order. The gap is 0
    when :math:`AB = BA`; it can also be 0 for matrices that do not commute.
    """
    check_square(a, "a", allow_complex=True)
    check_square(b, "b", allow_complex=True)
    e = torch.linalg.matrix_exp
    return torch.linalg.matrix_norm(e(a + b) - e(a) @ e(b))


def det_exp_path(a: torch.Tensor, t: float | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The path :math:`f(t) = \det(e^{tA})` and its derivative, by automatic differentiation.

    The chapter's proof shows :math:`f'(t) = \operatorname{Tr}(A)\, f(t)` with
    :math:`f(0) = 1`, hence :math:`f(t) = e^{t \operatorname{Tr} A}`. Here
    :math:`f'` is computed by differentiating ``det(matrix_exp(t * a))`` with
    autograd, without using that result, so the two can be compared.

    Parameters
    ----------
    a : torch.Tensor
        Square matrices, shape ``(..., n, n)``.
    t : float or torch.Tensor
        Times, broadcasting with ``a.shape[:-2]``.

    Returns
    -------
    (f, df) : tuple of torch.Tensor
        :math:`f(t)` and :math:`f'(t)`, shape of the broadcast batch.
    """
    check_square(a, "a")
    t = _times(t, a)
    t = t.expand(torch.broadcast_shapes(t.shape, a.shape[:-2])).clone().requires_grad_(True)
    with torch.enable_grad():
        f = torch.linalg.det(torch.linalg.matrix_exp(t[..., None, None] * a))
        (df,) = torch.autograd.grad(f.sum(), t)
    return f.detach(), df


class DetExpSides(NamedTuple):
    """Both sides of the identity, directly and in log form (see :func:`det_exp_sides`)."""

    det_exp: torch.Tensor
    exp_trace: torch.Tensor
    logdet_exp: torch.Tensor
    trace: torch.Tensor


def det_exp_sides(a: torch.Tensor) -> DetExpSides:
    r"""Evaluate both sides of :math:`\det e^{A} = e^{\operatorname{Tr} A}` as a computer would.

    Returns ``det(matrix_exp(a))``, ``exp(trace(a))``, ``slogdet(matrix_exp(a))``'s
    :math:`\log|\det|`, and ``trace(a)``, all in ``a``'s dtype, shape ``(...)``.
    In exact arithmetic the first two agree, and so do the last two. In
    floating point the left sides go through an :math:`n \times n` exponential
    and an LU factorization (:math:`O(n^3)` work and their rounding errors),
    the right sides through :math:`n - 1` additions.
    """
    check_square(a, "a")
    e = torch.linalg.matrix_exp(a)
    tr = trace(a)
    return DetExpSides(torch.linalg.det(e), torch.exp(tr), torch.linalg.slogdet(e).logabsdet, tr)


# -- Liouville: the flow of dx/dt = Ax and the volumes it carries


def linear_flow(a: torch.Tensor, points: torch.Tensor, t: float | torch.Tensor = 1.0) -> torch.Tensor:
    r"""Carry points along the linear ODE :math:`\dot x = A x` for time :math:`t`.

    .. math::

        x(t) = e^{tA} x(0),

    applied to every row of ``points``.

    Parameters
    ----------
    a : torch.Tensor
        Square matrices, shape ``(..., n, n)``.
    points : torch.Tensor
        Point sets, shape ``(..., m, n)`` (one point per row), batch
        broadcasting with ``a``'s.
    t : float or torch.Tensor
        Times, broadcasting with ``a.shape[:-2]``.

    Returns
    -------
    torch.Tensor
        The carried points, shape ``(..., m, n)`` over the broadcast batch.
    """
    check_square(a, "a")
    if not isinstance(points, torch.Tensor) or not points.is_floating_point() or points.ndim < 2:
        raise TypeError("points must be a floating tensor of shape (..., m, n)")
    if points.shape[-1] != a.shape[-1]:
        raise ValueError(
            f"points must have shape (..., m, {a.shape[-1]}) to match a of shape {tuple(a.shape)}, "
            f"got {tuple(points.shape)}"
        )
    t = _times(t, a)
    return points @ torch.linalg.matrix_exp(t[..., None, None] * a).mT


def signed_area(polygon: torch.Tensor) -> torch.Tensor:
    r"""Signed area of closed polygons (shoelace formula).

    .. math::

        \operatorname{area}(p_1, \dots, p_m) = \tfrac12 \sum_{i=1}^{m} \left(x_i y_{i+1} - x_{i+1} y_i\right),
        \qquad p_{m+1} = p_1,

    positive for counter-clockwise vertices. A linear map :math:`M` multiplies
    it by :math:`\det M`, so the image of a polygon under the flow
    :math:`e^{tA}` has area :math:`e^{t \operatorname{Tr} A}` times the original
    (Liouville's formula in the plane).

    Parameters
    ----------
    polygon : torch.Tensor
        Vertices in order, shape ``(..., m, 2)``, ``m >= 1``.
    """
    if not isinstance(polygon, torch.Tensor) or not polygon.is_floating_point():
        raise TypeError("polygon must be a floating tensor of shape (..., m, 2)")
    if polygon.ndim < 2 or polygon.shape[-1] != 2 or polygon.shape[-2] == 0:
        raise ValueError(f"polygon must have shape (..., m, 2) with m >= 1, got {tuple(polygon.shape)}")
    x, y = polygon[..., 0], polygon[..., 1]
    return 0.5 * (x * y.roll(-1, -1) - x.roll(-1, -1) * y).sum(-1)


# -- traces from matrix-vector products


def _probes(shape: tuple[int, ...], like: torch.Tensor, distribution: str,
            generator: torch.Generator | None) -> torch.Tensor:
    check_choice(distribution, "distribution", ("rademacher", "gaussian"))
    if distribution == "gaussian":
        return torch.randn(shape, dtype=like.dtype, device=like.device, generator=generator)
    signs = torch.randint(0, 2, shape, device=like.device, generator=generator)
    return (2 * signs - 1).to(like.dtype)


def hutchinson_trace(a: torch.Tensor, probes: int, *, generator: torch.Generator | None = None,
                     distribution: str = "rademacher") -> torch.Tensor:
    r"""Hutchinson's stochastic estimate of the trace from ``probes`` matrix-vector products.

    For random vectors with :math:`\mathbb{E}[v v^\top] = I`,
    :math:`\mathbb{E}[v^\top A v] = \operatorname{Tr}(A\, \mathbb{E}[v v^\top]) = \operatorname{Tr} A`, so

    .. math::

        \widehat{\operatorname{Tr}}_m(A) = \frac1m \sum_{j=1}^{m} v_j^\top A v_j

    is unbiased, with variance :func:`hutchinson_variance` divided by :math:`m`.
    Every matrix of the batch gets its own independent probes, so a batch of
    copies of one matrix gives independent repeats of the estimate.

    Parameters
    ----------
    a : torch.Tensor
        Square matrices, shape ``(..., n, n)``.
    probes : int
        Number of probe vectors ``m >= 1``.
    generator : torch.Generator, optional
        Source of the probes (on ``a``'s device), for reproducible estimates.
    distribution : {"rademacher", "gaussian"}
        Entries :math:`\pm 1` with equal probability, or standard normal.

    Returns
    -------
    torch.Tensor
        The estimates, shape ``(...)``.
    """
    check_square(a, "a")
    probes = check_int(probes, "probes", 1)
    v = _probes((*a.shape[:-1], probes), a, distribution, generator)
    return (v * (a @ v)).sum(-2).mean(-1)


def hutchinson_variance(a: torch.Tensor, distribution: str = "rademacher") -> torch.Tensor:
    r"""Exact variance of one probe :math:`v^\top A v` in :func:`hutchinson_trace`.

    With :math:`S = (A + A^\top)/2` (only the symmetric part enters :math:`v^\top A v`),

    .. math::

        \operatorname{Var}_{\text{Rademacher}} = 2 \sum_{i \ne j} S_{ij}^2,
        \qquad
        \operatorname{Var}_{\text{Gaussian}} = 2 \sum_{i, j} S_{ij}^2 = 2 \|S\|_F^2 .

    Rademacher probes read the diagonal exactly (:math:`v_i^2 = 1`), so they
    never have the larger variance; the estimate from :math:`m` probes has
    variance :math:`\operatorname{Var}/m`.
    """
    check_square(a, "a")
    check_choice(distribution, "distribution", ("rademacher", "gaussian"))
    s = (a + a.mT) / 2
    total = 2 * s.square().sum((-2, -1))
    if distribution == "gaussian":
        return total
    return total - 2 * s.diagonal(dim1=-2, dim2=-1).square().sum(-1)


def det_first_order(j: torch.Tensor, eta: float | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The determinant of a small step :math:`I + \eta J` and its first-order value.

    .. math::

        \det(I + \eta J) = e^{\operatorname{Tr}\log(I + \eta J)}
        = 1 + \eta \operatorname{Tr} J
        + \tfrac{\eta^2}{2}\left((\operatorname{Tr} J)^2 - \operatorname{Tr}(J^2)\right) + O(\eta^3),

    so :math:`\det(I + \eta J) = 1 + \eta \operatorname{Tr} J + O(\eta^2)`: the
    volume change of one Euler step :math:`x \mapsto x + \eta f(x)` with
    Jacobian :math:`J = \partial f/\partial x`.

    Parameters
    ----------
    j : torch.Tensor
        Square matrices, shape ``(..., n, n)``.
    eta : float or torch.Tensor
        Step sizes, broadcasting with ``j.shape[:-2]``.

    Returns
    -------
    (exact, first_order) : tuple of torch.Tensor
        :math:`\det(I + \eta J)` and :math:`1 + \eta\operatorname{Tr} J`.
    """
    check_square(j, "j")
    eta = _times(eta, j, "eta")
    exact = torch.linalg.det(_eye_like(j) + eta[..., None, None] * j)
    return exact, 1 + eta * trace(j)


# -- continuous-time flows: the log-determinant as an integral of a trace


def _check_field(field: object, z0: object, t1: object, steps: object) -> tuple[float, int]:
    if not callable(field):
        raise TypeError(f"field must be a callable z -> dz/dt, got {type(field).__name__}")
    if not isinstance(z0, torch.Tensor) or not z0.is_floating_point() or z0.ndim < 1:
        raise TypeError("z0 must be a floating tensor of shape (..., d)")
    if isinstance(t1, bool) or not isinstance(t1, (int, float)):
        raise TypeError(f"t1 must be a real number, got {type(t1).__name__}")
    return float(t1), check_int(steps, "steps", 1)


def rk4_flow(field: Callable[[torch.Tensor], torch.Tensor], z0: torch.Tensor, t1: float,
             steps: int) -> torch.Tensor:
    r"""Integrate the autonomous ODE :math:`\dot z = f(z)` from time 0 to ``t1`` with classical Runge-Kutta.

    Differentiable with respect to ``z0`` (and any parameters of ``field``), so
    the Jacobian :math:`\partial z(t_1)/\partial z(0)` of the flow map can be
    formed with autograd to check :func:`flow_logdet`.

    Parameters
    ----------
    field : callable
        :math:`f`, mapping a ``(..., d)`` tensor to a ``(..., d)`` tensor.
    z0 : torch.Tensor
        Initial points, shape ``(..., d)``.
    t1 : float
        Final time.
    steps : int
        Number of equal steps ``>= 1``.
    """
    t1, steps = _check_field(field, z0, t1, steps)
    h = t1 / steps
    z = z0
    for _ in range(steps):
        k1 = field(z)
        k2 = field(z + h / 2 * k1)
        k3 = field(z + h / 2 * k2)
        k4 = field(z + h * k3)
        z = z + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return z


def _divergence(field: Callable[[torch.Tensor], torch.Tensor], z: torch.Tensor,
                v: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(f(z), Tr df/dz)``: exact from ``d`` vector-Jacobian products, or Hutchinson with probes ``v``.

    ``v`` has shape ``(m, ..., d)``: ``m`` probes for every point.
    """
    with torch.enable_grad():
        z = z.detach().requires_grad_(True)
        out = field(z)
        grad = lambda w: torch.autograd.grad(out, z, w, retain_graph=True)[0]  # noqa: E731  (w^T J)
        if v is None:
            basis = torch.eye(z.shape[-1], dtype=z.dtype, device=z.device)
            div = sum(grad(basis[i].expand_as(out))[..., i] for i in range(z.shape[-1]))
        else:
            div = torch.stack([(grad(w) * w).sum(-1) for w in v]).mean(0)
    return out.detach(), div.detach()


def flow_logdet(field: Callable[[torch.Tensor], torch.Tensor], z0: torch.Tensor, t1: float, steps: int, *,
                probes: int = 0, generator: torch.Generator | None = None,
                distribution: str = "rademacher") -> tuple[torch.Tensor, torch.Tensor]:
    r"""Carry points along :math:`\dot z = f(z)` and accumulate the log-determinant of the flow map.

    The Jacobian :math:`\Phi(t) = \partial z(t)/\partial z(0)` solves
    :math:`\dot\Phi = J(z(t))\,\Phi`, :math:`\Phi(0) = I`, with :math:`J = \partial f/\partial z`;
    the chapter's argument for :math:`\det e^{tA}` then gives
    :math:`\frac{d}{dt}\log\det\Phi = \operatorname{Tr} J(z(t))`, so

    .. math::

        \log\det\frac{\partial z(t_1)}{\partial z(0)} = \int_0^{t_1} \operatorname{Tr} J(z(t))\, dt,

    the instantaneous change of variables of continuous normalizing flows.
    The pair :math:`(z, \ell)` with :math:`\dot\ell = \operatorname{Tr} J(z)` is
    integrated with the same Runge-Kutta steps as :func:`rk4_flow`.

    Parameters
    ----------
    field : callable
        :math:`f`, mapping ``(..., d)`` to ``(..., d)``; each point of the batch
        must only depend on itself (the traces are read from batch sums).
    z0 : torch.Tensor
        Initial points, shape ``(..., d)``.
    t1 : float
        Final time.
    steps : int
        Number of Runge-Kutta steps ``>= 1``.
    probes : int
        0 for the exact trace (``d`` vector-Jacobian products per evaluation), or
        the number ``m >= 1`` of Hutchinson probes, drawn once per point and kept
        for the whole path (as FFJORD does), which keeps the integral unbiased.
    generator : torch.Generator, optional
        Source of the probes.
    distribution : {"rademacher", "gaussian"}
        Probe distribution, as in :func:`hutchinson_trace`.

    Returns
    -------
    (z1, logdet) : tuple of torch.Tensor
        The points at ``t1``, shape ``(..., d)``, and the log-determinants,
        shape ``(...)``; both detached from the autograd graph.
    """
    t1, steps = _check_field(field, z0, t1, steps)
    probes = check_int(probes, "probes", 0)
    v = _probes((probes, *z0.shape), z0, distribution, generator) if probes else None
    h = t1 / steps
    z = z0.detach()
    logdet = torch.zeros(z0.shape[:-1], dtype=z0.dtype, device=z0.device)
    for _ in range(steps):
        k1, d1 = _divergence(field, z, v)
        k2, d2 = _divergence(field, z + h / 2 * k1, v)
        k3, d3 = _divergence(field, z + h / 2 * k2, v)
        k4, d4 = _divergence(field, z + h * k3, v)
        z = z + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        logdet = logdet + h / 6 * (d1 + 2 * d2 + 2 * d3 + d4)
    return z, logdet
