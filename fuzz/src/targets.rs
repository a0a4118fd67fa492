//! The body of every fuzz target, as a plain function over bytes.
//!
//! Two engines drive the same functions:
//!
//! * the libFuzzer binaries in `fuzz/fuzz_targets/` (coverage-guided;
//!   `cargo +nightly fuzz run <name>` from `fuzz/`), and
//! * the stable corpus-mutation engine in `tests/fuzz.rs` (package
//!   `ledger-e2e`): a short run in every `make test`, `make fuzz` for
//!   10^6 executions per target.
//!
//! A target panics only when it has found a bug: a decoder that panics, or
//! a broken invariant (what we encode decodes to the same thing, what we
//! commit opens). Otherwise it returns how deep the input got (0: the
//! first decoder rejected it); the stable engine keeps inputs that reach
//! the deepest level seen, a cheap stand-in for coverage feedback.
//!
//! Every target is a decoder that faces the network: a server that reads
//! it from a client, or an auditor that reads it from a server.

use ed25519_dalek::SigningKey;
use serde_json::{Map, Value};
use verifier::note::{NoteSigner, NoteVerifier, SignedNote};
use verifier::{Checkpoint, VerifierKey};

/// The leaf size limit the targets parse under (the server's default).
pub const MAX_LEAF_BYTES: usize = 65_000;

/// The log the seeds are signed for: targets verify signatures against
/// this origin and [`log_signer`]'s key, so well-formed inputs get past the
/// signature checks to the code behind them.
pub const ORIGIN: &str = "fuzz.example/log";

/// The integrated time stamped on leaves the targets build.
pub const INTEGRATED_TIME: u64 = 1_700_000_000_000;

/// A target: the bytes in, how deep they got out.
pub type Target = fn(&[u8]) -> u32;

/// Every target, by the name of its libFuzzer binary.
pub const TARGETS: &[(&str, Target)] = &[
    ("entry", entry),
    ("signed_note", signed_note),
    ("tlog_proof", tlog_proof),
    ("tile_path", tile_path),
    ("entry_bundle", entry_bundle),
    ("disclosure", disclosure),
    ("hidden", hidden),
    ("agent_entry", agent_entry),
    ("tpm_quote", tpm_quote),
    ("signal", signal),
    ("archive", archive),
    ("witness_request", witness_request),
];

/// The fuzzing log's Ed25519 key (not a secret: it signs test data).
pub const LOG_KEY_SEED: [u8; 32] = [0x4c; 32];

/// The fuzzing log's note signer.
pub fn log_signer() -> NoteSigner {
    NoteSigner::new(ORIGIN, SigningKey::from_bytes(&LOG_KEY_SEED)).expect("the origin is a valid key name")
}

fn log_verifier() -> &'static NoteVerifier {
    static VERIFIER: std::sync::OnceLock<NoteVerifier> = std::sync::OnceLock::new();
    VERIFIER.get_or_init(|| NoteVerifier::new(log_signer().verifier_key()))
}

/// `POST /v1/entries` without hidden fields: strict parsing and
/// canonicalization; an accepted entry's leaf decodes and is canonical.
pub fn entry(data: &[u8]) -> u32 {
    let Ok(ledger_core::Submission::Ready(entry)) = ledger_core::Submission::from_json(data, MAX_LEAF_BYTES) else { return 0 };
    let leaf = entry.to_leaf(INTEGRATED_TIME);
    assert!(leaf.len() <= entry.max_leaf_len(), "leaf of {} bytes exceeds its bound {}", leaf.len(), entry.max_leaf_len());
    let (_, value) = ledger_core::Leaf::decode(&leaf).expect("a leaf we built must decode");
    assert_eq!(verifier::canonical::to_canonical(&value), leaf, "a leaf we built must be canonical");
    1
}

/// Verifier keys, signed notes and checkpoints (`/tlog/checkpoint`, the
/// checkpoint inside every proof file).
pub fn signed_note(data: &[u8]) -> u32 {
    let Ok(text) = std::str::from_utf8(data) else { return 0 };
    let mut depth = 0;
    if let Ok(key) = VerifierKey::parse(text) {
        assert_eq!(VerifierKey::parse(&key.to_string()).as_ref(), Ok(&key), "a verifier key must format back to itself");
        depth += 1;
    }
    if let Ok(note) = SignedNote::parse(text) {
        depth += 1;
        if log_verifier().verify(&note).is_ok() {
            depth += 1;
        }
        if let Ok(cp) = Checkpoint::from_text(&note.text) {
            depth += 1;
            assert_eq!(Checkpoint::from_text(&cp.to_text()).as_ref(), Ok(&cp), "a checkpoint must format back to itself");
        }
        let _ = Checkpoint::open(text, log_verifier());
    }
    depth
}

