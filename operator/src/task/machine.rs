//! The Titus task state machine over a task's pod (titus-semantics §4.2-§4.5, §10.6). Pure:
//! [`next`] maps the task, the facts of its pod, node and job, and the time to a [`Transition`]:
//! the status to record (forward-only, with `filledIn` entries and de-duplication), what to do to
//! the pod, and when to look again (timeouts, runtime limit, node-lost timer).
//!
//! Rules, in the order they apply:
//! 1. `Finished` is absorbing; a pod left behind is deleted.
//! 2. No pod: create it (`Accepted/podCreated` once it exists; `Finished` classified as
//!    `invalidRequest` by default if the create is refused). A pod that existed and is gone:
//!    `Finished/killed` ("Container was terminated without going through the Titus API" when no
//!    kill was asked).
//! 3. A terminal pod: `Finished` — `normal` (Succeeded), `failed`, `killed` after a kill, or what
//!    the agent's reason (`TASK_CRASHED`, `TASK_LOST`, `TASK_KILLED`) and the message patterns say.
//! 4. Node not reporting (its Lease not renewed within the timeout): `Disconnected`, then
//!    `Finished/lost` after the lost timeout with the pod force-deleted. A kill on such a node
//!    force-deletes at once.
//! 5. `spec.killRequest`: `KillInitiated` with the request's reason; the pod is deleted with the
//!    task's grace period. A pod deleted behind the API's back: `KillInitiated/killed`.
//! 6. Pod facts: `Running` -> `Started`; bound and the container waiting with `TASK_STARTING` ->
//!    `StartInitiated`; bound otherwise -> `Launched` (reason the pod's, else `podScheduled`).
//! 7. Timeouts: `Launched` 5 min and `StartInitiated` 12 min (batch) / 5 min (service) ->
//!    `KillInitiated/stuckInState`; batch `Started` beyond `runtimeLimitSec` ->
//!    `KillInitiated/runtimeLimitExceeded`; `KillInitiated` 10 min -> kill again
//!    (`stuckInKillingState`), after 2 attempts `Finished/stuckInKillingState`.

use titus_crds::common::{StatusEntry, condition, condition_status, set_condition};
use titus_crds::constants::{conditions, events, task_context};
use titus_crds::task::{TaskStatusEntry, TitusTaskStatus};
use titus_crds::{JobType, TaskReasonCode, TaskState, TitusTask};

use super::classify::ReasonPatterns;
use super::facts::{
    ContainerFacts, JobFacts, NodeFacts, PodFacts, TASK_CRASHED, TASK_KILLED, TASK_LOST,
    TASK_STARTING,
};
use crate::clock::{human_ms, ms_of_time};
use crate::job::retry::retry_delay;

/// Message of a task whose pod vanished without a kill.
pub const TERMINATED_OUTSIDE_API: &str =
    "Container was terminated without going through the Titus API";
/// Titus's default reason message.
pub const NOT_GIVEN: &str = "<not_given>";

/// Timeouts and classification of the task controller.
#[derive(Clone, Debug)]
pub struct TaskTimeouts {
    /// `Launched` longer than this: `stuckInState` (5 min).
    pub launched_ms: u64,
    /// Batch `StartInitiated` longer than this: `stuckInState` (12 min).
    pub start_initiated_batch_ms: u64,
    /// Service `StartInitiated` longer than this: `stuckInState` (5 min).
    pub start_initiated_service_ms: u64,
    /// `KillInitiated` longer than this: kill again (10 min).
    pub kill_initiated_ms: u64,
    /// Kill attempts after which a task stuck in `KillInitiated` is forced `Finished` (2).
    pub kill_attempts: u32,
    /// A node whose Lease was not renewed for this long is not reporting (40 s).
    pub node_lease_ms: u64,
    /// `Disconnected` longer than this: `Finished/lost` (10 min).
    pub lost_ms: u64,
    /// Message patterns that refine a final reason.
    pub patterns: ReasonPatterns,
}

