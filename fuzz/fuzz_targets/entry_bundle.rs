//! Entry bundles (tlog-tiles `entries` tiles, read by `ledger-verify
//! audit`): a decoded bundle encodes back to the same bytes.
//! Body: `agent_ledger_fuzz::targets::entry_bundle` (shared with the stable engine).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = agent_ledger_fuzz::targets::entry_bundle(data);
});
