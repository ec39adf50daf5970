"""Measure the book against its budget and print one table.

Per chapter: execution time on this machine (a fresh kernel, outputs not
written back), stored notebook size, built HTML page size, figures and slider
figures. For the whole book: install time (a fresh virtual environment from
requirements.txt), build time (a full `jupyter-book build`), and `make test`
time (measured here, or passed in with --test-seconds by a caller that just
ran it). Exits 1 when anything is over budget.

Usage: python tools/budget.py [--test-seconds N] [--skip-install]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from execute_notebooks import execute  # noqa: E402
from toc import notebooks  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
HTML = ROOT / "_build" / "html"
LIMITS = {"execution_s": 30.0, "page_mb": 3.0, "make_test_s": 15 * 60.0}
MB = 1024 * 1024


def figures(notebook: Path) -> tuple[int, int]:
    """(figures, figures with a slider) stored in a notebook."""
    nb = json.loads(notebook.read_text())
    n = sliders = 0
    for cell in nb["cells"]:
        for output in cell.get("outputs", []):
            fig = output.get("data", {}).get("application/vnd.plotly.v1+json")
            if fig is not None:
                n += 1
                sliders += bool(fig.get("layout", {}).get("sliders"))
    return n, sliders


def timed(cmd: list[str], **kwargs) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, **kwargs)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--test-seconds", type=float, default=None)
    parser.add_argument("--skip-install", action="store_true")
    args = parser.parse_args()

    install = None
    if not args.skip_install:
        with tempfile.TemporaryDirectory() as tmp:
            venv = Path(tmp) / "venv"
            install = timed([sys.executable, "-m", "venv", str(venv)])
            install += timed([str(venv / "bin" / "pip"), "install", "-q", "-r", str(ROOT / "requirements.txt")])
    build = timed([str(ROOT / ".venv" / "bin" / "jupyter-book"), "build", str(ROOT), "--all",
                   "--warningiserror", "--nitpick", "--keep-going", "--quiet"])
    test = args.test_seconds
    if test is None:
        test = timed(["make", "-C", str(ROOT), "test"])

    over: list[str] = []
    rows = []
    for notebook in notebooks():
        page = str(notebook.relative_to(ROOT).with_suffix(""))
        seconds = execute(notebook, write=False)
        html = HTML / f"{page}.html"
        page_mb = html.stat().st_size / MB
        n, s = figures(notebook)
        rows.append((Path(page).name, seconds, notebook.stat().st_size / MB, page_mb, n, s))
        if seconds > LIMITS["execution_s"]:
            over.append(f"{page}: execution {seconds:.1f} s > {LIMITS['execution_s']:.0f} s")
        if page_mb > LIMITS["page_mb"]:
            over.append(f"{page}: page {page_mb:.2f} MB > {LIMITS['page_mb']:.0f} MB")
    if test > LIMITS["make_test_s"]:
        over.append(f"make test {test:.0f} s > {LIMITS['make_test_s']:.0f} s")

    shared = [HTML / "_static" / "offline" / "plotly.min.js", HTML / "_static" / "offline" / "mathjax" / "tex-svg.js"]
    print(f"{'chapter':<28} {'execution s':>11} {'notebook MB':>11} {'page MB':>8} {'figures':>7} {'sliders':>7}")
    for name, seconds, nb_mb, page_mb, n, s in rows:
        print(f"{name:<28} {seconds:>11.1f} {nb_mb:>11.2f} {page_mb:>8.2f} {n:>7d} {s:>7d}")
    print(f"limits: execution <= {LIMITS['execution_s']:.0f} s, page <= {LIMITS['page_mb']:.0f} MB per chapter")
    print("scripts every page loads once (cached across pages): "
          + ", ".join(f"{p.name} {p.stat().st_size / MB:.2f} MB" for p in shared if p.exists()))
    print(f"install (fresh venv, requirements.txt): {'skipped' if install is None else f'{install:.0f} s'}")
    print(f"build (jupyter-book build --all): {build:.0f} s")
    print(f"make test: {test:.0f} s (limit {LIMITS['make_test_s']:.0f} s)")
    for line in over:
        print(f"OVER BUDGET: {line}")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
