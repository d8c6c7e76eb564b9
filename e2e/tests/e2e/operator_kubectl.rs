//! kubectl against `titus apiserver` (Titus admission on) with `titus operator` running: every
//! example applies, `kubectl get` shows useful columns, `kubectl scale` changes a service job's
//! desired size, and invalid manifests are refused naming the field.

use std::time::Duration;

use titus_e2e::{Cluster, repo_root, scratch_dir, wait_for};
use titus_operator::testing::Behavior;

use crate::operator_support::{Operator, driver, install_titus_crds};

const SCALABLE: &str = "apiVersion: titus.dev/v1alpha1
kind: TitusJob
metadata:
  name: scalable
spec:
  owner: {teamEmail: titus-dev@example.com}
  applicationName: scalable
  container:
    resources: {cpu: 1.0, memoryMB: 512}
    securityProfile: {securityGroups: [sg-titusdefault], iamRole: titusAppRole}
    image: {name: localhost:5000/titus/busybox, tag: '1'}
  service:
    capacity: {min: 0, desired: 2, max: 10}
    retryPolicy: {immediate: {retries: 0}}
";

fn count_rows(table: &str, needle: &str) -> usize {
    table.lines().filter(|l| l.contains(needle)).count()
}

#[tokio::test]
async fn kubectl_applies_every_example_scales_and_is_refused_with_the_field_named()
-> anyhow::Result<()> {
    let cluster = Cluster::apiserver().await?;
    install_titus_crds(&cluster)?;
    let log = scratch_dir("operator")?.join("operator.log");
    let operator = Operator::start(&cluster, log, &["--no-leader-election"])?;
    let _driver = driver(&cluster, 3, |_| Behavior::run_until_killed()).await?;

    let examples = repo_root().join("examples");
    let mut names: Vec<_> = std::fs::read_dir(&examples)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    names.sort();
    assert!(names.len() >= 4, "{names:?}");
    for path in &names {
        let out = cluster.kubectl(&["apply", "-f", &path.display().to_string()])?;
        assert!(out.contains("created"), "{}: {out}", path.display());
    }

    // The operator creates the tasks (batch 3 + constrained 1 + web 2) and the driver runs them.
    let table = wait_for(
        "tasks of every example job to start",
        Duration::from_secs(60),
        || async {
            operator.check_alive()?;
            let table = cluster.kubectl(&["get", "titustasks"])?;
            Ok((count_rows(&table, "Started") == 6).then_some(table))
        },
    )
    .await?;
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["NAME", "JOB", "INDEX", "STATE", "REASON", "NODE", "AGE"],
        "{table}"
    );
    assert_eq!(count_rows(&table, "hello-batch"), 3, "{table}");
    assert!(table.contains("node-"), "{table}");

    let both = cluster.kubectl(&["get", "titusjobs,titustasks"])?;
    assert!(
        both.contains("titusjob.titus.dev/web") && both.contains("titustask.titus.dev/"),
        "{both}"
    );
    let jobs = cluster.kubectl(&["get", "titusjobs"])?;
    let header: Vec<&str> = jobs
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "NAME", "APP", "STATE", "SIZE", "DESIRED", "RUNNING", "FINISHED", "AGE"
        ],
        "{jobs}"
    );
    let web = jobs
        .lines()
        .find(|l| l.starts_with("web "))
        .unwrap_or_default()
        .to_string();
    assert!(web.contains("Accepted") && web.contains(" 2 "), "{jobs}");

    // kubectl scale goes through the scale subresource (and Titus admission).
    let manifest = cluster.file("scalable.yaml", SCALABLE)?;
    cluster.kubectl(&["apply", "-f", &manifest.display().to_string()])?;
    cluster.kubectl(&["scale", "titusjob/scalable", "--replicas=5"])?;
    let desired = cluster.kubectl(&[
        "get",
        "tj",
        "scalable",
        "-o",
        "jsonpath={.spec.service.capacity.desired}",
    ])?;
    assert_eq!(desired, "5");
    wait_for(
        "five tasks of the scaled job",
        Duration::from_secs(30),
        || async {
            let table = cluster.kubectl(&["get", "tt", "-l", "titus.dev/job-name=scalable"])?;
            Ok((count_rows(&table, "Started") == 5).then_some(()))
        },
    )
    .await?;
    let refused = cluster.kubectl_output(&["scale", "titusjob/web", "--replicas=5"])?;
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("spec.service.capacity")
            && stderr.contains("'desired'(5) must be <= 'max'(4)"),
        "{stderr}"
    );

    // An invalid manifest is refused at the door, naming the field; nothing is stored.
    let bad = SCALABLE
        .replace("name: scalable", "name: too-big")
        .replace("cpu: 1.0", "cpu: 200.0");
    let bad = cluster.file("too-big.yaml", &bad)?;
    let refused = cluster.kubectl_output(&["apply", "-f", &bad.display().to_string()])?;
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("spec.container.resources.cpu")
            && stderr.contains("Above maximum allowed value 96.0"),
        "{stderr}"
    );
    let missing = cluster.kubectl_output(&["get", "tj", "too-big"])?;
    assert!(
        !missing.status.success(),
        "the refused job must not be stored"
    );
    operator.check_alive()?;
    Ok(())
}
