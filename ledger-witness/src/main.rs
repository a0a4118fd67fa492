//! `ledger-witness`: serves c2sp.org/tlog-witness for the configured logs
//! until SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use ledger_witness::{app, load_or_create_key, CheckpointStore, Witness};
use tracing_subscriber::EnvFilter;
use verifier::VerifierKey;

/// A transparency log witness: cosigns checkpoints that extend the ones it
/// cosigned before (c2sp.org/tlog-witness, c2sp.org/tlog-cosignature).
#[derive(Debug, Parser)]
#[command(name = "ledger-witness", version)]
struct Args {
    /// A log's verifier key (`<origin>+<hex key id>+<base64 key>`; its
    /// name is the log's origin), or a file of such keys, one per line.
    /// Repeatable.
    #[arg(long = "log-key", env = "LEDGER_WITNESS_LOG_KEYS", value_delimiter = ',', required_unless_present = "print_key")]
    log_keys: Vec<String>,
    /// The witness's private key file; created (mode 0600) with a new key
    /// named `--name` if absent.
    #[arg(long, env = "LEDGER_WITNESS_KEY", default_value = "./witness.key")]
    witness_key: PathBuf,
    /// The witness's name (a schema-less URL), needed to create a key.
    #[arg(long, env = "LEDGER_WITNESS_NAME")]
    name: Option<String>,
    /// Directory of the latest cosigned checkpoint of each log.
    #[arg(long, env = "LEDGER_WITNESS_STATE", default_value = "./witness-state")]
    state: PathBuf,
    /// Address to listen on.
    #[arg(long, env = "LEDGER_WITNESS_LISTEN", default_value = "127.0.0.1:7380")]
    listen: SocketAddr,
    /// Print the witness's verifier key to standard output and exit.
    #[arg(long)]
    print_key: bool,
}

fn log_keys(args: &[String]) -> anyhow::Result<Vec<VerifierKey>> {
    let mut keys = Vec::new();
    for arg in args {
        if let Ok(key) = VerifierKey::parse(arg) {
            keys.push(key);
            continue;
        }
        let text =
            std::fs::read_to_string(arg).with_context(|| format!("--log-key {arg:?} is neither a verifier key nor a readable file"))?;
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            keys.push(VerifierKey::parse(line).with_context(|| format!("log key in {arg}"))?);
        }
    }
    Ok(keys)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt().with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"))).init();
    let (signer, created) = load_or_create_key(&args.witness_key, args.name.as_deref())?;
    if args.print_key {
        println!("{}", signer.witness_key());
        return Ok(());
    }
    if created {
        tracing::info!(path = %args.witness_key.display(), "witness key created");
    }
    eprintln!("witness key: {}", signer.witness_key());
    let keys = log_keys(&args.log_keys)?;
    anyhow::ensure!(!keys.is_empty(), "no log keys configured");
    for key in &keys {
        tracing::info!(origin = key.name(), key = %key, "watching log");
    }
    let witness = Arc::new(Witness::open(signer, keys, CheckpointStore::open(&args.state)?)?);
    let listener = tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("binding {}", args.listen))?;
    tracing::info!(addr = %listener.local_addr()?, "listening");
    axum::serve(listener, app(witness)).with_graceful_shutdown(shutdown()).await?;
    Ok(())
}

async fn shutdown() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "no SIGTERM handler");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