/// Audit archives (`agent-ledger-archive/v1`, the framing inside the zstd
/// stream an auditor is handed): a read never panics or allocates past a
/// frame's limit, and an archive that reads through writes back to one
/// that reads the same.
pub fn archive(data: &[u8]) -> u32 {
    use verifier::archive::{ArchiveReader, ArchiveWriter};
    let Ok((mut reader, head)) = ArchiveReader::open(data) else { return 0 };
    let mut leaves = Vec::new();
    loop {
        match reader.next_leaf() {
            Ok(Some(leaf)) => leaves.push(leaf),
            Ok(None) => break,
            Err(_) => return 1,
        }
    }
    // The header is JSON that may be written in other ways (spacing,
    // member order): what was read must write and read back the same.
    let written = ArchiveWriter::begin(Vec::new(), &head)
        .and_then(|mut w| {
            leaves.iter().try_for_each(|l| w.leaf(l))?;
            w.finish()
        })
        .expect("an archive that reads through writes back");
    let (mut again, head_again) = ArchiveReader::open(written.as_slice()).expect("a written archive reads");
    assert_eq!(head_again, head, "an archive's head must read back as written");
    for leaf in &leaves {
        assert_eq!(again.next_leaf().ok().flatten().as_ref(), Some(leaf), "leaves must read back as written");
    }
    assert!(matches!(again.next_leaf(), Ok(None)), "a written archive ends where it should");
    2
}

/// The fuzzing witness's key (not a secret).
pub const WITNESS_KEY_SEED: [u8; 32] = [0x57; 32];

/// The fuzzing witness.
pub fn witness_signer() -> verifier::cosignature::WitnessSigner {
    verifier::cosignature::WitnessSigner::new("witness.fuzz.example/w", SigningKey::from_bytes(&WITNESS_KEY_SEED))
        .expect("a valid witness name")
}

/// What a witness reads (`POST /add-checkpoint`: `old`, proof lines, the
/// checkpoint) and what an auditor reads of witnesses (keys, cosigned
/// notes): parsing never panics, a witness key formats back to itself,
/// and cosignatures are checked without panicking.
pub fn witness_request(data: &[u8]) -> u32 {
    use verifier::cosignature::{verify_cosignatures, WitnessKey};
    let mut depth = 0;
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(key) = WitnessKey::parse(text) {
            assert_eq!(WitnessKey::parse(&key.to_string()).as_ref(), Ok(&key), "a witness key must format back to itself");
            depth += 1;
        }
        if let Ok(report) = verify_cosignatures(text, &[witness_signer().witness_key()]) {
            depth += 1 + u32::from(!report.verified.is_empty());
        }
    }
    if let Ok(request) = ledger_witness::AddCheckpoint::parse(data) {
        depth += 1;
        if let Ok(note) = SignedNote::parse(request.note) {
            depth += 1 + u32::from(log_verifier().verify(&note).is_ok());
        }
    }
    depth
}

/// c2sp.org/tlog-proof files: a parsed file re-serializes to itself and
/// verifies (or not) without panicking.
pub fn tlog_proof(data: &[u8]) -> u32 {
    let Ok(text) = std::str::from_utf8(data) else { return 0 };
    let Ok(proof) = verifier::tlog_proof::TlogProof::parse(text) else { return 0 };
    let again = verifier::tlog_proof::TlogProof::parse(&proof.to_text()).expect("a proof we wrote must parse");
    assert_eq!(again, proof, "a proof must round-trip through its text form");
    match proof.verify(log_verifier(), None) {
        Ok(v) => {
            assert_eq!(v.index, proof.index);
            3
        }
        Err(verifier::tlog_proof::TlogProofError::Inclusion(_)) => 2,
        Err(_) => 1,
    }
}

/// Tile paths (`/tlog/tile/...`): a parsed path formats to a path that
/// parses back to it.
///
/// The stronger property, "formats back to its input", does not hold yet:
/// Tile paths: one tile, one path (this target once found leading zero
/// groups accepted, `entries/x000/000` for `entries/000`, and `node_ids`
/// overflowing for indices near 2^64 / 256; both fixed).
pub fn tile_path(data: &[u8]) -> u32 {
    let Ok(text) = std::str::from_utf8(data) else { return 0 };
    let Ok(path) = verifier::tiles::TilePath::parse(text) else { return 0 };
    assert_eq!(path.to_path(), text, "a parsed tile path must be the one canonical path of its tile");
    let _ = path.node_ids();
    if path.available_in(u64::MAX) {
        let nodes = path.node_ids();
        assert_eq!(nodes.len() as u64, if matches!(path.kind, verifier::tiles::TileKind::Entries) { 0 } else { path.width() });
        return 2;
    }
    1
}

