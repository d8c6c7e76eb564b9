//! Reading a container's log files for the log endpoint: the query options, the tail of what is
//! there, and following the files until the container has finished.
//!
//! With the log driver ([`super::driver`]) a container's output is one interleaved file with a
//! time per line (`main.log`, read by [`super::cri`]); this module also reads the two plain
//! files a runtime without the driver appends to: stdout's content, then stderr's, and a follow
//! sends whatever either file gains as it comes. Plain files carry no times, so `timestamps` and
//! `since*` are refused for them.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::{mpsc, watch};

use super::LogError;
use crate::runtime::LogPaths;

/// How often a follower looks for new output (the runtime writes plain files; there is no
/// notification to wait on).
pub(super) const FOLLOW_POLL: Duration = Duration::from_millis(100);

/// The query of a log request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogOptions {
    /// Keep streaming until the container has exited.
    pub follow: bool,
    /// Only the last lines of what is there when the request arrives.
    pub tail_lines: Option<usize>,
    /// Stop after this many bytes.
    pub limit_bytes: Option<u64>,
    /// The previous instance of the container was asked for.
    pub previous: bool,
    /// Prefix each line with its time.
    pub timestamps: bool,
    /// Only lines written at or after this time.
    pub since: Option<jiff::Timestamp>,
}

fn flag(name: &str, value: &str) -> Result<bool, LogError> {
    match value {
        "" | "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        other => Err(LogError::BadRequest(format!(
            "{name}: {other:?} is not a boolean"
        ))),
    }
}

fn number<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, LogError> {
    value
        .parse()
        .map_err(|_| LogError::BadRequest(format!("{name}: {value:?} is not a number")))
}

impl LogOptions {
    /// Parses a query string (`follow=true&tailLines=10`); `sinceSeconds` counts back from
    /// `now`.
    ///
    /// # Errors
    /// [`LogError::BadRequest`] for malformed values.
    pub fn parse(query: &str, now: jiff::Timestamp) -> Result<Self, LogError> {
        let mut options = Self::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            match name {
                "follow" => options.follow = flag(name, value)?,
                "previous" => options.previous = flag(name, value)?,
                "tailLines" => options.tail_lines = Some(number(name, value)?),
                "limitBytes" => options.limit_bytes = Some(number(name, value)?),
                "timestamps" => options.timestamps = flag(name, value)?,
                "sinceSeconds" => {
                    let seconds: i64 = number(name, value)?;
                    options.since = now
                        .checked_sub(jiff::SignedDuration::from_secs(seconds))
                        .ok();
                }
                "sinceTime" => {
                    let decoded = value.replace("%3A", ":").replace("%3a", ":");
                    options.since = Some(decoded.parse().map_err(|_| {
                        LogError::BadRequest(format!(
                            "sinceTime: {value:?} is not an RFC 3339 time"
                        ))
                    })?);
                }
                // Unknown parameters are ignored, as the kubelet does.
                _ => {}
            }
        }
        Ok(options)
    }
}

/// The last `lines` lines of `text` (a final line without a newline counts as a line).
pub fn tail(text: &[u8], lines: usize) -> &[u8] {
    if lines == 0 {
        return &text[text.len()..];
    }
    let body = text.strip_suffix(b"\n").unwrap_or(text);
    let mut seen = 0;
    for (i, byte) in body.iter().enumerate().rev() {
        if *byte == b'\n' {
            seen += 1;
            if seen == lines {
                return &text[i + 1..];
            }
        }
    }
    text
}

/// The files to read, in order (one when stdout and stderr share a file).
fn files(paths: &LogPaths) -> Vec<PathBuf> {
    let mut files = vec![paths.stdout.clone()];
    if paths.stderr != paths.stdout {
        files.push(paths.stderr.clone());
    }
    files
}

