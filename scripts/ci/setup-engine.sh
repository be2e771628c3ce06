#!/usr/bin/env bash
# Prepare a Debian 12 machine for mlrepro's real-engine tests:
#   1. install the Debian packages (only those missing; a no-op when all are present),
#   2. start dockerd if no engine answers (log: /var/log/dockerd.log),
#   3. mount binfmt_misc and enable qemu-aarch64 so linux/arm64 containers run under emulation.
# Idempotent: run it as often as you like. Needs root (or passwordless sudo).
set -euo pipefail

PACKAGES=(docker.io debootstrap qemu-user-static binfmt-support docker-registry apache2-utils)
DOCKERD_LOG=${MLREPRO_DOCKERD_LOG:-/var/log/dockerd.log}
DOCKERD_WAIT_S=${MLREPRO_DOCKERD_WAIT_S:-60}

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=(sudo -n); else
    echo "setup-engine: must run as root (or with sudo)" >&2; exit 1
  fi
fi

log() { printf 'setup-engine: %s\n' "$*"; }

# 1. packages ---------------------------------------------------------------
missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$pkg")
  fi
done
if ((${#missing[@]})); then
  log "installing: ${missing[*]}"
  "${SUDO[@]}" apt-get update -qq
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  log "installed: ${missing[*]}"
else
  log "packages already installed: ${PACKAGES[*]}"
fi

# 2. docker engine ------------------------------------------------------------
if "${SUDO[@]}" docker info >/dev/null 2>&1; then
  log "docker engine already running"
else
  log "starting dockerd (log: $DOCKERD_LOG)"
  # setsid: dockerd outlives this script and the CI step's process group.
  "${SUDO[@]}" setsid sh -c "exec dockerd >>'$DOCKERD_LOG' 2>&1" </dev/null &
  ready=0
  for ((i = 0; i < DOCKERD_WAIT_S; i++)); do
    if "${SUDO[@]}" docker info >/dev/null 2>&1; then ready=1; break; fi
    sleep 1
  done
  if ((!ready)); then
    log "dockerd did not answer within ${DOCKERD_WAIT_S}s; last lines of $DOCKERD_LOG:" >&2
    "${SUDO[@]}" tail -n 20 "$DOCKERD_LOG" >&2 || true
    exit 1
  fi
  log "docker engine ready after ~${i}s"
fi
log "engine: $("${SUDO[@]}" docker version --format 'server {{.Server.Version}} ({{.Server.Os}}/{{.Server.Arch}}), API {{.Server.APIVersion}}' 2>/dev/null || echo '?')"

# 3. arm64 emulation ----------------------------------------------------------
BINFMT=/proc/sys/fs/binfmt_misc
if ! mountpoint -q "$BINFMT"; then
  log "mounting binfmt_misc on $BINFMT"
  "${SUDO[@]}" mount -t binfmt_misc binfmt_misc "$BINFMT"
fi
"${SUDO[@]}" update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
if [[ -r $BINFMT/qemu-aarch64 ]] && head -n1 "$BINFMT/qemu-aarch64" | grep -q '^enabled'; then
  flags=$(sed -n 's/^flags: *//p' "$BINFMT/qemu-aarch64")
  log "qemu-aarch64 binfmt enabled (flags: ${flags:-none})"
  if [[ $flags != *F* ]]; then
    log "warning: qemu-aarch64 lacks the F (fix-binary) flag; arm64 containers may not find the interpreter" >&2
  fi
else
  log "qemu-aarch64 binfmt could not be enabled (is qemu-user-static installed?)" >&2
  exit 1
fi
# The end-to-end check (an arm64 container printing aarch64) runs in make-base-images.sh,
# once an arm64 image exists.
