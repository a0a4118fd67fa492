//! Action tokens, escalations and peer checks from the SDK
//! (docs/FORMAT.md, "Action tokens", "Trust statements").
//!
//! * [`Client::request_token`]: ask for a token for one action; a class
//!   that needs a human answers with an escalation, which
//!   [`Client::wait_for_escalation`] polls until it is decided.
//! * [`TokenVerifier`]: what a resource server runs, offline: the one
//!   verification rule ([`verifier::token::TokenCheck`]) with the issuer's
//!   key, a single-use cache, and a revocation set kept current from the
//!   event stream ([`TokenVerifier::follow`]).
//! * [`verify_peer`]: check another agent's trust statement with
//!   [`verifier`] alone.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::Value;
use verifier::note::{NoteVerifier, VerifierKey};
use verifier::statement::{PeerCheck, PeerError, Statement};
use verifier::token::{Claims, Operation, RevokedSet, SingleUse, TokenCheck, TokenError};
pub use verifier::wire::{EscalationStatus, IssuedToken, TokenKey};

use crate::events::{EventFilter, EventStream, EventType, Reconnect};
use crate::{encode_id, transport, Client, ClientError, RequestSignature};

/// What a token request got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenGrant {
    /// The token.
    Token(IssuedToken),
    /// It waits for a human.
    Escalated(Box<EscalationStatus>),
}

impl Client {
    /// Asks for an action token for `action` on `resource`, pinning
    /// `constraints` (`{"sql": "UPDATE …"}` or `{"sql_sha256": hex}`,
    /// `{"amount_max": n}`, `{"target": id}`), for `lifetime_s` seconds (at
    /// most, and by default, the risk class's). Refusals are
    /// [`ClientError::Api`] with `score_too_low`, `attestation_required`,
    /// `agent_revoked`, …
    pub fn request_token(
        &self,
        action: &str,
        resource: &str,
        constraints: Value,
        lifetime_s: Option<u32>,
    ) -> Result<TokenGrant, ClientError> {
        let mut body = serde_json::json!({ "action": action, "resource": resource, "constraints": constraints });
        if let Some(s) = lifetime_s {
            body["lifetime_s"] = Value::from(s);
        }
        let value = self.signed_post("/v1/tokens", body.to_string())?;
        if value.get("token").is_some() {
            return serde_json::from_value(value).map(TokenGrant::Token).map_err(|e| transport(format!("unexpected token response: {e}")));
        }
        serde_json::from_value(value)
            .map(|e| TokenGrant::Escalated(Box::new(e)))
            .map_err(|e| transport(format!("unexpected escalation response: {e}")))
    }

    /// The status of one of this agent's escalations (a signed GET); its
    /// `token` once approved.
    pub fn escalation(&self, escalation: u64) -> Result<EscalationStatus, ClientError> {
        let path = format!("/v1/escalations/{escalation}");
        let signed = RequestSignature::sign(self.origin(), self.agent(), &self.key(), "GET", &path, b"");
        let mut request = self.http.get(&format!("{}{path}", self.base));
        for (name, value) in signed.headers() {
            request = request.header(name, &value);
        }
        let value = crate::receipt(request.call().map_err(transport)?)?.response;
        serde_json::from_value(value).map_err(|e| transport(format!("unexpected escalation response: {e}")))
    }

    /// Polls an escalation every `every` until it is decided or `timeout`
    /// passes; returns its last status (`approved` with its token,
    /// `denied`, `expired`, or still `pending` at the timeout).
    pub fn wait_for_escalation(&self, escalation: u64, every: Duration, timeout: Duration) -> Result<EscalationStatus, ClientError> {
        let deadline = Instant::now() + timeout;
        loop {
            let status = self.escalation(escalation)?;
            if status.status != "pending" || Instant::now() >= deadline {
                return Ok(status);
            }
            std::thread::sleep(every);
        }
    }

    /// The log's signed trust statement about `agent`
    /// (`GET /v1/agents/{id}/statement`), to show a peer or to check with
    /// [`verify_peer`].
    pub fn statement(&self, agent: &str) -> Result<String, ClientError> {
        let value = self.get(&format!("/v1/agents/{}/statement", encode_id(agent)))?;
        value["statement"].as_str().map(str::to_owned).ok_or_else(|| transport("no statement in the response"))
    }

