//! On-disk durability: a write-ahead log of every change plus periodic snapshots.
//!
//! Layout of the data directory:
//!
//! ```text
//! wal-<first rv, 20 digits>.log     segments, appended in resourceVersion order
//! snapshot-<rv, 20 digits>.snap    every live object at that rv, ends with a footer record
//! ```
//!
//! A record is `len:u32 crc32:u32 body[len]`, little endian, with
//! `body = rv:u64 kind:u8 group_resource namespace name (u16 length + bytes each) json (u32 length + bytes)`.
//! A torn record at the end of the last segment (a crash in the middle of a write) is cut off
//! on the next start; everything acknowledged before it was fully written, and fsynced when
//! `fsync` is on (group commit: one `fdatasync` covers every write that arrived meanwhile).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;

/// What a record says happened to an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordKind {
    /// The object was created.
    Added,
    /// The object was changed.
    Modified,
    /// The object was removed; the record carries its last state.
    Deleted,
    /// Snapshot footer: the snapshot is complete.
    SnapshotEnd,
}

impl RecordKind {
    fn code(self) -> u8 {
        match self {
            RecordKind::Added => 1,
            RecordKind::Modified => 2,
            RecordKind::Deleted => 3,
            RecordKind::SnapshotEnd => 255,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(RecordKind::Added),
            2 => Some(RecordKind::Modified),
            3 => Some(RecordKind::Deleted),
            255 => Some(RecordKind::SnapshotEnd),
            _ => None,
        }
    }
}

/// One logged change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// resourceVersion of the change.
    pub rv: u64,
    /// What happened.
    pub kind: RecordKind,
    /// `resource.group` of the object.
    pub group_resource: String,
    /// Namespace, empty for cluster-scoped objects.
    pub namespace: String,
    /// Object name.
    pub name: String,
    /// Serialized object.
    pub json: Bytes,
}

impl Record {
    /// Encodes the record with its length and checksum header.
    pub fn encode(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(
            8 + 1
                + 6
                + self.group_resource.len()
                + self.namespace.len()
                + self.name.len()
                + 4
                + self.json.len(),
        );
        body.extend_from_slice(&self.rv.to_le_bytes());
        body.push(self.kind.code());
        for s in [&self.group_resource, &self.namespace, &self.name] {
            // Names are bounded far below u16::MAX by validation; clamp defensively.
            let len = u16::try_from(s.len()).unwrap_or(u16::MAX);
            body.extend_from_slice(&len.to_le_bytes());
            body.extend_from_slice(&s.as_bytes()[..usize::from(len)]);
        }
        let json_len = u32::try_from(self.json.len()).unwrap_or(u32::MAX);
        body.extend_from_slice(&json_len.to_le_bytes());
        body.extend_from_slice(&self.json);
        let mut out = Vec::with_capacity(8 + body.len());
        out.extend_from_slice(&u32::try_from(body.len()).unwrap_or(u32::MAX).to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        out.extend_from_slice(&body);
        out
    }

    fn decode(body: &[u8]) -> Option<Record> {
        let mut cur = body;
        let rv = u64::from_le_bytes(take(&mut cur, 8)?.try_into().ok()?);
        let kind = RecordKind::from_code(*take(&mut cur, 1)?.first()?)?;
        let mut strings = Vec::with_capacity(3);
        for _ in 0..3 {
            let len = u16::from_le_bytes(take(&mut cur, 2)?.try_into().ok()?);
            let s = std::str::from_utf8(take(&mut cur, usize::from(len))?).ok()?;
            strings.push(s.to_owned());
        }
        let json_len = u32::from_le_bytes(take(&mut cur, 4)?.try_into().ok()?);
        let json = Bytes::copy_from_slice(take(&mut cur, usize::try_from(json_len).ok()?)?);
        let name = strings.pop()?;
        let namespace = strings.pop()?;
        let group_resource = strings.pop()?;
        Some(Record {
            rv,
            kind,
            group_resource,
            namespace,
            name,
            json,
        })
    }
}

fn take<'a>(cur: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if cur.len() < n {
        return None;
    }
    let (head, tail) = cur.split_at(n);
    *cur = tail;
    Some(head)
}

/// Reads records until the end or the first torn/corrupt one.
/// Returns the records and the byte offset just past the last good record.
pub fn read_records(path: &Path) -> io::Result<(Vec<Record>, u64)> {
    let mut reader = BufReader::with_capacity(1 << 20, File::open(path)?);
    let mut records = Vec::new();
    let mut good_end = 0u64;
    loop {
        let mut header = [0u8; 8];
        if !read_full(&mut reader, &mut header)? {
            break;
        }
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        let mut body = vec![0u8; len as usize];
        if !read_full(&mut reader, &mut body)? || crc32fast::hash(&body) != crc {
            break;
        }
        let Some(record) = Record::decode(&body) else {
            break;
        };
        records.push(record);
        good_end += 8 + u64::from(len);
    }
    Ok((records, good_end))
}

