//! Task Pods on virtual nodes: launches, status updates, kills and reconciliation.

use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::watcher::Event;
use serde_json::json;

use super::{Bridge, image, launched_agent, node_of, pod_key, pods_api};
use crate::kube::mesos::POD_AGENT_ID_ANNOTATION;
use crate::kube::mesos::launch::task_info;
use crate::kube::mesos::status::{is_terminal, pod_status, same_report};
use crate::kube::mesos::virtual_node::Readiness;
use crate::kube::metrics::{SchedulerMetrics, StateLabel};
use crate::mesos::framework::{FrameworkError, StatusUpdate};
use crate::mesos::types::{TaskInfo, TaskState};

impl Bridge {
    // --- pods ---

    pub(super) async fn on_pod(&mut self, event: Event<Pod>) {
        match event {
            Event::Init => self.relisted_pods = Some(HashSet::new()),
            Event::InitApply(pod) => {
                if let Some(key) = pod_key(&pod) {
                    if let Some(seen) = &mut self.relisted_pods {
                        seen.insert(key.clone());
                    }
                    self.pod_changed(key, pod).await;
                }
            }
            Event::Apply(pod) => {
                if let Some(key) = pod_key(&pod) {
                    self.pod_changed(key, pod).await;
                }
            }
            Event::Delete(pod) => {
                if let Some(key) = pod_key(&pod) {
                    self.pod_gone(&key).await;
                }
            }
            Event::InitDone => {
                let seen = self.relisted_pods.take().unwrap_or_default();
                let gone: Vec<String> = self
                    .pods
                    .keys()
                    .filter(|k| !seen.contains(*k))
                    .cloned()
                    .collect();
                for key in gone {
                    self.pod_gone(&key).await;
                }
                if !self.pods_synced {
                    self.pods_synced = true;
                    self.reconcile_launched().await;
                }
            }
        }
    }

    pub(super) fn on_virtual_node(&self, pod: &Pod) -> bool {
        node_of(pod).is_some_and(|n| self.hosts.contains_key(n))
    }

    pub(super) async fn pod_changed(&mut self, key: String, pod: Pod) {
        let name = pod.metadata.name.clone().unwrap_or_default();
        if launched_agent(&pod).is_some() {
            self.tasks.insert(name, key.clone());
            self.waiting.remove(&key);
        } else if self.on_virtual_node(&pod)
            && pod.metadata.deletion_timestamp.is_none()
            && !is_terminal(pod.status.as_ref())
        {
            self.waiting.entry(key.clone()).or_insert_with(Instant::now);
            if let Some(host) = node_of(&pod).and_then(|n| self.hosts.get_mut(n)) {
                host.last_seen = Instant::now();
            }
        }
        let deleting = pod.metadata.deletion_timestamp.is_some();
        self.pods.insert(key.clone(), pod);
        if deleting {
            self.deleting(&key).await;
        }
    }

    /// A Pod that is gone (deleted, or finished and out of the watch).
    pub(super) async fn pod_gone(&mut self, key: &str) {
        self.waiting.remove(key);
        self.kills.remove(key);
        let Some(pod) = self.pods.remove(key) else {
            return;
        };
        let name = pod.metadata.name.clone().unwrap_or_default();
        if launched_agent(&pod).is_some() && !is_terminal(pod.status.as_ref()) {
            // Deleted without waiting for its task (grace period 0): stop the task.
            self.kill(&name, launched_agent(&pod).cloned()).await;
        }
        self.tasks.remove(&name);
        self.sync_nodes().await;
    }

