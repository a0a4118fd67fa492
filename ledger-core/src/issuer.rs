//! The token issuer (docs/FORMAT.md, "Action tokens", "Escalations",
//! "Trust statements"; docs/POLICY.md): just-in-time action tokens decided
//! on the live trust view, escalations to a human, and signed trust
//! statements for peers.
//!
//! * [`Issuer::request`]: an agent (already authenticated) asks for a token
//!   for one action on one resource. Under the agent's issuance lock
//!   ([`crate::views::grants::Grants::lock`], which revocations take too)
//!   the issuer reads the trust view *now*: the agent is active and not
//!   revoked, its score meets the risk class's minimum, it attested
//!   recently enough if the class says so, and it holds fewer than
//!   [`verifier::token::MAX_LIVE_TOKENS`]. Then it appends the `token` entry (the sequencer
//!   refuses it if the agent was revoked meanwhile) and only then signs
//!   and returns the token. A class that needs a human gets an
//!   `escalation` entry instead.
//! * [`Issuer::decide`]: an admin approves or denies an escalation, or it
//!   expires ([`Issuer::run_expiry`]); exactly once, whatever the number
//!   of concurrent deciders. An approval is checked like a request, at the
//!   instant of approval, and logs the `decision` and the `token` in one
//!   append.
//! * [`Issuer::verify`]: the log's answer to `POST /v1/tokens/verify`,
//!   [`verifier::token::TokenCheck`] against the revoked ids of the grants
//!   view and a single-use cache.
//! * [`Issuer::statement`]: a signed statement of an agent's trust for its
//!   peers ([`verifier::statement`]).
//!
//! The token key (Ed25519, `token.key` in the data directory, PASERK
//! `k4.secret`) is apart from the checkpoint key: a token or statement
//! signature is never a checkpoint signature.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::{SigningKey, VerifyingKey};
use rand_core::{OsRng, RngCore as _};
use serde_json::Value;
use verifier::agent_id::AgentId;
use verifier::entry::signing::hex;
use verifier::entry::{Basis, Decision, Escalation, EscalationDecision, Outcome, Scope, TokenIssued};
use verifier::fold::grant::{self, GrantRefusal};
use verifier::fold::registry;
use verifier::statement::{ProvenAttestation, Statement};
use verifier::token::{Claims, Constraints, Operation, SingleUse, TokenCheck, MAX_NAME_CHARS, MAX_PENDING_ESCALATIONS};

use crate::entry::{AdminOp, NewEntry};
use crate::views::grants::EscalationRecord;
use crate::{Error, Log};

/// Name of the token key file inside a data directory.
pub const TOKEN_KEY_FILE: &str = "token.key";

/// PASERK prefix of a v4 secret key.
const PASERK_SECRET: &str = "k4.secret.";

/// The issuer's settings.
#[derive(Clone, Copy, Debug)]
pub struct IssuerConfig {
    /// Leeway on `nbf` and `exp` when the log verifies a token.
    pub leeway_ms: u64,
    /// How long an escalation waits for a human before it expires.
    pub escalation_ttl: Duration,
    /// Most live single-use token ids the log's verify endpoint remembers.
    pub single_use_capacity: usize,
}

impl Default for IssuerConfig {
    fn default() -> Self {
        Self { leeway_ms: verifier::token::DEFAULT_LEEWAY_MS, escalation_ttl: Duration::from_secs(300), single_use_capacity: 1 << 20 }
    }
}

/// A token request: `{action, resource, constraints?, lifetime_s?}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRequest {
    /// The action.
    pub action: String,
    /// The resource (the token's audience).
    pub resource: String,
    /// Pinned parameters (`sql` is hashed here).
    pub constraints: Constraints,
    /// The lifetime asked for, seconds (default and most: the class's).
    pub lifetime_s: Option<u32>,
}

