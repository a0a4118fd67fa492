//! TPM quotes (`TPMS_ATTEST`, base64 in an attestation's evidence).
//! Body: `agent_ledger_fuzz::targets::tpm_quote` (shared with the stable engine).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = agent_ledger_fuzz::targets::tpm_quote(data);
});
