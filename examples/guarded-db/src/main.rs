//! `guarded-db`: a resource server that runs a SQL statement on its SQLite
//! database only when it is presented an action token whose constraints
//! pin exactly that statement (docs/FORMAT.md, "Action tokens").
//!
//! `POST /sql` with `{"token": "v4.public.…", "sql": "UPDATE …"}`. The
//! action asked for is `db.<first keyword>` (`db.update`, `db.select`, …;
//! only `select`, `insert`, `update`, `delete` and `create`, at the very
//! start of the statement), and the token must pin the statement
//! (`sql_sha256`)
//! on this server's audience (`--audience`). The token is checked offline
//! with `ledger_client::TokenVerifier`: the log's token key (fetched once
//! at start), the one verification rule, single use, and the revoked token
//! ids it reads from the log's event stream as they are logged. Answers:
//! 200 `{"rows": n}` (or `{"rows": [[…]]}` for a query), 403
//! `{"error": {"code": "token_…", "message"}}`, 400 for a statement
//! SQLite refuses.
//!
//! `GET /healthz` answers `{"revocations_read_to": n}`: the log size up to
//! which revocations have been applied.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::Parser;
use ledger_client::{Operation, TokenVerifier};
use serde_json::{json, Value};

/// Command line.
#[derive(Debug, Parser)]
#[command(name = "guarded-db", about = "SQLite behind just-in-time action tokens")]
struct Args {
    /// The ledger's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    ledger: String,
    /// This resource's name: tokens must be issued for it (`aud`).
    #[arg(long, default_value = "sqlite://guarded/main")]
    audience: String,
    /// The SQLite database file.
    #[arg(long, default_value = "guarded.db")]
    db: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
    /// Leeway on `nbf` and `exp`, milliseconds.
    #[arg(long, default_value_t = 500)]
    leeway_ms: u64,
}

struct Guard {
    audience: String,
    verifier: TokenVerifier,
    db: Mutex<rusqlite::Connection>,
}

/// The statements this server runs, by their first keyword.
const KEYWORDS: [&str; 5] = ["select", "insert", "update", "delete", "create"];

/// The action a statement asks for: `db.` and its first keyword, which
/// must be one of [`KEYWORDS`] at the very start (no comment, no `WITH`,
/// whose real verb comes later).
fn action_of(sql: &str) -> Option<String> {
    let keyword: String = sql.chars().take_while(char::is_ascii_alphabetic).collect::<String>().to_ascii_lowercase();
    KEYWORDS.contains(&keyword.as_str()).then(|| format!("db.{keyword}"))
}

fn refuse(status: StatusCode, code: &str, message: String) -> (StatusCode, Json<Value>) {
    (status, Json(json!({"error": {"code": code, "message": message}})))
}

async fn sql(State(guard): State<Arc<Guard>>, Json(body): Json<Value>) -> (StatusCode, Json<Value>) {
    let (Some(token), Some(sql)) = (body["token"].as_str(), body["sql"].as_str()) else {
        return refuse(StatusCode::BAD_REQUEST, "invalid_request", "the body is {\"token\", \"sql\"}".into());
    };
    let Some(action) = action_of(sql) else {
        return refuse(StatusCode::BAD_REQUEST, "unsupported_statement", format!("a statement starts with one of {KEYWORDS:?}"));
    };
    let op = Operation { audience: &guard.audience, action: &action, sql: Some(sql), amount: None, target: None };
    // Only a token that pins the statement runs one: a token without
    // `sql_sha256` would allow any statement of its action.
    match guard.verifier.check(token, &op) {
        Ok(claims) if claims.constraints.sql_sha256.is_none() => {
            return refuse(StatusCode::FORBIDDEN, "token_sql_mismatch", "this server runs only statements a token pins".into());
        }
        _ => {}
    }
    if let Err(e) = guard.verifier.verify(token, &op) {
        let status = match e.code() {
            "token_replayed" => StatusCode::CONFLICT,
            "token_replay_cache_full" | "token_revocations_unknown" => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::FORBIDDEN,
        };
        return refuse(status, e.code(), e.to_string());
    }
    let db = guard.db.lock().unwrap_or_else(|e| e.into_inner());
    let result = if action == "db.select" {
        query(&db, sql).map(|rows| json!({"rows": rows}))
    } else {
        db.execute(sql, []).map(|n| json!({"rows": n}))
    };
    match result {
        Ok(v) => (StatusCode::OK, Json(v)),
        Err(e) => refuse(StatusCode::BAD_REQUEST, "sql_failed", e.to_string()),
    }
}

fn query(db: &rusqlite::Connection, sql: &str) -> rusqlite::Result<Vec<Vec<Value>>> {
    let mut stmt = db.prepare(sql)?;
    let columns = stmt.column_count();
    let rows = stmt.query_map([], |row| {
        (0..columns)
            .map(|i| {
                Ok(match row.get_ref(i)? {
                    rusqlite::types::ValueRef::Null => Value::Null,
                    rusqlite::types::ValueRef::Integer(n) => Value::from(n),
                    rusqlite::types::ValueRef::Real(x) => json!(x),
                    rusqlite::types::ValueRef::Text(t) => Value::from(String::from_utf8_lossy(t).into_owned()),
                    rusqlite::types::ValueRef::Blob(b) => Value::from(b.len()),
                })
            })
            .collect()
    })?;
    rows.collect()
}

async fn healthz(State(guard): State<Arc<Guard>>) -> Json<Value> {
    Json(json!({"revocations_read_to": guard.verifier.caught_up_to()}))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let db = rusqlite::Connection::open(&args.db)?;
    let ledger = args.ledger.clone();
    let leeway = Duration::from_millis(args.leeway_ms);
    let verifier = tokio::task::spawn_blocking(move || TokenVerifier::for_log(&ledger, leeway)).await??;
    let guard = Arc::new(Guard { audience: args.audience, verifier, db: Mutex::new(db) });
    let app = Router::new().route("/sql", post(sql)).route("/healthz", get(healthz)).with_state(guard);
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    eprintln!("guarded-db listening on {}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