impl TokenRequest {
    /// Reads a request strictly.
    pub fn from_json(value: &Value) -> Result<Self, Error> {
        let bad = |m: &str| Error::InvalidTokenRequest(m.to_owned());
        let obj = value.as_object().ok_or_else(|| bad("the request is a JSON object"))?;
        if let Some(k) = obj.keys().find(|k| !["action", "resource", "constraints", "lifetime_s"].contains(&k.as_str())) {
            return Err(bad(&format!("unexpected member {k:?}; the request is {{action, resource, constraints?, lifetime_s?}}")));
        }
        let text = |k: &str| -> Result<String, Error> {
            match obj.get(k) {
                Some(Value::String(s)) if !s.is_empty() && s.chars().count() <= MAX_NAME_CHARS => Ok(s.clone()),
                _ => Err(bad(&format!("\"{k}\" is text of 1 to {MAX_NAME_CHARS} characters"))),
            }
        };
        let constraints = match obj.get("constraints") {
            None => Constraints::default(),
            Some(c) => Constraints::from_value(c, true).map_err(|e| bad(&e.to_string()))?,
        };
        let lifetime_s = match obj.get("lifetime_s") {
            None => None,
            Some(v) => Some(
                v.as_u64()
                    .and_then(|s| u32::try_from(s).ok())
                    .filter(|s| *s > 0)
                    .ok_or_else(|| bad("\"lifetime_s\" is a positive integer"))?,
            ),
        };
        Ok(Self { action: text("action")?, resource: text("resource")?, constraints, lifetime_s })
    }
}

/// What a token request got.
#[derive(Clone, Debug)]
pub enum Grant {
    /// A token, logged at `index`.
    Token {
        /// The PASETO token.
        token: String,
        /// Its claims.
        claims: Box<Claims>,
    },
    /// The request waits for a human.
    Escalated {
        /// The escalation entry's index (its id).
        escalation: u64,
        /// When it expires unanswered, ms.
        expires_at: u64,
        /// The risk class.
        class: String,
    },
}

/// What a decision logged.
#[derive(Clone, Debug)]
pub struct Decided {
    /// The decision entry's index.
    pub decision_index: u64,
    /// The outcome.
    pub outcome: Outcome,
    /// On approval, the token issued and its claims.
    pub token: Option<(String, Claims)>,
}

/// The issuer.
pub struct Issuer {
    log: Arc<Log>,
    key: SigningKey,
    config: IssuerConfig,
    deciding: Mutex<HashSet<u64>>,
    single_use: Mutex<SingleUse>,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer").field("public_key", &hex(self.key.verifying_key().as_bytes())).finish_non_exhaustive()
    }
}

/// Loads the token key at `path` (PASERK `k4.secret`), or creates one.
pub fn load_or_create_key(path: &Path) -> Result<SigningKey, Error> {
    let (text, _) = crate::keys::load_or_create_with(path, "token key", || {
        let key = SigningKey::generate(&mut OsRng);
        Ok(format!("{PASERK_SECRET}{}", URL_SAFE_NO_PAD.encode(key.to_keypair_bytes())))
    })?;
    let bad = || Error::Config(format!("token key {}: not a PASERK k4.secret key", path.display()));
    let bytes = text.strip_prefix(PASERK_SECRET).and_then(|b| URL_SAFE_NO_PAD.decode(b).ok()).ok_or_else(bad)?;
    let pair: [u8; 64] = bytes.try_into().map_err(|_| bad())?;
    SigningKey::from_keypair_bytes(&pair).map_err(|_| bad())
}

/// PASERK `k4.public` of a token key.
pub fn paserk_public(key: &VerifyingKey) -> String {
    format!("k4.public.{}", URL_SAFE_NO_PAD.encode(key.as_bytes()))
}

/// A fresh token id.
fn new_jti() -> String {
    let mut bytes = [0u8; 16];
    OsRng.fill_bytes(&mut bytes);
    hex(&bytes)
}

