# The two commands a newcomer needs: `make book` and `make test`. Both set up
# everything themselves (.venv, node_modules, and for the browser test Debian's
# chromium when run as root).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
JB := $(BIN)/jupyter-book
CHAPTERS := $(wildcard chapters/*.ipynb)
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: book test unit nbval browser execute lab clean help

help:
	@echo "make book     build the HTML book (offline-ready) and print its index page"
	@echo "make test     unit tests, nbval on every chapter, and the headless-browser test"
	@echo "make execute  re-run the chapters in place (stores their outputs; NB=path for one)"
	@echo "make lab      JupyterLab on chapters/ with the project's kernel"

# torch first and pinned: anything that pulls an unpinned torch before it
# downloads gigabytes of CUDA wheels.
$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q $$(grep '^torch==' requirements.txt)
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

book: $(VENV)/.installed node_modules/.installed
	$(JB) build . --warningiserror --nitpick --keep-going --quiet
	@echo "Book index: $(CURDIR)/_build/html/index.html"

execute: $(VENV)/.installed
	$(BIN)/python tools/execute_notebooks.py $(NB)

unit: $(VENV)/.installed
	$(BIN)/python -m pytest tests -m "not browser" -q

nbval: $(VENV)/.installed
	KEXUE_STATIC=1 $(BIN)/python -m pytest --nbval --nbval-current-env \
		--nbval-sanitize-with tests/nbval_sanitize.cfg -p no:cacheprovider -q $(CHAPTERS)

chromium:
	@command -v chromium >/dev/null || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -q && apt-get install -y -q chromium; \
		else echo "The browser test needs Debian's chromium: sudo apt-get install chromium"; exit 1; fi; }

browser: book chromium
	$(BIN)/python -m pytest tests -m browser -q

test: unit nbval browser

lab: $(VENV)/.installed
	$(BIN)/python -m ipykernel install --sys-prefix --name kexue --display-name "Python (kexue_lib)"
	cd chapters && ../$(BIN)/jupyter lab

clean:
	rm -rf _build
