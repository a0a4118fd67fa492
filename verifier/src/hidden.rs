//! Hidden fields as an agent submits them (`{"u64": n, "prove": [...]}`,
//! `{"str": s}`), and, with the `prover` feature, committing to them and
//! proving the declared predicates. The log and the client SDK both commit
//! with this code, so the same randomness gives the same leaf.

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use serde_json::Value;
use zk::predicate::Predicate;

pub use crate::disclosure::{check_field_name, MAX_FIELD_NAME, MAX_HIDDEN_FIELDS};
use crate::disclosure::{predicate_from_json, CommittedFields, DisclosureError, HiddenError, Opening, MAX_JSON_INT};
#[cfg(feature = "prover")]
use crate::disclosure::{ClaimsProof, Commitment};

/// Longest hidden string, in characters.
pub const MAX_HIDDEN_STR_CHARS: usize = 4096;

/// A submitted hidden value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HiddenValue {
    /// An integer and the predicates to prove about it at append time.
    U64 {
        /// The value.
        value: u64,
        /// Predicates to prove.
        prove: Vec<Predicate>,
    },
    /// A string.
    Str(String),
}

/// Parses the submitted `hidden` object: name → value, sorted by name.
pub fn parse_hidden(v: &Value) -> Result<BTreeMap<String, HiddenValue>, HiddenError> {
    let obj = v.as_object().ok_or(HiddenError::NotAnObject)?;
    if obj.is_empty() || obj.len() > MAX_HIDDEN_FIELDS {
        return Err(HiddenError::FieldCount { max: MAX_HIDDEN_FIELDS });
    }
    let mut out = BTreeMap::new();
    let mut claims = 0;
    for (name, spec) in obj {
        check_field_name(name)?;
        let spec = spec.as_object().ok_or_else(|| HiddenError::FieldNotAnObject(name.clone()))?;
        let value = if let Some(v) = spec.get("u64") {
            if let Some(k) = spec.keys().find(|k| !["u64", "prove"].contains(&k.as_str())) {
                return Err(HiddenError::UnexpectedMember { member: k.clone(), field: name.clone() });
            }
            let value = v.as_u64().filter(|n| *n <= MAX_JSON_INT).ok_or_else(|| HiddenError::U64Range(name.clone()))?;
            let prove = match spec.get("prove") {
                None => Vec::new(),
                Some(Value::Array(list)) => list
                    .iter()
                    .map(|p| {
                        let p = p.as_object().ok_or_else(|| HiddenError::PredicateNotAnObject(name.clone()))?;
                        predicate_from_json(name, p, &[])
                    })
                    .collect::<Result<Vec<_>, _>>()?,
                Some(_) => return Err(HiddenError::ProveNotAnArray(name.clone())),
            };
            claims += prove.len();
            HiddenValue::U64 { value, prove }
        } else if let Some(v) = spec.get("str") {
            if spec.len() != 1 {
                return Err(HiddenError::StrOnly(name.clone()));
            }
            let s = v.as_str().ok_or_else(|| HiddenError::StrNotAString(name.clone()))?;
            if s.chars().count() > MAX_HIDDEN_STR_CHARS {
                return Err(HiddenError::StrTooLong { field: name.clone(), max: MAX_HIDDEN_STR_CHARS });
            }
            HiddenValue::Str(s.to_string())
        } else {
            return Err(HiddenError::FieldType(name.clone()));
        };
        out.insert(name.clone(), value);
    }
    if claims > zk::MAX_CLAIMS {
        return Err(HiddenError::TooManyClaims { count: claims, max: zk::MAX_CLAIMS });
    }
    Ok(out)
}

/// Why committing failed.
#[cfg(feature = "prover")]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CommitError {
    /// A declared predicate is false for its value; nothing was proven.
    #[error("{0}")]
    Predicate(zk::ZkError),
    /// The proof failed its check before use (a broken prover).
    #[error("a predicate proof failed its check before storing")]
    SelfCheck,
    /// The entry's `hidden` values (or its `agent`, `seq`) are malformed.
    #[error("invalid hidden fields: {0}")]
    Invalid(HiddenError),
    /// [`PreparedCommit::finish`] was given a proof without claims to
    /// prove, or none for its claims (a caller's bug).
    #[error("a predicate proof was given without claims, or none for the claims")]
    ProofMismatch,
}

