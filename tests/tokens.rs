//! Action tokens end to end, against the real `ledger-server` and the
//! example resource server `guarded-db` (SQLite): issuance on the live
//! score (at the class minimum, refused one point below), the guarded
//! statement running once, refused for another statement, another
//! audience, after expiry and after a revocation by a threat-intel
//! signal; escalations (approve, deny, expiry, two concurrent approvals);
//! peer statements checked offline.

// In tests a failed unwrap is the failure report.
#![allow(clippy::unwrap_used)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ledger_client::{Client, ClientError, ErrorCode, Measurements, SoftwareAttester, TokenGrant};
use ledger_e2e::{bin_path, free_port, Agent, Server};
use serde_json::{json, Value};

const DB: &str = "sqlite://guarded/main";

/// The default policy with token classes: `db.update` on the guarded
/// database needs a fresh attestation and `high_min`; payments need a
/// human.
fn policy_text(high_min: u8) -> String {
    let toml = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/policy.example.toml")).unwrap();
    format!(
        r#"{toml}
[tokens.default]
min_score = 40
max_lifetime_s = 10
fresh_attestation_s = 0
human_approval = false
single_use = true

[tokens.classes.high]
min_score = {high_min}
max_lifetime_s = 10
fresh_attestation_s = 300
human_approval = false
single_use = true

[tokens.classes.critical]
min_score = 40
max_lifetime_s = 30
fresh_attestation_s = 0
human_approval = true
single_use = true

[[tokens.rules]]
action = "db.update"
resource = "sqlite://guarded/*"
class = "high"

[[tokens.rules]]
action = "payments.*"
resource = "*"
class = "critical"
"#
    )
}

fn write_policy(dir: &std::path::Path, high_min: u8) -> String {
    let path = dir.join("policy.toml");
    std::fs::write(&path, policy_text(high_min)).unwrap();
    path.to_str().unwrap().to_owned()
}

fn put_policy(server: &Server, high_min: u8) {
    let resp = ureq::put(&format!("{}/v1/policy", server.url))
        .header("content-type", "application/toml")
        .header("authorization", &format!("Bearer {}", server.admin_token()))
        .send(policy_text(high_min))
        .unwrap();
    assert!(resp.status().is_success());
}

fn client(server: &Server, agent: &Agent) -> Client {
    Client::connect(&server.url, &agent.id, agent.key.clone())
        .unwrap()
        .with_attester(Box::new(SoftwareAttester), Measurements::new([0xc0; 32], None, "sha256:t"))
}

fn token(grant: TokenGrant) -> String {
    match grant {
        TokenGrant::Token(t) => t.token,
        TokenGrant::Escalated(e) => panic!("escalated: {e:?}"),
    }
}

fn code(e: &ClientError) -> String {
    match e {
        ClientError::Api { code, .. } => code.clone(),
        other => panic!("not an API error: {other}"),
    }
}

fn admin(server: &Server, method: &str, path: &str, body: &str) -> (u16, Value) {
    let req = ureq::http::Request::builder()
        .method(method)
        .uri(format!("{}{path}", server.url))
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {}", server.admin_token()))
        .body(body.to_owned())
        .unwrap();
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut resp = agent.run(req).unwrap();
    let status = resp.status().as_u16();
    (status, serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap_or(Value::Null))
}

/// The example resource server, killed when dropped.
struct Guarded {
    child: Child,
    url: String,
}

