//! The revocation bus over real HTTP on 127.0.0.1, on a RocksDB log, read
//! by a small SSE parser of the test's own and by tungstenite as the
//! WebSocket client: resuming with `Last-Event-ID` or `?after=` loses and
//! repeats nothing, filters select exactly their events, bad requests get
//! their codes, a subscriber that reads nothing holds up no append and
//! still gets everything afterwards, and shutdown ends every stream. The
//! SDK's `EventStream` resumes across a connection the test cuts.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read as _, Write as _};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use ledger_client::{EventFilter as SdkFilter, EventStream, EventType, Reconnect};
use ledger_core::{Log, LogConfig, NewEntry};
use ledger_server::bus::{BusConfig, RevocationBus};
use ledger_server::metrics::Metrics;
use ledger_server::serve::{serve, ServeLimits};
use ledger_server::{app, AppState, Limits};
use serde_json::Value;
use tungstenite::client::IntoClientRequest as _;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::Message;
use verifier::entry::{Level, Passport, Revocation, RevocationReason, RiskChange, Severity, Signal, SignalType, Signer, Subject};
use verifier::AgentId;

const ORIGIN: &str = "events.example/log";

/// How long any single read may wait before the test fails.
const WAIT: Duration = Duration::from_secs(30);

/// A server on a RocksDB log in a temporary directory, run in-process so
/// the test appends events through `Log` directly.
struct Server {
    rt: tokio::runtime::Runtime,
    url: String,
    log: Arc<Log>,
    metrics: Arc<Metrics>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _dir: tempfile::TempDir,
}

fn start(bus: BusConfig) -> Server {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // No trust domain: the filters are tested across two.
    let log = Arc::new(Log::open_dir(dir.path(), LogConfig { origin: ORIGIN.into(), ..LogConfig::default() }, None).unwrap());
    let metrics = Arc::new(Metrics::new());
    let events = Arc::new(RevocationBus::new(Arc::clone(&log), bus, Arc::clone(&metrics)));
    let limits = Limits {
        max_entry_bytes: 65535,
        max_entry_request_bytes: 140_000,
        max_batch_entries: 100,
        max_batch_request_bytes: 1 << 20,
        body_timeout: Duration::from_secs(5),
    };
    let state = AppState {
        log: Arc::clone(&log),
        metrics: Arc::clone(&metrics),
        limits,
        admin: None,
        events: Arc::clone(&events),
        ssf: None,
        issuer: None,
        witnessing: None,
    };
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let limits = ServeLimits { header_timeout: Duration::from_secs(10), idle_timeout: Duration::from_secs(60), max_connections: 256 };
    let done = rt.spawn(serve(listener, app(state), limits, async move {
        let _ = stopped.await;
        events.close();
    }));
    Server { rt, url, log, metrics, stop: Some(stop), done: Some(done), _dir: dir }
}

fn revocation(agent: &AgentId, note: Option<String>) -> Revocation {
    Revocation {
        agent: agent.clone(),
        reason: RevocationReason::Quarantine,
        score: 0,
        threshold: 30,
        causes: vec![],
        policy_index: None,
        decision: None,
        note,
        tokens: Vec::new(),
    }
}

impl Server {
    /// Registers agents (one group commit or a few); none is an event.
    fn register(&self, ids: &[String]) -> Vec<AgentId> {
        let agents: Vec<AgentId> = ids.iter().map(|id| AgentId::parse(id).unwrap()).collect();
        let passports = agents.iter().map(|agent| {
            use sha2::Digest as _;
            let key = SigningKey::from_bytes(&sha2::Sha256::digest(agent.as_str().as_bytes()).into());
            Passport {
                agent: agent.clone(),
                public_key: key.verifying_key(),
                code_hash: [0xc0; 32],
                model_hash: None,
                owner: "o".into(),
                purpose: "p".into(),
                tpm_ak: None,
            }
        });
        let log = &self.log;
        for done in self.rt.block_on(futures_util::future::join_all(passports.map(|p| log.register(p)))) {
            done.unwrap();
        }
        agents
    }

    /// Revokes every agent at once (their revocations share group commits).
    fn revoke_all(&self, agents: &[AgentId], note: Option<&str>) {
        let revocations: Vec<Revocation> = agents.iter().map(|a| revocation(a, note.map(str::to_owned))).collect();
        let log = &self.log;
        for done in self.rt.block_on(futures_util::future::join_all(revocations.iter().map(|r| log.revoke(r)))) {
            done.unwrap();
        }
    }

