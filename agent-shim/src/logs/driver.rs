//! The container log driver: a process containerd's runc shim starts next to each container
//! (`binary://` stdio, see [`binary_uri`]), which reads the container's stdout (fd 3) and stderr
//! (fd 4), signals readiness on fd 5, and writes, in the container's log directory:
//! - `stdout` and `stderr`: the raw streams, appended;
//! - `main.log`: both streams interleaved in the kubelet's CRI format, one line per output line:
//!   `<RFC 3339 time> <stdout|stderr> F <line>`.
//!
//! It lives as long as the container (it is the shim's child, not the agent's), so output keeps
//! being recorded, with times, while the agent is down. The `titus` binary runs it as
//! `titus agent --log-driver=<dir>`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use jiff::Timestamp;

/// Name of the interleaved CRI-format log in a container's log directory.
pub const COMBINED_LOG: &str = "main.log";

/// Why the log driver failed.
#[derive(Debug, thiserror::Error)]
pub enum LogDriverError {
    /// A file or descriptor could not be opened or written.
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

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> LogDriverError {
    let path = path.to_owned();
    move |source| LogDriverError::Io {
        action,
        path,
        source,
    }
}

/// One CRI log line for `content` (without its newline) of `stream` at `at`.
pub fn cri_line(at: Timestamp, stream: &str, content: &[u8]) -> Vec<u8> {
    let mut line = format!("{} {stream} F ", at.strftime("%Y-%m-%dT%H:%M:%S%.9fZ")).into_bytes();
    line.extend_from_slice(content);
    line.push(b'\n');
    line
}

/// A parsed CRI log line: time, stream, content (with its newline).
pub fn parse_cri_line(line: &[u8]) -> Option<(&str, &str, &[u8])> {
    let mut parts = line.splitn(4, |b| *b == b' ');
    let time = std::str::from_utf8(parts.next()?).ok()?;
    let stream = std::str::from_utf8(parts.next()?).ok()?;
    let _tag = parts.next()?;
    Some((time, stream, parts.next()?))
}

/// The `binary://` URI that makes containerd run `binary` as the log driver for a container
/// logging to `log_dir`: `binary` gets the arguments `<subcommand> --log-driver=<log_dir>`.
pub fn binary_uri(binary: &Path, subcommand: &str, log_dir: &Path) -> String {
    fn encode(text: &str) -> String {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' => {
                    char::from(b).to_string()
                }
                other => format!("%{other:02X}"),
            })
            .collect()
    }
    format!(
        "binary://{}?{}={}",
        encode(&binary.to_string_lossy()),
        encode(subcommand),
        encode(&format!("--log-driver={}", log_dir.display()))
    )
}

fn copy(
    stream: &'static str,
    input: impl std::io::Read,
    mut raw: std::fs::File,
    combined: Arc<Mutex<std::fs::File>>,
) {
    let mut reader = BufReader::new(input);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let _ = raw.write_all(&line);
        let content = line.strip_suffix(b"\n").unwrap_or(&line);
        if let Ok(mut combined) = combined.lock() {
            let _ = combined.write_all(&cri_line(Timestamp::now(), stream, content));
        }
    }
}

/// Runs the driver for the container logging to `log_dir`, with containerd's descriptors 3
/// (stdout), 4 (stderr) and 5 (ready); returns when both streams have ended.
///
/// # Errors
/// [`LogDriverError::Io`] when the log files or the descriptors cannot be opened.
pub fn run(log_dir: &Path) -> Result<(), LogDriverError> {
    std::fs::create_dir_all(log_dir).map_err(io("creating", log_dir))?;
    let append = |name: &str| {
        let path = log_dir.join(name);
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io("opening", &path))
    };
    let combined = Arc::new(Mutex::new(append(COMBINED_LOG)?));
    let (stdout, stderr) = (append("stdout")?, append("stderr")?);
    // The descriptors containerd passes; opening them through /proc needs no unsafe code.
    let fd = |n: u8| PathBuf::from(format!("/proc/self/fd/{n}"));
    let out = std::fs::File::open(fd(3)).map_err(io("opening", &fd(3)))?;
    let err = std::fs::File::open(fd(4)).map_err(io("opening", &fd(4)))?;
    // The shim waits for one byte (or EOF) on fd 5 before it starts the container.
    std::fs::OpenOptions::new()
        .write(true)
        .open(fd(5))
        .and_then(|mut ready| ready.write_all(b"r"))
        .map_err(io("signalling readiness on", &fd(5)))?;
    let err_combined = combined.clone();
    let stderr_thread = std::thread::spawn(move || copy("stderr", err, stderr, err_combined));
    copy("stdout", out, stdout, combined);
    let _ = stderr_thread.join();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cri_lines_carry_time_stream_and_content_and_parse_back() {
        let at: Timestamp = "2026-01-02T03:04:05.123456789Z".parse().unwrap();
        let line = cri_line(at, "stderr", b"hello world");
        assert_eq!(
            String::from_utf8(line.clone()).unwrap(),
            "2026-01-02T03:04:05.123456789Z stderr F hello world\n"
        );
        let (time, stream, content) = parse_cri_line(&line).unwrap();
        assert_eq!(time, "2026-01-02T03:04:05.123456789Z");
        assert_eq!(stream, "stderr");
        assert_eq!(content, b"hello world\n");
        assert!(parse_cri_line(b"garbage").is_none());
    }

    #[test]
    fn the_binary_uri_names_the_driver_and_its_directory() {
        let uri = binary_uri(
            Path::new("/usr/bin/titus"),
            "agent",
            Path::new("/var/lib/titus logs/u1"),
        );
        assert_eq!(
            uri,
            "binary:///usr/bin/titus?agent=--log-driver%3D/var/lib/titus%20logs/u1"
        );
    }
}
