//! A private containerd: own config, root, state, socket and cgroup parent under a temp dir.
//!
//! Teardown (on drop) leaves nothing behind even when a test failed half-way: it kills the
//! processes in the instance's cgroups, the runc shims serving its socket, then containerd itself,
//! all by PID, and unmounts what is still mounted under its directory.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::{ChildGuard, FixtureError, temp_dir};
use crate::containerd::ContainerdConfig;
use crate::containerd::daemon::DaemonLayout;

static INSTANCE: AtomicU32 = AtomicU32::new(0);

/// A running private containerd.
#[derive(Debug)]
pub struct TestContainerd {
    child: Option<ChildGuard>,
    socket: PathBuf,
    cgroup_parent: String,
    namespace: String,
    dir: tempfile::TempDir,
}

impl TestContainerd {
    /// Starts containerd and waits until its socket accepts connections.
    pub fn start() -> Result<Self, FixtureError> {
        let dir = temp_dir("titus-containerd-")?;
        let layout = DaemonLayout::in_dir(dir.path());
        let socket = layout.socket.clone();
        let config = layout.config.clone();
        std::fs::write(&config, layout.config_text()).map_err(|source| FixtureError::Io {
            action: "writing",
            path: config.clone(),
            source,
        })?;
        let mut command = Command::new("containerd");
        command.arg("--config").arg(&config);
        let mut child = ChildGuard::spawn(command, dir.path().join("containerd.log"))?;
        child.wait_ready("containerd", Duration::from_secs(20), || {
            std::os::unix::net::UnixStream::connect(&socket).is_ok()
        })?;
        let n = INSTANCE.fetch_add(1, Ordering::Relaxed);
        Ok(Self {
            child: Some(child),
            socket,
            cgroup_parent: format!("/titus-test-{}-{n}", std::process::id()),
            namespace: format!("titus-test-{}-{n}", std::process::id()),
            dir,
        })
    }

    /// The gRPC socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The cgroup parent containers of this instance should use.
    pub fn cgroup_parent(&self) -> &str {
        &self.cgroup_parent
    }

    /// containerd's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(ChildGuard::pid)
    }

    /// containerd's output so far.
    pub fn log(&self) -> String {
        self.child.as_ref().map(ChildGuard::log).unwrap_or_default()
    }

    /// The containerd namespace tests should use. Unique per instance because the runc shim
    /// keeps its state under `/run/containerd/runc/<namespace>` whatever containerd's state dir is.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// A runtime configuration for this instance (own namespace and cgroup parent).
    pub fn runtime_config(&self) -> ContainerdConfig {
        ContainerdConfig {
            socket: self.socket.clone(),
            namespace: self.namespace.clone(),
            cgroup_parent: self.cgroup_parent.clone(),
            kill_timeout: Duration::from_secs(10),
            ..ContainerdConfig::default()
        }
    }

    /// A directory for container logs.
    pub fn log_dir(&self) -> PathBuf {
        self.dir.path().join("logs")
    }

    /// What to clean up for this instance.
    fn cleanup(&self) -> ContainerdCleanup {
        ContainerdCleanup {
            dir: self.dir.path().to_owned(),
            socket: self.socket.clone(),
            cgroup_parent: self.cgroup_parent.clone(),
            namespace: self.namespace.clone(),
        }
    }
}

/// Everything a private containerd leaves behind: container processes in its cgroups, runc
/// shims serving its socket, the daemon itself, mounts under its directory, runc state and
/// cgroups. For a containerd started by someone else (e.g. `titus agent --containerd-root DIR`),
/// the guard removes all of it, by PID, when dropped.
#[derive(Debug, Clone)]
pub struct ContainerdCleanup {
    dir: PathBuf,
    socket: PathBuf,
    cgroup_parent: String,
    namespace: String,
}

impl ContainerdCleanup {
    /// A guard for the private containerd under `dir` whose containers use `cgroup_parent` and
    /// `namespace`.
    pub fn for_private(dir: &Path, cgroup_parent: &str, namespace: &str) -> Self {
        Self {
            dir: dir.to_owned(),
            socket: DaemonLayout::in_dir(dir).socket,
            cgroup_parent: cgroup_parent.to_owned(),
            namespace: namespace.to_owned(),
        }
    }