    /// Reinstates every agent at once, each after a successful
    /// attestation (attestations are no events).
    fn reinstate_all(&self, agents: &[AgentId]) {
        let log = &self.log;
        let reinstated = agents.iter().map(|agent| async move {
            use sha2::Digest as _;
            let key = SigningKey::from_bytes(&sha2::Sha256::digest(agent.as_str().as_bytes()).into());
            ledger_core::conformance::attest_software(log, agent, &key).await?;
            log.reinstate(agent, None).await
        });
        for done in self.rt.block_on(futures_util::future::join_all(reinstated)) {
            done.unwrap();
        }
    }

    /// Appends the log's own entries: a risk-level change and a drift
    /// signal about `agent`.
    fn risk_and_drift(&self, agent: &AgentId) {
        let risk = RiskChange {
            agent: agent.clone(),
            previous: Level::Low,
            current: Level::Medium,
            score: 55,
            policy_index: None,
            decision: verifier::entry::Decision { as_of_index: 0, decided_at: 0 },
        };
        let mut evidence = serde_json::Map::new();
        evidence.insert("psi_milli".into(), 120.into());
        evidence.insert("first_index".into(), 0.into());
        evidence.insert("last_index".into(), 1.into());
        let drift = Signal {
            signer: Signer::Log,
            subject: Subject::Agent(agent.clone()),
            signal_type: SignalType::Drift,
            severity: Severity::Medium,
            assessment: None,
            evidence: Some(evidence),
            signature: None,
        };
        let entries =
            vec![NewEntry::from_log(&risk.to_object(), None, None).unwrap(), NewEntry::from_log(&drift.to_object(), None, None).unwrap()];
        self.rt.block_on(self.log.append(entries)).unwrap();
    }

    /// One round over `agents`: revocations, risk and drift about the
    /// first, reinstatements. Returns nothing: the log is the reference.
    fn churn(&self, agents: &[AgentId], rounds: usize) {
        for _ in 0..rounds {
            self.revoke_all(agents, None);
            self.risk_and_drift(&agents[0]);
            self.reinstate_all(agents);
        }
    }

    /// Every event in the log that `keep` selects, as (index, type, agent).
    fn expected(&self, keep: impl Fn(&str, &str) -> bool) -> Vec<(u64, String, String)> {
        let events = self.log.events(None, 1 << 20).unwrap();
        events
            .into_iter()
            .map(|e| (e.index, EventType::of_kind(e.kind).unwrap().as_str().to_owned(), e.agent))
            .filter(|(_, t, a)| keep(t, a))
            .collect()
    }

    /// Stops the server; returns once every connection has ended.
    fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(done) = self.done.take() {
            let ended = self.rt.block_on(async { tokio::time::timeout(WAIT, done).await });
            assert!(matches!(ended, Ok(Ok(Ok(())))), "the server did not stop: {ended:?}");
        }
    }
}

/// One SSE frame.
#[derive(Debug)]
enum Frame {
    /// An event: its `id`, `event` and parsed `data`.
    Event { id: u64, event: String, data: Value },
    /// A frame without data: a comment and maybe an `id`.
    Position { comment: String, id: Option<u64> },
}

/// A subscription read with the test's own SSE parser.
struct Sse {
    after: String,
    body: BufReader<ureq::BodyReader<'static>>,
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).timeout_per_read(Some(WAIT)).build().into()
}

/// `GET /v1/events/stream?query`, with `Last-Event-ID` if given: the
/// subscription, or the error's status, code and `Retry-After`.
fn subscribe(url: &str, query: &str, last_event_id: Option<&str>) -> Result<Sse, (u16, String, Option<String>)> {
    let mut request = agent().get(&format!("{url}/v1/events/stream?{query}"));
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    let mut response = request.call().unwrap();
    let status = response.status().as_u16();
    if status != 200 {
        let retry = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
        let body: Value = serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
        return Err((status, body["error"]["code"].as_str().unwrap().to_owned(), retry));
    }
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let after = response.headers()[verifier::wire::EVENTS_AFTER_HEADER].to_str().unwrap().to_owned();
    Ok(Sse { after, body: BufReader::new(response.into_body().into_reader()) })
}

