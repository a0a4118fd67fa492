//! Seed inputs for the stable fuzzing engine: real encodings of every
//! format the targets decode, built with the code the log, the SDK and the
//! verifier use, and signed for the fuzzing log (`targets::ORIGIN`,
//! `targets::LOG_KEY_SEED`) so that they get past the signature checks to
//! the code behind them.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::SigningKey;
use ledger_e2e::MemoryLog;
use serde_json::{json, Map, Value};
use verifier::disclosure::{ClaimsProof, CommittedFields, DisclosureBundle, Opening};

use crate::targets::{INTEGRATED_TIME, LOG_KEY_SEED, MAX_LEAF_BYTES, ORIGIN};

const AGENT: &str = "spiffe://fuzz.example/agent/a";
const TPM_AGENT: &str = "spiffe://fuzz.example/agent/tpm";
const NONCE: [u8; 32] = [9; 32];

/// The seeds of the target called `name`.
pub fn for_target(name: &str) -> Vec<Vec<u8>> {
    let fixture = Fixture::new();
    match name {
        "entry" => fixture.entries(),
        "signed_note" => fixture.notes(),
        "tlog_proof" => fixture.proof_files(),
        "tile_path" => tile_paths(),
        "entry_bundle" => fixture.entry_bundles(),
        "disclosure" => fixture.disclosures(),
        "hidden" => fixture.hidden(),
        "agent_entry" => fixture.agent_entries(),
        "tpm_quote" => fixture.quotes(),
        "signal" => signals(),
        "archive" => archives(),
        "witness_request" => fixture.witness_requests(),
        _ => Vec::new(),
    }
}

fn object(v: Value) -> Map<String, Value> {
    v.as_object().cloned().expect("a JSON object")
}

fn bytes(m: &Map<String, Value>) -> Vec<u8> {
    Value::Object(m.clone()).to_string().into_bytes()
}

fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

fn signed(v: Value, key: &SigningKey) -> Map<String, Value> {
    let mut m = object(v);
    verifier::entry::signing::sign_entry(&mut m, ORIGIN, key);
    m
}

/// The leaf the log stores for a validated entry.
fn leaf(m: &Map<String, Value>) -> Vec<u8> {
    ledger_core::NewEntry::from_log(m, None, None).expect("a valid leaf").to_leaf(INTEGRATED_TIME)
}

/// One agent's history, with a TPM-backed second agent, and an action with
/// hidden fields committed by the agent.
struct Fixture {
    passport: Map<String, Value>,
    action: Map<String, Value>,
    action_with_data: Map<String, Value>,
    rotation: Map<String, Value>,
    after_rotation: Map<String, Value>,
    attestation: Map<String, Value>,
    attestation_leaf: Map<String, Value>,
    tpm_passport: Map<String, Value>,
    tpm_attestation: Map<String, Value>,
    tpm_attestation_leaf: Map<String, Value>,
    quote: Vec<u8>,
    /// The committed hidden action as submitted (openings beside it).
    hidden_submission: Map<String, Value>,
    hidden_openings: Value,
    /// Leaves, in log order: passport, action, rotation, action,
    /// attestation, hidden action, TPM passport, TPM attestation.
    leaves: Vec<Vec<u8>>,
}