impl Guarded {
    fn start(ledger: &str, dir: &std::path::Path) -> Guarded {
        let port = free_port();
        let log = std::fs::File::create(dir.join("guarded-db.log")).unwrap();
        let child = Command::new(bin_path("guarded-db"))
            .args(["--ledger", ledger, "--audience", DB, "--listen", &format!("127.0.0.1:{port}"), "--leeway-ms", "200"])
            .arg("--db")
            .arg(dir.join("guarded.db"))
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("starting guarded-db");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while ureq::get(&format!("{url}/healthz")).call().is_err() {
            assert!(Instant::now() < deadline, "guarded-db did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
        Guarded { child, url }
    }

    /// Runs `sql` with `token`: the status and the body.
    fn run(&self, token: &str, sql: &str) -> (u16, Value) {
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        let mut resp = agent
            .post(&format!("{}/sql", self.url))
            .header("content-type", "application/json")
            .send(json!({"token": token, "sql": sql}).to_string())
            .unwrap();
        let status = resp.status().as_u16();
        (status, serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap())
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_token_runs_one_statement_once_and_dies_with_expiry_and_revocation() {
    let dir = tempfile::tempdir().unwrap();
    let policy = write_policy(dir.path(), 60);
    let server = Server::start_with(&dir.path().join("data"), &["--policy", &policy]);
    let agent = Agent::new("db-writer");
    server.register(&agent);
    let c = client(&server, &agent);
    let update = "UPDATE accounts SET balance = balance - 10 WHERE id = 1";

    // The class of db.update needs a fresh attestation first.
    let err = c.request_token("db.update", DB, json!({"sql": update}), None).unwrap_err();
    assert_eq!(code(&err), "attestation_required", "{err}");
    c.attest().unwrap();
    let score = c.trust(c.agent()).unwrap().score;

    // One point below the class minimum: refused, with what would help.
    put_policy(&server, score + 1);
    let err = c.request_token("db.update", DB, json!({"sql": update}), None).unwrap_err();
    assert_eq!(err.error_code(), Some(ErrorCode::ScoreTooLow), "{err}");
    // At the minimum: issued.
    put_policy(&server, score);

    let guarded = Guarded::start(&server.url, dir.path());
    let create = "CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL)";
    let t = token(c.request_token("db.create", DB, json!({"sql": create}), None).unwrap());
    assert_eq!(guarded.run(&t, create).0, 200);
    let insert = "INSERT INTO accounts (id, balance) VALUES (1, 100), (2, 50)";
    let t = token(c.request_token("db.insert", DB, json!({"sql": insert}), None).unwrap());
    assert_eq!(guarded.run(&t, insert).0, 200);

    // The 10-second token for one UPDATE runs it, once.
    let grant = c.request_token("db.update", DB, json!({"sql": update}), None).unwrap();
    let TokenGrant::Token(issued) = grant else { panic!("escalated") };
    assert_eq!((issued.class.as_str(), issued.single_use, issued.score), ("high", true, score));
    assert_eq!(issued.expires - issued.not_before, 10_000);
    assert_eq!(guarded.run(&issued.token, update), (200, json!({"rows": 1})));
    let (status, body) = guarded.run(&issued.token, update);
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("token_replayed")), "{body}");

    // Another statement with a token for this one: refused, nothing runs.
    let t = token(c.request_token("db.update", DB, json!({"sql": update}), None).unwrap());
    let other = "UPDATE accounts SET balance = 0 WHERE id = 2";
    let (status, body) = guarded.run(&t, other);
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("token_sql_mismatch")), "{body}");
    // Another resource's token: refused.
    let elsewhere = token(c.request_token("db.update", "sqlite://other/main", json!({"sql": update}), None).unwrap());
    assert_eq!(guarded.run(&elsewhere, update).1["error"]["code"], "token_wrong_audience");
    // After expiry (1 s, plus the 200 ms leeway): refused.
    let short = token(c.request_token("db.update", DB, json!({"sql": update}), Some(1)).unwrap());
    std::thread::sleep(Duration::from_millis(1_400));
    assert_eq!(guarded.run(&short, update).1["error"]["code"], "token_expired");
    // A lifetime above the class's is refused.
    assert_eq!(code(&c.request_token("db.update", DB, json!({"sql": update}), Some(11)).unwrap_err()), "invalid_token_request");

