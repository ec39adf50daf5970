r"""Smooth approximations of the Top-k mask (chapter 4).

The Top-k operator maps scores :math:`x \in \mathbb{R}^n` to the multi-hot
vector :math:`\mathcal{T}_k(x) \in \{0,1\}^n` with ones at the ``k`` largest
entries. A smooth Top-k maps into

.. math::

    \Delta_k = \Big\{p \in [0,1]^n : \sum_{i=1}^n p_i = k\Big\}

and should be *monotonic* (:math:`p_i \ge p_j \Leftrightarrow x_i \ge x_j`),
*shift invariant* (:math:`p(x + c) = p(x)`) and tend to :math:`\mathcal{T}_k(x)`
as the temperature :math:`\tau \to 0`. :func:`soft_topk` offers five
constructions from kexue.fm/archives/10373:

- ``"iterative"``: the 2019 soft-k-max, ``k`` rounds of softmax on
  :math:`(1 - p) \odot (u - \min u)`;
- ``"grad"``: GradTopK, :math:`p = \nabla_u \log e_k(e^{u})` with
  :math:`e_k` the elementary symmetric polynomial (a log-sum-exp over all
  ``k``-subsets);
- ``"sigmoid"``, ``"exp"``, ``"laplace"``: ThreTopK, :math:`p = f(u - \lambda(u))`
  with :math:`\sum_i p_i = k`.

Here :math:`u = x/\tau`. The other public functions are the references and
the failing constructions the chapter examines.
"""

from __future__ import annotations

import math

import torch

from . import _topk_grad, _topk_selection, _topk_threshold
from ._validation import check_choice, check_dim, check_floating, check_int, check_nonempty, check_positive

__all__ = [
    "METHODS",
    "soft_topk",
    "topk_mask",
    "threshold",
    "log_esp",
    "grad_topk_recursive",
    "grad_topk_enumerate",
    "threshold_bisect",
    "weighted_iterative_topk",
    "train_feature_selection",
]

#: The ``method`` names accepted by :func:`soft_topk`.
METHODS = ("iterative", "grad", "sigmoid", "exp", "laplace")
_THRESHOLD = ("sigmoid", "exp", "laplace")


# -- helpers


def _prepare(x: object, k: object, dim: object, tau: object = 1.0) -> tuple[torch.Tensor, int, int, float]:
    """Check arguments; return ``x`` with ``dim`` moved last (upcast from 16-bit floats), ``k``, ``dim``, ``tau``."""
    check_floating(x, "x", min_ndim=1)
    assert isinstance(x, torch.Tensor)
    dim = check_dim(x, dim)
    n = check_nonempty(x, dim)
    k = check_int(k, "k", 1, n)
    tau = check_positive(tau, "tau")
    y = x.movedim(dim, -1)
    if y.dtype in (torch.float16, torch.bfloat16):
        y = y.float()
    return y, k, dim, tau


