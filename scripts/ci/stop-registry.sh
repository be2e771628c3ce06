#!/usr/bin/env bash
# Stop the registry started by start-registry.sh. Keeps its data unless --purge is given.
set -euo pipefail

DIR=${MLREPRO_REGISTRY_DIR:-/tmp/mlrepro-registry}
log() { printf 'stop-registry: %s\n' "$*"; }

purge=0
[[ ${1:-} == --purge ]] && purge=1

if [[ -s $DIR/registry.pid ]]; then
  pid=$(<"$DIR/registry.pid")
  # Only signal the pid if it is still our registry (pids get reused).
  if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "docker-registry serve $DIR/config.yml"; then
    kill -TERM "$pid"
    for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; log "killed pid $pid (did not stop on TERM)"; else log "stopped pid $pid"; fi
  else
    log "not running (stale pid file)"
  fi
  rm -f "$DIR/registry.pid"
else
  log "not running (no pid file in $DIR)"
fi

if ((purge)); then
  rm -rf "$DIR"
  log "removed $DIR"
fi
