//! Agent entries as the log receives them: passports, attestations and
//! signed submissions must never panic the parsers or the offline checks.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = ledger_core::canonical::parse_strict(data) else { return };
    if let Some(obj) = value.as_object() {
        let _ = verifier::agent::Passport::from_object(obj);
        let _ = ledger_core::attest::validate_attestation(obj, true);
        let _ = verifier::agent::signing_message(obj);
        if let Ok(mut chain) = verifier::agent::AgentChain::new(obj) {
            let _ = chain.apply(obj);
        }
        if let Some(passport) = obj.get("passport").and_then(|p| p.as_object()).and_then(|p| verifier::agent::Passport::from_object(p).ok()) {
            let _ = verifier::agent::attestation_failures(obj, &passport);
        }
    }
    let _ = ledger_core::Submission::from_value(&value, 65_000);
});