/// Commits the plain `hidden` values of an action entry in place (see
/// [`commit`]), binding the proof to the log `origin` and the entry's own
/// `agent` and `seq` (0 when the entry has none), and returns the openings
/// as JSON ([`openings_to_json`]) to send beside the signed entry. The SDK
/// and tests commit with this; the log checks with
/// [`crate::disclosure::entry_predicates_context`] of the same members.
#[cfg(feature = "prover")]
pub fn commit_entry<R: rand_core::RngCore + rand_core::CryptoRng + Send>(
    entry: &mut serde_json::Map<String, Value>,
    origin: &str,
    rng: &mut R,
    params: &zk::ZkParams,
) -> Result<Value, CommitError> {
    let spec = entry.get("hidden").ok_or(CommitError::Invalid(HiddenError::NothingToCommit))?;
    let hidden = parse_hidden(spec).map_err(CommitError::Invalid)?;
    let agent = entry.get("agent").and_then(Value::as_str).ok_or(CommitError::Invalid(HiddenError::NoAgent))?;
    let seq = match entry.get("seq") {
        None => 0,
        Some(v) => v.as_u64().ok_or(CommitError::Invalid(HiddenError::SeqNotAnInteger))?,
    };
    let context = crate::disclosure::entry_predicates_context(origin, agent, seq);
    let openings = commit(entry, &hidden, &context, rng, params, true)?;
    Ok(openings_to_json(&openings))
}

/// Commits to `hidden` (salts, blindings and prover randomness from `rng`)
/// and proves every declared predicate in one aggregated proof bound to
/// `context` ([`crate::disclosure::entry_predicates_context`] of the entry
/// that will carry it); verifies the proof first when `self_check`. Writes
/// the commitments (`hidden`) and the proof (`predicates`) into `entry` and
/// returns the openings.
#[cfg(feature = "prover")]
pub fn commit<R: rand_core::RngCore + rand_core::CryptoRng + Send>(
    entry: &mut serde_json::Map<String, Value>,
    hidden: &BTreeMap<String, HiddenValue>,
    context: &[u8],
    rng: &mut R,
    params: &zk::ZkParams,
    self_check: bool,
) -> Result<BTreeMap<String, Opening>, CommitError> {
    let prepared = PreparedCommit::new(hidden, rng);
    let proof = match prepared.claims.is_empty() {
        true => None,
        false => Some(
            zk::prover::prove_bound_with_rng(&prepared.claims, &prepared.witnesses, context, params, rng)
                .map_err(CommitError::Predicate)?,
        ),
    };
    prepared.finish(entry, proof, context, params, self_check)
}

/// Hidden values committed, their predicates not yet proven: [`commit`] in
/// two steps, so that a caller can prove many entries' predicates in one
/// batch (`zk::prover::prove_many`) between them. `Debug` shows no value.
#[cfg(feature = "prover")]
pub struct PreparedCommit {
    fields: BTreeMap<String, Commitment>,
    openings: BTreeMap<String, Opening>,
    claims: Vec<zk::predicate::Claim>,
    witnesses: Vec<zk::prover::Witness>,
}

#[cfg(feature = "prover")]
impl core::fmt::Debug for PreparedCommit {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PreparedCommit").field("fields", &self.fields.len()).field("claims", &self.claims.len()).finish_non_exhaustive()
    }
}

#[cfg(feature = "prover")]
impl PreparedCommit {
    /// Commits to `hidden` with salts and blindings from `rng`.
    pub fn new<R: rand_core::RngCore + rand_core::CryptoRng>(hidden: &BTreeMap<String, HiddenValue>, rng: &mut R) -> Self {
        use zk::commit::{Blinding, HashCommitment, PedersenCommitment, Salt};
        use zk::predicate::Claim;
        use zk::prover::Witness;
        let mut fields = BTreeMap::new();
        let mut openings = BTreeMap::new();
        let mut claims = Vec::new();
        let mut witnesses = Vec::new();
        for (name, value) in hidden {
            match value {
                HiddenValue::U64 { value, prove } => {
                    let blinding = Blinding::random(rng);
                    let commitment = PedersenCommitment::commit(*value, &blinding);
                    for p in prove {
                        claims.push(Claim { field: name.clone(), predicate: *p, commitment });
                        witnesses.push(Witness { value: *value, blinding: blinding.clone() });
                    }
                    fields.insert(name.clone(), Commitment::U64(commitment));
                    openings.insert(name.clone(), Opening::U64 { value: *value, blinding });
                }
                HiddenValue::Str(s) => {
                    let salt = Salt::random(rng);
                    fields.insert(name.clone(), Commitment::Str(HashCommitment::commit(&salt, name, s)));
                    openings.insert(name.clone(), Opening::Str { value: s.clone(), salt });
                }
            }
        }
        Self { fields, openings, claims, witnesses }
    }

