//! `ledger-grow`: appends N entries to an embedded RocksDB log (synced group
//! commits of 10,000) and prints resident memory and append rate as the log
//! grows, to show that memory stays flat with log size.

use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use ed25519_dalek::SigningKey;
use ledger_core::store::RocksStore;
use ledger_core::{Log, LogConfig};
use verifier::note::NoteSigner;

#[derive(Debug, Parser)]
#[command(name = "ledger-grow", about = "Grow an embedded log and report resident memory")]
struct Args {
    /// Entries to append.
    #[arg(long, default_value_t = 10_000_000)]
    entries: u64,
    /// Report every this many entries.
    #[arg(long, default_value_t = 1_000_000)]
    every: u64,
    /// Directory for the store (a temporary one if absent).
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let tmp = tempfile::tempdir()?;
    let dir = args.dir.clone().unwrap_or_else(|| tmp.path().to_owned());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build()?;
    let signer = NoteSigner::new("grow.example/log", SigningKey::from_bytes(&[3; 32])).map_err(|e| anyhow::anyhow!("{e}"))?;
    let store = Arc::new(RocksStore::open(&dir.join("db"))?);
    let log = Log::open(store, signer, LogConfig { origin: "grow.example/log".into(), agent_auth: false, ..LogConfig::default() }, None)?;
    println!("{:>12} {:>12} {:>14}", "entries", "RSS KiB", "entries/s");
    let (mut seq, mut last, mut t0) = (0u64, 0u64, Instant::now());
    while seq < args.entries {
        let batch = ledger_benches::bench_entries(10_000, &mut seq)?;
        rt.block_on(log.append(batch))?;
        if seq - last >= args.every {
            println!("{seq:>12} {:>12} {:>14.0}", ledger_benches::rss_kib(), (seq - last) as f64 / t0.elapsed().as_secs_f64());
            (last, t0) = (seq, Instant::now());
        }
    }
    Ok(())
}