impl Fixture {
    fn new() -> Fixture {
        use p256::ecdsa::signature::Signer as _;
        use p256::pkcs8::EncodePublicKey as _;
        let (k1, k2, k3) = (key(7), key(8), key(11));
        let passport = object(json!({"kind": "passport", "agent": AGENT, "public_key": B64.encode(k1.verifying_key().as_bytes()),
            "code_hash": "c0".repeat(32), "owner": "fuzz seeds", "purpose": "testing"}));
        let action = signed(json!({"kind": "action", "agent": AGENT, "action": "write", "resource": "db/1", "seq": 1}), &k1);
        let action_with_data = signed(
            json!({"kind": "action", "agent": AGENT, "action": "read", "resource": "s3://bucket/ké\u{1F600}", "seq": 2,
                "data": {"n": 18_446_744_073_709_551_615u64, "f": -1.5, "list": [null, true, "x\n\"y\""], "nested": {"a": {"b": []}}}}),
            &k1,
        );
        let rotation = verifier::entry::signing::rotation(ORIGIN, AGENT, 3, &k1, &k2);
        let after_rotation = signed(json!({"kind": "action", "agent": AGENT, "action": "write", "resource": "db/2", "seq": 4}), &k2);
        let attestation = signed(attestation_body(AGENT, 5, json!({"type": "software"})), &k2);
        let passport_typed = verifier::entry::Passport::from_object(&passport).expect("a valid passport");
        let attestation_leaf = with_verdict(&attestation, &passport_typed, &k2);

        let ak = p256::ecdsa::SigningKey::from_slice(&[5; 32]).expect("a valid P-256 scalar");
        let ak_der = ak.verifying_key().to_public_key_der().expect("SPKI DER").into_vec();
        let mut tpm_passport =
            object(json!({"kind": "passport", "agent": TPM_AGENT, "public_key": B64.encode(k3.verifying_key().as_bytes()),
            "code_hash": "c0".repeat(32), "owner": "fuzz seeds", "purpose": "testing"}));
        tpm_passport.insert("tpm_ak".into(), Value::from(B64.encode(&ak_der)));
        let mut tpm_attestation = object(attestation_body(TPM_AGENT, 1, Value::Null));
        tpm_attestation.remove("evidence");
        let qualifying = verifier::tpm::qualifying_data(&NONCE, k3.verifying_key().as_bytes(), &tpm_attestation);
        let quote = verifier::tpm::encode_quote(&qualifying, 16, &verifier::tpm::expected_pcr_digest(&[0xc0; 32]));
        let signature: p256::ecdsa::Signature = ak.sign(&quote);
        tpm_attestation
            .insert("evidence".into(), json!({"type": "tpm", "quote": B64.encode(&quote), "signature": B64.encode(signature.to_bytes())}));
        verifier::entry::signing::sign_entry(&mut tpm_attestation, ORIGIN, &k3);
        let tpm_typed = verifier::entry::Passport::from_object(&tpm_passport).expect("a valid TPM passport");
        let tpm_attestation_leaf = with_verdict(&tpm_attestation, &tpm_typed, &k3);

        let mut hidden = object(json!({"kind": "action", "agent": AGENT, "action": "pay", "resource": "invoices/42", "seq": 6,
            "hidden": {"amount": {"u64": 1250, "prove": [{"le": 10000}]}, "customer": {"str": "ACME Corp"}}}));
        let mut rng = <rand_chacha::ChaCha20Rng as rand_chacha::rand_core::SeedableRng>::seed_from_u64(6);
        let hidden_openings =
            verifier::hidden::commit_entry(&mut hidden, ORIGIN, &mut rng, zk::params()).expect("hidden values that commit");
        verifier::entry::signing::sign_entry(&mut hidden, ORIGIN, &k2);
        let mut hidden_submission = hidden.clone();
        hidden_submission.insert("openings".into(), hidden_openings.clone());
        let hidden_leaf = match ledger_core::Submission::from_value(&Value::Object(hidden_submission.clone()), MAX_LEAF_BYTES) {
            Ok(ledger_core::Submission::Pending(p)) => p.check(ORIGIN, zk::params()).expect("openings that open").to_leaf(INTEGRATED_TIME),
            other => panic!("the committed action should be pending: {other:?}"),
        };

        let leaves = vec![
            leaf(&passport),
            leaf(&action),
            leaf(&rotation),
            leaf(&after_rotation),
            leaf(&attestation_leaf),
            hidden_leaf,
            leaf(&tpm_passport),
            leaf(&tpm_attestation_leaf),
        ];
        Fixture {
            passport,
            action,
            action_with_data,
            rotation,
            after_rotation,
            attestation,
            attestation_leaf,
            tpm_passport,
            tpm_attestation,
            tpm_attestation_leaf,
            quote,
            hidden_submission,
            hidden_openings,
            leaves,
        }
    }

    fn log(&self) -> MemoryLog {
        let mut log = MemoryLog::new(ORIGIN, LOG_KEY_SEED);
        log.leaves = self.leaves.clone();
        log
    }

    /// Submissions to `POST /v1/entries`, and stored leaves.
    fn entries(&self) -> Vec<Vec<u8>> {
        let unsigned = json!({"kind": "action", "agent": AGENT, "action": "write", "resource": "db/3"}).to_string().into_bytes();
        let mut out =
            vec![bytes(&self.action), bytes(&self.action_with_data), bytes(&self.rotation), bytes(&self.after_rotation), unsigned];
        out.push(bytes(&self.passport));
        out.push(bytes(&self.attestation));
        out.extend(self.leaves.iter().take(3).cloned());
        out
    }

