//! OpenID SSF push throughput to one receiver, with its baselines
//! measured in the same iterations (this VM's two cores are shared, so
//! each iteration times all three, one after the other, and the ratios
//! compare like with like):
//!
//! * push: a batch of 256 risk-level changes appended to the log (RocksDB,
//!   synced), until the receiver (axum on 127.0.0.1, answering 202) has
//!   taken all 256 SETs: the transmitter reads each entry, makes its SET,
//!   signs it and POSTs it, in order, one at a time, and stores its cursor
//!   (criterion reports this one);
//! * sign: signing 256 such SETs alone (jsonwebtoken on ring, the
//!   transmitter's key);
//! * post: POSTing 256 already signed SETs to the same receiver, one at a
//!   time (ureq, keep-alive): the transport alone.
//!
//! Sign + post is what a push cannot do without; push / (sign + post)
//! is the share of the time the transmitter spends on that.

// In tests and benches a failed unwrap is the failure report.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use criterion::{BenchmarkId, Criterion, Throughput};
use ledger_benches::Totals;
use ledger_core::{Log, LogConfig, NewEntry};
use ledger_server::ssf::set::{entry_claims, EntryEvent, EventType};
use ledger_server::ssf::{DefaultSubjects, ReceiverToken, SetSigner, SigningAlg, SsfConfig, Transmitter};
use serde_json::json;
use verifier::entry::{Level, Passport, RiskChange};

const BATCH: usize = 256;
const TOKEN: &str = "bench-receiver-token-0123456789";

/// A receiver that takes every SET (202) and counts them.
#[derive(Clone, Default)]
struct Receiver {
    taken: Arc<AtomicU64>,
    arrived: Arc<tokio::sync::Notify>,
}

impl Receiver {
    async fn start(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = self.clone();
        let router = axum::Router::new().route(
            "/events",
            axum::routing::post(|axum::extract::State(r): axum::extract::State<Receiver>, _body: axum::body::Bytes| async move {
                r.taken.fetch_add(1, Ordering::SeqCst);
                r.arrived.notify_waiters();
                StatusCode::ACCEPTED
            }),
        );
        tokio::spawn(async move { axum::serve(listener, router.with_state(state)).await.unwrap() });
        format!("http://{addr}/events")
    }

    async fn wait_for(&self, n: u64) {
        loop {
            let arrived = self.arrived.notified();
            if self.taken.load(Ordering::SeqCst) >= n {
                return;
            }
            let _ = tokio::time::timeout(Duration::from_millis(50), arrived).await;
        }
    }
}

fn agent() -> verifier::AgentId {
    verifier::AgentId::parse("spiffe://bench.example/agent/risky").unwrap()
}

fn risk_entries() -> Vec<NewEntry> {
    let decision = verifier::entry::Decision { as_of_index: 0, decided_at: 0 };
    let risk = RiskChange { agent: agent(), previous: Level::Low, current: Level::High, score: 33, policy_index: None, decision };
    (0..BATCH).map(|_| NewEntry::from_log(&risk.to_object(), None, None).unwrap()).collect()
}

