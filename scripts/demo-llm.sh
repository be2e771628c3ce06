#!/usr/bin/env bash
# `make demo-llm`: the LLM demo (SmolLM2-135M-Instruct, transformers on CPU; docs/llm.md). Docker when an engine
# answers, else native (`mlrepro run --target auto` says which it chose). Offline, Server and Interactive, each a
# performance and an accuracy run, quick settings (the smallest runs LoadGen's rules allow), the TTFT/TPOT bounds
# and targets calibrated on this machine (cached: a second demo on the same machine calibrates nothing), into its
# own tree, then `mlrepro check` of that tree.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
TREE="${MLREPRO_DEMO_LLM_TREE:-submission-llm}"
if "$PY" -c 'from mlrepro.image.engine import engine_available as a; raise SystemExit(0 if a() else 1)'; then
  # nothing can be pulled here: the local Debian base of the demo's platform (a no-op when it exists)
  .venv/bin/mlrepro base-images --platform linux/amd64
fi
# --force: a second `make demo-llm` replaces the first demo results in the tree (every run stays in `mlrepro runs`)
.venv/bin/mlrepro run -p x86-cpu-llm -f air-gapped -f quick --target auto \
  --scenario Offline,Server,Interactive --mode performance,accuracy \
  --into "$TREE" --submitter mlrepro-demo --force
# the tree checked by the rules of the newest round (exit 1 on any error; a short open-division run has warnings)
exec .venv/bin/mlrepro check "$TREE"
