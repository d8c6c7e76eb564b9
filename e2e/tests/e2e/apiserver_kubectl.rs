//! kubectl 1.33 against `titus apiserver`: the whole everyday workflow on a custom resource.

use std::time::Duration;

use titus_e2e::{Cluster, wait_for};

use crate::support::{install_widgets, wait_for_kubectl, widget};

#[tokio::test]
async fn kubectl_applies_gets_watches_patches_scales_and_deletes_custom_resources()
-> anyhow::Result<()> {
    let cluster = Cluster::apiserver().await?;
    install_widgets(&cluster).await?;
    let manifest = cluster.file("w1.yaml", &widget("w1", "red"))?;
    let manifest = manifest.to_str().unwrap_or_default();

    // apply with validation on, then again: unchanged.
    assert!(
        cluster
            .kubectl(&["apply", "-f", manifest])?
            .contains("widget.e2e.titus.dev/w1 created")
    );
    assert!(
        cluster
            .kubectl(&["apply", "-f", manifest])?
            .contains("widget.e2e.titus.dev/w1 unchanged")
    );

    // get: a table with the printer columns, and the defaulted field.
    let table = cluster.kubectl(&["get", "widgets"])?;
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(header, ["NAME", "REPLICAS", "COLOR", "READY"], "{table}");
    assert!(
        table.lines().nth(1).unwrap_or_default().starts_with("w1"),
        "{table}"
    );
    let yaml = cluster.kubectl(&["get", "wd", "w1", "-o", "yaml"])?;
    assert!(
        yaml.contains("replicas: 1") && yaml.contains("color: red") && yaml.contains("uid:"),
        "{yaml}"
    );

    // server-side apply of the same object by another manager.
    let ssa = cluster.file("w1-ssa.yaml", &widget("w1", "red"))?;
    assert!(
        cluster
            .kubectl(&[
                "apply",
                "--server-side",
                "--field-manager=e2e",
                "-f",
                ssa.to_str().unwrap_or_default()
            ])?
            .contains("serverside-applied")
    );

    // get -w sees a change made meanwhile.
    let watch = cluster.kubectl_background(&["get", "widgets", "-w", "--output-watch-events"])?;
    wait_for("the watch to list w1", Duration::from_secs(20), || async {
        Ok(watch.output().contains("w1").then_some(()))
    })
    .await?;
    cluster.kubectl(&[
        "patch",
        "widget",
        "w1",
        "--type=merge",
        "-p",
        r#"{"spec":{"color":"green"}}"#,
    ])?;
    wait_for(
        "the watch to see the patch",
        Duration::from_secs(20),
        || async {
            Ok(watch
                .output()
                .lines()
                .any(|l| l.starts_with("MODIFIED") && l.contains("green"))
                .then_some(()))
        },
    )
    .await?;
    drop(watch);

    // label, annotate, json patch, scale through the scale subresource.
    cluster.kubectl(&["label", "widget", "w1", "tier=front"])?;
    cluster.kubectl(&["annotate", "widget", "w1", "note=hello"])?;
    cluster.kubectl(&[
        "patch",
        "widget",
        "w1",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/spec/color","value":"blue"}]"#,
    ])?;
    cluster.kubectl(&["scale", "widget", "w1", "--replicas=5"])?;
    let fields = cluster.kubectl(&["get", "widget", "w1", "-o", "jsonpath={.metadata.labels.tier} {.metadata.annotations.note} {.spec.color} {.spec.replicas}"])?;
    assert_eq!(fields, "front hello blue 5");
    assert!(
        cluster
            .kubectl(&["get", "widgets", "--show-labels"])?
            .contains("tier=front")
    );

    // describe shows the object.
    let described = cluster.kubectl(&["describe", "widget", "w1"])?;
    assert!(
        described.contains("Name:         w1") && described.contains("Color:     blue"),
        "{described}"
    );

    // wait --for=condition once a controller (here: the test) sets it on status.
    cluster.kubectl(&[
        "patch",
        "widget",
        "w1",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"conditions":[{"type":"Ready","status":"True"}]}}"#,
    ])?;
    cluster.kubectl(&[
        "wait",
        "--for=condition=Ready",
        "widget/w1",
        "--timeout=20s",
    ])?;
    wait_for_kubectl(&cluster, &["get", "widgets"], "True").await?;

    // explain a CRD field.
    let explained = cluster.kubectl(&["explain", "widget.spec.color"])?;
    assert!(
        explained.contains("The widget's color.") && explained.contains("green"),
        "{explained}"
    );

    // delete with a finalizer: the object stays until the finalizer is removed.
    let held = "apiVersion: e2e.titus.dev/v1\nkind: Widget\nmetadata:\n  name: held\n  finalizers: [e2e.titus.dev/hold]\nspec:\n  color: red\n";
    cluster.kubectl_stdin(&["apply", "-f", "-"], held)?;
    cluster.kubectl(&["delete", "widget", "held", "--wait=false"])?;
    let ts = cluster.kubectl(&[
        "get",
        "widget",
        "held",
        "-o",
        "jsonpath={.metadata.deletionTimestamp}",
    ])?;
    assert!(
        !ts.is_empty(),
        "deletionTimestamp is set while the finalizer holds the object"
    );
    cluster.kubectl(&[
        "patch",
        "widget",
        "held",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
    ])?;
    let gone = cluster.kubectl_output(&["get", "widget", "held"])?;
    assert!(
        String::from_utf8_lossy(&gone.stderr).contains("NotFound"),
        "the object is gone once its finalizer is removed"
    );

    // pods across all namespaces (none yet, but the request must work).
    let pods = cluster.kubectl_output(&["get", "pods", "-A"])?;
    assert!(
        pods.status.success(),
        "{}",
        String::from_utf8_lossy(&pods.stderr)
    );
    assert!(String::from_utf8_lossy(&pods.stderr).contains("No resources found"));
    Ok(())
}

