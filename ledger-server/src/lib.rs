//! Agent Ledger's HTTP server.
//!
//! [`app`] builds the axum router (tests drive it with `oneshot`, no
//! socket); `main.rs` adds configuration, logging, signals and the listener.
//! The contract (routes, status codes, error codes) is in the README and in
//! the OpenAPI document served at `/openapi.json`, generated from the
//! handlers below.
#![forbid(unsafe_code)]

mod agent_routes;
pub mod auth;
pub mod config;
pub mod error;
pub mod extract;
pub mod metrics;
mod routes;

pub use config::Config;
pub use routes::{app, openapi, AppState, Limits};
