//! [`ContainerRuntime`] on containerd (1.6+) over its unix socket: runc v2 shim, overlayfs
//! snapshots, cgroup v1 limits under `<cgroup_parent>/<id>`, stdout/stderr appended to files.
//!
//! Reading order: [`ContainerdRuntime::connect`], then the trait methods below; image pulls are in
//! `pull.rs`, the OCI spec in `spec.rs`, exit and OOM evidence in `exit.rs`.
//!
//! Recovery: containers carry the [`labels::MANAGED`] label and the agent's labels; the start time
//! and stop requests are written back as labels, so a new instance (after an agent restart)
//! lists, re-attaches to (`tasks.wait` again) and reports containers without restarting them.

mod client;
pub mod daemon;
pub mod demo_image;
mod exit;
mod image;
mod import;
mod pull;
mod spec;

pub use self::image::sha256_digest;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use containerd_client::services::v1::{
    Container, CreateContainerRequest, CreateTaskRequest, DeleteContainerRequest,
    DeleteTaskRequest, GetContainerRequest, GetRequest, KillRequest, ListContainersRequest,
    StartRequest, UpdateContainerRequest, WaitRequest,
    container::Runtime,
    snapshots::{MountsRequest, PrepareSnapshotRequest, RemoveSnapshotRequest},
};
use containerd_client::types::Mount;
use containerd_client::types::v1::Status as TaskStatus;
use jiff::Timestamp;
use tokio::sync::watch;
use tonic::Code;
use tonic::metadata::AsciiMetadataValue;

use self::client::{Ctr, failed, found, gone, timestamp};
use self::pull::{Pulled, Puller};
use crate::labels;
use crate::runtime::{
    ContainerHandle, ContainerId, ContainerRuntime, ContainerSpec, ContainerState, ExitStatus,
    ImageInfo, ManagedContainer, RegistryAuth, RuntimeError,
};

/// OCI runtime spec type URL containerd expects in `Container.spec`.
const SPEC_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Spec";
const SIGTERM: u32 = 15;
const SIGKILL: u32 = 9;

/// How to reach and use containerd.
#[derive(Debug, Clone)]
pub struct ContainerdConfig {
    /// containerd's gRPC socket.
    pub socket: PathBuf,
    /// containerd namespace of the agent's images and containers.
    pub namespace: String,
    /// Snapshotter for image layers and container root file systems.
    pub snapshotter: String,
    /// containerd runtime (shim) name.
    pub runtime: String,
    /// Parent of every container's cgroup (`<parent>/<id>`).
    pub cgroup_parent: String,
    /// Mount point of the cgroup v1 memory controller (OOM evidence).
    pub memory_cgroup_root: PathBuf,
    /// Registries (`host` or `host:port`) spoken to over plain HTTP, besides loopback ones.
    pub plain_http_registries: Vec<String>,
    /// Credentials by registry (`host:port` as in image references), used for anonymous pulls.
    pub registry_credentials: BTreeMap<String, RegistryAuth>,
    /// How long `stop` and `remove` wait for an exit after SIGKILL.
    pub kill_timeout: Duration,
    /// The log driver containerd runs next to each container (interleaved output with times,
    /// see [`crate::logs::driver`]); without it the shim appends to the plain log files.
    pub log_driver: Option<LogDriver>,
}

/// How containerd starts the log driver: `<binary> <subcommand> --log-driver=<dir>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogDriver {
    /// Absolute path of the program.
    pub binary: PathBuf,
    /// Its first argument (`agent` for the `titus` binary).
    pub subcommand: String,
}

impl Default for ContainerdConfig {
    fn default() -> Self {
        Self {
            socket: PathBuf::from("/run/containerd/containerd.sock"),
            namespace: "titus".into(),
            snapshotter: "overlayfs".into(),
            runtime: "io.containerd.runc.v2".into(),
            cgroup_parent: "/titus".into(),
            memory_cgroup_root: PathBuf::from("/sys/fs/cgroup/memory"),
            plain_http_registries: Vec::new(),
            registry_credentials: BTreeMap::new(),
            kill_timeout: Duration::from_secs(10),
            log_driver: None,
        }
    }
}

/// Whether `registry` (`host[:port]`) is spoken to over plain HTTP: loopback hosts always, others
/// when listed (with or without the port).
pub fn uses_plain_http(registry: &str, plain_http_registries: &[String]) -> bool {
    let host = match registry.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => registry.split(':').next().unwrap_or(registry),
    };
    matches!(host, "localhost" | "127.0.0.1" | "::1")
        || plain_http_registries
            .iter()
            .any(|r| r == registry || r == host)
}