impl Sse {
    /// The next frame; `None` when the stream ends.
    fn frame(&mut self) -> Option<Frame> {
        let (mut id, mut event, mut data, mut comment) = (None, None, None, String::new());
        loop {
            let mut line = String::new();
            if self.body.read_line(&mut line).ok()? == 0 {
                return None;
            }
            let line = line.strip_suffix('\n').expect("lines end with \\n");
            if line.is_empty() {
                return Some(match data {
                    Some(data) => Frame::Event { id: id.expect("events have an id"), event: event.expect("events have a type"), data },
                    None => Frame::Position { comment, id },
                });
            }
            let (field, value) = line.split_once(": ").unwrap_or((line, ""));
            match field {
                "" => comment = value.to_owned(),
                "id" => id = Some(value.parse().expect("ids are indices")),
                "event" => event = Some(value.to_owned()),
                "data" => {
                    assert!(data.is_none(), "one data line per event");
                    data = Some(serde_json::from_str(value).expect("data is JSON"));
                }
                other => panic!("unexpected field {other:?}"),
            }
        }
    }

    /// The next `n` events, checked against themselves: id, type and data
    /// agree.
    fn events(&mut self, n: usize) -> Vec<(u64, String, String, Value)> {
        let mut out = Vec::new();
        while out.len() < n {
            match self.frame().expect("the stream ended early") {
                Frame::Event { id, event, data } => {
                    assert_eq!((data["index"].as_u64(), data["type"].as_str()), (Some(id), Some(event.as_str())), "{data}");
                    let agent = data["agent"].as_str().unwrap_or_default().to_owned();
                    out.push((id, event, agent, data));
                }
                Frame::Position { .. } => {}
            }
        }
        out
    }
}

/// Checks that each received event is exactly the log's entry.
fn check_against_log(server: &Server, received: &[(u64, String, String, Value)]) {
    for (index, _, _, data) in received {
        let leaf = server.log.entry(*index).unwrap();
        let (decoded, entry) = verifier::entry::Leaf::decode(&leaf).unwrap();
        assert_eq!(data["entry"], entry, "event {index}");
        assert_eq!(data["integrated_time"].as_u64(), Some(decoded.integrated_time));
    }
}

fn ids(events: &[(u64, String, String, Value)]) -> Vec<(u64, String, String)> {
    events.iter().map(|(i, t, a, _)| (*i, t.clone(), a.clone())).collect()
}

fn agent_ids(domain: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("spiffe://{domain}/agent/a{i}")).collect()
}

#[test]
fn sse_resumes_after_last_event_id_losing_and_repeating_nothing() {
    // A ring of 8 events: the resumes below start behind it and are read
    // from the log, then carry on from the ring.
    let server = start(BusConfig { ring_events: 8, ..BusConfig::default() });
    let agents = server.register(&agent_ids("a.example", 3));
    server.churn(&agents, 5);
    let before = server.expected(|_, _| true);
    assert_eq!(before.len(), 5 * (3 + 2 + 3));

    // From the first entry: part of the events, then the connection drops.
    let mut first = subscribe(&server.url, "after=-1", None).unwrap();
    assert_eq!(first.after, "-1");
    let got = first.events(15);
    drop(first);
    check_against_log(&server, &got);
    let last = got.last().unwrap().0;

    // More events while nobody listens, then resume with Last-Event-ID
    // (which wins over the URL's `after`, as an EventSource sends both).
    server.churn(&agents, 5);
    let mut resumed = subscribe(&server.url, "after=-1", Some(&last.to_string())).unwrap();
    assert_eq!(resumed.after, last.to_string());
    match resumed.frame() {
        Some(Frame::Position { comment, id }) => assert_eq!((comment.as_str(), id), ("subscribed", Some(last))),
        other => panic!("the stream starts with its position, not {other:?}"),
    }
    let all = server.expected(|_, _| true);
    let rest = resumed.events(all.len() - got.len());
    check_against_log(&server, &rest);
    let mut seen = ids(&got);
    seen.extend(ids(&rest));
    assert_eq!(seen, all, "every event once, in order");

    // Then live: new events arrive on the same connection.
    server.churn(&agents, 1);
    let live = resumed.events(8);
    seen.extend(ids(&live));
    assert_eq!(seen, server.expected(|_, _| true));

    // `?after=N` resumes the same way as the header.
    let middle = all[20].0;
    let mut after = subscribe(&server.url, &format!("after={middle}"), None).unwrap();
    assert_eq!(ids(&after.events(3)), all[21..24].to_vec());
    assert!(server.metrics.events_from_log.get() > 0, "the resumes were read from the log");
}

