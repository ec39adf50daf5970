"""benchmarks.memory.peak_bytes, the measure behind the memory columns of the benchmark and the memory tests."""

import torch

from benchmarks.memory import peak_bytes


def test_counts_what_is_held_at_once():
    def overlapping():
        a = torch.empty(1000)  # 4000 bytes
        b = torch.empty(500, dtype=torch.float64)  # 4000 bytes, while a is alive
        del a, b

    def sequential():
        for _ in range(5):
            torch.empty(1000)  # freed before the next

    assert peak_bytes(overlapping) == 8000
    assert peak_bytes(sequential) == 4000


def test_ignores_what_was_allocated_before():
    held = torch.empty(10**6)
    assert peak_bytes(lambda: torch.empty(1000)) == 4000
    del held


def test_sees_the_backward_pass():
    x = torch.randn(100, requires_grad=True)
    assert peak_bytes(lambda: (x.exp() * 2).sum().backward()) >= 3 * 400  # exp saved, product, and x.grad
