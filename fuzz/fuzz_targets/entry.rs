//! Submitted entries: strict parsing and canonicalization must never panic,
//! and an accepted entry's leaf must decode back to the same body.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(entry) = ledger_core::NewEntry::from_json(data, 65_000) {
        let leaf = entry.to_leaf(1_700_000_000_000);
        let (_, value) = ledger_core::Leaf::decode(&leaf).expect("a leaf we built must decode");
        assert_eq!(ledger_core::canonical::to_canonical(&value), leaf);
    }
});
