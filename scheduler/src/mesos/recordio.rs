//! RecordIO, the framing of the Mesos scheduler event stream (mesos-offers.md §1.3).
//!
//! ```text
//! record = record-size LF record-data      ; size in decimal bytes, never 0, no separator after
//! ```
//!
//! HTTP chunk boundaries mean nothing: [`RecordIoDecoder`] is fed whatever bytes arrive and
//! yields complete records, keeping partial ones across calls.

use bytes::{Buf, Bytes, BytesMut};

/// Records larger than this are refused (an OFFERS event for thousands of agents is a few MB).
pub const DEFAULT_MAX_RECORD: usize = 64 * 1024 * 1024;

/// Errors of the RecordIO decoder; the stream cannot be resynchronised after one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordIoError {
    /// A byte other than an ASCII digit where the record size is expected.
    #[error("invalid byte {byte:#04x} in a record size")]
    InvalidSize {
        /// The byte.
        byte: u8,
    },
    /// A record size of zero.
    #[error("record size is zero")]
    ZeroSize,
    /// A record size above the limit (or not fitting in 64 bits).
    #[error("record size {size} exceeds the limit of {max} bytes")]
    TooLarge {
        /// The announced size (saturated at `u64::MAX`).
        size: u64,
        /// The limit.
        max: usize,
    },
}

/// Frames one record: `<len>\n<bytes>`.
pub fn encode(record: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(record.len() + 12);
    out.extend_from_slice(record.len().to_string().as_bytes());
    out.extend_from_slice(b"\n");
    out.extend_from_slice(record);
    out.freeze()
}

/// Incremental decoder.
#[derive(Debug)]
pub struct RecordIoDecoder {
    buf: BytesMut,
    max: usize,
    /// Size of the record being read, once its header is complete.
    pending: Option<usize>,
}

impl Default for RecordIoDecoder {
    fn default() -> Self {
        RecordIoDecoder::new(DEFAULT_MAX_RECORD)
    }
}

impl RecordIoDecoder {
    /// A decoder refusing records above `max` bytes.
    pub fn new(max: usize) -> RecordIoDecoder {
        RecordIoDecoder {
            buf: BytesMut::new(),
            max,
            pending: None,
        }
    }

    /// Appends received bytes.
    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// The next complete record, `None` when more bytes are needed.
    ///
    /// # Errors
    /// A malformed size line; the decoder must then be dropped with its stream.
    pub fn next_record(&mut self) -> Result<Option<Bytes>, RecordIoError> {
        let size = match self.pending {
            Some(size) => size,
            None => match self.read_size()? {
                Some(size) => size,
                None => return Ok(None),
            },
        };
        if self.buf.len() < size {
            self.pending = Some(size);
            return Ok(None);
        }
        self.pending = None;
        Ok(Some(self.buf.split_to(size).freeze()))
    }

    /// Parses a size line if a whole one is buffered, consuming it.
    fn read_size(&mut self) -> Result<Option<usize>, RecordIoError> {
        // Upstream's reference decoder tolerates empty lines before a size.
        while self.buf.first() == Some(&b'\n') {
            self.buf.advance(1);
        }
        let mut size: u64 = 0;
        for (i, &byte) in self.buf.iter().enumerate() {
            match byte {
                b'0'..=b'9' => {
                    size = size
                        .checked_mul(10)
                        .and_then(|s| s.checked_add(u64::from(byte - b'0')))
                        .ok_or(RecordIoError::TooLarge {
                            size: u64::MAX,
                            max: self.max,
                        })?;
                }
                b'\n' => {
                    if size == 0 {
                        return Err(RecordIoError::ZeroSize);
                    }
                    let fits = usize::try_from(size).ok().filter(|s| *s <= self.max);
                    let Some(size) = fits else {
                        return Err(RecordIoError::TooLarge {
                            size,
                            max: self.max,
                        });
                    };
                    self.buf.advance(i + 1);
                    return Ok(Some(size));
                }
                other => return Err(RecordIoError::InvalidSize { byte: other }),
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The first two records a subscriber receives, byte-exact from the reference.
    const STREAM: &str = "139\n{\"type\":\"SUBSCRIBED\",\"subscribed\":{\"framework_id\":{\"value\":\"c2f6d3a4-5b7e-4e1f-9a0b-1d2e3f4a5b6c-0001\"},\"heartbeat_interval_seconds\":15.0}}20\n{\"type\":\"HEARTBEAT\"}";

    fn records() -> [&'static str; 2] {
        [
            "{\"type\":\"SUBSCRIBED\",\"subscribed\":{\"framework_id\":{\"value\":\"c2f6d3a4-5b7e-4e1f-9a0b-1d2e3f4a5b6c-0001\"},\"heartbeat_interval_seconds\":15.0}}",
            "{\"type\":\"HEARTBEAT\"}",
        ]
    }

    #[test]
    fn encoding_matches_the_reference_bytes() {
        let [a, b] = records();
        let mut out = encode(a.as_bytes()).to_vec();
        out.extend_from_slice(&encode(b.as_bytes()));
        assert_eq!(String::from_utf8(out).unwrap(), STREAM);
    }

    #[test]
    fn decoding_works_across_every_split_point() {
        for split in 0..=STREAM.len() {
            let mut decoder = RecordIoDecoder::default();
            let mut got = Vec::new();
            for part in [&STREAM.as_bytes()[..split], &STREAM.as_bytes()[split..]] {
                decoder.push(part);
                while let Some(record) = decoder.next_record().unwrap() {
                    got.push(String::from_utf8(record.to_vec()).unwrap());
                }
            }
            assert_eq!(got, records(), "split at {split}");
        }
    }

    #[test]
    fn byte_by_byte_feeding_and_leading_empty_lines_are_fine() {
        let mut decoder = RecordIoDecoder::default();
        let mut got = Vec::new();
        for byte in b"\n\n3\nabc2\nde" {
            decoder.push(&[*byte]);
            while let Some(record) = decoder.next_record().unwrap() {
                got.push(record);
            }
        }
        assert_eq!(
            got,
            vec![Bytes::from_static(b"abc"), Bytes::from_static(b"de")]
        );
    }

    #[test]
    fn malformed_sizes_are_errors() {
        let cases: [(&[u8], RecordIoError); 4] = [
            (b"12a\n", RecordIoError::InvalidSize { byte: b'a' }),
            (b"0\n", RecordIoError::ZeroSize),
            (
                b"101\n",
                RecordIoError::TooLarge {
                    size: 101,
                    max: 100,
                },
            ),
            (
                b"99999999999999999999999\n",
                RecordIoError::TooLarge {
                    size: u64::MAX,
                    max: 100,
                },
            ),
        ];
        for (input, want) in cases {
            let mut decoder = RecordIoDecoder::new(100);
            decoder.push(input);
            assert_eq!(decoder.next_record(), Err(want));
        }
    }
}
