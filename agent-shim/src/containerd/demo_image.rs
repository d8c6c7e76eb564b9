//! The demo image `localhost:5000/titus/busybox:1` that the examples use, built on the machine
//! from Debian's `busybox-static` without a registry, umoci or network: one uncompressed layer
//! (`/bin/busybox`, a symlink per applet, `/etc/passwd`, `/etc/group`) written as an OCI image
//! layout, ready for [`ContainerdRuntime::import_oci_layout`](super::ContainerdRuntime::import_oci_layout).
//! Same content as `scripts/build-test-image.sh` builds for `busybox:1`.

use std::path::{Path, PathBuf};

use super::image::{OCI_MANIFEST, sha256_digest};

/// The reference the examples and `titus up` use.
pub const DEMO_IMAGE: &str = "localhost:5000/titus/busybox:1";
/// Where Debian's `busybox-static` installs busybox.
pub const BUSYBOX: &str = "/bin/busybox";
/// Media type of an uncompressed layer.
const LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// Why the demo image could not be built.
#[derive(Debug, thiserror::Error)]
pub enum DemoImageError {
    /// No busybox binary.
    #[error("{path} is missing: install it with apt-get install busybox-static")]
    NoBusybox {
        /// Where it was looked for.
        path: PathBuf,
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

/// A ustar header block.
fn header(name: &str, size: u64, mode: u32, kind: u8, link: &str) -> [u8; 512] {
    fn put(field: &mut [u8], text: &[u8]) {
        let n = text.len().min(field.len());
        field[..n].copy_from_slice(&text[..n]);
    }
    fn octal(field: &mut [u8], value: u64) {
        let digits = field.len() - 1;
        put(field, format!("{value:0digits$o}").as_bytes());
    }
    let mut h = [0u8; 512];
    put(&mut h[0..100], name.as_bytes());
    octal(&mut h[100..108], u64::from(mode));
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], 0);
    h[148..156].fill(b' ');
    h[156] = kind;
    put(&mut h[157..257], link.as_bytes());
    put(&mut h[257..263], b"ustar\0");
    put(&mut h[263..265], b"00");
    let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
    put(&mut h[148..156], format!("{sum:06o}\0 ").as_bytes());
    h
}

/// The image's one layer: a tar of busybox, its applet links and a minimal `/etc`.
pub fn busybox_layer(busybox: &[u8], applets: &[String]) -> Vec<u8> {
    let mut tar = Vec::with_capacity(busybox.len() + 64 * 1024);
    for dir in ["bin/", "etc/", "proc/", "sys/", "dev/", "root/"] {
        tar.extend(header(dir, 0, 0o755, b'5', ""));
    }
    tar.extend(header("tmp/", 0, 0o1777, b'5', ""));
    let file = |tar: &mut Vec<u8>, name: &str, mode: u32, content: &[u8]| {
        tar.extend(header(name, content.len() as u64, mode, b'0', ""));
        tar.extend_from_slice(content);
        tar.resize(tar.len().div_ceil(512) * 512, 0);
    };
    file(&mut tar, "bin/busybox", 0o755, busybox);
    file(
        &mut tar,
        "etc/passwd",
        0o644,
        b"root:x:0:0:root:/root:/bin/sh\n",
    );
    file(&mut tar, "etc/group", 0o644, b"root:x:0:\n");
    for applet in applets.iter().filter(|a| {
        a.as_str() != "busybox"
            && !a.is_empty()
            && a.chars().all(|c| c.is_ascii_graphic() && c != '/')
    }) {
        tar.extend(header(&format!("bin/{applet}"), 0, 0o777, b'2', "busybox"));
    }
    tar.resize(tar.len() + 1024, 0);
    tar
}

fn descriptor(media_type: &str, bytes: &[u8]) -> serde_json::Value {
    serde_json::json!({"mediaType": media_type, "digest": sha256_digest(bytes), "size": bytes.len()})
}

/// Writes the OCI image layout of the demo image (tag `1`) to `dir`, from the busybox binary
/// at `busybox`. Returns the manifest digest.
///
/// # Errors
/// [`DemoImageError::NoBusybox`] without busybox; [`DemoImageError::Io`].
pub fn write_busybox_layout(busybox: &Path, dir: &Path) -> Result<String, DemoImageError> {
    let binary = std::fs::read(busybox).map_err(|_| DemoImageError::NoBusybox {
        path: busybox.to_owned(),
    })?;
    let listed = std::process::Command::new(busybox)
        .arg("--list")
        .output()
        .map_err(|source| DemoImageError::Io {
            action: "running",
            path: busybox.to_owned(),
            source,
        })?;
    let applets: Vec<String> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    let layer = busybox_layer(&binary, &applets);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/bin/sh", "-c", "echo hello from busybox"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [sha256_digest(&layer)]},
    }))
    .unwrap_or_default();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, &config),
        "layers": [descriptor(LAYER_TAR, &layer)],
    }))
    .unwrap_or_default();
    let mut entry = descriptor(OCI_MANIFEST, &manifest);
    entry["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": "1"});
    let index = serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": [entry]}))
        .unwrap_or_default();
    let blobs = dir.join("blobs").join("sha256");
    let write = |path: PathBuf, bytes: &[u8]| {
        std::fs::write(&path, bytes).map_err(|source| DemoImageError::Io {
            action: "writing",
            path,
            source,
        })
    };
    std::fs::create_dir_all(&blobs).map_err(|source| DemoImageError::Io {
        action: "creating",
        path: blobs.clone(),
        source,
    })?;
    for blob in [&layer, &config, &manifest] {
        let digest = sha256_digest(blob);
        let hex = digest.trim_start_matches("sha256:");
        write(blobs.join(hex), blob)?;
    }
    write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    write(dir.join("index.json"), &index)?;
    Ok(sha256_digest(&manifest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layer_is_a_tar_that_gnu_tar_lists() {
        let layer = busybox_layer(
            b"#!fake busybox\n",
            &["sh".into(), "echo".into(), "busybox".into()],
        );
        assert_eq!(layer.len() % 512, 0);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("layer.tar");
        std::fs::write(&path, &layer).unwrap();
        let out = std::process::Command::new("tar")
            .arg("-tvf")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let listing = String::from_utf8_lossy(&out.stdout);
        assert!(listing.contains("bin/busybox"), "{listing}");
        assert!(listing.contains("bin/sh -> busybox"), "{listing}");
        assert!(listing.contains("drwxrwxrwt"), "tmp is sticky: {listing}");
        assert!(!listing.contains("bin/busybox -> busybox"));
        let extracted = dir.path().join("x");
        std::fs::create_dir(&extracted).unwrap();
        let ok = std::process::Command::new("tar")
            .arg("-xf")
            .arg(&path)
            .arg("-C")
            .arg(&extracted)
            .status()
            .unwrap();
        assert!(ok.success());
        assert_eq!(
            std::fs::read(extracted.join("bin/busybox")).unwrap(),
            b"#!fake busybox\n"
        );
    }

    #[test]
    fn the_same_busybox_gives_the_same_digest() {
        let a = busybox_layer(b"x", &["sh".into()]);
        let b = busybox_layer(b"x", &["sh".into()]);
        assert_eq!(sha256_digest(&a), sha256_digest(&b));
        let missing = write_busybox_layout(Path::new("/nonexistent/busybox"), Path::new("/tmp"));
        assert!(matches!(missing, Err(DemoImageError::NoBusybox { .. })));
    }
}
