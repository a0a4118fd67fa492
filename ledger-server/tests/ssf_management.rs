//! The OpenID SSF stream management API over real HTTP on 127.0.0.1: the
//! metadata, each operation, and every error path answered as SSF 1.0 §8
//! and RFC 6750 §3 say (bad or missing token, wrong scope, unknown or
//! another receiver's stream, malformed bodies), each leaving the streams
//! as they were.

#![allow(clippy::unwrap_used)]

mod ssf_support;

use ledger_server::ssf::SigningAlg;
use serde_json::{json, Value};
use ssf_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metadata_names_every_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(dir.path(), 0, SigningAlg::Rs256).await;
    let metadata = running.call("GET", "/.well-known/ssf-configuration", None, None).await;
    assert_eq!(metadata.status, 200);
    assert!(metadata.header("content-type").starts_with("application/json"));
    let url = |path: &str| format!("{}{path}", running.url);
    assert_eq!(
        metadata.body,
        json!({
            "spec_version": "1_0",
            "issuer": running.url,
            "jwks_uri": url("/ssf/jwks.json"),
            "delivery_methods_supported": ["urn:ietf:rfc:8935", "urn:ietf:rfc:8936"],
            "configuration_endpoint": url("/ssf/stream"),
            "status_endpoint": url("/ssf/status"),
            "add_subject_endpoint": url("/ssf/subjects/add"),
            "remove_subject_endpoint": url("/ssf/subjects/remove"),
            "verification_endpoint": url("/ssf/verify"),
            "authorization_schemes": [{"spec_urn": "urn:ietf:rfc:6750"}],
            "default_subjects": "ALL",
        })
    );
    let jwks = running.jwks().await;
    let key = &jwks["keys"][0];
    assert_eq!((key["kty"].as_str(), key["alg"].as_str(), key["use"].as_str()), (Some("RSA"), Some("RS256"), Some("sig")));
    assert!(key.get("d").is_none(), "no private member");
    assert_eq!(key["kid"], running.ssf.kid());
    running.stop().await;
}

