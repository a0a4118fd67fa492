#![allow(clippy::unwrap_used)]
use super::*;

const NOW: u64 = 1_795_719_600_000;

fn key() -> SigningKey {
    SigningKey::from_bytes(&[42; 32])
}

fn claims() -> Claims {
    Claims {
        issuer: "ledger.test/log".into(),
        jti: "0123456789abcdef0123456789abcdef".into(),
        subject: "spiffe://test/agent/a".into(),
        audience: "sqlite://guarded/main".into(),
        action: "db.update".into(),
        constraints: Constraints {
            sql_sha256: Some(sql_sha256("UPDATE t SET x = 1 WHERE id = 7")),
            amount_max: Some(100),
            target: Some("acct-7".into()),
        },
        issued_at: NOW,
        not_before: NOW,
        expires: NOW + 10_000,
        score: 72,
        log_index: 99,
        class: "high".into(),
        single_use: true,
    }
}

fn check() -> TokenCheck {
    TokenCheck { key: key().verifying_key(), issuer: "ledger.test/log".into(), leeway_ms: 500 }
}

fn op() -> Operation<'static> {
    Operation {
        audience: "sqlite://guarded/main",
        action: "db.update",
        sql: Some("UPDATE t SET x = 1 WHERE id = 7"),
        amount: Some(100),
        target: Some("acct-7"),
    }
}

fn code(r: Result<Claims, TokenError>) -> &'static str {
    r.unwrap_err().code()
}

#[test]
fn claims_round_trip_canonically() {
    let c = claims();
    let payload = c.to_payload();
    assert_eq!(Claims::from_payload(&payload).unwrap(), c);
    assert_eq!(to_canonical(&parse_strict(&payload).unwrap()), payload);
    // One claim too many, one missing, a bad jti: malformed.
    let mut v: Map<String, Value> = serde_json::from_slice(&payload).unwrap();
    v.insert("extra".into(), Value::from(1));
    assert_eq!(Claims::from_payload(&serde_json::to_vec(&v).unwrap()), Err(TokenError::Malformed));
    v.remove("extra");
    v.insert("jti".into(), Value::from("XYZ"));
    assert_eq!(Claims::from_payload(&serde_json::to_vec(&v).unwrap()), Err(TokenError::Malformed));
    v.remove("jti");
    assert_eq!(Claims::from_payload(&serde_json::to_vec(&v).unwrap()), Err(TokenError::Malformed));
}

#[test]
fn a_matching_operation_passes() {
    let token = claims().sign(&key());
    assert_eq!(check().verify(&token, &op(), NOW + 1, &NoRevocations).unwrap(), claims());
    // The amount may be below the ceiling.
    assert!(check().verify(&token, &Operation { amount: Some(1), ..op() }, NOW, &NoRevocations).is_ok());
}

#[test]
fn every_refusal_has_its_code() {
    let token = claims().sign(&key());
    let c = check();
    let none = &NoRevocations;
    assert_eq!(code(c.verify(&token, &op(), NOW + 10_501, none)), "token_expired");
    assert_eq!(code(c.verify(&token, &op(), NOW - 501, none)), "token_not_yet_valid");
    assert_eq!(code(c.verify(&token, &Operation { audience: "sqlite://other", ..op() }, NOW, none)), "token_wrong_audience");
    assert_eq!(code(c.verify(&token, &Operation { action: "db.delete", ..op() }, NOW, none)), "token_wrong_action");
    assert_eq!(
        code(c.verify(&token, &Operation { sql: Some("UPDATE t SET x = 2 WHERE id = 7"), ..op() }, NOW, none)),
        "token_sql_mismatch"
    );
    assert_eq!(code(c.verify(&token, &Operation { sql: None, ..op() }, NOW, none)), "token_sql_mismatch");
    assert_eq!(code(c.verify(&token, &Operation { amount: Some(101), ..op() }, NOW, none)), "token_amount_over_ceiling");
    assert_eq!(code(c.verify(&token, &Operation { amount: None, ..op() }, NOW, none)), "token_amount_over_ceiling");
    assert_eq!(code(c.verify(&token, &Operation { target: Some("acct-8"), ..op() }, NOW, none)), "token_target_mismatch");
    let mut revoked = RevokedSet::default();
    revoked.insert(&claims().jti, claims().expires);
    assert_eq!(code(c.verify(&token, &op(), NOW, &revoked)), "token_revoked");
    let other = TokenCheck { issuer: "ledger.test/other".into(), ..check() };
    assert_eq!(code(other.verify(&token, &op(), NOW, none)), "token_wrong_issuer");
    let wrong_key = TokenCheck { key: SigningKey::from_bytes(&[1; 32]).verifying_key(), ..check() };
    assert_eq!(code(wrong_key.verify(&token, &op(), NOW, none)), "token_bad_signature");
    assert_eq!(code(c.verify("v4.public.", &op(), NOW, none)), "token_malformed");
    // Signed with the statement assertion: not an action token.
    let as_statement = paseto::sign(&key(), &claims().to_payload(), b"agent-ledger/trust-statement/v1");
    assert_eq!(code(c.verify(&as_statement, &op(), NOW, none)), "token_bad_signature");
}

#[test]
fn a_revoked_agent_revokes_its_earlier_tokens_listed_or_not() {
    let token = claims().sign(&key());
    let mut revoked = RevokedSet::default();
    revoked.insert_agent("spiffe://test/agent/a", NOW);
    assert_eq!(code(check().verify(&token, &op(), NOW, &revoked)), "token_revoked");
    // A token issued after the revocation (a reinstated agent's) is not.
    let later = Claims { issued_at: NOW + 1, not_before: NOW + 1, ..claims() }.sign(&key());
    assert!(check().verify(&later, &op(), NOW + 1, &revoked).is_ok());
    // Forgotten once no token issued before it can be live.
    revoked.prune(NOW + 3_600_000 + MAX_LEEWAY_MS + 1, 0);
    assert!(check().verify(&token, &op(), NOW, &revoked).is_ok());
}

