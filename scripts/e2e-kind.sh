#!/usr/bin/env bash
# The cluster path end to end on a real kind cluster (CPU profile): what tests/k8s checks against the API stand-in,
# here against a real API server, scheduler, Job controller and kubelet.
#
#   scripts/e2e-kind.sh                 # creates the kind cluster "mlrepro-e2e", runs everything, deletes it
#   KEEP=1 scripts/e2e-kind.sh          # keep the cluster (and reuse it next time)
#
# Needs: docker, kind (https://kind.sigs.k8s.io), kubectl, helm (make install puts one in .tools/bin), and the
# mlrepro venv (make install). No registry: the image is side-loaded into the kind node (`kind load`), and the
# Job pulls it IfNotPresent. The launcher runs as the ServiceAccount of manifests/rbac.yaml (a token in a
# kubeconfig of its own), so the Role's rules are checked by a real API server too.
#
# Steps: build the x86-cpu image -> kind load -> RBAC -> `mlrepro launch --target k8s` (Offline, performance +
# accuracy) -> `mlrepro runs`, `mlrepro logs` -> `mlrepro collect` through the helper pod -> `mlrepro check` ->
# a sweep with --parallel -> `helm install` of `mlrepro generate`'s values, followed and collected by run id ->
# Ctrl-C of a running launch deletes its Job.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CLUSTER=${CLUSTER:-mlrepro-e2e}
NS=mlrepro
WORK=$(mktemp -d)
export PATH="$ROOT/.venv/bin:$ROOT/.tools/bin:$PATH"
export MLREPRO_STATE_DIR="$WORK/state"

step() { printf '\n=== %s\n' "$*"; }
need() { command -v "$1" >/dev/null || { echo "e2e-kind: $1 not found ($2)" >&2; exit 2; }; }
need docker "https://docs.docker.com/engine/install/"
need kind "https://kind.sigs.k8s.io/docs/user/quick-start/#installation"
need kubectl "https://kubernetes.io/docs/tasks/tools/"
need helm "make install"
need mlrepro "make install"

cleanup() {
  if [[ "${KEEP:-0}" != 1 ]]; then kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

step "kind cluster $CLUSTER"
kind get clusters 2>/dev/null | grep -qx "$CLUSTER" || kind create cluster --name "$CLUSTER" --wait 120s
ADMIN="$WORK/admin.kubeconfig"
kind get kubeconfig --name "$CLUSTER" > "$ADMIN"
kubectl --kubeconfig "$ADMIN" version

step "image: build (a no-op when up to date) and side-load into the node"
IMAGE=$(mlrepro build -p x86-cpu --output json | python3 -c 'import json,sys; print(json.load(sys.stdin)["ref"])')
kind load docker-image "$IMAGE" --name "$CLUSTER"

step "namespace and the launcher's RBAC (manifests/rbac.yaml)"
kubectl --kubeconfig "$ADMIN" create namespace "$NS" --dry-run=client -o yaml | kubectl --kubeconfig "$ADMIN" apply -f -
kubectl --kubeconfig "$ADMIN" apply -f manifests/rbac.yaml
TOKEN=$(kubectl --kubeconfig "$ADMIN" -n "$NS" create token mlrepro-launcher --duration 2h)
export KUBECONFIG="$WORK/launcher.kubeconfig"
kubectl --kubeconfig "$ADMIN" config view --minify --raw -o json | python3 -c '
import json, sys
cfg = json.load(sys.stdin)
cfg["users"] = [{"name": "mlrepro-launcher", "user": {"token": sys.argv[1]}}]
cfg["contexts"][0]["context"].update(user="mlrepro-launcher", namespace=sys.argv[2])
print(json.dumps(cfg))' "$TOKEN" "$NS" > "$KUBECONFIG"

SETS=(-f quick --set benchmark.settings.min_duration_ms=500 --set 'benchmark.scenarios=[Offline]')

step "launch on the cluster: Offline, performance + accuracy"
mlrepro launch -p x86-cpu "${SETS[@]}" --mode performance,accuracy --target k8s --image "$IMAGE"
mlrepro runs
RUNS=$(mlrepro runs --output json | python3 -c 'import json,sys; print(" ".join(r["run_id"] for r in json.load(sys.stdin)))')
FIRST=${RUNS%% *}
mlrepro logs "$FIRST" | tail -3

step "collect (the local copies removed: from the claims, through the helper pod) and check"
rm -rf "$MLREPRO_STATE_DIR"/runs/*/results
# shellcheck disable=SC2086
mlrepro collect $RUNS --into "$WORK/submission" --submitter E2E
mlrepro check "$WORK/submission"

step "a sweep: two scenarios x two modes, two at a time"
mlrepro launch -p x86-cpu "${SETS[@]}" --scenario Offline,SingleStream --mode performance,accuracy \
  --target k8s --image "$IMAGE" --parallel 2
mlrepro runs --limit 4

step "helm: install generate's values, follow and collect by run id (as NOTES.txt says)"
mlrepro generate -p x86-cpu "${SETS[@]}" --mode submission --image "$IMAGE" -o "$WORK/out"
RUN_ID=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["run_id"])' "$WORK/out/run.json")
helm --kubeconfig "$ADMIN" install bench helm/mlrepro -n "$NS" -f "$WORK/out/values.yaml"
mlrepro logs "$RUN_ID" -f --namespace "$NS" | tail -3
mlrepro collect "$RUN_ID" --namespace "$NS" --into "$WORK/submission-helm" --submitter E2E
helm --kubeconfig "$ADMIN" upgrade --install bench helm/mlrepro -n "$NS" -f "$WORK/out/values.yaml"   # no change
helm --kubeconfig "$ADMIN" uninstall bench -n "$NS"

step "Ctrl-C: the Job goes (propagation Background), the run is cancelled"
mlrepro launch -p x86-cpu -f quick --set 'benchmark.scenarios=[Server]' --set benchmark.settings.min_duration_ms=600000 \
  --target k8s --image "$IMAGE" > "$WORK/ctrl-c.log" 2>&1 &
PID=$!
for _ in $(seq 120); do
  if mlrepro runs --status running --output json | grep -q run_id; then break; fi
  sleep 1
done
kill -INT "$PID"
set +e; wait "$PID"; CODE=$?; set -e
[[ $CODE == 130 ]] || { echo "e2e-kind: Ctrl-C exit code $CODE, expected 130" >&2; cat "$WORK/ctrl-c.log" >&2; exit 1; }
mlrepro runs --status cancelled --limit 1
CANCELLED=$(mlrepro runs --status cancelled --limit 1 --output json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["run_id"])')
kubectl --kubeconfig "$ADMIN" -n "$NS" wait --for=delete "job/$CANCELLED" --timeout=60s

step "e2e-kind: all steps passed"
