//! `ledger-verify`: offline checks of what an Agent Ledger serves.
//!
//! A log's clients should not have to trust the server that runs it. This
//! tool checks, with the pure `verifier` library and nothing of the
//! server's code, what an auditor, a monitor or a relying party is handed:
//!
//! * `checkpoint`: a signed checkpoint file (c2sp.org/tlog-checkpoint)
//!   against the log's verifier key.
//! * `proof`: a c2sp.org/tlog-proof file (checkpoint, inclusion proof, and
//!   the entry when the file carries it or `--entry` names it).
//! * `disclosure`: a disclosure bundle (checkpoint, inclusion, revealed
//!   openings and predicate proofs); prints exactly what was proven.
//! * `agent`: an agent's entries from tlog-proof files, replayed through its
//!   key chain (passport, rotations, retirement); forks and inconsistent
//!   checkpoints are reported with their evidence.
//! * `entry`: fetches one entry and its inclusion proof from a running log.
//! * `audit`: the full offline audit of an archive (or of a running log's
//!   tiles): checkpoint, witnesses, consistency, tree, registry,
//!   attestations, hidden fields, trust and tokens ([`audit`]).
//! * `trust`: recomputes every trust score, drift signal, revocation and
//!   risk change from the log with the folds the server uses, and compares
//!   with the scores it reports.
//! * `monitor`: checks that the latest checkpoint extends the one saved in
//!   a state file (RFC 9162 §2.1.4 consistency), then saves it.
//!
//! The HTTP client lives here, not in `verifier`, so that the library stays
//! `no_std` and I/O-free for every other user.
//!
//! Exit status: 0 when everything verified, 1 when something did not verify
//! (a bad signature, a failing proof, a fork or rollback), 2 when the check
//! could not be run (unreadable file, unreachable server, usage error).
//!
//! Human-readable output escapes everything an agent wrote (see
//! [`escape`]); `--json` output is JSON, escaped by construction.

mod agent_entries;
mod audit;
mod escape;
mod folds;
mod trust;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use clap::{Parser, Subcommand};
use serde_json::{json, Value};
use verifier::disclosure::DisclosureBundle;
use verifier::hash::leaf_hash;
use verifier::proof::{verify_consistency, verify_inclusion};
use verifier::tiles::{decode_entry_bundle, TileKind, TilePath, TILE_WIDTH};
use verifier::tlog_proof::TlogProof;
use verifier::tree::CompactRange;
use verifier::wire::{ConsistencyProofResponse, EntryResponse, InclusionProofResponse};
use verifier::{Checkpoint, NoteVerifier, VerifierKey};

