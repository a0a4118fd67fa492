//! Just-in-time action tokens (docs/FORMAT.md, "Action tokens"): PASETO
//! `v4.public` tokens the log issues for one action on one resource, with
//! the exact parameters the action may take, for seconds.
//!
//! [`TokenCheck::verify`] is the one verification rule, used by the log's
//! `POST /v1/tokens/verify`, the SDK and any resource server offline (the
//! issuer key and a revocation set are all it needs): the envelope and the
//! signature, the issuer, the revocation set, `nbf` and `exp` with a
//! leeway, the audience, the action, then every pinned constraint against
//! the operation presented. Single use ([`SingleUse`]) is the caller's replay
//! cache, consulted last, so a refused token is not used up.
//!
//! * [`paseto`]: the `v4.public` envelope.
//! * [`time`]: the RFC 3339 instants of `nbf`, `exp` and `iat`.

pub mod paseto;
pub mod time;

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use ed25519_dalek::{SigningKey, VerifyingKey};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::canonical::{parse_strict, to_canonical};

/// The implicit assertion of action tokens (PASETO "implicit assertion"):
/// a token verifies only as an action token.
pub const TOKEN_ASSERTION: &[u8] = b"agent-ledger/action-token/v1";

/// Longest action name, resource, target or class name, in characters.
pub const MAX_NAME_CHARS: usize = 256;

/// The longest lifetime a token may have, seconds (a risk class allows at
/// most this).
pub const MAX_LIFETIME_S: u32 = 3600;

/// Most escalations one agent may have waiting for a human.
pub const MAX_PENDING_ESCALATIONS: usize = 16;

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    bytes.iter().flat_map(|b| [DIGITS[usize::from(b >> 4)] as char, DIGITS[usize::from(b & 15)] as char]).collect()
}

/// 64 lowercase hex digits as 32 bytes (the only form written, so a
/// stored or signed form reads back to its own bytes).
fn parse_hash(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in text.as_bytes().chunks(2).enumerate() {
        let digit = |c: u8| (c as char).to_digit(16);
        out[i] = u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?).ok()?;
    }
    Some(out)
}

/// Most live tokens one agent holds at a time: a revocation lists them
/// all, so this bounds it.
pub const MAX_LIVE_TOKENS: usize = 64;

/// Length of a `jti`: 128 random bits in lowercase hex.
pub const JTI_HEX_LEN: usize = 32;

/// The exact parameters a token allows. An absent constraint pins nothing;
/// a present one must be matched by the operation ([`Operation`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Constraints {
    /// SHA-256 of the exact SQL statement text (UTF-8 bytes).
    pub sql_sha256: Option<[u8; 32]>,
    /// The largest amount allowed.
    pub amount_max: Option<u64>,
    /// The one target id allowed.
    pub target: Option<String>,
}

/// Why a token request's or a token's constraints are refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConstraintsError {
    /// Not an object of `sql_sha256` (64 hex), `amount_max` (integer) and
    /// `target` (string), each optional; or `sql` and `sql_sha256` both.
    #[error("constraints are an object of optional \"sql_sha256\" (64 hex digits) or \"sql\" (text), \"amount_max\" (a non-negative integer) and \"target\" (text of 1..=256 characters)")]
    Malformed,
}