def soft_topk(x: torch.Tensor, k: int, tau: float = 1.0, method: str = "laplace", dim: int = -1) -> torch.Tensor:
    r"""Smooth Top-k mask of ``x / tau`` along ``dim``.

    With :math:`u = x/\tau`:

    - ``"laplace"`` (default), ``"exp"``, ``"sigmoid"``: ThreTopK,
      :math:`p_i = f(u_i - \lambda)` with :math:`\sum_i f(u_i - \lambda) = k`, for
      :math:`f(v) = \tfrac12 + \tfrac12\operatorname{sign}(v)(1 - e^{-|v|})`
      (Laplace CDF), :math:`\min(1, e^v)` or :math:`\sigma(v)`. The threshold has
      a closed form after a partial ordering by ``torch.topk`` (``"exp"``,
      ``"laplace"``) or comes from safeguarded Newton steps (``"sigmoid"``); the
      backward pass is the implicit gradient
      :math:`\partial\lambda/\partial u_j = f'(u_j-\lambda)/\sum_i f'(u_i-\lambda)`.
    - ``"grad"``: GradTopK,

      .. math::

          p_i = \frac{\partial}{\partial u_i} \log \sum_{|S| = k} e^{\sum_{j\in S} u_j},

      the conditional Bernoulli law :math:`P(B_i = 1 \mid \sum_j B_j = k)` with
      :math:`B_i \sim \text{Bernoulli}(\sigma(u_i - \lambda))`, computed stably for any
      input scale by a tree of truncated polynomial products and a pass back
      down it: :math:`O(nk)` work in :math:`\lceil \log_2 n \rceil` levels and
      :math:`O(n \log k)` memory. The backward pass is the Hessian-vector product
      of :math:`\log e_k`, by one more hand-written sweep (not autograd); it is
      not twice differentiable.
    - ``"iterative"``: :math:`u \leftarrow u - \min u`, :math:`p \leftarrow 0`, then ``k``
      times :math:`p \leftarrow p + \operatorname{softmax}((1-p)\odot u)`. Its
      entries can exceed 1 (see chapter 4).

    Parameters
    ----------
    x : torch.Tensor
        Floating scores, any batch shape. Entries must be finite or ``-inf``;
        ``-inf`` entries are masked: they get 0 and do not change the rest. A
        slice with fewer than ``k`` unmasked entries gets 1 on each of them
        (all methods but ``"iterative"``, whose sum is always ``k``).
    k : int
        Size of the mask, ``1 <= k <= x.shape[dim]``. With ``k = n`` every
        method but ``"iterative"`` returns all ones.
    tau : float
        Temperature, ``tau > 0``; :math:`\tau \to 0` gives the hard Top-k mask.
    method : str
        One of :data:`METHODS`.
    dim : int
        The dimension holding the ``n`` scores.

    Returns
    -------
    torch.Tensor
        Same shape, dtype and device as ``x``; each slice along ``dim`` lies in
        :math:`[0,1]^n` (except ``"iterative"``) and sums to ``k``.
    """
    method = check_choice(method, "method", METHODS)
    y, k, dim, tau = _prepare(x, k, dim, tau)
    if method in _THRESHOLD:
        p = _topk_threshold.ThresholdTopK.apply(y, k, tau, method)
    elif method == "grad":
        u = y / tau
        # any threshold near the sigmoid one keeps P(sum B = k) far from underflow; the Laplace one is
        # within log 2 of it and cheaper (P near exp(-0.31 k) / sqrt(k) at worst, a Poisson estimate): k <= 64
        p = _topk_grad.GradTopK.apply(u, _topk_threshold.threshold(u, k, "laplace" if k <= 64 else "sigmoid"), k)
    else:
        p = _iterative(y / tau, k)
    return p.to(x.dtype).movedim(-1, dim)


def _iterative(u: torch.Tensor, k: int) -> torch.Tensor:
    finite = u > -math.inf
    low = torch.where(finite, u, math.inf).amin(dim=-1, keepdim=True)
    u = u - torch.where(torch.isfinite(low), low, 0.0)
    p = torch.zeros_like(u)
    for _ in range(k):  # k rounds, each vectorized over the batch and the n entries
        y = torch.where(finite, (1 - p) * torch.where(finite, u, 0.0), -math.inf)
        p = p + torch.softmax(y, dim=-1).nan_to_num(0.0)
    return p


def topk_mask(x: torch.Tensor, k: int, dim: int = -1) -> torch.Tensor:
    r"""The hard Top-k mask :math:`\mathcal{T}_k(x)`: 1 at the ``k`` largest entries along ``dim``, else 0.

    Ties are broken by ``torch.topk``; masked (``-inf``) entries always get 0.
    The result has the shape, dtype and device of ``x`` and no gradient.
    """
    y, k, dim, _ = _prepare(x, k, dim)
    idx = torch.topk(y.detach(), k, dim=-1).indices
    mask = torch.zeros_like(y, dtype=x.dtype).scatter(-1, idx, 1.0)
    return torch.where(y > -math.inf, mask, 0.0).to(x.dtype).movedim(-1, dim)


