"""Minibatch training loops the chapters' experiments share.

Kept deliberately plain (Adam, uniform minibatches drawn with replacement,
a seeded generator) so that a chapter's result depends on the objective it
studies, not on training tricks.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from ._validation import check_choice, check_floating, check_int, check_positive
from .smoothing import soft_f1

__all__ = ["LOSSES", "sample_batches", "train_binary", "hard_f1"]


def _soft_f1_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``-soft_f1(sigmoid(logits), targets)``: minimizing it maximizes soft F1."""
    return -soft_f1(torch.sigmoid(logits), targets)


#: Losses of a binary classifier's logits, by name.
LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "cross_entropy": F.binary_cross_entropy_with_logits,
    "soft_f1": _soft_f1_loss,
}


def sample_batches(
    n: int,
    batch_size: int,
    n_batches: int,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Indices of ``n_batches`` minibatches drawn uniformly with replacement.

    Returns a long tensor of shape ``(n_batches, batch_size)`` with values in
    ``[0, n)``; indexing a data tensor with it gives all batches at once.
    """
    n = check_int(n, "n", 1)
    batch_size = check_int(batch_size, "batch_size", 1)
    n_batches = check_int(n_batches, "n_batches", 1)
    return torch.randint(n, (n_batches, batch_size), generator=generator, device=device)


def hard_f1(logits: torch.Tensor, targets: torch.Tensor, threshold: float = 0.0) -> torch.Tensor:
    """F1 of the hard predictions ``logits > threshold`` (soft F1 of 0/1 predictions)."""
    check_floating(logits, "logits", min_ndim=1)
    return soft_f1((logits > threshold).to(logits.dtype), targets)


def train_binary(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    loss: str,
    steps: int,
    batch_size: int,
    lr: float,
    generator: torch.Generator | None = None,
    eval_data: tuple[torch.Tensor, torch.Tensor] | None = None,
    eval_every: int = 10,
) -> dict[str, torch.Tensor]:
    """Train a binary classifier ``model(x) -> logits`` with Adam on minibatches.

    Parameters
    ----------
    model : torch.nn.Module
        Maps ``(batch, features)`` to logits of shape ``(batch, 1)`` or ``(batch,)``.
    x, y : torch.Tensor
        Training features ``(n, features)`` and 0/1 labels ``(n,)``, both floating.
    loss : str
        A key of :data:`LOSSES`: ``"cross_entropy"`` or ``"soft_f1"``.
    steps, batch_size : int
        Number of Adam steps, and samples per step (drawn with replacement).
    lr : float
        Adam's learning rate, ``> 0``.
    generator : torch.Generator, optional
        Source of the minibatch draws, for reproducible runs.
    eval_data : (x, y), optional
        Held-out data on which hard F1 is recorded every ``eval_every`` steps.

    Returns
    -------
    dict
        ``"loss"``: the minibatch loss at every step (``steps`` values); with
        ``eval_data`` also ``"eval_step"`` and ``"f1"``, hard F1 on the held-out
        data at those steps (step 0 is before any update).
    """
    check_choice(loss, "loss", tuple(LOSSES))
    steps = check_int(steps, "steps", 1)
    eval_every = check_int(eval_every, "eval_every", 1)
    lr = check_positive(lr, "lr")
    check_floating(x, "x", min_ndim=2)
    check_floating(y, "y")
    if y.shape != x.shape[:1]:
        raise ValueError(f"y must have shape ({x.shape[0]},) to match x, got {tuple(y.shape)}")
    loss_fn = LOSSES[loss]
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    batches = sample_batches(x.shape[0], batch_size, steps, generator, device=x.device)
    losses, eval_steps, f1s = [], [], []
    for step in range(steps + 1):
        if eval_data is not None and (step % eval_every == 0 or step == steps):
            with torch.no_grad():
                f1s.append(hard_f1(model(eval_data[0]).reshape(-1), eval_data[1]))
            eval_steps.append(step)
        if step == steps:
            break
        idx = batches[step]
        value = loss_fn(model(x[idx]).reshape(-1), y[idx])
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
        losses.append(value.detach())
    history = {"loss": torch.stack(losses)}
    if eval_data is not None:
        history["eval_step"] = torch.tensor(eval_steps)
        history["f1"] = torch.stack(f1s)
    return history
