//! Trust statements (docs/FORMAT.md, "Trust statements"): what one agent
//! shows another so the other can decide, offline, whether to deal with
//! it. The log signs, as a PASETO `v4.public` token with its own implicit
//! assertion ([`STATEMENT_ASSERTION`]), the agent's score and level as of
//! an index and instant, whether it is revoked, and its latest successful
//! attestation with an inclusion proof against a checkpoint the log also
//! signed (a C2SP signed note).
//!
//! [`verify_peer`] checks all of it with this crate alone: the statement's
//! signature and issuer, its age, the agent's status and score, the
//! checkpoint's signature, that the attestation leaf is in that tree, and
//! that the leaf is a passing attestation by the agent, no later than the
//! statement.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{SigningKey, VerifyingKey};
use serde_json::{Map, Value};

use crate::canonical::{parse_strict, to_canonical};
use crate::checkpoint::Checkpoint;
use crate::entry::{EntryKind, Leaf};
use crate::hash::{leaf_hash, Hash};
use crate::note::NoteVerifier;
use crate::token::{paseto, time};

/// The implicit assertion of trust statements.
pub const STATEMENT_ASSERTION: &[u8] = b"agent-ledger/trust-statement/v1";

/// Most hashes in the statement's inclusion proof.
pub const MAX_PROOF_HASHES: usize = 64;

/// Leeway for a statement dated in the future (clock skew), ms.
pub const FUTURE_LEEWAY_MS: u64 = 5_000;

/// The latest successful attestation, proven into a checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProvenAttestation {
    /// Its index in the log.
    pub index: u64,
    /// The leaf bytes.
    pub leaf: Vec<u8>,
    /// The inclusion proof of the leaf into the checkpoint's tree.
    pub proof: Vec<Hash>,
}

/// A trust statement's claims.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    /// `iss`: the log's origin.
    pub issuer: String,
    /// `sub`: the agent.
    pub subject: String,
    /// `iat`: the instant the score was read at, ms.
    pub issued_at: u64,
    /// The score (0..=100).
    pub score: u8,
    /// The risk level (`low`, `medium`, `high`).
    pub level: String,
    /// Whether the agent is revoked (by score or quarantine) or retired.
    pub revoked: bool,
    /// The last entry the trust view had applied.
    pub as_of_index: u64,
    /// The latest successful attestation, if the agent ever passed one.
    pub attestation: Option<ProvenAttestation>,
    /// The signed checkpoint the attestation is proven against.
    pub checkpoint: String,
}

impl Statement {
    /// The claims as canonical JSON.
    pub fn to_payload(&self) -> Vec<u8> {
        let mut m = Map::new();
        m.insert("iss".into(), Value::from(self.issuer.as_str()));
        m.insert("sub".into(), Value::from(self.subject.as_str()));
        m.insert("iat".into(), Value::from(time::to_rfc3339(self.issued_at)));
        m.insert("score".into(), Value::from(self.score));
        m.insert("level".into(), Value::from(self.level.as_str()));
        m.insert("revoked".into(), Value::from(self.revoked));
        m.insert("as_of_index".into(), Value::from(self.as_of_index));
        m.insert("checkpoint".into(), Value::from(self.checkpoint.as_str()));
        if let Some(a) = &self.attestation {
            let mut at = Map::new();
            at.insert("index".into(), Value::from(a.index));
            at.insert("leaf".into(), Value::from(B64.encode(&a.leaf)));
            at.insert("proof".into(), Value::Array(a.proof.iter().map(|h| Value::from(B64.encode(h))).collect()));
            m.insert("attestation".into(), Value::Object(at));
        }
        to_canonical(&Value::Object(m))
    }

    /// Signs the statement with the log's token key.
    pub fn sign(&self, key: &SigningKey) -> String {
        paseto::sign(key, &self.to_payload(), STATEMENT_ASSERTION)
    }

