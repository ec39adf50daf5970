"""Tests of kexue_lib.datasets and kexue_lib.training."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from kexue_lib.datasets import imbalanced_blobs
from kexue_lib.smoothing import soft_f1
from kexue_lib.training import LOSSES, hard_f1, sample_batches, train_binary

# =================================================================== datasets


@given(
    n=st.integers(1, 300),
    features=st.integers(1, 6),
    rate=st.floats(0.01, 0.99),
    dtype=st.sampled_from([torch.float32, torch.float64]),
    seed=st.integers(0, 2**31 - 1),
)
def test_imbalanced_blobs_shapes_dtype_labels(n, features, rate, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    x, y = imbalanced_blobs(n, positive_rate=rate, features=features, generator=g, dtype=dtype)
    assert x.shape == (n, features)
    assert y.shape == (n,)
    assert x.dtype == dtype and y.dtype == dtype
    assert x.device.type == "cpu" and y.device.type == "cpu"
    assert torch.isfinite(x).all()
    assert ((y == 0) | (y == 1)).all()


@pytest.mark.parametrize("rate", [0.02, 0.1, 0.5, 0.9])
def test_imbalanced_blobs_positive_rate(rate):
    n = 200_000
    g = torch.Generator().manual_seed(7)
    _, y = imbalanced_blobs(n, positive_rate=rate, generator=g)
    se = math.sqrt(rate * (1 - rate) / n)
    assert abs(y.mean().item() - rate) < 5 * se


def test_imbalanced_blobs_default_rate_is_one_tenth():
    _, y = imbalanced_blobs(100_000, generator=torch.Generator().manual_seed(3))
    assert abs(y.mean().item() - 0.1) < 5 * math.sqrt(0.09 / 100_000)


@pytest.mark.parametrize("features", [1, 2, 8])
def test_imbalanced_blobs_class_geometry(features):
    # class means separation * 1/sqrt(d) apart per coordinate (total distance
    # `separation`), unit covariance in each class
    sep = 3.0
    x, y = imbalanced_blobs(
        100_000, positive_rate=0.3, features=features, separation=sep,
        generator=torch.Generator().manual_seed(11), dtype=torch.float64,
    )
    pos, neg = x[y == 1], x[y == 0]
    torch.testing.assert_close(neg.mean(0), torch.zeros(features, dtype=torch.float64), rtol=0, atol=0.03)
    torch.testing.assert_close(
        pos.mean(0), torch.full((features,), sep / math.sqrt(features), dtype=torch.float64), rtol=0, atol=0.04
    )
    assert (pos.mean(0) - neg.mean(0)).norm().item() == pytest.approx(sep, abs=0.08)
    for part in (pos, neg):
        cov = torch.cov(part.T).reshape(features, features)
        torch.testing.assert_close(cov, torch.eye(features, dtype=torch.float64), rtol=0, atol=0.05)


def test_imbalanced_blobs_deterministic_under_seed():
    a = imbalanced_blobs(500, generator=torch.Generator().manual_seed(5))
    b = imbalanced_blobs(500, generator=torch.Generator().manual_seed(5))
    c = imbalanced_blobs(500, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])
    # a generator advances: two draws from one generator differ
    g = torch.Generator().manual_seed(5)
    first, second = imbalanced_blobs(500, generator=g), imbalanced_blobs(500, generator=g)
    assert torch.equal(first[0], a[0])
    assert not torch.equal(first[0], second[0])


def test_imbalanced_blobs_bad_arguments():
    with pytest.raises(ValueError, match=r"n must be >= 1, got 0"):
        imbalanced_blobs(0)
    with pytest.raises(ValueError, match=r"n must be >= 1, got -3"):
        imbalanced_blobs(-3)
    with pytest.raises(TypeError, match=r"n must be an int, got float"):
        imbalanced_blobs(10.0)
    with pytest.raises(ValueError, match=r"features must be >= 1, got 0"):
        imbalanced_blobs(10, features=0)
    with pytest.raises(TypeError, match=r"features must be an int"):
        imbalanced_blobs(10, features=2.5)
    for sep in (0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match=r"separation must be a finite number > 0"):
            imbalanced_blobs(10, separation=sep)
    with pytest.raises(TypeError, match=r"separation must be a real number > 0"):
        imbalanced_blobs(10, separation="2")
    for rate in (0, 0.0, 1, 1.0, -0.1, 1.5, math.nan):
        with pytest.raises(ValueError, match=r"positive_rate must be in \(0, 1\)"):
            imbalanced_blobs(10, positive_rate=rate)


def test_imbalanced_blobs_integer_dtype_is_validated():
    with pytest.raises(TypeError, match=r"dtype"):
        imbalanced_blobs(10, dtype=torch.int64)


def test_imbalanced_blobs_non_numeric_rate_names_argument():
    with pytest.raises(TypeError, match=r"positive_rate"):
        imbalanced_blobs(10, positive_rate="0.1")


# =================================================================== sample_batches


@given(
    n=st.integers(1, 50),
    batch_size=st.integers(1, 20),
    n_batches=st.integers(1, 20),
    seed=st.integers(0, 2**31 - 1),
)
def test_sample_batches_shape_range_dtype(n, batch_size, n_batches, seed):
    idx = sample_batches(n, batch_size, n_batches, torch.Generator().manual_seed(seed))
    assert idx.shape == (n_batches, batch_size)
    assert idx.dtype == torch.long
    assert (idx >= 0).all() and (idx < n).all()


def test_sample_batches_deterministic_and_uniform():
    a = sample_batches(10, 100, 200, torch.Generator().manual_seed(0))
    b = sample_batches(10, 100, 200, torch.Generator().manual_seed(0))
    c = sample_batches(10, 100, 200, torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    counts = torch.bincount(a.reshape(-1), minlength=10).double()
    expected = a.numel() / 10
    # uniform: every index within 5 standard deviations of its expected count
    assert ((counts - expected).abs() < 5 * math.sqrt(expected * 0.9)).all()
    # with replacement: some batch repeats an index (n=10, B=100 makes it certain)
    assert any(len(set(row.tolist())) < 100 for row in a)
    # with replacement even when batch_size > n
    assert sample_batches(3, 10, 1).shape == (1, 10)


def test_sample_batches_bad_arguments():
    with pytest.raises(ValueError, match=r"n must be >= 1, got 0"):
        sample_batches(0, 4, 4)
    with pytest.raises(ValueError, match=r"batch_size must be >= 1, got 0"):
        sample_batches(10, 0, 4)
    with pytest.raises(ValueError, match=r"n_batches must be >= 1, got -1"):
        sample_batches(10, 4, -1)
    with pytest.raises(TypeError, match=r"batch_size must be an int, got float"):
        sample_batches(10, 4.0, 4)


# =================================================================== hard_f1


def test_hard_f1_tiny_hand_example():
    logits = torch.tensor([2.0, -1.0, 0.5, -3.0, 1.0])
    targets = torch.tensor([1.0, 1.0, 0.0, 0.0, 1.0])
    # predictions 1,0,1,0,1: TP=2, FP=1, FN=1 -> 2*2 / (2*2 + 1 + 1) = 2/3
    assert hard_f1(logits, targets).item() == pytest.approx(2 / 3)
    # threshold 1.5: predictions 1,0,0,0,0: TP=1, FP=0, FN=2 -> 2 / 4
    assert hard_f1(logits, targets, threshold=1.5).item() == pytest.approx(0.5)
    # a logit equal to the threshold predicts negative (strict >)
    assert hard_f1(torch.tensor([0.0, 1.0]), torch.tensor([1.0, 1.0])).item() == pytest.approx(2 / 3)
    # integer and bool labels work too
    assert hard_f1(logits, targets.long()).item() == pytest.approx(2 / 3)
    assert hard_f1(logits, targets.bool()).item() == pytest.approx(2 / 3)
    # nothing predicted, nothing to find: 0, not NaN
    assert hard_f1(torch.full((4,), -1.0), torch.zeros(4)).item() == 0.0


@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 50), thr=st.floats(-1, 1))
def test_hard_f1_matches_counts(seed, n, thr):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal(n)
    targ = rng.integers(0, 2, n)
    pred = (logits > thr).astype(int)
    tp = int(((pred == 1) & (targ == 1)).sum())
    fp = int(((pred == 1) & (targ == 0)).sum())
    fn = int(((pred == 0) & (targ == 1)).sum())
    ref = 0.0 if 2 * tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)
    out = hard_f1(torch.from_numpy(logits), torch.from_numpy(targ), threshold=thr)
    assert out.item() == pytest.approx(ref, abs=1e-15)


def test_hard_f1_errors():
    with pytest.raises(TypeError, match=r"logits must have a floating dtype"):
        hard_f1(torch.tensor([1, 0]), torch.tensor([1, 0]))
    with pytest.raises(ValueError, match=r"logits must have at least 1 dimension"):
        hard_f1(torch.tensor(1.0), torch.tensor(1.0))
    with pytest.raises(ValueError, match=r"same shape"):
        hard_f1(torch.zeros(3, 1), torch.zeros(3))


# =================================================================== train_binary


def test_losses_registry():
    assert set(LOSSES) == {"cross_entropy", "soft_f1"}
    logits = torch.tensor([2.0, -1.0, 0.5])
    t = torch.tensor([1.0, 0.0, 0.0])
    assert LOSSES["cross_entropy"](logits, t).item() == pytest.approx(
        F.binary_cross_entropy(torch.sigmoid(logits), t).item(), rel=1e-6
    )
    assert LOSSES["soft_f1"](logits, t).item() == pytest.approx(-soft_f1(torch.sigmoid(logits), t).item())


def _zero_linear(features: int = 2) -> torch.nn.Linear:
    model = torch.nn.Linear(features, 1)
    torch.nn.init.zeros_(model.weight)
    torch.nn.init.zeros_(model.bias)
    return model


def test_train_binary_reduces_cross_entropy_on_easy_problem():
    g = torch.Generator().manual_seed(0)
    x, y = imbalanced_blobs(2000, positive_rate=0.5, separation=4.0, generator=g)
    model = _zero_linear()
    with torch.no_grad():
        before = F.binary_cross_entropy_with_logits(model(x).reshape(-1), y).item()
    assert before == pytest.approx(math.log(2), rel=1e-6)
    hist = train_binary(model, x, y, loss="cross_entropy", steps=150, batch_size=64, lr=0.05, generator=g)
    with torch.no_grad():
        after = F.binary_cross_entropy_with_logits(model(x).reshape(-1), y).item()
    # Bayes-optimal cross-entropy here is about 0.08
    assert after < 0.2
    assert hist["loss"].shape == (150,)
    assert hist["loss"][0].item() == pytest.approx(math.log(2), rel=1e-6)
    assert hist["loss"][-20:].mean().item() < 0.25
    assert set(hist) == {"loss"}
    # the learned direction is the class-mean direction (1, 1)/sqrt(2)
    w = model.weight.detach().reshape(-1)
    assert torch.nn.functional.cosine_similarity(w, torch.ones(2), dim=0).item() > 0.95


def test_train_binary_soft_f1_fine_tuning_keeps_held_out_f1():
    g = torch.Generator().manual_seed(1)
    x, y = imbalanced_blobs(4000, positive_rate=0.1, separation=2.5, generator=g)
    xe, ye = imbalanced_blobs(4000, positive_rate=0.1, separation=2.5, generator=g)
    model = _zero_linear()
    pre = train_binary(
        model, x, y, loss="cross_entropy", steps=200, batch_size=128, lr=0.05,
        generator=g, eval_data=(xe, ye), eval_every=50,
    )
    assert pre["eval_step"].tolist() == [0, 50, 100, 150, 200]
    assert pre["f1"][0].item() == 0.0  # zero logits predict nothing
    assert pre["f1"][-1].item() > 0.6
    fine = train_binary(
        model, x, y, loss="soft_f1", steps=200, batch_size=256, lr=0.02,
        generator=g, eval_data=(xe, ye), eval_every=50,
    )
    # step 0 of the fine-tuning run is the pre-trained model
    assert fine["f1"][0].item() == pytest.approx(pre["f1"][-1].item())
    assert fine["f1"][-1].item() >= fine["f1"][0].item() - 0.03
    assert fine["f1"][-1].item() > 0.6
    # the recorded loss is minus the minibatch soft F1: in [-1, 0]
    assert ((fine["loss"] <= 0) & (fine["loss"] >= -1)).all()
    # the recorded F1 is hard F1 on the held-out data
    with torch.no_grad():
        assert fine["f1"][-1].item() == pytest.approx(hard_f1(model(xe).reshape(-1), ye).item())


def test_train_binary_history_layout_and_determinism():
    x, y = imbalanced_blobs(300, positive_rate=0.3, generator=torch.Generator().manual_seed(2))

    def run():
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
        hist = train_binary(
            model, x, y, loss="soft_f1", steps=23, batch_size=16, lr=0.01,
            generator=torch.Generator().manual_seed(3), eval_data=(x, y), eval_every=10,
        )
        return model, hist

    m1, h1 = run()
    m2, h2 = run()
    assert h1["loss"].shape == (23,)
    assert h1["eval_step"].tolist() == [0, 10, 20, 23]
    assert h1["f1"].shape == (4,)
    assert ((h1["f1"] >= 0) & (h1["f1"] <= 1)).all()
    for key in h1:
        assert torch.equal(h1[key], h2[key])
    for p1, p2 in zip(m1.parameters(), m2.parameters()):
        assert torch.equal(p1, p2)


def test_train_binary_accepts_flat_logits_model():
    class Flat(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(2, 1)

        def forward(self, x):
            return self.lin(x).squeeze(-1)

    x, y = imbalanced_blobs(100, positive_rate=0.5, generator=torch.Generator().manual_seed(4))
    hist = train_binary(Flat(), x, y, loss="cross_entropy", steps=5, batch_size=8, lr=0.1)
    assert hist["loss"].shape == (5,)
    assert torch.isfinite(hist["loss"]).all()


def test_train_binary_bad_arguments():
    x, y = imbalanced_blobs(20, generator=torch.Generator().manual_seed(0))
    model = _zero_linear()
    kw = dict(steps=2, batch_size=4, lr=0.1)
    with pytest.raises(ValueError, match=r"loss must be one of 'cross_entropy', 'soft_f1'; got 'mse'"):
        train_binary(model, x, y, loss="mse", **kw)
    with pytest.raises(ValueError, match=r"steps must be >= 1, got 0"):
        train_binary(model, x, y, loss="soft_f1", steps=0, batch_size=4, lr=0.1)
    with pytest.raises(ValueError, match=r"batch_size must be >= 1, got 0"):
        train_binary(model, x, y, loss="soft_f1", steps=2, batch_size=0, lr=0.1)
    with pytest.raises(ValueError, match=r"lr must be a finite number > 0"):
        train_binary(model, x, y, loss="soft_f1", steps=2, batch_size=4, lr=0.0)
    with pytest.raises(ValueError, match=r"eval_every must be >= 1"):
        train_binary(model, x, y, loss="soft_f1", eval_every=0, **kw)
    with pytest.raises(ValueError, match=r"y must have shape \(20,\) to match x, got \(19,\)"):
        train_binary(model, x, y[:-1], loss="soft_f1", **kw)
    with pytest.raises(TypeError, match=r"x must have a floating dtype"):
        train_binary(model, x.long(), y, loss="soft_f1", **kw)
    with pytest.raises(ValueError, match=r"x must have at least 2 dimension"):
        train_binary(model, x[:, 0], y, loss="soft_f1", **kw)
    # nothing was trained by the failed calls
    assert torch.equal(model.weight, torch.zeros_like(model.weight))


def test_train_binary_integer_labels_cross_entropy():
    x, y = imbalanced_blobs(40, positive_rate=0.5, generator=torch.Generator().manual_seed(0))
    try:
        hist = train_binary(_zero_linear(), x, y.long(), loss="cross_entropy", steps=3, batch_size=8, lr=0.1)
    except (TypeError, ValueError) as err:
        assert "y" in str(err)
    else:
        assert torch.isfinite(hist["loss"]).all()
