"""With a kernel and no KEXUE_STATIC, each chapter's `live(...)` cell shows real ipywidgets.

The static book stores a one-line pointer instead (nbval checks that); this is
the other half: a person running the notebook in Jupyter gets working controls.
Each chapter runs in a fresh kernel up to its first `live(` cell.
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tools.toc import notebooks

ROOT = Path(__file__).resolve().parent.parent
WIDGET = "application/vnd.jupyter.widget-view+json"


def _chapters() -> list[Path]:
    return [f for f in notebooks() if "live(" in f.read_text()]


@pytest.mark.parametrize("path", _chapters(), ids=lambda p: p.stem)
def test_live_cell_shows_widgets_with_a_kernel(path, monkeypatch):
    monkeypatch.delenv("KEXUE_STATIC", raising=False)
    nb = nbformat.read(path, as_version=4)
    first_live = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "live(" in c.source)
    nb.cells = nb.cells[: first_live + 1]
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    outputs = nb.cells[first_live].outputs
    assert any(WIDGET in o.get("data", {}) for o in outputs), outputs
    assert not any("run this notebook in Jupyter" in o.get("text", "") for o in outputs)
    assert "KEXUE_STATIC" not in os.environ
