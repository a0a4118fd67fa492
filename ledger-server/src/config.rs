//! Server configuration: one struct, from flags or `LEDGER_*` variables.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{CommandFactory as _, FromArgMatches as _, Parser};

use crate::bus::BusConfig;
use crate::serve::ServeLimits;
use crate::ssf::{DefaultSubjects, ReceiverToken, SigningAlg, SsfConfig};

/// Ceiling of a batch request body, whatever the entry limits (the
/// extractor holds the whole body in memory).
pub const MAX_BATCH_REQUEST_BYTES: usize = 64 * 1024 * 1024;

/// `ledger-server`: an append-only, verifiable ledger for AI agents.
#[derive(Clone, Debug, Parser)]
#[command(
    name = "ledger-server",
    version,
    about,
    after_help = "`ledger-server export --data-dir D --out FILE` writes an audit archive from a data directory instead of serving \
                  (`ledger-server export --help`)."
)]
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
    /// A witness to submit checkpoints to (c2sp.org/tlog-witness):
    /// `"VKEY URL"`, its verifier key (`name+id+base64`) and submission
    /// prefix, one space apart; repeat for each (in the environment,
    /// comma-separated).
    #[arg(long = "witness", env = "LEDGER_WITNESSES", value_delimiter = ',')]
    pub witnesses: Vec<String>,
    /// Cosignatures that make a checkpoint witnessed (default: 1 with
    /// witnesses configured). Exports are made under the latest witnessed
    /// checkpoint.
    #[arg(long, env = "LEDGER_WITNESS_QUORUM")]
    pub witness_quorum: Option<usize>,
    /// Serve the console's files (`index.html`, `app.css`, its `.js` modules) from
    /// this directory, read at each request, instead of the copies built
    /// into the binary: for working on the page (docs/CONSOLE.md).
    #[arg(long, env = "LEDGER_CONSOLE_DIR")]
    pub console_dir: Option<std::path::PathBuf>,
    /// SPIFFE trust domain agents are registered in.
    #[arg(long, env = "LEDGER_TRUST_DOMAIN", default_value = "example.org")]
    pub trust_domain: String,
    /// Seconds an attestation nonce stays valid.
    #[arg(long, env = "LEDGER_NONCE_TTL_SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub nonce_ttl_secs: u64,
    /// Seconds an escalation waits for a human before it expires as a
    /// denial.
    #[arg(long, env = "LEDGER_ESCALATION_TTL_SECS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=604_800))]
    pub escalation_ttl_secs: u64,
    /// Leeway, in milliseconds, on an action token's `nbf` and `exp` when
    /// the log checks it (`POST /v1/tokens/verify`).
    #[arg(long, env = "LEDGER_TOKEN_LEEWAY_MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(0..=60_000))]
    pub token_leeway_ms: u64,
    /// Seconds a client may take to send a request's head, counted from
    /// when the server starts waiting for it; also how long an idle
    /// keep-alive connection stays open.
    #[arg(long, env = "LEDGER_HEADER_TIMEOUT_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub header_timeout_secs: u64,
    /// Seconds a connection may go without a byte moving either way while
    /// no request is being handled (a client that stopped reading its
    /// response) before it is closed.
    #[arg(long, env = "LEDGER_IDLE_TIMEOUT_SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub idle_timeout_secs: u64,
    /// Most connections served at once; one more is answered 503
    /// `too_many_connections` and closed. Keep it under the open-files
    /// limit (`ulimit -n`) minus what RocksDB needs.
    #[arg(long, env = "LEDGER_MAX_CONNECTIONS", default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_connections: u64,
    /// Most subscribers of the revocation bus (`/v1/events/stream`,
    /// `/v1/events/ws`) at once; one more is answered 503
    /// `too_many_subscribers`. Each holds a connection: keep it under
    /// `--max-connections`, so that appends still find one.
    #[arg(long, env = "LEDGER_MAX_SUBSCRIBERS", default_value_t = 512, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_subscribers: u64,
    /// Admin bearer token (agent registration, disclosures, shredding).
    /// Prefer LEDGER_ADMIN_TOKEN or the token file: a flag's value is
    /// visible to every local user in the process list. Default: the token
    /// file, generated on first start.
    #[arg(long, env = "LEDGER_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<Secret>,
    /// File holding the admin token (default `<data-dir>/admin.token`,
    /// created with mode 0600 on first start).
    #[arg(long, env = "LEDGER_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// Key encrypting the openings of hidden fields at rest, base64url of
    /// 32 bytes. Prefer LEDGER_OPENINGS_KEY to the flag (the process list
    /// shows flags). Default: `<data-dir>/openings.key`, created only while the store holds no sealed openings.
    #[arg(long, env = "LEDGER_OPENINGS_KEY", hide_env_values = true)]
    pub openings_key: Option<Secret>,
    /// Prover threads for hidden-field proofs (0 = one per core).
    #[arg(long, env = "LEDGER_PROVER_THREADS", default_value_t = 0)]
    pub prover_threads: usize,
    /// Entries that may wait for the prover before submissions with hidden
    /// fields get 503 + Retry-After.
    #[arg(long, env = "LEDGER_PROVER_QUEUE", default_value_t = 4096, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub prover_queue: u64,
    /// Range prover: `precomputed` (fold-free, byte-identical to
    /// bulletproofs), `dalek` (bulletproofs itself), `lockstep-cpu` or
    /// `cuda` (batches proven in lockstep, on the GPU for `cuda`; single
    /// proofs on `precomputed`). docs/PERFORMANCE.md compares them.
    #[arg(long, env = "LEDGER_PROVER_BACKEND", default_value = "precomputed")]
    pub prover_backend: zk::prover::Backend,
    /// Smallest batch of waiting commit proofs sent to the batch prover
    /// (`lockstep-cpu`, `cuda`); smaller batches go to `precomputed`.
    #[arg(long, env = "LEDGER_PROVER_BATCH_MIN", default_value_t = ledger_core::prover_backends::DEFAULT_BATCH_MIN as u64,
        value_parser = clap::value_parser!(u64).range(2..=ledger_core::prover_backends::MAX_BATCH as u64))]
    pub prover_batch_min: u64,
    /// Refuse to start when `cuda` cannot run (no CUDA build, driver or
    /// device) instead of falling back to `lockstep-cpu` with a warning.
    #[arg(long, env = "LEDGER_PROVER_STRICT", default_value_t = false, action = clap::ArgAction::Set)]
    pub prover_strict: bool,
    /// With `cuda`: compute the secret-dependent commitments `A` and `S` of
    /// batched proofs on the GPU, in constant time (`false`: on the CPU, so
    /// the GPU sees only public scalars; docs/SECURITY.md).
    #[arg(long, env = "LEDGER_PROVER_GPU_SECRETS", default_value_t = true, action = clap::ArgAction::Set)]
    pub prover_gpu_secrets: bool,
    /// Verify every proof the log makes for `POST /v1/hidden/commit` before
    /// answering (about 15 % of its cost; the prover already refuses false
    /// predicates). Proofs made by clients are always verified.
    #[arg(long, env = "LEDGER_PROVER_SELF_CHECK", default_value_t = true, action = clap::ArgAction::Set)]
    pub prover_self_check: bool,
    /// Trust policy file (TOML, docs/policy.example.toml). When it differs
    /// from the policy in force, a `policy` entry is appended at start.
    /// Without it the policy in force stays (a new log starts with the
    /// built-in policy, docs/TRUST.md).
    #[arg(long, env = "LEDGER_POLICY")]
    pub policy: Option<PathBuf>,
    /// The OpenID SSF transmitter's issuer (`iss` of every SET), an
    /// http(s) URL without a path; its endpoints are under it. Default:
    /// `http://<listen address>`.
    #[arg(long, env = "LEDGER_SSF_ISSUER")]
    pub ssf_issuer: Option<String>,
    /// SET signing algorithm (the key is generated on first start, in
    /// `<data-dir>/ssf-<alg>.key`).
    #[arg(long, env = "LEDGER_SSF_ALG", value_enum, default_value = "RS256")]
    pub ssf_alg: SigningAlg,
    /// Which agents a new SSF stream carries events about before the
    /// receiver adds or removes any.
    #[arg(long, env = "LEDGER_SSF_DEFAULT_SUBJECTS", value_enum, default_value = "ALL")]
    pub ssf_default_subjects: DefaultSubjects,
    /// An SSF receiver's bearer token, `TOKEN:SCOPES[:AUDIENCE]` (scopes
    /// `ssf.manage`, `ssf.read`, `ssf.manage.poll`, comma-separated);
    /// repeat the flag, or separate tokens with spaces in the variable.
    /// Prefer the variable or the tokens file (the process list shows
    /// flags). The admin token has `ssf.manage` and `ssf.read`.
    #[arg(long = "ssf-token", env = "LEDGER_SSF_TOKENS", value_delimiter = ' ', hide_env_values = true)]
    pub ssf_tokens: Vec<Secret>,
    /// A file of SSF receiver tokens, one `TOKEN:SCOPES[:AUDIENCE]` per
    /// line (mode 0600; `#` starts a comment line).
    #[arg(long, env = "LEDGER_SSF_TOKENS_FILE")]
    pub ssf_tokens_file: Option<PathBuf>,
    /// Seconds a SET push may take to connect, and each read and write.
    #[arg(long, env = "LEDGER_SSF_PUSH_TIMEOUT_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub ssf_push_timeout_secs: u64,
    /// Longest wait, in seconds, between two tries of a push to a receiver
    /// that fails (the wait starts at 250 ms and doubles).
    #[arg(long, env = "LEDGER_SSF_PUSH_MAX_BACKOFF_SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub ssf_push_max_backoff_secs: u64,
    /// Seconds a poll without `returnImmediately` waits for SETs.
    #[arg(long, env = "LEDGER_SSF_POLL_WAIT_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub ssf_poll_wait_secs: u64,
    /// Log output: `text` or `json`.
    #[arg(long, env = "LEDGER_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    /// Flags that carried a secret on the command line (`main` warns).
    #[arg(skip)]
    pub secrets_on_command_line: Vec<&'static str>,
}