#[test]
fn a_live_stream_starts_with_the_next_event_and_keeps_alive() {
    let server = start(BusConfig { keepalive: Duration::from_millis(200), ..BusConfig::default() });
    let agents = server.register(&agent_ids("a.example", 2));
    server.churn(&agents, 1);
    let size = server.log.head().size;
    let mut live = subscribe(&server.url, "", None).unwrap();
    assert_eq!(live.after, (size - 1).to_string());
    // Keep-alives name the position.
    match (live.frame(), live.frame()) {
        (Some(Frame::Position { comment: c1, id: i1 }), Some(Frame::Position { comment: c2, id: i2 })) => {
            assert_eq!((c1.as_str(), i1, c2.as_str(), i2), ("subscribed", Some(size - 1), "keep-alive", Some(size - 1)))
        }
        other => panic!("{other:?}"),
    }
    server.revoke_all(&agents[..1], None);
    let got = live.events(1);
    assert_eq!(ids(&got), vec![(size, "revocation".to_owned(), agents[0].as_str().to_owned())]);
    // A filtered stream's keep-alives move past what it skipped.
    let mut only_b = subscribe(&server.url, &format!("agent={}", agents[1].as_str()), None).unwrap();
    server.reinstate_all(&agents[..1]);
    server.risk_and_drift(&agents[0]);
    let head = server.log.head().size;
    let deadline = Instant::now() + WAIT;
    loop {
        match only_b.frame() {
            Some(Frame::Position { id: Some(id), .. }) if id == head - 1 => break,
            Some(Frame::Position { .. }) => assert!(Instant::now() < deadline, "the keep-alives never reached {}", head - 1),
            other => panic!("no event of agent b was appended: {other:?}"),
        }
    }
}

/// A WebSocket subscription; `Err` carries the refusal's status and code.
fn ws_subscribe(
    url: &str,
    query: &str,
    last_event_id: Option<&str>,
) -> Result<tungstenite::WebSocket<MaybeTlsStream<TcpStream>>, (u16, String)> {
    let mut request = format!("{}/v1/events/ws?{query}", url.replacen("http://", "ws://", 1)).into_client_request().unwrap();
    if let Some(id) = last_event_id {
        request.headers_mut().insert("last-event-id", id.parse().unwrap());
    }
    match tungstenite::connect(request) {
        Ok((mut ws, response)) => {
            assert!(response.headers().contains_key(verifier::wire::EVENTS_AFTER_HEADER));
            if let MaybeTlsStream::Plain(stream) = ws.get_mut() {
                stream.set_read_timeout(Some(WAIT)).unwrap();
            }
            Ok(ws)
        }
        Err(tungstenite::Error::Http(response)) => {
            let body: Value = serde_json::from_slice(response.body().as_deref().unwrap_or_default()).unwrap();
            Err((response.status().as_u16(), body["error"]["code"].as_str().unwrap().to_owned()))
        }
        Err(e) => panic!("websocket: {e}"),
    }
}

/// The next `n` events of a WebSocket subscription.
fn ws_events(ws: &mut tungstenite::WebSocket<MaybeTlsStream<TcpStream>>, n: usize) -> Vec<(u64, String, String, Value)> {
    let mut out = Vec::new();
    while out.len() < n {
        match ws.read().expect("the stream ended early") {
            Message::Text(text) => {
                let data: Value = serde_json::from_str(&text).unwrap();
                let agent = data["agent"].as_str().unwrap_or_default().to_owned();
                out.push((data["index"].as_u64().unwrap(), data["type"].as_str().unwrap().to_owned(), agent, data));
            }
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("unexpected message {other:?}"),
        }
    }
    out
}