/// Removes an escalation from the set being decided when dropped.
struct Deciding<'a>(&'a Mutex<HashSet<u64>>, u64);

impl Drop for Deciding<'_> {
    fn drop(&mut self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.1);
    }
}

impl Issuer {
    /// An issuer for `log`, signing with `key`.
    pub fn new(log: Arc<Log>, key: SigningKey, config: IssuerConfig) -> Self {
        let single_use = Mutex::new(SingleUse::new(config.single_use_capacity, log.now_ms()));
        Self { log, key, config, deciding: Mutex::default(), single_use }
    }

    /// The token key's public half.
    pub fn public_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// The issuer's settings.
    pub fn config(&self) -> &IssuerConfig {
        &self.config
    }

    /// The verification rule with this issuer's key and origin.
    pub fn check(&self) -> TokenCheck {
        TokenCheck { key: self.public_key(), issuer: self.log.config().origin.clone(), leeway_ms: self.config.leeway_ms }
    }

    /// The basis of a grant to `agent` of `(action, resource)` now, with
    /// the class it falls in; every refusal of [`Issuer::request`]. Call
    /// under the agent's issuance lock.
    fn decide_basis(
        &self,
        agent: &AgentId,
        action: &str,
        resource: &str,
    ) -> Result<(Basis, String, verifier::fold::policy::RiskClass), Error> {
        registry::active(agent, self.log.agent(agent).as_ref())?;
        let (record, policy, applied) = self.log.trust().snapshot(agent).ok_or_else(|| Error::UnknownAgent(agent.clone()))?;
        let p = &policy.policy;
        let now = self.log.now_ms();
        let class_of = || p.tokens.classify(action, resource).0.to_owned();
        let granted = grant::decide(&record.trust, p, now, action, resource).map_err(|refusal| match refusal {
            GrantRefusal::Revoked => Error::AgentRevoked(agent.clone()),
            GrantRefusal::BelowThreshold { score, threshold } => Error::BelowThreshold { agent: agent.clone(), score, threshold },
            GrantRefusal::ScoreTooLow { score, required } => {
                Error::ScoreTooLow { agent: agent.clone(), score, required, class: class_of() }
            }
            GrantRefusal::FreshAttestationRequired { max_age_s, last_ok_at } => {
                Error::FreshAttestationRequired { agent: agent.clone(), class: class_of(), max_age_s, last_ok_at }
            }
        })?;
        if !self.log.grants().has_room(agent, now) {
            return Err(Error::TooManyTokens(agent.clone()));
        }
        let decision = Decision { as_of_index: applied.saturating_sub(1), decided_at: now };
        let basis = Basis { score: granted.score, required: granted.class.min_score, policy_index: policy.index, decision };
        Ok((basis, granted.class_name.to_owned(), granted.class))
    }

    /// A token entry for `scope` on `basis`, valid for `lifetime_s` from
    /// the basis's instant.
    fn token_entry(
        &self,
        agent: &AgentId,
        scope: Scope,
        basis: Basis,
        single_use: bool,
        lifetime_s: u32,
        escalation: Option<u64>,
    ) -> TokenIssued {
        let now = basis.decision.decided_at;
        TokenIssued {
            agent: agent.clone(),
            jti: new_jti(),
            scope,
            single_use,
            not_before: now,
            expires: now.saturating_add(u64::from(lifetime_s) * 1000),
            basis,
            escalation,
        }
    }

    /// Signs the token a `token` entry logged at `index` records.
    pub fn token_of(&self, entry: &TokenIssued, index: u64) -> (String, Claims) {
        let claims = entry.claims(index, &self.log.config().origin);
        (claims.sign(&self.key), claims)
    }

