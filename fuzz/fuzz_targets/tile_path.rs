//! Tile paths: parse, and a parsed path must format back to the input.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(path) = verifier::tiles::TilePath::parse(text) {
            assert_eq!(path.to_path(), text);
        }
    }
});