/// Entry bundles (tlog-tiles `entries` tiles, read by `ledger-verify
/// audit`): a decoded bundle encodes back to the same bytes.
pub fn entry_bundle(data: &[u8]) -> u32 {
    let Some(entries) = verifier::tiles::decode_entry_bundle(data) else { return 0 };
    let again = verifier::tiles::encode_entry_bundle(entries.iter().copied()).expect("decoded entries fit a bundle");
    assert_eq!(again, data, "an entry bundle must round-trip");
    1
}

/// Predicate proofs and disclosure bundles: decoding and verifying never
/// panic; a decoded proof re-encodes to the same bytes.
pub fn disclosure(data: &[u8]) -> u32 {
    let mut depth = 0;
    if let Ok(proof) = zk::PredicateProof::from_bytes(data) {
        assert_eq!(proof.to_bytes(), data, "a predicate proof must round-trip");
        depth += 1;
    }
    if let Ok(bundle) = verifier::disclosure::DisclosureBundle::parse(data) {
        use verifier::disclosure::DisclosureError as E;
        // How far verification got: inclusion, then the leaf's fields,
        // then the openings, then the proofs.
        depth += match verifier::disclosure::verify(&bundle, log_verifier(), zk::params()) {
            Err(E::TlogProof(_) | E::Malformed(_)) => 1,
            Err(E::Leaf(_)) => 2,
            Err(E::UnknownField(_) | E::OpeningMismatch(_)) => 3,
            Err(_) => 4,
            Ok(_) => 5,
        };
        let again = verifier::disclosure::DisclosureBundle::parse(bundle.to_json().to_string().as_bytes());
        assert!(again.is_ok(), "a bundle we wrote must parse");
    }
    depth
}

/// Hidden fields: the spec of `POST /v1/hidden/commit` (the log commits
/// and proves, the openings must open what it committed), and entries
/// committed by the client with their openings (`POST /v1/entries`).
pub fn hidden(data: &[u8]) -> u32 {
    use rand_chacha::rand_core::SeedableRng as _;
    let Ok(value) = verifier::canonical::parse_strict(data) else { return 0 };
    let mut depth = 1;
    if let Some(Ok(spec)) = value.get("hidden").map(verifier::hidden::parse_hidden) {
        depth += 1;
        // Proving costs milliseconds: prove for one valid spec in eight
        // (chosen by the input, so runs stay deterministic) and spend the
        // rest of the time on the decoders.
        if data.iter().fold(0u8, |a, b| a.wrapping_add(*b)) % 8 == 0 {
            let agent = "spiffe://fuzz.example/agent/a";
            let context = verifier::disclosure::entry_predicates_context(ORIGIN, agent, 1);
            let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(u64::from(depth));
            let mut entry = Map::new();
            if let Ok(openings) = verifier::hidden::commit(&mut entry, &spec, &context, &mut rng, zk::params(), false) {
                depth += 1;
                let fields = verifier::disclosure::CommittedFields::from_leaf(&entry)
                    .expect("commitments we wrote must parse")
                    .expect("a committed entry has hidden fields");
                verifier::hidden::check_openings(&fields, &openings, &context, zk::params())
                    .expect("openings we made must open our commitments, and our proof must verify");
            }
        }
    }
    if let Ok(ledger_core::Submission::Pending(pending)) = ledger_core::Submission::from_value(&value, MAX_LEAF_BYTES) {
        depth += 1;
        if let Ok(entry) = pending.check(ORIGIN, zk::params()) {
            depth += 1;
            let leaf = entry.to_leaf(INTEGRATED_TIME);
            ledger_core::Leaf::decode(&leaf).expect("a leaf we built must decode");
        }
    }
    depth
}

