//! The container-runtime port: the [`ContainerRuntime`] trait and the values it speaks in.
//!
//! The node half of the agent decides what should run; a runtime only runs, stops, removes and
//! reports containers. Every value here is runtime-neutral: the containerd implementation and the
//! simulated one fill the same [`ContainerState`], so the Pod status logic is written once.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;

/// Runs containers on this machine. Implemented by
/// [`ContainerdRuntime`](crate::containerd::ContainerdRuntime) and
/// [`SimulatedRuntime`](crate::simulated::SimulatedRuntime).
///
/// # Guarantees
/// - Every method is idempotent where the name allows it: `pull` of a present image, `stop` of an
///   exited container and `remove` of a missing one succeed.
/// - A container created by one instance can be listed, waited for, stopped and removed by a later
///   instance (after an agent restart) without restarting it.
pub trait ContainerRuntime: Send + Sync + 'static {
    /// Makes `image` (a reference by tag or by digest) present on this machine and returns its
    /// digest and config.
    ///
    /// # Errors
    /// [`RuntimeError::ImageNotFound`] when the registry does not have it, [`RuntimeError::Pull`]
    /// for any other registry or store failure.
    fn pull(
        &self,
        image: &str,
        auth: &RegistryAuth,
    ) -> impl Future<Output = Result<ImageInfo, RuntimeError>> + Send;

    /// The image if it is already on this machine (pulled or imported earlier), without asking
    /// a registry: what `imagePullPolicy: IfNotPresent` and `Never` need.
    ///
    /// # Errors
    /// Store failures.
    fn present(
        &self,
        image: &str,
    ) -> impl Future<Output = Result<Option<ImageInfo>, RuntimeError>> + Send;

    /// Creates the container described by `spec` from an image already pulled, and starts it.
    ///
    /// # Errors
    /// [`RuntimeError::ContainerAlreadyExists`] when the id is taken,
    /// [`RuntimeError::ImageNotPresent`] when the image was not pulled.
    fn create_and_start(
        &self,
        spec: &ContainerSpec,
    ) -> impl Future<Output = Result<ContainerHandle, RuntimeError>> + Send;

    /// The container's current state.
    fn status(
        &self,
        id: &ContainerId,
    ) -> impl Future<Output = Result<ContainerState, RuntimeError>> + Send;

    /// Waits until the container is past `Created` (running or already exited) and returns that
    /// state. containerd containers are running when `create_and_start` returns; simulated ones
    /// after their prepare time.
    fn wait_started(
        &self,
        id: &ContainerId,
    ) -> impl Future<Output = Result<ContainerState, RuntimeError>> + Send;

    /// Waits until the container has exited and returns how. Re-attaches to a container started
    /// by an earlier instance of the runtime.
    fn wait(
        &self,
        id: &ContainerId,
    ) -> impl Future<Output = Result<ExitStatus, RuntimeError>> + Send;

    /// Asks the container to stop (SIGTERM), kills it (SIGKILL) when it is still running after
    /// `grace`, and returns its exit status.
    fn stop(
        &self,
        id: &ContainerId,
        grace: Duration,
    ) -> impl Future<Output = Result<ExitStatus, RuntimeError>> + Send;

    /// Deletes the container and everything the runtime made for it (task, snapshot), killing it
    /// first if it still runs. Log files are kept.
    fn remove(&self, id: &ContainerId) -> impl Future<Output = Result<(), RuntimeError>> + Send;

    /// Every container this agent manages, with its labels and state (for recovery).
    fn list(&self) -> impl Future<Output = Result<Vec<ManagedContainer>, RuntimeError>> + Send;
}

/// A container id. Titus task ids (UUIDs) are valid ids.
///
/// Follows containerd's identifier rule: alphanumeric components joined by single `.`, `_` or
/// `-`, at most 76 characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContainerId(String);

impl ContainerId {
    /// Longest id containerd accepts.
    pub const MAX_LEN: usize = 76;