def threshold(x: torch.Tensor, k: int, tau: float = 1.0, method: str = "laplace", dim: int = -1) -> torch.Tensor:
    r"""The ThreTopK threshold :math:`\lambda(x/\tau)`, ``dim`` reduced (no gradient).

    ``method`` is ``"sigmoid"``, ``"exp"`` or ``"laplace"``; ``-inf`` means every
    unmasked entry is saturated (fewer than ``k + 1`` unmasked entries).
    """
    method = check_choice(method, "method", _THRESHOLD)
    y, k, dim, tau = _prepare(x, k, dim, tau)
    return _topk_threshold.threshold(y / tau, k, method).squeeze(-1).to(x.dtype)


def log_esp(x: torch.Tensor, k: int, dim: int = -1) -> torch.Tensor:
    r"""Log elementary symmetric polynomials :math:`\log e_j(e^{x_1},\dots,e^{x_n})`, ``j = 0..k``.

    .. math::

        \prod_{i=1}^n (1 + e^{x_i} z) = \sum_{j=0}^n e_j\, z^j, \qquad
        \log e_j = \log \sum_{|S| = j} e^{\sum_{i \in S} x_i}.

    The last dim of the result (size ``k + 1``) replaces ``dim``. Computed by
    a tree of log-space products, exact up to rounding at any scale.
    Degrees above the number of unmasked entries come out as a huge negative
    number standing for ``log 0``.
    """
    y, k, dim, _ = _prepare(x, k, dim)
    return _topk_grad.log_esp(y, k).to(x.dtype)


def grad_topk_recursive(x: torch.Tensor, k: int, tau: float = 1.0, dim: int = -1) -> torch.Tensor:
    r"""GradTopK by the post's log-space recursion (fails at large scale; for the chapter).

    With :math:`Z_{j,i}` the sum over ``j``-subsets containing ``i``:

    .. math::

        \log Z_{j,i} = u_i + \log\big(e^{\log Z_{j-1}} - e^{\log Z_{j-1,i}}\big), \qquad
        \log Z_j = \log\sum_i e^{\log Z_{j,i}} - \log j,

    from :math:`\log Z_{1,i} = u_i`, and :math:`p_i = Z_{k,i}/Z_k`. The difference is
    evaluated as :math:`a + \log(-\operatorname{expm1}(b - a))`, the most careful
    log-space form; it still returns ``nan``/``inf`` or wrong values once
    :math:`Z_{j-1,i}` and :math:`Z_{j-1}` agree to working precision.
    """
    y, k, dim, tau = _prepare(x, k, dim, tau)
    u = y / tau
    log_zi = u
    log_z = torch.logsumexp(u, dim=-1, keepdim=True)
    for j in range(2, k + 1):
        log_zi = u + log_z + torch.log(-torch.expm1(log_zi - log_z))
        log_z = torch.logsumexp(log_zi, dim=-1, keepdim=True) - math.log(j)
    return torch.exp(log_zi - log_z).to(x.dtype).movedim(-1, dim)


def grad_topk_enumerate(x: torch.Tensor, k: int, tau: float = 1.0, dim: int = -1) -> torch.Tensor:
    r"""GradTopK by enumerating all :math:`\binom{n}{k}` subsets (reference for small ``n``).

    .. math::

        p_i = \sum_{S \ni i} \frac{e^{\sum_{j\in S} u_j}}{\sum_{|S'|=k} e^{\sum_{j\in S'} u_j}}.
    """
    y, k, dim, tau = _prepare(x, k, dim, tau)
    n = y.shape[-1]
    if math.comb(n, k) > 200_000:
        raise ValueError(f"grad_topk_enumerate is a reference for small inputs; C({n}, {k}) subsets is too many")
    subsets = torch.combinations(torch.arange(n, device=y.device), k)  # (C, k)
    weights = torch.softmax((y / tau)[..., subsets].sum(-1), dim=-1)  # (..., C)
    incidence = torch.zeros(subsets.shape[0], n, dtype=y.dtype, device=y.device).scatter(1, subsets, 1.0)
    return (weights @ incidence).to(x.dtype).movedim(-1, dim)