/// Fills `buf`; false when the stream ends before it is full.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<bool> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..])? {
            0 => return Ok(false),
            n => filled += n,
        }
    }
    Ok(true)
}

/// File names in the data directory.
pub fn segment_path(dir: &Path, first_rv: u64) -> PathBuf {
    dir.join(format!("wal-{first_rv:020}.log"))
}

/// Path of the snapshot taken at `rv`.
pub fn snapshot_path(dir: &Path, rv: u64) -> PathBuf {
    dir.join(format!("snapshot-{rv:020}.snap"))
}

/// Lists `(rv, path)` of files named `<prefix><rv><suffix>`, sorted by rv.
pub fn list_numbered(dir: &Path, prefix: &str, suffix: &str) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(num) = name
            .strip_prefix(prefix)
            .and_then(|n| n.strip_suffix(suffix))
            && let Ok(rv) = num.parse::<u64>()
        {
            out.push((rv, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Opens (creating if needed) a segment for appending, cutting a torn tail at `valid_len`.
pub fn open_segment(path: &Path, valid_len: Option<u64>) -> io::Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(path)?;
    if let Some(len) = valid_len
        && file.metadata()?.len() > len
    {
        file.set_len(len)?;
    }
    Ok(file)
}

/// Writes a complete snapshot atomically (temp file, fsync, rename, fsync dir).
pub fn write_snapshot(
    dir: &Path,
    rv: u64,
    records: impl Iterator<Item = Record>,
) -> io::Result<PathBuf> {
    let final_path = snapshot_path(dir, rv);
    let tmp = final_path.with_extension("snap.tmp");
    {
        let mut out = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
        let mut count = 0u64;
        for record in records {
            out.write_all(&record.encode())?;
            count += 1;
        }
        let footer = Record {
            rv,
            kind: RecordKind::SnapshotEnd,
            group_resource: String::new(),
            namespace: String::new(),
            name: count.to_string(),
            json: Bytes::new(),
        };
        out.write_all(&footer.encode())?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
    }
    fs::rename(&tmp, &final_path)?;
    sync_dir(dir)?;
    Ok(final_path)
}

/// Makes renames and new files in `dir` durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Reads a snapshot; `None` when it is incomplete (no footer).
pub fn read_snapshot(path: &Path) -> io::Result<Option<Vec<Record>>> {
    let (mut records, _) = read_records(path)?;
    match records.pop() {
        Some(footer) if footer.kind == RecordKind::SnapshotEnd => {
            let expected: usize = footer.name.parse().unwrap_or(usize::MAX);
            Ok((expected == records.len()).then_some(records))
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(rv: u64, kind: RecordKind) -> Record {
        Record {
            rv,
            kind,
            group_resource: "pods".into(),
            namespace: "default".into(),
            name: format!("p{rv}"),
            json: Bytes::from(format!("{{\"rv\":{rv}}}")),
        }
    }

    #[test]
    fn records_round_trip_and_a_torn_tail_is_ignored() {
        let dir = tempdir();
        let path = dir.join("seg.log");
        let mut bytes = Vec::new();
        for rv in 1..=3 {
            bytes.extend(record(rv, RecordKind::Added).encode());
        }
        let full_len = bytes.len() as u64;
        let torn = record(4, RecordKind::Modified).encode();
        bytes.extend_from_slice(&torn[..torn.len() - 3]);
        fs::write(&path, &bytes).unwrap();
        let (records, end) = read_records(&path).unwrap();
        assert_eq!(records.len(), 3);
        assert_eq!(records[2], record(3, RecordKind::Added));
        assert_eq!(end, full_len);
    }

    #[test]
    fn a_corrupt_record_stops_the_replay() {
        let dir = tempdir();
        let path = dir.join("seg.log");
        let mut bytes = record(1, RecordKind::Added).encode();
        let mut second = record(2, RecordKind::Added).encode();
        let last = second.len() - 1;
        second[last] ^= 0xff;
        bytes.extend(second);
        fs::write(&path, &bytes).unwrap();
        assert_eq!(read_records(&path).unwrap().0.len(), 1);
    }

    #[test]
    fn a_snapshot_without_its_footer_is_rejected() {
        let dir = tempdir();
        let path =
            write_snapshot(&dir, 7, (1..=2).map(|rv| record(rv, RecordKind::Added))).unwrap();
        assert_eq!(read_snapshot(&path).unwrap().unwrap().len(), 2);
        let bytes = fs::read(&path).unwrap();
        fs::write(&path, &bytes[..bytes.len() - 2]).unwrap();
        assert!(read_snapshot(&path).unwrap().is_none());
    }

    fn tempdir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("titus-wal-test-{}", uuid::Uuid::new_v4()));
        fs::create_dir_all(&dir).unwrap();
        dir
    }
}
