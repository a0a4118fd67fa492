//! The trust view kept entry by entry in the group commits equals the
//! trust fold recomputed from the log's leaves, for random sequences of
//! registrations, actions (with drift findings), attestations, revocations,
//! reinstatements and policy changes, across restarts (the view loaded
//! from its records) and crashes that lost the view's records (the view
//! rebuilt from the log).
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use ledger_core::conformance::signer;
use ledger_core::store::{CommitBatch, LogStore, MemoryStore, Namespace, Record};
use ledger_core::{Error, Log, LogConfig, NewEntry};
use proptest::prelude::*;
use verifier::entry::{Leaf, Passport, Revocation, RevocationReason};
use verifier::fold::policy::Policy;
use verifier::fold::trust_log::TrustMap;
use verifier::AgentId;

const AGENTS: u8 = 3;

#[derive(Clone, Debug)]
enum Op {
    Register(u8),
    Act { agent: u8, action: u8, resource: u8 },
    Revoke(u8),
    Attest(u8),
    Report { reporter: u8, subject: u8, positive: bool },
    Reinstate(u8),
    Policy(u8),
    Restart,
    LoseView,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => (0..AGENTS).prop_map(Op::Register),
        6 => (0..AGENTS, 0..3u8, 0..4u8).prop_map(|(agent, action, resource)| Op::Act { agent, action, resource }),
        1 => (0..AGENTS).prop_map(Op::Revoke),
        1 => (0..AGENTS).prop_map(Op::Attest),
        2 => (0..AGENTS, 0..AGENTS, any::<bool>()).prop_map(|(reporter, subject, positive)| Op::Report { reporter, subject, positive }),
        1 => (0..AGENTS).prop_map(Op::Reinstate),
        1 => (30..50u8).prop_map(Op::Policy),
        1 => Just(Op::Restart),
        1 => Just(Op::LoseView),
    ]
}

fn key(i: u8) -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[i + 1; 32])
}

/// Agent `i`'s passport, running code `[code; 32]`.
fn passport(i: u8, code: u8) -> Passport {
    Passport {
        agent: agent(i),
        public_key: key(i).verifying_key(),
        code_hash: [code; 32],
        model_hash: None,
        owner: "o".into(),
        purpose: "p".into(),
        tpm_ak: None,
    }
}

/// A peer report by agent `reporter` about agent `subject`, signed.
fn peer_report(reporter: u8, subject: u8, assessment: &str, seq: u64) -> serde_json::Value {
    let mut v = serde_json::json!({"kind": "signal", "source": agent(reporter).as_str(), "subject": agent(subject).as_str(),
        "type": "peer_report", "severity": "low", "assessment": assessment, "seq": seq});
    verifier::entry::signing::sign_entry(v.as_object_mut().unwrap(), "test.example/log", &key(reporter));
    v
}

fn agent(i: u8) -> AgentId {
    AgentId::parse(&format!("spiffe://test.example/agent/a{i}")).unwrap()
}

fn open(store: &Arc<MemoryStore>) -> Log {
    let config = LogConfig { origin: "test.example/log".into(), agent_auth: false, ..LogConfig::default() };
    Log::open(Arc::clone(store) as Arc<dyn LogStore>, signer(), config, None).unwrap()
}

/// Drift windows of two observations; peer reports that weigh nothing
/// when `threshold` is odd (they still take the subject's peer slots).
fn small_windows(threshold: u8) -> Policy {
    let mut p = Policy { revocation_threshold: threshold, peer_report_interval_s: 1, ..Policy::default() };
    if threshold % 2 == 1 {
        p.weights.peer_report.positive = 0;
        p.weights.peer_report.negative = 0;
    }
    p.drift.buckets = 4;
    p.drift.baseline_events = 3;
    p.drift.window_events = 2;
    p.drift.moderate_milli = 1;
    p
}

