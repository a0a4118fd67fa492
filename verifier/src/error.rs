//! The crate's error type: one typed sub-enum per thing that can fail.

use crate::checkpoint::CheckpointError;
use crate::disclosure::DisclosureError;
use crate::entry::EntryError;
use crate::fold::policy::PolicyError;
use crate::fold::registry::RegistryError;
use crate::fold::sources::SourceError;
use crate::fold::trust::StateError;
use crate::note::NoteError;
use crate::proof::{ConsistencyError, InclusionError};
use crate::tiles::TilePathError;
use crate::tlog_proof::TlogProofError;
use crate::tree::PlanError;

/// Any verification failure.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An inclusion proof failed.
    #[error("inclusion proof: {0}")]
    Inclusion(#[from] InclusionError),
    /// A consistency proof failed.
    #[error("consistency proof: {0}")]
    Consistency(#[from] ConsistencyError),
    /// A signed note failed.
    #[error("signed note: {0}")]
    Note(#[from] NoteError),
    /// A checkpoint failed.
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] CheckpointError),
    /// A tlog-proof file failed.
    #[error("tlog-proof: {0}")]
    TlogProof(#[from] TlogProofError),
    /// A proof could not be planned.
    #[error("proof plan: {0}")]
    Plan(#[from] PlanError),
    /// A disclosure bundle failed.
    #[error("disclosure: {0}")]
    Disclosure(#[from] DisclosureError),
    /// An entry was malformed.
    #[error("entry: {0}")]
    Entry(#[from] EntryError),
    /// The agent registry refused an entry.
    #[error("agent registry: {0}")]
    Registry(#[from] RegistryError),
    /// The sources fold refused an entry.
    #[error("signal sources: {0}")]
    Sources(#[from] SourceError),
    /// A trust policy was refused.
    #[error("trust policy: {0}")]
    Policy(#[from] PolicyError),
    /// A stored trust or drift state was refused.
    #[error("trust state: {0}")]
    TrustState(#[from] StateError),
    /// A tile path was malformed.
    #[error("tile path: {0}")]
    TilePath(#[from] TilePathError),
}

impl From<crate::fold::trust_log::TrustFoldError> for Error {
    fn from(e: crate::fold::trust_log::TrustFoldError) -> Self {
        match e {
            crate::fold::trust_log::TrustFoldError::Entry(e) => Self::Entry(e),
            crate::fold::trust_log::TrustFoldError::Policy(e) => Self::Policy(e),
        }
    }
}
