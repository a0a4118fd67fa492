//! Fuzz targets for every decoder that faces the network. The bodies live
//! in [`targets`], shared with the stable engine in `tests/fuzz.rs`; the
//! binaries in `fuzz_targets/` hand them to libFuzzer.

pub mod targets;