    /// The keys a peer check needs, fetched from this log once: its token
    /// key and its checkpoint key. Pin them in configuration where the
    /// log is not trusted to name its own keys.
    pub fn peer_check(&self) -> Result<PeerCheck, ClientError> {
        let key: TokenKey = serde_json::from_value(self.get("/v1/tokens/key")?).map_err(|e| transport(format!("token key: {e}")))?;
        let token_key = decode_key(&key.public_key)?;
        let mut resp = self.http.get(&format!("{}/v1/log/key", self.base)).call().map_err(transport)?;
        let text = resp.body_mut().read_to_string().map_err(transport)?;
        let log = VerifierKey::parse(text.trim()).map_err(|e| transport(format!("log key: {e}")))?;
        Ok(PeerCheck { token_key, log: NoteVerifier::new(log) })
    }
}

fn decode_key(b64: &str) -> Result<ed25519_dalek::VerifyingKey, ClientError> {
    let bytes: [u8; 32] = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| transport("the token key is not 32 bytes of base64"))?;
    ed25519_dalek::VerifyingKey::from_bytes(&bytes).map_err(|_| transport("the token key is not an Ed25519 key"))
}

/// Checks a peer's trust statement offline: signed by the log, about
/// `peer`, no older than `max_age`, the peer not revoked and scoring at
/// least `min_score`, with a passing attestation proven into a checkpoint
/// the log signed. No call goes to the server.
pub fn verify_peer(check: &PeerCheck, statement: &str, peer: &str, min_score: u8, max_age: Duration) -> Result<Statement, PeerError> {
    let now = now_ms();
    check.verify(statement, Some(peer), min_score, u64::try_from(max_age.as_millis()).unwrap_or(u64::MAX), now)
}

/// Milliseconds since the Unix epoch, by this machine's clock.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// What a resource server runs: the one verification rule, offline, with
/// a single-use cache and a revocation set.
#[derive(Debug)]
pub struct TokenVerifier {
    check: TokenCheck,
    revoked: Arc<Mutex<RevokedSet>>,
    used: Mutex<SingleUse>,
    follower: Option<Follower>,
}

/// The thread keeping a [`TokenVerifier`]'s revocation set current.
#[derive(Debug)]
struct Follower {
    stop: Arc<AtomicBool>,
    /// False while the stream reports failures (until the next event).
    healthy: Arc<AtomicBool>,
    reached: Arc<AtomicU64>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // The stream blocks on the network; the thread ends at its next
        // event or keep-alive, so it is not joined.
        drop(self.handle.take());
    }
}

impl TokenVerifier {
    /// Most single-use ids a verifier remembers (each until it expires).
    pub const SINGLE_USE_CAPACITY: usize = 1 << 20;

    /// A verifier for tokens of `issuer` signed with `key`, allowing
    /// `leeway` on `nbf` and `exp`.
    pub fn new(key: ed25519_dalek::VerifyingKey, issuer: &str, leeway: Duration) -> Self {
        let check = TokenCheck { key, issuer: issuer.to_owned(), leeway_ms: u64::try_from(leeway.as_millis()).unwrap_or(u64::MAX) };
        Self { check, revoked: Arc::default(), used: Mutex::new(SingleUse::new(Self::SINGLE_USE_CAPACITY, now_ms())), follower: None }
    }

    /// A verifier for the log at `base`, with its token key (fetched once)
    /// and its revocations followed from the event stream from the first
    /// revocation on ([`TokenVerifier::follow`]).
    pub fn for_log(base: &str, leeway: Duration) -> Result<Self, ClientError> {
        let http = crate::http_agent();
        let mut resp = http.get(&format!("{}/v1/tokens/key", base.trim_end_matches('/'))).call().map_err(transport)?;
        let key: TokenKey = serde_json::from_value(crate::receipt_value(&mut resp)?).map_err(|e| transport(format!("token key: {e}")))?;
        let mut verifier = Self::new(decode_key(&key.public_key)?, &key.issuer, leeway);
        verifier.follow(base)?;
        Ok(verifier)
    }

