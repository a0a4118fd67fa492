//! `ledger-audit`: measures the auditor's toolkit (docs/PERFORMANCE.md,
//! "Audit archives"). Each step is its own process, so peak memory is the
//! step's alone; `scripts/audit-bench.sh` runs them in one go.
//!
//! * `build`: a log of agent-signed actions (optionally every k-th with a
//!   hidden amount and its range proof), appended through the log's own
//!   admission (signatures verified, group commits synced);
//! * `export`: an archive of the whole log, with entries/s, bytes and the
//!   process's peak resident memory;
//! * `baseline`: the raw costs of the same archive, same run: reading and
//!   decompressing it, hashing every leaf into the tree, and verifying every
//!   agent signature with ed25519-dalek's batch verification (and one by
//!   one, strict, as the audit does), on every core.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use clap::{Parser, Subcommand};
use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use ledger_core::entry::Submission;
use ledger_core::store::{LogStore as _, RocksStore};
use ledger_core::{Log, LogConfig};
use rayon::prelude::*;
use serde_json::{json, Map, Value};
use verifier::archive::ArchiveReader;
use verifier::entry::{Entry, Form, Leaf};
use verifier::hash::leaf_hash;
use verifier::note::NoteSigner;
use verifier::tree::CompactRange;

const ORIGIN: &str = "audit.example/log";

/// A passport's agent and key.
type Registered = (String, VerifyingKey);

/// A signed entry's message, signature and agent.
type SignedBy = (Vec<u8>, Signature, String);

#[derive(Debug, Parser)]
#[command(name = "ledger-audit", about = "Measure exports and offline audits")]
struct Args {
    #[command(subcommand)]
    command: Step,
}

#[derive(Debug, Subcommand)]
enum Step {
    /// Build a log of signed actions under DIR (its `db/`; the log's
    /// verifier key is written to DIR/log.pub).
    Build {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value_t = 1_000_000)]
        entries: u64,
        #[arg(long, default_value_t = 100)]
        agents: usize,
        /// Every this many actions carries a hidden amount with a range
        /// proof (0: none).
        #[arg(long, default_value_t = 0)]
        hidden_every: u64,
    },
    /// Export the whole log under DIR to OUT.
    Export {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// The raw costs of checking ARCHIVE.
    Baseline { archive: PathBuf },
}

fn main() -> anyhow::Result<()> {
    match Args::parse().command {
        Step::Build { dir, entries, agents, hidden_every } => build(&dir, entries, agents, hidden_every),
        Step::Export { dir, out } => export(&dir, &out),
        Step::Baseline { archive } => baseline(&archive),
    }
}

fn agent_id(i: usize) -> String {
    format!("spiffe://audit.example/agent/{i}")
}

fn build(dir: &std::path::Path, entries: u64, agents: usize, hidden_every: u64) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let signer = NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[5; 32])).map_err(|e| anyhow::anyhow!("{e}"))?;
    std::fs::write(dir.join("log.pub"), format!("{}\n", signer.verifier_key()))?;
    let store = Arc::new(RocksStore::open(&dir.join("db"))?);
    let openings_key = Some(ledger_core::sealing::OpeningsKey::from_bytes(&[7; 32]));
    let log = Log::open(store, signer, LogConfig { origin: ORIGIN.into(), openings_key, ..LogConfig::default() }, None)?;
    let keys: Vec<SigningKey> = (0..agents).map(|i| SigningKey::from_bytes(&[(i % 250) as u8 + 1; 32])).collect();
    for (i, key) in keys.iter().enumerate() {
        let passport = verifier::entry::Passport {
            agent: agent_id(i).parse().map_err(|e| anyhow::anyhow!("{e:?}"))?,
            public_key: key.verifying_key(),
            code_hash: [0; 32],
            model_hash: None,
            owner: "bench".into(),
            purpose: "audit bench".into(),
            tpm_ak: None,
        };
        rt.block_on(log.register(passport))?;
    }
    let started = Instant::now();
    let mut done = 0u64;
    const BATCH: u64 = 10_000;
    while done < entries {
        let n = BATCH.min(entries - done);
        let batch: Vec<Submission> = (done..done + n)
            .into_par_iter()
            .map(|i| {
                let a = (i % agents as u64) as usize;
                let seq = i / agents as u64 + 1;
                let mut m: Map<String, Value> =
                    json!({"kind": "action", "agent": agent_id(a), "action": "write", "resource": format!("db/items/{i}"), "seq": seq,
                        "data": {"rows": i % 97}})
                    .as_object()
                    .cloned()
                    .unwrap_or_default();
                if hidden_every > 0 && i % hidden_every == 0 {
                    m.insert("hidden".into(), json!({"amount": {"u64": i % 10_000, "prove": [{"le": 10_000}]}}));
                    let openings = verifier::hidden::commit_entry(&mut m, ORIGIN, &mut rand_core::OsRng, zk::params())
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                    verifier::entry::signing::sign_entry(&mut m, ORIGIN, &keys[a]);
                    m.insert("openings".into(), openings);
                } else {
                    verifier::entry::signing::sign_entry(&mut m, ORIGIN, &keys[a]);
                }
                Submission::from_value(&Value::Object(m), 65_535).map_err(|e| anyhow::anyhow!("{e}"))
            })
            .collect::<anyhow::Result<_>>()?;
        rt.block_on(log.submit(batch))?;
        done += n;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "build: {entries} signed entries ({agents} agents) in {secs:.1} s ({:.0}/s); tree size {}",
        entries as f64 / secs,
        log.head().size
    );
    log.shutdown();
    Ok(())
}

