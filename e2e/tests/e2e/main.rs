//! End-to-end tests with real clients (kubectl 1.33, helm 4, kube-rs) against `titus`.
//! One test binary, so the (large) binaries link once.

mod agent_logs;
mod agent_recovery;
mod agent_support;
mod apiserver_durability;
mod apiserver_helm;
mod apiserver_kube_client;
mod apiserver_kubectl;
mod gateway_cli;
mod helm_chart;
mod operator_crash;
mod operator_kubectl;
mod operator_support;
mod scheduler_cli;
mod support;
mod titus_up;
