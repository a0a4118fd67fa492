//! Audit archives (`agent-ledger-archive/v1`): a self-contained, streamable
//! export of a range of the log with what is needed to check it against a
//! signed checkpoint, offline (docs/FORMAT.md, "Audit archives").
//!
//! The bytes (before the compression the tools wrap around them) are the
//! magic line `agent-ledger-archive/v1\n`, then frames `tag (1 byte) ‖
//! length (u32 big-endian) ‖ body`, in this order:
//!
//! | tag | body | |
//! |---|---|---|
//! | `H` | header, JSON ([`ArchiveHeader`]) | once |
//! | `C` | the signed checkpoint note of `tree_size`, with any witness cosignatures | once |
//! | `F` | the frontier of `[0, start)`: the hashes of its complete subtrees, largest first (`32·k` bytes) | once |
//! | `R` | the RFC 9162 consistency proof from `end` to `tree_size` | once |
//! | `S` | the consistency proof from `since_size` to `tree_size` | only with `since_size` |
//! | `L` | the leaf bytes of one entry, `start` to `end - 1` in order | `end - start` times |
//! | `E` | the number of leaves, u64 big-endian | once, last |
//!
//! Why leaves plus a frontier and one proof, rather than tiles or per-entry
//! proofs: the leaves and the frontier rebuild the tree of size `end`
//! exactly (every leaf is hashed into the root, none can be skipped or
//! reordered), and one consistency proof ties that root to the signed one.
//! The overhead is at most 320 hashes whatever the range, where hash
//! tiles add 32 bytes per entry and per-entry inclusion proofs
//! `32·log2(n)` bytes per entry. A reader never holds more than one leaf:
//! each frame is bounded before it is read.
//!
//! This module owns the framing; compression (zstd) and files are the
//! tools' (`ledger-core` writes, `ledger-verify` reads).

use alloc::string::String;
use alloc::vec::Vec;
use std::io::{Read, Write};

use serde::{Deserialize, Serialize};

use crate::hash::Hash;

/// The magic line that opens every archive.
pub const MAGIC: &[u8] = b"agent-ledger-archive/v1\n";

/// The format name, also in the header.
pub const FORMAT: &str = "agent-ledger-archive/v1";

/// Longest leaf a frame may hold (the log's entry bundles cap leaves at
/// 65,535 bytes).
pub const MAX_LEAF_BYTES: usize = u16::MAX as usize;

/// Longest checkpoint note (origin, three lines, extensions and up to a
/// few hundred signature lines).
pub const MAX_CHECKPOINT_BYTES: usize = 64 * 1024;

/// Longest header.
pub const MAX_HEADER_BYTES: usize = 4 * 1024;

/// Most hashes in a frontier or a consistency proof (a tree of 2^64
/// entries needs at most 64 frontier hashes and 2·64 proof hashes).
pub const MAX_HASHES: usize = 128;

/// What an archive holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveHeader {
    /// Always [`FORMAT`].
    pub format: String,
    /// The log's origin (the checkpoint's first line).
    pub origin: String,
    /// First entry exported.
    pub start: u64,
    /// One past the last entry exported.
    pub end: u64,
    /// Size of the checkpoint the range is checked against.
    pub tree_size: u64,
    /// The size the auditor last saw, when a consistency proof from it is
    /// included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_size: Option<u64>,
}

/// The part of an archive before its leaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveHead {
    /// The header.
    pub header: ArchiveHeader,
    /// The checkpoint note, with its signatures and cosignatures.
    pub checkpoint: String,
    /// The frontier of `[0, start)`.
    pub frontier: Vec<Hash>,
    /// Consistency proof from `end` to `tree_size`.
    pub range_proof: Vec<Hash>,
    /// Consistency proof from `since_size` to `tree_size`.
    pub since_proof: Option<Vec<Hash>>,
}

