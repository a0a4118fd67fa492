//! A stable-toolchain fuzzing engine for the targets in `fuzz/src/targets.rs`
//! (the same functions the libFuzzer binaries in `fuzz/` run under nightly).
//!
//! For each target: start from seeds that are real encodings (see
//! [`seeds`]), then repeatedly pick a corpus input (half the time the
//! deeper of two random ones), mutate it (JSON-aware edits of one value;
//! bit flips, byte insert/delete/duplicate, splicing, interesting integers
//! in binary and decimal, format tokens, truncation) and run the target on
//! it with panics caught. Each target reports how deep an input got;
//! inputs that got past the first decoder join the corpus, the rarer their
//! depth the likelier, so mutation keeps working on inputs that reach the
//! code behind the decoders. Everything is driven by one seeded PRNG: a run is
//! reproducible from `FUZZ_SEED` and the iteration count.
//!
//! Environment:
//! * `FUZZ_ITERS`: executions per target (default [`DEFAULT_ITERS`], a
//!   few seconds per target in `make test`; `make fuzz` runs 10^6).
//! * `FUZZ_SEED`: PRNG seed (default fixed).
//! * `FUZZ_CRASH_DIR`: where a crashing input is saved (default under
//!   cargo's target tmp dir); the failure message also hex-dumps it.
//! * `FUZZ_REPLAY`: a file to run through every target once, unmutated.
//! * `FUZZ_TRACE`: a directory; each input is written there before it runs,
//!   so an abort that cannot be caught (stack overflow, OOM) leaves it.
//! * `FUZZ_WRITE_SEEDS`: a directory; the seeds are written to
//!   `<dir>/<target>/` as a starting corpus for `cargo fuzz`.

// In tests a failed expect is the failure report.
#![allow(clippy::unwrap_used)]

#[path = "fuzz/seeds.rs"]
mod seeds;
#[path = "../fuzz/src/targets.rs"]
mod targets;

use std::cell::{Cell, RefCell};
use std::fmt::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::Instant;

use serde_json::{Map, Value};

/// Executions per target when `FUZZ_ITERS` is unset: small enough that all
/// targets together stay well under a minute in `make test`.
const DEFAULT_ITERS: u64 = 25_000;

/// The PRNG seed when `FUZZ_SEED` is unset (each target mixes in its name).
const DEFAULT_SEED: u64 = 0x1ed9_e5f0_22ed;

/// Longest input the mutator produces (the server's leaf limit is 64 KiB).
const MAX_INPUT: usize = 64 * 1024;

/// Most inputs kept per target.
const CORPUS_CAP: usize = 2_048;

/// SplitMix64: tiny, fast, and fully determined by its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn one_in(&mut self, n: u64) -> bool {
        self.next().is_multiple_of(n)
    }
}

/// Values at the edges of integer types, in binary.
const INTERESTING: [u64; 16] = [
    0,
    1,
    0x7f,
    0x80,
    0xff,
    0x100,
    0x7fff,
    0x8000,
    0xffff,
    0x1_0000,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x1_0000_0000,
    0x7fff_ffff_ffff_ffff,
    u64::MAX,
];

/// The same edges in decimal, plus JSON number forms a strict parser must
/// handle (2^53 ± 1, exponents, negative zero, leading zeros).
const INTERESTING_DECIMAL: [&str; 18] = [
    "0",
    "-0",
    "00",
    "1",
    "-1",
    "255",
    "256",
    "65535",
    "65536",
    "4294967295",
    "4294967296",
    "9007199254740991",
    "9007199254740993",
    "18446744073709551615",
    "18446744073709551616",
    "1e308",
    "1e999",
    "0.5",
];

/// Tokens of the formats under test: JSON syntax and escapes, the lines of
/// notes and proof files, tile path pieces, base64 padding.
const TOKENS: [&str; 40] = [
    "\"",
    "{",
    "}",
    "[",
    "]",
    ":",
    ",",
    "null",
    "true",
    "false",
    "\\u0000",
    "\\ud800",
    "\\udc00",
    "\\\"",
    "\\\\",
    "\n",
    "\n\n",
    "\r\n",
    "\u{2014} ",
    "+",
    "=",
    "==",
    "AAAA",
    "index ",
    "extra ",
    "c2sp.org/tlog-proof@v1\n",
    "tile/",
    "entries/",
    "/",
    ".p/",
    "x001/",
    "\u{feff}",
    "\u{202e}",
    "\"hidden\":",
    "\"openings\":",
    "\"u64\":",
    "\"prove\":[{\"le\":",
    "\"kind\":\"passport\"",
    "\"evidence\":{\"type\":\"tpm\"}",
    "\"seq\":",
];