    /// Reads claims strictly.
    pub fn from_payload(payload: &[u8]) -> Result<Self, PeerError> {
        let value = parse_strict(payload).map_err(|_| PeerError::Malformed)?;
        let obj = value.as_object().ok_or(PeerError::Malformed)?;
        const MEMBERS: [&str; 9] = ["as_of_index", "attestation", "checkpoint", "iat", "iss", "level", "revoked", "score", "sub"];
        if obj.keys().any(|k| !MEMBERS.contains(&k.as_str())) {
            return Err(PeerError::Malformed);
        }
        let text = |k: &str| obj.get(k).and_then(Value::as_str).map(ToString::to_string).ok_or(PeerError::Malformed);
        let attestation = match obj.get("attestation") {
            None => None,
            Some(Value::Object(a)) => {
                if a.len() != 3 {
                    return Err(PeerError::Malformed);
                }
                let index = a.get("index").and_then(Value::as_u64).ok_or(PeerError::Malformed)?;
                let leaf = a.get("leaf").and_then(Value::as_str).and_then(|l| B64.decode(l).ok()).ok_or(PeerError::Malformed)?;
                let Some(Value::Array(list)) = a.get("proof") else { return Err(PeerError::Malformed) };
                if list.len() > MAX_PROOF_HASHES {
                    return Err(PeerError::Malformed);
                }
                let proof = list
                    .iter()
                    .map(|h| h.as_str().and_then(|h| B64.decode(h).ok()).and_then(|h| Hash::try_from(h.as_slice()).ok()))
                    .collect::<Option<Vec<Hash>>>()
                    .ok_or(PeerError::Malformed)?;
                Some(ProvenAttestation { index, leaf, proof })
            }
            Some(_) => return Err(PeerError::Malformed),
        };
        Ok(Self {
            issuer: text("iss")?,
            subject: text("sub")?,
            issued_at: obj.get("iat").and_then(Value::as_str).and_then(time::from_rfc3339).ok_or(PeerError::Malformed)?,
            score: obj.get("score").and_then(Value::as_u64).filter(|s| *s <= 100).ok_or(PeerError::Malformed)? as u8,
            level: text("level")?,
            revoked: obj.get("revoked").and_then(Value::as_bool).ok_or(PeerError::Malformed)?,
            as_of_index: obj.get("as_of_index").and_then(Value::as_u64).ok_or(PeerError::Malformed)?,
            attestation,
            checkpoint: text("checkpoint")?,
        })
    }
}

/// Why a peer's statement is refused; [`PeerError::code`] is stable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PeerError {
    /// Not a statement token, or its claims are malformed.
    #[error("not a trust statement")]
    Malformed,
    /// The statement's signature does not verify with the log's token key.
    #[error("the statement's signature does not verify with the log's token key")]
    BadSignature,
    /// Issued by another log.
    #[error("the statement is from {found:?}, not {expected:?}")]
    WrongIssuer {
        /// The origin expected.
        expected: String,
        /// The statement's.
        found: String,
    },
    /// About another agent than the one expected.
    #[error("the statement is about {found:?}, not {expected:?}")]
    WrongSubject {
        /// The agent expected.
        expected: String,
        /// The statement's.
        found: String,
    },
    /// Older than the caller's maximum age, or dated in the future.
    #[error("the statement was issued at {issued_at} ms; now is {now} ms and the maximum age is {max_age} ms")]
    Stale {
        /// `iat`, ms.
        issued_at: u64,
        /// The caller's clock.
        now: u64,
        /// The maximum age.
        max_age: u64,
    },
    /// The agent is revoked.
    #[error("the agent is revoked")]
    Revoked,
    /// The score is below the caller's minimum.
    #[error("the agent scores {score}, below the {min} required")]
    ScoreTooLow {
        /// The statement's score.
        score: u8,
        /// The caller's minimum.
        min: u8,
    },
    /// The agent has no successful attestation on record.
    #[error("the statement carries no successful attestation")]
    NoAttestation,
    /// The checkpoint does not verify with the log's key.
    #[error("the checkpoint does not verify with the log's key: {0}")]
    Checkpoint(String),
    /// The attestation is not in the checkpoint's tree (e.g. a proof from
    /// another tree), or lies beyond it or beyond the statement.
    #[error("the attestation at index {index} is not proven into the checkpoint of size {size}")]
    NotIncluded {
        /// The attestation's index.
        index: u64,
        /// The checkpoint's size.
        size: u64,
    },
    /// The leaf is not a passing attestation by the agent.
    #[error("the proven leaf is not a passing attestation by the agent")]
    NotAnAttestation,
}

impl PeerError {
    /// The stable code.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::Malformed => "statement_malformed",
            Self::BadSignature => "statement_bad_signature",
            Self::WrongIssuer { .. } => "statement_wrong_issuer",
            Self::WrongSubject { .. } => "statement_wrong_subject",
            Self::Stale { .. } => "statement_stale",
            Self::Revoked => "peer_revoked",
            Self::ScoreTooLow { .. } => "peer_score_too_low",
            Self::NoAttestation => "peer_not_attested",
            Self::Checkpoint(_) => "statement_bad_checkpoint",
            Self::NotIncluded { .. } => "statement_not_included",
            Self::NotAnAttestation => "statement_not_an_attestation",
        }
    }
}

