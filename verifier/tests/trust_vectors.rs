//! The trust and drift folds against tests/vectors/trust-scores.json and
//! tests/vectors/trust-drift.json, written by `scripts/trust_vectors.py`
//! (an implementation of docs/TRUST.md of its own; tests/vectors/README.md).
#![allow(clippy::unwrap_used)]

use serde_json::Value;
use sha2::{Digest, Sha256};
use verifier::canonical::{parse_strict, to_canonical};
use verifier::fold::drift::{bucket, psi_milli, resource_class, DriftFinding, DriftState};
use verifier::fold::fixed::TABLES_SHA256;
use verifier::fold::policy::Policy;
use verifier::fold::trust::{AgentTrust, Components, Evidence, Level, Severity, SignalKind};

fn vectors(name: &str) -> Value {
    let path = format!("{}/../tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap()
}

fn opt(v: &Value) -> Option<u64> {
    v.as_u64()
}

/// A case's policy, given as canonical JSON: read strictly, it writes back
/// the same bytes.
fn policy(case: &Value) -> Policy {
    let canonical = case["policy"].as_str().unwrap();
    let p = Policy::from_json(&parse_strict(canonical.as_bytes()).unwrap()).unwrap();
    assert_eq!(p.to_canonical(), canonical.as_bytes());
    if let Some(hash) = case["policy_sha256"].as_str() {
        assert_eq!(hex(&p.hash()), hash);
    }
    p
}

fn evidence(v: &Value) -> Evidence {
    let flag = |k: &str| v[k].as_bool().unwrap();
    match v["type"].as_str().unwrap() {
        "attestation" => Evidence::Attestation { ok: flag("ok"), tpm: flag("tpm") },
        "drift" => Evidence::Drift { significant: flag("significant") },
        "signal" => Evidence::Signal {
            kind: SignalKind::parse(v["kind"].as_str().unwrap()).unwrap(),
            severity: Severity::parse(v["severity"].as_str().unwrap()).unwrap(),
        },
        "peer_report" => Evidence::PeerReport { positive: flag("positive"), reporter_score: u(&v["reporter_score"]) as u8 },
        other => panic!("unknown evidence type {other}"),
    }
}

fn components(v: &Value) -> Components {
    Components {
        score: u(&v["score"]) as u8,
        expectation_permille: u(&v["expectation_permille"]),
        freshness_permille: u(&v["freshness_permille"]),
        evidence_for_milli: u(&v["evidence_for_milli"]),
        evidence_against_milli: u(&v["evidence_against_milli"]),
        last_attestation_index: opt(&v["last_attestation_index"]),
        revoked: opt(&v["revoked"]),
    }
}

#[test]
fn the_tables_are_the_generators() {
    assert_eq!(vectors("trust-scores.json")["tables_sha256"].as_str().unwrap(), TABLES_SHA256);
}

#[test]
fn the_default_policy_is_pinned() {
    let v = vectors("trust-scores.json");
    let canonical = v["default_policy"]["canonical"].as_str().unwrap();
    let p = Policy::default();
    assert_eq!(std::str::from_utf8(&p.to_canonical()).unwrap(), canonical);
    assert_eq!(hex(&p.hash()), v["default_policy"]["sha256"].as_str().unwrap());
    assert_eq!(hex(&Sha256::digest(canonical.as_bytes())), v["default_policy"]["sha256"].as_str().unwrap());
    let read = Policy::from_json(&parse_strict(canonical.as_bytes()).unwrap()).unwrap();
    assert_eq!(read, p);
    assert_eq!(to_canonical(&read.to_json()), canonical.as_bytes());
}

#[test]
fn trust_scores() {
    let v = vectors("trust-scores.json");
    for case in v["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let p = policy(case);
        let mut t = AgentTrust::register(&p, u(&case["register"]["index"]), u(&case["register"]["time_ms"]));
        for (n, step) in case["steps"].as_array().unwrap().iter().enumerate() {
            let at = format!("{name}, step {n}");
            match step["op"].as_str().unwrap() {
                "apply" => t.apply(&p, u(&step["index"]), u(&step["time_ms"]), &evidence(&step["evidence"])),
                "revoke" => t.revoke(u(&step["index"]), u(&step["time_ms"])),
                "reinstate" => t.reinstate(&p, u(&step["index"]), u(&step["time_ms"])),
                "set_level" => t.set_level(Level::parse(step["level"].as_str().unwrap()).unwrap()),
                "read" => {
                    let now = u(&step["time_ms"]);
                    assert_eq!(t.components(&p, now), components(&step["components"]), "{at}");
                    assert_eq!(t.score(&p, now), u(&step["components"]["score"]) as u8, "{at}");
                    assert_eq!(t.target_level(&p, now).as_str(), step["target_level"].as_str().unwrap(), "{at}");
                    for c in step["crossings"].as_array().unwrap() {
                        assert_eq!(t.crossing(&p, now, u(&c[0]) as u8), opt(&c[1]), "{at}, threshold {}", c[0]);
                    }
                    assert_eq!(t.level_crossing(&p, now), opt(&step["level_crossing"]), "{at}");
                    let recent: Vec<u64> = step["recent"].as_array().unwrap().iter().map(u).collect();
                    assert_eq!(t.recent(), recent.as_slice(), "{at}");
                }
                other => panic!("unknown op {other}"),
            }
        }
        assert_eq!(hex(&t.to_bytes()), case["state"].as_str().unwrap(), "{name}: final state");
        assert_eq!(AgentTrust::from_bytes(&t.to_bytes()).unwrap(), t);
    }
}

#[test]
fn trust_scores_by_hand() {
    // The hand-checkable cases, spelled out (docs/TRUST.md; the notes in
    // the vector file say why).
    let v = vectors("trust-scores.json");
    let case = |name: &str| v["cases"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap().clone();
    let scores = |c: &Value| -> Vec<u64> {
        c["steps"].as_array().unwrap().iter().filter(|s| s["op"] == "read").map(|s| u(&s["components"]["score"])).collect()
    };
    assert_eq!(scores(&case("one half-life halves the evidence")), [50, 75, 66, 50]);
    let fresh = case("freshness crossings by hand");
    let first = &fresh["steps"][0];
    let (grace, h) = (1_000_000_000u64, 1_024_000u64);
    assert_eq!(first["crossings"][0], serde_json::json!([25, grace + h + 4000]));
    assert_eq!(first["level_crossing"], serde_json::json!(grace + 83 * 4000));
    assert_eq!(scores(&fresh), [50, 25, 25, 24]);
}

#[test]
fn drift_buckets_and_psi() {
    let v = vectors("trust-drift.json");
    for c in v["buckets"].as_array().unwrap() {
        let (action, resource) = (c["action"].as_str().unwrap(), c["resource"].as_str().unwrap());
        assert_eq!(resource_class(resource), c["class"].as_str().unwrap().as_bytes(), "{resource}");
        assert_eq!(u64::from(bucket(action, resource, u(&c["buckets"]) as u16)), u(&c["bucket"]), "{action} {resource}");
    }
    for c in v["psi"].as_array().unwrap() {
        let h = |k: &str| -> Vec<u32> { c[k].as_array().unwrap().iter().map(|x| u(x) as u32).collect() };
        assert_eq!(psi_milli(&h("baseline"), &h("window")), u(&c["psi_milli"]));
    }
}

#[test]
fn drift_sequences() {
    let v = vectors("trust-drift.json");
    for case in v["sequences"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let p = policy(case);
        let mut d = DriftState::new(&p);
        let first = u(&case["first_index"]);
        let found: Vec<DriftFinding> = case["buckets"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
            .filter_map(|(i, b)| d.observe(&p, first + i as u64, u(b) as u16))
            .collect();
        let expected: Vec<DriftFinding> = case["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| DriftFinding {
                psi_milli: u(&f["psi_milli"]),
                significant: f["significant"].as_bool().unwrap(),
                first_index: u(&f["first_index"]),
                last_index: u(&f["last_index"]),
            })
            .collect();
        assert_eq!(found, expected, "{name}");
        assert_eq!(hex(&d.to_bytes()), case["state"].as_str().unwrap(), "{name}: final state");
        assert_eq!(DriftState::from_bytes(&d.to_bytes()).unwrap(), d);
    }
}