    /// Checkpoints, a note with two signatures, verifier keys.
    fn notes(&self) -> Vec<Vec<u8>> {
        let log = self.log();
        let mut out: Vec<Vec<u8>> = [0u64, 1, 5, 8].iter().map(|&n| log.checkpoint(n).into_bytes()).collect();
        let other = verifier::note::NoteSigner::new("witness.example/w1", key(3)).expect("a valid name");
        let text = verifier::Checkpoint { origin: ORIGIN.into(), size: 8, root: [1; 32], extensions: vec!["ext line".into()] }.to_text();
        let ours = crate::targets::log_signer().sign(&text).expect("signing");
        let theirs = other.sign(&text).expect("signing");
        let second_line = theirs.rsplit_once("\n\n").map(|(_, sig)| sig.to_owned()).unwrap_or_default();
        out.push(format!("{ours}{second_line}").into_bytes());
        out.push(log.key().into_bytes());
        out.push(other.verifier_key().to_string().into_bytes());
        out
    }

    /// Witness inputs: add-checkpoint bodies (first, and from an older
    /// size with a consistency proof), a witness key, a cosigned note.
    fn witness_requests(&self) -> Vec<Vec<u8>> {
        let log = self.log();
        let mut out = vec![format!("old 0\n\n{}", log.checkpoint(5)).into_bytes()];
        let proof = log.consistency(5, 8);
        let mut body = String::from("old 5\n");
        for h in &proof {
            body.push_str(&B64.encode(h));
            body.push('\n');
        }
        body.push('\n');
        body.push_str(&log.checkpoint(8));
        out.push(body.into_bytes());
        let witness = crate::targets::witness_signer();
        out.push(witness.witness_key().to_string().into_bytes());
        let note = log.checkpoint(8);
        let text = &note[..note.find("\n\n").map_or(note.len(), |i| i + 1)];
        out.push(format!("{note}{}", witness.cosign(text, 1_700_000_000).expect("cosigning")).into_bytes());
        out
    }

    /// tlog-proof files: every leaf at the full size, early leaves at
    /// smaller sizes, one without `extra`.
    fn proof_files(&self) -> Vec<Vec<u8>> {
        let log = self.log();
        let n = self.leaves.len() as u64;
        let mut out: Vec<Vec<u8>> = (0..n).map(|i| log.proof(i, n).to_text().into_bytes()).collect();
        for (index, size) in [(0, 1), (1, 3), (2, 3), (4, 5)] {
            out.push(log.proof(index, size).to_text().into_bytes());
        }
        let mut bare = log.proof(3, n);
        bare.extra = None;
        out.push(bare.to_text().into_bytes());
        out
    }

    fn entry_bundles(&self) -> Vec<Vec<u8>> {
        let encode = |leaves: &[Vec<u8>]| verifier::tiles::encode_entry_bundle(leaves.iter().map(Vec::as_slice)).expect("short leaves");
        vec![encode(&self.leaves), encode(&self.leaves[..1]), Vec::new(), encode(&[Vec::new(), b"{}".to_vec()])]
    }

