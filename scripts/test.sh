#!/usr/bin/env bash
# Runs the whole test suite: formatting, lints, and every test of every crate
# (unit, embedded API server, kubectl/helm, containerd end-to-end).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
"$root/scripts/install-deps.sh"
export PATH="$root/.tools/bin:$PATH"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/titus-target}
export CARGO_INCREMENTAL=0
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet
# End-to-end tests start the titus binary itself, so build it before running them.
cargo build -p titus
cargo nextest run --workspace --no-fail-fast "$@"
