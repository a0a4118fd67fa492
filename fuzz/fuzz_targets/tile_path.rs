//! Tile paths (`/tlog/tile/...`): a parsed path formats back to the input.
//! Body: `agent_ledger_fuzz::targets::tile_path` (shared with the stable engine).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = agent_ledger_fuzz::targets::tile_path(data);
});
