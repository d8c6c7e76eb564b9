#!/usr/bin/env bash
# Wire-compatibility check of the Titus gateway against the UPSTREAM Titus protos.
#
# Usage: scripts/titus-wire-check.sh [upstream-proto-dir]
#   upstream-proto-dir  holds netflix/titus/*.proto (default: ../shared/reference/titus-api
#                       relative to the repository root)
#
# Starts `titus up --runtime simulated` (API server, CRDs, operator, scheduler, a simulated node,
# gateway) on free ports in a scratch directory, then runs scripts/titus_wire_check.py: it
# compares the upstream descriptors with gateway/proto and drives the gateway with a Python client
# generated from the upstream protos, through jobs that really run. Exits non-zero on any mismatch. Environment:
#   TITUS_BIN     a built `titus` binary (default: cargo build -p titus)
#   TITUS_VENV    a Python venv with grpcio-tools (default: .tools/venv, created if missing)
#   KUBECTL       kubectl (default: .tools/bin/kubectl, else kubectl on PATH)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
upstream=${1:-$root/../shared/reference/titus-api}
if [ ! -f "$upstream/netflix/titus/titus_job_api.proto" ]; then
  echo "titus-wire-check: no upstream protos at $upstream (pass the directory holding netflix/titus/)" >&2
  exit 2
fi
upstream=$(cd "$upstream" && pwd)

venv=${TITUS_VENV:-$root/.tools/venv}
if ! "$venv/bin/python" -c "import grpc_tools, grpc" 2>/dev/null; then
  echo "creating $venv with grpcio-tools"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q grpcio==1.85.3 grpcio-tools==1.85.1
fi

kubectl=${KUBECTL:-$root/.tools/bin/kubectl}
[ -x "$kubectl" ] || kubectl=$(command -v kubectl || true)
if [ -z "$kubectl" ]; then
  echo "titus-wire-check: kubectl not found (run scripts/install-deps.sh or set KUBECTL)" >&2
  exit 2
fi

if [ -z "${TITUS_BIN:-}" ]; then
  export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/titus-target}
  (cd "$root" && cargo build -q -p titus)
  TITUS_BIN=$CARGO_TARGET_DIR/debug/titus
fi

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { "$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_until() { # seconds description command...
  local deadline=$((SECONDS + $1)) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then echo "titus-wire-check: timed out waiting for $what" >&2; return 1; fi
    sleep 0.2
  done
}

api_port=$(free_port); grpc_port=$(free_port); rest_port=$(free_port)
# The whole system (operator, scheduler, a simulated node, gateway), so that jobs really run.
"$TITUS_BIN" up --data-dir "$work/data" --bind "127.0.0.1:$api_port" --no-fsync \
  --runtime simulated --node-cpu 64 --node-memory-mb 262144 \
  --grpc-bind "127.0.0.1:$grpc_port" --rest-bind "127.0.0.1:$rest_port" >"$work/titus.log" 2>&1 &
pids+=($!)
export KUBECONFIG=$work/data/kubeconfig
wait_until 60 "the API server" "$kubectl" get --raw /readyz
wait_until 60 "the gateway" "$venv/bin/python" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$rest_port/api/v3/status', timeout=2)"

status=0
"$venv/bin/python" "$root/scripts/titus_wire_check.py" --upstream "$upstream" --ours "$root/gateway/proto" \
  --work "$work" --grpc "127.0.0.1:$grpc_port" --rest "127.0.0.1:$rest_port" || status=$?
if [ $status -ne 0 ]; then
  echo "--- titus up log (last 40 lines)"; tail -n 40 "$work/titus.log"
fi
exit $status
