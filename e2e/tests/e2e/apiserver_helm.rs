//! helm 4 (server-side apply by default) against `titus apiserver`.

use titus_e2e::{Cluster, repo_root};

#[tokio::test]
async fn helm_installs_lists_upgrades_and_uninstalls_a_chart_with_crds() -> anyhow::Result<()> {
    let cluster = Cluster::apiserver().await?;
    let chart = repo_root().join("e2e/testdata/sample-chart");
    let chart = chart.to_str().unwrap_or_default();

    let installed = cluster.helm(&["install", "demo", chart, "--wait=false"])?;
    assert!(installed.contains("STATUS: deployed"), "{installed}");
    let list = cluster.helm(&["list"])?;
    assert!(
        list.lines()
            .any(|l| l.starts_with("demo") && l.contains("deployed") && l.contains("sample-0.1.0")),
        "{list}"
    );
    // The CRD from crds/ is established and the templated objects exist, including a custom resource.
    cluster.kubectl(&["get", "crd", "gadgets.e2e.titus.dev"])?;
    for object in [
        "configmap/demo-config",
        "serviceaccount/demo-sa",
        "role/demo-role",
        "rolebinding/demo-rb",
        "deployment/demo-web",
        "gadget/demo-gadget",
    ] {
        cluster.kubectl(&["get", object])?;
    }

    cluster.helm(&[
        "upgrade",
        "demo",
        chart,
        "--set",
        "replicas=3",
        "--set",
        "message=bye",
        "--wait=false",
    ])?;
    assert_eq!(
        cluster.kubectl(&[
            "get",
            "deployment",
            "demo-web",
            "-o",
            "jsonpath={.spec.replicas}"
        ])?,
        "3"
    );
    assert_eq!(
        cluster.kubectl(&[
            "get",
            "configmap",
            "demo-config",
            "-o",
            "jsonpath={.data.message}"
        ])?,
        "bye"
    );
    let history = cluster.helm(&["history", "demo"])?;
    assert!(
        history.lines().count() >= 3,
        "two revisions listed: {history}"
    );

    cluster.helm(&["uninstall", "demo"])?;
    assert!(!cluster.helm(&["list"])?.contains("demo"));
    for object in [
        "configmap/demo-config",
        "deployment/demo-web",
        "gadget/demo-gadget",
    ] {
        let out = cluster.kubectl_output(&["get", object])?;
        assert!(!out.status.success(), "{object} is removed by uninstall");
    }
    // helm keeps CRDs on uninstall, as it does on a real cluster.
    cluster.kubectl(&["get", "crd", "gadgets.e2e.titus.dev"])?;
    Ok(())
}
