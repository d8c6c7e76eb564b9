//! End-to-end test harness: starts `titus up` (or `titus apiserver`) on a fresh data directory,
//! or targets a real cluster when `TITUS_E2E_KUBECONFIG` is set, and gives tests kubectl, helm
//! and a kube-rs client, plus waiting on conditions with deadlines.
//!
//! Every process it starts is stopped by PID when the [`Cluster`] is dropped.
//!
//! Binaries: the `titus` binary is looked up next to the test executable (`target/debug/titus`;
//! `scripts/test.sh` builds it first) or at `TITUS_BIN`; kubectl and helm in the repository's
//! `.tools/bin` (installed by `scripts/install-deps.sh`) or on `PATH`. A missing binary fails
//! the test with a message saying how to get it.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};

/// Which components a started cluster runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `titus apiserver`: only the embedded API server.
    ApiServer,
    /// `titus up`: the whole system.
    Up,
}

/// A cluster under test.
#[derive(Debug)]
pub struct Cluster {
    /// Path of the kubeconfig clients use.
    pub kubeconfig: PathBuf,
    /// The data directory of the started server (absent for an external cluster).
    pub data_dir: Option<PathBuf>,
    /// Isolated HOME for kubectl/helm caches.
    home: PathBuf,
    process: Option<Child>,
    mode: Mode,
    extra_args: Vec<String>,
    scratch: PathBuf,
    /// Kept across restarts so clients (and resumed watches) reach the same address.
    port: u16,
}

/// The repository root (the workspace that contains this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The `titus` binary.
///
/// # Errors
/// When it has not been built.
pub fn titus_bin() -> anyhow::Result<PathBuf> {
    if let Ok(path) = std::env::var("TITUS_BIN") {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe().context("locating the test executable")?;
    // Tests live in target/<profile>/deps/, binaries in target/<profile>/; titus is in the latter.
    let dir = exe
        .parent()
        .context("the test executable has no directory")?;
    [Some(dir.join("titus")), dir.parent().map(|d| d.join("titus"))]
        .into_iter()
        .flatten()
        .find(|p| p.exists())
        .context("the titus binary is not built: run `cargo build -p titus` first (scripts/test.sh does), or set TITUS_BIN")
}

/// A tool (kubectl, helm) from `.tools/bin` or `PATH`.
///
/// # Errors
/// When it is not installed.
pub fn tool(name: &str) -> anyhow::Result<PathBuf> {
    let local = repo_root().join(".tools/bin").join(name);
    if local.exists() {
        return Ok(local);
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.exists() {
                return Ok(candidate);
            }
        }
    }
    bail!(
        "{name} is not installed: run scripts/install-deps.sh (it puts kubectl and helm in .tools/bin)"
    )
}

/// A port that is free right now on 127.0.0.1.
///
/// # Errors
/// When no port can be bound.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// `GET path` over plain HTTP/1.0 on 127.0.0.1:`port`: the status code and the body.
///
/// # Errors
/// When nothing listens there or the answer is not HTTP.
pub async fn http_get(port: u16, path: &str) -> anyhow::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .with_context(|| format!("connecting to 127.0.0.1:{port}"))?;
    let request =
        format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .context("an HTTP response without a body")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("not an HTTP status line: {head}"))?;
    Ok((status, body.to_owned()))
}

/// A fresh scratch directory under the system temp dir.
pub fn scratch_dir(prefix: &str) -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "titus-e2e-{prefix}-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

impl Cluster {
    /// Starts `titus apiserver` on a fresh data directory (or uses `TITUS_E2E_KUBECONFIG`).
    ///
    /// # Errors
    /// When the server does not come up.
    pub async fn apiserver() -> anyhow::Result<Cluster> {
        Self::start(Mode::ApiServer, &[]).await
    }

    /// Starts `titus up` on a fresh data directory (or uses `TITUS_E2E_KUBECONFIG`), with extra
    /// command-line arguments.
    ///
    /// # Errors
    /// When the system does not come up.
    pub async fn up(extra_args: &[&str]) -> anyhow::Result<Cluster> {
        Self::start(Mode::Up, extra_args).await
    }

