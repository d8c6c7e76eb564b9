//! Shared fixtures of the end-to-end tests.

use std::time::Duration;

use titus_e2e::{Cluster, repo_root, wait_for};

/// The test CRD (widgets.e2e.titus.dev) with validation, defaults, status and scale.
pub fn widgets_crd() -> String {
    repo_root()
        .join("e2e/testdata/widgets-crd.yaml")
        .display()
        .to_string()
}

/// Applies the widgets CRD and waits until kubectl can use it.
pub async fn install_widgets(cluster: &Cluster) -> anyhow::Result<()> {
    cluster.kubectl(&["apply", "-f", &widgets_crd()])?;
    cluster.kubectl(&[
        "wait",
        "--for=condition=Established",
        "crd/widgets.e2e.titus.dev",
        "--timeout=30s",
    ])?;
    Ok(())
}

/// A Widget manifest.
pub fn widget(name: &str, color: &str) -> String {
    format!(
        "apiVersion: e2e.titus.dev/v1\nkind: Widget\nmetadata:\n  name: {name}\nspec:\n  color: {color}\n"
    )
}

/// Waits until `kubectl get` output of `args` contains `needle`.
pub async fn wait_for_kubectl(
    cluster: &Cluster,
    args: &[&str],
    needle: &str,
) -> anyhow::Result<String> {
    wait_for(
        &format!("`kubectl {}` to show {needle:?}", args.join(" ")),
        Duration::from_secs(20),
        || async {
            let out = cluster.kubectl(args)?;
            Ok(out.contains(needle).then_some(out))
        },
    )
    .await
}
