//! Serving the interleaved, timed log the log driver writes (`main.log`, kubelet CRI format):
//! the lines' content, with `timestamps` their times, from `since` on, the last `tailLines`;
//! following it until the container has finished.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use tokio::sync::{mpsc, watch};

use super::driver::{COMBINED_LOG, parse_cri_line};
use super::read::{FOLLOW_POLL, LogOptions, read_from, send};
use crate::runtime::LogPaths;

/// The combined log of a container whose plain logs are `paths`.
pub fn combined_log(paths: &LogPaths) -> PathBuf {
    paths
        .stdout
        .parent()
        .map(|dir| dir.join(COMBINED_LOG))
        .unwrap_or_else(|| PathBuf::from(COMBINED_LOG))
}

/// The output for complete CRI `lines` (each ending in a newline) under `options`.
pub fn render(lines: &[u8], options: &LogOptions) -> Vec<u8> {
    let mut out = Vec::new();
    for line in lines.split_inclusive(|b| *b == b'\n') {
        let Some((time, _stream, content)) = parse_cri_line(line) else {
            continue;
        };
        if let Some(since) = options.since
            && time.parse::<jiff::Timestamp>().is_ok_and(|t| t < since)
        {
            continue;
        }
        if options.timestamps {
            out.extend_from_slice(time.as_bytes());
            out.push(b' ');
        }
        out.extend_from_slice(content);
    }
    out
}

/// Splits `data` after its last newline: (complete lines, the partial rest).
fn complete_lines(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().rposition(|b| *b == b'\n') {
        Some(last) => data.split_at(last + 1),
        None => (&data[..0], data),
    }
}

pub(super) async fn pump(
    path: &Path,
    options: &LogOptions,
    mut finished: watch::Receiver<bool>,
    tx: &mpsc::Sender<std::io::Result<Bytes>>,
) -> std::io::Result<()> {
    let mut budget = options.limit_bytes;
    let data = read_from(path, 0).await?;
    let (lines, _) = complete_lines(&data);
    let mut offset = lines.len() as u64;
    let mut rendered = render(lines, options);
    if let Some(n) = options.tail_lines {
        rendered = super::read::tail(&rendered, n).to_vec();
    }
    if !send(tx, &mut budget, rendered).await || !options.follow {
        return Ok(());
    }
    loop {
        let done = *finished.borrow_and_update();
        let data = read_from(path, offset).await?;
        let (lines, _) = complete_lines(&data);
        offset += lines.len() as u64;
        if !send(tx, &mut budget, render(lines, options)).await {
            return Ok(());
        }
        if done {
            return Ok(());
        }
        tokio::select! {
            changed = finished.changed() => {
                if changed.is_err() {
                    let data = read_from(path, offset).await?;
                    let (lines, _) = complete_lines(&data);
                    send(tx, &mut budget, render(lines, options)).await;
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
    use super::*;

    const LOG: &str = "2026-01-01T00:00:01.000000000Z stdout F one\n\
                       2026-01-01T00:00:02.000000000Z stderr F two\n\
                       2026-01-01T00:00:03.000000000Z stdout F three\n";

    #[test]
    fn lines_render_with_or_without_times_and_from_a_time_on() {
        let plain = render(LOG.as_bytes(), &LogOptions::default());
        assert_eq!(plain, b"one\ntwo\nthree\n");
        let timed = LogOptions {
            timestamps: true,
            since: Some("2026-01-01T00:00:02Z".parse().unwrap()),
            ..LogOptions::default()
        };
        assert_eq!(
            String::from_utf8(render(LOG.as_bytes(), &timed)).unwrap(),
            "2026-01-01T00:00:02.000000000Z two\n2026-01-01T00:00:03.000000000Z three\n"
        );
    }

    #[test]
    fn a_partial_last_line_waits_for_its_newline() {
        let (lines, rest) = complete_lines(b"a\nb\npart");
        assert_eq!((lines, rest), (&b"a\nb\n"[..], &b"part"[..]));
        assert_eq!(complete_lines(b"part"), (&b""[..], &b"part"[..]));
    }
}