/// A malformed or truncated archive.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArchiveError {
    /// Reading or writing failed (a truncated file ends here too).
    #[error("archive I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The input does not start with [`MAGIC`].
    #[error("not an agent-ledger-archive/v1 archive")]
    Magic,
    /// A frame other than the one the format puts next.
    #[error("expected a {expected:?} frame, found {found:?}")]
    Order {
        /// The tag expected.
        expected: char,
        /// The tag found.
        found: char,
    },
    /// A frame longer than its kind allows.
    #[error("a {tag:?} frame of {len} bytes exceeds its limit of {max}")]
    TooLong {
        /// Its tag.
        tag: char,
        /// Its declared length.
        len: u64,
        /// The limit.
        max: usize,
    },
    /// A header that does not parse or does not describe a range of the
    /// checkpoint's tree.
    #[error("archive header: {0}")]
    Header(String),
    /// A hash list whose length is not a multiple of 32.
    #[error("a {0:?} frame is not a list of 32-byte hashes")]
    Hashes(char),
    /// The end frame counts other than the header's range, or the leaves
    /// stop early.
    #[error("the archive holds {found} leaves, its header promises {expected}")]
    Count {
        /// Leaves the header promises.
        expected: u64,
        /// Leaves found.
        found: u64,
    },
    /// The end frame declares another count than the header's range.
    #[error("the end frame counts {declared} leaves, the header promises {expected}")]
    EndCount {
        /// What the end frame says.
        declared: u64,
        /// Leaves the header promises.
        expected: u64,
    },
    /// Bytes after the end frame.
    #[error("bytes after the end of the archive")]
    Trailing,
}

impl ArchiveHeader {
    /// Whether the archive holds every entry of its tree.
    pub fn whole_tree(&self) -> bool {
        self.start == 0 && self.end == self.tree_size
    }

    /// Checks that the header describes a range of the tree it names.
    pub fn check(&self) -> Result<(), ArchiveError> {
        if self.format != FORMAT {
            return Err(ArchiveError::Header(alloc::format!("format {:?}, not {FORMAT}", self.format)));
        }
        if self.start > self.end || self.end > self.tree_size {
            return Err(ArchiveError::Header(alloc::format!(
                "range [{}, {}) is not within the tree of {} entries",
                self.start,
                self.end,
                self.tree_size
            )));
        }
        if self.since_size.is_some_and(|m| m > self.tree_size) {
            return Err(ArchiveError::Header("since_size is beyond the tree size".into()));
        }
        Ok(())
    }
}

fn hashes_bytes(hashes: &[Hash]) -> Vec<u8> {
    hashes.iter().flatten().copied().collect()
}

fn frame(out: &mut impl Write, tag: u8, body: &[u8]) -> Result<(), ArchiveError> {
    let len = u32::try_from(body.len()).map_err(|_| ArchiveError::TooLong {
        tag: char::from(tag),
        len: body.len() as u64,
        max: u32::MAX as usize,
    })?;
    out.write_all(&[tag])?;
    out.write_all(&len.to_be_bytes())?;
    out.write_all(body)?;
    Ok(())
}

/// Writes an archive frame by frame: the head, each leaf in order, then
/// [`ArchiveWriter::finish`].
#[derive(Debug)]
pub struct ArchiveWriter<W: Write> {
    out: W,
    expected: u64,
    written: u64,
}

impl<W: Write> ArchiveWriter<W> {
    /// Writes the magic line and the head.
    pub fn begin(mut out: W, head: &ArchiveHead) -> Result<Self, ArchiveError> {
        head.header.check()?;
        if head.since_proof.is_some() != head.header.since_size.is_some() {
            return Err(ArchiveError::Header("a since proof goes with since_size, and only with it".into()));
        }
        out.write_all(MAGIC)?;
        let header = serde_json::to_vec(&head.header).map_err(|e| ArchiveError::Header(alloc::format!("{e}")))?;
        frame(&mut out, b'H', &header)?;
        frame(&mut out, b'C', head.checkpoint.as_bytes())?;
        frame(&mut out, b'F', &hashes_bytes(&head.frontier))?;
        frame(&mut out, b'R', &hashes_bytes(&head.range_proof))?;
        if let Some(proof) = &head.since_proof {
            frame(&mut out, b'S', &hashes_bytes(proof))?;
        }
        Ok(Self { out, expected: head.header.end - head.header.start, written: 0 })
    }

    /// Writes the next leaf.
    pub fn leaf(&mut self, leaf: &[u8]) -> Result<(), ArchiveError> {
        if leaf.len() > MAX_LEAF_BYTES {
            return Err(ArchiveError::TooLong { tag: 'L', len: leaf.len() as u64, max: MAX_LEAF_BYTES });
        }
        if self.written == self.expected {
            return Err(ArchiveError::Count { expected: self.expected, found: self.written + 1 });
        }
        frame(&mut self.out, b'L', leaf)?;
        self.written += 1;
        Ok(())
    }