/// Replaces `range` of `input` with `with` (the removed bytes are dropped).
fn replace(input: &mut Vec<u8>, range: std::ops::Range<usize>, with: impl IntoIterator<Item = u8>) {
    input.splice(range, with).for_each(drop);
}

/// The `n`-th node of `v` in depth-first order (0 is `v` itself).
fn nth_node<'a>(v: &'a mut Value, n: &mut usize) -> Option<&'a mut Value> {
    if *n == 0 {
        return Some(v);
    }
    *n -= 1;
    match v {
        Value::Array(items) => items.iter_mut().find_map(|x| nth_node(x, n)),
        Value::Object(members) => members.values_mut().find_map(|x| nth_node(x, n)),
        _ => None,
    }
}

fn count_nodes(v: &Value) -> usize {
    1 + match v {
        Value::Array(items) => items.iter().map(count_nodes).sum(),
        Value::Object(members) => members.values().map(count_nodes).sum(),
        _ => 0,
    }
}

/// A structure-aware mutation for JSON inputs: change one value of the
/// document and re-encode it. A byte mutation of a disclosure bundle
/// almost always lands in its (signed) tlog-proof text; a mutation of one
/// JSON node reaches the revealed openings and the proofs as often as the
/// rest. Returns false (and changes nothing) when `input` is not JSON.
fn mutate_json(rng: &mut Rng, input: &mut Vec<u8>) -> bool {
    let Ok(mut doc) = serde_json::from_slice::<Value>(input) else { return false };
    let count = count_nodes(&doc);
    let donor = nth_node(&mut doc, &mut rng.below(count)).map(|d| d.clone()).unwrap_or(Value::Null);
    let Some(node) = nth_node(&mut doc, &mut rng.below(count)) else { return false };
    match rng.below(8) {
        0 => *node = donor,
        1 => {
            if let Ok(n) = serde_json::from_str(INTERESTING_DECIMAL[rng.below(INTERESTING_DECIMAL.len())]) {
                *node = n;
            }
        }
        2 => {
            *node =
                [Value::Null, Value::Bool(true), Value::from(""), Value::Array(Vec::new()), Value::Object(Map::new())][rng.below(5)].clone()
        }
        _ => match node {
            Value::String(text) => {
                let mut bytes = std::mem::take(text).into_bytes();
                let len = bytes.len();
                match rng.below(4) {
                    0 if len > 0 => bytes.truncate(rng.below(len)),
                    1 if len > 0 => {
                        let i = rng.below(len);
                        bytes[i] ^= 1 << rng.below(7);
                    }
                    2 => {
                        let at = rng.below(len + 1);
                        replace(&mut bytes, at..at, TOKENS[rng.below(TOKENS.len())].bytes());
                    }
                    _ => bytes.extend_from_slice(b"A"),
                }
                *text = String::from_utf8_lossy(&bytes).into_owned();
            }
            Value::Number(n) => {
                let x = n.as_u64().unwrap_or(0);
                *node = Value::from([x.wrapping_add(1), x.wrapping_sub(1), x.wrapping_mul(2), x / 2][rng.below(4)]);
            }
            Value::Array(items) if !items.is_empty() => {
                let i = rng.below(items.len());
                if rng.one_in(2) {
                    items.remove(i);
                } else {
                    let copy = items[i].clone();
                    items.insert(i, copy);
                }
            }
            Value::Array(items) => items.push(donor),
            Value::Object(members) if !members.is_empty() && rng.one_in(2) => {
                let key = members.keys().nth(rng.below(members.len())).cloned().unwrap_or_default();
                members.remove(&key);
            }
            Value::Object(members) => {
                members.insert(["x", "v", "u64", "str", "salt", "blinding", "claims", "proof"][rng.below(8)].into(), donor);
            }
            _ => *node = donor,
        },
    }
    *input = serde_json::to_vec(&doc).unwrap_or_default();
    true
}