#[derive(Debug, Parser)]
#[command(name = "ledger-verify", version, about = "Verify Agent Ledger checkpoints, proofs and entries offline")]
struct Cli {
    /// Print one JSON object instead of human-readable text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Verify a signed checkpoint file.
    Checkpoint {
        /// Verifier key (`name+id+key`) or a file holding it.
        #[arg(long)]
        key: String,
        /// The checkpoint file.
        file: PathBuf,
    },
    /// Verify a c2sp.org/tlog-proof file.
    Proof {
        /// Verifier key or a file holding it.
        #[arg(long)]
        key: String,
        /// The proof file.
        file: PathBuf,
        /// The entry's leaf bytes, if the proof carries none.
        #[arg(long)]
        entry: Option<PathBuf>,
    },
    /// Verify a disclosure bundle offline: checkpoint, inclusion, revealed
    /// openings and predicate proofs. Prints exactly what was proven.
    Disclosure {
        /// Verifier key or a file holding it.
        #[arg(long)]
        key: String,
        /// The bundle (JSON, agent-ledger-disclosure/v2; v1 still verifies).
        file: PathBuf,
    },
    /// Verify an agent's entries offline: each file is a tlog-proof (entry
    /// in `extra`, inclusion, checkpoint). The agent's passport and every
    /// rotation up to the last entry must be among them; each signature is
    /// checked with the key in force at its index, sequence numbers must
    /// increase, and attestation verdicts are recomputed from the evidence.
    /// Two different entries at one index, or checkpoints that are not
    /// consistent with each other, are a fork. Files whose checkpoints
    /// have different tree sizes need `--url` (or refetch them all at one
    /// size).
    Agent {
        /// Verifier key or a file holding it.
        #[arg(long)]
        key: String,
        /// Server base URL to fetch consistency proofs from when the files'
        /// checkpoints have different tree sizes.
        #[arg(long)]
        url: Option<String>,
        /// tlog-proof files, in any order.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Fetch an entry and its inclusion proof, and verify them locally.
    Entry {
        /// Server base URL, e.g. http://127.0.0.1:8080.
        #[arg(long)]
        url: String,
        /// Verifier key or a file holding it.
        #[arg(long)]
        key: String,
        /// Entry index.
        #[arg(long)]
        index: u64,
    },
    /// The full offline audit: of an archive (`GET /v1/export`,
    /// `ledger-server export`), or of a running log's tiles with `--url`.
    /// Checks the checkpoint (and witness cosignatures with `--quorum`),
    /// consistency with `--since`, every leaf against the root, the whole
    /// registry replayed (every agent signature, sequence number,
    /// retirement and revocation), every attestation verdict, hidden-field
    /// commitment and predicate proof, and every trust score, revocation,
    /// risk change, drift signal, token and escalation. Exit 0 only when
    /// nothing is found.
    Audit {
        /// Verifier key or a file holding it.
        #[arg(long)]
        key: String,
        /// Server base URL, to audit a running log instead of an archive.
        #[arg(long, conflicts_with = "archive")]
        url: Option<String>,
        /// The archive (zstd-compressed agent-ledger-archive/v1).
        #[arg(required_unless_present = "url")]
        archive: Option<PathBuf>,
        /// The checkpoint the auditor verified last: the archive's must be
        /// consistent with it (no rollback, no fork).
        #[arg(long)]
        since: Option<PathBuf>,
        /// A witness's verifier key (or a file holding it); repeat for each.
        #[arg(long = "witness")]
        witnesses: Vec<String>,
        /// Cosignatures required from `--witness` keys (default: all of
        /// them).
        #[arg(long, requires = "witnesses", value_parser = clap::value_parser!(u64).range(1..))]
        quorum: Option<u64>,
        /// Accept an archive that is not the whole tree (`start` > 0 or
        /// `end` < its size): the tree and each entry's hidden fields are
        /// checked, but the registry and trust folds need every entry from
        /// the first, so signatures and scores are not. Without it such an
        /// archive exits 2.
        #[arg(long)]
        partial: bool,
    },
    /// Recompute every trust score, drift signal, revocation and risk change
    /// from the log's entries (tiles, checked against the checkpoint) with
    /// the policy in force at each index, and compare with the scores the
    /// server reports at the same index and instant.
    Trust {
        /// Server base URL.
        #[arg(long)]
        url: String,
        /// Verifier key or a file holding it.
        #[arg(long)]
        key: String,
        /// Compare only this agent (default: every agent the server lists).
        #[arg(long)]
        agent: Option<String>,
    },
    /// Check that the log's latest checkpoint extends the one saved in
    /// `--state`, then save it there.
    Monitor {
        /// Server base URL.
        #[arg(long)]
        url: String,
        /// Verifier key or a file holding it.
        #[arg(long)]
        key: String,
        /// File holding the last verified checkpoint (created if absent).
        #[arg(long)]
        state: PathBuf,
    },
}

/// A check that ran and failed, with what proves it.
struct Failure {
    message: String,
    evidence: Value,
}

enum Outcome {
    Verified(Value, String),
    Failed(Failure),
    /// The check could not be run as asked (exit 2), with why.
    Unchecked(String),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Checkpoint { key, file } => check_checkpoint(key, file),
        Command::Proof { key, file, entry } => check_proof(key, file, entry.as_deref()),
        Command::Entry { url, key, index } => check_entry(url, key, *index),
        Command::Monitor { url, key, state } => monitor(url, key, state),
        Command::Audit { key, url, archive, since, witnesses, quorum, partial } => {
            let quorum = quorum.map_or(witnesses.len(), |k| usize::try_from(k).unwrap_or(usize::MAX));
            let options =
                audit::AuditOptions { since: since.clone(), witnesses: witnesses.clone(), quorum, partial: *partial, progress: !cli.json };
            match (url, archive) {
                _ if quorum > witnesses.len() => {
                    Err(anyhow::anyhow!("--quorum {quorum} needs at least {quorum} --witness keys, {} given", witnesses.len()))
                }
                (Some(url), _) => audit::audit_url(url, key, &options),
                (None, Some(archive)) => audit::audit_archive(key, archive, &options),
                (None, None) => Err(anyhow::anyhow!("audit needs an archive or --url")),
            }
        }
        Command::Trust { url, key, agent } => trust::check_trust(url, key, agent.as_deref()),
        Command::Disclosure { key, file } => check_disclosure(key, file),
        Command::Agent { key, url, files } => agent_entries::check_agent(key, url.as_deref(), files),
    };
    match result {
        Ok(Outcome::Verified(value, human)) => {
            if cli.json {
                println!("{}", json!({ "verified": true, "result": value }));
            } else {
                println!("OK: {human}");
            }
            ExitCode::SUCCESS
        }
        Ok(Outcome::Failed(f)) => {
            if cli.json {
                println!("{}", json!({ "verified": false, "error": f.message, "evidence": f.evidence }));
            } else {
                println!("FAILED: {}", escape::line(&f.message));
                if !f.evidence.is_null() {
                    println!("evidence:\n{}", escape::json(&serde_json::to_string_pretty(&f.evidence).unwrap_or_default()));
                }
            }
            ExitCode::from(1)
        }
        Ok(Outcome::Unchecked(why)) => {
            if cli.json {
                println!("{}", json!({ "verified": false, "error": why, "could_not_check": true }));
            } else {
                eprintln!("error: {}", escape::line(&why));
            }
            ExitCode::from(2)
        }
        Err(e) => {
            if cli.json {
                println!("{}", json!({ "verified": false, "error": format!("{e:#}"), "could_not_check": true }));
            } else {
                eprintln!("error: {}", escape::line(&format!("{e:#}")));
            }
            ExitCode::from(2)
        }
    }
}

