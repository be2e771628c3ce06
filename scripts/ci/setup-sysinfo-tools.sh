#!/usr/bin/env bash
# Install the tools MLCommons' mlperf-sysinfo calls on a Linux host (lscpu, free, lsblk, jq, numactl,
# dmidecode, pstree, systemctl, perf), so that its capture -- run by the live comparison test
# tests/harness/test_sysinfo_parity.py and benchmarks/sysinfo_choice.py -- finds them instead of
# apt-get installing them itself. Debian 12. Idempotent (installs only what is missing). Needs root or sudo.
set -euo pipefail

PACKAGES=(util-linux procps jq numactl dmidecode psmisc systemd linux-perf)

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=(sudo -n); else
    echo "setup-sysinfo-tools: must run as root (or with sudo)" >&2; exit 1
  fi
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$pkg")
  fi
done
if ((${#missing[@]})); then
  echo "setup-sysinfo-tools: installing: ${missing[*]}"
  "${SUDO[@]}" apt-get update -qq
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "setup-sysinfo-tools: packages already installed: ${PACKAGES[*]}"
fi
