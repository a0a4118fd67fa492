//! Checkpoints (c2sp.org/tlog-checkpoint): the signed note text
//! `<origin>\n<size>\n<base64 root>\n[extension lines]`.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write as _;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;

use crate::hash::Hash;
use crate::note::{NoteError, NoteVerifier, SignedNote};

/// What is wrong with a checkpoint's text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointSyntax {
    /// Empty extension line.
    #[error("empty extension line")]
    EmptyExtension,
    /// Empty origin.
    #[error("empty origin")]
    EmptyOrigin,
    /// Missing root hash.
    #[error("missing root hash")]
    MissingRoot,
    /// Missing tree size.
    #[error("missing tree size")]
    MissingSize,
    /// Root hash must be base64 of 32 bytes.
    #[error("root hash must be base64 of 32 bytes")]
    Root,
    /// Text must end with a newline.
    #[error("text must end with a newline")]
    NoFinalNewline,
    /// Tree size must be decimal without leading zeros.
    #[error("tree size must be decimal without leading zeros")]
    SizeNotDecimal,
    /// Tree size out of range.
    #[error("tree size out of range")]
    SizeRange,
}

/// Why a checkpoint was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The signed note around it is invalid.
    #[error(transparent)]
    Note(#[from] NoteError),
    /// The note text is not a checkpoint.
    #[error("malformed checkpoint: {0}")]
    Malformed(CheckpointSyntax),
    /// The checkpoint is for another log.
    #[error("checkpoint origin {found:?} is not the expected {expected:?}")]
    WrongOrigin { expected: String, found: String },
}

/// A log's tree head at one size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin line, e.g. `ledger.example/agents`.
    pub origin: String,
    /// Number of leaves.
    pub size: u64,
    /// RFC 9162 root hash at `size`.
    pub root: Hash,
    /// Optional, opaque, non-empty extension lines.
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// `{"origin", "size", "root"}` (root in base64): how the offline tools
    /// (`ledger-verify`, the Python package) report a checkpoint.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "origin": self.origin, "size": self.size, "root": B64.encode(self.root) })
    }

    /// The note text that gets signed.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = write!(s, "{}\n{}\n{}\n", self.origin, self.size, B64.encode(self.root));
        for ext in &self.extensions {
            s.push_str(ext);
            s.push('\n');
        }
        s
    }

    /// Parses checkpoint note text (unsigned).
    pub fn from_text(text: &str) -> Result<Self, CheckpointError> {
        let body = text.strip_suffix('\n').ok_or(CheckpointError::Malformed(CheckpointSyntax::NoFinalNewline))?;
        let mut lines = body.split('\n');
        let origin = lines.next().filter(|l| !l.is_empty()).ok_or(CheckpointError::Malformed(CheckpointSyntax::EmptyOrigin))?;
        let size_line = lines.next().ok_or(CheckpointError::Malformed(CheckpointSyntax::MissingSize))?;
        if size_line.is_empty() || !size_line.bytes().all(|b| b.is_ascii_digit()) || (size_line.len() > 1 && size_line.starts_with('0')) {
            return Err(CheckpointError::Malformed(CheckpointSyntax::SizeNotDecimal));
        }
        let size = size_line.parse::<u64>().map_err(|_| CheckpointError::Malformed(CheckpointSyntax::SizeRange))?;
        let root_line = lines.next().ok_or(CheckpointError::Malformed(CheckpointSyntax::MissingRoot))?;
        let root: Hash =
            B64.decode(root_line).ok().and_then(|r| r.try_into().ok()).ok_or(CheckpointError::Malformed(CheckpointSyntax::Root))?;
        let mut extensions = Vec::new();
        for ext in lines {
            if ext.is_empty() {
                return Err(CheckpointError::Malformed(CheckpointSyntax::EmptyExtension));
            }
            extensions.push(ext.into());
        }
        Ok(Self { origin: origin.into(), size, root, extensions })
    }

    /// Verifies a signed checkpoint note with `verifier`, whose key name must
    /// be the checkpoint's origin.
    pub fn open(note: &str, verifier: &NoteVerifier) -> Result<Self, CheckpointError> {
        let parsed = SignedNote::parse(note)?;
        let checkpoint = Self::from_text(&parsed.text)?;
        if checkpoint.origin != verifier.key().name() {
            return Err(CheckpointError::WrongOrigin { expected: verifier.key().name().into(), found: checkpoint.origin });
        }
        verifier.verify(&parsed)?;
        Ok(checkpoint)
    }

    /// Signs this checkpoint into a C2SP signed note.
    #[cfg(feature = "std")]
    pub fn sign(&self, signer: &crate::note::NoteSigner) -> Result<String, NoteError> {
        signer.sign(&self.to_text())
    }
}

#[cfg(all(test, feature = "std"))]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::note::NoteSigner;

    fn signer() -> NoteSigner {
        NoteSigner::new("example.com/log", ed25519_dalek::SigningKey::from_bytes(&[7; 32])).unwrap()
    }

    #[test]
    fn sign_open_round_trip() {
        let cp = Checkpoint { origin: "example.com/log".into(), size: 20852163, root: [9; 32], extensions: vec!["ext one".into()] };
        let note = cp.sign(&signer()).unwrap();
        let opened = Checkpoint::open(&note, &NoteVerifier::new(signer().verifier_key())).unwrap();
        assert_eq!(opened, cp);
    }

    #[test]
    fn wrong_origin_rejected() {
        let cp = Checkpoint { origin: "example.com/other".into(), size: 1, root: [9; 32], extensions: vec![] };
        let other = NoteSigner::new("example.com/other", ed25519_dalek::SigningKey::from_bytes(&[7; 32])).unwrap();
        let note = cp.sign(&other).unwrap();
        assert!(matches!(Checkpoint::open(&note, &NoteVerifier::new(signer().verifier_key())), Err(CheckpointError::WrongOrigin { .. })));
    }

    #[test]
    fn malformed_text_rejected() {
        let root = B64.encode([1u8; 32]);
        for bad in [
            String::new(),
            format!("o\n01\n{root}\n"),
            format!("o\n-1\n{root}\n"),
            format!("o\n1\n{root}"),
            format!("\n1\n{root}\n"),
            "o\n1\nAAAA\n".to_string(),
            format!("o\n1\n{root}\n\n"),
            format!("o\n99999999999999999999999\n{root}\n"),
        ] {
            assert!(Checkpoint::from_text(&bad).is_err(), "{bad:?}");
        }
        assert_eq!(Checkpoint::from_text(&format!("o\n0\n{root}\n")).unwrap().size, 0);
    }
}
