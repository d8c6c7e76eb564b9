//! Node liveness: watches the heartbeat Leases in `kube-node-lease` and wakes the task controller
//! for the tasks of every node that stops (or resumes) reporting, so tasks on healthy nodes are
//! never polled. The same loop refreshes the tasks-by-state gauges.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use kube::runtime::reflector::ObjectRef;
use titus_crds::TitusTask;
use titus_crds::job::status::TaskCounts;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::context::Shared;
use crate::task::facts::NodeFacts;

/// Which nodes changed between two observations of who reports (pure).
pub fn changed_nodes(
    before: &HashMap<String, bool>,
    now: &HashMap<String, bool>,
) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (node, reporting) in now {
        if before.get(node).is_some_and(|b| b != reporting) {
            out.insert(node.clone());
        }
    }
    for (node, reporting) in before {
        if *reporting && !now.contains_key(node) {
            out.insert(node.clone());
        }
    }
    out
}

/// Runs until `stop` is cancelled, checking every `tick`.
pub async fn run(
    ctx: Arc<Shared>,
    wake: mpsc::Sender<ObjectRef<TitusTask>>,
    tick: Duration,
    stop: CancellationToken,
) {
    let mut before: Option<HashMap<String, bool>> = None;
    loop {
        tokio::select! {
            () = tokio::time::sleep(tick) => {}
            () = stop.cancelled() => return,
        }
        let now_ms = ctx.clock.now_ms();
        let timeout = ctx.timeouts.node_lease_ms;
        let reporting: HashMap<String, bool> = ctx
            .caches
            .leases
            .state()
            .iter()
            .filter_map(|lease| {
                let name = lease.metadata.name.clone()?;
                let facts = NodeFacts::of(&name, None, Some(lease));
                Some((name, facts.is_reporting(now_ms, timeout)))
            })
            .collect();
        let tasks = ctx.caches.tasks.state();
        ctx.metrics
            .set_task_counts(&TaskCounts::from_states(tasks.iter().map(|t| t.state())));
        let changed = before
            .as_ref()
            .map(|b| changed_nodes(b, &reporting))
            .unwrap_or_default();
        before = Some(reporting);
        if changed.is_empty() {
            continue;
        }
        tracing::info!(nodes = ?changed, "node reporting changed; re-examining their tasks");
        for task in tasks.iter().filter(|t| {
            !t.state().is_terminal()
                && t.status
                    .as_ref()
                    .is_some_and(|s| changed.contains(&s.node_name))
        }) {
            if wake.send(ObjectRef::from_obj(task.as_ref())).await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: &[(&str, bool)]) -> HashMap<String, bool> {
        entries
            .iter()
            .map(|(n, r)| ((*n).to_string(), *r))
            .collect()
    }

    #[test]
    fn nodes_that_stop_resume_or_vanish_are_reported() {
        let before = map(&[
            ("a", true),
            ("b", false),
            ("c", true),
            ("d", true),
            ("e", false),
        ]);
        let now = map(&[("a", false), ("b", true), ("c", true), ("f", false)]);
        let changed: Vec<String> = changed_nodes(&before, &now).into_iter().collect();
        assert_eq!(changed, vec!["a", "b", "d"]);
    }
}
