//! A private OCI registry on 127.0.0.1 and the test images pushed into it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::{ChildGuard, FixtureError, free_port, run, temp_dir};

/// A `docker-registry` on a free 127.0.0.1 port with its storage in a temp dir.
#[derive(Debug)]
pub struct TestRegistry {
    // Field order matters: the process dies before its directory is removed.
    child: ChildGuard,
    addr: String,
    /// `user:password` when the registry requires basic auth.
    credentials: Option<String>,
    dir: tempfile::TempDir,
}

impl TestRegistry {
    /// Starts the registry and waits until it accepts connections.
    pub fn start() -> Result<Self, FixtureError> {
        Self::start_inner(None)
    }

    /// Starts a registry that requires HTTP basic auth with `username` and `password`.
    pub fn start_with_basic_auth(username: &str, password: &str) -> Result<Self, FixtureError> {
        Self::start_inner(Some((username, password)))
    }

    fn start_inner(auth: Option<(&str, &str)>) -> Result<Self, FixtureError> {
        let dir = temp_dir("titus-registry-")?;
        let port = free_port()?;
        let addr = format!("127.0.0.1:{port}");
        let write = |path: &Path, text: String| {
            std::fs::write(path, text).map_err(|source| FixtureError::Io {
                action: "writing",
                path: path.to_owned(),
                source,
            })
        };
        let mut text = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
            dir.path().join("data").display()
        );
        if let Some((username, password)) = auth {
            // The registry reads bcrypt htpasswd entries; a low cost keeps the test fast.
            let hash = bcrypt::hash(password, 4).map_err(|e| FixtureError::Io {
                action: "hashing the test password for",
                path: dir.path().join("htpasswd"),
                source: std::io::Error::other(e),
            })?;
            let htpasswd = dir.path().join("htpasswd");
            write(&htpasswd, format!("{username}:{hash}\n"))?;
            text.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: titus-test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        let config = dir.path().join("registry.yml");
        write(&config, text)?;
        let mut command = Command::new("docker-registry");
        command.arg("serve").arg(&config);
        let mut child = ChildGuard::spawn(command, dir.path().join("registry.log"))?;
        child.wait_ready("docker-registry", Duration::from_secs(10), || {
            std::net::TcpStream::connect(&addr).is_ok()
        })?;
        let credentials = auth.map(|(u, p)| format!("{u}:{p}"));
        Ok(Self {
            child,
            addr,
            credentials,
            dir,
        })
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The registry's process id.
    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// Storage directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Builds the busybox test images with `scripts/build-test-image.sh` and pushes them here.
    pub fn push_test_images(&self) -> Result<TestImages, FixtureError> {
        let digests = self.dir.path().join("digests");
        std::fs::create_dir_all(&digests).map_err(|source| FixtureError::Io {
            action: "creating",
            path: digests.clone(),
            source,
        })?;
        let mut build = Command::new(build_script());
        build.arg(&self.addr).arg(&digests);
        if let Some(credentials) = &self.credentials {
            build.env("DEST_CREDS", credentials);
        }
        run(&mut build)?;
        let read = |tag: &str| {
            let path = digests.join(format!("{tag}.digest"));
            std::fs::read_to_string(&path)
                .map(|d| d.trim().to_owned())
                .map_err(|source| FixtureError::Io {
                    action: "reading",
                    path,
                    source,
                })
        };
        Ok(TestImages {
            busybox: format!("{}/busybox:1", self.addr),
            busybox_digest: read("1")?,
            entrypoint: format!("{}/busybox:entrypoint", self.addr),
            entrypoint_digest: read("entrypoint")?,
            repository: format!("{}/busybox", self.addr),
        })
    }
}

/// `scripts/build-test-image.sh` of this checkout.
pub fn build_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/build-test-image.sh")
}

/// References of the pushed test images (see scripts/build-test-image.sh).
#[derive(Debug, Clone)]
pub struct TestImages {
    /// `<registry>/busybox:1`: CMD `sh -c 'echo hello from busybox'`.
    pub busybox: String,
    /// Manifest digest of `busybox:1`.
    pub busybox_digest: String,
    /// `<registry>/busybox:entrypoint`: ENTRYPOINT `/bin/echo image-entrypoint`, CMD `image-cmd`,
    /// Env `IMAGE_ONLY` and `SHARED`, WorkingDir `/tmp`.
    pub entrypoint: String,
    /// Manifest digest of `busybox:entrypoint`.
    pub entrypoint_digest: String,
    /// `<registry>/busybox`, for references by digest.
    pub repository: String,
}

impl TestImages {
    /// `busybox:1` by digest.
    pub fn busybox_by_digest(&self) -> String {
        format!("{}@{}", self.repository, self.busybox_digest)
    }
}
