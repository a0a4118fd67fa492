//! Hidden fields of action entries: parsing the submitted values,
//! committing to them, proving the declared predicates, and producing the
//! openings the sequencer seals for the secret store (docs/FORMAT.md,
//! "Hidden fields").
//!
//! An agent declares hidden values (`{"amount": {"u64": 1250, "prove":
//! [{"le": 10000}]}, "customer": {"str": "ACME"}}`) and commits to them
//! before it signs: client-side with the SDK, or through
//! [`CommitJob`] (`POST /v1/hidden/commit`, a signed request; the log
//! answers with the commitments, the proof and the openings and keeps
//! nothing). Each value is replaced by its commitment (Pedersen for `u64`,
//! SD-JWT salted SHA-256 for `str`) and every declared predicate is proven
//! in one aggregated proof bound to the entry. The agent's signature then
//! covers only the committed form: a signature over a guessable value in the
//! clear would reveal it to anyone holding the public leaf.
//!
//! The committed entry arrives with its openings beside it
//! ([`crate::entry::Submission`]); [`crate::entry::PendingEntry::check`] checks them against the commitments and the
//! proof (after the signature verified). The openings never enter the leaf: the sequencer
//! seals them ([`crate::sealing`]) and writes them to the store's secret
//! column families in the same atomic batch as the entry.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use verifier::agent_id::AgentId;
use verifier::disclosure::Opening;
use verifier::entry::{EntryError, HiddenError};
use verifier::hidden::HiddenValue;
use zk::ZkParams;

/// Hidden values committed for an agent by the log (`POST
/// /v1/hidden/commit`): the commitments and proof go into the entry the
/// agent then signs; the openings go back to the agent. The log keeps
/// nothing.
#[derive(Debug)]
pub struct CommittedHidden {
    /// The `hidden` member of the entry (commitments).
    pub hidden: Value,
    /// The `predicates` member, when predicates were declared.
    pub predicates: Option<Value>,
    /// The openings (values, salts, blindings), for the `openings` member
    /// sent beside the signed entry.
    pub openings: Value,
}

/// Hidden values committed for one entry, their predicates not yet
/// proven: the first step of [`CommitJob::prepare`] → prove →
/// [`CommitJob::finish`], which the prover stage runs for many entries at
/// once, proving all their predicates in one batch. `Debug` shows no value.
#[derive(Debug)]
pub struct CommitJob {
    context: Vec<u8>,
    prepared: verifier::hidden::PreparedCommit,
}

impl CommitJob {
    /// Commits to `hidden` for `agent`'s entry `seq` in the log `origin`
    /// with fresh OS randomness; the proof will be bound to that entry.
    pub fn prepare(origin: &str, agent: &AgentId, seq: u64, hidden: &BTreeMap<String, HiddenValue>) -> Result<Self, EntryError> {
        let mut rng =
            <rand_chacha::ChaCha20Rng as rand_core::SeedableRng>::from_rng(rand_core::OsRng).map_err(|_| HiddenError::Randomness)?;
        let context = verifier::disclosure::entry_predicates_context(origin, agent.as_str(), seq);
        Ok(Self { context, prepared: verifier::hidden::PreparedCommit::new(hidden, &mut rng) })
    }

    /// What to prove (`None`: no predicates declared): claims, witnesses
    /// and the context the proof is bound to.
    pub fn statement(&self) -> Option<zk::prover::ProofItem<'_>> {
        match self.prepared.claims().is_empty() {
            true => None,
            false => Some((self.prepared.claims(), self.prepared.witnesses(), &self.context)),
        }
    }

    /// The committed fields with `proof` (of [`Self::statement`]),
    /// verified first when `self_check`.
    pub fn finish(
        self,
        proof: Option<Result<zk::PredicateProof, zk::ZkError>>,
        params: &ZkParams,
        self_check: bool,
    ) -> Result<CommittedHidden, EntryError> {
        let proof = proof.transpose().map_err(EntryError::Predicate)?;
        let mut entry = Map::new();
        let openings = self.prepared.finish(&mut entry, proof, &self.context, params, self_check).map_err(|e| match e {
            verifier::hidden::CommitError::Predicate(z) => EntryError::Predicate(z),
            verifier::hidden::CommitError::SelfCheck | verifier::hidden::CommitError::ProofMismatch => EntryError::ProofSelfCheck,
            verifier::hidden::CommitError::Invalid(e) => EntryError::Hidden(e),
        })?;
        Ok(CommittedHidden {
            hidden: entry.remove("hidden").unwrap_or(Value::Null),
            predicates: entry.remove("predicates"),
            openings: verifier::hidden::openings_to_json(&openings),
        })
    }
}

/// Parses decrypted openings.
pub fn parse_openings(plaintext: &[u8]) -> Result<BTreeMap<String, Opening>, EntryError> {
    let v: Value = serde_json::from_slice(plaintext).map_err(|_| HiddenError::StoredNotJson)?;
    Ok(verifier::hidden::openings_from_json(&v).map_err(|e| HiddenError::Stored(Box::new(e)))?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use zk::predicate::Predicate;

    #[test]
    fn hidden_specs_parse_and_reject() {
        let ok = serde_json::json!({"amount": {"u64": 1250, "prove": [{"le": 10000}, {"ge": 1, "le": 2000}]}, "customer": {"str": "ACME"}});
        let parse_hidden = |v: &Value| verifier::hidden::parse_hidden(v).map_err(EntryError::from);
        let parsed = parse_hidden(&ok).unwrap();
        assert_eq!(parsed["amount"], HiddenValue::U64 { value: 1250, prove: vec![Predicate::le(10_000), Predicate { lo: 1, hi: 2000 }] });
        for bad in [
            serde_json::json!([]),
            serde_json::json!({}),
            serde_json::json!({"a b": {"str": "x"}}),
            serde_json::json!({"a": {"u64": -1}}),
            serde_json::json!({"a": {"u64": 9007199254740992u64}}),
            serde_json::json!({"a": {"u64": 1, "prove": [{"lt": 3}]}}),
            serde_json::json!({"a": {"u64": 1, "prove": [{"ge": 5, "le": 3}]}}),
            serde_json::json!({"a": {"u64": 1, "prove": {"le": 3}}}),
            serde_json::json!({"a": {"str": "x", "prove": []}}),
            serde_json::json!({"a": {"str": 5}}),
            serde_json::json!({"a": {"bytes": "x"}}),
            serde_json::json!({"a": {"u64": 1, "prove": [{"le": 1}, {"le": 1}, {"le": 1}, {"le": 1}, {"le": 1}, {"le": 1}, {"le": 1}, {"le": 1}, {"le": 1}]}}),
        ] {
            assert!(matches!(parse_hidden(&bad), Err(EntryError::Hidden(_))), "{bad}");
        }
    }
}
