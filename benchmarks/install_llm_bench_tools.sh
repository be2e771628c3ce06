#!/usr/bin/env bash
# The peer clients benchmarks/llm_client.py compares against, each in its own venv under .bench-venv/ (they
# pin different transformers releases, and neither belongs in mlrepro's environment):
#   .bench-venv/aiperf           NVIDIA AIPerf (PyPI aiperf)
#   .bench-venv/inference-perf   kubernetes-sigs inference-perf (PyPI inference-perf; needs Python >= 3.12)
# PYTHON312: a Python >= 3.12 (default: the first of python3.13, python3.12, pyenv's 3.12/3.13 that runs). Idempotent.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
AIPERF_VERSION="${AIPERF_VERSION:-0.13.0}"
INFERENCE_PERF_VERSION="${INFERENCE_PERF_VERSION:-0.7.0}"
PY=""
for cand in ${PYTHON312:-} python3.13 python3.12 "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[23]*/bin/python; do
  if "$cand" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then PY="$cand"; break; fi
done
if [[ -z "$PY" ]]; then
  echo "no Python >= 3.12 found (inference-perf needs it): set PYTHON312" >&2
  exit 1
fi
install() {  # venv-name package==version
  local venv="$ROOT/.bench-venv/$1"
  if [[ -x "$venv/bin/python" ]] && "$venv/bin/python" -m pip show "${2%%==*}" 2>/dev/null | grep -q "^Version: ${2##*==}$"; then
    echo "$2 already in $venv"; return
  fi
  rm -rf "$venv"
  "$PY" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "$2"
  echo "installed $2 in $venv"
}
install aiperf "aiperf==$AIPERF_VERSION"
install inference-perf "inference-perf==$INFERENCE_PERF_VERSION"
