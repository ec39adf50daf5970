r"""Top-k feature selection trained through :func:`kexue_lib.topk.soft_topk` (chapter 4's application).

Synthetic regression: :math:`y = X w^\star + \varepsilon` where only ``k`` of the
``d`` features carry weight. The model learns a score per feature and a
weight per feature and predicts :math:`\hat y = X (m \odot w)` with the soft
mask :math:`m = \operatorname{soft\_topk}(\theta, k, \tau_t)`; the temperature
follows a geometric schedule from ``tau[0]`` to ``tau[1]``, so the mask hardens
as training proceeds and at the end the hard Top-k of the scores is the
selection.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch


def train_feature_selection(
    soft_mask: Callable[[torch.Tensor, int, float], torch.Tensor],
    hard_mask: Callable[[torch.Tensor, int], torch.Tensor],
    *,
    k: int = 4,
    d: int = 32,
    n: int = 1024,
    steps: int = 200,
    tau: tuple[float, float] = (1.0, 0.02),
    lr: float = 0.05,
    noise: float = 0.1,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """Train scores and weights; return per-step curves (float64 tensors of length ``steps``).

    Keys: ``"tau"``, ``"soft_loss"`` (MSE with the soft mask, what is
    optimized), ``"hard_loss"`` (MSE with the hard Top-k mask of the scores and
    the same weights) and ``"recovered"`` (fraction of the ``k`` informative
    features inside that hard Top-k) and ``"mask_gap"`` (largest entry of
    ``|soft mask - hard mask|``).
    """
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=gen)
    support = torch.randperm(d, generator=gen)[:k]
    w_true = torch.zeros(d)
    w_true[support] = (1.0 + torch.rand(k, generator=gen)) * torch.where(torch.rand(k, generator=gen) < 0.5, -1.0, 1.0)
    y = x @ w_true + noise * torch.randn(n, generator=gen)
    scores = (0.01 * torch.randn(d, generator=gen)).requires_grad_()
    weights = torch.zeros(d, requires_grad=True)
    opt = torch.optim.Adam([scores, weights], lr=lr)
    taus = torch.logspace(math.log10(tau[0]), math.log10(tau[1]), steps, dtype=torch.float64)
    curves = {name: torch.zeros(steps, dtype=torch.float64) for name in ("soft_loss", "hard_loss", "recovered", "mask_gap")}
    truth = torch.zeros(d, dtype=torch.bool)
    truth[support] = True
    for step in range(steps):
        mask = soft_mask(scores, k, float(taus[step]))
        loss = ((x @ (mask * weights) - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            hard = hard_mask(scores, k)
            curves["soft_loss"][step] = float(loss)
            curves["hard_loss"][step] = float(((x @ (hard * weights) - y) ** 2).mean())
            curves["recovered"][step] = float((hard.bool() & truth).sum()) / k
            curves["mask_gap"][step] = float((mask - hard).abs().max())
    curves["tau"] = taus
    return curves