/// What `path` holds from `offset` on (nothing when it does not exist yet).
pub(super) async fn read_from(path: &Path, offset: u64) -> std::io::Result<Vec<u8>> {
    let mut file = match tokio::fs::File::open(path).await {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    file.seek(SeekFrom::Start(offset)).await?;
    let mut out = Vec::new();
    file.read_to_end(&mut out).await?;
    Ok(out)
}

/// The log content as a stream of chunks: the (tail of the) current content, then, when
/// following, new output until `finished` turns true (or its sender goes away) and the files are
/// drained. The stream ends early when the client goes away.
pub fn stream_logs(
    paths: LogPaths,
    options: LogOptions,
    finished: watch::Receiver<bool>,
) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        let combined = super::cri::combined_log(&paths);
        let pumped = if tokio::fs::try_exists(&combined).await.unwrap_or(false) {
            super::cri::pump(&combined, &options, finished, &tx).await
        } else {
            pump(&paths, &options, finished, &tx).await
        };
        if let Err(error) = pumped {
            let _ = tx.send(Err(error)).await;
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// Sends `data` within the byte budget; false when the stream should end.
pub(super) async fn send(
    tx: &mpsc::Sender<std::io::Result<Bytes>>,
    budget: &mut Option<u64>,
    mut data: Vec<u8>,
) -> bool {
    if let Some(left) = budget.as_mut() {
        data.truncate(usize::try_from(*left).unwrap_or(usize::MAX));
        *left -= data.len() as u64;
    }
    if !data.is_empty() && tx.send(Ok(Bytes::from(data))).await.is_err() {
        return false;
    }
    budget.is_none_or(|left| left > 0)
}

async fn pump(
    paths: &LogPaths,
    options: &LogOptions,
    mut finished: watch::Receiver<bool>,
    tx: &mpsc::Sender<std::io::Result<Bytes>>,
) -> std::io::Result<()> {
    let files = files(paths);
    let mut offsets = vec![0u64; files.len()];
    let mut budget = options.limit_bytes;
    let mut current = Vec::new();
    for (file, offset) in files.iter().zip(offsets.iter_mut()) {
        let data = read_from(file, 0).await?;
        *offset = data.len() as u64;
        current.extend(data);
    }
    let initial = match options.tail_lines {
        Some(lines) => tail(&current, lines).to_vec(),
        None => current,
    };
    if !send(tx, &mut budget, initial).await || !options.follow {
        return Ok(());
    }
    loop {
        // Read after seeing "finished" so that the last output is not lost.
        let done = *finished.borrow_and_update();
        for (file, offset) in files.iter().zip(offsets.iter_mut()) {
            let data = read_from(file, *offset).await?;
            *offset += data.len() as u64;
            if !send(tx, &mut budget, data).await {
                return Ok(());
            }
        }
        if done {
            return Ok(());
        }
        tokio::select! {
            changed = finished.changed() => {
                if changed.is_err() {
                    // The Pod is gone from the index: drain once more and end.
                    for (file, offset) in files.iter().zip(offsets.iter_mut()) {
                        let data = read_from(file, *offset).await?;
                        *offset += data.len() as u64;
                        send(tx, &mut budget, data).await;
                    }
                    return Ok(());
                }
            }
            () = tokio::time::sleep(FOLLOW_POLL) => {}
            () = tx.closed() => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;

    fn now() -> jiff::Timestamp {
        "2026-01-01T00:10:00Z".parse().unwrap()
    }

    #[test]
    fn query_options_parse_like_the_kubelet() {
        assert_eq!(
            LogOptions::parse(
                "follow=true&tailLines=5&limitBytes=100&container=main&timestamps=true",
                now()
            )
            .unwrap(),
            LogOptions {
                follow: true,
                tail_lines: Some(5),
                limit_bytes: Some(100),
                previous: false,
                timestamps: true,
                since: None,
            }
        );
        assert_eq!(LogOptions::parse("", now()).unwrap(), LogOptions::default());
        let since = LogOptions::parse("sinceSeconds=60", now()).unwrap().since;
        assert_eq!(since, Some("2026-01-01T00:09:00Z".parse().unwrap()));
        let since = LogOptions::parse("sinceTime=2026-01-01T00%3A05%3A00Z", now())
            .unwrap()
            .since;
        assert_eq!(since, Some("2026-01-01T00:05:00Z".parse().unwrap()));
        for bad in ["sinceTime=yesterday", "tailLines=x", "follow=maybe"] {
            assert!(
                matches!(LogOptions::parse(bad, now()), Err(LogError::BadRequest(_))),
                "{bad}"
            );
        }
        assert!(LogOptions::parse("previous=true", now()).unwrap().previous);
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let cases: [(&str, usize, &str); 6] = [
            ("a\nb\nc\n", 2, "b\nc\n"),
            ("a\nb\nc", 2, "b\nc"),
            ("a\nb\n", 5, "a\nb\n"),
            ("a\nb\n", 0, ""),
            ("", 3, ""),
            ("one\n", 1, "one\n"),
        ];
        for (text, lines, want) in cases {
            assert_eq!(
                tail(text.as_bytes(), lines),
                want.as_bytes(),
                "{text:?} {lines}"
            );
        }
    }

    async fn collect(stream: impl Stream<Item = std::io::Result<Bytes>>) -> String {
        let chunks: Vec<_> = stream.collect().await;
        let bytes: Vec<u8> = chunks
            .into_iter()
            .flat_map(|c| c.unwrap().to_vec())
            .collect();
        String::from_utf8(bytes).unwrap()
    }

    fn paths(dir: &Path) -> LogPaths {
        LogPaths {
            stdout: dir.join("stdout"),
            stderr: dir.join("stderr"),
        }
    }

    #[tokio::test]
    async fn a_read_returns_stdout_then_stderr_within_the_limits() {
        let dir = tempfile::tempdir().unwrap();
        let p = paths(dir.path());
        std::fs::write(&p.stdout, "out1\nout2\n").unwrap();
        std::fs::write(&p.stderr, "err1\n").unwrap();
        let (_tx, rx) = watch::channel(true);
        let all = collect(stream_logs(p.clone(), LogOptions::default(), rx.clone())).await;
        assert_eq!(all, "out1\nout2\nerr1\n");
        let tail = LogOptions {
            tail_lines: Some(2),
            ..LogOptions::default()
        };
        assert_eq!(
            collect(stream_logs(p.clone(), tail, rx.clone())).await,
            "out2\nerr1\n"
        );
        let limited = LogOptions {
            limit_bytes: Some(6),
            ..LogOptions::default()
        };
        assert_eq!(collect(stream_logs(p, limited, rx)).await, "out1\no");
    }

    #[tokio::test]
    async fn a_follow_streams_new_output_until_the_container_finishes() {
        let dir = tempfile::tempdir().unwrap();
        let p = paths(dir.path());
        std::fs::write(&p.stdout, "first\n").unwrap();
        let (finished, rx) = watch::channel(false);
        let follow = LogOptions {
            follow: true,
            ..LogOptions::default()
        };
        let mut stream = Box::pin(stream_logs(p.clone(), follow, rx));
        let first = stream.next().await.unwrap().unwrap();
        assert_eq!(&first[..], b"first\n");
        std::fs::write(&p.stdout, "first\nsecond\n").unwrap();
        let second = stream.next().await.unwrap().unwrap();
        assert_eq!(&second[..], b"second\n");
        std::fs::write(&p.stderr, "last\n").unwrap();
        finished.send(true).unwrap();
        assert_eq!(collect(stream).await, "last\n");
    }
}
