"""The book's pages in table-of-contents order, read from _toc.yml."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def pages(root: Path = ROOT) -> list[str]:
    """Every page (path without suffix), the root first, sections after their chapter."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())

    def walk(entries: list[dict]) -> list[str]:
        out: list[str] = []
        for entry in entries:
            out.append(entry["file"])
            out += walk(entry.get("sections", []))
        return out

    return [toc["root"]] + [p for part in toc.get("parts", []) for p in walk(part["chapters"])]


def notebooks(root: Path = ROOT) -> list[Path]:
    """The pages that are notebooks, as paths."""
    return [root / f"{p}.ipynb" for p in pages(root) if (root / f"{p}.ipynb").exists()]