/// The streams the admin sees.
async fn all_streams(running: &Running) -> Value {
    running.call("GET", "/ssf/stream", Some(ADMIN), None).await.body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stream_lifecycle() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(dir.path(), 0, SigningAlg::Es256).await;
    assert_eq!(running.call("GET", "/ssf/stream", Some(READER), None).await.body, json!([]), "no streams: an empty list");
    let created = running.create(RECEIVER, json!({"description": "first", "events_requested": [SESSION_REVOKED]})).await;
    let id = created["stream_id"].as_str().unwrap().to_owned();
    assert_eq!(created["iss"], running.url.as_str());
    assert_eq!(created["events_supported"].as_array().unwrap().len(), 6);
    let one = running.call("GET", &format!("/ssf/stream?stream_id={id}"), Some(READER), None).await;
    assert_eq!((one.status, &one.body), (200, &created));
    assert_eq!(one.header("cache-control"), "no-store");
    assert_eq!(running.call("GET", "/ssf/stream", Some(READER), None).await.body, json!([created]));

    // PATCH changes what it names; PUT replaces every receiver-supplied
    // member.
    let patched = running.call("PATCH", "/ssf/stream", Some(RECEIVER), Some(json!({"stream_id": id, "description": "second"}))).await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!((patched.body["description"].as_str(), &patched.body["events_requested"]), (Some("second"), &json!([SESSION_REVOKED])));
    let echoed =
        json!({"stream_id": id, "iss": running.url, "events_delivered": [SESSION_REVOKED], "delivery": {"method": "urn:ietf:rfc:8936"}});
    let replaced = running.call("PUT", "/ssf/stream", Some(RECEIVER), Some(echoed)).await;
    assert_eq!(replaced.status, 200, "{}", replaced.body);
    assert!(replaced.body.get("description").is_none() && replaced.body.get("events_requested").is_none());
    assert_eq!(replaced.body["events_delivered"].as_array().unwrap().len(), 6);

    // Status.
    let paused = running
        .call("POST", "/ssf/status", Some(RECEIVER), Some(json!({"stream_id": id, "status": "paused", "reason": "maintenance"})))
        .await;
    assert_eq!(paused.body, json!({"stream_id": id, "status": "paused", "reason": "maintenance"}));
    let read = running.call("GET", &format!("/ssf/status?stream_id={id}"), Some(READER), None).await;
    assert_eq!(read.body, paused.body);

    // Subjects: adding answers 200, removing 204; an agent that is not
    // registered is taken too (nothing is told about who exists).
    let subject = json!({"format": "uri", "uri": "spiffe://example.org/agent/nobody"});
    let add = running
        .call("POST", "/ssf/subjects/add", Some(RECEIVER), Some(json!({"stream_id": id, "subject": subject, "verified": true})))
        .await;
    assert_eq!(add.status, 200, "{}", add.body);
    let remove = running.call("POST", "/ssf/subjects/remove", Some(RECEIVER), Some(json!({"stream_id": id, "subject": subject}))).await;
    assert_eq!(remove.status, 204, "{}", remove.body);

    // A change the admin makes to a receiver's stream is the
    // transmitter's: a stream-updated SET tells the receiver.
    let enabled =
        running.call("POST", "/ssf/status", Some(ADMIN), Some(json!({"stream_id": id, "status": "enabled", "reason": "back"}))).await;
    assert_eq!(enabled.body["status"], "enabled");
    let polled = running.call("POST", &format!("/ssf/poll/{id}"), Some(RECEIVER), Some(json!({"returnImmediately": true}))).await;
    let sets: Vec<&Value> = polled.body["sets"].as_object().unwrap().values().collect();
    assert_eq!(sets.len(), 1, "{}", polled.body);
    let claims = verify_set(sets[0].as_str().unwrap(), &running.jwks().await);
    assert_eq!(event(&claims), (STREAM_UPDATED.to_owned(), json!({"status": "enabled", "reason": "back"})));
    assert_eq!(claims["sub_id"], json!({"format": "opaque", "id": id}));

    // The configuration survives a restart.
    let port = running.addr.port();
    let before = all_streams(&running).await;
    running.stop().await;
    let running = start(dir.path(), port, SigningAlg::Es256).await;
    assert_eq!(all_streams(&running).await, before);

    let deleted = running.call("DELETE", &format!("/ssf/stream?stream_id={id}"), Some(RECEIVER), None).await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    let gone = running.call("GET", &format!("/ssf/stream?stream_id={id}"), Some(RECEIVER), None).await;
    assert_eq!((gone.status, gone.code()), (404, "unknown_stream"));
    assert_eq!(all_streams(&running).await, json!([]));
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_error_is_answered_as_the_spec_says_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(dir.path(), 0, SigningAlg::EdDsa).await;
    let inbox = Inbox::default();
    let receiver = Receiver::start(0, &inbox).await;
    let mine = running.create(RECEIVER, json!({})).await;
    let id = mine["stream_id"].as_str().unwrap().to_owned();
    let pushed = running.create(RECEIVER, json!({"delivery": {"method": "urn:ietf:rfc:8935", "endpoint_url": receiver.endpoint()}})).await;
    let pushed_id = pushed["stream_id"].as_str().unwrap().to_owned();
    let before = all_streams(&running).await;
    let status = format!("/ssf/status?stream_id={id}");
    let poll = format!("/ssf/poll/{id}");

    // 401: no token, or one the transmitter does not know.
    for (token, challenge) in [
        (None, "Bearer realm=\"agent-ledger-ssf\""),
        (Some("unknown-token-0123456789"), "Bearer realm=\"agent-ledger-ssf\", error=\"invalid_token\""),
    ] {
        for (method, path, body) in [
            ("POST", "/ssf/stream", Some(json!({}))),
            ("GET", "/ssf/stream", None),
            ("GET", status.as_str(), None),
            ("POST", "/ssf/verify", Some(json!({"stream_id": id}))),
            ("POST", poll.as_str(), Some(json!({}))),
        ] {
            let answer = running.call(method, path, token, body).await;
            assert_eq!((answer.status, answer.code()), (401, "unauthorized"), "{method} {path}");
            assert_eq!(answer.header("www-authenticate"), challenge, "{method} {path}");
        }
    }

    // 403: a token without the scope.
    let insufficient = [
        (READER, "POST", "/ssf/stream", Some(json!({})), "ssf.manage"),
        (READER, "PATCH", "/ssf/stream", Some(json!({"stream_id": id})), "ssf.manage"),
        (READER, "DELETE", &*format!("/ssf/stream?stream_id={id}"), None, "ssf.manage"),
        (READER, "POST", "/ssf/status", Some(json!({"stream_id": id, "status": "paused"})), "ssf.manage"),
        (READER, "POST", "/ssf/verify", Some(json!({"stream_id": id})), "ssf.manage"),
        (READER, "POST", &*poll, Some(json!({})), "ssf.manage ssf.manage.poll"),
        (POLLER, "GET", "/ssf/stream", None, "ssf.read ssf.manage"),
        (POLLER, "POST", "/ssf/subjects/add", Some(json!({"stream_id": id})), "ssf.manage"),
    ];
    for (token, method, path, body, scope) in insufficient {
        let answer = running.call(method, path, Some(token), body).await;
        assert_eq!((answer.status, answer.code()), (403, "insufficient_scope"), "{method} {path}");
        let challenge = format!("Bearer realm=\"agent-ledger-ssf\", error=\"insufficient_scope\", scope=\"{scope}\"");
        assert_eq!(answer.header("www-authenticate"), challenge, "{method} {path}");
    }

    // 404: an unknown stream, or another receiver's (the same answer).
    for stream in ["f00d", id.as_str(), "not a stream id"] {
        let token = if stream == id { OTHER } else { RECEIVER };
        let q = stream.replace(' ', "%20");
        for (method, path, body) in [
            ("GET", format!("/ssf/stream?stream_id={q}"), None),
            ("PATCH", "/ssf/stream".into(), Some(json!({"stream_id": stream, "description": "x"}))),
            ("PUT", "/ssf/stream".into(), Some(json!({"stream_id": stream}))),
            ("DELETE", format!("/ssf/stream?stream_id={q}"), None),
            ("GET", format!("/ssf/status?stream_id={q}"), None),
            ("POST", "/ssf/status".into(), Some(json!({"stream_id": stream, "status": "paused"}))),
            (
                "POST",
                "/ssf/subjects/add".into(),
                Some(json!({"stream_id": stream, "subject": {"format": "uri", "uri": "spiffe://example.org/agent/a"}})),
            ),
            (
                "POST",
                "/ssf/subjects/remove".into(),
                Some(json!({"stream_id": stream, "subject": {"format": "uri", "uri": "spiffe://example.org/agent/a"}})),
            ),
            ("POST", "/ssf/verify".into(), Some(json!({"stream_id": stream}))),
            ("POST", format!("/ssf/poll/{q}"), Some(json!({}))),
        ] {
            let answer = running.call(method, &path, Some(token), body).await;
            assert_eq!((answer.status, answer.code()), (404, "unknown_stream"), "{method} {path} as {token}");
        }
    }
    assert_eq!(running.call("GET", "/ssf/stream", Some(OTHER), None).await.body, json!([]), "another receiver sees none of them");

    // 400: malformed bodies and members.
    let bad = [
        ("POST", "/ssf/stream", json!([]), "invalid_stream"),
        ("POST", "/ssf/stream", json!({"delivery": {"method": "urn:example:carrier-pigeon"}}), "invalid_stream"),
        ("POST", "/ssf/stream", json!({"delivery": {"method": "urn:ietf:rfc:8935"}}), "invalid_stream"),
        (
            "POST",
            "/ssf/stream",
            json!({"delivery": {"method": "urn:ietf:rfc:8935", "endpoint_url": "file:///etc/passwd"}}),
            "invalid_stream",
        ),
        ("POST", "/ssf/stream", json!({"events_requested": []}), "invalid_stream"),
        ("POST", "/ssf/stream", json!({"description": 3}), "invalid_stream"),
        ("PATCH", "/ssf/stream", json!({"description": "no stream_id"}), "invalid_stream"),
        ("PATCH", "/ssf/stream", json!({"stream_id": id, "iss": "https://someone-else.example"}), "invalid_stream"),
        ("PATCH", "/ssf/stream", json!({"stream_id": id, "aud": "https://someone-else.example"}), "invalid_stream"),
        ("PUT", "/ssf/stream", json!({"stream_id": id, "events_delivered": []}), "invalid_stream"),
        ("POST", "/ssf/status", json!({"stream_id": id, "status": "asleep"}), "invalid_stream_status"),
        ("POST", "/ssf/status", json!({"stream_id": id}), "invalid_stream_status"),
        ("POST", "/ssf/status", json!({"status": "paused"}), "invalid_stream"),
        (
            "POST",
            "/ssf/subjects/add",
            json!({"stream_id": id, "subject": {"format": "email", "email": "a@example.org"}}),
            "invalid_subject",
        ),
        (
            "POST",
            "/ssf/subjects/add",
            json!({"stream_id": id, "subject": {"format": "uri", "uri": "spiffe://elsewhere.example/agent/a"}}),
            "invalid_subject",
        ),
        (
            "POST",
            "/ssf/subjects/add",
            json!({"stream_id": id, "subject": {"format": "uri", "uri": "spiffe://example.org/agent/a"}, "verified": "yes"}),
            "invalid_subject",
        ),
        ("POST", "/ssf/subjects/remove", json!({"stream_id": id}), "invalid_subject"),
        ("POST", "/ssf/verify", json!({"stream_id": id, "state": 7}), "invalid_stream"),
        ("POST", &*poll, json!({"maxEvents": "ten"}), "invalid_poll"),
        ("POST", &*poll, json!({"ack": "all"}), "invalid_poll"),
        ("POST", &*format!("/ssf/poll/{pushed_id}"), json!({}), "invalid_poll"),
    ];
    for (method, path, body, code) in bad {
        let answer = running.call(method, path, Some(RECEIVER), Some(body.clone())).await;
        assert_eq!((answer.status, answer.code()), (400, code), "{method} {path} {body}");
    }
    let not_json = running.call_raw("POST", "/ssf/stream", Some(RECEIVER), "{\"delivery\":", "application/json").await;
    assert_eq!((not_json.status, not_json.code()), (400, "invalid_json"));
    let duplicate = running
        .call_raw("POST", "/ssf/verify", Some(RECEIVER), &format!("{{\"stream_id\":\"{id}\",\"stream_id\":\"x\"}}"), "application/json")
        .await;
    assert_eq!((duplicate.status, duplicate.code()), (400, "invalid_json"));
    let text = running.call_raw("POST", "/ssf/stream", Some(RECEIVER), "{}", "text/plain").await;
    assert_eq!((text.status, text.code()), (415, "unsupported_media_type"));
    for path in ["/ssf/stream", "/ssf/status"] {
        let method = if path == "/ssf/stream" { "DELETE" } else { "GET" };
        let answer = running.call(method, path, Some(RECEIVER), None).await;
        assert_eq!((answer.status, answer.code()), (400, "invalid_stream"), "{method} {path} without stream_id");
    }
    let huge = running.call("POST", "/ssf/stream", Some(RECEIVER), Some(json!({"description": "x".repeat(20_000)}))).await;
    assert_eq!((huge.status, huge.code()), (413, "payload_too_large"));
    assert_eq!(all_streams(&running).await, before, "no refused request changed a stream");

    // 409: a receiver's streams are bounded.
    for _ in 0..ledger_server::ssf::MAX_STREAMS_PER_RECEIVER {
        running.create(OTHER, json!({})).await;
    }
    let full = running.call("POST", "/ssf/stream", Some(OTHER), Some(json!({}))).await;
    assert_eq!((full.status, full.code()), (409, "too_many_streams"));
    assert_eq!(running.call("GET", "/ssf/stream", Some(OTHER), None).await.body.as_array().unwrap().len(), 16);

    // 429: verification requests beyond what may wait (the push stream's
    // receiver is down, so they wait).
    receiver.stop().await;
    let mut codes = Vec::new();
    for _ in 0..=ledger_server::ssf::MAX_MANAGEMENT_SETS + 1 {
        let answer = running.call("POST", "/ssf/verify", Some(RECEIVER), Some(json!({"stream_id": pushed_id}))).await;
        codes.push(answer.status);
    }
    assert_eq!(codes.iter().filter(|s| **s == 204).count(), ledger_server::ssf::MAX_MANAGEMENT_SETS);
    assert!(codes.ends_with(&[429]), "{codes:?}");
    running.stop().await;
}