    // The log's own check agrees, and takes single-use tokens once.
    let t = token(c.request_token("db.update", DB, json!({"sql": update}), None).unwrap());
    let check = |sql: &str| {
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        let mut resp = agent
            .post(&format!("{}/v1/tokens/verify", server.url))
            .header("content-type", "application/json")
            .send(json!({"token": t, "audience": DB, "action": "db.update", "sql": sql}).to_string())
            .unwrap();
        let status = resp.status().as_u16();
        (status, serde_json::from_str::<Value>(&resp.body_mut().read_to_string().unwrap()).unwrap())
    };
    assert_eq!(check(other).1["error"]["code"], "token_sql_mismatch");
    assert_eq!(check(update).0, 200);
    assert_eq!(check(update).1["error"]["code"], "token_replayed");

    // A live token, then a critical threat-intel signal on the agent's code
    // hash: the score falls below the threshold, the revocation lists the
    // token, and the guarded database refuses it as soon as it reads it.
    let live = token(c.request_token("db.update", DB, json!({"sql": update}), None).unwrap());
    let feed_key = ed25519_dalek::SigningKey::from_bytes(&[91; 32]);
    let threat = verifier::entry::SignalType::ThreatIntel;
    ledger_client::SignalSource::register(&server.url, &server.admin_token(), "intel", &feed_key.verifying_key(), &[threat]).unwrap();
    let feed = ledger_client::SignalSource::connect(&server.url, "intel", feed_key).unwrap();
    let filed = Instant::now();
    feed.signal(verifier::entry::Subject::CodeHash([0xc0; 32]), threat, verifier::entry::Severity::Critical, None).unwrap();
    let deadline = filed + Duration::from_secs(10);
    let refused = loop {
        // Presented for another statement, so nothing runs while it lives:
        // the revocation set is checked before the statement, so a live
        // token answers `token_wrong_action` and a revoked one
        // `token_revoked`.
        let (status, body) = guarded.run(&live, "SELECT balance FROM accounts WHERE id = 1 AND 0");
        if body["error"]["code"] == "token_revoked" {
            break status;
        }
        assert!(Instant::now() < deadline, "the token was not revoked: {status} {body}");
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(refused, 403);
    eprintln!("signal to refusal at the guarded resource: {:?}", filed.elapsed());
    assert_eq!(guarded.run(&live, update).1["error"]["code"], "token_revoked");
    // The revoked agent gets no more tokens.
    assert_eq!(code(&c.request_token("db.update", DB, json!({"sql": update}), None).unwrap_err()), "agent_revoked");
    // The revocation entry names the token.
    let entries: Value = serde_json::from_str(&server.get("/v1/entries?start=0&limit=1000")).unwrap();
    let revocation = entries["entries"].as_array().unwrap().iter().find(|e| e["entry"]["kind"] == "revocation").unwrap();
    let claims_jti = jti_of(&live);
    assert!(revocation["entry"]["tokens"].as_array().unwrap().iter().any(|j| j == &claims_jti), "{revocation}");

    // An auditor recomputes, offline, that every token was issued while
    // the agent met its class's minimum under the policy in force.
    let audit = audit(&server);
    assert_eq!(audit["tokens_checked"].as_u64(), Some(8), "{audit}");
}

/// `ledger-verify --json trust` against the server: must pass.
fn audit(server: &Server) -> Value {
    let out = ledger_e2e::ledger_verify(&["--json", "trust", "--url", &server.url, "--key", &server.key()]);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{text}");
    serde_json::from_slice::<Value>(&out.stdout).unwrap()["result"].clone()
}

/// The `jti` claim of a token (payload read without checking: the test
/// only names it).
fn jti_of(token: &str) -> String {
    use base64::Engine as _;
    let body = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token.strip_prefix("v4.public.").unwrap()).unwrap();
    let payload: Value = serde_json::from_slice(&body[..body.len() - 64]).unwrap();
    payload["jti"].as_str().unwrap().to_owned()
}