impl Default for TaskTimeouts {
    fn default() -> Self {
        Self {
            launched_ms: 300_000,
            start_initiated_batch_ms: 720_000,
            start_initiated_service_ms: 300_000,
            kill_initiated_ms: 600_000,
            kill_attempts: 2,
            node_lease_ms: 40_000,
            lost_ms: 600_000,
            patterns: ReasonPatterns::default(),
        }
    }
}

/// What to do to the pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PodAction {
    /// Nothing.
    Keep,
    /// Create it; then record [`pod_created`] or [`pod_create_failed`] on top of
    /// [`Transition::status`] (not written before the create).
    Create,
    /// Delete it with this grace period (after recording the status).
    Delete {
        /// Seconds; 0 forces.
        grace_period_seconds: i64,
    },
}

/// An Event about the task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskEvent {
    /// Reason.
    pub reason: &'static str,
    /// Message.
    pub note: String,
    /// Warning rather than normal.
    pub warning: bool,
}

/// The outcome of [`next`].
#[derive(Clone, Debug, PartialEq)]
pub struct Transition {
    /// The status to record, when it changed.
    pub status: Option<TitusTaskStatus>,
    /// What to do to the pod.
    pub pod: PodAction,
    /// When to look again although nothing changes.
    pub recheck_at: Option<u64>,
    /// Events to publish.
    pub events: Vec<TaskEvent>,
}

/// Event reason: the task's node stopped reporting.
pub const NODE_NOT_REPORTING: &str = "NodeNotReporting";
/// Event reason: the task was lost with its node.
pub const TASK_LOST_EVENT: &str = "TaskLost";

/// A status being built.
struct Draft<'a> {
    status: TitusTaskStatus,
    changed: bool,
    events: Vec<TaskEvent>,
    job: &'a JobFacts,
    back_off_ms: u64,
}

impl Draft<'_> {
    fn push(&mut self, state: TaskState, reason: TaskReasonCode, message: &str, at: u64) -> bool {
        if self.status.state == TaskState::Disconnected && state != TaskState::Finished {
            // Leaving Disconnected may not go back behind where the task had been.
            let before = last_ranked(&self.status).rank();
            if state.rank() < before && state != TaskState::KillInitiated {
                return false;
            }
        }
        let applied = self.status.apply(StatusEntry {
            state,
            reason_code: reason,
            reason_message: message.to_string(),
            timestamp: at,
        });
        self.changed |= applied;
        applied
    }

    fn context(&mut self, key: &str, value: &str) {
        if self.status.task_context.get(key).map(String::as_str) != Some(value) {
            self.status
                .task_context
                .insert(key.to_string(), value.to_string());
            self.changed = true;
        }
    }

    fn event(&mut self, reason: &'static str, note: String, warning: bool) {
        self.events.push(TaskEvent {
            reason,
            note,
            warning,
        });
    }

    /// `Finished` with `reason`, plus the retry delay Titus shows on finished attempts.
    fn finish(&mut self, reason: TaskReasonCode, message: &str, now: u64) {
        let normal = reason == TaskReasonCode::Normal;
        let code = reason.to_string();
        if !self.push(TaskState::Finished, reason, message, now) {
            return;
        }
        self.status.finished_at = Some(now);
        if !normal {
            let started_for = self.status.started_at.map(|s| now.saturating_sub(s));
            let delay = retry_delay(self.job.retry, self.back_off_ms, started_for);
            self.status.retry_delay_ms = Some(delay.delay_ms);
            self.status.retry_at = Some(now.saturating_add(delay.delay_ms));
            let text = human_ms(delay.delay_ms);
            self.context(task_context::RETRY_DELAY, &text);
            self.event(
                events::TASK_FINISHED,
                format!("Finished/{code}: {message}"),
                true,
            );
        }
    }

    /// Inserts the states between the current one and `target` that are missing, as `filledIn`.
    fn fill_in(&mut self, target: TaskState, at: u64) {
        let Some(target_rank) = target.rank() else {
            return;
        };
        for state in [
            TaskState::Launched,
            TaskState::StartInitiated,
            TaskState::Started,
        ] {
            let rank = state.rank().unwrap_or(0);
            if rank < target_rank && last_ranked(&self.status).rank() < Some(rank) {
                self.push(state, TaskReasonCode::FilledIn, "", at);
            }
        }
    }

    fn into_transition(self, pod: PodAction, recheck_at: Option<u64>) -> Transition {
        Transition {
            status: self.changed.then_some(self.status),
            pod,
            recheck_at,
            events: self.events,
        }
    }
}

