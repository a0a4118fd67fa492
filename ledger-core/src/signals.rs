//! Signed signals as the log admits them (`POST /v1/signals`;
//! docs/FORMAT.md, "Signals"): one parser, [`Signal::from_submitted`],
//! then a [`Submission`] through the same append pipeline as agent
//! entries.
//!
//! A signal is signed by a registered source or, for a peer report, by the
//! reporting agent, over the same message agents sign. A peer report's
//! signature is an [`EntryAuth`] of its reporter (the agent registry's
//! rules: key in force, `seq`, retired and revoked agents refused); a
//! source's is a [`SourceAuth`], checked against the sources view by
//! [`verifier::fold::sources`]. Either way the [`SignalAuth`] carries the
//! subject, which must be a registered, active agent (or a code hash), and
//! the signature is checked before any other work: pre-verification
//! before the queue, the decision in the sequencer, so two signals with
//! one `seq` in one group cannot both pass.

use std::sync::Arc;

use serde_json::Value;
use verifier::canonical;
use verifier::entry::{Entry, EntryError, EntryKind, ShapeError, Signal};

pub use crate::auth::{SignalAuth, SourceAuth, SourceSignedIn};
use crate::entry::{EntryAuth, NewEntry, Submission};

impl Submission {
    /// Parses and validates raw JSON bytes of one signed signal, as a
    /// source or an agent submits it to `POST /v1/signals`.
    pub fn signal_from_json(bytes: &[u8], max_leaf_bytes: usize) -> Result<Self, EntryError> {
        Self::signal_from_value(&canonical::parse_strict(bytes)?, max_leaf_bytes)
    }

    /// Validates a strictly parsed signal ([`Signal::from_submitted`]):
    /// the entry to append, with its signer's signature and its subject.
    pub fn signal_from_value(value: &Value, max_leaf_bytes: usize) -> Result<Self, EntryError> {
        let obj = value.as_object().ok_or(ShapeError::NotAnObject)?;
        let signal = Signal::from_submitted(obj)?;
        let checks = SignalAuth::of(&signal).ok_or(ShapeError::SignalSigner)?;
        let entry = Entry::Signal(signal);
        let ready = NewEntry::assemble(EntryKind::Signal, obj, max_leaf_bytes, None)?
            .with_auth(EntryAuth::of(&entry).map(Arc::new))
            .with_signal(Arc::new(checks));
        Ok(Self::Ready(ready))
    }
}