    async fn start(mode: Mode, extra_args: &[&str]) -> anyhow::Result<Cluster> {
        let scratch = scratch_dir("cluster")?;
        let home = scratch.join("home");
        std::fs::create_dir_all(&home)?;
        if let Ok(external) = std::env::var("TITUS_E2E_KUBECONFIG") {
            return Ok(Cluster {
                kubeconfig: PathBuf::from(external),
                data_dir: None,
                home,
                process: None,
                mode,
                extra_args: Vec::new(),
                scratch,
                port: 0,
            });
        }
        let data_dir = scratch.join("data");
        let mut cluster = Cluster {
            kubeconfig: data_dir.join("kubeconfig"),
            data_dir: Some(data_dir),
            home,
            process: None,
            mode,
            extra_args: extra_args.iter().map(|s| (*s).to_owned()).collect(),
            scratch,
            port: free_port()?,
        };
        cluster.launch().await?;
        Ok(cluster)
    }

    /// True when the tests run against a real cluster (nothing to kill or restart).
    pub fn is_external(&self) -> bool {
        self.data_dir.is_none()
    }

    async fn launch(&mut self) -> anyhow::Result<()> {
        let Some(data_dir) = self.data_dir.clone() else {
            return Ok(());
        };
        let _ = std::fs::remove_file(&self.kubeconfig);
        let subcommand = match self.mode {
            Mode::ApiServer => "apiserver",
            Mode::Up => "up",
        };
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.scratch.join("titus.log"))?;
        let child = Command::new(titus_bin()?)
            .arg(subcommand)
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--bind")
            .arg(format!("127.0.0.1:{}", self.port))
            .args(&self.extra_args)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .context("starting titus")?;
        self.process = Some(child);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self
                .process
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                bail!("titus exited early with {status}; log:\n{}", self.log());
            }
            if self.kubeconfig.exists()
                && self
                    .kubectl_output(&["get", "--raw", "/readyz"])?
                    .status
                    .success()
            {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                bail!(
                    "titus did not become ready within 60s; log:\n{}",
                    self.log()
                );
            }
            // Polling readiness with a deadline.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The server's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.scratch.join("titus.log")).unwrap_or_default()
    }

    /// The PID of the started server process.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(Child::id)
    }

    /// Kills the server with SIGKILL (no clean shutdown) and waits for it to die.
    ///
    /// # Errors
    /// When there is no process (external cluster).
    pub fn kill9(&mut self) -> anyhow::Result<()> {
        let mut child = self
            .process
            .take()
            .context("no server process to kill (external cluster?)")?;
        child.kill().context("sending SIGKILL")?;
        child.wait().context("waiting for the killed server")?;
        Ok(())
    }

    /// Stops the server as Ctrl-C does (SIGINT) and waits up to `timeout` for it to exit.
    ///
    /// # Errors
    /// When there is no process, or it does not exit in time (it is then killed).
    pub async fn interrupt(
        &mut self,
        timeout: Duration,
    ) -> anyhow::Result<std::process::ExitStatus> {
        let pid = self
            .pid()
            .context("no server process (external cluster?)")?;
        let sent = Command::new("kill")
            .arg("-INT")
            .arg(pid.to_string())
            .status()?;
        if !sent.success() {
            bail!("kill -INT {pid} failed");
        }
        let child = std::sync::Mutex::new(self.process.take());
        let exited = wait_for("titus to exit after SIGINT", timeout, || async {
            let mut guard = child.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
            Ok(guard.as_mut().and_then(|c| c.try_wait().ok().flatten()))
        })
        .await;
        self.process = child.into_inner().ok().flatten();
        let status = exited?;
        self.process = None;
        Ok(status)
    }

    /// Starts the server again on the same data directory.
    ///
    /// # Errors
    /// When it does not come back.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        if self.process.is_some() {
            self.kill9()?;
        }
        self.launch().await
    }

    /// A kube-rs client for the cluster.
    ///
    /// # Errors
    /// An unusable kubeconfig.
    pub async fn client(&self) -> anyhow::Result<kube::Client> {
        let kubeconfig = kube::config::Kubeconfig::read_from(&self.kubeconfig)?;
        let config = kube::Config::from_custom_kubeconfig(
            kubeconfig,
            &kube::config::KubeConfigOptions::default(),
        )
        .await?;
        Ok(kube::Client::try_from(config)?)
    }

    fn command(&self, tool_name: &str, args: &[&str]) -> anyhow::Result<Command> {
        let mut cmd = Command::new(tool(tool_name)?);
        cmd.args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", &self.home)
            .env_remove("KUBERNETES_SERVICE_HOST")
            .stdin(Stdio::null());
        Ok(cmd)
    }

    /// Runs kubectl and returns its output, whatever its exit status.
    ///
    /// # Errors
    /// When kubectl cannot be started.
    pub fn kubectl_output(&self, args: &[&str]) -> anyhow::Result<Output> {
        Ok(self.command("kubectl", args)?.output()?)
    }

    /// Runs kubectl; fails (with its stderr) unless it succeeds. Returns stdout.
    ///
    /// # Errors
    /// A non-zero exit.
    pub fn kubectl(&self, args: &[&str]) -> anyhow::Result<String> {
        checked("kubectl", args, self.kubectl_output(args)?)
    }

    /// Runs kubectl with `stdin` as input; fails unless it succeeds. Returns stdout.
    ///
    /// # Errors
    /// A non-zero exit.
    pub fn kubectl_stdin(&self, args: &[&str], stdin: &str) -> anyhow::Result<String> {
        use std::io::Write;
        let mut child = self
            .command("kubectl", args)?
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        child
            .stdin
            .take()
            .context("kubectl stdin")?
            .write_all(stdin.as_bytes())?;
        checked("kubectl", args, child.wait_with_output()?)
    }

    /// Runs helm and returns its output, whatever its exit status.
    ///
    /// # Errors
    /// When helm cannot be started.
    pub fn helm_output(&self, args: &[&str]) -> anyhow::Result<Output> {
        Ok(self.command("helm", args)?.output()?)
    }

    /// Runs helm; fails unless it succeeds. Returns stdout.
    ///
    /// # Errors
    /// A non-zero exit.
    pub fn helm(&self, args: &[&str]) -> anyhow::Result<String> {
        checked("helm", args, self.helm_output(args)?)
    }

    /// Starts a long-running kubectl (e.g. `get -w`) whose stdout goes to a file; the returned
    /// guard kills it on drop.
    ///
    /// # Errors
    /// When kubectl cannot be started.
    pub fn kubectl_background(&self, args: &[&str]) -> anyhow::Result<Background> {
        let out = self
            .scratch
            .join(format!("bg-{}.out", uuid::Uuid::new_v4().simple()));
        let child = self
            .command("kubectl", args)?
            .stdout(Stdio::from(std::fs::File::create(&out)?))
            .stderr(Stdio::null())
            .spawn()?;
        Ok(Background { child, out })
    }

    /// A scratch file path for manifests.
    pub fn file(&self, name: &str, contents: &str) -> anyhow::Result<PathBuf> {
        let path = self.scratch.join(name);
        std::fs::write(&path, contents)?;
        Ok(path)
    }
}

fn checked(tool_name: &str, args: &[&str], out: Output) -> anyhow::Result<String> {
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    bail!(
        "`{tool_name} {}` failed with {}:\nstdout: {}\nstderr: {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(mut child) = self.process.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::env::var_os("TITUS_E2E_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.scratch);
        }
    }
}

/// A background process whose stdout is captured in a file.
#[derive(Debug)]
pub struct Background {
    child: Child,
    out: PathBuf,
}

impl Background {
    /// What it printed so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` until it yields `Some`, failing after `timeout` with `what` in the message.
/// `check` returning an error stops the wait at once.
///
/// # Errors
/// The deadline passed, or `check` failed.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut interval = Duration::from_millis(20);
    loop {
        if let Some(value) = check().await? {
            return Ok(value);
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        // Back off while polling; this is waiting on a condition, not sleeping to synchronise.
        tokio::time::sleep(interval).await;
        interval = (interval * 2).min(Duration::from_millis(250));
    }
}
