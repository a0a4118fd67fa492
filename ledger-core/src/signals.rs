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

use std::sync::{Arc, OnceLock};

use ed25519_dalek::VerifyingKey;
use serde_json::Value;
use verifier::canonical;
use verifier::entry::{Entry, EntryError, EntryKind, ShapeError, Signal, SignalType, SignedEntry, Signer, Subject};

use crate::entry::{EntryAuth, NewEntry, Submission};

/// A source's signature over a signal: checked before any expensive work
/// against the source's key, and re-checked cheaply by the sequencer.
#[derive(Debug)]
pub struct SourceAuth {
    /// The source's name.
    pub source: String,
    /// The signal's type (among the source's types).
    pub signal_type: SignalType,
    /// What it signed: body, sequence number, signature.
    pub signed: SignedEntry,
    /// The key the signature verified with, once checked.
    verified_with: OnceLock<VerifyingKey>,
}

impl SourceAuth {
    /// The source's sequence number for the signal.
    pub fn seq(&self) -> u64 {
        self.signed.seq
    }

    /// Checks the signature against `key` ([`SignedEntry::verify`]),
    /// remembering success.
    pub(crate) fn verify(&self, origin: &str, key: &VerifyingKey) -> bool {
        crate::entry::verify_remembered(&self.signed, &self.verified_with, origin, key)
    }

    /// This signature as the sources fold checks it in the log named
    /// `origin`.
    pub fn in_log<'a>(&'a self, origin: &'a str) -> SourceSignedIn<'a> {
        SourceSignedIn { auth: self, origin }
    }
}

/// A [`SourceAuth`] in one log: what admission hands the sources fold.
#[derive(Clone, Copy, Debug)]
pub struct SourceSignedIn<'a> {
    auth: &'a SourceAuth,
    origin: &'a str,
}

impl verifier::fold::registry::Signed for SourceSignedIn<'_> {
    fn kind(&self) -> EntryKind {
        EntryKind::Signal
    }

    fn seq(&self) -> u64 {
        self.auth.seq()
    }

    fn new_key(&self) -> Option<&VerifyingKey> {
        None
    }

    fn verify(&self, key: &VerifyingKey) -> bool {
        self.auth.verify(self.origin, key)
    }
}

/// What admission checks of a signed signal besides its signer's
/// signature: its subject, and for a source's signal the source's
/// signature, type and sequence number.
#[derive(Debug)]
pub struct SignalAuth {
    /// Whom it is about: an agent must be registered and not retired.
    pub subject: Subject,
    /// A source's signature; `None` for a peer report (its signature is
    /// the entry's [`EntryAuth`]).
    pub source: Option<SourceAuth>,
}

impl SignalAuth {
    /// The checks of a signed signal; `None` for the log's own (unsigned)
    /// signals and signals read without their signatures.
    pub fn of(signal: &Signal) -> Option<Self> {
        let source = match &signal.signer {
            Signer::Log => return None,
            Signer::Agent(_) => None,
            Signer::Source(name) => Some(SourceAuth {
                source: name.clone(),
                signal_type: signal.signal_type,
                signed: SignedEntry::new(signal.signature.as_ref()?, None),
                verified_with: OnceLock::new(),
            }),
        };
        Some(Self { subject: signal.subject.clone(), source })
    }
}

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
