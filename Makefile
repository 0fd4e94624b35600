# xorlab: `make demo` sets everything up and runs the main job; `make test` runs the tests.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint format bench docs-figures schema lock clean

install: $(STAMP)

# constraints.txt pins every package's version (make lock refreshes it), so two machines set up
# a week apart run the same numpy and BLAS and byte-identical reruns hold across them.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]' || { \
	  echo "warning: constraints.txt's pins do not install on this Python; installing unpinned"; \
	  $(BIN)/python -m pip install --quiet -e '.[dev]'; }
	$(BIN)/python -m compileall -q xorlab  # byte code now, even where PYTHONDONTWRITEBYTECODE is set
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/xorlab sweep configs/sweeps/seed_study.yaml --report

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy xorlab

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python benchmarks/bench.py
	$(BIN)/python benchmarks/search_bench.py

schema: $(STAMP)  # the JSON Schemas editors read (configs name them on their first line)
	$(BIN)/xorlab schema config > configs/schema/config.schema.json
	$(BIN)/xorlab schema sweep > configs/schema/sweep.schema.json

docs-figures: $(STAMP)
	$(BIN)/python docs/figures.py

lock:  # newest versions that pyproject.toml allows, resolved in a fresh venv, written as pins
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --upgrade pip
	.lock-venv/bin/python -m pip install --quiet '.[dev]'
	( echo "# pins for make install; refresh with make lock"; \
	  .lock-venv/bin/python -m pip freeze --exclude-editable | grep -v '^xorlab' ) > constraints.txt
	rm -rf .lock-venv build *.egg-info

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache .mypy_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