impl Constraints {
    /// The members of a constraints object.
    pub const MEMBERS: [&'static str; 3] = ["amount_max", "sql_sha256", "target"];

    /// The constraints as a JSON object (only those present).
    pub fn to_object(&self) -> Map<String, Value> {
        let mut m = Map::new();
        if let Some(h) = &self.sql_sha256 {
            m.insert("sql_sha256".into(), Value::from(hex(h)));
        }
        if let Some(a) = self.amount_max {
            m.insert("amount_max".into(), Value::from(a));
        }
        if let Some(t) = &self.target {
            m.insert("target".into(), Value::from(t.as_str()));
        }
        m
    }

    /// Reads a constraints object. With `allow_sql`, a request may name
    /// the statement itself (`"sql"`), hashed here; stored and signed
    /// forms hold only the hash.
    pub fn from_value(value: &Value, allow_sql: bool) -> Result<Self, ConstraintsError> {
        let obj = value.as_object().ok_or(ConstraintsError::Malformed)?;
        let known = |k: &str| Self::MEMBERS.contains(&k) || (allow_sql && k == "sql");
        if obj.keys().any(|k| !known(k)) || (obj.contains_key("sql") && obj.contains_key("sql_sha256")) {
            return Err(ConstraintsError::Malformed);
        }
        let sql_sha256 = match (obj.get("sql_sha256"), obj.get("sql")) {
            (Some(Value::String(h)), None) => Some(parse_hash(h).ok_or(ConstraintsError::Malformed)?),
            (None, Some(Value::String(sql))) => Some(sql_sha256(sql)),
            (None, None) => None,
            _ => return Err(ConstraintsError::Malformed),
        };
        let amount_max = match obj.get("amount_max") {
            None => None,
            Some(v) => Some(v.as_u64().ok_or(ConstraintsError::Malformed)?),
        };
        let target = match obj.get("target") {
            None => None,
            Some(Value::String(t)) if !t.is_empty() && t.chars().count() <= MAX_NAME_CHARS => Some(t.clone()),
            Some(_) => return Err(ConstraintsError::Malformed),
        };
        Ok(Self { sql_sha256, amount_max, target })
    }
}

/// SHA-256 of a SQL statement's exact text, as `sql_sha256` pins it.
pub fn sql_sha256(sql: &str) -> [u8; 32] {
    Sha256::digest(sql.as_bytes()).into()
}

/// The claims of an action token (docs/FORMAT.md, "Action tokens").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claims {
    /// `iss`: the log's origin.
    pub issuer: String,
    /// `jti`: the token's id, 32 lowercase hex digits.
    pub jti: String,
    /// `sub`: the agent's SPIFFE id.
    pub subject: String,
    /// `aud`: the resource the token is for.
    pub audience: String,
    /// `action`: the action it allows.
    pub action: String,
    /// `constraints`: the parameters it pins.
    pub constraints: Constraints,
    /// `iat`, ms since the Unix epoch.
    pub issued_at: u64,
    /// `nbf`, ms.
    pub not_before: u64,
    /// `exp`, ms.
    pub expires: u64,
    /// `score`: the agent's trust score when it was issued.
    pub score: u8,
    /// `log_index`: the index of its `token` entry in the log.
    pub log_index: u64,
    /// `class`: the risk class of the action.
    pub class: String,
    /// `single_use`: whether a resource takes it once only.
    pub single_use: bool,
}

/// The members of the claims object.
pub const CLAIMS: [&str; 13] =
    ["action", "aud", "class", "constraints", "exp", "iat", "iss", "jti", "log_index", "nbf", "score", "single_use", "sub"];

impl Claims {
    /// The claims as the token's payload: RFC 8785 canonical JSON.
    pub fn to_payload(&self) -> Vec<u8> {
        let mut m = Map::new();
        m.insert("iss".into(), Value::from(self.issuer.as_str()));
        m.insert("jti".into(), Value::from(self.jti.as_str()));
        m.insert("sub".into(), Value::from(self.subject.as_str()));
        m.insert("aud".into(), Value::from(self.audience.as_str()));
        m.insert("action".into(), Value::from(self.action.as_str()));
        m.insert("constraints".into(), Value::Object(self.constraints.to_object()));
        m.insert("iat".into(), Value::from(time::to_rfc3339(self.issued_at)));
        m.insert("nbf".into(), Value::from(time::to_rfc3339(self.not_before)));
        m.insert("exp".into(), Value::from(time::to_rfc3339(self.expires)));
        m.insert("score".into(), Value::from(self.score));
        m.insert("log_index".into(), Value::from(self.log_index));
        m.insert("class".into(), Value::from(self.class.as_str()));
        m.insert("single_use".into(), Value::from(self.single_use));
        to_canonical(&Value::Object(m))
    }

    /// Reads a payload strictly: every claim present, none unknown.
    pub fn from_payload(payload: &[u8]) -> Result<Self, TokenError> {
        let value = parse_strict(payload).map_err(|_| TokenError::Malformed)?;
        let obj = value.as_object().ok_or(TokenError::Malformed)?;
        if obj.len() != CLAIMS.len() || obj.keys().any(|k| !CLAIMS.contains(&k.as_str())) {
            return Err(TokenError::Malformed);
        }
        let text = |k: &str| obj.get(k).and_then(Value::as_str).map(ToString::to_string).ok_or(TokenError::Malformed);
        let instant = |k: &str| obj.get(k).and_then(Value::as_str).and_then(time::from_rfc3339).ok_or(TokenError::Malformed);
        let claims = Self {
            issuer: text("iss")?,
            jti: text("jti")?,
            subject: text("sub")?,
            audience: text("aud")?,
            action: text("action")?,
            constraints: Constraints::from_value(obj.get("constraints").ok_or(TokenError::Malformed)?, false)
                .map_err(|_| TokenError::Malformed)?,
            issued_at: instant("iat")?,
            not_before: instant("nbf")?,
            expires: instant("exp")?,
            score: obj.get("score").and_then(Value::as_u64).filter(|s| *s <= 100).ok_or(TokenError::Malformed)? as u8,
            log_index: obj.get("log_index").and_then(Value::as_u64).ok_or(TokenError::Malformed)?,
            class: text("class")?,
            single_use: obj.get("single_use").and_then(Value::as_bool).ok_or(TokenError::Malformed)?,
        };
        if !is_jti(&claims.jti) || claims.not_before > claims.expires {
            return Err(TokenError::Malformed);
        }
        Ok(claims)
    }

