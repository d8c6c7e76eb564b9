//! `kubectl logs` and `kubectl logs -f` against `titus apiserver` + `titus agent`: the API
//! server proxies the Pod `log` subresource to the agent's log endpoint.

use std::time::Duration;

use titus_e2e::{Cluster, wait_for};

use crate::agent_support::{Agent, pod_manifest, wait_phase};

#[tokio::test]
async fn kubectl_logs_and_logs_follow_show_a_pods_output() -> anyhow::Result<()> {
    let cluster = Cluster::apiserver().await?;
    let _agent = Agent::start(&cluster, "e2e-logs").await?;
    let manifest = pod_manifest(
        "counter",
        "e2e-logs",
        "for i in 1 2 3; do echo line $i; sleep 1; done",
    );
    cluster.kubectl_stdin(&["apply", "-f", "-"], &manifest)?;
    wait_phase(&cluster, "counter", "Running").await?;
    // Follows while the container runs and ends when it exits.
    let followed = cluster.kubectl(&["logs", "-f", "counter"])?;
    assert_eq!(followed, "line 1\nline 2\nline 3\n");
    wait_phase(&cluster, "counter", "Succeeded").await?;
    assert_eq!(
        cluster.kubectl(&["logs", "counter"])?,
        "line 1\nline 2\nline 3\n"
    );
    assert_eq!(
        cluster.kubectl(&["logs", "counter", "--tail=1"])?,
        "line 3\n"
    );
    assert_eq!(
        cluster.kubectl(&["logs", "counter", "-c", "main", "--limit-bytes=4"])?,
        "line"
    );
    // The log driver records a time per line.
    let timed = cluster.kubectl(&["logs", "counter", "--timestamps"])?;
    let lines: Vec<&str> = timed.lines().collect();
    assert_eq!(lines.len(), 3, "{timed}");
    for (i, line) in lines.iter().enumerate() {
        let (time, rest) = line.split_once(' ').unwrap_or_default();
        assert!(time.ends_with('Z') && time.contains('T'), "{line}");
        assert_eq!(rest, format!("line {}", i + 1));
    }
    let previous = cluster.kubectl_output(&["logs", "counter", "--previous"])?;
    assert!(!previous.status.success());
    assert!(
        String::from_utf8_lossy(&previous.stderr).contains("previous terminated container"),
        "{}",
        String::from_utf8_lossy(&previous.stderr)
    );
    // A follower that starts before any output sees it as it comes.
    cluster.kubectl_stdin(
        &["apply", "-f", "-"],
        &pod_manifest("late", "e2e-logs", "sleep 1; echo late output"),
    )?;
    wait_phase(&cluster, "late", "Running").await?;
    let follower = cluster.kubectl_background(&["logs", "-f", "late"])?;
    wait_for(
        "the follower to print the output",
        Duration::from_secs(30),
        || async { Ok(follower.output().contains("late output").then_some(())) },
    )
    .await?;
    Ok(())
}
