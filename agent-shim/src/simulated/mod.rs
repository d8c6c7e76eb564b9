//! [`ContainerRuntime`] without containers, for scale tests: each container is a small state
//! machine whose timings and outcomes come from Titus's mock-agent annotations (see
//! [`behavior`]). One process can run many thousands of them: a container costs one tokio task
//! parked on tokio's timer wheel and two watch channels, no thread and no process.
//!
//! Lifecycle: created → (prepare delay) → running → (run delay) → exited with the run status; a
//! stop request sent while running ends it after the kill delay with 143 (SIGTERM honoured), or
//! after the grace period with 137 when the kill delay is longer (SIGKILL). Deterministic under
//! `tokio::time::pause`: timestamps are `epoch + elapsed tokio time`.

pub mod behavior;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tokio::sync::watch;
use tokio::time::Instant;

pub use self::behavior::{Behavior, SimulatedStatus};
use crate::labels;
use crate::runtime::{
    ContainerHandle, ContainerId, ContainerRuntime, ContainerSpec, ContainerState, ExitStatus,
    ImageConfig, ImageInfo, ManagedContainer, RegistryAuth, RuntimeError, TerminationReason,
};

/// Exit code of a simulated failure.
pub const FAILED_EXIT_CODE: i32 = 1;
/// Exit code after a honoured SIGTERM.
pub const SIGTERM_EXIT_CODE: i32 = 128 + 15;
/// Exit code after SIGKILL.
pub const SIGKILL_EXIT_CODE: i32 = 128 + 9;

/// Configuration of a simulated runtime.
#[derive(Debug, Clone)]
pub struct SimulatedConfig {
    /// Prepare step when the container has no prepare annotation.
    pub default_prepare: Behavior,
    /// Run step when the container has no run annotation.
    pub default_run: Behavior,
    /// Kill step when the container has no kill annotation.
    pub default_kill: Behavior,
    /// Image references the simulated registry does not have.
    pub missing_images: BTreeSet<String>,
    /// Wall-clock time reported for the runtime's creation; later times add tokio's elapsed time.
    pub epoch: Timestamp,
}

impl Default for SimulatedConfig {
    fn default() -> Self {
        Self {
            default_prepare: Behavior::default_prepare(),
            default_run: Behavior::default_run(),
            default_kill: Behavior::default_kill(),
            missing_images: BTreeSet::new(),
            epoch: Timestamp::UNIX_EPOCH,
        }
    }
}

/// What the simulated registry serves for any image: `CMD /bin/true`.
fn simulated_image(image: &str) -> ImageInfo {
    ImageInfo {
        reference: image.to_owned(),
        digest: crate::containerd::sha256_digest(image.as_bytes()),
        config: ImageConfig {
            cmd: vec!["/bin/true".into()],
            env: vec!["PATH=/bin".into()],
            ..ImageConfig::default()
        },
    }
}

/// One simulated container.
struct Simulated {
    image: String,
    labels: BTreeMap<String, String>,
    state: watch::Receiver<ContainerState>,
    /// `Some(grace)` once a stop was requested.
    stop: watch::Sender<Option<Duration>>,
    task: tokio::task::AbortHandle,
}

/// The simulated runtime.
pub struct SimulatedRuntime {
    config: SimulatedConfig,
    start: Instant,
    pulled: Mutex<BTreeSet<String>>,
    containers: Mutex<HashMap<ContainerId, Simulated>>,
}

impl std::fmt::Debug for SimulatedRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatedRuntime")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Drop for SimulatedRuntime {
    fn drop(&mut self) {
        if let Ok(containers) = self.containers.lock() {
            for c in containers.values() {
                c.task.abort();
            }
        }
    }
}

/// Turns tokio time into timestamps.
#[derive(Clone, Copy)]
struct Clock {
    epoch: Timestamp,
    start: Instant,
}

impl Clock {
    fn now(self) -> Timestamp {
        let elapsed = SignedDuration::try_from(self.start.elapsed()).unwrap_or(SignedDuration::MAX);
        self.epoch.checked_add(elapsed).unwrap_or(self.epoch)
    }
}

/// The three steps of one container.
struct Plan {
    id: String,
    prepare: Behavior,
    run: Behavior,
    kill: Behavior,
}

impl Plan {
    fn from_spec(spec: &ContainerSpec, config: &SimulatedConfig) -> Self {
        let annotation = |key| spec.annotations.get(key).map(String::as_str);
        Self {
            id: spec.id.to_string(),
            prepare: Behavior::from_annotation(
                annotation(labels::MOCK_PREPARE_TIME),
                config.default_prepare.clone(),
            ),
            run: Behavior::from_annotation(
                annotation(labels::MOCK_RUN_TIME),
                config.default_run.clone(),
            ),
            kill: Behavior::from_annotation(
                annotation(labels::MOCK_KILL_TIME),
                config.default_kill.clone(),
            ),
        }
    }
}