    /// Validates `id`.
    ///
    /// # Errors
    /// [`RuntimeError::InvalidContainerId`] when it breaks the identifier rule.
    pub fn new(id: impl Into<String>) -> Result<Self, RuntimeError> {
        let id = id.into();
        let mut previous_separator = true;
        let valid = !id.is_empty()
            && id.len() <= Self::MAX_LEN
            && id.chars().all(|c| {
                let separator = matches!(c, '.' | '_' | '-');
                let ok = c.is_ascii_alphanumeric() || (separator && !previous_separator);
                previous_separator = separator;
                ok
            })
            && !previous_separator;
        if valid {
            Ok(Self(id))
        } else {
            Err(RuntimeError::InvalidContainerId { id })
        }
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ContainerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Everything needed to create one container. The process is already resolved (see
/// [`process::resolve_process`](crate::process::resolve_process)).
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerSpec {
    /// Container id (the Titus task id for a main container).
    pub id: ContainerId,
    /// Image reference exactly as given to [`ContainerRuntime::pull`].
    pub image: String,
    /// What to run.
    pub process: ProcessSpec,
    /// Limits.
    pub resources: Resources,
    /// Hostname inside the container; the container id when absent.
    pub hostname: Option<String>,
    /// Labels stored with the container and returned by [`ContainerRuntime::list`] (Pod uid,
    /// namespace, name, task id: see [`labels`](crate::labels)).
    pub labels: BTreeMap<String, String>,
    /// Annotations: OCI spec annotations for containerd; timings and outcomes for the simulated
    /// runtime.
    pub annotations: BTreeMap<String, String>,
    /// Where stdout and stderr go.
    pub logs: LogPaths,
}

/// The container's main process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessSpec {
    /// argv; never empty.
    pub args: Vec<String>,
    /// Environment, in order; later entries win over earlier ones with the same name.
    pub env: Vec<(String, String)>,
    /// Working directory (absolute).
    pub working_dir: String,
}

/// Resource limits of one container. `None` means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Resources {
    /// CPU shares and CFS quota.
    pub cpu: Option<CpuLimit>,
    /// Memory limit in bytes (swap is limited to the same value: no swap).
    pub memory_bytes: Option<u64>,
    /// Maximum number of processes.
    pub pids_limit: Option<i64>,
    /// Size of `/dev/shm` in bytes (64 MiB when absent, as Titus's default).
    pub shm_bytes: Option<u64>,
}

/// CPU limit in cgroup terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuLimit {
    /// `cpu.shares` (1024 per CPU).
    pub shares: u64,
    /// `cpu.cfs_quota_us`; `None` lets the container burst above its share.
    pub quota_us: Option<i64>,
    /// `cpu.cfs_period_us`.
    pub period_us: u64,
}

impl CpuLimit {
    /// Default CFS period, 100 ms.
    pub const PERIOD_US: u64 = 100_000;

    /// The limit for `cpus` CPUs (Titus `resources.cpu`). With `bursting` (Titus
    /// `allowCpuBursting`) there is no quota, only shares.
    pub fn from_cpus(cpus: f64, bursting: bool) -> Self {
        let cpus = if cpus.is_finite() && cpus > 0.0 {
            cpus
        } else {
            0.0
        };
        // Kernel minimums: 2 shares, 1 ms of quota.
        let shares = ((cpus * 1024.0).round() as u64).max(2);
        let quota = ((cpus * Self::PERIOD_US as f64).round() as i64).max(1_000);
        Self {
            shares,
            quota_us: (!bursting).then_some(quota),
            period_us: Self::PERIOD_US,
        }
    }
}

/// Files the container's stdout and stderr are appended to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogPaths {
    /// stdout file (absolute).
    pub stdout: PathBuf,
    /// stderr file (absolute).
    pub stderr: PathBuf,
}

impl LogPaths {
    /// `<dir>/<id>/stdout` and `<dir>/<id>/stderr`.
    pub fn in_dir(dir: &Path, id: &ContainerId) -> Self {
        let base = dir.join(id.as_str());
        Self {
            stdout: base.join("stdout"),
            stderr: base.join("stderr"),
        }
    }
}

/// What [`ContainerRuntime::create_and_start`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerHandle {
    /// The container.
    pub id: ContainerId,
    /// Host pid of the main process (none for the simulated runtime).
    pub pid: Option<u32>,
    /// When the process was started; for the simulated runtime, when it was created (it becomes
    /// running after its prepare time).
    pub created_at: Timestamp,
}

