//! Tile paths and geometry (c2sp.org/tlog-tiles), tile height 8.
//!
//! A hash tile `tile/<L>/<N>` holds the hashes of tree level `8·L`, nodes
//! `[256·N, 256·N + W)`; an entry bundle `tile/entries/<N>` holds entries
//! `[256·N, 256·N + W)`, each behind a big-endian `u16` length. `N` is written
//! in groups of three digits, all but the last prefixed by `x`
//! (`1234067` → `x001/x234/067`); partial tiles add `.p/<W>` with
//! `1 <= W < 256`.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write as _;

use crate::hash::Hash;
use crate::tree::NodeId;

/// Levels per tile.
pub const TILE_HEIGHT: u8 = 8;
/// Hashes (or entries) in a full tile.
pub const TILE_WIDTH: u64 = 1 << TILE_HEIGHT;
/// Highest tile level whose nodes fit in a 64-bit tree.
pub const MAX_TILE_LEVEL: u8 = 7;

/// What a tile path names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TileKind {
    /// Hashes of tree level `8·level`.
    Hashes { level: u8 },
    /// An entry bundle.
    Entries,
}

/// A parsed tile path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TilePath {
    /// Hash tile or entry bundle.
    pub kind: TileKind,
    /// Tile index `N`.
    pub index: u64,
    /// Partial width `W` (1..=255), `None` for a full tile.
    pub partial: Option<u8>,
}

/// Why a tile path was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TilePathError {
    /// The path does not follow the tlog-tiles grammar.
    #[error("malformed tile path")]
    Malformed,
    /// The level is beyond what a 64-bit tree can have.
    #[error("tile level above {MAX_TILE_LEVEL}")]
    LevelTooHigh,
}

impl TilePath {
    /// Number of hashes or entries in the tile.
    pub fn width(&self) -> u64 {
        self.partial.map_or(TILE_WIDTH, u64::from)
    }

    /// Parses the part of the path after `tile/`.
    pub fn parse(path: &str) -> Result<Self, TilePathError> {
        let (kind_str, rest) = path.split_once('/').ok_or(TilePathError::Malformed)?;
        let kind = if kind_str == "entries" {
            TileKind::Entries
        } else {
            let level = parse_decimal(kind_str).ok_or(TilePathError::Malformed)?;
            if level > u64::from(MAX_TILE_LEVEL) {
                return Err(TilePathError::LevelTooHigh);
            }
            TileKind::Hashes { level: level as u8 }
        };
        let (index_str, partial) = match rest.split_once(".p/") {
            Some((idx, w)) => {
                let w = parse_decimal(w).filter(|w| (1..TILE_WIDTH).contains(w)).ok_or(TilePathError::Malformed)?;
                (idx, Some(w as u8))
            }
            None => (rest, None),
        };
        let index = parse_index(index_str).ok_or(TilePathError::Malformed)?;
        Ok(Self { kind, index, partial })
    }

    /// The path after `tile/`, e.g. `0/x001/234.p/7`.
    pub fn to_path(&self) -> String {
        let mut s = String::new();
        match self.kind {
            TileKind::Hashes { level } => {
                let _ = write!(s, "{level}/");
            }
            TileKind::Entries => s.push_str("entries/"),
        }
        s.push_str(&format_index(self.index));
        if let Some(w) = self.partial {
            let _ = write!(s, ".p/{w}");
        }
        s
    }

    /// The tree nodes a hash tile holds, in order; empty for entry bundles.
    pub fn node_ids(&self) -> Vec<NodeId> {
        match self.kind {
            TileKind::Hashes { level } => {
                // A tile beyond every possible tree holds no nodes (and
                // never overflows).
                let Some(start) = self.index.checked_mul(TILE_WIDTH) else { return Vec::new() };
                let end = start.saturating_add(self.width());
                (start..end).map(|i| NodeId::new(level * TILE_HEIGHT, i)).collect()
            }
            TileKind::Entries => Vec::new(),
        }
    }

