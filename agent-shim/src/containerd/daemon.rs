//! A private containerd for the agent: its own config, root, state and socket under one
//! directory, so `titus up` and `titus agent --containerd-root DIR` need no system service.
//!
//! A restarted agent finds the containerd it started earlier still running (the daemon outlives a
//! killed agent, and the containers outlive both in their runc shims) and uses it again.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Plugins the agent does not use; skipping them makes containerd start faster and quieter.
const DISABLED_PLUGINS: [&str; 6] = [
    "io.containerd.grpc.v1.cri",
    "io.containerd.snapshotter.v1.aufs",
    "io.containerd.snapshotter.v1.btrfs",
    "io.containerd.snapshotter.v1.zfs",
    "io.containerd.snapshotter.v1.devmapper",
    "io.containerd.tracing.processor.v1.otlp",
];

/// How long containerd may take to open its socket.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a private containerd could not be started.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// A program is missing.
    #[error("{program} is not installed: install containerd: apt-get install containerd runc")]
    NotInstalled {
        /// The missing program.
        program: &'static str,
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
    /// containerd did not open its socket in time (or exited).
    #[error("containerd did not start within {waited:?}; see {log}")]
    NotReady {
        /// How long.
        waited: Duration,
        /// containerd's log file.
        log: PathBuf,
    },
}

/// Where a private containerd lives under `dir`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonLayout {
    /// The directory.
    pub dir: PathBuf,
    /// The gRPC socket.
    pub socket: PathBuf,
    /// The config file.
    pub config: PathBuf,
    /// containerd's output.
    pub log: PathBuf,
}

impl DaemonLayout {
    /// The layout under `dir`.
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
            socket: dir.join("containerd.sock"),
            config: dir.join("config.toml"),
            log: dir.join("containerd.log"),
        }
    }

    /// containerd's config: root, state and sockets under the directory, unused plugins off.
    pub fn config_text(&self) -> String {
        let disabled = DISABLED_PLUGINS.map(|p| format!("\"{p}\"")).join(", ");
        format!(
            "version = 2\nroot = \"{root}\"\nstate = \"{state}\"\ndisabled_plugins = [{disabled}]\n\
             [grpc]\n  address = \"{sock}\"\n[ttrpc]\n  address = \"{sock}.ttrpc\"\n\
             [plugins.\"io.containerd.internal.v1.opt\"]\n  path = \"{opt}\"\n",
            root = self.dir.join("root").display(),
            state = self.dir.join("state").display(),
            sock = self.socket.display(),
            opt = self.dir.join("opt").display(),
        )
    }

    /// Creates the directory and writes the config.
    ///
    /// # Errors
    /// [`DaemonError::Io`].
    pub fn prepare(&self) -> Result<(), DaemonError> {
        let io = |action, path: &Path| {
            let path = path.to_owned();
            move |source| DaemonError::Io {
                action,
                path,
                source,
            }
        };
        std::fs::create_dir_all(&self.dir).map_err(io("creating", &self.dir))?;
        std::fs::write(&self.config, self.config_text()).map_err(io("writing", &self.config))
    }

    /// Whether a containerd answers on the socket.
    pub fn answers(&self) -> bool {
        std::os::unix::net::UnixStream::connect(&self.socket).is_ok()
    }
}

/// Whether `program` is on `PATH`.
pub fn installed(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// A containerd started (or found running) by the agent.
#[derive(Debug)]
pub struct PrivateContainerd {
    layout: DaemonLayout,
    /// The process, when this agent started it (`None`: found running).
    child: Option<Child>,
}

impl PrivateContainerd {
    /// Uses the containerd already serving `dir`'s socket, or starts one, and waits until it
    /// answers.
    ///
    /// # Errors
    /// [`DaemonError::NotInstalled`] without containerd or runc; [`DaemonError::NotReady`] when
    /// it does not come up.
    pub async fn start_or_reuse(dir: &Path) -> Result<Self, DaemonError> {
        let layout = DaemonLayout::in_dir(dir);
        if layout.answers() {
            tracing::info!(socket = %layout.socket.display(), "using the running private containerd");
            return Ok(Self {
                layout,
                child: None,
            });
        }
        for program in ["containerd", "runc"] {
            if !installed(program) {
                return Err(DaemonError::NotInstalled { program });
            }
        }
        layout.prepare()?;
        let log = std::fs::File::create(&layout.log).map_err(|source| DaemonError::Io {
            action: "creating",
            path: layout.log.clone(),
            source,
        })?;
        let err = log.try_clone().map_err(|source| DaemonError::Io {
            action: "opening",
            path: layout.log.clone(),
            source,
        })?;
        let child = Command::new("containerd")
            .arg("--config")
            .arg(&layout.config)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(|_| DaemonError::NotInstalled {
                program: "containerd",
            })?;
        let mut daemon = Self {
            layout,
            child: Some(child),
        };
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        loop {
            if daemon.layout.answers() {
                tracing::info!(socket = %daemon.layout.socket.display(), "started a private containerd");
                return Ok(daemon);
            }
            let exited = daemon
                .child
                .as_mut()
                .is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))));
            if exited || tokio::time::Instant::now() >= deadline {
                return Err(DaemonError::NotReady {
                    waited: START_TIMEOUT,
                    log: daemon.layout.log.clone(),
                });
            }
            // Waiting for the socket with a deadline.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The gRPC socket.
    pub fn socket(&self) -> &Path {
        &self.layout.socket
    }

    /// The daemon's process id, when this agent started it.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Stops containerd (SIGTERM, by PID) if this agent started it; containers keep running in
    /// their shims and a later containerd picks them up.
    pub fn stop(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .output();
            let _ = child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_keeps_everything_under_the_directory() {
        let layout = DaemonLayout::in_dir(Path::new("/data/containerd"));
        let text = layout.config_text();
        assert!(text.contains("root = \"/data/containerd/root\""));
        assert!(text.contains("state = \"/data/containerd/state\""));
        assert!(text.contains("address = \"/data/containerd/containerd.sock\""));
        assert!(text.contains("io.containerd.grpc.v1.cri"));
        assert_eq!(layout.socket, Path::new("/data/containerd/containerd.sock"));
    }

    #[test]
    fn a_missing_program_is_reported_with_the_install_command() {
        assert!(!installed("surely-not-a-program-titus"));
        let message = DaemonError::NotInstalled {
            program: "containerd",
        }
        .to_string();
        assert!(
            message.contains("apt-get install containerd runc"),
            "{message}"
        );
    }
}