/// The latest comparable state in the task's history (skipping `Disconnected`).
fn last_ranked(status: &TitusTaskStatus) -> TaskState {
    std::iter::once(status.state)
        .chain(status.status_history.iter().rev().map(|e| e.state))
        .find(|s| s.rank().is_some())
        .unwrap_or(TaskState::Accepted)
}

/// Whether the task ever entered `KillInitiated`.
pub fn kill_initiated(status: &TitusTaskStatus) -> bool {
    status.state == TaskState::KillInitiated
        || status
            .status_history
            .iter()
            .any(|e| e.state == TaskState::KillInitiated)
}

fn first_kill_reason(status: &TitusTaskStatus) -> Option<TaskReasonCode> {
    status
        .status_history
        .iter()
        .chain(std::iter::once(&status.current()))
        .find(|e| e.state == TaskState::KillInitiated)
        .map(|e| e.reason_code.clone())
}

/// Whether the task's pod was ever created (so its absence means it is gone).
pub fn pod_was_created(status: &TitusTaskStatus) -> bool {
    status
        .task_context
        .get(task_context::POD_CREATED)
        .is_some_and(|v| v == "true")
        || last_ranked(status).rank() > TaskState::Accepted.rank()
}

/// The `Finished` reason after a kill: `killed`, or `transientSystemError` when the kill was for
/// `stuckInState` (a system error, always retried).
fn reason_after_kill(status: &TitusTaskStatus) -> TaskReasonCode {
    if first_kill_reason(status) == Some(TaskReasonCode::StuckInState) {
        TaskReasonCode::TransientSystemError
    } else {
        TaskReasonCode::Killed
    }
}