/// Agent entries as the log receives them and as an auditor replays them:
/// one entry (passport, action, rotation, attestation), or an array of
/// leaves replayed through the agent's key chain, passport first.
pub fn agent_entry(data: &[u8]) -> u32 {
    use verifier::entry::attestation::attestation_failures;
    use verifier::entry::signing::signing_message;
    use verifier::entry::Passport;
    use verifier::entry::{Entry, Form};
    use verifier::fold::registry::Registry;
    let Ok(value) = verifier::canonical::parse_strict(data) else { return 0 };
    let mut depth = 1;
    let _ = ledger_core::Submission::from_value(&value, MAX_LEAF_BYTES);
    let leaves: Vec<&Map<String, Value>> = match &value {
        Value::Object(obj) => vec![obj],
        Value::Array(items) => items.iter().filter_map(Value::as_object).collect(),
        _ => return depth,
    };
    for obj in &leaves {
        let _ = signing_message(ORIGIN, obj);
        let _ = verifier::entry::attestation::check_shape(obj, true);
        let _ = verifier::entry::attestation::check_shape(obj, false);
        if let Ok(passport) = Passport::from_object(obj) {
            assert_eq!(Passport::from_object(&passport.to_object()).as_ref(), Ok(&passport), "a passport must round-trip");
            let _ = attestation_failures(obj, &passport, &passport.public_key);
        }
    }
    let Some((first, rest)) = leaves.split_first() else { return depth };
    // Replayed as `ledger-verify agent` does: the registry fold over the
    // leaves' entries, the agent id taken as stored.
    let entry_of = |leaf: &Map<String, Value>| {
        let members: Map<String, Value> =
            leaf.iter().filter(|(k, _)| !matches!(k.as_str(), "v" | "integrated_time")).map(|(k, v)| (k.clone(), v.clone())).collect();
        Entry::from_object(&members, Form::Audit)
    };
    let Ok(Entry::Passport(registration)) = entry_of(first) else { return depth };
    let agent = registration.agent.clone();
    let passport = Entry::Passport(registration);
    let mut registry = Registry::new(ORIGIN);
    if registry.apply(0, &passport).is_err() {
        return depth;
    }
    depth += 1;
    for (index, leaf) in (1u64..).zip(rest) {
        let Some(state) = registry.get(&agent).cloned() else { break };
        let _ = attestation_failures(leaf, &state.passport, &state.key);
        let Ok(entry) = entry_of(leaf) else { break };
        if entry.agent() != Some(&agent) || registry.apply(index, &entry).is_err() {
            break;
        }
        depth += 1;
    }
    depth
}

/// Signals and sources as the log receives them (`POST /v1/signals`,
/// `POST /v1/sources`) and as an auditor replays them: one object, or an
/// array of leaves replayed through the agent registry and the sources
/// fold side by side. An accepted signal's leaf decodes and is canonical;
/// a parsed source round-trips.
pub fn signal(data: &[u8]) -> u32 {
    use verifier::entry::{Entry, Form, Source};
    use verifier::fold::registry::Registry;
    use verifier::fold::sources::Sources;
    let Ok(value) = verifier::canonical::parse_strict(data) else { return 0 };
    let mut depth = 1;
    if let Ok(ledger_core::Submission::Ready(entry)) = ledger_core::Submission::signal_from_value(&value, MAX_LEAF_BYTES) {
        let leaf = entry.to_leaf(INTEGRATED_TIME);
        let (_, decoded) = ledger_core::Leaf::decode(&leaf).expect("a signal leaf we built must decode");
        assert_eq!(verifier::canonical::to_canonical(&decoded), leaf, "a signal leaf we built must be canonical");
        depth += 1;
    }
    if let Some(obj) = value.as_object() {
        if let Ok(source) = Source::from_object(obj, Form::Submitted) {
            assert_eq!(Source::from_object(&source.to_object(), Form::Leaf).as_ref(), Ok(&source), "a source must round-trip");
        }
    }
    let Value::Array(items) = &value else { return depth };
    let mut agents = Registry::new(ORIGIN);
    let mut sources = Sources::new(ORIGIN);
    for (index, item) in (0u64..).zip(items) {
        let Some(obj) = item.as_object() else { break };
        let members: Map<String, Value> =
            obj.iter().filter(|(k, _)| !matches!(k.as_str(), "v" | "integrated_time")).map(|(k, v)| (k.clone(), v.clone())).collect();
        let Ok(entry) = Entry::from_object(&members, Form::Audit) else { break };
        if agents.apply(index, &entry).is_err() || sources.apply(index, &entry, &agents).is_err() {
            break;
        }
        depth += 1;
    }
    depth
}

/// TPM quotes (`TPMS_ATTEST`, base64 in an attestation's evidence).
pub fn tpm_quote(data: &[u8]) -> u32 {
    let Ok(quote) = verifier::tpm::parse_quote(data) else { return 0 };
    assert!(quote.selections.len() <= 16, "more PCR banks than the parser allows");
    1
}
