//! Offline inclusion proofs in the c2sp.org/tlog-proof `@v1` text format:
//!
//! ```text
//! c2sp.org/tlog-proof@v1
//! extra <base64>          (optional)
//! index <N>
//! <base64 hash>           (inclusion path, leaf sibling first)
//! ...
//!
//! <signed checkpoint note>
//! ```
//!
//! Agent Ledger puts the exact leaf bytes of the entry in `extra`, so a
//! proof file is self-contained; a caller may instead supply the entry.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write as _;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;

use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::hash::{leaf_hash, Hash};
use crate::note::NoteVerifier;
use crate::proof::{verify_inclusion, InclusionError};

/// First line of every proof file.
pub const HEADER: &str = "c2sp.org/tlog-proof@v1";

/// Most hashes a proof line list may hold (a tree of 2^63 leaves).
const MAX_PROOF_HASHES: usize = 64;

/// What is wrong with a tlog-proof file's text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofFileSyntax {
    /// Expected index line.
    #[error("expected index line")]
    ExpectedIndex,
    /// Extra is not standard base64.
    #[error("extra is not standard base64")]
    Extra,
    /// First line must be c2sp.org/tlog-proof@v1.
    #[error("first line must be c2sp.org/tlog-proof@v1")]
    Header,
    /// Index must be decimal without leading zeros.
    #[error("index must be decimal without leading zeros")]
    IndexNotDecimal,
    /// Index out of range.
    #[error("index out of range")]
    IndexRange,
    /// Missing blank line before checkpoint.
    #[error("missing blank line before checkpoint")]
    NoBlankLine,
    /// Missing index line.
    #[error("missing index line")]
    MissingIndex,
    /// Proof hash must be base64 of 32 bytes.
    #[error("proof hash must be base64 of 32 bytes")]
    Hash,
    /// Too many proof hashes.
    #[error("too many proof hashes")]
    TooManyHashes,
}

/// Why a proof file was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlogProofError {
    /// The file is not a tlog-proof.
    #[error("malformed tlog-proof: {0}")]
    Malformed(ProofFileSyntax),
    /// The embedded checkpoint is invalid or not signed by the trusted key.
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] CheckpointError),
    /// Neither the file (`extra`) nor the caller supplied the entry.
    #[error("no entry to verify: the proof has no extra data and none was given")]
    NoEntry,
    /// The inclusion proof does not verify against the checkpoint.
    #[error("inclusion: {0}")]
    Inclusion(#[from] InclusionError),
}

/// A parsed tlog-proof file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlogProof {
    /// Opaque application data; here, the leaf bytes of the entry.
    pub extra: Option<Vec<u8>>,
    /// Index of the entry in the log.
    pub index: u64,
    /// Inclusion path in the checkpointed tree.
    pub hashes: Vec<Hash>,
    /// The signed checkpoint note, verbatim.
    pub checkpoint: String,
}

/// What a verified proof established.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedProof {
    /// The checkpoint the entry is included in.
    pub checkpoint: Checkpoint,
    /// Index of the entry.
    pub index: u64,
    /// Leaf hash of the entry.
    pub leaf_hash: Hash,
}

impl TlogProof {
    /// Serializes to the text format.
    pub fn to_text(&self) -> String {
        let mut s = String::from(HEADER);
        s.push('\n');
        if let Some(extra) = &self.extra {
            let _ = writeln!(s, "extra {}", B64.encode(extra));
        }
        let _ = writeln!(s, "index {}", self.index);
        for h in &self.hashes {
            let _ = writeln!(s, "{}", B64.encode(h));
        }
        s.push('\n');
        s.push_str(&self.checkpoint);
        s
    }

    /// Parses the text format (does not verify).
    pub fn parse(text: &str) -> Result<Self, TlogProofError> {
        let (head, checkpoint) = text.split_once("\n\n").ok_or(TlogProofError::Malformed(ProofFileSyntax::NoBlankLine))?;
        let mut lines = head.split('\n');
        if lines.next() != Some(HEADER) {
            return Err(TlogProofError::Malformed(ProofFileSyntax::Header));
        }
        let mut line = lines.next().ok_or(TlogProofError::Malformed(ProofFileSyntax::MissingIndex))?;
        let mut extra = None;
        if let Some(b64) = line.strip_prefix("extra ") {
            extra = Some(B64.decode(b64).map_err(|_| TlogProofError::Malformed(ProofFileSyntax::Extra))?);
            line = lines.next().ok_or(TlogProofError::Malformed(ProofFileSyntax::MissingIndex))?;
        }
        let index_str = line.strip_prefix("index ").ok_or(TlogProofError::Malformed(ProofFileSyntax::ExpectedIndex))?;
        if index_str.is_empty() || !index_str.bytes().all(|b| b.is_ascii_digit()) || (index_str.len() > 1 && index_str.starts_with('0')) {
            return Err(TlogProofError::Malformed(ProofFileSyntax::IndexNotDecimal));
        }
        let index = index_str.parse().map_err(|_| TlogProofError::Malformed(ProofFileSyntax::IndexRange))?;
        let mut hashes = Vec::new();
        for line in lines {
            if hashes.len() == MAX_PROOF_HASHES {
                return Err(TlogProofError::Malformed(ProofFileSyntax::TooManyHashes));
            }
            let h = B64
                .decode(line)
                .ok()
                .and_then(|h| Hash::try_from(h.as_slice()).ok())
                .ok_or(TlogProofError::Malformed(ProofFileSyntax::Hash))?;
            hashes.push(h);
        }
        Ok(Self { extra, index, hashes, checkpoint: checkpoint.into() })
    }