    /// A Pod being deleted: kill its task, or delete it at once when nothing runs.
    pub(super) async fn deleting(&mut self, key: &str) {
        let Some(pod) = self.pods.get(key) else {
            return;
        };
        let name = pod.metadata.name.clone().unwrap_or_default();
        let agent = launched_agent(pod).cloned();
        if agent.is_none() || is_terminal(pod.status.as_ref()) {
            if agent.is_none() && !self.on_virtual_node(pod) {
                return;
            }
            let api = pods_api(&self.ctx, pod);
            self.waiting.remove(key);
            match api
                .delete(&name, &DeleteParams::default().grace_period(0))
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(error) => tracing::warn!(pod = %key, %error, "cannot delete pod"),
            }
            return;
        }
        let due = self
            .kills
            .get(key)
            .is_none_or(|at| at.elapsed() >= self.config.kill_retry);
        if due {
            self.kills.insert(key.to_string(), Instant::now());
            self.kill(&name, agent).await;
        }
    }

    pub(super) async fn kill(&self, task_id: &str, agent_id: Option<String>) {
        let mut outcome = self.framework.kill(task_id).await;
        if let Err(FrameworkError::UnknownTask { .. }) = outcome {
            let _ = self
                .framework
                .track_task(task_id, agent_id.as_deref())
                .await;
            outcome = self.framework.kill(task_id).await;
        }
        if let Err(error) = outcome {
            tracing::warn!(task = %task_id, %error, "KILL failed; retried later");
        }
    }

    /// After a (re)start or subscription: every Pod launched earlier is reconciled.
    pub(super) async fn reconcile_launched(&mut self) {
        for pod in self.pods.values() {
            let Some(agent) = launched_agent(pod) else {
                continue;
            };
            if is_terminal(pod.status.as_ref()) {
                continue;
            }
            let name = pod.metadata.name.clone().unwrap_or_default();
            let _ = self.framework.track_task(&name, Some(agent)).await;
        }
        if self.subscribed
            && let Err(error) = self.framework.reconcile().await
        {
            tracing::warn!(%error, "reconciliation failed; the driver retries");
        }
    }

    // --- launches ---

    pub(super) async fn try_launch(&mut self) {
        if !self.subscribed || self.waiting.is_empty() {
            return;
        }
        let mut by_node: BTreeMap<String, Vec<(String, Instant)>> = BTreeMap::new();
        for (key, since) in &self.waiting {
            if let Some(node) = self.pods.get(key).and_then(node_of) {
                by_node
                    .entry(node.clone())
                    .or_default()
                    .push((key.clone(), *since));
            }
        }
        for (node, pods) in by_node {
            let Some(host) = self.hosts.get(&node) else {
                continue;
            };
            let newest = pods.iter().map(|(_, s)| *s).max();
            let gathered = newest.is_some_and(|s| s.elapsed() >= self.config.launch_delay);
            let host_name = host.host.clone();
            if host.offered.is_some() && gathered && self.readiness(host) == Readiness::Active {
                let keys = pods.into_iter().map(|(k, _)| k).collect();
                self.launch(&node, keys).await;
                continue;
            }
            for (key, since) in pods {
                if since.elapsed() >= self.config.launch_timeout {
                    let message = format!(
                        "no Mesos offer for host {host_name} within {:?}",
                        self.config.launch_timeout
                    );
                    self.fail(&key, TaskState::TaskLost, &message).await;
                }
            }
        }
    }

    pub(super) async fn launch(&mut self, node: &str, keys: Vec<String>) {
        let Some(host) = self.hosts.get(node) else {
            return;
        };
        let (host_name, offered) = (host.host.clone(), host.offered.unwrap_or_default());
        let agent_id = host.agent_id.clone().unwrap_or_default();
        let mut tasks: Vec<(String, TaskInfo)> = Vec::new();
        for key in keys {
            let Some(pod) = self.pods.get(&key) else {
                self.waiting.remove(&key);
                continue;
            };
            match task_info(pod, &offered) {
                Ok(task) => tasks.push((key, task)),
                Err(error) => {
                    let message = format!("cannot launch on Mesos: {error}");
                    self.fail(&key, TaskState::TaskFailed, &message).await;
                }
            }
        }
        let mut marked: Vec<(String, TaskInfo)> = Vec::new();
        for (key, task) in tasks {
            match self.annotate(&key, Some(&agent_id)).await {
                Ok(()) => marked.push((key, task)),
                Err(error) => {
                    tracing::warn!(pod = %key, %error, "cannot record the launch; not launched");
                    self.waiting.remove(&key);
                }
            }
        }
        if marked.is_empty() {
            return;
        }
        let infos: Vec<TaskInfo> = marked.iter().map(|(_, t)| t.clone()).collect();
        let outcome = self.framework.launch(&host_name, infos).await;
        SchedulerMetrics::count(&self.ctx.metrics.mesos_launches, outcome.is_ok());
        match outcome {
            Ok(()) => {
                tracing::info!(host = %host_name, tasks = marked.len(), "launched on Mesos");
                for (key, task) in &marked {
                    self.waiting.remove(key);
                    self.tasks.insert(task.task_id.value.clone(), key.clone());
                    if let Some(pod) = self.pods.get_mut(key) {
                        pod.metadata
                            .annotations
                            .get_or_insert_with(Default::default)
                            .insert(POD_AGENT_ID_ANNOTATION.to_string(), agent_id.clone());
                    }
                }
                if let Some(h) = self.hosts.get_mut(node) {
                    h.offered = None;
                }
                self.sync_nodes().await;
            }
            Err(
                error @ (FrameworkError::NoOffers { .. }
                | FrameworkError::NotSubscribed
                | FrameworkError::Stopped
                | FrameworkError::UnknownTask { .. }),
            ) => {
                tracing::info!(host = %host_name, %error, "not launched; waiting for offers");
                for (key, _) in &marked {
                    if let Err(error) = self.annotate(key, None).await {
                        tracing::warn!(pod = %key, %error, "cannot clear the launch record");
                    }
                }
            }
            Err(error @ FrameworkError::Status { .. }) => {
                let message = format!("launch refused by the Mesos master: {error}");
                for (key, _) in &marked {
                    self.fail(key, TaskState::TaskLost, &message).await;
                }
            }
            Err(error @ FrameworkError::Transport { .. }) => {
                // The master may have launched them: reconciliation will tell.
                tracing::warn!(host = %host_name, %error, "launch outcome unknown; reconciling");
                for (key, task) in &marked {
                    self.waiting.remove(key);
                    self.tasks.insert(task.task_id.value.clone(), key.clone());
                }
            }
        }
    }

    /// Sets or clears the launch record on a Pod.
    pub(super) async fn annotate(
        &self,
        key: &str,
        agent_id: Option<&str>,
    ) -> Result<(), kube::Error> {
        let Some(pod) = self.pods.get(key) else {
            return Ok(());
        };
        let name = pod.metadata.name.clone().unwrap_or_default();
        let patch = json!({"metadata": {"annotations": {POD_AGENT_ID_ANNOTATION: agent_id}}});
        pods_api(&self.ctx, pod)
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map(|_| ())
    }

    /// Fails a Pod that could not be launched, as Mesos would have reported it.
    pub(super) async fn fail(&mut self, key: &str, state: TaskState, message: &str) {
        self.waiting.remove(key);
        let Some(pod) = self.pods.get(key) else {
            return;
        };
        let name = pod.metadata.name.clone().unwrap_or_default();
        tracing::warn!(pod = %key, state = state.as_str(), %message, "pod fails without running");
        let update = StatusUpdate {
            task_id: name.clone(),
            agent_id: None,
            state,
            titus: None,
            reason: None,
            message: Some(message.to_string()),
            source: None,
            ack: None,
        };
        if let Some(status) = pod_status(&update, &image(pod), None, Timestamp::now()) {
            let patch = json!({"status": status});
            if let Err(error) = pods_api(&self.ctx, pod)
                .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                tracing::warn!(pod = %key, %error, "cannot write pod status");
            }
        }
    }

    // --- status updates ---

    pub(super) async fn on_update(&mut self, update: StatusUpdate) {
        self.ctx
            .metrics
            .mesos_updates
            .get_or_create(&StateLabel {
                state: update.state.as_str().to_string(),
            })
            .inc();
        let key = self
            .tasks
            .get(&update.task_id)
            .cloned()
            .filter(|k| self.pods.contains_key(k));
        let Some(key) = key else {
            if !update.state.is_terminal() {
                tracing::warn!(task = %update.task_id, "update for a task no pod knows; killing it");
                self.kill(&update.task_id, update.agent_id.clone()).await;
            }
            self.acknowledge(&update).await;
            return;
        };
        let Some(pod) = self.pods.get(&key) else {
            return;
        };
        if is_terminal(pod.status.as_ref()) {
            if !update.state.is_terminal() {
                // Titus: a task already finished must not come back (TASK_LOST then RUNNING).
                self.kill(&update.task_id, update.agent_id.clone()).await;
            }
            self.acknowledge(&update).await;
            return;
        }
        let started = pod
            .status
            .as_ref()
            .and_then(|s| s.start_time.as_ref())
            .map(|t| t.0);
        let Some(desired) = pod_status(
            &update,
            &image(pod),
            started.or(Some(Timestamp::now())),
            Timestamp::now(),
        ) else {
            self.acknowledge(&update).await;
            return;
        };
        if same_report(pod.status.as_ref(), &desired) {
            self.acknowledge(&update).await;
            return;
        }
        let name = pod.metadata.name.clone().unwrap_or_default();
        let api = pods_api(&self.ctx, pod);
        let patch = json!({"status": desired});
        match api
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(written) => {
                self.acknowledge(&update).await;
                let deleting = written.metadata.deletion_timestamp.is_some();
                self.pods.insert(key.clone(), written);
                if update.state.is_terminal() {
                    self.sync_nodes().await;
                    if deleting {
                        self.deleting(&key).await;
                    }
                }
            }
            Err(kube::Error::Api(s)) if s.code == 404 => self.acknowledge(&update).await,
            Err(error) => {
                // Not recorded: no ACK, so the agent sends the update again.
                tracing::warn!(pod = %key, %error, "cannot record task status");
            }
        }
    }

    pub(super) async fn acknowledge(&self, update: &StatusUpdate) {
        if let Some(token) = update.ack.clone()
            && let Err(error) = self.framework.acknowledge(token).await
        {
            tracing::warn!(task = %update.task_id, %error, "ACKNOWLEDGE failed");
        }
    }
}