#[test]
fn escalations_are_approved_denied_or_expire_once_each() {
    let dir = tempfile::tempdir().unwrap();
    let policy = write_policy(dir.path(), 60);
    let server = Server::start_with(&dir.path().join("data"), &["--policy", &policy, "--escalation-ttl-secs", "2"]);
    let (payer, other) = (Agent::new("payer"), Agent::new("other"));
    server.register(&payer);
    server.register(&other);
    let c = client(&server, &payer);
    c.attest().unwrap();
    let ask = || match c.request_token("payments.transfer", "bank://acct/7", json!({"amount_max": 500, "target": "acct-9"}), None).unwrap()
    {
        TokenGrant::Escalated(e) => *e,
        TokenGrant::Token(_) => panic!("a payment needs a human"),
    };

    // Approve: two admins at once, exactly one wins.
    let first = ask();
    assert_eq!((first.status.as_str(), first.class.as_str()), ("pending", "critical"));
    let (status, listing) = admin(&server, "GET", "/v1/escalations", "");
    assert_eq!(status, 200);
    let pending = &listing["pending"][0];
    assert_eq!(pending["escalation"], first.escalation);
    assert!(pending["score_now"].as_u64().is_some() && !pending["history"].as_array().unwrap().is_empty(), "{listing}");
    let path = format!("/v1/escalations/{}/approve", first.escalation);
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| admin(&server, "POST", &path, r#"{"note":"ok by alice"}"#));
        let b = s.spawn(|| admin(&server, "POST", &path, r#"{"note":"ok by bob"}"#));
        (a.join().unwrap(), b.join().unwrap())
    });
    let mut statuses = [a.0, b.0];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 409], "{a:?} {b:?}");
    let loser = if a.0 == 409 { &a.1 } else { &b.1 };
    assert_eq!(loser["error"]["code"], "already_decided");
    // The agent learns the outcome and receives its token; another agent
    // may not look.
    let status = c.wait_for_escalation(first.escalation, Duration::from_millis(50), Duration::from_secs(5)).unwrap();
    assert_eq!(status.status, "approved");
    let issued = status.token.expect("the approved token");
    let err = client(&server, &other).escalation(first.escalation).unwrap_err();
    assert_eq!(code(&err), "not_owner");
    let verify = |amount: u64| {
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        let body = json!({"token": issued.token, "audience": "bank://acct/7", "action": "payments.transfer", "amount": amount, "target": "acct-9"});
        let mut resp = agent
            .post(&format!("{}/v1/tokens/verify", server.url))
            .header("content-type", "application/json")
            .send(body.to_string())
            .unwrap();
        (resp.status().as_u16(), serde_json::from_str::<Value>(&resp.body_mut().read_to_string().unwrap()).unwrap())
    };
    assert_eq!(verify(501).1["error"]["code"], "token_amount_over_ceiling");
    assert_eq!(verify(500).0, 200);

    // Deny.
    let second = ask();
    let (status, body) = admin(&server, "POST", &format!("/v1/escalations/{}/deny", second.escalation), "");
    assert_eq!((status, body["outcome"].as_str()), (200, Some("denied")), "{body}");
    assert_eq!(admin(&server, "POST", &format!("/v1/escalations/{}/approve", second.escalation), "").0, 409);
    let denied = c.escalation(second.escalation).unwrap();
    assert_eq!((denied.status.as_str(), denied.token.is_none()), ("denied", true));

    // Expiry: nobody answers within 2 s.
    let third = ask();
    let expired = c.wait_for_escalation(third.escalation, Duration::from_millis(100), Duration::from_secs(10)).unwrap();
    assert_eq!(expired.status, "expired");

    // Every outcome is logged, and each escalation decided once.
    let entries: Value = serde_json::from_str(&server.get("/v1/entries?start=0&limit=1000")).unwrap();
    let decisions: Vec<(u64, String)> = entries["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["entry"]["kind"] == "decision")
        .map(|e| (e["entry"]["escalation"].as_u64().unwrap(), e["entry"]["outcome"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        decisions,
        [(first.escalation, "approved".to_owned()), (second.escalation, "denied".to_owned()), (third.escalation, "expired".to_owned())]
    );
    // And they are on the event stream.
    let events = ledger_client::EventStream::connect(
        &server.url,
        ledger_client::EventFilter::new().types([ledger_client::EventType::Decision]).from_first(),
    )
    .unwrap();
    let outcomes: Vec<String> = events.take(3).map(|e| e.unwrap().entry["outcome"].as_str().unwrap().to_owned()).collect();
    assert_eq!(outcomes, ["approved", "denied", "expired"]);
    let audit = audit(&server);
    assert_eq!((audit["decisions_checked"].as_u64(), audit["escalated_tokens_checked"].as_u64()), (Some(3), Some(1)), "{audit}");
}

#[test]
fn peers_check_statements_offline() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let (supplier, buyer) = (Agent::new("supplier"), Agent::new("buyer"));
    server.register(&supplier);
    server.register(&buyer);
    let s = client(&server, &supplier);
    let b = client(&server, &buyer);
    let check = b.peer_check().unwrap();

    // Before it ever attested, the supplier has nothing to show.
    let statement = s.statement(&supplier.id).unwrap();
    let err = ledger_client::verify_peer(&check, &statement, &supplier.id, 0, Duration::from_secs(60)).unwrap_err();
    assert_eq!(err.code(), "peer_not_attested");
    s.attest().unwrap();
    let statement = s.statement(&supplier.id).unwrap();
    let seen = ledger_client::verify_peer(&check, &statement, &supplier.id, 60, Duration::from_secs(60)).unwrap();
    assert!(seen.score >= 60 && !seen.revoked);
    // The buyer trusts it, and says so in the log.
    b.report_peer(
        &verifier::AgentId::parse(&supplier.id).unwrap(),
        verifier::entry::Assessment::Positive,
        verifier::entry::Severity::Low,
        None,
    )
    .unwrap();

    let fail = |statement: &str, peer: &str, min: u8, max_age: Duration| {
        ledger_client::verify_peer(&check, statement, peer, min, max_age).unwrap_err().code()
    };
    // Forged: one claim changed (the signature no longer holds).
    let forged = forge(&statement, |claims| claims["score"] = json!(100));
    assert_eq!(fail(&forged, &supplier.id, 0, Duration::from_secs(60)), "statement_bad_signature");
    assert_eq!(fail(&statement, &buyer.id, 0, Duration::from_secs(60)), "statement_wrong_subject");
    assert_eq!(fail(&statement, &supplier.id, seen.score + 1, Duration::from_secs(60)), "peer_score_too_low");
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(fail(&statement, &supplier.id, 0, Duration::from_millis(10)), "statement_stale");
    // A statement of another log (another tree, another key).
    let dir2 = tempfile::tempdir().unwrap();
    let other = Server::start(&dir2.path().join("data"));
    other.register(&supplier);
    let s2 = client(&other, &supplier);
    s2.attest().unwrap();
    let foreign = s2.statement(&supplier.id).unwrap();
    assert_eq!(fail(&foreign, &supplier.id, 0, Duration::from_secs(60)), "statement_bad_signature");
    // Revoked: quarantined by an admin.
    assert_eq!(admin(&server, "POST", &format!("/v1/agents/{}/quarantine", supplier.path_id()), "").0, 201);
    let statement = b.statement(&supplier.id).unwrap();
    assert_eq!(fail(&statement, &supplier.id, 0, Duration::from_secs(60)), "peer_revoked");
}

/// Re-encodes a token with its claims changed and its signature kept.
fn forge(token: &str, change: impl FnOnce(&mut Value)) -> String {
    use base64::Engine as _;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let body = engine.decode(token.strip_prefix("v4.public.").unwrap()).unwrap();
    let (payload, signature) = body.split_at(body.len() - 64);
    let mut claims: Value = serde_json::from_slice(payload).unwrap();
    change(&mut claims);
    let mut forged = serde_json::to_vec(&claims).unwrap();
    forged.extend_from_slice(signature);
    format!("v4.public.{}", engine.encode(forged))
}
