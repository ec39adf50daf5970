"""Peak memory of a piece of PyTorch work, from the profiler's allocation events (CPU or GPU)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable

from torch.profiler import ProfilerActivity, profile


def peak_bytes(work: Callable[[], object]) -> int:
    """The most bytes held at once by tensors allocated while ``work()`` runs (forward and backward alike).

    Read from the "[memory]" events of a ``torch.profiler`` trace: each carries
    the allocator's running total, so the peak is the largest total minus the
    total before the first allocation. Deterministic for a given computation,
    unlike a wall-clock time, and independent of what was allocated before.
    """
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        work()
    fd, path = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    try:
        prof.export_chrome_trace(path)
        with open(path) as f:
            events = json.load(f)["traceEvents"]
    finally:
        os.remove(path)
    memory = sorted((e for e in events if e.get("name") == "[memory]"), key=lambda e: e["ts"])
    if not memory:
        return 0
    before = memory[0]["args"]["Total Allocated"] - memory[0]["args"]["Bytes"]
    return max(e["args"]["Total Allocated"] for e in memory) - before