/// State of one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerState {
    /// Created, the main process is not running yet.
    Created,
    /// The main process runs.
    Running {
        /// When it was started.
        started_at: Timestamp,
        /// Host pid (none for the simulated runtime).
        pid: Option<u32>,
    },
    /// The main process has exited.
    Exited(ExitStatus),
}

/// How a container ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitStatus {
    /// Exit code; `128 + n` when killed by signal `n`.
    pub code: i32,
    /// When it was started, if it ever ran.
    pub started_at: Option<Timestamp>,
    /// When it exited.
    pub finished_at: Timestamp,
    /// The kernel's OOM killer killed a process of the container.
    pub oom_killed: bool,
    /// Why it ended.
    pub reason: TerminationReason,
    /// Human message (the simulated runtime's `message=`; empty for containerd).
    pub message: String,
}

/// Why a container ended, in Kubernetes' `ContainerStateTerminated.reason` vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TerminationReason {
    /// Exit code 0 without a stop request.
    Completed,
    /// Non-zero exit without a stop request or OOM kill.
    Error,
    /// Killed by the OOM killer (takes precedence over a stop request).
    OomKilled,
    /// Ended after the agent asked it to stop.
    Killed,
}

impl TerminationReason {
    /// Classifies an exit. OOM wins (the limit was the cause even during a stop); then a stop
    /// request; then the exit code.
    pub fn classify(code: i32, oom_killed: bool, stop_requested: bool) -> Self {
        if oom_killed {
            Self::OomKilled
        } else if stop_requested {
            Self::Killed
        } else if code == 0 {
            Self::Completed
        } else {
            Self::Error
        }
    }

    /// The Kubernetes reason string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "Completed",
            Self::Error => "Error",
            Self::OomKilled => "OOMKilled",
            Self::Killed => "Killed",
        }
    }
}

/// What [`ContainerRuntime::pull`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// The reference as given.
    pub reference: String,
    /// Digest of what the reference points to in the registry (an index for multi-platform
    /// images), `sha256:...`.
    pub digest: String,
    /// The image's runtime defaults.
    pub config: ImageConfig,
}

/// The parts of an OCI image config the agent uses (Docker semantics).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImageConfig {
    /// `Entrypoint`.
    pub entrypoint: Vec<String>,
    /// `Cmd`.
    pub cmd: Vec<String>,
    /// `Env`, `NAME=value` strings.
    pub env: Vec<String>,
    /// `WorkingDir`, if set.
    pub working_dir: Option<String>,
    /// `User`, if set.
    pub user: Option<String>,
}

/// Registry credentials for one pull.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub enum RegistryAuth {
    /// No credentials (or the runtime's configured ones for that registry).
    #[default]
    Anonymous,
    /// HTTP basic auth.
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: String,
    },
}

impl std::fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Anonymous => f.write_str("Anonymous"),
            Self::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
        }
    }
}

/// One container found by [`ContainerRuntime::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedContainer {
    /// Its id.
    pub id: ContainerId,
    /// Its image reference.
    pub image: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its current state.
    pub state: ContainerState,
}