    /// Host pids of the processes of the container with id `id` (empty when it is not running).
    pub fn pids_of(&self, id: &str) -> Vec<u32> {
        let procs = Path::new("/sys/fs/cgroup/pids")
            .join(self.cgroup_parent.trim_start_matches('/'))
            .join(id)
            .join("cgroup.procs");
        std::fs::read_to_string(procs)
            .unwrap_or_default()
            .lines()
            .filter_map(|p| p.trim().parse().ok())
            .collect()
    }

    /// Processes in the instance's cgroups (containers still running).
    fn container_pids(&self) -> Vec<u32> {
        let parent =
            Path::new("/sys/fs/cgroup/pids").join(self.cgroup_parent.trim_start_matches('/'));
        let mut pids = Vec::new();
        let Ok(children) = std::fs::read_dir(&parent) else {
            return pids;
        };
        for child in children.flatten() {
            let procs =
                std::fs::read_to_string(child.path().join("cgroup.procs")).unwrap_or_default();
            pids.extend(procs.lines().filter_map(|p| p.trim().parse::<u32>().ok()));
        }
        pids
    }

    /// runc shims serving the instance (their command line names its socket).
    fn shim_pids(&self) -> Vec<u32> {
        let needle = self.socket.to_string_lossy().into_owned();
        processes_matching(|cmdline| {
            cmdline.contains("containerd-shim") && cmdline.contains(&needle)
        })
    }

    /// Mount points under this instance's directory, deepest first.
    fn leftover_mounts(&self) -> Vec<String> {
        let root = self.dir.to_string_lossy().into_owned();
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut mounts: Vec<String> = mountinfo
            .lines()
            .filter_map(|line| line.split(' ').nth(4))
            .filter(|point| point.starts_with(&root))
            .map(str::to_owned)
            .collect();
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        mounts
    }

    /// containerd daemons started with this directory's config.
    fn daemon_pids(&self) -> Vec<u32> {
        let needle = DaemonLayout::in_dir(&self.dir)
            .config
            .to_string_lossy()
            .into_owned();
        processes_matching(|cmdline| cmdline.starts_with("containerd") && cmdline.contains(&needle))
    }

    /// Removes mounts, runc state and cgroups (after the processes are gone).
    fn remove_leftovers(&self) {
        for point in self.leftover_mounts() {
            let _ = Command::new("umount").arg("-l").arg(&point).output();
        }
        let _ = std::fs::remove_dir_all(Path::new("/run/containerd/runc").join(&self.namespace));
        for controller in [
            "memory", "cpu", "cpuacct", "pids", "blkio", "devices", "freezer", "cpuset",
        ] {
            let parent = Path::new("/sys/fs/cgroup")
                .join(controller)
                .join(self.cgroup_parent.trim_start_matches('/'));
            if let Ok(children) = std::fs::read_dir(&parent) {
                for child in children.flatten().filter(|c| c.path().is_dir()) {
                    let _ = std::fs::remove_dir(child.path());
                }
            }
            let _ = std::fs::remove_dir(&parent);
        }
    }
}

impl Drop for ContainerdCleanup {
    fn drop(&mut self) {
        kill_pids(&self.container_pids());
        kill_pids(&self.shim_pids());
        kill_pids(&self.daemon_pids());
        self.remove_leftovers();
    }
}

/// Pids whose command line (arguments joined by spaces) satisfies `matches`.
fn processes_matching(matches: impl Fn(&str) -> bool) -> Vec<u32> {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            matches(&String::from_utf8_lossy(&cmdline).replace('\0', " "))
        })
        .collect()
}

/// SIGKILLs `pids` and waits (at most 5 s) until they are gone.
fn kill_pids(pids: &[u32]) {
    if pids.is_empty() {
        return;
    }
    let _ = Command::new("kill")
        .arg("-KILL")
        .args(pids.iter().map(u32::to_string))
        .output();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && pids.iter().any(|pid| alive(*pid)) {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether `pid` exists and is not a zombie.
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            let state = stat.rsplit(')').next().unwrap_or("").trim_start();
            !state.starts_with('Z')
        })
        .unwrap_or(false)
}

impl Drop for TestContainerd {
    fn drop(&mut self) {
        let cleanup = self.cleanup();
        kill_pids(&cleanup.container_pids());
        kill_pids(&cleanup.shim_pids());
        drop(self.child.take());
        // Removes mounts, runc state and cgroups now that every process is gone.
        drop(cleanup);
    }
}
