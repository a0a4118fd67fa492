//! The OpenID SSF transmitter delivering, over real HTTP on 127.0.0.1 and
//! RocksDB: pushed SETs verify with the keys from `jwks_uri` by an
//! implementation other than the one that signed them (RS256, ES256,
//! EdDSA); a receiver that is down, with a transmitter restart meanwhile,
//! still gets every event afterwards, in order; a receiver's 400 is kept
//! and that SET is not sent again; subjects and verification; polling
//! with acknowledgements, `setErrs` and a long poll.

#![allow(clippy::unwrap_used)]

mod ssf_support;

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use ledger_server::ssf::SigningAlg;
use serde_json::{json, Value};
use ssf_support::*;
use verifier::entry::Level;

/// Checks the claims every SET of stream `stream` from `running` has.
fn check_claims(claims: &Value, running: &Running, stream: &Value) {
    assert_eq!(claims["iss"], running.url.as_str());
    assert_eq!(claims["iss"], stream["iss"]);
    assert_eq!(claims["aud"], stream["aud"]);
    assert!(claims["iat"].is_u64());
    assert!(claims["jti"].as_str().unwrap().starts_with(stream["stream_id"].as_str().unwrap()));
    assert!(claims.get("sub").is_none() && claims.get("exp").is_none(), "SSF SETs carry neither sub nor exp");
}

/// `(txn, event type, subject)` of an entry's SET, checked.
fn entry_set(set: &str, jwks: &Value, running: &Running, stream: &Value) -> (u64, String, String) {
    let claims = verify_set(set, jwks);
    check_claims(&claims, running, stream);
    let (uri, event) = event(&claims);
    assert!(event["event_timestamp"].is_u64(), "{event}");
    assert_eq!(claims["sub_id"]["format"], "uri");
    let txn: u64 = claims["txn"].as_str().unwrap().parse().unwrap();
    assert_eq!(claims["jti"], format!("{}.{txn}-{}", stream["stream_id"].as_str().unwrap(), if uri == ACCOUNT_DISABLED { 1 } else { 0 }));
    (txn, uri, claims["sub_id"]["uri"].as_str().unwrap().to_owned())
}

