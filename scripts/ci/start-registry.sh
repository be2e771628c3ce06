#!/usr/bin/env bash
# Start a local docker-registry (Debian package "docker-registry") with htpasswd authentication.
#
#   MLREPRO_REGISTRY_DIR       state directory            (default /tmp/mlrepro-registry)
#   MLREPRO_REGISTRY_ADDR      listen address             (default 127.0.0.1:5001; loopback needs no TLS)
#   MLREPRO_REGISTRY_USER      user name                  (default mlrepro)
#   MLREPRO_REGISTRY_PASSWORD  password                   (default: generated once, kept in $DIR/password)
#
# Writes, under the state directory: password (0600), htpasswd, config.yml, registry.pid, registry.log,
# data/ (the blobs) and env -- a file to `source` that exports MLREPRO_REGISTRY, MLREPRO_REGISTRY_USER
# and MLREPRO_REGISTRY_PASSWORD_FILE (never the password itself); the tests' `registry` fixture uses it.
# Idempotent: if the registry already runs with the same user/password it is left alone.
set -euo pipefail

DIR=${MLREPRO_REGISTRY_DIR:-/tmp/mlrepro-registry}
ADDR=${MLREPRO_REGISTRY_ADDR:-127.0.0.1:5001}
USER_NAME=${MLREPRO_REGISTRY_USER:-mlrepro}
WAIT_S=${MLREPRO_REGISTRY_WAIT_S:-30}
HOST=${ADDR%:*}
PORT=${ADDR##*:}

log() { printf 'start-registry: %s\n' "$*"; }
die() { printf 'start-registry: %s\n' "$*" >&2; exit 1; }

for tool in docker-registry htpasswd; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool not found (apt-get install docker-registry apache2-utils; setup-engine.sh does)"
done

umask 077
mkdir -p "$DIR/data"
chmod 700 "$DIR"

# Password: env, else the one kept from an earlier start, else a new random one.
if [[ -n ${MLREPRO_REGISTRY_PASSWORD:-} ]]; then
  PASSWORD=$MLREPRO_REGISTRY_PASSWORD
elif [[ -s $DIR/password ]]; then
  PASSWORD=$(<"$DIR/password")
else
  PASSWORD=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
fi

# HTTP status of GET /v2/ (000 when nothing answers), without curl.
v2_status() {
  local line=""
  if { exec 3<>"/dev/tcp/$HOST/$PORT"; } 2>/dev/null; then
    printf 'GET /v2/ HTTP/1.0\r\nHost: %s\r\n\r\n' "$ADDR" >&3
    IFS= read -r -t 5 line <&3 || true
    exec 3<&- 3>&-
  fi
  if [[ $line =~ ^HTTP/[0-9.]+\ ([0-9]{3}) ]]; then printf '%s' "${BASH_REMATCH[1]}"; else printf '000'; fi
}

running_pid() {  # the pid from the pid file if that process is our docker-registry
  local pid
  [[ -s $DIR/registry.pid ]] || return 1
  pid=$(<"$DIR/registry.pid")
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "docker-registry serve $DIR/config.yml" || return 1
  printf '%s' "$pid"
}

same_credentials() {
  [[ -s $DIR/password && -s $DIR/user ]] && [[ $(<"$DIR/password") == "$PASSWORD" && $(<"$DIR/user") == "$USER_NAME" ]]
}

if pid=$(running_pid) && same_credentials && [[ $(v2_status) == 401 ]]; then
  log "already running at $ADDR (pid $pid)"
else
  if pid=$(running_pid); then
    log "restarting (pid $pid) with new settings"
    "$(dirname "$0")/stop-registry.sh" >/dev/null
  fi
  [[ $(v2_status) == 000 ]] || die "something else already answers on $ADDR"

  printf '%s' "$PASSWORD" >"$DIR/password"
  printf '%s' "$USER_NAME" >"$DIR/user"
  # -i: the password comes on stdin, never on a command line.
  printf '%s' "$PASSWORD" | htpasswd -niB "$USER_NAME" >"$DIR/htpasswd"
  cat >"$DIR/config.yml" <<YAML
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $DIR/data
  delete:
    enabled: true
http:
  addr: $ADDR
auth:
  htpasswd:
    realm: mlrepro-registry
    path: $DIR/htpasswd
YAML
  # setsid: the registry outlives this script and the CI step's process group.
  setsid docker-registry serve "$DIR/config.yml" >>"$DIR/registry.log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$DIR/registry.pid"
  status=000
  for ((i = 0; i < WAIT_S * 5; i++)); do
    kill -0 "$pid" 2>/dev/null || { tail -n 5 "$DIR/registry.log" >&2; die "docker-registry exited at start (log: $DIR/registry.log)"; }
    status=$(v2_status)
    [[ $status == 000 ]] || break
    sleep 0.2
  done
  [[ $status == 401 ]] || die "GET http://$ADDR/v2/ answered $status, expected 401 (log: $DIR/registry.log)"
  log "started at $ADDR (pid $pid), GET /v2/ -> 401 as expected"
fi

cat >"$DIR/env" <<ENV
export MLREPRO_REGISTRY=$ADDR
export MLREPRO_REGISTRY_USER=$USER_NAME
export MLREPRO_REGISTRY_PASSWORD_FILE=$DIR/password
ENV
log "user: $USER_NAME; password file: $DIR/password; log: $DIR/registry.log"
log "for the tests: source $DIR/env"
