# facesketch: `make run` opens the app, `make test` runs the tests.
# Both create .venv and install everything on first use; later runs skip the
# install until pyproject.toml changes (the stamp file is keyed on its content).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test lint format setup wheel-check clean-venv

# Without a display the app renders its demo instead, into out/ (git-ignored).
DEMO_OUT := out/facesketch-demo.png

run: $(STAMP)
	$(BIN)/facesketch app --demo-out $(DEMO_OUT)

# One pytest process for everything, the long drawing session included
# (tests/conftest.py makes each test wait for its worker threads and delete its windows).
test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check facesketch train tests
	$(BIN)/ruff format --check facesketch train tests

format: $(STAMP)
	$(BIN)/ruff format facesketch train tests

setup: $(STAMP)

# Build the wheel, install it into a fresh venv with only torch, run every command.
wheel-check:
	PYTHON=$(PYTHON) .ci/wheel-check

# torch first and pinned, so pip takes the CPU build instead of a CUDA build
# (see README: why the CPU build). Editable install: resources/ is mapped as the
# package facesketch_resources, exactly as in the wheel.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

clean-venv:
	rm -rf $(VENV)