/// Decides what happens to `task` now.
pub fn next(
    task: &TitusTask,
    job: &JobFacts,
    pod: Option<&PodFacts>,
    node: Option<&NodeFacts>,
    now: u64,
    cfg: &TaskTimeouts,
) -> Transition {
    let mut d = Draft {
        status: task.status.clone().unwrap_or_default(),
        changed: false,
        events: Vec::new(),
        job,
        back_off_ms: task.spec.back_off_delay_ms,
    };
    if d.status.timestamp == 0 {
        let created = task
            .metadata
            .creation_timestamp
            .as_ref()
            .map_or(now, ms_of_time);
        d.push(TaskState::Accepted, TaskReasonCode::Normal, "", created);
        for (key, value) in &job.context {
            d.context(key, value);
        }
    }
    if d.status.state == TaskState::Finished {
        let pod_action = match pod {
            Some(p) if !p.deleting || p.deletion_grace_seconds.is_some_and(|g| g > 0) => {
                PodAction::Delete {
                    grace_period_seconds: 0,
                }
            }
            Some(_) | None => PodAction::Keep,
        };
        return d.into_transition(pod_action, None);
    }
    let Some(pod) = pod else {
        return without_pod(task, d, now);
    };
    observe_pod(&mut d, task, pod, node, now);
    if pod.is_terminal() {
        finish_from_pod(&mut d, pod, now, cfg);
        return d.into_transition(
            PodAction::Delete {
                grace_period_seconds: 0,
            },
            None,
        );
    }
    let killing = kill_initiated(&d.status);
    if let Some(node) = node.filter(|n| pod.is_bound() && !n.is_reporting(now, cfg.node_lease_ms)) {
        return node_not_reporting(task, d, pod, node, killing, now, cfg);
    }
    let reporting_until = node
        .filter(|_| pod.is_bound())
        .and_then(|n| n.reporting_until(cfg.node_lease_ms));
    if let Some(request) = task.spec.kill_request.as_ref().filter(|_| !killing) {
        let message = kill_message(request);
        d.push(
            TaskState::KillInitiated,
            request.reason.reason_code(),
            &message,
            now,
        );
        if request.requested_by != crate::job::REQUESTED_BY {
            // The job controller's own kills (KillJob, scale-down) have their job Events.
            d.event(events::TASK_KILL_REQUESTED, message, false);
        }
        let grace = if pod.is_bound() {
            pod.grace_period_seconds
        } else {
            0
        };
        return d.into_transition(
            PodAction::Delete {
                grace_period_seconds: grace,
            },
            Some(now.saturating_add(cfg.kill_initiated_ms)),
        );
    }
    if pod.deleting && !killing {
        d.push(
            TaskState::KillInitiated,
            TaskReasonCode::Killed,
            TERMINATED_OUTSIDE_API,
            now,
        );
        return d.into_transition(
            PodAction::Keep,
            Some(now.saturating_add(cfg.kill_initiated_ms)),
        );
    }
    follow_pod(&mut d, pod, now);
    let (action, recheck) = timeouts(&mut d, pod, now, cfg);
    let recheck = match (recheck, reporting_until) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    d.into_transition(action, recheck)
}

fn kill_message(request: &titus_crds::TaskKillRequest) -> String {
    match (request.message.is_empty(), request.requested_by.is_empty()) {
        (false, _) => request.message.clone(),
        (true, false) => format!("Killed by {}", request.requested_by),
        (true, true) => "Task killed".into(),
    }
}

/// Rule 2: no pod.
fn without_pod(task: &TitusTask, mut d: Draft<'_>, now: u64) -> Transition {
    if pod_was_created(&d.status) {
        if kill_initiated(&d.status) {
            let reason = reason_after_kill(&d.status);
            let message = d.status.reason_message.clone();
            d.finish(reason, &message, now);
        } else {
            d.finish(TaskReasonCode::Killed, TERMINATED_OUTSIDE_API, now);
        }
        return d.into_transition(PodAction::Keep, None);
    }
    if let Some(request) = &task.spec.kill_request {
        let message = kill_message(request);
        d.push(
            TaskState::KillInitiated,
            request.reason.reason_code(),
            &message,
            now,
        );
        d.finish(TaskReasonCode::Killed, &message, now);
        return d.into_transition(PodAction::Keep, None);
    }
    d.into_transition(PodAction::Create, None)
}