    /// Handles `agent`'s token request (the caller authenticated it).
    pub async fn request(&self, agent: &AgentId, request: &TokenRequest) -> Result<Grant, Error> {
        let _issuance = self.log.grants().lock(agent).await;
        let (basis, class_name, class) = self.decide_basis(agent, &request.action, &request.resource)?;
        let lifetime_s = match request.lifetime_s {
            None => class.max_lifetime_s,
            Some(s) if s <= class.max_lifetime_s => s,
            Some(s) => {
                return Err(Error::InvalidTokenRequest(format!(
                    "\"lifetime_s\" {s} is longer than the {} s {class_name:?} actions allow",
                    class.max_lifetime_s
                )))
            }
        };
        let scope = Scope {
            action: request.action.clone(),
            resource: request.resource.clone(),
            constraints: request.constraints.clone(),
            class: class_name.clone(),
        };
        if class.human_approval {
            if self.log.grants().pending_of(agent) >= MAX_PENDING_ESCALATIONS {
                return Err(Error::TooManyEscalations(agent.clone()));
            }
            let ttl = u64::try_from(self.config.escalation_ttl.as_millis()).unwrap_or(u64::MAX);
            let expires_at = basis.decision.decided_at.saturating_add(ttl);
            let escalation = Escalation { agent: agent.clone(), scope, lifetime_s, basis, expires_at };
            let entry = NewEntry::from_log(&escalation.to_object(), None, Some(AdminOp::Grant(agent.clone())))?;
            let done = first(self.log.append(vec![entry]).await?)?;
            return Ok(Grant::Escalated { escalation: done.index, expires_at, class: class_name });
        }
        let issued = self.token_entry(agent, scope, basis, class.single_use, lifetime_s, None);
        let entry = NewEntry::from_log(&issued.to_object(), None, Some(AdminOp::Grant(agent.clone())))?;
        let done = first(self.log.append(vec![entry]).await?)?;
        let (token, claims) = self.token_of(&issued, done.index);
        Ok(Grant::Token { token, claims: Box::new(claims) })
    }

    /// Decides escalation `index`: exactly once, whatever the number of
    /// concurrent callers ([`Error::AlreadyDecided`] for the others). An
    /// approval is checked like a request at this instant; if it fails the
    /// escalation stays pending.
    pub async fn decide(&self, index: u64, outcome: Outcome, note: Option<String>) -> Result<Decided, Error> {
        let record = {
            let mut deciding = self.deciding.lock().unwrap_or_else(|e| e.into_inner());
            let record = self.log.grants().escalation(index).ok_or(Error::UnknownEscalation(index))?;
            if let Some((done, ..)) = record.decision {
                return Err(Error::AlreadyDecided { escalation: index, outcome: done.as_str() });
            }
            if !deciding.insert(index) {
                return Err(Error::AlreadyDecided { escalation: index, outcome: "being decided" });
            }
            record
        };
        let _deciding = Deciding(&self.deciding, index);
        let agent = record.entry.agent.clone();
        // Past its expiry an escalation can only expire: the expiry is
        // logged now, and the decider told.
        if outcome != Outcome::Expired && self.log.now_ms() >= record.entry.expires_at {
            let expired = EscalationDecision { agent, escalation: index, outcome: Outcome::Expired, note: None };
            self.log.append(vec![NewEntry::from_log(&expired.to_object(), None, None)?]).await?;
            return Err(Error::AlreadyDecided { escalation: index, outcome: Outcome::Expired.as_str() });
        }
        let decision = EscalationDecision { agent: agent.clone(), escalation: index, outcome, note };
        let decision_entry = NewEntry::from_log(&decision.to_object(), None, None)?;
        if outcome != Outcome::Approved {
            let done = first(self.log.append(vec![decision_entry]).await?)?;
            return Ok(Decided { decision_index: done.index, outcome, token: None });
        }
        let _issuance = self.log.grants().lock(&agent).await;
        // The lock may have been waited for: expiry is checked again.
        if self.log.now_ms() >= record.entry.expires_at {
            return Err(Error::AlreadyDecided { escalation: index, outcome: "expiring" });
        }
        let (basis, class_name, class) = self.decide_basis(&agent, &record.entry.scope.action, &record.entry.scope.resource)?;
        let scope = Scope { class: class_name, ..record.entry.scope.clone() };
        let lifetime_s = record.entry.lifetime_s.min(class.max_lifetime_s);
        let issued = self.token_entry(&agent, scope, basis, class.single_use, lifetime_s, Some(index));
        let token_entry = NewEntry::from_log(&issued.to_object(), None, Some(AdminOp::Grant(agent.clone())))?;
        let done = self.log.append(vec![decision_entry, token_entry]).await?;
        let (Some(decided), Some(token)) = (done.first(), done.get(1)) else {
            return Err(Error::Config("an append of two entries returned fewer".into()));
        };
        Ok(Decided { decision_index: decided.index, outcome, token: Some(self.token_of(&issued, token.index)) })
    }