fn push(c: &mut Criterion, totals: &Totals, rt: &tokio::runtime::Runtime, alg: SigningAlg) {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { origin: "bench.example/log".into(), ..LogConfig::default() };
    let log = Arc::new(Log::open_dir(dir.path(), config, None).unwrap());
    let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
    let passport = Passport {
        agent: agent(),
        public_key: key.verifying_key(),
        code_hash: [0; 32],
        model_hash: None,
        owner: "bench".into(),
        purpose: "bench".into(),
        tpm_ak: None,
    };
    rt.block_on(log.register(passport)).unwrap();
    let receiver = Receiver::default();
    let endpoint = rt.block_on(receiver.start());
    let ssf_config = SsfConfig {
        issuer: "https://ledger.bench.example".into(),
        alg,
        default_subjects: DefaultSubjects::All,
        tokens: vec![ReceiverToken::parse(&format!("{TOKEN}:ssf.manage")).unwrap()],
        push_timeout: Duration::from_secs(10),
        push_max_backoff: Duration::from_secs(1),
        poll_wait: Duration::from_secs(1),
    };
    let ssf = {
        let _entered = rt.enter();
        Transmitter::start(Arc::clone(&log), ssf_config, dir.path()).unwrap()
    };
    let mut headers = HeaderMap::new();
    headers.insert("authorization", HeaderValue::from_str(&format!("Bearer {TOKEN}")).unwrap());
    let caller = ssf.caller(&headers).unwrap();
    let request = json!({"delivery": {"method": "urn:ietf:rfc:8935", "endpoint_url": endpoint}});
    rt.block_on(ssf.create(&caller, request.as_object().unwrap())).unwrap();

    // The same SET, signed alone, and POSTed alone.
    let (signer, _) = SetSigner::load_or_create(dir.path(), alg).unwrap();
    let event = EntryEvent {
        index: 7,
        ordinal: 0,
        event_type: EventType::RiskLevelChange,
        agent: agent().into_string(),
        event: json!({"principal": "NHI", "current_level": "HIGH", "previous_level": "LOW",
                      "risk_reason": "trust score 33 under the policy at index 0", "initiating_entity": "policy", "event_timestamp": 1_790_000_000}),
        subject: None,
    };
    let claims =
        entry_claims(&event, "0123456789abcdef0123456789abcdef", "https://ledger.bench.example", "rcv-0123456789abcdef", 1_790_000_001);
    let signed = signer.sign(&claims).unwrap();
    let baseline = Receiver::default();
    let baseline_endpoint = rt.block_on(baseline.start());
    // Configured as the transmitter's own client.
    let http: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(10)))
        .timeout_per_read(Some(Duration::from_secs(10)))
        .timeout_per_write(Some(Duration::from_secs(10)))
        .max_redirects(0)
        .max_redirects_will_error(false)
        .build()
        .into();

    let mut group = c.benchmark_group("ssf_push");
    group.sample_size(10).measurement_time(Duration::from_secs(8)).warm_up_time(Duration::from_millis(500));
    group.throughput(Throughput::Elements(BATCH as u64));
    let mut expected = 0u64;
    group.bench_function(BenchmarkId::new("push", alg.name()), |b| {
        b.iter_custom(|iters| {
            let mut elapsed = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                for _ in 0..BATCH {
                    std::hint::black_box(signer.sign(&claims).unwrap());
                }
                totals.record(&format!("sign_{}", alg.name()), start.elapsed(), BATCH as u64);

                let start = Instant::now();
                for _ in 0..BATCH {
                    let response =
                        http.post(&baseline_endpoint).header("content-type", "application/secevent+jwt").send(signed.as_str()).unwrap();
                    assert_eq!(response.status().as_u16(), 202);
                }
                totals.record(&format!("post_{}", alg.name()), start.elapsed(), BATCH as u64);

                let entries = risk_entries();
                expected += BATCH as u64;
                let start = Instant::now();
                rt.block_on(async {
                    log.append(entries).await.unwrap();
                    receiver.wait_for(expected).await;
                });
                let took = start.elapsed();
                totals.record(&format!("push_{}", alg.name()), took, BATCH as u64);
                elapsed += took;
            }
            elapsed
        })
    });
    group.finish();
    rt.block_on(ssf.shutdown());
}

fn main() {
    let totals = Totals::default();
    let mut c = Criterion::default().configure_from_args();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let algs = [SigningAlg::Rs256, SigningAlg::Es256, SigningAlg::EdDsa];
    for alg in algs {
        push(&mut c, &totals, &rt, alg);
    }
    c.final_summary();
    for alg in algs {
        let rate = |what: &str| totals.rate(&format!("{what}_{}", alg.name()));
        let (push, sign, post) = (rate("push"), rate("sign"), rate("post"));
        if push > 0.0 && sign > 0.0 && post > 0.0 {
            let floor = 1.0 / (1.0 / sign + 1.0 / post);
            println!(
                "SSF push to one receiver ({}): {push:.0} SETs/s; same iterations: signing alone {sign:.0}/s, POST alone {post:.0}/s, \
                 sign + POST {floor:.0}/s; push / (sign + POST) = {:.2}x",
                alg.name(),
                push / floor
            );
        }
    }
}