fn fail(message: impl Into<String>, evidence: Value) -> anyhow::Result<Outcome> {
    Ok(Outcome::Failed(Failure { message: message.into(), evidence }))
}

/// Witness verifier keys, each given as the key or a file holding it.
fn witness_keys(args: &[String]) -> anyhow::Result<Vec<verifier::cosignature::WitnessKey>> {
    args.iter()
        .map(|arg| {
            let text = match verifier::cosignature::WitnessKey::parse(arg) {
                Ok(key) => return Ok(key),
                Err(_) if Path::new(arg).exists() => std::fs::read_to_string(arg)?,
                Err(e) => anyhow::bail!("--witness is neither a witness key nor a readable file: {e}"),
            };
            verifier::cosignature::WitnessKey::parse(text.trim()).map_err(|e| anyhow::anyhow!("witness key file {arg}: {e}"))
        })
        .collect()
}

fn load_key(arg: &str) -> anyhow::Result<NoteVerifier> {
    let text = match VerifierKey::parse(arg) {
        Ok(key) => return Ok(NoteVerifier::new(key)),
        Err(_) if Path::new(arg).exists() => std::fs::read_to_string(arg)?,
        Err(e) => anyhow::bail!("--key is neither a verifier key nor a readable file: {e}"),
    };
    Ok(NoteVerifier::new(VerifierKey::parse(text.trim()).map_err(|e| anyhow::anyhow!("key file {arg}: {e}"))?))
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))
}

