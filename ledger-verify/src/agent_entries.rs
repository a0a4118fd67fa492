//! `ledger-verify agent`: an agent's entries from tlog-proof files,
//! replayed through the agent registry fold ([`verifier::fold::registry`]), after checking that the files describe
//! one history of the log (no two entries at one index, consistent
//! checkpoints).

use std::collections::BTreeMap;
use std::path::PathBuf;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde_json::{json, Value};
use verifier::proof::verify_consistency;
use verifier::tlog_proof::TlogProof;
use verifier::wire::ConsistencyProofResponse;
use verifier::Checkpoint;

use crate::{agent, escape, fail, get_json, load_key, read, Failure, Outcome};

/// One tlog-proof file of `ledger-verify agent`, its inclusion verified.
struct ProvenLeaf {
    file: PathBuf,
    index: u64,
    /// The entry's leaf bytes (the proof's `extra`).
    leaf: Vec<u8>,
    /// The signed checkpoint note, verbatim, for evidence.
    note: String,
    checkpoint: Checkpoint,
}

impl ProvenLeaf {
    /// Evidence that a third party can re-check: the leaf (as text when it
    /// is UTF-8, and exactly, in base64) and the signed checkpoint.
    fn evidence(&self) -> Value {
        json!({
            "file": self.file.display().to_string(),
            "index": self.index,
            "leaf": String::from_utf8_lossy(&self.leaf),
            "leaf_base64": B64.encode(&self.leaf),
            "checkpoint": self.note,
        })
    }

    fn checkpoint_evidence(&self) -> Value {
        json!({ "file": self.file.display().to_string(), "checkpoint": self.note })
    }
}

pub(crate) fn check_agent(key: &str, url: Option<&str>, files: &[PathBuf]) -> anyhow::Result<Outcome> {
    use verifier::entry::{AgentId, EntryKind, Form, Leaf};
    use verifier::fold::registry::{Applied, Registry};
    let verifier = load_key(key)?;
    let mut proven = Vec::new();
    for file in files {
        let text = read(file)?;
        let proof = match TlogProof::parse(&text) {
            Ok(p) => p,
            Err(e) => return fail(format!("{}: {e}", file.display()), Value::Null),
        };
        let verified = match proof.verify(&verifier, None) {
            Ok(v) => v,
            Err(e) => return fail(format!("{}: entry {}: {e}", file.display(), proof.index), json!({ "proof": text })),
        };
        let Some(leaf) = proof.extra else { return fail(format!("{}: the proof carries no entry", file.display()), Value::Null) };
        proven.push(ProvenLeaf { file: file.clone(), index: proof.index, leaf, note: proof.checkpoint, checkpoint: verified.checkpoint });
    }
    // Stable: files stay in command-line order within one index.
    proven.sort_by_key(|p| p.index);
    if let Some(failed) = leaf_fork(&proven) {
        return Ok(failed);
    }
    if let Some(failed) = checkpoints_disagree(&proven, url)? {
        return Ok(failed);
    }
    // Same index, same bytes: the same entry, checked once.
    proven.dedup_by_key(|p| p.index);

    // Each leaf exactly canonical, its entry read with its signatures and
    // its agent id as stored (reported escaped, not refused).
    let mut entries = Vec::with_capacity(proven.len());
    for p in &proven {
        match Leaf::decode_in(&p.leaf, Form::Audit) {
            Ok((leaf, value)) => entries.push((p.index, leaf, value)),
            Err(e) => return fail(format!("{}: entry {}: {e}", p.file.display(), p.index), p.evidence()),
        }
    }
    let Some((first_index, first, _)) = entries.first() else { return fail("no entries", Value::Null) };
    if first.kind != EntryKind::Passport {
        return fail(format!("entry {first_index}: the first entry of a chain must be a passport"), Value::Null);
    }
    let agent = AgentId::from_stored_unchecked(first.text("agent"));
    let mut registry = Registry::new(verifier.key().name());
    let mut lines = Vec::with_capacity(entries.len());
    let mut report = Vec::with_capacity(entries.len());
    for (index, leaf, obj) in &entries {
        // Whose chain the entry is on: its signer (a peer report names its
        // reporter in "source"), else the agent it is about.
        let by = leaf.entry.as_ref().and_then(|e| e.signer()).map_or_else(|| leaf.text("agent"), AgentId::as_str);
        if by != agent.as_str() {
            return fail(format!("entry {index}: entry is by {by}, not {agent}"), json!({ "entry": obj }));
        }
        // The fold checks the version (agent-signed entries from version 2
        // on) and refuses weak keys, a passport's included.
        let applied = registry.apply_leaf(*index, leaf);
        let (text, item) = match applied {
            Ok(Applied::Registered) => (EntryKind::Passport.as_str().to_owned(), json!({"index": index, "kind": EntryKind::Passport})),
            Ok(Applied::Rotated { .. }) => {
                ("rotation, signed by the old and the new key".to_owned(), json!({"index": index, "kind": EntryKind::Rotation}))
            }
            Ok(Applied::Retired) => (EntryKind::Retirement.as_str().to_owned(), json!({"index": index, "kind": EntryKind::Retirement})),
            Ok(Applied::Revoked | Applied::Reinstated | Applied::Unchanged) => {
                (leaf.kind.as_str().to_owned(), json!({"index": index, "kind": leaf.kind}))
            }
            Ok(Applied::Signed { kind, seq }) => {
                let verdict = if kind == EntryKind::Attestation {
                    format!(", verdict {}", escape::json(&leaf.members.get("verdict").map(|v| v.to_string()).unwrap_or_default()))
                } else {
                    String::new()
                };
                (
                    format!("{} seq {seq}: signature verified{verdict}", escape::text(kind.as_str())),
                    json!({"index": index, "kind": kind, "seq": seq, "signature": "verified"}),
                )
            }
            Err(e) => return fail(format!("entry {index}: {e}"), json!({ "entry": obj })),
        };
        if *index != *first_index {
            lines.push(format!("index {index}: {text}"));
        }
        report.push(item);
    }
    lines.insert(0, format!("passport of {} at index {first_index}", escape::text(agent.as_str())));
    let human = format!("{} entries of {} verified\n  {}", entries.len(), escape::text(agent.as_str()), lines.join("\n  "));
    Ok(Outcome::Verified(json!({ "agent": agent, "entries": report }), human))
}

