//! The `add-checkpoint` request body (c2sp.org/tlog-witness): an
//! `old <size>` line, up to [`MAX_PROOF_LINES`] base64 consistency proof
//! hashes one per line, an empty line, then the signed checkpoint note.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use verifier::hash::Hash;

/// Most consistency proof lines a client may send (the specification's
/// bound: a proof in a tree of up to 2^63 leaves).
pub const MAX_PROOF_LINES: usize = 63;

/// What is wrong with an `add-checkpoint` body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestSyntax {
    /// The body is not UTF-8.
    #[error("request body is not UTF-8")]
    NotUtf8,
    /// The first line is not `old <decimal without leading zeros>`.
    #[error("first line must be `old <size>` in decimal without leading zeros")]
    OldLine,
    /// A proof line is not the base64 of a 32-byte hash.
    #[error("consistency proof line {line} is not the base64 of a 32-byte hash")]
    ProofLine { line: usize },
    /// More than [`MAX_PROOF_LINES`] proof lines.
    #[error("more than {MAX_PROOF_LINES} consistency proof lines")]
    TooManyProofLines,
    /// No empty line before the checkpoint.
    #[error("no empty line before the checkpoint")]
    NoBlankLine,
}

/// A parsed `add-checkpoint` body; the note is not verified yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddCheckpoint<'a> {
    /// The size of the checkpoint the client believes the witness cosigned last.
    pub old_size: u64,
    /// Consistency proof from `old_size` to the checkpoint's size.
    pub proof: Vec<Hash>,
    /// The signed checkpoint note.
    pub note: &'a str,
}

impl<'a> AddCheckpoint<'a> {
    /// Splits a body into its parts, checking each line's syntax.
    pub fn parse(body: &'a [u8]) -> Result<Self, RequestSyntax> {
        let body = core::str::from_utf8(body).map_err(|_| RequestSyntax::NotUtf8)?;
        let (old_line, mut rest) = body.split_once('\n').ok_or(RequestSyntax::OldLine)?;
        let old_size = parse_decimal(old_line.strip_prefix("old ").ok_or(RequestSyntax::OldLine)?).ok_or(RequestSyntax::OldLine)?;
        let mut proof = Vec::new();
        loop {
            let (line, after) = rest.split_once('\n').ok_or(RequestSyntax::NoBlankLine)?;
            rest = after;
            if line.is_empty() {
                break;
            }
            if proof.len() == MAX_PROOF_LINES {
                return Err(RequestSyntax::TooManyProofLines);
            }
            let hash: Hash =
                B64.decode(line).ok().and_then(|h| h.try_into().ok()).ok_or(RequestSyntax::ProofLine { line: proof.len() + 2 })?;
            proof.push(hash);
        }
        Ok(Self { old_size, proof, note: rest })
    }
}

/// ASCII decimal with no leading zeros (`0` itself allowed).
fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0')) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_spec_shape() {
        let h = B64.encode([7u8; 32]);
        let body = format!("old 20\n{h}\n{h}\n\norigin\n25\n{h}\n\n\u{2014} origin AAAA\n");
        let req = AddCheckpoint::parse(body.as_bytes()).unwrap();
        assert_eq!(req.old_size, 20);
        assert_eq!(req.proof, [[7u8; 32]; 2]);
        assert_eq!(req.note, format!("origin\n25\n{h}\n\n\u{2014} origin AAAA\n"));
        assert_eq!(AddCheckpoint::parse(b"old 0\n\nnote").unwrap().proof, Vec::<Hash>::new());
    }

    #[test]
    fn rejects_bad_lines() {
        let h = B64.encode([7u8; 32]);
        let too_many = format!("old 1\n{}\nnote", format!("{h}\n").repeat(MAX_PROOF_LINES + 1));
        for (body, err) in [
            (&b"\xff"[..], RequestSyntax::NotUtf8),
            (b"", RequestSyntax::OldLine),
            (b"old 1", RequestSyntax::OldLine),
            (b"old 01\n\n", RequestSyntax::OldLine),
            (b"old -1\n\n", RequestSyntax::OldLine),
            (b"old  1\n\n", RequestSyntax::OldLine),
            (b"new 1\n\n", RequestSyntax::OldLine),
            (b"old 99999999999999999999\n\n", RequestSyntax::OldLine),
            (b"old 1\nAAAA\n\n", RequestSyntax::ProofLine { line: 2 }),
            (b"old 1\n", RequestSyntax::NoBlankLine),
            (too_many.as_bytes(), RequestSyntax::TooManyProofLines),
        ] {
            assert_eq!(AddCheckpoint::parse(body), Err(err), "{body:?}");
        }
        let exactly_max = format!("old 1\n{}\nnote", format!("{h}\n").repeat(MAX_PROOF_LINES));
        assert_eq!(AddCheckpoint::parse(exactly_max.as_bytes()).unwrap().proof.len(), MAX_PROOF_LINES);
    }
}