    /// Writes the end frame once every leaf is written, and returns the
    /// output.
    pub fn finish(mut self) -> Result<W, ArchiveError> {
        if self.written != self.expected {
            return Err(ArchiveError::Count { expected: self.expected, found: self.written });
        }
        frame(&mut self.out, b'E', &self.written.to_be_bytes())?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Reads an archive frame by frame, each bounded before it is read.
#[derive(Debug)]
pub struct ArchiveReader<R: Read> {
    input: R,
    expected: u64,
    read: u64,
    done: bool,
}

/// The frame header: its tag and length.
fn read_frame_head(input: &mut impl Read) -> Result<(u8, u64), ArchiveError> {
    let mut head = [0u8; 5];
    input.read_exact(&mut head)?;
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]);
    Ok((head[0], u64::from(len)))
}

fn read_body(input: &mut impl Read, tag: u8, len: u64, max: usize) -> Result<Vec<u8>, ArchiveError> {
    let n = usize::try_from(len).ok().filter(|&n| n <= max).ok_or(ArchiveError::TooLong { tag: char::from(tag), len, max })?;
    let mut body = alloc::vec![0u8; n];
    input.read_exact(&mut body)?;
    Ok(body)
}

fn expect_frame(input: &mut impl Read, tag: u8, max: usize) -> Result<Vec<u8>, ArchiveError> {
    let (found, len) = read_frame_head(input)?;
    if found != tag {
        return Err(ArchiveError::Order { expected: char::from(tag), found: char::from(found) });
    }
    read_body(input, tag, len, max)
}

fn parse_hashes(tag: u8, body: &[u8]) -> Result<Vec<Hash>, ArchiveError> {
    if !body.len().is_multiple_of(32) {
        return Err(ArchiveError::Hashes(char::from(tag)));
    }
    Ok(body.chunks_exact(32).map(|c| <Hash>::try_from(c).unwrap_or([0; 32])).collect())
}

impl<R: Read> ArchiveReader<R> {
    /// Reads the magic line and the head.
    pub fn open(mut input: R) -> Result<(Self, ArchiveHead), ArchiveError> {
        let mut magic = [0u8; MAGIC.len()];
        input.read_exact(&mut magic).map_err(|_| ArchiveError::Magic)?;
        if magic != MAGIC {
            return Err(ArchiveError::Magic);
        }
        let header = expect_frame(&mut input, b'H', MAX_HEADER_BYTES)?;
        let header: ArchiveHeader = serde_json::from_slice(&header).map_err(|e| ArchiveError::Header(alloc::format!("{e}")))?;
        header.check()?;
        let checkpoint = expect_frame(&mut input, b'C', MAX_CHECKPOINT_BYTES)?;
        let checkpoint = String::from_utf8(checkpoint).map_err(|_| ArchiveError::Header("the checkpoint is not UTF-8".into()))?;
        let frontier = parse_hashes(b'F', &expect_frame(&mut input, b'F', 32 * MAX_HASHES)?)?;
        let range_proof = parse_hashes(b'R', &expect_frame(&mut input, b'R', 32 * MAX_HASHES)?)?;
        let since_proof = match header.since_size {
            Some(_) => Some(parse_hashes(b'S', &expect_frame(&mut input, b'S', 32 * MAX_HASHES)?)?),
            None => None,
        };
        let expected = header.end - header.start;
        let head = ArchiveHead { header, checkpoint, frontier, range_proof, since_proof };
        Ok((Self { input, expected, read: 0, done: false }, head))
    }

