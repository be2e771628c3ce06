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
# a run on a tainted node, collected from its node-local claim -> a ResourceQuota that refuses the run's pod ->
# Ctrl-C of a running launch deletes its Job.
#
# The cluster: a control-plane node and one worker tainted nvidia.com/gpu=present:NoSchedule and labelled
# mlrepro.io/e2e=tainted (a GPU node as GPU operators taint them, without a GPU). The namespace enforces Pod
# Security "restricted". kind's default StorageClass is local-path: every results claim is node-local.
#
# What this covers that the API stand-in (tests/k8s) does not: a real API server (its TLS, its RBAC evaluating the
# Role, its Pod Security and ResourceQuota admission, server-side apply with field ownership, garbage collection
# of the Job's pods), the real Job controller (its FailedCreate events, backoff), kube-scheduler (taints, the
# local-path volume's node affinity, the helper pod's preferred node affinity among scores), a real kubelet
# (image side-loaded, the pod's user, fsGroup on the local-path volume, `tar` of the image in the helper pod) and
# the local-path provisioner. What only the stand-in covers: an NFS/EFS-style claim that ignores fsGroup, a GiB of
# results under a memory bound, a watch that answers 410 while a Job is deleted, a log connection that goes
# silent, a webhook's or LimitRange's refusal (none of them can be set up in a plain kind cluster by this script).
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

step "kind cluster $CLUSTER (a control-plane node, a worker tainted nvidia.com/gpu=present:NoSchedule)"
cat > "$WORK/kind.yaml" <<'KIND'
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
  - role: control-plane
  - role: worker
    kubeadmConfigPatches:
      - |
        kind: JoinConfiguration
        nodeRegistration:
          kubeletExtraArgs:
            node-labels: "mlrepro.io/e2e=tainted"
          taints:
            - key: nvidia.com/gpu
              value: present
              effect: NoSchedule
KIND
kind get clusters 2>/dev/null | grep -qx "$CLUSTER" || kind create cluster --name "$CLUSTER" --config "$WORK/kind.yaml" --wait 180s
ADMIN="$WORK/admin.kubeconfig"
kind get kubeconfig --name "$CLUSTER" > "$ADMIN"
kubectl --kubeconfig "$ADMIN" version

step "image: build (a no-op when up to date) and side-load into the node"
IMAGE=$(mlrepro build -p x86-cpu --output json | python3 -c 'import json,sys; print(json.load(sys.stdin)["ref"])')
kind load docker-image "$IMAGE" --name "$CLUSTER"

TAINTED=$(kubectl --kubeconfig "$ADMIN" get nodes -l mlrepro.io/e2e=tainted -o jsonpath='{.items[0].metadata.name}')
[[ -n "$TAINTED" ]] || { echo "e2e-kind: no node labelled mlrepro.io/e2e=tainted (a cluster kept from an older run of this script? delete it)" >&2; exit 1; }

step "namespace (Pod Security \"restricted\" enforced) and the launcher's RBAC (manifests/rbac.yaml)"
kubectl --kubeconfig "$ADMIN" create namespace "$NS" --dry-run=client -o yaml | kubectl --kubeconfig "$ADMIN" apply -f -
kubectl --kubeconfig "$ADMIN" label --overwrite namespace "$NS" pod-security.kubernetes.io/enforce=restricted
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

step "a run on the tainted node: its node-local claim (local-path) is collected there, with the run's toleration"
TOLERATE=(--set 'scheduling.tolerations=[{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]'
          --set 'scheduling.node_selector={mlrepro.io/e2e: tainted}')
mlrepro launch -p x86-cpu "${SETS[@]}" --mode submission "${TOLERATE[@]}" --target k8s --image "$IMAGE"
ON_TAINTED=$(mlrepro runs --limit 1 --output json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["run_id"])')
kubectl --kubeconfig "$ADMIN" -n "$NS" get pods -l "mlrepro.io/run-id=$ON_TAINTED" -o wide
NODE=$(kubectl --kubeconfig "$ADMIN" -n "$NS" get pods -l "mlrepro.io/run-id=$ON_TAINTED" -o jsonpath='{.items[0].spec.nodeName}')
[[ "$NODE" == "$TAINTED" ]] || { echo "e2e-kind: the run ran on $NODE, not on the tainted node $TAINTED" >&2; exit 1; }
rm -rf "$MLREPRO_STATE_DIR/runs/$ON_TAINTED/results"
mlrepro collect "$ON_TAINTED" --into "$WORK/submission-tainted" --submitter E2E
mlrepro check "$WORK/submission-tainted"

step "admission: a ResourceQuota the run's pod exceeds fails the run with the quota's message (FailedCreate)"
kubectl --kubeconfig "$ADMIN" -n "$NS" create quota e2e-cpu --hard=requests.cpu=100m
set +e
mlrepro launch -p x86-cpu "${SETS[@]}" --mode performance --target k8s --image "$IMAGE" --pending-timeout 30 \
  > "$WORK/quota.log" 2>&1
CODE=$?
set -e
kubectl --kubeconfig "$ADMIN" -n "$NS" delete quota e2e-cpu
cat "$WORK/quota.log"
[[ $CODE == 1 ]] || { echo "e2e-kind: a run refused by a quota exited $CODE, expected 1" >&2; exit 1; }
grep -q "refused by ResourceQuota e2e-cpu" "$WORK/quota.log" \
  || { echo "e2e-kind: the quota's refusal was not reported" >&2; exit 1; }

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