/// Exit of a step that ended with `status`.
fn exit_for(
    status: SimulatedStatus,
    started_at: Option<Timestamp>,
    now: Timestamp,
    message: &str,
) -> ExitStatus {
    let code = match status {
        SimulatedStatus::Failed => FAILED_EXIT_CODE,
        SimulatedStatus::Unknown | SimulatedStatus::Running | SimulatedStatus::Finished => 0,
    };
    ExitStatus {
        code,
        started_at,
        finished_at: now,
        oom_killed: false,
        reason: TerminationReason::classify(code, false, false),
        message: message.to_owned(),
    }
}

/// Waits for a stop request; never returns if none comes.
async fn stop_requested(stop: &mut watch::Receiver<Option<Duration>>) -> Duration {
    let grace = stop
        .wait_for(Option::is_some)
        .await
        .map(|grace| grace.unwrap_or_default());
    match grace {
        Ok(grace) => grace,
        // The runtime dropped the sender: nobody will ever stop this container.
        Err(_) => std::future::pending().await,
    }
}

/// The whole life of one container.
async fn lifecycle(
    plan: Plan,
    clock: Clock,
    state: watch::Sender<ContainerState>,
    mut stop: watch::Receiver<Option<Duration>>,
) {
    let killed = |grace: Duration, kill: &Behavior, started_at| {
        let kill_delay = kill.delay_for(&plan.id);
        let (after, code) = if kill_delay <= grace {
            (kill_delay, SIGTERM_EXIT_CODE)
        } else {
            (grace, SIGKILL_EXIT_CODE)
        };
        (after, code, started_at)
    };
    let stopped = tokio::select! {
        () = tokio::time::sleep(plan.prepare.delay_for(&plan.id)) => None,
        grace = stop_requested(&mut stop) => Some(killed(grace, &plan.kill, None)),
    };
    let stopped = match stopped {
        Some(stopped) => stopped,
        None if plan.prepare.status == SimulatedStatus::Failed => {
            let exit = exit_for(
                SimulatedStatus::Failed,
                None,
                clock.now(),
                &plan.prepare.message,
            );
            state.send_replace(ContainerState::Exited(exit));
            return;
        }
        None => {
            let started_at = clock.now();
            state.send_replace(ContainerState::Running {
                started_at,
                pid: None,
            });
            let run_delay = plan.run.delay_for(&plan.id);
            let runs_forever = plan.run.status == SimulatedStatus::Running;
            tokio::select! {
                () = tokio::time::sleep(run_delay), if !runs_forever => {
                    let exit = exit_for(plan.run.status, Some(started_at), clock.now(), &plan.run.message);
                    state.send_replace(ContainerState::Exited(exit));
                    return;
                }
                grace = stop_requested(&mut stop) => killed(grace, &plan.kill, Some(started_at)),
            }
        }
    };
    let (after, code, started_at) = stopped;
    tokio::time::sleep(after).await;
    state.send_replace(ContainerState::Exited(ExitStatus {
        code,
        started_at,
        finished_at: clock.now(),
        oom_killed: false,
        reason: TerminationReason::Killed,
        message: plan.kill.message.clone(),
    }));
}

impl SimulatedRuntime {
    /// A simulated runtime. Must be called inside a tokio runtime.
    pub fn new(config: SimulatedConfig) -> Self {
        Self {
            config,
            start: Instant::now(),
            pulled: Mutex::default(),
            containers: Mutex::default(),
        }
    }

    fn clock(&self) -> Clock {
        Clock {
            epoch: self.config.epoch,
            start: self.start,
        }
    }

    /// Number of containers it holds (any state).
    pub fn len(&self) -> usize {
        self.containers.lock().map(|c| c.len()).unwrap_or(0)
    }

    /// Whether it holds no container.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn receiver(&self, id: &ContainerId) -> Result<watch::Receiver<ContainerState>, RuntimeError> {
        self.containers
            .lock()
            .ok()
            .and_then(|c| c.get(id).map(|c| c.state.clone()))
            .ok_or_else(|| RuntimeError::ContainerNotFound { id: id.clone() })
    }

    async fn exited(
        id: &ContainerId,
        mut rx: watch::Receiver<ContainerState>,
    ) -> Result<ExitStatus, RuntimeError> {
        let state = rx
            .wait_for(|s| matches!(s, ContainerState::Exited(_)))
            .await
            .map_err(|_| RuntimeError::ContainerNotFound { id: id.clone() })?;
        match &*state {
            ContainerState::Exited(exit) => Ok(exit.clone()),
            ContainerState::Created | ContainerState::Running { .. } => {
                Err(RuntimeError::WaitFailed {
                    id: id.clone(),
                    reason: "state changed back from exited".into(),
                })
            }
        }
    }
}