fn check_checkpoint(key: &str, file: &Path) -> anyhow::Result<Outcome> {
    let verifier = load_key(key)?;
    let note = read(file)?;
    match Checkpoint::open(&note, &verifier) {
        Ok(cp) => {
            let human = format!("checkpoint {} size {} root {}", escape::text(&cp.origin), cp.size, B64.encode(cp.root));
            Ok(Outcome::Verified(cp.to_json(), human))
        }
        Err(e) => fail(format!("checkpoint: {e}"), json!({ "checkpoint": note })),
    }
}

fn check_proof(key: &str, file: &Path, entry: Option<&Path>) -> anyhow::Result<Outcome> {
    let verifier = load_key(key)?;
    let text = read(file)?;
    let entry_bytes = entry.map(std::fs::read).transpose()?;
    let proof = match TlogProof::parse(&text) {
        Ok(p) => p,
        Err(e) => return fail(format!("{e}"), Value::Null),
    };
    match proof.verify(&verifier, entry_bytes.as_deref()) {
        Ok(v) => Ok(Outcome::Verified(
            json!({ "index": v.index, "leaf_hash": B64.encode(v.leaf_hash), "checkpoint": v.checkpoint.to_json() }),
            format!(
                "entry {} (leaf hash {}) is in {} at size {}",
                v.index,
                B64.encode(v.leaf_hash),
                escape::text(&v.checkpoint.origin),
                v.checkpoint.size
            ),
        )),
        Err(e) => fail(format!("{e}"), json!({ "proof": text })),
    }
}

fn check_disclosure(key: &str, file: &Path) -> anyhow::Result<Outcome> {
    let verifier = load_key(key)?;
    let bytes = std::fs::read(file).map_err(|e| anyhow::anyhow!("reading {}: {e}", file.display()))?;
    let bundle = match DisclosureBundle::parse(&bytes) {
        Ok(b) => b,
        Err(e) => return fail(format!("{e}"), Value::Null),
    };
    match verifier::disclosure::verify(&bundle, &verifier, zk::params()) {
        Ok(v) => {
            // Names, values and statements all come from the agent's entry
            // or the bundle: each is escaped so it stays on its own line.
            let mut human = format!("entry {} is in {} at size {}", v.index, escape::text(&v.origin), v.tree_size);
            for (k, value) in &v.public {
                human.push_str(&format!("\n  public    {} = {}", escape::text(k), escape::json(value)));
            }
            for (k, value) in &v.revealed {
                human.push_str(&format!("\n  revealed  {} = {}", escape::text(k), escape::text(value)));
            }
            for s in &v.proven {
                human.push_str(&format!("\n  proven    {}", escape::text(s)));
            }
            for s in &v.proven_at_append {
                human.push_str(&format!("\n  proven when appended  {}", escape::text(s)));
            }
            if !v.undisclosed.is_empty() {
                let names: Vec<String> = v.undisclosed.iter().map(|n| escape::text(n)).collect();
                human.push_str(&format!("\n  hidden, nothing disclosed: {}", names.join(", ")));
            }
            Ok(Outcome::Verified(v.to_json(), human))
        }
        Err(e) => fail(format!("{e}"), Value::Null),
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(30))).build().into()
}

fn get(agent: &ureq::Agent, url: &str) -> anyhow::Result<String> {
    let mut resp = agent.get(url).call().map_err(|e| anyhow::anyhow!("GET {url}: {e}"))?;
    resp.body_mut().read_to_string().map_err(|e| anyhow::anyhow!("GET {url}: {e}"))
}

fn get_json<T: serde::de::DeserializeOwned>(agent: &ureq::Agent, url: &str) -> anyhow::Result<T> {
    serde_json::from_str(&get(agent, url)?).map_err(|e| anyhow::anyhow!("GET {url}: unexpected response: {e}"))
}

