//! Tests of the containerd runtime against a real, private containerd and registry (started per
//! test by `titus_agent_shim::testsupport`; they need root and the Debian packages installed by
//! scripts/install-deps.sh, and fail saying so when those are missing).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fixture;
mod images;
mod lifecycle;
mod limits;
mod process_rules;
mod recovery;
mod stop;