fn export(dir: &std::path::Path, out: &std::path::Path) -> anyhow::Result<()> {
    let store = RocksStore::open_read_only(&dir.join("db"))?;
    let head = store.head()?.ok_or_else(|| anyhow::anyhow!("empty log"))?;
    let started = Instant::now();
    let file = std::io::BufWriter::new(std::fs::File::create(out)?);
    let header = ledger_core::export_archive(&store, &head.checkpoint, ledger_core::ExportRange::default(), file)?;
    let secs = started.elapsed().as_secs_f64();
    let bytes = std::fs::metadata(out)?.len();
    println!(
        "export: {} entries in {secs:.2} s ({:.0} entries/s), {:.1} MiB ({:.1} bytes/entry), peak RSS {} MiB",
        header.end,
        header.end as f64 / secs,
        bytes as f64 / (1 << 20) as f64,
        bytes as f64 / header.end.max(1) as f64,
        ledger_benches::peak_rss_kib() / 1024
    );
    Ok(())
}

fn baseline(path: &std::path::Path) -> anyhow::Result<()> {
    // 1. Read and decompress.
    let started = Instant::now();
    let (mut reader, head) = ArchiveReader::open(zstd::stream::read::Decoder::new(std::fs::File::open(path)?)?)?;
    let mut leaves = Vec::new();
    while let Some(leaf) = reader.next_leaf()? {
        leaves.push(leaf);
    }
    let read = started.elapsed().as_secs_f64();
    let n = leaves.len() as f64;
    // 2. Hash every leaf into the tree (hashing on every core, the tree
    // in order, as the audit does).
    let started = Instant::now();
    let hashes: Vec<_> = leaves.par_iter().map(|l| leaf_hash(l)).collect();
    let mut tree = CompactRange::new();
    for h in hashes {
        tree.push(h);
    }
    let hashed = started.elapsed().as_secs_f64();
    anyhow::ensure!(tree.root() == verifier::Checkpoint::from_text(&verifier::note::SignedNote::parse(&head.checkpoint)?.text)?.root);
    // 3. Every agent signature: the messages (decoding included, as the
    // audit must), then batch verification and strict one-by-one checks.
    let decoded: Vec<(Option<Registered>, Option<SignedBy>)> = leaves
        .par_iter()
        .map(|bytes| {
            let Ok((leaf, _)) = Leaf::decode_in(bytes, Form::Audit) else { return (None, None) };
            match &leaf.entry {
                Some(Entry::Passport(r)) => (Some((r.passport.agent.as_str().to_owned(), r.passport.public_key)), None),
                Some(e) => match (e.signer(), e.signed()) {
                    (Some(agent), Some(s)) => (None, Some((s.message(ORIGIN), s.signature, agent.as_str().to_owned()))),
                    _ => (None, None),
                },
                None => (None, None),
            }
        })
        .collect();
    let keys: HashMap<String, VerifyingKey> = decoded.iter().filter_map(|(p, _)| p.clone()).collect();
    let signed: Vec<(Vec<u8>, Signature, VerifyingKey)> =
        decoded.into_iter().filter_map(|(_, s)| s).filter_map(|(m, sig, a)| keys.get(&a).map(|k| (m, sig, *k))).collect();
    let started = Instant::now();
    signed.par_chunks(256).try_for_each(|chunk| {
        let messages: Vec<&[u8]> = chunk.iter().map(|(m, _, _)| m.as_slice()).collect();
        let sigs: Vec<Signature> = chunk.iter().map(|(_, s, _)| *s).collect();
        let keys: Vec<VerifyingKey> = chunk.iter().map(|(_, _, k)| *k).collect();
        ed25519_dalek::verify_batch(&messages, &sigs, &keys)
    })?;
    let batch = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let strict_ok = signed.par_iter().all(|(m, s, k)| verifier::entry::signing::verify_signature(k, m, s));
    anyhow::ensure!(strict_ok, "a signature failed");
    let strict = started.elapsed().as_secs_f64();
    let sigs = signed.len() as f64;
    println!("baseline over {} entries ({} signatures), {} threads:", leaves.len(), signed.len(), rayon::current_num_threads());
    println!("  read + decompress        {:>10.0} entries/s", n / read);
    println!("  re-hash into the tree    {:>10.0} entries/s", n / hashed);
    println!("  batch-verify signatures  {:>10.0} signatures/s", sigs / batch);
    println!("  strict verify, parallel  {:>10.0} signatures/s", sigs / strict);
    Ok(())
}
