#!/usr/bin/env bash
# Create the local Debian bookworm base images (mlrepro/debian:bookworm-amd64 and -arm64) in the engine,
# then run `uname -m` in each (the arm64 run proves qemu emulation works).
# Run after setup-engine.sh, as root. Rootfs layers are cached in $MLREPRO_BASE_CACHE
# (default /var/cache/mlrepro/base-images) between runs on the same machine; nothing depends on the cache.
#   first run: ~45 s amd64 + a few minutes arm64 (debootstrap under qemu); cached: seconds; images present: ~1 s.
set -euo pipefail

cd "$(dirname "$0")/../.."
CACHE=${MLREPRO_BASE_CACHE:-/var/cache/mlrepro/base-images}
if [[ -n ${PYTHON:-} ]]; then :
elif [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python
else PYTHON=python3
fi

exec "$PYTHON" -m mlrepro.image.base_images --all --verify --cache-dir "$CACHE" "$@"