    /// The next leaf, `None` after the last one (once the end frame checks
    /// out and nothing follows it).
    pub fn next_leaf(&mut self) -> Result<Option<Vec<u8>>, ArchiveError> {
        if self.done {
            return Ok(None);
        }
        let (tag, len) = read_frame_head(&mut self.input).map_err(|e| match e {
            ArchiveError::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
                ArchiveError::Count { expected: self.expected, found: self.read }
            }
            other => other,
        })?;
        match tag {
            b'L' if self.read < self.expected => {
                let leaf = read_body(&mut self.input, tag, len, MAX_LEAF_BYTES)?;
                self.read += 1;
                Ok(Some(leaf))
            }
            b'L' => Err(ArchiveError::Count { expected: self.expected, found: self.read + 1 }),
            b'E' => {
                let body = read_body(&mut self.input, tag, len, 8)?;
                let count = <[u8; 8]>::try_from(body.as_slice()).map(u64::from_be_bytes).map_err(|_| ArchiveError::Hashes('E'))?;
                if self.read != self.expected {
                    return Err(ArchiveError::Count { expected: self.expected, found: self.read });
                }
                if count != self.expected {
                    return Err(ArchiveError::EndCount { declared: count, expected: self.expected });
                }
                let mut rest = [0u8; 1];
                if self.input.read(&mut rest)? != 0 {
                    return Err(ArchiveError::Trailing);
                }
                self.done = true;
                Ok(None)
            }
            other => Err(ArchiveError::Order { expected: 'L', found: char::from(other) }),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn head(start: u64, end: u64, since: Option<u64>) -> ArchiveHead {
        ArchiveHead {
            header: ArchiveHeader { format: FORMAT.into(), origin: "example.org/log".into(), start, end, tree_size: 10, since_size: since },
            checkpoint: "example.org/log\n10\nAAAA\n\n— example.org/log AAAA\n".into(),
            frontier: alloc::vec![[1; 32], [2; 32]],
            range_proof: alloc::vec![[3; 32]],
            since_proof: since.map(|_| alloc::vec![[4; 32]]),
        }
    }

    fn write(head: &ArchiveHead, leaves: &[&[u8]]) -> Vec<u8> {
        let mut w = ArchiveWriter::begin(Vec::new(), head).unwrap();
        for leaf in leaves {
            w.leaf(leaf).unwrap();
        }
        w.finish().unwrap()
    }

    fn read_all(bytes: &[u8]) -> Result<(ArchiveHead, Vec<Vec<u8>>), ArchiveError> {
        let (mut r, head) = ArchiveReader::open(bytes)?;
        let mut leaves = Vec::new();
        while let Some(leaf) = r.next_leaf()? {
            leaves.push(leaf);
        }
        Ok((head, leaves))
    }

    #[test]
    fn round_trips() {
        for since in [None, Some(4)] {
            let h = head(3, 5, since);
            let bytes = write(&h, &[b"a", b"bc"]);
            let (read, leaves) = read_all(&bytes).unwrap();
            assert_eq!(read, h);
            assert_eq!(leaves, [b"a".to_vec(), b"bc".to_vec()]);
        }
    }

    #[test]
    fn truncation_reordering_and_trailing_bytes_are_refused() {
        let bytes = write(&head(3, 5, None), &[b"a", b"bc"]);
        // Cut anywhere: an error, never a short list of leaves.
        for cut in 0..bytes.len() {
            assert!(read_all(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(matches!(read_all(&extra), Err(ArchiveError::Trailing)));
        // The end frame with another count.
        let mut wrong = bytes.clone();
        let n = wrong.len();
        wrong[n - 1] = 3;
        assert!(matches!(read_all(&wrong), Err(ArchiveError::EndCount { declared: 3, expected: 2 })));
        // Frames out of order: the range proof before the frontier.
        let mut out = MAGIC.to_vec();
        frame(&mut out, b'H', &serde_json::to_vec(&head(3, 5, None).header).unwrap()).unwrap();
        frame(&mut out, b'C', b"x").unwrap();
        frame(&mut out, b'R', &[0; 32]).unwrap();
        assert!(matches!(read_all(&out), Err(ArchiveError::Order { expected: 'F', found: 'R' })));
    }

    #[test]
    fn oversized_frames_and_bad_headers_are_refused_before_allocating() {
        let mut out = MAGIC.to_vec();
        out.push(b'H');
        out.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(read_all(&out), Err(ArchiveError::TooLong { tag: 'H', .. })));
        let mut bad = head(6, 5, None);
        assert!(matches!(ArchiveWriter::begin(Vec::new(), &bad), Err(ArchiveError::Header(_))));
        bad = head(0, 11, None);
        assert!(ArchiveWriter::begin(Vec::new(), &bad).is_err());
        let mut w = ArchiveWriter::begin(Vec::new(), &head(3, 4, None)).unwrap();
        w.leaf(b"a").unwrap();
        assert!(matches!(w.leaf(b"b"), Err(ArchiveError::Count { .. })));
        assert!(read_all(b"agent-ledger-archive/v2\n").is_err());
    }
}
