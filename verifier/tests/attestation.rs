//! Attestation verdicts against passports, with quotes fabricated by a
//! software P-256 key (`encode_quote`): the TPM downgrade (software
//! evidence from an agent whose passport has a TPM key) and the binding of
//! a quote to its nonce, the agent's key in force and the attestation's
//! claims. Each attack is performed and must fail the verdict.
#![allow(clippy::unwrap_used)]

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{SigningKey, VerifyingKey};
use p256::ecdsa::signature::Signer as _;
use p256::pkcs8::EncodePublicKey as _;
use serde_json::{json, Map, Value};
use verifier::canonical::to_canonical;
use verifier::entry::attestation::{attestation_failures, verdict};
use verifier::entry::signing::hex;
use verifier::entry::Passport;
use verifier::tpm::{encode_quote, expected_pcr_digest, qualifying_data, MEASUREMENT_PCR};

const AGENT: &str = "spiffe://example.org/agent/billing";
const CODE: [u8; 32] = [0xc0; 32];
const NONCE: [u8; 32] = [0x4e; 32];

fn agent_key() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

fn ak() -> p256::ecdsa::SigningKey {
    p256::ecdsa::SigningKey::from_slice(&[5; 32]).unwrap()
}

fn passport(tpm: bool) -> Passport {
    Passport {
        agent: AGENT.parse().unwrap(),
        public_key: agent_key().verifying_key(),
        code_hash: CODE,
        model_hash: None,
        owner: "payments".into(),
        purpose: "pays invoices".into(),
        tpm_ak: tpm.then(|| ak().verifying_key().to_public_key_der().unwrap().as_bytes().to_vec()),
    }
}

/// The claims of an attestation (no evidence yet), as the client builds them.
fn claims(seq: u64, code: &[u8; 32]) -> Map<String, Value> {
    json!({"kind": "attestation", "agent": AGENT, "nonce": B64.encode(NONCE), "code_hash": hex(code),
        "runtime": {"os": "linux", "version": "6.1", "image_digest": "sha256:abc"},
        "behaviour": {"digest": hex(&[1; 32]), "calls": 10, "distinct": 3}, "seq": seq})
    .as_object()
    .unwrap()
    .clone()
}

/// TPM evidence: a quote of PCR 16 (measured with `CODE`) carrying
/// `extra_data`, signed by the passport's AK.
fn tpm_evidence(extra_data: &[u8]) -> Value {
    let quote = encode_quote(extra_data, MEASUREMENT_PCR, &expected_pcr_digest(&CODE));
    let signature: p256::ecdsa::Signature = ak().sign(&quote);
    json!({"type": "tpm", "quote": B64.encode(&quote), "signature": B64.encode(signature.to_bytes())})
}

fn with_evidence(mut att: Map<String, Value>, evidence: Value) -> Map<String, Value> {
    att.insert("evidence".into(), evidence);
    att
}

/// The qualifying data an honest client computes for `claims`.
fn bound(att: &Map<String, Value>, key: &VerifyingKey) -> [u8; 32] {
    qualifying_data(&NONCE, key.as_bytes(), att)
}

