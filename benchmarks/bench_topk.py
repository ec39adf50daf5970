"""Forward+backward time of every soft Top-k method against torch.topk (chapter 4).

Usage: python benchmarks/bench_topk.py [--repeats R] [--quick] [--out PATH]

float32, 2 threads, batch 256, n in {128, 1024, 8192}, k in {1, 8, 64}. Each
case is timed as forward plus backward of a random linear function of the
output. All cases of one (n, k) cell are timed in the same process, in
interleaved rounds (baseline, method, baseline, method, ...), and the table
reports the median over rounds of each method's time divided by the time of
the ``torch.topk`` run just before it, so that load from other processes on
the machine moves the ratios less than the raw times (which are also given,
as medians). Each case's peak memory (forward and backward, from the
profiler's allocation events, :func:`benchmarks.memory.peak_bytes`) is given as a
multiple of the input's size; it includes the output and the input's gradient.
Peers (``entmax``, ``torchsort``) are skipped with a printed note when not
installed. Writes ``benchmarks/results/topk.json``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.memory import peak_bytes  # noqa: E402
from kexue_lib import topk as T  # noqa: E402

BATCH = 256
NS = (128, 1024, 8192)
KS = (1, 8, 64)
THREADS = 2
TARGETS = {  # method -> (n, k, largest allowed multiple of torch.topk)
    "laplace": (8192, 8, 6.0),
    "exp": (8192, 8, 6.0),
    "sigmoid": (8192, 8, 8.0),
    "grad": (1024, 8, 100.0),
}


def _peers() -> dict[str, Callable[[torch.Tensor, int], torch.Tensor]]:
    peers: dict[str, Callable[[torch.Tensor, int], torch.Tensor]] = {}
    try:
        import entmax

        peers["entmax.budget_bisect"] = lambda x, k: entmax.budget_bisect(x, budget=k, n_iter=24)
    except ImportError:
        print("note: entmax is not installed; skipping the entmax.budget_bisect peer")
    try:
        import torchsort

        def soft_rank_mask(x: torch.Tensor, k: int) -> torch.Tensor:
            ranks = torchsort.soft_rank(x, regularization_strength=1.0)  # 1 = smallest, n = largest
            return (ranks - (x.shape[-1] - k)).clamp(0.0, 1.0)

        peers["torchsort soft-rank mask"] = soft_rank_mask
    except ImportError:
        print("note: torchsort is not installed; skipping the torchsort peer")
    return peers


def cases(n: int, k: int) -> dict[str, Callable[[torch.Tensor, int], torch.Tensor]]:
    """Name -> function of (x, k) returning a differentiable tensor."""
    out: dict[str, Callable[[torch.Tensor, int], torch.Tensor]] = {
        "torch.topk (hard)": lambda x, k: torch.topk(x, k).values,
        "torch.sort (full)": lambda x, k: torch.sort(x, descending=True).values,
    }
    for method in ("laplace", "exp", "sigmoid", "grad", "iterative"):
        if method == "iterative" and n * k > 1024 * 8:
            continue  # k sequential softmax rounds
        out[method] = lambda x, k, m=method: T.soft_topk(x, k, method=m)
    if n * k <= 1024 * 8:
        out["grad, post's recursion (unstable)"] = lambda x, k: T.grad_topk_recursive(x, k)
    out.update(_PEERS)
    return out


def _time_once(fn: Callable[[torch.Tensor, int], torch.Tensor], x: torch.Tensor, k: int, seed: torch.Tensor) -> float:
    x = x.detach().requires_grad_()
    start = time.perf_counter()
    y = fn(x, k)
    y.backward(seed[..., : y.shape[-1]])
    return time.perf_counter() - start


def run_cell(n: int, k: int, repeats: int) -> dict[str, dict[str, float]]:
    gen = torch.Generator().manual_seed(n * 100 + k)
    x = torch.randn(BATCH, n, generator=gen)
    seed = torch.randn(BATCH, n, generator=gen)
    fns = cases(n, k)
    times: dict[str, list[float]] = {name: [] for name in fns}
    ratios: dict[str, list[float]] = {name: [] for name in fns}
    base = "torch.topk (hard)"
    for name, fn in fns.items():  # warm-up (and a finiteness check)
        with torch.no_grad():
            y = fn(x, k)
        if not bool(torch.isfinite(y).all()):
            print(f"note: {name} returned non-finite values at n={n}, k={k}")
        _time_once(fn, x, k, seed)
    for _ in range(repeats):
        for name, fn in fns.items():
            if name == base:
                continue
            before = _time_once(fns[base], x, k, seed)
            t = _time_once(fn, x, k, seed)
            times[base].append(before)
            times[name].append(t)
            ratios[name].append(t / before)  # paired with the baseline run just before it
    ratios[base] = [1.0]
    size = x.numel() * x.element_size()
    return {
        name: {
            "median_ms": 1e3 * statistics.median(times[name]),
            "ratio": statistics.median(ratios[name]),
            "peak_memory": peak_bytes(lambda fn=fns[name]: _time_once(fn, x, k, seed)) / size,
        }
        for name in fns
    }


def machine() -> dict[str, str]:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "logical_cpus": str(torch.multiprocessing.cpu_count()),
        "threads": str(torch.get_num_threads()),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def peer_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("entmax", "torchsort"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--quick", action="store_true", help="only n = 1024, 8192 with k = 8")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "topk.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(THREADS)
    cells = [(n, 8) for n in (1024, 8192)] if args.quick else [(n, k) for n in NS for k in KS]
    results = []
    for n, k in cells:
        row = run_cell(n, k, args.repeats)
        results.append({"n": n, "k": k, "times": row})
        print(f"\nn = {n}, k = {k} (batch {BATCH}, float32, forward+backward, median of {args.repeats})")
        for name, r in row.items():
            print(f"  {name:36s} {r['median_ms']:9.2f} ms  {r['ratio']:8.1f}x torch.topk"
                  f"  peak memory {r['peak_memory']:6.1f}x the input")
    verdicts = []
    for method, (n, k, limit) in TARGETS.items():
        cell = next((c for c in results if c["n"] == n and c["k"] == k), None)
        if cell is None or method not in cell["times"]:
            continue
        ratio = cell["times"][method]["ratio"]
        verdicts.append({"method": method, "n": n, "k": k, "target": limit, "ratio": ratio, "met": ratio <= limit})
        print(f"target {method:8s} n={n} k={k}: {ratio:.1f}x (target <= {limit:g}x) {'met' if ratio <= limit else 'MISSED'}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "machine": machine(),
        "peers": peer_versions(),
        "setup": {"batch": BATCH, "dtype": "float32", "threads": THREADS, "repeats": args.repeats},
        "results": results,
        "targets": verdicts,
    }
    args.out.write_text(json.dumps(payload, indent=1) + "\n")
    print(f"\nwrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    return 0


_PEERS = _peers()

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
