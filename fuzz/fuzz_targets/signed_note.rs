//! Signed notes and checkpoints: parsing must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(note) = verifier::note::SignedNote::parse(text) {
            let _ = verifier::Checkpoint::from_text(&note.text);
        }
        let _ = verifier::VerifierKey::parse(text);
    }
});
