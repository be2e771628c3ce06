#!/usr/bin/env bash
# `make demo`: the main job on the reference workload. Docker when an engine answers, else native
# (`mlrepro run --target auto` says which it chose).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
if "$PY" -c 'from mlrepro.image.engine import engine_available as a; raise SystemExit(0 if a() else 1)'; then
  # Nothing can be pulled here: make sure the local Debian base of the demo's platform exists (a no-op when it
  # does; the x86 demo needs no arm64 base).
  .venv/bin/mlrepro base-images --platform linux/amd64
fi
# --force: a second `make demo` replaces the first demo result in the tree (both runs stay in `mlrepro runs`)
.venv/bin/mlrepro run -p x86-cpu -f air-gapped -f quick --target auto \
  --scenario Offline --mode performance,accuracy --into submission --submitter mlrepro-demo --force
# the main job checks its own tree (the checker's rules of the newest round; exit 1 on any error)
exec .venv/bin/mlrepro check submission
