//! Submissions with hidden fields: parsing must never panic, and an
//! accepted one commits to a leaf that decodes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(ledger_core::Submission::Pending(p)) = ledger_core::Submission::from_json(data, 65_000) {
        if let Ok(entry) = p.commit(zk::params()) {
            let leaf = entry.to_leaf(1_700_000_000_000);
            ledger_core::Leaf::decode(&leaf).expect("a leaf we built must decode");
        }
    }
});
