#!/usr/bin/env bash
# Install MLCommons' mlperf-sysinfo (PyPI, Apache-2.0) into its own venv, ./.tools/mlperf-sysinfo, with
# ./.tools/bin/mlperf-sysinfo on PATH (used by `make install`, the system-description tests and the
# benchmark benchmarks/sysinfo_choice.py). Its own venv: it brings the mlc-scripts automation framework,
# which has no place in mlrepro's environment. Hash-pinned (scripts/locks/mlperf-sysinfo.txt).
# Idempotent: does nothing when the pinned version answers `mlperf-sysinfo --version`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.tools/mlperf-sysinfo"
LINK="$ROOT/.tools/bin/mlperf-sysinfo"
LOCK="$ROOT/scripts/locks/mlperf-sysinfo.txt"
VERSION="$(sed -n 's/^mlperf-sysinfo==\([^ ]*\).*/\1/p' "$LOCK")"
PY="${PYTHON:-python3}"

if [[ -x "$LINK" ]] && [[ "$("$LINK" --version 2>/dev/null)" == *"$VERSION"* ]]; then
  echo "mlperf-sysinfo already installed: $LINK ($VERSION)"
  exit 0
fi
rm -rf "$VENV"
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --require-hashes --only-binary=:all: -r "$LOCK"
mkdir -p "$(dirname "$LINK")"
ln -sfn ../mlperf-sysinfo/bin/mlperf-sysinfo "$LINK"
echo "installed mlperf-sysinfo $VERSION: $LINK"