/// Deletes every record of the trust view and its applied index.
fn lose_view(store: &MemoryStore, size: u64) {
    let records = store.scan_prefix(Namespace::Views, b"trust\0", b"trust\0", 100_000).unwrap();
    let deletes = records
        .into_iter()
        .map(|(k, _)| Record::delete(Namespace::Views, k))
        .chain([Record::delete(Namespace::Views, b"trust".to_vec())])
        .collect();
    store.commit(&CommitBatch { first_index: size, records: deletes, ..CommitBatch::default() }).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn the_kept_view_equals_the_fold_of_the_leaves(ops in prop::collection::vec(op(), 1..40)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let store = Arc::new(MemoryStore::new());
        let mut log = open(&store);
        rt.block_on(log.set_policy(&small_windows(30))).unwrap();
        for op in ops {
            match op {
                Op::Register(i) => {
                    let p = passport(i, i % 2);
                    let done = rt.block_on(log.register(p));
                    prop_assert!(matches!(done, Ok(_) | Err(Error::AgentExists(_))), "{done:?}");
                }
                Op::Act { agent: i, action, resource } => {
                    let entry = NewEntry::action(&agent(i), ["read", "write", "delete"][usize::from(action)], &format!("r{resource}/x"), None, 65_535).unwrap();
                    rt.block_on(log.append(vec![entry])).unwrap();
                }
                Op::Revoke(i) => {
                    let r = Revocation { agent: agent(i), reason: RevocationReason::Quarantine, score: 0, threshold: 30, causes: vec![], policy_index: None, decision: None, note: None , tokens: Vec::new() };
                    let done = rt.block_on(log.revoke(&r));
                    prop_assert!(matches!(done, Ok(_) | Err(Error::AlreadyRevoked(_) | Error::UnknownAgent(_))), "{done:?}");
                }
                Op::Attest(i) => {
                    // Taken from a revoked agent too.
                    let done = rt.block_on(ledger_core::conformance::attest_software(&log, &agent(i), &key(i)));
                    prop_assert!(matches!(done, Ok(_) | Err(Error::UnknownAgent(_))), "{done:?}");
                }
                // An agent never reports on itself (refused when parsed).
                Op::Report { reporter, subject, .. } if reporter == subject => {}
                Op::Report { reporter, subject, positive } => {
                    let seq = log.agent(&agent(reporter)).map_or(1, |s| s.last_seq + 1);
                    let v = peer_report(reporter, subject, if positive { "positive" } else { "negative" }, seq);
                    let done = rt.block_on(log.submit(vec![ledger_core::Submission::signal_from_value(&v, 65_535).unwrap()]));
                    // Refused: about itself, unknown or revoked reporter,
                    // unknown subject, or below the threshold.
                    prop_assert!(matches!(done, Ok(_) | Err(Error::Entry(_) | Error::UnknownAgent(_) | Error::AgentRevoked(_)
                        | Error::BelowThreshold { .. } | Error::Source(_))), "{done:?}");
                }
                Op::Reinstate(i) => {
                    let done = rt.block_on(log.reinstate(&agent(i), None));
                    prop_assert!(
                        matches!(done, Ok(_) | Err(Error::NotRevoked(_) | Error::AttestationRequired { .. } | Error::UnknownAgent(_))),
                        "{done:?}"
                    );
                }
                Op::Policy(threshold) => {
                    rt.block_on(log.set_policy(&small_windows(threshold))).unwrap();
                }
                Op::Restart => {
                    log.shutdown();
                    log = open(&store);
                }
                Op::LoseView => {
                    log.shutdown();
                    lose_view(&store, log.head().size);
                    log = open(&store);
                }
            }
        }
        let mut fold = TrustMap::default();
        for index in 0..log.head().size {
            let (leaf, _) = Leaf::decode(&log.entry(index).unwrap()).unwrap();
            fold.apply_leaf(index, &leaf).unwrap();
        }
        for i in 0..AGENTS {
            prop_assert_eq!(log.trust().get(&agent(i)), fold.agents.get(&agent(i)).cloned());
        }
        prop_assert_eq!(log.trust().policy(), fold.policy.clone());
        log.shutdown();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_pass_over_the_agents_serves_listings_for_a_while() {
    let store = Arc::new(MemoryStore::new());
    let log = open(&store);
    for i in 0..AGENTS {
        let p = passport(i, 0);
        log.register(p).await.unwrap();
    }
    let now = log.now_ms();
    let table = log.trust().scores(now);
    assert_eq!((table.applied, table.time_ms, table.rows.len()), (u64::from(AGENTS), now, usize::from(AGENTS)));
    assert!(table.rows.windows(2).all(|w| w[0] <= w[1]), "by (score, id)");
    assert!(table.rows.iter().all(|r| r.score == 60 && !r.revoked));
    // Reused while the log stands still (up to a second) and, whatever
    // happens, for 100 ms; then scored again.
    assert!(Arc::ptr_eq(&table, &log.trust().scores(now + 999)));
    let r = Revocation {
        agent: agent(0),
        reason: RevocationReason::Quarantine,
        score: 0,
        threshold: 30,
        causes: vec![],
        policy_index: None,
        decision: None,
        note: None,
        tokens: Vec::new(),
    };
    log.revoke(&r).await.unwrap();
    assert!(Arc::ptr_eq(&table, &log.trust().scores(now + 99)));
    let fresh = log.trust().scores(now + 100);
    assert!(!Arc::ptr_eq(&table, &fresh));
    assert_eq!(fresh.rows[0].agent, agent(0));
    assert!(fresh.rows[0].revoked && fresh.rows[0].score == 0);
    assert!(!Arc::ptr_eq(&fresh, &log.trust().scores(now + 1_200)));
    log.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_report_that_weighs_nothing_is_still_remembered_across_a_restart() {
    let store = Arc::new(MemoryStore::new());
    let log = open(&store);
    // Odd threshold: peer reports weigh nothing, yet take a peer slot.
    log.set_policy(&small_windows(31)).await.unwrap();
    for i in 0..2 {
        let p = passport(i, 0);
        log.register(p).await.unwrap();
    }
    let v = peer_report(1, 0, "negative", 1);
    log.submit(vec![ledger_core::Submission::signal_from_value(&v, 65_535).unwrap()]).await.unwrap();
    let kept = log.trust().get(&agent(0)).unwrap();
    assert_eq!(kept.peers.len(), 1, "the report took a slot");
    log.shutdown();
    let log = open(&store);
    assert_eq!(log.trust().get(&agent(0)).unwrap(), kept, "the slot was stored");
    log.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_of_the_one_record_layout_are_dropped_and_the_view_rebuilt() {
    let store = Arc::new(MemoryStore::new());
    let log = open(&store);
    for i in 0..2 {
        let p = passport(i, 0);
        log.register(p).await.unwrap();
        let entry = NewEntry::action(&agent(i), "read", "r/x", None, 65_535).unwrap();
        log.append(vec![entry]).await.unwrap();
    }
    let kept: Vec<_> = (0..2).map(|i| log.trust().get(&agent(i)).unwrap()).collect();
    let size = log.head().size;
    log.shutdown();
    // The earlier layout: one record per agent, no drift record and no
    // score history count (its bytes unreadable now).
    let records = store.scan_prefix(Namespace::Views, b"trust\0", b"trust\0", 1_000).unwrap();
    let rewrite = records
        .into_iter()
        .map(|(k, v)| {
            if k.ends_with(b"\0drift") || k.ends_with(b"\0history") {
                Record::delete(Namespace::Views, k)
            } else {
                Record::put(Namespace::Views, k, [&v[..], &[0xff; 8]].concat())
            }
        })
        .collect();
    store.commit(&CommitBatch { first_index: size, records: rewrite, ..CommitBatch::default() }).unwrap();
    let log = open(&store);
    for i in 0..2 {
        assert_eq!(log.trust().get(&agent(i)).as_ref(), Some(&kept[usize::from(i)]));
    }
    assert!(store.scan_prefix(Namespace::Views, b"trust\0", b"trust\0", 1_000).unwrap().iter().any(|(k, _)| k.ends_with(b"\0drift")));
    log.shutdown();
}