    /// Disclosure bundles of the hidden action (revealing, proving, both)
    /// and predicate proofs in their binary form.
    fn disclosures(&self) -> Vec<Vec<u8>> {
        let log = self.log();
        let index = 5;
        let proof = log.proof(index, self.leaves.len() as u64);
        let leaf = &self.leaves[index as usize];
        let leaf_obj = object(serde_json::from_slice(leaf).expect("a JSON leaf"));
        let fields = CommittedFields::from_leaf(&leaf_obj).expect("committed fields").expect("hidden fields");
        let openings: BTreeMap<String, Opening> = verifier::hidden::openings_from_json(&self.hidden_openings).expect("openings");
        let Some(Opening::U64 { value, blinding }) = openings.get("amount") else { panic!("amount is an integer") };
        let predicate = zk::predicate::Predicate::ge(1000);
        let list = vec![("amount".to_owned(), predicate)];
        let claims = fields.claims(&list).expect("claims on committed fields");
        let witnesses = vec![zk::prover::Witness { value: *value, blinding: blinding.clone() }];
        let context = verifier::disclosure::disclosure_proof_context(ORIGIN, index, &verifier::hash::leaf_hash(leaf));
        let mut rng = <rand_chacha::ChaCha20Rng as rand_chacha::rand_core::SeedableRng>::seed_from_u64(7);
        let zk_proof = zk::prover::prove_bound_with_rng(&claims, &witnesses, &context, zk::params(), &mut rng).expect("a true predicate");
        let reveal = |names: &[&str]| -> BTreeMap<String, Opening> {
            openings.iter().filter(|(k, _)| names.contains(&k.as_str())).map(|(k, o)| (k.clone(), o.clone())).collect()
        };
        let proofs = vec![ClaimsProof { claims: list.clone(), proof: zk_proof.clone() }];
        let bundles = [
            DisclosureBundle { tlog_proof: proof.clone(), revealed: reveal(&["customer"]), proofs: proofs.clone(), unbound_proofs: false },
            DisclosureBundle {
                tlog_proof: proof.clone(),
                revealed: reveal(&["amount", "customer"]),
                proofs: Vec::new(),
                unbound_proofs: false,
            },
            DisclosureBundle { tlog_proof: proof, revealed: BTreeMap::new(), proofs, unbound_proofs: false },
        ];
        let mut out: Vec<Vec<u8>> = bundles.iter().map(|b| b.to_json().to_string().into_bytes()).collect();
        out.push(zk_proof.to_bytes());
        let vectors: Value = serde_json::from_str(include_str!("../vectors/zk-predicate-proofs.json")).expect("the vectors file");
        for case in vectors["cases"].as_array().into_iter().flatten().take(4) {
            if let Some(bytes) = case["proof"].as_str().and_then(from_hex) {
                out.push(bytes);
            }
        }
        out
    }

    /// Hidden-field specs (`POST /v1/hidden/commit`) and a committed
    /// entry with its openings (`POST /v1/entries`).
    fn hidden(&self) -> Vec<Vec<u8>> {
        vec![
            json!({"hidden": {"amount": {"u64": 1250, "prove": [{"le": 10000}]}, "customer": {"str": "ACME Corp"}}})
                .to_string()
                .into_bytes(),
            json!({"hidden": {"a": {"u64": 9_007_199_254_740_991u64, "prove": [{"ge": 1, "le": 9_007_199_254_740_991u64}]}}})
                .to_string()
                .into_bytes(),
            json!({"hidden": {"x.y-z_0": {"u64": 0, "prove": [{"ge": 0}, {"le": 0}]}, "s": {"str": ""}}}).to_string().into_bytes(),
            bytes(&self.hidden_submission),
        ]
    }

    /// Single agent entries (submitted and leaf forms) and whole chains.
    fn agent_entries(&self) -> Vec<Vec<u8>> {
        let chain = Value::Array(
            [&self.passport, &self.action, &self.rotation, &self.after_rotation, &self.attestation_leaf]
                .iter()
                .map(|m| Value::Object((*m).clone()))
                .collect(),
        );
        let tpm_chain = Value::Array(vec![Value::Object(self.tpm_passport.clone()), Value::Object(self.tpm_attestation_leaf.clone())]);
        vec![
            bytes(&self.passport),
            bytes(&self.tpm_passport),
            bytes(&self.attestation),
            bytes(&self.attestation_leaf),
            bytes(&self.tpm_attestation),
            bytes(&self.rotation),
            chain.to_string().into_bytes(),
            tpm_chain.to_string().into_bytes(),
        ]
    }

    fn quotes(&self) -> Vec<Vec<u8>> {
        vec![self.quote.clone(), verifier::tpm::encode_quote(&[], 0, &[]), verifier::tpm::encode_quote(&[1; 64], 23, &[2; 48])]
    }
}