/// Applies 1 to 8 random mutations to `input` (half the time one); for a
/// JSON input a third of the time one structure-aware mutation instead.
fn mutate(rng: &mut Rng, input: &mut Vec<u8>, corpus: &[Vec<u8>]) {
    if rng.one_in(3) && mutate_json(rng, input) {
        input.truncate(MAX_INPUT);
        return;
    }
    // Mostly one or two mutations: stacking many mostly breaks the first
    // decoder, and the corpus already holds what earlier rounds made.
    let mut rounds = 1;
    while rounds < 8 && rng.one_in(2) {
        rounds += 1;
    }
    for _ in 0..rounds {
        let len = input.len();
        match rng.below(14) {
            0 if len > 0 => {
                let i = rng.below(len);
                input[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                input[i] = rng.next() as u8;
            }
            2 => {
                let at = rng.below(len + 1);
                let n = 1 + rng.below(4);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                replace(input, at..at, bytes);
            }
            3 if len > 0 => {
                let at = rng.below(len);
                let n = 1 + rng.below((len - at).min(32));
                input.drain(at..at + n);
            }
            4 if len > 0 => {
                // Duplicate a chunk somewhere else (repeated members, lines).
                let at = rng.below(len);
                let n = 1 + rng.below((len - at).min(64));
                let chunk = input[at..at + n].to_vec();
                let to = rng.below(len + 1);
                replace(input, to..to, chunk);
            }
            5 => {
                // Splice: our head, another input's tail.
                let other = &corpus[rng.below(corpus.len())];
                let cut = rng.below(len + 1);
                let from = rng.below(other.len() + 1);
                input.truncate(cut);
                input.extend_from_slice(&other[from..]);
            }
            6 => {
                // Insert a chunk of another input (its tokens and values).
                let other = &corpus[rng.below(corpus.len())];
                if !other.is_empty() {
                    let at = rng.below(other.len());
                    let n = 1 + rng.below((other.len() - at).min(64));
                    let to = rng.below(len + 1);
                    replace(input, to..to, other[at..at + n].to_vec());
                }
            }
            7 if len > 0 => {
                let width = [1usize, 2, 4, 8][rng.below(4)];
                let at = rng.below(len);
                let value = INTERESTING[rng.below(INTERESTING.len())];
                let bytes = if rng.one_in(2) { value.to_le_bytes() } else { value.to_be_bytes() };
                let bytes = if rng.one_in(2) { &bytes[..width] } else { &bytes[8 - width..] };
                let end = (at + width).min(len);
                replace(input, at..end, bytes[..end - at].iter().copied());
            }
            8 => {
                // Replace a run of digits (or insert) with an edge value.
                let number = INTERESTING_DECIMAL[rng.below(INTERESTING_DECIMAL.len())].as_bytes().to_vec();
                let digits: Vec<usize> = (0..len).filter(|&i| input[i].is_ascii_digit()).collect();
                if digits.is_empty() {
                    let to = rng.below(len + 1);
                    replace(input, to..to, number);
                } else {
                    let start = digits[rng.below(digits.len())];
                    let end = (start..len).find(|&i| !input[i].is_ascii_digit()).unwrap_or(len);
                    replace(input, start..end, number);
                }
            }
            9 => {
                let token = TOKENS[rng.below(TOKENS.len())].as_bytes().to_vec();
                let to = rng.below(len + 1);
                if rng.one_in(2) || len == 0 {
                    replace(input, to..to, token);
                } else {
                    let end = (to + token.len()).min(len);
                    replace(input, to..end, token);
                }
            }
            10 if len > 0 => {
                input.truncate(rng.below(len));
            }
            11 if len > 1 => {
                let (a, b) = (rng.below(len), rng.below(len));
                input.swap(a, b);
            }
            12 if len > 0 => {
                let i = rng.below(len);
                let delta = 1 + rng.below(35) as u8;
                input[i] = if rng.one_in(2) { input[i].wrapping_add(delta) } else { input[i].wrapping_sub(delta) };
            }
            13 if len > 0 => {
                // Shift a byte into the neighbouring ASCII class (letters,
                // digits, punctuation), where format errors live.
                let i = rng.below(len);
                input[i] = b" !\"#+,-./0123456789:=[\\]_az{|}~"[rng.below(31)];
            }
            _ => {}
        }
    }
    input.truncate(MAX_INPUT);
}

thread_local! {
    /// Set while a target runs on this thread: its panics are findings.
    static IN_TARGET: Cell<bool> = const { Cell::new(false) };
    /// The last panic message (with its location) caught in a target.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Records a target's panic (message and location) instead of printing
/// it; other panics go to the default hook.
fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if IN_TARGET.with(Cell::get) {
                LAST_PANIC.with(|p| *p.borrow_mut() = Some(info.to_string()));
            } else {
                default(info);
            }
        }));
    });
}

