"""Sphinx extension: the book serves its JavaScript from its own files, never from a CDN.

- plotly.js comes from the installed plotly wheel (``plotly/package_data``), so
  the page's plotly.js is the version the notebooks' figures were made with;
  every page loads it once, and each figure's HTML only calls ``Plotly.newPlot``.
- MathJax 3 (SVG output, no web fonts) comes from ``node_modules/mathjax``,
  installed by ``npm ci`` from the pinned ``package.json``.

Files are copied into ``_static/offline/`` of the output; they are not kept in
the source tree (which would also make jupyter-book inject them everywhere).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import plotly
from sphinx.application import Sphinx
from sphinx.errors import ExtensionError

VENDOR = "offline"
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
MATHJAX_PARTS = ("tex-svg.js", "input", "ui", "a11y", "sre")


def _mathjax_dir(app: Sphinx) -> Path:
    return Path(app.srcdir) / "node_modules" / "mathjax" / "es5"


def _configure(app: Sphinx, config) -> None:
    config.mathjax_path = f"{VENDOR}/mathjax/tex-svg.js"


def _check_sources(app: Sphinx) -> None:
    if not PLOTLY_JS.is_file():
        raise ExtensionError(f"plotly.js not found at {PLOTLY_JS}; reinstall plotly")
    if not (_mathjax_dir(app) / "tex-svg.js").is_file():
        raise ExtensionError(
            f"MathJax not found under {_mathjax_dir(app)}; run `npm ci` in the book's root "
            "(`make book` does it)"
        )
    app.add_js_file(f"{VENDOR}/plotly.min.js")


def _copy_assets(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    target = Path(app.outdir) / "_static" / VENDOR
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(PLOTLY_JS, target / "plotly.min.js")
    for part in MATHJAX_PARTS:
        source = _mathjax_dir(app) / part
        destination = target / "mathjax" / part
        if source.is_dir():
            shutil.copytree(source, destination, dirs_exist_ok=True)
        else:
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)


def setup(app: Sphinx) -> dict:
    app.connect("config-inited", _configure)
    app.connect("builder-inited", _check_sources)
    app.connect("build-finished", _copy_assets)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