    /// Signs the claims into a token with the issuer's key.
    pub fn sign(&self, key: &SigningKey) -> String {
        paseto::sign(key, &self.to_payload(), TOKEN_ASSERTION)
    }
}

/// Whether `jti` has the form of a token id (32 lowercase hex digits).
pub fn is_jti(jti: &str) -> bool {
    jti.len() == JTI_HEX_LEN && jti.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// What a resource is asked to do, as its server presents it to
/// [`TokenCheck::verify`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Operation<'a> {
    /// The resource's own name (the token's `aud` must be it).
    pub audience: &'a str,
    /// The action asked for.
    pub action: &'a str,
    /// The exact SQL statement to run, if the operation is one.
    pub sql: Option<&'a str>,
    /// The amount asked for, if any.
    pub amount: Option<u64>,
    /// The target id, if any.
    pub target: Option<&'a str>,
}

/// Why a token is refused; [`TokenError::code`] is the stable code.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not a `v4.public` token of this log's shape, or its claims are not.
    #[error("not an action token: a v4.public PASETO without a footer, with exactly the documented claims")]
    Malformed,
    /// Longer than [`paseto::MAX_TOKEN_BYTES`].
    #[error("the token is longer than {} bytes", paseto::MAX_TOKEN_BYTES)]
    TooLong,
    /// The signature does not verify with the issuer key.
    #[error("the token's signature does not verify with the issuer key")]
    BadSignature,
    /// Issued by another log.
    #[error("the token was issued by {found:?}, not {expected:?}")]
    WrongIssuer {
        /// The issuer expected.
        expected: String,
        /// The token's `iss`.
        found: String,
    },
    /// Past `exp` (plus the leeway).
    #[error("the token expired at {expires} ms (now {now} ms, leeway {leeway} ms)")]
    Expired {
        /// `exp`, ms.
        expires: u64,
        /// The verifier's clock, ms.
        now: u64,
        /// The leeway, ms.
        leeway: u64,
    },
    /// Before `nbf` (minus the leeway).
    #[error("the token is not valid before {not_before} ms (now {now} ms)")]
    NotYetValid {
        /// `nbf`, ms.
        not_before: u64,
        /// The verifier's clock, ms.
        now: u64,
    },
    /// For another resource.
    #[error("the token is for {found:?}, not {expected:?}")]
    WrongAudience {
        /// This resource.
        expected: String,
        /// The token's `aud`.
        found: String,
    },
    /// For another action.
    #[error("the token allows {allowed:?}, not {asked:?}")]
    WrongAction {
        /// The token's action.
        allowed: String,
        /// The action asked for.
        asked: String,
    },
    /// The statement is not the one the token pins (or none was given).
    #[error("the statement is not the one the token allows")]
    SqlMismatch,
    /// The amount is above the ceiling (or none was given).
    #[error("the amount {asked:?} is above the token's ceiling {ceiling}")]
    AmountOverCeiling {
        /// The amount asked for.
        asked: Option<u64>,
        /// The ceiling.
        ceiling: u64,
    },
    /// The target is not the one the token pins (or none was given).
    #[error("the target is not the one the token allows")]
    TargetMismatch,
    /// The token was revoked (with its agent).
    #[error("token {jti} was revoked")]
    Revoked {
        /// Its id.
        jti: String,
    },
    /// A single-use token presented again.
    #[error("single-use token {jti} was already used")]
    Replayed {
        /// Its id.
        jti: String,
    },
    /// The replay cache holds as many live single-use tokens as it may.
    #[error("the replay cache of single-use tokens is full")]
    ReplayCacheFull,
    /// The verifier cannot tell whether the token was revoked: its feed of
    /// revocations failed (it refuses rather than guess).
    #[error("the revocation feed is down: no token is taken until it is back")]
    RevocationsUnknown,
}

