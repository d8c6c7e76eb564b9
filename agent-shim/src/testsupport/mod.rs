//! Real parts for tests and benchmarks, started privately and torn down by PID: the embedded API
//! server (in process), an OCI registry
//! (Debian `docker-registry`) on 127.0.0.1 with the test images pushed into it, and a containerd
//! with its own root, state, socket and cgroup parent. Needs root, `containerd`, `runc`,
//! `docker-registry`, `umoci`, `skopeo` and `busybox-static` (scripts/install-deps.sh).
//!
//! Every wait is on a condition with a deadline; every failure says what was missing.

mod containerd;
mod registry;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use self::containerd::{ContainerdCleanup, TestContainerd};
pub use self::registry::{TestImages, TestRegistry};

/// Why a test fixture could not be started.
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    /// A program could not be spawned (not installed?).
    #[error("starting {program} (is it installed? see scripts/install-deps.sh)")]
    Spawn {
        /// Program name.
        program: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A started program did not become ready in time.
    #[error("{what} not ready after {waited:?}; its log:\n{log}")]
    NotReady {
        /// What was waited for.
        what: String,
        /// How long.
        waited: Duration,
        /// The program's output.
        log: String,
    },
    /// A helper command failed.
    #[error("{command} failed ({status}): {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// Its stderr.
        stderr: String,
    },
    /// File system failure.
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

/// A child process killed (SIGKILL) and reaped when dropped.
#[derive(Debug)]
pub struct ChildGuard {
    child: Child,
    log: PathBuf,
}

impl ChildGuard {
    fn spawn(mut command: Command, log: PathBuf) -> Result<Self, FixtureError> {
        let program = command.get_program().to_string_lossy().into_owned();
        let io = |source| FixtureError::Io {
            action: "creating log file",
            path: log.clone(),
            source,
        };
        let out = std::fs::File::create(&log).map_err(io)?;
        let err = out.try_clone().map_err(io)?;
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|source| FixtureError::Spawn { program, source })?;
        Ok(Self { child, log })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the process printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `ready` holds, failing with the log after `limit` or when the process died.
    fn wait_ready(
        &mut self,
        what: &str,
        limit: Duration,
        mut ready: impl FnMut() -> bool,
    ) -> Result<(), FixtureError> {
        let start = Instant::now();
        loop {
            if ready() {
                return Ok(());
            }
            let exited = matches!(self.child.try_wait(), Ok(Some(_)));
            if exited || start.elapsed() > limit {
                return Err(FixtureError::NotReady {
                    what: what.to_owned(),
                    waited: start.elapsed(),
                    log: self.log(),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a helper command to completion.
fn run(command: &mut Command) -> Result<String, FixtureError> {
    let line = format!("{command:?}");
    let output = command.output().map_err(|source| FixtureError::Spawn {
        program: command.get_program().to_string_lossy().into_owned(),
        source,
    })?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(FixtureError::Command {
            command: line,
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }
}

/// A free TCP port on 127.0.0.1 (free when asked; the caller binds it right away).
fn free_port() -> Result<u16, FixtureError> {
    let io = |source| FixtureError::Io {
        action: "finding a free port on",
        path: PathBuf::from("127.0.0.1"),
        source,
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(io)?;
    Ok(listener.local_addr().map_err(io)?.port())
}

/// The embedded API server started in this process (memory store, no fsync, a free port on
/// 127.0.0.1) and a client for it.
///
/// # Errors
/// When it cannot start or its kubeconfig is unusable.
pub async fn api_server() -> anyhow::Result<(titus_apiserver::RunningApiServer, kube::Client)> {
    let server = titus_apiserver::start(titus_apiserver::ApiServerConfig {
        data_dir: None,
        bind: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        fsync: false,
        extra_sans: vec![],
    })
    .await?;
    let client = titus_runtime::client_from_yaml(&server.kubeconfig()).await?;
    Ok((server, client))
}

/// A private temp directory.
fn temp_dir(prefix: &str) -> Result<tempfile::TempDir, FixtureError> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map_err(|source| FixtureError::Io {
            action: "creating temp dir",
            path: std::env::temp_dir(),
            source,
        })
}