/// What a peer checks a statement with: the log's token key and its
/// checkpoint key (whose name is the log's origin).
#[derive(Clone, Debug)]
pub struct PeerCheck {
    /// The log's token key (`GET /v1/tokens/key`).
    pub token_key: VerifyingKey,
    /// The log's checkpoint verifier (`GET /v1/log/key`).
    pub log: NoteVerifier,
}

impl PeerCheck {
    /// Verifies `statement` (the token) about `agent` (`None`: any agent)
    /// at `now_ms`: every check of the module documentation, in that order.
    pub fn verify(
        &self,
        statement: &str,
        agent: Option<&str>,
        min_score: u8,
        max_age_ms: u64,
        now_ms: u64,
    ) -> Result<Statement, PeerError> {
        let payload = paseto::verify(&self.token_key, statement, STATEMENT_ASSERTION).map_err(|e| match e {
            paseto::PasetoError::BadSignature => PeerError::BadSignature,
            _ => PeerError::Malformed,
        })?;
        let s = Statement::from_payload(&payload)?;
        let origin = self.log.key().name();
        if s.issuer != origin {
            return Err(PeerError::WrongIssuer { expected: origin.to_string(), found: s.issuer });
        }
        if let Some(agent) = agent {
            if s.subject != agent {
                return Err(PeerError::WrongSubject { expected: agent.to_string(), found: s.subject });
            }
        }
        if now_ms.saturating_sub(s.issued_at) > max_age_ms || s.issued_at > now_ms.saturating_add(FUTURE_LEEWAY_MS) {
            return Err(PeerError::Stale { issued_at: s.issued_at, now: now_ms, max_age: max_age_ms });
        }
        if s.revoked {
            return Err(PeerError::Revoked);
        }
        if s.score < min_score {
            return Err(PeerError::ScoreTooLow { score: s.score, min: min_score });
        }
        let attestation = s.attestation.as_ref().ok_or(PeerError::NoAttestation)?;
        let checkpoint = Checkpoint::open(&s.checkpoint, &self.log).map_err(|e| PeerError::Checkpoint(e.to_string()))?;
        let not_included = PeerError::NotIncluded { index: attestation.index, size: checkpoint.size };
        if attestation.index > s.as_of_index {
            return Err(not_included);
        }
        crate::proof::verify_inclusion(
            &leaf_hash(&attestation.leaf),
            attestation.index,
            checkpoint.size,
            &attestation.proof,
            &checkpoint.root,
        )
        .map_err(|_| not_included)?;
        let (leaf, _) = Leaf::decode(&attestation.leaf).map_err(|_| PeerError::NotAnAttestation)?;
        let passed = leaf.members.get("verdict").and_then(|v| v.get("ok")).and_then(Value::as_bool) == Some(true);
        if leaf.kind != EntryKind::Attestation || leaf.text("agent") != s.subject || !passed {
            return Err(PeerError::NotAnAttestation);
        }
        Ok(s)
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    #![allow(clippy::unwrap_used)]
    use alloc::vec::Vec;

    use super::*;
    use crate::note::NoteSigner;

    const ORIGIN: &str = "peer.test/log";
    const NOW: u64 = 1_795_719_600_000;
    const AGENT: &str = "spiffe://peer.test/agent/supplier";

    fn attestation_leaf(agent: &str, ok: bool) -> Vec<u8> {
        use base64::Engine as _;
        let v = serde_json::json!({"kind": "attestation", "agent": agent, "integrated_time": NOW - 10, "v": crate::canonical::LEAF_VERSION,
            "nonce": B64.encode([7u8; 32]), "code_hash": "c0".repeat(32),
            "runtime": {"os": "linux", "version": "1", "image_digest": "sha256:t"},
            "behaviour": {"digest": "00".repeat(32), "calls": 0, "distinct": 0},
            "evidence": {"type": "software"}, "seq": 1, "signature": B64.encode([0u8; 64]),
            "verdict": {"evidence": "software", "ok": ok, "reasons": if ok { serde_json::json!([]) } else { serde_json::json!(["code hash"]) }}});
        to_canonical(&v)
    }

    /// A log of `leaves`, its signed checkpoint and the inclusion proof of
    /// leaf `index`.
    fn tree(signer: &NoteSigner, leaves: &[Vec<u8>], index: usize) -> (String, Vec<Hash>) {
        let hashes: Vec<Hash> = leaves.iter().map(|l| leaf_hash(l)).collect();
        let node = |id: crate::tree::NodeId| {
            let (a, b) = id.leaf_range();
            crate::tree::hash_leaves(&hashes[a as usize..b as usize])
        };
        let plan = crate::tree::inclusion_plan(index as u64, leaves.len() as u64).unwrap();
        let proof = plan.assemble(&plan.nodes().iter().map(|id| node(*id)).collect::<Vec<_>>()).unwrap();
        let cp = Checkpoint {
            origin: ORIGIN.into(),
            size: leaves.len() as u64,
            root: crate::tree::hash_leaves(&hashes),
            extensions: Vec::new(),
        };
        (cp.sign(signer).unwrap(), proof)
    }

    fn statement(checkpoint: String, index: u64, leaf: Vec<u8>, proof: Vec<Hash>) -> Statement {
        Statement {
            issuer: ORIGIN.into(),
            subject: AGENT.into(),
            issued_at: NOW,
            score: 71,
            level: "low".into(),
            revoked: false,
            as_of_index: 3,
            attestation: Some(ProvenAttestation { index, leaf, proof }),
            checkpoint,
        }
    }

    #[test]
    fn statements_verify_and_every_refusal_has_its_code() {
        let log = NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[1; 32])).unwrap();
        let token_key = SigningKey::from_bytes(&[2; 32]);
        let check = PeerCheck { token_key: token_key.verifying_key(), log: NoteVerifier::new(log.verifier_key()) };
        let leaves: Vec<Vec<u8>> =
            (0..4).map(|i| if i == 2 { attestation_leaf(AGENT, true) } else { alloc::format!("leaf {i}").into_bytes() }).collect();
        let (cp, proof) = tree(&log, &leaves, 2);
        let good = statement(cp.clone(), 2, leaves[2].clone(), proof.clone());
        let verify = |s: &Statement| check.verify(&s.sign(&token_key), Some(AGENT), 60, 60_000, NOW + 1);
        assert_eq!(verify(&good).unwrap(), good);
        let code = |s: &Statement| verify(s).unwrap_err().code();