    /// Whether a tree of `tree_size` leaves has everything this tile holds.
    pub fn available_in(&self, tree_size: u64) -> bool {
        let level = match self.kind {
            TileKind::Hashes { level } => level * TILE_HEIGHT,
            TileKind::Entries => 0,
        };
        let nodes_at_level = tree_size >> level;
        self.index.checked_mul(TILE_WIDTH).and_then(|s| s.checked_add(self.width())).is_some_and(|end| end <= nodes_at_level)
    }
}

fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0')) {
        return None;
    }
    s.parse().ok()
}

fn parse_index(s: &str) -> Option<u64> {
    let mut index: u64 = 0;
    let mut parts = s.split('/').peekable();
    while let Some(part) = parts.next() {
        let digits = if parts.peek().is_some() { part.strip_prefix('x')? } else { part };
        if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        index = index.checked_mul(1000)?.checked_add(digits.parse::<u64>().ok()?)?;
    }
    // One tile, one path: leading zero groups (`x000/001`) are refused.
    (format_index(index) == s).then_some(index)
}

fn format_index(mut n: u64) -> String {
    let mut groups = Vec::new();
    loop {
        groups.push(n % 1000);
        n /= 1000;
        if n == 0 {
            break;
        }
    }
    let mut s = String::new();
    for (i, g) in groups.iter().rev().enumerate() {
        if i + 1 < groups.len() {
            let _ = write!(s, "x{g:03}/");
        } else {
            let _ = write!(s, "{g:03}");
        }
    }
    s
}

/// Concatenates hashes into the body of a hash tile.
pub fn encode_hash_tile(hashes: &[Hash]) -> Vec<u8> {
    hashes.iter().flat_map(|h| h.iter().copied()).collect()
}

/// Encodes entries into an entry bundle (each behind a big-endian `u16`
/// length). `None` if an entry is longer than 65535 bytes.
pub fn encode_entry_bundle<'a>(entries: impl IntoIterator<Item = &'a [u8]>) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for e in entries {
        let len = u16::try_from(e.len()).ok()?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(e);
    }
    Some(out)
}

/// Splits an entry bundle back into its entries.
pub fn decode_entry_bundle(mut data: &[u8]) -> Option<Vec<&[u8]>> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let (len, rest) = data.split_at_checked(2)?;
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        let (entry, rest) = rest.split_at_checked(len)?;
        out.push(entry);
        data = rest;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_encoding_matches_spec_examples() {
        assert_eq!(format_index(1234067), "x001/x234/067");
        assert_eq!(format_index(0), "000");
        assert_eq!(format_index(999), "999");
        assert_eq!(format_index(1000), "x001/000");
        assert_eq!(parse_index("x001/x234/067"), Some(1234067));
        for bad in ["", "1", "0001", "x001", "001/002", "x01/002", "xx01/002"] {
            assert_eq!(parse_index(bad), None, "{bad}");
        }
    }

    #[test]
    fn paths_round_trip() {
        for path in ["0/000", "1/x001/x234/067.p/8", "entries/x002/123", "entries/000.p/255", "7/999"] {
            assert_eq!(TilePath::parse(path).unwrap().to_path(), path);
        }
        for bad in ["0/000.p/0", "0/000.p/256", "0/000.p/07", "8/000", "01/000", "a/000", "0", "entries/"] {
            assert!(TilePath::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn availability() {
        let full0 = TilePath { kind: TileKind::Hashes { level: 0 }, index: 0, partial: None };
        assert!(!full0.available_in(255));
        assert!(full0.available_in(256));
        let part = TilePath { kind: TileKind::Hashes { level: 1 }, index: 0, partial: Some(2) };
        assert!(!part.available_in(511));
        assert!(part.available_in(512));
        assert_eq!(part.node_ids(), vec![NodeId::new(8, 0), NodeId::new(8, 1)]);
    }

    #[test]
    fn bundle_round_trip() {
        let a = [1u8, 2, 3];
        let b: [u8; 0] = [];
        let bundle = encode_entry_bundle([&a[..], &b[..]]).unwrap();
        assert_eq!(bundle, [0, 3, 1, 2, 3, 0, 0]);
        assert_eq!(decode_entry_bundle(&bundle).unwrap(), vec![&a[..], &b[..]]);
        assert_eq!(decode_entry_bundle(&[0, 3, 1]), None);
        assert!(encode_entry_bundle([&[0u8; 65536][..]]).is_none());
    }
}
