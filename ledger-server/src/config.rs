//! Server configuration: one struct, from flags or `LEDGER_*` variables.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

/// `ledger-server`: an append-only, verifiable ledger for AI agents.
#[derive(Clone, Debug, Parser)]
#[command(name = "ledger-server", version, about)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "LEDGER_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Directory for the RocksDB store and the log key.
    #[arg(long, env = "LEDGER_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Log origin: the checkpoint's first line and the key name.
    #[arg(long, env = "LEDGER_ORIGIN", default_value = "localhost/agent-ledger")]
    pub origin: String,
    /// Largest canonical entry body accepted, in bytes (at most 65000).
    #[arg(long, env = "LEDGER_MAX_ENTRY_BYTES", default_value_t = 16 * 1024, value_parser = clap::value_parser!(u64).range(2..=65_000))]
    pub max_entry_bytes: u64,
    /// Most entries in one batch append.
    #[arg(long, env = "LEDGER_MAX_BATCH_ENTRIES", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub max_batch_entries: u64,
    /// Bytes of entries that may wait for the sequencer before appends get
    /// 503 + Retry-After.
    #[arg(long, env = "LEDGER_QUEUE_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub queue_bytes: usize,
    /// Log output: `text` or `json`.
    #[arg(long, env = "LEDGER_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
}

impl Config {
    /// Largest request body of a single append.
    pub fn max_entry_request_bytes(&self) -> usize {
        // Room for whitespace and the envelope fields around the body.
        (self.max_entry_bytes as usize) * 2 + 1024
    }

    /// Largest request body of a batch append.
    pub fn max_batch_request_bytes(&self) -> usize {
        self.max_entry_request_bytes().saturating_mul(self.max_batch_entries as usize).min(64 * 1024 * 1024)
    }
}