impl ContainerRuntime for SimulatedRuntime {
    async fn pull(&self, image: &str, _auth: &RegistryAuth) -> Result<ImageInfo, RuntimeError> {
        if self.config.missing_images.contains(image) {
            return Err(RuntimeError::ImageNotFound {
                image: image.to_owned(),
                reason: "not in the simulated registry".into(),
            });
        }
        if let Ok(mut pulled) = self.pulled.lock() {
            pulled.insert(image.to_owned());
        }
        Ok(simulated_image(image))
    }

    async fn present(&self, image: &str) -> Result<Option<ImageInfo>, RuntimeError> {
        let present = self
            .pulled
            .lock()
            .map(|pulled| pulled.contains(image))
            .unwrap_or(false);
        Ok(present.then(|| simulated_image(image)))
    }

    async fn create_and_start(
        &self,
        spec: &ContainerSpec,
    ) -> Result<ContainerHandle, RuntimeError> {
        let pulled = self
            .pulled
            .lock()
            .map(|p| p.contains(&spec.image))
            .unwrap_or(false);
        if !pulled {
            return Err(RuntimeError::ImageNotPresent {
                image: spec.image.clone(),
            });
        }
        let mut containers = self
            .containers
            .lock()
            .map_err(|_| RuntimeError::WaitFailed {
                id: spec.id.clone(),
                reason: "container registry poisoned".into(),
            })?;
        if containers.contains_key(&spec.id) {
            return Err(RuntimeError::ContainerAlreadyExists {
                id: spec.id.clone(),
            });
        }
        let (state_tx, state_rx) = watch::channel(ContainerState::Created);
        let (stop_tx, stop_rx) = watch::channel(None);
        let plan = Plan::from_spec(spec, &self.config);
        let task = tokio::spawn(lifecycle(plan, self.clock(), state_tx, stop_rx));
        containers.insert(
            spec.id.clone(),
            Simulated {
                image: spec.image.clone(),
                labels: spec.labels.clone(),
                state: state_rx,
                stop: stop_tx,
                task: task.abort_handle(),
            },
        );
        Ok(ContainerHandle {
            id: spec.id.clone(),
            pid: None,
            created_at: self.clock().now(),
        })
    }

    async fn status(&self, id: &ContainerId) -> Result<ContainerState, RuntimeError> {
        Ok(self.receiver(id)?.borrow().clone())
    }

    async fn wait_started(&self, id: &ContainerId) -> Result<ContainerState, RuntimeError> {
        let mut rx = self.receiver(id)?;
        let state = rx
            .wait_for(|s| !matches!(s, ContainerState::Created))
            .await
            .map_err(|_| RuntimeError::ContainerNotFound { id: id.clone() })?
            .clone();
        Ok(state)
    }

    async fn wait(&self, id: &ContainerId) -> Result<ExitStatus, RuntimeError> {
        Self::exited(id, self.receiver(id)?).await
    }

    async fn stop(&self, id: &ContainerId, grace: Duration) -> Result<ExitStatus, RuntimeError> {
        let rx = {
            let containers = self
                .containers
                .lock()
                .map_err(|_| RuntimeError::ContainerNotFound { id: id.clone() })?;
            let c = containers
                .get(id)
                .ok_or_else(|| RuntimeError::ContainerNotFound { id: id.clone() })?;
            // The first stop request decides the grace period.
            c.stop.send_if_modified(|stop| {
                let first = stop.is_none();
                if first {
                    *stop = Some(grace);
                }
                first
            });
            c.state.clone()
        };
        Self::exited(id, rx).await
    }

    async fn remove(&self, id: &ContainerId) -> Result<(), RuntimeError> {
        if let Ok(mut containers) = self.containers.lock()
            && let Some(c) = containers.remove(id)
        {
            c.task.abort();
        }
        Ok(())
    }

    async fn list(&self) -> Result<Vec<ManagedContainer>, RuntimeError> {
        let containers = self.containers.lock().map_err(|_| RuntimeError::Corrupt {
            what: "simulated containers",
            subject: "registry".into(),
            reason: "poisoned".into(),
        })?;
        let mut listed: Vec<ManagedContainer> = containers
            .iter()
            .map(|(id, c)| ManagedContainer {
                id: id.clone(),
                image: c.image.clone(),
                labels: c.labels.clone(),
                state: c.state.borrow().clone(),
            })
            .collect();
        listed.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(listed)
    }
}

#[cfg(test)]
mod tests;