    /// Keeps the revocation set current from the log's event stream
    /// (revocation events, from the first: a token lives an hour at most,
    /// and ids past their expiry are forgotten). Returns once the stream is
    /// connected; [`TokenVerifier::caught_up_to`] says how far it has read.
    pub fn follow(&mut self, base: &str) -> Result<(), ClientError> {
        let reconnect = Reconnect { initial: Duration::from_millis(50), ..Reconnect::default() };
        let stream = EventStream::connect_with(base, EventFilter::new().types([EventType::Revocation]).from_first(), reconnect)?;
        let (stop, reached) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
        let healthy = Arc::new(AtomicBool::new(true));
        let (revoked, leeway) = (Arc::clone(&self.revoked), self.check.leeway_ms);
        let (stop2, reached2, healthy2) = (Arc::clone(&stop), Arc::clone(&reached), Arc::clone(&healthy));
        let handle = std::thread::Builder::new()
            .name("token-revocations".into())
            .spawn(move || {
                for event in stream {
                    if stop2.load(Ordering::Relaxed) {
                        return;
                    }
                    // The stream reconnects by itself; it reports an error
                    // only once its attempts are spent. Until the next
                    // event, tokens are refused: a revocation may be missed.
                    let Ok(event) = event else {
                        healthy2.store(false, Ordering::Release);
                        continue;
                    };
                    healthy2.store(true, Ordering::Release);
                    // Every token the entry lists was issued to its agent
                    // before it: the agent's revocation time refuses them
                    // all (and any it could not list).
                    if let Some(agent) = &event.agent {
                        let mut set = revoked.lock().unwrap_or_else(|e| e.into_inner());
                        set.prune(now_ms(), leeway);
                        set.insert_agent(agent, event.integrated_time);
                    }
                    reached2.store(event.index + 1, Ordering::Release);
                }
            })
            .map_err(|e| transport(format!("starting the revocation follower: {e}")))?;
        self.follower = Some(Follower { stop, healthy, reached, handle: Some(handle) });
        Ok(())
    }

    /// Refuses while the revocation feed reports failures.
    fn feed(&self) -> Result<(), TokenError> {
        match &self.follower {
            Some(f) if !f.healthy.load(Ordering::Acquire) => Err(TokenError::RevocationsUnknown),
            _ => Ok(()),
        }
    }

    /// The log size up to which revocations have been applied (0 when not
    /// following).
    pub fn caught_up_to(&self) -> u64 {
        self.follower.as_ref().map_or(0, |f| f.reached.load(Ordering::Acquire))
    }

    /// Marks `jti` revoked until `expires` (ms), e.g. from another feed.
    pub fn revoke(&self, jti: &str, expires: u64) {
        self.revoked.lock().unwrap_or_else(|e| e.into_inner()).insert(jti, expires);
    }

    /// Verifies `token` for `op` now, then takes it if single-use.
    pub fn verify(&self, token: &str, op: &Operation<'_>) -> Result<Claims, TokenError> {
        self.verify_at(token, op, now_ms())
    }

    /// The verification rule alone, now: the token is not taken, even if
    /// single use (for probes; a resource calls [`TokenVerifier::verify`]).
    pub fn check(&self, token: &str, op: &Operation<'_>) -> Result<Claims, TokenError> {
        self.feed()?;
        let revoked = self.revoked.lock().unwrap_or_else(|e| e.into_inner());
        self.check.verify(token, op, now_ms(), &*revoked)
    }

    /// [`TokenVerifier::verify`] at `now_ms`.
    pub fn verify_at(&self, token: &str, op: &Operation<'_>, now_ms: u64) -> Result<Claims, TokenError> {
        self.feed()?;
        let claims = {
            let revoked = self.revoked.lock().unwrap_or_else(|e| e.into_inner());
            self.check.verify(token, op, now_ms, &*revoked)?
        };
        self.used.lock().unwrap_or_else(|e| e.into_inner()).take(&claims, now_ms, self.check.leeway_ms)?;
        Ok(claims)
    }
}