def threshold_bisect(
    x: torch.Tensor, k: int, tau: float = 1.0, method: str = "laplace", dim: int = -1, iters: int = 200
) -> torch.Tensor:
    r"""ThreTopK by plain bisection on :math:`\lambda` in float64 (reference, slow).

    :math:`F(\lambda) = \sum_i f(u_i - \lambda)` decreases from ``n`` to 0; the
    root lies in :math:`[\min u - \log n - 1, \max u + \log(n/k) + 1]` when more
    than ``k`` entries are unmasked. Returns the soft mask in ``x.dtype``.
    """
    method = check_choice(method, "method", _THRESHOLD)
    y, k, dim, tau = _prepare(x, k, dim, tau)
    iters = check_int(iters, "iters", 1)
    u = (y / tau).double()
    n = u.shape[-1]
    finite = u > -math.inf
    lo = torch.where(finite, u, math.inf).amin(-1, keepdim=True) - math.log(n) - 1
    hi = u.amax(-1, keepdim=True) + math.log(n / k) + 1
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        above = _topk_threshold.soft_mask(u, mid, method).sum(-1, keepdim=True) > k
        lo, hi = torch.where(above, mid, lo), torch.where(above, hi, mid)
    lam = torch.where(finite.sum(-1, keepdim=True) > k, 0.5 * (lo + hi), -math.inf)
    return _topk_threshold.soft_mask(u, lam, method).to(x.dtype).movedim(-1, dim)


def weighted_iterative_topk(x: torch.Tensor, k: int, tau: float = 1.0, dim: int = -1) -> torch.Tensor:
    r"""The weighted-softmax iteration from Stack Exchange (wrong limit; for the chapter).

    :math:`p \leftarrow p + \operatorname{softmax}(u; 1 - p)` ``k`` times, where
    :math:`\operatorname{softmax}(u; w)_i = w_i e^{u_i}/\sum_j w_j e^{u_j}`. As
    :math:`\tau \to 0` with ``k = 2`` it tends to 1.5 at the largest entry and
    0.5 at the second, not to the Top-2 mask.
    """
    y, k, dim, tau = _prepare(x, k, dim, tau)
    log_e = torch.log_softmax(y / tau, dim=-1)
    p = torch.zeros_like(y)
    for _ in range(k):
        w = (1 - p) * torch.exp(log_e)
        p = p + w / w.sum(dim=-1, keepdim=True)
    return p.to(x.dtype).movedim(-1, dim)


def train_feature_selection(method: str, **options: object) -> dict[str, torch.Tensor]:
    r"""Learn which ``k`` of ``d`` features matter by training through :func:`soft_topk`.

    Regression :math:`y = X w^\star + \varepsilon` with ``k`` informative
    features; the model predicts :math:`X (m \odot w)` with
    :math:`m = \operatorname{soft\_topk}(\theta, k, \tau_t, \text{method})` and a
    geometric temperature schedule. Options (``k``, ``d``, ``n``, ``steps``,
    ``tau``, ``lr``, ``noise``, ``seed``) and the returned curves are those of
    ``kexue_lib._topk_selection.train_feature_selection``: per step ``"tau"``,
    ``"soft_loss"``, ``"hard_loss"`` (hard Top-k mask of the scores) and
    ``"recovered"`` (share of the informative features selected) and
    ``"mask_gap"`` (largest difference between the soft and the hard mask).
    """
    method = check_choice(method, "method", METHODS)
    return _topk_selection.train_feature_selection(
        lambda s, k, t: soft_topk(s, k, t, method), topk_mask, **options  # type: ignore[arg-type]
    )