/// Runs `target` on `input`: `Ok(depth)`, or `Err(panic message)`.
fn execute(target: targets::Target, input: &[u8]) -> Result<u32, String> {
    IN_TARGET.with(|f| f.set(true));
    let result = catch_unwind(AssertUnwindSafe(|| target(input)));
    IN_TARGET.with(|f| f.set(false));
    result.map_err(|_| LAST_PANIC.with(|p| p.borrow_mut().take()).unwrap_or_else(|| "panic without a message".into()))
}

fn hex_dump(data: &[u8]) -> String {
    let mut out = String::new();
    for (row, chunk) in data.chunks(16).enumerate() {
        let _ = write!(out, "{:08x}  ", row * 16);
        for b in chunk {
            let _ = write!(out, "{b:02x} ");
        }
        out.push_str(&"   ".repeat(16 - chunk.len()));
        out.push(' ');
        out.extend(chunk.iter().map(|&b| if b.is_ascii_graphic() || b == b' ' { b as char } else { '.' }));
        out.push('\n');
    }
    out
}

fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

fn env_u64(name: &str) -> Option<u64> {
    let text = std::env::var(name).ok()?;
    let text = text.trim().replace('_', "");
    let parsed = if let Some(hex) = text.strip_prefix("0x") { u64::from_str_radix(hex, 16) } else { text.parse() };
    Some(parsed.unwrap_or_else(|_| panic!("{name}={text} is not a number")))
}

/// Saves a crashing input and fails the test with everything needed to
/// reproduce it.
fn report_crash(name: &str, execution: u64, seed: u64, input: &[u8], message: &str) -> ! {
    let dir = std::env::var_os("FUZZ_CRASH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fuzz-crashes"));
    let path = dir.join(format!("{name}-{:016x}.bin", fnv1a(input)));
    let saved = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, input));
    let saved = match saved {
        Ok(()) => format!("saved to {} (replay: FUZZ_REPLAY={0})", path.display()),
        Err(e) => format!("could not be saved to {}: {e}", path.display()),
    };
    panic!(
        "fuzz target {name} panicked at execution {execution} (FUZZ_SEED={seed:#x}): {message}\n\
         input, {} bytes, {saved}:\n{}",
        input.len(),
        hex_dump(input)
    );
}

