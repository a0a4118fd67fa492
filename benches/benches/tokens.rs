//! Action token verification per core, next to its floor in the same run:
//!
//! * `ed25519_verify`: a bare Ed25519 `verify_strict` of the same bytes a
//!   token's signature covers (its PAE), with the same key type;
//! * `token_verify`: `verifier::token::TokenCheck::verify` of a whole
//!   token for a matching operation: base64, the signature, strict JSON
//!   claims, times, audience, action, the SQL statement's SHA-256, an
//!   amount and a target, against a revocation set of 10,000 ids;
//! * `pasetors_verify`: the `pasetors` crate verifying the same token
//!   (signature and payload only), for comparison.
//!
//! Prints the ratio `ed25519_verify / token_verify` (the target is
//! at least 0.8).

// In tests and benches a failed unwrap is the failure report.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use criterion::Criterion;
use ed25519_dalek::{Signer as _, SigningKey};
use ledger_benches::Totals;
use verifier::token::paseto::{pae, HEADER};
use verifier::token::{sql_sha256, Claims, Constraints, Operation, RevokedSet, TokenCheck, TOKEN_ASSERTION};

const NOW: u64 = 1_795_719_600_000;
const SQL: &str = "UPDATE accounts SET balance = balance - 10 WHERE id = 1";

fn claims() -> Claims {
    Claims {
        issuer: "bench.example/log".into(),
        jti: "0123456789abcdef0123456789abcdef".into(),
        subject: "spiffe://bench.example/agent/db-writer".into(),
        audience: "sqlite://guarded/main".into(),
        action: "db.update".into(),
        constraints: Constraints { sql_sha256: Some(sql_sha256(SQL)), amount_max: Some(100), target: Some("acct-1".into()) },
        issued_at: NOW,
        not_before: NOW,
        expires: NOW + 10_000,
        score: 72,
        log_index: 123_456,
        class: "high".into(),
        single_use: true,
    }
}

fn main() {
    let totals = Totals::default();
    let key = SigningKey::from_bytes(&[9; 32]);
    let token = claims().sign(&key);
    let check = TokenCheck { key: key.verifying_key(), issuer: "bench.example/log".into(), leeway_ms: 1000 };
    let op = Operation { audience: "sqlite://guarded/main", action: "db.update", sql: Some(SQL), amount: Some(50), target: Some("acct-1") };
    let mut revoked = RevokedSet::default();
    for i in 0..10_000u64 {
        revoked.insert(&format!("{i:032x}"), NOW + 60_000);
    }
    assert!(check.verify(&token, &op, NOW, &revoked).is_ok());
    let message = pae(&[HEADER.as_bytes(), &claims().to_payload(), b"", TOKEN_ASSERTION]);
    let signature = key.sign(&message);
    let public = key.verifying_key();
    let theirs = {
        use pasetors::keys::AsymmetricPublicKey;
        AsymmetricPublicKey::<pasetors::version4::V4>::from(&public.to_bytes()[..]).unwrap()
    };

    let mut c = Criterion::default().configure_from_args();
    let mut group = c.benchmark_group("token_verify");
    group.sample_size(20).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_millis(500));
    group.bench_function("ed25519_verify", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                std::hint::black_box(public.verify_strict(std::hint::black_box(&message), &signature)).unwrap();
            }
            let elapsed = start.elapsed();
            totals.record("ed25519", elapsed, iters);
            elapsed
        })
    });
    group.bench_function("token_verify", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                std::hint::black_box(check.verify(std::hint::black_box(&token), &op, NOW, &revoked)).unwrap();
            }
            let elapsed = start.elapsed();
            totals.record("token", elapsed, iters);
            elapsed
        })
    });
    group.bench_function("pasetors_verify", |b| {
        use pasetors::token::UntrustedToken;
        use pasetors::version4::{PublicToken, V4};
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                let untrusted = UntrustedToken::<pasetors::Public, V4>::try_from(std::hint::black_box(token.as_str())).unwrap();
                std::hint::black_box(PublicToken::verify(&theirs, &untrusted, None, Some(TOKEN_ASSERTION))).unwrap();
            }
            let elapsed = start.elapsed();
            totals.record("pasetors", elapsed, iters);
            elapsed
        })
    });
    group.finish();
    c.final_summary();
    let (e, t, p) = (totals.rate("ed25519"), totals.rate("token"), totals.rate("pasetors"));
    if e > 0.0 && t > 0.0 {
        println!(
            "token verification per core: bare Ed25519 verify {e:.0}/s, token verify {t:.0}/s (ratio {:.3}), pasetors verify {p:.0}/s (ratio {:.3})",
            t / e,
            p / e
        );
    }
}