impl TokenError {
    /// The stable code.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::Malformed => "token_malformed",
            Self::TooLong => "token_too_long",
            Self::BadSignature => "token_bad_signature",
            Self::WrongIssuer { .. } => "token_wrong_issuer",
            Self::Expired { .. } => "token_expired",
            Self::NotYetValid { .. } => "token_not_yet_valid",
            Self::WrongAudience { .. } => "token_wrong_audience",
            Self::WrongAction { .. } => "token_wrong_action",
            Self::SqlMismatch => "token_sql_mismatch",
            Self::AmountOverCeiling { .. } => "token_amount_over_ceiling",
            Self::TargetMismatch => "token_target_mismatch",
            Self::Revoked { .. } => "token_revoked",
            Self::Replayed { .. } => "token_replayed",
            Self::ReplayCacheFull => "token_replay_cache_full",
            Self::RevocationsUnknown => "token_revocations_unknown",
        }
    }
}

impl From<paseto::PasetoError> for TokenError {
    fn from(e: paseto::PasetoError) -> Self {
        match e {
            paseto::PasetoError::TooLong => Self::TooLong,
            paseto::PasetoError::Malformed => Self::Malformed,
            paseto::PasetoError::BadSignature => Self::BadSignature,
        }
    }
}

/// What a verifier knows of revocations: revoked token ids, and revoked
/// agents with the instant of their revocation. A token is revoked when its
/// id is, or when its agent was revoked at or after the token's `iat`
/// (so a token that expired just before its agent's revocation, and is not
/// listed in it, is refused as well while a verifier's leeway would take
/// it; a reinstated agent's later tokens are not).
pub trait Revocations {
    /// Whether the token with these claims is revoked.
    fn is_revoked(&self, claims: &Claims) -> bool;
}

/// No token is revoked (a check that has no revocation set).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoRevocations;

impl Revocations for NoRevocations {
    fn is_revoked(&self, _: &Claims) -> bool {
        false
    }
}

/// Revoked token ids and agents, each with the instant after which it no
/// longer matters (a token past `exp` is refused anyway). Fed from
/// revocation entries (their agent, time and `tokens`) or the event stream.
#[derive(Clone, Debug, Default)]
pub struct RevokedSet {
    by_jti: BTreeMap<String, u64>,
    by_expiry: BTreeSet<(u64, String)>,
    agents: BTreeMap<String, (u64, u64)>,
    agents_by_expiry: BTreeSet<(u64, String)>,
}

impl RevokedSet {
    /// Adds an agent revoked at `revoked_at` (ms): its tokens issued at or
    /// before then are revoked. Forgotten after `revoked_at` plus the
    /// longest token lifetime plus [`MAX_LEEWAY_MS`].
    pub fn insert_agent(&mut self, agent: &str, revoked_at: u64) {
        let forget = revoked_at.saturating_add(u64::from(MAX_LIFETIME_S) * 1000).saturating_add(MAX_LEEWAY_MS);
        if let Some((_, old)) = self.agents.insert(agent.to_string(), (revoked_at, forget)) {
            self.agents_by_expiry.remove(&(old, agent.to_string()));
        }
        self.agents_by_expiry.insert((forget, agent.to_string()));
    }

    /// Adds a revoked token id that expires at `expires` (ms).
    pub fn insert(&mut self, jti: &str, expires: u64) {
        if let Some(old) = self.by_jti.insert(jti.to_string(), expires) {
            self.by_expiry.remove(&(old, jti.to_string()));
        }
        self.by_expiry.insert((expires, jti.to_string()));
    }

    /// Forgets ids that expired more than `leeway_ms` before `now_ms`, and
    /// agents whose tokens all have.
    pub fn prune(&mut self, now_ms: u64, leeway_ms: u64) {
        while let Some((forget, _)) = self.agents_by_expiry.first() {
            if *forget >= now_ms {
                break;
            }
            if let Some((_, agent)) = self.agents_by_expiry.pop_first() {
                self.agents.remove(&agent);
            }
        }
        while let Some((exp, _)) = self.by_expiry.first() {
            if exp.saturating_add(leeway_ms) >= now_ms {
                break;
            }
            if let Some((_, jti)) = self.by_expiry.pop_first() {
                self.by_jti.remove(&jti);
            }
        }
    }

    /// Ids held.
    pub fn len(&self) -> usize {
        self.by_jti.len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.by_jti.is_empty()
    }
}

impl Revocations for RevokedSet {
    fn is_revoked(&self, claims: &Claims) -> bool {
        self.by_jti.contains_key(&claims.jti) || self.agents.get(&claims.subject).is_some_and(|(at, _)| claims.issued_at <= *at)
    }
}

impl RevokedSet {
    /// Whether the id `jti` is revoked (by itself).
    pub fn contains(&self, jti: &str) -> bool {
        self.by_jti.contains_key(jti)
    }
}