/// Sources and signals as submitted, and a history of leaves: two
/// passports, a source, its signals (about an agent and a code hash), its
/// re-registration, and a peer report.
fn signals() -> Vec<Vec<u8>> {
    let (agent_key, peer_key, source_key) = (key(7), key(8), key(12));
    const PEER: &str = "spiffe://fuzz.example/agent/peer";
    let passport = |agent: &str, k: &SigningKey| {
        object(json!({"kind": "passport", "agent": agent, "public_key": B64.encode(k.verifying_key().as_bytes()),
            "code_hash": "c0".repeat(32), "owner": "fuzz seeds", "purpose": "testing"}))
    };
    let source = object(json!({"kind": "source", "source": "siem-1", "key": B64.encode(source_key.verifying_key().as_bytes()),
        "types": ["siem", "threat_intel"]}));
    let siem = signed(
        json!({"kind": "signal", "source": "siem-1", "subject": AGENT, "type": "siem", "severity": "high",
            "evidence": {"rule": "r-17", "hits": [1, 2]}, "seq": 1}),
        &source_key,
    );
    let intel = signed(
        json!({"kind": "signal", "source": "siem-1", "subject": {"code_hash": "c0".repeat(32)}, "type": "threat_intel",
            "severity": "critical", "seq": 2}),
        &source_key,
    );
    let mut replaced = source.clone();
    replaced.insert("types".into(), json!(["threat_intel"]));
    let report = signed(
        json!({"kind": "signal", "source": PEER, "subject": AGENT, "type": "peer_report", "severity": "low",
            "assessment": "negative", "seq": 1}),
        &peer_key,
    );
    let drift = object(json!({"kind": "signal", "source": "ledger", "subject": AGENT, "type": "drift", "severity": "medium",
        "evidence": {"psi_milli": 120, "first_index": 0, "last_index": 9}}));
    let history = [
        passport(AGENT, &agent_key),
        passport(PEER, &peer_key),
        source.clone(),
        siem.clone(),
        intel.clone(),
        replaced,
        report.clone(),
        drift,
    ];
    let history = Value::Array(history.iter().map(|m| Value::Object(m.clone())).collect());
    let mut submitted_source = source;
    submitted_source.remove("kind");
    vec![bytes(&siem), bytes(&intel), bytes(&report), bytes(&submitted_source), history.to_string().into_bytes()]
}

/// An attestation body (signed by the caller) with fixed measurements.
fn attestation_body(agent: &str, seq: u64, evidence: Value) -> Value {
    json!({"kind": "attestation", "agent": agent, "nonce": B64.encode(NONCE), "code_hash": "c0".repeat(32),
        "runtime": {"os": "linux", "version": "6.1", "image_digest": "sha256:00"},
        "behaviour": {"digest": "00".repeat(32), "calls": 3, "distinct": 2}, "evidence": evidence, "seq": seq})
}

/// The attestation as the log stores it, with the verdict it records.
fn with_verdict(att: &Map<String, Value>, passport: &verifier::entry::Passport, key: &SigningKey) -> Map<String, Value> {
    let reasons = verifier::entry::attestation::attestation_failures(att, passport, &key.verifying_key());
    let mut leaf = att.clone();
    leaf.insert("verdict".into(), verifier::entry::attestation::verdict(att, &reasons));
    leaf
}

fn tile_paths() -> Vec<Vec<u8>> {
    use verifier::tiles::{TileKind, TilePath};
    let paths = [
        TilePath { kind: TileKind::Hashes { level: 0 }, index: 0, partial: None },
        TilePath { kind: TileKind::Hashes { level: 1 }, index: 1_234_067, partial: Some(5) },
        TilePath { kind: TileKind::Hashes { level: 7 }, index: u64::MAX >> 8, partial: Some(255) },
        TilePath { kind: TileKind::Entries, index: 7, partial: Some(1) },
        TilePath { kind: TileKind::Entries, index: 1_000_000_000, partial: None },
    ];
    paths.iter().map(|p| p.to_path().into_bytes()).collect()
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

/// Archive framings: empty, a range of a tree with a frontier and a
/// range proof, and one with a consistency proof from an earlier size.
fn archives() -> Vec<Vec<u8>> {
    use verifier::archive::{ArchiveHead, ArchiveHeader, ArchiveWriter, FORMAT};
    let head = |start: u64, end: u64, since: Option<u64>| ArchiveHead {
        header: ArchiveHeader { format: FORMAT.into(), origin: ORIGIN.into(), start, end, tree_size: 8, since_size: since },
        checkpoint: format!("{ORIGIN}\n8\n{}\n\n\u{2014} {ORIGIN} AAAA\n", B64.encode([7u8; 32])),
        frontier: (0..start.count_ones()).map(|i| [i as u8; 32]).collect(),
        range_proof: if end < 8 { vec![[3; 32], [4; 32]] } else { Vec::new() },
        since_proof: since.map(|_| vec![[5; 32]]),
    };
    [(0, 0, None), (2, 5, None), (0, 8, Some(3))]
        .into_iter()
        .map(|(start, end, since)| {
            let mut w = ArchiveWriter::begin(Vec::new(), &head(start, end, since)).expect("a valid head");
            for i in start..end {
                w.leaf(format!("{{\"i\":{i}}}").as_bytes()).expect("a leaf");
            }
            w.finish().expect("finished")
        })
        .collect()
}