    /// The predicates to prove, one per declared `prove`.
    pub fn claims(&self) -> &[zk::predicate::Claim] {
        &self.claims
    }

    /// Their witnesses (the values and blindings).
    pub fn witnesses(&self) -> &[zk::prover::Witness] {
        &self.witnesses
    }

    /// Writes the commitments (`hidden`) and `proof` of [`Self::claims`]
    /// (`predicates`, `None` when there are no claims) into `entry`, after
    /// verifying the proof when `self_check`, and returns the openings.
    pub fn finish(
        self,
        entry: &mut serde_json::Map<String, Value>,
        proof: Option<zk::PredicateProof>,
        context: &[u8],
        params: &zk::ZkParams,
        self_check: bool,
    ) -> Result<BTreeMap<String, Opening>, CommitError> {
        let mut committed = CommittedFields { fields: self.fields, predicates: None };
        match (proof, self.claims.is_empty()) {
            (None, true) => {}
            (Some(proof), false) => {
                // The prover checks every predicate first, so this cannot
                // fail unless proving itself is broken; it is the last line
                // of defence for "a proof that cannot verify is never
                // stored".
                if self_check {
                    proof.verify_bound(&self.claims, context, params).map_err(|_| CommitError::SelfCheck)?;
                }
                committed.predicates =
                    Some(ClaimsProof { claims: self.claims.iter().map(|c| (c.field.clone(), c.predicate)).collect(), proof });
            }
            _ => return Err(CommitError::ProofMismatch),
        }
        entry.insert("hidden".into(), committed.hidden_json());
        if let Some(p) = &committed.predicates {
            entry.insert("predicates".into(), p.to_json());
        }
        Ok(self.openings)
    }
}

/// JSON of openings: `{"<name>": {"u64": v, "blinding": "…"} | {"str": s, "salt": "…"}}`.
pub fn openings_to_json(openings: &BTreeMap<String, Opening>) -> Value {
    Value::Object(openings.iter().map(|(k, o)| (k.clone(), o.to_json())).collect())
}

/// Parses [`openings_to_json`].
pub fn openings_from_json(v: &Value) -> Result<BTreeMap<String, Opening>, HiddenError> {
    let obj = v.as_object().ok_or(HiddenError::OpeningsNotAnObject)?;
    if obj.len() > MAX_HIDDEN_FIELDS {
        return Err(HiddenError::OpeningCount { max: MAX_HIDDEN_FIELDS });
    }
    obj.iter()
        .map(|(k, o)| Opening::from_json(o).map(|o| (k.clone(), o)).map_err(|reason| HiddenError::Opening { field: k.clone(), reason }))
        .collect()
}

/// Checks openings made by a client against the commitments of its entry:
/// every hidden field has an opening that opens its commitment, and the
/// entry's predicate proof (if any) verifies in `context`
/// ([`crate::disclosure::entry_predicates_context`]).
pub fn check_openings(
    fields: &CommittedFields,
    openings: &BTreeMap<String, Opening>,
    context: &[u8],
    params: &zk::ZkParams,
) -> Result<(), DisclosureError> {
    if let Some(extra) = openings.keys().find(|k| !fields.fields.contains_key(*k)) {
        return Err(DisclosureError::UnknownField(extra.to_string()));
    }
    for (name, commitment) in &fields.fields {
        let opening = openings.get(name).ok_or_else(|| DisclosureError::OpeningMismatch(name.clone()))?;
        if !opening.opens(name, commitment) {
            return Err(DisclosureError::OpeningMismatch(name.clone()));
        }
    }
    if let Some(p) = &fields.predicates {
        p.verify(fields, context, params)?;
    }
    Ok(())
}