        // An inclusion proof from another tree (same leaf, other leaves
        // around it), against this checkpoint.
        let mut other = leaves.clone();
        other[0] = b"another first leaf".to_vec();
        let (_, foreign_proof) = tree(&log, &other, 2);
        assert_eq!(code(&statement(cp.clone(), 2, leaves[2].clone(), foreign_proof)), "statement_not_included");
        // The right proof for another index.
        assert_eq!(code(&statement(cp.clone(), 1, leaves[2].clone(), proof.clone())), "statement_not_included");
        // A checkpoint signed by another key.
        let impostor = NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[3; 32])).unwrap();
        let (forged_cp, _) = tree(&impostor, &leaves, 2);
        assert_eq!(code(&statement(forged_cp, 2, leaves[2].clone(), proof.clone())), "statement_bad_checkpoint");
        // A failing attestation, another agent's, something else proven.
        for leaf in [attestation_leaf(AGENT, false), attestation_leaf("spiffe://peer.test/agent/other", true)] {
            let mut l = leaves.clone();
            l[2] = leaf.clone();
            let (c, p) = tree(&log, &l, 2);
            assert_eq!(code(&statement(c, 2, leaf, p)), "statement_not_an_attestation");
        }
        // Stale, revoked, too low, never attested, another subject or issuer.
        assert_eq!(code(&Statement { issued_at: NOW - 60_002, ..good.clone() }), "statement_stale");
        assert_eq!(code(&Statement { issued_at: NOW + 60_000, ..good.clone() }), "statement_stale");
        assert_eq!(code(&Statement { revoked: true, ..good.clone() }), "peer_revoked");
        assert_eq!(code(&Statement { score: 59, ..good.clone() }), "peer_score_too_low");
        assert_eq!(code(&Statement { attestation: None, ..good.clone() }), "peer_not_attested");
        assert_eq!(code(&Statement { subject: "spiffe://peer.test/agent/x".into(), ..good.clone() }), "statement_wrong_subject");
        assert_eq!(code(&Statement { issuer: "other.test/log".into(), ..good.clone() }), "statement_wrong_issuer");
        // The attestation after the state the statement speaks of.
        assert_eq!(code(&Statement { as_of_index: 1, ..good.clone() }), "statement_not_included");
        // Signed as an action token, or by another key: not a statement.
        let as_token = crate::token::paseto::sign(&token_key, &good.to_payload(), crate::token::TOKEN_ASSERTION);
        assert_eq!(check.verify(&as_token, Some(AGENT), 0, 60_000, NOW).unwrap_err().code(), "statement_bad_signature");
        assert_eq!(Statement::from_payload(&good.to_payload()).unwrap(), good);
    }
}