/// Two verified proofs of different leaves at one index: both checkpoints
/// are signed by the log, so this is a fork (or a SHA-256 collision), and
/// the two files are the evidence.
fn leaf_fork(proven: &[ProvenLeaf]) -> Option<Outcome> {
    let (a, b) = proven.windows(2).map(|w| (&w[0], &w[1])).find(|(a, b)| a.index == b.index && a.leaf != b.leaf)?;
    Some(Outcome::Failed(Failure {
        message: format!("fork: {} and {} hold different entries at index {}", a.file.display(), b.file.display(), a.index),
        evidence: json!({ "first": a.evidence(), "second": b.evidence() }),
    }))
}

/// Checks that every checkpoint the files rely on belongs to one history:
/// equal sizes need equal roots; different sizes need RFC 9162 consistency
/// proofs between them, fetched from `url`. Proofs checked against
/// checkpoints from two forks of the log would otherwise each verify on
/// their own. `Ok(None)` when they agree; `Err` when that cannot be shown
/// (different sizes offline, server unreachable).
fn checkpoints_disagree(proven: &[ProvenLeaf], url: Option<&str>) -> anyhow::Result<Option<Outcome>> {
    // One file per tree size; any other file of that size must agree with it.
    let mut by_size: BTreeMap<u64, &ProvenLeaf> = BTreeMap::new();
    for p in proven {
        let first = *by_size.entry(p.checkpoint.size).or_insert(p);
        if !verifier::hash::hashes_equal(&first.checkpoint.root, &p.checkpoint.root) {
            return Ok(Some(Outcome::Failed(Failure {
                message: format!(
                    "fork: the checkpoints in {} and {} have the same tree size {} and different roots",
                    first.file.display(),
                    p.file.display(),
                    p.checkpoint.size
                ),
                evidence: json!({ "first": first.checkpoint_evidence(), "second": p.checkpoint_evidence() }),
            })));
        }
    }
    if by_size.len() < 2 {
        return Ok(None);
    }
    let sizes: Vec<String> = by_size.keys().map(u64::to_string).collect();
    let Some(url) = url else {
        anyhow::bail!(
            "the files use checkpoints of different tree sizes ({}), which cannot be shown consistent offline: \
             fetch every file at one tree size, or pass --url to check consistency proofs from the log",
            sizes.join(", ")
        );
    };
    let base = url.trim_end_matches('/');
    let agent = agent();
    // Consistency is transitive, so consecutive sizes cover every pair.
    let ordered: Vec<&ProvenLeaf> = by_size.into_values().collect();
    for pair in ordered.windows(2) {
        let (old, new) = (pair[0], pair[1]);
        let (o, n) = (&old.checkpoint, &new.checkpoint);
        let proof: ConsistencyProofResponse =
            get_json(&agent, &format!("{base}/v1/proof/consistency?old_size={}&new_size={}", o.size, n.size))?;
        let evidence = json!({
            "old": old.checkpoint_evidence(),
            "new": new.checkpoint_evidence(),
            "proof": proof.hashes.iter().map(|h| B64.encode(h)).collect::<Vec<_>>(),
        });
        if proof.old_size != o.size || proof.new_size != n.size {
            return Ok(Some(Outcome::Failed(Failure {
                message: "server answered with a consistency proof for other sizes".into(),
                evidence,
            })));
        }
        if let Err(e) = verify_consistency(o.size, n.size, &proof.hashes, &o.root, &n.root) {
            return Ok(Some(Outcome::Failed(Failure {
                message: format!(
                    "fork: the checkpoint of size {} in {} is not shown consistent with the one of size {} in {}: {e}",
                    o.size,
                    old.file.display(),
                    n.size,
                    new.file.display()
                ),
                evidence,
            })));
        }
    }
    Ok(None)
}
