//! The node agent against the real embedded API server (in process): registration, Lease, the
//! real Pod watch, Pod status as the task controller reads it, deletion, deregistration and the
//! log subresource; with the simulated runtime, and with a private containerd and registry
//! (started per test; they need root and the Debian packages of scripts/install-deps.sh, and fail
//! saying so when those are missing).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod containerd;
mod fixture;
mod simulated;
