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
    /// Log origin: the checkpoint's first line and the key name. Default:
    /// the origin of the existing log key in the data directory, else
    /// `<listen address>/agent-ledger`.
    #[arg(long, env = "LEDGER_ORIGIN")]
    pub origin: Option<String>,
    /// Largest stored entry (canonical leaf), in bytes; 65535 is the
    /// tlog-tiles limit.
    #[arg(long, env = "LEDGER_MAX_ENTRY_BYTES", default_value_t = 65_535, value_parser = clap::value_parser!(u64).range(256..=65_535))]
    pub max_entry_bytes: u64,
    /// Most entries in one batch append.
    #[arg(long, env = "LEDGER_MAX_BATCH_ENTRIES", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub max_batch_entries: u64,
    /// Bytes of entries that may wait for the sequencer before appends get
    /// 503 + Retry-After.
    #[arg(long, env = "LEDGER_QUEUE_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub queue_bytes: usize,
    /// Seconds a client may take to send a request body (then 408).
    #[arg(long, env = "LEDGER_BODY_TIMEOUT_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub body_timeout_secs: u64,
    /// SPIFFE trust domain agents are registered in.
    #[arg(long, env = "LEDGER_TRUST_DOMAIN", default_value = "example.org")]
    pub trust_domain: String,
    /// Seconds an attestation nonce stays valid.
    #[arg(long, env = "LEDGER_NONCE_TTL_SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub nonce_ttl_secs: u64,
    /// Admin bearer token (agent registration, disclosures, shredding). Default: the token
    /// file, generated on first start.
    #[arg(long, env = "LEDGER_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// File holding the admin token (default `<data-dir>/admin.token`,
    /// created with mode 0600 on first start).
    #[arg(long, env = "LEDGER_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// Key encrypting the openings of hidden fields at rest, base64url of
    /// 32 bytes. Default: `<data-dir>/openings.key`, created on first start.
    #[arg(long, env = "LEDGER_OPENINGS_KEY", hide_env_values = true)]
    pub openings_key: Option<String>,
    /// Prover threads for hidden-field proofs (0 = one per core).
    #[arg(long, env = "LEDGER_PROVER_THREADS", default_value_t = 0)]
    pub prover_threads: usize,
    /// Entries that may wait for the prover before submissions with hidden
    /// fields get 503 + Retry-After.
    #[arg(long, env = "LEDGER_PROVER_QUEUE", default_value_t = 4096, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub prover_queue: u64,
    /// Verify every proof before storing it (about 15 % of a hidden
    /// append's cost; the prover already refuses false predicates).
    #[arg(long, env = "LEDGER_PROVER_SELF_CHECK", default_value_t = true, action = clap::ArgAction::Set)]
    pub prover_self_check: bool,
    /// Log output: `text` or `json`.
    #[arg(long, env = "LEDGER_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
}

impl Config {
    /// The origin to run under (see `--origin`).
    pub fn resolve_origin(&self) -> Result<String, ledger_core::Error> {
        if let Some(origin) = &self.origin {
            return Ok(origin.clone());
        }
        let stored = ledger_core::keys::stored_origin(&self.data_dir.join(ledger_core::keys::KEY_FILE))?;
        Ok(stored.unwrap_or_else(|| format!("{}/agent-ledger", self.listen)))
    }

    /// The admin token file.
    pub fn admin_token_path(&self) -> PathBuf {
        self.admin_token_file.clone().unwrap_or_else(|| self.data_dir.join("admin.token"))
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_start_with_no_arguments() {
        let config = Config::try_parse_from(["ledger-server"]).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.data_dir, PathBuf::from("./data"));
        assert_eq!(config.max_entry_bytes, 65_535);
        assert!(Config::try_parse_from(["ledger-server", "--max-entry-bytes", "70000"]).is_err());
    }

    #[test]
    fn origin_comes_from_flag_then_stored_key_then_listen_address() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().to_str().unwrap();
        let config = Config::try_parse_from(["ledger-server", "--data-dir", data, "--listen", "127.0.0.1:9000"]).unwrap();
        assert_eq!(config.resolve_origin().unwrap(), "127.0.0.1:9000/agent-ledger");
        ledger_core::keys::load_or_create_signer(&dir.path().join(ledger_core::keys::KEY_FILE), "ledger.example/agents").unwrap();
        assert_eq!(config.resolve_origin().unwrap(), "ledger.example/agents");
        let flagged = Config::try_parse_from(["ledger-server", "--data-dir", data, "--origin", "x.example/y"]).unwrap();
        assert_eq!(flagged.resolve_origin().unwrap(), "x.example/y");
    }
}
