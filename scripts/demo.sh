#!/usr/bin/env bash
# The main job: `titus up` on a scratch data directory (embedded API server, operator,
# scheduler, a node agent running real containers through a private containerd, gateway),
# then the sample batch job of examples/batch-job.yaml through kubectl, to Finished.
#
# Usage: scripts/demo.sh [--runtime simulated]   (extra flags go to `titus up`)
# Environment: TITUS_DEMO_DIR keeps the data directory (default: a temporary one, removed).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
"$root/scripts/install-deps.sh"
export PATH="$root/.tools/bin:$PATH"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/titus-target}
cargo build -q -p titus
titus=$CARGO_TARGET_DIR/debug/titus

data=${TITUS_DEMO_DIR:-}
keep=1
if [ -z "$data" ]; then data=$(mktemp -d); keep=0; fi
mkdir -p "$data"
up_pid=
cleanup() {
  if [ -n "$up_pid" ]; then
    kill -INT "$up_pid" 2>/dev/null || true
    wait "$up_pid" 2>/dev/null || true
  fi
  if [ $keep -eq 0 ]; then rm -rf "$data"; fi
}
trap cleanup EXIT

wait_until() { # seconds description command...
  local deadline=$((SECONDS + $1)) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
      echo "demo: timed out after $1s waiting for $what; titus up said:" >&2
      tail -n 30 "$data/up.log" >&2
      return 1
    fi
    sleep 0.5
  done
}

echo "== titus up --data-dir $data $*"
"$titus" up --data-dir "$data" --bind 127.0.0.1:0 "$@" >"$data/up.log" 2>&1 &
up_pid=$!
export KUBECONFIG=$data/kubeconfig
wait_until 60 "the API server" kubectl get --raw /readyz
wait_until 60 "the Titus CRDs" kubectl get titusjobs
wait_until 120 "the node to be Ready" kubectl wait --for=condition=Ready node --all --timeout=2s
sed -n '/titus is up/,/^$/p' "$data/up.log"
kubectl get nodes -o wide

echo "== kubectl apply -f examples/batch-job.yaml"
kubectl apply -f examples/batch-job.yaml
wait_until 180 "the job to finish" \
  kubectl wait titusjob/hello-batch --for=jsonpath='{.status.state}'=Finished --timeout=2s

echo "== the job and its tasks"
kubectl get titusjob hello-batch
kubectl get titustasks -l titus.dev/job-name=hello-batch
echo "== what the containers printed"
find "$data/agent/logs" -type f -name stdout -exec cat {} + | sed 's/^/  /'
echo "== the same job through the Titus v3 REST API"
python3 - <<'PY'
import json, urllib.request
jobs = json.load(urllib.request.urlopen("http://127.0.0.1:7001/api/v3/jobs"))
for job in jobs.get("items", []):
    print(f"  {job['id']}  {job['jobDescriptor']['applicationName']}  {job['status']['state']}")
PY

counts=$(kubectl get titusjob hello-batch -o jsonpath='{.status.state} {.status.taskCounts}')
echo "== done: hello-batch $counts"