    /// The token an approved escalation was answered with, signed again
    /// from its entry (for its agent only: the caller decides who sees it).
    pub fn approved_token(&self, record: &EscalationRecord) -> Option<(String, Claims)> {
        record.token.as_ref().map(|(t, i)| self.token_of(t, *i))
    }

    /// Expires unanswered escalations, as denials, until the log shuts
    /// down: every quarter of a second, each pending escalation past its
    /// `expires_at` gets an `expired` decision.
    pub async fn run_expiry(self: Arc<Self>) {
        let head = self.log.watch_head();
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            // The head's sender goes when the log does.
            if head.has_changed().is_err() {
                return;
            }
            for index in self.log.grants().expired(self.log.now_ms()) {
                match self.decide(index, Outcome::Expired, None).await {
                    Ok(_) | Err(Error::AlreadyDecided { .. } | Error::UnknownEscalation(_)) => {}
                    Err(Error::ShuttingDown) => return,
                    Err(e) => tracing::warn!(escalation = index, error = %e, "could not expire an escalation; retrying"),
                }
            }
        }
    }

    /// The log's own check of `token` for `op`: the one verification rule
    /// against the grants view's revoked ids, then the single-use cache.
    pub fn verify(&self, token: &str, op: &Operation<'_>) -> Result<Claims, Error> {
        let now = self.log.now_ms();
        let claims = self.check().verify(token, op, now, &self.log.grants().revoked())?;
        self.single_use.lock().unwrap_or_else(|e| e.into_inner()).take(&claims, now, self.config.leeway_ms)?;
        Ok(claims)
    }

    /// A signed trust statement about `agent` now (reads the store: call
    /// it off the async workers).
    pub fn statement(&self, agent: &AgentId) -> Result<String, Error> {
        let state = self.log.agent(agent).ok_or_else(|| Error::UnknownAgent(agent.clone()))?;
        let (record, policy, applied) = self.log.trust().snapshot(agent).ok_or_else(|| Error::UnknownAgent(agent.clone()))?;
        let now = self.log.now_ms();
        let head = self.log.head();
        let attestation = match record.trust.last_ok_attestation() {
            Some((index, _)) if index < head.size => {
                Some(ProvenAttestation { index, leaf: self.log.entry(index)?, proof: self.log.inclusion_proof(index, head.size)? })
            }
            _ => None,
        };
        let statement = Statement {
            issuer: self.log.config().origin.clone(),
            subject: agent.as_str().to_owned(),
            issued_at: now,
            score: record.trust.score(&policy.policy, now),
            level: record.trust.level().as_str().to_owned(),
            revoked: record.trust.revoked().is_some() || state.retired.is_some(),
            as_of_index: applied.saturating_sub(1).min(head.size.saturating_sub(1)),
            attestation,
            checkpoint: head.checkpoint.to_string(),
        };
        Ok(statement.sign(&self.key))
    }
}

fn first(mut done: Vec<crate::Appended>) -> Result<crate::Appended, Error> {
    done.pop().ok_or_else(|| Error::Config("an append returned no entry".into()))
}