#[test]
fn websocket_resumes_after_an_index_losing_and_repeating_nothing() {
    // A ring of a few KB (a few events): resumes read from the log.
    let server = start(BusConfig { ring_bytes: 4096, ..BusConfig::default() });
    let agents = server.register(&agent_ids("a.example", 3));
    server.churn(&agents, 4);
    let mut ws = ws_subscribe(&server.url, "after=-1", None).unwrap();
    let got = ws_events(&mut ws, 10);
    check_against_log(&server, &got);
    ws.close(None).unwrap();
    drop(ws);
    server.churn(&agents, 4);
    let last = got.last().unwrap().0;
    let all = server.expected(|_, _| true);
    // Resume by query, then by header.
    let mut resumed = ws_subscribe(&server.url, &format!("after={last}"), None).unwrap();
    let rest = ws_events(&mut resumed, 10);
    drop(resumed);
    let mut by_header = ws_subscribe(&server.url, "", Some(&rest.last().unwrap().0.to_string())).unwrap();
    let tail = ws_events(&mut by_header, all.len() - 20);
    check_against_log(&server, &tail);
    let mut seen = ids(&got);
    seen.extend(ids(&rest));
    seen.extend(ids(&tail));
    assert_eq!(seen, all, "every event once, in order");
    // Live on the same socket.
    server.churn(&agents, 1);
    assert_eq!(ids(&ws_events(&mut by_header, 8)), server.expected(|_, _| true)[all.len()..].to_vec());
}

/// Which events (type, agent) a filter keeps.
type Keep = dyn Fn(&str, &str) -> bool;

#[test]
fn filters_select_types_agents_and_trust_domains() {
    let server = start(BusConfig::default());
    let a = server.register(&agent_ids("a.example", 2));
    let b = server.register(&agent_ids("b.example", 2));
    server.churn(&a, 3);
    server.churn(&b, 3);
    let cases: Vec<(String, Box<Keep>)> = vec![
        ("types=revocation".into(), Box::new(|t, _| t == "revocation")),
        ("types=risk-level-change,signal".into(), Box::new(|t, _| t == "risk-level-change" || t == "signal")),
        (format!("agent={}", a[1].as_str()), Box::new(|_, ag| ag == "spiffe://a.example/agent/a1")),
        ("trust_domain=b.example".into(), Box::new(|_, ag| ag.starts_with("spiffe://b.example/"))),
        (
            "types=reinstatement&trust_domain=a.example".into(),
            Box::new(|t, ag| t == "reinstatement" && ag.starts_with("spiffe://a.example/")),
        ),
        (format!("agent={}&trust_domain=b.example", a[0].as_str()), Box::new(|_, _| false)),
    ];
    for (query, keep) in cases {
        let expected = server.expected(keep);
        let mut sse = subscribe(&server.url, &format!("after=-1&{query}"), None).unwrap();
        assert_eq!(ids(&sse.events(expected.len())), expected, "{query}");
        let mut ws = ws_subscribe(&server.url, &format!("after=-1&{query}"), None).unwrap();
        assert_eq!(ids(&ws_events(&mut ws, expected.len())), expected, "{query} over WebSocket");
    }
    // A new event of a filtered-out type or agent does not arrive; the
    // next one that passes does.
    let mut revocations_of_a0 = subscribe(&server.url, &format!("types=revocation&agent={}", a[0].as_str()), None).unwrap();
    server.revoke_all(&a[1..], None);
    server.risk_and_drift(&a[0]);
    server.revoke_all(&a[..1], None);
    let got = revocations_of_a0.events(1);
    assert_eq!((got[0].0, got[0].1.as_str()), (server.log.head().size - 1, "revocation"));
}

