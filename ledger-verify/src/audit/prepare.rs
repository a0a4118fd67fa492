//! The work on a chunk of leaves that needs no fold state, done on every
//! core ahead of the folds: decoding, hashing, hidden-field proofs, and
//! agent signatures checked with the key the [`Planner`] expects.

use std::collections::HashMap;

use ed25519_dalek::VerifyingKey;
use rayon::prelude::*;
use verifier::agent_id::AgentId;
use verifier::disclosure::{leaf_predicates_context, CommittedFields};
use verifier::entry::{Entry, Form, Leaf};
use verifier::fold::registry::{OfflineSigned, Signed as _};
use verifier::hash::{leaf_hash, Hash};

/// Per-leaf results of the parallel pass.
pub(super) struct Decoded {
    /// The leaf's bytes, kept as evidence.
    pub(super) bytes: Vec<u8>,
    pub(super) hash: Hash,
    pub(super) leaf: Result<Leaf, String>,
    /// `None`: no hidden fields; otherwise the predicate proofs verified,
    /// or what failed.
    pub(super) hidden: Option<Result<usize, String>>,
}

/// A chunk of leaves with the work that needs no fold state done, on
/// every core: decoded, hashed, hidden fields checked, agent signatures
/// checked with the key the [`Planner`] expects.
pub(super) struct Prepared {
    pub(super) decoded: Vec<Decoded>,
    pub(super) checked: Vec<Option<(VerifyingKey, bool)>>,
}

impl Prepared {
    /// Prepares `chunk`; `planner` is `None` when the folds do not run.
    pub(super) fn of(chunk: Vec<Vec<u8>>, origin: &str, planner: Option<&mut Planner>) -> Self {
        let mut decoded: Vec<Decoded> = chunk
            .par_iter()
            .map(|bytes| {
                let hash = leaf_hash(bytes);
                match Leaf::decode_in(bytes, Form::Audit) {
                    Ok((leaf, _)) => Decoded { bytes: Vec::new(), hash, hidden: check_hidden(origin, &leaf), leaf: Ok(leaf) },
                    Err(e) => Decoded { bytes: Vec::new(), hash, leaf: Err(e.to_string()), hidden: None },
                }
            })
            .collect();
        for (d, bytes) in decoded.iter_mut().zip(chunk) {
            d.bytes = bytes;
        }
        let checked = match planner {
            Some(planner) => {
                let keys = planner.keys(&decoded);
                decoded
                    .par_iter()
                    .zip(keys.par_iter())
                    .map(|(d, key)| {
                        let (Ok(leaf), Some(key)) = (&d.leaf, key) else { return None };
                        let signed = OfflineSigned::of(origin, leaf.entry.as_ref()?)?;
                        Some((*key, signed.verify(key)))
                    })
                    .collect()
            }
            None => vec![None; decoded.len()],
        };
        Self { decoded, checked }
    }
}

/// Which key each agent signature will be checked with, ahead of the
/// registry fold: the key of the agent's passport, then of each rotation,
/// as the leaves go by. It may guess wrong (a rotation or a passport the
/// registry refuses); the fold then finds the key in force differs from
/// the one checked and checks again ([`Registry::apply_preverified`]), so
/// a guess costs time, never a verdict. Running ahead of the fold lets the
/// checks of one chunk overlap with the folding of the one before.
///
/// [`Registry::apply_preverified`]: verifier::fold::registry::Registry::apply_preverified
#[derive(Default)]
pub(super) struct Planner {
    keys: HashMap<AgentId, VerifyingKey>,
}

impl Planner {
    fn keys(&mut self, decoded: &[Decoded]) -> Vec<Option<VerifyingKey>> {
        decoded
            .iter()
            .map(|d| {
                let entry = d.leaf.as_ref().ok()?.entry.as_ref()?;
                if let Entry::Passport(r) = entry {
                    self.keys.entry(r.passport.agent.clone()).or_insert(r.passport.public_key);
                    return None;
                }
                let key = self.keys.get(entry.signer()?).copied();
                if let Entry::Rotation(r) = entry {
                    self.keys.insert(r.agent.clone(), r.new_key);
                }
                key
            })
            .collect()
    }
}

/// Checks a leaf's hidden fields: every commitment decodes, and the
/// predicate proof made at append time verifies in its context. `None`
/// for a leaf without hidden fields; otherwise the claims proven.
fn check_hidden(origin: &str, leaf: &Leaf) -> Option<Result<usize, String>> {
    match CommittedFields::from_leaf(&leaf.members) {
        Ok(None) => None,
        Err(e) => Some(Err(format!("hidden fields: {e}"))),
        Ok(Some(fields)) => Some(match &fields.predicates {
            None => Ok(0),
            Some(p) => p
                .verify(&fields, &leaf_predicates_context(origin, &leaf.members), zk::params())
                .map(|()| p.claims.len())
                .map_err(|e| e.to_string()),
        }),
    }
}