/// Errors of every runtime.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The registry does not have the image (the agent ends the Pod with this reason).
    #[error("image {image} not found: {reason}")]
    ImageNotFound {
        /// Reference asked for.
        image: String,
        /// What the registry said.
        reason: String,
    },
    /// The reference cannot be parsed.
    #[error("invalid image reference {image}: {reason}")]
    InvalidImageReference {
        /// Reference given.
        image: String,
        /// Why it is invalid.
        reason: String,
    },
    /// Any other failure while pulling (registry unreachable, unauthorized, bad manifest, store).
    #[error("pulling image {image}: {reason}")]
    Pull {
        /// Reference asked for.
        image: String,
        /// What failed.
        reason: String,
    },
    /// `create_and_start` of an image that was not pulled.
    #[error("image {image} is not present on this machine; pull it first")]
    ImageNotPresent {
        /// Reference given.
        image: String,
    },
    /// The container id breaks the identifier rule.
    #[error(
        "invalid container id {id:?}: alphanumeric parts joined by '.', '_' or '-', at most 76 characters"
    )]
    InvalidContainerId {
        /// Id given.
        id: String,
    },
    /// No such container.
    #[error("container {id} not found")]
    ContainerNotFound {
        /// The container.
        id: ContainerId,
    },
    /// The id is taken.
    #[error("container {id} already exists")]
    ContainerAlreadyExists {
        /// The container.
        id: ContainerId,
    },
    /// The container did not exit after SIGKILL within the runtime's deadline.
    #[error("container {id} did not exit within {waited:?} after SIGKILL")]
    StopTimedOut {
        /// The container.
        id: ContainerId,
        /// How long the runtime waited after SIGKILL.
        waited: Duration,
    },
    /// Waiting for the container's exit failed (connection to the runtime lost).
    #[error("waiting for container {id} failed: {reason}")]
    WaitFailed {
        /// The container.
        id: ContainerId,
        /// What failed.
        reason: String,
    },
    /// Cannot connect to containerd.
    #[error("connecting to containerd at {path}")]
    Connect {
        /// Socket path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: tonic::transport::Error,
    },
    /// A containerd call failed.
    #[error("containerd {operation} for {subject} failed: {}", source.message())]
    Containerd {
        /// The RPC, e.g. `tasks.start`.
        operation: &'static str,
        /// What it was about (container id, image, digest).
        subject: String,
        /// gRPC status.
        #[source]
        source: tonic::Status,
    },
    /// The stored image or container is not what the agent wrote.
    #[error("corrupt {what} for {subject}: {reason}")]
    Corrupt {
        /// Kind of record (image manifest, container labels, ...).
        what: &'static str,
        /// Which one.
        subject: String,
        /// What is wrong.
        reason: String,
    },
    /// Local file system failure (log directory, cgroup files).
    #[error("{action} {path}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// Path involved.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_ids_follow_the_containerd_identifier_rule() {
        let cases = [
            ("0b3c3a6f-8f2e-4a5b-9c4d-7e1f2a3b4c5d", true),
            ("task.1_a-b", true),
            ("a", true),
            ("", false),
            ("-a", false),
            ("a-", false),
            ("a--b", false),
            ("a/b", false),
            ("a b", false),
            (&"x".repeat(77), false),
            (&"x".repeat(76), true),
        ];
        for (id, valid) in cases {
            assert_eq!(ContainerId::new(id).is_ok(), valid, "{id:?}");
        }
    }

    #[test]
    fn cpu_limit_gives_shares_per_cpu_and_a_quota_unless_bursting() {
        let cases = [
            (1.0, false, 1024, Some(100_000)),
            (2.5, false, 2560, Some(250_000)),
            (0.5, true, 512, None),
            (0.0, false, 2, Some(1_000)),
            (f64::NAN, false, 2, Some(1_000)),
        ];
        for (cpus, bursting, shares, quota) in cases {
            let limit = CpuLimit::from_cpus(cpus, bursting);
            assert_eq!(limit.shares, shares, "{cpus}");
            assert_eq!(limit.quota_us, quota, "{cpus}");
            assert_eq!(limit.period_us, 100_000);
        }
    }

    #[test]
    fn termination_reason_prefers_oom_then_stop_then_exit_code() {
        use TerminationReason::*;
        let cases = [
            (0, false, false, Completed),
            (3, false, false, Error),
            (137, true, false, OomKilled),
            (137, true, true, OomKilled),
            (143, false, true, Killed),
            (0, false, true, Killed),
        ];
        for (code, oom, stop, reason) in cases {
            assert_eq!(TerminationReason::classify(code, oom, stop), reason);
        }
        assert_eq!(OomKilled.as_str(), "OOMKilled");
    }

    #[test]
    fn registry_auth_debug_hides_the_password() {
        let auth = RegistryAuth::Basic {
            username: "u".into(),
            password: "secret".into(),
        };
        assert!(!format!("{auth:?}").contains("secret"));
    }

    #[test]
    fn log_paths_live_under_a_directory_per_container() {
        let id = ContainerId::new("t1").unwrap();
        let logs = LogPaths::in_dir(Path::new("/var/log/titus"), &id);
        assert_eq!(logs.stdout, Path::new("/var/log/titus/t1/stdout"));
        assert_eq!(logs.stderr, Path::new("/var/log/titus/t1/stderr"));
    }
}
