"""Re-execute chapter notebooks in place, as the static book stores them.

Sets ``KEXUE_STATIC=1`` (live ipywidgets controls print a one-line pointer
instead of storing dead widgets), runs each notebook top to bottom in a fresh
kernel from this environment, writes the outputs back without timing
metadata (so a re-run only changes what really changed), and prints each
notebook's execution time.

Usage: python tools/execute_notebooks.py [NOTEBOOK ...]   (default: chapters/*.ipynb)
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent


def execute(path: Path, write: bool = True) -> float:
    """Run one notebook top to bottom; store its outputs unless ``write=False``. Returns seconds."""
    os.environ["KEXUE_STATIC"] = "1"
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        record_timing=False,
        resources={"metadata": {"path": str(path.parent)}},
    )
    start = time.perf_counter()
    client.execute()
    elapsed = time.perf_counter() - start
    nb.metadata.pop("widgets", None)
    if write:
        nbformat.write(nb, path)
    return elapsed


def main(argv: list[str]) -> int:
    paths = [Path(a) for a in argv] or sorted((ROOT / "chapters").glob("*.ipynb"))
    for path in paths:
        print(f"{path.name}: executed in {execute(path):.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
