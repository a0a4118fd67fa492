//! Disclosures and crypto-shredding of hidden fields.
//!
//! [`Log::disclose`] builds a disclosure bundle for one entry from its
//! sealed openings: the openings of the fields revealed, and one
//! aggregated proof, made on the prover pool, of predicates about fields
//! that stay hidden. [`Log::shred`] erases openings for good. Neither is
//! part of the append path: both work on entries already in the log.

use std::collections::BTreeMap;

use serde_json::Value;
use verifier::disclosure::{ClaimsProof, CommittedFields, DisclosureBundle, DisclosureError, Opening};
use verifier::hash::leaf_hash;
use verifier::AgentId;
use zk::predicate::Predicate;
use zk::prover::Witness;

use crate::entry::EntryError;
use crate::hidden::parse_openings;
use crate::store::{Openings as _, OpeningsRecord, StorageError};
use crate::{Error, Log};

/// What to disclose about one entry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DisclosureRequest {
    /// Hidden fields to reveal (value and salt or blinding).
    pub reveal: Vec<String>,
    /// Predicates to prove about hidden integers that stay hidden.
    pub prove: Vec<(String, Predicate)>,
}

/// Whose openings to shred.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShredTarget {
    /// One entry.
    Entry(u64),
    /// Every entry of one agent.
    Agent(AgentId),
}

impl Log {
    /// Builds a disclosure bundle for entry `index`: its tlog-proof against
    /// the latest checkpoint, the openings of `request.reveal`, and one
    /// aggregated proof of `request.prove`, made now from the stored
    /// openings.
    pub async fn disclose(&self, index: u64, request: &DisclosureRequest) -> Result<DisclosureBundle, Error> {
        let tlog_proof = self.tlog_proof(index)?;
        let leaf = tlog_proof.extra.as_deref().unwrap_or_default();
        let value: Value = serde_json::from_slice(leaf).map_err(|e| Error::Entry(e.into()))?;
        let obj = value.as_object().ok_or(Error::Entry(EntryError::Shape(verifier::entry::ShapeError::LeafNotAnObject)))?;
        let fields = CommittedFields::from_leaf(obj).map_err(DisclosureError::Leaf)?.ok_or(Error::NoHiddenFields { index })?;
        if request.prove.len() > zk::MAX_CLAIMS {
            return Err(Error::Entry(EntryError::Hidden(verifier::entry::HiddenError::DisclosureClaims { max: zk::MAX_CLAIMS })));
        }
        for name in &request.reveal {
            if !fields.fields.contains_key(name) {
                return Err(DisclosureError::UnknownField(name.clone()).into());
            }
        }
        let claims = fields.claims(&request.prove)?;
        let mut revealed = BTreeMap::new();
        let mut proofs = Vec::new();
        if !request.reveal.is_empty() || !claims.is_empty() {
            let openings = self.openings(index, leaf)?;
            for name in &request.reveal {
                let opening = openings.get(name).ok_or_else(|| missing_opening(index, name))?;
                revealed.insert(name.clone(), opening.clone());
            }
            if !claims.is_empty() {
                let witnesses = claims
                    .iter()
                    .map(|c| match openings.get(&c.field) {
                        Some(Opening::U64 { value, blinding }) => Ok(Witness { value: *value, blinding: blinding.clone() }),
                        _ => Err(missing_opening(index, &c.field)),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let context = verifier::disclosure::disclosure_proof_context(&self.config().origin, index, &leaf_hash(leaf));
                let proof = self.prover().prove(claims.clone(), witnesses, context).await?;
                proofs.push(ClaimsProof { claims: request.prove.clone(), proof });
            }
        }
        Ok(DisclosureBundle { tlog_proof, revealed, proofs, unbound_proofs: false })
    }

    /// Decrypts the stored openings of entry `index` (leaf bytes `leaf`):
    /// unwraps the entry's data key with the master key, then opens the
    /// ciphertext (legacy v1 records: with the master key itself).
    fn openings(&self, index: u64, leaf: &[u8]) -> Result<BTreeMap<String, Opening>, Error> {
        match self.store().openings(index)? {
            None => Err(Error::NoOpenings { index }),
            Some(OpeningsRecord::Shredded { at_ms }) => Err(Error::OpeningsShredded { index, at_ms }),
            Some(OpeningsRecord::Sealed { sealed, wrapped_key }) => {
                let key = self.config().openings_key.as_ref().ok_or_else(|| Error::Config("no openings key is configured".into()))?;
                let plain = key
                    .open(index, &leaf_hash(leaf), &sealed, wrapped_key.as_deref())
                    .map_err(|e| Error::Storage(StorageError::Corrupt(e.to_string())))?;
                Ok(parse_openings(&plain)?)
            }
        }
    }

    /// Crypto-shreds openings: destroys each entry's wrapped data key and
    /// its ciphertext, leaving a "shredded at" tombstone, and makes the
    /// store drop the old bytes from its files. A copy of the ciphertexts
    /// taken earlier without the `opening_keys` column family opens with
    /// nothing; the log, its proofs and bundles already issued stay valid.
    /// Returns the entries whose openings were erased now (entries already
    /// shredded are skipped, so repeating a request is harmless).
    pub fn shred(&self, target: &ShredTarget) -> Result<Vec<u64>, Error> {
        let indices = match target {
            ShredTarget::Entry(index) => {
                let size = self.head().size;
                if *index >= size {
                    return Err(Error::IndexBeyondTree { index: *index, size });
                }
                if self.store().openings(*index)?.is_none() {
                    return Err(Error::NoOpenings { index: *index });
                }
                vec![*index]
            }
            ShredTarget::Agent(agent) => self.store().openings_of_agent(agent.as_str())?,
        };
        Ok(self.store().shred_openings(&indices, self.now_ms())?)
    }
}

fn missing_opening(index: u64, field: &str) -> Error {
    Error::Storage(StorageError::Corrupt(format!("stored openings of entry {index} lack field {field:?}")))
}
