//! Declares curve25519-dalek's backend cfg, which `zk::curve_backend`
//! reads to report a forced serial build.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(curve25519_dalek_backend, values(\"serial\", \"simd\", \"fiat\", \"unstable_avx512\"))");
}
