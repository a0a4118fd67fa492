//! Signed appends and attestation checks, each against a baseline in the
//! same run:
//!
//! * `signed_append`: embedded submissions (RocksDB, synced) of 256
//!   entries signed by 256 agents, with the signatures pre-verified in
//!   parallel before the sequencer (`preverify`, the server's setting) vs.
//!   verified one by one on the sequencer thread (`sequencer`); unsigned
//!   appends of the same entries (no agent checks) as the storage baseline.
//!   Two shapes: one submission of 256 entries (`batch`), and 256
//!   concurrent single-entry submissions (`concurrent`, what HTTP clients
//!   do);
//! * `attestation`: checking an attestation's evidence against a passport
//!   (software, TPM quote) vs. one bare Ed25519 verification.

// In tests and benches a failed unwrap is the failure report.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use criterion::{BenchmarkId, Criterion, Throughput};
use ed25519_dalek::{Signer as _, SigningKey};
use ledger_benches::Totals;
use ledger_core::store::RocksStore;
use ledger_core::{Log, LogConfig, NewEntry, Submission};
use p256::pkcs8::EncodePublicKey as _;
use serde_json::{json, Map, Value};
use verifier::entry::attestation::attestation_failures;
use verifier::entry::signing::{hex, sign_entry};
use verifier::entry::Passport;
use verifier::note::NoteSigner;
use verifier::tpm::{encode_quote, expected_pcr_digest, qualifying_data};

const AGENTS: usize = 256;

fn agent_id(i: usize) -> verifier::AgentId {
    verifier::AgentId::parse(&format!("spiffe://bench.example/agent/a{i}")).expect("a valid agent id")
}

const ORIGIN: &str = "bench.example/log";

fn open(preverify: bool, agent_auth: bool, keys: &[SigningKey], rt: &tokio::runtime::Runtime) -> (Log, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(RocksStore::open(dir.path()).unwrap());
    let signer = NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[1; 32])).unwrap();
    let config = LogConfig { origin: ORIGIN.into(), preverify, agent_auth, ..LogConfig::default() };
    let log = Log::open(store, signer, config, None).unwrap();
    if agent_auth {
        for (i, k) in keys.iter().enumerate() {
            let p = Passport {
                agent: agent_id(i),
                public_key: k.verifying_key(),
                code_hash: [0; 32],
                model_hash: None,
                owner: "bench".into(),
                purpose: "bench".into(),
                tpm_ak: None,
            };
            rt.block_on(log.register(p)).unwrap();
        }
    }
    (log, dir)
}

fn entries(keys: &[SigningKey], seq: u64, signed: bool) -> Vec<NewEntry> {
    keys.iter()
        .enumerate()
        .map(|(i, k)| {
            let mut m: Map<String, Value> =
                json!({"kind": "action", "agent": agent_id(i), "action": "write", "resource": format!("db/{seq}")})
                    .as_object()
                    .unwrap()
                    .clone();
            if signed {
                m.insert("seq".into(), seq.into());
                sign_entry(&mut m, ORIGIN, k);
            }
            Submission::from_value(&Value::Object(m), 65535).unwrap().ready().unwrap()
        })
        .collect()
}

fn signed_append(c: &mut Criterion, totals: &Totals) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    let keys: Vec<SigningKey> = (0..AGENTS).map(|i| SigningKey::from_bytes(&[(i % 251) as u8 + 1; 32])).collect();
    let mut group = c.benchmark_group("signed_append");
    group.sample_size(10).measurement_time(Duration::from_secs(4)).warm_up_time(Duration::from_millis(500));
    group.throughput(Throughput::Elements(AGENTS as u64));
    for shape in ["batch", "concurrent"] {
        for (mode, preverify, auth) in [("unsigned", false, false), ("sequencer", false, true), ("preverify", true, true)] {
            let name = format!("{mode}_{shape}");
            let (log, _dir) = open(preverify, auth, &keys, &rt);
            let log = Arc::new(log);
            let mut seq = 0u64;
            group.bench_function(BenchmarkId::new(&name, AGENTS), |b| {
                b.iter_custom(|iters| {
                    let mut elapsed = Duration::ZERO;
                    for _ in 0..iters {
                        seq += 1;
                        let batch: Vec<Submission> = entries(&keys, seq, auth).into_iter().map(Submission::Ready).collect();
                        let start = Instant::now();
                        if shape == "batch" {
                            rt.block_on(log.submit(batch)).unwrap();
                        } else {
                            rt.block_on(async {
                                let mut tasks = tokio::task::JoinSet::new();
                                for s in batch {
                                    let log = Arc::clone(&log);
                                    tasks.spawn(async move { log.submit(vec![s]).await });
                                }
                                for done in tasks.join_all().await {
                                    done.unwrap();
                                }
                            });
                        }
                        elapsed += start.elapsed();
                    }
                    totals.record(&name, elapsed, iters * AGENTS as u64);
                    elapsed
                })
            });
        }
    }
    group.finish();
}