#[test]
fn software_evidence_for_a_tpm_passport_is_a_downgrade() {
    let key = agent_key().verifying_key();
    let att = with_evidence(claims(1, &CODE), json!({"type": "software"}));

    // The attack: an agent with a TPM passport attests without its TPM.
    let reasons = attestation_failures(&att, &passport(true), &key);
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(reasons[0].starts_with("downgrade:"), "{reasons:?}");
    let v = verdict(&att, &reasons);
    assert_eq!(v["evidence"], "software");
    assert_eq!(v["ok"], false);

    // Software evidence still serves an agent registered without a TPM.
    let reasons = attestation_failures(&att, &passport(false), &key);
    assert!(reasons.is_empty(), "{reasons:?}");
    assert_eq!(to_canonical(&verdict(&att, &reasons)), br#"{"evidence":"software","ok":true,"reasons":[]}"#);
}

#[test]
fn a_bound_quote_passes_and_its_verdict_says_tpm() {
    let key = agent_key().verifying_key();
    let body = claims(3, &CODE);
    let att = with_evidence(body.clone(), tpm_evidence(&bound(&body, &key)));
    let reasons = attestation_failures(&att, &passport(true), &key);
    assert!(reasons.is_empty(), "{reasons:?}");
    let v = verdict(&att, &reasons);
    // Stored in leaves, which are RFC 8785: the members are in JCS order.
    assert_eq!(serde_json::to_string(&v).unwrap().as_bytes(), to_canonical(&v).as_slice());
    assert_eq!(to_canonical(&v), br#"{"evidence":"tpm","ok":true,"reasons":[]}"#);
    // The log's members and the agent's signature, added after the quote,
    // do not unbind it.
    let mut leaf = att.clone();
    leaf.insert("signature".into(), Value::from(B64.encode([0u8; 64])));
    leaf.insert("verdict".into(), v);
    leaf.insert("integrated_time".into(), Value::from(1_764_115_200_000u64));
    leaf.insert("v".into(), Value::from(2));
    assert!(attestation_failures(&leaf, &passport(true), &key).is_empty());
}

#[test]
fn a_quote_not_bound_to_this_attestation_fails() {
    let key = agent_key().verifying_key();
    let other_key = SigningKey::from_bytes(&[8; 32]).verifying_key();
    let body = claims(3, &CODE);
    let cases: Vec<(&str, [u8; 32])> = vec![
        // A client of the previous version quoted the nonce alone.
        ("the bare nonce (old style)", NONCE),
        // Drawn by another agent sharing the AK (or before a key rotation).
        ("bound to another agent key", bound(&body, &other_key)),
        // Made for other claims with the same nonce.
        ("bound to another code_hash claim", bound(&claims(3, &[0xbb; 32]), &key)),
        ("bound to another seq", bound(&claims(4, &CODE), &key)),
        ("bound to another agent", {
            let mut other = body.clone();
            other.insert("agent".into(), Value::from("spiffe://example.org/agent/other"));
            bound(&other, &key)
        }),
        ("bound to another nonce", qualifying_data(&[0x4f; 32], key.as_bytes(), &body)),
    ];
    for (name, extra_data) in cases {
        let att = with_evidence(body.clone(), tpm_evidence(&extra_data));
        let reasons = attestation_failures(&att, &passport(true), &key);
        assert_eq!(reasons.len(), 1, "{name}: {reasons:?}");
        assert!(reasons[0].starts_with("tpm: ") && reasons[0].contains("qualifying data"), "{name}: {reasons:?}");
        let v = verdict(&att, &reasons);
        assert_eq!((v["evidence"].as_str(), v["ok"].as_bool()), (Some("tpm"), Some(false)), "{name}");
    }

    // A good quote replayed into an attestation with changed claims fails
    // too (the claimed runtime differs from what was quoted).
    let good = tpm_evidence(&bound(&body, &key));
    let mut changed = with_evidence(body.clone(), good.clone());
    changed["runtime"]["os"] = Value::from("plan9");
    let reasons = attestation_failures(&changed, &passport(true), &key);
    assert!(reasons.iter().any(|r| r.contains("qualifying data")), "{reasons:?}");
    // Checked against a key other than the one in force: fails.
    let att = with_evidence(body, good);
    let reasons = attestation_failures(&att, &passport(true), &other_key);
    assert!(reasons.iter().any(|r| r.contains("qualifying data")), "{reasons:?}");
}

#[test]
fn verdicts_name_the_evidence_type_even_when_it_is_missing_or_malformed() {
    let key = agent_key().verifying_key();
    let cases = [
        (None, "none"),
        (Some(json!({"type": "sgx"})), "none"),
        (Some(json!("tpm")), "none"),
        (Some(json!({"type": "tpm"})), "tpm"),
        (Some(json!({"type": "tpm", "quote": "!", "signature": "!"})), "tpm"),
    ];
    for (evidence, want) in cases {
        let mut att = claims(1, &CODE);
        if let Some(e) = &evidence {
            att.insert("evidence".into(), e.clone());
        }
        let reasons = attestation_failures(&att, &passport(true), &key);
        assert!(!reasons.is_empty(), "{evidence:?}");
        let v = verdict(&att, &reasons);
        assert_eq!((v["evidence"].as_str(), v["ok"].as_bool()), (Some(want), Some(false)), "{evidence:?}");
    }
    // A TPM attestation whose nonce is not 32 bytes cannot be bound.
    let mut att = with_evidence(claims(1, &CODE), tpm_evidence(&[0; 32]));
    att.insert("nonce".into(), Value::from(B64.encode([1u8; 16])));
    let reasons = attestation_failures(&att, &passport(true), &key);
    assert!(reasons.iter().any(|r| r.contains("nonce")), "{reasons:?}");
}

/// A submitted attestation goes through the entry model
/// (`Attestation::from_submitted`), signature included, with the same
/// refusals the log reported when it read the members by hand;
/// `POST /v1/entries` (`Form::Submitted`) still refuses the kind.
#[test]
fn submitted_attestations_are_read_by_the_model() {
    use verifier::entry::attestation::Attestation;
    use verifier::entry::{AttestationPart, Entry, EntryError, Form, ShapeError};

    let mut att = json!({"kind": "attestation", "agent": AGENT, "nonce": B64.encode(NONCE), "code_hash": hex(&CODE),
        "runtime": {"os": "linux", "version": "6", "image_digest": "sha256:x"},
        "behaviour": {"digest": "00".repeat(32), "calls": 1, "distinct": 1}, "evidence": {"type": "software"}, "seq": 3});
    verifier::entry::signing::sign_entry(att.as_object_mut().unwrap(), "log.example", &agent_key());
    let parsed = Attestation::from_submitted(&att).unwrap();
    assert_eq!(parsed.agent.as_str(), AGENT);
    let signed = Entry::Attestation(parsed).signed().unwrap();
    assert_eq!((signed.seq, signed.new_key), (3, None));
    assert!(signed.verify("log.example", &agent_key().verifying_key()));
    assert!(!signed.verify("other.example", &agent_key().verifying_key()));

    assert_eq!(Entry::from_object(att.as_object().unwrap(), Form::Submitted).unwrap_err(), EntryError::UnknownKind("attestation".into()));
    assert_eq!(Attestation::from_submitted(&json!([])).unwrap_err(), EntryError::Shape(ShapeError::AttestationNotAnObject));
    let mut action = att.clone();
    action["kind"] = json!("action");
    assert_eq!(Attestation::from_submitted(&action).unwrap_err(), EntryError::Shape(ShapeError::NotAnAttestation));
    let mut with_verdict = att.clone();
    with_verdict["verdict"] = json!({});
    let err = Attestation::from_submitted(&with_verdict).unwrap_err();
    assert_eq!(err, EntryError::Shape(ShapeError::UnexpectedIn { member: "verdict".into(), within: AttestationPart::Attestation }));
    assert_eq!(err.to_string(), "invalid entry: unexpected field \"verdict\" in an attestation");
    let mut runtime = att.clone();
    runtime["runtime"]["extra"] = json!("x");
    assert_eq!(Attestation::from_submitted(&runtime).unwrap_err().to_string(), "invalid entry: unexpected field \"extra\" in \"runtime\"");
}