/// Records what the pod and node say that is not a state: `podCreated`, node name, context,
/// the mirrored `PodScheduled=False` condition.
fn observe_pod(
    d: &mut Draft<'_>,
    task: &TitusTask,
    pod: &PodFacts,
    node: Option<&NodeFacts>,
    now: u64,
) {
    if !pod_was_created(&d.status) {
        let at = d.status.timestamp;
        d.push(TaskState::Accepted, TaskReasonCode::PodCreated, "", at);
        d.context(task_context::POD_CREATED, "true");
    }
    let name = task.metadata.name.clone().unwrap_or_default();
    if d.status.pod_name != name {
        d.status.pod_name = name;
        d.changed = true;
    }
    if pod.is_bound() && d.status.node_name != pod.node_name {
        d.status.node_name = pod.node_name.clone();
        d.changed = true;
    }
    for (key, value) in &pod.context {
        d.context(key, value);
    }
    if let Some(node) = node.filter(|_| pod.is_bound()) {
        for (key, value) in &node.context {
            d.context(key, value);
        }
    }
    let generation = task.metadata.generation;
    let at = now;
    let wanted = match (&pod.unschedulable, pod.is_bound()) {
        (Some((reason, message)), false) => Some(condition(
            conditions::UNSCHEDULABLE,
            condition_status::TRUE,
            reason,
            message.clone(),
            generation,
            at,
        )),
        (_, true) | (None, false) => {
            titus_crds::common::find_condition(&d.status.conditions, conditions::UNSCHEDULABLE)
                .filter(|c| c.status == condition_status::TRUE)
                .map(|_| {
                    condition(
                        conditions::UNSCHEDULABLE,
                        condition_status::FALSE,
                        "Scheduled",
                        format!("pod bound to {}", pod.node_name),
                        generation,
                        at,
                    )
                })
        }
    };
    if let Some(c) = wanted {
        d.changed |= set_condition(&mut d.status.conditions, c);
    }
}

/// Rule 3: the pod ended.
fn finish_from_pod(d: &mut Draft<'_>, pod: &PodFacts, now: u64, cfg: &TaskTimeouts) {
    let started_at = pod.container_started_at();
    let was_started =
        last_ranked(&d.status).rank() >= TaskState::Started.rank() || started_at.is_some();
    match started_at {
        Some(at) => {
            d.fill_in(TaskState::Finished, at);
            if d.status.started_at.is_none() {
                d.status.started_at = Some(at);
            }
        }
        None if pod.is_bound() && last_ranked(&d.status).rank() < TaskState::Launched.rank() => {
            d.push(TaskState::Launched, TaskReasonCode::FilledIn, "", now);
        }
        None => {}
    }
    let message = final_message(pod);
    let reason = if kill_initiated(&d.status) || pod.deleting {
        reason_after_kill(&d.status)
    } else if pod.phase == "Succeeded" {
        TaskReasonCode::Normal
    } else {
        let base = match pod.reason.as_str() {
            TASK_CRASHED if !was_started => TaskReasonCode::LocalSystemError,
            TASK_LOST => TaskReasonCode::Lost,
            TASK_KILLED => TaskReasonCode::Killed,
            _ => TaskReasonCode::Failed,
        };
        cfg.patterns.classify(&message).unwrap_or(base)
    };
    d.finish(reason, &message, now);
}

/// The message of a terminal pod: the agent's message, else the container's, else the exit code.
fn final_message(pod: &PodFacts) -> String {
    if !pod.message.is_empty() {
        return pod.message.clone();
    }
    match &pod.container {
        ContainerFacts::Terminated { message, .. } if !message.is_empty() => message.clone(),
        ContainerFacts::Terminated { exit_code, .. } => format!("exited with code {exit_code}"),
        ContainerFacts::Unknown
        | ContainerFacts::Waiting { .. }
        | ContainerFacts::Running { .. } => NOT_GIVEN.into(),
    }
}