    /// Verifies the checkpoint signature and the inclusion of `entry` (or of
    /// the `extra` bytes when `entry` is `None`).
    pub fn verify(&self, verifier: &NoteVerifier, entry: Option<&[u8]>) -> Result<VerifiedProof, TlogProofError> {
        let checkpoint = Checkpoint::open(&self.checkpoint, verifier)?;
        let data = entry.or(self.extra.as_deref()).ok_or(TlogProofError::NoEntry)?;
        let leaf = leaf_hash(data);
        verify_inclusion(&leaf, self.index, checkpoint.size, &self.hashes, &checkpoint.root)?;
        Ok(VerifiedProof { checkpoint, index: self.index, leaf_hash: leaf })
    }
}

#[cfg(all(test, feature = "std"))]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::note::NoteSigner;
    use crate::tree::{hash_leaves, inclusion_plan, NodeId};

    fn fixture() -> (TlogProof, NoteVerifier) {
        let signer = NoteSigner::new("example.com/log", ed25519_dalek::SigningKey::from_bytes(&[3; 32])).unwrap();
        let entries: Vec<Vec<u8>> = (0..11u8).map(|i| vec![i; 5]).collect();
        let leaves: Vec<Hash> = entries.iter().map(|e| leaf_hash(e)).collect();
        let plan = inclusion_plan(6, 11).unwrap();
        let node = |id: &NodeId| {
            let (s, e) = id.leaf_range();
            hash_leaves(&leaves[s as usize..e as usize])
        };
        let hashes = plan.assemble(&plan.nodes().iter().map(node).collect::<Vec<_>>()).unwrap();
        let cp = Checkpoint { origin: "example.com/log".into(), size: 11, root: hash_leaves(&leaves), extensions: vec![] };
        let proof = TlogProof { extra: Some(entries[6].clone()), index: 6, hashes, checkpoint: cp.sign(&signer).unwrap() };
        (proof, NoteVerifier::new(signer.verifier_key()))
    }

    #[test]
    fn round_trip_and_verify() {
        let (proof, verifier) = fixture();
        let text = proof.to_text();
        let parsed = TlogProof::parse(&text).unwrap();
        assert_eq!(parsed, proof);
        assert_eq!(parsed.verify(&verifier, None).unwrap().index, 6);
    }

    #[test]
    fn tampering_is_detected() {
        let (proof, verifier) = fixture();
        let mut wrong_entry = proof.clone();
        wrong_entry.extra = Some(vec![0; 5]);
        assert!(matches!(wrong_entry.verify(&verifier, None), Err(TlogProofError::Inclusion(_))));
        let mut wrong_index = proof.clone();
        wrong_index.index = 7;
        assert!(matches!(wrong_index.verify(&verifier, None), Err(TlogProofError::Inclusion(_))));
        let mut no_extra = proof.clone();
        no_extra.extra = None;
        assert_eq!(no_extra.verify(&verifier, None), Err(TlogProofError::NoEntry));
        assert!(no_extra.verify(&verifier, Some(&[6; 5])).is_ok());
        let forged = proof.to_text().replace("\n11\n", "\n12\n");
        assert!(matches!(TlogProof::parse(&forged).unwrap().verify(&verifier, None), Err(TlogProofError::Checkpoint(_))));
    }

    #[test]
    fn malformed_rejected() {
        for bad in [
            "",
            "c2sp.org/tlog-proof@v2\nindex 1\n\nx",
            "c2sp.org/tlog-proof@v1\nindex 01\n\nx",
            "c2sp.org/tlog-proof@v1\nindex 1\nAAAA\n\nx",
            "c2sp.org/tlog-proof@v1\n\nx",
        ] {
            assert!(TlogProof::parse(bad).is_err(), "{bad:?}");
        }
    }
}
