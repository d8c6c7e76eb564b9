#!/usr/bin/env bash
# Builds the agent's tiny test images from Debian's busybox-static with umoci and pushes them to a
# registry with skopeo, without internet. Usage:
#   scripts/build-test-image.sh REGISTRY_HOST:PORT [DIGEST_DIR]
#   scripts/build-test-image.sh --oci-layout DIR     # only write the OCI image layout DIR (tags 1
#                                                    # and entrypoint), for `titus agent --import-image DIR:REF`
# Pushes (plain HTTP, no TLS verification):
#   REGISTRY/busybox:1           CMD ["/bin/sh","-c","echo hello from busybox"], Env PATH=/bin
#   REGISTRY/busybox:entrypoint  ENTRYPOINT ["/bin/echo","image-entrypoint"], CMD ["image-cmd"],
#                                Env PATH=/bin IMAGE_ONLY=from-image SHARED=from-image, WorkingDir /tmp
# With DIGEST_DIR, writes each pushed manifest digest to DIGEST_DIR/<tag>.digest.
# With DEST_CREDS=user:password in the environment, pushes with basic auth.
set -euo pipefail
layout_out=
if [ "${1:-}" = --oci-layout ]; then
  layout_out=${2:?usage: build-test-image.sh --oci-layout DIR}
  mkdir -p "$(dirname "$layout_out")"
  layout_out=$(cd "$(dirname "$layout_out")" && pwd)/$(basename "$layout_out")
  tools=umoci
else
  registry=${1:?usage: build-test-image.sh REGISTRY_HOST:PORT [DIGEST_DIR]}
  digest_dir=${2:-}
  tools="umoci skopeo"
fi
busybox=/bin/busybox
for tool in $tools; do
  command -v "$tool" >/dev/null || { echo "build-test-image: $tool is not installed (scripts/install-deps.sh)" >&2; exit 1; }
done
[ -x "$busybox" ] ||
  { echo "build-test-image: $busybox (Debian busybox-static) is missing" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

umoci init --layout oci
umoci new --image oci:base
umoci unpack --image oci:base bundle >/dev/null
root=bundle/rootfs
mkdir -p "$root"/{bin,etc,tmp,proc,sys,dev,root}
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' > "$root/etc/passwd"
echo 'root:x:0:' > "$root/etc/group"
umoci repack --image oci:base bundle

umoci config --image oci:base --tag 1 --architecture amd64 --os linux \
  --config.cmd /bin/sh --config.cmd -c --config.cmd 'echo hello from busybox' \
  --config.env PATH=/bin
umoci config --image oci:base --tag entrypoint --architecture amd64 --os linux \
  --config.entrypoint /bin/echo --config.entrypoint image-entrypoint --config.cmd image-cmd \
  --config.env PATH=/bin --config.env IMAGE_ONLY=from-image --config.env SHARED=from-image \
  --config.workingdir /tmp
umoci gc --layout oci

if [ -n "$layout_out" ]; then
  rm -rf "$layout_out"
  cp -r oci "$layout_out"
  exit 0
fi

for tag in 1 entrypoint; do
  args=(--quiet --dest-tls-verify=false)
  [ -n "$digest_dir" ] && args+=(--digestfile "$digest_dir/$tag.digest")
  [ -n "${DEST_CREDS:-}" ] && args+=(--dest-creds "$DEST_CREDS")
  skopeo copy "${args[@]}" "oci:oci:$tag" "docker://$registry/busybox:$tag"
done