#[test]
fn the_leeway_is_respected_at_both_ends() {
    let token = claims().sign(&key());
    let c = check();
    assert!(c.verify(&token, &op(), NOW + 10_500, &NoRevocations).is_ok());
    assert!(c.verify(&token, &op(), NOW - 500, &NoRevocations).is_ok());
    let strict = TokenCheck { leeway_ms: 0, ..check() };
    assert_eq!(code(strict.verify(&token, &op(), NOW + 10_001, &NoRevocations)), "token_expired");
    assert_eq!(code(strict.verify(&token, &op(), NOW - 1, &NoRevocations)), "token_not_yet_valid");
}

#[test]
fn single_use_tokens_are_taken_once_and_forgotten_after_expiry() {
    let mut cache = SingleUse::new(2, NOW);
    let c = claims();
    cache.take(&c, NOW, 500).unwrap();
    assert_eq!(cache.take(&c, NOW + 1, 500).unwrap_err().code(), "token_replayed");
    let reusable = Claims { single_use: false, ..claims() };
    cache.take(&reusable, NOW, 500).unwrap();
    cache.take(&reusable, NOW, 500).unwrap();
    let second = Claims { jti: "1".repeat(32), ..claims() };
    cache.take(&second, NOW, 500).unwrap();
    let third = Claims { jti: "2".repeat(32), ..claims() };
    assert_eq!(cache.take(&third, NOW, 500).unwrap_err(), TokenError::ReplayCacheFull);
    // Issued before the cache started: it may have been taken already.
    let before = Claims { jti: "3".repeat(32), issued_at: NOW - 1, ..claims() };
    assert_eq!(SingleUse::new(2, NOW).take(&before, NOW, 500).unwrap_err().code(), "token_replayed");
    // After expiry plus leeway, the ids are forgotten and room is made.
    cache.take(&third, c.expires + 501, 500).unwrap();
    assert_eq!(cache.len(), 1);
}

#[test]
fn constraints_read_strictly() {
    let v = serde_json::json!({"sql": "SELECT 1", "amount_max": 5});
    let c = Constraints::from_value(&v, true).unwrap();
    assert_eq!(c.sql_sha256, Some(sql_sha256("SELECT 1")));
    assert!(Constraints::from_value(&v, false).is_err());
    for bad in [
        serde_json::json!({"sql": "x", "sql_sha256": hex(&[0; 32])}),
        serde_json::json!({"amount_max": -1}),
        serde_json::json!({"target": ""}),
        serde_json::json!({"other": 1}),
        serde_json::json!([]),
    ] {
        assert!(Constraints::from_value(&bad, true).is_err(), "{bad}");
    }
}

/// `pasetors`, an independent implementation, reads our tokens and we read
/// its tokens; and the specification's v4.public test vector 4-S-1 checks.
#[test]
fn pasetors_agrees_both_ways() {
    use pasetors::keys::{AsymmetricPublicKey, AsymmetricSecretKey};
    use pasetors::token::UntrustedToken;
    use pasetors::version4::{PublicToken, V4};
    use pasetors::Public;

    let k = key();
    let token = claims().sign(&k);
    let public = AsymmetricPublicKey::<V4>::from(&k.verifying_key().to_bytes()[..]).unwrap();
    let untrusted = UntrustedToken::<Public, V4>::try_from(token.as_str()).unwrap();
    let trusted = PublicToken::verify(&public, &untrusted, None, Some(TOKEN_ASSERTION)).unwrap();
    assert_eq!(trusted.payload().as_bytes(), claims().to_payload());

    let secret = AsymmetricSecretKey::<V4>::from(&k.to_keypair_bytes()[..]).unwrap();
    let theirs = PublicToken::sign(&secret, &claims().to_payload(), None, Some(TOKEN_ASSERTION)).unwrap();
    assert_eq!(check().verify(&theirs, &op(), NOW, &NoRevocations).unwrap(), claims());
    // Ed25519 is deterministic: the same key and message give the same token.
    assert_eq!(theirs, token);
}

#[test]
fn specification_vector_4_s_1() {
    // paseto/test-vectors v4.json, "4-S-1": no footer, no implicit
    // assertion (4-S-2 and 4-S-3 carry footers, which this log refuses).
    let secret = ed25519_dalek::SigningKey::from_bytes(
        &<[u8; 32]>::try_from(base16(b"b4cbfb43df4ce210727d953e4a713307fa19bb7d9f85041438d9e11b942a3774").as_slice()).unwrap(),
    );
    let payload = br#"{"data":"this is a signed message","exp":"2022-01-01T00:00:00+00:00"}"#;
    let expected = "v4.public.eyJkYXRhIjoidGhpcyBpcyBhIHNpZ25lZCBtZXNzYWdlIiwiZXhwIjoiMjAyMi0wMS0wMVQwMDowMDowMCswMDowMCJ9bg_XBBzds8lTZShVlwwKSgeKpLT3yukTw6JUz3W4h_ExsQV-P0V54zemZDcAxFaSeef1QlXEFtkqxT1ciiQEDA";
    assert_eq!(paseto::sign(&secret, payload, b""), expected);
    assert_eq!(paseto::verify(&secret.verifying_key(), expected, b"").unwrap(), payload);
}

fn base16(text: &[u8]) -> Vec<u8> {
    text.chunks(2).map(|p| u8::from_str_radix(core::str::from_utf8(p).unwrap(), 16).unwrap()).collect()
}