fn attestation(c: &mut Criterion, totals: &Totals) {
    let key = SigningKey::from_bytes(&[7; 32]);
    let ak = p256::ecdsa::SigningKey::from_slice(&[5; 32]).unwrap();
    let spki = ak.verifying_key().to_public_key_der().unwrap().as_bytes().to_vec();
    let code = [0xc0; 32];
    let passport = Passport {
        agent: agent_id(0),
        public_key: key.verifying_key(),
        code_hash: code,
        model_hash: None,
        owner: "b".into(),
        purpose: "b".into(),
        tpm_ak: Some(spki),
    };
    let nonce = [9u8; 32];
    let make = |evidence: Value| -> Map<String, Value> {
        let mut m = json!({"kind": "attestation", "agent": agent_id(0), "nonce": B64.encode(nonce), "code_hash": hex(&code),
            "runtime": {"os": "linux", "version": "6", "image_digest": "sha256:x"},
            "behaviour": {"digest": hex(&[0; 32]), "calls": 1, "distinct": 1}, "evidence": evidence, "seq": 1})
        .as_object()
        .unwrap()
        .clone();
        sign_entry(&mut m, ORIGIN, &key);
        m
    };
    let software = make(json!({"type": "software"}));
    // The quote binds the nonce, the agent key and the claims, which the
    // evidence and the signature do not change.
    let q = encode_quote(&qualifying_data(&nonce, key.verifying_key().as_bytes(), &software), 16, &expected_pcr_digest(&code));
    let qs: p256::ecdsa::Signature = ak.sign(&q);
    let tpm = make(json!({"type": "tpm", "quote": B64.encode(&q), "signature": B64.encode(qs.to_bytes())}));
    // Software evidence only passes for a passport without a TPM key.
    let software_passport = Passport { tpm_ak: None, ..passport.clone() };
    let message = b"a message the size of a small signed entry, about one hundred and twenty bytes long, give or take a few".to_vec();
    let signature = key.sign(&message);
    let mut group = c.benchmark_group("attestation");
    group.sample_size(20).measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(300));
    let mut run = |name: &'static str, f: &dyn Fn()| {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    f();
                }
                let elapsed = start.elapsed();
                totals.record(name, elapsed, iters);
                elapsed
            })
        });
    };
    run("ed25519_verify", &|| key.verifying_key().verify_strict(&message, &signature).unwrap());
    // What the log does per attestation besides the nonce lookup: the
    // entry signature, then the evidence against the passport.
    let check = |m: &Map<String, Value>, passport: &Passport| {
        let msg = verifier::entry::signing::signing_message(ORIGIN, m);
        let sig = verifier::entry::signing::parse_signature(m["signature"].as_str().unwrap()).unwrap();
        assert!(verifier::entry::signing::verify_signature(&key.verifying_key(), &msg, &sig));
        assert!(attestation_failures(m, passport, &key.verifying_key()).is_empty());
    };
    run("software", &|| check(&software, &software_passport));
    run("tpm_quote", &|| check(&tpm, &passport));
    group.finish();
}

fn main() {
    let totals = Totals::default();
    let mut c = Criterion::default().configure_from_args();
    signed_append(&mut c, &totals);
    attestation(&mut c, &totals);
    c.final_summary();
    for shape in ["batch", "concurrent"] {
        let rate = |mode: &str| totals.rate(&format!("{mode}_{shape}"));
        let (u, seq, pre) = (rate("unsigned"), rate("sequencer"), rate("preverify"));
        if seq > 0.0 && pre > 0.0 {
            println!(
                "signed appends ({shape}, {AGENTS} agents, synced): unsigned {u:.0}/s, verified on the sequencer {seq:.0}/s, pre-verified in parallel {pre:.0}/s; preverify / sequencer = {:.2}x, preverify / unsigned = {:.2}x",
                pre / seq,
                if u > 0.0 { pre / u } else { 0.0 }
            );
        }
    }
    let t = |k: &str| totals.per_element(k);
    if let (Some(e), Some(s), Some(q)) = (t("ed25519_verify"), t("software"), t("tpm_quote")) {
        println!(
            "attestation check: software {:.1} µs = {:.2}x an Ed25519 verify ({:.1} µs); TPM quote {:.1} µs = {:.2}x",
            s * 1e6,
            s / e,
            e * 1e6,
            q * 1e6,
            q / e
        );
    }
}