/// Rule 4: the pod's node does not report.
fn node_not_reporting(
    task: &TitusTask,
    mut d: Draft<'_>,
    pod: &PodFacts,
    node: &NodeFacts,
    killing: bool,
    now: u64,
    cfg: &TaskTimeouts,
) -> Transition {
    let force = PodAction::Delete {
        grace_period_seconds: 0,
    };
    let forced = pod.deleting && pod.deletion_grace_seconds == Some(0);
    if let Some(request) = task.spec.kill_request.as_ref().filter(|_| !killing) {
        let message = kill_message(request);
        d.push(
            TaskState::KillInitiated,
            request.reason.reason_code(),
            &message,
            now,
        );
        return d.into_transition(force, None);
    }
    if killing {
        // Nobody will finish a graceful deletion on a silent node.
        let action = if forced { PodAction::Keep } else { force };
        return d.into_transition(action, None);
    }
    if d.status.state != TaskState::Disconnected {
        let message = format!(
            "node {} is not reporting (lease not renewed for {}s)",
            node.name,
            cfg.node_lease_ms / 1000
        );
        d.push(
            TaskState::Disconnected,
            TaskReasonCode::Unknown,
            &message,
            now,
        );
        d.event(NODE_NOT_REPORTING, message, true);
        return d.into_transition(PodAction::Keep, Some(now.saturating_add(cfg.lost_ms)));
    }
    let lost_at = d.status.timestamp.saturating_add(cfg.lost_ms);
    if now < lost_at {
        return d.into_transition(PodAction::Keep, Some(lost_at));
    }
    let message = format!(
        "node {} stopped reporting; task lost after {}",
        node.name,
        human_ms(cfg.lost_ms)
    );
    d.event(TASK_LOST_EVENT, message.clone(), true);
    d.finish(TaskReasonCode::Lost, &message, now);
    let action = if forced { PodAction::Keep } else { force };
    d.into_transition(action, None)
}

/// Rule 6: the state the live pod shows.
fn follow_pod(d: &mut Draft<'_>, pod: &PodFacts, now: u64) {
    if pod.phase == "Running" {
        let at = pod.container_started_at().unwrap_or(now);
        d.fill_in(TaskState::Started, at);
        if d.push(TaskState::Started, TaskReasonCode::Normal, "", at) {
            d.status.started_at = Some(at);
        }
        return;
    }
    if !pod.is_bound() {
        return;
    }
    if pod.container.is_waiting() && pod.reason == TASK_STARTING {
        d.push(
            TaskState::StartInitiated,
            TaskReasonCode::Other(TASK_STARTING.into()),
            &pod.message,
            now,
        );
    } else {
        let reason = if pod.reason.is_empty() {
            TaskReasonCode::PodScheduled
        } else {
            TaskReasonCode::parse(&pod.reason)
        };
        d.push(TaskState::Launched, reason, &pod.message, now);
    }
}

/// Why a state timed out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Timeout {
    /// `Launched`/`StartInitiated` for too long.
    Stuck,
    /// A batch attempt ran longer than its runtime limit.
    RuntimeLimit,
}

/// Rule 7: timeouts of the current state. Returns the pod action and the next deadline.
fn timeouts(
    d: &mut Draft<'_>,
    pod: &PodFacts,
    now: u64,
    cfg: &TaskTimeouts,
) -> (PodAction, Option<u64>) {
    let since = d.status.timestamp;
    let grace = PodAction::Delete {
        grace_period_seconds: pod.grace_period_seconds,
    };
    let (deadline, kill) = match d.status.state {
        TaskState::Launched => (since.saturating_add(cfg.launched_ms), Timeout::Stuck),
        TaskState::StartInitiated => {
            let limit = match d.job.job_type {
                JobType::Batch => cfg.start_initiated_batch_ms,
                JobType::Service => cfg.start_initiated_service_ms,
            };
            (since.saturating_add(limit), Timeout::Stuck)
        }
        TaskState::Started => match (d.job.job_type, d.job.runtime_limit_ms) {
            (JobType::Batch, Some(limit)) => (
                d.status.started_at.unwrap_or(since).saturating_add(limit),
                Timeout::RuntimeLimit,
            ),
            (JobType::Batch, None) | (JobType::Service, _) => return (PodAction::Keep, None),
        },
        TaskState::KillInitiated => {
            let deadline = since.saturating_add(cfg.kill_initiated_ms);
            if now < deadline {
                // A kill whose delete was lost (crash between status and delete) is re-issued.
                let action = if pod.deleting { PodAction::Keep } else { grace };
                return (action, Some(deadline));
            }
            return stuck_killing(d, pod, now, cfg);
        }
        TaskState::Accepted | TaskState::Disconnected | TaskState::Finished => {
            return (PodAction::Keep, None);
        }
    };
    if now < deadline {
        return (PodAction::Keep, Some(deadline));
    }
    let (reason, event, message) = match kill {
        Timeout::RuntimeLimit => (
            TaskReasonCode::RuntimeLimitExceeded,
            events::RUNTIME_LIMIT_EXCEEDED,
            format!(
                "Task running too long (runtimeLimit={}ms)",
                d.job.runtime_limit_ms.unwrap_or_default()
            ),
        ),
        Timeout::Stuck => (
            TaskReasonCode::StuckInState,
            events::STUCK_IN_STATE,
            format!(
                "Task stuck in {} state for {}",
                d.status.state,
                human_ms(now.saturating_sub(since))
            ),
        ),
    };
    d.event(event, message.clone(), true);
    d.push(TaskState::KillInitiated, reason, &message, now);
    (grace, Some(now.saturating_add(cfg.kill_initiated_ms)))
}

