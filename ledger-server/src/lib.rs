//! Agent Ledger's HTTP server.
//!
//! [`app`] builds the axum router (tests drive it with `oneshot`, no
//! socket); [`serve::serve`] runs it on a listener with connection limits
//! and timeouts; `main.rs` adds configuration, logging and signals.
//! The contract (routes, status codes, error codes) is in the README and in
//! the OpenAPI document served at `/openapi.json`, generated from the
//! handlers in `routes/` (one module per resource). Error codes are
//! [`verifier::wire::ErrorCode`], shared with the SDK. [`ssf`] is the
//! OpenID Shared Signals Framework transmitter (docs/SSF.md).
//! [`witnessing`] gathers witness cosignatures on the log's checkpoints
//! (c2sp.org/tlog-witness).
#![forbid(unsafe_code)]

pub mod auth;
pub mod bus;
pub mod config;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod policy;
mod routes;
pub mod serve;
pub mod ssf;
pub mod witnessing;

pub use config::Config;
pub use routes::{app, openapi, serve_console_from, AppState, Limits};
