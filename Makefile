# The two commands a newcomer needs: `make book` and `make test`. Both set up
# everything themselves (.venv, node_modules, and for the browser test Debian's
# chromium when run as root).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
JB := $(BIN)/jupyter-book
CHAPTERS := $(wildcard chapters/*.ipynb)
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: book test unit nbval browser execute lab clean help binder-check budget chromium bench

help:
	@echo "make book     build the HTML book (offline-ready) and print its index page"
	@echo "make test     unit tests, nbval on every chapter, and the headless-browser test"
	@echo "make execute  re-run the chapters in place (stores their outputs; NB=path for one)"
	@echo "make lab      JupyterLab on chapters/ with the project's kernel"
	@echo "make binder-check  install from binder/ into a fresh venv as repo2docker would; nbval there"
	@echo "make budget   per-chapter execution time and page weight, install/build/test times"
	@echo "make bench    soft_topk benchmark against torch.topk and peers; refreshes the Performance page"

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
	cd chapters && ../$(BIN)/jupyter lab $$([ "$$(id -u)" = 0 ] && echo --allow-root)

# Binder cannot be reached from here: build what repo2docker would build, from
# binder/ alone, in a fresh venv. First as a reader who only ran
# `pip install -r requirements.txt` (the notebooks find kexue_lib through
# chapters/kexue_lib), then after binder/postBuild. PIP_RETRIES=0: PyTorch's
# CPU index is unreachable here, the same wheel comes from the local mirror.
BINDER_VENV := _build/binder-venv
binder-check:
	rm -rf $(BINDER_VENV)
	$(PYTHON) -m venv $(BINDER_VENV)
	PIP_RETRIES=0 $(BINDER_VENV)/bin/pip install -q -r binder/requirements.txt
	cd /tmp && ! $(CURDIR)/$(BINDER_VENV)/bin/python -c "import kexue_lib" 2>/dev/null
	KEXUE_STATIC=1 $(BINDER_VENV)/bin/python -m pytest --nbval --nbval-current-env \
		--nbval-sanitize-with tests/nbval_sanitize.cfg -p no:cacheprovider -q $(CHAPTERS)
	PATH=$(CURDIR)/$(BINDER_VENV)/bin:$$PATH bash binder/postBuild
	cd /tmp && $(CURDIR)/$(BINDER_VENV)/bin/python -c "import kexue_lib, torch; assert '+cpu' in torch.__version__; print('kexue_lib', kexue_lib.__version__, 'torch', torch.__version__)"
	$(BINDER_VENV)/bin/jupyter kernelspec list | grep -q kexue
	@echo "binder-check: OK"

budget: $(VENV)/.installed node_modules/.installed
	$(BIN)/python tools/budget.py $(BUDGET_ARGS)

# The peers are optional: entmax is pure Python; torchsort builds from source,
# with a PATH that hides this machine's nvcc (it points at a missing CUDA).
NO_NVCC_PATH = $(shell echo "$$PATH" | tr ':' '\n' | grep -v cuda | grep -v '^/usr/local/bin$$' | paste -sd:)
bench: $(VENV)/.installed
	$(BIN)/pip install -q --no-deps entmax==1.3
	PATH="$(NO_NVCC_PATH)" $(CURDIR)/$(BIN)/pip install -q --no-deps --no-build-isolation --no-binary torchsort torchsort==0.1.10
	$(BIN)/python benchmarks/bench_topk.py
	$(BIN)/python tools/execute_notebooks.py chapters/04b_topk_performance.ipynb

clean:
	rm -rf _build