/// `KillInitiated` timed out: kill again, or after the last attempt force `Finished`.
fn stuck_killing(
    d: &mut Draft<'_>,
    pod: &PodFacts,
    now: u64,
    cfg: &TaskTimeouts,
) -> (PodAction, Option<u64>) {
    let attempts = std::iter::once(&d.status.current())
        .chain(d.status.status_history.iter())
        .filter(|e: &&TaskStatusEntry| {
            e.state == TaskState::KillInitiated
                && e.reason_code == TaskReasonCode::StuckInKillingState
        })
        .count() as u32;
    if attempts < cfg.kill_attempts {
        let message = format!("Task stuck in KillInitiated; kill attempt {}", attempts + 2);
        d.event(events::STUCK_IN_STATE, message.clone(), true);
        d.push(
            TaskState::KillInitiated,
            TaskReasonCode::StuckInKillingState,
            &message,
            now,
        );
        return (
            PodAction::Delete {
                grace_period_seconds: pod.grace_period_seconds,
            },
            Some(now.saturating_add(cfg.kill_initiated_ms)),
        );
    }
    d.finish(
        TaskReasonCode::StuckInKillingState,
        "Task did not stop after repeated kills",
        now,
    );
    (
        PodAction::Delete {
            grace_period_seconds: 0,
        },
        None,
    )
}

/// The status after the pod was created: `Accepted/podCreated` and `kube.podCreated`.
pub fn pod_created(base: &TitusTaskStatus, task: &TitusTask) -> TitusTaskStatus {
    let mut status = base.clone();
    let at = status.timestamp;
    status.apply(StatusEntry {
        state: TaskState::Accepted,
        reason_code: TaskReasonCode::PodCreated,
        reason_message: String::new(),
        timestamp: at,
    });
    status
        .task_context
        .insert(task_context::POD_CREATED.into(), "true".into());
    status.pod_name = task.metadata.name.clone().unwrap_or_default();
    status
}

/// The status after the pod create was refused: `Finished`, reason from the message patterns
/// (`invalidRequest` by default, `unknownSystemError` without a message).
pub fn pod_create_failed(
    base: &TitusTaskStatus,
    task: &TitusTask,
    job: &JobFacts,
    error: &str,
    now: u64,
    cfg: &TaskTimeouts,
) -> (TitusTaskStatus, Vec<TaskEvent>) {
    let mut d = Draft {
        status: base.clone(),
        changed: false,
        events: Vec::new(),
        job,
        back_off_ms: task.spec.back_off_delay_ms,
    };
    let reason = if error.trim().is_empty() {
        TaskReasonCode::UnknownSystemError
    } else {
        cfg.patterns
            .classify(error)
            .unwrap_or(TaskReasonCode::InvalidRequest)
    };
    let message = format!("Failed to create pod: {error}");
    d.event(events::POD_CREATE_FAILED, message.clone(), true);
    d.finish(reason, &message, now);
    (d.status, d.events)
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
