# One entry point for every routine: the README, .ci/run and pre-commit call these.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The supported Pythons (pyproject's requires-python onwards): each runs the whole suite.
PYTHONS ?= 3.11 3.12 3.13
# What `make test`, and so CI (.ci/run), runs, in this order; a check CI should run is added
# here (and to .PHONY).
CHECKS  ?= venvs lint test-pythons test-deps smoke docs

.PHONY: venv venvs test test-quick test-pythons test-deps dist smoke lint format demo bench clean \
	browser plots docs

$(BIN)/relive: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $@

venv: $(BIN)/relive

lint: venv
	$(BIN)/ruff check src tests bench examples docs
	$(BIN)/ruff format --check src tests bench examples docs
	$(BIN)/mypy

# Everything CI checks: lint and types, the suite on every supported Python and at the
# lowest supported dependencies, then the built wheel installed alone and tried.
test: browser $(CHECKS)

# The suite once, on .venv's Python (python3) and the newest dependencies: while working.
test-quick: lint browser
	$(BIN)/python -m pytest -n 2 -p no:cacheprovider $(PYTEST_ARGS)

# Every virtualenv the checks below use, made at once (.ci/venvs): most of a fresh CI run.
venvs:
	.ci/venvs $(PYTHONS)

test-pythons: venv browser
	.ci/test-pythons $(PYTHONS)

# The suite at the lowest release of each supported dependency (.ci/lowest.txt), on the
# lowest supported Python: CI runs it, and so does whoever changes a range.
test-deps: browser
	.ci/test-lowest

# sdist and wheel in dist/, checked by twine (the sdist holds tests and examples too).
dist: venv
	rm -rf dist
	$(BIN)/python -m build --outdir dist .
	$(BIN)/twine check --strict dist/*

# The wheel from `make dist` in a clean virtualenv with nothing but its dependencies:
# import, `relive --version`, and `relive run` applying an edit.
smoke: dist
	.ci/smoke-wheel dist/relive-*.whl

# The live-reload browser test drives headless Chromium (Debian's package). Installed here
# where we can (root with apt, as in CI); elsewhere that one test skips and says why.
browser:
	@command -v chromium >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1 \
		|| { echo "installing chromium for the browser test"; \
		     (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1 \
		     || echo "could not install chromium: the browser test will skip"; }

format: venv
	$(BIN)/ruff format src tests bench examples docs
	$(BIN)/ruff check --fix src tests bench examples docs

# The demo needs relive alone (and watchdog): its own light environment, not the dev extras.
DEMO_VENV ?= .venv-demo

$(DEMO_VENV)/bin/relive: pyproject.toml
	$(PYTHON) -m venv $(DEMO_VENV)
	$(DEMO_VENV)/bin/python -m pip install -q -e .
	@touch $@

demo: $(DEMO_VENV)/bin/relive
	$(DEMO_VENV)/bin/python examples/demo/run_demo.py

bench: venv
	$(BIN)/python -m pip install -q -e '.[dev,bench]'
	$(BIN)/python bench/run_all.py

# The documentation site: mkdocs.yml, docs/, the API reference from the docstrings and the
# benchmark plots drawn from bench/results/*.json. --strict: a broken link or reference fails.
$(VENV)/.docs-extra: $(BIN)/relive pyproject.toml
	$(BIN)/python -m pip install -q -e '.[docs]'
	@touch $@

plots: $(VENV)/.docs-extra
	$(BIN)/python bench/plots.py --out docs/generated/bench
	$(BIN)/python docs/pipeline_diagram.py docs/generated/pipeline.svg

docs: plots
	NO_MKDOCS_2_WARNING=1 $(BIN)/python -m mkdocs build --strict --site-dir site

clean:
	rm -rf $(VENV) $(VENV)-* $(DEMO_VENV) build dist site docs/generated .mypy_cache .ruff_cache