async fn push_round_trip(alg: SigningAlg) {
    let dir = tempfile::tempdir().unwrap();
    let running = start(dir.path(), 0, alg).await;
    let inbox = Inbox::default();
    let receiver = Receiver::start(0, &inbox).await;
    let jwks = running.jwks().await;
    assert_eq!(jwks["keys"][0]["alg"], ledger_server::ssf::SigningAlg::name(alg));

    let stream = running
        .create(
            RECEIVER,
            json!({"delivery": {"method": "urn:ietf:rfc:8935", "endpoint_url": receiver.endpoint(), "authorization_header": "Bearer rx-secret"},
                   "description": "push test"}),
        )
        .await;
    assert_eq!(stream["aud"], AUDIENCE);
    assert_eq!(
        stream["delivery"],
        json!({"method": "urn:ietf:rfc:8935", "endpoint_url": receiver.endpoint()}),
        "the credential is write-only"
    );
    let (a, b) = (running.register("a").await, running.register("b").await);
    let revoked = running.revoke(&a, "leaked key").await;
    let reinstated = running.reinstate(&a).await;
    let risk = running.risk(&b, Level::Low, Level::High).await;
    let sets = inbox.wait_for(4).await;
    let got: Vec<(u64, String, String)> = sets.iter().map(|s| entry_set(s, &jwks, &running, &stream)).collect();
    let (a, b) = (a.as_str().to_owned(), b.as_str().to_owned());
    assert_eq!(
        got,
        [
            (revoked, SESSION_REVOKED.to_owned(), a.clone()),
            (revoked, ACCOUNT_DISABLED.to_owned(), a.clone()),
            (reinstated, ACCOUNT_ENABLED.to_owned(), a.clone()),
            (risk, RISK_LEVEL_CHANGE.to_owned(), b.clone()),
        ]
    );
    let (_, disabled) = event(&verify_set(&sets[1], &jwks));
    assert_eq!(disabled["reason_admin"]["en"], "quarantined by an administrator: leaked key");
    let (_, change) = event(&verify_set(&sets[3], &jwks));
    assert_eq!((change["current_level"].as_str(), change["previous_level"].as_str()), (Some("HIGH"), Some("LOW")));
    assert_eq!(change["principal"], "NHI");
    assert!(inbox.authorizations.lock().unwrap().iter().all(|h| h == "Bearer rx-secret"));

    // A verification SET, with the receiver's state, about the stream.
    let id = stream["stream_id"].as_str().unwrap();
    let verify = running.call("POST", "/ssf/verify", Some(RECEIVER), Some(json!({"stream_id": id, "state": "s-123"}))).await;
    assert_eq!(verify.status, 204, "{}", verify.body);
    let sets = inbox.wait_for(5).await;
    let claims = verify_set(&sets[4], &jwks);
    check_claims(&claims, &running, &stream);
    assert_eq!(claims["sub_id"], json!({"format": "opaque", "id": id}));
    assert_eq!(event(&claims), (VERIFICATION.to_owned(), json!({"state": "s-123"})));

    // Subjects: removing b stops its events; a's still come.
    let removed = running
        .call("POST", "/ssf/subjects/remove", Some(RECEIVER), Some(json!({"stream_id": id, "subject": {"format": "uri", "uri": b}})))
        .await;
    assert_eq!(removed.status, 204, "{}", removed.body);
    running.risk(&verifier::AgentId::parse(&b).unwrap(), Level::High, Level::Medium).await;
    let again = running.revoke(&verifier::AgentId::parse(&a).unwrap(), "again").await;
    let sets = inbox.wait_for(7).await;
    let tail: Vec<(u64, String, String)> = sets[5..].iter().map(|s| entry_set(s, &jwks, &running, &stream)).collect();
    assert_eq!(tail, [(again, SESSION_REVOKED.to_owned(), a.clone()), (again, ACCOUNT_DISABLED.to_owned(), a.clone())]);

    receiver.stop().await;
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pushed_sets_verify_independently_rs256() {
    push_round_trip(SigningAlg::Rs256).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pushed_sets_verify_independently_es256() {
    push_round_trip(SigningAlg::Es256).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pushed_sets_verify_independently_eddsa() {
    push_round_trip(SigningAlg::EdDsa).await;
}

/// Keeps the first SET of each `jti`, in arrival order: a SET may come
/// twice after a restart, always with its `jti`.
fn distinct(sets: &[String], jwks: &Value) -> Vec<(String, Value)> {
    let mut seen = HashSet::new();
    sets.iter()
        .map(|s| verify_set(s, jwks))
        .filter(|c| seen.insert(c["jti"].as_str().unwrap().to_owned()))
        .map(|c| (c["jti"].as_str().unwrap().to_owned(), c))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_receiver_that_was_down_gets_every_event_in_order_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(dir.path(), 0, SigningAlg::Rs256).await;
    let port = running.addr.port();
    let inbox = Inbox::default();
    let receiver = Receiver::start(0, &inbox).await;
    let receiver_port = receiver.addr.port();
    let stream = running.create(RECEIVER, json!({"delivery": {"method": "urn:ietf:rfc:8935", "endpoint_url": receiver.endpoint()}})).await;
    let id = stream["stream_id"].as_str().unwrap().to_owned();
    let mut agents = Vec::new();
    for i in 0..6 {
        agents.push(running.register(&format!("r{i}")).await);
    }
    let first = running.revoke(&agents[0], "first").await;
    inbox.wait_for(2).await;

    // The receiver goes down; events keep coming, and pushes fail.
    receiver.stop().await;
    let mut expected = Vec::new();
    for agent in &agents[1..3] {
        expected.push(running.revoke(agent, "while down").await);
    }
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let status = running.call("GET", &format!("/ssf/status?stream_id={id}"), Some(READER), None).await;
        if status.body["last_error"]["err"] == "connection_failed" {
            assert_eq!(status.body["last_error"]["dropped"], false, "a failed push is retried");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no failed push recorded: {}", status.body);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    // The transmitter restarts while the receiver is down.
    running.stop().await;
    let running = start(dir.path(), port, SigningAlg::Rs256).await;
    let jwks = running.jwks().await;
    for agent in &agents[3..] {
        expected.push(running.revoke(agent, "after the restart").await);
    }

    // Back up on its address: everything since the first event arrives,
    // in index order, nothing missing.
    let receiver = Receiver::start(receiver_port, &inbox).await;
    let wanted = 2 + expected.len() * 2;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let got = loop {
        let got = distinct(&inbox.taken(), &jwks);
        if got.len() >= wanted {
            break got;
        }
        assert!(tokio::time::Instant::now() < deadline, "{} distinct SETs of {wanted}", got.len());
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let jtis: Vec<String> = got.iter().map(|(jti, _)| jti.clone()).collect();
    let want: Vec<String> =
        std::iter::once(first).chain(expected.iter().copied()).flat_map(|i| [format!("{id}.{i}-0"), format!("{id}.{i}-1")]).collect();
    assert_eq!(jtis, want);
    let txns: Vec<u64> = got.iter().map(|(_, c)| c["txn"].as_str().unwrap().parse().unwrap()).collect();
    assert!(txns.windows(2).all(|w| w[0] <= w[1]), "in index order: {txns:?}");

    // A receiver's 400 is kept as the stream's last error, and that SET is
    // not sent again: the next one follows.
    let back = running.reinstate(&agents[0]).await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !distinct(&inbox.taken(), &jwks).iter().any(|(jti, _)| *jti == format!("{id}.{back}-0")) {
        assert!(tokio::time::Instant::now() < deadline, "the reinstatement did not arrive");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    inbox.refuse_next.store(true, Ordering::SeqCst);
    let refused = running.revoke(&agents[0], "refused").await;
    let after = running.reinstate(&agents[0]).await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let got = distinct(&inbox.taken(), &jwks);
        if got.iter().any(|(jti, _)| *jti == format!("{id}.{after}-0")) {
            assert!(got.iter().any(|(jti, _)| *jti == format!("{id}.{refused}-1")), "the SET after the refused one went");
            assert!(!got.iter().any(|(jti, _)| *jti == format!("{id}.{refused}-0")), "the refused SET is not sent again");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the events after a refused SET did not arrive");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let status = running.call("GET", &format!("/ssf/status?stream_id={id}"), Some(READER), None).await;
    assert_eq!(status.body["status"], "enabled");
    assert_eq!(
        status.body["last_error"],
        json!({"jti": format!("{id}.{refused}-0"), "err": "invalid_key", "description": "the receiver refuses this SET",
               "at": status.body["last_error"]["at"], "dropped": true})
    );
    receiver.stop().await;
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn polling_with_acknowledgements_errors_and_a_long_poll() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(dir.path(), 0, SigningAlg::Rs256).await;
    let jwks = running.jwks().await;
    // No delivery member: the receiver polls (SSF §8.1.1.1).
    let stream = running.create(RECEIVER, json!({"events_requested": [SESSION_REVOKED, ACCOUNT_DISABLED, "urn:example:unknown"]})).await;
    let id = stream["stream_id"].as_str().unwrap().to_owned();
    assert_eq!(stream["delivery"], json!({"method": "urn:ietf:rfc:8936", "endpoint_url": format!("{}/ssf/poll/{id}", running.url)}));
    assert_eq!(stream["events_delivered"], json!([SESSION_REVOKED, ACCOUNT_DISABLED]));
    let poll = format!("/ssf/poll/{id}");
    let mut agents = Vec::new();
    for i in 0..3 {
        agents.push(running.register(&format!("p{i}")).await);
    }
    let mut indices = Vec::new();
    for agent in &agents {
        indices.push(running.revoke(agent, "polled").await);
    }
    // Reinstatements are not requested: never delivered.
    running.reinstate(&agents[0]).await;
    let jti = |i: usize, ordinal: u8| format!("{id}.{}-{ordinal}", indices[i]);

    // The poll-only token of the same receiver polls.
    let first = running.call("POST", &poll, Some(POLLER), Some(json!({"maxEvents": 4, "returnImmediately": true}))).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let sets = first.body["sets"].as_object().unwrap();
    let mut keys: Vec<&String> = sets.keys().collect();
    keys.sort();
    assert_eq!(keys, [&jti(0, 0), &jti(0, 1), &jti(1, 0), &jti(1, 1)]);
    assert_eq!(first.body["moreAvailable"], true);
    for (key, set) in sets {
        let claims = verify_set(set.as_str().unwrap(), &jwks);
        check_claims(&claims, &running, &stream);
        assert_eq!(&claims["jti"], key);
    }

    // Not acknowledged: returned again.
    let again = running.call("POST", &poll, Some(POLLER), Some(json!({"maxEvents": 4, "returnImmediately": true}))).await;
    assert_eq!(again.body["sets"].as_object().unwrap().len(), 4);

    // Three acknowledged, one reported in error: the rest comes.
    let acked = json!({
        "maxEvents": 10, "returnImmediately": true,
        "ack": [jti(0, 0), jti(0, 1), jti(1, 1), "someone-else.1-0"],
        "setErrs": {jti(1, 0): {"err": "invalid_issuer", "description": "not ours"}},
    });
    let rest = running.call("POST", &poll, Some(RECEIVER), Some(acked)).await;
    let mut keys: Vec<String> = rest.body["sets"].as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(keys, [jti(2, 0), jti(2, 1)]);
    assert_eq!(rest.body["moreAvailable"], false);
    let status = running.call("GET", &format!("/ssf/status?stream_id={id}"), Some(READER), None).await;
    assert_eq!(
        (&status.body["last_error"]["jti"], &status.body["last_error"]["err"], &status.body["last_error"]["dropped"]),
        (&json!(jti(1, 0)), &json!("invalid_issuer"), &json!(true))
    );

    // Everything acknowledged: nothing left, right away.
    let done = json!({"returnImmediately": true, "ack": [jti(2, 0), jti(2, 1)]});
    let empty = running.call("POST", &poll, Some(RECEIVER), Some(done)).await;
    assert_eq!(empty.body, json!({"sets": {}, "moreAvailable": false}));

    // A long poll waits for the next event.
    let url = running.url.clone();
    let waiting = tokio::spawn(async move {
        call(
            "POST",
            &format!("{url}/ssf/poll/{}", stream["stream_id"].as_str().unwrap()),
            Some(RECEIVER),
            Some("{}".into()),
            "application/json",
        )
        .await
    });
    let later = running.revoke(&agents[0], "while polling").await;
    // The poll answers with the new event, or, if it timed out first, the
    // next one does.
    let mut answer = waiting.await.unwrap();
    if answer.body["sets"].as_object().unwrap().is_empty() {
        answer = running.call("POST", &poll, Some(RECEIVER), Some(json!({}))).await;
    }
    let keys: HashSet<String> = answer.body["sets"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, HashSet::from([format!("{id}.{later}-0"), format!("{id}.{later}-1")]));

    // Across a restart the cursor stays: acknowledged SETs never return.
    let port = running.addr.port();
    running.stop().await;
    let running = start(dir.path(), port, SigningAlg::Rs256).await;
    let after = running.call("POST", &poll, Some(RECEIVER), Some(json!({"returnImmediately": true}))).await;
    let keys: HashSet<String> = after.body["sets"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, HashSet::from([format!("{id}.{later}-0"), format!("{id}.{later}-1")]), "only what was never acknowledged");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paused_stream_holds_its_events_and_a_disabled_one_drops_them() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(dir.path(), 0, SigningAlg::EdDsa).await;
    let stream = running.create(RECEIVER, json!({})).await;
    let id = stream["stream_id"].as_str().unwrap().to_owned();
    let poll = format!("/ssf/poll/{id}");
    let set_status = |status: &'static str| {
        let id = id.clone();
        let running = &running;
        async move {
            let answer = running.call("POST", "/ssf/status", Some(RECEIVER), Some(json!({"stream_id": id, "status": status}))).await;
            assert_eq!((answer.status, answer.body["status"].as_str()), (200, Some(status)), "{}", answer.body);
        }
    };
    let polled = |body: Value| {
        let poll = poll.clone();
        let running = &running;
        async move {
            let answer = running.call("POST", &poll, Some(RECEIVER), Some(body)).await;
            assert_eq!(answer.status, 200, "{}", answer.body);
            let mut jtis: Vec<String> = answer.body["sets"].as_object().unwrap().keys().cloned().collect();
            jtis.sort();
            jtis
        }
    };
    let (a, b) = (running.register("held").await, running.register("dropped").await);

    // Paused: nothing is transmitted, and everything is once enabled.
    set_status("paused").await;
    let held = running.revoke(&a, "while paused").await;
    assert!(polled(json!({"returnImmediately": true})).await.is_empty());
    set_status("enabled").await;
    let jtis = polled(json!({"returnImmediately": true})).await;
    assert_eq!(jtis, [format!("{id}.{held}-0"), format!("{id}.{held}-1")]);

    // Disabled: what is appended meanwhile is never sent.
    set_status("disabled").await;
    running.revoke(&b, "while disabled").await;
    set_status("enabled").await;
    let after = running.reinstate(&a).await;
    let jtis = polled(json!({"returnImmediately": true, "ack": jtis})).await;
    assert_eq!(jtis, [format!("{id}.{after}-0")]);
    running.stop().await;
}