/// Fuzzes one target; panics (failing the test) on the first crash.
fn fuzz(name: &str) {
    install_panic_hook();
    let target = targets::TARGETS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t).expect("a target of that name");
    let seeds = seeds::for_target(name);
    assert!(!seeds.is_empty(), "no seeds for {name}");
    if let Some(dir) = std::env::var_os("FUZZ_WRITE_SEEDS") {
        let dir = PathBuf::from(dir).join(name);
        std::fs::create_dir_all(&dir).expect("seed directory");
        for (i, s) in seeds.iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i:03}")), s).expect("writing a seed");
        }
    }
    let seed = env_u64("FUZZ_SEED").unwrap_or(DEFAULT_SEED);
    if let Some(file) = std::env::var_os("FUZZ_REPLAY") {
        let input = std::fs::read(&file).expect("FUZZ_REPLAY file");
        if let Err(message) = execute(target, &input) {
            report_crash(name, 0, seed, &input, &message);
        }
        return;
    }
    let iterations = env_u64("FUZZ_ITERS").unwrap_or(DEFAULT_ITERS);
    let trace = std::env::var_os("FUZZ_TRACE").map(|d| PathBuf::from(d).join(format!("{name}.current")));
    let mut rng = Rng(seed ^ fnv1a(name.as_bytes()));

    let started = Instant::now();
    let mut corpus: Vec<Vec<u8>> = Vec::with_capacity(CORPUS_CAP);
    // The depth each corpus input reached.
    let mut levels: Vec<u32> = Vec::with_capacity(CORPUS_CAP);
    let mut depths = [0u64; 16];
    let mut deepest = 0;
    for input in &seeds {
        let depth = execute(target, input).unwrap_or_else(|m| report_crash(name, 0, seed, input, &m));
        deepest = deepest.max(depth);
        corpus.push(input.clone());
        levels.push(depth);
    }
    let fixed = corpus.len();
    for execution in 1..=iterations {
        // Half the time a tournament of two (the deeper of two random
        // inputs), so mutation leans toward inputs that reach further
        // without spending every execution on the slow, deep checks.
        let (a, b) = (rng.below(corpus.len()), rng.below(corpus.len()));
        let parent = if levels[b] > levels[a] && rng.one_in(2) { b } else { a };
        let mut input = corpus[parent].clone();
        mutate(&mut rng, &mut input, &corpus);
        if let Some(path) = &trace {
            let _ = std::fs::write(path, &input);
        }
        let depth = match execute(target, &input) {
            Ok(d) => d,
            Err(message) => report_crash(name, execution, seed, &input, &message),
        };
        depths[(depth as usize).min(15)] += 1;
        // Keep inputs that got past the first decoder, the rarer their
        // depth the likelier: the first 64 at each depth always, then 64 in
        // however many reached it. Rare depths are where the seeds' paths
        // branch off (a proof that decodes but fails, an opening that does
        // not open), and mutating them reaches what neither seeds nor
        // shallow mutants do.
        let seen = depths[(depth as usize).min(15)];
        let keep = depth > deepest || (depth > 0 && rng.below(seen as usize + 1) < 64);
        deepest = deepest.max(depth);
        if keep {
            if corpus.len() < CORPUS_CAP {
                corpus.push(input);
                levels.push(depth);
            } else {
                // A full corpus gives up a random input, unless it went
                // deeper than the newcomer: shallow finds never evict deep.
                let slot = fixed + rng.below(CORPUS_CAP - fixed);
                if levels[slot] <= depth {
                    corpus[slot] = input;
                    levels[slot] = depth;
                }
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let reached: Vec<String> = depths.iter().enumerate().filter(|(_, n)| **n > 0).map(|(d, n)| format!("{d}:{n}")).collect();
    println!(
        "fuzz {name}: {iterations} executions in {secs:.1} s ({:.0}/s), {} seeds, corpus {}, executions by depth [{}], no crash",
        iterations as f64 / secs.max(1e-9),
        seeds.len(),
        corpus.len(),
        reached.join(" ")
    );
}

#[test]
fn fuzz_entry() {
    fuzz("entry");
}

#[test]
fn fuzz_signed_note() {
    fuzz("signed_note");
}

#[test]
fn fuzz_tlog_proof() {
    fuzz("tlog_proof");
}

#[test]
fn fuzz_tile_path() {
    fuzz("tile_path");
}

#[test]
fn fuzz_entry_bundle() {
    fuzz("entry_bundle");
}

#[test]
fn fuzz_disclosure() {
    fuzz("disclosure");
}

#[test]
fn fuzz_hidden() {
    fuzz("hidden");
}

#[test]
fn fuzz_agent_entry() {
    fuzz("agent_entry");
}

#[test]
fn fuzz_tpm_quote() {
    fuzz("tpm_quote");
}

#[test]
fn fuzz_signal() {
    fuzz("signal");
}

#[test]
fn fuzz_archive() {
    fuzz("archive");
}

#[test]
fn fuzz_witness_request() {
    fuzz("witness_request");
}

#[test]
fn every_target_has_a_test() {
    let source = include_str!("fuzz.rs");
    for (name, _) in targets::TARGETS {
        assert!(source.contains(&format!("fn fuzz_{name}()")), "target {name} has no #[test]");
    }
}

#[test]
fn mutation_is_deterministic() {
    let corpus = vec![b"{\"a\":[1,2,3]}".to_vec(), b"index 7\n\n".to_vec()];
    let run = || {
        let mut rng = Rng(42);
        let mut out = Vec::new();
        for i in 0..200 {
            let mut input = corpus[i % 2].clone();
            mutate(&mut rng, &mut input, &corpus);
            out.push(input);
        }
        out
    };
    assert_eq!(run(), run());
}

#[test]
fn a_panicking_target_is_caught_with_its_message() {
    install_panic_hook();
    fn boom(data: &[u8]) -> u32 {
        assert!(data.len() < 3, "too long: {}", data.len());
        0
    }
    assert_eq!(execute(boom, b"ab"), Ok(0));
    let message = execute(boom, b"abcd").unwrap_err();
    assert!(message.contains("too long: 4") && message.contains("fuzz.rs"), "{message}");
}