/// A secret from a flag or the environment. `Debug` never shows it, so a
/// logged or printed `Config` does not leak it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// The secret text.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(text: String) -> Self {
        Self(text)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Config {
    /// The configuration from this process's flags and environment; prints
    /// the error and exits on a bad one (as `Parser::parse`).
    pub fn load() -> Self {
        Self::try_load_from(std::env::args_os()).unwrap_or_else(|e| e.exit())
    }

    /// The configuration from `args` and the environment, noting which
    /// secrets came on the command line.
    pub fn try_load_from<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let matches = Self::command().try_get_matches_from(args)?;
        let mut config = Self::from_arg_matches(&matches)?;
        config.secrets_on_command_line =
            [("admin_token", "--admin-token"), ("openings_key", "--openings-key"), ("ssf_tokens", "--ssf-token")]
                .into_iter()
                .filter(|(id, _)| matches.value_source(id) == Some(ValueSource::CommandLine))
                .map(|(_, flag)| flag)
                .collect();
        Ok(config)
    }

    /// Connection limits and timeouts of the serving loop.
    pub fn serve_limits(&self) -> ServeLimits {
        ServeLimits {
            header_timeout: Duration::from_secs(self.header_timeout_secs),
            idle_timeout: Duration::from_secs(self.idle_timeout_secs),
            max_connections: usize::try_from(self.max_connections).unwrap_or(usize::MAX),
        }
    }

    /// The witnesses (`--witness`) and the quorum, `None` without
    /// witnesses; an error names the malformed one.
    pub fn witness_config(&self) -> anyhow::Result<Option<(Vec<crate::witnessing::WitnessConfig>, usize)>> {
        let witnesses = self
            .witnesses
            .iter()
            .map(|w| {
                let (key, url) = w.trim().split_once(' ').ok_or_else(|| anyhow::anyhow!("--witness {w:?}: expected \"VKEY URL\""))?;
                let key = verifier::cosignature::WitnessKey::parse(key).map_err(|e| anyhow::anyhow!("--witness {w:?}: {e}"))?;
                let url = url.trim();
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    anyhow::bail!("--witness {w:?}: the URL must be http:// or https://");
                }
                Ok(crate::witnessing::WitnessConfig { url: url.to_owned(), key })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        if witnesses.is_empty() {
            return match self.witness_quorum {
                Some(k) if k > 0 => Err(anyhow::anyhow!("--witness-quorum {k} without any --witness")),
                _ => Ok(None),
            };
        }
        // One signature line is the log's; a verifier reads at most
        // `MAX_SIGNATURES` (c2sp.org/signed-note).
        let most = verifier::note::MAX_SIGNATURES - 1;
        if witnesses.len() > most {
            anyhow::bail!("at most {most} witnesses: a checkpoint carries at most {} signature lines", verifier::note::MAX_SIGNATURES);
        }
        for (i, w) in witnesses.iter().enumerate() {
            if witnesses[..i].iter().any(|o| o.key.name() == w.key.name()) {
                anyhow::bail!("--witness {:?} is configured twice (a quorum counts distinct witnesses)", w.key.name());
            }
        }
        let quorum = self.witness_quorum.unwrap_or(1);
        if quorum == 0 || quorum > witnesses.len() {
            anyhow::bail!("--witness-quorum must be between 1 and the {} witnesses configured", witnesses.len());
        }
        Ok(Some((witnesses, quorum)))
    }

    /// The token issuer's settings.
    pub fn issuer_config(&self) -> ledger_core::issuer::IssuerConfig {
        ledger_core::issuer::IssuerConfig {
            leeway_ms: self.token_leeway_ms,
            escalation_ttl: Duration::from_secs(self.escalation_ttl_secs),
            ..ledger_core::issuer::IssuerConfig::default()
        }
    }

    /// Limits of the revocation bus. Keep-alives go out every 15 s, or
    /// twice per idle timeout if that is shorter, so that a quiet stream
    /// is never taken for an idle connection.
    pub fn bus_config(&self) -> BusConfig {
        let keepalive = Duration::from_secs(15).min(Duration::from_millis(self.idle_timeout_secs * 500));
        BusConfig { max_subscribers: usize::try_from(self.max_subscribers).unwrap_or(usize::MAX), keepalive, ..BusConfig::default() }
    }

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

    /// The SSF transmitter's configuration: the tokens of the flags, the
    /// variable and the tokens file, and the admin token's.
    pub fn ssf_config(&self, admin_token: &str) -> Result<SsfConfig, String> {
        let issuer = SsfConfig::issuer(&self.ssf_issuer.clone().unwrap_or_else(|| format!("http://{}", self.listen)))?;
        let mut tokens = vec![ReceiverToken::admin(admin_token)];
        for token in &self.ssf_tokens {
            tokens.push(ReceiverToken::parse(token.expose()).map_err(|e| format!("--ssf-token: {e}"))?);
        }
        if let Some(path) = &self.ssf_tokens_file {
            let text = ledger_core::keys::read_secret_file(path, "SSF tokens file").map_err(|e| e.to_string())?;
            let parsed = crate::ssf::auth::parse_tokens_file(&text).map_err(|e| format!("{}: {e}", path.display()))?;
            tokens.extend(parsed);
        }
        Ok(SsfConfig {
            issuer,
            alg: self.ssf_alg,
            default_subjects: self.ssf_default_subjects,
            tokens,
            push_timeout: Duration::from_secs(self.ssf_push_timeout_secs),
            push_max_backoff: Duration::from_secs(self.ssf_push_max_backoff_secs),
            poll_wait: Duration::from_secs(self.ssf_poll_wait_secs),
        })
    }

    /// Largest request body of a single append.
    pub fn max_entry_request_bytes(&self) -> usize {
        // Room for whitespace and the envelope fields around the body.
        (self.max_entry_bytes as usize) * 2 + 1024
    }

    /// Largest request body of a batch append: room for the most entries,
    /// each as large as a single append may be, with their separators, up
    /// to [`MAX_BATCH_REQUEST_BYTES`].
    pub fn max_batch_request_bytes(&self) -> usize {
        let per_entry = self.max_entry_request_bytes().saturating_add(1);
        per_entry.saturating_mul(self.max_batch_entries as usize).saturating_add(2).min(MAX_BATCH_REQUEST_BYTES)
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
    fn prover_flags_parse_and_refuse() {
        let config = Config::try_parse_from(["ledger-server"]).unwrap();
        assert_eq!(config.prover_backend, zk::prover::Backend::Precomputed);
        assert_eq!((config.prover_batch_min, config.prover_strict, config.prover_gpu_secrets), (32, false, true));
        let config = Config::try_parse_from([
            "ledger-server",
            "--prover-backend",
            "cuda",
            "--prover-strict",
            "true",
            "--prover-gpu-secrets",
            "false",
        ])
        .unwrap();
        assert_eq!((config.prover_backend, config.prover_strict, config.prover_gpu_secrets), (zk::prover::Backend::Cuda, true, false));
        for name in ["dalek", "precomputed", "lockstep-cpu", "cuda"] {
            assert!(Config::try_parse_from(["ledger-server", "--prover-backend", name]).is_ok(), "{name}");
        }
        let bad = Config::try_parse_from(["ledger-server", "--prover-backend", "gpu"]).unwrap_err().to_string();
        assert!(bad.contains("one of: dalek, precomputed, lockstep-cpu, cuda"), "{bad}");
        for min in ["1", "1025"] {
            assert!(Config::try_parse_from(["ledger-server", "--prover-batch-min", min]).is_err(), "{min}");
        }
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

    #[test]
    fn secrets_never_show_in_debug_and_flags_carrying_them_are_noted() {
        let token = "admin-token-from-argv-0123456789";
        let key = "b3BlbmluZ3Mta2V5LW9wZW5pbmdzLWtleS1vcGVuaW5n";
        let config = Config::try_load_from(["ledger-server", "--admin-token", token, "--openings-key", key]).unwrap();
        assert_eq!(config.admin_token.as_ref().map(Secret::expose), Some(token));
        assert_eq!(config.openings_key.as_ref().map(Secret::expose), Some(key));
        let shown = format!("{config:?} {config:#?}");
        assert!(!shown.contains(token) && !shown.contains(key), "{shown}");
        assert_eq!(config.secrets_on_command_line, ["--admin-token", "--openings-key"]);
        assert!(Config::try_load_from(["ledger-server"]).unwrap().secrets_on_command_line.is_empty());
    }

    #[test]
    fn ssf_tokens_come_from_flags_and_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ssf.tokens");
        std::fs::write(&file, "# receivers\nfile-token-0123456789:ssf.read:https://rx.example\n").unwrap();
        #[cfg(unix)]
        std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        let config = Config::try_load_from([
            "ledger-server",
            "--ssf-token",
            "flag-token-0123456789:ssf.manage",
            "--ssf-tokens-file",
            file.to_str().unwrap(),
            "--ssf-alg",
            "ES256",
        ])
        .unwrap();
        assert_eq!(config.secrets_on_command_line, ["--ssf-token"]);
        let ssf = config.ssf_config("admin-token-0123456789").unwrap();
        assert_eq!((ssf.tokens.len(), ssf.alg, ssf.issuer.as_str()), (3, SigningAlg::Es256, "http://127.0.0.1:8080"));
        assert!(!format!("{config:?}").contains("flag-token"), "tokens never show in Debug");
        let bad = Config::try_load_from(["ledger-server", "--ssf-token", "flag-token-0123456789:ssf.write"]).unwrap();
        assert!(bad.ssf_config("admin-token-0123456789").is_err());
        let bad = Config::try_load_from(["ledger-server", "--ssf-issuer", "https://tr.example/issuer1"]).unwrap();
        assert!(bad.ssf_config("admin-token-0123456789").is_err());
    }

    #[test]
    fn connection_limits_and_batch_body_cap() {
        let config = Config::try_load_from(["ledger-server"]).unwrap();
        let limits = config.serve_limits();
        assert_eq!(
            (limits.header_timeout, limits.idle_timeout, limits.max_connections),
            (Duration::from_secs(10), Duration::from_secs(60), 1024)
        );
        assert_eq!(config.max_batch_request_bytes(), MAX_BATCH_REQUEST_BYTES);
        let small = Config::try_load_from(["ledger-server", "--max-entry-bytes", "1000", "--max-batch-entries", "10"]).unwrap();
        assert_eq!(small.max_batch_request_bytes(), (small.max_entry_request_bytes() + 1) * 10 + 2);
        assert!(Config::try_load_from(["ledger-server", "--max-connections", "0"]).is_err());
        let bus = config.bus_config();
        assert_eq!((bus.max_subscribers, bus.keepalive), (512, Duration::from_secs(15)));
        let quick = Config::try_load_from(["ledger-server", "--idle-timeout-secs", "4", "--max-subscribers", "3"]).unwrap().bus_config();
        assert_eq!((quick.max_subscribers, quick.keepalive), (3, Duration::from_secs(2)));
        assert!(Config::try_load_from(["ledger-server", "--max-subscribers", "0"]).is_err());
        assert!(Config::try_load_from(["ledger-server", "--header-timeout-secs", "0"]).is_err());
    }
}