/// What a waiter publishes: nothing yet, the exit, or why waiting failed.
type WaitOutcome = Option<Result<ExitStatus, String>>;

struct Waiter {
    outcome: watch::Receiver<WaitOutcome>,
    task: tokio::task::AbortHandle,
}

/// What waiter tasks need; shared without the waiter map so that dropping the runtime stops them.
struct Core {
    ctr: Ctr,
    config: ContainerdConfig,
}

/// The containerd runtime. Cheap to share behind an `Arc`; dropping it stops its background
/// waiters but never touches the containers.
pub struct ContainerdRuntime {
    core: Arc<Core>,
    puller: Puller,
    images: std::sync::Mutex<HashMap<String, Pulled>>,
    pulls: tokio::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    waiters: std::sync::Mutex<HashMap<ContainerId, Waiter>>,
}

impl std::fmt::Debug for ContainerdRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContainerdRuntime")
            .field("config", &self.core.config)
            .finish_non_exhaustive()
    }
}

impl Drop for ContainerdRuntime {
    fn drop(&mut self) {
        if let Ok(waiters) = self.waiters.lock() {
            for waiter in waiters.values() {
                waiter.task.abort();
            }
        }
    }
}

impl ContainerdRuntime {
    /// Connects to containerd.
    ///
    /// # Errors
    /// [`RuntimeError::Connect`] when the socket does not answer.
    pub async fn connect(config: ContainerdConfig) -> Result<Self, RuntimeError> {
        // reqwest is built without a bundled crypto provider; use ring like the rest of the
        // workspace. An already installed provider is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let ctr = Ctr::connect(&config.socket, &config.namespace).await?;
        let puller = Puller {
            ctr: ctr.clone(),
            clients: Default::default(),
            plain_http_registries: config.plain_http_registries.clone(),
            snapshotter: config.snapshotter.clone(),
            credentials: config.registry_credentials.clone(),
            sequence: AtomicU64::new(0),
        };
        Ok(Self {
            core: Arc::new(Core { ctr, config }),
            puller,
            images: Default::default(),
            pulls: Default::default(),
            waiters: Default::default(),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &ContainerdConfig {
        &self.core.config
    }

    fn ctr(&self) -> &Ctr {
        &self.core.ctr
    }

    /// The pulled image, from memory or from containerd's store.
    async fn image(&self, image: &str) -> Result<Pulled, RuntimeError> {
        if let Some(pulled) = self.images.lock().ok().and_then(|m| m.get(image).cloned()) {
            return Ok(pulled);
        }
        let pulled =
            self.puller
                .stored(image)
                .await?
                .ok_or_else(|| RuntimeError::ImageNotPresent {
                    image: image.to_owned(),
                })?;
        self.remember(&pulled);
        Ok(pulled)
    }

    fn remember(&self, pulled: &Pulled) {
        if let Ok(mut images) = self.images.lock() {
            images.insert(pulled.info.reference.clone(), pulled.clone());
        }
    }

    async fn container(&self, id: &ContainerId) -> Result<Container, RuntimeError> {
        let req = GetContainerRequest { id: id.to_string() };
        found(self.ctr().containers().get(self.ctr().req(req)).await)
            .map_err(failed("containers.get", id))?
            .and_then(|r| r.into_inner().container)
            .ok_or_else(|| RuntimeError::ContainerNotFound { id: id.clone() })
    }

    async fn set_label(
        &self,
        id: &ContainerId,
        key: &str,
        value: String,
    ) -> Result<(), RuntimeError> {
        let req = UpdateContainerRequest {
            container: Some(Container {
                id: id.to_string(),
                labels: [(key.to_owned(), value)].into(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec![format!("labels.{key}")],
            }),
        };
        match self.ctr().containers().update(self.ctr().req(req)).await {
            Ok(_) => Ok(()),
            Err(s) if s.code() == Code::NotFound => {
                Err(RuntimeError::ContainerNotFound { id: id.clone() })
            }
            Err(s) => Err(failed("containers.update", id)(s)),
        }
    }

    /// The rootfs snapshot of a new container (reusing one left by an interrupted create).
    async fn rootfs(
        &self,
        id: &ContainerId,
        parent: &str,
        lease: &AsciiMetadataValue,
    ) -> Result<Vec<Mount>, RuntimeError> {
        let snapshotter = self.core.config.snapshotter.clone();
        let prepare = PrepareSnapshotRequest {
            snapshotter: snapshotter.clone(),
            key: id.to_string(),
            parent: parent.to_owned(),
            labels: Default::default(),
        };
        match self
            .ctr()
            .snapshots()
            .prepare(self.ctr().leased(prepare, lease))
            .await
        {
            Ok(r) => Ok(r.into_inner().mounts),
            Err(s) if s.code() == Code::AlreadyExists => {
                let req = MountsRequest {
                    snapshotter,
                    key: id.to_string(),
                };
                self.ctr()
                    .snapshots()
                    .mounts(self.ctr().req(req))
                    .await
                    .map(|r| r.into_inner().mounts)
                    .map_err(failed("snapshots.mounts", id))
            }
            Err(s) => Err(failed("snapshots.prepare", id)(s)),
        }
    }

    /// Deletes task, container and snapshot; each may already be gone.
    async fn delete_all(&self, id: &ContainerId) -> Result<(), RuntimeError> {
        let task = DeleteTaskRequest {
            container_id: id.to_string(),
        };
        gone(self.ctr().tasks().delete(self.ctr().req(task)).await)
            .map_err(failed("tasks.delete", id))?;
        let container = DeleteContainerRequest { id: id.to_string() };
        gone(
            self.ctr()
                .containers()
                .delete(self.ctr().req(container))
                .await,
        )
        .map_err(failed("containers.delete", id))?;
        let snapshot = RemoveSnapshotRequest {
            snapshotter: self.core.config.snapshotter.clone(),
            key: id.to_string(),
        };
        gone(
            self.ctr()
                .snapshots()
                .remove(self.ctr().req(snapshot))
                .await,
        )
        .map_err(failed("snapshots.remove", id))?;
        if let Ok(mut waiters) = self.waiters.lock()
            && let Some(waiter) = waiters.remove(id)
        {
            waiter.task.abort();
        }
        Ok(())
    }

    /// The waiter of `id`, spawned if there is none (re-attaching after a restart) or the last
    /// one failed.
    fn waiter(&self, id: &ContainerId) -> watch::Receiver<WaitOutcome> {
        let Ok(mut waiters) = self.waiters.lock() else {
            let (_tx, rx) = watch::channel(Some(Err("waiter registry poisoned".into())));
            return rx;
        };
        if let Some(waiter) = waiters.get(id) {
            let failed = matches!(&*waiter.outcome.borrow(), Some(Err(_)));
            if !failed {
                return waiter.outcome.clone();
            }
        }
        let (tx, rx) = watch::channel(None);
        let core = self.core.clone();
        let task_id = id.clone();
        let task = tokio::spawn(async move {
            let outcome = core.wait_for_exit(&task_id).await;
            let _ = tx.send(Some(outcome));
        });
        waiters.insert(
            id.clone(),
            Waiter {
                outcome: rx.clone(),
                task: task.abort_handle(),
            },
        );
        rx
    }

    /// Waits on `rx` for at most `limit`; `None` on timeout.
    async fn await_exit(
        id: &ContainerId,
        mut rx: watch::Receiver<WaitOutcome>,
        limit: Option<Duration>,
    ) -> Result<Option<ExitStatus>, RuntimeError> {
        let wait = rx.wait_for(Option::is_some);
        let outcome = match limit {
            Some(limit) => match tokio::time::timeout(limit, wait).await {
                Ok(outcome) => outcome,
                Err(_) => return Ok(None),
            },
            None => wait.await,
        };
        let outcome = outcome
            .map(|o| o.clone())
            .map_err(|_| RuntimeError::WaitFailed {
                id: id.clone(),
                reason: "waiter stopped".into(),
            })?;
        match outcome {
            Some(Ok(exit)) => Ok(Some(exit)),
            Some(Err(reason)) => Err(RuntimeError::WaitFailed {
                id: id.clone(),
                reason,
            }),
            None => Ok(None),
        }
    }

    async fn kill(&self, id: &ContainerId, signal: u32, all: bool) -> Result<(), RuntimeError> {
        let req = KillRequest {
            container_id: id.to_string(),
            signal,
            all,
            ..Default::default()
        };
        match self.ctr().tasks().kill(self.ctr().req(req)).await {
            Ok(_) => Ok(()),
            // The process has already exited (or never had a task): nothing to signal.
            Err(s) if matches!(s.code(), Code::NotFound | Code::FailedPrecondition) => Ok(()),
            Err(s) => Err(failed("tasks.kill", id)(s)),
        }
    }

    /// SIGKILL and wait for the exit at most `kill_timeout`.
    async fn kill_and_wait(&self, id: &ContainerId) -> Result<ExitStatus, RuntimeError> {
        self.kill(id, SIGKILL, true).await?;
        let waited = self.core.config.kill_timeout;
        Self::await_exit(id, self.waiter(id), Some(waited))
            .await?
            .ok_or_else(|| RuntimeError::StopTimedOut {
                id: id.clone(),
                waited,
            })
    }
}

impl Core {
    fn memory_cgroup_dir(&self, id: &ContainerId) -> PathBuf {
        let path = spec::cgroup_path(&self.config.cgroup_parent, id.as_str());
        self.config
            .memory_cgroup_root
            .join(path.trim_start_matches('/'))
    }

    /// The exit status of a stopped task.
    async fn exit_of(
        &self,
        id: &ContainerId,
        code: u32,
        exited_at: Option<Timestamp>,
        labels: &HashMap<String, String>,
    ) -> ExitStatus {
        let oom = exit::oom_killed(&self.memory_cgroup_dir(id)).await;
        exit::exit_status(code, exited_at, labels, oom, Timestamp::now())
    }

    /// `tasks.wait`, then the labels (start time, stop request) and the OOM evidence.
    async fn wait_for_exit(&self, id: &ContainerId) -> Result<ExitStatus, String> {
        let req = WaitRequest {
            container_id: id.to_string(),
            ..Default::default()
        };
        let waited = self
            .ctr
            .tasks()
            .wait(self.ctr.req(req))
            .await
            .map_err(|s| format!("tasks.wait: {}", s.message()))?
            .into_inner();
        let get = GetContainerRequest { id: id.to_string() };
        let labels = self
            .ctr
            .containers()
            .get(self.ctr.req(get))
            .await
            .ok()
            .and_then(|r| r.into_inner().container)
            .map(|c| c.labels)
            .unwrap_or_default();
        Ok(self
            .exit_of(
                id,
                waited.exit_status,
                timestamp(waited.exited_at.as_ref()),
                &labels,
            )
            .await)
    }

    /// State of a container from its task.
    async fn state_of(&self, container: &Container) -> Result<ContainerState, RuntimeError> {
        let id = ContainerId::new(container.id.clone())?;
        let req = GetRequest {
            container_id: container.id.clone(),
            ..Default::default()
        };
        let Some(process) = found(self.ctr.tasks().get(self.ctr.req(req)).await)
            .map_err(failed("tasks.get", &id))?
            .and_then(|r| r.into_inner().process)
        else {
            return Ok(ContainerState::Created);
        };
        let started_at = || {
            exit::started_at(&container.labels)
                .or_else(|| timestamp(container.created_at.as_ref()))
                .unwrap_or_else(Timestamp::now)
        };
        match TaskStatus::try_from(process.status) {
            Ok(TaskStatus::Created) => Ok(ContainerState::Created),
            Ok(TaskStatus::Running | TaskStatus::Paused | TaskStatus::Pausing) => {
                Ok(ContainerState::Running {
                    started_at: started_at(),
                    pid: Some(process.pid),
                })
            }
            Ok(TaskStatus::Stopped) => {
                let exited_at = timestamp(process.exited_at.as_ref());
                let exit = self
                    .exit_of(&id, process.exit_status, exited_at, &container.labels)
                    .await;
                Ok(ContainerState::Exited(exit))
            }
            Ok(TaskStatus::Unknown) | Err(_) => Err(RuntimeError::Corrupt {
                what: "task status",
                subject: id.to_string(),
                reason: format!("containerd reports status {}", process.status),
            }),
        }
    }
}

/// Creates a log file (and its directory) if missing. The runc shim copies the container's
/// output into plain paths, appending, but does not create them; a `file://` URI would make it
/// send stdout and stderr to the same file (containerd 1.6).
async fn ensure_log_file(path: &Path) -> Result<(), RuntimeError> {
    let io = |action| {
        move |source| RuntimeError::Io {
            action,
            path: path.to_owned(),
            source,
        }
    };
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(io("creating log directory for"))?;
    }
    tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .await
        .map_err(io("creating log file"))?;
    Ok(())
}

impl ContainerRuntime for ContainerdRuntime {
    async fn pull(&self, image: &str, auth: &RegistryAuth) -> Result<ImageInfo, RuntimeError> {
        let lock = {
            let mut pulls = self.pulls.lock().await;
            pulls.entry(image.to_owned()).or_default().clone()
        };
        let _serialised = lock.lock().await;
        let pulled = self.puller.pull(image, auth).await?;
        self.remember(&pulled);
        Ok(pulled.info)
    }

    async fn present(&self, image: &str) -> Result<Option<ImageInfo>, RuntimeError> {
        match self.image(image).await {
            Ok(pulled) => Ok(Some(pulled.info)),
            Err(RuntimeError::ImageNotPresent { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn create_and_start(
        &self,
        spec: &ContainerSpec,
    ) -> Result<ContainerHandle, RuntimeError> {
        let id = &spec.id;
        let pulled = self.image(&spec.image).await?;
        if self.container(id).await.is_ok() {
            return Err(RuntimeError::ContainerAlreadyExists { id: id.clone() });
        }
        // The new rootfs snapshot is unreferenced until the container record exists: keep it
        // under a lease until then, or containerd's GC may remove it in between.
        let lease = self.puller.create_lease(id.as_str()).await?;
        let created = self.create_container(spec, &pulled, &lease).await;
        self.puller.delete_lease(&lease).await;
        let mounts = created?;
        match self.start_task(spec, mounts).await {
            Ok(handle) => Ok(handle),
            Err(e) => {
                if let Err(cleanup) = self.delete_all(id).await {
                    tracing::warn!(container = %id, error = %cleanup, "cleanup after failed start");
                }
                Err(e)
            }
        }
    }

    async fn status(&self, id: &ContainerId) -> Result<ContainerState, RuntimeError> {
        let container = self.container(id).await?;
        self.core.state_of(&container).await
    }

    async fn wait_started(&self, id: &ContainerId) -> Result<ContainerState, RuntimeError> {
        // create_and_start returns once the task runs: there is nothing to wait for.
        self.status(id).await
    }

    async fn wait(&self, id: &ContainerId) -> Result<ExitStatus, RuntimeError> {
        self.container(id).await?;
        Self::await_exit(id, self.waiter(id), None)
            .await?
            .ok_or_else(|| RuntimeError::WaitFailed {
                id: id.clone(),
                reason: "waiter ended without an exit".into(),
            })
    }

    async fn stop(&self, id: &ContainerId, grace: Duration) -> Result<ExitStatus, RuntimeError> {
        match self.status(id).await? {
            ContainerState::Exited(exit) => return Ok(exit),
            ContainerState::Created => {
                // Never started: there is no process to signal.
                self.set_label(id, labels::STOP_REQUESTED, "true".into())
                    .await?;
                let labels = self.container(id).await?.labels;
                return Ok(exit::exit_status(
                    128 + SIGKILL,
                    None,
                    &labels,
                    false,
                    Timestamp::now(),
                ));
            }
            ContainerState::Running { .. } => {}
        }
        self.set_label(id, labels::STOP_REQUESTED, "true".into())
            .await?;
        let rx = self.waiter(id);
        self.kill(id, SIGTERM, false).await?;
        if let Some(exit) = Self::await_exit(id, rx, Some(grace)).await? {
            return Ok(exit);
        }
        tracing::info!(container = %id, ?grace, "still running after the grace period: SIGKILL");
        self.kill_and_wait(id).await
    }

    async fn remove(&self, id: &ContainerId) -> Result<(), RuntimeError> {
        match self.status(id).await {
            Ok(ContainerState::Running { .. }) => {
                self.kill_and_wait(id).await?;
            }
            Ok(ContainerState::Created | ContainerState::Exited(_)) => {}
            Err(RuntimeError::ContainerNotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        self.delete_all(id).await
    }

    async fn list(&self) -> Result<Vec<ManagedContainer>, RuntimeError> {
        let req = ListContainersRequest {
            filters: vec![format!("labels.\"{}\"==true", labels::MANAGED)],
        };
        let containers = self
            .ctr()
            .containers()
            .list(self.ctr().req(req))
            .await
            .map_err(failed("containers.list", &self.core.config.namespace))?
            .into_inner()
            .containers;
        let mut managed = Vec::with_capacity(containers.len());
        for container in containers {
            let Ok(id) = ContainerId::new(container.id.clone()) else {
                tracing::warn!(container = %container.id, "skipping container with an invalid id");
                continue;
            };
            let state = self.core.state_of(&container).await?;
            managed.push(ManagedContainer {
                id,
                image: container.image,
                labels: container.labels.into_iter().collect(),
                state,
            });
        }
        managed.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(managed)
    }
}

impl ContainerdRuntime {
    /// The rootfs snapshot and the container record; returns the rootfs mounts.
    async fn create_container(
        &self,
        spec: &ContainerSpec,
        pulled: &Pulled,
        lease: &AsciiMetadataValue,
    ) -> Result<Vec<Mount>, RuntimeError> {
        let id = &spec.id;
        let mounts = self.rootfs(id, &pulled.top_chain, lease).await?;
        let oci_spec = spec::runtime_spec(spec, &self.core.config.cgroup_parent);
        let mut labels: HashMap<String, String> = spec.labels.clone().into_iter().collect();
        labels.insert(labels::MANAGED.into(), "true".into());
        let container = Container {
            id: id.to_string(),
            labels,
            image: spec.image.clone(),
            runtime: Some(Runtime {
                name: self.core.config.runtime.clone(),
                options: None,
            }),
            spec: Some(prost_types::Any {
                type_url: SPEC_TYPE_URL.into(),
                value: oci_spec.to_string().into_bytes(),
            }),
            snapshotter: self.core.config.snapshotter.clone(),
            snapshot_key: id.to_string(),
            ..Default::default()
        };
        let created = self
            .ctr()
            .containers()
            .create(self.ctr().req(CreateContainerRequest {
                container: Some(container),
            }))
            .await;
        if let Err(s) = created {
            if s.code() == Code::AlreadyExists {
                return Err(RuntimeError::ContainerAlreadyExists { id: id.clone() });
            }
            let _ = self.delete_all(id).await;
            return Err(failed("containers.create", id)(s));
        }
        Ok(mounts)
    }

    /// Creates and starts the task of an existing container; the waiter is in place before
    /// start so that even an instant exit is observed.
    async fn start_task(
        &self,
        spec: &ContainerSpec,
        rootfs: Vec<Mount>,
    ) -> Result<ContainerHandle, RuntimeError> {
        let id = &spec.id;
        let (stdout, stderr) = match (&self.core.config.log_driver, spec.logs.stdout.parent()) {
            (Some(driver), Some(dir)) => {
                let uri = crate::logs::driver::binary_uri(&driver.binary, &driver.subcommand, dir);
                (uri.clone(), uri)
            }
            (Some(_), None) | (None, _) => {
                for path in [&spec.logs.stdout, &spec.logs.stderr] {
                    ensure_log_file(path).await?;
                }
                (
                    spec.logs.stdout.to_string_lossy().into_owned(),
                    spec.logs.stderr.to_string_lossy().into_owned(),
                )
            }
        };
        let create = CreateTaskRequest {
            container_id: id.to_string(),
            rootfs,
            stdout,
            stderr,
            ..Default::default()
        };
        self.ctr()
            .tasks()
            .create(self.ctr().req(create))
            .await
            .map_err(failed("tasks.create", id))?;
        let _waiter = self.waiter(id);
        tokio::task::yield_now().await;
        // Recorded before start so that even an instant exit reports its start time.
        let started_at = Timestamp::now();
        self.set_label(id, labels::STARTED_AT, started_at.to_string())
            .await?;
        let start = StartRequest {
            container_id: id.to_string(),
            ..Default::default()
        };
        let pid = self
            .ctr()
            .tasks()
            .start(self.ctr().req(start))
            .await
            .map_err(failed("tasks.start", id))?
            .into_inner()
            .pid;
        Ok(ContainerHandle {
            id: id.clone(),
            pid: Some(pid),
            created_at: started_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_registries_and_listed_ones_use_plain_http() {
        let listed = vec!["registry.internal".to_string(), "other:5000".to_string()];
        let cases = [
            ("127.0.0.1:5000", true),
            ("localhost", true),
            ("localhost:1234", true),
            ("[::1]:5000", true),
            ("registry.internal:443", true),
            ("other:5000", true),
            ("other:5001", false),
            ("docker.io", false),
            ("127.0.0.2:5000", false),
        ];
        for (registry, plain) in cases {
            assert_eq!(uses_plain_http(registry, &listed), plain, "{registry}");
        }
    }
}