/// Single-use token ids already taken, each kept until it expires (plus
/// the leeway): bounded by expiry and by `capacity`.
#[derive(Clone, Debug)]
pub struct SingleUse {
    used: RevokedSet,
    capacity: usize,
    since_ms: u64,
}

impl SingleUse {
    /// A cache of at most `capacity` live ids, remembering from `since_ms`
    /// on: a single-use token issued before then may have been taken by
    /// this verifier before it (re)started, so it is refused as replayed.
    pub fn new(capacity: usize, since_ms: u64) -> Self {
        Self { used: RevokedSet::default(), capacity, since_ms }
    }

    /// Takes a verified token: refuses a single-use token seen before, and
    /// remembers it until it expires. Tokens that are not single-use pass.
    pub fn take(&mut self, claims: &Claims, now_ms: u64, leeway_ms: u64) -> Result<(), TokenError> {
        if !claims.single_use {
            return Ok(());
        }
        self.used.prune(now_ms, leeway_ms);
        if self.used.contains(&claims.jti) || claims.issued_at < self.since_ms {
            return Err(TokenError::Replayed { jti: claims.jti.clone() });
        }
        if self.used.len() >= self.capacity {
            return Err(TokenError::ReplayCacheFull);
        }
        self.used.insert(&claims.jti, claims.expires);
        Ok(())
    }

    /// Live ids held.
    pub fn len(&self) -> usize {
        self.used.len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.used.is_empty()
    }
}

/// The default leeway on `nbf` and `exp`, ms.
pub const DEFAULT_LEEWAY_MS: u64 = 1000;

/// The largest leeway the log allows a verifier, ms: a revoked token id is
/// kept (and a live one listed in a revocation) until this long after its
/// `exp`, so no leeway up to it lets a revoked token through.
pub const MAX_LEEWAY_MS: u64 = 60_000;

/// The one verification rule for action tokens: the issuer's key and
/// origin, and a leeway for clocks.
#[derive(Clone, Debug)]
pub struct TokenCheck {
    /// The issuer's public key.
    pub key: VerifyingKey,
    /// The issuer's origin (`iss`).
    pub issuer: String,
    /// Leeway on `nbf` and `exp`, ms.
    pub leeway_ms: u64,
}

impl TokenCheck {
    /// Verifies `token` for `op` at `now_ms` against `revoked`, in the
    /// order of the module documentation, and returns its claims. Single
    /// use is checked after this ([`SingleUse::take`]).
    /// A leeway above [`MAX_LEEWAY_MS`] counts as that much: revoked ids
    /// are not kept longer than it allows.
    pub fn verify(&self, token: &str, op: &Operation<'_>, now_ms: u64, revoked: &dyn Revocations) -> Result<Claims, TokenError> {
        let leeway = self.leeway_ms.min(MAX_LEEWAY_MS);
        let payload = paseto::verify(&self.key, token, TOKEN_ASSERTION)?;
        let claims = Claims::from_payload(&payload)?;
        if claims.issuer != self.issuer {
            return Err(TokenError::WrongIssuer { expected: self.issuer.clone(), found: claims.issuer });
        }
        // A revoked token is dead whatever it is presented for.
        if revoked.is_revoked(&claims) {
            return Err(TokenError::Revoked { jti: claims.jti });
        }
        if now_ms > claims.expires.saturating_add(leeway) {
            return Err(TokenError::Expired { expires: claims.expires, now: now_ms, leeway });
        }
        if now_ms.saturating_add(leeway) < claims.not_before {
            return Err(TokenError::NotYetValid { not_before: claims.not_before, now: now_ms });
        }
        if claims.audience != op.audience {
            return Err(TokenError::WrongAudience { expected: op.audience.to_string(), found: claims.audience });
        }
        if claims.action != op.action {
            return Err(TokenError::WrongAction { allowed: claims.action, asked: op.action.to_string() });
        }
        let c = &claims.constraints;
        if let Some(pinned) = &c.sql_sha256 {
            let given = op.sql.map(sql_sha256);
            if !given.is_some_and(|g| crate::hash::hashes_equal(&g, pinned)) {
                return Err(TokenError::SqlMismatch);
            }
        }
        if let Some(ceiling) = c.amount_max {
            if op.amount.is_none_or(|a| a > ceiling) {
                return Err(TokenError::AmountOverCeiling { asked: op.amount, ceiling });
            }
        }
        if let Some(target) = &c.target {
            if op.target != Some(target.as_str()) {
                return Err(TokenError::TargetMismatch);
            }
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests;