/// Fetches the latest checkpoint and verifies it: `Ok(Err(_))` is a
/// verification failure to report, `Err(_)` a check that could not run.
fn fetch_checkpoint(agent: &ureq::Agent, base: &str, verifier: &NoteVerifier) -> anyhow::Result<Result<(String, Checkpoint), Outcome>> {
    let note = get(agent, &format!("{base}/tlog/checkpoint"))?;
    Ok(match Checkpoint::open(&note, verifier) {
        Ok(cp) => Ok((note, cp)),
        Err(e) => Err(Outcome::Failed(Failure { message: format!("latest checkpoint: {e}"), evidence: json!({ "checkpoint": note }) })),
    })
}

fn check_entry(url: &str, key: &str, index: u64) -> anyhow::Result<Outcome> {
    let verifier = load_key(key)?;
    let base = url.trim_end_matches('/');
    let agent = agent();
    let (note, cp) = match fetch_checkpoint(&agent, base, &verifier)? {
        Ok(found) => found,
        Err(failed) => return Ok(failed),
    };
    if index >= cp.size {
        return fail(format!("entry {index} is not in the tree of size {}", cp.size), json!({ "checkpoint": note }));
    }
    let entry: EntryResponse = get_json(&agent, &format!("{base}/v1/entries/{index}"))?;
    let proof: InclusionProofResponse = get_json(&agent, &format!("{base}/v1/proof/inclusion?index={index}&tree_size={}", cp.size))?;
    let leaf = leaf_hash(&entry.leaf);
    let evidence = json!({ "checkpoint": note, "leaf": B64.encode(&entry.leaf), "proof": proof.hashes.iter().map(|h| B64.encode(h)).collect::<Vec<_>>() });
    if entry.index != index || proof.index != index || proof.tree_size != cp.size {
        return fail("server answered for a different index or tree size", evidence);
    }
    let decoded: Value = match serde_json::from_slice(&entry.leaf) {
        Ok(v) => v,
        Err(e) => return fail(format!("leaf bytes are not JSON: {e}"), evidence),
    };
    if decoded != entry.entry {
        return fail("the decoded entry the server sent differs from its leaf bytes", evidence);
    }
    if let Err(e) = verify_inclusion(&leaf, index, cp.size, &proof.hashes, &cp.root) {
        return fail(format!("inclusion: {e}"), evidence);
    }
    Ok(Outcome::Verified(
        json!({ "index": index, "leaf_hash": B64.encode(leaf), "entry": decoded, "checkpoint": cp.to_json() }),
        format!(
            "entry {index} (leaf hash {}) is in {} at size {}\n{}",
            B64.encode(leaf),
            escape::text(&cp.origin),
            cp.size,
            escape::json(&decoded.to_string())
        ),
    ))
}

fn get_bytes(agent: &ureq::Agent, url: &str) -> anyhow::Result<Vec<u8>> {
    let mut resp = agent.get(url).call().map_err(|e| anyhow::anyhow!("GET {url}: {e}"))?;
    // A full entry bundle holds up to 256 entries of up to 64 KiB.
    resp.body_mut().with_config().limit(32 << 20).read_to_vec().map_err(|e| anyhow::anyhow!("GET {url}: {e}"))
}

/// Downloads the leaves of the tree `cp` (tlog-tiles entry bundles), in
/// order; `Ok(Err(_))` is a malformed bundle to report. The caller checks
/// them against the checkpoint's root ([`leaves_match`]).
fn fetch_leaves(agent: &ureq::Agent, base: &str, note: &str, cp: &Checkpoint) -> anyhow::Result<Result<Vec<Vec<u8>>, Outcome>> {
    let width = TILE_WIDTH;
    let mut leaves = Vec::with_capacity(usize::try_from(cp.size).unwrap_or(0).min(1 << 24));
    for n in 0..cp.size.div_ceil(width) {
        let count = (cp.size - n * width).min(width);
        let tile = TilePath { kind: TileKind::Entries, index: n, partial: (count < width).then_some(count as u8) };
        let path = tile.to_path();
        let body = get_bytes(agent, &format!("{base}/tlog/tile/{path}"))?;
        let Some(entries) = decode_entry_bundle(&body) else {
            return Ok(Err(Outcome::Failed(Failure {
                message: format!("entry bundle {path} is malformed"),
                evidence: json!({ "checkpoint": note, "bundle": path }),
            })));
        };
        if entries.len() as u64 != count {
            return Ok(Err(Outcome::Failed(Failure {
                message: format!("entry bundle {path} holds {} entries, not {count}", entries.len()),
                evidence: json!({ "checkpoint": note, "bundle": path }),
            })));
        }
        leaves.extend(entries.into_iter().map(<[u8]>::to_vec));
    }
    Ok(Ok(leaves))
}

