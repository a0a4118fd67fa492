//! Who signed what, as admission checks it: an agent's signature over an
//! entry ([`EntryAuth`]), a source's over a signal ([`SourceAuth`]), and
//! the rest of a signed signal's checks ([`SignalAuth`]). Each signature is
//! checked before any expensive work (in parallel, before the sequencer)
//! and re-checked cheaply by the sequencer against the key in force, with
//! one rule ([`verify_remembered`]).

use std::sync::OnceLock;

use ed25519_dalek::VerifyingKey;
use verifier::agent_id::AgentId;
use verifier::entry::{Entry, EntryKind, Signal, SignalType, SignedEntry, Signer, Subject};

/// An agent's signature over an entry ([`SignedEntry`]): checked before
/// any expensive work (in parallel, before the sequencer), and re-checked
/// cheaply by the sequencer against the key in force when the entry is
/// sequenced.
#[derive(Clone, Debug)]
pub struct EntryAuth {
    /// The signing agent.
    pub agent: AgentId,
    /// The kind of the entry it signed.
    pub kind: EntryKind,
    /// What it signed: body, sequence number, signature, and a rotation's
    /// new key with its signature.
    pub signed: SignedEntry,
    /// The key the signature (and a rotation's new-key signature) verified
    /// with, once checked: the sequencer skips the check when that key is
    /// still the one in force.
    pub(crate) verified_with: OnceLock<VerifyingKey>,
}

impl EntryAuth {
    /// The signature of a parsed entry ([`Entry::signed`]); `None` for
    /// admin entries and unsigned actions.
    pub fn of(entry: &Entry) -> Option<Self> {
        Some(Self { agent: entry.signer()?.clone(), kind: entry.kind(), signed: entry.signed()?, verified_with: OnceLock::new() })
    }

    /// The agent's sequence number for the entry.
    pub fn seq(&self) -> u64 {
        self.signed.seq
    }

    /// The signed message in the log named `origin`.
    pub fn message(&self, origin: &str) -> Vec<u8> {
        self.signed.message(origin)
    }

    /// Checks the signature (and a rotation's new-key signature) against
    /// `key` with the ledger's one rule ([`SignedEntry::verify`]),
    /// remembering success.
    pub(crate) fn verify(&self, origin: &str, key: &VerifyingKey) -> bool {
        verify_remembered(&self.signed, &self.verified_with, origin, key)
    }

    /// This signature as the agent registry fold checks it
    /// ([`verifier::fold::registry::Signed`]) in the log named `origin`.
    pub fn in_log<'a>(&'a self, origin: &'a str) -> SignedIn<'a> {
        SignedIn { auth: self, origin }
    }
}

/// Checks `signed` against `key` with the ledger's one rule
/// ([`SignedEntry::verify`]), unless `verified_with` already holds that
/// key, and remembers success there: a signature pre-verified in parallel
/// is not checked again in the sequencer while its key stays in force.
pub(crate) fn verify_remembered(signed: &SignedEntry, verified_with: &OnceLock<VerifyingKey>, origin: &str, key: &VerifyingKey) -> bool {
    if verified_with.get() == Some(key) {
        return true;
    }
    let ok = signed.verify(origin, key);
    if ok {
        let _ = verified_with.set(*key);
    }
    ok
}

/// An [`EntryAuth`] in one log: what admission hands the registry fold.
#[derive(Clone, Copy, Debug)]
pub struct SignedIn<'a> {
    auth: &'a EntryAuth,
    origin: &'a str,
}

impl verifier::fold::registry::Signed for SignedIn<'_> {
    fn kind(&self) -> EntryKind {
        self.auth.kind
    }

    fn seq(&self) -> u64 {
        self.auth.seq()
    }

    fn new_key(&self) -> Option<&VerifyingKey> {
        self.auth.signed.new_key.as_ref().map(|(k, _)| k)
    }

    fn verify(&self, key: &VerifyingKey) -> bool {
        self.auth.verify(self.origin, key)
    }
}

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
        verify_remembered(&self.signed, &self.verified_with, origin, key)
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