#[test]
fn bad_requests_are_refused_with_stable_codes() {
    let server = start(BusConfig { max_subscribers: 2, keepalive: Duration::from_millis(200), ..BusConfig::default() });
    let agents = server.register(&agent_ids("a.example", 1));
    server.churn(&agents, 1);
    let size = server.log.head().size;
    let (after_size, size_text) = (format!("after={size}"), size.to_string());
    for (query, header, status, code) in [
        ("types=revocation,", None, 400, "invalid_query"),
        ("types=Revocation", None, 400, "invalid_query"),
        ("types=", None, 400, "invalid_query"),
        ("agent=spiffe://a.example/workload/x", None, 400, "invalid_agent_id"),
        ("agent=a0", None, 400, "invalid_agent_id"),
        ("trust_domain=A.example", None, 400, "invalid_query"),
        ("after=-2", None, 400, "invalid_query"),
        ("after=1.5", None, 400, "invalid_query"),
        ("after=1&after=2", None, 400, "invalid_query"),
        ("since=3", None, 400, "invalid_query"),
        ("", Some("x"), 400, "invalid_query"),
        ("", Some("-1"), 400, "invalid_query"),
        (after_size.as_str(), None, 404, "index_beyond_tree"),
        ("", Some(size_text.as_str()), 404, "index_beyond_tree"),
    ] {
        let refused = subscribe(&server.url, query, header).err().unwrap_or_else(|| panic!("{query} {header:?} was accepted"));
        assert_eq!((refused.0, refused.1.as_str()), (status, code), "{query} {header:?}");
        assert_eq!(ws_subscribe(&server.url, query, header).err(), Some((status, code.to_owned())), "{query} {header:?} over WebSocket");
    }
    // The WebSocket route without an upgrade.
    let mut plain = agent().get(&format!("{}/v1/events/ws", server.url)).call().unwrap();
    let body: Value = serde_json::from_str(&plain.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!((plain.status().as_u16(), body["error"]["code"].as_str()), (426, Some("upgrade_required")));

    // Two subscribers at most, over both routes; the third waits for a place.
    let first = subscribe(&server.url, "", None).unwrap();
    let _second = ws_subscribe(&server.url, "", None).unwrap();
    let (status, code, retry) = subscribe(&server.url, "", None).err().unwrap();
    assert_eq!((status, code.as_str(), retry.as_deref()), (503, "too_many_subscribers", Some("1")));
    assert_eq!(ws_subscribe(&server.url, "", None).err(), Some((503, "too_many_subscribers".to_owned())));
    // A subscriber that goes away frees its place once the server notices
    // (its next keep-alive fails).
    drop(first);
    let deadline = Instant::now() + WAIT;
    while subscribe(&server.url, "", None).is_err() {
        assert!(Instant::now() < deadline, "the place of a closed subscriber was never freed");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(server.log.head().size, size, "no request changed the log");
}

#[test]
fn a_subscriber_that_reads_nothing_holds_up_no_append_and_gets_everything_after() {
    // A ring of 16: once the stalled subscriber's socket is full it falls
    // behind the ring and is served from the log when it reads again.
    let server = start(BusConfig { ring_events: 16, ..BusConfig::default() });
    let agents = server.register(&agent_ids("a.example", 50));
    let mut stalled = subscribe(&server.url, "", None).unwrap();
    let mut stalled_ws = ws_subscribe(&server.url, "", None).unwrap();
    // 20 rounds of 50 revocations and 50 reinstatements with 1 KB notes:
    // 2,000 events, about 3 MB of frames per subscriber, nobody reading.
    let note = "n".repeat(1000);
    for _ in 0..20 {
        server.revoke_all(&agents, Some(&note));
        server.reinstate_all(&agents);
    }
    let expected = server.expected(|_, _| true);
    assert_eq!(expected.len(), 2000);
    assert_eq!(ids(&stalled.events(expected.len())), expected, "the stalled SSE subscriber, once it reads");
    assert_eq!(ids(&ws_events(&mut stalled_ws, expected.len())), expected, "the stalled WebSocket subscriber, once it reads");
    // A ring of 16 against group commits of 50: whoever reads late reads
    // from the log.
    assert!(server.metrics.events_from_log.get() > 0, "the stalled subscribers were served from the log");
}

#[test]
fn shutdown_ends_every_stream() {
    let mut server = start(BusConfig::default());
    let agents = server.register(&agent_ids("a.example", 1));
    server.churn(&agents, 1);
    let mut sse = subscribe(&server.url, "after=-1", None).unwrap();
    assert_eq!(sse.events(2).len(), 2);
    let mut ws = ws_subscribe(&server.url, "", None).unwrap();
    server.stop();
    while let Some(frame) = sse.frame() {
        assert!(matches!(frame, Frame::Event { .. } | Frame::Position { .. }));
    }
    loop {
        match ws.read() {
            Ok(Message::Close(Some(frame))) => {
                assert_eq!(u16::from(frame.code), 1001);
                break;
            }
            Ok(Message::Ping(_) | Message::Pong(_)) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

/// A TCP proxy whose connections the test can cut, in both directions.
struct Proxy {
    url: String,
    cut: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream.strip_prefix("http://").unwrap().to_owned();
        let cut: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let sockets = Arc::clone(&cut);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = TcpStream::connect(&upstream) else { return };
                sockets.lock().unwrap().extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
                for (mut from, mut to) in [(client.try_clone().unwrap(), server.try_clone().unwrap()), (server, client)] {
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16 * 1024];
                        while let Ok(n) = from.read(&mut buf) {
                            if n == 0 || to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        Proxy { url, cut }
    }

    /// Cuts every connection open now.
    fn cut(&self) {
        for socket in self.cut.lock().unwrap().drain(..) {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }
}

#[test]
fn sdk_event_stream_resumes_across_a_cut_connection() {
    let server = start(BusConfig { ring_events: 8, ..BusConfig::default() });
    let agents = server.register(&agent_ids("a.example", 3));
    let others = server.register(&agent_ids("b.example", 1));
    server.churn(&agents, 3);
    server.churn(&others, 1);
    let proxy = Proxy::start(&server.url);
    // An agent's client subscribes (through the proxy) with the default
    // reconnection policy.
    let key = {
        use sha2::Digest as _;
        SigningKey::from_bytes(&sha2::Sha256::digest(agents[0].as_str().as_bytes()).into())
    };
    let client = ledger_client::Client::connect(&proxy.url, agents[0].as_str(), key).unwrap();
    let filter = SdkFilter::new().from_first().trust_domain("a.example").types([EventType::Revocation, EventType::Reinstatement]);
    let mut stream = client.events(filter).unwrap();
    let keep = |t: &str, a: &str| (t == "revocation" || t == "reinstatement") && a.starts_with("spiffe://a.example/");
    let mut seen = Vec::new();
    for _ in 0..10 {
        seen.push(stream.next().unwrap().unwrap());
    }
    assert_eq!(stream.resume_after(), Some(seen[9].index));
    // The stream blocks: read it on a thread, so that a lost event fails
    // the test instead of hanging it.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for event in stream {
            if tx.send(event).is_err() {
                return;
            }
        }
    });
    // Cut the connection, append meanwhile, twice.
    for _ in 0..2 {
        proxy.cut();
        server.churn(&agents, 2);
        server.churn(&others, 1);
        let expected = server.expected(keep);
        while seen.len() < expected.len() {
            seen.push(rx.recv_timeout(WAIT).expect("an event within the wait").unwrap());
        }
        let got: Vec<(u64, String, String)> =
            seen.iter().map(|e| (e.index, e.event_type.as_str().to_owned(), e.agent.clone().unwrap_or_default())).collect();
        assert_eq!(got, expected, "every event once, in order, across cut connections");
    }
    // The typed events carry their entries.
    let by_index: BTreeMap<u64, &ledger_client::Event> = seen.iter().map(|e| (e.index, e)).collect();
    let first = by_index.values().next().unwrap();
    assert_eq!(first.entry["kind"], "revocation");
    assert_eq!(first.entry["agent"].as_str(), first.agent.as_deref());
}

#[test]
fn sdk_event_stream_reports_refusals_and_starts_live() {
    let server = start(BusConfig::default());
    let agents = server.register(&agent_ids("a.example", 1));
    server.churn(&agents, 1);
    let refused = EventStream::connect(&server.url, SdkFilter::new().agent("spiffe://a.example/workload/x")).unwrap_err();
    assert_eq!(refused.error_code(), Some(ledger_client::ErrorCode::InvalidAgentId), "{refused}");
    let beyond = EventStream::connect(&server.url, SdkFilter::new().after(1_000_000)).unwrap_err();
    assert_eq!(beyond.error_code(), Some(ledger_client::ErrorCode::IndexBeyondTree), "{beyond}");
    // Live: the start is the head, known before any event arrives.
    let reconnect = Reconnect { attempts: 3, initial: Duration::from_millis(20), max: Duration::from_millis(100), idle: WAIT };
    let mut live = EventStream::connect_with(&server.url, SdkFilter::new(), reconnect).unwrap();
    let head = server.log.head().size;
    assert_eq!(live.resume_after(), Some(head - 1));
    server.revoke_all(&agents, None);
    let event = live.next().unwrap().unwrap();
    assert_eq!((event.index, event.event_type, event.agent.as_deref()), (head, EventType::Revocation, Some(agents[0].as_str())));
}