/// Whether `leaves` hash to the checkpoint's root.
fn leaves_match(leaves: &[Vec<u8>], cp: &Checkpoint) -> bool {
    let mut tree = CompactRange::new();
    for leaf in leaves {
        tree.push(leaf_hash(leaf));
    }
    verifier::hash::hashes_equal(&tree.root(), &cp.root)
}

fn monitor(url: &str, key: &str, state: &Path) -> anyhow::Result<Outcome> {
    let verifier = load_key(key)?;
    let base = url.trim_end_matches('/');
    let agent = agent();
    let (new_note, new) = match fetch_checkpoint(&agent, base, &verifier)? {
        Ok(found) => found,
        Err(failed) => return Ok(failed),
    };
    let old_note = match std::fs::read_to_string(state) {
        Ok(s) => Some(s),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => anyhow::bail!("reading {}: {e}", state.display()),
    };
    let Some(old_note) = old_note else {
        save_state(state, &new_note)?;
        return Ok(Outcome::Verified(
            json!({ "old": null, "new": new.to_json() }),
            format!("first checkpoint saved: {} size {}", escape::text(&new.origin), new.size),
        ));
    };
    let old = Checkpoint::open(&old_note, &verifier).map_err(|e| anyhow::anyhow!("saved checkpoint in {}: {e}", state.display()))?;
    let evidence = |proof: &[verifier::Hash]| json!({ "old_checkpoint": old_note, "new_checkpoint": new_note, "proof": proof.iter().map(|h| B64.encode(h)).collect::<Vec<_>>() });
    if new.size < old.size {
        return fail(format!("rollback: the log shrank from {} to {} entries", old.size, new.size), evidence(&[]));
    }
    let proof: ConsistencyProofResponse = if new.size == old.size {
        ConsistencyProofResponse { old_size: old.size, new_size: new.size, hashes: Vec::new() }
    } else {
        get_json(&agent, &format!("{base}/v1/proof/consistency?old_size={}&new_size={}", old.size, new.size))?
    };
    if proof.old_size != old.size || proof.new_size != new.size {
        return fail("server answered with a proof for other sizes", evidence(&proof.hashes));
    }
    if let Err(e) = verify_consistency(old.size, new.size, &proof.hashes, &old.root, &new.root) {
        return fail(format!("fork: the latest checkpoint is not consistent with the saved one: {e}"), evidence(&proof.hashes));
    }
    save_state(state, &new_note)?;
    Ok(Outcome::Verified(
        json!({ "old": old.to_json(), "new": new.to_json() }),
        if new.size == old.size {
            format!("{} unchanged at {} entries (same root)", escape::text(&new.origin), new.size)
        } else {
            format!("{} grew consistently from {} to {} entries", escape::text(&new.origin), old.size, new.size)
        },
    ))
}

fn save_state(path: &Path, note: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, note).map_err(|e| anyhow::anyhow!("writing {}: {e}", tmp.display()))?;
    std::fs::File::open(&tmp).and_then(|f| f.sync_all()).map_err(|e| anyhow::anyhow!("syncing {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| anyhow::anyhow!("saving {}: {e}", path.display()))?;
    Ok(())
}