#[tokio::test]
async fn invalid_objects_are_refused_with_422_naming_the_field_and_nothing_is_stored()
-> anyhow::Result<()> {
    let cluster = Cluster::apiserver().await?;
    install_widgets(&cluster).await?;
    let cases = [
        (
            "wrong type",
            "spec:\n  color: red\n  replicas: lots\n",
            "spec.replicas: Invalid value: \"lots\": spec.replicas in body must be of type integer",
        ),
        (
            "missing required field",
            "spec:\n  replicas: 2\n",
            "spec.color: Required value",
        ),
        (
            "value out of enum",
            "spec:\n  color: purple\n",
            "spec.color: Unsupported value: \"purple\": supported values: \"red\", \"green\", \"blue\"",
        ),
        (
            "below minimum",
            "spec:\n  color: red\n  replicas: -1\n",
            "spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or equal to 0",
        ),
    ];
    for (i, (case, spec, expected)) in cases.iter().enumerate() {
        let name = format!("bad{i}");
        let manifest = format!(
            "apiVersion: e2e.titus.dev/v1\nkind: Widget\nmetadata:\n  name: {name}\n{spec}"
        );
        let path = cluster.file(&format!("{name}.yaml"), &manifest)?;
        let out = cluster.kubectl_output(&["create", "-f", path.to_str().unwrap_or_default()])?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{case}: accepted");
        assert!(
            stderr.contains("is invalid") && stderr.contains(expected),
            "{case}: {stderr}"
        );
        let stored = cluster.kubectl_output(&["get", "widget", &name])?;
        assert!(!stored.status.success(), "{case}: nothing must be stored");
    }
    Ok(())
}

#[tokio::test]
async fn kubectl_imperative_creates_of_built_in_kinds_work_and_namespaces_delete_with_their_content()
-> anyhow::Result<()> {
    // kubectl's typed commands send protobuf bodies; these kinds must be accepted.
    let cluster = Cluster::apiserver().await?;
    cluster.kubectl(&["create", "namespace", "team-a"])?;
    cluster.kubectl(&[
        "-n",
        "team-a",
        "create",
        "configmap",
        "settings",
        "--from-literal=mode=fast",
    ])?;
    cluster.kubectl(&[
        "-n",
        "team-a",
        "create",
        "secret",
        "generic",
        "token",
        "--from-literal=value=s3cret",
    ])?;
    cluster.kubectl(&["-n", "team-a", "create", "serviceaccount", "runner"])?;
    cluster.kubectl(&[
        "-n",
        "team-a",
        "create",
        "role",
        "reader",
        "--verb=get,list",
        "--resource=pods",
    ])?;
    cluster.kubectl(&[
        "-n",
        "team-a",
        "create",
        "rolebinding",
        "runner-reads",
        "--role=reader",
        "--serviceaccount=team-a:runner",
    ])?;
    assert_eq!(
        cluster.kubectl(&[
            "-n",
            "team-a",
            "get",
            "configmap",
            "settings",
            "-o",
            "jsonpath={.data.mode}"
        ])?,
        "fast"
    );
    assert_eq!(
        cluster.kubectl(&[
            "-n",
            "team-a",
            "get",
            "secret",
            "token",
            "-o",
            "jsonpath={.type}"
        ])?,
        "Opaque"
    );
    let rules = cluster.kubectl(&[
        "-n",
        "team-a",
        "get",
        "role",
        "reader",
        "-o",
        "jsonpath={.rules[0].verbs}",
    ])?;
    assert_eq!(rules, r#"["get","list"]"#);
    cluster.kubectl(&["delete", "namespace", "team-a"])?;
    wait_for(
        "the namespace and its content to be gone",
        Duration::from_secs(20),
        || async {
            let out = cluster.kubectl_output(&["get", "namespace", "team-a"])?;
            Ok((!out.status.success()).then_some(()))
        },
    )
    .await?;
    assert!(
        cluster
            .kubectl(&["get", "configmaps", "-A"])?
            .lines()
            .all(|l| !l.contains("settings"))
    );
    Ok(())
}
